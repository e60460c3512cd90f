/*
 * txnbuf: the buffer, its table of transactions and their life, and the
 * memory their records take.
 *
 * It owns the TxnBuf and its TxnTable (each Txn's flags, under table->lock),
 * the path of a transaction through the states drawn in txnbuf.h (append,
 * abort_sub, discard, seal, release), the memory blocks and the mem_limit
 * bound: which transaction spills when a block would not fit (pick_victim),
 * and where each subtransaction starts. The design notes are in
 * txnbuf_int.h.
 *
 * It must never read or write a spill file itself (txnbuf_spill.c writes and
 * cuts them, txnbuf_reader.c reads them; removing one is all it does), nor
 * do file I/O under table->lock.
 */
#include "cdc/txnbuf.h"
#include "cdc/txnbuf_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK_MIN      ((size_t) 256)
#define BLOCK_MAX      ((size_t) 64 * 1024)
#define BUCKETS_MIN    64
#define SPILL_NAME_MAX 80 /* "/txnbuf-<pid>-<xid>-<seq>.spill" */

/* Spill file names stay unique across buffers and reused xids. */
static _Atomic uint64_t txn_seq;

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
void
txnbuf_free_blocks(TxnBuf *b, Txn *t, Block **link)
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

		txnbuf_spill_path(b, t, path, sizeof(path));
		/* Nothing to do on failure: the file is ours and unused. */
		(void) unlink(path);
	}
	txnbuf_free_blocks(b, t, &t->head);
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

Txn *
txnbuf_table_find(const TxnTable *tab, uint32_t xid)
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
	t = txnbuf_table_find(tab, xid);
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
		ok = txnbuf_spill_txn(b, victim, NULL, 0, err);
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

	txnbuf_crc_setup();
	if (dir_len + SPILL_NAME_MAX >= PATH_MAX)
		return err_set(err, ERR_INTERNAL, "spill directory \"%s\" is too long",
		               spill_dir);
	if (stat(spill_dir, &st) != 0)
		return err_set(err, ERR_INTERNAL,
		               "could not use spill directory \"%s\": %s", spill_dir,
		               txnbuf_os_error(errno, ebuf, sizeof(ebuf)));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ERR_INTERNAL,
		               "spill directory \"%s\" is not a directory", spill_dir);
	if (access(spill_dir, W_OK | X_OK) != 0)
		return err_set(err, ERR_INTERNAL,
		               "could not use spill directory \"%s\": %s", spill_dir,
		               txnbuf_os_error(errno, ebuf, sizeof(ebuf)));

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
	if (!reserve_frame(b, t, TXNBUF_REC_HDR_BYTES + len, &dst, err))
		return false;
	if (dst == NULL)
	{
		static const unsigned char empty;

		/* NULL means "no record" to txnbuf_spill_txn; an empty record is not. */
		return txnbuf_spill_txn(b, t, data != NULL ? data : &empty, len, err);
	}
	txnbuf_put_u32(dst, (uint32_t) len);
	txnbuf_put_u32(dst + 4, 0);
	if (len > 0)
		memcpy(dst + TXNBUF_REC_HDR_BYTES, data, len);
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
	if (!txnbuf_truncate_txn(b, t, t->subs[i - 1].start, err))
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
	t = txnbuf_table_find(tab, xid);
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

void
txnbuf_release(TxnBuf *b, uint32_t xid)
{
	TxnTable *tab = b->table;
	Txn *t;

	pthread_mutex_lock(&tab->lock);
	t = txnbuf_table_find(tab, xid);
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
	found = txnbuf_table_find(tab, xid) != NULL;
	pthread_mutex_unlock(&tab->lock);
	return found;
}
