/*
 * load: the full load's steps, in order, each one safe to repeat.
 *
 * Which snapshot a table is loaded from:
 *
 *   first run      the task slot's exported snapshot; consistent point L0
 *   resumed run    a TEMPORARY slot's exported snapshot, point P > L0; only
 *                  for tables not finished; the change stream later skips a
 *                  table's changes committed before its own point
 *   snapshot lost  (the exporting connection dropped mid-run) same as a
 *                  resumed run, without leaving the process
 *
 * pgtide copy keeps no slot (decision 0015): it needs the snapshots, not the
 * stream, so every run of a task it starts takes them from TEMPORARY slots,
 * which the source drops with their connection however the run ends (kill
 * -9 included). Its first run records the first one's point as the task's
 * and marks the task copy-only; the change stream refuses such a task, since
 * no slot holds the changes since its load. A task that migrate started
 * keeps its slot through a copy run: it is the stream's.
 *
 * A table's load always starts by emptying its target (in the transaction
 * that records the new point), so no row of an earlier, abandoned snapshot
 * can survive next to rows of the new one.
 */
#include "load/load.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/units.h"
#include "load/copy.h"
#include "load/copyrow.h"
#include "load/insert_only.h"
#include "load/lobjects.h"
#include "load/matviews.h"
#include "load/plan.h"
#include "load/progress.h"
#include "load/renames.h"
#include "load/schema.h"
#include "load/sequences.h"
#include "load/shards.h"
#include "load/share.h"
#include "load/source.h"
#include "load/subset.h"
#include "load/target.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "pg/rowfilter.h"
#include "pg/stream.h"
#include "route/filter.h"
#include "state/state.h"

/* rounds of the load, each from a fresh snapshot after a loss */
#define TASK_LOAD_ROUNDS   5
#define TASK_CHUNK_RETRIES 5
#define TASK_STEP_RETRIES  10

typedef struct LoadTable
{
	int cat;         /* index in Catalog.tables */
	char *tgt_qname; /* owned */
	char tgt_kind;   /* 'r' or 'p' */
	/* create mode: the table's name once the load is done (catalog_rename;
	   the load writes into the source's names), else NULL; owned */
	char *final_qname;
	char *columns;     /* owned */
	char *tgt_columns; /* owned */
	/* several targets: how its rows are routed (CopyTable's fields) */
	int key_col;
	uint32_t key_type;
	int whole_target;
	bool done;
	int nchunks;
} LoadTable;

typedef struct Load
{
	const TaskConfig *cfg;
	atomic_int *stop;
	Gate *gate;     /* the copy workers pass through it; may be NULL */
	bool keep_slot; /* migrate: the stream needs the slot; copy: it does not */
	const ShardSpec *spec; /* several targets: the rules, or NULL */
	bool finished;         /* its load was done before this run */
	/* its snapshot is another load's, which it reads and never replaces */
	bool borrowed_snap;
	/* shard.slot one: the consistent point of the slot the first target
	   created, which every target's stream starts from */
	Lsn slot_lsn;
	/* copy with several targets: the schema as the first target's load
	   dumped it, which the others, reading its snapshot, take as it is */
	struct Dumped *dumped;
	PgConn *src;
	PgConn *tgt;
	Catalog *cat;
	State state; /* on tgt */
	StateTask st;
	LoadTable *tables; /* the selected tables */
	int ntables;
	CopyTable *copy; /* parallel to tables */
	/* whose chunks_left says that a table's data is in: copy, or with
	   several targets the source side they share */
	const CopyTable *counted;
	Subset subset;   /* what the selection leaves out of the schema */
	Renames renames; /* the task's (route/rename) */
	int64_t start_ms;
} Load;

/* pg_dump's scripts of one snapshot (create_schema). */
typedef struct Dumped
{
	char snapshot[64];
	char *pre;  /* owned; NULL until dumped */
	char *post; /* owned */
} Dumped;

/*
 * The loads one copy run fills: one target's, or with several targets the
 * loads of them all, each chunk read once from the source and each row sent
 * to the target its key names (loads[k] is target k's; a load already
 * finished takes no rows).
 */
typedef struct Split
{
	Load **loads;
	int n;
	const TaskConfig *task; /* several targets: the task file's */
	ShardSpec *spec;        /* several targets: owned; else NULL */
	/* lookup: the rules the rows are routed by, owned, the lookup table's
	   map as of the round's snapshot; else NULL (spec routes) */
	ShardSpec *routing;
	CopyTable *tables; /* the source side: one target's copy, or shared */
	CopyTable **target_tables; /* several targets: each load's copy */
	const char **uris;         /* several targets: each one's */
	Load *lead; /* the first unfinished load: its catalog plans */
} Split;

static bool
interrupted(const Load *l, Error *err)
{
	if (l->stop != NULL && *l->stop)
		return !err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

static bool
preflight(Load *l, Error *err)
{
	SourceFacts f;

	return source_read(l->src, &f, err) && source_ready(l->src, &f, err);
}

/* A LoadTable for every selected table, with its target name and columns. */
static bool
build_tables(Load *l, Error *err)
{
	int n = 0;

	for (int i = 0; i < l->cat->ntables; i++)
		n += l->cat->tables[i].selected;
	l->tables = calloc((size_t) n + 1, sizeof(LoadTable));
	l->copy = calloc((size_t) n + 1, sizeof(CopyTable));
	if (l->tables == NULL || l->copy == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < l->cat->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[i];
		LoadTable *lt;

		if (!t->selected)
			continue;
		lt = &l->tables[l->ntables];
		/* not started: index builds wait until start_tables says otherwise */
		atomic_init(&l->copy[l->ntables].chunks_left, -1);
		l->ntables++;
		lt->cat = i;
		lt->tgt_kind = 'r';
		lt->columns = copy_column_list(t);
		/* create mode writes into the source's names, pg_dump's, and
		   renames at the end (load/renames.h) */
		if (l->cfg->schema_mode == SCHEMA_MODE_CREATE)
		{
			lt->tgt_qname = strdup(t->qname);
			lt->tgt_columns = copy_column_list(t);
			lt->final_qname = strdup(catalog_tgt_qname(t));
		}
		else
		{
			lt->tgt_qname = strdup(catalog_tgt_qname(t));
			lt->tgt_columns = copy_target_column_list(t);
			lt->final_qname = strdup(lt->tgt_qname);
		}
		if (lt->columns == NULL || lt->tgt_qname == NULL ||
		    lt->tgt_columns == NULL || lt->final_qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		lt->key_col = lt->whole_target = -1;
		if (l->spec != NULL &&
		    !shards_copy_route(l->spec, t, &lt->key_col, &lt->key_type,
		                       &lt->whole_target, err))
			return false;
	}
	return true;
}

/*
 * Existing-schema mode: each source table loads into the target table of the
 * same name or, when the target is partitioned differently, into the nearest
 * ancestor the target has (its root routes the rows).
 */
static bool
resolve_existing_targets(Load *l, Error *err)
{
	for (int i = 0; i < l->ntables; i++)
	{
		LoadTable *lt = &l->tables[i];
		int idx = lt->cat;
		bool found = false;

		for (int depth = 0; idx >= 0 && depth < 64 && !found; depth++)
		{
			const CatTable *t = &l->cat->tables[idx];
			const char *params[1] = {catalog_tgt_qname(t)};
			PGresult *res;

			if (!pg_query(l->tgt,
			              "SELECT relkind FROM pg_class"
			              " WHERE oid = to_regclass($1)",
			              1, params, &res, err))
				return false;
			if (PQntuples(res) == 1)
			{
				found = true;
				lt->tgt_kind = PQgetvalue(res, 0, 0)[0];
				free(lt->tgt_qname);
				free(lt->final_qname);
				lt->tgt_qname = strdup(catalog_tgt_qname(t));
				lt->final_qname = strdup(catalog_tgt_qname(t));
			}
			PQclear(res);
			if (!found)
				idx = t->parent;
		}
		if (!found)
		{
			err_set(err, ERR_TARGET, "table %s does not exist on the target",
			        catalog_tgt_qname(&l->cat->tables[lt->cat]));
			return err_hint(err, "create it on the target, leave it out with "
			                     "--exclude-table, or let pgtide create the "
			                     "schema with --schema create");
		}
		if (lt->tgt_qname == NULL || lt->final_qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

/* The column mismatches of the existing target tables, for one error. */
typedef struct Mismatches
{
	int n;
	Buf detail; /* the first ones, as many as a message holds */
	int shown;
} Mismatches;

static void
note_mismatch(const char *table, const char *problem, bool blocking, void *ctx)
{
	Mismatches *m = ctx;
	Error ignored = ERR_INIT;
	char piece[ERR_MSG_MAX];

	if (!blocking)
	{
		log_info("table %s: %s", table, problem);
		return;
	}
	m->n++;
	snprintf(piece, sizeof(piece), "%stable %s: %s", m->shown ? "; " : "",
	         table, problem);
	/* the error's detail holds what fits; the rest goes to the log, so
	   that every one is named */
	if (m->shown == m->n - 1 &&
	    buf_len(&m->detail) + strlen(piece) < ERR_MSG_MAX - 64 &&
	    buf_add_str(&m->detail, piece, &ignored))
		m->shown++;
	else
		log_error("table %s: %s", table, problem);
}

/*
 * Existing mode: refuses, before anything is created, target tables whose
 * columns could not take their source tables' rows exactly, naming every
 * mismatch of every table (one run shows them all, not one per attempt).
 * COPY would otherwise stop at the first, or worse, a narrower type would
 * take the values and change them (a timestamp read into a date).
 */
static bool
match_existing_columns(Load *l, Error *err)
{
	Mismatches m = {0};

	buf_init(&m.detail, ERR_MSG_MAX);
	for (int i = 0; i < l->ntables; i++)
		if (!target_columns_compare(l->tgt, &l->cat->tables[l->tables[i].cat],
		                            l->tables[i].tgt_qname, note_mismatch, &m,
		                            err))
		{
			buf_free(&m.detail);
			return false;
		}
	if (m.n > 0)
	{
		err_set(err, ERR_TARGET,
		        "%d column mismatch%s between the source's tables and the "
		        "target's (--schema existing)",
		        m.n, m.n == 1 ? "" : "es");
		err_detail(err, "%s%s", buf_str(&m.detail),
		           m.shown < m.n ? "; and more, each in the log above" : "");
		err_hint(err, "change the target's tables to match (the same types, "
		              "or wider ones of the same kind), or leave the tables "
		              "out with -T; nothing was changed");
	}
	buf_free(&m.detail);
	return m.n == 0;
}

/* Refuses, before anything is created, target tables in the way. */
static bool
check_target_tables(Load *l, Error *err)
{
	bool started = l->st.consistent_lsn != LSN_INVALID || l->st.schema_done;

	for (int i = 0; i < l->ntables; i++)
	{
		const LoadTable *lt = &l->tables[i];
		bool shared, renamed_shared = false;

		if (!target_may_load(l->tgt, l->cfg, started, lt->tgt_qname, &shared,
		                     err) ||
		    (strcmp(lt->final_qname, lt->tgt_qname) != 0 &&
		     !target_may_load(l->tgt, l->cfg, started, lt->final_qname,
		                      &renamed_shared, err)) ||
		    ((shared || renamed_shared) &&
		     !share_check(l->src, l->tgt, l->cfg, &l->cat->tables[lt->cat],
		                  lt->final_qname, err)))
			return false;
	}
	return true;
}

/*
 * The task's publications: the tables whose every change can be streamed,
 * and the keyless ones for their inserts only, whose baselines are saved
 * first (load/insert_only.h): before the slot exists, so every UPDATE or
 * DELETE the stream could miss shows in the statistics.
 */
static bool
create_publications(Load *l, Error *err)
{
	char **names = calloc((size_t) l->ntables + 1, sizeof(char *));
	char **keyless = calloc((size_t) l->ntables + 1, sizeof(char *));
	StateInsertOnly *io = calloc((size_t) l->ntables + 1, sizeof(*io));
	char inserts[64];
	int n = 0, nk = 0;
	bool ok;

	if (names == NULL || keyless == NULL || io == NULL)
	{
		free(names);
		free(keyless);
		free(io);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < l->ntables; i++)
	{
		CatTable *t = &l->cat->tables[l->tables[i].cat];

		if (t->persistence != 'p')
			log_info("table %s is unlogged: its changes cannot be "
			         "streamed, so cutover copies it again while the source "
			         "is fenced",
			         t->qname);
		else if (insert_only_table(t))
		{
			log_info("table %s has no key: its INSERTs and TRUNCATEs are "
			         "streamed, and an UPDATE or DELETE on it would be "
			         "noticed and reported",
			         t->qname);
			io[nk].src_schema = t->schema;
			io[nk].src_name = t->name;
			io[nk].relid = t->relid;
			keyless[nk++] = t->qname;
		}
		else
			names[n++] = t->qname;
	}
	insert_only_publication(l->st.publication, inserts, sizeof(inserts));
	ok = insert_only_baselines(l->src, io, nk, err) &&
	     state_insert_only_save(&l->state, nk > 0 ? inserts : NULL, io, nk,
	                            err) &&
	     (nk == 0 || stream_create_publication(l->src, inserts,
	                                           l->cat->server_version >= 110000
	                                               ? "insert, truncate"
	                                               : "insert",
	                                           keyless, nk, err)) &&
	     stream_create_publication(l->src, l->st.publication, NULL, names, n,
	                               err);
	free(names);
	free(keyless);
	free(io);
	return ok;
}

/* A fresh snapshot for loading tables; its slot is temporary. */
/*
 * Creates a slot with its snapshot, again while a lost connection is the
 * cause. A creation whose answer was lost may have left the slot, held by a
 * walsender that has not noticed yet: it is ended and the slot made anew
 * (only this process creates slots by these names).
 */
static bool
create_slot_retrying(Load *l, const char *name, bool temporary,
                     SlotSnapshot *snap, Error *err)
{
	for (int attempt = 1;; attempt++)
	{
		if (stream_create_slot(l->cfg->source_uri, name, temporary, snap, err))
			return true;
		if (!err->retryable || attempt >= TASK_STEP_RETRIES ||
		    interrupted(l, err))
			return false;
		log_warn("%s; trying again", err->message);
		err_clear(err);
		clock_sleep_ms(500 * attempt);
		if (!stream_drop_lost_slot(l->src, name, err))
			return false;
	}
}

static bool
fresh_snapshot(Load *l, SlotSnapshot *snap, Error *err)
{
	char name[64];

	snprintf(name, sizeof(name), "pgtide_%s_reload_%d", l->cfg->task,
	         (int) getpid());
	if (!create_slot_retrying(l, name, true, snap, err))
		return false;
	if (l->spec != NULL)
		log_info("loading every target's unfinished tables from one "
		         "snapshot at " LSN_FMT,
		         LSN_ARGS(snap->consistent_lsn));
	else if (l->st.consistent_lsn != LSN_INVALID)
		log_info(
		    "reloading unfinished tables from a fresh snapshot at " LSN_FMT,
		    LSN_ARGS(snap->consistent_lsn));
	return true;
}

/*
 * pgtide copy's first snapshot: from a temporary slot, its point recorded as
 * the task's, the task marked copy-only. Nothing is published: no stream
 * will ever read this task's changes.
 */
static bool
copy_only_snapshot(Load *l, SlotSnapshot *snap, Error *err)
{
	/* several targets of one copy share the first one's snapshot */
	if (snap->conn == NULL && !fresh_snapshot(l, snap, err))
		return false;
	fault_point("task.after_slot");
	if (!state_task_set_copy_only(&l->state, snap->consistent_lsn, err) ||
	    !state_task_set_phase(&l->state, STATE_PHASE_LOAD, err))
		return false;
	l->st.consistent_lsn = snap->consistent_lsn;
	l->st.copy_only = true;
	log_info("loading from a snapshot at consistent point " LSN_FMT
	         " (temporary slot \"%s\": pgtide copy keeps no slot on the "
	         "source)",
	         LSN_ARGS(snap->consistent_lsn), snap->slot);
	return true;
}

/*
 * A task that records its slot's point starts its stream there: a
 * replication origin of its name already on the target (the task's state
 * dropped without pgtide clean) holds another stream's position, from
 * which this one would skip every change before it. One in use is
 * another process's.
 */
static bool
forget_old_origin(Load *l, Error *err)
{
	const char *params[1] = {l->st.origin_name};
	char left[32] = "", dropped[8];

	/* the drop only when there is one: a role may stream without the
	   right to drop origins, which only clean needs otherwise */
	if (!pg_query_value(l->tgt,
	                    "SELECT coalesce((SELECT coalesce(pg_catalog."
	                    "pg_replication_origin_progress(roname, false)::text,"
	                    " '0/0') FROM pg_catalog.pg_replication_origin"
	                    " WHERE roname = $1), '')",
	                    1, params, left, sizeof(left), err))
		return false;
	if (left[0] == '\0')
		return true;
	if (!pg_query_value(l->tgt,
	                    "SELECT pg_catalog.pg_replication_origin_drop($1)", 1,
	                    params, dropped, sizeof(dropped), err))
	{
		if (!pg_err_is(err, "55006"))
			return false;
		err_clear(err);
		err_set(err, ERR_TARGET,
		        "replication origin \"%s\" is in use on the target by "
		        "another process",
		        l->st.origin_name);
		return err_hint(err,
		                "another pgtide of task \"%s\" streams into "
		                "this database: stop it, or choose another "
		                "--task",
		                l->cfg->task);
	}
	log_warn("dropped replication origin \"%s\" on the target, left at %s "
	         "by an earlier task of this name: the stream starts at the new "
	         "slot's point",
	         l->st.origin_name, left);
	return true;
}

/*
 * shard.slot one, a target after the first: the slot the first target
 * created is this target's too (decision 0043).
 */
static bool
adopt_slot(Load *l, bool exists, Error *err)
{
	if (!exists || l->slot_lsn == LSN_INVALID)
		return err_set(err, ERR_INTERNAL,
		               "the task's replication slot \"%s\" is not there for "
		               "this target to share",
		               l->st.slot_name);
	if (!create_publications(l, err) || !forget_old_origin(l, err) ||
	    !state_task_set_slot(&l->state, l->slot_lsn, err) ||
	    !state_task_set_phase(&l->state, STATE_PHASE_LOAD, err))
		return false;
	l->st.consistent_lsn = l->slot_lsn;
	log_info("streams from replication slot \"%s\", which every target "
	         "shares, from " LSN_FMT,
	         l->st.slot_name, LSN_ARGS(l->slot_lsn));
	return true;
}

/*
 * Makes sure the task's slot exists with a recorded consistent point. On a
 * first run the slot's own exported snapshot is returned in *snap.
 */
static bool
ensure_slot(Load *l, SlotSnapshot *snap, Error *err)
{
	bool exists;
	int free_slots;

	if (!stream_slot_exists(l->src, l->st.slot_name, &exists, err))
		return false;
	if (l->st.consistent_lsn != LSN_INVALID)
	{
		/* a copy-only task's later runs take temporary slots as they go */
		if (exists || l->st.copy_only)
			return true;
		err_set(err, ERR_SOURCE,
		        "replication slot \"%s\" of task \"%s\" no longer exists on "
		        "the source",
		        l->st.slot_name, l->cfg->task);
		return err_hint(err,
		                "without it, changes since the load started are "
		                "lost; drop the target's copy and the state schema "
		                "and start again");
	}
	if (l->keep_slot && l->borrowed_snap)
		return adopt_slot(l, exists, err);
	if (exists)
	{
		/* No consistent point recorded: a first run stopped while creating
		 * it. A slot with this name from another owner would have made the
		 * first run's row new, so only then is it someone else's. */
		if (l->st.run == 1)
		{
			err_set(err, ERR_SOURCE,
			        "replication slot \"%s\" already exists on the source",
			        l->st.slot_name);
			return err_hint(err, "another task with this name? choose "
			                     "another --task, or drop the slot");
		}
		if (!stream_drop_slot(l->src, l->st.slot_name, err))
			return false;
	}
	if (!stream_free_slots(l->src, &free_slots, err))
		return false;
	if (free_slots < 1)
	{
		err_set(err, ERR_SOURCE,
		        "no free replication slot on the source %s: all "
		        "max_replication_slots are in use",
		        pg_where(l->src));
		return err_hint(err, "raise max_replication_slots on the source "
		                     "(needs a restart), or drop an unused slot "
		                     "listed in pg_replication_slots");
	}
	if (!l->keep_slot)
		return copy_only_snapshot(l, snap, err);
	if (!create_publications(l, err))
		return false;
	if (!create_slot_retrying(l, l->st.slot_name, false, snap, err))
		return false;
	fault_point("task.after_slot");
	if (!forget_old_origin(l, err) ||
	    !state_task_set_slot(&l->state, snap->consistent_lsn, err) ||
	    !state_task_set_phase(&l->state, STATE_PHASE_LOAD, err))
		return false;
	l->st.consistent_lsn = snap->consistent_lsn;
	log_info("created replication slot \"%s\" at consistent point " LSN_FMT,
	         l->st.slot_name, LSN_ARGS(snap->consistent_lsn));
	return true;
}

/*
 * What pg_dump leaves out: the tables not selected (nor an ancestor of a
 * selected one), and the views and materialized views that need them, which
 * the target could not create. A malloc'd array of views into l->cat and
 * l->subset; NULL when out of memory.
 */
static char **
dump_exclusions(const Load *l, int *n)
{
	int ntables;
	char **tables = subset_left_out_tables(l->cat, &ntables);
	char **out;

	*n = 0;
	if (tables == NULL)
		return NULL;
	out = calloc((size_t) (ntables + l->subset.n) + 1, sizeof(char *));
	if (out == NULL)
	{
		free(tables);
		return NULL;
	}
	for (int i = 0; i < ntables; i++)
		out[(*n)++] = tables[i];
	for (int i = 0; i < l->subset.n; i++)
		if (l->subset.items[i].exclude != NULL)
			out[(*n)++] = l->subset.items[i].exclude;
	free(tables);
	return out;
}

/*
 * Reads what the selection leaves out of the schema, says each object in
 * the log, and fails with ERR_BLOCKED on an object the target would refuse:
 * all before the slot exists (check names the same objects).
 */
static bool
decide_subset(Load *l, Error *err)
{
	if (!subset_read(l->src, l->cat, &l->subset, err))
		return false;
	for (int i = 0; i < l->subset.n; i++)
	{
		const SubsetObject *o = &l->subset.items[i];

		if (subset_blocks(o))
			continue;
		if (o->kind == SUBSET_PARTITION || o->kind == SUBSET_CHILD)
			log_warn("%s, a child of %s, is not selected: %s", o->what,
			         o->table, subset_outcome(o));
		else
			log_warn("%s depends on %s%s%s, which is not selected: %s", o->what,
			         o->cause, o->via[0] ? " through " : "", o->via,
			         subset_outcome(o));
	}
	return subset_refuse_blockers(&l->subset, err);
}

static bool
create_schema(Load *l, const SlotSnapshot *snap, Error *err)
{
	const TaskConfig *cfg = l->cfg;
	char pg_dump[1024];
	char *pre = NULL, *post = NULL;
	SchemaDumpArgs args;
	StateTask task;
	bool ok = false, reused;
	int nexcl;
	char **excl;

	/* a retry after a COMMIT whose answer was lost: it may have committed,
	   and creating the tables again would fail on them */
	if (!state_task_read(&l->state, &task, err))
		return false;
	if (task.schema_done)
	{
		l->st.schema_done = true;
		return true;
	}
	/* the same tables of the same snapshot: the first target's scripts */
	reused = l->dumped != NULL && l->borrowed_snap && l->dumped->pre != NULL &&
	         strcmp(l->dumped->snapshot, snap->snapshot) == 0;
	if (reused)
	{
		pre = strdup(l->dumped->pre);
		post = strdup(l->dumped->post);
		if (pre == NULL || post == NULL)
		{
			free(pre);
			free(post);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		excl = NULL;
		goto apply;
	}
	excl = dump_exclusions(l, &nexcl);
	if (excl == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!schema_find_pg_dump(cfg->pg_dump, pg_server_version(l->src), pg_dump,
	                         sizeof(pg_dump), err))
		goto out;
	memset(&args, 0, sizeof(args));
	args.pg_dump = pg_dump;
	args.source_uri = cfg->source_uri;
	args.snapshot = snap->snapshot;
	args.state_schema = cfg->state_schema;
	args.exclude = excl;
	args.nexclude = nexcl;
	args.clean = cfg->on_existing == ON_EXISTING_DROP;
	if (!schema_dump(&args, "pre-data", &pre, err))
		goto out;
	args.clean = false;
	if (!schema_dump(&args, "post-data", &post, err))
		goto out;
	if (l->dumped != NULL && !l->borrowed_snap)
	{
		free(l->dumped->pre);
		free(l->dumped->post);
		snprintf(l->dumped->snapshot, sizeof(l->dumped->snapshot), "%s",
		         snap->snapshot);
		l->dumped->pre = strdup(pre);
		l->dumped->post = strdup(post);
		if (l->dumped->pre == NULL || l->dumped->post == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
apply:
	/* pre-data, the post-data steps and "schema done" commit together */
	if (!pg_exec(l->tgt, "BEGIN", err))
		goto out;
	if (!schema_apply_predata(l->tgt, pre, err) ||
	    !renames_drop_removed(l->tgt, l->cat, err) ||
	    !schema_save_postdata(&l->state, l->src, l->cat, &l->subset, post,
	                          err) ||
	    !state_task_set_schema_done(&l->state, err))
	{
		Error ignored = ERR_INIT;

		pg_exec(l->tgt, "ROLLBACK", &ignored);
		goto out;
	}
	fault_point("schema.before_commit");
	/* pre-data sets search_path to ''; state queries qualify every name */
	if (!pg_exec(l->tgt, "COMMIT", err) || !pg_reset(l->tgt, err))
		goto out;
	l->st.schema_done = true;
	log_info("created the schema on the target (pre-data%s); indexes and "
	         "constraints follow the load",
	         reused ? ", as dumped for the first target" : "");
	ok = true;
out:
	free(excl);
	free(pre);
	free(post);
	return ok;
}

/* Marks as unfinished every table sharing a target with an unfinished one. */
static void
spread_unfinished(Load *l)
{
	for (int i = 0; i < l->ntables; i++)
		for (int j = 0; j < l->ntables; j++)
			if (!l->tables[i].done && l->tables[j].done &&
			    strcmp(l->tables[i].tgt_qname, l->tables[j].tgt_qname) == 0)
				l->tables[j].done = false;
}

/*
 * Empties what the table's load writes into, in the caller's transaction:
 * the whole target table (once, for its first source table), or, when
 * another task writes it too (load/share.h), only this task's share of it.
 */
static bool
empty_share(Load *l, const LoadTable *lt, const CatTable *t,
            bool first_of_target, Error *err)
{
	const char *filter;
	bool shared;

	if (!share_find(l->tgt, l->cfg, t->schema, t->name, lt->tgt_qname, &shared,
	                &filter, err))
		return false;
	if (shared && filter == NULL)
		return err_set(err, ERR_TARGET,
		               "target table %s is written by another task too, and "
		               "this task has no row filter on %s: it is not emptied",
		               lt->tgt_qname, t->qname);
	if (shared)
		return pg_execf(l->tgt, err, "DELETE FROM %s%s WHERE (%s\n)",
		                lt->tgt_kind == 'p' ? "" : "ONLY ", lt->tgt_qname,
		                filter);
	return !first_of_target ||
	       pg_execf(l->tgt, err, "TRUNCATE %s%s",
	                lt->tgt_kind == 'p' ? "" : "ONLY ", lt->tgt_qname);
}

static bool
read_done(Load *l, Error *err)
{
	for (int i = 0; i < l->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[l->tables[i].cat];

		if (!state_table_register(&l->state, t->schema, t->name, t->relid,
		                          l->tables[i].final_qname,
		                          filter_own(l->cfg, t->schema, t->name),
		                          config_on_conflict_name(l->cfg->on_conflict),
		                          err) ||
		    !state_table_done(&l->state, t->schema, t->name, &l->tables[i].done,
		                      err))
			return false;
	}
	spread_unfinished(l);
	return true;
}

/*
 * The split size in effect. auto: a table larger than its fair share of the
 * load (every selected table's bytes / jobs) would keep one worker busy after
 * the others finish, so it is cut into chunks of about that share; smaller
 * tables keep the workers busy side by side without splitting.
 */
static int64_t
split_bytes(const Load *l)
{
	const int64_t floor_bytes = INT64_C(64) * 1024 * 1024;
	int64_t total = 0, share;

	if (l->cfg->split_bytes != CONFIG_SPLIT_AUTO)
		return l->cfg->split_bytes;
	for (int i = 0; i < l->ntables; i++)
		total += l->cat->tables[l->tables[i].cat].bytes;
	share = total / (l->cfg->copy_jobs > 0 ? l->cfg->copy_jobs : 1);
	return share > floor_bytes ? share : floor_bytes;
}

/*
 * Starts the load of every unfinished table at the snapshot's point: empties
 * its target and resets its state, in one target transaction.
 */

static bool
start_tables(Load *l, const SlotSnapshot *snap, Error *err)
{
	const TaskConfig *cfg = l->cfg;
	char txids[SOURCE_TXIDS_MAX];

	if (!source_snapshot_txids(l->src, snap->snapshot, txids, sizeof(txids),
	                           err) ||
	    !pg_exec(l->tgt, "BEGIN", err))
		return false;
	for (int i = 0; i < l->ntables; i++)
	{
		LoadTable *lt = &l->tables[i];
		const CatTable *t = &l->cat->tables[lt->cat];
		CopyTable *ct = &l->copy[i];
		bool first_of_target = true;

		/* a routing key is read from binary rows only for its types */
		ct->binary = copy_use_binary(l->cfg, t) &&
		             (lt->key_col < 0 || copyrow_binary_decodes(lt->key_type));
		if (lt->done)
		{
			atomic_store(&ct->chunks_left, 0);
			continue;
		}
		ct->freeze = cfg->schema_mode == SCHEMA_MODE_CREATE &&
		             lt->nchunks == 1 && strcmp(lt->tgt_qname, t->qname) == 0;
		atomic_store(&ct->chunks_left, lt->nchunks);
		atomic_store(&ct->rows_done, 0);
		atomic_store(&ct->bytes_done, 0);
		for (int j = 0; j < i; j++)
			if (!l->tables[j].done &&
			    strcmp(l->tables[j].tgt_qname, lt->tgt_qname) == 0)
				first_of_target = false;
		if (!ct->freeze && !empty_share(l, lt, t, first_of_target, err))
			goto fail;
		if (!state_table_start(&l->state, t->schema, t->name,
		                       snap->consistent_lsn, txids, lt->nchunks,
		                       ct->binary ? "binary" : "text", err) ||
		    !state_columns_record(&l->state, t, err))
			goto fail;
	}
	return pg_exec(l->tgt, "COMMIT", err);
fail:
{
	Error ignored = ERR_INIT;

	pg_exec(l->tgt, "ROLLBACK", &ignored);
}
	return false;
}

static bool
hook_chunk_done(PgConn *tgt, int target, const PlanChunk *c, int64_t rows,
                int64_t bytes, void *ctx, Error *err)
{
	const Split *sp = ctx;
	Load *l = sp->loads[target];
	const CatTable *t = &l->cat->tables[l->tables[c->table].cat];
	State on_worker = state_on(&l->state, tgt);

	/* one target's copy counts its own rows as they pass */
	if (sp->n > 1)
	{
		atomic_fetch_add(&l->copy[c->table].rows_done, rows);
		atomic_fetch_add(&l->copy[c->table].bytes_done, bytes);
	}
	return state_chunk_done(&on_worker, t->schema, t->name, c->chunk,
	                        c->start_block, c->end_block, rows, bytes,
	                        l->st.run, err);
}

static bool
hook_chunk_check(PgConn *tgt, int target, const PlanChunk *c, bool *done,
                 void *ctx, Error *err)
{
	const Split *sp = ctx;
	Load *l = sp->loads[target];
	const CatTable *t = &l->cat->tables[l->tables[c->table].cat];
	State on_worker = state_on(&l->state, tgt);
	bool *bits = calloc((size_t) c->nchunks, sizeof(bool));
	bool ok;

	if (bits == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = state_chunks_done(&on_worker, t->schema, t->name, bits, c->nchunks,
	                       err);
	*done = ok && bits[c->chunk];
	free(bits);
	return ok;
}

/* CopyRouteFn: the target a row's key names, by the task's rules */
static bool
route_row(const CopyTable *t, const char *key, size_t len, int *target,
          void *ctx, Error *err)
{
	const Split *sp = ctx;

	(void) t;
	if (shard_route(sp->routing != NULL ? sp->routing : sp->spec, key, len,
	                target, err))
		return true;
	return err_hint(err, "route the key (shard.values, shard.bounds, the "
	                     "lookup table, or a shard.tables rule), or give the "
	                     "row a key that has a target; then run the command "
	                     "again: each target keeps what it committed");
}

/*
 * Runs a step that is one target transaction again while it fails on a lost
 * connection: the kept sessions reconnect, and the step's transaction
 * committed whole or not at all, so running it again is safe.
 */
static bool
retry_step(Load *l, const SlotSnapshot *snap, const char *what,
           bool (*step)(Load *, const SlotSnapshot *, Error *), Error *err)
{
	for (int attempt = 1;; attempt++)
	{
		if (step(l, snap, err))
			return true;
		if (!err->retryable || attempt >= TASK_STEP_RETRIES ||
		    interrupted(l, err))
			return false;
		log_warn("%s: %s; trying again", what, err->message);
		err_clear(err);
		clock_sleep_ms(500 * attempt);
	}
}

/* Whether load l takes part in this copy: its load was not done before. */
static bool
taking(const Split *sp, int k)
{
	return !sp->loads[k]->finished;
}

/*
 * The source side of table i for this round, with several targets: the
 * targets whose load of it is unfinished, and its format, as each target
 * recorded it in start_tables.
 */
static void
share_table(Split *sp, int i)
{
	CopyTable *st = &sp->tables[i];
	const LoadTable *lt = &sp->lead->tables[i];
	uint64_t wanted = 0;

	for (int k = 0; k < sp->n; k++)
		if (taking(sp, k) && !sp->loads[k]->tables[i].done)
		{
			wanted |= UINT64_C(1) << k;
			st->binary = sp->loads[k]->copy[i].binary;
		}
	st->wanted = wanted;
	st->key_col = lt->key_col;
	st->key_type = lt->key_type;
	st->whole_target = lt->whole_target;
	atomic_store(&st->chunks_left, wanted != 0 ? lt->nchunks : 0);
}

/*
 * The lookup table's map as of snap: rows are routed by the lookup table
 * as the snapshot holds it, as they are read.
 */
static bool
lookup_at(Split *sp, const SlotSnapshot *snap, Error *err)
{
	const char *schema, *table, *key, *col;
	PgConn *src = NULL;
	ShardSpec *fresh = NULL;
	int nkeys;
	bool ok;

	if (!shard_spec_lookup_table(sp->spec, &schema, &table, &key, &col))
		return true;
	ok = shard_spec_new(sp->task, &fresh, err) &&
	     pg_connect(sp->lead->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL,
	                "pgtide copy", 10000, &src, err) &&
	     stream_begin_snapshot(src, snap->snapshot, err) &&
	     shards_lookup_read(src, NULL, fresh, &nkeys, err);
	pg_close(src);
	if (!ok)
	{
		shard_spec_free(fresh);
		return false;
	}
	shard_spec_free(sp->routing);
	sp->routing = fresh;
	log_info("routing by lookup table %s.%s: %d keys", schema, table, nkeys);
	return true;
}

/* Copies the unfinished tables under snap; *lost when the snapshot died. */
static bool
load_tables(Split *sp, const SlotSnapshot *snap, bool *lost, Error *err)
{
	Load *l = sp->lead;
	int v = pg_server_version(l->src);
	PlanTable *pts = calloc((size_t) l->ntables + 1, sizeof(PlanTable));
	int *map = calloc((size_t) l->ntables + 1, sizeof(int));
	PlanChunk *chunks = NULL;
	int nplan = 0, nchunks = 0;
	CopyRun run;
	bool ok = false;

	*lost = false;
	if (pts == NULL || map == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	/* each table's chunks, planned once: every target records the same */
	for (int i = 0; i < l->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[l->tables[i].cat];
		PlanTable pt = {t->bytes, t->blocks, v >= 140000};
		int table_chunks = plan_table_chunks(&pt, split_bytes(l));

		for (int k = 0; k < sp->n; k++)
			if (taking(sp, k))
				sp->loads[k]->tables[i].nchunks = table_chunks;
	}
	for (int k = 0; k < sp->n; k++)
		if (taking(sp, k) &&
		    !retry_step(sp->loads[k], snap, "starting the tables' load",
		                start_tables, err))
		{
			/* the snapshot could not be imported: its session is gone */
			*lost = stream_snapshot_gone(err);
			if (sp->n > 1)
				err_prefix(err,
				           "target %s: ", shard_spec_target_name(sp->spec, k));
			goto out;
		}
	if (sp->n > 1 && !lookup_at(sp, snap, err))
	{
		*lost = stream_snapshot_gone(err);
		goto out;
	}
	for (int i = 0; i < l->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[l->tables[i].cat];
		bool todo = false;

		if (sp->n > 1)
			share_table(sp, i);
		for (int k = 0; k < sp->n; k++)
			todo |= taking(sp, k) && !sp->loads[k]->tables[i].done;
		if (!todo)
			continue;
		pts[nplan].bytes = t->bytes;
		pts[nplan].blocks = t->blocks;
		pts[nplan].splittable = l->tables[i].nchunks > 1;
		map[nplan++] = i;
	}
	if (!plan_chunks(pts, nplan, split_bytes(l), &chunks, &nchunks))
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int c = 0; c < nchunks; c++)
		chunks[c].table = map[chunks[c].table];
	memset(&run, 0, sizeof(run));
	run.source_uri = l->cfg->source_uri;
	run.target_uri = l->cfg->target_uri;
	if (sp->n > 1)
	{
		run.ntargets = sp->n;
		run.target_uris = sp->uris;
		run.target_tables = sp->target_tables;
		run.route = route_row;
	}
	run.snapshot = snap->snapshot;
	run.tables = sp->tables;
	run.chunks = chunks;
	run.nchunks = nchunks;
	run.workers = l->cfg->copy_jobs;
	run.max_retries = TASK_CHUNK_RETRIES;
	run.chunk_done = hook_chunk_done;
	run.chunk_check = hook_chunk_check;
	run.ctx = sp;
	run.stop = l->stop;
	run.gate = l->gate;
	if (sp->n > 1)
		log_info("copying %d tables in %d chunks with %d workers, each chunk "
		         "read once and its rows sent to %d targets",
		         nplan, nchunks, run.workers, sp->n);
	else
		log_info("copying %d tables in %d chunks with %d workers", nplan,
		         nchunks, run.workers);
	ok = copy_run(&run, lost, err);
out:
	free(chunks);
	free(pts);
	free(map);
	return ok;
}

/*
 * The large objects, as of the tables' snapshot when it is still there (a
 * later pass at cutover brings them up to date in any case), in a session
 * of their own so the load's stays free. A kill here is resumed by the
 * next run's pass, which skips what was copied.
 */
static bool
copy_large_objects(Load *l, const SlotSnapshot *snap, Error *err)
{
	PgConn *src = NULL;
	LoSync r;
	int64_t n, t0 = clock_ms();
	char size[32];
	bool ok;

	if (!lobjects_count(l->src, &n, err))
		return false;
	if (n == 0)
		return true;
	ok = pg_connect(l->cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide copy",
	                10000, &src, err);
	if (ok && !stream_begin_snapshot(
	              src, snap->conn != NULL ? snap->snapshot : NULL, err))
	{
		log_info("large objects: the tables' snapshot is gone (%s); copying "
		         "them as they are now",
		         err->message);
		err_clear(err);
		ok = pg_exec(src, "ROLLBACK", err) &&
		     stream_begin_snapshot(src, NULL, err);
	}
	ok = ok && lobjects_sync(src, l->tgt, &l->state, l->stop, &r, err);
	pg_close(src);
	if (!ok)
		return err_prefix(err, "large objects: ");
	units_format_bytes(r.bytes, size, sizeof(size));
	log_info("large objects: %lld on the source, %lld copied (%s), in %.1f s",
	         (long long) r.seen, (long long) r.copied, size,
	         (double) (clock_ms() - t0) / 1000.0);
	return true;
}

static bool
copy_sequences(Load *l, Error *err)
{
	SeqSyncResult r;

	/* create mode renames after this: the sequences are still the
	   source's names */
	if (!sequences_sync(l->src, l->tgt, l->cat,
	                    l->cfg->schema_mode == SCHEMA_MODE_EXISTING, 0,
	                    (SeqSpacing){.k = 1, .n = 1}, &r, err))
		return false;
	log_info("copied the values of %d sequences", r.set);
	if (r.left_out > 0)
		log_info("left out the identity sequences of %d tables not selected",
		         r.left_out);
	/* cutover sets them again and refuses while one cannot be set: the
	   user has until then to fix it, the load's hours are not lost */
	if (r.failed > 0)
		log_warn("%d sequences could not be copied (cutover will refuse "
		         "until they can be): %s",
		         r.failed, r.failures);
	return true;
}

/*
 * Fills the materialized views the source has populated (pg_dump created
 * them empty), after the data and the indexes their queries may use. A kill
 * here repeats the whole step on the next run: a refresh replaces, never
 * adds.
 */
static bool
refresh_matviews(Load *l, Error *err)
{
	MatviewList mvs;
	char **names;
	int refreshed = 0;
	int64_t t0 = clock_ms();
	bool ok = matviews_read(l->src, l->cfg->state_schema, &mvs, err);

	names = mvs.names.items;
	for (size_t i = 0; ok && i < mvs.names.count; i++)
	{
		bool gone;

		ok = !interrupted(l, err) &&
		     matviews_refresh(l->tgt, names[i], &gone, err);
		if (ok && gone)
			log_warn("materialized view %s is not on the target; left "
			         "alone",
			         names[i]);
		else if (ok && !gone)
			refreshed++;
		fault_point("load.refresh");
	}
	matviews_list_free(&mvs);
	if (ok && refreshed > 0)
		log_info("refreshed %d materialized views in %.1f s", refreshed,
		         (double) (clock_ms() - t0) / 1000.0);
	return ok;
}

static void
print_summary(const Load *l)
{
	int64_t rows = 0, bytes = 0;
	char b[32];
	double secs = (double) (clock_ms() - l->start_ms) / 1000.0;

	for (int i = 0; i < l->ntables; i++)
	{
		rows += atomic_load(&l->copy[i].rows_done);
		bytes += atomic_load(&l->copy[i].bytes_done);
	}
	units_format_bytes(bytes, b, sizeof(b));
	printf("pgtide copy: task \"%s\" loaded: %d tables; this run copied %lld "
	       "rows (%s) in %.1f s; consistent point " LSN_FMT " (%s%s)\n",
	       l->cfg->task, l->ntables, (long long) rows, b, secs,
	       LSN_ARGS(l->st.consistent_lsn),
	       l->st.copy_only ? "no slot kept" : "slot ",
	       l->st.copy_only ? "" : l->st.slot_name);
	fflush(stdout);
}

static void
load_free(Load *l)
{
	rename_free(&l->renames);
	for (int i = 0; i < l->ntables; i++)
	{
		free(l->tables[i].tgt_qname);
		free(l->tables[i].final_qname);
		free(l->tables[i].tgt_columns);
		free(l->tables[i].columns);
	}
	free(l->tables);
	free(l->copy);
	subset_free(&l->subset);
	catalog_free(l->cat);
	pg_close(l->src);
	pg_close(l->tgt);
}

/* SchemaReadyFn: a table's index builds may start once its data is in. */
static bool
table_loaded(const char *schema, const char *name, void *ctx)
{
	const Load *l = ctx;

	for (int i = 0; i < l->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[l->tables[i].cat];

		if (strcmp(t->schema, schema) == 0 && strcmp(t->name, name) == 0)
			return atomic_load(&l->counted[i].chunks_left) == 0;
	}
	return true; /* not loaded by pgtide: a partitioned parent, say */
}

/*
 * Index builds that run while the copy goes on: each table's indexes start
 * as soon as its last chunk lands, on index_jobs connections of their own.
 */
typedef struct EarlyBuild
{
	SchemaBuild args;
	atomic_bool load_done;
	pthread_t thread;
	bool started;
	Error err;
} EarlyBuild;

static void *
early_build_main(void *arg)
{
	EarlyBuild *eb = arg;

	schema_build_postdata(&eb->args, &eb->err);
	return NULL;
}

/* The post-data build of phases first..last for this load. */
static void
build_args(const Load *l, int first, int last, SchemaBuild *out)
{
	memset(out, 0, sizeof(*out));
	out->target_uri = l->cfg->target_uri;
	out->state = &l->state;
	out->jobs = l->cfg->index_jobs;
	out->run = l->st.run;
	out->first_phase = first;
	out->last_phase = last;
	out->progress_interval_s = l->cfg->progress_interval_s;
	out->stop = l->stop;
	out->gate = l->gate;
}

static void
early_build_start(Load *l, EarlyBuild *eb)
{
	memset(eb, 0, sizeof(*eb));
	atomic_init(&eb->load_done, false);
	build_args(l, 1, 1, &eb->args);
	eb->args.ready = table_loaded;
	eb->args.ready_ctx = l;
	eb->args.load_done = &eb->load_done;
	eb->started = pthread_create(&eb->thread, NULL, early_build_main, eb) == 0;
}

/* Lets the early builds finish what is left, then returns their error. */
static bool
early_build_finish(EarlyBuild *eb, Error *err)
{
	if (!eb->started)
		return true;
	atomic_store(&eb->load_done, true);
	pthread_join(eb->thread, NULL);
	eb->started = false;
	if (err_is_set(&eb->err))
	{
		*err = eb->err;
		return false;
	}
	return true;
}

/*
 * Whether every table's load is durably recorded: chunks commit with
 * synchronous_commit off, so a target crash can take back the last ones
 * (rows and record together) after their worker moved on. After a
 * synchronous commit on the state session nothing earlier can be lost, and
 * the state says what is really there. *lost_tables counts the tables a
 * crash took chunks from.
 */
static bool
load_durable(Load *l, int *lost_tables, Error *err)
{
	*lost_tables = 0;
	if (!state_sync(&l->state, err) || !read_done(l, err))
		return false;
	for (int i = 0; i < l->ntables; i++)
		*lost_tables += !l->tables[i].done;
	return true;
}

/* Tables done, counted over every target taking part. */
static int
tables_done(const Split *sp)
{
	int n = 0;

	for (int k = 0; k < sp->n; k++)
		for (int i = 0; taking(sp, k) && i < sp->loads[k]->ntables; i++)
			n += sp->loads[k]->tables[i].done;
	return n;
}

static int
tables_total(const Split *sp)
{
	int n = 0;

	for (int k = 0; k < sp->n; k++)
		n += taking(sp, k) ? sp->loads[k]->ntables : 0;
	return n;
}

/* load_durable on every target taking part; read_done on them when !sync */
static bool
each_durable(Split *sp, bool sync, int *lost_tables, Error *err)
{
	*lost_tables = 0;
	for (int k = 0; k < sp->n; k++)
	{
		int lost = 0;

		if (!taking(sp, k))
			continue;
		if (sync ? !load_durable(sp->loads[k], &lost, err)
		         : !read_done(sp->loads[k], err))
		{
			if (sp->n > 1)
				err_prefix(err,
				           "target %s: ", shard_spec_target_name(sp->spec, k));
			return false;
		}
		*lost_tables += lost;
	}
	return true;
}

/*
 * Loads the unfinished tables, taking a fresh snapshot when one is lost,
 * and again when a target lost committed chunks (each such table is
 * emptied and loaded anew from the fresh snapshot, as after a restart). It
 * gives up after TASK_LOAD_ROUNDS rounds in a row that finished no table:
 * a network that drops the snapshot's connection every few seconds still
 * lets a load through, one table at a time.
 */
static bool
run_load_rounds(Split *sp, SlotSnapshot *snap, Error *err)
{
	int done_before = tables_done(sp);

	for (int round = 0;; round++)
	{
		bool lost = false, ok;
		int lost_tables = 0;

		if (tables_done(sp) == tables_total(sp))
			return true;
		/* a round that finished a table starts the count again */
		if (tables_done(sp) > done_before)
			round = 0;
		done_before = tables_done(sp);
		if (snap->conn == NULL && !fresh_snapshot(sp->lead, snap, err))
			return false;
		ok = load_tables(sp, snap, &lost, err);
		stream_release(snap);
		if (ok && !each_durable(sp, true, &lost_tables, err))
			return false;
		if (ok && lost_tables == 0)
			return true;
		if (ok && round + 1 >= TASK_LOAD_ROUNDS)
			return err_set(err, ERR_TARGET,
			               "the target lost committed chunks of %d tables in "
			               "each of %d rounds of the load",
			               lost_tables, TASK_LOAD_ROUNDS);
		if (ok)
		{
			log_warn("the target lost committed chunks of %d tables (did it "
			         "restart?); finished tables stay, those are loaded again",
			         lost_tables);
			continue;
		}
		if (!lost || round + 1 >= TASK_LOAD_ROUNDS)
			return false;
		log_warn("the exported snapshot was lost (%s); finished tables stay, "
		         "unfinished ones are reloaded",
		         err->message);
		err_clear(err);
		if (!each_durable(sp, false, &lost_tables, err))
			return false;
	}
}

/*
 * Refuses to stream a task whose load no slot followed: the changes between
 * its load and now are gone from any slot made today.
 */
static bool
refuse_copy_only(const Load *l, Error *err)
{
	err_set(err, ERR_CONFIG,
	        "task \"%s\" was loaded by pgtide copy, which keeps no "
	        "replication slot; the source's changes since its load cannot be "
	        "streamed",
	        l->cfg->task);
	return err_hint(err, "drop the task with pgtide clean (and the target's "
	                     "copy), then run pgtide migrate, which loads and "
	                     "streams from one slot; or use another --task");
}

/*
 * The load is done: in create mode the tables take their target names
 * (load/renames.h) in the transaction that says so, so that a resumed run
 * finds either the source's names and the load not done, or both done.
 */
static bool
finish_load(Load *l, Error *err)
{
	Error ignored = ERR_INIT;

	if (l->cfg->schema_mode != SCHEMA_MODE_CREATE)
		return state_task_set_phase(&l->state, STATE_PHASE_LOADED, err);
	if (!pg_exec(l->tgt, "BEGIN", err))
		return false;
	if (renames_apply(l->tgt, l->cat, l->cfg->on_existing == ON_EXISTING_DROP,
	                  err) &&
	    state_task_set_phase(&l->state, STATE_PHASE_LOADED, err) &&
	    pg_exec(l->tgt, "COMMIT", err))
		return true;
	pg_exec(l->tgt, "ROLLBACK", &ignored);
	return false;
}

static void
load_init(Load *l, const TaskConfig *cfg, const ShardSpec *spec,
          atomic_int *stop, Gate *gate, bool keep_slot)
{
	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	l->stop = stop;
	l->gate = gate;
	l->keep_slot = keep_slot;
	l->spec = spec;
	l->start_ms = clock_ms();
}

bool
load_task_begin(const TaskConfig *cfg, const State *state, StateTask *st,
                Error *err)
{
	char slot[CONFIG_SOURCE_NAME_MAX], publication[CONFIG_SOURCE_NAME_MAX];

	config_slot_name(cfg, slot, sizeof(slot));
	config_source_name(cfg, publication, sizeof(publication));
	if (!state_task_begin(state, slot, publication, st, err))
		return false;
	if (cfg->shard_target == NULL || cfg->cdc_slot != NULL ||
	    strcmp(st->slot_name, slot) == 0)
		return true;
	err_set(err, ERR_CONFIG,
	        "task \"%s\" reads the source through slot \"%s\", not \"%s\" "
	        "as shard.slot %s says",
	        cfg->task, st->slot_name, slot,
	        cfg->shard_slot == SHARD_SLOT_ONE ? "one" : "per_target");
	return err_hint(err,
	                "a task keeps the slots it began with: set shard.slot "
	                "to %s in its task file",
	                cfg->shard_slot == SHARD_SLOT_ONE ? "per_target" : "one");
}

/*
 * The steps before any row moves: sessions, checks, the task's state, its
 * slot, the schema, and which tables are done. *snap gets the slot's
 * snapshot on a first run (or the one given is used, for a copy-only
 * task). l->finished when the load was done before this run.
 */
static bool
load_prepare(Load *l, SlotSnapshot *snap, Error *err)
{
	const TaskConfig *cfg = l->cfg;

	if (!pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide", 5000,
	                &l->src, err) ||
	    !pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide", 5000,
	                &l->tgt, err) ||
	    !pg_keep_session(l->src, NULL, PG_RECONNECT_MS, err) ||
	    !pg_keep_session(l->tgt, NULL, PG_RECONNECT_MS, err) ||
	    !preflight(l, err) ||
	    /* the selection and its renames are checked before the task's
	       state exists: a bad rule changes nothing */
	    !catalog_read(l->src, cfg->state_schema, &l->cat, err) ||
	    !catalog_select(l->cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err) ||
	    !rename_from_config(&l->renames, cfg, err) ||
	    !catalog_rename(l->src, l->cat, &l->renames,
	                    cfg->schema_mode == SCHEMA_MODE_CREATE, err) ||
	    !state_open(&l->state, l->tgt, cfg->state_schema, cfg->task, err) ||
	    !load_task_begin(cfg, &l->state, &l->st, err))
		return false;
	if (l->keep_slot && l->st.copy_only)
		return refuse_copy_only(l, err);
	/* cdc, cutover: the load is done and the stream started since */
	if (l->st.phase >= STATE_PHASE_LOADED)
	{
		printf("pgtide copy: task \"%s\" has already finished its full load; "
		       "nothing to do\n",
		       cfg->task);
		l->finished = true;
		return true;
	}
	if (!source_refuse_row_security(l->src, l->cat, err) ||
	    !build_tables(l, err) ||
	    !rowfilter_check_all(l->src, l->cat, &cfg->filters, err))
		return false;
	if (cfg->schema_mode == SCHEMA_MODE_EXISTING &&
	    (!resolve_existing_targets(l, err) || !match_existing_columns(l, err)))
		return false;
	if (l->st.consistent_lsn == LSN_INVALID && !check_target_tables(l, err))
		return false;
	if (!l->st.schema_done && cfg->schema_mode == SCHEMA_MODE_CREATE &&
	    !decide_subset(l, err))
		return false;
	if (interrupted(l, err) || !ensure_slot(l, snap, err))
		return false;
	if (!l->st.schema_done && cfg->schema_mode == SCHEMA_MODE_CREATE)
	{
		for (int round = 1;; round++)
		{
			if (snap->conn == NULL && !fresh_snapshot(l, snap, err))
				return false;
			if (retry_step(l, snap, "creating the schema", create_schema, err))
				break;
			/* 22023: pg_dump could not import it; its session is gone
			   (a borrowed one is gone for its owner too: the next run
			   takes another) */
			if (!pg_err_is(err, "22023") || round >= TASK_LOAD_ROUNDS ||
			    l->borrowed_snap)
				return false;
			log_warn("the exported snapshot was lost (%s); the schema and "
			         "the tables come from a fresh one",
			         err->message);
			err_clear(err);
			stream_release(snap);
		}
	}
	if (interrupted(l, err) || !read_done(l, err))
		return false;
	/* set once, before the progress thread reads them */
	for (int i = 0; i < l->ntables; i++)
	{
		const CatTable *t = &l->cat->tables[l->tables[i].cat];

		l->copy[i].src_qname = t->qname;
		l->copy[i].tgt_qname = l->tables[i].tgt_qname;
		l->copy[i].columns = l->tables[i].columns;
		l->copy[i].filter =
		    filter_find(&cfg->filters, t->schema, t->name, NULL);
		l->copy[i].tgt_columns = l->tables[i].tgt_columns;
	}
	l->counted = l->copy;
	return true;
}

/*
 * The copy of every unfinished table of sp's loads, with its progress
 * lines, and in create mode each target's index builds as its tables land.
 */
static bool
load_copy(Split *sp, SlotSnapshot *snap, Error *err)
{
	Load *l = sp->lead;
	int64_t *est = calloc((size_t) l->ntables + 1, sizeof(int64_t));
	EarlyBuild *early = calloc((size_t) sp->n, sizeof(EarlyBuild));
	Progress *prog;
	bool loaded, built = true;

	if (est == NULL || early == NULL)
	{
		free(est);
		free(early);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < l->ntables; i++)
		est[i] = l->cat->tables[l->tables[i].cat].bytes;
	prog =
	    progress_start(sp->tables, est, l->ntables, l->cfg->progress_interval_s,
	                   /* JSON lines are for machines, even on a
	                         terminal: never a redrawn block */
	                   isatty(STDERR_FILENO) && !log_is_json());
	free(est);
	for (int k = 0; k < sp->n; k++)
		if (taking(sp, k) && l->cfg->schema_mode == SCHEMA_MODE_CREATE)
			early_build_start(sp->loads[k], &early[k]);
	loaded = run_load_rounds(sp, snap, err);
	progress_stop(prog);
	/* the load's error first; a build error only when the load went fine */
	for (int k = 0; k < sp->n; k++)
	{
		Error berr = ERR_INIT;

		if (!early_build_finish(&early[k], &berr) && built)
		{
			built = false;
			if (loaded)
			{
				*err = berr;
				if (sp->n > 1)
					err_prefix(err, "target %s: ",
					           shard_spec_target_name(sp->spec, k));
			}
		}
	}
	free(early);
	return loaded && built;
}

/* The steps after the rows: large objects, indexes, sequences, the end. */
static bool
load_finish(Load *l, const SlotSnapshot *snap, int64_t copy_start_ms,
            Error *err)
{
	const TaskConfig *cfg = l->cfg;

	if (interrupted(l, err) || !copy_large_objects(l, snap, err))
		return false;
	log_info("copy phase done in %.1f s (%.1f s since start)",
	         (double) (clock_ms() - copy_start_ms) / 1000.0,
	         (double) (clock_ms() - l->start_ms) / 1000.0);
	if (cfg->schema_mode == SCHEMA_MODE_CREATE)
	{
		int64_t t0 = clock_ms();
		SchemaBuild rest;

		build_args(l, 1, 5, &rest);
		if (!state_task_set_phase(&l->state, STATE_PHASE_POSTDATA, err) ||
		    !schema_build_postdata(&rest, err))
			return false;
		log_info("indexes and constraints done in %.1f s",
		         (double) (clock_ms() - t0) / 1000.0);
	}
	if (interrupted(l, err) || !copy_sequences(l, err) ||
	    !refresh_matviews(l, err) || !finish_load(l, err))
		return false;
	print_summary(l);
	return true;
}

static bool
run_load(const TaskConfig *cfg, atomic_int *stop, Gate *gate, bool keep_slot,
         Error *err)
{
	Load l;
	Load *one = &l;
	SlotSnapshot snap;
	Split sp;
	int64_t copy_start_ms;
	bool ok;

	memset(&snap, 0, sizeof(snap));
	load_init(&l, cfg, NULL, stop, gate, keep_slot);
	ok = load_prepare(&l, &snap, err);
	if (ok && !l.finished)
	{
		memset(&sp, 0, sizeof(sp));
		sp.loads = &one;
		sp.n = 1;
		sp.tables = l.copy;
		sp.lead = &l;
		/* the data copy starts here: connections, slot and schema are done */
		copy_start_ms = clock_ms();
		ok = load_copy(&sp, &snap, err) &&
		     load_finish(&l, &snap, copy_start_ms, err);
	}
	stream_release(&snap);
	load_free(&l);
	return ok;
}

bool
load_run(const TaskConfig *cfg, atomic_int *stop, Gate *gate, Error *err)
{
	return run_load(cfg, stop, gate, false, err);
}

bool
load_for_stream(const TaskConfig *cfg, atomic_int *stop, Gate *gate, Error *err)
{
	return run_load(cfg, stop, gate, true, err);
}

/*
 * Every unfinished load reads the same tables, in the same order, since
 * chunk i of table t is sent to each of them: the catalog each read must
 * agree with the lead's.
 */
static bool
same_tables(const Split *sp, Error *err)
{
	const Load *a = sp->lead;

	for (int k = 0; k < sp->n; k++)
	{
		const Load *b = sp->loads[k];
		bool same = !taking(sp, k) || b->ntables == a->ntables;

		for (int i = 0; same && taking(sp, k) && i < a->ntables; i++)
			same = a->cat->tables[a->tables[i].cat].relid ==
			       b->cat->tables[b->tables[i].cat].relid;
		if (!same)
			return err_set(err, ERR_SOURCE,
			               "the source's tables changed while the targets' "
			               "loads were prepared (target %s)",
			               shard_spec_target_name(sp->spec, k));
	}
	return true;
}

/* The source side shared by every target, and each target's side. */
static bool
split_tables(Split *sp, Error *err)
{
	Load *l = sp->lead;

	sp->tables = calloc((size_t) l->ntables + 1, sizeof(CopyTable));
	sp->target_tables = calloc((size_t) sp->n, sizeof(CopyTable *));
	sp->uris = calloc((size_t) sp->n, sizeof(char *));
	if (sp->tables == NULL || sp->target_tables == NULL || sp->uris == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < l->ntables; i++)
	{
		sp->tables[i] = l->copy[i];
		atomic_init(&sp->tables[i].rows_done, 0);
		atomic_init(&sp->tables[i].bytes_done, 0);
		atomic_init(&sp->tables[i].chunks_left, -1);
	}
	for (int k = 0; k < sp->n; k++)
	{
		sp->uris[k] = sp->loads[k]->cfg->target_uri;
		sp->target_tables[k] = sp->loads[k]->copy;
		sp->loads[k]->counted = sp->tables;
	}
	return true;
}

/* One target's first or last steps, on a thread of its own. */
typedef struct Step
{
	Load *l;
	const char *name;
	SlotSnapshot *snap; /* the shared one, or NULL: a snapshot of its own */
	int64_t copy_start_ms;
	bool finish; /* load_finish, else load_prepare */
	pthread_t thread;
	bool started;
	bool ok;
	Error err;
} Step;

static void *
step_main(void *arg)
{
	Step *st = arg;
	SlotSnapshot own;

	log_set_role(st->name);
	log_info(st->finish ? "finishing its load" : "preparing its load");
	memset(&own, 0, sizeof(own));
	st->ok =
	    st->finish
	        ? load_finish(st->l, st->snap, st->copy_start_ms, &st->err)
	        : load_prepare(st->l, st->snap != NULL ? st->snap : &own, &st->err);
	stream_release(&own);
	if (!st->ok)
		err_prefix(&st->err, "target %s: ", st->name);
	return NULL;
}

/*
 * The steps of targets from..n side by side, each target's on its own
 * sessions: one target's schema, slot or index builds need not wait for
 * another's. snap is the snapshot they share (a prepare only reads it), or
 * NULL for a prepare that takes its slot's own. The first failure, in the
 * order of the targets, is the error.
 */
static bool
each_target(Split *sp, int from, bool finish, SlotSnapshot *snap,
            int64_t copy_start_ms, Error *err)
{
	Step *steps = calloc((size_t) sp->n, sizeof(Step));
	bool ok = true;

	if (steps == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int k = from; k < sp->n; k++)
	{
		Step *st = &steps[k];

		st->l = sp->loads[k];
		st->name = shard_spec_target_name(sp->spec, k);
		st->snap = snap;
		st->copy_start_ms = copy_start_ms;
		st->finish = finish;
		st->ok = true;
		err_clear(&st->err);
		if (finish && !taking(sp, k))
			continue;
		st->started = pthread_create(&st->thread, NULL, step_main, st) == 0;
		if (!st->started)
			st->ok = err_set(&st->err, ERR_INTERNAL,
			                 "target %s: could not start a thread", st->name);
	}
	for (int k = from; k < sp->n; k++)
	{
		if (steps[k].started)
			pthread_join(steps[k].thread, NULL);
		if (!steps[k].ok && ok)
		{
			*err = steps[k].err;
			ok = false;
		}
	}
	free(steps);
	return ok;
}

/*
 * shard.slot one: every target's task row names the one slot before the
 * first target creates it, so that a crash between the two leaves no slot
 * that a target's check would take for another task's.
 */
static bool
name_the_slot(const TaskConfig *targets, int n, Error *err)
{
	for (int k = 0; k < n; k++)
	{
		const TaskConfig *cfg = &targets[k];
		char slot[CONFIG_SOURCE_NAME_MAX], publication[CONFIG_SOURCE_NAME_MAX];
		PgConn *tgt = NULL;
		State state;
		bool ok;

		config_slot_name(cfg, slot, sizeof(slot));
		config_source_name(cfg, publication, sizeof(publication));
		ok = pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide",
		                5000, &tgt, err) &&
		     state_open(&state, tgt, cfg->state_schema, cfg->task, err) &&
		     state_task_ensure(&state, slot, publication, err);
		pg_close(tgt);
		if (!ok)
			return err_prefix(err, "target %s: ", cfg->shard_target);
	}
	return true;
}

bool
load_run_split(const TaskConfig *task, const TaskConfig *targets, int n,
               atomic_int *stop, Gate *gate, bool keep_slot, Error *err)
{
	Load *ls = calloc((size_t) n, sizeof(Load));
	Load **lp = calloc((size_t) n, sizeof(Load *));
	SlotSnapshot shared;
	Dumped dumped = {"", NULL, NULL};
	Split sp;
	int64_t copy_start_ms;
	bool one, ok = ls != NULL && lp != NULL;

	memset(&shared, 0, sizeof(shared));
	memset(&sp, 0, sizeof(sp));
	if (!ok)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	sp.task = task;
	sp.loads = lp;
	sp.n = n;
	one = keep_slot && targets[0].shard_slot == SHARD_SLOT_ONE;
	ok = shard_spec_new(task, &sp.spec, err) &&
	     (!one || name_the_slot(targets, n, err));
	for (int k = 0; k < n; k++)
	{
		lp[k] = &ls[k];
		load_init(&ls[k], &targets[k], sp.spec, stop, gate, keep_slot);
		/* one snapshot, so one dump; migrate's targets with a slot each
		   dump their own slot's */
		ls[k].dumped = keep_slot && !one ? NULL : &dumped;
	}
	/*
	 * Each target's slot first (migrate, shard.slot per_target): the rows
	 * come from one snapshot taken after them all, so each stream finds
	 * every change the rows lack, and skips those they hold (each table
	 * records the snapshot's point). pgtide copy's targets, and migrate's
	 * under one slot, share one snapshot from the start: the first target's
	 * prepare takes it (creating the one slot), the others only read it.
	 */
	if (ok && (!keep_slot || one))
	{
		log_set_role(shard_spec_target_name(sp.spec, 0));
		log_info("preparing its load");
		ok = load_prepare(&ls[0], &shared, err) ||
		     err_prefix(err, "target %s: ", shard_spec_target_name(sp.spec, 0));
		log_set_role("main");
		if (ok && shared.conn == NULL)
			ok = fresh_snapshot(&ls[0], &shared, err);
		for (int k = 1; k < n; k++)
		{
			ls[k].borrowed_snap = true;
			ls[k].slot_lsn = ls[0].st.consistent_lsn;
		}
	}
	ok = ok && each_target(&sp, keep_slot && !one ? 0 : 1, false,
	                       keep_slot && !one ? NULL : &shared, 0, err);
	for (int k = 0; ok && k < n; k++)
		if (!ls[k].finished && sp.lead == NULL)
			sp.lead = &ls[k];
	if (!ok || sp.lead == NULL)
		goto out;
	copy_start_ms = clock_ms();
	ok = same_tables(&sp, err) && split_tables(&sp, err) &&
	     load_copy(&sp, &shared, err);
	ok = ok && each_target(&sp, 0, true, &shared, copy_start_ms, err);
out:
	stream_release(&shared);
	for (int k = 0; ls != NULL && k < n; k++)
		load_free(&ls[k]);
	shard_spec_free(sp.spec);
	shard_spec_free(sp.routing);
	free(dumped.pre);
	free(dumped.post);
	free(sp.tables);
	free(sp.target_tables);
	free(sp.uris);
	free(ls);
	free(lp);
	return ok;
}
