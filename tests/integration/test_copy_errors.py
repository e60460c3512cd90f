"""Bad input to pgtide copy: one clear message naming what and where, a
non-zero exit code, and nothing half-made that blocks the next run."""
import os
import subprocess

import pytest

from conftest import assert_same_content, find_bindir


def copy_args(src_uri, tgt_uri, *extra):
    return ["copy", "--source", src_uri, "--target", tgt_uri, *extra]


def pgtide_slots(db):
    return db.query_one("SELECT count(*) FROM pg_replication_slots"
                        " WHERE slot_name LIKE 'pgtide%%'")


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("pgtide: error:")]


def test_unreachable_source(pgtide, target_db):
    r = pgtide.run(*copy_args("postgresql://postgres@127.0.0.1:1/postgres",
                              target_db.uri))
    assert r.returncode == 3
    [line] = error_lines(r.stderr)
    assert "could not connect to the source database" in line
    assert "HINT:" in r.stderr


def test_wrong_password(pgtide, source_db, target_db):
    r = pgtide.run(*copy_args(source_db.uri_as("pw_user", "wrong"),
                              target_db.uri))
    assert r.returncode == 3
    [line] = error_lines(r.stderr)
    assert "password authentication failed" in line
    assert "--source" in r.stderr  # the hint says which connection string


def test_wal_level_not_logical(pgtide, make_server, target_db):
    server = make_server("replica", wal_level="replica")
    r = pgtide.run(*copy_args(server.uri(), target_db.uri))
    assert r.returncode == 3
    [line] = error_lines(r.stderr)
    assert 'wal_level is "replica"' in line
    assert "HINT: set wal_level = logical" in r.stderr
    assert target_db.query_one(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def test_no_free_replication_slot(pgtide, make_server, target_db):
    server = make_server("oneslot", max_replication_slots=1)
    server.execute("postgres", "CREATE TABLE t (id int PRIMARY KEY);"
                   " INSERT INTO t VALUES (1)")
    server.execute("postgres", "SELECT pg_create_logical_replication_slot("
                   "'someone_else', 'pgoutput')")
    r = pgtide.run(*copy_args(server.uri(), target_db.uri))
    assert r.returncode == 3
    [line] = error_lines(r.stderr)
    assert "no free replication slot" in line
    assert "max_replication_slots" in r.stderr
    # once a slot is free the same command goes through
    server.execute("postgres", "SELECT pg_drop_replication_slot('someone_else')")
    r = pgtide.run(*copy_args(server.uri(), target_db.uri))
    assert r.returncode == 0, r.stderr
    assert target_db.query("SELECT id FROM t") == [(1,)]


def test_table_pattern_matching_nothing(pgtide, source_db, target_db):
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "-t", "public.ordres"))
    # bad input, which no restart cures: a service manager must not retry it
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert 'table pattern "public.ordres" matches no table' in line
    assert pgtide_slots(source_db) == 0
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "-t", "public.orders"))
    assert r.returncode == 0, r.stderr


def test_target_table_exists_create_mode(pgtide, source_db, target_db):
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY);"
                      " INSERT INTO orders SELECT generate_series(1, 10)")
    target_db.execute("CREATE TABLE orders (id int PRIMARY KEY, old text);"
                      " INSERT INTO orders VALUES (99, 'stale')")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri))
    assert r.returncode == 4
    [line] = error_lines(r.stderr)
    assert 'table "public"."orders" already exists on the target' in line
    assert "--on-existing drop" in r.stderr
    assert pgtide_slots(source_db) == 0
    assert target_db.query("SELECT id FROM orders") == [(99,)]
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri,
                              "--on-existing", "drop"))
    assert r.returncode == 0, r.stderr
    assert_same_content(source_db, target_db)


def test_target_table_holds_data_existing_mode(pgtide, source_db, target_db):
    ddl = "CREATE TABLE orders (id int PRIMARY KEY, note text)"
    source_db.execute(ddl + "; INSERT INTO orders SELECT g, 'n' FROM"
                      " generate_series(1, 100) g")
    target_db.execute(ddl + "; INSERT INTO orders VALUES (1000, 'old')")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri,
                              "--schema", "existing"))
    assert r.returncode == 4
    [line] = error_lines(r.stderr)
    assert 'target table "public"."orders" already holds data' in line
    assert "--on-existing truncate" in r.stderr
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri,
                              "--schema", "existing", "--on-existing",
                              "truncate"))
    assert r.returncode == 0, r.stderr
    assert_same_content(source_db, target_db)


def test_target_table_unreadable_existing_mode(pgtide, source_db, target_db):
    """The load empties every table it loads: one whose rows the role cannot
    see stops it under --on-existing refuse, before anything is created."""
    role = f"copy_noread_{os.getpid()}"
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    target_db.execute(f"""
        CREATE TABLE orders (id int PRIMARY KEY);
        INSERT INTO orders VALUES (1000);
        CREATE ROLE {role} LOGIN;
        GRANT CREATE ON DATABASE {target_db.name} TO {role};
        GRANT INSERT, UPDATE, DELETE, TRUNCATE ON orders TO {role};
    """)
    try:
        r = pgtide.run(*copy_args(source_db.uri, target_db.uri_as(role),
                                  "--schema", "existing"))
    finally:
        target_db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
    assert r.returncode == 4, r.stderr
    [line] = error_lines(r.stderr)
    assert 'target table "public"."orders" may hold data' in line
    assert "--on-existing truncate" in r.stderr
    assert pgtide_slots(source_db) == 0
    assert target_db.query("SELECT id FROM orders") == [(1000,)]


def test_target_table_missing_existing_mode(pgtide, source_db, target_db):
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri,
                              "--schema", "existing"))
    assert r.returncode == 4
    [line] = error_lines(r.stderr)
    assert 'table "public"."orders" does not exist on the target' in line


def test_existing_mode_routes_through_target_root(pgtide, source_db, target_db):
    """A target partitioned differently: leaves it lacks load via its root."""
    source_db.execute("""
        CREATE TABLE m (k int, v text) PARTITION BY LIST (k);
        CREATE TABLE m_a PARTITION OF m FOR VALUES IN (1, 2);
        CREATE TABLE m_b PARTITION OF m FOR VALUES IN (3, 4);
        INSERT INTO m SELECT g % 4 + 1, g::text FROM generate_series(1, 400) g;
    """)
    target_db.execute("""
        CREATE TABLE m (k int, v text) PARTITION BY HASH (k);
        CREATE TABLE m_h0 PARTITION OF m FOR VALUES WITH (modulus 2, remainder 0);
        CREATE TABLE m_h1 PARTITION OF m FOR VALUES WITH (modulus 2, remainder 1);
    """)
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri,
                              "--schema", "existing"))
    assert r.returncode == 0, r.stderr
    assert sorted(source_db.query("SELECT k, v FROM m")) == \
        sorted(target_db.query("SELECT k, v FROM m"))


def test_bad_task_file(pgtide, source_db, target_db, tmp_path):
    cfg = tmp_path / "task.yaml"
    cfg.write_text("copy:\n  jobs: 4\n  jbos: 2\n")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "--config", cfg))
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert f"{cfg}:3:" in line and "jbos" in line
    cfg.write_text("copy:\n  format: fast\n")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "--config", cfg))
    assert r.returncode == 2
    assert "auto, text, binary" in r.stderr


def test_bad_option_value(pgtide, source_db, target_db):
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "--jobs", "zero"))
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert "option --jobs" in line


EXT = "pgtide_test_ext"


@pytest.fixture
def vanishing_extension():
    """An extension installed on the source whose files are then removed, so
    the target cannot create it (as when the target lacks a package)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add an extension to the PostgreSQL install")
    sharedir = subprocess.run([os.path.join(find_bindir(), "pg_config"),
                               "--sharedir"], capture_output=True,
                              text=True).stdout.strip()
    extdir = os.path.join(sharedir, "extension")
    files = {
        f"{EXT}.control": "default_version = '1.0'\nrelocatable = true\n"
                          "comment = 'pgtide test type'\n",
        f"{EXT}--1.0.sql": f"CREATE DOMAIN {EXT}_code AS text CHECK (VALUE <> '');\n",
    }

    def install():
        for name, body in files.items():
            with open(os.path.join(extdir, name), "w") as f:
                f.write(body)

    def remove():
        for name in files:
            try:
                os.unlink(os.path.join(extdir, name))
            except FileNotFoundError:
                pass

    install()
    try:
        yield install, remove
    finally:
        remove()


def test_extension_missing_on_target(pgtide, source_db, target_db,
                                     vanishing_extension):
    install, remove = vanishing_extension
    source_db.execute(f"CREATE EXTENSION {EXT};"
                      f" CREATE TABLE codes (id int PRIMARY KEY, c {EXT}_code);"
                      " INSERT INTO codes VALUES (1, 'a'), (2, 'b')")
    remove()
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri))
    assert r.returncode == 4
    [line] = error_lines(r.stderr)
    assert f"EXTENSION {EXT}" in line and "not available" in line
    # nothing of the schema was left behind on the target
    assert target_db.query_one(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    install()
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri))
    assert r.returncode == 0, r.stderr
    assert_same_content(source_db, target_db)


def test_another_tasks_table_is_never_emptied_or_dropped(pgtide, source_db,
                                                         target_db):
    """Two tasks into one target: a table task a loads is task a's, and task
    b's --on-existing truncate or drop stops before touching it (b has no
    row filter of its own on it, docs/merging.md)."""
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY, note text);"
                      " INSERT INTO orders SELECT g, 'n' FROM"
                      " generate_series(1, 100) g")
    r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "--task", "a"))
    assert r.returncode == 0, r.stderr
    target_db.execute("INSERT INTO orders VALUES (1000, 'a only')")
    for extra, code, message in (
            (["--schema", "existing", "--on-existing", "truncate"], 2,
             'target table "public"."orders" is written by task "a" too, and '
             'this task has no row filter on it'),
            (["--on-existing", "drop"], 4,
             'target table "public"."orders" is task "a"\'s: another task '
             'loads into it')):
        r = pgtide.run(*copy_args(source_db.uri, target_db.uri, "--task", "b",
                                  *extra))
        assert r.returncode == code, r.stderr
        [line] = error_lines(r.stderr)
        assert message in line, r.stderr
        assert "pgtide never empties a table another task writes" in r.stderr \
            or "never drops or empties a table another task" in r.stderr
        assert target_db.query_one("SELECT count(*) FROM orders") == 101
    c = pgtide.run("check", "--source", source_db.uri, "--target",
                   target_db.uri, "--task", "b", "--schema", "existing",
                   "--on-existing", "truncate")
    assert c.returncode == 6, c.stdout + c.stderr
    assert 'is written by task "a" too, and this task has no row filter' \
        in c.stdout, c.stdout
    assert pgtide_slots(source_db) == 0
