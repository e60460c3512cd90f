/*
 * surface: the HTTP surface's life (start, stop), the stream's snapshot that
 * the handlers read, and the reads the HTTP thread makes on its own
 * sessions, cached for a second so that a busy scraper costs the databases
 * one round of small queries a second at most.
 *
 * It never runs a query on a thread that loads or streams, and never writes.
 */
#include "surface/surface.h"
#include "surface/surface_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "pg/stream.h"

/* a query of the HTTP thread never holds it longer than this */
#define SURFACE_STATEMENT_TIMEOUT "2s"
/* a source that failed is not asked again sooner than this */
#define SURFACE_SOURCE_PAUSE_MS 10000

bool
surface_start(const TaskConfig *cfg, const TaskConfig *targets, int n,
              const char *command, const char *version, SurfaceStatusFn status,
              Surface **out, Error *err)
{
	Surface *s;
	char addr[64];
	int port;

	*out = NULL;
	if (cfg->http_listen == NULL)
		return true;
	/* checked when the task file and options were read */
	if (!config_parse_listen(cfg->http_listen, addr, sizeof(addr), &port))
		return err_set(err, ERR_CONFIG, "http.listen: invalid address");
	s = calloc(1, sizeof(*s));
	if (s == NULL ||
	    (s->targets = calloc((size_t) n, sizeof(SurfaceTarget))) == NULL)
	{
		free(s);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	s->cfg = cfg;
	snprintf(s->command, sizeof(s->command), "%s", command);
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->status_fn = status;
	s->several = targets != NULL;
	s->ntargets = n;
	for (int k = 0; k < n; k++)
	{
		s->targets[k].cfg = targets != NULL ? &targets[k] : cfg;
		s->targets[k].read.retained_wal = -1;
		buf_init(&s->targets[k].read.status, SURFACE_BODY_CAP);
	}
	pthread_mutex_init(&s->lock, NULL);
	if (!surface_http_start(s, addr, port, err))
	{
		surface_stop(s);
		return false;
	}
	log_info("serving metrics, status and a dashboard on http://%s:%d/%s", addr,
	         port, s->several ? " (every target's)" : "");
	*out = s;
	return true;
}

void
surface_stop(Surface *s)
{
	if (s == NULL)
		return;
	/* the HTTP thread is joined first: its sessions are free to close */
	surface_http_stop(s);
	for (int k = 0; k < s->ntargets; k++)
	{
		SurfaceTarget *t = &s->targets[k];

		pg_close(t->tgt);
		if (t->read.state_ok)
			state_status_free(&t->read.st);
		buf_free(&t->read.status);
	}
	pg_close(s->src);
	pthread_mutex_destroy(&s->lock);
	free(s->targets);
	free(s);
}

void
surface_publish_cdc(Surface *s, const CdcProgress *p)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->cdc.have = true;
	s->cdc.p = *p;
	s->cdc.at_ms = clock_ms();
	surface_history_keep(s, p);
	pthread_mutex_unlock(&s->lock);
}

void
surface_publish_guard(Surface *s, const GuardReport *r)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->guard.have = true;
	s->guard.r = *r;
	pthread_mutex_unlock(&s->lock);
}

void
surface_guard_copy(Surface *s, SurfaceGuard *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->guard;
	pthread_mutex_unlock(&s->lock);
}

void
surface_cdc_copy(Surface *s, SurfaceCdc *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->cdc;
	pthread_mutex_unlock(&s->lock);
}

int64_t
surface_stale_ms(const Surface *s)
{
	/* a report is due every progress interval; three missed is a stall */
	return (int64_t) s->cfg->progress_interval_s * 3000 + 5000;
}

void
surface_target_cdc(Surface *s, int k, SurfaceCdc *out, bool *live)
{
	const SurfaceRead *r = &s->targets[k].read;

	*live = !s->several;
	if (*live)
	{
		surface_cdc_copy(s, out);
		return;
	}
	memset(out, 0, sizeof(*out));
	if (!r->state_ok || !r->st.has_cdc || r->st.task.phase != STATE_PHASE_CDC)
		return;
	out->have = true;
	/* as old as the record: a process that stopped recording is stale */
	out->at_ms = clock_ms() - (int64_t) (r->st.cdc_age_s * 1000);
	out->p.txns = r->st.cdc.txns;
	out->p.changes = r->st.cdc.changes;
	out->p.ignored = r->st.cdc.ignored;
	out->p.filtered = r->st.cdc.filtered;
	out->p.txns_per_s = r->st.cdc.txns_per_s;
	out->p.changes_per_s = r->st.cdc.changes_per_s;
	out->p.applied_lsn = r->st.cdc.applied_lsn;
	out->p.flushed_lsn = r->st.cdc.flushed_lsn;
	out->p.source_lsn = r->st.cdc.source_lsn;
	out->p.lag_bytes = r->st.cdc.lag_bytes;
	out->p.lag_seconds = r->st.cdc.lag_seconds;
	snprintf(out->p.outage, sizeof(out->p.outage), "%s", r->st.cdc.outage);
}

/* Whether target k follows; reason (cap bytes) says why or why not. */
static bool
target_ready(Surface *s, int k, char *reason, size_t cap)
{
	SurfaceCdc c;
	bool live;
	int64_t quiet_ms;

	surface_target_cdc(s, k, &c, &live);
	if (!c.have)
	{
		snprintf(reason, cap,
		         "not ready: not following yet (the %s runs the load, or "
		         "the stream has not reported)",
		         s->command);
		return false;
	}
	quiet_ms = clock_ms() - c.at_ms;
	if (quiet_ms > surface_stale_ms(s))
	{
		snprintf(reason, cap,
		         "not ready: the stream has not reported for %lld s",
		         (long long) (quiet_ms / 1000));
		return false;
	}
	if (c.p.outage[0] != '\0')
	{
		snprintf(reason, cap, "not ready: %s", c.p.outage);
		return false;
	}
	if (c.p.lag_seconds > (double) s->cfg->http_ready_lag_s)
	{
		snprintf(reason, cap,
		         "not ready: lag %.1f s is over http.ready_lag (%d s)",
		         c.p.lag_seconds, s->cfg->http_ready_lag_s);
		return false;
	}
	snprintf(reason, cap, "ready: following, lag %.1f s, %lld bytes",
	         c.p.lag_seconds, (long long) c.p.lag_bytes);
	return true;
}

bool
surface_ready(Surface *s, char *reason, size_t cap)
{
	char one[CDC_OUTAGE_MAX + 64];
	double lag = 0;

	if (!s->several)
		return target_ready(s, 0, reason, cap);
	/* with several targets, the task is ready when every target is */
	surface_refresh(s, false);
	for (int k = 0; k < s->ntargets; k++)
	{
		const SurfaceRead *r = &s->targets[k].read;

		if (!r->state_ok)
		{
			snprintf(reason, cap,
			         "not ready: target %s: its state could not "
			         "be read%s%s",
			         s->targets[k].cfg->shard_target, r->why[0] ? ": " : "",
			         r->why);
			return false;
		}
		if (!target_ready(s, k, one, sizeof(one)))
		{
			/* "not ready: " + the target's name + its reason */
			snprintf(reason, cap, "not ready: target %s: %s",
			         s->targets[k].cfg->shard_target, one + 11);
			return false;
		}
		if (r->st.cdc.lag_seconds > lag)
			lag = r->st.cdc.lag_seconds;
	}
	snprintf(reason, cap,
	         "ready: every target (%d) following, lag at most %.1f s",
	         s->ntargets, lag);
	return true;
}

/* ---- the HTTP thread's reads ---- */

/* A FILE whose writes land in a capped Buf: a write past the cap fails. */
static ssize_t
buf_file_write(void *cookie, const char *data, size_t size)
{
	Error ignored = ERR_INIT;

	return buf_add(cookie, data, size, &ignored) ? (ssize_t) size : -1;
}

/* Opens (or keeps) one of the HTTP thread's sessions. */
static bool
session(PgConn **conn, const char *uri, ErrKind side, Error *err)
{
	if (*conn != NULL && pg_ok(*conn))
		return true;
	pg_close(*conn);
	*conn = NULL;
	if (!pg_connect(uri, side, PG_CONN_SQL, "pgtide http", 0, conn, err))
		return false;
	if (!pg_exec(*conn,
	             "SET statement_timeout = '" SURFACE_STATEMENT_TIMEOUT "'",
	             err))
	{
		pg_close(*conn);
		*conn = NULL;
		return false;
	}
	return true;
}

/* /status's document of target t, written by the command's own writer. */
static void
read_status(Surface *s, SurfaceTarget *t)
{
	SurfaceRead *r = &t->read;
	cookie_io_functions_t io = {NULL, buf_file_write, NULL, NULL};
	Error err = ERR_INIT;
	FILE *f = fopencookie(&r->status, "w", io);
	bool ok;

	if (f == NULL)
	{
		snprintf(r->why, sizeof(r->why), "out of memory");
		return;
	}
	ok = s->status_fn(t->cfg, t->tgt, s->src, f, &err);
	if (fclose(f) != 0 || !buf_check(&r->status, &err) || !ok)
	{
		buf_reset(&r->status);
		snprintf(r->why, sizeof(r->why), "%s",
		         err_is_set(&err) ? err.message : "status too large");
	}
}

/* Target t's state, and its slot's retained WAL, for /metrics. */
static void
read_numbers(Surface *s, SurfaceTarget *t)
{
	SurfaceRead *r = &t->read;
	Error err = ERR_INIT;
	State state;
	bool exists = false;
	StreamSlot *slots = NULL;
	int n = 0;

	if (!state_attach(&state, t->tgt, t->cfg->state_schema, t->cfg->task,
	                  &exists, &err) ||
	    !exists || !state_status_read(&state, &r->st, &err))
	{
		if (err_is_set(&err))
		{
			log_debug("http: could not read the task's state: %s", err.message);
			snprintf(r->why, sizeof(r->why), "%s", err.message);
		}
		return;
	}
	r->state_ok = true;
	if (s->src == NULL || r->st.task.slot_name[0] == '\0')
		return;
	if (!stream_list_slots(s->src, r->st.task.slot_name, &slots, &n, &err))
	{
		log_debug("http: could not read the task's slot: %s", err.message);
		return;
	}
	for (int i = 0; i < n; i++)
		if (slots[i].here && strcmp(slots[i].name, r->st.task.slot_name) == 0)
			r->retained_wal = slots[i].retained_bytes;
	free(slots);
}

/* Reads target t again unless it was read this past second; whether it did. */
static bool
refresh_target(Surface *s, SurfaceTarget *t, bool status, int64_t now)
{
	SurfaceRead *r = &t->read;
	int64_t *at = status ? &r->status_ms : &r->numbers_ms;
	Error err = ERR_INIT;

	if (*at != 0 && now - *at < 1000)
		return false;
	*at = now;
	r->why[0] = '\0';
	if (status)
		buf_reset(&r->status);
	else
	{
		if (r->state_ok)
			state_status_free(&r->st);
		memset(&r->st, 0, sizeof(r->st));
		r->state_ok = false;
		r->retained_wal = -1;
	}
	if (!session(&t->tgt, t->cfg->target_uri, ERR_TARGET, &err))
	{
		snprintf(r->why, sizeof(r->why), "%s", err.message);
		return true;
	}
	if (s->cfg->source_uri != NULL && s->src == NULL &&
	    now - s->src_failed_ms >= SURFACE_SOURCE_PAUSE_MS &&
	    !session(&s->src, s->cfg->source_uri, ERR_SOURCE, &err))
	{
		log_debug("http: source: %s", err.message);
		s->src_failed_ms = now;
		err_clear(&err);
	}
	if (status)
		read_status(s, t);
	else
		read_numbers(s, t);
	/* a session that broke is opened again at the next read */
	if (s->src != NULL && !pg_ok(s->src))
	{
		pg_close(s->src);
		s->src = NULL;
		s->src_failed_ms = now;
	}
	if (!pg_ok(t->tgt))
	{
		pg_close(t->tgt);
		t->tgt = NULL;
	}
	return true;
}

/*
 * Several targets: the history's sample is the task's as the targets last
 * recorded it (the largest lag, the summed rate), kept when one of them
 * recorded since the last sample. Taken when the numbers are read (a
 * scrape, the dashboard's poll), since no stream reports to this process.
 */
static void
keep_targets_sample(Surface *s)
{
	CdcProgress all;
	double newest = -1;
	int64_t recorded;

	memset(&all, 0, sizeof(all));
	for (int k = 0; k < s->ntargets; k++)
	{
		const StateStatus *st = &s->targets[k].read.st;

		if (!s->targets[k].read.state_ok || !st->has_cdc)
			continue;
		if (newest < 0 || st->cdc_age_s < newest)
			newest = st->cdc_age_s;
		all.lag_bytes = st->cdc.lag_bytes > all.lag_bytes ? st->cdc.lag_bytes
		                                                  : all.lag_bytes;
		all.lag_seconds = st->cdc.lag_seconds > all.lag_seconds
		                      ? st->cdc.lag_seconds
		                      : all.lag_seconds;
		all.changes_per_s += st->cdc.changes_per_s;
	}
	if (newest < 0)
		return;
	recorded = clock_ms() - (int64_t) (newest * 1000);
	/* a record of the same report read twice is one sample; the clock's
	   jitter between reads is far under a report's interval */
	if (recorded - s->sampled_ms < 500)
		return;
	s->sampled_ms = recorded;
	pthread_mutex_lock(&s->lock);
	surface_history_keep(s, &all);
	pthread_mutex_unlock(&s->lock);
}

void
surface_refresh(Surface *s, bool status)
{
	int64_t now = clock_ms();
	bool read = false;

	for (int k = 0; k < s->ntargets; k++)
		read = refresh_target(s, &s->targets[k], status, now) || read;
	if (read && s->several && !status)
		keep_targets_sample(s);
}

bool
surface_status(Surface *s, Buf *out, char *why, size_t cap)
{
	Error err = ERR_INIT;
	bool ok = true;

	surface_refresh(s, true);
	if (!s->several)
	{
		const SurfaceRead *r = &s->targets[0].read;

		snprintf(why, cap, "%s", r->why);
		return buf_len(&r->status) > 0 &&
		       buf_add(out, buf_str(&r->status), buf_len(&r->status), &err);
	}
	/* pgtide status --json's document of several targets */
	ok = buf_add_str(out, "{\"task\":", &err) &&
	     surface_json_string(out, s->cfg->task, &err) &&
	     buf_add_str(out, ",\"targets\":{", &err);
	for (int k = 0; ok && k < s->ntargets; k++)
	{
		const SurfaceRead *r = &s->targets[k].read;

		ok = (k == 0 || buf_add_str(out, ",", &err)) &&
		     surface_json_string(out, s->targets[k].cfg->shard_target, &err) &&
		     buf_add_str(out, ":", &err) &&
		     (buf_len(&r->status) > 0
		          ? buf_add(out, buf_str(&r->status), buf_len(&r->status), &err)
		          : buf_add_str(out, "{\"error\":", &err) &&
		                surface_json_string(out, r->why, &err) &&
		                buf_add_str(out, "}", &err));
	}
	ok = ok && buf_add_str(out, "}}\n", &err);
	if (!ok)
		snprintf(why, cap, "%s", err.message);
	return ok;
}
