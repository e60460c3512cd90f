/*
 * check: what would not migrate, and why, found before anything changes.
 *
 * Reads the source and the target (catalogs and settings) and returns
 * findings, each with a severity, what it is about, why it matters and how
 * to fix it. It never writes to either server.
 */
#ifndef PGTIDE_CHECK_H
#define PGTIDE_CHECK_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "err.h"

/*
 * pgtide check: prints the findings (text, or JSON with cfg->output_json);
 * fails with ERR_BLOCKED when one is a blocker not named in cfg->check_skip.
 */
bool check_command(const TaskConfig *cfg, volatile sig_atomic_t *stop,
                   Error *err);

#endif
