"""Sharding one source into several targets (docs/sharding.md): the task
file's targets and shard rules are checked whole before anything connects,
each bad rule one error naming the file, line and key; a command that cannot
route rows to several targets yet refuses the file instead of running
against one of them; and the documented hash is what SQL on the source
computes."""
import hashlib

import pytest

from conftest import Database

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


def test_valid_rules_are_refused_by_commands_not_built_yet(
        pgtide, source_db, targets, tmp_path):
    """No command routes rows to several targets yet: each says so, rather
    than running against one target and ignoring the others."""
    source_db.execute(SOURCE)
    path = task_file(tmp_path, source_db, targets,
                     "  key: account_id\n  method: hash\n"
                     "  tables:\n    public.plans: all\n")
    for command in ("check", "copy", "migrate", "follow", "validate",
                    "cutover", "status", "clean"):
        r = pgtide.run(command, "--config", path)
        assert r.returncode == 2, (command, r.stderr)
        assert error_lines(r.stderr) == [
            f"pgtide: error: pgtide {command} cannot use several targets "
            "yet"], command
    assert_nothing_touched(source_db, targets)

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
    assert r.returncode == 2, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted([
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
    assert error_lines(r.stderr) == [
        "pgtide: error: pgtide check cannot use several targets yet"]
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
