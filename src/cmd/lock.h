/*
 * lock: one process per task. copy, migrate and follow take the task's
 * lock on the target before they check, create or change anything, and
 * hold it until they end; clean takes it for its drops. A second process
 * of the same task is refused at once (ERR_BUSY), naming the one that
 * runs. Shared by the commands of src/cmd/ only.
 */
#ifndef PGTIDE_CMD_LOCK_H
#define PGTIDE_CMD_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"

typedef struct TaskLock TaskLock;

/*
 * Takes the task's lock for command ("copy", "migrate", "follow", "clean")
 * on a target session of its own; creates nothing. Fails with ERR_BUSY,
 * naming the process that holds it (host, pid, command, since), when
 * another one does. stop is the process's stop flag, set if the lock is
 * lost later. On success *out is freed by task_lock_release.
 */
bool task_lock_take(const TaskConfig *cfg, const char *command,
                    atomic_int *stop, TaskLock **out, Error *err);

/*
 * Records this process in the task's state (creating the state schema when
 * missing) and starts the thread that keeps the lock's session: when that
 * session is lost it reconnects and takes the lock again; when another
 * process took it meanwhile it sets the stop flag, and task_lock_release
 * reports it.
 */
bool task_lock_hold(TaskLock *lock, Error *err);

/*
 * Stops the keeping thread, forgets the record and gives the lock back;
 * frees lock (NULL is a no-op). ok and err are the command's result:
 * returns ok, unless the lock was lost while the command ran: then err
 * says so (ERR_BUSY) and false is returned, whatever the command did.
 */
bool task_lock_release(TaskLock *lock, bool ok, Error *err);

#endif
