/*
 * state steps: the full load's bookkeeping in the state schema: the task's
 * tables, their finished chunks and the post-data steps. A chunk's record
 * and a step's mark are written in the caller's transaction, the one that
 * holds the chunk's rows or ran the step, so they commit or vanish together.
 */
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_int.h"

bool
state_table_register(const State *s, const char *src_schema,
                     const char *src_name, uint32_t src_relid,
                     const char *tgt_qname, const char *row_filter,
                     const char *on_conflict, Error *err)
{
	char relid[16];
	const char *params[7] = {s->task, src_schema, src_name,   tgt_qname,
	                         relid,   row_filter, on_conflict};

	snprintf(relid, sizeof(relid), "%u", src_relid);
	return state_run(s,
	                 "INSERT INTO @S.tables (task, src_schema, src_name,"
	                 " tgt_qname, src_relid, row_filter, on_conflict)"
	                 " VALUES ($1, $2, $3, $4, $5, $6, $7)"
	                 " ON CONFLICT (task, src_schema, src_name) DO UPDATE"
	                 " SET tgt_qname = EXCLUDED.tgt_qname,"
	                 " src_relid = EXCLUDED.src_relid,"
	                 " row_filter = EXCLUDED.row_filter,"
	                 " on_conflict = EXCLUDED.on_conflict",
	                 7, params, NULL, err);
}

bool
state_table_sharers(const State *s, const char *tgt_qname, StateSharer **out,
                    int *n, Error *err)
{
	const char *params[2] = {s->task, tgt_qname};
	PGresult *res;
	StateSharer *sh;

	*out = NULL;
	*n = 0;
	if (!state_run(s,
	               "SELECT task, row_filter, on_conflict FROM @S.tables"
	               " WHERE task <> $1 AND tgt_qname = $2 ORDER BY task",
	               2, params, &res, err))
		return false;
	sh = calloc((size_t) PQntuples(res) + 1, sizeof(*sh));
	if (sh == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		snprintf(sh[i].task, sizeof(sh[i].task), "%s", PQgetvalue(res, i, 0));
		if ((!PQgetisnull(res, i, 1) &&
		     (sh[i].row_filter = strdup(PQgetvalue(res, i, 1))) == NULL) ||
		    (!PQgetisnull(res, i, 2) &&
		     (sh[i].on_conflict = strdup(PQgetvalue(res, i, 2))) == NULL))
		{
			state_sharers_free(sh, i + 1);
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	}
	*n = PQntuples(res);
	*out = sh;
	PQclear(res);
	return true;
}

void
state_sharers_free(StateSharer *sh, int n)
{
	for (int i = 0; sh != NULL && i < n; i++)
	{
		free(sh[i].row_filter);
		free(sh[i].on_conflict);
	}
	free(sh);
}

bool
state_table_forget(const State *s, const char *src_schema, const char *src_name,
                   Error *err)
{
	const char *params[3] = {s->task, src_schema, src_name};

	return state_run(s,
	                 "DELETE FROM @S.insert_only WHERE task = $1"
	                 " AND src_schema = $2 AND src_name = $3",
	                 3, params, NULL, err) &&
	       state_run(s,
	                 "DELETE FROM @S.tables WHERE task = $1"
	                 " AND src_schema = $2 AND src_name = $3",
	                 3, params, NULL, err);
}

bool
state_table_other_owner(const State *s, const char *tgt_qname, char *owner,
                        size_t cap, Error *err)
{
	const char *params[2] = {s->task, tgt_qname};
	PGresult *res;

	owner[0] = '\0';
	if (!state_run(s,
	               "SELECT task FROM @S.tables WHERE task <> $1"
	               " AND tgt_qname = $2 ORDER BY task LIMIT 1",
	               2, params, &res, err))
		return false;
	if (PQntuples(res) == 1)
		snprintf(owner, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

bool
state_tables_load(const State *s, StateTable **out, int *n, Error *err)
{
	const char *params[1] = {s->task};
	PGresult *res;
	StateTable *t;
	bool oom = false;

	*out = NULL;
	*n = 0;
	if (!state_run(s,
	               "SELECT src_schema, src_name, tgt_qname,"
	               " coalesce(snapshot_lsn::text, '0/0'), state = 'done',"
	               " coalesce(src_relid, 0)"
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
		t[i].src_schema = state_dup(res, i, 0, &oom);
		t[i].src_name = state_dup(res, i, 1, &oom);
		t[i].tgt_qname = state_dup(res, i, 2, &oom);
		if (!lsn_parse(PQgetvalue(res, i, 3), &t[i].snapshot_lsn))
			t[i].snapshot_lsn = LSN_INVALID;
		t[i].done = PQgetvalue(res, i, 4)[0] == 't';
		t[i].src_relid = (uint32_t) strtoul(PQgetvalue(res, i, 5), NULL, 10);
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
state_table_done(const State *s, const char *src_schema, const char *src_name,
                 bool *done, Error *err)
{
	const char *params[3] = {s->task, src_schema, src_name};
	PGresult *res;

	if (!state_run(s,
	               "SELECT state = 'done' FROM @S.tables"
	               " WHERE task = $1 AND src_schema = $2 AND src_name = $3",
	               3, params, &res, err))
		return false;
	*done = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

bool
state_table_start(const State *s, const char *src_schema, const char *src_name,
                  Lsn snapshot_lsn, const char *snapshot_txids, int nchunks,
                  const char *format, Error *err)
{
	char lsn_text[LSN_TEXT_MAX];
	char n[16];
	const char *params[7] = {
	    s->task, src_schema, src_name,      lsn_format(snapshot_lsn, lsn_text),
	    n,       format,     snapshot_txids};

	snprintf(n, sizeof(n), "%d", nchunks);
	if (!state_run(s,
	               "DELETE FROM @S.chunks WHERE task = $1 AND src_schema = $2"
	               " AND src_name = $3",
	               3, params, NULL, err))
		return false;
	return state_run(s,
	                 "UPDATE @S.tables SET state = 'copying',"
	                 " snapshot_lsn = $4::pg_lsn, snapshot_txids = $7,"
	                 " loads = loads + 1,"
	                 " chunks = $5::int, chunks_done = 0, rows = 0, bytes = 0,"
	                 " format = $6, started_at = now(), done_at = NULL"
	                 " WHERE task = $1 AND src_schema = $2 AND src_name = $3",
	                 7, params, NULL, err);
}

bool
state_chunks_done(const State *s, const char *src_schema, const char *src_name,
                  bool *done, int nchunks, Error *err)
{
	const char *params[3] = {s->task, src_schema, src_name};
	PGresult *res;

	memset(done, 0, sizeof(bool) * (size_t) nchunks);
	if (!state_run(s,
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
state_chunk_done(const State *s, const char *src_schema, const char *src_name,
                 int chunk, int64_t start_block, int64_t end_block,
                 int64_t rows, int64_t bytes, int run, Error *err)
{
	char c[16], sb[24], eb[24], r[24], b[24], rn[16];
	const char *params[9] = {s->task, src_schema, src_name,
	                         c,       sb,         end_block < 0 ? NULL : eb,
	                         r,       b,          rn};

	snprintf(c, sizeof(c), "%d", chunk);
	snprintf(sb, sizeof(sb), "%lld", (long long) start_block);
	snprintf(eb, sizeof(eb), "%lld", (long long) end_block);
	snprintf(r, sizeof(r), "%lld", (long long) rows);
	snprintf(b, sizeof(b), "%lld", (long long) bytes);
	snprintf(rn, sizeof(rn), "%d", run);
	/* One statement: the chunk row and the table's counters move together. */
	return state_run(
	    s,
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

/* ---- post-data steps ---- */

bool
state_step_save(const State *s, int entry, int phase, const char *kind,
                const char *object, const char *tbl_schema,
                const char *tbl_name, int64_t weight, const char *sql,
                Error *err)
{
	char e[16], p[16], w[24];
	const char *params[9] = {s->task, e,   p,          kind,    object,
	                         w,       sql, tbl_schema, tbl_name};

	snprintf(e, sizeof(e), "%d", entry);
	snprintf(p, sizeof(p), "%d", phase);
	snprintf(w, sizeof(w), "%lld", (long long) weight);
	return state_run(s,
	                 "INSERT INTO @S.ddl (task, entry, phase, kind, object,"
	                 " weight, statement, tbl_schema, tbl_name) VALUES ($1,"
	                 " $2::int, $3::int, $4, $5, $6::bigint, $7, $8, $9)",
	                 9, params, NULL, err);
}

bool
state_steps_pending(const State *s, int phase, StateStep **out, int *n,
                    Error *err)
{
	char p[16];
	const char *params[2] = {s->task, p};
	PGresult *res;
	StateStep *steps;
	bool oom = false;

	*out = NULL;
	*n = 0;
	snprintf(p, sizeof(p), "%d", phase);
	if (!state_run(s,
	               "SELECT entry, kind, coalesce(object, kind), statement,"
	               " tbl_schema, tbl_name, weight"
	               " FROM @S.ddl WHERE task = $1 AND phase = $2::int"
	               " AND done_at IS NULL ORDER BY weight DESC, entry",
	               2, params, &res, err))
		return false;
	steps = calloc((size_t) PQntuples(res) + 1, sizeof(StateStep));
	if (steps == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		StateStep *st = &steps[i];

		st->entry = (int) strtol(PQgetvalue(res, i, 0), NULL, 10);
		st->phase = phase;
		st->kind = state_dup(res, i, 1, &oom);
		st->object = state_dup(res, i, 2, &oom);
		st->sql = state_dup(res, i, 3, &oom);
		st->tbl_schema = state_dup(res, i, 4, &oom);
		st->tbl_name = state_dup(res, i, 5, &oom);
		st->weight = strtoll(PQgetvalue(res, i, 6), NULL, 10);
	}
	*n = PQntuples(res);
	PQclear(res);
	if (oom)
	{
		state_steps_free(steps, *n);
		*n = 0;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*out = steps;
	return true;
}

void
state_steps_free(StateStep *steps, int n)
{
	for (int i = 0; steps != NULL && i < n; i++)
	{
		free(steps[i].kind);
		free(steps[i].object);
		free(steps[i].sql);
		free(steps[i].tbl_schema);
		free(steps[i].tbl_name);
	}
	free(steps);
}

bool
state_step_done(const State *s, int entry, int run, Error *err)
{
	char e[16], r[16];
	const char *params[3] = {s->task, e, r};

	snprintf(e, sizeof(e), "%d", entry);
	snprintf(r, sizeof(r), "%d", run);
	return state_run(s,
	                 "UPDATE @S.ddl SET done_run = $3::int, done_at = now()"
	                 " WHERE task = $1 AND entry = $2::int",
	                 3, params, NULL, err);
}

bool
state_step_is_done(const State *s, int entry, bool *done, Error *err)
{
	char e[16];
	const char *params[2] = {s->task, e};
	PGresult *res;

	snprintf(e, sizeof(e), "%d", entry);
	if (!state_run(s,
	               "SELECT 1 FROM @S.ddl WHERE task = $1 AND entry = $2::int"
	               " AND done_at IS NOT NULL",
	               2, params, &res, err))
		return false;
	*done = PQntuples(res) > 0;
	PQclear(res);
	return true;
}
