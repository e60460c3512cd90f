/*
 * pool: a fixed set of worker threads started and joined together, the
 * first failure among them, and the flag that tells the others to stop.
 * Copy workers, post-data builders and validate workers all run in one.
 * Base layer: no libpq; what the workers do is the caller's.
 *
 *   pool_start ──► workers run; any calls pool_fail ──► pool_join
 *                  (first error kept, pool_stopping()    (every started
 *                   true for all from then on)            thread joined)
 */
#ifndef PGTIDE_POOL_H
#define PGTIDE_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* Most threads in one pool: far above what two to a few dozen cores use. */
#define POOL_MAX_THREADS 256

typedef struct Pool
{
	pthread_t threads[POOL_MAX_THREADS];
	int started;
	atomic_bool failed;   /* a worker failed: the others stop soon */
	pthread_mutex_t lock; /* guards err */
	Error err;            /* the first failure */
	atomic_int *stop;     /* the process's stop request, or NULL */
} Pool;

/*
 * Starts n threads (capped at POOL_MAX_THREADS), thread i running
 * main(workers + i * worker_size); stop is the process's stop request
 * (may be NULL). A thread that cannot start is a failure of the pool: the
 * ones started run on (and should see pool_stopping()), and pool_join
 * reports it. Returns false (with err) only when none started; then there
 * is nothing to join.
 */
bool pool_start(Pool *p, int n, void *(*main)(void *), void *workers,
                size_t worker_size, atomic_int *stop, const char *what,
                Error *err);

/*
 * Records a worker's failure: the first one is kept, later ones are
 * dropped (they usually follow from it). Any thread may call it.
 */
void pool_fail(Pool *p, const Error *e);

/* Whether workers should stop: a failure, or the process's stop request. */
bool pool_stopping(const Pool *p);

/*
 * Joins every started thread and frees the pool's lock. Returns false with
 * the first failure, or ERR_INTERRUPTED when the stop request was set.
 */
bool pool_join(Pool *p, Error *err);

#endif
