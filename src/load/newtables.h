/*
 * newtables: the tables the task's patterns select on the source now that
 * the task does not move: created, or attached as partitions, after its
 * load. They are not in the task's publication, so the change stream never
 * sees their rows: pgtide says so while it follows and in status, rather
 * than let them be left behind unnoticed. Reads only; it changes nothing
 * on either side.
 */
#ifndef PGTIDE_NEWTABLES_H
#define PGTIDE_NEWTABLES_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/pg.h"
#include "state/state.h"

typedef struct NewTables
{
	char **names; /* "schema"."name", owned */
	int n;
} NewTables;

/*
 * Fills *out with the source's tables that cfg's patterns select and the
 * task's state (on st) does not hold. Free with newtables_free().
 */
bool newtables_find(PgConn *src, const State *st, const TaskConfig *cfg,
                    NewTables *out, Error *err);

void newtables_free(NewTables *nt);

/*
 * Which of the task's n tables t (the state's) is the source's table c: by
 * oid, or by name when the state has none (an older pgtide's). A table of
 * the task renamed on the source is its own, and a new table under a
 * renamed one's old name is not. NULL when none is.
 */
const StateTable *newtables_known(const StateTable *t, int n,
                                  const CatTable *c);

/*
 * A cheap reading that changes when a table is created, dropped or
 * attached on the source, or gains a key or the WAL (counts and the newest
 * OID), so a watcher reads the whole catalog only then. Into buf (at least
 * 64 bytes).
 */
bool newtables_signature(PgConn *src, char *buf, size_t len, Error *err);

#endif
