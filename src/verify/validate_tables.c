/*
 * validate_tables: which tables a run compares, as VTables: the task's
 * (source -> target, from its state on the target) or the tables the task
 * file selects on the source, narrowed by validate.tables; source tables
 * that feed one target table are one VTable. Owns a VTable's memory
 * (tables_free). Reads the catalog and the task's state; writes nothing.
 */
#include "verify/validate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/shards.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/filter.h"
#include "route/mapping.h"
#include "state/state.h"

/* "schema"."name" -> schema.name, for people; malloc'd. */
static char *
unquote_qname(const char *q)
{
	char *out = malloc(strlen(q) + 1);
	size_t n = 0;

	if (out == NULL)
		return NULL;
	for (const char *p = q; *p; p++)
	{
		if (*p == '"')
		{
			if (p[1] == '"')
				out[n++] = *++p;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

/*
 * Where a selected table lives on the target without the task's state: its
 * name after the task's renames (malloc'd). NULL with *oom, or with *oom
 * and err set when the rules fail.
 */
static char *
target_qname(const VRun *r, const CatTable *ct, bool *oom, Error *err)
{
	RenamedTable rt;
	char *out;

	if (rename_none(&r->renames))
		out = strdup(ct->qname);
	else if (!rename_table(&r->renames, ct->schema, ct->name, NULL, 0, NULL,
	                       &rt, err))
		out = NULL;
	else
	{
		out = rt.renamed ? pg_qualify(rt.schema, rt.name) : strdup(ct->qname);
		rename_table_free(&rt);
	}
	*oom |= out == NULL;
	return out;
}

static void
table_free(VTable *t)
{
	free(t->name);
	free(t->tgt_qname);
	free(t->tgt_name);
	free(t->src_schema);
	free(t->src_table);
	strv_free(t->srcs, t->nsrc);
	strv_free(t->src_names, t->nsrc);
	free((void *) (uintptr_t) t->src_filters);
	free(t->problem);
	free(t->src_from);
	free(t->tgt_from);
	free(t->src_where);
	free(t->hash_expr);
	free(t->row_expr);
	strv_free(t->key_names, t->nkeys);
	strv_free(t->key_idents, t->nkeys);
	strv_free(t->key_types, t->nkeys);
	free(t->key_list);
	free(t->key_text);
	strv_free(t->bounds, t->nbounds * t->nkeys);
	free(t->checked);
	result_free(&t->res, t->nkeys);
}

/* Frees n tables and the array itself; NULL is a no-op. */
void
tables_free(VTable *tables, int n)
{
	for (int i = 0; tables != NULL && i < n; i++)
		table_free(&tables[i]);
	free(tables);
}

/* True when the table at cat (or an ancestor) matches one of the patterns. */
static bool
lineage_matches(const Catalog *cat, int idx, const char *schema,
                const char *name, const TablePattern *pats, int n, bool *used)
{
	bool hit = false;

	for (int p = 0; p < n; p++)
		if (mapping_pattern_match(&pats[p], schema, name))
			hit = used[p] = true;
	for (int depth = 0; idx >= 0 && depth < 64; depth++)
	{
		const CatTable *t = &cat->tables[idx];

		for (int p = 0; p < n; p++)
			if (mapping_pattern_match(&pats[p], t->schema, t->name))
				hit = used[p] = true;
		idx = t->parent;
	}
	return hit;
}

void
tables_picks_free(VPick *p, int n)
{
	for (int i = 0; p != NULL && i < n; i++)
	{
		free(p[i].schema);
		free(p[i].name);
		free(p[i].tgt_qname);
	}
	free(p);
}

/*
 * The tables to compare: the task's (source -> target, from its state) when
 * the target holds them, else the source's tables that tables.include and
 * tables.exclude select, under the same names; then narrowed by
 * validate.tables.
 */
bool
tables_pick(VRun *r, PgConn *tgt, Catalog *cat, VPick **out, int *n,
            bool *from_state, Error *err)
{
	const TaskConfig *cfg = r->cfg;
	StateTable *st = NULL;
	int nst = 0;
	VPick *p = NULL;
	int np = 0;
	TablePattern *pats = NULL;
	bool *used = NULL;
	bool ok = false, oom = false;
	int npats = cfg->validate_tables.count;

	*out = NULL;
	*n = 0;
	*from_state = false;
	{
		State state;
		bool have = false;

		if (!state_attach(&state, tgt, cfg->state_schema, cfg->task, &have,
		                  err) ||
		    (have && !state_tables_load(&state, &st, &nst, err)))
			return false;
	}
	if (nst > 0)
	{
		*from_state = true;
		p = calloc((size_t) nst + 1, sizeof(VPick));
		for (int i = 0; p != NULL && i < nst; i++)
		{
			p[i].schema = strdup(st[i].src_schema);
			p[i].name = strdup(st[i].src_name);
			p[i].tgt_qname = strdup(st[i].tgt_qname);
			oom |= !p[i].schema || !p[i].name || !p[i].tgt_qname;
			p[i].cat = catalog_find(cat, st[i].src_schema, st[i].src_name);
			p[i].keep = true;
		}
		np = nst;
	}
	else
	{
		if (!catalog_select(cat, cfg->include.items, cfg->include.count,
		                    cfg->exclude.items, cfg->exclude.count, err))
			goto out;
		p = calloc((size_t) cat->ntables + 1, sizeof(VPick));
		for (int i = 0; p != NULL && i < cat->ntables; i++)
		{
			const CatTable *ct = &cat->tables[i];

			if (!ct->selected)
				continue;
			p[np].schema = strdup(ct->schema);
			p[np].name = strdup(ct->name);
			p[np].tgt_qname = target_qname(r, ct, &oom, err);
			oom |= !p[np].schema || !p[np].name || !p[np].tgt_qname;
			p[np].cat = i;
			p[np].keep = true;
			np++;
		}
	}
	if (p == NULL || oom)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (npats > 0)
	{
		pats = calloc((size_t) npats, sizeof(TablePattern));
		used = calloc((size_t) npats, sizeof(bool));
		if (pats == NULL || used == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		for (int i = 0; i < npats; i++)
			if (!mapping_parse_pattern(cfg->validate_tables.items[i], &pats[i],
			                           err))
			{
				for (int j = 0; j < i; j++)
					mapping_pattern_free(&pats[j]);
				npats = 0;
				goto out;
			}
		for (int i = 0; i < np; i++)
			p[i].keep = lineage_matches(cat, p[i].cat, p[i].schema, p[i].name,
			                            pats, npats, used);
		for (int i = 0; i < npats; i++)
			if (!used[i])
			{
				err_set(err, ERR_CONFIG,
				        "validate.tables pattern \"%s\" matches no table of "
				        "the task",
				        cfg->validate_tables.items[i]);
				err_hint(err,
				         "%s; patterns are schema.table with * and ? "
				         "wildcards, names are case-sensitive",
				         *from_state
				             ? "the task's tables are those in its state on "
				               "the target"
				             : "the tables are those tables.include and "
				               "tables.exclude select on the source");
				goto out;
			}
		/* a target table fed by several source tables is compared whole */
		for (int i = 0; i < np; i++)
			for (int j = 0; j < np && !p[i].keep; j++)
				if (p[j].keep && strcmp(p[i].tgt_qname, p[j].tgt_qname) == 0)
					p[i].keep = true;
	}
	ok = true;
out:
	for (int i = 0; i < npats; i++)
		mapping_pattern_free(&pats[i]);
	free(pats);
	free(used);
	state_tables_free(st, nst);
	if (!ok)
	{
		tables_picks_free(p, np);
		return false;
	}
	*out = p;
	*n = np;
	return true;
}

/* Groups the kept picks by target table into r->tables. */
bool
tables_build(VRun *r, const Catalog *cat, VPick *p, int np, Error *err)
{
	r->tables = calloc((size_t) np + 1, sizeof(VTable));
	if (r->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < np; i++)
	{
		VTable *t = NULL;
		char **srcs, **names;
		const char **filters;

		if (!p[i].keep)
			continue;
		for (int j = 0; j < r->ntables && t == NULL; j++)
			if (strcmp(r->tables[j].tgt_qname, p[i].tgt_qname) == 0)
				t = &r->tables[j];
		if (t == NULL)
		{
			t = &r->tables[r->ntables++];
			t->cat = p[i].cat;
			if (r->spec != NULL && p[i].cat >= 0 &&
			    !shards_where(r->spec, r->shard_target, &cat->tables[p[i].cat],
			                  &t->src_where, err))
				return false;
			t->tgt_qname = strdup(p[i].tgt_qname);
			t->tgt_name = unquote_qname(p[i].tgt_qname);
			if (asprintf(&t->name, "%s.%s", p[i].schema, p[i].name) < 0)
				t->name = NULL;
			t->src_schema = strdup(p[i].schema);
			t->src_table = strdup(p[i].name);
			if (t->tgt_qname == NULL || t->tgt_name == NULL ||
			    t->name == NULL || t->src_schema == NULL ||
			    t->src_table == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
		}
		else if (t->nsrc == 1)
		{
			/* several sources: the target's name says what is compared */
			free(t->name);
			t->name = strdup(t->tgt_name);
			if (t->name == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
		}
		srcs = realloc(t->srcs, (size_t) (t->nsrc + 2) * sizeof(char *));
		if (srcs != NULL)
			t->srcs = srcs;
		names = realloc(t->src_names, (size_t) (t->nsrc + 2) * sizeof(char *));
		if (names != NULL)
			t->src_names = names;
		filters = realloc((void *) (uintptr_t) t->src_filters,
		                  (size_t) (t->nsrc + 2) * sizeof(char *));
		if (filters != NULL)
			t->src_filters = filters;
		if (srcs == NULL || names == NULL || filters == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		t->src_filters[t->nsrc] =
		    filter_find(&r->cfg->filters, p[i].schema, p[i].name, NULL);
		t->srcs[t->nsrc] = pg_qualify(p[i].schema, p[i].name);
		if (asprintf(&t->src_names[t->nsrc], "%s.%s", p[i].schema, p[i].name) <
		    0)
			t->src_names[t->nsrc] = NULL;
		t->nsrc++;
		if (t->srcs[t->nsrc - 1] == NULL || t->src_names[t->nsrc - 1] == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		if (p[i].cat < 0)
		{
			if (!result_set_problem(t, VS_MISSING_SOURCE,
			                        "gone from the source since the load", err))
				return false;
			continue;
		}
		t->est_rows += cat->tables[p[i].cat].reltuples > 0
		                   ? cat->tables[p[i].cat].reltuples
		                   : 0;
		t->est_bytes += cat->tables[p[i].cat].bytes;
	}
	return true;
}

static int
by_size_desc(const void *a, const void *b)
{
	const VTable *x = a, *y = b;

	if (x->est_bytes != y->est_bytes)
		return x->est_bytes > y->est_bytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Orders tables largest first (then by name): the longest start first. */
void
tables_sort(VTable *tables, int n)
{
	qsort(tables, (size_t) n, sizeof(VTable), by_size_desc);
}
