"""No change is skipped silently: a change of a table the task does not
move stops the stream with the table's name, unless the user chose to
ignore such changes; then they are counted in status."""

import json

from cdc_helpers import start_migrate, wait_caught_up
from conftest import assert_same_content, wait_for


def test_a_change_of_a_table_the_task_does_not_move_stops_the_stream(
        pgtide, source_db, target_db):
    source_db.execute("""
        CREATE TABLE moved (id int PRIMARY KEY, v text);
        CREATE TABLE other (id int PRIMARY KEY, v text);
        INSERT INTO moved SELECT g, 'm' || g FROM generate_series(1, 50) g;
    """)
    migrate = start_migrate(pgtide, source_db, target_db, "-t", "public.moved")
    # what the task's own check asks for when a table is missing from it
    source_db.execute("ALTER PUBLICATION pgtide_default ADD TABLE other")
    source_db.execute("INSERT INTO moved VALUES (51, 'before')")
    source_db.execute("INSERT INTO other VALUES (1, 'not moved')")
    assert migrate.wait(60) == 3
    err = migrate.read_stderr()
    assert ('the source sent a change of table "public"."other"' in err
            and 'which task "default" does not move' in err), err
    assert "--unknown-tables=ignore" in err, err
    # the stream stopped at that transaction: the one before it is applied
    # unless it shared its target batch, which then rolled back whole
    assert target_db.query_one("SELECT count(*) FROM moved") in (50, 51)

    source_db.execute("INSERT INTO moved VALUES (52, 'after')")
    migrate = start_migrate(pgtide, source_db, target_db, "-t", "public.moved",
                            "--unknown-tables", "ignore")
    wait_caught_up(source_db, target_db)
    assert_same_content(source_db, target_db, ["public.moved"])

    def ignored():
        r = pgtide.run("status", "--source", source_db.uri, "--target",
                       target_db.uri, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["cdc_ignored_changes"]

    # counted once the next progress record is written
    wait_for(lambda: ignored() == 1, 30, 0.5, "status never counted it")
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert "1 changes of tables the task does not move were ignored" in r.stdout
    assert migrate.stop() == 0, migrate.read_stderr()
