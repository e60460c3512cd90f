"""Row filters (the task file's `filters`, decision 0029): the load copies
the rows the condition keeps; the stream keeps the target equal to the
source's filtered rows while rows move into and out of the filter (an
UPDATE into it becomes an INSERT, out of it a DELETE, a TOASTed value it did
not carry read from the source); kill -9 and a restart lose and double
nothing; validate and cutover compare the filtered rows. A condition that
does not parse, names a column the table lacks, calls a function that is not
immutable or holds a subquery is one error before anything moves."""
import json
import random
import signal

import psycopg

import pytest

from cdc_helpers import ServerDb, Workload, wait_caught_up
from conftest import version_bindir, wait_for
from helpers import hostile_settings

# timestamptz literals with their offset: the answer never depends on a
# session's TimeZone
CONDITION = ("created_at >= '2024-06-01 00:00:00+00' AND region <> 'test'")

SOURCE = """
    CREATE TABLE orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
                         region text NOT NULL, total numeric, note text);
    ALTER TABLE orders ALTER note SET STORAGE EXTERNAL;
    INSERT INTO orders SELECT g, '2024-01-01 00:00:00+00'::timestamptz
      + g * interval '2 hours', CASE WHEN g % 7 = 0 THEN 'test' ELSE 'eu' END,
      g * 1.25, 'n' || g FROM generate_series(1, 6000) g;
    CREATE TABLE plain (id int PRIMARY KEY, v text);
    INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 300) g;
"""

# a value stored out of line (STORAGE EXTERNAL, over 2 kB): an UPDATE that
# leaves it alone sends it as "unchanged TOASTed"
BIG = "'" + "big" * 3000 + "'"


def task_file(tmp_path, source_db, target_db, filters):
    lines = [f"source: '{source_db.uri}'", f"target: '{target_db.uri}'",
             "copy:", "  jobs: 2", "  split_tables_larger_than: 64kB",
             "filters:"]
    lines += [f"  {table}: {cond}" for table, cond in filters]
    path = tmp_path / "task.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def quoted(cond):
    return "'" + cond.replace("'", "''") + "'"


def rows(db, sql):
    """Each row's text, under settings of this test's own (the databases'
    are hostile)."""
    with psycopg.connect(db.uri, autocommit=True) as conn:
        conn.execute("SET DateStyle = ISO; SET TimeZone = UTC;"
                     " SET extra_float_digits = 3")
        return sorted(r[0] for r in conn.execute(sql).fetchall())


def expected(source_db):
    return rows(source_db, f"SELECT o::text FROM orders o WHERE {CONDITION}")


def actual(target_db):
    return rows(target_db, "SELECT o::text FROM orders o")


class Writes(Workload):
    """Inserts inside and outside the filter, updates moving rows in and
    out (by time, by region, by key), deletes inside and outside."""

    def __init__(self, db):
        super().__init__(db)
        self.rng = random.Random(12)
        self.next_id = 100000

    def step(self, conn):
        r, n = self.rng, self.next_id
        self.next_id += 1
        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES (%s, '2024-01-02 00:00+00'::timestamptz"
                         " + %s * interval '1 day', %s, 1, 'w')",
                         (n, r.randint(0, 300), r.choice(["eu", "test"])))
            conn.execute("UPDATE orders SET created_at = created_at + %s *"
                         " interval '30 days' WHERE id = %s",
                         (r.choice([-4, 4]), r.randint(1, 6000)))
        conn.execute("UPDATE orders SET region = %s, total = total + 1"
                     " WHERE id = %s", (r.choice(["eu", "test"]),
                                        r.randint(1, 6000)))
        conn.execute("UPDATE orders SET id = id + 1000000 WHERE id = %s",
                     (r.randint(1, 6000),))
        conn.execute("DELETE FROM orders WHERE id = %s", (r.randint(1, 6000),))
        conn.execute("UPDATE plain SET v = v || 'x' WHERE id = %s",
                     (r.randint(1, 300),))


def edges(source_db):
    """Each edge once, by name, each statement its own transaction: a row
    inserted outside then updated inside; a row with a TOASTed value moved
    into the filter by another column; a row moved out; a row outside
    deleted; a key changed while moving in."""
    script = f"""
        INSERT INTO orders VALUES (900001, '2024-01-01 00:00+00', 'eu', 1, 'a');
        UPDATE orders SET created_at = '2025-01-01 00:00+00' WHERE id = 900001;
        INSERT INTO orders VALUES (900002, '2024-01-01 00:00+00', 'eu', 2, {BIG});
        UPDATE orders SET created_at = '2025-02-01 00:00+00' WHERE id = 900002;
        UPDATE orders SET total = 7 WHERE id = 900002;
        INSERT INTO orders VALUES (900003, '2025-01-01 00:00+00', 'eu', 3, {BIG});
        UPDATE orders SET region = 'test' WHERE id = 900003;
        INSERT INTO orders VALUES (900004, '2024-01-01 00:00+00', 'eu', 4, 'd');
        DELETE FROM orders WHERE id = 900004;
        INSERT INTO orders VALUES (900005, '2024-01-01 00:00+00', 'eu', 5, {BIG});
        UPDATE orders SET id = 900006, created_at = '2025-03-01 00:00+00'
          WHERE id = 900005;
    """
    for statement in script.split(";"):
        if statement.strip():
            source_db.execute(statement)


def test_filtered_table_loads_and_streams_its_filtered_image(
        pgtide, source_db, target_db, tmp_path):
    with hostile_settings(source_db, target_db):
        source_db.execute(SOURCE)
        cfg = task_file(tmp_path, source_db, target_db,
                        [("public.orders", quoted(CONDITION))])
        with Writes(source_db) as w:
            p = pgtide.start("migrate", "--config", cfg,
                             "--progress-interval", "1")
            p.wait_for_output(r"streaming from slot", timeout=120)
            edges(source_db)
            start = w.count
            wait_for(lambda: w.count >= start + 30, 60, 0.2,
                     "the workload stalled")
            # killed mid-stream: the restart loses and doubles nothing
            p.send_signal(signal.SIGKILL)
            p.wait(30)
            start = w.count
            wait_for(lambda: w.count >= start + 10, 60, 0.2,
                     "the workload stalled")
            p = pgtide.start("migrate", "--config", cfg,
                             "--progress-interval", "1")
            p.wait_for_output(r"streaming from slot", timeout=120)
            start = w.count
            wait_for(lambda: w.count >= start + 30, 60, 0.2,
                     "the workload stalled")
        wait_caught_up(source_db, target_db)
        assert actual(target_db) == expected(source_db)
        assert rows(target_db, "SELECT p::text FROM plain p") == \
            rows(source_db, "SELECT p::text FROM plain p")
        # the edges, each where it belongs
        got = dict(target_db.query(
            "SELECT id, length(note) FROM orders"
            " WHERE id BETWEEN 900000 AND 999999"))
        assert got == {900001: 1, 900002: 9000, 900006: 9000}, got
        assert "conflict" not in p.read_stderr()
        r = pgtide.run("validate", "--config", cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        source_db.execute("CREATE ROLE app_flt LOGIN; GRANT SELECT, INSERT,"
                          " UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
                          " TO app_flt")
        try:
            r = pgtide.run("cutover", "--config", cfg, "--fence-role",
                           "app_flt", "--final-validation", "full")
            assert r.returncode == 0, r.stdout + r.stderr
            assert p.wait(60) == 0, p.read_stderr()
        finally:
            source_db.execute("DROP OWNED BY app_flt; DROP ROLE app_flt")
        assert actual(target_db) == expected(source_db)


def test_changes_a_filter_leaves_out_are_counted(pgtide, source_db,
                                                 target_db, tmp_path):
    """Nothing is left out silently: status counts the new row versions the
    filter kept from the target (inserts outside it, updates out of it)."""
    source_db.execute(SOURCE)
    cfg = task_file(tmp_path, source_db, target_db,
                    [("public.orders", quoted(CONDITION))])
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    source_db.execute("""
        -- five inserts outside (too early, or region test), three inside
        INSERT INTO orders SELECT 800000 + g, '2024-01-01 00:00+00', 'eu', g, 'o'
          FROM generate_series(1, 3) g;
        INSERT INTO orders SELECT 800010 + g, '2025-01-01 00:00+00', 'test', g, 'o'
          FROM generate_series(1, 2) g;
        INSERT INTO orders SELECT 800020 + g, '2025-01-01 00:00+00', 'eu', g, 'i'
          FROM generate_series(1, 3) g;
        -- two updates out of it, one inside it, and a table without a filter
        UPDATE orders SET region = 'test' WHERE id IN (800021, 800022);
        UPDATE orders SET total = 0 WHERE id = 800023;
        UPDATE plain SET v = 'x' WHERE id <= 4;
    """)
    wait_caught_up(source_db, target_db)
    assert actual(target_db) == expected(source_db)

    def counted():
        doc = json.loads(pgtide.run("status", "--config", cfg, "--json").stdout)
        return doc["cdc_filtered_changes"] == 7
    wait_for(counted, 30, 0.3, "status never counted the 7 left out")
    r = pgtide.run("status", "--config", cfg)
    assert "cdc: 7 new row versions were not this target's (row filters)" \
        in r.stdout, r.stdout
    assert p.stop() == 0


BAD = [
    ("public.orders", "no_such_column > 1", 'column "no_such_column" does '
     "not exist"),
    ("public.orders", "created_at >=", "syntax error"),
    ("public.orders", "created_at >= now() - interval '1 day'",
     "now(), not immutable"),
    ("public.orders", "created_at::date > '2024-01-01'",
     "date(timestamp with time zone), not immutable"),
    ("public.orders", "id IN (SELECT id FROM public.plain)",
     "holds a subquery"),
    ("public.orders", "created_at < current_date", "reads the clock"),
    ("public.orders", "region::int > 0", "through its text form"),
    ("public.keyless", "id > 1", "without a primary key or replica identity"),
    ("public.nosuch", "id > 1", "names no table the task moves"),
]


def test_bad_filters_are_one_error_each_before_anything_moves(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE + "CREATE TABLE keyless (id int, v text);")
    for n, (table, cond, message) in enumerate(BAD):
        cfg = task_file(tmp_path, source_db, target_db,
                        [(table, quoted(cond))])
        # check says it too, the first time (the same code refuses)
        for command in ("check", "migrate") if n == 0 else ("migrate",):
            r = pgtide.run(command, "--config", cfg)
            assert r.returncode == 2, (cond, r.stdout + r.stderr)
            errors = [l for l in r.stderr.splitlines()
                      if l.startswith("pgtide: error:")]
            assert len(errors) == 1, (cond, r.stderr)
            assert message in errors[0], (cond, errors[0])
            assert "line 7" in errors[0], errors[0]
            assert table.split(".")[1] in errors[0], errors[0]
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    assert target_db.query_one(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_dms_source_filters_load_the_rows_they_keep(
        pgtide, source_db, target_db, tmp_path):
    """A DMS table mapping with source filters: filters ANDed, a filter's
    conditions ORed, as DMS documents them."""
    source_db.execute(SOURCE)
    rules = {"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "orders",
         "object-locator": {"schema-name": "public", "table-name": "orders"},
         "rule-action": "include", "filters": [
             {"filter-type": "source", "column-name": "created_at",
              "filter-conditions": [
                  {"filter-operator": "gte",
                   "value": "2024-09-01 00:00:00+00"},
                  {"filter-operator": "between",
                   "start-value": "2024-02-01 00:00:00+00",
                   "end-value": "2024-02-03 00:00:00+00"}]},
             {"filter-type": "source", "column-name": "region",
              "filter-conditions": [{"filter-operator": "noteq",
                                     "value": "test"}]}]},
        {"rule-type": "selection", "rule-id": "2", "rule-name": "plain",
         "object-locator": {"schema-name": "public", "table-name": "plain"},
         "rule-action": "include"}]}
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(rules, indent=2))
    args = ("--source", source_db.uri, "--target", target_db.uri,
            "--table-mappings", str(path))
    r = pgtide.run("copy", *args)
    assert r.returncode == 0, r.stderr
    want = rows(source_db, "SELECT o::text FROM orders o WHERE"
                " (created_at >= '2024-09-01 00:00:00+00' OR created_at"
                " BETWEEN '2024-02-01 00:00:00+00' AND '2024-02-03 00:00:00+00')"
                " AND region <> 'test'")
    assert 0 < len(want) < 6000
    assert actual(target_db) == want
    assert len(rows(target_db, "SELECT p::text FROM plain p")) == 300
    r = pgtide.run("validate", *args)
    assert r.returncode == 0, r.stdout + r.stderr


def test_old_source_into_new_target_gives_the_source_answer(
        pgtide, make_server, tmp_path):
    """11 -> 17: the check reads an 11 source's parse trees (a volatile
    function and a subquery refused), the load and the stream keep exactly
    the rows the 11 source says are inside."""
    bindirs = {m: version_bindir(m) for m in (11, 17)}
    if None in bindirs.values():
        pytest.skip("PostgreSQL 11 or 17 not installed "
                    "(scripts/install-pg-versions.sh)")
    src = ServerDb(make_server("src11", bindir=bindirs[11]))
    tgt = ServerDb(make_server("tgt17", bindir=bindirs[17]))
    src.execute(SOURCE)
    for cond, message in (("created_at > now()", "now(), not immutable"),
                          ("id IN (SELECT id FROM public.plain)",
                           "holds a subquery")):
        cfg = task_file(tmp_path, src, tgt, [("public.orders", quoted(cond))])
        r = pgtide.run("migrate", "--config", cfg)
        assert r.returncode == 2 and message in r.stderr, r.stderr
    cfg = task_file(tmp_path, src, tgt,
                    [("public.orders", quoted(CONDITION))])
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    edges(src)
    src.execute("UPDATE orders SET region = 'test' WHERE id % 10 = 1;"
                "UPDATE orders SET region = 'eu' WHERE id % 7 = 0;"
                "DELETE FROM orders WHERE id % 13 = 0")
    wait_caught_up(src, tgt)
    assert actual(tgt) == expected(src)
    assert p.stop() == 0


def test_a_filtered_table_under_renames(pgtide, source_db, target_db,
                                        tmp_path):
    """A filtered table that is renamed too, one column renamed and one left
    behind: the source answers the condition and gives the TOASTed values a
    change left out under the source's names, the target takes the rows
    under its own."""
    source_db.execute(SOURCE)
    path = task_file(tmp_path, source_db, target_db,
                     [("public.orders", quoted(CONDITION))])
    with open(path, "a") as f:
        f.write("rename:\n"
                "  tables:\n    public.orders: orders_v2\n"
                "  columns:\n    public.orders.note: comment\n"
                "remove_columns: [public.orders.total]\n")
    p = pgtide.start("migrate", "--config", path, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    edges(source_db)
    wait_caught_up(source_db, target_db)
    want = rows(source_db, "SELECT (id, created_at, region, note)::text"
                           f" FROM orders WHERE {CONDITION}")
    got = rows(target_db, "SELECT (id, created_at, region, comment)::text"
                          " FROM orders_v2")
    assert got == want
    assert p.poll() is None, p.read_stderr()
    r = pgtide.run("validate", "--config", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert p.stop() == 0
