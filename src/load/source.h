/*
 * source: what the load needs of the source server, read in one query,
 * and the load's own verdict on it. check reads the same facts and words
 * them as findings; the load turns the first that blocks into its error.
 * Reads only; never writes to the source.
 */
#ifndef PGTIDE_SOURCE_H
#define PGTIDE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "pg/catalog.h"
#include "pg/pg.h"

/* pgoutput, the decoder the change stream needs, ships with 10. */
#define SOURCE_MIN_VERSION 100000

typedef struct SourceFacts
{
	int version; /* server_version_num */
	bool in_recovery;
	bool superuser;
	bool replication; /* the role's REPLICATION attribute */
	char wal_level[32];
	int max_slots;
	int used_slots;
	int max_senders;
	int used_senders;
	int64_t sender_timeout_ms;
} SourceFacts;

/*
 * Reads the facts. On a server older than SOURCE_MIN_VERSION only
 * `version` is filled (the rest needs newer catalogs).
 */
bool source_read(PgConn *src, SourceFacts *out, Error *err);

/*
 * Whether the load can start on this source: fails with the first of
 * version, standby, wal_level and privilege that stops it, naming the fix.
 */
bool source_ready(const PgConn *src, const SourceFacts *f, Error *err);

/*
 * Fails (ERR_BLOCKED, check's row_security) naming every selected table of
 * cat whose rows row-level security hides from the source role: its copy
 * would fail half-way under the pinned row_security = off.
 */
bool source_refuse_row_security(PgConn *src, const Catalog *cat, Error *err);

/* The selected tables of cat whose rows row-level security hides from the
 * source role, as indexes into cat->tables: *idx (malloc'd, freed by the
 * caller) holds *n of them. */
bool source_row_security_tables(PgConn *src, const Catalog *cat, int **idx,
                                int *n, Error *err);

/* room for a snapshot's txid_current_snapshot() text */
#define SOURCE_TXIDS_MAX 1024

/*
 * The txids of an exported snapshot: which source transactions a load from
 * it contains (see source.c for the form), into out.
 */
bool source_snapshot_txids(PgConn *src, const char *snapshot, char *out,
                           size_t cap, Error *err);

/* The same, of the snapshot of src's open REPEATABLE READ transaction. */
bool source_txids_now(PgConn *src, char *out, size_t cap, Error *err);

#endif
