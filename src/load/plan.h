/*
 * plan: the full-load plan, from table sizes to an ordered list of chunks.
 *
 * Pure: sizes in, chunks out; no libpq, no clock. Chunks go largest first
 * (longest processing time first) so the longest work starts first; a table larger than the split size is cut
 * into heap block ranges (ctid ranges) that several workers copy at once. The
 * first range has no lower bound and the last no upper bound, so rows in
 * blocks the size estimate missed are still copied exactly once.
 */
#ifndef PGTIDE_PLAN_H
#define PGTIDE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct PlanTable
{
	int64_t bytes;   /* heap + TOAST, decides splitting and order */
	int64_t blocks;  /* heap blocks, decides ranges */
	bool splittable; /* ctid ranges are efficient for this table */
} PlanTable;

typedef struct PlanChunk
{
	int table;           /* index into the PlanTable array */
	int chunk;           /* 0-based within the table */
	int nchunks;         /* chunks of this table */
	int64_t start_block; /* -1: no lower bound */
	int64_t end_block;   /* -1: no upper bound; exclusive */
} PlanChunk;

/* The number of chunks a table is cut into. */
int plan_table_chunks(const PlanTable *t, int64_t split_bytes);

/*
 * Plans ntables tables: fills *out with a malloc'd array of chunks (caller
 * frees) ordered largest chunk first, and *nout with its length. Returns
 * false only when memory runs out.
 */
bool plan_chunks(const PlanTable *tables, int ntables, int64_t split_bytes,
                 PlanChunk **out, int *nout);

#endif
