"""Across PostgreSQL versions: a source of 10, 11, 12, 13 or 14 into a
target of 15, 16, 17 or 18. Each pair runs the whole path on the awkward
database (as much of it as the source's version can hold): the load while
a writer commits, the change stream (protocol 1 from 10-13, protocol 2
from 14), validate, and cutover; then compares exactly.

The servers come from scripts/install-pg-versions.sh (.pg/<major>/bin);
a pair whose versions are not installed is skipped, saying which.

Why these pairs: every old source is run once, each into a different
target, so that every target version is also run once (11->15, 12->16,
13->17, 10->18); 14->16 is the first source that streams with protocol 2
into a newer target, and 14->18 the same into the newest; 11->17 is the
widest gap among the sources that hash rows with the extended hash
functions (11+), 10->18 the widest of all (a 10 source is validated by
the md5 of each row's text). Sources stop at 14: the server packages carry
no pg_dump, the system's is 15's, and pg_dump must be at least as new as
the source. 15->15 is the rest of the suite."""

import os
import pytest

from cdc_helpers import start_migrate, wait_caught_up
from conftest import (_COMPARE_SETTINGS as COMPARE_SETTINGS, AWKWARD_SQL,
                      Database, _quote_ident as quote_ident, diff_rows,
                      table_columns, table_rows, user_tables, version_bindir,
                      wait_for)
from faults import Writer, assert_writer_exact, create_writer_schema

PAIRS = [(11, 15), (12, 16), (13, 17), (14, 16), (11, 17), (10, 18),
         (14, 18)]
# Under the sanitizers the memory checks need each decoder path once, not
# each version: protocol 1 (11) and protocol 2 (14), across the widest gaps.
if os.environ.get("PGTIDE_SANITIZED"):
    PAIRS = [(11, 17), (14, 16)]

# What awkward.sql uses that an older source cannot hold, and what it holds
# instead: (first version that has it, text in awkward.sql, replacement).
OLDER = [
    # numeric infinity: 14
    (140000, "    'NaN', 'Infinity',\n    'NaN', 'Infinity',",
     "    'NaN', '1e100',\n    'NaN', 'Infinity',"),
    (140000, "    -999999999999999999999999.999999999999999, '-Infinity',",
     "    -999999999999999999999999.999999999999999, '-1e100',"),
    # a foreign key into a partitioned table: 12
    (120000, "    event_id bigint NOT NULL REFERENCES public.events (id)"
             " ON DELETE CASCADE,",
     "    event_id bigint NOT NULL,"),
    # generated columns: 12
    (120000, "    total numeric(12, 2) GENERATED ALWAYS AS (qty * price) STORED",
     "    total numeric(12, 2)"),
    # EXECUTE FUNCTION in a trigger: 11 (10 spells it EXECUTE PROCEDURE)
    (110000, "    FOR EACH ROW EXECUTE FUNCTION public.customers_search_key();",
     "    FOR EACH ROW EXECUTE PROCEDURE public.customers_search_key();"),
    (110000, "    FOR EACH ROW EXECUTE FUNCTION public.customers_audit();",
     "    FOR EACH ROW EXECUTE PROCEDURE public.customers_audit();"),
    # a primary key or an index on a partitioned table: 11 (on 10 each
    # partition is keyless, streamed with REPLICA IDENTITY FULL by EXTRA)
    (110000, "    unitsales integer,\n    PRIMARY KEY (city_id, logdate)\n)",
     "    unitsales integer\n)"),
    (110000, "CREATE INDEX ON public.regional_sales (id);\n", ""),
    (110000, "    id      bigint NOT NULL PRIMARY KEY,", "    id      bigint NOT NULL,"),
    (110000, "    total       numeric(12, 2),\n"
             "    PRIMARY KEY (order_id, order_date, customer_id)\n)",
     "    total       numeric(12, 2)\n)"),
    # default partitions: 11 (on 10 ranges and lists that cover the rest)
    (110000, "CREATE TABLE public.measurements_default PARTITION OF"
             " public.measurements DEFAULT;",
     "CREATE TABLE public.measurements_default PARTITION OF"
     " public.measurements\n    FOR VALUES FROM (MINVALUE) TO ('2023-01-01');\n"
     "CREATE TABLE public.measurements_later PARTITION OF"
     " public.measurements\n    FOR VALUES FROM ('2025-01-01') TO (MAXVALUE);"),
    (110000, "CREATE TABLE public.regional_sales_other PARTITION OF"
             " public.regional_sales DEFAULT;",
     "CREATE TABLE public.regional_sales_other PARTITION OF"
     " public.regional_sales FOR VALUES IN ('jp', 'br');"),
    # hash partitioning: 11 (on 10 the same partitions by range)
    (110000, ") PARTITION BY HASH (id);", ") PARTITION BY RANGE (id);"),
    (110000, "FOR VALUES WITH (MODULUS 4, REMAINDER 0);",
     "FOR VALUES FROM (MINVALUE) TO (1000);"),
    (110000, "FOR VALUES WITH (MODULUS 4, REMAINDER 1);",
     "FOR VALUES FROM (1000) TO (2000);"),
    (110000, "FOR VALUES WITH (MODULUS 4, REMAINDER 2);",
     "FOR VALUES FROM (2000) TO (3000);"),
    (110000, "FOR VALUES WITH (MODULUS 4, REMAINDER 3);",
     "FOR VALUES FROM (3000) TO (MAXVALUE);"),
    (110000, "('2024-01-01') PARTITION BY HASH (customer_id);",
     "('2024-01-01') PARTITION BY RANGE (customer_id);"),
    (110000, "('2025-01-01') PARTITION BY HASH (customer_id);",
     "('2025-01-01') PARTITION BY RANGE (customer_id);"),
    (110000, "public.orders_2023 FOR VALUES WITH (MODULUS 2, REMAINDER 0);",
     "public.orders_2023 FOR VALUES FROM (MINVALUE) TO (50);"),
    (110000, "public.orders_2023 FOR VALUES WITH (MODULUS 2, REMAINDER 1);",
     "public.orders_2023 FOR VALUES FROM (50) TO (MAXVALUE);"),
    (110000, "public.orders_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);",
     "public.orders_2024 FOR VALUES FROM (MINVALUE) TO (50);"),
    (110000, "public.orders_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);",
     "public.orders_2024 FOR VALUES FROM (50) TO (MAXVALUE);"),
]

# Added to every source: doubles whose 17th digit matters, in a table with
# an enum column (so the load copies it as text), where an 11 server prints
# 15 digits unless told otherwise; and a key for the keyless table the
# change stream would otherwise refuse (the keyless tables of awkward.sql).
EXTRA = """
CREATE TABLE public.float_digits (id int PRIMARY KEY, m public.mood,
                                  f8 float8, f4 real, fa float8[]);
INSERT INTO public.float_digits
SELECT g, 'ok', 33.6666666666666643 + g / 3.0::float8, (g / 7.0)::real,
       ARRAY[g / 3.0::float8, 1e-300 / g, -0.1 * g]
FROM generate_series(1, 300) AS g;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'r' AND c.relreplident = 'd'
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND NOT EXISTS (SELECT FROM pg_index i
                             WHERE i.indrelid = c.oid AND i.indisprimary)
  LOOP
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', r.t);
  END LOOP;
END $$;
"""

# Changes the stream carries after the load, on the same awkward tables:
# applied to the source while pgtide follows it, and to the reference.
# A table created while the task streams: it joins the task (decision
# 0019), through the publication and pg_dump of the source's version.
JOINED = """
CREATE TABLE public.joined (id int PRIMARY KEY, v numeric,
                            t timestamptz, f float8);
INSERT INTO public.joined
SELECT g, g / 7.0, '2020-01-01 00:00+00'::timestamptz + g * interval '1 h',
       1 / g::float8 FROM generate_series(1, 200) AS g;
"""
JOINED_LATER = "UPDATE public.joined SET v = v * 2 WHERE id % 3 = 0"

STREAMED = """
UPDATE public.all_types SET c_double = 33.6666666666666643,
       c_text = c_text || ' streamed', c_mood = 'sad' WHERE id = 2;
UPDATE public.float_digits SET f8 = f8 * 3, fa = fa || (id / 9.0)::float8
 WHERE id % 4 = 0;
DELETE FROM public.float_digits WHERE id % 5 = 0;
INSERT INTO public.float_digits
SELECT g, 'happy', 1 / g::float8, 1 / (g::real * 3), ARRAY[g / 11.0::float8]
FROM generate_series(301, 400) AS g;
INSERT INTO public.events
SELECT g, 'buy', jsonb_build_object('n', g, 'f', round(g / 3.0, 9))
FROM generate_series(3001, 5000) AS g;
DELETE FROM public.events WHERE id % 7 = 0 AND id < 500;
UPDATE public.no_pk_log SET msg = msg || '!' WHERE msg = 'message 3';
INSERT INTO public.no_pk_log SELECT * FROM public.no_pk_log
 WHERE msg = 'message 4';
"""


# Smaller big values (256 kB, still TOASTed and incompressible): the
# multi-MB ones test sizes, not versions, and cost each pair seconds.
SMALLER = [("FROM generate_series(1, 4096) AS g), 48), 'hex')",
            "FROM generate_series(1, 4096) AS g), 4), 'hex')")]


def awkward_for(version_num: int) -> str:
    """awkward.sql as a server of version_num can load it, plus EXTRA."""
    sql = AWKWARD_SQL.read_text()
    for text, instead in SMALLER:
        assert sql.count(text) == 1, f"awkward.sql changed: {text!r}"
        sql = sql.replace(text, instead)
    for since, text, instead in OLDER:
        assert sql.count(text) == 1, f"awkward.sql changed: {text!r}"
        if version_num < since:
            sql = sql.replace(text, instead)
    return sql + EXTRA


def make_pair(make_server, src_major, tgt_major):
    """Started servers of the two versions, or a skip naming what is missing."""
    bindirs = {m: version_bindir(m) for m in (src_major, tgt_major)}
    missing = [str(m) for m, d in bindirs.items() if d is None]
    if missing:
        pytest.skip(f"PostgreSQL {', '.join(missing)} not installed "
                    f"(scripts/install-pg-versions.sh)")
    # from 13 a transaction past logical_decoding_work_mem is spilled by the
    # walsender, and from 14 streamed to pgtide before it commits (protocol
    # 2): the smallest value makes STREAMED's transaction one of those
    settings = {"logical_decoding_work_mem": "64kB"} if src_major >= 13 else {}
    src = make_server(f"src{src_major}", bindir=bindirs[src_major], **settings)
    tgt = make_server(f"tgt{tgt_major}", bindir=bindirs[tgt_major])
    assert src.version_num() // 10000 == src_major
    assert tgt.version_num() // 10000 == tgt_major
    return src, tgt


def new_db(server, name, sql=None, tmp_path=None):
    server.create_database(name)
    db = Database(server, name)
    if sql is not None:
        path = tmp_path / f"{name}.sql"
        path.write_text(sql)
        db.load_sql_file(path)
    return db


def table_digest(conn, table, cols):
    """(rows, md5 of the sorted md5s of each row's text) of a table, computed
    in the database: the big values stay there. Row text as table_rows
    prints it (the same pinned settings)."""
    text = ", ".join(f'({quote_ident(c)})::text' for c in cols)
    with conn.transaction():
        conn.execute(COMPARE_SETTINGS)
        return conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))"
            f" FROM (SELECT md5(ROW({text})::text) AS h FROM ONLY {table}) r"
        ).fetchone()


def assert_same_tables(one, other, tables):
    """Each table holds the same rows in both databases, whose servers print
    every value alike; names the tables that differ, with their rows."""
    __tracebackhide__ = True
    problems = []
    with one.server.connect(one.name) as c1, other.server.connect(other.name) as c2:
        for t in tables:
            cols = table_columns(c1, t)
            assert cols == table_columns(c2, t), t
            if table_digest(c1, t, cols) != table_digest(c2, t, cols):
                d = diff_rows(table_rows(c1, t), table_rows(c2, t))
                problems.append(f"{t}: rows differ\n{d}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("src_major,tgt_major", PAIRS,
                         ids=[f"{s}to{t}" for s, t in PAIRS])
def test_migrate_validate_cutover_across_versions(pgtide, make_server, tmp_path,
                                                  src_major, tgt_major):
    """Load while a writer commits, stream, validate, cut over; the target
    equals the source exactly: the awkward tables equal the same SQL and
    changes run on a database of the target's own version (an 11 source
    prints doubles differently from a 12+ one, so the texts of the two
    servers cannot be compared directly), the writer's transactions are
    each there once, and sources of 12 and later compare directly too."""
    src, tgt = make_pair(make_server, src_major, tgt_major)
    sql = awkward_for(src.version_num())
    source = new_db(src, "app", sql, tmp_path)
    create_writer_schema(source)
    reference = new_db(tgt, "reference", sql, tmp_path)
    target = new_db(tgt, "app")
    tables = user_tables(reference)

    writer = Writer(src, "app", rate=100).start()
    try:
        writer.wait_for_more(20)
        migrate = start_migrate(pgtide, source, target)
        writer.wait_for_more(50)
        source.execute(STREAMED)
        reference.execute(STREAMED)
        for db in (source, reference):
            db.execute(JOINED)
        migrate.wait_for_output(r'table "public"."joined" joins with 200 rows',
                                timeout=60)
        for db in (source, reference):
            db.execute(JOINED_LATER)
        writer.wait_for_more(50)
        writer.stop()
    finally:
        writer.abandon()
    wait_caught_up(source, target)
    tables = user_tables(reference)
    assert "public.joined" in tables, tables
    # 14 streams large transactions before they commit; older sources send
    # each at its commit
    protocol = 2 if src_major >= 14 else 1
    assert f"(protocol {protocol})" in migrate.read_stderr()
    if src_major >= 14:
        # STREAMED's transaction went out before its commit
        wait_for(lambda: (source.query_one(
            "SELECT stream_txns FROM pg_stat_replication_slots"
            " WHERE slot_name = 'pgtide_default'") or 0) > 0, 30, 0.2,
            "the source streamed no transaction before its commit")

    r = pgtide.run("validate", "--source", source.uri, "--target", target.uri)
    assert r.returncode == 0, r.stdout + r.stderr

    # the application's role, whose writes cutover fences
    source.execute("CREATE ROLE app_rw LOGIN; GRANT SELECT, INSERT, UPDATE,"
                   " DELETE ON ALL TABLES IN SCHEMA public TO app_rw")
    r = pgtide.run("cutover", "--source", source.uri, "--target", target.uri,
                   "--fence-role", "app_rw", "--final-validation", "full")
    assert r.returncode == 0, r.stdout + r.stderr
    assert migrate.wait(60) == 0, migrate.read_stderr()

    assert_same_tables(reference, target, tables)
    assert_writer_exact(writer, source, target,
                        ["public.w_keyed", "public.w_full", "public.w_counter"])
    if src_major >= 12:
        assert user_tables(source) == user_tables(target)
        assert_same_tables(source, target, user_tables(source))
    # the sequences moved ahead by cutover's margin
    assert target.query_one("SELECT last_value FROM public.serial_things_id_seq") \
        >= source.query_one("SELECT last_value FROM public.serial_things_id_seq") + 1000


def test_with_oids_table_from_11(pgtide, make_server, tmp_path):
    """A PostgreSQL 11 table created WITH OIDS moves to a 12+ target without
    its oids (decision 0010): check warns, naming it; the load, the stream
    and validate carry its columns exactly."""
    src, tgt = make_pair(make_server, 11, 16)
    source = new_db(src, "app")
    target = new_db(tgt, "app")
    source.execute("""
        CREATE TABLE legacy (id int PRIMARY KEY, v text, f float8) WITH OIDS;
        INSERT INTO legacy SELECT g, 'v' || g, g / 3.0::float8
          FROM generate_series(1, 500) g;
        CREATE TABLE plain (id int PRIMARY KEY, v text);
        INSERT INTO plain VALUES (1, 'a');
    """)
    r = pgtide.run("check", "--source", source.uri, "--target", target.uri)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "with_oids" in r.stdout and "public.legacy" in r.stdout, r.stdout
    assert "public.plain" not in r.stdout.split("with_oids", 1)[1].split("\n")[0]

    migrate = start_migrate(pgtide, source, target)
    source.execute("""
        INSERT INTO legacy SELECT g, 'w' || g, g / 7.0::float8
          FROM generate_series(501, 600) g;
        UPDATE legacy SET v = v || '+', f = f * 3 WHERE id % 10 = 0;
        DELETE FROM legacy WHERE id % 9 = 0;
    """)
    wait_caught_up(source, target)
    r = pgtide.run("validate", "--source", source.uri, "--target", target.uri)
    assert r.returncode == 0, r.stdout + r.stderr
    assert migrate.stop() == 0, migrate.read_stderr()

    # no oid on the target: neither the hidden column nor a regular one
    assert table_columns(target, "public.legacy") == ["id", "v", "f"]
    assert not target.query_one(
        "SELECT relhasoids FROM pg_class WHERE relname = 'legacy'"
        if tgt.version_num() < 120000 else "SELECT false")
    rows = source.query("SELECT id, v, float8send(f) FROM legacy ORDER BY id")
    assert len(rows) == 534
    assert target.query("SELECT id, v, float8send(f) FROM legacy ORDER BY id") \
        == rows
