/*
 * Unit tests of notify's address parsing: NOTIFY_SOCKET as a path or as an
 * abstract name ('@'), and the values no socket address can hold; and of
 * the STATUS= line's cut, through a socket of the test's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/notify.h"

#define PATH_OFF offsetof(struct sockaddr_un, sun_path)

static void
test_path(void **state)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	Error err = ERR_INIT;

	(void) state;
	assert_true(notify_parse_addr("/run/systemd/notify", &a, &len, &err));
	assert_int_equal(a.sun_family, AF_UNIX);
	assert_string_equal(a.sun_path, "/run/systemd/notify");
	/* the path and its trailing NUL */
	assert_int_equal(len, PATH_OFF + strlen("/run/systemd/notify") + 1);
}

static void
test_abstract(void **state)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	Error err = ERR_INIT;

	(void) state;
	assert_true(notify_parse_addr("@pgtide/notify", &a, &len, &err));
	assert_int_equal(a.sun_family, AF_UNIX);
	/* a leading NUL, the name, and no trailing NUL counted */
	assert_int_equal(a.sun_path[0], '\0');
	assert_memory_equal(a.sun_path + 1, "pgtide/notify", 13);
	assert_int_equal(len, PATH_OFF + 1 + 13);
}

static void
test_longest(void **state)
{
	struct sockaddr_un a;
	char v[sizeof(a.sun_path) + 1];
	socklen_t len = 0;
	Error err = ERR_INIT;

	(void) state;
	memset(v, 'x', sizeof(v));
	v[0] = '/';
	v[sizeof(a.sun_path) - 1] = '\0'; /* 107 bytes: fits with its NUL */
	assert_true(notify_parse_addr(v, &a, &len, &err));
	assert_int_equal(len, sizeof(a));
	v[sizeof(a.sun_path) - 1] = 'x';
	v[sizeof(a.sun_path)] = '\0'; /* 108 bytes: no room for the NUL */
	assert_false(notify_parse_addr(v, &a, &len, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
}

static void
test_rejects(void **state)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	const char *bad[] = {"", "@", "run/notify", "vsock:2:1234"};

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		Error err = ERR_INIT;

		assert_false(notify_parse_addr(bad[i], &a, &len, &err));
		assert_int_equal(err.kind, ERR_CONFIG);
		assert_true(strlen(err.message) > 0);
	}
	{
		Error err = ERR_INIT;

		assert_false(notify_parse_addr(NULL, &a, &len, &err));
	}
}

/*
 * A STATUS= line longer than the cap is cut before a character, never
 * inside one: systemctl shows an invalid UTF-8 line as garbage.
 */
static void
test_status_cut_between_characters(void **state)
{
	char dir[] = "/tmp/pgtide-notify-XXXXXX";
	char path[64], got[512], text[400];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;
	ssize_t n;

	(void) state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	notify_init();
	/* "é" is two bytes: 'x' then 199 of them puts one across byte 200 */
	text[0] = 'x';
	for (int i = 0; i < 199; i++)
		memcpy(text + 1 + 2 * i, "\xc3\xa9", 2);
	text[1 + 2 * 199] = '\0';
	notify_status("%s", text);
	n = recv(fd, got, sizeof(got) - 1, 0);
	assert_true(n > 7);
	got[n] = '\0';
	assert_memory_equal(got, "STATUS=x", 8);
	/* whole characters only: 99 of them after the x */
	assert_int_equal(n, 7 + 1 + 2 * 99);
	close(fd);
	unlink(path);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_abstract),
	    cmocka_unit_test(test_longest),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_status_cut_between_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
