"""pgtide cutover against a running pgtide migrate: fence, marker, sequences,
validation, stream stop; and the undo of the fence when a step fails or the
cutover itself is killed while the source is fenced."""

import os
import re
import subprocess
import threading
import time

import psycopg

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, find_bindir, wait_for

EVENTS = """
    CREATE TABLE events (id bigserial PRIMARY KEY, v int NOT NULL,
                         at timestamptz NOT NULL DEFAULT now());
"""


def make_role(db, role):
    """A login role of the application, with the write privileges it needs."""
    db.execute(f"""
        DO $$BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN;
          END IF;
        END$$;
        GRANT USAGE ON SCHEMA public TO {role};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public
          TO {role};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
    """)


class Writer(threading.Thread):
    """Inserts into events as the application's role, one autocommit
    statement at a time, and records every attempt: (wall time, id or None)."""

    def __init__(self, db, role):
        super().__init__(daemon=True)
        self.db, self.role = db, role
        self.attempts = []
        self.done = threading.Event()

    def run(self):
        i = 0
        conn = None
        while not self.done.is_set():
            i += 1
            t = time.time()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.db.uri_as(self.role),
                                           autocommit=True)
                row = conn.execute(
                    "INSERT INTO events (v) VALUES (%s) RETURNING id",
                    (i,)).fetchone()
                self.attempts.append((t, row[0]))
            except psycopg.Error:
                self.attempts.append((t, None))
                if conn is not None:
                    conn.close()
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def stop(self):
        self.done.set()
        self.join(30)

    @property
    def acknowledged(self):
        return [i for _, i in self.attempts if i is not None]

    @property
    def failures(self):
        return [t for t, i in self.attempts if i is None]


def pgbench(db, role, *args):
    bindir = find_bindir()
    server = db.server
    return subprocess.Popen(
        [os.path.join(bindir, "pgbench"), "-h", "127.0.0.1", "-p",
         str(server.port), "-U", role, *args, db.name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cutover_row(target_db):
    return target_db.query(
        "SELECT result, error, window_ms, fenced_at, done_at"
        " FROM pgtide.cutovers ORDER BY started_at DESC LIMIT 1")[0]


def can_write(db, role):
    try:
        with psycopg.connect(db.uri_as(role), autocommit=True) as c:
            c.execute("INSERT INTO events (v) VALUES (-1)")
        return True
    except psycopg.Error:
        return False


def test_full_lifecycle_under_load_with_revoke_fence(pgtide, source_db,
                                                     target_db):
    """pgbench and a writer run throughout; cutover revokes the
    application's write privileges: every acknowledged write is on the
    target, writes fail only inside the window, sequences are ahead."""
    role = "app_cutover"
    bindir = find_bindir()
    subprocess.run([os.path.join(bindir, "pgbench"), "-i", "-q", "-s", "1",
                    "-h", "127.0.0.1", "-p", str(source_db.server.port),
                    "-U", "postgres", source_db.name],
                   check=True, capture_output=True)
    # pgbench_history has no key: streamed for its inserts only
    source_db.execute(EVENTS)
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)

    bench = pgbench(source_db, role, "-n", "-c", "2", "-T", "60")
    writer = Writer(source_db, role)
    writer.start()
    wait_for(lambda: len(writer.acknowledged) > 50, 30)
    time.sleep(1)
    r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                   target_db.uri, "--fence", "revoke", "--fence-role", role,
                   "--sequence-margin", "1000", "--final-validation", "full")
    done_wall = time.time()
    assert r.returncode == 0, r.stderr
    # the final validation hashed every row; fenced and drained, each table
    # was read whole although the stream was running
    run_id, mode, status, cdc = target_db.query(
        "SELECT id, mode, status, cdc FROM pgtide.validation_runs"
        " ORDER BY id DESC LIMIT 1")[0]
    assert (mode, status, cdc) == ("full", "equal", True)
    assert target_db.query_one(
        "SELECT max(ranges) FROM pgtide.validation_tables WHERE run_id = %s",
        (run_id,)) == 1
    assert target_db.query_one(
        "SELECT rows_source FROM pgtide.validation_tables"
        " WHERE run_id = %s AND src_table = 'public.pgbench_accounts'",
        (run_id,)) == 100000
    # the application moves to the target
    writer.stop()
    bench.wait(90)

    m = re.search(r"write-unavailability window: ([0-9.]+) s", r.stdout)
    assert m, r.stdout
    print(f"write-unavailability window: {m.group(1)} s")
    assert migrate.wait(60) == 0, migrate.read_stderr()

    # every write the source acknowledged is on the target, nothing else
    assert_same_content(source_db, target_db)
    acked = writer.acknowledged
    on_target = {i for (i,) in target_db.query("SELECT id FROM events")}
    assert set(acked) <= on_target
    assert target_db.query_one("SELECT count(*) FROM pgbench_history") > 0

    # writes failed only inside the window: after the fence went up
    result, error, window_ms, fenced_at, done_at = cutover_row(target_db)
    assert result == "done" and error is None
    assert window_ms is not None and window_ms >= 0
    if writer.failures:
        assert min(writer.failures) >= fenced_at.timestamp() - 0.05
    assert max(t for t, i in writer.attempts if i is not None) <= done_wall
    assert not can_write(source_db, role)

    # sequences on the target are ahead of the source's
    src_last = source_db.query_one("SELECT last_value FROM events_id_seq")
    tgt_last = target_db.query_one("SELECT last_value FROM events_id_seq")
    assert tgt_last >= src_last + 1000
    new_id = target_db.query_one(
        "INSERT INTO events (v) VALUES (0) RETURNING id")
    assert new_id > max(acked)

    # the task is finished: a second cutover and a new migrate refuse
    again = pgtide.run("cutover", "--source", source_db.uri, "--target",
                       target_db.uri, "--fence-role", role)
    assert again.returncode == 2 and "already cut over" in again.stderr
    assert pgtide.run("clean", "--source", source_db.uri, "--target",
                      target_db.uri).returncode == 0


def test_failed_step_undoes_the_fence_and_replication_goes_on(
        pgtide, source_db, target_db):
    """A cutover killed while the source is fenced leaves its undo behind;
    the next cutover lifts that fence first. That one fails at the
    sequences (the target refuses setval): its own read-only fence is
    undone, the task keeps replicating; once fixed, cutover succeeds."""
    role = "app_undo"
    source_db.execute(EVENTS + "INSERT INTO events (v) SELECT g FROM "
                      "generate_series(1, 200) g;")
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    args = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence", "read_only", "--fence-role", role]

    killed = pgtide.run(*args, env={"PGTIDE_FAULT": "cutover.fenced"})
    assert killed.returncode == -9, killed.stderr
    assert not can_write(source_db, role)  # fenced, and nobody to undo it

    # the target refuses the sequence's new value
    target_db.execute("ALTER SEQUENCE events_id_seq MAXVALUE 300")
    failed = pgtide.run(*args)
    assert failed.returncode == 4, failed.stderr
    assert "lifting that fence first" in failed.stderr
    assert "events_id_seq" in failed.stderr
    assert "fence is undone" in failed.stderr
    result, error, _, _, _ = cutover_row(target_db)
    assert result == "failed, fence undone" and "events_id_seq" in error
    assert source_db.query_one(
        "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d"
        " ON d.oid = s.setdatabase WHERE d.datname = current_database()") == 0

    # the source takes writes again and they still reach the target
    assert can_write(source_db, role)
    assert migrate.poll() is None
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, tables=["public.events"])

    target_db.execute("ALTER SEQUENCE events_id_seq NO MAXVALUE")
    ok = pgtide.run(*args)
    assert ok.returncode == 0, ok.stderr
    assert migrate.wait(60) == 0
    assert not can_write(source_db, role)
    assert_same_content(source_db, target_db, tables=["public.events"])


def test_cutover_refuses_without_a_following_migrate(pgtide, source_db,
                                                     target_db):
    """No task, no roles, no running stream: one clear error each, and the
    source is never fenced."""
    role = "app_refused"
    source_db.execute(EVENTS)
    make_role(source_db, role)
    base = ["cutover", "--source", source_db.uri, "--target", target_db.uri]

    r = pgtide.run(*base, "--fence-role", role)
    assert r.returncode == 2 and 'no task "default"' in r.stderr, r.stderr

    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    r = pgtide.run(*base)
    assert r.returncode == 2 and "--fence-role" in r.stderr, r.stderr
    r = pgtide.run(*base, "--fence-role", "no_such_role")
    assert r.returncode == 2 and "no_such_role" in r.stderr, r.stderr
    assert migrate.stop() == 0

    r = pgtide.run(*base, "--fence-role", role)
    assert r.returncode == 2 and "no pgtide migrate is following" in r.stderr
    assert can_write(source_db, role)


def following_with_fault(pgtide, source_db, target_db, role, fault):
    """events and an application role on the source, a pgtide migrate
    following it with PGTIDE_FAULT=fault, and the target caught up."""
    source_db.execute(EVENTS)
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db,
                            env={"PGTIDE_FAULT": fault})
    source_db.execute(
        "INSERT INTO events (v) SELECT g FROM generate_series(1, 100) g")
    wait_caught_up(source_db, target_db)
    return migrate

def test_cutover_that_gives_up_leaves_the_stream_following(pgtide, source_db,
                                                           target_db):
    """The stream has stopped at the marker, but before it records the end
    of the task, cutover's wait for it times out: cutover takes its request
    back and lifts the fence. The stream must not end the task after that
    (the source takes writes again): it finds the request gone and follows
    on, so writes made after the failed cutover still reach the target."""
    role = "app_giveup"
    migrate = following_with_fault(pgtide, source_db, target_db, role,
                                   "follow.stopped_at_marker:sleep=10000")

    r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                   target_db.uri, "--fence-role", role, "--timeout", "3")
    assert r.returncode != 0, r.stdout
    assert "did not stop at the marker" in r.stderr, r.stderr
    assert can_write(source_db, role)

    migrate.wait_for_output("took back its request", timeout=60)
    source_db.execute("INSERT INTO events (v) VALUES (4242)")
    wait_caught_up(source_db, target_db)
    assert target_db.query_one(
        "SELECT count(*) FROM events WHERE v = 4242") == 1
    assert_same_content(source_db, target_db)
    assert target_db.query_one("SELECT phase FROM pgtide.task") == "cdc"
    assert migrate.poll() is None
    assert migrate.stop() == 0


def test_migrate_killed_at_the_marker_finishes_the_cutover_on_restart(
        pgtide, source_db, target_db):
    """The stream stops at the marker and pgtide migrate is killed before it
    records the end of the task. Restarted while cutover still waits, it
    finds the target already past the marker, stops at once and records it;
    cutover then finishes."""
    role = "app_restart"
    migrate = following_with_fault(pgtide, source_db, target_db, role,
                                   "follow.stopped_at_marker")

    cut = pgtide.start("cutover", "--source", source_db.uri, "--target",
                       target_db.uri, "--fence-role", role, "--timeout", "60")
    assert migrate.wait(60) == -9, migrate.read_stderr()
    assert target_db.query_one("SELECT phase FROM pgtide.task") == "cdc"
    again = pgtide.start("migrate", "--source", source_db.uri, "--target",
                         target_db.uri, "--progress-interval", "1")
    assert cut.wait(90) == 0, cut.read_stderr()
    assert again.wait(60) == 0, again.read_stderr()
    assert target_db.query_one("SELECT phase FROM pgtide.task") == "cutover"
    assert_same_content(source_db, target_db)
    assert not can_write(source_db, role)


def test_a_table_dropped_on_the_source_is_decided_not_stuck(pgtide, source_db,
                                                            target_db):
    """A partition dropped on the source during the stream (a retention
    job): validate names it, cutover refuses before the fence until told what
    the target does, and --dropped-tables drop drops it on the target under
    the fence. A table renamed on the source (here out of the task's
    patterns) is never taken for dropped: its rows are still there."""
    role = "app_dropped"
    source_db.execute("""
        CREATE TABLE m (id int, d date, v text, PRIMARY KEY (id, d))
          PARTITION BY RANGE (d);
        CREATE TABLE m_2023 PARTITION OF m
          FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
        CREATE TABLE m_2024 PARTITION OF m
          FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        INSERT INTO m SELECT g, '2023-06-01'::date + (g % 400), 'x'
          FROM generate_series(1, 1000) g;
        CREATE TABLE other (id int PRIMARY KEY);
        INSERT INTO other SELECT generate_series(1, 10);
    """)
    make_role(source_db, role)
    skip = ["-T", "public.other_renamed"]
    migrate = start_migrate(pgtide, source_db, target_db, *skip)
    wait_caught_up(source_db, target_db)
    source_db.execute("DROP TABLE m_2023")
    source_db.execute("INSERT INTO m VALUES (5000, '2024-05-05', 'y')")
    source_db.execute("ALTER TABLE other RENAME TO other_renamed")
    wait_caught_up(source_db, target_db)
    base = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence-role", role, *skip]

    def can_write():
        try:
            with psycopg.connect(source_db.uri_as(role), autocommit=True) as c:
                c.execute("INSERT INTO m VALUES (-1, '2024-01-01', 'w')")
                c.execute("DELETE FROM m WHERE id = -1")
            return True
        except psycopg.Error:
            return False

    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri, *skip)
    assert r.returncode == 7, r.stderr
    assert re.search(r"public\.m_2023 +DIFFERENT gone from the source",
                     r.stdout), r.stdout
    r = pgtide.run(*base, "--dropped-tables", "drop")
    assert r.returncode == 2, r.stderr
    assert ("table public.other was renamed on the source since the load: "
            "it is public.other_renamed now") in r.stderr
    assert can_write()
    source_db.execute("ALTER TABLE other_renamed RENAME TO other")
    r = pgtide.run(*base)
    assert r.returncode == 2, r.stderr
    assert ("1 table of the task was dropped on the source since the load: "
            "public.m_2023") in r.stderr
    assert "--dropped-tables" in r.stderr
    assert can_write()
    assert target_db.query_one("SELECT count(*) FROM m_2023") > 0
    r = pgtide.run(*base, "--dropped-tables", "drop")
    assert r.returncode == 0, r.stderr
    assert "1 tables dropped on the source: dropped on the target" in r.stderr
    assert target_db.query_one("SELECT to_regclass('public.m_2023')") is None
    assert_same_content(source_db, target_db)
    assert migrate.wait(60) == 0


def test_a_table_the_task_left_out_is_refused_before_the_fence(
        pgtide, source_db, target_db):
    """A table the task's patterns select, created while the stream runs,
    that cannot join (unlogged: its changes are not in the WAL): cutover
    refuses before anything is fenced, naming it, rather than hand over a
    target without it; excluded on purpose (-T), the cutover goes ahead. A
    table the follower's own patterns leave out is never named."""
    role = "app_left_out"
    source_db.execute(EVENTS + "INSERT INTO events (v) SELECT generate_series(1, 50);"
                      "CREATE TABLE legacy (id int PRIMARY KEY);")
    make_role(source_db, role)
    # the follower's patterns are the task's: a cutover (or status) run
    # without them takes legacy as left out on purpose
    migrate = start_migrate(pgtide, source_db, target_db, "-T", "public.legacy")
    wait_caught_up(source_db, target_db)
    source_db.execute("CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);"
                      "INSERT INTO scratch SELECT generate_series(1, 5)")
    base = ["cutover", "--source", source_db.uri, "--target", target_db.uri,
            "--fence-role", role]
    r = pgtide.run(*base)
    assert r.returncode == 2, r.stderr
    assert ("1 table the task's patterns select is on the source but not in "
            'the task: "public"."scratch"') in r.stderr, r.stderr
    assert "tables.exclude" in r.stderr
    assert "legacy" not in r.stderr
    assert can_write(source_db, role)
    assert target_db.query_one("SELECT phase FROM pgtide.task") == "cdc"
    assert migrate.poll() is None, migrate.read_stderr()

    r = pgtide.run(*base, "-T", "public.scratch")
    assert r.returncode == 0, r.stderr
    assert migrate.wait(60) == 0
    assert target_db.query_one("SELECT to_regclass('public.scratch')") is None
