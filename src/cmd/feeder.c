/*
 * feeder: the reader of a task's one slot under shard.slot one (decision
 * 0043), on a thread of migrate's (or follow's) first process. It reads
 * the source's change stream once and sends every message, as it came, to
 * each target's process (pg/feed); each target decodes, routes, applies and
 * keeps its own replication origin as it would from a slot of its own.
 *
 * The slot is confirmed only up to the lowest position every target has
 * durably committed (each one's flushed, as its process reports it), so
 * after any crash every target finds what it lacks. It starts the stream
 * once every target asked, at the lowest position asked; a target that
 * asks again (its own stream broke), or a broken source stream, starts it
 * again for all. It never decodes a change and never writes to a target.
 */
#include "cmd/task.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/lsn.h"
#include "pg/feed.h"
#include "pg/stream.h"
#include "route/shard.h"

#define FEEDER_STATUS_MS    1000
#define FEEDER_CONFIRM_MS   100
#define FEEDER_RETRY_MAX_MS 10000
/* the most targets a task has (load/shards' bit set of targets) */
#define FEEDER_TARGETS_MAX SHARD_TARGETS_MAX
/* each target streams at most two publications, each a name of at most
   63 bytes (NAMEDATALEN) */
#define FEEDER_PUBS_MAX (FEEDER_TARGETS_MAX * 2)

typedef struct FeedTarget
{
	int fd;
	bool alive;   /* its end is open */
	bool waiting; /* asked to start, not answered */
	Lsn start;    /* asked for */
	Lsn flushed;  /* durable on the target, as last reported */
	FeedFrame frame;
	FeedOut out; /* stream messages not yet written to it */
} FeedTarget;

struct Feeder
{
	const char *source_uri;
	char slot[64];
	FeedTarget *t;
	int n;
	atomic_int *stop;
	pthread_t thread;
	atomic_bool done;
	Error err; /* set before done, when it failed */
	char *pubs[FEEDER_PUBS_MAX];
	int npubs;
	char pub_text[FEEDER_PUBS_MAX * 64];
	size_t pub_used;
	bool pubs_overflow; /* a name past the room: the stream is refused */
};

static bool
stopping(Feeder *f)
{
	return atomic_load(f->stop) != 0;
}

/* Adds the names of an 'S' frame's publications the feeder lacks. */
static void
note_publications(Feeder *f, const FeedFrame *fr)
{
	size_t at = 8;

	while (at < fr->len)
	{
		const char *name = (const char *) fr->data + at;
		size_t len = strlen(name);
		bool known = false;

		for (int i = 0; i < f->npubs && !known; i++)
			known = strcmp(f->pubs[i], name) == 0;
		if (!known && len > 0 &&
		    (f->pub_used + len + 1 > sizeof(f->pub_text) ||
		     f->npubs == FEEDER_PUBS_MAX))
			f->pubs_overflow = true;
		else if (!known && len > 0)
		{
			memcpy(f->pub_text + f->pub_used, name, len + 1);
			f->pubs[f->npubs++] = f->pub_text + f->pub_used;
			f->pub_used += len + 1;
		}
		at += len + 1;
	}
}

/*
 * Reads what the targets sent, without waiting past timeout_ms. Returns
 * the number of targets that asked to start anew; a target whose end
 * closed is no longer fed.
 */
static int
hear_targets(Feeder *f, int timeout_ms)
{
	struct pollfd pfd[FEEDER_TARGETS_MAX];
	int asked = 0;

	for (int i = 0; i < f->n; i++)
	{
		pfd[i].fd = f->t[i].alive ? f->t[i].fd : -1;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if (poll(pfd, (nfds_t) f->n, timeout_ms) <= 0)
		return 0;
	for (int i = 0; i < f->n; i++)
	{
		FeedTarget *t = &f->t[i];
		Error err = ERR_INIT;

		while (t->alive && pfd[i].revents != 0)
		{
			if (!feed_recv(t->fd, 0, &t->frame, &err))
			{
				t->alive = false;
				break;
			}
			if (t->frame.type == 0)
				break;
			if (t->frame.type == 'F' && t->frame.len == 16)
			{
				Lsn flushed = feed_get_u64(t->frame.data + 8);

				if (flushed > t->flushed)
					t->flushed = flushed;
			}
			else if (t->frame.type == 'S' && t->frame.len >= 8)
			{
				t->waiting = true;
				t->start = feed_get_u64(t->frame.data);
				if (t->flushed < t->start)
					t->flushed = t->start;
				note_publications(f, &t->frame);
				asked++;
			}
		}
	}
	return asked;
}

/* The lowest flushed position over the targets: what the slot may forget. */
static Lsn
confirmable(const Feeder *f)
{
	Lsn low = LSN_INVALID;

	for (int i = 0; i < f->n; i++)
		if (low == LSN_INVALID || f->t[i].flushed < low)
			low = f->t[i].flushed;
	return low;
}

/*
 * Sends a frame to every target still fed (and waiting, when asked), after
 * the stream messages queued for it. A stream message ('D') is queued
 * (flush_all writes them), every other frame is written at once.
 */
static void
tell(Feeder *f, char type, const void *a, size_t alen, const void *b,
     size_t blen, bool only_waiting)
{
	for (int i = 0; i < f->n; i++)
	{
		FeedTarget *t = &f->t[i];
		Error err = ERR_INIT;

		if (t->alive && (!only_waiting || t->waiting) &&
		    (!feed_queue(t->fd, &t->out, type, a, alen, b, blen, &err) ||
		     (type != 'D' && !feed_flush(t->fd, &t->out, &err))))
			t->alive = false;
	}
}

/* Writes the stream messages queued for every target. */
static void
flush_all(Feeder *f)
{
	for (int i = 0; i < f->n; i++)
	{
		FeedTarget *t = &f->t[i];
		Error err = ERR_INIT;

		if (t->alive && !feed_flush(t->fd, &t->out, &err))
			t->alive = false;
	}
}

static void
tell_error(Feeder *f, const Error *e, bool only_waiting)
{
	uint8_t retry = e->retryable ? 1 : 0;

	tell(f, 'X', &retry, 1, e->message, strlen(e->message) + 1, only_waiting);
}

/* Whether every target still fed asked to start (and one at least is). */
static bool
all_asked(const Feeder *f)
{
	int alive = 0;

	for (int i = 0; i < f->n; i++)
	{
		if (f->t[i].alive && !f->t[i].waiting)
			return false;
		alive += f->t[i].alive;
	}
	return alive > 0;
}

static bool
any_alive(const Feeder *f)
{
	for (int i = 0; i < f->n; i++)
		if (f->t[i].alive)
			return true;
	return false;
}

/* Starts the source's stream at the lowest position asked. */
static bool
start_stream(Feeder *f, StreamConn **s, Error *err)
{
	Lsn from = LSN_INVALID;
	uint8_t proto;
	int version;

	for (int i = 0; i < f->n; i++)
		if (f->t[i].alive && (from == LSN_INVALID || f->t[i].start < from))
			from = f->t[i].start;
	/* a stream without one of the targets' publications would drop its
	   tables' changes: refused, never narrowed */
	if (f->pubs_overflow)
		return err_set(err, ERR_INTERNAL,
		               "the targets ask for more than %d publications",
		               FEEDER_PUBS_MAX);
	if (!stream_start(f->source_uri, f->slot, (const char *const *) f->pubs,
	                  f->npubs, from, &version, s, err))
		return false;
	log_info("streaming from slot \"%s\" at " LSN_FMT " for %d targets",
	         f->slot, LSN_ARGS(from), f->n);
	proto = (uint8_t) version;
	tell(f, 'A', &proto, 1, NULL, 0, true);
	for (int i = 0; i < f->n; i++)
		f->t[i].waiting = false;
	return true;
}

/*
 * Streams until a target asks to start anew, the source's stream breaks
 * (err set), or the feeder stops.
 */
static bool
stream(Feeder *f, StreamConn *s, Error *err)
{
	int64_t last_status = clock_ms();
	Lsn confirmed = LSN_INVALID, wal_end = LSN_INVALID;
	bool queued = false;
	int unheard = 0;

	while (!stopping(f) && any_alive(f))
	{
		StreamEvent ev;
		bool reply = false;
		Lsn low;

		/* messages wait in the targets' buffers only while more are there
		   to read at once */
		if (!stream_read(s, queued ? 0 : 50, &ev, err))
			return false;
		if (ev.kind != STREAM_EVENT_NONE)
		{
			tell(f, 'D', ev.raw, ev.raw_len, NULL, 0, false);
			queued = true;
		}
		else if (queued)
		{
			flush_all(f);
			queued = false;
		}
		if (ev.wal_end > wal_end)
			wal_end = ev.wal_end;
		reply = ev.kind == STREAM_EVENT_KEEPALIVE && ev.reply_requested;
		/* the targets are heard between bursts, and every 256 messages */
		if ((ev.kind == STREAM_EVENT_NONE || reply || ++unheard >= 256) &&
		    (unheard = 0, hear_targets(f, 0) > 0))
			return true;
		low = confirmable(f);
		if (reply || clock_ms() - last_status >= FEEDER_STATUS_MS ||
		    (low > confirmed && clock_ms() - last_status >= FEEDER_CONFIRM_MS))
		{
			if (!stream_send_status(s, wal_end, low, false, err))
				return false;
			confirmed = low;
			last_status = clock_ms();
		}
	}
	return true;
}

static void *
feeder_main(void *arg)
{
	Feeder *f = arg;
	StreamConn *s = NULL;
	int backoff_ms = 500;
	Error err = ERR_INIT;

	log_set_role("feeder");
	while (!stopping(f) && any_alive(f))
	{
		hear_targets(f, 200);
		if (!all_asked(f))
			continue;
		if (start_stream(f, &s, &err))
		{
			backoff_ms = 500;
			if (stream(f, s, &err))
			{
				/* stopped: the targets stop too, with nothing to start
				   again (the final status is sent below) */
				if (stopping(f))
					break;
				/* a target asked to start anew: every target does (the
				   one that asked waits for its answer, and is counted) */
				stream_close(s);
				s = NULL;
				tell(f, 'R', NULL, 0, NULL, 0, false);
				continue;
			}
			stream_close(s);
			s = NULL;
			if (err.retryable)
				tell(f, 'R', NULL, 0, NULL, 0, false);
		}
		if (!err.retryable)
		{
			tell_error(f, &err, false);
			f->err = err;
			break;
		}
		log_warn("source: %s; the stream of slot \"%s\" starts again",
		         err.message, f->slot);
		/* each target reports the outage and asks again after its own
		   wait; the one that asked is told now */
		tell_error(f, &err, true);
		for (int i = 0; i < f->n; i++)
			f->t[i].waiting = false;
		err_clear(&err);
		for (int waited = 0; waited < backoff_ms && !stopping(f); waited += 100)
			clock_sleep_ms(100);
		backoff_ms = backoff_ms * 2 > FEEDER_RETRY_MAX_MS ? FEEDER_RETRY_MAX_MS
		                                                  : backoff_ms * 2;
	}
	if (s != NULL)
	{
		Error ignored = ERR_INIT;

		stream_send_status(s, confirmable(f), confirmable(f), false, &ignored);
		stream_close(s);
	}
	atomic_store(&f->done, true);
	return NULL;
}

bool
feeder_start(const char *source_uri, const char *slot, const int *fds, int n,
             atomic_int *stop, Feeder **out, Error *err)
{
	Feeder *f = n <= FEEDER_TARGETS_MAX ? calloc(1, sizeof(Feeder)) : NULL;

	*out = NULL;
	if (f == NULL || (f->t = calloc((size_t) n, sizeof(FeedTarget))) == NULL)
	{
		free(f);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	f->source_uri = source_uri;
	snprintf(f->slot, sizeof(f->slot), "%s", slot);
	f->n = n;
	f->stop = stop;
	for (int i = 0; i < n; i++)
	{
		f->t[i].fd = fds[i];
		f->t[i].alive = true;
	}
	if (pthread_create(&f->thread, NULL, feeder_main, f) != 0)
	{
		free(f->t);
		free(f);
		return err_set(err, ERR_INTERNAL, "could not start the slot's reader");
	}
	*out = f;
	return true;
}

bool
feeder_failed(Feeder *f, Error *err)
{
	if (f == NULL || !atomic_load(&f->done) || !err_is_set(&f->err))
		return false;
	*err = f->err;
	return true;
}

bool
feeder_stop(Feeder *f, Error *err)
{
	bool ok;

	if (f == NULL)
		return true;
	pthread_join(f->thread, NULL);
	ok = !err_is_set(&f->err);
	if (!ok)
		*err = f->err;
	for (int i = 0; i < f->n; i++)
	{
		feed_frame_free(&f->t[i].frame);
		feed_out_free(&f->t[i].out);
	}
	free(f->t);
	free(f);
	return ok;
}
