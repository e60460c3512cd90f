/*
 * cutover_int: what cutover's files share: one cutover's record and the
 * helpers that report its steps. No caller outside src/cutover/ includes it.
 */
#ifndef PGTIDE_CUTOVER_INT_H
#define PGTIDE_CUTOVER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "pg/pg.h"
#include "state/state.h"
#include "verify/validate.h"

#define CUTOVER_POLL_MS    100
#define CUTOVER_LOG_EVERY  5000
#define CUTOVER_XID_WINDOW 100000 /* xids scanned for late writes, at most */
#define UNDO_COMMAND       "-- run cutover.unfence_command"
/* the fence's undo and role list: a statement per table and role */
#define CUTOVER_SQL_MAX ((size_t) 64 << 20)

/*
 * One target of the cutover: the task as that target's share (a task with
 * several targets has one per target, docs/sharding.md), and what the
 * cutover holds of it.
 */
typedef struct CutoverTarget
{
	const TaskConfig *cfg;
	const char *name; /* "target NAME: " before its lines; "" alone */
	char label[96];   /* what name points to with several targets */
	int index;        /* in the task file's order, from 0 */
	PgConn *tgt;
	/* the source as this target's steps read it: the cutover's session, or
	   one of the target's own while the targets settle side by side */
	PgConn *src;
	State state; /* on tgt */
	char slot[64];
	char origin[80];
	char **tables; /* source tables of its share, "schema"."name" */
	int ntables;
	StateTable *dropped; /* tables of the task the source no longer has */
	int ndropped;
	bool cut_over;   /* its stream had stopped at the marker when we began */
	bool stopped;    /* its stream stopped at this cutover's marker */
	int64_t step_ms; /* while it settles: the start of its current step */
	int sequences;   /* set on it by this cutover */
} CutoverTarget;

typedef struct Cutover
{
	const TaskConfig *cfg; /* the task file: the fence, the waits */
	atomic_int *stop;
	PgConn *src;
	CutoverTarget *targets;
	int ntargets;
	char **tables; /* every target's tables once: what the fence covers */
	int ntables;

	bool fenced;
	Buf undo; /* SQL that lifts the fence, or UNDO_COMMAND; saved in every
	             target's state before the fence goes up */

	char fence_snapshot[256]; /* txid snapshot just after the fence */
	Lsn marker;
	char marker_xid[24];
	int64_t late_txns; /* committed after the fence, before the marker */
	int sequences;
	char validation[256];
	/* several targets, counts: every target's share of each table, counted
	   once over the fenced source (shares.c) while the targets settle */
	ValidateShares shares;
	bool shares_used;

	int64_t step_ms; /* start of the current step */
	int64_t fence_ms;
	int64_t done_ms; /* the streams stopped: writes go to the targets now */
	char steps[8192];
	size_t steps_len;
	StateCutover rec;
} Cutover;

/* The wall clock as timestamptz text (UTC, milliseconds), into buf. */
void cutover_wall_text(char *buf, size_t cap);

/* tables a message names; the rest are counted */
#define CUTOVER_NAMES_SHOWN 5

/*
 * Adds name, the i-th of n, to the list of names buf holds (cap bytes;
 * i = 0 starts it): "a, b, c", and past CUTOVER_NAMES_SHOWN " and N more".
 */
void cutover_name_list(char *buf, size_t cap, int i, int n, const char *name);

/*
 * Ends the current step: one line of the report, and the next step's start.
 * t names the target the step was on; NULL for a step on the source. Safe
 * from the threads of targets settling side by side (each has its own
 * step clock then).
 */
void cutover_step_done(Cutover *c, CutoverTarget *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- resync.c ---- */

/*
 * Refuses, changing nothing, a revoke fence while the source has large
 * objects (it cannot stop their writes), and, naming them, keyless tables
 * that saw an UPDATE or DELETE unless the task copies them again
 * (cutover.diverged).
 */
bool resync_precheck(Cutover *c, CutoverTarget *t, Error *err);

/*
 * Fenced, with every streamed change on the target: looks at the keyless
 * tables once more (refusing as above), then copies again the unlogged
 * tables and the diverged keyless ones the task copies again.
 */
bool resync_tables(Cutover *c, CutoverTarget *t, Error *err);

/*
 * Fenced: brings the target's large objects up to the source's (created,
 * changed, dropped ones), each in one target transaction.
 */
bool resync_large_objects(Cutover *c, CutoverTarget *t, Error *err);

/* ---- dropped.c ---- */

/*
 * Finds the task's tables dropped on the source since the load and takes
 * them out of c->tables; refuses them (cutover.dropped_tables = refuse),
 * naming them, before anything is fenced.
 */
bool dropped_find(Cutover *c, CutoverTarget *t, Error *err);

/*
 * Fenced: drops them on the target (drop) or leaves them (keep), and the
 * task forgets them, in one target transaction; one line of the report.
 */
bool dropped_settle(Cutover *c, CutoverTarget *t, Error *err);

/* ---- leftout.c ---- */

/*
 * Refuses, naming them, the tables the task's patterns select on the
 * source that the task does not move (load/newtables): a cutover would
 * leave them behind. Before anything is fenced.
 */
bool leftout_refuse(CutoverTarget *t, Error *err);

/* ---- refresh.c ---- */

/*
 * Refreshes on the target every materialized view the source has populated,
 * each after those it reads; one line of the report.
 */
bool cutover_refresh_matviews(Cutover *c, CutoverTarget *t, Error *err);

/*
 * shares.c: every target's share of each selected table of the fenced
 * source, counted in one pass, into *out (its lock and cond initialized by
 * the caller; cutover_shares_free), which is then ready (or failed) for
 * the targets' validations waiting on it; a table whose share is cheaper
 * counted by each target is left out of it.
 */
bool cutover_count_shares(Cutover *c, ValidateShares *out, Error *err);
void cutover_shares_free(ValidateShares *s);

/* ---- fence.c ---- */

/*
 * Refuses (changing nothing) a revoke fence whose roles do not exist or
 * cannot be fenced that way.
 */
bool fence_check_roles(Cutover *c, Error *err);

/*
 * Puts the fence up the configured way (revoke, read-only, a command),
 * having saved its undo in the task's state first; c->fenced once it may
 * be up.
 */
bool fence_up(Cutover *c, Error *err);

/* Puts the source back as it was before the fence, and forgets the undo. */
bool fence_down(Cutover *c, Error *err);

/*
 * Lifts a fence an earlier cutover left up (killed while fenced), before
 * anything else.
 */
bool fence_undo_leftover(Cutover *c, Error *err);

#endif
