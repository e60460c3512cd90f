/*
 * stream: the replication side of the source: the task's publication, its
 * logical slot, and the exported snapshots that make the full load and the
 * change stream meet exactly at the slot's consistent point.
 *
 * An exported snapshot lives as long as the replication connection that
 * created it stays open and idle; SlotSnapshot owns that connection.
 */
#ifndef PGTIDE_STREAM_H
#define PGTIDE_STREAM_H

#include <stdbool.h>

#include "err.h"
#include "lsn.h"
#include "pg.h"

typedef struct SlotSnapshot
{
	PgConn *conn; /* the exporting replication connection */
	char slot[64];
	char snapshot[64];  /* name for SET TRANSACTION SNAPSHOT */
	Lsn consistent_lsn; /* changes committed before it are in the snapshot */
	bool temporary;
} SlotSnapshot;

/*
 * Creates a pgoutput slot that exports a snapshot. A temporary slot (used to
 * take a fresh snapshot for a reload) disappears with its connection. On
 * success out owns the connection; release it with stream_release().
 */
bool stream_create_slot(const char *source_uri, const char *slot,
                        bool temporary, SlotSnapshot *out, Error *err);

/* Closes the exporting connection; the snapshot is gone afterwards. */
void stream_release(SlotSnapshot *snap);

/* Whether a slot of that name exists on the source. */
bool stream_slot_exists(PgConn *src, const char *slot, bool *exists,
                        Error *err);

/* Drops the slot if it exists (and is not in use). */
bool stream_drop_slot(PgConn *src, const char *slot, Error *err);

/*
 * Creates the publication over the given tables ("schema"."name" each) unless
 * one of that name exists. Tables are added as they are: the caller leaves
 * out any table whose UPDATE/DELETE could not be replicated, because such a
 * table in a publication makes the application's writes fail.
 */
bool stream_create_publication(PgConn *src, const char *name,
                               char *const *qtables, int ntables, Error *err);

/* Free replication slots on the source (max_replication_slots - used). */
bool stream_free_slots(PgConn *src, int *free_slots, Error *err);

#endif
