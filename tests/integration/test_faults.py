"""Nothing committed on the source is lost or applied twice when a server
crashes or the network drops pgtide's connections (issue 15), proved with
the harness of faults.py: servers of the test's own crashed with
`pg_ctl -m immediate` and started again, every connection reset through a
TCP proxy, while a writer commits a few hundred numbered transactions a
second on the source. At the end the target must hold exactly the
transactions the writer saw commit, once each, and the same rows as the
source."""
import random

import pytest

from cdc_helpers import ServerDb, start_migrate
from conftest import assert_same_content, wait_for
from faults import (TcpProxy, Writer, assert_writer_exact, crash_and_restart,
                    create_writer_schema)
from helpers import make_load_dataset, schema_objects, sequences

# Steady enough that a crash falls among commits the target has not flushed
# yet (the WAL writer writes every 200 ms), light enough for two cores.
RATE = 300


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

    def start(server, rate=RATE):
        w = Writer(server, rate=rate).start()
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
        # enough that its longest single step (pg_dump) fits between two
        sp.start_chaos(0.5, 2.0, seed=seed)
        tp.start_chaos(0.5, 2.0, seed=seed + 1)
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
