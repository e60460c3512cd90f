/*
 * check_wal: what the migration costs the source in WAL and time.
 *
 * It owns the sampling of the source's WAL position and next txid (at t0
 * and t1, see check.c), the load's estimated time from the selected tables'
 * sizes, the WAL the task's slot would retain meanwhile against the space
 * declared free and max_slot_wal_keep_size, and track_commit_timestamp's
 * cost on a busy source. It must never write to the source, and never wait
 * longer than check.wal_sample in all.
 */
#include "verify/check_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/units.h"
#include "pg/stream.h"

/*
 * The load rate assumed for the estimates, copy and index builds together:
 * docs/benchmarks.md measured 109 MB/s for the whole load (1463 MB in 13.4 s,
 * 2 copy and 2 index jobs on 2 cores); rounded down. A faster pair of servers
 * only makes the estimates pessimistic.
 */
#define CHECK_LOAD_BYTES_PER_S (INT64_C(100) * 1024 * 1024)

/*
 * Added to the load's time for what the slot also waits through: the schema
 * step, the start of the change stream and its catch-up.
 */
#define CHECK_LOAD_MARGIN_S 60

/* Writing transactions per second above which a source counts as busy. */
#define CHECK_BUSY_XACTS_PER_S 100.0

static void
format_seconds(double s, char *buf, size_t cap)
{
	if (s < 90)
		snprintf(buf, cap, "%.0f s", s);
	else if (s < 90 * 60)
		snprintf(buf, cap, "%.0f min", s / 60);
	else
		snprintf(buf, cap, "%.1f h", s / 3600);
}

/* ---- the source's WAL and transaction rate ---- */

bool
check_sample_begin(Check *c, Error *err)
{
	PGresult *res;

	if (c->src_facts.in_recovery)
		return true;
	if (!pg_query(c->src,
	              "SELECT pg_current_wal_lsn()::text,"
	              " txid_snapshot_xmax(txid_current_snapshot())",
	              0, NULL, &res, err))
		return false;
	snprintf(c->lsn0, sizeof(c->lsn0), "%s", PQgetvalue(res, 0, 0));
	c->xid0 = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c->t0_ms = clock_ms();
	c->sampled = true;
	PQclear(res);
	return true;
}

bool
check_sample_end(Check *c, Error *err)
{
	const char *params[1] = {c->lsn0};
	PGresult *res;
	int64_t elapsed_ms;

	if (!c->sampled)
		return true;
	while (clock_ms() - c->t0_ms < c->cfg->check_wal_sample_ms)
	{
		if (check_interrupted(c, err))
			return false;
		clock_sleep_ms(50);
	}
	if (!pg_query(c->src,
	              "SELECT pg_current_wal_lsn() - $1::pg_lsn,"
	              " txid_snapshot_xmax(txid_current_snapshot())",
	              1, params, &res, err))
		return false;
	elapsed_ms = clock_ms() - c->t0_ms;
	c->sample_s = (double) elapsed_ms / 1000.0;
	c->wal_bytes_per_s = strtod(PQgetvalue(res, 0, 0), NULL) / c->sample_s;
	c->xacts_per_s =
	    (double) (strtoll(PQgetvalue(res, 0, 1), NULL, 10) - c->xid0) /
	    c->sample_s;
	PQclear(res);
	return true;
}

/* ---- WAL: size, time, retention ---- */

bool
check_wal(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	const char *params[1] = {c->selected_oids};
	PGresult *res;
	double data = 0, indexes = 0, left = 0, seconds = 0, retained;
	int ntables = 0, nleft = 0;
	char b1[32], b2[32], b3[32], b4[32], s1[32], object[160], msg[512];

	if (!pg_query(c->src,
	              "SELECT c.oid, pg_indexes_size(c.oid) FROM pg_class c"
	              " WHERE c.oid = ANY($1::oid[])",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));
		const CheckRegistered *r;
		double ix = strtod(PQgetvalue(res, i, 1), NULL);

		if (t == NULL)
			continue;
		ntables++;
		data += (double) t->bytes;
		indexes += ix;
		r = check_registered(c, t->schema, t->name);
		if (!c->load_done && (r == NULL || !r->done))
		{
			left += (double) t->bytes + ix;
			nleft++;
		}
	}
	PQclear(res);
	if (!c->load_done)
		seconds = left / (double) CHECK_LOAD_BYTES_PER_S + CHECK_LOAD_MARGIN_S;
	units_format_bytes((int64_t) data, b1, sizeof(b1));
	units_format_bytes((int64_t) indexes, b2, sizeof(b2));
	format_seconds(seconds, s1, sizeof(s1));
	snprintf(object, sizeof(object), "database %s", c->src_db);
	if (c->load_done)
		check_add(c, CHECK_ID_ESTIMATED_SIZE, CHECK_INFO, object, "", "",
		          "%d tables, %s of data and %s of indexes; the task's load is "
		          "done",
		          ntables, b1, b2);
	else
	{
		units_format_bytes((int64_t) left, b3, sizeof(b3));
		snprintf(msg, sizeof(msg),
		         "assuming %lld MB/s for copy and index builds, plus %d s "
		         "for the schema and the change stream's start",
		         (long long) (CHECK_LOAD_BYTES_PER_S / (1024 * 1024)),
		         CHECK_LOAD_MARGIN_S);
		check_add(c, CHECK_ID_ESTIMATED_SIZE, CHECK_INFO, object, msg, "",
		          "%d tables, %s of data and %s of indexes; %d tables (%s) to "
		          "load, about %s",
		          ntables, b1, b2, nleft, b3, s1);
	}
	if (!c->sampled)
		return true;
	/* what the slot holds already, plus what the source writes meanwhile */
	retained = c->wal_bytes_per_s * seconds + c->slot_retained_bytes;
	units_format_bytes((int64_t) retained, b1, sizeof(b1));
	units_format_bytes((int64_t) c->wal_bytes_per_s, b2, sizeof(b2));
	if (c->load_done)
		snprintf(msg, sizeof(msg),
		         "the task's slot retains about %s of WAL; the source writes "
		         "%s/s (measured over %.1f s)",
		         b1, b2, c->sample_s);
	else
		snprintf(msg, sizeof(msg),
		         "the slot would retain about %s of WAL: the source writes "
		         "%s/s (measured over %.1f s) for about %s%s",
		         b1, b2, c->sample_s, s1,
		         c->slot_retained_bytes > 0 ? ", on top of what the slot holds"
		                                    : "");
	if (cfg->check_wal_free_bytes > 0)
	{
		double free_bytes = (double) cfg->check_wal_free_bytes;

		units_format_bytes((int64_t) free_bytes, b3, sizeof(b3));
		if (retained > free_bytes)
			check_add(
			    c, CHECK_ID_WAL_RETENTION, CHECK_BLOCKER, "source",
			    "the source's disk would fill before the change stream "
			    "catches up, and a full WAL disk stops the source",
			    "free disk space for the source's WAL, migrate at a quieter "
			    "time, or select fewer tables per task",
			    "%s, more than the %s declared free (check.wal_free_space)",
			    msg, b3);
		else if (retained > free_bytes / 2)
			check_add(c, CHECK_ID_WAL_RETENTION, CHECK_WARNING, "source",
			          "little headroom is left if the load runs slower than "
			          "estimated",
			          "free disk space for the source's WAL, or migrate at a "
			          "quieter time",
			          "%s, more than half of the %s declared free", msg, b3);
		else
			check_add(c, CHECK_ID_WAL_RETENTION, CHECK_INFO, "source", "", "",
			          "%s, within the %s declared free", msg, b3);
	}
	else
		check_add(c, CHECK_ID_WAL_RETENTION, CHECK_INFO, "source", "",
		          "declare the disk space free for WAL with --wal-free-space "
		          "(check.wal_free_space) to have it compared",
		          "%s", msg);
	if (c->src_version >= 130000)
	{
		char buf[32];
		int64_t keep_mb;

		if (!pg_query_value(c->src,
		                    "SELECT setting FROM pg_settings"
		                    " WHERE name = 'max_slot_wal_keep_size'",
		                    0, NULL, buf, sizeof(buf), err))
			return false;
		keep_mb = strtoll(buf, NULL, 10);
		units_format_bytes((int64_t) ((double) keep_mb * 1024 * 1024), b4,
		                   sizeof(b4));
		if (keep_mb < 0)
			check_add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_INFO, "source",
			          "the slot keeps every WAL segment the target has not "
			          "confirmed: if pgtide stops for long, the source's disk "
			          "fills; pgtide clean drops the slot",
			          "", "max_slot_wal_keep_size is unlimited (-1)");
		else if (retained > (double) keep_mb * 1024 * 1024)
			check_add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_BLOCKER,
			          "source",
			          "the source would invalidate the slot mid-load, and the "
			          "migration would have to start over",
			          "raise max_slot_wal_keep_size (a reload is enough), or "
			          "migrate at a quieter time",
			          "%s, more than max_slot_wal_keep_size = %s", msg, b4);
		else if (retained > (double) keep_mb * 1024 * 1024 / 2)
			check_add(
			    c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_WARNING, "source",
			    "a slower load than estimated would get the slot "
			    "invalidated",
			    "raise max_slot_wal_keep_size (a reload is enough)",
			    "%s, more than half of max_slot_wal_keep_size = %s", msg, b4);
		else
			check_add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_INFO, "source",
			          "", "", "max_slot_wal_keep_size = %s leaves room for it",
			          b4);
	}
	return true;
}

bool
check_commit_timestamps(Check *c, Error *err)
{
	char buf[16];

	if (!pg_query_value(c->src,
	                    "SELECT current_setting('track_commit_timestamp')", 0,
	                    NULL, buf, sizeof(buf), err))
		return false;
	if (strcmp(buf, "on") != 0)
		return true;
	if (c->sampled && c->xacts_per_s >= CHECK_BUSY_XACTS_PER_S)
		check_add(
		    c, CHECK_ID_TRACK_COMMIT_TIMESTAMP, CHECK_WARNING, "source",
		    "every commit also records its time, which costs the busy "
		    "source I/O and WAL while the load and the change stream add "
		    "their own; pgtide does not need it",
		    "leave it if something else uses commit timestamps; otherwise "
		    "set track_commit_timestamp = off (needs a restart)",
		    "track_commit_timestamp is on, and the source commits about "
		    "%.0f writing transactions/s",
		    c->xacts_per_s);
	else
		check_add(
		    c, CHECK_ID_TRACK_COMMIT_TIMESTAMP, CHECK_INFO, "source",
		    "it costs a busy source I/O per commit; pgtide does not need it",
		    "",
		    "track_commit_timestamp is on (the source was quiet while "
		    "checked)");
	return true;
}

/* ---- pgtide's slots on the source ---- */

bool
check_pgtide_slots(Check *c, Error *err)
{
	StreamSlot *slots = NULL;
	int n = 0;

	if (!stream_list_slots(c->src, "pgtide_", &slots, &n, err))
		return false;
	for (int i = 0; i < n; i++)
	{
		const StreamSlot *sl = &slots[i];
		size_t len = strlen(c->slot);
		/* the task's slot, or a temporary one a load of the task holds */
		bool own =
		    sl->here && strncmp(sl->name, c->slot, len) == 0 &&
		    (sl->name[len] == '\0' ||
		     (sl->temporary && strncmp(sl->name + len, "_reload_", 8) == 0));
		char wal[32], use[64], age[64], fix[512];

		units_format_bytes(sl->retained_bytes < 0 ? 0 : sl->retained_bytes, wal,
		                   sizeof(wal));
		if (sl->active)
			snprintf(use, sizeof(use), "in use by process %d", sl->active_pid);
		else
			snprintf(use, sizeof(use), "inactive");
		if (sl->xmin_age >= 0)
			snprintf(age, sizeof(age), "%lld transactions",
			         (long long) sl->xmin_age);
		else
			snprintf(age, sizeof(age), "unknown");
		if (sl->active)
			snprintf(fix, sizeof(fix),
			         "a pgtide run streams from it or loads through it; "
			         "when its task is done, pgtide clean that task");
		else
			snprintf(fix, sizeof(fix),
			         "if its task is finished or abandoned, run pgtide clean "
			         "with that task's --task, source and target, or SELECT "
			         "pg_drop_replication_slot('%s') in database %s",
			         sl->name, sl->database);
		if (own)
			check_add(c, CHECK_ID_PGTIDE_SLOT, CHECK_INFO, sl->name,
			          sl->temporary
			              ? "a running load of the task holds it; it goes "
			                "with the load's connection"
			              : "the task's own slot: the change stream resumes "
			                "from it, and the source keeps its WAL until then",
			          "",
			          "replication slot \"%s\"%s is %s, retains %s of WAL; "
			          "catalog_xmin age %s",
			          sl->name, sl->temporary ? " (temporary)" : "", use, wal,
			          age);
		else
			check_add(c, CHECK_ID_PGTIDE_SLOT, CHECK_WARNING, sl->name,
			          "a slot of another pgtide task keeps WAL and old catalog "
			          "rows on the source for as long as it exists, used or "
			          "not, until the disk fills",
			          fix,
			          "replication slot \"%s\"%s of pgtide in database %s, not "
			          "this task's, is %s, retains %s of WAL; catalog_xmin "
			          "age %s",
			          sl->name, sl->temporary ? " (temporary)" : "",
			          sl->database, use, wal, age);
	}
	free(slots);
	return true;
}
