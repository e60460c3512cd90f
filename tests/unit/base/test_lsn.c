/*
 * Unit tests of lsn: parsing and formatting WAL positions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/lsn.h"

static void
test_round_trip(void **state)
{
	char buf[LSN_TEXT_MAX];
	Lsn l = 0;

	(void) state;
	assert_true(lsn_parse("0/16B3748", &l));
	assert_int_equal(l, 0x16B3748);
	assert_string_equal(lsn_format(l, buf), "0/16B3748");
	assert_true(lsn_parse("FFFFFFFF/FFFFFFFF", &l));
	assert_int_equal(l, UINT64_MAX);
	assert_string_equal(lsn_format(l, buf), "FFFFFFFF/FFFFFFFF");
	assert_true(lsn_parse("a/b", &l));
	assert_int_equal(l, ((Lsn) 0xa << 32) | 0xb);
}

static void
test_rejects(void **state)
{
	Lsn l = 42;

	(void) state;
	assert_false(lsn_parse("", &l));
	assert_false(lsn_parse("0", &l));
	assert_false(lsn_parse("0/", &l));
	assert_false(lsn_parse("/0", &l));
	assert_false(lsn_parse("0/0 ", &l));
	assert_false(lsn_parse("1FFFFFFFF/0", &l));
	assert_false(lsn_parse("g/0", &l));
	assert_false(lsn_parse(NULL, &l));
	assert_int_equal(l, 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
