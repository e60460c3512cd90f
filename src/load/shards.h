/*
 * shards: a task with several targets, before any data moves
 * (docs/sharding.md). Connects to the source and to every target, reads
 * the tables the task selects and routes each one by the task file's rules
 * (route/shard), and refuses with one error naming what and where: a
 * shard.tables rule naming a column its table lacks, a routing column of a
 * type that cannot be routed, a lookup table the source lacks, a target it
 * cannot reach, two targets (or a target and the source) that are one
 * database. Reads only; it must never write to either side.
 */
#ifndef PGTIDE_SHARDS_H
#define PGTIDE_SHARDS_H

#include <stdbool.h>
#include <stdio.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/shard.h"

typedef struct ShardsTable
{
	char *qname;           /* "schema"."name"; owned */
	ShardTableRoute route; /* views into the ShardSpec */
	char *key_type;        /* the routing column's type; owned, or NULL */
} ShardsTable;

typedef struct ShardsPlan
{
	ShardsTable *tables; /* the selected tables, in the catalog's order */
	int ntables;
} ShardsPlan;

/*
 * Runs the preflight of cfg's targets under spec. With read_rows it also
 * reads each routed table for a row whose key routes to no target: a scan
 * of every routed table, for the commands that would otherwise miss such a
 * row (check, validate); the load and the stream route every row
 * themselves and stop at one. On success *out is a new plan
 * (shards_plan_free); on failure *out is NULL and err names the table,
 * rule, column or target (ERR_CONFIG for a rule or a type, ERR_SOURCE or
 * ERR_TARGET for a server).
 */
bool shards_preflight(const TaskConfig *cfg, const ShardSpec *spec,
                      bool read_rows, ShardsPlan **out, Error *err);

/* Writes one line per table: where its rows go. */
void shards_plan_print(const ShardsPlan *plan, const ShardSpec *spec, FILE *f);

/*
 * The condition on t's source rows that selects target's share, for what
 * reads one target's share on the source (its stream's row filter,
 * validate, cutover's copies): *out is malloc'd (the caller frees it), or NULL for every
 * row (a reference table). Fails as shard_table_route, or out of memory.
 */
bool shards_where(const ShardSpec *spec, int target, const CatTable *t,
                  char **out, Error *err);

/*
 * How a load that reads each chunk once routes t's rows (CopyTable): the
 * routing column's position among t's columns and its type OID, or
 * *key_col -1 for a table not routed row by row; then *whole_target, the
 * one target its rows all go to, or -1 for every target.
 */
bool shards_copy_route(const ShardSpec *spec, const CatTable *t, int *key_col,
                       uint32_t *key_type, int *whole_target, Error *err);

/*
 * Reads spec's lookup table into spec's routing map, as conn sees it in
 * the table qtable (quoted: a target's copy), or with qtable NULL in the
 * table shard.lookup names (the source's); *nkeys gets its rows. Nothing to do when the method is not lookup. Fails as
 * shard_lookup_put, or naming the lookup table.
 */
bool shards_lookup_read(PgConn *conn, const char *qtable, ShardSpec *spec,
                        int *nkeys, Error *err);

/* One table's share of one target, as its load and its stream read it. */
typedef struct ShardsShare
{
	/* the condition on its source rows that keeps the share (the table's
	   own filter ANDed with its routing), or NULL for every row */
	char *filter;
	/* what the stream evaluates: the own filter when the table is routed
	   by a key (route_key; routed in pgtide), else filter */
	char *stream_filter;
	char *route_key; /* the routing column, or NULL */
	bool routing;    /* filter holds a routing condition */
} ShardsShare;

/*
 * t's share of target, given t's own filter (NULL: none). Refuses
 * (ERR_CONFIG) a table routed by its key without a primary key or replica
 * identity, whose rows could not be deleted when their key moves; fails as
 * shards_where. Free *out with shards_share_free.
 */
bool shards_share(const ShardSpec *spec, int target, const CatTable *t,
                  const char *own, ShardsShare *out, Error *err);

void shards_share_free(ShardsShare *sh);

/*
 * The rules of the process working on one target of several (cfg names it
 * in shard_target): *spec (free it with shard_spec_free) and the target's
 * index in it.
 */
bool shards_own_spec(const TaskConfig *cfg, ShardSpec **spec, int *target,
                     Error *err);

/*
 * For the process working on one target of several under migrate: adds to
 * cfg->filters, for each selected table, the condition that keeps target's
 * share (ANDed with the table's own filter), so that its load, stream,
 * validation and cutover move exactly that share, as they do for any
 * filtered table: an UPDATE that moves a row's key to another target
 * deletes it here and inserts it there (shards_share). Refuses
 * (ERR_CONFIG) a lookup table that is not one of the task's or has no
 * primary key (the stream routes by each target's copy of it, decision
 * 0036), and what shards_share refuses.
 */
bool shards_route_as_filters(TaskConfig *cfg, const ShardSpec *spec, int target,
                             Error *err);

/* Frees plan; NULL is a no-op. */
void shards_plan_free(ShardsPlan *plan);

#endif
