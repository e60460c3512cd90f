/*
 * feed: the change stream of a task of several targets read once from its
 * one slot (decision 0043) and served to each target's process over a
 * socket pair, in frames. This module owns the frames and the target
 * process's end; stream.c reads a feed in place of a replication
 * connection when this process was given one, and cmd/feeder serves it.
 *
 *   target -> reader   'S' start: LSN (8), then publication names, each
 *                          ended by a NUL
 *                      'F' status: written (8), flushed (8)
 *   reader -> target   'A' started: protocol version (1)
 *                      'D' one CopyData message of the replication stream
 *                          as the source sent it
 *                      'R' the source's stream broke: start again
 *                      'X' error: retryable (1), message
 *
 * It never connects to a server and never decodes a change.
 */
#ifndef PGTIDE_FEED_H
#define PGTIDE_FEED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* The environment variable that names a target process's end. */
#define FEED_FD_ENV "PGTIDE_FEED_FD"

/* A frame's payload is at most a CopyData message: PostgreSQL's 1 GB. */
#define FEED_FRAME_MAX ((size_t) 1 << 30)

/*
 * Frames are read and written through buffers of this size, so that a
 * stream of small messages costs a system call per buffer, not per message.
 */
#define FEED_BUFFER ((size_t) 256 << 10)

typedef struct FeedFrame
{
	char type; /* 0: nothing arrived before the timeout */
	uint8_t *data;
	size_t len;
	size_t cap; /* of data, kept between frames */
	/* read from the socket, not yet framed: in[in_pos..in_len) */
	uint8_t *in;
	size_t in_pos, in_len;
} FeedFrame;

/* Frames queued for one end, in order, not yet written. */
typedef struct FeedOut
{
	uint8_t *buf; /* FEED_BUFFER bytes once used */
	size_t len;
} FeedOut;

/*
 * Called once at start: when FEED_FD_ENV names a descriptor, this process
 * reads its stream from it (closed on exec: pg_dump never inherits it).
 * stop, when set, ends a wait for the stream to start.
 */
void feed_attach_from_env(const atomic_int *stop);

/* This process's end of a feed, or -1. */
int feed_fd(void);

/* The stop flag given to feed_attach_from_env, or NULL. */
const atomic_int *feed_stop_flag(void);

/* Sends one frame: type, then a and b one after the other. */
bool feed_send(int fd, char type, const void *a, size_t alen, const void *b,
               size_t blen, Error *err);

/*
 * Queues one frame like feed_send, writing what was queued first when it
 * would not fit; a frame larger than the buffer is written at once. The
 * frames reach the other end in order, once flushed.
 */
bool feed_queue(int fd, FeedOut *o, char type, const void *a, size_t alen,
                const void *b, size_t blen, Error *err);

/* Writes what o holds, waiting as long as it takes. */
bool feed_flush(int fd, FeedOut *o, Error *err);

void feed_out_free(FeedOut *o);

/*
 * Waits up to timeout_ms for one frame into f (f->type 0 when none came);
 * the frame read before is gone then. The other end closed is an error
 * (ERR_SOURCE). A frame begun is read whole.
 */
bool feed_recv(int fd, int timeout_ms, FeedFrame *f, Error *err);

void feed_frame_free(FeedFrame *f);

void feed_put_u64(uint8_t *p, uint64_t v);
uint64_t feed_get_u64(const uint8_t *p);

#endif
