/*
 * insert_only: tables without a key (no primary key, no replica identity),
 * streamed for their INSERT and TRUNCATE only, and the watch over them.
 *
 * Such a table in a publication of UPDATE and DELETE would make the
 * application's UPDATE and DELETE on it fail, so it goes in a publication
 * of its own (publish = 'insert, truncate') and nothing on the source can
 * fail because of pgtide. An UPDATE or DELETE on it then never reaches the
 * target; the source's statistics (n_tup_upd + n_tup_del) tell whether one
 * happened since a baseline read before the slot existed. A table that saw
 * one has diverged: pgtide says so by name (check, status, validate,
 * cutover), and cutover refuses it or copies it again while the source is
 * fenced (docs/decisions/0007). This module reads the source's statistics
 * and never writes to the source.
 */
#ifndef PGTIDE_LOAD_INSERT_ONLY_H
#define PGTIDE_LOAD_INSERT_ONLY_H

#include "pg/catalog.h"
#include "pg/pg.h"
#include "state/state.h"

/*
 * How long after its last write a session's counts are sure to be in the
 * statistics: 15+ flushes a session's counts once it is idle, at most once
 * a second; older servers' collector publishes them every half second.
 */
#define INSERT_ONLY_STATS_DELAY_MS 1500

/* The publication of the keyless tables of publication `name`. */
void insert_only_publication(const char *name, char *out, size_t cap);

/*
 * Whether a selected table is streamed for its inserts only: permanent, and
 * without a replica identity that UPDATE and DELETE could use.
 */
bool insert_only_table(const CatTable *t);

/*
 * Fills t[i].baseline from the source's statistics of t[i].relid, for
 * n tables.
 */
bool insert_only_baselines(PgConn *src, StateInsertOnly *t, int n, Error *err);

/* What a watch found. */
typedef struct InsertOnlyWatch
{
	StateInsertOnly *tables; /* every insert-only table of the task */
	int n;
	int diverged;     /* how many have diverged, now or before */
	int new_diverged; /* how many this watch found first (and logged) */
} InsertOnlyWatch;

/*
 * Compares the source's statistics of the task's insert-only tables with
 * their baselines; records each newly diverged one in the state (when
 * record) and warns once about it. The state is on the target, src the
 * source. Free *out with insert_only_watch_free().
 */
bool insert_only_watch(PgConn *src, const State *st, bool record,
                       InsertOnlyWatch *out, Error *err);

void insert_only_watch_free(InsertOnlyWatch *w);

/*
 * "a, b and 3 more": the diverged tables' names for a message; "" when
 * none.
 */
void insert_only_names(const InsertOnlyWatch *w, char *out, size_t cap);

#endif
