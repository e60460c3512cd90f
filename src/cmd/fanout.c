/*
 * fanout: pgtide migrate and follow with several targets
 * (docs/sharding.md). One process per target, each this same program run
 * again with the same arguments and SHARD_TARGET_ENV naming its target:
 * each is a whole single-target migrate (or follow) of that target's share
 * (its own lock, state, publication, origin, load and stream), so every
 * guarantee of one target holds for each. Under shard.slot one each reads
 * its stream from this process (FEED_FD_ENV: its end of a socket pair),
 * where the feeder reads the task's one slot (decision 0043); under
 * per_target each reads a slot of its own. This process starts them,
 * passes signals on, and stops them all when one fails, or when the
 * feeder fails for good. It never puts anything on a child's command line
 * that its own did not hold.
 */
#include "cmd/task.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/notify.h"
#include "cmd/cli.h"
#include "load/shards.h"
#include "pg/feed.h"

extern char **environ;

typedef struct Child
{
	const char *name; /* the target's; a view into the spec */
	pid_t pid;        /* 0 once it exited */
	int code;         /* its exit code, once it exited */
	int feed[2];      /* shard.slot one: [0] the feeder's end, [1] its own */
} Child;

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* environ without NOTIFY_SOCKET (the service manager hears this process
   alone) or this process's own target and feed, plus target and feed
   (may be NULL), which stay the caller's; NULL out of memory */
static char **
child_env(char *target, char *feed)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 3, sizeof(char *));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!starts_with(environ[i], "NOTIFY_SOCKET=") &&
		    !starts_with(environ[i], SHARD_TARGET_ENV "=") &&
		    !starts_with(environ[i], FEED_FD_ENV "="))
			env[k++] = environ[i];
	env[k++] = target;
	env[k] = feed;
	return env;
}

/*
 * Starts one child. In a group of its own, so that a terminal's Ctrl-C
 * reaches this process alone and each child hears one stop request, not
 * two (a second one ends a pgtide at once); told to stop as this process
 * would be if this process dies.
 */
static bool
start_child(Child *c, char **argv, Error *err)
{
	char *target = NULL, *feed = NULL, **env = NULL;
	pid_t parent = getpid();
	pid_t pid;

	/* asprintf leaves its pointer undefined when it fails */
	if (asprintf(&target, "%s=%s", SHARD_TARGET_ENV, c->name) < 0)
		target = NULL;
	if (c->feed[1] >= 0 &&
	    asprintf(&feed, "%s=%d", FEED_FD_ENV, c->feed[1]) < 0)
		feed = NULL;
	if (target == NULL || (c->feed[1] >= 0 && feed == NULL) ||
	    (env = child_env(target, feed)) == NULL)
	{
		free(target);
		free(feed);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	pid = fork();
	if (pid == 0)
	{
		/* only async-signal-safe calls until execve: other threads may
		   hold locks this copy of them will never release */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent ||
		    setpgid(0, 0) != 0 ||
		    (c->feed[1] >= 0 && fcntl(c->feed[1], F_SETFD, 0) != 0))
			_exit(CLI_EXIT_INTERNAL);
		execve("/proc/self/exe", argv, env);
		_exit(CLI_EXIT_INTERNAL);
	}
	free(env);
	free(target);
	free(feed);
	if (pid < 0)
		return err_set(err, ERR_INTERNAL,
		               "could not start the process of target %s: %s", c->name,
		               strerror(errno));
	c->pid = pid;
	log_info("target %s: process %d started", c->name, (int) pid);
	return true;
}

static void
signal_all(Child *children, int n, int signo)
{
	for (int i = 0; i < n; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, signo);
}

/* The error kind a child's exit code stands for (cli's table, reversed). */
static ErrKind
kind_of_exit(int code)
{
	switch (code)
	{
		case CLI_EXIT_USAGE:
			return ERR_CONFIG;
		case CLI_EXIT_SOURCE:
			return ERR_SOURCE;
		case CLI_EXIT_TARGET:
			return ERR_TARGET;
		case CLI_EXIT_INTERRUPTED:
			return ERR_INTERRUPTED;
		case CLI_EXIT_BLOCKED:
			return ERR_BLOCKED;
		case CLI_EXIT_BUSY:
			return ERR_BUSY;
		case CLI_EXIT_GUARD:
			return ERR_GUARD;
		default:
			return ERR_INTERNAL;
	}
}

/* Reaps the children that exited; the index of one that failed, or -1. */
static int
reap(Child *children, int n)
{
	int failed = -1;

	for (int i = 0; i < n; i++)
	{
		Child *c = &children[i];
		int status;

		if (c->pid <= 0 || waitpid(c->pid, &status, WNOHANG) != c->pid)
			continue;
		c->pid = 0;
		c->code = WIFEXITED(status) ? WEXITSTATUS(status) : CLI_EXIT_INTERNAL;
		if (WIFSIGNALED(status))
			log_error("target %s: its process was killed by signal %d", c->name,
			          WTERMSIG(status));
		else
			log_info("target %s: its process exited with code %d", c->name,
			         c->code);
		if (c->code != CLI_EXIT_OK && failed < 0)
			failed = i;
	}
	return failed;
}

bool
task_target_config(const TaskConfig *cfg, const ShardSpec *spec, int i,
                   TaskConfig *one, Error *err)
{
	*one = *cfg;
	/* its own: shards_route_as_filters adds the target's routing */
	memset(&one->filters, 0, sizeof(one->filters));
	memset(&one->shard_routes, 0, sizeof(one->shard_routes));
	memset(&one->shard_own_filters, 0, sizeof(one->shard_own_filters));
	one->target_uri = strdup(shard_spec_target_uri(spec, i));
	one->shard_target = strdup(shard_spec_target_name(spec, i));
	if (one->target_uri == NULL || one->shard_target == NULL)
	{
		task_target_config_free(one);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	if (config_strmap_copy(&one->filters, &cfg->filters, err) &&
	    config_strmap_copy(&one->shard_routes, &cfg->shard_routes, err) &&
	    config_strmap_copy(&one->shard_own_filters, &cfg->shard_own_filters,
	                       err))
		return true;
	task_target_config_free(one);
	return false;
}

void
task_target_config_free(TaskConfig *one)
{
	free(one->target_uri);
	free(one->shard_target);
	one->target_uri = one->shard_target = NULL;
	config_strmap_free(&one->filters);
	config_strmap_free(&one->shard_routes);
	config_strmap_free(&one->shard_own_filters);
}

TaskConfig *
task_target_configs(const TaskConfig *cfg, const ShardSpec *spec, bool routed,
                    int *made, Error *err)
{
	int n = shard_spec_ntargets(spec);
	TaskConfig *ones = calloc((size_t) n, sizeof(TaskConfig));

	*made = 0;
	if (ones == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		return NULL;
	}
	for (; *made < n; (*made)++)
	{
		if (!task_target_config(cfg, spec, *made, &ones[*made], err))
			break;
		if (routed && !shards_route_as_filters(&ones[*made], spec, *made, err))
		{
			err_prefix(err, "target %s: ", shard_spec_target_name(spec, *made));
			task_target_config_free(&ones[*made]);
			break;
		}
	}
	if (*made == n)
		return ones;
	task_target_configs_free(ones, *made);
	*made = 0;
	return NULL;
}

void
task_target_configs_free(TaskConfig *ones, int made)
{
	for (int k = 0; ones != NULL && k < made; k++)
		task_target_config_free(&ones[k]);
	free(ones);
}

bool
task_shard_names_fit(const TaskConfig *cfg, const ShardSpec *spec, Error *err)
{
	for (int i = 0; i < shard_spec_ntargets(spec); i++)
	{
		const char *name = shard_spec_target_name(spec, i);

		/* pgtide_TASK_TARGET_inserts must fit a name on the source */
		if (strlen("pgtide__") + strlen(cfg->task) + strlen(name) +
		        strlen("_inserts") >=
		    CONFIG_SOURCE_NAME_MAX)
		{
			err_set(err, ERR_CONFIG,
			        "task \"%s\" and target \"%s\" make names too long for "
			        "the source's slot and publications",
			        cfg->task, name);
			return err_hint(err, "the task's name and each target's may "
			                     "hold 46 characters together");
		}
	}
	return true;
}

/*
 * shard.slot one: a socket pair per target, and the reader of the task's
 * one slot feeding them, once every target's process holds its end.
 */
static bool
open_feeds(Child *children, int n, Error *err)
{
	for (int i = 0; i < n; i++)
	{
		int bytes = 4 << 20; /* a target busy for a moment does not stall
		                        the others at once */

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		               children[i].feed) != 0)
			return err_set(err, ERR_INTERNAL,
			               "could not make the feed of target %s: %s",
			               children[i].name, strerror(errno));
		(void) setsockopt(children[i].feed[0], SOL_SOCKET, SO_SNDBUF, &bytes,
		                  sizeof(bytes));
	}
	return true;
}

static bool
start_feeder(const TaskConfig *cfg, const ShardSpec *spec, Child *children,
             int n, atomic_int *stop, Feeder **feeder, Error *err)
{
	int fds[SHARD_TARGETS_MAX];
	char slot[CONFIG_SOURCE_NAME_MAX];
	TaskConfig one;

	if (n > SHARD_TARGETS_MAX)
		return err_set(err, ERR_CONFIG, "more than %d targets",
		               SHARD_TARGETS_MAX);
	for (int i = 0; i < n; i++)
	{
		/* the process holds its end now: only its exit closes it */
		close(children[i].feed[1]);
		children[i].feed[1] = -1;
		fds[i] = children[i].feed[0];
	}
	if (!task_target_config(cfg, spec, 0, &one, err))
		return false;
	config_slot_name(&one, slot, sizeof(slot));
	task_target_config_free(&one);
	return feeder_start(cfg->source_uri, slot, fds, n, stop, feeder, err);
}

static void
close_feeds(Child *children, int n)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 2; k++)
			if (children[i].feed[k] >= 0)
				close(children[i].feed[k]);
}

bool
task_fan_out(const TaskConfig *cfg, const ShardSpec *spec, char **argv,
             atomic_int *stop, Error *err)
{
	int n = shard_spec_ntargets(spec);
	Child *children = calloc((size_t) n, sizeof(Child));
	Feeder *feeder = NULL;
	Error ferr = ERR_INIT;
	int failed = -1, running;
	bool fed = cfg->shard_slot == SHARD_SLOT_ONE;
	bool stopping = false, ok = true;

	if (children == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++)
	{
		children[i].name = shard_spec_target_name(spec, i);
		children[i].feed[0] = children[i].feed[1] = -1;
	}
	if (!task_shard_names_fit(cfg, spec, err) ||
	    (fed && !open_feeds(children, n, err)))
	{
		close_feeds(children, n);
		free(children);
		return false;
	}
	for (int i = 0; i < n && ok; i++)
		ok = start_child(&children[i], argv, err);
	ok = ok &&
	     (!fed || start_feeder(cfg, spec, children, n, stop, &feeder, err));
	if (ok)
		notify_ready();
	stopping = !ok;
	if (!ok)
		signal_all(children, n, SIGTERM);
	do
	{
		int f = reap(children, n);

		if (f >= 0 && failed < 0)
			failed = f;
		if (!stopping && feeder_failed(feeder, &ferr))
		{
			log_error("the reader of the task's slot stopped: %s",
			          ferr.message);
			stopping = true;
			signal_all(children, n, SIGTERM);
		}
		if (!stopping && (failed >= 0 || atomic_load(stop)))
		{
			/* one target that stopped stops the task: the others would
			   go on beside a target nobody follows */
			stopping = true;
			signal_all(children, n, SIGTERM);
		}
		if (cli_reload_pending())
			signal_all(children, n, SIGHUP);
		running = 0;
		for (int i = 0; i < n; i++)
			running += children[i].pid > 0;
		if (running > 0)
			clock_sleep_ms(100);
	} while (running > 0);
	/* every target's end is closed: the reader ends */
	if (!feeder_stop(feeder, &ferr) && ok)
	{
		*err = ferr;
		ok = false;
	}
	close_feeds(children, n);
	if (ok && failed >= 0 && children[failed].code != CLI_EXIT_INTERRUPTED)
	{
		err_set(err, kind_of_exit(children[failed].code),
		        "target %s stopped with exit code %d (its error is above); "
		        "the other targets were stopped",
		        children[failed].name, children[failed].code);
		err_hint(err, "fix the cause and run the same command again: each "
		              "target resumes where it stopped");
		ok = false;
	}
	else if (ok && failed >= 0)
		ok = err_set(err, ERR_INTERRUPTED, "interrupted");
	free(children);
	return ok;
}
