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

#endif
