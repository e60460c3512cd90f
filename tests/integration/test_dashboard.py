"""The dashboard at / in headless Chromium (Debian's chromium, driven over
the DevTools protocol): it loads with no console error, asks nothing of any
address but the pgtide process's, shows the tables of a running task (a
table being copied with its progress, rate and time left) and the log's
last warnings (never a password), and its lag chart gains samples as the
stream reports, also after a reload (the process keeps the last hour). Two
screenshots (during the load, while following) are kept in the test's
temporary directory."""
import json
import re
import urllib.parse

import pytest

from browser import Browser, chromium_binary
from cdc_helpers import wait_caught_up
from conftest import _free_port
from test_http import get

pytestmark = pytest.mark.skipif(
    chromium_binary() is None,
    reason="chromium is not installed (scripts/install-deps.sh installs it)")

SCHEMA = '''
    CREATE TABLE accounts (id int PRIMARY KEY, balance int);
    CREATE TABLE events (id bigint PRIMARY KEY, note text);
    CREATE TABLE keyless_log (line text);
    INSERT INTO accounts SELECT g, g FROM generate_series(1, 2000) g;
    INSERT INTO events SELECT g, repeat('e', 30) || g
        FROM generate_series(1, 20000) g;
    INSERT INTO keyless_log SELECT 'l' || g FROM generate_series(1, 100) g;
    -- left out: the view that reads it is a warning of the load
    CREATE TABLE secrets (id int PRIMARY KEY);
    CREATE VIEW secret_view AS SELECT id FROM secrets;
'''

CHART = "document.getElementById('chart-lag-seconds')"


def samples(browser):
    return int(browser.js(f"{CHART}.getAttribute('data-samples') || '0'"))


def test_dashboard_in_chromium(pgtide, source_db, target_db, tmp_path):
    source_db.execute(SCHEMA)
    port = _free_port()
    # a password in the source's URI (the test servers trust, so it is not
    # checked): it must appear nowhere on the page or what it reads
    password = "dash-secret-pw"
    src = source_db.uri_as(source_db.server.superuser, password=password)
    # events is cut into chunks copied one at a time, the 2nd to 5th held
    # 2 s each before they commit: the page sees the table copying
    hold = ",".join(f"copy.chunk.before_commit@{n}:sleep=2000" for n in range(2, 6))
    p = pgtide.start("migrate", "--source", src, "--target", target_db.uri,
                     "-T", "public.secrets", "--progress-interval", "1",
                     "--jobs", "1", "--split-tables-larger-than", "128kB",
                     "--http", str(port), env={"PGTIDE_FAULT": hold})
    p.wait_for_output(r"serving metrics", timeout=60)

    browser = Browser(tmp_path)
    try:
        browser.open(f"http://127.0.0.1:{port}/")
        # while the load runs: a progress bar part filled, a copy rate and
        # an estimate of the time left
        copying = browser.wait(
            "Array.from(document.querySelectorAll('#rows tr'))"
            ".map(tr => Array.from(tr.cells).map(c => c.textContent))"
            ".find(r => r[0] == 'public.events' && r[1] != 'done'"
            " && r[6].endsWith('/s') && /^[0-9]+ (s|min)/.test(r[7]))", 60,
            "the page never showed events copying with a rate and time left")
        done, planned = map(int, copying[3].split(" / "))
        assert 0 < done < planned, copying
        width = browser.js("document.querySelector('#rows tr:nth-child(' + "
                           "(Array.from(document.querySelectorAll('#rows tr'))"
                           ".findIndex(tr => tr.cells[0].textContent == "
                           "'public.events') + 1) + ') .bar div').style.width")
        assert 0 < int(width.rstrip("%")) < 100, width
        assert browser.js("document.getElementById('phase').textContent") == "load"
        print(f"dashboard screenshot: {browser.screenshot(tmp_path / 'dashboard-load.png')}")

        p.wait_for_output(r"streaming from slot", timeout=120)
        wait_caught_up(source_db, target_db)
        # the tables of the task, all copied once the stream runs
        browser.wait("document.getElementById('phase').textContent == 'cdc'", 30,
                     "the page never showed the phase cdc")
        browser.wait("document.querySelectorAll('#rows tr').length == 3 && "
                     "Array.from(document.querySelectorAll('#rows tr'))"
                     ".every(tr => tr.cells[1].textContent == 'done')", 30,
                     "the page never listed the task's three tables done")
        rows = browser.js("Array.from(document.querySelectorAll('#rows tr'))"
                          ".map(tr => Array.from(tr.cells).map(c => c.textContent))")
        assert sorted(r[0] for r in rows) == [
            "public.accounts", "public.events", "public.keyless_log"]
        assert all(r[1] == "done" and r[7] == "done" for r in rows), rows
        assert {r[0]: r[4] for r in rows}["public.events"] == "20000"
        assert browser.js("document.getElementById('phase').textContent") == "cdc"
        # the load's warning, from the process's own ring of log lines
        browser.wait("document.getElementById('logrows').textContent"
                     ".includes('depends on public.secrets')", 30,
                     "the load's warning is not on the page")

        # the lag chart gains samples while the stream reports
        first = browser.wait(f"+{CHART}.getAttribute('data-samples')", 30,
                             "the lag chart never had a sample")
        source_db.execute("INSERT INTO events SELECT g, 'x' FROM "
                          "generate_series(20001, 21000) g")
        wait_caught_up(source_db, target_db)
        browser.wait(f"+{CHART}.getAttribute('data-samples') >= {first + 3}", 30,
                     "the lag chart did not gain samples")
        assert re.fullmatch(r"([0-9.]+,[0-9.]+ ?)+", browser.js(
            f"{CHART}.querySelector('polyline').getAttribute('points')"))
        # a reload keeps them: the process, not the page, holds the hour
        before = samples(browser)
        browser.reload()
        browser.wait(f"+{CHART}.getAttribute('data-samples') >= {before}", 30,
                     "the chart lost its samples on a reload")
        browser.wait("document.querySelectorAll('#rows tr').length == 3", 30,
                     "the page never listed the tables again after a reload")
        # a guard or throttle in the status shows as its keys and values,
        # whatever they are
        assert browser.js("showExtra({guard: {action: 'warn', retained_wal_bytes: 5,"
                          " thresholds: {warn: 1}}, throttle: 'off'}),"
                          " document.getElementById('extra').innerText") == \
            "guard\naction\twarn\nretained_wal_bytes\t5\nthresholds\t{\"warn\":1}\n" \
            "throttle\nvalue\toff"
        browser.pump(2.5)  # one more poll, so its errors would be seen
        shot = browser.screenshot(tmp_path / "dashboard.png")
        print(f"dashboard screenshot: {shot}")

        assert password not in browser.js("document.documentElement.outerHTML")
        assert browser.errors == [], browser.errors
        assert browser.requests, "no request was recorded"
        for url in browser.requests:
            u = urllib.parse.urlsplit(url)
            assert (u.scheme, u.hostname, u.port) == ("http", "127.0.0.1", port) \
                or u.scheme == "data", url
    finally:
        browser.close()

    # /history is what the page drew from
    status, headers, body = get(port, "/history")
    assert status == 200 and headers["Content-Type"] == "application/json"
    h = json.loads(body)
    assert h["interval_s"] == 1 and len(h["lag"]) >= first + 3
    assert all(len(s) == 4 and s[0] <= h["now_ms"] for s in h["lag"])
    assert [s[0] for s in h["lag"]] == sorted(s[0] for s in h["lag"])
    assert any(l["level"] == "warning" and l["thread"] == "main" and
               "secret_view depends on public.secrets" in l["message"]
               for l in h["log"]), h["log"]
    assert password not in body and password not in get(port, "/status")[2]
    assert p.stop() == 0
