"""Headless Chromium for the dashboard's tests, driven over the DevTools
protocol (CDP) with Debian's python3-websocket: open a page, read it with
JavaScript, and record what it asked the network for and what it said on
its console."""
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request

import websocket


def chromium_binary():
    """Debian's chromium, or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page. Every request the page makes
    (Network.requestWillBeSent) is in self.requests, every console error,
    uncaught exception and browser log error in self.errors."""

    def __init__(self, workdir, width=1200, height=1400):
        self.workdir = str(workdir)
        self.profile = os.path.join(self.workdir, "chromium-profile")
        os.makedirs(self.profile, exist_ok=True)
        args = [chromium_binary(), "--headless=new", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check",
                # nothing in the background that would reach the network
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions",
                "--disable-dev-shm-usage", f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.log = open(os.path.join(self.workdir, "chromium.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        self.requests, self.errors, self._id = [], [], 0
        port = self._devtools_port()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                            timeout=5) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "chromium opened no page"
            time.sleep(0.2)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                              timeout=30, suppress_origin=True)
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _devtools_port(self):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}")
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except FileNotFoundError:
                pass
            time.sleep(0.1)
        raise AssertionError("chromium never wrote its DevTools port")

    def _event(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(p["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            self.errors.append("console: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append("exception: " + d.get("exception", {}).get(
                "description", d.get("text", "")))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.errors.append(f"log ({p['entry']['source']}): {p['entry']['text']}")

    def call(self, method, **params):
        """Sends one command and returns its result, recording the events
        that arrive meanwhile."""
        self._id += 1
        my = self._id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                assert "error" not in msg, f"{method}: {msg['error']}"
                return msg.get("result", {})
            self._event(msg)

    def pump(self, seconds):
        """Records events for a while without sending anything."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._event(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(30)

    def open(self, url):
        self.call("Page.navigate", url=url)

    def reload(self):
        self.call("Page.reload", ignoreCache=True)

    def js(self, expression, fail=True):
        """The value of a JavaScript expression in the page (None when it
        throws and not fail: a page still loading)."""
        r = self.call("Runtime.evaluate", expression=expression,
                      returnByValue=True)
        if "exceptionDetails" in r:
            assert not fail, r["exceptionDetails"]
            return None
        return r["result"].get("value")

    def wait(self, expression, timeout, what):
        """Waits until the expression is truthy in the page; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.js(expression, fail=False)
            if v:
                return v
            assert time.monotonic() < deadline, f"timed out: {what}"
            self.pump(0.3)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.log.close()
