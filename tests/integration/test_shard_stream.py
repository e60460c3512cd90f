"""migrate with several targets (docs/sharding.md): one process per target,
each loading and then streaming its share of the source, routed by the same
rules as copy. Every change reaches the target its key says and no other: a
transaction touching several targets is applied on each, an UPDATE that
changes the routing key moves the row (deleted on one target, inserted on
the other), a reference table's changes reach every target. Killed with
kill -9 while the source is written, it resumes with nothing lost or
doubled on any target; with one target's server down for a while, the
others follow and it catches up once back; status and clean act on each
target's slot."""
import contextlib
import json
import os
import signal
import threading
import time

import psycopg
import pytest

from cdc_helpers import ServerDb, origin_name
from conftest import wait_for
from faults import crash, crash_and_restart
from helpers import hostile_settings
from test_shard import (HASHED, LOADED, assert_hashed_image,  # noqa: F401
                        assert_routed, rows, target_index, targets, task_file)

# the task's one slot (shard.slot one, decision 0043), or one per target
SLOT = "pgtide_split"
NAMES = ["shard1", "shard2", "shard3"]


def wait_streaming(p, n=3, timeout=120):
    """Every target's process says it streams."""
    wait_for(lambda: p.read_stderr().count("streaming from slot") >= n
             or p.poll() is not None, timeout, 0.2,
             "not every target streams")
    assert p.poll() is None, p.read_stderr()


def wait_caught_up(source_db, p=None, timeout=120):
    """The task's slots (one, or one per target) confirm the source's WAL
    position taken now: every target holds what came before it."""
    goal = source_db.query_one("SELECT pg_current_wal_lsn()::text")

    def done():
        if p is not None and p.poll() is not None:
            raise AssertionError(f"pgtide exited ({p.returncode}):\n"
                                 f"{p.read_stderr()[-4000:]}")
        behind = source_db.query(
            "SELECT slot_name FROM pg_replication_slots"
            " WHERE slot_name LIKE 'pgtide\\_split%%' AND NOT temporary"
            " AND (confirmed_flush_lsn IS NULL"
            " OR confirmed_flush_lsn < %s::pg_lsn)", (goal,))
        return behind == []
    wait_for(done, timeout, 0.2, f"the targets never caught up with {goal}")


def applied_past(db, name, goal):
    """Whether target `name`'s replication origin passed goal."""
    return db.query_one(
        "SELECT count(*) FROM pg_replication_origin_status"
        " WHERE external_id = %s AND remote_lsn >= %s::pg_lsn",
        (origin_name(db, f"{SLOT}_{name}"), goal)) == 1


def workload(source_db, first):
    """Inserts, a key moving between targets, a transaction spanning
    targets, deletes, and a reference table's update; ids from `first`."""
    source_db.execute(f"""
        INSERT INTO accounts SELECT g, 'new ' || g
          FROM generate_series({first}, {first + 29}) g;
        INSERT INTO orders SELECT g, g % 300 + 1, g
          FROM generate_series({first}, {first + 99}) g;
        -- the key moves: most of these rows change target
        UPDATE orders SET account_id = account_id + 1, total = total + 1
          WHERE id % 7 = {first % 7};
        -- one source transaction, rows on every target
        BEGIN;
        UPDATE accounts SET name = name || '+' WHERE account_id <= 12;
        DELETE FROM orders WHERE id % 11 = {first % 11} AND id < {first};
        UPDATE users SET email = upper(email) WHERE id % 5 = 0;
        COMMIT;
        UPDATE plans SET name = name || ' v{first}' WHERE id = 2;
        UPDATE audit SET note = note || '!' WHERE id < 10;
    """)


def test_migrate_routes_every_change_then_status_and_clean(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets,
                     HASHED + "    public.late_one: target shard3\n")
    # hostile settings on the source and every target: the key's text form,
    # which the stream routes by, must not change with them
    hostile = contextlib.ExitStack()
    for db in targets:
        hostile.enter_context(hostile_settings(source_db, db))
    with hostile:
        routed_under_hostile_settings(pgtide, source_db, targets, path)

    r = pgtide.run("status", "--config", path)
    assert r.returncode == 0, r.stderr
    assert f"slot {SLOT}," in r.stdout, r.stdout
    r = pgtide.run("status", "--config", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["task"] == "split"
    assert sorted(doc["targets"]) == ["shard1", "shard2", "shard3"]
    for name in NAMES:
        assert doc["targets"][name]["slot_name"] == SLOT, doc
        assert doc["targets"][name]["slot"]["active"] is False, doc
    r = pgtide.run("clean", "--config", path)
    assert r.returncode == 0, r.stderr
    assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0


def routed_under_hostile_settings(pgtide, source_db, targets, path):
    p = pgtide.start("migrate", "--config", path, "--progress-interval", "1")
    wait_streaming(p)
    err = p.read_stderr()
    # each target's lines say which target they are of; one slot on the
    # source, read once, feeds them all (decision 0043)
    assert '[feeder] streaming from slot "pgtide_split"' in err, err
    for name in ("shard1", "shard2", "shard3"):
        assert f"[{name}/main] streaming from slot \"pgtide_split\"" \
            in err, err
    assert source_db.query(
        "SELECT slot_name FROM pg_replication_slots WHERE NOT temporary") == [
            ("pgtide_split",)]
    workload(source_db, 10000)
    # tables created while the task runs join every target with its share:
    # one routed by its key, a reference table, one a rule sends whole
    source_db.execute("""
        CREATE TABLE late (id int PRIMARY KEY, account_id bigint NOT NULL,
                           note text);
        INSERT INTO late SELECT g, g % 50 + 1, 'l' || g
          FROM generate_series(1, 200) g;
        CREATE TABLE late_ref (id int PRIMARY KEY, v text);
        INSERT INTO late_ref SELECT g, 'r' || g FROM generate_series(1, 20) g;
        CREATE TABLE late_one (id int PRIMARY KEY, account_id bigint);
        INSERT INTO late_one SELECT g, g FROM generate_series(1, 30) g;
    """)
    for table in ("late", "late_ref", "late_one"):
        wait_for(lambda: p.read_stderr().count(
            f'table "public"."{table}" joins with') >= 3 or p.poll() is not None,
            90, 0.5, f"{table} did not join every target")
    assert p.poll() is None, p.read_stderr()
    source_db.execute("""
        INSERT INTO late SELECT g, g % 70 + 1, 'w' || g
          FROM generate_series(201, 260) g;
        -- keys move between targets, in one transaction with other rows
        BEGIN;
        UPDATE late SET account_id = account_id + 1 WHERE id % 3 = 0;
        DELETE FROM late WHERE id % 10 = 1;
        UPDATE late_ref SET v = v || '!' WHERE id < 5;
        INSERT INTO late_one VALUES (31, 31);
        COMMIT;
    """)
    workload(source_db, 20000)
    wait_caught_up(source_db, p)
    assert_hashed_image(source_db, targets)
    assert_routed(source_db, targets, "late",
                  lambda row, i: target_index(str(row[1]), 3) == i)
    assert_routed(source_db, targets, "late_ref", lambda row, i: True)
    assert_routed(source_db, targets, "late_one", lambda row, i: i == 2)
    # every row somewhere, once
    assert sum(db.query_one("SELECT count(*) FROM orders") for db in targets) \
        == source_db.query_one("SELECT count(*) FROM orders")
    r = pgtide.run("validate", "--config", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "late_one" in r.stdout, r.stdout
    assert p.stop() == 0, p.read_stderr()


LATE = """
    CREATE TABLE late (id int PRIMARY KEY, account_id bigint NOT NULL,
                       note text);
    INSERT INTO late SELECT g, g % 50 + 1, 'l' || g
      FROM generate_series(1, 200) g;
    CREATE TABLE late_one (id int PRIMARY KEY, account_id bigint);
    INSERT INTO late_one SELECT g, g FROM generate_series(1, 30) g;
"""


# under the sanitizers one point: a target's join registered and killed is
# the single target's case, which test_new_tables.py kills there too
@pytest.mark.parametrize("point", [
    pytest.param("join.registered", marks=pytest.mark.skipif(
        bool(os.environ.get("PGTIDE_SANITIZED")),
        reason="one point under the sanitizers")),
    "join.before_commit"])
def test_a_join_of_several_targets_killed_is_finished_by_the_next_run(
        pgtide, source_db, targets, tmp_path, point):
    """Every target's process killed while new tables join it, registered
    (not yet published) or with its share in the open target transaction:
    the next run joins them from a fresh snapshot, each target with exactly
    its share, while the source is written."""
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets,
                     HASHED + "    public.late_one: target shard3\n")
    p = pgtide.start("migrate", "--config", path, env={"PGTIDE_FAULT": point})
    wait_streaming(p)
    source_db.execute(LATE)
    assert p.wait(90) not in (0, None), p.read_stderr()
    assert "its process was killed by signal 9" in p.read_stderr()
    wait_for(lambda: not children_of(p.pid), 30, 0.1,
             "a target's process outlived its parent")
    for db in targets:
        # nothing of the join committed
        assert db.query_one("SELECT to_regclass('public.late')") is None
    source_db.execute("UPDATE late SET account_id = account_id + 1"
                      " WHERE id % 4 = 0; DELETE FROM late WHERE id < 10")
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)
    source_db.execute("""
        INSERT INTO late SELECT g, g % 70 + 1, 'w' FROM generate_series(201, 240) g;
        UPDATE late SET account_id = account_id + 2 WHERE id % 5 = 0;
        UPDATE late_one SET account_id = 0 WHERE id = 3;
    """)
    wait_caught_up(source_db, p)
    assert p.read_stderr().count('table "public"."late" joins with') == 3
    assert_routed(source_db, targets, "late",
                  lambda row, i: target_index(str(row[1]), 3) == i)
    assert_routed(source_db, targets, "late_one", lambda row, i: i == 2)
    assert_hashed_image(source_db, targets)
    # the joined tables are the task's: cutover does not refuse them as
    # left out, and its full validation compares them
    role = "app_join_" + point.split(".")[1]
    source_db.execute(f"CREATE ROLE {role} LOGIN; GRANT SELECT, INSERT, UPDATE,"
                      f" DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        r = pgtide.run("cutover", "--config", path, "--fence-role", role,
                       "--final-validation", "full")
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.wait(60) == 0, p.read_stderr()
    finally:
        source_db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def children_of(pid):
    """The pids whose parent is pid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


class Writer(threading.Thread):
    """Inserts numbered orders and moves keys, one small transaction each,
    until stopped."""

    def __init__(self, source_db):
        super().__init__(daemon=True)
        self.source_db = source_db
        self.stop_event = threading.Event()
        self.n = 0

    def run(self):
        try:
            self.write()
        except psycopg.OperationalError:
            pass  # the source crashed: a test that crashes it starts another

    def write(self):
        with psycopg.connect(self.source_db.uri, autocommit=True) as c:
            while not self.stop_event.is_set():
                with c.transaction():
                    self.step(c, 100000 + self.n)
                self.n += 1
                time.sleep(0.002)

    def step(self, c, i):
        c.execute("INSERT INTO orders VALUES (%s, %s, %s)", (i, i % 300 + 1, i))
        c.execute("UPDATE orders SET account_id = account_id %% 300"
                  " + 1 WHERE id = %s", (i - 50,))

    def stop(self):
        self.stop_event.set()
        self.join(30)


def streaming_under_writer(pgtide, source_db, targets, tmp_path,
                           slot="one"):
    """LOADED split by HASHED (under shard.slot `slot`), migrate streaming,
    a Writer started."""
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets,
                     HASHED + f"  slot: {slot}\n")
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)
    w = Writer(source_db)
    w.start()
    return path, p, w


def assert_caught_up_exactly(source_db, targets, p):
    """Once every slot confirms the source's end: each target holds exactly
    its share of HASHED, every order once somewhere; migrate then stops
    cleanly, naming each slot it leaves on the source once."""
    wait_caught_up(source_db, p)
    assert_hashed_image(source_db, targets)
    assert sum(db.query_one("SELECT count(*) FROM orders") for db in targets) \
        == source_db.query_one("SELECT count(*) FROM orders")
    assert p.stop() == 0, p.read_stderr()
    err = p.read_stderr()
    for (slot,) in source_db.query("SELECT slot_name FROM pg_replication_slots"
                                   " WHERE NOT temporary"):
        assert err.count(f'replication slot "{slot}" is left on the source') \
            == 1, err


def test_kill_9_of_every_process_while_streaming_loses_and_doubles_nothing(
        pgtide, source_db, targets, tmp_path):
    """kill -9 of the first process and every target's, twice, under a
    writer. The first time shard2 is held behind (a lock on its table): on
    the next run the one slot's stream starts where shard2 is, and the two
    others skip what their origins hold, keeping the descriptions of the
    tables those transactions carried (the source sends each once)."""
    path, p, w = streaming_under_writer(pgtide, source_db, targets, tmp_path)
    try:
        for behind in (True, False):
            wait_for(lambda: w.n > 300, 60, 0.1, "the writer is stuck")
            if behind:
                lock = psycopg.connect(targets[1].uri)
                lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                mark = w.n
                wait_for(lambda: w.n > mark + 200, 60, 0.1,
                         "the writer is stuck")
            kids = children_of(p.pid)
            assert len(kids) == 3, kids
            for pid in kids + [p.pid]:
                os.kill(pid, signal.SIGKILL)
            p.wait(30)
            if behind:
                lock.rollback()
                lock.close()
            wait_for(lambda: not any(os.path.exists(f"/proc/{k}")
                                     and open(f"/proc/{k}/stat").read()
                                     .rsplit(")", 1)[1].split()[0] != "Z"
                                     for k in kids), 30, 0.1,
                     "a target's process outlived kill -9")
            p = pgtide.start("migrate", "--config", path)
            wait_streaming(p)
            start = w.n
            wait_for(lambda: w.n > start + 300, 60, 0.1, "the writer is stuck")
    finally:
        w.stop()
    assert_caught_up_exactly(source_db, targets, p)


@pytest.mark.skipif(bool(os.environ.get("PGTIDE_SANITIZED")),
                    reason="a refusal before anything moves: CI time")
def test_a_task_keeps_the_slots_it_began_with(pgtide, source_db, targets,
                                              tmp_path):
    """A task begun with a slot per target (a task file with shard.slot
    per_target, or one begun before one slot) run with shard.slot one: one
    clear error naming the setting to write, nothing created or dropped on
    the source, and the task goes on once the file says per_target."""
    source_db.execute(LOADED)
    old = task_file(tmp_path, source_db, targets,
                    HASHED + "  slot: per_target\n")
    p = pgtide.start("migrate", "--config", old)
    wait_streaming(p)
    assert p.stop() == 0, p.read_stderr()
    slots = source_db.query("SELECT slot_name FROM pg_replication_slots"
                            " ORDER BY 1")
    new = task_file(tmp_path, source_db, targets, HASHED, name="one.yaml")
    r = pgtide.run("migrate", "--config", new)
    assert r.returncode == 2, r.stderr
    assert 'task "split" reads the source through slot "pgtide_split_shard1"' \
        ', not "pgtide_split" as shard.slot one says' in r.stderr, r.stderr
    assert "set shard.slot to per_target in its task file" in r.stderr
    assert source_db.query("SELECT slot_name FROM pg_replication_slots"
                           " ORDER BY 1") == slots
    p = pgtide.start("migrate", "--config", old)
    wait_streaming(p)
    assert p.stop() == 0, p.read_stderr()


def test_list_routing_streams_and_a_key_of_no_target_stops_the_stream(
        pgtide, source_db, targets, tmp_path):
    """By list, with a filter of the task file's own on the same table: the
    stream routes each row in pgtide and asks the source only that filter.
    A row whose region no target lists is not dropped by every target: the
    stream stops, naming the table and column, and every target keeps the
    rows it had."""
    source_db.execute("""
        CREATE TABLE stores (id int PRIMARY KEY, region text NOT NULL,
                             open boolean NOT NULL, note text);
        INSERT INTO stores SELECT g, (ARRAY['eu', 'uk', 'us', 'apac'])[g % 4 + 1],
                                  g % 3 <> 0, repeat('n', g % 50)
          FROM generate_series(1, 400) g;
    """)
    regions = {0: {"eu", "uk"}, 1: {"us"}, 2: {"apac"}}
    path = task_file(tmp_path, source_db, targets,
                     "  key: region\n  method: list\n  values:\n"
                     "    shard1: \"eu, uk\"\n    shard2: us\n"
                     "    shard3: apac\n",
                     extra="filters:\n  public.stores: open\n")
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)
    source_db.execute("""
        INSERT INTO stores SELECT g, (ARRAY['eu', 'uk', 'us', 'apac'])[g % 4 + 1],
                                  g % 2 = 0, 'new'
          FROM generate_series(401, 600) g;
        UPDATE stores SET region = CASE region WHEN 'eu' THEN 'us'
                                               WHEN 'us' THEN 'apac'
                                               ELSE 'eu' END
          WHERE id % 5 = 0;
        UPDATE stores SET open = NOT open WHERE id % 7 = 0;
        DELETE FROM stores WHERE id % 11 = 0;
    """)
    wait_caught_up(source_db, p)

    def expected(row, i):
        return row[1] in regions[i] and row[2]
    every = rows(source_db, "stores")
    for i, db in enumerate(targets):
        assert rows(db, "stores") == [r for r in every if expected(r, i)], i

    source_db.execute("INSERT INTO stores VALUES (1000, 'mars', true, 'x')")
    rc = p.wait(120)
    err = p.read_stderr()
    assert rc == 2, err
    assert "a row of table \"public\".\"stores\", column region:" in err, err
    for i, db in enumerate(targets):
        assert db.query_one("SELECT count(*) FROM stores WHERE id = 1000") == 0
        assert rows(db, "stores") == [r for r in every if expected(r, i)], i


def test_sighup_reaches_every_target_and_changes_only_the_caps(
        pgtide, source_db, targets, tmp_path):
    """A SIGHUP to migrate during the load, which fills every target at
    once, rereads the task file as the load's and finds only the caps
    changed; each target's process then streams."""
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, pad text);
        INSERT INTO t SELECT g, 'p' FROM generate_series(1, 3000) g;
    """)
    path = task_file(tmp_path, source_db, targets, "  key: id\n",
                     extra="throttle:\n  rows_per_second: 100\n")
    p = pgtide.start("migrate", "--config", path)
    wait_for(lambda: "each chunk read once and its rows sent to 3 targets"
             in p.read_stderr(), 60, 0.2, "the load did not start")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("rows_per_second: 100", "rows_per_second: 0"))
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP: throttle.rows_per_second now in force"
             in p.read_stderr(), 30, 0.2, "the load did not take the new cap")
    wait_streaming(p)
    log = p.read_stderr()
    assert "takes a restart" not in log and "take a restart" not in log, log
    assert p.stop() == 0, p.read_stderr()
    assert sum(db.query_one("SELECT count(*) FROM t") for db in targets) \
        == 3000


@pytest.mark.parametrize("slot", ["one", pytest.param(
    "per_target", marks=pytest.mark.skipif(
        bool(os.environ.get("PGTIDE_SANITIZED")),
        reason="the slots per target are the code tasks had before one slot,"
               " already run under the sanitizers before: CI time"))])
def test_one_target_down_then_back_while_the_others_follow(
        pgtide, make_server, tmp_path, slot):
    """Three targets on servers of their own. One crashes and stays down
    while the source is written: the other two keep following (their
    replication origins move on; under a slot per target, their slots too,
    and under one slot it holds at the target that is down), the task keeps
    running, and once the server is back its target catches up; every
    target then holds exactly its share, nothing lost or doubled
    anywhere."""
    source_db = ServerDb(make_server("src"))
    servers = [make_server(f"tgt{i + 1}") for i in range(3)]
    dbs = [ServerDb(s) for s in servers]
    _, p, w = streaming_under_writer(pgtide, source_db, dbs, tmp_path, slot)
    try:
        wait_for(lambda: w.n > 200, 60, 0.1, "the writer is stuck")
        crash(servers[1])
        goal = source_db.query_one("SELECT pg_current_wal_lsn()::text")
        wait_for(lambda: w.n > 600, 60, 0.1, "the writer is stuck")
        # the two others follow past the crash while shard2 is down
        wait_for(lambda: applied_past(dbs[0], "shard1", goal)
                 and applied_past(dbs[2], "shard3", goal), 60, 0.2,
                 "the targets still up stopped following")
        slots = dict(source_db.query(
            "SELECT slot_name, confirmed_flush_lsn >= %s::pg_lsn"
            " FROM pg_replication_slots WHERE NOT temporary", (goal,)))
        if slot == "one":
            # what the target that is down lacks stays on the source
            assert slots == {SLOT: False}, slots
        else:
            assert slots == {f"{SLOT}_shard1": True, f"{SLOT}_shard2": False,
                             f"{SLOT}_shard3": True}, slots
        assert p.poll() is None, p.read_stderr()
        # down for a minute under the default slot, with the stream retrying
        # at its longest backoff (10 s); the sanitizers' run and the other
        # setting only retry for a while
        down = 5 if slot != "one" or os.environ.get("PGTIDE_SANITIZED") else 60
        time.sleep(down)
        assert p.poll() is None, p.read_stderr()
        servers[1].start()
        start = w.n
        wait_for(lambda: w.n > start + 200, 60, 0.1, "the writer is stuck")
    finally:
        w.stop()
    assert_caught_up_exactly(source_db, dbs, p)


def test_source_crash_under_one_slot_loses_and_doubles_nothing(
        pgtide, make_server, targets, tmp_path):
    """The source crashes while its one slot feeds three targets. The slot
    comes back at its last persisted position, behind what the targets
    hold, and each target holds a different amount: the reader starts
    again at the lowest position asked, each target skips what it holds
    (keeping the descriptions of the tables those transactions carried,
    which the source does not send again), and every target ends with
    exactly its share, nothing lost or doubled."""
    source = make_server("src")
    source_db = ServerDb(source)
    _, p, w = streaming_under_writer(pgtide, source_db, targets, tmp_path)
    wait_for(lambda: w.n > 300, 60, 0.1, "the writer is stuck")
    crash_and_restart(source, down_s=1.0)
    w.stop()
    # numbered on from the last one that may have committed
    start = w.n + 1
    w = Writer(source_db)
    w.n = start
    w.start()
    try:
        wait_for(lambda: w.n > start + 300, 60, 0.1, "the writer is stuck")
    finally:
        w.stop()
    assert "the stream of slot \"pgtide_split\" starts again" \
        in p.read_stderr(), p.read_stderr()
    assert_caught_up_exactly(source_db, targets, p)


# 30 accounts placed on the three targets by a lookup table, their orders
PLACED = """
    CREATE TABLE placement (account_id bigint PRIMARY KEY,
                            shard text NOT NULL);
    INSERT INTO placement SELECT g, 'shard' || (g % 3 + 1)
      FROM generate_series(1, 30) g;
    CREATE TABLE orders (id int PRIMARY KEY, account_id bigint NOT NULL,
                         total int);
    INSERT INTO orders SELECT g, g % 30 + 1, g FROM generate_series(1, 600) g;
"""
LOOKUP = ("  key: account_id\n  method: lookup\n"
          "  lookup: public.placement(account_id, shard)\n")


@pytest.mark.skipif(bool(os.environ.get("PGTIDE_SANITIZED")),
                    reason="the lookup's routing, from each target's copy and "
                    "after kill -9, runs under the sanitizers in "
                    "test_shard_handover")
def test_lookup_routes_the_stream_and_follows_the_tables_new_keys(
        pgtide, source_db, targets, tmp_path):
    """By a lookup table (decision 0036): every target gets the whole table,
    and each target's stream routes by its own copy of it, kept current by
    the table's changes. A new account placed in the same transaction as
    its first rows reaches its target; after kill -9 the routing starts
    again from each target's copy. A placed key deleted stops the stream,
    naming the table, and no target loses or gains a row (a key given
    another target moves its rows: test_shard_handover)."""
    source_db.execute(PLACED)
    path = task_file(tmp_path, source_db, targets, LOOKUP)
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)

    def assert_placed():
        where = dict(source_db.query("SELECT account_id, shard FROM placement"))
        every = rows(source_db, "orders")
        for i, db in enumerate(targets):
            assert rows(db, "placement") == rows(source_db, "placement"), i
            assert rows(db, "orders") == [
                r for r in every if where[r[1]] == f"shard{i + 1}"], i

    source_db.execute("""
        BEGIN;
        INSERT INTO placement VALUES (31, 'shard2'), (32, 'shard3');
        INSERT INTO orders SELECT g, 31 + g % 2, g FROM generate_series(601, 640) g;
        COMMIT;
        UPDATE orders SET account_id = 31 WHERE id % 9 = 0;
        DELETE FROM orders WHERE id % 10 = 0;
    """)
    wait_caught_up(source_db, p)
    assert_placed()

    kids = children_of(p.pid)
    for pid in kids + [p.pid]:
        os.kill(pid, signal.SIGKILL)
    p.wait(30)
    source_db.execute("""
        INSERT INTO placement VALUES (33, 'shard1');
        INSERT INTO orders SELECT g, 33, g FROM generate_series(641, 660) g;
    """)
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)
    wait_caught_up(source_db, p)
    assert "routing by lookup table public.placement: 32 keys" \
        in p.read_stderr(), p.read_stderr()
    assert_placed()

    before = [rows(db, "orders") for db in targets]
    source_db.execute("DELETE FROM placement WHERE account_id = 1")
    rc = p.wait(120)
    err = p.read_stderr()
    assert rc == 2, err
    assert "a row of lookup table public.placement was deleted: new rows " \
        "of its key would have no target" in err, err
    assert [rows(db, "orders") for db in targets] == before


def test_follow_resumes_every_targets_stream(pgtide, source_db, targets,
                                            tmp_path):
    """migrate stopped, the source written, then follow with the same task
    file: a process per target resumes its stream, and every target holds
    exactly its share."""
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets, HASHED)
    p = pgtide.start("migrate", "--config", path)
    wait_streaming(p)
    assert p.stop() == 0, p.read_stderr()
    workload(source_db, 30000)
    f = pgtide.start("follow", "--config", path)
    wait_streaming(f)
    workload(source_db, 40000)
    assert_caught_up_exactly(source_db, targets, f)

