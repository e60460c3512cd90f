/*
 * validate_result: what a comparison finds. The differences a job names
 * (VDiff), kept up to VALIDATE_SHOWN per table and counted beyond, merged
 * from jobs into their table, totalled over a run, and named for people
 * ("missing", "(a, b)=(1, x)"). Pure: no SQL, no I/O, no locks (callers
 * merge under the run's lock).
 */
#include "verify/validate_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

const char *const vkind_names[] = {"missing", "extra", "different"};

const char *const vstatus_names[] = {"equal", "different", "missing",
                                     "missing_on_source", "columns"};

void
result_diff_free(VDiff *d, int nkeys)
{
	strv_free(d->key, nkeys);
	free(d->row);
	memset(d, 0, sizeof(*d));
}

void
result_free(VResult *res, int nkeys)
{
	for (int i = 0; i < res->nshown; i++)
		result_diff_free(&res->shown[i], nkeys);
	free(res->shown);
	free(res->unsettled_key);
	memset(res, 0, sizeof(*res));
}

/*
 * Counts one difference of `copies` rows and keeps *d (ownership moves to
 * res) while fewer than VALIDATE_SHOWN are kept; otherwise frees it.
 */
void
result_add(VResult *res, VDiff *d, int64_t copies, int nkeys)
{
	res->differences += copies;
	if (res->nshown < VALIDATE_SHOWN)
	{
		if (res->shown == NULL)
			res->shown = calloc(VALIDATE_SHOWN, sizeof(VDiff));
		if (res->shown != NULL)
		{
			res->shown[res->nshown++] = *d;
			memset(d, 0, sizeof(*d));
			return;
		}
	}
	result_diff_free(d, nkeys);
}

/* Moves what src holds into dst; src is empty afterwards. */
void
result_merge(VResult *dst, VResult *src, int nkeys)
{
	dst->rows_src += src->rows_src;
	dst->rows_tgt += src->rows_tgt;
	for (int i = 0; i < src->nshown; i++)
		result_add(dst, &src->shown[i], 0, nkeys);
	dst->differences += src->differences;
	dst->unsettled += src->unsettled;
	if (dst->unsettled_key == NULL)
	{
		dst->unsettled_key = src->unsettled_key;
		src->unsettled_key = NULL;
	}
	free(src->unsettled_key);
	free(src->shown);
	memset(src, 0, sizeof(*src));
}

bool
result_set_problem(VTable *t, VStatus status, const char *what, Error *err)
{
	t->status = status;
	t->problem = strdup(what);
	if (t->problem == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	t->res.differences = 1;
	return true;
}

/* First-level ranges of t: none when it could not be compared. */
int
result_ranges(const VTable *t)
{
	return t->problem != NULL ? 0 : t->nbounds + 1;
}

/*
 * "(a, b)=(1, x)", as PostgreSQL names a key; malloc'd, NULL when out of
 * memory.
 */
char *
result_key_text(const VTable *t, const VDiff *d)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	buf_add_str(&b, "(", &err);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&b, &err, "%s%s", k ? ", " : "", t->key_names[k]);
	buf_add_str(&b, ")=(", &err);
	for (int k = 0; k < t->nkeys; k++)
		buf_printf(&b, &err, "%s%s", k ? ", " : "",
		           d->key != NULL && d->key[k] != NULL ? d->key[k] : "NULL");
	buf_add_str(&b, ")", &err);
	return buf_take(&b, &out, &err) ? out : NULL;
}

/* Totals over the tables. */
void
result_summarize(const VRun *r, ValidateSummary *s, int64_t *ranges,
                 int64_t *checked)
{
	memset(s, 0, sizeof(*s));
	*ranges = 0;
	*checked = 0;
	s->tables = r->ntables;
	for (int i = 0; i < r->ntables; i++)
	{
		const VTable *t = &r->tables[i];

		s->tables_differing += t->status != VS_EQUAL;
		s->rows_source += t->res.rows_src;
		s->rows_target += t->res.rows_tgt;
		s->differences += t->res.differences;
		s->unsettled += t->res.unsettled;
		*ranges += result_ranges(t);
		*checked += t->checks_done;
	}
}
