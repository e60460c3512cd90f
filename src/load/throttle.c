/*
 * throttle: the load's caps, their reread on SIGHUP, and the adaptive
 * probe (docs/decisions/0026).
 *
 * One thread. Every 100 ms it looks for a SIGHUP; every probe_interval, in
 * adaptive mode, it times the probe on its own source session, keeps the
 * latencies, decides (throttle_decide) and hands the factor to the gate. A
 * probe that blocks (a lock, a saturated server) is cut by its
 * statement_timeout and counts as slow, for as long as it took: the thread
 * never waits on the source longer than that.
 *
 * It publishes what it does under its own lock, read by status, /metrics
 * and the dashboard through throttle_read; the log gets a line per change
 * of state, never one per probe.
 */
#include "load/throttle.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/units.h"
#include "pg/pg.h"

#define LOOK_MS      100 /* how often the thread looks for SIGHUP or stop */
#define WINDOW       5   /* probes the decision takes the median of */
#define HISTORY      60  /* probes p95 is computed over */
#define RATE_SPAN_MS 5000
#define RATE_SAMPLES 64
#define FACTOR_DOWN  0.5
#define FACTOR_UP    0.1
#define FACTOR_MIN   0.05
/* the probe is cut here: slow enough to be over any bound, short enough
   for the thread to stay responsive */
#define PROBE_TIMEOUT_MIN_MS 1000

/*
 * The built-in probe: a round trip that plans a query and reads the
 * catalog through an index and the buffer manager, a small share of what
 * an application's own queries need. The user's query (probe_query), when
 * given, is timed after it, and the probe's latency is the slower of the
 * two.
 */
#define BUILTIN_PROBE \
	"SELECT relpages FROM pg_catalog.pg_class WHERE oid = 1259"

typedef struct RateSample
{
	int64_t ms;
	int64_t rows;
	int64_t bytes;
} RateSample;

struct Throttle
{
	const TaskConfig *cfg; /* as started: what SIGHUP compares against */
	Gate *gate;
	atomic_int *stop;
	ThrottleReload reload;
	atomic_bool quit;
	pthread_t thread;

	/* the thread's own */
	ThrottleConfig tc; /* the throttle keys in force; probe_query owned */
	PgConn *probe;
	int64_t next_probe_ms;
	int64_t lat[HISTORY]; /* ring of the last probes' latencies */
	int nlat;
	int lat_next;
	RateSample rate[RATE_SAMPLES];
	int nrate;
	int rate_next;
	int64_t base_rows_per_s;  /* the load's own rate, capped while adaptive */
	int64_t base_bytes_per_s; /* mode slows a load without rate caps */

	pthread_mutex_t lock; /* guards st */
	ThrottleState st;
};

/* The process's throttle, for throttle_read. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static Throttle *current;

const char *
throttle_mode_name(ThrottleMode m)
{
	switch (m)
	{
		case THROTTLE_OFF:
			return "off";
		case THROTTLE_OPEN:
			return "open";
		case THROTTLE_SLOWING:
			return "slowing";
		case THROTTLE_RECOVERING:
			return "recovering";
	}
	return "unknown";
}

void
throttle_decide(ThrottleMode mode, double factor, int64_t window_ms,
                int bound_ms, ThrottleMode *next, double *next_factor)
{
	*next = mode;
	*next_factor = factor;
	if (mode == THROTTLE_OFF)
		return;
	if (window_ms > bound_ms)
	{
		*next = THROTTLE_SLOWING;
		*next_factor = factor * FACTOR_DOWN;
		if (*next_factor < FACTOR_MIN)
			*next_factor = FACTOR_MIN;
		return;
	}
	/* between 80% of the bound and the bound: hold, so that a latency
	   hovering at the bound does not make the load saw up and down */
	if (window_ms * 5 > (int64_t) bound_ms * 4 || mode == THROTTLE_OPEN)
		return;
	*next_factor = factor + FACTOR_UP;
	if (*next_factor >= 1.0 - 1e-9)
	{
		*next_factor = 1.0;
		*next = THROTTLE_OPEN;
	}
	else
		*next = THROTTLE_RECOVERING;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/* The nearest-rank quantile q of the last n latencies (n >= 1). */
static int64_t
latency_quantile(const Throttle *t, int n, double q)
{
	int64_t v[HISTORY];
	int rank;

	for (int i = 0; i < n; i++)
		v[i] = t->lat[(t->lat_next - 1 - i + HISTORY) % HISTORY];
	qsort(v, (size_t) n, sizeof(v[0]), cmp_i64);
	rank = (int) (q * n + 0.999999);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* The caps the gate gets: the configured ones, and while adaptive mode
 * slows a load that has no rate cap, the load's own rate when it began. */
static GateCaps
effective_caps(const Throttle *t)
{
	GateCaps c = {
	    .workers = t->tc.copy_workers,
	    .rows_per_s = t->tc.rows_per_s,
	    .bytes_per_s = t->tc.bytes_per_s,
	    .builds = t->tc.index_builds,
	};

	/* the factor scales the worker cap: without one it scales copy.jobs */
	if (t->tc.adaptive && c.workers == 0)
		c.workers = t->cfg->copy_jobs;
	if (c.rows_per_s == 0 && c.bytes_per_s == 0)
	{
		c.rows_per_s = t->base_rows_per_s;
		c.bytes_per_s = t->base_bytes_per_s;
	}
	return c;
}

static void
publish(Throttle *t, void (*edit)(ThrottleState *, const void *),
        const void *arg)
{
	pthread_mutex_lock(&t->lock);
	edit(&t->st, arg);
	pthread_mutex_unlock(&t->lock);
}

static void
set_caps_edit(ThrottleState *st, const void *arg)
{
	st->caps = *(const GateCaps *) arg;
}

static void
apply_caps(Throttle *t)
{
	GateCaps c = effective_caps(t);

	gate_set_caps(t->gate, &c);
	publish(t, set_caps_edit, &c);
}

/* Samples what went through the gate, for the load's own rate. */
static void
sample_rate(Throttle *t)
{
	GateState g;
	RateSample *s = &t->rate[t->rate_next];

	gate_read(t->gate, &g);
	s->ms = clock_ms();
	s->rows = g.rows;
	s->bytes = g.bytes;
	t->rate_next = (t->rate_next + 1) % RATE_SAMPLES;
	if (t->nrate < RATE_SAMPLES)
		t->nrate++;
}

/* The load's rate over the last few seconds of samples; 0 when unknown. */
static void
recent_rate(const Throttle *t, int64_t *rows_per_s, int64_t *bytes_per_s)
{
	const RateSample *last, *first = NULL;

	*rows_per_s = *bytes_per_s = 0;
	if (t->nrate < 2)
		return;
	last = &t->rate[(t->rate_next - 1 + RATE_SAMPLES) % RATE_SAMPLES];
	for (int i = 1; i < t->nrate; i++)
	{
		const RateSample *s =
		    &t->rate[(t->rate_next - 1 - i + RATE_SAMPLES) % RATE_SAMPLES];

		if (last->ms - s->ms > RATE_SPAN_MS)
			break;
		first = s;
	}
	if (first == NULL || last->ms <= first->ms)
		return;
	*rows_per_s = (last->rows - first->rows) * 1000 / (last->ms - first->ms);
	*bytes_per_s = (last->bytes - first->bytes) * 1000 / (last->ms - first->ms);
}

typedef struct ProbeResult
{
	int64_t ms;
	const char *error; /* NULL, or why the probe could not run */
} ProbeResult;

static void
probe_edit(ThrottleState *st, const void *arg)
{
	const ProbeResult *r = arg;

	if (r->error != NULL)
	{
		snprintf(st->probe_error, sizeof(st->probe_error), "%.*s",
		         THROTTLE_TEXT_MAX - 1, r->error);
		return;
	}
	st->probe_error[0] = '\0';
	st->probes++;
	st->last_ms = r->ms;
}

/* Runs one statement of the probe; a timeout is a slow answer, not an
 * error. */
static bool
probe_statement(PgConn *conn, const char *sql, Error *err)
{
	if (pg_exec(conn, sql, err))
		return true;
	if (pg_err_is(err, "57014")) /* query_canceled: the statement_timeout */
	{
		err_clear(err);
		return true;
	}
	return false;
}

static bool
probe_connect(Throttle *t, Error *err)
{
	int timeout_ms = t->tc.probe_latency_ms * 5;

	if (timeout_ms < PROBE_TIMEOUT_MIN_MS)
		timeout_ms = PROBE_TIMEOUT_MIN_MS;
	/* read-only: a probe_query that would write fails instead */
	return pg_connect(t->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                  "pgtide throttle", 0, &t->probe, err) &&
	       pg_execf(t->probe, err,
	                "SET statement_timeout = %d;"
	                " SET default_transaction_read_only = on",
	                timeout_ms);
}

/*
 * Times the probe; false with err when it could not run (the session is
 * closed then, and opened again at the next probe).
 */
static bool
probe_once(Throttle *t, int64_t *ms, Error *err)
{
	int64_t t0, builtin_ms;

	if (t->probe == NULL)
	{
		/* once untimed: a new session's first queries fill its catalog
		   caches, and would look like a slow source */
		if (!probe_connect(t, err) ||
		    !probe_statement(t->probe, BUILTIN_PROBE, err))
			goto fail;
		if (t->tc.probe_query != NULL &&
		    !probe_statement(t->probe, t->tc.probe_query, err))
		{
			err_prefix(err, "throttle.probe_query: ");
			goto fail;
		}
	}
	t0 = clock_ms();
	if (!probe_statement(t->probe, BUILTIN_PROBE, err))
		goto fail;
	builtin_ms = clock_ms() - t0;
	*ms = builtin_ms;
	if (t->tc.probe_query != NULL)
	{
		int64_t t1 = clock_ms();

		if (!probe_statement(t->probe, t->tc.probe_query, err))
		{
			err_prefix(err, "throttle.probe_query: ");
			goto fail;
		}
		if (clock_ms() - t1 > *ms)
			*ms = clock_ms() - t1;
	}
	return true;
fail:
	pg_close(t->probe);
	t->probe = NULL;
	return false;
}

typedef struct Decision
{
	ThrottleMode mode;
	double factor;
	int64_t window_ms;
	int64_t p95_ms;
	bool log_reason;
	char reason[THROTTLE_TEXT_MAX];
} Decision;

static void
decision_edit(ThrottleState *st, const void *arg)
{
	const Decision *d = arg;

	if (st->mode == THROTTLE_OPEN && d->mode == THROTTLE_SLOWING)
		st->slowdowns++;
	st->mode = d->mode;
	st->factor = d->factor;
	st->window_ms = d->window_ms;
	st->p95_ms = d->p95_ms;
	if (d->log_reason)
		snprintf(st->reason, sizeof(st->reason), "%s", d->reason);
}

static void
probe_and_decide(Throttle *t)
{
	ThrottleState now;
	Decision d;
	Error err = ERR_INIT;
	int64_t ms = 0;
	int n;
	bool was_failing;

	pthread_mutex_lock(&t->lock);
	now = t->st;
	pthread_mutex_unlock(&t->lock);
	was_failing = now.probe_error[0] != '\0';
	if (!probe_once(t, &ms, &err))
	{
		ProbeResult r = {.error = err.message};

		/* once per outage: the load goes on at its last factor */
		if (!was_failing)
			log_warn("throttle: the probe failed: %s; the load goes on at "
			         "%.0f%% of its caps until the probe answers again",
			         err.message, now.factor * 100.0);
		publish(t, probe_edit, &r);
		return;
	}
	if (was_failing)
		log_info("throttle: the probe answers again (%lld ms)", (long long) ms);
	{
		ProbeResult r = {.ms = ms};

		publish(t, probe_edit, &r);
	}
	t->lat[t->lat_next] = ms;
	t->lat_next = (t->lat_next + 1) % HISTORY;
	if (t->nlat < HISTORY)
		t->nlat++;
	n = t->nlat < WINDOW ? t->nlat : WINDOW;
	memset(&d, 0, sizeof(d));
	d.window_ms = latency_quantile(t, n, 0.5);
	d.p95_ms = latency_quantile(t, t->nlat, 0.95);
	d.mode = now.mode;
	d.factor = now.factor;
	/* a decision waits for a full window: one probe is no trend */
	if (n == WINDOW)
		throttle_decide(now.mode, now.factor, d.window_ms,
		                t->tc.probe_latency_ms, &d.mode, &d.factor);
	if (d.mode != now.mode)
	{
		d.log_reason = true;
		if (d.mode == THROTTLE_SLOWING)
			snprintf(d.reason, sizeof(d.reason),
			         "the source's probe takes %lld ms (median of the last "
			         "%d), over its %d ms bound: the load slows down",
			         (long long) d.window_ms, WINDOW, t->tc.probe_latency_ms);
		else if (d.mode == THROTTLE_RECOVERING)
			snprintf(d.reason, sizeof(d.reason),
			         "the source's probe is back under its bound (%lld ms): "
			         "the load speeds up again",
			         (long long) d.window_ms);
		else
			snprintf(d.reason, sizeof(d.reason),
			         "the load is back at its full rate (probe %lld ms)",
			         (long long) d.window_ms);
		log_info("throttle: %s (%.0f%% of its caps)", d.reason,
		         d.factor * 100.0);
	}
	/* the first slowdown of a load without a rate cap caps it at the rate
	   it had: the factor needs something to scale */
	if (now.mode == THROTTLE_OPEN && d.mode == THROTTLE_SLOWING &&
	    t->tc.rows_per_s == 0 && t->tc.bytes_per_s == 0)
	{
		recent_rate(t, &t->base_rows_per_s, &t->base_bytes_per_s);
		apply_caps(t);
	}
	else if (d.mode == THROTTLE_OPEN && now.mode != THROTTLE_OPEN &&
	         (t->base_rows_per_s != 0 || t->base_bytes_per_s != 0))
	{
		t->base_rows_per_s = t->base_bytes_per_s = 0;
		apply_caps(t);
	}
	gate_set_factor(t->gate, d.factor);
	publish(t, decision_edit, &d);
}

/* What adaptive mode off (or on again) leaves: a factor of 1, OPEN. */
static void
reset_adaptive_edit(ThrottleState *st, const void *arg)
{
	const Throttle *t = arg;

	st->mode = t->tc.adaptive ? THROTTLE_OPEN : THROTTLE_OFF;
	st->factor = 1.0;
	st->bound_ms = t->tc.probe_latency_ms;
	st->interval_ms = t->tc.probe_interval_ms;
	st->user_probe = t->tc.probe_query != NULL;
	st->window_ms = st->p95_ms = st->last_ms = -1;
	st->probe_error[0] = '\0';
	snprintf(st->reason, sizeof(st->reason), "%s",
	         t->tc.adaptive ? "adaptive: no probe over its bound yet"
	                        : "adaptive mode off: the caps alone apply");
}

/* Takes tc as the throttle keys in force (tc's probe_query moves in). */
static void
take_settings(Throttle *t, ThrottleConfig *tc)
{
	free(t->tc.probe_query);
	t->tc = *tc;
	tc->probe_query = NULL;
	/* a new bound or query starts a new history */
	pg_close(t->probe);
	t->probe = NULL;
	t->nlat = t->lat_next = 0;
	t->base_rows_per_s = t->base_bytes_per_s = 0;
	t->next_probe_ms = clock_ms();
	gate_set_factor(t->gate, 1.0);
	apply_caps(t);
	pthread_mutex_lock(&t->lock);
	reset_adaptive_edit(&t->st, t);
	pthread_mutex_unlock(&t->lock);
}

static bool
copy_settings(ThrottleConfig *dst, const ThrottleConfig *src, Error *err)
{
	*dst = *src;
	dst->probe_query = NULL;
	if (src->probe_query != NULL &&
	    (dst->probe_query = strdup(src->probe_query)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

/* The configured caps for the log: "copy workers 2, 500 rows/s, ...", or
 * "no caps". */
static void
describe_caps(const ThrottleConfig *tc, char *buf, size_t cap)
{
	char size[32];
	size_t used = 0;

	buf[0] = '\0';
	if (tc->copy_workers > 0)
		used += (size_t) snprintf(buf + used, cap - used, ", copy workers %d",
		                          tc->copy_workers);
	if (tc->rows_per_s > 0 && used < cap)
		used += (size_t) snprintf(buf + used, cap - used, ", %lld rows/s",
		                          (long long) tc->rows_per_s);
	if (tc->bytes_per_s > 0 && used < cap)
	{
		units_format_bytes(tc->bytes_per_s, size, sizeof(size));
		used += (size_t) snprintf(buf + used, cap - used, ", %s/s", size);
	}
	if (tc->index_builds > 0 && used < cap)
		used += (size_t) snprintf(buf + used, cap - used, ", index builds %d",
		                          tc->index_builds);
	if (used == 0)
		snprintf(buf, cap, "  no caps");
	/* past the leading ", " */
	memmove(buf, buf + 2, strlen(buf + 2) + 1);
}

/* Appends ", name" for each of n names to buf. */
static void
join_names(char *buf, size_t cap, const char *const *names, int n, int shown)
{
	buf[0] = '\0';
	for (int i = 0; i < n && i < shown; i++)
	{
		size_t used = strlen(buf);

		snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
	}
	if (n > shown)
	{
		size_t used = strlen(buf);

		snprintf(buf + used, cap - used, " and %d more", n - shown);
	}
}

#define MAX_NAMED 16

/*
 * SIGHUP: the task file again. Its throttle keys take effect now; a change
 * to any other key is named once and ignored (it takes a restart); a file
 * that no longer reads leaves everything as it was.
 */
static void
reread(Throttle *t)
{
	TaskConfig fresh;
	Error err = ERR_INIT;
	const char *names[MAX_NAMED];
	char list[THROTTLE_TEXT_MAX];
	int n;

	if (t->cfg->path == NULL)
	{
		log_warn("SIGHUP: the task runs without a task file (--config): "
		         "nothing to reread");
		return;
	}
	config_init(&fresh);
	if (!t->reload.reread(&fresh, &err))
	{
		log_error("SIGHUP: could not reread the task file: %s; the running "
		          "settings stay",
		          err.message);
		config_free(&fresh);
		return;
	}
	n = config_changed_keys(t->cfg, &fresh, false, names, MAX_NAMED);
	if (n > 0)
	{
		join_names(list, sizeof(list), names, n, MAX_NAMED);
		log_warn("SIGHUP: %s changed in the task file but take%s a restart: "
		         "the running task keeps %s value%s",
		         list, n == 1 ? "s" : "", n == 1 ? "its" : "their",
		         n == 1 ? "" : "s");
	}
	{
		/* the throttle keys compare against those in force, which an
		   earlier SIGHUP may have changed; a view, never freed */
		TaskConfig was = *t->cfg;

		was.throttle = t->tc;
		n = config_changed_keys(&was, &fresh, true, names, MAX_NAMED);
	}
	if (n == 0)
	{
		log_info("SIGHUP: the throttle's settings are unchanged");
		config_free(&fresh);
		return;
	}
	{
		ThrottleConfig tc;

		if (!copy_settings(&tc, &fresh.throttle, &err))
		{
			log_error("SIGHUP: %s; the running settings stay", err.message);
			config_free(&fresh);
			return;
		}
		take_settings(t, &tc);
	}
	join_names(list, sizeof(list), names, n, MAX_NAMED);
	{
		char caps[THROTTLE_TEXT_MAX];

		describe_caps(&t->tc, caps, sizeof(caps));
		log_info("SIGHUP: %s now in force (%s; adaptive %s)", list, caps,
		         t->tc.adaptive ? "on" : "off");
	}
	config_free(&fresh);
}

static bool
quitting(const Throttle *t)
{
	return atomic_load(&t->quit) || (t->stop != NULL && atomic_load(t->stop));
}

static void *
throttle_main(void *arg)
{
	Throttle *t = arg;

	log_set_role("throttle");
	while (!quitting(t))
	{
		int64_t now;

		if (t->reload.pending != NULL && t->reload.pending())
			reread(t);
		sample_rate(t);
		now = clock_ms();
		if (t->tc.adaptive && now >= t->next_probe_ms)
		{
			t->next_probe_ms = now + t->tc.probe_interval_ms;
			probe_and_decide(t);
		}
		clock_sleep_ms(LOOK_MS);
	}
	pg_close(t->probe);
	t->probe = NULL;
	return NULL;
}

bool
throttle_start(const TaskConfig *cfg, Gate *gate, atomic_int *stop,
               const ThrottleReload *reload, Throttle **out, Error *err)
{
	Throttle *t = calloc(1, sizeof(*t));
	ThrottleConfig tc;

	*out = NULL;
	if (t == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	t->cfg = cfg;
	t->gate = gate;
	t->stop = stop;
	if (reload != NULL)
		t->reload = *reload;
	atomic_init(&t->quit, false);
	pthread_mutex_init(&t->lock, NULL);
	if (!copy_settings(&tc, &cfg->throttle, err))
	{
		pthread_mutex_destroy(&t->lock);
		free(t);
		return false;
	}
	take_settings(t, &tc);
	if (t->tc.copy_workers > 0 || t->tc.rows_per_s > 0 ||
	    t->tc.bytes_per_s > 0 || t->tc.index_builds > 0)
	{
		char caps[THROTTLE_TEXT_MAX];

		describe_caps(&t->tc, caps, sizeof(caps));
		log_info("throttle: %s", caps);
	}
	if (t->tc.adaptive)
		log_info("throttle: adaptive, probing the source every %d ms "
		         "against a %d ms bound%s",
		         t->tc.probe_interval_ms, t->tc.probe_latency_ms,
		         t->tc.probe_query != NULL ? ", with throttle.probe_query"
		                                   : "");
	if (pthread_create(&t->thread, NULL, throttle_main, t) != 0)
	{
		free(t->tc.probe_query);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return err_set(err, ERR_INTERNAL, "could not start the throttle");
	}
	pthread_mutex_lock(&current_lock);
	current = t;
	pthread_mutex_unlock(&current_lock);
	*out = t;
	return true;
}

void
throttle_stop(Throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&current_lock);
	if (current == t)
		current = NULL;
	pthread_mutex_unlock(&current_lock);
	atomic_store(&t->quit, true);
	pthread_join(t->thread, NULL);
	gate_set_factor(t->gate, 1.0);
	free(t->tc.probe_query);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

bool
throttle_read(ThrottleState *out)
{
	bool found = false;

	pthread_mutex_lock(&current_lock);
	if (current != NULL)
	{
		pthread_mutex_lock(&current->lock);
		*out = current->st;
		pthread_mutex_unlock(&current->lock);
		gate_read(current->gate, &out->gate);
		found = true;
	}
	pthread_mutex_unlock(&current_lock);
	return found;
}

/* Appends to buf what fmt says; false once it no longer fits. */
static bool __attribute__((format(printf, 4, 5)))
add(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= cap)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, cap - *used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= cap - *used)
		return false;
	*used += (size_t) n;
	return true;
}

/* "key":"text" escaped, or "key":null when text is empty. */
static bool
add_text(char *buf, size_t cap, size_t *used, const char *key, const char *text)
{
	char esc[THROTTLE_TEXT_MAX * 6 + 3];

	if (text[0] == '\0')
		return add(buf, cap, used, "\"%s\":null,", key);
	json_escape(esc, sizeof(esc), text);
	return add(buf, cap, used, "\"%s\":\"%s\",", key, esc);
}

/* A latency in ms, or null before the first probe. */
static bool
add_ms(char *buf, size_t cap, size_t *used, const char *key, int64_t ms)
{
	if (ms < 0)
		return add(buf, cap, used, "\"%s\":null,", key);
	return add(buf, cap, used, "\"%s\":%lld,", key, (long long) ms);
}

bool
throttle_format_json(const ThrottleState *st, char *buf, size_t cap)
{
	size_t used = 0;

	return add(buf, cap, &used, "{\"state\":\"%s\",\"factor\":%.4g,",
	           throttle_mode_name(st->mode), st->factor) &&
	       add_text(buf, cap, &used, "reason", st->reason) &&
	       add(buf, cap, &used,
	           "\"adaptive\":%s,\"probe_latency_bound_ms\":%d,"
	           "\"probe_interval_ms\":%d,\"probe_query\":%s,",
	           st->mode == THROTTLE_OFF ? "false" : "true", st->bound_ms,
	           st->interval_ms, st->user_probe ? "true" : "false") &&
	       add_ms(buf, cap, &used, "probe_last_ms", st->last_ms) &&
	       add_ms(buf, cap, &used, "probe_window_ms", st->window_ms) &&
	       add_ms(buf, cap, &used, "probe_p95_ms", st->p95_ms) &&
	       add_text(buf, cap, &used, "probe_error", st->probe_error) &&
	       add(buf, cap, &used,
	           "\"probes\":%lld,\"slowdowns\":%lld,"
	           "\"caps\":{\"copy_workers\":%d,\"rows_per_second\":%lld,"
	           "\"bytes_per_second\":%lld,\"index_builds\":%d},"
	           "\"copy_workers_running\":%d,\"copy_workers_waiting\":%d,"
	           "\"index_builds_running\":%d,\"rows\":%lld,\"bytes\":%lld,"
	           "\"waited_ms\":%lld}",
	           (long long) st->probes, (long long) st->slowdowns,
	           st->caps.workers, (long long) st->caps.rows_per_s,
	           (long long) st->caps.bytes_per_s, st->caps.builds,
	           st->gate.active, st->gate.waiting, st->gate.builds_active,
	           (long long) st->gate.rows, (long long) st->gate.bytes,
	           (long long) st->gate.slept_ms);
}
