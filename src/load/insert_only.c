/*
 * insert_only: keyless tables streamed for their inserts only, and the
 * watch over them through the source's statistics (insert_only.h says
 * why). It reads the source and writes only the task's state.
 */
#include "load/insert_only.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"

/* an oid[] literal for every table of a task */
#define INSERT_ONLY_OIDS_MAX ((size_t) 16 << 20)

void
insert_only_publication(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s_inserts", name);
}

bool
insert_only_table(const CatTable *t)
{
	return t->persistence == 'p' && !t->has_identity;
}

/*
 * out[i] = n_tup_upd + n_tup_del of t[i] now. The statistics snapshot is
 * cleared first: a session inside a transaction would otherwise read the
 * same counts again.
 */
static bool
read_counts(PgConn *src, const StateInsertOnly *t, int n, int64_t *out,
            Error *err)
{
	Buf oids = BUF_INIT(INSERT_ONLY_OIDS_MAX);
	const char *params[1];
	PGresult *res;
	bool ok;

	buf_add_str(&oids, "{", NULL);
	for (int i = 0; i < n; i++)
		buf_printf(&oids, NULL, "%s%u", i ? "," : "", t[i].relid);
	buf_add_str(&oids, "}", NULL);
	if (!buf_check(&oids, err))
		return false;
	params[0] = buf_str(&oids);
	ok = pg_exec(src, "SELECT pg_catalog.pg_stat_clear_snapshot()", err) &&
	     pg_query(src,
	              "SELECT pg_catalog.pg_stat_get_tuples_updated(r)"
	              " + pg_catalog.pg_stat_get_tuples_deleted(r)"
	              " FROM unnest($1::oid[]) WITH ORDINALITY AS u(r, i)"
	              " ORDER BY i",
	              1, params, &res, err);
	buf_free(&oids);
	if (!ok)
		return err_prefix(err, "could not read the source's statistics of "
		                       "its tables without a key: ");
	for (int i = 0; i < n && i < PQntuples(res); i++)
		out[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	return true;
}

bool
insert_only_baselines(PgConn *src, StateInsertOnly *t, int n, Error *err)
{
	int64_t *counts;
	bool ok;

	if (n == 0)
		return true;
	counts = calloc((size_t) n, sizeof(*counts));
	if (counts == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = read_counts(src, t, n, counts, err);
	for (int i = 0; ok && i < n; i++)
		t[i].baseline = counts[i];
	free(counts);
	return ok;
}

bool
insert_only_watch(PgConn *src, const State *st, bool record,
                  InsertOnlyWatch *out, Error *err)
{
	int64_t *counts = NULL;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!state_insert_only_load(st, &out->tables, &out->n, err))
		return false;
	if (out->n == 0)
		return true;
	counts = calloc((size_t) out->n, sizeof(*counts));
	if (counts == NULL)
	{
		insert_only_watch_free(out);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	ok = read_counts(src, out->tables, out->n, counts, err);
	for (int i = 0; ok && i < out->n; i++)
	{
		StateInsertOnly *t = &out->tables[i];

		if (t->diverged)
		{
			out->diverged++;
			continue;
		}
		if (counts[i] > t->baseline)
			snprintf(t->reason, sizeof(t->reason),
			         "%lld UPDATE or DELETE on the source since the load "
			         "began (pg_stat_user_tables)",
			         (long long) (counts[i] - t->baseline));
		else if (counts[i] < t->baseline)
			snprintf(t->reason, sizeof(t->reason),
			         "the source's statistics of the table were reset "
			         "(n_tup_upd + n_tup_del went from %lld down to %lld), "
			         "so pgtide cannot tell whether it saw an UPDATE or "
			         "DELETE",
			         (long long) t->baseline, (long long) counts[i]);
		else
			continue;
		t->diverged = true;
		out->diverged++;
		out->new_diverged++;
		log_warn("table %s.%s has no key, so only its INSERTs are streamed, "
		         "and it has diverged: %s; cutover refuses it unless told to "
		         "copy it again while the source is fenced "
		         "(--diverged=recopy)",
		         t->src_schema, t->src_name, t->reason);
		if (record)
			ok = state_insert_only_diverged(st, t->src_schema, t->src_name,
			                                t->reason, err);
	}
	free(counts);
	if (!ok)
		insert_only_watch_free(out);
	return ok;
}

void
insert_only_watch_free(InsertOnlyWatch *w)
{
	state_insert_only_free(w->tables, w->n);
	memset(w, 0, sizeof(*w));
}

void
insert_only_names(const InsertOnlyWatch *w, char *out, size_t cap)
{
	size_t len = 0;
	int shown = 0;

	out[0] = '\0';
	for (int i = 0; i < w->n; i++)
	{
		const StateInsertOnly *t = &w->tables[i];

		if (!t->diverged)
			continue;
		if (shown == 3)
		{
			snprintf(out + len, cap - len, " and %d more", w->diverged - 3);
			return;
		}
		len +=
		    (size_t) snprintf(out + len, len < cap ? cap - len : 0, "%s%s.%s",
		                      shown ? ", " : "", t->src_schema, t->src_name);
		if (len >= cap)
			return;
		shown++;
	}
}
