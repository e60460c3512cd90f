/*
 * log: formats and writes log lines. One write(2) per line so lines from
 * several threads never interleave.
 */
#include "base/log.h"

#include <pthread.h>
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
static char log_task[128] = "";
static char log_scope[40] = ""; /* "NAME/" before every role, or "" */

static const char *const level_names[] = {"debug", "info", "warning", "error"};

/*
 * The ring of the last warnings and errors: next is where the next line
 * goes, n how many are kept (at most LOG_RECENT_MAX). A fixed array, so
 * keeping a line never allocates and never fails.
 */
static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;
static LogRecent recent[LOG_RECENT_MAX];
static int recent_next;
static int recent_n;

static void
recent_keep(LogLevel level, const char *stamp, int ms, const char *msg)
{
	LogRecent *r;

	pthread_mutex_lock(&recent_lock);
	r = &recent[recent_next];
	snprintf(r->time, sizeof(r->time), "%.10sT%.8s.%03dZ", stamp, stamp + 11,
	         ms % 1000);
	r->level = level;
	snprintf(r->thread, sizeof(r->thread), "%s", log_role);
	snprintf(r->message, sizeof(r->message), "%s", msg);
	recent_next = (recent_next + 1) % LOG_RECENT_MAX;
	if (recent_n < LOG_RECENT_MAX)
		recent_n++;
	pthread_mutex_unlock(&recent_lock);
}

int
log_recent(LogRecent *out, int cap)
{
	int n;

	pthread_mutex_lock(&recent_lock);
	n = recent_n < cap ? recent_n : cap;
	for (int i = 0; i < n; i++)
		out[i] =
		    recent[(recent_next - n + i + LOG_RECENT_MAX) % LOG_RECENT_MAX];
	pthread_mutex_unlock(&recent_lock);
	return n;
}

const char *
log_level_name(LogLevel level)
{
	return level_names[level];
}

void
log_configure(LogLevel min_level, bool json)
{
	log_min_level = min_level;
	log_json = json;
}

bool
log_is_json(void)
{
	return log_json;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_set_task(const char *task)
{
	snprintf(log_task, sizeof(log_task), "%s", task);
}

void
log_set_scope(const char *scope)
{
	snprintf(log_scope, sizeof(log_scope), "%s/", scope);
}

/* the longest message a line holds; longer ones are cut */
#define LOG_MSG_MAX 4096

/*
 * One line of msg at level, in the configured format; raw: text as is.
 * The line has room for the message escaped at its longest, so a JSON
 * line always closes its object.
 */
static void
write_line(LogLevel level, const char *msg, bool raw)
{
	char esc[LOG_MSG_MAX * 6];
	char task[sizeof(log_task) * 6];
	char line[sizeof(esc) + sizeof(task) + 256];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (level >= LOG_LEVEL_WARN)
		recent_keep(level, stamp, (int) (ts.tv_nsec / 1000000), msg);

	if (log_json)
	{
		json_escape(esc, sizeof(esc), msg);
		json_escape(task, sizeof(task), log_task);
		n = snprintf(line, sizeof(line),
		             "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"thread\":"
		             "\"%s%s\",\"task\":\"%s\",\"message\":\"%s\"}\n",
		             stamp, ts.tv_nsec / 1000000, level_names[level], log_scope,
		             log_role, task, esc);
	}
	else if (raw)
		n = snprintf(line, sizeof(line), "%s\n", msg);
	else
		n = snprintf(line, sizeof(line), "%s.%03ld %-7s [%s%s] %s\n", stamp,
		             ts.tv_nsec / 1000000, level_names[level], log_scope,
		             log_role, msg);
	if (n < 0)
		return;
	if ((size_t) n >= sizeof(line))
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t) n) < 0)
		return;
}

void
log_write(LogLevel level, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_line(level, msg, false);
}

void
log_plain(LogLevel level, const char *text)
{
	write_line(level, text, true);
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
