#!/usr/bin/env bash
# Cutover benchmark: the write-unavailability window of `pgtide cutover` (from
# the fence going up to the target being the one to write to) for a pgbench
# database under `pgbench -c 4` load, several times; the median is the figure.
# Each run is a whole migration: fresh target, pgtide migrate, load running,
# cutover with the revoke fence, then pgtide clean.
#
# BENCH_RESYNC=1 measures what the stream cannot carry costs the window: the
# runs are made twice in the same script, first as they are, then with 100
# large objects (10 MB in all) and a 50 MB unlogged table on the source,
# which cutover brings up to date while fenced; both halves use the
# read_only fence (the revoke fence cannot stop writes to large objects).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_PGBENCH_SCALE=${BENCH_PGBENCH_SCALE:-50}
BENCH_LOAD_SECS=${BENCH_LOAD_SECS:-10} # load before the cutover starts
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RESYNC=${BENCH_RESYNC:-0}
FENCE=revoke
[ "$BENCH_RESYNC" = 1 ] && FENCE=read_only
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
JOBS=2
CLIENTS=4 THREADS=2
APP=bench_app # the application's role, fenced by revoking its writes

for v in BENCH_RUNS BENCH_PGBENCH_SCALE BENCH_LOAD_SECS; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done

BENCH_NAME=cutover
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
command -v pgbench >/dev/null || die "pgbench is missing (PostgreSQL's client programs)"
[ -x "$PGTIDE_BIN" ] || die "no pgtide binary at $PGTIDE_BIN (run make)"
OUT=$OUT_DIR/cutover-$STAMP.txt

: >"$WORK/pids"
bench_on_exit() {
	local p
	while read -r p; do kill -TERM "$p" 2>/dev/null; done <"$WORK/pids"
	sleep 0.5
}

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
log "pgbench -i -s $BENCH_PGBENCH_SCALE on the source"
pgbench -h 127.0.0.1 -p "$SRC_PORT" -U postgres -i -q -s "$BENCH_PGBENCH_SCALE" bench >"$WORK/logs/pgbench-init.log" 2>&1 ||
	die "pgbench -i failed"
psql "$SRC" -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY;
CREATE ROLE $APP LOGIN;
GRANT USAGE ON SCHEMA public TO $APP;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO $APP;
SQL
SIZE=$(q "$SRC" "SELECT pg_size_pretty(pg_database_size('bench'))")

# one migration and cutover; its window (s) is appended to windows
windows=()
one_run() {
	local run=$1 task=cut$1 mig pgb w src_fp tgt_fp
	# the application may write again: each run fences it anew
	q "$SRC_ADMIN" "ALTER DATABASE bench RESET default_transaction_read_only"
	q "$SRC" "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO $APP"
	q "$TGT_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)"
	q "$TGT_ADMIN" "CREATE DATABASE bench"
	log "run $run: pgtide migrate --task $task"
	"$PGTIDE_BIN" migrate --source "$SRC" --target "$TGT" --task "$task" --jobs "$JOBS" \
		--progress-interval 1 >"$WORK/logs/$task-migrate.out" 2>"$WORK/logs/$task-migrate.log" &
	mig=$!
	echo "$mig" >>"$WORK/pids"
	for _ in $(seq 1200); do
		grep -q "streaming from slot" "$WORK/logs/$task-migrate.log" && break
		kill -0 "$mig" 2>/dev/null || die "pgtide migrate exited; see $WORK/logs/$task-migrate.log"
		sleep 0.25
	done
	pgbench -h 127.0.0.1 -p "$SRC_PORT" -U "$APP" -n -c "$CLIENTS" -j "$THREADS" -T 3600 bench \
		>"$WORK/logs/$task-pgbench.log" 2>&1 &
	pgb=$!
	echo "$pgb" >>"$WORK/pids"
	sleep "$BENCH_LOAD_SECS"
	log "run $run: pgtide cutover under load"
	"$PGTIDE_BIN" cutover --source "$SRC" --target "$TGT" --task "$task" \
		--fence "$FENCE" --fence-role "$APP" >"$WORK/logs/$task-cutover.out" 2>"$WORK/logs/$task-cutover.log" ||
		{ cat "$WORK/logs/$task-cutover.log" >&2; die "cutover failed in run $run"; }
	wait "$mig" || die "pgtide migrate did not exit cleanly after the cutover"
	kill "$pgb" 2>/dev/null || true
	wait "$pgb" 2>/dev/null || true
	w=$(sed -n 's/.*write-unavailability window: \([0-9.]*\) s.*/\1/p' "$WORK/logs/$task-cutover.out")
	[ -n "$w" ] || die "no window in the cutover report of run $run"
	src_fp=$(q "$SRC" "SELECT count(*) || '/' || sum(delta) FROM pgbench_history")
	tgt_fp=$(q "$TGT" "SELECT count(*) || '/' || sum(delta) FROM pgbench_history")
	[ "$src_fp" = "$tgt_fp" ] || die "run $run: pgbench_history differs: source $src_fp, target $tgt_fp"
	log "run $run: window $w s (pgbench_history $src_fp on both sides)"
	windows+=("$w")
	"$PGTIDE_BIN" clean --source "$SRC" --target "$TGT" --task "$task" >/dev/null 2>&1 ||
		die "pgtide clean failed in run $run"
}

for run in $(seq "$BENCH_RUNS"); do one_run "$run"; done
plain=("${windows[@]}")
if [ "$BENCH_RESYNC" = 1 ]; then
	log "adding 100 large objects (10 MB) and a 50 MB unlogged table"
	q "$SRC_ADMIN" "ALTER DATABASE bench RESET default_transaction_read_only"
	psql "$SRC" -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 6400), 'hex'))
  FROM generate_series(1, 100) g;
CREATE UNLOGGED TABLE bench_cache (id int PRIMARY KEY, v text);
INSERT INTO bench_cache SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 170000) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON bench_cache TO $APP;
SQL
	log "unlogged table: $(q "$SRC" "SELECT pg_size_pretty(pg_table_size('bench_cache'))"), large objects: $(q "$SRC" "SELECT count(*) FROM pg_largeobject_metadata")"
	windows=()
	for run in $(seq "$BENCH_RUNS"); do one_run "$((BENCH_RUNS + run))"; done
	extra=("${windows[@]}")
	windows=("${plain[@]}")
fi

median=$(printf '%s\n' "${windows[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
{
	echo "pgtide cutover: write-unavailability window under pgbench -c $CLIENTS -j $THREADS"
	echo "PostgreSQL $PG_VERSION, pgbench scale $BENCH_PGBENCH_SCALE ($SIZE), $(nproc) cores"
	echo "runs: ${windows[*]} s"
	echo "median of $BENCH_RUNS: $median s (target: under 2 s)"
	if [ "$BENCH_RESYNC" = 1 ]; then
		m2=$(printf '%s\n' "${extra[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
		echo "with 100 large objects (10 MB) and a 50 MB unlogged table: ${extra[*]} s"
		echo "median of $BENCH_RUNS: $m2 s, $(awk -v a="$m2" -v b="$median" 'BEGIN { printf "%.1f", a / b }')x the window without them"
	fi
	echo
	echo "one run's report:"
	cat "$WORK/logs/cut$([ "$BENCH_RESYNC" = 1 ] && echo $((BENCH_RUNS + 1)) || echo 1)-cutover.out"
} | tee "$OUT"
log "written to $OUT"
