#!/usr/bin/env bash
# Adaptive throttle benchmark: the source's response time while pgtide copy
# loads it, with and without the adaptive throttle, and the load time the
# throttle costs. Same servers, same dataset, one run after the other.
#
# The application's view is a point read of pgbench_accounts (an index
# lookup) every PROBE_INTERVAL_MS on one psql session, timed by \timing:
# 10 s on the quiet source, then during each copy. The throttled copy uses
# the same read as its throttle.probe_query, with a bound of BOUND_MS.
# See docs/benchmarks.md for a run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

JOBS=${JOBS:-2}
BOUND_MS=${BOUND_MS:-10}
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-200}
# shellcheck source=bench/dataset_size.sh
. "$ROOT/bench/dataset_size.sh" # BENCH_SCALE, BENCH_SIZE -> size_mb
BENCH_TIMEOUT=${BENCH_TIMEOUT:-7200}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
[ -x "$PGTIDE_BIN" ] || { echo "bench: no executable at $PGTIDE_BIN" >&2; exit 2; }
[[ "$BOUND_MS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BOUND_MS must be a positive integer" >&2; exit 2; }

BENCH_NAME=throttle
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
OUT=$OUT_DIR/throttle-$STAMP.txt

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
q "$TGT_ADMIN" "CREATE DATABASE bench"
build_dataset "$size_mb"
ACCOUNTS=$(q "$SRC" "SELECT count(*) FROM pgbench_accounts")
# the subquery is computed once, so the lookup goes through the index
POINT_READ="SELECT abalance FROM public.pgbench_accounts WHERE aid = (SELECT 1 + (random() * ($ACCOUNTS - 1))::int)"

# app_probe FILE STOP: the point read every PROBE_INTERVAL_MS on one
# session, each round trip in ms into FILE, until the file STOP exists
app_probe() {
	local interval
	interval=$(awk -v ms="$PROBE_INTERVAL_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
	{
		echo '\timing on'
		while [ ! -e "$2" ]; do
			echo "$POINT_READ;"
			sleep "$interval"
		done
	} | psql "$SRC" -X -At 2>/dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' >"$1"
}

# run NAME BOUND_MS: one copy into an empty target while the application
# probe runs; BOUND_MS 0 is no throttle
run() {
	local name=$1 bound=$2 t0 t1 rc=0
	q "$TGT_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)"
	q "$TGT_ADMIN" "CREATE DATABASE bench"
	q "$SRC" "CHECKPOINT"
	q "$TGT" "CHECKPOINT"
	if [ "$bound" -gt 0 ]; then
		printf 'throttle:\n  adaptive: on\n  probe_latency: %s\n  probe_interval: %s\n  probe_query: "%s"\n' \
			"$bound" "$PROBE_INTERVAL_MS" "$POINT_READ" >"$WORK/$name.yaml"
	else
		printf 'throttle:\n  adaptive: off\n' >"$WORK/$name.yaml"
	fi
	rm -f "$WORK/stop"
	app_probe "$WORK/res/$name.lat" "$WORK/stop" &
	t0=$(now)
	timeout "$BENCH_TIMEOUT" "$PGTIDE_BIN" copy --config "$WORK/$name.yaml" \
		--source "$SRC" --target "$TGT" --task bench --jobs "$JOBS" \
		--index-jobs "$JOBS" >"$WORK/logs/$name.log" 2>&1 || rc=$?
	t1=$(now)
	touch "$WORK/stop"
	wait
	[ $rc -eq 0 ] || die "$name: pgtide copy exit status $rc (log: $WORK/logs/$name.log)"
	elapsed "$t0" "$t1" >"$WORK/res/$name.secs"
	log "$name: $(cat "$WORK/res/$name.secs") s, $(wc -l <"$WORK/res/$name.lat") probes"
}

# stats FILE: probes, median, p95 and max latency (ms)
stats() {
	sort -g "$1" | awk '{ v[NR] = $1 }
	END { if (NR == 0) { print "0 - - -"; exit }
		printf "%d %.2f %.2f %.2f", NR, v[int(NR * 0.5 + 0.999999)],
			v[int(NR * 0.95 + 0.999999)], v[NR] }'
}

# the quiet source first, for reference
rm -f "$WORK/stop"
app_probe "$WORK/res/quiet.lat" "$WORK/stop" &
sleep 10
touch "$WORK/stop"
wait

run unthrottled 0
run throttled "$BOUND_MS"

slowdowns=$(grep -c 'the load slows down' "$WORK/logs/throttled.log" || true)
{
	echo "pgtide adaptive throttle: $(date -u +%Y-%m-%dT%H:%MZ), PostgreSQL $PG_VERSION, dataset ${size_mb} MB, JOBS=$JOBS, $(nproc) cores"
	echo "application probe: a point read of pgbench_accounts every ${PROBE_INTERVAL_MS} ms on one psql session"
	printf '%-26s %9s %7s %9s %9s %9s\n' run "load (s)" probes "p50 (ms)" "p95 (ms)" "max (ms)"
	for r in quiet unthrottled throttled; do
		read -r n p50 p95 max <<<"$(stats "$WORK/res/$r.lat")"
		case $r in
		quiet) label="no load" secs="-" ;;
		unthrottled) label="load, no throttle" secs=$(cat "$WORK/res/$r.secs") ;;
		*) label="load, adaptive ${BOUND_MS} ms" secs=$(cat "$WORK/res/$r.secs") ;;
		esac
		printf '%-26s %9s %7s %9s %9s %9s\n' "$label" "$secs" "$n" "$p50" "$p95" "$max"
	done
	echo "throttled run: ${slowdowns:-0} slowdowns; its changes of state:"
	grep -h "throttle: " "$WORK/logs/throttled.log" | sed 's/^/  log: /' | head -n 12
} | tee "$OUT"
log "written to $OUT"
