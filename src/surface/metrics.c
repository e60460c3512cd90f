/*
 * metrics: the /metrics body (docs/metrics.md lists each metric). Counts
 * of the load come from the task's state as the HTTP thread last read it
 * (what status shows: committed chunks), the stream's from its latest
 * report, or with several targets from what each target's process last
 * recorded in its state; nothing here waits on a thread that does the work.
 *
 * It must never invent a number: a value nobody could read (the source
 * unreachable, no state yet) is left out, not written as 0.
 */
#include "surface/surface_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

#include "load/throttle.h"

/* Families with only the task's label. */
static bool
task_metric(Buf *out, const char *name, PromType type, const char *help,
            const char *task, double value, Error *err)
{
	PromLabel l[1] = {{"task", task}};

	return prom_family(out, name, type, help, err) &&
	       prom_sample(out, name, l, 1, value, err);
}

/*
 * What the samples of one target are made of: its labels (the task's, and
 * the target's name with several targets), its state as last read, and its
 * stream (live: the process's own report, with the numbers only that report
 * has: conflicts, the buffer, retries).
 */
typedef struct View
{
	PromLabel l[2];
	int nl;
	const SurfaceRead *r;
	SurfaceCdc c;
	bool live;
	bool following;
} View;

/* One sample of v, with one more label when lname is not NULL. */
static bool
sample(Buf *out, const char *name, const View *v, const char *lname,
       const char *lvalue, double value, Error *err)
{
	PromLabel l[3];
	int n = v->nl;

	memcpy(l, v->l, sizeof(PromLabel) * (size_t) n);
	if (lname != NULL)
		l[n++] = (PromLabel){lname, lvalue};
	return prom_sample(out, name, l, n, value, err);
}

/* The phases a task moves through, in order, for pgtide_phase. */
static const StatePhase phases[] = {
    STATE_PHASE_NEW,    STATE_PHASE_LOAD, STATE_PHASE_POSTDATA,
    STATE_PHASE_LOADED, STATE_PHASE_CDC,  STATE_PHASE_CUTOVER,
};

/* Each family once, with the samples of every view whose state was read. */
static bool
load_metrics(const View *views, int n, Buf *out, Error *err)
{
	static const struct
	{
		const char *name;
		PromType type;
		const char *help;
	} fam[] = {
	    {"pgtide_table_rows_copied_total", PROM_COUNTER,
	     "Rows of the table copied by the full load (committed chunks)."},
	    {"pgtide_table_bytes_copied_total", PROM_COUNTER,
	     "COPY bytes of the table copied by the full load (committed "
	     "chunks)."},
	    {"pgtide_table_chunks_done", PROM_GAUGE,
	     "Chunks of the table copied and committed."},
	    {"pgtide_table_chunks_planned", PROM_GAUGE,
	     "Chunks the table is cut into (0 before its load is planned)."},
	    {"pgtide_postdata_steps_done", PROM_GAUGE,
	     "Post-data steps (indexes, constraints, triggers) built on the "
	     "target."},
	    {"pgtide_postdata_steps_planned", PROM_GAUGE,
	     "Post-data steps the load has to build."},
	    {"pgtide_phase", PROM_GAUGE,
	     "1 for the phase the task is in, 0 for the others."},
	};
	bool any = false;

	for (int k = 0; k < n; k++)
		any = any || views[k].r->state_ok;
	for (size_t f = 0; any && f < sizeof(fam) / sizeof(fam[0]); f++)
	{
		if (!prom_family(out, fam[f].name, fam[f].type, fam[f].help, err))
			return false;
		for (int k = 0; k < n; k++)
		{
			const View *v = &views[k];
			const StateStatus *st = &v->r->st;
			bool ok = true;

			if (!v->r->state_ok)
				continue;
			for (int i = 0; ok && f < 4 && i < st->ntables; i++)
			{
				const StateTableStatus *t = &st->tables[i];
				double x = f == 0   ? (double) t->rows
				           : f == 1 ? (double) t->bytes
				           : f == 2 ? (double) t->chunks_done
				                    : (double) t->chunks;

				ok = sample(out, fam[f].name, v, "table", t->name, x, err);
			}
			if (f == 4 || f == 5)
				ok = sample(out, fam[f].name, v, NULL, NULL,
				            f == 4 ? st->postdata_done : st->postdata_steps,
				            err);
			for (size_t i = 0;
			     ok && f == 6 && i < sizeof(phases) / sizeof(phases[0]); i++)
				ok = sample(out, fam[f].name, v, "phase",
				            state_phase_name(phases[i]),
				            st->task.phase == phases[i] ? 1 : 0, err);
			if (!ok)
				return false;
		}
	}
	return true;
}

enum
{
	M_TXNS,
	M_CHANGES,
	M_IGNORED,
	M_FILTERED,
	M_RATE_CHANGES,
	M_RATE_TXNS,
	M_CONFLICTS,
	M_LAG_BYTES,
	M_LAG_SECONDS,
	M_BUFFERED,
	M_SPILLED,
	M_RETRIES,
	M_FOLLOWING
};

static const struct
{
	const char *name;
	PromType type;
	const char *help;
	bool live_only; /* only the process's own report has it */
} cdc_fam[] = {
    [M_TXNS] = {"pgtide_cdc_transactions_applied_total", PROM_COUNTER,
                "Source transactions applied to the target since the "
                "stream's process started.",
                false},
    [M_CHANGES] = {"pgtide_cdc_changes_applied_total", PROM_COUNTER,
                   "Row changes applied to the target since the stream's "
                   "process started.",
                   false},
    [M_IGNORED] = {"pgtide_cdc_changes_ignored_total", PROM_COUNTER,
                   "Changes of tables the task does not move, ignored as "
                   "cdc.unknown_tables = ignore says.",
                   false},
    [M_FILTERED] = {"pgtide_cdc_changes_filtered_total", PROM_COUNTER,
                    "New row versions a row filter or the routing left out "
                    "(an INSERT dropped, an UPDATE applied as a DELETE).",
                    false},
    [M_RATE_CHANGES] = {"pgtide_cdc_apply_rate_changes_per_second", PROM_GAUGE,
                        "Row changes applied per second over the stream's "
                        "last progress interval.",
                        false},
    [M_RATE_TXNS] = {"pgtide_cdc_apply_rate_transactions_per_second",
                     PROM_GAUGE,
                     "Source transactions applied per second over the "
                     "stream's last progress interval.",
                     false},
    /* one sample per kind: a missing row and a row already there call for
       different looks at the target */
    [M_CONFLICTS] = {"pgtide_cdc_conflicts_total", PROM_COUNTER,
                     "Rows missing or already there on the target, met under "
                     "cdc.on_conflict skip or upsert, by kind.",
                     true},
    [M_LAG_BYTES] = {"pgtide_cdc_lag_bytes", PROM_GAUGE,
                     "Source WAL not yet flushed on the target (0 when caught "
                     "up).",
                     false},
    [M_LAG_SECONDS] = {"pgtide_cdc_lag_seconds", PROM_GAUGE,
                       "Now minus the source commit time of the last applied "
                       "transaction (0 when idle).",
                       false},
    [M_BUFFERED] = {"pgtide_cdc_buffered_bytes", PROM_GAUGE,
                    "Memory held by transactions buffered for the applier.",
                    true},
    [M_SPILLED] = {"pgtide_cdc_spilled_bytes_total", PROM_COUNTER,
                   "Bytes of buffered transactions written to spill files.",
                   true},
    [M_RETRIES] = {"pgtide_cdc_retries_total", PROM_COUNTER,
                   "Times the stream found a side unreachable or broken and "
                   "connected again.",
                   true},
    [M_FOLLOWING] = {"pgtide_cdc_following", PROM_GAUGE,
                     "1 while the change stream reports (with one target: "
                     "once it has reported in this process), 0 before.",
                     false},
};

static bool
cdc_sample(Buf *out, int m, const View *v, Error *err)
{
	const CdcProgress *p = &v->c.p;
	const char *name = cdc_fam[m].name;

	switch (m)
	{
		case M_CONFLICTS:
			for (int k = 0; k < APPLY_NCONFLICTS; k++)
				if (!sample(out, name, v, "kind", apply_conflict_name(k),
				            (double) p->conflicts_by[k], err))
					return false;
			return true;
		case M_RETRIES:
			return sample(out, name, v, "side", "source",
			              (double) p->source_retries, err) &&
			       sample(out, name, v, "side", "target",
			              (double) p->target_retries, err);
		default:
			break;
	}
	return sample(out, name, v, NULL, NULL,
	              m == M_TXNS           ? (double) p->txns
	              : m == M_CHANGES      ? (double) p->changes
	              : m == M_IGNORED      ? (double) p->ignored
	              : m == M_FILTERED     ? (double) p->filtered
	              : m == M_RATE_CHANGES ? p->changes_per_s
	              : m == M_RATE_TXNS    ? p->txns_per_s
	              : m == M_LAG_BYTES    ? (double) p->lag_bytes
	              : m == M_LAG_SECONDS  ? p->lag_seconds
	              : m == M_BUFFERED     ? (double) p->buffered_bytes
	              : m == M_SPILLED      ? (double) p->spilled_bytes
	                                    : (v->following ? 1 : 0),
	              err);
}

/*
 * The stream's families. With one target, from the process's own report
 * (zeros before it reports); with several, from each target's state, left
 * out for a target whose state could not be read.
 */
static bool
cdc_metrics(const View *views, int n, Buf *out, Error *err)
{
	for (int m = 0; m < (int) (sizeof(cdc_fam) / sizeof(cdc_fam[0])); m++)
	{
		bool family = false;

		for (int k = 0; k < n; k++)
		{
			const View *v = &views[k];

			if ((!v->live && (cdc_fam[m].live_only || !v->r->state_ok)))
				continue;
			if (!family && !prom_family(out, cdc_fam[m].name, cdc_fam[m].type,
			                            cdc_fam[m].help, err))
				return false;
			family = true;
			if (!cdc_sample(out, m, v, err))
				return false;
		}
	}
	return true;
}

/* Each slot's retained WAL, where its target's state and the source told. */
static bool
slot_metrics(const View *views, int n, Buf *out, Error *err)
{
	const char *name = "pgtide_slot_retained_wal_bytes";
	bool family = false;

	for (int k = 0; k < n; k++)
	{
		const SurfaceRead *r = views[k].r;

		if (r->retained_wal < 0 || !r->state_ok)
			continue;
		if (!family &&
		    !prom_family(out, name, PROM_GAUGE,
		                 "WAL the task's replication slot holds on the "
		                 "source (its restart_lsn to the current WAL end).",
		                 err))
			return false;
		family = true;
		if (!sample(out, name, &views[k], "slot", r->st.task.slot_name,
		            (double) r->retained_wal, err))
			return false;
	}
	return true;
}

/* The load's throttle, while one runs in this process. */
static bool
throttle_metrics(const char *task, Buf *out, Error *err)
{
	static const ThrottleMode modes[] = {THROTTLE_OFF, THROTTLE_OPEN,
	                                     THROTTLE_SLOWING, THROTTLE_RECOVERING};
	static const char *const stats[] = {"last", "window", "p95"};
	ThrottleState st;
	const GateCaps *c = &st.caps;
	int64_t lat[3];

	if (!throttle_read(&st))
		return true;
	lat[0] = st.last_ms;
	lat[1] = st.window_ms;
	lat[2] = st.p95_ms;
	if (!prom_family(out, "pgtide_throttle_state", PROM_GAUGE,
	                 "1 for the state the load's throttle is in, 0 for the "
	                 "others (off: adaptive mode off).",
	                 err))
		return false;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
	{
		PromLabel l[2] = {{"task", task},
		                  {"state", throttle_mode_name(modes[i])}};

		if (!prom_sample(out, "pgtide_throttle_state", l, 2,
		                 st.mode == modes[i] ? 1 : 0, err))
			return false;
	}
	if (st.mode != THROTTLE_OFF)
	{
		if (!prom_family(out, "pgtide_throttle_probe_latency_seconds",
		                 PROM_GAUGE,
		                 "The source's probe latency: the last probe, the "
		                 "median of the last 5 (what the throttle decides "
		                 "on) and the p95 of the last 60.",
		                 err))
			return false;
		for (int i = 0; i < 3; i++)
		{
			PromLabel l[2] = {{"task", task}, {"stat", stats[i]}};

			if (lat[i] >= 0 &&
			    !prom_sample(out, "pgtide_throttle_probe_latency_seconds", l, 2,
			                 (double) lat[i] / 1000.0, err))
				return false;
		}
		if (!task_metric(out, "pgtide_throttle_probe_bound_seconds", PROM_GAUGE,
		                 "throttle.probe_latency: the probe latency over "
		                 "which the load slows down.",
		                 task, (double) st.bound_ms / 1000.0, err) ||
		    !task_metric(out, "pgtide_throttle_probes_total", PROM_COUNTER,
		                 "Probes the throttle ran on the source.", task,
		                 (double) st.probes, err) ||
		    !task_metric(out, "pgtide_throttle_probe_failing", PROM_GAUGE,
		                 "1 while the probe cannot run (the load goes on at "
		                 "its last factor).",
		                 task, st.probe_error[0] ? 1 : 0, err))
			return false;
	}
	return task_metric(out, "pgtide_throttle_factor", PROM_GAUGE,
	                   "Share of its caps the load may use now (1: not "
	                   "slowed).",
	                   task, st.factor, err) &&
	       task_metric(out, "pgtide_throttle_slowdowns_total", PROM_COUNTER,
	                   "Times the adaptive throttle began slowing the load.",
	                   task, (double) st.slowdowns, err) &&
	       task_metric(out, "pgtide_throttle_cap_copy_workers", PROM_GAUGE,
	                   "Copy workers allowed at once before the factor (0: no "
	                   "cap).",
	                   task, c->workers, err) &&
	       task_metric(out, "pgtide_throttle_cap_rows_per_second", PROM_GAUGE,
	                   "The load's rows per second allowed before the factor "
	                   "(0: no cap).",
	                   task, (double) c->rows_per_s, err) &&
	       task_metric(out, "pgtide_throttle_cap_bytes_per_second", PROM_GAUGE,
	                   "The load's COPY bytes per second allowed before the "
	                   "factor (0: no cap).",
	                   task, (double) c->bytes_per_s, err) &&
	       task_metric(out, "pgtide_throttle_cap_index_builds", PROM_GAUGE,
	                   "Index builds allowed at once (0: copy.index_jobs).",
	                   task, c->builds, err) &&
	       task_metric(out, "pgtide_throttle_copy_workers_running", PROM_GAUGE,
	                   "Copy workers copying a chunk now.", task,
	                   st.gate.active, err) &&
	       task_metric(out, "pgtide_throttle_index_builds_running", PROM_GAUGE,
	                   "Post-data steps being built now.", task,
	                   st.gate.builds_active, err) &&
	       task_metric(out, "pgtide_throttle_rows_total", PROM_COUNTER,
	                   "Rows the copy workers passed through the throttle "
	                   "(counted every 128 rows, before their chunk commits).",
	                   task, (double) st.gate.rows, err) &&
	       task_metric(out, "pgtide_throttle_bytes_total", PROM_COUNTER,
	                   "COPY bytes the copy workers passed through the "
	                   "throttle.",
	                   task, (double) st.gate.bytes, err) &&
	       task_metric(out, "pgtide_throttle_wait_seconds_total", PROM_COUNTER,
	                   "Time copy workers spent waiting on the rate caps.",
	                   task, (double) st.gate.slept_ms / 1000.0, err);
}

/* The guards' numbers (docs/metrics.md); unknown ones are left out. */
static bool
guard_metrics(const GuardReport *r, const char *task, Buf *out, Error *err)
{
	static const char *const actions[] = {"warn", "pause", "stop"};
	const char *name;

	if (!prom_family(out, "pgtide_guard_wal_threshold_bytes", PROM_GAUGE,
	                 "The retained WAL guard's thresholds, by action (an "
	                 "action that is off is left out).",
	                 err))
		return false;
	for (int a = 0; a < 3; a++)
	{
		PromLabel l[2] = {{"task", task}, {"action", actions[a]}};
		int64_t v = a == 0   ? r->warn_bytes
		            : a == 1 ? r->pause_bytes
		                     : r->stop_bytes;

		if (v > 0 && !prom_sample(out, "pgtide_guard_wal_threshold_bytes", l, 2,
		                          (double) v, err))
			return false;
	}
	name = "pgtide_guard_wal_actions_total";
	if (!prom_family(out, name, PROM_COUNTER,
	                 "Times the retained WAL crossed a threshold upwards, by "
	                 "action, in this process.",
	                 err))
		return false;
	for (int a = 0; a < 3; a++)
	{
		PromLabel l[2] = {{"task", task}, {"action", actions[a]}};

		if (!prom_sample(out, name, l, 2, (double) r->actions[a + 1], err))
			return false;
	}
	name = "pgtide_guard_wal_level";
	if (!prom_family(out, name, PROM_GAUGE,
	                 "1 for the retained WAL guard's level now (ok, warn, "
	                 "pause, stop), 0 for the others.",
	                 err))
		return false;
	for (int lv = GUARD_LEVEL_OK; lv <= GUARD_LEVEL_STOP; lv++)
	{
		PromLabel l[2] = {{"task", task},
		                  {"level", guard_level_name((GuardLevel) lv)}};

		if (!prom_sample(out, name, l, 2, r->level == (GuardLevel) lv, err))
			return false;
	}
	if (!task_metric(out, "pgtide_guard_paused", PROM_GAUGE,
	                 "1 while the guard pauses what pgtide adds on the "
	                 "source (the load's chunks, new tables' joins).",
	                 task, r->paused ? 1 : 0, err) ||
	    !task_metric(out, "pgtide_guard_heartbeats_total", PROM_COUNTER,
	                 "Heartbeat messages written in the slot's database.", task,
	                 (double) r->heartbeats, err))
		return false;
	if (r->retained_bytes >= 0 &&
	    !task_metric(out, "pgtide_guard_retained_wal_bytes", PROM_GAUGE,
	                 "WAL the task's slot retains on the source, as the guard "
	                 "last read it.",
	                 task, (double) r->retained_bytes, err))
		return false;
	if (r->oldest_xmin_age >= 0 &&
	    !task_metric(out, "pgtide_guard_source_oldest_xmin_age", PROM_GAUGE,
	                 "Age in transactions of the oldest xmin any session or "
	                 "slot holds on the source.",
	                 task, (double) r->oldest_xmin_age, err))
		return false;
	if (r->snapshot_age_s >= 0 &&
	    !task_metric(out, "pgtide_guard_snapshot_age_seconds", PROM_GAUGE,
	                 "How long pgtide's oldest session holding an xmin on the "
	                 "source (the load's snapshot) has held it.",
	                 task, r->snapshot_age_s, err))
		return false;
	if (r->xid_age >= 0 &&
	    !task_metric(out, "pgtide_guard_database_xid_age", PROM_GAUGE,
	                 "age(datfrozenxid) of the source database.", task,
	                 (double) r->xid_age, err))
		return false;
	if (r->dead_rows >= 0 &&
	    !task_metric(out, "pgtide_guard_source_dead_rows", PROM_GAUGE,
	                 "Dead rows in the source database's tables (n_dead_tup), "
	                 "which VACUUM cannot remove while an older xmin is held.",
	                 task, (double) r->dead_rows, err))
		return false;
	return true;
}

bool
surface_metrics(Surface *s, Buf *out, Error *err)
{
	const char *task = s->cfg->task;
	PromLabel build[2] = {{"version", s->version}, {"command", s->command}};
	View *views = calloc((size_t) s->ntargets, sizeof(View));
	SurfaceGuard g;
	bool ok;

	if (views == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	surface_refresh(s, false);
	for (int k = 0; k < s->ntargets; k++)
	{
		View *v = &views[k];

		v->l[0] = (PromLabel){"task", task};
		v->nl = 1;
		if (s->several)
			v->l[v->nl++] =
			    (PromLabel){"target", s->targets[k].cfg->shard_target};
		v->r = &s->targets[k].read;
		surface_target_cdc(s, k, &v->c, &v->live);
		v->following = v->c.have && (v->live || clock_ms() - v->c.at_ms <=
		                                            surface_stale_ms(s));
	}
	surface_guard_copy(s, &g);
	ok = (!g.have || guard_metrics(&g.r, task, out, err)) &&
	     prom_family(out, "pgtide_build_info", PROM_GAUGE,
	                 "Always 1; the labels say which pgtide serves.", err) &&
	     prom_sample(out, "pgtide_build_info", build, 2, 1, err) &&
	     load_metrics(views, s->ntargets, out, err) &&
	     cdc_metrics(views, s->ntargets, out, err) &&
	     throttle_metrics(task, out, err) &&
	     slot_metrics(views, s->ntargets, out, err);
	free(views);
	return ok;
}
