#!/usr/bin/env bash
# Soak: a whole migration (load, stream, cutover) for SOAK_MINUTES (default
# 5) while the source's application writes and random faults strike at
# every phase: target and source crashes, connections cut, kill -9 of
# pgtide. Ends with an exact check (every acknowledged transaction on the
# target once, every table equal) and a summary; exit 0 on PASS, 1 on FAIL.
# Two throwaway servers on 127.0.0.1; it stops by itself. The driver is
# tests/soak/soak.py (see its docstring for SOAK_SEED, SOAK_RATE, SOAK_ROWS,
# SOAK_FAULT_EVERY, SOAK_LOGS); the summary is also written to
# bench/out/soak-STAMP.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOAK_MINUTES=${SOAK_MINUTES:-5}
PGTIDE_BIN=${PGTIDE_BIN:-$ROOT/build/release/pgtide}
case "$PGTIDE_BIN" in /*) ;; *) PGTIDE_BIN=$PWD/$PGTIDE_BIN ;; esac

if ! [[ "$SOAK_MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ "$SOAK_MINUTES" =~ ^0+([.]0*)?$ ]]; then
	echo "soak: SOAK_MINUTES must be a positive number" >&2
	exit 2
fi
[ -x "$PGTIDE_BIN" ] || { echo "soak: no pgtide binary at $PGTIDE_BIN (run make)" >&2; exit 2; }

mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/soak-$(date +%Y%m%d-%H%M%S).txt
cd "$ROOT"
export SOAK_MINUTES PGTIDE_BIN
set +e
/usr/bin/python3 tests/soak/soak.py 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e
echo "soak: output written to $OUT" >&2
exit "$rc"
