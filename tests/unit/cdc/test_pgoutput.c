/*
 * Unit tests of pgoutput: every captured message decodes to what the
 * recorder (tests/tools/record_pgoutput.py) decoded on its own; every
 * truncated prefix and every message with trailing bytes fails cleanly;
 * hand-built messages exercise the caps, the stream state and each check.
 *
 * A fixture NAME.expect holds the session options, the enclosing stream
 * block ("in_stream_block XID" or "no"), a "--" line, and the rendering that
 * render() below must reproduce from NAME.bin.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdc/pgoutput.h"

#define FIXTURE_DIR  "tests/unit/cdc/fixtures/pgoutput/"
#define MAX_FIXTURES 128
/* Values longer than this render as length and FNV-1a hash. */
#define INLINE_MAX 64

typedef struct Fixture
{
	char name[128];
	uint8_t *bin; /* malloc'd, exactly len bytes */
	size_t len;
	PgoOptions opts;
	uint32_t stream_xid; /* 0: not in a stream block */
	char *expect;        /* the rendering after "--" */
} Fixture;

static Fixture fixtures[MAX_FIXTURES];
static int nfixtures;

/* ---- rendering, the same text as record_pgoutput.py ---- */

static void
put_quoted(FILE *f, const char *s, size_t len)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"')
			fputs("\\\"", f);
		else if (c == '\\')
			fputs("\\\\", f);
		else if (c >= 0x20 && c <= 0x7e)
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
	fputc('"', f);
}

static void
put_blob(FILE *f, const char *data, uint32_t len)
{
	uint32_t h = 0x811c9dc5;
	uint32_t i;

	fprintf(f, "%u ", len);
	if (len <= INLINE_MAX)
	{
		put_quoted(f, data, len);
		return;
	}
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char) data[i]) * 0x01000193u;
	fprintf(f, "fnv1a32=%08x", h);
}

static void
put_string(FILE *f, const char *label, const char *s)
{
	fprintf(f, "%s ", label);
	put_quoted(f, s, strlen(s));
	fputc('\n', f);
}

static void
put_lsn(FILE *f, const char *label, Lsn lsn)
{
	fprintf(f, "%s " LSN_FMT "\n", label, LSN_ARGS(lsn));
}

static void
put_tuple(FILE *f, const char *label, const PgoTuple *t)
{
	int i;

	fprintf(f, "%s %d\n", label, t->ncols);
	for (i = 0; i < t->ncols; i++)
	{
		const PgoValue *v = &t->values[i];

		fprintf(f, "  %c", v->kind);
		if (v->kind == 't' || v->kind == 'b')
		{
			fputc(' ', f);
			put_blob(f, v->data, v->len);
		}
		fputc('\n', f);
	}
}

/* Renders m as record_pgoutput.py does; the caller frees the result. */
static char *
render(const PgoMessage *m)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int i;

	assert_non_null(f);
	fprintf(f, "kind %s\nxid %u\n", pgoutput_kind_name(m->kind), m->xid);
	switch (m->kind)
	{
		case PGO_BEGIN:
			put_lsn(f, "final_lsn", m->u.begin.final_lsn);
			fprintf(f, "commit_time_us %lld\n",
			        (long long) m->u.begin.commit_time_us);
			break;
		case PGO_COMMIT:
		case PGO_STREAM_COMMIT:
			fprintf(f, "flags %u\n", m->u.commit.flags);
			put_lsn(f, "commit_lsn", m->u.commit.commit_lsn);
			put_lsn(f, "end_lsn", m->u.commit.end_lsn);
			fprintf(f, "commit_time_us %lld\n",
			        (long long) m->u.commit.commit_time_us);
			break;
		case PGO_ORIGIN:
			put_lsn(f, "origin_lsn", m->u.origin.origin_lsn);
			put_string(f, "name", m->u.origin.name);
			break;
		case PGO_RELATION:
		{
			const PgoRelation *r = &m->u.relation;

			fprintf(f, "relid %u\n", r->relid);
			put_string(f, "nspname", r->nspname);
			put_string(f, "relname", r->relname);
			fprintf(f, "replica_identity %c\nncols %d\n", r->replica_identity,
			        r->ncols);
			for (i = 0; i < r->ncols; i++)
			{
				fprintf(f, "column %s ", r->columns[i].key ? "key" : "-");
				put_quoted(f, r->columns[i].name, strlen(r->columns[i].name));
				fprintf(f, " %u %d\n", r->columns[i].type_oid,
				        r->columns[i].typmod);
			}
			break;
		}
		case PGO_TYPE:
			fprintf(f, "type_oid %u\n", m->u.type.type_oid);
			put_string(f, "nspname", m->u.type.nspname);
			put_string(f, "typname", m->u.type.typname);
			break;
		case PGO_INSERT:
			fprintf(f, "relid %u\n", m->u.change.relid);
			put_tuple(f, "new_tuple", &m->u.change.new_tuple);
			break;
		case PGO_UPDATE:
			fprintf(f, "relid %u\n", m->u.change.relid);
			if (m->u.change.old_kind == 0)
				fputs("old_kind none\n", f);
			else
			{
				fprintf(f, "old_kind %c\n", m->u.change.old_kind);
				put_tuple(f, "old_tuple", &m->u.change.old_tuple);
			}
			put_tuple(f, "new_tuple", &m->u.change.new_tuple);
			break;
		case PGO_DELETE:
			fprintf(f, "relid %u\nold_kind %c\n", m->u.change.relid,
			        m->u.change.old_kind);
			put_tuple(f, "old_tuple", &m->u.change.old_tuple);
			break;
		case PGO_TRUNCATE:
			fprintf(f, "options %u\nnrelids %d\n", m->u.truncate.options,
			        m->u.truncate.nrelids);
			for (i = 0; i < m->u.truncate.nrelids; i++)
				fprintf(f, "relid %u\n", m->u.truncate.relids[i]);
			break;
		case PGO_MESSAGE:
			fprintf(f, "flags %u\n", m->u.message.flags);
			put_lsn(f, "lsn", m->u.message.lsn);
			put_string(f, "prefix", m->u.message.prefix);
			fputs("content ", f);
			put_blob(f, (const char *) m->u.message.content,
			         m->u.message.content_len);
			fputc('\n', f);
			break;
		case PGO_STREAM_START:
			fprintf(f, "first_segment %d\n", m->u.stream_start.first_segment);
			break;
		case PGO_STREAM_STOP:
			break;
		case PGO_STREAM_ABORT:
			fprintf(f, "subxid %u\nhas_abort_info %d\n",
			        m->u.stream_abort.subxid, m->u.stream_abort.has_abort_info);
			if (m->u.stream_abort.has_abort_info)
			{
				put_lsn(f, "abort_lsn", m->u.stream_abort.abort_lsn);
				fprintf(f, "abort_time_us %lld\n",
				        (long long) m->u.stream_abort.abort_time_us);
			}
			break;
		case PGO_BEGIN_PREPARE:
		case PGO_PREPARE:
		case PGO_STREAM_PREPARE:
			fprintf(f, "flags %u\n", m->u.prepare.flags);
			put_lsn(f, "prepare_lsn", m->u.prepare.prepare_lsn);
			put_lsn(f, "end_lsn", m->u.prepare.end_lsn);
			fprintf(f, "prepare_time_us %lld\n",
			        (long long) m->u.prepare.prepare_time_us);
			put_string(f, "gid", m->u.prepare.gid);
			break;
		case PGO_COMMIT_PREPARED:
			fprintf(f, "flags %u\n", m->u.commit_prepared.flags);
			put_lsn(f, "commit_lsn", m->u.commit_prepared.commit_lsn);
			put_lsn(f, "end_lsn", m->u.commit_prepared.end_lsn);
			fprintf(f, "commit_time_us %lld\n",
			        (long long) m->u.commit_prepared.commit_time_us);
			put_string(f, "gid", m->u.commit_prepared.gid);
			break;
		case PGO_ROLLBACK_PREPARED:
		{
			const PgoRollbackPrepared *rp = &m->u.rollback_prepared;

			fprintf(f, "flags %u\n", rp->flags);
			put_lsn(f, "prepare_end_lsn", rp->prepare_end_lsn);
			put_lsn(f, "rollback_end_lsn", rp->rollback_end_lsn);
			fprintf(f, "prepare_time_us %lld\nrollback_time_us %lld\n",
			        (long long) rp->prepare_time_us,
			        (long long) rp->rollback_time_us);
			put_string(f, "gid", rp->gid);
			break;
		}
	}
	fclose(f);
	return text;
}

/* ---- views must point into the message ---- */

static void
assert_inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	assert_non_null(q);
	assert_true(q >= buf && q + n <= buf + len);
}

static void
assert_string_inside(const char *s, const uint8_t *buf, size_t len)
{
	assert_inside(s, strlen(s) + 1, buf, len);
}

static void
assert_tuple_inside(const PgoTuple *t, const uint8_t *buf, size_t len)
{
	int i;

	for (i = 0; i < t->ncols; i++)
	{
		const PgoValue *v = &t->values[i];

		if (v->kind == 't' || v->kind == 'b')
			assert_inside(v->data, v->len, buf, len);
		else
		{
			assert_null(v->data);
			assert_int_equal(v->len, 0);
		}
	}
}

static void
assert_views_inside(const PgoMessage *m, const uint8_t *buf, size_t len)
{
	int i;

	switch (m->kind)
	{
		case PGO_ORIGIN:
			assert_string_inside(m->u.origin.name, buf, len);
			break;
		case PGO_RELATION:
			if (strcmp(m->u.relation.nspname, "pg_catalog") != 0)
				assert_string_inside(m->u.relation.nspname, buf, len);
			assert_string_inside(m->u.relation.relname, buf, len);
			for (i = 0; i < m->u.relation.ncols; i++)
				assert_string_inside(m->u.relation.columns[i].name, buf, len);
			break;
		case PGO_TYPE:
			if (strcmp(m->u.type.nspname, "pg_catalog") != 0)
				assert_string_inside(m->u.type.nspname, buf, len);
			assert_string_inside(m->u.type.typname, buf, len);
			break;
		case PGO_INSERT:
		case PGO_UPDATE:
		case PGO_DELETE:
			assert_tuple_inside(&m->u.change.old_tuple, buf, len);
			assert_tuple_inside(&m->u.change.new_tuple, buf, len);
			break;
		case PGO_MESSAGE:
			assert_string_inside(m->u.message.prefix, buf, len);
			assert_inside(m->u.message.content, m->u.message.content_len, buf,
			              len);
			break;
		case PGO_BEGIN_PREPARE:
		case PGO_PREPARE:
		case PGO_STREAM_PREPARE:
			assert_string_inside(m->u.prepare.gid, buf, len);
			break;
		case PGO_COMMIT_PREPARED:
			assert_string_inside(m->u.commit_prepared.gid, buf, len);
			break;
		case PGO_ROLLBACK_PREPARED:
			assert_string_inside(m->u.rollback_prepared.gid, buf, len);
			break;
		default:
			break;
	}
}

/* ---- loading fixtures ---- */

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s (run from the repository root)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	/* one spare byte for a terminator; len excludes it */
	data = malloc((size_t) n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t) n, f), (size_t) n);
	data[n] = '\0';
	fclose(f);
	*len = (size_t) n;
	return data;
}

static void
parse_header_line(Fixture *fx, const char *line)
{
	char value[32];
	int n;

	if (line[0] == '#')
		return;
	if (sscanf(line, "proto_version %d", &n) == 1)
		fx->opts.proto_version = n;
	else if (sscanf(line, "streaming %31s", value) == 1)
		fx->opts.streaming = strcmp(value, "on") == 0 ? PGO_STREAMING_ON
		                     : strcmp(value, "parallel") == 0
		                         ? PGO_STREAMING_PARALLEL
		                         : PGO_STREAMING_OFF;
	else if (sscanf(line, "two_phase %31s", value) == 1)
		fx->opts.two_phase = strcmp(value, "on") == 0;
	else if (sscanf(line, "in_stream_block %31s", value) == 1)
		fx->stream_xid =
		    strcmp(value, "no") == 0 ? 0 : (uint32_t) strtoul(value, NULL, 10);
	else
		fail_msg("%s.expect: unknown header line \"%s\"", fx->name, line);
}

static void
parse_expect(Fixture *fx, char *text)
{
	char *line = text;
	char *sep = strstr(text, "\n--\n");

	if (sep == NULL)
		fail_msg("%s.expect: no \"--\" line", fx->name);
	*sep = '\0';
	fx->expect = strdup(sep + 4);
	assert_non_null(fx->expect);
	while (line != NULL && *line != '\0')
	{
		char *next = strchr(line, '\n');

		if (next != NULL)
			*next++ = '\0';
		parse_header_line(fx, line);
		line = next;
	}
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const Fixture *) a)->name, ((const Fixture *) b)->name);
}

static int
load_fixtures(void **state)
{
	DIR *dir = opendir(FIXTURE_DIR);
	struct dirent *e;

	(void) state;
	if (dir == NULL)
	{
		fprintf(stderr, "cannot open %s (run from the repository root)\n",
		        FIXTURE_DIR);
		return -1;
	}
	while ((e = readdir(dir)) != NULL)
	{
		size_t n = strlen(e->d_name);
		Fixture *fx;
		char path[512];
		char *text;
		size_t tlen;

		if (n < 5 || strcmp(e->d_name + n - 4, ".bin") != 0)
			continue;
		if (nfixtures == MAX_FIXTURES || n - 4 >= sizeof(fx->name))
			return -1;
		fx = &fixtures[nfixtures++];
		memcpy(fx->name, e->d_name, n - 4);
		fx->name[n - 4] = '\0';
		snprintf(path, sizeof(path), FIXTURE_DIR "%s.bin", fx->name);
		fx->bin = (uint8_t *) read_file(path, &fx->len);
		snprintf(path, sizeof(path), FIXTURE_DIR "%s.expect", fx->name);
		text = read_file(path, &tlen);
		parse_expect(fx, text);
		free(text);
	}
	closedir(dir);
	qsort(fixtures, (size_t) nfixtures, sizeof(Fixture), by_name);
	return 0;
}

static int
free_fixtures(void **state)
{
	int i;

	(void) state;
	for (i = 0; i < nfixtures; i++)
	{
		free(fixtures[i].bin);
		free(fixtures[i].expect);
	}
	return 0;
}

/* ---- building messages by hand ---- */

typedef struct Msg
{
	uint8_t b[65536];
	size_t len;
} Msg;

static Msg msg;

static void
m_reset(uint8_t type)
{
	msg.len = 0;
	msg.b[msg.len++] = type;
}

static void
m_u8(unsigned v)
{
	assert_true(msg.len < sizeof(msg.b));
	msg.b[msg.len++] = (uint8_t) v;
}

static void
m_u16(unsigned v)
{
	m_u8(v >> 8);
	m_u8(v & 0xff);
}

static void
m_u32(uint32_t v)
{
	m_u16(v >> 16);
	m_u16(v & 0xffff);
}

static void
m_u64(uint64_t v)
{
	m_u32((uint32_t) (v >> 32));
	m_u32((uint32_t) v);
}

static void
m_str(const char *s)
{
	size_t n = strlen(s) + 1;

	assert_true(msg.len + n <= sizeof(msg.b));
	memcpy(msg.b + msg.len, s, n);
	msg.len += n;
}

/* A decoder for opts; NULL opts means protocol 2 with streaming on. */
static PgoDecoder *
new_decoder(const PgoOptions *opts)
{
	PgoOptions def = {.proto_version = 2, .streaming = PGO_STREAMING_ON};
	Error err = ERR_INIT;
	PgoDecoder *d = pgoutput_decoder_new(opts != NULL ? opts : &def, &err);

	if (d == NULL)
		fail_msg("pgoutput_decoder_new: %s", err.message);
	return d;
}

/* Decodes msg in place; asserts success. Views live until msg changes. */
static void
decode_ok(PgoDecoder *d, PgoMessage *out)
{
	Error err = ERR_INIT;

	if (!pgoutput_decode(d, msg.b, msg.len, out, &err))
		fail_msg("unexpected error: %s", err.message);
}

/*
 * Decodes an exact-size copy of msg (so ASan sees any overread); asserts
 * failure with the given message.
 */
static void
decode_fails(PgoDecoder *d, const char *message)
{
	uint8_t *copy = malloc(msg.len > 0 ? msg.len : 1);
	Error err = ERR_INIT;
	PgoMessage out;

	assert_non_null(copy);
	memcpy(copy, msg.b, msg.len);
	memset(&out, 0xa5, sizeof(out));
	assert_false(pgoutput_decode(d, copy, msg.len, &out, &err));
	assert_int_equal(err.kind, ERR_SOURCE);
	assert_string_equal(err.message, message);
	free(copy);
}

static void
enter_stream(PgoDecoder *d, uint32_t xid)
{
	PgoMessage m;

	m_reset('S');
	m_u32(xid);
	m_u8(1);
	decode_ok(d, &m);
	assert_int_equal(m.kind, PGO_STREAM_START);
}

/* ---- fixture tests ---- */

static PgoDecoder *
fixture_decoder(const Fixture *fx)
{
	PgoDecoder *d = new_decoder(&fx->opts);

	if (fx->stream_xid != 0)
		enter_stream(d, fx->stream_xid);
	return d;
}

static void
test_fixtures_decode(void **state)
{
	bool seen[PGO_STREAM_PREPARE + 1] = {false};
	int i;
	int k;

	(void) state;
	assert_true(nfixtures >= 30);
	for (i = 0; i < nfixtures; i++)
	{
		const Fixture *fx = &fixtures[i];
		PgoDecoder *d = fixture_decoder(fx);
		Error err = ERR_INIT;
		PgoMessage m;
		char *text;

		if (!pgoutput_decode(d, fx->bin, fx->len, &m, &err))
			fail_msg("%s: %s", fx->name, err.message);
		text = render(&m);
		if (strcmp(text, fx->expect) != 0)
			fail_msg("%s: decoded\n%s\nexpected\n%s", fx->name, text,
			         fx->expect);
		assert_views_inside(&m, fx->bin, fx->len);
		seen[m.kind] = true;
		free(text);
		pgoutput_decoder_free(d);
	}
	for (k = 0; k <= PGO_STREAM_PREPARE; k++)
		if (!seen[k])
			fail_msg("no fixture of kind %s", pgoutput_kind_name(k));
}

/*
 * The receiver's peek agrees with the decoder on every fixture (kind, and
 * the in-stream xid), and fails rather than read past a truncated prefix.
 */
static void
test_fixtures_peek(void **state)
{
	(void) state;
	for (int i = 0; i < nfixtures; i++)
	{
		const Fixture *fx = &fixtures[i];
		PgoDecoder *d = fixture_decoder(fx);
		Error err = ERR_INIT;
		PgoMessage m;
		PgoKind kind;
		uint32_t xid;
		bool in_stream = fx->stream_xid != 0;

		if (!pgoutput_peek(fx->bin, fx->len, in_stream, &kind, &xid, &err))
			fail_msg("%s: %s", fx->name, err.message);
		if (!pgoutput_decode(d, fx->bin, fx->len, &m, &err))
			fail_msg("%s: %s", fx->name, err.message);
		assert_int_equal(kind, m.kind);
		if (in_stream && (m.kind == PGO_INSERT || m.kind == PGO_UPDATE ||
		                  m.kind == PGO_DELETE || m.kind == PGO_RELATION ||
		                  m.kind == PGO_TYPE || m.kind == PGO_TRUNCATE ||
		                  m.kind == PGO_MESSAGE))
			assert_int_equal(xid, m.xid);
		for (size_t n = 0; n < fx->len && n < 5; n++)
		{
			Error e2 = ERR_INIT;
			bool ok = pgoutput_peek(fx->bin, n, in_stream, &kind, &xid, &e2);

			/* a prefix is enough only when it holds all that peek reads */
			if (ok && n == 0)
				fail_msg("%s: peek accepted an empty message", fx->name);
			if (!ok)
				assert_int_equal(e2.kind, ERR_SOURCE);
		}
		pgoutput_decoder_free(d);
	}
}

/*
 * A decoder for replayed streamed records reads their data messages with
 * the xid prefix without any Stream Start, and refuses what only a live
 * stream sends.
 */
static void
test_replay_streamed(void **state)
{
	PgoOptions opts = {.proto_version = 2,
	                   .streaming = PGO_STREAMING_ON,
	                   .replay_streamed = true};
	PgoOptions off = {.proto_version = 1, .replay_streamed = true};
	PgoDecoder *d = new_decoder(&opts);
	Error err = ERR_INIT;
	int tried = 0;

	(void) state;
	for (int i = 0; i < nfixtures; i++)
	{
		const Fixture *fx = &fixtures[i];
		PgoMessage m;

		if (fx->stream_xid == 0 || fx->bin[0] != 'I')
			continue;
		if (!pgoutput_decode(d, fx->bin, fx->len, &m, &err))
			fail_msg("%s: %s", fx->name, err.message);
		assert_int_equal(m.kind, PGO_INSERT);
		assert_true(m.xid != 0);
		tried++;
	}
	assert_true(tried > 0);
	m_reset('B');
	m_u64(0x1000);
	m_u64(1);
	m_u32(700);
	decode_fails(d, "pgoutput: unexpected Begin message inside the stream "
	                "block of transaction 0");
	pgoutput_decoder_free(d);
	assert_null(pgoutput_decoder_new(&off, &err));
	assert_int_equal(err.kind, ERR_INTERNAL);
}

static void
test_fixtures_truncated(void **state)
{
	int i;

	(void) state;
	for (i = 0; i < nfixtures; i++)
	{
		const Fixture *fx = &fixtures[i];
		PgoDecoder *d = fixture_decoder(fx);
		Error err = ERR_INIT;
		PgoMessage m;
		size_t n;

		/*
		 * Every prefix in an exact-size buffer: a read past its end is an
		 * ASan report. Failures leave the stream state alone, so the same
		 * decoder still decodes the whole message afterwards.
		 */
		for (n = 0; n < fx->len; n++)
		{
			uint8_t *prefix = malloc(n > 0 ? n : 1);

			assert_non_null(prefix);
			memcpy(prefix, fx->bin, n);
			err_clear(&err);
			if (pgoutput_decode(d, prefix, n, &m, &err))
				fail_msg("%s: prefix of %zu bytes decoded", fx->name, n);
			assert_int_equal(err.kind, ERR_SOURCE);
			assert_true(strncmp(err.message, "pgoutput: ", 10) == 0);
			free(prefix);
		}
		err_clear(&err);
		if (!pgoutput_decode(d, fx->bin, fx->len, &m, &err))
			fail_msg("%s: %s", fx->name, err.message);
		pgoutput_decoder_free(d);
	}
}

static void
test_fixtures_trailing_bytes(void **state)
{
	int i;

	(void) state;
	for (i = 0; i < nfixtures; i++)
	{
		const Fixture *fx = &fixtures[i];
		PgoDecoder *d = fixture_decoder(fx);
		Error err = ERR_INIT;
		PgoMessage m;
		uint8_t *longer = calloc(fx->len + 3, 1);
		char want[128];

		assert_non_null(longer);
		assert_true(pgoutput_decode(d, fx->bin, fx->len, &m, &err));
		pgoutput_decoder_free(d);
		snprintf(want, sizeof(want),
		         "pgoutput: 3 trailing bytes after %s message",
		         pgoutput_kind_name(m.kind));

		d = fixture_decoder(fx);
		memcpy(longer, fx->bin, fx->len);
		assert_false(pgoutput_decode(d, longer, fx->len + 3, &m, &err));
		assert_string_equal(err.message, want);
		free(longer);
		pgoutput_decoder_free(d);
	}
}

/* ---- hand-built messages ---- */

static void
test_unknown_and_empty(void **state)
{
	PgoDecoder *d = new_decoder(NULL);

	(void) state;
	m_reset('x');
	decode_fails(d, "pgoutput: unknown message type 'x' (0x78)");
	m_reset(0x01);
	decode_fails(d, "pgoutput: unknown message type 0x01");
	m_reset('B');
	msg.len = 0;
	decode_fails(d, "pgoutput: empty message");
	pgoutput_decoder_free(d);
}

static void
test_trailing_bytes_message(void **state)
{
	PgoDecoder *d = new_decoder(NULL);

	(void) state;
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(1);
	m_u8('n');
	m_u8(1);
	m_u8(2);
	m_u8(3);
	decode_fails(d, "pgoutput: 3 trailing bytes after Insert message");
	pgoutput_decoder_free(d);
}

static void
test_stream_state(void **state)
{
	PgoDecoder *d = new_decoder(NULL);
	PgoMessage m;

	(void) state;
	m_reset('E');
	decode_fails(d, "pgoutput: unexpected Stream Stop message outside a "
	                "stream block");

	enter_stream(d, 700);
	m_reset('S');
	m_u32(701);
	m_u8(1);
	decode_fails(d, "pgoutput: unexpected Stream Start message inside the "
	                "stream block of transaction 700");
	m_reset('B');
	m_u64(0x1000);
	m_u64(0);
	m_u32(702);
	decode_fails(d, "pgoutput: unexpected Begin message inside the stream "
	                "block of transaction 700");
	m_reset('C');
	decode_fails(d, "pgoutput: unexpected Commit message inside the stream "
	                "block of transaction 700");
	m_reset('c');
	decode_fails(d, "pgoutput: unexpected Stream Commit message inside the "
	                "stream block of transaction 700");

	/* inside the block a change carries an xid first, never 0 */
	m_reset('I');
	m_u32(0);
	m_u32(16384);
	m_u8('N');
	m_u16(0);
	decode_fails(d, "pgoutput: invalid xid 0 in Insert message at byte 1");
	m_reset('I');
	m_u32(701);
	m_u32(16384);
	m_u8('N');
	m_u16(0);
	decode_ok(d, &m);
	assert_int_equal(m.kind, PGO_INSERT);
	assert_int_equal(m.xid, 701);
	assert_int_equal(m.u.change.relid, 16384);
	assert_int_equal(m.u.change.new_tuple.ncols, 0);

	/* a failed Stream Stop leaves the decoder inside the block */
	m_reset('E');
	m_u8(0);
	decode_fails(d, "pgoutput: 1 trailing bytes after Stream Stop message");
	m_reset('E');
	decode_ok(d, &m);
	assert_int_equal(m.kind, PGO_STREAM_STOP);

	/* outside again: the same Insert bytes now lack an xid */
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(0);
	decode_ok(d, &m);
	assert_int_equal(m.xid, 0);
	m_reset('E');
	decode_fails(d, "pgoutput: unexpected Stream Stop message outside a "
	                "stream block");
	pgoutput_decoder_free(d);
}

static void
test_options(void **state)
{
	PgoOptions bad[] = {
	    {.proto_version = 0},
	    {.proto_version = 5},
	    {.proto_version = 1, .streaming = PGO_STREAMING_ON},
	    {.proto_version = 3, .streaming = PGO_STREAMING_PARALLEL},
	    {.proto_version = 2, .two_phase = true},
	    {.proto_version = 4, .streaming = (PgoStreaming) 7},
	};
	PgoOptions v1 = {.proto_version = 1};
	PgoDecoder *d;
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		Error err = ERR_INIT;

		assert_null(pgoutput_decoder_new(&bad[i], &err));
		assert_int_equal(err.kind, ERR_INTERNAL);
	}
	pgoutput_decoder_free(NULL);

	d = new_decoder(&v1);
	m_reset('S');
	m_u32(700);
	m_u8(1);
	decode_fails(d, "pgoutput: unexpected Stream Start message: streaming "
	                "is off");
	m_reset('P');
	decode_fails(d, "pgoutput: unexpected Prepare message: two_phase is off");
	pgoutput_decoder_free(d);
}

static void
test_absurd_counts(void **state)
{
	PgoDecoder *d = new_decoder(NULL);
	PgoMessage m;
	int i;

	(void) state;
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(65535);
	decode_fails(d, "pgoutput: Insert message has a tuple of 65535 columns, "
	                "more than the maximum 1664");
	m_reset('R');
	m_u32(16384);
	m_str("public");
	m_str("t");
	m_u8('d');
	m_u16(1665);
	decode_fails(d, "pgoutput: Relation message has 1665 columns, more than "
	                "the maximum 1664");

	/* a plausible count with no bytes behind it fails before allocating */
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(1664);
	m_u8('n');
	decode_fails(d, "pgoutput: Insert message truncated at byte 8: needs "
	                "1664 more bytes, has 1");
	m_reset('T');
	m_u32(1000000);
	m_u8(0);
	decode_fails(d, "pgoutput: Truncate message truncated at byte 6: needs "
	                "4000000 more bytes, has 0");
	m_reset('T');
	m_u32(1000001);
	m_u8(0);
	decode_fails(d, "pgoutput: Truncate message has 1000001 relations, "
	                "outside 0..1000000");
	m_reset('T');
	m_u32(0xffffffff);
	m_u8(0);
	decode_fails(d, "pgoutput: Truncate message has -1 relations, outside "
	                "0..1000000");

	/* the caps themselves are fine, and scratch grows to them */
	m_reset('R');
	m_u32(16384);
	m_str("");
	m_str("wide");
	m_u8('f');
	m_u16(PGO_MAX_COLUMNS);
	for (i = 0; i < PGO_MAX_COLUMNS; i++)
	{
		char name[16];

		snprintf(name, sizeof(name), "c%d", i);
		m_u8(1);
		m_str(name);
		m_u32(23);
		m_u32(0xffffffff);
	}
	decode_ok(d, &m);
	assert_int_equal(m.u.relation.ncols, PGO_MAX_COLUMNS);
	assert_string_equal(m.u.relation.nspname, "pg_catalog");
	assert_string_equal(m.u.relation.columns[1663].name, "c1663");
	assert_true(m.u.relation.columns[1663].key);
	assert_int_equal(m.u.relation.columns[1663].typmod, -1);
	assert_views_inside(&m, msg.b, msg.len);

	m_reset('U');
	m_u32(16384);
	m_u8('O');
	m_u16(PGO_MAX_COLUMNS);
	for (i = 0; i < PGO_MAX_COLUMNS; i++)
		m_u8('n');
	m_u8('N');
	m_u16(PGO_MAX_COLUMNS);
	for (i = 0; i < PGO_MAX_COLUMNS; i++)
	{
		m_u8('t');
		m_u32(1);
		m_u8('a' + i % 26);
	}
	decode_ok(d, &m);
	assert_int_equal(m.u.change.old_kind, 'O');
	assert_int_equal(m.u.change.old_tuple.ncols, PGO_MAX_COLUMNS);
	assert_int_equal(m.u.change.new_tuple.ncols, PGO_MAX_COLUMNS);
	assert_int_equal(m.u.change.old_tuple.values[1663].kind, 'n');
	assert_int_equal(m.u.change.new_tuple.values[1663].data[0],
	                 'a' + 1663 % 26);
	assert_views_inside(&m, msg.b, msg.len);
	pgoutput_decoder_free(d);
}

static void
test_bad_fields(void **state)
{
	PgoDecoder *d = new_decoder(NULL);

	(void) state;
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(1);
	m_u8('t');
	m_u32(0xfffffffe);
	decode_fails(d, "pgoutput: negative value length -2 in Insert message "
	                "at byte 9");
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(1);
	m_u8('t');
	m_u32(5);
	m_u8('a');
	decode_fails(d, "pgoutput: Insert message truncated at byte 13: needs 5 "
	                "more bytes, has 1");
	m_reset('I');
	m_u32(16384);
	m_u8('N');
	m_u16(1);
	m_u8('x');
	decode_fails(d, "pgoutput: unknown column value kind 'x' (0x78) in "
	                "Insert message at byte 8");
	m_reset('I');
	m_u32(16384);
	m_u8('K');
	decode_fails(d, "pgoutput: unknown tuple marker 'K' (0x4b) in Insert "
	                "message at byte 5");
	m_reset('D');
	m_u32(16384);
	m_u8('N');
	decode_fails(d, "pgoutput: unknown tuple marker 'N' (0x4e) in Delete "
	                "message at byte 5");
	m_reset('U');
	m_u32(16384);
	m_u8('K');
	m_u16(0);
	m_u8('K');
	decode_fails(d, "pgoutput: unknown tuple marker 'K' (0x4b) in Update "
	                "message at byte 8");
	m_reset('R');
	m_u32(16384);
	m_str("public");
	m_str("t");
	m_u8('z');
	decode_fails(d, "pgoutput: unknown replica identity 'z' (0x7a) in "
	                "Relation message at byte 14");
	m_reset('R');
	m_u32(16384);
	m_str("public");
	m_u8('t');
	decode_fails(d, "pgoutput: Relation message truncated at byte 12: "
	                "relation name has no terminating NUL");
	m_reset('R');
	m_u32(16384);
	m_str("public");
	m_str("t");
	m_u8('d');
	m_u16(1);
	m_u8(2);
	m_str("c");
	m_u32(23);
	m_u32(0);
	decode_fails(d, "pgoutput: unknown column flags 0x02 in Relation message "
	                "at byte 17");
	m_reset('C');
	m_u8(1);
	m_u64(1);
	m_u64(2);
	m_u64(3);
	decode_fails(d, "pgoutput: unknown flags 0x01 in Commit message at byte "
	                "1");
	m_reset('M');
	m_u8(2);
	decode_fails(d, "pgoutput: unknown message flags 0x02 in Message message "
	                "at byte 1");
	m_reset('T');
	m_u32(1);
	m_u8(4);
	m_u32(16384);
	decode_fails(d, "pgoutput: unknown truncate options 0x04 in Truncate "
	                "message at byte 5");
	m_reset('S');
	m_u32(700);
	m_u8(2);
	decode_fails(d, "pgoutput: unknown first-segment flag 0x02 in Stream "
	                "Start message at byte 5");
	m_reset('S');
	m_u32(0);
	m_u8(1);
	decode_fails(d, "pgoutput: invalid xid 0 in Stream Start message at "
	                "byte 1");
	m_reset('B');
	m_u64(0);
	m_u64(0);
	m_u32(700);
	decode_fails(d, "pgoutput: final_lsn is 0/0 in Begin message at byte 1");
	m_reset('A');
	m_u32(700);
	m_u32(0);
	decode_fails(d, "pgoutput: invalid subxid 0 in Stream Abort message at "
	                "byte 5");
	pgoutput_decoder_free(d);
}

static void
test_stream_abort_parallel(void **state)
{
	PgoOptions v4 = {.proto_version = 4, .streaming = PGO_STREAMING_PARALLEL};
	PgoDecoder *par = new_decoder(&v4);
	PgoDecoder *on = new_decoder(NULL);
	PgoMessage m;

	(void) state;
	m_reset('A');
	m_u32(700);
	m_u32(701);
	m_u64(0x100000ABCULL);
	m_u64(790000000000000ULL);
	decode_ok(par, &m);
	assert_int_equal(m.kind, PGO_STREAM_ABORT);
	assert_int_equal(m.xid, 700);
	assert_int_equal(m.u.stream_abort.subxid, 701);
	assert_true(m.u.stream_abort.has_abort_info);
	assert_int_equal(m.u.stream_abort.abort_lsn, 0x100000ABCULL);
	assert_int_equal(m.u.stream_abort.abort_time_us, 790000000000000LL);
	decode_fails(on, "pgoutput: 16 trailing bytes after Stream Abort message");

	m_reset('A');
	m_u32(700);
	m_u32(700);
	decode_ok(on, &m);
	assert_false(m.u.stream_abort.has_abort_info);
	assert_int_equal(m.u.stream_abort.abort_lsn, 0);
	decode_fails(par, "pgoutput: Stream Abort message truncated at byte 9: "
	                  "needs 8 more bytes, has 0");
	pgoutput_decoder_free(par);
	pgoutput_decoder_free(on);
}

static void
test_logical_message(void **state)
{
	PgoDecoder *d = new_decoder(NULL);
	PgoMessage m;

	(void) state;
	m_reset('M');
	m_u8(PGO_MESSAGE_TRANSACTIONAL);
	m_u64(0x2A);
	m_str("pfx");
	m_u32(3);
	m_u8(0);
	m_u8('a');
	m_u8(0);
	decode_ok(d, &m);
	assert_int_equal(m.u.message.flags, PGO_MESSAGE_TRANSACTIONAL);
	assert_int_equal(m.u.message.lsn, 0x2A);
	assert_string_equal(m.u.message.prefix, "pfx");
	assert_int_equal(m.u.message.content_len, 3);
	assert_memory_equal(m.u.message.content, "\0a\0", 3);
	assert_views_inside(&m, msg.b, msg.len);
	pgoutput_decoder_free(d);
}

static void
test_first_error_kept(void **state)
{
	PgoDecoder *d = new_decoder(NULL);
	Error err = ERR_INIT;
	PgoMessage m;
	PgoMessage before;

	(void) state;
	err_set(&err, ERR_TARGET, "earlier failure");
	memset(&m, 0x5a, sizeof(m));
	before = m;
	m_reset('x');
	assert_false(pgoutput_decode(d, msg.b, msg.len, &m, &err));
	assert_int_equal(err.kind, ERR_TARGET);
	assert_string_equal(err.message, "earlier failure");
	/* *out is untouched on failure */
	assert_memory_equal(&m, &before, sizeof(m));
	pgoutput_decoder_free(d);
}

static void
test_kind_names(void **state)
{
	int k;

	(void) state;
	for (k = PGO_BEGIN; k <= PGO_STREAM_PREPARE; k++)
		assert_string_not_equal(pgoutput_kind_name((PgoKind) k), "unknown");
	assert_string_equal(pgoutput_kind_name(PGO_STREAM_START), "Stream Start");
	assert_string_equal(pgoutput_kind_name((PgoKind) 99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixtures_decode),
	    cmocka_unit_test(test_fixtures_peek),
	    cmocka_unit_test(test_replay_streamed),
	    cmocka_unit_test(test_fixtures_truncated),
	    cmocka_unit_test(test_fixtures_trailing_bytes),
	    cmocka_unit_test(test_unknown_and_empty),
	    cmocka_unit_test(test_trailing_bytes_message),
	    cmocka_unit_test(test_stream_state),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_absurd_counts),
	    cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_stream_abort_parallel),
	    cmocka_unit_test(test_logical_message),
	    cmocka_unit_test(test_first_error_kept),
	    cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, load_fixtures, free_fixtures);
}
