#!/usr/bin/env bash
# The HTTP surface's cost to the full load: pgtide copy of the full-load
# dataset on the same two servers in one run, three ways, alternated
# BENCH_ROUNDS times: without --http; with --http and a poller that asks
# what the dashboard asks (/status and /history every two seconds, which
# reads the state and the source's catalog on the surface's own sessions);
# with --http and the dashboard itself open in headless Chromium. The
# result is each one's time over the time without. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------- settings --
JOBS=${JOBS:-2}
BENCH_SCALE=${BENCH_SCALE:-small}
# shellcheck source=bench/dataset_size.sh
. "$ROOT/bench/dataset_size.sh" # BENCH_SCALE, BENCH_SIZE -> size_mb
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: JOBS must be a positive integer" >&2; exit 2; }
[[ "$BENCH_ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_ROUNDS must be a positive integer" >&2; exit 2; }
[ -x "$PGTIDE_BIN" ] || { echo "bench: no executable at $PGTIDE_BIN (make first)" >&2; exit 2; }

BENCH_NAME=http
CLIENT_PID=""
bench_on_exit() { [ -z "$CLIENT_PID" ] || kill "$CLIENT_PID" 2>/dev/null || true; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh" # environment, log/die, apt_install, work space, exit trap, servers

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	apt_install chromium || die "chromium is not installed and cannot be installed"
	CHROMIUM=$(command -v chromium)
fi
OUT=$OUT_DIR/http-$STAMP.txt

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
q "$TGT_ADMIN" "CREATE DATABASE bench"
build_dataset "$size_mb"
DATA_BYTES=$(q "$SRC" "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")
ROWS_SQL="SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'public'"

reset_target() {
	q "$TGT_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)"
	q "$TGT_ADMIN" "CREATE DATABASE bench"
	q "$TGT_ADMIN" "CHECKPOINT"
	q "$SRC_ADMIN" "CHECKPOINT"
}

# poll PORT: asks what the dashboard asks, every two seconds, until killed
poll() {
	while :; do
		curl -sf -o /dev/null "http://127.0.0.1:$1/status" || true
		curl -sf -o /dev/null "http://127.0.0.1:$1/history" || true
		sleep 2
	done
}

# copy_once NAME CLIENT [--http PORT]: one pgtide copy into an empty target;
# its seconds in res/NAME.secs. With --http, the client (poll or chromium)
# starts as soon as the process serves and runs until the copy ends.
copy_once() {
	local name=$1 client=$2 port="" t0 t1 rc=0 pid seen=0
	shift 2
	[ $# -eq 0 ] || port=$2
	reset_target
	log "---- $name"
	t0=$(now)
	"$PGTIDE_BIN" copy --source "$SRC" --target "$TGT" --task bench \
		--jobs "$JOBS" --index-jobs "$JOBS" "$@" >"$WORK/logs/$name.log" 2>&1 &
	pid=$!
	if [ -n "$port" ]; then
		until grep -q "serving metrics" "$WORK/logs/$name.log" 2>/dev/null; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if [ "$client" = chromium ]; then
			mkdir -p "$WORK/chromium-$name"
			chromium_args=(--headless=new --disable-gpu --no-first-run --disable-background-networking
				--disable-component-update --disable-sync --disable-dev-shm-usage
				"--user-data-dir=$WORK/chromium-$name" "http://127.0.0.1:$port/")
			[ "$(id -u)" -ne 0 ] || chromium_args=(--no-sandbox "${chromium_args[@]}")
			"$CHROMIUM" "${chromium_args[@]}" >"$WORK/logs/$name-chromium.log" 2>&1 &
		else
			poll "$port" &
		fi
		CLIENT_PID=$!
	fi
	while kill -0 "$pid" 2>/dev/null; do
		# the page's polls show as the surface's session on the target
		if [ -n "$port" ] && [ $seen = 0 ] &&
			[ "$(q "$TGT_ADMIN" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgtide http'" 2>/dev/null)" != 0 ]; then
			seen=1
		fi
		sleep 0.2
	done
	wait "$pid" || rc=$?
	t1=$(now)
	if [ -n "$CLIENT_PID" ]; then
		kill "$CLIENT_PID" 2>/dev/null || true
		wait "$CLIENT_PID" 2>/dev/null || true
		CLIENT_PID=""
	fi
	[ $rc -eq 0 ] || { tail -n 15 "$WORK/logs/$name.log" >&2; die "$name: pgtide copy exit status $rc"; }
	[ "$(q "$TGT" "$ROWS_SQL")" != "" ] || die "$name: no rows on the target"
	if [ -n "$port" ] && [ $seen = 0 ]; then
		die "$name: the client's polls never reached the target (no 'pgtide http' session seen)"
	fi
	elapsed "$t0" "$t1" >"$WORK/res/$name.secs"
	log "$name: $(cat "$WORK/res/$name.secs") s"
}

PORT=$(pick_port)
for r in $(seq 1 "$BENCH_ROUNDS"); do
	copy_once "without-$r" none
	copy_once "poll-$r" poll --http "$PORT"
	copy_once "page-$r" chromium --http "$PORT"
done

# ------------------------------------------------------------------- report --
sum() { awk '{ s += $1 } END { printf "%.2f", s }' "$WORK"/res/"$1"-*.secs; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
WITHOUT=$(sum without)
POLL=$(sum poll)
PAGE=$(sum page)
{
	echo "pgtide HTTP surface benchmark, $(date '+%Y-%m-%d %H:%M:%S')"
	echo "host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $PG_VERSION; $("$CHROMIUM" --version 2>/dev/null | head -n1)"
	echo "JOBS=$JOBS; dataset $(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }') MB, BENCH_SIZE=$BENCH_SIZE; $BENCH_ROUNDS rounds, alternated"
	echo
	printf '%-8s %12s %12s %12s\n' round without_s poll_s page_s
	for r in $(seq 1 "$BENCH_ROUNDS"); do
		printf '%-8s %12s %12s %12s\n' "$r" "$(cat "$WORK/res/without-$r.secs")" \
			"$(cat "$WORK/res/poll-$r.secs")" "$(cat "$WORK/res/page-$r.secs")"
	done
	printf '%-8s %12s %12s %12s\n' total "$WITHOUT" "$POLL" "$PAGE"
	echo
	echo "--http, polled as the dashboard polls / without: $(ratio "$POLL" "$WITHOUT")"
	echo "--http, the dashboard open in Chromium / without: $(ratio "$PAGE" "$WITHOUT")"
} >"$WORK/report.txt"
cp "$WORK/report.txt" "$OUT"
echo
cat "$WORK/report.txt"
echo
echo "written to $OUT (logs in $OUT_DIR/http-$STAMP.logs/)"
