/*
 * guard: the guards over the source while a task copies, loads or streams
 * (docs/guard.md, decision 0025): the WAL the task's slot retains (warn,
 * pause, stop and drop the slot), a slot the server invalidated, the xmin
 * horizon pgtide's snapshots hold and the database's transaction ID age
 * (warnings that say what they cost), and a heartbeat that lets the slot
 * of an idle database advance.
 *
 *   guard thread ──own source session──► pg_replication_slots,
 *        │                               pg_stat_activity, pg_database
 *        ├── gate_hold / gate_release (the load's copy workers)
 *        ├── guard_paused()  (the stream's joins of new tables)
 *        ├── *stop = 1       (the stop action; guard_finish says why)
 *        ├── on_report       (status over HTTP, metrics)
 *        └──own target session──► the task row's guard column (status)
 *
 * It never changes the source's data: its only writes there are the
 * heartbeat's logical message and, for the stop action, the drop of the
 * task's own slot (ending pgtide's own walsender that holds it first).
 */
#ifndef PGTIDE_GUARD_H
#define PGTIDE_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/gate.h"

/* The retained WAL guard's level, each threshold past the one before. */
typedef enum GuardLevel
{
	GUARD_LEVEL_OK,
	GUARD_LEVEL_WARN,
	GUARD_LEVEL_PAUSE,
	GUARD_LEVEL_STOP,
} GuardLevel;

#define GUARD_MSG_MAX 512

/* What the guard last read and did, for status, metrics and the log. */
typedef struct GuardReport
{
	bool have;                 /* read the source at least once */
	bool slot_found;           /* the task's slot is on the source */
	int64_t retained_bytes;    /* restart_lsn to the WAL end; -1 unknown */
	int64_t unconfirmed_bytes; /* confirmed_flush_lsn to the WAL end */
	char wal_status[16];       /* PostgreSQL 13+; "" unknown */
	int64_t warn_bytes;        /* thresholds in bytes; 0 off */
	int64_t pause_bytes;
	int64_t stop_bytes;
	GuardLevel level;
	bool paused;             /* the guard holds the load's gate or the joins */
	int64_t actions[4];      /* crossings into each level, by GuardLevel */
	int64_t oldest_xmin_age; /* transactions; the source's; -1 unknown */
	double snapshot_age_s;   /* pgtide's longest-held xmin; -1 none */
	int64_t xid_age;         /* age(datfrozenxid) of the database; -1 */
	int64_t dead_rows;       /* n_dead_tup of the database; -1 unknown */
	bool xmin_warned;        /* past guard.xmin_age now */
	bool xid_warned;         /* past guard.xid_age now */
	int64_t heartbeats;      /* logical messages emitted */
	bool heartbeat_refused;  /* the role may not emit them */
	char message[GUARD_MSG_MAX]; /* the last action said; "" none */
} GuardReport;

/* Called from the guard thread after each reading; must not block. */
typedef void (*GuardReportFn)(const GuardReport *r, void *ctx);

typedef struct GuardOptions
{
	const TaskConfig *cfg;
	bool has_slot; /* copy keeps no slot: its guard watches xmin alone */
	Gate *gate;    /* the load's, or NULL */
	atomic_int *stop;
	GuardReportFn on_report; /* optional */
	void *report_ctx;
} GuardOptions;

typedef struct Guard Guard;

/*
 * Starts the guard thread. Fails with ERR_CONFIG when a threshold is a
 * share of check.wal_free_space and that is not declared, or when the
 * thresholds are out of order. On success *out is the caller's, ended with
 * guard_finish(). o (and what it points to) must outlive the guard.
 */
bool guard_start(const GuardOptions *o, Guard **out, Error *err);

/* Tells the guard the change stream runs now (its pause says so). */
void guard_streaming(Guard *g);

/* Whether the guard holds back what pgtide adds (a thread-safe read). */
bool guard_paused(Guard *g);

/* Whether the guard stopped the task (thread-safe). */
bool guard_stopped(Guard *g);

/*
 * Stops the thread and frees g (NULL is a no-op). When the guard stopped
 * the task, returns false with ERR_GUARD and the message for a person
 * (for the stop action, after dropping the slot if the guard thread could
 * not: the caller has let go of it by now); else true.
 */
bool guard_finish(Guard *g, Error *err);

/* The report as one JSON object, into buf (cap bytes); "" on overflow. */
void guard_report_json(const GuardReport *r, char *buf, size_t cap);

const char *guard_level_name(GuardLevel level);

#endif
