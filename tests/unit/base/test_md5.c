/*
 * Unit tests of md5: the RFC 1321 test suite, and lengths around the
 * padding's edges (55, 56, 63, 64 bytes) against digests from Python's
 * hashlib.md5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/md5.h"

static void
hex(const char *text, size_t len, char out[33])
{
	uint8_t d[MD5_DIGEST_LEN];

	md5_digest(text, len, d);
	for (int i = 0; i < MD5_DIGEST_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
check(const char *text, const char *want)
{
	char got[33];

	hex(text, strlen(text), got);
	assert_string_equal(got, want);
}

static void
test_rfc_suite(void **state)
{
	(void) state;
	check("", "d41d8cd98f00b204e9800998ecf8427e");
	check("a", "0cc175b9c0f1b6a831c399e269772661");
	check("abc", "900150983cd24fb0d6963f7d28e17f72");
	check("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
	check("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
	check("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	      "d174ab98d277d9f5a5611c2c9f419d9f");
	check("1234567890123456789012345678901234567890123456789012345678901234"
	      "5678901234567890",
	      "57edf4a22be3c955ac49da2e2107b67a");
}

static void
test_padding_edges(void **state)
{
	char text[130];
	char got[33];

	(void) state;
	memset(text, 'x', sizeof(text));
	/* hashlib.md5(b'x' * n) */
	hex(text, 55, got);
	assert_string_equal(got, "04364420e25c512fd958a70738aa8f72");
	hex(text, 56, got);
	assert_string_equal(got, "668a72d5ba17f08e62dabcafad6db14b");
	hex(text, 63, got);
	assert_string_equal(got, "7dc2ca208106a2f703567bdff99d8981");
	hex(text, 64, got);
	assert_string_equal(got, "c1bb4f81d892b2d57947682aeb252456");
	hex(text, 119, got);
	assert_string_equal(got, "ab347a5f68c8a443cfcddc633f12c24f");
	hex(text, 120, got);
	assert_string_equal(got, "fb98667f98096de92620b64f46e1c5b5");
	hex(text, 129, got);
	assert_string_equal(got, "3926841d393c00c3f36260e5ace10dc1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_suite),
	    cmocka_unit_test(test_padding_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
