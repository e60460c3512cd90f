/*
 * status: `pgtide status`, and the last error a failed command leaves in
 * the task's state for it. Status reads only: it never creates the state
 * schema, and the source is optional.
 */
#include "cmd/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/json_read.h"
#include "base/log.h"
#include "base/units.h"
#include "load/insert_only.h"
#include "load/newtables.h"
#include "load/throttle.h"
#include "pg/pg.h"
#include "pg/stream.h"
#include "state/state.h"

void
task_note_error(const TaskConfig *cfg, const Error *failure)
{
	PgConn *tgt = NULL;
	State state;
	Error err = ERR_INIT;
	bool exists = false;

	/* ERR_BUSY: the task is another process's, and so is its last error */
	if (cfg->target_uri == NULL || failure->kind == ERR_INTERRUPTED ||
	    failure->kind == ERR_USAGE || failure->kind == ERR_CONFIG ||
	    failure->kind == ERR_BUSY)
		return;
	/* best effort, no retry: the target may be what failed */
	if (pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide", 0, &tgt,
	               &err) &&
	    state_attach(&state, tgt, cfg->state_schema, cfg->task, &exists,
	                 &err) &&
	    exists)
		state_task_set_error(&state, failure->message, &err);
	if (err_is_set(&err))
		log_debug("could not record the error in the task's state: %s",
		          err.message);
	pg_close(tgt);
}

/* A JSON member: a string, or null when empty. */
static void
json_text(FILE *out, const char *key, const char *value)
{
	json_write_string(out, key);
	fputc(':', out);
	if (value == NULL || value[0] == '\0')
		fputs("null", out);
	else
		json_write_string(out, value);
	fputc(',', out);
}

/* An LSN as a JSON string, null when invalid. */
static void
json_lsn(FILE *out, const char *key, Lsn lsn)
{
	char text[LSN_TEXT_MAX];

	json_text(out, key, lsn == LSN_INVALID ? NULL : lsn_format(lsn, text));
}

/* A number member, or null when the stream has not reported yet. */
static void
json_number(FILE *out, const char *key, double value, bool known)
{
	json_write_string(out, key);
	if (known)
		fprintf(out, ":%.15g,", value);
	else
		fputs(":null,", out);
}

/* pgtide's slots on the source, as status shows them */
typedef struct StatusSlots
{
	bool read; /* the source was reached and listed */
	StreamSlot *slots;
	int n;
} StatusSlots;

/*
 * Whether the slot is the task's own, in this database: its slot, or a
 * temporary one a load of the task holds (pgtide_TASK_reload_PID).
 */
static bool
own_slot(const StateStatus *st, const StreamSlot *sl)
{
	size_t len = strlen(st->task.slot_name);

	return sl->here && strncmp(sl->name, st->task.slot_name, len) == 0 &&
	       (sl->name[len] == '\0' ||
	        (sl->temporary && strncmp(sl->name + len, "_reload_", 8) == 0));
}

static void
status_json_slots(FILE *out, const StateStatus *st, const StatusSlots *ss)
{
	fputs(",\"slots\":", out);
	if (!ss->read)
	{
		fputs("null", out);
		return;
	}
	fputc('[', out);
	for (int i = 0; i < ss->n; i++)
	{
		const StreamSlot *sl = &ss->slots[i];
		bool own = own_slot(st, sl);

		fputs(i ? ",{" : "{", out);
		json_text(out, "name", sl->name);
		json_text(out, "database", sl->database);
		fprintf(out,
		        "\"this_task\":%s,\"active\":%s,\"temporary\":%s,"
		        "\"retained_wal_bytes\":%lld,",
		        own ? "true" : "false", sl->active ? "true" : "false",
		        sl->temporary ? "true" : "false",
		        (long long) sl->retained_bytes);
		json_number(out, "catalog_xmin_age", (double) sl->xmin_age,
		            sl->xmin_age >= 0);
		/* the state records when the task's own slot was made */
		json_write_string(out, "created_at");
		fputc(':', out);
		if (own && st->task.slot_created_at[0])
			json_write_string(out, st->task.slot_created_at);
		else
			fputs("null", out);
		fputc('}', out);
	}
	fputc(']', out);
}

static void
status_text_slots(FILE *out, const StateStatus *st, const StatusSlots *ss)
{
	if (!ss->read)
		return;
	fprintf(out, "pgtide's replication slots on the source: %d\n", ss->n);
	for (int i = 0; i < ss->n; i++)
	{
		const StreamSlot *sl = &ss->slots[i];
		bool own = own_slot(st, sl);
		char wal[32], age[64] = "unknown", made[96] = "";

		units_format_bytes(sl->retained_bytes < 0 ? 0 : sl->retained_bytes, wal,
		                   sizeof(wal));
		if (sl->xmin_age >= 0)
			snprintf(age, sizeof(age), "%lld transactions",
			         (long long) sl->xmin_age);
		if (own && st->task.slot_created_at[0])
			snprintf(made, sizeof(made), ", made %s", st->task.slot_created_at);
		fprintf(out,
		        "  %s%s (database %s): %s%s, retains %s of WAL, catalog_xmin "
		        "age %s%s\n",
		        sl->name, own ? " (this task)" : "", sl->database,
		        sl->active ? "active" : "inactive",
		        sl->temporary ? ", temporary" : "", wal, age, made);
	}
}

/* The process running the task, or null: {host, pid, command, since}. */
static void
json_process(FILE *out, const StateProcess *p)
{
	json_write_string(out, "process");
	if (!p->running)
	{
		fputs(":null,", out);
		return;
	}
	fputs(":{", out);
	json_text(out, "host", p->host);
	json_write_string(out, "pid");
	if (p->known)
		fprintf(out, ":%d,", p->pid);
	else
		fputs(":null,", out);
	json_text(out, "command", p->command);
	json_text(out, "since", p->since);
	json_text(out, "application_name", p->known ? NULL : p->session);
	fprintf(out, "\"target_pid\":%d},", p->backend_pid);
}

/* One line: who runs the task, or that nothing does. */
static void
text_process(FILE *out, const StateProcess *p)
{
	if (!p->running)
		fprintf(out, "process: none running\n");
	else if (p->known)
		fprintf(out,
		        "process: running: pgtide %s, pid %d on host %s, since "
		        "%s\n",
		        p->command, p->pid, p->host, p->since);
	else
		fprintf(out,
		        "process: running: the target's session %d holds the task's "
		        "lock (application \"%s\")\n",
		        p->backend_pid, p->session);
}

/*
 * One line on the load's throttle, when the running process recorded one:
 * its state and share, read from the JSON it wrote (throttle_format_json
 * writes these two members first, in this order).
 */
static void
text_throttle(FILE *out, const StateProcess *p)
{
	char state[16];
	double factor;

	if (!p->running || !p->known || p->throttle[0] == '\0' ||
	    sscanf(p->throttle, "{\"state\":\"%15[a-z]\",\"factor\":%lf", state,
	           &factor) != 2)
		return;
	fprintf(out, "throttle: %s, the load at %.0f%% of its caps\n", state,
	        factor * 100.0);
}

/*
 * The load's throttle: this process's own when it runs the load (/status),
 * else what the running process last recorded, else null.
 */
static void
status_json_throttle(FILE *out, const StateProcess *proc)
{
	ThrottleState ts;
	char json[THROTTLE_JSON_MAX];

	fputs(",\"throttle\":", out);
	if (throttle_read(&ts) && throttle_format_json(&ts, json, sizeof(json)))
		fputs(json, out);
	else if (proc->running && proc->known && proc->throttle[0] != '\0')
		fputs(proc->throttle, out);
	else
		fputs("null", out);
}

static void
status_json(FILE *out, const TaskConfig *cfg, const StateStatus *st,
            const StateProcess *proc, const PGresult *slot,
            const StatusSlots *ss, const InsertOnlyWatch *io,
            const NewTables *nt)
{
	const StateCdc *c = &st->cdc;
	bool cdc = st->has_cdc;

	fputs("{\"task\":", out);
	json_write_string(out, cfg->task);
	fputc(',', out);
	json_text(out, "phase", state_phase_name(st->task.phase));
	json_process(out, proc);
	json_text(out, "slot_name", st->task.slot_name);
	json_lsn(out, "consistent_lsn", st->task.consistent_lsn);
	json_number(out, "runs", st->task.run, true);
	json_text(out, "updated_at", st->updated_at);
	json_lsn(out, "cdc_applied_lsn", cdc ? c->applied_lsn : LSN_INVALID);
	json_lsn(out, "cdc_flushed_lsn", cdc ? c->flushed_lsn : LSN_INVALID);
	json_number(out, "cdc_lag_bytes", (double) c->lag_bytes, cdc);
	json_number(out, "cdc_lag_seconds", c->lag_seconds, cdc);
	json_number(out, "cdc_txns_per_s", c->txns_per_s, cdc);
	json_number(out, "cdc_changes_per_s", c->changes_per_s, cdc);
	json_number(out, "cdc_txns", (double) c->txns, cdc);
	json_number(out, "cdc_changes", (double) c->changes, cdc);
	json_number(out, "cdc_ignored_changes", (double) c->ignored, cdc);
	json_number(out, "cdc_filtered_changes", (double) c->filtered, cdc);
	json_text(out, "cdc_updated_at", st->cdc_updated_at);
	json_text(out, "cdc_outage", st->cdc.outage);
	/* the guard's report, written as one JSON object by the guard */
	fprintf(out, "\"guard\":%s,", st->guard != NULL ? st->guard : "null");
	json_text(out, "last_error", st->last_error);
	json_text(out, "last_error_at", st->last_error_at);
	fprintf(out, "\"postdata_steps\":%d,\"postdata_done\":%d,",
	        st->postdata_steps, st->postdata_done);
	fputs("\"slot\":", out);
	if (slot != NULL && PQntuples(slot) == 1)
		fprintf(out,
		        "{\"active\":%s,\"retained_wal_bytes\":%s,"
		        "\"unconfirmed_bytes\":%s}",
		        PQgetvalue(slot, 0, 0), PQgetvalue(slot, 0, 1),
		        PQgetvalue(slot, 0, 2));
	else
		fputs("null", out);
	fputc(',', out);
	json_text(out, "slot_created_at", st->task.slot_created_at);
	fprintf(out, "\"copy_only\":%s", st->task.copy_only ? "true" : "false");
	status_json_throttle(out, proc);
	status_json_slots(out, st, ss);
	fputs(",\"insert_only\":[", out);
	for (int i = 0; i < io->n; i++)
	{
		const StateInsertOnly *t = &io->tables[i];
		char name[300];

		snprintf(name, sizeof(name), "%s.%s", t->src_schema, t->src_name);
		fputs(i ? ",{" : "{", out);
		json_text(out, "table", name);
		json_text(out, "diverged_at", t->diverged ? t->diverged_at : NULL);
		json_write_string(out, "reason");
		fputc(':', out);
		if (t->diverged)
			json_write_string(out, t->reason);
		else
			fputs("null", out);
		fputc('}', out);
	}
	fputs("],\"new_tables\":[", out);
	for (int i = 0; i < nt->n; i++)
	{
		if (i)
			fputc(',', out);
		json_write_string(out, nt->names[i]);
	}
	fputs("],\"tables\":[", out);
	for (int i = 0; i < st->ntables; i++)
	{
		const StateTableStatus *t = &st->tables[i];

		fputs(i ? ",{" : "{", out);
		json_text(out, "table", t->name);
		json_text(out, "state", t->state);
		json_lsn(out, "snapshot_lsn", t->snapshot_lsn);
		fprintf(out,
		        "\"loads\":%d,\"chunks\":%d,\"chunks_done\":%d,"
		        "\"rows\":%lld,\"bytes\":%lld}",
		        t->loads, t->chunks, t->chunks_done, (long long) t->rows,
		        (long long) t->bytes);
	}
	fputs("]}\n", out);
}


/* A number of the guard's report in bytes, for a person: "3.1 MB". */
static const char *
guard_bytes(const JsonDoc *doc, const char *key, char *buf, size_t cap)
{
	const JsonNode *n = json_get(doc, &doc->nodes[0], key);

	if (n == NULL || n->type != JSON_NUMBER)
		return NULL;
	units_format_bytes(strtoll(n->text, NULL, 10), buf, cap);
	return buf;
}

/*
 * The guard's report (one JSON object the guard wrote) as one line: its
 * level, what the slot retains against the thresholds that are on, and its
 * last message. A report that does not read is printed as it is.
 */
static void
print_guard(FILE *out, const char *report)
{
	static const char *const limits[][2] = {{"wal_warn_bytes", "warn"},
	                                        {"wal_pause_bytes", "pause"},
	                                        {"wal_stop_bytes", "stop"}};
	JsonDoc doc;
	Error err = ERR_INIT;
	const JsonNode *level, *paused, *message;
	char held[32], limit[32];
	bool first = true;

	if (!json_parse(&doc, "guard", report, strlen(report), &err) ||
	    doc.nodes[0].type != JSON_OBJECT)
	{
		fprintf(out, "guard: %s\n", report);
		if (doc.n > 0)
			json_doc_free(&doc);
		return;
	}
	level = json_get(&doc, &doc.nodes[0], "level");
	paused = json_get(&doc, &doc.nodes[0], "paused");
	message = json_get(&doc, &doc.nodes[0], "message");
	fprintf(out, "guard: %s%s",
	        level != NULL && level->text != NULL ? level->text : "?",
	        paused != NULL && paused->type == JSON_TRUE ? ", paused" : "");
	if (guard_bytes(&doc, "retained_wal_bytes", held, sizeof(held)) != NULL)
		fprintf(out, "; the slot retains %s", held);
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (guard_bytes(&doc, limits[i][0], limit, sizeof(limit)) != NULL)
		{
			fprintf(out, "%s%s at %s", first ? " (" : ", ", limits[i][1],
			        limit);
			first = false;
		}
	if (!first)
		fputc(')', out);
	if (message != NULL && message->type == JSON_STRING)
		fprintf(out, "; %s", message->text);
	fputc('\n', out);
	json_doc_free(&doc);
}

static void
status_text(FILE *out, const TaskConfig *cfg, const StateStatus *st,
            const StateProcess *proc, const PGresult *slot,
            const StatusSlots *ss, const InsertOnlyWatch *io,
            const NewTables *nt)
{
	char lsn[LSN_TEXT_MAX], applied[LSN_TEXT_MAX], flushed[LSN_TEXT_MAX];
	int done = 0;

	for (int i = 0; i < st->ntables; i++)
		done += strcmp(st->tables[i].state, "done") == 0;
	fprintf(out, "task %s: phase %s (run %d), slot %s, consistent point %s\n",
	        cfg->task, state_phase_name(st->task.phase), st->task.run,
	        st->task.copy_only ? "none (loaded by pgtide copy)"
	                           : st->task.slot_name,
	        st->task.consistent_lsn == LSN_INVALID
	            ? "-"
	            : lsn_format(st->task.consistent_lsn, lsn));
	text_process(out, proc);
	text_throttle(out, proc);
	fprintf(out,
	        "load: %d of %d tables done; indexes and constraints: "
	        "%d of %d steps\n",
	        done, st->ntables, st->postdata_done, st->postdata_steps);
	for (int i = 0, shown = 0; i < st->ntables && shown < 10; i++)
	{
		const StateTableStatus *t = &st->tables[i];

		if (strcmp(t->state, "done") == 0)
			continue;
		fprintf(out, "  %-40s %-8s chunk %d of %d, %lld rows\n", t->name,
		        t->state, t->chunks_done, t->chunks, (long long) t->rows);
		shown++;
	}
	if (st->has_cdc)
		fprintf(out,
		        "cdc: lag %lld bytes, %.3f s; %.1f txns/s, %.1f changes/s; "
		        "applied %s, flushed %s (%lld txns, %lld changes; as of "
		        "%s)\n",
		        (long long) st->cdc.lag_bytes, st->cdc.lag_seconds,
		        st->cdc.txns_per_s, st->cdc.changes_per_s,
		        lsn_format(st->cdc.applied_lsn, applied),
		        lsn_format(st->cdc.flushed_lsn, flushed),
		        (long long) st->cdc.txns, (long long) st->cdc.changes,
		        st->cdc_updated_at);
	if (st->has_cdc && st->cdc.ignored > 0)
		fprintf(out,
		        "cdc: %lld changes of tables the task does not move were "
		        "ignored (--unknown-tables=ignore)\n",
		        (long long) st->cdc.ignored);
	if (st->has_cdc && st->cdc.filtered > 0)
		fprintf(out,
		        "cdc: %lld new row versions were not this target's (row "
		        "filters%s): inserts left out, updates applied as "
		        "deletes\n",
		        (long long) st->cdc.filtered,
		        cfg->shard_target != NULL ? ", routing" : "");
	if (st->guard != NULL)
		print_guard(out, st->guard);
	if (st->has_cdc && st->cdc.outage[0])
		fprintf(out, "cdc outage (as of %s): %s\n", st->cdc_updated_at,
		        st->cdc.outage);
	if (slot != NULL && PQntuples(slot) == 1)
		fprintf(out,
		        "slot: %s, retains %s bytes of WAL, %s bytes not yet "
		        "confirmed\n",
		        strcmp(PQgetvalue(slot, 0, 0), "true") == 0 ? "active"
		                                                    : "inactive",
		        PQgetvalue(slot, 0, 1), PQgetvalue(slot, 0, 2));
	status_text_slots(out, st, ss);
	if (io->n > 0)
		fprintf(out,
		        "tables without a key (their INSERTs streamed only): %d, "
		        "%d diverged\n",
		        io->n, io->diverged);
	for (int i = 0; i < io->n; i++)
		if (io->tables[i].diverged)
			fprintf(out,
			        "  %s.%s diverged (%s): %s; cutover refuses it unless "
			        "run with --diverged=recopy\n",
			        io->tables[i].src_schema, io->tables[i].src_name,
			        io->tables[i].diverged_at[0] ? io->tables[i].diverged_at
			                                     : "now",
			        io->tables[i].reason);
	if (nt->n > 0)
		fprintf(out,
		        "new tables: %d the patterns select were created after the "
		        "load and cannot join the task (the log of migrate or "
		        "follow says why; once that is fixed they join, or leave "
		        "them out with -T):\n",
		        nt->n);
	for (int i = 0; i < nt->n; i++)
		fprintf(out, "  %s\n", nt->names[i]);
	if (st->last_error != NULL)
		fprintf(out, "last error (%s): %s\n", st->last_error_at,
		        st->last_error);
}

/*
 * The keyless tables, streamed for their inserts only: what the source's
 * statistics say now, or what the stream last recorded without the source.
 * status changes nothing, so a newly found divergence is shown, not
 * recorded.
 */
static bool
status_insert_only(const State *state, PgConn *src, InsertOnlyWatch *io,
                   Error *err)
{
	Error serr = ERR_INIT;

	memset(io, 0, sizeof(*io));
	if (src != NULL && insert_only_watch(src, state, false, io, &serr))
		return true;
	if (err_is_set(&serr))
		log_warn("source: %s", serr.message);
	if (!state_insert_only_load(state, &io->tables, &io->n, err))
		return false;
	for (int i = 0; i < io->n; i++)
		io->diverged += io->tables[i].diverged;
	return true;
}

/* The task slot's state on the source, or NULL when it cannot be read. */
static PGresult *
status_slot(PgConn *src, const char *slot_name)
{
	Error serr = ERR_INIT;
	const char *params[1] = {slot_name};
	PGresult *slot = NULL;

	pg_query(src,
	         "SELECT active::text, pg_current_wal_lsn() - restart_lsn,"
	         " pg_current_wal_lsn() - confirmed_flush_lsn"
	         " FROM pg_replication_slots WHERE slot_name = $1",
	         1, params, &slot, &serr);
	if (err_is_set(&serr))
		log_warn("source: %s", serr.message);
	return slot;
}

/*
 * Reads the task's state on tgt (and its slots on src, when not NULL) and
 * writes it to out, as JSON or text. The one writer of status, for the
 * command and for the HTTP surface's /status. serving: written for the
 * process that runs the task, which creates its state only once its checks
 * pass: until then the task is new, not missing.
 */
static bool
status_write(const TaskConfig *cfg, PgConn *tgt, PgConn *src, bool json,
             bool serving, FILE *out, Error *err)
{
	PGresult *slot = NULL;
	State state;
	StateStatus st;
	StateProcess proc;
	InsertOnlyWatch io;
	NewTables nt = {NULL, 0};
	Error serr = ERR_INIT;
	StatusSlots ss = {false, NULL, 0};
	StateTask task;
	bool exists = false, ok = false;

	memset(&st, 0, sizeof(st));
	memset(&io, 0, sizeof(io));
	memset(&task, 0, sizeof(task));
	if (!state_attach(&state, tgt, cfg->state_schema, cfg->task, &exists,
	                  err) ||
	    (serving && exists && !state_task_read(&state, &task, err)))
		goto out;
	if (serving && !task.exists)
	{
		if (!state_process_read(&state, exists, &proc, err))
			goto out;
		status_json(out, cfg, &st, &proc, NULL, &ss, &io, &nt);
		ok = true;
		goto out;
	}
	if (!exists)
	{
		err_set(err, ERR_CONFIG, "the target has no pgtide state schema \"%s\"",
		        cfg->state_schema);
		err_hint(err, "name the schema of a task with --state-schema, or "
		              "start one with pgtide migrate");
		goto out;
	}
	if (!state_status_read(&state, &st, err) ||
	    !state_process_read(&state, true, &proc, err))
		goto out;
	/* the source is optional: say what we know without it */
	if (src != NULL)
	{
		slot = status_slot(src, st.task.slot_name);
		ss.read = stream_list_slots(src, "pgtide_", &ss.slots, &ss.n, &serr);
		if (!ss.read)
			log_warn("source: %s", serr.message);
		err_clear(&serr);
	}
	if (!status_insert_only(&state, src, &io, err))
		goto out;
	if (src != NULL && !newtables_find(src, &state, cfg, &nt, &serr))
		log_warn("source: could not look for new tables: %s", serr.message);
	if (json)
		status_json(out, cfg, &st, &proc, slot, &ss, &io, &nt);
	else
		status_text(out, cfg, &st, &proc, slot, &ss, &io, &nt);
	ok = true;
out:
	insert_only_watch_free(&io);
	newtables_free(&nt);
	state_status_free(&st);
	free(ss.slots);
	PQclear(slot);
	return ok;
}

bool
task_status_json(const TaskConfig *cfg, PgConn *tgt, PgConn *src, FILE *out,
                 Error *err)
{
	return status_write(cfg, tgt, src, true, true, out, err);
}

bool
task_status(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	PgConn *tgt = NULL, *src = NULL;
	Error serr = ERR_INIT;
	bool ok = false;

	(void) stop;
	if (!pg_connect(cfg->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide status",
	                2000, &tgt, err))
		goto out;
	if (cfg->source_uri != NULL &&
	    !pg_connect(cfg->source_uri, ERR_SOURCE, PG_CONN_SQL, "pgtide status",
	                2000, &src, &serr))
		log_warn("source: %s", serr.message);
	ok = status_write(cfg, tgt, src, cfg->output_json, false, stdout, err);
out:
	pg_close(src);
	pg_close(tgt);
	return ok;
}
