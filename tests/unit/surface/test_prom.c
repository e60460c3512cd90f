/*
 * Unit tests of prom, the Prometheus text writer: label values and HELP
 * text escaped as the exposition format 0.0.4 says (backslash, double quote,
 * newline), the lines of a family and a sample, values spelled as the
 * format reads them, and the cap.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "surface/prom.h"

static void
check_label(const char *value, const char *want)
{
	Buf b = BUF_INIT(256);
	Error err = ERR_INIT;

	assert_true(prom_escape_label(&b, value, &err));
	assert_string_equal(buf_str(&b), want);
	buf_free(&b);
}

static void
test_label_escaping(void **state)
{
	(void) state;
	check_label("plain", "plain");
	check_label("", "");
	check_label("a\\b", "a\\\\b");
	check_label("say \"hi\"", "say \\\"hi\\\"");
	check_label("two\nlines", "two\\nlines");
	check_label("\\\"\n", "\\\\\\\"\\n");
	check_label("public.odd \"na\\me\"", "public.odd \\\"na\\\\me\\\"");
	/* everything else is UTF-8 as it is, tabs and carriage returns too */
	check_label("tab\there\r, ünï", "tab\there\r, ünï");
	check_label(NULL, "");
}

static void
test_family_and_samples(void **state)
{
	Buf b = BUF_INIT(1024);
	Error err = ERR_INIT;
	PromLabel l[2] = {{"task", "t1"}, {"table", "s.\"x\"\n"}};

	(void) state;
	assert_true(prom_family(&b, "pgtide_rows_total", PROM_COUNTER,
	                        "Rows \"copied\"\nwith \\ in help.", &err));
	assert_true(prom_sample(&b, "pgtide_rows_total", l, 2, 42, &err));
	assert_true(prom_sample(&b, "pgtide_rows_total", NULL, 0, 0, &err));
	assert_true(
	    prom_family(&b, "pgtide_lag_seconds", PROM_GAUGE, "Lag.", &err));
	assert_true(prom_sample(&b, "pgtide_lag_seconds", l, 1, 0.25, &err));
	assert_true(prom_sample(&b, "pgtide_lag_seconds", l, 1, NAN, &err));
	assert_true(prom_sample(&b, "pgtide_lag_seconds", l, 1, -INFINITY, &err));
	assert_true(prom_sample(&b, "pgtide_lag_seconds", l, 1, 1e300, &err));
	assert_true(
	    prom_sample(&b, "pgtide_lag_seconds", l, 1, 9007199254740992.0, &err));
	assert_string_equal(
	    buf_str(&b),
	    /* HELP escapes backslash and newline, not quotes */
	    "# HELP pgtide_rows_total Rows \"copied\"\\nwith \\\\ in help.\n"
	    "# TYPE pgtide_rows_total counter\n"
	    "pgtide_rows_total{task=\"t1\",table=\"s.\\\"x\\\"\\n\"} 42\n"
	    "pgtide_rows_total 0\n"
	    "# HELP pgtide_lag_seconds Lag.\n"
	    "# TYPE pgtide_lag_seconds gauge\n"
	    "pgtide_lag_seconds{task=\"t1\"} 0.25\n"
	    "pgtide_lag_seconds{task=\"t1\"} NaN\n"
	    "pgtide_lag_seconds{task=\"t1\"} -Inf\n"
	    "pgtide_lag_seconds{task=\"t1\"} 1.0000000000000001e+300\n"
	    "pgtide_lag_seconds{task=\"t1\"} 9007199254740992\n");
	buf_free(&b);
}

static void
test_cap(void **state)
{
	Buf b = BUF_INIT(16);
	Error err = ERR_INIT;

	(void) state;
	assert_false(prom_escape_label(&b, "\"\"\"\"\"\"\"\"\"\"", &err));
	assert_true(err_is_set(&err));
	/* a failed Buf stays failed: no line is ever written in part */
	err_clear(&err);
	assert_false(prom_sample(&b, "x", NULL, 0, 1, &err));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_escaping),
	    cmocka_unit_test(test_family_and_samples),
	    cmocka_unit_test(test_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
