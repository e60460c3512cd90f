/*
 * prom: HELP, TYPE and sample lines of the Prometheus text format.
 */
#include "surface/prom.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* HELP text escapes backslash and newline only; label values add quote. */
static bool
escape(Buf *out, const char *s, bool quote, Error *err)
{
	const char *run = s;

	for (; *s != '\0'; s++)
	{
		const char *e = NULL;

		if (*s == '\\')
			e = "\\\\";
		else if (*s == '\n')
			e = "\\n";
		else if (*s == '"' && quote)
			e = "\\\"";
		if (e == NULL)
			continue;
		if (!buf_add(out, run, (size_t) (s - run), err) ||
		    !buf_add_str(out, e, err))
			return false;
		run = s + 1;
	}
	return buf_add(out, run, (size_t) (s - run), err);
}

bool
prom_escape_label(Buf *out, const char *value, Error *err)
{
	return escape(out, value != NULL ? value : "", true, err);
}

bool
prom_family(Buf *out, const char *name, PromType type, const char *help,
            Error *err)
{
	return buf_printf(out, err, "# HELP %s ", name) &&
	       escape(out, help, false, err) &&
	       buf_printf(out, err, "\n# TYPE %s %s\n", name,
	                  type == PROM_COUNTER ? "counter" : "gauge");
}

/*
 * Whole numbers up to 2^53 as integers, so a count of rows reads as one;
 * the rest with enough digits to come back to the same double.
 */
static bool
write_value(Buf *out, double v, Error *err)
{
	if (isnan(v))
		return buf_add_str(out, "NaN", err);
	if (isinf(v))
		return buf_add_str(out, v > 0 ? "+Inf" : "-Inf", err);
	if (v == floor(v) && fabs(v) <= 9007199254740992.0)
		return buf_printf(out, err, "%lld", (long long) v);
	return buf_printf(out, err, "%.17g", v);
}

bool
prom_sample(Buf *out, const char *name, const PromLabel *labels, int nlabels,
            double value, Error *err)
{
	if (!buf_add_str(out, name, err))
		return false;
	for (int i = 0; i < nlabels; i++)
		if (!buf_printf(out, err, "%s%s=\"", i == 0 ? "{" : ",",
		                labels[i].name) ||
		    !prom_escape_label(out, labels[i].value, err) ||
		    !buf_add_str(out, "\"", err))
			return false;
	return buf_add_str(out, nlabels > 0 ? "} " : " ", err) &&
	       write_value(out, value, err) && buf_add_str(out, "\n", err);
}
