/*
 * apply_batch: the pipeline and the batch on the target connection.
 *
 * It owns the prepared statement cache, the ring of statements waiting for
 * their results (at most APPLY_INFLIGHT_MAX), reading those results and the
 * conflicts they reveal (note_conflict: the stop policy's error, else a count
 * and a rate-limited log line), and the batch: BEGIN, the commit with the
 * origin advance in the same target transaction, the abort, and the origin's
 * flushed position.
 *
 * It must never build a change's SQL: apply_stmt.c hands it the text in
 * the sql buffer and the values in params.
 *
 * A batch on the wire (libpq pipeline mode, one connection):
 *
 *   BEGIN
 *   [Parse pN]  EXECUTE pN (...)      one per row change; Parse only the
 *   ...                               first time a statement shape is seen
 *   -- flush, read every result       only under the stop policy when the
 *                                     batch updates or deletes: a missing
 *                                     row must stop the batch before COMMIT
 *   SELECT pg_replication_origin_xact_setup(end_lsn, commit_time)
 *   COMMIT
 *   Sync                              read everything up to the Sync
 *
 * At most APPLY_INFLIGHT_MAX statements wait for their results; beyond that
 * the oldest half is read first, so neither side's socket buffer can fill
 * while the other waits.
 *
 * Statements are prepared per shape: the SQL text (table, columns set,
 * columns matched) is the cache key, so a Relation message that adds a column
 * simply yields new statements.
 */
#include "cdc/apply.h"
#include "cdc/apply_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/hash.h"
#include "base/log.h"
#include "pg/pg.h"

#define APPLY_LOG_EVERY_MS 10000

/* ---- prepared statement cache ---- */

static StmtEntry *
stmt_slot(StmtEntry *tab, int cap, const char *sql)
{
	size_t i = (size_t) (hash_string(sql) & (uint64_t) (cap - 1));

	while (tab[i].sql != NULL && strcmp(tab[i].sql, sql) != 0)
		i = (i + 1) & (size_t) (cap - 1);
	return &tab[i];
}

static bool
stmt_grow(Applier *a)
{
	int cap = a->stmts_cap ? a->stmts_cap * 2 : 256;
	StmtEntry *tab = calloc((size_t) cap, sizeof(StmtEntry));

	if (tab == NULL)
		return false;
	for (int i = 0; i < a->stmts_cap; i++)
		if (a->stmts[i].sql != NULL)
			*stmt_slot(tab, cap, a->stmts[i].sql) = a->stmts[i];
	free(a->stmts);
	a->stmts = tab;
	a->stmts_cap = cap;
	return true;
}

void
apply_stmt_free_all(Applier *a)
{
	for (int i = 0; i < a->stmts_cap; i++)
		free(a->stmts[i].sql);
	free(a->stmts);
	a->stmts = NULL;
	a->stmts_cap = a->nstmts = 0;
}

/* ---- the pipeline ---- */

static bool
pend_push(Applier *a, PendKind kind, Rel *rel, char *key, int nrows)
{
	Pending *p;

	p = &a->pend[(a->pend_head + a->pend_count) % APPLY_INFLIGHT_MAX];
	p->kind = kind;
	p->rel = rel;
	p->xid = a->xid;
	p->final_lsn = a->final_lsn;
	p->key = key;
	p->nrows = nrows;
	a->pend_count++;
	return true;
}

static void
note_conflict(Applier *a, Pending *p, ApplyConflict kind, int64_t count)
{
	const char *what =
	    kind == APPLY_CONFLICT_INSERT_EXISTS    ? "the row already exists"
	    : kind == APPLY_CONFLICT_UPDATE_MISSING ? "no row to update"
	                                            : "no row to delete";

	atomic_fetch_add(&a->conflicts, count);
	atomic_fetch_add(&a->conflicts_by[kind], count);
	p->rel->conflicts += count;
	if (a->policy == ON_CONFLICT_STOP)
	{
		err_set(&a->conflict, ERR_TARGET,
		        "conflict on table %s: %s (row %s) in source transaction %u "
		        "committed at " LSN_FMT,
		        p->rel->src_qname, what, p->key ? p->key : "?", p->xid,
		        LSN_ARGS(p->final_lsn));
		err_hint(&a->conflict,
		         "the target's row differs from the source's; fix the row, or "
		         "set cdc.on_conflict to skip or upsert in the task file");
		return;
	}
	if (log_every(&p->rel->last_log_ms, APPLY_LOG_EVERY_MS))
		log_warn("table %s: %lld conflicts so far (%s; policy %s)",
		         p->rel->src_qname, (long long) p->rel->conflicts, what,
		         config_on_conflict_name(a->policy));
}

static const char *
pend_kind_verb(PendKind kind)
{
	switch (kind)
	{
		case APPLY_PEND_INSERT:
		case APPLY_PEND_UPSERT:
			return "INSERT";
		case APPLY_PEND_UPDATE:
			return "UPDATE";
		case APPLY_PEND_DELETE:
			return "DELETE";
		case APPLY_PEND_PLAIN:
		case APPLY_PEND_RESULT:
			break;
	}
	return "";
}

/* True when a command tag ("UPDATE 1") is what the pending statement sent. */
static bool
result_matches(const Pending *p, const char *tag)
{
	const char *verb = pend_kind_verb(p->kind);
	size_t n = strlen(verb);

	return strncmp(tag, verb, n) == 0 && (tag[n] == ' ' || tag[n] == '\0');
}

/*
 * Reads the result of the oldest pending statement. A server error becomes
 * the batch's error (the pipeline is aborted after it); later statements
 * report PGRES_PIPELINE_ABORTED and are only consumed.
 */
static bool
read_one(Applier *a, Error *err)
{
	PGconn *c = pg_raw(a->conn);
	Pending *p = &a->pend[a->pend_head];
	PGresult *res = PQgetResult(c);
	ExecStatusType st = PQresultStatus(res);
	bool ok = true;

	if (res == NULL)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	if (st == PGRES_FATAL_ERROR)
	{
		/* the first failure in source order is the one to report: an
		 * earlier error, else a conflict met earlier, else this one */
		if (!err_is_set(err) && err_is_set(&a->conflict))
			*err = a->conflict;
		else if (!err_is_set(err))
		{
			pg_error(a->conn, res, err);
			if (p->rel != NULL)
				err_prefix(err,
				           "could not apply a change to table %s (source "
				           "transaction %u committed at " LSN_FMT "): ",
				           p->rel->src_qname, p->xid, LSN_ARGS(p->final_lsn));
		}
		ok = false;
	}
	else if (st == PGRES_TUPLES_OK && p->kind == APPLY_PEND_RESULT)
	{
		PQclear(a->kept);
		a->kept = res;
		res = NULL;
	}
	else if (st == PGRES_TUPLES_OK && p->kind != APPLY_PEND_PLAIN)
	{
		/* upsert RETURNING (xmax = 0): true where the row was inserted */
		int64_t inserted = 0;

		for (int i = 0; i < PQntuples(res); i++)
			inserted += PQgetvalue(res, i, 0)[0] == 't';
		if (p->kind == APPLY_PEND_INSERT && inserted < PQntuples(res))
			note_conflict(a, p, APPLY_CONFLICT_INSERT_EXISTS,
			              PQntuples(res) - inserted);
		else if (p->kind == APPLY_PEND_UPSERT && inserted > 0)
			note_conflict(a, p, APPLY_CONFLICT_UPDATE_MISSING, inserted);
	}
	else if (st == PGRES_COMMAND_OK && p->kind != APPLY_PEND_PLAIN &&
	         p->kind != APPLY_PEND_RESULT &&
	         !result_matches(p, PQcmdStatus(res)))
	{
		/* Never read one statement's result as another's: a Prepare's
		 * empty tag would pass for "no row to update". The batch is
		 * rolled back and redone on a new connection. */
		if (!err_is_set(err))
		{
			err_set(err, ERR_INTERNAL,
			        "pipeline results out of step: expected the result of "
			        "%s on table %s, got \"%s\"",
			        pend_kind_verb(p->kind), p->rel->src_qname,
			        PQcmdStatus(res));
			err->retryable = true;
		}
		ok = false;
	}
	else if (st == PGRES_COMMAND_OK && p->kind != APPLY_PEND_PLAIN &&
	         p->kind != APPLY_PEND_RESULT)
	{
		int64_t done = strtoll(PQcmdTuples(res), NULL, 10);
		int64_t want = p->kind == APPLY_PEND_INSERT ? p->nrows : 1;

		/* a filtered table's DELETE finds no row where the row was outside
		   the filter: the expected case, not a conflict (decision 0029) */
		if (done < want &&
		    !(p->kind == APPLY_PEND_DELETE && p->rel->table != NULL &&
		      (p->rel->table->filter != NULL ||
		       p->rel->table->route_key != NULL)))
			note_conflict(
			    a, p,
			    p->kind == APPLY_PEND_INSERT   ? APPLY_CONFLICT_INSERT_EXISTS
			    : p->kind == APPLY_PEND_UPDATE ? APPLY_CONFLICT_UPDATE_MISSING
			                                   : APPLY_CONFLICT_DELETE_MISSING,
			    want - done);
	}
	PQclear(res);
	/* each statement's results end with a NULL */
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	free(p->key);
	p->key = NULL;
	a->pend_head = (a->pend_head + 1) % APPLY_INFLIGHT_MAX;
	a->pend_count--;
	return ok;
}

/* Reads n pending results (all with n < 0); the first error wins. */
static bool
read_pending(Applier *a, int n, Error *err)
{
	bool ok = true;

	if (n < 0 || n > a->pend_count)
		n = a->pend_count;
	if (n > 0 && (PQsendFlushRequest(pg_raw(a->conn)) != 1 ||
	              PQflush(pg_raw(a->conn)) != 0))
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	while (n-- > 0)
		ok = read_one(a, err) && ok;
	return ok;
}

/* Sends Sync and reads everything up to its result. */
static bool
sync_and_read(Applier *a, Error *err)
{
	PGconn *c = pg_raw(a->conn);
	PGresult *res;
	bool ok;

	if (PQpipelineSync(c) != 1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	ok = read_pending(a, -1, err);
	while ((res = PQgetResult(c)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		PQclear(res);
		if (st == PGRES_PIPELINE_SYNC)
			return ok;
	}
	pg_error(a->conn, NULL, err);
	err->retryable = true;
	return false;
}

bool
apply_send_plain(Applier *a, const char *sql, int n, const char *const *vals,
                 Error *err)
{
	if (a->pend_count >= APPLY_INFLIGHT_MAX &&
	    !read_pending(a, APPLY_INFLIGHT_MAX / 2, err))
		return false;
	if (PQsendQueryParams(pg_raw(a->conn), sql, n, NULL, vals, NULL, NULL, 0) !=
	    1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	return pend_push(a, APPLY_PEND_PLAIN, NULL, NULL, 0);
}

bool
apply_query(Applier *a, const char *sql, int n, const char *const *vals,
            PGresult **rows, Error *err)
{
	*rows = NULL;
	if (!apply_send_plain(a, sql, n, vals, err))
		return false;
	a->pend[(a->pend_head + a->pend_count - 1) % APPLY_INFLIGHT_MAX].kind =
	    APPLY_PEND_RESULT;
	PQclear(a->kept);
	a->kept = NULL;
	if (!read_pending(a, -1, err))
		return false;
	if (a->kept == NULL)
		return err_set(err, ERR_INTERNAL,
		               "a query in the batch returned no rows");
	*rows = a->kept;
	a->kept = NULL;
	return true;
}

/* Sends the statement in the sql buffer with params, preparing it the first time. */
bool
apply_send_prepared(Applier *a, PendKind kind, Rel *rel, int nparams, char *key,
                    int nrows, Error *err)
{
	StmtEntry *e;
	PGconn *c = pg_raw(a->conn);

	if (a->pend_count + 2 > APPLY_INFLIGHT_MAX &&
	    !read_pending(a, APPLY_INFLIGHT_MAX / 2, err))
	{
		free(key);
		return false;
	}
	if ((a->nstmts + 1) * 2 > a->stmts_cap && !stmt_grow(a))
	{
		free(key);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	e = stmt_slot(a->stmts, a->stmts_cap, buf_str(&a->sql));
	if (e->sql == NULL)
	{
		e->sql = strdup(buf_str(&a->sql));
		if (e->sql == NULL)
		{
			free(key);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		snprintf(e->name, sizeof(e->name), "pgtide_%d", ++a->nstmts);
		if (PQsendPrepare(c, e->name, e->sql, nparams, NULL) != 1)
		{
			free(key);
			pg_error(a->conn, NULL, err);
			err->retryable = true;
			return false;
		}
		pend_push(a, APPLY_PEND_PLAIN, rel, NULL, 0);
	}
	if (PQsendQueryPrepared(c, e->name, nparams, a->params, NULL, NULL, 0) != 1)
	{
		free(key);
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	atomic_fetch_add(&a->changes, nrows);
	return pend_push(a, kind, rel, key, nrows);
}

bool
apply_batch_begin(Applier *a, Error *err)
{
	if (a->pend_count != 0)
	{
		/* a result left over from the last batch would shift every result
		 * of this one onto the wrong statement */
		err_set(err, ERR_INTERNAL,
		        "%d results of the last batch were never read", a->pend_count);
		err->retryable = true;
		return false;
	}
	a->in_batch = true;
	a->batch_has_ud = false;
	a->batch_txns = 0;
	err_clear(&a->conflict);
	return apply_send_plain(a, "BEGIN", 0, NULL, err);
}

void
apply_txn_begin(Applier *a, uint32_t xid, Lsn final_lsn)
{
	a->xid = xid;
	a->final_lsn = final_lsn;
	a->batch_txns++;
	a->handovers_in_txn = 0;
}

int
apply_batch_size(const Applier *a)
{
	return a->pend_count;
}

void
apply_batch_abort(Applier *a)
{
	Error ignored = ERR_INIT;

	a->run.rel = NULL;
	a->run.nrows = 0;
	buf_reset(&a->run.data);
	apply_renames_end(a, false);
	if (!a->in_batch)
		return;
	a->in_batch = false;
	if (!pg_ok(a->conn))
		return;
	sync_and_read(a, &ignored);
	err_clear(&ignored);
	if (apply_send_plain(a, "ROLLBACK", 0, NULL, &ignored))
		sync_and_read(a, &ignored);
}

bool
apply_batch_commit(Applier *a, Lsn end_lsn, int64_t commit_time_us, Error *err)
{
	char lsn[LSN_TEXT_MAX], ts[32];
	const char *params[2] = {lsn_format(end_lsn, lsn), ts};

	if (!apply_run_flush(a, err))
		goto fail;
	/* Under the stop policy a missing row must stop the batch before COMMIT:
	 * read every result first. Other policies count conflicts afterwards. */
	if (a->policy == ON_CONFLICT_STOP && a->batch_has_ud &&
	    !read_pending(a, -1, err))
		goto fail;
	if (err_is_set(&a->conflict))
	{
		*err = a->conflict;
		goto fail;
	}
	/* microseconds since 2000-01-01 as a timestamptz literal */
	snprintf(ts, sizeof(ts), "%.6f",
	         (double) (commit_time_us + PGO_EPOCH_UNIX_US) / 1e6);
	/* txid_current: a batch that wrote nothing (only skipped changes, or
	 * cutover's marker) still needs a commit record to carry the origin
	 * forward; a batch that wrote already has its xid */
	if (!apply_send_plain(
	        a,
	        "SELECT pg_catalog.pg_replication_origin_xact_setup($1,"
	        " pg_catalog.to_timestamp($2::float8)),"
	        " pg_catalog.txid_current()",
	        2, params, err) ||
	    !apply_send_plain(a, "COMMIT", 0, NULL, err))
		goto fail;
	fault_point("apply.before_commit");
	if (!sync_and_read(a, err))
		goto fail;
	if (err_is_set(&a->conflict))
	{
		/* skip/upsert never set it; defensive */
		*err = a->conflict;
		return false;
	}
	a->in_batch = false;
	apply_renames_end(a, true);
	atomic_fetch_add(&a->txns, a->batch_txns);
	atomic_store(&a->applied_end, end_lsn);
	atomic_store(&a->applied_time_us, commit_time_us + PGO_EPOCH_UNIX_US);
	fault_point("apply.after_commit");
	return true;
fail:
	apply_batch_abort(a);
	return false;
}

bool
apply_flushed(Applier *a, Lsn *flushed, Error *err)
{
	const char *params[1] = {a->origin};
	PGconn *c = pg_raw(a->conn);
	PGresult *res;
	bool ok = false;

	*flushed = LSN_INVALID;
	if (a->in_batch)
		return err_set(err, ERR_INTERNAL, "origin progress asked mid-batch");
	if (PQsendQueryParams(c,
	                      "SELECT coalesce(pg_catalog.pg_replication_origin_"
	                      "progress($1, true)::text, '0/0')",
	                      1, NULL, params, NULL, NULL, 0) != 1 ||
	    PQpipelineSync(c) != 1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		ok = lsn_parse(PQgetvalue(res, 0, 0), flushed) ||
		     err_set(err, ERR_TARGET, "bad origin progress \"%s\"",
		             PQgetvalue(res, 0, 0));
	else
		pg_error(a->conn, res, err);
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	/* then the Sync */
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
		ok = pg_error(a->conn, res, err);
	PQclear(res);
	return ok;
}
