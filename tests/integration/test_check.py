"""pgtide check: every finding is reported on a source (and target) that has
the problem, a clean pair reports no blocker and no warning, a blocker exits 6
unless skipped (where skipping is allowed), and check changes nothing on
either server."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import IS_ROOT, SUPERUSER, find_bindir

CLEAN_SCHEMA = """
    CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
    CREATE TABLE parted (id int, region text, PRIMARY KEY (id, region))
      PARTITION BY LIST (region);
    CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
    CREATE TABLE full_ident (a int, b text);
    ALTER TABLE full_ident REPLICA IDENTITY FULL;
    CREATE TABLE by_index (id int NOT NULL, v text);
    CREATE UNIQUE INDEX by_index_id ON by_index (id);
    ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id;
    INSERT INTO orders (note) SELECT md5(g::text) FROM generate_series(1, 500) g;
    INSERT INTO parted SELECT g, 'eu' FROM generate_series(1, 100) g;
"""


def run_check(pgtide, source_uri, target_uri, *extra, json_out=True):
    args = ["check", "--source", source_uri, "--target", target_uri, *extra]
    if json_out:
        args.append("--json")
    r = pgtide.run(*args, timeout=120)
    report = None
    if json_out:
        assert r.stdout.strip(), f"no report (exit {r.returncode}):\n{r.stderr}"
        report = json.loads(r.stdout)
    return r, report


def findings(report, id_, severity=None):
    return [f for f in report["findings"] if f["id"] == id_ and
            (severity is None or f["severity"] == severity)]


def objects(report, id_, severity=None):
    return {f["object"] for f in findings(report, id_, severity)}


def ids(report, severity):
    return {f["id"] for f in report["findings"] if f["severity"] == severity}


def server_state(db):
    """What check must never change: slots, publications, origins, schemas,
    relations."""
    return {
        "slots": db.query("SELECT slot_name FROM pg_replication_slots ORDER BY 1"),
        "publications": db.query("SELECT pubname FROM pg_publication ORDER BY 1"),
        # the cluster's origins: this database's (named after its oid)
        "origins": db.query(
            "SELECT roname FROM pg_replication_origin WHERE roname LIKE"
            " '%%\\_' || (SELECT oid FROM pg_database"
            " WHERE datname = current_database()) ORDER BY 1"),
        "schemas": db.query("SELECT nspname FROM pg_namespace"
                            " WHERE nspname NOT LIKE 'pg\\_temp\\_%%'"
                            " AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'"
                            " ORDER BY 1"),
        "relations": db.query_one("SELECT count(*) FROM pg_class"
                                  " WHERE relpersistence <> 't'"),
    }


class ServerDb:
    """The postgres database of a server of its own, as source_db offers it."""

    def __init__(self, server):
        self.server, self.name, self.uri = server, "postgres", server.uri()

    def execute(self, sql, params=None):
        self.server.execute("postgres", sql, params)

    def query(self, sql, params=None):
        return self.server.query("postgres", sql, params)

    def query_one(self, sql, params=None):
        return self.server.query_one("postgres", sql, params)


def test_clean_pair_reports_no_blocker_or_warning(pgtide, source_db, target_db):
    source_db.execute(CLEAN_SCHEMA)
    before = server_state(source_db), server_state(target_db)
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    assert ids(report, "blocker") == set(), report
    assert ids(report, "warning") == set(), report
    assert report["blocked"] is False and report["resume"] is False
    assert report["counts"]["blocker"] == report["counts"]["warning"] == 0
    assert {"estimated_size", "wal_retention", "sequences"} <= ids(report, "info")
    [size] = findings(report, "estimated_size")
    assert "4 tables" in size["message"]
    for f in report["findings"]:
        assert set(f) == {"id", "severity", "object", "message", "why", "fix",
                          "skippable", "skipped"}
    r, _ = run_check(pgtide, source_db.uri, target_db.uri, json_out=False)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^pgtide check: source .*: 0 blockers, 0 warnings, \d+ infos$",
                     r.stdout, re.M), r.stdout

    # the WAL rate is measured as long as check.wal_sample says (the
    # tests' runs say 200 ms), and no less
    [ret] = findings(report, "wal_retention")
    sampled = float(re.search(r"measured over ([0-9.]+) s", ret["message"])[1])
    assert 0.2 <= sampled < 1.0, ret["message"]
    t0 = time.monotonic()
    r, report = run_check(pgtide, source_db.uri, target_db.uri,
                          "--wal-sample", "2500")
    assert r.returncode == 0 and time.monotonic() - t0 >= 2.5, r.stderr
    [ret] = findings(report, "wal_retention")
    assert "measured over 2.5 s" in ret["message"], ret["message"]
    r, _ = run_check(pgtide, source_db.uri, target_db.uri, "--wal-sample", "50",
                     json_out=False)
    assert r.returncode == 2 and "--wal-sample" in r.stderr and \
        "100 to 600000" in r.stderr, r.stderr
    assert (server_state(source_db), server_state(target_db)) == before


def test_each_table_problem_is_reported(pgtide, source_db, target_db):
    # a system collation (from ICU or the C library) the target will lack
    coll = source_db.query_one(
        "SELECT collname FROM pg_collation WHERE collnamespace ="
        " 'pg_catalog'::regnamespace AND collname NOT IN"
        " ('default', 'C', 'POSIX', 'ucs_basic')"
        " AND collencoding IN (-1, pg_char_to_encoding('UTF8'))"
        " ORDER BY collname <> 'de-x-icu', collname LIMIT 1")
    qcoll = source_db.query_one("SELECT quote_ident(%s)", (coll,))
    source_db.execute(f"""
        CREATE TABLE fine (id int PRIMARY KEY, name text COLLATE {qcoll});
        CREATE TABLE events (a int, b text);
        CREATE TABLE nothing_ident (id int PRIMARY KEY);
        ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;
        CREATE UNLOGGED TABLE cache (id int PRIMARY KEY);
        CREATE TABLE always_ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
        CREATE TABLE default_ident (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
        SELECT lo_create(0);
        CREATE FOREIGN DATA WRAPPER chk_fdw;
        CREATE SERVER chk_server FOREIGN DATA WRAPPER chk_fdw;
        CREATE FOREIGN TABLE remote (a int) SERVER chk_server;
    """)
    # the target already has one of the tables, and lacks a system collation
    target_db.execute("CREATE TABLE fine (id int); INSERT INTO fine VALUES (1);"
                      f" DROP COLLATION pg_catalog.{qcoll}")
    holder = source_db.connect()
    holder.execute("CREATE TEMP TABLE scratch (a int)")
    before = server_state(source_db), server_state(target_db)

    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 6, r.stderr
    assert "check found" in r.stderr and "target_has_data" in r.stderr
    # streamed for their inserts only, and copied again at cutover
    assert objects(report, "no_replica_identity", "warning") == {
        "public.events", "public.nothing_ident"}
    assert objects(report, "unlogged_table", "info") == {"public.cache"}
    # the change stream inserts with OVERRIDING SYSTEM VALUE: no blocker
    assert not findings(report, "identity_columns", "blocker")
    assert objects(report, "identity_columns", "info") == {
        "public.always_ident.id", "public.default_ident.id"}
    # copied, but the default revoke fence cannot fence them
    assert findings(report, "large_objects", "warning")
    assert objects(report, "foreign_table", "warning") == {"public.remote"}
    [tmp] = findings(report, "temporary_table", "warning")
    assert tmp["object"].endswith(".scratch")
    [seq] = findings(report, "sequences", "info")
    assert seq["object"] == "2 sequences"
    [data] = findings(report, "target_has_data", "blocker")
    assert data["object"] == "public.fine" and "holds rows" in data["message"]
    assert objects(report, "missing_collation", "blocker") == {
        f"pg_catalog.{qcoll}"}
    [nri] = findings(report, "no_replica_identity")[:1]
    assert "REPLICA IDENTITY FULL" in nri["fix"]
    assert "INSERTs and TRUNCATEs only" in nri["why"]
    assert report["counts"]["blocker"] == len(
        [f for f in report["findings"] if f["severity"] == "blocker"])

    # text: one line per finding (blockers first), then the summary
    r, _ = run_check(pgtide, source_db.uri, target_db.uri, json_out=False)
    assert r.returncode == 6
    lines = r.stdout.splitlines()
    assert re.match(r"^pgtide check: .*: 2 blockers, 5 warnings, \d+ infos$",
                    lines[-1]), lines[-1]
    body = lines[:-1]
    assert len(body) == len(report["findings"])
    for line in body:
        assert re.match(r"^(blocker|warning|info) +[a-z_]+ +\S.*: ", line), line
    severities = [line.split()[0] for line in body]
    assert severities == sorted(severities, key=["blocker", "warning", "info"].index)
    assert any(line.startswith("warning  no_replica_identity") and
               "public.events:" in line and "add a primary key" in line
               for line in body), body

    holder.close()
    assert (server_state(source_db), server_state(target_db)) == before


def test_table_selection_and_skipping(pgtide, source_db, target_db):
    source_db.execute("""
        CREATE TABLE ok (id int PRIMARY KEY);
        CREATE TABLE events (a int);
    """)
    target_db.execute("CREATE TABLE ok (id int); INSERT INTO ok VALUES (1)")
    uris = source_db.uri, target_db.uri
    r, report = run_check(pgtide, *uris, "--skip-check", "target_has_data")
    assert r.returncode == 0, r.stderr
    [data] = findings(report, "target_has_data")
    assert data["skipped"] is True and data["skippable"] is True
    assert report["counts"]["skipped"] == 1
    assert "target_has_data" not in r.stderr
    assert findings(report, "no_replica_identity", "warning")

    # the same selection as the migration: -T leaves the table out
    r, report = run_check(pgtide, *uris, "-T", "public.events",
                          "--skip-check", "target_has_data")
    assert r.returncode == 0, r.stderr
    assert not findings(report, "no_replica_identity")
    assert report["blocked"] is False
    r, _ = run_check(pgtide, *uris, "-T", "public.events",
                     "--skip-check=target_has_data", json_out=False)
    assert r.returncode == 0
    assert re.search(r"^blocker +target_has_data .*\[skipped\]$", r.stdout,
                     re.M)
    assert "1 blocker (1 skipped), 0 warnings" in r.stdout

    r, _ = run_check(pgtide, *uris, "--skip-check", "no_such_check",
                     json_out=False)
    assert r.returncode == 2
    assert 'unknown finding id "no_such_check"' in r.stderr


def test_many_objects_are_capped(pgtide, source_db, target_db):
    source_db.execute("".join(f"CREATE TABLE keyless_{i:02d} (a int);"
                              for i in range(23)))
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    assert len(findings(report, "no_replica_identity")) == 20
    assert report["omitted"] == [
        {"id": "no_replica_identity", "severity": "warning", "count": 3}]
    assert report["counts"]["warning"] == 23
    r, _ = run_check(pgtide, source_db.uri, target_db.uri, json_out=False)
    assert re.search(r"^warning +no_replica_identity +and 3 more like the above$",
                     r.stdout, re.M), r.stdout


def _writer(db, started, stop):
    """Commits small writes as fast as it can: WAL and transactions per
    second that make the source busy."""
    with db.server.connect(db.name) as conn:
        while not stop.is_set():
            conn.execute("INSERT INTO churn (v) VALUES (repeat('x', 2000))")
            started.set()


def test_source_settings_and_wal(pgtide, make_server, target_db):
    server = make_server("settings", wal_level="replica",
                         max_replication_slots=0, max_wal_senders=0,
                         wal_sender_timeout=0, track_commit_timestamp=True,
                         max_slot_wal_keep_size="1MB")
    src = ServerDb(server)
    location = os.path.join(server.dir, "ts")
    os.mkdir(location)
    if IS_ROOT:
        shutil.chown(location, user=SUPERUSER)
    src.execute(f"CREATE TABLESPACE chk_space LOCATION '{location}'")
    src.execute("CREATE TABLE placed (id int PRIMARY KEY) TABLESPACE chk_space;"
                " CREATE TABLE churn (id bigserial PRIMARY KEY, v text)")
    started, stop = threading.Event(), threading.Event()
    writer = threading.Thread(target=_writer, args=(src, started, stop),
                              daemon=True)
    writer.start()
    try:
        assert started.wait(30), "the writer never committed"
        r, report = run_check(pgtide, src.uri, target_db.uri,
                              "--wal-free-space", "1MB",
                              "--skip-check", "wal_level")
    finally:
        stop.set()
        writer.join(30)
    assert r.returncode == 6
    assert "cannot be skipped" in r.stderr
    blockers, warnings = ids(report, "blocker"), ids(report, "warning")
    assert {"wal_level", "replication_slots", "wal_senders",
            "max_slot_wal_keep_size", "wal_retention"} <= blockers, report
    assert {"wal_sender_timeout", "track_commit_timestamp",
            "missing_tablespace"} <= warnings, report
    [lvl] = findings(report, "wal_level")
    assert lvl["skipped"] is False and '"replica"' in lvl["message"]
    [ts] = findings(report, "missing_tablespace")
    assert ts["object"] == "tablespace chk_space"
    [ret] = findings(report, "wal_retention")
    assert "1.0 MB declared free" in ret["message"]
    [keep] = findings(report, "max_slot_wal_keep_size")
    assert "max_slot_wal_keep_size = 1.0 MB" in keep["message"]


def test_privileges(pgtide, source_db, target_db):
    n = os.getpid()
    src_role, tgt_role = f"chk_src_{n}", f"chk_tgt_{n}"
    source_db.execute(f"""
        CREATE TABLE mine (id int PRIMARY KEY);
        CREATE TABLE secret (id serial PRIMARY KEY);
        CREATE ROLE {src_role} LOGIN;
        GRANT SELECT ON mine TO {src_role};
        SELECT lo_from_bytea(424201, 'not theirs');
        SELECT lo_from_bytea(424202, 'granted');
        GRANT SELECT ON LARGE OBJECT 424202 TO {src_role};
    """)
    target_db.execute(f"CREATE ROLE {tgt_role} LOGIN")
    try:
        r, report = run_check(pgtide, source_db.uri_as(src_role),
                              target_db.uri_as(tgt_role))
    finally:
        source_db.execute(f"DROP OWNED BY {src_role}; DROP ROLE {src_role}")
        target_db.execute(f"DROP ROLE {tgt_role}")
    assert r.returncode == 6, r.stderr
    assert objects(report, "replication_privilege", "blocker") == {"source"}
    assert objects(report, "table_read_privilege", "blocker") == {
        "public.secret", "public.secret_id_seq", "large object 424201"}
    assert objects(report, "publication_ownership", "blocker") == {
        f"database {source_db.name}", "public.mine", "public.secret"}
    assert objects(report, "target_create_privilege", "blocker") == {
        f"database {target_db.name}", "schema public",
        "session_replication_role", "replication origin"}


def test_row_security_that_would_hide_rows_is_a_blocker(pgtide, source_db,
                                                        target_db):
    """Policies the source role is subject to would hide rows from the copy
    and from validate alike, which would then agree on part of a table: check
    names each such table, copy stops before anything moves, and a role that
    bypasses the policies copies every row."""
    role = f"chk_rls_{os.getpid()}"
    source_db.execute(f"""
        CREATE ROLE {role} LOGIN REPLICATION;
        GRANT CREATE ON SCHEMA public TO {role};
        CREATE TABLE shared (id int PRIMARY KEY);
        INSERT INTO shared SELECT generate_series(1, 10);
        ALTER TABLE shared ENABLE ROW LEVEL SECURITY;
        CREATE POLICY evens ON shared USING (id % 2 = 0);
        GRANT SELECT ON shared TO {role};
        SET ROLE {role};
        CREATE TABLE own (id int PRIMARY KEY);
        INSERT INTO own SELECT generate_series(1, 10);
        ALTER TABLE own ENABLE ROW LEVEL SECURITY;
        ALTER TABLE own FORCE ROW LEVEL SECURITY;
        CREATE POLICY evens ON own USING (id % 2 = 0);
        CREATE TABLE plain (id int PRIMARY KEY);
        ALTER TABLE plain ENABLE ROW LEVEL SECURITY;
        RESET ROLE;
    """)
    try:
        r, report = run_check(pgtide, source_db.uri_as(role), target_db.uri)
        assert r.returncode == 6, r.stderr
        # the owner bypasses its table's policies unless they are forced
        assert objects(report, "row_security", "blocker") == {
            "public.shared", "public.own"}
        r = pgtide.run("copy", "--source", source_db.uri_as(role), "--target",
                       target_db.uri, timeout=120)
        assert r.returncode == 6, r.stderr
        assert "row-level security hides rows of 2 tables" in r.stderr, \
            r.stderr
        # nothing of the user's made on the target, no slot left
        assert target_db.query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        assert source_db.query_one(
            "SELECT count(*) FROM pg_replication_slots"
            " WHERE database = current_database()") == 0
        source_db.execute(f"ALTER ROLE {role} BYPASSRLS")
        r = pgtide.run("copy", "--source", source_db.uri_as(role), "--target",
                       target_db.uri, timeout=120)
        assert r.returncode == 0, r.stderr
        for table in ("shared", "own"):
            assert target_db.query_one(f"SELECT count(*) FROM {table}") == 10
    finally:
        source_db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


EXT = "pgtide_check_ext"


@pytest.fixture
def vanishing_extension():
    """Files of an extension the test installs, then removes so that the
    target cannot create it (as when the target lacks a package)."""
    if not IS_ROOT:
        pytest.skip("needs root to add an extension to the PostgreSQL install")
    sharedir = subprocess.run([os.path.join(find_bindir(), "pg_config"),
                               "--sharedir"], capture_output=True,
                              text=True).stdout.strip()
    paths = {
        os.path.join(sharedir, "extension", f"{EXT}.control"):
            "default_version = '1.0'\nrelocatable = true\n",
        os.path.join(sharedir, "extension", f"{EXT}--1.0.sql"):
            f"CREATE DOMAIN {EXT}_code AS text CHECK (VALUE <> '');\n",
    }

    def remove():
        for path in paths:
            if os.path.exists(path):
                os.unlink(path)

    for path, body in paths.items():
        with open(path, "w") as f:
            f.write(body)
    try:
        yield remove
    finally:
        remove()


def test_extension_and_type_missing_on_target(pgtide, source_db, target_db,
                                              vanishing_extension):
    source_db.execute(f"CREATE EXTENSION {EXT};"
                      f" CREATE TABLE codes (id int PRIMARY KEY, c {EXT}_code)")
    vanishing_extension()
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 6
    assert objects(report, "missing_extension", "blocker") == {f"extension {EXT}"}
    [typ] = findings(report, "missing_type", "blocker")
    assert typ["object"] == f"public.{EXT}_code"
    assert "public.codes.c" in typ["message"] and EXT in typ["message"]


def test_existing_schema_mode(pgtide, source_db, target_db):
    source_db.execute("""
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE orders (id int PRIMARY KEY, m mood);
        CREATE TABLE items (id int PRIMARY KEY);
        CREATE TABLE lines (id int PRIMARY KEY);
    """)
    target_db.execute("""
        CREATE TABLE orders (id int PRIMARY KEY, m text);
        INSERT INTO orders VALUES (1, 'ok');
        CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
    """)
    uris = source_db.uri, target_db.uri
    r, report = run_check(pgtide, *uris, "--schema", "existing")
    assert r.returncode == 6
    assert objects(report, "target_has_data", "blocker") == {"public.orders"}
    assert objects(report, "missing_target_table", "blocker") == {"public.lines"}
    assert objects(report, "missing_type", "warning") == {"public.mood"}
    assert objects(report, "identity_columns", "info") == {"public.items.id"}
    r, report = run_check(pgtide, *uris, "--schema", "existing",
                          "--on-existing", "truncate")
    assert objects(report, "target_has_data", "warning") == {"public.orders"}
    assert not findings(report, "target_has_data", "blocker")


def test_unreadable_target_table_is_in_the_way(pgtide, source_db, target_db):
    """Existing mode: the load empties every table it loads, so one the role
    cannot read may hold rows it would lose; check says what the load does."""
    role = f"chk_noread_{os.getpid()}"
    source_db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    target_db.execute(f"""
        CREATE TABLE orders (id int PRIMARY KEY);
        INSERT INTO orders VALUES (1);
        CREATE ROLE {role} LOGIN;
        GRANT INSERT, UPDATE, DELETE, TRUNCATE ON orders TO {role};
    """)
    try:
        uris = source_db.uri, target_db.uri_as(role)
        r, report = run_check(pgtide, *uris, "--schema", "existing")
        r2, report2 = run_check(pgtide, *uris, "--schema", "existing",
                                "--on-existing", "truncate")
    finally:
        target_db.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
    assert r.returncode == 6, r.stderr
    [data] = findings(report, "target_has_data", "blocker")
    assert data["object"] == "public.orders"
    assert "cannot read" in data["message"] and "GRANT SELECT" in data["fix"]
    assert objects(report2, "target_has_data", "warning") == {"public.orders"}
    assert not findings(report2, "target_has_data", "blocker")


def test_resumed_task(pgtide, make_server, target_db):
    """A resumed run: the task's own slot counts as available, its tables on
    the target are its own, its publication exists."""
    server = make_server("oneslot", max_replication_slots=1)
    src = ServerDb(server)
    src.execute("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);"
                " CREATE TABLE b (id int PRIMARY KEY)")
    # migrate's slot: copy keeps none, and a copied task cannot resume as a
    # stream (test_slots.py)
    p = pgtide.start("migrate", "--source", src.uri, "--target",
                     target_db.uri)
    p.wait_for_output(r"streaming from slot", timeout=120)
    assert p.stop() == 0, p.read_stderr()
    before = server_state(src), server_state(target_db)
    r, report = run_check(pgtide, src.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    assert (server_state(src), server_state(target_db)) == before
    assert report["resume"] is True
    assert ids(report, "blocker") == set() and ids(report, "warning") == set()

    # a table created since the load: the stream adds it to the publication
    # when it joins (test_new_tables.py)
    src.execute("CREATE TABLE later (id int PRIMARY KEY)")
    r, report = run_check(pgtide, src.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    assert objects(report, "task_publication", "info") == {"public.later"}
    assert not findings(report, "task_publication", "blocker")

    # another task finds no free slot and the first task's tables in the way
    r, report = run_check(pgtide, src.uri, target_db.uri, "--task", "other",
                          "-T", "public.later")
    assert r.returncode == 6
    assert report["resume"] is False
    assert objects(report, "replication_slots", "blocker") == {"source"}
    assert objects(report, "target_has_data", "blocker") == {"public.a", "public.b"}


def test_migrate_stops_before_creating_anything(pgtide, source_db, target_db):
    source_db.execute("""
        CREATE TABLE ok (id int PRIMARY KEY);
        CREATE TABLE events (a int);
        SELECT lo_create(0);
    """)
    target_db.execute("CREATE TABLE ok (id int); INSERT INTO ok VALUES (1)")
    before = server_state(source_db), server_state(target_db)
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, timeout=120)
    assert r.returncode == 6, r.stderr
    assert "pgtide migrate did not start" in r.stderr
    assert re.search(r"check: blocker target_has_data public\.ok", r.stderr), \
        r.stderr
    assert (server_state(source_db), server_state(target_db)) == before
    # with the target's table gone, it runs (the keyless table is streamed
    # for its inserts, the large objects copied)
    target_db.execute("DROP TABLE ok")
    p = pgtide.start("migrate", "--source", source_db.uri, "--target",
                     target_db.uri)
    p.wait_for_output(r"streaming from slot", timeout=120)
    assert p.stop() == 0, p.read_stderr()


def test_full_identity_without_index_is_a_warning(pgtide, source_db,
                                                  target_db):
    """A REPLICA IDENTITY FULL table the target cannot search by an index:
    each UPDATE and DELETE the stream applies would read the whole table."""
    source_db.execute("""
        CREATE TABLE log_scan (a int, b text);
        CREATE TABLE log_indexed (a int, b text);
        CREATE INDEX ON log_indexed (a);
        CREATE TABLE log_small (a int, b text);
        ALTER TABLE log_scan REPLICA IDENTITY FULL;
        ALTER TABLE log_indexed REPLICA IDENTITY FULL;
        ALTER TABLE log_small REPLICA IDENTITY FULL;
        INSERT INTO log_scan SELECT g, 'x' FROM generate_series(1, 20000) g;
        INSERT INTO log_indexed SELECT g, 'x' FROM generate_series(1, 20000) g;
        INSERT INTO log_small SELECT g, 'x' FROM generate_series(1, 100) g;
        ANALYZE;
    """)
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert r.returncode == 0, r.stderr
    [f] = findings(report, "full_identity_no_index")
    assert f["severity"] == "warning" and f["object"] == "public.log_scan"
    assert "about 20000 rows" in f["message"], f
    assert "-T public.log_scan" in f["fix"]

    # existing schema: the user's target table decides
    target_db.execute("""
        CREATE TABLE log_scan (a int, b text);
        CREATE INDEX ON log_scan (a);
        CREATE TABLE log_indexed (a int, b text);
        CREATE TABLE log_small (a int, b text);
    """)
    r, report = run_check(pgtide, source_db.uri, target_db.uri,
                          "--schema", "existing")
    assert objects(report, "full_identity_no_index", "warning") == {
        "public.log_indexed"}
    assert "on the target table" in \
        findings(report, "full_identity_no_index")[0]["fix"]


def test_two_encodings_are_named(pgtide, encoded_source, target_db):
    """A SQL_ASCII source carries bytes of no declared encoding: a warning
    says what reaches the UTF-8 target and what stops the load; a WIN1251
    source is converted, which an info says. Neither blocks."""
    for encoding, severity in (("SQL_ASCII", "warning"), ("WIN1251", "info")):
        source = encoded_source(encoding)
        source.execute("CREATE TABLE t (id int PRIMARY KEY, s text)")
        r, report = run_check(pgtide, source.uri, target_db.uri)
        assert r.returncode == 0, r.stderr
        [f] = findings(report, "encoding")
        assert f["severity"] == severity, f
        assert f["message"] == (f"the source database's encoding is "
                                f"{encoding}, the target's UTF8"), f
