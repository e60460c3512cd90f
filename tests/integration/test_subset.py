"""A subset of the tables (-t, -T, tables.include/exclude): check names every
object that needs a table left out and what happens to it, and the load does
exactly that: views, materialized views, foreign keys, rules, policies and
triggers that need a table left out are left out of the target's schema,
partitions left out are not created, and an object the target would refuse
stops the load before its slot exists (docs/what-moves.md)."""
from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content
from test_check import findings, run_check
from test_cutover import make_role

SCHEMA = """
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
    -- an identity column's sequence goes with its table
    CREATE TABLE audit (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        what text);
    CREATE TABLE orders (id bigserial PRIMARY KEY,
                         customer_id int REFERENCES customers (id),
                         total numeric NOT NULL, note text);
    -- a default that calls the serial sequence of a table left out: the
    -- sequence is created (without OWNED BY) and its value copied
    CREATE TABLE order_items (order_id bigint REFERENCES orders (id),
                              line int, qty int,
                              ticket int DEFAULT nextval('customers_id_seq'),
                              PRIMARY KEY (order_id, line));
    CREATE TABLE parted (id int, region text,
                         customer_id int REFERENCES customers (id),
                         PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
    CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
    -- views: on a table left out, on such a view, on selected tables only
    CREATE VIEW order_summary AS SELECT o.id, c.name, o.total
      FROM orders o JOIN customers c ON c.id = o.customer_id;
    CREATE VIEW big_orders AS SELECT * FROM order_summary WHERE total > 100;
    CREATE VIEW orders_only AS SELECT id, total FROM orders;
    CREATE MATERIALIZED VIEW customer_totals AS SELECT c.id, sum(o.total)
      FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
    CREATE MATERIALIZED VIEW order_count AS SELECT count(*) AS n FROM orders;
    -- a trigger whose function writes into a table left out: kept (the
    -- function's body names no dependency, and the stream runs it never)
    CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS
      $$BEGIN INSERT INTO audit (what) VALUES ('order'); RETURN NEW; END$$;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders
      FOR EACH ROW EXECUTE FUNCTION log_order();
    CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS
      $$BEGIN RETURN NULL; END$$;
    CREATE CONSTRAINT TRIGGER orders_customer_check AFTER INSERT ON orders
      FROM customers FOR EACH ROW EXECUTE FUNCTION noop();
    CREATE RULE orders_note AS ON UPDATE TO orders WHERE new.note = 'x'
      DO ALSO INSERT INTO audit (what) VALUES ('note');
    ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
    CREATE POLICY orders_cust ON orders
      USING (customer_id IN (SELECT id FROM customers));
    INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 5) g;
    INSERT INTO orders (customer_id, total)
      SELECT 1 + g % 5, g * 10 FROM generate_series(1, 30) g;
    INSERT INTO order_items SELECT id, 1, 2 FROM orders;
    INSERT INTO order_items (order_id, line, qty) VALUES (1, 2, 3);
    INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
      FROM generate_series(1, 20) g;
    REFRESH MATERIALIZED VIEW order_count;
"""

SUBSET = ["-t", "public.orders", "-t", "public.order_items",
          "-t", "public.parted_eu"]

LEFT_OUT = {
    "view public.order_summary":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target",
    "view public.big_orders":
        "depends on public.customers (through public.order_summary), which is "
        "not selected: it will not be created on the target",
    "materialized view public.customer_totals":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target",
    "foreign key orders_customer_id_fkey on public.orders":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target, and the table is created without it",
    # named once: its clones on the partitions are not pg_dump's
    "foreign key parted_customer_id_fkey on public.parted":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target, and the table is created without it",
    "rule orders_note on public.orders":
        "depends on public.audit, which is not selected: it will not be "
        "created on the target, and the table is created without it",
    "policy orders_cust on public.orders":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target, and the table is created without it",
    "trigger orders_customer_check on public.orders":
        "depends on public.customers, which is not selected: it will not be "
        "created on the target, and the table is created without it",
    "partition public.parted_us":
        "a child of public.parted, not selected: it will not be created on "
        "the target, and its rows are not moved",
}


def relations(db):
    return {r for (r,) in db.query(
        "SELECT relname::text FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relkind IN"
        " ('r', 'p', 'v', 'm')")}


def objects_on_orders(db):
    return {
        "constraints": {c for (c,) in db.query(
            "SELECT conname::text FROM pg_constraint"
            " WHERE conrelid = 'public.orders'::regclass")},
        "triggers": {t for (t,) in db.query(
            "SELECT tgname::text FROM pg_trigger"
            " WHERE tgrelid = 'public.orders'::regclass AND NOT tgisinternal")},
        "rules": {r for (r,) in db.query(
            "SELECT rulename::text FROM pg_rules WHERE tablename = 'orders'")},
        "policies": {p for (p,) in db.query(
            "SELECT policyname::text FROM pg_policies"
            " WHERE tablename = 'orders'")},
    }


def assert_subset_on_target(source_db, target_db):
    assert relations(target_db) == {
        "orders", "order_items", "parted", "parted_eu", "orders_only",
        "order_count"}
    assert objects_on_orders(target_db) == {
        "constraints": {"orders_pkey"},
        "triggers": {"orders_audit"},
        "rules": set(),
        "policies": set(),
    }
    assert target_db.query(
        "SELECT conname::text FROM pg_constraint"
        " WHERE conrelid = 'public.order_items'::regclass ORDER BY 1") == [
        ("order_items_order_id_fkey",), ("order_items_pkey",)]
    assert target_db.query(
        "SELECT conname::text FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid IN ('public.parted'::regclass,"
        " 'public.parted_eu'::regclass)") == []
    assert_same_content(source_db, target_db, tables=[
        "public.orders", "public.order_items", "public.parted_eu"])
    assert target_db.query("SELECT n FROM order_count") == \
        source_db.query("SELECT n FROM order_count")


def test_check_names_each_object_a_subset_leaves_out(pgtide, source_db,
                                                     target_db):
    source_db.execute(SCHEMA)
    r, report = run_check(pgtide, source_db.uri, target_db.uri, *SUBSET)
    assert r.returncode == 0, r.stderr
    got = {f["object"]: (f["severity"], f["message"])
           for f in findings(report, "subset_dependency")}
    assert got == {o: ("warning", m) for o, m in LEFT_OUT.items()}
    # the whole database: nothing is left out
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    assert findings(report, "subset_dependency") == []


def test_copy_of_a_subset_leaves_out_what_check_said(pgtide, source_db,
                                                     target_db):
    source_db.execute(SCHEMA)
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, *SUBSET)
    assert r.returncode == 0, r.stderr
    assert "sequences could not be copied" not in r.stderr
    assert "left out the identity sequences of 1 tables" in r.stderr
    for obj, message in LEFT_OUT.items():
        if obj.startswith("partition "):
            assert f"{obj}, a child of public.parted, is not selected" \
                in r.stderr
        else:
            assert f"{obj} depends on public." in r.stderr, obj
    assert_subset_on_target(source_db, target_db)
    assert target_db.query("SELECT last_value FROM customers_id_seq") == \
        source_db.query("SELECT last_value FROM customers_id_seq")


def test_migrate_of_a_subset_streams_the_selected_tables(pgtide, source_db,
                                                         target_db):
    source_db.execute(SCHEMA)
    p = start_migrate(pgtide, source_db, target_db, *SUBSET)
    source_db.execute(
        "INSERT INTO orders (customer_id, total) VALUES (2, 1000);"
        " INSERT INTO order_items SELECT max(id), 1, 7 FROM orders;"
        " INSERT INTO customers (name) VALUES ('late');"
        " UPDATE orders SET note = 'x' WHERE id = 3;"
        " DELETE FROM order_items WHERE order_id = 4;"
        " INSERT INTO parted VALUES (100, 'eu'), (101, 'us')")
    wait_caught_up(source_db, target_db)
    # cutover sets every sequence but the identity sequence of the table
    # left out, and refreshes the materialized view the target has
    source_db.execute("REFRESH MATERIALIZED VIEW order_count")
    make_role(source_db, "app_subset")
    r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                   target_db.uri, "--fence", "read_only", "--fence-role",
                   "app_subset")
    assert r.returncode == 0, r.stderr
    assert p.wait(timeout=60) == 0, p.read_stderr()
    assert_subset_on_target(source_db, target_db)
    # set ahead of the source by cutover's margin
    assert target_db.query_one("SELECT last_value FROM customers_id_seq") > \
        source_db.query_one("SELECT last_value FROM customers_id_seq")


def test_an_object_the_target_would_refuse_stops_before_the_slot(
        pgtide, source_db, target_db):
    source_db.execute(SCHEMA + """
        CREATE FUNCTION n_customers() RETURNS bigint LANGUAGE sql
          BEGIN ATOMIC SELECT count(*) FROM customers; END;
        CREATE TABLE vip () INHERITS (customers);
    """)
    subset = [*SUBSET, "-t", "public.vip"]
    r, report = run_check(pgtide, source_db.uri, target_db.uri, *subset)
    assert r.returncode == 6, r.stderr
    blockers = {f["object"]: f["message"]
                for f in findings(report, "subset_dependency", "blocker")}
    assert blockers == {
        "function public.n_customers()":
            "depends on public.customers, which is not selected: pg_dump "
            "creates it, and the target refuses it without that table",
        "table public.vip":
            "depends on public.customers, which is not selected: pg_dump "
            "creates it, and the target refuses it without that table",
    }
    # skipping it changes nothing: the load would fail after its slot
    r, _ = run_check(pgtide, source_db.uri, target_db.uri, *subset,
                     "--skip-check", "subset_dependency")
    assert r.returncode == 6, r.stderr
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, *subset)
    assert r.returncode == 6, r.stderr
    assert "depends on public.customers, which is not selected" in r.stderr
    assert source_db.query("SELECT slot_name FROM pg_replication_slots") == []
    assert relations(target_db) == set()
