/*
 * rowfilter: the task file's row filters checked on the source before any
 * data moves (see rowfilter.h). It never writes to the source: each
 * question runs in a READ ONLY transaction that is rolled back.
 *
 * How a condition is shown immutable on sources 10 to 15 without creating
 * anything there: the source parses `SELECT 1 FROM ONLY t WHERE (cond)`
 * with debug_print_parse on and client_min_messages at LOG, which sends its
 * parse tree to this session as a notice. In that tree every function the
 * condition calls is resolved to an OID, the hidden ones too (an implicit
 * cast is a FUNCEXPR, an operator an OPEXPR with its function), and every
 * kind of expression is named. A condition passes only when each node of
 * its tree is of a kind whose value depends on nothing but its inputs, and
 * each function it calls is immutable in pg_proc.
 */
#include "pg/rowfilter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/buf.h"
#include "route/filter.h"

/* The parse tree of one condition: a few KB; far more is not a filter. */
#define ROWFILTER_TREE_MAX ((size_t) 16 << 20)
#define ROWFILTER_SQL_MAX  ((size_t) 16 << 20)

/* Expression nodes whose value depends only on their inputs and on the
 * functions they name (checked apart). */
static const char *const pure_nodes[] = {
    "VAR",          "CONST",       "OPEXPR",       "FUNCEXPR",
    "BOOLEXPR",     "NULLTEST",    "BOOLEANTEST",  "SCALARARRAYOPEXPR",
    "RELABELTYPE",  "CASEEXPR",    "CASEWHEN",     "CASETESTEXPR",
    "COALESCEEXPR", "NULLIFEXPR",  "DISTINCTEXPR", "ARRAYEXPR",
    "ROWEXPR",      "COLLATEEXPR", "MINMAXEXPR",   NULL,
};

/* Fields of those nodes that name a function by OID. */
static const char *const func_fields[] = {":funcid", ":opfuncid", ":hashfuncid",
                                          ":negfuncid", NULL};

typedef struct TreeNotice
{
	Buf tree; /* the DETAIL of the "parse tree:" notice */
	bool seen;
} TreeNotice;

static void
receive_tree(void *arg, const PGresult *res)
{
	TreeNotice *tn = arg;
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	Error ignored = ERR_INIT;

	if (tn->seen || msg == NULL || detail == NULL ||
	    strncmp(msg, "parse tree", 10) != 0)
		return;
	tn->seen = true;
	/* a tree past the cap stays unread: the check then refuses it */
	(void) buf_add_str(&tn->tree, detail, &ignored);
}

static bool
refuse(Error *err, const CatTable *t, int line, const char *cond,
       const char *why)
{
	err_set(err, ERR_CONFIG, "filters: the condition of table %s (line %d) %s",
	        t->qname, line, why);
	return err_detail(err, "condition: %s", cond);
}

/*
 * The text of the `:quals` of the query's top jointree, in the flat tree
 * (newlines already made spaces): a view into tree, *len its length; NULL
 * when not found.
 */
static const char *
find_quals(const char *tree, size_t *len)
{
	const char *p = strstr(tree, ":jointree {FROMEXPR");
	int depth = 0;

	if (p == NULL || (p = strstr(p, ":quals ")) == NULL)
		return NULL;
	p += strlen(":quals ");
	if (*p != '{')
		return NULL;
	for (const char *q = p; *q; q++)
	{
		if (*q == '\\' && q[1] != '\0')
		{
			q++;
			continue;
		}
		if (*q == '{')
			depth++;
		else if (*q == '}' && --depth == 0)
		{
			*len = (size_t) (q - p + 1);
			return p;
		}
	}
	return NULL;
}

/*
 * Walks the quals: *why gets the reason to refuse (static text, or the
 * node's name in whybuf), and funcs the OIDs of the functions called, as
 * the elements of an oid[] literal.
 */
static bool
walk_quals(const char *q, size_t len, const char **why, char *whybuf,
           size_t whycap, Buf *funcs, Error *err)
{
	int nfuncs = 0;

	*why = NULL;
	for (size_t i = 0; i < len && *why == NULL; i++)
	{
		if (q[i] == '\\')
		{
			i++;
			continue;
		}
		if (q[i] == '{')
		{
			char name[64];
			size_t n = 0;
			bool pure = false;

			while (
			    i + 1 + n < len && n + 1 < sizeof(name) &&
			    (isupper((unsigned char) q[i + 1 + n]) || q[i + 1 + n] == '_'))
			{
				name[n] = q[i + 1 + n];
				n++;
			}
			name[n] = '\0';
			for (int k = 0; pure_nodes[k] != NULL && !pure; k++)
				pure = strcmp(pure_nodes[k], name) == 0;
			if (pure)
				continue;
			if (strcmp(name, "SUBLINK") == 0)
				*why = "holds a subquery: the change stream judges each "
				       "row by its own values alone";
			else if (strcmp(name, "SQLVALUEFUNCTION") == 0)
				*why = "reads the clock or the session (CURRENT_DATE, "
				       "CURRENT_USER, ...): its answer would change between "
				       "the load and the change stream";
			else if (strcmp(name, "COERCEVIAIO") == 0)
				*why = "converts a value through its text form, which "
				       "session settings change; compare the column with a "
				       "value of its own type";
			else
			{
				snprintf(whybuf, whycap,
				         "uses an expression (%s) that pgtide cannot show "
				         "gives the same answer at every moment",
				         name);
				*why = whybuf;
			}
			continue;
		}
		if (q[i] != ':')
			continue;
		for (int k = 0; func_fields[k] != NULL; k++)
		{
			size_t fl = strlen(func_fields[k]);
			char num[16];
			size_t n = 0;

			if (len - i <= fl || strncmp(q + i, func_fields[k], fl) != 0 ||
			    q[i + fl] != ' ')
				continue;
			for (size_t j = i + fl + 1;
			     j < len && isdigit((unsigned char) q[j]) &&
			     n + 1 < sizeof(num);
			     j++)
				num[n++] = q[j];
			num[n] = '\0';
			if (n == 0 || strcmp(num, "0") == 0)
				break;
			if (!buf_add_str(funcs, nfuncs++ ? "," : "", err) ||
			    !buf_add_str(funcs, num, err))
				return false;
			break;
		}
	}
	return true;
}

/* The functions among oids (an oid[] literal) that are not immutable, as
 * "f(int), g(text)" into *names (malloc'd), or NULL when all are. */
static bool
mutable_functions(PgConn *src, const char *oids, char **names, Error *err)
{
	const char *params[1] = {oids};
	PGresult *res;

	*names = NULL;
	if (!pg_query(
	        src,
	        "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY "
	        "p.oid) FROM pg_catalog.pg_proc p WHERE p.oid = ANY($1::oid[])"
	        " AND p.provolatile <> 'i'",
	        1, params, &res, err))
		return false;
	if (!PQgetisnull(res, 0, 0) &&
	    (*names = strdup(PQgetvalue(res, 0, 0))) == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	PQclear(res);
	return true;
}

/*
 * The change stream's own question (cdc/apply_filter.c asks it with the
 * types the Relation message names): each column a typed parameter.
 */
static bool
stream_sql(const CatTable *t, const char *cond, Buf *sql, Error *err)
{
	char *alias = pg_quote_ident(t->name);
	bool ok = alias != NULL;

	buf_reset(sql);
	ok = ok && buf_add_str(sql, "SELECT (", err) &&
	     buf_add_str(sql, cond, err) &&
	     buf_add_str(sql, "\n) IS TRUE FROM (VALUES (", err);
	for (int i = 0; ok && i < t->ncols; i++)
	{
		char p[32];

		snprintf(p, sizeof(p), "%s$%d::", i ? ", " : "", i + 1);
		ok = buf_add_str(sql, p, err) &&
		     buf_add_str(sql, t->cols[i].type_name, err);
	}
	ok = ok && buf_add_str(sql, ")) AS ", err) &&
	     buf_add_str(sql, alias, err) && buf_add_str(sql, "(", err);
	for (int i = 0; ok && i < t->ncols; i++)
	{
		char *q = pg_quote_ident(t->cols[i].name);

		ok = q != NULL && (i == 0 || buf_add_str(sql, ", ", err)) &&
		     buf_add_str(sql, q, err);
		free(q);
	}
	ok = ok && buf_add_str(sql, ")", err);
	free(alias);
	if (!ok && !err_is_set(err))
		err_set(err, ERR_INTERNAL, "out of memory");
	return ok;
}

/*
 * Asks the source, in a READ ONLY transaction, for cond's parse tree on t
 * and whether the stream's question parses. *bad gets the source's message
 * when cond is refused (the caller's to free).
 */
static bool
ask_source(PgConn *src, const CatTable *t, const char *cond, TreeNotice *tn,
           char **bad, Error *err)
{
	PGconn *raw = pg_raw(src);
	PQnoticeReceiver old_fn;
	Buf sql;
	PGresult *res = NULL;
	const char **nulls;
	Error qerr = ERR_INIT;
	bool ok;

	*bad = NULL;
	if (PQtransactionStatus(raw) != PQTRANS_IDLE)
		return err_set(err, ERR_INTERNAL,
		               "row filters are checked outside any transaction");
	nulls = calloc((size_t) t->ncols + 1, sizeof(char *));
	if (nulls == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	buf_init(&sql, ROWFILTER_SQL_MAX);
	ok = pg_exec(src,
	             "BEGIN READ ONLY; SET LOCAL client_min_messages = log;"
	             " SET LOCAL debug_pretty_print = off;"
	             " SET LOCAL debug_print_parse = on",
	             err);
	if (!ok)
		goto out;
	old_fn = PQsetNoticeReceiver(raw, receive_tree, tn);
	ok = buf_add_str(&sql, "SELECT 1 FROM ONLY ", err) &&
	     buf_add_str(&sql, t->qname, err) &&
	     buf_add_str(&sql, " WHERE (", err) && buf_add_str(&sql, cond, err) &&
	     buf_add_str(&sql, "\n) LIMIT 0", err);
	if (ok && !pg_query(src, buf_str(&sql), 0, NULL, &res, &qerr))
		*bad = strdup(qerr.message);
	PQclear(res);
	res = NULL;
	PQsetNoticeReceiver(raw, old_fn, NULL);
	if (!ok || *bad != NULL || !pg_ok(src))
		goto rollback;
	ok = pg_exec(src, "SET LOCAL debug_print_parse = off", err) &&
	     stream_sql(t, cond, &sql, err);
	err_clear(&qerr);
	if (ok && !pg_query(src, buf_str(&sql), t->ncols, nulls, &res, &qerr))
	{
		char msg[ERR_MSG_MAX + 64];

		snprintf(msg, sizeof(msg),
		         "cannot be evaluated on a row of the change stream: %s",
		         qerr.message);
		*bad = strdup(msg);
	}
	PQclear(res);
rollback:
	if (pg_ok(src))
	{
		Error ignored = ERR_INIT;

		(void) pg_exec(src, "ROLLBACK", &ignored);
	}
	if (ok && !pg_ok(src))
		ok = err_set(err, ERR_SOURCE,
		             "the source's connection was lost "
		             "while checking row filters");
out:
	buf_free(&sql);
	free(nulls);
	return ok;
}

/* Checks the filter cond of t, from the task file's line. */
static bool
check_one(PgConn *src, const CatTable *t, const char *cond, int line,
          Error *err)
{
	TreeNotice tn;
	Buf funcs;
	char *bad = NULL, *names = NULL;
	const char *quals, *why = NULL;
	char whybuf[256];
	size_t qlen = 0;
	bool ok;

	if (!t->has_identity)
		return refuse(err, t, line, cond,
		              "is on a table without a primary key or replica "
		              "identity: the change stream could not delete a row "
		              "that leaves the filter");
	buf_init(&tn.tree, ROWFILTER_TREE_MAX);
	buf_init(&funcs, ROWFILTER_TREE_MAX);
	tn.seen = false;
	ok = ask_source(src, t, cond, &tn, &bad, err);
	if (ok && bad != NULL)
	{
		char msg[ERR_MSG_MAX + 128];

		snprintf(msg, sizeof(msg), "%s%s",
		         strncmp(bad, "cannot be evaluated", 19) == 0
		             ? ""
		             : "does not run on the source: ",
		         bad);
		ok = refuse(err, t, line, cond, msg);
		goto out;
	}
	if (!ok)
		goto out;
	/* the notice's text wraps lines at spaces: one line again */
	for (char *p = (char *) (uintptr_t) buf_str(&tn.tree); *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	quals = tn.seen ? find_quals(buf_str(&tn.tree), &qlen) : NULL;
	if (quals == NULL)
	{
		ok = refuse(err, t, line, cond,
		            "could not be read back from the source's parse tree: "
		            "pgtide cannot show that it gives the same answer at "
		            "every moment");
		goto out;
	}
	ok = buf_add_str(&funcs, "{", err) &&
	     walk_quals(quals, qlen, &why, whybuf, sizeof(whybuf), &funcs, err) &&
	     buf_add_str(&funcs, "}", err);
	if (ok && why != NULL)
	{
		ok = refuse(err, t, line, cond, why);
		goto out;
	}
	ok = ok && mutable_functions(src, buf_str(&funcs), &names, err);
	if (ok && names != NULL)
	{
		char msg[1200];

		snprintf(msg, sizeof(msg),
		         "calls %s, not immutable: its answer could change between "
		         "the load and the change stream",
		         names);
		ok = refuse(err, t, line, cond, msg);
	}
out:
	free(bad);
	free(names);
	buf_free(&tn.tree);
	buf_free(&funcs);
	return ok;
}

bool
rowfilter_check_all(PgConn *src, const Catalog *cat, const StrMap *filters,
                    Error *err)
{
	for (int i = 0; i < filters->keys.count; i++)
	{
		const CatTable *t = NULL;

		for (int k = 0; k < cat->ntables && t == NULL; k++)
			if (cat->tables[k].selected &&
			    filter_key_names(filters, i, cat->tables[k].schema,
			                     cat->tables[k].name))
				t = &cat->tables[k];
		if (t == NULL)
		{
			err_set(err, ERR_CONFIG,
			        "filters: %s (line %d) names no table the task moves",
			        filters->keys.items[i], filters->line[i]);
			return err_hint(err,
			                "name one table as schema.table (a partitioned "
			                "table's partitions one by one), among those the "
			                "tables patterns select");
		}
		for (int j = i + 1; j < filters->keys.count; j++)
			if (filter_key_names(filters, j, t->schema, t->name))
			{
				err_set(err, ERR_CONFIG,
				        "filters: table %s has two conditions (lines %d "
				        "and %d)",
				        t->qname, filters->line[i], filters->line[j]);
				return err_hint(err, "join them into one condition with "
				                     "AND, in the task file or in the "
				                     "table-mapping file");
			}
		if (filters->line[i] != FILTER_LINE_ROUTING &&
		    !check_one(src, t, filters->values.items[i], filters->line[i], err))
			return false;
	}
	return true;
}
