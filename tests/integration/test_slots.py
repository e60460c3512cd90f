"""No replication slot is left behind unannounced: pgtide copy keeps none
(it loads from temporary slots, which the source drops with their
connection, kill -9 included), a later migrate or follow of a copied task
refuses, a failed run whose slot stays names it, the WAL it holds and the
exact commands that resume the task or drop it (without a password), and
status and check list every slot of pgtide's on the source."""
import json
import re
import shlex
import signal

from conftest import PW_USER, WAL_SAMPLE_ARG, wait_for

PASSWORD = "secret"


def pgtide_slots(db):
    """{name: temporary} of the source server's slots named pgtide_..."""
    return dict(db.query("SELECT slot_name, temporary FROM pg_replication_slots"
                         " WHERE slot_name LIKE 'pgtide\\_%%'"))


def no_slot_left(db):
    # a temporary slot goes when its walsender sees its connection close
    wait_for(lambda: pgtide_slots(db) == {}, 30, 0.1,
             f"slots left on the source: {pgtide_slots(db)}")


def small_source(db, rows=2000):
    db.execute(f"""
        CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
        INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;
        CREATE TABLE notes (id int PRIMARY KEY, t text);
        INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 50) g;
    """)


def failing_target(db):
    """An existing-schema target whose items table refuses every row."""
    db.execute("""
        CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL
                            CHECK (v = 'never'));
        CREATE TABLE notes (id int PRIMARY KEY, t text);
    """)


def last_line(stderr):
    return stderr.rstrip("\n").splitlines()[-1]


def test_copy_that_ends_leaves_no_slot_and_cannot_be_streamed(
        pgtide, source_db, target_db):
    small_source(source_db)
    args = ["--source", source_db.uri, "--target", target_db.uri]
    r = pgtide.run("copy", *args)
    assert r.returncode == 0, r.stderr
    assert "consistent point" in r.stdout and "no slot kept" in r.stdout
    assert "temporary slot" in r.stderr
    no_slot_left(source_db)
    # nothing published either: no stream will ever read this task
    assert source_db.query_one("SELECT count(*) FROM pg_publication") == 0
    assert target_db.query_one(
        "SELECT copy_only FROM pgtide.task WHERE task = 'default'") is True
    assert target_db.query_one("SELECT count(*) FROM items") == 2000

    # a stream of it would start where no slot followed the load: refused
    for command in ("migrate", "follow"):
        r = pgtide.run(command, *args, "--skip-check", "task_slot",
                       timeout=120)
        assert r.returncode == 2, r.stderr
        assert ('pgtide: error: task "default" was loaded by pgtide copy, '
                "which keeps no replication slot; the source's changes "
                "since its load cannot be streamed") in r.stderr, r.stderr
        assert "HINT: drop the task with pgtide clean" in r.stderr
        no_slot_left(source_db)
    # and migrate's check says so first
    r = pgtide.run("check", *args, "--json", timeout=120)
    assert r.returncode == 6
    [f] = [f for f in json.loads(r.stdout)["findings"]
           if f["id"] == "task_slot"]
    assert f["severity"] == "blocker"
    assert f["message"] == ('task "default" was loaded by pgtide copy, which '
                            "keeps no replication slot")

    # running copy again is a no-op, and still leaves nothing
    r = pgtide.run("copy", *args)
    assert r.returncode == 0, r.stderr
    assert "already finished its full load" in r.stdout
    no_slot_left(source_db)


def test_copy_that_fails_leaves_no_slot(pgtide, source_db, target_db):
    small_source(source_db)
    failing_target(target_db)
    r = pgtide.run("copy", "--source", source_db.uri, "--target",
                   target_db.uri, "--schema", "existing")
    assert r.returncode == 4, r.stderr
    assert "items_v_check" in r.stderr
    # the error is the last word: no slot to announce
    assert not any("replication slot" in l for l in r.stderr.splitlines()
                   if l.startswith("pgtide:")), r.stderr
    no_slot_left(source_db)


def interrupted_copy(pgtide, source_db, target_db, sig):
    small_source(source_db, rows=20000)
    args = ["copy", "--source", source_db.uri, "--target", target_db.uri,
            "--split-tables-larger-than", "128kB", "--jobs", "1"]
    p = pgtide.start(*args, env={"PGTIDE_FAULT": "copy.row@3000:sleep=5000"})
    p.wait_for_output(r"fault point copy.row: sleeping", timeout=120)
    # mid-load, the snapshot comes from a temporary slot, never a kept one
    slots = pgtide_slots(source_db)
    assert slots and all(slots.values()), slots
    # status names it as the running load's
    r = pgtide.run("status", "--source", source_db.uri, "--target",
                   target_db.uri, "--json")
    assert r.returncode == 0, r.stderr
    [shown] = json.loads(r.stdout)["slots"]
    assert shown["name"] == f"pgtide_default_reload_{p.pid}"
    assert (shown["this_task"], shown["active"], shown["temporary"]) == \
        (True, True, True)
    code = p.stop(sig)
    no_slot_left(source_db)
    return p, code, args


def test_copy_interrupted_leaves_no_slot_and_resumes(pgtide, source_db,
                                                     target_db):
    p, code, args = interrupted_copy(pgtide, source_db, target_db,
                                     signal.SIGINT)
    assert code == 5, p.read_stderr()
    assert last_line(p.read_stderr()) == (
        "pgtide: interrupted; progress is saved, run the same command again "
        "to resume")
    r = pgtide.run(*args)
    assert r.returncode == 0, r.stderr
    assert target_db.query_one("SELECT count(*) FROM items") == 20000
    no_slot_left(source_db)


def test_copy_killed_leaves_no_slot(pgtide, source_db, target_db):
    p, code, args = interrupted_copy(pgtide, source_db, target_db,
                                     signal.SIGKILL)
    assert code == -signal.SIGKILL
    r = pgtide.run(*args)
    assert r.returncode == 0, r.stderr
    assert target_db.query_one("SELECT count(*) FROM items") == 20000
    no_slot_left(source_db)


# the resume command repeats the run's options, the test harness's
# check.wal_sample among them
SAMPLED = WAL_SAMPLE_ARG

NOTICE = re.compile(
    r'pgtide: replication slot "pgtide_default" is left on the source and '
    r"holds (\d+(?:\.\d)? (?:B|kB|MB|GB|TB)) of WAL there; resume with: "
    r"(pgtide migrate .*); or drop it with: (pgtide clean .*)")


def test_failed_migrate_names_its_slot_and_status_check_list_slots(
        pgtide, source_db, target_db):
    small_source(source_db)
    failing_target(target_db)
    src = source_db.uri_as(PW_USER, PASSWORD)
    tgt = target_db.uri_as(PW_USER, PASSWORD)
    r = pgtide.run("migrate", "--source", src, "--target", tgt, "--schema",
                   "existing", "-j", "1", timeout=120)
    assert r.returncode == 4, r.stderr
    assert "items_v_check" in r.stderr
    m = NOTICE.fullmatch(last_line(r.stderr))
    assert m, r.stderr
    assert PASSWORD not in r.stderr
    bare_src = source_db.uri_as(PW_USER)
    bare_tgt = target_db.uri_as(PW_USER)
    assert m.group(2) == (f"pgtide migrate {SAMPLED} --source {bare_src} "
                          f"--target {bare_tgt} --schema existing -j 1")
    assert m.group(3) == (f"pgtide clean --source {bare_src} --target "
                          f"{bare_tgt}")
    assert pgtide_slots(source_db) == {"pgtide_default": False}

    # run again with conninfo strings: the same slot, no password either
    server = source_db.server
    src_ci = (f"host={server.host} port={server.port} password = "
              f"'{PASSWORD}' dbname={source_db.name} user={PW_USER}")
    tgt_ci = (f"host={target_db.server.host} port={target_db.server.port} "
              f"dbname={target_db.name} user={PW_USER} password={PASSWORD}")
    r = pgtide.run("migrate", "-s", src_ci, f"--target={tgt_ci}", "--schema",
                   "existing", timeout=120)
    assert r.returncode == 4, r.stderr
    m2 = NOTICE.fullmatch(last_line(r.stderr))
    assert m2, r.stderr
    assert PASSWORD not in r.stderr
    bare_src_ci = (f"host={server.host} port={server.port} "
                   f"dbname={source_db.name} user={PW_USER}")
    bare_tgt_ci = (f"host={target_db.server.host} port={target_db.server.port}"
                   f" dbname={target_db.name} user={PW_USER}")
    assert m2.group(2) == (f"pgtide migrate {SAMPLED} -s '{bare_src_ci}' "
                           f"'--target={bare_tgt_ci}' --schema existing")
    assert m2.group(3) == (f"pgtide clean -s '{bare_src_ci}' "
                           f"'--target={bare_tgt_ci}'")

    # another task's slot, abandoned
    source_db.execute("SELECT pg_create_logical_replication_slot("
                      "'pgtide_abandoned', 'pgoutput')")
    source_db.execute("CREATE TABLE filler AS SELECT g FROM "
                      "generate_series(1, 20000) g")
    env = {"PGPASSWORD": PASSWORD}
    r = pgtide.run("status", "--source", bare_src, "--target", bare_tgt,
                   "--json", env=env)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    slots = {s["name"]: s for s in st["slots"]}
    assert set(slots) == {"pgtide_abandoned", "pgtide_default"}
    own, other = slots["pgtide_default"], slots["pgtide_abandoned"]
    assert (own["this_task"], own["active"], own["temporary"]) == \
        (True, False, False)
    assert (other["this_task"], other["active"]) == (False, False)
    for s in (own, other):
        assert s["database"] == source_db.name
        assert s["retained_wal_bytes"] > 0
        assert isinstance(s["catalog_xmin_age"], int) and \
            s["catalog_xmin_age"] >= 1
    assert own["created_at"] == st["slot_created_at"] is not None
    assert other["created_at"] is None
    r = pgtide.run("status", "--source", bare_src, "--target", bare_tgt,
                   env=env)
    assert r.returncode == 0, r.stderr
    assert "pgtide's replication slots on the source: 2\n" in r.stdout
    assert re.search(r"\n  pgtide_abandoned \(database \S+\): inactive, "
                     r"retains \S+ \S+ of WAL, catalog_xmin age \d+ "
                     r"transactions\n", r.stdout), r.stdout
    assert re.search(r"\n  pgtide_default \(this task\) \(database \S+\): "
                     r"inactive, retains \S+ \S+ of WAL, catalog_xmin age \d+ "
                     r"transactions, made \S+ \S+\n", r.stdout), r.stdout

    r = pgtide.run("check", "--source", bare_src, "--target", bare_tgt,
                   "--schema", "existing", "--json", env=env, timeout=120)
    found = {f["object"]: f for f in json.loads(r.stdout)["findings"]
             if f["id"] == "pgtide_slot"}
    assert set(found) == {"pgtide_abandoned", "pgtide_default"}, r.stdout
    assert found["pgtide_default"]["severity"] == "info"
    assert found["pgtide_abandoned"]["severity"] == "warning"
    assert re.fullmatch(
        r'replication slot "pgtide_abandoned" of pgtide in database \S+, not '
        r"this task's, is inactive, retains \S+ \S+ of WAL; catalog_xmin age "
        r"\d+ transactions", found["pgtide_abandoned"]["message"])
    assert "pg_drop_replication_slot('pgtide_abandoned')" in \
        found["pgtide_abandoned"]["fix"]
    source_db.execute("SELECT pg_drop_replication_slot('pgtide_abandoned')")

    # the printed clean command is exact: it drops the slot
    r = pgtide.run(*shlex.split(m.group(3))[1:], env=env)
    assert r.returncode == 0, r.stderr
    no_slot_left(source_db)


def test_interrupted_migrate_names_its_slot(pgtide, source_db, target_db):
    small_source(source_db)
    args = ["--source", source_db.uri, "--target", target_db.uri]
    p = pgtide.start("migrate", *args)
    p.wait_for_output(r"streaming from slot", timeout=120)
    assert p.stop() == 0, p.read_stderr()
    m = NOTICE.fullmatch(last_line(p.read_stderr()))
    assert m, p.read_stderr()
    assert m.group(2) == f"pgtide migrate {SAMPLED} --source " \
                         f"{source_db.uri} --target {target_db.uri}"
    assert m.group(3) == f"pgtide clean --source {source_db.uri} " \
                         f"--target {target_db.uri}"
    # a copy of a task migrate started keeps the stream's slot, and says so
    r = pgtide.run("copy", *args)
    assert r.returncode == 0, r.stderr
    assert last_line(r.stderr).startswith(
        'pgtide: replication slot "pgtide_default" is left on the source and '
        "holds "), r.stderr
    assert last_line(r.stderr).endswith(
        f" of WAL there; stream from it with: pgtide migrate {SAMPLED} "
        f"{' '.join(args)}"
        f"; or drop it with: pgtide clean {' '.join(args)}"), r.stderr


def test_a_task_file_is_named_as_given(pgtide, source_db, target_db, tmp_path):
    """The commands name the task file, which holds the password; the line
    never shows it."""
    small_source(source_db, rows=100)
    task_file = tmp_path / "move.yaml"
    task_file.write_text(
        "task: filetask\n"
        f"source: {source_db.uri_as(PW_USER, PASSWORD)}\n"
        f"target: {target_db.uri_as(PW_USER, PASSWORD)}\n")
    p = pgtide.start("migrate", "--config", task_file, "--jobs", "1")
    p.wait_for_output(r"streaming from slot", timeout=120)
    assert p.stop() == 0, p.read_stderr()
    line = last_line(p.read_stderr())
    assert PASSWORD not in p.read_stderr()
    m = re.fullmatch(
        r'pgtide: replication slot "pgtide_filetask" is left on the source '
        r"and holds \S+ \S+ of WAL there; resume with: (.*); or drop it "
        r"with: (.*)", line)
    assert m, line
    assert m.group(1) == \
        f"pgtide migrate {SAMPLED} --config {task_file} --jobs 1"
    assert m.group(2) == f"pgtide clean --config {task_file}"
    r = pgtide.run(*shlex.split(m.group(2))[1:])
    assert r.returncode == 0, r.stderr
    no_slot_left(source_db)
