/*
 * pg: libpq connections with retry, SQL execution with captured errors, and
 * quoting. Never logs an error it returns; may log one line per retry.
 */
#include "pg/pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

/* A connection string without its password: a few keywords and values. */
#define PG_CONNINFO_MAX 65536

struct PgConn
{
	PGconn *conn;
	ErrKind side;
	PgConnKind kind;
	int version;
	char where[256];
	char *uri;      /* owned: for reconnecting */
	char *app_name; /* owned */
	int pid;        /* the server process; kept once the connection is lost */
	/* pg_keep_session: reconnect for up to this long (0: never) */
	int reconnect_ms;
	bool gave_up;    /* the last reconnect ran out of time: try once now */
	char *setup_sql; /* owned: run again on each new connection */
};

/* Server notices ("relation already exists, skipping") are for debugging. */
static void
notice_to_log(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void) arg;
	if (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("server notice: %.*s", (int) n, message);
}

/* Authentication and configuration failures will not be cured by waiting. */
static bool
connect_failure_retryable(const char *msg)
{
	static const char *const final[] = {
	    "password authentication failed",
	    "no password supplied",
	    "does not exist",
	    "no pg_hba.conf entry",
	    "invalid connection option",
	    "invalid URI",
	    "missing \"=\"",
	    "permission denied",
	    "could not translate host name",
	    "must be superuser or replication role",
	    "authentication failed",
	};

	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
		if (strstr(msg, final[i]) != NULL)
			return false;
	return true;
}

static void
trim_newline(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/*
 * ISO dates (no day/month order to guess), postgres intervals, floats with
 * every digit (exact; shortest-exact from 12 on), UTC, hex bytea, standard
 * strings (pg_quote_literal relies on them), money in the C locale's form,
 * XML parsed as content (a document parses as content too), an unquoted
 * NULL in an array's text read as a null element (array_nulls off reads it
 * as the string NULL, or refuses it for other types), and only pg_catalog
 * on the search path: a reg* value (regclass, regtype, ...) is
 * written as a name qualified unless the path shows it, so both sides must
 * see the same path for the name to mean the same object. And UTF-8 on the
 * wire: a database or role may set another client_encoding, in which the
 * target would read the source's bytes as other characters; UTF-8 holds
 * every character of every server encoding, so each side converts to it.
 */
#define PG_PINNED                                                            \
	"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3"     \
	" -c timezone=UTC -c bytea_output=hex -c standard_conforming_strings=on" \
	" -c lc_monetary=C -c xmloption=content -c array_nulls=on"               \
	" -c search_path=pg_catalog -c client_encoding=UTF8 -c row_security=off"
/*
 * Timeouts a role or database may set for applications, off for pgtide's
 * sessions: a chunk's COPY or a large batch runs as long as it takes, the
 * exported snapshot's session sits idle in its open transaction for the whole
 * load, and the load's own sessions idle while workers copy. lock_timeout
 * stays the user's: it keeps pgtide from queueing the application behind a
 * lock pgtide waits for.
 */
#define PG_NO_TIMEOUTS \
	"-c statement_timeout=0 -c idle_in_transaction_session_timeout=0"

/*
 * What the startup options cannot give an ordinary session: 14's
 * idle_session_timeout, which an older server would refuse to start a
 * session with. The rest is pinned at connection start (PG_PINNED,
 * PG_NO_TIMEOUTS), which is also what RESET ALL returns to.
 */
static bool
session_setup(PgConn *pc, Error *err)
{
	return pc->version < 140000 ||
	       pg_exec(pc, "SET idle_session_timeout = 0", err);
}

bool
pg_reset(PgConn *conn, Error *err)
{
	return pg_exec(conn, "RESET ALL", err) && session_setup(conn, err) &&
	       (conn->setup_sql == NULL || pg_exec(conn, conn->setup_sql, err));
}

/*
 * Opens pc->conn (replacing nothing: the caller closed the old one),
 * retrying what a retry may cure for up to retry_ms, then gives an ordinary
 * session its settings.
 */
static bool
open_conn(PgConn *pc, int retry_ms, Error *err)
{
	/*
	 * Every setting that shapes a value's text form, pinned for every
	 * session, whatever the server, database or role sets: a walsender
	 * renders pgoutput's values with them, copy workers read and write text
	 * COPY with them, and the other side parses with the same ones. Given
	 * at connection start, they are also what RESET ALL goes back to.
	 * docs/decisions/0006-pinned-session-settings.md says why each.
	 */
	const char *keys[] = {"dbname",  "application_name", "connect_timeout",
	                      "options", "replication",      NULL};
	const char *vals[] = {pc->uri,    pc->app_name,
	                      "10",       PG_PINNED " " PG_NO_TIMEOUTS,
	                      "database", NULL};
	ErrKind side = pc->side;
	int waited_ms = 0;
	int backoff_ms = 200;

	if (pc->kind != PG_CONN_REPLICATION)
		keys[4] = NULL;
	for (;;)
	{
		PGconn *conn = PQconnectdbParams(keys, vals, 1);
		char msg[ERR_MSG_MAX];

		if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
		{
			PQsetNoticeProcessor(conn, notice_to_log, NULL);
			pc->conn = conn;
			pc->pid = PQbackendPID(conn);
			pc->version = PQserverVersion(conn);
			snprintf(pc->where, sizeof(pc->where), "%s:%s/%s",
			         PQhost(conn) ? PQhost(conn) : "?",
			         PQport(conn) ? PQport(conn) : "?",
			         PQdb(conn) ? PQdb(conn) : "?");
			return pc->kind != PG_CONN_SQL || session_setup(pc, err);
		}
		snprintf(msg, sizeof(msg), "%s",
		         conn ? PQerrorMessage(conn) : "out of memory");
		trim_newline(msg);
		PQfinish(conn);
		if (!connect_failure_retryable(msg) || waited_ms >= retry_ms)
		{
			err_set(err, side, "could not connect to the %s database: %s",
			        side == ERR_SOURCE ? "source" : "target", msg);
			err->retryable = connect_failure_retryable(msg);
			if (strstr(msg, "password") != NULL)
				err_hint(err,
				         "check the user name and password in the %s "
				         "connection string",
				         side == ERR_SOURCE ? "--source" : "--target");
			else if (err->retryable)
				err_hint(err, "check that the server is running and accepts "
				              "TCP connections at that address");
			return false;
		}
		log_warn("could not connect to the %s database, retrying in %d ms: %s",
		         side == ERR_SOURCE ? "source" : "target", backoff_ms, msg);
		clock_sleep_ms(backoff_ms);
		waited_ms += backoff_ms;
		backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
	}
}

bool
pg_connect(const char *uri, ErrKind side, PgConnKind kind, const char *app_name,
           int retry_ms, PgConn **out, Error *err)
{
	PgConn *pc = calloc(1, sizeof(*pc));

	*out = NULL;
	if (pc == NULL || (pc->uri = strdup(uri)) == NULL ||
	    (pc->app_name = strdup(app_name)) == NULL)
	{
		pg_close(pc);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	pc->side = side;
	pc->kind = kind;
	if (!open_conn(pc, retry_ms, err))
	{
		pg_close(pc);
		return false;
	}
	*out = pc;
	return true;
}

bool
pg_keep_session(PgConn *conn, const char *setup_sql, int reconnect_ms,
                Error *err)
{
	free(conn->setup_sql);
	conn->setup_sql = NULL;
	if (setup_sql != NULL && (conn->setup_sql = strdup(setup_sql)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	conn->reconnect_ms = reconnect_ms;
	return setup_sql == NULL || pg_exec(conn, setup_sql, err);
}

int
pg_backend_pid(PgConn *conn)
{
	return conn == NULL ? 0 : conn->pid;
}

/* A session ended by pg_terminate_backend is gone within milliseconds; one
   in a commit's fsync or a long index build's cleanup takes longer */
#define LOST_SESSION_WAIT_MS 30000

bool
pg_end_lost_session(PgConn *conn, int pid, Error *err)
{
	char p[16];
	const char *params[2] = {p, conn->app_name};
	int64_t start = clock_ms();
	PGresult *res;

	if (pid <= 0)
		return true;
	snprintf(p, sizeof(p), "%d", pid);
	if (!pg_query(conn,
	              "SELECT pg_catalog.pg_terminate_backend(pid) FROM"
	              " pg_catalog.pg_stat_activity WHERE pid = $1::int"
	              " AND application_name = $2",
	              2, params, &res, err))
		return err_prefix(err, "could not end the lost session %d: ", pid);
	PQclear(res);
	for (;;)
	{
		bool gone;

		if (!pg_query(conn,
		              "SELECT 1 FROM pg_catalog.pg_stat_activity"
		              " WHERE pid = $1::int AND application_name = $2",
		              2, params, &res, err))
			return false;
		gone = PQntuples(res) == 0;
		PQclear(res);
		if (gone)
			return true;
		if (clock_ms() - start >= LOST_SESSION_WAIT_MS)
		{
			err_set(err, conn->side,
			        "the lost session %d still runs on the server after "
			        "%d s: whether its last transaction committed is not "
			        "known yet",
			        pid, LOST_SESSION_WAIT_MS / 1000);
			err->retryable = true;
			return false;
		}
		clock_sleep_ms(50);
	}
}

/*
 * Replaces a lost connection of a kept session: a new one with the same
 * settings, tried for up to reconnect_ms, once the old server session is
 * gone. `lost` says why, for the log.
 */
static bool
reconnect(PgConn *pc, const char *lost, Error *err)
{
	const char *side = pc->side == ERR_SOURCE ? "source" : "target";
	int64_t start = clock_ms();
	/* libpq's message goes on with a second line of guesses: one is enough */
	int first_line = (int) strcspn(lost, "\n");
	int keep_ms = pc->reconnect_ms;
	/* a server already waited out once is given one try, not the whole
	   budget again: the caller is on its way out (cutover's undo, its
	   report) */
	int budget_ms = pc->gave_up ? 0 : keep_ms;
	int old_pid = pg_backend_pid(pc);
	bool ok;

	log_warn("%s: %.*s; reconnecting to %s", side, first_line, lost, pc->where);
	PQfinish(pc->conn);
	pc->conn = NULL;
	/* the settings run once on the new connection, not through a reconnect
	   of their own */
	pc->reconnect_ms = 0;
	for (;;)
	{
		int64_t left_ms = budget_ms - (clock_ms() - start);

		ok = open_conn(pc, left_ms > 0 ? (int) left_ms : 0, err) &&
		     pg_end_lost_session(pc, old_pid, err) &&
		     (pc->setup_sql == NULL || pg_exec(pc, pc->setup_sql, err));
		if (ok || !err->retryable || clock_ms() - start >= budget_ms)
			break;
		PQfinish(pc->conn);
		pc->conn = NULL;
		err_clear(err);
		clock_sleep_ms(200);
	}
	pc->reconnect_ms = keep_ms;
	pc->gave_up = !ok;
	if (!ok)
		return err_prefix(err, "lost connection not replaced after %.0f s: ",
		                  (double) (clock_ms() - start) / 1000.0);
	log_info("%s: reconnected after %.1f s", side,
	         (double) (clock_ms() - start) / 1000.0);
	return true;
}

void
pg_close(PgConn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn->conn);
	free(conn->uri);
	free(conn->app_name);
	free(conn->setup_sql);
	free(conn);
}

PGconn *
pg_raw(PgConn *conn)
{
	return conn->conn;
}

int
pg_server_version(const PgConn *conn)
{
	return conn->version;
}

ErrKind
pg_side(const PgConn *conn)
{
	return conn->side;
}

const char *
pg_where(const PgConn *conn)
{
	return conn->where;
}

bool
pg_ok(const PgConn *conn)
{
	return conn != NULL && conn->conn != NULL &&
	       PQstatus(conn->conn) == CONNECTION_OK;
}

bool
pg_error(PgConn *conn, const PGresult *res, Error *err)
{
	const char *primary = NULL;
	const char *state = NULL;
	char msg[ERR_MSG_MAX];

	if (res != NULL)
	{
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	}
	if (primary == NULL)
	{
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn->conn));
		trim_newline(msg);
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "the connection was lost");
		primary = msg;
	}
	if (err_is_set(err))
		return false;
	err_set(err, conn->side, "%s", primary);
	if (state != NULL)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	if (res != NULL)
	{
		const char *d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		const char *h = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

		if (d != NULL)
			err_detail(err, "%s", d);
		if (h != NULL)
			err_hint(err, "%s", h);
	}
	/*
	 * A broken connection, an administrator's termination (57P01..57P03) or
	 * a serialization failure may succeed on a new connection.
	 */
	err->retryable =
	    PQstatus(conn->conn) != CONNECTION_OK ||
	    (state != NULL &&
	     (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0 ||
	      strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0));
	return false;
}

static bool
query_once(PgConn *conn, const char *sql, int nparams,
           const char *const *params, PGresult **out, Error *err)
{
	PGresult *res;
	ExecStatusType st;

	if (nparams == 0)
		res = PQexec(conn->conn, sql);
	else
		res =
		    PQexecParams(conn->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		pg_error(conn, res, err);
		PQclear(res);
		return false;
	}
	*out = res;
	return true;
}

/*
 * A kept session runs a statement again on a new connection when the old one
 * was lost and no transaction was open before it: the statement stood alone,
 * and whatever it did either committed or vanished with the connection. A
 * statement inside the caller's transaction is not retried: the transaction
 * is gone, and the caller must start it again. A connection lost earlier
 * (nothing open any more) is replaced before the statement runs.
 */
bool
pg_query(PgConn *conn, const char *sql, int nparams, const char *const *params,
         PGresult **out, Error *err)
{
	PGTransactionStatusType before = PQtransactionStatus(conn->conn);

	*out = NULL;
	if (conn->reconnect_ms > 0 && before == PQTRANS_UNKNOWN &&
	    !reconnect(conn, "the connection was lost", err))
		return false;
	for (;;)
	{
		Error failed = ERR_INIT;

		if (query_once(conn, sql, nparams, params, out, &failed))
			return true;
		if (conn->reconnect_ms == 0 || before == PQTRANS_INTRANS ||
		    before == PQTRANS_INERROR || before == PQTRANS_ACTIVE ||
		    PQstatus(conn->conn) == CONNECTION_OK)
		{
			*err = failed;
			return false;
		}
		if (!reconnect(conn, failed.message, err))
			return false;
		before = PQTRANS_IDLE;
	}
}

bool
pg_exec(PgConn *conn, const char *sql, Error *err)
{
	PGresult *res;

	if (!pg_query(conn, sql, 0, NULL, &res, err))
		return false;
	PQclear(res);
	return true;
}

bool
pg_execf(PgConn *conn, Error *err, const char *fmt, ...)
{
	va_list ap;
	char *sql = NULL;
	bool ok;

	va_start(ap, fmt);
	if (vasprintf(&sql, fmt, ap) < 0)
		sql = NULL;
	va_end(ap);
	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_exec(conn, sql, err);
	free(sql);
	return ok;
}

bool
pg_query_value(PgConn *conn, const char *sql, int nparams,
               const char *const *params, char *buf, size_t cap, Error *err)
{
	PGresult *res;

	if (!pg_query(conn, sql, nparams, params, &res, err))
		return false;
	if (PQntuples(res) < 1 || PQnfields(res) < 1)
	{
		PQclear(res);
		return err_set(err, conn->side, "query returned no row: %.80s", sql);
	}
	snprintf(buf, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

static char *
quote_with(const char *text, char q)
{
	size_t n = 2;
	char *out, *p;

	for (const char *s = text; *s; s++)
		n += (*s == q) ? 2 : 1;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	p = out;
	*p++ = q;
	for (const char *s = text; *s; s++)
	{
		if (*s == q)
			*p++ = q;
		*p++ = *s;
	}
	*p++ = q;
	*p = '\0';
	return out;
}

char *
pg_quote_ident(const char *ident)
{
	return quote_with(ident, '"');
}

char *
pg_quote_literal(const char *text)
{
	return quote_with(text, '\'');
}

char *
pg_qualify(const char *schema, const char *name)
{
	char *s = pg_quote_ident(schema);
	char *n = pg_quote_ident(name);
	char *out = NULL;

	if (s != NULL && n != NULL && asprintf(&out, "%s.%s", s, n) < 0)
		out = NULL;
	free(s);
	free(n);
	return out;
}

bool
pg_conninfo_split(const char *conninfo, char **without_password,
                  char **password, Error *err)
{
	char *parse_err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &parse_err);
	Buf out = BUF_INIT(PG_CONNINFO_MAX);
	bool ok = true;

	*without_password = *password = NULL;
	PQfreemem(parse_err);
	if (opts == NULL)
		return err_set(err, ERR_CONFIG,
		               "the connection string could not be parsed");
	for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "password") == 0)
		{
			ok = (*password = strdup(o->val)) != NULL ||
			     err_set(err, ERR_INTERNAL, "out of memory");
			continue;
		}
		/* keyword='value', with ' and \ escaped as libpq reads them */
		buf_printf(&out, err, "%s%s='", buf_len(&out) ? " " : "", o->keyword);
		for (const char *p = o->val; *p; p++)
		{
			if (*p == '\'' || *p == '\\')
				buf_add(&out, "\\", 1, err);
			buf_add(&out, p, 1, err);
		}
		ok = buf_add(&out, "'", 1, err);
	}
	PQconninfoFree(opts);
	if (ok)
		ok = buf_take(&out, without_password, err);
	if (!ok)
	{
		free(*password);
		*password = NULL;
	}
	buf_free(&out);
	return ok;
}

bool
pg_err_is(const Error *err, const char *sqlstate)
{
	return strcmp(err->sqlstate, sqlstate) == 0;
}

bool
pg_array_item(Buf *b, const char *v, Error *err)
{
	if (buf_len(b) > 1)
		buf_add(b, ",", 1, err);
	if (v == NULL)
		return buf_add(b, "NULL", 4, err);
	buf_add(b, "\"", 1, err);
	for (const char *p = v; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			buf_add(b, "\\", 1, err);
		buf_add(b, p, 1, err);
	}
	return buf_add(b, "\"", 1, err);
}

struct PgCancel
{
	PGcancel *cancel;
};

PgCancel *
pg_cancel_new(PgConn *conn)
{
	PgCancel *c;

	if (conn == NULL || conn->conn == NULL)
		return NULL;
	c = malloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cancel = PQgetCancel(conn->conn);
	if (c->cancel == NULL)
	{
		free(c);
		return NULL;
	}
	return c;
}

void
pg_cancel_send(PgCancel *cancel)
{
	char errbuf[256];

	if (cancel != NULL)
		(void) PQcancel(cancel->cancel, errbuf, sizeof(errbuf));
}

void
pg_cancel_free(PgCancel *cancel)
{
	if (cancel == NULL)
		return;
	PQfreeCancel(cancel->cancel);
	free(cancel);
}

bool
pg_relation_exists(PgConn *conn, const char *qname, bool *exists, Error *err)
{
	const char *params[1] = {qname};
	PGresult *res;

	if (!pg_query(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1,
	              params, &res, err))
		return false;
	*exists = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}
