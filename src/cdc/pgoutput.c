/*
 * pgoutput: decoding of pgoutput messages. No I/O, no libpq, no logging.
 *
 * The layouts below follow PostgreSQL's "Logical Replication Message
 * Formats" and src/backend/replication/logical/proto.c. All integers are
 * big-endian; a string is NUL-terminated; [xid] is an Int32 present only
 * inside a stream block; LSNs and timestamps are Int64.
 *
 *   'B' Begin            final_lsn, commit_time, xid
 *   'C' Commit           flags(0), commit_lsn, end_lsn, commit_time
 *   'O' Origin           origin_lsn, name
 *   'R' Relation         [xid] relid, nspname, relname, replident(Byte),
 *                        natts(Int16), natts x {flags(Byte), name,
 *                        type_oid(Int32), typmod(Int32)}
 *   'Y' Type             [xid] type_oid, nspname, typname
 *   'I' Insert           [xid] relid, 'N' tuple
 *   'U' Update           [xid] relid, ['K' tuple | 'O' tuple], 'N' tuple
 *   'D' Delete           [xid] relid, 'K' tuple | 'O' tuple
 *   'T' Truncate         [xid] nrelids(Int32), options(Byte), nrelids x relid
 *   'M' Message          [xid] flags(Byte), lsn, prefix, len(Int32), bytes
 *   'S' Stream Start     xid, first_segment(Byte 0/1)              proto 2
 *   'E' Stream Stop      -                                          proto 2
 *   'c' Stream Commit    xid, flags(0), commit_lsn, end_lsn, commit_time
 *   'A' Stream Abort     xid, subxid [, abort_lsn, abort_time]  parallel, 4
 *   'b' Begin Prepare    prepare_lsn, end_lsn, prepare_time, xid, gid  3
 *   'P' Prepare          flags(0), prepare_lsn, end_lsn, prepare_time,
 *                        xid, gid                                   proto 3
 *   'K' Commit Prepared  flags(0), commit_lsn, end_lsn, commit_time, xid,
 *                        gid                                        proto 3
 *   'r' Rollback Prep.   flags(0), prepare_end_lsn, rollback_end_lsn,
 *                        prepare_time, rollback_time, xid, gid      proto 3
 *   'p' Stream Prepare   as Prepare                                 proto 3
 *
 *   tuple: ncols(Int16, unsigned on the wire), ncols x {'n' | 'u' |
 *          't' len(Int32) bytes | 'b' len(Int32) bytes}
 *
 * Every read goes through one bounds-checked Cursor; a message must be
 * consumed exactly. Checks beyond the layout mirror PostgreSQL's own reader
 * (flags that must be 0, LSNs that must be set) and add what our API relies
 * on (an xid is never 0, since 0 means "none" in PgoMessage).
 */
#include "cdc/pgoutput.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a message may appear relative to a stream block. */
typedef enum Where
{
	WHERE_ANY,
	WHERE_OUTSIDE,
	WHERE_INSIDE,
} Where;

typedef struct MsgSpec
{
	uint8_t type;
	PgoKind kind;
	Where where;
	bool stream_xid; /* carries [xid] inside a stream block */
	bool streaming;  /* only with streaming on */
	bool two_phase;  /* only with two_phase on */
} MsgSpec;

static const MsgSpec msg_specs[] = {
    {'B', PGO_BEGIN, WHERE_OUTSIDE, false, false, false},
    {'C', PGO_COMMIT, WHERE_OUTSIDE, false, false, false},
    {'O', PGO_ORIGIN, WHERE_ANY, false, false, false},
    {'R', PGO_RELATION, WHERE_ANY, true, false, false},
    {'Y', PGO_TYPE, WHERE_ANY, true, false, false},
    {'I', PGO_INSERT, WHERE_ANY, true, false, false},
    {'U', PGO_UPDATE, WHERE_ANY, true, false, false},
    {'D', PGO_DELETE, WHERE_ANY, true, false, false},
    {'T', PGO_TRUNCATE, WHERE_ANY, true, false, false},
    {'M', PGO_MESSAGE, WHERE_ANY, true, false, false},
    {'S', PGO_STREAM_START, WHERE_OUTSIDE, false, true, false},
    {'E', PGO_STREAM_STOP, WHERE_INSIDE, false, true, false},
    {'c', PGO_STREAM_COMMIT, WHERE_OUTSIDE, false, true, false},
    {'A', PGO_STREAM_ABORT, WHERE_OUTSIDE, false, true, false},
    {'b', PGO_BEGIN_PREPARE, WHERE_OUTSIDE, false, false, true},
    {'P', PGO_PREPARE, WHERE_OUTSIDE, false, false, true},
    {'K', PGO_COMMIT_PREPARED, WHERE_OUTSIDE, false, false, true},
    {'r', PGO_ROLLBACK_PREPARED, WHERE_OUTSIDE, false, false, true},
    {'p', PGO_STREAM_PREPARE, WHERE_OUTSIDE, false, true, true},
};

static const char *const kind_names[] = {
    [PGO_BEGIN] = "Begin",
    [PGO_COMMIT] = "Commit",
    [PGO_ORIGIN] = "Origin",
    [PGO_RELATION] = "Relation",
    [PGO_TYPE] = "Type",
    [PGO_INSERT] = "Insert",
    [PGO_UPDATE] = "Update",
    [PGO_DELETE] = "Delete",
    [PGO_TRUNCATE] = "Truncate",
    [PGO_MESSAGE] = "Message",
    [PGO_STREAM_START] = "Stream Start",
    [PGO_STREAM_STOP] = "Stream Stop",
    [PGO_STREAM_COMMIT] = "Stream Commit",
    [PGO_STREAM_ABORT] = "Stream Abort",
    [PGO_BEGIN_PREPARE] = "Begin Prepare",
    [PGO_PREPARE] = "Prepare",
    [PGO_COMMIT_PREPARED] = "Commit Prepared",
    [PGO_ROLLBACK_PREPARED] = "Rollback Prepared",
    [PGO_STREAM_PREPARE] = "Stream Prepare",
};

/* A growable array of at most a cap of entries; mem is untyped malloc. */
typedef struct Scratch
{
	void *mem;
	int cap; /* entries allocated */
} Scratch;

struct PgoDecoder
{
	PgoOptions opts;
	bool in_stream;      /* between Stream Start and Stream Stop */
	uint32_t stream_xid; /* xid of that Stream Start */
	Scratch columns;     /* PgoColumn, Relation */
	Scratch values[2];   /* PgoValue: [0] old tuple, [1] new tuple */
	Scratch relids;      /* uint32_t, Truncate */
};

/* The one way to read a message: bounds-checked, names the message. */
typedef struct Cursor
{
	const uint8_t *buf;
	size_t len;
	size_t pos;
	const char *what; /* message kind name, for errors */
	Error *err;
} Cursor;

/* "'x' (0x78)" for a printable byte, "0x01" otherwise. */
#define BYTE_TEXT_MAX 16

static const char *
byte_text(uint8_t b, char *buf)
{
	if (b > 0x20 && b < 0x7f)
		snprintf(buf, BYTE_TEXT_MAX, "'%c' (0x%02x)", b, b);
	else
		snprintf(buf, BYTE_TEXT_MAX, "0x%02x", b);
	return buf;
}

static bool
cur_need(Cursor *c, size_t n)
{
	if (c->len - c->pos >= n)
		return true;
	return err_set(c->err, ERR_SOURCE,
	               "pgoutput: %s message truncated at byte %zu: needs %zu "
	               "more bytes, has %zu",
	               c->what, c->pos, n, c->len - c->pos);
}

static bool
cur_u8(Cursor *c, uint8_t *out)
{
	if (!cur_need(c, 1))
		return false;
	*out = c->buf[c->pos++];
	return true;
}

static bool
cur_u16(Cursor *c, uint16_t *out)
{
	const uint8_t *p;

	if (!cur_need(c, 2))
		return false;
	p = c->buf + c->pos;
	*out = (uint16_t) ((unsigned) p[0] << 8 | p[1]);
	c->pos += 2;
	return true;
}

static bool
cur_u32(Cursor *c, uint32_t *out)
{
	const uint8_t *p;

	if (!cur_need(c, 4))
		return false;
	p = c->buf + c->pos;
	*out = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
	       (uint32_t) p[2] << 8 | p[3];
	c->pos += 4;
	return true;
}

static bool
cur_u64(Cursor *c, uint64_t *out)
{
	uint32_t hi;
	uint32_t lo;

	if (!cur_need(c, 8))
		return false;
	cur_u32(c, &hi);
	cur_u32(c, &lo);
	*out = (uint64_t) hi << 32 | lo;
	return true;
}

static bool
cur_i32(Cursor *c, int32_t *out)
{
	uint32_t u;

	if (!cur_u32(c, &u))
		return false;
	*out = (int32_t) u;
	return true;
}

static bool
cur_i64(Cursor *c, int64_t *out)
{
	uint64_t u;

	if (!cur_u64(c, &u))
		return false;
	*out = (int64_t) u;
	return true;
}

/* A length field (Int32) that must be in 0..remaining bytes. */
static bool
cur_len(Cursor *c, const char *field, uint32_t *out)
{
	size_t at = c->pos;
	int32_t n;

	if (!cur_i32(c, &n))
		return false;
	if (n < 0)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: negative %s %d in %s message at byte %zu",
		               field, n, c->what, at);
	if (!cur_need(c, (size_t) n))
		return false;
	*out = (uint32_t) n;
	return true;
}

static bool
cur_bytes(Cursor *c, size_t n, const uint8_t **out)
{
	if (!cur_need(c, n))
		return false;
	*out = c->buf + c->pos;
	c->pos += n;
	return true;
}

/* A NUL-terminated string; *out is a view into the message. */
static bool
cur_string(Cursor *c, const char *field, const char **out)
{
	const uint8_t *start = c->buf + c->pos;
	const uint8_t *nul = memchr(start, '\0', c->len - c->pos);

	if (nul == NULL)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: %s message truncated at byte %zu: %s has "
		               "no terminating NUL",
		               c->what, c->pos, field);
	*out = (const char *) start;
	c->pos += (size_t) (nul - start) + 1;
	return true;
}

/* A transaction id, which our API reserves 0 for "none". */
static bool
cur_xid(Cursor *c, const char *field, uint32_t *out)
{
	size_t at = c->pos;

	if (!cur_u32(c, out))
		return false;
	if (*out == 0)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: invalid %s 0 in %s message at byte %zu",
		               field, c->what, at);
	return true;
}

/* An LSN that PostgreSQL's reader also requires to be set. */
static bool
cur_lsn_set(Cursor *c, const char *field, Lsn *out)
{
	size_t at = c->pos;

	if (!cur_u64(c, out))
		return false;
	if (*out == LSN_INVALID)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: %s is 0/0 in %s message at byte %zu", field,
		               c->what, at);
	return true;
}

/* A flags byte that may only hold bits of allowed. */
static bool
cur_flags(Cursor *c, const char *field, uint8_t allowed, uint8_t *out)
{
	size_t at = c->pos;

	if (!cur_u8(c, out))
		return false;
	if ((*out & ~allowed) != 0)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: unknown %s 0x%02x in %s message at byte %zu",
		               field, *out, c->what, at);
	return true;
}

static bool
bad_byte(Cursor *c, const char *field, uint8_t b, size_t at)
{
	char text[BYTE_TEXT_MAX];

	return err_set(c->err, ERR_SOURCE,
	               "pgoutput: unknown %s %s in %s message at byte %zu", field,
	               byte_text(b, text), c->what, at);
}

/*
 * Returns s->mem grown to hold need entries of elem bytes, or NULL (s
 * unchanged) when memory runs out. need is bounded by the caller's cap.
 */
static void *
scratch_reserve(Scratch *s, int need, size_t elem, Cursor *c)
{
	void *mem;
	int cap;

	if (need <= s->cap)
		return s->mem;
	cap = s->cap > 0 ? s->cap : 16;
	while (cap < need)
		cap *= 2;
	mem = realloc(s->mem, (size_t) cap * elem);
	if (mem == NULL)
	{
		err_set(c->err, ERR_INTERNAL,
		        "pgoutput: out of memory decoding %s message (%d entries)",
		        c->what, need);
		return NULL;
	}
	s->mem = mem;
	s->cap = cap;
	return mem;
}

static const char *
namespace_name(const char *wire)
{
	/* pgoutput sends "" for pg_catalog to save space */
	return wire[0] == '\0' ? "pg_catalog" : wire;
}

static bool
read_tuple(Cursor *c, Scratch *s, PgoTuple *out)
{
	PgoValue *values;
	uint16_t ncols;
	int i;

	if (!cur_u16(c, &ncols))
		return false;
	if (ncols > PGO_MAX_COLUMNS)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: %s message has a tuple of %u columns, more "
		               "than the maximum %d",
		               c->what, ncols, PGO_MAX_COLUMNS);
	/* each column takes at least its kind byte */
	if (!cur_need(c, ncols))
		return false;
	values = scratch_reserve(s, ncols, sizeof(PgoValue), c);
	if (values == NULL && ncols > 0)
		return false;
	for (i = 0; i < ncols; i++)
	{
		PgoValue *v = &values[i];
		size_t at = c->pos;
		const uint8_t *data;
		uint8_t kind;

		if (!cur_u8(c, &kind))
			return false;
		v->kind = (char) kind;
		v->len = 0;
		v->data = NULL;
		switch (kind)
		{
			case 'n':
			case 'u':
				break;
			case 't':
			case 'b':
				if (!cur_len(c, "value length", &v->len) ||
				    !cur_bytes(c, v->len, &data))
					return false;
				v->data = (const char *) data;
				break;
			default:
				return bad_byte(c, "column value kind", kind, at);
		}
	}
	out->ncols = ncols;
	out->values = ncols > 0 ? values : NULL;
	return true;
}

/* A tuple marker byte that must be one of the characters in allowed. */
static bool
read_marker(Cursor *c, const char *allowed, uint8_t *out)
{
	size_t at = c->pos;

	if (!cur_u8(c, out))
		return false;
	if (*out == '\0' || strchr(allowed, *out) == NULL)
		return bad_byte(c, "tuple marker", *out, at);
	return true;
}

static bool
read_relation(PgoDecoder *d, Cursor *c, PgoRelation *r)
{
	PgoColumn *cols;
	const char *nspname;
	uint16_t ncols;
	uint8_t ident;
	size_t at;
	int i;

	if (!cur_u32(c, &r->relid) || !cur_string(c, "namespace", &nspname) ||
	    !cur_string(c, "relation name", &r->relname))
		return false;
	r->nspname = namespace_name(nspname);
	at = c->pos;
	if (!cur_u8(c, &ident))
		return false;
	if (ident != 'd' && ident != 'n' && ident != 'f' && ident != 'i')
		return bad_byte(c, "replica identity", ident, at);
	r->replica_identity = (char) ident;
	if (!cur_u16(c, &ncols))
		return false;
	if (ncols > PGO_MAX_COLUMNS)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: Relation message has %u columns, more than "
		               "the maximum %d",
		               ncols, PGO_MAX_COLUMNS);
	/* flags, name's NUL, type oid and typmod: at least 10 bytes a column */
	if (!cur_need(c, (size_t) ncols * 10))
		return false;
	cols = scratch_reserve(&d->columns, ncols, sizeof(PgoColumn), c);
	if (cols == NULL && ncols > 0)
		return false;
	for (i = 0; i < ncols; i++)
	{
		uint8_t flags;

		if (!cur_flags(c, "column flags", 0x01, &flags) ||
		    !cur_string(c, "column name", &cols[i].name) ||
		    !cur_u32(c, &cols[i].type_oid) || !cur_i32(c, &cols[i].typmod))
			return false;
		cols[i].key = (flags & 0x01) != 0;
	}
	r->ncols = ncols;
	r->columns = ncols > 0 ? cols : NULL;
	return true;
}

static bool
read_type(Cursor *c, PgoType *t)
{
	const char *nspname;

	if (!cur_u32(c, &t->type_oid) || !cur_string(c, "namespace", &nspname) ||
	    !cur_string(c, "type name", &t->typname))
		return false;
	t->nspname = namespace_name(nspname);
	return true;
}

static bool
read_change(PgoDecoder *d, Cursor *c, PgoKind kind, PgoChange *ch)
{
	uint8_t marker;

	if (!cur_u32(c, &ch->relid))
		return false;
	switch (kind)
	{
		case PGO_INSERT:
			return read_marker(c, "N", &marker) &&
			       read_tuple(c, &d->values[1], &ch->new_tuple);
		case PGO_UPDATE:
			if (!read_marker(c, "KON", &marker))
				return false;
			if (marker != 'N')
			{
				ch->old_kind = (char) marker;
				if (!read_tuple(c, &d->values[0], &ch->old_tuple) ||
				    !read_marker(c, "N", &marker))
					return false;
			}
			return read_tuple(c, &d->values[1], &ch->new_tuple);
		case PGO_DELETE:
			if (!read_marker(c, "KO", &marker))
				return false;
			ch->old_kind = (char) marker;
			return read_tuple(c, &d->values[0], &ch->old_tuple);
		default:
			return err_set(c->err, ERR_INTERNAL,
			               "pgoutput: %s is not a change message", c->what);
	}
}

static bool
read_truncate(PgoDecoder *d, Cursor *c, PgoTruncate *t)
{
	uint32_t *relids;
	int32_t n;
	int i;

	if (!cur_i32(c, &n))
		return false;
	if (n < 0 || n > PGO_MAX_TRUNCATE_RELIDS)
		return err_set(c->err, ERR_SOURCE,
		               "pgoutput: Truncate message has %d relations, outside "
		               "0..%d",
		               n, PGO_MAX_TRUNCATE_RELIDS);
	if (!cur_flags(c, "truncate options",
	               PGO_TRUNCATE_CASCADE | PGO_TRUNCATE_RESTART_IDENTITY,
	               &t->options))
		return false;
	if (!cur_need(c, (size_t) n * 4))
		return false;
	relids = scratch_reserve(&d->relids, n, sizeof(uint32_t), c);
	if (relids == NULL && n > 0)
		return false;
	for (i = 0; i < n; i++)
		cur_u32(c, &relids[i]);
	t->nrelids = n;
	t->relids = n > 0 ? relids : NULL;
	return true;
}

static bool
read_logical_message(Cursor *c, PgoLogicalMessage *m)
{
	return cur_flags(c, "message flags", PGO_MESSAGE_TRANSACTIONAL,
	                 &m->flags) &&
	       cur_u64(c, &m->lsn) && cur_string(c, "prefix", &m->prefix) &&
	       cur_len(c, "content length", &m->content_len) &&
	       cur_bytes(c, m->content_len, &m->content);
}

/* Commit; Stream Commit is the same after its xid. */
static bool
read_commit(Cursor *c, PgoCommit *cm)
{
	return cur_flags(c, "flags", 0, &cm->flags) &&
	       cur_u64(c, &cm->commit_lsn) && cur_u64(c, &cm->end_lsn) &&
	       cur_i64(c, &cm->commit_time_us);
}

static bool
read_stream_start(Cursor *c, uint32_t *xid, PgoStreamStart *s)
{
	size_t at;
	uint8_t first;

	if (!cur_xid(c, "xid", xid))
		return false;
	at = c->pos;
	if (!cur_u8(c, &first))
		return false;
	if (first > 1)
		return bad_byte(c, "first-segment flag", first, at);
	s->first_segment = first == 1;
	return true;
}

static bool
read_stream_abort(const PgoDecoder *d, Cursor *c, uint32_t *xid,
                  PgoStreamAbort *a)
{
	if (!cur_xid(c, "xid", xid) || !cur_xid(c, "subxid", &a->subxid))
		return false;
	if (d->opts.streaming != PGO_STREAMING_PARALLEL)
		return true;
	a->has_abort_info = true;
	return cur_u64(c, &a->abort_lsn) && cur_i64(c, &a->abort_time_us);
}

/* Prepare and Stream Prepare; Begin Prepare is the same without flags. */
static bool
read_prepare(Cursor *c, bool has_flags, uint32_t *xid, PgoPrepare *p)
{
	if (has_flags && !cur_flags(c, "flags", 0, &p->flags))
		return false;
	return cur_lsn_set(c, "prepare_lsn", &p->prepare_lsn) &&
	       cur_lsn_set(c, "end_lsn", &p->end_lsn) &&
	       cur_i64(c, &p->prepare_time_us) && cur_xid(c, "xid", xid) &&
	       cur_string(c, "gid", &p->gid);
}

static bool
read_body(PgoDecoder *d, Cursor *c, PgoMessage *m)
{
	switch (m->kind)
	{
		case PGO_BEGIN:
			return cur_lsn_set(c, "final_lsn", &m->u.begin.final_lsn) &&
			       cur_i64(c, &m->u.begin.commit_time_us) &&
			       cur_xid(c, "xid", &m->xid);
		case PGO_COMMIT:
			return read_commit(c, &m->u.commit);
		case PGO_STREAM_COMMIT:
			return cur_xid(c, "xid", &m->xid) && read_commit(c, &m->u.commit);
		case PGO_ORIGIN:
			return cur_u64(c, &m->u.origin.origin_lsn) &&
			       cur_string(c, "origin name", &m->u.origin.name);
		case PGO_RELATION:
			return read_relation(d, c, &m->u.relation);
		case PGO_TYPE:
			return read_type(c, &m->u.type);
		case PGO_INSERT:
		case PGO_UPDATE:
		case PGO_DELETE:
			return read_change(d, c, m->kind, &m->u.change);
		case PGO_TRUNCATE:
			return read_truncate(d, c, &m->u.truncate);
		case PGO_MESSAGE:
			return read_logical_message(c, &m->u.message);
		case PGO_STREAM_START:
			return read_stream_start(c, &m->xid, &m->u.stream_start);
		case PGO_STREAM_STOP:
			return true;
		case PGO_STREAM_ABORT:
			return read_stream_abort(d, c, &m->xid, &m->u.stream_abort);
		case PGO_BEGIN_PREPARE:
			return read_prepare(c, false, &m->xid, &m->u.prepare);
		case PGO_PREPARE:
		case PGO_STREAM_PREPARE:
			return read_prepare(c, true, &m->xid, &m->u.prepare);
		case PGO_COMMIT_PREPARED:
		{
			PgoCommitPrepared *cp = &m->u.commit_prepared;

			return cur_flags(c, "flags", 0, &cp->flags) &&
			       cur_lsn_set(c, "commit_lsn", &cp->commit_lsn) &&
			       cur_lsn_set(c, "end_lsn", &cp->end_lsn) &&
			       cur_i64(c, &cp->commit_time_us) &&
			       cur_xid(c, "xid", &m->xid) && cur_string(c, "gid", &cp->gid);
		}
		case PGO_ROLLBACK_PREPARED:
		{
			PgoRollbackPrepared *rp = &m->u.rollback_prepared;

			return cur_flags(c, "flags", 0, &rp->flags) &&
			       cur_lsn_set(c, "prepare_end_lsn", &rp->prepare_end_lsn) &&
			       cur_lsn_set(c, "rollback_end_lsn", &rp->rollback_end_lsn) &&
			       cur_i64(c, &rp->prepare_time_us) &&
			       cur_i64(c, &rp->rollback_time_us) &&
			       cur_xid(c, "xid", &m->xid) && cur_string(c, "gid", &rp->gid);
		}
	}
	return err_set(c->err, ERR_INTERNAL, "pgoutput: no reader for %s message",
	               c->what);
}

static const MsgSpec *
find_spec(uint8_t type)
{
	size_t i;

	for (i = 0; i < sizeof(msg_specs) / sizeof(msg_specs[0]); i++)
		if (msg_specs[i].type == type)
			return &msg_specs[i];
	return NULL;
}

/* Whether the session's options and the stream state allow this message. */
static bool
check_allowed(const PgoDecoder *d, const MsgSpec *spec, Error *err)
{
	const char *name = pgoutput_kind_name(spec->kind);

	if (spec->streaming && d->opts.streaming == PGO_STREAMING_OFF)
		return err_set(err, ERR_SOURCE,
		               "pgoutput: unexpected %s message: streaming is off",
		               name);
	if (spec->two_phase && !d->opts.two_phase)
		return err_set(err, ERR_SOURCE,
		               "pgoutput: unexpected %s message: two_phase is off",
		               name);
	if (spec->where == WHERE_OUTSIDE && d->in_stream)
		return err_set(err, ERR_SOURCE,
		               "pgoutput: unexpected %s message inside the stream "
		               "block of transaction %u",
		               name, d->stream_xid);
	if (spec->where == WHERE_INSIDE && !d->in_stream)
		return err_set(err, ERR_SOURCE,
		               "pgoutput: unexpected %s message outside a stream "
		               "block",
		               name);
	return true;
}

PgoDecoder *
pgoutput_decoder_new(const PgoOptions *opts, Error *err)
{
	PgoDecoder *d;
	int v = opts->proto_version;

	if (v < 1 || v > 4)
	{
		err_set(err, ERR_INTERNAL, "pgoutput: unsupported protocol version %d",
		        v);
		return NULL;
	}
	if ((opts->streaming == PGO_STREAMING_ON && v < 2) ||
	    (opts->streaming == PGO_STREAMING_PARALLEL && v < 4) ||
	    (opts->streaming != PGO_STREAMING_OFF &&
	     opts->streaming != PGO_STREAMING_ON &&
	     opts->streaming != PGO_STREAMING_PARALLEL))
	{
		err_set(err, ERR_INTERNAL,
		        "pgoutput: streaming mode %d is not valid with protocol "
		        "version %d",
		        (int) opts->streaming, v);
		return NULL;
	}
	if (opts->two_phase && v < 3)
	{
		err_set(err, ERR_INTERNAL,
		        "pgoutput: two_phase needs protocol version 3, not %d", v);
		return NULL;
	}
	if (opts->replay_streamed && opts->streaming == PGO_STREAMING_OFF)
	{
		err_set(err, ERR_INTERNAL,
		        "pgoutput: replaying streamed transactions needs streaming on");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
	{
		err_set(err, ERR_INTERNAL, "pgoutput: out of memory");
		return NULL;
	}
	d->opts = *opts;
	/* replayed records are data messages of stream blocks, for good */
	d->in_stream = opts->replay_streamed;
	return d;
}

void
pgoutput_decoder_free(PgoDecoder *d)
{
	if (d == NULL)
		return;
	free(d->columns.mem);
	free(d->values[0].mem);
	free(d->values[1].mem);
	free(d->relids.mem);
	free(d);
}

bool
pgoutput_decode(PgoDecoder *d, const uint8_t *buf, size_t len, PgoMessage *out,
                Error *err)
{
	const MsgSpec *spec;
	PgoMessage m;
	Cursor c;
	char text[BYTE_TEXT_MAX];

	if (len == 0)
		return err_set(err, ERR_SOURCE, "pgoutput: empty message");
	spec = find_spec(buf[0]);
	if (spec == NULL)
		return err_set(err, ERR_SOURCE, "pgoutput: unknown message type %s",
		               byte_text(buf[0], text));
	if (!check_allowed(d, spec, err))
		return false;

	memset(&m, 0, sizeof(m));
	m.kind = spec->kind;
	c.buf = buf;
	c.len = len;
	c.pos = 1;
	c.what = pgoutput_kind_name(spec->kind);
	c.err = err;
	if (spec->stream_xid && d->in_stream && !cur_xid(&c, "xid", &m.xid))
		return false;
	if (!read_body(d, &c, &m))
		return false;
	if (c.pos != len)
		return err_set(err, ERR_SOURCE,
		               "pgoutput: %zu trailing bytes after %s message",
		               len - c.pos, c.what);

	if (m.kind == PGO_STREAM_START)
	{
		d->in_stream = true;
		d->stream_xid = m.xid;
	}
	else if (m.kind == PGO_STREAM_STOP)
	{
		d->in_stream = false;
		d->stream_xid = 0;
	}
	*out = m;
	return true;
}

bool
pgoutput_peek(const uint8_t *buf, size_t len, bool in_stream, PgoKind *kind,
              uint32_t *xid, Error *err)
{
	const MsgSpec *spec;
	char text[BYTE_TEXT_MAX];
	Cursor c;

	*xid = 0;
	if (len == 0)
		return err_set(err, ERR_SOURCE, "pgoutput: empty message");
	spec = find_spec(buf[0]);
	if (spec == NULL)
		return err_set(err, ERR_SOURCE, "pgoutput: unknown message type %s",
		               byte_text(buf[0], text));
	*kind = spec->kind;
	if (!spec->stream_xid || !in_stream)
		return true;
	c.buf = buf;
	c.len = len;
	c.pos = 1;
	c.what = pgoutput_kind_name(spec->kind);
	c.err = err;
	return cur_xid(&c, "xid", xid);
}

const char *
pgoutput_kind_name(PgoKind kind)
{
	if ((unsigned) kind >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "unknown";
	return kind_names[kind];
}
