/*
 * cutover: fence, drain, sequences, final validation, report.
 */
#include "cutover.h"

bool
cutover_command(const TaskConfig *cfg, volatile sig_atomic_t *stop, Error *err)
{
	(void) cfg;
	(void) stop;
	return err_set(err, ERR_INTERNAL, "cutover is not built yet");
}
