/*
 * validate_keyed: the drill-down of a table with a key. A range that
 * differs is split at source keys until it is a leaf small enough to name
 * its rows (missing, extra, different); named keys are read again by
 * equality where the change stream or a collation may explain them. It
 * never holds more than one leaf's source rows and VALIDATE_RECHECK_MAX
 * named keys of it, whatever the size of the table, and never writes.
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/lsn.h"
#include "pg/pg.h"

#define VALIDATE_LEAF_ROWS     1000 /* source rows below which rows are named */
#define VALIDATE_SPLIT_WAYS    16
#define VALIDATE_MAX_DEPTH     12
#define VALIDATE_RECHECK_MAX   5000 /* named keys kept per leaf for rechecks */
#define VALIDATE_RECHECK_BATCH 1000

/* Named differences of one leaf, kept for rechecks (bounded). */
typedef struct DiffSet
{
	VDiff *d;
	int n;
	int cap;
	int64_t overflow; /* differences beyond VALIDATE_RECHECK_MAX: counted */
} DiffSet;

/* Adds a keyed difference; key values are copied from a result row. */
static bool
diffset_add(DiffSet *s, VKind kind, const PGresult *res, int row, int nkeys,
            Error *err)
{
	VDiff *d;

	if (s->n >= VALIDATE_RECHECK_MAX)
	{
		s->overflow++;
		return true;
	}
	if (s->n == s->cap)
	{
		int cap = s->cap ? s->cap * 2 : 16;
		VDiff *p = realloc(s->d, (size_t) cap * sizeof(VDiff));

		if (p == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		s->d = p;
		s->cap = cap;
	}
	d = &s->d[s->n];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->key = calloc((size_t) nkeys + 1, sizeof(char *));
	if (d->key == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int k = 0; k < nkeys; k++)
		if (!PQgetisnull(res, row, k) &&
		    (d->key[k] = strdup(PQgetvalue(res, row, k))) == NULL)
		{
			strv_free(d->key, nkeys);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	s->n++;
	return true;
}

static void
diffset_free(DiffSet *s, int nkeys)
{
	for (int i = 0; i < s->n; i++)
		result_diff_free(&s->d[i], nkeys);
	free(s->d);
	memset(s, 0, sizeof(*s));
}

/* Moves the set's differences into res. */
static void
diffset_report(DiffSet *s, VResult *res, int nkeys)
{
	for (int i = 0; i < s->n; i++)
		result_add(res, &s->d[i], 1, nkeys);
	res->differences += s->overflow;
	s->n = 0;
	s->overflow = 0;
}

/* The index of each row of res by its key (the first nk columns). */
static bool
keymap_of(KeyMap *m, const PGresult *res, int nk, Error *err)
{
	if (!keymap_init(m, (size_t) PQntuples(res)))
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < PQntuples(res); i++)
	{
		char *k = keymap_encode_row(res, i, nk);

		if (k != NULL)
			keymap_put(m, k, i);
	}
	return true;
}

/* A row's hash in column nk of res, or NULL where res lacks the row. */
static const char *
hash_at(const PGresult *res, int row, int nk)
{
	return row >= 0 ? PQgetvalue(res, row, nk) : NULL;
}

static bool
same_hash(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/*
 * Reads the keys of s[from, to) again on both sides, by equality, and adds
 * to out what still differs. A key is judged by the range that holds it on
 * the source (in_range): where the two servers order the key differently,
 * the same row may be named by two leaves, and only one may count it.
 *
 * Under a running stream the source is read twice, around the target:
 * first, then the target once the slot confirmed a position read after
 * that first read, then the source again. A row the source held still
 * between its two reads was the same at every position in between, the
 * target's included, so a target that differs from it differs for good:
 * its `settled` count goes up. A row the source changed meanwhile says
 * nothing yet (settled back to 0): a hot row is never reported as a
 * difference because the target lags behind it.
 */
static bool
recheck_batch(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
              const DiffSet *s, int from, int to, DiffSet *out, Error *err)
{
	Buf arr = BUF_INIT(VALIDATE_SQL_MAX), sql = BUF_INIT(VALIDATE_SQL_MAX);
	Buf join = BUF_INIT(VALIDATE_SQL_MAX), pred = BUF_INIT(VALIDATE_SQL_MAX);
	const char *params[3 * VALIDATE_MAX_KEYS];
	char *arr_text[VALIDATE_MAX_KEYS];
	char *sql_src = NULL, *sql_tgt = NULL;
	PGresult *rs = NULL, *rt = NULL, *rs0 = NULL;
	KeyMap ms = {0}, mt = {0}, m0 = {0};
	int nk = t->nkeys, npred;
	bool cdc = w->run->cdc, reached = true, ok = false;
	Lsn lsn = LSN_INVALID;

	memset(arr_text, 0, sizeof(arr_text));
	for (int k = 0; k < nk; k++)
	{
		buf_add_str(&arr, "{", err);
		for (int i = from; i < to; i++)
			pg_array_item(&arr, s->d[i].key[k], err);
		buf_add_str(&arr, "}", err);
		if (!buf_take(&arr, &arr_text[k], err))
			goto out;
		params[k] = arr_text[k];
	}
	buf_add_str(&join, " JOIN unnest(", err);
	for (int k = 0; k < nk; k++)
		buf_printf(&join, err, "%s$%d::text[]", k ? ", " : "", k + 1);
	buf_add_str(&join, ") AS u(", err);
	for (int k = 0; k < nk; k++)
		buf_printf(&join, err, "%spgtide_v%d", k ? ", " : "", k + 1);
	buf_printf(&join, err, ") ON (%s) = (", t->key_list);
	for (int k = 0; k < nk; k++)
		buf_printf(&join, err, "%su.pgtide_v%d::%s", k ? ", " : "", k + 1,
		           t->key_types[k]);
	if (!buf_add_str(&join, ")", err) ||
	    !range_pred(t, lo, hi, nk + 1, &pred, params + nk, &npred, err))
		goto out;
	buf_printf(&sql, err, "SELECT %s, %s, %s FROM %s%s", t->key_text,
	           t->hash_expr, buf_str(&pred), t->src_from, buf_str(&join));
	if (!buf_take(&sql, &sql_src, err))
		goto out;
	buf_printf(&sql, err, "SELECT %s, %s FROM %s%s", t->key_text, t->hash_expr,
	           t->tgt_from, buf_str(&join));
	if (!buf_take(&sql, &sql_tgt, err))
		goto out;
	if (cdc && (!query_send(w->src, sql_src, nk + npred, params, false, err) ||
	            !query_result(w->run, w->src, &rs0, err) ||
	            !slot_source_lsn(w, &lsn, err) ||
	            !slot_wait_applied(w, lsn, &reached, err)))
		goto out;
	/* without a stream both sides hold still: they are read at once */
	if (!query_send(w->tgt, sql_tgt, nk, params, false, err) ||
	    (cdc && !query_result(w->run, w->tgt, &rt, err)) ||
	    !query_send(w->src, sql_src, nk + npred, params, false, err) ||
	    !query_result(w->run, w->src, &rs, err) ||
	    (!cdc && !query_result(w->run, w->tgt, &rt, err)))
		goto out;
	if (!keymap_of(&ms, rs, nk, err) || !keymap_of(&mt, rt, nk, err) ||
	    (rs0 != NULL && !keymap_of(&m0, rs0, nk, err)))
		goto out;
	for (int i = from; i < to; i++)
	{
		char *k = keymap_encode_strv(s->d[i].key, nk);
		int si = k ? keymap_get(&ms, k) : -1;
		int ti = k ? keymap_get(&mt, k) : -1;
		int s0 = k && rs0 != NULL ? keymap_get(&m0, k) : si;
		const char *hs = hash_at(rs, si, nk);
		bool still;
		int n = out->n;

		free(k);
		if (si >= 0 && PQgetvalue(rs, si, nk + 1)[0] != 't')
			continue; /* another range owns it */
		if (same_hash(hs, hash_at(rt, ti, nk)))
			continue; /* equal now, or gone from both */
		still =
		    reached && same_hash(hash_at(rs0 != NULL ? rs0 : rs, s0, nk), hs);
		if (!diffset_add(
		        out, si >= 0 ? ti < 0 ? VK_MISSING : VK_DIFFERENT : VK_EXTRA,
		        si >= 0 ? rs : rt, si >= 0 ? si : ti, nk, err))
			goto out;
		if (out->n > n)
			out->d[n].settled = still ? s->d[i].settled + 1 : 0;
	}
	ok = true;
out:
	for (int k = 0; k < nk; k++)
		free(arr_text[k]);
	buf_free(&arr);
	buf_free(&sql);
	buf_free(&join);
	buf_free(&pred);
	free(sql_src);
	free(sql_tgt);
	PQclear(rs);
	PQclear(rt);
	PQclear(rs0);
	keymap_free(&ms);
	keymap_free(&mt);
	keymap_free(&m0);
	return ok;
}

static bool
recheck_keys(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
             DiffSet *s, Error *err)
{
	DiffSet out = {0};

	for (int i = 0; i < s->n; i += VALIDATE_RECHECK_BATCH)
	{
		int to = i + VALIDATE_RECHECK_BATCH < s->n ? i + VALIDATE_RECHECK_BATCH
		                                           : s->n;

		if (!recheck_batch(w, t, lo, hi, s, i, to, &out, err))
		{
			diffset_free(&out, t->nkeys);
			return false;
		}
	}
	out.overflow += s->overflow;
	diffset_free(s, t->nkeys);
	*s = out;
	return true;
}

/*
 * Reads the named keys again until only differences are left: once
 * without a stream (a collation may explain them), and under a running
 * stream until every one was found differing by two rechecks in a row with
 * the source holding it still (once could be a row changed and changed
 * back between the source's reads), at most VALIDATE_RECHECKS times. What
 * is left unsettled then (rows the application keeps changing) is counted
 * and named in the log, not reported as a difference.
 */
static bool
settle_keys(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
            DiffSet *s, VResult *res, Error *err)
{
	int rounds = w->run->cdc ? VALIDATE_RECHECKS : 1;
	int need = w->run->cdc ? 2 : 1;
	int kept = 0;

	for (int i = 0; i < rounds && s->n > 0; i++)
	{
		bool settled = true;

		if (!recheck_keys(w, t, lo, hi, s, err))
			return false;
		atomic_fetch_add(&w->run->rereads, w->run->cdc);
		for (int j = 0; j < s->n; j++)
			settled = settled && s->d[j].settled >= need;
		if (settled)
			break;
	}
	for (int j = 0; j < s->n; j++)
	{
		if (s->d[j].settled >= need)
		{
			s->d[kept++] = s->d[j];
			continue;
		}
		if (res->unsettled++ == 0)
			res->unsettled_key = result_key_text(t, &s->d[j]);
		result_diff_free(&s->d[j], t->nkeys);
	}
	if (s->n > kept)
		log_warn("table %s: %d rows changed on the source at each of %d "
		         "reads and were not compared (not counted as differences); "
		         "validate again when the application writes less, or at "
		         "cutover",
		         t->tgt_name, s->n - kept, rounds);
	s->n = kept;
	return true;
}

/*
 * Names the rows of a small range: the source's (key, hash) rows are held
 * in memory (about VALIDATE_LEAF_ROWS of them), the target's streamed
 * against them, so a target with far more rows than the source still costs
 * no memory.
 */
static bool
leaf_keyed(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
           VResult *res, Error *err)
{
	Buf pred = BUF_INIT(VALIDATE_SQL_MAX);
	const char *params[2 * VALIDATE_MAX_KEYS];
	int np;
	char *sql_src = NULL, *sql_tgt = NULL;
	PGresult *rs = NULL;
	VStream ts = {.r = w->run, .c = w->tgt};
	KeyMap m = {0};
	bool *seen = NULL;
	DiffSet ds = {0};
	int nk = t->nkeys;
	bool ok = false;

	if (!range_pred(t, lo, hi, 1, &pred, params, &np, err))
		goto out;
	if (asprintf(&sql_src, "SELECT %s, %s FROM %s WHERE %s", t->key_text,
	             t->hash_expr, t->src_from, buf_str(&pred)) < 0)
		sql_src = NULL;
	if (asprintf(&sql_tgt, "SELECT %s, %s FROM %s WHERE %s", t->key_text,
	             t->hash_expr, t->tgt_from, buf_str(&pred)) < 0)
		sql_tgt = NULL;
	if (!query_send(w->src, sql_src, np, params, false, err) ||
	    !query_send(w->tgt, sql_tgt, np, params, true, err) ||
	    !query_result(w->run, w->src, &rs, err))
		goto out;
	seen = calloc((size_t) PQntuples(rs) + 1, sizeof(bool));
	if (seen == NULL || !keymap_init(&m, (size_t) PQntuples(rs)))
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < PQntuples(rs); i++)
	{
		char *k = keymap_encode_row(rs, i, nk);

		if (k == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		keymap_put(&m, k, i);
	}
	for (;;)
	{
		char *k;
		int si;

		if (!query_stream_next(&ts, err))
			goto out;
		if (ts.row == NULL)
			break;
		k = keymap_encode_row(ts.row, 0, nk);
		if (k == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		si = keymap_get(&m, k);
		free(k);
		if (si < 0 || seen[si])
			ok = diffset_add(&ds, VK_EXTRA, ts.row, 0, nk, err);
		else
		{
			seen[si] = true;
			ok = strcmp(PQgetvalue(rs, si, nk), PQgetvalue(ts.row, 0, nk)) ==
			         0 ||
			     diffset_add(&ds, VK_DIFFERENT, ts.row, 0, nk, err);
		}
		if (!ok)
			goto out;
	}
	ok = false;
	for (int i = 0; i < PQntuples(rs); i++)
		if (!seen[i] && !diffset_add(&ds, VK_MISSING, rs, i, nk, err))
			goto out;
	PQclear(rs);
	rs = NULL;
	if (ds.n > 0 && (w->run->cdc || t->key_sensitive) &&
	    !settle_keys(w, t, lo, hi, &ds, res, err))
		goto out;
	diffset_report(&ds, res, nk);
	ok = true;
out:
	query_stream_close(&ts);
	PQclear(rs);
	keymap_free(&m);
	free(seen);
	diffset_free(&ds, nk);
	buf_free(&pred);
	free(sql_src);
	free(sql_tgt);
	return ok;
}

/*
 * Source keys that cut [lo, hi) (src_rows rows) into VALIDATE_SPLIT_WAYS
 * pieces: *out holds *n keys of t->nkeys values each (caller frees with
 * strv_free(*out, *n * nkeys)).
 */
static bool
split_range(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
            int64_t src_rows, char ***out, int *n, Error *err)
{
	Buf pred = BUF_INIT(VALIDATE_SQL_MAX);
	const char *params[2 * VALIDATE_MAX_KEYS];
	int np;
	int64_t step = (src_rows + VALIDATE_SPLIT_WAYS - 1) / VALIDATE_SPLIT_WAYS;
	char *sql = NULL;
	bool ok = false;

	*out = NULL;
	*n = 0;
	if (step < 1)
		step = 1;
	if (!range_pred(t, lo, hi, 1, &pred, params, &np, err))
		goto out;
	if (asprintf(&sql,
	             "SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s)"
	             " AS pgtide_rn FROM %s WHERE %s) s"
	             " WHERE pgtide_rn > 1 AND (pgtide_rn - 1) %% %" PRId64 " = 0"
	             " ORDER BY pgtide_rn",
	             t->key_text, t->key_list, t->key_list, t->src_from,
	             buf_str(&pred), step) < 0)
		sql = NULL;
	ok = query_rows(w->run, w->src, sql, np, params, t->nkeys, out, n, err);
out:
	free(sql);
	buf_free(&pred);
	return ok;
}

/*
 * Compares [lo, hi) and names its differing rows. `top` ranges add their
 * row counts to res (sub-ranges only find rows).
 */
bool
keyed_compare(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
              int depth, bool top, VResult *res, Error *err)
{
	VAgg a;
	char **cuts = NULL;
	int ncuts = 0;
	bool ok = true;

	if (!range_agg(w, t, lo, hi, false, &a, err))
		return false;
	if (top)
	{
		res->rows_src += a.src_rows;
		res->rows_tgt += a.tgt_rows;
		atomic_fetch_add(&w->run->rows_done, a.src_rows);
	}
	if (range_agg_equal(&a))
		return true;
	if (a.src_rows > VALIDATE_LEAF_ROWS && depth < VALIDATE_MAX_DEPTH &&
	    !split_range(w, t, lo, hi, a.src_rows, &cuts, &ncuts, err))
		return false;
	if (ncuts == 0)
		return leaf_keyed(w, t, lo, hi, res, err);
	for (int i = 0; ok && i <= ncuts; i++)
		ok = keyed_compare(w, t, i == 0 ? lo : &cuts[(i - 1) * t->nkeys],
		                   i == ncuts ? hi : &cuts[i * t->nkeys], depth + 1,
		                   false, res, err);
	strv_free(cuts, ncuts * t->nkeys);
	return ok;
}

/*
 * A target whose key columns allow NULL can hold rows that no key range
 * reaches: each is a row the source cannot have.
 */
bool
keyed_null_keys(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	Buf sql = BUF_INIT(VALIDATE_SQL_MAX);
	char *q = NULL;
	VStream ts = {.r = w->run, .c = w->tgt};
	bool ok = false;

	buf_printf(&sql, err, "SELECT %s FROM %s WHERE ", t->key_text, t->tgt_from);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&sql, err, "%s%s IS NULL", k ? " OR " : "",
		           t->key_idents[k]);
	if (!buf_take(&sql, &q, err) || !query_send(w->tgt, q, 0, NULL, true, err))
		goto out;
	for (;;)
	{
		VDiff d = {.kind = VK_EXTRA};

		if (!query_stream_next(&ts, err))
			goto out;
		if (ts.row == NULL)
			break;
		d.key = calloc((size_t) t->nkeys + 1, sizeof(char *));
		for (int k = 0; d.key != NULL && k < t->nkeys; k++)
			if (!PQgetisnull(ts.row, 0, k))
				d.key[k] = strdup(PQgetvalue(ts.row, 0, k));
		res->rows_tgt++;
		result_add(res, &d, 1, t->nkeys);
	}
	ok = true;
out:
	query_stream_close(&ts);
	free(q);
	return ok;
}

/*
 * The key's hash, alike on both sides whatever their encodings and
 * collations: the first 64 bits of md5 of the key's record text in UTF-8.
 * Malloc'd, or NULL when out of memory.
 */
static char *
key_hash_sql(const VTable *t)
{
	char *out = NULL;

	if (asprintf(&out,
	             "('x' || left(md5(convert_to(ROW(%s)::text, 'UTF8')), 16))"
	             "::bit(64)::bigint AS kh",
	             t->key_list) < 0)
		return NULL;
	return out;
}

/*
 * Names the rows of the differing buckets: (key, row hash) streamed from
 * both sides in the order of (key hash, key bytes in UTF-8), which both
 * sides share, and merged.
 */
static bool
bucket_leaf(VWorker *w, const VTable *t, const char *key_hash, int level,
            const char *buckets, DiffSet *ds, Error *err)
{
	Buf sql = BUF_INIT(VALIDATE_SQL_MAX);
	char where[128];
	char *q[2] = {NULL, NULL};
	const char *rel[2] = {t->src_from, t->tgt_from};
	const char *params[1] = {buckets};
	VStream ss = {.r = w->run, .c = w->src}, ts = {.r = w->run, .c = w->tgt};
	int nk = t->nkeys;
	bool ok = false;

	bucket_where("kh", level, where, sizeof(where));
	/* columns: the keys' texts, the row hash, the key hash, the key bytes */
	for (int side = 0; side < 2; side++)
	{
		buf_add_str(&sql, "SELECT * FROM (SELECT ", err);
		for (int k = 0; k < nk; k++)
			buf_printf(&sql, err, "%s::text AS pgtide_k%d, ", t->key_idents[k],
			           k);
		buf_printf(&sql, err,
		           "%s AS h, %s, encode(convert_to(ROW(%s)::text, 'UTF8'),"
		           " 'hex') AS kb FROM %s OFFSET 0) x WHERE %s"
		           " ORDER BY kh, kb COLLATE \"C\"",
		           t->hash_expr, key_hash, t->key_list, rel[side], where);
		if (!buf_take(&sql, &q[side], err))
			goto out;
	}
	if (!query_send(w->src, q[0], 1, params, true, err) ||
	    !query_send(w->tgt, q[1], 1, params, true, err) ||
	    !query_stream_next(&ss, err) || !query_stream_next(&ts, err))
		goto out;
	while (ss.row != NULL || ts.row != NULL)
	{
		int cmp = ss.row == NULL ? 1 : ts.row == NULL ? -1 : 0;

		if (cmp == 0)
		{
			int64_t hs = strtoll(PQgetvalue(ss.row, 0, nk + 1), NULL, 10);
			int64_t ht = strtoll(PQgetvalue(ts.row, 0, nk + 1), NULL, 10);

			cmp = hs < ht   ? -1
			      : hs > ht ? 1
			                : strcmp(PQgetvalue(ss.row, 0, nk + 2),
			                         PQgetvalue(ts.row, 0, nk + 2));
		}
		if (cmp < 0)
			ok = diffset_add(ds, VK_MISSING, ss.row, 0, nk, err);
		else if (cmp > 0)
			ok = diffset_add(ds, VK_EXTRA, ts.row, 0, nk, err);
		else
			ok = strcmp(PQgetvalue(ss.row, 0, nk), PQgetvalue(ts.row, 0, nk)) ==
			         0 ||
			     diffset_add(ds, VK_DIFFERENT, ts.row, 0, nk, err);
		if (!ok || (cmp <= 0 && !query_stream_next(&ss, err)) ||
		    (cmp >= 0 && !query_stream_next(&ts, err)))
		{
			ok = false;
			goto out;
		}
	}
	ok = true;
out:
	query_stream_close(&ss);
	query_stream_close(&ts);
	buf_free(&sql);
	free(q[0]);
	free(q[1]);
	return ok;
}

bool
keyed_bucket_compare(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	DiffSet ds = {0};
	char *key_hash = NULL, *parents = NULL;
	int level;
	bool equal, ok;

	if (!range_whole(w, t, res, &equal, err))
		return false;
	if (equal)
		return true;
	key_hash = key_hash_sql(t);
	ok = key_hash != NULL || err_set(err, ERR_INTERNAL, "out of memory");
	ok = ok && bucket_drill(w, t, key_hash, &level, &parents, err) &&
	     (parents == NULL ||
	      bucket_leaf(w, t, key_hash, level, parents, &ds, err)) &&
	     /* under a running stream a named row must still differ once the
	        applier passed the read */
	     (!w->run->cdc || ds.n == 0 ||
	      settle_keys(w, t, NULL, NULL, &ds, res, err));
	if (ok)
		diffset_report(&ds, res, t->nkeys);
	diffset_free(&ds, t->nkeys);
	free(key_hash);
	free(parents);
	return ok;
}
