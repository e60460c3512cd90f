/*
 * notify: the service manager's readiness protocol (systemd's sd_notify),
 * without libsystemd: one datagram per state change, sent over the unix
 * socket NOTIFY_SOCKET names ("/path", or "@name" in the abstract
 * namespace). Without NOTIFY_SOCKET every call does nothing.
 *
 * It must never block, fail or slow a task: the socket is non-blocking, a
 * datagram that cannot be sent is dropped, and the first failure is logged
 * once at debug level. No knowledge of PostgreSQL or of tasks: callers say
 * what to report and when.
 */
#ifndef PGTIDE_NOTIFY_H
#define PGTIDE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/err.h"

/*
 * Parses a NOTIFY_SOCKET value into a unix socket address: an absolute path
 * ("/run/systemd/notify"), or '@' then a name in the abstract namespace
 * (sun_path starts with a NUL byte, and *len counts the name without a
 * trailing NUL). Pure. False with err (ERR_CONFIG) for an empty, relative
 * or too long value.
 */
bool notify_parse_addr(const char *value, struct sockaddr_un *addr,
                       socklen_t *len, Error *err);

/*
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, opens the socket,
 * and takes the three out of the environment so that no child process
 * (pg_dump, a fence command) speaks for pgtide. Call once, before any
 * thread starts. A value it cannot use leaves notifying off and is logged
 * at the first notify_ready.
 */
void notify_init(void);

/* READY=1: the service is doing its work. Sent once; later calls do nothing. */
void notify_ready(void);

/* STATUS=<line>: one short line for `systemctl status`, newlines removed. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * STOPPING=1. Safe in a signal handler: it only calls sendto(2) on what
 * notify_init prepared, and logs nothing.
 */
void notify_stopping(void);

/*
 * WATCHDOG=1, at most once every half of WATCHDOG_USEC (nothing when the
 * manager set no watchdog, or set it for another process). Cheap enough to
 * call on every turn of a loop that proves the process makes progress.
 */
void notify_watchdog(void);

/* The watchdog's ping interval in milliseconds; 0 when there is none. */
int64_t notify_watchdog_interval_ms(void);

#endif
