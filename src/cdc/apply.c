/*
 * apply: pipelined application of source changes on one target connection.
 *
 * A batch on the wire (libpq pipeline mode, one connection):
 *
 *   BEGIN
 *   [Parse pN]  EXECUTE pN (...)      one per row change; Parse only the
 *   ...                               first time a statement shape is seen
 *   -- flush, read every result       only under the stop policy when the
 *                                     batch updates or deletes: a missing
 *                                     row must stop the batch before COMMIT
 *   SELECT pg_replication_origin_xact_setup(end_lsn, commit_time)
 *   COMMIT
 *   Sync                              read everything up to the Sync
 *
 * At most APPLY_INFLIGHT_MAX statements wait for their results; beyond that
 * the oldest half is read first, so neither side's socket buffer can fill
 * while the other waits.
 *
 * Statements are prepared per shape: the SQL text (table, columns set,
 * columns matched) is the cache key, so a Relation message that adds a column
 * simply yields new statements.
 */
#include "cdc/apply.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/hash.h"
#include "base/log.h"
#include "pg/pg.h"

#define APPLY_INFLIGHT_MAX 512
#define APPLY_LOG_EVERY_MS 10000

typedef struct RelCol
{
	char *qname; /* quoted */
	uint32_t type_oid;
	bool key;
	bool text_eq; /* compared as text: the type has no equality operator */
	bool always;  /* GENERATED ALWAYS AS IDENTITY on the target */
} RelCol;

typedef struct Rel
{
	uint32_t relid;
	char *src_qname;         /* for messages */
	const ApplyTable *table; /* NULL: the task does not move this table */
	ApplyTable same_name;    /* the table when every table maps to itself */
	char replident;
	int ncols;
	RelCol *cols;
	int64_t conflicts;
	_Atomic int64_t last_log_ms;
} Rel;

typedef struct StmtEntry
{
	char *sql; /* owned; NULL: empty slot */
	char name[24];
} StmtEntry;

typedef enum PendKind
{
	PEND_PLAIN = 0, /* BEGIN, Parse, origin, COMMIT, TRUNCATE */
	PEND_INSERT,
	PEND_UPDATE,
	PEND_DELETE,
	PEND_UPSERT, /* an UPDATE written as an upsert: inserting is the conflict */
} PendKind;

typedef struct Pending
{
	PendKind kind;
	Rel *rel;
	uint32_t xid;
	Lsn final_lsn;
	int nrows; /* rows a multi-row INSERT carries; 1 otherwise */
	char *key; /* "(id)=(42)" for UPDATE/DELETE; owned */
} Pending;

/*
 * Consecutive INSERTs into one table (across source transactions of the
 * batch) wait here and go as multi-row INSERTs: one statement for up to
 * APPLY_RUN_ROWS rows instead of one each. COPY would be cheaper still, but
 * cannot run in pipeline mode. Values are copied: the decoder's views last
 * only until the next message.
 */
typedef struct InsertRun
{
	Rel *rel; /* NULL: no run */
	int ncols;
	int nrows;
	char *data; /* NUL-terminated values, back to back */
	size_t len, cap;
	int64_t *offs; /* nrows * ncols offsets into data; -1: NULL */
	int offs_cap;
	uint32_t xid; /* the first row's transaction, for messages */
	Lsn final_lsn;
} InsertRun;

#define APPLY_RUN_ROWS  100
#define APPLY_RUN_BYTES ((size_t) 4 * 1024 * 1024)

struct Applier
{
	PgConn *conn;
	char *target_uri;
	char *origin;
	OnConflict policy;
	ApplyTable *tables; /* owned copies */
	int ntables;

	/* the target's GENERATED ALWAYS identity columns: an INSERT must say
	 * OVERRIDING SYSTEM VALUE, an UPDATE must leave them out */
	char **always_tables; /* "schema"."name", as tgt_qname writes it */
	char **always_cols;
	int nalways;

	Rel **rels; /* relation cache, small: a linear scan; each Rel is
	               allocated alone so pending statements may point to it */
	int nrels;
	int rels_cap;

	StmtEntry *stmts; /* open addressing on the SQL text */
	int stmts_cap;
	int nstmts;

	Pending *pend; /* ring of statements waiting for results */
	int pend_head;
	int pend_count;

	InsertRun run;

	bool in_batch;
	bool batch_has_ud; /* an UPDATE or DELETE is in the batch */
	uint32_t xid;      /* current source transaction */
	Lsn final_lsn;
	int batch_txns; /* source transactions in the open batch */
	Error conflict; /* first conflict under the stop policy */

	char *sqlbuf; /* statement text being built */
	size_t sql_len, sql_cap;
	char *valbuf; /* NUL-terminated parameter values */
	size_t val_cap;
	const char **params;
	int params_cap;

	_Atomic int64_t txns, changes, conflicts, skipped;
	_Atomic uint64_t applied_end;
	_Atomic int64_t applied_time_us;
};

/* ---- small buffers ---- */

static bool
sql_reset(Applier *a)
{
	a->sql_len = 0;
	if (a->sqlbuf == NULL)
	{
		a->sql_cap = 1024;
		a->sqlbuf = malloc(a->sql_cap);
	}
	if (a->sqlbuf != NULL)
		a->sqlbuf[0] = '\0';
	return a->sqlbuf != NULL;
}

static bool
sql_add(Applier *a, const char *s)
{
	size_t n = strlen(s);

	if (a->sql_len + n + 1 > a->sql_cap)
	{
		size_t cap = a->sql_cap * 2;
		char *grown;

		while (cap < a->sql_len + n + 1)
			cap *= 2;
		grown = realloc(a->sqlbuf, cap);
		if (grown == NULL)
			return false;
		a->sqlbuf = grown;
		a->sql_cap = cap;
	}
	memcpy(a->sqlbuf + a->sql_len, s, n + 1);
	a->sql_len += n;
	return true;
}

static bool
sql_addf_param(Applier *a, int n)
{
	char b[16];

	snprintf(b, sizeof(b), "$%d", n);
	return sql_add(a, b);
}

/*
 * Parameter values must be NUL-terminated for text format. values[i] of the
 * tuple columns listed in idx[] are copied into valbuf in order.
 */
static bool
params_set(Applier *a, const PgoValue *const *vals, int n)
{
	size_t need = 0, off = 0;

	for (int i = 0; i < n; i++)
		need += vals[i]->kind == 'n' ? 0 : vals[i]->len + 1;
	if (need > a->val_cap)
	{
		size_t cap = a->val_cap ? a->val_cap : 4096;
		char *grown;

		while (cap < need)
			cap *= 2;
		grown = realloc(a->valbuf, cap);
		if (grown == NULL)
			return false;
		a->valbuf = grown;
		a->val_cap = cap;
	}
	if (n > a->params_cap)
	{
		const char **grown = realloc(a->params, sizeof(char *) * (size_t) n);

		if (grown == NULL)
			return false;
		a->params = grown;
		a->params_cap = n;
	}
	for (int i = 0; i < n; i++)
	{
		if (vals[i]->kind == 'n')
		{
			a->params[i] = NULL;
			continue;
		}
		memcpy(a->valbuf + off, vals[i]->data, vals[i]->len);
		a->valbuf[off + vals[i]->len] = '\0';
		a->params[i] = a->valbuf + off;
		off += vals[i]->len + 1;
	}
	return true;
}

/* ---- relation cache ---- */

static void
rel_clear(Rel *r)
{
	for (int i = 0; i < r->ncols; i++)
		free(r->cols[i].qname);
	free(r->cols);
	free(r->src_qname);
	r->cols = NULL;
	r->ncols = 0;
	r->src_qname = NULL;
}

static Rel *
rel_find(Applier *a, uint32_t relid)
{
	for (int i = 0; i < a->nrels; i++)
		if (a->rels[i]->relid == relid)
			return a->rels[i];
	return NULL;
}

/*
 * Built-in types without a default btree equality (json, xml, point, lseg,
 * path, box, polygon, line, circle, and their arrays): a REPLICA IDENTITY
 * FULL match compares them as text. So are types defined in the database,
 * whose OIDs differ between servers.
 */
static bool
needs_text_eq(uint32_t oid)
{
	static const uint32_t no_eq[] = {114, 199,  142, 143,  600, 1017,
	                                 601, 1018, 602, 1019, 603, 1020,
	                                 604, 1027, 628, 629,  718, 719};

	if (oid >= 16384)
		return true;
	for (size_t i = 0; i < sizeof(no_eq) / sizeof(no_eq[0]); i++)
		if (no_eq[i] == oid)
			return true;
	return false;
}

static bool
rel_update(Applier *a, const PgoRelation *m, Error *err)
{
	Rel *r = rel_find(a, m->relid);

	if (r == NULL)
	{
		if (a->nrels == a->rels_cap)
		{
			int cap = a->rels_cap ? a->rels_cap * 2 : 64;
			Rel **grown = realloc(a->rels, sizeof(Rel *) * (size_t) cap);

			if (grown == NULL)
				return err_set(err, ERR_INTERNAL, "out of memory");
			a->rels = grown;
			a->rels_cap = cap;
		}
		r = calloc(1, sizeof(Rel));
		if (r == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		a->rels[a->nrels++] = r;
		r->relid = m->relid;
	}
	/* A Relation message always replaces what was known: columns may have
	 * been added or dropped on the source since the last one. */
	rel_clear(r);
	r->replident = m->replica_identity;
	r->src_qname = pg_qualify(m->nspname, m->relname);
	r->cols = calloc((size_t) m->ncols + 1, sizeof(RelCol));
	if (r->src_qname == NULL || r->cols == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	r->ncols = m->ncols;
	for (int i = 0; i < m->ncols; i++)
	{
		r->cols[i].qname = pg_quote_ident(m->columns[i].name);
		if (r->cols[i].qname == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		r->cols[i].type_oid = m->columns[i].type_oid;
		r->cols[i].key = m->columns[i].key;
		r->cols[i].text_eq = needs_text_eq(m->columns[i].type_oid);
	}
	r->table = NULL;
	for (int i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].src_schema, m->nspname) == 0 &&
		    strcmp(a->tables[i].src_name, m->relname) == 0)
			r->table = &a->tables[i];
	/* no task tables (follow from a slot the user names): every table goes
	 * to the target table of the same name, every change applies */
	if (a->ntables == 0)
	{
		r->same_name.tgt_qname = r->src_qname;
		r->same_name.load_point = LSN_INVALID;
		r->table = &r->same_name;
	}
	for (int k = 0; r->table != NULL && k < a->nalways; k++)
		if (strcmp(a->always_tables[k], r->table->tgt_qname) == 0)
			for (int i = 0; i < m->ncols; i++)
				if (strcmp(a->always_cols[k], m->columns[i].name) == 0)
					r->cols[i].always = true;
	return true;
}

/* ---- prepared statement cache ---- */

static StmtEntry *
stmt_slot(StmtEntry *tab, int cap, const char *sql)
{
	size_t i = (size_t) (hash_string(sql) & (uint64_t) (cap - 1));

	while (tab[i].sql != NULL && strcmp(tab[i].sql, sql) != 0)
		i = (i + 1) & (size_t) (cap - 1);
	return &tab[i];
}

static bool
stmt_grow(Applier *a)
{
	int cap = a->stmts_cap ? a->stmts_cap * 2 : 256;
	StmtEntry *tab = calloc((size_t) cap, sizeof(StmtEntry));

	if (tab == NULL)
		return false;
	for (int i = 0; i < a->stmts_cap; i++)
		if (a->stmts[i].sql != NULL)
			*stmt_slot(tab, cap, a->stmts[i].sql) = a->stmts[i];
	free(a->stmts);
	a->stmts = tab;
	a->stmts_cap = cap;
	return true;
}

static void
stmt_free_all(Applier *a)
{
	for (int i = 0; i < a->stmts_cap; i++)
		free(a->stmts[i].sql);
	free(a->stmts);
	a->stmts = NULL;
	a->stmts_cap = a->nstmts = 0;
}

/* ---- the pipeline ---- */

static bool
pend_push(Applier *a, PendKind kind, Rel *rel, char *key, int nrows)
{
	Pending *p;

	p = &a->pend[(a->pend_head + a->pend_count) % APPLY_INFLIGHT_MAX];
	p->kind = kind;
	p->rel = rel;
	p->xid = a->xid;
	p->final_lsn = a->final_lsn;
	p->key = key;
	p->nrows = nrows;
	a->pend_count++;
	return true;
}

static void
note_conflict(Applier *a, Pending *p, const char *what, int64_t count)
{
	atomic_fetch_add(&a->conflicts, count);
	p->rel->conflicts += count;
	if (a->policy == ON_CONFLICT_STOP)
	{
		err_set(&a->conflict, ERR_TARGET,
		        "conflict on table %s: %s (row %s) in source transaction %u "
		        "committed at " LSN_FMT,
		        p->rel->src_qname, what, p->key ? p->key : "?", p->xid,
		        LSN_ARGS(p->final_lsn));
		err_hint(&a->conflict,
		         "the target's row differs from the source's; fix the row, or "
		         "set cdc.on_conflict to skip or upsert in the task file");
		return;
	}
	if (log_every(&p->rel->last_log_ms, APPLY_LOG_EVERY_MS))
		log_warn("table %s: %lld conflicts so far (%s; policy %s)",
		         p->rel->src_qname, (long long) p->rel->conflicts, what,
		         config_on_conflict_name(a->policy));
}

static const char *
pend_kind_verb(PendKind kind)
{
	switch (kind)
	{
		case PEND_INSERT:
		case PEND_UPSERT:
			return "INSERT";
		case PEND_UPDATE:
			return "UPDATE";
		case PEND_DELETE:
			return "DELETE";
		case PEND_PLAIN:
			break;
	}
	return "";
}

/* True when a command tag ("UPDATE 1") is what the pending statement sent. */
static bool
result_matches(const Pending *p, const char *tag)
{
	const char *verb = pend_kind_verb(p->kind);
	size_t n = strlen(verb);

	return strncmp(tag, verb, n) == 0 && (tag[n] == ' ' || tag[n] == '\0');
}

/*
 * Reads the result of the oldest pending statement. A server error becomes
 * the batch's error (the pipeline is aborted after it); later statements
 * report PGRES_PIPELINE_ABORTED and are only consumed.
 */
static bool
read_one(Applier *a, Error *err)
{
	PGconn *c = pg_raw(a->conn);
	Pending *p = &a->pend[a->pend_head];
	PGresult *res = PQgetResult(c);
	ExecStatusType st = PQresultStatus(res);
	bool ok = true;

	if (res == NULL)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	if (st == PGRES_FATAL_ERROR)
	{
		/* the first failure in source order is the one to report: an
		 * earlier error, else a conflict met earlier, else this one */
		if (!err_is_set(err) && err_is_set(&a->conflict))
			*err = a->conflict;
		else if (!err_is_set(err))
		{
			pg_error(a->conn, res, err);
			if (p->rel != NULL)
				err_prefix(err,
				           "could not apply a change to table %s (source "
				           "transaction %u committed at " LSN_FMT "): ",
				           p->rel->src_qname, p->xid, LSN_ARGS(p->final_lsn));
		}
		ok = false;
	}
	else if (st == PGRES_TUPLES_OK && p->kind != PEND_PLAIN)
	{
		/* upsert RETURNING (xmax = 0): true where the row was inserted */
		int64_t inserted = 0;

		for (int i = 0; i < PQntuples(res); i++)
			inserted += PQgetvalue(res, i, 0)[0] == 't';
		if (p->kind == PEND_INSERT && inserted < PQntuples(res))
			note_conflict(a, p, "the row already exists",
			              PQntuples(res) - inserted);
		else if (p->kind == PEND_UPSERT && inserted > 0)
			note_conflict(a, p, "no row to update", inserted);
	}
	else if (st == PGRES_COMMAND_OK && p->kind != PEND_PLAIN &&
	         !result_matches(p, PQcmdStatus(res)))
	{
		/* Never read one statement's result as another's: a Prepare's
		 * empty tag would pass for "no row to update". The batch is
		 * rolled back and redone on a new connection. */
		if (!err_is_set(err))
		{
			err_set(err, ERR_INTERNAL,
			        "pipeline results out of step: expected the result of "
			        "%s on table %s, got \"%s\"",
			        pend_kind_verb(p->kind), p->rel->src_qname,
			        PQcmdStatus(res));
			err->retryable = true;
		}
		ok = false;
	}
	else if (st == PGRES_COMMAND_OK && p->kind != PEND_PLAIN)
	{
		int64_t done = strtoll(PQcmdTuples(res), NULL, 10);
		int64_t want = p->kind == PEND_INSERT ? p->nrows : 1;

		if (done < want)
			note_conflict(a, p,
			              p->kind == PEND_INSERT   ? "the row already exists"
			              : p->kind == PEND_UPDATE ? "no row to update"
			                                       : "no row to delete",
			              want - done);
	}
	PQclear(res);
	/* each statement's results end with a NULL */
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	free(p->key);
	p->key = NULL;
	a->pend_head = (a->pend_head + 1) % APPLY_INFLIGHT_MAX;
	a->pend_count--;
	return ok;
}

/* Reads n pending results (all with n < 0); the first error wins. */
static bool
read_pending(Applier *a, int n, Error *err)
{
	bool ok = true;

	if (n < 0 || n > a->pend_count)
		n = a->pend_count;
	if (n > 0 && (PQsendFlushRequest(pg_raw(a->conn)) != 1 ||
	              PQflush(pg_raw(a->conn)) != 0))
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	while (n-- > 0)
		ok = read_one(a, err) && ok;
	return ok;
}

/* Sends Sync and reads everything up to its result. */
static bool
sync_and_read(Applier *a, Error *err)
{
	PGconn *c = pg_raw(a->conn);
	PGresult *res;
	bool ok;

	if (PQpipelineSync(c) != 1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	ok = read_pending(a, -1, err);
	while ((res = PQgetResult(c)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		PQclear(res);
		if (st == PGRES_PIPELINE_SYNC)
			return ok;
	}
	pg_error(a->conn, NULL, err);
	err->retryable = true;
	return false;
}

static bool
send_plain(Applier *a, const char *sql, int n, const char *const *vals,
           Error *err)
{
	if (a->pend_count >= APPLY_INFLIGHT_MAX &&
	    !read_pending(a, APPLY_INFLIGHT_MAX / 2, err))
		return false;
	if (PQsendQueryParams(pg_raw(a->conn), sql, n, NULL, vals, NULL, NULL, 0) !=
	    1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	return pend_push(a, PEND_PLAIN, NULL, NULL, 0);
}

/* Sends the statement in sqlbuf with params, preparing it the first time. */
static bool
send_prepared(Applier *a, PendKind kind, Rel *rel, int nparams, char *key,
              int nrows, Error *err)
{
	StmtEntry *e;
	PGconn *c = pg_raw(a->conn);

	if (a->pend_count + 2 > APPLY_INFLIGHT_MAX &&
	    !read_pending(a, APPLY_INFLIGHT_MAX / 2, err))
	{
		free(key);
		return false;
	}
	if ((a->nstmts + 1) * 2 > a->stmts_cap && !stmt_grow(a))
	{
		free(key);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	e = stmt_slot(a->stmts, a->stmts_cap, a->sqlbuf);
	if (e->sql == NULL)
	{
		e->sql = strdup(a->sqlbuf);
		if (e->sql == NULL)
		{
			free(key);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		snprintf(e->name, sizeof(e->name), "pgtide_%d", ++a->nstmts);
		if (PQsendPrepare(c, e->name, e->sql, nparams, NULL) != 1)
		{
			free(key);
			pg_error(a->conn, NULL, err);
			err->retryable = true;
			return false;
		}
		pend_push(a, PEND_PLAIN, rel, NULL, 0);
	}
	if (PQsendQueryPrepared(c, e->name, nparams, a->params, NULL, NULL, 0) != 1)
	{
		free(key);
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	atomic_fetch_add(&a->changes, nrows);
	return pend_push(a, kind, rel, key, nrows);
}

/* ---- statements ---- */

/* "(a, b)=(1, x)" from the matched columns, for a conflict message. */
static char *
key_text(const Rel *r, const int *cols, const PgoValue *const *vals, int n)
{
	size_t cap = 8;
	char *out, *p;

	for (int i = 0; i < n; i++)
		cap += strlen(r->cols[cols[i]].qname) + 2 +
		       (vals[i]->kind == 'n' ? 4 : vals[i]->len) + 2;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	p = out;
	*p++ = '(';
	for (int i = 0; i < n; i++)
		p += snprintf(p, cap - (size_t) (p - out), "%s%s", i ? ", " : "",
		              r->cols[cols[i]].qname);
	p += snprintf(p, cap - (size_t) (p - out), ")=(");
	for (int i = 0; i < n; i++)
	{
		if (i)
			p += snprintf(p, cap - (size_t) (p - out), ", ");
		if (vals[i]->kind == 'n')
			p += snprintf(p, cap - (size_t) (p - out), "null");
		else
		{
			memcpy(p, vals[i]->data, vals[i]->len);
			p += vals[i]->len;
		}
	}
	snprintf(p, cap - (size_t) (p - out), ")");
	return out;
}

/*
 * WHERE clause matching the old row, params from *next on. With a key
 * (primary key or USING INDEX): key columns by equality. With REPLICA
 * IDENTITY FULL: every sent column, NULL-safe, and one row only even when
 * the table holds duplicates.
 */
static bool
add_where(Applier *a, Rel *r, const PgoTuple *old, int *next,
          const PgoValue **vals, int *cols, int *nmatch)
{
	bool full = r->replident == 'f';
	bool first = true;

	*nmatch = 0;
	if (full && !(sql_add(a, " WHERE (tableoid, ctid) = (SELECT tableoid, "
	                         "ctid FROM ") &&
	              sql_add(a, r->table->tgt_qname) && sql_add(a, " WHERE")))
		return false;
	else if (!full && !sql_add(a, " WHERE"))
		return false;
	for (int i = 0; i < r->ncols && i < old->ncols; i++)
	{
		const PgoValue *v = &old->values[i];

		if (v->kind == 'u' || (!full && !r->cols[i].key))
			continue;
		if (!sql_add(a, first ? " " : " AND "))
			return false;
		first = false;
		if (full && r->cols[i].text_eq)
		{
			if (!sql_add(a, r->cols[i].qname) ||
			    !sql_add(a, "::text IS NOT DISTINCT FROM ") ||
			    !sql_addf_param(a, (*next)++) || !sql_add(a, "::text"))
				return false;
		}
		else if (!sql_add(a, r->cols[i].qname) ||
		         !sql_add(a, full ? " IS NOT DISTINCT FROM " : " = ") ||
		         !sql_addf_param(a, (*next)++))
			return false;
		cols[*nmatch] = i;
		vals[(*nmatch)++] = v;
	}
	if (first)
		return false; /* nothing to match on */
	return !full || sql_add(a, " LIMIT 1)");
}

static bool
rel_has_key(const Rel *r)
{
	for (int i = 0; i < r->ncols; i++)
		if (r->cols[i].key)
			return true;
	return false;
}

/* UPDATE and DELETE need a way to find the old row. */
static bool
check_identity(const Rel *r, const char *what, Error *err)
{
	if (r->replident == 'f' || (r->replident != 'n' && rel_has_key(r)))
		return true;
	err_set(err, ERR_TARGET,
	        "cannot apply %s on table %s: it has no primary key or replica "
	        "identity",
	        what, r->src_qname);
	return err_hint(err, "give the source table a primary key or REPLICA "
	                     "IDENTITY FULL");
}

/* The values and indexes of a tuple's columns that are sent (not 'u'). */
typedef struct ColSet
{
	const PgoValue **vals;
	int *cols;
	int n;
} ColSet;

static bool
colset_init(ColSet *cs, int cap)
{
	cs->vals = calloc((size_t) cap + 1, sizeof(PgoValue *));
	cs->cols = calloc((size_t) cap + 1, sizeof(int));
	cs->n = 0;
	return cs->vals != NULL && cs->cols != NULL;
}

static void
colset_free(ColSet *cs)
{
	free(cs->vals);
	free(cs->cols);
}

/*
 * "INSERT INTO t (c1..ck) VALUES ($1..$k), ... nrows times" and the conflict
 * clause of the policy, into sqlbuf.
 */
static bool
build_insert(Applier *a, Rel *r, int ncols, int nrows)
{
	bool ok = sql_reset(a) && sql_add(a, "INSERT INTO ") &&
	          sql_add(a, r->table->tgt_qname) && sql_add(a, " (");
	int n = ncols < r->ncols ? ncols : r->ncols;

	bool always = false;

	for (int i = 0; ok && i < n; i++)
	{
		ok = sql_add(a, i ? ", " : "") && sql_add(a, r->cols[i].qname);
		always = always || r->cols[i].always;
	}
	ok = ok &&
	     sql_add(a, always ? ") OVERRIDING SYSTEM VALUE VALUES " : ") VALUES ");
	for (int row = 0; ok && row < nrows; row++)
	{
		ok = sql_add(a, row ? ", (" : "(");
		for (int i = 0; ok && i < n; i++)
			ok =
			    sql_add(a, i ? ", " : "") && sql_addf_param(a, row * n + i + 1);
		ok = ok && sql_add(a, ")");
	}
	if (ok && a->policy != ON_CONFLICT_STOP)
	{
		bool key = r->replident != 'f' && rel_has_key(r);

		/* upsert: the source's row wins; skip: the target's row stays */
		if (a->policy == ON_CONFLICT_UPSERT && key)
		{
			bool first = true;

			ok = sql_add(a, " ON CONFLICT (");
			for (int i = 0; ok && i < n; i++)
				if (r->cols[i].key)
				{
					ok = sql_add(a, first ? "" : ", ") &&
					     sql_add(a, r->cols[i].qname);
					first = false;
				}
			ok = ok && sql_add(a, ") DO UPDATE SET ");
			first = true;
			for (int i = 0; ok && i < n; i++)
			{
				if (r->cols[i].always)
					continue;
				ok = sql_add(a, first ? "" : ", ") &&
				     sql_add(a, r->cols[i].qname) &&
				     sql_add(a, " = EXCLUDED.") && sql_add(a, r->cols[i].qname);
				first = false;
			}
			/* tells an insert from an update, to count conflicts */
			ok = ok && sql_add(a, " RETURNING (xmax = 0)");
		}
		else
			ok = ok && sql_add(a, " ON CONFLICT DO NOTHING");
	}
	return ok;
}

/* One row, now: an UPDATE written as an upsert. */
static bool
apply_insert_now(Applier *a, Rel *r, const PgoTuple *t, PendKind kind,
                 Error *err)
{
	const PgoValue **vals;
	int n = t->ncols < r->ncols ? t->ncols : r->ncols;
	bool ok;

	vals = calloc((size_t) n + 1, sizeof(PgoValue *));
	if (vals == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
		vals[i] = &t->values[i];
	ok = build_insert(a, r, n, 1) && params_set(a, vals, n);
	free(vals);
	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return send_prepared(a, kind, r, n, NULL, 1, err);
}

/* Sends nrows rows of the run from row `first` as one statement. */
static bool
run_send(Applier *a, int first, int nrows, Error *err)
{
	InsertRun *run = &a->run;
	int nparams = nrows * run->ncols;

	if (nparams > a->params_cap)
	{
		const char **grown =
		    realloc(a->params, sizeof(char *) * (size_t) nparams);

		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		a->params = grown;
		a->params_cap = nparams;
	}
	for (int i = 0; i < nparams; i++)
	{
		int64_t off = run->offs[first * run->ncols + i];

		a->params[i] = off < 0 ? NULL : run->data + off;
	}
	if (!build_insert(a, run->rel, run->ncols, nrows))
		return err_set(err, ERR_INTERNAL, "out of memory");
	return send_prepared(a, PEND_INSERT, run->rel, nparams, NULL, nrows, err);
}

/*
 * Sends the waiting rows: statements of APPLY_RUN_ROWS, 10 and 1 rows, so
 * that a table needs at most three prepared shapes.
 */
static bool
run_flush(Applier *a, Error *err)
{
	InsertRun *run = &a->run;
	uint32_t xid = a->xid;
	Lsn final_lsn = a->final_lsn;
	bool ok = true;

	if (run->rel == NULL)
		return true;
	/* messages name the transaction of the run's first row */
	a->xid = run->xid;
	a->final_lsn = run->final_lsn;
	for (int done = 0; ok && done < run->nrows;)
	{
		int left = run->nrows - done;
		int n = left >= APPLY_RUN_ROWS ? APPLY_RUN_ROWS : left >= 10 ? 10 : 1;

		ok = run_send(a, done, n, err);
		done += n;
	}
	a->xid = xid;
	a->final_lsn = final_lsn;
	run->rel = NULL;
	run->nrows = 0;
	run->len = 0;
	return ok;
}

static bool
run_add(Applier *a, Rel *r, const PgoTuple *t, Error *err)
{
	InsertRun *run = &a->run;
	int n = t->ncols < r->ncols ? t->ncols : r->ncols;
	size_t need = 0;
	int cap;

	if (run->rel != NULL &&
	    (run->rel != r || run->ncols != n || run->nrows >= APPLY_RUN_ROWS ||
	     run->len >= APPLY_RUN_BYTES || (run->nrows + 1) * n > 65535) &&
	    !run_flush(a, err))
		return false;
	if (run->rel == NULL)
	{
		run->rel = r;
		run->ncols = n;
		run->xid = a->xid;
		run->final_lsn = a->final_lsn;
	}
	for (int i = 0; i < n; i++)
		need += t->values[i].kind == 'n' ? 0 : t->values[i].len + 1;
	if (run->len + need > run->cap)
	{
		size_t c = run->cap ? run->cap : 65536;
		char *grown;

		while (c < run->len + need)
			c *= 2;
		grown = realloc(run->data, c);
		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		run->data = grown;
		run->cap = c;
	}
	cap = (run->nrows + 1) * n;
	if (cap > run->offs_cap)
	{
		int c = run->offs_cap ? run->offs_cap * 2 : 1024;
		int64_t *grown;

		while (c < cap)
			c *= 2;
		grown = realloc(run->offs, sizeof(int64_t) * (size_t) c);
		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		run->offs = grown;
		run->offs_cap = c;
	}
	for (int i = 0; i < n; i++)
	{
		const PgoValue *v = &t->values[i];
		int64_t *off = &run->offs[run->nrows * n + i];

		if (v->kind == 'n')
		{
			*off = -1;
			continue;
		}
		*off = (int64_t) run->len;
		memcpy(run->data + run->len, v->data, v->len);
		run->data[run->len + v->len] = '\0';
		run->len += v->len + 1;
	}
	run->nrows++;
	return true;
}

static bool apply_delete(Applier *a, Rel *r, const PgoChange *ch, Error *err);

static bool
sends_every_column(const PgoTuple *t)
{
	for (int i = 0; i < t->ncols; i++)
		if (t->values[i].kind == 'u')
			return false;
	return true;
}

static bool
apply_update(Applier *a, Rel *r, const PgoChange *ch, Error *err)
{
	const PgoTuple *nt = &ch->new_tuple;
	/* the old key when the key changed or identity is FULL, else the new */
	const PgoTuple *ot = ch->old_kind ? &ch->old_tuple : nt;
	ColSet cs, where;
	int next = 1, nset = 0;
	bool ok;
	char *key = NULL;

	if (!check_identity(r, "an UPDATE", err))
		return false;
	/*
	 * upsert: the new row version is written whether or not the old one is
	 * there (an old key that changed is deleted first). Needs a key and the
	 * whole row: with an unchanged TOASTed value the UPDATE stays an UPDATE.
	 */
	if (a->policy == ON_CONFLICT_UPSERT && r->replident != 'f' &&
	    rel_has_key(r) && sends_every_column(nt))
		return (ch->old_kind == 0 || apply_delete(a, r, ch, err)) &&
		       apply_insert_now(a, r, nt, PEND_UPSERT, err);
	if (!colset_init(&cs, nt->ncols + ot->ncols) ||
	    !colset_init(&where, ot->ncols))
	{
		colset_free(&cs);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	ok = sql_reset(a) && sql_add(a, "UPDATE ") &&
	     sql_add(a, r->table->tgt_qname) && sql_add(a, " SET ");
	/* an unchanged TOASTed value ('u') is not sent: leave it as it is; an
	 * identity the target generates ALWAYS cannot be set, only matched */
	for (int i = 0; ok && i < r->ncols && i < nt->ncols; i++)
	{
		if (r->cols[i].always && ch->old_kind == 'K' && r->cols[i].key)
		{
			colset_free(&where);
			colset_free(&cs);
			err_set(err, ERR_TARGET,
			        "cannot apply an UPDATE of table %s that changes its "
			        "key: column %s is GENERATED ALWAYS AS IDENTITY on the "
			        "target",
			        r->src_qname, r->cols[i].qname);
			return err_hint(err, "on the target, ALTER TABLE ... ALTER "
			                     "COLUMN ... SET GENERATED BY DEFAULT for the "
			                     "migration, then run pgtide migrate again");
		}
		if (nt->values[i].kind == 'u' || r->cols[i].always)
			continue;
		ok = sql_add(a, nset ? ", " : "") && sql_add(a, r->cols[i].qname) &&
		     sql_add(a, " = ") && sql_addf_param(a, next++);
		cs.vals[cs.n++] = &nt->values[i];
		nset++;
	}
	ok = ok && nset > 0 &&
	     add_where(a, r, ot, &next, where.vals, where.cols, &where.n);
	if (ok)
	{
		for (int i = 0; i < where.n; i++)
			cs.vals[cs.n++] = where.vals[i];
		key = key_text(r, where.cols, where.vals, where.n);
		ok = params_set(a, cs.vals, cs.n);
	}
	colset_free(&where);
	colset_free(&cs);
	if (!ok)
	{
		free(key);
		if (nset == 0)
			return true; /* only unchanged TOAST values: nothing to do */
		return err_set(err, ERR_INTERNAL,
		               "could not build an UPDATE for table %s", r->src_qname);
	}
	a->batch_has_ud = true;
	return send_prepared(a, PEND_UPDATE, r, next - 1, key, 1, err);
}

static bool
apply_delete(Applier *a, Rel *r, const PgoChange *ch, Error *err)
{
	ColSet where;
	int next = 1;
	char *key = NULL;
	bool ok;

	if (!check_identity(r, "a DELETE", err))
		return false;
	if (!colset_init(&where, ch->old_tuple.ncols))
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = sql_reset(a) && sql_add(a, "DELETE FROM ") &&
	     sql_add(a, r->table->tgt_qname) &&
	     add_where(a, r, &ch->old_tuple, &next, where.vals, where.cols,
	               &where.n);
	if (ok)
	{
		key = key_text(r, where.cols, where.vals, where.n);
		ok = params_set(a, where.vals, where.n);
	}
	colset_free(&where);
	if (!ok)
	{
		free(key);
		return err_set(err, ERR_INTERNAL,
		               "could not build a DELETE for "
		               "table %s",
		               r->src_qname);
	}
	a->batch_has_ud = true;
	return send_prepared(a, PEND_DELETE, r, next - 1, key, 1, err);
}

static bool
apply_truncate(Applier *a, const PgoTruncate *t, Error *err)
{
	int n = 0;
	bool ok = sql_reset(a) && sql_add(a, "TRUNCATE ONLY ");

	for (int i = 0; ok && i < t->nrelids; i++)
	{
		Rel *r = rel_find(a, t->relids[i]);

		if (r == NULL)
			return err_set(err, ERR_SOURCE,
			               "TRUNCATE of relation %u before its description",
			               t->relids[i]);
		if (r->table == NULL || a->final_lsn < r->table->load_point)
			continue;
		/* loaded through a target table it shares with others: emptying
		 * that would take their rows too */
		if (strcmp(r->table->tgt_qname, r->src_qname) != 0)
		{
			err_set(
			    err, ERR_TARGET,
			    "cannot apply TRUNCATE of %s: it is loaded into %s together "
			    "with other source tables",
			    r->src_qname, r->table->tgt_qname);
			return err_hint(err,
			                "the change stream stops here rather than "
			                "empty %s; a table that is truncated while "
			                "it migrates needs a target of its own",
			                r->table->tgt_qname);
		}
		ok = sql_add(a, n++ ? ", " : "") && sql_add(a, r->table->tgt_qname);
	}
	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (n == 0)
		return true;
	if ((t->options & PGO_TRUNCATE_RESTART_IDENTITY) &&
	    !sql_add(a, " RESTART IDENTITY"))
		return err_set(err, ERR_INTERNAL, "out of memory");
	if ((t->options & PGO_TRUNCATE_CASCADE) && !sql_add(a, " CASCADE"))
		return err_set(err, ERR_INTERNAL, "out of memory");
	atomic_fetch_add(&a->changes, 1);
	return send_plain(a, a->sqlbuf, 0, NULL, err);
}

/* ---- public ---- */

bool
apply_message(Applier *a, const PgoMessage *m, Error *err)
{
	Rel *r;

	/* whatever follows a run of inserts sees them applied first */
	if (m->kind != PGO_INSERT && m->kind != PGO_TYPE && m->kind != PGO_ORIGIN &&
	    m->kind != PGO_MESSAGE && !run_flush(a, err))
		return false;
	switch (m->kind)
	{
		case PGO_RELATION:
			return rel_update(a, &m->u.relation, err);
		case PGO_INSERT:
		case PGO_UPDATE:
		case PGO_DELETE:
			r = rel_find(a, m->u.change.relid);
			if (r == NULL)
				return err_set(err, ERR_SOURCE,
				               "change to relation %u before its description",
				               m->u.change.relid);
			/* not moved, or already in the copy that loaded this table */
			if (r->table == NULL || a->final_lsn < r->table->load_point)
			{
				atomic_fetch_add(&a->skipped, 1);
				return true;
			}
			if (m->kind == PGO_INSERT)
				return run_add(a, r, &m->u.change.new_tuple, err);
			if (m->kind == PGO_UPDATE)
				return apply_update(a, r, &m->u.change, err);
			return apply_delete(a, r, &m->u.change, err);
		case PGO_TRUNCATE:
			return apply_truncate(a, &m->u.truncate, err);
		case PGO_TYPE:
		case PGO_ORIGIN:
		case PGO_MESSAGE:
			return true;
		default:
			return err_set(err, ERR_SOURCE,
			               "unexpected %s message inside a transaction",
			               pgoutput_kind_name(m->kind));
	}
}

bool
apply_batch_begin(Applier *a, Error *err)
{
	if (a->pend_count != 0)
	{
		/* a result left over from the last batch would shift every result
		 * of this one onto the wrong statement */
		err_set(err, ERR_INTERNAL,
		        "%d results of the last batch were never read", a->pend_count);
		err->retryable = true;
		return false;
	}
	a->in_batch = true;
	a->batch_has_ud = false;
	a->batch_txns = 0;
	err_clear(&a->conflict);
	return send_plain(a, "BEGIN", 0, NULL, err);
}

void
apply_txn_begin(Applier *a, uint32_t xid, Lsn final_lsn)
{
	a->xid = xid;
	a->final_lsn = final_lsn;
	a->batch_txns++;
}

int
apply_batch_size(const Applier *a)
{
	return a->pend_count;
}

void
apply_batch_abort(Applier *a)
{
	Error ignored = ERR_INIT;

	a->run.rel = NULL;
	a->run.nrows = 0;
	a->run.len = 0;
	if (!a->in_batch)
		return;
	a->in_batch = false;
	if (!pg_ok(a->conn))
		return;
	sync_and_read(a, &ignored);
	err_clear(&ignored);
	if (send_plain(a, "ROLLBACK", 0, NULL, &ignored))
		sync_and_read(a, &ignored);
}

bool
apply_batch_commit(Applier *a, Lsn end_lsn, int64_t commit_time_us, Error *err)
{
	char lsn[LSN_TEXT_MAX], ts[32];
	const char *params[2] = {lsn_format(end_lsn, lsn), ts};

	if (!run_flush(a, err))
		goto fail;
	/* Under the stop policy a missing row must stop the batch before COMMIT:
	 * read every result first. Other policies count conflicts afterwards. */
	if (a->policy == ON_CONFLICT_STOP && a->batch_has_ud &&
	    !read_pending(a, -1, err))
		goto fail;
	if (err_is_set(&a->conflict))
	{
		*err = a->conflict;
		goto fail;
	}
	/* microseconds since 2000-01-01 as a timestamptz literal */
	snprintf(ts, sizeof(ts), "%.6f",
	         (double) (commit_time_us + PGO_EPOCH_UNIX_US) / 1e6);
	/* txid_current: a batch that wrote nothing (only skipped changes, or
	 * cutover's marker) still needs a commit record to carry the origin
	 * forward; a batch that wrote already has its xid */
	if (!send_plain(a,
	                "SELECT pg_catalog.pg_replication_origin_xact_setup($1,"
	                " pg_catalog.to_timestamp($2::float8)),"
	                " pg_catalog.txid_current()",
	                2, params, err) ||
	    !send_plain(a, "COMMIT", 0, NULL, err))
		goto fail;
	fault_point("apply.before_commit");
	if (!sync_and_read(a, err))
		goto fail;
	if (err_is_set(&a->conflict))
	{
		/* skip/upsert never set it; defensive */
		*err = a->conflict;
		return false;
	}
	a->in_batch = false;
	atomic_fetch_add(&a->txns, a->batch_txns);
	atomic_store(&a->applied_end, end_lsn);
	atomic_store(&a->applied_time_us, commit_time_us + PGO_EPOCH_UNIX_US);
	fault_point("apply.after_commit");
	return true;
fail:
	apply_batch_abort(a);
	return false;
}

bool
apply_flushed(Applier *a, Lsn *flushed, Error *err)
{
	const char *params[1] = {a->origin};
	PGconn *c = pg_raw(a->conn);
	PGresult *res;
	bool ok = false;

	*flushed = LSN_INVALID;
	if (a->in_batch)
		return err_set(err, ERR_INTERNAL, "origin progress asked mid-batch");
	if (PQsendQueryParams(c,
	                      "SELECT coalesce(pg_catalog.pg_replication_origin_"
	                      "progress($1, true)::text, '0/0')",
	                      1, NULL, params, NULL, NULL, 0) != 1 ||
	    PQpipelineSync(c) != 1)
	{
		pg_error(a->conn, NULL, err);
		err->retryable = true;
		return false;
	}
	res = PQgetResult(c);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		ok = lsn_parse(PQgetvalue(res, 0, 0), flushed) ||
		     err_set(err, ERR_TARGET, "bad origin progress \"%s\"",
		             PQgetvalue(res, 0, 0));
	else
		pg_error(a->conn, res, err);
	PQclear(res);
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	/* then the Sync */
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
		ok = pg_error(a->conn, res, err);
	PQclear(res);
	return ok;
}

/* Reads the target's GENERATED ALWAYS identity columns (attidentity: 10+). */
static bool
load_always(Applier *a, Error *err)
{
	PGresult *res;
	int n;

	if (!pg_query(a->conn,
	              "SELECT '\"' || replace(n.nspname, '\"', '\"\"') || '\".\"'"
	              " || replace(c.relname, '\"', '\"\"') || '\"', t.attname"
	              " FROM pg_catalog.pg_attribute t"
	              " JOIN pg_catalog.pg_class c ON c.oid = t.attrelid"
	              " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE t.attidentity = 'a' AND NOT t.attisdropped"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
	              0, NULL, &res, err))
		return err_prefix(err, "reading the target's identity columns: ");
	n = PQntuples(res);
	a->always_tables = calloc((size_t) n + 1, sizeof(char *));
	a->always_cols = calloc((size_t) n + 1, sizeof(char *));
	if (a->always_tables == NULL || a->always_cols == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < n; i++)
	{
		a->always_tables[i] = strdup(PQgetvalue(res, i, 0));
		a->always_cols[i] = strdup(PQgetvalue(res, i, 1));
		a->nalways++;
		if (a->always_tables[i] == NULL || a->always_cols[i] == NULL)
		{
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	}
	PQclear(res);
	return true;
}

/*
 * Opens the target session: replication role, settings, the origin. The
 * relation cache is the stream's and survives; statements are the
 * session's and start anew.
 */
static bool
session_open(Applier *a, Error *err)
{
	const char *params[1] = {a->origin};
	PGresult *res;

	/*
	 * replica: the target's triggers and FK checks stay silent, as for
	 * PostgreSQL's own apply worker. The origin advance commits with each
	 * batch, so synchronous_commit can be off: what the slot is told comes
	 * from pg_replication_origin_progress(origin, true), which reports only
	 * what the target flushed. The date and number settings are the ones the
	 * source's walsender renders values with (stream.c sets them there).
	 */
	if (!pg_connect(a->target_uri, ERR_TARGET, PG_CONN_SQL, "pgtide apply",
	                10000, &a->conn, err) ||
	    !pg_exec(a->conn,
	             "SET session_replication_role = replica;"
	             " SET synchronous_commit = off;"
	             " SET DateStyle = ISO; SET IntervalStyle = postgres;"
	             " SET extra_float_digits = 3; SET TimeZone = 'UTC'",
	             err) ||
	    !pg_query(a->conn,
	              "SELECT pg_catalog.pg_replication_origin_create($1)"
	              " WHERE NOT EXISTS (SELECT 1 FROM"
	              " pg_catalog.pg_replication_origin WHERE roname = $1)",
	              1, params, &res, err))
		return err_prefix(err, "could not prepare the target for the change "
		                       "stream: ");
	PQclear(res);
	if (!pg_query(a->conn,
	              "SELECT pg_catalog.pg_replication_origin_session_setup($1)",
	              1, params, &res, err))
	{
		/* a killed pgtide's session may hold the origin for a moment */
		if (pg_err_is(err, "55000"))
			err->retryable = true;
		return err_prefix(
		    err, "could not set up replication origin \"%s\": ", a->origin);
	}
	PQclear(res);
	if (a->always_tables == NULL && !load_always(a, err))
		return false;
	if (PQenterPipelineMode(pg_raw(a->conn)) != 1)
		return pg_error(a->conn, NULL, err);
	return true;
}

bool
apply_new(const char *target_uri, const char *origin, const ApplyTable *tables,
          int ntables, OnConflict policy, Applier **out, Error *err)
{
	Applier *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (a == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	a->policy = policy;
	a->origin = strdup(origin);
	a->target_uri = strdup(target_uri);
	a->pend = calloc(APPLY_INFLIGHT_MAX, sizeof(Pending));
	a->tables = calloc((size_t) ntables + 1, sizeof(ApplyTable));
	if (a->origin == NULL || a->target_uri == NULL || a->pend == NULL ||
	    a->tables == NULL)
	{
		apply_free(a);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < ntables; i++)
	{
		ApplyTable *t = &a->tables[i];

		t->src_schema = strdup(tables[i].src_schema);
		t->src_name = strdup(tables[i].src_name);
		t->tgt_qname = strdup(tables[i].tgt_qname);
		t->load_point = tables[i].load_point;
		a->ntables++;
		if (!t->src_schema || !t->src_name || !t->tgt_qname)
		{
			apply_free(a);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	}
	if (!session_open(a, err))
	{
		apply_free(a);
		return false;
	}
	*out = a;
	return true;
}

bool
apply_reconnect(Applier *a, Error *err)
{
	pg_close(a->conn);
	a->conn = NULL;
	stmt_free_all(a);
	for (int i = 0; i < APPLY_INFLIGHT_MAX; i++)
	{
		free(a->pend[i].key);
		a->pend[i].key = NULL;
	}
	a->pend_head = a->pend_count = 0;
	a->in_batch = false;
	a->run.rel = NULL;
	a->run.nrows = 0;
	a->run.len = 0;
	return session_open(a, err);
}

void
apply_free(Applier *a)
{
	if (a == NULL)
		return;
	pg_close(a->conn);
	for (int i = 0; i < a->nrels; i++)
	{
		rel_clear(a->rels[i]);
		free(a->rels[i]);
	}
	free(a->rels);
	stmt_free_all(a);
	for (int i = 0; a->pend != NULL && i < APPLY_INFLIGHT_MAX; i++)
		free(a->pend[i].key);
	free(a->pend);
	for (int i = 0; i < a->ntables; i++)
	{
		free((char *) (uintptr_t) a->tables[i].src_schema);
		free((char *) (uintptr_t) a->tables[i].src_name);
		free((char *) (uintptr_t) a->tables[i].tgt_qname);
	}
	free(a->tables);
	for (int i = 0; i < a->nalways; i++)
	{
		free(a->always_tables[i]);
		free(a->always_cols[i]);
	}
	free(a->always_tables);
	free(a->always_cols);
	free(a->origin);
	free(a->target_uri);
	free(a->run.data);
	free(a->run.offs);
	free(a->sqlbuf);
	free(a->valbuf);
	free(a->params);
	free(a);
}

void
apply_counters(const Applier *a, ApplyCounters *out)
{
	out->txns = atomic_load(&a->txns);
	out->changes = atomic_load(&a->changes);
	out->conflicts = atomic_load(&a->conflicts);
	out->skipped = atomic_load(&a->skipped);
	out->applied_end = atomic_load(&a->applied_end);
	out->applied_commit_time_us = atomic_load(&a->applied_time_us);
}
