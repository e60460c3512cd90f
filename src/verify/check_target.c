/*
 * check_target: what the target must offer for the schema step and the load.
 *
 * It owns the checks of the target: its version against the source's, the
 * source's extensions, column types, collations and tablespaces as the
 * target has them, where each selected table loads and whether a table is
 * in the load's way, the role's privileges (the state schema, the tables'
 * schemas, the user's tables, the change stream's session), and a usable
 * pg_dump. It must never write to the target: the schema step and the load
 * create what they need, later.
 */
#include "verify/check_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/schema.h"
#include "load/share.h"
#include "load/subset.h"
#include "load/target.h"

/*
 * A text[] literal of the items, each double-quoted, for one query over many
 * names instead of one query each. malloc'd; NULL on out-of-memory.
 */
static char *
text_array(char *const *items, int n)
{
	size_t cap = 3, len = 0;
	char *out;

	for (int i = 0; i < n; i++)
		cap += strlen(items[i]) * 2 + 3;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			out[len++] = ',';
		out[len++] = '"';
		for (const char *s = items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				out[len++] = '\\';
			out[len++] = *s;
		}
		out[len++] = '"';
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

/* ---- target: what the schema step needs ---- */

bool
check_extensions(Check *c, Error *err)
{
	char sql[512];
	PGresult *res;
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;

	if (!pg_query(c->src,
	              "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"
	              " ORDER BY 1",
	              0, NULL, &res, err))
		return false;
	c->exts = calloc((size_t) PQntuples(res) + 1, sizeof(CheckExtension));
	if (c->exts == NULL)
	{
		PQclear(res);
		return check_oom(err);
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		bool lost = false;

		c->exts[c->nexts].name =
		    check_dup_or_empty(PQgetvalue(res, i, 0), &lost);
		if (lost)
		{
			PQclear(res);
			return check_oom(err);
		}
		c->nexts++;
	}
	PQclear(res);
	/* a non-superuser may create a trusted extension (13+) */
	snprintf(sql, sizeof(sql),
	         "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1),"
	         " EXISTS (SELECT 1 FROM pg_available_extensions"
	         "  WHERE name = $1), %s",
	         c->tgt_version >= 130000
	             ? "EXISTS (SELECT 1 FROM pg_available_extension_versions"
	               " WHERE name = $1 AND trusted)"
	             : "false");
	for (int i = 0; i < c->nexts; i++)
	{
		CheckExtension *e = &c->exts[i];
		const char *params[1] = {e->name};
		char object[160];

		if (!pg_query(c->tgt, sql, 1, params, &res, err))
			return false;
		e->installed = PQgetvalue(res, 0, 0)[0] == 't';
		e->available = PQgetvalue(res, 0, 1)[0] == 't';
		snprintf(object, sizeof(object), "extension %s", e->name);
		if (!e->installed && !e->available)
			check_add(
			    c, CHECK_ID_MISSING_EXTENSION,
			    create ? CHECK_BLOCKER : CHECK_WARNING, object,
			    create ? "the schema step creates every extension of the "
			             "source, and the target cannot"
			           : "what the application uses from it will be "
			             "missing on the target",
			    "install the extension's package on the target server (the "
			    "same or a newer version)",
			    "the target has no extension %s, and none available to "
			    "create",
			    e->name);
		else if (!e->installed && !create)
			check_add(c, CHECK_ID_MISSING_EXTENSION, CHECK_WARNING, object,
			          "with --schema existing pgtide creates nothing: what the "
			          "application uses from it will be missing",
			          "CREATE EXTENSION on the target",
			          "not created on the target");
		else if (!e->installed && !c->tgt_super &&
		         PQgetvalue(res, 0, 2)[0] != 't')
			check_add(
			    c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, object,
			    "the schema step creates every extension of the source, and "
			    "this one needs a superuser",
			    "create the extension on the target as a superuser "
			    "beforehand, or connect as one",
			    "the target role cannot create extension %s", e->name);
		PQclear(res);
	}
	return true;
}

static const CheckExtension *
extension(const Check *c, const char *name)
{
	for (int i = 0; i < c->nexts; i++)
		if (strcmp(c->exts[i].name, name) == 0)
			return &c->exts[i];
	return NULL;
}

/*
 * Column types that are not built in (after arrays and domains): in create
 * mode pg_dump creates the user's own types, so only a type of an extension
 * the target cannot create is missing; in existing mode nothing is created.
 */
bool
check_types(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;
	PGresult *res;

	if (!pg_query(c->src,
	              "WITH cols AS ("
	              "  SELECT a.attrelid, a.attname, a.atttypid AS t FROM "
	              "pg_attribute a"
	              "  WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0"
	              "  AND NOT a.attisdropped),"
	              " elems AS ("
	              "  SELECT cols.attrelid, cols.attname,"
	              "  CASE WHEN ty.typcategory = 'A' AND ty.typelem <> 0"
	              "  THEN ty.typelem ELSE ty.oid END AS t"
	              "  FROM cols JOIN pg_type ty ON ty.oid = cols.t),"
	              " bases AS ("
	              "  SELECT attrelid, attname, t FROM elems UNION ALL"
	              "  SELECT e.attrelid, e.attname, ty.typbasetype FROM elems e"
	              "  JOIN pg_type ty ON ty.oid = e.t WHERE ty.typtype = 'd')"
	              " SELECT DISTINCT ON (n.nspname, ty.typname)"
	              " quote_ident(n.nspname) || '.' || quote_ident(ty.typname),"
	              " x.extname, b.attrelid, quote_ident(b.attname)"
	              " FROM bases b JOIN pg_type ty ON ty.oid = b.t"
	              " JOIN pg_namespace n ON n.oid = ty.typnamespace"
	              " LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass"
	              "  AND d.objid = ty.oid AND d.deptype = 'e'"
	              " LEFT JOIN pg_extension x ON x.oid = d.refobjid"
	              " WHERE ty.oid >= 16384"
	              " ORDER BY n.nspname, ty.typname, b.attrelid, b.attname",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *qtype = PQgetvalue(res, i, 0);
		const char *ext = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
		const CheckExtension *e = ext ? extension(c, ext) : NULL;
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 2));
		const char *tp[1] = {qtype};
		char column[512];
		bool exists;

		/* create mode: pg_dump creates the type, or its extension does */
		if (create && (ext == NULL || (e != NULL && e->available)))
			continue;
		if (!check_query_bool(c->tgt, "SELECT to_regtype($1) IS NOT NULL", 1,
		                      tp, &exists, err))
		{
			PQclear(res);
			return false;
		}
		snprintf(column, sizeof(column), "%s.%s",
		         t ? check_shown_table(c, t) : "?", PQgetvalue(res, i, 3));
		if (!exists && create)
			check_add(
			    c, CHECK_ID_MISSING_TYPE, CHECK_BLOCKER, qtype,
			    "the schema step cannot create the table that uses it",
			    "install the extension's package on the target server, or "
			    "leave the tables that use the type out with -T",
			    "type of column %s comes from extension %s, which the "
			    "target cannot create",
			    column, ext);
		else if (!exists)
			check_add(c, CHECK_ID_MISSING_TYPE, CHECK_WARNING, qtype,
			          "values travel as text into whatever type the target's "
			          "column has; values that type refuses stop the load",
			          "create the type on the target, or make sure the target "
			          "column's type accepts every value",
			          "type of column %s does not exist on the target", column);
	}
	PQclear(res);
	return true;
}

bool
check_collations(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;
	PGresult *res;

	/* "dumped": pg_dump creates it (a user schema, not an extension's) */
	if (!pg_query(c->src,
	              "SELECT DISTINCT ON (n.nspname, co.collname) n.nspname,"
	              " co.collname, n.nspname <> 'pg_catalog' AND NOT EXISTS"
	              " (SELECT 1 FROM pg_depend d"
	              "  WHERE d.classid = 'pg_collation'::regclass"
	              "  AND d.objid = co.oid AND d.deptype = 'e'),"
	              " a.attrelid, quote_ident(a.attname),"
	              " quote_ident(n.nspname) || '.' || quote_ident(co.collname)"
	              " FROM pg_attribute a"
	              " JOIN pg_collation co ON co.oid = a.attcollation"
	              " JOIN pg_namespace n ON n.oid = co.collnamespace"
	              " WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0"
	              " AND NOT a.attisdropped AND a.attcollation NOT IN (0, 100)"
	              " ORDER BY n.nspname, co.collname, a.attrelid, a.attnum",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *tp[2] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)};
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 3));
		const char *qcoll = PQgetvalue(res, i, 5);
		char column[512];
		bool exists;

		if (create && PQgetvalue(res, i, 2)[0] == 't')
			continue;
		if (!check_query_bool(
		        c->tgt,
		        "SELECT EXISTS (SELECT 1 FROM pg_collation co"
		        " JOIN pg_namespace n ON n.oid = co.collnamespace"
		        " WHERE n.nspname = $1 AND co.collname = $2"
		        " AND co.collencoding IN (-1, (SELECT encoding"
		        "  FROM pg_database WHERE datname = current_database())))",
		        2, tp, &exists, err))
		{
			PQclear(res);
			return false;
		}
		if (exists)
			continue;
		snprintf(column, sizeof(column), "%s.%s",
		         t ? check_shown_table(c, t) : "?", PQgetvalue(res, i, 4));
		if (create)
			check_add(
			    c, CHECK_ID_MISSING_COLLATION, CHECK_BLOCKER, qcoll,
			    "the schema step cannot create the table that uses it, and "
			    "pg_dump does not create system collations",
			    "install the locale on the target's machine (ICU or the "
			    "operating system's) and run pg_import_system_collations, "
			    "or change the column's collation on the source",
			    "collation of column %s does not exist on the target", column);
		else
			check_add(
			    c, CHECK_ID_MISSING_COLLATION, CHECK_WARNING, qcoll,
			    "the target's column sorts and compares text another way: "
			    "unique indexes and ranges may disagree with the source",
			    "create the collation on the target, or check that the "
			    "target column's collation is the one intended",
			    "collation of column %s does not exist on the target", column);
	}
	PQclear(res);
	return true;
}

/* pg_dump runs with --no-tablespaces: every table lands in the target
 * database's default tablespace, whatever the source used. */
bool
check_tablespaces(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	PGresult *res;

	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE)
		return true;
	if (!pg_query(c->src,
	              "SELECT t.spcname, count(*) FROM pg_class c"
	              " JOIN pg_tablespace t ON t.oid = c.reltablespace"
	              " WHERE c.oid = ANY($1::oid[]) OR c.oid IN"
	              " (SELECT indexrelid FROM pg_index"
	              "  WHERE indrelid = ANY($1::oid[]))"
	              " GROUP BY 1 ORDER BY 1",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *tp[1] = {PQgetvalue(res, i, 0)};
		char object[160];
		bool exists;

		if (!check_query_bool(c->tgt,
		                      "SELECT EXISTS (SELECT 1 FROM pg_tablespace"
		                      " WHERE spcname = $1)",
		                      1, tp, &exists, err))
		{
			PQclear(res);
			return false;
		}
		snprintf(object, sizeof(object), "tablespace %s", tp[0]);
		if (!exists)
			check_add(
			    c, CHECK_ID_MISSING_TABLESPACE, CHECK_WARNING, object,
			    "pgtide creates them in the target database's default "
			    "tablespace instead: plan that disk's space",
			    "nothing, if the default tablespace has room; else create "
			    "the tablespace on the target and move the tables after "
			    "the load (ALTER TABLE ... SET TABLESPACE)",
			    "%s selected tables or indexes are in a tablespace the "
			    "target lacks",
			    PQgetvalue(res, i, 1));
		else
			check_add(c, CHECK_ID_MISSING_TABLESPACE, CHECK_INFO, object, "",
			          "move them after the load if they belong there (ALTER "
			          "TABLE ... SET TABLESPACE)",
			          "%s selected tables or indexes are in this tablespace; "
			          "pgtide creates them in the target database's default "
			          "tablespace",
			          PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

/*
 * Where each selected table loads. Existing mode: the table of the same name
 * or its nearest ancestor on the target (as the load resolves it); none is a
 * blocker. Create mode: the same name.
 */
bool
check_resolve_targets(Check *c, Error *err)
{
	c->into = malloc(((size_t) c->cat->ntables + 1) * sizeof(int));
	if (c->into == NULL)
		return check_oom(err);
	for (int i = 0; i < c->cat->ntables; i++)
	{
		int idx = i;

		c->into[i] = -1;
		if (!c->cat->tables[i].selected)
			continue;
		if (c->cfg->schema_mode == SCHEMA_MODE_CREATE)
		{
			c->into[i] = i;
			continue;
		}
		for (int depth = 0; idx >= 0 && depth < 64 && c->into[i] < 0; depth++)
		{
			const char *tp[1] = {catalog_tgt_qname(&c->cat->tables[idx])};
			bool exists;

			if (!check_query_bool(c->tgt, "SELECT to_regclass($1) IS NOT NULL",
			                      1, tp, &exists, err))
				return false;
			if (exists)
				c->into[i] = idx;
			idx = c->cat->tables[idx].parent;
		}
		if (c->into[i] < 0)
		{
			char fix[768];

			snprintf(fix, sizeof(fix),
			         "create it on the target, leave it out with -T %s, or "
			         "let pgtide create the schema with --schema create",
			         check_shown(c, i));
			check_add(
			    c, CHECK_ID_MISSING_TARGET_TABLE, CHECK_BLOCKER,
			    check_shown(c, i),
			    "with --schema existing pgtide loads into the user's tables "
			    "and creates none",
			    fix,
			    "the table (or a partitioned ancestor) does not exist on "
			    "the target");
		}
	}
	return true;
}

/*
 * A target table another task writes too: the load's own checks
 * (load/share.h), a blocker when they refuse. Fails only when a server
 * cannot be reached.
 */
static bool
share_findings(Check *c, const char *name, const CatTable *t, const char *qname,
               const TargetVerdict *v, Error *err)
{
	Error why = ERR_INIT;

	if (share_check(c->src, c->tgt, c->cfg, t, qname, &why))
	{
		check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_WARNING, name,
		          "the two tasks' rows are apart: each task loads and "
		          "validates its own (docs/merging.md)",
		          "nothing", "task \"%s\" writes this target table too",
		          v->owner);
		return true;
	}
	if (why.retryable || !pg_ok(c->src) || !pg_ok(c->tgt))
	{
		*err = why;
		return false;
	}
	check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
	          "the load refuses to write into it", why.hint, "%s", why.message);
	return true;
}

/* The finding for a target table the load's rule does not simply write
 * into: what the load would do with it, worded for check. */
static void
in_the_way(Check *c, const char *name, const TargetVerdict *v)
{
	const char *rows = v->has_rows ? " and holds rows" : "";
	char fix[768];

	switch (v->action)
	{
		case TARGET_WRITE:
			return;
		case TARGET_DROP:
			check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_WARNING, name,
			          "--on-existing drop drops it and creates it again",
			          "nothing, if its contents may go",
			          "the table already exists on the target%s", rows);
			return;
		case TARGET_TRUNCATE:
			check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_WARNING, name,
			          "--on-existing truncate empties it before the load",
			          "nothing, if its rows may go", "%s",
			          v->readable ? "the target table already holds rows"
			                      : "the target role cannot read the table, "
			                        "which may hold rows");
			return;
		case TARGET_SHARE: /* share_findings */
			return;
		case TARGET_REFUSE:
			break;
	}
	if (v->owner[0] != '\0')
	{
		snprintf(fix, sizeof(fix),
		         "load into it with --schema existing and a row filter of "
		         "the task's own (docs/merging.md), leave it out with -T, or "
		         "load it into a target of its own; pgtide clean --task %s "
		         "ends the other task",
		         v->owner);
		check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
		          "pgtide never drops or empties a table another task "
		          "writes, whatever --on-existing says",
		          fix, "task \"%s\" loads into this target table", v->owner);
		return;
	}
	if (c->cfg->schema_mode == SCHEMA_MODE_CREATE)
		check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
		          "pgtide creates every table it loads, and stops rather than "
		          "touch one it did not make",
		          "drop it; or pass --on-existing drop to drop and recreate "
		          "it; or --schema existing to load into it",
		          "the table already exists on the target%s", rows);
	else if (v->readable)
	{
		snprintf(fix, sizeof(fix),
		         "empty it (TRUNCATE %s), or pass --on-existing truncate "
		         "to let pgtide empty it",
		         name);
		check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
		          "loading next to existing rows would mix them with the "
		          "source's",
		          fix, "the target table already holds rows");
	}
	else
	{
		snprintf(fix, sizeof(fix),
		         "GRANT SELECT ON %s TO the role, or pass --on-existing "
		         "truncate to let pgtide empty it",
		         name);
		check_add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
		          "the load stops rather than empty a table whose rows it "
		          "cannot see",
		          fix,
		          "the target role cannot read the table, which may hold "
		          "rows");
	}
}

/*
 * Target tables in the way: the load's own rule (load/target.h), applied to
 * the table each selected one loads into, except the tables the task
 * registered.
 */
bool
check_target_tables(Check *c, Error *err)
{
	bool started = c->has_point || c->schema_done;

	for (int i = 0; i < c->cat->ntables; i++)
	{
		const CatTable *t = &c->cat->tables[i];
		TargetVerdict v;

		if (!check_first_of_target(c, i) ||
		    check_registered(c, t->schema, t->name))
			continue;
		const CatTable *into = &c->cat->tables[c->into[i]];
		char shown[256]; /* fits the finding's other texts */

		if (!target_examine(c->tgt, c->cfg, started, catalog_tgt_qname(into),
		                    true, &v, err))
			return false;
		/* a renamed table is named by both its names */
		if (into->tgt_qname != NULL)
			snprintf(shown, sizeof(shown), "%s (%s on the target)",
			         check_shown(c, c->into[i]), into->tgt_qname);
		else
			snprintf(shown, sizeof(shown), "%s", check_shown(c, c->into[i]));
		in_the_way(c, shown, &v);
		if (v.action == TARGET_SHARE &&
		    !share_findings(c, shown, into, catalog_tgt_qname(into), &v, err))
			return false;
	}
	return true;
}

static void
column_mismatch(const char *table, const char *problem, bool blocking,
                void *ctx)
{
	if (!blocking)
	{
		check_add(ctx, CHECK_ID_COLUMN_MISMATCH, CHECK_INFO, table,
		          "the load and the stream leave it to the target", "", "%s",
		          problem);
		return;
	}
	check_add(ctx, CHECK_ID_COLUMN_MISMATCH, CHECK_BLOCKER, table,
	          "the rows could not load as they are, or would change on the "
	          "way (the load refuses it too, before anything moves)",
	          "change the target table to match (the same type, or a wider "
	          "one of the same kind), or leave the table out with -T",
	          "%s", problem);
}

/* Existing mode: the columns of each selected table against the target
 * table it loads into, as the load compares them (load/target.h). */
bool
check_target_columns(Check *c, Error *err)
{
	if (c->cfg->schema_mode != SCHEMA_MODE_EXISTING)
		return true;
	for (int i = 0; i < c->cat->ntables; i++)
		if (c->cat->tables[i].selected && c->into[i] >= 0 &&
		    !target_columns_compare(
		        c->tgt, &c->cat->tables[i],
		        catalog_tgt_qname(&c->cat->tables[c->into[i]]), column_mismatch,
		        c, err))
			return false;
	return true;
}

/*
 * The target's side of check_row_security: the stream's UPDATE and DELETE,
 * and validate, would see only the rows a policy shows. Existing mode: the
 * tables the load writes into; create mode: the tables whose source forces
 * row-level security on their owner, which the target's copy will too.
 */
bool
check_target_row_security(Check *c, Error *err)
{
	Buf names = BUF_INIT(64 * 1024 * 1024);
	const char *params[1];
	bool bypass = false;
	PGresult *res;
	bool ok = false;

	if (!check_query_bool(c->tgt,
	                      "SELECT rolsuper OR rolbypassrls FROM pg_roles"
	                      " WHERE rolname = current_user",
	                      0, NULL, &bypass, err))
		return false;
	if (bypass)
		return true;
	if (c->cfg->schema_mode == SCHEMA_MODE_CREATE)
	{
		params[0] = c->selected_oids;
		if (!pg_query(c->src,
		              "SELECT c.oid FROM pg_class c"
		              " WHERE c.oid = ANY($1::oid[]) AND c.relrowsecurity"
		              " AND c.relforcerowsecurity ORDER BY 1",
		              1, params, &res, err))
			return false;
		for (int i = 0; i < PQntuples(res); i++)
		{
			const CatTable *t =
			    check_table_by_oid(c->cat, PQgetvalue(res, i, 0));

			if (t != NULL)
				check_add(c, CHECK_ID_ROW_SECURITY, CHECK_BLOCKER,
				          check_shown_table(c, t),
				          "the target's copy forces the table's policies on "
				          "its owner, the role pgtide writes as: the stream "
				          "would fail on the table",
				          "connect to the target as a role with BYPASSRLS "
				          "or a superuser, or leave the table out with -T",
				          "the source forces row-level security on the "
				          "table's owner");
		}
		PQclear(res);
		return true;
	}
	if (!buf_add_str(&names, "{", err))
		goto out;
	for (int i = 0; i < c->cat->ntables; i++)
		if (check_first_of_target(c, i) &&
		    !pg_array_item(&names, c->cat->tables[c->into[i]].qname, err))
			goto out;
	if (!buf_add_str(&names, "}", err))
		goto out;
	params[0] = buf_str(&names);
	if (!pg_query(c->tgt,
	              "SELECT q FROM unnest($1::text[]) q"
	              " JOIN pg_class c ON c.oid = to_regclass(q)"
	              " WHERE c.relrowsecurity AND (c.relforcerowsecurity"
	              "  OR NOT pg_has_role(c.relowner, 'USAGE')) ORDER BY 1",
	              1, params, &res, err))
		goto out;
	for (int i = 0; i < PQntuples(res); i++)
		check_add(c, CHECK_ID_ROW_SECURITY, CHECK_BLOCKER,
		          PQgetvalue(res, i, 0),
		          "its policies would hide rows from the stream's updates "
		          "and deletes and from validate; pgtide writes with "
		          "row_security off, so the load would fail",
		          "connect to the target as a role with BYPASSRLS or a "
		          "superuser, or disable row-level security on the table "
		          "for the migration",
		          "row-level security applies to the target role");
	PQclear(res);
	ok = true;
out:
	buf_free(&names);
	return ok;
}

/* A target privilege the role lacks: one finding, named by its object. */
static void
lacks(Check *c, const char *object, const char *why, const char *fix,
      const char *what)
{
	check_add(c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, object, why,
	          fix, "%s", what);
}

bool
check_target_privileges(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	char object[256], fix[768];
	PGresult *res;
	bool ok;

	if (c->tgt_super)
		return true;
	/* the state schema: created when missing, tables added to it */
	{
		const char *tp[1] = {cfg->state_schema};

		if (!pg_query(c->tgt,
		              "SELECT n.oid IS NOT NULL, CASE WHEN n.oid IS NULL"
		              " THEN has_database_privilege(current_database(),"
		              " 'CREATE') ELSE has_schema_privilege(n.oid, 'CREATE')"
		              " END FROM (SELECT $1::name AS s) x"
		              " LEFT JOIN pg_namespace n ON n.nspname = x.s",
		              1, tp, &res, err))
			return false;
		if (PQgetvalue(res, 0, 1)[0] != 't')
		{
			bool exists = PQgetvalue(res, 0, 0)[0] == 't';

			if (exists)
				snprintf(object, sizeof(object), "schema %s",
				         cfg->state_schema);
			else
				snprintf(object, sizeof(object), "database %s", c->tgt_db);
			snprintf(fix, sizeof(fix), "GRANT CREATE ON %s %s TO the role",
			         exists ? "SCHEMA" : "DATABASE",
			         exists ? cfg->state_schema : c->tgt_db);
			lacks(c, object,
			      "pgtide keeps the task's state (what is loaded, for "
			      "resuming) in its own schema on the target",
			      fix,
			      exists ? "the target role cannot create tables in the "
			               "state schema"
			             : "the target role cannot create the state schema");
		}
		PQclear(res);
	}
	if (cfg->schema_mode == SCHEMA_MODE_CREATE && !c->schema_done)
	{
		/* the schemas of the selected tables: created, or created in */
		char **names = calloc((size_t) c->cat->ntables + 1, sizeof(char *));
		int n = 0;
		char *arr;
		const char *tp[1];

		if (names == NULL)
			return check_oom(err);
		for (int i = 0; i < c->cat->ntables; i++)
		{
			bool seen = false;

			if (!c->cat->tables[i].selected)
				continue;
			for (int j = 0; j < n && !seen; j++)
				seen = strcmp(names[j], c->cat->tables[i].schema) == 0;
			if (!seen)
				names[n++] = c->cat->tables[i].schema;
		}
		arr = text_array(names, n);
		free(names);
		if (arr == NULL)
			return check_oom(err);
		tp[0] = arr;
		ok = pg_query(c->tgt,
		              "SELECT quote_ident(x.s), n.oid IS NOT NULL"
		              " FROM unnest($1::text[]) x(s)"
		              " LEFT JOIN pg_namespace n ON n.nspname = x.s"
		              " WHERE NOT CASE WHEN n.oid IS NULL"
		              " THEN has_database_privilege(current_database(),"
		              " 'CREATE') ELSE has_schema_privilege(n.oid, 'CREATE')"
		              " END ORDER BY 1",
		              1, tp, &res, err);
		free(arr);
		if (!ok)
			return false;
		for (int i = 0; i < PQntuples(res); i++)
		{
			const char *qs = PQgetvalue(res, i, 0);
			bool exists = PQgetvalue(res, i, 1)[0] == 't';

			snprintf(object, sizeof(object), "schema %s", qs);
			snprintf(fix, sizeof(fix), "GRANT CREATE ON %s %s TO the role",
			         exists ? "SCHEMA" : "DATABASE", exists ? qs : c->tgt_db);
			lacks(c, object,
			      "the schema step creates the selected tables (and their "
			      "schemas) on the target",
			      fix,
			      exists ? "the target role cannot create tables in this "
			               "schema"
			             : "the schema does not exist on the target, and the "
			               "target role cannot create it");
		}
		PQclear(res);
	}
	if (cfg->schema_mode == SCHEMA_MODE_EXISTING)
	{
		/* the load truncates and inserts; the change stream applies all */
		for (int i = 0; i < c->cat->ntables; i++)
		{
			const char *tp[1];
			const char *name;
			char missing[128] = "";

			if (!check_first_of_target(c, i))
				continue;
			tp[0] = catalog_tgt_qname(&c->cat->tables[c->into[i]]);
			name = check_shown(c, c->into[i]);
			if (!pg_query(c->tgt,
			              "SELECT concat_ws(', ',"
			              " CASE WHEN NOT has_table_privilege($1, 'INSERT')"
			              "  THEN 'INSERT' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'UPDATE')"
			              "  THEN 'UPDATE' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'DELETE')"
			              "  THEN 'DELETE' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'TRUNCATE')"
			              "  THEN 'TRUNCATE' END)",
			              1, tp, &res, err))
				return false;
			snprintf(missing, sizeof(missing), "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			if (missing[0] == '\0')
				continue;
			snprintf(fix, sizeof(fix), "GRANT %s ON %s TO the role", missing,
			         name);
			check_add(c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, name,
			          "the load empties and fills the table; the change stream "
			          "inserts, updates and deletes in it",
			          fix, "the target role lacks %s on the table", missing);
		}
	}
	/* the change stream's session: replica role and a replication origin */
	{
		bool set_role = false, origin = false;
		char sql[512];

		snprintf(
		    sql, sizeof(sql), "SELECT %s, %s",
		    c->tgt_version >= 150000
		        ? "has_parameter_privilege('session_replication_role', 'SET')"
		        : "false",
		    c->tgt_version >= 140000
		        ? "has_function_privilege("
		          "'pg_catalog.pg_replication_origin_create(text)', 'EXECUTE')"
		          " AND has_function_privilege("
		          "'pg_catalog.pg_replication_origin_session_setup(text)',"
		          " 'EXECUTE')"
		        : "false");
		if (!pg_query(c->tgt, sql, 0, NULL, &res, err))
			return false;
		set_role = PQgetvalue(res, 0, 0)[0] == 't';
		origin = PQgetvalue(res, 0, 1)[0] == 't';
		PQclear(res);
		if (!set_role)
			lacks(c, "session_replication_role",
			      "the change stream applies with session_replication_role = "
			      "replica, so that the target's triggers and foreign keys "
			      "stay silent as for PostgreSQL's own apply",
			      c->tgt_version >= 150000
			          ? "GRANT SET ON PARAMETER session_replication_role TO "
			            "the role, or connect as a superuser"
			          : "connect to the target as a superuser",
			      "the target role cannot set session_replication_role");
		if (!origin)
			lacks(c, "replication origin",
			      "the change stream records its position in a replication "
			      "origin, in the same transaction as each change",
			      c->tgt_version >= 140000
			          ? "GRANT EXECUTE ON FUNCTION the "
			            "pg_replication_origin_* functions TO the role, or "
			            "connect as a superuser"
			          : "connect to the target as a superuser",
			      "the target role cannot use replication origins");
	}
	return true;
}

void
check_pg_dump(Check *c)
{
	char path[1024];
	Error e = ERR_INIT;

	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE || c->schema_done)
		return;
	if (!schema_find_pg_dump(c->cfg->pg_dump, c->src_version, path,
	                         sizeof(path), &e))
		check_add(c, CHECK_ID_PG_DUMP, CHECK_BLOCKER, "pg_dump",
		          "the schema step reads the source's tables with pg_dump",
		          e.hint, "%s", e.message);
}

bool
check_encodings(Check *c, Error *err)
{
	const char *sql = "SELECT current_setting('server_encoding')";
	char src[64], tgt[64];

	if (!pg_query_value(c->src, sql, 0, NULL, src, sizeof(src), err) ||
	    !pg_query_value(c->tgt, sql, 0, NULL, tgt, sizeof(tgt), err))
		return false;
	if (strcmp(src, tgt) == 0)
		return true;
	if (strcmp(src, "SQL_ASCII") == 0)
		check_add(c, CHECK_ID_ENCODING, CHECK_WARNING, "source",
		          "SQL_ASCII stores bytes without saying what they encode: "
		          "they reach the target as they are, and a text whose bytes "
		          "are not valid in the target's encoding stops the load (or "
		          "the stream) at its table",
		          "make sure the application wrote its texts in the target's "
		          "encoding, and convert those it did not on the source "
		          "first; or migrate into a SQL_ASCII target",
		          "the source database's encoding is SQL_ASCII, the "
		          "target's %s",
		          tgt);
	else if (strcmp(tgt, "SQL_ASCII") == 0)
		check_add(c, CHECK_ID_ENCODING, CHECK_WARNING, "target",
		          "pgtide's sessions write the texts as UTF-8, which a "
		          "SQL_ASCII target keeps as bytes without saying so: an "
		          "application reading with another client_encoding gets "
		          "them unconverted",
		          "a target in UTF8 or in the source's encoding",
		          "the target database's encoding is SQL_ASCII, the "
		          "source's %s",
		          src);
	else if (strcmp(tgt, "UTF8") != 0)
		check_add(c, CHECK_ID_ENCODING, CHECK_WARNING, "target",
		          "a character the target's encoding cannot hold stops the "
		          "load (or the stream) at its table",
		          "a target in UTF8, or in the source's encoding",
		          "the target database's encoding is %s, the source's %s", tgt,
		          src);
	else
		check_add(c, CHECK_ID_ENCODING, CHECK_INFO, "source",
		          "texts are converted to UTF-8 on their way; validate "
		          "compares them by their characters, and a table whose key "
		          "holds text by buckets of its key's hash (decision 0041)",
		          NULL, "the source database's encoding is %s, the target's %s",
		          src, tgt);
	return true;
}

void
check_target_version(Check *c)
{
	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE ||
	    c->tgt_version / 10000 >= c->src_version / 10000)
		return;
	check_add(
	    c, CHECK_ID_TARGET_VERSION, CHECK_WARNING, "target",
	    "pg_dump writes the schema for its own version, and an older server "
	    "may refuse parts of it",
	    "use a target of the source's major version or newer, or create the "
	    "schema yourself and use --schema existing",
	    "the target (%d) is older than the source (%d)", c->tgt_version / 10000,
	    c->src_version / 10000);
}

/*
 * The objects that need a table the patterns leave out, each with what the
 * load does with it (load/subset decides for both): left out with a
 * warning, or a blocker the load refuses before its slot.
 */
bool
check_subset(Check *c, Error *err)
{
	Subset s;

	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE || c->schema_done)
		return true;
	if (!subset_read(c->src, c->cat, &s, err))
	{
		subset_free(&s);
		return false;
	}
	for (int i = 0; i < s.n; i++)
	{
		const SubsetObject *o = &s.items[i];
		bool blocks = subset_blocks(o);
		bool part = o->kind == SUBSET_PARTITION || o->kind == SUBSET_CHILD;
		char via[600] = "";

		if (o->via[0] != '\0')
			snprintf(via, sizeof(via), " (through %s)", o->via);
		if (part)
			check_add(c, CHECK_ID_SUBSET_DEPENDENCY, CHECK_WARNING, o->what,
			          "pgtide creates the tables a subset needs and nothing "
			          "more: the parent exists on the target without it",
			          "select it too if its rows belong on the target",
			          "a child of %s, not selected: %s", o->table,
			          subset_outcome(o));
		else
			check_add(
			    c, CHECK_ID_SUBSET_DEPENDENCY,
			    blocks ? CHECK_BLOCKER : CHECK_WARNING, o->what,
			    blocks ? "the schema step would fail on the target; the load "
			             "refuses to start"
			           : "the selected tables' rows still move exactly",
			    blocks ? "select that table too, or change the object on the "
			             "source so that it no longer needs it"
			           : "select that table too if the object must exist on "
			             "the target",
			    "depends on %s%s, which is not selected: %s", o->cause, via,
			    subset_outcome(o));
	}
	subset_free(&s);
	return true;
}
