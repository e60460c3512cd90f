/*
 * join: tables joining a running task (see join.h). It never writes to the
 * source beyond the task's publication, and never touches a target table
 * of the task that is not joining.
 */
#include "load/join.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"
#include "load/copy.h"
#include "load/insert_only.h"
#include "load/newtables.h"
#include "load/renames.h"
#include "load/schema.h"
#include "load/shards.h"
#include "load/source.h"
#include "load/target.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "pg/stream.h"
#include "route/filter.h"
#include "state/state.h"

typedef struct Joining
{
	const CatTable *t;
	char *tgt_qname; /* owned; its final name on the target */
	bool registered; /* an earlier run began its join */
	CopyTable copy;
	char *columns;     /* owned; copy.columns */
	char *tgt_columns; /* owned; copy.tgt_columns */
	/* several targets: its share of this one; else the filter alone */
	ShardsShare share;
} Joining;

typedef struct Join
{
	const TaskConfig *cfg;
	atomic_int *stop;
	PgConn *src;
	PgConn *tgt;
	ShardSpec *spec; /* several targets: their rules; else NULL */
	int target;      /* and this process's target in them */
	State state;
	Catalog *cat;
	StateTable *known;
	int nknown;
	Joining *items;
	int n;
	JoinResult *out;
} Join;

void
join_result_free(JoinResult *r)
{
	for (int i = 0; i < r->n; i++)
	{
		free(r->tables[i].src_schema);
		free(r->tables[i].src_name);
		free(r->tables[i].tgt_qname);
		free(r->tables[i].route_key);
		free(r->tables[i].filter);
	}
	free(r->tables);
	for (int i = 0; i < r->nleft; i++)
		free(r->left[i]);
	free(r->left);
	memset(r, 0, sizeof(*r));
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static bool
leave(Join *j, const CatTable *t, const char *why, Error *err)
{
	char **grown =
	    realloc(j->out->left, sizeof(char *) * (size_t) (j->out->nleft + 1));

	if (grown == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	j->out->left = grown;
	if (asprintf(&grown[j->out->nleft], "%s: %s", t->qname, why) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	j->out->nleft++;
	return true;
}

/*
 * A foreign key of t that references a table or a column the task renames
 * (*why, else NULL): pg_dump writes it under the source's names, which the
 * target no longer has.
 */
static bool
references_renamed(Join *j, const CatTable *t, const char **why, Error *err)
{
	char relid[16];
	const char *params[1] = {relid};
	PGresult *res;
	bool ok;

	*why = NULL;
	snprintf(relid, sizeof(relid), "%u", t->relid);
	ok = pg_query(j->src,
	              "SELECT n.nspname, r.relname, a.attname"
	              " FROM pg_catalog.pg_constraint c"
	              " JOIN pg_catalog.pg_class r ON r.oid = c.confrelid"
	              " JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace"
	              " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid"
	              " AND a.attnum = ANY (c.confkey)"
	              " WHERE c.contype = 'f' AND c.conrelid = $1::oid",
	              1, params, &res, err);
	for (int r = 0; ok && *why == NULL && r < PQntuples(res); r++)
	{
		int i =
		    catalog_find(j->cat, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		const CatTable *ref = i >= 0 ? &j->cat->tables[i] : NULL;

		if (ref == NULL || !ref->selected)
			continue;
		if (ref->tgt_qname != NULL)
			*why = "a foreign key of it references a table the task "
			       "renames, and pg_dump writes the key under the source's "
			       "names; move it with a task of its own";
		for (int c = 0; *why == NULL && c < ref->ncols; c++)
			if (ref->cols[c].tgt_name != NULL &&
			    strcmp(ref->cols[c].name, PQgetvalue(res, r, 2)) == 0)
				*why = "a foreign key of it references a column the task "
				       "renames, and pg_dump writes the key under the "
				       "source's names; move it with a task of its own";
	}
	if (ok)
		PQclear(res);
	return ok;
}

/* Why t cannot join, or NULL when it can. */
static bool
why_not(Join *j, const CatTable *t, const char **why, Error *err)
{
	TargetVerdict v;
	bool create = j->cfg->schema_mode == SCHEMA_MODE_CREATE;

	*why = NULL;
	if (t->persistence != 'p')
		*why = "it is unlogged, and its changes are not in the WAL the "
		       "stream reads; move it with a task of its own";
	else if (insert_only_table(t))
		*why = "it has no primary key or replica identity, so its updates "
		       "could not be streamed; give it a key, or move it with a "
		       "task of its own";
	/* pg_dump attaches it to its parent by the source's names */
	else if (create && t->parent >= 0 && t->tgt_qname != NULL)
		*why = "it is a partition the task renames, and pg_dump attaches "
		       "it to its parent under the source's names; move it with a "
		       "task of its own";
	if (*why != NULL)
		return true;
	if (create && !references_renamed(j, t, why, err))
		return false;
	if (*why != NULL)
		return true;
	if (!target_examine(j->tgt, j->cfg, false, catalog_tgt_qname(t), false, &v,
	                    err))
		return false;
	if (create && v.exists)
		*why = "a table of that name already exists on the target; drop "
		       "it there, and it joins";
	else if (!create && !v.exists)
		*why = "the target has no table of that name (--schema existing); "
		       "create it there, and it joins";
	else if (v.action == TARGET_SHARE)
		*why = "another task writes its target table, which a table joining "
		       "a running task does not share; move it with a task of its "
		       "own";
	else if (!create && v.action == TARGET_REFUSE)
		*why = "its target table holds rows; empty it, or run with "
		       "--on-existing=truncate, and it joins";
	/* create mode makes it under the source's name, then renames it */
	if (*why == NULL && create && t->tgt_qname != NULL &&
	    !target_examine(j->tgt, j->cfg, false, t->qname, false, &v, err))
		return false;
	if (*why == NULL && create && t->tgt_qname != NULL && v.exists)
		*why = "the target has a table of its source name, under which "
		       "it is created before it is renamed; drop or rename that "
		       "one, and it joins";
	return true;
}

/*
 * Where it->t's rows go: in create mode, the table pg_dump makes under the
 * source's names (renamed once its indexes are built, load/renames.h);
 * else the target's own table. Which rows: its share of this target, or
 * the task's filter.
 */
static bool
plan_copy(Join *j, Joining *it, Error *err)
{
	const CatTable *t = it->t;
	bool create = j->cfg->schema_mode == SCHEMA_MODE_CREATE;
	const char *own = filter_own(j->cfg, t->schema, t->name);

	it->columns = copy_column_list(t);
	it->tgt_columns = create ? copy_column_list(t) : copy_target_column_list(t);
	if (it->columns == NULL || it->tgt_columns == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	/* a table that began joining in an earlier run was routed at this
	   process's start too: a table routed by its key then has its own
	   filter aside, one routed whole has its routing in own already (and
	   ANDed twice is the same condition) */
	if (j->spec != NULL)
	{
		if (!shards_share(j->spec, j->target, t, own, &it->share, err))
			return false;
	}
	else if (own != NULL && ((it->share.filter = strdup(own)) == NULL ||
	                         (it->share.stream_filter = strdup(own)) == NULL))
		return err_set(err, ERR_INTERNAL, "out of memory");
	it->copy.src_qname = t->qname;
	it->copy.tgt_qname = create ? t->qname : it->tgt_qname;
	it->copy.columns = it->columns;
	it->copy.tgt_columns = it->tgt_columns;
	it->copy.filter = it->share.filter;
	it->copy.binary = copy_use_binary(j->cfg, t);
	return true;
}

/* The selected tables the task lacks or holds unfinished: j->items. */
static bool
pick(Join *j, Error *err)
{
	int free_slots = -1;

	j->items = calloc((size_t) j->cat->ntables + 1, sizeof(Joining));
	if (j->items == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < j->cat->ntables; i++)
	{
		const CatTable *t = &j->cat->tables[i];
		const StateTable *k = newtables_known(j->known, j->nknown, t);
		Joining *it = &j->items[j->n];
		const char *why;

		if (!t->selected || (k != NULL && k->done))
			continue;
		if (!why_not(j, t, &why, err) ||
		    (free_slots < 0 && !stream_free_slots(j->src, &free_slots, err)))
			return false;
		/* its snapshot comes from a temporary slot */
		if (why == NULL && free_slots < 1)
			why = "the source has no free replication slot for its "
			      "snapshot; raise max_replication_slots there (a "
			      "restart), and it joins";
		if (why != NULL && k != NULL)
		{
			err_set(err, ERR_CONFIG,
			        "table %s began joining the task, and now "
			        "cannot: %s",
			        t->qname, why);
			return err_hint(err, "do that and run again: it joins from a "
			                     "fresh snapshot");
		}
		if (why != NULL)
		{
			if (!leave(j, t, why, err))
				return false;
			continue;
		}
		it->t = t;
		it->registered = k != NULL;
		it->tgt_qname = strdup(k != NULL ? k->tgt_qname : catalog_tgt_qname(t));
		j->n++;
		if (it->tgt_qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		if (!plan_copy(j, it, err))
			return false;
	}
	/* a table that began joining and is gone from the selection would
	   leave its changes in the stream with nowhere to go */
	for (int i = 0; i < j->nknown; i++)
	{
		int c =
		    catalog_find(j->cat, j->known[i].src_schema, j->known[i].src_name);

		if (!j->known[i].done && (c < 0 || !j->cat->tables[c].selected))
		{
			err_set(err, ERR_CONFIG,
			        "table %s.%s began joining the task, and the source no "
			        "longer has it or the patterns no longer select it",
			        j->known[i].src_schema, j->known[i].src_name);
			return err_hint(err, "select it again and run again; or start "
			                     "the task anew without it");
		}
	}
	return true;
}

/* Registers each table (committed), then adds them to the publication. */
static bool
publish(Join *j, const char *publication, Error *err)
{
	char **names = calloc((size_t) j->n + 1, sizeof(char *));
	bool ok = names != NULL;

	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; ok && i < j->n; i++)
	{
		const Joining *it = &j->items[i];

		names[i] = it->t->qname;
		ok = it->registered ||
		     state_table_register(
		         &j->state, it->t->schema, it->t->name, it->t->relid,
		         it->tgt_qname, it->share.stream_filter,
		         config_on_conflict_name(j->cfg->on_conflict), err);
	}
	fault_point("join.registered");
	ok = ok &&
	     stream_publication_add(j->src, publication, names, j->n, j->stop, err);
	free(names);
	return ok;
}

/* pg_dump of the joining tables' section at the snapshot; *out malloc'd. */
static bool
dump(Join *j, const SlotSnapshot *snap, const char *section, char **out,
     Error *err)
{
	char pg_dump[1024];
	char **names = calloc((size_t) j->n + 1, sizeof(char *));
	SchemaDumpArgs args;
	bool ok;

	if (names == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < j->n; i++)
		names[i] = j->items[i].t->qname;
	memset(&args, 0, sizeof(args));
	args.pg_dump = pg_dump;
	args.source_uri = j->cfg->source_uri;
	args.snapshot = snap->snapshot;
	args.state_schema = j->cfg->state_schema;
	args.include = names;
	args.ninclude = j->n;
	ok = schema_find_pg_dump(j->cfg->pg_dump, pg_server_version(j->src),
	                         pg_dump, sizeof(pg_dump), err) &&
	     schema_dump(&args, section, out, err);
	free(names);
	return ok;
}

/*
 * Empties the table's target: ONLY, so that a plain table's inheritance
 * children keep their rows, unless it is partitioned (--schema existing may
 * load a plain source table into a partitioned one, decision 0004), whose
 * rows are all in its partitions.
 */
static bool
empty_target(Join *j, const Joining *it, Error *err)
{
	const char *params[1] = {it->copy.tgt_qname};
	char parted[8];

	return pg_query_value(j->tgt,
	                      "SELECT relkind = 'p' FROM pg_catalog.pg_class"
	                      " WHERE oid = $1::regclass",
	                      1, params, parted, sizeof(parted), err) &&
	       pg_execf(j->tgt, err, "TRUNCATE %s%s",
	                parted[0] == 't' ? "" : "ONLY ", it->copy.tgt_qname);
}

/*
 * The target's side, in one transaction: the tables' schema (create mode),
 * their rows at the snapshot, their indexes and constraints, their renames
 * (create mode, as the load does them: load/renames.h), and their records
 * with the snapshot's point.
 */
static bool
load_joining(Join *j, const SlotSnapshot *snap, const char *pre,
             const char *post, int run, Error *err)
{
	char txids[SOURCE_TXIDS_MAX];
	int fks = 0;
	bool ok;

	/* one import: the rows and the txids they contain, from one snapshot */
	ok = stream_begin_snapshot(j->src, snap->snapshot, err) &&
	     source_txids_now(j->src, txids, sizeof(txids), err) &&
	     pg_exec(j->tgt, "BEGIN", err) &&
	     pg_exec(j->tgt, "SET LOCAL session_replication_role = replica", err) &&
	     (pre == NULL || schema_apply_predata(j->tgt, pre, err));
	for (int i = 0; ok && i < j->n; i++)
	{
		Joining *it = &j->items[i];
		int64_t rows = 0;

		ok =
		    (pre == NULL || renames_drop_removed_of(j->tgt, it->t, err)) &&
		    empty_target(j, it, err) &&
		    state_table_start(&j->state, it->t->schema, it->t->name,
		                      snap->consistent_lsn, txids, 1,
		                      it->copy.binary ? "binary" : "text", err) &&
		    state_columns_record(&j->state, it->t, err) &&
		    copy_table_within(j->src, j->tgt, &it->copy, j->stop, &rows, err) &&
		    state_chunk_done(&j->state, it->t->schema, it->t->name, 0, -1, -1,
		                     rows, atomic_load(&it->copy.bytes_done), run, err);
		if (!ok)
			err_prefix(err, "%s: ", it->t->qname);
		else
			log_info("table %s joins with %lld rows", it->t->qname,
			         (long long) rows);
	}
	ok = ok && (post == NULL || schema_apply_postdata(j->tgt, post, &fks, err));
	for (int i = 0; ok && pre != NULL && i < j->n; i++)
		ok = renames_apply_to(j->tgt, j->items[i].t, false, err);
	if (ok)
		fault_point("join.before_commit");
	ok = ok && pg_exec(j->tgt, "COMMIT", err) && pg_reset(j->tgt, err);
	{
		Error ignored = ERR_INIT;

		pg_exec(j->src, "ROLLBACK", &ignored);
		if (!ok)
			pg_exec(j->tgt, "ROLLBACK", &ignored);
	}
	if (ok && fks > 0)
		log_warn("%d foreign keys of the joined tables were added NOT VALID: "
		         "their rows come from a later point than the tables they "
		         "reference had reached on the target; once cut over, "
		         "ALTER TABLE ... VALIDATE CONSTRAINT checks them",
		         fks);
	return ok;
}

static bool
result(Join *j, const SlotSnapshot *snap, Error *err)
{
	j->out->tables = calloc((size_t) j->n + 1, sizeof(JoinedTable));
	if (j->out->tables == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < j->n; i++)
	{
		JoinedTable *jt = &j->out->tables[j->out->n++];

		jt->src_schema = strdup(j->items[i].t->schema);
		jt->src_name = strdup(j->items[i].t->name);
		jt->tgt_qname = strdup(j->items[i].tgt_qname);
		jt->src_relid = j->items[i].t->relid;
		jt->load_point = snap->consistent_lsn;
		jt->route_key = dup_or_null(j->items[i].share.route_key);
		jt->filter = dup_or_null(j->items[i].share.stream_filter);
		if (!jt->src_schema || !jt->src_name || !jt->tgt_qname ||
		    (j->items[i].share.route_key != NULL && jt->route_key == NULL) ||
		    (j->items[i].share.stream_filter != NULL && jt->filter == NULL))
			return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

static bool
run_join(Join *j, const char *publication, Error *err)
{
	SlotSnapshot snap;
	StateTask st;
	char slot[64];
	char *pre = NULL, *post = NULL;
	bool ok;

	memset(&snap, 0, sizeof(snap));
	for (int i = 0; i < j->n; i++)
		log_info("table %s %s the task: it is published, then loaded from "
		         "a snapshot of its own",
		         j->items[i].t->qname,
		         j->items[i].registered ? "goes on joining" : "joins");
	snprintf(slot, sizeof(slot), "pgtide_%s_join_%d", j->cfg->task,
	         (int) getpid());
	ok = state_task_read(&j->state, &st, err) && publish(j, publication, err) &&
	     stream_create_slot(j->cfg->source_uri, slot, true, &snap, err);
	if (ok)
		log_info("the joining tables load at consistent point " LSN_FMT,
		         LSN_ARGS(snap.consistent_lsn));
	ok = ok &&
	     (j->cfg->schema_mode != SCHEMA_MODE_CREATE ||
	      (dump(j, &snap, "pre-data", &pre, err) &&
	       dump(j, &snap, "post-data", &post, err))) &&
	     load_joining(j, &snap, pre, post, st.run, err) &&
	     result(j, &snap, err);
	stream_release(&snap);
	free(pre);
	free(post);
	return ok;
}

bool
join_tables(const TaskConfig *cfg, const char *publication, atomic_int *stop,
            JoinResult *out, Error *err)
{
	Join j;
	Renames renames;
	bool ok;

	memset(out, 0, sizeof(*out));
	memset(&j, 0, sizeof(j));
	j.cfg = cfg;
	j.stop = stop;
	j.out = out;
	rename_init(&renames);
	ok = pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide join",
	                5000, &j.src, err) &&
	     pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide join",
	                5000, &j.tgt, err) &&
	     state_open(&j.state, j.tgt, cfg->state_schema, cfg->task, err) &&
	     state_tables_load(&j.state, &j.known, &j.nknown, err) &&
	     catalog_read(j.src, cfg->state_schema, &j.cat, err) &&
	     catalog_select(j.cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err) &&
	     rename_from_config(&renames, cfg, err) &&
	     catalog_rename(j.src, j.cat, &renames, false, err) &&
	     (cfg->shard_target == NULL ||
	      shards_own_spec(cfg, &j.spec, &j.target, err)) &&
	     pick(&j, err) && (j.n == 0 || run_join(&j, publication, err));
	if (!ok)
		err_prefix(err, "joining new tables: ");
	rename_free(&renames);
	for (int i = 0; i < j.n; i++)
	{
		free(j.items[i].tgt_qname);
		free(j.items[i].columns);
		free(j.items[i].tgt_columns);
		shards_share_free(&j.items[i].share);
	}
	free(j.items);
	shard_spec_free(j.spec);
	catalog_free(j.cat);
	state_tables_free(j.known, j.nknown);
	pg_close(j.src);
	pg_close(j.tgt);
	if (!ok)
		join_result_free(out);
	return ok;
}
