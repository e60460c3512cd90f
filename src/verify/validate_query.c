/*
 * validate_query: validate's sessions and how queries run on them. A
 * session opens with the settings under which both servers render values
 * alike; a query is sent asynchronously and waited for with poll(), so
 * that a stop request cancels it at once; its result is read whole or row
 * by row; key lists travel as text[] literals. The SQL is the callers':
 * this file knows no tables and decides nothing about what differs.
 */
#include "verify/validate_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "pg/pg.h"

/*
 * Session settings under which both servers render every value alike:
 * dates and times in ISO form and UTC, all float digits (shortest exact
 * from PostgreSQL 12), hex bytea, C money, and pg_catalog alone on the
 * search path so that no user function shadows the ones used here and
 * regclass-like values print qualified. No JIT: per-range queries are
 * short and compiling each one costs more than it saves.
 */
bool
query_open(const VRun *r, ErrKind side, bool read_only, PgConn **out,
           Error *err)
{
	const char *uri =
	    side == ERR_SOURCE ? r->cfg->source_uri : r->cfg->target_uri;
	char setup[512];

	*out = NULL;
	if (!pg_connect(uri, side, PG_CONN_SQL, "pgtide validate", 5000, out, err))
		return false;
	snprintf(setup, sizeof(setup),
	         "SET search_path = pg_catalog; SET DateStyle = 'ISO, YMD';"
	         " SET IntervalStyle = postgres; SET TimeZone = 'UTC';"
	         " SET extra_float_digits = 3; SET bytea_output = hex;"
	         " SET lc_monetary = 'C'%s%s",
	         pg_server_version(*out) >= 110000 ? "; SET jit = off" : "",
	         read_only ? "; SET default_transaction_read_only = on" : "");
	/* kept: a replaced connection gets the same settings */
	if (!pg_keep_session(*out, setup, PG_RECONNECT_MS, err))
	{
		pg_close(*out);
		*out = NULL;
		return false;
	}
	return true;
}

bool
query_send(PgConn *c, const char *sql, int nparams, const char *const *params,
           bool single_row, Error *err)
{
	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!PQsendQueryParams(pg_raw(c), sql, nparams, NULL, params, NULL, NULL,
	                       0))
		return pg_error(c, NULL, err);
	if (single_row && !PQsetSingleRowMode(pg_raw(c)))
		return err_set(err, ERR_INTERNAL, "could not enter single-row mode");
	return true;
}

/*
 * The next result of c's query (a row in single-row mode, the final result,
 * or NULL once the query is over). Waits with poll() so that a stop request
 * cancels the query instead of waiting for it. On failure nothing is
 * returned and the connection must be closed.
 */
bool
query_next(const VRun *r, PgConn *c, PGresult **out, Error *err)
{
	PGconn *raw = pg_raw(c);
	ExecStatusType st;

	*out = NULL;
	while (PQisBusy(raw))
	{
		struct pollfd p = {.fd = PQsocket(raw), .events = POLLIN};

		if (run_stopping(r))
		{
			PGcancel *cancel = PQgetCancel(raw);
			char buf[256];

			if (cancel != NULL)
			{
				PQcancel(cancel, buf, sizeof(buf));
				PQfreeCancel(cancel);
			}
			return err_set(err, ERR_INTERRUPTED, "interrupted");
		}
		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			return err_set(err, pg_side(c), "could not wait for the server: %s",
			               strerror(errno));
		if (!PQconsumeInput(raw))
			return pg_error(c, NULL, err);
	}
	*out = PQgetResult(raw);
	if (*out == NULL)
		return true;
	st = PQresultStatus(*out);
	if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE &&
	    st != PGRES_COMMAND_OK)
	{
		pg_error(c, *out, err);
		PQclear(*out);
		*out = NULL;
		return false;
	}
	return true;
}

/* The one result of a query sent without single-row mode. */
bool
query_result(const VRun *r, PgConn *c, PGresult **out, Error *err)
{
	PGresult *res = NULL, *next = NULL;

	*out = NULL;
	if (!query_next(r, c, &res, err))
		return false;
	if (res == NULL)
		return err_set(err, ERR_INTERNAL, "a query returned no result");
	for (;;)
	{
		if (!query_next(r, c, &next, err))
		{
			PQclear(res);
			return false;
		}
		if (next == NULL)
			break;
		PQclear(next);
	}
	*out = res;
	return true;
}

bool
query_stream_next(VStream *s, Error *err)
{
	PQclear(s->row);
	s->row = NULL;
	while (!s->end)
	{
		PGresult *res;

		if (!query_next(s->r, s->c, &res, err))
			return false;
		if (res == NULL)
		{
			s->end = true;
			break;
		}
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
		{
			s->row = res;
			return true;
		}
		PQclear(res); /* the empty final result */
	}
	return true;
}

void
query_stream_close(VStream *s)
{
	PQclear(s->row);
	s->row = NULL;
}

/*
 * Copies the first nk columns of every row of res into *out (row-major,
 * *n rows, freed with strv_free). On failure *out is NULL and *n 0.
 */
static bool
rows_copy(const PGresult *res, int nk, char ***out, int *n, Error *err)
{
	int rows = PQntuples(res);

	*n = 0;
	*out = calloc((size_t) rows * (size_t) nk + 1, sizeof(char *));
	if (*out == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < rows; i++)
		for (int k = 0; k < nk; k++)
			if (((*out)[i * nk + k] = strdup(PQgetvalue(res, i, k))) == NULL)
			{
				strv_free(*out, rows * nk);
				*out = NULL;
				return err_set(err, ERR_INTERNAL, "out of memory");
			}
	*n = rows;
	return true;
}

bool
query_rows(const VRun *r, PgConn *c, const char *sql, int nparams,
           const char *const *params, int nk, char ***out, int *n, Error *err)
{
	PGresult *res = NULL;
	bool ok;

	*out = NULL;
	*n = 0;
	if (!query_send(c, sql, nparams, params, false, err) ||
	    !query_result(r, c, &res, err))
		return false;
	ok = rows_copy(res, nk, out, n, err);
	PQclear(res);
	return ok;
}
