"""pgtide as a service: the service manager's notifications (NOTIFY_SOCKET,
systemd's protocol) and the JSON log lines a journal keeps. The test binds
the datagram socket a service manager would and reads what pgtide sends."""
import json
import os
import shutil
import signal
import socket
import tempfile
import threading

import pytest

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for


SCHEMA = """
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL,
                           note text);
    INSERT INTO accounts SELECT g, g * 10, 'n' || g
      FROM generate_series(1, 300) g;
"""


class Manager:
    """The service manager's end: a unix datagram socket bound to a path, or
    to a name in the abstract namespace. Each datagram is kept with whether
    pgtide had logged that its stream runs when the datagram was read."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if abstract:
            name = f"pgtide-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # a short directory: a socket path holds at most 107 bytes
            self.dir = tempfile.mkdtemp(prefix="notify")
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)
        self.sock.settimeout(0.2)
        self.proc = None
        self.received = []  # (message, "streaming from slot" logged by then)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            streaming = (self.proc is not None and
                         "streaming from slot" in self.proc.read_stderr())
            with self.lock:
                self.received.append((data.decode(), streaming))

    def messages(self, prefix=""):
        with self.lock:
            return [m for m, _ in self.received if m.startswith(prefix)]

    def close(self):
        self.done.set()
        self.thread.join()
        self.sock.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def manager():
    m = Manager()
    yield m
    m.close()


@pytest.fixture
def abstract_manager():
    m = Manager(abstract=True)
    yield m
    m.close()


def start_service(pgtide, source_db, target_db, mgr, env=None):
    """pgtide migrate with NOTIFY_SOCKET set; returns once it streams."""
    p = pgtide.start("migrate", "--source", source_db.uri, "--target",
                     target_db.uri, "--progress-interval", "1",
                     env={"NOTIFY_SOCKET": mgr.address, **(env or {})})
    mgr.proc = p
    p.wait_for_output(r"streaming from slot", timeout=120)
    return p


def test_ready_status_stopping_and_a_resume_without_loss(pgtide, source_db,
                                                         target_db, manager):
    source_db.execute(SCHEMA)
    p = start_service(pgtide, source_db, target_db, manager)
    wait_for(lambda: manager.messages("READY=1"), 30, 0.1,
             "READY=1 never arrived")
    # READY=1 once, and only once the stream ran: never during the load
    with manager.lock:
        ready = [s for m, s in manager.received if m == "READY=1"]
    assert ready == [True]
    source_db.execute("INSERT INTO accounts SELECT g, g, 'before stop'"
                      " FROM generate_series(301, 400) g")
    source_db.execute("UPDATE accounts SET balance = balance + 1"
                      " WHERE id <= 50")
    wait_caught_up(source_db, target_db)
    # a progress report each second, each one a STATUS= line
    wait_for(lambda: manager.messages("STATUS=following: lag "), 30, 0.1,
             f"no STATUS line: {manager.messages()}")
    assert manager.messages("STOPPING=1") == []
    # no watchdog was asked for
    assert manager.messages("WATCHDOG=1") == []

    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
    assert "the target's position is saved" in p.read_stderr()
    wait_for(lambda: manager.messages("STOPPING=1"), 10, 0.1,
             "STOPPING=1 never arrived")
    assert manager.messages("STOPPING=1") == ["STOPPING=1"]
    msgs = manager.messages()
    assert msgs.index("READY=1") < msgs.index("STOPPING=1")
    for m in msgs:
        assert m.split("=", 1)[0] in ("READY", "STATUS", "STOPPING"), m
        assert "\n" not in m

    # written while no pgtide runs: the next run resumes from the saved
    # position and loses nothing
    source_db.execute("INSERT INTO accounts SELECT g, g, 'while stopped'"
                      " FROM generate_series(401, 450) g")
    source_db.execute("DELETE FROM accounts WHERE id BETWEEN 51 AND 60")
    p2 = start_service(pgtide, source_db, target_db, manager)
    source_db.execute("UPDATE accounts SET note = 'after restart'"
                      " WHERE id % 7 = 0")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    assert target_db.query_one(
        "SELECT count(*) FROM accounts") == 440
    assert p2.stop(signal.SIGTERM) == 0, p2.read_stderr()


def test_watchdog_pings_on_an_abstract_socket(pgtide, source_db, target_db,
                                              abstract_manager):
    source_db.execute(SCHEMA)
    p = start_service(pgtide, source_db, target_db, abstract_manager,
                      env={"WATCHDOG_USEC": "2000000"})
    wait_for(lambda: abstract_manager.messages("READY=1"), 30, 0.1,
             "READY=1 never arrived on the abstract socket")
    before = len(abstract_manager.messages("WATCHDOG=1"))
    # every half of WATCHDOG_USEC: two pings within 5 s, idle or not
    wait_for(lambda: len(abstract_manager.messages("WATCHDOG=1")) >= before + 2,
             5, 0.1, f"too few WATCHDOG=1: {abstract_manager.messages()}")
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()


def test_watchdog_of_another_process_is_not_pinged(pgtide, source_db,
                                                   target_db, manager):
    source_db.execute(SCHEMA)
    # WATCHDOG_PID names the process the manager watches: not this one
    p = start_service(pgtide, source_db, target_db, manager,
                      env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    wait_for(lambda: manager.messages("STATUS="), 30, 0.1, "no STATUS line")
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
    assert manager.messages("WATCHDOG=1") == []


def test_a_socket_nobody_reads_never_stops_the_task(pgtide, source_db,
                                                    target_db, tmp_path):
    source_db.execute(SCHEMA)
    p = start_migrate(pgtide, source_db, target_db, "-v",
                      env={"NOTIFY_SOCKET": str(tmp_path / "nobody"),
                           "WATCHDOG_USEC": "200000"})
    source_db.execute("INSERT INTO accounts VALUES (1000, 1, 'x')")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db)
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
    # said once, at debug level, however many notifications failed
    assert p.read_stderr().count("could not notify the service manager") == 1


def test_json_logs_are_one_object_per_line(pgtide, source_db, target_db):
    source_db.execute(SCHEMA)
    p = start_migrate(pgtide, source_db, target_db, "--log-format", "json")
    # many small transactions: counted in the progress lines, not one line
    # each
    with source_db.connect() as c:
        c.autocommit = True
        for i in range(1001, 1501):
            c.execute("INSERT INTO accounts VALUES (%s, 1, 'row')", (i,))
    wait_caught_up(source_db, target_db)
    assert p.stop(signal.SIGTERM) == 0, p.read_stderr()
    lines = p.read_stderr().splitlines()
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert sorted(obj) == ["level", "message", "task", "thread", "time"]
        assert obj["level"] in ("debug", "info", "warning", "error")
        assert obj["task"] == "default"
        assert obj["time"].endswith("Z")
    assert len(lines) < 100, len(lines)
    assert not [ln for ln in lines if "'row'" in ln or "\"row\"" in ln]
