/*
 * insert_only: the state of the task's keyless tables, streamed for their
 * inserts only: their baselines and whether they diverged. Reading the
 * source's statistics is load/insert_only's; this file only keeps what it
 * found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "state/state_int.h"

/* arrays of names and numbers for one statement: room for many tables */
#define INSERT_ONLY_ARRAY_MAX ((size_t) 64 << 20)

bool
state_insert_only_save(const State *s, const char *publication,
                       const StateInsertOnly *t, int n, Error *err)
{
	Buf schemas = BUF_INIT(INSERT_ONLY_ARRAY_MAX);
	Buf names = BUF_INIT(INSERT_ONLY_ARRAY_MAX);
	Buf nums = BUF_INIT(INSERT_ONLY_ARRAY_MAX);
	const char *params[5];
	bool ok;

	buf_add_str(&schemas, "{", NULL);
	buf_add_str(&names, "{", NULL);
	buf_add_str(&nums, "{", NULL);
	for (int i = 0; i < n; i++)
	{
		pg_array_item(&schemas, t[i].src_schema, NULL);
		pg_array_item(&names, t[i].src_name, NULL);
		buf_printf(&nums, NULL, "%s{%u,%lld}", i ? "," : "", t[i].relid,
		           (long long) t[i].baseline);
	}
	buf_add_str(&schemas, "}", NULL);
	buf_add_str(&names, "}", NULL);
	buf_add_str(&nums, "}", NULL);
	ok = buf_check(&schemas, err) && buf_check(&names, err) &&
	     buf_check(&nums, err);
	if (ok)
	{
		params[0] = s->task;
		params[1] = publication;
		params[2] = buf_str(&schemas);
		params[3] = buf_str(&names);
		/* an empty bigint[][] is '{}' */
		params[4] = n > 0 ? buf_str(&nums) : "{}";
		ok = state_run(
		    s,
		    "WITH gone AS (DELETE FROM @S.insert_only WHERE task = $1),"
		    " added AS (INSERT INTO @S.insert_only"
		    "  (task, src_schema, src_name, relid, baseline)"
		    "  SELECT $1, ($3::text[])[i], ($4::text[])[i],"
		    "   ($5::bigint[])[i][1]::oid, ($5::bigint[])[i][2]"
		    "  FROM generate_subscripts($3::text[], 1) AS i)"
		    " UPDATE @S.task SET insert_publication = $2, updated_at = now()"
		    " WHERE task = $1",
		    5, params, NULL, err);
	}
	buf_free(&schemas);
	buf_free(&names);
	buf_free(&nums);
	return ok;
}

bool
state_insert_only_load(const State *s, StateInsertOnly **out, int *n,
                       Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	StateInsertOnly *t;
	bool oom = false;

	*out = NULL;
	*n = 0;
	if (!state_run(s,
	               "SELECT src_schema, src_name, relid, baseline,"
	               " coalesce(diverged_at::text, ''), coalesce(reason, '')"
	               " FROM @S.insert_only WHERE task = $1 ORDER BY 1, 2",
	               1, params, &res, err))
		return false;
	t = calloc((size_t) PQntuples(res) + 1, sizeof(StateInsertOnly));
	if (t == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		t[i].src_schema = state_dup(res, i, 0, &oom);
		t[i].src_name = state_dup(res, i, 1, &oom);
		t[i].relid = (uint32_t) strtoul(PQgetvalue(res, i, 2), NULL, 10);
		t[i].baseline = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		snprintf(t[i].diverged_at, sizeof(t[i].diverged_at), "%s",
		         PQgetvalue(res, i, 4));
		t[i].diverged = t[i].diverged_at[0] != '\0';
		snprintf(t[i].reason, sizeof(t[i].reason), "%s", PQgetvalue(res, i, 5));
	}
	*n = PQntuples(res);
	PQclear(res);
	if (oom)
	{
		state_insert_only_free(t, *n);
		*n = 0;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*out = t;
	return true;
}

void
state_insert_only_free(StateInsertOnly *t, int n)
{
	if (t == NULL)
		return;
	for (int i = 0; i < n; i++)
	{
		free(t[i].src_schema);
		free(t[i].src_name);
	}
	free(t);
}

bool
state_insert_only_diverged(const State *s, const char *src_schema,
                           const char *src_name, const char *reason, Error *err)
{
	const char *params[4] = {s->task, src_schema, src_name, reason};

	return state_run(s,
	                 "UPDATE @S.insert_only SET diverged_at = now(),"
	                 " reason = $4 WHERE task = $1 AND src_schema = $2"
	                 " AND src_name = $3 AND diverged_at IS NULL",
	                 4, params, NULL, err);
}
