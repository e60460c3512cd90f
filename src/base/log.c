/*
 * log: formats and writes log lines. One write(2) per line so lines from
 * several threads never interleave.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"

LogLevel log_min_level = LOG_LEVEL_INFO;
static bool log_json = false;
static _Thread_local char log_role[24] = "main";

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void
log_configure(LogLevel min_level, bool json)
{
	log_min_level = min_level;
	log_json = json;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_write(LogLevel level, const char *fmt, ...)
{
	char msg[4096];
	char line[8192];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);

	if (log_json)
	{
		char esc[sizeof(msg) * 2];

		json_escape(esc, sizeof(esc), msg);
		n = snprintf(
		    line, sizeof(line),
		    "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"thread\":\"%s\","
		    "\"message\":\"%s\"}\n",
		    stamp, ts.tv_nsec / 1000000, level_names[level], log_role, esc);
	}
	else
		n = snprintf(line, sizeof(line), "%s.%03ld %-7s [%s] %s\n", stamp,
		             ts.tv_nsec / 1000000, level_names[level], log_role, msg);
	if (n < 0)
		return;
	if ((size_t) n >= sizeof(line))
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t) n) < 0)
		return;
}

bool
log_every(_Atomic int64_t *last_ms, int64_t interval_ms)
{
	int64_t now = clock_ms();
	int64_t last = atomic_load(last_ms);

	if (last != 0 && now - last < interval_ms)
		return false;
	return atomic_compare_exchange_strong(last_ms, &last, now);
}
