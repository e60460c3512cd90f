"""pgtide copy killed (-9) or disconnected at the worst moments resumes to a
result identical to an uninterrupted load, with nothing doubled and only
unfinished work redone (asserted from pgtide's state)."""
import signal

import pytest

from conftest import assert_same_content, wait_for
from helpers import chunk_runs, make_load_dataset, schema_objects, state_tables

SPLIT = ["--split-tables-larger-than", "512kB", "--jobs", "2"]


def copy_args(source_db, target_db):
    return ["copy", "--source", source_db.uri, "--target", target_db.uri, *SPLIT]


def killed(r):
    return r.returncode == -signal.SIGKILL


def assert_complete(source_db, target_db):
    assert_same_content(source_db, target_db)
    assert schema_objects(source_db) == schema_objects(target_db)
    assert target_db.query_one(
        "SELECT count(*) FROM pgtide.tables WHERE state <> 'done'") == 0


@pytest.mark.parametrize("fault", [
    "copy.row@50000",                 # in the middle of a chunk
    "copy.chunk.before_commit@6",     # rows sent, chunk record written, no commit
    "copy.chunk.after_commit@6",      # between chunks
])
def test_kill_during_load_resumes_only_unfinished(pgtide, source_db, target_db,
                                                  fault):
    make_load_dataset(source_db)
    r = pgtide.run(*copy_args(source_db, target_db),
                   env={"PGTIDE_FAULT": fault})
    assert killed(r), r.stderr
    before = state_tables(target_db)
    runs_before = chunk_runs(target_db)
    done_before = {t for t, s in before.items() if s[0] == "done"}
    unfinished = set(before) - done_before
    assert unfinished, "the kill must leave work to do"

    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0, r.stderr
    assert_complete(source_db, target_db)

    after = state_tables(target_db)
    runs_after = chunk_runs(target_db)
    for t in done_before:
        # a finished table is neither reloaded nor recopied
        assert after[t][1] == before[t][1] == 1, t
        for key, run in runs_after.items():
            if key[0] == t:
                assert run == runs_before[key] == 1, key
    for t in unfinished:
        if before[t][0] == "copying":
            assert after[t][1] == 2, f"{t} must be reloaded from a new snapshot"
    # the reloaded tables record a later consistent point than the slot's
    rows = target_db.query(
        "SELECT t.src_name, t.snapshot_lsn > k.consistent_lsn, t.loads"
        " FROM pgtide.tables t JOIN pgtide.task k USING (task)")
    for name, later, loads in rows:
        assert later == (loads > 1), name


def test_kill_during_index_builds_keeps_data_and_built_steps(pgtide, source_db,
                                                             target_db):
    make_load_dataset(source_db)
    r = pgtide.run(*copy_args(source_db, target_db),
                   env={"PGTIDE_FAULT": "postdata.step.before_commit@3"})
    assert killed(r), r.stderr
    built = target_db.query_one(
        "SELECT count(*) FROM pgtide.ddl WHERE done_run = 1")
    assert built == 2
    # index builds start as each table lands, so a table may still be in
    # flight at the kill: only the finished ones must stay as they are
    done_before = {t for t, s in state_tables(target_db).items()
                   if s[0] == "done"}
    assert done_before

    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0, r.stderr
    assert_complete(source_db, target_db)
    # no finished table was reloaded, the two steps built before the kill
    # stayed
    after = state_tables(target_db)
    assert {after[t][1] for t in done_before} == {1}
    assert target_db.query_one(
        "SELECT count(*) FROM pgtide.ddl WHERE done_run = 1") == 2
    assert target_db.query_one(
        "SELECT count(*) FROM pgtide.ddl WHERE done_at IS NULL AND phase > 0") == 0


def test_kill_after_slot_before_it_is_recorded(pgtide, source_db, target_db):
    make_load_dataset(source_db, big_rows=2000)
    # migrate's slot is kept: killed before its point was recorded, the slot
    # cannot be trusted, and the next run (copy here) drops it
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, env={"PGTIDE_FAULT": "task.after_slot"},
                   timeout=120)
    assert killed(r), r.stderr
    assert source_db.query("SELECT slot_name, temporary FROM"
                           " pg_replication_slots") == [("pgtide_default",
                                                         False)]
    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0, r.stderr
    assert_complete(source_db, target_db)
    assert source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0
    # copy's own kill at the same point leaves no slot at all: its snapshot's
    # slot is temporary (the first task ended first: a task never drops
    # another's tables)
    r = pgtide.run("clean", "--source", source_db.uri, "--target",
                   target_db.uri)
    assert r.returncode == 0, r.stderr
    r = pgtide.run(*copy_args(source_db, target_db), "--task", "again",
                   "--on-existing", "drop",
                   env={"PGTIDE_FAULT": "task.after_slot"})
    assert killed(r), r.stderr
    wait_for(lambda: source_db.query_one(
        "SELECT count(*) FROM pg_replication_slots") == 0, 30, 0.1)


def test_worker_backend_terminated_mid_chunk_is_retried(pgtide, source_db,
                                                        target_db):
    make_load_dataset(source_db)
    p = pgtide.start(*copy_args(source_db, target_db),
                     env={"PGTIDE_FAULT": "copy.row@20000:sleep=3000"})
    p.wait_for_output(r"fault point copy.row: sleeping")
    terminated = source_db.query_one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'pgtide copy'")
    assert terminated >= 1
    assert p.wait(120) == 0, p.read_stderr()
    assert "retrying" in p.read_stderr()
    assert_complete(source_db, target_db)
    # the retried chunk reused the snapshot: no table was reloaded
    assert {s[1] for s in state_tables(target_db).values()} == {1}


def test_lost_snapshot_reloads_only_unfinished_tables(pgtide, source_db,
                                                      target_db):
    make_load_dataset(source_db)
    # one worker: big (60000 rows) is done by row 70000, mid is in flight
    p = pgtide.start(*copy_args(source_db, target_db), "--jobs", "1",
                     env={"PGTIDE_FAULT": "copy.row@70000:sleep=3000"})
    p.wait_for_output(r"fault point copy.row: sleeping")
    # the exporting connection first, then the workers, which must re-import
    source_db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'pgtide snapshot'")
    source_db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'pgtide copy'")
    assert p.wait(120) == 0, p.read_stderr()
    assert "snapshot was lost" in p.read_stderr()
    assert_complete(source_db, target_db)
    loads = {t: s[1] for t, s in state_tables(target_db).items()}
    assert loads["public.big"] == 1, "a finished table stays"
    assert loads["public.mid"] == 2, "the table in flight is reloaded"


def test_sigint_saves_progress_and_exits_5(pgtide, source_db, target_db):
    make_load_dataset(source_db)
    p = pgtide.start(*copy_args(source_db, target_db), "--jobs", "1",
                     env={"PGTIDE_FAULT": "copy.row@70000:sleep=2000"})
    p.wait_for_output(r"fault point copy.row: sleeping")
    assert p.stop(signal.SIGINT) == 5
    assert "interrupted; progress is saved" in p.read_stderr()
    assert state_tables(target_db)["public.big"][0] == "done"
    r = pgtide.run(*copy_args(source_db, target_db))
    assert r.returncode == 0, r.stderr
    assert_complete(source_db, target_db)
    assert state_tables(target_db)["public.big"][1] == 1
