"""Schema changes on the source follow the change stream (decision 0017):
added, dropped and widened columns are applied on the target in stream
order, in the batch that holds the first change needing them; what the
stream cannot tell (a rename, a new column whose existing rows got values
no change carried, a narrowing) stops the task with the statement to run,
and it goes on once that is done. A workload writes throughout."""

import random

import pytest

from cdc_helpers import Workload, start_migrate, wait_caught_up
from conftest import assert_same_content
from helpers import hostile_settings

ORDERS = """
    CREATE TABLE orders (id bigserial PRIMARY KEY, amount int NOT NULL,
                         note varchar(10), legacy text);
    INSERT INTO orders (amount, note, legacy)
      SELECT g, 'n' || g % 100, 'old' || g FROM generate_series(1, 300) g;
    CREATE TABLE log (v int);
    INSERT INTO log SELECT generate_series(1, 10);
"""


class Writer(Workload):
    """Inserts and updates orders through every schema change: its
    statements name only columns no test changes."""

    def step(self, conn):
        if random.random() < 0.5:
            conn.execute("INSERT INTO orders (amount) VALUES (%s)",
                         (random.randint(1, 1000),))
        else:
            conn.execute("UPDATE orders SET amount = amount + 1"
                         " WHERE id = %s", (random.randint(1, 300),))


def column_types(db, table="orders"):
    """Each column's name, type, NOT NULL and default, the defaults'
    constants written in pinned styles."""
    with db.server.connect(db.name) as conn:
        conn.execute("SET IntervalStyle = postgres; SET DateStyle = ISO;"
                     " SET TimeZone = UTC; SET extra_float_digits = 3;"
                     " SET bytea_output = hex; SET search_path = public")
        return conn.execute(
            "SELECT attname::text, format_type(atttypid, atttypmod),"
            " attnotnull, pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d"
            "  ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()


def test_added_dropped_and_widened_columns_follow_the_stream(
        pgtide, source_db, target_db):
    """Each kind with the writer running. The type change rewrites the
    source table, after which no catalog says what the rows added before
    hold: those values are read from the source, as are a volatile
    default's; under hostile settings on both sides, so that each value
    read or given as text means the same on both."""
    source_db.execute(ORDERS)
    with hostile_settings(source_db, target_db):
        migrate = start_migrate(pgtide, source_db, target_db)
        every_kind(source_db, target_db, migrate)


def every_kind(source_db, target_db, migrate):
    try:
        with Writer(source_db) as w:
            source_db.execute("""
                ALTER TABLE orders ADD COLUMN status text NOT NULL
                  DEFAULT 'new';
                UPDATE orders SET status = 'paid' WHERE id % 7 = 0;
                ALTER TABLE orders ADD COLUMN added_at timestamptz
                  DEFAULT now();
                ALTER TABLE orders ADD COLUMN plain int;
                UPDATE orders SET plain = id WHERE id % 5 = 0;
                ALTER TABLE orders DROP COLUMN legacy;
                ALTER TABLE orders ALTER COLUMN note TYPE varchar(50);
                INSERT INTO orders (amount, note)
                  VALUES (7, repeat('x', 50));
            """)
            wait_caught_up(source_db, target_db)
            assert column_types(target_db) == column_types(source_db)
            source_db.execute("""
                ALTER TABLE orders ADD COLUMN token text
                  DEFAULT md5(random()::text);
                ALTER TABLE orders ADD COLUMN flag boolean DEFAULT true;
                ALTER TABLE orders ADD COLUMN ratio float8
                  DEFAULT random() * 1e-300;
                ALTER TABLE orders ADD COLUMN span interval
                  DEFAULT '1 year 2 mons 3 days 04:05:06.789';
                ALTER TABLE orders ADD COLUMN raw bytea DEFAULT '\\x00ff5c';
                ALTER TABLE orders ALTER COLUMN amount TYPE bigint;
                INSERT INTO orders (amount, status)
                  VALUES (5000000000, 'big');
            """)
            wait_caught_up(source_db, target_db)
            assert w.count > 0
        wait_caught_up(source_db, target_db)
        assert column_types(target_db) == column_types(source_db)
        assert_same_content(source_db, target_db)
        assert migrate.poll() is None, migrate.read_stderr()
    finally:
        assert migrate.stop() == 0, migrate.read_stderr()


def test_what_the_stream_cannot_tell_stops_and_goes_on_once_done(
        pgtide, source_db, target_db):
    source_db.execute(ORDERS)
    migrate = start_migrate(pgtide, source_db, target_db)
    source_db.execute("""
        ALTER TABLE orders RENAME COLUMN legacy TO origin;
        INSERT INTO orders (amount, origin) VALUES (1, 'after the rename');
    """)
    assert migrate.wait(60) != 0
    err = migrate.read_stderr()
    assert "cannot tell a rename from a drop and an add" in err, err
    assert "RENAME COLUMN legacy TO origin" in err, err
    # nothing of the transaction reached the target
    assert target_db.query_one("SELECT count(*) FROM orders") == 300
    # the user says which it was; the same change then applies
    target_db.execute("ALTER TABLE orders RENAME COLUMN legacy TO origin")
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)

    # a serial column's default needs a sequence the target lacks
    source_db.execute("""
        ALTER TABLE orders ADD COLUMN seq bigserial;
        INSERT INTO orders (amount) VALUES (2);
    """)
    assert migrate.wait(60) != 0
    err = migrate.read_stderr()
    assert "new column seq of public.orders has the default" in err, err
    assert "orders_seq_seq" in err, err
    target_db.execute("CREATE SEQUENCE orders_seq_seq")
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    # each row's own value, read from the source
    assert_same_content(source_db, target_db)

    # a narrowing is never applied by itself
    source_db.execute("""
        ALTER TABLE orders ALTER COLUMN amount TYPE smallint;
        INSERT INTO orders (amount) VALUES (3);
    """)
    assert migrate.wait(60) != 0
    err = migrate.read_stderr()
    assert "changed type from integer to smallint" in err, err
    assert "ALTER COLUMN amount TYPE smallint" in err, err
    target_db.execute("ALTER TABLE orders ALTER COLUMN amount TYPE smallint")
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)

    # rows without a key cannot be matched to be given their values
    source_db.execute("""
        ALTER TABLE log ADD COLUMN r float8 DEFAULT random();
        INSERT INTO log VALUES (11);
    """)
    assert migrate.wait(60) != 0
    err = migrate.read_stderr()
    assert "column r was added to source table public.log" in err, err
    assert "no key to match them" in err, err


@pytest.mark.parametrize("change", ["ADD COLUMN extra text DEFAULT 'x'",
                                    "DROP COLUMN legacy"])
def test_kill_between_the_relation_and_its_change(pgtide, source_db, target_db,
                                                  change):
    """pgtide dies after the target's DDL is queued in the batch and before
    it commits: the DDL and the changes vanish together, and the next run
    (a new process, which has not seen the old description) applies both
    exactly once."""
    source_db.execute(ORDERS)
    env = {"PGTIDE_FAULT": "apply.follow.changed"}
    migrate = start_migrate(pgtide, source_db, target_db, env=env)
    with Writer(source_db) as w:
        # the writer's changes first describe the table as it was
        wait_caught_up(source_db, target_db)
        source_db.execute(f"ALTER TABLE orders {change}")
        assert migrate.wait(60) == -9, migrate.read_stderr()
        migrate = start_migrate(pgtide, source_db, target_db)
        wait_caught_up(source_db, target_db)
        assert w.count > 0
    wait_caught_up(source_db, target_db)
    assert column_types(target_db) == column_types(source_db)
    assert_same_content(source_db, target_db)
    assert migrate.stop() == 0, migrate.read_stderr()
