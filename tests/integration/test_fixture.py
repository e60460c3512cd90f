"""Tests of the integration-test foundation itself (conftest.py, sql/awkward.sql).

They need PostgreSQL server binaries but not pgtide (PGTIDE_BIN)."""

import os
import shutil
import signal
import time

import psycopg
import pytest

from conftest import (AWKWARD_SQL, PW_PASSWORD, PW_USER, PgTide, WaitTimeout,
                      assert_same_content, load_sql_file, table_rows, user_tables,
                      wait_for)

# The harness is the same under every build of pgtide; the sanitizers' run
# (make check) has nothing of pgtide's to look at here.
pytestmark = pytest.mark.skipif(bool(os.environ.get("PGTIDE_SANITIZED")),
                                reason="tests the harness, not pgtide")


def test_both_servers_start(pg_source_server, pg_target_server):
    assert pg_source_server.port != pg_target_server.port
    for s in (pg_source_server, pg_target_server):
        assert s.query("postgres", "SELECT 1") == [(1,)]
        assert s.version_num() >= 150000
        assert s.query_one("postgres", "SHOW wal_level") == "logical"
        assert s.query_one("postgres", "SHOW fsync") == "off"
        assert s.query_one("postgres", "SHOW max_replication_slots") == "16"
        assert s.query_one("postgres", "SELECT current_user") == "postgres"
        assert s.query_one("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                           (PW_USER,)) is True
        assert s.uri("x") == f"postgresql://postgres@127.0.0.1:{s.port}/x"


def test_databases_are_fresh_and_distinct(source_db, target_db):
    assert source_db.name != target_db.name
    assert source_db.query_one("SELECT current_database()") == source_db.name
    assert target_db.query_one("SELECT current_database()") == target_db.name
    assert user_tables(source_db) == [] and user_tables(target_db) == []
    # the URI works for a plain libpq client
    with psycopg.connect(source_db.uri) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == source_db.name


def test_logical_slot_on_source_db(source_db):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    source_db.execute("SELECT pg_create_logical_replication_slot('fixture_slot', 'test_decoding')")
    source_db.execute("INSERT INTO t VALUES (1, 'a')")
    changes = source_db.query(
        "SELECT data FROM pg_logical_slot_get_changes('fixture_slot', NULL, NULL)")
    assert any("INSERT" in d and "'a'" in d for (d,) in changes), changes
    source_db.execute("SELECT pg_drop_replication_slot('fixture_slot')")
    assert source_db.query("SELECT 1 FROM pg_replication_slots "
                           "WHERE slot_name = 'fixture_slot'") == []


def test_drop_database_removes_slots_and_sessions(pg_source_server):
    s = pg_source_server
    s.create_database("fixture_dropme")
    # a leftover slot and an open session would both block DROP DATABASE
    s.execute("fixture_dropme",
              "SELECT pg_create_logical_replication_slot('fixture_leftover', 'pgoutput')")
    conn = s.connect("fixture_dropme")
    try:
        s.drop_database("fixture_dropme")
    finally:
        conn.close()
    assert "fixture_dropme" not in s.databases()
    assert s.query("postgres", "SELECT 1 FROM pg_replication_slots "
                               "WHERE slot_name = 'fixture_leftover'") == []


def test_awkward_sql_loads_and_compares_equal(source_db, target_db):
    load_sql_file(source_db, AWKWARD_SQL)
    load_sql_file(target_db, AWKWARD_SQL)
    tables = user_tables(source_db)
    for t in ('"My Schema"."Order Items"', "public.all_types", "public.big_values",
              "public.measurements_default", "public.orders_2024_h1", "public.events_p3",
              "public.empty_table", "public.wide_table", "public.no_pk_log"):
        assert t in tables
    # partitioned parents are not listed, only their leaves
    assert "public.measurements" not in tables and "public.orders_2023" not in tables
    assert source_db.query_one("SELECT count(*) FROM public.wide_table") == 100
    assert len(source_db.query("SELECT * FROM public.wide_table LIMIT 0")) == 0
    assert source_db.query_one(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.wide_table'::regclass "
        "AND attnum > 0") == 200
    assert source_db.query_one(
        "SELECT sum(length(b)) FROM public.big_values WHERE id <= 5") == 5 * 3 * 1024 * 1024
    assert source_db.query_one("SELECT count(*) FROM public.measurements_default") > 0
    assert source_db.query_one("SELECT last_value FROM public.standalone_seq") == 12345
    # the same file loaded twice gives the same content (data are deterministic)
    assert_same_content(source_db, target_db)


def test_comparison_detects_a_one_value_difference(source_db, target_db):
    ddl = """CREATE SCHEMA "My Schema";
             CREATE TABLE "My Schema"."Order Items" (id int, "Unit Price" numeric, note text);
             CREATE TABLE public.other (id int PRIMARY KEY, b bytea)"""
    rows = """INSERT INTO "My Schema"."Order Items"
                SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 1000) g;
              INSERT INTO "My Schema"."Order Items" VALUES (0, NULL, ''), (0, NULL, NULL);
              INSERT INTO public.other SELECT g, decode(md5(g::text), 'hex')
                FROM generate_series(1, 100) g"""
    for db in (source_db, target_db):
        db.execute(ddl)
        db.execute(rows)
    assert_same_content(source_db, target_db)

    # NULL and empty string stay distinct
    r = table_rows(source_db, '"My Schema"."Order Items"')
    assert ("0", None, None) in r and ("0", None, "") in r
    assert len(r) == 1002

    # one numeric value
    target_db.execute("""UPDATE "My Schema"."Order Items" SET "Unit Price" = 502.6
                         WHERE id = 335""")
    with pytest.raises(AssertionError) as e:
        assert_same_content(source_db, target_db)
    msg = str(e.value)
    assert '"My Schema"."Order Items"' in msg and "'502.5'" in msg and "'502.6'" in msg
    assert "1 row(s) only in source" in msg and "1 row(s) only in target" in msg
    assert "public.other" not in msg
    # numeric compares by its text: 502.50 is not 502.5
    target_db.execute("""UPDATE "My Schema"."Order Items" SET "Unit Price" = 502.50
                         WHERE id = 335""")
    with pytest.raises(AssertionError, match="502.50"):
        assert_same_content(source_db, target_db)
    target_db.execute("""UPDATE "My Schema"."Order Items" SET "Unit Price" = 502.5
                         WHERE id = 335""")
    assert_same_content(source_db, target_db)

    # '' versus NULL
    target_db.execute("""UPDATE "My Schema"."Order Items" SET note = NULL
                         WHERE id = 0 AND note = ''""")
    with pytest.raises(AssertionError, match="rows differ"):
        assert_same_content(source_db, target_db)
    target_db.execute("""UPDATE "My Schema"."Order Items" SET note = ''
                         WHERE id = 0 AND note IS NULL AND ctid = (SELECT min(ctid)
                         FROM "My Schema"."Order Items" WHERE id = 0)""")
    assert_same_content(source_db, target_db)

    # one byte of a bytea
    target_db.execute("UPDATE public.other SET b = set_byte(b, 15, get_byte(b, 15) # 1) "
                      "WHERE id = 42")
    with pytest.raises(AssertionError, match="public.other"):
        assert_same_content(source_db, target_db)
    with pytest.raises(AssertionError, match="public.other"):
        assert_same_content(source_db, target_db, tables=["public.other"])
    assert_same_content(source_db, target_db, tables=['"My Schema"."Order Items"'])

    # a duplicate row, and a missing table
    target_db.execute("UPDATE public.other SET b = set_byte(b, 15, get_byte(b, 15) # 1) "
                      "WHERE id = 42")
    target_db.execute("""INSERT INTO "My Schema"."Order Items" VALUES (1, 1.5, 'n1')""")
    with pytest.raises(AssertionError, match="1001 rows|1003 rows"):
        assert_same_content(source_db, target_db)
    target_db.execute("""DELETE FROM "My Schema"."Order Items" WHERE ctid =
                         (SELECT max(ctid) FROM "My Schema"."Order Items" WHERE id = 1)""")
    assert_same_content(source_db, target_db)
    target_db.execute("DROP TABLE public.other")
    with pytest.raises(AssertionError, match="missing on target: public.other"):
        assert_same_content(source_db, target_db)


def test_awkward_one_value_difference_is_detected(source_db, target_db):
    """On the real awkward data: a change in one big bytea and in one float."""
    load_sql_file(source_db, AWKWARD_SQL)
    load_sql_file(target_db, AWKWARD_SQL)
    target_db.execute("UPDATE public.all_types SET c_double = 'NaN' WHERE id = 8")
    with pytest.raises(AssertionError, match="public.all_types"):
        assert_same_content(source_db, target_db, tables=["public.all_types"])
    target_db.execute("UPDATE public.all_types SET c_double = 0.1 WHERE id = 8")
    target_db.execute("UPDATE public.big_values "
                      "SET b = set_byte(b, 2000000, get_byte(b, 2000000) # 255) WHERE id = 3")
    with pytest.raises(AssertionError, match="public.big_values"):
        assert_same_content(source_db, target_db,
                            tables=["public.all_types", "public.big_values"])


def test_pw_user_needs_its_password(pg_source_server, source_db):
    s = pg_source_server
    with s.connect(source_db.name, user=PW_USER, password=PW_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == PW_USER
    with psycopg.connect(source_db.uri_as(PW_USER, PW_PASSWORD)) as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        s.connect(source_db.name, user=PW_USER, password="wrong")
    with pytest.raises(psycopg.OperationalError):
        s.connect(source_db.name, user=PW_USER, password="")
    # replication connections need it too
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        s.connect(source_db.name, user=PW_USER, password="wrong", replication="database")
    with s.connect(source_db.name, user=PW_USER, password=PW_PASSWORD,
                   replication="database") as conn:
        assert conn.execute("IDENTIFY_SYSTEM").fetchone() is not None


def test_make_server_settings_restart_reload(make_server):
    s = make_server("replica", wal_level="replica")
    assert s.query_one("postgres", "SHOW wal_level") == "replica"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        s.execute("postgres", "SELECT pg_create_logical_replication_slot('x', 'pgoutput')")
    s.set_conf(wal_level="logical", work_mem="7MB")
    s.restart()
    assert s.query_one("postgres", "SHOW wal_level") == "logical"
    assert s.query_one("postgres", "SHOW work_mem") == "7MB"
    conn = s.connect()   # an open session sees a reload too
    s.set_conf(work_mem="9MB")
    s.reload()
    assert s.query_one("postgres", "SHOW work_mem") == "9MB"
    wait_for(lambda: conn.execute("SHOW work_mem").fetchone()[0] == "9MB", 5, 0.05,
             "existing session did not see the reload")
    conn.close()
    s.set_conf(work_mem=None)
    s.reload()
    assert s.query_one("postgres", "SHOW work_mem") == "4MB"
    s.stop()
    assert not s.running
    with pytest.raises(psycopg.OperationalError):
        s.connect()
    s.start()
    assert s.query_one("postgres", "SELECT 1") == 1
    assert "LOG" in s.log_tail()
    d = s.dir
    s.destroy()
    assert not os.path.exists(d)


def test_wait_for():
    t0 = time.monotonic()
    calls = []
    assert wait_for(lambda: calls.append(1) or (len(calls) >= 3 and "ok"), 5, 0.01) == "ok"
    with pytest.raises(WaitTimeout, match="never true"):
        wait_for(lambda: False, 0.2, 0.05, "never true")

    def boom():
        raise ConnectionError("down")
    with pytest.raises(WaitTimeout, match="down"):
        wait_for(boom, 0.2, 0.05, "still down", ignore=(ConnectionError,))
    with pytest.raises(ConnectionError):
        wait_for(boom, 0.2, 0.05)
    assert time.monotonic() - t0 < 5


def test_pgtide_runner_with_a_stand_in_binary(tmp_path):
    """The PgTide runner, exercised with /bin/sh standing in for pgtide."""
    sh = shutil.which("sh")
    t = PgTide(sh, tmp_path / "w")
    r = t.run("-c", "echo out; echo err >&2; echo ${PGHOST:-nohost}; exit 3",
              env={"PGHOST": None})
    assert r.returncode == 3 and "out" in r.stdout and "nohost" in r.stdout
    assert r.stderr == "err\n"
    p = t.start("-c", "echo started >&2; trap 'echo bye; exit 5' INT; "
                      "while :; do sleep 0.05; done")
    p.wait_for_output("started", timeout=10)
    assert p.stop(signal.SIGINT, timeout=10) == 5
    assert "bye" in p.read_stdout()
    report = t.report()
    assert "[exit 3" in report and "started" in report
    t.cleanup()


@pytest.mark.skipif(not os.environ.get("PGTIDE_BIN"), reason="PGTIDE_BIN not set")
def test_pgtide_binary_runs(pgtide):
    r = pgtide.run("--version", timeout=30)
    assert r.returncode == 0, r.stderr
