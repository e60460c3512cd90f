/*
 * subset: what a task that moves only some tables leaves behind, decided
 * before anything is created.
 *
 * A table the patterns leave out (not selected, nor an ancestor of a selected
 * one) is not dumped, so every object of the source that needs it would make
 * the schema step fail on the target, after the slot exists. This module
 * reads the source's dependencies once and says, per object, what happens:
 *
 *   view, materialized view   left out, with the views that read it in turn
 *   foreign key, rule,        left out of the post-data steps (the table
 *   policy, trigger           they are on is created without them)
 *   partition or inheritance  left out with its rows; its parent is created
 *   child                     without it
 *   anything else             (a function, a column's default or type, a
 *                             CHECK, a table inheriting from the table)
 *                             blocks: the target would refuse it
 *
 * check names each object (subset_dependency); the load leaves out the same
 * objects and refuses the blockers before it creates its slot. It only reads
 * the source; it never writes to either server.
 */
#ifndef PGTIDE_SUBSET_H
#define PGTIDE_SUBSET_H

#include <stdbool.h>

#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

typedef enum SubsetKind
{
	SUBSET_VIEW = 0,
	SUBSET_MATVIEW,
	SUBSET_FOREIGN_KEY,
	SUBSET_RULE,
	SUBSET_POLICY,
	SUBSET_TRIGGER,
	SUBSET_PARTITION, /* a partition of a created table, left out */
	SUBSET_CHILD,     /* an inheritance child of a created table, left out */
	SUBSET_BLOCKER,   /* the target would refuse it: nothing is left out */
} SubsetKind;

/* One object that needs a table left out. Every string is owned. */
typedef struct SubsetObject
{
	SubsetKind kind;
	char *what;  /* "view public.order_summary", "function f()", ... */
	char *cause; /* the table left out that it needs: public.customers */
	char *via;   /* the left-out view through which it reads cause, or "" */
	char *table; /* the table it is on (foreign keys, rules, policies,
	                triggers), the parent (partitions, children), or "" */
	/* its pg_dump TOC entry ("FK CONSTRAINT", "public", "orders fk"), or
	 * NULL for views (left out by exclude) and blockers */
	char *dump_type;
	char *dump_schema;
	char *dump_name;
	char *exclude; /* views: "schema"."name" for pg_dump --exclude-table */
} SubsetObject;

typedef struct Subset
{
	SubsetObject *items; /* owned */
	int n;
} Subset;

/*
 * Per cat->tables, whether the table is created on the target: selected, or
 * the ancestor of a selected table. malloc'd (the caller frees it); NULL
 * when out of memory.
 */
bool *subset_kept_tables(const Catalog *cat);

/*
 * The source tables that are left out: neither selected nor the ancestor of
 * a selected table (pg_dump creates ancestors; the load leaves them empty).
 * Returns a malloc'd array of views of the tables' qnames ("schema"."name"),
 * *n long; the caller frees the array only. NULL when out of memory.
 */
char **subset_left_out_tables(const Catalog *cat, int *n);

/*
 * Reads which objects of the source need a table that cat's selection
 * leaves out (see the top of this file). *out is filled (free with
 * subset_free, also after a failure). Fails with the server's error.
 */
bool subset_read(PgConn *src, const Catalog *cat, Subset *out, Error *err);

void subset_free(Subset *s);

/* Whether the object blocks the load. */
bool subset_blocks(const SubsetObject *o);

/*
 * What happens to the object, as the end of a sentence: "it will not be
 * created on the target", ... A static string.
 */
const char *subset_outcome(const SubsetObject *o);

/*
 * Whether the post-data entry (pg_dump's TOC type, schema and name) is one
 * the subset leaves out.
 */
bool subset_leaves_out(const Subset *s, const char *type, const char *schema,
                       const char *name);

/*
 * Fails with ERR_BLOCKED naming the first blocker (and how many there are)
 * when the subset has any; true otherwise.
 */
bool subset_refuse_blockers(const Subset *s, Error *err);

#endif
