#!/usr/bin/env bash
# pgtide demo: two throwaway PostgreSQL servers on 127.0.0.1, a source with
# sample data (pgbench tables, partitions, jsonb, enums), `pgtide copy` while
# pgbench keeps writing, a check that the target holds the source's snapshot,
# then everything is removed. Installs what is missing and builds pgtide first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install-deps.sh"
if [ -z "${PGTIDE_BIN:-}" ]; then
	make -C "$ROOT" -s all
fi
PGTIDE=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGTIDE" ] || { echo "demo: build pgtide first (make)" >&2; exit 1; }
[ -x "$BINDIR/initdb" ] || { echo "demo: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
if [ "$(id -u)" -eq 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgtide-demo.XXXXXX")
chmod 755 "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
stop_all() {
	for d in "$DIR"/src "$DIR"/tgt; do
		[ -f "$d/postmaster.pid" ] && as_pg "$BINDIR/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
	done
	rm -rf "$DIR"
}
trap stop_all EXIT

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

new_server() { # new_server NAME -> prints its port
	local d=$DIR/$1 port
	port=$(free_port)
	as_pg "$BINDIR/initdb" -D "$d" -U postgres -A trust -E UTF8 --no-locale >/dev/null
	printf "listen_addresses='127.0.0.1'\nport=%s\nunix_socket_directories='%s'\nwal_level=logical\n" \
		"$port" "$d" >>"$d/postgresql.conf"
	as_pg "$BINDIR/pg_ctl" -D "$d" -l "$d.log" -w start >/dev/null
	echo "$port"
}

say "starting two throwaway PostgreSQL servers"
SP=$(new_server src)
TP=$(new_server tgt)
SRC="postgresql://postgres@127.0.0.1:$SP/shop"
TGT="postgresql://postgres@127.0.0.1:$TP/shop"
psql -X -q "postgresql://postgres@127.0.0.1:$SP/postgres" -c "CREATE DATABASE shop"
psql -X -q "postgresql://postgres@127.0.0.1:$TP/postgres" -c "CREATE DATABASE shop"
echo "source $SRC"
echo "target $TGT"

say "filling the source: pgbench tables, a partitioned table, jsonb documents"
"$BINDIR/pgbench" -q -i -s 10 --foreign-keys "$SRC" 2>&1 | tail -1
psql -X -q -v ON_ERROR_STOP=1 "$SRC" <<'SQL'
CREATE TYPE status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY, placed date NOT NULL,
    status status NOT NULL, doc jsonb, PRIMARY KEY (id, placed)) PARTITION BY RANGE (placed);
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE orders_other PARTITION OF orders DEFAULT;
INSERT INTO orders (placed, status, doc)
SELECT date '2025-01-01' + (g % 700), (ARRAY['new','paid','shipped']::status[])[1 + g % 3],
       jsonb_build_object('customer', g % 5000, 'lines', jsonb_build_array(g, md5(g::text)))
FROM generate_series(1, 200000) g;
CREATE INDEX ON orders (status);
ANALYZE;
SQL
psql -X -At "$SRC" -c "SELECT 'source size: ' || pg_size_pretty(pg_database_size(current_database()))"

say "pgtide copy, while pgbench keeps writing to the source"
"$BINDIR/pgbench" -n -c 2 -T 20 "$SRC" >"$DIR/pgbench.log" 2>&1 &
BENCH=$!
sleep 1
"$PGTIDE" copy --source "$SRC" --target "$TGT" --task demo --jobs 2 --index-jobs 2 \
	--split-tables-larger-than 16MB --progress-interval 2
wait "$BENCH"

say "checking: the target holds exactly the source as of the load's snapshot"
SNAP=$(psql -X -At "$TGT" -c "SELECT DISTINCT snapshot_txids FROM pgtide.tables")
NOW=$(psql -X -At "$SRC" -c "SELECT count(*) FROM pgbench_history")
for t in pgbench_accounts pgbench_branches pgbench_tellers orders; do
	s=$(psql -X -At "$SRC" -c "SELECT count(*) FROM $t")
	d=$(psql -X -At "$TGT" -c "SELECT count(*) FROM $t")
	printf '  %-18s source %8s rows, target %8s rows\n' "$t" "$s" "$d"
done
WRONG=$(psql -X -At "$TGT" -c "SELECT count(*) FROM pgbench_accounts a LEFT JOIN
	(SELECT aid, sum(delta) s FROM pgbench_history GROUP BY aid) h USING (aid)
	WHERE a.abalance <> coalesce(h.s, 0)")
printf '  snapshot %s: %s history rows written on the source by now, %s on the target\n' \
	"$SNAP" "$NOW" "$(psql -X -At "$TGT" -c "SELECT count(*) FROM pgbench_history")"
printf '  accounts whose balance disagrees with the copied history: %s\n' "$WRONG"
[ "$WRONG" = 0 ] || { echo "demo: the target is not consistent" >&2; exit 1; }
ORD_S=$(psql -X -At "$SRC" -c "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o")
ORD_T=$(psql -X -At "$TGT" -c "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o")
[ "$ORD_S" = "$ORD_T" ] || { echo "demo: orders differ" >&2; exit 1; }
echo "  orders: identical content (md5 $ORD_T)"
psql -X "$TGT" -c "SELECT src_name AS table, state, chunks, rows, pg_size_pretty(bytes) AS copied,
	snapshot_lsn FROM pgtide.tables ORDER BY bytes DESC LIMIT 8"

say "done: the servers and their data are removed"
