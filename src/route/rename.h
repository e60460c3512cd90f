/*
 * rename: the names a source table and its columns take on the target, and
 * the columns that do not move.
 *
 * Pure: rules and names in, names out; no libpq. A rule acts on one kind of
 * object (a schema, a table, a column), selects the objects by their source
 * names (exact names from the task file's rename.* and remove_columns, or
 * AWS DMS wildcards from a table-mapping file's transformation rules), and
 * says what the object's target name is. As in AWS DMS, at most one rule
 * acts on one object: two rules on the same object are an error naming
 * both, so the order of the rules never matters.
 *
 * A table's names are computed once, into a RenamedTable, by whoever builds
 * the table's statements (the load, the change stream, validate); it never
 * reads a catalog.
 */
#ifndef PGTIDE_RENAME_H
#define PGTIDE_RENAME_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "route/mapping.h"

typedef enum RenameOn
{
	RENAME_ON_SCHEMA = 0,
	RENAME_ON_TABLE,
	RENAME_ON_COLUMN,
} RenameOn;

typedef enum RenameAction
{
	RENAME_TO = 0,         /* value is the new name */
	RENAME_REMOVE,         /* a column that does not move */
	RENAME_LOWER,          /* ASCII letters to lower case */
	RENAME_UPPER,          /* ASCII letters to upper case */
	RENAME_ADD_PREFIX,     /* value before the name */
	RENAME_REMOVE_PREFIX,  /* value taken off the start, when there */
	RENAME_REPLACE_PREFIX, /* old_value at the start becomes value */
	RENAME_ADD_SUFFIX,
	RENAME_REMOVE_SUFFIX,
	RENAME_REPLACE_SUFFIX,
} RenameAction;

/* One rule; every string owned by the Renames it is added to. */
typedef struct RenameRule
{
	RenameOn on;
	RenameAction action;
	PatternSyntax syntax; /* PATTERN_EXACT or PATTERN_LIKE */
	char *schema;         /* the source schema's pattern */
	char *table;          /* the source table's, or NULL (schema rules) */
	char *column;         /* the source column's, or NULL (not column rules) */
	char *value;          /* the new name, the prefix or suffix added */
	char *old_value;      /* replace-prefix/-suffix: the part replaced */
	char *to_schema;      /* a table rule that moves the table, or NULL */
	char *where;          /* how messages name the rule ("f.yaml:4: key
	                         rename.tables", "rule 3") */
} RenameRule;

typedef struct Renames
{
	RenameRule *rules; /* owned */
	int n;
	int cap;
} Renames;

/* An empty set of rules; freeing it is optional. */
void rename_init(Renames *r);

/* Frees what r owns; r is empty afterwards. NULL is a no-op. */
void rename_free(Renames *r);

/* True when r holds no rule: every name stays as it is. */
bool rename_none(const Renames *r);

/*
 * Appends a copy of rule (its strings copied; NULL ones stay NULL). Fails
 * only out of memory.
 */
bool rename_add(Renames *r, const RenameRule *rule, Error *err);

/*
 * Appends the task file's rules: rename.schemas, rename.tables,
 * rename.columns and remove_columns, exact names parsed as route/mapping
 * parses a pattern (double quotes keep dots; no schema part means public),
 * then the table-mapping file's transformation rules (cfg->transformations,
 * DMS wildcards).
 * Fails (ERR_CONFIG), naming the file, line and key, on a name that does not
 * parse; r then holds the rules before it.
 */
bool rename_from_config(Renames *r, const TaskConfig *cfg, Error *err);

/* Where a table goes: its target names and each column's. */
typedef struct RenamedTable
{
	char *schema; /* the target schema; owned */
	char *name;   /* the target table; owned */
	char *qname;  /* "schema"."name", quoted as PostgreSQL needs; owned */
	int ncols;
	char **cols;   /* per source column: its target name, or NULL when it is
	                 removed; owned */
	int *col_rule; /* per source column: the rule acting on it, or -1;
	                  owned */
	bool renamed;  /* a name differs or a column is removed */
} RenamedTable;

/*
 * Computes where schema.name and its columns cols[0..ncols) go. used, when
 * non-NULL, has one flag per rule of r, set for each rule that acts. Fails
 * (ERR_CONFIG) when two rules act on one object, naming both, when two
 * columns would take the same target name, or when a rule would leave an
 * empty name; out is then empty. The caller frees out with
 * rename_table_free().
 */
bool rename_table(const Renames *r, const char *schema, const char *name,
                  char *const *cols, int ncols, bool *used, RenamedTable *out,
                  Error *err);

void rename_table_free(RenamedTable *t);

/*
 * After every selected table went through rename_table with used: fails
 * (ERR_CONFIG) on the first exact rule that acted on nothing, naming the
 * rule and the object it names. A DMS wildcard rule may match nothing.
 */
bool rename_check_used(const Renames *r, const bool *used, Error *err);

/* The text of an action, as a table-mapping file writes it ("add-prefix"). */
const char *rename_action_name(RenameAction a);

#endif
