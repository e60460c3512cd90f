"""pgtide migrate --http: /metrics in the Prometheus text format, /status as
pgtide status --json prints it, /healthz, /readyz and the dashboard, served
while the task loads and follows; and what the server refuses (other
methods, other paths, requests too large, clients that send nothing)."""
import http.client
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cdc_helpers import Workload, wait_caught_up
from conftest import _free_port, wait_for


# a table name with a quote and a backslash: label values escape both
SCHEMA = r'''
    CREATE TABLE items (id int PRIMARY KEY, note text);
    CREATE TABLE "odd ""na\me""" (id int PRIMARY KEY, v int);
    INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 1000) g;
    INSERT INTO "odd ""na\me""" SELECT g, g FROM generate_series(1, 200) g;
'''


def get(port, path, method="GET", body=None):
    """(status, headers, body text) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


# a sample line: name, optional {labels}, value (no timestamps are written)
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_prometheus(text):
    """A strict reading of the text exposition format 0.0.4: every family
    opens with HELP then TYPE, its samples follow at once, no name is seen
    twice, labels are well quoted and escaped, values are floats. Returns
    {(name, frozenset(labels.items())): value} and {name: type}."""
    samples, types, seen = {}, {}, set()
    family = None
    assert text.endswith("\n"), "the body must end with a newline"
    lines = text.split("\n")[:-1]
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r'^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$', line)
        assert m, f"line {i + 1}: expected # HELP, got {line!r}"
        family = m.group(1)
        assert family not in seen, f"family {family} twice"
        seen.add(family)
        t = re.match(r'^# TYPE (\S+) (counter|gauge)$', lines[i + 1])
        assert t and t.group(1) == family, f"line {i + 2}: bad TYPE {lines[i + 1]!r}"
        types[family] = t.group(2)
        if t.group(2) == "counter":
            assert family.endswith("_total"), f"counter {family} without _total"
        else:
            assert not family.endswith("_total"), f"gauge {family} ends in _total"
        assert family.startswith("pgtide_")
        i += 2
        while i < len(lines) and not lines[i].startswith("#"):
            s = SAMPLE.match(lines[i])
            assert s, f"line {i + 1}: bad sample {lines[i]!r}"
            assert s.group(1) == family, f"line {i + 1}: sample outside its family"
            labels = {}
            rest = s.group(3) or ""
            while rest:
                lm = LABEL.match(rest)
                assert lm, f"line {i + 1}: bad labels {s.group(3)!r}"
                value = re.sub(r'\\(.)', lambda e: {"n": "\n"}.get(e.group(1), e.group(1)),
                               lm.group(2))
                assert lm.group(1) not in labels
                labels[lm.group(1)] = value
                rest = rest[lm.end():]
            key = (family, frozenset(labels.items()))
            assert key not in samples, f"line {i + 1}: sample twice"
            samples[key] = float(s.group(4))
            i += 1
    return samples, types


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def scrape(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_prometheus(body)


def test_http_surface_of_a_running_migrate(pgtide, source_db, target_db):
    source_db.execute(SCHEMA)
    port = _free_port()
    # the process waits before it creates the task's state, and the first
    # chunk waits, so the surface is seen before the task has a state and
    # while the load runs
    p = pgtide.start("migrate", "--source", source_db.uri, "--target",
                     target_db.uri, "--progress-interval", "1", "--jobs", "1",
                     "--http", str(port),
                     env={"PGTIDE_FAULT": "task.checked:sleep=3000,"
                                          "copy.chunk.before_commit@1:sleep=4000"})
    p.wait_for_output(rf"serving metrics, status and a dashboard on "
                      rf"http://127\.0\.0\.1:{port}/", timeout=60)

    # the task is new, not missing: its state comes once its checks pass
    status, _, body = get(port, "/status")
    assert status == 200, body
    new = json.loads(body)
    assert new["phase"] == "new" and new["tables"] == [], new
    assert new["process"] is not None, new
    assert get(port, "/healthz")[:3:2] == (200, "ok\n")
    status, _, body = get(port, "/readyz")
    assert status == 503 and body.startswith("not ready: not following yet"), body
    samples, types = scrape(port)
    assert metric(samples, "pgtide_build_info", version="0.1.0",
                  command="migrate") == 1
    assert metric(samples, "pgtide_cdc_following", task="default") == 0

    # refused: other methods, other paths
    status, headers, _ = get(port, "/metrics", method="POST", body="x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert get(port, "/status", method="DELETE")[0] == 405
    assert get(port, "/nowhere")[0] == 404
    assert get(port, "/metrics/")[0] == 404

    p.wait_for_output(r"streaming from slot", timeout=120)
    wait_caught_up(source_db, target_db)
    wait_for(lambda: get(port, "/readyz")[0] == 200, 60, 0.2,
             "/readyz never said ready once the stream caught up")
    assert get(port, "/readyz")[2].startswith("ready: following, lag ")

    samples, types = scrape(port)
    for table, rows in (("public.items", 1000), ('public.odd "na\\me"', 200)):
        assert metric(samples, "pgtide_table_rows_copied_total",
                      task="default", table=table) == rows
        assert metric(samples, "pgtide_table_chunks_done", task="default",
                      table=table) == metric(samples, "pgtide_table_chunks_planned",
                                             task="default", table=table)
        assert metric(samples, "pgtide_table_bytes_copied_total",
                      task="default", table=table) > 0
    assert metric(samples, "pgtide_phase", task="default", phase="cdc") == 1
    assert metric(samples, "pgtide_phase", task="default", phase="load") == 0
    assert metric(samples, "pgtide_postdata_steps_done", task="default") == \
        metric(samples, "pgtide_postdata_steps_planned", task="default") > 0
    assert metric(samples, "pgtide_cdc_following", task="default") == 1
    assert metric(samples, "pgtide_slot_retained_wal_bytes", task="default",
                  slot="pgtide_default") >= 0
    assert types["pgtide_cdc_changes_applied_total"] == "counter"
    assert types["pgtide_cdc_lag_seconds"] == "gauge"
    assert types["pgtide_cdc_apply_rate_changes_per_second"] == "gauge"
    assert metric(samples, "pgtide_cdc_apply_rate_changes_per_second",
                  task="default") >= 0

    # the stream's counters grow with the source's changes, and say what
    # status says
    source_db.execute("""
        INSERT INTO items SELECT g, 'new' FROM generate_series(1001, 1100) g;
        UPDATE items SET note = 'changed' WHERE id <= 50;
    """)
    wait_caught_up(source_db, target_db)

    def counters_agree():
        samples, _ = scrape(port)
        changes = metric(samples, "pgtide_cdc_changes_applied_total", task="default")
        txns = metric(samples, "pgtide_cdc_transactions_applied_total", task="default")
        st = json.loads(pgtide.run("status", "--target", target_db.uri,
                                   "--json").stdout)
        return changes == 150 and txns >= 1 and st["cdc_changes"] == changes \
            and st["cdc_txns"] == txns
    wait_for(counters_agree, 60, 0.5,
             "pgtide_cdc_changes_applied_total never reached 150, as status says")

    # /status is pgtide status --json's document
    status, headers, body = get(port, "/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    served = json.loads(body)
    printed = json.loads(pgtide.run("status", "--source", source_db.uri,
                                    "--target", target_db.uri, "--json").stdout)
    assert served.keys() == printed.keys() == new.keys()
    assert served["task"] == "default" and served["phase"] == "cdc"
    assert [t["table"] for t in served["tables"]] == \
        [t["table"] for t in printed["tables"]]
    assert served["slot"] is not None and printed["slot"] is not None

    # the dashboard: one page, nothing fetched from elsewhere
    status, headers, page = get(port, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert 'get("/status")' in page and 'get("/history")' in page
    assert "http://" not in page and "https://" not in page and "//" + "cdn" not in page
    status, _, body = get(port, "/", method="HEAD")
    assert status == 200 and body == ""

    # a client that connects and sends nothing, and one that stops halfway
    # through its headers, do not hold the server up
    idle = socket.create_connection(("127.0.0.1", port), timeout=30)
    half = socket.create_connection(("127.0.0.1", port), timeout=30)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    try:
        assert get(port, "/healthz")[0] == 200
        assert scrape(port)[0]
    finally:
        idle.close()
        half.close()

    # a request larger than the server reads is refused, not served
    big = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                    b"a" * 65536 + b"\r\n\r\n")
        answer = b""
        while True:
            try:
                chunk = big.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        first = answer.split(b"\r\n", 1)[0].decode()
        assert re.match(r"HTTP/1\.1 (413|414|431) ", first), first
    finally:
        big.close()
    assert get(port, "/healthz")[0] == 200

    assert p.stop() == 0
    # the port is given back with the process (its closed connections may
    # linger in TIME_WAIT, which SO_REUSEADDR allows)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)


def test_http_address_refused(pgtide, source_db, target_db):
    """A listen address that is not [ADDR:]PORT is refused as the options
    are read; a port in use stops the command before it changes anything;
    both with exit code 2."""
    source_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    r = pgtide.run("migrate", "--source", source_db.uri, "--target",
                   target_db.uri, "--http", "localhost:http")
    assert r.returncode == 2, r.stderr
    assert 'option --http: expected [ADDR:]PORT' in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = pgtide.run("copy", "--source", source_db.uri, "--target",
                       target_db.uri, "--http", f"127.0.0.1:{port}")
    assert r.returncode == 2, r.stderr
    assert f"could not listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert target_db.query_one(
        "SELECT count(*) FROM pg_tables WHERE tablename = 't'") == 0


def raw_exchange(port, data, timeout=30):
    """Sends data on a new connection and reads until the server closes it
    (or timeout): (first line of the answer or "", connection refused or
    reset before any answer)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionRefusedError:
        return "", True
    answer = b""
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:  # reset, or closed before the request was sent
        if not answer:
            return "", True
    finally:
        s.close()
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), False


class Inserts(Workload):
    """Inserts into items, one row a transaction, until stopped."""

    def step(self, conn):
        conn.execute("INSERT INTO items (id, note) VALUES "
                     "(10000 + %s, 'w')", (self.count,))


def test_http_server_under_bad_input(pgtide, source_db, target_db):
    """Garbage, bad request lines, huge headers and lines, a client that
    sends a byte a second, and 200 connections at once: each is answered
    with an error status or closed, the server stays up, and the task goes
    on streaming rows throughout."""
    source_db.execute(SCHEMA)
    port = _free_port()
    p = pgtide.start("migrate", "--source", source_db.uri, "--target",
                     target_db.uri, "--progress-interval", "1",
                     "--http", str(port))
    p.wait_for_output(r"streaming from slot", timeout=120)

    # a request sent a byte a second: served once it is whole, and it holds
    # nobody else up meanwhile
    slow_result = {}

    def slow_client():
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        try:
            for b in b"GET / HTTP/1.0\r\n\r\n":
                s.sendall(bytes([b]))
                time.sleep(1)
            slow_result["answer"] = s.recv(4096)
        finally:
            s.close()
    slow = threading.Thread(target=slow_client, daemon=True)

    with Inserts(source_db) as writer, ThreadPoolExecutor(8) as side:
        slow.start()
        before = writer.count
        # not HTTP at all, and request lines HTTP does not allow: closed
        # unanswered (bytes without a line end wait for the 10 s timeout:
        # on threads of their own meanwhile), or answered with the error's
        # status
        closed, garbage = {""}, []
        for data, answers in (
                (b"\x00\xff\x13\x37garbage\r\n\r\n", closed),
                (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", closed),  # TLS
                (b"GET\r\n\r\n", closed),
                (b"\r\n\r\n\r\n", closed),
                (b"GET /healthz HTTP/9.9\r\n\r\n",
                 {"HTTP/1.1 505 HTTP Version Not Supported"}),
                (b"GET /healthz HTTP/1.1 trailing\r\nHost: x\r\n\r\n",
                 {"HTTP/1.1 400 Bad Request"}),
                (b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                 {"HTTP/1.1 404 Not Found"})):
            garbage.append((data, answers, side.submit(raw_exchange, port, data)))
        # a request line and headers past the 16 kB the server reads
        for data in (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                     b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100)
                              for i in range(1000)) + b"\r\n"):
            first, refused = raw_exchange(port, data)
            assert refused or re.match(r"HTTP/1\.1 (413|414|431) ", first), first
        assert get(port, "/healthz")[0] == 200

        # 200 connections at once, each asking for /healthz: the server
        # holds 64; the rest wait in the queue or are closed unanswered
        def one(_):
            return raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                b"Connection: close\r\n\r\n", timeout=60)
        with ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
        served = sum(1 for first, _ in results if first == "HTTP/1.1 200 OK")
        unanswered = sum(1 for first, refused in results if refused or first == "")
        assert served + unanswered == 200, results
        assert served >= 1, results
        print(f"200 at once: {served} served, {unanswered} closed unanswered")

        # 200 connections that stay silent, held at once: the server keeps
        # at most 64 of them; once they go, it answers again
        held = []
        try:
            for _ in range(200):
                try:
                    held.append(socket.create_connection(("127.0.0.1", port),
                                                         timeout=2))
                except OSError:
                    break
            time.sleep(1)
            kept = 0
            for s in held:
                s.setblocking(False)
                try:
                    kept += s.recv(1) != b""
                except BlockingIOError:
                    kept += 1
                except ConnectionResetError:
                    pass
            # what the server holds, plus what waits in its listen queue
            print(f"200 silent: {len(held)} connected, {kept} kept open")
            assert kept <= 64 + 65, kept
        finally:
            for s in held:
                s.close()
        wait_for(lambda: get(port, "/healthz")[0] == 200, 30, 0.5,
                 "/healthz did not answer after the silent connections")

        for data, answers, f in garbage:
            first, refused = f.result()
            assert not refused and first in answers, (data, first)
        slow.join(60)
        assert slow_result["answer"].startswith(b"HTTP/1.0 200 OK") or \
            slow_result["answer"].startswith(b"HTTP/1.1 200 OK"), slow_result
        # rows kept arriving on the target meanwhile
        wait_for(lambda: target_db.query_one(
            "SELECT count(*) FROM items WHERE id >= 10000") > before, 60, 0.5,
            "no row of the writer reached the target")
    wait_caught_up(source_db, target_db)
    assert target_db.query_one("SELECT count(*) FROM items") == \
        source_db.query_one("SELECT count(*) FROM items") == 1000 + writer.count
    assert p.poll() is None
    assert get(port, "/healthz")[:3:2] == (200, "ok\n")
    samples, _ = scrape(port)
    assert metric(samples, "pgtide_cdc_following", task="default") == 1
    assert p.stop() == 0
