/*
 * task: the commands of one migration task beyond the load (which is
 * load/load.h's load_run), the front door of src/cmd/ for cli. Each is
 * resumable: run it again after any interruption.
 *
 *   follow.c  the change stream after the load (migrate = check + load +
 *             follow), and copy's entry
 *   lock.c    one process per task: the task's lock, held while copy,
 *             migrate or follow runs, and the thread that keeps it
 *   status.c  where the task is, and the last error recorded for it
 *   clean.c   what the task made, dropped on both sides
 *   slots.c   the last line of a run that leaves the task's slot behind
 *   fanout.c  migrate with several targets: one process per target
 *
 * The commands start and stop the worker threads and turn a stop request
 * into a clean return; none of them exits.
 */
#ifndef PGTIDE_TASK_H
#define PGTIDE_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/config.h"
#include "base/err.h"
#include "pg/pg.h"
#include "route/shard.h"

/*
 * copy, migrate and follow each hold the task's lock while they run: a
 * second one of the same task fails at once with ERR_BUSY, naming the
 * process that runs it, before anything is checked, created or changed.
 */

/* The full load (load/load.h's load_run) under the task's lock. */
bool task_copy(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * The full load of every one of spec's targets at once, under every
 * target's lock, each with its own state (docs/sharding.md): each chunk is
 * read once and its rows sent to their targets (load_run_split). Running
 * it again resumes each target: a loaded one has nothing to do.
 */
bool task_copy_shards(const TaskConfig *cfg, const ShardSpec *spec,
                      atomic_int *stop, Error *err);

/*
 * migrate and follow with several targets. migrate first loads them all:
 * every target's check (a blocker stops it before anything is created),
 * then under every target's lock one load that creates each target's slot
 * and fills them all, each chunk read once. Then a process per target
 * (task_fan_out) finds its load done and streams. This process serves
 * --http for every target meanwhile.
 */
bool task_shards(const TaskConfig *cfg, const ShardSpec *spec, bool load,
                 char **argv, atomic_int *stop, Error *err);

/*
 * Follows the task's slot and applies its changes to the target until *stop
 * is set (ERR_INTERRUPTED, position saved) or a failure no retry cures. Uses
 * the task's state (tables and their load points) when there is one, else
 * the slot and start position the configuration names.
 */
bool task_follow(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * The whole migration up to cutover: runs check (a blocker stops it before
 * anything is created), loads (or resumes the load), then follows.
 */
bool task_migrate(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * *one: cfg as the task of spec's target i alone, with its connection
 * string, its name for the names on the source (config_source_name) and
 * row filters of its own (for shards_route_as_filters); everything else
 * shared with cfg. task_target_config_free frees what is its own.
 */
bool task_target_config(const TaskConfig *cfg, const ShardSpec *spec, int i,
                        TaskConfig *one, Error *err);
void task_target_config_free(TaskConfig *one);

/*
 * Every target's task_target_config, spec's order, routed: with each
 * one's routing as its row filters (shards_route_as_filters), as its
 * process sees its share. NULL on a failure, naming the target.
 */
TaskConfig *task_target_configs(const TaskConfig *cfg, const ShardSpec *spec,
                                bool routed, int *made, Error *err);
void task_target_configs_free(TaskConfig *ones, int made);

/*
 * The environment variable that makes a pgtide process the one working on
 * the target it names, of a task with several targets (fanout.c sets it).
 */
#define SHARD_TARGET_ENV "PGTIDE_SHARD_TARGET"

/*
 * migrate or follow with several targets: runs this program again (argv)
 * once per target of spec, each running the command on that target's
 * share, until *stop is set or one of them stops (ERR_* of its exit code;
 * the others are stopped then). fanout.c.
 */
bool task_fan_out(const TaskConfig *cfg, const ShardSpec *spec, char **argv,
                  atomic_int *stop, Error *err);

/*
 * Under shard.slot one: the reader of the task's one slot, on a thread of
 * its own, feeding each target's process over fds[k] (feeder.c). It runs
 * until *stop is set or no target is left.
 */
typedef struct Feeder Feeder;
bool feeder_start(const char *source_uri, const char *slot, const int *fds,
                  int n, atomic_int *stop, Feeder **out, Error *err);

/* Whether the reader ended with an error it cannot retry (then in *err). */
bool feeder_failed(Feeder *f, Error *err);

/* Waits for the reader to end (stop it first); its error, if any. */
bool feeder_stop(Feeder *f, Error *err);

/* Whether each target's names on the source (pgtide_TASK_TARGET...) fit:
 * fails (ERR_CONFIG) naming the task and the target that do not. */
bool task_shard_names_fit(const TaskConfig *cfg, const ShardSpec *spec,
                          Error *err);

/*
 * Prints the task's state (the process running it, phase, tables, post-data steps, change-stream lag
 * and rates, the slot's retained WAL when the source is given, the last
 * error), as text or JSON (cfg->output_json). Changes nothing.
 */
bool task_status(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * Writes the JSON document pgtide status --json prints, read on tgt (and
 * src, which may be NULL), to out: the one writer for the command and for
 * --http's /status, which serves the process running the task: a task
 * whose state that process has not created yet is written as phase "new".
 * Fails as status does otherwise (the target).
 */
bool task_status_json(const TaskConfig *cfg, PgConn *tgt, PgConn *src,
                      FILE *out, Error *err);

/*
 * Drops the task's slot and publication on the source, its replication
 * origin and state on the target (the state schema with the last task).
 * Refuses (ERR_BUSY) while a process runs the task unless cfg->force.
 * Safe to run twice.
 */
bool task_clean(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * After copy, migrate or follow (argv: the command's own arguments, argv[0]
 * its name): when the task's slot is on the source, prints on stderr one
 * line that names it, the WAL it holds, and the command that resumes the
 * task (failed or interrupted) or streams it (a copy of a task migrate
 * started) and the one that drops it, passwords taken out; a slot the task
 * cannot resume from (lost: a guard stopped it, or the source invalidated
 * it) is named with the drop alone. Best effort: nothing is printed for
 * copy when the source cannot be reached.
 */
void task_slot_notice(const TaskConfig *cfg, const char *command, bool failed,
                      bool interrupted, bool lost, int argc, char *const *argv);

/*
 * Records a failure in the task's state so that pgtide status shows it.
 * Best effort: does nothing when the target cannot be reached.
 */
void task_note_error(const TaskConfig *cfg, const Error *failure);

#endif
