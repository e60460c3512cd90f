/*
 * dropped: the task's tables dropped on the source since the load. The
 * change stream carries no DROP TABLE, so the target still holds each one
 * and its rows, and validate reports it as not on the source. Cutover makes
 * the user decide (cutover.dropped_tables): refuse, before the fence and
 * naming them; drop them on the target too, under the fence; or keep them.
 * Either way the task then forgets them, so that the fence and the final
 * validation look only at what the source still has. It never drops a
 * target table unless told to, and never with CASCADE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cutover/cutover_int.h"

static void
names_of(const CutoverTarget *t, char *buf, size_t cap)
{
	for (int i = 0; i < t->ndropped && i <= CUTOVER_NAMES_SHOWN; i++)
	{
		/* two names of at most 63 bytes, a dot */
		char name[130];

		snprintf(name, sizeof(name), "%s.%s", t->dropped[i].src_schema,
		         t->dropped[i].src_name);
		cutover_name_list(buf, cap, i, t->ndropped, name);
	}
}

/*
 * A table gone by its name may have been renamed: then its rows are still
 * on the source, and the stream stopped at its first change since (a table
 * the task does not know). Its oid says which; a table an older pgtide
 * registered without one cannot be told apart, and is not dropped.
 */
static bool
not_renamed(Cutover *c, PgConn *src, const StateTable *t, Error *err)
{
	char relid[16];
	const char *params[1] = {relid};
	PGresult *res;
	char now[300];

	if (t->src_relid == 0)
	{
		if (c->cfg->cutover_dropped != DROPPED_DROP)
			return true;
		err_set(err, ERR_CONFIG,
		        "table %s.%s is gone from the source, and the task's state "
		        "cannot tell whether it was dropped or renamed",
		        t->src_schema, t->src_name);
		return err_hint(err, "a table renamed on the source still holds its "
		                     "rows: drop the target's table by hand once you "
		                     "know, or use --dropped-tables keep");
	}
	snprintf(relid, sizeof(relid), "%u", t->src_relid);
	if (!pg_query(
	        src,
	        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	        " WHERE c.oid = $1::oid",
	        1, params, &res, err))
		return false;
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		return true;
	}
	snprintf(now, sizeof(now), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	err_set(err, ERR_CONFIG,
	        "table %s.%s was renamed on the source since the load: it is %s "
	        "now",
	        t->src_schema, t->src_name, now);
	err_detail(err, "the change stream follows a renamed table (its target "
	                "table and the task's state take the new name) at its "
	                "first change under that name, and has seen none yet, "
	                "or stopped there because the task's rules name it");
	return err_hint(err, "write one row of it on the source (an UPDATE that "
	                     "sets a column to itself will do) and run cutover "
	                     "again once the stream has applied it; if the "
	                     "stream stopped on it, its error says what to do");
}

/* Takes the table at t->tables[i] out of the list the fence works on. */
static void
drop_from_list(CutoverTarget *t, int i)
{
	free(t->tables[i]);
	t->tables[i] = t->tables[--t->ntables];
	t->tables[t->ntables] = NULL;
}

bool
dropped_find(Cutover *c, CutoverTarget *t, Error *err)
{
	StateTable *tables = NULL;
	int n = 0;
	char names[512];
	Buf names_array = BUF_INIT(64 * 1024 * 1024);
	const char *params[1];
	PGresult *res;
	bool ok = false;

	if (!state_tables_load(&t->state, &tables, &n, err))
		return false;
	t->dropped = calloc((size_t) n + 1, sizeof(StateTable));
	if (t->dropped == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	/* one question for every table: a task may have thousands */
	if (!buf_add_str(&names_array, "{", err))
		goto out;
	for (int i = 0; i < n; i++)
	{
		char *qname = pg_qualify(tables[i].src_schema, tables[i].src_name);
		bool added = qname != NULL && pg_array_item(&names_array, qname, err);

		free(qname);
		if (!added)
		{
			if (qname == NULL)
				err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	if (!buf_add_str(&names_array, "}", err))
		goto out;
	params[0] = buf_str(&names_array);
	if (!pg_query(t->src,
	              "SELECT i - 1 FROM unnest($1::text[]) WITH ORDINALITY"
	              " AS u(q, i) WHERE to_regclass(q) IS NULL ORDER BY i",
	              1, params, &res, err))
		goto out;
	for (int r = 0; r < PQntuples(res); r++)
	{
		int i = (int) strtol(PQgetvalue(res, r, 0), NULL, 10);
		char *qname = pg_qualify(tables[i].src_schema, tables[i].src_name);

		if (qname == NULL || !not_renamed(c, t->src, &tables[i], err))
		{
			if (qname == NULL)
				err_set(err, ERR_INTERNAL, "out of memory");
			free(qname);
			PQclear(res);
			goto out;
		}
		for (int k = 0; k < t->ntables; k++)
			if (strcmp(t->tables[k], qname) == 0)
			{
				drop_from_list(t, k);
				break;
			}
		free(qname);
		/* moved: the entry's strings now belong to t->dropped */
		t->dropped[t->ndropped++] = tables[i];
		memset(&tables[i], 0, sizeof(tables[i]));
	}
	PQclear(res);
	ok = true;
	if (t->ndropped == 0 || t->cfg->cutover_dropped != DROPPED_REFUSE)
		goto out;
	names_of(t, names, sizeof(names));
	err_set(err, ERR_CONFIG,
	        "%d table%s of the task %s dropped on the source since the load: "
	        "%s",
	        t->ndropped, t->ndropped == 1 ? "" : "s",
	        t->ndropped == 1 ? "was" : "were", names);
	err_detail(err, "the change stream carries no DROP TABLE: the target "
	                "still holds them and their rows, and validate reports "
	                "them as not on the source");
	err_hint(err, "say what the target does with them: --dropped-tables "
	              "drop (cutover.dropped_tables) drops them on the target "
	              "while the source is fenced, as on the source; "
	              "--dropped-tables keep leaves them and their rows there");
	ok = false;
out:
	buf_free(&names_array);
	state_tables_free(tables, n);
	return ok;
}

bool
dropped_settle(Cutover *c, CutoverTarget *t, Error *err)
{
	bool drop = t->cfg->cutover_dropped == DROPPED_DROP;
	char names[512];
	bool ok = true;

	if (t->ndropped == 0)
		return true;
	if (!pg_exec(t->tgt, "BEGIN", err))
		return false;
	for (int i = 0; ok && i < t->ndropped; i++)
	{
		const StateTable *d = &t->dropped[i];
		char sql[1200];

		snprintf(sql, sizeof(sql), "DROP TABLE %s", d->tgt_qname);
		ok = (!drop || pg_exec(t->tgt, sql, err)) &&
		     state_table_forget(&t->state, d->src_schema, d->src_name, err);
		if (!ok)
			err_prefix(err,
			           "table %s.%s, dropped on the source: ", d->src_schema,
			           d->src_name);
	}
	if (!ok)
	{
		Error ignored = ERR_INIT;

		pg_exec(t->tgt, "ROLLBACK", &ignored);
		return false;
	}
	if (!pg_exec(t->tgt, "COMMIT", err))
		return false;
	names_of(t, names, sizeof(names));
	log_info("cutover: %d table%s dropped on the source since the load %s: "
	         "%s",
	         t->ndropped, t->ndropped == 1 ? "" : "s",
	         drop ? "dropped on the target too" : "kept on the target", names);
	cutover_step_done(c, t, "%d tables dropped on the source: %s on the target",
	                  t->ndropped, drop ? "dropped" : "kept");
	return true;
}
