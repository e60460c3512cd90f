/*
 * lock: the task's lock held by a running command, on a target session of
 * its own, and the "lock" thread that keeps that session while the command
 * runs. The lock itself and the record naming its holder are the state's
 * (state/process.c), as is the load's throttle state the keeper copies into
 * that record for status. This module never writes anything but that record,
 * and never stops the command except through the stop flag.
 */
#include "cmd/lock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "load/throttle.h"
#include "pg/pg.h"
#include "state/state.h"

/* how often the lock's session is checked (a lost one is noticed then) */
#define LOCK_CHECK_MS 1000
/* tries of a lock session lost between its connection and its answer */
#define LOCK_TRIES 10

struct TaskLock
{
	const TaskConfig *cfg;
	const char *command;
	atomic_int *stop;
	PgConn *conn; /* the lock's session: the main thread's until the
	                 keeper starts, then the keeper's until it is joined */
	State state;  /* on conn */
	char host[256];
	char since[64]; /* when the lock was first taken */
	char app_name[64];
	bool keeper_started;
	pthread_t keeper;
	pthread_mutex_t mu; /* guards quit */
	pthread_cond_t wake;
	bool quit;
	/* the target's backend of the session that took the lock: after that
	   session is lost, the lock stays with it until the server notices */
	int backend_pid;
	atomic_bool lost; /* another process took the lock; lost_err says who */
	Error lost_err;
	char throttle[THROTTLE_JSON_MAX]; /* as last recorded, "" for none */
};

/* One line naming the process that holds the task's lock. */
static void
describe_holder(const TaskConfig *cfg, const StateProcess *p, Error *err)
{
	if (p->known)
		err_set(err, ERR_BUSY,
		        "task \"%s\" is running: pgtide %s, pid %d on host \"%s\", "
		        "since %s",
		        cfg->task, p->command, p->pid, p->host, p->since);
	else if (p->running)
		err_set(err, ERR_BUSY,
		        "task \"%s\" is running: the target's session %d holds its "
		        "lock (application \"%s\"%s%s)",
		        cfg->task, p->backend_pid, p->session,
		        p->since[0] ? ", since " : "", p->since);
	else
		/* it ended between the try and the look */
		err_set(err, ERR_BUSY,
		        "task \"%s\" was running in another process, which has just "
		        "ended; run the command again",
		        cfg->task);
}

/*
 * The busy error for the process that holds the lock: reads who it is, on
 * the lock's session, without creating anything.
 */
static bool
busy(TaskLock *l, Error *err)
{
	StateProcess p;
	State attached;
	bool exists = false;

	if (!state_attach(&attached, l->conn, l->cfg->state_schema, l->cfg->task,
	                  &exists, err) ||
	    !state_process_read(&attached, exists, &p, err))
		return false;
	describe_holder(l->cfg, &p, err);
	if (strcmp(l->command, "clean") == 0)
		return err_hint(err, "stop it first (SIGINT or SIGTERM), or pass "
		                     "--force to end its replication session");
	return err_hint(err, "one process runs a task at a time: wait for it to "
	                     "end, or stop it (SIGINT or SIGTERM); pgtide status "
	                     "shows it");
}

/* One try of try_lock. */
static bool
try_lock_once(TaskLock *l, int retry_ms, bool *taken, bool *connected,
              Error *err)
{
	char since[64];
	bool exists;

	*taken = *connected = false;
	if (!pg_connect(l->cfg->target_uri, ERR_TARGET, PG_CONN_SQL, l->app_name,
	                retry_ms, &l->conn, err))
		return false;
	*connected = true;
	/* a handle only: whether the schema exists matters when busy */
	if (!state_attach(&l->state, l->conn, l->cfg->state_schema, l->cfg->task,
	                  &exists, err) ||
	    !state_lock_try(&l->state, taken, since, sizeof(since), err))
		return false;
	if (*taken && l->since[0] == '\0')
		snprintf(l->since, sizeof(l->since), "%s", since);
	if (*taken)
		l->backend_pid = pg_backend_pid(l->conn);
	return true;
}

/*
 * Connects the lock's session and tries the lock: *taken. A connection
 * lost once made is tried again (a few times): a target that cannot be
 * reached at all fails at once, as it does for every command.
 */
static bool
try_lock(TaskLock *l, int retry_ms, bool *taken, Error *err)
{
	for (int attempt = 1;; attempt++)
	{
		bool connected;

		if (try_lock_once(l, retry_ms, taken, &connected, err))
			return true;
		if (!connected || !err->retryable || attempt >= LOCK_TRIES)
			return false;
		pg_close(l->conn);
		l->conn = NULL;
		err_clear(err);
		clock_sleep_ms(200);
	}
}

static bool
record(TaskLock *l, Error *err)
{
	return state_process_record(&l->state, l->host, (int) getpid(), l->command,
	                            l->since, err);
}

/*
 * After the lock's session was lost: a new session and the lock taken
 * again (the caller writes the record again). ERR_BUSY when another
 * process has it now; ERR_TARGET, for the next look, while the lost
 * session's backend still has it or let it go only just now.
 */
static bool
relock(TaskLock *l, int retry_ms, Error *err)
{
	bool taken = false;

	pg_close(l->conn);
	l->conn = NULL;
	if (!try_lock(l, retry_ms, &taken, err))
		return false;
	if (!taken)
	{
		StateProcess p;
		State attached;
		bool exists = false;

		/* the lost session's backend may not have noticed yet (or ever,
		   on a connection cut half-way): the lock is still this process's;
		   that backend is ended, and the next look takes the lock */
		if (!state_attach(&attached, l->conn, l->cfg->state_schema,
		                  l->cfg->task, &exists, err) ||
		    !state_process_read(&attached, exists, &p, err))
			return false;
		if (p.running && p.backend_pid == l->backend_pid)
		{
			char pid[16];
			const char *params[1] = {pid};
			PGresult *res;

			snprintf(pid, sizeof(pid), "%d", p.backend_pid);
			if (pg_query(l->conn, "SELECT pg_terminate_backend($1::int)", 1,
			             params, &res, err))
				PQclear(res);
			return err_set(err, ERR_TARGET,
			               "the lost session (backend %d) still held the "
			               "task's lock",
			               p.backend_pid);
		}
		/* nobody holds it now: the lost session's backend ended between
		   the try and this look; the next look takes it */
		if (!p.running)
			return err_set(err, ERR_TARGET,
			               "the task's lock was let go while being taken "
			               "again");
		busy(l, err);
		err_prefix(err, "lost the task's lock while its session on the "
		                "target was down: ");
		return err_hint(err, "this process stopped so as not to write "
		                     "beside the other one");
	}
	return true;
}

/* One look at the lock's session, from the keeper. */
static void
keep(TaskLock *l)
{
	Error err = ERR_INIT;

	if (l->conn != NULL && pg_exec(l->conn, "SELECT 1", &err))
		return;
	/* libpq's message goes on with a second line of guesses: one is enough */
	if (l->conn != NULL)
		log_warn("target: the session holding the task's lock was lost "
		         "(%.*s); taking the lock again",
		         (int) strcspn(err.message, "\n"), err.message);
	err_clear(&err);
	/* no wait here: the next look tries again */
	if (relock(l, 0, &err))
	{
		log_info("the task's lock is held again");
		/* the lock is what counts; a record that cannot be written (clean
		   --force dropped the state) only leaves the process unnamed */
		if (!record(l, &err))
			log_warn("could not record this process in the task's state: %s",
			         err.message);
		return;
	}
	if (err.kind != ERR_BUSY)
	{
		/* the target may still be down: try again at the next look */
		log_debug("could not take the task's lock again: %s", err.message);
		pg_close(l->conn);
		l->conn = NULL;
		return;
	}
	log_error("%s; stopping", err.message);
	l->lost_err = err;
	atomic_store(&l->lost, true);
	atomic_store(l->stop, 1);
}

/*
 * Records what the load's throttle does for a status run by another
 * process, when it changed; at most once a check. A failure only waits
 * for the next check: status is never worth failing the task for.
 */
static void
note_throttle(TaskLock *l)
{
	ThrottleState st;
	char json[THROTTLE_JSON_MAX] = "";
	Error err = ERR_INIT;
	State on_lock;

	/* no session while the target is down: l->state would name the one
	   just closed */
	if (l->conn == NULL)
		return;
	on_lock = state_on(&l->state, l->conn);
	if (throttle_read(&st) && !throttle_format_json(&st, json, sizeof(json)))
		json[0] = '\0';
	if (strcmp(json, l->throttle) == 0)
		return;
	if (!state_process_note_throttle(&on_lock, json[0] ? json : NULL, &err))
	{
		log_debug("could not record the throttle's state: %s", err.message);
		return;
	}
	snprintf(l->throttle, sizeof(l->throttle), "%s", json);
}

static void *
keeper_main(void *arg)
{
	TaskLock *l = arg;

	log_set_role("lock");
	pthread_mutex_lock(&l->mu);
	while (!l->quit && !atomic_load(&l->lost))
	{
		struct timespec until = clock_deadline(LOCK_CHECK_MS);

		while (!l->quit &&
		       pthread_cond_timedwait(&l->wake, &l->mu, &until) == 0)
			;
		if (l->quit)
			break;
		pthread_mutex_unlock(&l->mu);
		keep(l);
		if (!atomic_load(&l->lost))
			note_throttle(l);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

bool
task_lock_take(const TaskConfig *cfg, const char *command, atomic_int *stop,
               TaskLock **out, Error *err)
{
	TaskLock *l = calloc(1, sizeof(*l));
	bool taken = false;

	*out = NULL;
	if (l == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	l->cfg = cfg;
	l->command = command;
	l->stop = stop;
	if (gethostname(l->host, sizeof(l->host) - 1) != 0)
		snprintf(l->host, sizeof(l->host), "unknown");
	/* what pg_stat_activity shows, and what a second process names when
	   this one has not recorded itself yet (63 bytes at most) */
	snprintf(l->app_name, sizeof(l->app_name), "pgtide %.8s, pid %d on %.32s",
	         command, (int) getpid(), l->host);
	/* busy() fills err and returns false */
	if (!try_lock(l, 5000, &taken, err) || (!taken && !busy(l, err)))
	{
		pg_close(l->conn);
		free(l);
		return false;
	}
	pthread_mutex_init(&l->mu, NULL);
	clock_cond_init(&l->wake);
	*out = l;
	return true;
}

bool
task_lock_hold(TaskLock *l, Error *err)
{
	State opened;

	fault_point("task.checked");
	/* the session may have been lost since the lock was taken (migrate's
	   check runs in between): take it again, or find who has it */
	for (int attempt = 1;; attempt++)
	{
		bool done = attempt == 1 || relock(l, PG_RECONNECT_MS, err);

		if (done &&
		    state_open(&opened, l->conn, l->cfg->state_schema, l->cfg->task,
		               err) &&
		    record(l, err))
			break;
		if (!err->retryable || attempt >= LOCK_TRIES)
			return false;
		err_clear(err);
	}
	if (pthread_create(&l->keeper, NULL, keeper_main, l) != 0)
		return err_set(err, ERR_INTERNAL,
		               "could not start the thread keeping the task's lock");
	l->keeper_started = true;
	return true;
}

bool
task_lock_release(TaskLock *l, bool ok, Error *err)
{
	Error ignored = ERR_INIT;

	if (l == NULL)
		return ok;
	if (l->keeper_started)
	{
		pthread_mutex_lock(&l->mu);
		l->quit = true;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->keeper, NULL);
	}
	if (atomic_load(&l->lost))
	{
		/* the other process's now: its record and lock are left alone */
		err_clear(err);
		*err = l->lost_err;
		ok = false;
	}
	else if (l->conn != NULL && pg_ok(l->conn))
	{
		/* best effort: ending the session gives the lock back anyway, and a
		   record left behind names no running process */
		if (l->keeper_started)
			state_process_forget(&l->state, &ignored);
		state_lock_release(&l->state, &ignored);
	}
	pg_close(l->conn);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	free(l);
	return ok;
}
