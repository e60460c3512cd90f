/*
 * apply: applying decoded source changes to one target, one batch of source
 * transactions per target transaction.
 *
 * Owns the target connection of the change stream (with
 * session_replication_role = replica and a replication origin set up for the
 * session), the relation descriptions pgoutput sends, the prepared statements
 * built from them, and the conflict policy. A batch is pipelined: every
 * statement is sent without waiting, the results are read once before COMMIT
 * (so a conflict can still stop the batch), and the origin is advanced to the
 * last source transaction of the batch in the same target transaction: the
 * target never shows part of a source transaction, and a crash loses the
 * batch and its origin advance together.
 *
 * It never talks to the source, except through relcols for the catalog
 * facts of a schema change, nor to another target, except to stage a moved
 * key's rows in its state (apply_handover.c); and it never decides what to
 * apply: the caller hands it decoded messages in source commit order.
 */
#ifndef PGTIDE_APPLY_H
#define PGTIDE_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "cdc/pgoutput.h"
#include "cdc/relcols.h"
#include "pg/pg.h"
#include "route/rename.h"
#include "route/shard.h"

typedef struct Applier Applier;

/* Where a source table goes and which of its changes to skip. */
typedef struct ApplyTable
{
	const char *src_schema;
	const char *src_name;
	const char *tgt_qname; /* "schema"."name" on the target */
	/* the source table's oid as registered, or 0 (an older pgtide's): a
	   change of it under another name is of the table renamed */
	uint32_t src_relid;
	Lsn load_point; /* skip changes of transactions committed before it */
	/* the task file's row filter (an SQL condition on the source's columns),
	   or NULL: every change applies (decision 0029). It also names this
	   task's rows of tgt_qname, which another task may write too: a DELETE
	   or TRUNCATE there touches only those (load/share.h). With several
	   targets, the routing is not part of it (filter_own) */
	const char *filter;
	/* with several targets: the column that routes each row (ApplyTask's
	   shard), or NULL for a table not routed by a key (decision 0032) */
	const char *route_key;
	/* shard.lookup's table: its changes change the routing (decision
	   0036) */
	bool lookup;
} ApplyTable;

/* What a conflict was: the target had the row, or lacked it. */
typedef enum ApplyConflict
{
	APPLY_CONFLICT_INSERT_EXISTS, /* an INSERT found the row there */
	APPLY_CONFLICT_UPDATE_MISSING,
	APPLY_CONFLICT_DELETE_MISSING,
	APPLY_NCONFLICTS
} ApplyConflict;

/* "insert_exists", "update_missing", "delete_missing": metric labels. */
const char *apply_conflict_name(ApplyConflict kind);

typedef struct ApplyCounters
{
	int64_t txns;      /* source transactions applied */
	int64_t changes;   /* row changes applied */
	int64_t conflicts; /* missing or duplicate rows met (skip/upsert) */
	int64_t conflicts_by[APPLY_NCONFLICTS]; /* the same, by kind */
	int64_t skipped;  /* changes skipped: before the table's load point */
	int64_t ignored;  /* changes of tables the task does not move, with
	                      ignore_unknown */
	int64_t filtered; /* row versions a row filter or the routing left out
	                     (an INSERT dropped, an UPDATE applied as the old
	                     row's DELETE) */
	Lsn applied_end;  /* end LSN of the last committed source transaction */
	int64_t applied_commit_time_us; /* its commit time (Unix microseconds) */
} ApplyCounters;

/*
 * What the applier knows of the task beyond its tables. The target follows
 * a task table's new columns: before the first change that uses a new
 * Relation message, the applier asks the source's catalog (relcols) and runs
 * sql (state_follow_columns_sql) for task in the batch's transaction. A
 * change of a table the task does not move stops the stream, unless
 * ignore_unknown. The source (relcols) also answers a filtered table's
 * condition on each new row version (decision 0029).
 */
typedef struct ApplyTask
{
	const char *sql;
	const char *task;
	RelCols *source; /* borrowed; used from the applier's thread only */
	bool ignore_unknown;
	/* the task's renames and removed columns (route/rename), or NULL;
	   borrowed: outlives the applier */
	const Renames *renames;
	/* several targets: the rules (borrowed; the applier keeps their lookup
	   keys current, apply_filter.c), and this stream's target */
	ShardSpec *shard;
	int shard_target;
	/* the task's statement that renames a table in its state
	   (state_table_rename_sql), or NULL: a table renamed on the source is
	   not followed */
	const char *rename_sql;
	/* the stream is a task's one slot, fed to several targets (decision
	   0043): a table another target joined reaches this one first, and is
	   waited for (its changes until this target joins it are in its copy,
	   counted as ignored) */
	bool shared_slot;
	/* the task's state schema on every target: a key the lookup table
	   moves hands its rows over through the taking target's (decision
	   0045); NULL: such a key stops the stream */
	const char *state_schema;
	/* whether the stream is stopping: a wait for another target's
	   handover gives up (optional) */
	bool (*stopping)(void *ctx);
	void *stopping_ctx;
} ApplyTask;

/*
 * Connects to the target, creates the replication origin `origin` if
 * missing, and sets it up for the session. tables (copied) tell where each
 * source table goes; with none, every table goes to the target table of the
 * same name. task (copied; NULL: a stream without a task, which follows no
 * schema change and applies every table's changes to its namesake). On success *out is the applier, freed with
 * apply_free().
 */
bool apply_new(const char *target_uri, const char *origin,
               const ApplyTable *tables, int ntables, OnConflict policy,
               const ApplyTask *task, Applier **out, Error *err);

void apply_free(Applier *a);

/*
 * Replaces a broken target connection. What pgoutput said of each relation is
 * kept (the source does not say it again), statements are prepared anew. Any
 * open batch is gone with the old connection.
 */
bool apply_reconnect(Applier *a, Error *err);

/*
 * Tables that joined the task while it streams (copied): their changes
 * apply from their load points on. Only between batches.
 */
bool apply_add_tables(Applier *a, const ApplyTable *tables, int ntables,
                      Error *err);

/* A handle to cancel the applier's running statement from another thread
 * (pg_cancel_new); the caller frees it. NULL without a session. */
PgCancel *apply_cancel_new(Applier *a);

/* The origin's durably flushed position on the target (0/0 when none). */
bool apply_flushed(Applier *a, Lsn *flushed, Error *err);

/* Starts a target transaction for a batch of source transactions. */
bool apply_batch_begin(Applier *a, Error *err);

/*
 * Starts the next source transaction of the batch: final_lsn decides which
 * tables skip its changes, xid names it in messages.
 */
void apply_txn_begin(Applier *a, uint32_t xid, Lsn final_lsn);

/* Applies one decoded message of the current source transaction. */
bool apply_message(Applier *a, const PgoMessage *m, Error *err);

/*
 * Reads every result, stops on a conflict under the stop policy, advances
 * the origin to end_lsn (the last source transaction's end) and commits.
 * On failure the target transaction is rolled back and nothing of the batch
 * is applied.
 */
bool apply_batch_commit(Applier *a, Lsn end_lsn, int64_t commit_time_us,
                        Error *err);

/* Rolls back an open batch (after a failure elsewhere). */
void apply_batch_abort(Applier *a);

/* Statements queued in the open batch. */
int apply_batch_size(const Applier *a);

/* Counters so far (the caller's copy). */
void apply_counters(const Applier *a, ApplyCounters *out);

#endif
