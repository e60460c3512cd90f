/*
 * matviews: materialized views' contents on the target. pg_dump's schema
 * creates them empty (WITH NO DATA) and, with --schema-only, leaves out the
 * REFRESH that fills them, and logical decoding never carries them: pgtide
 * refreshes them on the target after the load and again at cutover.
 *
 * Reads the source's catalog, runs REFRESH MATERIALIZED VIEW on the target;
 * never writes to the source, never refreshes one the source left
 * unpopulated.
 */
#ifndef PGTIDE_MATVIEWS_H
#define PGTIDE_MATVIEWS_H

#include <stdbool.h>

#include "base/err.h"
#include "base/vec.h"
#include "pg/pg.h"

#define MATVIEWS_MAX 1000000 /* materialized views a database may hold */

typedef struct MatviewList
{
	Vec names; /* char *: "schema"."name", owned, in refresh order */
} MatviewList;

/*
 * The source's populated materialized views (user schemas, not
 * skip_schema), each after every materialized view it reads, directly or
 * through views. Fills *out (initialised here; free with
 * matviews_list_free, also after a failure).
 */
bool matviews_read(PgConn *src, const char *skip_schema, MatviewList *out,
                   Error *err);

void matviews_list_free(MatviewList *l);

/*
 * Refreshes one materialized view on tgt. *missing is set, and true
 * returned, when the target has no such relation.
 */
bool matviews_refresh(PgConn *tgt, const char *qname, bool *missing,
                      Error *err);

#endif
