/*
 * Unit tests of txnbuf: record order across memory and spill files, the
 * memory bound, subtransaction aborts wherever their records are, spill file
 * cleanup, corrupt files, and one writer and one reader thread at once.
 *
 * Each test works in its own directory from mkdtemp under /tmp and removes
 * it. Records are generated from (xid, n) so a reader can check each one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdc/txnbuf.h"

#define REC_MAX 512

/* Test fixture: a fresh spill directory. */
typedef struct Dir
{
	char path[64];
} Dir;

static int
dir_setup(void **state)
{
	Dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/test_txnbuf-XXXXXX");
	if (mkdtemp(d->path) == NULL)
	{
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int
count_files(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int n = 0;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dir);
	return n;
}

/* Path of the only file in dir, or "" */
static void
only_file(const char *path, char *out, size_t cap)
{
	DIR *dir = opendir(path);
	struct dirent *e;

	out[0] = '\0';
	if (dir == NULL)
		return;
	while ((e = readdir(dir)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			snprintf(out, cap, "%s/%s", path, e->d_name);
	closedir(dir);
}

static int
dir_teardown(void **state)
{
	Dir *d = *state;
	DIR *dir = opendir(d->path);
	struct dirent *e;
	char file[PATH_MAX];

	if (dir != NULL)
	{
		while ((e = readdir(dir)) != NULL)
		{
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(file, sizeof(file), "%s/%s", d->path, e->d_name);
			unlink(file);
		}
		closedir(dir);
		rmdir(d->path);
	}
	free(d);
	return 0;
}

/* Record n of transaction xid: its length and bytes. */
static size_t
rec_len(uint32_t xid, uint32_t n, size_t max)
{
	return (size_t) ((xid * 131u + n * 7919u) % max);
}

static void
rec_fill(unsigned char *p, uint32_t xid, uint32_t n, size_t len)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (unsigned char) (xid * 31u + n * 17u + k);
}

static bool
rec_check(const void *data, size_t len, uint32_t xid, uint32_t n, size_t max)
{
	const unsigned char *p = data;

	if (len != rec_len(xid, n, max))
		return false;
	for (size_t k = 0; k < len; k++)
		if (p[k] != (unsigned char) (xid * 31u + n * 17u + k))
			return false;
	return true;
}

/* Appends record n of xid as produced by subxid. */
static void
put(TxnBuf *b, uint32_t xid, uint32_t subxid, uint32_t n, size_t max)
{
	unsigned char rec[REC_MAX];
	size_t len = rec_len(xid, n, max);
	Error err = ERR_INIT;

	assert_true(max <= REC_MAX);
	rec_fill(rec, xid, n, len);
	if (!txnbuf_append(b, xid, subxid, rec, len, &err))
		fail_msg("append %u/%u: %s", xid, n, err.message);
}

/* Reads sealed xid and checks it holds records want[0..nwant) in order. */
static void
expect_records(TxnBuf *b, uint32_t xid, const uint32_t *want, size_t nwant,
               size_t max)
{
	TxnReader *r = NULL;
	Error err = ERR_INIT;
	const void *data;
	size_t len;
	bool done = false;

	if (!txnbuf_reader_open(b, xid, &r, &err))
		fail_msg("open %u: %s", xid, err.message);
	for (size_t i = 0; i < nwant; i++)
	{
		if (!txnbuf_reader_next(r, &data, &len, &done, &err))
			fail_msg("read %u #%zu: %s", xid, i, err.message);
		assert_false(done);
		if (!rec_check(data, len, xid, want[i], max))
			fail_msg("xid %u record #%zu is not record %u", xid, i, want[i]);
	}
	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_true(done);
	assert_null(data);
	assert_int_equal(len, 0);
	/* done stays done */
	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_true(done);
	txnbuf_reader_close(r);
}

/* Expects records first..last-1 of xid, in order. */
static void
expect_range(TxnBuf *b, uint32_t xid, uint32_t first, uint32_t last, size_t max)
{
	uint32_t *want = malloc((last - first + 1) * sizeof(*want));

	assert_non_null(want);
	for (uint32_t n = first; n < last; n++)
		want[n - first] = n;
	expect_records(b, xid, want, last - first, max);
	free(want);
}

static TxnBuf *
new_buf(const Dir *d, size_t limit)
{
	TxnBuf *b = NULL;
	Error err = ERR_INIT;

	if (!txnbuf_new(d->path, limit, &b, &err))
		fail_msg("txnbuf_new: %s", err.message);
	return b;
}

static void
seal(TxnBuf *b, uint32_t xid)
{
	Error err = ERR_INIT;

	if (!txnbuf_seal(b, xid, &err))
		fail_msg("seal %u: %s", xid, err.message);
}

static void
abort_sub(TxnBuf *b, uint32_t xid, uint32_t subxid)
{
	Error err = ERR_INIT;

	if (!txnbuf_abort_sub(b, xid, subxid, &err))
		fail_msg("abort_sub %u/%u: %s", xid, subxid, err.message);
}

static void
test_memory_only(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 1 << 20);
	TxnBufStats st;

	for (uint32_t n = 0; n < 100; n++)
		put(b, 7, 7, n, 200);
	assert_true(txnbuf_exists(b, 7));
	seal(b, 7);
	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_txns, 0);
	assert_int_equal(st.spilled_bytes, 0);
	assert_true(st.mem_bytes > 0);
	assert_int_equal(count_files(d->path), 0);
	expect_range(b, 7, 0, 100, 200);
	/* read twice: reading does not consume */
	expect_range(b, 7, 0, 100, 200);
	txnbuf_release(b, 7);
	assert_false(txnbuf_exists(b, 7));
	txnbuf_stats(b, &st);
	assert_int_equal(st.mem_bytes, 0);
	txnbuf_free(b);
}

static void
test_empty_records(void **state)
{
	Dir *d = *state;
	size_t limits[] = {0, 1 << 20};

	for (size_t i = 0; i < 2; i++)
	{
		TxnBuf *b = new_buf(d, limits[i]);
		TxnReader *r = NULL;
		Error err = ERR_INIT;
		const void *data;
		size_t len = 1;
		bool done;

		assert_true(txnbuf_append(b, 1, 1, NULL, 0, &err));
		assert_true(txnbuf_append(b, 1, 1, "x", 1, &err));
		assert_true(txnbuf_append(b, 1, 1, "", 0, &err));
		seal(b, 1);
		assert_true(txnbuf_reader_open(b, 1, &r, &err));
		assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
		assert_false(done);
		assert_int_equal(len, 0);
		assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
		assert_int_equal(len, 1);
		assert_memory_equal(data, "x", 1);
		assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
		assert_false(done);
		assert_int_equal(len, 0);
		assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
		assert_true(done);
		txnbuf_reader_close(r);
		txnbuf_free(b);
		assert_int_equal(count_files(d->path), 0);
	}
}

static void
test_order_across_memory_and_spill(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 4096);
	TxnBufStats st;

	for (uint32_t n = 0; n < 500; n++)
		put(b, 1, 1, n, 200);
	seal(b, 1);
	txnbuf_stats(b, &st);
	/* both a file part and a memory part */
	assert_int_equal(st.spilled_txns, 1);
	assert_true(st.spilled_bytes > 0);
	assert_true(st.mem_bytes > 0);
	assert_true(st.mem_peak_bytes <= 4096);
	assert_int_equal(count_files(d->path), 1);
	expect_range(b, 1, 0, 500, 200);
	txnbuf_release(b, 1);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_million_small_records(void **state)
{
	Dir *d = *state;
	size_t limit = 64 * 1024;
	TxnBuf *b = new_buf(d, limit);
	TxnBufStats st;
	const uint32_t count = 1000000;

	for (uint32_t n = 0; n < count; n++)
		put(b, 42, 42, n, 17);
	seal(b, 42);
	txnbuf_stats(b, &st);
	/* the bound is strict: within the limit, not a record over */
	assert_true(st.mem_peak_bytes <= limit);
	assert_true(st.mem_peak_bytes > limit / 2);
	assert_int_equal(st.spilled_txns, 1);
	expect_range(b, 42, 0, count, 17);
	txnbuf_release(b, 42);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_stats(b, &st);
	assert_int_equal(st.mem_bytes, 0);
	txnbuf_free(b);
}

static void
test_interleaved(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 8192);
	TxnBufStats st;

	for (uint32_t n = 0; n < 600; n++)
	{
		put(b, 10, 10, n, 300);
		put(b, 11, 11, n, 50);
		if (n % 3 == 0)
			put(b, 12, 12, n / 3, 120);
	}
	seal(b, 11);
	/* read 11 while the others grow and spill */
	{
		TxnReader *r = NULL;
		Error err = ERR_INIT;
		const void *data;
		size_t len;
		bool done;

		assert_true(txnbuf_reader_open(b, 11, &r, &err));
		for (uint32_t n = 0; n < 600; n++)
		{
			assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
			assert_false(done);
			assert_true(rec_check(data, len, 11, n, 50));
			put(b, 10, 10, 600 + n, 300);
			put(b, 12, 12, 200 + n, 120);
		}
		assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
		assert_true(done);
		txnbuf_reader_close(r);
	}
	txnbuf_release(b, 11);
	seal(b, 12);
	seal(b, 10);
	txnbuf_stats(b, &st);
	assert_true(st.spilled_txns >= 2);
	assert_true(st.mem_peak_bytes <= 8192);
	expect_range(b, 10, 0, 1200, 300);
	expect_range(b, 12, 0, 800, 120);
	txnbuf_release(b, 10);
	txnbuf_release(b, 12);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_abort_sub_in_memory(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 1 << 20);
	const uint32_t want[] = {0, 1, 2, 3, 4, 20, 21, 22};
	const uint32_t want2[] = {0, 1, 2, 3, 6, 7};
	TxnBufStats st;

	for (uint32_t n = 0; n < 5; n++)
		put(b, 100, 100, n, 100);
	for (uint32_t n = 5; n < 10; n++)
		put(b, 100, 101, n, 100);
	for (uint32_t n = 10; n < 15; n++)
		put(b, 100, 102, n, 100);
	abort_sub(b, 100, 102);
	for (uint32_t n = 15; n < 20; n++)
		put(b, 100, 103, n, 100);
	/* 103 started after 101: it goes too */
	abort_sub(b, 100, 101);
	abort_sub(b, 100, 103); /* forgotten: a no-op */
	abort_sub(b, 100, 999); /* never appended: a no-op */
	abort_sub(b, 555, 556); /* unknown xid: a no-op */
	assert_false(txnbuf_exists(b, 555));
	for (uint32_t n = 20; n < 23; n++)
		put(b, 100, 100, n, 100);
	seal(b, 100);
	expect_records(b, 100, want, sizeof(want) / sizeof(want[0]), 100);
	txnbuf_release(b, 100);

	/* a return to an outer subtransaction: 201, 202, 201 again */
	for (uint32_t n = 0; n < 3; n++)
		put(b, 200, 200, n, 100);
	put(b, 200, 201, 3, 100);
	put(b, 200, 202, 4, 100);
	put(b, 200, 201, 5, 100);
	abort_sub(b, 200, 202); /* truncates at 202's first record: 4 and 5 */
	put(b, 200, 201, 6, 100);
	put(b, 200, 201, 7, 100);
	abort_sub(b, 200, 202); /* forgotten */
	seal(b, 200);
	expect_records(b, 200, want2, sizeof(want2) / sizeof(want2[0]), 100);
	txnbuf_release(b, 200);

	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_txns, 0);
	assert_int_equal(st.mem_bytes, 0);
	txnbuf_free(b);
}

static void
test_abort_sub_in_file(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 0); /* every record goes to the file */
	const uint32_t want[] = {0, 1, 2, 3, 4, 10, 11};
	char path[PATH_MAX];
	struct stat st_file;
	off_t size_before;
	TxnBufStats st;

	for (uint32_t n = 0; n < 5; n++)
		put(b, 300, 300, n, 100);
	only_file(d->path, path, sizeof(path));
	assert_int_equal(stat(path, &st_file), 0);
	size_before = st_file.st_size;
	for (uint32_t n = 5; n < 10; n++)
		put(b, 300, 301, n, 100);
	abort_sub(b, 300, 301);
	assert_int_equal(stat(path, &st_file), 0);
	assert_int_equal(st_file.st_size, size_before);
	for (uint32_t n = 10; n < 12; n++)
		put(b, 300, 300, n, 100);
	seal(b, 300);
	txnbuf_stats(b, &st);
	assert_int_equal(st.mem_peak_bytes, 0);
	expect_records(b, 300, want, sizeof(want) / sizeof(want[0]), 100);
	txnbuf_release(b, 300);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_abort_sub_spanning(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 2048);
	TxnBufStats st;
	uint32_t want[400];
	size_t nwant = 0;
	uint64_t spilled;

	/* 1: the subtransaction starts in the file and ends in memory */
	for (uint32_t n = 0; n < 5; n++)
		put(b, 400, 400, n, 60);
	for (uint32_t n = 5; n < 200; n++)
		put(b, 400, 401, n, 60);
	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_txns, 1);
	assert_true(st.mem_bytes > 0);
	abort_sub(b, 400, 401);
	txnbuf_stats(b, &st);
	assert_int_equal(st.mem_bytes, 0);
	for (uint32_t n = 0; n < 5; n++)
		want[nwant++] = n;

	/* 2: after a spill, a subtransaction held in memory only */
	spilled = st.spilled_bytes;
	for (uint32_t n = 200; n < 400; n++)
	{
		put(b, 400, 400, n, 60);
		want[nwant++] = n;
	}
	txnbuf_stats(b, &st);
	assert_true(st.spilled_bytes > spilled);
	spilled = st.spilled_bytes;
	put(b, 400, 402, 400, 60);
	put(b, 400, 402, 401, 60);
	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_bytes, spilled); /* still in memory */
	abort_sub(b, 400, 402);
	put(b, 400, 400, 402, 60);
	want[nwant++] = 402;
	seal(b, 400);
	expect_records(b, 400, want, nwant, 60);
	txnbuf_release(b, 400);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_abort_top_level_discards(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 1024);

	for (uint32_t n = 0; n < 100; n++)
		put(b, 500, 501, n, 100);
	assert_int_equal(count_files(d->path), 1);
	abort_sub(b, 500, 500);
	assert_false(txnbuf_exists(b, 500));
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_discard_removes_files(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 1024);
	TxnBufStats st;

	for (uint32_t n = 0; n < 200; n++)
		for (uint32_t xid = 1; xid <= 5; xid++)
			put(b, xid, xid, n, 100);
	assert_int_equal(count_files(d->path), 5);
	for (uint32_t xid = 1; xid <= 5; xid++)
		txnbuf_discard(b, xid);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_stats(b, &st);
	assert_int_equal(st.mem_bytes, 0);
	for (uint32_t xid = 1; xid <= 5; xid++)
		assert_false(txnbuf_exists(b, xid));
	txnbuf_discard(b, 77); /* unknown: a no-op */

	/* a sealed transaction is the reader's: discard leaves it */
	for (uint32_t n = 0; n < 50; n++)
		put(b, 6, 6, n, 100);
	seal(b, 6);
	txnbuf_discard(b, 6);
	assert_true(txnbuf_exists(b, 6));
	/* a discarded xid can start again */
	put(b, 1, 1, 0, 100);
	seal(b, 1);
	expect_range(b, 1, 0, 1, 100);
	expect_range(b, 6, 0, 50, 100);
	txnbuf_release(b, 1);
	txnbuf_release(b, 6);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_release_removes_files(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 2048);
	TxnReader *r = NULL;
	Error err = ERR_INIT;

	for (uint32_t n = 0; n < 300; n++)
		put(b, 9, 9, n, 100);
	seal(b, 9);
	assert_int_equal(count_files(d->path), 1);
	/* an open reader keeps it */
	assert_true(txnbuf_reader_open(b, 9, &r, &err));
	txnbuf_release(b, 9);
	assert_true(txnbuf_exists(b, 9));
	txnbuf_reader_close(r);
	txnbuf_release(b, 9);
	assert_false(txnbuf_exists(b, 9));
	assert_int_equal(count_files(d->path), 0);
	/* releasing an open transaction or an unknown one does nothing */
	put(b, 8, 8, 0, 100);
	txnbuf_release(b, 8);
	assert_true(txnbuf_exists(b, 8));
	txnbuf_release(b, 12345);
	txnbuf_free(b);
}

/* Appends a len-byte record of byte value fill (len may exceed REC_MAX). */
static void
put_big(TxnBuf *b, uint32_t xid, size_t len, unsigned char fill)
{
	unsigned char *p = malloc(len);
	Error err = ERR_INIT;

	assert_non_null(p);
	memset(p, fill, len);
	p[0] = 0xAB;
	p[len - 1] = 0xCD;
	if (!txnbuf_append(b, xid, xid, p, len, &err))
		fail_msg("append %zu bytes: %s", len, err.message);
	free(p);
}

static void
check_big(TxnReader *r, size_t len, unsigned char fill)
{
	const unsigned char *p;
	const void *data;
	size_t got;
	bool done;
	Error err = ERR_INIT;

	if (!txnbuf_reader_next(r, &data, &got, &done, &err))
		fail_msg("read: %s", err.message);
	assert_false(done);
	assert_int_equal(got, len);
	p = data;
	assert_int_equal(p[0], 0xAB);
	assert_int_equal(p[len - 1], 0xCD);
	for (size_t i = 1; i + 1 < len; i++)
		if (p[i] != fill)
			fail_msg("byte %zu of a %zu-byte record is %u", i, len, p[i]);
}

static void
check_small(TxnReader *r, uint32_t xid, uint32_t n, size_t max)
{
	const void *data;
	size_t len;
	bool done;
	Error err = ERR_INIT;

	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_false(done);
	assert_true(rec_check(data, len, xid, n, max));
}

static void
test_record_larger_than_limit(void **state)
{
	Dir *d = *state;
	size_t limit = 4096;
	size_t huge = (size_t) 3 << 20; /* more than the reader's buffer */
	TxnBuf *b = new_buf(d, limit);
	TxnReader *r = NULL;
	TxnBufStats st;
	Error err = ERR_INIT;
	const void *data;
	size_t len;
	bool done;

	put(b, 3, 3, 0, 100);
	put_big(b, 3, 10000, 0x11);
	put(b, 3, 3, 1, 100);
	put_big(b, 3, huge, 0x22);
	put(b, 3, 3, 2, 100);
	put(b, 3, 3, 3, 100);
	seal(b, 3);
	txnbuf_stats(b, &st);
	assert_true(st.mem_peak_bytes <= limit);
	assert_true(st.mem_bytes > 0); /* records 2 and 3 */
	assert_true(txnbuf_reader_open(b, 3, &r, &err));
	check_small(r, 3, 0, 100);
	check_big(r, 10000, 0x11);
	check_small(r, 3, 1, 100);
	check_big(r, huge, 0x22);
	check_small(r, 3, 2, 100);
	check_small(r, 3, 3, 100);
	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_true(done);
	txnbuf_reader_close(r);
	txnbuf_release(b, 3);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

/* A 1 GB record: slow, so only with PGTIDE_TEST_HUGE=1. */
static void
test_record_of_one_gigabyte(void **state)
{
	Dir *d = *state;
	size_t huge = (size_t) 1 << 30;
	const char *env = getenv("PGTIDE_TEST_HUGE");
	TxnBuf *b;
	TxnReader *r = NULL;
	Error err = ERR_INIT;

	if (env == NULL || strcmp(env, "1") != 0)
	{
		skip();
		return;
	}
	b = new_buf(d, 1 << 20);
	put(b, 4, 4, 0, 100);
	put_big(b, 4, huge, 0x33);
	put(b, 4, 4, 1, 100);
	seal(b, 4);
	assert_true(txnbuf_reader_open(b, 4, &r, &err));
	check_small(r, 4, 0, 100);
	check_big(r, huge, 0x33);
	check_small(r, 4, 1, 100);
	txnbuf_reader_close(r);
	txnbuf_free(b);
	assert_int_equal(count_files(d->path), 0);
}

/* Reads xid until an error; returns how many records were read first. */
static int
read_until_error(TxnBuf *b, uint32_t xid, Error *err)
{
	TxnReader *r = NULL;
	const void *data;
	size_t len;
	bool done = false;
	int n = 0;

	assert_true(txnbuf_reader_open(b, xid, &r, err));
	while (txnbuf_reader_next(r, &data, &len, &done, err))
	{
		if (done)
			fail_msg("read all of transaction %u without an error", xid);
		n++;
	}
	/* failed readers keep failing */
	{
		Error again = ERR_INIT;

		assert_false(txnbuf_reader_next(r, &data, &len, &done, &again));
	}
	txnbuf_reader_close(r);
	return n;
}

static void
test_corrupt_spill_file(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 0);
	char path[PATH_MAX];
	struct stat st_file;
	Error err = ERR_INIT;
	FILE *f;
	int c;

	for (uint32_t n = 0; n < 10; n++)
		put(b, 50, 50, n, 100);
	seal(b, 50);
	only_file(d->path, path, sizeof(path));
	assert_int_equal(stat(path, &st_file), 0);

	/* cut inside the last record */
	assert_int_equal(truncate(path, st_file.st_size - 3), 0);
	assert_int_equal(read_until_error(b, 50, &err), 9);
	assert_int_equal(err.kind, ERR_INTERNAL);
	assert_non_null(strstr(err.message, path));
	assert_non_null(strstr(err.message, "truncated"));

	/* cut inside a header */
	err_clear(&err);
	assert_int_equal(truncate(path, 2), 0);
	assert_int_equal(read_until_error(b, 50, &err), 0);
	assert_non_null(strstr(err.message, "truncated"));

	/* gone */
	err_clear(&err);
	assert_int_equal(unlink(path), 0);
	{
		TxnReader *r = NULL;

		assert_false(txnbuf_reader_open(b, 50, &r, &err));
		assert_null(r);
		assert_non_null(strstr(err.message, path));
		assert_non_null(strstr(err.message, "No such file"));
	}
	txnbuf_release(b, 50);

	/* a changed byte in a payload, then in a length */
	for (uint32_t n = 0; n < 10; n++)
		put(b, 51, 51, n, 100);
	seal(b, 51);
	only_file(d->path, path, sizeof(path));
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 8 + 2, SEEK_SET), 0); /* record 0's payload */
	c = fgetc(f);
	assert_int_equal(fseek(f, 8 + 2, SEEK_SET), 0);
	fputc(c ^ 0x5A, f);
	fclose(f);
	err_clear(&err);
	assert_int_equal(read_until_error(b, 51, &err), 0);
	assert_non_null(strstr(err.message, "checksum mismatch"));
	assert_non_null(strstr(err.message, "offset 0"));

	f = fopen(path, "r+b");
	assert_non_null(f);
	fputc(0xFF, f); /* record 0's length becomes huge */
	fputc(0xFF, f);
	fputc(0xFF, f);
	fclose(f);
	err_clear(&err);
	assert_int_equal(read_until_error(b, 51, &err), 0);
	assert_non_null(strstr(err.message, "corrupt"));
	txnbuf_release(b, 51);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(b);
}

static void
test_open_reader_is_never_spilled(void **state)
{
	Dir *d = *state;
	size_t limit = 4096;
	TxnBuf *b = new_buf(d, limit);
	TxnReader *r = NULL;
	TxnBufStats st;
	Error err = ERR_INIT;
	const void *data;
	size_t len;
	bool done;
	uint64_t spilled_txns;

	for (uint32_t n = 0; n < 30; n++)
		put(b, 1, 1, n, 100);
	seal(b, 1);
	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_txns, 0);
	assert_true(txnbuf_reader_open(b, 1, &r, &err));
	check_small(r, 1, 0, 100);
	/* fill memory from another transaction while 1 is read */
	for (uint32_t n = 0; n < 500; n++)
		put(b, 2, 2, n, 100);
	txnbuf_stats(b, &st);
	assert_int_equal(st.spilled_txns, 1); /* 2 alone */
	assert_true(st.mem_peak_bytes <= limit);
	for (uint32_t n = 1; n < 30; n++)
		check_small(r, 1, n, 100);
	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_true(done);
	txnbuf_reader_close(r);

	/* closed, 1 is the largest and may be spilled while sealed */
	txnbuf_discard(b, 2);
	spilled_txns = st.spilled_txns;
	for (uint32_t n = 0; n < 500; n++)
		put(b, 3, 3, n, 20);
	txnbuf_stats(b, &st);
	assert_true(st.spilled_txns >= spilled_txns + 1);
	assert_int_equal(count_files(d->path), 2); /* 1 and 3 */
	expect_range(b, 1, 0, 30, 100);
	seal(b, 3);
	expect_range(b, 3, 0, 500, 20);
	txnbuf_free(b);
	assert_int_equal(count_files(d->path), 0);
}

static void
test_free_with_live_transactions(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 2048);

	for (uint32_t n = 0; n < 200; n++)
	{
		put(b, 1, 1, n, 100); /* open, spilled */
		put(b, 2, 2, n, 100); /* sealed, spilled */
	}
	put(b, 3, 3, 0, 10); /* open, in memory */
	seal(b, 2);
	seal(b, 4); /* sealed, empty */
	assert_true(count_files(d->path) >= 2);
	txnbuf_free(b);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(NULL);
}

static void
test_errors(void **state)
{
	Dir *d = *state;
	TxnBuf *b = NULL;
	TxnReader *r = NULL;
	Error err = ERR_INIT;
	char path[128];
	const void *data;
	size_t len;
	bool done;
	unsigned char byte = 0;
	FILE *f;

	/* no such directory */
	snprintf(path, sizeof(path), "%s/missing", d->path);
	assert_false(txnbuf_new(path, 1024, &b, &err));
	assert_null(b);
	assert_int_equal(err.kind, ERR_INTERNAL);
	assert_non_null(strstr(err.message, path));
	assert_non_null(strstr(err.message, "No such file"));
	/* a file, not a directory */
	snprintf(path, sizeof(path), "%s/plain", d->path);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	err_clear(&err);
	assert_false(txnbuf_new(path, 1024, &b, &err));
	assert_non_null(strstr(err.message, "not a directory"));
	unlink(path);

	b = new_buf(d, 1024);
	/* sealing an xid that never appended gives an empty transaction */
	seal(b, 5);
	expect_records(b, 5, NULL, 0, 100);
	err_clear(&err);
	assert_false(txnbuf_seal(b, 5, &err));
	assert_non_null(strstr(err.message, "already sealed"));
	err_clear(&err);
	assert_false(txnbuf_append(b, 5, 5, &byte, 1, &err));
	assert_non_null(strstr(err.message, "transaction 5 is already sealed"));
	err_clear(&err);
	assert_false(txnbuf_abort_sub(b, 5, 6, &err));
	assert_non_null(strstr(err.message, "already sealed"));
	err_clear(&err);
	assert_false(txnbuf_append(b, 6, 6, &byte, TXNBUF_RECORD_MAX + 1, &err));
	assert_non_null(strstr(err.message, "exceeds the maximum"));
	assert_false(txnbuf_exists(b, 6));

	/* readers: unknown, not sealed, twice */
	err_clear(&err);
	assert_false(txnbuf_reader_open(b, 99, &r, &err));
	assert_non_null(strstr(err.message, "transaction 99: not buffered"));
	put(b, 7, 7, 0, 100);
	err_clear(&err);
	assert_false(txnbuf_reader_open(b, 7, &r, &err));
	assert_non_null(strstr(err.message, "not sealed"));
	assert_true(txnbuf_reader_open(b, 5, &r, &err));
	err_clear(&err);
	{
		TxnReader *r2 = NULL;

		assert_false(txnbuf_reader_open(b, 5, &r2, &err));
		assert_non_null(strstr(err.message, "already open"));
		assert_null(r2);
	}
	assert_true(txnbuf_reader_next(r, &data, &len, &done, &err));
	assert_true(done);
	txnbuf_reader_close(r);
	txnbuf_reader_close(NULL);
	txnbuf_release(b, 5);
	txnbuf_free(b);
}

static void
test_spill_dir_vanishes(void **state)
{
	Dir *d = *state;
	TxnBuf *b = new_buf(d, 1024);
	Error err = ERR_INIT;
	unsigned char rec[100] = {0};
	bool ok = true;

	assert_int_equal(rmdir(d->path), 0);
	for (int n = 0; n < 100 && ok; n++)
		ok = txnbuf_append(b, 1, 1, rec, sizeof(rec), &err);
	assert_false(ok);
	assert_int_equal(err.kind, ERR_INTERNAL);
	assert_non_null(strstr(err.message, "could not open spill file"));
	assert_non_null(strstr(err.message, d->path));
	assert_non_null(strstr(err.message, "No such file"));
	txnbuf_free(b);
	assert_int_equal(mkdir(d->path, 0700), 0);
}

/*
 * One writer thread fills many transactions at once (with a subtransaction
 * aborted at the end of each) and hands each sealed xid to one reader thread,
 * which checks and releases it. cmocka asserts only on the main thread.
 */
#define CONC_TXNS   300
#define CONC_ACTIVE 8
#define CONC_MAX    300

typedef struct Handoff
{
	pthread_mutex_t lock;
	pthread_cond_t ready;
	uint32_t xids[CONC_TXNS];
	int produced;
	int consumed;
	bool writer_done;
	TxnBuf *b;
	char failure[ERR_MSG_MAX + 64];
} Handoff;

static uint32_t
conc_count(uint32_t xid)
{
	return 1 + (xid * 37u) % 400;
}

/* Records the first failure for the main thread; returns NULL to exit. */
static void *
conc_fail(Handoff *h, const char *what, const Error *err)
{
	pthread_mutex_lock(&h->lock);
	if (h->failure[0] == '\0')
		snprintf(h->failure, sizeof(h->failure), "%s: %s", what,
		         err != NULL ? err->message : "");
	pthread_cond_broadcast(&h->ready);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void *
conc_writer(void *arg)
{
	Handoff *h = arg;
	uint32_t next_n[CONC_ACTIVE];
	uint32_t active[CONC_ACTIVE];
	uint32_t next_xid = 1000;
	int started = 0;
	unsigned char rec[REC_MAX];
	Error err = ERR_INIT;

	for (int i = 0; i < CONC_ACTIVE; i++)
	{
		active[i] = next_xid++;
		next_n[i] = 0;
		started++;
	}
	for (int live = CONC_ACTIVE; live > 0;)
	{
		for (int i = 0; i < CONC_ACTIVE; i++)
		{
			uint32_t xid = active[i];
			uint32_t n = next_n[i];
			size_t len;

			if (xid == 0)
				continue;
			if (n < conc_count(xid))
			{
				len = rec_len(xid, n, CONC_MAX);
				rec_fill(rec, xid, n, len);
				if (!txnbuf_append(h->b, xid, xid, rec, len, &err))
					return conc_fail(h, "append", &err);
				next_n[i]++;
				continue;
			}
			/* a subtransaction that aborts leaves nothing */
			for (uint32_t k = 0; k < 20; k++)
			{
				if (!txnbuf_append(h->b, xid, xid + 100000, rec, 50, &err))
					return conc_fail(h, "append sub", &err);
			}
			if (!txnbuf_abort_sub(h->b, xid, xid + 100000, &err) ||
			    !txnbuf_seal(h->b, xid, &err))
				return conc_fail(h, "abort or seal", &err);
			pthread_mutex_lock(&h->lock);
			h->xids[h->produced++] = xid;
			pthread_cond_signal(&h->ready);
			pthread_mutex_unlock(&h->lock);
			if (started < CONC_TXNS)
			{
				active[i] = next_xid++;
				next_n[i] = 0;
				started++;
			}
			else
			{
				active[i] = 0;
				live--;
			}
		}
	}
	pthread_mutex_lock(&h->lock);
	h->writer_done = true;
	pthread_cond_broadcast(&h->ready);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void *
conc_reader(void *arg)
{
	Handoff *h = arg;
	Error err = ERR_INIT;
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 120;
	for (;;)
	{
		uint32_t xid;
		TxnReader *r = NULL;
		const void *data;
		size_t len;
		bool done = false;
		uint32_t n = 0;

		pthread_mutex_lock(&h->lock);
		while (h->consumed == h->produced && !h->writer_done &&
		       h->failure[0] == '\0')
		{
			if (pthread_cond_timedwait(&h->ready, &h->lock, &deadline) ==
			    ETIMEDOUT)
			{
				pthread_mutex_unlock(&h->lock);
				return conc_fail(h, "reader timed out", NULL);
			}
		}
		if (h->failure[0] != '\0' || h->consumed == h->produced)
		{
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		xid = h->xids[h->consumed++];
		pthread_mutex_unlock(&h->lock);

		if (!txnbuf_reader_open(h->b, xid, &r, &err))
			return conc_fail(h, "open", &err);
		while (txnbuf_reader_next(r, &data, &len, &done, &err) && !done)
		{
			if (!rec_check(data, len, xid, n, CONC_MAX))
			{
				txnbuf_reader_close(r);
				return conc_fail(h, "record differs", NULL);
			}
			n++;
		}
		txnbuf_reader_close(r);
		if (!done)
			return conc_fail(h, "read", &err);
		if (n != conc_count(xid))
			return conc_fail(h, "record count differs", NULL);
		txnbuf_release(h->b, xid);
	}
}

static void
test_concurrent_writer_and_reader(void **state)
{
	Dir *d = *state;
	size_t limit = 16 * 1024;
	Handoff *h = calloc(1, sizeof(*h));
	pthread_t writer;
	pthread_t reader;
	TxnBufStats st;

	assert_non_null(h);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->ready, NULL);
	h->b = new_buf(d, limit);
	assert_int_equal(pthread_create(&writer, NULL, conc_writer, h), 0);
	assert_int_equal(pthread_create(&reader, NULL, conc_reader, h), 0);
	pthread_join(writer, NULL);
	pthread_join(reader, NULL);
	if (h->failure[0] != '\0')
		fail_msg("%s", h->failure);
	assert_int_equal(h->consumed, CONC_TXNS);
	txnbuf_stats(h->b, &st);
	assert_int_equal(st.mem_bytes, 0);
	assert_true(st.mem_peak_bytes <= limit);
	assert_true(st.spilled_txns > 0);
	assert_int_equal(count_files(d->path), 0);
	txnbuf_free(h->b);
	pthread_cond_destroy(&h->ready);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    DIR_TEST(test_memory_only),
	    DIR_TEST(test_empty_records),
	    DIR_TEST(test_order_across_memory_and_spill),
	    DIR_TEST(test_million_small_records),
	    DIR_TEST(test_interleaved),
	    DIR_TEST(test_abort_sub_in_memory),
	    DIR_TEST(test_abort_sub_in_file),
	    DIR_TEST(test_abort_sub_spanning),
	    DIR_TEST(test_abort_top_level_discards),
	    DIR_TEST(test_discard_removes_files),
	    DIR_TEST(test_release_removes_files),
	    DIR_TEST(test_record_larger_than_limit),
	    DIR_TEST(test_record_of_one_gigabyte),
	    DIR_TEST(test_corrupt_spill_file),
	    DIR_TEST(test_open_reader_is_never_spilled),
	    DIR_TEST(test_free_with_live_transactions),
	    DIR_TEST(test_errors),
	    DIR_TEST(test_spill_dir_vanishes),
	    DIR_TEST(test_concurrent_writer_and_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
