/*
 * target: the rule for target tables in the load's way (see target.h).
 *
 * It owns the rule and the load's refusal messages; check words its own
 * findings from a TargetVerdict. It must never write to the target.
 */
#include "load/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether qname holds a row; the role must be able to read it. */
static bool
has_rows(PgConn *tgt, const char *qname, bool *rows, Error *err)
{
	char *sql = NULL;
	char buf[8];

	if (asprintf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", qname) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!pg_query_value(tgt, sql, 0, NULL, buf, sizeof(buf), err))
	{
		free(sql);
		return false;
	}
	free(sql);
	*rows = buf[0] == 't';
	return true;
}

bool
target_examine(PgConn *tgt, const TaskConfig *cfg, bool started,
               const char *qname, bool want_rows, TargetVerdict *out,
               Error *err)
{
	const char *params[1] = {qname};
	bool create = cfg->schema_mode == SCHEMA_MODE_CREATE;
	bool refuse = cfg->on_existing == ON_EXISTING_REFUSE;
	PGresult *res;

	memset(out, 0, sizeof(*out));
	out->action = TARGET_WRITE;
	if (started)
		return true;
	if (!pg_query(tgt,
	              "SELECT r IS NOT NULL,"
	              " coalesce(has_table_privilege(r, 'SELECT'), false)"
	              " FROM (SELECT pg_catalog.to_regclass($1) AS r) x",
	              1, params, &res, err))
		return false;
	out->exists = PQgetvalue(res, 0, 0)[0] == 't';
	out->readable = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!out->exists)
		return true;
	if (out->readable && (want_rows || !create) &&
	    !has_rows(tgt, qname, &out->has_rows, err))
		return false;
	if (create)
		out->action = refuse ? TARGET_REFUSE : TARGET_DROP;
	else if (out->has_rows || !out->readable)
		out->action = refuse ? TARGET_REFUSE : TARGET_TRUNCATE;
	return true;
}

bool
target_may_load(PgConn *tgt, const TaskConfig *cfg, bool started,
                const char *qname, Error *err)
{
	TargetVerdict v;

	if (started || cfg->on_existing != ON_EXISTING_REFUSE)
		return true;
	if (!target_examine(tgt, cfg, started, qname, false, &v, err))
		return false;
	if (v.action != TARGET_REFUSE)
		return true;
	if (cfg->schema_mode == SCHEMA_MODE_CREATE)
	{
		err_set(err, ERR_TARGET, "table %s already exists on the target",
		        qname);
		return err_hint(err, "drop it, pass --on-existing drop to drop and "
		                     "recreate it, or --schema existing to load into "
		                     "it");
	}
	if (!v.readable)
	{
		err_set(err, ERR_TARGET,
		        "target table %s may hold data: the target role cannot "
		        "read it",
		        qname);
		return err_hint(err, "grant SELECT on it to the role, or pass "
		                     "--on-existing truncate to let pgtide empty it");
	}
	err_set(err, ERR_TARGET, "target table %s already holds data", qname);
	return err_hint(err, "empty it, or pass --on-existing truncate to let "
	                     "pgtide empty it");
}
