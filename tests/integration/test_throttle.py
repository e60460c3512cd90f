"""The load's throttle: the caps of throttle.* (copy workers at once, rows
per second), the adaptive mode that slows the load while the source's probe
is slow and lets it go again once it recovers, and SIGHUP, which rereads the
task file's throttle keys while the load runs (docs/decisions/0026)."""
import json
import re
import signal
import time

from conftest import _free_port, wait_for
from test_http import get, metric, scrape


def task_file(path, **throttle):
    """Writes a task file with these throttle.* keys (JSON is YAML)."""
    path.write_text(json.dumps({"throttle": throttle}) + "\n")
    return path


def start_throttled_copy(pgtide, source_db, target_db, cfg):
    """copy with one worker under the task file cfg, once its first rows
    passed the throttle; returns the process and its HTTP port."""
    port = _free_port()
    p = pgtide.start("copy", "--config", cfg, "--source", source_db.uri,
                     "--target", target_db.uri, "--jobs", "1",
                     "--http", str(port))
    p.wait_for_output(r"serving metrics", timeout=60)
    wait_for(lambda: (throttle_of(port) or {}).get("rows", 0) > 0, 60, 0.1,
             "the load never passed the throttle")
    return p, port


def throttle_of(port):
    """The "throttle" member of /status (None when no load runs)."""
    status, _, body = get(port, "/status")
    assert status == 200, body
    return json.loads(body)["throttle"]


def rate(port, seconds):
    """Rows per second the copy workers passed through the throttle over
    `seconds`, from its counter."""
    t0, r0 = time.monotonic(), throttle_of(port)["rows"]
    time.sleep(seconds)
    t1, r1 = time.monotonic(), throttle_of(port)["rows"]
    return (r1 - r0) / (t1 - t0)


def test_adaptive_throttle_slows_the_load_while_the_probe_is_slow(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute("""
        CREATE TABLE big (id int PRIMARY KEY, pad text);
        INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 6000) g;
        CREATE TABLE probe_t (id int);
        INSERT INTO probe_t VALUES (1);
    """)
    cfg = task_file(tmp_path / "task.yaml", rows_per_second=500,
                    adaptive="on", probe_latency=200, probe_interval=200,
                    probe_query="SELECT count(*) FROM public.probe_t")
    port = _free_port()
    p = pgtide.start("copy", "--config", cfg, "--source", source_db.uri,
                     "--target", target_db.uri, "--jobs", "1",
                     "--exclude-table", "public.probe_t", "--http", str(port))
    p.wait_for_output(r"serving metrics", timeout=60)
    wait_for(lambda: (throttle_of(port) or {}).get("rows", 0) >= 256, 60, 0.1,
             "the load never passed the throttle")
    t = throttle_of(port)
    assert t["factor"] == 1
    assert t["probe_query"] is True and t["probe_latency_bound_ms"] == 200
    assert t["caps"]["rows_per_second"] == 500
    before = rate(port, 2.0)
    assert before > 0

    # the user's probe reads a table another session holds locked: each
    # probe waits, and the throttle slows the load down
    locker = source_db.connect()
    try:
        locker.execute("BEGIN")
        locker.execute("LOCK probe_t IN ACCESS EXCLUSIVE MODE")
        wait_for(lambda: throttle_of(port)["state"] == "slowing", 30, 0.1,
                 "the throttle never engaged while the probe waited on a lock")
        samples, _ = scrape(port)
        assert metric(samples, "pgtide_throttle_state", task="default",
                      state="slowing") == 1
        assert metric(samples, "pgtide_throttle_factor", task="default") < 1
        assert metric(samples, "pgtide_throttle_probe_latency_seconds",
                      task="default", stat="last") > 0.2
        # another process's status shows it too, as the running one recorded it
        wait_for(lambda: (json.loads(pgtide.run(
            "status", "--target", target_db.uri, "--json").stdout)["throttle"]
            or {}).get("state") == "slowing", 30, 0.3,
            "pgtide status never showed the throttle slowing")
        assert re.search(r"^throttle: slowing, the load at \d+% of its caps$",
                         pgtide.run("status", "--target", target_db.uri).stdout,
                         re.M)
        wait_for(lambda: throttle_of(port)["factor"] <= 0.125, 30, 0.1,
                 "the factor never went down to an eighth")
        engaged = rate(port, 2.0)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert engaged < before / 2, (before, engaged)

    # the lock is gone: the probe is fast again, the load back at full rate
    wait_for(lambda: throttle_of(port)["state"] == "open", 60, 0.1,
             "the throttle never let the load go again")
    t = throttle_of(port)
    # (a busy machine may slow a probe past the bound once more: each
    # slowdown is one line all the same)
    assert t["factor"] == 1 and t["slowdowns"] >= 1
    assert p.wait(120) == 0, p.read_stderr()
    assert target_db.query_one("SELECT count(*) FROM big") == 6000

    # the log says each change of state once, never each probe
    log = p.read_stderr()
    # more than five probes waited on the lock, each halving the share: one
    # line when it began, not one per probe
    slows = log.count("over its 200 ms bound: the load slows down")
    assert 1 <= slows <= 3, log
    assert log.count("the load is back at its full rate") >= 1, log
    assert log.count("[throttle] throttle:") <= 3 * slows, log
    assert t["probes"] > 10
    assert "throttle: 500 rows/s" in log


def test_sighup_rereads_the_caps(pgtide, source_db, target_db, tmp_path):
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, pad text);
        INSERT INTO t SELECT g, 'p' FROM generate_series(1, 20000) g;
    """)
    cfg = task_file(tmp_path / "task.yaml", rows_per_second=100)
    p, port = start_throttled_copy(pgtide, source_db, target_db, cfg)
    assert throttle_of(port)["caps"]["rows_per_second"] == 100
    assert throttle_of(port)["state"] == "off"

    # a file that no longer reads: one error, and the old cap stays
    cfg.write_text("throttle: [rows_per_second\n")
    p.send_signal(signal.SIGHUP)
    p.wait_for_output(r"SIGHUP: could not reread the task file: .*task\.yaml",
                      timeout=30)
    assert p.poll() is None
    assert p.read_stderr().count("SIGHUP") == 1
    assert throttle_of(port)["caps"]["rows_per_second"] == 100
    waited = throttle_of(port)["waited_ms"]
    assert waited > 0

    # no cap now, and a key that takes a restart: named once, not applied
    cfg.write_text(json.dumps({"progress": {"interval": 5},
                               "throttle": {"rows_per_second": 0}}) + "\n")
    p.send_signal(signal.SIGHUP)
    p.wait_for_output(r"SIGHUP: progress\.interval changed in the task file but "
                      r"takes "
                      r"a restart", timeout=30)
    p.wait_for_output(r"SIGHUP: throttle\.rows_per_second now in force",
                      timeout=30)
    # 20,000 rows at 100 a second would take minutes: the load ends now
    assert p.wait(90) == 0, p.read_stderr()
    assert target_db.query_one("SELECT count(*) FROM t") == 20000
    log = p.read_stderr()
    assert log.count("progress.interval changed") == 1, log
    assert log.count("SIGHUP") == 3, log


def test_copy_workers_cap(pgtide, source_db, target_db, tmp_path):
    for i in range(4):
        source_db.execute(f"""
            CREATE TABLE t{i} (id int PRIMARY KEY, pad text);
            INSERT INTO t{i} SELECT g, 'p' FROM generate_series(1, 1500) g;
        """)
    cfg = task_file(tmp_path / "task.yaml", copy_workers=1,
                    rows_per_second=2000)
    port = _free_port()
    p = pgtide.start("copy", "--config", cfg, "--source", source_db.uri,
                     "--target", target_db.uri, "--jobs", "4",
                     "--http", str(port))
    # a COPY out of the source may finish into the socket's buffers before
    # the worker has read it; the COPY into the target stays active until
    # the worker sent its last row: both count the workers copying
    copying = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
               " AND application_name = 'pgtide copy' AND query LIKE %s")
    out, into = [], []
    with source_db.connect() as src, target_db.connect() as tgt:
        while p.poll() is None:
            out.append(src.execute(copying, ("COPY %TO STDOUT%",)).fetchone()[0])
            into.append(tgt.execute(copying, ("COPY %FROM STDIN%",)).fetchone()[0])
            time.sleep(0.05)
    assert p.wait(10) == 0, p.read_stderr()
    # one worker copies at a time, and one was seen copying
    assert max(out) <= 1, out
    assert max(into) == 1, into
    for i in range(4):
        assert target_db.query_one(f"SELECT count(*) FROM t{i}") == 1500


def test_index_builds_cap(pgtide, source_db, target_db, tmp_path):
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int);
        CREATE INDEX t_a ON t (a);
        CREATE INDEX t_b ON t (b);
        CREATE INDEX t_c ON t (c);
        INSERT INTO t SELECT g, g, g, g FROM generate_series(1, 1000) g;
    """)
    cfg = task_file(tmp_path / "task.yaml", index_builds=1)
    # each of the first four steps holds its build open a while, so that
    # builds running at once are seen
    hold = ",".join(f"postdata.step.before_commit@{i}:sleep=1500"
                    for i in range(1, 5))
    p = pgtide.start("copy", "--config", cfg, "--source", source_db.uri,
                     "--target", target_db.uri, "--index-jobs", "4",
                     env={"PGTIDE_FAULT": hold})
    building = []
    with target_db.connect() as tgt:
        while p.poll() is None:
            building.append(tgt.execute(
                # a build's transaction: the step, then its mark in the state
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'pgtide build'"
                " AND xact_start IS NOT NULL").fetchone()[0])
            time.sleep(0.05)
    assert p.wait(10) == 0, p.read_stderr()
    # one build at a time under index_jobs 4, and one was seen
    assert max(building) == 1, building
    assert target_db.query_one(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == 4


def test_a_failing_probe_is_one_warning_and_never_writes(
        pgtide, source_db, target_db, tmp_path):
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY);
        INSERT INTO t SELECT generate_series(1, 1000);
        CREATE TABLE probe_t (id int);
    """)
    # a probe that would write: the probe's session is read-only
    cfg = task_file(tmp_path / "task.yaml", rows_per_second=500,
                    adaptive="on", probe_interval=100,
                    probe_query="INSERT INTO public.probe_t VALUES (1)")
    p = pgtide.start("copy", "--config", cfg, "--source", source_db.uri,
                     "--target", target_db.uri, "--exclude-table", "public.probe_t")
    assert p.wait(120) == 0, p.read_stderr()
    log = p.read_stderr()
    assert log.count("throttle: the probe failed: throttle.probe_query: "
                     "cannot execute INSERT in a read-only transaction") == 1, log
    assert source_db.query_one("SELECT count(*) FROM probe_t") == 0
    assert target_db.query_one("SELECT count(*) FROM t") == 1000


def test_sighup_with_a_table_mappings_file_changes_no_selection(
        pgtide, source_db, target_db, tmp_path):
    """The selection a mapping file makes is read again with the task file:
    a SIGHUP that changes only a cap names no other key."""
    source_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, pad text);
        CREATE TABLE other (id int PRIMARY KEY);
        INSERT INTO t SELECT g, 'p' FROM generate_series(1, 20000) g;
    """)
    rules = tmp_path / "mapping.json"
    rules.write_text(json.dumps({"rules": [{
        "rule-type": "selection", "rule-id": "1", "rule-name": "1",
        "object-locator": {"schema-name": "public", "table-name": "t"},
        "rule-action": "include", "filters": []}]}))
    cfg = tmp_path / "task.yaml"
    cfg.write_text(json.dumps({"table_mappings": str(rules),
                               "throttle": {"rows_per_second": 100}}) + "\n")
    p, port = start_throttled_copy(pgtide, source_db, target_db, cfg)
    cfg.write_text(json.dumps({"table_mappings": str(rules),
                               "throttle": {"rows_per_second": 0}}) + "\n")
    p.send_signal(signal.SIGHUP)
    p.wait_for_output(r"SIGHUP: throttle\.rows_per_second now in force",
                      timeout=30)
    assert p.wait(90) == 0, p.read_stderr()
    assert "takes a restart" not in p.read_stderr()
    assert "take a restart" not in p.read_stderr()
    assert target_db.query_one("SELECT count(*) FROM t") == 20000
    assert target_db.query_one("SELECT to_regclass('public.other')") is None
