/*
 * shares: every target's share of each source table, counted in one pass
 * over the fenced source for the final validation of several targets
 * (docs/sharding.md#cutover). Each target's own count of its share would
 * read every routed table once per target, and evaluate the routing
 * condition (an md5 of the key under the hash method) on every row of each
 * read, while the application cannot write.
 *
 * A routed table with few distinct keys for its rows (by the source's
 * statistics) is counted per key and each key routed here, by
 * route/shard; one with many,
 * under the hash method, is counted per target index computed by the
 * source, once per row. A lookup or list table with many keys is left to
 * each target's own count (the range method is never counted here: its
 * condition costs less than any count of shares). Reads only; the counts are the fenced source's, so
 * they hold for every target.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "cutover/cutover_int.h"
#include "load/shards.h"
#include "pg/catalog.h"
#include "route/filter.h"

/* Distinct keys a table is counted by, one row each, at most; and the
 * fewest rows per key on average (measured on PostgreSQL 15: grouping 3
 * million rows by 100 keys took 0.25 s, by 3 million keys 2.3 s, and the
 * hash of every row 1.9 s). */
#define SHARES_KEYS_MAX     200000
#define SHARES_ROWS_PER_KEY 4

/* A query of these shares: a condition of thousands of values fits. */
#define SHARES_SQL_CAP (16 * 1024 * 1024)

/*
 * The source's estimates of t's rows and of column col's distinct values
 * (-1: no statistics).
 */
static bool
estimates(PgConn *src, const CatTable *t, const char *col, double *rows,
          double *keys, Error *err)
{
	const char *params[3] = {t->schema, t->name, col};
	char value[128];
	char *end;

	if (!pg_query_value(src,
	                    "SELECT greatest(c.reltuples, 0)::text || ' ' || "
	                    "coalesce((SELECT CASE WHEN s.n_distinct >= 0 "
	                    "THEN s.n_distinct ELSE -s.n_distinct * "
	                    "greatest(c.reltuples, 0) END FROM pg_stats s WHERE "
	                    "s.schemaname = $1 AND s.tablename = $2 AND "
	                    "s.attname = $3 AND NOT s.inherited), -1)::text "
	                    "FROM pg_class c JOIN pg_namespace n ON n.oid = "
	                    "c.relnamespace WHERE n.nspname = $1 AND c.relname = "
	                    "$2",
	                    3, params, value, sizeof(value), err))
		return false;
	*rows = strtod(value, &end);
	*keys = strtod(end, NULL);
	return true;
}

/* "SELECT <what>, count(*) FROM ONLY t WHERE (own filter) GROUP BY 1" */
static bool
count_query(const CatTable *t, const char *what, const char *filter, Buf *b,
            Error *err)
{
	return buf_printf(b, err, "SELECT %s, count(*) FROM ONLY %s WHERE (%s\n)",
	                  what, t->qname, filter != NULL ? filter : "true") &&
	       (strcmp(what, "0") == 0 || buf_add_str(b, " GROUP BY 1", err)) &&
	       buf_check(b, err);
}

/*
 * Table t's rows on each target into counts[0..n); false in *counted when
 * it is left to each target's own count.
 */
static bool
count_table(Cutover *c, const ShardSpec *spec, const CatTable *t,
            int64_t *counts, bool *counted, Error *err)
{
	int n = c->ntargets, key_col, whole;
	uint32_t key_type;
	const char *filter = filter_own(c->cfg, t->schema, t->name);
	char *qcol = NULL;
	Buf sql = BUF_INIT(SHARES_SQL_CAP);
	PGresult *res = NULL;
	bool by_key = false, ok;
	double rows = 0, keys = -1;

	*counted = false;
	memset(counts, 0, (size_t) n * sizeof(*counts));
	if (!shards_copy_route(spec, t, &key_col, &key_type, &whole, err))
		return false;
	if (key_col < 0)
		ok = count_query(t, "0", filter, &sql, err);
	else
	{
		qcol = pg_quote_ident(t->cols[key_col].name);
		if (qcol == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		ok = estimates(c->src, t, t->cols[key_col].name, &rows, &keys, err);
		/* a row per key costs more than a hash per row once keys are
		   not much fewer than rows */
		by_key = ok && keys >= 0 && keys <= SHARES_KEYS_MAX &&
		         keys * SHARES_ROWS_PER_KEY <= rows;
		if (ok && by_key)
		{
			Buf what = BUF_INIT(1024);

			ok = buf_printf(&what, err, "%s::text", qcol) &&
			     count_query(t, buf_str(&what), filter, &sql, err);
			buf_free(&what);
		}
		else if (ok && c->cfg->shard_method == SHARD_HASH)
		{
			Buf what = BUF_INIT(1024);

			ok = shard_sql_hash_index(spec, qcol, &what, err) &&
			     count_query(t, buf_str(&what), filter, &sql, err);
			buf_free(&what);
		}
		else
		{
			free(qcol);
			buf_free(&sql);
			return ok;
		}
	}
	ok = ok && pg_query(c->src, buf_str(&sql), 0, NULL, &res, err);
	for (int r = 0; ok && r < PQntuples(res); r++)
	{
		int64_t n_rows = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		int target = whole;

		/* a key of no target counts on none, as each target's
		   condition would have it */
		if (key_col >= 0 && PQgetisnull(res, r, 0))
			continue;
		if (key_col >= 0 && by_key)
		{
			Error none = ERR_INIT;

			if (!shard_route(spec, PQgetvalue(res, r, 0),
			                 (size_t) PQgetlength(res, r, 0), &target, &none))
				continue;
		}
		else if (key_col >= 0)
			target = (int) strtol(PQgetvalue(res, r, 0), NULL, 10);
		for (int k = 0; k < n; k++)
			if (target < 0 || target == k)
				counts[k] += n_rows;
	}
	PQclear(res);
	free(qcol);
	buf_free(&sql);
	*counted = ok;
	return ok;
}

void
cutover_shares_free(ValidateShares *s)
{
	for (int i = 0; i < s->ntables; i++)
	{
		free(s->schemas[i]);
		free(s->names[i]);
	}
	free(s->schemas);
	free(s->names);
	free(s->counts);
	s->schemas = s->names = NULL;
	s->counts = NULL;
	s->ntables = 0;
}

/* Counts into out, which no reader sees until it is ready. */
static bool
count_shares(Cutover *c, ValidateShares *out, Error *err)
{
	ShardSpec *spec = NULL;
	Catalog *cat = NULL;
	int64_t t0 = clock_ms();
	int nkeys;
	/* the lookup table's map, as the fenced source holds it */
	bool ok = shard_spec_new(c->cfg, &spec, err) &&
	          shards_lookup_read(c->src, NULL, spec, &nkeys, err) &&
	          catalog_read(c->src, c->cfg->state_schema, &cat, err) &&
	          catalog_select(cat, c->cfg->include.items, c->cfg->include.count,
	                         c->cfg->exclude.items, c->cfg->exclude.count, err);

	if (ok)
	{
		out->ntargets = c->ntargets;
		out->schemas = calloc((size_t) cat->ntables + 1, sizeof(char *));
		out->names = calloc((size_t) cat->ntables + 1, sizeof(char *));
		out->counts = calloc(((size_t) cat->ntables + 1) * (size_t) c->ntargets,
		                     sizeof(int64_t));
		if (out->schemas == NULL || out->names == NULL || out->counts == NULL)
			ok = err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; ok && i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];
		int64_t *counts = &out->counts[out->ntables * c->ntargets];
		bool counted;

		if (!t->selected || t->relkind != 'r')
			continue;
		ok = count_table(c, spec, t, counts, &counted, err);
		fault_point("cutover.counting");
		if (!ok)
			err_prefix(err, "counting the targets' shares of %s: ", t->qname);
		else if (counted)
		{
			out->schemas[out->ntables] = strdup(t->schema);
			out->names[out->ntables] = strdup(t->name);
			ok = (out->schemas[out->ntables] != NULL &&
			      out->names[out->ntables] != NULL) ||
			     err_set(err, ERR_INTERNAL, "out of memory");
			out->ntables++;
		}
	}
	if (ok)
		log_info("counted every target's share of %d tables in one pass over "
		         "the source (%.2f s)",
		         out->ntables, (double) (clock_ms() - t0) / 1000.0);
	catalog_free(cat);
	shard_spec_free(spec);
	return ok;
}

bool
cutover_count_shares(Cutover *c, ValidateShares *out, Error *err)
{
	bool ok = count_shares(c, out, err);

	pthread_mutex_lock(&out->lock);
	if (!ok)
		cutover_shares_free(out);
	out->failed = !ok;
	out->ready = true;
	pthread_cond_broadcast(&out->cond);
	pthread_mutex_unlock(&out->lock);
	return ok;
}
