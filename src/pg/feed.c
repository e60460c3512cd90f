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

bool
feed_send(int fd, char type, const void *a, size_t alen, const void *b,
          size_t blen, Error *err)
{
	uint8_t head[5];
	size_t len = alen + blen;
	struct msghdr msg;
	struct iovec iov[3] = {
	    {head, sizeof(head)},
	    {(void *) (uintptr_t) a, alen}, /* writev reads them */
	    {(void *) (uintptr_t) b, blen}};
	int first = 0;

	if (len > FEED_FRAME_MAX)
		return err_set(err, ERR_INTERNAL, "a feed frame of %zu bytes", len);
	head[0] = (uint8_t) type;
	for (int i = 0; i < 4; i++)
		head[1 + i] = (uint8_t) (len >> (24 - 8 * i));
	while (first < 3)
	{
		ssize_t n;

		/* a closed end is an error here, not a SIGPIPE for the process */
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov + first;
		msg.msg_iovlen = (size_t) (3 - first);
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, ERR_SOURCE,
			               "the change stream's feed broke: %s",
			               strerror(errno));
		while (first < 3 && (size_t) n >= iov[first].iov_len)
			n -= (ssize_t) iov[first++].iov_len;
		if (first < 3)
		{
			iov[first].iov_base = (uint8_t *) iov[first].iov_base + n;
			iov[first].iov_len -= (size_t) n;
		}
	}
	return true;
}

/* Reads exactly len bytes, waiting as long as it takes. */
static bool
read_full(int fd, uint8_t *p, size_t len, Error *err)
{
	while (len > 0)
	{
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return err_set(err, ERR_SOURCE,
			               "the process reading the source's slot stopped");
		if (n < 0)
			return err_set(err, ERR_SOURCE,
			               "the change stream's feed broke: %s",
			               strerror(errno));
		p += n;
		len -= (size_t) n;
	}
	return true;
}

bool
feed_recv(int fd, int timeout_ms, FeedFrame *f, Error *err)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	uint8_t head[5];
	size_t len = 0;

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
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return true; /* nothing yet, or EINTR: the caller looks at its flags */
	if (!read_full(fd, head, sizeof(head), err))
		return false;
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
	if (!read_full(fd, f->data, len, err))
		return false;
	f->data[len] = '\0'; /* texts in frames are read as C strings */
	f->type = (char) head[0];
	f->len = len;
	return true;
}

void
feed_frame_free(FeedFrame *f)
{
	free(f->data);
	memset(f, 0, sizeof(*f));
}
