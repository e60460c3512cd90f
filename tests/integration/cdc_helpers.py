"""Helpers for change-stream tests: run pgtide migrate in the background and
wait until the target has caught up with the source."""

import threading

import psycopg

from conftest import wait_for


def start_migrate(pgtide, source_db, target_db, *extra, env=None):
    p = pgtide.start("migrate", "--source", source_db.uri, "--target",
                     target_db.uri, "--progress-interval", "1", *extra, env=env)
    p.wait_for_output(r"streaming from slot", timeout=120)
    return p


def wait_caught_up(source_db, target_db, slot="pgtide_default",
                   origin="pgtide_default", timeout=120):
    """Waits until everything the source wrote by now is applied and flushed
    on the target: the slot's confirmed position reaches the source's WAL
    position taken now."""
    target_lsn = source_db.query_one("SELECT pg_current_wal_lsn()::text")

    def done():
        # a no-op transaction makes the walsender send a keepalive position
        confirmed = source_db.query_one(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots"
            " WHERE slot_name = %s", (target_lsn, slot))
        return confirmed is True
    wait_for(done, timeout, 0.2, f"the target never caught up with {target_lsn}")


def slot_confirmed(source_db, slot="pgtide_default"):
    return source_db.query_one(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots"
        " WHERE slot_name = %s", (slot,))


def origin_name(target_db, task_name="pgtide_default"):
    """A task's replication origin on target_db: its name on the source and
    the database's oid (origins are the cluster's, not the database's)."""
    return task_name + "_" + str(target_db.query_one(
        "SELECT oid FROM pg_database WHERE datname = current_database()"))


def origin_flushed(target_db, origin="pgtide_default"):
    return target_db.query_one(
        "SELECT coalesce(pg_replication_origin_progress(%s, true)::text, '0/0')",
        (origin_name(target_db, origin),))


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class ServerDb:
    """The `postgres` database of a server of its own (make_server), with the
    methods of conftest.Database that these tests use."""

    def __init__(self, server):
        self.server, self.name, self.uri = server, "postgres", server.uri()

    def query_one(self, sql, params=None):
        return self.server.query_one("postgres", sql, params)

    def query(self, sql, params=None):
        return self.server.query("postgres", sql, params)

    def connect(self):
        return self.server.connect("postgres")

    def execute(self, sql, params=None):
        self.server.execute("postgres", sql, params)


class Workload:
    """A writer on the source in a thread of its own, for `with`: step(conn)
    (a subclass's) runs in a loop on one autocommit connection until the
    block ends; its first error fails the test there."""

    def __init__(self, db):
        self.db, self.stop, self.count, self.error = db, threading.Event(), 0, None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def step(self, conn):
        raise NotImplementedError

    def run(self):
        try:
            with psycopg.connect(self.db.uri, autocommit=True) as conn:
                while not self.stop.is_set():
                    self.step(conn)
                    self.count += 1
        except Exception as e:  # noqa: BLE001 - reported by __exit__
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, self.error
