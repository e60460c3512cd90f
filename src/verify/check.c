/*
 * check: the findings, one function per concern.
 *
 * It owns the list of finding ids (check_ids below, documented one by one in
 * docs/check.md), the SQL that finds them and the way they are printed or
 * logged. It must never write to a server: both sessions are opened with
 * default_transaction_read_only = on, so a write slipped in by mistake fails
 * instead of changing anything; it never creates a slot, publication or
 * schema, and never calls the state module (which creates its schema).
 *
 * One run:
 *
 *   open both sessions, read the task's state (resume or first run)
 *   sample the source's WAL position and next txid        (t0)
 *   catalog and settings checks, source then target
 *   wait until CHECK_SAMPLE_MS have passed, sample again  (t1)
 *   WAL findings: the rate between t0 and t1 times the load's time
 *
 * The checks run while the clock between t0 and t1 runs, so the sampling
 * costs at most CHECK_SAMPLE_MS in all.
 */
#include "verify/check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/lsn.h"
#include "load/progress.h"
#include "load/schema.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/mapping.h"

/* Beyond this many findings of one id, the rest are counted, not listed. */
#define CHECK_MAX_PER_ID 20

/*
 * The load rate assumed for the estimates, copy and index builds together:
 * docs/benchmarks.md measured 109 MB/s for the whole load (1463 MB in 13.4 s,
 * 2 copy and 2 index jobs on 2 cores); rounded down. A faster pair of servers
 * only makes the estimates pessimistic.
 */
#define CHECK_LOAD_BYTES_PER_S (INT64_C(100) * 1024 * 1024)

/*
 * Added to the load's time for what the slot also waits through: the schema
 * step, the start of the change stream and its catch-up.
 */
#define CHECK_LOAD_MARGIN_S 60

/* The WAL rate is measured over at least this long. */
#define CHECK_SAMPLE_MS 1000

/* Writing transactions per second above which a source counts as busy. */
#define CHECK_BUSY_XACTS_PER_S 100.0

/* A wal_sender_timeout below this cuts off a pgtide that is briefly slow. */
#define CHECK_MIN_SENDER_TIMEOUT_MS 10000
/* a REPLICA IDENTITY FULL table this small is scanned in no time */
#define CHECK_FULL_IDENTITY_ROWS "10000"

typedef enum CheckSeverity
{
	CHECK_INFO = 0,
	CHECK_WARNING,
	CHECK_BLOCKER,
} CheckSeverity;

typedef enum CheckId
{
	CHECK_ID_SOURCE_VERSION = 0,
	CHECK_ID_SOURCE_IN_RECOVERY,
	CHECK_ID_WAL_LEVEL,
	CHECK_ID_REPLICATION_SLOTS,
	CHECK_ID_WAL_SENDERS,
	CHECK_ID_REPLICATION_PRIVILEGE,
	CHECK_ID_TABLE_READ_PRIVILEGE,
	CHECK_ID_PUBLICATION_OWNERSHIP,
	CHECK_ID_TASK_SLOT,
	CHECK_ID_TASK_PUBLICATION,
	CHECK_ID_NO_REPLICA_IDENTITY,
	CHECK_ID_FULL_IDENTITY_NO_INDEX,
	CHECK_ID_UNLOGGED_TABLE,
	CHECK_ID_TEMPORARY_TABLE,
	CHECK_ID_LARGE_OBJECTS,
	CHECK_ID_FOREIGN_TABLE,
	CHECK_ID_SEQUENCES,
	CHECK_ID_IDENTITY_COLUMNS,
	CHECK_ID_TRACK_COMMIT_TIMESTAMP,
	CHECK_ID_WAL_SENDER_TIMEOUT,
	CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE,
	CHECK_ID_WAL_RETENTION,
	CHECK_ID_ESTIMATED_SIZE,
	CHECK_ID_TARGET_VERSION,
	CHECK_ID_TARGET_CREATE_PRIVILEGE,
	CHECK_ID_MISSING_EXTENSION,
	CHECK_ID_MISSING_TYPE,
	CHECK_ID_MISSING_COLLATION,
	CHECK_ID_MISSING_TABLESPACE,
	CHECK_ID_TARGET_HAS_DATA,
	CHECK_ID_MISSING_TARGET_TABLE,
	CHECK_ID_PG_DUMP,
	CHECK_ID_COUNT,
} CheckId;

/*
 * Not skippable: a migration that cannot work at all (wal_level, a standby
 * or too old a source), or one that would make the application's writes on
 * the source fail or be lost (no_replica_identity).
 */
static const struct
{
	const char *name;
	bool skippable;
} check_ids[CHECK_ID_COUNT] = {
    [CHECK_ID_SOURCE_VERSION] = {"source_version", false},
    [CHECK_ID_SOURCE_IN_RECOVERY] = {"source_in_recovery", false},
    [CHECK_ID_WAL_LEVEL] = {"wal_level", false},
    [CHECK_ID_REPLICATION_SLOTS] = {"replication_slots", true},
    [CHECK_ID_WAL_SENDERS] = {"wal_senders", true},
    [CHECK_ID_REPLICATION_PRIVILEGE] = {"replication_privilege", true},
    [CHECK_ID_TABLE_READ_PRIVILEGE] = {"table_read_privilege", true},
    [CHECK_ID_PUBLICATION_OWNERSHIP] = {"publication_ownership", true},
    [CHECK_ID_TASK_SLOT] = {"task_slot", true},
    [CHECK_ID_TASK_PUBLICATION] = {"task_publication", true},
    [CHECK_ID_NO_REPLICA_IDENTITY] = {"no_replica_identity", false},
    [CHECK_ID_FULL_IDENTITY_NO_INDEX] = {"full_identity_no_index", true},
    [CHECK_ID_UNLOGGED_TABLE] = {"unlogged_table", true},
    [CHECK_ID_TEMPORARY_TABLE] = {"temporary_table", true},
    [CHECK_ID_LARGE_OBJECTS] = {"large_objects", true},
    [CHECK_ID_FOREIGN_TABLE] = {"foreign_table", true},
    [CHECK_ID_SEQUENCES] = {"sequences", true},
    [CHECK_ID_IDENTITY_COLUMNS] = {"identity_columns", true},
    [CHECK_ID_TRACK_COMMIT_TIMESTAMP] = {"track_commit_timestamp", true},
    [CHECK_ID_WAL_SENDER_TIMEOUT] = {"wal_sender_timeout", true},
    [CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE] = {"max_slot_wal_keep_size", true},
    [CHECK_ID_WAL_RETENTION] = {"wal_retention", true},
    [CHECK_ID_ESTIMATED_SIZE] = {"estimated_size", true},
    [CHECK_ID_TARGET_VERSION] = {"target_version", true},
    [CHECK_ID_TARGET_CREATE_PRIVILEGE] = {"target_create_privilege", true},
    [CHECK_ID_MISSING_EXTENSION] = {"missing_extension", true},
    [CHECK_ID_MISSING_TYPE] = {"missing_type", true},
    [CHECK_ID_MISSING_COLLATION] = {"missing_collation", true},
    [CHECK_ID_MISSING_TABLESPACE] = {"missing_tablespace", true},
    [CHECK_ID_TARGET_HAS_DATA] = {"target_has_data", true},
    [CHECK_ID_MISSING_TARGET_TABLE] = {"missing_target_table", true},
    [CHECK_ID_PG_DUMP] = {"pg_dump", true},
};

static const char *const severity_names[] = {"info", "warning", "blocker"};

typedef struct CheckFinding
{
	CheckId id;
	CheckSeverity severity;
	char *object;  /* owned */
	char *message; /* owned; what is wrong, lower-case, no period */
	char *why;     /* owned; "" when the message says it all */
	char *fix;     /* owned; "" when nothing needs doing */
} CheckFinding;

typedef struct CheckReport
{
	CheckFinding *items; /* owned */
	int n;
	int cap;
	int omitted[CHECK_ID_COUNT]; /* past CHECK_MAX_PER_ID, per id */
	CheckSeverity omitted_severity[CHECK_ID_COUNT];
	bool oom; /* a finding was lost: the run fails with ERR_INTERNAL */
} CheckReport;

/* A source table registered in the task's state on the target. */
typedef struct CheckRegistered
{
	char *schema; /* owned */
	char *name;   /* owned */
	bool done;
} CheckRegistered;

/* An extension of the source, as the target has it. */
typedef struct CheckExtension
{
	char *name; /* owned */
	bool installed;
	bool available;
} CheckExtension;

typedef struct Check
{
	const TaskConfig *cfg;
	atomic_int *stop;
	PgConn *src;
	PgConn *tgt;
	int src_version;
	int tgt_version;
	bool src_super;
	bool tgt_super;
	bool in_recovery;
	char src_db[128];
	char tgt_db[128];
	Catalog *cat;
	char **shown; /* per cat->tables: quote_ident form; owned */
	/* per cat->tables: the index of the table it loads into (existing mode:
	 * itself or its nearest ancestor on the target), or -1; owned */
	int *into;
	char *selected_oids;  /* "{oid,...}" of the selected tables; owned */
	char *published_oids; /* those the publication lists; owned */
	TablePattern *inc;    /* parsed cfg->include; owned */
	TablePattern *exc;
	int ninc;
	int nexc;
	CheckExtension *exts; /* the source's extensions; owned */
	int nexts;
	/* the task's state on the target */
	bool resume;
	bool has_point;   /* the slot's consistent point is recorded */
	bool schema_done; /* create mode: pre-data is in place */
	bool load_done;   /* phase loaded or later */
	char slot[64];
	char publication[64];
	CheckRegistered *reg; /* owned */
	int nreg;
	/* the task's slot and publication on the source */
	bool slot_exists;
	double slot_retained_bytes;
	bool publication_exists;
	/* WAL and transaction rate, sampled at t0 and t1 */
	bool sampled;
	int64_t t0_ms;
	char lsn0[LSN_TEXT_MAX + 2];
	int64_t xid0;
	double sample_s;
	double wal_bytes_per_s;
	double xacts_per_s;
	CheckReport rep;
} Check;

/* ---- findings ---- */

static char *
dup_or_empty(const char *s, bool *oom)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		*oom = true;
	return d;
}

/*
 * Adds a finding; past CHECK_MAX_PER_ID of one id it is only counted. Out of
 * memory marks the report, which then fails the run.
 */
static void add(Check *c, CheckId id, CheckSeverity sev, const char *object,
                const char *why, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void
add(Check *c, CheckId id, CheckSeverity sev, const char *object,
    const char *why, const char *fix, const char *fmt, ...)
{
	CheckReport *r = &c->rep;
	CheckFinding *f;
	int same = 0;
	va_list ap;

	for (int i = 0; i < r->n; i++)
		same += r->items[i].id == id;
	if (same >= CHECK_MAX_PER_ID)
	{
		if (r->omitted[id] == 0 || sev > r->omitted_severity[id])
			r->omitted_severity[id] = sev;
		r->omitted[id]++;
		return;
	}
	if (r->n == r->cap)
	{
		int cap = r->cap ? r->cap * 2 : 32;
		CheckFinding *items = realloc(r->items, (size_t) cap * sizeof(*items));

		if (items == NULL)
		{
			r->oom = true;
			return;
		}
		r->items = items;
		r->cap = cap;
	}
	f = &r->items[r->n++];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->severity = sev;
	va_start(ap, fmt);
	if (vasprintf(&f->message, fmt, ap) < 0)
	{
		f->message = NULL;
		r->oom = true;
	}
	va_end(ap);
	f->object = dup_or_empty(object, &r->oom);
	f->why = dup_or_empty(why, &r->oom);
	f->fix = dup_or_empty(fix, &r->oom);
}

static void
report_free(CheckReport *r)
{
	for (int i = 0; i < r->n; i++)
	{
		free(r->items[i].object);
		free(r->items[i].message);
		free(r->items[i].why);
		free(r->items[i].fix);
	}
	free(r->items);
	memset(r, 0, sizeof(*r));
}

static bool
skip_named(const TaskConfig *cfg, CheckId id)
{
	for (int i = 0; i < cfg->check_skip.count; i++)
		if (strcmp(cfg->check_skip.items[i], check_ids[id].name) == 0)
			return true;
	return false;
}

/* Whether a finding of this id and severity stops migrate. */
static bool
blocks(const TaskConfig *cfg, CheckId id, CheckSeverity sev)
{
	return sev == CHECK_BLOCKER &&
	       (!check_ids[id].skippable || !skip_named(cfg, id));
}

/* An unknown id in check.skip is a typo that would silently skip nothing. */
static bool
validate_skips(const TaskConfig *cfg, Error *err)
{
	for (int i = 0; i < cfg->check_skip.count; i++)
	{
		const char *name = cfg->check_skip.items[i];
		bool known = false;

		for (int k = 0; k < CHECK_ID_COUNT && !known; k++)
			known = strcmp(name, check_ids[k].name) == 0;
		if (!known)
		{
			err_set(err, ERR_CONFIG, "check.skip: unknown finding id \"%s\"",
			        name);
			return err_hint(err, "the ids are listed in docs/check.md and "
			                     "printed by pgtide check");
		}
	}
	return true;
}

/* ---- formatting, arrays of names, lookups ---- */

static void
format_seconds(double s, char *buf, size_t cap)
{
	if (s < 90)
		snprintf(buf, cap, "%.0f s", s);
	else if (s < 90 * 60)
		snprintf(buf, cap, "%.0f min", s / 60);
	else
		snprintf(buf, cap, "%.1f h", s / 3600);
}

static bool
interrupted(const Check *c, Error *err)
{
	if (c->stop != NULL && *c->stop)
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

static bool
oom(Error *err)
{
	return err_set(err, ERR_INTERNAL, "out of memory");
}

/*
 * A text[] literal of the items, each double-quoted, for one query over many
 * names instead of one query each. malloc'd; NULL on out-of-memory.
 */
static char *
text_array(char *const *items, int n)
{
	size_t cap = 3, len = 0;
	char *out;

	for (int i = 0; i < n; i++)
		cap += strlen(items[i]) * 2 + 3;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			out[len++] = ',';
		out[len++] = '"';
		for (const char *s = items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				out[len++] = '\\';
			out[len++] = *s;
		}
		out[len++] = '"';
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

typedef enum CheckTables
{
	CHECK_TABLES_ALL = 0,
	CHECK_TABLES_SELECTED,
	CHECK_TABLES_PUBLISHED, /* selected, and listed in the publication */
} CheckTables;

/* An oid[] literal of the catalog's tables of that kind. malloc'd; NULL on
 * out-of-memory. */
static char *
oid_array(const Catalog *cat, CheckTables which)
{
	size_t cap = 3 + (size_t) cat->ntables * 11, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (int i = 0; i < cat->ntables; i++)
	{
		const CatTable *t = &cat->tables[i];

		if ((which != CHECK_TABLES_ALL && !t->selected) ||
		    (which == CHECK_TABLES_PUBLISHED &&
		     (t->persistence != 'p' || !t->has_identity)))
			continue;
		len += (size_t) snprintf(out + len, cap - len, "%s%u",
		                         len > 1 ? "," : "", t->relid);
	}
	snprintf(out + len, cap - len, "}");
	return out;
}

static const CatTable *
table_by_oid(const Catalog *cat, const char *oid_text)
{
	uint32_t relid = (uint32_t) strtoul(oid_text, NULL, 10);

	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].relid == relid)
			return &cat->tables[i];
	return NULL;
}

/* The name as a person types it: quoted only where SQL needs it. */
static const char *
shown(const Check *c, int idx)
{
	return c->shown[idx] != NULL ? c->shown[idx] : c->cat->tables[idx].qname;
}

static const char *
shown_t(const Check *c, const CatTable *t)
{
	return shown(c, (int) (t - c->cat->tables));
}

/* Whether the table at idx is the first selected one loading into its
 * target (several partitions can load through one target root). */
static bool
first_of_target(const Check *c, int idx)
{
	if (!c->cat->tables[idx].selected || c->into[idx] < 0)
		return false;
	for (int j = 0; j < idx; j++)
		if (c->cat->tables[j].selected && c->into[j] == c->into[idx])
			return false;
	return true;
}

static const CheckRegistered *
registered(const Check *c, const char *schema, const char *name)
{
	for (int i = 0; i < c->nreg; i++)
		if (strcmp(c->reg[i].schema, schema) == 0 &&
		    strcmp(c->reg[i].name, name) == 0)
			return &c->reg[i];
	return NULL;
}

/* True when schema.name, or the table at index parent and its ancestors,
 * matches one of the patterns: the rule catalog_select applies. */
static bool
lineage_matches(const Check *c, const TablePattern *pats, int n,
                const char *schema, const char *name, int parent)
{
	for (int p = 0; p < n; p++)
		if (mapping_pattern_match(&pats[p], schema, name))
			return true;
	for (int depth = 0; parent >= 0 && depth < 64; depth++)
	{
		const CatTable *t = &c->cat->tables[parent];

		for (int p = 0; p < n; p++)
			if (mapping_pattern_match(&pats[p], t->schema, t->name))
				return true;
		parent = t->parent;
	}
	return false;
}

/* Whether a relation the catalog does not list (a foreign table) would be
 * selected by the task's patterns. */
static bool
would_select(const Check *c, const char *schema, const char *name, int parent)
{
	return (c->ninc == 0 ||
	        lineage_matches(c, c->inc, c->ninc, schema, name, parent)) &&
	       !lineage_matches(c, c->exc, c->nexc, schema, name, parent);
}

/* Runs sql returning one boolean in column col of its single row. */
static bool
query_bool(PgConn *conn, const char *sql, int nparams,
           const char *const *params, bool *out, Error *err)
{
	char buf[8];

	if (!pg_query_value(conn, sql, nparams, params, buf, sizeof(buf), err))
		return false;
	*out = buf[0] == 't';
	return true;
}

/* ---- opening the sessions and reading the task's state ---- */

static bool
read_shown_names(Check *c, Error *err)
{
	char *all = oid_array(c->cat, CHECK_TABLES_ALL);
	const char *params[1] = {all};
	PGresult *res;
	bool ok;

	c->shown = calloc((size_t) c->cat->ntables + 1, sizeof(char *));
	if (all == NULL || c->shown == NULL)
	{
		free(all);
		return oom(err);
	}
	ok = pg_query(c->src,
	              "SELECT c.oid, quote_ident(n.nspname) || '.' ||"
	              " quote_ident(c.relname) FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.oid = ANY($1::oid[])",
	              1, params, &res, err);
	free(all);
	if (!ok)
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));
		int idx;

		if (t == NULL)
			continue;
		idx = (int) (t - c->cat->tables);
		c->shown[idx] = strdup(PQgetvalue(res, i, 1));
		if (c->shown[idx] == NULL)
		{
			PQclear(res);
			return oom(err);
		}
	}
	PQclear(res);
	return true;
}

static bool
open_session(const char *uri, ErrKind side, PgConn **out, char *db,
             size_t dbcap, Error *err)
{
	if (!pg_connect(uri, side, PG_CONN_SQL, "pgtide check", 5000, out, err))
		return false;
	/* the guard: whatever this module runs, the server refuses to write */
	if (!pg_exec(*out,
	             "SET default_transaction_read_only = on;"
	             " SET lock_timeout = '5s'; SET statement_timeout = '60s'",
	             err))
		return false;
	return pg_query_value(*out, "SELECT current_database()", 0, NULL, db, dbcap,
	                      err);
}

static bool
read_state(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	const char *p1[1] = {cfg->state_schema};
	const char *p2[1] = {cfg->task};
	char *q = pg_quote_ident(cfg->state_schema);
	char *sql = NULL;
	PGresult *res = NULL;
	bool have = false, ok = false;

	snprintf(c->slot, sizeof(c->slot), "pgtide_%s", cfg->task);
	snprintf(c->publication, sizeof(c->publication), "pgtide_%s", cfg->task);
	if (q == NULL)
		return oom(err);
	if (!query_bool(
	        c->tgt,
	        "SELECT to_regclass(quote_ident($1) || '.task') IS NOT NULL"
	        " AND to_regclass(quote_ident($1) || '.tables') IS NOT NULL",
	        1, p1, &have, err))
		goto out;
	if (!have)
	{
		ok = true;
		goto out;
	}
	if (asprintf(&sql,
	             "SELECT slot_name, publication, consistent_lsn IS NOT NULL,"
	             " phase, schema_done FROM %s.task WHERE task = $1",
	             q) < 0)
	{
		sql = NULL;
		oom(err);
		goto out;
	}
	if (!pg_query(c->tgt, sql, 1, p2, &res, err))
		goto out;
	if (PQntuples(res) == 1)
	{
		const char *phase = PQgetvalue(res, 0, 3);

		c->resume = true;
		snprintf(c->slot, sizeof(c->slot), "%s", PQgetvalue(res, 0, 0));
		snprintf(c->publication, sizeof(c->publication), "%s",
		         PQgetvalue(res, 0, 1));
		c->has_point = PQgetvalue(res, 0, 2)[0] == 't';
		c->schema_done = PQgetvalue(res, 0, 4)[0] == 't';
		c->load_done = strcmp(phase, "new") != 0 &&
		               strcmp(phase, "load") != 0 &&
		               strcmp(phase, "postdata") != 0;
	}
	PQclear(res);
	res = NULL;
	free(sql);
	sql = NULL;
	if (!c->resume)
	{
		ok = true;
		goto out;
	}
	if (asprintf(&sql,
	             "SELECT src_schema, src_name, state = 'done' FROM %s.tables"
	             " WHERE task = $1",
	             q) < 0)
	{
		sql = NULL;
		oom(err);
		goto out;
	}
	if (!pg_query(c->tgt, sql, 1, p2, &res, err))
		goto out;
	c->reg = calloc((size_t) PQntuples(res) + 1, sizeof(CheckRegistered));
	if (c->reg == NULL)
	{
		oom(err);
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		CheckRegistered *r = &c->reg[c->nreg++];
		bool lost = false;

		r->schema = dup_or_empty(PQgetvalue(res, i, 0), &lost);
		r->name = dup_or_empty(PQgetvalue(res, i, 1), &lost);
		r->done = PQgetvalue(res, i, 2)[0] == 't';
		if (lost)
		{
			oom(err);
			goto out;
		}
	}
	ok = true;
out:
	if (!ok)
		err_prefix(err, "could not read the task's state on the target: ");
	PQclear(res);
	free(sql);
	free(q);
	return ok;
}

static bool
parse_patterns(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;

	c->inc = calloc((size_t) cfg->include.count + 1, sizeof(TablePattern));
	c->exc = calloc((size_t) cfg->exclude.count + 1, sizeof(TablePattern));
	if (c->inc == NULL || c->exc == NULL)
		return oom(err);
	for (; c->ninc < cfg->include.count; c->ninc++)
		if (!mapping_parse_pattern(cfg->include.items[c->ninc],
		                           &c->inc[c->ninc], err))
			return false;
	for (; c->nexc < cfg->exclude.count; c->nexc++)
		if (!mapping_parse_pattern(cfg->exclude.items[c->nexc],
		                           &c->exc[c->nexc], err))
			return false;
	return true;
}

/* ---- the source's WAL and transaction rate ---- */

static bool
sample_begin(Check *c, Error *err)
{
	PGresult *res;

	if (c->in_recovery)
		return true;
	if (!pg_query(c->src,
	              "SELECT pg_current_wal_lsn()::text,"
	              " txid_snapshot_xmax(txid_current_snapshot())",
	              0, NULL, &res, err))
		return false;
	snprintf(c->lsn0, sizeof(c->lsn0), "%s", PQgetvalue(res, 0, 0));
	c->xid0 = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c->t0_ms = clock_ms();
	c->sampled = true;
	PQclear(res);
	return true;
}

static bool
sample_end(Check *c, Error *err)
{
	const char *params[1] = {c->lsn0};
	PGresult *res;
	int64_t elapsed_ms;

	if (!c->sampled)
		return true;
	while (clock_ms() - c->t0_ms < CHECK_SAMPLE_MS)
	{
		if (interrupted(c, err))
			return false;
		clock_sleep_ms(50);
	}
	if (!pg_query(c->src,
	              "SELECT pg_current_wal_lsn() - $1::pg_lsn,"
	              " txid_snapshot_xmax(txid_current_snapshot())",
	              1, params, &res, err))
		return false;
	elapsed_ms = clock_ms() - c->t0_ms;
	c->sample_s = (double) elapsed_ms / 1000.0;
	c->wal_bytes_per_s = strtod(PQgetvalue(res, 0, 0), NULL) / c->sample_s;
	c->xacts_per_s =
	    (double) (strtoll(PQgetvalue(res, 0, 1), NULL, 10) - c->xid0) /
	    c->sample_s;
	PQclear(res);
	return true;
}

/* ---- source: settings and privileges ---- */

static bool
check_source_settings(Check *c, Error *err)
{
	const char *sql = "SELECT current_setting('wal_level'),"
	                  " current_setting('max_replication_slots')::int,"
	                  " (SELECT count(*) FROM pg_replication_slots),"
	                  " current_setting('max_wal_senders')::int,"
	                  " (SELECT count(*) FROM pg_stat_replication),"
	                  " (SELECT setting::bigint FROM pg_settings"
	                  "   WHERE name = 'wal_sender_timeout'),"
	                  " r.rolreplication"
	                  " FROM pg_roles r WHERE r.rolname = current_user";
	PGresult *res;
	char fix[512];
	const char *wal_level;
	int max_slots, used_slots, max_senders, used_senders, need_slots;
	int64_t sender_timeout_ms;
	bool replication;

	if (!pg_query(c->src, sql, 0, NULL, &res, err))
		return err_prefix(err, "could not read the source's settings: ");
	wal_level = PQgetvalue(res, 0, 0);
	max_slots = (int) strtol(PQgetvalue(res, 0, 1), NULL, 10);
	used_slots = (int) strtol(PQgetvalue(res, 0, 2), NULL, 10);
	max_senders = (int) strtol(PQgetvalue(res, 0, 3), NULL, 10);
	used_senders = (int) strtol(PQgetvalue(res, 0, 4), NULL, 10);
	sender_timeout_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	replication = PQgetvalue(res, 0, 6)[0] == 't';
	if (strcmp(wal_level, "logical") != 0)
		add(c, CHECK_ID_WAL_LEVEL, CHECK_BLOCKER, "source",
		    "logical decoding, which the change stream reads, needs "
		    "\"logical\"; without it nothing can be streamed",
		    "set wal_level = logical in the source's postgresql.conf (or "
		    "ALTER SYSTEM) and restart the source",
		    "wal_level is \"%s\"", wal_level);
	/* the task's own slot, when it exists, is already counted as used */
	need_slots = c->slot_exists ? 0 : 1;
	if (max_slots - used_slots < need_slots)
		add(c, CHECK_ID_REPLICATION_SLOTS, CHECK_BLOCKER, "source",
		    "pgtide needs one logical replication slot for the task",
		    "raise max_replication_slots (needs a restart), or drop an "
		    "unused slot listed in pg_replication_slots",
		    "no free replication slot: %d of max_replication_slots = %d "
		    "in use",
		    used_slots, max_slots);
	else if (c->slot_exists && !c->load_done && max_slots - used_slots < 1)
		add(c, CHECK_ID_REPLICATION_SLOTS, CHECK_WARNING, "source",
		    "if the load's snapshot is lost, unfinished tables are reloaded "
		    "from a temporary slot, which needs a free slot",
		    "raise max_replication_slots (needs a restart), or drop an "
		    "unused slot",
		    "every replication slot is in use (%d of %d)", used_slots,
		    max_slots);
	if (max_senders - used_senders < 1)
		add(c, CHECK_ID_WAL_SENDERS, CHECK_BLOCKER, "source",
		    "the load's snapshot and the change stream each hold one "
		    "replication connection",
		    "raise max_wal_senders (needs a restart), or end an unused "
		    "replication connection (pg_stat_replication)",
		    "no free WAL sender: %d of max_wal_senders = %d in use",
		    used_senders, max_senders);
	if (!c->src_super && !replication)
		add(c, CHECK_ID_REPLICATION_PRIVILEGE, CHECK_BLOCKER, "source",
		    "creating a replication slot and streaming from it needs the "
		    "REPLICATION attribute or a superuser",
		    "ALTER ROLE ... REPLICATION on the source, or connect as a role "
		    "that has it (on a managed service, the provider's replication "
		    "role; then skip this finding)",
		    "the source role has neither REPLICATION nor SUPERUSER");
	if (sender_timeout_ms == 0)
		add(c, CHECK_ID_WAL_SENDER_TIMEOUT, CHECK_WARNING, "source",
		    "a replication connection that died without a word keeps the "
		    "task's slot busy until TCP notices, and pgtide cannot "
		    "reconnect to it meanwhile",
		    "set wal_sender_timeout to 60s (the default); a reload is "
		    "enough",
		    "wal_sender_timeout is 0: dead replication connections are "
		    "never timed out");
	else if (sender_timeout_ms < CHECK_MIN_SENDER_TIMEOUT_MS)
	{
		snprintf(fix, sizeof(fix),
		         "raise wal_sender_timeout to at least %d s (the default "
		         "is 60 s); a reload is enough",
		         CHECK_MIN_SENDER_TIMEOUT_MS / 1000);
		add(c, CHECK_ID_WAL_SENDER_TIMEOUT, CHECK_WARNING, "source",
		    "pgtide answers keepalives within a second, but a slow network "
		    "or a paused host can miss so short a deadline, and the change "
		    "stream then reconnects",
		    fix, "wal_sender_timeout is %lld ms",
		    (long long) sender_timeout_ms);
	}
	PQclear(res);
	return true;
}

/* The task's slot and publication on the source, as a resumed run finds
 * them (or as a leftover of an earlier task of the same name). */
static bool
check_task_objects(Check *c, Error *err)
{
	const char *params[1] = {c->slot};
	char sql[512], fix[512];
	PGresult *res;
	const char *wal_status;
	bool active;

	/* wal_status says whether max_slot_wal_keep_size cost the slot WAL */
	snprintf(sql, sizeof(sql),
	         "SELECT active, coalesce(active_pid::text, ''), %s, %s"
	         " FROM pg_replication_slots WHERE slot_name = $1",
	         c->src_version >= 130000 ? "coalesce(wal_status, '')" : "''",
	         c->in_recovery
	             ? "0"
	             : "coalesce(pg_current_wal_lsn() - restart_lsn, 0)");
	if (!pg_query(c->src, sql, 1, params, &res, err))
		return false;
	c->slot_exists = PQntuples(res) == 1;
	active = c->slot_exists && PQgetvalue(res, 0, 0)[0] == 't';
	wal_status = c->slot_exists ? PQgetvalue(res, 0, 2) : "";
	if (c->slot_exists)
		c->slot_retained_bytes = strtod(PQgetvalue(res, 0, 3), NULL);
	if (c->slot_exists && !c->resume)
	{
		snprintf(fix, sizeof(fix),
		         "another task with this name? choose another --task; if "
		         "nothing uses the slot, drop it: SELECT "
		         "pg_drop_replication_slot('%s')",
		         c->slot);
		add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "pgtide would not know where its changes start, so it refuses "
		    "to use a slot it did not record",
		    fix,
		    "replication slot \"%s\" exists on the source, but the target "
		    "holds no state for task \"%s\"",
		    c->slot, c->cfg->task);
	}
	else if (!c->slot_exists && c->has_point)
		add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "the changes made on the source since the load started are gone "
		    "with it",
		    "drop the task (pgtide clean) and the target's copy, and migrate "
		    "again",
		    "replication slot \"%s\" of task \"%s\" no longer exists", c->slot,
		    c->cfg->task);
	else if (active)
		add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "a slot streams to one connection at a time",
		    "is pgtide already running this task? stop it first, or wait "
		    "for it to finish",
		    "replication slot \"%s\" is in use by process %s", c->slot,
		    PQgetvalue(res, 0, 1));
	if (strcmp(wal_status, "lost") == 0)
		add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "the source removed WAL the task still needed "
		    "(max_slot_wal_keep_size): changes are missing",
		    "drop the task (pgtide clean) and the target's copy, raise "
		    "max_slot_wal_keep_size, and migrate again",
		    "replication slot \"%s\" was invalidated", c->slot);
	else if (strcmp(wal_status, "unreserved") == 0)
		add(c, CHECK_ID_TASK_SLOT, CHECK_WARNING, c->slot,
		    "the source is about to remove WAL the task still needs "
		    "(max_slot_wal_keep_size)",
		    "resume the task now so that it catches up, or raise "
		    "max_slot_wal_keep_size (a reload is enough)",
		    "replication slot \"%s\" retains more WAL than "
		    "max_slot_wal_keep_size allows",
		    c->slot);
	PQclear(res);
	return true;
}

/*
 * The publication pgtide would create, or finds: an existing one is used as
 * it is, so every table whose changes must stream has to be in it.
 */
static bool
check_publication(Check *c, Error *err)
{
	const char *params[2] = {c->publication, c->published_oids};
	PGresult *res;
	char fix[512];

	if (!pg_query(c->src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
	              params, &res, err))
		return false;
	c->publication_exists = PQntuples(res) == 1;
	PQclear(res);
	if (c->publication_exists)
	{
		/* pg_publication_tables lists leaves, and every table for ALL */
		if (!pg_query(c->src,
		              "SELECT c.oid FROM pg_class c"
		              " JOIN pg_namespace n ON n.oid = c.relnamespace"
		              " WHERE c.oid = ANY($2::oid[]) AND NOT EXISTS"
		              " (SELECT 1 FROM pg_publication_tables p"
		              "  WHERE p.pubname = $1 AND p.schemaname = n.nspname"
		              "  AND p.tablename = c.relname)"
		              " ORDER BY n.nspname, c.relname",
		              2, params, &res, err))
			return false;
		for (int i = 0; i < PQntuples(res); i++)
		{
			const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));

			if (t == NULL)
				continue;
			snprintf(fix, sizeof(fix),
			         "ALTER PUBLICATION %s ADD TABLE %s; or drop the "
			         "publication (before the load starts) and let pgtide "
			         "create it",
			         c->publication, shown_t(c, t));
			add(c, CHECK_ID_TASK_PUBLICATION, CHECK_BLOCKER, shown_t(c, t),
			    "pgtide uses an existing publication as it is: this "
			    "table's changes would not be streamed",
			    fix, "publication \"%s\" exists but does not list the table",
			    c->publication);
		}
		PQclear(res);
		return true;
	}
	if (c->src_super)
		return true;
	/* CREATE PUBLICATION ... FOR TABLE: CREATE on the database, and each
	 * table owned by the role (or a role it inherits from) */
	{
		bool can_create;

		if (!query_bool(c->src,
		                "SELECT has_database_privilege(current_database(),"
		                " 'CREATE')",
		                0, NULL, &can_create, err))
			return false;
		if (!can_create)
		{
			char object[160];

			snprintf(object, sizeof(object), "database %s", c->src_db);
			add(c, CHECK_ID_PUBLICATION_OWNERSHIP, CHECK_BLOCKER, object,
			    "creating the task's publication needs CREATE on the "
			    "source database",
			    "GRANT CREATE ON DATABASE ... TO the role pgtide connects "
			    "as, or create the publication beforehand as its owner",
			    "the source role cannot create publication \"%s\"",
			    c->publication);
		}
	}
	if (!pg_query(c->src,
	              "SELECT c.oid, pg_get_userbyid(c.relowner) FROM pg_class c"
	              " WHERE c.oid = ANY($1::oid[])"
	              " AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1",
	              1, params + 1, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));

		if (t == NULL)
			continue;
		snprintf(fix, sizeof(fix),
		         "run pgtide as role %s (or a member of it) or a superuser; "
		         "or let the owner create the publication first: CREATE "
		         "PUBLICATION %s FOR TABLE ... listing every table to stream",
		         PQgetvalue(res, i, 1), c->publication);
		add(c, CHECK_ID_PUBLICATION_OWNERSHIP, CHECK_BLOCKER, shown_t(c, t),
		    "CREATE PUBLICATION ... FOR TABLE accepts only tables the role "
		    "owns",
		    fix, "owned by %s, not by the source role", PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

static bool
check_read_privileges(Check *c, Error *err)
{
	const char *p1[1] = {c->selected_oids};
	const char *p2[1] = {c->cfg->state_schema};
	PGresult *res;

	if (c->src_super)
		return true;
	if (!pg_query(c->src,
	              "SELECT c.oid FROM pg_class c WHERE c.oid = ANY($1::oid[])"
	              " AND NOT (has_schema_privilege(c.relnamespace, 'USAGE')"
	              " AND has_table_privilege(c.oid, 'SELECT')) ORDER BY 1",
	              1, p1, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));
		char fix[512];

		if (t == NULL)
			continue;
		snprintf(fix, sizeof(fix),
		         "GRANT SELECT ON %s (and USAGE on schema %s) to the role "
		         "pgtide connects as, or leave the table out with -T",
		         shown_t(c, t), t->schema);
		add(c, CHECK_ID_TABLE_READ_PRIVILEGE, CHECK_BLOCKER, shown_t(c, t),
		    "its rows cannot be copied", fix,
		    "the source role cannot read the table");
	}
	PQclear(res);
	/* every sequence's value is copied at the end of the load */
	if (!pg_query(
	        c->src,
	        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	        " WHERE c.relkind = 'S'"
	        " AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
	        " AND n.nspname NOT LIKE 'pg\\_%'"
	        " AND NOT (has_schema_privilege(n.oid, 'USAGE')"
	        " AND has_sequence_privilege(c.oid, 'SELECT')) ORDER BY 1",
	        1, p2, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
		add(c, CHECK_ID_TABLE_READ_PRIVILEGE, CHECK_BLOCKER,
		    PQgetvalue(res, i, 0),
		    "pgtide copies every sequence's value after the load and at "
		    "cutover",
		    "GRANT SELECT on the sequence (and USAGE on its schema) to the "
		    "role pgtide connects as",
		    "the source role cannot read the sequence");
	PQclear(res);
	return true;
}

/* ---- source: tables ---- */

static void
check_table_kinds(Check *c)
{
	for (int i = 0; i < c->cat->ntables; i++)
	{
		const CatTable *t = &c->cat->tables[i];
		char fix[768];
		const char *what;

		if (!t->selected)
			continue;
		if (t->persistence != 'p')
		{
			snprintf(fix, sizeof(fix),
			         "ALTER TABLE %s SET LOGGED (rewrites the table); or "
			         "leave it out with -T %s; or accept a one-time copy "
			         "with --skip-check=unlogged_table",
			         shown(c, i), shown(c, i));
			add(c, CHECK_ID_UNLOGGED_TABLE, CHECK_BLOCKER, shown(c, i),
			    "an unlogged table writes no WAL, so its changes cannot be "
			    "streamed: the target would keep the rows of the load and "
			    "miss every change after it",
			    fix, "the table is UNLOGGED");
			continue;
		}
		if (t->has_identity)
			continue;
		switch (t->replident)
		{
			case 'n':
				what = "its replica identity is NOTHING";
				break;
			case 'i':
				what = "its replica identity index no longer exists";
				break;
			default:
				what = "it has no primary key and no replica identity";
				break;
		}
		snprintf(fix, sizeof(fix),
		         "add a primary key; or ALTER TABLE %s REPLICA IDENTITY FULL "
		         "(or USING INDEX on a unique index of NOT NULL columns); or "
		         "leave it out with -T %s and move it with pgtide copy",
		         shown(c, i), shown(c, i));
		add(c, CHECK_ID_NO_REPLICA_IDENTITY, CHECK_BLOCKER, shown(c, i),
		    "its UPDATE and DELETE cannot be replicated: in the publication "
		    "they would fail on the source, outside it the target would "
		    "miss them; pgtide never makes a source write fail, so this "
		    "cannot be skipped",
		    fix, "%s", what);
	}
}

/*
 * REPLICA IDENTITY FULL tables whose changes the target cannot find by an
 * index: the applier matches an UPDATE or DELETE on every column, so each
 * one reads the whole table. Small tables are left alone. The target's
 * indexes are the source's in create mode, the user's table's in existing
 * mode.
 */
static bool
check_full_identity(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool existing = c->cfg->schema_mode == SCHEMA_MODE_EXISTING;
	PGresult *res;

	if (!pg_query(c->src,
	              "SELECT c.oid, c.reltuples::int8,"
	              " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid)"
	              " FROM pg_class c WHERE c.oid = ANY($1::oid[])"
	              " AND c.relkind = 'r' AND c.relreplident = 'f'"
	              " AND c.reltuples >= " CHECK_FULL_IDENTITY_ROWS " ORDER BY 1",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));
		bool indexed = PQgetvalue(res, i, 2)[0] == 't';
		char fix[768];
		int idx;

		if (t == NULL)
			continue;
		idx = (int) (t - c->cat->tables);
		if (existing)
		{
			const char *tp[1];
			char buf[8];

			if (c->into[idx] < 0)
				continue;
			tp[0] = c->cat->tables[c->into[idx]].qname;
			if (!pg_query_value(c->tgt,
			                    "SELECT EXISTS (SELECT 1 FROM pg_index"
			                    " WHERE indrelid = to_regclass($1))",
			                    1, tp, buf, sizeof(buf), err))
			{
				PQclear(res);
				return false;
			}
			indexed = buf[0] == 't';
		}
		if (indexed)
			continue;
		snprintf(fix, sizeof(fix),
		         "add a primary key (and set REPLICA IDENTITY DEFAULT), or an "
		         "index on columns that tell rows apart%s; or leave it out "
		         "with -T %s and move it with pgtide copy",
		         existing ? " on the target table" : "", shown_t(c, t));
		add(c, CHECK_ID_FULL_IDENTITY_NO_INDEX, CHECK_WARNING, shown_t(c, t),
		    "its changes are matched on every column and no index can find "
		    "them: each UPDATE and DELETE the stream applies reads the whole "
		    "table on the target, and a busy table leaves the stream behind",
		    fix, "REPLICA IDENTITY FULL and no index, about %s rows",
		    PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

static bool
check_identity_columns(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	PGresult *res;
	char list[512] = "";
	size_t len = 0;
	int by_default = 0;

	if (c->cfg->schema_mode == SCHEMA_MODE_EXISTING)
	{
		/* the user's target tables decide what an INSERT may carry */
		for (int i = 0; i < c->cat->ntables; i++)
		{
			const char *tp[1];
			const char *name;

			if (!first_of_target(c, i))
				continue;
			tp[0] = c->cat->tables[c->into[i]].qname;
			name = shown(c, c->into[i]);
			if (!pg_query(c->tgt,
			              "SELECT quote_ident(attname) FROM pg_attribute"
			              " WHERE attrelid = to_regclass($1)"
			              " AND attidentity = 'a' AND NOT attisdropped"
			              " ORDER BY attnum",
			              1, tp, &res, err))
				return false;
			for (int r = 0; r < PQntuples(res); r++)
			{
				char object[512], fix[768];

				snprintf(object, sizeof(object), "%s.%s", name,
				         PQgetvalue(res, r, 0));
				snprintf(fix, sizeof(fix),
				         "ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY "
				         "DEFAULT on the target",
				         name, PQgetvalue(res, r, 0));
				add(c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
				    "the change stream inserts the source's values with "
				    "OVERRIDING SYSTEM VALUE and never sets the column in "
				    "an UPDATE; an UPDATE on the source that changes it "
				    "(SET ... = DEFAULT) stops the task",
				    fix, "the target column is GENERATED ALWAYS AS IDENTITY");
			}
			PQclear(res);
		}
		return true;
	}
	if (!pg_query(c->src,
	              "SELECT attrelid, quote_ident(attname), attidentity"
	              " FROM pg_attribute WHERE attrelid = ANY($1::oid[])"
	              " AND attidentity IN ('a', 'd') AND NOT attisdropped"
	              " ORDER BY attrelid, attnum",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));
		const char *col = PQgetvalue(res, i, 1);
		char object[512], fix[768];

		if (t == NULL)
			continue;
		snprintf(object, sizeof(object), "%s.%s", shown_t(c, t), col);
		if (PQgetvalue(res, i, 2)[0] == 'd')
		{
			if (by_default++ < 5 && len < sizeof(list) - 1)
				len += (size_t) snprintf(list + len, sizeof(list) - len, "%s%s",
				                         len ? ", " : "", object);
			continue;
		}
		snprintf(fix, sizeof(fix),
		         "ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY DEFAULT on "
		         "the source (the application's INSERTs still take the next "
		         "value); or create the target table yourself and use "
		         "--schema existing",
		         shown_t(c, t), col);
		add(c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
		    "the target gets the same definition; the change stream inserts "
		    "the source's values with OVERRIDING SYSTEM VALUE and never sets "
		    "the column in an UPDATE; an UPDATE on the source that changes "
		    "it (SET ... = DEFAULT) stops the task",
		    fix, "the column is GENERATED ALWAYS AS IDENTITY");
	}
	PQclear(res);
	if (by_default > 0)
	{
		char object[640];

		if (by_default > 5)
			snprintf(object, sizeof(object), "%s and %d more", list,
			         by_default - 5);
		else
			snprintf(object, sizeof(object), "%s", list);
		add(c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
		    "their sequences are not streamed: pgtide sets them after the "
		    "load and again at cutover, with a margin",
		    "", "%d identity column%s GENERATED BY DEFAULT", by_default,
		    by_default == 1 ? "" : "s");
	}
	return true;
}

static void
check_sequences(Check *c)
{
	char object[64];

	if (c->cat->nseqs == 0)
		return;
	snprintf(object, sizeof(object), "%d sequence%s", c->cat->nseqs,
	         c->cat->nseqs == 1 ? "" : "s");
	add(c, CHECK_ID_SEQUENCES, CHECK_INFO, object, "", "",
	    "sequence advances are not streamed: pgtide copies every sequence's "
	    "value after the load and again at cutover, plus a margin "
	    "(--sequence-margin)");
}

static bool
check_temporary_tables(Check *c, Error *err)
{
	PGresult *res;

	if (!pg_query(
	        c->src,
	        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
	        " c.relname FROM pg_class c"
	        " JOIN pg_namespace n ON n.oid = c.relnamespace"
	        " WHERE c.relpersistence = 't' AND c.relkind IN ('r', 'p')"
	        " ORDER BY 1, 2",
	        0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *name = PQgetvalue(res, i, 1);
		bool in = c->ninc == 0, out = false;

		/* a temporary table's schema is its session's: match the name */
		for (int p = 0; p < c->ninc && !in; p++)
			in = mapping_glob(c->inc[p].table, name);
		for (int p = 0; p < c->nexc && !out; p++)
			out = mapping_glob(c->exc[p].table, name);
		if (in && !out)
			add(c, CHECK_ID_TEMPORARY_TABLE, CHECK_WARNING,
			    PQgetvalue(res, i, 0),
			    "a temporary table lives only in the session that created "
			    "it: it is neither copied nor streamed",
			    "nothing, if it holds scratch data; otherwise keep the data "
			    "in a regular table",
			    "temporary table of another session");
	}
	PQclear(res);
	return true;
}

static bool
check_foreign_tables(Check *c, Error *err)
{
	PGresult *res;

	if (!pg_query(c->src,
	              "SELECT n.nspname, c.relname, s.srvname,"
	              " (SELECT pn.nspname FROM pg_inherits i"
	              "   JOIN pg_class p ON p.oid = i.inhparent"
	              "   JOIN pg_namespace pn ON pn.oid = p.relnamespace"
	              "   WHERE i.inhrelid = c.oid LIMIT 1),"
	              " (SELECT p.relname FROM pg_inherits i"
	              "   JOIN pg_class p ON p.oid = i.inhparent"
	              "   WHERE i.inhrelid = c.oid LIMIT 1), c.relispartition,"
	              " quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	              " FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " JOIN pg_foreign_table ft ON ft.ftrelid = c.oid"
	              " JOIN pg_foreign_server s ON s.oid = ft.ftserver"
	              " WHERE c.relkind = 'f' ORDER BY 1, 2",
	              0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);
		int parent = PQgetvalue(res, i, 5)[0] != 't'
		                 ? -1
		                 : catalog_find(c->cat, PQgetvalue(res, i, 3),
		                                PQgetvalue(res, i, 4));

		if (strcmp(schema, c->cfg->state_schema) == 0 ||
		    !would_select(c, schema, name, parent))
			continue;
		add(c, CHECK_ID_FOREIGN_TABLE, CHECK_WARNING, PQgetvalue(res, i, 6),
		    "its rows live on the foreign server: pgtide creates the "
		    "definition (create mode) but neither copies nor streams rows",
		    "make the foreign server reachable from the target with its "
		    "user mapping; if the rows must move, copy them yourself",
		    "foreign table on server %s%s", PQgetvalue(res, i, 2),
		    parent >= 0 ? ", a partition: its rows are not migrated" : "");
	}
	PQclear(res);
	return true;
}

static bool
check_large_objects(Check *c, Error *err)
{
	char buf[32];
	long long n;

	if (!pg_query_value(c->src, "SELECT count(*) FROM pg_largeobject_metadata",
	                    0, NULL, buf, sizeof(buf), err))
		return false;
	n = strtoll(buf, NULL, 10);
	if (n > 0)
		add(c, CHECK_ID_LARGE_OBJECTS, CHECK_BLOCKER, "source",
		    "pgtide copies table rows only: large objects are neither "
		    "copied nor carried by logical decoding, so OIDs stored in "
		    "columns would point at nothing on the target",
		    "move them yourself before cutover (pg_dump --blobs, or "
		    "lo_export/lo_import), or keep the data in bytea columns; "
		    "--skip-check=large_objects if they are not needed",
		    "%lld large object%s in the source database", n, n == 1 ? "" : "s");
	return true;
}

/* ---- target: what the schema step needs ---- */

static bool
check_extensions(Check *c, Error *err)
{
	char sql[512];
	PGresult *res;
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;

	if (!pg_query(c->src,
	              "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"
	              " ORDER BY 1",
	              0, NULL, &res, err))
		return false;
	c->exts = calloc((size_t) PQntuples(res) + 1, sizeof(CheckExtension));
	if (c->exts == NULL)
	{
		PQclear(res);
		return oom(err);
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		bool lost = false;

		c->exts[c->nexts].name = dup_or_empty(PQgetvalue(res, i, 0), &lost);
		if (lost)
		{
			PQclear(res);
			return oom(err);
		}
		c->nexts++;
	}
	PQclear(res);
	/* a non-superuser may create a trusted extension (13+) */
	snprintf(sql, sizeof(sql),
	         "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1),"
	         " EXISTS (SELECT 1 FROM pg_available_extensions"
	         "  WHERE name = $1), %s",
	         c->tgt_version >= 130000
	             ? "EXISTS (SELECT 1 FROM pg_available_extension_versions"
	               " WHERE name = $1 AND trusted)"
	             : "false");
	for (int i = 0; i < c->nexts; i++)
	{
		CheckExtension *e = &c->exts[i];
		const char *params[1] = {e->name};
		char object[160];

		if (!pg_query(c->tgt, sql, 1, params, &res, err))
			return false;
		e->installed = PQgetvalue(res, 0, 0)[0] == 't';
		e->available = PQgetvalue(res, 0, 1)[0] == 't';
		snprintf(object, sizeof(object), "extension %s", e->name);
		if (!e->installed && !e->available)
			add(c, CHECK_ID_MISSING_EXTENSION,
			    create ? CHECK_BLOCKER : CHECK_WARNING, object,
			    create ? "the schema step creates every extension of the "
			             "source, and the target cannot"
			           : "what the application uses from it will be "
			             "missing on the target",
			    "install the extension's package on the target server (the "
			    "same or a newer version)",
			    "the target has no extension %s, and none available to "
			    "create",
			    e->name);
		else if (!e->installed && !create)
			add(c, CHECK_ID_MISSING_EXTENSION, CHECK_WARNING, object,
			    "with --schema existing pgtide creates nothing: what the "
			    "application uses from it will be missing",
			    "CREATE EXTENSION on the target", "not created on the target");
		else if (!e->installed && !c->tgt_super &&
		         PQgetvalue(res, 0, 2)[0] != 't')
			add(c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, object,
			    "the schema step creates every extension of the source, and "
			    "this one needs a superuser",
			    "create the extension on the target as a superuser "
			    "beforehand, or connect as one",
			    "the target role cannot create extension %s", e->name);
		PQclear(res);
	}
	return true;
}

static const CheckExtension *
extension(const Check *c, const char *name)
{
	for (int i = 0; i < c->nexts; i++)
		if (strcmp(c->exts[i].name, name) == 0)
			return &c->exts[i];
	return NULL;
}

/*
 * Column types that are not built in (after arrays and domains): in create
 * mode pg_dump creates the user's own types, so only a type of an extension
 * the target cannot create is missing; in existing mode nothing is created.
 */
static bool
check_types(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;
	PGresult *res;

	if (!pg_query(c->src,
	              "WITH cols AS ("
	              "  SELECT a.attrelid, a.attname, a.atttypid AS t FROM "
	              "pg_attribute a"
	              "  WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0"
	              "  AND NOT a.attisdropped),"
	              " elems AS ("
	              "  SELECT cols.attrelid, cols.attname,"
	              "  CASE WHEN ty.typcategory = 'A' AND ty.typelem <> 0"
	              "  THEN ty.typelem ELSE ty.oid END AS t"
	              "  FROM cols JOIN pg_type ty ON ty.oid = cols.t),"
	              " bases AS ("
	              "  SELECT attrelid, attname, t FROM elems UNION ALL"
	              "  SELECT e.attrelid, e.attname, ty.typbasetype FROM elems e"
	              "  JOIN pg_type ty ON ty.oid = e.t WHERE ty.typtype = 'd')"
	              " SELECT DISTINCT ON (n.nspname, ty.typname)"
	              " quote_ident(n.nspname) || '.' || quote_ident(ty.typname),"
	              " x.extname, b.attrelid, quote_ident(b.attname)"
	              " FROM bases b JOIN pg_type ty ON ty.oid = b.t"
	              " JOIN pg_namespace n ON n.oid = ty.typnamespace"
	              " LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass"
	              "  AND d.objid = ty.oid AND d.deptype = 'e'"
	              " LEFT JOIN pg_extension x ON x.oid = d.refobjid"
	              " WHERE ty.oid >= 16384"
	              " ORDER BY n.nspname, ty.typname, b.attrelid, b.attname",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *qtype = PQgetvalue(res, i, 0);
		const char *ext = PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
		const CheckExtension *e = ext ? extension(c, ext) : NULL;
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 2));
		const char *tp[1] = {qtype};
		char column[512];
		bool exists;

		/* create mode: pg_dump creates the type, or its extension does */
		if (create && (ext == NULL || (e != NULL && e->available)))
			continue;
		if (!query_bool(c->tgt, "SELECT to_regtype($1) IS NOT NULL", 1, tp,
		                &exists, err))
		{
			PQclear(res);
			return false;
		}
		snprintf(column, sizeof(column), "%s.%s", t ? shown_t(c, t) : "?",
		         PQgetvalue(res, i, 3));
		if (!exists && create)
			add(c, CHECK_ID_MISSING_TYPE, CHECK_BLOCKER, qtype,
			    "the schema step cannot create the table that uses it",
			    "install the extension's package on the target server, or "
			    "leave the tables that use the type out with -T",
			    "type of column %s comes from extension %s, which the "
			    "target cannot create",
			    column, ext);
		else if (!exists)
			add(c, CHECK_ID_MISSING_TYPE, CHECK_WARNING, qtype,
			    "values travel as text into whatever type the target's "
			    "column has; values that type refuses stop the load",
			    "create the type on the target, or make sure the target "
			    "column's type accepts every value",
			    "type of column %s does not exist on the target", column);
	}
	PQclear(res);
	return true;
}

static bool
check_collations(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool create = c->cfg->schema_mode == SCHEMA_MODE_CREATE;
	PGresult *res;

	/* "dumped": pg_dump creates it (a user schema, not an extension's) */
	if (!pg_query(c->src,
	              "SELECT DISTINCT ON (n.nspname, co.collname) n.nspname,"
	              " co.collname, n.nspname <> 'pg_catalog' AND NOT EXISTS"
	              " (SELECT 1 FROM pg_depend d"
	              "  WHERE d.classid = 'pg_collation'::regclass"
	              "  AND d.objid = co.oid AND d.deptype = 'e'),"
	              " a.attrelid, quote_ident(a.attname),"
	              " quote_ident(n.nspname) || '.' || quote_ident(co.collname)"
	              " FROM pg_attribute a"
	              " JOIN pg_collation co ON co.oid = a.attcollation"
	              " JOIN pg_namespace n ON n.oid = co.collnamespace"
	              " WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0"
	              " AND NOT a.attisdropped AND a.attcollation NOT IN (0, 100)"
	              " ORDER BY n.nspname, co.collname, a.attrelid, a.attnum",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *tp[2] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)};
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 3));
		const char *qcoll = PQgetvalue(res, i, 5);
		char column[512];
		bool exists;

		if (create && PQgetvalue(res, i, 2)[0] == 't')
			continue;
		if (!query_bool(
		        c->tgt,
		        "SELECT EXISTS (SELECT 1 FROM pg_collation co"
		        " JOIN pg_namespace n ON n.oid = co.collnamespace"
		        " WHERE n.nspname = $1 AND co.collname = $2"
		        " AND co.collencoding IN (-1, (SELECT encoding"
		        "  FROM pg_database WHERE datname = current_database())))",
		        2, tp, &exists, err))
		{
			PQclear(res);
			return false;
		}
		if (exists)
			continue;
		snprintf(column, sizeof(column), "%s.%s", t ? shown_t(c, t) : "?",
		         PQgetvalue(res, i, 4));
		if (create)
			add(c, CHECK_ID_MISSING_COLLATION, CHECK_BLOCKER, qcoll,
			    "the schema step cannot create the table that uses it, and "
			    "pg_dump does not create system collations",
			    "install the locale on the target's machine (ICU or the "
			    "operating system's) and run pg_import_system_collations, "
			    "or change the column's collation on the source",
			    "collation of column %s does not exist on the target", column);
		else
			add(c, CHECK_ID_MISSING_COLLATION, CHECK_WARNING, qcoll,
			    "the target's column sorts and compares text another way: "
			    "unique indexes and ranges may disagree with the source",
			    "create the collation on the target, or check that the "
			    "target column's collation is the one intended",
			    "collation of column %s does not exist on the target", column);
	}
	PQclear(res);
	return true;
}

/* pg_dump runs with --no-tablespaces: every table lands in the target
 * database's default tablespace, whatever the source used. */
static bool
check_tablespaces(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	PGresult *res;

	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE)
		return true;
	if (!pg_query(c->src,
	              "SELECT t.spcname, count(*) FROM pg_class c"
	              " JOIN pg_tablespace t ON t.oid = c.reltablespace"
	              " WHERE c.oid = ANY($1::oid[]) OR c.oid IN"
	              " (SELECT indexrelid FROM pg_index"
	              "  WHERE indrelid = ANY($1::oid[]))"
	              " GROUP BY 1 ORDER BY 1",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *tp[1] = {PQgetvalue(res, i, 0)};
		char object[160];
		bool exists;

		if (!query_bool(c->tgt,
		                "SELECT EXISTS (SELECT 1 FROM pg_tablespace"
		                " WHERE spcname = $1)",
		                1, tp, &exists, err))
		{
			PQclear(res);
			return false;
		}
		snprintf(object, sizeof(object), "tablespace %s", tp[0]);
		if (!exists)
			add(c, CHECK_ID_MISSING_TABLESPACE, CHECK_WARNING, object,
			    "pgtide creates them in the target database's default "
			    "tablespace instead: plan that disk's space",
			    "nothing, if the default tablespace has room; else create "
			    "the tablespace on the target and move the tables after "
			    "the load (ALTER TABLE ... SET TABLESPACE)",
			    "%s selected tables or indexes are in a tablespace the "
			    "target lacks",
			    PQgetvalue(res, i, 1));
		else
			add(c, CHECK_ID_MISSING_TABLESPACE, CHECK_INFO, object, "",
			    "move them after the load if they belong there (ALTER "
			    "TABLE ... SET TABLESPACE)",
			    "%s selected tables or indexes are in this tablespace; "
			    "pgtide creates them in the target database's default "
			    "tablespace",
			    PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

/*
 * Where each selected table loads. Existing mode: the table of the same name
 * or its nearest ancestor on the target (as the load resolves it); none is a
 * blocker. Create mode: the same name.
 */
static bool
resolve_targets(Check *c, Error *err)
{
	c->into = malloc(((size_t) c->cat->ntables + 1) * sizeof(int));
	if (c->into == NULL)
		return oom(err);
	for (int i = 0; i < c->cat->ntables; i++)
	{
		int idx = i;

		c->into[i] = -1;
		if (!c->cat->tables[i].selected)
			continue;
		if (c->cfg->schema_mode == SCHEMA_MODE_CREATE)
		{
			c->into[i] = i;
			continue;
		}
		for (int depth = 0; idx >= 0 && depth < 64 && c->into[i] < 0; depth++)
		{
			const char *tp[1] = {c->cat->tables[idx].qname};
			bool exists;

			if (!query_bool(c->tgt, "SELECT to_regclass($1) IS NOT NULL", 1, tp,
			                &exists, err))
				return false;
			if (exists)
				c->into[i] = idx;
			idx = c->cat->tables[idx].parent;
		}
		if (c->into[i] < 0)
		{
			char fix[768];

			snprintf(fix, sizeof(fix),
			         "create it on the target, leave it out with -T %s, or "
			         "let pgtide create the schema with --schema create",
			         shown(c, i));
			add(c, CHECK_ID_MISSING_TARGET_TABLE, CHECK_BLOCKER, shown(c, i),
			    "with --schema existing pgtide loads into the user's tables "
			    "and creates none",
			    fix,
			    "the table (or a partitioned ancestor) does not exist on "
			    "the target");
		}
	}
	return true;
}

/* Whether the target table holds a row; false when the role cannot read
 * it (the load does not need to). */
static bool
target_has_rows(Check *c, const char *qname, bool *rows, Error *err)
{
	const char *tp[1] = {qname};
	char *sql = NULL;
	bool readable, ok;

	*rows = false;
	if (!query_bool(c->tgt, "SELECT has_table_privilege($1, 'SELECT')", 1, tp,
	                &readable, err))
		return false;
	if (!readable)
		return true;
	if (asprintf(&sql, "SELECT EXISTS (SELECT 1 FROM %s)", qname) < 0)
		return oom(err);
	ok = query_bool(c->tgt, sql, 0, NULL, rows, err);
	free(sql);
	return ok;
}

/*
 * Target tables in the way: the rule the load applies before it creates
 * anything, with the same exceptions (a resumed task past that point, and
 * the tables the task registered).
 */
static bool
check_target_tables(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	bool create = cfg->schema_mode == SCHEMA_MODE_CREATE;

	if (c->has_point || c->schema_done)
		return true;
	for (int i = 0; i < c->cat->ntables; i++)
	{
		const CatTable *t = &c->cat->tables[i];
		const char *q, *name;
		bool exists = true, rows;
		char fix[768];

		if (!first_of_target(c, i) || registered(c, t->schema, t->name))
			continue;
		q = c->cat->tables[c->into[i]].qname;
		name = shown(c, c->into[i]);
		if (create)
		{
			const char *tp[1] = {q};

			if (!query_bool(c->tgt, "SELECT to_regclass($1) IS NOT NULL", 1, tp,
			                &exists, err))
				return false;
			if (!exists)
				continue;
		}
		if (!target_has_rows(c, q, &rows, err))
			return false;
		if (create && cfg->on_existing == ON_EXISTING_REFUSE)
			add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
			    "pgtide creates every table it loads, and stops rather than "
			    "touch one it did not make",
			    "drop it; or pass --on-existing drop to drop and recreate "
			    "it; or --schema existing to load into it",
			    "the table already exists on the target%s",
			    rows ? " and holds rows" : "");
		else if (create)
			add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_WARNING, name,
			    "--on-existing drop drops it and creates it again",
			    "nothing, if its contents may go",
			    "the table already exists on the target%s",
			    rows ? " and holds rows" : "");
		else if (rows && cfg->on_existing == ON_EXISTING_REFUSE)
		{
			snprintf(fix, sizeof(fix),
			         "empty it (TRUNCATE %s), or pass --on-existing truncate "
			         "to let pgtide empty it",
			         name);
			add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_BLOCKER, name,
			    "loading next to existing rows would mix them with the "
			    "source's",
			    fix, "the target table already holds rows");
		}
		else if (rows)
			add(c, CHECK_ID_TARGET_HAS_DATA, CHECK_WARNING, name,
			    "--on-existing truncate empties it before the load",
			    "nothing, if its rows may go",
			    "the target table already holds rows");
	}
	return true;
}

/* A target privilege the role lacks: one finding, named by its object. */
static void
lacks(Check *c, const char *object, const char *why, const char *fix,
      const char *what)
{
	add(c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, object, why, fix,
	    "%s", what);
}

static bool
check_target_privileges(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	char object[256], fix[768];
	PGresult *res;
	bool ok;

	if (c->tgt_super)
		return true;
	/* the state schema: created when missing, tables added to it */
	{
		const char *tp[1] = {cfg->state_schema};

		if (!pg_query(c->tgt,
		              "SELECT n.oid IS NOT NULL, CASE WHEN n.oid IS NULL"
		              " THEN has_database_privilege(current_database(),"
		              " 'CREATE') ELSE has_schema_privilege(n.oid, 'CREATE')"
		              " END FROM (SELECT $1::name AS s) x"
		              " LEFT JOIN pg_namespace n ON n.nspname = x.s",
		              1, tp, &res, err))
			return false;
		if (PQgetvalue(res, 0, 1)[0] != 't')
		{
			bool exists = PQgetvalue(res, 0, 0)[0] == 't';

			if (exists)
				snprintf(object, sizeof(object), "schema %s",
				         cfg->state_schema);
			else
				snprintf(object, sizeof(object), "database %s", c->tgt_db);
			snprintf(fix, sizeof(fix), "GRANT CREATE ON %s %s TO the role",
			         exists ? "SCHEMA" : "DATABASE",
			         exists ? cfg->state_schema : c->tgt_db);
			lacks(c, object,
			      "pgtide keeps the task's state (what is loaded, for "
			      "resuming) in its own schema on the target",
			      fix,
			      exists ? "the target role cannot create tables in the "
			               "state schema"
			             : "the target role cannot create the state schema");
		}
		PQclear(res);
	}
	if (cfg->schema_mode == SCHEMA_MODE_CREATE && !c->schema_done)
	{
		/* the schemas of the selected tables: created, or created in */
		char **names = calloc((size_t) c->cat->ntables + 1, sizeof(char *));
		int n = 0;
		char *arr;
		const char *tp[1];

		if (names == NULL)
			return oom(err);
		for (int i = 0; i < c->cat->ntables; i++)
		{
			bool seen = false;

			if (!c->cat->tables[i].selected)
				continue;
			for (int j = 0; j < n && !seen; j++)
				seen = strcmp(names[j], c->cat->tables[i].schema) == 0;
			if (!seen)
				names[n++] = c->cat->tables[i].schema;
		}
		arr = text_array(names, n);
		free(names);
		if (arr == NULL)
			return oom(err);
		tp[0] = arr;
		ok = pg_query(c->tgt,
		              "SELECT quote_ident(x.s), n.oid IS NOT NULL"
		              " FROM unnest($1::text[]) x(s)"
		              " LEFT JOIN pg_namespace n ON n.nspname = x.s"
		              " WHERE NOT CASE WHEN n.oid IS NULL"
		              " THEN has_database_privilege(current_database(),"
		              " 'CREATE') ELSE has_schema_privilege(n.oid, 'CREATE')"
		              " END ORDER BY 1",
		              1, tp, &res, err);
		free(arr);
		if (!ok)
			return false;
		for (int i = 0; i < PQntuples(res); i++)
		{
			const char *qs = PQgetvalue(res, i, 0);
			bool exists = PQgetvalue(res, i, 1)[0] == 't';

			snprintf(object, sizeof(object), "schema %s", qs);
			snprintf(fix, sizeof(fix), "GRANT CREATE ON %s %s TO the role",
			         exists ? "SCHEMA" : "DATABASE", exists ? qs : c->tgt_db);
			lacks(c, object,
			      "the schema step creates the selected tables (and their "
			      "schemas) on the target",
			      fix,
			      exists ? "the target role cannot create tables in this "
			               "schema"
			             : "the schema does not exist on the target, and the "
			               "target role cannot create it");
		}
		PQclear(res);
	}
	if (cfg->schema_mode == SCHEMA_MODE_EXISTING)
	{
		/* the load truncates and inserts; the change stream applies all */
		for (int i = 0; i < c->cat->ntables; i++)
		{
			const char *tp[1];
			const char *name;
			char missing[128] = "";

			if (!first_of_target(c, i))
				continue;
			tp[0] = c->cat->tables[c->into[i]].qname;
			name = shown(c, c->into[i]);
			if (!pg_query(c->tgt,
			              "SELECT concat_ws(', ',"
			              " CASE WHEN NOT has_table_privilege($1, 'INSERT')"
			              "  THEN 'INSERT' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'UPDATE')"
			              "  THEN 'UPDATE' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'DELETE')"
			              "  THEN 'DELETE' END,"
			              " CASE WHEN NOT has_table_privilege($1, 'TRUNCATE')"
			              "  THEN 'TRUNCATE' END)",
			              1, tp, &res, err))
				return false;
			snprintf(missing, sizeof(missing), "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			if (missing[0] == '\0')
				continue;
			snprintf(fix, sizeof(fix), "GRANT %s ON %s TO the role", missing,
			         name);
			add(c, CHECK_ID_TARGET_CREATE_PRIVILEGE, CHECK_BLOCKER, name,
			    "the load empties and fills the table; the change stream "
			    "inserts, updates and deletes in it",
			    fix, "the target role lacks %s on the table", missing);
		}
	}
	/* the change stream's session: replica role and a replication origin */
	{
		bool set_role = false, origin = false;
		char sql[512];

		snprintf(
		    sql, sizeof(sql), "SELECT %s, %s",
		    c->tgt_version >= 150000
		        ? "has_parameter_privilege('session_replication_role', 'SET')"
		        : "false",
		    c->tgt_version >= 140000
		        ? "has_function_privilege("
		          "'pg_catalog.pg_replication_origin_create(text)', 'EXECUTE')"
		          " AND has_function_privilege("
		          "'pg_catalog.pg_replication_origin_session_setup(text)',"
		          " 'EXECUTE')"
		        : "false");
		if (!pg_query(c->tgt, sql, 0, NULL, &res, err))
			return false;
		set_role = PQgetvalue(res, 0, 0)[0] == 't';
		origin = PQgetvalue(res, 0, 1)[0] == 't';
		PQclear(res);
		if (!set_role)
			lacks(c, "session_replication_role",
			      "the change stream applies with session_replication_role = "
			      "replica, so that the target's triggers and foreign keys "
			      "stay silent as for PostgreSQL's own apply",
			      c->tgt_version >= 150000
			          ? "GRANT SET ON PARAMETER session_replication_role TO "
			            "the role, or connect as a superuser"
			          : "connect to the target as a superuser",
			      "the target role cannot set session_replication_role");
		if (!origin)
			lacks(c, "replication origin",
			      "the change stream records its position in a replication "
			      "origin, in the same transaction as each change",
			      c->tgt_version >= 140000
			          ? "GRANT EXECUTE ON FUNCTION the "
			            "pg_replication_origin_* functions TO the role, or "
			            "connect as a superuser"
			          : "connect to the target as a superuser",
			      "the target role cannot use replication origins");
	}
	return true;
}

static void
check_pg_dump(Check *c)
{
	char path[1024];
	Error e = ERR_INIT;

	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE || c->schema_done)
		return;
	if (!schema_find_pg_dump(c->cfg->pg_dump, c->src_version, path,
	                         sizeof(path), &e))
		add(c, CHECK_ID_PG_DUMP, CHECK_BLOCKER, "pg_dump",
		    "the schema step reads the source's tables with pg_dump", e.hint,
		    "%s", e.message);
}

static void
check_target_version(Check *c)
{
	if (c->cfg->schema_mode != SCHEMA_MODE_CREATE ||
	    c->tgt_version / 10000 >= c->src_version / 10000)
		return;
	add(c, CHECK_ID_TARGET_VERSION, CHECK_WARNING, "target",
	    "pg_dump writes the schema for its own version, and an older server "
	    "may refuse parts of it",
	    "use a target of the source's major version or newer, or create the "
	    "schema yourself and use --schema existing",
	    "the target (%d) is older than the source (%d)", c->tgt_version / 10000,
	    c->src_version / 10000);
}

/* ---- WAL: size, time, retention ---- */

static bool
check_wal(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	const char *params[1] = {c->selected_oids};
	PGresult *res;
	double data = 0, indexes = 0, left = 0, seconds = 0, retained;
	int ntables = 0, nleft = 0;
	char b1[32], b2[32], b3[32], b4[32], s1[32], object[160], msg[512];

	if (!pg_query(c->src,
	              "SELECT c.oid, pg_indexes_size(c.oid) FROM pg_class c"
	              " WHERE c.oid = ANY($1::oid[])",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = table_by_oid(c->cat, PQgetvalue(res, i, 0));
		const CheckRegistered *r;
		double ix = strtod(PQgetvalue(res, i, 1), NULL);

		if (t == NULL)
			continue;
		ntables++;
		data += (double) t->bytes;
		indexes += ix;
		r = registered(c, t->schema, t->name);
		if (!c->load_done && (r == NULL || !r->done))
		{
			left += (double) t->bytes + ix;
			nleft++;
		}
	}
	PQclear(res);
	if (!c->load_done)
		seconds = left / (double) CHECK_LOAD_BYTES_PER_S + CHECK_LOAD_MARGIN_S;
	progress_format_bytes((int64_t) data, b1, sizeof(b1));
	progress_format_bytes((int64_t) indexes, b2, sizeof(b2));
	format_seconds(seconds, s1, sizeof(s1));
	snprintf(object, sizeof(object), "database %s", c->src_db);
	if (c->load_done)
		add(c, CHECK_ID_ESTIMATED_SIZE, CHECK_INFO, object, "", "",
		    "%d tables, %s of data and %s of indexes; the task's load is "
		    "done",
		    ntables, b1, b2);
	else
	{
		progress_format_bytes((int64_t) left, b3, sizeof(b3));
		snprintf(msg, sizeof(msg),
		         "assuming %lld MB/s for copy and index builds, plus %d s "
		         "for the schema and the change stream's start",
		         (long long) (CHECK_LOAD_BYTES_PER_S / (1024 * 1024)),
		         CHECK_LOAD_MARGIN_S);
		add(c, CHECK_ID_ESTIMATED_SIZE, CHECK_INFO, object, msg, "",
		    "%d tables, %s of data and %s of indexes; %d tables (%s) to "
		    "load, about %s",
		    ntables, b1, b2, nleft, b3, s1);
	}
	if (!c->sampled)
		return true;
	/* what the slot holds already, plus what the source writes meanwhile */
	retained = c->wal_bytes_per_s * seconds + c->slot_retained_bytes;
	progress_format_bytes((int64_t) retained, b1, sizeof(b1));
	progress_format_bytes((int64_t) c->wal_bytes_per_s, b2, sizeof(b2));
	if (c->load_done)
		snprintf(msg, sizeof(msg),
		         "the task's slot retains about %s of WAL; the source writes "
		         "%s/s (measured over %.1f s)",
		         b1, b2, c->sample_s);
	else
		snprintf(msg, sizeof(msg),
		         "the slot would retain about %s of WAL: the source writes "
		         "%s/s (measured over %.1f s) for about %s%s",
		         b1, b2, c->sample_s, s1,
		         c->slot_retained_bytes > 0 ? ", on top of what the slot holds"
		                                    : "");
	if (cfg->check_wal_free_bytes > 0)
	{
		double free_bytes = (double) cfg->check_wal_free_bytes;

		progress_format_bytes((int64_t) free_bytes, b3, sizeof(b3));
		if (retained > free_bytes)
			add(c, CHECK_ID_WAL_RETENTION, CHECK_BLOCKER, "source",
			    "the source's disk would fill before the change stream "
			    "catches up, and a full WAL disk stops the source",
			    "free disk space for the source's WAL, migrate at a quieter "
			    "time, or select fewer tables per task",
			    "%s, more than the %s declared free (check.wal_free_space)",
			    msg, b3);
		else if (retained > free_bytes / 2)
			add(c, CHECK_ID_WAL_RETENTION, CHECK_WARNING, "source",
			    "little headroom is left if the load runs slower than "
			    "estimated",
			    "free disk space for the source's WAL, or migrate at a "
			    "quieter time",
			    "%s, more than half of the %s declared free", msg, b3);
		else
			add(c, CHECK_ID_WAL_RETENTION, CHECK_INFO, "source", "", "",
			    "%s, within the %s declared free", msg, b3);
	}
	else
		add(c, CHECK_ID_WAL_RETENTION, CHECK_INFO, "source", "",
		    "declare the disk space free for WAL with --wal-free-space "
		    "(check.wal_free_space) to have it compared",
		    "%s", msg);
	if (c->src_version >= 130000)
	{
		char buf[32];
		int64_t keep_mb;

		if (!pg_query_value(c->src,
		                    "SELECT setting FROM pg_settings"
		                    " WHERE name = 'max_slot_wal_keep_size'",
		                    0, NULL, buf, sizeof(buf), err))
			return false;
		keep_mb = strtoll(buf, NULL, 10);
		progress_format_bytes((int64_t) ((double) keep_mb * 1024 * 1024), b4,
		                      sizeof(b4));
		if (keep_mb < 0)
			add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_INFO, "source",
			    "the slot keeps every WAL segment the target has not "
			    "confirmed: if pgtide stops for long, the source's disk "
			    "fills; pgtide clean drops the slot",
			    "", "max_slot_wal_keep_size is unlimited (-1)");
		else if (retained > (double) keep_mb * 1024 * 1024)
			add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_BLOCKER, "source",
			    "the source would invalidate the slot mid-load, and the "
			    "migration would have to start over",
			    "raise max_slot_wal_keep_size (a reload is enough), or "
			    "migrate at a quieter time",
			    "%s, more than max_slot_wal_keep_size = %s", msg, b4);
		else if (retained > (double) keep_mb * 1024 * 1024 / 2)
			add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_WARNING, "source",
			    "a slower load than estimated would get the slot "
			    "invalidated",
			    "raise max_slot_wal_keep_size (a reload is enough)",
			    "%s, more than half of max_slot_wal_keep_size = %s", msg, b4);
		else
			add(c, CHECK_ID_MAX_SLOT_WAL_KEEP_SIZE, CHECK_INFO, "source", "",
			    "", "max_slot_wal_keep_size = %s leaves room for it", b4);
	}
	return true;
}

static bool
check_commit_timestamps(Check *c, Error *err)
{
	char buf[16];

	if (!pg_query_value(c->src,
	                    "SELECT current_setting('track_commit_timestamp')", 0,
	                    NULL, buf, sizeof(buf), err))
		return false;
	if (strcmp(buf, "on") != 0)
		return true;
	if (c->sampled && c->xacts_per_s >= CHECK_BUSY_XACTS_PER_S)
		add(c, CHECK_ID_TRACK_COMMIT_TIMESTAMP, CHECK_WARNING, "source",
		    "every commit also records its time, which costs the busy "
		    "source I/O and WAL while the load and the change stream add "
		    "their own; pgtide does not need it",
		    "leave it if something else uses commit timestamps; otherwise "
		    "set track_commit_timestamp = off (needs a restart)",
		    "track_commit_timestamp is on, and the source commits about "
		    "%.0f writing transactions/s",
		    c->xacts_per_s);
	else
		add(c, CHECK_ID_TRACK_COMMIT_TIMESTAMP, CHECK_INFO, "source",
		    "it costs a busy source I/O per commit; pgtide does not need it",
		    "",
		    "track_commit_timestamp is on (the source was quiet while "
		    "checked)");
	return true;
}

/* ---- one run ---- */

static bool
run_checks(Check *c, Error *err)
{
	const TaskConfig *cfg = c->cfg;
	PGresult *res;

	if (!validate_skips(cfg, err) || !parse_patterns(c, err))
		return false;
	if (!open_session(cfg->source_uri, ERR_SOURCE, &c->src, c->src_db,
	                  sizeof(c->src_db), err) ||
	    !open_session(cfg->target_uri, ERR_TARGET, &c->tgt, c->tgt_db,
	                  sizeof(c->tgt_db), err))
		return false;
	c->src_version = pg_server_version(c->src);
	c->tgt_version = pg_server_version(c->tgt);
	/* the queries below assume 10 (pgoutput, partitions, attidentity) */
	if (c->src_version < 100000)
	{
		add(c, CHECK_ID_SOURCE_VERSION, CHECK_BLOCKER, "source",
		    "the change stream needs pgoutput, which ships with "
		    "PostgreSQL 10",
		    "upgrade the source to 10 or later first (pg_upgrade), or move "
		    "it with pg_dump and a write stop",
		    "the source runs PostgreSQL %d.%d", c->src_version / 10000,
		    c->src_version / 100 % 100);
		return true;
	}
	if (!pg_query(c->src,
	              "SELECT pg_is_in_recovery(), rolsuper FROM pg_roles"
	              " WHERE rolname = current_user",
	              0, NULL, &res, err))
		return false;
	c->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	c->src_super = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!query_bool(
	        c->tgt,
	        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", 0,
	        NULL, &c->tgt_super, err))
		return false;
	if (c->in_recovery)
		add(c, CHECK_ID_SOURCE_IN_RECOVERY, CHECK_BLOCKER, "source",
		    "a standby can create neither the task's publication nor a slot "
		    "that exports a snapshot",
		    "point --source at the primary",
		    "the source is a standby (in recovery)");
	if (!sample_begin(c, err) || !read_state(c, err) ||
	    !catalog_read(c->src, cfg->state_schema, &c->cat, err) ||
	    !catalog_select(c->cat, cfg->include.items, cfg->include.count,
	                    cfg->exclude.items, cfg->exclude.count, err))
		return false;
	c->selected_oids = oid_array(c->cat, CHECK_TABLES_SELECTED);
	c->published_oids = oid_array(c->cat, CHECK_TABLES_PUBLISHED);
	if (c->selected_oids == NULL || c->published_oids == NULL)
		return oom(err);
	if (!read_shown_names(c, err))
		return false;
	if (!check_task_objects(c, err) || !check_source_settings(c, err) ||
	    !check_publication(c, err) || !check_read_privileges(c, err))
		return false;
	check_table_kinds(c);
	if (!resolve_targets(c, err) || !check_identity_columns(c, err) ||
	    !check_full_identity(c, err))
		return false;
	check_sequences(c);
	if (!check_temporary_tables(c, err) || !check_foreign_tables(c, err) ||
	    !check_large_objects(c, err) || interrupted(c, err))
		return false;
	check_target_version(c);
	if (!check_extensions(c, err) || !check_types(c, err) ||
	    !check_collations(c, err) || !check_tablespaces(c, err) ||
	    !check_target_tables(c, err) || !check_target_privileges(c, err))
		return false;
	check_pg_dump(c);
	if (!sample_end(c, err) || !check_commit_timestamps(c, err) ||
	    !check_wal(c, err))
		return false;
	if (c->rep.oom)
		return oom(err);
	return true;
}

static void
check_free(Check *c)
{
	for (int i = 0; c->shown != NULL && i < c->cat->ntables; i++)
		free(c->shown[i]);
	free(c->shown);
	free(c->into);
	for (int i = 0; i < c->ninc; i++)
		mapping_pattern_free(&c->inc[i]);
	for (int i = 0; i < c->nexc; i++)
		mapping_pattern_free(&c->exc[i]);
	free(c->inc);
	free(c->exc);
	for (int i = 0; i < c->nexts; i++)
		free(c->exts[i].name);
	free(c->exts);
	for (int i = 0; i < c->nreg; i++)
	{
		free(c->reg[i].schema);
		free(c->reg[i].name);
	}
	free(c->reg);
	free(c->selected_oids);
	free(c->published_oids);
	catalog_free(c->cat);
	report_free(&c->rep);
	pg_close(c->src);
	pg_close(c->tgt);
}

/* ---- the verdict ---- */

typedef struct CheckCounts
{
	int n[3];    /* by severity, omitted ones included */
	int skipped; /* blockers accepted through check.skip */
	int blocking;
	char ids[ERR_MSG_MAX / 2]; /* the blocking ids, comma-separated */
	char unskippable[256];     /* of those, named in check.skip in vain */
} CheckCounts;

/* Appends name to a comma-separated list unless it is there already. */
static void
list_add(char *list, size_t cap, const char *name)
{
	size_t len = strlen(list);

	for (const char *p = list; (p = strstr(p, name)) != NULL; p++)
		if ((p == list || p[-1] == ' ') &&
		    (p[strlen(name)] == ',' || p[strlen(name)] == '\0'))
			return;
	snprintf(list + len, cap - len, "%s%s", len ? ", " : "", name);
}

static void
count_one(const TaskConfig *cfg, CheckId id, CheckSeverity sev, int n,
          CheckCounts *k)
{
	k->n[sev] += n;
	if (sev != CHECK_BLOCKER)
		return;
	if (!blocks(cfg, id, sev))
	{
		k->skipped += n;
		return;
	}
	if (skip_named(cfg, id))
		list_add(k->unskippable, sizeof(k->unskippable), check_ids[id].name);
	list_add(k->ids, sizeof(k->ids), check_ids[id].name);
	k->blocking += n;
}

static void
tally(const Check *c, CheckCounts *k)
{
	memset(k, 0, sizeof(*k));
	for (int i = 0; i < c->rep.n; i++)
		count_one(c->cfg, c->rep.items[i].id, c->rep.items[i].severity, 1, k);
	for (int id = 0; id < CHECK_ID_COUNT; id++)
		if (c->rep.omitted[id] > 0)
			count_one(c->cfg, (CheckId) id, c->rep.omitted_severity[id],
			          c->rep.omitted[id], k);
}

static void
summary_text(const CheckCounts *k, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "%d blocker%s", k->n[CHECK_BLOCKER],
	                   k->n[CHECK_BLOCKER] == 1 ? "" : "s");

	if (k->skipped > 0 && len > 0 && (size_t) len < cap)
		len += snprintf(buf + len, cap - (size_t) len, " (%d skipped)",
		                k->skipped);
	if (len > 0 && (size_t) len < cap)
		snprintf(buf + len, cap - (size_t) len, ", %d warning%s, %d info%s",
		         k->n[CHECK_WARNING], k->n[CHECK_WARNING] == 1 ? "" : "s",
		         k->n[CHECK_INFO], k->n[CHECK_INFO] == 1 ? "" : "s");
}

static bool
blocked_error(const CheckCounts *k, const char *before, Error *err)
{
	err_set(err, ERR_BLOCKED, "%scheck found %d blocker%s: %s", before,
	        k->blocking, k->blocking == 1 ? "" : "s", k->ids);
	if (k->unskippable[0])
		return err_hint(err,
		                "fix each blocker (see the findings); %s cannot be "
		                "skipped, even when named in check.skip",
		                k->unskippable);
	return err_hint(err, "fix each blocker (see the findings), or accept one "
	                     "with --skip-check=ID where that is safe");
}

/* The tag after a blocker's line: whether check.skip changed anything. */
static const char *
skip_tag(const TaskConfig *cfg, const CheckFinding *f)
{
	if (f->severity != CHECK_BLOCKER || !skip_named(cfg, f->id))
		return "";
	return check_ids[f->id].skippable ? " [skipped]" : " [cannot be skipped]";
}

/* "object: message; why. Fix: fix. [tag]", the one line a finding gets on
 * stdout and in the log. */
static void
format_finding(const TaskConfig *cfg, const CheckFinding *f, char *buf,
               size_t cap)
{
	snprintf(buf, cap, "%s: %s%s%s.%s%s%s%s", f->object, f->message,
	         f->why[0] ? "; " : "", f->why, f->fix[0] ? " Fix: " : "", f->fix,
	         f->fix[0] ? "." : "", skip_tag(cfg, f));
}

static void
print_text(const Check *c, const CheckCounts *k, FILE *out)
{
	char summary[256];
	char line[4096];

	for (int sev = CHECK_BLOCKER; sev >= CHECK_INFO; sev--)
	{
		for (int i = 0; i < c->rep.n; i++)
		{
			const CheckFinding *f = &c->rep.items[i];

			if ((int) f->severity != sev)
				continue;
			format_finding(c->cfg, f, line, sizeof(line));
			fprintf(out, "%-7s  %-23s  %s\n", severity_names[sev],
			        check_ids[f->id].name, line);
		}
		for (int id = 0; id < CHECK_ID_COUNT; id++)
			if (c->rep.omitted[id] > 0 &&
			    (int) c->rep.omitted_severity[id] == sev)
				fprintf(out, "%-7s  %-23s  and %d more like the above\n",
				        severity_names[sev], check_ids[id].name,
				        c->rep.omitted[id]);
	}
	summary_text(k, summary, sizeof(summary));
	fprintf(out, "pgtide check: source %s, target %s: %s\n", pg_where(c->src),
	        pg_where(c->tgt), summary);
}

static void
json_key(FILE *out, const char *key, const char *value, bool comma)
{
	json_write_string(out, key);
	fputc(':', out);
	json_write_string(out, value);
	if (comma)
		fputc(',', out);
}

static void
print_json(const Check *c, const CheckCounts *k, FILE *out)
{
	bool first = true;

	fputc('{', out);
	json_key(out, "source", pg_where(c->src), true);
	json_key(out, "target", pg_where(c->tgt), true);
	json_key(out, "task", c->cfg->task, true);
	fprintf(out, "\"resume\":%s,\"findings\":[", c->resume ? "true" : "false");
	for (int sev = CHECK_BLOCKER; sev >= CHECK_INFO; sev--)
		for (int i = 0; i < c->rep.n; i++)
		{
			const CheckFinding *f = &c->rep.items[i];

			if ((int) f->severity != sev)
				continue;
			fputs(first ? "{" : ",{", out);
			first = false;
			json_key(out, "id", check_ids[f->id].name, true);
			json_key(out, "severity", severity_names[sev], true);
			json_key(out, "object", f->object, true);
			json_key(out, "message", f->message, true);
			json_key(out, "why", f->why, true);
			json_key(out, "fix", f->fix, true);
			fprintf(out, "\"skippable\":%s,\"skipped\":%s}",
			        check_ids[f->id].skippable ? "true" : "false",
			        f->severity == CHECK_BLOCKER &&
			                !blocks(c->cfg, f->id, f->severity)
			            ? "true"
			            : "false");
		}
	fputs("],\"omitted\":[", out);
	first = true;
	for (int id = 0; id < CHECK_ID_COUNT; id++)
		if (c->rep.omitted[id] > 0)
		{
			fputs(first ? "{" : ",{", out);
			first = false;
			json_key(out, "id", check_ids[id].name, true);
			json_key(out, "severity",
			         severity_names[c->rep.omitted_severity[id]], true);
			fprintf(out, "\"count\":%d}", c->rep.omitted[id]);
		}
	fprintf(out,
	        "],\"counts\":{\"blocker\":%d,\"warning\":%d,\"info\":%d,"
	        "\"skipped\":%d},\"blocked\":%s}\n",
	        k->n[CHECK_BLOCKER], k->n[CHECK_WARNING], k->n[CHECK_INFO],
	        k->skipped, k->blocking > 0 ? "true" : "false");
}

bool
check_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	Check c;
	CheckCounts k;
	bool ok;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.stop = stop;
	ok = run_checks(&c, err);
	if (ok)
	{
		tally(&c, &k);
		if (cfg->output_json)
			print_json(&c, &k, stdout);
		else
			print_text(&c, &k, stdout);
		fflush(stdout);
		if (k.blocking > 0)
			ok = blocked_error(&k, "", err);
	}
	check_free(&c);
	return ok;
}

bool
check_before_migrate(const TaskConfig *cfg, Error *err)
{
	Check c;
	CheckCounts k;
	char summary[256];
	char line[4096];
	bool ok;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	ok = run_checks(&c, err);
	if (ok)
	{
		tally(&c, &k);
		for (int i = 0; i < c.rep.n; i++)
		{
			const CheckFinding *f = &c.rep.items[i];
			const char *name = check_ids[f->id].name;

			format_finding(cfg, f, line, sizeof(line));
			if (blocks(cfg, f->id, f->severity))
				log_error("check: blocker %s %s", name, line);
			else if (f->severity != CHECK_INFO)
				log_warn("check: %s %s %s", severity_names[f->severity], name,
				         line);
			else
				log_info("check: info %s %s", name, line);
		}
		for (int id = 0; id < CHECK_ID_COUNT; id++)
			if (c.rep.omitted[id] > 0 &&
			    c.rep.omitted_severity[id] == CHECK_INFO)
				log_info("check: info %s: and %d more like the above",
				         check_ids[id].name, c.rep.omitted[id]);
			else if (c.rep.omitted[id] > 0)
				log_warn("check: %s %s: and %d more like the above",
				         severity_names[c.rep.omitted_severity[id]],
				         check_ids[id].name, c.rep.omitted[id]);
		summary_text(&k, summary, sizeof(summary));
		log_info("check: %s", summary);
		if (k.blocking > 0)
			ok = blocked_error(&k, "pgtide migrate did not start: ", err);
	}
	check_free(&c);
	return ok;
}
