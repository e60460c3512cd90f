"""The guards over the source (docs/guard.md, decision 0025): the retained
WAL guard's warn, pause and stop, a slot the server invalidated, the
heartbeat that lets an idle database's slot advance, and the xmin guard."""
import json
import re
import threading
import time

import psycopg
import pytest

from cdc_helpers import ServerDb, Workload, lsn, start_migrate
from conftest import _free_port, wait_for


def task_file(tmp_path, source_uri, target_uri, **keys):
    """A task file with guard keys (nested YAML from dotted names)."""
    sections = {}
    for k, v in keys.items():
        sec, key = k.split("__")
        sections.setdefault(sec, {})[key] = v
    lines = [f"source: '{source_uri}'", f"target: '{target_uri}'"]
    for sec, kv in sections.items():
        lines.append(f"{sec}:")
        lines.extend(f"  {k}: {v}" for k, v in kv.items())
    path = tmp_path / "task.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def status_json(pgtide, target_db, source=None):
    args = ["status", "--target", target_db.uri, "--json"]
    if source is not None:
        args += ["--source", source.uri]
    r = pgtide.run(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class OtherDbWriter(Workload):
    """Writes to another database of the same server, with WAL switches so
    the server's WAL moves on quickly."""

    def step(self, conn):
        conn.execute("INSERT INTO noise SELECT g, repeat('x', 200) "
                     "FROM generate_series(1, 500) g")
        time.sleep(0.05)


def test_heartbeat_advances_an_idle_databases_slot(pgtide, make_server,
                                                  target_db, tmp_path):
    """The slot of an idle database confirms past what another database
    of the server writes. (The stream confirms the server's position when it
    has nothing to apply, so this holds without a heartbeat too; the
    heartbeat is the second line, test_wal_guard_warns_and_pauses_visibly
    sees it written and streamed through.)"""
    src = make_server("hb")
    src.execute("postgres", "CREATE DATABASE idle")
    src.execute("postgres", "CREATE DATABASE busy")
    src.execute("idle", "CREATE TABLE t (id int PRIMARY KEY)")
    src.execute("idle", "INSERT INTO t VALUES (1)")
    src.execute("busy", "CREATE TABLE noise (id int, v text)")
    idle_uri, busy_uri = src.uri("idle"), src.uri("busy")

    class Busy:
        uri = busy_uri
    cfg = task_file(tmp_path, idle_uri, target_db.uri,
                    guard__heartbeat=1, guard__interval=1)
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)

    def confirmed():
        return lsn(src.query_one(
            "idle", "SELECT confirmed_flush_lsn::text FROM pg_replication_slots"
            " WHERE slot_name = 'pgtide_default'"))
    with OtherDbWriter(Busy):
        start = lsn(src.query_one("busy", "SELECT pg_current_wal_lsn()::text"))
        wait_for(lambda: confirmed() > start + 4 * 1024 * 1024, 60, 0.5,
                 "the idle database's slot never confirmed past the other "
                 "database's writes")
    assert p.stop() == 0


SCHEMA = """
    CREATE TABLE t (id bigint PRIMARY KEY, v text);
    INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g;
"""


class Writer(Workload):
    """Inserts rows of about 1 kB into t, fast enough to grow the WAL."""

    def __init__(self, db):
        super().__init__(db)
        self.next = 1000

    def step(self, conn):
        conn.execute("INSERT INTO t SELECT g, repeat('w', 1000)"
                     " FROM generate_series(%s::bigint, %s::bigint) g",
                     (self.next, self.next + 49))
        self.next += 50
        time.sleep(0.1)


def metrics(port):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def metric(text, name, **labels):
    """The value of one sample, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def held_back(target_db):
    """A session on the target holding the table t: the applier waits."""
    conn = psycopg.connect(target_db.uri)
    conn.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    return conn


def test_wal_guard_warns_and_pauses_visibly(pgtide, source_db, target_db,
                                            tmp_path):
    source_db.execute(SCHEMA)
    port = _free_port()
    cfg = task_file(tmp_path, source_db.uri, target_db.uri,
                    guard__wal_warn="1MB", guard__wal_pause="3MB",
                    guard__interval=1, guard__heartbeat=1,
                    http__listen=port)
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    lock = held_back(target_db)
    try:
        with Writer(source_db):
            p.wait_for_output(r"guard: warn: the slot \"pgtide_default\" "
                              r"retains .* past guard.wal_warn \(1.0 MB\)", 60)
            p.wait_for_output(r"guard: pause: .* past guard.wal_pause", 60)
        st = status_json(pgtide, target_db)
        g = st["guard"]
        assert g["level"] == "pause" and g["paused"] is True, g
        assert g["warns"] == 1 and g["pauses"] == 1 and g["stops"] == 0, g
        assert g["retained_wal_bytes"] >= 3 * 1024 * 1024, g
        assert g["wal_pause_bytes"] == 3 * 1024 * 1024, g
        assert g["message"].startswith("pause: "), g
        # for a person, one line
        r = pgtide.run("status", "--target", target_db.uri)
        line = [l for l in r.stdout.splitlines() if l.startswith("guard: ")]
        assert len(line) == 1 and line[0].startswith(
            "guard: pause, paused; the slot retains "), r.stdout
        assert "(warn at 1.0 MB, pause at 3.0 MB); pause: the slot" in line[0]
        # the applier waits, the slot's position stands while the WAL grows:
        # heartbeats are written, and the stream takes them in its stride
        assert g["heartbeats"] >= 1 and not g["heartbeat_refused"], g
        text = metrics(port)
        assert metric(text, "pgtide_guard_paused") == 1
        assert metric(text, "pgtide_guard_wal_level", level="pause") == 1
        assert metric(text, "pgtide_guard_wal_actions_total",
                      action="warn") == 1
        assert metric(text, "pgtide_guard_wal_threshold_bytes",
                      action="pause") == 3 * 1024 * 1024
        assert metric(text, "pgtide_guard_wal_threshold_bytes",
                      action="stop") is None
        assert metric(text, "pgtide_guard_heartbeats_total") >= 1
    finally:
        lock.close()
    # the applier goes on; once the slot moves on, the pause clears
    def cleared():
        source_db.execute("CHECKPOINT")
        return "back under guard.wal_pause: the pause is over" in p.read_stderr()
    wait_for(cleared, 90, 1, "the pause never cleared")
    assert p.stop() == 0


def test_wal_guard_stop_drops_the_slot(pgtide, source_db, target_db, tmp_path):
    source_db.execute(SCHEMA)
    cfg = task_file(tmp_path, source_db.uri, target_db.uri,
                    guard__wal_stop="2MB", guard__interval=1)
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    lock = held_back(target_db)
    try:
        with Writer(source_db):
            p.wait_for_output(r"guard: stop: .* stopping the task", 120)
        # the slot goes at once, while the applier still waits on the lock
        wait_for(lambda: source_db.query_one(
            "SELECT count(*) FROM pg_replication_slots") == 0, 30, 0.2,
            "the slot was not dropped while the applier waited")
        assert p.poll() is None
    finally:
        # the applier, waiting on the lock, finishes its statement first
        lock.close()
    p.wait(120)
    err = p.read_stderr()
    assert "guard: warn" not in err and "guard: pause" not in err, err
    assert p.returncode == 9, err
    assert re.search(r"pgtide: error: guard.wal_stop: the replication slot "
                     r"\"pgtide_default\" retained \d.* of WAL on the source, "
                     r"past guard.wal_stop \(2.0 MB\); the task was stopped and "
                     r"its slot dropped", err), err
    assert "HINT: to migrate again, run pgtide clean, then pgtide migrate" in err
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    st = status_json(pgtide, target_db)
    assert st["guard"]["level"] == "stop" and st["guard"]["stops"] == 1
    assert st["last_error"].startswith("guard.wal_stop: "), st


@pytest.mark.parametrize("who", ["guard", "stream"])
def test_invalidated_slot_stops_with_a_clear_message(pgtide, make_server,
                                                    target_db, tmp_path, who):
    """The guard sees wal_status = 'lost'; with the guard reading once an
    hour, the stream meets the invalidated slot when it reconnects (the
    server ends its walsender): the same message either way."""
    src = make_server("lost", max_slot_wal_keep_size="1MB")
    db = ServerDb(src)
    db.execute(SCHEMA)
    cfg = task_file(tmp_path, db.uri, target_db.uri,
                    guard__interval=1 if who == "guard" else 3600)
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    lock = held_back(target_db)
    try:
        with Writer(db):
            def lost():
                db.execute("SELECT pg_switch_wal()")
                db.execute("CHECKPOINT")
                return (p.poll() is not None or "invalidated" in p.read_stderr()
                        or "replication stream" in p.read_stderr())
            wait_for(lost, 120, 0.5, "pgtide never stopped on the lost slot")
    finally:
        lock.close()
    p.wait(120)
    err = p.read_stderr()
    assert p.returncode == 9, err
    assert re.search(r"pgtide: error: the source invalidated the task's "
                     r"replication slot \"pgtide_default\"", err), err
    assert "HINT: start the task anew: pgtide clean, then pgtide migrate" in err
    assert "max_slot_wal_keep_size" in err
    assert re.search(r"pgtide: replication slot \"pgtide_default\" is left on "
                     r"the source and holds .* of WAL there; the task cannot "
                     r"resume from it; drop it with: pgtide clean", err), err


def test_xmin_guard_warns_while_the_load_holds_its_snapshot(
        pgtide, source_db, target_db, tmp_path):
    """A chunk held for seconds (a fault point's sleep) keeps the load's
    snapshot, and its xmin, on the source past guard.xmin_age."""
    source_db.execute(SCHEMA)
    cfg = task_file(tmp_path, source_db.uri, target_db.uri,
                    guard__xmin_age=2, guard__xid_age=1, guard__interval=1)
    p = pgtide.start("migrate", "--config", cfg, "--jobs", "1",
                     "--progress-interval", "1",
                     env={"PGTIDE_FAULT": "copy.chunk.before_commit:sleep=8000"})
    p.wait_for_output(r"guard: pgtide's sessions on the source have held its "
                      r"xmin horizon for \d+ s, past guard.xmin_age \(2 s\): "
                      r"VACUUM cannot remove the rows deleted or updated "
                      r"since, anywhere on that server; the database has \d+ "
                      r"dead rows now", 60)
    p.wait_for_output(r"guard: the source database's transaction ID age is "
                      r"\d+, past guard.xid_age \(1\)", 30)

    def warned():
        g = status_json(pgtide, target_db)["guard"]
        return g if g and g["xmin_warning"] else None
    g = wait_for(warned, 30, 0.5, "status never showed the xmin warning")
    # past 2 s, as the report writes it: to a tenth of a second
    assert g["snapshot_age_seconds"] >= 2.0, g
    assert g["xid_age_warning"] is True and g["xid_age"] >= 1, g
    assert g["oldest_xmin_age"] >= 0 and g["dead_rows"] >= 0, g
    # once the load let go of its snapshot, the warning clears
    p.wait_for_output(r"guard: pgtide's sessions hold the source's xmin "
                      r"horizon no longer than guard.xmin_age", 60)
    p.wait_for_output(r"streaming from slot", 60)
    assert p.stop() == 0


def test_wal_guard_pauses_the_load_between_chunks(pgtide, source_db, target_db,
                                                  tmp_path):
    """During the load the slot cannot move: past guard.wal_pause the copy
    workers stop between chunks, and stay stopped, which status shows."""
    source_db.execute("""
        CREATE TABLE big (id bigint PRIMARY KEY, v text);
        INSERT INTO big SELECT g, repeat('b', 500) FROM generate_series(1, 4000) g;
    """ + SCHEMA)
    cfg = task_file(tmp_path, source_db.uri, target_db.uri,
                    guard__wal_pause="1MB", guard__interval=1,
                    copy__split_tables_larger_than="256kB", copy__jobs=1)
    # the first chunk is held while the source writes past the threshold
    p = pgtide.start("migrate", "--config", cfg, "--progress-interval", "1",
                     env={"PGTIDE_FAULT": "copy.chunk.before_commit:sleep=6000"})
    p.wait_for_output(r"created replication slot", 60)
    with Writer(source_db):
        p.wait_for_output(r"guard: pause: the slot \"pgtide_default\" retains "
                          r".* past guard.wal_pause \(1.0 MB\); the load "
                          r"pauses between chunks. This releases no WAL", 60)

    def chunks():
        st = status_json(pgtide, target_db)
        t = [t for t in st["tables"] if t["table"] == "public.big"][0]
        return st, t["chunks_done"], t["chunks"]
    st, done, planned = chunks()
    assert st["guard"]["paused"] is True and st["guard"]["level"] == "pause"
    assert st["phase"] == "load" and planned > 2 and done < planned, st
    # the workers hold: no chunk commits while the pause lasts
    time.sleep(8)
    st, later, _ = chunks()
    assert later <= done + 1 and later < planned, (done, later, planned)
    assert "streaming from slot" not in p.read_stderr()
    assert p.stop() == 5


def test_a_share_needs_the_declared_free_space(pgtide, source_db, target_db,
                                               tmp_path):
    source_db.execute(SCHEMA)
    cfg = task_file(tmp_path, source_db.uri, target_db.uri,
                    guard__wal_pause="50%")
    r = pgtide.run("migrate", "--config", cfg)
    assert r.returncode == 2, r.stderr
    assert ("pgtide: error: guard.wal_pause is a share of "
            "check.wal_free_space, which the task does not declare") in r.stderr
    assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 0
