# Shared by the benchmarks (sourced, not run): environment, logging, package
# installs, a work directory removed at exit, two throwaway PostgreSQL
# servers (source and target) on free 127.0.0.1 ports, and the full-load
# dataset (build_dataset).
#
# The caller sets, before sourcing: ROOT, BENCH_NAME (names the logs directory
# bench/out/BENCH_NAME-STAMP.logs), BENCH_KEEP, JOBS (sizes the servers' worker
# settings), and optionally PG_BINDIR. It may define bench_on_exit, which the
# exit trap calls before it stops the servers.
# shellcheck shell=bash

if [ -z "${PG_BINDIR:-}" ]; then
	# shellcheck disable=SC2012
	PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
fi
[ -x "${PG_BINDIR:-}/postgres" ] || { echo "bench: no PostgreSQL binaries (set PG_BINDIR)" >&2; exit 2; }

export PATH="$PG_BINDIR:$PATH" # pgcopydb and pgtide pick pg_dump from here
export PGUSER=postgres PGDATABASE=bench PGCONNECT_TIMEOUT=10
unset PGHOST PGPORT PGSERVICE PGPASSWORD PGOPTIONS
export LC_ALL=C

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------ dependencies --
as_root=()
[ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && as_root=(sudo -n); }
apt_updated=0
apt_install() { # apt_install PACKAGE: returns non-zero when it cannot
	if [ "$(id -u)" -ne 0 ] && [ ${#as_root[@]} -eq 0 ]; then return 1; fi
	if [ $apt_updated -eq 0 ]; then
		"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
		apt_updated=1
	fi
	log "installing Debian package $1"
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time || die "/usr/bin/time is missing and package 'time' cannot be installed"

# The servers run as an unprivileged user: root hands them to 'postgres'.
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root needs the system user 'postgres'"
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

# -------------------------------------------------------------- work space --
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgtide-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$WORK/pg" "$WORK/logs" "$WORK/res"
[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK/pg"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR=$ROOT/bench/out
mkdir -p "$OUT_DIR"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if declare -F bench_on_exit >/dev/null; then
		bench_on_exit
	fi
	for s in src tgt; do
		if [ -f "$WORK/pg/$s/postmaster.pid" ]; then
			as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/$s" -m immediate -w stop >/dev/null 2>&1
		fi
	done
	if [ -d "$OUT_DIR" ] && [ -n "$(ls -A "$WORK/logs" 2>/dev/null)" ]; then
		mkdir -p "$OUT_DIR/$BENCH_NAME-$STAMP.logs" && cp -r "$WORK/logs/." "$OUT_DIR/$BENCH_NAME-$STAMP.logs/"
	fi
	if [ "$BENCH_KEEP" = 1 ]; then
		log "kept $WORK (servers stopped)"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted, stopping the servers"; exit 130' INT
trap 'log "terminated, stopping the servers"; exit 143' TERM

# ----------------------------------------------------------------- servers --
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # below the ephemeral range, so no client socket holds it
	local p
	for _ in $(seq 200); do
		p=$((15000 + RANDOM % 17000))
		[ "$p" != "${SRC_PORT:-}" ] && port_free "$p" && { echo "$p"; return; }
	done
	die "no free port found"
}

start_server() { # start_server NAME: sets the port in PORT_NAME
	local d=$WORK/pg/$1 port try
	as_pg "$PG_BINDIR/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --no-locale >"$WORK/logs/initdb-$1.log" 2>&1 ||
		{ cat "$WORK/logs/initdb-$1.log" >&2; die "initdb $1 failed"; }
	cat >>"$d/postgresql.conf" <<EOF
# pgtide bench
listen_addresses = '127.0.0.1'
unix_socket_directories = '$d'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = $((JOBS + 8))
max_logical_replication_workers = $((JOBS + 4))
max_sync_workers_per_subscription = $JOBS
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
fsync = on
EOF
	for try in 1 2 3 4 5; do # another process may take the port between the check and the bind
		port=$(pick_port)
		rm -f "$WORK/pg/$1.log"
		echo "port = $port" >>"$d/postgresql.conf"
		if as_pg "$PG_BINDIR/pg_ctl" -D "$d" -l "$WORK/pg/$1.log" -w -t 60 start >/dev/null; then
			printf -v "PORT_$1" %s "$port"
			return 0
		fi
		grep -q 'could not create any TCP/IP sockets' "$WORK/pg/$1.log" || break
		log "port $port of server $1 was taken (try $try), picking another"
	done
	cat "$WORK/pg/$1.log" >&2
	die "server $1 did not start"
}

# shellcheck disable=SC2034 # the callers use SRC_ADMIN, TGT_ADMIN and PG_VERSION
# start_servers: the source and the target, and their URIs (database 'bench',
# which the caller creates) in SRC, TGT, SRC_ADMIN and TGT_ADMIN.
start_servers() {
	PORT_src="" PORT_tgt=""
	start_server src
	SRC_PORT=$PORT_src
	start_server tgt
	TGT_PORT=$PORT_tgt
	SRC="postgresql://postgres@127.0.0.1:$SRC_PORT/bench"
	TGT="postgresql://postgres@127.0.0.1:$TGT_PORT/bench"
	SRC_ADMIN="postgresql://postgres@127.0.0.1:$SRC_PORT/postgres"
	TGT_ADMIN="postgresql://postgres@127.0.0.1:$TGT_PORT/postgres"
	export SRC TGT
	PG_VERSION=$(psql "$SRC_ADMIN" -XAtqc "SHOW server_version")
	log "PostgreSQL $PG_VERSION: source on port $SRC_PORT, target on port $TGT_PORT, work dir $WORK"
}

q() { psql "$1" -X -v ON_ERROR_STOP=1 -Atq -c "$2"; }

# ----------------------------------------------------------------- dataset --
# build_dataset SIZE_MB: the full-load benchmark's dataset, about SIZE_MB on
# disk, in the database of $SRC (public schema), vacuumed and analyzed.
# Shares: pgbench 50%, jsonb documents 30%, partitioned 20%. The per-unit
# sizes are measured on PostgreSQL 15 (table + toast + indexes).
build_dataset() {
	local size_mb=$1 t0
	PGB_SCALE=$(awk -v m="$size_mb" 'BEGIN { s = int(m * 0.50 / 15.2 + 0.5); print (s < 1 ? 1 : s) }')
	DOC_ROWS=$(awk -v m="$size_mb" 'BEGIN { printf "%d", m * 0.30 * 1048576 / 3500 }')
	EVT_ROWS=$(awk -v m="$size_mb" 'BEGIN { printf "%d", m * 0.20 * 1048576 / 187 }')

	log "building a ~${size_mb} MB dataset: pgbench scale $PGB_SCALE, $DOC_ROWS documents, $EVT_ROWS events"
	t0=$(now)
	pgbench -i -q -s "$PGB_SCALE" --foreign-keys -h 127.0.0.1 -p "$SRC_PORT" -U postgres bench \
		>"$WORK/logs/pgbench-init.log" 2>&1 || { tail -n 20 "$WORK/logs/pgbench-init.log" >&2; die "pgbench -i failed"; }

	psql "$SRC" -X -q -v ON_ERROR_STOP=1 -v doc_rows="$DOC_ROWS" -v evt_rows="$EVT_ROWS" >"$WORK/logs/dataset.log" 2>&1 <<'SQL' || { tail -n 20 "$WORK/logs/dataset.log" >&2; die "dataset build failed"; }
-- Documents: 2-4 KB of jsonb each, half random hex (pglz cannot shrink it),
-- half structured items whose keys and values vary from row to row.
CREATE TABLE docs (
	id bigserial PRIMARY KEY,
	account_id int NOT NULL,
	created_at timestamptz NOT NULL,
	doc jsonb NOT NULL
);
INSERT INTO docs (account_id, created_at, doc)
SELECT g % 5000,
       timestamptz '2024-01-01' + g * interval '17 seconds',
       jsonb_build_object(
	'kind', (ARRAY['order', 'invoice', 'ticket', 'profile', 'event'])[1 + g % 5],
	'customer', jsonb_build_object(
		'name', initcap(substr(md5(g::text), 1, 7)) || ' ' || initcap(substr(md5((g * 7)::text), 1, 9)),
		'email', substr(md5((g * 3)::text), 1, 12) || '@example.' || (ARRAY['com', 'org', 'net'])[1 + g % 3],
		'tier', (ARRAY['free', 'pro', 'enterprise'])[1 + g % 3],
		'score', round((random() * 1000)::numeric, 3)),
	'tags', (SELECT jsonb_agg(substr(md5(g::text || t::text), 1, 3 + t % 6))
	         FROM generate_series(1, 2 + g % 6) t),
	'items', (SELECT jsonb_agg(jsonb_build_object(
			'sku', 'SKU-' || (random() * 1e6)::int,
			'qty', 1 + (random() * 9)::int,
			'price', round((random() * 500)::numeric, 2),
			'ok', random() < 0.8,
			'note', md5(random()::text)))
	          FROM generate_series(1, 6 + (g * 7) % 11) i),
	'blob', (SELECT string_agg(md5(random()::text || b::text), '')
	         FROM generate_series(1, 32 + (g * 13) % 32) b))
FROM generate_series(1, :doc_rows) g;
CREATE INDEX docs_account_created ON docs (account_id, created_at);

-- Events: hash-partitioned in 8, with a primary key and three more indexes.
CREATE TABLE events (
	id bigint NOT NULL,
	account_id int NOT NULL,
	kind text NOT NULL,
	created_at timestamptz NOT NULL,
	amount numeric(12, 2),
	note text,
	PRIMARY KEY (id)
) PARTITION BY HASH (id);
SELECT format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER %s)', r, r)
FROM generate_series(0, 7) r \gexec
INSERT INTO events
SELECT g, (g::bigint * 7919) % 20000,
       (ARRAY['view', 'click', 'buy', 'refund', 'signup'])[1 + (g * 31) % 5],
       timestamptz '2024-01-01' + (g * 7) % 31536000 * interval '1 second',
       CASE WHEN g % 4 = 0 THEN NULL ELSE round((random() * 1000)::numeric, 2) END,
       CASE WHEN g % 3 = 0 THEN substr(md5(g::text), 1, 8 + g % 24) END
FROM generate_series(1, :evt_rows) g;
CREATE INDEX events_account_created ON events (account_id, created_at);
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_kind_buy ON events (kind, amount) WHERE kind <> 'view';
VACUUM ANALYZE;
CHECKPOINT;
SQL
	log "dataset built in $(elapsed "$t0" "$(now)") s"
}
