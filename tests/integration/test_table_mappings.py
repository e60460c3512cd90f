"""An AWS DMS table-mapping file, read as it is (table_mappings, or
--table-mappings): its selection rules choose exactly the tables that move,
and every rule pgtide does not support yet is one error naming the rule,
before anything is touched on either side (docs/table-mappings.md)."""
import json

import pytest

from conftest import assert_same_content


def selection(rule_id, action, schema, table, **extra):
    rule = {"rule-type": "selection", "rule-id": str(rule_id),
            "rule-name": str(rule_id),
            "object-locator": {"schema-name": schema, "table-name": table},
            "rule-action": action, "filters": []}
    rule.update(extra)
    return rule


def write_rules(tmp_path, rules, name="mapping.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"rules": rules}, indent=2))
    return str(path)


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("pgtide: error:")]


def target_tables(db):
    return {(s, t) for (s, t) in db.query(
        "SELECT schemaname, tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema',"
        " 'pgtide')")}


def assert_nothing_touched(source_db, target_db):
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    assert target_db.query_one(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtide'") == 0
    assert target_tables(target_db) == set()


SOURCE = """
    CREATE SCHEMA sales;
    CREATE TABLE sales.order_1 (id int PRIMARY KEY, v text);
    CREATE TABLE sales.order_2 (id int PRIMARY KEY, v text);
    CREATE TABLE sales.orderx (id int PRIMARY KEY);
    CREATE TABLE sales.order_tmp (id int PRIMARY KEY);
    CREATE SCHEMA "Ops";
    CREATE TABLE "Ops"."Audit%Log" (id int PRIMARY KEY, at date);
    CREATE TABLE "Ops"."AuditXLog" (id int PRIMARY KEY);
    CREATE TABLE "Ops".audit (id int PRIMARY KEY);
    CREATE TABLE public.t_a (id int PRIMARY KEY);
    CREATE TABLE public.t_b (id int PRIMARY KEY);
    CREATE TABLE public.t_c (id int PRIMARY KEY);
    CREATE TABLE public."T_a" (id int PRIMARY KEY);
    INSERT INTO sales.order_1 SELECT g, 'o' || g FROM generate_series(1, 50) g;
    INSERT INTO sales.order_2 SELECT g, 'p' || g FROM generate_series(1, 30) g;
    INSERT INTO "Ops"."Audit%Log" VALUES (1, '2024-01-01'), (2, '2024-02-29');
    INSERT INTO public.t_a VALUES (1), (2);
    INSERT INTO public.t_b VALUES (3);
"""

SELECTED = {("sales", "order_1"), ("sales", "order_2"), ("Ops", "Audit%Log"),
            ("public", "t_a"), ("public", "t_b")}


def test_selection_rules_move_exactly_the_tables_they_select(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    path = write_rules(tmp_path, [
        # exclusion wins over inclusion, wherever it stands in the file
        selection(1, "exclude", "sales", "%[_]tmp"),
        selection(2, "include", "sales", "order[_]%"),
        # explicit: the names as they are, % included
        selection(3, "explicit", "Ops", "Audit%Log"),
        # _ is any one character, [a-b] a range; case-sensitive
        selection(4, "include", "public", "t_[a-b]"),
    ])
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", path)
    assert r.returncode == 0, r.stderr
    assert target_tables(target_db) == SELECTED
    assert_same_content(source_db, target_db,
                        tables=[f'"{s}"."{t}"' for (s, t) in SELECTED])

    # the task file's key selects the same tables for validate
    config = tmp_path / "task.yaml"
    config.write_text(f"source: {source_db.uri}\ntarget: {target_db.uri}\n"
                      f"table_mappings: {path}\n")
    r = pgtide.run("validate", "--config", str(config))
    assert r.returncode == 0, r.stderr
    validated = {t for (t,) in target_db.query(
        "SELECT DISTINCT src_name FROM pgtide.tables")}
    assert len(validated) == len(SELECTED)


UNSUPPORTED = [
    ({"rule-type": "transformation", "rule-id": "7", "rule-name": "7",
      "rule-target": "column",
      "object-locator": {"schema-name": "sales", "table-name": "order_1"},
      "rule-action": "add-column", "value": "c", "expression": "1",
      "data-type": {"type": "int4"}},
     'rule "7" (rule-type "transformation", rule-action "add-column"): '
     "this rule-action on a column is"),
    ({"rule-type": "transformation", "rule-id": "8", "rule-name": "8",
      "rule-target": "table-tablespace",
      "object-locator": {"schema-name": "sales", "table-name": "order_1",
                         "table-tablespace-name": "%"},
      "rule-action": "rename", "value": "fast"},
     'rule "8" (rule-type "transformation", rule-action "rename"): '
     'rule-target "table-tablespace"'),
    (selection(9, "include", "sales", "order_1", filters=[
        {"filter-type": "source", "column-name": "id",
         "filter-conditions": [{"filter-operator": "gte", "value": "10"},
                               {"filter-operator": "like", "value": "1%"}]}]),
     'rule "9" (rule-type "selection", rule-action "include"): source '
     'filters (filter-operator "like")'),
    ({"rule-type": "table-settings", "rule-id": "10", "rule-name": "10",
      "object-locator": {"schema-name": "sales", "table-name": "order_1"},
      "parallel-load": {"type": "partitions-auto"}},
     'rule "10" (rule-type "table-settings", rule-action ""): '
     "table-settings rules"),
    ({"rule-type": "selection", "rule-id": "11", "rule-name": "11",
      "object-locator": {"schema-name": "sales", "table-name": "%",
                         "table-type": "view"},
      "rule-action": "include"},
     'rule "11" (rule-type "selection", rule-action "include"): '
     'table-type "view"'),
    ({"rule-type": "mystery", "rule-id": "12", "rule-action": "x"},
     'rule "12" (rule-type "mystery", rule-action "x")'),
]


@pytest.mark.parametrize("rule,message", UNSUPPORTED,
                         ids=["add-column", "tablespace", "filter",
                              "table-settings", "view", "unknown"])
def test_unsupported_rule_is_one_error_and_touches_nothing(
        pgtide, source_db, target_db, tmp_path, rule, message):
    source_db.execute(SOURCE)
    path = write_rules(tmp_path, [selection(1, "include", "sales", "%"),
                                  rule])
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", path)
    assert r.returncode == 2, r.stderr
    [line] = error_lines(r.stderr)
    assert message in line, line
    assert "not supported yet" in line
    assert_nothing_touched(source_db, target_db)


def test_malformed_file_and_patterns_with_a_mapping_are_refused(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute(SOURCE)
    path = write_rules(tmp_path, [selection(1, "include", "sales", "%"),
                                  selection(1, "include", "Ops", "%")])
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", path)
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert 'rule "1": a second rule with this rule-id' in line
    assert path in line

    good = write_rules(tmp_path, [selection(1, "include", "sales", "%")],
                       "good.json")
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", good, "-t", "sales.*")
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert "table_mappings cannot be used with tables.include" in line

    # an include rule that selects nothing is named, before anything moves
    none = write_rules(tmp_path, [selection(1, "include", "sales", "%"),
                                  selection(5, "include", "sales", "Order%")],
                       "none.json")
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", none)
    assert r.returncode == 2
    [line] = error_lines(r.stderr)
    assert 'rule "5" of none.json' in line and "matches no table" in line
    assert_nothing_touched(source_db, target_db)


def test_twenty_thousand_generated_rules(pgtide, source_db, target_db,
                                         tmp_path):
    """ChartMogul's case: a script generated a rule per account. 18,000
    include rules over 20 tables, in three spellings, and 2,000 exclude
    rules, one of which matches."""
    source_db.execute(";".join(
        f"CREATE TABLE acct_{i} (id int PRIMARY KEY);"
        f"INSERT INTO acct_{i} VALUES ({i})" for i in range(20)))
    rules = []
    for n in range(18000):
        i = n % 20
        table = [f"acct[_]{i}", f"acct_{i}", f"acct[_]{i}%"][n % 3]
        rules.append(selection(n + 1, "include", "public", table))
    for n in range(2000):
        table = "acct[_]19" if n == 0 else f"gone[_]{n}"
        rules.append(selection(18001 + n, "exclude", "public", table))
    path = write_rules(tmp_path, rules)
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, "--table-mappings", path)
    assert r.returncode == 0, r.stderr
    assert target_tables(target_db) == {
        ("public", f"acct_{i}") for i in range(19)}
