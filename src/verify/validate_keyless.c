/*
 * validate_keyless: a table without a usable key, compared as a multiset
 * of rows: hashed whole, then grouped by the leading bits of the row hash
 * level by level (only differing buckets descended), and the rows of the
 * last buckets merged in hash order from both sides; duplicates count.
 * Never relies on ctids or row order, which differ between servers. The
 * same drill-down, by a hash of the key, serves keyed tables whose two
 * sides order their keys otherwise (validate_keyed.c).
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/lsn.h"
#include "pg/pg.h"

#define VALIDATE_BUCKET_BITS       8
#define VALIDATE_BUCKET_LEVELS     3
#define VALIDATE_KEYLESS_LEAF_ROWS 100000

/* Bucket id of hash column col at `level` (1 = its leading
   VALIDATE_BUCKET_BITS). */
static void
bucket_expr(const char *col, int level, char *buf, size_t cap)
{
	int bits = VALIDATE_BUCKET_BITS * level;

	snprintf(buf, cap, "((%s >> %d) & %" PRId64 ")", col, 64 - bits,
	         (int64_t) ((UINT64_C(1) << bits) - 1));
}

void
bucket_where(const char *col, int level, char *buf, size_t cap)
{
	char b[64];

	bucket_expr(col, level, b, sizeof(b));
	snprintf(buf, cap, "%s = ANY ($1::bigint[])", b);
}

typedef struct Bucket
{
	int64_t id;
	int64_t src_rows;
	int64_t tgt_rows;
} Bucket;

/*
 * Buckets of `level` under the differing buckets `parents` of level - 1
 * (NULL at level 1) whose count or hash differ: buckets of the row hash h,
 * or with key_hash, of that expression's value kh. *out is malloc'd.
 */
static bool
differing_buckets(VWorker *w, const VTable *t, const char *key_hash, int level,
                  const char *parents, Bucket **out, int *n, Error *err)
{
	const char *col = key_hash != NULL ? "kh" : "h";
	char b[64], pb[128];
	char *sql[2] = {NULL, NULL};
	const char *rel[2] = {t->src_from, t->tgt_from};
	const char *params[1] = {parents};
	PGresult *rs = NULL, *rt = NULL;
	int i = 0, j = 0, cap;
	bool ok = false;

	*out = NULL;
	*n = 0;
	bucket_expr(col, level, b, sizeof(b));
	bucket_where(col, level - 1, pb, sizeof(pb));
	for (int side = 0; side < 2; side++)
		if (asprintf(&sql[side],
		             "SELECT %s, count(*), sum(h)::text FROM (SELECT %s AS h"
		             "%s%s FROM %s OFFSET 0) x %s%s GROUP BY 1 ORDER BY 1",
		             b, t->hash_expr, key_hash != NULL ? ", " : "",
		             key_hash != NULL ? key_hash : "", rel[side],
		             parents ? "WHERE " : "", parents ? pb : "") < 0)
			sql[side] = NULL;
	if (!query_send(w->src, sql[0], parents ? 1 : 0, params, false, err) ||
	    !query_send(w->tgt, sql[1], parents ? 1 : 0, params, false, err) ||
	    !query_result(w->run, w->src, &rs, err) ||
	    !query_result(w->run, w->tgt, &rt, err))
		goto out;
	cap = PQntuples(rs) + PQntuples(rt) + 1;
	*out = calloc((size_t) cap, sizeof(Bucket));
	if (*out == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	/* both ordered by bucket id: merge */
	while (i < PQntuples(rs) || j < PQntuples(rt))
	{
		int64_t bs = i < PQntuples(rs) ? strtoll(PQgetvalue(rs, i, 0), NULL, 10)
		                               : INT64_MAX;
		int64_t bt = j < PQntuples(rt) ? strtoll(PQgetvalue(rt, j, 0), NULL, 10)
		                               : INT64_MAX;
		Bucket k = {.id = bs < bt ? bs : bt};
		bool same;

		if (bs <= bt)
			k.src_rows = strtoll(PQgetvalue(rs, i, 1), NULL, 10);
		if (bt <= bs)
			k.tgt_rows = strtoll(PQgetvalue(rt, j, 1), NULL, 10);
		same = bs == bt && k.src_rows == k.tgt_rows &&
		       strcmp(PQgetvalue(rs, i, 2), PQgetvalue(rt, j, 2)) == 0;
		if (bs <= bt)
			i++;
		if (bt <= bs)
			j++;
		if (!same)
			(*out)[(*n)++] = k;
	}
	ok = true;
out:
	if (!ok)
	{
		free(*out);
		*out = NULL;
		*n = 0;
	}
	PQclear(rs);
	PQclear(rt);
	free(sql[0]);
	free(sql[1]);
	return ok;
}

/* The ids of n buckets as a bigint[] literal into *out (caller frees). */
static bool
bucket_array(const Bucket *b, int n, char **out, Error *err)
{
	Buf ids = BUF_INIT(VALIDATE_SQL_MAX);

	buf_add_str(&ids, "{", err);
	for (int i = 0; i < n; i++)
		buf_printf(&ids, err, "%s%" PRId64, i ? "," : "", b[i].id);
	buf_add_str(&ids, "}", err);
	return buf_take(&ids, out, err);
}

/*
 * Streams (hash, copies, row text) of the rows in `buckets` of `level` from
 * both sides in hash order and merges them: a hash with more copies on one
 * side names that many rows.
 */
static bool
keyless_leaf(VWorker *w, const VTable *t, int level, const char *buckets,
             VResult *res, Error *err)
{
	char b[128];
	char *sql[2] = {NULL, NULL};
	const char *rel[2] = {t->src_from, t->tgt_from};
	const char *params[1] = {buckets};
	VStream ss = {.r = w->run, .c = w->src}, ts = {.r = w->run, .c = w->tgt};
	bool ok = false;

	bucket_where("h", level, b, sizeof(b));
	for (int side = 0; side < 2; side++)
		if (asprintf(&sql[side],
		             "SELECT h, count(*), min(r COLLATE \"C\") FROM"
		             " (SELECT %s AS h, %s AS r FROM %s OFFSET 0) x"
		             " WHERE %s GROUP BY h ORDER BY h",
		             t->hash_expr, t->row_expr, rel[side], b) < 0)
			sql[side] = NULL;
	if (!query_send(w->src, sql[0], 1, params, true, err) ||
	    !query_send(w->tgt, sql[1], 1, params, true, err) ||
	    !query_stream_next(&ss, err) || !query_stream_next(&ts, err))
		goto out;
	while (ss.row != NULL || ts.row != NULL)
	{
		int64_t hs = ss.row ? strtoll(PQgetvalue(ss.row, 0, 0), NULL, 10) : 0;
		int64_t ht = ts.row ? strtoll(PQgetvalue(ts.row, 0, 0), NULL, 10) : 0;
		bool take_s = ss.row != NULL && (ts.row == NULL || hs <= ht);
		bool take_t = ts.row != NULL && (ss.row == NULL || ht <= hs);
		int64_t cs = take_s ? strtoll(PQgetvalue(ss.row, 0, 1), NULL, 10) : 0;
		int64_t ct = take_t ? strtoll(PQgetvalue(ts.row, 0, 1), NULL, 10) : 0;

		if (cs != ct)
		{
			PGresult *from = cs > ct ? ss.row : ts.row;
			VDiff d = {.kind = cs > ct ? VK_MISSING : VK_EXTRA,
			           .src_copies = cs,
			           .tgt_copies = ct};

			d.row = strdup(PQgetvalue(from, 0, 2));
			result_add(res, &d, cs > ct ? cs - ct : ct - cs, 0);
		}
		if ((take_s && !query_stream_next(&ss, err)) ||
		    (take_t && !query_stream_next(&ts, err)))
			goto out;
	}
	ok = true;
out:
	query_stream_close(&ss);
	query_stream_close(&ts);
	free(sql[0]);
	free(sql[1]);
	return ok;
}

bool
bucket_drill(VWorker *w, const VTable *t, const char *key_hash, int *level,
             char **parents, Error *err)
{
	Bucket *d = NULL;
	int n = 0;
	bool ok = true;

	*parents = NULL;
	for (*level = 1; ok; (*level)++)
	{
		int64_t rows = 0;

		ok = differing_buckets(w, t, key_hash, *level, *parents, &d, &n, err);
		free(*parents);
		*parents = NULL;
		if (!ok || n == 0)
			break;
		for (int i = 0; i < n; i++)
			rows +=
			    d[i].src_rows > d[i].tgt_rows ? d[i].src_rows : d[i].tgt_rows;
		ok = bucket_array(d, n, parents, err);
		free(d);
		d = NULL;
		if (ok && (rows <= VALIDATE_KEYLESS_LEAF_ROWS ||
		           *level >= VALIDATE_BUCKET_LEVELS || n > 256))
			return true;
	}
	free(d);
	free(*parents);
	*parents = NULL;
	return ok;
}

/* Finds the differing rows of a keyless table, bucket level by level. */
static bool
keyless_drill(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	char *parents = NULL;
	int level;
	bool ok = bucket_drill(w, t, NULL, &level, &parents, err) &&
	          (parents == NULL || keyless_leaf(w, t, level, parents, res, err));

	free(parents);
	return ok;
}

bool
keyless_compare(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	bool equal;

	if (!range_whole(w, t, res, &equal, err))
		return false;
	if (equal)
		return true;
	for (int attempt = 0;; attempt++)
	{
		VResult found = {0};
		Lsn lsn = LSN_INVALID;

		if (!keyless_drill(w, t, &found, err) || !slot_source_lsn(w, &lsn, err))
		{
			result_free(&found, 0);
			return false;
		}
		/* under CDC a named row must still differ after the applier passed
		 * the read; without keys the whole drill-down is read again */
		if (found.differences == 0 || !w->run->cdc ||
		    attempt + 1 >= VALIDATE_RECHECKS)
		{
			result_merge(res, &found, 0);
			return true;
		}
		result_free(&found, 0);
		if (!slot_wait_applied(w, lsn, NULL, err))
			return false;
		atomic_fetch_add(&w->run->rereads, 1);
	}
}
