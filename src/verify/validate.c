/*
 * validate: ranged count+hash comparison of source and target, and the
 * drill-down that names differing rows. Only aggregates and, for the few
 * rows that differ, keys cross the network. It never writes to the source:
 * every source session is read-only. Memory stays bounded whatever the size
 * of a table: no key list or row set is ever held beyond one leaf range.
 *
 * The life of a keyed table (a primary key, replica identity index, or a
 * unique index on NOT NULL columns):
 *
 *   plan_ranges       one range for the whole table when no stream applies
 *                     (up to VALIDATE_WHOLE_BYTES); else boundaries sampled
 *                     on the source (TABLESAMPLE SYSTEM), at most about
 *                     VALIDATE_RANGE_ROWS rows or VALIDATE_RANGE_BYTES per
 *                     range; --sample keeps a random fraction of the ranges
 *                     (at least one)
 *      │
 *      ▼
 *   keyed_compare     count(*) and sum(row hash) of [lo, hi) on both sides at
 *      │              once; equal -> done
 *      │ differs      while CDC runs: wait until the slot has confirmed the
 *      │              source position read with the range, read again, up to
 *      │              VALIDATE_RECHECKS times; equal at any read -> done
 *      ▼
 *   source rows > VALIDATE_LEAF_ROWS ?
 *      │ yes ──► split_range: VALIDATE_SPLIT_WAYS sub-ranges cut at source
 *      │         keys; each goes back to keyed_compare
 *      ▼ no
 *   leaf_keyed        the source's (key, hash) rows in memory (a leaf is
 *      │              small), the target's streamed row by row: missing,
 *      │              extra, different
 *      ▼
 *   recheck_keys      while CDC runs, or when the key's collation may sort
 *                     differently on the two servers: the named keys read
 *                     again by equality on both sides; only what still
 *                     differs is reported
 *
 * A table without such a key has no ranges that mean the same rows on both
 * sides (ctids differ), so keyless_compare hashes it whole, then groups rows
 * by the leading bits of their hash (256 buckets per level, only differing
 * buckets descended) and finally streams (hash, copies) of the differing
 * buckets from both sides in hash order and merges them: rows are a
 * multiset, duplicates count.
 *
 * Row hash (rowhash_expr): with both servers at 11 or later, the XOR of
 * one 64-bit hash per column, each seeded by the column's position: the
 * type's own extended hash (the functions hash partitioning relies on, so
 * the same on every version) for integers, floats, times, uuid and text,
 * the hash of the column's text for other types, a per-column constant for
 * NULL. Text is rendered under the same session settings on both sides
 * (query_open). Hashing the row's text, ROW(c1, ..., cn)::text, was measured
 * 3.4 times slower on pgbench_accounts and is kept only for older servers
 * (md5 of it, floats through their send functions). jsonb_hash_extended was
 * rejected: it hashes {}, [] and [[]] alike. A range's hash is the sum of
 * its rows' hashes, as numeric: order does not matter and nothing overflows.
 * Rejected too: comparing ctid ranges (physical positions differ between
 * servers) and an OFFSET walk of the key index (a full index scan before
 * the first range can start).
 */
#include "verify/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"
#include "base/lsn.h"
#include "load/progress.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/mapping.h"
#include "state/state.h"

#define VALIDATE_RANGE_ROWS     50000 /* rows per first-level range, at most */
#define VALIDATE_RANGE_BYTES    (16 * 1024 * 1024) /* and bytes, TOAST included */
#define VALIDATE_RANGE_MIN_ROWS 1000
#define VALIDATE_WHOLE_BYTES \
	(INT64_C(4) * 1024 * 1024 * 1024)    /* read whole, no stream */
#define VALIDATE_MAX_RANGES        10000 /* per table; ranges grow past it */
#define VALIDATE_SAMPLE_ROWS       40    /* sampled keys per range boundary */
#define VALIDATE_LEAF_ROWS         1000 /* source rows below which rows are named */
#define VALIDATE_SPLIT_WAYS        16
#define VALIDATE_MAX_DEPTH         12
#define VALIDATE_SHOWN             100 /* differences kept per table */
#define VALIDATE_RECHECK_MAX       5000 /* named keys kept per leaf for rechecks */
#define VALIDATE_RECHECK_BATCH     1000
#define VALIDATE_RECHECKS          4 /* reads of a differing range under CDC */
#define VALIDATE_WAIT_MS           30000 /* for the applier to pass a position */
#define VALIDATE_WAIT_SHORT_MS     2000  /* once one wait has timed out */
#define VALIDATE_ROW_TEXT          200   /* characters of a keyless row shown */
#define VALIDATE_BUCKET_BITS       8
#define VALIDATE_BUCKET_LEVELS     3
#define VALIDATE_KEYLESS_LEAF_ROWS 100000
#define VALIDATE_MAX_KEYS          32
#define VALIDATE_JOB_TRIES         3
#define VALIDATE_SQL_MAX           (256 * 1024 * 1024) /* any string built */

/* ---- small strings ---- */

/*
 * Appends v as the next element of the text[] literal in b (which holds "{"
 * and the elements so far): quoted, a backslash before " and \; NULL is
 * the unquoted NULL.
 */
static bool
query_array_item(Buf *b, const char *v, Error *err)
{
	if (buf_len(b) > 1)
		buf_add(b, ",", 1, err);
	if (v == NULL)
		return buf_add(b, "NULL", 4, err);
	buf_add(b, "\"", 1, err);
	for (const char *p = v; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			buf_add(b, "\\", 1, err);
		buf_add(b, p, 1, err);
	}
	return buf_add(b, "\"", 1, err);
}

static void
strv_free(char **v, int n)
{
	for (int i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* "schema"."name" -> schema.name, for people; malloc'd. */
static char *
unquote_qname(const char *q)
{
	char *out = malloc(strlen(q) + 1);
	size_t n = 0;

	if (out == NULL)
		return NULL;
	for (const char *p = q; *p; p++)
	{
		if (*p == '"')
		{
			if (p[1] == '"')
				out[n++] = *++p;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

/* ---- what is compared ---- */

typedef enum VKind
{
	VK_MISSING = 0, /* on the source, not on the target */
	VK_EXTRA,       /* on the target, not on the source */
	VK_DIFFERENT,   /* same key, other contents */
} VKind;

static const char *const vkind_names[] = {"missing", "extra", "different"};

typedef struct VDiff
{
	VKind kind;
	char **key;         /* keyed: nkeys values (NULL: SQL NULL); owned */
	char *row;          /* keyless: the row's text, truncated; owned */
	int64_t src_copies; /* keyless: copies on each side */
	int64_t tgt_copies;
} VDiff;

/* Findings of one job (or of a table, once merged). */
typedef struct VResult
{
	int64_t rows_src;
	int64_t rows_tgt;
	int64_t differences;
	VDiff *shown; /* at most VALIDATE_SHOWN */
	int nshown;
} VResult;

typedef enum VStatus
{
	VS_EQUAL = 0,
	VS_DIFFERENT,
	VS_MISSING_TARGET, /* no such table on the target */
	VS_MISSING_SOURCE, /* in the task's state, gone from the source */
	VS_COLUMNS,        /* source columns the target lacks */
} VStatus;

static const char *const vstatus_names[] = {"equal", "different", "missing",
                                            "missing_on_source", "columns"};

typedef struct VTable
{
	/* what: fixed once described, read by workers without the lock */
	char *name;      /* source schema.name (or the target's, for several) */
	char *tgt_qname; /* "schema"."name" on the target */
	char *tgt_name;  /* schema.name on the target */
	char **srcs;     /* quoted source relations */
	char **src_names;
	int nsrc;
	int cat;           /* catalog index of srcs[0], or -1 */
	double est_rows;   /* catalog estimate, for ordering and ETA */
	int64_t est_bytes; /* catalog size */
	VStatus status;
	char *problem; /* table-level difference, for people */
	char *src_from;
	char *tgt_from;
	char *hash_expr; /* bigint hash of a row */
	char *row_expr;  /* a row's text, truncated, for people */
	bool keyed;
	int nkeys;
	char **key_names;   /* unquoted, for output */
	char **key_idents;  /* quoted */
	char **key_types;   /* format_type() on the source */
	char *key_list;     /* "k1", "k2" */
	char *key_text;     /* "k1"::text, "k2"::text */
	bool key_sensitive; /* a key collation other than C on either side */
	bool tgt_indexed;   /* the target has an index led by the first key */
	bool tgt_key_nullable;

	/* planned: set by the plan job under the lock */
	bool planned;
	char **bounds; /* nbounds * nkeys values, ascending; owned */
	int nbounds;
	int *checked; /* indexes of the ranges to check (nbounds + 1 ranges) */
	int nchecked;
	int next_check;
	int checks_done;

	/* results, merged under the lock */
	VResult res;
	bool done;
} VTable;

typedef struct VRun
{
	const TaskConfig *cfg;
	ValidateMode mode;
	atomic_int *stop;
	VTable *tables;
	int ntables;
	int src_version;
	int tgt_version;
	bool hash_ext; /* typed extended hashes (11+ on both sides), else md5 */
	bool cdc;      /* the task's slot is active: recheck what differs */
	bool still;    /* the caller holds both sides still: read tables whole */
	char slot[128];
	int64_t run_id; /* validation_runs.id, or -1 */
	int64_t started_ms;
	char sampled_note[64];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int next_plan;  /* next table to plan */
	int first_open; /* tables before it have no range left to hand out */
	int busy;       /* jobs running */
	int workers_running;
	int tables_done;
	int64_t ranges_total;
	bool failed;
	Error err; /* the first failure */

	_Atomic int64_t rows_done;
	_Atomic int64_t ranges_done;
	_Atomic int64_t rereads; /* reads repeated after waiting for the applier */
	_Atomic uint64_t confirmed; /* highest confirmed_flush_lsn seen */
	_Atomic int wait_ms;
	_Atomic int64_t last_wait_log_ms;
} VRun;

typedef struct VWorker
{
	VRun *run;
	int id;
	pthread_t thread;
	PgConn *src;
	PgConn *tgt;
} VWorker;

static bool
run_stopping(const VRun *r)
{
	return r->stop != NULL && *r->stop;
}

/* ---- results ---- */

static void
result_diff_free(VDiff *d, int nkeys)
{
	strv_free(d->key, nkeys);
	free(d->row);
	memset(d, 0, sizeof(*d));
}

static void
result_free(VResult *res, int nkeys)
{
	for (int i = 0; i < res->nshown; i++)
		result_diff_free(&res->shown[i], nkeys);
	free(res->shown);
	memset(res, 0, sizeof(*res));
}

/*
 * Counts one difference of `copies` rows and keeps *d (ownership moves to
 * res) while fewer than VALIDATE_SHOWN are kept; otherwise frees it.
 */
static void
result_add(VResult *res, VDiff *d, int64_t copies, int nkeys)
{
	res->differences += copies;
	if (res->nshown < VALIDATE_SHOWN)
	{
		if (res->shown == NULL)
			res->shown = calloc(VALIDATE_SHOWN, sizeof(VDiff));
		if (res->shown != NULL)
		{
			res->shown[res->nshown++] = *d;
			memset(d, 0, sizeof(*d));
			return;
		}
	}
	result_diff_free(d, nkeys);
}

/* Moves what src holds into dst; src is empty afterwards. */
static void
result_merge(VResult *dst, VResult *src, int nkeys)
{
	dst->rows_src += src->rows_src;
	dst->rows_tgt += src->rows_tgt;
	for (int i = 0; i < src->nshown; i++)
		result_add(dst, &src->shown[i], 0, nkeys);
	dst->differences += src->differences;
	free(src->shown);
	memset(src, 0, sizeof(*src));
}

/* ---- connections and queries ---- */

/*
 * Session settings under which both servers render every value alike:
 * dates and times in ISO form and UTC, all float digits (shortest exact
 * from PostgreSQL 12), hex bytea, C money, and pg_catalog alone on the
 * search path so that no user function shadows the ones used here and
 * regclass-like values print qualified. No JIT: per-range queries are
 * short and compiling each one costs more than it saves.
 */
static bool
query_open(const VRun *r, ErrKind side, bool read_only, PgConn **out,
           Error *err)
{
	const char *uri =
	    side == ERR_SOURCE ? r->cfg->source_uri : r->cfg->target_uri;

	*out = NULL;
	if (!pg_connect(uri, side, PG_CONN_SQL, "pgtide validate", 5000, out, err))
		return false;
	if (!pg_execf(*out, err,
	              "SET search_path = pg_catalog; SET DateStyle = 'ISO, YMD';"
	              " SET IntervalStyle = postgres; SET TimeZone = 'UTC';"
	              " SET extra_float_digits = 3; SET bytea_output = hex;"
	              " SET lc_monetary = 'C'%s%s",
	              pg_server_version(*out) >= 110000 ? "; SET jit = off" : "",
	              read_only ? "; SET default_transaction_read_only = on" : ""))
	{
		pg_close(*out);
		*out = NULL;
		return false;
	}
	return true;
}

static bool
query_send(PgConn *c, const char *sql, int nparams, const char *const *params,
           bool single_row, Error *err)
{
	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!PQsendQueryParams(pg_raw(c), sql, nparams, NULL, params, NULL, NULL,
	                       0))
		return pg_error(c, NULL, err);
	if (single_row && !PQsetSingleRowMode(pg_raw(c)))
		return err_set(err, ERR_INTERNAL, "could not enter single-row mode");
	return true;
}

/*
 * The next result of c's query (a row in single-row mode, the final result,
 * or NULL once the query is over). Waits with poll() so that a stop request
 * cancels the query instead of waiting for it. On failure nothing is
 * returned and the connection must be closed.
 */
static bool
query_next(const VRun *r, PgConn *c, PGresult **out, Error *err)
{
	PGconn *raw = pg_raw(c);
	ExecStatusType st;

	*out = NULL;
	while (PQisBusy(raw))
	{
		struct pollfd p = {.fd = PQsocket(raw), .events = POLLIN};

		if (run_stopping(r))
		{
			PGcancel *cancel = PQgetCancel(raw);
			char buf[256];

			if (cancel != NULL)
			{
				PQcancel(cancel, buf, sizeof(buf));
				PQfreeCancel(cancel);
			}
			return err_set(err, ERR_INTERRUPTED, "interrupted");
		}
		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			return err_set(err, pg_side(c), "could not wait for the server: %s",
			               strerror(errno));
		if (!PQconsumeInput(raw))
			return pg_error(c, NULL, err);
	}
	*out = PQgetResult(raw);
	if (*out == NULL)
		return true;
	st = PQresultStatus(*out);
	if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE &&
	    st != PGRES_COMMAND_OK)
	{
		pg_error(c, *out, err);
		PQclear(*out);
		*out = NULL;
		return false;
	}
	return true;
}

/* The one result of a query sent without single-row mode. */
static bool
query_result(const VRun *r, PgConn *c, PGresult **out, Error *err)
{
	PGresult *res = NULL, *next = NULL;

	*out = NULL;
	if (!query_next(r, c, &res, err))
		return false;
	if (res == NULL)
		return err_set(err, ERR_INTERNAL, "a query returned no result");
	for (;;)
	{
		if (!query_next(r, c, &next, err))
		{
			PQclear(res);
			return false;
		}
		if (next == NULL)
			break;
		PQclear(next);
	}
	*out = res;
	return true;
}

/* Rows of a single-row-mode query, one at a time. */
typedef struct VStream
{
	const VRun *r;
	PgConn *c;
	PGresult *row; /* the current row, or NULL once the query is over */
	bool end;
} VStream;

static bool
query_stream_next(VStream *s, Error *err)
{
	PQclear(s->row);
	s->row = NULL;
	while (!s->end)
	{
		PGresult *res;

		if (!query_next(s->r, s->c, &res, err))
			return false;
		if (res == NULL)
		{
			s->end = true;
			break;
		}
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
		{
			s->row = res;
			return true;
		}
		PQclear(res); /* the empty final result */
	}
	return true;
}

static void
query_stream_close(VStream *s)
{
	PQclear(s->row);
	s->row = NULL;
}

/* The source's WAL position now: a read finished before it. */
static bool
slot_source_lsn(VWorker *w, Lsn *lsn, Error *err)
{
	char buf[32];

	*lsn = LSN_INVALID;
	if (!w->run->cdc)
		return true;
	if (!pg_query_value(w->src, "SELECT pg_current_wal_lsn()::text", 0, NULL,
	                    buf, sizeof(buf), err))
		return false;
	lsn_parse(buf, lsn);
	return true;
}

/*
 * Waits until the task's slot has confirmed lsn: the target then holds every
 * source transaction committed before it. Bounded: after VALIDATE_WAIT_MS
 * the caller reads again anyway (and later waits are short), because a
 * difference must be reported even when the applier stalls.
 */
static bool
slot_wait_applied(VWorker *w, Lsn lsn, Error *err)
{
	VRun *r = w->run;
	const char *params[1] = {r->slot};
	int64_t deadline;

	if (lsn == LSN_INVALID || lsn <= atomic_load(&r->confirmed))
		return true;
	deadline = clock_ms() + atomic_load(&r->wait_ms);
	for (;;)
	{
		PGresult *res;
		Lsn confirmed = LSN_INVALID;
		bool active;

		if (run_stopping(r))
			return err_set(err, ERR_INTERRUPTED, "interrupted");
		if (!pg_query(w->src,
		              "SELECT coalesce(confirmed_flush_lsn::text, ''), active"
		              " FROM pg_replication_slots WHERE slot_name = $1"
		              " AND database = current_database()",
		              1, params, &res, err))
			return false;
		active = PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't';
		if (PQntuples(res) == 1)
			lsn_parse(PQgetvalue(res, 0, 0), &confirmed);
		PQclear(res);
		for (uint64_t seen = atomic_load(&r->confirmed); confirmed > seen;)
			if (atomic_compare_exchange_weak(&r->confirmed, &seen, confirmed))
				break;
		if (confirmed >= lsn)
			return true;
		if (!active)
		{
			if (log_every(&r->last_wait_log_ms, 60000))
				log_warn("slot \"%s\" is no longer active: differences are "
				         "no longer waited for",
				         r->slot);
			return true;
		}
		if (clock_ms() >= deadline)
		{
			if (log_every(&r->last_wait_log_ms, 60000))
				log_warn("the target has not confirmed " LSN_FMT
				         " within %d s; reading again anyway",
				         LSN_ARGS(lsn), atomic_load(&r->wait_ms) / 1000);
			atomic_store(&r->wait_ms, VALIDATE_WAIT_SHORT_MS);
			return true;
		}
		clock_sleep_ms(100);
	}
}

/* ---- key ranges ---- */

/*
 * Appends the predicate for [lo, hi) (NULL: unbounded) over the key to sql
 * and puts its parameters, numbered from $first, into params; *nparams gets
 * their number. Row comparison keeps a composite key's order and its index.
 */
static bool
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

/* count(*) and sum(hash) of a range, read on both sides at once. */
typedef struct VAgg
{
	int64_t src_rows;
	int64_t tgt_rows;
	char src_sum[48];
	char tgt_sum[48];
	Lsn lsn; /* source position after its read (CDC) */
} VAgg;

static bool
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
static bool
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
		ok = slot_wait_applied(w, a->lsn, err);
		atomic_fetch_add(&w->run->rereads, 1);
	}
	buf_free(&pred);
	return ok;
}

/* ---- named rows: a map from key text to an index ---- */

typedef struct KeyMap
{
	char **keys; /* encoded keys; owned */
	int *vals;
	size_t cap; /* a power of 2 */
	size_t n;
} KeyMap;

/*
 * Encodes key values as "len:value" pieces, so no two keys collide.
 * Malloc'd; NULL when out of memory.
 */
static char *
keymap_encode_row(const PGresult *res, int row, int ncols)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	for (int c = 0; c < ncols; c++)
	{
		if (PQgetisnull(res, row, c))
			buf_add_str(&b, "N", &err);
		else
		{
			buf_printf(&b, &err, "%d:", PQgetlength(res, row, c));
			buf_add(&b, PQgetvalue(res, row, c),
			        (size_t) PQgetlength(res, row, c), &err);
		}
	}
	return buf_take(&b, &out, &err) ? out : NULL;
}

/* keymap_encode_row of n values (NULL: SQL NULL). */
static char *
keymap_encode_strv(char *const *v, int n)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	for (int c = 0; c < n; c++)
	{
		if (v[c] == NULL)
			buf_add_str(&b, "N", &err);
		else
			buf_printf(&b, &err, "%zu:%s", strlen(v[c]), v[c]);
	}
	return buf_take(&b, &out, &err) ? out : NULL;
}

/*
 * Copies the first nk columns of every row of res into *out (row-major,
 * *n rows, freed with strv_free). On failure *out is NULL and *n 0.
 */
static bool
query_rows_copy(const PGresult *res, int nk, char ***out, int *n, Error *err)
{
	int rows = PQntuples(res);

	*n = 0;
	*out = calloc((size_t) rows * (size_t) nk + 1, sizeof(char *));
	if (*out == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < rows; i++)
		for (int k = 0; k < nk; k++)
			if (((*out)[i * nk + k] = strdup(PQgetvalue(res, i, k))) == NULL)
			{
				strv_free(*out, rows * nk);
				*out = NULL;
				return err_set(err, ERR_INTERNAL, "out of memory");
			}
	*n = rows;
	return true;
}

static bool
keymap_init(KeyMap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < n * 2 + 1)
		m->cap *= 2;
	m->n = 0;
	m->keys = calloc(m->cap, sizeof(char *));
	m->vals = calloc(m->cap, sizeof(int));
	return m->keys != NULL && m->vals != NULL;
}

static void
keymap_free(KeyMap *m)
{
	for (size_t i = 0; m->keys != NULL && i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Takes ownership of key. A key already there keeps its first value. */
static void
keymap_put(KeyMap *m, char *key, int val)
{
	size_t i = (size_t) hash_string(key) & (m->cap - 1);

	while (m->keys[i] != NULL)
	{
		if (strcmp(m->keys[i], key) == 0)
		{
			free(key);
			return;
		}
		i = (i + 1) & (m->cap - 1);
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
}

/* The value of key, or -1. */
static int
keymap_get(const KeyMap *m, const char *key)
{
	size_t i = (size_t) hash_string(key) & (m->cap - 1);

	while (m->keys[i] != NULL)
	{
		if (strcmp(m->keys[i], key) == 0)
			return m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	return -1;
}

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

/*
 * Reads the keys of s[from, to) again on both sides, by equality, and
 * replaces them with what still differs. A key is judged by the range that
 * holds it on the source (in_range): where the two servers order the key
 * differently, the same row may be named by two leaves, and only one may
 * count it.
 */
static bool
recheck_batch(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
              const DiffSet *s, int from, int to, DiffSet *out, Lsn *lsn,
              Error *err)
{
	Buf arr = BUF_INIT(VALIDATE_SQL_MAX), sql = BUF_INIT(VALIDATE_SQL_MAX);
	Buf join = BUF_INIT(VALIDATE_SQL_MAX), pred = BUF_INIT(VALIDATE_SQL_MAX);
	const char *params[3 * VALIDATE_MAX_KEYS];
	char *arr_text[VALIDATE_MAX_KEYS];
	char *sql_src = NULL, *sql_tgt = NULL;
	PGresult *rs = NULL, *rt = NULL;
	KeyMap ms = {0}, mt = {0};
	int nk = t->nkeys, npred;
	bool ok = false;

	memset(arr_text, 0, sizeof(arr_text));
	for (int k = 0; k < nk; k++)
	{
		buf_add_str(&arr, "{", err);
		for (int i = from; i < to; i++)
			query_array_item(&arr, s->d[i].key[k], err);
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
	if (!query_send(w->src, sql_src, nk + npred, params, false, err) ||
	    !query_send(w->tgt, sql_tgt, nk, params, false, err) ||
	    !query_result(w->run, w->src, &rs, err) ||
	    !query_result(w->run, w->tgt, &rt, err) ||
	    !slot_source_lsn(w, lsn, err))
		goto out;
	if (!keymap_init(&ms, (size_t) PQntuples(rs)) ||
	    !keymap_init(&mt, (size_t) PQntuples(rt)))
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < PQntuples(rs); i++)
	{
		char *k = keymap_encode_row(rs, i, nk);

		if (k != NULL)
			keymap_put(&ms, k, i);
	}
	for (int i = 0; i < PQntuples(rt); i++)
	{
		char *k = keymap_encode_row(rt, i, nk);

		if (k != NULL)
			keymap_put(&mt, k, i);
	}
	for (int i = from; i < to; i++)
	{
		char *k = keymap_encode_strv(s->d[i].key, nk);
		int si = k ? keymap_get(&ms, k) : -1;
		int ti = k ? keymap_get(&mt, k) : -1;
		VKind kind;

		free(k);
		if (si >= 0 && PQgetvalue(rs, si, nk + 1)[0] != 't')
			continue; /* another range owns it */
		if (si >= 0 && ti < 0)
			kind = VK_MISSING;
		else if (si < 0 && ti >= 0)
			kind = VK_EXTRA;
		else if (si >= 0 &&
		         strcmp(PQgetvalue(rs, si, nk), PQgetvalue(rt, ti, nk)) != 0)
			kind = VK_DIFFERENT;
		else
			continue; /* equal now, or gone from both */
		if (!diffset_add(out, kind, si >= 0 ? rs : rt, si >= 0 ? si : ti, nk,
		                 err))
			goto out;
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
	keymap_free(&ms);
	keymap_free(&mt);
	return ok;
}

static bool
recheck_keys(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
             DiffSet *s, Lsn *lsn, Error *err)
{
	DiffSet out = {0};

	for (int i = 0; i < s->n; i += VALIDATE_RECHECK_BATCH)
	{
		int to = i + VALIDATE_RECHECK_BATCH < s->n ? i + VALIDATE_RECHECK_BATCH
		                                           : s->n;

		if (!recheck_batch(w, t, lo, hi, s, i, to, &out, lsn, err))
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
	Lsn lsn = LSN_INVALID;
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
	if (!slot_source_lsn(w, &lsn, err))
		goto out;
	if (ds.n > 0 && (w->run->cdc || t->key_sensitive))
	{
		int rounds = w->run->cdc ? VALIDATE_RECHECKS : 1;

		for (int i = 0; i < rounds && ds.n > 0; i++)
		{
			if ((w->run->cdc && !slot_wait_applied(w, lsn, err)) ||
			    !recheck_keys(w, t, lo, hi, &ds, &lsn, err))
				goto out;
			atomic_fetch_add(&w->run->rereads, w->run->cdc);
		}
	}
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
	PGresult *res = NULL;
	bool ok = false;
	int nk = t->nkeys;

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
	if (!query_send(w->src, sql, np, params, false, err) ||
	    !query_result(w->run, w->src, &res, err))
		goto out;
	ok = query_rows_copy(res, nk, out, n, err);
out:
	PQclear(res);
	free(sql);
	buf_free(&pred);
	return ok;
}

/*
 * Compares [lo, hi) and names its differing rows. `top` ranges add their
 * row counts to res (sub-ranges only find rows).
 */
static bool
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
static bool
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

/* ---- tables without a key ---- */

/* Bucket id of hash h at `level` (1 = its leading VALIDATE_BUCKET_BITS). */
static void
bucket_expr(int level, char *buf, size_t cap)
{
	int bits = VALIDATE_BUCKET_BITS * level;

	snprintf(buf, cap, "((h >> %d) & %" PRId64 ")", 64 - bits,
	         (int64_t) ((UINT64_C(1) << bits) - 1));
}

typedef struct Bucket
{
	int64_t id;
	int64_t src_rows;
	int64_t tgt_rows;
} Bucket;

/*
 * Buckets of `level` under the differing buckets `parents` of level - 1
 * (NULL at level 1) whose count or hash differ. *out is malloc'd.
 */
static bool
differing_buckets(VWorker *w, const VTable *t, int level, const char *parents,
                  Bucket **out, int *n, Error *err)
{
	char b[64], pb[64];
	char *sql_src = NULL, *sql_tgt = NULL, *filter = NULL;
	const char *params[1] = {parents};
	PGresult *rs = NULL, *rt = NULL;
	int i = 0, j = 0, cap;
	bool ok = false;

	*out = NULL;
	*n = 0;
	bucket_expr(level, b, sizeof(b));
	bucket_expr(level - 1, pb, sizeof(pb));
	if (asprintf(&filter, "WHERE %s = ANY ($1::bigint[])", pb) < 0)
		filter = NULL;
	if (filter == NULL ||
	    asprintf(&sql_src,
	             "SELECT %s, count(*), sum(h)::text FROM (SELECT %s AS h"
	             " FROM %s OFFSET 0) x %s GROUP BY 1 ORDER BY 1",
	             b, t->hash_expr, t->src_from, parents ? filter : "") < 0)
		sql_src = NULL;
	if (filter == NULL ||
	    asprintf(&sql_tgt,
	             "SELECT %s, count(*), sum(h)::text FROM (SELECT %s AS h"
	             " FROM %s OFFSET 0) x %s GROUP BY 1 ORDER BY 1",
	             b, t->hash_expr, t->tgt_from, parents ? filter : "") < 0)
		sql_tgt = NULL;
	if (!query_send(w->src, sql_src, parents ? 1 : 0, params, false, err) ||
	    !query_send(w->tgt, sql_tgt, parents ? 1 : 0, params, false, err) ||
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
	free(sql_src);
	free(sql_tgt);
	free(filter);
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
	char b[64];
	char *sql_src = NULL, *sql_tgt = NULL;
	const char *params[1] = {buckets};
	VStream ss = {.r = w->run, .c = w->src}, ts = {.r = w->run, .c = w->tgt};
	bool ok = false;

	bucket_expr(level, b, sizeof(b));
	if (asprintf(&sql_src,
	             "SELECT h, count(*), min(r COLLATE \"C\") FROM"
	             " (SELECT %s AS h, %s AS r FROM %s OFFSET 0) x"
	             " WHERE %s = ANY ($1::bigint[]) GROUP BY h ORDER BY h",
	             t->hash_expr, t->row_expr, t->src_from, b) < 0)
		sql_src = NULL;
	if (asprintf(&sql_tgt,
	             "SELECT h, count(*), min(r COLLATE \"C\") FROM"
	             " (SELECT %s AS h, %s AS r FROM %s OFFSET 0) x"
	             " WHERE %s = ANY ($1::bigint[]) GROUP BY h ORDER BY h",
	             t->hash_expr, t->row_expr, t->tgt_from, b) < 0)
		sql_tgt = NULL;
	if (!query_send(w->src, sql_src, 1, params, true, err) ||
	    !query_send(w->tgt, sql_tgt, 1, params, true, err) ||
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
	free(sql_src);
	free(sql_tgt);
	return ok;
}

/* Finds the differing rows of a keyless table, bucket level by level. */
static bool
keyless_drill(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	Bucket *d = NULL;
	char *parents = NULL;
	int n = 0;
	bool ok = true;

	for (int level = 1; ok; level++)
	{
		int64_t rows = 0;

		ok = differing_buckets(w, t, level, parents, &d, &n, err);
		free(parents);
		parents = NULL;
		if (!ok || n == 0)
			break;
		for (int i = 0; i < n; i++)
			rows +=
			    d[i].src_rows > d[i].tgt_rows ? d[i].src_rows : d[i].tgt_rows;
		ok = bucket_array(d, n, &parents, err);
		if (ok && (rows <= VALIDATE_KEYLESS_LEAF_ROWS ||
		           level >= VALIDATE_BUCKET_LEVELS || n > 256))
		{
			ok = keyless_leaf(w, t, level, parents, res, err);
			break;
		}
		free(d);
		d = NULL;
	}
	free(d);
	free(parents);
	return ok;
}

static bool
keyless_compare(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	VAgg a;

	if (!range_agg(w, t, NULL, NULL, false, &a, err))
		return false;
	res->rows_src += a.src_rows;
	res->rows_tgt += a.tgt_rows;
	atomic_fetch_add(&w->run->rows_done, a.src_rows);
	if (range_agg_equal(&a))
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
		if (!slot_wait_applied(w, lsn, err))
			return false;
		atomic_fetch_add(&w->run->rereads, 1);
	}
}

static bool
range_compare_counts(VWorker *w, const VTable *t, VResult *res, Error *err)
{
	VAgg a;

	if (!range_agg(w, t, NULL, NULL, true, &a, err))
		return false;
	res->rows_src += a.src_rows;
	res->rows_tgt += a.tgt_rows;
	res->differences += a.src_rows > a.tgt_rows ? a.src_rows - a.tgt_rows
	                                            : a.tgt_rows - a.src_rows;
	atomic_fetch_add(&w->run->rows_done, a.src_rows);
	return true;
}

/* ---- planning a table's ranges ---- */

/*
 * Rows of the source relations now: reltuples scaled to the current size, as
 * the planner does; a sampled count when the table was never analyzed.
 */
static bool
estimate_rows(VWorker *w, const VTable *t, double *rows, double *pages_now,
              Error *err)
{
	*rows = 0;
	*pages_now = 0;
	for (int i = 0; i < t->nsrc; i++)
	{
		const char *params[1] = {t->srcs[i]};
		PGresult *res;
		double tuples, pages, cur;

		if (!pg_query(w->src,
		              "SELECT reltuples, relpages, pg_relation_size(oid)"
		              " / current_setting('block_size')::int"
		              " FROM pg_class WHERE oid = $1::regclass",
		              1, params, &res, err))
			return false;
		tuples = strtod(PQgetvalue(res, 0, 0), NULL);
		pages = strtod(PQgetvalue(res, 0, 1), NULL);
		cur = strtod(PQgetvalue(res, 0, 2), NULL);
		PQclear(res);
		*pages_now += cur;
		if (pages > 0 && tuples >= 0)
			*rows += tuples / pages * cur;
		else if (cur > 0)
		{
			double pct = cur > 1000 ? 100.0 * 1000 / cur : 100;
			char *sql = NULL;
			char buf[32];

			if (asprintf(&sql,
			             "SELECT count(*) FROM ONLY %s TABLESAMPLE SYSTEM"
			             " (%.6f)",
			             t->srcs[i], pct) < 0)
				return err_set(err, ERR_INTERNAL, "out of memory");
			if (!pg_query_value(w->src, sql, 0, NULL, buf, sizeof(buf), err))
			{
				free(sql);
				return false;
			}
			free(sql);
			*rows += strtod(buf, NULL) * 100 / pct;
		}
	}
	return true;
}

/*
 * Boundaries for about `nranges` ranges, from keys sampled on the source
 * (whole blocks, TABLESAMPLE SYSTEM: reads a fraction of the table). At
 * least a few blocks per range are read, so that blocks of dead rows
 * cannot leave the sample empty.
 */
static bool
sample_bounds(VWorker *w, VTable *t, int nranges, double est, double pages,
              char ***out, int *n, Error *err)
{
	double per_block = pages > 0 ? est / pages : 1;
	double blocks =
	    nranges * VALIDATE_SAMPLE_ROWS / (per_block > 1 ? per_block : 1);
	double pct;
	Buf inner = BUF_INIT(VALIDATE_SQL_MAX);
	char *sql = NULL, *in = NULL;
	PGresult *res = NULL;
	bool ok = false;
	int nk = t->nkeys;

	*out = NULL;
	*n = 0;
	if (blocks < 4.0 * nranges)
		blocks = 4.0 * nranges;
	pct = pages > 0 ? 100.0 * blocks / pages : 100;
	if (pct > 100)
		pct = 100;
	for (int i = 0; i < t->nsrc; i++)
		buf_printf(&inner, err,
		           "%sSELECT %s FROM ONLY %s TABLESAMPLE SYSTEM (%.6f)",
		           i ? " UNION ALL " : "", t->key_list, t->srcs[i], pct);
	if (!buf_take(&inner, &in, err) ||
	    asprintf(&sql,
	             "SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s)"
	             " AS pgtide_rn, count(*) OVER () AS pgtide_n FROM (%s) x) s"
	             " WHERE pgtide_rn > 1 AND ((pgtide_rn - 1) * %d) / pgtide_n"
	             " <> ((pgtide_rn - 2) * %d) / pgtide_n ORDER BY pgtide_rn",
	             t->key_text, t->key_list, t->key_list, in, nranges,
	             nranges) < 0)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (!query_send(w->src, sql, 0, NULL, false, err) ||
	    !query_result(w->run, w->src, &res, err))
		goto out;
	ok = query_rows_copy(res, nk, out, n, err);
out:
	PQclear(res);
	free(sql);
	free(in);
	return ok;
}

static uint64_t
next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Which of n ranges to check: all, or a random `fraction` of them (at least
 * one), in order. Selection sampling: no list of candidates is built.
 */
static int *
plan_choose_ranges(int n, double fraction, uint64_t seed, int *nchosen)
{
	int want = fraction >= 1.0 ? n : (int) ceil(n * fraction);
	int *out = calloc((size_t) n + 1, sizeof(int));
	int got = 0;
	uint64_t s = seed ? seed : 88172645463325252ULL;

	if (want < 1)
		want = 1;
	if (out == NULL)
		return NULL;
	for (int i = 0; i < n && got < want; i++)
		if (want >= n ||
		    (double) (next_random(&s) % 1000000) / 1e6 * (n - i) < want - got)
			out[got++] = i;
	*nchosen = got;
	return out;
}

/* Decides t's ranges; runs as a job because sampling reads the source. */
static bool
plan_ranges(VWorker *w, VTable *t, int index, char ***bounds, int *nbounds,
            VResult *res, Error *err)
{
	VRun *r = w->run;
	double est, pages;

	*bounds = NULL;
	*nbounds = 0;
	if (t->status != VS_EQUAL || r->mode == VALIDATE_COUNTS || !t->keyed)
		return true;
	if (t->tgt_key_nullable && !keyed_null_keys(w, t, res, err))
		return false;
	if (!t->tgt_indexed)
	{
		log_info("table %s: no index on the key on the target; compared as "
		         "one range",
		         t->name);
		return true;
	}
	/*
	 * With no stream applying, the target stands still: a table is read
	 * whole first, in one plain aggregate the server may run with parallel
	 * workers, and only a table that differs is cut into ranges (the same
	 * drill-down as a differing range). Measured on PostgreSQL 15, the two
	 * ways alternating on the same servers: a 2 M-row pgbench_accounts-like
	 * table 276 ms whole against 395 ms in 130,000-row ranges read through
	 * the key's index; the benchmark's 1.5 GB dataset 2.60 and 2.65 s
	 * against 2.96 and 3.00 s. Under a running stream a whole
	 * table would differ for what is in flight and be read twice, unless
	 * the caller holds both sides still (cutover's final validation). Past
	 * VALIDATE_WHOLE_BYTES a table keeps its ranges, so that progress moves
	 * and an interruption loses little.
	 */
	if ((!r->cdc || r->still) && r->cfg->validate_sample >= 1.0 &&
	    t->est_bytes <= VALIDATE_WHOLE_BYTES)
		return true;
	if (!estimate_rows(w, t, &est, &pages, err))
		return false;
	{
		/* wide rows (TOAST) cost by the byte: smaller ranges keep the
		 * workers evenly busy on a table like that */
		double by_rows = est / VALIDATE_RANGE_ROWS;
		double by_bytes = (double) t->est_bytes / VALIDATE_RANGE_BYTES;
		double want = ceil(by_rows > by_bytes ? by_rows : by_bytes);

		if (want > est / VALIDATE_RANGE_MIN_ROWS)
			want = floor(est / VALIDATE_RANGE_MIN_ROWS);
		if (want > VALIDATE_MAX_RANGES)
			want = VALIDATE_MAX_RANGES;
		if (want >= 2 &&
		    !sample_bounds(w, t, (int) want, est, pages, bounds, nbounds, err))
			return false;
	}
	log_debug("table %s: about %.0f rows, %d ranges (table %d)", t->name, est,
	          *nbounds + 1, index);
	return true;
}

/* ---- workers ---- */

typedef enum VJobKind
{
	VJOB_PLAN,
	VJOB_RANGE,
} VJobKind;

typedef struct VJob
{
	VJobKind kind;
	int table;
	int range; /* VJOB_RANGE: index among nbounds + 1 */
} VJob;

/*
 * The next job, or false when there is nothing left (or the run failed or
 * was stopped). Waits while other workers may still plan ranges.
 */
static bool
take_job(VRun *r, VJob *job)
{
	bool got = false;

	pthread_mutex_lock(&r->lock);
	for (;;)
	{
		if (r->failed || run_stopping(r))
			break;
		for (int i = r->first_open; i < r->next_plan && !got; i++)
		{
			VTable *t = &r->tables[i];

			if (t->planned && t->next_check < t->nchecked)
			{
				job->kind = VJOB_RANGE;
				job->table = i;
				job->range = t->checked[t->next_check++];
				got = true;
			}
		}
		while (r->first_open < r->next_plan &&
		       r->tables[r->first_open].planned &&
		       r->tables[r->first_open].next_check >=
		           r->tables[r->first_open].nchecked)
			r->first_open++;
		if (!got && r->next_plan < r->ntables)
		{
			job->kind = VJOB_PLAN;
			job->table = r->next_plan++;
			job->range = 0;
			got = true;
		}
		if (got || r->busy == 0)
			break;
		pthread_cond_wait(&r->cond, &r->lock);
	}
	if (got)
		r->busy++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return got;
}

static void
table_finished(VRun *r, VTable *t)
{
	t->done = true;
	r->tables_done++;
	strv_free(t->bounds, t->nbounds * t->nkeys);
	t->bounds = NULL;
	free(t->checked);
	t->checked = NULL;
	if (t->res.differences > 0 && t->status == VS_EQUAL)
		t->status = VS_DIFFERENT;
	if (t->status != VS_EQUAL)
		log_warn("table %s differs: %" PRId64 " rows on the source, %" PRId64
		         " on the target, %" PRId64 " %s",
		         t->name, t->res.rows_src, t->res.rows_tgt, t->res.differences,
		         r->mode == VALIDATE_COUNTS ? "rows apart" : "rows differ");
}

static bool
run_job(VWorker *w, const VJob *job, VResult *res, Error *err)
{
	VRun *r = w->run;
	VTable *t = &r->tables[job->table];

	if (job->kind == VJOB_PLAN)
	{
		char **bounds = NULL;
		int nbounds = 0, nchecked = 0;
		int *checked;

		if (!plan_ranges(w, t, job->table, &bounds, &nbounds, res, err))
			return false;
		checked = t->status == VS_EQUAL
		              ? plan_choose_ranges(
		                    nbounds + 1, r->cfg->validate_sample,
		                    (uint64_t) clock_wall_us() ^
		                        ((uint64_t) job->table * 0x9e3779b97f4a7c15ULL),
		                    &nchecked)
		              : calloc(1, sizeof(int));
		if (checked == NULL)
		{
			strv_free(bounds, nbounds * t->nkeys);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		pthread_mutex_lock(&r->lock);
		t->bounds = bounds;
		t->nbounds = nbounds;
		t->checked = checked;
		t->nchecked = nchecked;
		t->planned = true;
		r->ranges_total += nchecked;
		pthread_mutex_unlock(&r->lock);
		return true;
	}
	{
		int i = job->range, nk = t->nkeys;
		char *const *lo = i == 0 ? NULL : &t->bounds[(i - 1) * nk];
		char *const *hi = i == t->nbounds ? NULL : &t->bounds[i * nk];

		if (r->mode == VALIDATE_COUNTS)
			return range_compare_counts(w, t, res, err);
		if (!t->keyed)
			return keyless_compare(w, t, res, err);
		return keyed_compare(w, t, lo, hi, 0, true, res, err);
	}
}

static void
finish_job(VRun *r, const VJob *job, VResult *res, bool ok, const Error *err)
{
	VTable *t = &r->tables[job->table];

	pthread_mutex_lock(&r->lock);
	r->busy--;
	if (!ok)
	{
		if (!r->failed)
		{
			r->failed = true;
			r->err = *err;
			err_prefix(&r->err, "table %s: ", t->name);
		}
	}
	else
	{
		result_merge(&t->res, res, t->nkeys);
		if (job->kind == VJOB_RANGE)
		{
			t->checks_done++;
			atomic_fetch_add(&r->ranges_done, 1);
		}
		if (t->planned && t->checks_done >= t->nchecked && !t->done)
			table_finished(r, t);
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void
close_conns(VWorker *w)
{
	pg_close(w->src);
	pg_close(w->tgt);
	w->src = NULL;
	w->tgt = NULL;
}

static void *
worker_main(void *arg)
{
	VWorker *w = arg;
	VRun *r = w->run;
	char role[24];
	VJob job;

	snprintf(role, sizeof(role), "validate-%d", w->id);
	log_set_role(role);
	while (take_job(r, &job))
	{
		VResult res = {0};
		Error err = ERR_INIT;
		bool ok = false;
		int nkeys = r->tables[job.table].nkeys;

		for (int attempt = 1;; attempt++)
		{
			ok = (w->src != NULL ||
			      query_open(r, ERR_SOURCE, true, &w->src, &err)) &&
			     (w->tgt != NULL ||
			      query_open(r, ERR_TARGET, true, &w->tgt, &err)) &&
			     run_job(w, &job, &res, &err);
			if (ok)
				break;
			/* a failed job leaves its connections mid-query */
			close_conns(w);
			result_free(&res, nkeys);
			if (!err.retryable || attempt >= VALIDATE_JOB_TRIES ||
			    run_stopping(r))
				break;
			log_warn("table %s: %s; retrying with new connections",
			         r->tables[job.table].name, err.message);
			err_clear(&err);
			clock_sleep_ms(1000);
		}
		finish_job(r, &job, &res, ok, &err);
		result_free(&res, nkeys);
		if (!ok)
			break;
	}
	close_conns(w);
	pthread_mutex_lock(&r->lock);
	r->workers_running--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Runs the workers until every table is compared; logs progress. */
static bool
pool_run(VRun *r, Error *err)
{
	int n = r->cfg->copy_jobs > 0 ? r->cfg->copy_jobs : 1;
	VWorker *ws = calloc((size_t) n, sizeof(VWorker));
	double est_total = 0;
	int64_t last_log = clock_ms();
	int started = 0;

	if (ws == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < r->ntables; i++)
		est_total += r->tables[i].est_rows * r->cfg->validate_sample;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < n; i++)
	{
		ws[i].run = r;
		ws[i].id = i + 1;
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
			break;
		started++;
		r->workers_running++;
	}
	while (r->workers_running > 0)
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		if (clock_ms() - last_log >= r->cfg->progress_interval_s * 1000LL &&
		    r->workers_running > 0)
		{
			double secs = (double) (clock_ms() - r->started_ms) / 1000.0;
			double rows = (double) atomic_load(&r->rows_done);
			double rate = secs > 0 ? rows / secs : 0;
			char eta[32];

			progress_format_eta(
			    rate > 0 && est_total > rows ? (est_total - rows) / rate : -1,
			    eta, sizeof(eta));
			log_info("validate: %d of %d tables done, %" PRId64 " of %" PRId64
			         " ranges planned so far, %.0f rows/s, ETA %s",
			         r->tables_done, r->ntables, atomic_load(&r->ranges_done),
			         r->ranges_total, rate, eta);
			last_log = clock_ms();
		}
	}
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	free(ws);
	if (started == 0)
		return err_set(err, ERR_INTERNAL, "could not start a validate worker");
	if (r->failed)
	{
		*err = r->err;
		return false;
	}
	if (run_stopping(r))
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return true;
}

/* ---- describing the tables ---- */

typedef struct VColumn
{
	char *name;
	char *type;    /* format_type() */
	uint32_t root; /* type after domains */
	uint32_t elem; /* element type of an array root, or 0 */
	bool not_null;
	bool c_collation; /* sorts as C (or is not collatable) */
} VColumn;

static void
columns_free(VColumn *c, int n)
{
	for (int i = 0; c != NULL && i < n; i++)
	{
		free(c[i].name);
		free(c[i].type);
	}
	free(c);
}

/* Columns of rel (generated ones left out when skip_generated), in order. */
static bool
columns_read(PgConn *c, const char *rel, bool skip_generated, VColumn **out,
             int *n, Error *err)
{
	int v = pg_server_version(c);
	const char *params[1] = {rel};
	char *sql = NULL;
	PGresult *res;
	bool oom = false;

	*out = NULL;
	*n = 0;
	if (asprintf(
	        &sql,
	        "WITH RECURSIVE base(oid, cur) AS ("
	        "  SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.typtype = 'd'"
	        "  UNION ALL SELECT b.oid, t.typbasetype"
	        "  FROM base b JOIN pg_type t ON t.oid = b.cur"
	        "  WHERE t.typtype = 'd')"
	        " SELECT a.attname, format_type(a.atttypid, a.atttypmod), r.oid,"
	        " CASE WHEN r.typcategory = 'A' THEN r.typelem ELSE 0 END,"
	        " a.attnotnull,"
	        " CASE WHEN a.attcollation = 0 THEN true"
	        "  WHEN a.attcollation = 100 THEN (SELECT d.datcollate IN ('C',"
	        "   'POSIX')%s FROM pg_database d"
	        "   WHERE d.datname = current_database())"
	        "  ELSE coalesce((SELECT l.collprovider = 'c' AND l.collcollate IN"
	        "   ('C', 'POSIX') FROM pg_collation l"
	        "   WHERE l.oid = a.attcollation), false) END"
	        " FROM pg_attribute a JOIN pg_type r ON r.oid = coalesce("
	        "  (SELECT b.cur FROM base b JOIN pg_type t ON t.oid = b.cur"
	        "   WHERE b.oid = a.atttypid AND t.typtype <> 'd'), a.atttypid)"
	        " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
	        " AND NOT a.attisdropped%s ORDER BY a.attnum",
	        v >= 150000 ? " AND d.datlocprovider = 'c'" : "",
	        skip_generated && v >= 120000 ? " AND a.attgenerated = ''" : "") <
	    0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!pg_query(c, sql, 1, params, &res, err))
	{
		free(sql);
		return false;
	}
	free(sql);
	*out = calloc((size_t) PQntuples(res) + 1, sizeof(VColumn));
	if (*out == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
	{
		VColumn *col = &(*out)[i];

		col->name = strdup(PQgetvalue(res, i, 0));
		col->type = strdup(PQgetvalue(res, i, 1));
		oom |= col->name == NULL || col->type == NULL;
		col->root = (uint32_t) strtoul(PQgetvalue(res, i, 2), NULL, 10);
		col->elem = (uint32_t) strtoul(PQgetvalue(res, i, 3), NULL, 10);
		col->not_null = PQgetvalue(res, i, 4)[0] == 't';
		col->c_collation = PQgetvalue(res, i, 5)[0] == 't';
	}
	PQclear(res);
	if (oom)
	{
		columns_free(*out, *n);
		*out = NULL;
		*n = 0;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

static int
columns_find(const VColumn *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The key pgtide compares by: the primary key, else the replica identity
 * index, else the narrowest unique index on NOT NULL columns without
 * expressions or predicate. *names gets the key's columns in index order
 * (none when the table has no such key).
 */
static bool
columns_read_key(PgConn *c, const char *rel, char ***names, int *n, Error *err)
{
	const char *params[1] = {rel};
	const char *nk =
	    pg_server_version(c) >= 110000 ? "indnkeyatts" : "indnatts";
	char *sql = NULL;
	PGresult *res;

	*names = NULL;
	*n = 0;
	if (asprintf(&sql,
	             "SELECT a.attname FROM (SELECT i.indrelid, i.indkey,"
	             " i.%s AS nk FROM pg_index i"
	             " WHERE i.indrelid = $1::regclass AND i.indisunique"
	             " AND i.indisvalid AND i.indpred IS NULL"
	             " AND i.indexprs IS NULL AND NOT EXISTS (SELECT 1"
	             "  FROM generate_series(0, i.%s - 1) g(n)"
	             "  JOIN pg_attribute a ON a.attrelid = i.indrelid"
	             "  AND a.attnum = i.indkey[g.n] WHERE NOT a.attnotnull)"
	             " ORDER BY i.indisprimary DESC, i.indisreplident DESC,"
	             " i.%s, i.indexrelid LIMIT 1) i"
	             " CROSS JOIN generate_series(0, i.nk - 1) AS g(n)"
	             " JOIN pg_attribute a ON a.attrelid = i.indrelid"
	             " AND a.attnum = i.indkey[g.n] ORDER BY g.n",
	             nk, nk, nk) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!pg_query(c, sql, 1, params, &res, err))
	{
		free(sql);
		return false;
	}
	free(sql);
	if (PQntuples(res) > VALIDATE_MAX_KEYS)
	{
		PQclear(res);
		return true; /* compared as a table without a key */
	}
	*names = calloc((size_t) PQntuples(res) + 1, sizeof(char *));
	if (*names == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
		if (((*names)[i] = strdup(PQgetvalue(res, i, 0))) == NULL)
		{
			strv_free(*names, *n);
			*names = NULL;
			*n = 0;
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	PQclear(res);
	return true;
}

/* A per-column constant standing for NULL (splitmix64 of the position). */
static int64_t
null_marker(int position)
{
	uint64_t z = (uint64_t) position * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (int64_t) (z ^ (z >> 31));
}

/*
 * The hash of column s (target column tc) at `position`, when both servers
 * have the extended hash functions (11 and later): the type's own hash of
 * its binary value for types whose hash is exact and the same on every
 * server (integers, floats, times, uuid, text bytes), else the hash of its
 * text. Seeding with the position tells columns apart; a NULL becomes a
 * per-column constant, so NULL and '' differ. A type's text costs its
 * output function, and a row's text (ROW()::text) several times that, which
 * is why the row is not hashed as one text here.
 *
 * Floats hash by value: -0 equals 0, and every NaN equals NaN, whatever
 * either server prints. Numeric, interval and jsonb hash through their text
 * (their hash functions ignore display scale, equate 1 day with 24 hours,
 * or hash {} like []). Enums hash their label (their hash is of the oid).
 */
static bool
column_hash(const VColumn *s, const VColumn *tc, int position, Buf *sql,
            Error *err)
{
	static const struct
	{
		uint32_t oid;
		const char *fn;
		const char *cast; /* the column as the function's argument */
	} typed[] = {
	    {16, "hashint4extended", "int4"}, /* bool */
	    {20, "hashint8extended", "int8"},
	    {21, "hashint2extended", "int2"},
	    {23, "hashint4extended", "int4"},
	    {26, "hashoidextended", "oid"},
	    {700, "hashfloat4extended", "float4"},
	    {701, "hashfloat8extended", "float8"},
	    /* under TimeZone UTC a timestamptz converts to the same instant; a
	     * date is left to its text (past 294276 AD it is no timestamp) */
	    {1114, "timestamp_hash_extended", "timestamp"},
	    {1184, "timestamp_hash_extended", "timestamp"},
	    {1083, "time_hash_extended", "time"},
	    {1266, "timetz_hash_extended", "timetz"},
	    {2950, "uuid_hash_extended", "uuid"},
	    {25, "hashtextextended", "text COLLATE \"C\""},
	    {1043, "hashtextextended", "text COLLATE \"C\""},
	    {1042, "hashbpcharextended", "bpchar COLLATE \"C\""},
	};
	char *id = pg_quote_ident(s->name);
	bool same = tc != NULL && s->root == tc->root && s->elem == tc->elem;
	const char *fn = "hashtextextended", *cast = "text COLLATE \"C\"";
	bool ok;

	if (id == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (size_t i = 0; same && i < sizeof(typed) / sizeof(typed[0]); i++)
		if (typed[i].oid == s->root)
		{
			fn = typed[i].fn;
			cast = typed[i].cast;
		}
	ok = buf_printf(sql, err, "coalesce(%s(%s::%s, %d), %" PRId64 ")", fn, id,
	                cast, position, null_marker(position));
	free(id);
	return ok;
}

/*
 * How column s (target column tc) enters the row text hashed with md5, the
 * form used when a server is older than 11. Floats go through their send
 * functions: 11 and earlier print 17 significant digits even where fewer
 * round-trip, 12 and later the shortest exact form; NaN first becomes the
 * one canonical NaN, whose bits are otherwise free.
 */
static bool
column_text(const VColumn *s, const VColumn *tc, Buf *sql, Error *err)
{
	char *id = pg_quote_ident(s->name);
	bool same = tc != NULL && s->root == tc->root && s->elem == tc->elem;
	bool ok;

	if (id == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (same && (s->root == 700 || s->root == 701))
	{
		const char *ty = s->root == 700 ? "float4" : "float8";

		ok = buf_printf(
		    sql, err,
		    "%ssend(CASE WHEN %s = 'NaN' THEN 'NaN'::%s ELSE %s::%s END)", ty,
		    id, ty, id, ty);
	}
	else if (same && (s->elem == 700 || s->elem == 701))
		ok = buf_printf(sql, err, "array_send(%s::%s[])", id,
		                s->elem == 700 ? "float4" : "float8");
	else
		ok = buf_add_str(sql, id, err);
	free(id);
	return ok;
}

/*
 * Appends the bigint hash of a row of source columns sc (nsc, each also
 * among the target's tc) to sql: the XOR of column_hash over the columns
 * with the extended hashes (hash_ext), else md5 of the row's text built
 * by column_text.
 */
static bool
rowhash_expr(bool hash_ext, const VColumn *sc, int nsc, const VColumn *tc,
             int ntc, Buf *sql, Error *err)
{
	bool ok = true;

	if (hash_ext)
	{
		buf_add_str(sql, "(0::int8", err);
		for (int i = 0; ok && i < nsc; i++)
			ok = buf_add_str(sql, " # ", err) &&
			     column_hash(&sc[i], &tc[columns_find(tc, ntc, sc[i].name)],
			                 i + 1, sql, err);
		return ok && buf_add_str(sql, ")", err);
	}
	buf_add_str(sql, "('x' || left(md5(ROW(", err);
	for (int i = 0; ok && i < nsc; i++)
		ok = (i == 0 || buf_add_str(sql, ", ", err)) &&
		     column_text(&sc[i], &tc[columns_find(tc, ntc, sc[i].name)], sql,
		                 err);
	return ok && buf_add_str(sql, ")::text), 16))::bit(64)::bigint", err);
}

static bool
result_set_problem(VTable *t, VStatus status, const char *what, Error *err)
{
	t->status = status;
	t->problem = strdup(what);
	if (t->problem == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	t->res.differences = 1;
	return true;
}

/*
 * Reads what comparing t takes on both sides (columns, key, target relation
 * and index) and builds its SQL pieces. A table the target lacks, or whose
 * columns it lacks, becomes a table-level difference.
 */
static bool
describe_table(const VRun *r, PgConn *src, PgConn *tgt, VTable *t, Error *err)
{
	VColumn *sc = NULL, *tc = NULL;
	int nsc = 0, ntc = 0;
	char **key = NULL;
	int nkey = 0;
	char relkind = 0;
	Buf missing = BUF_INIT(VALIDATE_SQL_MAX), expr = BUF_INIT(VALIDATE_SQL_MAX);
	Buf cols = BUF_INIT(VALIDATE_SQL_MAX);
	Buf list = BUF_INIT(VALIDATE_SQL_MAX), text = BUF_INIT(VALIDATE_SQL_MAX);
	bool ok = false;

	if (t->status != VS_EQUAL)
		return true;
	{
		const char *params[1] = {t->tgt_qname};
		PGresult *res;

		if (!pg_query(tgt,
		              "SELECT relkind FROM pg_class"
		              " WHERE oid = to_regclass($1)",
		              1, params, &res, err))
			return false;
		if (PQntuples(res) == 1)
			relkind = PQgetvalue(res, 0, 0)[0];
		PQclear(res);
	}
	if (relkind == 0)
		return result_set_problem(t, VS_MISSING_TARGET, "not on the target",
		                          err);
	if (!columns_read(src, t->srcs[0], true, &sc, &nsc, err) ||
	    !columns_read(tgt, t->tgt_qname, false, &tc, &ntc, err) ||
	    !columns_read_key(src, t->srcs[0], &key, &nkey, err))
		goto out;
	for (int i = 0; i < nsc; i++)
		if (columns_find(tc, ntc, sc[i].name) < 0)
			buf_printf(&missing, err, "%s%s",
			           buf_len(&missing) ? ", "
			                             : "columns missing on the target: ",
			           sc[i].name);
	if (!buf_check(&missing, err))
		goto out;
	if (buf_len(&missing) > 0)
	{
		char *what = NULL;

		ok = buf_take(&missing, &what, err) &&
		     result_set_problem(t, VS_COLUMNS, what, err);
		free(what);
		goto out;
	}
	/* the row hash, the row text shown for tables without a key, and where
	 * rows come from on each side */
	for (int i = 0; i < nsc; i++)
	{
		char *id = pg_quote_ident(sc[i].name);

		if (id == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		buf_printf(&cols, err, "%s%s", i ? ", " : "", id);
		free(id);
	}
	if (!buf_check(&cols, err) ||
	    !rowhash_expr(r->hash_ext, sc, nsc, tc, ntc, &expr, err) ||
	    !buf_take(&expr, &t->hash_expr, err))
		goto out;
	buf_printf(&expr, err, "left(ROW(%s)::text, %d)", buf_str(&cols),
	           VALIDATE_ROW_TEXT);
	if (!buf_take(&expr, &t->row_expr, err))
		goto out;
	if (t->nsrc == 1)
		buf_printf(&expr, err, "ONLY %s AS r", t->srcs[0]);
	else
	{
		buf_add_str(&expr, "(", err);
		for (int i = 0; i < t->nsrc; i++)
			buf_printf(&expr, err, "%sSELECT %s FROM ONLY %s",
			           i ? " UNION ALL " : "", buf_str(&cols), t->srcs[i]);
		buf_add_str(&expr, ") AS r", err);
	}
	if (!buf_take(&expr, &t->src_from, err))
		goto out;
	buf_printf(&expr, err, "%s%s AS r", relkind == 'p' ? "" : "ONLY ",
	           t->tgt_qname);
	if (!buf_take(&expr, &t->tgt_from, err))
		goto out;
	/* the key, unless it uses a column left out (a generated one) */
	for (int k = 0; k < nkey; k++)
		if (columns_find(sc, nsc, key[k]) < 0)
		{
			strv_free(key, nkey);
			key = NULL;
			nkey = 0;
		}
	if (nkey > 0)
	{
		int first_attnum_ok = 0;

		t->keyed = true;
		t->nkeys = nkey;
		t->key_names = key;
		key = NULL;
		t->key_idents = calloc((size_t) nkey + 1, sizeof(char *));
		t->key_types = calloc((size_t) nkey + 1, sizeof(char *));
		if (t->key_idents == NULL || t->key_types == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		for (int k = 0; k < nkey; k++)
		{
			int si = columns_find(sc, nsc, t->key_names[k]);
			int ti = columns_find(tc, ntc, t->key_names[k]);

			t->key_idents[k] = pg_quote_ident(t->key_names[k]);
			t->key_types[k] = strdup(si >= 0 ? sc[si].type : "text");
			if (t->key_idents[k] == NULL || t->key_types[k] == NULL)
			{
				err_set(err, ERR_INTERNAL, "out of memory");
				goto out;
			}
			buf_printf(&list, err, "%s%s", k ? ", " : "", t->key_idents[k]);
			buf_printf(&text, err, "%s%s::text", k ? ", " : "",
			           t->key_idents[k]);
			if (si < 0 || ti < 0 || !sc[si].c_collation || !tc[ti].c_collation)
				t->key_sensitive = true;
			if (ti >= 0 && !tc[ti].not_null)
				t->tgt_key_nullable = true;
		}
		if (!buf_take(&list, &t->key_list, err) ||
		    !buf_take(&text, &t->key_text, err))
			goto out;
		{
			const char *params[2] = {t->tgt_qname, t->key_names[0]};
			PGresult *res;

			if (!pg_query(tgt,
			              "SELECT EXISTS (SELECT 1 FROM pg_index i"
			              " JOIN pg_attribute a ON a.attrelid = i.indrelid"
			              " AND a.attnum = i.indkey[0]"
			              " WHERE i.indrelid = to_regclass($1)"
			              " AND a.attname = $2)",
			              2, params, &res, err))
				goto out;
			first_attnum_ok = PQgetvalue(res, 0, 0)[0] == 't';
			PQclear(res);
		}
		t->tgt_indexed = first_attnum_ok;
	}
	ok = true;
out:
	buf_free(&missing);
	buf_free(&expr);
	buf_free(&cols);
	buf_free(&list);
	buf_free(&text);
	columns_free(sc, nsc);
	columns_free(tc, ntc);
	strv_free(key, nkey);
	return ok;
}

static void
table_free(VTable *t)
{
	free(t->name);
	free(t->tgt_qname);
	free(t->tgt_name);
	strv_free(t->srcs, t->nsrc);
	strv_free(t->src_names, t->nsrc);
	free(t->problem);
	free(t->src_from);
	free(t->tgt_from);
	free(t->hash_expr);
	free(t->row_expr);
	strv_free(t->key_names, t->nkeys);
	strv_free(t->key_idents, t->nkeys);
	strv_free(t->key_types, t->nkeys);
	free(t->key_list);
	free(t->key_text);
	strv_free(t->bounds, t->nbounds * t->nkeys);
	free(t->checked);
	result_free(&t->res, t->nkeys);
}

/* Frees n tables and the array itself; NULL is a no-op. */
static void
tables_free(VTable *tables, int n)
{
	for (int i = 0; tables != NULL && i < n; i++)
		table_free(&tables[i]);
	free(tables);
}

/* ---- which tables ---- */

/* One source table of the selection and the target table it lives in. */
typedef struct VPick
{
	char *schema;    /* owned */
	char *name;      /* owned */
	char *tgt_qname; /* owned */
	int cat;         /* catalog index, or -1 */
	bool keep;
} VPick;

/* True when the table at cat (or an ancestor) matches one of the patterns. */
static bool
lineage_matches(const Catalog *cat, int idx, const char *schema,
                const char *name, const TablePattern *pats, int n, bool *used)
{
	bool hit = false;

	for (int p = 0; p < n; p++)
		if (mapping_pattern_match(&pats[p], schema, name))
			hit = used[p] = true;
	for (int depth = 0; idx >= 0 && depth < 64; depth++)
	{
		const CatTable *t = &cat->tables[idx];

		for (int p = 0; p < n; p++)
			if (mapping_pattern_match(&pats[p], t->schema, t->name))
				hit = used[p] = true;
		idx = t->parent;
	}
	return hit;
}

static void
tables_picks_free(VPick *p, int n)
{
	for (int i = 0; p != NULL && i < n; i++)
	{
		free(p[i].schema);
		free(p[i].name);
		free(p[i].tgt_qname);
	}
	free(p);
}

/*
 * The tables to compare: the task's (source -> target, from its state) when
 * the target holds them, else the source's tables that tables.include and
 * tables.exclude select, under the same names; then narrowed by
 * validate.tables.
 */
static bool
tables_pick(VRun *r, PgConn *tgt, Catalog *cat, VPick **out, int *n,
            bool *from_state, Error *err)
{
	const TaskConfig *cfg = r->cfg;
	StateTable *st = NULL;
	int nst = 0;
	VPick *p = NULL;
	int np = 0;
	TablePattern *pats = NULL;
	bool *used = NULL;
	bool ok = false, oom = false;
	int npats = cfg->validate_tables.count;

	*out = NULL;
	*n = 0;
	*from_state = false;
	{
		const char *params[1] = {cfg->state_schema};
		PGresult *res;
		bool have = false;

		if (!pg_query(tgt,
		              "SELECT to_regclass(quote_ident($1) || '.tables')"
		              " IS NOT NULL",
		              1, params, &res, err))
			return false;
		have = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
		if (have && !state_tables_load(tgt, cfg->state_schema, cfg->task, &st,
		                               &nst, err))
			return false;
	}
	if (nst > 0)
	{
		*from_state = true;
		p = calloc((size_t) nst + 1, sizeof(VPick));
		for (int i = 0; p != NULL && i < nst; i++)
		{
			p[i].schema = strdup(st[i].src_schema);
			p[i].name = strdup(st[i].src_name);
			p[i].tgt_qname = strdup(st[i].tgt_qname);
			oom |= !p[i].schema || !p[i].name || !p[i].tgt_qname;
			p[i].cat = catalog_find(cat, st[i].src_schema, st[i].src_name);
			p[i].keep = true;
		}
		np = nst;
	}
	else
	{
		if (!catalog_select(cat, cfg->include.items, cfg->include.count,
		                    cfg->exclude.items, cfg->exclude.count, err))
			goto out;
		p = calloc((size_t) cat->ntables + 1, sizeof(VPick));
		for (int i = 0; p != NULL && i < cat->ntables; i++)
		{
			const CatTable *ct = &cat->tables[i];

			if (!ct->selected)
				continue;
			p[np].schema = strdup(ct->schema);
			p[np].name = strdup(ct->name);
			p[np].tgt_qname = strdup(ct->qname);
			oom |= !p[np].schema || !p[np].name || !p[np].tgt_qname;
			p[np].cat = i;
			p[np].keep = true;
			np++;
		}
	}
	if (p == NULL || oom)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (npats > 0)
	{
		pats = calloc((size_t) npats, sizeof(TablePattern));
		used = calloc((size_t) npats, sizeof(bool));
		if (pats == NULL || used == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		for (int i = 0; i < npats; i++)
			if (!mapping_parse_pattern(cfg->validate_tables.items[i], &pats[i],
			                           err))
			{
				for (int j = 0; j < i; j++)
					mapping_pattern_free(&pats[j]);
				npats = 0;
				goto out;
			}
		for (int i = 0; i < np; i++)
			p[i].keep = lineage_matches(cat, p[i].cat, p[i].schema, p[i].name,
			                            pats, npats, used);
		for (int i = 0; i < npats; i++)
			if (!used[i])
			{
				err_set(err, ERR_CONFIG,
				        "validate.tables pattern \"%s\" matches no table of "
				        "the task",
				        cfg->validate_tables.items[i]);
				err_hint(err,
				         "%s; patterns are schema.table with * and ? "
				         "wildcards, names are case-sensitive",
				         *from_state
				             ? "the task's tables are those in its state on "
				               "the target"
				             : "the tables are those tables.include and "
				               "tables.exclude select on the source");
				goto out;
			}
		/* a target table fed by several source tables is compared whole */
		for (int i = 0; i < np; i++)
			for (int j = 0; j < np && !p[i].keep; j++)
				if (p[j].keep && strcmp(p[i].tgt_qname, p[j].tgt_qname) == 0)
					p[i].keep = true;
	}
	ok = true;
out:
	for (int i = 0; i < npats; i++)
		mapping_pattern_free(&pats[i]);
	free(pats);
	free(used);
	state_tables_free(st, nst);
	if (!ok)
	{
		tables_picks_free(p, np);
		return false;
	}
	*out = p;
	*n = np;
	return true;
}

/* Groups the kept picks by target table into r->tables. */
static bool
tables_build(VRun *r, const Catalog *cat, VPick *p, int np, Error *err)
{
	r->tables = calloc((size_t) np + 1, sizeof(VTable));
	if (r->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < np; i++)
	{
		VTable *t = NULL;
		char **srcs, **names;

		if (!p[i].keep)
			continue;
		for (int j = 0; j < r->ntables && t == NULL; j++)
			if (strcmp(r->tables[j].tgt_qname, p[i].tgt_qname) == 0)
				t = &r->tables[j];
		if (t == NULL)
		{
			t = &r->tables[r->ntables++];
			t->cat = p[i].cat;
			t->tgt_qname = strdup(p[i].tgt_qname);
			t->tgt_name = unquote_qname(p[i].tgt_qname);
			if (asprintf(&t->name, "%s.%s", p[i].schema, p[i].name) < 0)
				t->name = NULL;
			if (t->tgt_qname == NULL || t->tgt_name == NULL || t->name == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
		}
		else if (t->nsrc == 1)
		{
			/* several sources: the target's name says what is compared */
			free(t->name);
			t->name = strdup(t->tgt_name);
			if (t->name == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
		}
		srcs = realloc(t->srcs, (size_t) (t->nsrc + 2) * sizeof(char *));
		if (srcs != NULL)
			t->srcs = srcs;
		names = realloc(t->src_names, (size_t) (t->nsrc + 2) * sizeof(char *));
		if (names != NULL)
			t->src_names = names;
		if (srcs == NULL || names == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		t->srcs[t->nsrc] = pg_qualify(p[i].schema, p[i].name);
		if (asprintf(&t->src_names[t->nsrc], "%s.%s", p[i].schema, p[i].name) <
		    0)
			t->src_names[t->nsrc] = NULL;
		t->nsrc++;
		if (t->srcs[t->nsrc - 1] == NULL || t->src_names[t->nsrc - 1] == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		if (p[i].cat < 0)
		{
			if (!result_set_problem(t, VS_MISSING_SOURCE, "not on the source",
			                        err))
				return false;
			continue;
		}
		t->est_rows += cat->tables[p[i].cat].reltuples > 0
		                   ? cat->tables[p[i].cat].reltuples
		                   : 0;
		t->est_bytes += cat->tables[p[i].cat].bytes;
	}
	return true;
}

static int
by_size_desc(const void *a, const void *b)
{
	const VTable *x = a, *y = b;

	if (x->est_bytes != y->est_bytes)
		return x->est_bytes > y->est_bytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Orders tables largest first (then by name): the longest start first. */
static void
tables_sort(VTable *tables, int n)
{
	qsort(tables, (size_t) n, sizeof(VTable), by_size_desc);
}

/* ---- the state schema (its tables are state.c's) ---- */

static bool
state_exec(PgConn *tgt, const char *schema, const char *fmt, int n,
           const char *const *params, PGresult **out, Error *err)
{
	if (!state_query(tgt, schema, fmt, n, params, out, err))
		return err_prefix(err, "could not record the validation: ");
	return true;
}

/* Creates the result tables if missing and the run's row; sets run_id. */
static bool
record_start(VRun *r, PgConn *tgt, Error *err)
{
	const char *schema = r->cfg->state_schema;
	char sample[32];
	const char *params[4] = {r->cfg->task,
	                         r->mode == VALIDATE_FULL ? "full" : "counts",
	                         sample, r->cdc ? "true" : "false"};
	PGresult *res;

	snprintf(sample, sizeof(sample), "%.6f", r->cfg->validate_sample);
	if (!state_init(tgt, schema, err) ||
	    !state_exec(tgt, schema,
	                "INSERT INTO @S.validation_runs (task, mode, sample, cdc)"
	                " VALUES ($1, $2, $3::float8, $4::boolean) RETURNING id",
	                4, params, &res, err))
		return false;
	r->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

/* First-level ranges of t: none when it could not be compared. */
static int
result_ranges(const VTable *t)
{
	return t->problem != NULL ? 0 : t->nbounds + 1;
}

/*
 * "(a, b)=(1, x)", as PostgreSQL names a key; malloc'd, NULL when out of
 * memory.
 */
static char *
result_key_text(const VTable *t, const VDiff *d)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	buf_add_str(&b, "(", &err);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&b, &err, "%s%s", k ? ", " : "", t->key_names[k]);
	buf_add_str(&b, ")=(", &err);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&b, &err, "%s%s", k ? ", " : "",
		           d->key != NULL && d->key[k] != NULL ? d->key[k] : "NULL");
	buf_add_str(&b, ")", &err);
	return buf_take(&b, &out, &err) ? out : NULL;
}

static bool
record_table(const VRun *r, PgConn *tgt, const VTable *t, Error *err)
{
	const char *schema = r->cfg->state_schema;
	char id[24], ranges[16], checked[16], rs[24], rt[24], diffs[24];
	Buf keys = BUF_INIT(VALIDATE_SQL_MAX), kinds = BUF_INIT(VALIDATE_SQL_MAX);
	Buf keyv = BUF_INIT(VALIDATE_SQL_MAX), rows = BUF_INIT(VALIDATE_SQL_MAX);
	Buf sc = BUF_INIT(VALIDATE_SQL_MAX), tc = BUF_INIT(VALIDATE_SQL_MAX);
	char *kc = NULL, *a1 = NULL, *a2 = NULL, *a3 = NULL, *a4 = NULL, *a5 = NULL;
	char *a6 = NULL;
	bool ok = false;

	snprintf(id, sizeof(id), "%" PRId64, r->run_id);
	snprintf(ranges, sizeof(ranges), "%d", result_ranges(t));
	snprintf(checked, sizeof(checked), "%d", t->checks_done);
	snprintf(rs, sizeof(rs), "%" PRId64, t->res.rows_src);
	snprintf(rt, sizeof(rt), "%" PRId64, t->res.rows_tgt);
	snprintf(diffs, sizeof(diffs), "%" PRId64, t->res.differences);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&keys, err, "%s%s", k ? ", " : "", t->key_names[k]);
	if (t->keyed && !buf_take(&keys, &kc, err))
		goto out;
	{
		const char *params[11] = {
		    id, t->name, t->tgt_name, vstatus_names[t->status],
		    kc, ranges,  checked,     rs,
		    rt, diffs,   t->problem};

		if (!state_exec(tgt, schema,
		                "INSERT INTO @S.validation_tables (run_id, src_table,"
		                " tgt_table, status, key_columns, ranges,"
		                " ranges_checked, rows_source, rows_target,"
		                " differences, detail) VALUES ($1::bigint, $2, $3, $4,"
		                " $5, $6::int, $7::int, $8::bigint, $9::bigint,"
		                " $10::bigint, $11)",
		                11, params, NULL, err))
			goto out;
	}
	if (t->res.nshown == 0)
	{
		ok = true;
		goto out;
	}
	buf_add_str(&kinds, "{", err);
	buf_add_str(&keyv, "{", err);
	buf_add_str(&rows, "{", err);
	buf_add_str(&sc, "{", err);
	buf_add_str(&tc, "{", err);
	for (int i = 0; i < t->res.nshown; i++)
	{
		const VDiff *d = &t->res.shown[i];
		char *k = t->keyed ? result_key_text(t, d) : NULL;
		char n1[24], n2[24];

		snprintf(n1, sizeof(n1), "%" PRId64, d->src_copies);
		snprintf(n2, sizeof(n2), "%" PRId64, d->tgt_copies);
		query_array_item(&kinds, vkind_names[d->kind], err);
		query_array_item(&keyv, k, err);
		query_array_item(&rows, d->row, err);
		query_array_item(&sc, t->keyed ? NULL : n1, err);
		query_array_item(&tc, t->keyed ? NULL : n2, err);
		free(k);
	}
	buf_add_str(&kinds, "}", err);
	buf_add_str(&keyv, "}", err);
	buf_add_str(&rows, "}", err);
	buf_add_str(&sc, "}", err);
	buf_add_str(&tc, "}", err);
	if (!buf_take(&kinds, &a1, err) || !buf_take(&keyv, &a2, err) ||
	    !buf_take(&rows, &a3, err) || !buf_take(&sc, &a4, err) ||
	    !buf_take(&tc, &a5, err) || (a6 = strdup(t->name)) == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	{
		const char *params[7] = {id, a6, a1, a2, a3, a4, a5};

		ok = state_exec(tgt, schema,
		                "INSERT INTO @S.validation_differences (run_id,"
		                " src_table, seq, kind, key, row_text, source_copies,"
		                " target_copies) SELECT $1::bigint, $2, u.o, u.k, u.ky,"
		                " u.rw, u.sc::bigint, u.tc::bigint FROM"
		                " unnest($3::text[], $4::text[], $5::text[],"
		                " $6::text[], $7::text[]) WITH ORDINALITY"
		                " AS u(k, ky, rw, sc, tc, o)",
		                7, params, NULL, err);
	}
out:
	buf_free(&keys);
	buf_free(&kinds);
	buf_free(&keyv);
	buf_free(&rows);
	buf_free(&sc);
	buf_free(&tc);
	free(kc);
	free(a1);
	free(a2);
	free(a3);
	free(a4);
	free(a5);
	free(a6);
	return ok;
}

/* Totals over the tables. */
static void
result_summarize(const VRun *r, ValidateSummary *s, int64_t *ranges,
                 int64_t *checked)
{
	memset(s, 0, sizeof(*s));
	*ranges = 0;
	*checked = 0;
	s->tables = r->ntables;
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		s->tables_differing += t->status != VS_EQUAL;
		s->rows_source += t->res.rows_src;
		s->rows_target += t->res.rows_tgt;
		s->differences += t->res.differences;
		*ranges += result_ranges(t);
		*checked += t->checks_done;
	}
}

/* Records the outcome: results in one transaction, or the failure. */
static bool
record_end(VRun *r, PgConn *tgt, const Error *failure, Error *err)
{
	const char *schema = r->cfg->state_schema;
	ValidateSummary s;
	int64_t ranges, checked;
	char id[24], nt[16], nd[16], nr[24], nc[24], rs[24], rt[24], df[24];
	const char *status;
	bool ok;

	if (r->run_id < 0)
		return true;
	result_summarize(r, &s, &ranges, &checked);
	snprintf(id, sizeof(id), "%" PRId64, r->run_id);
	snprintf(nt, sizeof(nt), "%d", s.tables);
	snprintf(nd, sizeof(nd), "%d", s.tables_differing);
	snprintf(nr, sizeof(nr), "%" PRId64, ranges);
	snprintf(nc, sizeof(nc), "%" PRId64, checked);
	snprintf(rs, sizeof(rs), "%" PRId64, s.rows_source);
	snprintf(rt, sizeof(rt), "%" PRId64, s.rows_target);
	snprintf(df, sizeof(df), "%" PRId64, s.differences);
	if (failure != NULL)
	{
		const char *params[3] = {
		    id, failure->kind == ERR_INTERRUPTED ? "interrupted" : "failed",
		    failure->message};

		return state_exec(tgt, schema,
		                  "UPDATE @S.validation_runs SET status = $2,"
		                  " error = $3, finished_at = now()"
		                  " WHERE id = $1::bigint",
		                  3, params, NULL, err);
	}
	status =
	    s.tables_differing > 0 || s.differences > 0 ? "different" : "equal";
	if (!pg_exec(tgt, "BEGIN", err))
		return false;
	ok = true;
	for (int i = 0; ok && i < r->ntables; i++)
		ok = record_table(r, tgt, &r->tables[i], err);
	if (ok)
	{
		const char *params[9] = {id, status, nt, nd, nr, nc, rs, rt, df};

		ok = state_exec(tgt, schema,
		                "UPDATE @S.validation_runs SET status = $2,"
		                " finished_at = now(), tables = $3::int,"
		                " tables_differing = $4::int, ranges = $5::bigint,"
		                " ranges_checked = $6::bigint,"
		                " rows_source = $7::bigint, rows_target = $8::bigint,"
		                " differences = $9::bigint WHERE id = $1::bigint",
		                9, params, NULL, err);
	}
	if (!ok)
	{
		Error ignored = ERR_INIT;

		pg_exec(tgt, "ROLLBACK", &ignored);
		return false;
	}
	return pg_exec(tgt, "COMMIT", err);
}

/* ---- the run ---- */

static void
run_free(VRun *r)
{
	tables_free(r->tables, r->ntables);
	r->tables = NULL;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

/* Whether the task's change stream is running (its slot active). */
static bool
slot_detect(VRun *r, PgConn *src, PgConn *tgt, Error *err)
{
	const char *params[1];
	PGresult *res;
	bool cut_over = false;

	snprintf(r->slot, sizeof(r->slot), "pgtide_%s", r->cfg->task);
	if (r->cfg->cdc_slot != NULL)
		snprintf(r->slot, sizeof(r->slot), "%s", r->cfg->cdc_slot);
	else
	{
		char *sql = NULL;
		const char *tp[2] = {r->cfg->state_schema, r->cfg->task};
		char *q = pg_quote_ident(r->cfg->state_schema);

		if (q == NULL ||
		    asprintf(&sql,
		             "SELECT slot_name, phase FROM %s.task WHERE task = $2"
		             " AND to_regclass(quote_ident($1) || '.task')"
		             " IS NOT NULL",
		             q) < 0)
			sql = NULL;
		free(q);
		if (sql == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		if (pg_query(tgt, sql, 2, tp, &res, err))
		{
			if (PQntuples(res) == 1)
			{
				snprintf(r->slot, sizeof(r->slot), "%s", PQgetvalue(res, 0, 0));
				cut_over = strcmp(PQgetvalue(res, 0, 1), "cutover") == 0;
			}
			PQclear(res);
		}
		else if (pg_err_is(err, "42P01") || pg_err_is(err, "3F000"))
			err_clear(err); /* no state: the default name */
		free(sql);
		if (err_is_set(err))
			return false;
	}
	params[0] = r->slot;
	if (!pg_query(src,
	              "SELECT active, coalesce(confirmed_flush_lsn::text, ''),"
	              " pg_current_wal_lsn() - confirmed_flush_lsn"
	              " FROM pg_replication_slots WHERE slot_name = $1"
	              " AND database = current_database()",
	              1, params, &res, err))
		return false;
	if (PQntuples(res) == 1)
	{
		r->cdc = PQgetvalue(res, 0, 0)[0] == 't';
		if (r->cdc)
			log_info("slot \"%s\" is active: a range that differs is read "
			         "again once the target has applied what the source "
			         "held when it was read",
			         r->slot);
		else if (!cut_over) /* after cutover the source is fenced, done */
			log_warn("slot \"%s\" exists but is not active: what the source "
			         "changed after its confirmed position %s (%s bytes of "
			         "WAL ago) is not on the target and shows as differences",
			         r->slot, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return true;
}

/*
 * Everything but printing: which tables, their description, the workers,
 * and the state records. On success r holds the results (freed by
 * run_free).
 */
static bool
run_validation(VRun *r, Error *err)
{
	PgConn *src = NULL, *tgt = NULL, *state = NULL;
	Catalog *cat = NULL;
	VPick *picks = NULL;
	int npicks = 0;
	bool from_state = false, ok = false;

	r->started_ms = clock_ms();
	r->run_id = -1;
	atomic_init(&r->wait_ms, VALIDATE_WAIT_MS);
	if (!query_open(r, ERR_SOURCE, true, &src, err) ||
	    !query_open(r, ERR_TARGET, true, &tgt, err))
		goto out;
	r->src_version = pg_server_version(src);
	r->tgt_version = pg_server_version(tgt);
	/* PGTIDE_VALIDATE_PORTABLE forces the md5 form: for servers of another
	 * byte order, and for the tests of the form older servers get */
	r->hash_ext = getenv("PGTIDE_VALIDATE_PORTABLE") == NULL &&
	              r->src_version >= 110000 && r->tgt_version >= 110000;
	if (!catalog_read(src, r->cfg->state_schema, &cat, err) ||
	    !tables_pick(r, tgt, cat, &picks, &npicks, &from_state, err) ||
	    !tables_build(r, cat, picks, npicks, err))
		goto out;
	for (int i = 0; i < r->ntables; i++)
		if (!describe_table(r, src, tgt, &r->tables[i], err))
		{
			err_prefix(err, "table %s: ", r->tables[i].name);
			goto out;
		}
	tables_sort(r->tables, r->ntables);
	if (!slot_detect(r, src, tgt, err))
		goto out;
	log_info("validating %d tables (%s) with %d workers%s", r->ntables,
	         from_state ? "the task's" : "selected on the source",
	         r->cfg->copy_jobs,
	         r->cfg->validate_sample < 1.0 ? ", a sample of the ranges" : "");
	/* the only session that writes: the state schema on the target. A
	 * target where pgtide may not write still gets compared. */
	if (!query_open(r, ERR_TARGET, false, &state, err))
		goto out;
	{
		Error rec = ERR_INIT;

		if (!record_start(r, state, &rec))
		{
			log_warn("%s; the results are not recorded", rec.message);
			r->run_id = -1;
		}
	}
	pg_close(src);
	pg_close(tgt);
	src = tgt = NULL;
	if (!pool_run(r, err))
	{
		Error ignored = ERR_INIT;

		if (pg_ok(state))
			record_end(r, state, err, &ignored);
		goto out;
	}
	ok = record_end(r, state, NULL, err);
out:
	tables_picks_free(picks, npicks);
	catalog_free(cat);
	pg_close(src);
	pg_close(tgt);
	pg_close(state);
	return ok;
}

static bool
run_init(VRun *r, const TaskConfig *cfg, ValidateMode mode, atomic_int *stop)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->mode = mode;
	r->stop = stop;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	return true;
}

bool
validate_run(const TaskConfig *cfg, ValidateMode mode, bool still,
             atomic_int *stop, ValidateSummary *out, Error *err)
{
	VRun r;
	int64_t ranges, checked;
	bool ok;

	run_init(&r, cfg, mode, stop);
	r.still = still;
	ok = run_validation(&r, err);
	if (ok)
	{
		result_summarize(&r, out, &ranges, &checked);
		log_info("validation (%s) run %" PRId64 ": %d tables, %d differ,"
		         " %" PRId64 " rows on the source, %" PRId64
		         " on the target, %" PRId64 " differences",
		         mode == VALIDATE_FULL ? "full" : "counts", r.run_id,
		         out->tables, out->tables_differing, out->rows_source,
		         out->rows_target, out->differences);
	}
	run_free(&r);
	return ok;
}

/* ---- pgtide validate: printing ---- */

static void
print_json(const VRun *r, FILE *out)
{
	ValidateSummary s;
	int64_t ranges, checked;

	result_summarize(r, &s, &ranges, &checked);
	fprintf(out, "{\"run_id\":%" PRId64 ",\"task\":", r->run_id);
	json_write_string(out, r->cfg->task);
	fprintf(out,
	        ",\"mode\":\"full\",\"sample\":%g,\"cdc\":%s,\"tables\":%d,"
	        "\"tables_differing\":%d,\"ranges\":%" PRId64
	        ",\"ranges_checked\":%" PRId64 ",\"rows_source\":%" PRId64
	        ",\"rows_target\":%" PRId64 ",\"differences\":%" PRId64
	        ",\"rereads\":%" PRId64 ",\"seconds\":%.3f,\"results\":[",
	        r->cfg->validate_sample, r->cdc ? "true" : "false", s.tables,
	        s.tables_differing, ranges, checked, s.rows_source, s.rows_target,
	        s.differences, atomic_load(&r->rereads),
	        (double) (clock_ms() - r->started_ms) / 1000.0);
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		fputs(i ? ",{\"table\":" : "{\"table\":", out);
		json_write_string(out, t->name);
		fputs(",\"target\":", out);
		json_write_string(out, t->tgt_name);
		fputs(",\"sources\":[", out);
		for (int k = 0; k < t->nsrc; k++)
		{
			if (k)
				fputc(',', out);
			json_write_string(out, t->src_names[k]);
		}
		fprintf(out, "],\"status\":\"%s\",\"key\":", vstatus_names[t->status]);
		if (t->keyed)
		{
			fputc('[', out);
			for (int k = 0; k < t->nkeys; k++)
			{
				if (k)
					fputc(',', out);
				json_write_string(out, t->key_names[k]);
			}
			fputc(']', out);
		}
		else
			fputs("null", out);
		fputs(",\"detail\":", out);
		json_write_string(out, t->problem);
		fprintf(out,
		        ",\"ranges\":%d,\"ranges_checked\":%d,\"rows_source\":%" PRId64
		        ",\"rows_target\":%" PRId64 ",\"differences\":%" PRId64
		        ",\"rows\":[",
		        result_ranges(t), t->checks_done, t->res.rows_src,
		        t->res.rows_tgt, t->res.differences);
		for (int j = 0; j < t->res.nshown; j++)
		{
			const VDiff *d = &t->res.shown[j];

			fprintf(out, "%s{\"kind\":\"%s\"", j ? "," : "",
			        vkind_names[d->kind]);
			if (t->keyed)
			{
				fputs(",\"key\":{", out);
				for (int k = 0; k < t->nkeys; k++)
				{
					if (k)
						fputc(',', out);
					json_write_string(out, t->key_names[k]);
					fputc(':', out);
					json_write_string(out, d->key ? d->key[k] : NULL);
				}
				fputc('}', out);
			}
			else
			{
				fputs(",\"row\":", out);
				json_write_string(out, d->row);
				fprintf(out,
				        ",\"source_copies\":%" PRId64
				        ",\"target_copies\":%" PRId64,
				        d->src_copies, d->tgt_copies);
			}
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
}

static void
print_text(const VRun *r, FILE *out)
{
	static const char *const kind_text[] = {"missing on the target",
	                                        "extra on the target", "different"};
	ValidateSummary s;
	int64_t ranges, checked;

	result_summarize(r, &s, &ranges, &checked);
	fprintf(out, "pgtide validate: task %s, %d tables, %" PRId64 " ranges",
	        r->cfg->task, s.tables, ranges);
	if (r->cfg->validate_sample < 1.0)
		fprintf(out, " (a sample: %" PRId64 " checked)", checked);
	fprintf(out, "%s\n",
	        r->cdc ? ", rechecked against the running change stream" : "");
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		if (t->problem != NULL)
		{
			fprintf(out, "  %-40s %-9s %s\n", t->name, "DIFFERENT", t->problem);
			continue;
		}
		if (t->status == VS_EQUAL)
		{
			fprintf(out, "  %-40s %-9s %" PRId64 " rows%s\n", t->name, "equal",
			        t->res.rows_src, t->keyed ? "" : " (no key)");
			continue;
		}
		fprintf(out,
		        "  %-40s %-9s %" PRId64 " rows on the source, %" PRId64
		        " on the target: %" PRId64 " rows differ\n",
		        t->name, "DIFFERENT", t->res.rows_src, t->res.rows_tgt,
		        t->res.differences);
		for (int j = 0; j < t->res.nshown; j++)
		{
			const VDiff *d = &t->res.shown[j];

			if (t->keyed)
			{
				char *k = result_key_text(t, d);

				fprintf(out, "      %-22s %s\n", kind_text[d->kind],
				        k ? k : "?");
				free(k);
			}
			else
				fprintf(out,
				        "      %-22s %s (%" PRId64 " on the source, %" PRId64
				        " on the target)\n",
				        kind_text[d->kind], d->row ? d->row : "?",
				        d->src_copies, d->tgt_copies);
		}
		if (t->res.differences > t->res.nshown)
			fprintf(out, "      ... and %" PRId64 " more\n",
			        t->res.differences - t->res.nshown);
	}
	if (s.tables_differing == 0)
		fprintf(out, "equal: %" PRId64 " rows on each side (run %" PRId64 ")\n",
		        s.rows_source, r->run_id);
	else
		fprintf(out,
		        "DIFFERENT: %d of %d tables, %" PRId64
		        " differences (run %" PRId64 ", recorded in %s."
		        "validation_differences)\n",
		        s.tables_differing, s.tables, s.differences, r->run_id,
		        r->cfg->state_schema);
}

bool
validate_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	VRun r;
	ValidateSummary s;
	int64_t ranges, checked;
	bool ok;

	run_init(&r, cfg, VALIDATE_FULL, stop);
	ok = run_validation(&r, err);
	if (ok)
	{
		if (cfg->output_json)
			print_json(&r, stdout);
		else
			print_text(&r, stdout);
		fflush(stdout);
		result_summarize(&r, &s, &ranges, &checked);
		if (s.tables_differing > 0 || s.differences > 0)
		{
			err_set(err, ERR_DIFFERENT,
			        "%d of %d tables differ (%" PRId64 " differences)",
			        s.tables_differing, s.tables, s.differences);
			err_hint(err,
			         "the differing rows are listed above and in %s."
			         "validation_differences (run %" PRId64 ")",
			         cfg->state_schema, r.run_id);
			ok = false;
		}
	}
	run_free(&r);
	return ok;
}
