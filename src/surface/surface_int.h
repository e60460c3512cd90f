/*
 * surface_int: what the files of src/surface/ share, and nothing outside
 * the folder includes.
 *
 *   surface.c    start and stop, the published snapshot, the HTTP
 *                thread's sessions and the reads cached on it
 *   http.c       the server (libmicrohttpd): routes, refusals, limits
 *   metrics.c    the /metrics body
 *   history.c    the stream's last hour of lag (a ring) and the /history
 *                body, with the log's last warnings and errors
 *   dashboard.c  the page served at /
 *   prom.c       the Prometheus text format (pure)
 */
#ifndef PGTIDE_SURFACE_INT_H
#define PGTIDE_SURFACE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "base/buf.h"
#include "state/state.h"
#include "surface/prom.h"
#include "surface/surface.h"

/* what the stream last published, guarded by Surface.lock */
typedef struct SurfaceCdc
{
	bool have; /* the stream has reported since the process started */
	CdcProgress p;
	int64_t at_ms; /* clock_ms() of the report */
} SurfaceCdc;

/* what the guard last published, guarded by Surface.lock */
typedef struct SurfaceGuard
{
	bool have;
	GuardReport r;
} SurfaceGuard;

/*
 * One stream report kept for the dashboard's chart: when (wall clock, so
 * the page can name the time) and the lag and rate it gave.
 */
typedef struct SurfaceSample
{
	int64_t wall_ms;
	int64_t lag_bytes;
	double lag_seconds;
	double changes_per_s;
} SurfaceSample;

/*
 * The ring of the last reports, guarded by Surface.lock: one a report
 * (every progress.interval seconds, at least one second), so SURFACE_HISTORY_MAX
 * holds an hour at the shortest interval; /history serves those of the last
 * SURFACE_HISTORY_MS. A fixed array: keeping a sample never allocates.
 */
#define SURFACE_HISTORY_MAX 3600
#define SURFACE_HISTORY_MS  (3600 * 1000)

typedef struct SurfaceHistory
{
	SurfaceSample s[SURFACE_HISTORY_MAX];
	int next; /* where the next sample goes */
	int n;    /* how many are kept */
} SurfaceHistory;

/*
 * What the HTTP thread read on its own sessions, each part at most once a
 * second: /metrics' numbers (the state, the slot) apart from /status's
 * document, whose reading of the source's catalog for new tables a scraper
 * of /metrics should not pay for. Used by that thread only: no lock.
 */
typedef struct SurfaceRead
{
	int64_t numbers_ms; /* clock_ms() of the last attempt; 0 never */
	int64_t status_ms;
	bool state_ok; /* st holds the task's state */
	StateStatus st;
	int64_t retained_wal;  /* the task slot's on the source; -1 unknown */
	Buf status;            /* /status's JSON; empty when it failed */
	char why[ERR_MSG_MAX]; /* why status is empty */
} SurfaceRead;

/* A target the surface reads: the task's one, or each of its several. */
typedef struct SurfaceTarget
{
	const TaskConfig *cfg; /* its task: the surface's, or a target's share */
	PgConn *tgt;           /* the HTTP thread's session on it */
	SurfaceRead read;
} SurfaceTarget;

struct Surface
{
	const TaskConfig *cfg;
	char command[16];
	char version[32];
	SurfaceStatusFn status_fn;
	void *daemon; /* struct MHD_Daemon */
	pthread_mutex_t lock;
	SurfaceCdc cdc;
	SurfaceHistory history;
	SurfaceGuard guard;
	/*
	 * Several targets: each target's stream runs in a process of its own,
	 * which publishes nothing here; what the surface shows of it is what
	 * that process last recorded in the target's state.
	 */
	bool several;
	int ntargets;
	/* the HTTP thread's: sessions and what it read on them */
	SurfaceTarget *targets;
	PgConn *src;
	int64_t src_failed_ms; /* the source failed then: wait before again */
	int64_t sampled_ms;    /* several: the newest record in the history */
};

/* the most /status and /metrics may grow to */
#define SURFACE_BODY_CAP (8 * 1024 * 1024)

/*
 * Refreshes every target's status document (status) or its numbers
 * (!status) when older than a second, on the HTTP thread's sessions (opened
 * or replaced here). Never fails: what it could not read is marked unknown,
 * and why in its read.why.
 */
void surface_refresh(Surface *s, bool status);

/*
 * The /status body into out: the command's document, or with several
 * targets {"task": NAME, "targets": {TARGET: document or {"error": WHY}}},
 * as pgtide status --json prints them. False, with why (cap bytes), when
 * there is nothing to serve (one target whose state could not be read).
 */
bool surface_status(Surface *s, Buf *out, char *why, size_t cap);

/*
 * A target's stream as the surface knows it: the process's own report with
 * one target (*live true), else what the target's process last recorded in
 * its state, as of the last read of the numbers (have false when it has not
 * recorded, or stopped recording).
 */
void surface_target_cdc(Surface *s, int k, SurfaceCdc *out, bool *live);

/* How long a stream may go unreported before it counts as stalled. */
int64_t surface_stale_ms(const Surface *s);

/* A copy of the guard's latest report (the mutex held for the copy). */
void surface_guard_copy(Surface *s, SurfaceGuard *out);

/* A copy of the latest stream report (the mutex held for the copy). */
void surface_cdc_copy(Surface *s, SurfaceCdc *out);

/*
 * Whether the task is ready (following, no outage, lag under
 * http.ready_lag); reason (cap bytes) says why or why not, in one line.
 */
bool surface_ready(Surface *s, char *reason, size_t cap);

/* Writes the /metrics body into out. Fails as buf_add. */
bool surface_metrics(Surface *s, Buf *out, Error *err);

/* Keeps p's lag and rate in s->history; the caller holds s->lock. */
void surface_history_keep(Surface *s, const CdcProgress *p);

/*
 * Writes the /history body into out: the samples of the last hour and the
 * log's last warnings and errors. Fails as buf_add.
 */
bool surface_history(Surface *s, Buf *out, Error *err);

/*
 * Adds src as a quoted JSON string (a log line or an error message: at
 * most a few kB, longer is cut). Fails as buf_add.
 */
bool surface_json_string(Buf *out, const char *src, Error *err);

/* The dashboard page (a static string) and its length. */
const char *surface_dashboard(size_t *len);

/* Starts and stops the server on s (http.c). */
bool surface_http_start(Surface *s, const char *addr, int port, Error *err);
void surface_http_stop(Surface *s);

#endif
