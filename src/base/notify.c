/*
 * notify: datagrams to the service manager (notify.h). It owns one
 * non-blocking unix datagram socket, opened by notify_init and read-only
 * afterwards, so every thread and the signal handler may send on it. It must
 * never block, fail a task, or log more than once.
 */
#include "base/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

/* longest STATUS= line sent; systemctl shows one line anyway */
#define NOTIFY_STATUS_MAX 200

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static int64_t watchdog_ms; /* half of WATCHDOG_USEC; 0: no watchdog */
static _Atomic int64_t watchdog_last_ms;
static atomic_bool ready_sent;
static atomic_bool failure_logged;
/* why NOTIFY_SOCKET could not be used, logged at the first notify_ready */
static char init_failure[ERR_MSG_MAX];

bool
notify_parse_addr(const char *value, struct sockaddr_un *addr, socklen_t *len,
                  Error *err)
{
	size_t n = value != NULL ? strlen(value) : 0;

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (n == 0)
		return err_set(err, ERR_CONFIG, "NOTIFY_SOCKET is empty");
	if (value[0] != '/' && value[0] != '@')
		return err_set(err, ERR_CONFIG,
		               "NOTIFY_SOCKET is neither an absolute path nor an "
		               "abstract name starting with '@'");
	/* a path needs its trailing NUL; an abstract name has none but takes
	   sun_path[0] for its leading NUL, in place of the '@' */
	if (n >= sizeof(addr->sun_path) || (value[0] == '@' && n < 2))
		return err_set(err, ERR_CONFIG,
		               "NOTIFY_SOCKET has %zu bytes; a socket address takes "
		               "1 to %zu",
		               n, sizeof(addr->sun_path) - 1);
	memcpy(addr->sun_path, value, n);
	if (value[0] == '@')
		addr->sun_path[0] = '\0';
	*len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n +
	                    (value[0] == '/' ? 1 : 0));
	return true;
}

/* the first failure to send, once, at debug level: never the task's worry */
static void
note_failure(const char *what, int errnum)
{
	bool expected = false;

	if (atomic_compare_exchange_strong(&failure_logged, &expected, true))
		log_debug("could not notify the service manager (%s): %s; later "
		          "failures are not logged",
		          what, strerror(errnum));
}

static void
send_text(const char *text, size_t n)
{
	if (notify_fd < 0)
		return;
	if (sendto(notify_fd, text, n, MSG_NOSIGNAL,
	           (const struct sockaddr *) &notify_addr, notify_addr_len) < 0)
		note_failure(text, errno);
}

void
notify_init(void)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	Error err = ERR_INIT;

	if (sock != NULL)
	{
		if (!notify_parse_addr(sock, &notify_addr, &notify_addr_len, &err))
			snprintf(init_failure, sizeof(init_failure), "%s", err.message);
		else if ((notify_fd =
		              socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                     0)) < 0)
			snprintf(init_failure, sizeof(init_failure),
			         "could not open a socket for NOTIFY_SOCKET: %s",
			         strerror(errno));
	}
	if (notify_fd >= 0 && usec != NULL)
	{
		char *end;
		unsigned long long us = strtoull(usec, &end, 10);
		bool ours = pid == NULL || strtol(pid, NULL, 10) == (long) getpid();

		if (*usec != '\0' && *end == '\0' && us > 0 && ours)
			watchdog_ms = us / 2000 > 0 ? (int64_t) (us / 2000) : 1;
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

void
notify_ready(void)
{
	bool expected = false;

	if (init_failure[0] != '\0' && !atomic_exchange(&failure_logged, true))
		log_debug("not notifying the service manager: %s", init_failure);
	if (notify_fd < 0 ||
	    !atomic_compare_exchange_strong(&ready_sent, &expected, true))
		return;
	send_text("READY=1", 7);
}

void
notify_status(const char *fmt, ...)
{
	char text[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	memcpy(text, "STATUS=", 7);
	va_start(ap, fmt);
	n = vsnprintf(text + 7, sizeof(text) - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n >= sizeof(text) - 7)
	{
		/* cut at a character's first byte: a table name cut inside a UTF-8
		 * sequence would make the whole line invalid text to systemctl */
		const unsigned char *v = (const unsigned char *) text + 7;
		int last;
		int need;

		n = (int) sizeof(text) - 8;
		last = n - 1;
		while (last > 0 && (v[last] & 0xC0) == 0x80)
			last--;
		need = v[last] >= 0xF0   ? 4
		       : v[last] >= 0xE0 ? 3
		       : v[last] >= 0xC0 ? 2
		                         : 1;
		if (last + need > n)
			n = last;
	}
	/* the protocol is one KEY=value per line */
	for (int i = 7; i < 7 + n; i++)
		if (text[i] == '\n' || text[i] == '\r')
			text[i] = ' ';
	send_text(text, (size_t) n + 7);
}

void
notify_stopping(void)
{
	static const char text[] = "STOPPING=1";

	if (notify_fd >= 0)
		(void) sendto(notify_fd, text, sizeof(text) - 1, MSG_NOSIGNAL,
		              (const struct sockaddr *) &notify_addr, notify_addr_len);
}

void
notify_watchdog(void)
{
	int64_t now, last;

	if (watchdog_ms == 0)
		return;
	now = clock_ms();
	last = atomic_load(&watchdog_last_ms);
	if (last != 0 && now - last < watchdog_ms)
		return;
	if (atomic_compare_exchange_strong(&watchdog_last_ms, &last, now))
		send_text("WATCHDOG=1", 10);
}

int64_t
notify_watchdog_interval_ms(void)
{
	return watchdog_ms;
}
