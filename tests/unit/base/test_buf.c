/*
 * Unit tests of buf: appending bytes and formatted text, the hard cap, the
 * failed state that a cap or an allocation failure leaves, and ownership
 * handed over by buf_take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"

static void
test_empty(void **state)
{
	Buf b = BUF_INIT(16);
	Error err = ERR_INIT;
	char *s = NULL;

	(void) state;
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_len(&b), 0);
	assert_true(buf_take(&b, &s, &err));
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);
	buf_free(&b); /* twice: a no-op */
	assert_false(err_is_set(&err));
}

static void
test_append(void **state)
{
	Buf b;
	Error err = ERR_INIT;
	char *s = NULL;

	(void) state;
	buf_init(&b, 1024);
	assert_true(buf_add(&b, "ab", 2, &err));
	assert_true(buf_add_str(&b, "cd", &err));
	assert_true(buf_printf(&b, &err, "-%d-%s", 42, "x"));
	assert_true(buf_add(&b, NULL, 0, &err));
	assert_string_equal(buf_str(&b), "abcd-42-x");
	assert_int_equal(buf_len(&b), 9);
	assert_true(buf_take(&b, &s, &err));
	assert_string_equal(s, "abcd-42-x");
	free(s);
	/* empty again, and usable */
	assert_int_equal(buf_len(&b), 0);
	assert_true(buf_add_str(&b, "again", &err));
	assert_string_equal(buf_str(&b), "again");
	buf_free(&b);
	assert_false(err_is_set(&err));
}

/* Bytes may hold NULs: buf_len counts them, a NUL still follows. */
static void
test_binary(void **state)
{
	Buf b = BUF_INIT(64);
	Error err = ERR_INIT;
	const char bytes[] = {'a', '\0', 'b'};

	(void) state;
	assert_true(buf_add(&b, bytes, sizeof(bytes), &err));
	assert_int_equal(buf_len(&b), 3);
	assert_memory_equal(buf_str(&b), bytes, sizeof(bytes));
	assert_int_equal(buf_str(&b)[3], '\0');
	buf_free(&b);
}

/* Many small appends grow the buffer past its first allocation. */
static void
test_growth(void **state)
{
	Buf b = BUF_INIT(1 << 20);
	Error err = ERR_INIT;

	(void) state;
	for (int i = 0; i < 10000; i++)
		assert_true(buf_printf(&b, &err, "%04d,", i % 10000));
	assert_int_equal(buf_len(&b), 50000);
	assert_memory_equal(buf_str(&b), "0000,0001,", 10);
	assert_string_equal(buf_str(&b) + 49995, "9999,");
	/* a long formatted piece that does not fit the room left */
	buf_reset(&b);
	assert_true(buf_printf(&b, &err, "%s", "a"));
	assert_true(buf_printf(&b, &err, "%0900d", 7));
	assert_int_equal(buf_len(&b), 901);
	assert_int_equal(buf_str(&b)[900], '7');
	buf_free(&b);
	assert_false(err_is_set(&err));
}

/* The cap counts the NUL: a cap of 8 holds 7 bytes. */
static void
test_cap(void **state)
{
	Buf b = BUF_INIT(8);
	Error err = ERR_INIT;
	char sentinel = 0;
	char *s = &sentinel; /* buf_take must overwrite it */

	(void) state;
	assert_true(buf_add_str(&b, "1234567", &err));
	assert_string_equal(buf_str(&b), "1234567");
	assert_true(buf_check(&b, &err));
	assert_false(buf_add(&b, "8", 1, &err));
	assert_int_equal(err.kind, ERR_INTERNAL);
	assert_string_equal(err.message, "buffer would exceed its cap of 8 bytes");
	err_clear(&err);
	assert_false(buf_check(&b, &err));
	assert_string_equal(err.message, "buffer would exceed its cap of 8 bytes");
	/* failed: nothing held, and later appends fail though they would fit */
	assert_int_equal(buf_len(&b), 0);
	assert_string_equal(buf_str(&b), "");
	err_clear(&err);
	assert_false(buf_add_str(&b, "x", &err));
	assert_string_equal(err.message, "buffer would exceed its cap of 8 bytes");
	err_clear(&err);
	assert_false(buf_printf(&b, &err, "%d", 1));
	assert_true(err_is_set(&err));
	err_clear(&err);
	assert_false(buf_take(&b, &s, &err));
	assert_null(s);
	assert_string_equal(err.message, "buffer would exceed its cap of 8 bytes");
	/* buf_take cleared the failure and kept the cap */
	err_clear(&err);
	assert_true(buf_add_str(&b, "abc", &err));
	assert_true(buf_take(&b, &s, &err));
	assert_string_equal(s, "abc");
	free(s);
	buf_free(&b);
}

/* A formatted piece past the cap leaves no part of itself behind. */
static void
test_printf_cap(void **state)
{
	Buf b = BUF_INIT(16);
	Error err = ERR_INIT;

	(void) state;
	assert_true(buf_add_str(&b, "abc", &err));
	assert_false(buf_printf(&b, &err, "%s", "0123456789abcdef"));
	assert_true(err_is_set(&err));
	assert_int_equal(buf_len(&b), 0);
	/* reset clears the failure, keeps the cap */
	buf_reset(&b);
	err_clear(&err);
	assert_true(buf_printf(&b, &err, "%s", "0123456789abcde"));
	assert_int_equal(buf_len(&b), 15);
	assert_true(buf_add(&b, "", 0, &err));
	assert_false(buf_add(&b, "x", 1, &err));
	buf_free(&b);
}

/* Sizes near SIZE_MAX fail on the cap without overflowing. */
static void
test_huge(void **state)
{
	Buf b = BUF_INIT(SIZE_MAX);
	Buf z = BUF_INIT(0);
	Error err = ERR_INIT;
	char want[64];

	(void) state;
	snprintf(want, sizeof(want), "buffer would exceed its cap of %zu bytes",
	         (size_t) SIZE_MAX);
	assert_true(buf_add_str(&b, "a", &err));
	assert_false(buf_add(&b, "", SIZE_MAX, &err));
	assert_string_equal(err.message, want);
	err_clear(&err);
	assert_false(buf_add(&z, "", 0, &err)); /* not even the NUL fits */
	buf_free(&b);
	buf_free(&z);
}

/* The first error stays in err, as everywhere (err.h). */
static void
test_first_error_wins(void **state)
{
	Buf b = BUF_INIT(4);
	Error err = ERR_INIT;

	(void) state;
	err_set(&err, ERR_SOURCE, "earlier");
	assert_false(buf_add_str(&b, "toolong", &err));
	assert_int_equal(err.kind, ERR_SOURCE);
	assert_string_equal(err.message, "earlier");
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),  cmocka_unit_test(test_append),
	    cmocka_unit_test(test_binary), cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_cap),    cmocka_unit_test(test_printf_cap),
	    cmocka_unit_test(test_huge),   cmocka_unit_test(test_first_error_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
