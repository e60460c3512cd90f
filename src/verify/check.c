/*
 * check: one run of the checks, and the two ways it is started.
 *
 * It owns the run: both sessions, the task's state as the target holds it
 * (resume or first run), the catalog and the task's selection, the order in
 * which the checks of check_source.c, check_target.c and check_wal.c run,
 * and pgtide check and migrate's preflight around them. The findings, the
 * verdict and their printing are check_findings.c's (check_int.h has the
 * map). It must never write to a server: both sessions are opened with
 * default_transaction_read_only = on, so a write slipped in by mistake fails
 * instead of changing anything; it never creates a slot, publication or
 * schema, and never calls the state module (which creates its schema).
 *
 * One run:
 *
 *   open both sessions, read the task's state (resume or first run)
 *   sample the source's WAL position and next txid        (t0)
 *   catalog and settings checks, source then target
 *   wait until check.wal_sample has passed, sample again (t1)
 *   WAL findings: the rate between t0 and t1 times the load's time
 *
 * The checks run while the clock between t0 and t1 runs, so the sampling
 * costs at most check.wal_sample in all.
 */
#include "verify/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/insert_only.h"
#include "load/source.h"
#include "pg/rowfilter.h"
#include "state/state.h"
#include "verify/check_int.h"

/* check reads for seconds: a server gone for a minute fails it */
#define CHECK_RECONNECT_MS 60000

/* ---- lookups the checks share ---- */

bool
check_interrupted(const Check *c, Error *err)
{
	if (c->stop != NULL && *c->stop)
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

bool
check_oom(Error *err)
{
	return err_set(err, ERR_INTERNAL, "out of memory");
}

typedef enum CheckTables
{
	CHECK_TABLES_ALL = 0,
	CHECK_TABLES_SELECTED,
	CHECK_TABLES_PUBLISHED, /* selected, and listed in the publication */
} CheckTables;

/* An oid[] literal of the catalog's tables of that kind. malloc'd; NULL on
 * out-of-memory. */
static char *
oid_array(const Catalog *cat, CheckTables which)
{
	size_t cap = 3 + (size_t) cat->ntables * 11, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];

		if ((which != CHECK_TABLES_ALL && !t->selected) ||
		    (which == CHECK_TABLES_PUBLISHED &&
		     (t->persistence != 'p' || !t->has_identity)))
			continue;
		len += (size_t) snprintf(out + len, cap - len, "%s%u",
		                         len > 1 ? "," : "", t->relid);
	}
	snprintf(out + len, cap - len, "}");
	return out;
}

const CatTable *
check_table_by_oid(const Catalog *cat, const char *oid_text)
{
	uint32_t relid = (uint32_t) strtoul(oid_text, NULL, 10);

	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].relid == relid)
			return &cat->tables[i];
	return NULL;
}

/* The name as a person types it: quoted only where SQL needs it. */
const char *
check_shown(const Check *c, int idx)
{
	return c->shown[idx] != NULL ? c->shown[idx] : c->cat->tables[idx].qname;
}

const char *
check_shown_table(const Check *c, const CatTable *t)
{
	return check_shown(c, (int) (t - c->cat->tables));
}

/* Whether the table at idx is the first selected one loading into its
 * target (several partitions can load through one target root). */
bool
check_first_of_target(const Check *c, int idx)
{
	if (!c->cat->tables[idx].selected || c->into[idx] < 0)
		return false;
	for (int j = 0; j < idx; j++)
		if (c->cat->tables[j].selected && c->into[j] == c->into[idx])
			return false;
	return true;
}

const CheckRegistered *
check_registered(const Check *c, const char *schema, const char *name)
{
	for (int i = 0; i < c->nreg; i++)
		if (strcmp(c->reg[i].schema, schema) == 0 &&
		    strcmp(c->reg[i].name, name) == 0)
			return &c->reg[i];
	return NULL;
}

/* Runs sql returning one boolean in its single row's first column. */
bool
check_query_bool(PgConn *conn, const char *sql, int nparams,
                 const char *const *params, bool *out, Error *err)
{
	char buf[8];

	if (!pg_query_value(conn, sql, nparams, params, buf, sizeof(buf), err))
		return false;
	*out = buf[0] == 't';
	return true;
}

/* ---- opening the sessions and reading the task's state ---- */

static bool
read_shown_names(Check *c, Error *err)
{
	char *all = oid_array(c->cat, CHECK_TABLES_ALL);
	const char *params[1] = {all};
	PGresult *res;
	bool ok;

	c->shown = calloc((size_t) c->cat->ntables + 1, sizeof(char *));
	if (all == NULL || c->shown == NULL)
	{
		free(all);
		return check_oom(err);
	}
	ok = pg_query(c->src,
	              "SELECT c.oid, quote_ident(n.nspname) || '.' ||"
	              " quote_ident(c.relname) FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.oid = ANY($1::oid[])",
	              1, params, &res, err);
	free(all);
	if (!ok)
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));
		int idx;

		if (t == NULL)
			continue;
		idx = (int) (t - c->cat->tables);
		c->shown[idx] = strdup(PQgetvalue(res, i, 1));
		if (c->shown[idx] == NULL)
		{
			PQclear(res);
			return check_oom(err);
		}
	}
	PQclear(res);
	return true;
}

static bool
open_session(const char *uri, ErrKind side, PgConn **out, char *db,
             size_t dbcap, Error *err)
{
	if (!pg_connect(uri, side, PG_CONN_SQL, "pgtide check", 5000, out, err))
		return false;
	/* the guard: whatever this module runs, the server refuses to write,
	   on this connection and on any that replaces a lost one */
	if (!pg_keep_session(*out,
	                     "SET default_transaction_read_only = on;"
	                     " SET lock_timeout = '5s'; SET statement_timeout = "
	                     "'60s'",
	                     CHECK_RECONNECT_MS, err))
		return false;
	return pg_query_value(*out, "SELECT current_database()", 0, NULL, db, dbcap,
	                      err);
}

/* The task's keyless tables that saw an UPDATE or DELETE since its load. */
static bool
check_insert_only(Check *c, const State *state, Error *err)
{
	InsertOnlyWatch w;

	if (!insert_only_watch(c->src, state, false, &w, err))
		return false;
	for (int i = 0; i < w.n; i++)
	{
		const StateInsertOnly *t = &w.tables[i];
		char object[300];

		if (!t->diverged)
			continue;
		snprintf(object, sizeof(object), "%s.%s", t->src_schema, t->src_name);
		check_add(c, CHECK_ID_INSERT_ONLY_DIVERGED, CHECK_WARNING, object,
		          "the table has no key, so only its INSERTs and TRUNCATEs "
		          "are streamed: the target's copy has diverged from the "
		          "source's, and cutover refuses it",
		          "pgtide cutover --diverged=recopy copies it again while "
		          "the source is fenced",
		          "%s", t->reason);
	}
	insert_only_watch_free(&w);
	return true;
}

static bool
read_state(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	State state;
	StateTask task;
	StateTable *tables = NULL;
	int n = 0;
	bool have = false, ok = false;

	config_slot_name(cfg, c->slot, sizeof(c->slot));
	config_source_name(cfg, c->publication, sizeof(c->publication));
	/* attached, never opened: check does not create the state schema */
	if (!state_attach(&state, c->tgt, cfg->state_schema, cfg->task, &have,
	                  err) ||
	    (have && !state_task_read(&state, &task, err)))
		goto out;
	if (!have || !task.exists)
	{
		ok = true;
		goto out;
	}
	c->resume = true;
	snprintf(c->slot, sizeof(c->slot), "%s", task.slot_name);
	snprintf(c->publication, sizeof(c->publication), "%s", task.publication);
	c->has_point = task.consistent_lsn != LSN_INVALID;
	c->copy_only = task.copy_only;
	c->schema_done = task.schema_done;
	c->load_done = task.phase >= STATE_PHASE_LOADED;
	if (!state_tables_load(&state, &tables, &n, err) ||
	    (task.insert_publication[0] != '\0' &&
	     !check_insert_only(c, &state, err)))
		goto out;
	c->reg = calloc((size_t) n + 1, sizeof(CheckRegistered));
	if (c->reg == NULL)
	{
		check_oom(err);
		goto out;
	}
	for (int i = 0; i < n; i++)
	{
		CheckRegistered *r = &c->reg[c->nreg++];
		bool lost = false;

		r->schema = check_dup_or_empty(tables[i].src_schema, &lost);
		r->name = check_dup_or_empty(tables[i].src_name, &lost);
		r->done = tables[i].done;
		if (lost)
		{
			check_oom(err);
			goto out;
		}
	}
	ok = true;
out:
	if (!ok)
		err_prefix(err, "could not read the task's state on the target: ");
	state_tables_free(tables, n);
	return ok;
}

static bool
parse_patterns(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;

	c->inc = calloc((size_t) cfg->include.count + 1, sizeof(TablePattern));
	c->exc = calloc((size_t) cfg->exclude.count + 1, sizeof(TablePattern));
	if (c->inc == NULL || c->exc == NULL)
		return check_oom(err);
	for (; c->ninc < cfg->include.count; c->ninc++)
		if (!mapping_parse_pattern(cfg->include.items[c->ninc],
		                           &c->inc[c->ninc], err))
			return false;
	for (; c->nexc < cfg->exclude.count; c->nexc++)
		if (!mapping_parse_pattern(cfg->exclude.items[c->nexc],
		                           &c->exc[c->nexc], err))
			return false;
	return mapping_set_build(&c->incset, c->inc, c->ninc, err) &&
	       mapping_set_build(&c->excset, c->exc, c->nexc, err);
}

/* ---- one run ---- */

static bool
run_checks(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;

	if (!check_validate_skips(cfg, err) || !parse_patterns(c, err))
		return false;
	if (!open_session(cfg->source_uri, ERR_SOURCE, &c->src, c->src_db,
	                  sizeof(c->src_db), err) ||
	    !open_session(cfg->target_uri, ERR_TARGET, &c->tgt, c->tgt_db,
	                  sizeof(c->tgt_db), err))
		return false;
	c->src_version = pg_server_version(c->src);
	c->tgt_version = pg_server_version(c->tgt);
	/* the queries below assume 10 (pgoutput, partitions, attidentity) */
	if (c->src_version < SOURCE_MIN_VERSION)
	{
		check_add(
		    c, CHECK_ID_SOURCE_VERSION, CHECK_BLOCKER, "source",
		    "the change stream needs pgoutput, which ships with "
		    "PostgreSQL 10",
		    "upgrade the source to 10 or later first (pg_upgrade), or move "
		    "it with pg_dump and a write stop",
		    "the source runs PostgreSQL %d.%d", c->src_version / 10000,
		    c->src_version / 100 % 100);
		return true;
	}
	/* the same facts the load's preflight judges (load/source) */
	if (!source_read(c->src, &c->src_facts, err))
		return false;
	if (!check_query_bool(
	        c->tgt,
	        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", 0,
	        NULL, &c->tgt_super, err))
		return false;
	if (c->src_facts.in_recovery)
		check_add(
		    c, CHECK_ID_SOURCE_IN_RECOVERY, CHECK_BLOCKER, "source",
		    "a standby can create neither the task's publication nor a slot "
		    "that exports a snapshot",
		    "point --source at the primary",
		    "the source is a standby (in recovery)");
	if (!check_sample_begin(c, err) || !read_state(c, err) ||
	    !catalog_read(c->src, cfg->state_schema, &c->cat, err) ||
	    !catalog_select(c->cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err) ||
	    !rowfilter_check_all(c->src, c->cat, &cfg->filters, err) ||
	    !rename_from_config(&c->renames, cfg, err) ||
	    !catalog_rename(c->src, c->cat, &c->renames,
	                    cfg->schema_mode == SCHEMA_MODE_CREATE, err))
		return false;
	c->selected_oids = oid_array(c->cat, CHECK_TABLES_SELECTED);
	c->published_oids = oid_array(c->cat, CHECK_TABLES_PUBLISHED);
	if (c->selected_oids == NULL || c->published_oids == NULL)
		return check_oom(err);
	if (!read_shown_names(c, err))
		return false;
	/* after the task's objects: a slot of the task's own is not missing */
	if (!check_task_objects(c, err))
		return false;
	check_source_settings(c);
	if (!check_publication(c, err) || !check_read_privileges(c, err) ||
	    !check_row_security(c, err))
		return false;
	check_table_kinds(c);
	if (!check_resolve_targets(c, err) || !check_identity_columns(c, err) ||
	    !check_full_identity(c, err))
		return false;
	check_sequences(c);
	if (!check_temporary_tables(c, err) || !check_foreign_tables(c, err) ||
	    !check_extension_tables(c, err) || !check_large_objects(c, err) ||
	    !check_with_oids(c, err) || check_interrupted(c, err))
		return false;
	check_target_version(c);
	if (!check_encodings(c, err) || !check_extensions(c, err) ||
	    !check_types(c, err) || !check_collations(c, err) ||
	    !check_tablespaces(c, err) || !check_target_tables(c, err) ||
	    !check_target_columns(c, err) || !check_target_privileges(c, err) ||
	    !check_target_row_security(c, err))
		return false;
	check_pg_dump(c);
	if (!check_subset(c, err))
		return false;
	if (!check_sample_end(c, err) || !check_commit_timestamps(c, err) ||
	    !check_wal(c, err) || !check_pgtide_slots(c, err))
		return false;
	if (c->rep.oom)
		return check_oom(err);
	return true;
}

static void
check_free(Check *c)
{
	for (int i = 0; c->shown != NULL && i < c->cat->ntables; i++)
		free(c->shown[i]);
	free(c->shown);
	free(c->into);
	mapping_set_free(&c->incset);
	mapping_set_free(&c->excset);
	for (int i = 0; i < c->ninc; i++)
		mapping_pattern_free(&c->inc[i]);
	for (int i = 0; i < c->nexc; i++)
		mapping_pattern_free(&c->exc[i]);
	free(c->inc);
	free(c->exc);
	for (int i = 0; i < c->nexts; i++)
		free(c->exts[i].name);
	free(c->exts);
	for (int i = 0; i < c->nreg; i++)
	{
		free(c->reg[i].schema);
		free(c->reg[i].name);
	}
	free(c->reg);
	free(c->selected_oids);
	free(c->published_oids);
	catalog_free(c->cat);
	rename_free(&c->renames);
	check_report_free(&c->rep);
	pg_close(c->src);
	pg_close(c->tgt);
}

bool
check_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	Check c;
	CheckCounts k;
	bool ok;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.stop = stop;
	ok = run_checks(&c, err);
	if (ok)
	{
		check_tally(&c, &k);
		if (cfg->output_json)
			check_print_json(&c, &k, stdout);
		else
			check_print_text(&c, &k, stdout);
		fflush(stdout);
		if (k.blocking > 0)
			ok = check_blocked_error(&k, "", err);
	}
	check_free(&c);
	return ok;
}

bool
check_before_migrate(const TaskConfig *cfg, Error *err)
{
	Check c;
	CheckCounts k;
	bool ok;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	ok = run_checks(&c, err);
	if (ok)
	{
		check_tally(&c, &k);
		check_log_findings(&c, &k);
		if (k.blocking > 0)
			ok = check_blocked_error(&k, "pgtide migrate did not start: ", err);
	}
	check_free(&c);
	return ok;
}
