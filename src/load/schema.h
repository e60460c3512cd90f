/*
 * schema: the table definitions on the target.
 *
 * Pre-data (types, tables, sequences, partitions) comes from the source's
 * pg_dump and is applied before the load, in one target transaction. Post-data
 * (indexes, constraints, triggers, rules) is held back: it is read at the same
 * snapshot, saved in the state schema as ordered steps, and built after the
 * load by parallel workers, largest table first, foreign keys last; each step
 * commits with its "done" mark, so an interrupted build resumes at the steps
 * not yet done.
 *
 * It never writes to the source.
 */
#ifndef PGTIDE_SCHEMA_H
#define PGTIDE_SCHEMA_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/err.h"
#include "base/gate.h"
#include "load/subset.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "state/state.h"

/*
 * Finds the pg_dump to use: `configured` when set, else the newest one
 * installed. Fails when its major version is older than the source's.
 * Writes the path into out.
 */
bool schema_find_pg_dump(const char *configured, int source_version, char *out,
                         size_t cap, Error *err);

typedef struct SchemaDumpArgs
{
	const char *pg_dump;
	const char *source_uri;
	const char *snapshot;     /* exported snapshot, or NULL */
	const char *state_schema; /* never dumped */
	char *const *exclude;     /* "schema"."table" of tables left out */
	int nexclude;
	char *const *include; /* only these tables (and what they own); or none */
	int ninclude;
	bool clean; /* DROP ... IF EXISTS before each CREATE */
} SchemaDumpArgs;

/*
 * Runs pg_dump for one section ("pre-data" or "post-data") and returns its
 * SQL text in *out (malloc'd, caller frees).
 */
bool schema_dump(const SchemaDumpArgs *args, const char *section, char **out,
                 Error *err);

/*
 * Applies a pre-data script on tgt inside the caller's open transaction,
 * entry by entry, so that a failure names the object ("TABLE public.orders")
 * that the target refused.
 */
bool schema_apply_predata(PgConn *tgt, const char *script, Error *err);

/*
 * Applies a post-data script on tgt inside the caller's open transaction,
 * entry by entry, each foreign key NOT VALID (*fks counts them): for a table
 * that joins a running task, whose rows come from a point of their own, not
 * the one the tables it references are at on the target.
 */
bool schema_apply_postdata(PgConn *tgt, const char *script, int *fks,
                           Error *err);

/*
 * Splits a post-data script into build steps and saves them in the state
 * schema (inside the caller's transaction). A primary key or unique
 * constraint on a plain table becomes an index build (which can run beside
 * the table's other index builds) and a cheap ADD CONSTRAINT ... USING INDEX;
 * src supplies those index definitions. The entries subset leaves out
 * (foreign keys, rules, policies, triggers that need a table not moved) are
 * not saved; subset may be NULL.
 */
bool schema_save_postdata(const State *st, PgConn *src, const Catalog *cat,
                          const Subset *subset, const char *script, Error *err);

/* Whether a source table's data is fully loaded (its steps may run). */
typedef bool (*SchemaReadyFn)(const char *schema, const char *name, void *ctx);

typedef struct SchemaBuild
{
	const char *target_uri;
	const State *state; /* the task's; each worker reaches it on its own
	                       connection */
	int jobs;           /* workers for the parallel phases (1 and 4) */
	int run;            /* recorded with each step done */
	int first_phase;    /* 1..5, see schema.c */
	int last_phase;
	int progress_interval_s; /* a progress line this often; 0: none */
	/*
	 * Optional: a step on a table runs only once ready() says the table is
	 * loaded, or once *load_done is true. Lets index builds start while
	 * other tables are still being copied.
	 */
	SchemaReadyFn ready;
	void *ready_ctx;
	atomic_bool *load_done;
	atomic_int *stop;
	Gate *gate; /* its build cap bounds the running steps; may be NULL */
} SchemaBuild;

/*
 * Runs the saved post-data steps of phases first..last not yet done, phase
 * by phase. Returns false with ERR_INTERRUPTED when *stop is set, or with the
 * first step's error.
 */
bool schema_build_postdata(const SchemaBuild *args, Error *err);

#endif
