/*
 * validate_pool: validate's worker threads. Each worker opens its own
 * source and target sessions and takes jobs from the run under its lock:
 * plan a table, or compare one of its ranges; a job that failed in a way a
 * new connection may cure is tried again on new ones. Findings are merged
 * into their table under the lock; the calling thread logs progress until
 * every worker is done. No connection crosses threads, and nothing here
 * decides what differs.
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/pool.h"
#include "base/units.h"
#include "pg/pg.h"

#define VALIDATE_JOB_TRIES 3

typedef enum VJobKind
{
	VJOB_PLAN,
	VJOB_RANGE,
} VJobKind;

typedef struct VJob
{
	VJobKind kind;
	int table;
	int range; /* VJOB_RANGE: index among nbounds + 1 */
} VJob;

/*
 * The next job, or false when there is nothing left (or the run failed or
 * was stopped). Waits while other workers may still plan ranges.
 */
static bool
take_job(VRun *r, VJob *job)
{
	bool got = false;

	pthread_mutex_lock(&r->lock);
	for (;;)
	{
		if (r->failed || run_stopping(r))
			break;
		for (int i = r->first_open; i < r->next_plan && !got; i++)
		{
			VTable *t = &r->tables[i];

			if (t->planned && t->next_check < t->nchecked)
			{
				job->kind = VJOB_RANGE;
				job->table = i;
				job->range = t->checked[t->next_check++];
				got = true;
			}
		}
		while (r->first_open < r->next_plan &&
		       r->tables[r->first_open].planned &&
		       r->tables[r->first_open].next_check >=
		           r->tables[r->first_open].nchecked)
			r->first_open++;
		if (!got && r->next_plan < r->ntables)
		{
			job->kind = VJOB_PLAN;
			job->table = r->next_plan++;
			job->range = 0;
			got = true;
		}
		if (got || r->busy == 0)
			break;
		pthread_cond_wait(&r->cond, &r->lock);
	}
	if (got)
		r->busy++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return got;
}

static void
table_finished(VRun *r, VTable *t)
{
	t->done = true;
	r->tables_done++;
	strv_free(t->bounds, t->nbounds * t->nkeys);
	t->bounds = NULL;
	free(t->checked);
	t->checked = NULL;
	if (t->res.differences > 0 && t->status == VS_EQUAL)
		t->status = VS_DIFFERENT;
	if (t->status != VS_EQUAL)
		log_warn("table %s differs: %" PRId64 " rows on the source, %" PRId64
		         " on the target, %" PRId64 " %s",
		         t->name, t->res.rows_src, t->res.rows_tgt, t->res.differences,
		         r->mode == VALIDATE_COUNTS ? "rows apart" : "rows differ");
}

static bool
run_job(VWorker *w, const VJob *job, VResult *res, Error *err)
{
	VRun *r = w->run;
	VTable *t = &r->tables[job->table];

	if (job->kind == VJOB_PLAN)
	{
		char **bounds = NULL;
		int nbounds = 0, nchecked = 0;
		int *checked;

		if (!plan_ranges(w, t, job->table, &bounds, &nbounds, res, err))
			return false;
		checked = t->status == VS_EQUAL
		              ? plan_choose_ranges(
		                    nbounds + 1, r->cfg->validate_sample,
		                    (uint64_t) clock_wall_us() ^
		                        ((uint64_t) job->table * 0x9e3779b97f4a7c15ULL),
		                    &nchecked)
		              : calloc(1, sizeof(int));
		if (checked == NULL)
		{
			strv_free(bounds, nbounds * t->nkeys);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		pthread_mutex_lock(&r->lock);
		t->bounds = bounds;
		t->nbounds = nbounds;
		t->checked = checked;
		t->nchecked = nchecked;
		t->planned = true;
		r->ranges_total += nchecked;
		pthread_mutex_unlock(&r->lock);
		return true;
	}
	{
		int i = job->range, nk = t->nkeys;
		char *const *lo = i == 0 ? NULL : &t->bounds[(i - 1) * nk];
		char *const *hi = i == t->nbounds ? NULL : &t->bounds[i * nk];

		if (r->mode == VALIDATE_COUNTS)
			return range_compare_counts(w, t, res, err);
		if (!t->keyed)
			return keyless_compare(w, t, res, err);
		if (t->key_sensitive)
			return keyed_bucket_compare(w, t, res, err);
		return keyed_compare(w, t, lo, hi, 0, true, res, err);
	}
}

static void
finish_job(VRun *r, const VJob *job, VResult *res, bool ok, const Error *err)
{
	VTable *t = &r->tables[job->table];

	pthread_mutex_lock(&r->lock);
	r->busy--;
	if (!ok)
	{
		if (!r->failed)
		{
			r->failed = true;
			r->err = *err;
			err_prefix(&r->err, "table %s: ", t->name);
		}
	}
	else
	{
		result_merge(&t->res, res, t->nkeys);
		if (job->kind == VJOB_RANGE)
		{
			t->checks_done++;
			atomic_fetch_add(&r->ranges_done, 1);
		}
		if (t->planned && t->checks_done >= t->nchecked && !t->done)
			table_finished(r, t);
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void
close_conns(VWorker *w)
{
	pg_close(w->src);
	pg_close(w->tgt);
	w->src = NULL;
	w->tgt = NULL;
}

static void *
worker_main(void *arg)
{
	VWorker *w = arg;
	VRun *r = w->run;
	char role[24];
	VJob job;

	snprintf(role, sizeof(role), "validate-%d", w->id);
	log_set_role(role);
	while (take_job(r, &job))
	{
		VResult res = {0};
		Error err = ERR_INIT;
		bool ok = false;
		int nkeys = r->tables[job.table].nkeys;

		for (int attempt = 1;; attempt++)
		{
			ok = (w->src != NULL ||
			      query_open(r, ERR_SOURCE, true, &w->src, &err)) &&
			     (w->tgt != NULL ||
			      query_open(r, ERR_TARGET, true, &w->tgt, &err)) &&
			     run_job(w, &job, &res, &err);
			if (ok)
				break;
			/* a failed job leaves its connections mid-query */
			close_conns(w);
			result_free(&res, nkeys);
			if (!err.retryable || attempt >= VALIDATE_JOB_TRIES ||
			    run_stopping(r))
				break;
			log_warn("table %s: %s; retrying with new connections",
			         r->tables[job.table].name, err.message);
			err_clear(&err);
			clock_sleep_ms(1000);
		}
		finish_job(r, &job, &res, ok, &err);
		result_free(&res, nkeys);
		if (!ok)
			break;
	}
	close_conns(w);
	pthread_mutex_lock(&r->lock);
	r->workers_running--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Runs the workers until every table is compared; logs progress. */
bool
pool_run(VRun *r, Error *err)
{
	int n = r->cfg->copy_jobs > 0 ? r->cfg->copy_jobs : 1;
	VWorker *ws = calloc((size_t) n, sizeof(VWorker));
	double est_total = 0;
	int64_t last_log = clock_ms();
	Pool pool;
	Error ignored = ERR_INIT;

	if (ws == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < r->ntables; i++)
		est_total += r->tables[i].est_rows * r->cfg->validate_sample;
	for (int i = 0; i < n; i++)
	{
		ws[i].run = r;
		ws[i].id = i + 1;
	}
	/* workers count themselves out under the lock, so none can before
	   the count is set */
	pthread_mutex_lock(&r->lock);
	if (!pool_start(&pool, n, worker_main, ws, sizeof(VWorker), r->stop,
	                "validate worker", err))
	{
		pthread_mutex_unlock(&r->lock);
		free(ws);
		return false;
	}
	r->workers_running = pool.started;
	while (r->workers_running > 0)
	{
		struct timespec ts = clock_deadline(1000);

		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		if (clock_ms() - last_log >= r->cfg->progress_interval_s * 1000LL &&
		    r->workers_running > 0)
		{
			double secs = (double) (clock_ms() - r->started_ms) / 1000.0;
			double rows = (double) atomic_load(&r->rows_done);
			double rate = secs > 0 ? rows / secs : 0;
			char eta[32];

			units_format_eta(
			    rate > 0 && est_total > rows ? (est_total - rows) / rate : -1,
			    eta, sizeof(eta));
			log_info("validate: %d of %d tables done, %" PRId64 " of %" PRId64
			         " ranges planned so far, %.0f rows/s, ETA %s",
			         r->tables_done, r->ntables, atomic_load(&r->ranges_done),
			         r->ranges_total, rate, eta);
			last_log = clock_ms();
		}
	}
	pthread_mutex_unlock(&r->lock);
	/* a worker that could not start leaves the others the work: its error
	   is not the run's */
	pool_join(&pool, &ignored);
	free(ws);
	if (r->failed)
	{
		*err = r->err;
		return false;
	}
	if (run_stopping(r))
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return true;
}
