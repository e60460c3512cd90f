/*
 * Unit tests for gate: a hold keeps workers out until every holder let go,
 * the worker cap and its factor bound the places, a stop ends a wait, and a
 * rate cap makes the caller wait, the build cap bounds index builds alone,
 * and every pass is counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/clock.h"
#include "base/gate.h"

typedef struct Entrant
{
	Gate *gate;
	atomic_int *stop;
	atomic_bool entered;
	bool result;
} Entrant;

static void *
enter(void *arg)
{
	Entrant *e = arg;

	e->result = gate_enter(e->gate, e->stop);
	atomic_store(&e->entered, true);
	return NULL;
}

/* Waits (a bounded while) for the thread to be past gate_enter. */
static bool
entered_soon(Entrant *e)
{
	for (int i = 0; i < 500 && !atomic_load(&e->entered); i++)
		clock_sleep_ms(2);
	return atomic_load(&e->entered);
}

static void
test_holds_keep_workers_out(void **state)
{
	Gate g;
	Entrant e = {.gate = &g};
	pthread_t t;
	GateState s;

	(void) state;
	gate_init(&g);
	gate_hold(&g, GATE_WAL, "retained WAL 3 GB over 2 GB");
	gate_hold(&g, GATE_OPERATOR, "asked");
	gate_read(&g, &s);
	assert_true(s.held);
	assert_string_equal(s.reason, "retained WAL 3 GB over 2 GB");
	assert_int_equal(pthread_create(&t, NULL, enter, &e), 0);
	clock_sleep_ms(50);
	assert_false(atomic_load(&e.entered));
	gate_release(&g, GATE_WAL);
	clock_sleep_ms(50);
	assert_false(atomic_load(&e.entered)); /* the other holder still holds */
	gate_release(&g, GATE_OPERATOR);
	assert_true(entered_soon(&e));
	pthread_join(t, NULL);
	assert_true(e.result);
	gate_read(&g, &s);
	assert_false(s.held);
	assert_int_equal(s.active, 1);
	gate_leave(&g);
	gate_destroy(&g);
}

static void
test_worker_cap_and_factor(void **state)
{
	Gate g;
	GateCaps caps = {.workers = 4};
	Entrant e = {.gate = &g};
	pthread_t t;

	(void) state;
	gate_init(&g);
	gate_set_caps(&g, &caps);
	gate_set_factor(&g, 0.5); /* 4 * 0.5: two places */
	assert_true(gate_enter(&g, NULL));
	assert_true(gate_enter(&g, NULL));
	assert_int_equal(pthread_create(&t, NULL, enter, &e), 0);
	clock_sleep_ms(50);
	assert_false(atomic_load(&e.entered));
	gate_set_factor(&g, 1.0); /* the throttle lets go: four places */
	assert_true(entered_soon(&e));
	pthread_join(t, NULL);
	gate_set_factor(&g, 0.0); /* clamped: never below one place */
	gate_leave(&g);
	gate_leave(&g);
	gate_leave(&g);
	assert_true(gate_enter(&g, NULL));
	gate_leave(&g);
	gate_destroy(&g);
}

static void
test_stop_ends_the_wait(void **state)
{
	Gate g;
	atomic_int stop;
	Entrant e = {.gate = &g, .stop = &stop};
	pthread_t t;

	(void) state;
	atomic_init(&stop, 0);
	gate_init(&g);
	gate_hold(&g, GATE_WAL, "held");
	assert_int_equal(pthread_create(&t, NULL, enter, &e), 0);
	clock_sleep_ms(30);
	atomic_store(&stop, 1);
	assert_true(entered_soon(&e));
	pthread_join(t, NULL);
	assert_false(e.result);
	gate_destroy(&g);
}

static void
test_rate_cap_makes_the_caller_wait(void **state)
{
	Gate g;
	GateCaps caps = {.rows_per_s = 1000};
	GateState s;

	(void) state;
	gate_init(&g);
	gate_pass(&g, 5000, 1, NULL); /* no cap yet: no wait */
	gate_read(&g, &s);
	assert_int_equal(s.slept_ms, 0);
	gate_set_caps(&g, &caps);
	gate_pass(&g, 100, 1, NULL);
	gate_pass(&g, 100, 1, NULL);
	gate_read(&g, &s);
	/* 200 rows at 1000 a second: the window must last 200 ms */
	assert_true(s.slept_ms > 0);
	assert_true(s.slept_ms <= 200);
	gate_destroy(&g);
}

typedef struct Builder
{
	Gate *gate;
	atomic_bool entered;
} Builder;

static void *
enter_build(void *arg)
{
	Builder *b = arg;

	gate_enter_build(b->gate, NULL);
	atomic_store(&b->entered, true);
	return NULL;
}

static void
test_build_cap_ignores_holds_and_factor(void **state)
{
	Gate g;
	GateCaps caps = {.builds = 1};
	Builder b = {.gate = &g};
	pthread_t t;
	GateState s;

	(void) state;
	gate_init(&g);
	gate_hold(&g, GATE_WAL, "held"); /* builds run on the target only */
	gate_set_factor(&g, 0.05);
	gate_set_caps(&g, &caps);
	assert_true(gate_enter_build(&g, NULL));
	assert_int_equal(pthread_create(&t, NULL, enter_build, &b), 0);
	clock_sleep_ms(50);
	assert_false(atomic_load(&b.entered));
	caps.builds = 2; /* a new cap lets the waiting build in */
	gate_set_caps(&g, &caps);
	for (int i = 0; i < 500 && !atomic_load(&b.entered); i++)
		clock_sleep_ms(2);
	assert_true(atomic_load(&b.entered));
	pthread_join(t, NULL);
	gate_read(&g, &s);
	assert_int_equal(s.builds_active, 2);
	assert_int_equal(s.active, 0);
	gate_leave_build(&g);
	gate_leave_build(&g);
	gate_read(&g, &s);
	assert_int_equal(s.builds_active, 0);
	gate_destroy(&g);
}

static void
test_pass_counts_without_caps(void **state)
{
	Gate g;
	GateState s;

	(void) state;
	gate_init(&g);
	gate_pass(&g, 128, 4096, NULL);
	gate_pass(&g, 2, 10, NULL);
	gate_read(&g, &s);
	assert_int_equal(s.rows, 130);
	assert_int_equal(s.bytes, 4106);
	assert_int_equal(s.slept_ms, 0);
	gate_destroy(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_holds_keep_workers_out),
	    cmocka_unit_test(test_worker_cap_and_factor),
	    cmocka_unit_test(test_stop_ends_the_wait),
	    cmocka_unit_test(test_rate_cap_makes_the_caller_wait),
	    cmocka_unit_test(test_build_cap_ignores_holds_and_factor),
	    cmocka_unit_test(test_pass_counts_without_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
