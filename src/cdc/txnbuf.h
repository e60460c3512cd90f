/*
 * txnbuf: the receiver's per-transaction record buffers, held in memory up to
 * a byte limit and spilled to files beyond it.
 *
 * Owns: the records of every source transaction between the receiver thread
 * that reads the replication stream and the applier thread that applies it;
 * the memory they take (never more than mem_limit bytes); and the spill files
 * it creates in the spill directory (txnbuf-<pid>-<xid>-<seq>.spill), which
 * it removes on discard, release and free.
 *
 * Must never: include libpq or know pgoutput (a record is an opaque byte
 * string, one replication message each); block the writer on the reader;
 * log; exit.
 *
 * Memory: mem_limit bounds the blocks that hold records, strictly. Outside it
 * are the per-transaction bookkeeping (about 100 bytes, plus 16 per
 * subtransaction that wrote, as in PostgreSQL's apply worker) and each
 * reader's buffers.
 *
 * Threads: one writer (append, abort_sub, discard, seal) and one reader
 * (reader_open/next/close, release) may call concurrently. Everything else
 * (new, free) runs with neither active. stats and exists may be called from
 * any thread.
 *
 * Life of a transaction:
 *
 *   (none) --append/seal--> OPEN --seal--> SEALED --release--> (none)
 *   OPEN --discard--> (none)            SEALED --reader_open--> READING
 *   OPEN --abort_sub--> OPEN            READING --reader_close--> SEALED
 */
#ifndef PGTIDE_TXNBUF_H
#define PGTIDE_TXNBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct TxnBuf TxnBuf;
typedef struct TxnReader TxnReader;

/* Largest record txnbuf_append accepts (2 GB - 1). */
#define TXNBUF_RECORD_MAX ((size_t) 0x7FFFFFFF)

/* Counters for metrics; see txnbuf_stats. */
typedef struct TxnBufStats
{
	size_t mem_bytes;       /* record memory held now (blocks and headers) */
	size_t mem_peak_bytes;  /* highest mem_bytes since txnbuf_new */
	uint64_t spilled_bytes; /* bytes written to spill files in total */
	uint64_t spilled_txns;  /* transactions that spilled at least once */
} TxnBufStats;

/*
 * Creates an empty buffer that holds at most mem_limit bytes of records in
 * memory (0: every record goes to a file) and spills into spill_dir, which
 * must exist and be writable. On success *out is owned by the caller (free it
 * with txnbuf_free); on failure *out is untouched and err says why
 * (ERR_INTERNAL, naming the directory).
 */
bool txnbuf_new(const char *spill_dir, size_t mem_limit, TxnBuf **out,
                Error *err);

/*
 * Frees every transaction, sealed or not, and removes every spill file the
 * buffer made. Every reader must be closed first. NULL is a no-op.
 */
void txnbuf_free(TxnBuf *b);

/*
 * Writer. Appends a copy of data[0..len) to transaction xid, creating it on
 * first use. subxid is the (sub)transaction that produced the record (xid
 * itself at the top level); its first record's position is remembered for
 * txnbuf_abort_sub. When memory would pass the limit, the largest transaction
 * not being read (possibly xid itself) is spilled first; a record too large
 * for the limit goes straight to xid's file. Fails (ERR_INTERNAL) when xid is
 * sealed, len exceeds TXNBUF_RECORD_MAX, memory runs out or a spill file
 * cannot be written; the transaction then holds the records appended before.
 */
bool txnbuf_append(TxnBuf *b, uint32_t xid, uint32_t subxid, const void *data,
                   size_t len, Error *err);

/*
 * Writer. Aborts subtransaction subxid of open transaction xid: discards its
 * records and every record appended to xid after its first one (in memory,
 * in the file, or both; the file is truncated), as PostgreSQL's apply worker
 * does for a streamed subtransaction abort. Subtransactions that started
 * after subxid are forgotten too. subxid == xid discards the whole
 * transaction (txnbuf_discard). A no-op when xid or subxid never appended.
 * Fails (ERR_INTERNAL) when xid is sealed or the file cannot be truncated; the
 * transaction is then unchanged.
 */
bool txnbuf_abort_sub(TxnBuf *b, uint32_t xid, uint32_t subxid, Error *err);

/*
 * Writer. Discards open transaction xid (an abort): frees its memory and
 * removes its spill file. A no-op when xid is unknown or sealed (a sealed
 * transaction belongs to the reader, which releases it).
 */
void txnbuf_discard(TxnBuf *b, uint32_t xid);

/*
 * Writer. Marks xid complete: no more appends; the reader may now open it. An
 * xid that never appended becomes an empty sealed transaction. Fails
 * (ERR_INTERNAL) when xid is already sealed, or out of memory.
 */
bool txnbuf_seal(TxnBuf *b, uint32_t xid, Error *err);

/*
 * Reader. Opens sealed transaction xid to read its records in append order.
 * While open, the transaction is never spilled or released. On success *out
 * is owned by the caller (close it with txnbuf_reader_close); a reader holds
 * a read buffer of at most 1 MB plus, for one call, the largest record. Fails
 * (ERR_INTERNAL) when xid is unknown, not sealed or already open, or its
 * spill file cannot be opened.
 */
bool txnbuf_reader_open(TxnBuf *b, uint32_t xid, TxnReader **out, Error *err);

/*
 * Reader. Sets *data and *len to the next record and *done to false, or *done
 * to true (and *data NULL, *len 0) after the last. *data is a view, valid
 * until the next call on r. Fails (ERR_INTERNAL, naming the spill file and
 * offset) on a read error or a truncated or corrupt spill file; after a
 * failure only txnbuf_reader_close may be called.
 */
bool txnbuf_reader_next(TxnReader *r, const void **data, size_t *len,
                        bool *done, Error *err);

/* Reader. Closes r and frees its buffers; the transaction stays. NULL ok. */
void txnbuf_reader_close(TxnReader *r);

/*
 * Reader. Frees sealed transaction xid and removes its spill file, once it
 * was applied. A no-op when xid is unknown, not sealed, or open for reading
 * (close the reader first).
 */
void txnbuf_release(TxnBuf *b, uint32_t xid);

/* Fills *out with the counters. Any thread; values may be a moment old. */
void txnbuf_stats(const TxnBuf *b, TxnBufStats *out);

/* Whether xid is buffered (open or sealed, not yet discarded or released). */
bool txnbuf_exists(const TxnBuf *b, uint32_t xid);

#endif
