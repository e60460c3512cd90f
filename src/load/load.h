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
#include "state/state.h"

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
 * The load of several targets (docs/sharding.md, the full load): task is
 * the task file's, targets[k] target k's share of it (its target_uri, the
 * task file's own filters). Each target keeps its own state, lock-free
 * here (the caller holds each target's lock), slot (keep_slot: migrate's,
 * else none) and schema, as load_run gives it; then every chunk is read
 * once from the source, from one snapshot taken after every slot, and
 * each row is sent to the target its key names. A crash costs each target
 * at most its chunks in flight.
 */
bool load_run_split(const TaskConfig *task, const TaskConfig *targets, int n,
                    atomic_int *stop, Gate *gate, bool keep_slot, Error *err);

/*
 * migrate's load: the same, from the snapshot of the task's slot, which it
 * creates and keeps for the change stream. Refuses (ERR_CONFIG) a copy-only
 * task.
 */
bool load_for_stream(const TaskConfig *cfg, atomic_int *stop, Gate *gate,
                     Error *err);

/*
 * state_task_begin with the task's names on the source (a new task's slot
 * by shard.slot). A task begun under the other shard.slot is refused
 * (ERR_CONFIG) before anything changes: its slot is the one it has.
 */
bool load_task_begin(const TaskConfig *cfg, const State *state, StateTask *st,
                     Error *err);

#endif
