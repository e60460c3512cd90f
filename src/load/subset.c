/*
 * subset: the objects that need a table left out, and what becomes of each.
 *
 * It owns the one query that finds them (subset_sql), the rule for which
 * tables are left out (subset_left_out_tables, which the schema dump uses
 * too), and each kind's outcome. Reads the source's catalog only.
 *
 * How the query walks pg_depend:
 *
 *   names     every relation as a person reads it and as a pg_dump pattern
 *   gone      the tables left out, then every view or materialized view
 *             whose _RETURN rule reads something gone (to 64 levels)
 *   refs      each gone relation, its row type and that type's array type
 *   deps      every object with a normal or automatic dependency on a ref,
 *             with the relation it belongs to (a constraint's table, a
 *             rule's, ...); objects of a gone relation go with it
 *   children  partitions and inheritance children left out whose parent is
 *             created
 *
 * Internal dependencies (a table's row type, its TOAST table) belong to the
 * table; sequences owned by a table left out are still dumped, without
 * OWNED BY, and their values copied, so they are not named; the internal
 * triggers of a foreign key go with the key.
 */
#include "load/subset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * $1: the tables left out. The %s is the test that a constraint is a
 * partition's clone of its parent's (pg_constraint.conparentid, 11+): pg_dump
 * writes the parent's alone, so the clones are not named again.
 */
static const char subset_sql[] =
    "WITH RECURSIVE"
    "  names(oid, shown, pattern) AS ("
    "   SELECT c.oid,"
    "    pg_catalog.quote_ident(n.nspname) || '.' || "
    "pg_catalog.quote_ident(c.relname),"
    "    '\"' || pg_catalog.replace(n.nspname, '\"', '\"\"') || '\".\"' ||"
    "    pg_catalog.replace(c.relname, '\"', '\"\"') || '\"'"
    "   FROM pg_catalog.pg_class c"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace),"
    "  gone(oid, cause, via, depth) AS ("
    "   SELECT o, o, o, 0 FROM pg_catalog.unnest($1::pg_catalog.oid[]) o"
    "   UNION"
    "   SELECT r.ev_class, g.cause, g.oid, g.depth + 1 FROM gone g"
    "   JOIN pg_catalog.pg_depend d"
    "    ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "    AND d.refobjid = g.oid"
    "    AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "   JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND r.rulename = "
    "'_RETURN'"
    "   JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN "
    "('v', 'm')"
    "   WHERE g.depth < 64 AND r.ev_class <> g.oid),"
    "  first AS ("
    "   SELECT DISTINCT ON (oid) oid, cause, via, depth FROM gone"
    "   ORDER BY oid, depth, cause),"
    "  refs AS ("
    "   SELECT f.cause, f.oid AS on_gone, f.depth,"
    "    'pg_catalog.pg_class'::pg_catalog.regclass AS refclassid,"
    "    f.oid AS refobjid FROM first f"
    "   UNION ALL"
    "   SELECT f.cause, f.oid, f.depth,"
    "    'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM first f"
    "   JOIN pg_catalog.pg_class c ON c.oid = f.oid AND c.reltype <> 0"
    "   JOIN pg_catalog.pg_type t ON t.oid = c.reltype OR t.typelem = "
    "c.reltype),"
    "  deps AS ("
    "   SELECT DISTINCT ON (d.classid, d.objid, d.objsubid)"
    "    d.classid, d.objid, d.objsubid, r.cause,"
    "    CASE WHEN r.depth > 0 THEN r.on_gone END AS via,"
    "    CASE d.classid"
    "     WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN"
    "      (SELECT CASE WHEN c.relkind = 'S' AND d.objsubid = 0 THEN 0"
    "       WHEN c.relkind IN ('i', 'I') THEN (SELECT i.indrelid"
    "        FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid)"
    "       ELSE c.oid END FROM pg_catalog.pg_class c WHERE c.oid = d.objid)"
    "     WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN"
    "      (SELECT ev_class FROM pg_catalog.pg_rewrite WHERE oid = d.objid)"
    "     WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN"
    "      (SELECT CASE WHEN %s THEN 0 ELSE NULLIF(conrelid, 0) END"
    "       FROM pg_catalog.pg_constraint WHERE oid = d.objid)"
    "     WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN"
    "      (SELECT CASE WHEN tgisinternal THEN 0 ELSE tgrelid END"
    "       FROM pg_catalog.pg_trigger WHERE oid = d.objid)"
    "     WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN"
    "      (SELECT polrelid FROM pg_catalog.pg_policy WHERE oid = d.objid)"
    "     WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN"
    "      (SELECT adrelid FROM pg_catalog.pg_attrdef WHERE oid = d.objid)"
    "     WHEN 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass THEN"
    "      (SELECT stxrelid FROM pg_catalog.pg_statistic_ext WHERE oid = "
    "d.objid)"
    "     WHEN 'pg_catalog.pg_publication_rel'::pg_catalog.regclass THEN 0"
    "    END AS rel"
    "   FROM refs r JOIN pg_catalog.pg_depend d"
    "    ON d.refclassid = r.refclassid AND d.refobjid = r.refobjid"
    "   WHERE d.deptype IN ('n', 'a')"
    "   ORDER BY d.classid, d.objid, d.objsubid, r.depth)"
    "  SELECT CASE c.relkind WHEN 'v' THEN 'v' ELSE 'm' END,"
    "   CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END"
    "    || nm.shown,"
    "   cause.shown, CASE WHEN f.via <> f.cause THEN via.shown END,"
    "   NULL, NULL, NULL, NULL, nm.pattern"
    "  FROM first f"
    "  JOIN pg_catalog.pg_class c ON c.oid = f.oid"
    "  JOIN names nm ON nm.oid = f.oid"
    "  JOIN names cause ON cause.oid = f.cause"
    "  JOIN names via ON via.oid = f.via"
    "  WHERE f.depth > 0"
    "  UNION ALL"
    "  SELECT CASE WHEN co.contype = 'f' THEN 'f'"
    "    WHEN ru.rulename <> '_RETURN' THEN 'r'"
    "    WHEN po.oid IS NOT NULL THEN 'p'"
    "    WHEN tg.oid IS NOT NULL THEN 't'"
    "    ELSE 'x' END,"
    "   coalesce(CASE WHEN co.contype = 'f' THEN 'foreign key '"
    "     WHEN ru.rulename <> '_RETURN' THEN 'rule '"
    "     WHEN po.oid IS NOT NULL THEN 'policy '"
    "     WHEN tg.oid IS NOT NULL THEN 'trigger ' END"
    "    || pg_catalog.quote_ident(coalesce(co.conname::text, "
    "ru.rulename::text,"
    "     po.polname::text, tg.tgname::text)) || ' on ' || rel.shown,"
    "    pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)),"
    "   cause.shown, via.shown, rel.shown, rn.nspname,"
    "   rc.relname || ' ' || coalesce(co.conname::text, ru.rulename::text,"
    "    po.polname::text, tg.tgname::text),"
    "   CASE WHEN co.contype = 'f' THEN 'FK CONSTRAINT'"
    "    WHEN ru.rulename <> '_RETURN' THEN 'RULE'"
    "    WHEN po.oid IS NOT NULL THEN 'POLICY'"
    "    WHEN tg.oid IS NOT NULL THEN 'TRIGGER' END,"
    "   NULL"
    "  FROM deps d"
    "  JOIN names cause ON cause.oid = d.cause"
    "  LEFT JOIN names via ON via.oid = d.via"
    "  LEFT JOIN names rel ON rel.oid = d.rel"
    "  LEFT JOIN pg_catalog.pg_class rc ON rc.oid = d.rel"
    "  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace"
    "  LEFT JOIN pg_catalog.pg_constraint co ON co.oid = d.objid"
    "   AND d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass"
    "  LEFT JOIN pg_catalog.pg_rewrite ru ON ru.oid = d.objid"
    "   AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "  LEFT JOIN pg_catalog.pg_policy po ON po.oid = d.objid"
    "   AND d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass"
    "  LEFT JOIN pg_catalog.pg_trigger tg ON tg.oid = d.objid"
    "   AND d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass"
    "  WHERE d.rel IS NULL"
    "   OR (d.rel <> 0 AND d.rel NOT IN (SELECT oid FROM first))"
    "  UNION ALL"
    "  SELECT CASE WHEN c.relispartition THEN 'P' ELSE 'C' END,"
    "   CASE WHEN c.relispartition THEN 'partition ' ELSE 'inheritance child ' "
    "END"
    "    || nm.shown,"
    "   nm.shown, NULL, parent.shown, NULL, NULL, NULL, NULL"
    "  FROM pg_catalog.pg_inherits i"
    "  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
    "  JOIN names nm ON nm.oid = i.inhrelid"
    "  JOIN names parent ON parent.oid = i.inhparent"
    "  WHERE i.inhrelid = ANY ($1::pg_catalog.oid[])"
    "   AND NOT i.inhparent = ANY ($1::pg_catalog.oid[])"
    "  ORDER BY 1, 2";

bool *
subset_kept_tables(const Catalog *cat)
{
	bool *keep = calloc((size_t) cat->ntables + 1, sizeof(bool));

	if (keep == NULL)
		return NULL;
	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].selected)
			for (int p = i, d = 0; p >= 0 && d < 64;
			     p = cat->tables[p].parent, d++)
				keep[p] = true;
	return keep;
}

char **
subset_left_out_tables(const Catalog *cat, int *n)
{
	bool *keep = subset_kept_tables(cat);
	char **out = calloc((size_t) cat->ntables + 1, sizeof(char *));

	*n = 0;
	if (keep == NULL || out == NULL)
	{
		free(keep);
		free(out);
		return NULL;
	}
	for (int i = 0; i < cat->ntables; i++)
		if (!keep[i])
			out[(*n)++] = cat->tables[i].qname;
	free(keep);
	return out;
}

/* "{oid,...}" of the tables left out; malloc'd, NULL when out of memory. */
static char *
left_out_oids(const Catalog *cat)
{
	bool *keep = subset_kept_tables(cat);
	size_t cap = 3 + (size_t) cat->ntables * 11, len = 0;
	char *out = malloc(cap);

	if (keep == NULL || out == NULL)
	{
		free(keep);
		free(out);
		return NULL;
	}
	out[len++] = '{';
	for (int i = 0; i < cat->ntables; i++)
		if (!keep[i])
			len += (size_t) snprintf(out + len, cap - len, "%s%u",
			                         len > 1 ? "," : "", cat->tables[i].relid);
	snprintf(out + len, cap - len, "}");
	free(keep);
	return out;
}

static SubsetKind
kind_of(char c)
{
	switch (c)
	{
		case 'v':
			return SUBSET_VIEW;
		case 'm':
			return SUBSET_MATVIEW;
		case 'f':
			return SUBSET_FOREIGN_KEY;
		case 'r':
			return SUBSET_RULE;
		case 'p':
			return SUBSET_POLICY;
		case 't':
			return SUBSET_TRIGGER;
		case 'P':
			return SUBSET_PARTITION;
		case 'C':
			return SUBSET_CHILD;
		default:
			return SUBSET_BLOCKER;
	}
}

/* A copy of the result's field, NULL for SQL NULL; *lost on out of memory */
static char *
field(PGresult *res, int row, int col, bool null_as_empty, bool *lost)
{
	char *s;

	if (PQgetisnull(res, row, col))
	{
		if (!null_as_empty)
			return NULL;
		s = strdup("");
	}
	else
		s = strdup(PQgetvalue(res, row, col));
	if (s == NULL)
		*lost = true;
	return s;
}

bool
subset_read(PgConn *src, const Catalog *cat, Subset *out, Error *err)
{
	char *oids = left_out_oids(cat);
	const char *params[1] = {oids};
	PGresult *res;
	char *sql = NULL;
	bool lost = false, ok;

	memset(out, 0, sizeof(*out));
	if (oids == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	/* every table selected: nothing can be left behind */
	if (strcmp(oids, "{}") == 0)
	{
		free(oids);
		return true;
	}
	if (asprintf(&sql, subset_sql,
	             pg_server_version(src) >= 110000 ? "conparentid <> 0"
	                                              : "false") < 0)
	{
		free(oids);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	ok = pg_query(src, sql, 1, params, &res, err);
	free(sql);
	free(oids);
	if (!ok)
		return err_prefix(err, "could not read what depends on the tables "
		                       "left out: ");
	out->items = calloc((size_t) PQntuples(res) + 1, sizeof(SubsetObject));
	if (out->items == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		SubsetObject *o = &out->items[out->n++];
		SubsetKind kind = kind_of(PQgetvalue(res, i, 0)[0]);

		o->kind = kind;
		o->what = field(res, i, 1, true, &lost);
		o->cause = field(res, i, 2, true, &lost);
		o->via = field(res, i, 3, true, &lost);
		o->table = field(res, i, 4, true, &lost);
		/* a blocker is never matched against pg_dump's entries */
		if (kind != SUBSET_BLOCKER)
		{
			o->dump_schema = field(res, i, 5, false, &lost);
			o->dump_name = field(res, i, 6, false, &lost);
			o->dump_type = field(res, i, 7, false, &lost);
		}
		o->exclude = field(res, i, 8, false, &lost);
	}
	PQclear(res);
	if (lost)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

void
subset_free(Subset *s)
{
	for (int i = 0; i < s->n; i++)
	{
		SubsetObject *o = &s->items[i];

		free(o->what);
		free(o->cause);
		free(o->via);
		free(o->table);
		free(o->dump_type);
		free(o->dump_schema);
		free(o->dump_name);
		free(o->exclude);
	}
	free(s->items);
	s->items = NULL;
	s->n = 0;
}

bool
subset_blocks(const SubsetObject *o)
{
	return o->kind == SUBSET_BLOCKER;
}

const char *
subset_outcome(const SubsetObject *o)
{
	switch (o->kind)
	{
		case SUBSET_VIEW:
		case SUBSET_MATVIEW:
			return "it will not be created on the target";
		case SUBSET_FOREIGN_KEY:
		case SUBSET_RULE:
		case SUBSET_POLICY:
		case SUBSET_TRIGGER:
			return "it will not be created on the target, and the table "
			       "is created without it";
		case SUBSET_PARTITION:
		case SUBSET_CHILD:
			return "it will not be created on the target, and its rows are "
			       "not moved";
		case SUBSET_BLOCKER:
			break;
	}
	return "pg_dump creates it, and the target refuses it without that table";
}

bool
subset_leaves_out(const Subset *s, const char *type, const char *schema,
                  const char *name)
{
	if (type == NULL || schema == NULL || name == NULL)
		return false;
	for (int i = 0; i < s->n; i++)
	{
		const SubsetObject *o = &s->items[i];

		if (o->dump_type != NULL && o->dump_schema != NULL &&
		    o->dump_name != NULL && strcmp(o->dump_type, type) == 0 &&
		    strcmp(o->dump_schema, schema) == 0 &&
		    strcmp(o->dump_name, name) == 0)
			return true;
	}
	return false;
}

bool
subset_refuse_blockers(const Subset *s, Error *err)
{
	const SubsetObject *first = NULL;
	int n = 0;

	for (int i = 0; i < s->n; i++)
		if (subset_blocks(&s->items[i]))
		{
			if (first == NULL)
				first = &s->items[i];
			n++;
		}
	if (first == NULL)
		return true;
	err_set(err, ERR_BLOCKED, "%s depends on %s, which is not selected: %s%s",
	        first->what, first->cause, subset_outcome(first),
	        n > 1 ? " (and more: see pgtide check)" : "");
	return err_hint(err,
	                "select %s too, or change the object on the source "
	                "so that it does not need it",
	                first->cause);
}
