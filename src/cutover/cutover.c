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

#include <pthread.h>
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
cutover_name_list(char *buf, size_t cap, int i, int n, const char *name)
{
	size_t used;

	if (i == 0)
		buf[0] = '\0';
	used = strlen(buf);
	if (i < CUTOVER_NAMES_SHOWN)
		snprintf(buf + used, cap - used, "%s%s", i > 0 ? ", " : "", name);
	else if (i == CUTOVER_NAMES_SHOWN)
		snprintf(buf + used, cap - used, " and %d more",
		         n - CUTOVER_NAMES_SHOWN);
}

/* the report's lines, written by the targets settling side by side */
static pthread_mutex_t steps_lock = PTHREAD_MUTEX_INITIALIZER;

void
cutover_step_done(Cutover *c, CutoverTarget *t, const char *fmt, ...)
{
	char what[320];
	size_t len;
	va_list ap;
	int64_t now = clock_ms(), since;

	len = (size_t) snprintf(what, sizeof(what), "%s", t != NULL ? t->name : "");
	va_start(ap, fmt);
	vsnprintf(what + len, sizeof(what) - len, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&steps_lock);
	since = t != NULL && t->step_ms != 0 ? t->step_ms : c->step_ms;
	log_info("cutover: %s (%.2f s)", what, (double) (now - since) / 1e3);
	if (c->steps_len < sizeof(c->steps))
		c->steps_len += (size_t) snprintf(
		    c->steps + c->steps_len, sizeof(c->steps) - c->steps_len,
		    "  %-44s %6.2f s\n", what, (double) (now - since) / 1e3);
	if (t != NULL && t->step_ms != 0)
		t->step_ms = now;
	else
		c->step_ms = now;
	pthread_mutex_unlock(&steps_lock);
}

static bool
interrupted(Cutover *c, Error *err)
{
	if (c->stop != NULL && *c->stop)
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

/* ---- 1. the task, and a migrate following it ---- */

/*
 * The task's state on target t. With several targets, one whose stream
 * already stopped at a marker (an earlier cutover that stopped the others
 * short) is marked cut_over: cutover_run finishes the rest.
 */
static bool
load_task(Cutover *c, CutoverTarget *t, Error *err)
{
	StateTask task;
	StateTable *tables = NULL;
	int n = 0;
	bool exists, ok = false;

	if (!state_attach(&t->state, t->tgt, t->cfg->state_schema, c->cfg->task,
	                  &exists, err) ||
	    (exists && !state_task_read(&t->state, &task, err)))
		return false;
	if (!exists || !task.exists)
	{
		err_set(err, ERR_CONFIG, "no task \"%s\" on the target", c->cfg->task);
		return err_hint(err, "run pgtide migrate for it first, or name the "
		                     "task with --task");
	}
	snprintf(t->slot, sizeof(t->slot), "%s", task.slot_name);
	snprintf(t->origin, sizeof(t->origin), "%s", task.origin_name);
	if (task.phase == STATE_PHASE_CUTOVER && c->ntargets > 1)
	{
		t->cut_over = true;
		return true;
	}
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
	if (!state_tables_load(&t->state, &tables, &n, err))
		return false;
	t->tables = calloc((size_t) n + 1, sizeof(char *));
	if (t->tables == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (t->ntables = 0; t->ntables < n; t->ntables++)
	{
		const StateTable *st = &tables[t->ntables];

		t->tables[t->ntables] = pg_qualify(st->src_schema, st->src_name);
		if (t->tables[t->ntables] == NULL)
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

/* Every target's tables once, for the fence: the shares name the same
 * source tables. */
static bool
fence_tables(Cutover *c, Error *err)
{
	int cap = 0;

	for (int i = 0; i < c->ntargets; i++)
		cap += c->targets[i].ntables;
	c->tables = calloc((size_t) cap + 1, sizeof(char *));
	if (c->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < c->ntargets; i++)
		for (int k = 0; k < c->targets[i].ntables; k++)
		{
			const char *q = c->targets[i].tables[k];
			int j = 0;

			while (j < c->ntables && strcmp(c->tables[j], q) != 0)
				j++;
			if (j < c->ntables)
				continue;
			c->tables[c->ntables] = strdup(q);
			if (c->tables[c->ntables++] == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
		}
	return true;
}

/* Target t's slot's lag behind the source's WAL, and whether migrate
 * streams it. */
static bool
slot_lag(Cutover *c, const CutoverTarget *t, bool *active, int64_t *lag,
         Error *err)
{
	const char *params[1] = {t->slot};
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
		err_set(err, ERR_SOURCE, "%sthe task's slot \"%s\" is gone", t->name,
		        t->slot);
		return err_hint(err, "the migration cannot be cut over; run pgtide "
		                     "clean and start again");
	}
	*active = PQgetvalue(res, 0, 0)[0] == 't';
	*lag = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return true;
}

static bool
require_following(Cutover *c, const CutoverTarget *t, Error *err)
{
	bool active;
	int64_t lag;

	if (!slot_lag(c, t, &active, &lag, err))
		return false;
	if (!active)
	{
		err_set(err, ERR_CONFIG,
		        "%sno pgtide migrate is following task \"%s\" (its slot "
		        "\"%s\" is not in use)",
		        t->name, c->cfg->task, t->slot);
		return err_hint(err, "start pgtide migrate for the task (it resumes "
		                     "where it stopped), then run cutover again");
	}
	return true;
}

/* ---- 2. lag ---- */

/* The largest lag of the targets' slots, or false. */
static bool
max_lag(Cutover *c, int64_t *lag, Error *err)
{
	*lag = 0;
	for (int i = 0; i < c->ntargets; i++)
	{
		bool active;
		int64_t one;

		if (!slot_lag(c, &c->targets[i], &active, &one, err))
			return false;
		if (one > *lag)
			*lag = one;
	}
	return true;
}

static bool
wait_lag(Cutover *c, Error *err)
{
	int64_t start = clock_ms(), last_log = start;

	for (;;)
	{
		int64_t lag;

		if (interrupted(c, err) || !max_lag(c, &lag, err))
			return false;
		if (lag <= c->cfg->cutover_max_lag_bytes)
		{
			char now[32], bound[32];

			units_format_bytes(lag, now, sizeof(now));
			units_format_bytes(c->cfg->cutover_max_lag_bytes, bound,
			                   sizeof(bound));
			cutover_step_done(c, NULL, "lag %s, under %s", now, bound);
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
	cutover_step_done(c, NULL, "transactions begun before the fence ended");
	return true;
}

/* ---- 5. the marker ---- */

static bool
origin_flushed(const CutoverTarget *t, Lsn *lsn, Error *err)
{
	const char *params[1] = {t->origin};
	char text[LSN_TEXT_MAX];

	if (!pg_query_value(t->tgt,
	                    "SELECT coalesce(pg_catalog.pg_replication_origin_"
	                    "progress($1, true)::text, '0/0')",
	                    1, params, text, sizeof(text), err))
		return false;
	if (!lsn_parse(text, lsn))
		return err_set(err, ERR_TARGET, "%sbad origin progress \"%s\"", t->name,
		               text);
	return true;
}

/* Waits until target t's stream has applied the marker. */
static bool
wait_marker(Cutover *c, CutoverTarget *t, int64_t start, Error *err)
{
	for (;;)
	{
		Lsn flushed;
		bool active;
		int64_t lag;

		if (interrupted(c, err) || !origin_flushed(t, &flushed, err))
			return false;
		if (flushed >= c->marker)
			break;
		if (!slot_lag(c, t, &active, &lag, err))
			return false;
		if (!active)
		{
			err_set(err, ERR_SOURCE,
			        "%sthe change stream stopped before it reached the marker",
			        t->name);
			return err_hint(err, "pgtide migrate is no longer running for "
			                     "the task; restart it, then run cutover "
			                     "again");
		}
		if (clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
		{
			err_set(err, ERR_TARGET,
			        "%sthe target had not applied up to the marker at " LSN_FMT
			        " after %d s (it holds " LSN_FMT ")",
			        t->name, LSN_ARGS(c->marker), c->cfg->cutover_timeout_s,
			        LSN_ARGS(flushed));
			return err_hint(err, "check pgtide status for the task's lag and "
			                     "last error");
		}
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
	cutover_step_done(c, t, "marker " LSN_FMT " applied on the target",
	                  LSN_ARGS(c->marker));
	return true;
}

/* One marker on the source, which every target's stream must pass. */
static bool
write_marker(Cutover *c, Error *err)
{
	const char *params[1] = {c->cfg->task};
	PGresult *res;
	int64_t start = clock_ms();

	/* transactional: it reaches each applier as a transaction of its own,
	 * which advances that target's origin past it */
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
	for (int i = 0; i < c->ntargets; i++)
		if (!wait_marker(c, &c->targets[i], start, err))
			return false;
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
sync_sequences(Cutover *c, CutoverTarget *t, Error *err)
{
	Catalog *cat = NULL;
	SeqSyncResult r;
	Renames renames;
	SeqSpacing spacing = {.k = 1, .n = 1};
	char spaced[64] = "";
	bool ok;

	if (c->cfg->cutover_spacing == SEQUENCE_SPACING_MODULO)
	{
		spacing = (SeqSpacing){.k = t->index + 1, .n = c->ntargets};
		snprintf(spaced, sizeof(spaced), ", values = %d mod %d", spacing.k,
		         spacing.n);
	}
	rename_init(&renames);
	ok = catalog_read(t->src, t->cfg->state_schema, &cat, err);
	/* the task's tables are the selection: the identity sequences of the
	   others were left out with their tables */
	for (int i = 0; ok && i < cat->ntables; i++)
		for (int k = 0; k < t->ntables; k++)
			if (strcmp(cat->tables[i].qname, t->tables[k]) == 0)
				cat->tables[i].selected = true;
	ok = ok && rename_from_config(&renames, t->cfg, err) &&
	     catalog_rename(t->src, cat, &renames, false, err) &&
	     sequences_sync(t->src, t->tgt, cat, true,
	                    c->cfg->cutover_sequence_margin, spacing, &r, err);
	catalog_free(cat);
	rename_free(&renames);
	if (!ok)
		return err_prefix(err, "sequences: ");
	t->sequences = r.set;
	if (r.clamped > 0)
		log_warn("cutover: %s%d sequences were closer to their bound than the "
		         "margin and were set to it (the target's next nextval "
		         "fails there as the source's soon would): %s",
		         t->name, r.clamped, r.clamped_names);
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
	cutover_step_done(c, t, "%d sequences set (+%d increments%s%s%s)", r.set,
	                  c->cfg->cutover_sequence_margin,
	                  r.exact > 0 ? ", CYCLE ones exact" : "",
	                  r.clamped > 0 ? ", some at a bound" : "", spaced);
	return true;
}

/* Target t against its share of the fenced source, into *sum. */
static bool
final_validation(Cutover *c, CutoverTarget *t, ValidateSummary *sum, Error *err)
{
	FinalValidation how = c->cfg->cutover_validate;

	memset(sum, 0, sizeof(*sum));
	if (how == FINAL_VALIDATION_NONE)
		return true;
	/* fenced and drained: nothing moves on either side */
	if (!(c->shares_used
	          ? validate_run_shares(t->cfg, &c->shares, (int) (t - c->targets),
	                                c->stop, sum, err)
	          : validate_run(t->cfg,
	                         how == FINAL_VALIDATION_FULL ? VALIDATE_FULL
	                                                      : VALIDATE_COUNTS,
	                         true, c->stop, sum, err)))
		return err_prefix(err, "final validation: ");
	if (sum->tables_differing > 0 || sum->differences > 0)
	{
		err_set(err, ERR_DIFFERENT,
		        "final validation found differences (%d tables differ, %lld "
		        "rows on the source, %lld on the target)",
		        sum->tables_differing, (long long) sum->rows_source,
		        (long long) sum->rows_target);
		return err_hint(err, "run pgtide validate for the rows; fix the "
		                     "cause, then run cutover again");
	}
	cutover_step_done(c, t, "final validation (%s)",
	                  config_final_validation_name(how));
	return true;
}

/* One target's settling (settle_targets), on a thread of its own. */
typedef struct Settling
{
	Cutover *c;
	CutoverTarget *t;
	ValidateSummary sum;
	Error err;
	bool ok;
} Settling;

/*
 * Everything that happens to target t under the fence once it holds the
 * marker, then its final validation; its errors name it.
 */
static bool
settle_one(Cutover *c, CutoverTarget *t, ValidateSummary *sum, Error *err)
{
	bool ok = dropped_settle(c, t, err) && resync_tables(c, t, err) &&
	          resync_large_objects(c, t, err) && sync_sequences(c, t, err) &&
	          cutover_refresh_matviews(c, t, err) &&
	          final_validation(c, t, sum, err);

	if (!ok)
		err_prefix(err, "%s", t->name);
	return ok;
}

/* A settling target's thread: the source through a session of its own. */
static void *
settle_thread(void *arg)
{
	Settling *s = arg;
	CutoverTarget *t = s->t;

	bool connected;

	log_set_role(t->cfg->shard_target != NULL ? t->cfg->shard_target : "main");
	t->step_ms = clock_ms();
	/* read-only fences must not stop this session either (cutover_run) */
	connected =
	    pg_connect(s->c->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	               "pgtide cutover", 5000, &t->src, &s->err) &&
	    pg_keep_session(t->src, "SET default_transaction_read_only = off",
	                    s->c->cfg->cutover_timeout_s * 1000, &s->err);
	s->ok = connected && settle_one(s->c, t, &s->sum, &s->err);
	if (!connected)
		err_prefix(&s->err, "%s", t->name);
	pg_close(t->src);
	t->src = s->c->src;
	t->step_ms = 0;
	return NULL;
}

/*
 * Every target settles under the fence, side by side, each on a thread
 * with its own source session: the window grows with the slowest target,
 * not with their number. The first failure in target order is the
 * cutover's; the caller undoes the fence for all.
 */
static bool
settle_targets(Cutover *c, Error *err)
{
	size_t n = c->ntargets > 0 ? (size_t) c->ntargets : 1;
	Settling *s = calloc(n, sizeof(Settling));
	pthread_t *threads = calloc(n, sizeof(pthread_t));
	ValidateSummary total;
	FinalValidation how = c->cfg->cutover_validate;
	bool ok = s != NULL && threads != NULL;

	memset(&total, 0, sizeof(total));
	if (!ok)
		err_set(err, ERR_INTERNAL, "out of memory");
	else if (c->ntargets == 1)
	{
		ok = settle_one(c, &c->targets[0], &total, err);
	}
	else
	{
		int started = 0;

		Error counting = ERR_INIT;

		/* the counts each target's validation compares, read once on this
		   thread while the targets settle and count their side (a range
		   condition costs less than any count of shares) */
		c->shares_used = how == FINAL_VALIDATION_COUNTS &&
		                 c->cfg->shard_method != SHARD_RANGE;
		for (; started < c->ntargets; started++)
		{
			s[started] = (Settling){.c = c, .t = &c->targets[started]};
			s[started].err = (Error) ERR_INIT;
			if (pthread_create(&threads[started], NULL, settle_thread,
			                   &s[started]) != 0)
				break;
		}
		if (c->shares_used && !cutover_count_shares(c, &c->shares, &counting))
			ok = false;
		for (int i = 0; i < started; i++)
			pthread_join(threads[i], NULL);
		if (!ok)
			*err = counting;
		else if (started < c->ntargets)
			ok = err_set(err, ERR_INTERNAL, "could not start a thread");
		for (int i = 0; ok && i < c->ntargets; i++)
		{
			ok = s[i].ok;
			if (!ok)
				*err = s[i].err;
			total.tables += s[i].sum.tables;
			total.tables_differing += s[i].sum.tables_differing;
			total.rows_source += s[i].sum.rows_source;
			total.rows_target += s[i].sum.rows_target;
			total.differences += s[i].sum.differences;
		}
	}
	for (int i = 0; i < c->ntargets; i++)
		c->sequences += c->targets[i].sequences;
	c->step_ms = clock_ms(); /* each target timed its own steps */
	free(s);
	free(threads);
	if (how == FINAL_VALIDATION_NONE)
		snprintf(c->validation, sizeof(c->validation), "skipped");
	else
		snprintf(c->validation, sizeof(c->validation),
		         "%s: %d tables, %d differ, %lld rows on the source, %lld on "
		         "the target%s",
		         config_final_validation_name(how), total.tables,
		         total.tables_differing, (long long) total.rows_source,
		         (long long) total.rows_target, c->ntargets > 1 ? "s" : "");
	return ok;
}

/* ---- 8. the streams stop: the point of no return ---- */

/* Whether target t's stream has recorded that it stopped at the marker. */
static bool
stream_stopped(CutoverTarget *t, Error *err)
{
	StateTask task;

	if (!state_task_read(&t->state, &task, err))
		return false;
	t->stopped = task.phase == STATE_PHASE_CUTOVER;
	return true;
}

/* The targets whose streams stopped, and those that did not, as text. */
static int
count_stopped(const Cutover *c, char *stopped, char *running, size_t cap)
{
	int n = 0;
	size_t a = 0, b = 0;

	stopped[0] = running[0] = '\0';
	for (int i = 0; i < c->ntargets; i++)
	{
		const CutoverTarget *t = &c->targets[i];
		const char *name = t->cfg->shard_target ? t->cfg->shard_target : "";

		if (t->stopped && a < cap)
			a += (size_t) snprintf(stopped + a, cap - a, "%s%s",
			                       a > 0 ? ", " : "", name);
		else if (!t->stopped && b < cap)
			b += (size_t) snprintf(running + b, cap - b, "%s%s",
			                       b > 0 ? ", " : "", name);
		n += t->stopped;
	}
	return n;
}

static bool
any_stopped(const Cutover *c)
{
	for (int i = 0; i < c->ntargets; i++)
		if (c->targets[i].stopped)
			return true;
	return false;
}

/* Waits until every target's stream has stopped, or the timeout. */
static bool
wait_stopped(Cutover *c, bool *all, Error *err)
{
	int64_t start = clock_ms();

	for (;;)
	{
		*all = true;
		for (int i = 0; i < c->ntargets; i++)
			if (!c->targets[i].stopped)
			{
				if (!stream_stopped(&c->targets[i], err))
					return false;
				*all = *all && c->targets[i].stopped;
			}
		if (*all ||
		    clock_ms() - start > (int64_t) c->cfg->cutover_timeout_s * 1000)
			return true;
		clock_sleep_ms(CUTOVER_POLL_MS);
	}
}

/*
 * Tells every target's stream to stop at the marker and waits for all.
 * While none has stopped the requests are taken back on a failure, and the
 * caller undoes the fence. Once one has, there is no way back: every
 * target holds every change up to the marker, the source stays fenced, and
 * the error names the targets whose streams still have to stop (a
 * restarted migrate stops them at once; cutover run again then finishes).
 */
static bool
stop_streams(Cutover *c, Error *err)
{
	char stopped[512], running[512];
	bool all = false;
	int n;

	for (int i = 0; i < c->ntargets; i++)
		if (!state_task_set_cutover_stop(&c->targets[i].state, c->marker, err))
		{
			err_prefix(err, "%s", c->targets[i].name);
			break;
		}
	if (err->kind == ERR_NONE)
		fault_point("cutover.stop_set");
	if (err->kind == ERR_NONE && wait_stopped(c, &all, err) && all)
		goto done;
	if (err->kind == ERR_NONE)
		err_set(err, ERR_TARGET,
		        "pgtide migrate did not stop at the marker within %d s",
		        c->cfg->cutover_timeout_s);
	/* take the requests back where no stream stopped (unless a stop
	   landed meanwhile) */
	for (int i = 0; i < c->ntargets; i++)
	{
		CutoverTarget *t = &c->targets[i];
		Error e2 = ERR_INIT;

		if (!t->stopped)
			(void) (state_task_set_cutover_stop(&t->state, LSN_INVALID, &e2) &&
			        stream_stopped(t, &e2));
	}
	n = count_stopped(c, stopped, running, sizeof(stopped));
	if (n == 0)
		return false;
	if (n < c->ntargets)
	{
		/* past the point of no return: the others must stop at the marker
		   too, whenever their migrate runs again */
		for (int i = 0; i < c->ntargets; i++)
		{
			Error e2 = ERR_INIT;

			if (!c->targets[i].stopped &&
			    !state_task_set_cutover_stop(&c->targets[i].state, c->marker,
			                                 &e2))
				log_warn("cutover: %sthe stop request could not be stored "
				         "again: %s",
				         c->targets[i].name, e2.message);
		}
		err_clear(err);
		err_set(err, ERR_TARGET,
		        "the change streams of %s stopped at the marker, and those of "
		        "%s did not within %d s",
		        stopped, running, c->cfg->cutover_timeout_s);
		err_detail(err, "every target holds every change up to the marker, "
		                "and the source stays fenced");
		return err_hint(err, "the others stop at the marker as soon as their "
		                     "migrate reads the request (start pgtide migrate "
		                     "again if it stopped); then run cutover again to "
		                     "finish");
	}
	err_clear(err);
done:
	c->done_ms = clock_ms();
	cutover_wall_text(c->rec.done_at, sizeof(c->rec.done_at));
	cutover_step_done(c, NULL, "change stream%s stopped at the marker",
	                  c->ntargets > 1 ? "s" : "");
	return true;
}

/* ---- the report ---- */

static void
cdc_counts(Cutover *c, char *buf, size_t cap)
{
	int64_t rows = 0, txns = 0, changes = 0;

	for (int t = 0; t < c->ntargets; t++)
	{
		StateStatus st;
		Error err = ERR_INIT;

		if (!state_status_read(&c->targets[t].state, &st, &err))
		{
			snprintf(buf, cap, "unknown (%.200s)", err.message);
			return;
		}
		for (int i = 0; i < st.ntables; i++)
			rows += st.tables[i].rows;
		txns += st.cdc.txns;
		changes += st.cdc.changes;
		state_status_free(&st);
	}
	snprintf(buf, cap,
	         "%lld rows loaded; %lld transactions, %lld row changes applied "
	         "by the stream%s of the last run",
	         (long long) rows, (long long) txns, (long long) changes,
	         c->ntargets > 1 ? "s (each target counts its own)" : "");
}

static void
report(Cutover *c, bool done, const Error *failure)
{
	char moved[256];

	c->rec.fence_method = config_fence_name(c->cfg->cutover_fence);
	c->rec.late_txns = c->late_txns;
	c->rec.sequences = c->sequences;
	c->rec.validation = c->validation;
	c->rec.steps = c->steps;
	c->rec.window_ms = -1;
	if (done)
	{
		/* a cutover that finished an earlier one's has no window of its
		   own */
		c->rec.window_ms = c->fence_ms > 0 ? c->done_ms - c->fence_ms : -1;
		c->rec.result = "done";
	}
	else
		c->rec.result =
		    c->fenced ? "failed, source still fenced" : "failed, fence undone";
	if (failure != NULL)
		snprintf(c->rec.error, sizeof(c->rec.error), "%s", failure->message);
	for (int i = 0; i < c->ntargets; i++)
	{
		Error err = ERR_INIT;

		if (c->targets[i].tgt != NULL &&
		    !state_cutover_record(&c->targets[i].state, &c->rec, &err))
			log_warn("cutover: %sthe report could not be stored: %s",
			         c->targets[i].name, err.message);
	}
	if (!done)
		return;
	cdc_counts(c, moved, sizeof(moved));
	printf("pgtide cutover: task \"%s\" handed over to the target%s\n\n",
	       c->cfg->task, c->ntargets > 1 ? "s" : "");
	printf("%s\n", c->steps);
	if (c->fence_ms > 0)
		printf("  write-unavailability window: %.2f s (fenced at %s, done at "
		       "%s)\n",
		       (double) c->rec.window_ms / 1e3, c->rec.fenced_at,
		       c->rec.done_at);
	printf("  moved: %s\n", moved);
	if (c->late_txns >= 0)
		printf("  transactions committed on the source server after the "
		       "fence: %lld (any database, maintenance included; their "
		       "changes to the task's tables are on the target)\n",
		       (long long) c->late_txns);
	printf("  validation: %s\n", c->validation);
	printf("\nThe source stays fenced. Point the application at the target%s; "
	       "then run\npgtide clean to drop the slot%s, publication%s, "
	       "origin%s and state.\n",
	       c->ntargets > 1 ? "s" : "", c->ntargets > 1 ? "s" : "",
	       c->ntargets > 1 ? "s" : "", c->ntargets > 1 ? "s" : "");
	fflush(stdout);
}

static void
cutover_free(Cutover *c)
{
	buf_free(&c->undo);
	for (int i = 0; i < c->ntables; i++)
		free(c->tables[i]);
	free(c->tables);
	for (int i = 0; i < c->ntargets; i++)
	{
		CutoverTarget *t = &c->targets[i];

		for (int k = 0; k < t->ntables; k++)
			free(t->tables[k]);
		free(t->tables);
		state_tables_free(t->dropped, t->ndropped);
		pg_close(t->tgt);
	}
	free(c->targets);
	cutover_shares_free(&c->shares);
	pthread_cond_destroy(&c->shares.cond);
	pthread_mutex_destroy(&c->shares.lock);
	pg_close(c->src);
}

/* ---- the whole ---- */

/* Connects to every target and reads its task; nothing is changed yet. */
static bool
open_targets(Cutover *c, const TaskConfig *targets, Error *err)
{
	for (int i = 0; i < c->ntargets; i++)
	{
		CutoverTarget *t = &c->targets[i];

		t->cfg = &targets[i];
		t->index = i;
		snprintf(t->label, sizeof(t->label), "target %s: ",
		         t->cfg->shard_target ? t->cfg->shard_target : "");
		t->name = c->ntargets > 1 ? t->label : "";
		if (!pg_connect(t->cfg->target_uri, ERR_TARGET, PG_CONN_SQL,
		                "pgtide cutover", 5000, &t->tgt, err) ||
		    /* while fenced, a lost session may not keep the source waiting
		       longer than the cutover itself may take */
		    !pg_keep_session(t->tgt, NULL, c->cfg->cutover_timeout_s * 1000,
		                     err) ||
		    !load_task(c, t, err))
			return err_prefix(err, "%s", t->name);
	}
	return true;
}

/*
 * Whether a cutover that stopped short (stop_streams) keeps the source
 * fenced: its undo is still recorded.
 */
static bool
fence_kept(Cutover *c, bool *kept, Error *err)
{
	*kept = false;
	for (int i = 0; !*kept && i < c->ntargets; i++)
	{
		char *undo = NULL;

		if (!state_task_cutover_undo(&c->targets[i].state, &undo, err))
			return err_prefix(err, "%s", c->targets[i].name);
		*kept = undo != NULL;
		free(undo);
	}
	return true;
}

/*
 * An earlier cutover stopped some targets' streams at its marker and not
 * the others (stop_streams): the source is still fenced by it, and its stop
 * requests wait for the others. Waits for them, then reports.
 */
static bool
finish_stopping(Cutover *c, Error *err)
{
	bool all;

	for (int i = 0; i < c->ntargets; i++)
	{
		CutoverTarget *t = &c->targets[i];
		Lsn at;

		t->stopped = t->cut_over;
		if (t->cut_over)
			continue;
		if (!state_task_cutover_stop(&t->state, &at, err))
			return false;
		if (at == LSN_INVALID)
		{
			err_set(err, ERR_CONFIG,
			        "%sits change stream runs on, while other targets of the "
			        "task were cut over",
			        t->name);
			return err_hint(err, "pgtide status shows each target's phase; "
			                     "its stream has no stop request to finish "
			                     "with");
		}
		if (!require_following(c, t, err))
			return false;
	}
	log_info("cutover: an earlier cutover stopped some targets' streams at "
	         "its marker; waiting for the others");
	snprintf(c->validation, sizeof(c->validation),
	         "passed in the earlier cutover, before any stream stopped");
	if (!wait_stopped(c, &all, err))
		return false;
	if (!all)
	{
		err_set(err, ERR_TARGET,
		        "pgtide migrate did not stop at the marker within %d s",
		        c->cfg->cutover_timeout_s);
		return err_hint(err, "the source stays fenced; check pgtide status "
		                     "for each target's last error");
	}
	c->done_ms = clock_ms();
	cutover_wall_text(c->rec.done_at, sizeof(c->rec.done_at));
	cutover_step_done(c, NULL,
	                  "the other change streams stopped at the "
	                  "earlier marker");
	for (int i = 0; i < c->ntargets; i++)
	{
		Error e2 = ERR_INIT;

		if (!state_task_set_cutover_undo(&c->targets[i].state, NULL, &e2))
			log_warn("cutover: %scould not forget the fence's undo: %s",
			         c->targets[i].name, e2.message);
	}
	return true;
}

bool
cutover_run(const TaskConfig *cfg, const TaskConfig *targets, int ntargets,
            atomic_int *stop, Error *err)
{
	Cutover c;
	bool ok = false, kept = false;
	int cut_over = 0;

	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.shares.lock, NULL);
	pthread_cond_init(&c.shares.cond, NULL);
	buf_init(&c.undo, CUTOVER_SQL_MAX);
	c.cfg = cfg;
	c.stop = stop;
	c.late_txns = -1;
	c.step_ms = clock_ms();
	snprintf(c.validation, sizeof(c.validation), "not run");
	cutover_wall_text(c.rec.started_at, sizeof(c.rec.started_at));
	c.targets = calloc((size_t) ntargets, sizeof(CutoverTarget));
	if (c.targets == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	c.ntargets = ntargets;
	if (!open_targets(&c, targets, err) ||
	    !pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide cutover",
	                5000, &c.src, err) ||
	    /* a read-only fence must not stop pgtide's own session, nor the
	       session that replaces it after a lost connection */
	    !pg_keep_session(c.src, "SET default_transaction_read_only = off",
	                     cfg->cutover_timeout_s * 1000, err))
	{
		cutover_free(&c);
		return false;
	}
	for (int i = 0; i < ntargets; i++)
	{
		cut_over += c.targets[i].cut_over;
		c.targets[i].src = c.src;
	}
	if (cut_over == ntargets && !fence_kept(&c, &kept, err))
	{
		cutover_free(&c);
		return false;
	}
	if (cut_over == ntargets && !kept)
	{
		cutover_free(&c);
		err_set(err, ERR_CONFIG, "task \"%s\" was already cut over", cfg->task);
		return err_hint(err, "pgtide status shows its report; pgtide clean "
		                     "drops what the task left behind");
	}
	if (cut_over > 0)
	{
		ok = finish_stopping(&c, err);
		if (ok)
			report(&c, true, NULL);
		cutover_free(&c);
		return ok;
	}
	/* a fence an earlier cutover left goes first, whether or not a migrate
	   follows now: the application must not wait for that */
	ok = fence_undo_leftover(&c, err);
	for (int i = 0; ok && i < ntargets; i++)
		ok = dropped_find(&c, &c.targets[i], err) &&
		     leftout_refuse(&c.targets[i], err) &&
		     require_following(&c, &c.targets[i], err) &&
		     state_task_set_cutover_stop(&c.targets[i].state, LSN_INVALID,
		                                 err) &&
		     resync_precheck(&c, &c.targets[i], err);
	if (!ok || !fence_tables(&c, err) || !fence_check_roles(&c, err))
	{
		cutover_free(&c);
		return false;
	}
	cutover_step_done(&c, NULL, "task \"%s\" is following the source",
	                  cfg->task);
	ok = wait_lag(&c, err) && fence_up(&c, err) && wait_in_flight(&c, err) &&
	     write_marker(&c, err) && settle_targets(&c, err) &&
	     stop_streams(&c, err);
	/* only a report: counted once the window has closed */
	if (ok)
		count_late_writes(&c);
	if (!ok && any_stopped(&c))
	{
		/* some streams stopped: the fence must stay (stop_streams) */
		report(&c, false, err);
		err_prefix(err, "cutover stopped short: ");
		cutover_free(&c);
		return false;
	}
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
	/* the fence stays: the application moves to the targets */
	for (int i = 0; i < ntargets; i++)
		if (!state_task_set_cutover_undo(&c.targets[i].state, NULL, err))
		{
			log_warn("cutover: %scould not forget the fence's undo: %s",
			         c.targets[i].name, err->message);
			err_clear(err);
		}
	c.fenced = false;
	report(&c, true, NULL);
	cutover_free(&c);
	return true;
}

bool
cutover_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	return cutover_run(cfg, cfg, 1, stop, err);
}
