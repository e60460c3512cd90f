/*
 * renames: the task's renames and removed columns made real on a target
 * whose schema pgtide created (--schema create).
 *
 * pg_dump writes the schema under the source's names, and its post-data
 * (indexes, constraints, triggers) names tables and columns inside
 * expressions that pgtide does not rewrite. So the load creates and fills
 * the tables under the source's names, dropping the removed columns right
 * after pre-data (catalog_rename refused any an index, constraint, view or
 * generated column needs), and renames once the post-data, sequences and
 * materialized views are done, with ALTER TABLE, in the transaction that
 * marks the load done: the change stream and validate only ever see the
 * target's final names (decision 0028).
 *
 * Writes only to the target, inside the caller's open transaction; never
 * touches the source.
 */
#ifndef PGTIDE_RENAMES_H
#define PGTIDE_RENAMES_H

#include <stdbool.h>

#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

/* ALTER TABLE ... DROP COLUMN for every removed column of the selected
 * tables (of t), named by the source's names. */
bool renames_drop_removed(PgConn *tgt, const Catalog *cat, Error *err);
bool renames_drop_removed_of(PgConn *tgt, const CatTable *t, Error *err);

/*
 * Renames the selected tables' columns, moves each renamed table to its
 * target schema (created if missing) and renames it. with_drop
 * (--on-existing drop): a table already under the final name is dropped
 * first, as pg_dump's --clean did for the source's names.
 */
bool renames_apply(PgConn *tgt, const Catalog *cat, bool with_drop, Error *err);

/* The same for t alone. */
bool renames_apply_to(PgConn *tgt, const CatTable *t, bool with_drop,
                      Error *err);

#endif
