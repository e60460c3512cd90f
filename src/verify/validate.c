/*
 * validate: ranged count+hash comparison of source and target, and the
 * drill-down that names differing rows. Only aggregates and, for the few
 * rows that differ, keys cross the network. It never writes to the source:
 * every source session is read-only. Memory stays bounded whatever the size
 * of a table: no key list or row set is ever held beyond one leaf range.
 *
 * This file is the front door (validate.h): one run from start to end,
 * and pgtide validate's exit status. The rest of src/verify/validate_*.c
 * share validate_int.h, one concern each, in the order a run uses them:
 *
 *   validate_tables.c    which tables: the task's, or the selection; VTable
 *   validate_columns.c   a relation's columns and key, from its catalog
 *   validate_rowhash.c   the row hash expression, per column type
 *   validate_describe.c  what comparing one table takes (SQL pieces, key)
 *   validate_slot.c      a running change stream: detect it, wait for it
 *   validate_record.c    the results in the state schema's validation_*
 *   validate_pool.c      the worker threads and their jobs
 *   validate_plan.c      a table's ranges: estimate, sample, --sample
 *   validate_range.c     one range's count and hash sum on both sides
 *   validate_keyed.c     split, name the rows of a leaf, recheck them
 *   validate_keymap.c    keys as strings; the hash map of a leaf's keys
 *   validate_keyless.c   tables without a key: buckets of row hashes
 *   validate_query.c     validate's sessions: settings, cancel, row streams
 *   validate_result.c    what was found: differences kept, merged, totalled
 *   validate_print.c     pgtide validate's report, text or JSON
 *
 * The life of a keyed table (a primary key, replica identity index, or a
 * unique index on NOT NULL columns):
 *
 *   plan_ranges       one range for the whole table when no stream applies
 *                     (up to VALIDATE_WHOLE_BYTES); else boundaries sampled
 *                     on the source (TABLESAMPLE SYSTEM), at most about
 *                     VALIDATE_RANGE_ROWS rows or VALIDATE_RANGE_BYTES per
 *                     range; --sample keeps a random fraction of the ranges
 *                     (at least one)
 *      │
 *      ▼
 *   keyed_compare     count(*) and sum(row hash) of [lo, hi) on both sides at
 *      │              once; equal -> done
 *      │ differs      while CDC runs: wait until the slot has confirmed the
 *      │              source position read with the range, read again, up to
 *      │              VALIDATE_RECHECKS times; equal at any read -> done
 *      ▼
 *   source rows > VALIDATE_LEAF_ROWS ?
 *      │ yes ──► split_range: VALIDATE_SPLIT_WAYS sub-ranges cut at source
 *      │         keys; each goes back to keyed_compare
 *      ▼ no
 *   leaf_keyed        the source's (key, hash) rows in memory (a leaf is
 *      │              small), the target's streamed row by row: missing,
 *      │              extra, different
 *      ▼
 *   settle_keys       while CDC runs, or when the key's collation may sort
 *                     differently on the two servers: the named keys read
 *                     again by equality on both sides; under CDC source,
 *                     target (once the slot passed the first read), source
 *                     again, and a row is reported only when the source held
 *                     it still around a differing target twice in a row;
 *                     rows the source changed at every read are counted as
 *                     unsettled, not as differences
 *
 * A table without such a key has no ranges that mean the same rows on both
 * sides (ctids differ), so keyless_compare hashes it whole, then groups rows
 * by the leading bits of their hash (256 buckets per level, only differing
 * buckets descended) and finally streams (hash, copies) of the differing
 * buckets from both sides in hash order and merges them: rows are a
 * multiset, duplicates count.
 *
 * Row hash (rowhash_expr): with both servers at 11 or later, the XOR of
 * one 64-bit hash per column, each seeded by the column's position: the
 * type's own extended hash (the functions hash partitioning relies on, so
 * the same on every version) for integers, floats, times, uuid and text,
 * the hash of the column's text for other types, a per-column constant for
 * NULL. Between databases of two encodings (a LATIN1 source, a UTF-8
 * target) every text is hashed as its UTF-8 bytes, escaped to ASCII
 * (text_as_utf8): its bytes differ between them where its characters do
 * not. Text is rendered under the same session settings on both sides
 * (query_open). Hashing the row's text, ROW(c1, ..., cn)::text, was measured
 * 3.4 times slower on pgbench_accounts and is kept only for older servers
 * (md5 of it, floats through their send functions). jsonb_hash_extended was
 * rejected: it hashes {}, [] and [[]] alike. A range's hash is the sum of
 * its rows' hashes, as numeric: order does not matter and nothing overflows.
 * Rejected too: comparing ctid ranges (physical positions differ between
 * servers) and an OFFSET walk of the key index (a full index scan before
 * the first range can start).
 */
#include "verify/validate.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "pg/catalog.h"
#include "pg/pg.h"
#include "state/state.h"
#include "verify/validate_int.h"

static void
run_free(VRun *r)
{
	tables_free(r->tables, r->ntables);
	r->tables = NULL;
	rename_free(&r->renames);
	insert_only_watch_free(&r->io);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

/*
 * The task's keyless tables, streamed for their inserts only: one that saw
 * an UPDATE or DELETE differs whatever its rows say now, and is recorded
 * as diverged. Nothing to watch without the task's state.
 */
static bool
watch_insert_only(VRun *r, PgConn *src, PgConn *state_conn, Error *err)
{
	State state;
	bool exists = false;

	if (!state_attach(&state, state_conn, r->cfg->state_schema, r->cfg->task,
	                  &exists, err))
		return false;
	if (!exists)
		return true;
	return insert_only_watch(src, &state, true, &r->io, err);
}

/*
 * Whether both databases store text in one encoding: a hash of a text's
 * bytes is then the same for equal texts. The sessions' server_encoding,
 * which libpq keeps from the connection's start.
 */
static bool
same_encoding(PgConn *src, PgConn *tgt)
{
	const char *a = PQparameterStatus(pg_raw(src), "server_encoding");
	const char *b = PQparameterStatus(pg_raw(tgt), "server_encoding");

	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/*
 * Everything but printing: which tables, their description, the workers,
 * and the state records. On success r holds the results (freed by
 * run_free).
 */
static bool
run_validation(VRun *r, Error *err)
{
	PgConn *src = NULL, *tgt = NULL, *state = NULL;
	Catalog *cat = NULL;
	VPick *picks = NULL;
	int npicks = 0;
	bool from_state = false, ok = false;

	r->started_ms = clock_ms();
	r->run_id = -1;
	atomic_init(&r->wait_ms, VALIDATE_WAIT_MS);
	if (!query_open(r, ERR_SOURCE, true, &src, err) ||
	    !query_open(r, ERR_TARGET, true, &tgt, err))
		goto out;
	r->src_version = pg_server_version(src);
	r->tgt_version = pg_server_version(tgt);
	/* PGTIDE_VALIDATE_PORTABLE forces the md5 form: for servers of another
	 * byte order, and for the tests of the form older servers get */
	r->hash_ext = getenv("PGTIDE_VALIDATE_PORTABLE") == NULL &&
	              r->src_version >= 110000 && r->tgt_version >= 110000;
	r->text_as_utf8 = !same_encoding(src, tgt);
	if (!rename_from_config(&r->renames, r->cfg, err) ||
	    !catalog_read(src, r->cfg->state_schema, &cat, err) ||
	    !tables_pick(r, tgt, cat, &picks, &npicks, &from_state, err) ||
	    !tables_build(r, cat, picks, npicks, err))
		goto out;
	for (int i = 0; i < r->ntables; i++)
		if (!describe_table(r, src, tgt, &r->tables[i], err))
		{
			err_prefix(err, "table %s: ", r->tables[i].name);
			goto out;
		}
	tables_sort(r->tables, r->ntables);
	if (!slot_detect(r, src, tgt, err))
		goto out;
	log_info("validating %d tables (%s) with %d workers%s", r->ntables,
	         from_state ? "the task's" : "selected on the source",
	         r->cfg->copy_jobs,
	         r->cfg->validate_sample < 1.0 ? ", a sample of the ranges" : "");
	/* the only session that writes: the state schema on the target. A
	 * target where pgtide may not write still gets compared. */
	if (!query_open(r, ERR_TARGET, false, &state, err))
		goto out;
	{
		Error rec = ERR_INIT;

		if (!record_start(r, state, &rec))
		{
			log_warn("%s; the results are not recorded", rec.message);
			r->run_id = -1;
		}
	}
	if (!watch_insert_only(r, src, state, err))
		goto out;
	pg_close(src);
	pg_close(tgt);
	src = tgt = NULL;
	if (!pool_run(r, err))
	{
		Error ignored = ERR_INIT;

		if (pg_ok(state))
			record_end(r, state, err, &ignored);
		goto out;
	}
	ok = record_end(r, state, NULL, err);
out:
	tables_picks_free(picks, npicks);
	catalog_free(cat);
	pg_close(src);
	pg_close(tgt);
	pg_close(state);
	return ok;
}

static bool
run_init(VRun *r, const TaskConfig *cfg, ValidateMode mode, atomic_int *stop)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	rename_init(&r->renames);
	r->mode = mode;
	r->stop = stop;
	pthread_mutex_init(&r->lock, NULL);
	clock_cond_init(&r->cond);
	return true;
}

static bool
run_summarized(const TaskConfig *cfg, ValidateMode mode, bool still,
               ValidateShares *shares, int target, atomic_int *stop,
               ValidateSummary *out, Error *err)
{
	VRun r;
	int64_t ranges, checked;
	bool ok;

	run_init(&r, cfg, mode, stop);
	r.still = still;
	r.shares = shares;
	r.shard_target = target;
	ok = run_validation(&r, err);
	if (ok)
	{
		result_summarize(&r, out, &ranges, &checked);
		log_info("validation (%s) run %" PRId64 ": %d tables, %d differ,"
		         " %" PRId64 " rows on the source, %" PRId64
		         " on the target, %" PRId64 " differences",
		         mode == VALIDATE_FULL ? "full" : "counts", r.run_id,
		         out->tables, out->tables_differing, out->rows_source,
		         out->rows_target, out->differences);
	}
	run_free(&r);
	return ok;
}

bool
validate_run(const TaskConfig *cfg, ValidateMode mode, bool still,
             atomic_int *stop, ValidateSummary *out, Error *err)
{
	return run_summarized(cfg, mode, still, NULL, 0, stop, out, err);
}

bool
validate_run_shares(const TaskConfig *cfg, ValidateShares *shares, int target,
                    atomic_int *stop, ValidateSummary *out, Error *err)
{
	return run_summarized(cfg, VALIDATE_COUNTS, true, shares, target, stop, out,
	                      err);
}

static bool
command_run(const TaskConfig *cfg, const ShardSpec *spec, int target,
            atomic_int *stop, Error *err)
{
	VRun r;
	ValidateSummary s;
	int64_t ranges, checked;
	bool ok;

	run_init(&r, cfg, VALIDATE_FULL, stop);
	r.spec = spec;
	r.shard_target = target;
	ok = run_validation(&r, err);
	if (ok)
	{
		if (cfg->output_json)
			print_json(&r, stdout);
		else
			print_text(&r, stdout);
		fflush(stdout);
		result_summarize(&r, &s, &ranges, &checked);
		if (r.io.diverged > 0 && s.tables_differing == 0 && s.differences == 0)
		{
			char names[512];

			insert_only_names(&r.io, names, sizeof(names));
			err_set(err, ERR_DIFFERENT,
			        "%d tables without a key diverged: %s saw an UPDATE or "
			        "DELETE on the source that the stream cannot carry",
			        r.io.diverged, names);
			err_hint(err, "pgtide cutover --diverged=recopy copies them "
			              "again while the source is fenced");
			ok = false;
		}
		else if (s.tables_differing > 0 || s.differences > 0)
		{
			err_set(err, ERR_DIFFERENT,
			        "%d of %d tables differ (%" PRId64 " differences)",
			        s.tables_differing, s.tables, s.differences);
			if (r.run_id < 0)
				err_hint(err, "the differing rows are listed above");
			else
				err_hint(err,
				         "the differing rows are listed above and in %s."
				         "validation_differences (run %" PRId64 ")",
				         cfg->state_schema, r.run_id);
			ok = false;
		}
	}
	run_free(&r);
	return ok;
}

bool
validate_command(const TaskConfig *cfg, atomic_int *stop, Error *err)
{
	return command_run(cfg, NULL, 0, stop, err);
}

bool
validate_command_shard(const TaskConfig *cfg, const ShardSpec *spec, int target,
                       atomic_int *stop, Error *err)
{
	return command_run(cfg, spec, target, stop, err);
}
