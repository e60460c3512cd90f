/*
 * prom: the Prometheus text exposition format (version 0.0.4), written into
 * a capped Buf: a family's HELP and TYPE lines, then its samples with their
 * labels. Pure: no sockets, no connections, no clocks.
 *
 * It owns the escaping of HELP text and label values (backslash, double
 * quote and newline) and the spelling of values (NaN, +Inf, integers without
 * an exponent). It must never decide which metrics exist: that is
 * metrics.c's.
 */
#ifndef PGTIDE_PROM_H
#define PGTIDE_PROM_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum PromType
{
	PROM_COUNTER = 0,
	PROM_GAUGE,
} PromType;

/* One label: name (a Prometheus label name, given by the caller) = value. */
typedef struct PromLabel
{
	const char *name;
	const char *value; /* any text: escaped as it is written */
} PromLabel;

/*
 * Writes "# HELP name help" and "# TYPE name type", the lines that open a
 * family; every sample of the family must follow at once. Fails as buf_add
 * (the cap passed); out is failed afterwards.
 */
bool prom_family(Buf *out, const char *name, PromType type, const char *help,
                 Error *err);

/*
 * Writes one sample: name{l1="v1",...} value. nlabels may be 0 (no braces).
 * Fails as buf_add.
 */
bool prom_sample(Buf *out, const char *name, const PromLabel *labels,
                 int nlabels, double value, Error *err);

/*
 * Appends value escaped for a label value: \ as \\, " as \", newline as
 * \n; every other byte as it is (the format is UTF-8). Fails as buf_add.
 */
bool prom_escape_label(Buf *out, const char *value, Error *err);

#endif
