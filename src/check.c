/*
 * check: the findings, one function per concern.
 */
#include "check.h"

bool
check_command(const TaskConfig *cfg, volatile sig_atomic_t *stop, Error *err)
{
	(void) cfg;
	(void) stop;
	return err_set(err, ERR_INTERNAL, "check is not built yet");
}
