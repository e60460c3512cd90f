/*
 * validate_record: a run's results handed to the state module, which writes
 * them to validation_runs, validation_tables and validation_differences.
 * The only part of validate that writes, through the one session it is
 * given, and only through the state module; never to the source.
 */
#include "verify/validate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "pg/pg.h"
#include "state/state.h"

bool
record_start(VRun *r, PgConn *tgt, Error *err)
{
	State state;
	bool exists;

	/* a target without pgtide's state is compared, never written to */
	if (!state_attach(&state, tgt, r->cfg->state_schema, r->cfg->task, &exists,
	                  err))
		return err_prefix(err, "could not record the validation: ");
	if (!exists)
	{
		log_info("the target has no pgtide state (schema \"%s\"): the "
		         "results are printed, not recorded",
		         r->cfg->state_schema);
		r->run_id = -1;
		return true;
	}
	if (!state_open(&state, tgt, r->cfg->state_schema, r->cfg->task, err) ||
	    !state_validation_begin(
	        &state, r->mode == VALIDATE_FULL ? "full" : "counts",
	        r->cfg->validate_sample, r->cdc, &r->run_id, err))
		return err_prefix(err, "could not record the validation: ");
	return true;
}

/* A table's result and its named differences, handed to the state. */
static bool
record_table(const VRun *r, const State *state, const VTable *t, Error *err)
{
	StateValidationTable rec;
	StateValidationDiff *diffs = NULL;
	char **key_texts = NULL; /* owned: diffs' keys */
	Buf keys = BUF_INIT(VALIDATE_SQL_MAX);
	char *kc = NULL;
	bool ok = false;

	memset(&rec, 0, sizeof(rec));
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&keys, err, "%s%s", k ? ", " : "", t->key_names[k]);
	if (t->keyed && !buf_take(&keys, &kc, err))
		goto out;
	rec.src_table = t->name;
	rec.tgt_table = t->tgt_name;
	rec.status = vstatus_names[t->status];
	rec.key_columns = kc;
	rec.detail = t->problem;
	rec.ranges = result_ranges(t);
	rec.ranges_checked = t->checks_done;
	rec.rows_source = t->res.rows_src;
	rec.rows_target = t->res.rows_tgt;
	rec.differences = t->res.differences;
	diffs = calloc((size_t) t->res.nshown + 1, sizeof(StateValidationDiff));
	key_texts = calloc((size_t) t->res.nshown + 1, sizeof(char *));
	if (diffs == NULL || key_texts == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < t->res.nshown; i++)
	{
		const VDiff *d = &t->res.shown[i];

		diffs[i].kind = vkind_names[d->kind];
		diffs[i].row = d->row;
		diffs[i].counted = !t->keyed;
		diffs[i].source_copies = d->src_copies;
		diffs[i].target_copies = d->tgt_copies;
		if (t->keyed && (key_texts[i] = result_key_text(t, d)) == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		diffs[i].key = key_texts[i];
	}
	ok = state_validation_table(state, r->run_id, &rec, diffs, t->res.nshown,
	                            err);
out:
	for (int i = 0; key_texts != NULL && i < t->res.nshown; i++)
		free(key_texts[i]);
	free(key_texts);
	free(diffs);
	buf_free(&keys);
	free(kc);
	return ok;
}

bool
record_end(VRun *r, PgConn *tgt, const Error *failure, Error *err)
{
	State state;
	StateValidationTotals totals;
	ValidateSummary s;
	bool exists, ok;

	if (r->run_id < 0)
		return true;
	if (!state_attach(&state, tgt, r->cfg->state_schema, r->cfg->task, &exists,
	                  err))
		return err_prefix(err, "could not record the validation: ");
	if (failure != NULL)
		return state_validation_fail(&state, r->run_id,
		                             failure->kind == ERR_INTERRUPTED,
		                             failure->message, err) ||
		       err_prefix(err, "could not record the validation: ");
	memset(&totals, 0, sizeof(totals));
	result_summarize(r, &s, &totals.ranges, &totals.ranges_checked);
	totals.status =
	    s.tables_differing > 0 || s.differences > 0 ? "different" : "equal";
	totals.tables = s.tables;
	totals.tables_differing = s.tables_differing;
	totals.rows_source = s.rows_source;
	totals.rows_target = s.rows_target;
	totals.differences = s.differences;
	if (!pg_exec(tgt, "BEGIN", err))
		return false;
	ok = true;
	for (int i = 0; ok && i < r->ntables; i++)
		ok = record_table(r, &state, &r->tables[i], err);
	ok = ok && state_validation_end(&state, r->run_id, &totals, err);
	if (!ok)
	{
		Error ignored = ERR_INIT;

		pg_exec(tgt, "ROLLBACK", &ignored);
		return err_prefix(err, "could not record the validation: ");
	}
	return pg_exec(tgt, "COMMIT", err);
}
