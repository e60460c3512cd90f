#!/usr/bin/env bash
# Installs the Debian packages pgtide needs to build, test and run its demo,
# only when one is missing. Safe to run again.
set -euo pipefail
need=(build-essential pkg-config libpq-dev libyaml-dev libmicrohttpd-dev libcmocka-dev
      postgresql postgresql-contrib python3-pytest python3-pytest-xdist
      python3-psycopg python3-websocket chromium clang-format)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
		|| missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "pgtide: installing missing packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
