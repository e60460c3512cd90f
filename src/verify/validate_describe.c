/*
 * validate_describe: what comparing one table takes, read on both servers
 * before the workers start: that the target has the table and the source's
 * columns, the row hash and row text expressions, where rows come from on
 * each side, the key, and whether the target can search it. A table or
 * column the target lacks becomes a table-level difference, not an error.
 * Catalog reads only: never reads rows.
 */
#include "verify/validate_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "load/share.h"
#include "pg/pg.h"
#include "route/rename.h"

#define VALIDATE_ROW_TEXT 200 /* characters of a keyless row shown */

/*
 * The task's renames (route/rename) on the source's side: its columns and
 * key take their target names, removed columns leave the comparison (a key
 * that loses one leaves the table keyless), and *from becomes the source
 * read as the target names it, "(SELECT a AS b, ... FROM ONLY s)". *from
 * stays NULL when nothing is renamed or several sources share the target.
 */
static bool
rename_source(const VRun *r, const VTable *t, VColumn *sc, int *nsc, char **key,
              int *nkey, char **from, Error *err)
{
	RenamedTable rt;
	char **names;
	Buf sel = BUF_INIT(VALIDATE_SQL_MAX);
	int kept = 0;
	bool ok;

	if (rename_none(&r->renames) || t->nsrc != 1)
		return true;
	names = calloc((size_t) *nsc + 1, sizeof(char *));
	if (names == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < *nsc; i++)
		names[i] = sc[i].name;
	ok = rename_table(&r->renames, t->src_schema, t->src_table, names, *nsc,
	                  NULL, &rt, err);
	free(names);
	if (!ok)
		return false;
	if (!rt.renamed)
	{
		rename_table_free(&rt);
		return true;
	}
	buf_add_str(&sel, "(SELECT ", err);
	for (int i = 0; i < *nsc; i++)
	{
		char *from_id = pg_quote_ident(sc[i].name);
		char *to_id = rt.cols[i] != NULL ? pg_quote_ident(rt.cols[i]) : NULL;

		for (int k = 0; k < *nkey; k++)
			if (strcmp(key[k], sc[i].name) == 0)
			{
				free(key[k]);
				/* a removed key column: no column of the target matches it,
				   and describe_table leaves the table keyless */
				key[k] = strdup(rt.cols[i] != NULL ? rt.cols[i] : "");
			}
		if (rt.cols[i] != NULL)
			buf_printf(&sel, err, "%s%s AS %s", kept ? ", " : "",
			           from_id != NULL ? from_id : "",
			           to_id != NULL ? to_id : "");
		free(from_id);
		free(to_id);
		free(sc[i].name);
		if (rt.cols[i] == NULL)
		{
			free(sc[i].type);
			continue;
		}
		sc[i].name = strdup(rt.cols[i]);
		sc[kept++] = sc[i];
	}
	*nsc = kept;
	/* the shard's share and the row filter, as the unrenamed query has them
	   (describe_table) */
	buf_printf(&sel, err, "%sFROM ONLY %s WHERE true%s%s%s%s%s%s)",
	           kept ? " " : "", t->srcs[0], t->src_where ? " AND (" : "",
	           t->src_where ? t->src_where : "", t->src_where ? ")" : "",
	           t->src_filters[0] ? " AND (" : "",
	           t->src_filters[0] ? t->src_filters[0] : "",
	           t->src_filters[0] ? "\n)" : "");
	rename_table_free(&rt);
	return buf_take(&sel, from, err);
}

/*
 * Reads what comparing t takes on both sides (columns, key, target relation
 * and index) and builds its SQL pieces. A table the target lacks, or whose
 * columns it lacks, becomes a table-level difference.
 */
/*
 * Whether a key of the type whose root (after domains) is oid orders alike
 * in every encoding. Two encodings order even C-collated texts by other
 * bytes, and so whatever holds a text (arrays, records, jsonb).
 */
static bool
orders_without_text(uint32_t oid)
{
	/* bool, bytea, int8, int2, int4, oid, float4, float8, date, time,
	   timestamp, timestamptz, interval, timetz, numeric, uuid */
	static const uint32_t types[] = {16,   17,   20,   21,   23,   26,
	                                 700,  701,  1082, 1083, 1114, 1184,
	                                 1186, 1266, 1700, 2950};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i] == oid)
			return true;
	return false;
}

bool
describe_table(const VRun *r, PgConn *src, PgConn *tgt, VTable *t, Error *err)
{
	VColumn *sc = NULL, *tc = NULL;
	int nsc = 0, ntc = 0;
	char **key = NULL;
	int nkey = 0;
	char relkind = 0;
	Buf missing = BUF_INIT(VALIDATE_SQL_MAX), expr = BUF_INIT(VALIDATE_SQL_MAX);
	Buf cols = BUF_INIT(VALIDATE_SQL_MAX);
	Buf list = BUF_INIT(VALIDATE_SQL_MAX), text = BUF_INIT(VALIDATE_SQL_MAX);
	char *renamed_from = NULL; /* the source as the target names it */
	const char *share_filter = NULL;
	bool ok = false, shared = false;

	if (t->status != VS_EQUAL)
		return true;
	{
		const char *params[1] = {t->tgt_qname};
		PGresult *res;

		if (!pg_query(tgt,
		              "SELECT relkind FROM pg_class"
		              " WHERE oid = to_regclass($1)",
		              1, params, &res, err))
			return false;
		if (PQntuples(res) == 1)
			relkind = PQgetvalue(res, 0, 0)[0];
		PQclear(res);
	}
	if (relkind == 0)
		return result_set_problem(t, VS_MISSING_TARGET, "not on the target",
		                          err);
	if (!columns_read(src, t->srcs[0], true, &sc, &nsc, err) ||
	    !columns_read(tgt, t->tgt_qname, false, &tc, &ntc, err) ||
	    !columns_read_key(src, t->srcs[0], &key, &nkey, err) ||
	    !rename_source(r, t, sc, &nsc, key, &nkey, &renamed_from, err))
		goto out;
	for (int i = 0; i < nsc; i++)
		if (columns_find(tc, ntc, sc[i].name) < 0)
			buf_printf(&missing, err, "%s%s",
			           buf_len(&missing) ? ", "
			                             : "columns missing on the target: ",
			           sc[i].name);
	if (!buf_check(&missing, err))
		goto out;
	if (buf_len(&missing) > 0)
	{
		char *what = NULL;

		ok = buf_take(&missing, &what, err) &&
		     result_set_problem(t, VS_COLUMNS, what, err);
		free(what);
		goto out;
	}
	/* the row hash, the row text shown for tables without a key, and where
	 * rows come from on each side */
	for (int i = 0; i < nsc; i++)
	{
		char *id = pg_quote_ident(sc[i].name);

		if (id == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		buf_printf(&cols, err, "%s%s", i ? ", " : "", id);
		free(id);
	}
	if (!buf_check(&cols, err) ||
	    !rowhash_expr(r->hash_ext, r->text_as_utf8, sc, nsc, tc, ntc, &expr,
	                  err) ||
	    !buf_take(&expr, &t->hash_expr, err))
		goto out;
	buf_printf(&expr, err, "left(ROW(%s)::text, %d)", buf_str(&cols),
	           VALIDATE_ROW_TEXT);
	if (!buf_take(&expr, &t->row_expr, err))
		goto out;
	if (renamed_from != NULL)
		buf_printf(&expr, err, "%s AS r", renamed_from);
	else if (t->nsrc == 1 && t->src_filters[0] == NULL && t->src_where == NULL)
		buf_printf(&expr, err, "ONLY %s AS r", t->srcs[0]);
	else
	{
		/* several targets: this one's share of the source's rows; a
		   filtered source: only the rows it keeps, the filter on a line of
		   its own, so that a comment cannot swallow the rest. Every query
		   that reads the source (counts, hashes, rows) reads through it */
		buf_add_str(&expr, "(", err);
		for (int i = 0; i < t->nsrc; i++)
			buf_printf(
			    &expr, err, "%sSELECT %s FROM ONLY %s WHERE true%s%s%s%s%s%s",
			    i ? " UNION ALL " : "", buf_str(&cols), t->srcs[i],
			    t->src_where ? " AND (" : "", t->src_where ? t->src_where : "",
			    t->src_where ? ")" : "", t->src_filters[i] ? " AND (" : "",
			    t->src_filters[i] ? t->src_filters[i] : "",
			    t->src_filters[i] ? "\n)" : "");
		buf_add_str(&expr, ") AS r", err);
	}
	if (!buf_take(&expr, &t->src_from, err))
		goto out;
	/* a target table another task writes too: this task's rows are those
	   its filter names there as well (load/share.h) */
	if (t->nsrc == 1 && !share_find(tgt, r->cfg, t->src_schema, t->src_table,
	                                t->tgt_qname, &shared, &share_filter, err))
		goto out;
	if (shared && share_filter != NULL)
		buf_printf(&expr, err, "(SELECT * FROM %s%s WHERE (%s\n)) AS r",
		           relkind == 'p' ? "" : "ONLY ", t->tgt_qname, share_filter);
	else
		buf_printf(&expr, err, "%s%s AS r", relkind == 'p' ? "" : "ONLY ",
		           t->tgt_qname);
	if (!buf_take(&expr, &t->tgt_from, err))
		goto out;
	/* the key, unless it uses a column left out (a generated one) */
	for (int k = 0; k < nkey; k++)
		if (columns_find(sc, nsc, key[k]) < 0)
		{
			strv_free(key, nkey);
			key = NULL;
			nkey = 0;
		}
	if (nkey > 0)
	{
		int first_attnum_ok = 0;

		t->keyed = true;
		t->nkeys = nkey;
		t->key_names = key;
		key = NULL;
		t->key_idents = calloc((size_t) nkey + 1, sizeof(char *));
		t->key_types = calloc((size_t) nkey + 1, sizeof(char *));
		if (t->key_idents == NULL || t->key_types == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		for (int k = 0; k < nkey; k++)
		{
			int si = columns_find(sc, nsc, t->key_names[k]);
			int ti = columns_find(tc, ntc, t->key_names[k]);

			t->key_idents[k] = pg_quote_ident(t->key_names[k]);
			t->key_types[k] = strdup(si >= 0 ? sc[si].type : "text");
			if (t->key_idents[k] == NULL || t->key_types[k] == NULL)
			{
				err_set(err, ERR_INTERNAL, "out of memory");
				goto out;
			}
			buf_printf(&list, err, "%s%s", k ? ", " : "", t->key_idents[k]);
			buf_printf(&text, err, "%s%s::text", k ? ", " : "",
			           t->key_idents[k]);
			if (si < 0 || ti < 0 || !sc[si].c_collation ||
			    !tc[ti].c_collation ||
			    (r->text_as_utf8 && !orders_without_text(sc[si].root)))
				t->key_sensitive = true;
			if (ti >= 0 && !tc[ti].not_null)
				t->tgt_key_nullable = true;
		}
		if (!buf_take(&list, &t->key_list, err) ||
		    !buf_take(&text, &t->key_text, err))
			goto out;
		{
			const char *params[2] = {t->tgt_qname, t->key_names[0]};
			PGresult *res;

			if (!pg_query(tgt,
			              "SELECT EXISTS (SELECT 1 FROM pg_index i"
			              " JOIN pg_attribute a ON a.attrelid = i.indrelid"
			              " AND a.attnum = i.indkey[0]"
			              " WHERE i.indrelid = to_regclass($1)"
			              " AND a.attname = $2)",
			              2, params, &res, err))
				goto out;
			first_attnum_ok = PQgetvalue(res, 0, 0)[0] == 't';
			PQclear(res);
		}
		t->tgt_indexed = first_attnum_ok;
	}
	ok = true;
out:
	buf_free(&missing);
	buf_free(&expr);
	buf_free(&cols);
	buf_free(&list);
	buf_free(&text);
	columns_free(sc, nsc);
	columns_free(tc, ntc);
	strv_free(key, nkey);
	free(renamed_from);
	return ok;
}
