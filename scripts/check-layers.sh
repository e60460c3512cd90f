#!/usr/bin/env bash
# Calls go only downward: a file in src/<folder>/ may include the headers of
# its own folder and of the folders before it in LAYERS, never of one after.
# Run by `make lint`; prints each include that breaks the order.
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=(base route pg state load cdc verify guard cutover surface cmd)
rank() {
	local i
	for i in "${!LAYERS[@]}"; do
		[ "${LAYERS[$i]}" = "$1" ] && { echo "$i"; return; }
	done
	echo "unknown folder src/$1 (add it to LAYERS in $0)" >&2
	exit 1
}
bad=0
for f in src/*/*.[ch]; do
	own=$(basename "$(dirname "$f")")
	r_own=$(rank "$own")
	while IFS= read -r dep; do
		[ -n "$dep" ] || continue
		if [ "$(rank "$dep")" -gt "$r_own" ]; then
			echo "$f includes $dep/: calls go only downward (${LAYERS[*]})"
			bad=1
		fi
	done < <(sed -n 's|^#include "\([a-z]*\)/.*|\1|p' "$f" | sort -u)
done
exit $bad
