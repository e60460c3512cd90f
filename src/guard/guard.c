/*
 * guard: the guard thread (guard.h). Every guard.interval seconds it reads
 * the source on a session of its own, compares what it read with the
 * thresholds, acts on a crossing (once, named in the log; again when it
 * clears), and publishes the report (on_report, the task row's guard
 * column).
 *
 *   level:  ok ──► warn ──► pause ──► stop          (retained WAL rising)
 *                  log      gate_hold   *stop = 1, walsender ended and
 *                           joins held  slot dropped (drop_slot)
 *           ok ◄── warn ◄── pause                   (falling: log, release)
 *   wal_status = 'lost' ──► stop (the slot is useless; clean drops it)
 *
 * It never changes the source's data and never fails the task for a
 * reading it could not make: an unreachable source is the stream's to
 * report; the guard tries again at its next turn.
 */
#include "guard/guard.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/units.h"
#include "pg/pg.h"
#include "pg/stream.h"
#include "state/state.h"

/* the warning's default share of check.wal_free_space, and its size when
 * no free space is declared */
#define GUARD_WARN_DEFAULT_PPM   500000
#define GUARD_WARN_DEFAULT_BYTES (INT64_C(16) << 30)

typedef enum GuardStopWhy
{
	GUARD_STOP_NONE,
	GUARD_STOP_WAL,  /* past guard.wal_stop: the slot is to be dropped */
	GUARD_STOP_LOST, /* the server invalidated the slot */
} GuardStopWhy;

struct Guard
{
	GuardOptions o;
	char slot[80];
	pthread_t thread;
	atomic_bool quit;
	atomic_bool paused;
	atomic_bool streaming; /* the change stream runs: the slot can move */
	atomic_int stop_why;   /* GuardStopWhy */
	bool dropped;          /* the stop action dropped the slot */
	PgConn *src;
	PgConn *tgt;
	bool state_ok; /* state attached on tgt */
	State state;
	GuardReport r; /* the guard thread's */
	int64_t last_heartbeat_ms;
	int64_t last_unconfirmed; /* at the last reading; -1 none */
	int64_t confirmed;        /* the slot's confirmed_flush_lsn, as bytes */
	int64_t last_confirmed;   /* at the last reading; -1 none */
	char stop_message[GUARD_MSG_MAX];
};

const char *
guard_level_name(GuardLevel level)
{
	switch (level)
	{
		case GUARD_LEVEL_OK:
			return "ok";
		case GUARD_LEVEL_WARN:
			return "warn";
		case GUARD_LEVEL_PAUSE:
			return "pause";
		case GUARD_LEVEL_STOP:
			return "stop";
	}
	return "?";
}

/* A threshold in bytes (0: off); false when it is a share of an undeclared
 * free space. */
static bool
limit_bytes(const TaskConfig *cfg, const WalLimit *l, const char *key,
            int64_t *out, Error *err)
{
	*out = l->bytes;
	if (l->ppm == 0)
		return true;
	if (cfg->check_wal_free_bytes <= 0)
	{
		err_set(err, ERR_CONFIG,
		        "%s is a share of check.wal_free_space, which the task does "
		        "not declare",
		        key);
		return err_hint(err,
		                "declare check.wal_free_space (the source's "
		                "disk space free for WAL), or give %s as a "
		                "size such as 20GB",
		                key);
	}
	*out = (int64_t) ((double) cfg->check_wal_free_bytes *
	                  ((double) l->ppm / 1e6));
	if (*out < 1)
		*out = 1;
	return true;
}

static bool
thresholds(Guard *g, Error *err)
{
	const TaskConfig *cfg = g->o.cfg;
	WalLimit warn = cfg->guard_wal_warn;
	GuardReport *r = &g->r;

	if (!warn.set)
	{
		warn.bytes =
		    cfg->check_wal_free_bytes > 0 ? 0 : GUARD_WARN_DEFAULT_BYTES;
		warn.ppm = cfg->check_wal_free_bytes > 0 ? GUARD_WARN_DEFAULT_PPM : 0;
	}
	if (!limit_bytes(cfg, &warn, "guard.wal_warn", &r->warn_bytes, err) ||
	    !limit_bytes(cfg, &cfg->guard_wal_pause, "guard.wal_pause",
	                 &r->pause_bytes, err) ||
	    !limit_bytes(cfg, &cfg->guard_wal_stop, "guard.wal_stop",
	                 &r->stop_bytes, err))
		return false;
	if ((r->pause_bytes > 0 && r->stop_bytes > 0 &&
	     r->pause_bytes >= r->stop_bytes) ||
	    (cfg->guard_wal_warn.set && r->warn_bytes > 0 &&
	     ((r->pause_bytes > 0 && r->warn_bytes >= r->pause_bytes) ||
	      (r->stop_bytes > 0 && r->warn_bytes >= r->stop_bytes))))
	{
		err_set(err, ERR_CONFIG,
		        "guard.wal_warn, guard.wal_pause and guard.wal_stop must "
		        "rise in that order");
		return err_hint(err, "leave out or set to off those not wanted");
	}
	/* a default warning above an explicit pause or stop says nothing new */
	if (!cfg->guard_wal_warn.set &&
	    ((r->pause_bytes > 0 && r->warn_bytes >= r->pause_bytes) ||
	     (r->stop_bytes > 0 && r->warn_bytes >= r->stop_bytes)))
		r->warn_bytes = 0;
	return true;
}

static const char *
bytes_text(int64_t bytes, char *buf, size_t cap)
{
	units_format_bytes(bytes, buf, cap);
	return buf;
}

/* ---- reading the source ---- */

static bool
field_null(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col);
}

static int64_t
field_int(const PGresult *res, int col, int64_t unknown)
{
	return field_null(res, col) ? unknown
	                            : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* One reading into g->r; false (with err) when the source did not answer. */
static bool
read_source(Guard *g, bool *slot_active, Error *err)
{
	GuardReport *r = &g->r;
	const char *params[1] = {g->slot};
	char sql[2048];
	PGresult *res = NULL;

	if (g->src == NULL &&
	    !pg_connect(g->o.cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                "pgtide guard", 0, &g->src, err))
		return false;
	/* one statement: no snapshot of the guard's outlives it */
	snprintf(
	    sql, sizeof(sql),
	    "SELECT s.found, s.retained, s.unconfirmed, s.wal_status, s.active,"
	    " s.confirmed,"
	    " greatest((SELECT max(age(backend_xmin)) FROM pg_stat_activity"
	    "            WHERE backend_xmin IS NOT NULL),"
	    "          (SELECT max(age(xmin)) FROM pg_replication_slots)),"
	    " (SELECT extract(epoch FROM now() -"
	    "          min(coalesce(xact_start, backend_start)))"
	    "    FROM pg_stat_activity WHERE backend_xmin IS NOT NULL"
	    "     AND application_name LIKE 'pgtide%%'"
	    "     AND pid <> pg_backend_pid()),"
	    " (SELECT age(datfrozenxid) FROM pg_database"
	    "   WHERE datname = current_database()),"
	    " (SELECT sum(n_dead_tup) FROM pg_stat_user_tables)"
	    " FROM (SELECT count(*) > 0 AS found,"
	    "  max(pg_current_wal_lsn() - restart_lsn)::int8 AS retained,"
	    "  max(pg_current_wal_lsn() - confirmed_flush_lsn)::int8"
	    "   AS unconfirmed,"
	    "  max(%s) AS wal_status, bool_or(active) AS active,"
	    "  max(confirmed_flush_lsn - '0/0')::int8 AS confirmed"
	    "  FROM pg_replication_slots WHERE slot_name = $1) s",
	    pg_server_version(g->src) >= 130000 ? "wal_status" : "NULL::text");
	if (!pg_query(g->src, sql, 1, params, &res, err))
	{
		pg_close(g->src);
		g->src = NULL;
		return false;
	}
	r->have = true;
	r->slot_found = g->o.has_slot && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	r->retained_bytes = r->slot_found ? field_int(res, 1, -1) : -1;
	r->unconfirmed_bytes = r->slot_found ? field_int(res, 2, -1) : -1;
	snprintf(r->wal_status, sizeof(r->wal_status), "%s",
	         r->slot_found && !field_null(res, 3) ? PQgetvalue(res, 0, 3) : "");
	*slot_active = r->slot_found && !field_null(res, 4) &&
	               strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	g->confirmed = r->slot_found ? field_int(res, 5, -1) : -1;
	r->oldest_xmin_age = field_int(res, 6, -1);
	r->snapshot_age_s =
	    field_null(res, 7) ? -1 : strtod(PQgetvalue(res, 0, 7), NULL);
	r->xid_age = field_int(res, 8, -1);
	r->dead_rows = field_int(res, 9, -1);
	PQclear(res);
	return true;
}

/* ---- acting ---- */

static bool drop_slot(Guard *g, bool terminate, int wait_ms, Error *err);

static void
set_message(Guard *g, const char *text)
{
	snprintf(g->r.message, sizeof(g->r.message), "%s", text);
}

static void
stop_task(Guard *g, GuardStopWhy why)
{
	atomic_store(&g->stop_why, why);
	atomic_store(g->o.stop, 1);
}

static void
pause_begin(Guard *g, const char *reason)
{
	if (g->o.gate != NULL)
		gate_hold(g->o.gate, GATE_WAL, reason);
	atomic_store(&g->paused, true);
	g->r.paused = true;
}

static void
pause_end(Guard *g)
{
	if (g->o.gate != NULL)
		gate_release(g->o.gate, GATE_WAL);
	atomic_store(&g->paused, false);
	g->r.paused = false;
}

/* Says and does what a rise into `level` means. */
static void
level_enter(Guard *g, GuardLevel level)
{
	GuardReport *r = &g->r;
	char held[32], limit[32], line[GUARD_MSG_MAX];
	Error drop = ERR_INIT;

	if (level == GUARD_LEVEL_OK)
		return;
	bytes_text(r->retained_bytes, held, sizeof(held));
	bytes_text(level == GUARD_LEVEL_WARN    ? r->warn_bytes
	           : level == GUARD_LEVEL_PAUSE ? r->pause_bytes
	                                        : r->stop_bytes,
	           limit, sizeof(limit));
	snprintf(line, sizeof(line),
	         "%s: the slot \"%s\" retains %s of WAL on the source, past "
	         "guard.wal_%s (%s)",
	         guard_level_name(level), g->slot, held, guard_level_name(level),
	         limit);
	r->actions[level]++;
	switch (level)
	{
		case GUARD_LEVEL_OK:
			return;
		case GUARD_LEVEL_WARN:
			log_warn("guard: %s; the stream has not confirmed it yet (see "
			         "pgtide status for its lag)",
			         line);
			break;
		case GUARD_LEVEL_PAUSE:
			pause_begin(g, line);
			if (atomic_load(&g->streaming))
				log_warn("guard: %s; new tables wait to join until it is "
				         "back under. The stream goes on: only its confirmed "
				         "position releases WAL",
				         line);
			else
				log_warn("guard: %s; the load pauses between chunks. This "
				         "releases no WAL: the slot cannot move before the "
				         "stream starts, after the load, so the pause lasts "
				         "until you act: give the source room and raise "
				         "guard.wal_pause, then run the command again (the "
				         "load resumes), or stop the task",
				         line);
			break;
		case GUARD_LEVEL_STOP:
			snprintf(g->stop_message, sizeof(g->stop_message),
			         "guard.wal_stop: the replication slot \"%s\" retained %s "
			         "of WAL on the source, past guard.wal_stop (%s); the "
			         "task was stopped and its slot dropped, so the source "
			         "can remove that WAL",
			         g->slot, held, limit);
			log_error("guard: %s; stopping the task and dropping its slot",
			          line);
			stop_task(g, GUARD_STOP_WAL);
			g->dropped = drop_slot(g, true, 10000, &drop);
			if (g->dropped)
				log_info("guard: dropped the replication slot \"%s\"", g->slot);
			break;
	}
	set_message(g, line);
}

/* Says and undoes what a fall out of `level` means. */
static void
level_leave(Guard *g, GuardLevel level)
{
	char held[32];

	bytes_text(g->r.retained_bytes, held, sizeof(held));
	if (level == GUARD_LEVEL_PAUSE)
	{
		pause_end(g);
		log_info("guard: the slot \"%s\" retains %s of WAL, back under "
		         "guard.wal_pause: the pause is over",
		         g->slot, held);
	}
	else if (level == GUARD_LEVEL_WARN)
		log_info("guard: the slot \"%s\" retains %s of WAL, back under "
		         "guard.wal_warn",
		         g->slot, held);
}

static int64_t
level_threshold(const GuardReport *r, GuardLevel level)
{
	return level == GUARD_LEVEL_WARN    ? r->warn_bytes
	       : level == GUARD_LEVEL_PAUSE ? r->pause_bytes
	       : level == GUARD_LEVEL_STOP  ? r->stop_bytes
	                                    : 0;
}

static GuardLevel
level_of(const GuardReport *r)
{
	if (r->retained_bytes < 0)
		return GUARD_LEVEL_OK;
	if (r->stop_bytes > 0 && r->retained_bytes >= r->stop_bytes)
		return GUARD_LEVEL_STOP;
	if (r->pause_bytes > 0 && r->retained_bytes >= r->pause_bytes)
		return GUARD_LEVEL_PAUSE;
	if (r->warn_bytes > 0 && r->retained_bytes >= r->warn_bytes)
		return GUARD_LEVEL_WARN;
	return GUARD_LEVEL_OK;
}

static void
wal_guard(Guard *g)
{
	GuardReport *r = &g->r;
	GuardLevel now;

	if (strcmp(r->wal_status, "lost") == 0)
	{
		if (atomic_load(&g->stop_why) == GUARD_STOP_NONE)
		{
			snprintf(g->stop_message, sizeof(g->stop_message),
			         "the source invalidated the task's replication slot "
			         "\"%s\" (wal_status lost): it removed WAL the task "
			         "still needed, so the task cannot resume",
			         g->slot);
			log_error("guard: %s", g->stop_message);
			set_message(g, "lost: the source invalidated the slot");
			stop_task(g, GUARD_STOP_LOST);
		}
		return;
	}
	now = level_of(r);
	if (atomic_load(&g->stop_why) != GUARD_STOP_NONE)
		return;
	/* a level whose threshold is off is passed through without a word */
	while (r->level < now)
		if (level_threshold(r, ++r->level) > 0)
			level_enter(g, r->level);
	while (r->level > now)
	{
		if (level_threshold(r, r->level) > 0)
			level_leave(g, r->level);
		r->level--;
	}
	if (r->level == GUARD_LEVEL_OK && r->message[0] != '\0' &&
	    strncmp(r->message, "lost", 4) != 0)
		r->message[0] = '\0';
}

static void
xmin_guard(Guard *g)
{
	const TaskConfig *cfg = g->o.cfg;
	GuardReport *r = &g->r;
	char dead[64] = "";
	bool past;

	if (r->dead_rows >= 0)
		snprintf(dead, sizeof(dead), "; the database has %lld dead rows now",
		         (long long) r->dead_rows);
	past = cfg->guard_xmin_age_s > 0 &&
	       r->snapshot_age_s > (double) cfg->guard_xmin_age_s;
	if (past && !r->xmin_warned)
		log_warn("guard: pgtide's sessions on the source have held its xmin "
		         "horizon for %.0f s, past guard.xmin_age (%d s): VACUUM "
		         "cannot remove the rows deleted or updated since, anywhere "
		         "on that server%s (the oldest xmin is %lld transactions "
		         "old); the load's snapshot lives until its last chunk is "
		         "copied",
		         r->snapshot_age_s, cfg->guard_xmin_age_s, dead,
		         (long long) r->oldest_xmin_age);
	else if (!past && r->xmin_warned)
		log_info("guard: pgtide's sessions hold the source's xmin horizon no "
		         "longer than guard.xmin_age");
	r->xmin_warned = past;
	past = cfg->guard_xid_age > 0 && r->xid_age > cfg->guard_xid_age;
	if (past && !r->xid_warned)
		log_warn("guard: the source database's transaction ID age is %lld, "
		         "past guard.xid_age (%lld): the server must freeze it with "
		         "VACUUM before it reaches 2 billion, and cannot freeze rows "
		         "newer than the oldest xmin (%lld transactions old)%s",
		         (long long) r->xid_age, (long long) cfg->guard_xid_age,
		         (long long) r->oldest_xmin_age, dead);
	r->xid_warned = past;
}

/*
 * The heartbeat: when the slot streams, confirms nothing new, and the WAL
 * it has not confirmed grows (other databases write, the task's tables are
 * idle), a non-transactional logical message in the slot's database gives
 * the stream a position of its own to confirm.
 */
static void
heartbeat(Guard *g, bool slot_active)
{
	const TaskConfig *cfg = g->o.cfg;
	GuardReport *r = &g->r;
	int64_t prev = g->last_unconfirmed;
	int64_t prev_confirmed = g->last_confirmed;
	Error err = ERR_INIT;
	PGresult *res = NULL;

	g->last_unconfirmed = r->unconfirmed_bytes;
	g->last_confirmed = g->confirmed;
	if (cfg->guard_heartbeat_s == 0 || r->heartbeat_refused || !slot_active ||
	    prev < 0 || r->unconfirmed_bytes <= prev || g->confirmed < 0 ||
	    g->confirmed != prev_confirmed ||
	    clock_ms() - g->last_heartbeat_ms <
	        (int64_t) cfg->guard_heartbeat_s * 1000)
		return;
	g->last_heartbeat_ms = clock_ms();
	if (!pg_query(g->src,
	              "SELECT pg_logical_emit_message(false, 'pgtide_heartbeat',"
	              " '')",
	              0, NULL, &res, &err))
	{
		if (pg_err_is(&err, "42501"))
		{
			r->heartbeat_refused = true;
			log_warn("guard: the source role may not call "
			         "pg_logical_emit_message, so pgtide sends no heartbeat; "
			         "an idle database's slot may then hold WAL that other "
			         "databases write (%s)",
			         err.message);
		}
		else
			log_debug("guard: heartbeat: %s", err.message);
		return;
	}
	PQclear(res);
	r->heartbeats++;
}

static void
publish(Guard *g)
{
	char json[2048];
	Error err = ERR_INIT;

	if (g->o.on_report != NULL)
		g->o.on_report(&g->r, g->o.report_ctx);
	guard_report_json(&g->r, json, sizeof(json));
	if (g->tgt == NULL &&
	    !pg_connect(g->o.cfg->target_uri, ERR_TARGET, PG_CONN_SQL,
	                "pgtide guard", 0, &g->tgt, &err))
		goto fail;
	if (!g->state_ok && !state_attach(&g->state, g->tgt, g->o.cfg->state_schema,
	                                  g->o.cfg->task, &g->state_ok, &err))
		goto fail;
	if (g->state_ok &&
	    !state_task_set_guard(&g->state, json[0] ? json : NULL, &err))
		goto fail;
	return;
fail:
	log_debug("guard: could not record its report: %s", err.message);
	pg_close(g->tgt);
	g->tgt = NULL;
	g->state_ok = false;
}

static void
tick(Guard *g)
{
	Error err = ERR_INIT;
	bool slot_active = false;

	if (!read_source(g, &slot_active, &err))
	{
		log_debug("guard: could not read the source: %s", err.message);
		return;
	}
	if (g->o.has_slot)
		wal_guard(g);
	xmin_guard(g);
	if (g->o.has_slot)
		heartbeat(g, slot_active);
	publish(g);
}

static void *
guard_main(void *arg)
{
	Guard *g = arg;

	log_set_role("guard");
	while (!atomic_load(&g->quit))
	{
		tick(g);
		for (int64_t until = clock_ms() + g->o.cfg->guard_interval_s * 1000;
		     clock_ms() < until && !atomic_load(&g->quit);)
			clock_sleep_ms(100);
	}
	return NULL;
}

bool
guard_start(const GuardOptions *o, Guard **out, Error *err)
{
	Guard *g = calloc(1, sizeof(Guard));

	*out = NULL;
	if (g == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	g->o = *o;
	g->last_unconfirmed = g->last_confirmed = g->confirmed = -1;
	g->r.retained_bytes = g->r.unconfirmed_bytes = -1;
	g->r.oldest_xmin_age = g->r.xid_age = g->r.dead_rows = -1;
	g->r.snapshot_age_s = -1;
	if (o->cfg->cdc_slot != NULL)
		snprintf(g->slot, sizeof(g->slot), "%s", o->cfg->cdc_slot);
	else
		config_slot_name(o->cfg, g->slot, sizeof(g->slot));
	if (!thresholds(g, err))
	{
		free(g);
		return false;
	}
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0)
	{
		free(g);
		return err_set(err, ERR_INTERNAL, "could not start the guard");
	}
	*out = g;
	return true;
}

void
guard_streaming(Guard *g)
{
	if (g != NULL)
		atomic_store(&g->streaming, true);
}

bool
guard_paused(Guard *g)
{
	return g != NULL && atomic_load(&g->paused);
}

bool
guard_stopped(Guard *g)
{
	return g != NULL && atomic_load(&g->stop_why) != GUARD_STOP_NONE;
}

/*
 * Drops the slot, trying for up to wait_ms while a session still holds it.
 * terminate: end that session first (pgtide's own walsender, its stop flag
 * already set so that it does not connect again), so that the source is
 * rid of the WAL at once, not once the applier's statement in flight ends.
 */
static bool
drop_slot(Guard *g, bool terminate, int wait_ms, Error *err)
{
	const char *params[1] = {g->slot};
	PgConn *src = NULL;
	PGresult *res = NULL;
	bool ok = false;

	if (!pg_connect(g->o.cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                "pgtide guard", 5000, &src, err))
		return false;
	for (int waited_ms = 0;; waited_ms += 250)
	{
		if (terminate &&
		    !pg_query(src,
		              "SELECT pg_terminate_backend(active_pid) FROM"
		              " pg_replication_slots WHERE slot_name = $1 AND active"
		              " AND active_pid <> pg_backend_pid()",
		              1, params, &res, err))
			break;
		PQclear(res);
		res = NULL;
		if (stream_drop_slot(src, g->slot, err))
		{
			ok = true;
			break;
		}
		/* 55006: still active, its walsender not yet gone */
		if (!pg_err_is(err, "55006") || waited_ms >= wait_ms)
			break;
		err_clear(err);
		clock_sleep_ms(250);
	}
	pg_close(src);
	return ok;
}

bool
guard_finish(Guard *g, Error *err)
{
	GuardStopWhy why;
	Error drop = ERR_INIT;
	bool ok = true;

	if (g == NULL)
		return true;
	atomic_store(&g->quit, true);
	pthread_join(g->thread, NULL);
	why = (GuardStopWhy) atomic_load(&g->stop_why);
	if (g->r.paused)
		pause_end(g);
	if (why == GUARD_STOP_WAL)
	{
		bool dropped = g->dropped || drop_slot(g, false, 30000, &drop);

		if (dropped && !g->dropped)
			log_info("guard: dropped the replication slot \"%s\"", g->slot);
		err_set(err, ERR_GUARD, "%s", g->stop_message);
		if (!dropped)
			err_detail(err,
			           "The slot could not be dropped (%s): drop it now with "
			           "pgtide clean, or SELECT pg_drop_replication_slot('%s') "
			           "on the source.",
			           drop.message, g->slot);
		else
			err_detail(err, "The slot is gone, so this task cannot resume: "
			                "the source no longer keeps the changes since the "
			                "position the target holds.");
		err_hint(err,
		         "to migrate again, run pgtide clean, then pgtide migrate (a "
		         "new load). Before that, give the source room for WAL or "
		         "raise guard.wal_stop, and find why the stream fell behind: "
		         "pgtide status shows its lag; look for locks or load on the "
		         "target");
		ok = false;
	}
	else if (why == GUARD_STOP_LOST)
		ok = stream_lost_slot_error(err, g->slot, NULL);
	if (!ok)
		publish(g); /* status shows the last reading with the stop */
	pg_close(g->src);
	pg_close(g->tgt);
	free(g);
	return ok;
}

/* ---- the report as JSON ---- */

static void
json_int(FILE *f, const char *key, int64_t v, bool known)
{
	if (known)
		fprintf(f, ",\"%s\":%lld", key, (long long) v);
	else
		fprintf(f, ",\"%s\":null", key);
}

void
guard_report_json(const GuardReport *r, char *buf, size_t cap)
{
	FILE *f = fmemopen(buf, cap, "w");
	bool ok;

	if (f == NULL)
	{
		buf[0] = '\0';
		return;
	}
	fprintf(f, "{\"level\":\"%s\",\"paused\":%s", guard_level_name(r->level),
	        r->paused ? "true" : "false");
	json_int(f, "retained_wal_bytes", r->retained_bytes,
	         r->retained_bytes >= 0);
	fprintf(f, ",\"wal_status\":");
	if (r->wal_status[0])
		fprintf(f, "\"%s\"", r->wal_status);
	else
		fprintf(f, "null");
	json_int(f, "wal_warn_bytes", r->warn_bytes, r->warn_bytes > 0);
	json_int(f, "wal_pause_bytes", r->pause_bytes, r->pause_bytes > 0);
	json_int(f, "wal_stop_bytes", r->stop_bytes, r->stop_bytes > 0);
	json_int(f, "warns", r->actions[GUARD_LEVEL_WARN], true);
	json_int(f, "pauses", r->actions[GUARD_LEVEL_PAUSE], true);
	json_int(f, "stops", r->actions[GUARD_LEVEL_STOP], true);
	json_int(f, "oldest_xmin_age", r->oldest_xmin_age, r->oldest_xmin_age >= 0);
	if (r->snapshot_age_s >= 0)
		fprintf(f, ",\"snapshot_age_seconds\":%.1f", r->snapshot_age_s);
	else
		fprintf(f, ",\"snapshot_age_seconds\":null");
	json_int(f, "xid_age", r->xid_age, r->xid_age >= 0);
	json_int(f, "dead_rows", r->dead_rows, r->dead_rows >= 0);
	fprintf(f, ",\"xmin_warning\":%s,\"xid_age_warning\":%s",
	        r->xmin_warned ? "true" : "false",
	        r->xid_warned ? "true" : "false");
	json_int(f, "heartbeats", r->heartbeats, true);
	fprintf(f, ",\"heartbeat_refused\":%s,\"message\":",
	        r->heartbeat_refused ? "true" : "false");
	if (r->message[0])
		json_write_string(f, r->message);
	else
		fprintf(f, "null");
	fprintf(f, "}");
	ok = !ferror(f) && ftell(f) < (long) cap;
	fclose(f);
	if (!ok)
		buf[0] = '\0';
}
