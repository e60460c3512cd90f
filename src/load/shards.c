/*
 * shards: the preflight of several targets (shards.h). One read-only
 * session on the source for the catalog and the lookup table's shape, one
 * on each target for what database it is; all closed before it returns.
 * Must never write, and never name a connection string (it may hold a
 * password): a target is named by its task-file name and host:port/db.
 */
#include "load/shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/buf.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "pg/rowfilter.h"
#include "route/filter.h"

/* The columns of a foreign key that are compared with the routing key: a
   key has at most 32 (INDEX_MAX_KEYS). */
#define INDEX_MAX_KEYS_FK 32

/* A routing condition: a list of thousands of values fits. */
#define SHARDS_WHERE_CAP (16 * 1024 * 1024)

/* What database a session reaches: the cluster's identity and the
 * database's name, so that two strings reaching one database are seen. */
#define SHARDS_IDENTITY_CAP 256

/* the server refuses writes on every session of this module */
#define SHARDS_SETUP                                                   \
	"SET default_transaction_read_only = on; SET lock_timeout = '5s';" \
	" SET statement_timeout = '60s'"

static bool
open_session(const char *uri, ErrKind side, PgConn **out, Error *err)
{
	return pg_connect(uri, side, PG_CONN_SQL, "pgtide", 5000, out, err) &&
	       pg_keep_session(*out, SHARDS_SETUP, 5000, err);
}

/*
 * A database a session reached: the cluster's system identifier where the
 * role may read it (superusers, pg_monitor), else the address and port the
 * session reached, with the database's name; and the session's own server
 * process and start, which another session of the same cluster sees.
 */
typedef struct Reached
{
	PgConn *conn; /* owned; open until the comparisons are done */
	char id[SHARDS_IDENTITY_CAP];
	char pid[16];
	char start[64];
} Reached;

static bool
read_identity(PgConn *conn, char *buf, size_t cap, Error *err)
{
	Error ignored = ERR_INIT;
	char id[64];

	if (!pg_query_value(conn,
	                    "SELECT system_identifier::text FROM "
	                    "pg_control_system()",
	                    0, NULL, id, sizeof(id), &ignored))
	{
		if (!pg_ok(conn))
			return pg_error(conn, NULL, err);
		if (!pg_query_value(conn,
		                    "SELECT coalesce(host(inet_server_addr()), "
		                    "'local') || ':' || current_setting('port')",
		                    0, NULL, id, sizeof(id), err))
			return false;
	}
	if (strlen(id) + 1 >= cap)
		return err_set(err, ERR_INTERNAL, "server identity too long");
	memcpy(buf, id, strlen(id));
	buf[strlen(id)] = '/';
	return pg_query_value(conn, "SELECT current_database()", 0, NULL,
	                      buf + strlen(id) + 1, cap - strlen(id) - 1, err);
}

static bool
reach(const char *uri, ErrKind side, Reached *r, Error *err)
{
	PGresult *res;

	if (!open_session(uri, side, &r->conn, err) ||
	    !read_identity(r->conn, r->id, sizeof(r->id), err) ||
	    !pg_query(r->conn,
	              "SELECT pid::text, backend_start::text"
	              " FROM pg_catalog.pg_stat_activity"
	              " WHERE pid = pg_catalog.pg_backend_pid()",
	              0, NULL, &res, err))
		return false;
	if (PQntuples(res) == 1)
	{
		snprintf(r->pid, sizeof(r->pid), "%s", PQgetvalue(res, 0, 0));
		snprintf(r->start, sizeof(r->start), "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return true;
}

/*
 * Whether a and b reached one database. One system identifier is not
 * enough: a cluster cloned from another (a restored backup, a promoted
 * standby, a copied data directory) keeps it; a's seeing b's session among
 * its server's processes is.
 */
static bool
same_database(const Reached *a, const Reached *b, bool *same, Error *err)
{
	const char *params[2] = {b->pid, b->start};
	PGresult *res;

	*same = false;
	if (strcmp(a->id, b->id) != 0 || b->pid[0] == '\0')
		return true;
	if (!pg_query(a->conn,
	              "SELECT 1 FROM pg_catalog.pg_stat_activity"
	              " WHERE pid = $1::int AND backend_start = $2::timestamptz",
	              2, params, &res, err))
		return false;
	*same = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

/* t's route; a view into spec, as shard_table_route gives it. */
static bool
table_route(const ShardSpec *spec, const CatTable *t, ShardTableRoute *r,
            Error *err)
{
	const char **names = calloc((size_t) t->ncols + 1, sizeof(*names));
	bool ok;

	if (names == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int c = 0; c < t->ncols; c++)
		names[c] = t->cols[c].name;
	ok = shard_table_route(spec, t->schema, t->name, names, t->ncols, r, err);
	free(names);
	return ok;
}

bool
shards_where(const ShardSpec *spec, int target, const CatTable *t, char **out,
             Error *err)
{
	ShardTableRoute r;
	Buf b = BUF_INIT(SHARDS_WHERE_CAP);
	char *col;
	bool ok;

	*out = NULL;
	if (!table_route(spec, t, &r, err))
		return false;
	if (r.kind == SHARD_TABLE_ALL)
		return true;
	if (r.kind == SHARD_TABLE_ONE)
	{
		*out = strdup(r.target == target ? "true" : "false");
		return *out != NULL || err_set(err, ERR_INTERNAL, "out of memory");
	}
	col = pg_quote_ident(r.key);
	if (col == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = shard_sql_condition(spec, target, col, &b, err) &&
	     buf_take(&b, out, err);
	free(col);
	buf_free(&b);
	return ok;
}

bool
shards_copy_route(const ShardSpec *spec, const CatTable *t, int *key_col,
                  uint32_t *key_type, int *whole_target, Error *err)
{
	ShardTableRoute r;

	*key_col = -1;
	*key_type = 0;
	*whole_target = -1;
	if (!table_route(spec, t, &r, err))
		return false;
	if (r.kind == SHARD_TABLE_ONE)
		*whole_target = r.target;
	if (r.kind != SHARD_TABLE_KEYED)
		return true;
	for (int c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c].name, r.key) == 0)
		{
			*key_col = c;
			*key_type = t->cols[c].type_oid;
			return true;
		}
	return err_set(err, ERR_CONFIG, "table %s has no column %s to route by",
	               t->qname, r.key);
}

bool
shards_lookup_read(PgConn *conn, const char *qtable, ShardSpec *spec,
                   int *nkeys, Error *err)
{
	const char *schema, *table, *key, *target;
	char *k, *v, *qs, *qt, *sql = NULL;
	PGresult *res;
	bool ok;

	*nkeys = 0;
	if (!shard_spec_lookup_table(spec, &schema, &table, &key, &target))
		return true;
	k = pg_quote_ident(key);
	v = pg_quote_ident(target);
	qs = pg_quote_ident(schema);
	qt = pg_quote_ident(table);
	if (k == NULL || v == NULL || qs == NULL || qt == NULL ||
	    (qtable != NULL
	         ? asprintf(&sql, "SELECT %s::text, %s::text FROM %s", k, v, qtable)
	         : asprintf(&sql, "SELECT %s::text, %s::text FROM %s.%s", k, v, qs,
	                    qt)) < 0)
		sql = NULL;
	free(k);
	free(v);
	free(qs);
	free(qt);
	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_query(conn, sql, 0, NULL, &res, err);
	free(sql);
	if (!ok)
		return err_prefix(err, "reading lookup table %s.%s: ", schema, table);
	for (int r = 0; ok && r < PQntuples(res); r++)
		ok = PQgetisnull(res, r, 0) || PQgetisnull(res, r, 1) ||
		     shard_lookup_put(spec, PQgetvalue(res, r, 0),
		                      (size_t) PQgetlength(res, r, 0),
		                      PQgetvalue(res, r, 1), err);
	*nkeys = PQntuples(res);
	PQclear(res);
	return ok;
}

/*
 * Rows whose key routes to no target (NULL, a list value or range no
 * target has, a key the lookup table lacks) would be loaded nowhere: the
 * load refuses to start while the source holds one.
 */
static bool
check_unrouted(const ShardSpec *spec, PgConn *src, const CatTable *t,
               const ShardTableRoute *r, Error *err)
{
	Buf b = BUF_INIT(SHARDS_WHERE_CAP);
	char *col = pg_quote_ident(r->key);
	char found[8];
	bool ok;

	if (col == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = buf_printf(&b, err, "SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE ",
	                t->qname) &&
	     shard_sql_condition(spec, -1, col, &b, err) &&
	     buf_add_str(&b, ")", err) && buf_check(&b, err) &&
	     pg_query_value(src, buf_str(&b), 0, NULL, found, sizeof(found), err);
	free(col);
	buf_free(&b);
	if (ok && strcmp(found, "t") == 0)
	{
		err_set(err, ERR_CONFIG,
		        "table %s has rows whose %s routes to no target", t->qname,
		        r->key);
		return err_hint(err, "a NULL key, or one that no shard.values, "
		                     "shard.bounds or lookup row names: route it, "
		                     "or give the table a shard.tables rule");
	}
	return ok;
}

static const CatColumn *
find_column(const CatTable *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return &t->cols[i];
	return NULL;
}

static bool
route_tables(const ShardSpec *spec, const Catalog *cat, ShardsPlan *plan,
             Error *err)
{
	plan->tables = calloc((size_t) cat->ntables + 1, sizeof(*plan->tables));
	if (plan->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];
		ShardsTable *st = &plan->tables[plan->ntables];

		if (!t->selected)
			continue;
		if (!table_route(spec, t, &st->route, err))
			return false;
		st->qname = strdup(t->qname);
		if (st->qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		plan->ntables++;
		if (st->route.kind == SHARD_TABLE_KEYED)
		{
			const CatColumn *col = find_column(t, st->route.key);

			st->key_type = strdup(col->type_name);
			if (st->key_type == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
			if (!shard_key_type_check(spec, col->type_name, err))
				return err_prefix(err, "table %s, column %s: ", t->qname,
				                  col->name);
		}
	}
	return true;
}

/* After the lookup table's check: its rows route the keys. */
static bool
check_tables_unrouted(const ShardSpec *spec, PgConn *src, const Catalog *cat,
                      const ShardsPlan *plan, Error *err)
{
	int k = 0;

	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];

		if (!t->selected)
			continue;
		if (plan->tables[k].route.kind == SHARD_TABLE_KEYED &&
		    !check_unrouted(spec, src, t, &plan->tables[k].route, err))
			return false;
		k++;
	}
	return true;
}

/* The plan's route of the selected table cat->tables[c]; NULL: not selected. */
static const ShardTableRoute *
route_of(const Catalog *cat, const ShardsPlan *plan, int c)
{
	int k = 0;

	if (c < 0 || !cat->tables[c].selected)
		return NULL;
	for (int i = 0; i < c; i++)
		k += cat->tables[i].selected;
	return &plan->tables[k].route;
}

/*
 * Whether every row of a foreign key can find the row it references on its
 * own target: the referenced table is on every target, both go whole to one
 * target, or both are routed by key and the key columns pair up in the
 * constraint. cols[i] references refcols[i].
 */
static bool
fk_colocated(const ShardTableRoute *from, const ShardTableRoute *to,
             char **cols, char **refcols, int n)
{
	if (to->kind == SHARD_TABLE_ALL)
		return true;
	if (from->kind == SHARD_TABLE_ONE && to->kind == SHARD_TABLE_ONE)
		return from->target == to->target;
	if (from->kind != SHARD_TABLE_KEYED || to->kind != SHARD_TABLE_KEYED)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(cols[i], from->key) == 0 && strcmp(refcols[i], to->key) == 0)
			return true;
	return false;
}

/*
 * A foreign key whose rows may live on another target than the rows they
 * reference cannot be built on the targets (its check would fail there after
 * the whole load): each is named before anything moves.
 */
static bool
check_foreign_keys(PgConn *src, const Catalog *cat, const ShardsPlan *plan,
                   Error *err)
{
	/* one row per column pair of each foreign key between tables, in order;
	   a partition's copy of its parent's key is its parent's */
	const char *sql =
	    "SELECT c.oid, c.conname, n.nspname, t.relname, rn.nspname,"
	    " rt.relname, a.attname, ra.attname"
	    " FROM pg_catalog.pg_constraint c"
	    " JOIN pg_catalog.pg_class t ON t.oid = c.conrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
	    " JOIN pg_catalog.pg_class rt ON rt.oid = c.confrelid"
	    " JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.relnamespace,"
	    " LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY"
	    "  AS k(att, ref, i),"
	    " pg_catalog.pg_attribute a, pg_catalog.pg_attribute ra"
	    " WHERE c.contype = 'f' AND a.attrelid = c.conrelid"
	    " AND a.attnum = k.att AND ra.attrelid = c.confrelid"
	    " AND ra.attnum = k.ref";
	char query[1400];
	Buf crossing = BUF_INIT(4096);
	PGresult *res;
	int n, ncrossing = 0;
	bool ok = true;

	snprintf(query, sizeof(query), "%s%s ORDER BY c.oid, k.i", sql,
	         pg_server_version(src) >= 110000 ? " AND c.conparentid = 0" : "");
	if (!pg_query(src, query, 0, NULL, &res, err))
		return err_prefix(err, "reading the foreign keys: ");
	n = PQntuples(res);
	for (int i = 0; ok && i < n;)
	{
		int j = i;
		char *cols[INDEX_MAX_KEYS_FK], *refcols[INDEX_MAX_KEYS_FK];
		const ShardTableRoute *from = route_of(
		    cat, plan,
		    catalog_find(cat, PQgetvalue(res, i, 2), PQgetvalue(res, i, 3)));
		const ShardTableRoute *to = route_of(
		    cat, plan,
		    catalog_find(cat, PQgetvalue(res, i, 4), PQgetvalue(res, i, 5)));

		while (j < n &&
		       strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) == 0)
		{
			if (j - i < INDEX_MAX_KEYS_FK)
			{
				cols[j - i] = PQgetvalue(res, j, 6);
				refcols[j - i] = PQgetvalue(res, j, 7);
			}
			j++;
		}
		if (from != NULL && to != NULL &&
		    !fk_colocated(from, to, cols, refcols,
		                  j - i < INDEX_MAX_KEYS_FK ? j - i
		                                            : INDEX_MAX_KEYS_FK))
		{
			if (ncrossing < 5)
				buf_printf(&crossing, NULL, "%s%s on %s.%s (to %s.%s)",
				           ncrossing ? "; " : "", PQgetvalue(res, i, 1),
				           PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
				           PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
			ncrossing++;
		}
		i = j;
	}
	PQclear(res);
	if (ncrossing > 0)
	{
		err_set(err, ERR_CONFIG,
		        "%d foreign key%s would reference rows on another target: "
		        "%s%s",
		        ncrossing, ncrossing == 1 ? "" : "s", buf_str(&crossing),
		        ncrossing > 5 ? "; ..." : "");
		err_hint(err, "route the referencing table by the column that "
		              "references the other's routing key (shard.tables: "
		              "TABLE: key COLUMN), or make the referenced table a "
		              "reference table (all); else the key cannot hold on the "
		              "targets");
		ok = false;
	}
	buf_free(&crossing);
	return ok;
}

/* The lookup table exists on the source with both columns. */
static bool
check_lookup(const ShardSpec *spec, PgConn *src, Error *err)
{
	const char *schema, *table, *key, *target;
	const char *params[3];
	PGresult *res;
	bool ok = true;

	if (!shard_spec_lookup_table(spec, &schema, &table, &key, &target))
		return true;
	params[0] = schema;
	params[1] = table;
	if (!pg_query(src,
	              "SELECT a.attname FROM pg_attribute a"
	              " JOIN pg_class c ON c.oid = a.attrelid"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE n.nspname = $1 AND c.relname = $2"
	              " AND a.attnum > 0 AND NOT a.attisdropped",
	              2, params, &res, err))
		return false;
	if (PQntuples(res) == 0)
		ok = err_set(err, ERR_CONFIG,
		             "lookup table %s.%s of shard.lookup does not exist on "
		             "the source",
		             schema, table);
	for (int c = 0; c < 2 && ok; c++)
	{
		const char *want = c == 0 ? key : target;
		bool found = false;

		for (int i = 0; i < PQntuples(res) && !found; i++)
			found = strcmp(PQgetvalue(res, i, 0), want) == 0;
		if (!found)
			ok = err_set(err, ERR_CONFIG,
			             "lookup table %s.%s of shard.lookup has no column %s",
			             schema, table, want);
	}
	PQclear(res);
	return ok;
}

/* Reaches every target; refuses two that are one database, or one that is
 * the source's. */
static bool
check_targets(const ShardSpec *spec, const Reached *source, Error *err)
{
	int n = shard_spec_ntargets(spec);
	Reached *t = calloc((size_t) n, sizeof(Reached));
	bool ok = true, same = false;

	if (t == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n && ok; i++)
	{
		const char *name = shard_spec_target_name(spec, i);

		ok = reach(shard_spec_target_uri(spec, i), ERR_TARGET, &t[i], err) &&
		     same_database(source, &t[i], &same, err);
		if (!ok)
			err_prefix(err, "target %s: ", name);
		else if (same)
			ok = err_set(err, ERR_CONFIG,
			             "target %s (%s) is the source database", name,
			             pg_where(t[i].conn));
		for (int j = 0; j < i && ok; j++)
		{
			ok = same_database(&t[j], &t[i], &same, err);
			if (ok && same)
			{
				ok = err_set(
				    err, ERR_CONFIG, "targets %s and %s are one database (%s)",
				    shard_spec_target_name(spec, j), name, pg_where(t[i].conn));
				err_hint(err, "give each target a database of its own");
			}
		}
	}
	for (int i = 0; i < n; i++)
		pg_close(t[i].conn);
	free(t);
	return ok;
}

bool
shards_preflight(const TaskConfig *cfg, const ShardSpec *spec, bool read_rows,
                 ShardsPlan **out, Error *err)
{
	Reached source;
	PgConn *src;
	Catalog *cat = NULL;
	ShardsPlan *plan = calloc(1, sizeof(*plan));
	bool ok;

	*out = NULL;
	if (plan == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	memset(&source, 0, sizeof(source));
	ok = reach(cfg->source_uri, ERR_SOURCE, &source, err);
	src = source.conn;
	ok = ok && catalog_read(src, cfg->state_schema, &cat, err) &&
	     catalog_select(cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err) &&
	     route_tables(spec, cat, plan, err) &&
	     check_foreign_keys(src, cat, plan, err) &&
	     check_lookup(spec, src, err) &&
	     (!read_rows || check_tables_unrouted(spec, src, cat, plan, err));
	catalog_free(cat);
	if (ok)
		ok = check_targets(spec, &source, err);
	pg_close(src);
	if (!ok)
	{
		shards_plan_free(plan);
		return false;
	}
	*out = plan;
	return true;
}

/* "schema"."name", as a filters key names one table exactly */
static char *
filter_key(const CatTable *t)
{
	/* two names of at most 63 bytes, each quote doubled */
	Buf b = BUF_INIT(512);
	const char *parts[2] = {t->schema, t->name};
	char *out = NULL;
	Error ignored = ERR_INIT;

	for (int p = 0; p < 2; p++)
	{
		buf_add_str(&b, p ? ".\"" : "\"", NULL);
		for (const char *c = parts[p]; *c != '\0'; c++)
		{
			buf_add(&b, c, 1, NULL);
			if (*c == '"')
				buf_add(&b, c, 1, NULL);
		}
		buf_add_str(&b, "\"", NULL);
	}
	if (!buf_take(&b, &out, &ignored))
		out = NULL;
	buf_free(&b);
	return out;
}

static bool
map_add(StrMap *map, const char *key, const char *value, Error *err)
{
	return config_strmap_add(map, key, strlen(key), value, strlen(value),
	                         FILTER_LINE_ROUTING, err);
}

bool
shards_own_spec(const TaskConfig *cfg, ShardSpec **spec, int *target,
                Error *err)
{
	/* the task file's own view: its targets, no single target */
	TaskConfig file = *cfg;

	file.target_uri = NULL;
	if (!shard_spec_new(&file, spec, err))
		return false;
	for (*target = 0; *target < shard_spec_ntargets(*spec); (*target)++)
		if (strcmp(shard_spec_target_name(*spec, *target), cfg->shard_target) ==
		    0)
			return true;
	shard_spec_free(*spec);
	*spec = NULL;
	return err_set(err, ERR_INTERNAL, "target %s is not in the task file",
	               cfg->shard_target);
}

void
shards_share_free(ShardsShare *sh)
{
	free(sh->filter);
	free(sh->stream_filter);
	free(sh->route_key);
	memset(sh, 0, sizeof(*sh));
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

bool
shards_share(const ShardSpec *spec, int target, const CatTable *t,
             const char *own, ShardsShare *out, Error *err)
{
	ShardTableRoute r;
	char *cond = NULL;
	bool keyed;

	memset(out, 0, sizeof(*out));
	if (!table_route(spec, t, &r, err) ||
	    !shards_where(spec, target, t, &cond, err))
		return false;
	keyed = r.kind == SHARD_TABLE_KEYED;
	out->routing = cond != NULL;
	if (keyed && !t->has_identity)
	{
		free(cond);
		err_set(err, ERR_CONFIG,
		        "table %s is routed by its key and has no primary key "
		        "or replica identity: the change stream could not "
		        "delete a row whose key moves to another target",
		        t->qname);
		return err_hint(err, "add a primary key, or route the table whole "
		                     "with a shard.tables rule (target NAME, or all)");
	}
	if (cond != NULL && own != NULL &&
	    asprintf(&out->filter, "(%s) AND (%s)", own, cond) < 0)
		out->filter = NULL;
	else if (cond == NULL || own == NULL)
		out->filter = cond != NULL ? strdup(cond) : dup_or_null(own);
	/* a table routed by its key is routed in pgtide: its stream asks the
	   source only the table's own filter */
	out->stream_filter = dup_or_null(keyed ? own : out->filter);
	out->route_key = keyed ? strdup(r.key) : NULL;
	if ((out->filter == NULL && (cond != NULL || own != NULL)) ||
	    (out->stream_filter == NULL && (keyed ? own : out->filter) != NULL) ||
	    (out->route_key == NULL && keyed))
	{
		free(cond);
		shards_share_free(out);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	free(cond);
	return true;
}

/*
 * Puts sh's filter in place of t's own in cfg; for a table routed by a
 * key, records the column and that own filter for the stream.
 */
static bool
add_share(TaskConfig *cfg, const CatTable *t, const ShardsShare *sh, Error *err)
{
	StrMap *filters = &cfg->filters;
	char *key = filter_key(t);
	int i = 0;
	bool ok;

	if (!sh->routing)
	{
		free(key);
		return true;
	}
	if (key == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	while (i < filters->keys.count &&
	       !filter_key_names(filters, i, t->schema, t->name))
		i++;
	ok = sh->route_key == NULL ||
	     (map_add(&cfg->shard_routes, key, sh->route_key, err) &&
	      (sh->stream_filter == NULL ||
	       map_add(&cfg->shard_own_filters, key, sh->stream_filter, err)));
	if (ok && i < filters->keys.count)
	{
		char *f = strdup(sh->filter);

		ok = f != NULL || err_set(err, ERR_INTERNAL, "out of memory");
		if (ok)
		{
			free(filters->values.items[i]);
			filters->values.items[i] = f;
			filters->line[i] = FILTER_LINE_ROUTING;
		}
	}
	else if (ok && sh->filter != NULL)
		ok = map_add(filters, key, sh->filter, err);
	free(key);
	return ok;
}

/*
 * The lookup method under a change stream (decision 0036): each target's
 * stream routes by its own copy of the lookup table, kept current by the
 * table's own changes, so the table must be one of the task's, and keyed
 * (its rows' changes name their key).
 */
static bool
lookup_streamed(const ShardSpec *spec, const Catalog *cat, Error *err)
{
	const char *schema, *table, *key, *target;

	if (!shard_spec_lookup_table(spec, &schema, &table, &key, &target))
		return true;
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];

		if (strcmp(t->schema, schema) != 0 || strcmp(t->name, table) != 0)
			continue;
		if (t->selected && t->has_pk)
			return true;
		err_set(err, ERR_CONFIG,
		        t->selected ? "lookup table %s.%s of shard.lookup has no "
		                      "primary key"
		                    : "lookup table %s.%s of shard.lookup is not one "
		                      "of the task's tables",
		        schema, table);
		return err_hint(err, "the change stream routes by each target's copy "
		                     "of it, kept current by its changes: select "
		                     "it, with a primary key on its key column");
	}
	err_set(err, ERR_CONFIG,
	        "lookup table %s.%s of shard.lookup does not exist on the source",
	        schema, table);
	return err_hint(err, "create it, or name another with shard.lookup");
}

bool
shards_route_as_filters(TaskConfig *cfg, const ShardSpec *spec, int target,
                        Error *err)
{
	PgConn *src = NULL;
	Catalog *cat = NULL;
	bool ok;

	/* the task file's own filters are checked as they are, before the
	   routing joins them */
	ok = open_session(cfg->source_uri, ERR_SOURCE, &src, err) &&
	     catalog_read(src, cfg->state_schema, &cat, err) &&
	     catalog_select(cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err) &&
	     rowfilter_check_all(src, cat, &cfg->filters, err) &&
	     lookup_streamed(spec, cat, err);
	for (int i = 0; ok && i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];
		ShardsShare sh;

		if (!t->selected)
			continue;
		ok = shards_share(spec, target, t,
		                  filter_find(&cfg->filters, t->schema, t->name, NULL),
		                  &sh, err) &&
		     add_share(cfg, t, &sh, err);
		shards_share_free(&sh);
	}
	catalog_free(cat);
	pg_close(src);
	return ok;
}

void
shards_plan_print(const ShardsPlan *plan, const ShardSpec *spec, FILE *f)
{
	for (int i = 0; i < plan->ntables; i++)
	{
		const ShardsTable *t = &plan->tables[i];
		const char *why = t->route.rule != NULL ? t->route.rule : NULL;

		switch (t->route.kind)
		{
			case SHARD_TABLE_KEYED:
				fprintf(f, "%s: each row to the target of its %s (%s)",
				        t->qname, t->route.key, t->key_type);
				break;
			case SHARD_TABLE_ONE:
				fprintf(f, "%s: every row to %s", t->qname,
				        shard_spec_target_name(spec, t->route.target));
				break;
			case SHARD_TABLE_ALL:
				fprintf(f, "%s: every row to every target (%s)", t->qname,
				        why != NULL ? "a rule says all"
				                    : "a reference table: no routing column");
				break;
		}
		if (why != NULL)
			fprintf(f, ", by rule %s", why);
		fputc('\n', f);
	}
}

void
shards_plan_free(ShardsPlan *plan)
{
	if (plan == NULL)
		return;
	for (int i = 0; i < plan->ntables; i++)
	{
		free(plan->tables[i].qname);
		free(plan->tables[i].key_type);
	}
	free(plan->tables);
	free(plan);
}
