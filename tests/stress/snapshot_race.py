"""The server's gap in protecting a slot's exported snapshot, shown without
pgtide: a throwaway server, a table whose rows are updated in a loop (each
update prunes its page), select-only clients keeping ProcArrayLock busy, and
many CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export'); each snapshot is
imported and its rows counted. A count short of the table's rows is a row
whose older version was pruned although the snapshot still needed it.

With --guard, a REPEATABLE READ transaction that took its snapshot before the
slot was created stays open until the exported snapshot is done with, as
pgtide's snapshot guard does (docs/full-load.md).

    /usr/bin/python3 tests/stress/snapshot_race.py --rounds 1500 [--guard]

Not part of `make test`: it runs for minutes and its failures are rare by
nature (about 1 in 300 slots on a 2-core machine)."""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import psycopg  # noqa: E402
from conftest import PgServer  # noqa: E402

ROWS = 60000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--guard", action="store_true")
    ap.add_argument("--updaters", type=int, default=4)
    ap.add_argument("--readers", type=int, default=8,
                    help="pgbench -S clients")
    args = ap.parse_args()

    srv = PgServer("snaprace", {"wal_level": "logical"})
    try:
        srv.start()
        run(srv, args)
    finally:
        srv.destroy()


def run(srv, args):
    base = (f"host=127.0.0.1 port={srv.port} user={srv.superuser}"
            " dbname=postgres")
    with psycopg.connect(base, autocommit=True) as c:
        c.execute("CREATE TABLE filler (id int PRIMARY KEY, v int)")
        c.execute(f"INSERT INTO filler SELECT g, 0"
                  f" FROM generate_series(1, {ROWS}) g")
    pgbench = os.path.join(srv.bindir, "pgbench")
    conn = ["-h", "127.0.0.1", "-p", str(srv.port), "-U", srv.superuser]
    subprocess.run([pgbench, "-i", "-q", "-s", "1", *conn, "postgres"],
                   check=True, capture_output=True)
    readers = subprocess.Popen(
        [pgbench, "-S", "-c", str(args.readers), "-j", "2", "-T", "3600",
         *conn, "postgres"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def update(k):
        with psycopg.connect(base, autocommit=True) as c:
            i = k * 7919
            while not stop.is_set():
                c.execute("UPDATE filler SET v = v + 1 WHERE id = %s",
                          (i % ROWS + 1,))
                i += 1

    threads = [threading.Thread(target=update, args=(k,), daemon=True)
               for k in range(args.updaters)]
    for t in threads:
        t.start()
    time.sleep(1)
    short = 0
    try:
        for r in range(args.rounds):
            short += one_round(base, r, args.guard)
    finally:
        stop.set()
        readers.kill()
    print(f"guard={args.guard}: {short} of {args.rounds} exported snapshots"
          " missed rows")
    return short


def one_round(base, r, guard):
    g = None
    if guard:
        g = psycopg.connect(base)
        g.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        g.execute("SELECT 1")
    rep = psycopg.connect(base + " replication=database", autocommit=True)
    try:
        res = rep.pgconn.exec_(
            b"CREATE_REPLICATION_SLOT race_%d LOGICAL pgoutput"
            b" (SNAPSHOT 'export')" % r)
        name = res.get_value(0, 2)
        if name is None:
            raise RuntimeError(res.error_message.decode())
        time.sleep(0.05)
        with psycopg.connect(base) as c:
            c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            c.execute(f"SET TRANSACTION SNAPSHOT '{name.decode()}'")
            n = c.execute("SELECT count(*) FROM filler").fetchone()[0]
    finally:
        rep.close()
        if g is not None:
            g.close()
    for _ in range(100):  # the walsender releases the slot as it exits
        try:
            with psycopg.connect(base, autocommit=True) as c:
                c.execute(f"SELECT pg_drop_replication_slot('race_{r}')")
            break
        except psycopg.Error:
            time.sleep(0.05)
    if n != ROWS:
        print(f"round {r}: {n} of {ROWS} rows under the exported snapshot",
              flush=True)
        return 1
    return 0


if __name__ == "__main__":
    main()
