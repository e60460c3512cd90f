/*
 * matviews: the source's materialized views in refresh order, and REFRESH
 * on the target. Never writes to the source.
 */
#include "load/matviews.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A materialized view's level is the most materialized views met on any
 * path of its query's dependencies (through views too); refreshing by
 * level puts each one after those it reads. Paths stop at 64 relations.
 */
static const char matviews_sql[] =
    "WITH RECURSIVE uses AS ("
    "  SELECT DISTINCT r.ev_class AS rel, d.refobjid AS used"
    "  FROM pg_catalog.pg_rewrite r"
    "  JOIN pg_catalog.pg_depend d"
    "   ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "   AND d.objid = r.oid"
    "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "   AND d.refobjid <> r.ev_class),"
    " walk(start, rel, mvs, depth) AS ("
    "  SELECT c.oid, c.oid, 0, 0 FROM pg_catalog.pg_class c"
    "  WHERE c.relkind = 'm'"
    "  UNION ALL"
    "  SELECT w.start, u.used, w.mvs + (uc.relkind = 'm')::int, w.depth + 1"
    "  FROM walk w JOIN uses u ON u.rel = w.rel"
    "  JOIN pg_catalog.pg_class uc ON uc.oid = u.used"
    "  WHERE w.depth < 64 AND uc.relkind IN ('m', 'v'))"
    " SELECT pg_catalog.quote_ident(n.nspname) || '.' ||"
    "  pg_catalog.quote_ident(c.relname)"
    " FROM (SELECT start, max(mvs) AS level FROM walk GROUP BY start) l"
    " JOIN pg_catalog.pg_class c ON c.oid = l.start"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relispopulated"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
    " AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY l.level, n.nspname, c.relname";

bool
matviews_read(PgConn *src, const char *skip_schema, MatviewList *out,
              Error *err)
{
	const char *params[1] = {skip_schema};
	PGresult *res;

	vec_init(&out->names, sizeof(char *), MATVIEWS_MAX);
	if (!pg_query(src, matviews_sql, 1, params, &res, err))
		return err_prefix(err,
		                  "could not list the source's materialized views: ");
	for (int i = 0; i < PQntuples(res); i++)
	{
		char *name = strdup(PQgetvalue(res, i, 0));

		if (name == NULL || !vec_push(&out->names, &name, err))
		{
			free(name);
			PQclear(res);
			if (name == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
			return false;
		}
	}
	PQclear(res);
	return true;
}

void
matviews_list_free(MatviewList *l)
{
	char **names = l->names.items;

	for (size_t i = 0; i < l->names.count; i++)
		free(names[i]);
	vec_free(&l->names);
}

bool
matviews_refresh(PgConn *tgt, const char *qname, bool *missing, Error *err)
{
	Error e = ERR_INIT;

	*missing = false;
	if (pg_execf(tgt, &e, "REFRESH MATERIALIZED VIEW %s", qname))
		return true;
	if (pg_err_is(&e, "42P01"))
	{
		*missing = true;
		return true;
	}
	*err = e;
	return err_prefix(err, "could not refresh materialized view %s: ", qname);
}
