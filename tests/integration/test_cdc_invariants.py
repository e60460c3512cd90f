"""The change stream's invariants, each proved by breaking pgtide (kill -9 at
a named fault point), the servers (restart, terminated walsender) or the
target (a lock held for many times wal_sender_timeout): nothing committed on
the source is lost, nothing is applied twice, the slot never confirms what
the target has not durably committed."""
import signal
import threading
import time

import pytest

from cdc_helpers import (ServerDb, lsn, origin_flushed, slot_confirmed,
                         start_migrate, wait_caught_up)
from conftest import assert_same_content

SCHEMA = """
    CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL);
    INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g;
    -- no key: a doubled insert leaves a duplicate row behind
    CREATE TABLE ledger (acct int, delta int, seq bigint);
    ALTER TABLE ledger REPLICA IDENTITY FULL;
"""


class Workload:
    """Transactions on the source, each moving money and logging it, until
    stopped or `count` are done. Bounded in time by the caller."""

    def __init__(self, db, count=100000, first_seq=0):
        self.db, self.count, self.done = db, count, 0
        self.first_seq = first_seq
        self.stop_flag = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            with self.db.connect() as c:
                c.autocommit = False
                while not self.stop_flag.is_set() and self.done < self.count:
                    i = self.first_seq + self.done
                    a = i % 100 + 1
                    c.execute("UPDATE acct SET balance = balance + 1 WHERE id = %s", (a,))
                    c.execute("INSERT INTO ledger VALUES (%s, 1, %s)", (a, i))
                    c.commit()
                    self.done += 1
        except Exception as e:  # reported by stop()
            self.errors.append(e)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(60)
        assert not self.errors, self.errors
        return self.done


def assert_exactly_once(source_db, target_db):
    assert_same_content(source_db, target_db)
    dups = target_db.query_one(
        "SELECT count(*) FROM (SELECT seq FROM ledger GROUP BY seq"
        " HAVING count(*) > 1) d")
    assert dups == 0
    # balances are the sum of the ledger: no update lost or doubled
    assert target_db.query_one(
        "SELECT count(*) FROM acct a LEFT JOIN (SELECT acct, sum(delta) s"
        " FROM ledger GROUP BY acct) l ON l.acct = a.id"
        " WHERE a.balance <> coalesce(l.s, 0)") == 0


@pytest.mark.parametrize("fault", [
    "apply.after_commit@20",   # target committed, feedback not yet sent
    "apply.before_commit@20",  # batch sent, not committed
    "apply.change@300",        # in the middle of a batch
])
def test_kill_during_apply_loses_and_doubles_nothing(pgtide, source_db,
                                                     target_db, fault):
    source_db.execute(SCHEMA)
    w = Workload(source_db).start()
    p = start_migrate(pgtide, source_db, target_db, env={"PGTIDE_FAULT": fault})
    assert p.wait(120) == -signal.SIGKILL, p.read_stderr()
    # the slot never got ahead of what the target holds
    assert lsn(slot_confirmed(source_db)) <= lsn(origin_flushed(target_db)) \
        or lsn(origin_flushed(target_db)) == 0
    p = start_migrate(pgtide, source_db, target_db)
    time.sleep(1)
    w.stop()
    wait_caught_up(source_db, target_db)
    assert_exactly_once(source_db, target_db)
    assert p.stop() == 0


def test_kill_in_large_spilled_transaction(pgtide, source_db, target_db):
    source_db.execute(SCHEMA)
    p = start_migrate(pgtide, source_db, target_db, "--memory-limit", "1MB",
                      env={"PGTIDE_FAULT": "apply.change@150000"})
    source_db.execute("INSERT INTO ledger SELECT g % 100 + 1, 1, g"
                      " FROM generate_series(1, 200000) g")
    assert p.wait(180) == -signal.SIGKILL, p.read_stderr()
    assert target_db.query_one("SELECT count(*) FROM ledger") == 0
    p = start_migrate(pgtide, source_db, target_db, "--memory-limit", "1MB")
    wait_caught_up(source_db, target_db, timeout=180)
    assert target_db.query_one("SELECT count(*) FROM ledger") == 200000
    assert_same_content(source_db, target_db, tables=["public.ledger"])
    assert p.stop() == 0


def test_kill_while_streamed_transaction_is_open(pgtide, source_db, target_db):
    source_db.execute("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'")
    source_db.execute("SELECT pg_reload_conf()")
    try:
        source_db.execute(SCHEMA)
        p = start_migrate(pgtide, source_db, target_db,
                          env={"PGTIDE_FAULT": "receive.stream_stop@2"})
        with source_db.connect() as c:
            c.autocommit = False
            c.execute("INSERT INTO ledger SELECT g % 100 + 1, 1, g"
                      " FROM generate_series(1, 50000) g")
            # the source streams the open transaction; pgtide dies mid-way
            assert p.wait(120) == -signal.SIGKILL, p.read_stderr()
            c.execute("INSERT INTO ledger SELECT 1, 1, g"
                      " FROM generate_series(50001, 60000) g")
            c.commit()
        p = start_migrate(pgtide, source_db, target_db)
        wait_caught_up(source_db, target_db)
        assert target_db.query_one("SELECT count(*) FROM ledger") == 60000
        assert_same_content(source_db, target_db)
        assert p.stop() == 0
    finally:
        source_db.execute("ALTER SYSTEM RESET logical_decoding_work_mem")
        source_db.execute("SELECT pg_reload_conf()")


def test_slot_never_confirms_what_the_target_has_not_committed(
        pgtide, source_db, target_db):
    source_db.execute(SCHEMA)
    w = Workload(source_db).start()
    # the applier pauses with a batch sent but not committed
    p = start_migrate(pgtide, source_db, target_db,
                      env={"PGTIDE_FAULT": "apply.before_commit@10:sleep=4000"})
    p.wait_for_output("fault point apply.before_commit: sleeping")
    for _ in range(10):  # while the applier holds its batch open
        confirmed = lsn(slot_confirmed(source_db))
        assert confirmed <= lsn(origin_flushed(target_db))
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert lsn(slot_confirmed(source_db)) <= lsn(origin_flushed(target_db))
    p = start_migrate(pgtide, source_db, target_db)
    w.stop()
    wait_caught_up(source_db, target_db)
    assert_exactly_once(source_db, target_db)
    assert p.stop() == 0


def test_slow_target_does_not_drop_the_replication_connection(
        pgtide, make_server, target_db):
    source = make_server("walsender", wal_sender_timeout="5s")
    source.execute("postgres", SCHEMA)
    src = ServerDb(source)
    p = start_migrate(pgtide, src, target_db)
    with target_db.connect() as lock_conn:
        lock_conn.autocommit = False
        lock_conn.execute("LOCK TABLE acct IN ACCESS EXCLUSIVE MODE")
        w = Workload(src, count=400).start()
        time.sleep(16)  # more than three times wal_sender_timeout
        lock_conn.rollback()
    w.stop()
    wait_caught_up(src, target_db)
    assert_exactly_once(src, target_db)
    assert "replication timeout" not in source.log_tail(400)
    assert "reconnecting" not in p.read_stderr()
    assert p.stop() == 0


@pytest.mark.parametrize("what", ["source", "target", "walsender"])
def test_disconnects_are_survived(pgtide, make_server, what):
    source = make_server("src")
    target = make_server("tgt")
    source.execute("postgres", SCHEMA)
    src, tgt = ServerDb(source), ServerDb(target)
    p = start_migrate(pgtide, src, tgt)
    w = Workload(src, count=3000).start()
    time.sleep(1)
    if what == "source":
        done = w.stop()
        source.restart()
        w = Workload(src, count=500, first_seq=done).start()
    elif what == "target":
        target.restart()
    else:
        source.execute("postgres", "SELECT pg_terminate_backend(pid)"
                       " FROM pg_stat_replication")
    time.sleep(1)
    w.stop()
    wait_caught_up(src, tgt)
    assert_exactly_once(src, tgt)
    assert "reconnecting" in p.read_stderr()
    assert p.stop() == 0


def test_reloaded_table_gets_exactly_the_changes_after_its_point(
        pgtide, source_db, target_db):
    """Killed during the load, while the application writes: the table in
    flight is reloaded from a fresh snapshot, and the change stream (which
    starts at the slot's older point) skips, for that table only, what the
    reload already holds; finished tables get every change."""
    source_db.execute(SCHEMA + """
        CREATE TABLE filler (id int PRIMARY KEY, v int);
        INSERT INTO filler SELECT g, 0 FROM generate_series(1, 60000) g;
        INSERT INTO ledger SELECT g % 100 + 1, 0, -g FROM generate_series(1, 30000) g;
        ANALYZE;
    """)

    w = Workload(source_db).start()
    writer = threading.Event()

    def touch_filler():  # filler finishes loading before the kill
        with source_db.connect() as c:
            i = 0
            while not writer.is_set() and i < 20000:
                c.execute("UPDATE filler SET v = v + 1 WHERE id = %s",
                          (i % 60000 + 1,))
                i += 1
    t = threading.Thread(target=touch_filler, daemon=True)
    t.start()
    # one worker, largest table first: filler is done at row 60000, ledger
    # is in flight when pgtide dies
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--jobs", "1",
                   env={"PGTIDE_FAULT": "copy.row@70000"})
    assert r.returncode == -signal.SIGKILL, r.stderr
    p = start_migrate(pgtide, source_db, target_db, "--jobs", "1")
    time.sleep(1)
    w.stop()
    writer.set()
    t.join(60)
    try:
        wait_caught_up(source_db, target_db)
    except AssertionError:
        # this test once found a row of filler missing on the target (the
        # exported snapshot's gap, closed by the snapshot guard): should it
        # ever fail again, say whether the row is absent or invisible, and
        # what the state said about filler's load
        print("filler on the target:", target_db.query(
            "SELECT count(*), min(id), max(id) FROM filler"))
        print("filler without its index:", target_db.query(
            "SELECT count(*) FROM (SELECT id FROM filler OFFSET 0) f"))
        print("state tables:", target_db.query(
            "SELECT src_name, state, loads, chunks_done, rows,"
            " snapshot_lsn::text, snapshot_txids FROM pgtide.tables"))
        print("state chunks:", target_db.query(
            "SELECT src_name, chunk, rows, run FROM pgtide.chunks"))
        print("post-data:", target_db.query(
            "SELECT tbl_name, kind, done_run FROM pgtide.ddl ORDER BY entry"))
        raise
    assert_exactly_once(source_db, target_db)
    assert_same_content(source_db, target_db, tables=["public.filler"])
    loads = dict(target_db.query(
        "SELECT src_name, loads FROM pgtide.tables"))
    assert loads["filler"] == 1 and loads["ledger"] == 2
    later = target_db.query_one(
        "SELECT t.snapshot_lsn > k.consistent_lsn FROM pgtide.tables t"
        " JOIN pgtide.task k USING (task) WHERE t.src_name = 'ledger'")
    assert later is True
    assert p.stop() == 0


def test_huge_transaction_applies_in_bounded_memory(pgtide, source_db,
                                                    target_db):
    """One source transaction of 400,000 rows of 400 bytes (about 170 MB as
    the stream carries it), applied with a 32 MB buffer: pgtide's peak RSS
    stays under the bound plus a small constant, well below the
    transaction's size. Wide rows rather than many: the size is what tests
    the bound, and every row costs the apply its time."""
    import os
    sanitized = bool(os.environ.get("PGTIDE_SANITIZED"))
    rows = 200_000 if sanitized else 400_000
    limit_mb, constant_mb = 32, 64
    source_db.execute("CREATE TABLE huge (id int PRIMARY KEY, v text)")
    p = start_migrate(pgtide, source_db, target_db, "--memory-limit",
                      f"{limit_mb}MB")
    source_db.execute("INSERT INTO huge SELECT g, repeat(md5(g::text), 12)"
                      f" || g FROM generate_series(1, {rows}) g")
    wait_caught_up(source_db, target_db, timeout=600)
    assert target_db.query_one("SELECT count(*) FROM huge") == rows
    with open(f"/proc/{p.pid}/status") as f:
        hwm_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    print(f"peak RSS for a {rows}-row transaction: {hwm_kb // 1024} MB "
          f"(memory limit {limit_mb} MB)")
    if not sanitized:  # ASan's shadow memory is not pgtide's
        assert hwm_kb < (limit_mb + constant_mb) * 1024, hwm_kb
    assert p.stop() == 0
