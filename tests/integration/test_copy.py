"""pgtide copy: a full load of awkward data is identical on both sides, with
indexes, constraints and sequences; a load under concurrent writes holds
exactly its snapshot; no-key tables stay writable on the source."""
import subprocess
import time

from conftest import assert_same_content
from helpers import (hostile_settings, make_load_dataset, schema_objects,
                     sequences)


def copy_args(source_db, target_db, *extra):
    return ["copy", "--source", source_db.uri, "--target", target_db.uri, *extra]


def test_help_and_version(pgtide):
    r = pgtide.run("--version")
    assert r.returncode == 0 and r.stdout.startswith("pgtide ")
    r = pgtide.run("copy", "--help")
    assert r.returncode == 0
    assert "--split-tables-larger-than" in r.stdout
    r = pgtide.run("nosuchcommand")
    assert r.returncode == 2
    assert 'unknown command "nosuchcommand"' in r.stderr


def test_awkward_source_is_copied_exactly(pgtide, source_db, target_db,
                                          awkward_sql):
    source_db.load_sql_file(awkward_sql)
    # a small split size so that several tables are copied in chunks
    r = pgtide.run(*copy_args(source_db, target_db, "--jobs", "3",
                              "--split-tables-larger-than", "64kB"))
    assert r.returncode == 0, r.stderr
    assert "loaded" in r.stdout

    assert_same_content(source_db, target_db)
    assert schema_objects(source_db) == schema_objects(target_db)
    src_seq, tgt_seq = sequences(source_db), sequences(target_db)
    assert src_seq.keys() == tgt_seq.keys()
    for name, (value, called) in src_seq.items():
        assert tgt_seq[name][0] >= value, name

    # copy keeps no slot and publishes nothing: the task records its load's
    # consistent point and that it can never be streamed (test_slots.py)
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    assert target_db.query_one(
        "SELECT consistent_lsn IS NOT NULL AND copy_only FROM pgtide.task"
        " WHERE task = 'default'") is True
    # some table really was split, and every table is done
    chunks = dict(target_db.query(
        "SELECT src_name, chunks FROM pgtide.tables WHERE state = 'done'"))
    assert max(chunks.values()) > 1
    assert target_db.query_one(
        "SELECT count(*) FROM pgtide.tables WHERE state <> 'done'") == 0

    # running again is a no-op
    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_text_format_and_table_selection(pgtide, source_db, target_db):
    make_load_dataset(source_db, big_rows=2000)
    r = pgtide.run(*copy_args(source_db, target_db, "--format", "text",
                              "-t", "public.small_*", "-T", "public.small_5"))
    assert r.returncode == 0, r.stderr
    tables = {t for (t,) in target_db.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {f"small_{i}" for i in range(5)}
    assert_same_content(source_db, target_db,
                        tables=[f"public.small_{i}" for i in range(5)])
    assert {f for (f,) in target_db.query(
        "SELECT DISTINCT format FROM pgtide.tables")} == {"text"}


def test_no_key_table_stays_writable_on_source(pgtide, source_db, target_db):
    """A table without a key must not be published for UPDATE/DELETE: the
    application's writes on it would start failing. It is published for
    INSERT and TRUNCATE, in a publication of its own."""
    source_db.execute("""
        CREATE TABLE nokey (a int, b text);
        INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, 'y');
        CREATE TABLE keyed (id int PRIMARY KEY);
    """)
    # migrate's load: copy keeps no slot, so it publishes nothing
    from cdc_helpers import start_migrate
    p = start_migrate(pgtide, source_db, target_db)
    assert p.stop() == 0, p.read_stderr()
    assert "nokey" in p.read_stderr() and "has no key" in p.read_stderr()
    source_db.execute("UPDATE nokey SET b = 'z' WHERE a = 1")
    source_db.execute("DELETE FROM nokey WHERE a = 2")
    published = {t for (t,) in source_db.query(
        "SELECT tablename FROM pg_publication_tables"
        " WHERE pubname = 'pgtide_default'")}
    assert published == {"keyed"}
    assert source_db.query(
        "SELECT tablename FROM pg_publication_tables"
        " WHERE pubname = 'pgtide_default_inserts'") == [("nokey",)]
    assert sorted(target_db.query("SELECT a, b FROM nokey")) == [
        (1, "x"), (1, "x"), (2, "y")]


def test_load_under_writes_holds_exactly_the_snapshot(pgtide, source_db,
                                                       target_db):
    server = source_db.server
    bindir = server.bindir
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(server.port),
           "PGUSER": "postgres"}
    subprocess.run([f"{bindir}/pgbench", "-i", "-s", "2", "-q", source_db.name],
                   env=env, check=True, capture_output=True)
    # each history row carries the transaction that wrote it
    source_db.execute("ALTER TABLE pgbench_history ADD COLUMN xid bigint"
                      " DEFAULT txid_current()")
    bench = subprocess.Popen(
        [f"{bindir}/pgbench", "-c", "2", "-T", "12", "-n", source_db.name],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # let writes start, then load while they go on
        time.sleep(2)
        r = pgtide.run(*copy_args(source_db, target_db, "--jobs", "2",
                                  "--split-tables-larger-than", "1MB"))
        assert r.returncode == 0, r.stderr
    finally:
        out, err = bench.communicate(timeout=60)
    assert bench.returncode == 0, err

    snaps = {s for (s,) in target_db.query(
        "SELECT DISTINCT snapshot_txids FROM pgtide.tables")}
    assert len(snaps) == 1, "every table must be loaded from one snapshot"
    snap = snaps.pop()
    expected = source_db.query(
        "SELECT tid, bid, aid, delta, mtime, xid FROM pgbench_history"
        " WHERE txid_visible_in_snapshot(xid, %s::txid_snapshot)"
        " ORDER BY xid, aid", (snap,))
    got = target_db.query(
        "SELECT tid, bid, aid, delta, mtime, xid FROM pgbench_history"
        " ORDER BY xid, aid")
    assert got == expected
    total = source_db.query_one("SELECT count(*) FROM pgbench_history")
    assert 0 < len(got) < total, "writes must have run before and after"
    # balances are exactly the sum of the snapshot's history rows
    for table, key in (("pgbench_accounts", "aid"), ("pgbench_tellers", "tid"),
                       ("pgbench_branches", "bid")):
        bal = {"pgbench_accounts": "abalance", "pgbench_tellers": "tbalance",
               "pgbench_branches": "bbalance"}[table]
        wrong = target_db.query_one(
            f"SELECT count(*) FROM {table} t LEFT JOIN"
            f" (SELECT {key}, sum(delta) s FROM pgbench_history GROUP BY {key}) h"
            f" USING ({key}) WHERE t.{bal} <> coalesce(h.s, 0)")
        assert wrong == 0, table


def test_exported_snapshot_is_guarded_while_the_load_runs(pgtide, source_db,
                                                          target_db):
    """The server does not count the slot's exported snapshot in its xmin
    horizon for a moment while CREATE_REPLICATION_SLOT ends: an update
    committed just after the consistent point could have its row's older
    version pruned, and the load would miss that row. A guard session opened
    before the slot holds the horizon at or below the snapshot's xmin for as
    long as the snapshot lives."""
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, v text);
        INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 300000) g;
    """)
    p = pgtide.start(*copy_args(source_db, target_db, "--jobs", "1"))
    seen = None
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline and seen is None:
        rows = source_db.query(
            "SELECT application_name, backend_xmin::text::bigint"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name IN ('pgtide snapshot guard', 'pgtide copy')"
            " AND backend_xmin IS NOT NULL")
        guard = [x for name, x in rows if name == "pgtide snapshot guard"]
        copy = [x for name, x in rows if name == "pgtide copy"]
        if guard and copy:
            seen = (guard[0], min(copy))
        time.sleep(0.01)
    assert p.wait(120) == 0, p.read_stderr()
    assert seen is not None, "no guard seen beside the copy worker"
    assert seen[0] <= seen[1], seen
    # the guard ends with the snapshot (its backend exits a moment later)
    deadline = time.time() + 10
    while source_db.query_one(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'pgtide snapshot guard'") > 0:
        assert time.time() < deadline, "the guard outlived the load"
        time.sleep(0.05)


def test_partitions_with_oids_above_two_to_the_31(pgtide, make_server,
                                                   target_db):
    """Oids are unsigned: a long-lived cluster hands out oids past 2^31, and
    each partition must still be found under its parent (here 2^31 - 1,
    where a signed int overflows)."""
    from conftest import Database
    src = make_server("bigoid", start=False, wal_level="logical")
    src._run("pg_resetwal", "-o", "2147483645", src.datadir)
    src.start()
    db = Database(src, src.create_database("app"))
    db.execute("""
        CREATE TABLE ev (id int, at date, PRIMARY KEY (id, at))
          PARTITION BY RANGE (at);
        CREATE TABLE ev_2024 PARTITION OF ev
          FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE ev_2025 PARTITION OF ev
          FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE other (id int PRIMARY KEY);
        INSERT INTO ev SELECT g, date '2024-06-01' + g % 400
          FROM generate_series(1, 1000) g;
        INSERT INTO other VALUES (1);
    """)
    assert db.query_one("SELECT oid::int8 FROM pg_class"
                        " WHERE relname = 'ev'") == 2 ** 31 - 1
    r = pgtide.run(*copy_args(db, target_db, "--table", "public.ev"))
    assert r.returncode == 0, r.stderr
    assert target_db.query_one("SELECT count(*) FROM ev") == 1000
    assert target_db.query_one("SELECT count(*) FROM ev_2025") > 0
    assert target_db.query_one("SELECT to_regclass('public.other')") is None


def test_timeouts_set_for_applications_do_not_cut_the_load(pgtide, source_db,
                                                           target_db):
    """Managed servers often set statement and idle timeouts per role or
    database: a chunk's COPY outlasts the first, the exported snapshot's
    session idles in its transaction for the whole load, the load's own
    sessions idle while workers copy. None of them may cut pgtide off."""
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, v text);
        INSERT INTO t SELECT g, repeat(md5(g::text), 4)
          FROM generate_series(1, 400000) g;
    """)
    timeouts = ("statement_timeout", "idle_in_transaction_session_timeout",
                "idle_session_timeout")
    for db in (source_db, target_db):
        for name in timeouts:
            db.execute(f'ALTER DATABASE "{db.name}" SET {name} = \'200ms\'')
    try:
        r = pgtide.run(*copy_args(source_db, target_db, "--jobs", "1"))
    finally:
        for db in (source_db, target_db):
            db.execute(f'ALTER DATABASE "{db.name}" RESET ALL')
    assert r.returncode == 0, r.stderr
    assert "lost" not in r.stderr and "retrying" not in r.stderr, r.stderr
    assert target_db.query_one(
        "SELECT loads FROM pgtide.tables WHERE src_name = 't'") == 1
    assert_same_content(source_db, target_db)


def test_database_settings_never_change_a_value(pgtide, source_db,
                                                target_db):
    """Each database, and the role in it, sets the styles an application
    likes (helpers.HOSTILE): day before month, floats to 15 digits
    (PostgreSQL 11's default too), escaped bytea, far time zones, another
    search path and client encoding. Values copied as text (--format text,
    the form an enum column forces) and streamed must arrive unchanged:
    every session pgtide opens pins the settings that shape a value's text.
    Before, the load died on float8's largest value, and other doubles lost
    digits quietly. sql/values.sql's test does the same for every type."""
    source_db.execute("""
        CREATE TYPE mood AS ENUM ('sad', 'ok');
        CREATE TABLE v (id int PRIMARY KEY, m mood, f float8, r real,
                        d date, ts timestamp, tz timestamptz, i interval,
                        b bytea, t time);
        INSERT INTO v VALUES
          (1, 'ok', 1.7976931348623157e308, 3.4028235e38, '2024-03-04',
           '2024-03-04 05:06:07.123456', '2024-03-04 05:06:07.123456+05:30',
           '1 year 2 mons -3 days 04:05:06.789', '\\x00ff5c27', '23:59:59.999999'),
          (2, 'sad', 33.6666666666666643, 0.1, '0044-03-15 BC',
           '1999-12-31 23:59:59', 'infinity', '-178000000 years', '', '00:00'),
          (3, 'ok', 5e-324, -0.0, '2024-12-31', '-infinity', '2000-01-01 00:00+14',
           '1.5 seconds', 'abc', '12:00'),
          (4, 'ok', 'NaN', '-Infinity', 'infinity', '294276-12-31 23:59:59',
           '1970-01-01 00:00:00.000001+00', '0', '\\x', '24:00');
    """)
    with hostile_settings(source_db, target_db):
        # migrate's load, then its stream (copy keeps no slot to stream)
        from cdc_helpers import start_migrate, wait_caught_up
        p = start_migrate(pgtide, source_db, target_db, "--format", "text")
        assert_same_content(source_db, target_db)
        source_db.execute("""
            INSERT INTO v SELECT id + 10, m, f, r, d, ts, tz, i, b, t FROM v;
            UPDATE v SET f = f / 3, d = d + 1 WHERE id = 2;
        """)
        wait_caught_up(source_db, target_db)
        assert p.stop() == 0
        assert_same_content(source_db, target_db)


def test_password_never_on_pg_dumps_command_line(pgtide, source_db, target_db,
                                                 tmp_path):
    """pg_dump's command line is visible to every local user (ps); the
    source's password reaches pg_dump through its environment only, and
    appears in none of pgtide's output. A wrapper around the real pg_dump
    records what it was given."""
    import shutil
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    real = shutil.which("pg_dump", path="/usr/lib/postgresql/15/bin") or \
        shutil.which("pg_dump")
    seen = tmp_path / "seen"
    wrapper = tmp_path / "pg_dump"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{seen}"\n'
        f'echo "env:$PGPASSWORD" >> "{seen}"\n'
        f'exec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    secret = "s3cr3t-in-the-uri"
    uri = source_db.uri_as("postgres", password=secret)
    r = pgtide.run("copy", "--source", uri, "--target", target_db.uri,
                   "--pg-dump", str(wrapper))
    assert r.returncode == 0, r.stderr
    lines = seen.read_text().splitlines()
    args = [l for l in lines if not l.startswith("env:")]
    envs = [l for l in lines if l.startswith("env:")]
    assert args and all(secret not in a for a in args), args
    assert envs and all(e == f"env:{secret}" for e in envs[1:]), envs
    assert secret not in r.stdout and secret not in r.stderr


def test_post_data_builds_show_progress(pgtide, source_db, target_db):
    """Index and foreign-key builds log a progress line with what is built,
    the rate, the ETA and the steps running, every progress interval: a
    large table's index build takes minutes to hours."""
    source_db.execute("""
        CREATE TABLE parent (id int PRIMARY KEY);
        CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent,
                            a int, b text);
        CREATE INDEX child_a ON child (a);
        CREATE INDEX child_b ON child (b);
        INSERT INTO parent SELECT g FROM generate_series(1, 100) g;
        INSERT INTO child SELECT g, g % 100 + 1, g, g::text
          FROM generate_series(1, 1000) g""")
    # every step holds its transaction a while, as a long build would
    slow = ",".join(f"postdata.step.before_commit@{n}:sleep=1500"
                    for n in range(1, 8))
    r = pgtide.run(*copy_args(source_db, target_db, "--index-jobs", "1",
                              "--progress-interval", "1"),
                   env={"PGTIDE_FAULT": slow})
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if "post-data " in l]
    assert any("foreign keys: 0 of 1 built" in l and "/s, ETA" in l and
               l.endswith("building FK CONSTRAINT public.child child_pid_fkey")
               for l in lines), r.stderr
    assert target_db.query_one(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'child_pid_fkey'") == 1
