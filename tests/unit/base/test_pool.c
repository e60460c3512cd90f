/*
 * Unit tests for pool: every worker runs and is joined, the first failure
 * is the pool's, a failure or a stop request reaches every worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/pool.h"

typedef struct TWorker
{
	Pool *pool;
	int id;
	int fail_as; /* 0: succeed; else fail with this number in the message */
	bool ran;
	bool saw_stop;
} TWorker;

static void *
worker(void *arg)
{
	TWorker *w = arg;

	w->ran = true;
	if (w->fail_as != 0)
	{
		Error e = ERR_INIT;

		/* later failures come after the first is kept */
		clock_sleep_ms(w->fail_as * 20);
		err_set(&e, ERR_TARGET, "worker %d failed", w->fail_as);
		pool_fail(w->pool, &e);
		return NULL;
	}
	for (int i = 0; i < 500 && !pool_stopping(w->pool); i++)
		clock_sleep_ms(2);
	w->saw_stop = pool_stopping(w->pool);
	return NULL;
}

static void
test_all_run_and_join(void **state)
{
	Pool p;
	TWorker ws[8];
	Error err = ERR_INIT;

	(void) state;
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < 8; i++)
		ws[i].pool = &p;
	assert_true(
	    pool_start(&p, 8, worker, ws, sizeof(TWorker), NULL, "test", &err));
	assert_int_equal(p.started, 8);
	assert_true(pool_join(&p, &err));
	for (int i = 0; i < 8; i++)
		assert_true(ws[i].ran);
}

static void
test_first_failure_stops_all(void **state)
{
	Pool p;
	TWorker ws[4];
	Error err = ERR_INIT;

	(void) state;
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < 4; i++)
		ws[i].pool = &p;
	ws[1].fail_as = 1;
	ws[3].fail_as = 3;
	assert_true(
	    pool_start(&p, 4, worker, ws, sizeof(TWorker), NULL, "test", &err));
	assert_false(pool_join(&p, &err));
	assert_string_equal(err.message, "worker 1 failed");
	assert_true(ws[0].saw_stop);
	assert_true(ws[2].saw_stop);
}

static void
test_stop_request(void **state)
{
	Pool p;
	TWorker ws[2];
	atomic_int stop;
	Error err = ERR_INIT;

	(void) state;
	memset(ws, 0, sizeof(ws));
	ws[0].pool = ws[1].pool = &p;
	atomic_init(&stop, 1);
	assert_true(
	    pool_start(&p, 2, worker, ws, sizeof(TWorker), &stop, "test", &err));
	assert_false(pool_join(&p, &err));
	assert_int_equal(err.kind, ERR_INTERRUPTED);
	assert_true(ws[0].saw_stop && ws[1].saw_stop);
}

static void
test_deadline_is_ahead(void **state)
{
	struct timespec now, later;

	(void) state;
	clock_gettime(CLOCK_MONOTONIC, &now);
	later = clock_deadline(1500);
	assert_true(later.tv_nsec >= 0 && later.tv_nsec < 1000000000L);
	assert_true(later.tv_sec >= now.tv_sec + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_run_and_join),
	    cmocka_unit_test(test_first_failure_stops_all),
	    cmocka_unit_test(test_stop_request),
	    cmocka_unit_test(test_deadline_is_ahead),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
