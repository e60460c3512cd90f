#!/usr/bin/python3
"""pgtide soak: a whole migration under random faults, for minutes.

Two throwaway PostgreSQL servers (tests/integration/conftest.PgServer, on
127.0.0.1), a dataset on the source (helpers.make_load_dataset plus the
writer's tables of faults.py), the application writing numbered
transactions throughout (test_faults.AppWriter, as a role cutover fences),
`pgtide migrate` through a TCP proxy to each server, and meanwhile, every
few seconds, a random fault:

  target crash     pg_ctl -m immediate on the target, back 0.5-2 s later
  source crash     the same on the source
  cut source       every pgtide connection to the source reset (TcpProxy),
  cut target       sometimes with the server unreachable for a second
  cut both
  kill -9 pgtide   SIGKILL to pgtide migrate (its process group), started
                   again 0.2-1 s later

during the start-up, the load and the stream. Then `pgtide cutover`
(revoke fence), held at one of its fault points while a random fault
strikes (or none), tried again (at most three times) until it hands over.
At the end: every transaction the writer saw commit on the target exactly
once, and every table equal on both sides.

It prints a summary: the faults by kind and phase, pgtide's restarts and
the exits it made by itself, each cutover attempt, the transactions
written, missing, doubled, and PASS or FAIL (exit 0 or 1). It stops by
itself: the stream phase ends at 80% of SOAK_MINUTES, and the whole run is
cut off SOAK_MINUTES + 6 minutes after it started.

Environment:
  PGTIDE_BIN        the binary (default build/release/pgtide)
  SOAK_MINUTES      length of the load and stream phases together (default 5)
  SOAK_SEED         the random seed (default: random, printed)
  SOAK_RATE         the writer's transactions a second (default 200)
  SOAK_ROWS         rows of the dataset's big table (default 100000 a minute)
  SOAK_FAULT_EVERY  "MIN,MAX" seconds between two faults (default 2,6)
  SOAK_LOGS         a directory to copy pgtide's and the servers' logs to
                    (default: bench/out/soak-STAMP.logs, on failure only)

Run from the project root: /usr/bin/python3 tests/soak/soak.py
(bench/soak.sh does).
"""

from __future__ import annotations

import collections
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from cdc_helpers import ServerDb  # noqa: E402
from conftest import PgServer, PgTide, assert_same_content  # noqa: E402
from faults import (TcpProxy, crash_and_restart,  # noqa: E402
                    create_writer_schema)
from helpers import make_load_dataset  # noqa: E402
from test_faults import (APP, CUTOVER_HOLDS, WRITER_TABLES,  # noqa: E402
                         AppWriter, make_app_role)

SLOT = "pgtide_default"
PHASES = ("start-up", "load", "stream", "cutover")
FAULTS = ("target crash", "source crash", "cut source", "cut target",
          "cut both", "kill -9 pgtide")
CUTOVER_FAULTS = FAULTS + ("kill -9 cutover", "none")
CUTOVER_TIMEOUT = 30
CUTOVER_ATTEMPTS = 3


class SoakTimeout(BaseException):
    """The hard bound on the whole run passed."""


def _on_alarm(signum, frame):
    raise SoakTimeout("the soak did not finish in time")


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v else default


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} soak: {msg}", flush=True)


def last_error(text):
    """The last `pgtide: error:` line of a stderr, or its last line."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("pgtide: error:")]
    return (errs or lines or ["(no output)"])[-1][:300]


class Migrator:
    """pgtide migrate, started again whenever it dies (killed by the soak,
    or on its own: those exits are recorded)."""

    def __init__(self, tide, args):
        self.tide, self.args = tide, args
        self.procs = []
        self.killed = 0
        self.exits = []   # (phase, exit code, last error): exits on its own
        self.cur = None

    def start(self):
        self.cur = self.tide.start("migrate", *self.args)
        self.procs.append(self.cur)
        return self.cur

    def kill9(self):
        try:
            os.killpg(self.cur.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.cur.wait(30)
        self.killed += 1

    def phase(self):
        """start-up, load or stream, from what the running process printed."""
        err = self.cur.read_stderr()
        if "streaming from slot" in err:
            return "stream"
        if re.search(r"copying \d+ tables|indexes and constraints", err):
            return "load"
        return "start-up"

    def exited(self):
        return self.cur.poll() is not None

    def restart_if_exited(self, phase, task_cut_over):
        """Starts migrate again if it exited on its own (not after a
        cutover ended the task); returns whether it had."""
        if not self.exited():
            return False
        rc = self.cur.returncode
        if rc == 0 and task_cut_over():
            return False
        self.exits.append((phase, rc, last_error(self.cur.read_stderr())))
        log(f"pgtide migrate exited on its own ({rc}) in the {phase}:"
            f" {self.exits[-1][2]}; starting it again")
        time.sleep(1.0)
        self.start()
        return True


class Soak:
    def __init__(self):
        self.minutes = env_float("SOAK_MINUTES", 5.0)
        self.seed = int(os.environ.get("SOAK_SEED") or random.randrange(1 << 30))
        self.rng = random.Random(self.seed)
        self.rate = env_float("SOAK_RATE", 200)
        self.rows = int(env_float("SOAK_ROWS", 100000 * self.minutes))
        lo, hi = (float(x) for x in
                  os.environ.get("SOAK_FAULT_EVERY", "2,6").split(","))
        self.fault_every = (lo, hi)
        binary = os.environ.get("PGTIDE_BIN") or str(ROOT / "build/release/pgtide")
        self.binary = str(Path(binary).resolve())
        self.faults = collections.Counter()   # (kind, phase) -> n
        self.cut_connections = 0
        self.cutovers = []   # one line per attempt
        self.findings = []   # what makes the run FAIL
        self.notes = []
        self.result = {}
        self.work = tempfile.mkdtemp(prefix="pgtide-soak-")
        os.chmod(self.work, 0o755)
        self.tide = PgTide(self.binary, Path(self.work) / "pgtide")
        self.source = self.target = None
        self.sp = self.tp = None
        self.writer = None
        self.mig = None
        self.cutover_phase = False
        self.started = time.monotonic()

    # ---- set-up ---------------------------------------------------------- #

    def setup(self):
        if not os.access(self.binary, os.X_OK):
            raise SystemExit(f"soak: no pgtide binary at {self.binary} (run make)")
        log(f"seed {self.seed}; {self.minutes:g} min; writer {self.rate:g}/s;"
            f" big table {self.rows} rows; a fault every"
            f" {self.fault_every[0]:g}-{self.fault_every[1]:g} s")
        self.source = PgServer("soak-src").start()
        self.target = PgServer("soak-tgt").start()
        self.src, self.tgt = ServerDb(self.source), ServerDb(self.target)
        log(f"servers: source :{self.source.port}, target :{self.target.port}"
            f" (PostgreSQL {self.source.version_num()})")
        make_load_dataset(self.src, big_rows=self.rows)
        create_writer_schema(self.src)
        make_app_role(self.src)
        self.sp = TcpProxy(self.source, "src")
        self.tp = TcpProxy(self.target, "tgt")
        self.writer = AppWriter(self.source, APP, rate=self.rate).start()
        self.writer.wait_for_more(int(self.rate))
        self.mig = Migrator(self.tide, [
            "--source", self.sp.uri(), "--target", self.tp.uri(),
            "--progress-interval", "2", "--jobs", "2",
            "--split-tables-larger-than", "2MB"])
        self.mig.start()
        log("pgtide migrate started")

    # ---- faults ---------------------------------------------------------- #

    def task_cut_over(self):
        try:
            return self.tgt.query_one(
                "SELECT phase FROM pgtide.task") == "cutover"
        except Exception:
            return False

    def inject(self, kind, phase):
        self.writer.mark(f"{kind} ({phase})")
        self.faults[(kind, phase)] += 1
        down = self.rng.choice([0.0, 0.0, 1.0])
        if kind == "target crash":
            crash_and_restart(self.target, self.rng.uniform(0.5, 2.0))
        elif kind == "source crash":
            crash_and_restart(self.source, self.rng.uniform(0.5, 2.0))
        elif kind == "cut source":
            self.cut_connections += self.sp.cut(down)
        elif kind == "cut target":
            self.cut_connections += self.tp.cut(down)
        elif kind == "cut both":
            self.cut_connections += self.sp.cut(down) + self.tp.cut(down)
        elif kind == "kill -9 pgtide":
            self.mig.kill9()
            time.sleep(self.rng.uniform(0.2, 1.0))
            self.mig.start()
        log(f"fault: {kind} in the {phase}")

    def fault_phases(self):
        """Random faults through start-up, load and stream until 80% of
        the time (and at least 20 s of stream)."""
        stream_end = self.started + self.minutes * 60 * 0.8
        streaming_since = None
        next_fault = time.monotonic() + self.rng.uniform(*self.fault_every)
        while True:
            phase = self.mig.phase()
            if self.mig.restart_if_exited(phase, self.task_cut_over):
                continue
            now = time.monotonic()
            if phase == "stream" and streaming_since is None:
                streaming_since = now
                log("migrate streams")
            if streaming_since is not None and now >= max(
                    stream_end, streaming_since + 20):
                return
            if streaming_since is None and now >= stream_end + 180:
                raise RuntimeError("migrate did not reach the stream within"
                                   " 3 minutes of the end of the fault"
                                   " phases")
            if len(self.mig.exits) > 30:
                self.findings.append("pgtide migrate exited on its own more"
                                     " than 30 times: gave up")
                raise RuntimeError("migrate keeps exiting")
            if now >= next_fault and now < stream_end:
                self.inject(self.rng.choice(FAULTS), phase)
                next_fault = time.monotonic() + self.rng.uniform(*self.fault_every)
            if self.writer.error is not None:
                raise RuntimeError(f"the writer failed: {self.writer.error!r}")
            time.sleep(0.2)

    # ---- cutover --------------------------------------------------------- #

    def wait_following(self, timeout=120):
        """Until migrate streams from its slot (cutover refuses otherwise);
        restarts a migrate that exited. False if the task ended meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.task_cut_over():
                return False
            self.mig.restart_if_exited("cutover", self.task_cut_over)
            try:
                if self.src.query_one(
                        "SELECT active FROM pg_replication_slots"
                        " WHERE slot_name = %s", (SLOT,)) is True:
                    return True
            except Exception:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"migrate did not stream from {SLOT} within"
                           f" {timeout} s")

    def app_can_write(self):
        return {t: self.src.query_one(
            "SELECT has_table_privilege(%s, %s, 'INSERT, UPDATE, DELETE')",
            (APP, t)) for t in WRITER_TABLES}

    def cutover_attempt(self, n, fault):
        point = None
        env = None
        if fault != "none":
            point = self.rng.choice(CUTOVER_HOLDS)
            env = {"PGTIDE_FAULT": f"{point}:sleep=1000"}
        c = self.tide.start("cutover", "--source", self.sp.uri(), "--target",
                            self.tp.uri(), "--fence", "revoke",
                            "--fence-role", APP, "--timeout",
                            str(CUTOVER_TIMEOUT), env=env)
        what = "no fault"
        if point:
            rx = re.compile(rf"fault point {re.escape(point)}: sleeping")
            deadline = time.monotonic() + 120
            while (c.poll() is None and not rx.search(c.read_stderr())
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            if rx.search(c.read_stderr()):
                what = f"{fault} at {point}"
                if fault == "kill -9 cutover":
                    self.writer.mark(f"kill -9 cutover at {point}")
                    self.faults[(fault, "cutover")] += 1
                    os.killpg(c.pid, signal.SIGKILL)
                    log(f"fault: kill -9 cutover at {point}")
                else:
                    self.inject(fault, "cutover")
            else:
                what = f"{fault} planned at {point}, not reached"
        # migrate must follow while cutover waits for it: restart it if it
        # dies on its own meanwhile
        deadline = time.monotonic() + CUTOVER_TIMEOUT * 8 + 60
        while c.poll() is None and time.monotonic() < deadline:
            self.mig.restart_if_exited("cutover", self.task_cut_over)
            time.sleep(0.2)
        if c.poll() is None:
            os.killpg(c.pid, signal.SIGKILL)
            self.findings.append(f"cutover attempt {n} did not end within"
                                 f" {CUTOVER_TIMEOUT * 8 + 60} s")
        rc = c.wait(30)
        out, err = c.read_stdout(), c.read_stderr()
        self.writer.mark(f"cutover {n} exited {rc}")
        writable = self.app_can_write()
        fenced = not any(writable.values())
        if rc == 0:
            ok = "handed over to the target" in out
            m = re.search(r"write-unavailability window: ([0-9.]+) s", out)
            line = (f"attempt {n} ({what}): exit 0, handed over, window"
                    f" {m.group(1) if m else '?'} s")
            if not ok:
                self.findings.append(f"cutover attempt {n} exited 0 without"
                                     f" its report")
            if not fenced:
                self.findings.append(f"cutover attempt {n} finished but the"
                                     f" source is not fenced: {writable}")
            self.cutovers.append(line)
            return "done"
        says_undone = "fence is undone" in err
        says_fenced = "still fenced" in err
        said = ("says the fence is undone" if says_undone and not says_fenced
                else "says the source is still fenced" if says_fenced
                and not says_undone else "says neither" if rc > 0
                else "killed")
        truth = "fenced" if fenced else ("unfenced" if all(writable.values())
                                         else f"partly fenced {writable}")
        self.cutovers.append(f"attempt {n} ({what}): exit {rc}, {said};"
                             f" the source is {truth}: {last_error(err)}")
        if rc > 0 and ((says_fenced and not fenced)
                       or (says_undone and fenced) or said == "says neither"):
            self.findings.append(f"cutover attempt {n} {said} but the source"
                                 f" is {truth}")
        if self.task_cut_over():
            # the stream stopped at the marker before cutover died: the
            # task is handed over, only cutover's report is missing
            self.cutovers[-1] += "; the task is cut over (migrate stopped at" \
                                 " the marker)"
            return "done"
        return "failed"

    def cutover_phase_run(self):
        self.cutover_phase = True
        outcome = "failed"
        for n in range(1, CUTOVER_ATTEMPTS + 1):
            if not self.wait_following():
                outcome = "done"
                break
            fault = self.rng.choice(CUTOVER_FAULTS) if n == 1 else "none"
            log(f"cutover attempt {n} ({fault})")
            outcome = self.cutover_attempt(n, fault)
            log(self.cutovers[-1])
            if outcome == "done":
                break
        self.result["cutover"] = outcome
        return outcome

    # ---- the end --------------------------------------------------------- #

    def finish(self, outcome):
        w = self.writer
        if outcome == "done":
            deadline = time.monotonic() + 90
            while not self.mig.exited() and time.monotonic() < deadline:
                time.sleep(0.2)
            rc = self.mig.cur.poll()
            if rc != 0:
                self.findings.append(f"pgtide migrate did not exit 0 after the"
                                     f" cutover (exit {rc})")
            w.stop()
        else:
            self.findings.append(f"no cutover attempt of {CUTOVER_ATTEMPTS}"
                                 f" handed over")
            if not all(self.app_can_write().values()):
                self.findings.append("the source was left fenced")
            w.stop()
            self.wait_caught_up()
            self.mig.cur.stop()
        self.check()

    def wait_caught_up(self, timeout=180):
        goal = self.src.query_one("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.mig.restart_if_exited("stream", self.task_cut_over)
            if self.src.query_one(
                    "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM"
                    " pg_replication_slots WHERE slot_name = %s",
                    (goal, SLOT)) is True:
                return
            time.sleep(0.3)
        self.findings.append(f"the target never caught up with {goal}")

    def check(self):
        w = self.writer
        want = set(range(w.first, w.next))
        src_ids = {r[0] for r in self.src.query(
            "SELECT id FROM w_keyed WHERE id > 0")}
        r = self.result
        r["written"] = len(want)
        r["source_missing"] = len(want - src_ids)
        r["source_extra"] = len(src_ids - want)
        for table, col in (("w_keyed", "id"), ("w_full", "seq")):
            have = dict(self.tgt.query(
                f"SELECT {col}, count(*) FROM {table} WHERE {col} > 0"
                f" GROUP BY {col}"))
            r[f"{table}_missing"] = len(want - set(have))
            r[f"{table}_doubled"] = sum(1 for n in have.values() if n > 1)
            r[f"{table}_extra"] = len(set(have) - want)
        r["missing"] = max(r["w_keyed_missing"], r["w_full_missing"])
        r["doubled"] = max(r["w_keyed_doubled"], r["w_full_doubled"])
        r["extra"] = max(r["w_keyed_extra"], r["w_full_extra"])
        if r["source_missing"] or r["source_extra"]:
            self.findings.append(
                f"the source does not hold what the writer committed"
                f" ({r['source_missing']} missing, {r['source_extra']}"
                f" unexpected): the harness is wrong")
        if r["missing"] or r["doubled"] or r["extra"]:
            self.findings.append(
                f"target: {r['missing']} committed transactions missing,"
                f" {r['doubled']} doubled, {r['extra']} never committed")
        try:
            assert_same_content(self.src, self.tgt)
            r["content"] = "every table equal"
        except AssertionError as e:
            text = str(e).splitlines()
            r["content"] = "tables differ"
            self.findings.append("tables differ: " + " | ".join(text[:12]))

    # ---- the summary ----------------------------------------------------- #

    def summary(self):
        r, w = self.result, self.writer
        kinds = list(FAULTS) + ["kill -9 cutover"]
        out = ["", "=" * 72,
               f"pgtide soak: {self.minutes:g} min of load and stream, seed"
               f" {self.seed}, {(time.monotonic() - self.started) / 60:.1f}"
               f" min in all",
               "", "faults injected:",
               f"  {'':16}" + "".join(f"{p:>10}" for p in PHASES)
               + f"{'total':>8}"]
        for k in kinds:
            row = [self.faults[(k, p)] for p in PHASES]
            if sum(row):
                out.append(f"  {k:16}" + "".join(f"{n:>10}" for n in row)
                           + f"{sum(row):>8}")
        total = [sum(self.faults[(k, p)] for k in kinds) for p in PHASES]
        out.append(f"  {'all':16}" + "".join(f"{n:>10}" for n in total)
                   + f"{sum(total):>8}")
        out.append(f"  (connections reset by the proxies: {self.cut_connections})")
        if self.mig:
            out += ["", f"pgtide migrate: started {len(self.mig.procs)} times,"
                        f" killed {self.mig.killed}, exited on its own"
                        f" {len(self.mig.exits)}"]
            for phase, rc, msg in self.mig.exits:
                out.append(f"  exit {rc} in the {phase}: {msg}")
        out += ["", "cutover:"] + [f"  {c}" for c in self.cutovers or ["not run"]]
        if w is not None:
            out += ["", f"writer: {w.committed} transactions committed"
                        f" (#{w.first}..#{w.next - 1}), {w.refused} refused by"
                        f" the fence, {w.reconnects} reconnects, COMMIT answer"
                        f" lost {len(w.in_doubt)} times"]
        if "written" in r:
            out.append(f"target: {r['missing']} missing, {r['doubled']}"
                       f" doubled, {r['extra']} never committed; "
                       f"{r['content']}")
        if self.mig and self.mig.exits:
            self.findings.append(
                f"pgtide migrate exited on its own {len(self.mig.exits)} times"
                f" (every fault here is one retrying can cure)")
        out.append("")
        for f in self.findings:
            out.append(f"  FAIL: {f}")
        for n in self.notes:
            out.append(f"  note: {n}")
        out.append(f"result: {'FAIL' if self.findings else 'PASS'}")
        out.append("=" * 72)
        print("\n".join(out), flush=True)
        return not self.findings

    def save_logs(self, force):
        dest = os.environ.get("SOAK_LOGS")
        if not dest:
            if not force:
                return
            dest = str(ROOT / "bench" / "out" /
                       f"soak-{time.strftime('%Y%m%d-%H%M%S')}.logs")
        os.makedirs(dest, exist_ok=True)
        for p in self.tide.workdir.glob("*"):
            if p.is_file():
                shutil.copy(p, dest)
        for s in (self.source, self.target):
            if s is not None and os.path.exists(s.logfile):
                shutil.copy(s.logfile, os.path.join(dest, f"{s.name}.log"))
        log(f"logs in {dest}")

    def teardown(self):
        if self.writer is not None:
            self.writer.abandon()
        for p in (self.sp, self.tp):
            if p is not None:
                p.close()
        self.tide.cleanup()

    def destroy(self):
        for s in (self.source, self.target):
            if s is not None:
                s.destroy()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    soak = Soak()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(soak.minutes * 60 + 360))
    ok = False
    try:
        soak.setup()
        soak.fault_phases()
        outcome = soak.cutover_phase_run()
        soak.finish(outcome)
    except (Exception, SoakTimeout, KeyboardInterrupt) as e:
        soak.findings.append(f"the soak stopped: {e!r}")
        traceback.print_exc()
    finally:
        signal.alarm(0)
        try:
            soak.teardown()
            ok = soak.summary()
            soak.save_logs(force=not ok)
        finally:
            soak.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
