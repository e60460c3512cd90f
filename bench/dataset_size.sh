# Shared by the benchmarks that build the full-load dataset (sourced, not
# run, before lib.sh so that bad input stops them before anything starts):
# BENCH_SCALE (small or full) or BENCH_SIZE (a number with an optional unit,
# KB, MB, GB or TB; default MB) becomes size_mb, the dataset's size in MiB.
# shellcheck shell=bash

BENCH_SCALE=${BENCH_SCALE:-}
if [ -z "${BENCH_SIZE:-}" ]; then
	case "$BENCH_SCALE" in
	small) BENCH_SIZE=100MB ;;
	"" | full) BENCH_SIZE=1500MB ;;
	*) echo "bench: BENCH_SCALE must be 'small' or 'full'" >&2; exit 2 ;;
	esac
fi
size_mb=$(awk -v s="$BENCH_SIZE" 'BEGIN {
	u = toupper(s); gsub(/[[:space:]]|I?B$/, "", u)
	m = 1; if (u ~ /K$/) m = 1 / 1024; else if (u ~ /G$/) m = 1024; else if (u ~ /T$/) m = 1048576
	sub(/[KMGT]$/, "", u)
	if (u !~ /^[0-9]+(\.[0-9]+)?$/) exit 1
	printf "%d", u * m }') || { echo "bench: cannot read BENCH_SIZE='$BENCH_SIZE'" >&2; exit 2; }
[ "$size_mb" -ge 20 ] || { echo "bench: BENCH_SIZE must be at least 20MB" >&2; exit 2; }
