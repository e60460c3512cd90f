"""Every table shape PostgreSQL allows loads, streams and validates
(sql/shapes.sql): tables without columns or with only generated or dropped
ones, 1,600 columns, only TOASTed columns without a key, typed tables,
inheritance with several parents, partitions with their own column order,
and names that break quoting. What cannot move is named by pgtide check."""
import json
import os
import signal
from pathlib import Path

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, user_tables

SHAPES_SQL = Path(__file__).parent / "sql" / "shapes.sql"

NAME63 = "n23456789012345678901234567890123456789012345678901234567890123"
COL63 = "c23456789012345678901234567890123456789012345678901234567890123"
UNICODE63 = "é" * 31 + "x"

# Each statement on its own, so that a failure names the shape.
WORKLOAD = [
    # no columns: inserts, one DELETE of several identical rows, TRUNCATE
    "INSERT INTO nocols DEFAULT VALUES",
    "INSERT INTO nocols SELECT FROM generate_series(1, 250)",
    "DELETE FROM nocols_full WHERE ctid = (SELECT min(ctid) FROM nocols_full)",
    "INSERT INTO nocols_full DEFAULT VALUES",
    "DELETE FROM nocols_full WHERE ctid = (SELECT max(ctid) FROM nocols_full)",
    "INSERT INTO gen_only DEFAULT VALUES",
    "DELETE FROM gen_only WHERE ctid = (SELECT min(ctid) FROM gen_only)",
    "UPDATE gen_only SET a = DEFAULT",
    "INSERT INTO all_dropped DEFAULT VALUES",
    "TRUNCATE gen_and_dropped",
    "INSERT INTO gen_and_dropped DEFAULT VALUES",
    # 1,600 columns
    "UPDATE widest SET c800 = -1, c1600 = -2 WHERE id = 1",
    "DELETE FROM widest WHERE id = 3",
    "INSERT INTO widest (id, c2, c1600) VALUES (4, 8, 6400)",
    # only TOASTed columns: the others stay as they are ('u' in the stream)
    "UPDATE toasted SET a = repeat('z', 300000) WHERE c->>'k' = '1'",
    "DELETE FROM toasted WHERE c->>'k' = '2'",
    "INSERT INTO toasted SELECT repeat('n', 100000), '\\x00ff', '{\"k\": 9}'",
    # typed table
    "INSERT INTO typed VALUES (3, 3.5, 'three')",
    "UPDATE typed SET label = 'uno' WHERE id = 1",
    "DELETE FROM typed WHERE id = 2",
    # inheritance: one statement on a parent reaches every level
    "UPDATE inh_a SET a = a || '!'",
    "UPDATE inh_b SET b = b + 1",
    "DELETE FROM ONLY inh_child WHERE id = 3",
    "UPDATE ONLY inh_a SET a = 'only the parent' WHERE id = 1",
    "DELETE FROM ONLY inh_b WHERE id = 2",
    "INSERT INTO inh_grandchild VALUES (5, 'g5', 50, 'e5', 500)",
    "UPDATE inh_grandchild SET deeper = 401 WHERE id = 4",
    # one TRUNCATE of two tables, the second with children that stay
    "TRUNCATE ONLY gen_only, ONLY inh_b",
    # partitions with their own column order; a row moving between them
    "INSERT INTO parted VALUES (100, 'us', 'new us'), (101, 'asia', 'new asia')",
    "UPDATE parted SET v = v || '+'",
    "UPDATE parted SET region = 'asia' WHERE id = 1",
    "DELETE FROM parted WHERE id IN (2, 3)",
    # names
    f"UPDATE {NAME63} SET {COL63} = 2",
    f"INSERT INTO {NAME63} VALUES (3)",
    f'UPDATE "{UNICODE63}" SET "é" = \'è\'',
    'INSERT INTO "order" VALUES (2, \'h\', 20)',
    'UPDATE "order" SET "limit" = 11 WHERE "user" = 1',
    'UPDATE "new\nline" SET "tab\there" = \'y\'',
    'INSERT INTO "new\nline" VALUES (2, \'z\')',
    'UPDATE "it\'s ""quoted""" SET "it\'s" = \'q2\'',
    'DELETE FROM "it\'s ""quoted"""',
    'INSERT INTO "100% %s %d %n" VALUES (2, \'%d\')',
    'UPDATE "100% %s %d %n" SET "%" = \'%n\' WHERE "%s" = 1',
    'UPDATE "日本語テーブル" SET "ß✓" = \'✓\'',
    'TRUNCATE "Mixed"',
    'INSERT INTO "Mixed" VALUES (5, \'upper again\')',
    "DELETE FROM mixed WHERE id = 2",
    'UPDATE "select"."from" SET "table" = \'changed\'',
    'DELETE FROM "select"."FROM"',
]


def assert_every_shape_same(source_db, target_db):
    __tracebackhide__ = True
    tables = user_tables(source_db)
    assert len(tables) == 26, tables
    assert_same_content(source_db, target_db)


def test_every_shape_loads_streams_and_validates(pgtide, source_db, target_db):
    source_db.load_sql_file(SHAPES_SQL)
    p = start_migrate(pgtide, source_db, target_db,
                      "--split-tables-larger-than", "64kB")
    assert_every_shape_same(source_db, target_db)
    # the table without columns was copied in several chunks (ctid ranges)
    assert target_db.query_one(
        "SELECT chunks FROM pgtide.tables WHERE src_name = 'nocols'") > 1
    for sql in WORKLOAD:
        source_db.execute(sql)
    wait_caught_up(source_db, target_db)
    assert_every_shape_same(source_db, target_db)
    assert source_db.query_one("SELECT count(*) FROM nocols") == 6254
    assert source_db.query_one("SELECT count(*) FROM nocols_full") == 3
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == 0, r.stdout + r.stderr
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
    # a table without columns differs by its row count alone
    target_db.execute("INSERT INTO nocols DEFAULT VALUES")
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri, "--tables", "public.nocols*")
    assert r.returncode == 7, r.stdout + r.stderr
    assert "6254 rows on the source, 6255 on the target" in r.stdout, r.stdout


CANNOT_MOVE = """
    CREATE EXTENSION file_fdw;
    CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
    CREATE FOREIGN TABLE remote (line text) SERVER files
      OPTIONS (filename '/nonexistent/remote.csv');
    CREATE TABLE ext_owned (id int PRIMARY KEY, v text);
    INSERT INTO ext_owned VALUES (1, 'belongs to file_fdw');
    ALTER EXTENSION file_fdw ADD TABLE ext_owned;
    CREATE TABLE kept (id int PRIMARY KEY);
    INSERT INTO kept VALUES (1);
"""


def test_check_names_what_cannot_move(pgtide, source_db, target_db):
    """A foreign table and a table that belongs to an extension are named,
    with the reason, and the migration of the other tables goes on."""
    source_db.execute(CANNOT_MOVE)
    r = pgtide.run("check", "--source", source_db.uri, "--target",
                   target_db.uri, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    found = {(f["id"], f["object"]): f for f in json.loads(r.stdout)["findings"]}
    remote = found[("foreign_table", "public.remote")]
    assert remote["severity"] == "warning"
    assert remote["message"] == "foreign table on server files"
    owned = found[("extension_table", "public.ext_owned")]
    assert owned["severity"] == "warning"
    assert owned["message"] == "table of extension file_fdw"
    assert "neither copies nor streams" in owned["why"]
    p = start_migrate(pgtide, source_db, target_db)
    source_db.execute("INSERT INTO kept VALUES (2)")
    source_db.execute("INSERT INTO ext_owned VALUES (2, 'stays')")
    wait_caught_up(source_db, target_db)
    assert target_db.query("SELECT id FROM kept ORDER BY id") == [(1,), (2,)]
    assert target_db.query_one(
        "SELECT count(*) FROM pg_class WHERE relname = 'ext_owned'") == 0
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()


# Megabytes of each huge value. The suite uses a few MB (seconds); set
# PGTIDE_HUGE_VALUE_MB=300 to move values of hundreds of MB (the field limit
# is 1 GB), a run of minutes and gigabytes of memory (docs/testing.md).
HUGE_MB = int(os.environ.get("PGTIDE_HUGE_VALUE_MB", "8"))


def huge_digest(db):
    return db.query("SELECT id, length(t), md5(t), length(b), md5(b)"
                    " FROM huge ORDER BY id")


def test_huge_values_load_and_stream(pgtide, source_db, target_db):
    """A text and a bytea value of HUGE_MB each, loaded and then streamed
    (insert, an update that leaves them untouched, an update of each)."""
    mb = 1024 * 1024
    source_db.execute(f"""
        CREATE TABLE huge (id int PRIMARY KEY, n int, t text, b bytea);
        ALTER TABLE huge ALTER COLUMN t SET STORAGE EXTERNAL,
                         ALTER COLUMN b SET STORAGE EXTERNAL;
        INSERT INTO huge SELECT 1, 0, repeat('t', {HUGE_MB * mb}),
                                convert_to(repeat('b', {HUGE_MB * mb}), 'UTF8');
    """)
    p = start_migrate(pgtide, source_db, target_db)
    assert huge_digest(target_db) == huge_digest(source_db)
    source_db.execute(f"""
        INSERT INTO huge SELECT 2, 0, repeat('u', {HUGE_MB * mb}),
                                convert_to(repeat('c', {HUGE_MB * mb}), 'UTF8');
    """)
    source_db.execute("UPDATE huge SET n = n + 1")
    source_db.execute("UPDATE huge SET t = t || 'x' WHERE id = 1")
    source_db.execute("UPDATE huge SET b = b || '\\x00'::bytea WHERE id = 2")
    wait_caught_up(source_db, target_db, timeout=600)
    assert huge_digest(target_db) == huge_digest(source_db)
    assert target_db.query("SELECT id, n FROM huge ORDER BY id") == [(1, 1), (2, 1)]
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()


def test_stream_into_a_target_partitioned_differently(pgtide, source_db,
                                                      target_db):
    """UPDATE and DELETE name their target ONLY (an inheritance child's row
    of the same key stays), except a partitioned target, whose rows are in
    its partitions: reached through the root, they are found."""
    source_db.execute("""
        CREATE TABLE m (k int, id int, v text, PRIMARY KEY (k, id))
          PARTITION BY LIST (k);
        CREATE TABLE m_a PARTITION OF m FOR VALUES IN (1, 2);
        CREATE TABLE m_b PARTITION OF m FOR VALUES IN (3, 4);
        CREATE TABLE m_full (k int, v text);
        ALTER TABLE m_full REPLICA IDENTITY FULL;
        INSERT INTO m SELECT g % 4 + 1, g, g::text FROM generate_series(1, 40) g;
        INSERT INTO m_full VALUES (1, 'a'), (1, 'a'), (2, 'b');
    """)
    target_db.execute("""
        CREATE TABLE m (k int, id int, v text, PRIMARY KEY (k, id))
          PARTITION BY HASH (k);
        CREATE TABLE m_h0 PARTITION OF m FOR VALUES WITH (modulus 2, remainder 0);
        CREATE TABLE m_h1 PARTITION OF m FOR VALUES WITH (modulus 2, remainder 1);
        CREATE TABLE m_full (k int, v text) PARTITION BY HASH (k);
        CREATE TABLE m_full_0 PARTITION OF m_full
          FOR VALUES WITH (modulus 1, remainder 0);
    """)
    p = start_migrate(pgtide, source_db, target_db, "--schema", "existing")
    source_db.execute("UPDATE m SET v = v || '!' WHERE id % 3 = 0")
    source_db.execute("DELETE FROM m WHERE id % 5 = 0")
    source_db.execute("DELETE FROM m_full WHERE ctid = "
                      "(SELECT min(ctid) FROM m_full WHERE k = 1)")
    source_db.execute("UPDATE m_full SET v = 'c' WHERE k = 2")
    wait_caught_up(source_db, target_db)
    for t in ("m", "m_full"):
        assert sorted(target_db.query(f"SELECT * FROM {t}")) == \
            sorted(source_db.query(f"SELECT * FROM {t}")), t
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
