/*
 * mapping: which source tables a task moves.
 *
 * Pure: patterns and names in, decisions out; no libpq. A pattern is
 * `schema.table` with `*` (any run of characters) and `?` (one character);
 * double quotes keep dots and case literal ("My Schema"."Order.Items"); a
 * pattern without a schema part means `public`. A partition is selected when
 * it or any of its ancestors matches an include pattern (or there are none)
 * and neither it nor an ancestor matches an exclude pattern.
 */
#ifndef PGTIDE_MAPPING_H
#define PGTIDE_MAPPING_H

#include <stdbool.h>

#include "base/err.h"

typedef struct TablePattern
{
	char *schema; /* glob on the schema name; owned */
	char *table;  /* glob on the table name; owned */
	char *text;   /* the pattern as the user wrote it; owned */
} TablePattern;

/* Parses text into p; fails on an empty part or unbalanced quotes. */
bool mapping_parse_pattern(const char *text, TablePattern *p, Error *err);

/* Frees what p owns. */
void mapping_pattern_free(TablePattern *p);

/* True when schema.name matches p. */
bool mapping_pattern_match(const TablePattern *p, const char *schema,
                           const char *name);

/* True when text matches the glob (`*`, `?`). */
bool mapping_glob(const char *glob, const char *text);

#endif
