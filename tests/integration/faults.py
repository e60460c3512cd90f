"""Fault injection for pgtide's integration tests: break the network and the
servers under a running pgtide, while an application writes, and tell
exactly which of its transactions must be on the target.

  TcpProxy             a TCP proxy between pgtide and one server: cut() drops
                       every connection through it now, start_chaos() drops
                       them at random intervals; pgtide gets proxy.uri(...)
                       (or proxy.through(db).uri) instead of the server's
  crash, crash_and_restart
                       an immediate stop of a server (every backend killed,
                       WAL still in shared memory lost, crash recovery at the
                       next start), as a crash of PostgreSQL (not of the
                       machine) would
  Writer               numbered transactions on the source (inserts into a
                       keyed table and a REPLICA IDENTITY FULL table, updates
                       of both and of counters), each its own commit; records
                       which committed, rides out connection losses
  assert_writer_exact  every committed transaction on the target exactly
                       once, and the same rows on both sides

Only servers a test made for itself (the `make_server` fixture) may be
crashed or cut: the session-wide servers hold every other test's databases.
"""

from __future__ import annotations

import errno
import queue
import random
import selectors
import socket
import struct
import threading
import time
import urllib.parse

import psycopg

from conftest import assert_same_content, wait_for

# --------------------------------------------------------------------------- #
# TCP proxy
# --------------------------------------------------------------------------- #

# Bytes read from one side and not yet written to the other before the proxy
# stops reading that side: a slow reader slows its writer, as TCP would.
_BUFFER_LIMIT = 1 << 20
_RECV_SIZE = 1 << 16
# enough of a connection's first bytes for its startup packet
_STARTUP_BYTES = 4096
# the simple-protocol message libpq sends for PQexec("COMMIT")
COMMIT_MESSAGE = b"Q\x00\x00\x00\x0bCOMMIT\x00"


def _reset(sock):
    """Close with an RST rather than a FIN (SO_LINGER 0): the peer sees
    "connection reset", as after a network failure, not an orderly close."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pair:
    """One proxied connection: the client's socket and the server's, with the
    bytes each way still to be written. Touched only by the proxy's I/O
    thread."""

    def __init__(self, proxy, client, upstream):
        self.proxy = proxy
        self.socks = {"c": client, "u": upstream}
        self.out = {"c": bytearray(), "u": bytearray()}  # to write to that side
        self.eof = {"c": False, "u": False}   # that side sent FIN
        self.shut = {"c": False, "u": False}  # we sent FIN to that side
        self.events = {"c": 0, "u": 0}        # what the selector watches
        self.closed = False
        self.startup = bytearray()  # the client's first bytes: its settings
        self.sent_after = False     # it sent what lose_answer waits for

    @staticmethod
    def other(side):
        return "u" if side == "c" else "c"

    def update(self):
        """Watch each socket for what it can do now: read while the other
        side's queue has room, write while its own queue holds bytes."""
        if self.closed:
            return
        sel = self.proxy._sel
        for side in ("c", "u"):
            want = 0
            if not self.eof[side] and len(self.out[self.other(side)]) < _BUFFER_LIMIT:
                want |= selectors.EVENT_READ
            if self.out[side]:
                want |= selectors.EVENT_WRITE
            if want == self.events[side]:
                continue
            sock = self.socks[side]
            if self.events[side] == 0:
                sel.register(sock, want, (self, side))
            elif want == 0:
                sel.unregister(sock)
            else:
                sel.modify(sock, want, (self, side))
            self.events[side] = want

    def _flush(self, side):
        """Write what is queued for `side`; once the other side has ended and
        everything is written, pass its FIN on."""
        buf = self.out[side]
        while buf:
            try:
                n = self.socks[side].send(buf)
            except (BlockingIOError, InterruptedError):
                return
            del buf[:n]
        if self.eof[self.other(side)] and not self.shut[side]:
            self.shut[side] = True
            try:
                self.socks[side].shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def handle(self, side, mask):
        try:
            if mask & selectors.EVENT_WRITE:
                self._flush(side)
            if mask & selectors.EVENT_READ and not self.eof[side]:
                try:
                    data = self.socks[side].recv(_RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    data = None
                if data == b"":
                    self.eof[side] = True
                    self._flush(self.other(side))
                elif data:
                    if side == "c" and len(self.startup) < _STARTUP_BYTES:
                        self.startup += data[:_STARTUP_BYTES - len(self.startup)]
                    self.out[self.other(side)] += data
                    self._flush(self.other(side))
                    if side == "c" and self.proxy._answer_lost(self, data):
                        self.lose_answer()
                        return
        except OSError:
            # a peer reset or vanished: the other side sees it the same way
            self.close(reset=True)
            return
        if self.eof["c"] and self.eof["u"] and not self.out["c"] and not self.out["u"]:
            self.close(reset=False)
        else:
            self.update()

    def lose_answer(self):
        """The server keeps what it was sent (and acts on it), the client
        is reset at once: it never hears the answer."""
        for side in ("c", "u"):
            if self.events[side]:
                self.proxy._sel.unregister(self.socks[side])
                self.events[side] = 0
        self.closed = True
        _reset(self.socks["c"])
        try:
            self.socks["u"].setblocking(True)
            self.socks["u"].settimeout(5)
            self.socks["u"].sendall(self.out["u"])
            self.socks["u"].shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.socks["u"].close()
        self.proxy._pairs.discard(self)

    def close(self, reset=True):
        if self.closed:
            return
        self.closed = True
        for side in ("c", "u"):
            sock = self.socks[side]
            if self.events[side]:
                try:
                    self.proxy._sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
                self.events[side] = 0
            if reset:
                _reset(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass
        self.proxy._pairs.discard(self)


class TcpProxy:
    """A TCP proxy on a free 127.0.0.1 port in front of one server (a PgServer,
    whose port is read at each new connection, or a (host, port) pair).

    Give pgtide proxy.uri(dbname) or proxy.through(db).uri instead of the
    server's URI; the test itself talks to the server directly. Then:

      cut()                    reset every connection through the proxy now
                               (both ends see "connection reset", bytes in
                               flight are lost: a COMMIT may or may not have
                               reached the server); with down_s, new
                               connections are refused for that long too
      start_chaos(min_s, max_s)
                               cut() at random intervals in a background
                               thread until stop_chaos(), close(), max_cuts
                               or `duration` seconds
      lose_answer(app, after, message)
                               the next time a connection whose
                               application_name is `app` sends `message`
                               (a COMMIT by default), after it sent `after`
                               (if given), the server gets it and the client
                               is reset before the answer: an outcome the
                               client must find out for itself
      close()                  stop everything (also on leaving a `with`)

    One I/O thread moves the bytes (non-blocking sockets, a selector), so a
    cut is one step of that thread and no exception of a cut connection ever
    reaches stderr; unexpected ones are kept in .errors for the test to show.
    """

    def __init__(self, server, name: str | None = None, host: str = "127.0.0.1"):
        self.server = server
        self.name = name or getattr(server, "name", "proxy")
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, 0))
        self._lsock.listen(128)
        self._lsock.setblocking(False)
        self.host, self.port = self._lsock.getsockname()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._lsock, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._requests: queue.Queue = queue.Queue()
        self._pairs: set[_Pair] = set()
        self._down_until = 0.0
        self._lose: list[tuple[bytes, bytes, bytes]] = []  # see lose_answer
        self.answers_lost = 0
        self._closed = threading.Event()
        self._chaos: threading.Thread | None = None
        self._chaos_stop = threading.Event()
        self.connections = 0   # accepted and forwarded
        self.refused = 0       # accepted and reset at once (server down or held down)
        self.cuts = 0          # cut() calls that found at least one connection
        self.cut_connections = 0
        self.log: list[tuple[float, str]] = []   # (time.monotonic(), what happened)
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"proxy-{self.name}-{self.port}")
        self._thread.start()

    def __repr__(self):
        return f"<TcpProxy {self.name} :{self.port} -> :{self._upstream()[1]}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- addresses ------------------------------------------------------- #

    def _upstream(self):
        if isinstance(self.server, tuple):
            return self.server
        return self.server.host, self.server.port

    def uri(self, dbname: str = "postgres", user: str | None = None,
            password: str | None = None, **params) -> str:
        """The server's URI (as PgServer.uri builds it) through the proxy."""
        q = lambda s: urllib.parse.quote(str(s), safe="")  # noqa: E731
        auth = q(user or getattr(self.server, "superuser", "postgres"))
        if password is not None:
            auth += ":" + q(password)
        uri = f"postgresql://{auth}@{self.host}:{self.port}/{q(dbname)}"
        if params:
            uri += "?" + urllib.parse.urlencode(params)
        return uri

    def through(self, db):
        """`db` (a Database or cdc_helpers.ServerDb) whose .uri goes through
        this proxy; everything else (queries of the test) goes to the server."""
        return _Proxied(db, self)

    @property
    def active(self) -> int:
        """Connections through the proxy now."""
        return len(self._pairs)

    # ---- faults ---------------------------------------------------------- #

    def cut(self, down_s: float = 0.0) -> int:
        """Reset every connection through the proxy; for `down_s` seconds
        after, reset new ones as soon as they are accepted (the server looks
        unreachable). Returns how many connections were cut."""
        return self._call(lambda: self._cut(down_s))

    def lose_answer(self, app: str, after: bytes = b"",
                    message: bytes = COMMIT_MESSAGE):
        want = b"application_name\x00" + app.encode() + b"\x00"
        self._call(lambda: self._lose.append((want, after, message)))

    def _answer_lost(self, pair, data) -> bool:
        for i, (want, after, message) in enumerate(self._lose):
            if want not in pair.startup:
                continue
            pair.sent_after = pair.sent_after or after in data
            if pair.sent_after and message in data:
                del self._lose[i]
                self.answers_lost += 1
                self._note("lost the answer to " + repr(message))
                return True
        return False

    def start_chaos(self, min_s: float = 1.0, max_s: float = 3.0,
                    down_s: float = 0.0, max_cuts: int | None = None,
                    duration: float = 120.0, seed: int | None = None):
        """cut(down_s) every uniform(min_s, max_s) seconds in a background
        thread, until stop_chaos() or close(), after max_cuts cuts, or
        after `duration` seconds (so a forgotten chaos cannot outlive the
        test by much)."""
        if self._chaos is not None and self._chaos.is_alive():
            raise RuntimeError(f"{self!r}: chaos already running")
        rng = random.Random(seed)
        self._chaos_stop.clear()
        end = time.monotonic() + duration

        def run():
            n = 0
            while max_cuts is None or n < max_cuts:
                pause = rng.uniform(min_s, max_s)
                if time.monotonic() + pause > end or self._chaos_stop.wait(pause):
                    return
                if self._closed.is_set():
                    return
                try:
                    self.cut(down_s)
                except RuntimeError:   # closed meanwhile
                    return
                n += 1

        self._chaos = threading.Thread(target=run, daemon=True,
                                       name=f"chaos-{self.name}-{self.port}")
        self._chaos.start()
        return self

    def stop_chaos(self):
        self._chaos_stop.set()
        if self._chaos is not None:
            self._chaos.join(10)
            self._chaos = None
        return self

    def wait_for_connections(self, n: int = 1, timeout: float = 60):
        """Wait until at least n connections go through the proxy (pgtide is
        connected again after a cut)."""
        wait_for(lambda: self.active >= n, timeout, 0.05,
                 f"{self!r}: fewer than {n} connections")

    def close(self):
        """Stop the chaos, reset every connection, stop listening. Idempotent."""
        self.stop_chaos()
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake()
        self._thread.join(10)

    # ---- the I/O thread --------------------------------------------------- #

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:   # full (already awake) or closed
            pass

    def _call(self, fn):
        """Run fn in the I/O thread (the only one touching the sockets) and
        return its result."""
        if self._closed.is_set():
            raise RuntimeError(f"{self!r} is closed")
        done, box = threading.Event(), []
        self._requests.put((fn, done, box))
        self._wake()
        if not done.wait(10):
            raise RuntimeError(f"{self!r}: I/O thread did not answer")
        if box and isinstance(box[0], BaseException):
            raise box[0]
        return box[0] if box else None

    def _note(self, what):
        self.log.append((time.monotonic(), what))

    def _cut(self, down_s):
        pairs = list(self._pairs)
        for p in pairs:
            p.close(reset=True)
        if down_s > 0:
            self._down_until = max(self._down_until, time.monotonic() + down_s)
        if pairs:
            self.cuts += 1
            self.cut_connections += len(pairs)
        self._note(f"cut {len(pairs)} connection(s)"
                   + (f", down for {down_s}s" if down_s > 0 else ""))
        return len(pairs)

    def _accept(self):
        while True:
            try:
                client, _ = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. EMFILE: keep serving the others
                if e.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    self.errors.append(e)
                return
            if time.monotonic() < self._down_until:
                self.refused += 1
                _reset(client)
                continue
            try:
                # a connect to 127.0.0.1 answers at once (or is refused at
                # once while the server is down), so blocking here is brief
                upstream = socket.create_connection(self._upstream(), timeout=5)
            except OSError:
                self.refused += 1
                _reset(client)
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, client, upstream)
            self._pairs.add(pair)
            self.connections += 1
            pair.update()

    def _run_requests(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                fn, done, box = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(fn())
            except BaseException as e:  # handed to the caller
                box.append(e)
            done.set()

    def _loop(self):
        try:
            while not self._closed.is_set():
                for key, mask in self._sel.select(timeout=0.5):
                    try:
                        if key.data == "accept":
                            self._accept()
                        elif key.data == "wake":
                            self._run_requests()
                        else:
                            pair, side = key.data
                            if not pair.closed:
                                pair.handle(side, mask)
                    except Exception as e:  # kept for the test, never printed
                        self.errors.append(e)
        finally:
            for p in list(self._pairs):
                p.close(reset=True)
            for s in (self._lsock, self._wake_r, self._wake_w):
                try:
                    s.close()
                except OSError:
                    pass
            self._sel.close()
            # answer callers still waiting, so none hangs on a closed proxy
            while True:
                try:
                    _, done, box = self._requests.get_nowait()
                except queue.Empty:
                    break
                box.append(RuntimeError(f"{self!r} is closed"))
                done.set()


class _Proxied:
    """A database whose .uri goes through a proxy; every other attribute is
    the database's own (the test's queries bypass the proxy)."""

    def __init__(self, db, proxy):
        self._db, self._proxy = db, proxy

    @property
    def uri(self):
        return self._proxy.uri(self._db.name)

    def uri_as(self, user, password=None, **params):
        return self._proxy.uri(self._db.name, user, password, **params)

    def __getattr__(self, name):
        return getattr(self._db, name)


# --------------------------------------------------------------------------- #
# Server crashes
# --------------------------------------------------------------------------- #

def crash(server):
    """Stop `server` immediately (pg_ctl -m immediate: SIGQUIT to every
    process, no checkpoint; WAL the server had not yet written out, such as
    that of commits made with synchronous_commit = off in the last few
    hundred milliseconds, is lost; the next start runs crash recovery).
    What was written survives, fsync = off or not: the machine stays up.
    Only for servers of make_server."""
    server.stop(mode="immediate")


def crash_and_restart(server, down_s: float = 1.0):
    """crash(server), stay down `down_s` seconds (pgtide's reconnects meet a
    refused connection, then a server in recovery), start it again. The
    server keeps its port (asserted: pgtide's URIs name it)."""
    port = server.port
    crash(server)
    time.sleep(down_s)
    server.start()
    assert server.port == port, f"{server!r} came back on another port"


# --------------------------------------------------------------------------- #
# The application: numbered transactions on the source
# --------------------------------------------------------------------------- #

BASE_ROWS = 2000

WRITER_SCHEMA = f"""
    -- one row per writer transaction; rows with ids <= 0 exist before the
    -- load and are the ones updated
    CREATE TABLE w_keyed (id bigint PRIMARY KEY, n int NOT NULL, v text NOT NULL);
    INSERT INTO w_keyed SELECT -g, g % 97, 'base' || g
      FROM generate_series(0, {BASE_ROWS - 1}) g;
    -- no key, REPLICA IDENTITY FULL: a transaction applied twice leaves a
    -- duplicate row; an update whose old row is missing cannot be applied
    CREATE TABLE w_full (seq bigint NOT NULL, k int NOT NULL, v text NOT NULL);
    ALTER TABLE w_full REPLICA IDENTITY FULL;
    INSERT INTO w_full SELECT -g, g % 89, md5(g::text)
      FROM generate_series(0, {BASE_ROWS - 1}) g;
    -- running totals: the sum of the numbers of the transactions that
    -- touched each row
    CREATE TABLE w_counter (id int PRIMARY KEY, total bigint NOT NULL,
                            txns bigint NOT NULL);
    INSERT INTO w_counter SELECT g, 0, 0 FROM generate_series(1, 10) g;
"""


def create_writer_schema(db):
    """The tables Writer writes to, with BASE_ROWS rows to update."""
    db.execute(WRITER_SCHEMA)


def _txn_sql(i: int) -> str:
    """Transaction number i: one simple-protocol message (one round trip),
    so the writer keeps a steady few hundred commits a second."""
    stmts = [f"INSERT INTO w_keyed VALUES ({i}, {i % 97}, 'k{i}')",
             f"INSERT INTO w_full VALUES ({i}, {i % 89}, md5('{i}'))",
             f"UPDATE w_counter SET total = total + {i}, txns = txns + 1"
             f" WHERE id = {i % 10 + 1}"]
    if i % 3 == 0:
        stmts.append(f"UPDATE w_keyed SET n = n + 1, v = v || '+'"
                     f" WHERE id = {-((i * 7) % BASE_ROWS)}")
        stmts.append(f"UPDATE w_full SET v = v || '+'"
                     f" WHERE seq = {-((i * 11) % BASE_ROWS)}")
    return "BEGIN; " + "; ".join(stmts) + "; COMMIT"


_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class Writer(threading.Thread):
    """Runs transactions numbered first, first+1, ... on `server`'s `dbname`
    (create_writer_schema first), at about `rate` a second, until stop().

    Each transaction inserts row i into w_keyed and w_full and adds i to a
    counter; every third also updates a pre-existing row of each table. A
    transaction counts as committed once COMMIT returned. When the connection
    fails, the writer reconnects (for up to `retry_for` seconds of failures
    in a row) and, if COMMIT was sent without an answer, asks the source
    whether row i is there: so the committed numbers are always exactly
    first .. first + committed - 1, and the test knows what the source holds
    without trusting the source's replication to tell it."""

    def __init__(self, server, dbname: str = "postgres", rate: float = 300,
                 first: int = 1, retry_for: float = 60):
        super().__init__(daemon=True, name=f"writer-{server.port}")
        self.server, self.dbname = server, dbname
        self.rate, self.first, self.retry_for = rate, first, retry_for
        self.committed = 0
        self.in_doubt: list[int] = []   # COMMIT sent, answer lost
        self.reconnects = 0
        self.marks: list[tuple[str, int]] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._abandon = threading.Event()

    def start(self):
        super().start()
        return self

    @property
    def next(self) -> int:
        """The number of the next transaction (the last committed plus one)."""
        return self.first + self.committed

    def mark(self, label: str):
        """Remember that `label` happened (e.g. a crash) around the current
        transaction number; failure messages place missing numbers by these."""
        self.marks.append((label, self.next))

    def wait_for_more(self, n: int, timeout: float = 60):
        """Wait until n more transactions have committed from now."""
        goal = self.committed + n
        wait_for(lambda: self.committed >= goal or self.error is not None
                 or not self.is_alive(),
                 timeout, 0.05, f"the writer did not commit {n} more transactions")
        if self.error is not None:
            raise AssertionError(f"the writer failed: {self.error!r}")

    # errors that refuse a transaction without committing it: none here; a
    # subclass that expects some (a fence) says which, and handles them in
    # _refused
    refused_errors: tuple = ()

    def _refused(self, conn):
        """Called after a refused transaction; returns the connection to go
        on with (None: reconnect)."""
        return conn

    def _connect(self):
        return psycopg.connect(autocommit=True, **self.server.conninfo(
            self.dbname, connect_timeout=5))

    def _reconnect(self):
        """A new connection, retried quietly while the server is away (for
        up to retry_for seconds)."""
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            try:
                return self._connect()
            except _CONNECTION_ERRORS as e:
                if self._abandon.is_set():
                    raise RuntimeError("abandoned while reconnecting") from e
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the source stayed unreachable for"
                                       f" {self.retry_for}s: {e}") from e
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    @staticmethod
    def _is_committed(conn, i) -> bool:
        return conn.execute("SELECT count(*) FROM w_keyed WHERE id = %s",
                            (i,)).fetchone()[0] == 1

    def run(self):
        conn = None
        doubt = False   # was the last attempt of self.next left unanswered?
        pace = time.monotonic()
        try:
            while True:
                if conn is None:
                    conn = self._reconnect()
                sent = False
                try:
                    if doubt:
                        # COMMIT's answer was lost: ask whether it committed;
                        # if not, the same number is tried again
                        if self._is_committed(conn, self.next):
                            self.committed += 1
                        doubt = False
                        continue
                    if self._halt.is_set():
                        break
                    sent = True
                    conn.execute(_txn_sql(self.next))
                    self.committed += 1
                except self.refused_errors:
                    # the write was refused, so nothing committed: the same
                    # number is tried again a little later
                    conn = self._refused(conn)
                    if self._halt.wait(0.02):
                        break
                    continue
                except _CONNECTION_ERRORS:
                    if not (conn.closed or conn.broken):
                        raise   # the statement failed, not the connection
                    if sent:
                        doubt = True
                        self.in_doubt.append(self.next)
                    conn.close()
                    conn = None
                    self.reconnects += 1
                    continue
                pace = max(pace + 1.0 / self.rate, time.monotonic() - 1.0)
                delay = pace - time.monotonic()
                if delay > 0 and self._halt.wait(delay):
                    break
        except BaseException as e:   # shown by stop() and wait_for_more()
            self.error = e
        finally:
            if conn is not None:
                conn.close()

    def abandon(self, timeout: float = 10):
        """Stop without settling the transaction in flight (teardown of a
        failed test: the server may be gone)."""
        self._abandon.set()
        self._halt.set()
        self.join(timeout)

    def stop(self, timeout: float = 90) -> int:
        """Stop after the transaction in flight (its fate settled); returns
        how many committed. Raises if the writer failed."""
        self._halt.set()
        self.join(timeout)
        assert not self.is_alive(), "the writer did not stop"
        if self.error is not None:
            raise AssertionError(f"the writer failed: {self.error!r}")
        return self.committed


def _ranges(numbers) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'"""
    out, start, prev = [], None, None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


def assert_writer_exact(writer: Writer, source_db, target_db, tables=None):
    """Every transaction the writer committed is on the source and on the
    target exactly once, and both databases hold the same rows: the missing
    or doubled transaction numbers are named, next to the writer's marks
    (the crashes), before the row-by-row difference (of `tables`, None:
    every table)."""
    __tracebackhide__ = True
    want = set(range(writer.first, writer.next))
    problems = []
    src_ids = [r[0] for r in source_db.query("SELECT id FROM w_keyed WHERE id > 0")]
    if set(src_ids) != want:
        problems.append(
            f"the source does not hold what the writer committed: missing "
            f"{_ranges(want - set(src_ids)) or 'none'}, unexpected "
            f"{_ranges(set(src_ids) - want) or 'none'}")
    for table, col in (("w_keyed", "id"), ("w_full", "seq")):
        rows = target_db.query(f"SELECT {col}, count(*) FROM {table}"
                               f" WHERE {col} > 0 GROUP BY {col}")
        have = {k: n for k, n in rows}
        missing = want - set(have)
        doubled = {k for k, n in have.items() if n > 1}
        extra = set(have) - want
        if missing or doubled or extra:
            problems.append(
                f"target {table}: {len(missing)} committed transaction(s) missing"
                f" ({_ranges(missing) or 'none'}), {len(doubled)} doubled"
                f" ({_ranges(doubled) or 'none'}), {len(extra)} never committed"
                f" ({_ranges(extra) or 'none'})")
    if problems:
        marks = ", ".join(f"{label} at #{n}" for label, n in writer.marks)
        raise AssertionError(
            "\n".join(problems)
            + f"\nwriter: #{writer.first}..#{writer.next - 1} committed; {marks};"
              f" {writer.reconnects} reconnect(s), COMMIT answer lost for"
              f" {writer.in_doubt or 'none'}")
    assert_same_content(source_db, target_db, tables)
