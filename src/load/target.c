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

#include "state/state.h"

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

/* Another task that loads into qname, read from the state without creating
 * it: a target without pgtide's schema has none. */
static bool
other_owner(PgConn *tgt, const TaskConfig *cfg, const char *qname, char *owner,
            size_t cap, Error *err)
{
	State st;
	bool exists;

	owner[0] = '\0';
	return state_attach(&st, tgt, cfg->state_schema, cfg->task, &exists, err) &&
	       (!exists || state_table_other_owner(&st, qname, owner, cap, err));
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
	if (!other_owner(tgt, cfg, qname, out->owner, sizeof(out->owner), err))
		return false;
	if (out->owner[0] != '\0')
		out->action = create ? TARGET_REFUSE : TARGET_SHARE;
	else if (create)
		out->action = refuse ? TARGET_REFUSE : TARGET_DROP;
	else if (out->has_rows || !out->readable)
		out->action = refuse ? TARGET_REFUSE : TARGET_TRUNCATE;
	return true;
}

bool
target_may_load(PgConn *tgt, const TaskConfig *cfg, bool started,
                const char *qname, bool *shared, Error *err)
{
	TargetVerdict v;

	*shared = false;
	if (started)
		return true;
	if (!target_examine(tgt, cfg, started, qname, false, &v, err))
		return false;
	*shared = v.action == TARGET_SHARE;
	if (v.action != TARGET_REFUSE)
		return true;
	if (v.owner[0] != '\0')
	{
		err_set(err, ERR_TARGET,
		        "target table %s is task \"%s\"'s: another task loads into "
		        "it",
		        qname, v.owner);
		err_detail(err, "pgtide never drops or empties a table another task "
		                "writes, whatever --on-existing says");
		return err_hint(err,
		                "load into it with --schema existing and a row "
		                "filter of the task's own on the table (docs/"
		                "merging.md), leave it out with -T, or load it into "
		                "a target of its own");
	}
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

/* "name(N)" or "name(N,S)": the base name and its numbers; false when the
 * text has no parenthesis after base. */
static bool
typmod_of(const char *type, const char *base, long *n, long *s)
{
	size_t len = strlen(base);
	char *end;

	if (strncmp(type, base, len) != 0 || type[len] != '(')
		return false;
	*n = strtol(type + len + 1, &end, 10);
	*s = 0;
	if (*end == ',')
		*s = strtol(end + 1, &end, 10);
	return *end == ')' && end[1] == '\0';
}

/*
 * Whether a target column of type tgt takes every value of a source column
 * of type src unchanged: the same type, or a wider one of the few widenings
 * whose text form reads back the same value (an integer into a larger
 * integer, a string into a longer or unbounded string, a numeric into one
 * with the same scale and more digits). Anything else could round, cut,
 * reinterpret or refuse a value, and is named.
 */
static bool
type_accepts(const char *src, const char *tgt)
{
	static const char *const widen[][2] = {
	    {"smallint", "integer"},       {"smallint", "bigint"},
	    {"integer", "bigint"},         {"character varying", "text"},
	    {"text", "character varying"},
	};
	static const char *const bounded[] = {"character varying", "bit varying",
	                                      "numeric"};
	long sn, ss, tn, ts;

	if (strcmp(src, tgt) == 0)
		return true;
	for (size_t i = 0; i < sizeof(widen) / sizeof(widen[0]); i++)
		if (strcmp(src, widen[i][0]) == 0 && strcmp(tgt, widen[i][1]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(bounded) / sizeof(bounded[0]); i++)
	{
		if (!typmod_of(src, bounded[i], &sn, &ss))
			continue;
		if (strcmp(tgt, bounded[i]) == 0 ||
		    (i == 0 && strcmp(tgt, "text") == 0))
			return true;
		return typmod_of(tgt, bounded[i], &tn, &ts) && ts == ss && tn >= sn;
	}
	return false;
}

bool
target_columns_compare(PgConn *tgt, const CatTable *src, const char *tgt_qname,
                       TargetMismatchFn found, void *ctx, Error *err)
{
	const char *params[1] = {tgt_qname};
	PGresult *res;
	char problem[512];
	char table[400];
	int n;

	/* attgenerated is 12+: read through to_jsonb so a 10 or 11 target
	   answers the same query */
	if (!pg_query(tgt,
	              "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
	              " a.attnotnull AND NOT a.atthasdef AND a.attidentity = '',"
	              " coalesce(to_jsonb(a)->>'attgenerated', '') <> ''"
	              " FROM pg_attribute a WHERE a.attrelid = to_regclass($1)"
	              " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
	              1, params, &res, err))
		return false;
	n = PQntuples(res);
	if (strcmp(src->qname, tgt_qname) == 0)
		snprintf(table, sizeof(table), "%s", src->qname);
	else
		snprintf(table, sizeof(table), "%s (into %s)", src->qname, tgt_qname);
	for (int c = 0; c < src->ncols; c++)
	{
		const CatColumn *sc = &src->cols[c];
		const char *tname = catalog_tgt_col(sc);
		char shown[300];
		int r = 0;

		/* a renamed column is named by both its names */
		if (sc->tgt_name != NULL)
			snprintf(shown, sizeof(shown), "\"%s\" (\"%s\" on the source)",
			         tname, sc->name);
		else
			snprintf(shown, sizeof(shown), "\"%s\"", sc->name);
		while (r < n && strcmp(PQgetvalue(res, r, 0), tname) != 0)
			r++;
		if (r == n)
			snprintf(problem, sizeof(problem),
			         "column %s (%s) is not on the target", shown,
			         sc->type_name);
		else if (PQgetvalue(res, r, 3)[0] == 't')
			snprintf(problem, sizeof(problem),
			         "column %s is generated on the target, which computes "
			         "its values itself",
			         shown);
		else if (!type_accepts(sc->type_name, PQgetvalue(res, r, 1)))
			snprintf(problem, sizeof(problem),
			         "column %s is %s on the source and %s on the target",
			         shown, sc->type_name, PQgetvalue(res, r, 1));
		else
			continue;
		found(table, problem, true, ctx);
	}
	for (int r = 0; r < n; r++)
	{
		bool copied = false;

		for (int c = 0; c < src->ncols && !copied; c++)
			copied = strcmp(catalog_tgt_col(&src->cols[c]),
			                PQgetvalue(res, r, 0)) == 0;
		if (copied)
			continue;
		if (PQgetvalue(res, r, 2)[0] == 't')
			snprintf(problem, sizeof(problem),
			         "target column \"%s\" is NOT NULL without a default, "
			         "and the source has no column of that name to fill it",
			         PQgetvalue(res, r, 0));
		else
			snprintf(problem, sizeof(problem),
			         "target column \"%s\" is not on the source: every row "
			         "gets its default%s",
			         PQgetvalue(res, r, 0),
			         PQgetvalue(res, r, 3)[0] == 't' ? " (it is generated)"
			                                         : " or NULL");
		found(table, problem, PQgetvalue(res, r, 2)[0] == 't', ctx);
	}
	PQclear(res);
	return true;
}
