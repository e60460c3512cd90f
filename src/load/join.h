/*
 * join: the tables that join a task while its change stream runs: created
 * on the source, or attached there as partitions, after the load, and
 * selected by the task's patterns (decision 0019).
 *
 *   register ──► publication ──► snapshot ──► one target transaction ──► stream
 *   (state, so   (its changes    (temporary    pre-data, rows, post-data,  (from the
 *    a restart    from here on    slot: its     the table's record and      snapshot's
 *    joins it)    are streamed)   own point)    its point)                  point on)
 *
 * The stream skips a joined table's changes committed before its point (the
 * copy holds them) and applies the rest. A kill at any moment leaves the
 * table registered and unfinished, or joined whole: a later run joins it
 * again from a fresh snapshot before it streams.
 *
 * It writes to the source only the task's publication (and a temporary
 * slot, gone with its connection), and to the target only the joining
 * tables and their state.
 */
#ifndef PGTIDE_JOIN_H
#define PGTIDE_JOIN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"

typedef struct JoinedTable
{
	char *src_schema; /* owned */
	char *src_name;   /* owned */
	char *tgt_qname;  /* owned */
	uint32_t src_relid;
	Lsn load_point; /* changes committed before it are in its copy */
	/* several targets: the column its changes are routed by, or NULL;
	   owned */
	char *route_key;
	char *filter; /* the row filter its changes pass, or NULL; owned */
} JoinedTable;

typedef struct JoinResult
{
	JoinedTable *tables; /* joined by this call */
	int n;
	/* selected tables that cannot join, each "name: why" (owned) */
	char **left;
	int nleft;
} JoinResult;

/*
 * Joins every table cfg's patterns select that the task (whose change
 * stream reads publication) does not hold or holds unfinished, and lists
 * in out->left those that cannot join: without a key, unlogged, or without
 * a target table they may load into. With several targets (cfg's
 * shard_target), each joins with its share of that target. Fails with the error that stopped a
 * join (the table stays registered, unfinished); ERR_INTERRUPTED when *stop
 * was set. Free out with join_result_free().
 */
bool join_tables(const TaskConfig *cfg, const char *publication,
                 atomic_int *stop, JoinResult *out, Error *err);

void join_result_free(JoinResult *r);

#endif
