/*
 * cdc: the change stream of a task, from the slot to the target.
 *
 *   receiver (calling thread)            applier (own thread)
 *   stream_read -> pgoutput_decode       queue of committed transactions
 *   -> txnbuf_append / seal -> queue --> txnbuf reader -> pgoutput_decode
 *   keepalives answered at once,         -> apply (batches, pipelined,
 *   status every second:                    origin advanced in the same
 *   flushed = origin progress on the        target transaction)
 *   target, never more                   -> origin progress (flushed)
 *
 * The receiver never waits for the applier: transactions pile up in txnbuf
 * (spilled to disk past the memory bound), so keepalives are answered within
 * a second whatever the target does. The position confirmed to the slot is
 * only ever what the target has durably committed. After a disconnect or a
 * restart, streaming resumes from the origin's position: nothing is lost,
 * nothing applied twice.
 */
#ifndef PGTIDE_CDC_H
#define PGTIDE_CDC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/lsn.h"
#include "cdc/apply.h"
#include "route/rename.h"

#define CDC_OUTAGE_MAX 512

/* What the change stream has done, for status reporting. */
typedef struct CdcProgress
{
	int64_t txns;     /* source transactions applied since start */
	int64_t changes;  /* row changes applied since start */
	int64_t ignored;  /* changes of tables the task does not move, dropped as
	                    cdc.unknown_tables = ignore says, since start */
	int64_t filtered; /* new row versions a row filter or the routing left
	                     out (not this target's rows), since start */
	double txns_per_s;
	double changes_per_s;
	Lsn applied_lsn; /* end of the last applied transaction */
	Lsn flushed_lsn; /* what the target has durably (origin progress) */
	Lsn source_lsn;  /* the source's WAL end, last heard */
	int64_t lag_bytes;
	double lag_seconds; /* now - commit time of the last applied; 0 idle */
	int64_t buffered_bytes;
	int64_t spilled_txns;
	int64_t spilled_bytes; /* written to spill files since start */
	int64_t conflicts;     /* rows missing or already there (skip, upsert) */
	int64_t conflicts_by[APPLY_NCONFLICTS]; /* the same, by kind */
	int64_t source_retries; /* times the source was connected again */
	int64_t target_retries; /* times the target was */
	/* "" while both sides answer; else which side is down, since when and
	   why, while the stream retries */
	char outage[CDC_OUTAGE_MAX];
} CdcProgress;

/* Called from the receiver thread every progress interval. */
typedef void (*CdcProgressFn)(const CdcProgress *p, void *ctx);

/*
 * Asked a few times a second, from the applier thread (it may block): where
 * the stream must stop (cutover's marker), LSN_INVALID for nowhere yet.
 */
typedef bool (*CdcStopAtFn)(Lsn *stop_lsn, void *ctx, Error *err);

/*
 * Asked from the applier thread between batches, when no stop position is
 * set (it may block: the receiver buffers meanwhile): the tables that joined
 * the task since the last call, *n of them (0: none), which the callee keeps
 * until its next call. Their changes apply from their load points on. A
 * failure stops the stream.
 */
typedef bool (*CdcJoinFn)(const ApplyTable **tables, int *n, void *ctx,
                          Error *err);

typedef struct CdcOptions
{
	const char *source_uri;
	const char *target_uri;
	const char *slot;
	const char *publication;
	const char *insert_publication; /* keyless tables' inserts; or NULL */
	const char *origin;             /* replication origin on the target */
	Lsn start_lsn; /* where to start when the origin has no progress yet */
	const ApplyTable *tables;
	int ntables;
	/* the task's follow statement (state_follow_columns_sql) and name: the
	 * target follows its tables' schema changes; NULL: it does not */
	const char *follow_sql;
	const char *task;
	/* state_table_rename_sql: a table renamed on the source is followed
	 * (apply_rel_follow_rename); NULL: it stops the stream */
	const char *rename_sql;
	bool ignore_unknown;      /* count a change of a table the task does not
	                          move, rather than stop */
	bool shared_slot;         /* ApplyTask's */
	const char *state_schema; /* ApplyTask's */
	const Renames *renames;   /* the task's renames, or NULL; borrowed */
	/* several targets: the rules, borrowed (the stream adds the lookup
	   table's new keys); NULL */
	ShardSpec *shard;
	int shard_target; /* and the target this stream feeds */
	OnConflict policy;
	int64_t memory_bytes;
	const char *spill_dir;
	int progress_interval_s;
	CdcProgressFn on_progress; /* optional */
	void *progress_ctx;
	atomic_int *stop;
	CdcStopAtFn stop_at; /* optional */
	void *stop_ctx;
	CdcJoinFn join; /* optional */
	void *join_ctx;
	Lsn *stopped_at; /* optional out: the stop position, once reached */
} CdcOptions;

/*
 * Follows the slot until *stop is set (returns false with ERR_INTERRUPTED,
 * after the applied position was reported), until the target has flushed
 * the position stop_at names (returns true, *stopped_at set; no transaction
 * committed after it is applied), or a failure no retry cures.
 * Source and target disconnects are retried with backoff.
 */
bool cdc_run(const CdcOptions *o, Error *err);

#endif
