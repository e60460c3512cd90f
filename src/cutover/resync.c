/*
 * resync: what the change stream cannot carry, brought up to date while the
 * source is fenced and the target has every streamed change: unlogged
 * tables (their changes are not in the WAL) and, when the task is told to
 * (cutover.diverged = recopy), keyless tables that saw an UPDATE or DELETE
 * (load/insert_only.h). Each is emptied and copied again from the fenced
 * source in one target transaction, so a failure or a kill leaves the
 * target's copy as it was. It reads the source and writes only those
 * target tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/units.h"
#include "cutover/cutover_int.h"
#include "load/copy.h"
#include "load/insert_only.h"
#include "load/lobjects.h"
#include "pg/catalog.h"
#include "route/filter.h"

/* as many tries per table as the load gives a chunk */
#define RESYNC_RETRIES 5

/* Fails, naming the diverged tables, unless the task copies them again. */
static bool
refuse_diverged(const CutoverTarget *t, const InsertOnlyWatch *w, Error *err)
{
	char names[512];

	if (w->diverged == 0 || t->cfg->cutover_diverged == DIVERGED_RECOPY)
		return true;
	insert_only_names(w, names, sizeof(names));
	err_set(err, ERR_DIFFERENT,
	        "%d tables without a key diverged: %s saw an UPDATE or DELETE on "
	        "the source, which the stream cannot carry without a key",
	        w->diverged, names);
	return err_hint(err,
	                "run cutover with --diverged=recopy to copy them again "
	                "while the source is fenced (pgtide status says why each "
	                "diverged); or give them a primary key on the source and "
	                "start the task again");
}

bool
resync_precheck(Cutover *c, CutoverTarget *t, Error *err)
{
	InsertOnlyWatch w;
	int64_t nlo;
	bool ok;

	if (!lobjects_count(t->src, &nlo, err))
		return false;
	if (nlo > 0 && t->cfg->cutover_fence == FENCE_REVOKE)
	{
		err_set(err, ERR_CONFIG,
		        "the source has %lld large objects, and the revoke fence "
		        "cannot stop writes to them (creating one needs no "
		        "privilege)",
		        (long long) nlo);
		return err_hint(err, "run cutover with --fence read_only, or with a "
		                     "fence command (--fence command)");
	}
	if (!insert_only_watch(t->src, &t->state, true, &w, err))
		return false;
	ok = refuse_diverged(t, &w, err);
	if (ok && w.n > 0)
		cutover_step_done(c, t, "%d tables without a key, %d diverged", w.n,
		                  w.diverged);
	insert_only_watch_free(&w);
	return ok;
}

/* The task's target table for a source table, from its state. */
static const char *
target_of(const StateTable *st, int n, const CatTable *t)
{
	for (int i = 0; i < n; i++)
		if (strcmp(st[i].src_schema, t->schema) == 0 &&
		    strcmp(st[i].src_name, t->name) == 0)
			return st[i].tgt_qname;
	return NULL;
}

static bool
diverged(const InsertOnlyWatch *w, const CatTable *t)
{
	for (int i = 0; i < w->n; i++)
		if (w->tables[i].diverged &&
		    strcmp(w->tables[i].src_schema, t->schema) == 0 &&
		    strcmp(w->tables[i].src_name, t->name) == 0)
			return true;
	return false;
}

static bool
chunk_done(PgConn *tgt, int target, const PlanChunk *chunk, int64_t rows,
           int64_t bytes, void *ctx, Error *err)
{
	(void) tgt;
	(void) target;
	(void) chunk;
	(void) rows;
	(void) bytes;
	(void) ctx;
	(void) err;
	fault_point("cutover.resync.before_commit");
	return true;
}

/* A retried copy empties the table again: nothing to look up. */
static bool
chunk_check(PgConn *tgt, int target, const PlanChunk *chunk, bool *done,
            void *ctx, Error *err)
{
	(void) tgt;
	(void) target;
	(void) chunk;
	(void) ctx;
	(void) err;
	*done = false;
	return true;
}

typedef struct Resync
{
	CopyTable *tables;
	char **columns;
	char **tgt_columns; /* by the target's names (decision 0028) */
	PlanChunk *chunks;
	int n;
	int unlogged;
	int diverged;
} Resync;

static void
resync_free(Resync *r)
{
	for (int i = 0; i < r->n; i++)
	{
		free(r->columns[i]);
		free(r->tgt_columns[i]);
	}
	free(r->columns);
	free(r->tgt_columns);
	free(r->tables);
	free(r->chunks);
}

/* The task's renames (decision 0028) on its tables of cat: a table copied
 * again goes under its target's names, as the load put it there. */
static bool
rename_task_tables(const CutoverTarget *t, Catalog *cat, const StateTable *st,
                   int nst, Error *err)
{
	Renames renames;
	bool ok;

	for (int i = 0; i < cat->ntables; i++)
		cat->tables[i].selected = target_of(st, nst, &cat->tables[i]) != NULL;
	rename_init(&renames);
	ok = rename_from_config(&renames, t->cfg, err) &&
	     catalog_rename(t->src, cat, &renames, false, err);
	rename_free(&renames);
	return ok;
}

/* Picks the tables to copy again, and their target tables. */
static bool
pick(const CutoverTarget *on, const Catalog *cat, const InsertOnlyWatch *w,
     const StateTable *st, int nst, Resync *r, Error *err)
{
	r->tables = calloc((size_t) cat->ntables + 1, sizeof(CopyTable));
	r->columns = calloc((size_t) cat->ntables + 1, sizeof(char *));
	r->tgt_columns = calloc((size_t) cat->ntables + 1, sizeof(char *));
	r->chunks = calloc((size_t) cat->ntables + 1, sizeof(PlanChunk));
	if (r->tables == NULL || r->columns == NULL || r->tgt_columns == NULL ||
	    r->chunks == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];
		const char *tgt = target_of(st, nst, t);
		bool unlogged = t->persistence == 'u';
		CopyTable *ct;

		if (tgt == NULL || (!unlogged && !diverged(w, t)))
			continue;
		if (strcmp(tgt, catalog_tgt_qname(t)) != 0)
		{
			err_set(err, ERR_TARGET,
			        "table %s cannot be copied again: it loads into %s on "
			        "the target, which other tables load into too",
			        t->qname, tgt);
			return err_hint(err, "leave it out of the task, or give the "
			                     "target a table of the same name");
		}
		ct = &r->tables[r->n];
		r->columns[r->n] = copy_column_list(t);
		r->tgt_columns[r->n] = copy_target_column_list(t);
		if (r->columns[r->n] == NULL || r->tgt_columns[r->n] == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		ct->src_qname = t->qname;
		ct->tgt_qname = tgt;
		ct->columns = r->columns[r->n];
		ct->tgt_columns = r->tgt_columns[r->n];
		ct->binary = copy_use_binary(on->cfg, t);
		ct->filter = filter_find(&on->cfg->filters, t->schema, t->name, NULL);
		/* emptied in the copy's own transaction */
		ct->freeze = true;
		atomic_init(&ct->chunks_left, 1);
		r->chunks[r->n] = (PlanChunk){.table = r->n,
		                              .chunk = 0,
		                              .nchunks = 1,
		                              .start_block = -1,
		                              .end_block = -1};
		r->unlogged += unlogged;
		r->diverged += !unlogged;
		r->n++;
	}
	return true;
}

bool
resync_tables(Cutover *c, CutoverTarget *t, Error *err)
{
	InsertOnlyWatch w;
	Catalog *cat = NULL;
	StateTable *st = NULL;
	Resync r;
	CopyRun run;
	int nst = 0;
	int64_t rows = 0, waited;
	bool lost, ok;

	memset(&r, 0, sizeof(r));
	if (!insert_only_watch(t->src, &t->state, true, &w, err))
		return false;
	/* a keyless table's UPDATE just before the fence reaches the
	   statistics a moment later: look again once it must be there */
	waited = clock_ms() - c->fence_ms;
	if (w.n > 0 && waited < INSERT_ONLY_STATS_DELAY_MS)
	{
		insert_only_watch_free(&w);
		clock_sleep_ms(INSERT_ONLY_STATS_DELAY_MS - waited);
		if (!insert_only_watch(t->src, &t->state, true, &w, err))
			return false;
	}
	ok = refuse_diverged(t, &w, err) &&
	     catalog_read(t->src, t->cfg->state_schema, &cat, err) &&
	     state_tables_load(&t->state, &st, &nst, err) &&
	     rename_task_tables(t, cat, st, nst, err) &&
	     pick(t, cat, &w, st, nst, &r, err);
	if (ok && r.n > 0)
	{
		memset(&run, 0, sizeof(run));
		run.source_uri = t->cfg->source_uri;
		run.target_uri = t->cfg->target_uri;
		run.tables = r.tables;
		run.chunks = r.chunks;
		run.nchunks = r.n;
		run.workers = t->cfg->copy_jobs;
		run.max_retries = RESYNC_RETRIES;
		run.chunk_done = chunk_done;
		run.chunk_check = chunk_check;
		run.stop = c->stop;
		ok = copy_run(&run, &lost, err);
		for (int i = 0; i < r.n; i++)
			rows += atomic_load(&r.tables[i].rows_done);
		if (!ok)
			err_prefix(err, "copying again while fenced: ");
		else
			cutover_step_done(c, t,
			                  "%d tables copied again (%d unlogged, %d "
			                  "diverged): %lld rows",
			                  r.n, r.unlogged, r.diverged, (long long) rows);
	}
	resync_free(&r);
	state_tables_free(st, nst);
	catalog_free(cat);
	insert_only_watch_free(&w);
	return ok;
}

bool
resync_large_objects(Cutover *c, CutoverTarget *t, Error *err)
{
	LoSync r;
	char size[32];
	bool ok;

	/* one view of the fenced source for the whole pass */
	ok = pg_exec(t->src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	             err) &&
	     lobjects_sync(t->src, t->tgt, &t->state, c->stop, &r, err);
	{
		Error ignored = ERR_INIT;

		pg_exec(t->src, ok ? "COMMIT" : "ROLLBACK", &ignored);
	}
	if (!ok)
		return err_prefix(err, "large objects: ");
	if (r.seen == 0 && r.removed == 0)
		return true;
	units_format_bytes(r.bytes, size, sizeof(size));
	cutover_step_done(
	    c, t, "large objects: %lld, %lld copied (%s), %lld removed",
	    (long long) r.seen, (long long) r.copied, size, (long long) r.removed);
	return true;
}
