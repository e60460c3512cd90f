"""Nothing committed on the source is lost or applied twice when a server
crashes or the network drops pgtide's connections (issue 15), proved with
the harness of faults.py: servers of the test's own crashed with
`pg_ctl -m immediate` and started again, every connection reset through a
TCP proxy, while a writer commits a few hundred numbered transactions a
second on the source. At the end the target must hold exactly the
transactions the writer saw commit, once each, and the same rows as the
source."""
import json
import os
import random
import re
import time

import psycopg
import pytest

from cdc_helpers import ServerDb, start_migrate
from conftest import assert_same_content, wait_for
from faults import (_CONNECTION_ERRORS, TcpProxy, Writer, assert_writer_exact,
                    crash, crash_and_restart, create_writer_schema)
from helpers import make_load_dataset, schema_objects, sequences

pytestmark = pytest.mark.serial

# Steady enough that a crash falls among commits the target has not flushed
# yet (the WAL writer writes every 200 ms), light enough for two cores.
RATE = 300

# The application's role: the writer of the cutover tests writes as it, and
# cutover fences it.
APP = "app_writer"
WRITER_TABLES = ("w_keyed", "w_full", "w_counter")
# what a fenced application sees: its privileges revoked, or (read_only
# fence) a read-only database
_FENCE_ERRORS = (psycopg.errors.InsufficientPrivilege,
                 psycopg.errors.ReadOnlySqlTransaction)

# seconds between two cuts of the chaos proxies, at least and at most
CHAOS_GAP_S = (2.0, 6.0) if os.environ.get("PGTIDE_SANITIZED") else (0.5, 2.0)


def make_app_role(db, role=APP):
    """A login role (not a superuser, so revoke can fence it) that may write
    to every table of public, as an application would."""
    db.execute(f"""
        CREATE ROLE {role} LOGIN;
        GRANT USAGE ON SCHEMA public TO {role};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
          TO {role};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
    """)


class AppWriter(Writer):
    """faults.Writer as the application's role `role`. While cutover's fence
    refuses its writes (permission denied, a read-only database) it tries
    the same transaction number again every 20 ms: a refused transaction
    committed nothing. Counts the refusals (.refused, the first and last at
    .refused_first/.refused_last, time.monotonic()); stop() ends it also
    while it is fenced."""

    def __init__(self, server, role, dbname="postgres", rate=RATE, **kw):
        super().__init__(server, dbname, rate=rate, **kw)
        self.role = role
        self.refused = 0
        self.refused_first = self.refused_last = None

    def _connect(self):
        return psycopg.connect(autocommit=True, **self.server.conninfo(
            self.dbname, user=self.role, connect_timeout=5))

    refused_errors = _FENCE_ERRORS

    def _refused(self, conn):
        """Counts the refusal and rolls back (the simple-protocol BEGIN left
        the transaction open and aborted)."""
        now = time.monotonic()
        self.refused += 1
        self.refused_first = self.refused_first or now
        self.refused_last = now
        try:
            conn.execute("ROLLBACK")
            return conn
        except _CONNECTION_ERRORS:
            conn.close()
            return None


def servers(make_server):
    """A source and a target of the test's own, which it may crash."""
    source, target = make_server("src"), make_server("tgt")
    return source, target, ServerDb(source), ServerDb(target)


@pytest.fixture
def writer():
    """writer(server) -> a started faults.Writer on the server's postgres
    database. Writers still running at teardown (a failed test) are
    abandoned before the servers go, so none keeps retrying into the next
    test."""
    made = []

    def start(server, rate=RATE, role=None):
        w = (AppWriter(server, role, rate=rate) if role
             else Writer(server, rate=rate)).start()
        made.append(w)
        return w

    yield start
    for w in made:
        w.abandon()


def wait_caught_up_running(p, src, tgt, timeout=120):
    """Like cdc_helpers.wait_caught_up (the slot confirms the source's WAL
    position taken now), but fails at once, with pgtide's stderr, if pgtide
    exits meanwhile: a fault that ends the process must not read as lag."""
    goal = src.query_one("SELECT pg_current_wal_lsn()::text")

    def done():
        if p.poll() is not None:
            raise AssertionError(f"pgtide migrate exited ({p.returncode}):\n"
                                 f"{p.read_stderr()[-4000:]}")
        return src.query_one(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots"
            " WHERE slot_name = 'pgtide_default'", (goal,)) is True
    wait_for(done, timeout, 0.2, f"the target never caught up with {goal}")


def assert_running(p, what):
    assert p.poll() is None, (f"pgtide migrate exited ({p.returncode}) {what}:\n"
                              f"{p.read_stderr()[-4000:]}")


def test_target_crashes_while_following_lose_nothing(pgtide, make_server,
                                                    writer):
    """The target server crashes twice under a steady stream: every commit
    the slot was told of must still be on the target after recovery, or be
    applied again from the origin's durable position."""
    source, target, src, tgt = servers(make_server)
    create_writer_schema(src)
    p = start_migrate(pgtide, src, tgt)
    w = writer(source)
    for n in (1, 2):
        w.wait_for_more(2 * RATE)
        w.mark(f"target crash {n}")
        crash_and_restart(target, down_s=1.0)
        w.wait_for_more(2 * RATE)
    w.stop()
    wait_caught_up_running(p, src, tgt)
    assert_writer_exact(w, src, tgt)
    assert p.stop() == 0


def test_source_crash_while_following_loses_and_doubles_nothing(
        pgtide, make_server, writer):
    """The source crashes: its slot comes back at its last persisted
    position, older than what pgtide confirmed, and sends transactions the
    target already holds again; those must be skipped, the rest applied."""
    source, target, src, tgt = servers(make_server)
    create_writer_schema(src)
    p = start_migrate(pgtide, src, tgt)
    w = writer(source)
    w.wait_for_more(2 * RATE)
    w.mark("source crash")
    crash_and_restart(source, down_s=1.0)
    w.wait_for_more(2 * RATE)
    w.stop()
    wait_caught_up_running(p, src, tgt)
    assert_writer_exact(w, src, tgt)
    assert p.stop() == 0


def test_status_says_which_side_is_down_and_since_when(pgtide, make_server,
                                                      writer):
    """While the source is down, the stream says so where a person looks:
    `pgtide status` (which reads the target) names the side, since when,
    and that it retries; once the source is back the outage is gone."""
    source, target, src, tgt = servers(make_server)
    create_writer_schema(src)
    p = start_migrate(pgtide, src, tgt)
    w = writer(source)
    w.wait_for_more(RATE)
    w.stop()
    wait_caught_up_running(p, src, tgt)
    crash(source)

    def outage():
        r = pgtide.run("status", "--target", tgt.uri, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["cdc_outage"]
    shown = wait_for(outage, 30, 0.5, "status never showed the source down")
    assert "source unreachable" in shown and "retrying" in shown, shown
    assert re.search(r"since \d\d:\d\d:\d\d UTC", shown), shown
    r = pgtide.run("status", "--target", tgt.uri)
    assert "cdc outage" in r.stdout and "source unreachable" in r.stdout
    assert "source" in p.read_stderr() and "reconnecting" in p.read_stderr()
    assert_running(p, "while the source was down")
    source.start()
    wait_for(lambda: outage() is None, 60, 0.5,
             "status still showed the outage after the source came back")
    assert p.stop() == 0


def test_status_changes_nothing_on_a_target_without_state(pgtide,
                                                          make_server):
    """status on a target where no task ever ran says so and leaves it as it
    was: no state schema appears (it used to create eight tables)."""
    _, target, _, tgt = servers(make_server)
    r = pgtide.run("status", "--target", tgt.uri)
    assert r.returncode == 2 and "no pgtide state schema" in r.stderr, r.stderr
    assert tgt.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0


def test_connections_cut_repeatedly_while_following(pgtide, make_server,
                                                    writer):
    """Every connection of pgtide, to both servers, is reset at random every
    one to three seconds (a COMMIT may reach the target with its answer
    lost): migrate rides it out without exiting and applies every
    transaction exactly once."""
    source, target, src, tgt = servers(make_server)
    create_writer_schema(src)
    seed = random.randrange(1 << 30)
    print(f"chaos seed {seed}")
    with TcpProxy(source, "src") as sp, TcpProxy(target, "tgt") as tp:
        p = start_migrate(pgtide, sp.through(src), tp.through(tgt))
        w = writer(source)   # the application: no proxy
        w.wait_for_more(RATE)
        w.mark("chaos starts")
        sp.start_chaos(1.0, 3.0, seed=seed)
        tp.start_chaos(1.0, 3.0, seed=seed + 1)
        wait_for(lambda: sp.cuts >= 4 and tp.cuts >= 4 or p.poll() is not None,
                 90, 0.2, "the proxies did not cut pgtide's connections 4 times")
        sp.stop_chaos()
        tp.stop_chaos()
        w.mark("chaos stops")
        assert_running(p, "while its connections were cut")
        w.wait_for_more(RATE)
        w.stop()
        wait_caught_up_running(p, src, tgt)
        assert_writer_exact(w, src, tgt)
        assert p.stop() == 0
        print(f"source proxy: {sp.cuts} cuts, {sp.cut_connections} connections;"
              f" target proxy: {tp.cuts} cuts, {tp.cut_connections} connections")
        assert sp.errors == [] and tp.errors == []


SPLIT = ["--split-tables-larger-than", "512kB", "--jobs", "2"]


@pytest.mark.parametrize("chaos_from", [
    None,                        # before migrate starts: check, slot, pg_dump
    r"copying \d+ tables",      # once the load's workers start
])
def test_connections_cut_through_start_up_and_load(pgtide, make_server,
                                                   writer, chaos_from):
    """The connections are cut every second or so from before
    migrate starts (or from the load's start on): the check, the slot,
    pg_dump, the chunks, the index builds, the sequences, the state updates
    and the step from the load into the stream each lose a session at some
    point. Each must be retried, and migrate must reach the stream and keep
    following, with nothing lost."""
    source, target, src, tgt = servers(make_server)
    make_load_dataset(src, big_rows=50000)
    create_writer_schema(src)
    seed = random.randrange(1 << 30)
    print(f"chaos seed {seed}")
    with TcpProxy(source, "src") as sp, TcpProxy(target, "tgt") as tp:
        w = writer(source)
        p = pgtide.start("migrate", "--source", sp.uri(), "--target", tp.uri(),
                         "--progress-interval", "1", *SPLIT)
        if chaos_from:
            p.wait_for_output(chaos_from, timeout=120)
        # often enough that every step of the load meets a cut, rarely
        # enough that its longest single step (pg_dump, or the biggest
        # table's chunks, which one snapshot must see through) fits between
        # two; the sanitizers' build runs those steps several times slower
        sp.start_chaos(*CHAOS_GAP_S, seed=seed)
        tp.start_chaos(*CHAOS_GAP_S, seed=seed + 1)
        p.wait_for_output(r"streaming from slot", timeout=120)
        w.mark("streaming")
        cuts = sp.cuts + tp.cuts
        wait_for(lambda: sp.cuts + tp.cuts >= cuts + 4 or p.poll() is not None,
                 60, 0.2, "the proxies did not cut the stream's connections")
        sp.stop_chaos()
        tp.stop_chaos()
        w.mark("chaos stops")
        assert_running(p, "while its connections were cut")
        w.wait_for_more(RATE)
        w.stop()
        wait_caught_up_running(p, src, tgt)
        assert_writer_exact(w, src, tgt)
        assert schema_objects(src) == schema_objects(tgt)
        assert p.stop() == 0
        print(f"source proxy: {sp.cuts} cuts, {sp.cut_connections} connections;"
              f" target proxy: {tp.cuts} cuts, {tp.cut_connections} connections")
        assert sp.errors == [] and tp.errors == []


@pytest.mark.parametrize("fault", [
    # a chunk and its done-record just committed, maybe not yet flushed
    "copy.chunk.after_commit@4:sleep=4000",
    # an index or constraint built, its COMMIT not yet sent
    "postdata.step.before_commit@2:sleep=4000",
    # an index or constraint built and marked done, maybe not yet flushed
    "postdata.step.after_commit@2:sleep=4000",
])
def test_target_crash_during_load(pgtide, make_server, fault):
    """The target crashes in the middle of `pgtide copy`: the run may end
    with the target's exit code (4); run again, it finishes, and every table,
    index, constraint and sequence is the source's. Work the crash took back
    (a chunk with its record, an index build) is redone, never counted done."""
    source, target, src, tgt = servers(make_server)
    make_load_dataset(src, big_rows=50000)
    args = ["copy", "--source", src.uri, "--target", tgt.uri, *SPLIT]
    p = pgtide.start(*args, env={"PGTIDE_FAULT": fault})
    p.wait_for_output(r"fault point \S+: sleeping", timeout=120)
    crash_and_restart(target, down_s=1.0)
    rc = p.wait(180)
    print(f"copy after the target crash: exit {rc}\n{p.read_stderr()[-1500:]}")
    assert rc in (0, 4), p.read_stderr()
    if rc != 0:
        r = pgtide.run(*args)
        assert r.returncode == 0, r.stderr
    # shown when the rows differ: what the state says was done
    print("state tables:", tgt.query(
        "SELECT src_name, state, loads, chunks, chunks_done, rows"
        " FROM pgtide.tables ORDER BY 1"))
    print("state chunks of big:", tgt.query(
        "SELECT chunk, rows, run FROM pgtide.chunks WHERE src_name = 'big'"
        " ORDER BY chunk"))
    assert_same_content(src, tgt)
    assert schema_objects(src) == schema_objects(tgt)
    src_seq, tgt_seq = sequences(src), sequences(tgt)
    assert src_seq.keys() == tgt_seq.keys()
    for name, (value, _) in src_seq.items():
        assert tgt_seq[name][0] >= value, name
    assert tgt.query_one(
        "SELECT count(*) FROM pgtide.tables WHERE state <> 'done'") == 0
    assert tgt.query_one(
        "SELECT count(*) FROM pgtide.ddl WHERE done_at IS NULL AND phase > 0") == 0


# --------------------------------------------------------------------------- #
# Cutover under faults: while the source is fenced, the target crashes or
# every connection of cutover is cut. Cutover either finishes (the target
# holds every acknowledged write, the source stays fenced) or fails and
# undoes the fence (the application writes again, migrate follows on), and
# says which; never a fenced source with nobody to lift the fence.
# --------------------------------------------------------------------------- #

# Where cutover is held (PGTIDE_FAULT point:sleep) while the fault strikes;
# at each the source is fenced.
CUTOVER_HOLDS = [
    "cutover.fenced",     # the fence just went up, nothing else done
    "cutover.marker",     # the marker written, not yet seen on the target
    "cutover.stop_set",   # the stream asked to stop at the marker: migrate
                          # stops and ends the task during the hold
]
# Short, so that cutover goes on while the fault still lasts: its first
# statements after the hold meet a server that is down or unreachable.
CUTOVER_HOLD_MS = 1000
# bounds each of cutover's waits, and its reconnects (pg_keep_session)
CUTOVER_TIMEOUT = 20


def start_cutover(pgtide, source_uri, target_uri, timeout=CUTOVER_TIMEOUT,
                  env=None):
    """pgtide cutover (revoke fence on APP) in the background."""
    return pgtide.start("cutover", "--source", source_uri, "--target",
                        target_uri, "--fence", "revoke", "--fence-role", APP,
                        "--timeout", str(timeout), env=env)


def start_cutover_held(pgtide, source_uri, target_uri, point,
                       timeout=CUTOVER_TIMEOUT):
    """start_cutover, held CUTOVER_HOLD_MS at fault point `point`; returns
    once it sleeps there."""
    c = start_cutover(pgtide, source_uri, target_uri, timeout, env={
        "PGTIDE_FAULT": f"{point}:sleep={CUTOVER_HOLD_MS}"})
    c.wait_for_output(rf"fault point {point}: sleeping", timeout=60)
    return c


def wait_exited(c, timeout, what):
    """Waits until pgtide process `c` has exited; its exit code."""
    wait_for(lambda: c.poll() is not None, timeout, 0.2,
             f"pgtide did not exit {what}; stderr so far:\n"
             f"{c.read_stderr()[-4000:]}")
    return c.returncode


def failed_cutover_says_fenced(rc, out, err, src):
    """Checks what a failed cutover (exit code rc) printed against the
    source: it must say either that the fence is undone or that the source
    is still fenced, and that must be true. Returns whether it is fenced."""
    __tracebackhide__ = True
    assert rc > 0, f"cutover was killed (signal {-rc}):\n{err[-4000:]}"
    assert "handed over to the target" not in out, (
        f"cutover exited {rc} after its report:\n{out}")
    says_undone = "fence is undone" in err
    says_fenced = "still fenced" in err
    assert says_undone != says_fenced, (
        f"cutover failed (exit {rc}) without saying whether the fence is"
        f" undone:\n{err[-4000:]}")
    writable = app_can_write(src)
    really_fenced = not any(writable.values())
    assert really_fenced or all(writable.values()), (
        f"the source is fenced for some tables only: {writable}")
    assert says_fenced == really_fenced, (
        f"cutover failed (exit {rc}) saying the source is"
        f" {'still fenced' if says_fenced else 'unfenced again'}, but {APP}"
        f" {'cannot' if really_fenced else 'can'} write there ({writable}):"
        f"\n{err[-4000:]}")
    return really_fenced


def app_can_write(src):
    """{table: whether APP holds a write privilege on it} on the source."""
    return {t: src.query_one(
        "SELECT has_table_privilege(%s, %s, 'INSERT, UPDATE, DELETE')",
        (APP, t)) for t in WRITER_TABLES}


def settle_cutover(c, p, w, src, tgt, what):
    """Waits for cutover `c`, run beside migrate `p` while AppWriter `w`
    wrote, through `what` (a fault); then either

      - cutover exited 0 and printed its report: the source stays fenced,
        migrate stopped at the marker and exited 0, the task is cut over;
      - or it failed, said the fence is undone, and it is: the application
        writes again, migrate still follows and catches up;

    and in both cases every transaction the writer saw commit is on the
    target exactly once, and both sides hold the same rows."""
    __tracebackhide__ = True
    rc = wait_exited(c, CUTOVER_TIMEOUT * 6 + 60, f"after {what}")
    out, err = c.read_stdout(), c.read_stderr()
    print(f"cutover after {what}: exit {rc}\n--- stdout\n{out}"
          f"--- stderr\n{err[-3000:]}")
    w.mark(f"cutover exited {rc}")
    assert w.refused > 0, ("the writer was never refused: the source was not"
                           " fenced while cutover was held")
    if rc == 0:
        assert "handed over to the target" in out, (
            f"cutover exited 0 but does not say it handed over:\n{out}\n{err}")
        writable = app_can_write(src)
        assert not any(writable.values()), (
            f"cutover finished but the source is not fenced: {writable}")
        wait_for(lambda: p.poll() is not None, 60, 0.2,
                 "migrate did not exit after the cutover finished")
        assert p.returncode == 0, (f"migrate exited {p.returncode} after the"
                                   f" cutover:\n{p.read_stderr()[-4000:]}")
        assert tgt.query_one("SELECT phase FROM pgtide.task") == "cutover"
        w.stop()
    else:
        assert not failed_cutover_says_fenced(rc, out, err, src), (
            f"cutover failed (exit {rc}) and left the source fenced although"
            f" it could reach it")
        assert_running(p, f"after the cutover failed ({what})")
        w.wait_for_more(RATE // 2)   # the application writes again
        w.stop()
        wait_caught_up_running(p, src, tgt)
        assert tgt.query_one("SELECT phase FROM pgtide.task") == "cdc"
    print(f"writer: #{w.first}..#{w.next - 1} committed, {w.refused} refused"
          f" by the fence over {w.refused_last - w.refused_first:.1f} s,"
          f" {w.reconnects} reconnect(s), marks {w.marks}")
    assert_writer_exact(w, src, tgt)
    if rc != 0:
        assert p.stop() == 0


def app_following(pgtide, make_server, writer):
    """Servers of the test's own, the application's role writing on the
    source and migrate following it: what each cutover test starts from.
    Returns source, target, their databases, migrate and the writer."""
    source, target, src, tgt = servers(make_server)
    create_writer_schema(src)
    make_app_role(src)
    p = start_migrate(pgtide, src, tgt)
    w = writer(source, role=APP)
    w.wait_for_more(RATE)
    return source, target, src, tgt, p, w


@pytest.mark.parametrize("point", CUTOVER_HOLDS)
def test_target_crash_during_cutover_finishes_or_undoes_the_fence(
        pgtide, make_server, writer, point):
    """The target crashes (immediate, back a second later) while cutover is
    held at `point` with the source fenced: migrate and cutover lose their
    target sessions, commits the target had not flushed are gone. Cutover
    finishes with every acknowledged write on the target, or fails with the
    fence undone and the stream following; nothing lost or doubled."""
    source, target, src, tgt, p, w = app_following(pgtide, make_server,
                                                   writer)
    c = start_cutover_held(pgtide, src.uri, tgt.uri, point)
    w.mark(f"target crash at {point}")
    crash_and_restart(target, down_s=1.0)
    settle_cutover(c, p, w, src, tgt, f"a target crash at {point}")


@pytest.mark.parametrize("point", CUTOVER_HOLDS)
def test_cutover_connections_cut_while_fenced(pgtide, make_server, writer,
                                              point):
    """Every connection of cutover, to the source and to the target, is
    reset once (and the servers unreachable for a second) while it is held
    at `point` with the source fenced, and both stay unreachable for two
    seconds, past the hold; migrate's own connections are not touched. Cutover reconnects and finishes, or fails with the fence
    undone; nothing lost or doubled."""
    # migrate is not started through the proxies: its connections stay
    source, target, src, tgt, p, w = app_following(pgtide, make_server,
                                                   writer)
    with TcpProxy(source, "src") as sp, TcpProxy(target, "tgt") as tp:
        c = start_cutover_held(pgtide, sp.through(src).uri,
                               tp.through(tgt).uri, point)
        w.mark(f"cutover's connections cut at {point}")
        cut_src, cut_tgt = sp.cut(down_s=2.0), tp.cut(down_s=2.0)
        assert cut_src >= 1 and cut_tgt >= 1, (
            f"cutover had {cut_src} connection(s) to the source and {cut_tgt}"
            f" to the target when they were cut")
        settle_cutover(c, p, w, src, tgt, f"its connections cut at {point}")
        print(f"source proxy: {sp.connections} connections, {sp.refused}"
              f" refused; target proxy: {tp.connections} connections,"
              f" {tp.refused} refused")
        assert sp.refused + tp.refused > 0, (
            "cutover never tried to reconnect while the servers were"
            " unreachable: the fault ended before the hold did")
        assert sp.errors == [] and tp.errors == []


# bounds cutover's waits and reconnects in the tests where a server stays
# down for longer
SHORT_TIMEOUT = 5


def test_target_down_past_cutover_timeout_undoes_the_fence(
        pgtide, make_server, writer):
    """The target crashes while cutover is held just after the fence and
    stays down until cutover has given up (--timeout 5): cutover cannot
    finish, so it must lift the fence (the source is reachable), say so,
    and leave migrate following; once the target is back, migrate catches
    up with nothing lost or doubled."""
    source, target, src, tgt, p, w = app_following(pgtide, make_server,
                                                   writer)
    c = start_cutover_held(pgtide, src.uri, tgt.uri, "cutover.fenced",
                           timeout=SHORT_TIMEOUT)
    w.mark("target down")
    crash(target)
    wait_exited(c, 90, "while the target was down")
    time.sleep(0.5)
    target.start()
    w.mark("target back")
    settle_cutover(c, p, w, src, tgt, "the target down past its timeout")


def test_source_down_past_cutover_timeout_then_cutover_again(
        pgtide, make_server, writer):
    """The source crashes while cutover is held just after the fence and
    stays down until cutover has given up (--timeout 5): the fence cannot
    be lifted, so cutover must say the source is still fenced (and it is).
    Once the source is back, the next cutover lifts the leftover fence
    first, then finishes or fails as settle_cutover accepts; nothing lost
    or doubled."""
    source, target, src, tgt, p, w = app_following(pgtide, make_server,
                                                   writer)
    c = start_cutover_held(pgtide, src.uri, tgt.uri, "cutover.fenced",
                           timeout=SHORT_TIMEOUT)
    w.mark("source down")
    crash(source)
    rc = wait_exited(c, 90, "while the source was down")
    out, err = c.read_stdout(), c.read_stderr()
    print(f"cutover with the source down: exit {rc}\n--- stdout\n{out}"
          f"--- stderr\n{err[-3000:]}")
    time.sleep(0.5)
    source.start()
    w.mark("source back")
    fenced = failed_cutover_says_fenced(rc, out, err, src)
    assert_running(p, "after the source came back")
    # cutover refuses while no migrate streams from the slot: wait until
    # migrate has reconnected to the restarted source
    wait_for(lambda: p.poll() is not None or src.query_one(
        "SELECT active FROM pg_replication_slots"
        " WHERE slot_name = 'pgtide_default'") is True, 90, 0.2,
        "migrate did not stream from its slot again after the source came"
        " back")
    assert_running(p, "after the source came back")
    again = start_cutover(pgtide, src.uri, tgt.uri)
    if fenced:
        again.wait_for_output("lifting that fence first", timeout=60)
    settle_cutover(again, p, w, src, tgt, "a cutover that the source's"
                   " outage made fail")
