/*
 * relcols: the source side of a schema change the target follows: what the
 * source's catalog says now of the columns a Relation message lists, and
 * the rows of a table read now for a column whose existing values no change
 * carried (state/columns.c applies the change on the target); and a
 * filtered table's condition, answered by the source for each new row
 * version.
 *
 * A Relation message names each column's type by OID and typmod, which
 * mean the same on the target only for built-in types, and says nothing of
 * the values the rows already there hold for a column just added. Those come
 * from the source, through the one SQL session of the change stream there,
 * opened at the first question. It only reads; it never writes on the
 * source.
 */
#ifndef PGTIDE_RELCOLS_H
#define PGTIDE_RELCOLS_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "base/err.h"

typedef struct RelCols RelCols;

/* What the source says of one column; strings owned. */
typedef struct RelColFact
{
	char *type;    /* format_type() of the message's OID and typmod */
	char *missing; /* the value existing rows read (a fast default), or NULL */
	char *flags;   /* 'm' missing applies, 'd' a default, 'n' NOT NULL,
	                  'u' existing rows hold values no catalog says (a rewrite
	                  or a volatile default): read them, 'g' gone from the
	                  source by that name and type since */
	char *def;     /* the default's expression, or NULL */
} RelColFact;

/* A describer for the source at uri; connects at its first question. */
RelCols *relcols_new(const char *source_uri);

void relcols_free(RelCols *rc);

/*
 * Describes the columns of relation relid: names, type OIDs and typmods as
 * text[], oid[] and int[] literals, as the Relation message lists them.
 * *out gets ncols facts in their order, freed with relcols_facts_free().
 */
bool relcols_describe(RelCols *rc, uint32_t relid, const char *names,
                      const char *oids, const char *typmods, int ncols,
                      RelColFact **out, Error *err);

void relcols_facts_free(RelColFact *f, int n);

/* Called with each batch of rows of relcols_rows; false stops it. */
typedef bool (*RelColsRowsFn)(const PGresult *rows, void *ctx, Error *err);

/*
 * Runs select (values as text, under the pinned settings) through a cursor
 * in one source transaction, handing each batch of at most batch rows to
 * each.
 */
bool relcols_rows(RelCols *rc, const char *select, int batch,
                  RelColsRowsFn each, void *ctx, Error *err);

/*
 * Runs one read-only statement sql with text parameters vals[0..n) (NULL
 * for SQL NULL) on the source, under the pinned settings: a filtered
 * table's condition on a row version, or the current row for the values a
 * change did not carry (decision 0029). *out gets the result, which the
 * caller PQclear()s.
 */
bool relcols_query(RelCols *rc, const char *sql, int n, const char *const *vals,
                   PGresult **out, Error *err);

#endif
