/*
 * check: what would not migrate, and why, found before anything changes.
 *
 * Reads the source and the target (catalogs, settings, privileges, the
 * source's WAL rate) and produces findings, each with a stable id, a
 * severity (blocker, warning, info), the object it is about, why it matters
 * and how to fix it. It never writes to either server: both sessions run
 * read-only. See docs/check.md for every finding.
 *
 * When the target holds the task's state, the findings are those of a
 * resumed run: the task's own slot, publication and loaded tables are not
 * held against it.
 */
#ifndef PGTIDE_CHECK_H
#define PGTIDE_CHECK_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"

/*
 * pgtide check: prints the findings on stdout (text, or JSON with
 * cfg->output_json), then a summary. Fails with ERR_BLOCKED and a one-line
 * message naming the blocking ids when a blocker remains that is not named
 * in cfg->check_skip or cannot be skipped; with ERR_CONFIG when check_skip
 * names an unknown id; with ERR_INTERRUPTED when *stop is set (stop may be
 * NULL); with the server's error when a query fails.
 */
bool check_command(const TaskConfig *cfg, atomic_int *stop, Error *err);

/*
 * The same checks before pgtide migrate creates anything: each blocker is
 * logged at error level, each warning at warning level, each info at info
 * level (nothing on stdout). Fails as check_command does, so that migrate
 * stops before its first change.
 */
bool check_before_migrate(const TaskConfig *cfg, Error *err);

#endif
