"""pgtide validate: source and target compared by ranged hashes computed in
each database. Differing rows are named with their keys (or, without a key,
their text and copies); equal data reports nothing, whatever the servers'
float, date and time zone settings. Exit 7 when anything differs."""
import json
import random
import re
import threading
import time

import pytest

from cdc_helpers import ServerDb, start_migrate, wait_caught_up
from helpers import hostile_settings

EXIT_DIFFERENT = 7

# Values whose text form depends on session settings or on how they were
# written: floats (NaN, infinities, -0, 0.1), time zones, NULL against '',
# arrays, jsonb key order, a TOASTed value.
AWKWARD_SCHEMA = """
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE TABLE awkward (
        id int PRIMARY KEY,
        f8 float8, f4 float4, fa float8[],
        ts timestamptz, tsl timestamp, d date, iv interval,
        t text, arr int[], tarr text[],
        j jsonb, js json, n numeric, b bytea, u uuid, m money,
        e mood, pi posint, sm smallint, bo boolean, tm time, tz timetz,
        ch char(5), vc varchar(10),
        big text
    );
    CREATE TABLE nokey (a int, b text);
"""

AWKWARD_ROWS = """
    INSERT INTO awkward (id, f8, f4, fa, ts, tsl, d, iv, t, arr, tarr, n, b, u, m)
    VALUES
      (1, 'NaN', 'NaN', '{NaN,1.5}', '2024-03-10 02:30:00+00', '2024-03-10 02:30',
       '2024-02-29', '1 day 02:03:04', '', '{}', '{a,NULL,""}', 'NaN', '\\x00ff',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.34),
      (2, 'Infinity', '-Infinity', '{0.1,0.2}', '1999-12-31 23:59:59.999999+05',
       '1999-12-31 23:59:59.999999', '0001-01-01 BC', '-3 mons', NULL, NULL, NULL,
       0.1, '\\x', NULL, NULL),
      (3, 0.1, 0.1, '{}', '2024-06-30 12:00:00-07', NULL, NULL, NULL, 'x', '{1,2,3}',
       '{}', 1e-30, NULL, NULL, -1),
      (4, 1e-300, 3.4e38, NULL, 'infinity', 'infinity', 'infinity', NULL, ' ', '{NULL}',
       '{"x y"}', 123456789.123456789, NULL, NULL, 0),
      (5, '-0', '-0', '{-0}', NULL, NULL, NULL, NULL, '"quoted",(comma)', NULL, NULL,
       NULL, NULL, NULL, NULL);
    UPDATE awkward SET j = '{"a": 1, "b": [1, 2, {"c": null}], "d": "x"}',
                       js = '{"b": 1,  "a": 2}' WHERE id = 1;
    UPDATE awkward SET j = '[]', js = '[]' WHERE id = 2;
    UPDATE awkward SET e = 'happy', pi = 7, sm = -32768, bo = true,
        tm = '23:59:59.999999', tz = '12:00+05:30', ch = 'ab', vc = 'x y'
      WHERE id = 1;
    UPDATE awkward SET e = 'sad', bo = false, ch = '', vc = '' WHERE id = 2;
    UPDATE awkward SET j = '{}' WHERE id = 3;
    UPDATE awkward SET big = (SELECT string_agg(md5(g::text), '' ORDER BY g)
                              FROM generate_series(1, 32768) g) WHERE id = 4;
    INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL), (3, ''), (NULL, NULL);
"""

# The same jsonb with keys written in another order.
TARGET_JSONB = """
    UPDATE awkward SET j = '{"d": "x", "b": [1, 2, {"c": null}], "a": 1}' WHERE id = 1;
"""


def run_validate(pgtide, source, target, *extra, env=None):
    r = pgtide.run("validate", "--source", source.uri, "--target", target.uri,
                   "--json", *extra, env=env)
    out = json.loads(r.stdout) if r.stdout.strip() else None
    return r, out


def table_result(out, name):
    for t in out["results"]:
        if t["table"] == name:
            return t
    raise AssertionError(f"no result for {name}: {out}")


def named(result):
    """{(kind, key tuple)} of a keyed table's named rows."""
    return {(d["kind"], tuple(d["key"].values())) for d in result["rows"]}


def both(source, target, sql):
    source.execute(sql)
    target.execute(sql)


def validate_under_writer(pgtide, source, target, step, run=None):
    """Runs validate (run(): (result, JSON); default: run_validate) while a
    thread calls step(conn, rnd, n) on the source until it ends; (result,
    JSON, writes during validate)."""
    stop = threading.Event()
    writes = [0]

    def writer():
        rnd = random.Random(7)
        with source.connect() as c:
            while not stop.is_set():
                step(c, rnd, writes[0])
                writes[0] += 1

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        time.sleep(0.5)
        before = writes[0]
        r, out = run() if run else run_validate(pgtide, source, target)
        during = writes[0] - before
    finally:
        stop.set()
        th.join(10)
    return r, out, during


def test_equal_awkward_values_report_nothing(pgtide, source_db, target_db):
    # enum values get other oids on the target: they must compare by label
    target_db.execute("CREATE TYPE pad AS ENUM ('a', 'b', 'c')")
    both(source_db, target_db, AWKWARD_SCHEMA + AWKWARD_ROWS)
    target_db.execute(TARGET_JSONB)
    assert target_db.query_one("SELECT pg_relation_size(reltoastrelid) > 1000000"
                               " FROM pg_class WHERE relname = 'awkward'")

    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == 0, r.stderr
    assert out["differences"] == 0 and out["tables_differing"] == 0
    assert table_result(out, "public.awkward")["rows_source"] == 5
    nokey = table_result(out, "public.nokey")
    assert nokey["key"] is None and nokey["rows_target"] == 5

    # the forms used when a server is older than 12 (floats as bytes) and
    # older than 11 (md5 instead of hashtextextended) agree too
    r, out = run_validate(pgtide, source_db, target_db,
                          env={"PGTIDE_VALIDATE_PORTABLE": "1"})
    assert r.returncode == 0, r.stderr
    assert out["differences"] == 0


def test_a_latin1_source_compares_by_characters(pgtide, latin1_source,
                                                target_db):
    """A LATIN1 source and a UTF-8 target store the same characters as other
    bytes: every text a row hashes (text, varchar, char, arrays, jsonb, an
    enum's label, a composite, a keyless row) compares by its characters,
    in both hash forms, and a changed character is still named; under
    hostile settings on both sides."""
    with hostile_settings(latin1_source, target_db):
        compared_by_characters(pgtide, latin1_source, target_db)


def compared_by_characters(pgtide, source, target_db):
    source.execute("""
        CREATE TYPE saison AS ENUM ('été', 'hiver');
        CREATE TYPE lieu AS (ville text, n int);
        CREATE TABLE noms (k text PRIMARY KEY, vc varchar(20), ch char(8),
                           ta text[], j jsonb, s saison, l lieu);
        CREATE TABLE journal (ligne text);
    """)
    with source.connect() as conn:
        for i, w in enumerate(["café", "Zürich", "smørrebrød", "naïve",
                               "façade", "plain"]):
            conn.execute(
                "INSERT INTO noms VALUES (%s, %s, %s, %s, %s, %s, ROW(%s, %s))",
                (w, w.upper(), w[:8], [w, "à"], json.dumps({w: "ß"}),
                 "été" if i % 2 else "hiver", w, i))
            conn.execute("INSERT INTO journal VALUES (%s)", (f"ligne {w}",))
    # loaded, then streamed: pgoutput's text reaches pgtide in UTF-8 too
    p = pgtide.start("migrate", "--source", source.uri, "--target",
                     target_db.uri)
    p.wait_for_output(r"streaming from slot", timeout=120)
    with source.connect() as conn:
        conn.execute("INSERT INTO noms VALUES ('crème', 'brûlée', 'ø', "
                     "'{ü}', '{\"ñ\": 1}', 'été', ROW('Malmö', 9))")
        conn.execute("UPDATE noms SET vc = 'DÉJÀ' WHERE k = 'naïve'")
        conn.execute("INSERT INTO journal VALUES ('ligne crème')")
    wait_caught_up(source, target_db)
    assert p.stop() == 0
    assert target_db.query_one("SELECT vc FROM noms WHERE k = 'café'") == "CAFÉ"
    assert target_db.query_one("SELECT (l).ville FROM noms"
                               " WHERE k = 'crème'") == "Malmö"

    for env in (None, {"PGTIDE_VALIDATE_PORTABLE": "1"}):
        r, out = run_validate(pgtide, source, target_db, env=env)
        assert r.returncode == 0, (env, r.stdout, r.stderr)
        assert out["differences"] == 0

    target_db.execute("UPDATE noms SET vc = 'CAFE' WHERE k = 'café';"
                      "UPDATE journal SET ligne = 'ligne Zurich'"
                      " WHERE ligne = 'ligne Zürich'")
    r, out = run_validate(pgtide, source, target_db)
    assert r.returncode == EXIT_DIFFERENT, r.stderr
    assert named(table_result(out, "public.noms")) == {("different", ("café",))}
    assert table_result(out, "public.journal")["rows_target"] == 7
    assert out["tables_differing"] == 2


def test_keys_of_an_encoding_that_orders_otherwise_are_compared_once(
        pgtide, encoded_source, target_db):
    """A WIN1251 source orders its Cyrillic keys by other bytes than a UTF-8
    target does ('ё' sorts before 'А' there, after 'я' here), and its table
    has a Cyrillic name: it loads, streams, validates equal under a writer,
    and names exactly the rows that differ, in both hash forms, under
    hostile settings on both sides (a Cyrillic column name too). Key
    ranges cut at the source's keys
    would hold other rows on the target: the table is compared by buckets
    of its key's hash instead."""
    source = encoded_source("WIN1251")
    source.execute("""
        CREATE TABLE слова (k text COLLATE "C" PRIMARY KEY, v int,
                            "заметка" text DEFAULT 'ёж и ель');
        INSERT INTO слова
          SELECT (ARRAY['ёлка', 'Ёж', 'Яблоко', 'арбуз', 'юла', 'zebra'])
                 [g % 6 + 1] || ' ' || g, g
          FROM generate_series(1, 60000) g;
        ANALYZE слова;
    """)
    with hostile_settings(source, target_db):
        mig = start_migrate(pgtide, source, target_db)

        def step(c, rnd, n):
            g = rnd.randint(1, 60000)
            c.execute("UPDATE слова SET v = v + 1 WHERE k = (ARRAY["
                      "'ёлка', 'Ёж', 'Яблоко', 'арбуз', 'юла', 'zebra'])"
                      "[%s %% 6 + 1] || ' ' || %s", (g, g))

        r, out, during = validate_under_writer(pgtide, source, target_db, step)
        assert during > 0
        assert r.returncode == 0, r.stderr + json.dumps(out)
        assert out["cdc"] is True and out["differences"] == 0
        wait_caught_up(source, target_db)
        assert mig.stop() == 0
        target_db.execute(
            "UPDATE слова SET v = -v WHERE k IN ('ёлка 6', 'юла 4');"
            "DELETE FROM слова WHERE k = 'Ёж 7';"
            "INSERT INTO слова VALUES ('яма 1', 1)")
        for env in (None, {"PGTIDE_VALIDATE_PORTABLE": "1"}):
            r, out = run_validate(pgtide, source, target_db, env=env)
            assert r.returncode == EXIT_DIFFERENT, (env, r.stderr)
            assert named(table_result(out, "public.слова")) == {
                ("different", ("ёлка 6",)), ("different", ("юла 4",)),
                ("missing", ("Ёж 7",)), ("extra", ("яма 1",))}, env
            assert out["differences"] == 4, out


def test_a_row_the_application_keeps_changing_is_not_a_difference(
        pgtide, source_db, target_db):
    """Online, a row updated without pause is never equal between a source
    and a target that follows it a little behind. It is counted as not
    compared, with its key, and is not a difference; a quiet row changed on
    the target is still one, on the same run, in a table compared by ranges
    and in one compared by buckets of its key's hash (its key's collation
    is not C), under hostile settings on both sides."""
    if not target_db.query_one(
            "SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"):
        pytest.skip("no ICU collation on this server")
    source_db.execute("""
        CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL, t text);
        INSERT INTO counters SELECT g, 0, md5(g::text)
          FROM generate_series(1, 3000) g;
        CREATE TABLE "Named Counters" (name text COLLATE "und-x-icu"
                                       PRIMARY KEY, n bigint NOT NULL);
        INSERT INTO "Named Counters" SELECT 'k' || g, 0
          FROM generate_series(1, 3000) g;
        ANALYZE;
    """)
    with hostile_settings(source_db, target_db):
        mig = start_migrate(pgtide, source_db, target_db)
        wait_caught_up(source_db, target_db)
        target_db.execute("""
            UPDATE counters SET t = 'changed' WHERE id = 10;
            UPDATE "Named Counters" SET n = -1 WHERE name = 'k10';
        """)

        def step(c, rnd, n):
            c.execute("UPDATE counters SET n = n + 1 WHERE id = 1")
            c.execute('UPDATE "Named Counters" SET n = n + 1'
                      " WHERE name = 'k1'")

        r, out, during = validate_under_writer(pgtide, source_db, target_db,
                                               step)
        assert during > 100
        assert r.returncode == EXIT_DIFFERENT, r.stderr + json.dumps(out)
        assert out["cdc"] is True
        counters = table_result(out, "public.counters")
        named_counters = table_result(out, "public.Named Counters")
        assert named(counters) == {("different", ("10",))}, out
        assert named(named_counters) == {("different", ("k10",))}, out
        assert out["differences"] == 2, out
        # a hot row is compared when a pause of the writer lets both sides
        # hold still long enough (equal then); otherwise it is not compared
        for t, key in ((counters, "(id)=(1)"), (named_counters, "(name)=(k1)")):
            assert (t["unsettled"], t["unsettled_key"]) in (
                (1, key), (0, None)), out
        assert out["unsettled"] >= 1, out
        r, _, during = validate_under_writer(
            pgtide, source_db, target_db, step,
            lambda: (pgtide.run("validate", "--source", source_db.uri,
                                "--target", target_db.uri), None))
        assert re.search(r"not compared: [12] rows the application changed"
                         r" at every read", r.stdout), r.stdout
        assert mig.poll() is None
        wait_caught_up(source_db, target_db)
        assert mig.stop() == 0

    # the stream stopped and the writer gone: nothing changes any more, and
    # each side's row of the hot key is compared (equal: the stream caught up)
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT
    assert out["unsettled"] == 0 and out["differences"] == 2, out


def test_target_server_settings_do_not_matter(pgtide, source_db, make_server):
    # Another time zone, date style and float digits on the target server:
    # validate's sessions render both sides alike.
    server = make_server("tz", timezone="Asia/Kolkata", datestyle="SQL, DMY",
                         extra_float_digits=-2, intervalstyle="sql_standard",
                         bytea_output="escape")
    target = ServerDb(server)
    both(source_db, target, AWKWARD_SCHEMA + AWKWARD_ROWS)
    assert target.query_one("SELECT ts::text FROM awkward WHERE id = 3") != \
        source_db.query_one("SELECT ts::text FROM awkward WHERE id = 3")

    r, out = run_validate(pgtide, source_db, target)
    assert r.returncode == 0, r.stderr
    assert out["differences"] == 0

    target.execute("UPDATE awkward SET ts = ts + interval '1 microsecond'"
                   " WHERE id = 3")
    r, out = run_validate(pgtide, source_db, target)
    assert r.returncode == EXIT_DIFFERENT
    assert named(table_result(out, "public.awkward")) == {("different", ("3",))}


def test_differences_are_named(pgtide, source_db, target_db):
    both(source_db, target_db, AWKWARD_SCHEMA + AWKWARD_ROWS + """
        CREATE TABLE items (id int PRIMARY KEY, qty int, note text);
        INSERT INTO items SELECT g, g % 10, 'n' || g FROM generate_series(1, 3000) g;
        UPDATE items SET note = '' WHERE id = 40;
        UPDATE items SET note = NULL WHERE id = 41;
        CREATE TABLE pair (a int, b text, v int, PRIMARY KEY (a, b));
        INSERT INTO pair SELECT g % 50, 'k' || g, g FROM generate_series(1, 500) g;
    """)
    target_db.execute("""
        UPDATE items SET qty = qty + 1 WHERE id = 17;        -- changed value
        DELETE FROM items WHERE id = 2500;                    -- missing row
        INSERT INTO items VALUES (9001, 1, 'extra');          -- extra row
        UPDATE items SET note = NULL WHERE id = 40;           -- '' became NULL
        UPDATE items SET note = '' WHERE id = 41;             -- NULL became ''
        UPDATE awkward SET big = overlay(big placing 'X' from 500000 for 1)
          WHERE id = 4;                                       -- TOASTed column
        UPDATE awkward SET e = 'ok' WHERE id = 1;             -- enum label
        UPDATE awkward SET tz = '12:00+01' WHERE id = 5;      -- NULL became a time
        UPDATE pair SET v = -1 WHERE a = 7 AND b = 'k7';
        DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 1);
        INSERT INTO nokey VALUES (4, 'new');
    """)

    # without pgtide's state on the target, validate only reads
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT, r.stderr
    assert "4 of 4 tables differ (11 differences)" in r.stderr
    assert out["run_id"] is None
    assert target_db.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0

    # with it (a task of another table), the run is recorded
    both(source_db, target_db,
         "CREATE SCHEMA side; CREATE TABLE side.marker (id int)")
    c = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, "--task", "side", "-t", "side.marker",
                   "--schema", "existing")
    assert c.returncode == 0, c.stderr
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT, r.stderr
    assert "4 of 5 tables differ (11 differences)" in r.stderr
    items = table_result(out, "public.items")
    assert named(items) == {("different", ("17",)), ("missing", ("2500",)),
                            ("extra", ("9001",)), ("different", ("40",)),
                            ("different", ("41",))}
    assert items["differences"] == 5 and items["key"] == ["id"]
    assert items["rows_source"] == 3000 and items["rows_target"] == 3000
    awkward = table_result(out, "public.awkward")
    assert named(awkward) == {("different", ("1",)), ("different", ("4",)),
                              ("different", ("5",))}
    pair = table_result(out, "public.pair")
    assert named(pair) == {("different", ("7", "k7"))}
    assert pair["rows"][0]["key"] == {"a": "7", "b": "k7"}
    nokey = table_result(out, "public.nokey")
    rows = {(d["kind"], d["row"], d["source_copies"], d["target_copies"])
            for d in nokey["rows"]}
    assert rows == {("missing", "(1,a)", 2, 1), ("extra", "(4,new)", 0, 1)}
    assert nokey["differences"] == 2
    assert out["differences"] == 11 and out["tables_differing"] == 4

    # the run and its rows are in the state schema
    run = target_db.query("SELECT status, differences, tables_differing"
                          " FROM pgtide.validation_runs WHERE id = %s",
                          (out["run_id"],))
    assert run == [("different", 11, 4)]
    stored = target_db.query(
        "SELECT src_table, kind, key FROM pgtide.validation_differences"
        " WHERE run_id = %s AND key IS NOT NULL ORDER BY 1, 3", (out["run_id"],))
    assert ("public.items", "missing", "(id)=(2500)") in stored
    assert ("public.pair", "different", "(a, b)=(7, k7)") in stored
    assert len(stored) == 9

    # text output names the rows too; nothing was written on the source
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == EXIT_DIFFERENT
    assert "missing on the target  (id)=(2500)" in r.stdout
    assert "(1,a) (2 on the source, 1 on the target)" in r.stdout
    assert source_db.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0


def test_large_table_ranges_split_until_rows_are_named(pgtide, source_db,
                                                        target_db):
    both(source_db, target_db, """
        CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n int);
        INSERT INTO big SELECT g, md5(g::text), g % 97
          FROM generate_series(1, 200000) g;
        ANALYZE big;
        CREATE TABLE wide_nokey (a int, b text);
        INSERT INTO wide_nokey SELECT g % 1000, md5(g::text)
          FROM generate_series(1, 150000) g;
    """)
    target_db.execute("""
        UPDATE big SET n = -1 WHERE id = 3;
        DELETE FROM big WHERE id = 123457;
        UPDATE big SET v = upper(v) WHERE id = 199999;
        DELETE FROM wide_nokey WHERE b = md5('77777');
    """)
    r, out = run_validate(pgtide, source_db, target_db, "--jobs", "3")
    assert r.returncode == EXIT_DIFFERENT, r.stderr
    big = table_result(out, "public.big")
    # no stream applies: the table is read whole, then cut down to its rows
    assert big["ranges"] == 1
    assert named(big) == {("different", ("3",)), ("missing", ("123457",)),
                          ("different", ("199999",))}
    nk = table_result(out, "public.wide_nokey")
    assert [(d["kind"], d["row"]) for d in nk["rows"]] == \
        [("missing", f"(777,{source_db.query_one('SELECT md5(%s)', ('77777',))})")]


def test_sample_and_tables_narrow_the_check(pgtide, source_db, target_db):
    both(source_db, target_db, """
        CREATE TABLE big (id int PRIMARY KEY, v text);
        INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 160000) g;
        ANALYZE big;
        CREATE TABLE small (id int PRIMARY KEY, v text);
        INSERT INTO small SELECT g, 'x' FROM generate_series(1, 100) g;
        CREATE SCHEMA other;
        CREATE TABLE other.t (id int PRIMARY KEY);
    """)
    target_db.execute("UPDATE small SET v = 'y' WHERE id = 5")

    r, out = run_validate(pgtide, source_db, target_db, "--tables",
                          "public.big,other.*")
    assert r.returncode == 0, r.stderr
    assert sorted(t["table"] for t in out["results"]) == ["other.t", "public.big"]

    r, out = run_validate(pgtide, source_db, target_db, "--tables", "sm*")
    assert r.returncode == EXIT_DIFFERENT
    assert [t["table"] for t in out["results"]] == ["public.small"]

    r, out = run_validate(pgtide, source_db, target_db, "--sample", "10%",
                          "--tables", "public.big")
    assert r.returncode == 0, r.stderr
    big = table_result(out, "public.big")
    assert out["sample"] == pytest.approx(0.1)
    assert 1 <= big["ranges_checked"] < big["ranges"]
    assert big["rows_source"] < 160000

    r, _ = run_validate(pgtide, source_db, target_db, "--tables", "public.nope")
    assert r.returncode == 2
    assert 'validate.tables pattern "public.nope" matches no table' in r.stderr


def test_missing_table_and_columns_are_differences(pgtide, source_db,
                                                    target_db):
    source_db.execute("""
        CREATE TABLE gone (id int PRIMARY KEY);
        CREATE TABLE narrow (id int PRIMARY KEY, a int, b int);
        CREATE TABLE same (id int PRIMARY KEY);
    """)
    target_db.execute("""
        CREATE TABLE narrow (id int PRIMARY KEY, a int, extra int);
        CREATE TABLE same (id int PRIMARY KEY);
    """)
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT
    assert table_result(out, "public.gone")["status"] == "missing"
    narrow = table_result(out, "public.narrow")
    assert narrow["status"] == "columns" and "b" in narrow["detail"]
    assert table_result(out, "public.same")["status"] == "equal"
    assert out["tables_differing"] == 2


def test_unreachable_server_is_one_clear_error(pgtide, source_db):
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    assert r.returncode == 4
    assert "could not connect to the target database" in r.stderr


def test_key_collation_ordering_differs(pgtide, source_db, target_db):
    if not target_db.query_one(
            "SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"):
        pytest.skip("no ICU collation on this server")
    # The same keys sort one way on the source (C) and another on the target
    # (ICU): only the row that really differs may be reported, once, and
    # counted once.
    source_db.execute('CREATE TABLE k (name text COLLATE "C" PRIMARY KEY, v int)')
    target_db.execute('CREATE TABLE k (name text COLLATE "und-x-icu" PRIMARY KEY,'
                      ' v int)')
    # C: B... < a... < c...; ICU: a... < B... < c...: a range of the
    # source's from the last a's to the first c's holds every B on the
    # target
    both(source_db, target_db, """
        INSERT INTO k SELECT p || lpad(g::text, 5, '0'), g
          FROM generate_series(1, 30000) g, unnest(ARRAY['a', 'B', 'c']) p;
        ANALYZE k;
    """)
    target_db.execute("UPDATE k SET v = -v WHERE name = 'a04001'")
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT, r.stderr
    k = table_result(out, "public.k")
    # read whole, then by buckets of the key's hash (decision 0041): ranges
    # cut at source keys would hold other rows on the target
    assert k["ranges"] == 1
    assert named(k) == {("different", ("a04001",))}
    assert out["differences"] == 1, out


def test_cdc_running_writer_reports_nothing(pgtide, source_db, target_db):
    source_db.execute("""
        CREATE TABLE hot (id int PRIMARY KEY, n int NOT NULL, t text);
        INSERT INTO hot SELECT g, 0, md5(g::text) FROM generate_series(1, 120000) g;
        ANALYZE hot;
    """)
    mig = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)

    def step(c, rnd, n):
        c.execute("UPDATE hot SET n = n + 1, t = md5(random()::text)"
                  " WHERE id = %s", (rnd.randint(1, 20000),))
        if n % 10 == 0:
            c.execute("INSERT INTO hot VALUES (%s, 0, 'new')"
                      " ON CONFLICT (id) DO UPDATE SET n = 0", (20000 + n,))

    r, out, during = validate_under_writer(pgtide, source_db, target_db, step)
    assert during > 0
    assert r.returncode == 0, r.stderr + json.dumps(out)
    assert out["cdc"] is True and out["differences"] == 0
    # under a stream the table is cut into ranges from the start
    assert table_result(out, "public.hot")["ranges"] > 1
    assert mig.poll() is None

    # stopped stream: a difference made on the target alone is still found
    wait_caught_up(source_db, target_db)
    target_db.execute("UPDATE hot SET t = 'changed' WHERE id = 10")
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT
    assert named(table_result(out, "public.hot")) == {("different", ("10",))}
    assert mig.stop() == 0

    # no stream at all: read whole first, and the same row is named
    r, out = run_validate(pgtide, source_db, target_db)
    assert r.returncode == EXIT_DIFFERENT
    assert out["cdc"] is False
    hot = table_result(out, "public.hot")
    assert hot["ranges"] == 1
    assert named(hot) == {("different", ("10",))}
