/*
 * fanout: pgtide migrate and follow with several targets
 * (docs/sharding.md). One process per target, each this same program run
 * again with the same arguments and SHARD_TARGET_ENV naming its target:
 * each is a whole single-target migrate (or follow) of that target's share
 * (its own lock, state, slot, publication, origin, load and stream), so
 * every guarantee of one target holds for each. This process only starts them, passes signals on, and
 * stops them all when one fails. It never connects to a server, and never
 * puts anything on a child's command line that its own did not hold.
 */
#include "cmd/task.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/notify.h"
#include "cmd/cli.h"
#include "load/shards.h"

extern char **environ;

typedef struct Child
{
	const char *name; /* the target's; a view into the spec */
	pid_t pid;        /* 0 once it exited */
	int code;         /* its exit code, once it exited */
} Child;

/* environ without NOTIFY_SOCKET (the service manager hears this process
   alone), plus SHARD_TARGET_ENV=name; NULL out of memory */
static char **
child_env(const char *name)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 2, sizeof(char *));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
		    strncmp(environ[i], SHARD_TARGET_ENV "=",
		            strlen(SHARD_TARGET_ENV) + 1) != 0)
			env[k++] = environ[i];
	if (asprintf(&env[k], "%s=%s", SHARD_TARGET_ENV, name) < 0)
	{
		free(env);
		return NULL;
	}
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
	char **env = child_env(c->name);
	pid_t parent = getpid();
	pid_t pid;

	if (env == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	pid = fork();
	if (pid == 0)
	{
		/* only async-signal-safe calls until execve: other threads may
		   hold locks this copy of them will never release */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent ||
		    setpgid(0, 0) != 0)
			_exit(CLI_EXIT_INTERNAL);
		execve("/proc/self/exe", argv, env);
		_exit(CLI_EXIT_INTERNAL);
	}
	for (size_t i = 0; env[i] != NULL; i++)
		if (strncmp(env[i], SHARD_TARGET_ENV "=",
		            strlen(SHARD_TARGET_ENV) + 1) == 0)
			free(env[i]);
	free(env);
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

bool
task_fan_out(const TaskConfig *cfg, const ShardSpec *spec, char **argv,
             atomic_int *stop, Error *err)
{
	int n = shard_spec_ntargets(spec);
	Child *children = calloc((size_t) n, sizeof(Child));
	int failed = -1, running;
	bool stopping = false, ok = true;

	if (children == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!task_shard_names_fit(cfg, spec, err))
	{
		free(children);
		return false;
	}
	for (int i = 0; i < n && ok; i++)
	{
		children[i].name = shard_spec_target_name(spec, i);
		ok = start_child(&children[i], argv, err);
	}
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
