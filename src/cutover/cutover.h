/*
 * cutover: the hand-over from source to target, run beside a live
 * `pgtide migrate`: lag check, fence, marker, drain, sequences, final
 * validation, stream stop, report. Until the stream is told to stop, any
 * failure undoes the fence and leaves the task replicating.
 */
#ifndef PGTIDE_CUTOVER_H
#define PGTIDE_CUTOVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"

bool cutover_command(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * The cutover of a task with several targets (docs/sharding.md): targets[i]
 * is the task as target i's share, in the task file's order. One fence and
 * one marker on the source; every target must pass the marker, get its
 * sequences and pass its final validation before any stream is told to
 * stop, and a failure of one undoes the fence for all.
 */
bool cutover_run(const TaskConfig *cfg, const TaskConfig *targets, int ntargets,
                 atomic_int *stop, Error *err);

#endif
