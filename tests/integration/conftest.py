"""Integration-test foundation for pgtide: real PostgreSQL servers, never mocks.

What this module provides (see each docstring for details):

  PgServer                 one throw-away PostgreSQL cluster in a temp dir
  Database                 one database on a PgServer (what source_db/target_db are)
  PgTide, PgTideProcess    running the pgtide binary (env PGTIDE_BIN)

  fixtures: pg_source_server, pg_target_server (session), source_db, target_db,
            make_server, pgtide, awkward_sql
  helpers:  wait_for, table_rows, user_tables, assert_same_content, load_sql_file,
            table_columns, diff_rows, qualified, find_bindir, version_bindir,
            AWKWARD_SQL,
            PW_USER, PW_PASSWORD

Servers run as the current user, or as the system user `postgres` when the tests
run as root (PostgreSQL refuses to run as root). The database superuser is always
`postgres` (trust over 127.0.0.1); role `pw_user` (password `secret`, superuser)
must give its password, for normal and replication connections alike.

Every server and temp dir is removed at the end: by the fixtures' teardown, by a
pytest_sessionfinish hook, and by an atexit handler as last resort (also on Ctrl-C;
SIGTERM is turned into KeyboardInterrupt so it takes the same path).

Environment:
  PGTIDE_BIN          the pgtide binary (tests using the `pgtide` fixture skip without it)
  PGTIDE_PG_BINDIR    PostgreSQL server bin dir (default: newest
                      /usr/lib/postgresql/*/bin holding initdb, then PATH)
  PGTIDE_SOURCE_BINDIR, PGTIDE_TARGET_BINDIR
                      the session source's or target's bin dir, when they
                      differ (default: as PGTIDE_PG_BINDIR)
  PGTIDE_TEST_TMPDIR  where server temp dirs go (default: the system temp dir)
"""

from __future__ import annotations

import atexit
import collections
import glob
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
AWKWARD_SQL = HERE / "sql" / "awkward.sql"

SUPERUSER = "postgres"
PW_USER = "pw_user"
PW_PASSWORD = "secret"

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# Settings every test server gets; make_server(**settings) overrides them.
DEFAULT_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "logical",
    "max_replication_slots": 16,
    "max_wal_senders": 16,
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "max_connections": 60,
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_timezone": "UTC",
    "timezone": "UTC",
    "lc_messages": "C",
}

# libpq reads these; a hermetic test must not inherit them from the caller.
_LIBPQ_ENV_PREFIX = "PG"
_KEEP_ENV = ("PGTIDE_",)


def _clean_env(extra=None):
    """os.environ without libpq's PG* variables, plus `extra` (None values delete)."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(_LIBPQ_ENV_PREFIX) and not k.startswith(_KEEP_ENV))}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# --------------------------------------------------------------------------- #
# Locating PostgreSQL
# --------------------------------------------------------------------------- #

def find_bindir(role: str | None = None) -> str:
    """The PostgreSQL server bin dir: for role "source" or "target",
    $PGTIDE_SOURCE_BINDIR or $PGTIDE_TARGET_BINDIR when set; else
    $PGTIDE_PG_BINDIR, else the newest /usr/lib/postgresql/<N>/bin holding
    initdb, else the dir of initdb on PATH."""
    names = ["PGTIDE_PG_BINDIR"]
    if role:
        names.insert(0, f"PGTIDE_{role.upper()}_BINDIR")
    for name in names:
        env = os.environ.get(name)
        if env:
            if not os.access(os.path.join(env, "initdb"), os.X_OK):
                raise RuntimeError(f"{name}={env} holds no executable initdb")
            return env
    candidates = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        ver = os.path.basename(os.path.dirname(d))
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            try:
                key = tuple(int(p) for p in ver.split("."))
            except ValueError:
                continue
            candidates.append((key, d))
    if candidates:
        return max(candidates)[1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    raise RuntimeError("no PostgreSQL server binaries found; set PGTIDE_PG_BINDIR")


def version_bindir(major: int) -> str | None:
    """The server bin dir of PostgreSQL `major`: .pg/<major>/bin of this
    checkout (scripts/install-pg-versions.sh), else
    /usr/lib/postgresql/<major>/bin; None when neither holds initdb."""
    for d in (REPO_ROOT / ".pg" / str(major) / "bin",
              Path(f"/usr/lib/postgresql/{major}/bin")):
        if os.access(d / "initdb", os.X_OK):
            return str(d)
    return None


def _client_program(bindir: str, prog: str) -> str:
    """`prog` from bindir, else from the default installation: some server
    builds (.pg/<major>) ship no client programs, and a newer psql talks to
    every older server."""
    path = os.path.join(bindir, prog)
    if os.access(path, os.X_OK):
        return path
    return os.path.join(find_bindir(), prog)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_tmpdir() -> str:
    """A temp base dir that the server's OS user can traverse and whose unix
    socket paths stay below the 107-byte limit."""
    base = os.environ.get("PGTIDE_TEST_TMPDIR") or tempfile.gettempdir()
    ok = len(base) <= 60
    if ok and IS_ROOT:
        # every ancestor must be searchable by the unprivileged postgres user
        p = Path(base).resolve()
        for part in [p, *p.parents]:
            if not os.stat(part).st_mode & 0o001:
                ok = False
                break
    return base if ok else "/tmp"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _conf_value(v) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


# --------------------------------------------------------------------------- #
# Cleanup registry (servers and pgtide processes still alive at exit)
# --------------------------------------------------------------------------- #

_LIVE_SERVERS: "set[PgServer]" = set()
_LIVE_PROCS: "set[subprocess.Popen]" = set()
_REGISTRY_LOCK = threading.Lock()
# bindir -> a pristine data directory initdb made, copied for each server
_TEMPLATES: "dict[str, str]" = {}


def _cleanup_everything():
    with _REGISTRY_LOCK:
        procs = list(_LIVE_PROCS)
        servers = list(_LIVE_SERVERS)
    for p in procs:
        _kill_proc(p)
    for s in servers:
        try:
            s.destroy()
        except Exception as e:  # pragma: no cover - best effort at exit
            print(f"conftest: could not destroy {s!r}: {e}", file=sys.stderr)
    for template in list(_TEMPLATES.values()):
        shutil.rmtree(os.path.dirname(template), ignore_errors=True)


atexit.register(_cleanup_everything)


def _default_signals():
    """preexec_fn: undo SIG_IGN inherited from the test runner (e.g. SIGINT when
    pytest runs as a background job), so signals sent by tests behave normally."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _kill_proc(p: subprocess.Popen, grace: float = 5.0):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                p.kill()
            p.wait(grace)
    with _REGISTRY_LOCK:
        _LIVE_PROCS.discard(p)


# --------------------------------------------------------------------------- #
# PgServer
# --------------------------------------------------------------------------- #

class PgServer:
    """A throw-away PostgreSQL cluster. The constructor runs initdb; call start().

    settings: extra/overriding postgresql.conf settings (e.g. wal_level='replica').
    """

    _counter = itertools.count(1)

    def __init__(self, name: str = "pg", settings: dict | None = None,
                 bindir: str | None = None):
        self.name = name
        self.bindir = bindir or find_bindir()
        self.os_user = SUPERUSER if IS_ROOT else None   # None: the current user
        self.superuser = SUPERUSER
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.running = False
        self._destroyed = False
        self._starting = False
        safe = re.sub(r"[^A-Za-z0-9_]+", "_", name)[:20]
        self.dir = tempfile.mkdtemp(prefix=f"pgtide-{safe}-", dir=_base_tmpdir())
        with _REGISTRY_LOCK:
            _LIVE_SERVERS.add(self)
        try:
            if IS_ROOT:
                shutil.chown(self.dir, user=SUPERUSER, group=None)
                os.chmod(self.dir, 0o755)  # root test code reads logs, tmp stays private enough
            self.datadir = os.path.join(self.dir, "data")
            self.logfile = os.path.join(self.dir, "server.log")
            self.socket_dir = self.dir
            self._initdb(settings or {})
        except BaseException:
            self.destroy()
            raise

    def __repr__(self):
        return f"<PgServer {self.name} port={self.port} dir={self.dir}>"

    # ---- process helpers ------------------------------------------------- #

    def _cmd(self, prog: str, *args) -> list[str]:
        cmd = [os.path.join(self.bindir, prog), *map(str, args)]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        return cmd

    def _run(self, prog: str, *args, timeout: float = 120, check: bool = True):
        """Run a PostgreSQL program as the cluster's OS user, in its own process
        group: if we are interrupted (Ctrl-C, timeout) the whole group is killed,
        so no orphaned initdb/bootstrap backend keeps writing into our temp dir.
        (The postmaster started by pg_ctl puts itself in its own session.)"""
        cmd = self._cmd(prog, *args)
        p = subprocess.Popen(cmd, cwd=self.dir, env=_clean_env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except BaseException:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.communicate()
            raise
        r = subprocess.CompletedProcess(cmd, p.returncode, out, err)
        if check and r.returncode != 0:
            raise RuntimeError(
                f"{prog} {' '.join(map(str, args))} failed ({r.returncode}) for {self!r}\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}\nlog tail:\n{self.log_tail()}")
        return r

    def _initdb(self, settings: dict):
        # initdb takes about 2 s; a copy of a cluster it made takes 0.1 s.
        # Each bindir gets one pristine cluster per test process, copied for
        # every server made with it; the settings below go into the copy.
        template = _TEMPLATES.get(self.bindir)
        if template is None or not os.path.isdir(template):
            tdir = tempfile.mkdtemp(prefix="pgtide-template-", dir=_base_tmpdir())
            if IS_ROOT:
                shutil.chown(tdir, user=SUPERUSER, group=None)
            template = os.path.join(tdir, "data")
            self._run("initdb", "-D", template, "-A", "trust", "--no-sync",
                      "-E", "UTF8", "--locale=C", "-U", self.superuser)
            _TEMPLATES[self.bindir] = template
        copy = ["cp", "-a", template, self.datadir]
        if self.os_user:
            copy = ["runuser", "-u", self.os_user, "--", *copy]
        subprocess.run(copy, check=True, stdin=subprocess.DEVNULL)
        conf = dict(DEFAULT_SETTINGS)
        conf.update(settings)
        conf["port"] = self.port
        conf["unix_socket_directories"] = self.socket_dir
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\n# ---- pgtide integration tests ----\n")
            for k, v in conf.items():
                f.write(f"{k} = {_conf_value(v)}\n")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write(
                "# TYPE  DATABASE     USER      ADDRESS        METHOD\n"
                "local   all          all                      trust\n"
                "local   replication  all                      trust\n"
                f"host    all          {PW_USER}   127.0.0.1/32   scram-sha-256\n"
                f"host    replication  {PW_USER}   127.0.0.1/32   scram-sha-256\n"
                "host    all          all       127.0.0.1/32   trust\n"
                "host    replication  all       127.0.0.1/32   trust\n")

    # ---- lifecycle --------------------------------------------------------- #

    def start(self, timeout: float = 60):
        """Start the server (if stopped) and make sure role pw_user exists."""
        if self._destroyed:
            raise RuntimeError(f"{self!r} was destroyed")
        if self.running:
            return self
        for attempt in range(5):
            # if interrupted before pg_ctl returns, destroy() must still expect
            # a postmaster
            self._starting = True
            r = self._run("pg_ctl", "start", "-w", "-t", int(timeout), "-D", self.datadir,
                          "-l", self.logfile, timeout=timeout + 30, check=False)
            self._starting = False
            if r.returncode == 0:
                break
            log = self.log_tail(30)
            if "could not bind" in log or "Address already in use" in log:
                # someone took our port between _free_port() and now: pick another
                self.port = _free_port()
                self.set_conf(port=self.port)
                continue
            raise RuntimeError(f"pg_ctl start failed for {self!r}\n{r.stdout}{r.stderr}\n"
                               f"log tail:\n{log}")
        else:
            raise RuntimeError(f"could not find a free port for {self!r}")
        self.running = True
        self.execute("postgres", f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PW_USER}') THEN
                CREATE ROLE {PW_USER} LOGIN PASSWORD '{PW_PASSWORD}' SUPERUSER;
              END IF;
            END $$""")
        return self

    def stop(self, mode: str = "fast", timeout: float = 60):
        """Stop the server (mode: smart, fast or immediate). No-op when stopped."""
        if not os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self.running = False
            return self
        self._run("pg_ctl", "stop", "-w", "-t", int(timeout), "-D", self.datadir,
                  "-m", mode, timeout=timeout + 30,
                  check=self.running)
        self.running = False
        return self

    def restart(self, mode: str = "fast"):
        self.stop(mode)
        return self.start()

    def reload(self, timeout: float = 10):
        """Reload the configuration; returns once the postmaster has re-read it."""
        marker = "received SIGHUP, reloading configuration files"
        before = self._read_log().count(marker)
        self._run("pg_ctl", "reload", "-D", self.datadir)
        # The postmaster logs `marker` (LOG level) when it handles SIGHUP.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read_log().count(marker) > before:
                time.sleep(0.05)  # let it finish processing the files
                return self
            time.sleep(0.02)
        time.sleep(0.5)  # marker not seen (logging changed?): give it a moment
        return self

    def set_conf(self, **settings):
        """Write settings to postgresql.auto.conf (like ALTER SYSTEM); a value of
        None removes the setting. Takes effect at reload() or restart()."""
        path = os.path.join(self.datadir, "postgresql.auto.conf")
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = ["# Do not edit this file manually!",
                     "# It will be overwritten by the ALTER SYSTEM command."]
        keys = {k.lower() for k in settings}
        kept = [ln for ln in lines
                if ln.split("=", 1)[0].strip().lower() not in keys]
        for k, v in settings.items():
            if v is not None:
                kept.append(f"{k} = {_conf_value(v)}")
        with open(path, "w") as f:
            f.write("\n".join(kept) + "\n")
        if IS_ROOT:
            shutil.chown(path, user=SUPERUSER, group=None)
        return self

    def destroy(self):
        """Stop the server (immediately) and remove its temp dir. Idempotent; if
        interrupted, the atexit handler tries again."""
        if self._destroyed:
            return
        datadir = getattr(self, "datadir", None)
        if datadir:
            pidfile = os.path.join(datadir, "postmaster.pid")
            if self._starting:   # interrupted inside pg_ctl start: wait for the pid file
                for _ in range(30):
                    if os.path.exists(pidfile):
                        break
                    time.sleep(0.1)
            if os.path.exists(pidfile):
                try:
                    self._run("pg_ctl", "stop", "-w", "-t", "30", "-D", datadir,
                              "-m", "immediate", timeout=60, check=False)
                finally:
                    self._kill_postmaster_if_alive()
        self.running = False
        for _ in range(20):
            shutil.rmtree(self.dir, ignore_errors=True)
            if not os.path.exists(self.dir):
                break
            time.sleep(0.1)
        self._destroyed = True
        with _REGISTRY_LOCK:
            _LIVE_SERVERS.discard(self)

    def _kill_postmaster_if_alive(self):
        pidfile = os.path.join(self.datadir, "postmaster.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            except PermissionError:
                return
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

    # ---- logs ---------------------------------------------------------------- #

    def _read_log(self) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines: int = 50) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])

    # ---- connecting ---------------------------------------------------------- #

    def uri(self, dbname: str = "postgres", user: str | None = None,
            password: str | None = None, **params) -> str:
        """postgresql://user[:password]@127.0.0.1:port/dbname[?params]"""
        q = lambda s: urllib.parse.quote(str(s), safe="")  # noqa: E731
        auth = q(user or self.superuser)
        if password is not None:
            auth += ":" + q(password)
        uri = f"postgresql://{auth}@{self.host}:{self.port}/{q(dbname)}"
        if params:
            uri += "?" + urllib.parse.urlencode(params)
        return uri

    def conninfo(self, dbname: str = "postgres", user: str | None = None,
                 password: str | None = None, **params) -> dict:
        kw = dict(host=self.host, port=self.port, dbname=dbname,
                  user=user or self.superuser, connect_timeout=10)
        if password is not None:
            kw["password"] = password
        kw.update(params)
        return kw

    def connect(self, dbname: str = "postgres", user: str | None = None,
                password: str | None = None, **params) -> psycopg.Connection:
        """An autocommit psycopg connection (the caller closes it)."""
        return psycopg.connect(autocommit=True,
                               **self.conninfo(dbname, user, password, **params))

    def execute(self, dbname: str, sql: str, params=None):
        """Run SQL (several statements allowed when params is None)."""
        with self.connect(dbname) as conn:
            conn.execute(sql, params)

    def query(self, dbname: str, sql: str, params=None) -> list[tuple]:
        """Rows of the last statement that returns rows ([] if none does)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql, params)
            rows = []
            while True:
                if cur.description is not None:
                    rows = cur.fetchall()
                if not cur.nextset():
                    return rows

    def query_one(self, dbname: str, sql: str, params=None):
        """The first column of the first row (None when no row)."""
        rows = self.query(dbname, sql, params)
        return rows[0][0] if rows else None

    # ---- databases ----------------------------------------------------------- #

    def create_database(self, name: str):
        # 15's default strategy writes the template's every block to WAL; a
        # copy of its files (a checkpoint, cheap without fsync) is faster
        strategy = " STRATEGY FILE_COPY" if self.version_num() >= 150000 else ""
        self.execute("postgres", f"CREATE DATABASE {_quote_ident(name)}"
                     f" TEMPLATE template0{strategy}")
        return name

    def drop_database(self, name: str, timeout: float = 30):
        """Drop a database: first its subscriptions (without touching their remote
        slots), its replication slots (terminating walsenders using them), then the
        database itself WITH (FORCE), which terminates its backends."""
        with self.connect("postgres") as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s",
                               (name,)).fetchone()
            if not row:
                return
            subs = conn.execute(
                "SELECT s.subname FROM pg_subscription s JOIN pg_database d "
                "ON d.oid = s.subdbid WHERE d.datname = %s", (name,)).fetchall()
        if subs:
            with self.connect(name) as conn:
                for (sub,) in subs:
                    qs = _quote_ident(sub)
                    conn.execute(f"ALTER SUBSCRIPTION {qs} DISABLE")
                    conn.execute(f"ALTER SUBSCRIPTION {qs} SET (slot_name = NONE)")
                    conn.execute(f"DROP SUBSCRIPTION {qs}")
        deadline = time.monotonic() + timeout
        with self.connect("postgres") as conn:
            while True:
                # stop new connections (e.g. a pgtide that reconnects) first
                conn.execute(f"ALTER DATABASE {_quote_ident(name)} ALLOW_CONNECTIONS false")
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
                conn.execute("SELECT pg_terminate_backend(active_pid) "
                             "FROM pg_replication_slots "
                             "WHERE database = %s AND active_pid IS NOT NULL", (name,))
                slots = conn.execute("SELECT slot_name FROM pg_replication_slots "
                                     "WHERE database = %s", (name,)).fetchall()
                try:
                    for (slot,) in slots:
                        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
                    break
                except psycopg.errors.Error:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        # origins are the cluster's: the database's go with it
        self.drop_replication_origins(row[0])

    def drop_replication_origins(self, db_oid):
        """Drop the replication origins of the database whose oid is db_oid
        (pgtide names a task's origin after its target database's oid), so
        that a later database of that oid cannot inherit their position;
        those of the databases other tests still use stay. Origins in use
        are skipped."""
        with self.connect("postgres") as conn:
            origins = conn.execute(
                "SELECT roname FROM pg_replication_origin "
                "WHERE roname LIKE %s", (f"%\\_{db_oid}",)).fetchall()
            for (ro,) in origins:
                try:
                    conn.execute("SELECT pg_replication_origin_drop(%s)", (ro,))
                except psycopg.errors.Error:
                    pass

    def databases(self) -> list[str]:
        return [r[0] for r in self.query(
            "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate "
                        "AND datname <> 'postgres' ORDER BY 1")]

    def version_num(self) -> int:
        return int(self.query_one("postgres", "SHOW server_version_num"))

    def psql(self, dbname: str, *args, check: bool = True, timeout: float = 300):
        """Run psql (from this server's bin dir) against dbname, over TCP."""
        cmd = [_client_program(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
               "-d", self.uri(dbname), *map(str, args)]
        r = subprocess.run(cmd, env=_clean_env(), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql {' '.join(map(str, args))} on {dbname} failed "
                               f"({r.returncode}):\n{r.stderr}")
        return r


# --------------------------------------------------------------------------- #
# Database
# --------------------------------------------------------------------------- #

class Database:
    """One database on a PgServer: .server, .name, .uri, connect(), execute(),
    query(). Connections opened via connect() are closed at drop()."""

    def __init__(self, server: PgServer, name: str):
        self.server = server
        self.name = name
        self._conns: list[psycopg.Connection] = []

    def __repr__(self):
        return f"<Database {self.name} on {self.server.name}:{self.server.port}>"

    @property
    def uri(self) -> str:
        return self.server.uri(self.name)

    def uri_as(self, user: str, password: str | None = None, **params) -> str:
        return self.server.uri(self.name, user=user, password=password, **params)

    def connect(self, user: str | None = None, password: str | None = None,
                **params) -> psycopg.Connection:
        conn = self.server.connect(self.name, user, password, **params)
        self._conns.append(conn)
        return conn

    def execute(self, sql: str, params=None):
        self.server.execute(self.name, sql, params)

    def query(self, sql: str, params=None) -> list[tuple]:
        return self.server.query(self.name, sql, params)

    def query_one(self, sql: str, params=None):
        return self.server.query_one(self.name, sql, params)

    def load_sql_file(self, path):
        return load_sql_file(self, path)

    def drop(self):
        for c in self._conns:
            try:
                c.close()
            except Exception:
                pass
        self._conns.clear()
        self.server.drop_database(self.name)


def load_sql_file(db: Database, path) -> subprocess.CompletedProcess:
    """Load a SQL file with psql -v ON_ERROR_STOP=1 -f (raises on error)."""
    return db.server.psql(db.name, "-f", str(path))


# --------------------------------------------------------------------------- #
# pgtide
# --------------------------------------------------------------------------- #

# the commands that run check first, and how long the tests have them
# measure the source's WAL rate (check.wal_sample)
SAMPLED_COMMANDS = ("check", "copy", "migrate")
WAL_SAMPLE_MS = 200
WAL_SAMPLE_ARG = f"--wal-sample={WAL_SAMPLE_MS}"


class PgTideProcess(subprocess.Popen):
    """A pgtide started in the background; stdout/stderr go to files."""

    def __init__(self, args, stdout_path, stderr_path, **kw):
        self.stdout_path = Path(stdout_path)
        self.stderr_path = Path(stderr_path)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        super().__init__(args, stdout=self._out, stderr=self._err,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=_default_signals, **kw)
        with _REGISTRY_LOCK:
            _LIVE_PROCS.add(self)

    def read_stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def read_stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 60,
                        stream: str = "stderr") -> re.Match:
        """Wait until regex `pattern` appears in stderr (or stdout); fails early
        if the process exits first."""
        reader = self.read_stderr if stream == "stderr" else self.read_stdout
        rx = re.compile(pattern)

        def found():
            m = rx.search(reader())
            if not m and self.poll() is not None:
                m = rx.search(reader())
                if not m:
                    raise AssertionError(
                        f"pgtide exited ({self.returncode}) before printing {pattern!r}\n"
                        f"stderr:\n{self.read_stderr()}")
            return m
        return wait_for(found, timeout, 0.05, f"pgtide never printed {pattern!r}; "
                                              f"{stream} so far:\n{reader()[-4000:]}")

    def stop(self, sig=signal.SIGINT, timeout: float = 60) -> int:
        """Send `sig` and wait for the exit code (kills it after `timeout`)."""
        if self.poll() is None:
            self.send_signal(sig)
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_proc(self)
                raise AssertionError(f"pgtide did not exit within {timeout}s of {sig!r}")
        self.close_files()
        return self.returncode

    def close_files(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        if self.poll() is not None:
            with _REGISTRY_LOCK:
                _LIVE_PROCS.discard(self)


class PgTide:
    """Runs the pgtide binary. Every run is remembered and printed when the test
    fails. Runs use `workdir` (a per-test temp dir) as cwd and an environment
    without libpq PG* variables (env entries are added; a None value removes)."""

    def __init__(self, binary: str, workdir):
        self.binary = str(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.history: list[dict] = []
        self.procs: list[PgTideProcess] = []
        self._n = itertools.count(1)

    def _env(self, env):
        base = {"PGPASSFILE": str(self.workdir / "no-such-pgpass")}
        base.update(env or {})
        return _clean_env(base)

    @staticmethod
    def _args(args) -> list[str]:
        """The command line of a test's run: the commands that check the
        source measure its WAL rate for 200 ms, not the default second (the
        tests' sources are small; the measurement is the same code), unless
        the test says how long."""
        args = [str(a) for a in args]
        if args and args[0] in SAMPLED_COMMANDS and \
                not any(a.startswith("--wal-sample") for a in args):
            args.insert(1, WAL_SAMPLE_ARG)
        return args

    def run(self, *args, timeout: float = 300, env: dict | None = None,
            input: str | None = None, cwd=None) -> subprocess.CompletedProcess:
        """Run to completion; never raises on a non-zero exit (fails the test on
        timeout, showing what it printed)."""
        cmd = [self.binary, *self._args(args)]
        t0 = time.monotonic()
        rec = {"args": cmd, "returncode": None, "stdout": "", "stderr": "", "secs": None}
        self.history.append(rec)
        try:
            r = subprocess.run(cmd, cwd=cwd or self.workdir, env=self._env(env),
                               input=input, capture_output=True, text=True,
                               errors="replace", timeout=timeout,
                               preexec_fn=_default_signals,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            dec = lambda b: (b.decode(errors="replace") if isinstance(b, bytes) else b or "")  # noqa: E731
            rec.update(stdout=dec(e.stdout), stderr=dec(e.stderr),
                       returncode="timeout", secs=time.monotonic() - t0)
            pytest.fail(f"pgtide timed out after {timeout}s: {' '.join(cmd)}\n"
                        f"stderr:\n{rec['stderr'][-4000:]}")
        rec.update(returncode=r.returncode, stdout=r.stdout, stderr=r.stderr,
                   secs=time.monotonic() - t0)
        return r

    def start(self, *args, env: dict | None = None, cwd=None) -> PgTideProcess:
        """Start in the background (own session); the test's teardown kills it."""
        n = next(self._n)
        p = PgTideProcess([self.binary, *self._args(args)],
                          self.workdir / f"bg{n}.stdout", self.workdir / f"bg{n}.stderr",
                          cwd=cwd or self.workdir, env=self._env(env))
        self.procs.append(p)
        self.history.append({"args": p.args, "proc": p})
        return p

    def report(self, limit: int = 20000) -> str:
        out = []
        for rec in self.history:
            if "proc" in rec:
                p = rec["proc"]
                rc = p.poll()
                out.append(f"$ {' '.join(rec['args'])}  [background, exit {rc}]")
                out.append("stdout:\n" + p.read_stdout()[-limit:])
                out.append("stderr:\n" + p.read_stderr()[-limit:])
            else:
                secs = f"{rec['secs']:.1f}s" if rec["secs"] is not None else "?"
                out.append(f"$ {' '.join(rec['args'])}  [exit {rec['returncode']}, {secs}]")
                out.append("stdout:\n" + (rec["stdout"] or "")[-limit:])
                out.append("stderr:\n" + (rec["stderr"] or "")[-limit:])
        return "\n".join(out)

    def cleanup(self):
        for p in self.procs:
            _kill_proc(p)
            p.close_files()


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #

class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout: float = 30, interval: float = 0.1,
             message: str | None = None, ignore=()):
    """Call predicate() until it returns something truthy (returned); raise
    WaitTimeout(message) at the deadline. Exceptions of types in `ignore` count
    as falsy (the last one is shown on timeout); others propagate."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except ignore as e:  # noqa: PERF203
            last_exc = e
        if time.monotonic() >= deadline:
            msg = message or f"condition not met: {getattr(predicate, '__name__', predicate)}"
            msg = f"{msg} (after {timeout}s)"
            if last_exc is not None:
                msg += f"; last error: {last_exc!r}"
            raise WaitTimeout(msg)
        time.sleep(interval)


# Session settings making the text form of every value deterministic.
_COMPARE_SETTINGS = ("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
                     "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; "
                     "SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C'; "
                     "SET LOCAL search_path = pg_catalog")


def _db_conn(db):
    if isinstance(db, psycopg.Connection):
        return db, False
    if isinstance(db, Database):
        return db.server.connect(db.name), True
    return db.connect(), True


def _split_qualified(name: str) -> tuple[str, str]:
    """'schema.table', '"My Schema"."Order Items"' or 'table' (public) -> parts."""
    parts = re.findall(r'"((?:[^"]|"")*)"|([^".]+)', name)
    idents = [q.replace('""', '"') if q else u for q, u in parts]
    if len(idents) == 1:
        return "public", idents[0]
    if len(idents) != 2:
        raise ValueError(f"not a [schema.]table name: {name!r}")
    return idents[0], idents[1]


def qualified(schema: str, table: str) -> str:
    """The SQL-ready "schema"."table" form that user_tables() returns."""
    return f"{_quote_ident(schema)}.{_quote_ident(table)}"


def table_columns(db, table: str) -> list[str]:
    schema, rel = _split_qualified(table)
    conn, close = _db_conn(db)
    try:
        found = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (schema, rel)).fetchall()
        rows = conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum", (schema, rel)).fetchall()
    finally:
        if close:
            conn.close()
    if not found:
        raise LookupError(f"table {table} not found")
    return [r[0] for r in rows]


def table_rows(db, table: str) -> list[tuple]:
    """All rows of `table` (a Database or psycopg connection; the name as
    user_tables() gives it, or plain schema.table), each column as text (NULL
    stays None), ordered by every column in C collation. A table without
    columns gives one empty tuple per row: its row count is its content."""
    cols = table_columns(db, table)
    schema, rel = _split_qualified(table)
    select = ", ".join(f'({_quote_ident(c)})::text COLLATE "C"' for c in cols)
    order = ", ".join(str(i) for i in range(1, len(cols) + 1))
    conn, close = _db_conn(db)
    try:
        with conn.transaction():
            conn.execute(_COMPARE_SETTINGS)
            if not cols:
                n = conn.execute(f"SELECT count(*) FROM ONLY {qualified(schema, rel)}"
                                 ).fetchone()[0]
                return [()] * n
            return conn.execute(f"SELECT {select} FROM ONLY {qualified(schema, rel)} "
                                f"ORDER BY {order}").fetchall()
    finally:
        if close:
            conn.close()


def user_tables(db, exclude_schemas=("pgtide",)) -> list[str]:
    """Every ordinary table and leaf partition (not partitioned parents, views,
    matviews or foreign tables) outside pg_catalog, information_schema, pg_toast
    and `exclude_schemas`, as sorted SQL-ready "schema"."table" names."""
    conn, close = _db_conn(db)
    try:
        rows = conn.execute(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' "
            "AND NOT (n.nspname = ANY(%s)) "
            "ORDER BY n.nspname::text COLLATE \"C\", c.relname::text COLLATE \"C\"",
            (list(exclude_schemas),)).fetchall()
    finally:
        if close:
            conn.close()
    return [r[0] for r in rows]


def _short(v, width: int = 80) -> str:
    if v is None:
        return "NULL"
    r = repr(v)
    return r if len(r) <= width else f"{r[:width - 20]}...<{len(v)} chars>"


def diff_rows(src_rows, tgt_rows, max_rows: int = 10) -> str | None:
    """A readable multiset difference of two row lists, None when equal."""
    if src_rows == tgt_rows:
        return None
    s, t = collections.Counter(src_rows), collections.Counter(tgt_rows)
    only_s, only_t = s - t, t - s
    lines = [f"source has {len(src_rows)} rows, target has {len(tgt_rows)} rows"]
    for label, c in (("only in source", only_s), ("only in target", only_t)):
        items = sorted(c.elements(), key=lambda r: tuple((x is None, x or "") for x in r))
        if items:
            lines.append(f"  {len(items)} row(s) {label}:")
            for r in items[:max_rows]:
                lines.append("    (" + ", ".join(_short(x) for x in r) + ")")
            if len(items) > max_rows:
                lines.append(f"    ... and {len(items) - max_rows} more")
    return "\n".join(lines)


def assert_same_content(src_db, tgt_db, tables=None, exclude_schemas=("pgtide",)):
    """Assert that both databases hold the same rows in the same user tables
    (tables=None: every user table on either side, and the same set of them).
    Compares columns by name; fails with a readable diff."""
    __tracebackhide__ = True
    problems = []
    if tables is None:
        st = user_tables(src_db, exclude_schemas)
        tt = user_tables(tgt_db, exclude_schemas)
        missing = sorted(set(st) - set(tt))
        extra = sorted(set(tt) - set(st))
        if missing:
            problems.append(f"tables missing on target: {', '.join(missing)}")
        if extra:
            problems.append(f"tables only on target: {', '.join(extra)}")
        tables = [t for t in st if t in set(tt)]
    for t in tables:
        sc, tc = table_columns(src_db, t), table_columns(tgt_db, t)
        if sc != tc:
            problems.append(f"{t}: columns differ: source {sc} vs target {tc}")
            continue
        d = diff_rows(table_rows(src_db, t), table_rows(tgt_db, t))
        if d:
            problems.append(f"{t}: rows differ\n{d}")
    if problems:
        raise AssertionError("databases differ:\n" + "\n".join(problems))


# --------------------------------------------------------------------------- #
# Fixtures
# --------------------------------------------------------------------------- #

_db_counter = itertools.count(1)


def _db_name(prefix: str, request) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    return f"{prefix}_{base[:40]}_{os.getpid() % 10000}_{next(_db_counter)}"


@pytest.fixture(scope="session")
def pg_source_server():
    s = PgServer("source", bindir=find_bindir("source"))
    try:
        s.start()
        yield s
    finally:
        s.destroy()


@pytest.fixture(scope="session")
def pg_target_server():
    s = PgServer("target", bindir=find_bindir("target"))
    try:
        s.start()
        yield s
    finally:
        s.destroy()


def _make_db(server: PgServer, prefix: str, request):
    db = Database(server, _db_name(prefix, request))
    server.create_database(db.name)
    try:
        yield db
    finally:
        if server.running:   # not when the session is being torn down by force
            db.drop()


@pytest.fixture
def source_db(pg_source_server, request):
    """A fresh database on the session source server, dropped afterwards."""
    yield from _make_db(pg_source_server, "src", request)


@pytest.fixture
def encoded_source(pg_source_server, request):
    """Factory: encoded_source('LATIN1') -> a fresh database of that
    encoding (C locale) on the session source server, dropped afterwards:
    its texts are other bytes than a UTF-8 target's."""
    made = []

    def make(encoding: str) -> Database:
        name = f"{encoding.lower()}_{abs(hash(request.node.name)) % 10**8}"
        pg_source_server.execute(
            "postgres", f"CREATE DATABASE {name} ENCODING '{encoding}'"
            " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        made.append(Database(pg_source_server, name))
        return made[-1]
    yield make
    for db in made:
        db.drop()


@pytest.fixture
def latin1_source(encoded_source):
    return encoded_source("LATIN1")


@pytest.fixture
def target_db(pg_target_server, request):
    """A fresh database on the session target server, dropped afterwards."""
    yield from _make_db(pg_target_server, "tgt", request)


@pytest.fixture
def make_server():
    """Factory: make_server(name='extra', start=True, bindir=None, **settings)
    -> PgServer (bindir: another installation, e.g. version_bindir(11)).
    Every server made is destroyed at the end of the test."""
    made = []

    def factory(name: str = "extra", start: bool = True, bindir: str | None = None,
                **settings) -> PgServer:
        s = PgServer(name, settings, bindir=bindir)
        made.append(s)
        if start:
            s.start()
        return s

    try:
        yield factory
    finally:
        for s in made:
            s.destroy()


@pytest.fixture
def pgtide(tmp_path):
    """PgTide for $PGTIDE_BIN (the test is skipped when it is unset)."""
    binary = os.environ.get("PGTIDE_BIN")
    if not binary:
        pytest.skip("PGTIDE_BIN is not set (make integration sets it to the built binary)")
    path = Path(binary)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    path = path.resolve()
    if not os.access(path, os.X_OK):
        pytest.fail(f"PGTIDE_BIN={binary} is not an executable file")
    t = PgTide(str(path), tmp_path / "pgtide")
    try:
        yield t
    finally:
        t.cleanup()


@pytest.fixture
def awkward_sql():
    """Path of tests/integration/sql/awkward.sql."""
    return AWKWARD_SQL


# Expose the helpers as fixtures too (for tests that prefer injection).
@pytest.fixture(name="wait_for")
def _wait_for_fixture():
    return wait_for


@pytest.fixture(name="table_rows")
def _table_rows_fixture():
    return table_rows


@pytest.fixture(name="user_tables")
def _user_tables_fixture():
    return user_tables


@pytest.fixture(name="assert_same_content")
def _assert_same_content_fixture():
    return assert_same_content


# --------------------------------------------------------------------------- #
# Hooks: failure reports, cleanup on interrupt
# --------------------------------------------------------------------------- #

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    servers = []
    for v in funcargs.values():
        if isinstance(v, PgTide) and v.history:
            rep.sections.append(("pgtide runs", v.report()))
        elif isinstance(v, Database):
            servers.append(v.server)
        elif isinstance(v, PgServer):
            servers.append(v)
    seen = set()
    for s in servers:
        if id(s) not in seen and not s._destroyed:
            seen.add(id(s))
            rep.sections.append((f"server log {s.name} (port {s.port})", s.log_tail(40)))


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: runs alone, after the tests run side by side "
        "(make test): it cuts connections or crashes servers on a schedule "
        "that another test's load on the machine would upset")
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    _cleanup_everything()
