/*
 * apply_handover: a key the lookup table gives another target, its rows
 * moved between the two targets' streams (decision 0045).
 *
 * Both streams meet the change at the same place in the same source
 * transaction. The giving target's stream reads the key's rows from its own
 * target inside its open batch (so as of the change), stages them in the
 * taking target's state in a transaction of its own on that server, then
 * deletes them in its batch. The taking target's stream waits in its batch
 * until the rows are staged, and inserts them into its tables and marks them
 * taken in its batch: each side's part commits with its replication origin,
 * and a side that crashes redoes only its own part. A giving stream never
 * waits, so keys swapped in one transaction cannot deadlock.
 *
 * The rows travel from one target to the other, never from the source, so
 * they are exactly what the change stream made of them up to the change.
 * It never writes to the source, and never logs a key (row values stay out
 * of logs).
 */
#include "cdc/apply_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "pg/pg.h"
#include "route/rename.h"
#include "state/state.h"

/* Rows per FETCH of the giving target's cursor, and the most bytes of rows
 * staged in one statement (one value may be up to 1 GB, alone). */
#define HANDOVER_FETCH     "100"
#define HANDOVER_BATCH_MAX ((size_t) 16 << 20)
#define HANDOVER_ROWS_CAP  ((size_t) 1 << 30)

/* How long the taking stream waits between looks for staged rows. */
#define HANDOVER_POLL_MS 200

/* Whether the task table t is routed by the key and holds rows of it. */
static bool
moves(const ApplyTable *t)
{
	return t->route_key != NULL && !t->lookup;
}

/* Whether this stream applies the open transaction's changes to t: its
 * copy was taken before the change (apply_message's skip, mirrored). */
static bool
applies(const Applier *a, const ApplyTable *t)
{
	return a->final_lsn >= t->load_point;
}

/* t's routing column by its target name, quoted (malloc'd). */
static bool
key_column(const Applier *a, const ApplyTable *t, char **qcol, Error *err)
{
	char *const cols[1] = {(char *) (uintptr_t) t->route_key};
	RenamedTable rt;
	const char *name = t->route_key;
	bool ok = true;

	memset(&rt, 0, sizeof(rt));
	if (a->task.renames != NULL && !rename_none(a->task.renames))
	{
		ok = rename_table(a->task.renames, t->src_schema, t->src_name, cols, 1,
		                  NULL, &rt, err);
		name = ok ? rt.cols[0] : NULL;
		if (ok && name == NULL)
			ok = err_set(err, ERR_CONFIG,
			             "table %s.%s routes by column %s, which the "
			             "task's rules remove",
			             t->src_schema, t->src_name, t->route_key);
	}
	if (ok && (*qcol = pg_quote_ident(name)) == NULL)
		ok = err_set(err, ERR_INTERNAL, "out of memory");
	rename_table_free(&rt);
	return ok;
}

/* One column of res per row as a text[] literal, into b (reset first). */
static bool
column_literal(Buf *b, const PGresult *res, int col, Error *err)
{
	buf_reset(b);
	buf_add_str(b, "{", err);
	for (int i = 0; i < PQntuples(res); i++)
		pg_array_item(b, PQgetvalue(res, i, col), err);
	return buf_add_str(b, "}", err);
}

/*
 * Stages t's rows of key on the taking target (s, inside its open
 * transaction): a cursor in this stream's batch reads them as the batch
 * holds them. *rows counts them.
 */
static bool
stage_table(Applier *a, const State *s, const ApplyTable *t, const char *qkey,
            const char *change, const char *key, int64_t *rows, Error *err)
{
	const char *param[1] = {t->tgt_qname};
	const char *keyp[1] = {key};
	PGresult *cols = NULL, *got = NULL;
	Buf sql, names, row, batch;
	bool ok;

	buf_init(&sql, APPLY_SQL_MAX);
	buf_init(&names, APPLY_SQL_MAX);
	buf_init(&row, HANDOVER_ROWS_CAP);
	buf_init(&batch, HANDOVER_ROWS_CAP);
	/* generated columns are computed again where the rows land;
	   attgenerated is 12+, read through to_jsonb as load/target does */
	ok = apply_query(a,
	                 "SELECT a.attname FROM pg_catalog.pg_attribute a"
	                 " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
	                 " AND NOT a.attisdropped"
	                 " AND coalesce(to_jsonb(a)->>'attgenerated', '') = ''"
	                 " ORDER BY a.attnum",
	                 1, param, &cols, err) &&
	     column_literal(&names, cols, 0, err) &&
	     buf_add_str(
	         &sql, "DECLARE pgtide_handover NO SCROLL CURSOR FOR SELECT ", err);
	for (int i = 0; ok && i < PQntuples(cols); i++)
	{
		char *q = pg_quote_ident(PQgetvalue(cols, i, 0));

		ok = q != NULL ? buf_printf(&sql, err, "%s%s", i ? ", " : "", q)
		               : err_set(err, ERR_INTERNAL, "out of memory");
		free(q);
	}
	ok = ok &&
	     buf_printf(&sql, err, " FROM %s%s WHERE %s = $1",
	                apply_only(a, t->tgt_qname), t->tgt_qname, qkey) &&
	     apply_send_plain(a, buf_str(&sql), 1, keyp, err);
	while (ok)
	{
		int n;

		PQclear(got);
		got = NULL;
		if (!apply_query(a, "FETCH " HANDOVER_FETCH " FROM pgtide_handover", 0,
		                 NULL, &got, err))
		{
			ok = false;
			break;
		}
		n = PQntuples(got);
		for (int i = 0; ok && i < n; i++)
		{
			buf_reset(&row);
			ok = buf_add_str(&row, "{", err);
			for (int c = 0; ok && c < PQnfields(got); c++)
				ok = pg_array_item(
				    &row, PQgetisnull(got, i, c) ? NULL : PQgetvalue(got, i, c),
				    err);
			ok = ok && buf_add_str(&row, "}", err) &&
			     (buf_len(&batch) > 0 || buf_add_str(&batch, "{", err)) &&
			     pg_array_item(&batch, buf_str(&row), err);
			*rows += ok;
			if (ok && buf_len(&batch) >= HANDOVER_BATCH_MAX)
			{
				ok = buf_add_str(&batch, "}", err) &&
				     state_handover_add_rows(s, change, key, t->tgt_qname,
				                             buf_str(&names), buf_str(&batch),
				                             err);
				buf_reset(&batch);
			}
		}
		if (n == 0)
			break;
	}
	if (ok && buf_len(&batch) > 0)
		ok = buf_add_str(&batch, "}", err) &&
		     state_handover_add_rows(s, change, key, t->tgt_qname,
		                             buf_str(&names), buf_str(&batch), err);
	ok = ok && apply_send_plain(a, "CLOSE pgtide_handover", 0, NULL, err);
	PQclear(cols);
	PQclear(got);
	buf_free(&sql);
	buf_free(&names);
	buf_free(&row);
	buf_free(&batch);
	return ok ||
	       err_prefix(err, "staging the rows of table %s: ", t->tgt_qname);
}

/* The taking target's session, its state bound: staged there, committed. */
static bool
give(Applier *a, const char *change, const char *key, int to, Error *err)
{
	const char *taker = shard_spec_target_name(a->task.shard, to);
	const char *keyp[1] = {key};
	Buf staged, after, sql;
	PgConn *conn = NULL;
	State s;
	bool ok = true, done = false;
	int64_t rows = 0;
	int ntables = 0;

	buf_init(&staged, APPLY_SQL_MAX);
	buf_init(&after, APPLY_SQL_MAX);
	buf_init(&sql, APPLY_SQL_MAX);
	buf_add_str(&staged, "{", err);
	buf_add_str(&after, "{", err);
	for (int i = 0; i < a->ntables; i++)
		if (moves(&a->tables[i]))
			pg_array_item(applies(a, &a->tables[i]) ? &staged : &after,
			              a->tables[i].tgt_qname, err);
	ok = buf_add_str(&staged, "}", err) && buf_add_str(&after, "}", err) &&
	     pg_connect(shard_spec_target_uri(a->task.shard, to), ERR_TARGET,
	                PG_CONN_SQL, "pgtide", 5000, &conn, err) &&
	     state_bind(&s, conn, a->task.state_schema, a->task.task, err) &&
	     pg_exec(conn, "BEGIN", err) &&
	     state_handover_staged(&s, change, key, &done, err);
	ok = ok && (done ||
	            state_handover_begin(
	                &s, change, key,
	                shard_spec_target_name(a->task.shard, a->task.shard_target),
	                buf_str(&staged), buf_str(&after), err));
	/* each table's rows staged (unless an earlier run did), then deleted
	   in the batch that applies the change: the batch commits after the
	   staging, or not at all */
	for (int i = 0; ok && i < a->ntables; i++)
	{
		const ApplyTable *t = &a->tables[i];
		char *qkey = NULL;

		if (!moves(t) || !applies(a, t))
			continue;
		buf_reset(&sql);
		ok = key_column(a, t, &qkey, err) &&
		     (done || stage_table(a, &s, t, qkey, change, key, &rows, err)) &&
		     buf_printf(&sql, err, "DELETE FROM %s%s WHERE %s = $1",
		                apply_only(a, t->tgt_qname), t->tgt_qname, qkey) &&
		     apply_send_plain(a, buf_str(&sql), 1, keyp, err);
		ntables++;
		free(qkey);
	}
	ok = ok && (done || pg_exec(conn, "COMMIT", err));
	if (!ok)
		err->retryable = err->retryable || err->kind == ERR_TARGET;
	pg_close(conn);
	fault_point("handover.staged");
	if (ok && !done)
		log_info("a key the lookup table moved to target %s: %lld rows of "
		         "%d tables staged there, leaving this target in this batch "
		         "(change %s)",
		         taker, (long long) rows, ntables, change);
	else if (ok)
		log_info("a key the lookup table moved to target %s was staged there "
		         "by an earlier run; its rows leave this target in this "
		         "batch (change %s)",
		         taker, change);
	buf_free(&staged);
	buf_free(&after);
	buf_free(&sql);
	return ok || err_prefix(err, "handing a key's rows to target %s: ", taker);
}

/* Where table tbl is in the handover's description (find's rows): 's'
 * staged, 'a' loaded after the change by the giving target, 0 neither. */
static char
staged_as(const PGresult *found, const char *tbl)
{
	for (int i = 0; i < PQntuples(found); i++)
		if (!PQgetisnull(found, i, 0) &&
		    strcmp(PQgetvalue(found, i, 0), tbl) == 0)
			return PQgetvalue(found, i, 1)[0];
	return 0;
}

/* The staged rows of t inserted into it, in the batch. */
static bool
take_table(Applier *a, const StateHandoverSql *hs, const ApplyTable *t,
           const char *const *params, Error *err)
{
	const char *p4[4] = {params[0], params[1], params[2], t->tgt_qname};
	const char *tp[2] = {t->tgt_qname, NULL};
	PGresult *cols = NULL, *types = NULL;
	Buf names, sql;
	bool ok;

	buf_init(&names, APPLY_SQL_MAX);
	buf_init(&sql, APPLY_SQL_MAX);
	ok = apply_query(a, hs->cols, 4, p4, &cols, err);
	if (ok && PQntuples(cols) == 0)
		goto out; /* the giving target held none of the key's rows here */
	ok = ok && column_literal(&names, cols, 0, err);
	tp[1] = buf_str(&names);
	ok = ok &&
	     apply_query(a,
	                 "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)"
	                 " FROM unnest($2::text[]) WITH ORDINALITY AS c(n, i)"
	                 " LEFT JOIN pg_catalog.pg_attribute a"
	                 " ON a.attrelid = $1::regclass AND a.attname = c.n"
	                 " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.i",
	                 2, tp, &types, err) &&
	     buf_printf(&sql, err, "INSERT INTO %s (", t->tgt_qname);
	for (int i = 0; ok && i < PQntuples(cols); i++)
	{
		char *q = pg_quote_ident(PQgetvalue(cols, i, 0));

		if (PQgetisnull(types, i, 0))
			ok = err_set(err, ERR_TARGET,
			             "table %s lacks column %s, which the giving "
			             "target's table has",
			             t->tgt_qname, PQgetvalue(cols, i, 0));
		else
			ok = q != NULL ? buf_printf(&sql, err, "%s%s", i ? ", " : "", q)
			               : err_set(err, ERR_INTERNAL, "out of memory");
		free(q);
	}
	ok = ok && buf_add_str(&sql, ") OVERRIDING SYSTEM VALUE SELECT ", err);
	for (int i = 0; ok && i < PQntuples(cols); i++)
		ok = buf_printf(&sql, err, "%sr.vals[%d]::%s", i ? ", " : "", i + 1,
		                PQgetvalue(types, i, 0));
	ok = ok && buf_printf(&sql, err, " FROM %s AS r", hs->rows) &&
	     apply_send_plain(a, buf_str(&sql), 4, p4, err);
out:
	PQclear(cols);
	PQclear(types);
	buf_free(&names);
	buf_free(&sql);
	return ok || err_prefix(err, "taking the rows of table %s: ", t->tgt_qname);
}

/* Waits in the batch for the giving target's staged rows, then takes them. */
static bool
take(Applier *a, const char *change, const char *key, int from, Error *err)
{
	const char *giver = shard_spec_target_name(a->task.shard, from);
	const char *params[3] = {a->task.task, change, key};
	PGresult *found = NULL, *done = NULL;
	int64_t since = clock_ms(), logged = 0;
	bool ok = true;

	while (ok)
	{
		PQclear(found);
		found = NULL;
		if (!apply_query(a, a->hsql.find, 3, params, &found, err))
			ok = false;
		else if (PQntuples(found) > 0)
			break;
		else if (a->task.stopping != NULL &&
		         a->task.stopping(a->task.stopping_ctx))
			ok = err_set(err, ERR_INTERRUPTED,
			             "stopped while waiting for target %s", giver);
		else
		{
			if (logged == 0 || clock_ms() - logged >= 10000)
			{
				logged = clock_ms();
				log_info("waiting %llds for target %s to hand over the rows "
				         "of a key the lookup table moved here (change %s): "
				         "its stream has not reached the change yet",
				         (long long) ((logged - since) / 1000), giver, change);
			}
			clock_sleep_ms(HANDOVER_POLL_MS);
		}
	}
	if (ok && PQgetvalue(found, 0, 2)[0] == 't')
	{
		/* only this target's batch marks it taken, with its origin */
		log_warn("a key the lookup table moved here from target %s (change "
		         "%s) is marked taken already; its rows are not taken again",
		         giver, change);
		PQclear(found);
		return true;
	}
	/* a table whose copy here predates the change but whose copy there does
	   not: the key's rows are on neither target */
	for (int i = 0; ok && i < a->ntables; i++)
	{
		const ApplyTable *t = &a->tables[i];

		if (!moves(t) || !applies(a, t))
			continue;
		if (staged_as(found, t->tgt_qname) != 's')
		{
			err_set(err, ERR_TARGET,
			        "a key the lookup table moved from target %s to this "
			        "one (change %s) has rows in table %s that neither "
			        "target holds: target %s loaded the table after the "
			        "change, this one before it",
			        giver, change, t->tgt_qname, giver);
			err_hint(err, "the stream stops at this change on every run: "
			              "start the task again (pgtide clean, then "
			              "migrate)");
			ok = false;
			break;
		}
		ok = take_table(a, &a->hsql, t, params, err);
	}
	/* read back here, so that a conflict of the rows names the handover */
	ok = ok && apply_send_plain(a, a->hsql.take, 3, params, err) &&
	     apply_query(a, "SELECT 1", 0, NULL, &done, err);
	PQclear(done);
	PQclear(found);
	fault_point("handover.taken");
	if (ok)
		log_info("a key the lookup table moved here from target %s: its "
		         "rows join this target in this batch (change %s)",
		         giver, change);
	if (!ok && err->kind != ERR_INTERRUPTED)
		err_prefix(err,
		           "taking the rows of a key moved here from target %s "
		           "(change %s): ",
		           giver, change);
	return ok;
}

bool
apply_handover(Applier *a, const char *key, size_t len, int from, int to,
               Error *err)
{
	char change[64];
	char *k;
	bool ok;

	if (a->task.state_schema == NULL || a->hsql.find == NULL)
		return err_set(err, ERR_INTERNAL,
		               "the stream moves a key's rows without the task's "
		               "state");
	if (!apply_run_flush(a, err))
		return false;
	snprintf(change, sizeof(change), LSN_FMT ".%d", LSN_ARGS(a->final_lsn),
	         a->handovers_in_txn);
	if ((k = strndup(key, len)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (from == a->task.shard_target)
		ok = give(a, change, k, to, err);
	else
		ok = take(a, change, k, from, err);
	free(k);
	return ok;
}
