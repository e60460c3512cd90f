/*
 * txnbuf: per-xid record buffers with a memory bound; spill files.
 *
 * NOTES ON THE DESIGN
 *
 * Records. A record is framed the same way in memory and in a spill file, so
 * spilling is a plain write of memory blocks:
 *
 *   offset  size  field
 *   0       4     payload length, little-endian
 *   4       4     CRC-32C of bytes 0..3 and of the payload, little-endian
 *                 (0 in memory; filled in when the record is spilled)
 *   8       len   payload
 *
 * The CRC covers the length so that a zero-filled hole (a length 0 and a
 * CRC 0) is caught as corrupt.
 *
 * Positions. A transaction's records form one stream: its file part (the
 * first file_bytes of its spill file) followed by its memory part (its blocks
 * in order). A spill appends the whole memory part to the file and frees it;
 * records appended afterwards go to memory again. A record's position, its
 * offset in that stream, therefore never changes, and a subtransaction abort
 * truncates the stream at the subtransaction's first position: with ftruncate
 * when that falls in the file (the memory part goes too), else by cutting the
 * block list. Writes use pwrite at file_bytes, so bytes a failed spill left
 * past file_bytes are overwritten by the next spill and never read.
 *
 * Memory. Records live in blocks whose capacity doubles per transaction from
 * BLOCK_MIN to block_max, so a small transaction takes a small block. A record
 * never spans blocks; one larger than block_max gets a block of its own size.
 * mem_bytes counts whole blocks (header and capacity). Before a block is
 * allocated, transactions are spilled, largest first, until it fits under
 * mem_limit. A sealed transaction open for reading is never chosen, but the
 * one being appended to always can be, so the bound is strict: when nothing
 * else can be freed, the record goes straight to the file (as does a record
 * too large for the limit).
 *
 * Rejected: keeping a spill file open per transaction (one fd per large
 * transaction in flight, unbounded); a spill opens, appends and closes. A new
 * file per spill (many files to open in turn when reading).
 *
 * Threads. table->lock guards the table of transactions and each Txn's flags
 * (sealed, reading, spilling); counters are atomics. A Txn's contents (blocks,
 * file, subtransactions) belong to one thread at a time, set by the flags:
 *
 *   flags                 contents belong to
 *   !sealed               the writer
 *   sealed                nobody; the writer may claim them to spill
 *                         (spilling, in pick_victim), the reader to read
 *                         (reading, in txnbuf_reader_open) or to free
 *                         (txnbuf_release)
 *   sealed, spilling      the writer, until finish_spill
 *   sealed, reading       the reader, until txnbuf_reader_close
 *
 * The reader waits on table->spill_done for a spill of a transaction it
 * wants to finish; the writer never waits. File I/O runs outside the lock.
 */
#include "cdc/txnbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define REC_HDR_BYTES  8
#define BLOCK_MIN      ((size_t) 256)
#define BLOCK_MAX      ((size_t) 64 * 1024)
#define READ_BUF_BYTES ((size_t) 1024 * 1024)
#define BUCKETS_MIN    64
#define SPILL_NAME_MAX 80 /* "/txnbuf-<pid>-<xid>-<seq>.spill" */

typedef struct Block
{
	struct Block *next;
	size_t cap;  /* bytes of data[] */
	size_t used; /* bytes of data[] holding whole records */
	unsigned char data[];
} Block;

/* A subtransaction that appended; entries are in order of start. */
typedef struct SubXact
{
	uint32_t subxid;
	uint32_t max_subxid; /* largest subxid of entries [0..this one] */
	uint64_t start;      /* position of its first record */
} SubXact;

typedef struct Txn
{
	struct Txn *next; /* in its hash bucket */
	uint32_t xid;
	uint64_t seq; /* makes the spill file name unique in the process */
	/* Flags: under table->lock. */
	bool sealed;
	bool reading;
	bool spilling;
	/* Contents: see the ownership table above. */
	Block *head;
	Block *tail;
	size_t mem_bytes;     /* blocks, headers included */
	size_t mem_data;      /* sum of used: the memory part of the stream */
	size_t next_block;    /* capacity of the next block */
	uint64_t file_bytes;  /* the file part of the stream */
	bool has_file;        /* the spill file exists */
	bool counted_spilled; /* counted in spilled_txns */
	SubXact *subs;
	size_t nsubs;
	size_t subs_cap;
} Txn;

/* Separate from TxnBuf so that a const TxnBuf can still take the lock. */
typedef struct TxnTable
{
	pthread_mutex_t lock;      /* guards everything here and Txn flags */
	pthread_cond_t spill_done; /* some Txn's spilling went false */
	Txn **buckets;
	size_t nbuckets; /* a power of two */
	size_t ntxns;
} TxnTable;

struct TxnBuf
{
	char *spill_dir;
	size_t mem_limit;
	size_t block_max;
	long pid;
	TxnTable *table;
	_Atomic size_t mem_bytes;
	_Atomic size_t mem_peak;
	_Atomic uint64_t spilled_bytes;
	_Atomic uint64_t spilled_txns;
};

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

/* Spill file names stay unique across buffers and reused xids. */
static _Atomic uint64_t txn_seq;

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
static uint32_t
record_crc(const unsigned char *len_bytes, const unsigned char *payload,
           size_t len)
{
	uint32_t crc = UINT32_MAX;

	crc = crc_update(crc, len_bytes, 4);
	crc = crc_update(crc, payload, len);
	return ~crc;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

/* strerror is not thread-safe; the GNU strerror_r returns the text. */
static const char *
os_error(int errnum, char *buf, size_t cap)
{
	return strerror_r(errnum, buf, cap);
}

static void
spill_path(const TxnBuf *b, const Txn *t, char *path, size_t cap)
{
	snprintf(path, cap, "%s/txnbuf-%ld-%" PRIu32 "-%" PRIu64 ".spill",
	         b->spill_dir, b->pid, t->xid, t->seq);
}

static void
mem_add(TxnBuf *b, size_t n)
{
	size_t now = atomic_fetch_add(&b->mem_bytes, n) + n;
	size_t peak = atomic_load(&b->mem_peak);

	while (now > peak &&
	       !atomic_compare_exchange_weak(&b->mem_peak, &peak, now))
		;
}

static void
mem_sub(TxnBuf *b, size_t n)
{
	atomic_fetch_sub(&b->mem_bytes, n);
}

/* Frees t's blocks from *link on; the caller fixes t->tail and mem_data. */
static void
free_blocks(TxnBuf *b, Txn *t, Block **link)
{
	Block *blk = *link;

	*link = NULL;
	while (blk != NULL)
	{
		Block *next = blk->next;
		size_t bytes = sizeof(Block) + blk->cap;

		t->mem_bytes -= bytes;
		mem_sub(b, bytes);
		free(blk);
		blk = next;
	}
}

static void
txn_destroy(TxnBuf *b, Txn *t)
{
	if (t->has_file)
	{
		char path[PATH_MAX];

		spill_path(b, t, path, sizeof(path));
		/* Nothing to do on failure: the file is ours and unused. */
		(void) unlink(path);
	}
	free_blocks(b, t, &t->head);
	free(t->subs);
	free(t);
}

/* Table of transactions: all under table->lock. */

static size_t
bucket_of(const TxnTable *tab, uint32_t xid)
{
	uint32_t h = xid;

	h ^= h >> 16;
	h *= UINT32_C(0x45D9F3B);
	h ^= h >> 16;
	return h & (tab->nbuckets - 1);
}

static Txn *
table_find(const TxnTable *tab, uint32_t xid)
{
	Txn *t = tab->buckets[bucket_of(tab, xid)];

	while (t != NULL && t->xid != xid)
		t = t->next;
	return t;
}

/* Never fails: without memory to grow, the chains just get longer. */
static void
table_insert(TxnTable *tab, Txn *t)
{
	size_t i;

	if (tab->ntxns >= tab->nbuckets)
	{
		size_t n = tab->nbuckets * 2;
		Txn **grown = calloc(n, sizeof(*grown));

		if (grown != NULL)
		{
			Txn **old = tab->buckets;
			size_t old_n = tab->nbuckets;

			tab->buckets = grown;
			tab->nbuckets = n;
			for (i = 0; i < old_n; i++)
			{
				while (old[i] != NULL)
				{
					Txn *move = old[i];
					size_t j = bucket_of(tab, move->xid);

					old[i] = move->next;
					move->next = grown[j];
					grown[j] = move;
				}
			}
			free(old);
		}
	}
	i = bucket_of(tab, t->xid);
	t->next = tab->buckets[i];
	tab->buckets[i] = t;
	tab->ntxns++;
}

static void
table_remove(TxnTable *tab, Txn *t)
{
	Txn **link = &tab->buckets[bucket_of(tab, t->xid)];

	while (*link != t)
		link = &(*link)->next;
	*link = t->next;
	t->next = NULL;
	tab->ntxns--;
}

static Txn *
txn_new(uint32_t xid, Error *err)
{
	Txn *t = calloc(1, sizeof(*t));

	if (t == NULL)
	{
		err_set(err, ERR_INTERNAL,
		        "out of memory buffering transaction %" PRIu32, xid);
		return NULL;
	}
	t->xid = xid;
	t->seq = atomic_fetch_add(&txn_seq, 1);
	t->next_block = BLOCK_MIN;
	return t;
}

/*
 * Finds open transaction xid for the writer, creating it when create is set;
 * *out is NULL when it does not exist and create is not set.
 */
static bool
writer_txn(TxnBuf *b, uint32_t xid, bool create, Txn **out, Error *err)
{
	TxnTable *tab = b->table;
	Txn *t;

	pthread_mutex_lock(&tab->lock);
	t = table_find(tab, xid);
	if (t != NULL && t->sealed)
	{
		pthread_mutex_unlock(&tab->lock);
		return err_set(err, ERR_INTERNAL,
		               "transaction %" PRIu32 " is already sealed", xid);
	}
	pthread_mutex_unlock(&tab->lock);
	if (t == NULL && create)
	{
		/* Only the writer inserts, so nobody else can add xid meanwhile. */
		t = txn_new(xid, err);
		if (t == NULL)
			return false;
		pthread_mutex_lock(&tab->lock);
		table_insert(tab, t);
		pthread_mutex_unlock(&tab->lock);
	}
	*out = t;
	return true;
}

/* Fills in the CRC of every record of blk (see the record layout). */
static void
block_checksum(Block *blk)
{
	size_t off = 0;

	while (off < blk->used)
	{
		unsigned char *rec = blk->data + off;
		uint32_t len = get_u32(rec);

		put_u32(rec + 4, record_crc(rec, rec + REC_HDR_BYTES, len));
		off += REC_HDR_BYTES + len;
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
static bool
spill_txn(TxnBuf *b, Txn *t, const void *extra, size_t extra_len, Error *err)
{
	char path[PATH_MAX];
	char ebuf[128];
	uint64_t pos = t->file_bytes;
	int flags = O_WRONLY | O_CLOEXEC;
	int fd;

	if (t->head == NULL && extra == NULL)
		return true;
	spill_path(b, t, path, sizeof(path));
	if (!t->has_file)
		flags |= O_CREAT | O_TRUNC;
	fd = open(path, flags, 0600);
	if (fd < 0)
		return err_set(err, ERR_INTERNAL,
		               "could not open spill file \"%s\": %s", path,
		               os_error(errno, ebuf, sizeof(ebuf)));
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
		unsigned char hdr[REC_HDR_BYTES];

		put_u32(hdr, (uint32_t) extra_len);
		put_u32(hdr + 4, record_crc(hdr, extra, extra_len));
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
	free_blocks(b, t, &t->head);
	t->tail = NULL;
	t->mem_data = 0;
	return true;

fail:
	err_set(err, ERR_INTERNAL, "could not write spill file \"%s\": %s", path,
	        os_error(errno, ebuf, sizeof(ebuf)));
	if (fd >= 0)
		(void) close(fd);
	return false;
}

/*
 * Picks the transaction to spill: the one holding most memory among the open
 * ones (self included) and the sealed ones nobody reads. A sealed one is
 * claimed (spilling) until finish_spill. NULL when none holds memory.
 */
static Txn *
pick_victim(TxnBuf *b)
{
	TxnTable *tab = b->table;
	Txn *best = NULL;

	pthread_mutex_lock(&tab->lock);
	for (size_t i = 0; i < tab->nbuckets; i++)
		for (Txn *t = tab->buckets[i]; t != NULL; t = t->next)
			if ((!t->sealed || !t->reading) && t->mem_bytes > 0 &&
			    (best == NULL || t->mem_bytes > best->mem_bytes))
				best = t;
	if (best != NULL && best->sealed)
		best->spilling = true;
	pthread_mutex_unlock(&tab->lock);
	return best;
}

static void
finish_spill(TxnBuf *b, Txn *t)
{
	TxnTable *tab = b->table;

	pthread_mutex_lock(&tab->lock);
	t->spilling = false;
	pthread_cond_broadcast(&tab->spill_done);
	pthread_mutex_unlock(&tab->lock);
}

/*
 * Makes room in t's memory part for a frame of frame bytes and sets *dst to
 * it, spilling as needed; *dst is NULL when the frame must go to the file.
 */
static bool
reserve_frame(TxnBuf *b, Txn *t, size_t frame, unsigned char **dst, Error *err)
{
	size_t cap;
	size_t need;
	Block *blk;

	*dst = NULL;
	if (t->tail != NULL && t->tail->cap - t->tail->used >= frame)
	{
		*dst = t->tail->data + t->tail->used;
		t->tail->used += frame;
		t->mem_data += frame;
		return true;
	}
	cap = frame > t->next_block ? frame : t->next_block;
	need = sizeof(Block) + cap;
	if (need > b->mem_limit)
		return true;
	while (atomic_load(&b->mem_bytes) > b->mem_limit - need)
	{
		Txn *victim = pick_victim(b);
		bool ok;

		if (victim == NULL)
			return true;
		ok = spill_txn(b, victim, NULL, 0, err);
		if (victim->sealed)
			finish_spill(b, victim);
		if (!ok)
			return false;
	}
	blk = malloc(need);
	if (blk == NULL)
		return err_set(err, ERR_INTERNAL,
		               "out of memory buffering transaction %" PRIu32, t->xid);
	blk->next = NULL;
	blk->cap = cap;
	blk->used = frame;
	if (t->tail != NULL)
		t->tail->next = blk;
	else
		t->head = blk;
	t->tail = blk;
	t->mem_bytes += need;
	t->mem_data += frame;
	mem_add(b, need);
	if (t->next_block < b->block_max)
		t->next_block =
		    t->next_block * 2 < b->block_max ? t->next_block * 2 : b->block_max;
	*dst = blk->data;
	return true;
}

/* Remembers where subxid started, unless it already appended. */
static bool
note_subxact(Txn *t, uint32_t subxid, Error *err)
{
	SubXact *last = t->nsubs > 0 ? &t->subs[t->nsubs - 1] : NULL;
	SubXact *add;

	if (last != NULL && last->subxid == subxid)
		return true;
	/*
	 * Subtransaction xids are assigned in the order they first write, so a
	 * new one is nearly always above every xid seen and the search is
	 * skipped; it is needed only after wraparound or on a return to an
	 * outer subtransaction.
	 */
	if (last != NULL && subxid <= last->max_subxid)
		for (size_t i = t->nsubs; i > 0; i--)
			if (t->subs[i - 1].subxid == subxid)
				return true;
	if (t->nsubs == t->subs_cap)
	{
		size_t n = t->subs_cap == 0 ? 8 : t->subs_cap * 2;
		SubXact *grown = realloc(t->subs, n * sizeof(*grown));

		if (grown == NULL)
			return err_set(err, ERR_INTERNAL,
			               "out of memory buffering transaction %" PRIu32,
			               t->xid);
		t->subs = grown;
		t->subs_cap = n;
	}
	add = &t->subs[t->nsubs++];
	add->subxid = subxid;
	add->max_subxid =
	    last != NULL && last->max_subxid > subxid ? last->max_subxid : subxid;
	add->start = t->file_bytes + t->mem_data;
	return true;
}

bool
txnbuf_new(const char *spill_dir, size_t mem_limit, TxnBuf **out, Error *err)
{
	char ebuf[128];
	struct stat st;
	TxnBuf *b = NULL;
	TxnTable *tab = NULL;
	size_t dir_len = strlen(spill_dir);

	pthread_once(&crc_once, crc_init);
	if (dir_len + SPILL_NAME_MAX >= PATH_MAX)
		return err_set(err, ERR_INTERNAL, "spill directory \"%s\" is too long",
		               spill_dir);
	if (stat(spill_dir, &st) != 0)
		return err_set(err, ERR_INTERNAL,
		               "could not use spill directory \"%s\": %s", spill_dir,
		               os_error(errno, ebuf, sizeof(ebuf)));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ERR_INTERNAL,
		               "spill directory \"%s\" is not a directory", spill_dir);
	if (access(spill_dir, W_OK | X_OK) != 0)
		return err_set(err, ERR_INTERNAL,
		               "could not use spill directory \"%s\": %s", spill_dir,
		               os_error(errno, ebuf, sizeof(ebuf)));

	b = calloc(1, sizeof(*b));
	tab = calloc(1, sizeof(*tab));
	if (b == NULL || tab == NULL)
		goto oom;
	b->table = tab;
	b->spill_dir = malloc(dir_len + 1);
	tab->buckets = calloc(BUCKETS_MIN, sizeof(*tab->buckets));
	if (b->spill_dir == NULL || tab->buckets == NULL)
		goto oom;
	memcpy(b->spill_dir, spill_dir, dir_len + 1);
	tab->nbuckets = BUCKETS_MIN;
	if (pthread_mutex_init(&tab->lock, NULL) != 0)
		goto oom;
	if (pthread_cond_init(&tab->spill_done, NULL) != 0)
	{
		pthread_mutex_destroy(&tab->lock);
		goto oom;
	}
	b->mem_limit = mem_limit;
	/* A block an eighth of the limit keeps the last block's waste small. */
	b->block_max = mem_limit / 8;
	if (b->block_max < BLOCK_MIN)
		b->block_max = BLOCK_MIN;
	if (b->block_max > BLOCK_MAX)
		b->block_max = BLOCK_MAX;
	b->pid = (long) getpid();
	atomic_init(&b->mem_bytes, 0);
	atomic_init(&b->mem_peak, 0);
	atomic_init(&b->spilled_bytes, 0);
	atomic_init(&b->spilled_txns, 0);
	*out = b;
	return true;

oom:
	if (tab != NULL)
		free(tab->buckets);
	free(tab);
	if (b != NULL)
		free(b->spill_dir);
	free(b);
	return err_set(err, ERR_INTERNAL, "out of memory creating a txnbuf");
}

void
txnbuf_free(TxnBuf *b)
{
	TxnTable *tab;

	if (b == NULL)
		return;
	tab = b->table;
	for (size_t i = 0; i < tab->nbuckets; i++)
	{
		while (tab->buckets[i] != NULL)
		{
			Txn *t = tab->buckets[i];

			tab->buckets[i] = t->next;
			txn_destroy(b, t);
		}
	}
	pthread_cond_destroy(&tab->spill_done);
	pthread_mutex_destroy(&tab->lock);
	free(tab->buckets);
	free(tab);
	free(b->spill_dir);
	free(b);
}

bool
txnbuf_append(TxnBuf *b, uint32_t xid, uint32_t subxid, const void *data,
              size_t len, Error *err)
{
	Txn *t;
	unsigned char *dst;

	if (len > TXNBUF_RECORD_MAX)
		return err_set(err, ERR_INTERNAL,
		               "record of %zu bytes in transaction %" PRIu32
		               " exceeds the maximum of %zu bytes",
		               len, xid, TXNBUF_RECORD_MAX);
	if (!writer_txn(b, xid, true, &t, err))
		return false;
	if (subxid != xid && !note_subxact(t, subxid, err))
		return false;
	if (!reserve_frame(b, t, REC_HDR_BYTES + len, &dst, err))
		return false;
	if (dst == NULL)
	{
		static const unsigned char empty;

		/* NULL means "no record" to spill_txn; an empty record is not. */
		return spill_txn(b, t, data != NULL ? data : &empty, len, err);
	}
	put_u32(dst, (uint32_t) len);
	put_u32(dst + 4, 0);
	if (len > 0)
		memcpy(dst + REC_HDR_BYTES, data, len);
	return true;
}

/* Cuts t's stream at position pos (a record boundary); see "Positions". */
static bool
truncate_txn(TxnBuf *b, Txn *t, uint64_t pos, Error *err)
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
		free_blocks(b, t, link);
		t->tail = keep;
		t->mem_data = (size_t) (pos - t->file_bytes);
		return true;
	}
	spill_path(b, t, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t) pos) != 0)
	{
		int saved = errno;

		if (fd >= 0)
			(void) close(fd);
		return err_set(err, ERR_INTERNAL,
		               "could not truncate spill file \"%s\": %s", path,
		               os_error(saved, ebuf, sizeof(ebuf)));
	}
	(void) close(fd);
	t->file_bytes = pos;
	free_blocks(b, t, &t->head);
	t->tail = NULL;
	t->mem_data = 0;
	return true;
}

bool
txnbuf_abort_sub(TxnBuf *b, uint32_t xid, uint32_t subxid, Error *err)
{
	Txn *t;
	size_t i;

	if (!writer_txn(b, xid, false, &t, err))
		return false;
	if (t == NULL)
		return true;
	if (subxid == xid)
	{
		txnbuf_discard(b, xid);
		return true;
	}
	for (i = t->nsubs; i > 0; i--)
		if (t->subs[i - 1].subxid == subxid)
			break;
	if (i == 0)
		return true;
	if (!truncate_txn(b, t, t->subs[i - 1].start, err))
		return false;
	t->nsubs = i - 1;
	return true;
}

void
txnbuf_discard(TxnBuf *b, uint32_t xid)
{
	TxnTable *tab = b->table;
	Txn *t;

	pthread_mutex_lock(&tab->lock);
	t = table_find(tab, xid);
	if (t == NULL || t->sealed)
	{
		pthread_mutex_unlock(&tab->lock);
		return;
	}
	table_remove(tab, t);
	pthread_mutex_unlock(&tab->lock);
	txn_destroy(b, t);
}

bool
txnbuf_seal(TxnBuf *b, uint32_t xid, Error *err)
{
	TxnTable *tab = b->table;
	Txn *t;

	if (!writer_txn(b, xid, true, &t, err))
		return false;
	/* Still the writer's: the subtransactions are no longer needed. */
	free(t->subs);
	t->subs = NULL;
	t->nsubs = 0;
	t->subs_cap = 0;
	pthread_mutex_lock(&tab->lock);
	t->sealed = true;
	pthread_mutex_unlock(&tab->lock);
	return true;
}

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
	t = table_find(tab, xid);
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
		spill_path(b, t, r->path, sizeof(r->path));
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
			        r->path, os_error(errno, ebuf, sizeof(ebuf)));
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
		               os_error(errno, ebuf, sizeof(ebuf)));
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
	unsigned char hdr[REC_HDR_BYTES];
	const unsigned char *payload;
	uint32_t rec_len;
	size_t frame;

	if (left < REC_HDR_BYTES)
		return err_set(err, ERR_INTERNAL,
		               "spill file \"%s\" is corrupt: %" PRIu64
		               " bytes at offset %" PRIu64 " are no record",
		               r->path, left, r->file_pos);
	if (!fill_rbuf(r, REC_HDR_BYTES, err))
		return false;
	memcpy(hdr, r->rbuf + r->rbuf_pos, REC_HDR_BYTES);
	rec_len = get_u32(hdr);
	if (rec_len > TXNBUF_RECORD_MAX || REC_HDR_BYTES + rec_len > left)
		return err_set(err, ERR_INTERNAL,
		               "spill file \"%s\" is corrupt: record at offset %" PRIu64
		               " has length %" PRIu32 " but %" PRIu64 " bytes are left",
		               r->path, r->file_pos, rec_len, left - REC_HDR_BYTES);
	frame = REC_HDR_BYTES + (size_t) rec_len;
	if (frame <= r->rbuf_cap)
	{
		if (!fill_rbuf(r, frame, err))
			return false;
		payload = r->rbuf + r->rbuf_pos + REC_HDR_BYTES;
		r->rbuf_pos += frame;
	}
	else
	{
		/* Too large for the read buffer: a buffer for this record alone. */
		size_t have = r->rbuf_len - r->rbuf_pos - REC_HDR_BYTES;
		size_t filled = have;

		r->big = malloc(rec_len);
		if (r->big == NULL)
			return err_set(err, ERR_INTERNAL,
			               "out of memory reading a record of %" PRIu32
			               " bytes from spill file \"%s\"",
			               rec_len, r->path);
		memcpy(r->big, r->rbuf + r->rbuf_pos + REC_HDR_BYTES, have);
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
	if (record_crc(hdr, payload, rec_len) != get_u32(hdr + 4))
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
	*len = get_u32(r->block->data + r->block_pos);
	*data = r->block->data + r->block_pos + REC_HDR_BYTES;
	r->block_pos += REC_HDR_BYTES + *len;
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

void
txnbuf_release(TxnBuf *b, uint32_t xid)
{
	TxnTable *tab = b->table;
	Txn *t;

	pthread_mutex_lock(&tab->lock);
	t = table_find(tab, xid);
	if (t == NULL || !t->sealed || t->reading)
	{
		pthread_mutex_unlock(&tab->lock);
		return;
	}
	while (t->spilling)
		pthread_cond_wait(&tab->spill_done, &tab->lock);
	table_remove(tab, t);
	pthread_mutex_unlock(&tab->lock);
	txn_destroy(b, t);
}

void
txnbuf_stats(const TxnBuf *b, TxnBufStats *out)
{
	out->mem_bytes = atomic_load(&b->mem_bytes);
	out->mem_peak_bytes = atomic_load(&b->mem_peak);
	out->spilled_bytes = atomic_load(&b->spilled_bytes);
	out->spilled_txns = atomic_load(&b->spilled_txns);
}

bool
txnbuf_exists(const TxnBuf *b, uint32_t xid)
{
	TxnTable *tab = b->table;
	bool found;

	pthread_mutex_lock(&tab->lock);
	found = table_find(tab, xid) != NULL;
	pthread_mutex_unlock(&tab->lock);
	return found;
}
