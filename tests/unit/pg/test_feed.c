/*
 * Unit tests of feed: frames over a socket pair arrive whole and in order,
 * a frame larger than the socket's buffer included; queued frames too,
 * across the buffers' edges and with a frame larger than a buffer among
 * them; a wait with nothing sent times out empty; the other end closed is
 * an error, not a frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <pthread.h>

#include "pg/feed.h"

typedef struct Sender
{
	int fd;
	uint8_t *big;
	size_t big_len;
	bool ok;
} Sender;

static void *
send_frames(void *arg)
{
	Sender *s = arg;
	Error err = ERR_INIT;
	uint8_t lsn[8];

	feed_put_u64(lsn, UINT64_C(0x16B3748));
	s->ok = feed_send(s->fd, 'S', lsn, sizeof(lsn), "pub_a\0pub_b", 12, &err) &&
	        feed_send(s->fd, 'D', s->big, s->big_len, NULL, 0, &err) &&
	        feed_send(s->fd, 'R', NULL, 0, NULL, 0, &err);
	return NULL;
}

static void
test_frames_arrive_whole_and_in_order(void **state)
{
	int sv[2];
	Sender s = {0};
	pthread_t th;
	FeedFrame f = {0};
	Error err = ERR_INIT;

	(void) state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.fd = sv[0];
	s.big_len = (size_t) 3 << 20; /* past any socket buffer */
	s.big = malloc(s.big_len);
	assert_non_null(s.big);
	for (size_t i = 0; i < s.big_len; i++)
		s.big[i] = (uint8_t) (i * 7);
	assert_int_equal(pthread_create(&th, NULL, send_frames, &s), 0);

	assert_true(feed_recv(sv[1], 5000, &f, &err));
	assert_int_equal(f.type, 'S');
	assert_int_equal(f.len, 20);
	assert_true(feed_get_u64(f.data) == UINT64_C(0x16B3748));
	assert_string_equal((const char *) f.data + 8, "pub_a");
	assert_string_equal((const char *) f.data + 14, "pub_b");

	assert_true(feed_recv(sv[1], 5000, &f, &err));
	assert_int_equal(f.type, 'D');
	assert_int_equal(f.len, s.big_len);
	assert_memory_equal(f.data, s.big, s.big_len);

	assert_true(feed_recv(sv[1], 5000, &f, &err));
	assert_int_equal(f.type, 'R');
	assert_int_equal(f.len, 0);
	pthread_join(th, NULL);
	assert_true(s.ok);

	/* nothing sent: an empty wait */
	assert_true(feed_recv(sv[1], 10, &f, &err));
	assert_int_equal(f.type, 0);

	/* the other end gone: an error naming it, and sending fails too */
	close(sv[0]);
	assert_false(feed_recv(sv[1], 1000, &f, &err));
	assert_string_equal(err.message,
	                    "the process reading the source's slot stopped");
	err_clear(&err);
	assert_false(feed_send(sv[1], 'F', "x", 1, NULL, 0, &err));
	assert_true(err_is_set(&err));
	close(sv[1]);
	feed_frame_free(&f);
	free(s.big);
}

/* Frame i's length and bytes: small ones of every size, and one larger
   than a buffer. */
#define QUEUED     5000
#define QUEUED_BIG 2500

static size_t
queued_len(int i)
{
	return i == QUEUED_BIG ? FEED_BUFFER + 1000 : (size_t) (i * 37 % 1500);
}

static uint8_t
queued_byte(int i, size_t k)
{
	return (uint8_t) (i + k * 13);
}

static void *
queue_frames(void *arg)
{
	Sender *s = arg;
	Error err = ERR_INIT;
	FeedOut out = {0};
	uint8_t *body = malloc(FEED_BUFFER + 1000);

	s->ok = body != NULL;
	for (int i = 0; s->ok && i < QUEUED; i++)
	{
		for (size_t k = 0; k < queued_len(i); k++)
			body[k] = queued_byte(i, k);
		/* a frame of two parts, as the reader's 'X' is */
		s->ok = feed_queue(s->fd, &out, 'D', body, queued_len(i) / 2,
		                   body + queued_len(i) / 2,
		                   queued_len(i) - queued_len(i) / 2, &err);
	}
	s->ok = s->ok && feed_flush(s->fd, &out, &err);
	feed_out_free(&out);
	free(body);
	return NULL;
}

static void
test_queued_frames_arrive_whole_and_in_order(void **state)
{
	int sv[2];
	Sender s = {0};
	pthread_t th;
	FeedFrame f = {0};
	Error err = ERR_INIT;

	(void) state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.fd = sv[0];
	assert_int_equal(pthread_create(&th, NULL, queue_frames, &s), 0);
	for (int i = 0; i < QUEUED; i++)
	{
		assert_true(feed_recv(sv[1], 5000, &f, &err));
		assert_int_equal(f.type, 'D');
		assert_int_equal(f.len, queued_len(i));
		for (size_t k = 0; k < f.len; k++)
			if (f.data[k] != queued_byte(i, k))
				fail_msg("frame %d, byte %zu", i, k);
	}
	pthread_join(th, NULL);
	assert_true(s.ok);
	assert_true(feed_recv(sv[1], 10, &f, &err));
	assert_int_equal(f.type, 0);
	close(sv[0]);
	close(sv[1]);
	feed_frame_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frames_arrive_whole_and_in_order),
	    cmocka_unit_test(test_queued_frames_arrive_whole_and_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
