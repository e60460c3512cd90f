"""Sharding one source into several targets (docs/sharding.md): the task
file's targets and shard rules are checked whole before anything connects,
each bad rule one error naming the file, line and key; check, copy and
migrate then name a table, column, type or target that cannot work before
anything moves; copy loads each target with exactly the rows its rules
route there (hash, list, range, a reference table, per-table rules), and
resumes after a kill -9 with nothing lost or doubled; validate compares
each target with its share of the source; a command that cannot
route rows to several targets yet refuses the file instead of running
against one of them; and the documented hash is what SQL on the source
computes."""
import contextlib
import hashlib
import json
import re
import signal

import pytest

from conftest import Database
from helpers import hostile_settings

SOURCE = """
    CREATE TABLE accounts (account_id bigint PRIMARY KEY, name text);
    INSERT INTO accounts SELECT g, 'a' || g FROM generate_series(1, 50) g;
"""


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("pgtide: error:")]


def target_index(key_text, n):
    """docs/sharding.md's hash, in Python."""
    return int(hashlib.md5(key_text.encode()).hexdigest()[:8], 16) % n


@pytest.fixture
def targets(pg_target_server, request):
    """Three target databases, dropped afterwards."""
    dbs = []
    for i in range(3):
        name = pg_target_server.create_database(
            f"shard{i + 1}_{abs(hash(request.node.name)) % 10**8}")
        dbs.append(Database(pg_target_server, name))
    yield dbs
    for db in dbs:
        db.drop()


def task_file(tmp_path, source_db, targets, shard, extra="",
              name="split.yaml"):
    lines = ["task: split", f"source: {source_db.uri}", "targets:"]
    lines += [f"  shard{i + 1}: {db.uri}" for i, db in enumerate(targets)]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" + extra + "shard:\n" + shard)
    return str(path)


def assert_nothing_touched(source_db, targets):
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    for db in targets:
        assert db.query_one("SELECT count(*) FROM pg_namespace"
                            " WHERE nspname = 'pgtide'") == 0
        assert db.query_one("SELECT count(*) FROM pg_tables"
                            " WHERE schemaname = 'public'") == 0


BAD = [
    ("  key: account_id\n  method: list\n",
     "split.yaml: key shard.method: method list needs shard.values"),
    ("  key: account_id\n  method: list\n  values:\n"
     "    shard1: \"1, 2\"\n    shard2: \"3\"\n    shard3: \"2\"\n",
     "split.yaml:11: key shard.values: value \"2\" is given to targets "
     "shard1 and shard3"),
    ("  key: account_id\n  method: range\n  bounds:\n"
     "    shard1: ..100\n    shard2: 50..200\n    shard3: 200..\n",
     "split.yaml:11: key shard.bounds: the bounds of targets shard1 and "
     "shard2 overlap"),
    ("  key: account_id\n  tables:\n    public.plans: target shard7\n",
     "split.yaml:10: key shard.tables: table public.plans: \"shard7\" is not "
     "a target"),
    ("  method: hash\n",
     "split.yaml:4: key targets: several targets need shard.key"),
]


def test_bad_rules_are_one_error_before_anything_moves(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(SOURCE)
    for shard, message in BAD:
        path = task_file(tmp_path, source_db, targets, shard)
        for command in ("check", "copy", "migrate"):
            r = pgtide.run(command, "--config", path)
            assert r.returncode == 2, r.stderr
            [line] = error_lines(r.stderr)
            assert line == "pgtide: error: " + message.replace(
                "split.yaml", path), line
    assert_nothing_touched(source_db, targets)


def test_names_and_targets_that_clash_are_refused(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(SOURCE)
    shard = "  key: account_id\n"
    path = tmp_path / "split.yaml"

    # a target name that cannot name state and origins
    path.write_text(f"source: {source_db.uri}\ntargets:\n"
                    f"  Shard-1: {targets[0].uri}\n  shard2: {targets[1].uri}\n"
                    "shard:\n" + shard)
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 2
    assert error_lines(r.stderr) == [
        f"pgtide: error: {path}:3: key targets: invalid target name "
        "\"Shard-1\""]
    # one database twice
    path.write_text(f"source: {source_db.uri}\ntargets:\n"
                    f"  shard1: {targets[0].uri}\n  shard2: {targets[0].uri}\n"
                    "shard:\n" + shard)
    r = pgtide.run("copy", "--config", path)
    assert error_lines(r.stderr) == [
        f"pgtide: error: {path}:4: key targets: targets shard1 and shard2 "
        "have the same connection string"]
    # target and targets together, from the file or the command line
    r = pgtide.run("copy", "--config",
                   task_file(tmp_path, source_db, targets, shard),
                   "--target", targets[0].uri)
    assert r.returncode == 2
    assert error_lines(r.stderr) == [
        "pgtide: error: target and targets cannot both be given"]
    # a shard section without targets
    path.write_text(f"source: {source_db.uri}\ntarget: {targets[0].uri}\n"
                    "shard:\n" + shard)
    r = pgtide.run("copy", "--config", path)
    assert error_lines(r.stderr) == [
        "pgtide: error: the shard section needs targets"]
    assert_nothing_touched(source_db, targets)


def test_commands_before_the_task_exists_name_the_target(
        pgtide, source_db, targets, tmp_path):
    """cutover and follow before any migrate name the first target without
    the task, changing nothing; spacing sequences needs several targets."""
    source_db.execute(SOURCE)
    path = task_file(tmp_path, source_db, targets,
                     "  key: account_id\n  method: hash\n"
                     "  tables:\n    public.plans: all\n")
    r = pgtide.run("cutover", "--config", path, "--fence-role", "postgres")
    assert r.returncode == 2, r.stderr
    assert error_lines(r.stderr) == [
        "pgtide: error: target shard1: no task \"split\" on the target"]
    assert_nothing_touched(source_db, targets)
    # follow runs a process per target, each refusing a task never loaded
    r = pgtide.run("follow", "--config", path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("task \"split\" has no full load to follow") == 3
    # whichever process exits first is named
    assert re.search(r"target shard[123] stopped with exit code 2", r.stderr), \
        r.stderr
    # spacing sequences needs several targets
    r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                   targets[0].uri, "--sequence-spacing", "modulo")
    assert r.returncode == 2, r.stderr
    assert error_lines(r.stderr) == [
        "pgtide: error: cutover.sequence_spacing spaces the sequences of "
        "several targets, and the task has one"]

    # the documented hash, computed by SQL on the source, is Python's
    rows = source_db.query(
        "SELECT account_id::text, ('x' || lpad(substr(md5(account_id::text),"
        " 1, 8), 16, '0'))::bit(64)::bigint % 3 FROM accounts"
        " UNION ALL SELECT 'acme', ('x' || lpad(substr(md5('acme'), 1, 8),"
        " 16, '0'))::bit(64)::bigint % 3")
    assert len(rows) == 51
    for key, index in rows:
        assert index == target_index(key, 3), key
    assert target_index("42", 3) == 1   # the worked example


ROUTED = """
    CREATE TABLE accounts (account_id bigint PRIMARY KEY, name text);
    CREATE TABLE orders (id int PRIMARY KEY, account_id bigint NOT NULL);
    CREATE TABLE plans (id int PRIMARY KEY, name text);
    CREATE TABLE audit_2024 (id int PRIMARY KEY, account_id bigint);
    CREATE TABLE users (id uuid PRIMARY KEY, email text);
"""


def test_check_routes_every_table_and_names_reference_tables(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(ROUTED)
    path = task_file(tmp_path, source_db, targets,
                     "  key: account_id\n  tables:\n"
                     "    public.audit_*: target shard3\n"
                     "    public.users: key id\n")
    r = pgtide.run("check", "--config", path)
    assert r.returncode == 0, r.stderr
    plan, _, checks = r.stdout.partition("target shard1:\n")
    assert sorted(plan.splitlines()) == sorted([
        '"public"."accounts": each row to the target of its account_id '
        "(bigint)",
        '"public"."orders": each row to the target of its account_id '
        "(bigint)",
        '"public"."plans": every row to every target (a reference table: '
        "no routing column)",
        '"public"."audit_2024": every row to shard3, by rule public.audit_*',
        '"public"."users": each row to the target of its id (uuid), by rule '
        "public.users",
    ])
    # then each target's own check, under its name
    for i, db in enumerate(targets):
        assert f"/{db.name}: 0 blockers" in checks, checks
        if i > 0:
            assert f"target shard{i + 1}:\n" in checks, checks
    r = pgtide.run("check", "--config", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sorted(doc["targets"]) == ["shard1", "shard2", "shard3"], doc
    assert_nothing_touched(source_db, targets)


def test_tables_types_and_targets_that_cannot_work_are_named(
        pgtide, source_db, targets, tmp_path):
    """Each is one error from check, copy and migrate, after connecting and
    before anything moves."""
    source_db.execute(ROUTED + """
        CREATE TABLE invoices (id int PRIMARY KEY, account_id numeric);
    """)
    cases = [
        (task_file(tmp_path, source_db, targets,
                   "  key: account_id\n  tables:\n"
                   "    public.users: key user_id\n    public.invoices: all\n",
                   name="column.yaml"),
         "table public.users has no column user_id, which rule public.users "
         "of shard.tables routes it by"),
        (task_file(tmp_path, source_db, targets, "  key: account_id\n",
                   name="type.yaml"),
         'table "public"."invoices", column account_id: a key of type '
         "numeric cannot be routed by its text form"),
        (task_file(tmp_path, source_db, targets,
                   "  key: account_id\n  method: lookup\n"
                   "  lookup: public.placement(account_id, shard)\n"
                   "  tables:\n    public.invoices: all\n",
                   name="lookup.yaml"),
         "lookup table public.placement of shard.lookup does not exist on "
         "the source"),
    ]
    # two strings that reach one database
    same = list(targets)
    same[2] = Database(targets[0].server, targets[0].name)
    path = tmp_path / "same.yaml"
    path.write_text(
        f"source: {source_db.uri}\ntargets:\n"
        + "".join(f"  shard{i + 1}: {db.uri}\n" for i, db in enumerate(same[:2]))
        + f"  shard3: {targets[0].uri}?application_name=other\n"
        "shard:\n  key: account_id\n  tables:\n    public.invoices: all\n")
    cases.append((str(path), "targets shard1 and shard3 are one database "
                  f"(127.0.0.1:{targets[0].server.port}/{targets[0].name})"))
    # a target that is the source
    path = tmp_path / "source.yaml"
    path.write_text(
        f"source: {source_db.uri}\ntargets:\n"
        f"  shard1: {targets[0].uri}\n"
        f"  shard2: {source_db.uri}?application_name=other\n"
        "shard:\n  key: account_id\n  tables:\n    public.invoices: all\n")
    cases.append((str(path), "target shard2 "
                  f"(127.0.0.1:{source_db.server.port}/{source_db.name}) is "
                  "the source database"))
    for path, message in cases:
        for command in ("check", "copy", "migrate"):
            r = pgtide.run(command, "--config", path)
            assert r.returncode == 2, (command, r.stderr)
            assert error_lines(r.stderr) == ["pgtide: error: " + message], \
                command
            assert r.stdout == ""
    assert_nothing_touched(source_db, targets)


LOADED = """
    CREATE TABLE accounts (account_id bigint PRIMARY KEY, name text);
    INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 300) g;
    CREATE TABLE orders (id int PRIMARY KEY, account_id bigint NOT NULL,
                         total numeric);
    INSERT INTO orders SELECT g, g % 300 + 1, g * 1.5
      FROM generate_series(1, 3000) g;
    CREATE TABLE plans (id int PRIMARY KEY, name text);
    INSERT INTO plans VALUES (1, 'free'), (2, 'pro'), (3, 'it''s big');
    CREATE TABLE audit (id int PRIMARY KEY, note text);
    INSERT INTO audit SELECT g, 'n' || g FROM generate_series(1, 40) g;
    CREATE TABLE users (id int PRIMARY KEY, email text);
    INSERT INTO users SELECT g, 'u' || g || '@x' FROM generate_series(1, 200) g;
"""



def test_foreign_keys_that_would_cross_targets_are_named(
        pgtide, source_db, targets, tmp_path):
    """A foreign key whose rows could land on another target than the rows
    they reference could not be built there after the load: check, copy
    and migrate name each before anything moves. Keys that hold on every
    target (between tables routed by the same key, or to a reference table)
    are built."""
    source_db.execute(ROUTED + """
        ALTER TABLE orders ADD FOREIGN KEY (account_id) REFERENCES accounts;
        ALTER TABLE accounts ADD COLUMN plan_id int REFERENCES plans;
        CREATE TABLE notes (id int PRIMARY KEY, author bigint REFERENCES accounts);
        CREATE TABLE pins (id int PRIMARY KEY, account_id bigint,
                           order_id int REFERENCES orders);
    """)
    path = task_file(tmp_path, source_db, targets, "  key: account_id\n")
    for command in ("check", "copy", "migrate"):
        r = pgtide.run(command, "--config", path)
        assert r.returncode == 2, (command, r.stderr)
        assert error_lines(r.stderr) == [
            "pgtide: error: 2 foreign keys would reference rows on another "
            "target: notes_author_fkey on public.notes (to public.accounts); "
            "pins_order_id_fkey on public.pins (to public.orders)"], command
    assert_nothing_touched(source_db, targets)
    source_db.execute("DROP TABLE notes, pins")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    for db in targets:
        assert db.query_one(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n"
            " ON n.oid = c.connamespace WHERE contype = 'f'"
            " AND nspname = 'public'") == 2

def rows(db, table):
    return sorted(db.query(f"SELECT * FROM {table}"), key=repr)


def assert_routed(source_db, targets, table, where):
    """Each target holds exactly the source rows where(key_text, i) holds."""
    every = rows(source_db, table)
    for i, db in enumerate(targets):
        want = sorted((r for r in every if where(r, i)), key=repr)
        assert rows(db, table) == want, (table, i)


HASHED = ("  key: account_id\n  method: hash\n  tables:\n"
          "    public.audit: target shard2\n    public.users: key id\n")


def assert_hashed_image(source_db, targets):
    """Each target holds exactly the rows HASHED routes to it."""
    def by_key(col):
        return lambda row, i: target_index(str(row[col]), 3) == i
    assert_routed(source_db, targets, "accounts", by_key(0))
    assert_routed(source_db, targets, "orders", by_key(1))
    assert_routed(source_db, targets, "users", by_key(0))
    assert_routed(source_db, targets, "plans", lambda row, i: True)
    assert_routed(source_db, targets, "audit", lambda row, i: i == 1)


def test_copy_loads_each_target_with_exactly_its_rows(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets, HASHED)
    # hostile settings on the source and every target: a key's text form,
    # which the hash reads, must not change with them
    with hostile_settings(source_db, targets[0]), \
            hostile_settings(source_db, targets[1]), \
            hostile_settings(source_db, targets[2]):
        r = pgtide.run("copy", "--config", path)
        assert r.returncode == 0, r.stderr
        assert_hashed_image(source_db, targets)
    # one snapshot, one schema dump: the other targets take the first's
    assert r.stderr.count("as dumped for the first target") == 2, r.stderr
    # every row somewhere: the shares add up to the source
    assert sum(db.query_one("SELECT count(*) FROM orders")
               for db in targets) == 3000
    for db in targets:
        # indexes are built on every target, and each keeps its own state
        assert db.query_one("SELECT count(*) FROM pg_indexes"
                            " WHERE tablename = 'orders'") == 1
        assert db.query_one("SELECT count(*) FROM pg_namespace"
                            " WHERE nspname = 'pgtide'") == 1
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    # run again: every target is loaded, nothing to do
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("has already finished its full load") == 3
    assert sum(db.query_one("SELECT count(*) FROM orders")
               for db in targets) == 3000
    # status shows each target's state in turn
    r = pgtide.run("status", "--config", path)
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if l.startswith("target ")] == [
        "target shard1:", "target shard2:", "target shard3:"]
    assert r.stdout.count("loaded") >= 3, r.stdout
    # validate compares each target with its share of the source
    validate_each_target_against_its_share(pgtide, source_db, targets, path)
    # clean removes the task from every target
    r = pgtide.run("clean", "--config", path)
    assert r.returncode == 0, r.stderr
    for db in targets:
        assert db.query_one("SELECT count(*) FROM pg_namespace"
                            " WHERE nspname = 'pgtide'") == 0


def test_list_range_and_lookup_route_each_row(
        pgtide, source_db, targets, tmp_path):
    source_db.execute("""
        CREATE TABLE stores (id int PRIMARY KEY, region text NOT NULL,
                             account_id bigint NOT NULL);
        INSERT INTO stores SELECT g, (ARRAY['eu', 'uk', 'us', 'apac',
                                            'o''hare'])[g % 5 + 1], g * 7
          FROM generate_series(1, 500) g;
    """)
    regions = {0: {"eu", "uk"}, 1: {"us"}, 2: {"apac", "o'hare"}}
    path = task_file(tmp_path, source_db, targets,
                     "  key: region\n  method: list\n  values:\n"
                     "    shard1: \"eu, uk\"\n    shard2: us\n"
                     "    shard3: \"apac, o'hare\"\n")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    assert_routed(source_db, targets, "stores",
                  lambda row, i: row[1] in regions[i])
    assert sum(db.query_one("SELECT count(*) FROM stores")
               for db in targets) == 500

    # the same rows by range of account_id, as another task into new
    # databases
    for db in targets:
        db.execute("DROP SCHEMA pgtide CASCADE; DROP TABLE stores")
    path = task_file(tmp_path, source_db, targets,
                     "  key: account_id\n  method: range\n  bounds:\n"
                     "    shard1: ..1000\n    shard2: 1000..2100\n"
                     "    shard3: 2100..\n", name="range.yaml")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    bounds = {0: (None, 1000), 1: (1000, 2100), 2: (2100, None)}

    def in_range(row, i):
        lo, hi = bounds[i]
        return (lo is None or row[2] >= lo) and (hi is None or row[2] < hi)
    assert_routed(source_db, targets, "stores", in_range)

    # and by a lookup table on the source (itself a reference table here)
    for db in targets:
        db.execute("DROP SCHEMA pgtide CASCADE; DROP TABLE stores")
    source_db.execute("""
        CREATE TABLE placement (store int PRIMARY KEY, shard text NOT NULL);
        INSERT INTO placement SELECT id, 'shard' || (id % 3 + 1) FROM stores;
    """)
    path = task_file(tmp_path, source_db, targets,
                     "  key: id\n  method: lookup\n"
                     "  lookup: public.placement(store, shard)\n"
                     "  tables:\n    public.placement: all\n",
                     name="lookup.yaml")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    assert_routed(source_db, targets, "stores", lambda row, i: row[0] % 3 == i)
    assert_routed(source_db, targets, "placement", lambda row, i: True)


def test_rows_of_no_target_are_named_by_check_and_stop_the_copy(
        pgtide, source_db, targets, tmp_path):
    """check reads every routed row and names a table with a key of no
    target before anything moves; copy, which routes every row itself,
    stops at it, naming the table, with no row of that table anywhere, and
    once the row has a key the same command finishes the load exactly."""
    source_db.execute("""
        CREATE TABLE stores (id int PRIMARY KEY, region text);
        INSERT INTO stores VALUES (1, 'eu'), (2, 'us'), (3, 'mars');
        CREATE TABLE plans (id int PRIMARY KEY);
        INSERT INTO plans VALUES (1), (2);
    """)
    path = task_file(tmp_path, source_db, targets,
                     "  key: region\n  method: list\n  values:\n"
                     "    shard1: eu\n    shard2: us\n    shard3: apac\n")
    r = pgtide.run("check", "--config", path)
    assert r.returncode == 2, r.stderr
    assert error_lines(r.stderr) == [
        'pgtide: error: table "public"."stores" has rows whose region '
        "routes to no target"]
    assert_nothing_touched(source_db, targets)
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 2, r.stderr
    assert error_lines(r.stderr) == [
        'pgtide: error: table "public"."stores", chunk 1 of 1: a row\'s key '
        "is in no target's shard.values"], r.stderr
    for db in targets:
        assert db.query_one("SELECT count(*) FROM stores") == 0
    # a NULL key routes nowhere either
    source_db.execute("UPDATE stores SET region = NULL WHERE id = 3")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 2, r.stderr
    assert "a row's key is NULL, which names no target" in r.stderr
    source_db.execute("UPDATE stores SET region = 'apac' WHERE id = 3")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    regions = {0: {"eu"}, 1: {"us"}, 2: {"apac"}}
    assert_routed(source_db, targets, "stores",
                  lambda row, i: row[1] in regions[i])
    assert_routed(source_db, targets, "plans", lambda row, i: True)


@pytest.mark.parametrize("fault", ["copy.chunk.before_commit",
                                   "copy.chunk.target_committed"])
def test_kill_during_the_sharded_load_then_resume(
        pgtide, source_db, targets, tmp_path, fault):
    """Every chunk is read once and committed on each target in turn: killed
    before a chunk commits anywhere, or after it committed on one target
    and not the others, every target resumes its own unfinished chunks,
    nothing lost or doubled anywhere."""
    source_db.execute(LOADED + """
        INSERT INTO orders SELECT g, g % 300 + 1, g * 1.5
          FROM generate_series(3001, 20000) g;
    """)
    path = task_file(tmp_path, source_db, targets, HASHED)
    split = ["--split-tables-larger-than", "128kB", "--jobs", "2"]
    r = pgtide.run("copy", "--config", path, *split)
    assert r.returncode == 0, r.stderr
    assert "each chunk read once and its rows sent to 3 targets" in r.stderr
    # every target records every chunk (its share of it)
    chunks = targets[0].query_one("SELECT count(*) FROM pgtide.chunks")
    assert chunks > 6
    for db in targets:
        assert db.query_one("SELECT count(*) FROM pgtide.chunks") == chunks
        db.execute("DROP SCHEMA pgtide CASCADE;"
                   " DROP TABLE accounts, orders, plans, audit, users")
    r = pgtide.run("copy", "--config", path, *split, env={
        "PGTIDE_FAULT": f"{fault}@{chunks // 2 + 1}"})
    assert r.returncode == -9, r.stderr
    recorded = [db.query_one("SELECT count(*) FROM pgtide.chunks")
                for db in targets]
    assert all(0 < n < chunks for n in recorded), recorded
    if fault == "copy.chunk.target_committed":
        # the chunk in flight is on some targets and not on the others
        assert len(set(recorded)) > 1, recorded

    r = pgtide.run("copy", "--config", path, *split)
    assert r.returncode == 0, r.stderr
    assert_hashed_image(source_db, targets)


def test_a_second_sharded_copy_is_refused_at_once(
        pgtide, source_db, targets, tmp_path):
    """The load of several targets holds every target's lock: a second
    copy of the task is refused (exit 8) naming the target whose lock it
    could not take, and changes nothing; the first finishes exactly."""
    source_db.execute(LOADED + """
        INSERT INTO orders SELECT g, g % 300 + 1, g * 1.5
          FROM generate_series(3001, 20000) g;
    """)
    path = task_file(tmp_path, source_db, targets, HASHED)
    first = pgtide.start("copy", "--config", path,
                         env={"PGTIDE_FAULT": "copy.row@5000:sleep=4000"})
    first.wait_for_output(r"fault point copy.row: sleeping", timeout=60)
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 8, r.stderr
    assert error_lines(r.stderr)[0].startswith(
        "pgtide: error: target shard1: "), r.stderr
    assert first.wait(120) == 0, first.read_stderr()
    assert_hashed_image(source_db, targets)


def move_order_away(source_db, targets, back=False):
    """Moves order 7 from the target its key names to the next one (or,
    back, returns it): returns both targets' indexes."""
    order = source_db.query("SELECT id, account_id, total FROM orders"
                            " WHERE id = 7")[0]
    home = target_index(str(order[1]), 3)
    away = (home + 1) % 3
    frm, to = (away, home) if back else (home, away)
    targets[frm].execute("DELETE FROM orders WHERE id = 7")
    targets[to].execute("INSERT INTO orders VALUES (%s, %s, %s)", order)
    return home, away


def validate_each_target_against_its_share(pgtide, source_db, targets, path):
    r = pgtide.run("validate", "--config", path)
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if l.startswith("target ")] == [
        "target shard1:", "target shard2:", "target shard3:"]

    # a row moved to a target its key does not name: missing on one
    # target, extra on the other; a reference row lost on one target
    home, away = move_order_away(source_db, targets)
    targets[2].execute("DELETE FROM plans WHERE id = 2")
    r = pgtide.run("validate", "--config", path)
    assert r.returncode == 7, r.stderr
    assert error_lines(r.stderr)[-1] == (
        f"pgtide: error: {len({home, away, 2})} of 3 targets "
        "differ from their share of the source")
    for i, db in enumerate(targets):
        differences = db.query_one(
            "SELECT count(*) FROM pgtide.validation_differences"
            " WHERE run_id = (SELECT max(id) FROM pgtide.validation_runs)")
        want = (i in (home, away)) + (i == 2)
        assert differences == want, i


def test_sighup_during_the_sharded_load_rereads_only_the_caps(
        pgtide, source_db, targets, tmp_path):
    """The task file names several targets while the load runs as the
    first target's share of it: a SIGHUP applies the new caps and calls
    nothing else changed."""
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, pad text);
        INSERT INTO t SELECT g, 'p' FROM generate_series(1, 3000) g;
    """)
    throttled = "throttle:\n  rows_per_second: 100\n"
    path = task_file(tmp_path, source_db, targets, "  key: id\n",
                     extra=throttled)
    p = pgtide.start("copy", "--config", path)
    p.wait_for_output(r"each chunk read once", timeout=60)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("rows_per_second: 100", "rows_per_second: 0"))
    p.send_signal(signal.SIGHUP)
    p.wait_for_output(r"SIGHUP: throttle\.rows_per_second now in force",
                      timeout=30)
    assert p.wait(120) == 0, p.read_stderr()
    log = p.read_stderr()
    assert "takes a restart" not in log and "take a restart" not in log, log
    assert log.count("throttle: 100 rows/s") == 1, log
    assert sum(db.query_one("SELECT count(*) FROM t") for db in targets) \
        == 3000


def test_a_latin1_source_hashes_non_ascii_keys_as_utf8(
        pgtide, latin1_source, targets, tmp_path):
    """The hash reads a key's UTF-8 bytes whatever the source's encoding:
    the load's router, validate's condition and the documented SQL agree on
    where a non-ASCII key of a LATIN1 database lives (md5(text) alone would
    hash its LATIN1 bytes and name another target); under hostile
    settings on the source and every target."""
    with contextlib.ExitStack() as hostile:
        for db in targets:
            hostile.enter_context(hostile_settings(latin1_source, db))
        hashed_as_utf8(pgtide, latin1_source, targets, tmp_path)


def hashed_as_utf8(pgtide, source, targets, tmp_path):
    keys = ["café", "Zürich", "naïve", "ÆØÅ", "señor", "plain", "über",
            "façade", "smørrebrød", "crème"]
    # the keys whose LATIN1 and UTF-8 bytes name different targets
    moved = [k for k in keys if target_index(k, 3) != int(hashlib.md5(
        k.encode("latin-1")).hexdigest()[:8], 16) % 3]
    assert len(moved) >= 3, moved
    source.execute("CREATE TABLE places (region text PRIMARY KEY, n int);"
                   "CREATE TABLE visits (id int PRIMARY KEY,"
                   " region text NOT NULL, note text)")
    with source.connect() as conn:
        for i, k in enumerate(keys):
            conn.execute("INSERT INTO places VALUES (%s, %s)", (k, i))
            for j in range(5):
                conn.execute("INSERT INTO visits VALUES (%s, %s, %s)",
                             (i * 10 + j, k, f"{k} {j}"))
    path = task_file(tmp_path, source, targets,
                     "  key: region\n  method: hash\n")
    r = pgtide.run("copy", "--config", path)
    assert r.returncode == 0, r.stderr
    for i, db in enumerate(targets):
        want = sorted(k for k in keys if target_index(k, 3) == i)
        assert sorted(db.query("SELECT region FROM places")) == \
            [(k,) for k in want], i
        assert db.query_one("SELECT count(*) FROM visits") == 5 * len(want)
    # validate's condition is the router's
    r = pgtide.run("validate", "--config", path)
    assert r.returncode == 0, r.stdout + r.stderr
    # the SQL docs/sharding.md gives, run on the source
    got = dict(source.query(
        "SELECT region, ('x' || lpad(substr(md5(convert_to(region::text,"
        " 'UTF8')), 1, 8), 16, '0'))::bit(64)::bigint % 3 FROM places"))
    assert got == {k: target_index(k, 3) for k in keys}

