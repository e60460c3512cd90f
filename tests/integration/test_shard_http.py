"""--http with several targets (docs/sharding.md, docs/metrics.md): the
process that starts the targets' processes serves one surface for all of
them, through the load and the stream. /status is pgtide status --json's
document of several targets, /metrics labels every target's samples with
its name, /readyz is ready once every target follows and names the first
that does not, the dashboard shows each target; a target whose process
stops reporting turns /readyz and its pgtide_cdc_following off."""
import json
import os
import re
import signal
import time

import pytest

from conftest import _free_port, wait_for
from test_http import get, metric, scrape
from test_shard import HASHED, LOADED, targets, task_file  # noqa: F401
from test_shard_stream import wait_caught_up, wait_streaming, workload

NAMES = ["shard1", "shard2", "shard3"]


def served_status(port):
    status, headers, body = get(port, "/status")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def child_pid(p, name):
    m = re.search(rf"target {name}: process (\d+) started", p.read_stderr())
    assert m, p.read_stderr()
    return int(m.group(1))


# the HTTP surface's code runs under the sanitizers in test_http.py; this
# one adds several targets' states read by it, at CI's longest test
@pytest.mark.skipif(bool(os.environ.get("PGTIDE_SANITIZED")),
                    reason="the surface runs under the sanitizers in"
                           " test_http.py: CI time")
def test_one_surface_serves_every_target(pgtide, source_db, targets, tmp_path):
    source_db.execute(LOADED)
    loaded_orders = source_db.query_one("SELECT count(*) FROM orders")
    path = task_file(tmp_path, source_db, targets, HASHED)
    port = _free_port()
    # the first chunk waits, so the surface is seen while the load runs
    p = pgtide.start("migrate", "--config", path, "--progress-interval", "1",
                     "--jobs", "1", "--http", str(port),
                     env={"PGTIDE_FAULT": "copy.chunk.before_commit@1:sleep=4000"})
    p.wait_for_output(rf"serving metrics, status and a dashboard on "
                      rf"http://127\.0\.0\.1:{port}/ \(every target's\)",
                      timeout=60)
    assert "not served with several targets" not in p.read_stderr()

    # during the load: every target's state, none of them following
    assert get(port, "/healthz")[:3:2] == (200, "ok\n")
    status, _, body = get(port, "/readyz")
    assert status == 503 and body.startswith("not ready: target shard1: "), body
    # (a target whose process has not created its state yet is new)
    wait_for(lambda: all(served_status(port)["targets"][n].get("phase")
                         not in (None, "new") for n in NAMES), 30, 0.3,
             "/status never showed every target's state during the load")
    doc = served_status(port)
    assert doc["task"] == "split" and sorted(doc["targets"]) == NAMES
    samples, _ = scrape(port)
    assert metric(samples, "pgtide_build_info", version="0.1.0",
                  command="migrate") == 1
    for name in NAMES:
        assert metric(samples, "pgtide_cdc_following", task="split",
                      target=name) == 0
    assert metric(samples, "pgtide_throttle_factor", task="split") == 1

    # streaming: every target follows, each under its own name
    wait_streaming(p)
    workload(source_db, 10000)
    wait_caught_up(source_db, p)
    wait_for(lambda: get(port, "/readyz")[0] == 200, 60, 0.3,
             "/readyz never said ready once every target caught up")
    assert get(port, "/readyz")[2].startswith("ready: every target (3) following")
    samples, _ = scrape(port)
    copied = 0
    for name in NAMES:
        assert metric(samples, "pgtide_phase", task="split", target=name,
                      phase="cdc") == 1
        assert metric(samples, "pgtide_cdc_following", task="split",
                      target=name) == 1
        assert metric(samples, "pgtide_slot_retained_wal_bytes", task="split",
                      target=name, slot="pgtide_split") >= 0
        copied += metric(samples, "pgtide_table_rows_copied_total",
                         task="split", target=name, table="public.orders")
    # the stream's own buffer is not in a target's state: left out, not
    # written as 0
    assert not [k for k in samples if k[0] == "pgtide_cdc_buffered_bytes"]
    # the load's rows, each on one target
    assert copied == loaded_orders

    # the stream's counters are what each target's status says
    def counters_agree():
        samples, _ = scrape(port)
        st = json.loads(pgtide.run("status", "--config", path, "--json").stdout)
        return all(metric(samples, "pgtide_cdc_changes_applied_total",
                          task="split", target=n) ==
                   st["targets"][n]["cdc_changes"] > 0 for n in NAMES)
    wait_for(counters_agree, 60, 0.5,
             "a target's applied changes never matched its status")

    # /status is pgtide status --json's document of several targets
    served = served_status(port)
    printed = json.loads(pgtide.run("status", "--config", path,
                                    "--json").stdout)
    assert sorted(served["targets"]) == sorted(printed["targets"]) == NAMES
    for name in NAMES:
        assert served["targets"][name].keys() == printed["targets"][name].keys()
        assert served["targets"][name]["phase"] == "cdc"
        assert served["targets"][name]["slot_name"] == "pgtide_split"

    # a target whose process stops reporting is not ready, by name
    stalled = child_pid(p, "shard2")
    os.kill(stalled, signal.SIGSTOP)
    try:
        wait_for(lambda: get(port, "/readyz")[2].startswith(
            "not ready: target shard2: the stream has not reported for "),
            60, 0.5, "/readyz never named the stalled target")
        assert get(port, "/readyz")[0] == 503
        samples, _ = scrape(port)
        assert metric(samples, "pgtide_cdc_following", task="split",
                      target="shard2") == 0
        assert metric(samples, "pgtide_cdc_following", task="split",
                      target="shard1") == 1
    finally:
        os.kill(stalled, signal.SIGCONT)
    wait_for(lambda: get(port, "/readyz")[0] == 200, 60, 0.3,
             "/readyz never said ready again once the target reported")

    dashboard(port, tmp_path)

    assert p.stop() == 0


def dashboard(port, tmp_path):
    """The page merges the targets and lists each one (in Chromium, when
    it is installed)."""
    from browser import Browser, chromium_binary
    page = get(port, "/")[2]
    assert "s.targets" in page
    if chromium_binary() is None:
        return
    browser = Browser(tmp_path)
    try:
        browser.open(f"http://127.0.0.1:{port}/")
        browser.wait("document.querySelectorAll('#targets tr').length == 3",
                     30, "the page never listed the three targets")
        rows = browser.js("Array.from(document.querySelectorAll('#targets tr'))"
                          ".map(tr => Array.from(tr.cells).map(c => c.textContent))")
        assert [r[0] for r in rows] == NAMES and all(r[1] == "cdc" for r in rows), rows
        assert browser.js("document.getElementById('phase').textContent") == "cdc"
        tables = browser.js("Array.from(document.querySelectorAll('#rows tr'))"
                            ".map(tr => tr.cells[0].textContent)")
        assert "shard2: public.orders" in tables, tables
        # the chart samples the targets' records while the page reads them
        browser.wait("+document.getElementById('chart-lag-seconds')"
                     ".getAttribute('data-samples') >= 2", 30,
                     "the lag chart never had the targets' samples")
        browser.pump(2.5)
        print(f"dashboard screenshot: {browser.screenshot(tmp_path / 'targets.png')}")
        assert browser.errors == [], browser.errors
    finally:
        browser.close()


def test_copy_of_several_targets_serves_them(pgtide, source_db, targets,
                                             tmp_path):
    source_db.execute(LOADED)
    path = task_file(tmp_path, source_db, targets, HASHED)
    port = _free_port()
    p = pgtide.start("copy", "--config", path, "--jobs", "1", "--http",
                     str(port),
                     env={"PGTIDE_FAULT": "copy.chunk.before_commit@1:sleep=3000"})
    p.wait_for_output(r"serving metrics, status and a dashboard on .* "
                      r"\(every target's\)", timeout=60)
    # (a target whose process has not created its state yet is new)
    wait_for(lambda: all(served_status(port)["targets"][n].get("phase")
                         not in (None, "new") for n in NAMES), 30, 0.3,
             "/status never showed every target's state during the copy")
    samples, _ = scrape(port)
    assert metric(samples, "pgtide_build_info", version="0.1.0",
                  command="copy") == 1
    for name in NAMES:
        assert metric(samples, "pgtide_phase", task="split", target=name,
                      phase="load") == 1
    assert p.wait(timeout=120) == 0, p.read_stderr()
    # the port is given back with the process
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            get(port, "/healthz")
        except OSError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the copy's surface outlived it")
