#!/usr/bin/env bash
# Validation benchmark: `pgtide validate` of the full-load dataset against a
# plain `SELECT count(*)` of every table on both sides, as a ratio, on two
# throwaway servers. The target is loaded with `pgtide copy` first.
# See bench/README.md for the knobs and how to read the result.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------- settings --
JOBS=${JOBS:-2}
# shellcheck source=bench/dataset_size.sh
. "$ROOT/bench/dataset_size.sh" # BENCH_SCALE, BENCH_SIZE -> size_mb
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_PER_TABLE=${BENCH_PER_TABLE:-1}
BENCH_KEEP=${BENCH_KEEP:-0}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: JOBS must be a positive integer" >&2; exit 2; }
[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_RUNS must be a positive integer" >&2; exit 2; }
[ -x "$PGTIDE_BIN" ] || { echo "bench: no pgtide at $PGTIDE_BIN (make, or set PGTIDE_BIN)" >&2; exit 2; }

BENCH_NAME=validate
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh" # environment, log/die, work space, exit trap, servers, dataset
OUT=$OUT_DIR/validate-$STAMP.txt

start_servers
q "$SRC_ADMIN" "CREATE DATABASE bench"
q "$TGT_ADMIN" "CREATE DATABASE bench"
build_dataset "$size_mb"

log "loading the target: pgtide copy --jobs $JOBS"
t0=$(now)
"$PGTIDE_BIN" copy --source "$SRC" --target "$TGT" --task bench --jobs "$JOBS" \
	--index-jobs "$JOBS" >"$WORK/logs/copy.log" 2>&1 || { tail -n 20 "$WORK/logs/copy.log" >&2; die "pgtide copy failed"; }
log "target loaded in $(elapsed "$t0" "$(now)") s"
q "$TGT" "VACUUM ANALYZE"
q "$SRC_ADMIN" "CHECKPOINT"
q "$TGT_ADMIN" "CHECKPOINT"

# Every table that holds rows (leaf partitions individually), largest first.
mapfile -t TABLES < <(q "$SRC" "SELECT format('%I.%I', n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname = 'public'
	ORDER BY pg_total_relation_size(c.oid) DESC, 1")
DATA_BYTES=$(q "$SRC" "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")
ROWS=$(q "$SRC" "SELECT sum(reltuples)::bigint FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")

# count_side URI TABLE...: count(*) of each table, JOBS sessions at once.
count_side() {
	local uri=$1
	shift
	printf '%s\n' "$@" | xargs -d '\n' -P "$JOBS" -I{} \
		psql "$uri" -X -v ON_ERROR_STOP=1 -Atq -c "SELECT count(*) FROM {}" >/dev/null
}

# time_both FN ARG...: seconds of `FN URI ARG...` for the source and the
# target, run at once.
time_both() {
	local t0 t1 a b
	t0=$(now)
	"$1" "$SRC" "${@:2}" &
	a=$!
	"$1" "$TGT" "${@:2}" &
	b=$!
	wait "$a" && wait "$b" || die "$1 failed on the source or the target"
	t1=$(now)
	elapsed "$t0" "$t1"
}

# time_counts TABLE...: seconds for the counts of both sides, run at once.
time_counts() { time_both count_side "$@"; }

# run_sql URI SQL: one session.
run_sql() { psql "$1" -X -v ON_ERROR_STOP=1 -Atq -c "$2" >/dev/null; }

# time_validate LOG [OPTION...]: seconds of one pgtide validate, which must
# find no difference; its peak RSS in LOG.rss.
time_validate() {
	local logf=$1 t0 t1 rc=0
	shift
	t0=$(now)
	/usr/bin/time -f %M -o "$logf.rss" "$PGTIDE_BIN" validate --source "$SRC" \
		--target "$TGT" --task bench --jobs "$JOBS" --json "$@" >"$logf.json" 2>"$logf" || rc=$?
	t1=$(now)
	[ $rc -eq 0 ] || { tail -n 20 "$logf" >&2; die "pgtide validate exited with $rc"; }
	elapsed "$t0" "$t1"
}

best() { printf '%s\n' "$@" | sort -g | head -n1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

log "warm-up: one count pass and one validate pass, not reported"
time_counts "${TABLES[@]}" >/dev/null
time_validate "$WORK/logs/validate-warmup.log" >/dev/null

COUNT_SECS=() VALIDATE_SECS=()
for i in $(seq "$BENCH_RUNS"); do
	COUNT_SECS+=("$(time_counts "${TABLES[@]}")")
	VALIDATE_SECS+=("$(time_validate "$WORK/logs/validate-$i.log")")
	log "run $i: count(*) ${COUNT_SECS[-1]} s, pgtide validate ${VALIDATE_SECS[-1]} s"
done
BEST_COUNT=$(best "${COUNT_SECS[@]}")
BEST_VALIDATE=$(best "${VALIDATE_SECS[@]}")
RSS_MB=$(cat "$WORK"/logs/validate-*.log.rss | awk '$1 > m { m = $1 } END { printf "%.0f", m / 1024 }')
RANGES=$(grep -o '"ranges":[0-9]*' "$WORK/logs/validate-1.log.json" | head -n1 | cut -d: -f2)

# Where the time goes: each large table alone (a partitioned table's leaves
# together), validate against its counts.
PER_TABLE=""
if [ "$BENCH_PER_TABLE" = 1 ]; then
	for group in public.pgbench_accounts public.docs 'public.events_p*'; do
		mapfile -t members < <(printf '%s\n' "${TABLES[@]}" | grep -E "^${group//\*/.*}$" || true)
		[ ${#members[@]} -gt 0 ] || continue
		c=$(best "$(time_counts "${members[@]}")" "$(time_counts "${members[@]}")")
		v=$(best "$(time_validate "$WORK/logs/validate-one.log" --tables "$group")" \
			"$(time_validate "$WORK/logs/validate-one.log" --tables "$group")")
		PER_TABLE+=$(printf '%-24s %10s %12s %7s' "$group" "$c" "$v" "$(ratio "$v" "$c")")$'\n'
	done
fi

# What the TOASTed jsonb table costs any exact comparison: the same query on
# both sides at once, one session each, best of two. count(*) never reads
# TOAST; decompressing each document is the floor of any comparison of its
# contents; jsonb_hash_extended is faster than the text but blind to
# structure (docs/validate.md); pgtide hashes the text.
DOCS_FLOOR=""
if [ "$BENCH_PER_TABLE" = 1 ] && printf '%s\n' "${TABLES[@]}" | grep -qx public.docs; then
	for probe in "count(*)|count(*)" \
		"decompress only|sum(pg_column_size(doc || '{}'))" \
		"jsonb_hash_extended|sum(jsonb_hash_extended(doc, 0))" \
		"text hash (pgtide)|sum(hashtextextended(doc::text, 0))"; do
		sql="SET max_parallel_workers_per_gather = 0; SELECT ${probe#*|} FROM public.docs"
		t=$(best "$(time_both run_sql "$sql")" "$(time_both run_sql "$sql")")
		DOCS_FLOOR+=$(printf '%-24s %10s' "${probe%%|*}" "$t")$'\n'
	done
fi

{
	echo "pgtide validate benchmark, $(date '+%Y-%m-%d %H:%M:%S')"
	echo "host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); PostgreSQL $PG_VERSION"
	echo "$("$PGTIDE_BIN" --version | head -n1)"
	echo "JOBS=$JOBS; dataset $(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.1f", b / 1048576 }') MB, about $ROWS rows in ${#TABLES[@]} tables, BENCH_SIZE=$BENCH_SIZE; $RANGES ranges"
	echo
	echo "count(*):  every table, source and target at once, $JOBS sessions per side"
	echo "validate:  pgtide validate --task bench --jobs $JOBS (both sides at once)"
	echo
	printf '%-6s %12s %14s %7s\n' run count_s validate_s ratio
	for i in $(seq "$BENCH_RUNS"); do
		printf '%-6s %12s %14s %7s\n' "$i" "${COUNT_SECS[$((i - 1))]}" "${VALIDATE_SECS[$((i - 1))]}" \
			"$(ratio "${VALIDATE_SECS[$((i - 1))]}" "${COUNT_SECS[$((i - 1))]}")"
	done
	printf '%-6s %12s %14s %7s\n' best "$BEST_COUNT" "$BEST_VALIDATE" "$(ratio "$BEST_VALIDATE" "$BEST_COUNT")"
	echo "pgtide validate peak RSS: $RSS_MB MB"
	if [ -n "$PER_TABLE" ]; then
		echo
		printf '%-24s %10s %12s %7s\n' table count_s validate_s ratio
		printf '%s' "$PER_TABLE"
	fi
	if [ -n "$DOCS_FLOOR" ]; then
		echo
		printf '%-24s %10s\n' "public.docs, both sides" seconds
		printf '%s' "$DOCS_FLOOR"
	fi
} | tee "$OUT"
log "result in $OUT"
