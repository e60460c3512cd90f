/*
 * progress: what a person watching the full load sees: per table rows and
 * bytes done, rate and ETA, and the same for the whole load.
 *
 * On a terminal it redraws a small block on stderr every second; otherwise it
 * logs a few lines every interval. It only reads the counters the copy
 * workers update (atomics); it never touches a connection.
 */
#ifndef PGTIDE_PROGRESS_H
#define PGTIDE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "load/copy.h"

typedef struct Progress Progress;

/*
 * Starts the progress thread over n tables; est_bytes[i] is table i's size
 * estimate (copied). Returns NULL (and shows nothing) if the thread cannot
 * start: progress is never worth failing the load for.
 */
Progress *progress_start(const CopyTable *tables, const int64_t *est_bytes,
                         int n, int interval_s, bool terminal);

/* Stops the thread, clears the live block, and frees p. NULL is a no-op. */
void progress_stop(Progress *p);

#endif
