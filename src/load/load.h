/*
 * load: the full load of a task (`pgtide copy`, and migrate's first part),
 * the front door of src/load/ for the commands:
 *
 *   preflight ──► state ──► publication + slot ──► pre-data ──► load ──► post-data ──► sequences ──► loaded
 *   (source       (target   (exported snapshot,    (pg_dump     (chunks,   (parallel,    (setval)
 *    settings)     schema)   consistent point)      at snapshot) parallel)  FKs last)
 *
 * Resumable: a run that finds the task's state keeps finished tables and
 * post-data steps, and reloads unfinished tables from a fresh snapshot whose
 * own consistent point is recorded for them. It never writes to the source
 * beyond its publication and slot; pgtide copy writes neither.
 */
#ifndef PGTIDE_LOAD_H
#define PGTIDE_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "base/gate.h"
#include "route/shard.h"

/*
 * pgtide copy: runs the full load for cfg from snapshots of TEMPORARY slots,
 * so that no slot is left on the source however the run ends; a task it
 * starts is copy-only and can never be streamed. A task that migrate started
 * keeps its slot. Returns false with ERR_INTERRUPTED when *stop was set
 * (state is saved; the same command resumes), or with the error that stopped
 * it. Prints its summary on stdout. The copy workers pass through gate
 * (may be NULL), so that the source's guards can pause or slow them.
 */
bool load_run(const TaskConfig *cfg, atomic_int *stop, Gate *gate, Error *err);

/*
 * pgtide copy into one of several targets: load_run with cfg's target_uri
 * set to target's, each table's COPY reading only the source rows that
 * spec routes to it (docs/sharding.md). The target keeps its own state, so
 * a crash costs at most its chunks in flight, as for one target.
 */
bool load_run_shard(const TaskConfig *cfg, const ShardSpec *spec, int target,
                    atomic_int *stop, Gate *gate, Error *err);

/*
 * migrate's load: the same, from the snapshot of the task's slot, which it
 * creates and keeps for the change stream. Refuses (ERR_CONFIG) a copy-only
 * task.
 */
bool load_for_stream(const TaskConfig *cfg, atomic_int *stop, Gate *gate,
                     Error *err);

#endif
