/*
 * state_int: what the state module's own files share; no caller outside
 * src/state/ includes it.
 */
#ifndef PGTIDE_STATE_INT_H
#define PGTIDE_STATE_INT_H

#include "state/state.h"

/*
 * Runs one statement over the state schema, @S in fmt standing for it
 * (quoted), with params; *out gets the result when out is not NULL (the
 * caller clears it). A failure is prefixed "state: ".
 */
bool state_run(const State *s, const char *fmt, int nparams,
               const char *const *params, PGresult **out, Error *err);

/*
 * columns.c's part of the schema, installed by state_open after state.c's:
 * its columns of tables, and its functions when missing or older.
 */
bool state_columns_install(const State *s, Error *err);

/* strdup of a result field, NULL for SQL null; sets *oom when out of memory. */
char *state_dup(const PGresult *res, int row, int col, bool *oom);

#endif
