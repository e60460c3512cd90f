# Shared by the benchmarks (sourced, not run): environment, logging, package
# installs, a work directory removed at exit, and two throwaway PostgreSQL
# servers (source and target) on free 127.0.0.1 ports.
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
