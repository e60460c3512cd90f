/*
 * Unit tests of mapping: globs and table patterns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/mapping.h"

static void
test_glob(void **state)
{
	(void) state;
	assert_true(mapping_glob("*", ""));
	assert_true(mapping_glob("*", "abc"));
	assert_true(mapping_glob("a*c", "abbbc"));
	assert_true(mapping_glob("a?c", "abc"));
	assert_false(mapping_glob("a?c", "ac"));
	assert_true(mapping_glob("audit_*", "audit_2024"));
	assert_false(mapping_glob("audit_*", "xaudit_2024"));
	assert_true(mapping_glob("*_log", "a_b_log"));
	assert_false(mapping_glob("*_log", "a_b_logs"));
	assert_true(mapping_glob("[x]", "[x]"));
}

static void
test_pattern_default_schema(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_true(mapping_parse_pattern("orders", &p, &err));
	assert_string_equal(p.schema, "public");
	assert_string_equal(p.table, "orders");
	assert_true(mapping_pattern_match(&p, "public", "orders"));
	assert_false(mapping_pattern_match(&p, "other", "orders"));
	mapping_pattern_free(&p);
}

static void
test_pattern_quoted(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_true(
	    mapping_parse_pattern("\"My Schema\".\"Order.Items\"", &p, &err));
	assert_string_equal(p.schema, "My Schema");
	assert_string_equal(p.table, "Order.Items");
	mapping_pattern_free(&p);
	assert_true(mapping_parse_pattern("s*.\"a\"\"b\"", &p, &err));
	assert_string_equal(p.table, "a\"b");
	assert_true(mapping_pattern_match(&p, "sales", "a\"b"));
	mapping_pattern_free(&p);
}

static void
test_pattern_errors(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_false(mapping_parse_pattern("a.", &p, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, "invalid table pattern \"a.\"");
	err_clear(&err);
	assert_false(mapping_parse_pattern("\"open", &p, &err));
	err_clear(&err);
	assert_false(mapping_parse_pattern("a.b.c", &p, &err));
	err_clear(&err);
	assert_false(mapping_parse_pattern("", &p, &err));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_pattern_default_schema),
	    cmocka_unit_test(test_pattern_quoted),
	    cmocka_unit_test(test_pattern_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
