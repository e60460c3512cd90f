#!/usr/bin/env bash
# Change-stream benchmark: pgtide migrate against native logical replication on
# the same two throwaway PostgreSQL servers, for two pgbench workloads (TPC-B-like,
# mostly inserts): how fast each tool applies the source's changes, how far it
# falls behind, how long it takes to catch up, and how steady it is at half the
# source's maximum rate.
# See bench/README.md for the knobs and how to read the result.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------- settings --
BENCH_SECS=${BENCH_SECS:-60}
BENCH_MAXRATE_SECS=${BENCH_MAXRATE_SECS:-20}
BENCH_PGBENCH_SCALE=${BENCH_PGBENCH_SCALE:-10}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-tpcb insert}
BENCH_TOOLS=${BENCH_TOOLS:-native pgtide}
BENCH_HEARTBEAT=${BENCH_HEARTBEAT:-0.5}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
JOBS=2                 # the servers' worker settings (bench/lib.sh), as full_load.sh's default
CLIENTS=4 THREADS=2    # pgbench -c and -j, for every run
SKIP_SECS=5            # the start of a half-rate run left out of its lag figures
# The samplers' period: psql's \watch keeps a fixed period, so samplers at
# exactly the heartbeat's 0.5 s would meet it at the same point of its cycle for
# a whole run and report that fixed offset instead of a lag; 0.47 s drifts
# through the cycle.
SAMPLE_EVERY=0.47
TASK=bench             # pgtide's task: its slot is pgtide_bench
NATIVE_SUB=bench_sub   # the subscription, and its slot on the source

posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "bench: $1 must be a positive integer" >&2; exit 2; }; }
posint BENCH_SECS "$BENCH_SECS"
posint BENCH_MAXRATE_SECS "$BENCH_MAXRATE_SECS"
posint BENCH_PGBENCH_SCALE "$BENCH_PGBENCH_SCALE"
posint BENCH_TIMEOUT "$BENCH_TIMEOUT"
if ! [[ "$BENCH_HEARTBEAT" =~ ^[0-9]*[.]?[0-9]+$ ]] || ! awk -v h="$BENCH_HEARTBEAT" 'BEGIN { exit !(h >= 0.05) }'; then
	echo "bench: BENCH_HEARTBEAT must be a number of seconds, at least 0.05" >&2
	exit 2
fi
[ "$BENCH_SECS" -gt $((SKIP_SECS + 2)) ] || { echo "bench: BENCH_SECS must be above $((SKIP_SECS + 2))" >&2; exit 2; }
for w in $BENCH_WORKLOADS; do
	case "$w" in tpcb | insert) ;; *) echo "bench: unknown workload '$w' in BENCH_WORKLOADS (tpcb insert)" >&2; exit 2 ;; esac
done
for t in $BENCH_TOOLS; do
	case "$t" in native | pgtide) ;; *) echo "bench: unknown tool '$t' in BENCH_TOOLS (native pgtide)" >&2; exit 2 ;; esac
done
if [ -z "$BENCH_WORKLOADS" ] || [ -z "$BENCH_TOOLS" ]; then echo "bench: nothing to run" >&2; exit 2; fi

BENCH_NAME=cdc
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh" # environment, log/die, apt_install, work space, exit trap, servers
command -v pgbench >/dev/null || die "pgbench is missing (PostgreSQL's client programs)"
OUT=$OUT_DIR/cdc-$STAMP.txt

# Background processes (the tools, heartbeats, samplers) are listed here, so that
# the exit trap stops them, and only them, before it stops the servers.
: >"$WORK/pids"
track() { echo "$1" >>"$WORK/pids"; }
untrack() { sed -i "/^$1\$/d" "$WORK/pids"; }
bench_on_exit() {
	local p s
	while read -r p; do
		kill -TERM "$p" 2>/dev/null
	done <"$WORK/pids"
	sleep 0.5
	for s in src tgt; do
		[ -f "$WORK/pg/$s.log" ] && cp "$WORK/pg/$s.log" "$WORK/logs/server-$s.log"
	done
}

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
q "$TGT_ADMIN" "CREATE DATABASE bench"

# --------------------------------------------------------------- workloads --
cat >"$WORK/insert.sql" <<'EOF'
\set account random(1, 1000000)
INSERT INTO bench_insert (account, amount, note) SELECT :account, (random() * 1000)::int, md5(:account::text || '/' || g) FROM generate_series(1, 10) g;
EOF
declare -A WL_LABEL=([tpcb]="pgbench's built-in TPC-B-like script: 3 updates + 1 insert per transaction"
	[insert]="custom script: one INSERT of 10 rows per transaction into bench_insert (bigserial key, 4 columns)")
declare -A WL_CHANGES=([tpcb]=4 [insert]=10) # row changes per transaction
wl_args() { # the pgbench arguments that pick workload $1's script
	case "$1" in
	tpcb) ;;
	insert) printf '%s\n' -f "$WORK/insert.sql" ;;
	esac
}
declare -A LABEL=([native]="logical replication" [pgtide]="pgtide migrate")

# Every replicated table's content in one line; the heartbeat table is left out.
FP_SQL="SELECT concat_ws(' ',
	'accounts=' || (SELECT count(*) || '/' || coalesce(sum(abalance), 0) FROM pgbench_accounts),
	'branches=' || (SELECT count(*) || '/' || coalesce(sum(bbalance), 0) FROM pgbench_branches),
	'tellers=' || (SELECT count(*) || '/' || coalesce(sum(tbalance), 0) FROM pgbench_tellers),
	'history=' || (SELECT count(*) || '/' || coalesce(sum(delta), 0) FROM pgbench_history),
	'inserts=' || (SELECT count(*) || '/' || coalesce(sum(amount), 0) FROM bench_insert))"
NTABLES=6 # pgbench's 4, bench_insert, heartbeat

# ------------------------------------------------------------------ helpers --
pgb() { # pgbench against the source's bench database
	pgbench -h 127.0.0.1 -p "$SRC_PORT" -U postgres "$@" bench
}

# reset_all: fresh databases on both servers, nothing of a previous tool left
# (subscriptions, replication origins, slots, publications), and the dataset.
reset_all() {
	local left
	if [ "$(q "$TGT_ADMIN" "SELECT count(*) FROM pg_database WHERE datname = 'bench'")" = 1 ]; then
		psql "$TGT" -X -q >/dev/null 2>&1 <<'SQL' || true
SELECT format('ALTER SUBSCRIPTION %I DISABLE', s.subname) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database() \gexec
SELECT format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', s.subname) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database() \gexec
SELECT format('DROP SUBSCRIPTION %I', s.subname) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database() \gexec
SQL
	fi
	q "$TGT_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)"
	q "$TGT_ADMIN" "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin" >/dev/null
	q "$TGT_ADMIN" "CREATE DATABASE bench"
	q "$SRC_ADMIN" "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL" >/dev/null
	for _ in $(seq 50); do
		left=$(q "$SRC_ADMIN" "SELECT count(*) FROM pg_replication_slots WHERE active")
		[ "$left" = 0 ] && break
		sleep 0.2
	done
	q "$SRC_ADMIN" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
	q "$SRC_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)" # its publications go with it
	q "$SRC_ADMIN" "CREATE DATABASE bench"
	pgb -i -q -s "$BENCH_PGBENCH_SCALE" >"$WORK/logs/$KEY-pgbench-init.log" 2>&1 ||
		{ tail -n 20 "$WORK/logs/$KEY-pgbench-init.log" >&2; fail "pgbench -i failed"; }
	psql "$SRC" -X -q -v ON_ERROR_STOP=1 >>"$WORK/logs/$KEY-pgbench-init.log" 2>&1 <<'SQL' || fail "dataset setup failed"
-- both tools need a key on every table
ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY;
CREATE TABLE bench_insert (
	id bigserial PRIMARY KEY,
	account int NOT NULL,
	amount int NOT NULL,
	note text,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE heartbeat (id bigserial PRIMARY KEY, ts timestamptz NOT NULL);
VACUUM ANALYZE;
CHECKPOINT;
SQL
	q "$TGT_ADMIN" "CHECKPOINT"
}

fail() { echo "$1" >"$WORK/res/$KEY.why"; return 1; }
res() { cat "$WORK/res/$1" 2>/dev/null || true; }

pgtide_alive() { [ "$TOOL" != pgtide ] || kill -0 "$TOOL_PID" 2>/dev/null; }

# ---------------------------------------------------------- tool: native --
start_native() {
	local deadline left
	{ pg_dump --schema-only -d "$SRC" | psql "$TGT" -X -q -v ON_ERROR_STOP=1; } >"$TOOL_LOG" 2>&1 ||
		fail "schema copy failed"
	q "$SRC" "CREATE PUBLICATION bench_pub FOR ALL TABLES"
	q "$TGT" "CREATE SUBSCRIPTION $NATIVE_SUB
		CONNECTION 'host=127.0.0.1 port=$SRC_PORT dbname=bench user=postgres'
		PUBLICATION bench_pub WITH (copy_data = true)" >>"$TOOL_LOG" 2>&1 ||
		fail "CREATE SUBSCRIPTION failed"
	deadline=$(($(date +%s) + BENCH_TIMEOUT))
	while :; do
		left=$(q "$TGT" "SELECT count(*) FILTER (WHERE srsubstate <> 'r') || '/' || count(*) FROM pg_subscription_rel")
		[ "${left%/*}" = 0 ] && [ "${left#*/}" = "$NTABLES" ] && break
		[ "$(date +%s)" -lt "$deadline" ] || fail "not synchronised after ${BENCH_TIMEOUT}s ($left tables left)"
		sleep 0.2
	done
	SLOT=$NATIVE_SUB
}

stop_native() {
	q "$TGT" "DROP SUBSCRIPTION $NATIVE_SUB" >>"$TOOL_LOG" 2>&1 || fail "DROP SUBSCRIPTION failed"
	q "$SRC" "DROP PUBLICATION bench_pub"
}

# ---------------------------------------------------------- tool: pgtide --
start_pgtide() {
	local deadline rc=0
	[ -x "$PGTIDE_BIN" ] || fail "no executable at $PGTIDE_BIN"
	/usr/bin/time -f %M -o "$WORK/res/$KEY.rss" \
		"$PGTIDE_BIN" migrate --source "$SRC" --target "$TGT" --task "$TASK" \
		--progress-interval 1 >"$TOOL_LOG" 2>&1 &
	TOOL_PID=$!
	track "$TOOL_PID"
	deadline=$(($(date +%s) + BENCH_TIMEOUT))
	until grep -q '\] streaming from slot' "$TOOL_LOG"; do # its log line, not an error about it
		if ! kill -0 "$TOOL_PID" 2>/dev/null; then
			wait "$TOOL_PID" || rc=$?
			fail "pgtide exited with status $rc before streaming"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || fail "not streaming after ${BENCH_TIMEOUT}s"
		sleep 0.2
	done
	PGTIDE_PID=$(ps -o pid= --ppid "$TOOL_PID" | head -n1 | tr -d ' ')
	[ -n "$PGTIDE_PID" ] && track "$PGTIDE_PID"
	SLOT=pgtide_$TASK
}

stop_pgtide() { # SIGTERM, then pgtide must exit 0 within a minute
	local rc=0
	[ -n "${TOOL_PID:-}" ] || return 0
	kill -TERM "${PGTIDE_PID:-$TOOL_PID}" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$TOOL_PID" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$TOOL_PID" 2>/dev/null; then
		kill_pgtide
		fail "pgtide did not exit within 60 s of SIGTERM"
	fi
	wait "$TOOL_PID" || rc=$?
	untrack "$TOOL_PID"
	[ -z "${PGTIDE_PID:-}" ] || untrack "$PGTIDE_PID"
	TOOL_PID=""
	[ -s "$WORK/res/$KEY.rss" ] &&
		grep -E '^[0-9]+$' "$WORK/res/$KEY.rss" | tail -n1 | awk '{ printf "%.0f", $1 / 1024 }' >"$WORK/res/$KEY.rssmb"
	[ "$rc" -eq 0 ] || fail "pgtide exited with status $rc after SIGTERM"
}

kill_pgtide() { # on the way out of a failed run: stop pgtide, whatever it says
	local p
	[ -n "${TOOL_PID:-}" ] || return 0
	[ -n "${PGTIDE_PID:-}" ] || PGTIDE_PID=$(ps -o pid= --ppid "$TOOL_PID" | head -n1 | tr -d ' ')
	kill -TERM "${PGTIDE_PID:-$TOOL_PID}" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$TOOL_PID" 2>/dev/null || break
		sleep 0.2
	done
	for p in $PGTIDE_PID $TOOL_PID; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait "$TOOL_PID" 2>/dev/null || true
	for p in $PGTIDE_PID $TOOL_PID; do untrack "$p"; done
	TOOL_PID="" PGTIDE_PID=""
}

# ------------------------------------------------- heartbeat and sampling --
start_heartbeat() { # a row with the source's clock every BENCH_HEARTBEAT s, for the lag in seconds
	psql "$SRC" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>>"$WORK/logs/$KEY-heartbeat.log" \
		<<<"INSERT INTO heartbeat (ts) VALUES (clock_timestamp()) \\watch $BENCH_HEARTBEAT" &
	HB_PID=$!
	track "$HB_PID"
}

stop_bg() { # stop_bg PID...: stop background processes of ours and reap them
	local p
	for p in "$@"; do
		[ -n "$p" ] || continue
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		untrack "$p"
	done
}

# Every SAMPLE_EVERY s: lag in bytes (source WAL position - the slot's confirmed flush
# position) and in seconds (now - newest heartbeat on the target), each line
# "epoch value".
start_samplers() { # start_samplers TAG
	psql "$SRC" -X -A -t -q -F ' ' >"$WORK/res/$KEY-$1.bytes" 2>>"$WORK/logs/$KEY-samplers.log" \
		<<<"SELECT extract(epoch FROM clock_timestamp()), pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT' \\watch $SAMPLE_EVERY" &
	SAMPLERS=($!)
	track "$!"
	psql "$TGT" -X -A -t -q -F ' ' >"$WORK/res/$KEY-$1.secs" 2>>"$WORK/logs/$KEY-samplers.log" \
		<<<"SELECT extract(epoch FROM clock_timestamp()), extract(epoch FROM clock_timestamp() - max(ts)) FROM heartbeat \\watch $SAMPLE_EVERY" &
	SAMPLERS+=($!)
	track "$!"
}

# wait_drain LSN HEARTBEAT_ID: until the slot has confirmed LSN and the target
# has that heartbeat row (HB_SEEN: when it was first seen there). Fails after
# BENCH_TIMEOUT or when pgtide dies.
wait_drain() {
	local deadline=$(($(date +%s) + BENCH_TIMEOUT)) ok
	HB_SEEN=""
	while :; do
		if [ -n "$HB_SEEN" ] || [ "$(q "$TGT" "SELECT coalesce(max(id), 0) >= $2 FROM heartbeat")" = t ]; then
			[ -n "$HB_SEEN" ] || HB_SEEN=$(now)
			ok=$(q "$SRC" "SELECT confirmed_flush_lsn >= '$1' FROM pg_replication_slots WHERE slot_name = '$SLOT'")
			[ "$ok" = t ] && return 0
		fi
		pgtide_alive || { fail "pgtide exited while streaming"; return 1; }
		[ "$(date +%s)" -lt "$deadline" ] || { fail "not caught up ${BENCH_TIMEOUT}s after the load ended"; return 1; }
		sleep 0.1
	done
}

caught_up() { # wait until the target has everything written so far
	wait_drain "$(q "$SRC" "SELECT pg_current_wal_lsn()")" "$(q "$SRC" "SELECT coalesce(max(id), 0) FROM heartbeat")"
}

# CPU time of the tool's processes, to tell what a run cost besides its speed:
# the slot's WAL sender on the source, the tool's sessions on the target (native:
# the apply worker; pgtide: its sessions), and pgtide's own process.
cpu_pids() { # prints "GROUP PID" lines
	local p
	for p in $(q "$SRC" "SELECT active_pid FROM pg_replication_slots WHERE slot_name = '$SLOT' AND active_pid IS NOT NULL"); do
		echo "walsender $p"
	done
	if [ "$TOOL" = native ]; then
		p=$(q "$TGT" "SELECT pid FROM pg_stat_subscription WHERE subname = '$NATIVE_SUB' AND pid IS NOT NULL")
	else
		p=$(q "$TGT" "SELECT pid FROM pg_stat_activity WHERE datname = 'bench' AND application_name LIKE 'pgtide%'")
		[ -z "${PGTIDE_PID:-}" ] || echo "process $PGTIDE_PID"
	fi
	for p in $p; do echo "target $p"; done
}
cpu_ticks() { # cpu_ticks PIDFILE: "GROUP PID TICKS" for each process still there
	local g p
	while read -r g p; do
		awk -v g="$g" -v p="$p" '{ sub(/^.*\) /, ""); split($0, f, " "); print g, p, f[12] + f[13] }' "/proc/$p/stat" 2>/dev/null || true
	done <"$1"
}
host_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $5 }' /proc/stat; } # busy idle

# run_load TAG SECONDS [PGBENCH ARGS...]: the workload at full speed (or as the
# arguments say) with the samplers on, then the wait until the target caught up.
# Writes res/KEY-TAG.{t0,t1,t2,tps,txns}: pgbench's start and end, caught up.
run_load() {
	local tag=$1 secs=$2 t0 t1 t2 end_lsn hb rc=0
	shift 2
	start_samplers "$tag"
	cpu_pids >"$WORK/res/$KEY-$tag.cpupids"
	cpu_ticks "$WORK/res/$KEY-$tag.cpupids" >"$WORK/res/$KEY-$tag.cpu0"
	host_ticks >"$WORK/res/$KEY-$tag.host0"
	t0=$(now)
	# shellcheck disable=SC2046 # wl_args prints one argument a line, none with spaces
	timeout $((secs + BENCH_TIMEOUT)) pgbench -h 127.0.0.1 -p "$SRC_PORT" -U postgres -n \
		-c "$CLIENTS" -j "$THREADS" -T "$secs" "$@" $(wl_args "$WL") bench \
		>"$WORK/logs/$KEY-$tag.pgbench.log" 2>&1 || rc=$?
	t1=$(now)
	end_lsn=$(q "$SRC" "SELECT pg_current_wal_lsn()")
	hb=$(q "$SRC" "SELECT coalesce(max(id), 0) FROM heartbeat")
	if [ $rc -ne 0 ]; then
		stop_bg "${SAMPLERS[@]}"
		tail -n 5 "$WORK/logs/$KEY-$tag.pgbench.log" | sed 's/^/    /' >&2
		fail "pgbench ($tag run) exit status $rc"
	fi
	wait_drain "$end_lsn" "$hb" || { stop_bg "${SAMPLERS[@]}"; return 1; }
	t2=$(now)
	cpu_ticks "$WORK/res/$KEY-$tag.cpupids" >"$WORK/res/$KEY-$tag.cpu1"
	host_ticks >"$WORK/res/$KEY-$tag.host1"
	stop_bg "${SAMPLERS[@]}"
	SAMPLERS=()
	echo "$t0" >"$WORK/res/$KEY-$tag.t0"
	echo "$t1" >"$WORK/res/$KEY-$tag.t1"
	echo "$t2" >"$WORK/res/$KEY-$tag.t2"
	echo "$HB_SEEN" >"$WORK/res/$KEY-$tag.hb"
	sed -nE 's/^tps = ([0-9.]+).*/\1/p' "$WORK/logs/$KEY-$tag.pgbench.log" | head -n1 >"$WORK/res/$KEY-$tag.tps"
	sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$WORK/logs/$KEY-$tag.pgbench.log" |
		head -n1 >"$WORK/res/$KEY-$tag.txns"
	if [ ! -s "$WORK/res/$KEY-$tag.tps" ] || [ ! -s "$WORK/res/$KEY-$tag.txns" ]; then
		fail "no tps in pgbench's output ($tag run)"
	fi
	log "$TOOL: $tag run: $(res "$KEY-$tag.tps") tps for $(elapsed "$t0" "$t1") s, caught up $(elapsed "$t1" "$t2") s later"
}

# verify TAG: the target's tables equal the source's (the load is over and the
# target caught up, so they must be equal now; a late match is noted).
verify() {
	local src tgt i
	src=$(q "$SRC" "$FP_SQL")
	for i in $(seq 0 10); do
		tgt=$(q "$TGT" "$FP_SQL" 2>&1) || tgt="error: $tgt"
		if [ "$src" = "$tgt" ]; then
			[ "$i" -eq 0 ] || echo "$1 run: the target matched the source only $i s after it had caught up" >>"$WORK/res/$KEY.notes"
			return 0
		fi
		sleep 1
	done
	echo "wrong: $1 run: source has $src; target has $tgt" >"$WORK/res/$KEY.status"
	log "$TOOL: result is WRONG after the $1 run: source $src; target $tgt"
}

# -------------------------------------------------------------------- run --
# bench_one: one workload ($WL) with one tool ($TOOL), in a subshell with errexit.
bench_one() {
	local half s
	SAMPLERS=() HB_PID="" TOOL_PID="" PGTIDE_PID="" SLOT=""
	trap 'stop_bg "${SAMPLERS[@]}" "$HB_PID"; kill_pgtide' EXIT
	reset_all
	log "$TOOL: starting (schema, initial copy)"
	"start_$TOOL"
	start_heartbeat
	sleep 1
	caught_up
	log "$TOOL: streaming and caught up"
	for s in src tgt; do stat -c %s "$WORK/pg/$s.log" >"$WORK/res/$KEY.$s-log-from"; done
	echo ok >"$WORK/res/$KEY.status"

	# The same full-speed pass with every tool, so that each full-speed run
	# starts from the same state (page cache, full-page writes since the
	# checkpoint); the first one gives the workload's maximum rate.
	if [ ! -s "$WORK/res/$WL.maxtps" ]; then
		log "$TOOL: measuring the source's maximum rate (${BENCH_MAXRATE_SECS} s)"
	else
		log "$TOOL: warm-up at full speed (${BENCH_MAXRATE_SECS} s, as the maximum-rate run)"
	fi
	run_load maxrate "$BENCH_MAXRATE_SECS"
	if [ ! -s "$WORK/res/$WL.maxtps" ]; then
		cp "$WORK/res/$KEY-maxrate.tps" "$WORK/res/$WL.maxtps"
		echo "$TOOL" >"$WORK/res/$WL.maxtool"
	fi
	half=$(awk '{ h = int($1 / 2 + 0.5); print (h < 1 ? 1 : h) }' "$WORK/res/$WL.maxtps")

	log "$TOOL: full-speed run (${BENCH_SECS} s)"
	run_load full "$BENCH_SECS"
	verify full
	log "$TOOL: half-rate run at $half tps (${BENCH_SECS} s)"
	run_load half "$BENCH_SECS" -R "$half"
	verify half

	stop_bg "$HB_PID"
	HB_PID=""
	for s in src tgt; do stat -c %s "$WORK/pg/$s.log" >"$WORK/res/$KEY.$s-log-to"; done
	"stop_$TOOL"
}

run_one() {
	local rc why s from to
	KEY=$WL-$TOOL
	TOOL_LOG=$WORK/logs/$KEY.log
	log "---- $WL workload, $TOOL"
	set +e
	(set -e; bench_one)
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		why=$(cat "$WORK/res/$KEY.why" 2>/dev/null || echo "exit status $rc")
		echo "failed: $why" >"$WORK/res/$KEY.status"
		log "$TOOL failed on $WL ($why)"
	fi
	# error lines: pgtide's log, and what the servers logged while the tool streamed
	: >"$WORK/res/$KEY.problems"
	if [ -s "$TOOL_LOG" ]; then
		grep -E ' (warning|error) |^pgtide: error|^(DETAIL|HINT):|ERROR:' "$TOOL_LOG" >>"$WORK/res/$KEY.problems" || true
	fi
	for s in src tgt; do
		from=$(res "$KEY.$s-log-from") to=$(res "$KEY.$s-log-to")
		[ -n "$from" ] || continue
		[ -n "$to" ] || to=$(stat -c %s "$WORK/pg/$s.log")
		tail -c +$((from + 1)) "$WORK/pg/$s.log" | head -c $((to - from)) |
			grep -E '(ERROR|FATAL|PANIC|WARNING):' | sed "s/^/$s server: /" >>"$WORK/res/$KEY.problems" || true
	done
	if [ -s "$TOOL_LOG" ]; then
		if [ $rc -ne 0 ]; then
			log "last lines of $TOOL's log:"
			tail -n 15 "$TOOL_LOG" | sed 's/^/    /' >&2
		fi
	fi
}

PGTIDE_VERSION=$({ [ -x "$PGTIDE_BIN" ] && timeout 10 "$PGTIDE_BIN" --version 2>/dev/null | head -n1; } || echo "not available")
for WL in $BENCH_WORKLOADS; do
	for TOOL in $BENCH_TOOLS; do
		run_one
	done
done

# ------------------------------------------------------------------- report --
# stats FILE FROM TO: "max p95 n" of the sampled values with FROM <= epoch <= TO
stats() {
	awk -v a="$2" -v b="$3" 'NF == 2 && $1 ~ /^[0-9.]+$/ && $2 ~ /^-?[0-9.]+$/ && $1 >= a && $1 <= b { print $2 }' "$1" 2>/dev/null |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "- - 0"; exit }
			i = int(NR * 0.95 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
			printf "%s %s %d\n", v[NR], v[i], NR }'
}
fmt() { awk -v v="$1" -v d="$2" -v s="${3:-1}" 'BEGIN { if (v == "" || v == "-") print "-"; else printf "%.*f", d, v / s }'; }

# measure WL TOOL: the figures of one tool on one workload, in M[field]; the
# speed figures only when its result is ok.
declare -A M
measure() {
	local key=$1-$2 t0 t1 t2 txns h0 h1 bmax smax hmax hp95 hn
	M=([status]="$(res "$key.status")" [tps]=- [apply]=- [lag_mb]=- [lag_s]=- [drain]=- [hp95]=- [hmax]=-
		[rss]="$(res "$key.rssmb")")
	M[status]=${M[status]:-not run}
	[ -n "${M[rss]}" ] || M[rss]=-
	[ "${M[status]}" = ok ] || return 0
	t0=$(res "$key-full.t0") t1=$(res "$key-full.t1") t2=$(res "$key-full.t2") txns=$(res "$key-full.txns")
	read -r bmax _ _ <<<"$(stats "$WORK/res/$key-full.bytes" "$t0" "$t2")"
	read -r smax _ _ <<<"$(stats "$WORK/res/$key-full.secs" "$t0" "$t2")"
	h0=$(res "$key-half.t0") h1=$(res "$key-half.t1")
	read -r hmax hp95 hn <<<"$(stats "$WORK/res/$key-half.secs" "$(awk -v t="$h0" -v s="$SKIP_SECS" 'BEGIN { printf "%.3f", t + s }')" "$h1")"
	M[tps]=$(fmt "$(res "$key-full.tps")" 1)
	M[apply]=$(awk -v n="$txns" -v k="${WL_CHANGES[$1]}" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.0f", n * k / (b - a) }')
	M[lag_mb]=$(fmt "$bmax" 1 1048576)
	M[lag_s]=$(fmt "$smax" 2)
	M[drain]=$(elapsed "$t1" "$t2")
	M[hp95]=$(fmt "$hp95" 2)
	M[hmax]=$(fmt "$hmax" 2)
	{
		echo "$1 $2: full-speed pass before the runs: $(fmt "$(res "$key-maxrate.tps")" 1) tps"
		echo "$1 $2: full run: $txns transactions x ${WL_CHANGES[$1]} row changes in $(elapsed "$t0" "$t1") s;" \
			"after pgbench's end, the last heartbeat was on the target at +$(elapsed "$t1" "$(res "$key-full.hb")") s," \
			"the slot confirmed the end position at +$(elapsed "$t1" "$t2") s"
		echo "$1 $2: full run: CPU seconds until caught up: $(cpu_report "$key-full")"
		echo "$1 $2: half-rate run: $(fmt "$(res "$key-half.tps")" 1) tps, $hn lag samples after the first $SKIP_SECS s;" \
			"caught up $(elapsed "$h1" "$(res "$key-half.t2")") s after pgbench's end"
	} >>"$WORK/res/details"
}

cpu_report() { # cpu_report KEY-TAG: CPU seconds per process group over a run, and the host's load
	local hz
	hz=$(getconf CLK_TCK)
	awk -v hz="$hz" 'FNR == NR { a[$1 " " $2] = $3; next }
		($1 " " $2) in a { d[$1] += ($3 - a[$1 " " $2]) / hz }
		END { n = split("walsender target process", g, " ")
			names["walsender"] = "source WAL sender"; names["target"] = "target sessions"; names["process"] = "pgtide process"
			for (i = 1; i <= n; i++) if (g[i] in d) { printf "%s%s %.1f", sep, names[g[i]], d[g[i]]; sep = ", " } }' \
		"$WORK/res/$1.cpu0" "$WORK/res/$1.cpu1" 2>/dev/null
	paste -d ' ' "$WORK/res/$1.host0" "$WORK/res/$1.host1" 2>/dev/null |
		awk -v c="$(nproc)" '{ b = $3 - $1; i = $4 - $2; if (b + i > 0) printf "; host CPU busy %.0f%% of %d cores", 100 * b / (b + i), c }'
}

ROWFMT='%-20s %10s %10s %10s %9s %8s %10s %10s %8s %8s %7s  %s\n'
{
	echo "pgtide change-stream (CDC) benchmark, $(date '+%Y-%m-%d %H:%M:%S')"
	echo "host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $PG_VERSION ($PG_BINDIR)"
	echo "pgtide: $PGTIDE_BIN ($PGTIDE_VERSION)"
	echo "pgbench -c $CLIENTS -j $THREADS, scale $BENCH_PGBENCH_SCALE; runs of BENCH_SECS=$BENCH_SECS s;" \
		"maximum rate over $BENCH_MAXRATE_SECS s;" \
		"heartbeat every $BENCH_HEARTBEAT s; lag sampled every $SAMPLE_EVERY s"
	: >"$WORK/res/details"
	for WL in $BENCH_WORKLOADS; do
		echo
		echo "== workload $WL: ${WL_LABEL[$WL]}"
		if [ -s "$WORK/res/$WL.maxtps" ]; then
			echo "source maximum rate: $(fmt "$(res "$WL.maxtps")" 1) tps (pgbench -T $BENCH_MAXRATE_SECS while" \
				"${LABEL[$(res "$WL.maxtool")]} was running); half rate: $(awk '{ h = int($1 / 2 + 0.5); print (h < 1 ? 1 : h) }' "$WORK/res/$WL.maxtps") tps"
		else
			echo "source maximum rate: not measured"
		fi
		# shellcheck disable=SC2059
		printf "$ROWFMT" tool source_TPS changes/s max_lag_MB max_lag_s drain_s half_p95_s half_max_s apply_x drain_x RSS_MB result
		declare -A R=()
		for TOOL in $BENCH_TOOLS; do
			measure "$WL" "$TOOL"
			for f in "${!M[@]}"; do R[$TOOL.$f]=${M[$f]}; done
		done
		for TOOL in $BENCH_TOOLS; do
			ax=- dx=-
			if [ "$TOOL" = pgtide ] && [ "${R[pgtide.apply]:--}" != - ] && [ "${R[native.apply]:--}" != - ]; then
				ax=$(awk -v p="${R[pgtide.apply]}" -v n="${R[native.apply]}" 'BEGIN { if (n > 0) printf "%.2f", p / n; else print "-" }')
				dx=$(awk -v p="${R[pgtide.drain]}" -v n="${R[native.drain]}" 'BEGIN { if (n > 0) printf "%.2f", p / n; else print "-" }')
			fi
			# shellcheck disable=SC2059
			printf "$ROWFMT" "${LABEL[$TOOL]}" "${R[$TOOL.tps]}" "${R[$TOOL.apply]}" "${R[$TOOL.lag_mb]}" "${R[$TOOL.lag_s]}" \
				"${R[$TOOL.drain]}" "${R[$TOOL.hp95]}" "${R[$TOOL.hmax]}" "$ax" "$dx" "${R[$TOOL.rss]}" "${R[$TOOL.status]}"
		done
		unset R
	done
	echo
	echo "source_TPS: pgbench's tps in the full-speed run. changes/s: the row changes of that run / (its duration +"
	echo "drain_s). max_lag_MB, max_lag_s: the largest lag during that run and its drain, in bytes (the source's WAL"
	echo "position - the slot's confirmed_flush_lsn; MB = 2^20) and in seconds (now - the newest heartbeat on the target,"
	echo "so it includes up to one heartbeat interval, $BENCH_HEARTBEAT s, even when the target is caught up)."
	echo "drain_s: from pgbench's end until the slot confirmed the source's WAL position at that end and the target had"
	echo "the last heartbeat written before it. half_p95_s, half_max_s: p95 and max of the lag in seconds during the"
	echo "half-rate run, its first $SKIP_SECS s left out. apply_x: pgtide changes/s / native changes/s (above 1: pgtide"
	echo "applies faster). drain_x: pgtide drain_s / native drain_s (below 1: pgtide catches up faster). RSS_MB:"
	echo "pgtide's peak resident set (/usr/bin/time -f %M). A failed or wrong result shows no figures."
	if [ -s "$WORK/res/details" ]; then
		echo
		sed 's/^/detail: /' "$WORK/res/details"
	fi
	for WL in $BENCH_WORKLOADS; do
		for TOOL in $BENCH_TOOLS; do
			if [ -s "$WORK/res/$WL-$TOOL.notes" ]; then sed "s/^/note: $WL $TOOL: /" "$WORK/res/$WL-$TOOL.notes"; fi
			if [ -s "$WORK/res/$WL-$TOOL.problems" ]; then
				echo "note: $WL $TOOL: $(wc -l <"$WORK/res/$WL-$TOOL.problems") warning or error lines in its log, the first ones:"
				head -n 10 "$WORK/res/$WL-$TOOL.problems" | sed 's/^/    /'
			fi
		done
	done
} >"$WORK/report.txt"

cp "$WORK/report.txt" "$OUT"
echo
sed -n '/^== workload/,$p' "$WORK/report.txt"
echo
echo "written to $OUT (logs in $OUT_DIR/cdc-$STAMP.logs/)"
