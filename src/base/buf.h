/*
 * buf: a growable byte buffer with a hard cap, for building strings (SQL,
 * array literals, keys) whose size is not known in advance. After curl's
 * DYNBUF: the cap is fixed at init, and passing it is an error, never a
 * silent truncation. No libpq, no knowledge of PostgreSQL; never logs,
 * never exits.
 *
 * The bytes held are always followed by a NUL, so a Buf of text is a C
 * string; bytes may contain NULs too (buf_len() counts them).
 *
 * States, and the function that moves between them:
 *
 *   empty ──buf_add/buf_printf──► holding ──buf_take──► empty (caller owns
 *     ▲                             │   the string)
 *     │                             │ cap passed or out of memory
 *     │                             ▼
 *     └──buf_reset/buf_take/─── failed: memory freed; every later append
 *        buf_free                   fails at once with the same error
 *
 * A failed Buf stays failed, so a caller that builds one string in several
 * appends may test only the last append, buf_check or buf_take: nothing
 * appended after a failure can produce a string with a piece missing.
 *
 * Embedded, not opaque: declare a Buf with BUF_INIT(cap) or buf_init(),
 * and end it with buf_free() (or buf_take()). The fields are the module's.
 */
#ifndef PGTIDE_BUF_H
#define PGTIDE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef enum BufFailure
{
	BUF_OK = 0,
	BUF_NO_MEMORY,  /* an allocation failed */
	BUF_TOO_LARGE,  /* an append would have passed the cap */
	BUF_BAD_FORMAT, /* vsnprintf failed (an encoding error) */
} BufFailure;

typedef struct Buf
{
	char *data;         /* NULL until the first append; NUL-terminated */
	size_t len;         /* bytes held, the NUL not counted */
	size_t alloc;       /* bytes allocated at data */
	size_t cap;         /* most bytes data may take, the NUL included */
	BufFailure failure; /* why the Buf failed, or BUF_OK */
} Buf;

/* An empty Buf of at most cap bytes: `Buf sql = BUF_INIT(1024);`. */
#define BUF_INIT(cap_bytes) \
	{                       \
		.cap = (cap_bytes)  \
	}

/* Makes b an empty Buf of at most cap bytes (the NUL included). */
void buf_init(Buf *b, size_t cap);

/*
 * Appends n bytes. Fails (ERR_INTERNAL) when the result would need more
 * than the cap or memory runs out; b is failed afterwards.
 */
bool buf_add(Buf *b, const void *bytes, size_t n, Error *err);

/* Appends the string s without its NUL; fails as buf_add. */
bool buf_add_str(Buf *b, const char *s, Error *err);

/*
 * Appends printf-formatted text; fails as buf_add, or when the text cannot
 * be formatted. Error comes before the format, as in err_set: a variadic
 * function cannot take it last.
 */
bool buf_printf(Buf *b, Error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool buf_vprintf(Buf *b, const char *fmt, va_list ap, Error *err)
    __attribute__((format(printf, 2, 0)));

/*
 * The bytes held, NUL-terminated: a view, valid until the next call on b;
 * "" when b is empty or failed.
 */
const char *buf_str(const Buf *b);

/*
 * False when b is failed (an append failed since the last reset or take),
 * and then fills err with that failure: for a caller that appends several
 * pieces and looks at the result through buf_str() rather than buf_take().
 */
bool buf_check(const Buf *b, Error *err);

/* Bytes held, the NUL not counted (0 when failed). */
size_t buf_len(const Buf *b);

/* Empties b and clears a failure; keeps its memory and its cap. */
void buf_reset(Buf *b);

/* Frees b's memory and clears a failure; b keeps its cap and may be reused.
 * buf_free on a zeroed Buf is a no-op. */
void buf_free(Buf *b);

/*
 * Hands the string over: *out is malloc'd, the caller frees it ("" when
 * nothing was appended). On failure (b failed, or no memory for "") *out
 * is NULL and err is filled. Either way b is empty afterwards, its failure
 * cleared, its cap kept.
 */
bool buf_take(Buf *b, char **out, Error *err);

#endif
