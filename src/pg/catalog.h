/*
 * catalog: what the source database holds that a full load needs to know:
 * tables and partitions (with their ancestors), keys and replica identity,
 * columns and whether their types travel safely in binary COPY, sizes, and
 * sequences.
 *
 * Reads only; it never writes to any server. Queries are chosen by
 * server_version_num so that sources from 9.6 on are read correctly.
 */
#ifndef PGTIDE_CATALOG_H
#define PGTIDE_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "pg/pg.h"
#include "route/rename.h"

typedef struct CatColumn
{
	char *name;      /* owned */
	char *type_name; /* format_type(), for messages; owned */
	uint32_t type_oid;
	/* its binary form names no object by OID and reads back: not reg*, tsquery */
	bool binary_carries;
	/* that, and a built-in type (after domains): same OID on every server */
	bool binary_safe;
	/* its name on the target when renamed (catalog_rename), else NULL;
	   owned */
	char *tgt_name;
} CatColumn;

typedef struct CatTable
{
	uint32_t relid;
	char *schema;     /* owned */
	char *name;       /* owned */
	char *qname;      /* "schema"."name"; owned */
	char relkind;     /* 'r' table, 'p' partitioned */
	char persistence; /* 'p' permanent, 'u' unlogged */
	char replident;   /* 'd', 'n', 'f', 'i' */
	bool has_pk;
	bool has_identity; /* UPDATE/DELETE can be replicated */
	int parent;     /* index in Catalog.tables of the partition parent, or -1 */
	int64_t bytes;  /* pg_table_size: heap + TOAST */
	int64_t blocks; /* heap blocks, for ctid ranges */
	double reltuples;
	CatColumn *cols; /* copyable columns: not dropped, not generated */
	int ncols;
	bool selected; /* chosen by the task's patterns (leaves only) */
	/* catalog_rename: its names on the target when a rule renames it, else
	   NULL (the same as schema, name, qname); all owned */
	char *tgt_schema;
	char *tgt_name;
	char *tgt_qname;
	char **removed; /* the columns it does not move, taken out of cols */
	int nremoved;
} CatTable;

/*
 * A sequence, owned by a column (serial, identity) or by nothing, with the
 * options that bound where it may be set (pg_sequence, 10+).
 */
typedef struct CatSequence
{
	char *schema;
	char *name;
	char *qname;
	int64_t increment; /* negative: a descending sequence */
	int64_t min_value;
	int64_t max_value;
	bool cycle; /* wraps from one bound to the other */
	/* the table whose identity column owns it (pg_dump creates it with that
	 * table, never alone), or 0 */
	uint32_t identity_relid;
	/* the table and column owning it (serial, identity: ALTER TABLE moves
	   it along), or 0 and NULL; owner_col owned */
	uint32_t owner_relid;
	char *owner_col;
} CatSequence;

typedef struct Catalog
{
	CatTable *tables; /* every ordinary and partitioned table */
	int ntables;
	CatSequence *seqs; /* every sequence of the user's schemas */
	int nseqs;
	int server_version;
	int block_size;
} Catalog;

/*
 * Reads the catalog of conn's database (user schemas only; `skip_schema`, the
 * state schema, is left out, and so are the tables and sequences that belong
 * to an extension: pg_dump leaves them to CREATE EXTENSION, so the target
 * would have no table to load them into). On success *out is a new Catalog
 * the caller frees with catalog_free().
 */
bool catalog_read(PgConn *conn, const char *skip_schema, Catalog **out,
                  Error *err);

void catalog_free(Catalog *cat);

/*
 * Marks the leaf tables selected by the include and exclude patterns. Fails,
 * naming the pattern, when an include pattern matches no table.
 */
bool catalog_select(Catalog *cat, char *const *include, int ninclude,
                    char *const *exclude, int nexclude, Error *err);

/*
 * The same marks, where an include pattern that matches no table is no
 * error: for a look at the source long after the task chose its tables
 * (one of them may be gone since; cutover decides about that).
 */
bool catalog_select_any(Catalog *cat, char *const *include, int ninclude,
                        char *const *exclude, int nexclude, Error *err);

/*
 * Applies rules (route/rename: the task's rename.*, remove_columns and
 * table-mapping transformations) to the selected tables: each table's and column's target
 * names, and its removed columns taken out of cols into removed. Reads on
 * conn what a removed column is needed by. Fails (ERR_CONFIG, naming the
 * task file's line) on a rule that names no selected table or column, two
 * tables or two columns onto one target name, a removed column of the
 * replica identity (the stream could not find the rows), and, with
 * `create` (the target's schema comes from the source's), a removed column
 * another object needs (an index, a constraint, a generated column, a
 * view), naming them.
 */
bool catalog_rename(PgConn *conn, Catalog *cat, const Renames *rules,
                    bool create, Error *err);

/* t's target name: tgt_qname when renamed, else qname. */
const char *catalog_tgt_qname(const CatTable *t);

/* c's target name: tgt_name when renamed, else name. */
const char *catalog_tgt_col(const CatColumn *c);

/* Index of schema.name in cat->tables, or -1. */
int catalog_find(const Catalog *cat, const char *schema, const char *name);

/* True when every column of t can be copied in binary. */
bool catalog_binary_safe(const CatTable *t);

/*
 * True unless a column's binary form cannot carry its value to another
 * database whatever the types there (a reg* type's OID, an empty tsquery).
 */
bool catalog_binary_carries(const CatTable *t);

#endif
