/*
 * cutover: the hand-over, step by step, beside a running `pgtide migrate`.
 *
 *   task in cdc ──► lag low ──► fence ──► in-flight done ──► marker applied
 *   (slot active)   (wait)      (revoke,   (every xid       (origin on the
 *                               read-only,  before the        target passes
 *                               command)    fence ended)      the marker)
 *        ──► resync ──► sequences ──► materialized ──► final validation
 *            (unlogged,   (+ margin)    views         (counts or full)
 *             diverged                  refreshed
 *             keyless,
 *             large objects)
 *        ──► stream stop (point of no return) ──► report
 *
 * The running migrate is told to stop through the task's state
 * (cutover_stop_lsn), and only after every other step has succeeded: until
 * then a failure undoes the fence and the task keeps replicating, so the
 * user is never left with a fenced source and a target that is not ready.
 * The fence stays in place after success: the application moves to the
 * target. Only resync.c writes to the target's tables (those the stream
 * cannot carry); the source gets only the fence and the marker.
 */
#include "cutover/cutover.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/lsn.h"
#include "base/units.h"
#include "cutover/cutover_int.h"
#include "load/sequences.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "state/state.h"
#include "verify/validate.h"


void
cutover_wall_text(char *buf, size_t cap)
{
	int64_t us = clock_wall_us();
	time_t secs = (time_t) (us / 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int) (us / 1000 % 1000));
}

void
cutover_step_done(Cutover *c, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	int64_t now = clock_ms();

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_info("cutover: %s (%.2f s)", what, (double) (now - c->step_ms) / 1e3);
	if (c->steps_len < sizeof(c->steps))
		c->steps_len += (size_t) snprintf(
		    c->steps + c->steps_len, sizeof(c->steps) - c->steps_len,
		    "  %-44s %6.2f s\n", what, (double) (now - c->step_ms) / 1e3);
	c->step_ms = now;
}

static bool
interrupted(Cutover *c, Error *err)
{
	if (c->stop != NULL && *c->stop)
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

/* ---- 1. the task, and a migrate following it ---- */

static bool
load_task(Cutover *c, Error *err)
{
	StateTask task;
	StateTable *tables = NULL;
	int n = 0;
	bool exists, ok = false;

	if (!state_attach(&c->state, c->tgt, c->cfg->state_schema, c->cfg->task,
	                  &exists, err) ||
	    (exists && !state_task_read(&c->state, &task, err)))
		return false;
	if (!exists || !task.exists)
	{
		err_set(err, ERR_CONFIG, "no task \"%s\" on the target", c->cfg->task);
		return err_hint(err, "run pgtide migrate for it first, or name the "
		                     "task with --task");
	}
	snprintf(c->slot, sizeof(c->slot), "%s", task.slot_name);
	if (task.phase == STATE_PHASE_CUTOVER)
	{
		err_set(err, ERR_CONFIG, "task \"%s\" was already cut over",
		        c->cfg->task);
		return err_hint(err, "pgtide status shows its report; pgtide clean "
		                     "drops what the task left behind");
	}
	if (task.phase != STATE_PHASE_CDC)
	{
		err_set(err, ERR_CONFIG,
		        "task \"%s\" is in phase \"%s\"; cutover needs its change "
		        "stream running",
		        c->cfg->task, state_phase_name(task.phase));
		return err_hint(err, "run pgtide migrate and wait for the full load "
		                     "to finish");
	}
	if (!state_tables_load(&c->state, &tables, &n, err))
		return false;
	c->tables = calloc((size_t) n + 1, sizeof(char *));
	if (c->tables == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (c->ntables = 0; c->ntables < n; c->ntables++)
	{
		const StateTable *t = &tables[c->ntables];

		c->tables[c->ntables] = pg_qualify(t->src_schema, t->src_name);
		if (c->tables[c->ntables] == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	ok = true;
out:
	state_tables_free(tables, n);
	return ok;
}

/* The slot's lag behind the source's WAL, and whether migrate streams it. */
static bool
slot_lag(Cutover *c, bool *active, int64_t *lag, Error *err)
{
	const char *params[1] = {c->slot};
	PGresult *res;

	if (!pg_query(c->src,
	              "SELECT active, coalesce(pg_catalog.pg_wal_lsn_diff("
	              "pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn), 0)"
	              "::bigint FROM pg_catalog.pg_replication_slots"
	              " WHERE slot_name = $1",
	              1, params, &res, err))
		return false;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		err_set(err, ERR_SOURCE, "the task's slot \"%s\" is gone", c->slot);
		return err_hint(err, "the migration cannot be cut over; run pgtide "
		                     "clean and start again");
	}
	*active = PQgetvalue(res, 0, 0)[0] == 't';
	*lag = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return true;
}

static bool
require_following(Cutover *c, Error *err)
{
	bool active;
	int64_t lag;

	if (!slot_lag(c, &active, &lag, err))
		return false;
	if (!active)
	{
		err_set(err, ERR_CONFIG,
		        "no pgtide migrate is following task \"%s\" (its slot \"%s\" "
		        "is not in use)",
		        c->cfg->task, c->slot);
		return err_hint(err, "start pgtide migrate for the task (it resumes "
		                     "where it stopped), then run cutover again");
	}
	return true;
}

/* ---- 2. lag ---- */

static bool
wait_lag(Cutover *c, Error *err)
{
	int64_t start = clock_ms(), last_log = start;

	for (;;)
	{
		bool active;
		int64_t lag;

		if (interrupted(c, err) || !slot_lag(c, &active, &lag, err))
			return false;
		if (lag <= c->cfg->cutover_max_lag_bytes)
		{
			char now[32], bound[32];

			units_format_bytes(lag, now, sizeof(now));
			units_format_bytes(c->cfg->cutover_max_lag_bytes, bound,
			                   sizeof(bound));
			cutover_step_done(c, "lag %s, under %s", now, bound);
			return true;
		}
		if (clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
		{
			err_set(err, ERR_SOURCE,
			        "lag stayed above %lld bytes for %d s (now %lld)",
			        (long long) c->cfg->cutover_max_lag_bytes,
			        c->cfg->cutover_timeout_s, (long long) lag);
			return err_hint(err, "nothing was fenced; wait for pgtide status "
			                     "to show less lag, or raise --max-lag or "
			                     "--timeout");
		}
		if (clock_ms() - last_log >= CUTOVER_LOG_EVERY)
		{
			log_info("cutover: waiting for lag %lld bytes to fall under %lld",
			         (long long) lag,
			         (long long) c->cfg->cutover_max_lag_bytes);
			last_log = clock_ms();
		}
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
}

/* ---- 4. transactions begun before the fence ---- */

/*
 * A transaction that began before the fence may still commit after it
 * (privileges are checked per statement). The marker must come after every
 * such commit, or its changes would land after the stream stops.
 */
static bool
wait_in_flight(Cutover *c, Error *err)
{
	int64_t start = clock_ms();
	const char *params[1];

	if (!pg_query_value(
	        c->src, "SELECT pg_catalog.txid_current_snapshot()::text", 0, NULL,
	        c->fence_snapshot, sizeof(c->fence_snapshot), err))
		return false;
	params[0] = c->fence_snapshot;
	for (;;)
	{
		char done[8];

		if (interrupted(c, err) ||
		    !pg_query_value(c->src,
		                    "SELECT (pg_catalog.txid_snapshot_xmin("
		                    "pg_catalog.txid_current_snapshot()) >="
		                    " pg_catalog.txid_snapshot_xmax($1::txid_snapshot))"
		                    "::text",
		                    1, params, done, sizeof(done), err))
			return false;
		if (strcmp(done, "true") == 0)
			break;
		if (clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
		{
			char who[512];

			if (!pg_query_value(
			        c->src,
			        "SELECT coalesce(string_agg(format('pid %s (%s, "
			        "open since %s)', pid, usename, xact_start), '; '),"
			        " 'a prepared transaction')"
			        " FROM pg_catalog.pg_stat_activity"
			        " WHERE backend_xid IS NOT NULL"
			        " AND pid <> pg_catalog.pg_backend_pid()",
			        0, NULL, who, sizeof(who), err))
				snprintf(who, sizeof(who), "unknown sessions");
			err_clear(err);
			err_set(err, ERR_SOURCE,
			        "transactions begun before the fence were still open "
			        "after %d s",
			        c->cfg->cutover_timeout_s);
			err_detail(err, "%s", who);
			return err_hint(err, "end them (or wait for them) and run "
			                     "cutover again");
		}
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
	cutover_step_done(c, "transactions begun before the fence ended");
	return true;
}

/* ---- 5. the marker ---- */

static bool
origin_flushed(Cutover *c, Lsn *lsn, Error *err)
{
	const char *params[1] = {c->origin};
	char text[LSN_TEXT_MAX];

	if (!pg_query_value(c->tgt,
	                    "SELECT coalesce(pg_catalog.pg_replication_origin_"
	                    "progress($1, true)::text, '0/0')",
	                    1, params, text, sizeof(text), err))
		return false;
	if (!lsn_parse(text, lsn))
		return err_set(err, ERR_TARGET, "bad origin progress \"%s\"", text);
	return true;
}

static bool
write_marker(Cutover *c, Error *err)
{
	const char *params[1] = {c->cfg->task};
	PGresult *res;
	int64_t start = clock_ms();

	/* transactional: it reaches the applier as a transaction of its own,
	 * which advances the origin past it */
	if (!pg_query(c->src,
	              "SELECT pg_catalog.pg_logical_emit_message(true,"
	              " 'pgtide.cutover', $1)::text,"
	              " pg_catalog.txid_current()::text",
	              1, params, &res, err))
		return err_prefix(err, "writing the fence marker: ");
	if (!lsn_parse(PQgetvalue(res, 0, 0), &c->marker))
	{
		PQclear(res);
		return err_set(err, ERR_SOURCE, "bad marker position");
	}
	snprintf(c->marker_xid, sizeof(c->marker_xid), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	c->rec.marker_lsn = c->marker;
	fault_point("cutover.marker");
	for (;;)
	{
		Lsn flushed;
		bool active;
		int64_t lag;

		if (interrupted(c, err) || !origin_flushed(c, &flushed, err))
			return false;
		if (flushed >= c->marker)
			break;
		if (!slot_lag(c, &active, &lag, err))
			return false;
		if (!active)
		{
			err_set(err, ERR_SOURCE,
			        "the change stream stopped before it reached the marker");
			return err_hint(err, "pgtide migrate is no longer running for "
			                     "the task; restart it, then run cutover "
			                     "again");
		}
		if (clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
		{
			err_set(err, ERR_TARGET,
			        "the target had not applied up to the marker at " LSN_FMT
			        " after %d s (it holds " LSN_FMT ")",
			        LSN_ARGS(c->marker), c->cfg->cutover_timeout_s,
			        LSN_ARGS(flushed));
			return err_hint(err, "check pgtide status for the task's lag and "
			                     "last error");
		}
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
	cutover_step_done(c, "marker " LSN_FMT " applied on the target",
	                  LSN_ARGS(c->marker));
	return true;
}

/*
 * Transactions that committed on the source server after the fence and
 * before the marker: the user should know what the fence let through.
 * Transaction ids are the server's, so this counts every database and
 * maintenance that takes an id (autovacuum's ANALYZE) as well; what they
 * changed in the task's tables is on the target (the marker came after).
 */
static void
count_late_writes(Cutover *c)
{
	const char *params[3] = {c->fence_snapshot, c->marker_xid, NULL};
	char window[24], count[24];
	Error err = ERR_INIT;

	snprintf(window, sizeof(window), "%d", CUTOVER_XID_WINDOW);
	params[2] = window;
	c->late_txns = -1;
	if (!pg_query_value(
	        c->src,
	        "SELECT count(*) FROM generate_series("
	        " greatest(pg_catalog.txid_snapshot_xmin($1::txid_snapshot),"
	        "  $2::bigint - $3::bigint), $2::bigint - 1) x"
	        " WHERE NOT pg_catalog.txid_visible_in_snapshot(x,"
	        "  $1::txid_snapshot)"
	        " AND pg_catalog.txid_status(x) = 'committed'",
	        3, params, count, sizeof(count), &err))
	{
		log_warn("cutover: could not count writes after the fence: %s",
		         err.message);
		return;
	}
	c->late_txns = strtoll(count, NULL, 10);
	if (c->late_txns > 0)
		log_warn("cutover: %lld transactions committed on the source server "
		         "after the fence (any database, maintenance included); "
		         "what they changed in the task's tables is on the target",
		         (long long) c->late_txns);
}

/* ---- 6. sequences, 7. validation ---- */

static bool
sync_sequences(Cutover *c, Error *err)
{
	Catalog *cat = NULL;
	SeqSyncResult r;
	Renames renames;
	bool ok;

	rename_init(&renames);
	ok = catalog_read(c->src, c->cfg->state_schema, &cat, err);
	/* the task's tables are the selection: the identity sequences of the
	   others were left out with their tables */
	for (int i = 0; ok && i < cat->ntables; i++)
		for (int t = 0; t < c->ntables; t++)
			if (strcmp(cat->tables[i].qname, c->tables[t]) == 0)
				cat->tables[i].selected = true;
	ok = ok && rename_from_config(&renames, c->cfg, err) &&
	     catalog_rename(c->src, cat, &renames, false, err) &&
	     sequences_sync(c->src, c->tgt, cat, true,
	                    c->cfg->cutover_sequence_margin, &r, err);
	catalog_free(cat);
	rename_free(&renames);
	if (!ok)
		return err_prefix(err, "sequences: ");
	c->sequences = r.set;
	if (r.clamped > 0)
		log_warn("cutover: %d sequences were closer to their bound than the "
		         "margin and were set to it (the target's next nextval "
		         "fails there as the source's soon would): %s",
		         r.clamped, r.clamped_names);
	/* a sequence left behind hands out ids the source already gave: the
	   fence comes down and the user fixes it, rather than find duplicates
	   after the hand-over */
	if (r.failed > 0)
	{
		err_set(err, ERR_TARGET, "%d of %d sequences could not be set: %s",
		        r.failed, r.failed + r.set, r.failures);
		return err_hint(err,
		                "%sthe others were set; fix these and run "
		                "cutover again",
		                r.missing > 0 ? "create the sequences the target "
		                                "lacks (pg_dump --schema-only "
		                                "--table NAME on the source shows "
		                                "each); "
		                              : "");
	}
	cutover_step_done(c, "%d sequences set (+%d increments%s%s)", r.set,
	                  c->cfg->cutover_sequence_margin,
	                  r.exact > 0 ? ", CYCLE ones exact" : "",
	                  r.clamped > 0 ? ", some at a bound" : "");
	return true;
}

static bool
final_validation(Cutover *c, Error *err)
{
	ValidateSummary sum;
	FinalValidation how = c->cfg->cutover_validate;

	if (how == FINAL_VALIDATION_NONE)
	{
		snprintf(c->validation, sizeof(c->validation), "skipped");
		return true;
	}
	/* fenced and drained: nothing moves on either side */
	if (!validate_run(c->cfg,
	                  how == FINAL_VALIDATION_FULL ? VALIDATE_FULL
	                                               : VALIDATE_COUNTS,
	                  true, c->stop, &sum, err))
		return err_prefix(err, "final validation: ");
	snprintf(c->validation, sizeof(c->validation),
	         "%s: %d tables, %d differ, %lld rows on the source, %lld on the "
	         "target",
	         config_final_validation_name(how), sum.tables,
	         sum.tables_differing, (long long) sum.rows_source,
	         (long long) sum.rows_target);
	if (sum.tables_differing > 0 || sum.differences > 0)
	{
		err_set(err, ERR_DIFFERENT, "final validation found differences (%s)",
		        c->validation);
		return err_hint(err, "run pgtide validate for the rows; fix the "
		                     "cause, then run cutover again");
	}
	cutover_step_done(c, "final validation (%s)",
	                  config_final_validation_name(how));
	return true;
}

/* ---- 8. the stream stops: the point of no return ---- */

/* Whether the stream has recorded that it stopped at the marker. */
static bool
stream_stopped(Cutover *c, bool *stopped, Error *err)
{
	StateTask task;

	if (!state_task_read(&c->state, &task, err))
		return false;
	*stopped = task.phase == STATE_PHASE_CUTOVER;
	return true;
}
static bool
stop_stream(Cutover *c, Error *err)
{
	int64_t start = clock_ms();
	bool stopped;

	if (!state_task_set_cutover_stop(&c->state, c->marker, err))
		return false;
	fault_point("cutover.stop_set");
	for (;;)
	{
		if (!stream_stopped(c, &stopped, err))
			break;
		if (stopped)
		{
			c->done_ms = clock_ms();
			cutover_wall_text(c->rec.done_at, sizeof(c->rec.done_at));
			cutover_step_done(c, "change stream stopped at the marker");
			return true;
		}
		if (clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
		{
			err_set(err, ERR_TARGET,
			        "pgtide migrate did not stop at the marker within %d s",
			        c->cfg->cutover_timeout_s);
			break;
		}
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
	/* not stopped: take the request back (unless it landed meanwhile) */
	{
		Error e2 = ERR_INIT;

		if (state_task_set_cutover_stop(&c->state, LSN_INVALID, &e2) &&
		    stream_stopped(c, &stopped, &e2) && stopped)
		{
			err_clear(err);
			c->done_ms = clock_ms();
			cutover_wall_text(c->rec.done_at, sizeof(c->rec.done_at));
			cutover_step_done(c, "change stream stopped at the marker");
			return true;
		}
	}
	return false;
}

/* ---- the report ---- */

static void
cdc_counts(Cutover *c, char *buf, size_t cap)
{
	StateStatus st;
	Error err = ERR_INIT;
	int64_t rows = 0;

	if (!state_status_read(&c->state, &st, &err))
	{
		snprintf(buf, cap, "unknown (%.200s)", err.message);
		return;
	}
	for (int i = 0; i < st.ntables; i++)
		rows += st.tables[i].rows;
	snprintf(buf, cap,
	         "%lld rows loaded; %lld transactions, %lld row changes applied "
	         "by the stream of the last run",
	         (long long) rows, (long long) st.cdc.txns,
	         (long long) st.cdc.changes);
	state_status_free(&st);
}

static void
report(Cutover *c, bool done, const Error *failure)
{
	Error err = ERR_INIT;
	char moved[256];

	c->rec.fence_method = config_fence_name(c->cfg->cutover_fence);
	c->rec.late_txns = c->late_txns;
	c->rec.sequences = c->sequences;
	c->rec.validation = c->validation;
	c->rec.steps = c->steps;
	c->rec.window_ms = -1;
	if (done)
	{
		c->rec.window_ms = c->done_ms - c->fence_ms;
		c->rec.result = "done";
	}
	else
		c->rec.result =
		    c->fenced ? "failed, source still fenced" : "failed, fence undone";
	if (failure != NULL)
		snprintf(c->rec.error, sizeof(c->rec.error), "%s", failure->message);
	if (c->tgt != NULL && !state_cutover_record(&c->state, &c->rec, &err))
		log_warn("cutover: the report could not be stored: %s", err.message);
	if (!done)
		return;
	cdc_counts(c, moved, sizeof(moved));
	printf("pgtide cutover: task \"%s\" handed over to the target\n\n",
	       c->cfg->task);
	printf("%s\n", c->steps);
	printf("  write-unavailability window: %.2f s (fenced at %s, done at %s)\n",
	       (double) c->rec.window_ms / 1e3, c->rec.fenced_at, c->rec.done_at);
	printf("  moved: %s\n", moved);
	if (c->late_txns >= 0)
		printf("  transactions committed on the source server after the "
		       "fence: %lld (any database, maintenance included; their "
		       "changes to the task's tables are on the target)\n",
		       (long long) c->late_txns);
	printf("  validation: %s\n", c->validation);
	printf("\nThe source stays fenced. Point the application at the target; "
	       "then run\npgtide clean to drop the slot, publication, origin and "
	       "state.\n");
	fflush(stdout);
}

static void
cutover_free(Cutover *c)
{
	buf_free(&c->undo);
	for (int i = 0; i < c->ntables; i++)
		free(c->tables[i]);
	free(c->tables);
	state_tables_free(c->dropped, c->ndropped);
	pg_close(c->src);
	pg_close(c->tgt);
}

bool
cutover_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	Cutover c;
	bool ok = false;

	memset(&c, 0, sizeof(c));
	buf_init(&c.undo, CUTOVER_SQL_MAX);
	c.cfg = cfg;
	c.stop = stop;
	c.late_txns = -1;
	c.step_ms = clock_ms();
	snprintf(c.validation, sizeof(c.validation), "not run");
	config_source_name(cfg, c.origin, sizeof(c.origin));
	cutover_wall_text(c.rec.started_at, sizeof(c.rec.started_at));
	if (!pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide cutover",
	                5000, &c.tgt, err) ||
	    /* while fenced, a lost session may not keep the source waiting
	       longer than the cutover itself may take */
	    !pg_keep_session(c.tgt, NULL, cfg->cutover_timeout_s * 1000, err) ||
	    !load_task(&c, err) ||
	    !pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide cutover",
	                5000, &c.src, err) ||
	    /* a read-only fence must not stop pgtide's own session, nor the
	       session that replaces it after a lost connection */
	    !pg_keep_session(c.src, "SET default_transaction_read_only = off",
	                     cfg->cutover_timeout_s * 1000, err) ||
	    /* a fence an earlier cutover left goes first, whether or not a
	       migrate follows now: the application must not wait for that */
	    !fence_undo_leftover(&c, err) || !dropped_find(&c, err) ||
	    !fence_check_roles(&c, err) || !require_following(&c, err) ||
	    !state_task_set_cutover_stop(&c.state, LSN_INVALID, err))
	{
		cutover_free(&c);
		return false;
	}
	cutover_step_done(&c, "task \"%s\" is following the source", cfg->task);
	ok = resync_precheck(&c, err) && wait_lag(&c, err) && fence_up(&c, err) &&
	     wait_in_flight(&c, err) && write_marker(&c, err) &&
	     dropped_settle(&c, err) && resync_tables(&c, err) &&
	     resync_large_objects(&c, err) && sync_sequences(&c, err) &&
	     cutover_refresh_matviews(&c, err) && final_validation(&c, err) &&
	     stop_stream(&c, err);
	/* only a report: counted once the window has closed */
	if (ok)
		count_late_writes(&c);
	if (!ok)
	{
		Error undo = ERR_INIT;

		if (c.fenced && !fence_down(&c, &undo))
		{
			report(&c, false, err);
			err_prefix(err, "cutover failed: ");
			err_detail(err, "undoing the fence failed too: %s", undo.message);
			err_hint(err, "the source is still fenced: run pgtide cutover "
			              "again once both servers answer (it lifts a fence "
			              "it recorded before anything else), or restore the "
			              "roles' privileges (or the database's read-only "
			              "setting) by hand; the task keeps replicating");
			cutover_free(&c);
			return false;
		}
		report(&c, false, err);
		err_prefix(err, "cutover failed: ");
		if (err->hint[0] == '\0')
			err_hint(err, "the fence is undone and the task keeps "
			              "replicating; fix the cause and run cutover again");
		else
			err_detail(err, "the fence is undone and the task keeps "
			                "replicating");
		cutover_free(&c);
		return false;
	}
	/* the fence stays: the application moves to the target */
	if (!state_task_set_cutover_undo(&c.state, NULL, err))
		log_warn("cutover: could not forget the fence's undo: %s",
		         err->message);
	err_clear(err);
	c.fenced = false;
	report(&c, true, NULL);
	cutover_free(&c);
	return true;
}
