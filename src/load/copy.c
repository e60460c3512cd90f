/*
 * copy: worker threads streaming COPY from source to target.
 *
 * Chunk transaction on the target (one per chunk):
 *
 *   BEGIN
 *   [TRUNCATE ONLY t]                 only with FREEZE: makes FREEZE legal
 *   COPY t [(cols)] FROM STDIN (FORMAT f [, FREEZE])
 *      <- rows from COPY (SELECT cols FROM ONLY s WHERE ctid range) TO STDOUT
 *   chunk_done hook                   the chunk's record, same transaction
 *   COMMIT
 *
 * Any failure before COMMIT rolls everything back; the worker reconnects,
 * re-imports the snapshot and redoes that one chunk. A failure during COMMIT
 * leaves the outcome unknown, so the retry first asks chunk_check.
 */
#include "load/copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/gate.h"
#include "base/log.h"
#include "base/pool.h"
#include "pg/stream.h"

typedef struct CopyShared
{
	CopyRun *run;
	atomic_int next; /* next chunk to hand out */
	Pool pool;       /* a worker failed: others stop after their chunk */
	atomic_bool snapshot_lost;
} CopyShared;

typedef struct Worker
{
	CopyShared *shared;
	int id;
	PgConn *src;
	PgConn *tgt;
	int lost_tgt_pid; /* the target session a failed attempt left behind */
} Worker;

static bool
stopping(const CopyShared *sh)
{
	return pool_stopping(&sh->pool);
}

static void
close_conns(Worker *w)
{
	pg_close(w->src);
	pg_close(w->tgt);
	w->src = NULL;
	w->tgt = NULL;
}

static bool
open_source(Worker *w, bool *lost, Error *err)
{
	const CopyRun *run = w->shared->run;
	bool ok;

	if (!pg_connect(run->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide copy",
	                10000, &w->src, err))
		return false;
	ok = stream_begin_snapshot(w->src, run->snapshot, err);
	if (!ok && run->snapshot != NULL && stream_snapshot_gone(err))
	{
		/* The exporting connection is gone: no retry can bring it back. */
		*lost = true;
		err->retryable = false;
	}
	return ok;
}

static bool
open_target(Worker *w, Error *err)
{
	const CopyRun *run = w->shared->run;

	if (!pg_connect(run->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide copy",
	                10000, &w->tgt, err))
		return false;
	/*
	 * replica: user triggers and FK checks stay silent during the load. The
	 * chunk record commits with the rows, so a target crash loses both
	 * together: synchronous_commit can be off.
	 */
	if (!pg_exec(w->tgt,
	             "SET session_replication_role = replica;"
	             " SET synchronous_commit = off",
	             err))
	{
		if (pg_err_is(err, "42501"))
			err_hint(err, "the target role must be a superuser, or be granted "
			              "SET on session_replication_role (PostgreSQL 15+)");
		return false;
	}
	return true;
}

/* Reads the source's final COPY result; *rows gets its row count. */
static bool
finish_source(PgConn *src, int64_t *rows, Error *err)
{
	PGresult *res = PQgetResult(pg_raw(src));
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		pg_error(src, res, err);
	else
		*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	while ((res = PQgetResult(pg_raw(src))) != NULL)
		PQclear(res);
	return ok;
}

static bool
finish_target(PgConn *tgt, const char *abort_msg, Error *err)
{
	PGresult *res;
	bool ok;

	if (PQputCopyEnd(pg_raw(tgt), abort_msg) != 1)
		return pg_error(tgt, NULL, err);
	res = PQgetResult(pg_raw(tgt));
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok && abort_msg == NULL)
		pg_error(tgt, res, err);
	PQclear(res);
	while ((res = PQgetResult(pg_raw(tgt))) != NULL)
		PQclear(res);
	return ok;
}

/*
 * The column list for COPY: "()" is a syntax error, so a table with nothing
 * to copy (no columns, or only generated or dropped ones) goes without one.
 * COPY then moves every column that is neither generated nor dropped, none
 * here, and still one row for each row: its row count is its content, and
 * the target computes its generated values.
 */
static const char *
copy_columns(const CopyTable *t)
{
	return strcmp(t->columns, "()") == 0 ? "" : t->columns;
}

static char *
source_copy_sql(const CopyTable *t, const PlanChunk *c)
{
	const char *fmt = t->binary ? "binary" : "text";
	const char *cols = copy_columns(t);
	char *sql = NULL;
	int n;

	if (c->start_block < 0 && c->end_block < 0 && t->filter == NULL &&
	    t->where == NULL)
		n = asprintf(&sql, "COPY %s %s TO STDOUT (FORMAT %s)", t->src_qname,
		             cols, fmt);
	else
	{
		char lo[64] = "", hi[64] = "";

		/* TID range scans (14+) read only these blocks. */
		if (c->start_block >= 0)
			snprintf(lo, sizeof(lo), " AND ctid >= '(%lld,0)'::tid",
			         (long long) c->start_block);
		if (c->end_block >= 0)
			snprintf(hi, sizeof(hi), " AND ctid < '(%lld,0)'::tid",
			         (long long) c->end_block);
		/* columns is "(a, b)": strip the parentheses for the select list
		 * ("SELECT FROM" selects rows of no columns) */
		/* the filter last, on a line of its own: a comment that ends it
		   cannot swallow the parenthesis */
		n = asprintf(
		    &sql,
		    "COPY (SELECT %.*s FROM ONLY %s WHERE true%s%s%s%s%s%s%s%s)"
		    " TO STDOUT (FORMAT %s)",
		    (int) strlen(t->columns) - 2, t->columns + 1, t->src_qname, lo, hi,
		    t->where != NULL ? " AND (" : "", t->where != NULL ? t->where : "",
		    t->where != NULL ? ")" : "", t->filter ? " AND (" : "",
		    t->filter ? t->filter : "", t->filter ? "\n)" : "", fmt);
	}
	return n < 0 ? NULL : sql;
}

typedef bool (*StoppingFn)(const void *ctx);

/* Messages and bytes a worker copies between two visits to the gate: few
 * enough for a cap of a hundred rows a second, many enough that the gate's
 * lock costs nothing. */
#define GATE_BATCH_MSGS  128
#define GATE_BATCH_BYTES (128 * 1024)

/*
 * Streams one chunk's rows from src (inside its snapshot's transaction) into
 * tgt, inside the caller's open transaction.
 */
static bool
pipe_rows(PgConn *src, PgConn *tgt, CopyTable *t, const PlanChunk *c,
          Gate *gate, const atomic_int *stop, StoppingFn stopping_fn,
          const void *ctx, int64_t *rows, int64_t *bytes, Error *err)
{
	PGconn *in = pg_raw(src);
	PGconn *out = pg_raw(tgt);
	char *src_sql = source_copy_sql(t, c);
	char *tgt_sql = NULL;
	PGresult *res;
	int64_t msgs = 0;
	int64_t gate_msgs = 0, gate_bytes = 0; /* not yet passed through gate */
	bool ok = false;

	*rows = *bytes = 0;
	if (src_sql == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (asprintf(&tgt_sql, "COPY %s %s FROM STDIN (FORMAT %s%s)", t->tgt_qname,
	             t->tgt_columns != NULL && strcmp(t->tgt_columns, "()") != 0
	                 ? t->tgt_columns
	                 : copy_columns(t),
	             t->binary ? "binary" : "text",
	             t->freeze ? ", FREEZE" : "") < 0)
	{
		tgt_sql = NULL;
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	res = PQexec(out, tgt_sql);
	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		pg_error(tgt, res, err);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	res = PQexec(in, src_sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		pg_error(src, res, err);
		PQclear(res);
		finish_target(tgt, "source failed", err);
		goto out;
	}
	PQclear(res);
	for (;;)
	{
		char *buf = NULL;
		int len = PQgetCopyData(in, &buf, 0);

		if (len == -1)
			break;
		if (len < 0)
		{
			pg_error(src, NULL, err);
			finish_target(tgt, "source failed", err);
			goto out;
		}
		if (PQputCopyData(out, buf, len) != 1)
		{
			PQfreemem(buf);
			pg_error(tgt, NULL, err);
			goto out;
		}
		PQfreemem(buf);
		*bytes += len;
		atomic_fetch_add(&t->bytes_done, len);
		atomic_fetch_add(&t->rows_done, 1);
		msgs++;
		gate_msgs++;
		gate_bytes += len;
		if (gate != NULL &&
		    (gate_msgs >= GATE_BATCH_MSGS || gate_bytes >= GATE_BATCH_BYTES))
		{
			gate_pass(gate, gate_msgs, gate_bytes, stop);
			gate_msgs = gate_bytes = 0;
		}
		fault_point("copy.row");
		if ((msgs & 255) == 0 && stopping_fn(ctx))
		{
			finish_target(tgt, "pgtide is stopping", err);
			err_set(err, ERR_INTERRUPTED, "interrupted");
			goto out;
		}
	}
	if (!finish_source(src, rows, err))
	{
		finish_target(tgt, "source failed", err);
		goto out;
	}
	/* messages counted as rows include the binary trailer; settle to exact */
	atomic_fetch_add(&t->rows_done, *rows - msgs);
	if (!finish_target(tgt, NULL, err))
		goto out;
	ok = true;
out:
	if (!ok)
	{
		atomic_fetch_sub(&t->bytes_done, *bytes);
		atomic_fetch_sub(&t->rows_done, msgs);
	}
	free(src_sql);
	free(tgt_sql);
	return ok;
}

static bool
worker_stopping(const void *ctx)
{
	return stopping(ctx);
}

/* Streams one chunk. Leaves tgt inside its transaction on success. */
static bool
stream_chunk(Worker *w, CopyTable *t, const PlanChunk *c, int64_t *rows,
             int64_t *bytes, Error *err)
{
	*rows = *bytes = 0;
	if (!pg_exec(w->tgt, "BEGIN", err))
		return false;
	if (t->freeze && !pg_execf(w->tgt, err, "TRUNCATE ONLY %s", t->tgt_qname))
		return false;
	return pipe_rows(w->src, w->tgt, t, c, w->shared->run->gate,
	                 w->shared->run->stop, worker_stopping, w->shared, rows,
	                 bytes, err);
}

static bool
stop_set(const void *ctx)
{
	const atomic_int *stop = ctx;

	return stop != NULL && atomic_load(stop);
}

bool
copy_table_within(PgConn *src, PgConn *tgt, CopyTable *t, atomic_int *stop,
                  int64_t *rows, Error *err)
{
	PlanChunk whole = {
	    .chunk = 0, .nchunks = 1, .start_block = -1, .end_block = -1};
	int64_t bytes;

	return pipe_rows(src, tgt, t, &whole, NULL, stop, stop_set, stop, rows,
	                 &bytes, err);
}

static bool
copy_chunk(Worker *w, const PlanChunk *c, Error *err)
{
	CopyRun *run = w->shared->run;
	CopyTable *t = &run->tables[c->table];
	int64_t rows, bytes;

	if (!stream_chunk(w, t, c, &rows, &bytes, err))
		return false;
	if (!run->chunk_done(w->tgt, c, rows, bytes, run->ctx, err))
		return false;
	fault_point("copy.chunk.before_commit");
	if (!pg_exec(w->tgt, "COMMIT", err))
		return false;
	atomic_fetch_sub(&t->chunks_left, 1);
	fault_point("copy.chunk.after_commit");
	log_debug("%s chunk %d/%d: %lld rows, %lld bytes", t->src_qname,
	          c->chunk + 1, c->nchunks, (long long) rows, (long long) bytes);
	return true;
}

static void
fail(Worker *w, Error *err, bool lost)
{
	CopyShared *sh = w->shared;

	if (lost)
		atomic_store(&sh->snapshot_lost, true);
	pool_fail(&sh->pool, err);
}

static void *
worker_main(void *arg)
{
	Worker *w = arg;
	CopyShared *sh = w->shared;
	CopyRun *run = sh->run;
	char role[16];

	snprintf(role, sizeof(role), "copy-%d", w->id);
	log_set_role(role);
	/* a place at the gate first, then a chunk: a worker the gate holds back
	   must not sit on a chunk another worker could copy */
	while (!stopping(sh) &&
	       (run->gate == NULL || gate_enter(run->gate, run->stop)))
	{
		int idx = atomic_fetch_add(&sh->next, 1);
		const PlanChunk *c;
		int attempt = 0;
		int backoff_ms = 500;

		if (idx >= run->nchunks || stopping(sh))
		{
			if (run->gate != NULL)
				gate_leave(run->gate);
			break;
		}
		c = &run->chunks[idx];
		for (;;)
		{
			Error err = ERR_INIT;
			bool lost = false;
			bool done = false;

			if ((w->src != NULL || open_source(w, &lost, &err)) &&
			    (w->tgt != NULL || open_target(w, &err)) &&
			    (attempt == 0 ||
			     (pg_end_lost_session(w->tgt, w->lost_tgt_pid, &err) &&
			      run->chunk_check(w->tgt, c, &done, run->ctx, &err))) &&
			    (done || copy_chunk(w, c, &err)))
				break;
			if (w->tgt != NULL)
				w->lost_tgt_pid = pg_backend_pid(w->tgt);
			close_conns(w);
			if (stopping(sh) && !err_is_set(&err))
				break;
			if (run->stop != NULL && *run->stop)
			{
				err_clear(&err);
				err_set(&err, ERR_INTERRUPTED, "interrupted");
			}
			if (!err.retryable || attempt >= run->max_retries ||
			    err.kind == ERR_INTERRUPTED)
			{
				err_prefix(&err, "table %s, chunk %d of %d: ",
				           run->tables[c->table].src_qname, c->chunk + 1,
				           c->nchunks);
				fail(w, &err, lost);
				break;
			}
			attempt++;
			log_warn("table %s, chunk %d of %d: %s; retrying in %d ms "
			         "(attempt %d of %d)",
			         run->tables[c->table].src_qname, c->chunk + 1, c->nchunks,
			         err.message, backoff_ms, attempt, run->max_retries);
			clock_sleep_ms(backoff_ms);
			backoff_ms = backoff_ms * 2 > 8000 ? 8000 : backoff_ms * 2;
		}
		if (run->gate != NULL)
			gate_leave(run->gate);
	}
	close_conns(w);
	return NULL;
}

bool
copy_run(CopyRun *run, bool *snapshot_lost, Error *err)
{
	CopyShared sh;
	Worker *workers;
	int n = run->workers < 1 ? 1 : run->workers;
	bool ok;

	*snapshot_lost = false;
	if (run->nchunks == 0)
		return true;
	if (n > run->nchunks)
		n = run->nchunks;
	memset(&sh, 0, sizeof(sh));
	sh.run = run;
	atomic_init(&sh.next, 0);
	atomic_init(&sh.snapshot_lost, false);
	workers = calloc((size_t) n, sizeof(Worker));
	if (workers == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
	{
		workers[i].shared = &sh;
		workers[i].id = i + 1;
	}
	ok = pool_start(&sh.pool, n, worker_main, workers, sizeof(Worker),
	                run->stop, "copy worker", err) &&
	     pool_join(&sh.pool, err);
	free(workers);
	*snapshot_lost = atomic_load(&sh.snapshot_lost);
	return ok;
}

/* "(a, b)" by the columns' source names, or their target names. */
static char *
column_list(const CatTable *t, bool target)
{
	size_t cap = 3, len = 0;
	char *out;

	for (int c = 0; c < t->ncols; c++)
		cap += strlen(target ? catalog_tgt_col(&t->cols[c]) : t->cols[c].name) *
		           2 +
		       4;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	out[len++] = '(';
	for (int c = 0; c < t->ncols; c++)
	{
		char *q = pg_quote_ident(target ? catalog_tgt_col(&t->cols[c])
		                                : t->cols[c].name);

		if (q == NULL)
		{
			free(out);
			return NULL;
		}
		len +=
		    (size_t) snprintf(out + len, cap - len, "%s%s", c ? ", " : "", q);
		free(q);
	}
	snprintf(out + len, cap - len, ")");
	return out;
}

char *
copy_column_list(const CatTable *t)
{
	return column_list(t, false);
}

char *
copy_target_column_list(const CatTable *t)
{
	return column_list(t, true);
}

bool
copy_use_binary(const TaskConfig *cfg, const CatTable *t)
{
	switch (cfg->copy_format)
	{
		case COPY_FORMAT_TEXT:
			return false;
		case COPY_FORMAT_BINARY:
			/* not where binary would move an OID or refuse a value */
			return catalog_binary_carries(t);
		case COPY_FORMAT_AUTO:
			/* A target table of the user's may have other column types. */
			return cfg->schema_mode == SCHEMA_MODE_CREATE &&
			       catalog_binary_safe(t);
	}
	return false;
}
