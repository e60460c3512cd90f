/*
 * rowfilter: what the source says of the task file's row filters before
 * any data moves (decision 0029): each names a table the task moves, has a
 * key the change stream can delete by, parses on the source, names only
 * that table's columns, holds no subquery, and calls only immutable
 * functions, so that the load, the stream, validate and cutover all get
 * the answer the source would give on any row at any time.
 *
 * It only reads the source: every question runs inside a READ ONLY
 * transaction that is rolled back.
 */
#ifndef PGTIDE_ROWFILTER_H
#define PGTIDE_ROWFILTER_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

/*
 * Checks every filter of filters against the selected tables of cat on
 * src. Fails (ERR_CONFIG) with one message naming the table, the task
 * file's line and what is wrong, with the condition in the detail; a
 * failure of the source itself as ERR_SOURCE.
 */
bool rowfilter_check_all(PgConn *src, const Catalog *cat, const StrMap *filters,
                         Error *err);

#endif
