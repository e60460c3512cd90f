/*
 * share: the checks that let two tasks write one target table (share.h).
 * Reads the source's keys through a cursor, a batch at a time, and asks
 * the target which it holds; writes nothing on either side.
 */
#include "load/share.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "route/filter.h"
#include "state/state.h"

/* a batch of source keys as text[] literals, one per key column */
#define SHARE_ARRAY_MAX ((size_t) 256 << 20)

static bool
refuse(Error *err, ErrKind kind, const char *qname, const char *other,
       const char *why)
{
	err_set(err, kind, "target table %s is written by task \"%s\" too, and %s",
	        qname, other, why);
	err_detail(err, "two tasks may write one target table only when each "
	                "names its own rows with a row filter and no key is in "
	                "both (docs/merging.md)");
	return err_hint(err, "fix that, leave the table out with -T, or load it "
	                     "into a target of its own; pgtide never empties a "
	                     "table another task writes");
}

static bool rows_in_filter(PgConn *tgt, const char *qname, const char *filter,
                           int64_t *n, Error *err);

/*
 * The other task's stream deletes only the rows its filter holds for on
 * the target: that filter must read the target table (a task that renamed
 * or removed its columns cannot share it).
 */
static bool
filter_on_target(PgConn *tgt, const char *qname, const StateSharer *sh,
                 Error *err)
{
	Error why = ERR_INIT;
	int64_t n;
	char text[ERR_MSG_MAX + 64];

	if (rows_in_filter(tgt, qname, sh->row_filter, &n, &why))
		return true;
	if (why.retryable || !pg_ok(tgt))
	{
		*err = why;
		return false;
	}
	snprintf(text, sizeof(text),
	         "that task's row filter cannot be read on the target table "
	         "(%.300s)",
	         why.message);
	return refuse(err, ERR_TARGET, qname, sh->task, text);
}

/* The other tasks' settings, as they recorded them. */
static bool
check_sharers(PgConn *tgt, const TaskConfig *cfg, const char *qname,
              const char *filter, Error *err)
{
	State st;
	StateSharer *sh = NULL;
	int n = 0;
	bool exists, ok;
	char why[256];

	if (!state_attach(&st, tgt, cfg->state_schema, cfg->task, &exists, err) ||
	    (exists && !state_table_sharers(&st, qname, &sh, &n, err)))
		return false;
	ok = n > 0;
	if (!ok)
		return err_set(err, ERR_INTERNAL, "no other task writes %s", qname);
	if (filter == NULL)
		ok = refuse(err, ERR_CONFIG, qname, sh[0].task,
		            "this task has no row filter on it");
	else if (cfg->on_conflict != ON_CONFLICT_STOP)
	{
		snprintf(why, sizeof(why),
		         "with on_conflict %s this task would %s a key the other "
		         "wrote, silently",
		         config_on_conflict_name(cfg->on_conflict),
		         cfg->on_conflict == ON_CONFLICT_SKIP ? "skip" : "overwrite");
		ok = refuse(err, ERR_CONFIG, qname, sh[0].task, why);
	}
	for (int i = 0; ok && i < n; i++)
		if (sh[i].row_filter == NULL)
			ok = refuse(err, ERR_TARGET, qname, sh[i].task,
			            "that task loads every row of it (it has no row "
			            "filter on it)");
		else if (sh[i].on_conflict == NULL ||
		         strcmp(sh[i].on_conflict, "stop") != 0)
		{
			snprintf(why, sizeof(why),
			         "that task runs with on_conflict %s: it would take a "
			         "key of this task's for its own, silently",
			         sh[i].on_conflict ? sh[i].on_conflict
			                           : "unrecorded (an older pgtide)");
			ok = refuse(err, ERR_TARGET, qname, sh[i].task, why);
		}
		else
			ok = filter_on_target(tgt, qname, &sh[i], err);
	state_sharers_free(sh, n);
	return ok;
}

/* The target table's primary key: a row per column, its quoted name and
 * its type; no row without a key. */
static bool
target_key(PgConn *tgt, const char *qname, PGresult **key, Error *err)
{
	const char *params[1] = {qname};

	return pg_query(tgt,
	                "SELECT quote_ident(a.attname),"
	                " format_type(a.atttypid, a.atttypmod)"
	                " FROM pg_catalog.pg_index i,"
	                " unnest(i.indkey) WITH ORDINALITY k(attnum, ord)"
	                " JOIN pg_catalog.pg_attribute a ON a.attnum = k.attnum"
	                " WHERE i.indrelid = $1::regclass AND i.indisprimary"
	                " AND a.attrelid = i.indrelid ORDER BY k.ord",
	                1, params, key, err);
}

/* How many target rows fall in this task's filter. */
static bool
rows_in_filter(PgConn *tgt, const char *qname, const char *filter, int64_t *n,
               Error *err)
{
	char *sql = NULL;
	char count[24];
	bool ok;

	if (asprintf(&sql, "SELECT count(*) FROM ONLY %s WHERE (%s\n)", qname,
	             filter) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_query_value(tgt, sql, 0, NULL, count, sizeof(count), err);
	free(sql);
	if (ok)
		*n = strtoll(count, NULL, 10);
	return ok;
}

/*
 * Asks the target which of a batch of source keys (one text[] per key
 * column) it holds: adds their number to *found and keeps the first.
 */
static bool
probe(PgConn *tgt, const char *qname, const PGresult *key,
      const char *const *arrays, int64_t *found, char *first, size_t cap,
      Error *err)
{
	Buf sql = BUF_INIT(64 * 1024);
	PGresult *res;
	int nkey = PQntuples(key);
	bool ok;

	buf_add_str(&sql, "SELECT count(*), min(ROW(", err);
	for (int k = 0; k < nkey; k++)
		buf_printf(&sql, err, "%st.%s", k ? ", " : "", PQgetvalue(key, k, 0));
	buf_printf(&sql, err, ")::text) FROM ONLY %s t JOIN unnest(", qname);
	for (int k = 0; k < nkey; k++)
		buf_printf(&sql, err, "%s$%d::text[]", k ? ", " : "", k + 1);
	buf_add_str(&sql, ") AS s(", err);
	for (int k = 0; k < nkey; k++)
		buf_printf(&sql, err, "%sk%d", k ? ", " : "", k);
	buf_add_str(&sql, ") ON ", err);
	for (int k = 0; k < nkey; k++)
		buf_printf(&sql, err, "%st.%s = s.k%d::%s", k ? " AND " : "",
		           PQgetvalue(key, k, 0), k, PQgetvalue(key, k, 1));
	ok = buf_check(&sql, err) &&
	     pg_query(tgt, buf_str(&sql), nkey, arrays, &res, err);
	buf_free(&sql);
	if (!ok)
		return false;
	*found += strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (first[0] == '\0' && !PQgetisnull(res, 0, 1))
		snprintf(first, cap, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return true;
}

/* The keys of the source rows the filter keeps that the target holds. */
static bool
keys_on_target(PgConn *src, PgConn *tgt, const CatTable *t, const char *qname,
               const char *filter, const PGresult *key, int64_t *found,
               char *first, size_t cap, Error *err)
{
	Buf sql = BUF_INIT(64 * 1024);
	int nkey = PQntuples(key);
	Buf *arrays = calloc((size_t) nkey, sizeof(Buf));
	const char **params = calloc((size_t) nkey, sizeof(char *));
	char fetch[64];
	bool ok, more = true;

	if (arrays == NULL || params == NULL)
	{
		free(arrays);
		free(params);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	buf_add_str(&sql, "DECLARE pgtide_share NO SCROLL CURSOR FOR SELECT ", err);
	for (int k = 0; k < nkey; k++)
		buf_printf(&sql, err, "%s%s::text", k ? ", " : "",
		           PQgetvalue(key, k, 0));
	buf_printf(&sql, err, " FROM ONLY %s WHERE (%s\n)", t->qname, filter);
	snprintf(fetch, sizeof(fetch), "FETCH %d FROM pgtide_share",
	         SHARE_KEYS_PER_PROBE);
	ok = buf_check(&sql, err) &&
	     pg_exec(src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err) &&
	     pg_exec(src, buf_str(&sql), err);
	while (ok && more)
	{
		PGresult *res;

		if (!pg_query(src, fetch, 0, NULL, &res, err))
		{
			ok = false;
			break;
		}
		more = PQntuples(res) == SHARE_KEYS_PER_PROBE;
		for (int k = 0; k < nkey; k++)
		{
			buf_init(&arrays[k], SHARE_ARRAY_MAX);
			ok = ok && buf_add_str(&arrays[k], "{", err);
			for (int r = 0; ok && r < PQntuples(res); r++)
				ok = pg_array_item(&arrays[k], PQgetvalue(res, r, k), err);
			ok = ok && buf_add_str(&arrays[k], "}", err);
			params[k] = buf_str(&arrays[k]);
		}
		ok = ok && (PQntuples(res) == 0 ||
		            probe(tgt, qname, key, params, found, first, cap, err));
		PQclear(res);
		for (int k = 0; k < nkey; k++)
			buf_free(&arrays[k]);
	}
	{
		Error ignored = ERR_INIT;

		pg_exec(src, "ROLLBACK", &ignored);
	}
	buf_free(&sql);
	free(arrays);
	free(params);
	return ok;
}

bool
share_check(PgConn *src, PgConn *tgt, const TaskConfig *cfg, const CatTable *t,
            const char *tgt_qname, Error *err)
{
	const char *filter = filter_own(cfg, t->schema, t->name);
	PGresult *key = NULL;
	int64_t n = 0;
	char first[256] = "";
	bool ok;

	if (!check_sharers(tgt, cfg, tgt_qname, filter, err))
		return false;
	for (int c = 0; c < t->ncols; c++)
		if (t->cols[c].tgt_name != NULL || t->nremoved > 0)
		{
			err_set(err, ERR_CONFIG,
			        "target table %s is written by another task too, and "
			        "this task renames or removes columns of %s",
			        tgt_qname, t->qname);
			return err_hint(err, "a shared table is read through each "
			                     "task's filter on both sides: load it "
			                     "under the source's column names");
		}
	ok = target_key(tgt, tgt_qname, &key, err);
	if (ok && PQntuples(key) == 0)
	{
		err_set(err, ERR_TARGET,
		        "target table %s is written by another task too, and has no "
		        "primary key",
		        tgt_qname);
		err_hint(err, "without one, no key can say whose a row is: give it "
		              "a primary key on the target");
		ok = false;
	}
	ok = ok && rows_in_filter(tgt, tgt_qname, filter, &n, err);
	if (ok && n > 0)
	{
		err_set(err, ERR_TARGET,
		        "%lld rows of target table %s, which another task writes, "
		        "fall in this task's row filter on %s",
		        (long long) n, tgt_qname, t->qname);
		err_detail(err, "filter: %s", filter);
		err_hint(err, "the filters of the tasks sharing a table must keep "
		              "rows apart: narrow this one, or empty those rows if "
		              "they are this task's from an earlier run");
		ok = false;
	}
	ok = ok && keys_on_target(src, tgt, t, tgt_qname, filter, key, &n, first,
	                          sizeof(first), err);
	if (ok && n > 0)
	{
		err_set(err, ERR_TARGET,
		        "%lld keys of this task's rows of %s are on target table %s "
		        "already, which another task writes (the first: %s)",
		        (long long) n, t->qname, tgt_qname, first);
		err_hint(err, "the tasks sharing a table must hold different keys: "
		              "give the rows of each source keys of their own (a "
		              "range, or a key column that names the source)");
		ok = false;
	}
	PQclear(key);
	return ok;
}

bool
share_find(PgConn *tgt, const TaskConfig *cfg, const char *schema,
           const char *name, const char *tgt_qname, bool *shared,
           const char **filter, Error *err)
{
	State st;
	StateSharer *sh = NULL;
	int n = 0;
	bool exists;

	*shared = false;
	*filter = filter_own(cfg, schema, name);
	if (!state_attach(&st, tgt, cfg->state_schema, cfg->task, &exists, err) ||
	    (exists && !state_table_sharers(&st, tgt_qname, &sh, &n, err)))
		return false;
	state_sharers_free(sh, n);
	*shared = n > 0;
	return true;
}
