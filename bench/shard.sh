#!/usr/bin/env bash
# Sharded full load: the benchmark dataset copied into one target, then
# split by hash into three targets, one run after the other on the same
# servers. The three targets are three databases of the target server, so
# both runs write through the same server and disks: the ratio is what
# routing costs (each target's rows read from the source with the routing
# condition on every chunk), not what three machines would gain.
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

fresh s1 s2 s3
cat >"$WORK/split.yaml" <<YAML
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
timed three --config "$WORK/split.yaml"
total=$(($(rows s1) + $(rows s2) + $(rows s3)))
[ "$total" = "$SRC_ROWS" ] || die "three targets: $total rows in all, the source has $SRC_ROWS"

one=$(cat "$WORK/res/one.secs")
three=$(cat "$WORK/res/three.secs")
{
	echo "pgtide sharded load: $(date -u +%Y-%m-%dT%H:%MZ), PostgreSQL $PG_VERSION, dataset ${size_mb} MB, JOBS=$JOBS, $(nproc) cores"
	printf '%-34s %10s %8s\n' run "time (s)" ratio
	printf '%-34s %10s %8s\n' "copy into 1 target" "$one" "1.00"
	printf '%-34s %10s %8s\n' "copy into 3 targets by hash" "$three" \
		"$(awk -v a="$three" -v b="$one" 'BEGIN { printf "%.2f", a / b }')"
	echo "rows per target: s1 $(rows s1), s2 $(rows s2), s3 $(rows s3) (routed tables; $SRC_ROWS on the source)"
} | tee "$OUT"
log "written to $OUT"
