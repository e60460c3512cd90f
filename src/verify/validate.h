/*
 * validate: source and target compared without moving rows: per key range,
 * a count and an order-independent hash computed in each database; ranges
 * that differ are split until the differing rows are named.
 *
 * It never writes to the source (its source sessions are read-only); on the
 * target it writes only to the state schema (created when missing): its own
 * result tables validation_runs, validation_tables, validation_differences.
 */
#ifndef PGTIDE_VALIDATE_H
#define PGTIDE_VALIDATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "route/shard.h"

typedef enum ValidateMode
{
	VALIDATE_COUNTS = 0, /* count(*) per table on both sides, no drill-down */
	VALIDATE_FULL,       /* ranged hashes of every row, differing rows named */
} ValidateMode;

typedef struct ValidateSummary
{
	int tables;           /* tables compared (after validate.tables) */
	int tables_differing; /* tables with a difference, or missing */
	int64_t rows_source;  /* rows read on the source (checked ranges) */
	int64_t rows_target;
	int64_t differences; /* rows named (full), or |count difference| summed
	                        over tables (counts), plus one per table missing
	                        on the target */
	int64_t unsettled;   /* rows changing throughout their rechecks */
} ValidateSummary;

/*
 * Each table's source row count on each of several targets, counted once
 * for them all while the source holds still (cutover's final validation):
 * table i (schemas[i], names[i]) holds counts[i * ntargets + k] rows of
 * target k's share. A table it lacks is counted the usual way. It may be
 * filled while the targets are read: a reader reads its target's count,
 * then waits until ready (under lock); failed when it could not be filled.
 */
typedef struct ValidateShares
{
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	bool failed;
	int ntables;
	int ntargets;
	char **schemas;
	char **names;
	int64_t *counts;
} ValidateShares;

/*
 * Compares the task's tables (cfg->validate_tables and cfg->validate_sample
 * apply), with cfg->copy_jobs workers: counts only, or full ranged hashes.
 * Records the run in the state schema and logs one line per differing table
 * (names and counts, never row values). Returns false only when it could not
 * compare (a server failed, bad validate.tables, ERR_INTERRUPTED on *stop);
 * differences are reported in *out, not as an error. `still`: the caller
 * holds both sides still (cutover, fenced and drained), so tables are read
 * whole first even though the task's stream is running.
 */
bool validate_run(const TaskConfig *cfg, ValidateMode mode, bool still,
                  atomic_int *stop, ValidateSummary *out, Error *err);

/*
 * validate_run in VALIDATE_COUNTS mode with both sides held still, against
 * target number target of several: the source's count of a table shares
 * has is taken from it, and only the target is read.
 */
bool validate_run_shares(const TaskConfig *cfg, ValidateShares *shares,
                         int target, atomic_int *stop, ValidateSummary *out,
                         Error *err);

/*
 * pgtide validate: a full run that prints the result on stdout (text, or
 * JSON with cfg->output_json) and fails with ERR_DIFFERENT when anything
 * differs.
 */
bool validate_command(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * validate_command against one of several targets: cfg's target_uri is
 * target's, and every query on the source reads only the rows spec routes
 * to it, so that a row of this target missing here, and a row here that
 * belongs to another target or to none, are both differences
 * (docs/sharding.md).
 */
bool validate_command_shard(const TaskConfig *cfg, const ShardSpec *spec,
                            int target, atomic_int *stop, Error *err);

#endif
