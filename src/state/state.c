/*
 * state: the state schema itself, the handle, the task row, what status
 * reads and clean drops, and cutover's records. The load's tables, chunks
 * and post-data steps are in steps.c.
 */
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_int.h"

/* tries of state_sync's transaction on a session that keeps losing its
 * connection */
#define STATE_SYNC_TRIES 10

static const char *const state_ddl =
    "CREATE TABLE IF NOT EXISTS @S.task ("
    " task text PRIMARY KEY,"
    " slot_name text NOT NULL,"
    " publication text NOT NULL,"
    " consistent_lsn pg_lsn,"
    " phase text NOT NULL DEFAULT 'new',"
    " schema_done boolean NOT NULL DEFAULT false,"
    " runs int NOT NULL DEFAULT 0,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS @S.tables ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " src_schema text NOT NULL,"
    " src_name text NOT NULL,"
    " tgt_qname text NOT NULL,"
    " state text NOT NULL DEFAULT 'pending'"
    "   CHECK (state IN ('pending', 'copying', 'done')),"
    " snapshot_lsn pg_lsn,"
    " snapshot_txids text,"
    " loads int NOT NULL DEFAULT 0,"
    " format text,"
    " chunks int NOT NULL DEFAULT 0,"
    " chunks_done int NOT NULL DEFAULT 0,"
    " rows bigint NOT NULL DEFAULT 0,"
    " bytes bigint NOT NULL DEFAULT 0,"
    " started_at timestamptz,"
    " done_at timestamptz,"
    " PRIMARY KEY (task, src_schema, src_name));"
    /* large objects pgtide copied, and what they held (load/lobjects.c) */
    "CREATE TABLE IF NOT EXISTS @S.large_objects ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " lo oid NOT NULL,"
    " digest text NOT NULL,"
    " PRIMARY KEY (task, lo));"
    "CREATE TABLE IF NOT EXISTS @S.chunks ("
    " task text NOT NULL,"
    " src_schema text NOT NULL,"
    " src_name text NOT NULL,"
    " chunk int NOT NULL,"
    " start_block bigint,"
    " end_block bigint,"
    " rows bigint NOT NULL,"
    " bytes bigint NOT NULL,"
    " run int NOT NULL,"
    " done_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (task, src_schema, src_name, chunk),"
    " FOREIGN KEY (task, src_schema, src_name)"
    "   REFERENCES @S.tables ON UPDATE CASCADE ON DELETE CASCADE);"
    /* a table renamed on the source renames its row (cdc/apply): chunks of
       states made before follow it too */
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_constraint"
    " WHERE conrelid = '@S.chunks'::regclass AND contype = 'f'"
    " AND confupdtype <> 'c') THEN ALTER TABLE @S.chunks"
    " DROP CONSTRAINT chunks_task_src_schema_src_name_fkey,"
    " ADD CONSTRAINT chunks_task_src_schema_src_name_fkey"
    " FOREIGN KEY (task, src_schema, src_name) REFERENCES @S.tables"
    " ON UPDATE CASCADE ON DELETE CASCADE; END IF; END $$;"
    "CREATE TABLE IF NOT EXISTS @S.ddl ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " entry int NOT NULL,"
    " phase int NOT NULL,"
    " kind text NOT NULL,"
    " object text,"
    " weight bigint NOT NULL DEFAULT 0,"
    " tbl_schema text,"
    " tbl_name text,"
    " statement text NOT NULL,"
    " done_run int,"
    " done_at timestamptz,"
    " PRIMARY KEY (task, entry));"
    /* added columns: ADD COLUMN IF NOT EXISTS keeps older state schemas */
    "ALTER TABLE @S.task ADD COLUMN IF NOT EXISTS cdc_applied_lsn pg_lsn,"
    " ADD COLUMN IF NOT EXISTS cdc_flushed_lsn pg_lsn,"
    " ADD COLUMN IF NOT EXISTS cdc_source_lsn pg_lsn,"
    " ADD COLUMN IF NOT EXISTS cdc_lag_bytes bigint,"
    " ADD COLUMN IF NOT EXISTS cdc_lag_seconds float8,"
    " ADD COLUMN IF NOT EXISTS cdc_txns bigint,"
    " ADD COLUMN IF NOT EXISTS cdc_changes bigint,"
    " ADD COLUMN IF NOT EXISTS cdc_txns_per_s float8,"
    " ADD COLUMN IF NOT EXISTS cdc_changes_per_s float8,"
    " ADD COLUMN IF NOT EXISTS cdc_updated_at timestamptz,"
    " ADD COLUMN IF NOT EXISTS last_error text,"
    " ADD COLUMN IF NOT EXISTS last_error_at timestamptz,"
    " ADD COLUMN IF NOT EXISTS cdc_outage text,"
    " ADD COLUMN IF NOT EXISTS cutover_stop_lsn pg_lsn,"
    " ADD COLUMN IF NOT EXISTS cutover_undo text,"
    " ADD COLUMN IF NOT EXISTS insert_publication text,"
    " ADD COLUMN IF NOT EXISTS cdc_ignored bigint,"
    " ADD COLUMN IF NOT EXISTS cdc_filtered bigint,"
    /* the patterns the follower last ran with (selection.c) */
    " ADD COLUMN IF NOT EXISTS selection_include text[],"
    " ADD COLUMN IF NOT EXISTS selection_exclude text[],"
    /* copy loads from temporary slots and keeps none (load/load.c) */
    " ADD COLUMN IF NOT EXISTS copy_only boolean NOT NULL DEFAULT false,"
    " ADD COLUMN IF NOT EXISTS slot_created_at timestamptz,"
    " ADD COLUMN IF NOT EXISTS guard text,"
    /* the replication origin on the target (NULL: a task begun before it
       was recorded, whose origin is named as its publication) */
    " ADD COLUMN IF NOT EXISTS origin_name text;"
    /* the source table's oid: a table gone by name may have been renamed */
    "ALTER TABLE @S.tables ADD COLUMN IF NOT EXISTS src_relid oid;"
    /* what a task writes into a target table it may share with another
       (load/share.c): its row filter, and what it does with a key that is
       there already */
    "ALTER TABLE @S.tables ADD COLUMN IF NOT EXISTS row_filter text,"
    " ADD COLUMN IF NOT EXISTS on_conflict text;"
    /* keyless tables streamed for their inserts only (insert_only.c) */
    "CREATE TABLE IF NOT EXISTS @S.insert_only ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " src_schema text NOT NULL,"
    " src_name text NOT NULL,"
    " relid oid NOT NULL,"
    " baseline bigint NOT NULL,"
    " diverged_at timestamptz,"
    " reason text,"
    " PRIMARY KEY (task, src_schema, src_name));"
    /* pgtide validate's results */
    "CREATE TABLE IF NOT EXISTS @S.validation_runs ("
    " id bigserial PRIMARY KEY,"
    " task text NOT NULL,"
    " mode text NOT NULL,"
    " sample float8 NOT NULL,"
    " cdc boolean NOT NULL DEFAULT false,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " finished_at timestamptz,"
    " status text NOT NULL DEFAULT 'running' CHECK (status IN ('running',"
    "  'equal', 'different', 'failed', 'interrupted')),"
    " tables int, tables_differing int, ranges bigint, ranges_checked bigint,"
    " rows_source bigint, rows_target bigint, differences bigint,"
    " error text);"
    "CREATE TABLE IF NOT EXISTS @S.validation_tables ("
    " run_id bigint NOT NULL REFERENCES @S.validation_runs ON DELETE CASCADE,"
    " src_table text NOT NULL,"
    " tgt_table text NOT NULL,"
    " status text NOT NULL,"
    " key_columns text,"
    " ranges int, ranges_checked int,"
    " rows_source bigint, rows_target bigint, differences bigint,"
    " detail text,"
    " PRIMARY KEY (run_id, src_table));"
    "CREATE TABLE IF NOT EXISTS @S.validation_differences ("
    " run_id bigint NOT NULL,"
    " src_table text NOT NULL,"
    " seq int NOT NULL,"
    " kind text NOT NULL CHECK (kind IN ('missing', 'extra', 'different')),"
    " key text,"
    " row_text text,"
    " source_copies bigint,"
    " target_copies bigint,"
    " PRIMARY KEY (run_id, src_table, seq),"
    " FOREIGN KEY (run_id, src_table) REFERENCES @S.validation_tables"
    "  ON DELETE CASCADE);"
    "CREATE TABLE IF NOT EXISTS @S.cutovers ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " started_at timestamptz NOT NULL,"
    " fence_method text NOT NULL,"
    " fenced_at timestamptz,"
    " marker_lsn pg_lsn,"
    " done_at timestamptz,"
    " window_ms bigint,"
    " late_txns bigint,"
    " sequences int,"
    " validation text,"
    " result text NOT NULL,"
    " steps text NOT NULL,"
    " error text);"
    /* the process running the task (process.c); no foreign key: a run
       records itself before its task row exists */
    "CREATE TABLE IF NOT EXISTS @S.processes ("
    " task text PRIMARY KEY,"
    " host text NOT NULL,"
    " pid int NOT NULL,"
    " command text NOT NULL,"
    " started_at timestamptz NOT NULL,"
    " backend_pid int NOT NULL);"
    /* what the load's throttle does now (JSON), for status */
    "ALTER TABLE @S.processes ADD COLUMN IF NOT EXISTS throttle text;"
    /* a key's rows handed to this target by another (handover.c) */
    "CREATE TABLE IF NOT EXISTS @S.handovers ("
    " task text NOT NULL REFERENCES @S.task ON DELETE CASCADE,"
    " change text NOT NULL,"
    " key text NOT NULL,"
    " giver text NOT NULL,"
    " staged text[] NOT NULL,"
    " loaded_after text[] NOT NULL,"
    " taken boolean NOT NULL DEFAULT false,"
    " staged_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (task, change, key));"
    "CREATE TABLE IF NOT EXISTS @S.handover_rows ("
    " task text NOT NULL,"
    " change text NOT NULL,"
    " key text NOT NULL,"
    " tbl text NOT NULL,"
    " cols text[] NOT NULL,"
    " vals text[] NOT NULL,"
    " FOREIGN KEY (task, change, key) REFERENCES @S.handovers"
    "  ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS handover_rows_of ON @S.handover_rows"
    " (task, change, key, tbl);";

/*
 * Statements name the state schema as @S; it is substituted quoted, so the
 * schema name never needs a format string. Returns malloc'd SQL or NULL.
 */
static char *
with_schema(const char *fmt, const char *qschema)
{
	size_t qlen = strlen(qschema), n = 0, cap = strlen(fmt) + 1;
	char *out;

	for (const char *p = fmt; (p = strstr(p, "@S")) != NULL; p += 2)
		cap += qlen;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	for (const char *p = fmt; *p;)
	{
		if (p[0] == '@' && p[1] == 'S')
		{
			memcpy(out + n, qschema, qlen);
			n += qlen;
			p += 2;
		}
		else
			out[n++] = *p++;
	}
	out[n] = '\0';
	return out;
}

static bool
run_sql(const State *s, const char *fmt, int nparams, const char *const *params,
        PGresult **out, Error *err)
{
	char *sql = with_schema(fmt, s->qschema);
	PGresult *res = NULL;
	bool ok;

	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_query(s->conn, sql, nparams, params, &res, err);
	free(sql);
	if (!ok)
		return false;
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return true;
}

char *
state_sql(const State *s, const char *fmt)
{
	return with_schema(fmt, s->qschema);
}

bool
state_run(const State *s, const char *fmt, int nparams,
          const char *const *params, PGresult **out, Error *err)
{
	return run_sql(s, fmt, nparams, params, out, err) ||
	       err_prefix(err, "state: ");
}

char *
state_dup(const PGresult *res, int row, int col, bool *oom)
{
	char *d;

	if (PQgetisnull(res, row, col))
		return NULL;
	d = strdup(PQgetvalue(res, row, col));
	*oom |= d == NULL;
	return d;
}

bool
state_bind(State *s, PgConn *tgt, const char *schema, const char *task,
           Error *err)
{
	char *q = pg_quote_ident(schema);
	size_t n;

	memset(s, 0, sizeof(*s));
	if (q == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	n = strlen(q);
	if (n >= sizeof(s->qschema))
	{
		free(q);
		return err_set(err, ERR_CONFIG,
		               "state schema name \"%.80s\" is too "
		               "long",
		               schema);
	}
	memcpy(s->qschema, q, n + 1);
	free(q);
	s->conn = tgt;
	s->schema = schema;
	s->task = task;
	return true;
}

bool
state_open(State *s, PgConn *tgt, const char *schema, const char *task,
           Error *err)
{
	if (!state_bind(s, tgt, schema, task, err))
		return false;
	if (!run_sql(s, "CREATE SCHEMA IF NOT EXISTS @S;", 0, NULL, NULL, err) ||
	    !run_sql(s, state_ddl, 0, NULL, NULL, err) ||
	    !state_columns_install(s, err))
		return err_prefix(err,
		                  "could not create the state schema \"%s\" on the "
		                  "target: ",
		                  schema);
	return true;
}

bool
state_attach(State *s, PgConn *tgt, const char *schema, const char *task,
             bool *exists, Error *err)
{
	char qname[STATE_QSCHEMA_MAX + 8];

	*exists = false;
	if (!state_bind(s, tgt, schema, task, err))
		return false;
	snprintf(qname, sizeof(qname), "%s.task", s->qschema);
	if (!pg_relation_exists(tgt, qname, exists, err))
		return err_prefix(err, "state: ");
	return true;
}

State
state_on(const State *s, PgConn *conn)
{
	State other = *s;

	other.conn = conn;
	return other;
}

/* ---- the task row ---- */

static const char *const phase_names[] = {
    [STATE_PHASE_NEW] = "new",           [STATE_PHASE_LOAD] = "load",
    [STATE_PHASE_POSTDATA] = "postdata", [STATE_PHASE_LOADED] = "loaded",
    [STATE_PHASE_CDC] = "cdc",           [STATE_PHASE_CUTOVER] = "cutover",
};

const char *
state_phase_name(StatePhase phase)
{
	if ((unsigned) phase >= sizeof(phase_names) / sizeof(phase_names[0]))
		return "unknown";
	return phase_names[phase];
}

static bool
phase_parse(const char *text, StatePhase *out, Error *err)
{
	for (size_t i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
		if (strcmp(text, phase_names[i]) == 0)
		{
			*out = (StatePhase) i;
			return true;
		}
	return err_set(err, ERR_TARGET, "state: unknown task phase \"%.40s\"",
	               text);
}

/*
 * A new task's replication origin: its publication's name and the target
 * database's oid. Origins live in the cluster, not the database: two tasks
 * of one name into two databases of one cluster, or one whose database
 * was dropped without pgtide clean, would otherwise share one, and a
 * stream would start at the other's position.
 */
#define ORIGIN_NAME_SQL                                                \
	"$3::text || '_' || (SELECT oid::text FROM pg_catalog.pg_database" \
	" WHERE datname = pg_catalog.current_database())"

/* The task row's columns in the order task_from_row reads them. */
#define TASK_COLUMNS                                                     \
	"slot_name, publication, coalesce(consistent_lsn::text, ''), phase," \
	" schema_done, runs, coalesce(insert_publication, ''), copy_only,"   \
	" coalesce(slot_created_at::text, ''),"                              \
	" coalesce(origin_name, publication)"
#define TASK_NCOLUMNS 10

static bool
task_from_row(const PGresult *res, int col, StateTask *out, Error *err)
{
	out->exists = true;
	snprintf(out->slot_name, sizeof(out->slot_name), "%s",
	         PQgetvalue(res, 0, col));
	snprintf(out->publication, sizeof(out->publication), "%s",
	         PQgetvalue(res, 0, col + 1));
	if (!lsn_parse(PQgetvalue(res, 0, col + 2), &out->consistent_lsn))
		out->consistent_lsn = LSN_INVALID;
	out->schema_done = PQgetvalue(res, 0, col + 4)[0] == 't';
	out->run = (int) strtol(PQgetvalue(res, 0, col + 5), NULL, 10);
	snprintf(out->insert_publication, sizeof(out->insert_publication), "%s",
	         PQgetvalue(res, 0, col + 6));
	out->copy_only = PQgetvalue(res, 0, col + 7)[0] == 't';
	snprintf(out->slot_created_at, sizeof(out->slot_created_at), "%s",
	         PQgetvalue(res, 0, col + 8));
	snprintf(out->origin_name, sizeof(out->origin_name), "%s",
	         PQgetvalue(res, 0, col + 9));
	return phase_parse(PQgetvalue(res, 0, col + 3), &out->phase, err);
}

bool
state_task_begin(const State *s, const char *slot, const char *publication,
                 StateTask *out, Error *err)
{
	const char *params[3] = {s->task, slot, publication};
	PGresult *res;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!state_run(
	        s,
	        "INSERT INTO @S.task AS t (task, slot_name, publication, runs,"
	        " origin_name) VALUES ($1, $2, $3, 1, " ORIGIN_NAME_SQL ")"
	        " ON CONFLICT (task) DO UPDATE SET runs = t.runs + 1,"
	        " updated_at = now()"
	        " RETURNING " TASK_COLUMNS,
	        3, params, &res, err))
		return false;
	ok = task_from_row(res, 0, out, err);
	PQclear(res);
	return ok;
}

bool
state_task_ensure(const State *s, const char *slot, const char *publication,
                  Error *err)
{
	const char *params[3] = {s->task, slot, publication};

	return state_run(s,
	                 "INSERT INTO @S.task (task, slot_name, publication, runs,"
	                 " origin_name) VALUES ($1, $2, $3, 0, " ORIGIN_NAME_SQL
	                 ") ON CONFLICT (task) DO NOTHING",
	                 3, params, NULL, err);
}

bool
state_task_read(const State *s, StateTask *out, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	bool ok = true;

	memset(out, 0, sizeof(*out));
	if (!state_run(s, "SELECT " TASK_COLUMNS " FROM @S.task WHERE task = $1", 1,
	               params, &res, err))
		return false;
	if (PQntuples(res) == 1)
		ok = task_from_row(res, 0, out, err);
	PQclear(res);
	return ok;
}

bool
state_task_set_slot(const State *s, Lsn lsn, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {s->task,
	                         lsn == LSN_INVALID ? NULL : lsn_format(lsn, text)};

	return state_run(s,
	                 "UPDATE @S.task SET consistent_lsn = $2::pg_lsn,"
	                 " copy_only = false, slot_created_at = CASE WHEN $2 IS"
	                 " NULL THEN NULL ELSE now() END, updated_at = now()"
	                 " WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_set_copy_only(const State *s, Lsn lsn, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {s->task, lsn_format(lsn, text)};

	return state_run(s,
	                 "UPDATE @S.task SET consistent_lsn = $2::pg_lsn,"
	                 " copy_only = true, slot_created_at = NULL,"
	                 " updated_at = now() WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_set_phase(const State *s, StatePhase phase, Error *err)
{
	const char *params[2] = {s->task, state_phase_name(phase)};

	return state_run(s,
	                 "UPDATE @S.task SET phase = $2, updated_at = now()"
	                 " WHERE task = $1",
	                 2, params, NULL, err);
}

/* One try of state_sync: a transaction of its own. */
static bool
sync_once(const State *s, Error *err)
{
	const char *params[1] = {s->task};
	Error ignored = ERR_INIT;

	if (!pg_exec(s->conn, "BEGIN", err))
		return false;
	/* SET LOCAL: the setting lasts for this transaction only */
	if (!pg_exec(s->conn, "SET LOCAL synchronous_commit = on", err) ||
	    !run_sql(s, "UPDATE @S.task SET updated_at = now() WHERE task = $1", 1,
	             params, NULL, err) ||
	    !pg_exec(s->conn, "COMMIT", err))
	{
		pg_exec(s->conn, "ROLLBACK", &ignored);
		return false;
	}
	return true;
}

bool
state_sync(const State *s, Error *err)
{
	/* the write is the same each time: a lost connection is tried again
	   (a kept session replaces it) */
	for (int attempt = 1;; attempt++)
	{
		if (sync_once(s, err))
			return true;
		if (!err->retryable || attempt >= STATE_SYNC_TRIES)
			return err_prefix(err, "state: ");
		err_clear(err);
	}
}

bool
state_task_set_schema_done(const State *s, Error *err)
{
	const char *params[1] = {s->task};

	return state_run(s,
	                 "UPDATE @S.task SET schema_done = true, updated_at = now()"
	                 " WHERE task = $1",
	                 1, params, NULL, err);
}

bool
state_task_set_cdc(const State *s, const StateCdc *c, Error *err)
{
	char a[LSN_TEXT_MAX], f[LSN_TEXT_MAX], src[LSN_TEXT_MAX];
	char lb[24], ls[32], tx[24], ch[24], tps[32], cps[32], ig[24], fi[24];
	const char *params[13] = {s->task,
	                          lsn_format(c->applied_lsn, a),
	                          lsn_format(c->flushed_lsn, f),
	                          lsn_format(c->source_lsn, src),
	                          lb,
	                          ls,
	                          tx,
	                          ch,
	                          tps,
	                          cps,
	                          c->outage[0] ? c->outage : NULL,
	                          ig,
	                          fi};

	snprintf(ig, sizeof(ig), "%lld", (long long) c->ignored);
	snprintf(fi, sizeof(fi), "%lld", (long long) c->filtered);
	snprintf(lb, sizeof(lb), "%lld", (long long) c->lag_bytes);
	snprintf(ls, sizeof(ls), "%.3f", c->lag_seconds);
	snprintf(tx, sizeof(tx), "%lld", (long long) c->txns);
	snprintf(ch, sizeof(ch), "%lld", (long long) c->changes);
	snprintf(tps, sizeof(tps), "%.1f", c->txns_per_s);
	snprintf(cps, sizeof(cps), "%.1f", c->changes_per_s);
	return state_run(
	    s,
	    "UPDATE @S.task SET cdc_applied_lsn = $2::pg_lsn,"
	    " cdc_flushed_lsn = $3::pg_lsn, cdc_source_lsn = $4::pg_lsn,"
	    " cdc_lag_bytes = $5::bigint, cdc_lag_seconds = $6::float8,"
	    " cdc_txns = $7::bigint, cdc_changes = $8::bigint,"
	    " cdc_txns_per_s = $9::float8,"
	    " cdc_changes_per_s = $10::float8, cdc_outage = $11,"
	    " cdc_ignored = $12::bigint, cdc_filtered = $13::bigint,"
	    " cdc_updated_at = now() WHERE task = $1",
	    13, params, NULL, err);
}

bool
state_task_set_guard(const State *s, const char *json, Error *err)
{
	const char *params[2] = {s->task, json};

	return state_run(s, "UPDATE @S.task SET guard = $2 WHERE task = $1", 2,
	                 params, NULL, err);
}

bool
state_task_set_error(const State *s, const char *message, Error *err)
{
	const char *params[2] = {s->task, message};

	return state_run(s,
	                 "UPDATE @S.task SET last_error = $2,"
	                 " last_error_at = CASE WHEN $2::text IS NULL THEN NULL"
	                 " ELSE now() END WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_drop(const State *s, Error *err)
{
	const char *params[1] = {s->task};

	return state_run(s, "DELETE FROM @S.task WHERE task = $1", 1, params, NULL,
	                 err) &&
	       state_run(s, "DELETE FROM @S.processes WHERE task = $1", 1, params,
	                 NULL, err) &&
	       state_run(s,
	                 "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM @S.task)"
	                 " AND NOT EXISTS (SELECT 1 FROM @S.processes) THEN"
	                 " DROP SCHEMA @S CASCADE; END IF; END$$",
	                 0, NULL, NULL, err);
}

/* ---- what pgtide status shows ---- */

static void
text_field(const PGresult *res, int row, int col, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s",
	         PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int64_t
int_field(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	           ? 0
	           : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double
float_field(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0
	                                  : strtod(PQgetvalue(res, row, col), NULL);
}

static Lsn
lsn_field(const PGresult *res, int row, int col)
{
	Lsn lsn = LSN_INVALID;

	if (!PQgetisnull(res, row, col))
		lsn_parse(PQgetvalue(res, row, col), &lsn);
	return lsn;
}

static bool
status_task(const State *s, StateStatus *out, bool *oom, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	bool ok;

	if (!state_run(s,
	               "SELECT " TASK_COLUMNS ", updated_at::text,"
	               " cdc_applied_lsn::text, cdc_flushed_lsn::text,"
	               " cdc_source_lsn::text, cdc_lag_bytes, cdc_lag_seconds,"
	               " cdc_txns, cdc_changes, cdc_txns_per_s, cdc_changes_per_s,"
	               " cdc_updated_at::text, last_error, last_error_at::text,"
	               " cdc_outage, cdc_ignored, guard,"
	               " extract(epoch FROM now() - cdc_updated_at)::float8,"
	               " cdc_filtered"
	               " FROM @S.task WHERE task = $1",
	               1, params, &res, err))
		return false;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		err_set(err, ERR_CONFIG, "no task \"%s\" in the target's state",
		        s->task);
		return err_hint(err, "name it with --task");
	}
	ok = task_from_row(res, 0, &out->task, err);
	text_field(res, 0, TASK_NCOLUMNS + 0, out->updated_at,
	           sizeof(out->updated_at));
	out->cdc.applied_lsn = lsn_field(res, 0, TASK_NCOLUMNS + 1);
	out->cdc.flushed_lsn = lsn_field(res, 0, TASK_NCOLUMNS + 2);
	out->cdc.source_lsn = lsn_field(res, 0, TASK_NCOLUMNS + 3);
	out->cdc.lag_bytes = int_field(res, 0, TASK_NCOLUMNS + 4);
	out->cdc.lag_seconds = float_field(res, 0, TASK_NCOLUMNS + 5);
	out->cdc.txns = int_field(res, 0, TASK_NCOLUMNS + 6);
	out->cdc.changes = int_field(res, 0, TASK_NCOLUMNS + 7);
	out->cdc.txns_per_s = float_field(res, 0, TASK_NCOLUMNS + 8);
	out->cdc.changes_per_s = float_field(res, 0, TASK_NCOLUMNS + 9);
	out->has_cdc = !PQgetisnull(res, 0, TASK_NCOLUMNS + 10);
	text_field(res, 0, TASK_NCOLUMNS + 10, out->cdc_updated_at,
	           sizeof(out->cdc_updated_at));
	out->last_error = state_dup(res, 0, TASK_NCOLUMNS + 11, oom);
	text_field(res, 0, TASK_NCOLUMNS + 12, out->last_error_at,
	           sizeof(out->last_error_at));
	text_field(res, 0, TASK_NCOLUMNS + 13, out->cdc.outage,
	           sizeof(out->cdc.outage));
	out->cdc.ignored = int_field(res, 0, TASK_NCOLUMNS + 14);
	out->guard = state_dup(res, 0, TASK_NCOLUMNS + 15, oom);
	out->cdc_age_s = float_field(res, 0, TASK_NCOLUMNS + 16);
	out->cdc.filtered = int_field(res, 0, TASK_NCOLUMNS + 17);
	PQclear(res);
	return ok;
}

static bool
status_tables(const State *s, StateStatus *out, bool *oom, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	int n;

	if (!state_run(s,
	               "SELECT src_schema || '.' || src_name, state, loads, chunks,"
	               " chunks_done, rows, bytes, snapshot_lsn::text"
	               " FROM @S.tables WHERE task = $1"
	               " ORDER BY state = 'done', bytes DESC, 1",
	               1, params, &res, err))
		return false;
	n = PQntuples(res);
	out->tables = calloc((size_t) n + 1, sizeof(StateTableStatus));
	if (out->tables == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	out->ntables = n;
	for (int i = 0; i < n; i++)
	{
		StateTableStatus *t = &out->tables[i];

		t->name = state_dup(res, i, 0, oom);
		text_field(res, i, 1, t->state, sizeof(t->state));
		t->loads = (int) int_field(res, i, 2);
		t->chunks = (int) int_field(res, i, 3);
		t->chunks_done = (int) int_field(res, i, 4);
		t->rows = int_field(res, i, 5);
		t->bytes = int_field(res, i, 6);
		t->snapshot_lsn = lsn_field(res, i, 7);
	}
	PQclear(res);
	return true;
}

static bool
status_steps(const State *s, StateStatus *out, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;

	if (!state_run(s,
	               "SELECT count(*) FILTER (WHERE phase > 0),"
	               " count(*) FILTER (WHERE phase > 0 AND done_at IS NOT NULL)"
	               " FROM @S.ddl WHERE task = $1",
	               1, params, &res, err))
		return false;
	out->postdata_steps = (int) int_field(res, 0, 0);
	out->postdata_done = (int) int_field(res, 0, 1);
	PQclear(res);
	return true;
}

bool
state_status_read(const State *s, StateStatus *out, Error *err)
{
	bool oom = false;

	memset(out, 0, sizeof(*out));
	if (!status_task(s, out, &oom, err) || !status_tables(s, out, &oom, err) ||
	    !status_steps(s, out, err))
	{
		state_status_free(out);
		return false;
	}
	if (oom)
	{
		state_status_free(out);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

void
state_status_free(StateStatus *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < st->ntables; i++)
		free(st->tables[i].name);
	free(st->tables);
	free(st->last_error);
	free(st->guard);
	memset(st, 0, sizeof(*st));
}

/* ---- cutover ---- */

bool
state_task_set_cutover_stop(const State *s, Lsn lsn, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {s->task,
	                         lsn == LSN_INVALID ? NULL : lsn_format(lsn, text)};

	return state_run(s,
	                 "UPDATE @S.task SET cutover_stop_lsn = $2::pg_lsn"
	                 " WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_cutover_stop(const State *s, Lsn *lsn, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	bool ok = true;

	*lsn = LSN_INVALID;
	if (!state_run(s,
	               "SELECT cutover_stop_lsn::text FROM @S.task WHERE task = $1",
	               1, params, &res, err))
		return false;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		ok = lsn_parse(PQgetvalue(res, 0, 0), lsn) ||
		     err_set(err, ERR_TARGET, "state: bad cutover position \"%s\"",
		             PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}

bool
state_task_finish_cutover(const State *s, Lsn lsn, bool *done, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {s->task, lsn_format(lsn, text)};
	PGresult *res;

	*done = false;
	if (!state_run(s,
	               "UPDATE @S.task SET phase = 'cutover', updated_at = now()"
	               " WHERE task = $1 AND cutover_stop_lsn = $2::pg_lsn"
	               " RETURNING 1",
	               2, params, &res, err))
		return false;
	*done = PQntuples(res) == 1;
	PQclear(res);
	return true;
}

bool
state_cutover_record(const State *s, const StateCutover *c, Error *err)
{
	char marker[LSN_TEXT_MAX], win[24], late[24], seqs[16];
	const char *params[13] = {
	    s->task,
	    c->started_at,
	    c->fence_method,
	    c->fenced_at[0] ? c->fenced_at : NULL,
	    c->marker_lsn == LSN_INVALID ? NULL : lsn_format(c->marker_lsn, marker),
	    c->done_at[0] ? c->done_at : NULL,
	    c->window_ms >= 0 ? win : NULL,
	    late,
	    seqs,
	    c->validation,
	    c->result,
	    c->steps,
	    c->error[0] ? c->error : NULL};

	snprintf(win, sizeof(win), "%lld", (long long) c->window_ms);
	snprintf(late, sizeof(late), "%lld", (long long) c->late_txns);
	snprintf(seqs, sizeof(seqs), "%d", c->sequences);
	return state_run(
	    s,
	    "INSERT INTO @S.cutovers (task, started_at, fence_method, fenced_at,"
	    " marker_lsn, done_at, window_ms, late_txns, sequences, validation,"
	    " result, steps, error) VALUES ($1, $2::timestamptz, $3,"
	    " $4::timestamptz, $5::pg_lsn, $6::timestamptz, $7::bigint,"
	    " $8::bigint, $9::int, $10, $11, $12, $13)",
	    13, params, NULL, err);
}

bool
state_task_set_cutover_undo(const State *s, const char *undo, Error *err)
{
	const char *params[2] = {s->task, undo};

	return state_run(s, "UPDATE @S.task SET cutover_undo = $2 WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_cutover_undo(const State *s, char **undo, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	bool oom = false;

	*undo = NULL;
	if (!state_run(s, "SELECT cutover_undo FROM @S.task WHERE task = $1", 1,
	               params, &res, err))
		return false;
	if (PQntuples(res) == 1)
		*undo = state_dup(res, 0, 0, &oom);
	PQclear(res);
	return !oom || err_set(err, ERR_INTERNAL, "out of memory");
}
