/*
 * state: pgtide's durable task state in the target database, in its own
 * schema (`pgtide` by default). It is the only memory a resumed run has.
 *
 *   task   one row per task: slot, publication, the slot's consistent point,
 *          phase, whether the pre-data schema is in place, run counter
 *   tables one row per source table: its state (pending -> copying -> done),
 *          the consistent point of the snapshot it was loaded from, how many
 *          times its load started, chunk counts, rows and bytes
 *   chunks one row per finished chunk, written in the same target transaction
 *          as the chunk's rows: a chunk is either there with its row, or not
 *   ddl    the post-data statements, each marked done in the transaction that
 *          ran it
 *
 * It never touches the source and never decides what to do next: task does.
 */
#ifndef PGTIDE_STATE_H
#define PGTIDE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/lsn.h"
#include "pg/pg.h"

typedef struct StateTask
{
	bool exists;
	char slot_name[64];
	char publication[64];
	Lsn consistent_lsn; /* LSN_INVALID until the slot exists */
	char phase[16];     /* new, load, postdata, loaded */
	bool schema_done;
	int run; /* this run's number (1 for the first) */
} StateTask;

/* Creates the schema and its tables if missing. */
bool state_init(PgConn *tgt, const char *schema, Error *err);

/*
 * Runs one statement over the state schema, @S in fmt standing for it
 * (quoted), with params; *out gets the result when out is not NULL.
 */
bool state_query(PgConn *tgt, const char *schema, const char *fmt, int nparams,
                 const char *const *params, PGresult **out, Error *err);

/*
 * Loads the task row into *out (out->exists false when there is none), or
 * creates it when create is true, and starts a new run (run = runs + 1).
 */
bool state_task_begin(PgConn *tgt, const char *schema, const char *task,
                      StateTask *out, Error *err);

/* Records the slot's consistent point (LSN_INVALID: slot being created). */
bool state_task_set_slot(PgConn *tgt, const char *schema, const char *task,
                         Lsn lsn, Error *err);

bool state_task_set_phase(PgConn *tgt, const char *schema, const char *task,
                          const char *phase, Error *err);

bool state_task_set_schema_done(PgConn *tgt, const char *schema,
                                const char *task, Error *err);

/*
 * Adds a pending row for a source table unless it is already known, and
 * records the target table it loads into.
 */
bool state_table_register(PgConn *tgt, const char *schema, const char *task,
                          const char *src_schema, const char *src_name,
                          const char *tgt_qname, Error *err);

/* A table of the task as the change stream needs it. */
typedef struct StateTable
{
	char *src_schema; /* owned */
	char *src_name;   /* owned */
	char *tgt_qname;  /* owned */
	Lsn snapshot_lsn; /* the consistent point it was loaded at */
	bool done;
} StateTable;

/* Every table of the task; *out is freed with state_tables_free(). */
bool state_tables_load(PgConn *tgt, const char *schema, const char *task,
                       StateTable **out, int *n, Error *err);

void state_tables_free(StateTable *t, int n);

/* Whether the table's load is finished. */
bool state_table_done(PgConn *tgt, const char *schema, const char *task,
                      const char *src_schema, const char *src_name, bool *done,
                      Error *err);

/*
 * Starts (or restarts) a table's load from a snapshot taken at snapshot_lsn
 * (snapshot_txids: its txid_current_snapshot(), which says exactly which
 * source transactions the load contains), cut into nchunks: forgets its finished chunks and counts one more load.
 * Runs inside the caller's transaction, which also empties the target table.
 */
bool state_table_start(PgConn *tgt, const char *schema, const char *task,
                       const char *src_schema, const char *src_name,
                       Lsn snapshot_lsn, const char *snapshot_txids,
                       int nchunks, const char *format, Error *err);

/* Chunks of the table already done, as a bitmap of nchunks bools (caller-owned). */
bool state_chunks_done(PgConn *tgt, const char *schema, const char *task,
                       const char *src_schema, const char *src_name, bool *done,
                       int nchunks, Error *err);

/*
 * Records a chunk as done, in the caller's open target transaction (the one
 * holding the chunk's rows). Marks the table done when it was the last one.
 */
bool state_chunk_done(PgConn *tgt, const char *schema, const char *task,
                      const char *src_schema, const char *src_name, int chunk,
                      int64_t start_block, int64_t end_block, int64_t rows,
                      int64_t bytes, int run, Error *err);

/* The change stream's last reported progress. */
typedef struct StateCdc
{
	Lsn applied_lsn;
	Lsn flushed_lsn;
	Lsn source_lsn;
	int64_t lag_bytes;
	double lag_seconds;
	int64_t txns;
	int64_t changes;
	double txns_per_s;
	double changes_per_s;
} StateCdc;

/* Records the change stream's progress on the task row (for pgtide status). */
bool state_task_set_cdc(PgConn *tgt, const char *schema, const char *task,
                        const StateCdc *c, Error *err);

/* Records the error that stopped the task (NULL clears it). */
bool state_task_set_error(PgConn *tgt, const char *schema, const char *task,
                          const char *message, Error *err);

/*
 * The position at which a running change stream must stop, set by cutover
 * at its point of no return (LSN_INVALID clears it).
 */
bool state_task_set_cutover_stop(PgConn *tgt, const char *schema,
                                 const char *task, Lsn lsn, Error *err);
bool state_task_cutover_stop(PgConn *tgt, const char *schema, const char *task,
                             Lsn *lsn, Error *err);

/*
 * The stream stopped at lsn: records phase 'cutover' only if cutover still
 * asks to stop there (*done). Cutover may have taken its request back after
 * the stream read it (its wait timed out, the fence is being undone): the
 * two updates of the same row are serialized, so exactly one of them wins,
 * and a stream that loses goes on following.
 */
bool state_task_finish_cutover(PgConn *tgt, const char *schema,
                               const char *task, Lsn lsn, bool *done,
                               Error *err);

/*
 * How to undo a cutover's fence on the source, saved before the fence goes
 * up (NULL clears it): a cutover killed while fenced leaves it for the next
 * run, which undoes the fence first. *undo is malloc'd (NULL when none).
 */
bool state_task_set_cutover_undo(PgConn *tgt, const char *schema,
                                 const char *task, const char *undo,
                                 Error *err);
bool state_task_cutover_undo(PgConn *tgt, const char *schema, const char *task,
                             char **undo, Error *err);

/* One cutover attempt, as reported to the user. Times are timestamptz text. */
typedef struct StateCutover
{
	char started_at[64];
	const char *fence_method;
	char fenced_at[64]; /* "" when the fence was never in place */
	Lsn marker_lsn;
	char done_at[64];  /* "" when it did not finish */
	int64_t window_ms; /* -1 when it did not finish */
	int64_t late_txns;
	int sequences;
	const char *validation;
	const char *result; /* done, failed (fence undone), failed (fenced) */
	const char *steps;  /* each step and its duration, one line each */
	char error[1024];
} StateCutover;

bool state_cutover_record(PgConn *tgt, const char *schema, const char *task,
                          const StateCutover *c, Error *err);

#endif
