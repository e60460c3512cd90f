#!/usr/bin/python3
"""Record pgoutput messages from a real server as unit-test fixtures.

Starts a throwaway PostgreSQL server (initdb in a temp dir, 127.0.0.1, a free
port; as the system user `postgres` when run as root), runs a workload that
makes pgoutput send every message kind, and reads the messages back with
pg_logical_slot_peek_binary_changes() three times:

  v1  proto_version 1
  v2  proto_version 2, streaming on          (big transactions are streamed)
  v3  proto_version 3, streaming on, two_phase on, binary on   (own slot)

For each message this script keeps, it writes

  NAME.bin     the raw message bytes (what stream.c hands to pgoutput_decode)
  NAME.expect  the session options, the enclosing stream block if any, and a
               rendering of the fields, decoded here independently of the C
               decoder so that each checks the other (see render() for the
               format test_pgoutput.c reproduces)

Only the first message of each shape is kept (a shape is the kind plus what
changes how it is decoded: stream block, old tuple kind, value kinds, flags),
and v2/v3 keep only shapes v1 did not already cover, so the set stays small.

Usage: /usr/bin/python3 tests/tools/record_pgoutput.py [--bindir DIR] [--out DIR]
The server and its files are removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import string
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "unit" / "cdc" / "fixtures" / "pgoutput"
DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
IS_ROOT = os.geteuid() == 0

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "logical",
    "logical_decoding_work_mem": "'64kB'",
    "max_prepared_transactions": "10",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "fsync": "off",
    "full_page_writes": "off",
    "timezone": "'UTC'",
    "lc_messages": "'C'",
}

KIND_NAMES = {
    "B": "Begin",
    "C": "Commit",
    "O": "Origin",
    "R": "Relation",
    "Y": "Type",
    "I": "Insert",
    "U": "Update",
    "D": "Delete",
    "T": "Truncate",
    "M": "Message",
    "S": "Stream Start",
    "E": "Stream Stop",
    "c": "Stream Commit",
    "A": "Stream Abort",
    "b": "Begin Prepare",
    "P": "Prepare",
    "K": "Commit Prepared",
    "r": "Rollback Prepared",
    "p": "Stream Prepare",
}
# Messages that carry an xid after the type byte inside a stream block.
STREAM_XID_KINDS = set("RYIUDTM")
# Values longer than this are rendered by length and FNV-1a hash.
INLINE_MAX = 64


# --------------------------------------------------------------------------
# An independent decoder and renderer (the C test renders the same text).


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated at byte {self.pos}")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> bytes:
        end = self.data.index(b"\0", self.pos)
        s = self.data[self.pos : end]
        self.pos = end + 1
        return s


def lsn(v: int) -> str:
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def quote(b: bytes) -> str:
    out = []
    for c in b:
        if c == 0x22:
            out.append('\\"')
        elif c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c <= 0x7E:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    return '"' + "".join(out) + '"'


def fnv1a32(b: bytes) -> int:
    h = 0x811C9DC5
    for c in b:
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def blob(b: bytes) -> str:
    if len(b) <= INLINE_MAX:
        return f"{len(b)} {quote(b)}"
    return f"{len(b)} fnv1a32={fnv1a32(b):08x}"


def nspname(b: bytes) -> bytes:
    return b if b else b"pg_catalog"


def tuple_lines(r: Reader, label: str, shape: list) -> list[str]:
    n = r.u16()
    lines = [f"{label} {n}"]
    for _ in range(n):
        k = chr(r.u8())
        shape.append(k)
        if k in "nu":
            lines.append(f"  {k}")
        elif k in "tb":
            ln = r.i32()
            lines.append(f"  {k} {blob(r.take(ln))}")
        else:
            raise ValueError(f"unknown value kind {k!r}")
    return lines


class Session:
    """Decodes one session's messages in order, tracking stream blocks."""

    def __init__(self, parallel: bool = False):
        self.stream_xid = None
        self.parallel = parallel

    def decode(self, data: bytes):
        """Returns (lines, shape, stream_xid before the message)."""
        r = Reader(data)
        t = chr(r.u8())
        name = KIND_NAMES[t]
        before = self.stream_xid
        xid = 0
        if t in STREAM_XID_KINDS and self.stream_xid is not None:
            xid = r.u32()
        shape = [t, before is not None]
        body: list[str] = []
        if t == "B":
            final, ts, xid = r.u64(), r.i64(), r.u32()
            body = [f"final_lsn {lsn(final)}", f"commit_time_us {ts}"]
        elif t in "Cc":
            if t == "c":
                xid = r.u32()
            flags, commit, end, ts = r.u8(), r.u64(), r.u64(), r.i64()
            body = [
                f"flags {flags}",
                f"commit_lsn {lsn(commit)}",
                f"end_lsn {lsn(end)}",
                f"commit_time_us {ts}",
            ]
        elif t == "O":
            olsn, oname = r.u64(), r.string()
            body = [f"origin_lsn {lsn(olsn)}", f"name {quote(oname)}"]
        elif t == "R":
            relid, nsp, rel, ident, n = r.u32(), r.string(), r.string(), r.u8(), r.u16()
            body = [
                f"relid {relid}",
                f"nspname {quote(nspname(nsp))}",
                f"relname {quote(rel)}",
                f"replica_identity {chr(ident)}",
                f"ncols {n}",
            ]
            shape.append(chr(ident))
            for _ in range(n):
                flags, cname, oid, typmod = r.u8(), r.string(), r.u32(), r.i32()
                key = "key" if flags & 1 else "-"
                body.append(f"column {key} {quote(cname)} {oid} {typmod}")
        elif t == "Y":
            oid, nsp, tname = r.u32(), r.string(), r.string()
            body = [
                f"type_oid {oid}",
                f"nspname {quote(nspname(nsp))}",
                f"typname {quote(tname)}",
            ]
        elif t in "IUD":
            body = [f"relid {r.u32()}"]
            marker = chr(r.u8())
            if t == "I":
                assert marker == "N"
                body += tuple_lines(r, "new_tuple", shape)
            elif t == "U":
                if marker in "KO":
                    body.append(f"old_kind {marker}")
                    shape.append(marker)
                    body += tuple_lines(r, "old_tuple", shape)
                    marker = chr(r.u8())
                else:
                    body.append("old_kind none")
                assert marker == "N"
                body += tuple_lines(r, "new_tuple", shape)
            else:
                assert marker in "KO"
                shape.append(marker)
                body.append(f"old_kind {marker}")
                body += tuple_lines(r, "old_tuple", shape)
        elif t == "T":
            n, opts = r.i32(), r.u8()
            shape.append(opts)
            body = [f"options {opts}", f"nrelids {n}"]
            body += [f"relid {r.u32()}" for _ in range(n)]
        elif t == "M":
            flags, mlsn, prefix = r.u8(), r.u64(), r.string()
            content = r.take(r.i32())
            shape.append(flags)
            body = [
                f"flags {flags}",
                f"lsn {lsn(mlsn)}",
                f"prefix {quote(prefix)}",
                f"content {blob(content)}",
            ]
        elif t == "S":
            xid, first = r.u32(), r.u8()
            shape.append(first)
            body = [f"first_segment {first}"]
            self.stream_xid = xid
        elif t == "E":
            self.stream_xid = None
        elif t == "A":
            xid, sub = r.u32(), r.u32()
            shape.append(xid != sub)
            body = [f"subxid {sub}", f"has_abort_info {int(self.parallel)}"]
            if self.parallel:
                body += [f"abort_lsn {lsn(r.u64())}", f"abort_time_us {r.i64()}"]
        elif t in "bPp":
            flags = 0 if t == "b" else r.u8()
            plsn, end, ts, xid, gid = r.u64(), r.u64(), r.i64(), r.u32(), r.string()
            body = [
                f"flags {flags}",
                f"prepare_lsn {lsn(plsn)}",
                f"end_lsn {lsn(end)}",
                f"prepare_time_us {ts}",
                f"gid {quote(gid)}",
            ]
        elif t == "K":
            flags, commit, end, ts, xid, gid = (
                r.u8(), r.u64(), r.u64(), r.i64(), r.u32(), r.string())
            body = [
                f"flags {flags}",
                f"commit_lsn {lsn(commit)}",
                f"end_lsn {lsn(end)}",
                f"commit_time_us {ts}",
                f"gid {quote(gid)}",
            ]
        elif t == "r":
            flags, pend, rend, pts, rts, xid, gid = (
                r.u8(), r.u64(), r.u64(), r.i64(), r.i64(), r.u32(), r.string())
            body = [
                f"flags {flags}",
                f"prepare_end_lsn {lsn(pend)}",
                f"rollback_end_lsn {lsn(rend)}",
                f"prepare_time_us {pts}",
                f"rollback_time_us {rts}",
                f"gid {quote(gid)}",
            ]
        if r.pos != len(data):
            raise ValueError(f"{len(data) - r.pos} trailing bytes after {name}")
        lines = [f"kind {name}", f"xid {xid}"] + body
        return lines, self.shape(t, before, xid, shape[2:]), before

    @staticmethod
    def shape(t: str, stream_xid, xid: int, details: list) -> tuple:
        """What makes a message worth its own fixture: its kind, whether it
        is in a stream block (and made by a subtransaction), and the details
        that change how it is decoded."""
        in_stream = stream_xid is not None
        sub = in_stream and t in STREAM_XID_KINDS and xid != stream_xid
        if t in "IUD":
            old = next((d for d in details if d in ("K", "O")), None)
            # binary values are decoded alike everywhere: one Insert shows them
            binary = t == "I" and not in_stream and "b" in details
            details = [old, "u" in details, binary]
        return (t, in_stream, sub, *details)


# --------------------------------------------------------------------------
# The throwaway server.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd if IS_ROOT else cmd


class Server:
    def __init__(self, bindir: str):
        self.bindir = bindir
        self.tmp = tempfile.mkdtemp(prefix="pgtide-record-")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.started = False
        if IS_ROOT:
            shutil.chown(self.tmp, "postgres", "postgres")

    def start(self):
        subprocess.run(
            as_server_user([f"{self.bindir}/initdb", "-D", self.data, "-U",
                            "postgres", "--auth=trust", "-E", "UTF8",
                            "--locale=C"]),
            check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            for k, v in SETTINGS.items():
                f.write(f"{k} = {v}\n")
            f.write(f"port = {self.port}\n")
            f.write(f"unix_socket_directories = '{self.tmp}'\n")
        subprocess.run(
            as_server_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-l",
                            os.path.join(self.tmp, "log"), "-w", "start"]),
            check=True, stdout=subprocess.DEVNULL)
        self.started = True

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port,
                               user="postgres", dbname="postgres",
                               autocommit=True)

    def stop(self):
        if self.started:
            subprocess.run(
                as_server_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-m",
                                "immediate", "-w", "stop"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# The workload.

SETUP = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    """CREATE TABLE items (id int PRIMARY KEY, name varchar(20), mood mood,
           price numeric(10,2), data bytea, note text)""",
    "CREATE TABLE full_ident (id int, val text)",
    "ALTER TABLE full_ident REPLICA IDENTITY FULL",
    "CREATE TABLE docs (id int PRIMARY KEY, body text, title text)",
    "ALTER TABLE docs ALTER body SET STORAGE EXTERNAL",
    "CREATE TABLE parent (id serial PRIMARY KEY)",
    "CREATE TABLE child (id int, parent_id int REFERENCES parent)",
    "CREATE TABLE big (id int PRIMARY KEY, mood mood, payload text)",
    "CREATE PUBLICATION pub FOR ALL TABLES",
    "SELECT pg_replication_origin_create('pgtide_origin')",
]


def big_rows(first: int, n: int) -> str:
    return (f"INSERT INTO big SELECT g, 'ok', repeat('x', 100) || g "
            f"FROM generate_series({first}, {first + n - 1}) g")


def workload(conn: psycopg.Connection):
    def txn(*stmts):
        conn.execute("BEGIN")
        for s in stmts:
            conn.execute(s)
        conn.execute("COMMIT")

    txn("""INSERT INTO items VALUES (1, 'it''s "q" \\ é', 'happy', 12.50,
           '\\x00ff10', NULL)""")
    txn("UPDATE items SET note = 'plain update' WHERE id = 1")
    txn("UPDATE items SET id = 2 WHERE id = 1")  # old key 'K'
    txn("INSERT INTO full_ident VALUES (1, 'a'), (2, NULL)")
    txn("UPDATE full_ident SET val = 'b' WHERE id = 1")  # old tuple 'O'
    txn("DELETE FROM full_ident WHERE id = 2")
    txn("DELETE FROM items WHERE id = 2")
    txn("UPDATE docs SET title = 'retitled' WHERE id = 1")  # 'u' body
    txn("INSERT INTO parent DEFAULT VALUES",
        "INSERT INTO child VALUES (1, 1)")
    txn("TRUNCATE parent RESTART IDENTITY CASCADE")
    txn("TRUNCATE full_ident")
    txn("SELECT pg_logical_emit_message(true, 'pgtide', 'in a transaction')",
        "INSERT INTO items VALUES (3, 'with message', NULL, NULL, NULL, NULL)")
    conn.execute("SELECT pg_logical_emit_message(false, 'pgtide', "
                 "'\\x00010203'::bytea)")
    # A transaction replayed from another node: Begin, then Origin.
    conn.execute("SELECT pg_replication_origin_session_setup('pgtide_origin')")
    conn.execute("BEGIN")
    conn.execute("SELECT pg_replication_origin_xact_setup('0/ABCDEF0', "
                 "'2024-01-02 03:04:05+00')")
    conn.execute("INSERT INTO items VALUES (4, 'from origin', 'sad', 1, NULL, "
                 "NULL)")
    conn.execute("COMMIT")
    conn.execute("SELECT pg_replication_origin_session_reset()")
    # Streamed: big, committed.
    txn(big_rows(1, 600),
        "SELECT pg_logical_emit_message(true, 'pgtide', 'streamed')",
        big_rows(601, 600))
    # Streamed: a rolled-back subtransaction among streamed changes.
    txn(big_rows(10001, 300), "SAVEPOINT s1", big_rows(20001, 900),
        "ROLLBACK TO SAVEPOINT s1", big_rows(30001, 5))
    # Streamed and aborted, with an origin (Origin inside the stream block).
    conn.execute("SELECT pg_replication_origin_session_setup('pgtide_origin')")
    conn.execute("BEGIN")
    conn.execute(big_rows(40001, 1200))
    conn.execute("ROLLBACK")
    conn.execute("SELECT pg_replication_origin_session_reset()")
    # Two-phase commit.
    conn.execute("BEGIN")
    conn.execute("INSERT INTO items VALUES (5, 'prepared', 'ok', 5, NULL, NULL)")
    conn.execute("PREPARE TRANSACTION 'pgtide-gid-1'")
    conn.execute("COMMIT PREPARED 'pgtide-gid-1'")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO items VALUES (6, 'rolled back', 'ok', 6, NULL, "
                 "NULL)")
    conn.execute("PREPARE TRANSACTION 'pgtide-gid-2'")
    conn.execute("ROLLBACK PREPARED 'pgtide-gid-2'")
    conn.execute("BEGIN")
    conn.execute(big_rows(50001, 1200))
    conn.execute("PREPARE TRANSACTION 'pgtide-gid-3'")
    conn.execute("COMMIT PREPARED 'pgtide-gid-3'")


# --------------------------------------------------------------------------
# Recording.

PASSES = [
    # name, slot, options, session options for the .expect header
    ("v1", "pgo_slot", ["proto_version", "1"],
     {"proto_version": 1, "streaming": "off", "two_phase": "off"}),
    ("v2", "pgo_slot", ["proto_version", "2", "streaming", "on"],
     {"proto_version": 2, "streaming": "on", "two_phase": "off"}),
    ("v3", "pgo_slot_2pc", ["proto_version", "3", "streaming", "on",
                            "two_phase", "on", "binary", "true"],
     {"proto_version": 3, "streaming": "on", "two_phase": "on"}),
]


def slug(shape: tuple) -> str:
    """A file name for a shape: "update-old-key", "insert-in-stream-subxact"."""
    t, in_stream, sub, *d = shape
    name = KIND_NAMES[t].lower().replace(" ", "-")
    if t in "IUD":
        old, unchanged, binary = d
        name += {"K": "-old-key", "O": "-old-tuple"}.get(old, "")
        name += "-toast" if unchanged else ""
        name += "-binary" if binary else ""
    elif t == "R" and d[0] != "d":
        name += f"-identity-{d[0]}"
    elif t == "T" and d[0]:
        name += "-cascade-restart" if d[0] == 3 else f"-options-{d[0]}"
    elif t == "M":
        name += "-transactional" if d[0] & 1 else "-nontransactional"
    elif t == "S":
        name += "-first" if d[0] else "-next"
    elif t == "A":
        name += "-subxact" if d[0] else "-toplevel"
    if in_stream and t != "E":
        name += "-in-stream"
    if sub:
        name += "-subxact"
    return name


def record(conn: psycopg.Connection, out: Path, version: str):
    seen: set = set()
    count = 0
    for name, slot, opts, header in PASSES:
        args = ["publication_names", "pub", "messages", "true"] + opts
        placeholders = ", ".join(["%s"] * len(args))
        rows = conn.execute(
            f"SELECT lsn, xid, data FROM pg_logical_slot_peek_binary_changes("
            f"%s, NULL, NULL, {placeholders})", [slot] + args).fetchall()
        session = Session()
        kinds = set()
        seq = 0
        for _lsn, _xid, data in rows:
            data = bytes(data)
            lines, shape, stream_xid = session.decode(data)
            kinds.add(chr(data[0]))
            if shape in seen:
                continue
            seen.add(shape)
            seq += 1
            base = f"{name}-{seq:02d}-{slug(shape)}"
            (out / f"{base}.bin").write_bytes(data)
            head = [
                f"# recorded from PostgreSQL {version} by "
                f"tests/tools/record_pgoutput.py",
                f"proto_version {header['proto_version']}",
                f"streaming {header['streaming']}",
                f"two_phase {header['two_phase']}",
                "in_stream_block "
                + ("no" if stream_xid is None else str(stream_xid)),
                "--",
            ]
            (out / f"{base}.expect").write_text("\n".join(head + lines) + "\n")
            count += 1
        print(f"{name}: {len(rows)} messages, kinds {''.join(sorted(kinds))}, "
              f"kept {seq}")
    print(f"wrote {count} fixtures to {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bindir", default=DEFAULT_BINDIR,
                    help=f"PostgreSQL 15 server binaries (default {DEFAULT_BINDIR})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="fixture directory (its *.bin and *.expect are replaced)")
    args = ap.parse_args()

    server = Server(args.bindir)
    try:
        server.start()
        with server.connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            version = version.split()[0]
            for s in SETUP:
                conn.execute(s)
            body = "".join(random.Random(42).choice(string.ascii_letters)
                           for _ in range(100 * 1024))
            conn.execute("INSERT INTO docs VALUES (1, %s, 'title')", [body])
            conn.execute("SELECT pg_create_logical_replication_slot("
                         "'pgo_slot', 'pgoutput')")
            conn.execute("SELECT pg_create_logical_replication_slot("
                         "'pgo_slot_2pc', 'pgoutput', false, true)")
            workload(conn)
            args.out.mkdir(parents=True, exist_ok=True)
            for p in list(args.out.glob("*.bin")) + list(args.out.glob("*.expect")):
                p.unlink()
            record(conn, args.out, version)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
