/*
 * relcols: the source's catalog and rows for a schema change the target
 * follows (see relcols.h). It must never write on the source.
 */
#include "cdc/relcols.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "pg/pg.h"

/* A cursor's SQL around the caller's select. */
#define RELCOLS_CURSOR_SQL_MAX ((size_t) 1 << 20)

struct RelCols
{
	char *uri;
	PgConn *conn; /* NULL until the first question */
};

/*
 * attmissingval is an anyarray of one element: its text, read as text[],
 * gives the element's text, except for array columns (an array of arrays),
 * whose existing rows are then read instead ('u'). A default without a
 * missing value means the table was rewritten since the column came (a
 * volatile default, a type change, VACUUM FULL): its rows hold the values,
 * and no catalog says which, so they are read too. Sources before 11 have
 * no missing values at all.
 */
#define RELCOLS_SQL                                                            \
	"SELECT format_type(u.oid, u.typmod),"                                     \
	" CASE WHEN %s AND t.typcategory <> 'A'"                                   \
	"  THEN (%s::text::text[])[1] END,"                                        \
	" concat(CASE WHEN a.attnum IS NULL THEN 'g' END,"                         \
	"  CASE WHEN %s AND t.typcategory <> 'A' THEN 'm'"                         \
	"   WHEN %s OR d.adbin IS NOT NULL THEN 'u' END,"                          \
	"  CASE WHEN d.adbin IS NOT NULL THEN 'd' END,"                            \
	"  CASE WHEN a.attnotnull THEN 'n' END),"                                  \
	" pg_get_expr(d.adbin, d.adrelid)"                                         \
	" FROM unnest($2::text[], $3::oid[], $4::int[]) WITH ORDINALITY"           \
	"  u(name, oid, typmod, i)"                                                \
	" LEFT JOIN pg_attribute a ON a.attrelid = $1::oid"                        \
	"  AND a.attname = u.name AND NOT a.attisdropped AND a.atttypid = u.oid"   \
	" LEFT JOIN pg_type t ON t.oid = a.atttypid"                               \
	" LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum" \
	" ORDER BY u.i"

RelCols *
relcols_new(const char *source_uri)
{
	RelCols *rc = calloc(1, sizeof(RelCols));

	if (rc == NULL)
		return NULL;
	rc->uri = strdup(source_uri);
	if (rc->uri == NULL)
	{
		free(rc);
		return NULL;
	}
	return rc;
}

void
relcols_free(RelCols *rc)
{
	if (rc == NULL)
		return;
	pg_close(rc->conn);
	free(rc->uri);
	free(rc);
}

void
relcols_facts_free(RelColFact *f, int n)
{
	for (int i = 0; f != NULL && i < n; i++)
	{
		free(f[i].type);
		free(f[i].missing);
		free(f[i].flags);
		free(f[i].def);
	}
	free(f);
}

static bool
session(RelCols *rc, Error *err)
{
	if (rc->conn != NULL)
		return true;
	if (pg_connect(rc->uri, ERR_SOURCE, PG_CONN_SQL, "pgtide columns",
	               PG_RECONNECT_MS, &rc->conn, err) &&
	    pg_keep_session(rc->conn, "SET default_transaction_read_only = on",
	                    PG_RECONNECT_MS, err))
		return true;
	pg_close(rc->conn);
	rc->conn = NULL;
	return false;
}

bool
relcols_describe(RelCols *rc, uint32_t relid, const char *names,
                 const char *oids, const char *typmods, int ncols,
                 RelColFact **out, Error *err)
{
	char relid_text[16], sql[2048];
	const char *params[4] = {relid_text, names, oids, typmods};
	const char *has;
	PGresult *res;
	RelColFact *f;
	bool oom = false;

	*out = NULL;
	if (!session(rc, err))
		return err_prefix(err, "reading the source's columns: ");
	has = pg_server_version(rc->conn) >= 110000 ? "a.atthasmissing" : "false";
	snprintf(relid_text, sizeof(relid_text), "%u", relid);
	snprintf(sql, sizeof(sql), RELCOLS_SQL, has,
	         strcmp(has, "false") == 0 ? "NULL" : "a.attmissingval", has, has);
	if (!pg_query(rc->conn, sql, 4, params, &res, err))
		return err_prefix(
		    err, "reading the source's columns of relation %u: ", relid);
	if (PQntuples(res) != ncols)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL,
		               "the source described %d columns of relation %u, not "
		               "%d",
		               PQntuples(res), relid, ncols);
	}
	f = calloc((size_t) ncols + 1, sizeof(RelColFact));
	for (int i = 0; f != NULL && i < ncols; i++)
	{
		const char *v[4];

		for (int c = 0; c < 4; c++)
			v[c] = PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
		f[i].type = strdup(v[0]);
		f[i].missing = v[1] ? strdup(v[1]) : NULL;
		f[i].flags = strdup(v[2]);
		f[i].def = v[3] ? strdup(v[3]) : NULL;
		oom |= !f[i].type || !f[i].flags || (v[1] && !f[i].missing) ||
		       (v[3] && !f[i].def);
	}
	PQclear(res);
	if (f == NULL || oom)
	{
		relcols_facts_free(f, ncols);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*out = f;
	return true;
}

bool
relcols_rows(RelCols *rc, const char *select, int batch, RelColsRowsFn each,
             void *ctx, Error *err)
{
	Buf sql = BUF_INIT(RELCOLS_CURSOR_SQL_MAX);
	char fetch[64];
	bool ok, more = true;

	if (!session(rc, err))
		return err_prefix(err, "reading the source's rows: ");
	buf_printf(&sql, err, "DECLARE pgtide_rows NO SCROLL CURSOR FOR %s",
	           select);
	snprintf(fetch, sizeof(fetch), "FETCH %d FROM pgtide_rows", batch);
	ok = buf_check(&sql, err) && pg_exec(rc->conn, "BEGIN", err) &&
	     pg_exec(rc->conn, buf_str(&sql), err);
	while (ok && more)
	{
		PGresult *res;

		ok = pg_query(rc->conn, fetch, 0, NULL, &res, err);
		if (!ok)
			break;
		more = PQntuples(res) == batch;
		ok = PQntuples(res) == 0 || each(res, ctx, err);
		PQclear(res);
	}
	if (ok)
		ok = pg_exec(rc->conn, "COMMIT", err);
	else
	{
		Error ignored = ERR_INIT;

		pg_exec(rc->conn, "ROLLBACK", &ignored);
	}
	buf_free(&sql);
	return ok;
}

bool
relcols_query(RelCols *rc, const char *sql, int n, const char *const *vals,
              PGresult **out, Error *err)
{
	*out = NULL;
	if (!session(rc, err))
		return err_prefix(err, "evaluating a row filter on the source: ");
	return pg_query(rc->conn, sql, n, vals, out, err);
}
