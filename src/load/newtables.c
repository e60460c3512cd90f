/*
 * newtables: the selected tables the task does not move (see newtables.h).
 * It must never write on either side.
 */
#include "load/newtables.h"

#include <stdlib.h>
#include <string.h>

#include "pg/catalog.h"

void
newtables_free(NewTables *nt)
{
	for (int i = 0; i < nt->n; i++)
		free(nt->names[i]);
	free(nt->names);
	nt->names = NULL;
	nt->n = 0;
}

static bool
known(const StateTable *t, int n, const CatTable *c)
{
	for (int i = 0; i < n; i++)
		if (strcmp(t[i].src_schema, c->schema) == 0 &&
		    strcmp(t[i].src_name, c->name) == 0)
			return true;
	return false;
}

bool
newtables_signature(PgConn *src, char *buf, size_t len, Error *err)
{
	return pg_query_value(
	    src,
	    "SELECT count(*) || '/' || coalesce(max(oid::int8), 0)"
	    " || '/' || count(*) FILTER (WHERE relispartition)"
	    " || '/' || count(*) FILTER (WHERE relpersistence = 'u')"
	    " || '/' || count(*) FILTER (WHERE relreplident <> 'd')"
	    " || '/' || (SELECT count(*) FROM pg_index"
	    " WHERE indisprimary OR indisreplident)"
	    " FROM pg_class WHERE relkind IN ('r', 'p', 'f')",
	    0, NULL, buf, len, err);
}

bool
newtables_find(PgConn *src, const State *st, const TaskConfig *cfg,
               NewTables *out, Error *err)
{
	Catalog *cat = NULL;
	StateTable *tables = NULL;
	int ntables = 0;
	bool ok;

	memset(out, 0, sizeof(*out));
	ok = state_tables_load(st, &tables, &ntables, err) &&
	     catalog_read(src, cfg->state_schema, &cat, err) &&
	     catalog_select(cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err);
	/* a task without tables follows a slot the user named: nothing to miss */
	for (int i = 0; ok && ntables > 0 && i < cat->ntables; i++)
	{
		const CatTable *c = &cat->tables[i];

		if (!c->selected || known(tables, ntables, c))
			continue;
		if (out->n % 16 == 0)
		{
			char **grown =
			    realloc(out->names, sizeof(char *) * (size_t) (out->n + 16));

			if (grown == NULL)
			{
				ok = err_set(err, ERR_INTERNAL, "out of memory");
				break;
			}
			out->names = grown;
		}
		out->names[out->n] = strdup(c->qname);
		if (out->names[out->n++] == NULL)
			ok = err_set(err, ERR_INTERNAL, "out of memory");
	}
	catalog_free(cat);
	state_tables_free(tables, ntables);
	if (!ok)
		newtables_free(out);
	return ok;
}
