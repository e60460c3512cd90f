/*
 * follow: `pgtide follow` and `pgtide migrate`: the change stream of a
 * loaded task, run until a stop request or until cutover's marker is on the
 * target, and its progress and stop request carried through the state.
 * Also the entry of `pgtide copy`: the three run under the task's lock
 * (lock.c), one process per task, and serve their surface (--http) while
 * they run; a service manager hears their progress (base/notify).
 * It never changes the source's data; the stream (cdc) owns the applying.
 */
#include "cmd/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/gate.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/units.h"
#include "cdc/cdc.h"
#include "cmd/cli.h"
#include "cmd/lock.h"
#include "guard/guard.h"
#include "load/insert_only.h"
#include "load/join.h"
#include "load/load.h"
#include "load/newtables.h"
#include "load/shards.h"
#include "load/throttle.h"
#include "pg/feed.h"
#include "pg/pg.h"
#include "route/filter.h"
#include "route/rename.h"
#include "state/state.h"
#include "surface/surface.h"
#include "verify/check.h"

/* Writes the change stream's progress to the state row for pgtide status. */
typedef struct ProgressSink
{
	const TaskConfig *cfg;
	const State *state; /* the task's; reached on the sink's own sessions */
	PgConn *conn; /* opened on first use; status is never worth failing for */
	PgConn *stop_conn; /* the applier thread's, for the cutover position */
	PgConn *src_conn;  /* for the watch over the keyless tables */
	bool watch;        /* the task has keyless tables to watch */
	int64_t watched_ms;
	Surface *surface; /* --http's, or NULL */
} ProgressSink;

/* how often the keyless tables' statistics are read while following */
#define WATCH_INTERVAL_MS 10000

/* tries of a join that failed on a lost connection */
#define JOIN_TRIES 5

/* The watch's source session, opened at its first use. */
static bool
watch_session(ProgressSink *ps, Error *err)
{
	return ps->src_conn != NULL ||
	       pg_connect(ps->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                  "pgtide watch", 0, &ps->src_conn, err);
}

/*
 * The tables that join the task while it streams (load/join.h), looked for
 * from the applier's thread between batches: the whole catalog is read only
 * when a cheap reading of it changed. Those that cannot join are warned
 * about whenever their list changes; status lists them too.
 */
typedef struct Joiner
{
	const TaskConfig *cfg;
	const char *publication;
	atomic_int *stop;
	Guard *guard;         /* holds the joins while it pauses; or NULL */
	PgConn *src;          /* the applier thread's, for the signature */
	int64_t looked_ms;    /* when the source was last looked at */
	char catalog_sig[64]; /* newtables_signature then; "" never read */
	char left[512];       /* the tables that could not join, last said */
	JoinResult last;      /* handed to the stream at the last call */
	ApplyTable *tables;
} Joiner;

static void
joiner_free(Joiner *jn)
{
	join_result_free(&jn->last);
	free(jn->tables);
	jn->tables = NULL;
	pg_close(jn->src);
	jn->src = NULL;
}

static void
warn_left(Joiner *jn)
{
	const JoinResult *r = &jn->last;
	char list[512] = "";
	int shown;

	for (shown = 0; shown < r->nleft && strlen(list) < sizeof(list) - 120;
	     shown++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
		         shown ? "; " : "", r->left[shown]);
	if (r->nleft > 0 && strcmp(list, jn->left) != 0)
		log_warn("%d table(s) the task's patterns select were created on the "
		         "source after its load and cannot join it: %s%s. Their rows "
		         "are not published, so the stream does not carry them; fix "
		         "what is named and they join, or move them with a task of "
		         "their own, or leave them out with -T",
		         r->nleft, list, shown < r->nleft ? "; ..." : "");
	snprintf(jn->left, sizeof(jn->left), "%s", list);
}

/* Joins what it can; fills jn->tables for the stream. */
static bool
joiner_run(Joiner *jn, Error *err)
{
	join_result_free(&jn->last);
	free(jn->tables);
	jn->tables = NULL;
	if (!join_tables(jn->cfg, jn->publication, jn->stop, &jn->last, err))
		return false;
	warn_left(jn);
	if (jn->last.n == 0)
		return true;
	jn->tables = calloc((size_t) jn->last.n, sizeof(ApplyTable));
	if (jn->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < jn->last.n; i++)
	{
		jn->tables[i].src_schema = jn->last.tables[i].src_schema;
		jn->tables[i].src_name = jn->last.tables[i].src_name;
		jn->tables[i].tgt_qname = jn->last.tables[i].tgt_qname;
		jn->tables[i].src_relid = jn->last.tables[i].src_relid;
		jn->tables[i].load_point = jn->last.tables[i].load_point;
		jn->tables[i].route_key = jn->last.tables[i].route_key;
		jn->tables[i].filter = jn->last.tables[i].filter;
	}
	return true;
}

/* joiner_run, again after a failure a new connection may cure (a side
 * restarting, a connection cut): JOIN_TRIES times in all. */
static bool
joiner_try(Joiner *jn, Error *err)
{
	for (int attempt = 1; !joiner_run(jn, err); attempt++)
	{
		if (!err->retryable || err->kind == ERR_INTERRUPTED ||
		    attempt >= JOIN_TRIES)
			return false;
		log_warn("%s; trying again", err->message);
		err_clear(err);
		clock_sleep_ms(1000 * attempt);
	}
	return true;
}

/* CdcJoinFn */
static bool
join_new(const ApplyTable **tables, int *n, void *ctx, Error *err)
{
	Joiner *jn = ctx;
	Error e = ERR_INIT;
	int64_t now = clock_ms();
	char sig[64];

	*n = 0;
	/* a join copies a table on the source: new work the guard holds back
	   while the slot retains too much WAL (the stream itself goes on, as
	   only its confirmed position releases WAL) */
	if (now - jn->looked_ms < WATCH_INTERVAL_MS || guard_paused(jn->guard))
		return true;
	jn->looked_ms = now;
	if ((jn->src == NULL &&
	     !pg_connect(jn->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                 "pgtide watch", 0, &jn->src, &e)) ||
	    !newtables_signature(jn->src, sig, sizeof(sig), &e))
	{
		log_debug("could not look for new tables: %s", e.message);
		pg_close(jn->src);
		jn->src = NULL;
		return true;
	}
	if (strcmp(sig, jn->catalog_sig) == 0)
		return true;
	/* a table may be published already: the stream waits for its join */
	if (!joiner_try(jn, err))
		return false;
	snprintf(jn->catalog_sig, sizeof(jn->catalog_sig), "%s", sig);
	*tables = jn->tables;
	*n = jn->last.n;
	return true;
}

/*
 * Reads whether a keyless table, streamed for its inserts only, saw an
 * UPDATE or DELETE; the watch warns about and records each one it finds.
 */
static void
watch_insert_only(ProgressSink *ps, const State *on_sink)
{
	InsertOnlyWatch w;
	Error err = ERR_INIT;
	int64_t now = clock_ms();

	if (!ps->watch || now - ps->watched_ms < WATCH_INTERVAL_MS)
		return;
	ps->watched_ms = now;
	if (!watch_session(ps, &err))
	{
		log_debug("could not watch the tables without a key: %s", err.message);
		return;
	}
	if (!insert_only_watch(ps->src_conn, on_sink, true, &w, &err))
	{
		log_debug("could not watch the tables without a key: %s", err.message);
		pg_close(ps->src_conn);
		ps->src_conn = NULL;
		return;
	}
	insert_only_watch_free(&w);
}

/* The stream's report as one STATUS= line for the service manager. */
static void
notify_progress(const CdcProgress *p)
{
	char lag[32];

	units_format_bytes(p->lag_bytes, lag, sizeof(lag));
	notify_status("following: lag %s, %.1f s; %lld txns applied (%.0f/s)%s%s",
	              lag, p->lag_seconds, (long long) p->txns, p->txns_per_s,
	              p->outage[0] ? "; " : "", p->outage);
}

static void
record_progress(const CdcProgress *p, void *ctx)
{
	ProgressSink *ps = ctx;
	State on_sink;
	StateCdc c;
	Error err = ERR_INIT;

	surface_publish_cdc(ps->surface, p);
	notify_progress(p);
	c.applied_lsn = p->applied_lsn;
	c.flushed_lsn = p->flushed_lsn;
	c.source_lsn = p->source_lsn;
	c.lag_bytes = p->lag_bytes;
	c.lag_seconds = p->lag_seconds;
	c.txns = p->txns;
	c.changes = p->changes;
	c.ignored = p->ignored;
	c.filtered = p->filtered;
	c.txns_per_s = p->txns_per_s;
	c.changes_per_s = p->changes_per_s;
	snprintf(c.outage, sizeof(c.outage), "%s", p->outage);
	if (ps->conn == NULL &&
	    !pg_connect(ps->cfg->target_uri, ERR_TARGET, PG_CONN_SQL,
	                "pgtide status", 0, &ps->conn, &err))
	{
		log_debug("could not record progress: %s", err.message);
		return;
	}
	on_sink = state_on(ps->state, ps->conn);
	if (!state_task_set_cdc(&on_sink, &c, &err))
	{
		log_debug("could not record progress: %s", err.message);
		pg_close(ps->conn);
		ps->conn = NULL;
		return;
	}
	watch_insert_only(ps, &on_sink);
}

/*
 * A table without a filter of its own (t->filter, filter_own) may not
 * stream into a target table another task writes too (load/share.h): its
 * deletes could not tell this task's rows from the other's.
 */
static bool
shared_filter(const State *state, ApplyTable *t, Error *err)
{
	StateSharer *sh = NULL;
	int n = 0;

	if (t->filter != NULL)
		return true;
	if (!state_table_sharers(state, t->tgt_qname, &sh, &n, err))
		return false;
	state_sharers_free(sh, n);
	if (n == 0)
		return true;
	err_set(err, ERR_CONFIG,
	        "target table %s is written by another task too, and this "
	        "task has no row filter on %s.%s",
	        t->tgt_qname, t->src_schema, t->src_name);
	return err_hint(err, "put back the filter the task was loaded with "
	                     "(docs/merging.md)");
}

/* Reads where cutover wants the stream to stop, on a session of its own. */
static bool
read_cutover_stop(Lsn *lsn, void *ctx, Error *err)
{
	ProgressSink *ps = ctx;
	State on_sink;

	if (ps->stop_conn == NULL &&
	    !pg_connect(ps->cfg->target_uri, ERR_TARGET, PG_CONN_SQL,
	                "pgtide follow", 0, &ps->stop_conn, err))
		return false;
	on_sink = state_on(ps->state, ps->stop_conn);
	if (!state_task_cutover_stop(&on_sink, lsn, err))
	{
		pg_close(ps->stop_conn);
		ps->stop_conn = NULL;
		return false;
	}
	return true;
}

/*
 * The lookup method (decision 0036): the routing starts from the target's
 * copy of the lookup table, which holds it as of the position the stream
 * resumes at (it commits with the origin); the applier then follows the
 * table's changes. Marks the lookup table among tables.
 */
static bool
lookup_load(PgConn *tgt, ShardSpec *spec, ApplyTable *tables, int ntables,
            Error *err)
{
	const char *schema, *table, *key, *target;
	ApplyTable *t = NULL;
	int nkeys;

	if (!shard_spec_lookup_table(spec, &schema, &table, &key, &target))
		return true;
	for (int i = 0; i < ntables; i++)
		if (strcmp(tables[i].src_schema, schema) == 0 &&
		    strcmp(tables[i].src_name, table) == 0)
			t = &tables[i];
	if (t == NULL)
		return err_set(err, ERR_CONFIG,
		               "lookup table %s.%s of shard.lookup is not one of the "
		               "task's tables",
		               schema, table);
	t->lookup = true;
	if (!shards_lookup_read(tgt, t->tgt_qname, spec, &nkeys, err))
		return err_prefix(err, "the target's copy: ");
	log_info("routing by lookup table %s.%s: %d keys", schema, table, nkeys);
	return true;
}

/* The change stream of a task, under the lock its command holds. */
static bool
follow_run(const TaskConfig *cfg, atomic_int *stop, Surface *surface,
           Guard *guard, Error *err)
{
	State state;
	ProgressSink sink;
	Lsn stopped_at = LSN_INVALID;
	PgConn *tgt = NULL;
	StateTask st;
	StateTable *st_tables = NULL;
	ApplyTable *tables = NULL;
	int ntables = 0;
	CdcOptions o;
	Joiner joiner;
	char origin[80];
	char *follow_sql = NULL, *rename_sql = NULL;
	Renames renames;
	ShardSpec *shard = NULL;
	bool ok = false;

	rename_init(&renames);
	memset(&o, 0, sizeof(o));
	memset(&joiner, 0, sizeof(joiner));
	memset(&sink, 0, sizeof(sink));
	sink.cfg = cfg;
	sink.state = &state;
	sink.surface = surface;
	if (!pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide", 5000,
	                &tgt, err) ||
	    !pg_keep_session(tgt, NULL, PG_RECONNECT_MS, err) ||
	    !state_open(&state, tgt, cfg->state_schema, cfg->task, err) ||
	    !load_task_begin(cfg, &state, &st, err) ||
	    !state_tables_load(&state, &st_tables, &ntables, err))
		goto out;
	if (st.phase == STATE_PHASE_CUTOVER)
	{
		err_set(err, ERR_CONFIG,
		        "task \"%s\" was cut over; its stream is "
		        "finished",
		        cfg->task);
		err_hint(err, "run pgtide clean to drop its slot, publication and "
		              "state");
		goto out;
	}
	/* no slot followed the load: a slot made now would miss the changes
	   between the two (a slot of the user's, named, is the user's call) */
	if (st.copy_only && cfg->cdc_slot == NULL)
	{
		err_set(err, ERR_CONFIG,
		        "task \"%s\" was loaded by pgtide copy, which keeps no "
		        "replication slot; the source's changes since its load "
		        "cannot be streamed",
		        cfg->task);
		err_hint(err, "drop the task with pgtide clean (and the target's "
		              "copy), then run pgtide migrate, which loads and "
		              "streams from one slot; or use another --task");
		goto out;
	}
	o.start_lsn = st.consistent_lsn;
	if (cfg->cdc_start_lsn != NULL &&
	    !lsn_parse(cfg->cdc_start_lsn, &o.start_lsn))
	{
		err_set(err, ERR_CONFIG, "invalid start LSN \"%s\"",
		        cfg->cdc_start_lsn);
		err_hint(err, "write it as PostgreSQL does, such as 0/16B3748");
		goto out;
	}
	if (o.start_lsn == LSN_INVALID && cfg->cdc_slot == NULL)
	{
		err_set(err, ERR_CONFIG, "task \"%s\" has no full load to follow",
		        cfg->task);
		err_hint(err, "run pgtide migrate (load, then follow), or name a "
		              "slot with --slot");
		goto out;
	}
	for (int i = 0; i < ntables && st.phase < STATE_PHASE_LOADED; i++)
		if (!st_tables[i].done)
		{
			err_set(err, ERR_CONFIG,
			        "table %s.%s of task \"%s\" is not fully loaded",
			        st_tables[i].src_schema, st_tables[i].src_name, cfg->task);
			err_hint(err, "run pgtide migrate or pgtide copy to finish the "
			              "load first");
			goto out;
		}
	/* tables that began joining, or were created since the last run, join
	   before the stream starts (a publication of the user's is the user's:
	   nothing joins it) */
	joiner.cfg = cfg;
	joiner.publication = st.publication;
	joiner.stop = stop;
	joiner.guard = guard;
	if (cfg->cdc_publication == NULL && ntables > 0)
	{
		if (!joiner_try(&joiner, err))
			goto out;
		state_tables_free(st_tables, ntables);
		st_tables = NULL;
		ntables = 0;
		if (!state_tables_load(&state, &st_tables, &ntables, err))
			goto out;
		o.join = join_new;
		o.join_ctx = &joiner;
	}
	tables = calloc((size_t) ntables + 1, sizeof(ApplyTable));
	if (tables == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < ntables; i++)
	{
		tables[i].src_schema = st_tables[i].src_schema;
		tables[i].src_name = st_tables[i].src_name;
		tables[i].tgt_qname = st_tables[i].tgt_qname;
		tables[i].src_relid = st_tables[i].src_relid;
		tables[i].load_point = st_tables[i].snapshot_lsn;
		/* several targets: a routed table's routing is decided in pgtide,
		   and the source asked only the task file's own filter */
		tables[i].route_key = filter_find(
		    &cfg->shard_routes, tables[i].src_schema, tables[i].src_name, NULL);
		tables[i].filter =
		    filter_own(cfg, tables[i].src_schema, tables[i].src_name);
		if (!shared_filter(&state, &tables[i], err))
			goto out;
	}
	/* the patterns this follower runs with are the task's, for status and
	   cutover run without them */
	if (!state_selection_save(&state, &cfg->include, &cfg->exclude, err) ||
	    !state_task_set_phase(&state, STATE_PHASE_CDC, err))
		goto out;
	snprintf(origin, sizeof(origin), "%s", st.origin_name);
	o.source_uri = cfg->source_uri;
	o.target_uri = cfg->target_uri;
	o.slot = cfg->cdc_slot ? cfg->cdc_slot : st.slot_name;
	o.publication =
	    cfg->cdc_publication ? cfg->cdc_publication : st.publication;
	/* a publication of the user's is used as it is, alone */
	o.insert_publication =
	    cfg->cdc_publication == NULL && st.insert_publication[0] != '\0'
	        ? st.insert_publication
	        : NULL;
	/* without keyless tables there is nothing to read on the source */
	sink.watch = st.insert_publication[0] != '\0';
	o.origin = origin;
	o.tables = tables;
	o.ntables = ntables;
	/* a publication of the user's may carry tables the task never loaded,
	   whose target it must not change */
	if (cfg->cdc_publication == NULL && ntables > 0)
	{
		follow_sql = state_follow_columns_sql(&state);
		rename_sql = state_table_rename_sql(&state);
		if (follow_sql == NULL || rename_sql == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		o.follow_sql = follow_sql;
		o.rename_sql = rename_sql;
		o.task = cfg->task;
		o.state_schema = cfg->state_schema;
	}
	/* the load checked the rules against the tables; the stream only reads
	   the names they give */
	if (!rename_from_config(&renames, cfg, err))
		goto out;
	o.renames = &renames;
	if (cfg->shard_target != NULL &&
	    (!shards_own_spec(cfg, &shard, &o.shard_target, err) ||
	     !lookup_load(tgt, shard, tables, ntables, err)))
		goto out;
	o.shard = shard;
	o.policy = cfg->on_conflict;
	o.ignore_unknown = cfg->cdc_ignore_unknown;
	o.shared_slot = feed_fd() >= 0;
	o.memory_bytes = cfg->cdc_memory_bytes;
	o.spill_dir = cfg->cdc_spill_dir;
	o.progress_interval_s = cfg->progress_interval_s;
	o.on_progress = record_progress;
	o.progress_ctx = &sink;
	o.stop = stop;
	o.stop_at = read_cutover_stop;
	o.stop_ctx = &sink;
	o.stopped_at = &stopped_at;
	pg_close(tgt);
	tgt = state.conn = NULL;
	guard_streaming(guard);
	for (;;)
	{
		bool finished = false;

		stopped_at = LSN_INVALID;
		ok = cdc_run(&o, err);
		if (!ok || stopped_at == LSN_INVALID)
			break;
		fault_point("follow.stopped_at_marker");
		if (tgt == NULL &&
		    (!pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide",
		                 PG_RECONNECT_MS, &tgt, err) ||
		     !pg_keep_session(tgt, NULL, PG_RECONNECT_MS, err)))
		{
			ok = false;
			break;
		}
		state.conn = tgt;
		if (!state_task_finish_cutover(&state, stopped_at, &finished, err))
		{
			ok = false;
			break;
		}
		if (finished)
		{
			log_info("cutover: the target holds every change up to the "
			         "marker at " LSN_FMT "; the stream is finished",
			         LSN_ARGS(stopped_at));
			break;
		}
		log_warn("cutover took back its request to stop at " LSN_FMT
		         " (it gave up and lifted its fence); following on",
		         LSN_ARGS(stopped_at));
	}
	/* following has no end: a stop request is the normal way out (the
	   guard's stop is not: its caller says why) */
	if (!ok && err->kind == ERR_INTERRUPTED && !guard_stopped(guard))
	{
		err_clear(err);
		log_info("stopped; the target's position is saved and the next run "
		         "resumes from it");
		ok = true;
	}
out:
	joiner_free(&joiner);
	free(tables);
	free(follow_sql);
	free(rename_sql);
	rename_free(&renames);
	shard_spec_free(shard);
	state_tables_free(st_tables, ntables);
	pg_close(sink.conn);
	pg_close(sink.stop_conn);
	pg_close(sink.src_conn);
	pg_close(tgt);
	return ok;
}

/* GuardReportFn: the guard's report for --http's /metrics */
static void
guard_report(const GuardReport *r, void *ctx)
{
	surface_publish_guard(ctx, r);
}

/*
 * Starts the guard over the source for a command; guard_end ends it and,
 * when the guard stopped the task, puts its error in place of the
 * command's (an interruption, or none).
 */
static bool
guard_begin(const TaskConfig *cfg, bool has_slot, Gate *gate, atomic_int *stop,
            Surface *surface, GuardOptions *go, Guard **out, Error *err)
{
	memset(go, 0, sizeof(*go));
	go->cfg = cfg;
	go->has_slot = has_slot;
	go->gate = gate;
	go->stop = stop;
	go->on_report = guard_report;
	go->report_ctx = surface;
	return guard_start(go, out, err);
}

static bool
guard_end(Guard *guard, bool ok, Error *err)
{
	Error gerr = ERR_INIT;

	if (guard_finish(guard, &gerr))
		return ok;
	*err = gerr;
	return false;
}

/* --http: the surface of the command, while it runs; with several
   targets (targets[0..n)), every target's */
static bool
serve(const TaskConfig *cfg, const TaskConfig *targets, int n,
      const char *command, Surface **out, Error *err)
{
	return surface_start(cfg, targets, n, command, PGTIDE_VERSION,
	                     task_status_json, out, err);
}

/* SIGHUP reaches the load's throttle through the command line's reader */
static const ThrottleReload reload = {
    .pending = cli_reload_pending,
    .reread = cli_reread,
};

/*
 * The load with its throttle (the caps of throttle.*, adaptive mode,
 * SIGHUP), which runs only while the load does: the stream that follows
 * does not pass through the gate. With several targets (targets[0..n),
 * each one's share of cfg), one load fills them all.
 */
static bool
throttled_load(const TaskConfig *cfg, const TaskConfig *targets, int n,
               atomic_int *stop, Gate *gate, bool for_stream, Error *err)
{
	Throttle *throttle;
	bool ok;

	if (!throttle_start(targets != NULL ? &targets[0] : cfg, gate, stop,
	                    &reload, &throttle, err))
		return false;
	ok = targets != NULL
	         ? load_run_split(cfg, targets, n, stop, gate, for_stream, err)
	     : for_stream ? load_for_stream(cfg, stop, gate, err)
	                  : load_run(cfg, stop, gate, err);
	throttle_stop(throttle);
	return ok;
}

/* Each target's lock (locks[0..*taken)), or cfg's alone without targets. */
static bool
take_locks(const TaskConfig *cfg, const TaskConfig *targets, int n,
           const char *command, atomic_int *stop, TaskLock **locks, int *taken,
           Error *err)
{
	for (*taken = 0; *taken < n; (*taken)++)
		if (!task_lock_take(targets != NULL ? &targets[*taken] : cfg, command,
		                    stop, &locks[*taken], err))
		{
			if (targets != NULL)
				err_prefix(err, "target %s: ", targets[*taken].shard_target);
			return false;
		}
	return true;
}

static bool
hold_locks(TaskLock **locks, int n, Error *err)
{
	for (int k = 0; k < n; k++)
		if (!task_lock_hold(locks[k], err))
			return false;
	return true;
}

static bool
release_locks(TaskLock **locks, int n, bool ok, Error *err)
{
	for (int k = n - 1; k >= 0; k--)
		ok = task_lock_release(locks[k], ok, err);
	return ok;
}

/*
 * copy, migrate and follow run under the task's lock, taken before
 * anything is checked, created or changed: a second process of the task is
 * refused at once. migrate records itself only once check found no
 * blocker, since a blocker must leave the target as it was. With several
 * targets (targets[0..n)), copy takes every target's lock and one load
 * fills them all.
 */
static bool
copy_into(const TaskConfig *cfg, const TaskConfig *targets, int n,
          atomic_int *stop, Error *err)
{
	const TaskConfig *first = targets != NULL ? &targets[0] : cfg;
	TaskLock **locks = calloc((size_t) n, sizeof(TaskLock *));
	Surface *surface = NULL;
	Guard *guard = NULL;
	GuardOptions go;
	Gate gate;
	int taken = 0;
	bool ok;

	if (locks == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	gate_init(&gate);
	/* copy keeps no slot: its guard watches the xmin horizon alone */
	ok = take_locks(cfg, targets, n, "copy", stop, locks, &taken, err) &&
	     serve(cfg, targets, n, "copy", &surface, err) &&
	     hold_locks(locks, taken, err) &&
	     guard_begin(first, false, &gate, stop, surface, &go, &guard, err);
	if (ok)
	{
		/* copy's work is the load, and it starts now; migrate and follow
		   are ready once their stream runs (cdc) */
		notify_ready();
		ok = throttled_load(cfg, targets, n, stop, &gate, false, err);
	}
	ok = guard_end(guard, ok, err);
	surface_stop(surface);
	gate_destroy(&gate);
	ok = release_locks(locks, taken, ok, err);
	free(locks);
	return ok;
}

bool
task_copy(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	return copy_into(cfg, NULL, 1, stop, err);
}

bool
task_copy_shards(const TaskConfig *cfg, const ShardSpec *spec, atomic_int *stop,
                 Error *err)
{
	int n = shard_spec_ntargets(spec), made;
	TaskConfig *ones = task_target_configs(cfg, spec, false, &made, err);
	bool ok = ones != NULL;

	/* a SIGHUP rereads the task file as the first target's share: the
	   throttle's caps are the task's */
	if (ok)
		cli_running_target(ones[0].target_uri);
	ok = ok && copy_into(cfg, ones, n, stop, err);
	cli_running_target(NULL);
	task_target_configs_free(ones, made);
	return ok;
}

/* migrate's one load of every target (ones[0..n)), before their processes */
static bool
migrate_load_shards(const TaskConfig *cfg, const ShardSpec *spec,
                    const TaskConfig *ones, int n, atomic_int *stop, Error *err)
{
	int rmade = 0, taken = 0, guarded = 0;
	TaskConfig *routed = task_target_configs(cfg, spec, true, &rmade, err);
	TaskLock **locks = calloc((size_t) n, sizeof(TaskLock *));
	Guard **guards = calloc((size_t) n, sizeof(Guard *));
	GuardOptions *gos = calloc((size_t) n, sizeof(GuardOptions));
	Gate gate;
	bool ok = routed != NULL;

	if (ok && (locks == NULL || guards == NULL || gos == NULL))
		ok = err_set(err, ERR_INTERNAL, "out of memory");
	gate_init(&gate);
	ok = ok && take_locks(cfg, ones, n, "migrate", stop, locks, &taken, err);
	/* each target's check sees its share as its process will */
	for (int k = 0; ok && k < n; k++)
	{
		log_set_role(shard_spec_target_name(spec, k));
		ok = check_before_migrate(&routed[k], err) ||
		     err_prefix(err, "target %s: ", shard_spec_target_name(spec, k));
		log_set_role("main");
	}
	ok = ok && hold_locks(locks, taken, err);
	/* each target's slot is watched once it exists, as with one target */
	for (; ok && guarded < n; guarded++)
		ok = guard_begin(&ones[guarded], true, &gate, stop, NULL, &gos[guarded],
		                 &guards[guarded], err);
	if (ok)
	{
		cli_running_target(ones[0].target_uri);
		ok = throttled_load(cfg, ones, n, stop, &gate, true, err);
		cli_running_target(NULL);
	}
	for (int k = guarded - 1; k >= 0; k--)
		ok = guard_end(guards[k], ok, err);
	gate_destroy(&gate);
	ok = release_locks(locks, taken, ok, err);
	free(locks);
	free(guards);
	free(gos);
	task_target_configs_free(routed, rmade);
	return ok;
}

bool
task_shards(const TaskConfig *cfg, const ShardSpec *spec, bool load,
            char **argv, atomic_int *stop, Error *err)
{
	int n = shard_spec_ntargets(spec), made = 0;
	TaskConfig *ones = task_target_configs(cfg, spec, false, &made, err);
	Surface *surface = NULL;
	bool ok = ones != NULL && task_shard_names_fit(cfg, spec, err) &&
	          serve(cfg, ones, n, load ? "migrate" : "follow", &surface, err);

	ok = ok && (!load || migrate_load_shards(cfg, spec, ones, n, stop, err)) &&
	     task_fan_out(cfg, spec, argv, stop, err);
	surface_stop(surface);
	task_target_configs_free(ones, made);
	return ok;
}

bool
task_follow(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	TaskLock *lock;
	Surface *surface = NULL;
	Guard *guard = NULL;
	GuardOptions go;
	bool ok;

	if (!task_lock_take(cfg, "follow", stop, &lock, err))
		return false;
	ok = serve(cfg, NULL, 1, "follow", &surface, err) &&
	     task_lock_hold(lock, err) &&
	     guard_begin(cfg, true, NULL, stop, surface, &go, &guard, err) &&
	     follow_run(cfg, stop, surface, guard, err);
	ok = guard_end(guard, ok, err);
	surface_stop(surface);
	return task_lock_release(lock, ok, err);
}

bool
task_migrate(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	TaskLock *lock;
	Surface *surface = NULL;
	Guard *guard = NULL;
	GuardOptions go;
	Gate gate;
	bool ok;

	if (!task_lock_take(cfg, "migrate", stop, &lock, err))
		return false;
	gate_init(&gate);
	ok = serve(cfg, NULL, 1, "migrate", &surface, err) &&
	     check_before_migrate(cfg, err) && task_lock_hold(lock, err) &&
	     guard_begin(cfg, true, &gate, stop, surface, &go, &guard, err) &&
	     throttled_load(cfg, NULL, 1, stop, &gate, true, err) &&
	     follow_run(cfg, stop, surface, guard, err);
	ok = guard_end(guard, ok, err);
	surface_stop(surface);
	gate_destroy(&gate);
	return task_lock_release(lock, ok, err);
}
