/*
 * Unit tests for log's ring of recent lines: only warnings and errors are
 * kept, the newest LOG_RECENT_MAX of them, oldest first, each with its
 * thread and a message cut at LOG_RECENT_MSG_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/log.h"

/*
 * The lines themselves go to stderr, where cmocka reports a failure: they
 * are sent to /dev/null while a test logs, and stderr is given back before
 * it asserts.
 */
static int saved_stderr = -1;

static void
quiet(void)
{
	int devnull = open("/dev/null", O_WRONLY);

	saved_stderr = dup(STDERR_FILENO);
	if (devnull >= 0)
	{
		dup2(devnull, STDERR_FILENO);
		close(devnull);
	}
}

static void
loud(void)
{
	if (saved_stderr >= 0)
	{
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
}

static void
test_ring_keeps_the_newest_warnings_and_errors(void **state)
{
	LogRecent got[LOG_RECENT_MAX + 5];
	char want[32];
	int n;

	(void) state;
	assert_int_equal(log_recent(got, LOG_RECENT_MAX), 0);
	quiet();
	log_set_role("apply");
	log_info("not kept");
	log_debug("not kept either");
	for (int i = 0; i < LOG_RECENT_MAX + 3; i++)
	{
		if (i % 2)
			log_error("line %d", i);
		else
			log_warn("line %d", i);
	}
	loud();
	n = log_recent(got, LOG_RECENT_MAX + 5);
	assert_int_equal(n, LOG_RECENT_MAX);
	for (int i = 0; i < n; i++)
	{
		snprintf(want, sizeof(want), "line %d", i + 3);
		assert_string_equal(got[i].message, want);
		assert_string_equal(got[i].thread, "apply");
		assert_int_equal(got[i].level,
		                 (i + 3) % 2 ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN);
		/* 2026-01-02T03:04:05.678Z */
		assert_int_equal(strlen(got[i].time), 24);
		assert_int_equal(got[i].time[10], 'T');
		assert_int_equal(got[i].time[23], 'Z');
	}
	/* a short cap gets the newest */
	assert_int_equal(log_recent(got, 2), 2);
	snprintf(want, sizeof(want), "line %d", LOG_RECENT_MAX + 2);
	assert_string_equal(got[1].message, want);
}

static void
test_long_message_is_cut(void **state)
{
	static char big[LOG_RECENT_MSG_MAX * 2];
	LogRecent got[LOG_RECENT_MAX];
	int n;

	(void) state;
	memset(big, 'x', sizeof(big) - 1);
	quiet();
	log_warn("%s", big);
	loud();
	n = log_recent(got, LOG_RECENT_MAX);
	assert_int_equal(strlen(got[n - 1].message), LOG_RECENT_MSG_MAX - 1);
	assert_string_equal(log_level_name(got[n - 1].level), "warning");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_keeps_the_newest_warnings_and_errors),
	    cmocka_unit_test(test_long_message_is_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
