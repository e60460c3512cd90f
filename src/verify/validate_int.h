/*
 * validate_int: what the files of validate share, for src/verify/ alone
 * (callers elsewhere use validate.h; validate.c lists the files). The run
 * (VRun), the tables it compares (VTable), what comparing finds (VResult),
 * and each file's functions.
 *
 * Threads: a VTable's description and the VRun fields above `lock` are
 * written before the workers start and only read afterwards; the fields
 * marked "under the lock" change only under lock, and the _Atomic
 * counters without it. A VWorker and its connections belong to its thread.
 */
#ifndef PGTIDE_VALIDATE_INT_H
#define PGTIDE_VALIDATE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "load/insert_only.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/rename.h"
#include "route/shard.h"
#include "verify/validate.h"

#define VALIDATE_SHOWN    100   /* differences kept per table */
#define VALIDATE_RECHECKS 4     /* reads of a differing range under CDC */
#define VALIDATE_WAIT_MS  30000 /* for the applier to pass a position */
#define VALIDATE_MAX_KEYS 32
#define VALIDATE_SQL_MAX  (256 * 1024 * 1024) /* any string built */

typedef enum VKind
{
	VK_MISSING = 0, /* on the source, not on the target */
	VK_EXTRA,       /* on the target, not on the source */
	VK_DIFFERENT,   /* same key, other contents */
} VKind;

extern const char *const vkind_names[]; /* by VKind */

typedef struct VDiff
{
	VKind kind;
	char **key;         /* keyed: nkeys values (NULL: SQL NULL); owned */
	char *row;          /* keyless: the row's text, truncated; owned */
	int64_t src_copies; /* keyless: copies on each side */
	int64_t tgt_copies;
	/* keyed, under a running stream: reads in a row that found the row
	   differing while the source held it still (validate_keyed.c) */
	int settled;
} VDiff;

/* Findings of one job (or of a table, once merged). */
typedef struct VResult
{
	int64_t rows_src;
	int64_t rows_tgt;
	int64_t differences;
	/* rows the source changed between every pair of reads of a recheck:
	   not compared, and not counted as differences */
	int64_t unsettled;
	char *unsettled_key; /* the first one's key text, for people; owned */
	VDiff *shown;        /* at most VALIDATE_SHOWN */
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

extern const char *const vstatus_names[]; /* by VStatus */

typedef struct VTable
{
	/* what: fixed once described, read by workers without the lock */
	char *name;       /* source schema.name (or the target's, for several) */
	char *tgt_qname;  /* "schema"."name" on the target */
	char *tgt_name;   /* schema.name on the target */
	char *src_schema; /* the first source's names, for route/rename */
	char *src_table;
	char **srcs; /* quoted source relations */
	char **src_names;
	/* per source, the task file's row filter, or NULL: the source side
	   reads only the rows it keeps (decision 0029); views into the cfg */
	const char **src_filters;
	int nsrc;
	int cat;           /* catalog index of srcs[0], or -1 */
	double est_rows;   /* catalog estimate, for ordering and ETA */
	int64_t est_bytes; /* catalog size */
	VStatus status;
	char *problem; /* table-level difference, for people */
	char *src_from;
	char *tgt_from;
	char *src_where; /* several targets: this target's share of the
	                    source's rows (load/shards), or NULL for all */
	char *hash_expr; /* bigint hash of a row */
	char *row_expr;  /* a row's text, truncated, for people */
	bool keyed;
	int nkeys;
	char **key_names;  /* unquoted, for output */
	char **key_idents; /* quoted */
	char **key_types;  /* format_type() on the source */
	char *key_list;    /* "k1", "k2" */
	char *key_text;    /* "k1"::text, "k2"::text */
	/* the two sides may order keys otherwise: a key collation other than C
	   on either side, or two encodings */
	bool key_sensitive;
	bool tgt_indexed; /* the target has an index led by the first key */
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
	Renames renames; /* the task's renames and removed columns */
	ValidateMode mode;
	atomic_int *stop;
	VTable *tables;
	int ntables;
	int src_version;
	int tgt_version;
	bool hash_ext;     /* typed extended hashes (11+ on both sides), else md5 */
	bool text_as_utf8; /* the two databases' encodings differ */
	bool cdc;          /* the task's slot is active: recheck what differs */
	bool still; /* the caller holds both sides still: read tables whole */
	const ShardSpec *spec; /* several targets: the rules, or NULL */
	int shard_target;      /* with spec: the target compared */
	/* several targets, held still: source counts of this target's share
	   counted once for all, or NULL */
	ValidateShares *shares;
	char slot[128];
	int64_t run_id; /* validation_runs.id, or -1 */
	int64_t started_ms;
	InsertOnlyWatch io; /* keyless tables that saw an UPDATE or DELETE */

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
	PgConn *src;
	PgConn *tgt;
} VWorker;

/* True once a stop was requested. */
static inline bool
run_stopping(const VRun *r)
{
	return r->stop != NULL && *r->stop;
}

/* Frees n strings of v and v itself; NULL is a no-op. */
static inline void
strv_free(char **v, int n)
{
	for (int i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* Rows of a single-row-mode query, one at a time. */
typedef struct VStream
{
	const VRun *r;
	PgConn *c;
	PGresult *row; /* the current row, or NULL once the query is over */
	bool end;
} VStream;

/* count(*) and sum(hash) of a range, read on both sides at once. */
typedef struct VAgg
{
	int64_t src_rows;
	int64_t tgt_rows;
	char src_sum[48];
	char tgt_sum[48];
	Lsn lsn; /* source position after its read (CDC) */
} VAgg;

typedef struct KeyMap
{
	char **keys; /* encoded keys; owned */
	int *vals;
	size_t cap; /* a power of 2 */
	size_t n;
} KeyMap;

typedef struct VColumn
{
	char *name;
	char *type;         /* format_type() */
	uint32_t root;      /* type after domains */
	uint32_t elem;      /* element type of an array root, or 0 */
	uint32_t range_sub; /* subtype of a range root, or 0 */
	bool not_null;
	bool c_collation; /* sorts as C (or is not collatable) */
} VColumn;

/* One source table of the selection and the target table it lives in. */
typedef struct VPick
{
	char *schema;    /* owned */
	char *name;      /* owned */
	char *tgt_qname; /* owned */
	int cat;         /* catalog index, or -1 */
	bool keep;
} VPick;

/* ---- validate_tables.c ---- */

/*
 * The tables to compare, as picks (*out, *n; free with tables_picks_free):
 * the task's from its state on tgt, else cat's selection; narrowed by
 * validate.tables (ERR_CONFIG for a pattern that matches nothing).
 * *from_state says which.
 */
bool tables_pick(VRun *r, PgConn *tgt, Catalog *cat, VPick **out, int *n,
                 bool *from_state, Error *err);
void tables_picks_free(VPick *p, int n);

/* Groups the kept picks by target table into r->tables (r owns them). */
bool tables_build(VRun *r, const Catalog *cat, VPick *p, int np, Error *err);

/* Orders tables largest first (then by name). */
void tables_sort(VTable *tables, int n);

/* Frees n tables and the array itself; NULL is a no-op. */
void tables_free(VTable *tables, int n);

/* ---- validate_columns.c ---- */

/*
 * rel's columns in order (generated ones left out when skip_generated):
 * *out (n of them) is the caller's, freed with columns_free.
 */
bool columns_read(PgConn *c, const char *rel, bool skip_generated,
                  VColumn **out, int *n, Error *err);
void columns_free(VColumn *c, int n);

/* Index of the column called name, or -1. */
int columns_find(const VColumn *c, int n, const char *name);

/*
 * The key rel is compared by, its column names in index order (*names, *n;
 * the caller frees with strv_free); none when rel has no such key.
 */
bool columns_read_key(PgConn *c, const char *rel, char ***names, int *n,
                      Error *err);

/* ---- validate_rowhash.c ---- */

/*
 * Appends the bigint hash of a row of the source columns sc to sql; each
 * of them is among the target's tc. Fails only when out of memory or past
 * sql's cap.
 */
bool rowhash_expr(bool hash_ext, bool text_as_utf8, const VColumn *sc, int nsc,
                  const VColumn *tc, int ntc, Buf *sql, Error *err);

/* ---- validate_describe.c ---- */

/*
 * Fills t's description (SQL pieces and key, owned by t) from both
 * servers, or marks t as a table-level difference; fails when a server
 * does.
 */
bool describe_table(const VRun *r, PgConn *src, PgConn *tgt, VTable *t,
                    Error *err);

/* ---- validate_slot.c ---- */

/* Sets r->slot and r->cdc: whether the task's slot is active. */
bool slot_detect(VRun *r, PgConn *src, PgConn *tgt, Error *err);

/* The source's WAL position now (LSN_INVALID when no stream runs). */
bool slot_source_lsn(VWorker *w, Lsn *lsn, Error *err);

/*
 * Returns once the slot has confirmed lsn, is inactive, or the wait timed
 * out (a difference is still reported then); fails on a server error or
 * ERR_INTERRUPTED. *reached (may be NULL): whether the slot confirmed it.
 */
bool slot_wait_applied(VWorker *w, Lsn lsn, bool *reached, Error *err);

/* ---- validate_record.c ---- */

/*
 * Records the run's start on tgt and sets r->run_id, when the target holds
 * pgtide's state; without it nothing is created (run_id -1: the results are
 * printed only). A failure leaves r->run_id alone.
 */
bool record_start(VRun *r, PgConn *tgt, Error *err);

/*
 * Records the outcome: every table's results and the run's totals in one
 * transaction, or, with failure, that the run failed. Nothing when
 * r->run_id < 0.
 */
bool record_end(VRun *r, PgConn *tgt, const Error *failure, Error *err);

/* ---- validate_pool.c ---- */

/*
 * Runs r->cfg->copy_jobs workers until every table is compared, logging
 * progress. Fails with the first job's failure, or ERR_INTERRUPTED.
 */
bool pool_run(VRun *r, Error *err);

/* ---- validate_plan.c ---- */

/*
 * Decides t's ranges: *bounds (*nbounds * t->nkeys values; the caller
 * frees with strv_free) cut it into *nbounds + 1 ranges, none for a table
 * read whole. Target rows with a NULL key are added to res.
 */
bool plan_ranges(VWorker *w, VTable *t, int index, char ***bounds, int *nbounds,
                 VResult *res, Error *err);

/*
 * Which of n ranges to check, in order: all, or a random fraction (at
 * least one). Malloc'd, *nchosen of them; NULL when out of memory.
 */
int *plan_choose_ranges(int n, double fraction, uint64_t seed, int *nchosen);

/* ---- validate_range.c ---- */

/*
 * Appends the predicate of [lo, hi) (NULL: unbounded) to sql; its
 * parameters, numbered from $first, go into params (*nparams of them:
 * views of lo and hi).
 */
bool range_pred(const VTable *t, char *const *lo, char *const *hi, int first,
                Buf *sql, const char **params, int *nparams, Error *err);

/* Count and hash sum of [lo, hi) on both sides, read again under CDC. */
bool range_agg(VWorker *w, const VTable *t, char *const *lo, char *const *hi,
               bool counts_only, VAgg *a, Error *err);

/* Both sides read the same count and hash sum. */
bool range_agg_equal(const VAgg *a);

/* Compares t whole (count and hash on both sides) and adds its row counts
 * to res; *equal when they match. */
bool range_whole(VWorker *w, const VTable *t, VResult *res, bool *equal,
                 Error *err);

/* Counts the whole table on both sides into res (VALIDATE_COUNTS). */
bool range_compare_counts(VWorker *w, const VTable *t, VResult *res,
                          Error *err);

/* ---- validate_keyed.c ---- */

/*
 * Compares [lo, hi) of a keyed table and adds the rows that differ to res
 * (and, for a `top` range, its row counts).
 */
bool keyed_compare(VWorker *w, const VTable *t, char *const *lo,
                   char *const *hi, int depth, bool top, VResult *res,
                   Error *err);

/* Adds the target's rows with a NULL key column to res, as extra. */
bool keyed_null_keys(VWorker *w, const VTable *t, VResult *res, Error *err);

/*
 * Compares a keyed table whose two sides may order its keys otherwise
 * (key_sensitive) whole, then by buckets of a hash of its key, which both
 * sides compute alike, and names the rows of the differing buckets by key:
 * key ranges would hold other rows on each side.
 */
bool keyed_bucket_compare(VWorker *w, const VTable *t, VResult *res,
                          Error *err);

/* ---- validate_keymap.c ---- */

/*
 * A row's first ncols values, or n values (NULL: SQL NULL), as one key
 * string; malloc'd, NULL when out of memory.
 */
char *keymap_encode_row(const PGresult *res, int row, int ncols);
char *keymap_encode_strv(char *const *v, int n);

/* An empty map for about n keys; false when out of memory (then free it). */
bool keymap_init(KeyMap *m, size_t n);
void keymap_free(KeyMap *m);

/* Adds key (the map owns it); a key already there keeps its value. At
 * most the n keys given to keymap_init. */
void keymap_put(KeyMap *m, char *key, int val);

/* The value of key, or -1. */
int keymap_get(const KeyMap *m, const char *key);

/* ---- validate_keyless.c ---- */

/* Compares a table without a key whole and adds its differing rows to res. */
bool keyless_compare(VWorker *w, const VTable *t, VResult *res, Error *err);

/*
 * The buckets where the two sides differ, level by level: by the row hash,
 * or with key_hash (an SQL expression of the row, named kh in the reads), by
 * it. On return *parents is the last level's differing buckets as a
 * bigint[] literal (malloc'd), to read at *level; NULL when none differ.
 */
bool bucket_drill(VWorker *w, const VTable *t, const char *key_hash, int *level,
                  char **parents, Error *err);

/* SQL: whether hash column col's bucket at level is in $1 (a bigint[]). */
void bucket_where(const char *col, int level, char *buf, size_t cap);

/* ---- validate_query.c ---- */

/*
 * Opens a session to r's source or target (side) under the settings that
 * render values alike; *out is the caller's, closed with pg_close.
 */
bool query_open(const VRun *r, ErrKind side, bool read_only, PgConn **out,
                Error *err);

/*
 * Sends sql (NULL: fails as out of memory, for callers whose building
 * failed) with text parameters, optionally in single-row mode.
 */
bool query_send(PgConn *c, const char *sql, int nparams,
                const char *const *params, bool single_row, Error *err);

/*
 * The next result of c's query (*out the caller's to PQclear; NULL once
 * the query is over); a stop request cancels the query. After a failure
 * the connection must be closed.
 */
bool query_next(const VRun *r, PgConn *c, PGresult **out, Error *err);

/* The one result of a query sent without single-row mode. */
bool query_result(const VRun *r, PgConn *c, PGresult **out, Error *err);

/* Moves s->row to the next row (NULL once the query is over). */
bool query_stream_next(VStream *s, Error *err);
void query_stream_close(VStream *s);

/*
 * Runs sql on c (NULL: fails as out of memory) and copies the first nk
 * columns of its rows, row-major, into *out (*n rows; the caller frees
 * with strv_free(*out, *n * nk)). On failure *out is NULL and *n 0.
 */
bool query_rows(const VRun *r, PgConn *c, const char *sql, int nparams,
                const char *const *params, int nk, char ***out, int *n,
                Error *err);


/* ---- validate_result.c ---- */

/* Frees what d owns; d is empty afterwards. */
void result_diff_free(VDiff *d, int nkeys);

/* Frees what res holds; res is empty afterwards. */
void result_free(VResult *res, int nkeys);

/*
 * Counts one difference of `copies` rows; *d moves into res while fewer
 * than VALIDATE_SHOWN are kept, else it is freed.
 */
void result_add(VResult *res, VDiff *d, int64_t copies, int nkeys);

/* Moves what src holds into dst; src is empty afterwards. */
void result_merge(VResult *dst, VResult *src, int nkeys);

/* Marks t as a table-level difference described by what (copied). */
bool result_set_problem(VTable *t, VStatus status, const char *what,
                        Error *err);

/* First-level ranges of t: none when it could not be compared. */
int result_ranges(const VTable *t);

/* "(a, b)=(1, x)"; malloc'd, NULL when out of memory. */
char *result_key_text(const VTable *t, const VDiff *d);

/* Totals over r's tables. */
void result_summarize(const VRun *r, ValidateSummary *s, int64_t *ranges,
                      int64_t *checked);

/* ---- validate_print.c ---- */

/* The run's report as one JSON object, or as text, on out. */
void print_json(const VRun *r, FILE *out);
void print_text(const VRun *r, FILE *out);

#endif
