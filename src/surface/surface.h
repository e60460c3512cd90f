/*
 * surface: what a running copy, migrate or follow shows over HTTP
 * (--http, task-file key http.listen): /metrics in the Prometheus text
 * format, /status (the JSON of pgtide status --json), /history (the
 * stream's last hour of lag, the log's last warnings and errors), /healthz,
 * /readyz and a dashboard page at /. Off unless asked for.
 *
 *   stream thread --surface_publish_cdc--> snapshot (mutex) --+
 *                                                             +--> HTTP thread
 *   target, source <-- the HTTP thread's own sessions (state, --+    (handlers)
 *                      slots; read at most once a second)
 *
 * The server must never slow the load or the stream: the threads that do
 * the work only copy a few numbers under a small mutex; everything that
 * needs a database runs on the HTTP thread, on its own sessions, with a
 * short statement_timeout. It must never change the source, the target or
 * the task's state.
 */
#ifndef PGTIDE_SURFACE_H
#define PGTIDE_SURFACE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/config.h"
#include "base/err.h"
#include "cdc/cdc.h"
#include "guard/guard.h"
#include "pg/pg.h"

typedef struct Surface Surface;

/*
 * Writes the task's status as pgtide status --json prints it, read on tgt
 * (and src when not NULL). The command's writer, given to the surface so
 * that /status and the command print one document.
 */
typedef bool (*SurfaceStatusFn)(const TaskConfig *cfg, PgConn *tgt, PgConn *src,
                                FILE *out, Error *err);

/*
 * Starts serving cfg->http_listen for command ("copy", "migrate",
 * "follow") of pgtide version (both shown by pgtide_build_info); *out is NULL, and nothing starts, when http_listen is NULL.
 * Fails with ERR_CONFIG when it cannot be bound (in use, not an address of this
 * machine). cfg must outlive the surface. On success *out is the caller's,
 * ended with surface_stop().
 *
 * With several targets (targets[0..n), each target's share of cfg, as
 * task_target_config makes them; borrowed for the surface's life; NULL and
 * 1 for the task's one target), served by the process that starts their
 * processes: /status and /metrics show every target, each by its name;
 * /readyz is ready once every target is. Their streams run in processes of
 * their own, so the stream's numbers are what each last recorded in its
 * target's state (every progress interval).
 */
bool surface_start(const TaskConfig *cfg, const TaskConfig *targets, int n,
                   const char *command, const char *version,
                   SurfaceStatusFn status, Surface **out, Error *err);

/* Stops serving and frees s, closing its sessions. NULL is a no-op. */
void surface_stop(Surface *s);

/*
 * Publishes the change stream's latest progress (copied). Called from the
 * stream's progress callback; takes a mutex for a copy, nothing more.
 * NULL s is a no-op.
 */
void surface_publish_cdc(Surface *s, const CdcProgress *p);

/*
 * Publishes the guard's latest report (copied), from the guard thread;
 * takes a mutex for a copy, nothing more. NULL s is a no-op.
 */
void surface_publish_guard(Surface *s, const GuardReport *r);

/*
 * Parses "[ADDR:]PORT" ("9187", "127.0.0.1:9187", "0.0.0.0:9187"; an IPv4
 * address) into addr (cap bytes; "127.0.0.1" when only a port is given) and
 * *port (1..65535). False when it is not one.
 */
bool surface_parse_listen(const char *text, char *addr, size_t cap, int *port);

#endif
