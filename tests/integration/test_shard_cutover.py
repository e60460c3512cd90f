"""cutover of a task with several targets (docs/sharding.md): one fence and
one marker on the source, every target past the marker, its sequences set
(spaced k mod n when asked) and validated before any stream is told to
stop. A failure on one target undoes the fence for all and every target
keeps following; a stream that does not stop once others have is past the
point of no return: the source stays fenced, and the next cutover
finishes the hand-over."""
import os
import signal
import threading
import time

import psycopg
import pytest

from conftest import wait_for
from test_cutover import make_role
from test_shard import (HASHED, LOADED, assert_hashed_image,  # noqa: F401
                        assert_routed, move_order_away, target_index, targets,
                        task_file)
from test_shard_stream import children_of, wait_caught_up, wait_streaming

EVENTS = """
    CREATE TABLE events (id bigserial PRIMARY KEY, account_id bigint NOT NULL,
                         v int);
    INSERT INTO events (account_id, v)
      SELECT g % 300 + 1, g FROM generate_series(1, 500) g;
"""


class RoleWriter(threading.Thread):
    """Writes as the application's role, one small transaction at a time,
    until stopped: an event and a routing-key move of an order. Records
    what the source acknowledged."""

    def __init__(self, source_db, role):
        super().__init__(daemon=True)
        self.uri = source_db.uri_as(role)
        self.stop_event = threading.Event()
        self.acknowledged = []
        self.failures = 0

    def run(self):
        n = 0
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(self.uri, autocommit=True) as c:
                    while not self.stop_event.is_set():
                        n += 1
                        with c.transaction():
                            i = c.execute(
                                "INSERT INTO events (account_id, v) VALUES"
                                " (%s, %s) RETURNING id",
                                (n % 300 + 1, n)).fetchone()[0]
                            c.execute("UPDATE orders SET account_id ="
                                      " account_id %% 300 + 1 WHERE id = %s",
                                      (n % 3000 + 1,))
                        self.acknowledged.append(i)
                        time.sleep(0.003)
            except psycopg.Error:
                self.failures += 1
                time.sleep(0.05)

    def stop(self):
        self.stop_event.set()
        self.join(30)


def can_write(source_db, role):
    try:
        with psycopg.connect(source_db.uri_as(role), autocommit=True) as c:
            c.execute("INSERT INTO events (account_id, v) VALUES (1, -1)")
        return True
    except psycopg.Error:
        return False


def phases(targets):
    return [db.query_one("SELECT phase FROM pgtide.task") for db in targets]


def assert_events_routed(source_db, targets):
    assert_routed(source_db, targets, "events",
                  lambda row, i: target_index(str(row[1]), 3) == i)


def streaming(pgtide, source_db, targets, tmp_path, role, env=None):
    source_db.execute(LOADED + EVENTS)
    make_role(source_db, role)
    path = task_file(tmp_path, source_db, targets, HASHED)
    p = pgtide.start("migrate", "--config", path, env=env)
    wait_streaming(p)
    return path, p


def test_one_fence_every_target_handed_over_with_spaced_sequences(
        pgtide, source_db, targets, tmp_path):
    role = "app_split"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    w = RoleWriter(source_db, role)
    w.start()
    try:
        wait_for(lambda: len(w.acknowledged) > 200, 60, 0.1,
                 "the writer is stuck")
        r = pgtide.run("cutover", "--config", path, "--fence", "revoke",
                       "--fence-role", role, "--sequence-spacing", "modulo",
                       "--final-validation", "full")
        assert r.returncode == 0, r.stderr
        assert not can_write(source_db, role)
    finally:
        w.stop()
    # every target's stream stopped at the marker: migrate ends
    assert p.wait(60) == 0, p.read_stderr()
    assert phases(targets) == ["cutover"] * 3
    out = r.stdout
    assert "handed over to the targets" in out, out
    for name in ("shard1", "shard2", "shard3"):
        assert f"target {name}: marker" in out, out
        assert f"target {name}: final validation (full)" in out, out
    # one fence: the report says so once
    assert out.count("fence (revoke)") == 1, out

    # every acknowledged write is on the target its key says, nothing lost
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)
    assert sum(db.query_one("SELECT count(*) FROM events") for db in targets) \
        == source_db.query_one("SELECT count(*) FROM events")
    on_targets = set()
    for db in targets:
        on_targets |= {i for (i,) in db.query("SELECT id FROM events")}
    assert set(w.acknowledged) <= on_targets

    # target k of 3 hands out ids = k mod 3, past every id the source gave
    src_last = source_db.query_one("SELECT last_value FROM events_id_seq")
    seen = set()
    for k, db in enumerate(targets, start=1):
        assert db.query_one("SELECT increment_by FROM pg_sequences"
                            " WHERE sequencename = 'events_id_seq'") == 3
        ids = [db.query_one("INSERT INTO events (account_id, v) VALUES (1, 0)"
                            " RETURNING id") for _ in range(3)]
        assert all(i % 3 == k % 3 and i > src_last + 1000 for i in ids), ids
        assert not seen & set(ids)
        seen |= set(ids)

    again = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert again.returncode == 2 and "already cut over" in again.stderr, \
        again.stderr
    r = pgtide.run("clean", "--config", path)
    assert r.returncode == 0, r.stderr
    assert source_db.query_one("SELECT count(*) FROM pg_replication_slots") == 0


def test_one_target_failing_undoes_the_fence_for_every_target(
        pgtide, source_db, targets, tmp_path):
    """shard2 refuses its sequence's value: the cutover fails after every
    target passed the marker, the fence comes down, no stream stops, and
    every target keeps following the writes that come after. Once fixed,
    cutover hands every target over."""
    role = "app_split_undo"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    targets[1].execute("ALTER SEQUENCE events_id_seq MAXVALUE 600")
    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode != 0, r.stdout
    assert "target shard2: 1 of 1 sequences could not be set" \
        in r.stderr, r.stderr
    assert "the fence is undone" in r.stderr, r.stderr
    assert can_write(source_db, role)
    assert phases(targets) == ["cdc"] * 3
    assert p.poll() is None, p.read_stderr()
    for db in targets:
        assert db.query_one("SELECT result FROM pgtide.cutovers"
                            " ORDER BY started_at DESC LIMIT 1") == \
            "failed, fence undone"
    # the writes after the undone fence reach every target
    w = RoleWriter(source_db, role)
    w.start()
    wait_for(lambda: len(w.acknowledged) > 100, 60, 0.1, "the writer is stuck")
    w.stop()
    wait_caught_up(source_db, p)
    assert_events_routed(source_db, targets)

    targets[1].execute("ALTER SEQUENCE events_id_seq NO MAXVALUE")
    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode == 0, r.stderr
    assert p.wait(60) == 0, p.read_stderr()
    assert phases(targets) == ["cutover"] * 3
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)


def test_final_counts_read_the_source_once_and_name_a_target_that_differs(
        pgtide, source_db, targets, tmp_path):
    """The final validation's counts of every target's share come from one
    pass over the fenced source: orders (ten rows a key) counted per key
    and routed in pgtide, accounts and events (about a row a key) by the
    target index the source computes, plans whole, audit to one target. A
    row moved to a target its key does not name, and a row missing, each
    fail the cutover naming a target, with the fence undone; put back,
    the cutover succeeds."""
    role = "app_split_counts"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    source_db.execute("ANALYZE")
    home, away = move_order_away(source_db, targets)
    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode == 7, r.stderr
    assert "counted every target's share of 6 tables in one pass" \
        in r.stderr, r.stderr
    named = min(home, away) + 1
    assert f"target shard{named}: final validation: " not in r.stderr
    assert f"target shard{named}: final validation found differences" \
        in r.stderr, r.stderr
    assert "the fence is undone" in r.stderr, r.stderr
    assert can_write(source_db, role)
    assert phases(targets) == ["cdc"] * 3
    move_order_away(source_db, targets, back=True)

    # an event missing where its key lives (the hashed pass)
    event = source_db.query("SELECT id, account_id, v FROM events"
                            " ORDER BY id LIMIT 1")[0]
    where = target_index(str(event[1]), 3)
    targets[where].execute("DELETE FROM events WHERE id = %s", (event[0],))
    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode == 7, r.stderr
    assert f"target shard{where + 1}: final validation found differences" \
        in r.stderr, r.stderr
    assert can_write(source_db, role)
    targets[where].execute("INSERT INTO events VALUES (%s, %s, %s)", event)

    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode == 0, r.stderr
    assert p.wait(60) == 0, p.read_stderr()
    for name in ("shard1", "shard2", "shard3"):
        assert f"target {name}: final validation (counts)" in r.stdout
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)


@pytest.mark.skipif(bool(os.environ.get("PGTIDE_SANITIZED")),
                    reason="the reader's start again for every target runs"
                           " under the sanitizers in test_shard_stream.py's"
                           " source crash: CI time")
def test_a_cutover_that_gives_up_leaves_every_target_following(
        pgtide, source_db, targets, tmp_path):
    """Every target's stream stops at the marker but records the end late,
    past cutover's timeout: cutover takes its request back and lifts the
    fence. Each target then asks the task's one slot for its stream again,
    one after the other, while the reader still streams for the others:
    the stream starts again for all, and the writes made after the failed
    cutover reach every target."""
    role = "app_split_giveup"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role,
                        env={"PGTIDE_FAULT":
                             "follow.stopped_at_marker:sleep=6000"})
    r = pgtide.run("cutover", "--config", path, "--fence-role", role,
                   "--timeout", "3")
    assert r.returncode != 0, r.stdout
    assert "the fence is undone" in r.stderr or can_write(source_db, role), \
        r.stderr
    assert can_write(source_db, role)
    wait_for(lambda: p.read_stderr().count("took back its request") >= 3
             or p.poll() is not None, 60, 0.2,
             "not every target took the stop request back")
    source_db.execute("INSERT INTO events (account_id, v)"
                      " SELECT g % 50 + 1, 4242 FROM generate_series(1, 60) g")
    wait_caught_up(source_db, p)
    assert phases(targets) == ["cdc"] * 3
    assert_events_routed(source_db, targets)
    assert p.poll() is None, p.read_stderr()
    assert p.stop() == 0, p.read_stderr()


def child_of_target(parent, name):
    for pid in children_of(parent):
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"PGTIDE_SHARD_TARGET={name}".encode() in f.read().split(b"\0"):
                return pid
    raise AssertionError(f"no process of target {name}")


def test_a_stream_that_does_not_stop_leaves_the_source_fenced_until_finished(
        pgtide, source_db, targets, tmp_path):
    """shard3's process is frozen once it has applied the marker: shard1 and
    shard2 stop at the marker, shard3 does not within the timeout. That is
    past the point of no return: the source stays fenced (every target holds
    every change up to the marker), the error names both groups, and
    shard3's stop request stays. Thawed, shard3 stops at the marker; the
    next cutover finishes the hand-over and lifts nothing."""
    role = "app_split_short"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    shard3 = child_of_target(p.pid, "shard3")
    cut = pgtide.start("cutover", "--config", path, "--fence-role", role,
                       "--timeout", "8")
    try:
        wait_for(lambda: "target shard3: marker" in cut.read_stderr()
                 or cut.poll() is not None, 60, 0.05,
                 "shard3 never applied the marker")
        os.kill(shard3, signal.SIGSTOP)
        rc = cut.wait(90)
    finally:
        os.kill(shard3, signal.SIGCONT)
    err = cut.read_stderr()
    assert rc != 0, err
    assert "cutover stopped short: the change streams of shard1, shard2 " \
        "stopped at the marker, and those of shard3 did not" in err, err
    assert not can_write(source_db, role)
    # thawed, shard3 finds its stop request and stops at the marker
    assert p.wait(60) == 0, p.read_stderr()
    assert phases(targets) == ["cutover"] * 3
    assert not can_write(source_db, role)

    r = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert r.returncode == 0, r.stderr
    assert "handed over to the targets" in r.stdout, r.stdout
    assert not can_write(source_db, role)
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)
    again = pgtide.run("cutover", "--config", path, "--fence-role", role)
    assert again.returncode == 2 and "already cut over" in again.stderr, \
        again.stderr


def killed_while_fenced(pgtide, args, fault, source_db, targets, role):
    """kill -9 of the cutover at fault: the source stays fenced, with the
    fence's undo on every target, and every target still streams."""
    killed = pgtide.run(*args, env={"PGTIDE_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not can_write(source_db, role)
    for db in targets:
        assert db.query_one("SELECT cutover_undo IS NOT NULL"
                            " FROM pgtide.task") is True
    assert phases(targets) == ["cdc"] * 3


def test_cutover_killed_fenced_or_stopping_is_finished_by_the_next(
        pgtide, source_db, targets, tmp_path):
    """kill -9 of the cutover once the fence is up: the fence's undo is on
    every target, and the next cutover lifts it first (the application can
    write again) before it fences anew and hands over. kill -9 once every
    stream has been told to stop: every stream stops at the marker, the
    source stays fenced, and the next cutover only finishes the report."""
    role = "app_split_kill"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    args = ["cutover", "--config", path, "--fence-role", role]
    killed_while_fenced(pgtide, args, "cutover.fenced", source_db, targets,
                        role)
    # the next cutover lifts that fence first, then fences again and is
    # killed once every stream was told to stop
    killed = pgtide.run(*args, env={"PGTIDE_FAULT": "cutover.stop_set"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "stopped while the source was fenced; lifting that fence first" \
        in killed.stderr, killed.stderr
    assert p.wait(60) == 0, p.read_stderr()
    assert phases(targets) == ["cutover"] * 3
    assert not can_write(source_db, role)

    r = pgtide.run(*args)
    assert r.returncode == 0, r.stderr
    assert "the other change streams stopped at the earlier marker" \
        in r.stdout, r.stdout
    assert not can_write(source_db, role)
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)
    again = pgtide.run(*args)
    assert again.returncode == 2 and "already cut over" in again.stderr, \
        again.stderr


def test_a_count_pass_killed_or_cut_off_is_finished_by_the_next(
        pgtide, source_db, targets, tmp_path):
    """The one pass that counts every target's share runs on the fenced
    source. kill -9 in the middle of it: the fence's undo is on every
    target, every stream runs, and the next cutover lifts the fence first.
    That one's source sessions cut off in the middle of its count: they
    connect again, the count goes on over the still fenced source, and the
    cutover hands over exactly."""
    role = "app_split_count_kill"
    path, p = streaming(pgtide, source_db, targets, tmp_path, role)
    source_db.execute("ANALYZE")
    args = ["cutover", "--config", path, "--fence-role", role]
    killed_while_fenced(pgtide, args, "cutover.counting@2", source_db,
                        targets, role)
    assert p.poll() is None, p.read_stderr()

    c = pgtide.start(*args, env={"PGTIDE_FAULT": "cutover.counting@2:sleep=4000"})
    try:
        c.wait_for_output("lifting that fence first", timeout=60)
        c.wait_for_output("fault point cutover.counting: sleeping", timeout=60)
        assert not can_write(source_db, role)
        source_db.execute("SELECT pg_terminate_backend(pid)"
                          " FROM pg_stat_activity"
                          " WHERE application_name = 'pgtide cutover'")
        assert c.wait(120) == 0, c.read_stderr()
    finally:
        if c.poll() is None:
            c.kill()
    err = c.read_stderr()
    assert "source: reconnected" in err, err
    assert "counted every target's share of 6 tables in one pass" in err, err
    assert p.wait(60) == 0, p.read_stderr()
    assert phases(targets) == ["cutover"] * 3
    assert not can_write(source_db, role)
    assert_hashed_image(source_db, targets)
    assert_events_routed(source_db, targets)
