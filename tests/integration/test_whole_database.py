"""One whole database, moved as a user would move it: pgtide migrate, then
pgtide cutover, with no --skip-check and nothing changed on the source.

The source holds the awkward database (every kind of table, partitions of
each kind, triggers, a keyless log, identity columns) plus what logical
decoding does not carry: large objects, an unlogged table, materialized
views, sequences of every direction and a bounded CYCLE one. Both databases
set hostile output styles. A workload writes throughout: inserts into the
keyless table, updates and deletes elsewhere, rows moving between
partitions, a TRUNCATE and a large transaction. After cutover every table,
large object, materialized view and sequence on the target equals the
source's."""

import threading
import time

import psycopg

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for
from helpers import hostile_settings
from test_cutover import make_role
from test_large_objects import lobjects

EXTRAS = """
    CREATE UNLOGGED TABLE public.session_cache (id int PRIMARY KEY, v text);
    INSERT INTO public.session_cache
      SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
    SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 200 * g), 'hex'))
      FROM generate_series(1, 5) g;
    CREATE MATERIALIZED VIEW public.sales_by_region AS
      SELECT region, sum(amount) AS total, count(*) AS n
      FROM public.regional_sales GROUP BY region;
    CREATE MATERIALIZED VIEW public.top_regions AS
      SELECT region FROM public.sales_by_region WHERE n > 100;
    CREATE SEQUENCE public.ring MINVALUE 1 MAXVALUE 100 CYCLE;
    SELECT setval('public.ring', 99);
    CREATE SEQUENCE public.countdown INCREMENT -1;
    SELECT nextval('public.countdown'), nextval('public.countdown');
    CREATE TABLE public.scratch (id int PRIMARY KEY, v text);
    INSERT INTO public.scratch SELECT g, 'x' FROM generate_series(1, 100) g;
"""


class Workload(threading.Thread):
    """The application, as role `role`: small transactions of every kind in
    a loop until stopped, then nothing. Failed statements (the fence) are
    counted, not raised."""

    def __init__(self, db, role):
        super().__init__(daemon=True)
        self.db, self.role = db, role
        self.done = threading.Event()
        self.rounds = 0
        self.refused = 0
        self.last_error = None

    def step(self, conn, i):
        with conn.transaction():
            conn.execute(
                "INSERT INTO public.no_pk_log VALUES (now(), 'info', %s)",
                (f"round {i}",))
            conn.execute(
                "UPDATE public.customers SET name = name || '.'"
                " WHERE id = %s", (1 + i % 50,))
            # its AFTER INSERT trigger writes customer_audit: on the target
            # the audit row arrives from the stream, the trigger stays quiet
            conn.execute(
                "INSERT INTO public.customers (id, email, name)"
                " VALUES (%s, %s, 'new')", (100000 + i, f"n{i}@example.com"))
            conn.execute("DELETE FROM public.events WHERE id = %s",
                         (1 + i * 7 % 3000,))
            # a row of 2023 moves to the DEFAULT partition (a century on)
            conn.execute(
                "UPDATE public.measurements SET logdate = logdate + 36500"
                " WHERE city_id = %s AND logdate = DATE '2023-01-01' + %s",
                (1 + i % 10, i // 10 % 365))
            conn.execute("SELECT nextval('public.ring'),"
                         " nextval('public.countdown')")
            conn.execute("INSERT INTO public.session_cache VALUES (%s, 'new')"
                         " ON CONFLICT (id) DO UPDATE SET v = 'again'",
                         (5000 + i,))

    def run(self):
        conn = None
        while not self.done.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.db.uri_as(self.role),
                                           autocommit=True)
                self.step(conn, self.rounds)
                self.rounds += 1
            except psycopg.Error as e:
                self.refused += 1
                self.last_error = str(e)
                if conn is not None:
                    conn.close()
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def stop(self):
        self.done.set()
        self.join(30)


def matview_rows(db):
    return (db.query("SELECT * FROM public.sales_by_region ORDER BY 1"),
            db.query("SELECT * FROM public.top_regions ORDER BY 1"))


def test_whole_database_moves_exactly_while_the_application_writes(
        pgtide, source_db, target_db, awkward_sql):
    role = "app_whole"
    source_db.load_sql_file(awkward_sql)
    source_db.execute(EXTRAS)
    make_role(source_db, role)
    source_db.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role};"
                      f" GRANT INSERT, SELECT ON public.customer_audit TO {role}")
    work = Workload(source_db, role)
    with hostile_settings(source_db, target_db):
        try:
            work.start()
            try:
                wait_for(lambda: work.rounds > 20, 60, 0.2)
            except AssertionError:
                raise AssertionError(
                    f"the workload never ran: {work.last_error}")
            migrate = start_migrate(pgtide, source_db, target_db)
            before = work.rounds
            source_db.execute("""
                TRUNCATE public.scratch;
                INSERT INTO public.scratch
                  SELECT g, 'y' FROM generate_series(1, 50) g;
                INSERT INTO public.orders
                  SELECT 100000 + g, 1 + g % 97, DATE '2024-01-01' + g % 300, g
                  FROM generate_series(1, 30000) g;
                SELECT lo_from_bytea(0, 'made while following');
            """)
            wait_for(lambda: work.rounds > before + 30, 60, 0.2,
                     "the workload stalled while pgtide followed")
            wait_caught_up(source_db, target_db)

            r = pgtide.run("cutover", "--source", source_db.uri, "--target",
                           target_db.uri, "--fence", "read_only",
                           "--fence-role", role, "--final-validation", "full")
            assert r.returncode == 0, r.stderr
            assert migrate.wait(60) == 0
        finally:
            work.stop()
            # the read_only fence stays on the source after cutover
            source_db.execute("SET TRANSACTION READ WRITE; ALTER DATABASE"
                              f' "{source_db.name}" RESET'
                              " default_transaction_read_only")
    assert work.rounds > 50 and work.refused > 0

    assert_same_content(source_db, target_db)
    assert lobjects(target_db) == lobjects(source_db)
    assert len(lobjects(target_db)) == 6
    assert matview_rows(target_db) == matview_rows(source_db)
    ring = "SELECT last_value, is_called FROM public.ring"
    assert target_db.query(ring) == source_db.query(ring)
    assert target_db.query_one("SELECT last_value FROM public.countdown") < \
        source_db.query_one("SELECT last_value FROM public.countdown")
