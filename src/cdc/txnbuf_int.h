/*
 * txnbuf_int: what the files of txnbuf share; nothing outside src/cdc/
 * includes it (callers use cdc/txnbuf.h).
 *
 *   txnbuf.c         the buffer, its table of transactions and their flags,
 *                    each transaction's life (txnbuf.h), the memory blocks
 *                    under mem_limit and the choice of what to spill, and
 *                    where subtransactions start
 *   txnbuf_spill.c   the record frame and its CRC-32C, and the spill files:
 *                    their names, writing a memory part to one, cutting a
 *                    transaction's stream at a position
 *   txnbuf_reader.c  reading a sealed transaction back, its file part then
 *                    its memory part
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
#ifndef PGTIDE_TXNBUF_INT_H
#define PGTIDE_TXNBUF_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "cdc/txnbuf.h"

#define TXNBUF_REC_HDR_BYTES 8

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

/* ---- txnbuf.c ---- */

/* Frees t's blocks from *link on; the caller fixes t->tail and mem_data. */
void txnbuf_free_blocks(TxnBuf *b, Txn *t, Block **link);

/* The transaction xid in the table, or NULL; the caller holds table->lock. */
Txn *txnbuf_table_find(const TxnTable *tab, uint32_t xid);

/* ---- txnbuf_spill.c ---- */

/* Makes the CRC table once per process; call it before the first record is
 * framed (txnbuf_new does). Any thread; never fails. */
void txnbuf_crc_setup(void);

/* The CRC of a record: its 4 length bytes, then its payload. */
uint32_t txnbuf_record_crc(const unsigned char *len_bytes,
                           const unsigned char *payload, size_t len);

/* Little-endian 32-bit values of the record header. */
void txnbuf_put_u32(unsigned char *p, uint32_t v);
uint32_t txnbuf_get_u32(const unsigned char *p);

/* The text of errnum in buf (cap bytes), thread-safe; returns the text. */
const char *txnbuf_os_error(int errnum, char *buf, size_t cap);

/* The path of t's spill file, into path (cap bytes, PATH_MAX is enough). */
void txnbuf_spill_path(const TxnBuf *b, const Txn *t, char *path, size_t cap);

/*
 * Appends t's memory part, then the record extra[0..extra_len) if extra is
 * not NULL, to t's spill file, and frees the memory part. The caller owns t's
 * contents (writer, and spilling set if t is sealed). On failure t is
 * unchanged but for has_file.
 */
bool txnbuf_spill_txn(TxnBuf *b, Txn *t, const void *extra, size_t extra_len,
                      Error *err);

/*
 * Cuts t's stream at position pos (a record boundary); see "Positions". The
 * caller is the writer. On failure (the file cannot be truncated) t is
 * unchanged.
 */
bool txnbuf_truncate_txn(TxnBuf *b, Txn *t, uint64_t pos, Error *err);

#endif
