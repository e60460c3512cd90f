"""Large objects: copied by the load (contents, owner, grants), and brought
up to date by cutover while the source is fenced (logical decoding does not
carry them)."""

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content
from test_cutover import can_write, make_role

SOURCE = """
    CREATE TABLE docs (id int PRIMARY KEY, body oid);
    CREATE TABLE events (id bigserial PRIMARY KEY, v int NOT NULL);
    SELECT lo_from_bytea(100001, '');
    SELECT lo_from_bytea(100002, '\\x00'::bytea);
    -- three chunks and a bit, every byte value
    SELECT lo_from_bytea(100003, decode(repeat(
      (SELECT string_agg(lpad(to_hex(b), 2, '0'), '') FROM generate_series(0, 255) b),
      12500), 'hex'));
    -- a hole: pages never written read as zeros
    SELECT lo_create(100004);
    SELECT lo_put(100004, 5000000, 'end');
    SELECT lo_from_bytea(100005, 'owned and granted');
    ALTER LARGE OBJECT 100005 OWNER TO lo_owner;
    GRANT SELECT ON LARGE OBJECT 100005 TO lo_reader;
    GRANT SELECT, UPDATE ON LARGE OBJECT 100005 TO PUBLIC;
    INSERT INTO docs SELECT g, 100000 + g FROM generate_series(1, 5) g;
"""

ROLES = """
    DO $$BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lo_owner') THEN
        CREATE ROLE lo_owner; CREATE ROLE lo_reader;
      END IF;
    END$$;
"""


def lobjects(db):
    return db.query(
        "SELECT m.oid::bigint, pg_get_userbyid(lomowner),"
        " coalesce(lomacl::text, ''), md5(lo_get(m.oid)),"
        " length(lo_get(m.oid)) FROM pg_largeobject_metadata m ORDER BY 1")


def test_large_objects_move_and_are_brought_up_to_date_at_cutover(
        pgtide, source_db, target_db):
    role = "app_lo"
    source_db.execute(ROLES)
    target_db.execute(ROLES)
    source_db.execute(SOURCE)
    make_role(source_db, role)
    # a large object of the target's own, with an oid the source uses
    target_db.execute("SELECT lo_from_bytea(100002, 'theirs')")
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, timeout=120)
    assert r.returncode == 4, r.stderr
    assert "large object 100002 already exists on the target" in r.stderr
    assert target_db.query_one("SELECT lo_get(100002)") == b"theirs"
    target_db.execute("SELECT lo_unlink(100002)")

    migrate = start_migrate(pgtide, source_db, target_db)
    assert lobjects(target_db) == lobjects(source_db)
    assert len(lobjects(target_db)) == 5

    # created, changed (contents, grants), dropped while the stream runs
    source_db.execute("""
        SELECT lo_from_bytea(100006, 'new');
        INSERT INTO docs VALUES (6, 100006);
        SELECT lo_put(100003, 10, 'changed');
        GRANT UPDATE ON LARGE OBJECT 100002 TO lo_reader;
        SELECT lo_unlink(100001);
        DELETE FROM docs WHERE id = 1;
        INSERT INTO events (v) VALUES (1);
    """)
    wait_caught_up(source_db, target_db)
    assert lobjects(target_db) != lobjects(source_db)

    args = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence-role", role]
    refused = pgtide.run(*args)
    assert refused.returncode == 2, refused.stderr
    assert "revoke fence cannot stop writes to them" in refused.stderr
    assert can_write(source_db, role)

    # killed while it copies them again, fenced: the next cutover lifts
    # that fence first and finishes the pass
    args += ["--fence", "read_only"]
    killed = pgtide.run(*args, env={"PGTIDE_FAULT": "lobjects.before_commit@2"})
    assert killed.returncode == -9, killed.stderr
    assert not can_write(source_db, role)
    ok = pgtide.run(*args)
    assert ok.returncode == 0, ok.stderr
    # the killed pass had copied one of the three
    assert "large objects: 5, 2 copied" in ok.stderr and "1 removed" \
        in ok.stderr, ok.stderr
    assert migrate.wait(60) == 0
    assert lobjects(target_db) == lobjects(source_db)
    assert_same_content(source_db, target_db)
    # the read_only fence stays on the source; clean still drops its slot
    assert not can_write(source_db, role)
    cleaned = pgtide.run("clean", "--source", source_db.uri, "--target",
                         target_db.uri)
    assert cleaned.returncode == 0, cleaned.stderr
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0


def test_load_killed_while_copying_large_objects_resumes(
        pgtide, source_db, target_db):
    source_db.execute(ROLES)
    target_db.execute(ROLES)
    source_db.execute(SOURCE)
    killed = pgtide.run("migrate", "--source", source_db.uri, "--target",
                        target_db.uri,
                        env={"PGTIDE_FAULT": "lobjects.before_commit@3"})
    assert killed.returncode == -9, killed.stderr
    # each large object commits with its record: two are there, whole
    copied = lobjects(target_db)
    assert len(copied) == 2
    assert set(copied) <= set(lobjects(source_db))

    migrate = start_migrate(pgtide, source_db, target_db)
    assert lobjects(target_db) == lobjects(source_db)
    assert migrate.stop() == 0
