"""A COMMIT that reached the target and committed there, whose answer never
came back: the connection died on the way. pgtide cannot tell it from a
COMMIT that never arrived, and it retries; the retry must find out which it
was, from the state committed with the work, once the old session is gone,
never do the work twice (rows doubled, an index "already exists") nor count
it done when it was not."""
import pytest

from cdc_helpers import ServerDb
from conftest import assert_same_content, wait_for
from faults import TcpProxy
from helpers import make_load_dataset, schema_objects

SPLIT = ["--split-tables-larger-than", "512kB", "--jobs", "2"]


@pytest.mark.parametrize("session, after, fault", [
    # a chunk's rows and its done-record
    ("pgtide copy", b"", None),
    # an index build and its done-record (not a constraint's index, whose
    # build says IF NOT EXISTS)
    ("pgtide build", b"CREATE INDEX big_n ", None),
    # the whole pre-data schema and "schema done", on the task's own session,
    # which reconnects by itself; held at the COMMIT so that the proxy is
    # armed for that one
    ("pgtide", b"", "schema.before_commit:sleep=1500"),
])
def test_a_lost_commit_answer_is_neither_redone_nor_lost(pgtide, make_server,
                                                         session, after, fault):
    source, target = make_server("src"), make_server("tgt")
    src, tgt = ServerDb(source), ServerDb(target)
    make_load_dataset(src, big_rows=20000)
    with TcpProxy(target, "tgt") as tp:
        if fault is None:
            tp.lose_answer(session, after)
        args = ["copy", "--source", src.uri, "--target", tp.uri(), *SPLIT]
        p = pgtide.start(*args, env={"PGTIDE_FAULT": fault} if fault else None)
        if fault is not None:
            p.wait_for_output(r"fault point \S+: sleeping", timeout=120)
            tp.lose_answer(session, after)
        rc = p.wait(180)
        err = p.read_stderr()
        assert rc == 0, err
        assert tp.answers_lost == 1, (tp.log, err)
    assert_same_content(src, tgt)
    assert schema_objects(src) == schema_objects(tgt)
    assert tgt.query_one(
        "SELECT count(*) FROM pgtide.tables WHERE state <> 'done'") == 0
    # the lost session's work counted once: a chunk recorded twice, or a
    # table's row counter past its rows, would say it ran twice
    for name, rows in tgt.query("SELECT src_name, rows FROM pgtide.tables"):
        assert rows == src.query_one(f'SELECT count(*) FROM public."{name}"'), name


@pytest.mark.parametrize("command", ["migrate", "copy"])
def test_a_lost_slot_creation_answer_leaves_one_slot(pgtide, make_server,
                                                     command):
    """CREATE_REPLICATION_SLOT reached the source, its answer did not: the
    slot (kept for migrate, temporary for copy) exists, held by a walsender
    that has not noticed the loss. The load makes it again, and the source
    ends up with the task's one slot (or none after copy), not two, and the
    target with the source's rows."""
    source, target = make_server("src"), make_server("tgt")
    src, tgt = ServerDb(source), ServerDb(target)
    make_load_dataset(src, big_rows=5000)
    with TcpProxy(source, "src") as sp:
        sp.lose_answer("pgtide snapshot", message=b"CREATE_REPLICATION_SLOT")
        p = pgtide.start(command, "--source", sp.uri(), "--target", tgt.uri,
                         *SPLIT)
        if command == "migrate":
            p.wait_for_output(r"streaming from slot", timeout=120)
            rc = p.stop()
        else:
            rc = p.wait(180)
        err = p.read_stderr()
        assert rc == 0, err
        assert sp.answers_lost == 1, (sp.log, err)
    slots = src.query("SELECT slot_name FROM pg_replication_slots")
    assert slots == ([("pgtide_default",)] if command == "migrate" else []), err
    assert_same_content(src, tgt)
