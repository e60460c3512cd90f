#!/usr/bin/env bash
# pgtide demo: two throwaway PostgreSQL servers on 127.0.0.1, a source with
# sample data (pgbench tables, partitions, jsonb, enums), and a whole migration
# while pgbench keeps writing as the application's role: check, migrate,
# status, validate, cutover (fencing that role), checks, clean. Then everything
# is removed. Installs what is missing and builds pgtide first.
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

# the application writes as its own role: that is what the cutover fences
psql -X -q -v ON_ERROR_STOP=1 "$SRC" <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') THEN
    CREATE ROLE shop_app LOGIN;
  END IF;
END$$;
GRANT USAGE ON SCHEMA public TO shop_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shop_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shop_app;
SQL
APP="postgresql://shop_app@127.0.0.1:$SP/shop"

say "pgtide check: what would not migrate, before anything is touched"
# pgbench_history has no key: a warning (the table would stream its
# inserts only), not a blocker, so check succeeds and names it
"$PGTIDE" check --source "$SRC" --target "$TGT" --task demo | tee "$DIR/check.txt" ||
	{ echo "demo: check found a blocker" >&2; exit 1; }
grep -q "no_replica_identity *public.pgbench_history" "$DIR/check.txt" ||
	{ echo "demo: check was expected to name pgbench_history (no key)" >&2; exit 1; }
echo
echo "fixing what check warned about: a key on pgbench_history"
psql -X -q "$SRC" -c "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY" \
	-c "GRANT USAGE ON SEQUENCE pgbench_history_hid_seq TO shop_app"
"$PGTIDE" check --source "$SRC" --target "$TGT" --task demo

say "pgtide migrate (load, then follow), while the application keeps writing"
# at 200 transactions a second: validate, while the stream runs, reads a
# differing row again once the target has applied past it, and a pgbench
# branch row updated hundreds of times a second can differ at every read
# (docs/validate.md)
"$BINDIR/pgbench" -n -c 2 -R 200 -T 600 "$APP" >"$DIR/pgbench.log" 2>&1 &
BENCH=$!
"$PGTIDE" migrate --source "$SRC" --target "$TGT" --task demo --jobs 2 --index-jobs 2 \
	--split-tables-larger-than 16MB --progress-interval 2 2>"$DIR/migrate.log" &
MIGRATE=$!
until grep -q "streaming from slot" "$DIR/migrate.log"; do
	kill -0 "$MIGRATE" 2>/dev/null || { cat "$DIR/migrate.log" >&2; exit 1; }
	sleep 0.5
done
grep -v " cdc: " "$DIR/migrate.log" | tail -n 12
sleep 5
"$PGTIDE" status --source "$SRC" --target "$TGT" --task demo

say "pgtide validate, while the changes keep flowing"
"$PGTIDE" validate --source "$SRC" --target "$TGT" --task demo

say "pgtide cutover: fence shop_app's writes, drain, sequences, hand over"
"$PGTIDE" cutover --source "$SRC" --target "$TGT" --task demo --fence-role shop_app
wait "$MIGRATE"
kill "$BENCH" 2>/dev/null || true
wait "$BENCH" 2>/dev/null || true

say "checking: the target holds everything the source acknowledged"
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history orders; do
	s=$(psql -X -At "$SRC" -c "SELECT count(*) FROM $t")
	d=$(psql -X -At "$TGT" -c "SELECT count(*) FROM $t")
	printf '  %-18s source %8s rows, target %8s rows\n' "$t" "$s" "$d"
done
WRONG=$(psql -X -At "$TGT" -c "SELECT count(*) FROM pgbench_accounts a LEFT JOIN
	(SELECT aid, sum(delta) s FROM pgbench_history GROUP BY aid) h USING (aid)
	WHERE a.abalance <> coalesce(h.s, 0)")
printf '  accounts whose balance disagrees with the history: %s\n' "$WRONG"
HIST=$(psql -X -At "$TGT" -c "SELECT count(*) FROM pgbench_history")
[ "$HIST" -gt 0 ] || { echo "demo: pgbench wrote nothing; see its log:" >&2; cat "$DIR/pgbench.log" >&2; exit 1; }
[ "$WRONG" = 0 ] || { echo "demo: the target is not consistent" >&2; exit 1; }
"$PGTIDE" validate --source "$SRC" --target "$TGT" --task demo
NEW=$(psql -X -Atq "$TGT" -c "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
	VALUES (1, 1, 1, 0, now()) RETURNING hid")
echo "  a row inserted on the target after the cutover got id $NEW (the sequence moved ahead)"

say "pgtide clean: no slot, publication, origin or state left behind"
"$PGTIDE" clean --source "$SRC" --target "$TGT" --task demo

say "done: the servers and their data are removed"
