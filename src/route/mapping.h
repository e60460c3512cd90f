/*
 * mapping: which source tables a task moves.
 *
 * Pure: patterns and names in, decisions out; no libpq. A pattern is
 * `schema.table` with `*` (any run of characters) and `?` (one character);
 * double quotes keep dots and case literal ("My Schema"."Order.Items"); a
 * pattern without a schema part means `public`. A partition is selected when
 * it or any of its ancestors matches an include pattern (or there are none)
 * and neither it nor an ancestor matches an exclude pattern.
 *
 * A second syntax comes from an AWS DMS table-mapping file (the task file's
 * table_mappings, read by base/config into tables.include and
 * tables.exclude in the form CONFIG_RULE_MARK describes): `%` any run, `_`
 * one character, `[_]` a literal underscore, `[ab]` and `[a-d]` sets
 * (PATTERN_LIKE), or exact names for an explicit rule (PATTERN_EXACT).
 * Such a pattern's text names its rule, for messages.
 *
 * A PatternSet answers "does any pattern match" for thousands of patterns:
 * the ones without a wildcard are looked up in a hash table, only the others
 * are tried one by one.
 */
#ifndef PGTIDE_MAPPING_H
#define PGTIDE_MAPPING_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef enum PatternSyntax
{
	PATTERN_GLOB = 0, /* pgtide's own: `*`, `?` */
	PATTERN_LIKE,     /* AWS DMS: `%`, `_`, `[set]` */
	PATTERN_EXACT,    /* AWS DMS explicit: the names as they are */
} PatternSyntax;

typedef struct TablePattern
{
	PatternSyntax syntax;
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

/* True when the table name alone matches p (a temporary table's schema is
 * its session's). */
bool mapping_name_match(const TablePattern *p, const char *name);

/* True when text matches the glob (`*`, `?`). */
bool mapping_glob(const char *glob, const char *text);

/* True when text matches the DMS pattern (`%`, `_`, `[_]`, `[ab]`, `[a-d]`);
 * an unclosed or empty `[` set matches nothing (the file's reader refuses
 * both first). */
bool mapping_like(const char *like, const char *text);

/* Patterns for fast matching; views into the caller's TablePatterns, which
 * must outlive the set. */
typedef struct PatternSet
{
	const TablePattern *pats;
	int n;
	char **lit_schema; /* per pattern: its literal names, or NULL when it has
	                      a wildcard; owned */
	char **lit_table;
	int *head; /* hash slots: first pattern index, or -1; owned */
	int *next; /* per pattern: the next one in its slot's chain, or -1 */
	size_t mask;
	int *wild; /* indexes of the patterns with a wildcard; owned */
	int nwild;
} PatternSet;

/* Builds s over pats[0..n); fails only out of memory (s is then empty). */
bool mapping_set_build(PatternSet *s, const TablePattern *pats, int n,
                       Error *err);

/*
 * True when schema.name matches one of the patterns. With used non-NULL,
 * sets used[i] for every pattern i that matches; without it, stops at the
 * first.
 */
bool mapping_set_match(const PatternSet *s, const char *schema,
                       const char *name, bool *used);

/* Frees what s owns. */
void mapping_set_free(PatternSet *s);

#endif
