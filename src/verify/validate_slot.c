/*
 * validate_slot: comparing while the task's change stream runs. Whether
 * its slot is active (then what differs is read again), the source's WAL
 * position after a read, and a bounded wait until the slot has confirmed
 * that position, so that the target holds what the source held. Reads
 * pg_replication_slots and the task's state only: never creates, advances
 * or drops a slot, and never decides what differs.
 */
#include "verify/validate_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/lsn.h"
#include "pg/pg.h"
#include "state/state.h"

#define VALIDATE_WAIT_SHORT_MS 2000 /* once one wait has timed out */

/* The source's WAL position now: a read finished before it. */
bool
slot_source_lsn(VWorker *w, Lsn *lsn, Error *err)
{
	char buf[32];

	*lsn = LSN_INVALID;
	if (!w->run->cdc)
		return true;
	if (!pg_query_value(w->src, "SELECT pg_current_wal_lsn()::text", 0, NULL,
	                    buf, sizeof(buf), err))
		return false;
	lsn_parse(buf, lsn);
	return true;
}

/*
 * Waits until the task's slot has confirmed lsn: the target then holds every
 * source transaction committed before it. Bounded: after VALIDATE_WAIT_MS
 * the caller reads again anyway (and later waits are short), because a
 * difference must be reported even when the applier stalls.
 */
bool
slot_wait_applied(VWorker *w, Lsn lsn, bool *reached, Error *err)
{
	VRun *r = w->run;
	const char *params[1] = {r->slot};
	int64_t deadline;
	bool ignored;

	if (reached == NULL)
		reached = &ignored;
	*reached = lsn == LSN_INVALID || lsn <= atomic_load(&r->confirmed);
	if (*reached)
		return true;
	deadline = clock_ms() + atomic_load(&r->wait_ms);
	for (;;)
	{
		PGresult *res;
		Lsn confirmed = LSN_INVALID;
		bool active;

		if (run_stopping(r))
			return err_set(err, ERR_INTERRUPTED, "interrupted");
		if (!pg_query(w->src,
		              "SELECT coalesce(confirmed_flush_lsn::text, ''), active"
		              " FROM pg_replication_slots WHERE slot_name = $1"
		              " AND database = current_database()",
		              1, params, &res, err))
			return false;
		active = PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't';
		if (PQntuples(res) == 1)
			lsn_parse(PQgetvalue(res, 0, 0), &confirmed);
		PQclear(res);
		for (uint64_t seen = atomic_load(&r->confirmed); confirmed > seen;)
			if (atomic_compare_exchange_weak(&r->confirmed, &seen, confirmed))
				break;
		if (confirmed >= lsn)
			return *reached = true;
		if (!active)
		{
			if (log_every(&r->last_wait_log_ms, 60000))
				log_warn("slot \"%s\" is no longer active: differences are "
				         "no longer waited for",
				         r->slot);
			return true;
		}
		if (clock_ms() >= deadline)
		{
			if (log_every(&r->last_wait_log_ms, 60000))
				log_warn("the target has not confirmed " LSN_FMT
				         " within %d s; reading again anyway",
				         LSN_ARGS(lsn), atomic_load(&r->wait_ms) / 1000);
			atomic_store(&r->wait_ms, VALIDATE_WAIT_SHORT_MS);
			return true;
		}
		clock_sleep_ms(100);
	}
}

/* Whether the task's change stream is running (its slot active). */
bool
slot_detect(VRun *r, PgConn *src, PgConn *tgt, Error *err)
{
	const char *params[1];
	PGresult *res;
	bool cut_over = false;

	config_slot_name(r->cfg, r->slot, sizeof(r->slot));
	if (r->cfg->cdc_slot != NULL)
		snprintf(r->slot, sizeof(r->slot), "%s", r->cfg->cdc_slot);
	else
	{
		State state;
		StateTask task;
		bool have = false;

		/* no state: the default name */
		if (!state_attach(&state, tgt, r->cfg->state_schema, r->cfg->task,
		                  &have, err) ||
		    (have && !state_task_read(&state, &task, err)))
			return false;
		if (have && task.exists)
		{
			snprintf(r->slot, sizeof(r->slot), "%s", task.slot_name);
			cut_over = task.phase == STATE_PHASE_CUTOVER;
		}
	}
	params[0] = r->slot;
	if (!pg_query(src,
	              "SELECT active, coalesce(confirmed_flush_lsn::text, ''),"
	              " pg_current_wal_lsn() - confirmed_flush_lsn"
	              " FROM pg_replication_slots WHERE slot_name = $1"
	              " AND database = current_database()",
	              1, params, &res, err))
		return false;
	if (PQntuples(res) == 1)
	{
		r->cdc = PQgetvalue(res, 0, 0)[0] == 't';
		if (r->cdc)
			log_info("slot \"%s\" is active: a range that differs is read "
			         "again once the target has applied what the source "
			         "held when it was read",
			         r->slot);
		else if (!cut_over) /* after cutover the source is fenced, done */
			log_warn("slot \"%s\" exists but is not active: what the source "
			         "changed after its confirmed position %s (%s bytes of "
			         "WAL ago) is not on the target and shows as differences",
			         r->slot, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return true;
}
