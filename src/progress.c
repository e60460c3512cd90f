/*
 * progress: a thread that samples copy counters and renders them.
 */
#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

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
	double rate; /* bytes/s, smoothed */
};

void
progress_format_bytes(int64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double) bytes;
	int u = 0;

	while (v >= 1024 && u < 4)
	{
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void
format_eta(double seconds, char *buf, size_t cap)
{
	long s = (long) seconds;

	if (seconds < 0 || seconds > 360000)
		snprintf(buf, cap, "--:--");
	else if (s >= 3600)
		snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
}

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

static void
render(Progress *p, bool final)
{
	int64_t now = log_now_ms();
	int64_t bytes = 0, rows = 0, est = 0;
	double done_est = 0;
	int tables_done = 0;
	char line[512], b1[32], b2[32], b3[32], eta[32];
	char block[4096];
	size_t len = 0;
	int lines = 0;

	for (int i = 0; i < p->n; i++)
	{
		bytes += atomic_load(&p->tables[i].bytes_done);
		rows += atomic_load(&p->tables[i].rows_done);
		est += p->est[i];
		done_est += table_fraction(p, i) * (double) p->est[i];
		tables_done += atomic_load(&p->tables[i].chunks_left) == 0;
	}
	if (now > p->last_ms)
	{
		double inst = (double) (bytes - p->last_bytes) * 1000.0 /
		              (double) (now - p->last_ms);

		p->rate = p->rate == 0 ? inst : 0.7 * p->rate + 0.3 * inst;
	}
	p->last_ms = now;
	p->last_bytes = bytes;
	progress_format_bytes(bytes, b1, sizeof(b1));
	progress_format_bytes((int64_t) p->rate, b2, sizeof(b2));
	progress_format_bytes(est, b3, sizeof(b3));
	/* COPY bytes and on-disk sizes differ: extrapolate the fraction done */
	{
		double frac = est > 0 ? done_est / (double) est : 0;
		double elapsed_s = (double) (now - p->start_ms) / 1000.0;

		format_eta(frac > 0.001 ? elapsed_s * (1 - frac) / frac : -1, eta,
		           sizeof(eta));
	}
	snprintf(line, sizeof(line),
	         "load: %d/%d tables, %lld rows, %s of ~%s, %s/s, ETA %s",
	         tables_done, p->n, (long long) rows, b1, b3, b2,
	         final ? "done" : eta);
	if (!p->terminal)
	{
		log_info("%s", line);
		for (int i = 0; i < p->n; i++)
		{
			int64_t tb = atomic_load(&p->tables[i].bytes_done);

			if (tb == 0 || atomic_load(&p->tables[i].chunks_left) == 0)
				continue;
			progress_format_bytes(tb, b1, sizeof(b1));
			log_info("  %s: %lld rows, %s, %.0f%%", p->tables[i].src_qname,
			         (long long) atomic_load(&p->tables[i].rows_done), b1,
			         100 * table_fraction(p, i));
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
		int64_t tb = atomic_load(&p->tables[i].bytes_done);

		if (tb == 0 || atomic_load(&p->tables[i].chunks_left) == 0)
			continue;
		progress_format_bytes(tb, b1, sizeof(b1));
		len += (size_t) snprintf(
		    block + len, sizeof(block) - len,
		    "  %-40.40s %12lld rows %10s %3.0f%%\n", p->tables[i].src_qname,
		    (long long) atomic_load(&p->tables[i].rows_done), b1,
		    100 * table_fraction(p, i));
		lines++;
		if (len >= sizeof(block) - 200)
			break;
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
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period_s;
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

Progress *
progress_start(const CopyTable *tables, const int64_t *est_bytes, int n,
               int interval_s, bool terminal)
{
	Progress *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->est = calloc((size_t) n + 1, sizeof(int64_t));
	if (p->est == NULL)
	{
		free(p);
		return NULL;
	}
	memcpy(p->est, est_bytes, sizeof(int64_t) * (size_t) n);
	p->tables = tables;
	p->n = n;
	p->interval_s = interval_s > 0 ? interval_s : 10;
	p->terminal = terminal;
	p->start_ms = p->last_ms = log_now_ms();
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0)
	{
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->wake);
		free(p->est);
		free(p);
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
	free(p->est);
	free(p);
}
