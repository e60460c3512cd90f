"""Renames and removed columns (rename.*, remove_columns in the task file,
decision 0028): the target holds exactly the renamed image of the source,
computed from the source with SQL, after the full load and a stream with a
workload writing throughout, in create mode (pgtide renames the schema it
created) and in existing mode (the user's renamed tables); validate and
cutover work on the renamed tables; each bad rule is one error, exit 2,
before anything moves."""
import json
import random

import pytest

from cdc_helpers import Workload, start_migrate, wait_caught_up
from conftest import wait_for
from helpers import hostile_settings

SOURCE = """
    CREATE SCHEMA shop;
    CREATE TABLE shop.orders (id bigserial PRIMARY KEY, placed date,
                              note text, secret text NOT NULL DEFAULT 'x',
                              total numeric);
    CREATE INDEX orders_placed ON shop.orders (placed, note);
    CREATE TABLE shop.items (id int PRIMARY KEY, name text);
    CREATE TABLE public.plain (id int PRIMARY KEY, v text);
    CREATE UNLOGGED TABLE shop.cache (id int PRIMARY KEY, k text, junk text);
    INSERT INTO shop.cache SELECT g, 'k' || g, 'j' FROM generate_series(1, 50) g;
    INSERT INTO shop.orders (placed, note, secret, total)
      SELECT '2024-01-01'::date + g % 300, 'n' || g, 's' || g, g * 1.5
      FROM generate_series(1, 2000) g;
    INSERT INTO shop.items SELECT g, 'i' || g FROM generate_series(1, 500) g;
    INSERT INTO public.plain SELECT g, 'p' || g FROM generate_series(1, 300) g;
"""

TASK = """\
task: default
source: {source}
target: {target}
rename:
  schemas:
    shop: store
  tables:
    shop.orders: purchases
    public.plain: archive.kept
  columns:
    shop.orders.note: comment
remove_columns:
  - shop.orders.secret
  - shop.cache.junk
"""

# the target's image of each table, read on the source
EXPECTED = {
    "store.purchases":
        "SELECT id, placed, note AS comment, total FROM shop.orders",
    "store.items": "SELECT id, name FROM shop.items",
    "archive.kept": "SELECT id, v FROM public.plain",
    # unlogged: not streamed, copied again at cutover under its new names
    "store.cache": "SELECT id, k FROM shop.cache",
}
STREAMED = [t for t in EXPECTED if t != "store.cache"]


class Writes(Workload):
    """Inserts, updates of kept and of removed columns, deletes."""

    def __init__(self, db):
        super().__init__(db)
        self.rng = random.Random(12)

    def step(self, conn):
        r = self.rng
        with conn.transaction():
            conn.execute("INSERT INTO shop.orders (placed, note, secret, total)"
                         " VALUES (now(), 'w', 'sw', 1)")
            conn.execute("UPDATE shop.orders SET note = note || 'u',"
                         " total = total + 1 WHERE id = %s",
                         (r.randint(1, 2000),))
            # a change of the removed column alone: nothing to apply
            conn.execute("UPDATE shop.orders SET secret = secret || 'z'"
                         " WHERE id = %s", (r.randint(1, 2000),))
            conn.execute("DELETE FROM shop.orders WHERE id = %s",
                         (r.randint(1, 2000),))
        conn.execute("UPDATE shop.items SET name = name || 'u' WHERE id = %s",
                     (r.randint(1, 500),))
        conn.execute("INSERT INTO public.plain VALUES (%s, 'w')"
                     " ON CONFLICT DO NOTHING", (r.randint(301, 100000),))
        conn.execute("DELETE FROM public.plain WHERE id = %s",
                     (r.randint(1, 300),))
        conn.execute("INSERT INTO shop.cache VALUES (%s, 'w', 'j')"
                     " ON CONFLICT (id) DO UPDATE SET k = 'u'",
                     (r.randint(1, 100),))


def write_task(tmp_path, source_db, target_db, extra=""):
    path = tmp_path / "task.yaml"
    path.write_text(TASK.format(source=source_db.uri, target=target_db.uri)
                    + extra)
    return str(path)


def assert_renamed_image(source_db, target_db, tables=STREAMED):
    for table in tables:
        sql = EXPECTED[table]
        with source_db.connect() as conn:
            names = [d.name for d in conn.execute(sql + " LIMIT 0").description]
        assert sorted(target_db.query(
            f"SELECT {', '.join(names)} FROM {table}")) == \
            sorted(source_db.query(sql)), table


def columns(db, table):
    return [r[0] for r in db.query(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,))]


def migrate_validate_cutover(pgtide, source_db, target_db, cfg,
                             alter=False):
    with Writes(source_db) as w:
        p = start_migrate(pgtide, source_db, target_db, "--config", cfg)
        wait_caught_up(source_db, target_db)
        start = w.count
        wait_for(lambda: w.count >= start + 30, 60, 0.2,
                 "the workload stalled")
    wait_caught_up(source_db, target_db)
    assert_renamed_image(source_db, target_db)
    if alter:
        # a column added on the source follows into the renamed table, the
        # rows already there filled from the source (decision 0017)
        source_db.execute("ALTER TABLE shop.orders ADD COLUMN extra int"
                          " DEFAULT 7; INSERT INTO shop.orders (placed, note,"
                          " total, extra) VALUES (now(), 'e', 2, 8)")
        wait_caught_up(source_db, target_db)
        assert columns(target_db, "store.purchases") == \
            ["id", "placed", "comment", "total", "extra"]
        assert sorted(target_db.query(
            "SELECT id, comment, extra FROM store.purchases")) == \
            sorted(source_db.query(
                "SELECT id, note, extra FROM shop.orders"))
    # the unlogged table writes no WAL: its writes since the load reach the
    # target only when cutover copies it again, so only the streamed tables
    # are equal now
    r = pgtide.run("validate", "--config", cfg, "--tables",
                   "shop.orders,shop.items,public.plain")
    assert r.returncode == 0, r.stdout + r.stderr
    source_db.execute("CREATE ROLE app_rn LOGIN; GRANT SELECT, INSERT, UPDATE,"
                      " DELETE ON ALL TABLES IN SCHEMA shop, public TO app_rn")
    try:
        r = pgtide.run("cutover", "--config", cfg, "--fence-role", "app_rn",
                       "--final-validation", "full")
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.wait(60) == 0, p.read_stderr()
    finally:
        source_db.execute("DROP OWNED BY app_rn; DROP ROLE app_rn")
    assert_renamed_image(source_db, target_db, EXPECTED)


def test_create_mode_renames_under_writes_then_validate_and_cutover(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    cfg = write_task(tmp_path, source_db, target_db)
    # hostile settings on both sides: the renamed rows must read back the
    # same, whatever a database or role sets
    with hostile_settings(source_db, target_db):
        migrate_validate_cutover(pgtide, source_db, target_db, cfg,
                                 alter=True)
    # the schema pgtide created, under the target's names: the removed
    # column is gone, the index follows the renamed column
    assert columns(target_db, "store.purchases") == \
        ["id", "placed", "comment", "total", "extra"]
    assert "(placed, comment)" in target_db.query_one(
        "SELECT pg_get_indexdef('store.orders_placed'::regclass)")
    # the sequence went with its table, and cutover set it past the source's
    assert target_db.query_one(
        "SELECT last_value FROM store.orders_id_seq") >= \
        source_db.query_one("SELECT last_value FROM shop.orders_id_seq")
    assert target_db.query_one(
        "SELECT to_regclass('shop.orders')") is None


TARGET = """
    CREATE SCHEMA store;
    CREATE SCHEMA archive;
    CREATE TABLE store.purchases (id bigserial PRIMARY KEY, placed date,
                                  comment text, total numeric);
    CREATE TABLE store.items (id int PRIMARY KEY, name text);
    CREATE TABLE archive.kept (id int PRIMARY KEY, v text);
    CREATE UNLOGGED TABLE store.cache (id int PRIMARY KEY, k text);
"""


def test_existing_mode_renames_under_writes_then_validate_and_cutover(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    target_db.execute(TARGET)
    cfg = write_task(tmp_path, source_db, target_db,
                     "schema:\n  mode: existing\n")
    migrate_validate_cutover(pgtide, source_db, target_db, cfg)
    # the target's own sequence, owned by its renamed table, was set
    assert target_db.query_one(
        "SELECT last_value FROM store.purchases_id_seq") >= \
        source_db.query_one("SELECT last_value FROM shop.orders_id_seq")


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("pgtide: error:")]


def assert_nothing_moved(source_db, target_db):
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    assert target_db.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname"
        " IN ('pgtide', 'store', 'shop', 'archive', 'sales', 'new_sales')") == 0


HEADER = "task: default\nsource: {source}\ntarget: {target}\n"

# each rule set, and what its one error says (the task file's line 6 is
# the rule's own)
BAD = [
    ("rename:\n  columns:\n    shop.orders.nope: x\n",
     ["task.yaml:6: key rename.columns: column nope of table shop.orders is "
      "not among the task's tables"]),
    ("rename:\n  tables:\n    shop.missing: x\n",
     ["task.yaml:6: key rename.tables: table shop.missing is not among the "
      "task's tables"]),
    ("rename:\n  tables:\n    shop.orders: items\n",
     ["tables shop.", "would both be table shop.items on the target"]),
    ("rename:\n  columns:\n    shop.orders.total: note\n",
     ["columns note and total of table shop.orders would both be column "
      "note on the target"]),
    ("remove_columns:\n  - shop.orders.id\n",
     ["key remove_columns: column id of table shop.orders is part of its "
      "replica identity (index shop.orders_pkey) and cannot be removed"]),
    ("remove_columns:\n  - shop.orders.placed\n",
     ["key remove_columns: column placed of table shop.orders cannot be "
      "removed: index shop.orders_placed needs it"]),
    ("rename:\n  columns:\n    shop.ev_1.v: w\n",
     ["task.yaml:6: key rename.columns: column v of table shop.ev_1 is a "
      "partition's: it cannot be renamed or removed in a schema pgtide "
      "creates"]),
]


def test_each_bad_rule_is_one_error_before_anything_moves(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    source_db.execute("CREATE TABLE shop.ev (k int PRIMARY KEY, v text)"
                      " PARTITION BY RANGE (k); CREATE TABLE shop.ev_1"
                      " PARTITION OF shop.ev FOR VALUES FROM (0) TO (10)")
    path = tmp_path / "task.yaml"
    for rules, messages in BAD:
        path.write_text(HEADER.format(source=source_db.uri,
                                      target=target_db.uri) + rules)
        r = pgtide.run("migrate", "--config", str(path))
        assert r.returncode == 2, (rules, r.stderr)
        [line] = error_lines(r.stderr)
        for m in messages:
            assert m in line, (rules, line)
        assert_nothing_moved(source_db, target_db)


DMS_SOURCE = """
    CREATE SCHEMA sales;
    CREATE TABLE sales.order_1 (id int PRIMARY KEY, v text, tmp_a int,
                                "Mixed" text);
    CREATE TABLE sales.order_2 (id int PRIMARY KEY, v text, tmp_b text);
    CREATE TABLE sales.misc (id int PRIMARY KEY, v text);
    INSERT INTO sales.order_1 SELECT g, 'o' || g, g, 'M' || g
      FROM generate_series(1, 50) g;
    INSERT INTO sales.order_2 SELECT g, 'p' || g, 't' FROM generate_series(1, 30) g;
    INSERT INTO sales.misc VALUES (1, 'x');
"""


def dms_rule(rule_id, target, action, locator, **extra):
    rule = {"rule-type": "transformation", "rule-id": str(rule_id),
            "rule-name": str(rule_id), "rule-target": target,
            "object-locator": locator, "rule-action": action}
    rule.update(extra)
    return rule


def test_dms_transformation_rules(pgtide, source_db, target_db, tmp_path):
    source_db.execute(DMS_SOURCE)
    rules = [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "1",
         "object-locator": {"schema-name": "sales", "table-name": "%"},
         "rule-action": "include", "filters": []},
        dms_rule(2, "schema", "add-prefix", {"schema-name": "sal%"},
                 value="new_"),
        dms_rule(3, "table", "replace-prefix",
                 {"schema-name": "sales", "table-name": "order[_]%"},
                 **{"old-value": "order_", "value": "ord_"}),
        dms_rule(4, "table", "convert-uppercase",
                 {"schema-name": "sales", "table-name": "misc"}),
        dms_rule(5, "column", "rename",
                 {"schema-name": "sales", "table-name": "order_1",
                  "column-name": "v"}, value="value"),
        dms_rule(6, "column", "remove-column",
                 {"schema-name": "%", "table-name": "%",
                  "column-name": "tmp%"}),
        dms_rule(7, "column", "convert-lowercase",
                 {"schema-name": "%", "table-name": "%",
                  "column-name": "Mixed"}),
    ]
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"rules": rules}, indent=2))
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", str(path))
    assert r.returncode == 0, r.stderr
    expected = {
        "new_sales.ord_1": "SELECT id, v AS value, \"Mixed\" AS mixed"
                           " FROM sales.order_1",
        "new_sales.ord_2": "SELECT id, v FROM sales.order_2",
        'new_sales."MISC"': "SELECT id, v FROM sales.misc",
    }
    for table, sql in expected.items():
        assert columns(target_db, table) == \
            [d.name for d in source_db.connect().execute(sql).description]
        assert sorted(target_db.query(f"SELECT * FROM {table}")) == \
            sorted(source_db.query(sql)), table

    # two rules on one column: one error naming both, nothing moved
    # the source's schema stays on the target, emptied (decision 0028)
    target_db.execute("DROP SCHEMA new_sales, sales, pgtide CASCADE")
    rules.append(dms_rule(8, "column", "add-suffix",
                          {"schema-name": "sales", "table-name": "order_2",
                           "column-name": "%"}, value="_x"))
    rules.append(dms_rule(9, "column", "add-prefix",
                          {"schema-name": "sales", "table-name": "order_2",
                           "column-name": "v"}, value="c_"))
    path.write_text(json.dumps({"rules": rules}, indent=2))
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", str(path))
    assert r.returncode == 2, r.stderr
    [line] = error_lines(r.stderr)
    assert 'rule "9" of mapping.json: column v of table sales.order_2 is ' \
        "named by two rules" in line, line
    assert_nothing_moved(source_db, target_db)


def test_create_mode_refuses_a_renamed_target_that_exists(
        pgtide, source_db, target_db, tmp_path):
    """The final name is checked as the source's is (--on-existing): a
    table already under it stops the load before any table is made."""
    source_db.execute(SOURCE)
    target_db.execute("CREATE SCHEMA store;"
                      " CREATE TABLE store.purchases (id int)")
    cfg = write_task(tmp_path, source_db, target_db)
    r = pgtide.run("migrate", "--config", cfg)
    assert r.returncode != 0
    [line] = error_lines(r.stderr)
    # migrate's check names it first; the load would refuse it too
    assert "check found 1 blocker: target_has_data" in line, line
    assert 'shop.orders ("store"."purchases" on the target): the table '\
        "already exists" in r.stderr
    r = pgtide.run("copy", "--config", cfg)
    assert r.returncode != 0
    [line] = error_lines(r.stderr)
    assert 'table "store"."purchases" already exists on the target' in line
    assert target_db.query_one("SELECT to_regclass('shop.orders')") is None
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0


def test_existing_mode_names_each_mismatch_by_both_names(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    target_db.execute(TARGET.replace("comment text", "remark text"))
    cfg = write_task(tmp_path, source_db, target_db,
                     "schema:\n  mode: existing\n")
    r = pgtide.run("copy", "--config", cfg)
    assert r.returncode != 0
    [line] = error_lines(r.stderr)
    assert "1 column mismatch" in line, line
    assert '(into "store"."purchases"): column "comment" ("note" on the ' \
        'source) (text) is not on the target' in r.stderr, r.stderr
    assert target_db.query_one("SELECT count(*) FROM store.purchases") == 0


JOINING = """
    CREATE TABLE shop.returns (id int PRIMARY KEY, order_ref bigint,
                               reason text);
    CREATE INDEX returns_reason ON shop.returns (reason);
    INSERT INTO shop.returns SELECT g, g, 'r' || g FROM generate_series(1, 80) g;
    CREATE TABLE shop.gifts (id int PRIMARY KEY,
                             item int REFERENCES shop.items (id));
    INSERT INTO shop.gifts VALUES (1, 1), (2, 2);
"""


@pytest.mark.parametrize("mode", ["create", "existing"])
def test_a_table_created_while_streaming_joins_under_its_renamed_names(
        pgtide, source_db, target_db, tmp_path, mode):
    """A table created in a renamed schema while the task streams joins
    under the target's names, and its changes follow it there. In create
    mode, one whose foreign key references a renamed table is named, not
    joined: pg_dump writes the key under the source's names."""
    source_db.execute(SOURCE)
    extra = ""
    if mode == "existing":
        target_db.execute(TARGET + """
            CREATE TABLE store.returns (id int PRIMARY KEY, order_ref bigint,
                                        reason text);
            CREATE TABLE store.gifts (id int PRIMARY KEY, item int);
        """)
        extra = "schema:\n  mode: existing\n"
    cfg = write_task(tmp_path, source_db, target_db, extra)
    p = start_migrate(pgtide, source_db, target_db, "--config", cfg)
    with hostile_settings(source_db, target_db):
        source_db.execute(JOINING)
        p.wait_for_output(r'table "shop"."returns" joins with 80 rows',
                          timeout=60)
        source_db.execute("""
            UPDATE shop.returns SET reason = reason || '!' WHERE id % 3 = 0;
            DELETE FROM shop.returns WHERE id < 5;
            INSERT INTO shop.returns VALUES (100, 7, 'late');
            INSERT INTO shop.gifts VALUES (3, 3);
        """)
        wait_caught_up(source_db, target_db)
        assert sorted(target_db.query(
            "SELECT id, order_ref, reason FROM store.returns")) == \
            sorted(source_db.query("SELECT * FROM shop.returns"))
    assert target_db.query_one("SELECT to_regclass('shop.returns')") is None
    if mode == "create":
        assert "(reason)" in target_db.query_one(
            "SELECT pg_get_indexdef('store.returns_reason'::regclass)")
        p.wait_for_output(r'"shop"."gifts": a foreign key of it references '
                          r'a table the task renames', timeout=30)
        assert target_db.query_one("SELECT to_regclass('store.gifts')") is None
    else:
        wait_caught_up(source_db, target_db)
        assert sorted(target_db.query("SELECT * FROM store.gifts")) == \
            sorted(source_db.query("SELECT * FROM shop.gifts"))
    assert p.stop() == 0, p.read_stderr()
