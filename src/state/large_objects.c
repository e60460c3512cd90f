/*
 * large_objects: which large objects pgtide copied to the target and what
 * each held (a digest of its contents, owner and privileges), so a later
 * pass copies only what changed and removes only what it made. Reading
 * the large objects themselves is load/lobjects.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_int.h"

bool
state_lo_range(const State *s, uint32_t first, uint32_t last, uint32_t *oids,
               char (*digests)[STATE_LO_DIGEST], int cap, int *n, Error *err)
{
	char a[16], b[16], c[16];
	const char *params[4] = {s->task, a, b, c};
	PGresult *res;

	snprintf(a, sizeof(a), "%u", first);
	snprintf(b, sizeof(b), "%u", last);
	snprintf(c, sizeof(c), "%d", cap);
	if (!state_run(s,
	               "SELECT lo, digest FROM @S.large_objects WHERE task = $1"
	               " AND lo BETWEEN $2::oid AND $3::oid ORDER BY lo LIMIT $4",
	               4, params, &res, err))
		return false;
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
	{
		oids[i] = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(digests[i], STATE_LO_DIGEST, "%s", PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

bool
state_lo_after(const State *s, uint32_t after, uint32_t *oids, int cap, int *n,
               Error *err)
{
	char a[16], c[16];
	const char *params[3] = {s->task, a, c};
	PGresult *res;

	snprintf(a, sizeof(a), "%u", after);
	snprintf(c, sizeof(c), "%d", cap);
	if (!state_run(s,
	               "SELECT lo FROM @S.large_objects WHERE task = $1"
	               " AND lo > $2::oid ORDER BY lo LIMIT $3",
	               3, params, &res, err))
		return false;
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
		oids[i] = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	return true;
}

bool
state_lo_set(const State *s, uint32_t oid, const char *digest, Error *err)
{
	char a[16];
	const char *params[3] = {s->task, a, digest};

	snprintf(a, sizeof(a), "%u", oid);
	return state_run(s,
	                 "INSERT INTO @S.large_objects (task, lo, digest)"
	                 " VALUES ($1, $2::oid, $3) ON CONFLICT (task, lo)"
	                 " DO UPDATE SET digest = EXCLUDED.digest",
	                 3, params, NULL, err);
}

bool
state_lo_forget(const State *s, uint32_t oid, Error *err)
{
	char a[16];
	const char *params[2] = {s->task, a};

	snprintf(a, sizeof(a), "%u", oid);
	return state_run(s,
	                 "DELETE FROM @S.large_objects WHERE task = $1"
	                 " AND lo = $2::oid",
	                 2, params, NULL, err);
}
