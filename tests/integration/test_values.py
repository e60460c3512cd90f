"""The torture database for values (sql/values.sql): every built-in type at
its edges and every kind of user-defined type, under hostile settings on both
databases and on the role in each (helpers.HOSTILE), moved by the load
(binary and text COPY) and by the change stream, then compared exactly and
validated."""
import json
import os

import pytest

from cdc_helpers import start_migrate, wait_caught_up
from conftest import HERE, assert_same_content
from helpers import hostile_settings

VALUES_SQL = HERE / "sql" / "values.sql"

# Tables of built-in types only: copy.format auto moves them in binary.
BINARY = ["vals.numbers", "vals.times", "vals.bytes", "vals.code_points",
          "vals.arrays", "vals.ranges", "vals.odd_keys", "vals.toasted"]
# Tables that travel in text whatever copy.format says: user-defined types,
# reg* types (their binary form is an OID), tsquery (an empty one cannot be
# read back in binary).
TEXT = ["vals.user_types", "vals.full_identity", "vals.regs", "vals.misc"]
USER_TYPED = ["vals.user_types", "vals.full_identity"]


def keyed_columns(db, table):
    schema, rel = table.split(".")
    return [c for (c,) in db.query(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attname <> 'id'"
        " ORDER BY attnum", (f"{schema}.{rel}",))]


def write_edge_values(db, tables):
    """Inserts, updates (key changes too) and deletes that carry every edge
    value again, each row's values taken from the source itself so that the
    writer's own settings cannot change them."""
    with db.connect() as conn:
        for table in tables:
            if table in ("vals.odd_keys", "vals.full_identity"):
                continue
            cols = keyed_columns(db, table)
            collist = ", ".join(f'"{c}"' for c in cols)
            with conn.transaction():
                conn.execute(f"INSERT INTO {table} (id, {collist})"
                             f" SELECT id + 100000, {collist} FROM {table}")
                # each copy takes the values of the next original row
                conn.execute(
                    f"UPDATE {table} t SET ({collist}) = (SELECT {collist}"
                    f" FROM {table} s WHERE s.id = (SELECT min(id) FROM {table}"
                    f" WHERE id > t.id - 100000 AND id < 100000))"
                    f" WHERE t.id >= 100000")
                conn.execute(f"DELETE FROM {table} WHERE id >= 100000"
                             f" AND id % 3 = 0")
            # a key that changes: the old key is sent along
            conn.execute(f"UPDATE {table} SET id = -id WHERE id < 100000"
                         f" AND id % 2 = 0")
        with conn.transaction():
            # TOASTed values left alone by an update arrive as "unchanged"
            conn.execute("UPDATE vals.toasted SET v = v + 1")
            conn.execute("UPDATE vals.toasted SET big = big || '\\x00'::bytea"
                         " WHERE id = -2")
        with conn.transaction():
            conn.execute("UPDATE vals.odd_keys SET v = v + 100")
            conn.execute("UPDATE vals.odd_keys SET k_num = -k_num"
                         " WHERE k_num = 'Infinity'")
            conn.execute("DELETE FROM vals.odd_keys WHERE k_text = ''")
            conn.execute("INSERT INTO vals.odd_keys SELECT k_text || 'x',"
                         " k_num, k_tz, v FROM vals.odd_keys")
        if "vals.full_identity" not in tables:
            return
        with conn.transaction():
            # rows matched on their every column, duplicates included
            conn.execute("INSERT INTO vals.full_identity"
                         " SELECT * FROM vals.full_identity")
            conn.execute("UPDATE vals.full_identity SET t = coalesce(t, '') || 'u'"
                         " WHERE n = 'NaN' OR f8 = 'NaN'")
            conn.execute("DELETE FROM vals.full_identity WHERE ctid IN"
                         " (SELECT min(ctid) FROM vals.full_identity"
                         "  GROUP BY f8::text, n::text, tz, i, t, b, j::text,"
                         "  m, ai, rg)")
            conn.execute("UPDATE vals.full_identity SET ai = ai || 1"
                         " WHERE tz = '-infinity' OR f8 = 5e-324")
        # rows their types' equality cannot tell apart, told apart: one of
        # each pair deleted, the first of one and the second of the other
        conn.execute("DELETE FROM vals.full_identity WHERE t = 'equal a'"
                     " AND f8::text = '-0'")
        conn.execute("DELETE FROM vals.full_identity WHERE t = 'equal b'"
                     " AND f8::text = '0'")


def run_validate(pgtide, source_db, target_db, *extra):
    r = pgtide.run("validate", "--source", source_db.uri, "--target",
                   target_db.uri, "--json", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["differences"] == 0 and out["tables_differing"] == 0, out
    return out


# Under the sanitizers one run covers both copy paths: auto moves some tables
# in binary and the others (reg*, tsquery, user types) in text.
FORMATS = ["auto"] if os.environ.get("PGTIDE_SANITIZED") else [
    "auto", "text", "binary"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_value_moves_exactly(pgtide, source_db, target_db, fmt):
    """The load (in binary where copy.format allows, else text), then the
    stream of inserts, updates and deletes of the same values: both databases
    hold the same values, compared as text under pinned settings, and
    validate finds nothing. Under copy.format binary, tables of user-defined
    types are left out (their types' OIDs differ on the target), and
    vals.regs and vals.misc still travel in text: in binary they would move
    OIDs and fail on an empty tsquery."""
    source_db.load_sql_file(VALUES_SQL)
    moved = BINARY + TEXT
    exclude = []
    if fmt == "binary":
        moved = [t for t in moved if t not in USER_TYPED]
        exclude = [a for t in USER_TYPED for a in ("-T", t)]
    with hostile_settings(source_db, target_db):
        p = start_migrate(pgtide, source_db, target_db, "--format", fmt,
                          *exclude)
        formats = dict(target_db.query(
            "SELECT src_schema || '.' || src_name, format"
            " FROM pgtide.tables WHERE src_schema = 'vals'"))
        want = {t: "text" if fmt == "text" else "binary" for t in BINARY}
        want.update({t: "text" for t in TEXT if t in moved})
        assert formats == want
        assert_same_content(source_db, target_db,
                            tables=moved if exclude else None)

        write_edge_values(source_db, moved)
        wait_caught_up(source_db, target_db)
        assert_same_content(source_db, target_db,
                            tables=moved if exclude else None)
        run_validate(pgtide, source_db, target_db, *exclude)
        assert p.stop() == 0
