/*
 * pg: talking to one PostgreSQL server through libpq.
 *
 * Owns connecting with retry and backoff, running SQL with the server's error
 * captured into an Error (SQLSTATE, detail, hint, whether a new connection may
 * help), and quoting identifiers and literals. It knows nothing of tasks,
 * tables or state. A PgConn never crosses threads.
 */
#ifndef PGTIDE_PG_H
#define PGTIDE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct PgConn PgConn;

typedef enum PgConnKind
{
	PG_CONN_SQL = 0,
	PG_CONN_REPLICATION, /* replication=database: walsender commands */
} PgConnKind;

/*
 * Connects to uri as `side` (ERR_SOURCE or ERR_TARGET, also the kind of every
 * error this connection reports), naming the session application_name. A
 * failure that a retry may cure (refused, reset, server starting) is retried
 * with backoff for up to retry_ms; authentication failures are not retried.
 * On success *out is a new connection the caller frees with pg_close().
 */
bool pg_connect(const char *uri, ErrKind side, PgConnKind kind,
                const char *app_name, int retry_ms, PgConn **out, Error *err);

/*
 * Makes conn a kept session: setup_sql (session settings, or NULL) runs now
 * and on every new connection, and a connection lost while no transaction
 * is open is replaced, trying for up to reconnect_ms, each time it is found
 * lost (see pg_query). For sessions whose standalone statements are each
 * safe to run twice, as a lost reply can make them run twice: the state,
 * catalog reads, sequences, the check.
 */
bool pg_keep_session(PgConn *conn, const char *setup_sql, int reconnect_ms,
                     Error *err);

/*
 * Ends the server session `pid` that a lost connection of this kind (same
 * application name) left behind, and waits until it is gone. Until then it
 * may still commit the transaction whose COMMIT got no answer, or hold its
 * locks: what a new session reads about that transaction is final only
 * after. Kept sessions do it on their own when they reconnect; a caller that
 * opens a new connection after a loss calls it with the old one's pid.
 */
bool pg_end_lost_session(PgConn *conn, int pid, Error *err);

/* The server process of the connection, also once it is lost (0: never
 * connected). */
int pg_backend_pid(PgConn *conn);

/* How long kept sessions try to replace a lost connection. */
#define PG_RECONNECT_MS (30 * 60 * 1000)

/* RESET ALL, then the settings pg_connect gives an ordinary session. */
bool pg_reset(PgConn *conn, Error *err);

/* Closes and frees; NULL is a no-op. */
void pg_close(PgConn *conn);

/* The underlying libpq connection, for COPY and replication I/O. A view. */
PGconn *pg_raw(PgConn *conn);

/* server_version_num, e.g. 150004. */
int pg_server_version(const PgConn *conn);

/* The side this connection reports errors as. */
ErrKind pg_side(const PgConn *conn);

/* "host:port/dbname", for messages. A view valid while conn lives. */
const char *pg_where(const PgConn *conn);

/* True when the connection is still usable. */
bool pg_ok(const PgConn *conn);

/* Runs sql that returns no rows (or whose rows are not wanted). */
bool pg_exec(PgConn *conn, const char *sql, Error *err);

/* printf-style pg_exec; the formatted text must be fully quoted already. */
bool pg_execf(PgConn *conn, Error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Runs sql with text parameters $1..$n (NULL values allowed). On success *out
 * holds the result (tuples or command) which the caller PQclear()s; on failure
 * *out is NULL. On a kept session a lost connection is replaced first.
 */
bool pg_query(PgConn *conn, const char *sql, int nparams,
              const char *const *params, PGresult **out, Error *err);

/*
 * Runs a query expected to return exactly one row; copies column 0 of it into
 * buf (NULL becomes ""). Fails when there is no row.
 */
bool pg_query_value(PgConn *conn, const char *sql, int nparams,
                    const char *const *params, char *buf, size_t cap,
                    Error *err);

/*
 * Fills err from a failed result (or from the connection when res is NULL),
 * with SQLSTATE, detail and hint, and marks connection-level failures
 * retryable. Always returns false.
 */
bool pg_error(PgConn *conn, const PGresult *res, Error *err);

/*
 * Quoting into malloc'd strings the caller frees. Identifiers are always
 * double-quoted; literals use standard_conforming_strings (always on, since
 * pgtide sets it on every session). Return NULL only on out-of-memory.
 */
char *pg_quote_ident(const char *ident);
char *pg_quote_literal(const char *text);

/* "schema"."name", malloc'd; caller frees. */
char *pg_qualify(const char *schema, const char *name);

/*
 * Appends v as the next element of the text[] literal in b (which holds "{"
 * and the elements so far): quoted, a backslash before " and \; NULL is the
 * unquoted NULL. Fails as buf_add.
 */
bool pg_array_item(Buf *b, const char *v, Error *err);

/*
 * A handle with which another thread cancels the statement conn runs
 * (libpq's PQcancel is safe from any thread and from a signal handler).
 * Made by conn's own thread, again after each reconnect; NULL when conn is
 * not connected or memory is short.
 */
typedef struct PgCancel PgCancel;
PgCancel *pg_cancel_new(PgConn *conn);

/* Asks the server to cancel the running statement; best effort. */
void pg_cancel_send(PgCancel *cancel);

/* Frees cancel; NULL is a no-op. */
void pg_cancel_free(PgCancel *cancel);

/* Whether a relation named qname ("schema"."name") exists. */
bool pg_relation_exists(PgConn *conn, const char *qname, bool *exists,
                        Error *err);

/*
 * Splits a connection string or URI into one without its password (for a
 * child's command line, which every local user can read) and the password
 * (for the child's environment only; NULL when there is none). Both are
 * malloc'd, the caller frees them. Fails (ERR_CONFIG) on a string libpq
 * cannot parse, without repeating it (it may hold the password).
 */
bool pg_conninfo_split(const char *conninfo, char **without_password,
                       char **password, Error *err);

/* SQLSTATE of the error in err equals code ("57P01"). */
bool pg_err_is(const Error *err, const char *sqlstate);

#endif
