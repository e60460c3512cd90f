/*
 * clean: `pgtide clean`: drops what pgtide made for a task, on both sides.
 * It never drops anything of the user's: only the task's slot, publication,
 * replication origin and state.
 */
#include "cmd/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "cmd/lock.h"
#include "load/insert_only.h"
#include "pg/pg.h"
#include "pg/stream.h"
#include "state/state.h"

static bool
drop_publication(PgConn *src, const char *name, Error *err)
{
	char *qp = pg_quote_ident(name);
	bool ok;

	if (qp == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_execf(src, err, "DROP PUBLICATION IF EXISTS %s", qp);
	free(qp);
	return ok;
}

/*
 * Drops what pgtide made for the task: the slot and publication on the
 * source, the replication origin and the task's state on the target (the
 * state schema too once no task is left). Refuses while a process runs the
 * task (it holds the task's lock) unless forced. Each step is "if it exists", so a
 * second run finds nothing to do.
 */
bool
task_clean(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	PgConn *src = NULL, *tgt = NULL;
	char slot[128], publication[128], inserts[160], origin[80];
	const char *sp[1];
	PGresult *res = NULL;
	State state;
	TaskLock *lock = NULL;
	bool have_state = false, ok = false;

	config_slot_name(cfg, slot, sizeof(slot));
	config_source_name(cfg, publication, sizeof(publication));
	config_source_name(cfg, origin, sizeof(origin));
	/* the task's lock first: while clean holds it no copy, migrate or follow
	   of the task starts, and one that runs is refused before anything is
	   dropped, unless forced */
	if (!task_lock_take(cfg, "clean", stop, &lock, err))
	{
		if (err->kind != ERR_BUSY || !cfg->force)
			return false;
		log_warn("%s; --force: ending its sessions", err->message);
		err_clear(err);
	}
	if (!pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide clean",
	                5000, &src, err) ||
	    /* after a cutover with the read_only fence the source database
	       stays read-only for the application, not for pgtide's own drops */
	    !pg_exec(src, "SET default_transaction_read_only = off", err) ||
	    !pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide clean",
	                5000, &tgt, err))
		goto out;
	/* the names pgtide recorded win over the defaults */
	if (!state_attach(&state, tgt, cfg->state_schema, cfg->task, &have_state,
	                  err))
		goto out;
	if (have_state)
	{
		StateTask task;

		if (!state_task_read(&state, &task, err))
			goto out;
		if (task.exists)
		{
			snprintf(slot, sizeof(slot), "%s", task.slot_name);
			snprintf(publication, sizeof(publication), "%s", task.publication);
			snprintf(origin, sizeof(origin), "%s", task.origin_name);
		}
	}
	sp[0] = slot;
	/*
	 * Forced: end the session holding the slot, then drop it. The running
	 * pgtide reconnects on its own, so repeat until the drop wins (bounded).
	 */
	for (int waited_ms = 0;; waited_ms += 250)
	{
		if (cfg->force &&
		    !pg_query(src,
		              "SELECT pg_terminate_backend(active_pid) FROM"
		              " pg_replication_slots WHERE slot_name = $1 AND active",
		              1, sp, &res, err))
			goto out;
		PQclear(res);
		res = NULL;
		if (stream_drop_slot(src, slot, err))
			break;
		if (!cfg->force || !pg_err_is(err, "55006") || waited_ms >= 30000)
			goto out;
		err_clear(err);
		clock_sleep_ms(250);
	}
	insert_only_publication(publication, inserts, sizeof(inserts));
	if (!drop_publication(src, publication, err) ||
	    !drop_publication(src, inserts, err))
		goto out;
	sp[0] = origin;
	/* a forced stop: the session applying for the task leaves once it finds
	 * its slot gone; give it a moment to release the origin */
	for (int waited_ms = 0;; waited_ms += 250)
	{
		if (pg_query(tgt,
		             "SELECT pg_catalog.pg_replication_origin_drop(roname)"
		             " FROM pg_catalog.pg_replication_origin WHERE roname = $1",
		             1, sp, &res, err))
			break;
		if (!cfg->force || !pg_err_is(err, "55006") || waited_ms >= 30000)
			goto out;
		err_clear(err);
		clock_sleep_ms(250);
	}
	PQclear(res);
	res = NULL;
	if (have_state && !state_task_drop(&state, err))
		goto out;
	printf("pgtide clean: task \"%s\": slot \"%s\" and publications \"%s\" "
	       "and \"%s\" dropped on the source (if they existed); origin \"%s\" "
	       "and the "
	       "task's state dropped on the target\n",
	       cfg->task, slot, publication, inserts, origin);
	ok = true;
out:
	PQclear(res);
	pg_close(src);
	pg_close(tgt);
	return task_lock_release(lock, ok, err);
}
