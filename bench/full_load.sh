#!/usr/bin/env bash
# Full-load benchmark: pgtide copy against pg_dump/pg_restore, pgcopydb clone,
# native logical replication's initial sync and a raw COPY|COPY ceiling, on the
# same two throwaway PostgreSQL servers, one tool after the other.
# See bench/README.md for the knobs and how to read the result.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------- settings --
JOBS=${JOBS:-2}
# shellcheck source=bench/dataset_size.sh
. "$ROOT/bench/dataset_size.sh" # BENCH_SCALE, BENCH_SIZE -> size_mb
BENCH_TOOLS=${BENCH_TOOLS:-pgtide pg_dump pgcopydb native raw}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-7200}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: JOBS must be a positive integer" >&2; exit 2; }
TOOLS_SUPPORTED="pgtide pg_dump pgcopydb native raw"
for t in $BENCH_TOOLS; do
	case " $TOOLS_SUPPORTED " in *" $t "*) ;; *) echo "bench: unknown tool '$t' in BENCH_TOOLS ($TOOLS_SUPPORTED)" >&2; exit 2 ;; esac
done

BENCH_NAME=full_load
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh" # environment, log/die, apt_install, work space, exit trap, servers

want() { case " $BENCH_TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }
if want pgcopydb && ! command -v pgcopydb >/dev/null; then
	apt_install pgcopydb || log "pgcopydb cannot be installed; its row will read 'failed'"
fi
OUT=$OUT_DIR/full_load-$STAMP.txt

start_servers

# ----------------------------------------------------------------- dataset --
q "$SRC_ADMIN" "CREATE DATABASE bench"
q "$TGT_ADMIN" "CREATE DATABASE bench"
build_dataset "$size_mb"
log "docs.doc as text: $(q "$SRC" "SELECT min(octet_length(doc::text)) || '-' || max(octet_length(doc::text))
	|| ' bytes, avg ' || avg(octet_length(doc::text))::int || ', stored avg ' || avg(pg_column_size(doc))::int
	|| ' (compressed ' || count(*) FILTER (WHERE pg_column_compression(doc) IS NOT NULL) * 100 / count(*) || '% of rows)'
	FROM docs")"

# Every table that holds rows (leaf partitions individually), largest first.
TABLES_SQL="SELECT format('%I.%I', n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname = 'public'
	ORDER BY pg_total_relation_size(c.oid) DESC, 1"
mapfile -t TABLES < <(q "$SRC" "$TABLES_SQL")
COUNT_SQL=""
for t in "${TABLES[@]}"; do
	COUNT_SQL+="${COUNT_SQL:+ UNION ALL }SELECT '$t', count(*) FROM $t"
done
COUNT_SQL="SELECT * FROM ($COUNT_SQL) s ORDER BY 1"
q "$SRC" "$COUNT_SQL" >"$WORK/res/source.counts" # also warms the page cache
# Indexes and constraints in the dataset's schema, to tell a tool that skipped them.
OBJ_SQL="SELECT (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public') || ' indexes, ' ||
	(SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
		WHERE n.nspname = 'public' AND k.contype IN ('p', 'f', 'u', 'x')) || ' constraints'"
SRC_OBJS=$(q "$SRC" "$OBJ_SQL")
DATA_BYTES=$(q "$SRC" "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")

DATASET_REPORT=$(psql "$SRC" -X -q -v ON_ERROR_STOP=1 -P footer=off <<SQL
WITH counts(t, n) AS (VALUES $(awk -F'|' '{ printf "%s(%s::regclass, %s)", (NR > 1 ? ", " : ""), "'"'"'" $1 "'"'"'", $2 }' "$WORK/res/source.counts")),
s AS (SELECT c.t::text AS "table", c.n AS "rows",
	pg_relation_size(c.t) AS heap,
	pg_total_relation_size(c.t) - pg_relation_size(c.t) - pg_indexes_size(c.t) AS toast,
	pg_indexes_size(c.t) AS indexes, pg_total_relation_size(c.t) AS total
	FROM counts c)
SELECT x."table", x."rows", pg_size_pretty(x.heap) AS heap, pg_size_pretty(x.toast) AS toast,
	pg_size_pretty(x.indexes) AS indexes, pg_size_pretty(x.total) AS total
FROM (SELECT * FROM s UNION ALL
	SELECT 'TOTAL', sum("rows"), sum(heap), sum(toast), sum(indexes), sum(total) FROM s) x
ORDER BY x."table" = 'TOTAL', x.total DESC, x."table";
SQL
)
echo "Dataset ($SRC_OBJS):"
echo "$DATASET_REPORT"
echo

# ------------------------------------------------------------------ helpers --
reset_all() { # an empty target database, nothing of a previous tool left on the source
	psql "$TGT_ADMIN" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL' || true
SELECT format('ALTER SUBSCRIPTION %I DISABLE', subname) FROM pg_subscription \gexec
SELECT format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', subname) FROM pg_subscription \gexec
SELECT format('DROP SUBSCRIPTION %I', subname) FROM pg_subscription \gexec
SQL
	q "$TGT_ADMIN" "DROP DATABASE IF EXISTS bench WITH (FORCE)"
	q "$TGT_ADMIN" "CREATE DATABASE bench"
	psql "$SRC" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT format('DROP PUBLICATION %I', pubname) FROM pg_publication \gexec
SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL;
SELECT pg_sleep(0.5);
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active;
SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace WHERE nspname IN ('pgcopydb', 'pgtide') \gexec
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE datname IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend';
CHECKPOINT;
SQL
	q "$TGT_ADMIN" "CHECKPOINT"
}

verify() { # verify TOOL WITH_INDEXES: row counts (and indexes) on the target equal the source's
	local got
	if ! q "$TGT" "$COUNT_SQL" >"$WORK/res/$1.counts" 2>"$WORK/logs/$1-verify.log"; then
		echo "target tables missing: $(head -n1 "$WORK/logs/$1-verify.log")"
		return 1
	fi
	if ! diff "$WORK/res/source.counts" "$WORK/res/$1.counts" >"$WORK/logs/$1-verify.log"; then
		echo "row counts differ: $(grep -c '^>' "$WORK/logs/$1-verify.log") of ${#TABLES[@]} tables"
		return 1
	fi
	if [ "$2" = 1 ]; then
		got=$(q "$TGT" "$OBJ_SQL")
		[ "$got" = "$SRC_OBJS" ] || { echo "target has $got, source $SRC_OBJS"; return 1; }
	fi
	return 0
}

# run_tool TOOL FUNCTION: runs FUNCTION in a subshell with errexit (it writes
# res/TOOL.secs), then checks the target. Never aborts the benchmark.
run_tool() {
	local tool=$1 fn=$2 rc why
	log "---- $tool"
	reset_all
	set +e
	(set -e; "$fn")
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		why=$(cat "$WORK/res/$tool.why" 2>/dev/null || echo "exit status $rc")
		echo "failed: $why" >"$WORK/res/$tool.status"
		log "$tool failed ($why)"
		if [ -s "$WORK/logs/$tool.log" ]; then
			log "last lines of $tool's log:"
			tail -n 15 "$WORK/logs/$tool.log" | sed 's/^/    /' >&2
		fi
		rm -f "$WORK/res/$tool.secs"
		return 0
	fi
	local with_indexes=1
	[ "$tool" = raw ] && with_indexes=0
	if why=$(verify "$tool" "$with_indexes"); then
		echo ok >"$WORK/res/$tool.status"
		log "$tool: $(cat "$WORK/res/$tool.secs") s, verified"
	else
		echo "wrong: $why" >"$WORK/res/$tool.status"
		log "$tool: result is wrong: $why"
	fi
}

fail_because() { echo "$2" >"$WORK/res/$1.why"; return 1; }

# -------------------------------------------------------------------- tools --
bench_pgtide() {
	[ -x "$PGTIDE_BIN" ] || fail_because pgtide "no executable at $PGTIDE_BIN"
	local t0 t1 rc=0
	t0=$(now)
	timeout "$BENCH_TIMEOUT" /usr/bin/time -f %M -o "$WORK/res/pgtide.rss" \
		"$PGTIDE_BIN" copy --source "$SRC" --target "$TGT" --task bench \
		--jobs "$JOBS" --index-jobs "$JOBS" >"$WORK/logs/pgtide.log" 2>&1 || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || fail_because pgtide "exit status $rc$([ $rc -eq 124 ] && echo ", timed out after ${BENCH_TIMEOUT}s")"
	elapsed "$t0" "$t1" >"$WORK/res/pgtide.secs"
	tail -n1 "$WORK/res/pgtide.rss" | awk '{ printf "%.0f", $1 / 1024 }' >"$WORK/res/pgtide.rssmb"
	copy_phase_secs "$WORK/logs/pgtide.log" >"$WORK/res/pgtide.phase" || rm -f "$WORK/res/pgtide.phase"
}

# Seconds of the copy phase from the last log line naming it, if it gives any.
copy_phase_secs() {
	local line rest n='([0-9]+([.][0-9]+)?)'
	line=$(grep -iE 'copy phase|load done' "$1" | tail -n1) || return 1
	rest=$(printf '%s' "$line" | sed -E 's/.*([Cc][Oo][Pp][Yy] [Pp][Hh][Aa][Ss][Ee]|[Ll][Oo][Aa][Dd] [Dd][Oo][Nn][Ee])//')
	if [[ $rest =~ ([0-9]+):([0-9]{2}):([0-9]{2}([.][0-9]+)?) ]]; then
		awk -v h="${BASH_REMATCH[1]}" -v m="${BASH_REMATCH[2]}" -v s="${BASH_REMATCH[3]}" 'BEGIN { printf "%.2f", h * 3600 + m * 60 + s }'
	elif [[ $rest =~ ([0-9]+)m[[:space:]]*${n}[[:space:]]*s ]]; then
		awk -v m="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[2]}" 'BEGIN { printf "%.2f", m * 60 + s }'
	elif [[ $rest =~ ${n}[[:space:]]*ms([^a-z]|$) ]]; then
		awk -v v="${BASH_REMATCH[1]}" 'BEGIN { printf "%.2f", v / 1000 }'
	elif [[ $rest =~ ${n}[[:space:]]*(s|sec|secs|seconds)([^a-z]|$) ]]; then
		awk -v v="${BASH_REMATCH[1]}" 'BEGIN { printf "%.2f", v }'
	elif [[ $rest =~ (elapsed|seconds|secs|duration)[^0-9]{0,3}$n ]]; then
		awk -v v="${BASH_REMATCH[2]}" 'BEGIN { printf "%.2f", v }'
	else
		return 1
	fi
}

bench_pg_dump() {
	local t0 t1 t2 rc=0
	rm -rf "$WORK/dump"
	t0=$(now)
	timeout "$BENCH_TIMEOUT" /usr/bin/time -f %M -o "$WORK/res/pg_dump.rss1" \
		pg_dump -Fd -j "$JOBS" -f "$WORK/dump" -d "$SRC" >"$WORK/logs/pg_dump.log" 2>&1 || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || fail_because pg_dump "pg_dump exit status $rc"
	timeout "$BENCH_TIMEOUT" /usr/bin/time -f %M -o "$WORK/res/pg_dump.rss2" \
		pg_restore -j "$JOBS" -d "$TGT" "$WORK/dump" >>"$WORK/logs/pg_dump.log" 2>&1 || rc=$?
	t2=$(now)
	[ $rc -eq 0 ] || fail_because pg_dump "pg_restore exit status $rc"
	elapsed "$t0" "$t2" >"$WORK/res/pg_dump.secs"
	echo "pg_dump $(elapsed "$t0" "$t1") s + pg_restore $(elapsed "$t1" "$t2") s" >"$WORK/res/pg_dump.note"
	tail -qn1 "$WORK/res/pg_dump.rss1" "$WORK/res/pg_dump.rss2" |
		awk '$1 > m { m = $1 } END { printf "%.0f", m / 1024 }' >"$WORK/res/pg_dump.rssmb"
	rm -rf "$WORK/dump"
}

bench_pgcopydb() {
	command -v pgcopydb >/dev/null || fail_because pgcopydb "pgcopydb is not installed"
	local t0 t1 rc=0
	rm -rf "$WORK/pgcopydb"
	mkdir -p "$WORK/pgcopydb"
	t0=$(now)
	timeout "$BENCH_TIMEOUT" /usr/bin/time -f %M -o "$WORK/res/pgcopydb.rss" \
		pgcopydb clone --source "$SRC" --target "$TGT" --table-jobs "$JOBS" --index-jobs "$JOBS" \
		--dir "$WORK/pgcopydb/work" --no-owner --no-acl >"$WORK/logs/pgcopydb.log" 2>&1 || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || fail_because pgcopydb "exit status $rc"
	elapsed "$t0" "$t1" >"$WORK/res/pgcopydb.secs"
	tail -n1 "$WORK/res/pgcopydb.rss" | awk '{ printf "%.0f", $1 / 1024 }' >"$WORK/res/pgcopydb.rssmb"
	rm -rf "$WORK/pgcopydb"
}

bench_native() {
	local t0 t1 deadline left
	q "$TGT_ADMIN" "ALTER SYSTEM SET max_sync_workers_per_subscription = $JOBS"
	q "$TGT_ADMIN" "SELECT pg_reload_conf()" >/dev/null
	t0=$(now)
	{ pg_dump --schema-only -d "$SRC" | psql "$TGT" -X -q -v ON_ERROR_STOP=1; } >"$WORK/logs/native.log" 2>&1 ||
		fail_because native "schema copy failed"
	q "$SRC" "CREATE PUBLICATION bench_pub FOR ALL TABLES"
	q "$TGT" "CREATE SUBSCRIPTION bench_sub
		CONNECTION 'host=127.0.0.1 port=$SRC_PORT dbname=bench user=postgres'
		PUBLICATION bench_pub WITH (copy_data = true)" >>"$WORK/logs/native.log" 2>&1 ||
		fail_because native "CREATE SUBSCRIPTION failed"
	deadline=$(($(date +%s) + BENCH_TIMEOUT))
	while :; do
		left=$(q "$TGT" "SELECT count(*) FILTER (WHERE srsubstate NOT IN ('r', 's')) || '/' || count(*)
			FROM pg_subscription_rel")
		[ "${left%/*}" = 0 ] && [ "${left#*/}" = "${#TABLES[@]}" ] && break
		[ "$(date +%s)" -lt "$deadline" ] || fail_because native "not synchronised after ${BENCH_TIMEOUT}s ($left tables left)"
		sleep 0.2
	done
	t1=$(now)
	elapsed "$t0" "$t1" >"$WORK/res/native.secs"
	q "$TGT" "DROP SUBSCRIPTION bench_sub" >>"$WORK/logs/native.log" 2>&1
	q "$SRC" "DROP PUBLICATION bench_pub"
	q "$TGT_ADMIN" "ALTER SYSTEM RESET max_sync_workers_per_subscription"
	q "$TGT_ADMIN" "SELECT pg_reload_conf()" >/dev/null
}

bench_raw() {
	local t0 t1 rc=0
	{ pg_dump --section=pre-data -d "$SRC" | psql "$TGT" -X -q -v ON_ERROR_STOP=1; } >"$WORK/logs/raw.log" 2>&1 ||
		fail_because raw "pre-data schema failed"
	t0=$(now)
	# shellcheck disable=SC2016 # $1, $SRC and $TGT are expanded by the inner bash
	printf '%s\n' "${TABLES[@]}" |
		timeout "$BENCH_TIMEOUT" xargs -d '\n' -n1 -P "$JOBS" bash -c 'set -o pipefail
			psql "$SRC" -X -q -v ON_ERROR_STOP=1 -c "COPY $1 TO STDOUT" |
			psql "$TGT" -X -q -v ON_ERROR_STOP=1 -c "COPY $1 FROM STDIN"' _ >>"$WORK/logs/raw.log" 2>&1 || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || fail_because raw "a COPY pipe failed (xargs status $rc)"
	elapsed "$t0" "$t1" >"$WORK/res/raw.secs"
}

declare -A LABEL=([pgtide]="pgtide copy" [pg_dump]="pg_dump + pg_restore" [pgcopydb]="pgcopydb clone"
	[native]="logical replication sync" [raw]="raw COPY|COPY (data only)")
PGTIDE_VERSION=$({ [ -x "$PGTIDE_BIN" ] && timeout 10 "$PGTIDE_BIN" --version 2>/dev/null | head -n1; } || echo "not available")
PGCOPYDB_VERSION=$({ command -v pgcopydb >/dev/null && pgcopydb --version 2>/dev/null | head -n1; } || echo "not installed")

# The first tool after the dataset build meets a still-settling server (it
# ran 3-4 s slower in whichever position came first), so an unreported raw
# pass goes first and every measured tool starts from the same state.
if [ "${BENCH_WARMUP:-1}" = 1 ]; then
	log "warm-up: one raw pass, not reported"
	run_tool raw bench_raw
	rm -f "$WORK/res/raw."*
fi
for tool in $BENCH_TOOLS; do
	run_tool "$tool" "bench_$tool"
done
reset_all

# ------------------------------------------------------------------- report --
res() { cat "$WORK/res/$1.$2" 2>/dev/null || true; }
PGTIDE_SECS=""
[ "$(res pgtide status)" = ok ] && PGTIDE_SECS=$(res pgtide secs)
show_phase=0
for tool in $BENCH_TOOLS; do [ -s "$WORK/res/$tool.phase" ] && show_phase=1; done

{
	echo "pgtide full-load benchmark, $(date '+%Y-%m-%d %H:%M:%S')"
	echo "host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $PG_VERSION ($PG_BINDIR)"
	echo "pgtide: $PGTIDE_BIN ($PGTIDE_VERSION); pgcopydb: $PGCOPYDB_VERSION"
	echo "JOBS=$JOBS; dataset $(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }') MB in ${#TABLES[@]} tables ($SRC_OBJS), BENCH_SIZE=$BENCH_SIZE"
	echo
	echo "$DATASET_REPORT"
	echo
	hdr=$(printf '%-28s %9s %8s %10s %12s' tool seconds MB/s vs_pgtide peak_RSS_MB)
	[ $show_phase = 1 ] && hdr+=$(printf ' %13s' copy_phase_s)
	echo "$hdr  result"
	for tool in $BENCH_TOOLS; do
		status=$(res "$tool" status)
		secs=$(res "$tool" secs)
		if [ "$status" = ok ]; then
			mbps=$(awk -v b="$DATA_BYTES" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }')
			ratio=-
			[ -n "$PGTIDE_SECS" ] && ratio=$(awk -v a="$secs" -v p="$PGTIDE_SECS" 'BEGIN { printf "%.2f", (p > 0 ? a / p : 0) }')
		else # a failed or wrong run has no speed to report
			secs=${status%%:*} mbps=- ratio=-
			secs=${secs:--}
		fi
		rss=$(res "$tool" rssmb)
		line=$(printf '%-28s %9s %8s %10s %12s' "${LABEL[$tool]}" "$secs" "$mbps" "$ratio" "${rss:--}")
		if [ $show_phase = 1 ]; then
			phase=$(res "$tool" phase)
			line+=$(printf ' %13s' "${phase:--}")
		fi
		echo "$line  ${status:-not run}"
	done
	echo
	for tool in $BENCH_TOOLS; do
		[ -s "$WORK/res/$tool.note" ] && echo "note: ${LABEL[$tool]}: $(res "$tool" note)"
	done
	echo "note: MB = 2^20 bytes; MB/s = dataset bytes (tables + toast + indexes on the source) / seconds."
	echo "note: the raw row times only the data COPY into tables without indexes or constraints."
} >"$WORK/report.txt"

mkdir -p "$OUT_DIR"
cp "$WORK/report.txt" "$OUT"
echo
sed -n '/^tool /,$p' "$WORK/report.txt"
echo
echo "written to $OUT (tool logs in $OUT_DIR/full_load-$STAMP.logs/)"
