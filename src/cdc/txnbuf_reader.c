/*
 * txnbuf_reader: reading a sealed transaction back, in append order.
 *
 * It owns the TxnReader: its claim on a transaction (reading, set under
 * table->lock from txnbuf_reader_open to txnbuf_reader_close), the read
 * buffer over the spill file, the check of each spilled record's length and
 * CRC before it is handed out, and then the memory part's records, read in
 * place.
 *
 * It must never change a transaction's records or write a spill file, nor do
 * file I/O under table->lock.
 */
#include "cdc/txnbuf.h"
#include "cdc/txnbuf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_BUF_BYTES ((size_t) 1024 * 1024)

struct TxnReader
{
	TxnBuf *buf;
	Txn *txn;
	char path[PATH_MAX];
	int fd;             /* the spill file; -1 once its part is read */
	uint64_t file_pos;  /* position of the next record of the file part */
	uint64_t file_read; /* bytes read from the file */
	unsigned char *rbuf;
	size_t rbuf_cap;
	size_t rbuf_pos;    /* next unconsumed byte */
	size_t rbuf_len;    /* bytes filled */
	unsigned char *big; /* the current record when larger than rbuf */
	const Block *block; /* memory part: the next record's block and offset */
	size_t block_pos;
	bool failed;
};

bool
txnbuf_reader_open(TxnBuf *b, uint32_t xid, TxnReader **out, Error *err)
{
	TxnTable *tab = b->table;
	TxnReader *r;
	Txn *t;
	char ebuf[128];

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return err_set(err, ERR_INTERNAL,
		               "out of memory reading transaction %" PRIu32, xid);
	r->buf = b;
	r->fd = -1;
	pthread_mutex_lock(&tab->lock);
	t = txnbuf_table_find(tab, xid);
	if (t == NULL || !t->sealed || t->reading)
	{
		pthread_mutex_unlock(&tab->lock);
		free(r);
		return err_set(err, ERR_INTERNAL,
		               "could not read transaction %" PRIu32 ": %s", xid,
		               t == NULL    ? "not buffered"
		               : !t->sealed ? "not sealed"
		                            : "already open for reading");
	}
	while (t->spilling)
		pthread_cond_wait(&tab->spill_done, &tab->lock);
	t->reading = true;
	pthread_mutex_unlock(&tab->lock);
	r->txn = t;
	r->block = t->head;
	if (t->file_bytes > 0)
	{
		txnbuf_spill_path(b, t, r->path, sizeof(r->path));
		r->rbuf_cap = t->file_bytes < READ_BUF_BYTES ? (size_t) t->file_bytes
		                                             : READ_BUF_BYTES;
		r->rbuf = malloc(r->rbuf_cap);
		if (r->rbuf == NULL)
		{
			txnbuf_reader_close(r);
			return err_set(err, ERR_INTERNAL,
			               "out of memory reading transaction %" PRIu32, xid);
		}
		r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0)
		{
			err_set(err, ERR_INTERNAL, "could not open spill file \"%s\": %s",
			        r->path, txnbuf_os_error(errno, ebuf, sizeof(ebuf)));
			txnbuf_reader_close(r);
			return false;
		}
		(void) posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	*out = r;
	return true;
}

/* Reads from the file into dst, failing on a short file; see fill_rbuf. */
static bool
read_some(TxnReader *r, unsigned char *dst, size_t want, size_t *got,
          Error *err)
{
	char ebuf[128];
	ssize_t n;

	do
		n = read(r->fd, dst, want);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set(err, ERR_INTERNAL,
		               "could not read spill file \"%s\": %s", r->path,
		               txnbuf_os_error(errno, ebuf, sizeof(ebuf)));
	if (n == 0)
		return err_set(
		    err, ERR_INTERNAL,
		    "spill file \"%s\" is truncated: it ends at byte %" PRIu64
		    " of %" PRIu64,
		    r->path, r->file_read, r->txn->file_bytes);
	r->file_read += (uint64_t) n;
	*got = (size_t) n;
	return true;
}

/* Makes the read buffer hold at least need unconsumed bytes (need <= cap). */
static bool
fill_rbuf(TxnReader *r, size_t need, Error *err)
{
	size_t have = r->rbuf_len - r->rbuf_pos;

	if (have >= need)
		return true;
	memmove(r->rbuf, r->rbuf + r->rbuf_pos, have);
	r->rbuf_pos = 0;
	r->rbuf_len = have;
	while (r->rbuf_len < need)
	{
		uint64_t left = r->txn->file_bytes - r->file_read;
		size_t want = r->rbuf_cap - r->rbuf_len;
		size_t got;

		/* Never read past the file part: a failed spill may leave bytes. */
		if (want > left)
			want = (size_t) left;
		if (!read_some(r, r->rbuf + r->rbuf_len, want, &got, err))
			return false;
		r->rbuf_len += got;
	}
	return true;
}

static bool
next_file_record(TxnReader *r, const void **data, size_t *len, Error *err)
{
	uint64_t left = r->txn->file_bytes - r->file_pos;
	unsigned char hdr[TXNBUF_REC_HDR_BYTES];
	const unsigned char *payload;
	uint32_t rec_len;
	size_t frame;

	if (left < TXNBUF_REC_HDR_BYTES)
		return err_set(err, ERR_INTERNAL,
		               "spill file \"%s\" is corrupt: %" PRIu64
		               " bytes at offset %" PRIu64 " are no record",
		               r->path, left, r->file_pos);
	if (!fill_rbuf(r, TXNBUF_REC_HDR_BYTES, err))
		return false;
	memcpy(hdr, r->rbuf + r->rbuf_pos, TXNBUF_REC_HDR_BYTES);
	rec_len = txnbuf_get_u32(hdr);
	if (rec_len > TXNBUF_RECORD_MAX || TXNBUF_REC_HDR_BYTES + rec_len > left)
		return err_set(err, ERR_INTERNAL,
		               "spill file \"%s\" is corrupt: record at offset %" PRIu64
		               " has length %" PRIu32 " but %" PRIu64 " bytes are left",
		               r->path, r->file_pos, rec_len,
		               left - TXNBUF_REC_HDR_BYTES);
	frame = TXNBUF_REC_HDR_BYTES + (size_t) rec_len;
	if (frame <= r->rbuf_cap)
	{
		if (!fill_rbuf(r, frame, err))
			return false;
		payload = r->rbuf + r->rbuf_pos + TXNBUF_REC_HDR_BYTES;
		r->rbuf_pos += frame;
	}
	else
	{
		/* Too large for the read buffer: a buffer for this record alone. */
		size_t have = r->rbuf_len - r->rbuf_pos - TXNBUF_REC_HDR_BYTES;
		size_t filled = have;

		r->big = malloc(rec_len);
		if (r->big == NULL)
			return err_set(err, ERR_INTERNAL,
			               "out of memory reading a record of %" PRIu32
			               " bytes from spill file \"%s\"",
			               rec_len, r->path);
		memcpy(r->big, r->rbuf + r->rbuf_pos + TXNBUF_REC_HDR_BYTES, have);
		r->rbuf_pos = r->rbuf_len = 0;
		while (filled < rec_len)
		{
			size_t got;

			if (!read_some(r, r->big + filled, rec_len - filled, &got, err))
				return false;
			filled += got;
		}
		payload = r->big;
	}
	if (txnbuf_record_crc(hdr, payload, rec_len) != txnbuf_get_u32(hdr + 4))
		return err_set(err, ERR_INTERNAL,
		               "spill file \"%s\" is corrupt: checksum mismatch in the "
		               "record at offset %" PRIu64,
		               r->path, r->file_pos);
	r->file_pos += frame;
	if (r->file_pos == r->txn->file_bytes)
	{
		(void) close(r->fd);
		r->fd = -1;
	}
	*data = payload;
	*len = rec_len;
	return true;
}

bool
txnbuf_reader_next(TxnReader *r, const void **data, size_t *len, bool *done,
                   Error *err)
{
	*data = NULL;
	*len = 0;
	*done = false;
	if (r->failed)
		return err_set(err, ERR_INTERNAL,
		               "could not read transaction %" PRIu32
		               ": an earlier read failed",
		               r->txn->xid);
	free(r->big);
	r->big = NULL;
	if (r->file_pos < r->txn->file_bytes)
	{
		if (!next_file_record(r, data, len, err))
		{
			r->failed = true;
			return false;
		}
		return true;
	}
	while (r->block != NULL && r->block_pos >= r->block->used)
	{
		r->block = r->block->next;
		r->block_pos = 0;
	}
	if (r->block == NULL)
	{
		*done = true;
		return true;
	}
	*len = txnbuf_get_u32(r->block->data + r->block_pos);
	*data = r->block->data + r->block_pos + TXNBUF_REC_HDR_BYTES;
	r->block_pos += TXNBUF_REC_HDR_BYTES + *len;
	return true;
}

void
txnbuf_reader_close(TxnReader *r)
{
	TxnTable *tab;

	if (r == NULL)
		return;
	tab = r->buf->table;
	if (r->fd >= 0)
		(void) close(r->fd);
	free(r->rbuf);
	free(r->big);
	pthread_mutex_lock(&tab->lock);
	r->txn->reading = false;
	pthread_mutex_unlock(&tab->lock);
	free(r);
}
