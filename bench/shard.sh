#!/usr/bin/env bash
# Sharded full load and change stream: the benchmark dataset copied into
# one target, then split by hash into three targets, one run after the
# other on the same servers; then one backlog of pgbench transactions
# drained by migrate into one target, and the same into three, each then
# cut over (the write-unavailability window of one fence over one target,
# and over three). The three targets are three databases of the target server, so
# both runs write through the same server and disks: the ratio is what
# routing costs (each chunk read once, each row sent to its target's COPY,
# every target prepared and finished on its own), not what three machines
# would gain.
#
# pgbench's tables are routed by bid, docs and events by account_id; the
# pgbench_* tables without bid (none) would be reference tables. See
# docs/benchmarks.md for a run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

JOBS=${JOBS:-2}
# shellcheck source=bench/dataset_size.sh
. "$ROOT/bench/dataset_size.sh" # BENCH_SCALE, BENCH_SIZE -> size_mb
BENCH_TIMEOUT=${BENCH_TIMEOUT:-7200}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
[ -x "$PGTIDE_BIN" ] || { echo "bench: no executable at $PGTIDE_BIN" >&2; exit 2; }

BENCH_NAME=shard
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
OUT=$OUT_DIR/shard-$STAMP.txt

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
build_dataset "$size_mb"
# pgbench_history's keys to tellers and accounts name tid and aid, not the
# routing key bid: no split by bid can keep them (check refuses them), so
# both runs load the dataset without them
q "$SRC" "ALTER TABLE pgbench_history DROP CONSTRAINT IF EXISTS pgbench_history_tid_fkey, DROP CONSTRAINT IF EXISTS pgbench_history_aid_fkey"
SRC_ROWS=$(q "$SRC" "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM docs) + (SELECT count(*) FROM events)")
TGT_BASE="postgresql://postgres@127.0.0.1:$TGT_PORT"

fresh() { # fresh DB...: empty target databases
	for db in "$@"; do
		PGOPTIONS="-c client_min_messages=warning" q "$TGT_ADMIN" "DROP DATABASE IF EXISTS $db WITH (FORCE)"
		q "$TGT_ADMIN" "CREATE DATABASE $db"
	done
	q "$SRC" "CHECKPOINT"
	q "$TGT_ADMIN" "CHECKPOINT"
}

# rows DB: the routed tables' rows on one target database
rows() {
	q "$TGT_BASE/$1" "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM docs) + (SELECT count(*) FROM events)"
}

timed() { # timed NAME ARGS...: one pgtide copy, its seconds into res/NAME
	local name=$1 t0 t1 rc=0
	shift
	t0=$(now)
	timeout "$BENCH_TIMEOUT" "$PGTIDE_BIN" copy --source "$SRC" --task bench \
		--jobs "$JOBS" --index-jobs "$JOBS" "$@" >"$WORK/logs/$name.log" 2>&1 || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || die "$name: pgtide copy exit status $rc (log: $WORK/logs/$name.log)"
	elapsed "$t0" "$t1" >"$WORK/res/$name.secs"
	log "$name: $(cat "$WORK/res/$name.secs") s"
}

fresh one
timed one --target "$TGT_BASE/one"
[ "$(rows one)" = "$SRC_ROWS" ] || die "one target: $(rows one) rows, the source has $SRC_ROWS"

split_file() { # split_file FILE [TASK [SLOT]]: three targets s1..s3, routed by hash
	{
		[ -z "${2:-}" ] || echo "task: $2"
		cat <<YAML
targets:
  shard1: $TGT_BASE/s1
  shard2: $TGT_BASE/s2
  shard3: $TGT_BASE/s3
shard:
  key: account_id
  method: hash
  tables:
    public.pgbench_*: key bid
YAML
		[ -z "${3:-}" ] || echo "  slot: $3"
	} >"$1"
}

fresh s1 s2 s3
split_file "$WORK/split.yaml"
timed three --config "$WORK/split.yaml"
total=$(($(rows s1) + $(rows s2) + $(rows s3)))
[ "$total" = "$SRC_ROWS" ] || die "three targets: $total rows in all, the source has $SRC_ROWS"

# ---- the change stream: one backlog of pgbench transactions drained into one
# target, then the same backlog into three. Each run: migrate until every
# target streams, stop it, write the backlog on the source, start migrate
# again and time from every target streaming to every slot confirming the
# backlog's end.
BENCH_TXNS=${BENCH_TXNS:-20000}

# wait_streams LOG N: until LOG says N times that a target streams
wait_streams() {
	local i
	for i in $(seq 1200); do
		[ "$(grep -c 'streaming from slot' "$1" || true)" -ge "$2" ] && return 0
		sleep 0.1
	done
	die "not $2 targets streaming (log: $1)"
}

drained() { # drained SLOT_PATTERN N LSN: N slots like the pattern confirm LSN
	[ "$(q "$SRC" "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '$1' AND confirmed_flush_lsn >= '$3'")" = "$2" ]
}

stream_run() { # stream_run NAME N SLOT_PATTERN NSLOTS ARGS...: N targets, the drain's seconds into res/NAME.drain
	local name=$1 n=$2 slots=$3 nslots=$4 pid end t0 t1
	shift 4
	"$PGTIDE_BIN" migrate "$@" >"$WORK/logs/$name-load.log" 2>&1 &
	pid=$!
	wait_streams "$WORK/logs/$name-load.log" "$n"
	kill -INT "$pid"
	wait "$pid" || die "$name: migrate did not stop cleanly (log: $WORK/logs/$name-load.log)"
	pgbench -n -c 4 -j 2 -t $((BENCH_TXNS / 4)) -h 127.0.0.1 -p "$SRC_PORT" -U postgres bench \
		>"$WORK/logs/$name-pgbench.log" 2>&1 || die "$name: pgbench failed"
	end=$(q "$SRC" "SELECT pg_current_wal_lsn()")
	"$PGTIDE_BIN" migrate "$@" >"$WORK/logs/$name-stream.log" 2>&1 &
	pid=$!
	wait_streams "$WORK/logs/$name-stream.log" "$n"
	t0=$(now)
	until drained "$slots" "$nslots" "$end"; do
		kill -0 "$pid" 2>/dev/null || die "$name: migrate exited (log: $WORK/logs/$name-stream.log)"
		sleep 0.05
	done
	t1=$(now)
	# the hand-over of every target; the bench has no application to
	# fence, so the fence is a command that does nothing
	"$PGTIDE_BIN" cutover "$@" --fence command --fence-command true \
		--unfence-command true >"$WORK/logs/$name-cutover.log" 2>&1 ||
		die "$name: cutover failed (log: $WORK/logs/$name-cutover.log)"
	sed -n 's/.*write-unavailability window: \([0-9.]*\) s.*/\1/p' \
		"$WORK/logs/$name-cutover.log" >"$WORK/res/$name.window"
	wait "$pid" || die "$name: migrate did not stop at the cutover"
	"$PGTIDE_BIN" clean "$@" >>"$WORK/logs/$name-stream.log" 2>&1 || die "$name: clean failed"
	elapsed "$t0" "$t1" >"$WORK/res/$name.drain"
	log "$name: drained $BENCH_TXNS transactions in $(cat "$WORK/res/$name.drain") s"
}

# pgbench's history rows name an account and a branch at random, so no
# routing keeps a row beside both: its foreign keys go for the stream runs,
# and it gets a key, so that the split routes it by bid as it does the others
q "$SRC" "ALTER TABLE pgbench_history DROP CONSTRAINT IF EXISTS pgbench_history_aid_fkey,
	DROP CONSTRAINT IF EXISTS pgbench_history_bid_fkey, DROP CONSTRAINT IF EXISTS pgbench_history_tid_fkey,
	ADD COLUMN hid bigserial PRIMARY KEY"
fresh one
stream_run stream1 1 "pgtide_stream1" 1 --source "$SRC" --target "$TGT_BASE/one" --task stream1 --jobs "$JOBS"
# three targets from the task's one slot (the default, decision 0043), then
# from a slot per target
fresh s1 s2 s3
split_file "$WORK/split3.yaml" stream3 one
stream_run stream3 3 "pgtide_stream3" 1 --config "$WORK/split3.yaml" --source "$SRC" --jobs "$JOBS"
fresh s1 s2 s3
split_file "$WORK/split3p.yaml" stream3p per_target
stream_run stream3p 3 "pgtide_stream3p_%" 3 --config "$WORK/split3p.yaml" --source "$SRC" --jobs "$JOBS"

one=$(cat "$WORK/res/one.secs")
three=$(cat "$WORK/res/three.secs")
d1=$(cat "$WORK/res/stream1.drain")
d3=$(cat "$WORK/res/stream3.drain")
d3p=$(cat "$WORK/res/stream3p.drain")
changes=$((BENCH_TXNS * 4))
{
	echo "pgtide sharded load: $(date -u +%Y-%m-%dT%H:%MZ), PostgreSQL $PG_VERSION, dataset ${size_mb} MB, JOBS=$JOBS, $(nproc) cores"
	printf '%-34s %10s %8s\n' run "time (s)" ratio
	printf '%-34s %10s %8s\n' "copy into 1 target" "$one" "1.00"
	printf '%-34s %10s %8s\n' "copy into 3 targets by hash" "$three" \
		"$(awk -v a="$three" -v b="$one" 'BEGIN { printf "%.2f", a / b }')"
	echo "rows per target: s1 $(rows s1), s2 $(rows s2), s3 $(rows s3) (routed tables; $SRC_ROWS on the source)"
	printf '%-34s %10s %8s %12s\n' "change stream ($BENCH_TXNS pgbench txns)" "drain (s)" ratio "changes/s"
	printf '%-34s %10s %8s %12s\n' "into 1 target" "$d1" "1.00" \
		"$(awk -v c="$changes" -v t="$d1" 'BEGIN { printf "%.0f", c / t }')"
	printf '%-34s %10s %8s %12s\n' "into 3 targets by bid, one slot" "$d3" \
		"$(awk -v a="$d3" -v b="$d1" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v c="$changes" -v t="$d3" 'BEGIN { printf "%.0f", c / t }')"
	printf '%-34s %10s %8s %12s\n' "  with a slot per target" "$d3p" \
		"$(awk -v a="$d3p" -v b="$d1" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v c="$changes" -v t="$d3p" 'BEGIN { printf "%.0f", c / t }')"
	printf '%-34s %10s\n' "cutover (counts validation)" "window (s)"
	printf '%-34s %10s\n' "1 target" "$(cat "$WORK/res/stream1.window")"
	printf '%-34s %10s\n' "3 targets, one fence" "$(cat "$WORK/res/stream3.window")"
	printf '%-34s %10s\n' "  with a slot per target" "$(cat "$WORK/res/stream3p.window")"
} | tee "$OUT"
log "written to $OUT"
