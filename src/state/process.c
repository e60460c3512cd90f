/*
 * process: the task's lock and the record of the process holding it. The
 * lock is a session-level advisory lock on the target, in the two-key form
 * (STATE_LOCK_NAMESPACE, state_lock_key): an application's own advisory
 * locks use one bigint key, or two keys of its own choosing, and the
 * two-key space never meets the one-key space. The record only names the
 * holder; whether a process runs is always the lock's answer, so a record
 * left by a killed process is ignored. Keeping the lock's session alive
 * and taking the lock again after a lost connection is the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_int.h"

int32_t
state_lock_key(const char *schema, const char *task)
{
	/* 32-bit FNV-1a over "schema", a zero byte, "task": written out here,
	   not borrowed, since it must never change */
	uint32_t h = 2166136261u;
	const char *parts[2] = {schema, task};

	for (int i = 0; i < 2; i++)
	{
		for (const unsigned char *p = (const unsigned char *) parts[i]; *p; p++)
			h = (h ^ *p) * 16777619u;
		h = (h ^ 0u) * 16777619u;
	}
	/* positive: the same number as int4 (the lock functions) and as oid
	   (pg_locks.objid) */
	return (int32_t) (h & 0x7fffffffu);
}

/* The keys as text parameters. */
typedef struct LockKeys
{
	char ns[16];
	char key[16];
} LockKeys;

static void
lock_keys(const State *s, LockKeys *k)
{
	snprintf(k->ns, sizeof(k->ns), "%d", STATE_LOCK_NAMESPACE);
	snprintf(k->key, sizeof(k->key), "%d", state_lock_key(s->schema, s->task));
}

bool
state_lock_try(const State *s, bool *taken, char *since, size_t cap, Error *err)
{
	LockKeys k;
	const char *params[2] = {k.ns, k.key};
	PGresult *res;

	*taken = false;
	lock_keys(s, &k);
	if (!pg_query(s->conn,
	              "SELECT pg_catalog.pg_try_advisory_lock($1::int4, $2::int4),"
	              " pg_catalog.now()::text",
	              2, params, &res, err))
		return err_prefix(err, "state: could not take the task's lock: ");
	*taken = PQgetvalue(res, 0, 0)[0] == 't';
	snprintf(since, cap, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return true;
}

bool
state_lock_release(const State *s, Error *err)
{
	LockKeys k;
	const char *params[2] = {k.ns, k.key};
	PGresult *res;

	lock_keys(s, &k);
	if (!pg_query(s->conn,
	              "SELECT pg_catalog.pg_advisory_unlock($1::int4, $2::int4)", 2,
	              params, &res, err))
		return err_prefix(err, "state: ");
	PQclear(res);
	return true;
}

/* The session holding the task's lock, and what the target says of it. */
static bool
lock_holder(const State *s, StateProcess *out, Error *err)
{
	LockKeys k;
	const char *params[2] = {k.ns, k.key};
	PGresult *res;

	lock_keys(s, &k);
	if (!pg_query(s->conn,
	              "SELECT l.pid, coalesce(a.application_name, ''),"
	              " coalesce(a.backend_start::text, '')"
	              " FROM pg_catalog.pg_locks l"
	              " LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
	              " WHERE l.locktype = 'advisory' AND l.granted"
	              " AND l.database = (SELECT oid FROM pg_catalog.pg_database"
	              "  WHERE datname = pg_catalog.current_database())"
	              " AND l.classid = $1::int8::oid AND l.objid = $2::int8::oid"
	              " AND l.objsubid = 2",
	              2, params, &res, err))
		return err_prefix(err, "state: ");
	if (PQntuples(res) > 0)
	{
		out->running = true;
		out->backend_pid = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(out->session, sizeof(out->session), "%s",
		         PQgetvalue(res, 0, 1));
		snprintf(out->since, sizeof(out->since), "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return true;
}

bool
state_process_read(const State *s, bool schema_exists, StateProcess *out,
                   Error *err)
{
	char qname[STATE_QSCHEMA_MAX + 16];
	const char *params[1] = {s->task};
	bool has_table = false;
	PGresult *res;

	memset(out, 0, sizeof(*out));
	if (!lock_holder(s, out, err))
		return false;
	if (!out->running || !schema_exists)
		return true;
	/* a schema made by an older pgtide has no record table: status must
	   not add it, so it is looked for first */
	snprintf(qname, sizeof(qname), "%s.processes", s->qschema);
	if (!pg_relation_exists(s->conn, qname, &has_table, err))
		return err_prefix(err, "state: ");
	if (!has_table)
		return true;
	if (!state_run(s,
	               /* through to_jsonb: a record table of an older
	                  pgtide has no throttle column */
	               "SELECT host, pid, command, started_at::text, backend_pid,"
	               " pg_catalog.to_jsonb(p) ->> 'throttle'"
	               " FROM @S.processes p WHERE task = $1",
	               1, params, &res, err))
		return false;
	/* the record names the holder only if it was written by the lock's
	   session; an older one is a process since gone */
	if (PQntuples(res) == 1 &&
	    strtol(PQgetvalue(res, 0, 4), NULL, 10) == out->backend_pid)
	{
		out->known = true;
		snprintf(out->host, sizeof(out->host), "%s", PQgetvalue(res, 0, 0));
		out->pid = (int) strtol(PQgetvalue(res, 0, 1), NULL, 10);
		snprintf(out->command, sizeof(out->command), "%s",
		         PQgetvalue(res, 0, 2));
		snprintf(out->since, sizeof(out->since), "%s", PQgetvalue(res, 0, 3));
		snprintf(out->throttle, sizeof(out->throttle), "%s",
		         PQgetvalue(res, 0, 5));
	}
	PQclear(res);
	return true;
}

bool
state_process_note_throttle(const State *s, const char *json, Error *err)
{
	const char *params[2] = {s->task, json};

	return state_run(s,
	                 "UPDATE @S.processes SET throttle = $2 WHERE task = $1"
	                 " AND backend_pid = pg_catalog.pg_backend_pid()",
	                 2, params, NULL, err);
}

bool
state_process_record(const State *s, const char *host, int pid,
                     const char *command, const char *since, Error *err)
{
	char pidtext[16];
	const char *params[5] = {s->task, host, pidtext, command, since};

	snprintf(pidtext, sizeof(pidtext), "%d", pid);
	return state_run(s,
	                 "INSERT INTO @S.processes AS p (task, host, pid, command,"
	                 " started_at, backend_pid) VALUES ($1, $2, $3::int, $4,"
	                 " $5::timestamptz, pg_catalog.pg_backend_pid())"
	                 " ON CONFLICT (task) DO UPDATE SET host = $2,"
	                 " pid = $3::int, command = $4,"
	                 " started_at = $5::timestamptz,"
	                 " backend_pid = pg_catalog.pg_backend_pid()",
	                 5, params, NULL, err);
}

bool
state_process_forget(const State *s, Error *err)
{
	const char *params[1] = {s->task};

	return state_run(s,
	                 "DELETE FROM @S.processes WHERE task = $1"
	                 " AND backend_pid = pg_catalog.pg_backend_pid()",
	                 1, params, NULL, err);
}
