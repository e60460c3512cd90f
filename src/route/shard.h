/*
 * shard: which of several targets a row goes to (docs/sharding.md).
 *
 * Pure: the task file's targets and shard section in, a ShardSpec out;
 * a key's text in, a target's index out. No libpq, no clock, no socket:
 * what the source holds (a table's columns, a lookup table's rows) is
 * handed in by the caller. Must never choose a target by anything but the
 * rules written here, since an application computes the same answer.
 *
 * A key is routed by its text form as pgtide's pinned sessions print it
 * (decision 0006): `42`, `-7`, `3f2504e0-4f89-11d3-9a0c-0305e82c3301`,
 * `acme`; NULL has no target.
 *
 *   method  target of key k (targets numbered 0..n-1 in the file's order)
 *   hash    the first 4 bytes of md5(k), read as a big-endian unsigned
 *           32-bit number, modulo n
 *   list    the target whose shard.values name k (compared as text)
 *   range   the target whose shard.bounds "LOW..HIGH" hold k as a 64-bit
 *           integer, LOW <= k < HIGH (an empty side is unbounded)
 *   lookup  the target the lookup table names for k (shard_lookup_put)
 *
 * A table is routed by the first shard.tables pattern it matches ("key
 * COLUMN": routed by that column; "target NAME": every row to that target;
 * "all": every row to every target), else by shard.key when it has that
 * column, else it is a reference table and goes to every target. The
 * lookup table itself goes to every target, whatever the rules say: each
 * target's stream routes by its own copy (decision 0036).
 */
#ifndef PGTIDE_SHARD_H
#define PGTIDE_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"

/* Target names: [a-z_][a-z0-9_]*, so that they can name state and origins. */
#define SHARD_NAME_MAX 32

/* The most targets a task has: the load sends a chunk's rows to each of
   them from one worker (load/copy's COPY_TARGETS_MAX). */
#define SHARD_TARGETS_MAX 64

/* The most entries a lookup table may hold in memory. */
#define SHARD_LOOKUP_MAX 10000000

typedef struct ShardSpec ShardSpec;

typedef enum ShardTableKind
{
	SHARD_TABLE_KEYED = 0, /* each row to the target its key says */
	SHARD_TABLE_ONE,       /* every row to one target */
	SHARD_TABLE_ALL,       /* every row to every target: a reference table */
} ShardTableKind;

/* How one table is routed; views into the ShardSpec, valid while it lives. */
typedef struct ShardTableRoute
{
	ShardTableKind kind;
	const char *key;  /* SHARD_TABLE_KEYED: the routing column */
	int target;       /* SHARD_TABLE_ONE: the target's index */
	const char *rule; /* the shard.tables pattern that decided, or NULL */
} ShardTableRoute;

/*
 * Checks cfg's targets and shard section against each other and builds
 * the routing rules into *out (the caller frees it with shard_spec_free).
 * Without targets, *out is NULL and the call succeeds. Every failure is
 * ERR_CONFIG (ERR_INTERNAL out of memory) naming the task file, line and
 * key: a bad target name, the same connection string twice, a method
 * without its values, values or bounds naming an unknown target or missing
 * one, a value given twice, overlapping bounds, a bad shard.tables rule.
 */
bool shard_spec_new(const TaskConfig *cfg, ShardSpec **out, Error *err);

/* Frees spec; NULL is a no-op. */
void shard_spec_free(ShardSpec *spec);

/* The number of targets, and target i's name and connection string
 * (views). */
int shard_spec_ntargets(const ShardSpec *spec);
const char *shard_spec_target_name(const ShardSpec *spec, int i);
const char *shard_spec_target_uri(const ShardSpec *spec, int i);

/*
 * How schema.table is routed, given its column names (see the header
 * comment). Fails (ERR_CONFIG) when the shard.tables rule that matches
 * names a column the table lacks, naming the table, the rule and the
 * column.
 */
bool shard_table_route(const ShardSpec *spec, const char *schema,
                       const char *table, const char *const *columns,
                       int ncolumns, ShardTableRoute *out, Error *err);

/*
 * Whether a key column of type type_name (as format_type() prints it) can
 * be routed by spec's method: its text form must be one value's only form
 * (no "1.0" beside "1.00", no time zone in it). Fails (ERR_CONFIG) naming
 * the type; the caller prefixes the table and column.
 */
bool shard_key_type_check(const ShardSpec *spec, const char *type_name,
                          Error *err);

/* The hash method's number for key[0..len): md5's first 4 bytes,
 * big-endian. */
uint32_t shard_hash(const char *key, size_t len);

/*
 * The target of a row whose routing column holds key[0..len) (key NULL for
 * SQL NULL). Fails (ERR_CONFIG) when the key has no target: NULL, a list
 * value no target names, a range key outside every bound or not an
 * integer, a lookup key the lookup table lacks. The message never holds
 * the key (row values stay out of logs).
 */
bool shard_route(const ShardSpec *spec, const char *key, size_t len,
                 int *target, Error *err);

/*
 * Appends to out an SQL condition on the source's rows that holds exactly
 * for the rows whose key, in column qcolumn (already quoted), routes to
 * target (NULL and unrouted keys: for no target), as shard_route decides;
 * for target -1, the condition that holds for rows of no target. Literals
 * are quoted for standard_conforming_strings = on. Fails as buf_add.
 */
bool shard_sql_condition(const ShardSpec *spec, int target, const char *qcolumn,
                         Buf *out, Error *err);

/*
 * With the hash method, appends to out the SQL expression of the target
 * index (0..n-1) of the key in column qcolumn (already quoted), as
 * shard_route computes it; NULL for a NULL key. Fails (ERR_INTERNAL) for
 * another method, or as buf_add.
 */
bool shard_sql_hash_index(const ShardSpec *spec, const char *qcolumn, Buf *out,
                          Error *err);

/* The lookup table named by shard.lookup, as written there, parsed:
 * schema, table, its key column and its target-name column (views); false
 * when the method is not lookup. */
bool shard_spec_lookup_table(const ShardSpec *spec, const char **schema,
                             const char **table, const char **key_column,
                             const char **target_column);

/*
 * Records that key[0..len) lives on the target named target_name
 * (replacing what the key had). Fails (ERR_CONFIG) for a name that is no
 * target, (ERR_INTERNAL) past SHARD_LOOKUP_MAX keys or out of memory;
 * spec is unchanged then.
 */
bool shard_lookup_put(ShardSpec *spec, const char *key, size_t len,
                      const char *target_name, Error *err);

/* Whether the lookup rules hold key[0..len); *target is then its target. */
bool shard_lookup_has(const ShardSpec *spec, const char *key, size_t len,
                      int *target);

/* The index of the target named name, or -1. */
int shard_spec_target_index(const ShardSpec *spec, const char *name);

#endif
