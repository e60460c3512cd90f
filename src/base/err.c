/*
 * err: filling and decorating Error values. Never logs, never exits.
 */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
vfill(char *dst, size_t cap, const char *fmt, va_list ap)
{
	vsnprintf(dst, cap, fmt, ap);
}

bool
err_set(Error *err, ErrKind kind, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->kind != ERR_NONE)
		return false;
	memset(err, 0, sizeof(*err));
	err->kind = kind;
	va_start(ap, fmt);
	vfill(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return false;
}

bool
err_prefix(Error *err, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX];
	char joined[ERR_MSG_MAX];
	va_list ap;

	if (err == NULL || err->kind == ERR_NONE)
		return false;
	va_start(ap, fmt);
	vfill(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Too long a message keeps its start, which names what failed. */
	if (snprintf(joined, sizeof(joined), "%s%s", prefix, err->message) < 0)
		return false;
	memcpy(err->message, joined, sizeof(err->message));
	return false;
}

bool
err_detail(Error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->kind == ERR_NONE)
		return false;
	va_start(ap, fmt);
	vfill(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return false;
}

bool
err_hint(Error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->kind == ERR_NONE)
		return false;
	va_start(ap, fmt);
	vfill(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	return false;
}

void
err_clear(Error *err)
{
	memset(err, 0, sizeof(*err));
}

bool
err_is_set(const Error *err)
{
	return err->kind != ERR_NONE;
}

const char *
err_kind_name(ErrKind kind)
{
	switch (kind)
	{
		case ERR_NONE:
			return "none";
		case ERR_INTERNAL:
			return "internal";
		case ERR_USAGE:
			return "usage";
		case ERR_CONFIG:
			return "config";
		case ERR_SOURCE:
			return "source";
		case ERR_TARGET:
			return "target";
		case ERR_INTERRUPTED:
			return "interrupted";
		case ERR_BLOCKED:
			return "blocked";
		case ERR_DIFFERENT:
			return "different";
		case ERR_BUSY:
			return "busy";
		case ERR_GUARD:
			return "guard";
	}
	return "unknown";
}
