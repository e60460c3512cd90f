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

/*
 * Whether the option named ("--jobs", "-j"; without "=value") takes a
 * value in the next word, as the command line's parser reads it.
 */
bool cli_option_takes_value(const char *name);

/* Runs the command in argv; returns the process exit code. */
int cli_main(int argc, char **argv, atomic_int *stop);

#endif
