/*
 * lsn: parsing and formatting WAL positions.
 */
#include "base/lsn.h"

#include <stdio.h>

static bool
parse_hex32(const char **p, uint32_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	for (; **p; (*p)++, digits++)
	{
		char c = **p;
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (digits >= 8)
			return false;
		v = v * 16 + (uint64_t) d;
	}
	*out = (uint32_t) v;
	return digits > 0;
}

bool
lsn_parse(const char *text, Lsn *out)
{
	const char *p = text;
	uint32_t hi, lo;

	if (text == NULL || !parse_hex32(&p, &hi) || *p++ != '/' ||
	    !parse_hex32(&p, &lo) || *p != '\0')
		return false;
	*out = ((Lsn) hi << 32) | lo;
	return true;
}

char *
lsn_format(Lsn lsn, char *buf)
{
	snprintf(buf, LSN_TEXT_MAX, LSN_FMT, LSN_ARGS(lsn));
	return buf;
}
