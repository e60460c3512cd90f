"""Several sources into one target (docs/merging.md): two tasks, each from a
database of its own, write one target table, each naming its rows with a
row filter. Both load and stream at once under writes; each validates and
cuts over against its own rows alone. A task whose rows the target holds
already, or whose keys are there, or that has no filter or would overwrite
a key, is refused before it changes anything."""
import pytest

from cdc_helpers import wait_caught_up
from conftest import Database
from test_cutover import make_role
from test_shard import rows

TABLE = """
    CREATE TABLE orders (id bigint PRIMARY KEY, region text NOT NULL,
                         total numeric, note text);
"""


@pytest.fixture
def second_source(pg_source_server, request):
    name = pg_source_server.create_database(
        f"merge_{abs(hash(request.node.name)) % 10**8}")
    db = Database(pg_source_server, name)
    yield db
    db.drop()


def task_file(tmp_path, name, source_db, target_db, region=None, extra=""):
    text = (f"task: {name}\nsource: {source_db.uri}\ntarget: {target_db.uri}\n"
            "schema:\n  mode: existing\n" + extra)
    if region is not None:
        text += f"filters:\n  public.orders: region = '{region}'\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def fill(db, first, region, n=400):
    db.execute(TABLE + f"""
        INSERT INTO orders SELECT g, '{region}', g * 1.5, repeat('x', g % 40)
          FROM generate_series({first}, {first + n - 1}) g;
    """)


def writes(db, first, region):
    db.execute(f"""
        INSERT INTO orders SELECT g, '{region}', g, 'new'
          FROM generate_series({first + 1000}, {first + 1099}) g;
        UPDATE orders SET total = total + 1 WHERE id % 7 = 0;
        DELETE FROM orders WHERE id % 11 = 0;
        -- out of the task's filter: gone from the target
        UPDATE orders SET region = 'gone' WHERE id % 13 = 0;
    """)


def expected(db, region):
    return [r for r in rows(db, "orders") if r[1] == region]


def test_two_sources_share_one_target_table_and_each_sees_its_own(
        pgtide, source_db, second_source, target_db, tmp_path):
    eu, us = source_db, second_source
    fill(eu, 1, "eu")
    fill(us, 100001, "us")
    target_db.execute(TABLE)
    a = task_file(tmp_path, "a", eu, target_db, "eu")
    b = task_file(tmp_path, "b", us, target_db, "us")
    pa = pgtide.start("migrate", "--config", a)
    pa.wait_for_output(r"streaming from slot", timeout=120)
    # b loads into a table that a writes: its share is checked, then
    # loaded without touching a's rows
    pb = pgtide.start("migrate", "--config", b)
    pb.wait_for_output(r"streaming from slot", timeout=120)
    writes(eu, 1, "eu")
    writes(us, 100001, "us")
    wait_caught_up(eu, target_db, slot="pgtide_a", origin="pgtide_a")
    wait_caught_up(us, target_db, slot="pgtide_b", origin="pgtide_b")
    assert sorted(rows(target_db, "orders"), key=repr) == sorted(
        expected(eu, "eu") + expected(us, "us"), key=repr)

    # each task validates against its own rows only
    for path in (a, b):
        r = pgtide.run("validate", "--config", path)
        assert r.returncode == 0, r.stdout + r.stderr

    # refused before anything changes, each naming the table and the cause
    before = rows(target_db, "orders")
    third = task_file(tmp_path, "c", us, target_db, "us")
    r = pgtide.run("copy", "--config", third)
    assert r.returncode == 4, r.stderr
    assert "rows of target table \"public\".\"orders\", which another task " \
        "writes, fall in this task's row filter" in r.stderr, r.stderr
    us.execute("INSERT INTO orders VALUES"
               " (5, 'apac', 1, 'clash')")
    clash = task_file(tmp_path, "d", us, target_db, "apac")
    r = pgtide.run("copy", "--config", clash)
    assert r.returncode == 4, r.stderr
    assert "1 keys of this task's rows of \"public\".\"orders\" are on " \
        "target table \"public\".\"orders\" already, which another task " \
        "writes (the first: (5))" in r.stderr, r.stderr
    whole = task_file(tmp_path, "e", us, target_db)
    r = pgtide.run("copy", "--config", whole)
    assert r.returncode == 2, r.stderr
    assert "is written by task \"a\" too, and this task has no row filter " \
        "on it" in r.stderr, r.stderr
    upsert = task_file(tmp_path, "f", us, target_db, "apac",
                       extra="cdc:\n  on_conflict: upsert\n")
    r = pgtide.run("copy", "--config", upsert)
    assert r.returncode == 2, r.stderr
    assert "with on_conflict upsert this task would overwrite a key the " \
        "other wrote, silently" in r.stderr, r.stderr
    assert rows(target_db, "orders") == before
    assert us.query_one("SELECT count(*) FROM pg_replication_slots WHERE"
                        " slot_name NOT IN ('pgtide_a', 'pgtide_b')") == 0

    # a DELETE of a key only the other task holds on the target (its row
    # never was b's) leaves that row alone
    us.execute("DELETE FROM orders WHERE id = 5")
    wait_caught_up(us, target_db, slot="pgtide_b", origin="pgtide_b")
    assert target_db.query_one("SELECT region FROM orders WHERE id = 5") \
        == "eu"
    # the same from a, whose stream started before b shared the table: a
    # row outside a's filter with a key of b's, then deleted on a's source
    eu.execute("INSERT INTO orders VALUES (100003, 'gone', 0, 'x');"
               " DELETE FROM orders WHERE id = 100003")
    wait_caught_up(eu, target_db, slot="pgtide_a", origin="pgtide_a")
    assert target_db.query_one(
        "SELECT region FROM orders WHERE id = 100003") == "us"

    # a cutover of one task: its final validation reads only its rows, and
    # the other task keeps streaming
    make_role(eu, "app_merge")
    r = pgtide.run("cutover", "--config", a, "--fence", "read_only",
                   "--fence-role", "app_merge", "--final-validation", "full")
    assert r.returncode == 0, r.stderr
    assert pa.wait(60) == 0, pa.read_stderr()
    us.execute("UPDATE orders SET note = 'after' WHERE id = 100002")
    wait_caught_up(us, target_db, slot="pgtide_b", origin="pgtide_b")
    assert sorted(rows(target_db, "orders"), key=repr) == sorted(
        expected(eu, "eu") + expected(us, "us"), key=repr)
    # a TRUNCATE on b's source empties b's rows alone
    us.execute("TRUNCATE orders")
    wait_caught_up(us, target_db, slot="pgtide_b", origin="pgtide_b")
    assert sorted(rows(target_db, "orders"), key=repr) == sorted(
        expected(eu, "eu"), key=repr)
    assert pb.stop() == 0, pb.read_stderr()
