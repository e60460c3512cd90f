/*
 * feed: frames over a socket pair between the reader of a task's one slot
 * and each target's process (see feed.h).
 */
#include "pg/feed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* the largest frame buffer kept between frames */
#define FEED_FRAME_KEEP ((size_t) 16 << 20)

static int attached_fd = -1;
static const atomic_int *attached_stop;

void
feed_attach_from_env(const atomic_int *stop)
{
	const char *v = getenv(FEED_FD_ENV);
	char *end;
	long fd;

	if (v == NULL)
		return;
	fd = strtol(v, &end, 10);
	if (*end != '\0' || fd < 0 || fd > 65535 || fcntl((int) fd, F_GETFD) < 0)
		return;
	(void) fcntl((int) fd, F_SETFD, FD_CLOEXEC);
	attached_fd = (int) fd;
	attached_stop = stop;
	/* a process this one starts is not a target's */
	unsetenv(FEED_FD_ENV);
}

int
feed_fd(void)
{
	return attached_fd;
}

const atomic_int *
feed_stop_flag(void)
{
	return attached_stop;
}

void
feed_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (uint8_t) (v & 0xff);
		v >>= 8;
	}
}

uint64_t
feed_get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Writes the iov whole, waiting as long as it takes. */
static bool
send_all(int fd, struct iovec *iov, int niov, Error *err)
{
	struct msghdr msg;
	int first = 0;

	while (first < niov)
	{
		ssize_t n;

		/* a closed end is an error here, not a SIGPIPE for the process */
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov + first;
		msg.msg_iovlen = (size_t) (niov - first);
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, ERR_SOURCE,
			               "the change stream's feed broke: %s",
			               strerror(errno));
		while (first < niov && (size_t) n >= iov[first].iov_len)
			n -= (ssize_t) iov[first++].iov_len;
		if (first < niov)
		{
			iov[first].iov_base = (uint8_t *) iov[first].iov_base + n;
			iov[first].iov_len -= (size_t) n;
		}
	}
	return true;
}

/* A frame's head: its type and its payload's length, big-endian. */
static bool
frame_head(uint8_t head[5], char type, size_t len, Error *err)
{
	if (len > FEED_FRAME_MAX)
		return err_set(err, ERR_INTERNAL, "a feed frame of %zu bytes", len);
	head[0] = (uint8_t) type;
	for (int i = 0; i < 4; i++)
		head[1 + i] = (uint8_t) (len >> (24 - 8 * i));
	return true;
}

bool
feed_send(int fd, char type, const void *a, size_t alen, const void *b,
          size_t blen, Error *err)
{
	uint8_t head[5];
	struct iovec iov[3] = {
	    {head, sizeof(head)},
	    {(void *) (uintptr_t) a, alen}, /* sendmsg reads them */
	    {(void *) (uintptr_t) b, blen}};

	return frame_head(head, type, alen + blen, err) &&
	       send_all(fd, iov, 3, err);
}

bool
feed_flush(int fd, FeedOut *o, Error *err)
{
	struct iovec iov[1] = {{o->buf, o->len}};

	if (o->len == 0)
		return true;
	o->len = 0;
	return send_all(fd, iov, 1, err);
}

bool
feed_queue(int fd, FeedOut *o, char type, const void *a, size_t alen,
           const void *b, size_t blen, Error *err)
{
	size_t need = 5 + alen + blen;

	if (o->len + need > FEED_BUFFER && !feed_flush(fd, o, err))
		return false;
	if (need > FEED_BUFFER)
		return feed_send(fd, type, a, alen, b, blen, err);
	if (o->buf == NULL && (o->buf = malloc(FEED_BUFFER)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!frame_head(o->buf + o->len, type, alen + blen, err))
		return false;
	if (alen > 0)
		memcpy(o->buf + o->len + 5, a, alen);
	if (blen > 0)
		memcpy(o->buf + o->len + 5 + alen, b, blen);
	o->len += need;
	return true;
}

void
feed_out_free(FeedOut *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/*
 * A read that got n <= 0 bytes: the other end closed (a break of the
 * stream, as the source's connection closing is: a process stopping sees
 * it as part of its stop), or the read failed.
 */
static bool
read_failed(ssize_t n, Error *err)
{
	if (n < 0)
		return err_set(err, ERR_SOURCE, "the change stream's feed broke: %s",
		               strerror(errno));
	err_set(err, ERR_SOURCE, "the process reading the source's slot stopped");
	err->retryable = true;
	return false;
}

/*
 * Reads what the socket holds into f's buffer, at least one byte, waiting
 * up to timeout_ms (-1: as long as it takes). *got false: nothing came.
 */
static bool
fill(int fd, FeedFrame *f, int timeout_ms, bool *got, Error *err)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	ssize_t n;

	*got = false;
	if (f->in == NULL && (f->in = malloc(FEED_BUFFER)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (f->in_pos > 0)
	{
		memmove(f->in, f->in + f->in_pos, f->in_len - f->in_pos);
		f->in_len -= f->in_pos;
		f->in_pos = 0;
	}
	if (timeout_ms >= 0 && poll(&pfd, 1, timeout_ms) <= 0)
		return true; /* nothing yet, or EINTR: the caller looks at its flags */
	do
		n = read(fd, f->in + f->in_len, FEED_BUFFER - f->in_len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return read_failed(n, err);
	f->in_len += (size_t) n;
	*got = true;
	return true;
}

/* Reads exactly len bytes past the buffer, waiting as long as it takes. */
static bool
read_full(int fd, uint8_t *p, size_t len, Error *err)
{
	while (len > 0)
	{
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return read_failed(n, err);
		p += n;
		len -= (size_t) n;
	}
	return true;
}

bool
feed_recv(int fd, int timeout_ms, FeedFrame *f, Error *err)
{
	const uint8_t *head;
	size_t len = 0, have;
	bool got = true;

	f->type = 0;
	f->len = 0;
	/* the last frame is no longer read: one far larger than usual (a huge
	   value's message) does not stay allocated */
	if (f->cap > FEED_FRAME_KEEP)
	{
		free(f->data);
		f->data = NULL;
		f->cap = 0;
	}
	if (f->in_pos == f->in_len && !fill(fd, f, timeout_ms, &got, err))
		return false;
	if (!got)
		return true;
	/* a frame begun is read whole */
	while (f->in_len - f->in_pos < 5)
		if (!fill(fd, f, -1, &got, err))
			return false;
	head = f->in + f->in_pos;
	for (int i = 0; i < 4; i++)
		len = (len << 8) | head[1 + i];
	if (len > FEED_FRAME_MAX)
		return err_set(err, ERR_INTERNAL, "a feed frame of %zu bytes", len);
	if (len + 1 > f->cap)
	{
		uint8_t *p = realloc(f->data, len + 1);

		if (p == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		f->data = p;
		f->cap = len + 1;
	}
	f->type = (char) head[0];
	f->in_pos += 5;
	have = f->in_len - f->in_pos < len ? f->in_len - f->in_pos : len;
	memcpy(f->data, f->in + f->in_pos, have);
	f->in_pos += have;
	/* the rest of a frame past the buffer comes straight into it */
	if (have < len && !read_full(fd, f->data + have, len - have, err))
	{
		f->type = 0;
		return false;
	}
	f->data[len] = '\0'; /* texts in frames are read as C strings */
	f->len = len;
	return true;
}

void
feed_frame_free(FeedFrame *f)
{
	free(f->data);
	free(f->in);
	memset(f, 0, sizeof(*f));
}
