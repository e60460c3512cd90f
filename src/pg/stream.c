/*
 * stream: publication, slot and exported snapshot on the source.
 */
#include "pg/stream.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "pg/feed.h"

/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

struct StreamConn
{
	PgConn *conn;  /* NULL: read from this process's feed (pg/feed) */
	char *copybuf; /* the last message from PQgetCopyData, PQfreemem'd */
	FeedFrame frame;
};

/*
 * The guard: an open REPEATABLE READ transaction whose snapshot, taken before
 * the slot is created, keeps every row version the exported snapshot needs.
 * It has no transaction id, so the slot's creation does not wait for it.
 */
static bool
open_guard(const char *source_uri, PgConn **out, Error *err)
{
	if (!pg_connect(source_uri, ERR_SOURCE, PG_CONN_SQL,
	                "pgtide snapshot guard", 5000, out, err))
		return false;
	if (!pg_exec(*out,
	             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1",
	             err))
	{
		pg_close(*out);
		*out = NULL;
		return false;
	}
	return true;
}

bool
stream_create_slot(const char *source_uri, const char *slot, bool temporary,
                   SlotSnapshot *out, Error *err)
{
	PGresult *res;
	char sql[256];
	int v;

	/* out owns each connection as soon as it exists: stream_release undoes
	 * a half-made snapshot */
	memset(out, 0, sizeof(*out));
	if (!open_guard(source_uri, &out->guard, err) ||
	    !pg_connect(source_uri, ERR_SOURCE, PG_CONN_REPLICATION,
	                "pgtide snapshot", 5000, &out->conn, err))
	{
		stream_release(out);
		return false;
	}
	v = pg_server_version(out->conn);
	/* 15 replaced EXPORT_SNAPSHOT with an option list. */
	snprintf(sql, sizeof(sql),
	         "CREATE_REPLICATION_SLOT %s %s LOGICAL pgoutput %s", slot,
	         temporary ? "TEMPORARY" : "",
	         v >= 150000 ? "(SNAPSHOT 'export')" : "EXPORT_SNAPSHOT");
	if (!pg_query(out->conn, sql, 0, NULL, &res, err))
	{
		if (pg_err_is(err, "53400"))
			err_hint(err, "raise max_replication_slots on the source, or drop "
			              "unused slots (see pg_replication_slots)");
		err_prefix(err, "could not create replication slot \"%s\": ", slot);
		stream_release(out);
		return false;
	}
	if (PQntuples(res) != 1 || PQnfields(res) < 3 ||
	    !lsn_parse(PQgetvalue(res, 0, 1), &out->consistent_lsn))
	{
		PQclear(res);
		stream_release(out);
		return err_set(err, ERR_SOURCE,
		               "unexpected reply to CREATE_REPLICATION_SLOT");
	}
	snprintf(out->slot, sizeof(out->slot), "%s", slot);
	snprintf(out->snapshot, sizeof(out->snapshot), "%s", PQgetvalue(res, 0, 2));
	out->temporary = temporary;
	PQclear(res);
	return true;
}

bool
stream_begin_snapshot(PgConn *conn, const char *snapshot, Error *err)
{
	char *lit;
	bool ok;

	if (!pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
		return false;
	if (snapshot == NULL)
		return true;
	lit = pg_quote_literal(snapshot);
	if (lit == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_execf(conn, err, "SET TRANSACTION SNAPSHOT %s", lit);
	free(lit);
	return ok;
}

bool
stream_snapshot_gone(const Error *err)
{
	/* 22023: no such snapshot; 0A000: its exporting transaction ended */
	return pg_err_is(err, "22023") || pg_err_is(err, "0A000");
}

void
stream_release(SlotSnapshot *snap)
{
	pg_close(snap->conn);
	pg_close(snap->guard);
	snap->conn = NULL;
	snap->guard = NULL;
}

bool
stream_slot_exists(PgConn *src, const char *slot, bool *exists, Error *err)
{
	const char *params[1] = {slot};
	PGresult *res;

	if (!pg_query(src,
	              "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", 1,
	              params, &res, err))
		return false;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

bool
stream_drop_slot(PgConn *src, const char *slot, Error *err)
{
	const char *params[1] = {slot};
	PGresult *res;

	if (!pg_query(src,
	              "SELECT pg_drop_replication_slot(slot_name)"
	              " FROM pg_replication_slots WHERE slot_name = $1",
	              1, params, &res, err))
		return err_prefix(err,
		                  "could not drop replication slot \"%s\": ", slot);
	PQclear(res);
	return true;
}

/* a walsender told to end is gone within a second, unless the server hangs */
#define LOST_SLOT_WAIT_MS 30000

bool
stream_drop_lost_slot(PgConn *src, const char *slot, Error *err)
{
	const char *params[1] = {slot};

	for (int waited_ms = 0;; waited_ms += 100)
	{
		PGresult *res;
		bool gone, held;

		if (!pg_query(src,
		              "SELECT active_pid, pg_catalog.pg_terminate_backend("
		              "active_pid) FROM pg_catalog.pg_replication_slots"
		              " WHERE slot_name = $1",
		              1, params, &res, err))
			return err_prefix(err,
			                  "could not end the session holding replication "
			                  "slot \"%s\": ",
			                  slot);
		gone = PQntuples(res) == 0;
		held = !gone && !PQgetisnull(res, 0, 0);
		PQclear(res);
		if (gone)
			return true;
		if (!held)
			return stream_drop_slot(src, slot, err);
		if (waited_ms >= LOST_SLOT_WAIT_MS)
		{
			err_set(err, ERR_SOURCE,
			        "replication slot \"%s\" is still held by a lost "
			        "session after %d s",
			        slot, LOST_SLOT_WAIT_MS / 1000);
			err->retryable = true;
			return false;
		}
		clock_sleep_ms(100);
	}
}

bool
stream_create_publication(PgConn *src, const char *name, const char *publish,
                          char *const *qtables, int ntables, Error *err)
{
	const char *params[1] = {name};
	PGresult *res;
	char *qname;
	Buf sql = BUF_INIT(STREAM_PUBLICATION_SQL_MAX);
	bool exists, ok;

	if (!pg_query(src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
	              params, &res, err))
		return false;
	exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists)
		return true;
	qname = pg_quote_ident(name);
	if (qname == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	buf_printf(&sql, NULL, "CREATE PUBLICATION %s%s", qname,
	           ntables > 0 ? " FOR TABLE " : "");
	free(qname);
	for (int i = 0; i < ntables; i++)
		buf_printf(&sql, NULL, "%s%s", i ? ", " : "", qtables[i]);
	if (publish != NULL)
		buf_printf(&sql, NULL, " WITH (publish = '%s')", publish);
	ok = buf_check(&sql, err) && pg_exec(src, buf_str(&sql), err);
	buf_free(&sql);
	if (!ok)
		return err_prefix(err, "could not create publication \"%s\": ", name);
	return true;
}

/*
 * Waits until every source transaction that held an xid when this began has
 * ended, saying so every 10 seconds.
 */
static bool
wait_for_older_transactions(PgConn *src, const char *why,
                            const atomic_int *stop, Error *err)
{
	char xmax[32], done[8];
	const char *params[1] = {xmax};
	int64_t start = clock_ms(), said = start;

	if (!pg_query_value(src,
	                    "SELECT txid_snapshot_xmax(txid_current_snapshot())", 0,
	                    NULL, xmax, sizeof(xmax), err))
		return false;
	for (;;)
	{
		if (!pg_query_value(src,
		                    "SELECT txid_snapshot_xmin(txid_current_snapshot())"
		                    " >= $1::bigint",
		                    1, params, done, sizeof(done), err))
			return false;
		if (done[0] == 't')
			return true;
		if (stop != NULL && atomic_load(stop))
			return err_set(err, ERR_INTERRUPTED, "interrupted");
		if (clock_ms() - said >= 10000)
		{
			said = clock_ms();
			log_info("%s: waiting %lld s for the source's transactions "
			         "older than transaction %s to end",
			         why, (long long) ((said - start) / 1000), xmax);
		}
		clock_sleep_ms(100);
	}
}

bool
stream_publication_add(PgConn *src, const char *name, char *const *qtables,
                       int ntables, const atomic_int *stop, Error *err)
{
	const char *params[2] = {name, NULL};
	char *qname = pg_quote_ident(name);
	char in[8], publish[64];
	int added = 0;
	bool ok = qname != NULL;

	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; ok && i < ntables; i++)
	{
		params[1] = qtables[i];
		ok =
		    pg_query_value(src,
		                   "SELECT count(*) FROM pg_publication_rel r"
		                   " JOIN pg_publication p ON p.oid = r.prpubid"
		                   " WHERE p.pubname = $1 AND r.prrelid = $2::regclass",
		                   2, params, in, sizeof(in), err);
		if (ok && strcmp(in, "0") == 0)
		{
			ok = pg_execf(src, err, "ALTER PUBLICATION %s ADD TABLE %s", qname,
			              qtables[i]);
			added += ok;
		}
	}
	/*
	 * A decoder whose transaction began before the table joined reads the
	 * publication as it was, and on servers without the fix for it keeps
	 * that reading for the table. Once those transactions are over, setting
	 * the publication's option to what it is makes every decoder read the
	 * table's membership again, before the snapshot the table is loaded at.
	 */
	ok = ok && (added == 0 ||
	            (wait_for_older_transactions(
	                 src, "adding tables to the publication", stop, err) &&
	             pg_query_value(src,
	                            "SELECT concat_ws(', ', CASE WHEN pubinsert"
	                            " THEN 'insert' END, CASE WHEN pubupdate"
	                            " THEN 'update' END, CASE WHEN pubdelete"
	                            " THEN 'delete' END, CASE WHEN"
	                            " (to_jsonb(p) ->> 'pubtruncate')::boolean"
	                            " THEN 'truncate' END)"
	                            " FROM pg_publication p WHERE pubname = $1",
	                            1, params, publish, sizeof(publish), err) &&
	             pg_execf(src, err, "ALTER PUBLICATION %s SET (publish = '%s')",
	                      qname, publish)));
	free(qname);
	if (!ok)
		return err_prefix(err,
		                  "could not add tables to publication \"%s\": ", name);
	return true;
}

bool
stream_list_slots(PgConn *src, const char *prefix, StreamSlot **out, int *n,
                  Error *err)
{
	const char *params[1] = {prefix};
	PGresult *res;
	int rows;

	*out = NULL;
	*n = 0;
	/* a standby has no current WAL position of its own: its replay's */
	if (!pg_query(src,
	              "SELECT slot_name, coalesce(database, ''), active,"
	              " temporary, coalesce(active_pid, 0),"
	              " coalesce((CASE WHEN pg_is_in_recovery()"
	              " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn()"
	              " END - restart_lsn)::bigint, -1),"
	              " coalesce(age(catalog_xmin), -1),"
	              " database IS NOT DISTINCT FROM current_database()"
	              " FROM pg_replication_slots"
	              " WHERE slot_type = 'logical' AND plugin = 'pgoutput'"
	              " AND left(slot_name, length($1)) = $1"
	              " ORDER BY slot_name LIMIT " STREAM_SLOTS_MAX_TEXT,
	              1, params, &res, err))
		return err_prefix(err, "could not list replication slots: ");
	rows = PQntuples(res);
	if (rows > 0 && (*out = calloc((size_t) rows, sizeof(StreamSlot))) == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < rows; i++)
	{
		StreamSlot *sl = &(*out)[i];

		snprintf(sl->name, sizeof(sl->name), "%s", PQgetvalue(res, i, 0));
		snprintf(sl->database, sizeof(sl->database), "%s",
		         PQgetvalue(res, i, 1));
		sl->active = PQgetvalue(res, i, 2)[0] == 't';
		sl->temporary = PQgetvalue(res, i, 3)[0] == 't';
		sl->active_pid = (int) strtol(PQgetvalue(res, i, 4), NULL, 10);
		sl->retained_bytes = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		sl->xmin_age = strtoll(PQgetvalue(res, i, 6), NULL, 10);
		sl->here = PQgetvalue(res, i, 7)[0] == 't';
	}
	*n = rows;
	PQclear(res);
	return true;
}

bool
stream_free_slots(PgConn *src, int *free_slots, Error *err)
{
	char buf[32];

	if (!pg_query_value(src,
	                    "SELECT current_setting('max_replication_slots')::int"
	                    " - (SELECT count(*) FROM pg_replication_slots)",
	                    0, NULL, buf, sizeof(buf), err))
		return false;
	*free_slots = (int) strtol(buf, NULL, 10);
	return true;
}

/*
 * A feed's stream: asks the reader of the task's one slot to start at
 * start_lsn (it starts at the lowest position every target asked for, once
 * each has) and waits for its answer, or for a stop.
 */
static bool
feed_start(const char *const *publications, int npublications, Lsn start_lsn,
           int *proto_version, StreamConn **out, Error *err)
{
	Buf names = BUF_INIT(STREAM_PUBLICATION_SQL_MAX);
	uint8_t lsn[8];
	StreamConn *s;
	bool ok;

	for (int i = 0; i < npublications; i++)
		buf_add(&names, publications[i], strlen(publications[i]) + 1, NULL);
	if (!buf_check(&names, err))
		return false;
	feed_put_u64(lsn, start_lsn);
	s = calloc(1, sizeof(*s));
	ok = s != NULL || err_set(err, ERR_INTERNAL, "out of memory");
	ok = ok && feed_send(feed_fd(), 'S', lsn, sizeof(lsn), names.data,
	                     names.len, err);
	buf_free(&names);
	while (ok)
	{
		const atomic_int *stop = feed_stop_flag();

		if (stop != NULL && atomic_load(stop))
		{
			ok = err_set(err, ERR_INTERRUPTED, "interrupted");
			break;
		}
		if (!feed_recv(feed_fd(), 200, &s->frame, err))
		{
			ok = false;
			break;
		}
		if (s->frame.type == 'A' && s->frame.len == 1)
		{
			*proto_version = s->frame.data[0];
			*out = s;
			return true;
		}
		if (s->frame.type == 'X' && s->frame.len >= 1)
		{
			err_set(err, ERR_SOURCE, "%s", (const char *) s->frame.data + 1);
			err->retryable = s->frame.data[0] != 0;
			ok = false;
		}
		/* anything else is from before this start: a restart asked of
		   every target, or data that was on its way */
	}
	stream_close(s);
	return false;
}

bool
stream_start(const char *source_uri, const char *slot,
             const char *const *publications, int npublications, Lsn start_lsn,
             int *proto_version, StreamConn **out, Error *err)
{
	StreamConn *s;
	PGresult *res;
	Buf names = BUF_INIT(STREAM_PUBLICATION_SQL_MAX);
	char *pub, *sql = NULL;
	int v, proto;

	*out = NULL;
	if (feed_fd() >= 0)
		return feed_start(publications, npublications, start_lsn, proto_version,
		                  out, err);
	/* identifiers inside a string: quoted as both, so no name can end the
	   literal */
	for (int i = 0; i < npublications; i++)
	{
		char *ident = pg_quote_ident(publications[i]);

		if (ident == NULL)
		{
			buf_free(&names);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		buf_printf(&names, NULL, "%s%s", i ? "," : "", ident);
		free(ident);
	}
	if (!buf_check(&names, err))
		return false;
	pub = pg_quote_literal(buf_str(&names));
	buf_free(&names);
	if (pub == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
	{
		free(pub);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	if (!pg_connect(source_uri, ERR_SOURCE, PG_CONN_REPLICATION,
	                "pgtide stream", 5000, &s->conn, err))
	{
		free(pub);
		free(s);
		return false;
	}
	v = pg_server_version(s->conn);
	/* 14 added streaming of in-progress transactions (protocol 2) and the
	 * messages option (pg_logical_emit_message, used by cutover). */
	proto = v >= 140000 ? 2 : 1;
	if (asprintf(&sql,
	             "START_REPLICATION SLOT %s LOGICAL " LSN_FMT
	             " (proto_version '%d', publication_names %s%s)",
	             slot, LSN_ARGS(start_lsn), proto, pub,
	             v >= 140000 ? ", streaming 'on', messages 'true'" : "") < 0)
		sql = NULL;
	free(pub);
	if (sql == NULL)
	{
		stream_close(s);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	res = PQexec(pg_raw(s->conn), sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		pg_error(s->conn, res, err);
		PQclear(res);
		stream_close(s);
		/* 55000 on a logical slot: the server invalidated it (PostgreSQL
		   13+: "cannot read from logical replication slot"); no retry and
		   no restart brings its WAL back */
		if (pg_err_is(err, "55000"))
		{
			char server[ERR_MSG_MAX];

			snprintf(server, sizeof(server), "%.500s %.500s", err->message,
			         err->detail);
			return stream_lost_slot_error(err, slot, server);
		}
		return err_prefix(err,
		                  "could not start streaming from slot \"%s\": ", slot);
	}
	PQclear(res);
	*proto_version = proto;
	*out = s;
	return true;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (uint8_t) (v & 0xff);
		v >>= 8;
	}
}

/*
 * Message layouts (all integers big-endian):
 *
 *   'w' | data start (8) | WAL end (8) | send time (8) | pgoutput message
 *   'k' | WAL end (8) | send time (8) | reply requested (1)
 *   'r' | written (8) | flushed (8) | applied (8) | send time (8) | reply (1)
 */
static bool
parse_copy_message(const uint8_t *m, size_t len, StreamEvent *ev, Error *err)
{
	if (len >= 1 && m[0] == 'w')
	{
		if (len < 25)
			return err_set(err, ERR_SOURCE,
			               "replication stream: XLogData message of %zu bytes",
			               len);
		ev->kind = STREAM_EVENT_DATA;
		ev->raw = m;
		ev->raw_len = len;
		ev->wal_start = get_u64(m + 1);
		ev->wal_end = get_u64(m + 9);
		ev->data = m + 25;
		ev->len = len - 25;
		return true;
	}
	if (len >= 1 && m[0] == 'k')
	{
		if (len != 18)
			return err_set(err, ERR_SOURCE,
			               "replication stream: keepalive message of %zu bytes",
			               len);
		ev->kind = STREAM_EVENT_KEEPALIVE;
		ev->raw = m;
		ev->raw_len = len;
		ev->wal_end = get_u64(m + 1);
		ev->reply_requested = m[17] != 0;
		return true;
	}
	return err_set(err, ERR_SOURCE,
	               "replication stream: unknown message type 0x%02x",
	               len ? m[0] : 0);
}

/* A feed's next message: what the source sent, or a restart or error. */
static bool
feed_read(StreamConn *s, int timeout_ms, StreamEvent *ev, Error *err)
{
	if (!feed_recv(feed_fd(), timeout_ms, &s->frame, err))
		return false;
	switch (s->frame.type)
	{
		case 0:
			return true;
		case 'D':
			return parse_copy_message(s->frame.data, s->frame.len, ev, err);
		case 'R':
			err_set(err, ERR_SOURCE,
			        "the stream of the task's one slot starts again "
			        "(the source, or another target's stream, broke)");
			err->retryable = true;
			return false;
		case 'X':
			err_set(err, ERR_SOURCE, "%s",
			        s->frame.len >= 1 ? (const char *) s->frame.data + 1
			                          : "the slot's reader stopped");
			err->retryable = s->frame.len >= 1 && s->frame.data[0] != 0;
			return false;
		default:
			return err_set(err, ERR_INTERNAL, "a feed frame of type 0x%02x",
			               (unsigned char) s->frame.type);
	}
}

bool
stream_read(StreamConn *s, int timeout_ms, StreamEvent *ev, Error *err)
{
	PGconn *c;

	memset(ev, 0, sizeof(*ev));
	if (s->conn == NULL)
		return feed_read(s, timeout_ms, ev, err);
	c = pg_raw(s->conn);
	if (s->copybuf != NULL)
	{
		PQfreemem(s->copybuf);
		s->copybuf = NULL;
	}
	for (int round = 0; round < 2; round++)
	{
		int len = PQgetCopyData(c, &s->copybuf, 1);

		if (len > 0)
			return parse_copy_message((const uint8_t *) s->copybuf,
			                          (size_t) len, ev, err);
		if (len == -1)
		{
			PGresult *res = PQgetResult(c);

			pg_error(s->conn, res, err);
			PQclear(res);
			err->retryable = true;
			return err_prefix(err, "the source ended the replication stream: ");
		}
		if (len == -2)
		{
			pg_error(s->conn, NULL, err);
			err->retryable = true;
			return err_prefix(err, "replication stream: ");
		}
		if (round == 0)
		{
			struct pollfd pfd = {PQsocket(c), POLLIN, 0};

			if (poll(&pfd, 1, timeout_ms) < 0)
				return true; /* EINTR: let the caller look at its flags */
			if (PQconsumeInput(c) == 0)
			{
				pg_error(s->conn, NULL, err);
				err->retryable = true;
				return err_prefix(err, "replication stream: ");
			}
		}
	}
	return true;
}

bool
stream_send_status(StreamConn *s, Lsn written, Lsn flushed, bool reply,
                   Error *err)
{
	uint8_t msg[34];
	PGconn *c;

	if (s->conn == NULL)
	{
		feed_put_u64(msg, written);
		feed_put_u64(msg + 8, flushed);
		(void) reply; /* the slot's reader answers the source itself */
		return feed_send(feed_fd(), 'F', msg, 16, NULL, 0, err);
	}
	c = pg_raw(s->conn);
	msg[0] = 'r';
	put_u64(msg + 1, written);
	put_u64(msg + 9, flushed);
	put_u64(msg + 17, flushed);
	put_u64(msg + 25, (uint64_t) (clock_wall_us() - PG_EPOCH_OFFSET_US));
	msg[33] = reply ? 1 : 0;
	if (PQputCopyData(c, (const char *) msg, sizeof(msg)) != 1 ||
	    PQflush(c) != 0)
	{
		pg_error(s->conn, NULL, err);
		err->retryable = true;
		return err_prefix(err, "could not send replication status: ");
	}
	return true;
}

void
stream_close(StreamConn *s)
{
	if (s == NULL)
		return;
	if (s->copybuf != NULL)
		PQfreemem(s->copybuf);
	pg_close(s->conn);
	feed_frame_free(&s->frame);
	free(s);
}

bool
stream_lost_slot_error(Error *err, const char *slot, const char *server)
{
	err_clear(err);
	err_set(err, ERR_GUARD,
	        "the source invalidated the task's replication slot \"%s\" "
	        "(wal_status lost): it removed WAL the task still needed, so the "
	        "task cannot resume",
	        slot);
	if (server != NULL && server[0] != '\0')
		err_detail(err, "The source said: %s", server);
	return err_hint(err, "start the task anew: pgtide clean, then pgtide "
	                     "migrate. So that it does not happen again, raise the "
	                     "source's max_slot_wal_keep_size (-1: no limit) and "
	                     "set guard.wal_pause and guard.wal_stop below it, so "
	                     "that pgtide pauses or stops first");
}
