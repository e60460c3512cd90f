/*
 * Unit tests for vec: items kept in order across growth, the cap refused
 * with the array unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/vec.h"

static void
test_push_grows_and_keeps_order(void **state)
{
	Vec v = VEC_INIT(sizeof(int), 1000);
	Error err = ERR_INIT;

	(void) state;
	for (int i = 0; i < 1000; i++)
		assert_true(vec_push(&v, &i, &err));
	assert_int_equal(v.count, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(((const int *) v.items)[i], i);
	vec_free(&v);
	assert_int_equal(v.count, 0);
	vec_free(&v);
}

static void
test_cap_refused(void **state)
{
	Vec v;
	Error err = ERR_INIT;
	int x = 7;

	(void) state;
	vec_init(&v, sizeof(int), 3);
	for (int i = 0; i < 3; i++)
		assert_true(vec_push(&v, &x, &err));
	assert_false(vec_push(&v, &x, &err));
	assert_int_equal(err.kind, ERR_INTERNAL);
	assert_string_equal(err.message, "more than 3 items in a list");
	assert_int_equal(v.count, 3);
	vec_free(&v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_push_grows_and_keeps_order),
	    cmocka_unit_test(test_cap_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
