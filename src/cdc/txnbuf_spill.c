/*
 * txnbuf_spill: the record frame and the spill files.
 *
 * It owns the record layout (length, CRC-32C, payload; "Records" in
 * txnbuf_int.h), the name of a transaction's spill file, writing a
 * transaction's memory part after its file part (txnbuf_spill_txn), and
 * cutting a transaction's stream at a position, in its file or in its memory
 * part (txnbuf_truncate_txn).
 *
 * It must never take table->lock or change a Txn's flags: its caller owns
 * the Txn's contents (the ownership table in txnbuf_int.h). It keeps no file
 * open past a call.
 */
#include "cdc/txnbuf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* CRC-32C (Castagnoli), slicing by 8. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++)
	{
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ UINT32_C(0x82F63B78) : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 1; k < 8; k++)
			crc_table[k][n] = crc_table[0][crc_table[k - 1][n] & 0xFF] ^
			                  (crc_table[k - 1][n] >> 8);
}

void
txnbuf_crc_setup(void)
{
	pthread_once(&crc_once, crc_init);
}

static uint32_t
crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
	while (n >= 8)
	{
		uint32_t lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
		                     (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
		uint32_t hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 |
		              (uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;

		crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
		      crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
		      crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

/* The CRC of a record: its 4 length bytes, then its payload. */
uint32_t
txnbuf_record_crc(const unsigned char *len_bytes, const unsigned char *payload,
                  size_t len)
{
	uint32_t crc = UINT32_MAX;

	crc = crc_update(crc, len_bytes, 4);
	crc = crc_update(crc, payload, len);
	return ~crc;
}

void
txnbuf_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

uint32_t
txnbuf_get_u32(const unsigned char *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

/* strerror is not thread-safe; the GNU strerror_r returns the text. */
const char *
txnbuf_os_error(int errnum, char *buf, size_t cap)
{
	return strerror_r(errnum, buf, cap);
}

void
txnbuf_spill_path(const TxnBuf *b, const Txn *t, char *path, size_t cap)
{
	snprintf(path, cap, "%s/txnbuf-%ld-%" PRIu32 "-%" PRIu64 ".spill",
	         b->spill_dir, b->pid, t->xid, t->seq);
}

/* Fills in the CRC of every record of blk (see the record layout). */
static void
block_checksum(Block *blk)
{
	size_t off = 0;

	while (off < blk->used)
	{
		unsigned char *rec = blk->data + off;
		uint32_t len = txnbuf_get_u32(rec);

		txnbuf_put_u32(rec + 4,
		               txnbuf_record_crc(rec, rec + TXNBUF_REC_HDR_BYTES, len));
		off += TXNBUF_REC_HDR_BYTES + len;
	}
}

static bool
pwrite_all(int fd, const void *data, size_t len, uint64_t pos)
{
	const unsigned char *p = data;

	while (len > 0)
	{
		ssize_t n = pwrite(fd, p, len, (off_t) pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		p += n;
		len -= (size_t) n;
		pos += (uint64_t) n;
	}
	return true;
}

/*
 * Appends t's memory part, then the record extra[0..extra_len) if extra is
 * not NULL, to t's spill file, and frees the memory part. The caller owns t's
 * contents (writer, and spilling set if t is sealed). On failure t is
 * unchanged but for has_file.
 */
bool
txnbuf_spill_txn(TxnBuf *b, Txn *t, const void *extra, size_t extra_len,
                 Error *err)
{
	char path[PATH_MAX];
	char ebuf[128];
	uint64_t pos = t->file_bytes;
	int flags = O_WRONLY | O_CLOEXEC;
	int fd;

	if (t->head == NULL && extra == NULL)
		return true;
	txnbuf_spill_path(b, t, path, sizeof(path));
	if (!t->has_file)
		flags |= O_CREAT | O_TRUNC;
	fd = open(path, flags, 0600);
	if (fd < 0)
		return err_set(err, ERR_INTERNAL,
		               "could not open spill file \"%s\": %s", path,
		               txnbuf_os_error(errno, ebuf, sizeof(ebuf)));
	t->has_file = true;
	for (Block *blk = t->head; blk != NULL; blk = blk->next)
	{
		block_checksum(blk);
		if (!pwrite_all(fd, blk->data, blk->used, pos))
			goto fail;
		pos += blk->used;
	}
	if (extra != NULL)
	{
		unsigned char hdr[TXNBUF_REC_HDR_BYTES];

		txnbuf_put_u32(hdr, (uint32_t) extra_len);
		txnbuf_put_u32(hdr + 4, txnbuf_record_crc(hdr, extra, extra_len));
		if (!pwrite_all(fd, hdr, sizeof(hdr), pos) ||
		    !pwrite_all(fd, extra, extra_len, pos + sizeof(hdr)))
			goto fail;
		pos += sizeof(hdr) + extra_len;
	}
	if (close(fd) != 0)
	{
		fd = -1;
		goto fail;
	}
	atomic_fetch_add(&b->spilled_bytes, pos - t->file_bytes);
	if (!t->counted_spilled)
	{
		t->counted_spilled = true;
		atomic_fetch_add(&b->spilled_txns, 1);
	}
	t->file_bytes = pos;
	txnbuf_free_blocks(b, t, &t->head);
	t->tail = NULL;
	t->mem_data = 0;
	return true;

fail:
	err_set(err, ERR_INTERNAL, "could not write spill file \"%s\": %s", path,
	        txnbuf_os_error(errno, ebuf, sizeof(ebuf)));
	if (fd >= 0)
		(void) close(fd);
	return false;
}

/* Cuts t's stream at position pos (a record boundary); see "Positions". */
bool
txnbuf_truncate_txn(TxnBuf *b, Txn *t, uint64_t pos, Error *err)
{
	char path[PATH_MAX];
	char ebuf[128];
	Block **link = &t->head;
	Block *keep = NULL;
	uint64_t at = t->file_bytes;
	int fd;

	if (pos >= t->file_bytes)
	{
		while (*link != NULL && at + (*link)->used <= pos)
		{
			at += (*link)->used;
			keep = *link;
			link = &keep->next;
		}
		if (*link != NULL && pos > at)
		{
			keep = *link;
			keep->used = (size_t) (pos - at);
			link = &keep->next;
		}
		txnbuf_free_blocks(b, t, link);
		t->tail = keep;
		t->mem_data = (size_t) (pos - t->file_bytes);
		return true;
	}
	txnbuf_spill_path(b, t, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t) pos) != 0)
	{
		int saved = errno;

		if (fd >= 0)
			(void) close(fd);
		return err_set(err, ERR_INTERNAL,
		               "could not truncate spill file \"%s\": %s", path,
		               txnbuf_os_error(saved, ebuf, sizeof(ebuf)));
	}
	(void) close(fd);
	t->file_bytes = pos;
	txnbuf_free_blocks(b, t, &t->head);
	t->tail = NULL;
	t->mem_data = 0;
	return true;
}
