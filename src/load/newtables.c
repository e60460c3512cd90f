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

const StateTable *
newtables_known(const StateTable *t, int n, const CatTable *c)
{
	for (int i = 0; i < n; i++)
		if (t[i].src_relid != 0 ? t[i].src_relid == c->relid
		                        : strcmp(t[i].src_schema, c->schema) == 0 &&
		                              strcmp(t[i].src_name, c->name) == 0)
			return &t[i];
	return NULL;
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

/*
 * The patterns that say what the task moves: those its follower recorded,
 * plus the command's own exclusions; else, before any follower recorded
 * some, the command's. *inc and *exc borrow from sel and cfg; *exc is
 * owned (free it).
 */
static bool
task_patterns(const TaskConfig *cfg, const StateSelection *sel,
              char *const **inc, int *ninc, char ***exc, int *nexc, Error *err)
{
	int n = cfg->exclude.count + (sel->recorded ? sel->nexclude : 0);

	*inc = sel->recorded ? sel->include : cfg->include.items;
	*ninc = sel->recorded ? sel->ninclude : cfg->include.count;
	*exc = calloc((size_t) n + 1, sizeof(char *));
	if (*exc == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	*nexc = 0;
	for (int i = 0; sel->recorded && i < sel->nexclude; i++)
		(*exc)[(*nexc)++] = sel->exclude[i];
	for (int i = 0; i < cfg->exclude.count; i++)
		(*exc)[(*nexc)++] = cfg->exclude.items[i];
	return true;
}

bool
newtables_find(PgConn *src, const State *st, const TaskConfig *cfg,
               NewTables *out, Error *err)
{
	Catalog *cat = NULL;
	StateTable *tables = NULL;
	StateSelection sel;
	char *const *inc = NULL;
	char **exc = NULL;
	int ntables = 0, ninc = 0, nexc = 0;
	bool ok;

	memset(out, 0, sizeof(*out));
	memset(&sel, 0, sizeof(sel));
	ok = state_tables_load(st, &tables, &ntables, err) &&
	     state_selection_read(st, &sel, err) &&
	     task_patterns(cfg, &sel, &inc, &ninc, &exc, &nexc, err) &&
	     catalog_read(src, cfg->state_schema, &cat, err) &&
	     catalog_select_any(cat, inc, ninc, exc, nexc, err);
	/* a task without tables follows a slot the user named: nothing to miss */
	for (int i = 0; ok && ntables > 0 && i < cat->ntables; i++)
	{
		const CatTable *c = &cat->tables[i];

		if (!c->selected || newtables_known(tables, ntables, c) != NULL)
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
	state_selection_free(&sel);
	free(exc);
	if (!ok)
		newtables_free(out);
	return ok;
}
