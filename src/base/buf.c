/*
 * buf: the capped growable buffer (buf.h). Owns its bytes until buf_take;
 * never grows past the cap, never logs, never exits.
 *
 * Growth doubles the allocation from BUF_FIRST_ALLOC, clamped to the cap,
 * so appending n bytes costs O(n) overall and the cap is never allocated
 * unless the contents need it. A failure frees the memory at once: a
 * failed Buf holds nothing that a forgotten buf_free could leak.
 */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FIRST_ALLOC 64

/* Fills err with why a Buf of cap bytes failed. Returns false. */
static bool
buf_error(BufFailure why, size_t cap, Error *err)
{
	switch (why)
	{
		case BUF_NO_MEMORY:
			return err_set(err, ERR_INTERNAL, "out of memory");
		case BUF_TOO_LARGE:
			return err_set(err, ERR_INTERNAL,
			               "buffer would exceed its cap of %zu bytes", cap);
		case BUF_BAD_FORMAT:
			return err_set(err, ERR_INTERNAL, "could not format text");
		case BUF_OK:
			break;
	}
	return err_set(err, ERR_INTERNAL, "unknown buffer failure %d", (int) why);
}

/* Frees b's memory and fails it; fills err. Returns false. */
static bool
buf_fail(Buf *b, BufFailure why, Error *err)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->failure = why;
	return buf_error(why, b->cap, err);
}

/* Makes room for n more bytes and the NUL. */
static bool
buf_grow(Buf *b, size_t n, Error *err)
{
	size_t fit, want;
	char *p;

	if (b->failure != BUF_OK)
		return buf_fail(b, b->failure, err);
	if (n >= b->cap || b->len + 1 > b->cap - n)
		return buf_fail(b, BUF_TOO_LARGE, err);
	fit = b->len + n + 1;
	if (fit <= b->alloc)
		return true;
	want = b->alloc > 0 ? b->alloc : BUF_FIRST_ALLOC;
	while (want < fit)
		want = want > b->cap / 2 ? b->cap : want * 2;
	if (want > b->cap)
		want = b->cap;
	p = realloc(b->data, want);
	if (p == NULL)
		return buf_fail(b, BUF_NO_MEMORY, err);
	b->data = p;
	b->alloc = want;
	return true;
}

void
buf_init(Buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

bool
buf_add(Buf *b, const void *bytes, size_t n, Error *err)
{
	if (!buf_grow(b, n, err))
		return false;
	if (n > 0)
		memcpy(b->data + b->len, bytes, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

bool
buf_add_str(Buf *b, const char *s, Error *err)
{
	return buf_add(b, s, strlen(s), err);
}

bool
buf_printf(Buf *b, Error *err, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = buf_vprintf(b, fmt, ap, err);
	va_end(ap);
	return ok;
}

bool
buf_vprintf(Buf *b, const char *fmt, va_list ap, Error *err)
{
	va_list again;
	size_t room = b->alloc - b->len;
	int n;

	if (b->failure != BUF_OK)
		return buf_fail(b, b->failure, err);
	/* format in place; when it does not fit, grow and format again (a
	 * piece half-written past the NUL is overwritten, or freed with the
	 * failed buffer) */
	va_copy(again, ap);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
	if (n < 0)
	{
		va_end(again);
		return buf_fail(b, BUF_BAD_FORMAT, err);
	}
	if ((size_t) n >= room)
	{
		if (!buf_grow(b, (size_t) n, err))
		{
			va_end(again);
			return false;
		}
		vsnprintf(b->data + b->len, (size_t) n + 1, fmt, again);
	}
	va_end(again);
	b->len += (size_t) n;
	return true;
}

const char *
buf_str(const Buf *b)
{
	return b->data != NULL ? b->data : "";
}

bool
buf_check(const Buf *b, Error *err)
{
	if (b->failure == BUF_OK)
		return true;
	return buf_error(b->failure, b->cap, err);
}

size_t
buf_len(const Buf *b)
{
	return b->len;
}

void
buf_reset(Buf *b)
{
	b->len = 0;
	b->failure = BUF_OK;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(Buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->failure = BUF_OK;
}

bool
buf_take(Buf *b, char **out, Error *err)
{
	BufFailure failure = b->failure;

	*out = b->data;
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->failure = BUF_OK;
	if (failure != BUF_OK) /* a failed Buf holds no memory: *out is NULL */
		return buf_error(failure, b->cap, err);
	if (*out == NULL && (*out = strdup("")) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}
