/*
 * dumpscript: a plain-format pg_dump script split into its TOC entries.
 *
 * Owns the lexical reading of pg_dump's SQL text: where each entry starts
 * (pg_dump's "-- Name: ...; Type: ...; Schema: ...; Owner: ..." header
 * comments), where each statement ends, which lines are psql meta-commands
 * (\restrict, \unrestrict, \connect) that libpq cannot run, and which table,
 * index and constraint kind an INDEX, CONSTRAINT, TRIGGER or INDEX ATTACH entry
 * acts on. Pure: bytes in, structs out; no I/O, no libpq, no logging. It says
 * what it removed only through dumpscript_meta().
 *
 * The scan follows PostgreSQL's lexer: '' and E'' strings (backslash escapes
 * in E'' strings, and in all strings after "SET standard_conforming_strings =
 * off;"), "" identifiers, $tag$ bodies, -- comments and nested block
 * comments. A header, a meta-command or a statement end is only recognised
 * outside those, so header-like text inside a function body or a string
 * literal is data. As in psql, a ';' inside parentheses (CREATE RULE ... DO
 * (a; b)) or inside the BEGIN ATOMIC ... END body of CREATE
 * FUNCTION/PROCEDURE ends no statement.
 *
 * Malformed input is an error of kind ERR_SOURCE naming "ORIGIN:LINE", LINE
 * being where the bad construct starts:
 *   unterminated quoted string / quoted identifier / dollar-quoted string /
 *   comment; a statement without its final ';' (at the end of the input or
 *   before the next header); a NUL byte; a backslash in the middle of a line
 *   outside quotes; a malformed "-- Name:" header; an INDEX, CONSTRAINT, FK
 *   CONSTRAINT, TRIGGER or INDEX ATTACH entry whose first statement does not
 *   have the form pg_dump writes for that type.
 */
#ifndef PGTIDE_DUMPSCRIPT_H
#define PGTIDE_DUMPSCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* Longest script accepted (PostgreSQL's own limit for a query string). */
#define DUMPSCRIPT_MAX_BYTES ((size_t) 1 << 30)

typedef struct DumpScript DumpScript;

/* What an "ALTER TABLE ... ADD CONSTRAINT name KIND" statement adds. */
typedef enum DumpConstraint
{
	DUMPSCRIPT_CON_NONE = 0,    /* the entry adds no table constraint */
	DUMPSCRIPT_CON_PRIMARY_KEY, /* builds an index named like the constraint */
	DUMPSCRIPT_CON_UNIQUE,      /* same */
	DUMPSCRIPT_CON_EXCLUDE,     /* same */
	DUMPSCRIPT_CON_OTHER,       /* FOREIGN KEY, CHECK, NOT NULL: no index */
} DumpConstraint;

/*
 * One TOC entry. Every string is owned by the DumpScript and NUL-terminated.
 *
 * table: the schema-qualified table as written in the statement (public.orders,
 * "My Schema"."Order Items"), for INDEX (CREATE [UNIQUE] INDEX name ON [ONLY]
 * table), CONSTRAINT, FK CONSTRAINT and CHECK CONSTRAINT (ALTER TABLE [ONLY]
 * table ADD CONSTRAINT) and TRIGGER (CREATE [CONSTRAINT] TRIGGER ... ON
 * table). NULL for every other type, for a CHECK CONSTRAINT on a domain, and
 * for INDEX ATTACH: that statement names two indexes and no table.
 *
 * index_name: the identifier's value (unquoted, "" undoubled, unquoted names
 * downcased) of the index the entry creates or attaches, without schema: the
 * index of an INDEX entry, the constraint of a CONSTRAINT entry whose kind is
 * PRIMARY_KEY, UNIQUE or EXCLUDE (PostgreSQL names that index after the
 * constraint), the partition index of INDEX ATTACH; NULL otherwise. It lives in
 * the schema of `table` (of the attached index for INDEX ATTACH).
 *
 * setup: the SET statements pg_dump wrote just before this entry's header to
 * prepare it (default_tablespace, default_table_access_method, session
 * authorization); "" when none. pg_dump only writes a SET when the value
 * changes, so running entries in order on one session (setup, then sql) is the
 * script; a session that runs entries out of order or in parallel must set
 * default_tablespace from `tablespace` ('' when NULL) itself.
 */
typedef struct DumpEntry
{
	const char *type;       /* "INDEX", "FK CONSTRAINT", ... from the header */
	const char *name;       /* header Name as pg_dump printed it */
	const char *schema;     /* header Schema; NULL for "-" */
	const char *owner;      /* header Owner; NULL for "-" or absent */
	const char *tablespace; /* header Tablespace; NULL when absent */
	const char *table;      /* see above, or NULL */
	const char *index_name; /* see above, or NULL */
	DumpConstraint constraint;
	const char *setup; /* see above; "" when none */
	const char *sql;   /* the statements, first token to last ';'; "" when
						  none; meta-command lines emptied */
	int line;          /* input line of sql's first line (of the header's Name
						  line when sql is "") */
} DumpEntry;

/* A psql meta-command line removed from the script. */
typedef struct DumpMeta
{
	const char *command; /* the line without its line break: "\restrict K" */
	int line;            /* its line in the input */
} DumpMeta;

/*
 * Parses len bytes of pg_dump plain-format output (text need not be
 * NUL-terminated nor end with a line break; NULL when len is 0). origin names
 * the input in error messages ("pre-data"). On success *out is a new
 * DumpScript the caller frees with dumpscript_free(). On failure fills err
 * (ERR_SOURCE for malformed input, ERR_INTERNAL when out of memory), leaves
 * *out NULL and returns false.
 */
bool dumpscript_parse(const char *text, size_t len, const char *origin,
                      DumpScript **out, Error *err);

/*
 * The statements before the first entry (pg_dump's SET and set_config
 * preamble), first token to last ';', meta-command lines emptied; "" when
 * none. A view valid until dumpscript_free().
 */
const char *dumpscript_preamble(const DumpScript *script);

/* Number of entries, in script order. */
int dumpscript_count(const DumpScript *script);

/* Entry i (0-based), a view valid until dumpscript_free(); NULL when out of
 * range. */
const DumpEntry *dumpscript_entry(const DumpScript *script, int i);

/* Number of meta-command lines removed, and line i of them (NULL when out of
 * range), in script order; views valid until dumpscript_free(). */
int dumpscript_meta_count(const DumpScript *script);
const DumpMeta *dumpscript_meta(const DumpScript *script, int i);

/*
 * The whole input with each meta-command line emptied (its line break kept, so
 * line numbers still match the input), ready for one PQexec. A view valid
 * until dumpscript_free().
 */
const char *dumpscript_sql(const DumpScript *script);

/* Frees script and everything it owns; NULL is a no-op. */
void dumpscript_free(DumpScript *script);

#endif
