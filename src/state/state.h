/*
 * state: pgtide's durable task state in the target database, in its own
 * schema (`pgtide` by default). It is the only memory a resumed run has, and
 * the only bus between the stages and commands of a task: the load, the
 * stream, status, validate, cutover and clean meet here and nowhere else.
 *
 *   task        one row per task: slot, publication, the slot's consistent
 *               point and when it was made (or that copy kept none), phase, whether the pre-data schema is in place, run
 *               counter, the stream's last progress, the last error, and
 *               cutover's stop request and fence undo
 *   tables      one row per source table: pending -> copying -> done, the
 *               consistent point of the snapshot it was loaded from, how many
 *               times its load started, chunk counts, rows and bytes
 *   chunks      one row per finished chunk, written in the same target
 *               transaction as the chunk's rows
 *   ddl         the post-data steps, each marked done in the transaction that
 *               ran it
 *   cutovers    one row per cutover attempt, as reported
 *   processes   the process running the task (host, pid, command, since)
 *               and its lock's session on the target (process.c)
 *   handovers, handover_rows
 *               a key's rows another target handed to this one (handover.c)
 *   validation_runs, validation_tables, validation_differences
 *               pgtide validate's results
 *
 * Every statement over these tables is in this module (state.c: the schema,
 * the task row and cutover; steps.c: tables, chunks and post-data steps;
 * validation.c: validation results; process.c: the task's lock;
 * handover.c: keys' rows moved between targets). It never touches the
 * source and never decides what to do next: the commands do. Functions run
 * on the handle's connection, inside whatever transaction the caller has
 * open; none commits on its own except state_open and state_task_begin. On
 * failure each fills err, prefixed "state: ", and returns false.
 */
#ifndef PGTIDE_STATE_H
#define PGTIDE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "pg/catalog.h"
#include "pg/pg.h"

/* Room for a quoted identifier of NAMEDATALEN - 1 bytes, every byte a quote. */
#define STATE_QSCHEMA_MAX 132

/*
 * Where a task's state lives: a target session and the schema and task it
 * names. Fields are the module's; the strings and the connection are
 * borrowed and must outlive the handle. A handle is a small value: a thread
 * with a connection of its own makes its own with state_on().
 */
typedef struct State
{
	PgConn *conn;
	const char *schema;
	const char *task;
	char qschema[STATE_QSCHEMA_MAX]; /* schema, quoted for SQL */
} State;

/*
 * Opens the task's state on tgt, creating the schema and its tables when
 * missing (and adding what an older pgtide's schema lacks). Touches nothing
 * outside pgtide's own schema. Fails (ERR_CONFIG) on a schema name too long
 * for PostgreSQL.
 */
bool state_open(State *s, PgConn *tgt, const char *schema, const char *task,
                Error *err);

/*
 * Opens the task's state for reading, never creating anything: *exists is
 * false when the target has no state schema (status, check and clean must
 * not change a target that has none).
 */
bool state_attach(State *s, PgConn *tgt, const char *schema, const char *task,
                  bool *exists, Error *err);

/*
 * Fills the handle without reading or creating anything: for a session that
 * only runs statements over a state another process opened. Fails
 * (ERR_CONFIG) on a schema name too long for PostgreSQL.
 */
bool state_bind(State *s, PgConn *tgt, const char *schema, const char *task,
                Error *err);

/* The same state reached through another session (a copy worker's). */
State state_on(const State *s, PgConn *conn);

/* ---- the task row ---- */

/* Where a task is in its lifecycle; stored as its name. */
typedef enum StatePhase
{
	STATE_PHASE_NEW,      /* row created, nothing on the source yet */
	STATE_PHASE_LOAD,     /* slot created, tables loading */
	STATE_PHASE_POSTDATA, /* indexes and constraints building */
	STATE_PHASE_LOADED,   /* full load done, stream not yet started */
	STATE_PHASE_CDC,      /* the change stream follows the source */
	STATE_PHASE_CUTOVER,  /* cut over: the stream stopped at the marker */
} StatePhase;

/* "new", "load", ... as stored and shown. */
const char *state_phase_name(StatePhase phase);

typedef struct StateTask
{
	bool exists;
	char slot_name[64];
	char publication[64];
	char insert_publication[64]; /* the keyless tables' one; "" for none */
	Lsn consistent_lsn;          /* LSN_INVALID until the slot exists */
	StatePhase phase;
	bool schema_done;
	int run; /* this run's number (1 for the first); runs so far when read */
	/* loaded by pgtide copy from temporary slots: no slot was kept, so the
	 * change stream has no start that matches the load */
	bool copy_only;
	char slot_created_at[64]; /* when the kept slot was made; "" unknown */
	char origin_name[80];     /* the replication origin on the target */
} StateTask;

/*
 * Loads the task row into *out, creating it when missing (with the names of
 * its slot and publications on the source), and starts a new run (run =
 * runs + 1). Commits on its own.
 */
bool state_task_begin(const State *s, const char *slot, const char *publication,
                      StateTask *out, Error *err);

/*
 * Creates the task row with those names unless it exists, without starting
 * a run (state_task_begin does, and counts the first), so that a target
 * whose preparation has not begun already names the slot it will share.
 */
bool state_task_ensure(const State *s, const char *slot,
                       const char *publication, Error *err);

/* Reads the task row; out->exists is false when there is none. */
bool state_task_read(const State *s, StateTask *out, Error *err);

/*
 * Records the kept slot's consistent point and when it was made (LSN_INVALID:
 * slot being created).
 */
bool state_task_set_slot(const State *s, Lsn lsn, Error *err);

/*
 * Records the consistent point of the first snapshot of a load that keeps no
 * slot (pgtide copy): the task can never be streamed.
 */
bool state_task_set_copy_only(const State *s, Lsn lsn, Error *err);

bool state_task_set_phase(const State *s, StatePhase phase, Error *err);

bool state_task_set_schema_done(const State *s, Error *err);

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
	int64_t ignored;  /* of tables the task does not move, on purpose */
	int64_t filtered; /* row versions a row filter or the routing left out */
	double txns_per_s;
	double changes_per_s;
	char outage[512]; /* which side is down and since when; "" when none */
} StateCdc;

/*
 * Commits a write of the task row with synchronous_commit on, whatever the
 * session's or the database's setting: once it returns, every transaction
 * the target committed before it is on disk, those that copy and apply
 * sessions committed with synchronous_commit off too. What the state says
 * after it is what a crash of the target can no longer take back.
 */
bool state_sync(const State *s, Error *err);

/* Records the change stream's progress on the task row (for pgtide status). */
bool state_task_set_cdc(const State *s, const StateCdc *c, Error *err);

/*
 * Records what the guards over the source last saw and did, as one JSON
 * object (guard/guard.h writes it; status shows it as it is).
 */
bool state_task_set_guard(const State *s, const char *json, Error *err);

/* Records the error that stopped the task (NULL clears it). */
bool state_task_set_error(const State *s, const char *message, Error *err);

/*
 * Deletes the task's state; the schema goes with the last task, since it is
 * pgtide's alone.
 */
bool state_task_drop(const State *s, Error *err);

/* ---- what pgtide status shows ---- */

typedef struct StateTableStatus
{
	char *name; /* "schema.table", owned */
	char state[16];
	int loads;
	int chunks;
	int chunks_done;
	int64_t rows;
	int64_t bytes;
	Lsn snapshot_lsn; /* LSN_INVALID before its load started */
} StateTableStatus;

/*
 * A task as pgtide status reports it. Text fields are the server's text
 * (timestamps in the session's time zone); "" when null.
 */
typedef struct StateStatus
{
	StateTask task;
	char updated_at[64];
	bool has_cdc; /* the stream has reported progress */
	StateCdc cdc;
	char cdc_updated_at[64];
	double cdc_age_s; /* seconds since then, by the target's clock */
	char *last_error; /* owned; NULL when none */
	char *guard;      /* owned JSON object; NULL before the guard wrote */
	char last_error_at[64];
	StateTableStatus *tables; /* owned; unfinished first, largest first */
	int ntables;
	int postdata_steps;
	int postdata_done;
} StateStatus;

/*
 * Reads everything status shows. Fails with ERR_CONFIG when the task is
 * unknown. Free with state_status_free().
 */
bool state_status_read(const State *s, StateStatus *out, Error *err);

void state_status_free(StateStatus *st);

/* ---- the process running the task (process.c) ---- */

/*
 * One process per task: a copy, migrate or follow holds the task's lock, a
 * session-level advisory lock on the target, for as long as it runs, and
 * records who it is so that a second one and status can name it. The lock
 * is the truth: a record whose session no longer holds the lock (the
 * process was killed) names no running process. None of these creates the
 * state schema except state_process_record, which needs it.
 */

/* The advisory lock's first key: "pgtd", pgtide's namespace (two-key form). */
#define STATE_LOCK_NAMESPACE 1885828196

/*
 * The lock's second key: a hash of the state schema and task name, fixed
 * for every version of pgtide (two versions must agree on it).
 */
int32_t state_lock_key(const char *schema, const char *task);

/*
 * Tries to take the task's lock on the handle's session, without waiting:
 * *taken says whether it has it now. since (cap bytes) gets the target's
 * clock when taken, for the record.
 */
bool state_lock_try(const State *s, bool *taken, char *since, size_t cap,
                    Error *err);

/* Gives the lock back (ending the session does too). */
bool state_lock_release(const State *s, Error *err);

/* Who runs a task, as read from the target. */
typedef struct StateProcess
{
	bool running;        /* a session holds the task's lock */
	bool known;          /* the record names the process of that session */
	int backend_pid;     /* the lock's session on the target, 0 when none */
	char host[256];      /* "" when not known */
	int pid;             /* on its host, 0 when not known */
	char command[32];    /* copy, migrate, follow, clean */
	char since[64];      /* when it took the lock (timestamptz text) */
	char session[128];   /* the lock session's application_name, when not
	                      known: the process names itself there too */
	char throttle[2048]; /* the load's throttle as the process last
	                        recorded it (JSON), "" when none runs */
} StateProcess;

/*
 * Reads who runs the task; reads only. schema_exists: whether the state
 * schema is there (from state_attach); without it, or without its record
 * table (an older schema), only the lock is looked at.
 */
bool state_process_read(const State *s, bool schema_exists, StateProcess *out,
                        Error *err);

/*
 * Records this process as the one running the task, with the handle's
 * session (the one holding the lock). The state schema must exist
 * (state_open). Commits on its own.
 */
bool state_process_record(const State *s, const char *host, int pid,
                          const char *command, const char *since, Error *err);

/*
 * Records what the running load's throttle does (a JSON object), or NULL
 * when none runs, in this session's record. Commits on its own.
 */
bool state_process_note_throttle(const State *s, const char *json, Error *err);

/* Deletes this session's record of the task, if it is still there. */
bool state_process_forget(const State *s, Error *err);

/* ---- insert-only tables (insert_only.c) ---- */

/*
 * A table without a key, streamed for its INSERT and TRUNCATE only, and
 * what its source's statistics said: baseline is n_tup_upd + n_tup_del
 * read before the slot existed, so any UPDATE or DELETE since then shows.
 */
typedef struct StateInsertOnly
{
	char *src_schema; /* owned */
	char *src_name;   /* owned */
	uint32_t relid;   /* on the source */
	int64_t baseline;
	bool diverged;
	char diverged_at[40]; /* "" while not diverged */
	char reason[200];
} StateInsertOnly;

/* ---- the task's table patterns (selection.c) ---- */

/* The patterns the task's follower last ran with. */
typedef struct StateSelection
{
	bool recorded; /* false: no follower recorded any (an older pgtide) */
	char **include;
	int ninclude;
	char **exclude;
	int nexclude;
} StateSelection;

/*
 * Records the patterns the task runs with (tables.include, tables.exclude),
 * replacing those of an earlier run: what status and cutover take for the
 * task's when their own command names none.
 */
bool state_selection_save(const State *s, const StrList *include,
                          const StrList *exclude, Error *err);

/* Reads them; free with state_selection_free. */
bool state_selection_read(const State *s, StateSelection *out, Error *err);
void state_selection_free(StateSelection *sel);

/*
 * Records the task's insert-only publication (NULL: none) and its tables
 * with their baselines, replacing what a run that stopped before its slot
 * existed had recorded: one statement, so a kill leaves the old or the new.
 */
bool state_insert_only_save(const State *s, const char *publication,
                            const StateInsertOnly *t, int n, Error *err);

/* Every insert-only table; *out is freed with state_insert_only_free(). */
bool state_insert_only_load(const State *s, StateInsertOnly **out, int *n,
                            Error *err);

void state_insert_only_free(StateInsertOnly *t, int n);

/*
 * Records that the table diverged, and why, unless it already had; the
 * first time is kept.
 */
bool state_insert_only_diverged(const State *s, const char *src_schema,
                                const char *src_name, const char *reason,
                                Error *err);

/* ---- large objects (large_objects.c) ---- */

/*
 * The digests of the large objects pgtide copied with an oid in
 * [first, last], ascending by oid, into oids/digests (parallel, cap
 * entries; digests of STATE_LO_DIGEST bytes); *n gets how many.
 */
#define STATE_LO_DIGEST 33
bool state_lo_range(const State *s, uint32_t first, uint32_t last,
                    uint32_t *oids, char (*digests)[STATE_LO_DIGEST], int cap,
                    int *n, Error *err);

/*
 * Up to cap oids of copied large objects above `after`, ascending; *n gets
 * how many (fewer than cap: the last batch).
 */
bool state_lo_after(const State *s, uint32_t after, uint32_t *oids, int cap,
                    int *n, Error *err);

/* Records a copied large object and its digest, in the caller's transaction. */
bool state_lo_set(const State *s, uint32_t oid, const char *digest, Error *err);

/* Forgets a large object, in the caller's transaction. */
bool state_lo_forget(const State *s, uint32_t oid, Error *err);

/* ---- tables and chunks of the full load (steps.c) ---- */

/*
 * Adds a pending row for a source table unless it is already known, and
 * records the target table it loads into, with the row filter it loads by
 * (NULL: every row) and its on_conflict setting's name: what another task
 * sharing that target table must know (load/share.c).
 */
bool state_table_register(const State *s, const char *src_schema,
                          const char *src_name, uint32_t src_relid,
                          const char *tgt_qname, const char *row_filter,
                          const char *on_conflict, Error *err);

/* A table of the task as the change stream needs it. */
typedef struct StateTable
{
	char *src_schema;   /* owned */
	char *src_name;     /* owned */
	char *tgt_qname;    /* owned */
	uint32_t src_relid; /* the source table's oid; 0 when an older pgtide
	                       registered it */
	Lsn snapshot_lsn;   /* the consistent point it was loaded at */
	bool done;
} StateTable;

/*
 * Another task of this state schema that loads into the target table
 * tgt_qname: its name in owner (cap bytes), "" when none does.
 */
bool state_table_other_owner(const State *s, const char *tgt_qname, char *owner,
                             size_t cap, Error *err);

/* Another task that writes a target table, as state_table_register
 * recorded it. */
typedef struct StateSharer
{
	char task[64];
	char *row_filter;  /* owned; NULL: it loads every row */
	char *on_conflict; /* owned; NULL: recorded by an older pgtide */
} StateSharer;

/* The other tasks of this state schema that write tgt_qname (*n of them,
 * in name order); free with state_sharers_free. */
bool state_table_sharers(const State *s, const char *tgt_qname,
                         StateSharer **out, int *n, Error *err);
void state_sharers_free(StateSharer *sh, int n);

/*
 * Forgets a table of the task (its chunks, its keyless baseline): the
 * source dropped it, and cutover was told what the target does with it.
 * Runs in the caller's transaction, if one is open.
 */
bool state_table_forget(const State *s, const char *src_schema,
                        const char *src_name, Error *err);

/* Every table of the task; *out is freed with state_tables_free(). */
bool state_tables_load(const State *s, StateTable **out, int *n, Error *err);

void state_tables_free(StateTable *t, int n);

/* Whether the table's load is finished. */
bool state_table_done(const State *s, const char *src_schema,
                      const char *src_name, bool *done, Error *err);

/*
 * Starts (or restarts) a table's load from a snapshot taken at snapshot_lsn
 * (snapshot_txids: its txid_current_snapshot(), which says exactly which
 * source transactions the load contains), cut into nchunks: forgets its
 * finished chunks and counts one more load. Runs inside the caller's
 * transaction, which also empties the target table.
 */
bool state_table_start(const State *s, const char *src_schema,
                       const char *src_name, Lsn snapshot_lsn,
                       const char *snapshot_txids, int nchunks,
                       const char *format, Error *err);

/* A text[] literal of a table's column names or types: 1,600 columns. */
#define STATE_COLUMNS_MAX ((size_t) 1 << 20)

/*
 * Records the source columns the target table follows (names and their
 * format_type(); the catalog leaves generated ones out), in the caller's
 * transaction: the load's, from the catalog it copied with.
 */
bool state_columns_record(const State *s, const CatTable *t, Error *err);

/*
 * The statement the change stream runs, in its batch transaction, before the
 * first change that follows a new description of a table: parameters task,
 * source schema, source name, target table, then five text[] literals over
 * the description's columns: names, format_type(), the value existing rows
 * read (the source's missing value), flags ('m' that value applies, 'd' a
 * default, 'n' NOT NULL), the default's expression. It changes the target
 * table to match, or fails with a message naming what to run by hand
 * (columns.c). malloc'd, or NULL when out of memory.
 */
char *state_follow_columns_sql(const State *s);

/*
 * The statement that renames a table of the task in its state, to run on
 * the target in the stream's transaction: $1 the task, $2 and $3 its old
 * source schema and name, $4 and $5 its new ones, $6 its new target name.
 * Malloc'd, or NULL when out of memory.
 */
char *state_table_rename_sql(const State *s);

/* fmt with @S replaced by the quoted state schema; malloc'd, or NULL. */
char *state_sql(const State *s, const char *fmt);

/* Chunks of the table already done, as nchunks bools (caller-owned). */
bool state_chunks_done(const State *s, const char *src_schema,
                       const char *src_name, bool *done, int nchunks,
                       Error *err);

/*
 * Records a chunk as done, in the caller's open target transaction (the one
 * holding the chunk's rows). Marks the table done when it was the last one.
 */
bool state_chunk_done(const State *s, const char *src_schema,
                      const char *src_name, int chunk, int64_t start_block,
                      int64_t end_block, int64_t rows, int64_t bytes, int run,
                      Error *err);

/* ---- post-data steps (steps.c) ---- */

/* One saved post-data statement. */
typedef struct StateStep
{
	int entry;  /* its order in the dump */
	int phase;  /* 1: indexes and keys ... (schema.c decides) */
	char *kind; /* owned: "INDEX", "FK CONSTRAINT", ... */
	char *object;
	char *sql;
	char *tbl_schema; /* owned; NULL: the step waits for no table */
	char *tbl_name;
	int64_t weight; /* larger first */
} StateStep;

/*
 * Saves one step (the fields of a StateStep), in the caller's transaction;
 * tbl_schema NULL: the step waits for no table.
 */
bool state_step_save(const State *s, int entry, int phase, const char *kind,
                     const char *object, const char *tbl_schema,
                     const char *tbl_name, int64_t weight, const char *sql,
                     Error *err);

/*
 * The phase's steps not yet done, largest weight first; *out is freed with
 * state_steps_free().
 */
bool state_steps_pending(const State *s, int phase, StateStep **out, int *n,
                         Error *err);

void state_steps_free(StateStep *steps, int n);

/* Marks a step done by run, in the caller's transaction (the one that ran it). */
bool state_step_done(const State *s, int entry, int run, Error *err);

/*
 * Whether a step is marked done: after a COMMIT whose answer was lost, the
 * mark, committed with the step, says whether the step took effect.
 */
bool state_step_is_done(const State *s, int entry, bool *done, Error *err);

/* ---- validation results (validation.c) ---- */

/*
 * Starts a validation run's row (status running); *run_id names it. mode is
 * "full" or "counts".
 */
bool state_validation_begin(const State *s, const char *mode, double sample,
                            bool cdc, int64_t *run_id, Error *err);

/* One table's result in a run. */
typedef struct StateValidationTable
{
	const char *src_table;
	const char *tgt_table;
	const char *status;      /* equal, different, missing, ... */
	const char *key_columns; /* "a, b"; NULL for a table without a key */
	const char *detail;      /* why it could not be compared, or NULL */
	int ranges;
	int ranges_checked;
	int64_t rows_source;
	int64_t rows_target;
	int64_t differences;
} StateValidationTable;

/* One difference named in a table's result. */
typedef struct StateValidationDiff
{
	const char *kind; /* missing, extra, different */
	const char *key;  /* "(a)=(1)"; NULL without a key */
	const char *row;  /* the row's text, or NULL */
	bool counted;     /* a keyless table's: copies on each side */
	int64_t source_copies;
	int64_t target_copies;
} StateValidationDiff;

/* Records a table's result and its named differences, in the caller's
 * transaction. */
bool state_validation_table(const State *s, int64_t run_id,
                            const StateValidationTable *t,
                            const StateValidationDiff *diffs, int ndiffs,
                            Error *err);

/* A run's totals, recorded when it ends. */
typedef struct StateValidationTotals
{
	const char *status; /* equal or different */
	int tables;
	int tables_differing;
	int64_t ranges;
	int64_t ranges_checked;
	int64_t rows_source;
	int64_t rows_target;
	int64_t differences;
} StateValidationTotals;

bool state_validation_end(const State *s, int64_t run_id,
                          const StateValidationTotals *t, Error *err);

/* A run that failed or was interrupted, with the message that ended it. */
bool state_validation_fail(const State *s, int64_t run_id, bool interrupted,
                           const char *message, Error *err);

/* ---- handovers (handover.c) ---- */

/*
 * A key the lookup table gives another target moves its rows between the
 * two targets' streams (decision 0045). The giving target's stream stages
 * the rows, as its target holds them at the change, in the taking target's
 * state, in a transaction of its own on the taking target's server; the
 * taking target's stream takes them into its tables in its batch. A
 * handover is named by its change (the source transaction's commit position
 * and the change's order among the transaction's handovers) and the key.
 *
 *   handovers       one row per handover: the giving target, the tables it
 *                   staged and those it loaded after the change, whether
 *                   the rows were taken
 *   handover_rows   the staged rows, each column as its text, until taken
 */

/* On the taking target, from the giving target's session: whether the
 * handover is staged already (a giver that crashed after staging). */
bool state_handover_staged(const State *s, const char *change, const char *key,
                           bool *staged, Error *err);

/*
 * On the taking target, in the giver's open transaction: records the
 * handover, then (state_handover_add_rows, any number of times) its rows:
 * tbl the giver's target table, cols a text[] literal of its column names,
 * rows a text[] literal of rows, each a text[] literal of the columns'
 * texts. staged and loaded_after are text[] literals of tables.
 */
bool state_handover_begin(const State *s, const char *change, const char *key,
                          const char *giver, const char *staged,
                          const char *loaded_after, Error *err);
bool state_handover_add_rows(const State *s, const char *change,
                             const char *key, const char *tbl, const char *cols,
                             const char *rows, Error *err);

/*
 * The statements the taking target's stream runs in its batch (malloc'd,
 * NULL when out of memory), each with $1 task, $2 change, $3 key:
 *   find   nothing until staged; then rows (table, kind, taken): kind 'h'
 *          once (table NULL), 's' per table staged, 'a' per table the
 *          giving target loaded after the change
 *   cols   ($4 a table) the column names of its staged rows, in order; no
 *          row when none was staged
 *   rows   ($4 a table) a subquery of its staged rows' texts, vals text[]
 *   take   the staged rows deleted, the handover marked taken
 */
typedef struct StateHandoverSql
{
	char *find;
	char *cols;
	char *rows;
	char *take;
} StateHandoverSql;

bool state_handover_sql(const State *s, StateHandoverSql *out);
void state_handover_sql_free(StateHandoverSql *sql);

/* ---- cutover ---- */

/*
 * The position at which a running change stream must stop, set by cutover
 * at its point of no return (LSN_INVALID clears it).
 */
bool state_task_set_cutover_stop(const State *s, Lsn lsn, Error *err);
bool state_task_cutover_stop(const State *s, Lsn *lsn, Error *err);

/*
 * The stream stopped at lsn: records phase 'cutover' only if cutover still
 * asks to stop there (*done). Cutover may have taken its request back after
 * the stream read it (its wait timed out, the fence is being undone): the
 * two updates of the same row are serialized, so exactly one of them wins,
 * and a stream that loses goes on following.
 */
bool state_task_finish_cutover(const State *s, Lsn lsn, bool *done, Error *err);

/*
 * How to undo a cutover's fence on the source, saved before the fence goes
 * up (NULL clears it): a cutover killed while fenced leaves it for the next
 * run, which undoes the fence first. *undo is malloc'd (NULL when none).
 */
bool state_task_set_cutover_undo(const State *s, const char *undo, Error *err);
bool state_task_cutover_undo(const State *s, char **undo, Error *err);

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

bool state_cutover_record(const State *s, const StateCutover *c, Error *err);

#endif
