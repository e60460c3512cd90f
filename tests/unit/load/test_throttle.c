/*
 * Unit tests for the throttle's pure parts: the adaptive rule (half down
 * while over the bound, a tenth up while under 80% of it, held between)
 * and its JSON for status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "load/throttle.h"

static void
test_decide_down_and_up(void **state)
{
	ThrottleMode m;
	double f;

	(void) state;
	/* adaptive mode off: nothing moves */
	throttle_decide(THROTTLE_OFF, 1.0, 500, 100, &m, &f);
	assert_int_equal(m, THROTTLE_OFF);
	assert_true(f == 1.0);
	/* under the bound while open: stays open */
	throttle_decide(THROTTLE_OPEN, 1.0, 50, 100, &m, &f);
	assert_int_equal(m, THROTTLE_OPEN);
	assert_true(f == 1.0);
	/* over it: half, and half again, never under 5% */
	throttle_decide(THROTTLE_OPEN, 1.0, 101, 100, &m, &f);
	assert_int_equal(m, THROTTLE_SLOWING);
	assert_true(f == 0.5);
	throttle_decide(THROTTLE_SLOWING, 0.5, 300, 100, &m, &f);
	assert_true(f == 0.25);
	throttle_decide(THROTTLE_SLOWING, 0.06, 300, 100, &m, &f);
	assert_true(f == 0.05);
	/* between 80% of the bound and the bound: held */
	throttle_decide(THROTTLE_SLOWING, 0.25, 90, 100, &m, &f);
	assert_int_equal(m, THROTTLE_SLOWING);
	assert_true(f == 0.25);
	/* under 80%: a tenth up, then open again at 1 */
	throttle_decide(THROTTLE_SLOWING, 0.25, 80, 100, &m, &f);
	assert_int_equal(m, THROTTLE_RECOVERING);
	assert_true(f > 0.349 && f < 0.351);
	throttle_decide(THROTTLE_RECOVERING, 0.95, 10, 100, &m, &f);
	assert_int_equal(m, THROTTLE_OPEN);
	assert_true(f == 1.0);
	/* over the bound while recovering: slowing again */
	throttle_decide(THROTTLE_RECOVERING, 0.6, 200, 100, &m, &f);
	assert_int_equal(m, THROTTLE_SLOWING);
	assert_true(f == 0.3);
}

static void
test_json(void **state)
{
	ThrottleState st;
	char buf[THROTTLE_JSON_MAX];

	(void) state;
	memset(&st, 0, sizeof(st));
	st.mode = THROTTLE_SLOWING;
	st.factor = 0.5;
	st.bound_ms = 100;
	st.interval_ms = 1000;
	st.last_ms = 230;
	st.window_ms = 220;
	st.p95_ms = -1;
	st.caps.rows_per_s = 500;
	snprintf(st.reason, sizeof(st.reason), "over \"100 ms\"");
	assert_true(throttle_format_json(&st, buf, sizeof(buf)));
	assert_string_equal(
	    buf, "{\"state\":\"slowing\",\"factor\":0.5,\"reason\":\"over "
	         "\\\"100 ms\\\"\",\"adaptive\":true,"
	         "\"probe_latency_bound_ms\":100,\"probe_interval_ms\":1000,"
	         "\"probe_query\":false,\"probe_last_ms\":230,"
	         "\"probe_window_ms\":220,\"probe_p95_ms\":null,"
	         "\"probe_error\":null,\"probes\":0,\"slowdowns\":0,"
	         "\"caps\":{\"copy_workers\":0,\"rows_per_second\":500,"
	         "\"bytes_per_second\":0,\"index_builds\":0},"
	         "\"copy_workers_running\":0,\"copy_workers_waiting\":0,"
	         "\"index_builds_running\":0,\"rows\":0,\"bytes\":0,"
	         "\"waited_ms\":0}");
	/* too small a buffer: refused, not cut */
	assert_false(throttle_format_json(&st, buf, 40));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decide_down_and_up),
	    cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
