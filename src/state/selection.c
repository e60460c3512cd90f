/*
 * selection: the table patterns the task's follower last ran with
 * (tables.include and tables.exclude, or a table-mapping file's), so that a
 * command run without them (status, cutover) knows which tables the task
 * means to move. Only this file reads or writes them.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "state/state_int.h"

/* the patterns of one list in one statement: room for generated rules */
#define SELECTION_ARRAY_MAX ((size_t) 64 << 20)

static bool
array_of(Buf *b, const StrList *l, Error *err)
{
	bool ok = buf_add_str(b, "{", err);

	for (int i = 0; ok && i < l->count; i++)
		ok = pg_array_item(b, l->items[i], err);
	return ok && buf_add_str(b, "}", err);
}

bool
state_selection_save(const State *s, const StrList *include,
                     const StrList *exclude, Error *err)
{
	Buf inc = BUF_INIT(SELECTION_ARRAY_MAX);
	Buf exc = BUF_INIT(SELECTION_ARRAY_MAX);
	const char *params[3];
	bool ok = array_of(&inc, include, err) && array_of(&exc, exclude, err);

	params[0] = s->task;
	params[1] = buf_str(&inc);
	params[2] = buf_str(&exc);
	ok = ok && state_run(s,
	                     "UPDATE @S.task SET selection_include = $2::text[],"
	                     " selection_exclude = $3::text[] WHERE task = $1",
	                     3, params, NULL, err);
	buf_free(&inc);
	buf_free(&exc);
	return ok;
}

/* The patterns of one column, into *items (*n of them). */
static bool
read_list(const State *s, const char *column, char ***items, int *n, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	bool oom = false;
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT unnest(%s) FROM @S.task WHERE task = $1",
	         column);
	if (!state_run(s, sql, 1, params, &res, err))
		return false;
	*n = PQntuples(res);
	*items = calloc((size_t) *n + 1, sizeof(char *));
	for (int i = 0; *items != NULL && i < *n; i++)
		(*items)[i] = state_dup(res, i, 0, &oom);
	PQclear(res);
	if (*items == NULL || oom)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

bool
state_selection_read(const State *s, StateSelection *out, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;

	memset(out, 0, sizeof(*out));
	if (!state_run(s,
	               "SELECT selection_include IS NOT NULL FROM @S.task"
	               " WHERE task = $1",
	               1, params, &res, err))
		return false;
	out->recorded = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!out->recorded)
		return true;
	if (read_list(s, "selection_include", &out->include, &out->ninclude, err) &&
	    read_list(s, "selection_exclude", &out->exclude, &out->nexclude, err))
		return true;
	state_selection_free(out);
	return false;
}

void
state_selection_free(StateSelection *sel)
{
	for (int i = 0; sel->include != NULL && i < sel->ninclude; i++)
		free(sel->include[i]);
	for (int i = 0; sel->exclude != NULL && i < sel->nexclude; i++)
		free(sel->exclude[i]);
	free(sel->include);
	free(sel->exclude);
	memset(sel, 0, sizeof(*sel));
}
