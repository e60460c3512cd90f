/*
 * pgoutput: the wire format of PostgreSQL's logical replication messages
 * (output plugin pgoutput, protocol versions 1 to 4). It turns the payload of
 * one XLogData message into one PgoMessage and owns nothing else.
 *
 * Pure: bytes in, struct out. No I/O, no libpq, no logging, no clock, no
 * globals. The stream module strips the replication framing and calls
 * pgoutput_decode() once per message, in order.
 *
 * The decoder keeps one bit of state, because the wire format depends on it:
 * inside a stream block the data messages (Relation, Type, Insert, Update,
 * Delete, Truncate, Message) carry the xid of the (sub)transaction that made
 * the change right after the type byte.
 *
 *   outside --Stream Start--> inside     pgoutput_decode()
 *   inside  --Stream Stop---> outside    pgoutput_decode()
 *
 * Begin, Commit and the other transaction messages are refused inside a
 * block; Stream Stop and a second Stream Start are refused outside/inside.
 * Origin is valid in both places (pgoutput sends it right after the first
 * Stream Start of a transaction that has a replication origin).
 *
 * Strings, values and byte arrays in a PgoMessage are views into the
 * caller's buffer; arrays (columns, tuple values, relids) live in scratch
 * memory of the decoder. Both stay valid until the next pgoutput_decode() on
 * the same decoder and while the caller's buffer lives.
 */
#ifndef PGTIDE_PGOUTPUT_H
#define PGTIDE_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/lsn.h"

/* Columns per Relation or tuple: PostgreSQL's MaxTupleAttributeNumber. */
#define PGO_MAX_COLUMNS 1664
/* Relations per Truncate message. */
#define PGO_MAX_TRUNCATE_RELIDS 1000000

/* Truncate option bits. */
#define PGO_TRUNCATE_CASCADE          0x01
#define PGO_TRUNCATE_RESTART_IDENTITY 0x02
/* Message flag bits. */
#define PGO_MESSAGE_TRANSACTIONAL 0x01

/*
 * Timestamps (*_time_us) are microseconds since the PostgreSQL epoch,
 * 2000-01-01 00:00:00 UTC; add this to get microseconds since the Unix epoch.
 */
#define PGO_EPOCH_UNIX_US INT64_C(946684800000000)

/* The "streaming" option sent in START_REPLICATION. */
typedef enum PgoStreaming
{
	PGO_STREAMING_OFF = 0,
	PGO_STREAMING_ON,       /* needs proto_version >= 2 */
	PGO_STREAMING_PARALLEL, /* needs proto_version >= 4; Stream Abort carries
	                           abort_lsn and abort_time_us */
} PgoStreaming;

/* What the decoder is told about the replication session it decodes. */
typedef struct PgoOptions
{
	int proto_version; /* 1 to 4, as sent in START_REPLICATION */
	PgoStreaming streaming;
	bool two_phase; /* "two_phase" on: needs proto_version >= 3 */
	/*
	 * The decoder reads a streamed transaction's data messages replayed
	 * after its commit, out of their stream blocks: each still carries its
	 * (sub)transaction's xid, as inside a block. Needs streaming on.
	 */
	bool replay_streamed;
} PgoOptions;

typedef enum PgoKind
{
	PGO_BEGIN,             /* 'B' */
	PGO_COMMIT,            /* 'C' */
	PGO_ORIGIN,            /* 'O' */
	PGO_RELATION,          /* 'R' */
	PGO_TYPE,              /* 'Y' */
	PGO_INSERT,            /* 'I' */
	PGO_UPDATE,            /* 'U' */
	PGO_DELETE,            /* 'D' */
	PGO_TRUNCATE,          /* 'T' */
	PGO_MESSAGE,           /* 'M' */
	PGO_STREAM_START,      /* 'S', protocol 2 */
	PGO_STREAM_STOP,       /* 'E', protocol 2 */
	PGO_STREAM_COMMIT,     /* 'c', protocol 2 */
	PGO_STREAM_ABORT,      /* 'A', protocol 2 */
	PGO_BEGIN_PREPARE,     /* 'b', protocol 3 */
	PGO_PREPARE,           /* 'P', protocol 3 */
	PGO_COMMIT_PREPARED,   /* 'K', protocol 3 */
	PGO_ROLLBACK_PREPARED, /* 'r', protocol 3 */
	PGO_STREAM_PREPARE,    /* 'p', protocol 3 */
} PgoKind;

/* One column value of a tuple. */
typedef struct PgoValue
{
	char kind;        /* 'n' null, 'u' unchanged TOASTed (not sent),
	                     't' text, 'b' binary (send function output) */
	uint32_t len;     /* bytes at data; 0 for 'n' and 'u' */
	const char *data; /* view, not NUL-terminated; NULL for 'n' and 'u' */
} PgoValue;

typedef struct PgoTuple
{
	int ncols;
	const PgoValue *values; /* ncols entries, decoder scratch */
} PgoTuple;

typedef struct PgoColumn
{
	bool key;         /* part of the replica identity */
	const char *name; /* view */
	uint32_t type_oid;
	int32_t typmod;
} PgoColumn;

typedef struct PgoBegin
{
	Lsn final_lsn; /* LSN of the commit record */
	int64_t commit_time_us;
} PgoBegin;

/* Commit and Stream Commit. */
typedef struct PgoCommit
{
	uint8_t flags; /* always 0 today */
	Lsn commit_lsn;
	Lsn end_lsn; /* end of the commit record */
	int64_t commit_time_us;
} PgoCommit;

typedef struct PgoOrigin
{
	Lsn origin_lsn; /* 0/0 when sent inside a stream block */
	const char *name;
} PgoOrigin;

typedef struct PgoRelation
{
	uint32_t relid;
	const char *nspname; /* "pg_catalog" when the wire says "" */
	const char *relname;
	char replica_identity; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
	int ncols;
	const PgoColumn *columns; /* ncols entries, decoder scratch */
} PgoRelation;

typedef struct PgoType
{
	uint32_t type_oid;
	const char *nspname; /* "pg_catalog" when the wire says "" */
	const char *typname;
} PgoType;

/* Insert, Update and Delete. */
typedef struct PgoChange
{
	uint32_t relid;
	char old_kind;      /* 0 none, 'K' old key, 'O' old tuple (FULL) */
	PgoTuple old_tuple; /* Update (optional) and Delete (always) */
	PgoTuple new_tuple; /* Insert and Update */
} PgoChange;

typedef struct PgoTruncate
{
	uint8_t options; /* PGO_TRUNCATE_* bits */
	int nrelids;
	const uint32_t *relids; /* nrelids entries, decoder scratch */
} PgoTruncate;

typedef struct PgoLogicalMessage
{
	uint8_t flags; /* PGO_MESSAGE_TRANSACTIONAL or 0 */
	Lsn lsn;
	const char *prefix;
	uint32_t content_len;
	const uint8_t *content; /* view */
} PgoLogicalMessage;

typedef struct PgoStreamStart
{
	bool first_segment; /* first block of this transaction */
} PgoStreamStart;

typedef struct PgoStreamAbort
{
	uint32_t subxid;     /* equals xid when the whole transaction aborted */
	bool has_abort_info; /* streaming is PGO_STREAMING_PARALLEL */
	Lsn abort_lsn;
	int64_t abort_time_us;
} PgoStreamAbort;

/* Begin Prepare (flags 0), Prepare and Stream Prepare. */
typedef struct PgoPrepare
{
	uint8_t flags; /* always 0 today */
	Lsn prepare_lsn;
	Lsn end_lsn;
	int64_t prepare_time_us;
	const char *gid;
} PgoPrepare;

typedef struct PgoCommitPrepared
{
	uint8_t flags; /* always 0 today */
	Lsn commit_lsn;
	Lsn end_lsn;
	int64_t commit_time_us;
	const char *gid;
} PgoCommitPrepared;

typedef struct PgoRollbackPrepared
{
	uint8_t flags; /* always 0 today */
	Lsn prepare_end_lsn;
	Lsn rollback_end_lsn;
	int64_t prepare_time_us;
	int64_t rollback_time_us;
	const char *gid;
} PgoRollbackPrepared;

typedef struct PgoMessage
{
	PgoKind kind;
	/*
	 * The xid the message carries, 0 when it carries none: Begin, Stream
	 * Start/Commit/Abort, the two-phase messages, and data messages inside
	 * a stream block (there the xid of the subtransaction that made the
	 * change, which may differ from the one in Stream Start).
	 */
	uint32_t xid;
	union
	{
		PgoBegin begin;
		PgoCommit commit; /* Commit, Stream Commit */
		PgoOrigin origin;
		PgoRelation relation;
		PgoType type;
		PgoChange change; /* Insert, Update, Delete */
		PgoTruncate truncate;
		PgoLogicalMessage message;
		PgoStreamStart stream_start;
		PgoStreamAbort stream_abort;
		PgoPrepare prepare; /* Begin Prepare, Prepare, Stream Prepare */
		PgoCommitPrepared commit_prepared;
		PgoRollbackPrepared rollback_prepared;
	} u;
} PgoMessage;

typedef struct PgoDecoder PgoDecoder;

/*
 * Creates a decoder for a session started with the given options (outside
 * any stream block). Returns NULL and fills err (ERR_INTERNAL) when the
 * options are not a combination PostgreSQL accepts or memory runs out. The
 * caller frees the decoder with pgoutput_decoder_free().
 */
PgoDecoder *pgoutput_decoder_new(const PgoOptions *opts, Error *err);

/* Frees the decoder and its scratch memory; NULL is a no-op. */
void pgoutput_decoder_free(PgoDecoder *d);

/*
 * Decodes the message buf[0..len) into *out. Returns false and fills err
 * (ERR_SOURCE, "pgoutput: ...") when the message is truncated, has trailing
 * bytes, an unknown type or field value, exceeds a cap, or is not valid in
 * the current stream state (ERR_INTERNAL when memory runs out); then *out
 * and the decoder's stream state are unchanged. Views in *out stay valid until the next call on d and while
 * buf lives.
 */
bool pgoutput_decode(PgoDecoder *d, const uint8_t *buf, size_t len,
                     PgoMessage *out, Error *err);

/* The kind's name as PostgreSQL's documentation spells it ("Stream Start"). */
const char *pgoutput_kind_name(PgoKind kind);

/*
 * A look at one message without decoding it, for a receiver that only
 * routes most messages: its kind, and, for a data message inside a stream
 * block (in_stream), the xid of the (sub)transaction that follows the type
 * byte (0 otherwise). Fails (ERR_SOURCE) on an empty or unknown message, or
 * one too short to hold that xid. Checks nothing else: pgoutput_decode does.
 */
bool pgoutput_peek(const uint8_t *buf, size_t len, bool in_stream,
                   PgoKind *kind, uint32_t *xid, Error *err);

#endif
