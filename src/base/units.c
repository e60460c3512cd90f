/*
 * units: bytes and durations as a person reads them.
 */
#include "base/units.h"

#include <stdio.h>

void
units_format_bytes(int64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double) bytes;
	int u = 0;

	while (v >= 1024 && u < 4)
	{
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

void
units_format_eta(double seconds, char *buf, size_t cap)
{
	long s = (long) seconds;

	if (seconds < 0 || seconds > 360000)
		snprintf(buf, cap, "--:--");
	else if (s >= 3600)
		snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
}
