"""A key the lookup table gives another target takes its rows along
(decision 0045): the giving target's stream stages the key's rows, as its
target holds them at the change, on the taking target, and deletes them in
the batch that applies the change; the taking target's stream inserts them
in its batch. Under a writer and hostile settings on every side, each
target ends holding exactly the rows the source's lookup table places
there, whatever the move's transaction did before and after it; keys
swapped in one transaction do not deadlock; a taking stream waits for a
giving one held behind, and stops when asked; and a giving process stopped
between staging and its batch's commit, with the taking one killed -9
after inserting the rows, neither loses nor doubles a row."""
import contextlib

import psycopg

import test_shard_stream
from conftest import wait_for
from helpers import hostile_settings
from test_shard import targets, task_file  # noqa: F401
from test_shard_stream import (LOOKUP, children_of, wait_caught_up,
                               wait_streaming)

# test_shard_stream's accounts and orders, and notes of every type's text
PLACED = test_shard_stream.PLACED + r'''
    CREATE TABLE "Notes of ""acct""" (
        n int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id bigint NOT NULL, body text, raw bytea, at timestamptz,
        span interval, ratio float8, tags text[],
        size int GENERATED ALWAYS AS (length(body)) STORED);
    INSERT INTO "Notes of ""acct""" (account_id, body, raw, at, span, ratio,
                                    tags)
      SELECT g % 30 + 1,
             CASE WHEN g % 7 = 0 THEN NULL ELSE E'a "q" \\ b,\t{' || g END,
             '\x00ff5c'::bytea,
             '2024-03-01 12:00+05'::timestamptz + g * interval '1 hour',
             interval '1 day 2 hours 3.5 seconds', 1.0 / g,
             ARRAY['x', NULL, 'y"z', '']
        FROM generate_series(1, 300) g;
    -- a TOASTed value of account 6
    UPDATE "Notes of ""acct""" SET body = repeat('big', 200000) WHERE n = 5;
'''
NOTES = '"Notes of ""acct"""'

# every value's text the same on every side, whatever the databases set
PIN = ("SET DateStyle = ISO, MDY; SET IntervalStyle = postgres;"
       " SET extra_float_digits = 3; SET TimeZone = 'UTC';"
       " SET bytea_output = hex; ")


def texts(db, table):
    return sorted(db.query(PIN + f"SELECT account_id, t::text FROM {table} t"))


def assert_placed(source_db, targets):
    """Each target holds exactly the rows the source's lookup table places
    there, and the whole lookup table."""
    where = dict(source_db.query("SELECT account_id, shard FROM placement"))
    for table in ("orders", NOTES):
        every = texts(source_db, table)
        for i, db in enumerate(targets):
            want = [r for r in every if where[r[0]] == f"shard{i + 1}"]
            assert texts(db, table) == want, (table, i)
    for db in targets:
        assert texts(db, "placement") == texts(source_db, "placement")


class Writer(test_shard_stream.Writer):
    """Inserts orders and updates the rows of every account, the moved
    ones too, one small transaction each, until stopped."""

    def step(self, c, i):
        c.execute("INSERT INTO orders VALUES (%s, %s, %s)", (i, i % 30 + 1, i))
        c.execute("UPDATE orders SET total = total + 1 WHERE account_id = %s",
                  (self.n % 8 + 1,))
        c.execute(f"UPDATE {NOTES} SET ratio = ratio + 1"
                  " WHERE account_id = %s", (self.n % 8 + 1,))


def killed(pgtide, path, point, target):
    """migrate run until `point` kills target's process."""
    p = pgtide.start("migrate", "--config", path,
                     env={"PGTIDE_FAULT": point})
    assert p.wait(90) not in (0, None), p.read_stderr()
    assert f"target {target}: its process was killed by signal 9" \
        in p.read_stderr(), p.read_stderr()
    wait_for(lambda: not children_of(p.pid), 30, 0.1,
             "a target's process outlived its parent")
    return p


def handovers(db):
    return sorted(db.query("SELECT giver, taken FROM pgtide.handovers"))


def test_a_key_the_lookup_table_moves_takes_its_rows_to_its_new_target(
        pgtide, source_db, targets, tmp_path):
    source_db.execute(PLACED)
    path = task_file(tmp_path, source_db, targets, LOOKUP)
    hostile = contextlib.ExitStack()
    for db in targets:
        hostile.enter_context(hostile_settings(source_db, db))
    with hostile:
        p = pgtide.start("migrate", "--config", path)
        wait_streaming(p)
        w = Writer(source_db)
        w.start()
        try:
            wait_for(lambda: w.n > 50, 60, 0.1, "the writer is stuck")
            source_db.execute('''
                -- account 1: shard2 to shard3, alone
                UPDATE placement SET shard = 'shard3' WHERE account_id = 1;
                -- accounts 2 (shard3) and 3 (shard1) swapped in one
                -- transaction that changes their rows before and after
                BEGIN;
                UPDATE orders SET total = total + 1000 WHERE account_id = 2;
                UPDATE placement SET shard = 'shard1' WHERE account_id = 2;
                UPDATE placement SET shard = 'shard3' WHERE account_id = 3;
                INSERT INTO orders VALUES (5001, 2, 1), (5002, 3, 2);
                UPDATE "Notes of ""acct""" SET body = 'moved'
                  WHERE account_id = 3 AND n % 2 = 0;
                COMMIT;
                -- account 6 and its TOASTed note: shard1 to shard2; an
                -- account placed and moved in one transaction
                BEGIN;
                UPDATE placement SET shard = 'shard2' WHERE account_id = 6;
                INSERT INTO placement VALUES (31, 'shard1');
                INSERT INTO orders VALUES (5003, 31, 3);
                UPDATE placement SET shard = 'shard3' WHERE account_id = 31;
                COMMIT;
            ''')
            wait_for(lambda: w.n > 150, 60, 0.1, "the writer is stuck")
        finally:
            w.stop()
        wait_caught_up(source_db, p)
        assert_placed(source_db, targets)
        # each move once, taken, its staged rows gone
        assert handovers(targets[2]) == [("shard1", True), ("shard1", True),
                                         ("shard2", True)]
        assert handovers(targets[0]) == [("shard3", True)]
        assert handovers(targets[1]) == [("shard1", True)]
        for db in targets:
            assert db.query_one(
                "SELECT count(*) FROM pgtide.handover_rows") == 0
        err = p.read_stderr()
        assert "[shard1/apply] a key the lookup table moved to target " \
            "shard2: " in err, err
        assert "[shard2/apply] a key the lookup table moved here from " \
            "target shard1" in err, err

        # the taking target's stream waits at the change while the giving
        # one is held behind (a lock on its table), and stops when asked
        assert p.stop() == 0, p.read_stderr()
        with psycopg.connect(targets[1].uri) as hold:
            hold.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            p = pgtide.start("migrate", "--config", path)
            wait_streaming(p)
            source_db.execute("""
                UPDATE orders SET total = -total WHERE account_id = 7;
                UPDATE placement SET shard = 'shard1' WHERE account_id = 7;
                INSERT INTO orders VALUES (5004, 7, 4);
            """)
            wait_for(lambda: "[shard1/apply] waiting 0s for target shard2 to "
                     "hand over the rows of a key" in p.read_stderr(), 60,
                     0.2, "shard1 does not wait for shard2")
            assert p.stop() == 0, p.read_stderr()
            assert handovers(targets[0]) == [("shard3", True)]

        # kill -9 of the giving target's process once the rows are staged,
        # before its batch commits (the taking one held behind): the next
        # run stages nothing again
        with psycopg.connect(targets[0].uri) as hold:
            hold.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            p = killed(pgtide, path, "handover.staged", "shard2")
        assert handovers(targets[0]) == [("shard2", False), ("shard3", True)]
        # kill -9 of the taking target's process once it inserted the
        # rows, before its batch commits: the next run takes them again
        p = killed(pgtide, path, "handover.taken", "shard1")
        assert "[shard2/apply] a key the lookup table moved to target shard1 " \
            "was staged there by an earlier run" in p.read_stderr()
        p = pgtide.start("migrate", "--config", path)
        wait_streaming(p)
        wait_caught_up(source_db, p)
        assert_placed(source_db, targets)
        assert handovers(targets[0]) == [("shard2", True), ("shard3", True)]

        r = pgtide.run("validate", "--config", path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert p.stop() == 0, p.read_stderr()
