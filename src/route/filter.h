/*
 * filter: which row filter of the task file (`filters`: schema.table -> an
 * SQL condition) applies to a source table.
 *
 * Pure: names in, a condition out; no libpq. A key names one table exactly
 * (double quotes keep dots and case, no schema means public); wildcards
 * are not patterns here, so that no table ever falls under two conditions.
 * What a condition may say is checked on the source (pg/rowfilter).
 */
#ifndef PGTIDE_FILTER_H
#define PGTIDE_FILTER_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"

/*
 * The line of a filters entry that pgtide made from the shard rules for a
 * process working on one of several targets: its routing condition,
 * ANDed with the table's own filter, which was checked before (the routing
 * part is pgtide's own, on a key type whose text form no setting changes).
 */
#define FILTER_LINE_ROUTING (-1)

/*
 * The condition of schema.name in filters, or NULL when it has none; *line
 * (when not NULL) gets its key's line in the task file. A view into
 * filters. A key that does not parse names no table (filter_check_keys
 * refuses it).
 */
const char *filter_find(const StrMap *filters, const char *schema,
                        const char *name, int *line);

/*
 * The condition that names the task's own rows of schema.name among those
 * of other tasks writing the same target table (load/share.h): the task
 * file's filter, without the routing a task with several targets adds to
 * it (cfg->shard_routes); NULL when it has none. A view into cfg.
 */
const char *filter_own(const TaskConfig *cfg, const char *schema,
                       const char *name);

/* Whether key i of filters names schema.name. */
bool filter_key_names(const StrMap *filters, int i, const char *schema,
                      const char *name);

#endif
