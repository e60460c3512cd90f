"""Sequences at the end of the load and at cutover: every kind (ascending,
descending, a step above one, bounded near a bound, CYCLE, never called,
owned by no column) ends where the application needs it; one that cannot be
set is named, the others are still set, and cutover fails cleanly."""

from cdc_helpers import start_migrate, wait_caught_up
from test_cutover import EVENTS, can_write, cutover_row, make_role

# name -> how the source leaves it; every one but events_id_seq is owned by
# no column
SEQUENCES = """
    CREATE SEQUENCE up;
    SELECT nextval('up') FROM generate_series(1, 5);
    CREATE SEQUENCE down INCREMENT -1;
    SELECT nextval('down') FROM generate_series(1, 3);
    CREATE SEQUENCE step INCREMENT 10 START 7;
    SELECT nextval('step') FROM generate_series(1, 2);
    CREATE SEQUENCE near_max MAXVALUE 1050;
    SELECT setval('near_max', 100);
    CREATE SEQUENCE near_min INCREMENT -1 MINVALUE -1050 MAXVALUE -1;
    SELECT setval('near_min', -100);
    CREATE SEQUENCE cyc MINVALUE 1 MAXVALUE 100 CYCLE;
    SELECT setval('cyc', 96);
    CREATE SEQUENCE fresh START 42;
    CREATE SEQUENCE set_uncalled;
    SELECT setval('set_uncalled', 500, false);
    CREATE SEQUENCE "Odd Name" INCREMENT 3 START 2;
    SELECT nextval('"Odd Name"');
"""

STATES = ["up", "down", "step", "near_max", "near_min", "cyc", "fresh",
          "set_uncalled", '"Odd Name"', "events_id_seq"]


def states(db):
    return {name: db.query_one(f"SELECT (last_value, is_called)::text"
                               f" FROM {name}")
            for name in STATES}


def following(pgtide, source_db, target_db, role):
    source_db.execute(EVENTS + SEQUENCES + "INSERT INTO events (v)"
                      " SELECT g FROM generate_series(1, 20) g;")
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    return migrate


def cutover(pgtide, source_db, target_db, role):
    return pgtide.run("cutover", "--source", source_db.uri, "--target",
                      target_db.uri, "--fence", "revoke", "--fence-role",
                      role, "--sequence-margin", "1000")


def test_every_kind_of_sequence_ends_where_the_application_needs_it(
        pgtide, source_db, target_db):
    role = "app_seq"
    migrate = following(pgtide, source_db, target_db, role)
    # the load copies each one's exact state (no margin)
    assert states(target_db) == states(source_db)

    r = cutover(pgtide, source_db, target_db, role)
    assert r.returncode == 0, r.stderr
    assert migrate.wait(60) == 0
    assert "10 sequences set (+1000 increments" in r.stdout, r.stdout
    assert "near_max" in r.stderr and "near_min" in r.stderr  # clamped
    assert states(target_db) == {
        # 1000 increments ahead, in the increment's direction
        "up": "(1005,t)",
        "down": "(-1003,t)",
        "step": "(10017,t)",
        '"Odd Name"': "(3002,t)",
        "events_id_seq": "(1020,t)",
        # never called: the next value is still 1000 increments ahead
        "fresh": "(1042,f)",
        "set_uncalled": "(1500,f)",
        # the margin passes the bound: at the bound, used up
        "near_max": "(1050,t)",
        "near_min": "(-1050,t)",
        # CYCLE: the source's exact state (a margin would wrap it)
        "cyc": "(96,t)",
    }
    assert target_db.query_one("SELECT nextval('cyc')") == 97
    assert target_db.query_one("SELECT nextval('fresh')") == 1042
    assert target_db.query_one("SELECT nextval('down')") == -1004
    row = cutover_row(target_db)
    assert row[0] == "done"


def test_a_sequence_that_cannot_be_set_is_named_and_the_others_are_set(
        pgtide, source_db, target_db):
    """A sequence the target lacks and one it refuses: cutover sets every
    other, names both, undoes the fence and fails; fixed, it succeeds."""
    role = "app_seq_bad"
    migrate = following(pgtide, source_db, target_db, role)
    target_db.execute("DROP SEQUENCE fresh;"
                      "ALTER SEQUENCE up MAXVALUE 300")

    r = cutover(pgtide, source_db, target_db, role)
    assert r.returncode == 4, r.stderr
    assert "2 of 10 sequences could not be set" in r.stderr, r.stderr
    assert '"public"."fresh": not on the target' in r.stderr
    assert '"public"."up": on the target:' in r.stderr
    assert "create the sequences the target lacks" in r.stderr
    assert "fence is undone" in r.stderr
    result, error, _, _, _ = cutover_row(target_db)
    assert result == "failed, fence undone"
    assert "fresh" in error and "up" in error
    assert can_write(source_db, role)
    assert migrate.poll() is None
    # the others were set all the same
    assert target_db.query_one("SELECT last_value FROM step") == 10017
    assert target_db.query_one("SELECT last_value FROM down") == -1003

    target_db.execute("CREATE SEQUENCE fresh START 42;"
                      "ALTER SEQUENCE up NO MAXVALUE")
    r = cutover(pgtide, source_db, target_db, role)
    assert r.returncode == 0, r.stderr
    assert migrate.wait(60) == 0
    assert target_db.query_one("SELECT (last_value, is_called)::text"
                               " FROM fresh") == "(1042,f)"
    assert target_db.query_one("SELECT last_value FROM up") == 1005
