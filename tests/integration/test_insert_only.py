"""What the change stream cannot carry, moved anyway: tables without a key
(streamed for their inserts only, watched for an UPDATE or DELETE) and
unlogged tables (copied again by cutover while the source is fenced)."""

import json

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for
from test_check import objects, run_check
from test_cutover import can_write, make_role

LOG = """
    CREATE TABLE "Audit Log" (at timestamptz NOT NULL DEFAULT now(),
                              who text, what text);
    INSERT INTO "Audit Log" (who, what)
      SELECT 'user' || g, 'login' FROM generate_series(1, 100) g;
    CREATE TABLE events (id bigserial PRIMARY KEY, v int NOT NULL);
"""


def status_json(pgtide, source_db, target_db):
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def diverged(pgtide, source_db, target_db):
    return {t["table"]: t["reason"]
            for t in status_json(pgtide, source_db, target_db)["insert_only"]
            if t["diverged_at"] is not None}


def test_keyless_table_streams_inserts_and_an_update_is_caught(
        pgtide, source_db, target_db):
    """A table without a key needs no change on the source: no blocker, its
    INSERTs and TRUNCATEs are streamed, the application's UPDATE and DELETE
    on it keep working. An UPDATE made during the migration makes it
    diverge: status, validate, check and cutover name it; cutover refuses
    it by default and copies it again when told to."""
    role = "app_keyless"
    source_db.execute(LOG)
    # an UPDATE before the migration is in the load's snapshot: no divergence
    source_db.execute("""UPDATE "Audit Log" SET what = 'logout' WHERE who = 'user1'""")
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    # its own publication, for inserts and truncates only
    assert source_db.query(
        "SELECT pubname, pubinsert, pubupdate, pubdelete, pubtruncate"
        " FROM pg_publication ORDER BY 1") == [
            ("pgtide_default", True, True, True, True),
            ("pgtide_default_inserts", True, False, False, True)]
    source_db.execute("""
        INSERT INTO "Audit Log" (who, what)
          SELECT 'user' || g, 'click' FROM generate_series(1, 300) g;
        INSERT INTO events (v) SELECT g FROM generate_series(1, 50) g;
    """)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    source_db.execute("""
        TRUNCATE "Audit Log";
        INSERT INTO "Audit Log" (who, what) VALUES ('admin', 'rotate');
    """)
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    st = status_json(pgtide, source_db, target_db)
    assert st["insert_only"] == [{"table": "public.Audit Log",
                                  "diverged_at": None, "reason": None}]

    # the application's UPDATE works on the source, and is noticed
    source_db.execute("""UPDATE "Audit Log" SET what = 'rotated'""",)
    wait_for(lambda: diverged(pgtide, source_db, target_db), 20, 0.5,
             "status never showed the table as diverged")
    reason = diverged(pgtide, source_db, target_db)["public.Audit Log"]
    assert "1 UPDATE or DELETE" in reason, reason

    v = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert v.returncode != 0, v.stdout
    assert "DIVERGED" in v.stdout and "Audit Log" in v.stdout, v.stdout
    r, report = run_check(pgtide, source_db.uri, target_db.uri)
    assert objects(report, "insert_only_diverged") == {"public.Audit Log"}
    assert objects(report, "no_replica_identity", "warning") == {
        "public.\"Audit Log\""}

    args = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence-role", role]
    refused = pgtide.run(*args)
    assert refused.returncode != 0
    assert "public.Audit Log" in refused.stderr, refused.stderr
    assert "--diverged=recopy" in refused.stderr
    assert can_write(source_db, role)
    assert migrate.poll() is None

    source_db.execute("INSERT INTO events (v) VALUES (7)")
    ok = pgtide.run(*args, "--diverged", "recopy", "--final-validation",
                    "full")
    assert ok.returncode == 0, ok.stderr
    assert "1 tables copied again (0 unlogged, 1 diverged)" in ok.stderr
    assert migrate.wait(60) == 0
    assert_same_content(source_db, target_db)


def test_unlogged_table_is_copied_again_at_cutover_even_after_a_kill(
        pgtide, source_db, target_db):
    """An unlogged table is loaded (and stays unlogged on the target); its
    later changes are not in the WAL, so cutover copies it again while the
    source is fenced. A cutover killed in the middle of that copy leaves
    the target's copy whole and the source fenced; the next cutover lifts
    the fence, copies it again and finishes."""
    role = "app_unlogged"
    source_db.execute("""
        CREATE UNLOGGED TABLE cache (id int PRIMARY KEY, v text);
        INSERT INTO cache SELECT g, repeat('x', g % 50) FROM
          generate_series(1, 500) g;
        CREATE TABLE events (id bigserial PRIMARY KEY, v int NOT NULL);
    """)
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    assert target_db.query_one(
        "SELECT relpersistence FROM pg_class WHERE oid = 'cache'::regclass"
    ) == "u"
    source_db.execute("""
        INSERT INTO cache SELECT g, 'new' FROM generate_series(501, 700) g;
        UPDATE cache SET v = 'changed' WHERE id % 3 = 0;
        DELETE FROM cache WHERE id % 5 = 0;
        INSERT INTO events (v) SELECT g FROM generate_series(1, 20) g;
    """)
    wait_caught_up(source_db, target_db)
    loaded = target_db.query_one("SELECT count(*) FROM cache")
    assert loaded == 500  # the stream carries none of it

    args = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence-role", role]
    killed = pgtide.run(*args, env={
        "PGTIDE_FAULT": "cutover.resync.before_commit"})
    assert killed.returncode == -9, killed.stderr
    assert not can_write(source_db, role)
    assert target_db.query_one("SELECT count(*) FROM cache") == loaded

    ok = pgtide.run(*args)
    assert ok.returncode == 0, ok.stderr
    assert "1 tables copied again (1 unlogged, 0 diverged)" in ok.stderr
    assert migrate.wait(60) == 0
    assert_same_content(source_db, target_db)
