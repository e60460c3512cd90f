/*
 * sequences: copying sequence values (identity columns included) from the
 * source to the target, at the end of the full load and at cutover.
 *
 * Reads sequences on the source, calls setval on the target; nothing else.
 * One sequence that cannot be read or set never stops the others: each is
 * tried, and the ones that failed are counted and named for the caller to
 * decide (the load warns, cutover fails).
 */
#ifndef PGTIDE_SEQUENCES_H
#define PGTIDE_SEQUENCES_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

#define SEQ_NAMES_MAX 2048 /* the names in a result, cut short beyond */

typedef struct SeqSyncResult
{
	int set;      /* sequences set on the target */
	int exact;    /* of those, CYCLE sequences set to the source's state */
	int clamped;  /* of those, stopped at a bound short of the margin */
	int failed;   /* could not be read on the source or set on the target */
	int missing;  /* of the failed, not on the target */
	int left_out; /* identity sequences of tables left out: not set */
	char clamped_names[SEQ_NAMES_MAX]; /* "a; b", cut short with "..." */
	char failures[SEQ_NAMES_MAX];      /* "name: reason; ...", the same */
} SeqSyncResult;

/* Where setval puts a sequence on the target, and why there. */
typedef enum SeqPlace
{
	SEQ_PLACE_AHEAD,   /* the source's value + margin increments */
	SEQ_PLACE_EXACT,   /* the source's state: a CYCLE sequence */
	SEQ_PLACE_CLAMPED, /* the bound in its direction, the margin cut short */
} SeqPlace;

/*
 * Pure: the target's value for sequence s whose source state is last_value
 * and is_called, `margin` increments ahead (margin 0: the same state). A
 * CYCLE sequence keeps the source's exact state (a margin would wrap it
 * past values still in use); a value past the bound in the increment's
 * direction stops at that bound, with is_called so that the target never
 * hands out a value the source may have. Writes *value and *called.
 */
SeqPlace sequences_place(const CatSequence *s, int64_t last_value,
                         bool is_called, int64_t margin, int64_t *value,
                         bool *called);

/*
 * Target k of n (k from 1, in the task file's order) of a task with several
 * targets: from the cutover on, each sequence there hands out only values
 * = k mod n, so that new ids never collide across targets
 * (cutover.sequence_spacing, docs/sharding.md). n 1: no spacing.
 */
typedef struct SeqSpacing
{
	int k, n;
} SeqSpacing;

/*
 * Pure: for sequence s placed at value/called (sequences_place), the
 * increment that keeps its values = k mod n (the source's times n) and the
 * first value it hands out: the nearest such value past every value the
 * placement already counts as used, in the increment's direction. Returns
 * false, changing nothing, when that value or increment would be out of
 * the sequence's bounds (or a CYCLE sequence, whose values wrap: it keeps
 * its exact state).
 */
bool sequences_space(const CatSequence *s, int64_t value, bool called,
                     SeqSpacing sp, int64_t *first, int64_t *increment);

/*
 * Sets every sequence of cat on the target from the source's current state,
 * moved on by `margin` increments as sequences_place says. A sequence the
 * source will not show or the target will not set (missing there, out of
 * its bounds, refused) is counted in *out and named, and the others are
 * still set. The identity sequence of a table that cat's selection leaves
 * out is not set (pg_dump leaves it out with its table) and only counted.
 * With by_target_names, a sequence owned by a table the task renames
 * (catalog_rename) is the one the target's table and column own
 * (pg_get_serial_sequence), wherever it lives there. With spacing (n > 1)
 * each sequence also gets sequences_space's increment and first value; one
 * it cannot space is counted as failed.
 * Fails only when a server cannot be reached any more.
 */
bool sequences_sync(PgConn *src, PgConn *tgt, const Catalog *cat,
                    bool by_target_names, int64_t margin, SeqSpacing spacing,
                    SeqSyncResult *out, Error *err);

#endif
