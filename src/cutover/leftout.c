/*
 * leftout: tables the task's patterns select on the source that the task
 * does not move (created, or attached as partitions, after its load, and
 * that could not join: the follower's log and pgtide status say why). The
 * change stream never carries their rows, so a cutover would hand the
 * application a target without them. Cutover refuses, naming them, before
 * anything is fenced. It reads only; it changes nothing on either side.
 */
#include "cutover/cutover_int.h"
#include "load/newtables.h"

bool
leftout_refuse(CutoverTarget *t, Error *err)
{
	NewTables nt;
	char names[1024];

	if (!newtables_find(t->src, &t->state, t->cfg, &nt, err))
		return false;
	if (nt.n == 0)
		return true;
	for (int i = 0; i < nt.n && i <= CUTOVER_NAMES_SHOWN; i++)
		cutover_name_list(names, sizeof(names), i, nt.n, nt.names[i]);
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
