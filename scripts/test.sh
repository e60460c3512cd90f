#!/usr/bin/env bash
# Runs pgtide's whole test suite on a fresh Debian machine: installs what is
# missing (make and a compiler included), then `make test`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install-deps.sh"
exec make -C "$ROOT" test "$@"
