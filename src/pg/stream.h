/*
 * stream: the replication side of the source: the task's publication, its
 * logical slot, and the exported snapshots that make the full load and the
 * change stream meet exactly at the slot's consistent point.
 *
 * An exported snapshot lives as long as the replication connection that
 * created it stays open and idle; SlotSnapshot owns that connection.
 *
 * It never decodes a change (pgoutput does) and never confirms a position it
 * was not given: the caller decides what the slot may forget.
 */
#ifndef PGTIDE_STREAM_H
#define PGTIDE_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/lsn.h"
#include "pg/pg.h"

typedef struct SlotSnapshot
{
	PgConn *conn;  /* the exporting replication connection */
	PgConn *guard; /* holds the xmin horizon below the snapshot's */
	char slot[64];
	char snapshot[64];  /* name for SET TRANSACTION SNAPSHOT */
	Lsn consistent_lsn; /* changes committed before it are in the snapshot */
	bool temporary;
} SlotSnapshot;

/*
 * Creates a pgoutput slot that exports a snapshot. A temporary slot (used to
 * take a fresh snapshot for a reload) disappears with its connection. On
 * success out owns its connections; release them with stream_release().
 *
 * The server does not protect the snapshot alone: while the walsender ends
 * CREATE_REPLICATION_SLOT, there is a moment when neither the new slot's
 * xmin nor the walsender's own counts in the horizon, and an update committed
 * just after the consistent point can have its row's older version pruned
 * away; the snapshot then sees no version of that row at all. A guard
 * session takes an ordinary snapshot before the slot exists (its xmin is at
 * or below the exported one's) and keeps it until the snapshot is released.
 */
bool stream_create_slot(const char *source_uri, const char *slot,
                        bool temporary, SlotSnapshot *out, Error *err);

/* Closes the exporting connection; the snapshot is gone afterwards. */
void stream_release(SlotSnapshot *snap);

/*
 * Opens on conn a REPEATABLE READ READ ONLY transaction that sees the
 * exported snapshot (NULL: a snapshot of its own). On failure the caller
 * rolls back; stream_snapshot_gone(err) tells whether the export is gone
 * with its session, which no retry brings back.
 */
bool stream_begin_snapshot(PgConn *conn, const char *snapshot, Error *err);

/* Whether err says an exported snapshot could no longer be imported. */
bool stream_snapshot_gone(const Error *err);

/* Whether a slot of that name exists on the source. */
bool stream_slot_exists(PgConn *src, const char *slot, bool *exists,
                        Error *err);

/*
 * Fills err (ERR_GUARD) with the message for a slot the source invalidated
 * (wal_status lost): what happened, that the task cannot resume, and what
 * to do. server, when not NULL, is what the server said. Returns false.
 */
bool stream_lost_slot_error(Error *err, const char *slot, const char *server);

/* Drops the slot if it exists (and is not in use). */
bool stream_drop_slot(PgConn *src, const char *slot, Error *err);

/*
 * Drops a slot a lost connection of this process created (its creation's
 * answer lost, or its snapshot's session cut): the walsender holding it may
 * not have noticed the loss yet, so it is ended first. A temporary slot goes
 * with its walsender. No slot by that name: nothing to do.
 */
bool stream_drop_lost_slot(PgConn *src, const char *slot, Error *err);

/* a publication's CREATE statement or a list of names: room for 100,000
 * tables of long quoted names */
#define STREAM_PUBLICATION_SQL_MAX ((size_t) 64 << 20)

/*
 * Creates the publication over the given tables ("schema"."name" each) unless
 * one of that name exists; publish, when not NULL, is its publish option
 * ("insert, truncate"). Tables are added as they are: the caller leaves out
 * of a publication of UPDATE and DELETE any table whose UPDATE/DELETE could
 * not be replicated, because such a table in it makes the application's
 * writes fail.
 */
/*
 * Adds to publication `name` the tables ("schema"."name" each) it lacks, so
 * that their changes decoded from now on are streamed; returns once every
 * decoder on the source reads them as published (see stream.c). Tables it
 * already holds are left as they are.
 */
bool stream_publication_add(PgConn *src, const char *name, char *const *qtables,
                            int ntables, const atomic_int *stop, Error *err);

bool stream_create_publication(PgConn *src, const char *name,
                               const char *publish, char *const *qtables,
                               int ntables, Error *err);

/* One logical slot of pgoutput on the source, as stream_list_slots reads it. */
typedef struct StreamSlot
{
	char name[64];
	char database[64];
	bool here; /* in the database of the session that listed it */
	bool active;
	bool temporary;
	int active_pid;         /* 0 when inactive */
	int64_t retained_bytes; /* current WAL position - restart_lsn; -1 unknown */
	int64_t xmin_age;       /* age(catalog_xmin) in transactions; -1 unknown */
} StreamSlot;

/* at most this many slots are listed (the server allows far fewer) */
#define STREAM_SLOTS_MAX      1000
#define STREAM_SLOTS_MAX_TEXT "1000"

/*
 * Lists the source server's logical slots of pgoutput whose name starts with
 * prefix, in every database, by name. On success *out (NULL when none) is
 * the caller's, freed with free().
 */
bool stream_list_slots(PgConn *src, const char *prefix, StreamSlot **out,
                       int *n, Error *err);

/* Free replication slots on the source (max_replication_slots - used). */
bool stream_free_slots(PgConn *src, int *free_slots, Error *err);

/*
 * The change stream: a replication connection in COPY BOTH mode after
 * START_REPLICATION. Framing only (XLogData, keepalive, standby status);
 * the payload of XLogData is one pgoutput message that pgoutput decodes.
 */
typedef struct StreamConn StreamConn;

typedef enum StreamEventKind
{
	STREAM_EVENT_NONE = 0,  /* nothing arrived before the timeout */
	STREAM_EVENT_DATA,      /* one pgoutput message */
	STREAM_EVENT_KEEPALIVE, /* the server's keepalive */
} StreamEventKind;

typedef struct StreamEvent
{
	StreamEventKind kind;
	Lsn wal_start;        /* DATA: WAL position of the message */
	Lsn wal_end;          /* the server's current end of WAL */
	bool reply_requested; /* KEEPALIVE: answer at once */
	const uint8_t *data;  /* DATA: view, valid until the next stream_read */
	size_t len;
	const uint8_t *raw; /* the whole message as the source sent it (a view) */
	size_t raw_len;
} StreamEvent;

/*
 * Connects and starts streaming slot from start_lsn with pgoutput, over
 * the changes of the given publications (at least one). The
 * protocol version is the highest the server supports up to 2 (2 streams
 * large in-progress transactions); *proto_version receives it. On success
 * *out is the stream, closed with stream_close().
 *
 * A process given a feed (pg/feed: a target of a task of several under one
 * slot) reads that instead, and its stream may begin before start_lsn: it
 * begins where the target furthest behind asked. The caller skips what
 * committed before the position it asked for.
 */
bool stream_start(const char *source_uri, const char *slot,
                  const char *const *publications, int npublications,
                  Lsn start_lsn, int *proto_version, StreamConn **out,
                  Error *err);

/*
 * Waits up to timeout_ms for one message. A closed stream or a protocol
 * violation is an error (retryable when the connection broke).
 */
bool stream_read(StreamConn *s, int timeout_ms, StreamEvent *ev, Error *err);

/*
 * Sends a standby status update: written is what pgtide has received,
 * flushed what every target has durably committed (the slot's confirmed
 * position follows it), reply asks the server to answer at once.
 */
bool stream_send_status(StreamConn *s, Lsn written, Lsn flushed, bool reply,
                        Error *err);

/* Ends streaming and closes the connection; NULL is a no-op. */
void stream_close(StreamConn *s);

#endif
