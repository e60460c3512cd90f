/*
 * fence: the source's writes stopped, and started again. Three ways: revoke
 * the roles' write privileges on the task's tables (undone by granting back
 * exactly what they held), make the database read-only and end the roles'
 * sessions, or run the user's commands. The undo is saved in the task's
 * state before the fence goes up, so a cutover killed while fenced is undone
 * by the next one. It never touches the target, and never leaves the
 * source fenced without its undo saved.
 */
#include "cutover/cutover_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"

/* {"a","b"} for a text[] parameter. */
static char *
array_literal(const StrList *l)
{
	size_t cap = 3;
	char *out, *p;

	for (int i = 0; i < l->count; i++)
		cap += strlen(l->items[i]) * 2 + 3;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	p = out;
	*p++ = '{';
	for (int i = 0; i < l->count; i++)
	{
		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		for (const char *s = l->items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

bool
fence_check_roles(Cutover *c, Error *err)
{
	const StrList *roles = &c->cfg->cutover_roles;

	if (c->cfg->cutover_fence == FENCE_COMMAND)
		return true;
	if (roles->count == 0)
	{
		err_set(err, ERR_CONFIG,
		        "cutover.fence %s needs the roles whose "
		        "writes it stops",
		        config_fence_name(c->cfg->cutover_fence));
		return err_hint(err, "name them with --fence-role ROLE (repeatable) "
		                     "or cutover.roles in the task file");
	}
	for (int i = 0; i < roles->count; i++)
	{
		const char *params[1] = {roles->items[i]};
		char super[8];

		if (!pg_query_value(c->src,
		                    "SELECT coalesce((SELECT rolsuper::text FROM "
		                    "pg_catalog.pg_roles WHERE rolname = $1), 'none')",
		                    1, params, super, sizeof(super), err))
			return false;
		if (strcmp(super, "none") == 0)
		{
			err_set(err, ERR_CONFIG,
			        "fence role \"%s\" does not exist on the "
			        "source",
			        roles->items[i]);
			return err_hint(err, "name the roles the application connects "
			                     "as");
		}
		if (strcmp(super, "true") == 0 && c->cfg->cutover_fence == FENCE_REVOKE)
		{
			err_set(err, ERR_CONFIG,
			        "fence role \"%s\" is a superuser: revoking privileges "
			        "cannot stop its writes",
			        roles->items[i]);
			return err_hint(err, "use --fence read_only, or a fence command "
			                     "of your own");
		}
	}
	return true;
}

/* Appends a statement to the undo text. */
static bool
undo_add(Cutover *c, const char *sql, Error *err)
{
	return buf_printf(&c->undo, err, "%s;\n", sql);
}

/*
 * The undo of a revoke: a GRANT for each write privilege the roles hold
 * directly on the task's tables now (the owner's implicit ones included),
 * so undo gives back exactly those.
 */
static bool
record_grants(Cutover *c, const char *roles, Error *err)
{
	for (int i = 0; i < c->ntables; i++)
	{
		const char *params[2] = {c->tables[i], roles};
		PGresult *res;
		bool ok = true;

		if (!pg_query(c->src,
		              "SELECT format('GRANT %s ON TABLE %s TO %I%s',"
		              " a.privilege_type, k.oid::regclass, r.rolname,"
		              " CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION'"
		              " ELSE '' END)"
		              " FROM pg_catalog.pg_class k,"
		              " pg_catalog.aclexplode(coalesce(k.relacl,"
		              "  pg_catalog.acldefault('r', k.relowner))) a"
		              " JOIN pg_catalog.pg_roles r ON r.oid = a.grantee"
		              " WHERE k.oid = $1::regclass"
		              " AND r.rolname = ANY ($2::text[])"
		              " AND a.privilege_type IN"
		              "  ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')",
		              2, params, &res, err))
			return err_prefix(err, "table %s: ", c->tables[i]);
		for (int r = 0; ok && r < PQntuples(res); r++)
			ok = undo_add(c, PQgetvalue(res, r, 0), err);
		PQclear(res);
		if (!ok)
			return false;
	}
	return true;
}

/* Forgets the saved undo on every target; a warning for each that keeps it. */
static void
forget_undo(Cutover *c)
{
	for (int i = 0; i < c->ntargets; i++)
	{
		Error forget = ERR_INIT;

		if (!state_task_set_cutover_undo(&c->targets[i].state, NULL, &forget))
			log_warn("cutover: %sthe fence's undo is still recorded in the "
			         "task's state (%s); the next cutover runs it, which "
			         "changes nothing",
			         c->targets[i].name, forget.message);
	}
}

/*
 * Saves the undo where a later run finds it, before the fence goes up: in
 * every target's state, so that whichever answers next time lifts it.
 */
static bool
save_undo(Cutover *c, Error *err)
{
	if (buf_len(&c->undo) == 0 && !undo_add(c, "SELECT 1", err))
		return false;
	for (int i = 0; i < c->ntargets; i++)
		if (!state_task_set_cutover_undo(&c->targets[i].state,
		                                 buf_str(&c->undo), err))
		{
			/* nothing is fenced yet: no target may keep an undo */
			forget_undo(c);
			return err_prefix(
			    err, "%ssaving how to undo the fence: ", c->targets[i].name);
		}
	c->fenced = true;
	return true;
}


static bool
fence_revoke(Cutover *c, Error *err)
{
	const StrList *roles = &c->cfg->cutover_roles;
	char *role_array = array_literal(roles);
	Buf who = BUF_INIT(CUTOVER_SQL_MAX);
	bool ok = false;

	if (role_array == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!record_grants(c, role_array, err))
		goto out;
	for (int i = 0; i < roles->count; i++)
	{
		char *q = pg_quote_ident(roles->items[i]);
		bool added =
		    q != NULL && buf_printf(&who, err, "%s%s", i ? ", " : "", q);

		free(q);
		if (!added)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	/* one transaction: every table is fenced, or none */
	if (!save_undo(c, err) || !pg_exec(c->src, "BEGIN", err))
		goto out;
	for (int i = 0; i < c->ntables; i++)
		if (!pg_execf(c->src, err,
		              "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %s "
		              "FROM %s",
		              c->tables[i], buf_str(&who)))
		{
			Error ignored = ERR_INIT;

			pg_exec(c->src, "ROLLBACK", &ignored);
			err_prefix(err, "fencing table %s: ", c->tables[i]);
			goto out;
		}
	if (!pg_exec(c->src, "COMMIT", err))
		goto out;
	/* privileges held through another role or PUBLIC survive a revoke */
	for (int i = 0; i < c->ntables; i++)
		for (int r = 0; r < roles->count; r++)
		{
			const char *params[2] = {roles->items[r], c->tables[i]};
			char can[8];

			if (!pg_query_value(c->src,
			                    "SELECT pg_catalog.has_table_privilege($1,"
			                    " $2::regclass,"
			                    " 'INSERT, UPDATE, DELETE, TRUNCATE')::text",
			                    2, params, can, sizeof(can), err))
				goto out;
			if (strcmp(can, "true") == 0)
			{
				err_set(err, ERR_SOURCE,
				        "the fence does not hold: role \"%s\" can still write "
				        "to %s",
				        roles->items[r], c->tables[i]);
				err_detail(err, "it holds the privilege through membership "
				                "in another role, or PUBLIC does");
				err_hint(err, "fence that role too (--fence-role), or use "
				              "--fence read_only");
				goto out;
			}
		}
	ok = true;
out:
	free(role_array);
	buf_free(&who);
	return ok;
}

static bool
fence_read_only(Cutover *c, Error *err)
{
	char *role_array = array_literal(&c->cfg->cutover_roles);
	const char *params[1] = {role_array};
	char undo[512], ended[24];
	bool ok = false;

	if (role_array == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	/* a database-level setting of the user's own is what undo puts back */
	if (!pg_query_value(
	        c->src,
	        "SELECT CASE WHEN x IS NULL THEN format('ALTER DATABASE %I RESET"
	        " default_transaction_read_only', pg_catalog.current_database())"
	        " ELSE format('ALTER DATABASE %I SET default_transaction_read_only"
	        " = %L', pg_catalog.current_database(), split_part(x, '=', 2))"
	        " END FROM (SELECT (SELECT x FROM pg_catalog.pg_db_role_setting s"
	        " JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase,"
	        " unnest(s.setconfig) x WHERE s.setrole = 0"
	        " AND d.datname = pg_catalog.current_database()"
	        " AND x LIKE 'default_transaction_read_only=%') AS x) v",
	        0, NULL, undo, sizeof(undo), err) ||
	    !undo_add(c, undo, err) || !save_undo(c, err) ||
	    !pg_exec(c->src,
	             "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET "
	             "default_transaction_read_only = on', "
	             "pg_catalog.current_database()); END$$",
	             err))
		goto out;
	/* sessions opened before the setting keep writing until they end */
	if (!pg_query_value(c->src,
	                    "SELECT count(pg_catalog.pg_terminate_backend(pid))"
	                    " FROM pg_catalog.pg_stat_activity"
	                    " WHERE datname = pg_catalog.current_database()"
	                    " AND usename = ANY ($1::text[])"
	                    " AND backend_type = 'client backend'"
	                    " AND pid <> pg_catalog.pg_backend_pid()",
	                    1, params, ended, sizeof(ended), err))
		goto out;
	log_info("cutover: database read-only for new sessions; %s session(s) "
	         "of the fenced roles ended",
	         ended);
	ok = true;
out:
	free(role_array);
	return ok;
}

static bool
run_command(const char *what, const char *cmd, Error *err)
{
	int rc;

	fflush(NULL);
	rc = system(cmd);
	if (rc != 0)
	{
		err_set(err, ERR_SOURCE, "the %s command failed (status %d)", what, rc);
		return err_detail(err, "command: %s", cmd);
	}
	return true;
}

bool
fence_up(Cutover *c, Error *err)
{
	bool ok;

	c->fence_ms = clock_ms();
	cutover_wall_text(c->rec.fenced_at, sizeof(c->rec.fenced_at));
	switch (c->cfg->cutover_fence)
	{
		case FENCE_REVOKE:
			ok = fence_revoke(c, err);
			break;
		case FENCE_READ_ONLY:
			ok = fence_read_only(c, err);
			break;
		case FENCE_COMMAND:
		default:
			/* a command that failed half way is undone too */
			ok = undo_add(c, UNDO_COMMAND, err) && save_undo(c, err) &&
			     run_command("fence", c->cfg->cutover_fence_command, err);
			break;
	}
	if (!ok)
		return err_prefix(err, "fence: ");
	fault_point("cutover.fenced");
	cutover_step_done(c, NULL, "fence (%s)",
	                  config_fence_name(c->cfg->cutover_fence));
	return true;
}

/* Puts the source back as it was before the fence, and forgets the undo. */
bool
fence_down(Cutover *c, Error *err)
{
	bool ok;

	if (!c->fenced)
		return true;
	if (strncmp(buf_str(&c->undo), UNDO_COMMAND, strlen(UNDO_COMMAND)) == 0)
	{
		if (c->cfg->cutover_unfence_command == NULL)
		{
			err_set(err, ERR_CONFIG,
			        "the fence was put up by a command and "
			        "no cutover.unfence_command is set");
			return err_hint(err, "set it (or lift the fence by hand), then "
			                     "run cutover again");
		}
		ok = run_command("unfence", c->cfg->cutover_unfence_command, err);
	}
	else
		ok = pg_exec(c->src, buf_str(&c->undo), err);
	if (!ok)
		return false;
	/* the source takes writes again, whatever happens to the record */
	c->fenced = false;
	forget_undo(c);
	buf_reset(&c->undo);
	return true;
}

/*
 * A cutover killed while the source was fenced left its undo in the state:
 * lift that fence before anything else, so this run starts from a source
 * that takes writes (and records the roles' privileges as they really are).
 */
bool
fence_undo_leftover(Cutover *c, Error *err)
{
	char *left = NULL;
	bool ok;

	for (int i = 0; left == NULL && i < c->ntargets; i++)
		if (!state_task_cutover_undo(&c->targets[i].state, &left, err))
			return err_prefix(err, "%s", c->targets[i].name);
	if (left == NULL)
		return true;
	log_warn("cutover: an earlier cutover of task \"%s\" stopped while the "
	         "source was fenced; lifting that fence first",
	         c->cfg->task);
	buf_reset(&c->undo);
	ok = buf_add_str(&c->undo, left, err);
	free(left);
	if (!ok)
		return false;
	c->fenced = true;
	if (!fence_down(c, err))
		return err_prefix(err, "lifting the earlier cutover's fence: ");
	return true;
}
