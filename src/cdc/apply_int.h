/*
 * apply_int: what the files of apply share; nothing outside src/cdc/
 * includes it (callers use cdc/apply.h).
 *
 *   apply.c        the Applier and its target session: the replication role,
 *                  the origin, the identity columns the target generates;
 *                  reconnecting; each decoded message to its handler
 *   apply_stmt.c   the statements per relation: the relation cache (with
 *                  each column's target name, or its removal: route/rename),
 *                  the SQL of each change (INSERT runs, UPDATE, DELETE,
 *                  TRUNCATE) and its parameter values
 *   apply_handover.c
 *                  a key the lookup table moves: its rows handed between
 *                  the giving and the taking target's streams
 *   apply_batch.c  the pipeline and the batch: prepared statements, the ring
 *                  of statements waiting for results, the conflicts those
 *                  results reveal, the commit with the origin advance
 *
 * A change flows one way: apply.c hands it to apply_stmt.c, which builds its
 * statement and sends it through apply_batch.c, which reads the result back
 * and, at the end of the batch, commits.
 */
#ifndef PGTIDE_APPLY_INT_H
#define PGTIDE_APPLY_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "cdc/apply.h"
#include "cdc/pgoutput.h"
#include "pg/pg.h"
#include "state/state.h"

#define APPLY_INFLIGHT_MAX 512

/* A statement's text: a multi-row INSERT of a batch's run at most. */
#define APPLY_SQL_MAX ((size_t) 16 << 20)

typedef struct RelCol
{
	char *name;       /* as pgoutput sends it */
	char *qname;      /* its target name (route/rename), quoted */
	char *tgt_name;   /* its target name */
	char *src_quoted; /* name, quoted: for reading the source */
	bool removed;     /* remove_columns: never written to the target */
	uint32_t type_oid;
	int32_t typmod;
	bool key;
	bool
	    text_eq; /* full identity matched by text: no or too coarse an equality */
	bool always; /* GENERATED ALWAYS AS IDENTITY on the target */
} RelCol;

typedef struct Rel
{
	uint32_t relid;
	char *src_qname;   /* for messages */
	char *schema_name; /* as pgoutput sends them */
	char *table_name;
	const ApplyTable *table; /* NULL: the task does not move this table */
	ApplyTable same_name;    /* the table when every table maps to itself */
	char replident;
	const char *only; /* "ONLY " before the target in UPDATE, DELETE and
	                     TRUNCATE, or "" when the target is partitioned */
	int ncols;
	RelCol *cols;
	/* a new description the target has not been made to follow yet (in
	 * this batch): checked before the next change that is applied */
	bool follow_pending;
	/* table is the task's table by its oid under another name: renamed on
	 * the source, which the target and the state follow before the next
	 * change that is applied */
	bool rename_pending;
	bool changed; /* this process saw an earlier, different description */
	/* the source's question on a row version for a filtered table
	   (apply_filter.c), built at its first change; owned */
	char *filter_sql;
	int64_t conflicts;
	_Atomic int64_t last_log_ms;
} Rel;

typedef struct StmtEntry
{
	char *sql; /* owned; NULL: empty slot */
	char name[24];
} StmtEntry;

typedef enum PendKind
{
	APPLY_PEND_PLAIN = 0, /* BEGIN, Parse, origin, COMMIT, TRUNCATE */
	APPLY_PEND_INSERT,
	APPLY_PEND_UPDATE,
	APPLY_PEND_DELETE,
	APPLY_PEND_UPSERT, /* an UPDATE written as an upsert: inserting is the
						  conflict */
	APPLY_PEND_RESULT, /* a query whose rows the caller reads (kept) */
} PendKind;

typedef struct Pending
{
	PendKind kind;
	Rel *rel;
	uint32_t xid;
	Lsn final_lsn;
	int nrows; /* rows a multi-row INSERT carries; 1 otherwise */
	char *key; /* "(id)=(42)" for UPDATE/DELETE; owned */
} Pending;

/*
 * Consecutive INSERTs into one table (across source transactions of the
 * batch) wait here and go as multi-row INSERTs: one statement for up to
 * APPLY_RUN_ROWS rows instead of one each. COPY would be cheaper still, but
 * cannot run in pipeline mode. Values are copied: the decoder's views last
 * only until the next message.
 */
typedef struct InsertRun
{
	Rel *rel; /* NULL: no run */
	int ncols;
	int nrows;
	Buf data;      /* NUL-terminated values, back to back */
	int64_t *offs; /* nrows * ncols offsets into data; -1: NULL */
	int offs_cap;
	uint32_t xid; /* the first row's transaction, for messages */
	Lsn final_lsn;
} InsertRun;

#define APPLY_RUN_ROWS  100
#define APPLY_RUN_BYTES ((size_t) 4 * 1024 * 1024)
/*
 * The values of one row (parameters), or of a run past APPLY_RUN_BYTES by
 * one row: a column holds at most 1 GB, a row of many such columns is
 * refused rather than grown without end.
 */
#define APPLY_VALUES_MAX ((size_t) 4 << 30)

struct Applier
{
	PgConn *conn;
	char *target_uri;
	char *origin;
	OnConflict policy;
	ApplyTask task;     /* sql and task owned; sql NULL: no following */
	ApplyTable *tables; /* owned copies */
	int ntables;

	/* the target's GENERATED ALWAYS identity columns: an INSERT must say
	 * OVERRIDING SYSTEM VALUE, an UPDATE must leave them out */
	char **always_tables; /* "schema"."name", as tgt_qname writes it */
	char **always_cols;
	int nalways;

	/* the target's partitioned tables: an UPDATE, DELETE or TRUNCATE reaches
	 * their rows through the parent, and "ONLY" would find none of them */
	char **parted_tables; /* "schema"."name", as tgt_qname writes it */
	int nparted;

	/* tables renamed in the open batch (apply_rel_follow_rename): their
	   names before, given back if the batch does not commit */
	struct RenameUndo
	{
		ApplyTable *table;
		char *src_schema;
		char *src_name;
		char *tgt_qname;
	} * undo;
	int nundo;

	Rel **rels; /* relation cache, small: a linear scan; each Rel is
	               allocated alone so pending statements may point to it */
	int nrels;
	int rels_cap;

	StmtEntry *stmts; /* open addressing on the SQL text */
	int stmts_cap;
	int nstmts;

	Pending *pend; /* ring of statements waiting for results */
	int pend_head;
	int pend_count;

	InsertRun run;

	bool in_batch;
	bool batch_has_ud; /* an UPDATE or DELETE is in the batch */
	uint32_t xid;      /* current source transaction */
	Lsn final_lsn;
	int batch_txns;        /* source transactions in the open batch */
	int handovers_in_txn;  /* keys moved so far in this source transaction,
	                          by any target */
	StateHandoverSql hsql; /* with task.state_schema; else empty */
	Error conflict;        /* first conflict under the stop policy */
	PGresult *kept;        /* the rows of the last APPLY_PEND_RESULT read */

	Buf sql;    /* statement text being built; at most APPLY_SQL_MAX */
	Buf values; /* NUL-terminated parameter values, at most APPLY_VALUES_MAX */
	const char **params;
	int params_cap;

	_Atomic int64_t txns, changes, conflicts, skipped, ignored, filtered;
	_Atomic int64_t last_joining_log_ms; /* apply_unknown, shared slot */
	_Atomic int64_t conflicts_by[APPLY_NCONFLICTS];
	_Atomic uint64_t applied_end;
	_Atomic int64_t applied_time_us;
};

/* ---- apply_stmt.c ---- */

/* Frees what r owns (its columns and name) and empties it; r stays. */
void apply_rel_clear(Rel *r);

/* The cached relation relid, or NULL when pgoutput has not described it. */
Rel *apply_rel_find(Applier *a, uint32_t relid);

/*
 * Caches (or replaces) what a Relation message says of a relation: its
 * columns, its replica identity, where its rows go. Fails (ERR_INTERNAL)
 * only when out of memory.
 */
bool apply_rel_update(Applier *a, const PgoRelation *m, Error *err);

/*
 * Finds r's task table and what the target says of it (partitioned,
 * identity columns): after its description, and again when tables join.
 */
void apply_rel_targets(Applier *a, Rel *r);

/* "ONLY " before the target table tgt_qname in UPDATE, DELETE, TRUNCATE or
 * a read of its own rows, or "" when it is partitioned on the target (its
 * rows are in its partitions). */
const char *apply_only(const Applier *a, const char *tgt_qname);

/*
 * A change of r, a table the task does not move: counted when the task
 * ignores such tables, else the error that stops the stream.
 */
bool apply_unknown(Applier *a, const Rel *r, Error *err);

/*
 * Makes the target follow r's description, when it is new: asks the source
 * for the columns' facts and queues the state's follow statement in the
 * batch, before the change that needs it. Fails as the source's question or
 * the send fails.
 */
bool apply_rel_follow(Applier *a, Rel *r, Error *err);

/*
 * The task's table r->table renamed on the source (rename_pending): in the
 * batch, its target table takes the new name and its state row too. Fails,
 * naming both names, for a table the task's rules name (a rename, a row
 * filter, routing) or whose target has another name than its source.
 */
bool apply_rel_follow_rename(Applier *a, Rel *r, Error *err);

/* The batch committed: its renames stay (kept = true); or it did not:
 * each table renamed in it takes its names before back, and every
 * relation finds its table again. */
void apply_renames_end(Applier *a, bool kept);

/* Adds an inserted row to the run of inserts, sending the run first when
 * the row cannot join it. Fails when out of memory or a send fails. */
bool apply_run_add(Applier *a, Rel *r, const PgoTuple *t, Error *err);

/* Sends the waiting rows of the run of inserts, if any; the run is then
 * empty, sent or not. */
bool apply_run_flush(Applier *a, Error *err);

/*
 * Build and send the statement of one change of relation r. A relation
 * without a usable identity, or a change that cannot be applied to the
 * target as it is, fails with ERR_TARGET and a hint; a failed send as
 * apply_send_prepared and apply_send_plain say.
 */
bool apply_update(Applier *a, Rel *r, const PgoChange *ch, Error *err);
bool apply_delete(Applier *a, Rel *r, const PgoChange *ch, Error *err);
bool apply_truncate(Applier *a, const PgoTruncate *t, Error *err);

/* ---- apply_filter.c ---- */

/*
 * A change of shard.lookup's table (decision 0036), before it is applied
 * as a reference table's: a new key joins the routing; a key whose target
 * changes, or whose row goes, stops the stream (its rows would have to
 * move between targets), naming the table.
 */
bool apply_lookup_change(Applier *a, const Rel *r, PgoKind kind,
                         const PgoChange *ch, Error *err);

/*
 * Applies an INSERT, UPDATE or DELETE of r, a table with a row filter, as
 * decision 0029 says: the source judges the new row version; the target
 * gets an INSERT, a DELETE of the old key, both, or nothing. Fails as the
 * source's answer or the statements' sends fail.
 */
bool apply_filtered(Applier *a, Rel *r, PgoKind kind, const PgoChange *ch,
                    Error *err);

/* ---- apply_handover.c ---- */

/*
 * The lookup table gave key[0..len) target `to` instead of `from`, in the
 * open source transaction, and this stream feeds one of the two (decision
 * 0045): the giving target's rows of the key are staged on the taking
 * target and leave this batch, or the taking target waits for them and
 * takes them in this batch. Fails as the statements, the taking target's
 * session or a stop do; a table the giving target loaded after the change
 * and the taking one before fails naming it.
 */
bool apply_handover(Applier *a, const char *key, size_t len, int from, int to,
                    Error *err);

/* ---- apply_batch.c ---- */

/* Drops the prepared statement cache (the statements are the session's). */
void apply_stmt_free_all(Applier *a);

/*
 * Sends sql with n text parameters, unprepared, and queues it for its
 * result. Fails (retryable) when the connection does, or when reading older
 * results to make room fails.
 */
bool apply_send_plain(Applier *a, const char *sql, int n,
                      const char *const *vals, Error *err);

/*
 * Sends sql like apply_send_plain inside the open batch, then reads every
 * result up to it: *rows gets its rows (the caller clears them). Costs a
 * round trip: for the rare statement whose answer decides what follows.
 */
bool apply_query(Applier *a, const char *sql, int n, const char *const *vals,
                 PGresult **rows, Error *err);

/*
 * Sends the statement in a->sql with a->params[0..nparams), preparing it
 * the first time its text is seen, and queues it for its result as kind of
 * rel. Takes key (freed on failure too). nrows is the rows it carries.
 */
bool apply_send_prepared(Applier *a, PendKind kind, Rel *rel, int nparams,
                         char *key, int nrows, Error *err);

#endif
