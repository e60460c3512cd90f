"""pgtide migrate: the full load, then the change stream. Every change made
on the source during and after the load reaches the target exactly once."""
import signal
import subprocess
import time

import pytest

from cdc_helpers import ServerDb, origin_name, start_migrate, wait_caught_up
from conftest import Database, _free_port, assert_same_content, wait_for
from test_http import metric, scrape


WORKLOAD_SCHEMA = """
    CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, note text,
                        doc text);
    CREATE TABLE parted (id int, region text, v int,
                         PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
    CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
    CREATE TABLE full_ident (a int, b text);
    ALTER TABLE full_ident REPLICA IDENTITY FULL;
    CREATE TABLE by_index (id int NOT NULL, v text);
    CREATE UNIQUE INDEX by_index_id ON by_index (id);
    ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id;
    CREATE TABLE truncated (id int PRIMARY KEY);
    INSERT INTO items SELECT g, g, 'n' || g, NULL FROM generate_series(1, 2000) g;
    INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g
      FROM generate_series(1, 500) g;
    INSERT INTO full_ident VALUES (1, 'dup'), (1, 'dup'), (2, 'x');
    INSERT INTO by_index SELECT g, 'v' FROM generate_series(1, 100) g;
    INSERT INTO truncated SELECT generate_series(1, 50);
"""


def custom_workload(db):
    """Every kind of change the issue lists, on a live source."""
    db.execute("""
        INSERT INTO items SELECT g, 1, 'new', NULL FROM generate_series(5001, 5100) g;
        UPDATE items SET qty = qty + 1 WHERE id % 7 = 0;
        UPDATE items SET id = id + 100000 WHERE id BETWEEN 10 AND 19;  -- key change
        DELETE FROM items WHERE id BETWEEN 20 AND 40;
        UPDATE parted SET region = 'eu' WHERE id BETWEEN 1 AND 21 AND region = 'us';
        UPDATE full_ident SET b = 'one' WHERE a = 1 AND ctid = (SELECT min(ctid) FROM full_ident WHERE a = 1);
        DELETE FROM full_ident WHERE a = 2;
        UPDATE by_index SET v = 'w' WHERE id < 10;
        DELETE FROM by_index WHERE id > 90;
        TRUNCATE truncated RESTART IDENTITY;
        INSERT INTO truncated VALUES (1), (2);
    """)
    with db.connect() as c:
        c.autocommit = False
        c.execute("INSERT INTO items VALUES (6001, 1, 'kept', NULL)")
        c.execute("SAVEPOINT s1")
        c.execute("INSERT INTO items VALUES (6002, 1, 'rolled back', NULL)")
        c.execute("UPDATE items SET note = 'lost' WHERE id = 1")
        c.execute("ROLLBACK TO SAVEPOINT s1")
        c.execute("UPDATE items SET note = 'after savepoint' WHERE id = 2")
        c.commit()
        c.execute("INSERT INTO items VALUES (7001, 1, 'aborted', NULL)")
        c.rollback()
    # a 1 MB TOASTed value, then updates that leave it untouched
    db.execute("UPDATE items SET doc = repeat(md5(id::text), 32768) WHERE id = 3")
    db.execute("UPDATE items SET qty = 42 WHERE id = 3")
    db.execute("UPDATE items SET note = 'still toasted' WHERE id = 3")


def test_migrate_follows_every_kind_of_change(pgtide, source_db, target_db):
    source_db.execute(WORKLOAD_SCHEMA)
    p = start_migrate(pgtide, source_db, target_db)
    custom_workload(source_db)
    # a column added on both sides mid-stream
    source_db.execute("ALTER TABLE items ADD COLUMN extra int DEFAULT 7")
    target_db.execute("ALTER TABLE items ADD COLUMN extra int DEFAULT 7")
    source_db.execute("INSERT INTO items (id, qty, extra) VALUES (8001, 1, 99)")
    source_db.execute("UPDATE items SET extra = 5 WHERE id = 4")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    assert target_db.query_one(
        "SELECT length(doc) FROM items WHERE id = 3") == 32 * 32768
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()


def test_large_transaction_streamed_and_spilled(pgtide, source_db, target_db):
    """One transaction of 200,000 row changes (about 8 MB as the stream
    carries them), streamed before its commit (protocol 2) and spilled to
    disk past a memory bound of half that."""
    source_db.execute("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'")
    source_db.execute("SELECT pg_reload_conf()")
    source_db.execute("CREATE TABLE big (id int PRIMARY KEY, v int)")
    p = start_migrate(pgtide, source_db, target_db, "--memory-limit", "4MB")
    source_db.execute("INSERT INTO big SELECT g, 0 FROM generate_series(1, 100000) g;"
                      " UPDATE big SET v = 1;")
    wait_caught_up(source_db, target_db, timeout=300)
    assert target_db.query("SELECT count(*), sum(v) FROM big") == [(100000, 100000)]
    assert p.stop() == 0
    assert "spilled" in p.read_stderr()
    source_db.execute("ALTER SYSTEM RESET logical_decoding_work_mem")
    source_db.execute("SELECT pg_reload_conf()")


def test_pgbench_during_migrate(pgtide, source_db, target_db):
    server = source_db.server
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": "postgres"}
    bindir = server.bindir
    subprocess.run([f"{bindir}/pgbench", "-i", "-s", "2", "-q", source_db.name],
                   env=env, check=True, capture_output=True)
    # pgbench_history has no key: give it one so it can be replicated
    source_db.execute("ALTER TABLE pgbench_history ADD COLUMN id serial PRIMARY KEY")
    bench = subprocess.Popen([f"{bindir}/pgbench", "-n", "-c", "4", "-j", "2",
                              "-T", "8", source_db.name],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    p = start_migrate(pgtide, source_db, target_db, "--jobs", "2")
    out, err = bench.communicate(timeout=120)
    assert bench.returncode == 0, err
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    assert p.stop() == 0


@pytest.mark.parametrize("policy", ["stop", "upsert"])
def test_identity_always_columns_follow(pgtide, source_db, target_db, policy):
    """GENERATED ALWAYS AS IDENTITY keys: the target refuses a plain INSERT
    of the source's value and any UPDATE that sets the column; the stream
    inserts with OVERRIDING SYSTEM VALUE and leaves the column out of SET."""
    source_db.execute("""
        CREATE TABLE tickets (id bigint GENERATED ALWAYS AS IDENTITY
                              PRIMARY KEY, v int NOT NULL);
        INSERT INTO tickets (v) SELECT g FROM generate_series(1, 10) g;
    """)
    p = start_migrate(pgtide, source_db, target_db, "--on-conflict", policy)
    source_db.execute("""
        INSERT INTO tickets (v) SELECT g FROM generate_series(11, 300) g;
        UPDATE tickets SET v = -v WHERE id % 3 = 0;
        DELETE FROM tickets WHERE id % 7 = 0;
    """)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, tables=["public.tickets"])
    assert p.stop() == 0


@pytest.mark.parametrize("policy", ["stop", "skip", "upsert"])
def test_conflict_policies(pgtide, source_db, target_db, policy):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t SELECT g, 'a' FROM generate_series(1, 10) g")
    port = _free_port()
    extra = [] if policy == "stop" else ["--on-conflict", policy, "--http",
                                         str(port), "--progress-interval", "1"]
    p = start_migrate(pgtide, source_db, target_db, *extra)
    wait_caught_up(source_db, target_db)
    # the target drifts: rows vanish, another appears
    target_db.execute("DELETE FROM t WHERE id IN (5, 7);"
                      " INSERT INTO t VALUES (11, 'target')")
    source_db.execute("UPDATE t SET v = 'b' WHERE id = 5")
    source_db.execute("INSERT INTO t VALUES (11, 'source')")
    source_db.execute("DELETE FROM t WHERE id = 7")
    source_db.execute("UPDATE t SET v = 'c' WHERE id = 1")
    if policy == "stop":
        assert p.wait(60) == 4
        err = p.read_stderr()
        assert 'conflict on table "public"."t": no row to update (row ("id")=(5))' in err
        assert "cdc.on_conflict" in err
        # nothing after the conflict was applied, and nothing is lost: the
        # slot still holds the change
        assert target_db.query_one("SELECT v FROM t WHERE id = 1") == "a"
        return
    wait_caught_up(source_db, target_db)
    rows = dict(target_db.query("SELECT id, v FROM t"))
    assert rows[1] == "c"
    if policy == "skip":
        assert 5 not in rows and rows[11] == "target"
    else:
        assert rows[5] == "b" and rows[11] == "source"
    # each kind is counted on its own: they call for different looks

    def counted():
        samples, _ = scrape(port)
        kinds = {k: metric(samples, "pgtide_cdc_conflicts_total", task="default",
                           kind=k)
                 for k in ("insert_exists", "update_missing", "delete_missing")}
        return kinds if sum(kinds.values()) == 3 else None
    assert wait_for(counted, 30, 0.5, "conflicts never counted") == {
        "insert_exists": 1, "update_missing": 1, "delete_missing": 1}
    assert p.stop() == 0
    assert "conflicts so far" in p.read_stderr()


def test_status_shows_lag_rates_slot_and_last_error(pgtide, source_db,
                                                     target_db):
    import json
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t SELECT g, 'a' FROM generate_series(1, 10) g")
    p = start_migrate(pgtide, source_db, target_db)
    source_db.execute("UPDATE t SET v = 'b'")
    wait_caught_up(source_db, target_db)

    def reported():
        r = pgtide.run("status", "--target", target_db.uri, "--source",
                       source_db.uri, "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        return s if s["cdc_txns"] else None
    s = wait_for(reported, 30, 0.5, "status never showed the change stream")
    assert s["phase"] == "cdc" and s["cdc_lag_bytes"] is not None
    assert s["slot"]["active"] is True and s["slot"]["retained_wal_bytes"] >= 0
    assert [t["state"] for t in s["tables"]] == ["done"]
    r = pgtide.run("status", "--target", target_db.uri)
    assert r.returncode == 0 and "phase cdc" in r.stdout and "cdc: lag" in r.stdout
    # a conflict stops the task; status says why
    target_db.execute("DELETE FROM t WHERE id = 1")
    source_db.execute("UPDATE t SET v = 'c' WHERE id = 1")
    assert p.wait(60) == 4
    r = pgtide.run("status", "--target", target_db.uri)
    assert "last error" in r.stdout and "conflict on table" in r.stdout
    r = pgtide.run("status", "--target", target_db.uri, "--task", "nope")
    assert r.returncode == 2 and 'no task "nope"' in r.stderr


def test_follow_from_a_slot_and_position_the_user_names(pgtide, source_db,
                                                        target_db):
    """No full load: the user brings the target's tables, a publication and a
    slot, and follow applies every change after the position given. The
    publication's name holds a quote and a comma: it reaches the replication
    command as one name, whatever it holds."""
    ddl = "CREATE TABLE t (id int PRIMARY KEY, v text)"
    source_db.execute(ddl + "; INSERT INTO t VALUES (1, 'before')")
    target_db.execute(ddl + "; INSERT INTO t VALUES (1, 'before')")
    source_db.execute('CREATE PUBLICATION "my\'pub, x" FOR TABLE t')
    start = source_db.query_one(
        "SELECT lsn::text FROM pg_create_logical_replication_slot("
        "'myslot', 'pgoutput')")
    source_db.execute("INSERT INTO t VALUES (2, 'after'); UPDATE t SET v = 'x'"
                      " WHERE id = 1")
    p = pgtide.start("follow", "--source", source_db.uri, "--target",
                     target_db.uri, "--task", "byhand", "--slot", "myslot",
                     "--publication", "my'pub, x", "--start-lsn", start)
    p.wait_for_output("streaming from slot \"myslot\"")
    wait_caught_up(source_db, target_db, slot="myslot", origin="pgtide_byhand")
    assert sorted(target_db.query("SELECT id, v FROM t")) == [(1, "x"), (2, "after")]
    assert p.stop() == 0
    r = pgtide.run("follow", "--source", source_db.uri, "--target",
                   target_db.uri, "--task", "nothing")
    assert r.returncode == 2 and "has no full load to follow" in r.stderr


def test_clean_leaves_nothing_behind_and_is_safe_twice(pgtide, source_db,
                                                       target_db):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    p = start_migrate(pgtide, source_db, target_db)
    args = ["clean", "--source", source_db.uri, "--target", target_db.uri]
    r = pgtide.run(*args)
    assert r.returncode == 8 and "is running" in r.stderr and "--force" in r.stderr
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 1
    r = pgtide.run(*args, "--force")
    assert r.returncode == 0, r.stderr
    p.wait(30)
    for _ in range(2):  # and a second time finds nothing to do
        assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 0
        assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
        # origins are the cluster's: this database's only
        assert target_db.query_one(
            "SELECT count(*) FROM pg_replication_origin WHERE roname = %s",
            (origin_name(target_db),)) == 0
        assert target_db.query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0
        r = pgtide.run(*args)
        assert r.returncode == 0, r.stderr
    # the user's data stays
    assert target_db.query_one("SELECT to_regclass('public.t') IS NOT NULL")


def test_stop_while_the_applier_waits_on_a_lock(pgtide, source_db, target_db):
    """A stop that finds the applier waiting on a lock the application holds
    on the target cancels the statement and exits while the lock is still
    held (a service manager's stop timeout would otherwise kill it); the
    next run applies the change again: nothing is lost."""
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t VALUES (1, 'a')")
    p = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    locker = target_db.connect()
    locker.execute("BEGIN")
    locker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    source_db.execute("UPDATE t SET v = 'b'")
    wait_for(lambda: target_db.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()") > 0, 30, 0.2,
        "the applier never waited on the lock")
    assert p.stop(timeout=60) == 0, p.read_stderr()
    assert "cancelled; the next run applies its batch again" in p.read_stderr()
    locker.execute("ROLLBACK")
    assert target_db.query_one("SELECT v FROM t") == "a"
    p = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    assert target_db.query_one("SELECT v FROM t") == "b"
    assert p.stop() == 0


def test_tasks_of_one_name_into_two_databases_of_one_cluster(
        pgtide, make_server, target_db):
    """Two migrations under the default task name, from two source servers
    into two databases of one target cluster, where replication origins
    live: each has its own origin (named after its database's oid), both
    stream at once, and each target holds exactly its source's rows. Before,
    the two shared one origin: the second could not set it up while the
    first ran, and once the first had stopped it started at the first's
    position, skipping every change of its own before it."""
    sources = [ServerDb(make_server(f"src{i}")) for i in (1, 2)]
    other = Database(target_db.server, target_db.name + "_b")
    target_db.server.create_database(other.name)
    try:
        # the first source's positions run far ahead of the second's
        sources[0].execute("CREATE TABLE pad (v text)")
        for _ in range(3):
            sources[0].execute("INSERT INTO pad VALUES ('x');"
                               " SELECT pg_switch_wal()")
        runs = []
        for source, target in zip(sources, (other, target_db)):
            source.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                           " INSERT INTO t SELECT g, 'a' FROM"
                           " generate_series(1, 100) g")
            runs.append(start_migrate(pgtide, source, target))
        for i, source in enumerate(sources):
            source.execute(f"INSERT INTO t SELECT g, 's{i}' FROM"
                           " generate_series(101, 150) g;"
                           " UPDATE t SET v = 'u' WHERE id % 10 = 0")
        for source, target in zip(sources, (other, target_db)):
            wait_caught_up(source, target)
            assert target.query("SELECT * FROM t ORDER BY id") == \
                source.query("SELECT * FROM t ORDER BY id")
        assert runs[0].stop() == 0
        # the first task's database dropped without pgtide clean: its
        # origin, far ahead, is not the second task's
        other.drop()
        sources[1].execute("INSERT INTO t VALUES (151, 'after')")
        wait_caught_up(sources[1], target_db)
        assert target_db.query("SELECT * FROM t ORDER BY id") == \
            sources[1].query("SELECT * FROM t ORDER BY id")
        assert runs[1].stop() == 0
    finally:
        if other.name in target_db.server.databases():
            other.drop()


def test_an_origin_left_by_an_earlier_task_of_the_name_is_dropped(
        pgtide, source_db, target_db):
    """An origin of the task's name already on the target (its state
    dropped by hand, without pgtide clean) holds another stream's position:
    the task that creates its slot drops it and says so, and its stream
    starts at the new slot's point. Before, it started at the old position
    and skipped every change before it."""
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY);"
                      " INSERT INTO t SELECT generate_series(1, 10)")
    name = origin_name(target_db)
    target_db.execute(f"SELECT pg_replication_origin_create('{name}');"
                      f" SELECT pg_replication_origin_advance('{name}', 'FF/0')")
    p = start_migrate(pgtide, source_db, target_db)
    source_db.execute("INSERT INTO t SELECT generate_series(11, 20)")
    wait_caught_up(source_db, target_db)
    assert target_db.query_one("SELECT count(*) FROM t") == 20
    err = p.read_stderr()
    assert f'dropped replication origin "{name}" on the target, left at FF/0' \
        in err, err
    assert p.stop() == 0
