/*
 * log: leveled, thread-tagged lines on stderr. stdout is command output only.
 *
 * Each line carries time, level, the thread's role and the message; a JSON
 * line is one object with exactly the fields time, level, thread, task and
 * message, whose names never change (docs/service.md). Callers
 * never log per row: they count and use log_every(). Row values never appear
 * in logs. The level test happens before the arguments are evaluated.
 */
#ifndef PGTIDE_LOG_H
#define PGTIDE_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum LogLevel
{
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
} LogLevel;

extern LogLevel log_min_level;

/* Sets the minimum level printed and whether lines are JSON objects. */
void log_configure(LogLevel min_level, bool json);

/* Whether lines are JSON objects (--log-format json). */
bool log_is_json(void);

/* Names the calling thread in its log lines ("main", "copy-2"). Copied. */
void log_set_role(const char *role);

/*
 * Names the task in every JSON line ("task"), from every thread. Copied;
 * call it once, before any other thread starts.
 */
void log_set_task(const char *task);

/*
 * Puts "scope/" before the thread's name in every line ("[shard1/main]"):
 * the process working on one of several targets. Copied; call it once,
 * before any other thread starts.
 */
void log_set_scope(const char *scope);

void log_write(LogLevel level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Writes text as it is, one line, for a person reading a terminal (the
 * command's last words: an error with its DETAIL and HINT, the slot left
 * on the source); with JSON lines, it is the message of an object like any
 * other line's, so that every line on stderr parses. Not level-filtered.
 */
void log_plain(LogLevel level, const char *text);

#define LOG_AT(level, ...)                   \
	do                                       \
	{                                        \
		if ((level) >= log_min_level)        \
			log_write((level), __VA_ARGS__); \
	} while (0)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)

/*
 * Rate limit for repeated events: returns true at most once per interval_ms
 * for the given *last_ms slot (an atomic the caller owns), so the caller logs
 * one line with a count instead of one line per event.
 */
bool log_every(_Atomic int64_t *last_ms, int64_t interval_ms);

/*
 * The last warning and error lines, kept in a fixed ring of LOG_RECENT_MAX
 * in the process so that a dashboard can show them (the log itself is
 * written and gone). A line is kept as it is written: a message longer
 * than LOG_RECENT_MSG_MAX - 1 bytes is cut there. What the log never holds
 * (row values, passwords) the ring never holds either.
 */
#define LOG_RECENT_MAX     20
#define LOG_RECENT_MSG_MAX 1024

typedef struct LogRecent
{
	char time[40]; /* "2026-01-02T03:04:05.678Z" (UTC) */
	LogLevel level;
	char thread[24];
	char message[LOG_RECENT_MSG_MAX];
} LogRecent;

/*
 * Copies the kept lines, oldest first, into out (room for cap) and returns
 * how many it copied: the newest ones when cap is short. Takes the ring's
 * lock for the copy only; never fails.
 */
int log_recent(LogRecent *out, int cap);

/* The name of a level as log lines write it ("warning", "error"). */
const char *log_level_name(LogLevel level);

#endif
