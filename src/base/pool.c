/*
 * pool: start, fail, stop and join a set of worker threads.
 */
#include "base/pool.h"

#include <string.h>

bool
pool_start(Pool *p, int n, void *(*main)(void *), void *workers,
           size_t worker_size, atomic_int *stop, const char *what, Error *err)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	atomic_init(&p->failed, false);
	p->stop = stop;
	if (n > POOL_MAX_THREADS)
		n = POOL_MAX_THREADS;
	for (int i = 0; i < n; i++)
	{
		void *arg = (char *) workers + (size_t) i * worker_size;

		if (pthread_create(&p->threads[i], NULL, main, arg) != 0)
		{
			Error e = ERR_INIT;

			err_set(&e, ERR_INTERNAL, "could not start %s %d", what, i + 1);
			pool_fail(p, &e);
			break;
		}
		p->started++;
	}
	if (p->started == 0)
	{
		*err = p->err;
		pthread_mutex_destroy(&p->lock);
		return false;
	}
	return true;
}

void
pool_fail(Pool *p, const Error *e)
{
	pthread_mutex_lock(&p->lock);
	if (!err_is_set(&p->err))
		p->err = *e;
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->failed, true);
}

bool
pool_stopping(const Pool *p)
{
	return atomic_load(&p->failed) || (p->stop != NULL && atomic_load(p->stop));
}

bool
pool_join(Pool *p, Error *err)
{
	for (int i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	p->started = 0;
	pthread_mutex_destroy(&p->lock);
	if (err_is_set(&p->err))
	{
		*err = p->err;
		return false;
	}
	if (p->stop != NULL && atomic_load(p->stop))
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return true;
}
