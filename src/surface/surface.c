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
surface_start(const TaskConfig *cfg, const char *command, const char *version,
              SurfaceStatusFn status, Surface **out, Error *err)
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
	if (s == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	s->cfg = cfg;
	snprintf(s->command, sizeof(s->command), "%s", command);
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->status_fn = status;
	s->read.retained_wal = -1;
	buf_init(&s->read.status, SURFACE_BODY_CAP);
	pthread_mutex_init(&s->lock, NULL);
	if (!surface_http_start(s, addr, port, err))
	{
		pthread_mutex_destroy(&s->lock);
		buf_free(&s->read.status);
		free(s);
		return false;
	}
	log_info("serving metrics, status and a dashboard on http://%s:%d/", addr,
	         port);
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
	pg_close(s->tgt);
	pg_close(s->src);
	if (s->read.state_ok)
		state_status_free(&s->read.st);
	buf_free(&s->read.status);
	pthread_mutex_destroy(&s->lock);
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

bool
surface_ready(Surface *s, char *reason, size_t cap)
{
	SurfaceCdc c;
	int64_t quiet_ms;
	/* a report is due every progress interval; three missed is a stall */
	int64_t stale_ms = (int64_t) s->cfg->progress_interval_s * 3000 + 5000;

	surface_cdc_copy(s, &c);
	if (!c.have)
	{
		snprintf(reason, cap,
		         "not ready: not following yet (the %s runs the load, or "
		         "the stream has not reported)",
		         s->command);
		return false;
	}
	quiet_ms = clock_ms() - c.at_ms;
	if (quiet_ms > stale_ms)
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

/* /status's document, written by the command's own writer. */
static void
read_status(Surface *s)
{
	SurfaceRead *r = &s->read;
	cookie_io_functions_t io = {NULL, buf_file_write, NULL, NULL};
	Error err = ERR_INIT;
	FILE *f = fopencookie(&r->status, "w", io);
	bool ok;

	if (f == NULL)
	{
		snprintf(r->why, sizeof(r->why), "out of memory");
		return;
	}
	ok = s->status_fn(s->cfg, s->tgt, s->src, f, &err);
	if (fclose(f) != 0 || !buf_check(&r->status, &err) || !ok)
	{
		buf_reset(&r->status);
		snprintf(r->why, sizeof(r->why), "%s",
		         err_is_set(&err) ? err.message : "status too large");
	}
}

/* The task's state, and its slot's retained WAL, for /metrics. */
static void
read_numbers(Surface *s)
{
	SurfaceRead *r = &s->read;
	Error err = ERR_INIT;
	State state;
	bool exists = false;
	StreamSlot *slots = NULL;
	int n = 0;

	if (!state_attach(&state, s->tgt, s->cfg->state_schema, s->cfg->task,
	                  &exists, &err) ||
	    !exists || !state_status_read(&state, &r->st, &err))
	{
		if (err_is_set(&err))
			log_debug("http: could not read the task's state: %s", err.message);
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

void
surface_refresh(Surface *s, bool status)
{
	SurfaceRead *r = &s->read;
	int64_t now = clock_ms();
	int64_t *at = status ? &r->status_ms : &r->numbers_ms;
	Error err = ERR_INIT;

	if (*at != 0 && now - *at < 1000)
		return;
	*at = now;
	if (status)
	{
		r->why[0] = '\0';
		buf_reset(&r->status);
	}
	else
	{
		if (r->state_ok)
			state_status_free(&r->st);
		memset(&r->st, 0, sizeof(r->st));
		r->state_ok = false;
		r->retained_wal = -1;
	}
	if (!session(&s->tgt, s->cfg->target_uri, ERR_TARGET, &err))
	{
		snprintf(r->why, sizeof(r->why), "%s", err.message);
		return;
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
		read_status(s);
	else
		read_numbers(s);
	/* a session that broke is opened again at the next read */
	if (s->src != NULL && !pg_ok(s->src))
	{
		pg_close(s->src);
		s->src = NULL;
		s->src_failed_ms = now;
	}
	if (!pg_ok(s->tgt))
	{
		pg_close(s->tgt);
		s->tgt = NULL;
	}
}
