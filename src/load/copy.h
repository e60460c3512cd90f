/*
 * copy: the copy workers of the full load.
 *
 * Each worker thread owns one source and one target connection. The source
 * connection imports the task's exported snapshot, so every chunk of every
 * table is read as of one instant. A chunk streams COPY TO STDOUT from the
 * source into COPY FROM STDIN on the target, and its "done" record is written
 * by the caller's hook in the same target transaction, so a chunk is either
 * committed with its record or not at all: a retried chunk never duplicates.
 *
 * copy never decides what is left to do (the caller gives it the chunks) and
 * never writes to the source.
 */
#ifndef PGTIDE_COPY_H
#define PGTIDE_COPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/gate.h"
#include "load/plan.h"
#include "pg/catalog.h"
#include "pg/pg.h"

typedef struct CopyTable
{
	const char *src_qname; /* "schema"."name" */
	const char *tgt_qname;
	/* "("a", "b")": copied columns, same on both sides; "()" when the table
	 * has none to copy (no columns, or only generated or dropped ones) */
	const char *columns;
	/* the task file's row filter, read on the source: only rows for which
	   it is true are copied (decision 0029); NULL: every row */
	const char *filter;
	/* the same columns by their target names (renamed ones differ), or NULL
	 * when they are the same */
	const char *tgt_columns;
	bool binary;
	bool freeze; /* one chunk into a table pgtide created: TRUNCATE + FREEZE */
	/* Several targets (CopyRun.ntargets > 1): the targets whose load of the
	 * table is unfinished (bit i: target i), the only ones its rows reach;
	 * the position of the routing column among the copied columns and its
	 * type OID, or -1 when the table is not routed row by row; then
	 * whole_target: the one target every row goes to, or -1 for each
	 * target in wanted (a reference table). */
	uint64_t wanted;
	int key_col;
	uint32_t key_type;
	int whole_target;
	_Atomic int64_t rows_done; /* committed and in flight, for progress */
	_Atomic int64_t bytes_done;
	_Atomic int chunks_left;
} CopyTable;

/* The most targets one load sends rows to (CopyTable.wanted's bits). */
#define COPY_TARGETS_MAX 64

/* Records a chunk as done in the open transaction of tgt, the session of
 * target number target (0 with one target). */
typedef bool (*CopyChunkDoneFn)(PgConn *tgt, int target, const PlanChunk *chunk,
                                int64_t rows, int64_t bytes, void *ctx,
                                Error *err);

/* Whether a chunk is already recorded as done (asked after a lost commit). */
typedef bool (*CopyChunkCheckFn)(PgConn *tgt, int target,
                                 const PlanChunk *chunk, bool *done, void *ctx,
                                 Error *err);

/* The target of a row of table t whose routing column holds key[0..len)
 * (key NULL for SQL NULL); fails for a key of no target. */
typedef bool (*CopyRouteFn)(const CopyTable *t, const char *key, size_t len,
                            int *target, void *ctx, Error *err);

typedef struct CopyRun
{
	const char *source_uri;
	const char *target_uri; /* with one target */
	/* with several (ntargets > 1): each one's connection string, and the
	 * routing of each keyed table's rows; each chunk is read once from the
	 * source and each row sent to its target's COPY */
	int ntargets;
	const char *const *target_uris;
	/* target k's own CopyTable array, for its side of each COPY (its table
	 * names, FREEZE); tables is the source side */
	CopyTable *const *target_tables;
	CopyRouteFn route;
	const char *snapshot; /* exported snapshot to import; NULL when the
	                         source holds still (cutover, fenced) */
	CopyTable *tables;
	const PlanChunk *chunks; /* the chunks to copy, in order */
	int nchunks;
	int workers;
	int max_retries; /* per chunk, for failures a new connection may cure */
	CopyChunkDoneFn chunk_done;
	CopyChunkCheckFn chunk_check;
	void *ctx;
	atomic_int *stop; /* set by a signal: abandon chunks, return */
	Gate *gate;       /* holds and caps from the source's guards, or NULL */
} CopyRun;

/*
 * Copies every chunk with run->workers threads. Returns true when all are
 * done. On failure err holds the first error; *snapshot_lost is set when the
 * exported snapshot could no longer be imported (its connection is gone), in
 * which case the finished chunks stand and the caller reloads the rest from a
 * fresh snapshot.
 */
bool copy_run(CopyRun *run, bool *snapshot_lost, Error *err);

/*
 * Copies the whole table t from src, inside the transaction of its snapshot,
 * into t's target on tgt, inside the caller's open transaction (which has
 * emptied it): a table that joins a running task commits its rows with its
 * schema and its record. No FREEZE. *rows gets the row count.
 */
bool copy_table_within(PgConn *src, PgConn *tgt, CopyTable *t, atomic_int *stop,
                       int64_t *rows, Error *err);

/*
 * The table's copied columns as COPY names them, "(a, b)": malloc'd, NULL
 * when out of memory.
 */
char *copy_column_list(const CatTable *t);

/* The same by the columns' target names (catalog_rename). */
char *copy_target_column_list(const CatTable *t);

/* Whether the table is copied in binary (the format the task asks for). */
bool copy_use_binary(const TaskConfig *cfg, const CatTable *t);

#endif
