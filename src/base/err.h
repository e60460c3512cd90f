/*
 * err: the Error value that fallible functions fill and pass up.
 *
 * A fallible function returns bool and takes `Error *err` last. On failure it
 * fills err (the first error wins: later err_set calls on a filled Error are
 * ignored) and returns false. Nobody below cli logs an error it returns, and
 * nobody below main exits. No libpq, no knowledge of PostgreSQL.
 */
#ifndef PGTIDE_ERR_H
#define PGTIDE_ERR_H

#include <stdbool.h>

/* What failed; cli maps each kind to a documented exit code. */
typedef enum ErrKind
{
	ERR_NONE = 0,
	ERR_INTERNAL,    /* a bug or resource exhaustion in pgtide */
	ERR_USAGE,       /* bad command line */
	ERR_CONFIG,      /* bad task file or option value */
	ERR_SOURCE,      /* the source server refused or failed */
	ERR_TARGET,      /* a target server refused or failed */
	ERR_INTERRUPTED, /* stopped by a signal before the work was done */
	ERR_BLOCKED,     /* check found a blocker (the findings say which) */
	ERR_DIFFERENT,   /* validate found rows that differ */
	ERR_BUSY,        /* another process runs the task */
	ERR_GUARD,       /* a guard stopped the task to protect the source, or the
	              source invalidated its slot: it cannot resume */
} ErrKind;

#define ERR_MSG_MAX 1024

typedef struct Error
{
	ErrKind kind;
	bool retryable;            /* a new connection may succeed */
	char sqlstate[6];          /* "" when not from a server */
	char message[ERR_MSG_MAX]; /* primary message, lower-case, no period */
	char detail[ERR_MSG_MAX];  /* optional */
	char hint[ERR_MSG_MAX];    /* optional */
} Error;

/* An empty Error; use as `Error err = ERR_INIT;`. */
#define ERR_INIT \
	{            \
		0        \
	}

/* Fills err unless it already holds an error. Always returns false. */
bool err_set(Error *err, ErrKind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("table x, chunk 3: ") to the message. Returns false. */
bool err_prefix(Error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets the detail or hint line of an already filled Error. Returns false. */
bool err_detail(Error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool err_hint(Error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err so it can be reused. */
void err_clear(Error *err);

/* True when err holds an error. */
bool err_is_set(const Error *err);

/* The kind's name for messages and JSON ("source", "target", ...). */
const char *err_kind_name(ErrKind kind);

#endif
