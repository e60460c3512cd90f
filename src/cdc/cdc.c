/*
 * cdc: receiver loop, applier thread, and the queue between them.
 */
#include "cdc/cdc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/notify.h"
#include "base/units.h"
#include "cdc/pgoutput.h"
#include "cdc/relcols.h"
#include "cdc/txnbuf.h"
#include "pg/stream.h"

#define CDC_STATUS_INTERVAL_MS 1000
/* relation descriptions carried past skipped transactions (Receiver) */
#define CDC_CARRY_MAX      ((size_t) 64 << 20)
#define CDC_BATCH_MAX_TXNS 500
#define CDC_RETRY_MAX_MS   10000
#define CDC_FLUSH_POLL_MS  100
/* how long a stop waits for the applier's statement before cancelling it */
#define CDC_STOP_GRACE_MS 2000
/* a position that moved is confirmed this soon, so the slot's WAL and the
 * measured drain time do not wait for the next periodic status */
#define CDC_CONFIRM_SOON_MS 100
/* how often the applier asks whether cutover wants the stream to stop: the
 * write-unavailability window waits for it */
#define CDC_STOP_POLL_MS 200
/*
 * A batch that would hold only a few transactions waits this long for more:
 * under a steady stream of small source transactions each would otherwise
 * be a target transaction of its own (a commit and a round trip each), and
 * on a shared host the target's commit work is CPU the source loses.
 */
#define CDC_LINGER_MS   5
#define CDC_LINGER_TXNS 16

/* A committed source transaction waiting in txnbuf for the applier. */
typedef struct CdcTxn
{
	uint32_t xid;
	bool streamed; /* its records carry the in-stream xid prefix */
	Lsn final_lsn; /* commit record */
	Lsn end_lsn;
	int64_t commit_time_us;
} CdcTxn;

typedef struct Cdc
{
	const CdcOptions *o;
	TxnBuf *buf;
	int proto_version;

	pthread_mutex_t lock; /* guards the queue and err */
	pthread_cond_t nonempty;
	CdcTxn *queue; /* ring */
	int q_head, q_count, q_cap;
	Error err; /* the first fatal error */

	atomic_bool fatal;
	atomic_bool applier_idle;      /* nothing queued, nothing in flight */
	_Atomic uint64_t flushed;      /* origin progress on the target (durable) */
	_Atomic uint64_t received_end; /* end of the last queued transaction */
	_Atomic uint64_t wal_end;      /* the source's WAL end, last we heard */
	_Atomic int64_t applied_txns;
	_Atomic int64_t applied_changes;
	_Atomic int64_t ignored_changes;
	_Atomic int64_t filtered_changes;
	_Atomic int64_t conflicts;
	_Atomic int64_t conflicts_by[APPLY_NCONFLICTS];
	_Atomic int64_t retries[2];      /* [0] source, [1] target */
	_Atomic int64_t applied_time_us; /* commit time of the last applied */
	_Atomic uint64_t applied_end;
	_Atomic uint64_t stop_lsn;   /* cutover's marker; 0 until it is set */
	atomic_bool stop_reached;    /* the target flushed up to stop_lsn */
	_Atomic int64_t beyond_stop; /* transactions left unapplied after it */
	/* outages being retried, for status: 0 when the side answers */
	_Atomic int64_t down_since_us[2]; /* [0] source, [1] target */
	char down_why[2][256];            /* guarded by lock */
} Cdc;

static bool
stopping(Cdc *c)
{
	return atomic_load(&c->fatal) || atomic_load(&c->stop_reached) ||
	       (c->o->stop != NULL && *c->o->stop);
}

static bool
applier_stopping(void *c)
{
	return stopping(c);
}

static void
set_fatal(Cdc *c, const Error *e)
{
	pthread_mutex_lock(&c->lock);
	if (!err_is_set(&c->err))
		c->err = *e;
	pthread_mutex_unlock(&c->lock);
	atomic_store(&c->fatal, true);
	pthread_cond_broadcast(&c->nonempty);
}

/* ---- outages ---- */

enum
{
	CDC_SOURCE = 0,
	CDC_TARGET = 1
};

/* A side stopped answering (kept from its first failure until it answers). */
static void
outage_begin(Cdc *c, int side, const char *why)
{
	pthread_mutex_lock(&c->lock);
	if (atomic_load(&c->down_since_us[side]) == 0)
	{
		snprintf(c->down_why[side], sizeof(c->down_why[side]), "%s", why);
		atomic_store(&c->down_since_us[side], clock_wall_us());
	}
	pthread_mutex_unlock(&c->lock);
}

static void
outage_end(Cdc *c, int side)
{
	atomic_store(&c->down_since_us[side], 0);
}

/* "target unreachable for 12 s (since 10:04:05 UTC), retrying: why". */
static void
outage_text(Cdc *c, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	pthread_mutex_lock(&c->lock);
	for (int side = CDC_SOURCE; side <= CDC_TARGET; side++)
	{
		int64_t since = atomic_load(&c->down_since_us[side]);
		time_t secs = (time_t) (since / 1000000);
		struct tm tm;
		char why[160];

		if (since == 0 || n >= cap)
			continue;
		gmtime_r(&secs, &tm);
		/* the server's message, on one line */
		snprintf(why, sizeof(why), "%s", c->down_why[side]);
		for (char *p = why; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		n += (size_t) snprintf(
		    buf + n, cap - n,
		    "%s%s unreachable for %.0f s (since %02d:%02d:%02d UTC), "
		    "retrying: %s",
		    n ? "; " : "", side == CDC_SOURCE ? "source" : "target",
		    (double) (clock_wall_us() - since) / 1e6, tm.tm_hour, tm.tm_min,
		    tm.tm_sec, why);
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- queue ---- */

static bool
queue_push(Cdc *c, const CdcTxn *t, Error *err)
{
	pthread_mutex_lock(&c->lock);
	if (c->q_count == c->q_cap)
	{
		int cap = c->q_cap ? c->q_cap * 2 : 1024;
		CdcTxn *grown = malloc(sizeof(CdcTxn) * (size_t) cap);

		if (grown == NULL)
		{
			pthread_mutex_unlock(&c->lock);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		for (int i = 0; i < c->q_count; i++)
			grown[i] = c->queue[(c->q_head + i) % c->q_cap];
		free(c->queue);
		c->queue = grown;
		c->q_head = 0;
		c->q_cap = cap;
	}
	c->queue[(c->q_head + c->q_count) % c->q_cap] = *t;
	c->q_count++;
	atomic_store(&c->applier_idle, false);
	pthread_cond_signal(&c->nonempty);
	pthread_mutex_unlock(&c->lock);
	return true;
}

/*
 * Copies up to max queued transactions, oldest first from the offset-th,
 * without removing them; waits up to wait_ms for one to be there.
 */
static int
queue_peek(Cdc *c, int offset, CdcTxn *out, int max, int wait_ms)
{
	int n;

	pthread_mutex_lock(&c->lock);
	if (c->q_count <= offset && !atomic_load(&c->fatal))
	{
		struct timespec until = clock_deadline(wait_ms);

		pthread_cond_timedwait(&c->nonempty, &c->lock, &until);
	}
	n = c->q_count - offset < max ? c->q_count - offset : max;
	if (n < 0)
		n = 0;
	for (int i = 0; i < n; i++)
		out[i] = c->queue[(c->q_head + offset + i) % c->q_cap];
	pthread_mutex_unlock(&c->lock);
	return n;
}

/*
 * Lets go of the queue's oldest transactions while the target has flushed
 * them (their buffered records too); returns how many. Only here does a
 * transaction leave pgtide's hands.
 */
static int
queue_release_flushed(Cdc *c)
{
	Lsn flushed = atomic_load(&c->flushed);
	int n = 0;

	for (;;)
	{
		CdcTxn t;
		bool durable;

		pthread_mutex_lock(&c->lock);
		durable = c->q_count > 0 && c->queue[c->q_head].end_lsn <= flushed;
		if (durable)
		{
			t = c->queue[c->q_head];
			c->q_head = (c->q_head + 1) % c->q_cap;
			c->q_count--;
		}
		pthread_mutex_unlock(&c->lock);
		if (!durable)
			return n;
		txnbuf_release(c->buf, t.xid);
		n++;
	}
}

/* ---- applier ---- */

typedef struct ApplierThread
{
	Cdc *c;
	Applier *ap;
	RelCols *relcols;   /* the source's catalog, for schema changes */
	PgoDecoder *plain;  /* records of transactions sent at commit */
	PgoDecoder *stream; /* records of streamed ones (xid-prefixed) */
	pthread_t thread;
	/* the session's statement, cancelled by the receiver when a stop finds
	   the applier waiting on the target (a lock held by the application) */
	pthread_mutex_t cancel_lock;
	PgCancel *cancel;
	atomic_bool done; /* applier_main has returned */
} ApplierThread;

static bool
make_decoders(ApplierThread *at, Error *err)
{
	PgoOptions opts = {at->c->proto_version,
	                   at->c->proto_version >= 2 ? PGO_STREAMING_ON
	                                             : PGO_STREAMING_OFF,
	                   false, false};

	at->plain = pgoutput_decoder_new(&opts, err);
	if (at->plain == NULL)
		return false;
	if (opts.streaming == PGO_STREAMING_ON)
	{
		opts.replay_streamed = true;
		at->stream = pgoutput_decoder_new(&opts, err);
		if (at->stream == NULL)
			return false;
	}
	return true;
}

/* Applies the records of one transaction into the open batch. */
static bool
apply_txn(ApplierThread *at, const CdcTxn *t, Error *err)
{
	TxnReader *r = NULL;
	PgoDecoder *dec = t->streamed ? at->stream : at->plain;
	bool ok = true;

	if (!txnbuf_reader_open(at->c->buf, t->xid, &r, err))
		return false;
	apply_txn_begin(at->ap, t->xid, t->final_lsn);
	while (ok)
	{
		const void *data;
		size_t len;
		bool done;
		PgoMessage m;

		ok = txnbuf_reader_next(r, &data, &len, &done, err);
		if (!ok || done)
			break;
		ok = pgoutput_decode(dec, data, len, &m, err) &&
		     apply_message(at->ap, &m, err);
		fault_point("apply.change");
	}
	txnbuf_reader_close(r);
	return ok;
}

static bool
apply_batch(ApplierThread *at, const CdcTxn *txns, int n, Error *err)
{
	if (!apply_batch_begin(at->ap, err))
		return false;
	for (int i = 0; i < n; i++)
		if (!apply_txn(at, &txns[i], err))
		{
			apply_batch_abort(at->ap);
			return false;
		}
	return apply_batch_commit(at->ap, txns[n - 1].end_lsn,
	                          txns[n - 1].commit_time_us, err);
}

static bool
refresh_flushed(ApplierThread *at, Error *err)
{
	Lsn flushed;

	if (!apply_flushed(at->ap, &flushed, err))
		return false;
	/* the origin only moves forward; a stale reading must not move us back */
	if (flushed > atomic_load(&at->c->flushed))
		atomic_store(&at->c->flushed, flushed);
	return true;
}

/* First connection, or a new one after a failure (keeping the relations). */
static bool
connect_applier(ApplierThread *at, Error *err)
{
	const CdcOptions *o = at->c->o;

	if (at->ap == NULL)
	{
		ApplyTask task = {.sql = o->follow_sql,
		                  .task = o->task,
		                  .ignore_unknown = o->ignore_unknown,
		                  .renames = o->renames,
		                  .shard = o->shard,
		                  .shard_target = o->shard_target,
		                  .rename_sql = o->rename_sql,
		                  .shared_slot = o->shared_slot,
		                  .state_schema = o->state_schema,
		                  .stopping = applier_stopping,
		                  .stopping_ctx = at->c};

		/* connects at its first question: a schema change, or a row of a
		   filtered table */
		if (o->source_uri != NULL && at->relcols == NULL &&
		    (at->relcols = relcols_new(o->source_uri)) == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		task.source = at->relcols;
		if (!apply_new(o->target_uri, o->origin, o->tables, o->ntables,
		               o->policy, &task, &at->ap, err))
			return false;
	}
	else if (!apply_reconnect(at->ap, err))
		return false;
	pthread_mutex_lock(&at->cancel_lock);
	pg_cancel_free(at->cancel);
	at->cancel = apply_cancel_new(at->ap);
	pthread_mutex_unlock(&at->cancel_lock);
	return refresh_flushed(at, err);
}

/* Asks, every CDC_STOP_POLL_MS at most, where the stream must stop. */
static void
poll_stop_at(ApplierThread *at, int64_t *last_ms)
{
	const CdcOptions *o = at->c->o;
	Error err = ERR_INIT;
	Lsn lsn = LSN_INVALID;

	if (o->stop_at == NULL || atomic_load(&at->c->stop_lsn) != LSN_INVALID ||
	    clock_ms() - *last_ms < CDC_STOP_POLL_MS)
		return;
	*last_ms = clock_ms();
	if (!o->stop_at(&lsn, o->stop_ctx, &err))
		log_debug("could not read the cutover position: %s", err.message);
	else if (lsn != LSN_INVALID)
	{
		log_info("cutover: stopping once the target holds " LSN_FMT,
		         LSN_ARGS(lsn));
		atomic_store(&at->c->stop_lsn, lsn);
	}
}

/* Hands the applier the tables that joined the task (only between batches). */
static bool
poll_join(ApplierThread *at, Error *err)
{
	const CdcOptions *o = at->c->o;
	const ApplyTable *tables = NULL;
	int n = 0;

	if (o->join == NULL || atomic_load(&at->c->stop_lsn) != LSN_INVALID)
		return true;
	if (!o->join(&tables, &n, o->join_ctx, err))
	{
		err->retryable = false;
		return false;
	}
	return n == 0 || apply_add_tables(at->ap, tables, n, err);
}

/*
 * With a stop position, only transactions committed up to it are applied;
 * the rest of the queue (past the unflushed ones ahead of the batch) stays
 * unapplied, and is counted.
 */
static int
cap_at_stop(Cdc *c, const CdcTxn *batch, int n, int unflushed)
{
	Lsn stop = atomic_load(&c->stop_lsn);
	int keep = 0;

	if (stop == LSN_INVALID)
		return n;
	while (keep < n && batch[keep].final_lsn <= stop)
		keep++;
	if (keep < n)
	{
		pthread_mutex_lock(&c->lock);
		atomic_store(&c->beyond_stop, c->q_count - unflushed - keep);
		pthread_mutex_unlock(&c->lock);
	}
	return keep;
}

/* Once everything up to the stop position is durable, the stream ends. */
static void
note_stop_reached(Cdc *c)
{
	Lsn stop = atomic_load(&c->stop_lsn);

	if (stop != LSN_INVALID && atomic_load(&c->flushed) >= stop &&
	    !atomic_load(&c->stop_reached))
	{
		atomic_store(&c->stop_reached, true);
		pthread_cond_broadcast(&c->nonempty);
	}
}

/*
 * The applier's loop. A committed batch stays at the head of the queue,
 * counted in `unflushed`, until the target's durable origin progress passes
 * it: apply sessions commit with synchronous_commit = off, so a target crash
 * can lose the last commits and the origin's advance with them. After any
 * loss of the session the batch is peeked again from the head, and whatever
 * the reconnected target does not hold is applied again, never skipped.
 *
 *   queue:  [ committed, not yet flushed | not yet applied ... ]
 *             released by                  peeked from offset
 *             queue_release_flushed        `unflushed`
 */
static void *
applier_main(void *arg)
{
	ApplierThread *at = arg;
	Cdc *c = at->c;
	CdcTxn *batch = malloc(sizeof(CdcTxn) * CDC_BATCH_MAX_TXNS);
	int64_t last_flush_ms = 0, last_poll_ms = 0;
	int backoff_ms = 500;
	int unflushed = 0;
	bool reported = false;
	bool broken = false; /* the target connection must be replaced */

	log_set_role("apply");
	if (batch == NULL)
	{
		Error e = ERR_INIT;

		err_set(&e, ERR_INTERNAL, "out of memory");
		set_fatal(c, &e);
		return NULL;
	}
	while (!stopping(c))
	{
		Error err = ERR_INIT;
		int n = queue_peek(c, unflushed, batch, CDC_BATCH_MAX_TXNS,
		                   CDC_FLUSH_POLL_MS);
		int released, peeked;

		if (n > 0 && n < CDC_LINGER_TXNS && !stopping(c))
		{
			clock_sleep_ms(CDC_LINGER_MS);
			n = queue_peek(c, unflushed, batch, CDC_BATCH_MAX_TXNS, 0);
		}

		if (broken && !connect_applier(at, &err))
			goto failed;
		broken = false;
		poll_stop_at(at, &last_poll_ms);
		if (!poll_join(at, &err))
			goto failed;
		/* after a reconnect, some of the batch may already be on the target */
		released = queue_release_flushed(c);
		if (released > 0)
		{
			unflushed = released < unflushed ? unflushed - released : 0;
			continue;
		}
		peeked = n;
		n = cap_at_stop(c, batch, n, unflushed);
		if (n == 0)
		{
			atomic_store(&c->applier_idle, true);
			if (!refresh_flushed(at, &err))
				goto failed;
			note_stop_reached(c);
			if (peeked > 0) /* all of it past the stop: nothing to wait for */
				clock_sleep_ms(CDC_FLUSH_POLL_MS);
			continue;
		}
		if (!apply_batch(at, batch, n, &err))
			goto failed;
		unflushed += n;
		{
			ApplyCounters k;

			apply_counters(at->ap, &k);
			atomic_store(&c->applied_txns, k.txns);
			atomic_store(&c->applied_changes, k.changes);
			atomic_store(&c->ignored_changes, k.ignored);
			atomic_store(&c->filtered_changes, k.filtered);
			atomic_store(&c->conflicts, k.conflicts);
			for (int kind = 0; kind < APPLY_NCONFLICTS; kind++)
				atomic_store(&c->conflicts_by[kind], k.conflicts_by[kind]);
			atomic_store(&c->applied_end, k.applied_end);
			atomic_store(&c->applied_time_us, k.applied_commit_time_us);
		}
		if (clock_ms() - last_flush_ms >= CDC_FLUSH_POLL_MS)
		{
			if (!refresh_flushed(at, &err))
				goto failed;
			last_flush_ms = clock_ms();
		}
		note_stop_reached(c);
		backoff_ms = 500;
		reported = false;
		outage_end(c, CDC_TARGET);
		continue;
	failed:
		/* a batch cut by the user's stop (its statement cancelled) left
		   nothing committed: the next run applies it again */
		if (c->o->stop != NULL && *c->o->stop)
		{
			broken = true;
			break;
		}
		if (!err.retryable || stopping(c))
		{
			set_fatal(c, &err);
			break;
		}
		/* logged once per outage, then retried quietly with backoff */
		if (!reported)
			log_warn("target: %s; reconnecting, then applying again what "
			         "the target has not flushed",
			         err.message);
		outage_begin(c, CDC_TARGET, err.message);
		atomic_fetch_add(&c->retries[CDC_TARGET], 1);
		reported = true;
		broken = true;
		unflushed = 0;
		clock_sleep_ms(backoff_ms);
		backoff_ms = backoff_ms * 2 > CDC_RETRY_MAX_MS ? CDC_RETRY_MAX_MS
		                                               : backoff_ms * 2;
	}
	/* report what is durable before leaving */
	if (!broken)
	{
		Error ignored = ERR_INIT;

		refresh_flushed(at, &ignored);
	}
	free(batch);
	atomic_store(&at->done, true);
	return NULL;
}

/*
 * Waits for the applier to leave. A user's stop that finds it inside a
 * statement (waiting on a lock the application holds, or in a long batch)
 * cancels the statement after CDC_STOP_GRACE_MS: nothing of the batch is
 * committed, the next run applies it again, and the process does not
 * outlive a service manager's stop timeout.
 */
static void
stop_applier(ApplierThread *at, bool user_stop)
{
	for (int waited_ms = 0; !atomic_load(&at->done); waited_ms += 50)
	{
		if (user_stop && waited_ms == CDC_STOP_GRACE_MS)
		{
			pthread_mutex_lock(&at->cancel_lock);
			pg_cancel_send(at->cancel);
			pthread_mutex_unlock(&at->cancel_lock);
			log_info("stopping: the target's statement in progress is "
			         "cancelled; the next run applies its batch again");
		}
		clock_sleep_ms(50);
	}
}

/* ---- receiver ---- */

#define CDC_OPEN_STREAMS_MAX 64

typedef struct Receiver
{
	Cdc *c;
	StreamConn *s;
	PgoDecoder *dec;
	bool in_txn;
	CdcTxn cur; /* the transaction between Begin and Commit */
	bool in_stream;
	uint32_t stream_xid;
	uint32_t open_streams[CDC_OPEN_STREAMS_MAX]; /* streamed, not yet ended */
	int nopen;
	int64_t last_status_ms;
	Lsn last_confirmed; /* what the last status confirmed */
	int64_t last_progress_ms;
	int64_t last_txns; /* counters at the last progress line */
	int64_t last_changes;
	/*
	 * Transactions committed before this position are not this stream's:
	 * fed by a task's one slot (pg/feed), the stream starts where the
	 * target furthest behind asked, and the source sends each relation's
	 * description once, in whichever transaction first needs it. A skipped
	 * transaction's descriptions (and a streamed one's, which a skip may
	 * drop) are carried into the next plain transaction applied, in order.
	 * A source's own stream never sends such a transaction.
	 */
	Lsn skip_below;
	bool skipping; /* the plain transaction between Begin and Commit */
	Buf carry;     /* [length (4)][message], plain form */
} Receiver;

static void
open_stream_forget(Receiver *rv, uint32_t xid)
{
	for (int i = 0; i < rv->nopen; i++)
		if (rv->open_streams[i] == xid)
		{
			rv->open_streams[i] = rv->open_streams[--rv->nopen];
			return;
		}
}

static bool
open_stream_note(Receiver *rv, uint32_t xid, Error *err)
{
	for (int i = 0; i < rv->nopen; i++)
		if (rv->open_streams[i] == xid)
			return true;
	if (rv->nopen == CDC_OPEN_STREAMS_MAX)
		return err_set(err, ERR_SOURCE,
		               "more than %d streamed transactions open at once",
		               CDC_OPEN_STREAMS_MAX);
	rv->open_streams[rv->nopen++] = xid;
	return true;
}

/* Forgets what was received of transactions not yet committed. */
static void
drop_partial(Receiver *rv)
{
	if (rv->in_txn && !rv->skipping)
		txnbuf_discard(rv->c->buf, rv->cur.xid);
	rv->skipping = false;
	for (int i = 0; i < rv->nopen; i++)
		txnbuf_discard(rv->c->buf, rv->open_streams[i]);
	rv->nopen = 0;
	rv->in_txn = rv->in_stream = false;
}

/*
 * The position to confirm: what the target flushed. When everything
 * received is flushed and nothing is open, the source's WAL end can be
 * confirmed too, so an idle slot does not hold WAL back.
 */
static Lsn
confirmable(Receiver *rv)
{
	Cdc *c = rv->c;
	Lsn flushed = atomic_load(&c->flushed);

	if (!rv->in_txn && rv->nopen == 0 && atomic_load(&c->applier_idle) &&
	    flushed >= atomic_load(&c->received_end) &&
	    atomic_load(&c->wal_end) > flushed)
		return atomic_load(&c->wal_end);
	return flushed;
}

static bool
send_status(Receiver *rv, bool reply, Error *err)
{
	Lsn confirm = confirmable(rv);

	rv->last_status_ms = clock_ms();
	rv->last_confirmed = confirm;
	fault_point("stream.status");
	return stream_send_status(rv->s, atomic_load(&rv->c->wal_end), confirm,
	                          reply, err);
}

/* Keeps a Relation or Type message for the next plain transaction. */
static bool
carry_add(Receiver *rv, const uint8_t *data, size_t len, bool in_stream,
          Error *err)
{
	uint8_t head[5];
	size_t skip = in_stream ? 4 : 0; /* a stream block's xid */

	if (len < 1 + skip)
		return err_set(err, ERR_SOURCE, "a message of %zu bytes", len);
	len -= skip;
	for (int i = 0; i < 4; i++)
		head[i] = (uint8_t) (len >> (24 - 8 * i));
	head[4] = data[0];
	return buf_add(&rv->carry, head, sizeof(head), err) &&
	       buf_add(&rv->carry, data + 1 + skip, len - 1, err);
}

/* Puts the carried descriptions at the start of the current transaction. */
static bool
carry_into(Receiver *rv, Error *err)
{
	const uint8_t *p = (const uint8_t *) rv->carry.data;
	size_t at = 0;

	while (at + 4 <= rv->carry.len)
	{
		size_t len = (size_t) p[at] << 24 | (size_t) p[at + 1] << 16 |
		             (size_t) p[at + 2] << 8 | p[at + 3];

		if (!txnbuf_append(rv->c->buf, rv->cur.xid, rv->cur.xid, p + at + 4,
		                   len, err))
			return false;
		at += 4 + len;
	}
	buf_reset(&rv->carry);
	return true;
}

static bool
is_description(PgoKind kind)
{
	return kind == PGO_RELATION || kind == PGO_TYPE;
}

static bool
on_data(Receiver *rv, const uint8_t *data, size_t len, Error *err)
{
	Cdc *c = rv->c;
	PgoMessage m;
	PgoKind kind;
	uint32_t subxid;
	CdcTxn t;

	/*
	 * Row changes are most of the stream and only need buffering: the
	 * applier decodes (and checks) them.
	 */
	if (!pgoutput_peek(data, len, rv->in_stream, &kind, &subxid, err))
		return false;
	if (rv->skipping && !rv->in_stream && kind != PGO_COMMIT)
		return !is_description(kind) || carry_add(rv, data, len, false, err);
	if (rv->in_stream && is_description(kind) &&
	    (rv->skip_below != LSN_INVALID || rv->carry.len > 0) &&
	    !carry_add(rv, data, len, true, err))
		return false;
	if (kind == PGO_INSERT || kind == PGO_UPDATE || kind == PGO_DELETE)
	{
		if (rv->in_stream)
			return txnbuf_append(c->buf, rv->stream_xid, subxid, data, len,
			                     err);
		if (rv->in_txn)
			return txnbuf_append(c->buf, rv->cur.xid, rv->cur.xid, data, len,
			                     err);
	}
	if (!pgoutput_decode(rv->dec, data, len, &m, err))
		return false;
	switch (m.kind)
	{
		case PGO_BEGIN:
			rv->in_txn = true;
			memset(&rv->cur, 0, sizeof(rv->cur));
			rv->cur.xid = m.xid;
			rv->cur.final_lsn = m.u.begin.final_lsn;
			rv->skipping = m.u.begin.final_lsn < rv->skip_below;
			if (rv->skipping)
				return true;
			/* every commit from here on is past the position asked for */
			rv->skip_below = LSN_INVALID;
			return carry_into(rv, err);
		case PGO_COMMIT:
			if (!rv->in_txn)
				return err_set(err, ERR_SOURCE, "Commit without Begin");
			if (rv->skipping)
			{
				rv->in_txn = rv->skipping = false;
				return true;
			}
			rv->cur.end_lsn = m.u.commit.end_lsn;
			rv->cur.commit_time_us = m.u.commit.commit_time_us;
			rv->in_txn = false;
			if (!txnbuf_seal(c->buf, rv->cur.xid, err) ||
			    !queue_push(c, &rv->cur, err))
				return false;
			atomic_store(&c->received_end, rv->cur.end_lsn);
			return true;
		case PGO_STREAM_START:
			rv->in_stream = true;
			rv->stream_xid = m.xid;
			return open_stream_note(rv, m.xid, err);
		case PGO_STREAM_STOP:
			rv->in_stream = false;
			fault_point("receive.stream_stop");
			return true;
		case PGO_STREAM_COMMIT:
			open_stream_forget(rv, m.xid);
			if (m.u.commit.commit_lsn < rv->skip_below)
			{
				txnbuf_discard(c->buf, m.xid);
				return true;
			}
			rv->skip_below = LSN_INVALID;
			memset(&t, 0, sizeof(t));
			t.xid = m.xid;
			t.streamed = true;
			t.final_lsn = m.u.commit.commit_lsn;
			t.end_lsn = m.u.commit.end_lsn;
			t.commit_time_us = m.u.commit.commit_time_us;
			if (!txnbuf_seal(c->buf, m.xid, err) || !queue_push(c, &t, err))
				return false;
			atomic_store(&c->received_end, t.end_lsn);
			return true;
		case PGO_STREAM_ABORT:
			if (m.u.stream_abort.subxid == m.xid)
				open_stream_forget(rv, m.xid);
			return txnbuf_abort_sub(c->buf, m.xid, m.u.stream_abort.subxid,
			                        err);
		case PGO_ORIGIN:
			return true;
		case PGO_MESSAGE:
			if (!(m.u.message.flags & PGO_MESSAGE_TRANSACTIONAL))
				return true;
			break;
		default:
			break;
	}
	if (rv->in_stream)
		return txnbuf_append(c->buf, rv->stream_xid, m.xid, data, len, err);
	if (rv->in_txn)
		return txnbuf_append(c->buf, rv->cur.xid, rv->cur.xid, data, len, err);
	return err_set(err, ERR_SOURCE, "%s message outside a transaction",
	               pgoutput_kind_name(m.kind));
}

static void
log_progress(Receiver *rv)
{
	Cdc *c = rv->c;
	CdcProgress p;
	TxnBufStats st;
	int64_t commit_us = atomic_load(&c->applied_time_us);
	double secs = (double) (clock_ms() - rv->last_progress_ms) / 1000.0;
	char mem[32], lag[32];

	if (secs <= 0)
		secs = 1;
	memset(&p, 0, sizeof(p));
	txnbuf_stats(c->buf, &st);
	p.txns = atomic_load(&c->applied_txns);
	p.changes = atomic_load(&c->applied_changes);
	p.ignored = atomic_load(&c->ignored_changes);
	p.filtered = atomic_load(&c->filtered_changes);
	p.txns_per_s = (double) (p.txns - rv->last_txns) / secs;
	p.changes_per_s = (double) (p.changes - rv->last_changes) / secs;
	p.applied_lsn = atomic_load(&c->applied_end);
	p.flushed_lsn = atomic_load(&c->flushed);
	p.source_lsn = atomic_load(&c->wal_end);
	/* caught up when idle with everything received flushed */
	p.lag_bytes =
	    p.source_lsn > p.flushed_lsn && !(atomic_load(&c->applier_idle) &&
	                                      !rv->in_txn && rv->nopen == 0)
	        ? (int64_t) (p.source_lsn - p.flushed_lsn)
	        : 0;
	if (commit_us > 0 && !atomic_load(&c->applier_idle))
		p.lag_seconds = (double) (clock_wall_us() - commit_us) / 1e6;
	p.buffered_bytes = (int64_t) st.mem_bytes;
	p.spilled_txns = (int64_t) st.spilled_txns;
	p.spilled_bytes = (int64_t) st.spilled_bytes;
	p.conflicts = atomic_load(&c->conflicts);
	for (int kind = 0; kind < APPLY_NCONFLICTS; kind++)
		p.conflicts_by[kind] = atomic_load(&c->conflicts_by[kind]);
	p.source_retries = atomic_load(&c->retries[CDC_SOURCE]);
	p.target_retries = atomic_load(&c->retries[CDC_TARGET]);
	outage_text(c, p.outage, sizeof(p.outage));
	rv->last_txns = p.txns;
	rv->last_changes = p.changes;
	units_format_bytes(p.buffered_bytes, mem, sizeof(mem));
	units_format_bytes(p.lag_bytes, lag, sizeof(lag));
	log_info("cdc: %lld txns (%.0f/s), %lld changes (%.0f/s) applied; lag %s, "
	         "%.1f s; applied " LSN_FMT ", flushed " LSN_FMT
	         "; buffered %s (%lld txns spilled)%s%s",
	         (long long) p.txns, p.txns_per_s, (long long) p.changes,
	         p.changes_per_s, lag, p.lag_seconds, LSN_ARGS(p.applied_lsn),
	         LSN_ARGS(p.flushed_lsn), mem, (long long) p.spilled_txns,
	         p.outage[0] ? "; " : "", p.outage);
	if (c->o->on_progress != NULL)
		c->o->on_progress(&p, c->o->progress_ctx);
}

/* Reports progress once every interval. */
static void
progress_due(Receiver *rv)
{
	if (clock_ms() - rv->last_progress_ms >=
	    (int64_t) rv->c->o->progress_interval_s * 1000)
	{
		log_progress(rv);
		rv->last_progress_ms = clock_ms();
	}
}

/* Streams until stop, a fatal error, or a disconnect (returned retryable). */
static bool
receive(Receiver *rv, Error *err)
{
	Cdc *c = rv->c;

	while (!stopping(c))
	{
		StreamEvent ev;

		if (!stream_read(rv->s, 100, &ev, err))
			return false;
		if (ev.wal_end > atomic_load(&c->wal_end))
			atomic_store(&c->wal_end, ev.wal_end);
		if (ev.kind == STREAM_EVENT_DATA && !on_data(rv, ev.data, ev.len, err))
			return false;
		if ((ev.kind == STREAM_EVENT_KEEPALIVE && ev.reply_requested) ||
		    clock_ms() - rv->last_status_ms >= CDC_STATUS_INTERVAL_MS ||
		    (confirmable(rv) > rv->last_confirmed &&
		     clock_ms() - rv->last_status_ms >= CDC_CONFIRM_SOON_MS))
		{
			if (!send_status(rv, false, err))
				return false;
		}
		progress_due(rv);
		/* each turn proves the receiver is neither stuck nor dead */
		notify_watchdog();
	}
	return true;
}

bool
cdc_run(const CdcOptions *o, Error *err)
{
	Cdc c;
	ApplierThread at;
	Receiver rv;
	int backoff_ms = 500;
	bool ok = false, applier_started = false, reported = false;
	const char *spill = o->spill_dir       ? o->spill_dir
	                    : getenv("TMPDIR") ? getenv("TMPDIR")
	                                       : "/tmp";

	memset(&c, 0, sizeof(c));
	memset(&at, 0, sizeof(at));
	memset(&rv, 0, sizeof(rv));
	buf_init(&rv.carry, CDC_CARRY_MAX);
	c.o = o;
	pthread_mutex_init(&c.lock, NULL);
	clock_cond_init(&c.nonempty);
	atomic_store(&c.applier_idle, true);
	rv.c = &c;
	at.c = &c;
	pthread_mutex_init(&at.cancel_lock, NULL);
	if (!txnbuf_new(spill, (size_t) o->memory_bytes, &c.buf, err))
		goto out;
	/* where to start: the origin's durable position, else the slot's */
	for (int waited_ms = 0; !connect_applier(&at, err); waited_ms += backoff_ms)
	{
		if (!err->retryable || waited_ms >= 30000 || stopping(&c))
			goto out;
		if (waited_ms == 0)
			log_warn("target: %s; retrying", err->message);
		err_clear(err);
		clock_sleep_ms(backoff_ms);
	}
	if (atomic_load(&c.flushed) == LSN_INVALID)
		atomic_store(&c.flushed, o->start_lsn);
	for (;;)
	{
		Lsn start = atomic_load(&c.received_end) > atomic_load(&c.flushed)
		                ? atomic_load(&c.received_end)
		                : atomic_load(&c.flushed);
		const char *pubs[2] = {o->publication, o->insert_publication};
		PgoOptions opts;

		if (stopping(&c))
			break;
		if (!stream_start(o->source_uri, o->slot, pubs,
		                  o->insert_publication != NULL ? 2 : 1, start,
		                  &c.proto_version, &rv.s, err))
			goto retry;
		rv.skip_below = start;
		if (!reported)
			log_info("streaming from slot \"%s\" at " LSN_FMT " (protocol %d)",
			         o->slot, LSN_ARGS(start), c.proto_version);
		/* a service manager's "started": the stream runs (once) */
		notify_ready();
		memset(&opts, 0, sizeof(opts));
		opts.proto_version = c.proto_version;
		opts.streaming =
		    c.proto_version >= 2 ? PGO_STREAMING_ON : PGO_STREAMING_OFF;
		pgoutput_decoder_free(rv.dec);
		rv.dec = pgoutput_decoder_new(&opts, err);
		if (rv.dec == NULL)
			goto out;
		if (!applier_started)
		{
			if (!make_decoders(&at, err))
				goto out;
			if (pthread_create(&at.thread, NULL, applier_main, &at) != 0)
			{
				err_set(err, ERR_INTERNAL, "could not start the applier");
				goto out;
			}
			applier_started = true;
		}
		if (reported)
			log_info("streaming again from " LSN_FMT, LSN_ARGS(start));
		reported = false;
		outage_end(&c, CDC_SOURCE);
		backoff_ms = 500;
		if (receive(&rv, err))
			break;
	retry:
		stream_close(rv.s);
		rv.s = NULL;
		drop_partial(&rv);
		/* a break while stopping is part of the stop (under the one slot,
		   the reader's process may stop first): the stop decides the end */
		if (err->retryable && stopping(&c))
		{
			err_clear(err);
			break;
		}
		if (!err->retryable)
			goto out;
		if (!reported)
			log_warn("source: %s; reconnecting", err->message);
		reported = true;
		outage_begin(&c, CDC_SOURCE, err->message);
		atomic_fetch_add(&c.retries[CDC_SOURCE], 1);
		/* status goes on saying where the stream is, and why it waits */
		progress_due(&rv);
		notify_watchdog(); /* alive, and waiting for the source */
		err_clear(err);
		clock_sleep_ms(backoff_ms);
		backoff_ms = backoff_ms * 2 > CDC_RETRY_MAX_MS ? CDC_RETRY_MAX_MS
		                                               : backoff_ms * 2;
	}
	ok = true;
out:
	if (applier_started)
	{
		bool user_stop = o->stop != NULL && *o->stop;

		atomic_store(&c.fatal, true); /* the applier's signal to leave */
		pthread_cond_broadcast(&c.nonempty);
		stop_applier(&at, user_stop);
		pthread_join(at.thread, NULL);
	}
	pg_cancel_free(at.cancel);
	pthread_mutex_destroy(&at.cancel_lock);
	/* tell the slot what the target holds before closing */
	if (rv.s != NULL)
	{
		Error ignored = ERR_INIT;

		send_status(&rv, false, &ignored);
	}
	if (ok || !err_is_set(err))
	{
		pthread_mutex_lock(&c.lock);
		if (err_is_set(&c.err))
		{
			*err = c.err;
			ok = false;
		}
		pthread_mutex_unlock(&c.lock);
	}
	if (ok && atomic_load(&c.stop_reached))
	{
		int64_t beyond = atomic_load(&c.beyond_stop);

		if (beyond > 0)
			log_warn("cutover: %lld source transactions committed after the "
			         "cutover marker were received and not applied",
			         (long long) beyond);
		if (o->stopped_at != NULL)
			*o->stopped_at = atomic_load(&c.stop_lsn);
	}
	else if (ok && o->stop != NULL && *o->stop)
		ok = err_set(err, ERR_INTERRUPTED, "interrupted");
	stream_close(rv.s);
	drop_partial(&rv);
	buf_free(&rv.carry);
	pgoutput_decoder_free(rv.dec);
	pgoutput_decoder_free(at.plain);
	pgoutput_decoder_free(at.stream);
	apply_free(at.ap);
	relcols_free(at.relcols);
	txnbuf_free(c.buf);
	free(c.queue);
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.nonempty);
	return ok;
}
