/*
 * catalog_rename: the task's renames and removed columns applied to the
 * selected tables of a Catalog, with the checks that need the source's
 * catalog (what a removed column is needed by).
 *
 * Reads only; it never writes to any server. The names themselves come
 * from route/rename, which stays pure.
 */
#include "pg/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/rename.h"

const char *
catalog_tgt_qname(const CatTable *t)
{
	return t->tgt_qname != NULL ? t->tgt_qname : t->qname;
}

const char *
catalog_tgt_col(const CatColumn *c)
{
	return c->tgt_name != NULL ? c->tgt_name : c->name;
}

/*
 * What on the source needs column col of t: the objects pg_depend ties to
 * it (indexes, constraints, views, generated columns, an owned sequence),
 * but its own default, into buf as "a, b". With only_key, only the replica
 * identity's index (or the primary key's when the identity is the default).
 */
static bool
needed_by(PgConn *conn, const CatTable *t, const char *col, bool only_key,
          char *buf, size_t cap, Error *err)
{
	char relid[16];
	const char *params[2] = {relid, col};
	PGresult *res;
	size_t len = 0;

	buf[0] = '\0';
	snprintf(relid, sizeof(relid), "%u", t->relid);
	if (!pg_query(
	        conn,
	        only_key
	            ? "SELECT pg_describe_object('pg_class'::regclass, "
	              "i.indexrelid,"
	              " 0) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
	              " JOIN pg_attribute a ON a.attrelid = i.indrelid"
	              " AND a.attnum = ANY (i.indkey)"
	              " WHERE i.indrelid = $1::oid AND a.attname = $2"
	              " AND (i.indisreplident OR (c.relreplident = 'd'"
	              " AND i.indisprimary))"
	            : "SELECT DISTINCT pg_describe_object(d.classid, d.objid,"
	              " d.objsubid) FROM pg_depend d JOIN pg_attribute a"
	              " ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
	              " WHERE d.refclassid = 'pg_class'::regclass"
	              " AND d.refobjid = $1::oid AND a.attname = $2"
	              " AND d.deptype IN ('n', 'a')"
	              " AND NOT (d.classid = 'pg_attrdef'::regclass"
	              " AND EXISTS (SELECT 1 FROM pg_attrdef ad WHERE"
	              " ad.oid = d.objid AND ad.adnum = a.attnum))"
	              " ORDER BY 1",
	        2, params, &res, err))
		return false;
	for (int r = 0; r < PQntuples(res) && len + 4 < cap; r++)
	{
		int n = snprintf(buf + len, cap - len, "%s%s", r ? ", " : "",
		                 PQgetvalue(res, r, 0));

		len = n < 0 ? cap : len + (size_t) n;
	}
	PQclear(res);
	return true;
}

/*
 * A partition's columns are its parent's: PostgreSQL renames and drops them
 * only through the root, which a created schema would have to change for
 * every partition at once.
 */
static bool
refuse_partition(const CatTable *t, const char *col, const char *where,
                 Error *err)
{
	err_set(err, ERR_CONFIG,
	        "%s: column %s of table %s.%s is a partition's: it cannot be "
	        "renamed or removed in a schema pgtide creates",
	        where, col, t->schema, t->name);
	return err_hint(err, "create the target's tables yourself (--schema "
	                     "existing), or keep the column's name");
}

/* Refuses removing a column the stream or the target's schema needs. */
static bool
check_removed(PgConn *conn, const CatTable *t, const char *col,
              const char *where, bool create, Error *err)
{
	char what[1024];

	if (t->replident == 'f' || t->replident == 'n')
		what[0] = '\0';
	else if (!needed_by(conn, t, col, true, what, sizeof(what), err))
		return false;
	if (what[0] != '\0')
	{
		err_set(err, ERR_CONFIG,
		        "%s: column %s of table %s.%s is part of its replica "
		        "identity (%s) and cannot be removed",
		        where, col, t->schema, t->name, what);
		return err_hint(err, "the change stream finds a row on the target "
		                     "by these columns; keep the column, or rename it");
	}
	if (!create)
		return true;
	if (t->parent >= 0)
		return refuse_partition(t, col, where, err);
	if (!needed_by(conn, t, col, false, what, sizeof(what), err))
		return false;
	if (what[0] == '\0')
		return true;
	err_set(err, ERR_CONFIG,
	        "%s: column %s of table %s.%s cannot be removed: %s need%s it",
	        where, col, t->schema, t->name, what,
	        strchr(what, ',') != NULL ? "" : "s");
	return err_hint(err, "the target's schema is created from the source's "
	                     "(--schema create); keep the column, or create the "
	                     "target's tables yourself (--schema existing)");
}

/* Moves t's columns to their target names, removed ones to t->removed. */
static bool
take_names(CatTable *t, const RenamedTable *rt, Error *err)
{
	int kept = 0;

	t->removed = calloc((size_t) t->ncols + 1, sizeof(char *));
	if (t->removed == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int c = 0; c < t->ncols; c++)
	{
		CatColumn col = t->cols[c];

		if (rt->cols[c] == NULL)
		{
			t->removed[t->nremoved++] = col.name;
			free(col.type_name);
			free(col.tgt_name);
			continue;
		}
		if (strcmp(rt->cols[c], col.name) != 0 &&
		    (col.tgt_name = strdup(rt->cols[c])) == NULL)
		{
			/* keep every column still owned, for catalog_free */
			memmove(&t->cols[kept], &t->cols[c],
			        (size_t) (t->ncols - c) * sizeof(CatColumn));
			t->ncols = kept + (t->ncols - c);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		t->cols[kept++] = col;
	}
	t->ncols = kept;
	if (strcmp(rt->schema, t->schema) != 0 || strcmp(rt->name, t->name) != 0)
	{
		t->tgt_schema = strdup(rt->schema);
		t->tgt_name = strdup(rt->name);
		t->tgt_qname = pg_qualify(rt->schema, rt->name);
		if (t->tgt_schema == NULL || t->tgt_name == NULL ||
		    t->tgt_qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

static bool
rename_tables(PgConn *conn, Catalog *cat, const Renames *r, bool create,
              bool *used, Error *err)
{
	for (int i = 0; i < cat->ntables; i++)
	{
		CatTable *t = &cat->tables[i];
		char **names;
		RenamedTable rt;
		bool ok = true;

		if (!t->selected)
			continue;
		names = calloc((size_t) t->ncols + 1, sizeof(char *));
		if (names == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		for (int c = 0; c < t->ncols; c++)
			names[c] = t->cols[c].name;
		ok = rename_table(r, t->schema, t->name, names, t->ncols, used, &rt,
		                  err);
		free(names);
		if (!ok)
			return false;
		for (int c = 0; c < rt.ncols && ok; c++)
			if (rt.cols[c] == NULL)
				ok = check_removed(conn, t, t->cols[c].name,
				                   r->rules[rt.col_rule[c]].where, create, err);
			else if (create && t->parent >= 0 && rt.col_rule[c] >= 0 &&
			         strcmp(rt.cols[c], t->cols[c].name) != 0)
				ok = refuse_partition(t, t->cols[c].name,
				                      r->rules[rt.col_rule[c]].where, err);
		ok = ok && take_names(t, &rt, err);
		rename_table_free(&rt);
		if (!ok)
			return false;
	}
	return true;
}

/* t's target schema and name, for messages. */
static void
target_text(char *buf, size_t cap, const CatTable *t)
{
	snprintf(buf, cap, "%s.%s", t->tgt_schema ? t->tgt_schema : t->schema,
	         t->tgt_name ? t->tgt_name : t->name);
}

/* Two selected tables onto one target table. */
static bool
check_collisions(const Catalog *cat, Error *err)
{
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *a = &cat->tables[i];

		if (!a->selected || a->tgt_qname == NULL)
			continue;
		for (int j = 0; j < cat->ntables; j++)
		{
			const CatTable *b = &cat->tables[j];
			char target[512];

			if (j == i || !b->selected ||
			    strcmp(catalog_tgt_qname(b), a->tgt_qname) != 0)
				continue;
			target_text(target, sizeof(target), a);
			err_set(err, ERR_CONFIG,
			        "tables %s.%s and %s.%s would both be table %s on the "
			        "target",
			        b->schema, b->name, a->schema, a->name, target);
			return err_hint(err, "give each its own name in rename.tables "
			                     "or the table-mapping file");
		}
	}
	return true;
}

bool
catalog_rename(PgConn *conn, Catalog *cat, const Renames *rules, bool create,
               Error *err)
{
	bool *used;
	bool ok;

	if (rename_none(rules))
		return true;
	used = calloc((size_t) rules->n + 1, sizeof(bool));
	ok = used != NULL ? rename_tables(conn, cat, rules, create, used, err) &&
	                        rename_check_used(rules, used, err) &&
	                        check_collisions(cat, err)
	                  : err_set(err, ERR_INTERNAL, "out of memory");
	free(used);
	return ok;
}
