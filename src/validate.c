/*
 * validate: ranged hash comparison and drill-down.
 */
#include "validate.h"

bool
validate_command(const TaskConfig *cfg, volatile sig_atomic_t *stop, Error *err)
{
	(void) cfg;
	(void) stop;
	return err_set(err, ERR_INTERNAL, "validate is not built yet");
}
