/*
 * Unit tests of plan: chunk counts, block ranges that cover every block
 * exactly once, and largest-first order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "load/plan.h"

static void
test_small_tables_are_one_chunk(void **state)
{
	PlanTable t = {.bytes = 100, .blocks = 1, .splittable = true};

	(void) state;
	assert_int_equal(plan_table_chunks(&t, 1000), 1);
	assert_int_equal(plan_table_chunks(&t, 0), 1);
	t.bytes = 5000;
	t.blocks = 10;
	t.splittable = false;
	assert_int_equal(plan_table_chunks(&t, 1000), 1);
}

static void
test_never_more_chunks_than_blocks(void **state)
{
	/* a TOAST-heavy table: big in bytes, few heap blocks */
	PlanTable t = {.bytes = 100000, .blocks = 3, .splittable = true};

	(void) state;
	assert_int_equal(plan_table_chunks(&t, 1000), 3);
}

static void
test_ranges_cover_once_and_order(void **state)
{
	PlanTable tables[3] = {
	    {.bytes = 10, .blocks = 1, .splittable = true},
	    {.bytes = 10000, .blocks = 103, .splittable = true},
	    {.bytes = 500, .blocks = 5, .splittable = true},
	};
	PlanChunk *chunks;
	int n;

	(void) state;
	assert_true(plan_chunks(tables, 3, 1000, &chunks, &n));
	assert_int_equal(n, 10 + 1 + 1);
	/* largest table first, its ranges contiguous and open at both ends */
	for (int c = 0; c < 10; c++)
	{
		assert_int_equal(chunks[c].table, 1);
		assert_int_equal(chunks[c].chunk, c);
		assert_int_equal(chunks[c].nchunks, 10);
		if (c == 0)
			assert_int_equal(chunks[c].start_block, -1);
		else
			assert_int_equal(chunks[c].start_block, chunks[c - 1].end_block);
	}
	assert_int_equal(chunks[9].end_block, -1);
	assert_int_equal(chunks[10].table, 2);
	assert_int_equal(chunks[11].table, 0);
	assert_int_equal(chunks[11].start_block, -1);
	assert_int_equal(chunks[11].end_block, -1);
	free(chunks);
}

static void
test_unsplit_table_before_smaller_chunks(void **state)
{
	/* A is split in two chunks of 500; B stays whole at 700 and goes first */
	PlanTable tables[2] = {
	    {.bytes = 1000, .blocks = 100, .splittable = true},
	    {.bytes = 700, .blocks = 70, .splittable = true},
	};
	PlanChunk *chunks;
	int n;

	(void) state;
	assert_true(plan_chunks(tables, 2, 800, &chunks, &n));
	assert_int_equal(n, 3);
	assert_int_equal(chunks[0].table, 1);
	assert_int_equal(chunks[1].table, 0);
	assert_int_equal(chunks[1].chunk, 0);
	assert_int_equal(chunks[2].table, 0);
	assert_int_equal(chunks[2].chunk, 1);
	assert_int_equal(chunks[2].start_block, 50);
	free(chunks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_tables_are_one_chunk),
	    cmocka_unit_test(test_never_more_chunks_than_blocks),
	    cmocka_unit_test(test_ranges_cover_once_and_order),
	    cmocka_unit_test(test_unsplit_table_before_smaller_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
