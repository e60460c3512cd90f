/*
 * Unit tests of copyrow: a routing key read out of COPY rows as the source
 * sends them, in text format (with escapes, NULL, the last field) and in
 * binary format (each routable type, NULL, the header and trailer), and
 * rows it must refuse rather than misread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load/copyrow.h"

#define INT8    20
#define INT2    21
#define INT4    23
#define TEXT    25
#define UUID    2950
#define NUMERIC 1700

static char key[COPYROW_KEY_MAX];

/* The key text of field col of a text row, or "<null>"/"<bad>". */
static const char *
text_field(const char *row, int col)
{
	size_t len;
	bool null;

	if (!copyrow_key(row, strlen(row), false, col, TEXT, key, sizeof(key), &len,
	                 &null))
		return "<bad>";
	if (null)
		return "<null>";
	key[len] = '\0';
	return key;
}

static void
test_text_fields_and_escapes(void **state)
{
	(void) state;
	assert_string_equal(text_field("42\tacme\t\\N\n", 0), "42");
	assert_string_equal(text_field("42\tacme\t\\N\n", 1), "acme");
	assert_string_equal(text_field("42\tacme\t\\N\n", 2), "<null>");
	/* an empty string is not NULL */
	assert_string_equal(text_field("1\t\t2\n", 1), "");
	/* the escapes COPY TO writes are undone: tab, newline, backslash */
	assert_string_equal(text_field("1\ta\\tb\\nc\\\\d\n", 1), "a\tb\nc\\d");
	assert_string_equal(text_field("1\t\\b\\f\\r\\v\n", 1), "\b\f\r\v");
	/* "\\N" inside a value is the two characters, not NULL */
	assert_string_equal(text_field("1\t\\\\N\n", 1), "\\N");
	/* past the last field */
	assert_string_equal(text_field("1\t2\n", 2), "<bad>");
}

/* a binary tuple: nfields, then each field's length and bytes */
static size_t
tuple(char *out, int nfields, const char *const *fields, const int *lens)
{
	size_t at = 0;

	out[at++] = (char) (nfields >> 8);
	out[at++] = (char) nfields;
	for (int i = 0; i < nfields; i++)
	{
		uint32_t l = (uint32_t) lens[i];

		out[at++] = (char) (l >> 24);
		out[at++] = (char) (l >> 16);
		out[at++] = (char) (l >> 8);
		out[at++] = (char) l;
		if (lens[i] > 0)
		{
			memcpy(out + at, fields[i], (size_t) lens[i]);
			at += (size_t) lens[i];
		}
	}
	return at;
}

static const char *
binary_field(const char *row, size_t len, int col, uint32_t type)
{
	size_t klen;
	bool null;

	if (!copyrow_key(row, len, true, col, type, key, sizeof(key), &klen, &null))
		return "<bad>";
	if (null)
		return "<null>";
	key[klen] = '\0';
	return key;
}

static void
test_binary_types(void **state)
{
	char row[256];
	const char i2[] = {'\xff', '\xf9'};                 /* -7 */
	const char i4[] = {'\x7f', '\xff', '\xff', '\xff'}; /* 2147483647 */
	const char i8[] = {'\x80', 0, 0, 0, 0, 0, 0, 0};    /* int8 min */
	const char uu[] = {'\x3f', '\x25', '\x04', '\xe0', '\x4f', '\x89',
	                   '\x11', '\xd3', '\x9a', '\x0c', '\x03', '\x05',
	                   '\xe8', '\x2c', '\x33', '\x01'};
	const char *fields[] = {i2, i4, i8, uu, "acme", NULL};
	const int lens[] = {2, 4, 8, 16, 4, -1};
	size_t len = tuple(row, 6, fields, lens);

	(void) state;
	assert_string_equal(binary_field(row, len, 0, INT2), "-7");
	assert_string_equal(binary_field(row, len, 1, INT4), "2147483647");
	assert_string_equal(binary_field(row, len, 2, INT8),
	                    "-9223372036854775808");
	assert_string_equal(binary_field(row, len, 3, UUID),
	                    "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
	assert_string_equal(binary_field(row, len, 4, TEXT), "acme");
	assert_string_equal(binary_field(row, len, 5, INT8), "<null>");
	/* a type it cannot print, a length that does not fit the type, a
	   field past the row, a row cut short: refused */
	assert_string_equal(binary_field(row, len, 4, NUMERIC), "<bad>");
	assert_string_equal(binary_field(row, len, 1, INT8), "<bad>");
	assert_string_equal(binary_field(row, len, 6, INT8), "<bad>");
	assert_string_equal(binary_field(row, len - 6, 4, TEXT), "<bad>");
	assert_true(copyrow_binary_decodes(INT8));
	assert_false(copyrow_binary_decodes(NUMERIC));
}

static void
test_binary_header_and_trailer(void **state)
{
	char buf[64];
	const char sig[] = "PGCOPY\n\377\r\n";

	(void) state;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, sig, 11); /* with its terminating zero byte */
	/* flags 0, extension length 4, then 4 bytes of extension */
	buf[18] = 4;
	assert_int_equal(copyrow_binary_header(buf, 23), 23);
	assert_int_equal(copyrow_binary_header(buf, 22), -1);
	buf[18] = 0;
	assert_int_equal(copyrow_binary_header(buf, 19), 19);
	buf[0] = 'X';
	assert_int_equal(copyrow_binary_header(buf, 19), -1);
	assert_true(copyrow_binary_trailer("\xff\xff", 2));
	assert_false(copyrow_binary_trailer("\xff\xff\x00", 3));
	assert_false(copyrow_binary_trailer("\x00\x01", 2));
}

static void
test_long_keys_are_refused(void **state)
{
	char *row = malloc(COPYROW_KEY_MAX + 8);
	size_t len, klen;
	bool null;

	(void) state;
	assert_non_null(row);
	memset(row, 'k', COPYROW_KEY_MAX + 2);
	row[COPYROW_KEY_MAX + 2] = '\n';
	len = COPYROW_KEY_MAX + 3;
	assert_false(
	    copyrow_key(row, len, false, 0, TEXT, key, sizeof(key), &klen, &null));
	free(row);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_fields_and_escapes),
	    cmocka_unit_test(test_binary_types),
	    cmocka_unit_test(test_binary_header_and_trailer),
	    cmocka_unit_test(test_long_keys_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
