/*
 * apply_stmt: the statements that apply each change, per relation.
 *
 * It owns the relation cache (what pgoutput's Relation messages said, and
 * where each table goes), and the SQL of every change: multi-row INSERTs
 * from runs of inserts, UPDATE and DELETE matched on the key or on the whole
 * row, TRUNCATE, each shaped by the conflict policy (the ON CONFLICT clause,
 * an UPDATE written as an upsert), with its text-format parameter values.
 *
 * It must never send a statement other than through apply_send_plain and
 * apply_send_prepared, nor read a result: whether a change met a conflict
 * is for its result to say, in apply_batch.c.
 */
#include "cdc/apply_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/log.h"
#include "pg/pg.h"
#include "state/state.h"

/* ---- small buffers ---- */

static bool
sql_reset(Applier *a)
{
	buf_reset(&a->sql);
	return true;
}

/* A failure (the cap, memory) sticks to the Buf; callers report it. */
static bool
sql_add(Applier *a, const char *s)
{
	Error ignored = ERR_INIT;

	return buf_add_str(&a->sql, s, &ignored);
}

static bool
sql_addf_param(Applier *a, int n)
{
	char b[16];

	snprintf(b, sizeof(b), "$%d", n);
	return sql_add(a, b);
}

/*
 * Parameter values must be NUL-terminated for text format. values[i] of the
 * tuple columns listed in idx[] are copied into a->values in order.
 */
static bool
params_set(Applier *a, const PgoValue *const *vals, int n)
{
	Error ignored = ERR_INIT;
	size_t off = 0;

	if (n > a->params_cap)
	{
		const char **grown = realloc(a->params, sizeof(char *) * (size_t) n);

		if (grown == NULL)
			return false;
		a->params = grown;
		a->params_cap = n;
	}
	buf_reset(&a->values);
	for (int i = 0; i < n; i++)
		if (vals[i]->kind != 'n' &&
		    (!buf_add(&a->values, vals[i]->data, vals[i]->len, &ignored) ||
		     !buf_add(&a->values, "", 1, &ignored)))
			return false;
	/* the Buf no longer moves: point into it */
	for (int i = 0; i < n; i++)
	{
		if (vals[i]->kind == 'n')
		{
			a->params[i] = NULL;
			continue;
		}
		a->params[i] = buf_str(&a->values) + off;
		off += vals[i]->len + 1;
	}
	return true;
}

/* ---- relation cache ---- */

void
apply_rel_clear(Rel *r)
{
	for (int i = 0; i < r->ncols; i++)
	{
		free(r->cols[i].name);
		free(r->cols[i].qname);
		free(r->cols[i].tgt_name);
		free(r->cols[i].src_quoted);
	}
	free(r->cols);
	free(r->src_qname);
	free(r->schema_name);
	free(r->table_name);
	free(r->filter_sql);
	r->filter_sql = NULL;
	r->cols = NULL;
	r->ncols = 0;
	r->src_qname = r->schema_name = r->table_name = NULL;
}

Rel *
apply_rel_find(Applier *a, uint32_t relid)
{
	for (int i = 0; i < a->nrels; i++)
		if (a->rels[i]->relid == relid)
			return a->rels[i];
	return NULL;
}

/*
 * Types a REPLICA IDENTITY FULL match compares by their text: built-in types
 * without a default btree equality (json, xml, point, lseg, path, box,
 * polygon, line, circle, and their arrays); types whose equality holds
 * between different values (float4 and float8 with 0 and -0, numeric with
 * 1.5 and 1.50, interval with 1 day and 24 hours, jsonb with such numbers,
 * their arrays, numeric ranges), where it would pick another row of a table
 * that holds both; and types defined in the database, whose OIDs differ
 * between servers.
 */
static bool
needs_text_eq(uint32_t oid)
{
	static const uint32_t no_eq[] = {
	    114,  199,  142,  143,  600,  1017, 601,  1018, 602,  1019, 603,
	    1020, 604,  1027, 628,  629,  718,  719,  700,  1021, 701,  1022,
	    1700, 1231, 1186, 1187, 3802, 3807, 3906, 3907, 4532, 6151};

	if (oid >= 16384)
		return true;
	for (size_t i = 0; i < sizeof(no_eq) / sizeof(no_eq[0]); i++)
		if (no_eq[i] == oid)
			return true;
	return false;
}

/* Whether m lists r's columns, with their types. */
static bool
same_columns(const Rel *r, const PgoRelation *m)
{
	if (r->ncols != m->ncols)
		return false;
	for (int i = 0; i < m->ncols; i++)
		if (strcmp(r->cols[i].name, m->columns[i].name) != 0 ||
		    r->cols[i].type_oid != m->columns[i].type_oid ||
		    r->cols[i].typmod != m->columns[i].typmod)
			return false;
	return true;
}

/*
 * The target names of r's columns and those it leaves out (route/rename),
 * for a table of the task. Fails on a removed column of the replica
 * identity: the target's row could not be found by the rest.
 */
static bool
rel_rename(Applier *a, Rel *r, Error *err)
{
	RenamedTable rt;
	char **names;
	bool ok;

	if (a->task.renames == NULL || rename_none(a->task.renames))
		return true;
	names = calloc((size_t) r->ncols + 1, sizeof(char *));
	if (names == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < r->ncols; i++)
		names[i] = r->cols[i].name;
	ok = rename_table(a->task.renames, r->schema_name, r->table_name, names,
	                  r->ncols, NULL, &rt, err);
	free(names);
	if (!ok)
		return err_prefix(err, "source table %s: ", r->src_qname);
	for (int i = 0; ok && i < r->ncols; i++)
	{
		RelCol *c = &r->cols[i];

		if (rt.cols[i] == NULL)
		{
			c->removed = true;
			if (c->key && r->replident != 'f')
				ok = err_set(err, ERR_TARGET,
				             "source table %s: column %s is removed "
				             "(remove_columns) but is part of the replica "
				             "identity",
				             r->src_qname, c->name);
			continue;
		}
		if (strcmp(rt.cols[i], c->name) == 0)
			continue;
		free(c->tgt_name);
		free(c->qname);
		c->tgt_name = strdup(rt.cols[i]);
		c->qname = pg_quote_ident(rt.cols[i]);
		if (c->tgt_name == NULL || c->qname == NULL)
			ok = err_set(err, ERR_INTERNAL, "out of memory");
	}
	rename_table_free(&rt);
	return ok;
}

/* How many of r's first n columns the target takes (not removed). */
static int
kept_count(const Rel *r, int n)
{
	int k = 0;

	for (int i = 0; i < n && i < r->ncols; i++)
		k += !r->cols[i].removed;
	return k;
}

bool
apply_rel_update(Applier *a, const PgoRelation *m, Error *err)
{
	Rel *r = apply_rel_find(a, m->relid);
	bool same;

	if (r == NULL)
	{
		if (a->nrels == a->rels_cap)
		{
			int cap = a->rels_cap ? a->rels_cap * 2 : 64;
			Rel **grown = realloc(a->rels, sizeof(Rel *) * (size_t) cap);

			if (grown == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
			a->rels = grown;
			a->rels_cap = cap;
		}
		r = calloc(1, sizeof(Rel));
		if (r == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		a->rels[a->nrels++] = r;
		r->relid = m->relid;
	}
	/* A Relation message always replaces what was known: columns may have
	 * been added or dropped on the source since the last one. */
	/* pgoutput sends the description again after any invalidation of the
	 * table (an ANALYZE, an index): the target needs no new check then */
	same = r->cols != NULL && same_columns(r, m);
	r->changed = r->cols != NULL && !same;
	apply_rel_clear(r);
	r->replident = m->replica_identity;
	r->src_qname = pg_qualify(m->nspname, m->relname);
	r->schema_name = strdup(m->nspname);
	r->table_name = strdup(m->relname);
	r->cols = calloc((size_t) m->ncols + 1, sizeof(RelCol));
	if (r->src_qname == NULL || r->schema_name == NULL ||
	    r->table_name == NULL || r->cols == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	r->ncols = m->ncols;
	for (int i = 0; i < m->ncols; i++)
	{
		r->cols[i].name = strdup(m->columns[i].name);
		r->cols[i].qname = pg_quote_ident(m->columns[i].name);
		r->cols[i].tgt_name = strdup(m->columns[i].name);
		r->cols[i].src_quoted = pg_quote_ident(m->columns[i].name);
		if (r->cols[i].name == NULL || r->cols[i].qname == NULL ||
		    r->cols[i].tgt_name == NULL || r->cols[i].src_quoted == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		r->cols[i].type_oid = m->columns[i].type_oid;
		r->cols[i].typmod = m->columns[i].typmod;
		r->cols[i].key = m->columns[i].key;
		r->cols[i].text_eq = needs_text_eq(m->columns[i].type_oid);
	}
	if (!rel_rename(a, r, err))
		return false;
	apply_rel_targets(a, r);
	r->follow_pending = (r->follow_pending || !same) && a->task.sql != NULL &&
	                    a->ntables > 0 && r->table != NULL;
	return true;
}

const char *
apply_only(const Applier *a, const char *tgt_qname)
{
	for (int k = 0; k < a->nparted; k++)
		if (strcmp(a->parted_tables[k], tgt_qname) == 0)
			return "";
	return "ONLY ";
}

void
apply_rel_targets(Applier *a, Rel *r)
{
	r->table = NULL;
	r->rename_pending = false;
	/* by name, unless the name is now another table's (the task's was
	   renamed, and a new one took its name) */
	for (int i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].src_schema, r->schema_name) == 0 &&
		    strcmp(a->tables[i].src_name, r->table_name) == 0 &&
		    (a->tables[i].src_relid == 0 || a->tables[i].src_relid == r->relid))
			r->table = &a->tables[i];
	/* the same table (its oid) under another name: renamed on the source */
	for (int i = 0; r->table == NULL && i < a->ntables; i++)
		if (a->tables[i].src_relid != 0 && a->tables[i].src_relid == r->relid)
		{
			r->table = &a->tables[i];
			r->rename_pending = true;
		}
	/* no task tables (follow from a slot the user names): every table goes
	 * to the target table of the same name, every change applies */
	if (a->ntables == 0)
	{
		r->same_name.tgt_qname = r->src_qname;
		r->same_name.load_point = LSN_INVALID;
		r->table = &r->same_name;
	}
	r->only = r->table != NULL ? apply_only(a, r->table->tgt_qname) : "ONLY ";
	for (int i = 0; i < r->ncols; i++)
		r->cols[i].always = false;
	for (int k = 0; r->table != NULL && k < a->nalways; k++)
		if (strcmp(a->always_tables[k], r->table->tgt_qname) == 0)
			for (int i = 0; i < r->ncols; i++)
				if (strcmp(a->always_cols[k], r->cols[i].tgt_name) == 0)
					r->cols[i].always = true;
}

/* ---- following schema changes ---- */

/* Rows read from the source per UPDATE that fills a new column. */
#define FOLLOW_FILL_ROWS 1000

/* The parameters of the state's follow statement, as text[] literals. */
typedef struct FollowLists
{
	Buf names, oids, typmods, types, missing, flags, defaults;
	Buf tgt_names; /* the same columns by their target names */
} FollowLists;

static void
lists_free(FollowLists *l)
{
	buf_free(&l->names);
	buf_free(&l->oids);
	buf_free(&l->typmods);
	buf_free(&l->types);
	buf_free(&l->missing);
	buf_free(&l->flags);
	buf_free(&l->defaults);
	buf_free(&l->tgt_names);
}

/*
 * The columns the target takes (removed ones left out): the source's names,
 * types and typmods for relcols, and the target's names for the follow
 * statement, which compares and records the target's side.
 */
static bool
lists_describe(const Rel *r, FollowLists *l, Error *err)
{
	char num[16];

	buf_add(&l->names, "{", 1, err);
	buf_add(&l->tgt_names, "{", 1, err);
	buf_add(&l->oids, "{", 1, err);
	buf_add(&l->typmods, "{", 1, err);
	for (int i = 0; i < r->ncols; i++)
	{
		if (r->cols[i].removed)
			continue;
		pg_array_item(&l->names, r->cols[i].name, err);
		pg_array_item(&l->tgt_names, r->cols[i].tgt_name, err);
		snprintf(num, sizeof(num), "%u", r->cols[i].type_oid);
		pg_array_item(&l->oids, num, err);
		snprintf(num, sizeof(num), "%d", (int) r->cols[i].typmod);
		pg_array_item(&l->typmods, num, err);
	}
	buf_add(&l->names, "}", 1, err);
	buf_add(&l->tgt_names, "}", 1, err);
	buf_add(&l->oids, "}", 1, err);
	buf_add(&l->typmods, "}", 1, err);
	return buf_check(&l->names, err) && buf_check(&l->tgt_names, err) &&
	       buf_check(&l->oids, err) && buf_check(&l->typmods, err);
}

static bool
lists_facts(const RelColFact *f, int n, FollowLists *l, Error *err)
{
	buf_add(&l->types, "{", 1, err);
	buf_add(&l->missing, "{", 1, err);
	buf_add(&l->flags, "{", 1, err);
	buf_add(&l->defaults, "{", 1, err);
	for (int i = 0; i < n; i++)
	{
		pg_array_item(&l->types, f[i].type, err);
		pg_array_item(&l->missing, f[i].missing, err);
		pg_array_item(&l->flags, f[i].flags, err);
		pg_array_item(&l->defaults, f[i].def, err);
	}
	buf_add(&l->types, "}", 1, err);
	buf_add(&l->missing, "}", 1, err);
	buf_add(&l->flags, "}", 1, err);
	buf_add(&l->defaults, "}", 1, err);
	return buf_check(&l->types, err) && buf_check(&l->missing, err) &&
	       buf_check(&l->flags, err) && buf_check(&l->defaults, err);
}

/* Filling new columns of the target from the source's rows. */
typedef struct Fill
{
	Applier *a;
	int ncols;   /* keys first, then the new columns */
	Buf *arrays; /* one text[] literal per column, per batch of rows */
	const char **params;
	const char *update; /* the UPDATE, its parameters the arrays */
	int64_t rows;
} Fill;

static bool
fill_batch(const PGresult *res, void *ctx, Error *err)
{
	Fill *fl = ctx;

	for (int c = 0; c < fl->ncols; c++)
	{
		buf_reset(&fl->arrays[c]);
		buf_add(&fl->arrays[c], "{", 1, err);
		for (int i = 0; i < PQntuples(res); i++)
			pg_array_item(&fl->arrays[c],
			              PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c),
			              err);
		buf_add(&fl->arrays[c], "}", 1, err);
		if (!buf_check(&fl->arrays[c], err))
			return false;
		fl->params[c] = buf_str(&fl->arrays[c]);
	}
	fl->rows += PQntuples(res);
	return apply_send_plain(fl->a, fl->update, fl->ncols, fl->params, err);
}

/*
 * Gives the rows already on the target the values the source's rows hold
 * now for the columns new (names in cols): the source's changes after this
 * point carry every column of each row they touch, so each row ends with
 * the source's value. Matched on the replica identity's key.
 */
static bool
fill_columns(Applier *a, Rel *r, const RelColFact *f, const PGresult *cols,
             Error *err)
{
	Buf select = BUF_INIT(APPLY_SQL_MAX), update = BUF_INIT(APPLY_SQL_MAX);
	int nnew = PQntuples(cols), nkeys = 0, n = 0;
	int *idx = calloc((size_t) r->ncols + (size_t) nnew + 1, sizeof(int));
	Fill fl = {a, 0, NULL, NULL, NULL, 0};
	bool ok = idx != NULL;

	for (int i = 0; ok && i < r->ncols; i++)
		if (r->cols[i].key)
			idx[n++] = i;
	nkeys = n;
	for (int k = 0; ok && k < nnew; k++)
		for (int i = 0; i < r->ncols; i++)
			if (!r->cols[i].removed &&
			    strcmp(r->cols[i].tgt_name, PQgetvalue(cols, k, 0)) == 0)
				idx[n++] = i;
	fl.ncols = n;
	fl.arrays = calloc((size_t) n + 1, sizeof(Buf));
	fl.params = calloc((size_t) n + 1, sizeof(char *));
	if (!ok || fl.arrays == NULL || fl.params == NULL)
		ok = err_set(err, ERR_INTERNAL, "out of memory");
	for (int c = 0; ok && c < n; c++)
		buf_init(&fl.arrays[c], APPLY_VALUES_MAX);
	if (ok)
	{
		buf_add_str(&select, "SELECT ", err);
		buf_printf(&update, err, "UPDATE %s%s AS t SET ", r->only,
		           r->table->tgt_qname);
		for (int c = 0; c < n; c++)
			buf_printf(&select, err, "%s%s", c ? ", " : "",
			           r->cols[idx[c]].src_quoted);
		for (int c = nkeys; c < n; c++)
			buf_printf(&update, err, "%s%s = u.c%d::%s", c > nkeys ? ", " : "",
			           r->cols[idx[c]].qname, c, f[kept_count(r, idx[c])].type);
		buf_printf(&select, err, " FROM ONLY %s", r->src_qname);
		buf_add_str(&update, " FROM unnest(", err);
		for (int c = 0; c < n; c++)
			buf_printf(&update, err, "%s$%d::text[]", c ? ", " : "", c + 1);
		buf_add_str(&update, ") AS u(", err);
		for (int c = 0; c < n; c++)
			buf_printf(&update, err, "%sc%d", c ? ", " : "", c);
		buf_add_str(&update, ") WHERE ", err);
		for (int c = 0; c < nkeys; c++)
			buf_printf(&update, err, "%st.%s = u.c%d::%s", c ? " AND " : "",
			           r->cols[idx[c]].qname, c, f[kept_count(r, idx[c])].type);
		ok = buf_check(&select, err) && buf_check(&update, err);
	}
	fl.update = buf_str(&update);
	ok = ok && relcols_rows(a->task.source, buf_str(&select), FOLLOW_FILL_ROWS,
	                        fill_batch, &fl, err);
	if (ok)
		log_info("table %s: the values of %d new column(s) for its %lld "
		         "rows already there were read from the source",
		         r->src_qname, nnew, (long long) fl.rows);
	for (int c = 0; fl.arrays != NULL && c < n; c++)
		buf_free(&fl.arrays[c]);
	free(fl.arrays);
	free(fl.params);
	free(idx);
	buf_free(&select);
	buf_free(&update);
	return ok;
}

bool
apply_rel_follow(Applier *a, Rel *r, Error *err)
{
	FollowLists l = {BUF_INIT(STATE_COLUMNS_MAX), BUF_INIT(STATE_COLUMNS_MAX),
	                 BUF_INIT(STATE_COLUMNS_MAX), BUF_INIT(STATE_COLUMNS_MAX),
	                 BUF_INIT(APPLY_VALUES_MAX),  BUF_INIT(STATE_COLUMNS_MAX),
	                 BUF_INIT(STATE_COLUMNS_MAX), BUF_INIT(STATE_COLUMNS_MAX)};
	RelColFact *f = NULL;
	PGresult *fill = NULL;
	bool keyed = r->replident != 'f', ok;
	bool any_key = false;
	int nkept = kept_count(r, r->ncols);

	for (int i = 0; i < r->ncols; i++)
		any_key |= r->cols[i].key;
	ok = lists_describe(r, &l, err) &&
	     relcols_describe(a->task.source, r->relid, buf_str(&l.names),
	                      buf_str(&l.oids), buf_str(&l.typmods), nkept, &f,
	                      err) &&
	     lists_facts(f, nkept, &l, err);
	if (ok)
	{
		const char *params[10] = {
		    a->task.task,          r->table->src_schema,
		    r->table->src_name,    r->table->tgt_qname,
		    buf_str(&l.tgt_names), buf_str(&l.types),
		    buf_str(&l.missing),   buf_str(&l.flags),
		    buf_str(&l.defaults),  keyed && any_key ? "true" : "false"};

		ok = apply_query(a, a->task.sql, 10, params, &fill, err) &&
		     (PQntuples(fill) == 0 || fill_columns(a, r, f, fill, err));
	}
	PQclear(fill);
	relcols_facts_free(f, nkept);
	lists_free(&l);
	if (!ok)
		return err_prefix(
		    err, "following the columns of source table %s: ", r->src_qname);
	if (r->changed)
		fault_point("apply.follow.changed");
	r->follow_pending = false;
	return true;
}

/* apply_send_plain of a statement printed from fmt. */
static bool send_printf(Applier *a, Error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
send_printf(Applier *a, Error *err, const char *fmt, ...)
{
	Buf sql = BUF_INIT(APPLY_SQL_MAX);
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = buf_vprintf(&sql, fmt, ap, err);
	va_end(ap);
	ok = ok && apply_send_plain(a, buf_str(&sql), 0, NULL, err);
	buf_free(&sql);
	return ok;
}

/* Replaces each of the n names that is from by a copy of to. */
static bool
rename_in(char **names, int n, const char *from, const char *to, Error *err)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], from) == 0)
		{
			char *copy = strdup(to);

			if (copy == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
			free(names[i]);
			names[i] = copy;
		}
	return true;
}

/* Why the stream cannot follow t renamed on the source, or NULL. */
static const char *
rename_refused(const Applier *a, const ApplyTable *t, const char *old_q)
{
	if (a->task.rename_sql == NULL)
		return "the stream keeps no task state to follow it in";
	if (strcmp(t->tgt_qname, old_q) != 0)
		return "its target table has another name than its source's (a "
		       "rename rule, or loaded through another table)";
	if (t->filter != NULL || t->route_key != NULL)
		return "a row filter or the routing of the task names it by its "
		       "old name";
	if (a->task.renames != NULL && !rename_none(a->task.renames))
		return "the task's rename rules name tables by their source names";
	return NULL;
}

bool
apply_rel_follow_rename(Applier *a, Rel *r, Error *err)
{
	ApplyTable *t = &a->tables[r->table - a->tables];
	char *old_q = pg_qualify(t->src_schema, t->src_name);
	char *moved = pg_qualify(r->schema_name, t->src_name);
	char *qschema = pg_quote_ident(r->schema_name);
	char *qname = pg_quote_ident(r->table_name);
	char *schema = strdup(r->schema_name), *name = strdup(r->table_name);
	char *tgt = strdup(r->src_qname);
	const char *why;
	bool ok = old_q != NULL && moved != NULL && qschema != NULL &&
	          qname != NULL && schema != NULL && name != NULL && tgt != NULL;

	if (!ok)
		err_set(err, ERR_INTERNAL, "out of memory");
	why = ok ? rename_refused(a, t, old_q) : NULL;
	if (why != NULL)
	{
		err_set(err, ERR_SOURCE,
		        "table %s of task \"%s\" was renamed on the source to %s (the "
		        "same table, oid %u; transaction %u, committed at " LSN_FMT
		        "), and the stream cannot follow it: %s",
		        old_q, a->task.task ? a->task.task : "", r->src_qname, r->relid,
		        a->xid, LSN_ARGS(a->final_lsn), why);
		err_hint(err, "its changes under the new name stop the stream here, "
		              "none applied or dropped, and they stay in the "
		              "source's WAL: the task cannot go on past them. Name "
		              "the table by its new name in the task file and "
		              "start the task again (pgtide clean, then migrate)");
		ok = false;
	}
	/* inserts waiting for the old name go there first */
	ok = ok && apply_run_flush(a, err);
	if (ok && strcmp(t->src_schema, r->schema_name) != 0)
		ok = send_printf(a, err, "CREATE SCHEMA IF NOT EXISTS %s", qschema) &&
		     send_printf(a, err, "ALTER TABLE IF EXISTS %s SET SCHEMA %s",
		                 old_q, qschema);
	/* IF EXISTS: a batch whose commit answer was lost is not known to
	   have renamed it (decision 0033), and goes through here again */
	if (ok && strcmp(t->src_name, r->table_name) != 0)
		ok = send_printf(a, err, "ALTER TABLE IF EXISTS %s RENAME TO %s", moved,
		                 qname);
	if (ok)
	{
		const char *params[6] = {a->task.task, t->src_schema, t->src_name,
		                         schema,       name,          tgt};

		ok = apply_send_plain(a, a->task.rename_sql, 6, params, err);
	}
	if (ok)
		fault_point("apply.follow.renamed");
	/* what the session read of the target by the table's name (identity
	   columns, partitioning) follows it too */
	ok = ok && rename_in(a->always_tables, a->nalways, old_q, tgt, err) &&
	     rename_in(a->parted_tables, a->nparted, old_q, tgt, err);
	if (ok)
	{
		struct RenameUndo *grown =
		    realloc(a->undo, sizeof(*grown) * (size_t) (a->nundo + 1));

		ok = grown != NULL || err_set(err, ERR_INTERNAL, "out of memory");
		if (ok)
			a->undo = grown;
	}
	if (ok)
	{
		log_info("table %s was renamed on the source to %s: its target "
		         "table and the task's state follow it",
		         old_q, tgt);
		a->undo[a->nundo++] =
		    (struct RenameUndo){t, (char *) (uintptr_t) t->src_schema,
		                        (char *) (uintptr_t) t->src_name,
		                        (char *) (uintptr_t) t->tgt_qname};
		t->src_schema = schema;
		t->src_name = name;
		t->tgt_qname = tgt;
		schema = name = tgt = NULL;
		apply_rel_targets(a, r);
		atomic_fetch_add(&a->changes, 1);
	}
	free(old_q);
	free(moved);
	free(qschema);
	free(qname);
	free(schema);
	free(name);
	free(tgt);
	return ok;
}

void
apply_renames_end(Applier *a, bool kept)
{
	Error ignored = ERR_INIT;

	for (int i = a->nundo - 1; i >= 0; i--)
	{
		struct RenameUndo *u = &a->undo[i];
		ApplyTable *t = u->table;

		if (!kept)
		{
			rename_in(a->always_tables, a->nalways, t->tgt_qname, u->tgt_qname,
			          &ignored);
			rename_in(a->parted_tables, a->nparted, t->tgt_qname, u->tgt_qname,
			          &ignored);
			free((char *) (uintptr_t) t->src_schema);
			free((char *) (uintptr_t) t->src_name);
			free((char *) (uintptr_t) t->tgt_qname);
			t->src_schema = u->src_schema;
			t->src_name = u->src_name;
			t->tgt_qname = u->tgt_qname;
		}
		else
		{
			free(u->src_schema);
			free(u->src_name);
			free(u->tgt_qname);
		}
	}
	if (!kept && a->nundo > 0)
		for (int i = 0; i < a->nrels; i++)
			apply_rel_targets(a, a->rels[i]);
	free(a->undo);
	a->undo = NULL;
	a->nundo = 0;
}

/* ---- statements ---- */

/* "(a, b)=(1, x)" from the matched columns, for a conflict message. */
static char *
key_text(const Rel *r, const int *cols, const PgoValue *const *vals, int n)
{
	size_t cap = 8;
	char *out, *p;

	for (int i = 0; i < n; i++)
		cap += strlen(r->cols[cols[i]].qname) + 2 +
		       (vals[i]->kind == 'n' ? 4 : vals[i]->len) + 2;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	p = out;
	*p++ = '(';
	for (int i = 0; i < n; i++)
		p += snprintf(p, cap - (size_t) (p - out), "%s%s", i ? ", " : "",
		              r->cols[cols[i]].qname);
	p += snprintf(p, cap - (size_t) (p - out), ")=(");
	for (int i = 0; i < n; i++)
	{
		if (i)
			p += snprintf(p, cap - (size_t) (p - out), ", ");
		if (vals[i]->kind == 'n')
			p += snprintf(p, cap - (size_t) (p - out), "null");
		else
		{
			memcpy(p, vals[i]->data, vals[i]->len);
			p += vals[i]->len;
		}
	}
	snprintf(p, cap - (size_t) (p - out), ")");
	return out;
}

/*
 * WHERE clause matching the old row, params from *next on. With a key
 * (primary key or USING INDEX): key columns by equality. With REPLICA
 * IDENTITY FULL: every sent column, NULL-safe, and one row only even when
 * the table holds duplicates.
 */
static bool
add_where(Applier *a, Rel *r, const PgoTuple *old, int *next,
          const PgoValue **vals, int *cols, int *nmatch)
{
	bool full = r->replident == 'f';
	bool first = true;

	*nmatch = 0;
	if (full && !(sql_add(a, " WHERE (tableoid, ctid) = (SELECT tableoid, "
	                         "ctid FROM ") &&
	              sql_add(a, r->only) && sql_add(a, r->table->tgt_qname) &&
	              sql_add(a, " WHERE")))
		return false;
	else if (!full && !sql_add(a, " WHERE"))
		return false;
	for (int i = 0; i < r->ncols && i < old->ncols; i++)
	{
		const PgoValue *v = &old->values[i];

		if (v->kind == 'u' || (!full && !r->cols[i].key) || r->cols[i].removed)
			continue;
		if (!sql_add(a, first ? " " : " AND "))
			return false;
		first = false;
		if (full && r->cols[i].text_eq)
		{
			/*
			 * The old value is read as the column's type (the CASE gives the
			 * parameter that type) and both texts come from the target's
			 * output function: the source's own text may be written another
			 * way by another version (floats before 12).
			 */
			if (!sql_add(a, r->cols[i].qname) ||
			    !sql_add(a, "::text IS NOT DISTINCT FROM (CASE WHEN false "
			                "THEN ") ||
			    !sql_add(a, r->cols[i].qname) || !sql_add(a, " ELSE ") ||
			    !sql_addf_param(a, (*next)++) || !sql_add(a, " END)::text"))
				return false;
		}
		else if (!sql_add(a, r->cols[i].qname) ||
		         !sql_add(a, full ? " IS NOT DISTINCT FROM " : " = ") ||
		         !sql_addf_param(a, (*next)++))
			return false;
		cols[*nmatch] = i;
		vals[(*nmatch)++] = v;
	}
	/*
	 * A table without columns (or with only generated ones) has nothing to
	 * match on: under REPLICA IDENTITY FULL its rows are all alike, and any
	 * one of them is the row to change; one row goes, never all of them.
	 */
	if (first && !(full && old->ncols == 0))
		return false; /* nothing to match on */
	if (first && !sql_add(a, " true"))
		return false;
	return !full || sql_add(a, " LIMIT 1)");
}

static bool
rel_has_key(const Rel *r)
{
	for (int i = 0; i < r->ncols; i++)
		if (r->cols[i].key)
			return true;
	return false;
}

/* UPDATE and DELETE need a way to find the old row. */
static bool
check_identity(const Rel *r, const char *what, Error *err)
{
	if (r->replident == 'f' || (r->replident != 'n' && rel_has_key(r)))
		return true;
	err_set(err, ERR_TARGET,
	        "cannot apply %s on table %s: it has no primary key or replica "
	        "identity",
	        what, r->src_qname);
	return err_hint(err, "give the source table a primary key or REPLICA "
	                     "IDENTITY FULL");
}

/* The values and indexes of a tuple's columns that are sent (not 'u'). */
typedef struct ColSet
{
	const PgoValue **vals;
	int *cols;
	int n;
} ColSet;

static bool
colset_init(ColSet *cs, int cap)
{
	cs->vals = calloc((size_t) cap + 1, sizeof(PgoValue *));
	cs->cols = calloc((size_t) cap + 1, sizeof(int));
	cs->n = 0;
	return cs->vals != NULL && cs->cols != NULL;
}

static void
colset_free(ColSet *cs)
{
	free(cs->vals);
	free(cs->cols);
}

/*
 * "INSERT INTO t (c1..ck) VALUES ($1..$k), ... nrows times" and the conflict
 * clause of the policy, into the sql buffer. Rows without columns (a table
 * that has none, or only generated ones: pgoutput sends no generated column)
 * are "INSERT INTO t SELECT FROM generate_series(1, nrows)": "()" is not SQL,
 * and the target computes every value.
 */
static bool
build_insert(Applier *a, Rel *r, int ncols, int nrows)
{
	bool ok = sql_reset(a) && sql_add(a, "INSERT INTO ") &&
	          sql_add(a, r->table->tgt_qname);
	int n = ncols < r->ncols ? ncols : r->ncols;
	int k = kept_count(r, n); /* values per row: removed columns have none */
	char rows[64];
	bool always = false, first = true;

	snprintf(rows, sizeof(rows), " SELECT FROM generate_series(1, %d)", nrows);
	ok = ok && (k > 0 ? sql_add(a, " (") : sql_add(a, rows));
	for (int i = 0; ok && i < n; i++)
	{
		if (r->cols[i].removed)
			continue;
		ok = sql_add(a, first ? "" : ", ") && sql_add(a, r->cols[i].qname);
		first = false;
		always = always || r->cols[i].always;
	}
	if (ok && k > 0)
		ok = sql_add(a, always ? ") OVERRIDING SYSTEM VALUE VALUES "
		                       : ") VALUES ");
	for (int row = 0; ok && k > 0 && row < nrows; row++)
	{
		ok = sql_add(a, row ? ", (" : "(");
		for (int i = 0; ok && i < k; i++)
			ok =
			    sql_add(a, i ? ", " : "") && sql_addf_param(a, row * k + i + 1);
		ok = ok && sql_add(a, ")");
	}
	if (ok && a->policy != ON_CONFLICT_STOP)
	{
		bool key = r->replident != 'f' && rel_has_key(r);

		/* upsert: the source's row wins; skip: the target's row stays */
		if (a->policy == ON_CONFLICT_UPSERT && key)
		{
			first = true;
			ok = sql_add(a, " ON CONFLICT (");
			for (int i = 0; ok && i < n; i++)
				if (r->cols[i].key && !r->cols[i].removed)
				{
					ok = sql_add(a, first ? "" : ", ") &&
					     sql_add(a, r->cols[i].qname);
					first = false;
				}
			ok = ok && sql_add(a, ") DO UPDATE SET ");
			first = true;
			for (int i = 0; ok && i < n; i++)
			{
				if (r->cols[i].always || r->cols[i].removed)
					continue;
				ok = sql_add(a, first ? "" : ", ") &&
				     sql_add(a, r->cols[i].qname) &&
				     sql_add(a, " = EXCLUDED.") && sql_add(a, r->cols[i].qname);
				first = false;
			}
			/* tells an insert from an update, to count conflicts */
			ok = ok && sql_add(a, " RETURNING (xmax = 0)");
		}
		else
			ok = ok && sql_add(a, " ON CONFLICT DO NOTHING");
	}
	return ok;
}

/* One row, now: an UPDATE written as an upsert. */
static bool
apply_insert_now(Applier *a, Rel *r, const PgoTuple *t, PendKind kind,
                 Error *err)
{
	const PgoValue **vals;
	int n = t->ncols < r->ncols ? t->ncols : r->ncols;
	bool ok;

	int k = 0;

	vals = calloc((size_t) n + 1, sizeof(PgoValue *));
	if (vals == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
		if (!r->cols[i].removed)
			vals[k++] = &t->values[i];
	ok = build_insert(a, r, n, 1) && params_set(a, vals, k);
	free(vals);
	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return apply_send_prepared(a, kind, r, k, NULL, 1, err);
}

/* Sends nrows rows of the run from row `first` as one statement. */
static bool
run_send(Applier *a, int first, int nrows, Error *err)
{
	InsertRun *run = &a->run;
	int k = kept_count(run->rel, run->ncols);
	int nparams = nrows * k;

	if (nparams > a->params_cap)
	{
		const char **grown =
		    realloc(a->params, sizeof(char *) * (size_t) nparams);

		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		a->params = grown;
		a->params_cap = nparams;
	}
	for (int i = 0; i < nparams; i++)
	{
		int64_t off = run->offs[first * k + i];

		a->params[i] = off < 0 ? NULL : buf_str(&run->data) + off;
	}
	if (!build_insert(a, run->rel, run->ncols, nrows))
		return err_set(err, ERR_INTERNAL, "out of memory");
	return apply_send_prepared(a, APPLY_PEND_INSERT, run->rel, nparams, NULL,
	                           nrows, err);
}

/*
 * Sends the waiting rows: statements of APPLY_RUN_ROWS, 10 and 1 rows, so
 * that a table needs at most three prepared shapes.
 */
bool
apply_run_flush(Applier *a, Error *err)
{
	InsertRun *run = &a->run;
	uint32_t xid = a->xid;
	Lsn final_lsn = a->final_lsn;
	bool ok = true;

	if (run->rel == NULL)
		return true;
	/* messages name the transaction of the run's first row */
	a->xid = run->xid;
	a->final_lsn = run->final_lsn;
	for (int done = 0; ok && done < run->nrows;)
	{
		int left = run->nrows - done;
		int n = left >= APPLY_RUN_ROWS ? APPLY_RUN_ROWS : left >= 10 ? 10 : 1;

		ok = run_send(a, done, n, err);
		done += n;
	}
	a->xid = xid;
	a->final_lsn = final_lsn;
	run->rel = NULL;
	run->nrows = 0;
	buf_reset(&run->data);
	return ok;
}

bool
apply_run_add(Applier *a, Rel *r, const PgoTuple *t, Error *err)
{
	InsertRun *run = &a->run;
	int n = t->ncols < r->ncols ? t->ncols : r->ncols;
	int k = kept_count(r, n); /* the values stored per row */
	int cap, stored = 0;

	if (run->rel != NULL &&
	    (run->rel != r || run->ncols != n || run->nrows >= APPLY_RUN_ROWS ||
	     buf_len(&run->data) >= APPLY_RUN_BYTES ||
	     (run->nrows + 1) * k > 65535) &&
	    !apply_run_flush(a, err))
		return false;
	if (run->rel == NULL)
	{
		run->rel = r;
		run->ncols = n;
		run->xid = a->xid;
		run->final_lsn = a->final_lsn;
	}
	cap = (run->nrows + 1) * k;
	if (cap > run->offs_cap)
	{
		int c = run->offs_cap ? run->offs_cap * 2 : 1024;
		int64_t *grown;

		while (c < cap)
			c *= 2;
		grown = realloc(run->offs, sizeof(int64_t) * (size_t) c);
		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		run->offs = grown;
		run->offs_cap = c;
	}
	for (int i = 0; i < n; i++)
	{
		const PgoValue *v = &t->values[i];
		int64_t *off;

		if (r->cols[i].removed)
			continue;
		off = &run->offs[run->nrows * k + stored++];

		if (v->kind == 'n')
		{
			*off = -1;
			continue;
		}
		*off = (int64_t) buf_len(&run->data);
		if (!buf_add(&run->data, v->data, v->len, err) ||
		    !buf_add(&run->data, "", 1, err))
			return false;
	}
	run->nrows++;
	return true;
}

static bool
sends_every_column(const PgoTuple *t)
{
	for (int i = 0; i < t->ncols; i++)
		if (t->values[i].kind == 'u')
			return false;
	return true;
}

bool
apply_update(Applier *a, Rel *r, const PgoChange *ch, Error *err)
{
	const PgoTuple *nt = &ch->new_tuple;
	/* the old key when the key changed or identity is FULL, else the new */
	const PgoTuple *ot = ch->old_kind ? &ch->old_tuple : nt;
	ColSet cs, where;
	int next = 1, nset = 0;
	bool ok;
	char *key = NULL;

	if (!check_identity(r, "an UPDATE", err))
		return false;
	/*
	 * upsert: the new row version is written whether or not the old one is
	 * there (an old key that changed is deleted first). Needs a key and the
	 * whole row: with an unchanged TOASTed value the UPDATE stays an UPDATE.
	 */
	if (a->policy == ON_CONFLICT_UPSERT && r->replident != 'f' &&
	    rel_has_key(r) && sends_every_column(nt))
		return (ch->old_kind == 0 || apply_delete(a, r, ch, err)) &&
		       apply_insert_now(a, r, nt, APPLY_PEND_UPSERT, err);
	if (!colset_init(&cs, nt->ncols + ot->ncols) ||
	    !colset_init(&where, ot->ncols))
	{
		colset_free(&cs);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	ok = sql_reset(a) && sql_add(a, "UPDATE ") && sql_add(a, r->only) &&
	     sql_add(a, r->table->tgt_qname) && sql_add(a, " SET ");
	/* an unchanged TOASTed value ('u') is not sent: leave it as it is; an
	 * identity the target generates ALWAYS cannot be set, only matched */
	for (int i = 0; ok && i < r->ncols && i < nt->ncols; i++)
	{
		if (r->cols[i].always && ch->old_kind == 'K' && r->cols[i].key)
		{
			colset_free(&where);
			colset_free(&cs);
			err_set(err, ERR_TARGET,
			        "cannot apply an UPDATE of table %s that changes its "
			        "key: column %s is GENERATED ALWAYS AS IDENTITY on the "
			        "target",
			        r->src_qname, r->cols[i].qname);
			return err_hint(err, "on the target, ALTER TABLE ... ALTER "
			                     "COLUMN ... SET GENERATED BY DEFAULT for the "
			                     "migration, then run pgtide migrate again");
		}
		/* a removed column alone changed: nothing to set, nothing to do */
		if (nt->values[i].kind == 'u' || r->cols[i].always ||
		    r->cols[i].removed)
			continue;
		ok = sql_add(a, nset ? ", " : "") && sql_add(a, r->cols[i].qname) &&
		     sql_add(a, " = ") && sql_addf_param(a, next++);
		cs.vals[cs.n++] = &nt->values[i];
		nset++;
	}
	ok = ok && nset > 0 &&
	     add_where(a, r, ot, &next, where.vals, where.cols, &where.n);
	if (ok)
	{
		for (int i = 0; i < where.n; i++)
			cs.vals[cs.n++] = where.vals[i];
		key = key_text(r, where.cols, where.vals, where.n);
		ok = params_set(a, cs.vals, cs.n);
	}
	colset_free(&where);
	colset_free(&cs);
	if (!ok)
	{
		free(key);
		if (nset == 0)
			return true; /* only unchanged TOAST values: nothing to do */
		return err_set(err, ERR_INTERNAL,
		               "could not build an UPDATE for table %s", r->src_qname);
	}
	a->batch_has_ud = true;
	return apply_send_prepared(a, APPLY_PEND_UPDATE, r, next - 1, key, 1, err);
}

/*
 * The condition that names this task's rows of r's target table, when the
 * target can evaluate it: the table keeps the source's column names (no
 * renamed or removed column). NULL: every row is the task's.
 */
static const char *
own_rows(const Rel *r)
{
	if (r->table->filter == NULL)
		return NULL;
	for (int i = 0; i < r->ncols; i++)
		if (r->cols[i].removed || strcmp(r->cols[i].name, r->cols[i].tgt_name))
			return NULL;
	return r->table->filter;
}

bool
apply_delete(Applier *a, Rel *r, const PgoChange *ch, Error *err)
{
	ColSet where;
	int next = 1;
	char *key = NULL;
	bool ok;

	if (!check_identity(r, "a DELETE", err))
		return false;
	if (!colset_init(&where, ch->old_tuple.ncols))
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = sql_reset(a) && sql_add(a, "DELETE FROM ") && sql_add(a, r->only) &&
	     sql_add(a, r->table->tgt_qname) &&
	     add_where(a, r, &ch->old_tuple, &next, where.vals, where.cols,
	               &where.n);
	/* a key another task's row may hold there: only this task's rows */
	if (ok && own_rows(r) != NULL)
		ok = sql_add(a, " AND (") && sql_add(a, own_rows(r)) &&
		     sql_add(a, "\n)");
	if (ok)
	{
		key = key_text(r, where.cols, where.vals, where.n);
		ok = params_set(a, where.vals, where.n);
	}
	colset_free(&where);
	if (!ok)
	{
		free(key);
		return err_set(err, ERR_INTERNAL,
		               "could not build a DELETE for "
		               "table %s",
		               r->src_qname);
	}
	a->batch_has_ud = true;
	return apply_send_prepared(a, APPLY_PEND_DELETE, r, next - 1, key, 1, err);
}

bool
apply_truncate(Applier *a, const PgoTruncate *t, Error *err)
{
	int n = 0;
	bool ok = sql_reset(a) && sql_add(a, "TRUNCATE ");

	for (int i = 0; ok && i < t->nrelids; i++)
	{
		Rel *r = apply_rel_find(a, t->relids[i]);

		if (r == NULL)
			return err_set(err, ERR_SOURCE,
			               "TRUNCATE of relation %u before its description",
			               t->relids[i]);
		if (r->table == NULL && !apply_unknown(a, r, err))
			return false;
		if (r->table == NULL || a->final_lsn < r->table->load_point)
			continue;
		/* another task may write the target table too (load/share.h):
		   only this task's rows go, in a statement of their own */
		if (own_rows(r) != NULL)
		{
			Buf del = BUF_INIT(APPLY_SQL_MAX);

			ok = buf_printf(&del, err, "DELETE FROM %s%s WHERE (%s\n)", r->only,
			                r->table->tgt_qname, own_rows(r)) &&
			     apply_send_plain(a, buf_str(&del), 0, NULL, err);
			buf_free(&del);
			if (!ok)
				return false;
			atomic_fetch_add(&a->changes, 1);
			continue;
		}
		/* loaded through a target table it shares with others: emptying
		 * that would take their rows too */
		if (strcmp(r->table->tgt_qname, r->src_qname) != 0)
		{
			err_set(
			    err, ERR_TARGET,
			    "cannot apply TRUNCATE of %s: it is loaded into %s together "
			    "with other source tables",
			    r->src_qname, r->table->tgt_qname);
			return err_hint(err,
			                "the change stream stops here rather than "
			                "empty %s; a table that is truncated while "
			                "it migrates needs a target of its own",
			                r->table->tgt_qname);
		}
		/* ONLY binds to one name: "TRUNCATE ONLY a, b" empties b's
		 * inheritance children too, which the source kept */
		ok = sql_add(a, n++ ? ", " : "") && sql_add(a, r->only) &&
		     sql_add(a, r->table->tgt_qname);
	}
	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (n == 0)
		return true;
	if ((t->options & PGO_TRUNCATE_RESTART_IDENTITY) &&
	    !sql_add(a, " RESTART IDENTITY"))
		return err_set(err, ERR_INTERNAL, "out of memory");
	if ((t->options & PGO_TRUNCATE_CASCADE) && !sql_add(a, " CASCADE"))
		return err_set(err, ERR_INTERNAL, "out of memory");
	atomic_fetch_add(&a->changes, 1);
	return apply_send_plain(a, buf_str(&a->sql), 0, NULL, err);
}
