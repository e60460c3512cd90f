/*
 * validate: source and target compared without moving rows: per key range,
 * a count and an order-independent hash computed in each database; ranges
 * that differ are split until the differing rows are named.
 *
 * It never writes to the source; on the target it writes only to the state
 * schema's validation tables.
 */
#ifndef PGTIDE_VALIDATE_H
#define PGTIDE_VALIDATE_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "err.h"

/*
 * pgtide validate: prints the result (text, or JSON with cfg->output_json)
 * and fails with ERR_DIFFERENT when rows differ.
 */
bool validate_command(const TaskConfig *cfg, volatile sig_atomic_t *stop,
                      Error *err);

#endif
