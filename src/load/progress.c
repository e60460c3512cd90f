/*
 * progress: a thread that samples copy counters and renders them, and
 * hands the summary line to a service manager that asked for it (STATUS=).
 */
#include "load/progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/units.h"

#define PROGRESS_LIVE_TABLES 6

struct Progress
{
	const CopyTable *tables;
	int64_t *est;
	int n;
	int interval_s;
	bool terminal;
	int drawn_lines; /* lines of the live block on screen */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	int64_t start_ms;
	int64_t last_ms;
	int64_t last_bytes;
	double rate;         /* bytes/s, smoothed */
	int64_t *table_last; /* per table: bytes at the last sample */
	double *table_rate;  /* per table: bytes/s, smoothed */
	int64_t *started_ms; /* per table: first sample that saw it move */
};

/* A table's fraction done, capped below 1 until its last chunk lands. */
static double
table_fraction(const Progress *p, int i)
{
	int64_t done = atomic_load(&p->tables[i].bytes_done);
	double f;

	if (atomic_load(&p->tables[i].chunks_left) == 0)
		return 1.0;
	f = p->est[i] > 0 ? (double) done / (double) p->est[i] : 0;
	return f > 0.99 ? 0.99 : f;
}

/*
 * COPY bytes and on-disk sizes differ, so time left is extrapolated from the
 * fraction done and the time it took, not from a byte rate.
 */
static double
eta_seconds(double fraction, int64_t since_ms, int64_t now_ms)
{
	if (fraction <= 0.001 || since_ms <= 0)
		return -1;
	return (double) (now_ms - since_ms) / 1000.0 * (1 - fraction) / fraction;
}

static void
smooth(double *rate, int64_t delta, int64_t ms)
{
	double inst = ms > 0 ? (double) delta * 1000.0 / (double) ms : 0;

	*rate = *rate == 0 ? inst : 0.7 * *rate + 0.3 * inst;
}

/* Samples the counters: rates, and when each table started moving. */
static void
sample(Progress *p, int64_t now)
{
	int64_t ms = now - p->last_ms;
	int64_t total = 0;

	for (int i = 0; i < p->n; i++)
	{
		int64_t b = atomic_load(&p->tables[i].bytes_done);

		if (b > 0 && p->started_ms[i] == 0)
			p->started_ms[i] = now;
		smooth(&p->table_rate[i], b - p->table_last[i], ms);
		p->table_last[i] = b;
		total += b;
	}
	smooth(&p->rate, total - p->last_bytes, ms);
	p->last_bytes = total;
	p->last_ms = now;
}

/* One table's line: rows, bytes, rate, percent, ETA. */
static void
table_line(const Progress *p, int i, int64_t now, char *buf, size_t cap)
{
	char b[32], r[32], eta[32];
	double f = table_fraction(p, i);

	units_format_bytes(atomic_load(&p->tables[i].bytes_done), b, sizeof(b));
	units_format_bytes((int64_t) p->table_rate[i], r, sizeof(r));
	units_format_eta(eta_seconds(f, p->started_ms[i], now), eta, sizeof(eta));
	snprintf(buf, cap, "%-40.40s %11lld rows %9s %9s/s %3.0f%% ETA %s",
	         p->tables[i].src_qname,
	         (long long) atomic_load(&p->tables[i].rows_done), b, r, 100 * f,
	         eta);
}

static bool
in_flight(const Progress *p, int i)
{
	return atomic_load(&p->tables[i].bytes_done) > 0 &&
	       atomic_load(&p->tables[i].chunks_left) > 0;
}

static void
render(Progress *p, bool final)
{
	int64_t now = clock_ms();
	int64_t bytes = 0, rows = 0, est = 0;
	double done_est = 0;
	int tables_done = 0;
	char line[512], b1[32], b2[32], b3[32], eta[32];
	char block[4096];
	size_t len = 0;
	int lines = 0;

	sample(p, now);
	for (int i = 0; i < p->n; i++)
	{
		bytes += atomic_load(&p->tables[i].bytes_done);
		rows += atomic_load(&p->tables[i].rows_done);
		est += p->est[i];
		done_est += table_fraction(p, i) * (double) p->est[i];
		tables_done += atomic_load(&p->tables[i].chunks_left) == 0;
	}
	units_format_bytes(bytes, b1, sizeof(b1));
	units_format_bytes((int64_t) p->rate, b2, sizeof(b2));
	units_format_bytes(est, b3, sizeof(b3));
	{
		/* the load ends no sooner than its slowest table in flight */
		double left = eta_seconds(est > 0 ? done_est / (double) est : 0,
		                          p->start_ms, now);

		for (int i = 0; i < p->n; i++)
			if (in_flight(p, i))
			{
				double t =
				    eta_seconds(table_fraction(p, i), p->started_ms[i], now);

				if (t > left)
					left = t;
			}
		units_format_eta(left, eta, sizeof(eta));
	}
	snprintf(line, sizeof(line),
	         "load: %d/%d tables, %lld rows, %s of ~%s on disk, %s/s, ETA %s",
	         tables_done, p->n, (long long) rows, b1, b3, b2,
	         final ? "done" : eta);
	notify_status("%s", line);
	if (!p->terminal)
	{
		log_info("%s", line);
		for (int i = 0; i < p->n && !final; i++)
			if (in_flight(p, i))
			{
				table_line(p, i, now, line, sizeof(line));
				log_info("  %s", line);
			}
		return;
	}
	/* move up over the previous block, then redraw it */
	for (int i = 0; i < p->drawn_lines; i++)
		len += (size_t) snprintf(block + len, sizeof(block) - len, "\033[A");
	len += (size_t) snprintf(block + len, sizeof(block) - len, "\r\033[J%s\n",
	                         line);
	lines++;
	for (int i = 0; i < p->n && !final && lines <= PROGRESS_LIVE_TABLES; i++)
	{
		if (!in_flight(p, i) || len >= sizeof(block) - 300)
			continue;
		table_line(p, i, now, line, sizeof(line));
		len +=
		    (size_t) snprintf(block + len, sizeof(block) - len, "  %s\n", line);
		lines++;
	}
	if (write(STDERR_FILENO, block, len) < 0)
		return;
	p->drawn_lines = lines;
}

static void *
progress_main(void *arg)
{
	Progress *p = arg;
	int period_s = p->terminal ? 1 : p->interval_s;

	log_set_role("progress");
	pthread_mutex_lock(&p->lock);
	while (!p->stop)
	{
		struct timespec until = clock_deadline((int64_t) period_s * 1000);

		while (!p->stop &&
		       pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
			;
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		render(p, false);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void
progress_free(Progress *p)
{
	free(p->est);
	free(p->table_last);
	free(p->table_rate);
	free(p->started_ms);
	free(p);
}

Progress *
progress_start(const CopyTable *tables, const int64_t *est_bytes, int n,
               int interval_s, bool terminal)
{
	Progress *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->est = calloc((size_t) n + 1, sizeof(int64_t));
	p->table_last = calloc((size_t) n + 1, sizeof(int64_t));
	p->table_rate = calloc((size_t) n + 1, sizeof(double));
	p->started_ms = calloc((size_t) n + 1, sizeof(int64_t));
	if (p->est == NULL || p->table_last == NULL || p->table_rate == NULL ||
	    p->started_ms == NULL)
	{
		progress_free(p);
		return NULL;
	}
	memcpy(p->est, est_bytes, sizeof(int64_t) * (size_t) n);
	p->tables = tables;
	p->n = n;
	p->interval_s = interval_s > 0 ? interval_s : 10;
	p->terminal = terminal;
	p->start_ms = p->last_ms = clock_ms();
	pthread_mutex_init(&p->lock, NULL);
	clock_cond_init(&p->wake);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0)
	{
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->wake);
		progress_free(p);
		return NULL;
	}
	return p;
}

void
progress_stop(Progress *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	render(p, true);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	progress_free(p);
}
