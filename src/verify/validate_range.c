/*
 * validate_range: one key range read on both sides at once: its predicate
 * over the key, count(*) and the sum of its row hashes computed in each
 * database, read again while the change stream may still be applying what
 * differs; and the counts-only comparison of a whole table. Only these
 * aggregates cross the network here: it never names a row.
 */
#include "verify/validate_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/lsn.h"
#include "pg/pg.h"

/*
 * Appends the predicate for [lo, hi) (NULL: unbounded) over the key to sql
 * and puts its parameters, numbered from $first, into params; *nparams gets
 * their number. Row comparison keeps a composite key's order and its index.
 */
bool
range_pred(const VTable *t, char *const *lo, char *const *hi, int first,
           Buf *sql, const char **params, int *nparams, Error *err)
{
	int n = 0;

	*nparams = 0;
	if (lo == NULL && hi == NULL)
		return buf_add_str(sql, "true", err);
	for (int side = 0; side < 2; side++)
	{
		char *const *b = side == 0 ? lo : hi;

		if (b == NULL)
			continue;
		if (n > 0)
			buf_add_str(sql, " AND ", err);
		buf_printf(sql, err, "(%s) %s (", t->key_list, side == 0 ? ">=" : "<");
		for (int k = 0; k < t->nkeys; k++)
		{
			buf_printf(sql, err, "%s$%d::%s", k ? ", " : "", first + n,
			           t->key_types[k]);
			params[n++] = b[k];
		}
		buf_add_str(sql, ")", err);
	}
	*nparams = n;
	return buf_check(sql, err);
}

bool
range_whole(VWorker *w, const VTable *t, VResult *res, bool *equal, Error *err)
{
	VAgg a;

	*equal = false;
	if (!range_agg(w, t, NULL, NULL, false, &a, err))
		return false;
	res->rows_src += a.src_rows;
	res->rows_tgt += a.tgt_rows;
	atomic_fetch_add(&w->run->rows_done, a.src_rows);
	*equal = range_agg_equal(&a);
	return true;
}

bool
range_agg_equal(const VAgg *a)
{
	return a->src_rows == a->tgt_rows && strcmp(a->src_sum, a->tgt_sum) == 0;
}

/*
 * Reads count and hash sum of pred on both sides. With counts_only the hash
 * is not computed (VALIDATE_COUNTS).
 */
static bool
read_agg(VWorker *w, const VTable *t, const char *pred, int nparams,
         const char *const *params, bool counts_only, VAgg *a, Error *err)
{
	bool whole = nparams == 0;
	char *sql_src = NULL, *sql_tgt = NULL;
	const char *lsn_col = w->run->cdc ? ", pg_current_wal_lsn()::text" : "";
	const char *agg = "'0'";
	char *sum_expr = NULL;
	PGresult *rs = NULL, *rt = NULL;
	bool ok = false;

	memset(a, 0, sizeof(*a));
	if (!counts_only)
	{
		if (asprintf(&sum_expr, "coalesce(sum(%s), 0)::text", t->hash_expr) < 0)
			return err_set(err, ERR_INTERNAL, "out of memory");
		agg = sum_expr;
	}
	/*
	 * Measured on PostgreSQL 15: a range read through an OFFSET 0 subquery
	 * (whose scan returns whole tuples) runs 15% faster than the plain
	 * aggregate; a whole table read plainly can use parallel workers, which
	 * the subquery forbids, and runs twice as fast.
	 */
	if (asprintf(&sql_src,
	             whole ? "SELECT count(*), %s%s FROM %s WHERE %s"
	                   : "SELECT count(*), %s%s FROM (SELECT * FROM %s WHERE %s"
	                     " OFFSET 0) r",
	             agg, lsn_col, t->src_from, pred) < 0)
		sql_src = NULL;
	if (asprintf(&sql_tgt,
	             whole ? "SELECT count(*), %s FROM %s WHERE %s"
	                   : "SELECT count(*), %s FROM (SELECT * FROM %s WHERE %s"
	                     " OFFSET 0) r",
	             agg, t->tgt_from, pred) < 0)
		sql_tgt = NULL;
	if (!query_send(w->src, sql_src, nparams, params, false, err) ||
	    !query_send(w->tgt, sql_tgt, nparams, params, false, err) ||
	    !query_result(w->run, w->src, &rs, err) ||
	    !query_result(w->run, w->tgt, &rt, err))
		goto out;
	a->src_rows = strtoll(PQgetvalue(rs, 0, 0), NULL, 10);
	a->tgt_rows = strtoll(PQgetvalue(rt, 0, 0), NULL, 10);
	snprintf(a->src_sum, sizeof(a->src_sum), "%s", PQgetvalue(rs, 0, 1));
	snprintf(a->tgt_sum, sizeof(a->tgt_sum), "%s", PQgetvalue(rt, 0, 1));
	if (w->run->cdc)
		lsn_parse(PQgetvalue(rs, 0, 2), &a->lsn);
	ok = true;
out:
	PQclear(rs);
	PQclear(rt);
	free(sql_src);
	free(sql_tgt);
	free(sum_expr);
	return ok;
}

/*
 * Reads a range until it is equal or, while CDC runs, until the reads are
 * exhausted; each new read waits for the applier to pass the previous one.
 */
bool
range_agg(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
          bool counts_only, VAgg *a, Error *err)
{
	Buf pred = BUF_INIT(VALIDATE_SQL_MAX);
	const char *params[2 * VALIDATE_MAX_KEYS];
	int n;
	bool ok = range_pred(t, lo, hi, 1, &pred, params, &n, err);

	for (int attempt = 0; ok; attempt++)
	{
		ok = read_agg(w, t, buf_str(&pred), n, params, counts_only, a, err);
		if (!ok || range_agg_equal(a) || !w->run->cdc ||
		    attempt + 1 >= VALIDATE_RECHECKS)
			break;
		ok = slot_wait_applied(w, a->lsn, NULL, err);
		atomic_fetch_add(&w->run->rereads, 1);
	}
	buf_free(&pred);
	return ok;
}

/*
 * The source's count of t from the run's shares, waiting until they are
 * counted: 1 when they hold it, 0 when t is left to its own count, -1 when
 * they could not be counted.
 */
static int
shared_count(const VRun *r, const VTable *t, int64_t *count)
{
	ValidateShares *sh = r->shares;
	int found = 0;

	if (sh == NULL || t->nsrc != 1)
		return 0;
	pthread_mutex_lock(&sh->lock);
	while (!sh->ready)
		pthread_cond_wait(&sh->cond, &sh->lock);
	pthread_mutex_unlock(&sh->lock);
	if (sh->failed)
		return -1;
	for (int i = 0; found == 0 && i < sh->ntables; i++)
		if (r->shard_target < sh->ntargets &&
		    strcmp(sh->schemas[i], t->src_schema) == 0 &&
		    strcmp(sh->names[i], t->src_table) == 0)
		{
			*count = sh->counts[i * sh->ntargets + r->shard_target];
			found = 1;
		}
	return found;
}

/*
 * t's count on the target, then on the source from the run's shares
 * (counted meanwhile); *shared false when the shares leave t to its own
 * count.
 */
static bool
shared_counts(VWorker *w, const VTable *t, VAgg *a, bool *shared, Error *err)
{
	char *sql = NULL;
	PGresult *res = NULL;
	bool ok;
	int found;

	memset(a, 0, sizeof(*a));
	*shared = false;
	if (w->run->shares == NULL || t->nsrc != 1)
		return true;
	if (asprintf(&sql, "SELECT count(*) FROM %s", t->tgt_from) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = query_send(w->tgt, sql, 0, NULL, false, err) &&
	     query_result(w->run, w->tgt, &res, err);
	free(sql);
	if (ok)
		a->tgt_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (!ok)
		return false;
	found = shared_count(w->run, t, &a->src_rows);
	if (found < 0)
		return err_set(err, ERR_SOURCE,
		               "the source's counts of every target's share could "
		               "not be read");
	*shared = found == 1;
	return true;
}

bool
range_compare_counts(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	VAgg a;
	bool shared;

	if (!shared_counts(w, t, &a, &shared, err) ||
	    (!shared && !range_agg(w, t, NULL, NULL, true, &a, err)))
		return false;
	res->rows_src += a.src_rows;
	res->rows_tgt += a.tgt_rows;
	res->differences += a.src_rows > a.tgt_rows ? a.src_rows - a.tgt_rows
	                                            : a.tgt_rows - a.src_rows;
	atomic_fetch_add(&w->run->rows_done, a.src_rows);
	return true;
}
