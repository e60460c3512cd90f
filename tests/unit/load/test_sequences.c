/*
 * Unit tests for where the cutover puts a sequence: the margin past the
 * source's value (sequences_place) and, for target k of n, the spacing
 * that keeps every value = k mod n (sequences_space).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include "load/sequences.h"

static CatSequence
seq(int64_t increment, int64_t min, int64_t max, bool cycle)
{
	CatSequence s = {.increment = increment,
	                 .min_value = min,
	                 .max_value = max,
	                 .cycle = cycle};

	return s;
}

static void
test_place(void **state)
{
	CatSequence up = seq(1, 1, INT64_MAX, false);
	CatSequence every3 = seq(3, 1, 100, false);
	int64_t v;
	bool called;

	(void) state;
	assert_int_equal(sequences_place(&up, 41, true, 1000, &v, &called),
	                 SEQ_PLACE_AHEAD);
	assert_int_equal(v, 1041);
	assert_true(called);
	/* counted in increments, and stopped at the bound */
	assert_int_equal(sequences_place(&every3, 10, true, 10, &v, &called),
	                 SEQ_PLACE_AHEAD);
	assert_int_equal(v, 40);
	assert_int_equal(sequences_place(&every3, 10, true, 1000, &v, &called),
	                 SEQ_PLACE_CLAMPED);
	assert_int_equal(v, 100);
	assert_true(called);
}

static void
test_space_ascending(void **state)
{
	CatSequence up = seq(1, 1, INT64_MAX, false);
	int64_t first, inc;

	(void) state;
	/* 1041 was handed out: target 2 of 3 starts at the next value = 2 */
	assert_true(
	    sequences_space(&up, 1041, true, (SeqSpacing){2, 3}, &first, &inc));
	assert_int_equal(first, 1043);
	assert_int_equal(inc, 3);
	/* not yet handed out: the value itself may be the first */
	assert_true(
	    sequences_space(&up, 1043, false, (SeqSpacing){2, 3}, &first, &inc));
	assert_int_equal(first, 1043);
	/* target n of n gets the multiples of n */
	assert_true(
	    sequences_space(&up, 1041, true, (SeqSpacing){3, 3}, &first, &inc));
	assert_int_equal(first, 1044);
	/* every target's first value differs, and is past the source's */
	for (int k = 1; k <= 4; k++)
	{
		assert_true(
		    sequences_space(&up, 99, true, (SeqSpacing){k, 4}, &first, &inc));
		assert_true(first > 99 && first <= 103);
		assert_int_equal(first % 4, k % 4);
		assert_int_equal(inc, 4);
	}
}

static void
test_space_descending_and_negative(void **state)
{
	CatSequence down = seq(-2, INT64_MIN, -1, false);
	int64_t first, inc;

	(void) state;
	/* -10 was handed out: next below it, = 1 mod 3 (-11 is 1 mod 3) */
	assert_true(
	    sequences_space(&down, -10, true, (SeqSpacing){1, 3}, &first, &inc));
	assert_int_equal(first, -11);
	assert_int_equal(inc, -6);
	assert_true(
	    sequences_space(&down, -10, true, (SeqSpacing){3, 3}, &first, &inc));
	assert_int_equal(first, -12);
}

static void
test_space_refused(void **state)
{
	CatSequence cycle = seq(1, 1, 1000, true);
	CatSequence small = seq(1, 1, 100, false);
	CatSequence huge = seq(INT64_MAX / 2, 1, INT64_MAX, false);
	int64_t first = 7, inc = 7;

	(void) state;
	/* a CYCLE sequence wraps onto values in use */
	assert_false(
	    sequences_space(&cycle, 5, true, (SeqSpacing){1, 2}, &first, &inc));
	/* no value = 2 mod 3 is left past 99 within 100 */
	assert_false(
	    sequences_space(&small, 99, true, (SeqSpacing){2, 3}, &first, &inc));
	/* the increment times n leaves bigint */
	assert_false(
	    sequences_space(&huge, 1, true, (SeqSpacing){1, 3}, &first, &inc));
	assert_int_equal(first, 7);
	assert_int_equal(inc, 7);
	/* within the bound: 100 is 1 mod 3 */
	assert_true(
	    sequences_space(&small, 98, true, (SeqSpacing){1, 3}, &first, &inc));
	assert_int_equal(first, 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_place),
	    cmocka_unit_test(test_space_ascending),
	    cmocka_unit_test(test_space_descending_and_negative),
	    cmocka_unit_test(test_space_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
