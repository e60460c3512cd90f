/*
 * check_int: what the files of check share; nothing outside src/verify/
 * includes it (callers use verify/check.h).
 *
 *   check.c           one run: the sessions, the task's state, the order of
 *                     the checks, pgtide check and migrate's preflight
 *   check_findings.c  the finding ids, the list of findings, check.skip, the
 *                     verdict and its text, JSON and log forms
 *   check_source.c    the source's settings, privileges and tables
 *   check_target.c    what the target needs for the schema step and the load
 *   check_wal.c       the source's WAL and transaction rate, and the WAL the
 *                     load's time costs
 *
 * The data flows one way: check.c fills a Check, each check reads it and
 * adds findings, check_findings.c turns them into a verdict and prints it.
 * Every check only reads; check.c opens both sessions read-only.
 */
#ifndef PGTIDE_CHECK_INT_H
#define PGTIDE_CHECK_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "load/source.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "route/mapping.h"

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
	CHECK_ID_INSERT_ONLY_DIVERGED,
	CHECK_ID_FULL_IDENTITY_NO_INDEX,
	CHECK_ID_UNLOGGED_TABLE,
	CHECK_ID_TEMPORARY_TABLE,
	CHECK_ID_LARGE_OBJECTS,
	CHECK_ID_FOREIGN_TABLE,
	CHECK_ID_WITH_OIDS,
	CHECK_ID_EXTENSION_TABLE,
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
	CHECK_ID_COLUMN_MISMATCH,
	CHECK_ID_PG_DUMP,
	CHECK_ID_SUBSET_DEPENDENCY,
	CHECK_ID_PGTIDE_SLOT,
	CHECK_ID_ROW_SECURITY,
	CHECK_ID_ENCODING,
	CHECK_ID_COUNT,
} CheckId;

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
	SourceFacts src_facts; /* the source's settings, as the load reads them */
	bool tgt_super;
	char src_db[128];
	char tgt_db[128];
	Catalog *cat;
	Renames renames; /* the task's (route/rename) */
	char **shown;    /* per cat->tables: quote_ident form; owned */
	/* per cat->tables: the index of the table it loads into (existing mode:
	 * itself or its nearest ancestor on the target), or -1; owned */
	int *into;
	char *selected_oids;  /* "{oid,...}" of the selected tables; owned */
	char *published_oids; /* those the publication lists; owned */
	TablePattern *inc;    /* parsed cfg->include; owned */
	TablePattern *exc;
	int ninc;
	int nexc;
	PatternSet incset; /* over inc and exc, built once both are parsed */
	PatternSet excset;
	CheckExtension *exts; /* the source's extensions; owned */
	int nexts;
	/* the task's state on the target */
	bool resume;
	bool has_point;   /* the slot's consistent point is recorded */
	bool copy_only;   /* loaded by pgtide copy: no slot was kept */
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

/* The verdict over a run's findings, once check.skip is applied. */
typedef struct CheckCounts
{
	int n[3];    /* by severity, omitted ones included */
	int skipped; /* blockers accepted through check.skip */
	int blocking;
	char ids[ERR_MSG_MAX / 2]; /* the blocking ids, comma-separated */
	char unskippable[256];     /* of those, named in check.skip in vain */
} CheckCounts;

/* ---- check.c: the run's lookups ---- */

/* Fails with ERR_INTERRUPTED when the run's stop flag is set. */
bool check_interrupted(const Check *c, Error *err);

/* Fills err with ERR_INTERNAL "out of memory"; returns false. */
bool check_oom(Error *err);

/* The selected or unselected catalog table of that oid (decimal text), or
 * NULL. A view into c->cat. */
const CatTable *check_table_by_oid(const Catalog *cat, const char *oid_text);

/* The name of the table at idx as a person types it: quoted only where SQL
 * needs it. A view, valid until the run is freed. */
const char *check_shown(const Check *c, int idx);

/* check_shown() for a table of c->cat. */
const char *check_shown_table(const Check *c, const CatTable *t);

/* Whether the table at idx is the first selected one loading into its
 * target (several partitions can load through one target root). */
bool check_first_of_target(const Check *c, int idx);

/* The table the task's state registers under that source name, or NULL. */
const CheckRegistered *check_registered(const Check *c, const char *schema,
                                        const char *name);

/* Runs sql returning one boolean in its single row's first column. Fails
 * with the server's error. */
bool check_query_bool(PgConn *conn, const char *sql, int nparams,
                      const char *const *params, bool *out, Error *err);

/* ---- check_findings.c: the list and the verdict ---- */

/* A malloc'd copy of s, or of "" for NULL; the caller frees it. Out of
 * memory sets *lost and returns NULL. */
char *check_dup_or_empty(const char *s, bool *lost);

/*
 * Adds a finding; past CHECK_MAX_PER_ID of one id it is only counted. Out of
 * memory marks the report, which then fails the run.
 */
void check_add(Check *c, CheckId id, CheckSeverity sev, const char *object,
               const char *why, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Frees every finding and empties the report. */
void check_report_free(CheckReport *r);

/* Whether a finding of this id and severity stops migrate. */
bool check_blocks(const TaskConfig *cfg, CheckId id, CheckSeverity sev);

/* Fails with ERR_CONFIG when check.skip names an unknown id. */
bool check_validate_skips(const TaskConfig *cfg, Error *err);

/* Counts the run's findings into *k. */
void check_tally(const Check *c, CheckCounts *k);

/* "N blockers (M skipped), N warnings, N infos" into buf. */
void check_summary_text(const CheckCounts *k, char *buf, size_t cap);

/* Fills err with ERR_BLOCKED naming the blocking ids (before is prepended
 * to the message); returns false. */
bool check_blocked_error(const CheckCounts *k, const char *before, Error *err);

/* The findings, then the summary, as text lines on out. */
void check_print_text(const Check *c, const CheckCounts *k, FILE *out);

/* The findings, omitted counts and summary as one JSON object on out. */
void check_print_json(const Check *c, const CheckCounts *k, FILE *out);

/* The findings at their log levels, then the summary: what migrate shows. */
void check_log_findings(const Check *c, const CheckCounts *k);

/* ---- the checks: each adds findings to c; fails when a query does ---- */

/* check_source.c */
bool check_task_objects(Check *c, Error *err);
void check_source_settings(Check *c);
bool check_publication(Check *c, Error *err);
bool check_read_privileges(Check *c, Error *err);

/* Selected tables whose rows row-level security hides from the role, on
 * the source (check_source.c) and on the target (check_target.c). */
bool check_row_security(Check *c, Error *err);
bool check_target_row_security(Check *c, Error *err);
void check_table_kinds(Check *c);
bool check_identity_columns(Check *c, Error *err);
bool check_full_identity(Check *c, Error *err);
void check_sequences(Check *c);
bool check_temporary_tables(Check *c, Error *err);
bool check_foreign_tables(Check *c, Error *err);

/* Tables of an extension: made by CREATE EXTENSION, their rows not moved. */
bool check_extension_tables(Check *c, Error *err);
bool check_large_objects(Check *c, Error *err);
/* A warning per selected table created WITH OIDS (sources before 12). */
bool check_with_oids(Check *c, Error *err);

/* check_target.c; check_resolve_targets fills c->into, which the checks
 * of the user's target tables (here and in check_source.c) read */
bool check_resolve_targets(Check *c, Error *err);
void check_target_version(Check *c);

/* The two databases' encodings, where they differ. */
bool check_encodings(Check *c, Error *err);
bool check_extensions(Check *c, Error *err);
bool check_types(Check *c, Error *err);
bool check_collations(Check *c, Error *err);
bool check_tablespaces(Check *c, Error *err);
bool check_target_tables(Check *c, Error *err);
bool check_target_columns(Check *c, Error *err);
bool check_target_privileges(Check *c, Error *err);
void check_pg_dump(Check *c);
/* create mode: each object that needs a table the patterns leave out */
bool check_subset(Check *c, Error *err);

/* check_wal.c: check_sample_begin samples at t0; check_sample_end waits
 * for t1 (check.wal_sample after t0) and samples again; the two checks after
 * it read the rate */
bool check_sample_begin(Check *c, Error *err);
bool check_sample_end(Check *c, Error *err);
bool check_commit_timestamps(Check *c, Error *err);
bool check_wal(Check *c, Error *err);

/*
 * Every slot of pgtide's on the source server (name pgtide_..., plugin
 * pgoutput, any database): the task's own as information, any other as a
 * warning, each with its retained WAL, whether it is in use, and its
 * catalog_xmin's age in transactions.
 */
bool check_pgtide_slots(Check *c, Error *err);

#endif
