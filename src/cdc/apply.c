/*
 * apply: the Applier and its target session.
 *
 * It owns the Applier's life (apply_new, apply_reconnect, apply_free), the
 * target session it opens (session_replication_role = replica, the settings
 * values are rendered with, the replication origin, pipeline mode), the
 * target's GENERATED ALWAYS identity columns, read once, the counters, and
 * apply_message, which hands each decoded message to its handler.
 *
 * It must never build a change's SQL or read a change's result: those are
 * apply_stmt.c's and apply_batch.c's. Like all of apply, it never talks to
 * the source and never decides what to apply.
 */
#include "cdc/apply.h"
#include "cdc/apply_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "pg/pg.h"

/* ---- public ---- */

bool
apply_unknown(Applier *a, const Rel *r, Error *err)
{
	if (a->task.ignore_unknown)
	{
		atomic_fetch_add(&a->ignored, 1);
		return true;
	}
	/* published for another target's join: this target's own join, at
	   its next look, copies the table from a snapshot taken after this
	   change (decision 0043) */
	if (a->task.shared_slot)
	{
		atomic_fetch_add(&a->ignored, 1);
		if (log_every(&a->last_joining_log_ms, 10000))
			log_info("table %s is streamed for another target's join; "
			         "this target joins it at its next look for new tables",
			         r->src_qname);
		return true;
	}
	err_set(err, ERR_SOURCE,
	        "the source sent a change of table %s (transaction %u, committed "
	        "at " LSN_FMT "), which task \"%s\" does not move: its "
	        "publication holds more than the task's tables, or the table was "
	        "attached as a partition of one",
	        r->src_qname, a->xid, LSN_ARGS(a->final_lsn),
	        a->task.task ? a->task.task : "");
	return err_hint(
	    err, "to move it, start a task for it (or migrate again with "
	         "patterns that select it); to drop its changes on purpose, "
	         "run again with --unknown-tables=ignore (cdc.unknown_tables: "
	         "ignore), which counts them in pgtide status");
}

bool
apply_message(Applier *a, const PgoMessage *m, Error *err)
{
	Rel *r;

	/* whatever follows a run of inserts sees them applied first */
	if (m->kind != PGO_INSERT && m->kind != PGO_TYPE && m->kind != PGO_ORIGIN &&
	    m->kind != PGO_MESSAGE && !apply_run_flush(a, err))
		return false;
	switch (m->kind)
	{
		case PGO_RELATION:
			return apply_rel_update(a, &m->u.relation, err);
		case PGO_INSERT:
		case PGO_UPDATE:
		case PGO_DELETE:
			r = apply_rel_find(a, m->u.change.relid);
			if (r == NULL)
				return err_set(err, ERR_SOURCE,
				               "change to relation %u before its description",
				               m->u.change.relid);
			if (r->table == NULL)
				return apply_unknown(a, r, err);
			/* already in the copy that loaded this table */
			if (a->final_lsn < r->table->load_point)
			{
				atomic_fetch_add(&a->skipped, 1);
				return true;
			}
			if (r->rename_pending && !apply_rel_follow_rename(a, r, err))
				return false;
			if (r->follow_pending && !apply_rel_follow(a, r, err))
				return false;
			if (r->table->lookup &&
			    !apply_lookup_change(a, r, m->kind, &m->u.change, err))
				return false;
			if (r->table->filter != NULL || r->table->route_key != NULL)
				return apply_filtered(a, r, m->kind, &m->u.change, err);
			if (m->kind == PGO_INSERT)
				return apply_run_add(a, r, &m->u.change.new_tuple, err);
			if (m->kind == PGO_UPDATE)
				return apply_update(a, r, &m->u.change, err);
			return apply_delete(a, r, &m->u.change, err);
		case PGO_TRUNCATE:
			return apply_truncate(a, &m->u.truncate, err);
		case PGO_TYPE:
		case PGO_ORIGIN:
		case PGO_MESSAGE:
			return true;
		default:
			return err_set(err, ERR_SOURCE,
			               "unexpected %s message inside a transaction",
			               pgoutput_kind_name(m->kind));
	}
}

/* Reads the target's GENERATED ALWAYS identity columns (attidentity: 10+). */
static bool
load_always(Applier *a, Error *err)
{
	PGresult *res;
	int n;

	if (!pg_query(a->conn,
	              "SELECT '\"' || replace(n.nspname, '\"', '\"\"') || '\".\"'"
	              " || replace(c.relname, '\"', '\"\"') || '\"', t.attname"
	              " FROM pg_catalog.pg_attribute t"
	              " JOIN pg_catalog.pg_class c ON c.oid = t.attrelid"
	              " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE t.attidentity = 'a' AND NOT t.attisdropped"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
	              0, NULL, &res, err))
		return err_prefix(err, "reading the target's identity columns: ");
	n = PQntuples(res);
	a->always_tables = calloc((size_t) n + 1, sizeof(char *));
	a->always_cols = calloc((size_t) n + 1, sizeof(char *));
	if (a->always_tables == NULL || a->always_cols == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < n; i++)
	{
		a->always_tables[i] = strdup(PQgetvalue(res, i, 0));
		a->always_cols[i] = strdup(PQgetvalue(res, i, 1));
		a->nalways++;
		if (a->always_tables[i] == NULL || a->always_cols[i] == NULL)
		{
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	}
	PQclear(res);
	return true;
}

/*
 * Reads the target's partitioned tables. An UPDATE, DELETE or TRUNCATE
 * names its target ONLY, so that rows of inheritance children stay
 * untouched, unless the target is partitioned: its rows are in partitions.
 */
static bool
load_parted(Applier *a, Error *err)
{
	PGresult *res;
	int n;

	if (!pg_query(a->conn,
	              "SELECT '\"' || replace(n.nspname, '\"', '\"\"') || '\".\"'"
	              " || replace(c.relname, '\"', '\"\"') || '\"'"
	              " FROM pg_catalog.pg_class c"
	              " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.relkind = 'p'"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
	              0, NULL, &res, err))
		return err_prefix(err, "reading the target's partitioned tables: ");
	n = PQntuples(res);
	a->parted_tables = calloc((size_t) n + 1, sizeof(char *));
	if (a->parted_tables == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < n; i++)
	{
		a->parted_tables[i] = strdup(PQgetvalue(res, i, 0));
		if (a->parted_tables[i] == NULL)
		{
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		a->nparted++;
	}
	PQclear(res);
	return true;
}

/*
 * Opens the target session: replication role, settings, the origin. The
 * relation cache is the stream's and survives; statements are the
 * session's and start anew.
 */
static bool
session_open(Applier *a, Error *err)
{
	const char *params[1] = {a->origin};
	PGresult *res;

	/*
	 * replica: the target's triggers and FK checks stay silent, as for
	 * PostgreSQL's own apply worker. The origin advance commits with each
	 * batch, so synchronous_commit can be off: what the slot is told comes
	 * from pg_replication_origin_progress(origin, true), which reports only
	 * what the target flushed. The date and number settings are the ones the
	 * source's walsender renders values with (stream.c sets them there).
	 */
	if (!pg_connect(a->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide apply",
	                10000, &a->conn, err) ||
	    !pg_exec(a->conn,
	             "SET session_replication_role = replica;"
	             " SET synchronous_commit = off;"
	             " SET DateStyle = ISO; SET IntervalStyle = postgres;"
	             " SET extra_float_digits = 3; SET TimeZone = 'UTC'",
	             err) ||
	    !pg_query(a->conn,
	              "SELECT pg_catalog.pg_replication_origin_create($1)"
	              " WHERE NOT EXISTS (SELECT 1 FROM"
	              " pg_catalog.pg_replication_origin WHERE roname = $1)",
	              1, params, &res, err))
		return err_prefix(err, "could not prepare the target for the change "
		                       "stream: ");
	PQclear(res);
	if (!pg_query(a->conn,
	              "SELECT pg_catalog.pg_replication_origin_session_setup($1)",
	              1, params, &res, err))
	{
		/* a killed pgtide's session may hold the origin for a moment */
		if (pg_err_is(err, "55000"))
			err->retryable = true;
		return err_prefix(
		    err, "could not set up replication origin \"%s\": ", a->origin);
	}
	PQclear(res);
	if (a->always_tables == NULL && !load_always(a, err))
		return false;
	if (a->parted_tables == NULL && !load_parted(a, err))
		return false;
	if (PQenterPipelineMode(pg_raw(a->conn)) != 1)
		return pg_error(a->conn, NULL, err);
	return true;
}

/* Appends copies of tables to a->tables, which has room for them. */
static bool
copy_tables(Applier *a, const ApplyTable *tables, int ntables, Error *err)
{
	for (int i = 0; i < ntables; i++)
	{
		ApplyTable *t = &a->tables[a->ntables];

		t->src_schema = strdup(tables[i].src_schema);
		t->src_name = strdup(tables[i].src_name);
		t->tgt_qname = strdup(tables[i].tgt_qname);
		t->src_relid = tables[i].src_relid;
		t->load_point = tables[i].load_point;
		t->filter = tables[i].filter ? strdup(tables[i].filter) : NULL;
		t->route_key = tables[i].route_key ? strdup(tables[i].route_key) : NULL;
		t->lookup = tables[i].lookup;
		a->ntables++;
		if (!t->src_schema || !t->src_name || !t->tgt_qname ||
		    (tables[i].filter && !t->filter) ||
		    (tables[i].route_key && !t->route_key))
			return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

/* The statements of a key's handover over the task's state (a->task.task
 * set), and the schema they name for the giving side. */
static bool
handover_sql(Applier *a, const char *schema, Error *err)
{
	State s;

	if (!state_bind(&s, NULL, schema, a->task.task, err))
		return false;
	if ((a->task.state_schema = strdup(schema)) == NULL ||
	    !state_handover_sql(&s, &a->hsql))
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

bool
apply_new(const char *target_uri, const char *origin, const ApplyTable *tables,
          int ntables, OnConflict policy, const ApplyTask *task, Applier **out,
          Error *err)
{
	Applier *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (a == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	buf_init(&a->sql, APPLY_SQL_MAX);
	buf_init(&a->values, APPLY_VALUES_MAX);
	buf_init(&a->run.data, APPLY_VALUES_MAX);
	a->policy = policy;
	a->origin = strdup(origin);
	a->target_uri = strdup(target_uri);
	a->pend = calloc(APPLY_INFLIGHT_MAX, sizeof(Pending));
	a->tables = calloc((size_t) ntables + 1, sizeof(ApplyTable));
	if (task != NULL)
	{
		a->task.ignore_unknown = task->ignore_unknown;
		a->task.source = task->source;
		a->task.renames = task->renames;
		a->task.shard = task->shard;
		a->task.shard_target = task->shard_target;
		a->task.shared_slot = task->shared_slot;
		a->task.stopping = task->stopping;
		a->task.stopping_ctx = task->stopping_ctx;
	}
	if (task != NULL && task->sql != NULL)
	{
		a->task.sql = strdup(task->sql);
		a->task.task = strdup(task->task);
		if (task->rename_sql != NULL)
			a->task.rename_sql = strdup(task->rename_sql);
		if (task->state_schema != NULL &&
		    !handover_sql(a, task->state_schema, err))
		{
			apply_free(a);
			return false;
		}
	}
	if (a->origin == NULL || a->target_uri == NULL || a->pend == NULL ||
	    a->tables == NULL ||
	    (task != NULL && task->sql != NULL &&
	     (a->task.sql == NULL || a->task.task == NULL ||
	      (task->rename_sql != NULL && a->task.rename_sql == NULL))))
	{
		apply_free(a);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	if (!copy_tables(a, tables, ntables, err) || !session_open(a, err))
	{
		apply_free(a);
		return false;
	}
	*out = a;
	return true;
}

bool
apply_reconnect(Applier *a, Error *err)
{
	pg_close(a->conn);
	a->conn = NULL;
	apply_stmt_free_all(a);
	for (int i = 0; i < APPLY_INFLIGHT_MAX; i++)
	{
		free(a->pend[i].key);
		a->pend[i].key = NULL;
	}
	a->pend_head = a->pend_count = 0;
	a->in_batch = false;
	a->run.rel = NULL;
	a->run.nrows = 0;
	buf_reset(&a->run.data);
	apply_renames_end(a, false);
	/* the lost batch may have held a table's follow statement: the batch
	 * is applied again, and each table's description is checked again */
	for (int i = 0; i < a->nrels; i++)
		a->rels[i]->follow_pending =
		    a->task.sql != NULL && a->rels[i]->table != NULL;
	return session_open(a, err);
}

PgCancel *
apply_cancel_new(Applier *a)
{
	return pg_cancel_new(a->conn);
}

/* Frees the target's identity and partitioned tables, read anew. */
static void
forget_target_tables(Applier *a)
{
	for (int i = 0; i < a->nalways; i++)
	{
		free(a->always_tables[i]);
		free(a->always_cols[i]);
	}
	free(a->always_tables);
	free(a->always_cols);
	for (int i = 0; i < a->nparted; i++)
		free(a->parted_tables[i]);
	free(a->parted_tables);
	a->always_tables = a->always_cols = a->parted_tables = NULL;
	a->nalways = a->nparted = 0;
}

bool
apply_add_tables(Applier *a, const ApplyTable *tables, int ntables, Error *err)
{
	ApplyTable *grown;
	PGconn *c = pg_raw(a->conn);

	if (a->in_batch)
		return err_set(err, ERR_INTERNAL,
		               "tables can only join between batches");
	grown = realloc(a->tables,
	                sizeof(ApplyTable) * (size_t) (a->ntables + ntables + 1));
	if (grown == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	a->tables = grown;
	/* the array moved: each relation finds its table again, now and once
	   the new tables' identity columns and partitioning are read (outside
	   the pipeline the batches use) */
	if (!copy_tables(a, tables, ntables, err))
		return false;
	for (int i = 0; i < a->nrels; i++)
	{
		Rel *r = a->rels[i];
		bool had = r->table != NULL;

		apply_rel_targets(a, r);
		/* a description met before its table joined: checked first */
		if (!had && r->table != NULL)
			r->follow_pending = a->task.sql != NULL;
	}
	forget_target_tables(a);
	if (PQexitPipelineMode(c) != 1)
		return pg_error(a->conn, NULL, err);
	if (!load_always(a, err) || !load_parted(a, err))
		return false;
	if (PQenterPipelineMode(c) != 1)
		return pg_error(a->conn, NULL, err);
	for (int i = 0; i < a->nrels; i++)
		apply_rel_targets(a, a->rels[i]);
	return true;
}

void
apply_free(Applier *a)
{
	if (a == NULL)
		return;
	pg_close(a->conn);
	for (int i = 0; i < a->nrels; i++)
	{
		apply_rel_clear(a->rels[i]);
		free(a->rels[i]);
	}
	free(a->rels);
	apply_stmt_free_all(a);
	for (int i = 0; a->pend != NULL && i < APPLY_INFLIGHT_MAX; i++)
		free(a->pend[i].key);
	free(a->pend);
	for (int i = 0; i < a->ntables; i++)
	{
		free((char *) (uintptr_t) a->tables[i].src_schema);
		free((char *) (uintptr_t) a->tables[i].src_name);
		free((char *) (uintptr_t) a->tables[i].tgt_qname);
		free((char *) (uintptr_t) a->tables[i].filter);
		free((char *) (uintptr_t) a->tables[i].route_key);
	}
	apply_renames_end(a, true);
	free(a->tables);
	forget_target_tables(a);
	PQclear(a->kept);
	free(a->origin);
	free(a->target_uri);
	free((char *) (uintptr_t) a->task.sql);
	free((char *) (uintptr_t) a->task.task);
	free((char *) (uintptr_t) a->task.state_schema);
	state_handover_sql_free(&a->hsql);
	free((char *) (uintptr_t) a->task.rename_sql);
	buf_free(&a->run.data);
	free(a->run.offs);
	buf_free(&a->sql);
	buf_free(&a->values);
	free(a->params);
	free(a);
}

const char *
apply_conflict_name(ApplyConflict kind)
{
	switch (kind)
	{
		case APPLY_CONFLICT_INSERT_EXISTS:
			return "insert_exists";
		case APPLY_CONFLICT_UPDATE_MISSING:
			return "update_missing";
		case APPLY_CONFLICT_DELETE_MISSING:
		case APPLY_NCONFLICTS:
			break;
	}
	return "delete_missing";
}

void
apply_counters(const Applier *a, ApplyCounters *out)
{
	out->txns = atomic_load(&a->txns);
	out->changes = atomic_load(&a->changes);
	out->conflicts = atomic_load(&a->conflicts);
	for (int k = 0; k < APPLY_NCONFLICTS; k++)
		out->conflicts_by[k] = atomic_load(&a->conflicts_by[k]);
	out->skipped = atomic_load(&a->skipped);
	out->ignored = atomic_load(&a->ignored);
	out->filtered = atomic_load(&a->filtered);
	out->applied_end = atomic_load(&a->applied_end);
	out->applied_commit_time_us = atomic_load(&a->applied_time_us);
}
