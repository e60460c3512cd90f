/*
 * validate_record: a run's results in the state schema on the target:
 * validation_runs, validation_tables and validation_differences (state.c
 * defines them). The only code of validate that writes, through the one
 * session it is given, and only to those tables; never to the source.
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "pg/pg.h"
#include "state/state.h"

static bool
state_exec(PgConn *tgt, const char *schema, const char *fmt, int n,
           const char *const *params, PGresult **out, Error *err)
{
	if (!state_query(tgt, schema, fmt, n, params, out, err))
		return err_prefix(err, "could not record the validation: ");
	return true;
}

/* Creates the result tables if missing and the run's row; sets run_id. */
bool
record_start(VRun *r, PgConn *tgt, Error *err)
{
	const char *schema = r->cfg->state_schema;
	char sample[32];
	const char *params[4] = {r->cfg->task,
	                         r->mode == VALIDATE_FULL ? "full" : "counts",
	                         sample, r->cdc ? "true" : "false"};
	PGresult *res;

	snprintf(sample, sizeof(sample), "%.6f", r->cfg->validate_sample);
	if (!state_init(tgt, schema, err) ||
	    !state_exec(tgt, schema,
	                "INSERT INTO @S.validation_runs (task, mode, sample, cdc)"
	                " VALUES ($1, $2, $3::float8, $4::boolean) RETURNING id",
	                4, params, &res, err))
		return false;
	r->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

static bool
record_table(const VRun *r, PgConn *tgt, const VTable *t, Error *err)
{
	const char *schema = r->cfg->state_schema;
	char id[24], ranges[16], checked[16], rs[24], rt[24], diffs[24];
	Buf keys = BUF_INIT(VALIDATE_SQL_MAX), kinds = BUF_INIT(VALIDATE_SQL_MAX);
	Buf keyv = BUF_INIT(VALIDATE_SQL_MAX), rows = BUF_INIT(VALIDATE_SQL_MAX);
	Buf sc = BUF_INIT(VALIDATE_SQL_MAX), tc = BUF_INIT(VALIDATE_SQL_MAX);
	char *kc = NULL, *a1 = NULL, *a2 = NULL, *a3 = NULL, *a4 = NULL, *a5 = NULL;
	char *a6 = NULL;
	bool ok = false;

	snprintf(id, sizeof(id), "%" PRId64, r->run_id);
	snprintf(ranges, sizeof(ranges), "%d", result_ranges(t));
	snprintf(checked, sizeof(checked), "%d", t->checks_done);
	snprintf(rs, sizeof(rs), "%" PRId64, t->res.rows_src);
	snprintf(rt, sizeof(rt), "%" PRId64, t->res.rows_tgt);
	snprintf(diffs, sizeof(diffs), "%" PRId64, t->res.differences);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&keys, err, "%s%s", k ? ", " : "", t->key_names[k]);
	if (t->keyed && !buf_take(&keys, &kc, err))
		goto out;
	{
		const char *params[11] = {
		    id, t->name, t->tgt_name, vstatus_names[t->status],
		    kc, ranges,  checked,     rs,
		    rt, diffs,   t->problem};

		if (!state_exec(tgt, schema,
		                "INSERT INTO @S.validation_tables (run_id, src_table,"
		                " tgt_table, status, key_columns, ranges,"
		                " ranges_checked, rows_source, rows_target,"
		                " differences, detail) VALUES ($1::bigint, $2, $3, $4,"
		                " $5, $6::int, $7::int, $8::bigint, $9::bigint,"
		                " $10::bigint, $11)",
		                11, params, NULL, err))
			goto out;
	}
	if (t->res.nshown == 0)
	{
		ok = true;
		goto out;
	}
	buf_add_str(&kinds, "{", err);
	buf_add_str(&keyv, "{", err);
	buf_add_str(&rows, "{", err);
	buf_add_str(&sc, "{", err);
	buf_add_str(&tc, "{", err);
	for (int i = 0; i < t->res.nshown; i++)
	{
		const VDiff *d = &t->res.shown[i];
		char *k = t->keyed ? result_key_text(t, d) : NULL;
		char n1[24], n2[24];

		snprintf(n1, sizeof(n1), "%" PRId64, d->src_copies);
		snprintf(n2, sizeof(n2), "%" PRId64, d->tgt_copies);
		query_array_item(&kinds, vkind_names[d->kind], err);
		query_array_item(&keyv, k, err);
		query_array_item(&rows, d->row, err);
		query_array_item(&sc, t->keyed ? NULL : n1, err);
		query_array_item(&tc, t->keyed ? NULL : n2, err);
		free(k);
	}
	buf_add_str(&kinds, "}", err);
	buf_add_str(&keyv, "}", err);
	buf_add_str(&rows, "}", err);
	buf_add_str(&sc, "}", err);
	buf_add_str(&tc, "}", err);
	if (!buf_take(&kinds, &a1, err) || !buf_take(&keyv, &a2, err) ||
	    !buf_take(&rows, &a3, err) || !buf_take(&sc, &a4, err) ||
	    !buf_take(&tc, &a5, err) || (a6 = strdup(t->name)) == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	{
		const char *params[7] = {id, a6, a1, a2, a3, a4, a5};

		ok = state_exec(tgt, schema,
		                "INSERT INTO @S.validation_differences (run_id,"
		                " src_table, seq, kind, key, row_text, source_copies,"
		                " target_copies) SELECT $1::bigint, $2, u.o, u.k, u.ky,"
		                " u.rw, u.sc::bigint, u.tc::bigint FROM"
		                " unnest($3::text[], $4::text[], $5::text[],"
		                " $6::text[], $7::text[]) WITH ORDINALITY"
		                " AS u(k, ky, rw, sc, tc, o)",
		                7, params, NULL, err);
	}
out:
	buf_free(&keys);
	buf_free(&kinds);
	buf_free(&keyv);
	buf_free(&rows);
	buf_free(&sc);
	buf_free(&tc);
	free(kc);
	free(a1);
	free(a2);
	free(a3);
	free(a4);
	free(a5);
	free(a6);
	return ok;
}

/* Records the outcome: results in one transaction, or the failure. */
bool
record_end(VRun *r, PgConn *tgt, const Error *failure, Error *err)
{
	const char *schema = r->cfg->state_schema;
	ValidateSummary s;
	int64_t ranges, checked;
	char id[24], nt[16], nd[16], nr[24], nc[24], rs[24], rt[24], df[24];
	const char *status;
	bool ok;

	if (r->run_id < 0)
		return true;
	result_summarize(r, &s, &ranges, &checked);
	snprintf(id, sizeof(id), "%" PRId64, r->run_id);
	snprintf(nt, sizeof(nt), "%d", s.tables);
	snprintf(nd, sizeof(nd), "%d", s.tables_differing);
	snprintf(nr, sizeof(nr), "%" PRId64, ranges);
	snprintf(nc, sizeof(nc), "%" PRId64, checked);
	snprintf(rs, sizeof(rs), "%" PRId64, s.rows_source);
	snprintf(rt, sizeof(rt), "%" PRId64, s.rows_target);
	snprintf(df, sizeof(df), "%" PRId64, s.differences);
	if (failure != NULL)
	{
		const char *params[3] = {
		    id, failure->kind == ERR_INTERRUPTED ? "interrupted" : "failed",
		    failure->message};

		return state_exec(tgt, schema,
		                  "UPDATE @S.validation_runs SET status = $2,"
		                  " error = $3, finished_at = now()"
		                  " WHERE id = $1::bigint",
		                  3, params, NULL, err);
	}
	status =
	    s.tables_differing > 0 || s.differences > 0 ? "different" : "equal";
	if (!pg_exec(tgt, "BEGIN", err))
		return false;
	ok = true;
	for (int i = 0; ok && i < r->ntables; i++)
		ok = record_table(r, tgt, &r->tables[i], err);
	if (ok)
	{
		const char *params[9] = {id, status, nt, nd, nr, nc, rs, rt, df};

		ok = state_exec(tgt, schema,
		                "UPDATE @S.validation_runs SET status = $2,"
		                " finished_at = now(), tables = $3::int,"
		                " tables_differing = $4::int, ranges = $5::bigint,"
		                " ranges_checked = $6::bigint,"
		                " rows_source = $7::bigint, rows_target = $8::bigint,"
		                " differences = $9::bigint WHERE id = $1::bigint",
		                9, params, NULL, err);
	}
	if (!ok)
	{
		Error ignored = ERR_INIT;

		pg_exec(tgt, "ROLLBACK", &ignored);
		return false;
	}
	return pg_exec(tgt, "COMMIT", err);
}
