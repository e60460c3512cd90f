/*
 * units: bytes and durations as a person reads them, for progress lines,
 * check's findings and reports. Pure: no I/O, never fails; a too-small
 * buffer truncates.
 */
#ifndef PGTIDE_UNITS_H
#define PGTIDE_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* "1.5 GB", "12 MB", "512 B" into buf. */
void units_format_bytes(int64_t bytes, char *buf, size_t cap);

/* "12m05s", "3h20m", or "--:--" when unknown (negative) or absurd. */
void units_format_eta(double seconds, char *buf, size_t cap);

#endif
