"""Materialized views: the load fills those the source has populated (pg_dump
creates them empty), each after those it reads; cutover refreshes them once
the target holds every change; one never populated stays so; a refresh that
fails or is killed leaves the cutover to be run again."""

from cdc_helpers import start_migrate, wait_caught_up
from test_cutover import EVENTS, can_write, cutover_row, make_role

# "A Top" reads z_base through a view, m_direct reads it directly: names
# sort against the order they must be refreshed in
SCHEMA = """
    CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL);
    INSERT INTO items SELECT g, g % 5, g FROM generate_series(1, 100) g;
    CREATE MATERIALIZED VIEW z_base AS
      SELECT grp, count(*) AS n, sum(v) AS total FROM items GROUP BY grp;
    CREATE UNIQUE INDEX z_base_grp ON z_base (grp);
    CREATE VIEW v_mid AS SELECT grp, total FROM z_base WHERE grp > 0;
    CREATE MATERIALIZED VIEW "A Top" AS
      SELECT sum(total) AS total, count(*) AS groups FROM v_mid;
    CREATE MATERIALIZED VIEW m_direct AS SELECT max(total) AS top FROM z_base;
    CREATE MATERIALIZED VIEW never AS SELECT count(*) AS n FROM items
      WITH NO DATA;
"""

POPULATED = ["z_base", '"A Top"', "m_direct"]


def contents(db):
    return {mv: db.query(f"SELECT * FROM {mv} ORDER BY 1") for mv in POPULATED}


def populated(db, name):
    return db.query_one("SELECT relispopulated FROM pg_class"
                        " WHERE relname = %s AND relkind = 'm'", (name,))


def write_more(db):
    db.execute("UPDATE items SET v = v + 1000 WHERE grp = 2;"
               "DELETE FROM items WHERE id <= 10;"
               "INSERT INTO items SELECT g, g % 7, g FROM"
               " generate_series(101, 130) g;")


def refresh_all(db):
    for mv in POPULATED:
        db.execute(f"REFRESH MATERIALIZED VIEW {mv}")


def following(pgtide, source_db, target_db, role):
    source_db.execute(EVENTS + SCHEMA)  # events: can_write's
    make_role(source_db, role)
    migrate = start_migrate(pgtide, source_db, target_db)
    wait_caught_up(source_db, target_db)
    return migrate


def cutover(pgtide, source_db, target_db, role, env=None):
    return pgtide.run("cutover", "--source", source_db.uri, "--target",
                      target_db.uri, "--fence", "revoke", "--fence-role",
                      role, env=env)


def test_load_fills_and_cutover_refreshes_materialized_views(
        pgtide, source_db, target_db):
    role = "app_mv"
    migrate = following(pgtide, source_db, target_db, role)
    assert contents(target_db) == contents(source_db)
    assert populated(target_db, "never") is False

    write_more(source_db)
    wait_caught_up(source_db, target_db)
    r = cutover(pgtide, source_db, target_db, role)
    assert r.returncode == 0, r.stderr
    assert migrate.wait(60) == 0
    assert "3 materialized views refreshed" in r.stdout, r.stdout
    # the target's hold their queries' results over the data handed over:
    # the source's own, once refreshed
    refresh_all(source_db)
    assert contents(target_db) == contents(source_db)
    assert populated(target_db, "never") is False


def test_a_load_killed_while_it_refreshes_fills_them_on_the_next_run(
        pgtide, source_db, target_db):
    source_db.execute(SCHEMA)
    args = ["copy", "--source", source_db.uri, "--target", target_db.uri]
    r = pgtide.run(*args, env={"PGTIDE_FAULT": "load.refresh"})
    assert r.returncode == -9, r.stderr
    # killed after the first: z_base, which the others read
    assert populated(target_db, "z_base") is True
    assert populated(target_db, "A Top") is False
    r = pgtide.run(*args)
    assert r.returncode == 0, r.stderr
    assert contents(target_db) == contents(source_db)
    assert populated(target_db, "never") is False


def test_a_failed_or_killed_refresh_leaves_cutover_to_run_again(
        pgtide, source_db, target_db):
    role = "app_mv_fail"
    migrate = following(pgtide, source_db, target_db, role)
    write_more(source_db)
    wait_caught_up(source_db, target_db)

    # killed while it refreshes: the fence stays, the next cutover lifts it
    killed = cutover(pgtide, source_db, target_db, role,
                     env={"PGTIDE_FAULT": "cutover.refresh"})
    assert killed.returncode == -9, killed.stderr
    assert not can_write(source_db, role)

    # the target refuses a refresh: z_base's totals of groups 0 and 1 become
    # equal, which an index only the target has forbids
    target_db.execute("CREATE UNIQUE INDEX z_total ON z_base (total)")
    source_db.execute("INSERT INTO items VALUES (1000, 1, %s)",
                      (source_db.query_one(
                          "SELECT sum(v) FILTER (WHERE grp = 0)"
                          " - sum(v) FILTER (WHERE grp = 1) FROM items"),))
    wait_caught_up(source_db, target_db)
    failed = cutover(pgtide, source_db, target_db, role)
    assert failed.returncode == 4, failed.stderr
    assert "lifting that fence first" in failed.stderr
    assert "could not refresh materialized view" in failed.stderr
    assert "z_base" in failed.stderr and "fence is undone" in failed.stderr
    result, error, _, _, _ = cutover_row(target_db)
    assert result == "failed, fence undone" and "z_base" in error
    assert can_write(source_db, role)
    assert migrate.poll() is None

    target_db.execute("DROP INDEX z_total")
    ok = cutover(pgtide, source_db, target_db, role)
    assert ok.returncode == 0, ok.stderr
    assert migrate.wait(60) == 0
    refresh_all(source_db)
    assert contents(target_db) == contents(source_db)
