/*
 * lobjects: the source's large objects copied to the target: contents,
 * owner and privileges.
 *
 * Logical decoding does not carry large objects, so they are copied by
 * passes: one after the load's tables, and a last one by cutover while the
 * source is fenced. A pass makes the target's copies match the source's: it
 * copies what is new or changed since the last pass (each copy's digest is
 * recorded in the task's state, in the same target transaction as the copy)
 * and removes the large objects pgtide made that the source no longer has.
 * A large object of the target's own whose oid the source uses is refused,
 * never overwritten. Contents move in chunks of LOBJECTS_CHUNK bytes, so
 * memory stays bounded whatever their size. It never writes to the source.
 */
#ifndef PGTIDE_LOAD_LOBJECTS_H
#define PGTIDE_LOAD_LOBJECTS_H

#include <stdatomic.h>
#include <stdint.h>

#include "pg/pg.h"
#include "state/state.h"

#define LOBJECTS_CHUNK (1024 * 1024)

typedef struct LoSync
{
	int64_t seen;    /* large objects on the source */
	int64_t copied;  /* new or changed, copied */
	int64_t removed; /* gone from the source, removed from the target */
	int64_t bytes;   /* of contents copied */
} LoSync;

/* How many large objects the source has (a cheap count, no contents read). */
bool lobjects_count(PgConn *src, int64_t *n, Error *err);

/*
 * One pass, reading the source on src as its open transaction sees it (an
 * imported snapshot, or a fenced source) and writing the target on tgt,
 * whose state is st (on tgt, outside any transaction). Stops with
 * ERR_INTERRUPTED when *stop is set.
 */
bool lobjects_sync(PgConn *src, PgConn *tgt, const State *st, atomic_int *stop,
                   LoSync *out, Error *err);

#endif
