/*
 * state validation: pgtide validate's results in the state schema
 * (validation_runs, validation_tables, validation_differences). Writes only
 * what validate hands it; never compares anything itself.
 */
#include "state/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "state/state_int.h"

/* Array literals of a table's differences: at most the differences shown. */
#define STATE_ARRAY_MAX (256u * 1024 * 1024)

bool
state_validation_begin(const State *s, const char *mode, double sample,
                       bool cdc, int64_t *run_id, Error *err)
{
	char text[32];
	const char *params[4] = {s->task, mode, text, cdc ? "true" : "false"};
	PGresult *res;

	snprintf(text, sizeof(text), "%.6f", sample);
	if (!state_run(s,
	               "INSERT INTO @S.validation_runs (task, mode, sample, cdc)"
	               " VALUES ($1, $2, $3::float8, $4::boolean) RETURNING id",
	               4, params, &res, err))
		return false;
	*run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

/* The differences as five parallel text[] literals, for one INSERT. */
static bool
diff_arrays(const StateValidationDiff *d, int n, Buf arrays[5], Error *err)
{
	for (int a = 0; a < 5; a++)
		buf_add_str(&arrays[a], "{", err);
	for (int i = 0; i < n; i++)
	{
		char sc[24], tc[24];

		snprintf(sc, sizeof(sc), "%" PRId64, d[i].source_copies);
		snprintf(tc, sizeof(tc), "%" PRId64, d[i].target_copies);
		pg_array_item(&arrays[0], d[i].kind, err);
		pg_array_item(&arrays[1], d[i].key, err);
		pg_array_item(&arrays[2], d[i].row, err);
		pg_array_item(&arrays[3], d[i].counted ? sc : NULL, err);
		pg_array_item(&arrays[4], d[i].counted ? tc : NULL, err);
	}
	for (int a = 0; a < 5; a++)
		if (!buf_add_str(&arrays[a], "}", err))
			return false;
	return true;
}

bool
state_validation_table(const State *s, int64_t run_id,
                       const StateValidationTable *t,
                       const StateValidationDiff *diffs, int ndiffs, Error *err)
{
	char id[24], ranges[16], checked[16], rs[24], rt[24], df[24];
	const char *params[11] = {
	    id,      t->src_table, t->tgt_table, t->status, t->key_columns, ranges,
	    checked, rs,           rt,           df,        t->detail};
	Buf arrays[5];
	bool ok;

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	snprintf(ranges, sizeof(ranges), "%d", t->ranges);
	snprintf(checked, sizeof(checked), "%d", t->ranges_checked);
	snprintf(rs, sizeof(rs), "%" PRId64, t->rows_source);
	snprintf(rt, sizeof(rt), "%" PRId64, t->rows_target);
	snprintf(df, sizeof(df), "%" PRId64, t->differences);
	if (!state_run(s,
	               "INSERT INTO @S.validation_tables (run_id, src_table,"
	               " tgt_table, status, key_columns, ranges,"
	               " ranges_checked, rows_source, rows_target,"
	               " differences, detail) VALUES ($1::bigint, $2, $3, $4,"
	               " $5, $6::int, $7::int, $8::bigint, $9::bigint,"
	               " $10::bigint, $11)",
	               11, params, NULL, err))
		return false;
	if (ndiffs == 0)
		return true;
	for (int a = 0; a < 5; a++)
		buf_init(&arrays[a], STATE_ARRAY_MAX);
	ok = diff_arrays(diffs, ndiffs, arrays, err);
	if (ok)
	{
		const char *dp[7] = {id,
		                     t->src_table,
		                     buf_str(&arrays[0]),
		                     buf_str(&arrays[1]),
		                     buf_str(&arrays[2]),
		                     buf_str(&arrays[3]),
		                     buf_str(&arrays[4])};

		ok = state_run(s,
		               "INSERT INTO @S.validation_differences (run_id,"
		               " src_table, seq, kind, key, row_text, source_copies,"
		               " target_copies) SELECT $1::bigint, $2, u.o, u.k, u.ky,"
		               " u.rw, u.sc::bigint, u.tc::bigint FROM"
		               " unnest($3::text[], $4::text[], $5::text[],"
		               " $6::text[], $7::text[]) WITH ORDINALITY"
		               " AS u(k, ky, rw, sc, tc, o)",
		               7, dp, NULL, err);
	}
	for (int a = 0; a < 5; a++)
		buf_free(&arrays[a]);
	return ok;
}

bool
state_validation_end(const State *s, int64_t run_id,
                     const StateValidationTotals *t, Error *err)
{
	char id[24], nt[16], nd[16], nr[24], nc[24], rs[24], rt[24], df[24];
	const char *params[9] = {id, t->status, nt, nd, nr, nc, rs, rt, df};

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	snprintf(nt, sizeof(nt), "%d", t->tables);
	snprintf(nd, sizeof(nd), "%d", t->tables_differing);
	snprintf(nr, sizeof(nr), "%" PRId64, t->ranges);
	snprintf(nc, sizeof(nc), "%" PRId64, t->ranges_checked);
	snprintf(rs, sizeof(rs), "%" PRId64, t->rows_source);
	snprintf(rt, sizeof(rt), "%" PRId64, t->rows_target);
	snprintf(df, sizeof(df), "%" PRId64, t->differences);
	return state_run(s,
	                 "UPDATE @S.validation_runs SET status = $2,"
	                 " finished_at = now(), tables = $3::int,"
	                 " tables_differing = $4::int, ranges = $5::bigint,"
	                 " ranges_checked = $6::bigint,"
	                 " rows_source = $7::bigint, rows_target = $8::bigint,"
	                 " differences = $9::bigint WHERE id = $1::bigint",
	                 9, params, NULL, err);
}

bool
state_validation_fail(const State *s, int64_t run_id, bool interrupted,
                      const char *message, Error *err)
{
	char id[24];
	const char *params[3] = {id, interrupted ? "interrupted" : "failed",
	                         message};

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	return state_run(s,
	                 "UPDATE @S.validation_runs SET status = $2,"
	                 " error = $3, finished_at = now()"
	                 " WHERE id = $1::bigint",
	                 3, params, NULL, err);
}
