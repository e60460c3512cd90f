"""Tables created on the source while the task streams join it (decision
0019): each is published, loaded from a snapshot of its own, and streamed
from that snapshot's point, with a workload writing to it throughout. A kill
at the worst moment, or a table the target cannot take yet, leaves it to
join on the next run, every row exactly once."""

import random
import threading

import psycopg
import pytest

from cdc_helpers import Workload, start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for
from helpers import hostile_settings

BASE = """
    CREATE TABLE orders (id bigserial PRIMARY KEY, amount int NOT NULL);
    INSERT INTO orders (amount) SELECT g FROM generate_series(1, 200) g;
    CREATE TABLE events (id int, region text, v int,
                         PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
    INSERT INTO events SELECT g, 'eu', g FROM generate_series(1, 50) g;
"""

FRESH = """
    CREATE TABLE "Fresh Items" (id bigserial PRIMARY KEY,
                                order_id bigint REFERENCES orders (id),
                                label text NOT NULL, payload text,
                                at timestamptz DEFAULT now(),
                                f float8 DEFAULT random() * 1e-300,
                                iv interval DEFAULT random() * interval '1 day 2 s',
                                b bytea DEFAULT '\\x00ff5c'::bytea,
                                d date DEFAULT current_date - 30000);
    CREATE INDEX ON "Fresh Items" (label);
    INSERT INTO "Fresh Items" (order_id, label, payload)
      SELECT g, 'l' || g, repeat('p', g * 40) FROM generate_series(1, 150) g;
    CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
    INSERT INTO events SELECT g, 'us', g FROM generate_series(1, 40) g;
"""

TABLES = ["public.orders", 'public."Fresh Items"', "public.events_eu",
          "public.events_us"]


class Writer(Workload):
    """Writes to orders throughout, and to the new tables once they exist."""

    def __init__(self, db):
        super().__init__(db)
        self.fresh = threading.Event()

    def step(self, conn):
        r = random.random()
        if not self.fresh.is_set() or r < 0.3:
            conn.execute("UPDATE orders SET amount = amount + 1 WHERE id = %s",
                         (random.randint(1, 200),))
        elif r < 0.6:
            conn.execute('INSERT INTO "Fresh Items" (order_id, label, payload)'
                         " VALUES (%s, 'w', repeat('x', 3000))",
                         (random.randint(1, 200),))
        elif r < 0.8:
            conn.execute('UPDATE "Fresh Items" SET label = label || %s'
                         " WHERE id = %s", (str(self.count % 10),
                                            random.randint(1, 150)))
        elif r < 0.9:
            conn.execute("UPDATE events SET v = v + 1"
                         " WHERE region = 'us' AND id = %s",
                         (random.randint(1, 40),))
        else:
            conn.execute('DELETE FROM "Fresh Items" WHERE id = %s',
                         (random.randint(1, 150),))


def create_fresh(source_db, writer):
    source_db.execute(FRESH)
    writer.fresh.set()


def status_table(pgtide, source_db, target_db, name):
    import json
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri, "--json")
    assert r.returncode == 0, r.stderr
    for t in json.loads(r.stdout)["tables"]:
        if t["table"] == name:
            return t
    return None


def test_tables_created_while_streaming_join_and_follow_exactly(
        pgtide, source_db, target_db):
    """A table with a key, a foreign key and TOASTed values, and a new
    partition of a partitioned table, created while a workload writes; a
    transaction that began writing to the new table before it joined
    commits only after: every row arrives once, under hostile settings on
    both sides."""
    source_db.execute(BASE)
    migrate = start_migrate(pgtide, source_db, target_db)
    with hostile_settings(source_db, target_db), Writer(source_db) as w:
        create_fresh(source_db, w)
        with psycopg.connect(source_db.uri) as held:
            held.execute('INSERT INTO "Fresh Items" (label) VALUES (\'held 1\')')
            migrate.wait_for_output(r'table "public"."Fresh Items" joins the '
                                    r'task', timeout=60)
            held.execute('INSERT INTO "Fresh Items" (label) VALUES (\'held 2\')')
            held.commit()
        migrate.wait_for_output(r'table "public"."Fresh Items" joins with',
                                timeout=60)
        migrate.wait_for_output(r"foreign keys of the joined tables were "
                                r"added NOT VALID", timeout=30)
        wait_caught_up(source_db, target_db)
    wait_caught_up(source_db, target_db)
    assert w.count > 0
    assert_same_content(source_db, target_db, TABLES)
    assert target_db.query_one(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'Fresh Items'") == 2
    t = status_table(pgtide, source_db, target_db, "public.Fresh Items")
    assert t is not None and t["state"] == "done", t
    assert migrate.stop() == 0, migrate.read_stderr()


@pytest.mark.parametrize("point", ["join.registered", "join.before_commit"])
def test_kill_during_a_new_tables_join(pgtide, source_db, target_db, point):
    """Killed after the table is registered (not yet published) or with its
    rows, schema and record in the open transaction: the next run joins it
    from a fresh snapshot before it streams, with the workload going on."""
    source_db.execute(BASE)
    migrate = start_migrate(pgtide, source_db, target_db,
                            env={"PGTIDE_FAULT": point})
    with Writer(source_db) as w:
        create_fresh(source_db, w)
        assert migrate.wait(90) == -9, migrate.read_stderr()
        assert target_db.query_one(
            "SELECT to_regclass('public.\"Fresh Items\"') IS NULL")
        migrate = start_migrate(pgtide, source_db, target_db)
        migrate.wait_for_output(r'table "public"."Fresh Items" joins with',
                                timeout=5)
        wait_caught_up(source_db, target_db)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, TABLES)
    assert migrate.stop() == 0, migrate.read_stderr()


def test_a_table_the_target_cannot_take_stops_until_it_can(
        pgtide, source_db, target_db):
    """A new table of a type the target lacks: the stream stops with the
    table and the object named, and joins once the type exists there."""
    source_db.execute(BASE)
    migrate = start_migrate(pgtide, source_db, target_db)
    source_db.execute("""
        CREATE TYPE mood AS ENUM ('calm', 'busy');
        CREATE TABLE moods (id int PRIMARY KEY, m mood);
        INSERT INTO moods VALUES (1, 'calm'), (2, 'busy');
    """)
    assert migrate.wait(90) not in (0, None)
    err = migrate.read_stderr()
    assert "joining new tables" in err and "moods" in err, err
    assert 'type "public.mood" does not exist' in err, err
    source_db.execute("INSERT INTO moods VALUES (3, 'busy')")
    target_db.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    migrate = start_migrate(pgtide, source_db, target_db)
    source_db.execute("UPDATE moods SET m = 'calm' WHERE id = 3")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, ["public.moods", "public.orders"])
    assert migrate.stop() == 0, migrate.read_stderr()


def test_a_new_table_without_a_key_is_named_not_joined(
        pgtide, source_db, target_db):
    """Its updates could not be streamed: it is warned about and listed in
    status, and nothing of it is published."""
    source_db.execute(BASE)
    migrate = start_migrate(pgtide, source_db, target_db)
    source_db.execute("CREATE TABLE keyless (v int); INSERT INTO keyless "
                      "VALUES (1)")
    migrate.wait_for_output(r'cannot join it: "public"."keyless": it has no '
                            r'primary key', timeout=60)
    wait_for(lambda: status_new_tables(pgtide, source_db, target_db)
             == ['"public"."keyless"'], 30, 0.5, "status never listed it")
    assert source_db.query_one(
        "SELECT count(*) FROM pg_publication_tables"
        " WHERE tablename = 'keyless'") == 0
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert "created after the load and cannot join the task" in r.stdout
    assert '  "public"."keyless"' in r.stdout
    assert migrate.stop() == 0, migrate.read_stderr()


def status_new_tables(pgtide, source_db, target_db):
    import json
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["new_tables"]


def test_with_existing_schema_a_new_table_joins_the_target_table_of_its_name(
        pgtide, source_db, target_db):
    """--schema existing: the target holds the table already, here
    partitioned by hash where the source's is plain (decision 0004); the
    join loads through it and the stream follows."""
    base = """
        CREATE TABLE orders (id bigserial PRIMARY KEY, amount int NOT NULL);
        INSERT INTO orders (amount) SELECT g FROM generate_series(1, 50) g;
    """
    source_db.execute(base)
    target_db.execute("CREATE TABLE orders (id bigserial PRIMARY KEY,"
                      " amount int NOT NULL)")
    migrate = start_migrate(pgtide, source_db, target_db, "--schema",
                            "existing")
    target_db.execute("""
        CREATE TABLE fresh (id int PRIMARY KEY, v text) PARTITION BY HASH (id);
        CREATE TABLE fresh_0 PARTITION OF fresh
          FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE fresh_1 PARTITION OF fresh
          FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    """)
    source_db.execute("""
        CREATE TABLE fresh (id int PRIMARY KEY, v text);
        INSERT INTO fresh SELECT g, 'v' || g FROM generate_series(1, 100) g;
    """)
    migrate.wait_for_output(r'table "public"."fresh" joins with 100 rows',
                            timeout=60)
    source_db.execute("UPDATE fresh SET v = 'later' WHERE id % 3 = 0;"
                      " DELETE FROM fresh WHERE id % 10 = 0;"
                      " INSERT INTO fresh VALUES (101, 'new')")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, ["public.orders"])
    # the target's rows are in its partitions
    rows = "SELECT id, v FROM fresh ORDER BY id"
    assert source_db.query(rows) == target_db.query(rows)
    assert len(target_db.query(rows)) == 91
    assert target_db.query_one("SELECT count(*) FROM ONLY fresh_1") > 0
    assert migrate.stop() == 0, migrate.read_stderr()


RENAMED = """
    UPDATE orders SET amount = amount + 1000 WHERE id <= 10;
    CREATE SCHEMA archive;
    ALTER TABLE orders RENAME TO "Orders v2";
    INSERT INTO "Orders v2" (amount) VALUES (7);
    ALTER TABLE "Orders v2" SET SCHEMA archive;
    INSERT INTO archive."Orders v2" (amount) VALUES (8);
    UPDATE archive."Orders v2" SET amount = -amount WHERE id = 20;
    DELETE FROM archive."Orders v2" WHERE id = 21;
"""


@pytest.mark.parametrize("point", [None, "apply.follow.renamed"])
def test_a_table_renamed_on_the_source_is_followed(
        pgtide, source_db, target_db, point):
    """A table of the task renamed, then moved to another schema, on the
    source while it streams and is written is the same table, not a new one:
    it does not join under its new name; at its first change under each new
    name the target table and the task's state take it, in the transaction
    of that change, so a kill there changes nothing; every change arrives
    once, and validate compares it under its new name."""
    source_db.execute(BASE)
    migrate = start_migrate(pgtide, source_db, target_db,
                            env={"PGTIDE_FAULT": point} if point else None)
    source_db.execute(RENAMED)
    if point:
        assert migrate.wait(60) == -9, migrate.read_stderr()
        assert target_db.query_one("SELECT to_regclass('public.orders')") \
            is not None
        migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    err = migrate.read_stderr()
    assert 'table "public"."orders" was renamed on the source to ' \
        '"public"."Orders v2"' in err, err
    assert 'table "public"."Orders v2" was renamed on the source to ' \
        '"archive"."Orders v2"' in err, err
    assert "joins" not in err, err
    assert status_new_tables(pgtide, source_db, target_db) == []
    assert target_db.query_one("SELECT to_regclass('public.orders')") is None
    assert_same_content(source_db, target_db, ['archive."Orders v2"'])
    source_db.execute('UPDATE archive."Orders v2" SET amount = 0 WHERE id < 5')
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, ['archive."Orders v2"'])
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == 0, r.stdout + r.stderr
    assert migrate.stop() == 0, migrate.read_stderr()


def test_a_renamed_table_the_rules_name_stops_the_stream(
        pgtide, source_db, target_db, tmp_path):
    """A row filter names the table by its old name: the stream cannot
    follow it, and stops at its first change under the new name, naming
    both names and why, with nothing of it applied."""
    source_db.execute(BASE)
    path = tmp_path / "task.yaml"
    path.write_text(f"task: default\nsource: {source_db.uri}\n"
                    f"target: {target_db.uri}\n"
                    "filters:\n  public.orders: amount > 0\n")
    migrate = start_migrate(pgtide, source_db, target_db, "--config",
                            str(path))
    source_db.execute('ALTER TABLE orders RENAME TO "Orders v2";'
                      ' INSERT INTO "Orders v2" (amount) VALUES (7)')
    assert migrate.wait(60) not in (0, None)
    err = migrate.read_stderr()
    assert 'table "public"."orders" of task "default" was renamed on the ' \
        'source to "public"."Orders v2"' in err, err
    assert "a row filter or the routing of the task names it" in err, err
    assert target_db.query_one("SELECT count(*) FROM orders") == 200


@pytest.mark.parametrize("lost", ["answer", "commit"])
def test_a_rename_whose_batch_may_not_have_committed_is_followed_once(
        pgtide, make_server, lost):
    """The batch that renames the target table loses its COMMIT's answer
    (the commit happened) or its COMMIT (it did not): the stream reconnects,
    finds out which from the origin, and follows the rename once, whatever
    it had noted in memory."""
    from cdc_helpers import ServerDb
    from faults import TcpProxy

    source, target = make_server("src"), make_server("tgt")
    src, tgt = ServerDb(source), ServerDb(target)
    src.execute(BASE)
    with TcpProxy(target, "tgt") as tp:
        p = pgtide.start("migrate", "--source", src.uri, "--target", tp.uri(),
                         "--progress-interval", "1")
        p.wait_for_output(r"streaming from slot", timeout=120)
        if lost == "answer":
            # the applier's COMMIT goes as an extended-protocol Parse
            tp.lose_answer("pgtide apply", after=b"RENAME TO",
                           message=b"\x00COMMIT\x00")
        src.execute(RENAMED)
        if lost == "commit":
            # the batch is cut before its COMMIT arrives
            p.wait_for_output(r'was renamed on the source to "public"', 60)
            tp.cut()
        wait_caught_up(src, tgt)
        if lost == "answer":
            assert tp.answers_lost == 1, tp.log
        src.execute('INSERT INTO archive."Orders v2" (amount) VALUES (9)')
        wait_caught_up(src, tgt)
        assert p.poll() is None, p.read_stderr()
        assert_same_content(src, tgt, ['archive."Orders v2"'])
        assert tgt.query_one("SELECT to_regclass('public.orders')") is None
        names = {r[0] for r in tgt.query(
            "SELECT src_schema || '.' || src_name FROM pgtide.tables")}
        assert "archive.Orders v2" in names and "public.orders" not in names
        assert p.stop() == 0, p.read_stderr()
