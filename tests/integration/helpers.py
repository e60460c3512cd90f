"""Shared helpers for pgtide's integration tests: datasets and comparisons."""

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pgtide', 'pg_toast')"


def schema_objects(db):
    """Indexes, constraints, triggers and rules of the user schemas, by name."""
    return {
        "indexes": db.query(
            "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes"
            f" WHERE schemaname NOT IN {SYSTEM_SCHEMAS} ORDER BY 1, 2, 3"),
        "constraints": db.query(
            "SELECT c.conrelid::regclass::text, c.conname,"
            " pg_get_constraintdef(c.oid), c.convalidated, c.conindid <> 0"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            f" WHERE n.nspname NOT IN {SYSTEM_SCHEMAS} ORDER BY 1, 2"),
        "triggers": db.query(
            "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)"
            " FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2"),
        "rules": db.query(
            "SELECT schemaname, tablename, rulename, definition FROM pg_rules"
            f" WHERE schemaname NOT IN {SYSTEM_SCHEMAS} ORDER BY 1, 2, 3"),
    }


def sequences(db):
    """{qualified name: (last_value, is_called)} for every user sequence."""
    names = db.query(
        "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences"
        f" WHERE schemaname NOT IN {SYSTEM_SCHEMAS}")
    out = {}
    for (name,) in names:
        out[name] = db.query(f"SELECT last_value, is_called FROM {name}")[0]
    return out


def make_load_dataset(db, big_rows=60000):
    """Tables of several sizes so that a small split size gives many chunks."""
    db.execute(f"""
        CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n int);
        INSERT INTO big SELECT g, md5(g::text) || repeat('x', 60), g % 97
          FROM generate_series(1, {big_rows}) g;
        CREATE INDEX big_n ON big (n);
        CREATE INDEX big_v ON big (v);
        CREATE TABLE mid (id int PRIMARY KEY, big_id bigint REFERENCES big,
                          payload jsonb);
        INSERT INTO mid SELECT g, g, jsonb_build_object('k', g, 's', md5(g::text))
          FROM generate_series(1, {big_rows // 4}) g;
        CREATE UNIQUE INDEX mid_payload_k ON mid ((payload->>'k'));
    """)
    for i in range(6):
        db.execute(f"""
            CREATE TABLE small_{i} (id serial PRIMARY KEY, t text);
            INSERT INTO small_{i} (t) SELECT md5(g::text)
              FROM generate_series(1, {500 + 100 * i}) g;
        """)
    db.execute("ANALYZE")


def state_tables(target_db, task="default"):
    """{table name: (state, loads, chunks, chunks_done)} from pgtide's state."""
    rows = target_db.query(
        "SELECT src_schema || '.' || src_name, state, loads, chunks, chunks_done"
        " FROM pgtide.tables WHERE task = %s", (task,))
    return {r[0]: r[1:] for r in rows}


def chunk_runs(target_db, task="default"):
    """{(table, chunk): run that copied it}."""
    rows = target_db.query(
        "SELECT src_schema || '.' || src_name, chunk, run FROM pgtide.chunks"
        " WHERE task = %s", (task,))
    return {(r[0], r[1]): r[2] for r in rows}


# Settings an application may like, set on each database and, overriding
# some of them, on the role in that database (values as SQL writes them).
# Each changes the text of some value: search_path the text of the reg*
# types (a name is qualified only where the path hides it), client_encoding
# the bytes of every text (GB18030 holds every code point, so the tests' own
# sessions still read all of them), array_nulls how an array's NULL reads.
HOSTILE = {
    "source": ({"DateStyle": "'SQL, DMY'", "IntervalStyle": "sql_standard",
                "TimeZone": "'Pacific/Chatham'", "extra_float_digits": "0",
                "bytea_output": "escape", "search_path": "vals, public"},
               {"extra_float_digits": "-15", "lc_monetary": "'C.UTF-8'",
                "xmloption": "document"}),
    "target": ({"DateStyle": "German", "IntervalStyle": "iso_8601",
                "TimeZone": "'America/St_Johns'", "extra_float_digits": "-3",
                "search_path": '"Odd ""Schema""", public',
                "array_nulls": "off"},
               {"bytea_output": "escape", "DateStyle": "'SQL, MDY'",
                "client_encoding": "GB18030"}),
}


class hostile_settings:
    """with hostile_settings(source_db, target_db): the HOSTILE settings on
    both databases and on the role in each, reset on the way out."""

    def __init__(self, source_db, target_db):
        self.dbs = ((source_db, HOSTILE["source"]),
                    (target_db, HOSTILE["target"]))

    def __enter__(self):
        for db, (on_db, on_role) in self.dbs:
            role = db.query_one("SELECT current_user")
            for name, value in on_db.items():
                db.execute(f'ALTER DATABASE "{db.name}" SET {name} = {value}')
            for name, value in on_role.items():
                db.execute(f'ALTER ROLE "{role}" IN DATABASE "{db.name}"'
                           f' SET {name} = {value}')
        return self

    def __exit__(self, *exc):
        for db, _ in self.dbs:
            role = db.query_one("SELECT current_user")
            db.execute(f'ALTER DATABASE "{db.name}" RESET ALL')
            db.execute(f'ALTER ROLE "{role}" IN DATABASE "{db.name}" RESET ALL')
        return False
