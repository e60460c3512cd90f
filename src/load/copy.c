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
 *
 * With several targets a worker holds a session on each, and a chunk is
 * that transaction on every target whose load of the table is unfinished:
 * the source's rows are read once and each row is sent, unchanged, to the
 * COPY of the target its key names (copyrow reads the key). Each target
 * commits its share with its own record; a retry asks every target and
 * redoes the chunk for those that lack it, dropping the rows of the others.
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
#include "load/copyrow.h"
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
	PgConn *tgt[COPY_TARGETS_MAX]; /* one per target */
	/* the target sessions a failed attempt left behind */
	int lost_tgt_pid[COPY_TARGETS_MAX];
} Worker;

static bool
stopping(const CopyShared *sh)
{
	return pool_stopping(&sh->pool);
}

static int
ntargets(const CopyRun *run)
{
	return run->ntargets > 1 ? run->ntargets : 1;
}

static void
close_conns(Worker *w)
{
	pg_close(w->src);
	w->src = NULL;
	for (int i = 0; i < ntargets(w->shared->run); i++)
	{
		if (w->tgt[i] != NULL)
			w->lost_tgt_pid[i] = pg_backend_pid(w->tgt[i]);
		pg_close(w->tgt[i]);
		w->tgt[i] = NULL;
	}
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
open_target(Worker *w, int i, Error *err)
{
	const CopyRun *run = w->shared->run;

	if (!pg_connect(run->ntargets > 1 ? run->target_uris[i] : run->target_uri,
	                ERR_TARGET, PG_CONN_SQL, "pgtide copy", 10000, &w->tgt[i],
	                err))
		return false;
	/*
	 * replica: user triggers and FK checks stay silent during the load. The
	 * chunk record commits with the rows, so a target crash loses both
	 * together: synchronous_commit can be off.
	 */
	if (!pg_exec(w->tgt[i],
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

	if (c->start_block < 0 && c->end_block < 0 && t->filter == NULL)
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
		n = asprintf(&sql,
		             "COPY (SELECT %.*s FROM ONLY %s WHERE true%s%s%s%s%s)"
		             " TO STDOUT (FORMAT %s)",
		             (int) strlen(t->columns) - 2, t->columns + 1, t->src_qname,
		             lo, hi, t->filter ? " AND (" : "",
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

/* What a chunk's copy passes between messages: the gate, the stop. */
typedef struct Pace
{
	Gate *gate;
	const atomic_int *stop;
	StoppingFn stopping;
	const void *ctx;
	int64_t msgs;
	int64_t gate_msgs, gate_bytes; /* not yet passed through the gate */
} Pace;

/* After each message of len bytes; false (interrupted) when stopping. */
static bool
pace_step(Pace *p, int len, Error *err)
{
	p->msgs++;
	p->gate_msgs++;
	p->gate_bytes += len;
	if (p->gate != NULL &&
	    (p->gate_msgs >= GATE_BATCH_MSGS || p->gate_bytes >= GATE_BATCH_BYTES))
	{
		gate_pass(p->gate, p->gate_msgs, p->gate_bytes, p->stop);
		p->gate_msgs = p->gate_bytes = 0;
	}
	fault_point("copy.row");
	if ((p->msgs & 255) == 0 && p->stopping(p->ctx))
		return !err_set(err, ERR_INTERRUPTED, "interrupted");
	return true;
}

/* Runs sql (malloc'd, freed here; NULL: out of memory) on conn, which
 * must answer with want: COPY IN on a target, COPY OUT on the source. */
static bool
start_copy(PgConn *conn, char *sql, ExecStatusType want, Error *err)
{
	PGresult *res;
	bool ok;

	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	res = PQexec(pg_raw(conn), sql);
	free(sql);
	ok = PQresultStatus(res) == want;
	if (!ok)
		pg_error(conn, res, err);
	PQclear(res);
	return ok;
}

/* Opens COPY FROM STDIN of t on tgt. */
static bool
start_target_copy(PgConn *tgt, const CopyTable *t, Error *err)
{
	char *sql = NULL;

	if (asprintf(&sql, "COPY %s %s FROM STDIN (FORMAT %s%s)", t->tgt_qname,
	             t->tgt_columns != NULL && strcmp(t->tgt_columns, "()") != 0
	                 ? t->tgt_columns
	                 : copy_columns(t),
	             t->binary ? "binary" : "text",
	             t->freeze ? ", FREEZE" : "") < 0)
		sql = NULL;
	return start_copy(tgt, sql, PGRES_COPY_IN, err);
}

/* Opens COPY TO STDOUT of chunk c of t on src. */
static bool
start_source_copy(PgConn *src, const CopyTable *t, const PlanChunk *c,
                  Error *err)
{
	return start_copy(src, source_copy_sql(t, c), PGRES_COPY_OUT, err);
}

/*
 * Streams one chunk's rows from src (inside its snapshot's transaction) into
 * tgt, inside the caller's open transaction.
 */
static bool
pipe_rows(PgConn *src, PgConn *tgt, CopyTable *t, const PlanChunk *c,
          Pace *pace, int64_t *rows, int64_t *bytes, Error *err)
{
	PGconn *in = pg_raw(src);
	PGconn *out = pg_raw(tgt);
	bool ok = false;

	*rows = *bytes = 0;
	if (!start_target_copy(tgt, t, err))
		goto out;
	if (!start_source_copy(src, t, c, err))
	{
		finish_target(tgt, "source failed", err);
		goto out;
	}
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
		if (!pace_step(pace, len, err))
		{
			Error ignored = ERR_INIT;

			finish_target(tgt, "pgtide is stopping", &ignored);
			goto out;
		}
	}
	if (!finish_source(src, rows, err))
	{
		finish_target(tgt, "source failed", err);
		goto out;
	}
	/* messages counted as rows include the binary trailer; settle to exact */
	atomic_fetch_add(&t->rows_done, *rows - pace->msgs);
	if (!finish_target(tgt, NULL, err))
		goto out;
	ok = true;
out:
	if (!ok)
	{
		atomic_fetch_sub(&t->bytes_done, *bytes);
		atomic_fetch_sub(&t->rows_done, pace->msgs);
	}
	return ok;
}

/* One chunk's rows and bytes on each target it goes to. */
typedef struct Routed
{
	uint64_t need; /* the targets taking this chunk (bit i: target i) */
	int64_t rows[COPY_TARGETS_MAX];
	int64_t bytes[COPY_TARGETS_MAX];
} Routed;

static bool
takes(const Routed *r, int i)
{
	return (r->need >> i & 1) != 0;
}

/* Sends buf[0..len) to target i (-1: to every target taking the chunk). */
static bool
send_to(Worker *w, Routed *r, int i, const char *buf, int len, bool row,
        Error *err)
{
	for (int k = 0; k < ntargets(w->shared->run); k++)
	{
		if ((i >= 0 && k != i) || !takes(r, k))
			continue;
		if (PQputCopyData(pg_raw(w->tgt[k]), buf, len) != 1)
			return pg_error(w->tgt[k], NULL, err);
		if (row)
		{
			r->rows[k]++;
			r->bytes[k] += len;
		}
	}
	return true;
}

/* The target of one row of t: -1 for every target taking the chunk. */
static bool
row_target(const CopyRun *run, const CopyTable *t, const char *row, int len,
           int *target, Error *err)
{
	char key[COPYROW_KEY_MAX];
	size_t klen;
	bool null;

	if (t->key_col < 0)
	{
		*target = t->whole_target;
		return true;
	}
	if (!copyrow_key(row, (size_t) len, t->binary, t->key_col, t->key_type, key,
	                 sizeof(key), &klen, &null))
		return err_set(err, ERR_SOURCE,
		               "a row's routing key could not be read from the "
		               "source's COPY (longer than %d bytes, or the row is "
		               "cut short)",
		               COPYROW_KEY_MAX);
	return run->route(t, null ? NULL : key, klen, target, run->ctx, err);
}

/*
 * Reads chunk c of t from the source once and sends each row to the target
 * its key names, among those taking the chunk (the others' rows are
 * dropped: their share is already there). A binary COPY's header and
 * trailer go to every target taking it.
 */
static bool
route_rows(Worker *w, CopyTable *t, const PlanChunk *c, Routed *r, Pace *pace,
           Error *err)
{
	const CopyRun *run = w->shared->run;
	PGconn *in = pg_raw(w->src);
	int64_t rows = 0, bytes = 0, src_rows;
	bool first = true, ok = false;

	for (int k = 0; k < ntargets(run); k++)
		if (takes(r, k) &&
		    !start_target_copy(w->tgt[k], &run->target_tables[k][c->table],
		                       err))
			return false;
	if (!start_source_copy(w->src, t, c, err))
		return false;
	for (;;)
	{
		char *buf = NULL;
		int len = PQgetCopyData(in, &buf, 0), at = 0, target;
		bool sent;

		if (len == -1)
			break;
		if (len < 0)
		{
			pg_error(w->src, NULL, err);
			goto out;
		}
		if (t->binary && first)
		{
			long h = copyrow_binary_header(buf, (size_t) len);

			at = (int) h;
			if (h < 0 || !send_to(w, r, -1, buf, at, false, err))
			{
				PQfreemem(buf);
				if (h < 0)
					err_set(err, ERR_SOURCE,
					        "table %s: the source's binary COPY did not "
					        "begin with its header",
					        t->src_qname);
				goto out;
			}
		}
		first = false;
		if (len == at)
			sent = true;
		else if (t->binary && copyrow_binary_trailer(buf + at, len - at))
			sent = send_to(w, r, -1, buf + at, len - at, false, err);
		else
		{
			sent = row_target(run, t, buf + at, len - at, &target, err) &&
			       send_to(w, r, target, buf + at, len - at, true, err);
			rows++;
		}
		PQfreemem(buf);
		if (!sent)
			goto out;
		bytes += len;
		atomic_fetch_add(&t->bytes_done, len);
		atomic_fetch_add(&t->rows_done, 1);
		if (!pace_step(pace, len, err))
			goto out;
	}
	if (!finish_source(w->src, &src_rows, err))
		goto out;
	atomic_fetch_add(&t->rows_done, rows - pace->msgs);
	for (int k = 0; k < ntargets(run); k++)
		if (takes(r, k) && !finish_target(w->tgt[k], NULL, err))
			goto out;
	ok = true;
out:
	if (!ok)
	{
		atomic_fetch_sub(&t->bytes_done, bytes);
		atomic_fetch_sub(&t->rows_done, pace->msgs);
	}
	return ok;
}

static bool
worker_stopping(const void *ctx)
{
	return stopping(ctx);
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
	Pace pace = {.stop = stop, .stopping = stop_set, .ctx = stop};
	int64_t bytes;

	return pipe_rows(src, tgt, t, &whole, &pace, rows, &bytes, err);
}

/*
 * Copies chunk c into every target of need, each in one transaction with
 * its record, and commits them.
 */
static bool
copy_chunk(Worker *w, const PlanChunk *c, uint64_t need, Error *err)
{
	CopyRun *run = w->shared->run;
	CopyTable *t = &run->tables[c->table];
	Pace pace = {.gate = run->gate,
	             .stop = run->stop,
	             .stopping = worker_stopping,
	             .ctx = w->shared};
	Routed r;
	int n = ntargets(run);

	memset(&r, 0, sizeof(r));
	r.need = need;
	for (int k = 0; k < n; k++)
	{
		const CopyTable *tt =
		    run->ntargets > 1 ? &run->target_tables[k][c->table] : t;

		if (takes(&r, k) &&
		    (!pg_exec(w->tgt[k], "BEGIN", err) ||
		     (tt->freeze &&
		      !pg_execf(w->tgt[k], err, "TRUNCATE ONLY %s", tt->tgt_qname))))
			return false;
	}
	if (!(run->ntargets > 1 ? route_rows(w, t, c, &r, &pace, err)
	                        : pipe_rows(w->src, w->tgt[0], t, c, &pace,
	                                    &r.rows[0], &r.bytes[0], err)))
		return false;
	for (int k = 0; k < n; k++)
		if (takes(&r, k) && !run->chunk_done(w->tgt[k], k, c, r.rows[k],
		                                     r.bytes[k], run->ctx, err))
			return false;
	fault_point("copy.chunk.before_commit");
	for (int k = 0; k < n; k++)
	{
		if (!takes(&r, k))
			continue;
		if (!pg_exec(w->tgt[k], "COMMIT", err))
			return false;
		/* with several targets: on some, not yet on others */
		if (n > 1)
			fault_point("copy.chunk.target_committed");
	}
	atomic_fetch_sub(&t->chunks_left, 1);
	fault_point("copy.chunk.after_commit");
	log_debug("%s chunk %d/%d: %lld rows, %lld bytes", t->src_qname,
	          c->chunk + 1, c->nchunks, (long long) r.rows[0],
	          (long long) r.bytes[0]);
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

/*
 * One attempt at chunk c: the sessions it needs, and after a failed attempt
 * the targets that already committed it left out.
 */
static bool
attempt_chunk(Worker *w, const PlanChunk *c, int attempt, bool *lost,
              Error *err)
{
	CopyRun *run = w->shared->run;
	uint64_t need = run->ntargets > 1 ? run->tables[c->table].wanted : 1;

	if (w->src == NULL && !open_source(w, lost, err))
		return false;
	for (int k = 0; k < ntargets(run); k++)
	{
		bool done = false;

		if (!(need >> k & 1))
			continue;
		if (w->tgt[k] == NULL && !open_target(w, k, err))
			return false;
		if (attempt > 0 &&
		    (!pg_end_lost_session(w->tgt[k], w->lost_tgt_pid[k], err) ||
		     !run->chunk_check(w->tgt[k], k, c, &done, run->ctx, err)))
			return false;
		if (done)
			need &= ~(UINT64_C(1) << k);
	}
	return need == 0 || copy_chunk(w, c, need, err);
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

			if (attempt_chunk(w, c, attempt, &lost, &err))
				break;
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
	if (run->ntargets > COPY_TARGETS_MAX)
		return err_set(err, ERR_CONFIG,
		               "%d targets: one load sends rows to at most %d",
		               run->ntargets, COPY_TARGETS_MAX);
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
