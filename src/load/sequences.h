/*
 * sequences: copying sequence values (identity columns included) from the
 * source to the target, at the end of the full load and at cutover.
 *
 * Reads sequences on the source, calls setval on the target; nothing else.
 * A sequence missing on the target is counted and named, not an error: a
 * target schema of the user's own may have dropped it.
 */
#ifndef PGTIDE_SEQUENCES_H
#define PGTIDE_SEQUENCES_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

typedef struct SeqSyncResult
{
	int set;                 /* sequences set on the target */
	int missing;             /* in the catalog, not on the target */
	char first_missing[256]; /* the first of them, for messages */
} SeqSyncResult;

/*
 * Sets every sequence of cat that exists on the target to the source's
 * current value, moved on by `margin` increments (0 at the end of the load;
 * a margin at cutover, so ids handed out on the source after the read can
 * never be handed out again on the target). Fails on the first sequence the
 * target refuses, naming it.
 */
bool sequences_sync(PgConn *src, PgConn *tgt, const Catalog *cat,
                    int64_t margin, SeqSyncResult *out, Error *err);

#endif
