/*
 * apply_filter: the changes of a table under a row filter (the task file's
 * `filters`, decision 0029), turned into what keeps the target equal to the
 * source's filtered rows.
 *
 * Only the new row version is ever judged; whether the target holds the old
 * one says where it was:
 *
 *   change   new version inside           new version outside
 *   INSERT   INSERT                       dropped
 *   UPDATE   DELETE old key, INSERT new   DELETE old key
 *   DELETE   DELETE key (a missing row is no conflict for such a table)
 *
 * The source answers the condition (relcols, one statement per row
 * version, under the pinned settings), so the answer is the source's own on
 * every version pair. With several targets, a row's routing (route/shard) is
 * the first condition, decided here from its key's text form, which the
 * routable key types print alike under any settings (decision 0030). Values an UPDATE did not carry (unchanged TOASTed,
 * 'u') are read from the source's current row by key first. It never
 * writes to the source and never decides the batch.
 */
#include "cdc/apply_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/relcols.h"
#include "pg/pg.h"

/* The text[]-style literal of n numbers, "{1,2}", into b. */
static bool
int_array(Buf *b, const Rel *r, bool typmods, Error *err)
{
	char num[24];

	if (!buf_add_str(b, "{", err))
		return false;
	for (int i = 0; i < r->ncols; i++)
	{
		if (typmods)
			snprintf(num, sizeof(num), "%s%d", i ? "," : "",
			         (int) r->cols[i].typmod);
		else
			snprintf(num, sizeof(num), "%s%u", i ? "," : "",
			         r->cols[i].type_oid);
		if (!buf_add(b, num, strlen(num), err))
			return false;
	}
	return buf_add_str(b, "}", err);
}

/*
 * Builds r's question to the source once per description:
 *   SELECT (cond) IS TRUE FROM (VALUES ($1::t1, ...)) AS "name"(c1, ...)
 * Each type is the source's format_type of the Relation message's OID and
 * typmod, so each value is read back by the type that wrote it.
 */
static bool
filter_sql(Applier *a, Rel *r, Error *err)
{
	Buf oids, typmods, sql;
	const char *params[2];
	PGresult *res = NULL;
	char *alias = NULL;
	bool ok;

	if (r->filter_sql != NULL)
		return true;
	if (r->ncols == 0)
		return err_set(err, ERR_TARGET,
		               "cannot filter the rows of table %s: it has no "
		               "column the stream carries",
		               r->src_qname);
	buf_init(&oids, 1 << 20);
	buf_init(&typmods, 1 << 20);
	buf_init(&sql, APPLY_SQL_MAX);
	ok = int_array(&oids, r, false, err) && int_array(&typmods, r, true, err);
	params[0] = buf_str(&oids);
	params[1] = buf_str(&typmods);
	ok = ok && relcols_query(a->task.source,
	                         "SELECT format_type(t.o, t.m) FROM"
	                         " unnest($1::oid[], $2::int[]) WITH ORDINALITY"
	                         " AS t(o, m, i) ORDER BY t.i",
	                         2, params, &res, err);
	if (ok && PQntuples(res) != r->ncols)
		ok = err_set(err, ERR_INTERNAL,
		             "the source named %d types for the %d columns of %s",
		             PQntuples(res), r->ncols, r->src_qname);
	alias = ok ? pg_quote_ident(r->table_name) : NULL;
	ok = ok && alias != NULL && buf_add_str(&sql, "SELECT (", err) &&
	     buf_add(&sql, r->table->filter, strlen(r->table->filter), err) &&
	     buf_add_str(&sql, "\n) IS TRUE FROM (VALUES (", err);
	for (int i = 0; ok && i < r->ncols; i++)
	{
		char p[32];
		const char *type = PQgetvalue(res, i, 0);

		snprintf(p, sizeof(p), "%s$%d::", i ? ", " : "", i + 1);
		ok = buf_add(&sql, p, strlen(p), err) &&
		     buf_add(&sql, type, strlen(type), err);
	}
	ok = ok && buf_add_str(&sql, ")) AS ", err) &&
	     buf_add(&sql, alias, strlen(alias), err) &&
	     buf_add_str(&sql, "(", err);
	for (int i = 0; ok && i < r->ncols; i++)
		ok = (i == 0 || buf_add_str(&sql, ", ", err)) &&
		     buf_add(&sql, r->cols[i].src_quoted, strlen(r->cols[i].src_quoted),
		             err);
	ok = ok && buf_add_str(&sql, ")", err);
	if (ok && (r->filter_sql = strdup(buf_str(&sql))) == NULL)
		ok = err_set(err, ERR_INTERNAL, "out of memory");
	PQclear(res);
	free(alias);
	buf_free(&oids);
	buf_free(&typmods);
	buf_free(&sql);
	return ok ? true
	          : err_prefix(err, "preparing the row filter of table %s: ",
	                       r->src_qname);
}

/* vals[0..n) as NUL-terminated texts in b; params[i] NULL for SQL NULL. */
static bool
texts(Buf *b, const PgoValue *vals, int n, const char **params, Error *err)
{
	size_t off = 0;

	buf_reset(b);
	for (int i = 0; i < n; i++)
		if (vals[i].kind != 'n' &&
		    (!buf_add(b, vals[i].data, vals[i].len, err) ||
		     !buf_add(b, "", 1, err)))
			return false;
	for (int i = 0; i < n; i++)
	{
		params[i] = NULL;
		if (vals[i].kind == 'n')
			continue;
		params[i] = buf_str(b) + off;
		off += vals[i].len + 1;
	}
	return true;
}

/*
 * Reads, from the source's current row with the new version's key, the
 * values the change did not carry ('u') into vals (views into *res, which
 * the caller clears). *present is false when the row is gone since: a
 * later DELETE in the stream says so too.
 */
static bool
fill_unchanged(Applier *a, Rel *r, PgoValue *vals, int n, PGresult **res,
               bool *present, Error *err)
{
	Buf sql, vbuf;
	const char **params = calloc((size_t) n + 1, sizeof(char *));
	PgoValue *keys = calloc((size_t) n + 1, sizeof(PgoValue));
	int nkeys = 0, nread = 0;
	char *qname = pg_qualify(r->schema_name, r->table_name);
	bool ok = params != NULL && keys != NULL && qname != NULL;

	if (!ok)
	{
		free(params);
		free(keys);
		free(qname);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	if (r->replident == 'f')
	{
		free(params);
		free(keys);
		free(qname);
		err_set(err, ERR_TARGET,
		        "cannot apply an UPDATE of filtered table %s: it leaves a "
		        "TOASTed value out and the table has no key to read it by",
		        r->src_qname);
		return err_hint(err, "give the source table a primary key, or remove "
		                     "its filter");
	}
	buf_init(&sql, APPLY_SQL_MAX);
	buf_init(&vbuf, APPLY_VALUES_MAX);
	ok = buf_add_str(&sql, "SELECT ", err);
	for (int i = 0; ok && i < n; i++)
		if (vals[i].kind == 'u')
		{
			ok = (nread == 0 || buf_add_str(&sql, ", ", err)) &&
			     buf_add(&sql, r->cols[i].src_quoted,
			             strlen(r->cols[i].src_quoted), err);
			nread++;
		}
	ok = ok && buf_add_str(&sql, " FROM ONLY ", err) &&
	     buf_add(&sql, qname, strlen(qname), err) &&
	     buf_add_str(&sql, " WHERE", err);
	for (int i = 0; ok && i < n; i++)
	{
		char p[32];

		if (!r->cols[i].key)
			continue;
		keys[nkeys++] = vals[i];
		snprintf(p, sizeof(p), " = $%d", nkeys);
		ok = buf_add_str(&sql, nkeys > 1 ? " AND " : " ", err) &&
		     buf_add(&sql, r->cols[i].src_quoted, strlen(r->cols[i].src_quoted),
		             err) &&
		     buf_add(&sql, p, strlen(p), err);
	}
	ok = ok && texts(&vbuf, keys, nkeys, params, err) &&
	     relcols_query(a->task.source, buf_str(&sql), nkeys, params, res, err);
	*present = ok && PQntuples(*res) > 0;
	for (int i = 0, c = 0; ok && *present && i < n; i++)
		if (vals[i].kind == 'u')
		{
			bool null = PQgetisnull(*res, 0, c);

			vals[i].kind = null ? 'n' : 't';
			vals[i].data = null ? NULL : PQgetvalue(*res, 0, c);
			vals[i].len = null ? 0 : (uint32_t) PQgetlength(*res, 0, c);
			c++;
		}
	buf_free(&sql);
	buf_free(&vbuf);
	free(params);
	free(keys);
	free(qname);
	return ok ? true
	          : err_prefix(
	                err, "reading the current row of table %s: ", r->src_qname);
}

/*
 * Whether the row version vals is this stream's target's, by its routing
 * column (route/shard, in pgtide: no round trip). A key of no target (NULL,
 * a list value or range no target has) stops the stream rather than be
 * dropped by every target: the load refused such rows too.
 */
static bool
route_here(Applier *a, Rel *r, const PgoValue *vals, int n, bool *here,
           Error *err)
{
	const char *key = r->table->route_key;
	int col = 0, target;

	while (col < n && strcmp(r->cols[col].name, key) != 0)
		col++;
	if (col == n || a->task.shard == NULL)
		return err_set(err, ERR_INTERNAL,
		               "table %s is routed by column %s, which its changes "
		               "do not carry",
		               r->src_qname, key);
	if (!shard_route(a->task.shard,
	                 vals[col].kind == 'n' ? NULL : vals[col].data,
	                 vals[col].kind == 'n' ? 0 : vals[col].len, &target, err))
	{
		err_prefix(err, "a row of table %s, column %s: ", r->src_qname, key);
		return err_hint(err, "the stream resumes at this change, so its key "
		                     "needs a target: add it to the rules "
		                     "(shard.values, shard.bounds) and run migrate "
		                     "again; a NULL key has none under any rule "
		                     "(make the column NOT NULL before a task "
		                     "starts)");
	}
	*here = target == a->task.shard_target;
	return true;
}

/* The column of r named name as pgoutput sends it, or -1. */
static int
col_index(const Rel *r, const char *name)
{
	for (int i = 0; i < r->ncols; i++)
		if (strcmp(r->cols[i].name, name) == 0)
			return i;
	return -1;
}

/* Stops the stream at a change of the lookup table it cannot follow. */
static bool
lookup_refuse(const char *schema, const char *table, const char *what,
              Error *err)
{
	err_set(err, ERR_CONFIG, "a row of lookup table %s.%s %s", schema, table,
	        what);
	err_detail(err, "the rows already routed by the key stay where they "
	                "are");
	return err_hint(err, "the stream stops at this change on every run: "
	                     "start the task again (pgtide clean, then migrate), "
	                     "which routes by the lookup table as it is then");
}

bool
apply_lookup_change(Applier *a, const Rel *r, PgoKind kind, const PgoChange *ch,
                    Error *err)
{
	const char *schema, *table, *key_col, *target_col;
	const PgoTuple *tup = kind == PGO_DELETE ? &ch->old_tuple : &ch->new_tuple;
	const PgoValue *key, *target;
	char name[SHARD_NAME_MAX + 1];
	int k, t, was, now;

	if (a->task.shard == NULL ||
	    !shard_spec_lookup_table(a->task.shard, &schema, &table, &key_col,
	                             &target_col))
		return true;
	k = col_index(r, key_col);
	t = col_index(r, target_col);
	if (k < 0 || t < 0 || k >= tup->ncols)
		return err_set(err, ERR_INTERNAL,
		               "a change of lookup table %s.%s lacks column %s or %s",
		               schema, table, key_col, target_col);
	key = &tup->values[k];
	if (key->kind != 't')
		return lookup_refuse(schema, table, "has no key", err);
	if (kind == PGO_DELETE)
		return !shard_lookup_has(a->task.shard, key->data, key->len, &was) ||
		       lookup_refuse(schema, table,
		                     "was deleted: new rows of its key would have no "
		                     "target",
		                     err);
	/* an UPDATE that gave a routed key another key */
	if (kind == PGO_UPDATE && ch->old_kind != 0 && k < ch->old_tuple.ncols &&
	    ch->old_tuple.values[k].kind == 't' &&
	    (ch->old_tuple.values[k].len != key->len ||
	     memcmp(ch->old_tuple.values[k].data, key->data, key->len) != 0) &&
	    shard_lookup_has(a->task.shard, ch->old_tuple.values[k].data,
	                     ch->old_tuple.values[k].len, &was))
		return lookup_refuse(schema, table, "changed its key", err);
	if (t >= tup->ncols || tup->values[t].kind == 'u')
		return true; /* the target column did not change */
	target = &tup->values[t];
	if (target->kind != 't' || target->len > SHARD_NAME_MAX)
		return lookup_refuse(schema, table, "names no target", err);
	memcpy(name, target->data, target->len);
	name[target->len] = '\0';
	now = shard_spec_target_index(a->task.shard, name);
	if (now >= 0 &&
	    shard_lookup_has(a->task.shard, key->data, key->len, &was) &&
	    was != now)
	{
		/* every target must meet the change from one snapshot's copy: a
		   slot per target loaded each from its own (decision 0045) */
		if (!a->task.shared_slot || a->hsql.find == NULL)
		{
			lookup_refuse(schema, table, "gave its key another target", err);
			return err_hint(err, "the stream resumes at this change: a key "
			                     "moves its rows between targets under "
			                     "shard.slot one (the default), where every "
			                     "target loads from one snapshot; start the "
			                     "task again under it (pgtide clean, then "
			                     "migrate), or move the key's rows yourself "
			                     "after the cutover");
		}
		/* every target's stream numbers the moves of a transaction alike,
		   the two it names among them */
		a->handovers_in_txn++;
		if ((was == a->task.shard_target || now == a->task.shard_target) &&
		    !apply_handover(a, key->data, key->len, was, now, err))
			return false;
	}
	return shard_lookup_put(a->task.shard, key->data, key->len, name, err);
}

/* Whether the source's condition holds for the row version vals. */
static bool
filter_holds(Applier *a, Rel *r, const PgoValue *vals, int n, bool *inside,
             Error *err)
{
	Buf vbuf;
	const char **params = calloc((size_t) r->ncols + 1, sizeof(char *));
	PGresult *res = NULL;
	bool ok = params != NULL;

	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	buf_init(&vbuf, APPLY_VALUES_MAX);
	/* columns the tuple lacks (none today) are NULL */
	ok = filter_sql(a, r, err) && texts(&vbuf, vals, n, params, err) &&
	     relcols_query(a->task.source, r->filter_sql, r->ncols, params, &res,
	                   err);
	if (ok && PQntuples(res) != 1)
		ok = err_set(err, ERR_INTERNAL, "the row filter of %s gave %d rows",
		             r->src_qname, PQntuples(res));
	*inside = ok && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	buf_free(&vbuf);
	free(params);
	return ok ? true
	          : err_prefix(err, "evaluating the row filter of table %s: ",
	                       r->src_qname);
}

bool
apply_filtered(Applier *a, Rel *r, PgoKind kind, const PgoChange *ch,
               Error *err)
{
	const PgoTuple *nt = &ch->new_tuple;
	int n = nt->ncols < r->ncols ? nt->ncols : r->ncols;
	PgoValue *vals;
	PgoTuple full;
	PgoChange del;
	PGresult *read = NULL;
	bool present = true, inside = false, unchanged = false, ok;

	if (kind == PGO_DELETE)
		return apply_delete(a, r, ch, err);
	if (a->task.source == NULL)
		return err_set(err, ERR_INTERNAL,
		               "table %s has a row filter but the stream has no "
		               "source session",
		               r->src_qname);
	vals = calloc((size_t) n + 1, sizeof(PgoValue));
	if (vals == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
	{
		vals[i] = nt->values[i];
		unchanged = unchanged || vals[i].kind == 'u';
	}
	ok = !unchanged || fill_unchanged(a, r, vals, n, &read, &present, err);
	/* the routing first: the source is asked only about this target's rows */
	inside = present;
	if (ok && present && r->table->route_key != NULL)
		ok = route_here(a, r, vals, n, &inside, err);
	if (ok && inside && r->table->filter != NULL)
		ok = filter_holds(a, r, vals, n, &inside, err);
	full.ncols = n;
	full.values = vals;
	if (ok && kind == PGO_UPDATE)
	{
		/* the old version, by its key: the old key sent when it changed
		   (or the whole old row, identity FULL), else the new one's */
		del = *ch;
		if (ch->old_kind == 0)
			del.old_tuple = full;
		ok = apply_delete(a, r, &del, err);
	}
	if (ok && inside)
		ok = apply_run_add(a, r, &full, err);
	else if (ok && present)
		atomic_fetch_add(&a->filtered, 1);
	PQclear(read);
	free(vals);
	return ok;
}
