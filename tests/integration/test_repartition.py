"""--schema existing into targets partitioned otherwise (decision 0004):
LIST leaves into a HASH root, a plain table split into RANGE partitions,
partitions merged into one plain table, with a workload writing throughout
(rows moving between the source's partitions included), then validate and
cutover; and a target whose columns do not match, every mismatch named
before anything moves."""
import json
import random

from cdc_helpers import Workload, start_migrate, wait_caught_up
from conftest import wait_for
from helpers import hostile_settings

SOURCE = """
    CREATE TABLE events (k int, id bigint, v text, PRIMARY KEY (k, id))
      PARTITION BY LIST (k);
    CREATE TABLE events_a PARTITION OF events FOR VALUES IN (1, 2);
    CREATE TABLE events_b PARTITION OF events FOR VALUES IN (3, 4);
    CREATE TABLE events_rest PARTITION OF events DEFAULT;
    CREATE TABLE orders (id bigint PRIMARY KEY, placed timestamptz,
                         total numeric, note text);
    CREATE TABLE logs (id bigint, day int, msg text, PRIMARY KEY (id, day))
      PARTITION BY RANGE (day);
    CREATE TABLE logs_1 PARTITION OF logs FOR VALUES FROM (0) TO (50);
    CREATE TABLE logs_2 PARTITION OF logs FOR VALUES FROM (50) TO (100);
    INSERT INTO events SELECT g % 6 + 1, g, repeat('e', g % 50)
      FROM generate_series(1, 3000) g;
    INSERT INTO orders SELECT g, '2024-01-01 00:00:00+00'::timestamptz
      + g * interval '1 hour', g * 1.25, 'n' || g FROM generate_series(1, 2000) g;
    INSERT INTO logs SELECT g, g % 100, 'm' || g FROM generate_series(1, 2000) g;
"""

TARGET = """
    CREATE TABLE events (k int, id bigint, v text, PRIMARY KEY (k, id))
      PARTITION BY HASH (k);
    CREATE TABLE events_h0 PARTITION OF events
      FOR VALUES WITH (modulus 3, remainder 0);
    CREATE TABLE events_h1 PARTITION OF events
      FOR VALUES WITH (modulus 3, remainder 1);
    CREATE TABLE events_h2 PARTITION OF events
      FOR VALUES WITH (modulus 3, remainder 2);
    CREATE TABLE orders (id bigint PRIMARY KEY, placed timestamptz,
                         total numeric, note text) PARTITION BY RANGE (id);
    CREATE TABLE orders_low PARTITION OF orders FOR VALUES FROM (MINVALUE)
      TO (1500);
    CREATE TABLE orders_high PARTITION OF orders FOR VALUES FROM (1500)
      TO (MAXVALUE);
    CREATE TABLE logs (id bigint, day int, msg text, PRIMARY KEY (id, day));
"""


class Writes(Workload):
    """Inserts, updates (some moving a row to another source partition, or
    across the target's range split) and deletes on all three tables."""

    def __init__(self, db):
        super().__init__(db)
        self.rng = random.Random(7)
        self.next_id = 100000

    def step(self, conn):
        r, n = self.rng, self.next_id
        self.next_id += 1
        with conn.transaction():
            conn.execute("INSERT INTO events VALUES (%s, %s, 'w')",
                         (r.randint(1, 8), n))
            conn.execute("UPDATE events SET k = %s, v = v || 'm'"
                         " WHERE (k, id) = (SELECT k, id FROM events"
                         " WHERE id = %s)", (r.randint(1, 8), r.randint(1, 3000)))
            conn.execute("DELETE FROM events WHERE id = %s", (r.randint(1, 3000),))
        conn.execute("INSERT INTO orders VALUES (%s, now(), 1.5, 'w')", (n,))
        conn.execute("UPDATE orders SET id = id + 1000000, total = total + 1"
                     " WHERE id = %s", (r.randint(1, 2000),))
        conn.execute("DELETE FROM orders WHERE id = %s", (r.randint(1, 2000),))
        conn.execute("INSERT INTO logs VALUES (%s, %s, 'w')", (n, r.randint(0, 99)))
        conn.execute("UPDATE logs SET day = (day + 50) %% 100 WHERE id = %s",
                     (r.randint(1, 2000),))


def rows(db, table):
    return sorted(db.query(f"SELECT * FROM {table}"))


def test_repartitioned_targets_under_writes_then_validate_and_cutover(
        pgtide, source_db, target_db):
    hostile_settings(source_db, target_db)
    source_db.execute(SOURCE)
    target_db.execute(TARGET)
    with Writes(source_db) as w:
        p = start_migrate(pgtide, source_db, target_db, "--schema", "existing",
                          "--jobs", "2")
        wait_caught_up(source_db, target_db)
        start = w.count
        wait_for(lambda: w.count >= start + 30, 60, 0.2,
                 "the workload stalled")
    wait_caught_up(source_db, target_db)
    for t in ("events", "orders", "logs"):
        assert rows(target_db, t) == rows(source_db, t), t
    # the rows are where the target's own partitioning puts them
    assert target_db.query_one("SELECT count(*) FROM ONLY logs") == \
        source_db.query_one("SELECT count(*) FROM logs")
    assert target_db.query_one(
        "SELECT count(*) FROM orders_high WHERE id < 1500") == 0
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == 0, r.stdout + r.stderr
    source_db.execute("CREATE ROLE app_rp LOGIN; GRANT SELECT, INSERT, UPDATE,"
                      " DELETE ON ALL TABLES IN SCHEMA public TO app_rp")
    try:
        r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                       target_db.uri, "--fence-role", "app_rp",
                       "--final-validation", "full")
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.wait(60) == 0, p.read_stderr()
    finally:
        source_db.execute("DROP OWNED BY app_rp; DROP ROLE app_rp")
    for t in ("events", "orders", "logs"):
        assert rows(target_db, t) == rows(source_db, t), t


def test_columns_that_do_not_match_are_all_named_before_anything_moves(
        pgtide, source_db, target_db):
    source_db.execute(SOURCE)
    target_db.execute("""
        CREATE TABLE events (k int, id bigint, body text, PRIMARY KEY (k, id))
          PARTITION BY HASH (k);
        CREATE TABLE events_h0 PARTITION OF events
          FOR VALUES WITH (modulus 1, remainder 0);
        CREATE TABLE orders (id bigint PRIMARY KEY, placed date,
                             total numeric, note text, region text NOT NULL);
        CREATE TABLE logs (id bigint, day int, msg text, PRIMARY KEY (id, day));
    """)
    r = pgtide.run("copy", "--source", source_db.uri, "--target", target_db.uri,
                   "--schema", "existing")
    assert r.returncode == 4, r.stderr
    [error] = [l for l in r.stderr.splitlines() if l.startswith("pgtide: error")]
    assert "5 column mismatches" in error, r.stderr
    # every mismatch, each naming table and column, in one run
    for leaf in ("events_a", "events_b", "events_rest"):
        assert (f'table "public"."{leaf}" (into "public"."events"): column "v"'
                ' (text) is not on the target') in r.stderr
    assert ('table "public"."orders": column "placed" is timestamp with time'
            ' zone on the source and date on the target') in r.stderr
    assert ('table "public"."orders": target column "region" is NOT NULL'
            ' without a default') in r.stderr
    # check names the same, one finding each
    c = pgtide.run("check", "--source", source_db.uri, "--target",
                   target_db.uri, "--schema", "existing", "--json")
    assert c.returncode == 6, c.stderr
    found = [f for f in json.loads(c.stdout)["findings"]
             if f["id"] == "column_mismatch" and f["severity"] == "blocker"]
    assert len(found) == 5, c.stdout
    assert {f["object"] for f in found} == {
        '"public"."orders"'} | {f'"public"."{l}" (into "public"."events")'
                                for l in ("events_a", "events_b", "events_rest")}
    # nothing moved, nothing was left on the source
    assert target_db.query_one("SELECT count(*) FROM logs") == 0
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    # widenings whose text reads back the same value pass
    target_db.execute("""
        ALTER TABLE events RENAME body TO v;
        ALTER TABLE events ALTER v TYPE varchar;
        ALTER TABLE orders ALTER placed TYPE timestamptz,
          ALTER region SET DEFAULT 'eu', ALTER total TYPE numeric(20, 4),
          ADD COLUMN extra text;
        ALTER TABLE logs ALTER msg TYPE varchar""")
    r = pgtide.run("copy", "--source", source_db.uri, "--target", target_db.uri,
                   "--schema", "existing")
    assert r.returncode == 4, r.stderr
    assert ('table "public"."orders": column "total" is numeric on the source'
            ' and numeric(20,4) on the target') in r.stderr
    assert 'logs' not in r.stderr.split("pgtide: error")[1], r.stderr
    target_db.execute("ALTER TABLE orders ALTER total TYPE numeric")
    r = pgtide.run("copy", "--source", source_db.uri, "--target", target_db.uri,
                   "--schema", "existing")
    assert r.returncode == 0, r.stderr
    # what the rows leave to the target is said, once per column
    for col, what in (("region", "its default or NULL"),
                      ("extra", "its default or NULL")):
        assert r.stderr.count(f'table "public"."orders": target column "{col}"'
                              f' is not on the source: every row gets {what}') \
            == 1, r.stderr
    assert target_db.query_one(
        "SELECT count(*) FROM orders WHERE region = 'eu'") == 2000
    for t in ("events", "logs"):
        assert rows(target_db, t) == rows(source_db, t), t
