/*
 * cli: subcommands, options, --help and --version, and the mapping from an
 * error's kind to the documented exit code. The one place that prints an
 * error for a person.
 */
#ifndef PGTIDE_CLI_H
#define PGTIDE_CLI_H

#include <stdatomic.h>

#define PGTIDE_VERSION "0.1.0"

/* Exit codes (docs/cli.md). */
#define CLI_EXIT_OK          0
#define CLI_EXIT_INTERNAL    1
#define CLI_EXIT_USAGE       2
#define CLI_EXIT_SOURCE      3
#define CLI_EXIT_TARGET      4
#define CLI_EXIT_INTERRUPTED 5
#define CLI_EXIT_BLOCKED     6
#define CLI_EXIT_DIFFERENT   7
#define CLI_EXIT_BUSY        8
#define CLI_EXIT_GUARD       9

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"

/*
 * Whether the option named ("--jobs", "-j"; without "=value") takes a
 * value in the next word, as the command line's parser reads it.
 */
bool cli_option_takes_value(const char *name);

/*
 * Runs the command in argv; returns the process exit code. *reload is set
 * by SIGHUP: cli_reload_pending() reads it.
 */
int cli_main(int argc, char **argv, atomic_int *stop, atomic_int *reload);

/* Whether SIGHUP came since the last call; clears it. */
bool cli_reload_pending(void);

/*
 * Reads the running command's options again into cfg (config_init'ed by
 * the caller): the task file as it is now, then the command line over it,
 * as the command started. Fails with the file's error; logs nothing. Only
 * one thread may call it, and not while the command's options are parsed.
 */
bool cli_reread(TaskConfig *cfg, Error *err);

/*
 * With several targets: the target the running command works on now (a
 * view the caller keeps alive; NULL when done). cli_reread gives it as the
 * reread cfg's target, so that a SIGHUP compares the file with what runs
 * (one target of several) and finds no change but the file's own.
 */
void cli_running_target(const char *uri);

/* How many times cli_reread succeeded since the command started. */
int cli_rereads(void);

#endif
