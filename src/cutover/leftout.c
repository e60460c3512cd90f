/*
 * leftout: tables the task's patterns select on the source that the task
 * does not move (created, or attached as partitions, after its load, and
 * that could not join: the follower's log and pgtide status say why). The
 * change stream never carries their rows, so a cutover would hand the
 * application a target without them. Cutover refuses, naming them, before
 * anything is fenced. It reads only; it changes nothing on either side.
 */
#include <stdio.h>

#include "cutover/cutover_int.h"
#include "load/newtables.h"

/* names shown in one message; the rest are counted */
#define LEFTOUT_SHOWN 5

bool
leftout_refuse(CutoverTarget *t, Error *err)
{
	NewTables nt;
	char names[1024];
	size_t used = 0;

	if (!newtables_find(t->src, &t->state, t->cfg, &nt, err))
		return false;
	if (nt.n == 0)
		return true;
	names[0] = '\0';
	for (int i = 0; i < nt.n && i < LEFTOUT_SHOWN && used < sizeof(names); i++)
		used += (size_t) snprintf(names + used, sizeof(names) - used, "%s%s",
		                          i > 0 ? ", " : "", nt.names[i]);
	if (nt.n > LEFTOUT_SHOWN && used < sizeof(names))
		snprintf(names + used, sizeof(names) - used, " and %d more",
		         nt.n - LEFTOUT_SHOWN);
	err_set(err, ERR_CONFIG,
	        "%s%d table%s the task's patterns select %s on the source but "
	        "not in the task: %s",
	        t->name, nt.n, nt.n == 1 ? "" : "s", nt.n == 1 ? "is" : "are",
	        names);
	err_detail(err, "created or attached after the load and unable to join "
	                "(the follower's log and pgtide status say why), the "
	                "change stream never carried their rows: after cutover "
	                "the application would find them missing on the target");
	err_hint(err, "let them join (the follower names what stops each one), "
	              "move them with a task of their own, or leave them out on "
	              "purpose with tables.exclude (-T); then run cutover again");
	newtables_free(&nt);
	return false;
}
