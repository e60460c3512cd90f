"""One process per task: a copy, migrate or follow of a task that another
process runs is refused at once, naming that process, before it checks,
creates or changes anything; status says who runs the task; clean refuses
while it runs unless forced; a killed process leaves nothing that blocks the
next run; a process whose lock was taken while its session was lost stops."""
import json
import signal
import socket
import threading

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for
from helpers import make_load_dataset, state_tables

BUSY = 8
SLOW_COPY = {"PGTIDE_FAULT": "copy.row@10000:sleep=4000"}


def copy_args(source_db, target_db):
    return ["copy", "--source", source_db.uri, "--target", target_db.uri,
            "--split-tables-larger-than", "512kB", "--jobs", "2"]


def lock_key(schema, task):
    """32-bit FNV-1a over schema, a zero byte, task, a zero byte; 31 bits."""
    h = 2166136261
    for b in schema.encode() + b"\0" + task.encode() + b"\0":
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


def holder(pgtide, target_db):
    """The process status names, or None."""
    r = pgtide.run("status", "--target", target_db.uri, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["process"]


def untouched_by_a_second_run(source_db, target_db):
    """What a second run would change before its first table: the task's
    run counter, phase and consistent point, each table's load count (the
    first run's workers go on copying chunks meanwhile), the source's
    slots."""
    return (target_db.query("SELECT task, runs, phase, consistent_lsn::text,"
                            " last_error FROM pgtide.task ORDER BY task"),
            {t: s[1] for t, s in state_tables(target_db).items()},
            source_db.query("SELECT slot_name, restart_lsn::text"
                            " FROM pg_replication_slots ORDER BY 1"))


def lock_session(target_db, command):
    """The target backend holding the task's lock for `command`."""
    return target_db.query_one(
        "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted"
        " AND a.application_name LIKE %s", (f"pgtide {command}, pid %",))


def test_second_copy_refuses_at_once_and_the_first_finishes(pgtide, source_db,
                                                             target_db):
    make_load_dataset(source_db, big_rows=25000)
    first = pgtide.start(*copy_args(source_db, target_db), env=SLOW_COPY)
    first.wait_for_output(r"fault point copy.row: sleeping")
    before = untouched_by_a_second_run(source_db, target_db)
    host = socket.gethostname()

    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == BUSY, r.stderr
    assert (f'pgtide: error: task "default" is running: pgtide copy, pid '
            f'{first.pid} on host "{host}", since ') in r.stderr, r.stderr
    assert "HINT: one process runs a task at a time" in r.stderr
    # refused before it checked, created or changed anything
    assert untouched_by_a_second_run(source_db, target_db) == before
    assert "pgtide: error" not in first.read_stderr()

    # status names the running process, as text and JSON
    p = holder(pgtide, target_db)
    assert (p["host"], p["pid"], p["command"]) == (host, first.pid, "copy")
    assert p["since"]
    r = pgtide.run("status", "--target", target_db.uri)
    assert (f"process: running: pgtide copy, pid {first.pid} on host {host},"
            " since ") in r.stdout, r.stdout

    assert first.wait(120) == 0, first.read_stderr()
    assert_same_content(source_db, target_db)
    assert target_db.query_one(
        "SELECT count(*) FROM pgtide.tables WHERE state <> 'done'") == 0
    # once it ended, nothing runs the task
    assert holder(pgtide, target_db) is None
    r = pgtide.run("status", "--target", target_db.uri)
    assert "process: none running" in r.stdout


def test_follow_and_clean_refuse_while_migrate_runs(pgtide, source_db,
                                                    target_db):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t SELECT g, 'a' FROM generate_series(1, 10) g")
    m = start_migrate(pgtide, source_db, target_db)
    host = socket.gethostname()
    named = (f'task "default" is running: pgtide migrate, pid {m.pid} on host '
             f'"{host}", since ')
    r = pgtide.run("follow", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == BUSY and named in r.stderr, r.stderr
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == BUSY and named in r.stderr, r.stderr
    # the running one goes on following
    source_db.execute("UPDATE t SET v = 'b'")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)

    clean = ["clean", "--source", source_db.uri, "--target", target_db.uri]
    r = pgtide.run(*clean)
    assert r.returncode == BUSY and named in r.stderr, r.stderr
    assert "--force" in r.stderr
    assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 1
    r = pgtide.run(*clean, "--force")
    assert r.returncode == 0, r.stderr
    m.wait(60)
    assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 0
    assert target_db.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0


def test_a_killed_process_does_not_block_the_next_run(pgtide, source_db,
                                                      target_db):
    make_load_dataset(source_db, big_rows=25000)
    first = pgtide.start(*copy_args(source_db, target_db), env=SLOW_COPY)
    first.wait_for_output(r"fault point copy.row: sleeping")
    assert holder(pgtide, target_db)["pid"] == first.pid
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    # its record stays, but its lock went with its session: the next run
    # starts at once
    assert target_db.query_one("SELECT pid FROM pgtide.processes") == first.pid
    wait_for(lambda: holder(pgtide, target_db) is None, 10, 0.1,
             "the killed process's session outlived it")
    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0, r.stderr
    assert_same_content(source_db, target_db)


def test_lost_lock_session_is_replaced_and_the_lock_taken_again(
        pgtide, source_db, target_db):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t VALUES (1, 'a')")
    m = start_migrate(pgtide, source_db, target_db)
    old = lock_session(target_db, "migrate")
    target_db.execute("SELECT pg_terminate_backend(%s)", (old,))
    m.wait_for_output(r"the task's lock is held again")

    def renamed():
        p = holder(pgtide, target_db)
        return p if p and p["target_pid"] != old else None
    p = wait_for(renamed, 30, 0.2, "status never named the new session")
    assert (p["pid"], p["command"]) == (m.pid, "migrate")
    source_db.execute("UPDATE t SET v = 'b'")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    assert m.stop() == 0, m.read_stderr()


def test_lock_taken_by_another_while_its_session_was_lost_stops_the_process(
        pgtide, source_db, target_db):
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                      " INSERT INTO t VALUES (1, 'a')")
    m = start_migrate(pgtide, source_db, target_db)
    old = lock_session(target_db, "migrate")
    keys = target_db.query(
        "SELECT classid::int8, objid::int8 FROM pg_locks"
        " WHERE locktype = 'advisory' AND objsubid = 2 AND pid = %s", (old,))
    assert len(keys) == 1
    ns, key = keys[0]
    # the keys are a contract between pgtide versions (decision 0014)
    assert (ns, key) == (1885828196, lock_key("pgtide", "default"))
    with target_db.connect() as other:
        other.autocommit = True
        other.execute("SET application_name = 'the other one'")
        other_pid = other.info.backend_pid
        # queued behind the running process: granted the moment its session
        # ends, before that process can take the lock again
        waiter = threading.Thread(target=other.execute, args=(
            "SELECT pg_advisory_lock(%s::int, %s::int)", (ns, key)))
        waiter.start()
        wait_for(lambda: target_db.query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted",
            (other_pid,)) == 1, 10, 0.05, "the other session never queued")
        target_db.execute("SELECT pg_terminate_backend(%s)", (old,))
        waiter.join(30)
        assert not waiter.is_alive()
        assert m.wait(60) == BUSY, m.read_stderr()
        err = m.read_stderr()
        assert ("pgtide: error: lost the task's lock while its session on the "
                "target was down: task \"default\" is running: the target's "
                f"session {other_pid} holds its lock (application \"the other "
                "one\"") in err, err
