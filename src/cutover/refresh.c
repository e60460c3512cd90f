/*
 * refresh: cutover's step that brings materialized views up to date on the
 * target. Their contents never travel through the change stream, so once
 * the target holds every change up to the marker (the source fenced) each
 * one the source has populated is refreshed there, in dependency order.
 * It writes only the target's materialized views; a failure fails the
 * cutover like any step before the stream stops (the fence is undone).
 */
#include <stdio.h>

#include "base/fault.h"
#include "base/log.h"
#include "cutover/cutover_int.h"
#include "load/matviews.h"

bool
cutover_refresh_matviews(Cutover *c, CutoverTarget *t, Error *err)
{
	MatviewList mvs;
	char **names;
	int refreshed = 0, missing = 0;
	bool ok = matviews_read(t->src, t->cfg->state_schema, &mvs, err);

	names = mvs.names.items;
	for (size_t i = 0; ok && i < mvs.names.count; i++)
	{
		bool gone;

		if (c->stop != NULL && *c->stop)
		{
			ok = err_set(err, ERR_INTERRUPTED, "interrupted");
			break;
		}
		ok = matviews_refresh(t->tgt, names[i], &gone, err);
		if (ok && gone)
			log_warn("cutover: materialized view %s is not on the target; "
			         "left alone",
			         names[i]);
		missing += ok && gone;
		refreshed += ok && !gone;
		fault_point("cutover.refresh");
	}
	matviews_list_free(&mvs);
	if (!ok)
		return false;
	cutover_step_done(c, t, "%d materialized views refreshed%s", refreshed,
	                  missing > 0 ? " (some not on the target)" : "");
	return true;
}
