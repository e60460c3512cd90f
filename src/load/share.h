/*
 * share: two tasks writing one target table, as a merge of several source
 * databases into one target does (docs/merging.md, decision 0035).
 *
 * A task may load into a target table another task of the same state
 * schema writes only when the two tasks' rows can never be taken for each
 * other: each task names its own rows with a row filter on the table, the
 * target rows of the others fall outside it, and no key of its share is on
 * the target already. It only reads, on both sides; the load then empties
 * only its own share (load.c) and validate reads the target through the
 * filter too.
 */
#ifndef PGTIDE_SHARE_H
#define PGTIDE_SHARE_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

/* source keys sent to the target per question of share_check */
#define SHARE_KEYS_PER_PROBE 10000

/*
 * Before the first load of source table t into tgt_qname, which another
 * task writes too: fails (ERR_TARGET or ERR_CONFIG), naming the table, the
 * other task and what to do, when this task has no row filter on t, either
 * task may overwrite or skip a key it meets (on_conflict other than stop),
 * the other task loads every row, the target table has no primary key, the
 * task renames or removes t's columns, a target row falls in this task's
 * filter, or a key of the source rows the filter keeps is on the target.
 */
bool share_check(PgConn *src, PgConn *tgt, const TaskConfig *cfg,
                 const CatTable *t, const char *tgt_qname, Error *err);

/*
 * Whether another task of cfg's state schema writes tgt_qname; *filter is
 * then this task's row filter for source table t (a view into cfg), which
 * names its share of the target table. Only reads.
 */
bool share_find(PgConn *tgt, const TaskConfig *cfg, const char *schema,
                const char *name, const char *tgt_qname, bool *shared,
                const char **filter, Error *err);

#endif
