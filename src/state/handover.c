/*
 * handover: the state of a key's rows moving between two targets (decision
 * 0045): the giving target's stream stages them here, on the taking
 * target, and the taking target's stream takes them. Never reads or writes
 * a task's tables: the streams do, with these statements.
 */
#include <stdlib.h>

#include "state/state_int.h"

bool
state_handover_staged(const State *s, const char *change, const char *key,
                      bool *staged, Error *err)
{
	const char *params[3] = {s->task, change, key};
	PGresult *res;

	if (!state_run(s,
	               "SELECT 1 FROM @S.handovers WHERE task = $1 AND change = $2"
	               " AND key = $3",
	               3, params, &res, err))
		return false;
	*staged = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

bool
state_handover_begin(const State *s, const char *change, const char *key,
                     const char *giver, const char *staged,
                     const char *loaded_after, Error *err)
{
	const char *params[6] = {s->task, change, key, giver, staged, loaded_after};

	return state_run(s,
	                 "INSERT INTO @S.handovers (task, change, key, giver,"
	                 " staged, loaded_after)"
	                 " VALUES ($1, $2, $3, $4, $5::text[], $6::text[])",
	                 6, params, NULL, err);
}

bool
state_handover_add_rows(const State *s, const char *change, const char *key,
                        const char *tbl, const char *cols, const char *rows,
                        Error *err)
{
	const char *params[6] = {s->task, change, key, tbl, cols, rows};

	return state_run(s,
	                 "INSERT INTO @S.handover_rows (task, change, key, tbl,"
	                 " cols, vals)"
	                 " SELECT $1, $2, $3, $4, $5::text[], r::text[]"
	                 " FROM unnest($6::text[]) AS r",
	                 6, params, NULL, err);
}

bool
state_handover_sql(const State *s, StateHandoverSql *out)
{
	out->find = state_sql(
	    s, "SELECT NULL::text, 'h', taken FROM @S.handovers h"
	       " WHERE task = $1 AND change = $2 AND key = $3"
	       " UNION ALL SELECT unnest(staged), 's', taken FROM @S.handovers"
	       " WHERE task = $1 AND change = $2 AND key = $3"
	       " UNION ALL SELECT unnest(loaded_after), 'a', taken"
	       " FROM @S.handovers WHERE task = $1 AND change = $2 AND key = $3");
	out->cols = state_sql(
	    s, "SELECT c FROM (SELECT cols FROM @S.handover_rows"
	       " WHERE task = $1 AND change = $2 AND key = $3 AND tbl = $4"
	       " LIMIT 1) AS r, unnest(r.cols) WITH ORDINALITY AS u(c, i)"
	       " ORDER BY i");
	out->rows = state_sql(s, "(SELECT vals FROM @S.handover_rows"
	                         " WHERE task = $1 AND change = $2 AND key = $3"
	                         " AND tbl = $4)");
	out->take = state_sql(s, "WITH gone AS (DELETE FROM @S.handover_rows"
	                         " WHERE task = $1 AND change = $2 AND key = $3)"
	                         " UPDATE @S.handovers SET taken = true"
	                         " WHERE task = $1 AND change = $2 AND key = $3");
	if (out->find != NULL && out->cols != NULL && out->rows != NULL &&
	    out->take != NULL)
		return true;
	state_handover_sql_free(out);
	return false;
}

void
state_handover_sql_free(StateHandoverSql *sql)
{
	free(sql->find);
	free(sql->cols);
	free(sql->rows);
	free(sql->take);
	sql->find = sql->cols = sql->rows = sql->take = NULL;
}
