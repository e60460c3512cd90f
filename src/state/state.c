/*
 * state: SQL over the state schema. Every function runs statements on the
 * target connection it is given, inside whatever transaction the caller has
 * open; none commits on its own except state_init and state_task_begin.
 */
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "   REFERENCES @S.tables ON DELETE CASCADE);"
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
    " ADD COLUMN IF NOT EXISTS cutover_stop_lsn pg_lsn,"
    " ADD COLUMN IF NOT EXISTS cutover_undo text;"
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
    " error text);";

/*
 * Statements name the state schema as @S; it is substituted quoted, so the
 * schema name never needs a format string. Returns malloc'd SQL or NULL.
 */
static char *
with_schema(const char *fmt, const char *schema)
{
	char *q = pg_quote_ident(schema);
	size_t qlen, n = 0, cap;
	char *out;

	if (q == NULL)
		return NULL;
	qlen = strlen(q);
	cap = strlen(fmt) + 1;
	for (const char *p = fmt; (p = strstr(p, "@S")) != NULL; p += 2)
		cap += qlen;
	out = malloc(cap);
	if (out != NULL)
	{
		for (const char *p = fmt; *p;)
		{
			if (p[0] == '@' && p[1] == 'S')
			{
				memcpy(out + n, q, qlen);
				n += qlen;
				p += 2;
			}
			else
				out[n++] = *p++;
		}
		out[n] = '\0';
	}
	free(q);
	return out;
}

bool
state_init(PgConn *tgt, const char *schema, Error *err)
{
	char *sql = with_schema("CREATE SCHEMA IF NOT EXISTS @S;", schema);
	bool ok;

	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_exec(tgt, sql, err);
	free(sql);
	sql = ok ? with_schema(state_ddl, schema) : NULL;
	if (ok && sql == NULL)
		ok = err_set(err, ERR_INTERNAL, "out of memory");
	if (ok)
		ok = pg_exec(tgt, sql, err);
	free(sql);
	if (!ok)
		err_prefix(err,
		           "could not create the state schema \"%s\" on the "
		           "target: ",
		           schema);
	return ok;
}

bool
state_query(PgConn *tgt, const char *schema, const char *fmt, int nparams,
            const char *const *params, PGresult **out, Error *err)
{
	char *sql = with_schema(fmt, schema);
	PGresult *res = NULL;
	bool ok;

	if (sql == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_query(tgt, sql, nparams, params, &res, err);
	free(sql);
	if (!ok)
		return false;
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return true;
}

static bool
state_run(PgConn *tgt, const char *schema, const char *fmt, int nparams,
          const char *const *params, PGresult **out, Error *err)
{
	if (!state_query(tgt, schema, fmt, nparams, params, out, err))
		return err_prefix(err, "state: ");
	return true;
}

bool
state_task_begin(PgConn *tgt, const char *schema, const char *task,
                 StateTask *out, Error *err)
{
	char slot[64];
	const char *params[2] = {task, slot};
	PGresult *res;

	memset(out, 0, sizeof(*out));
	snprintf(slot, sizeof(slot), "pgtide_%s", task);
	if (!state_run(
	        tgt, schema,
	        "INSERT INTO @S.task AS t (task, slot_name, publication, runs)"
	        " VALUES ($1, $2, $2, 1)"
	        " ON CONFLICT (task) DO UPDATE SET runs = t.runs + 1,"
	        " updated_at = now()"
	        " RETURNING slot_name, publication,"
	        " coalesce(consistent_lsn::text, ''), phase, schema_done,"
	        " runs",
	        2, params, &res, err))
		return false;
	out->exists = true;
	snprintf(out->slot_name, sizeof(out->slot_name), "%s",
	         PQgetvalue(res, 0, 0));
	snprintf(out->publication, sizeof(out->publication), "%s",
	         PQgetvalue(res, 0, 1));
	if (!lsn_parse(PQgetvalue(res, 0, 2), &out->consistent_lsn))
		out->consistent_lsn = LSN_INVALID;
	snprintf(out->phase, sizeof(out->phase), "%s", PQgetvalue(res, 0, 3));
	out->schema_done = PQgetvalue(res, 0, 4)[0] == 't';
	out->run = (int) strtol(PQgetvalue(res, 0, 5), NULL, 10);
	PQclear(res);
	return true;
}

bool
state_task_set_slot(PgConn *tgt, const char *schema, const char *task, Lsn lsn,
                    Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {task,
	                         lsn == LSN_INVALID ? NULL : lsn_format(lsn, text)};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET consistent_lsn = $2::pg_lsn,"
	                 " updated_at = now() WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_set_phase(PgConn *tgt, const char *schema, const char *task,
                     const char *phase, Error *err)
{
	const char *params[2] = {task, phase};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET phase = $2, updated_at = now()"
	                 " WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_set_schema_done(PgConn *tgt, const char *schema, const char *task,
                           Error *err)
{
	const char *params[1] = {task};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET schema_done = true, updated_at = now()"
	                 " WHERE task = $1",
	                 1, params, NULL, err);
}

bool
state_table_register(PgConn *tgt, const char *schema, const char *task,
                     const char *src_schema, const char *src_name,
                     const char *tgt_qname, Error *err)
{
	const char *params[4] = {task, src_schema, src_name, tgt_qname};

	return state_run(tgt, schema,
	                 "INSERT INTO @S.tables (task, src_schema, src_name,"
	                 " tgt_qname) VALUES ($1, $2, $3, $4)"
	                 " ON CONFLICT (task, src_schema, src_name) DO UPDATE"
	                 " SET tgt_qname = EXCLUDED.tgt_qname",
	                 4, params, NULL, err);
}

bool
state_tables_load(PgConn *tgt, const char *schema, const char *task,
                  StateTable **out, int *n, Error *err)
{
	const char *params[1] = {task};
	PGresult *res;
	StateTable *t;
	bool oom = false;

	*out = NULL;
	*n = 0;
	if (!state_run(tgt, schema,
	               "SELECT src_schema, src_name, tgt_qname,"
	               " coalesce(snapshot_lsn::text, '0/0'), state = 'done'"
	               " FROM @S.tables WHERE task = $1 ORDER BY 1, 2",
	               1, params, &res, err))
		return false;
	t = calloc((size_t) PQntuples(res) + 1, sizeof(StateTable));
	if (t == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		t[i].src_schema = strdup(PQgetvalue(res, i, 0));
		t[i].src_name = strdup(PQgetvalue(res, i, 1));
		t[i].tgt_qname = strdup(PQgetvalue(res, i, 2));
		oom |= !t[i].src_schema || !t[i].src_name || !t[i].tgt_qname;
		if (!lsn_parse(PQgetvalue(res, i, 3), &t[i].snapshot_lsn))
			t[i].snapshot_lsn = LSN_INVALID;
		t[i].done = PQgetvalue(res, i, 4)[0] == 't';
	}
	*n = PQntuples(res);
	PQclear(res);
	if (oom)
	{
		state_tables_free(t, *n);
		*out = NULL;
		*n = 0;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*out = t;
	return true;
}

void
state_tables_free(StateTable *t, int n)
{
	for (int i = 0; t != NULL && i < n; i++)
	{
		free(t[i].src_schema);
		free(t[i].src_name);
		free(t[i].tgt_qname);
	}
	free(t);
}

bool
state_table_done(PgConn *tgt, const char *schema, const char *task,
                 const char *src_schema, const char *src_name, bool *done,
                 Error *err)
{
	const char *params[3] = {task, src_schema, src_name};
	PGresult *res;

	if (!state_run(tgt, schema,
	               "SELECT state = 'done' FROM @S.tables"
	               " WHERE task = $1 AND src_schema = $2 AND src_name = $3",
	               3, params, &res, err))
		return false;
	*done = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

bool
state_table_start(PgConn *tgt, const char *schema, const char *task,
                  const char *src_schema, const char *src_name,
                  Lsn snapshot_lsn, const char *snapshot_txids, int nchunks,
                  const char *format, Error *err)
{
	char lsn_text[LSN_TEXT_MAX];
	char n[16];
	const char *params[7] = {
	    task, src_schema, src_name,      lsn_format(snapshot_lsn, lsn_text),
	    n,    format,     snapshot_txids};

	snprintf(n, sizeof(n), "%d", nchunks);
	if (!state_run(tgt, schema,
	               "DELETE FROM @S.chunks WHERE task = $1 AND src_schema = $2"
	               " AND src_name = $3",
	               3, params, NULL, err))
		return false;
	return state_run(tgt, schema,
	                 "UPDATE @S.tables SET state = 'copying',"
	                 " snapshot_lsn = $4::pg_lsn, snapshot_txids = $7,"
	                 " loads = loads + 1,"
	                 " chunks = $5::int, chunks_done = 0, rows = 0, bytes = 0,"
	                 " format = $6, started_at = now(), done_at = NULL"
	                 " WHERE task = $1 AND src_schema = $2 AND src_name = $3",
	                 7, params, NULL, err);
}

bool
state_chunks_done(PgConn *tgt, const char *schema, const char *task,
                  const char *src_schema, const char *src_name, bool *done,
                  int nchunks, Error *err)
{
	const char *params[3] = {task, src_schema, src_name};
	PGresult *res;

	memset(done, 0, sizeof(bool) * (size_t) nchunks);
	if (!state_run(tgt, schema,
	               "SELECT chunk FROM @S.chunks WHERE task = $1"
	               " AND src_schema = $2 AND src_name = $3",
	               3, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		int c = (int) strtol(PQgetvalue(res, i, 0), NULL, 10);

		if (c >= 0 && c < nchunks)
			done[c] = true;
	}
	PQclear(res);
	return true;
}

bool
state_chunk_done(PgConn *tgt, const char *schema, const char *task,
                 const char *src_schema, const char *src_name, int chunk,
                 int64_t start_block, int64_t end_block, int64_t rows,
                 int64_t bytes, int run, Error *err)
{
	char c[16], sb[24], eb[24], r[24], b[24], rn[16];
	const char *params[9] = {
	    task, src_schema, src_name, c, sb, end_block < 0 ? NULL : eb, r, b, rn};

	snprintf(c, sizeof(c), "%d", chunk);
	snprintf(sb, sizeof(sb), "%lld", (long long) start_block);
	snprintf(eb, sizeof(eb), "%lld", (long long) end_block);
	snprintf(r, sizeof(r), "%lld", (long long) rows);
	snprintf(b, sizeof(b), "%lld", (long long) bytes);
	snprintf(rn, sizeof(rn), "%d", run);
	/* One statement: the chunk row and the table's counters move together. */
	return state_run(
	    tgt, schema,
	    "WITH c AS (INSERT INTO @S.chunks (task, src_schema, src_name, chunk,"
	    "  start_block, end_block, rows, bytes, run)"
	    "  VALUES ($1, $2, $3, $4::int, $5::bigint, $6::bigint, $7::bigint,"
	    "  $8::bigint, $9::int))"
	    " UPDATE @S.tables SET chunks_done = chunks_done + 1,"
	    " rows = rows + $7::bigint, bytes = bytes + $8::bigint,"
	    " state = CASE WHEN chunks_done + 1 >= chunks THEN 'done'"
	    "  ELSE 'copying' END,"
	    " done_at = CASE WHEN chunks_done + 1 >= chunks THEN now() END"
	    " WHERE task = $1 AND src_schema = $2 AND src_name = $3",
	    9, params, NULL, err);
}

bool
state_task_set_cdc(PgConn *tgt, const char *schema, const char *task,
                   const StateCdc *c, Error *err)
{
	char a[LSN_TEXT_MAX], f[LSN_TEXT_MAX], src[LSN_TEXT_MAX];
	char lb[24], ls[32], tx[24], ch[24], tps[32], cps[32];
	const char *params[10] = {task,
	                          lsn_format(c->applied_lsn, a),
	                          lsn_format(c->flushed_lsn, f),
	                          lsn_format(c->source_lsn, src),
	                          lb,
	                          ls,
	                          tx,
	                          ch,
	                          tps,
	                          cps};

	snprintf(lb, sizeof(lb), "%lld", (long long) c->lag_bytes);
	snprintf(ls, sizeof(ls), "%.3f", c->lag_seconds);
	snprintf(tx, sizeof(tx), "%lld", (long long) c->txns);
	snprintf(ch, sizeof(ch), "%lld", (long long) c->changes);
	snprintf(tps, sizeof(tps), "%.1f", c->txns_per_s);
	snprintf(cps, sizeof(cps), "%.1f", c->changes_per_s);
	return state_run(
	    tgt, schema,
	    "UPDATE @S.task SET cdc_applied_lsn = $2::pg_lsn,"
	    " cdc_flushed_lsn = $3::pg_lsn, cdc_source_lsn = $4::pg_lsn,"
	    " cdc_lag_bytes = $5::bigint, cdc_lag_seconds = $6::float8,"
	    " cdc_txns = $7::bigint, cdc_changes = $8::bigint,"
	    " cdc_txns_per_s = $9::float8,"
	    " cdc_changes_per_s = $10::float8, cdc_updated_at = now()"
	    " WHERE task = $1",
	    10, params, NULL, err);
}

bool
state_task_set_error(PgConn *tgt, const char *schema, const char *task,
                     const char *message, Error *err)
{
	const char *params[2] = {task, message};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET last_error = $2,"
	                 " last_error_at = CASE WHEN $2::text IS NULL THEN NULL"
	                 " ELSE now() END WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_set_cutover_stop(PgConn *tgt, const char *schema, const char *task,
                            Lsn lsn, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {task,
	                         lsn == LSN_INVALID ? NULL : lsn_format(lsn, text)};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET cutover_stop_lsn = $2::pg_lsn"
	                 " WHERE task = $1",
	                 2, params, NULL, err);
}

bool
state_task_cutover_stop(PgConn *tgt, const char *schema, const char *task,
                        Lsn *lsn, Error *err)
{
	const char *params[1] = {task};
	PGresult *res;
	bool ok = true;

	*lsn = LSN_INVALID;
	if (!state_run(tgt, schema,
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
state_task_finish_cutover(PgConn *tgt, const char *schema, const char *task,
                          Lsn lsn, bool *done, Error *err)
{
	char text[LSN_TEXT_MAX];
	const char *params[2] = {task, lsn_format(lsn, text)};
	PGresult *res;

	*done = false;
	if (!state_run(tgt, schema,
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
state_cutover_record(PgConn *tgt, const char *schema, const char *task,
                     const StateCutover *c, Error *err)
{
	char marker[LSN_TEXT_MAX], win[24], late[24], seqs[16];
	const char *params[13] = {
	    task,
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
	    tgt, schema,
	    "INSERT INTO @S.cutovers (task, started_at, fence_method, fenced_at,"
	    " marker_lsn, done_at, window_ms, late_txns, sequences, validation,"
	    " result, steps, error) VALUES ($1, $2::timestamptz, $3,"
	    " $4::timestamptz, $5::pg_lsn, $6::timestamptz, $7::bigint,"
	    " $8::bigint, $9::int, $10, $11, $12, $13)",
	    13, params, NULL, err);
}

bool
state_task_set_cutover_undo(PgConn *tgt, const char *schema, const char *task,
                            const char *undo, Error *err)
{
	const char *params[2] = {task, undo};

	return state_run(tgt, schema,
	                 "UPDATE @S.task SET cutover_undo = $2 WHERE task = $1", 2,
	                 params, NULL, err);
}

bool
state_task_cutover_undo(PgConn *tgt, const char *schema, const char *task,
                        char **undo, Error *err)
{
	const char *params[1] = {task};
	PGresult *res;

	*undo = NULL;
	if (!state_run(tgt, schema,
	               "SELECT cutover_undo FROM @S.task WHERE task = $1", 1,
	               params, &res, err))
		return false;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
	    (*undo = strdup(PQgetvalue(res, 0, 0))) == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	PQclear(res);
	return true;
}
