/*
 * check_source: what the source must offer for the task, and what in it
 * would not migrate.
 *
 * It owns the checks of the source's settings (wal_level, slots, WAL
 * senders, wal_sender_timeout), the role's privileges there, the task's slot
 * and publication as a resumed run finds them, and the selected tables:
 * their kind, replica identity, identity columns, sequences, and the
 * temporary, foreign and large objects no table copy carries. It must never
 * write to the source; the few target reads it makes (indexes and identity
 * columns of the user's tables in existing mode) are reads too.
 */
#include "verify/check_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/lobjects.h"
#include "load/source.h"

/* A wal_sender_timeout below this cuts off a pgtide that is briefly slow. */
#define CHECK_MIN_SENDER_TIMEOUT_MS 10000
/* a REPLICA IDENTITY FULL table this small is scanned in no time */
#define CHECK_FULL_IDENTITY_ROWS "10000"

/* True when schema.name, or the table at index parent and its ancestors,
 * matches one of the patterns: the rule catalog_select applies. */
static bool
lineage_matches(const Check *c, const PatternSet *set, const char *schema,
                const char *name, int parent)
{
	if (mapping_set_match(set, schema, name, NULL))
		return true;
	for (int depth = 0; parent >= 0 && depth < 64; depth++)
	{
		const CatTable *t = &c->cat->tables[parent];

		if (mapping_set_match(set, t->schema, t->name, NULL))
			return true;
		parent = t->parent;
	}
	return false;
}

/* Whether a relation the catalog does not list (a foreign table) would be
 * selected by the task's patterns. */
static bool
would_select(const Check *c, const char *schema, const char *name, int parent)
{
	return (c->ninc == 0 ||
	        lineage_matches(c, &c->incset, schema, name, parent)) &&
	       !lineage_matches(c, &c->excset, schema, name, parent);
}

/* ---- source: settings and privileges ---- */

void
check_source_settings(Check *c)
{
	/* read once by check.c, with load/source, as the load reads them */
	const SourceFacts *f = &c->src_facts;
	char fix[512];
	const char *wal_level = f->wal_level;
	int max_slots = f->max_slots, used_slots = f->used_slots;
	int max_senders = f->max_senders, used_senders = f->used_senders;
	int64_t sender_timeout_ms = f->sender_timeout_ms;
	bool replication = f->replication;
	int need_slots;

	if (strcmp(wal_level, "logical") != 0)
		check_add(c, CHECK_ID_WAL_LEVEL, CHECK_BLOCKER, "source",
		          "logical decoding, which the change stream reads, needs "
		          "\"logical\"; without it nothing can be streamed",
		          "set wal_level = logical in the source's postgresql.conf (or "
		          "ALTER SYSTEM) and restart the source",
		          "wal_level is \"%s\"", wal_level);
	/* the task's own slot, when it exists, is already counted as used */
	need_slots = c->slot_exists ? 0 : 1;
	if (max_slots - used_slots < need_slots)
		check_add(c, CHECK_ID_REPLICATION_SLOTS, CHECK_BLOCKER, "source",
		          "pgtide needs one logical replication slot for the task",
		          "raise max_replication_slots (needs a restart), or drop an "
		          "unused slot listed in pg_replication_slots",
		          "no free replication slot: %d of max_replication_slots = %d "
		          "in use",
		          used_slots, max_slots);
	else if (c->slot_exists && !c->load_done && max_slots - used_slots < 1)
		check_add(
		    c, CHECK_ID_REPLICATION_SLOTS, CHECK_WARNING, "source",
		    "if the load's snapshot is lost, unfinished tables are reloaded "
		    "from a temporary slot, which needs a free slot",
		    "raise max_replication_slots (needs a restart), or drop an "
		    "unused slot",
		    "every replication slot is in use (%d of %d)", used_slots,
		    max_slots);
	if (max_senders - used_senders < 1)
		check_add(c, CHECK_ID_WAL_SENDERS, CHECK_BLOCKER, "source",
		          "the load's snapshot and the change stream each hold one "
		          "replication connection",
		          "raise max_wal_senders (needs a restart), or end an unused "
		          "replication connection (pg_stat_replication)",
		          "no free WAL sender: %d of max_wal_senders = %d in use",
		          used_senders, max_senders);
	if (!c->src_facts.superuser && !replication)
		check_add(
		    c, CHECK_ID_REPLICATION_PRIVILEGE, CHECK_BLOCKER, "source",
		    "creating a replication slot and streaming from it needs the "
		    "REPLICATION attribute or a superuser",
		    "ALTER ROLE ... REPLICATION on the source, or connect as a role "
		    "that has it (on a managed service, the provider's replication "
		    "role; then skip this finding)",
		    "the source role has neither REPLICATION nor SUPERUSER");
	if (sender_timeout_ms == 0)
		check_add(c, CHECK_ID_WAL_SENDER_TIMEOUT, CHECK_WARNING, "source",
		          "a replication connection that died without a word keeps the "
		          "task's slot busy until TCP notices, and pgtide cannot "
		          "reconnect to it meanwhile",
		          "set wal_sender_timeout to 60s (the default); a reload is "
		          "enough",
		          "wal_sender_timeout is 0: dead replication connections are "
		          "never timed out");
	else if (sender_timeout_ms < CHECK_MIN_SENDER_TIMEOUT_MS)
	{
		snprintf(fix, sizeof(fix),
		         "raise wal_sender_timeout to at least %d s (the default "
		         "is 60 s); a reload is enough",
		         CHECK_MIN_SENDER_TIMEOUT_MS / 1000);
		check_add(
		    c, CHECK_ID_WAL_SENDER_TIMEOUT, CHECK_WARNING, "source",
		    "pgtide answers keepalives within a second, but a slow network "
		    "or a paused host can miss so short a deadline, and the change "
		    "stream then reconnects",
		    fix, "wal_sender_timeout is %lld ms",
		    (long long) sender_timeout_ms);
	}
}

/* The task's slot and publication on the source, as a resumed run finds
 * them (or as a leftover of an earlier task of the same name). */
bool
check_task_objects(Check *c, Error *err)
{
	const char *params[1] = {c->slot};
	char sql[512], fix[512];
	PGresult *res;
	const char *wal_status;
	bool active;

	/* wal_status says whether max_slot_wal_keep_size cost the slot WAL */
	snprintf(sql, sizeof(sql),
	         "SELECT active, coalesce(active_pid::text, ''), %s, %s"
	         " FROM pg_replication_slots WHERE slot_name = $1",
	         c->src_version >= 130000 ? "coalesce(wal_status, '')" : "''",
	         c->src_facts.in_recovery
	             ? "0"
	             : "coalesce(pg_current_wal_lsn() - restart_lsn, 0)");
	if (!pg_query(c->src, sql, 1, params, &res, err))
		return false;
	c->slot_exists = PQntuples(res) == 1;
	active = c->slot_exists && PQgetvalue(res, 0, 0)[0] == 't';
	wal_status = c->slot_exists ? PQgetvalue(res, 0, 2) : "";
	if (c->slot_exists)
		c->slot_retained_bytes = strtod(PQgetvalue(res, 0, 3), NULL);
	if (c->slot_exists && !c->resume)
	{
		snprintf(fix, sizeof(fix),
		         "another task with this name? choose another --task; if "
		         "nothing uses the slot, drop it: SELECT "
		         "pg_drop_replication_slot('%s')",
		         c->slot);
		check_add(
		    c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "pgtide would not know where its changes start, so it refuses "
		    "to use a slot it did not record",
		    fix,
		    "replication slot \"%s\" exists on the source, but the target "
		    "holds no state for task \"%s\"",
		    c->slot, c->cfg->task);
	}
	else if (!c->slot_exists && c->has_point && c->copy_only)
		check_add(
		    c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "pgtide copy keeps no slot, so no slot holds the source's changes "
		    "since the task's load, and migrate refuses to stream it",
		    "drop the task (pgtide clean) and the target's copy, and migrate "
		    "again; or choose another --task",
		    "task \"%s\" was loaded by pgtide copy, which keeps no "
		    "replication slot",
		    c->cfg->task);
	else if (!c->slot_exists && c->has_point)
		check_add(
		    c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		    "the changes made on the source since the load started are gone "
		    "with it",
		    "drop the task (pgtide clean) and the target's copy, and migrate "
		    "again",
		    "replication slot \"%s\" of task \"%s\" no longer exists", c->slot,
		    c->cfg->task);
	else if (active)
		check_add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		          "a slot streams to one connection at a time",
		          "is pgtide already running this task? stop it first, or wait "
		          "for it to finish",
		          "replication slot \"%s\" is in use by process %s", c->slot,
		          PQgetvalue(res, 0, 1));
	if (strcmp(wal_status, "lost") == 0)
		check_add(c, CHECK_ID_TASK_SLOT, CHECK_BLOCKER, c->slot,
		          "the source removed WAL the task still needed "
		          "(max_slot_wal_keep_size): changes are missing",
		          "drop the task (pgtide clean) and the target's copy, raise "
		          "max_slot_wal_keep_size, and migrate again",
		          "replication slot \"%s\" was invalidated", c->slot);
	else if (strcmp(wal_status, "unreserved") == 0)
		check_add(c, CHECK_ID_TASK_SLOT, CHECK_WARNING, c->slot,
		          "the source is about to remove WAL the task still needs "
		          "(max_slot_wal_keep_size)",
		          "resume the task now so that it catches up, or raise "
		          "max_slot_wal_keep_size (a reload is enough)",
		          "replication slot \"%s\" retains more WAL than "
		          "max_slot_wal_keep_size allows",
		          c->slot);
	PQclear(res);
	return true;
}

/*
 * The publication pgtide would create, or finds: an existing one is used as
 * it is, so every table whose changes must stream has to be in it.
 */
bool
check_publication(Check *c, Error *err)
{
	const char *params[2] = {c->publication, c->published_oids};
	const CheckRegistered *reg;
	PGresult *res;
	char fix[512];

	if (!pg_query(c->src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
	              params, &res, err))
		return false;
	c->publication_exists = PQntuples(res) == 1;
	PQclear(res);
	if (c->publication_exists)
	{
		/* pg_publication_tables lists leaves, and every table for ALL */
		if (!pg_query(c->src,
		              "SELECT c.oid FROM pg_class c"
		              " JOIN pg_namespace n ON n.oid = c.relnamespace"
		              " WHERE c.oid = ANY($2::oid[]) AND NOT EXISTS"
		              " (SELECT 1 FROM pg_publication_tables p"
		              "  WHERE p.pubname = $1 AND p.schemaname = n.nspname"
		              "  AND p.tablename = c.relname)"
		              " ORDER BY n.nspname, c.relname",
		              2, params, &res, err))
			return false;
		for (int i = 0; i < PQntuples(res); i++)
		{
			const CatTable *t =
			    check_table_by_oid(c->cat, PQgetvalue(res, i, 0));

			if (t == NULL)
				continue;
			reg = check_registered(c, t->schema, t->name);
			/* created since the load (or joining): the stream publishes it
			   when it joins (load/join.h) */
			if (c->load_done && c->cfg->cdc_publication == NULL &&
			    (reg == NULL || !reg->done))
			{
				check_add(c, CHECK_ID_TASK_PUBLICATION, CHECK_INFO,
				          check_shown_table(c, t),
				          "the change stream adds it to the publication "
				          "and loads it from a snapshot of its own when it "
				          "starts, or within seconds while it runs",
				          NULL,
				          "created after the task's load: it joins the task");
				continue;
			}
			snprintf(fix, sizeof(fix),
			         "ALTER PUBLICATION %s ADD TABLE %s; or drop the "
			         "publication (before the load starts) and let pgtide "
			         "create it",
			         c->publication, check_shown_table(c, t));
			check_add(c, CHECK_ID_TASK_PUBLICATION, CHECK_BLOCKER,
			          check_shown_table(c, t),
			          "pgtide uses an existing publication as it is: this "
			          "table's changes would not be streamed",
			          fix,
			          "publication \"%s\" exists but does not list the table",
			          c->publication);
		}
		PQclear(res);
		return true;
	}
	if (c->src_facts.superuser)
		return true;
	/* CREATE PUBLICATION ... FOR TABLE: CREATE on the database, and each
	 * table owned by the role (or a role it inherits from) */
	{
		bool can_create;

		if (!check_query_bool(
		        c->src,
		        "SELECT has_database_privilege(current_database(),"
		        " 'CREATE')",
		        0, NULL, &can_create, err))
			return false;
		if (!can_create)
		{
			char object[160];

			snprintf(object, sizeof(object), "database %s", c->src_db);
			check_add(
			    c, CHECK_ID_PUBLICATION_OWNERSHIP, CHECK_BLOCKER, object,
			    "creating the task's publication needs CREATE on the "
			    "source database",
			    "GRANT CREATE ON DATABASE ... TO the role pgtide connects "
			    "as, or create the publication beforehand as its owner",
			    "the source role cannot create publication \"%s\"",
			    c->publication);
		}
	}
	if (!pg_query(c->src,
	              "SELECT c.oid, pg_get_userbyid(c.relowner) FROM pg_class c"
	              " WHERE c.oid = ANY($1::oid[])"
	              " AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1",
	              1, params + 1, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));

		if (t == NULL)
			continue;
		snprintf(fix, sizeof(fix),
		         "run pgtide as role %s (or a member of it) or a superuser; "
		         "or let the owner create the publication first: CREATE "
		         "PUBLICATION %s FOR TABLE ... listing every table to stream",
		         PQgetvalue(res, i, 1), c->publication);
		check_add(
		    c, CHECK_ID_PUBLICATION_OWNERSHIP, CHECK_BLOCKER,
		    check_shown_table(c, t),
		    "CREATE PUBLICATION ... FOR TABLE accepts only tables the role "
		    "owns",
		    fix, "owned by %s, not by the source role", PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

bool
check_read_privileges(Check *c, Error *err)
{
	const char *p1[1] = {c->selected_oids};
	const char *p2[1] = {c->cfg->state_schema};
	PGresult *res;

	if (c->src_facts.superuser)
		return true;
	if (!pg_query(c->src,
	              "SELECT c.oid FROM pg_class c WHERE c.oid = ANY($1::oid[])"
	              " AND NOT (has_schema_privilege(c.relnamespace, 'USAGE')"
	              " AND has_table_privilege(c.oid, 'SELECT')) ORDER BY 1",
	              1, p1, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));
		char fix[512];

		if (t == NULL)
			continue;
		snprintf(fix, sizeof(fix),
		         "GRANT SELECT ON %s (and USAGE on schema %s) to the role "
		         "pgtide connects as, or leave the table out with -T",
		         check_shown_table(c, t), t->schema);
		check_add(c, CHECK_ID_TABLE_READ_PRIVILEGE, CHECK_BLOCKER,
		          check_shown_table(c, t), "its rows cannot be copied", fix,
		          "the source role cannot read the table");
	}
	PQclear(res);
	/* every sequence's value is copied at the end of the load */
	if (!pg_query(
	        c->src,
	        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	        " WHERE c.relkind = 'S'"
	        " AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
	        " AND n.nspname NOT LIKE 'pg\\_%'"
	        " AND NOT (has_schema_privilege(n.oid, 'USAGE')"
	        " AND has_sequence_privilege(c.oid, 'SELECT')) ORDER BY 1",
	        1, p2, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
		check_add(
		    c, CHECK_ID_TABLE_READ_PRIVILEGE, CHECK_BLOCKER,
		    PQgetvalue(res, i, 0),
		    "pgtide copies every sequence's value after the load and at "
		    "cutover",
		    "GRANT SELECT on the sequence (and USAGE on its schema) to the "
		    "role pgtide connects as",
		    "the source role cannot read the sequence");
	PQclear(res);
	/* large objects are copied too: owned, or granted to the role (or a
	   role it belongs to, or PUBLIC), unless lo_compat_privileges */
	if (!pg_query(c->src,
	              "SELECT 'large object ' || m.oid"
	              " FROM pg_catalog.pg_largeobject_metadata m"
	              " WHERE NOT current_setting('lo_compat_privileges')::bool"
	              " AND NOT pg_has_role(m.lomowner, 'USAGE')"
	              " AND NOT EXISTS (SELECT 1 FROM aclexplode(m.lomacl) a"
	              "  WHERE a.privilege_type = 'SELECT'"
	              "  AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE')))"
	              " ORDER BY m.oid",
	              0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
		check_add(c, CHECK_ID_TABLE_READ_PRIVILEGE, CHECK_BLOCKER,
		          PQgetvalue(res, i, 0),
		          "pgtide copies every large object in the load and at "
		          "cutover",
		          "GRANT SELECT ON LARGE OBJECT ... to the role pgtide "
		          "connects as",
		          "the source role cannot read the large object");
	PQclear(res);
	return true;
}

/*
 * Row-level security the role is subject to hides rows: the copy would take
 * part of a table, and validate, reading through the same policies, would
 * agree with it. pgtide's sessions pin row_security off (pg/pg.c), so such
 * a read fails instead of filtering; this names every such table first.
 */
bool
check_row_security(Check *c, Error *err)
{
	int *idx, n;

	if (c->src_facts.superuser)
		return true;
	if (!source_row_security_tables(c->src, c->cat, &idx, &n, err))
		return false;
	for (int i = 0; i < n; i++)
		check_add(c, CHECK_ID_ROW_SECURITY, CHECK_BLOCKER,
		          check_shown_table(c, &c->cat->tables[idx[i]]),
		          "its policies would hide rows from the copy and from "
		          "validate; pgtide reads with row_security off, so the "
		          "copy would fail",
		          "connect as a role with BYPASSRLS (ALTER ROLE ... "
		          "BYPASSRLS) or a superuser, or leave the tables out with -T",
		          "row-level security applies to the source role");
	free(idx);
	return true;
}

/* ---- source: tables ---- */

void
check_table_kinds(Check *c)
{
	for (int i = 0; i < c->cat->ntables; i++)
	{
		const CatTable *t = &c->cat->tables[i];
		char fix[768];
		const char *what;

		if (!t->selected)
			continue;
		if (t->persistence != 'p')
		{
			snprintf(fix, sizeof(fix),
			         "nothing; or leave it out with -T %s if the target "
			         "does not need its rows",
			         check_shown(c, i));
			check_add(
			    c, CHECK_ID_UNLOGGED_TABLE, CHECK_INFO, check_shown(c, i),
			    "an unlogged table writes no WAL, so its changes cannot be "
			    "streamed: the load copies it (UNLOGGED on the target too) "
			    "and cutover copies it again while the source is fenced, "
			    "which lengthens the write downtime by its copy time",
			    fix, "the table is UNLOGGED");
			continue;
		}
		if (t->has_identity)
			continue;
		switch (t->replident)
		{
			case 'n':
				what = "its replica identity is NOTHING";
				break;
			case 'i':
				what = "its replica identity index no longer exists";
				break;
			default:
				what = "it has no primary key and no replica identity";
				break;
		}
		snprintf(fix, sizeof(fix),
		         "nothing, if the table only ever receives INSERTs (a log, "
		         "an audit trail); otherwise add a primary key, or ALTER "
		         "TABLE %s REPLICA IDENTITY FULL, before the migration",
		         check_shown(c, i));
		check_add(
		    c, CHECK_ID_NO_REPLICA_IDENTITY, CHECK_WARNING, check_shown(c, i),
		    "an UPDATE or DELETE cannot be streamed without a key, so the "
		    "table is streamed for its INSERTs and TRUNCATEs only, in a "
		    "publication of its own that lets the source's UPDATE and "
		    "DELETE on it work as before; pgtide watches the source's "
		    "statistics for an UPDATE or DELETE on it, and cutover refuses "
		    "a table that saw one unless told to copy it again while the "
		    "source is fenced (--diverged=recopy)",
		    fix, "%s", what);
	}
}

/*
 * REPLICA IDENTITY FULL tables whose changes the target cannot find by an
 * index: the applier matches an UPDATE or DELETE on every column, so each
 * one reads the whole table. Small tables are left alone. The target's
 * indexes are the source's in create mode, the user's table's in existing
 * mode.
 */
bool
check_full_identity(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	bool existing = c->cfg->schema_mode == SCHEMA_MODE_EXISTING;
	PGresult *res;

	if (!pg_query(c->src,
	              "SELECT c.oid, c.reltuples::int8,"
	              " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid)"
	              " FROM pg_class c WHERE c.oid = ANY($1::oid[])"
	              " AND c.relkind = 'r' AND c.relreplident = 'f'"
	              " AND c.reltuples >= " CHECK_FULL_IDENTITY_ROWS " ORDER BY 1",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));
		bool indexed = PQgetvalue(res, i, 2)[0] == 't';
		char fix[768];
		int idx;

		if (t == NULL)
			continue;
		idx = (int) (t - c->cat->tables);
		if (existing)
		{
			const char *tp[1];
			char buf[8];

			if (c->into[idx] < 0)
				continue;
			tp[0] = c->cat->tables[c->into[idx]].qname;
			if (!pg_query_value(c->tgt,
			                    "SELECT EXISTS (SELECT 1 FROM pg_index"
			                    " WHERE indrelid = to_regclass($1))",
			                    1, tp, buf, sizeof(buf), err))
			{
				PQclear(res);
				return false;
			}
			indexed = buf[0] == 't';
		}
		if (indexed)
			continue;
		snprintf(fix, sizeof(fix),
		         "add a primary key (and set REPLICA IDENTITY DEFAULT), or an "
		         "index on columns that tell rows apart%s; or leave it out "
		         "with -T %s and move it with pgtide copy",
		         existing ? " on the target table" : "",
		         check_shown_table(c, t));
		check_add(
		    c, CHECK_ID_FULL_IDENTITY_NO_INDEX, CHECK_WARNING,
		    check_shown_table(c, t),
		    "its changes are matched on every column and no index can find "
		    "them: each UPDATE and DELETE the stream applies reads the whole "
		    "table on the target, and a busy table leaves the stream behind",
		    fix, "REPLICA IDENTITY FULL and no index, about %s rows",
		    PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return true;
}

bool
check_identity_columns(Check *c, Error *err)
{
	const char *params[1] = {c->selected_oids};
	PGresult *res;
	char list[512] = "";
	size_t len = 0;
	int by_default = 0;

	if (c->cfg->schema_mode == SCHEMA_MODE_EXISTING)
	{
		/* the user's target tables decide what an INSERT may carry */
		for (int i = 0; i < c->cat->ntables; i++)
		{
			const char *tp[1];
			const char *name;

			if (!check_first_of_target(c, i))
				continue;
			tp[0] = c->cat->tables[c->into[i]].qname;
			name = check_shown(c, c->into[i]);
			if (!pg_query(c->tgt,
			              "SELECT quote_ident(attname) FROM pg_attribute"
			              " WHERE attrelid = to_regclass($1)"
			              " AND attidentity = 'a' AND NOT attisdropped"
			              " ORDER BY attnum",
			              1, tp, &res, err))
				return false;
			for (int r = 0; r < PQntuples(res); r++)
			{
				char object[512], fix[768];

				snprintf(object, sizeof(object), "%s.%s", name,
				         PQgetvalue(res, r, 0));
				snprintf(fix, sizeof(fix),
				         "ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY "
				         "DEFAULT on the target",
				         name, PQgetvalue(res, r, 0));
				check_add(
				    c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
				    "the change stream inserts the source's values with "
				    "OVERRIDING SYSTEM VALUE and never sets the column in "
				    "an UPDATE; an UPDATE on the source that changes it "
				    "(SET ... = DEFAULT) stops the task",
				    fix, "the target column is GENERATED ALWAYS AS IDENTITY");
			}
			PQclear(res);
		}
		return true;
	}
	if (!pg_query(c->src,
	              "SELECT attrelid, quote_ident(attname), attidentity"
	              " FROM pg_attribute WHERE attrelid = ANY($1::oid[])"
	              " AND attidentity IN ('a', 'd') AND NOT attisdropped"
	              " ORDER BY attrelid, attnum",
	              1, params, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const CatTable *t = check_table_by_oid(c->cat, PQgetvalue(res, i, 0));
		const char *col = PQgetvalue(res, i, 1);
		char object[512], fix[768];

		if (t == NULL)
			continue;
		snprintf(object, sizeof(object), "%s.%s", check_shown_table(c, t), col);
		if (PQgetvalue(res, i, 2)[0] == 'd')
		{
			if (by_default++ < 5 && len < sizeof(list) - 1)
				len += (size_t) snprintf(list + len, sizeof(list) - len, "%s%s",
				                         len ? ", " : "", object);
			continue;
		}
		snprintf(fix, sizeof(fix),
		         "ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY DEFAULT on "
		         "the source (the application's INSERTs still take the next "
		         "value); or create the target table yourself and use "
		         "--schema existing",
		         check_shown_table(c, t), col);
		check_add(
		    c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
		    "the target gets the same definition; the change stream inserts "
		    "the source's values with OVERRIDING SYSTEM VALUE and never sets "
		    "the column in an UPDATE; an UPDATE on the source that changes "
		    "it (SET ... = DEFAULT) stops the task",
		    fix, "the column is GENERATED ALWAYS AS IDENTITY");
	}
	PQclear(res);
	if (by_default > 0)
	{
		char object[640];

		if (by_default > 5)
			snprintf(object, sizeof(object), "%s and %d more", list,
			         by_default - 5);
		else
			snprintf(object, sizeof(object), "%s", list);
		check_add(
		    c, CHECK_ID_IDENTITY_COLUMNS, CHECK_INFO, object,
		    "their sequences are not streamed: pgtide sets them after the "
		    "load and again at cutover, with a margin",
		    "", "%d identity column%s GENERATED BY DEFAULT", by_default,
		    by_default == 1 ? "" : "s");
	}
	return true;
}

void
check_sequences(Check *c)
{
	char object[64];

	if (c->cat->nseqs == 0)
		return;
	snprintf(object, sizeof(object), "%d sequence%s", c->cat->nseqs,
	         c->cat->nseqs == 1 ? "" : "s");
	check_add(
	    c, CHECK_ID_SEQUENCES, CHECK_INFO, object, "", "",
	    "sequence advances are not streamed: pgtide copies every sequence's "
	    "value after the load and again at cutover, plus a margin "
	    "(--sequence-margin)");
}

bool
check_temporary_tables(Check *c, Error *err)
{
	PGresult *res;

	if (!pg_query(
	        c->src,
	        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
	        " c.relname FROM pg_class c"
	        " JOIN pg_namespace n ON n.oid = c.relnamespace"
	        " WHERE c.relpersistence = 't' AND c.relkind IN ('r', 'p')"
	        " ORDER BY 1, 2",
	        0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *name = PQgetvalue(res, i, 1);
		bool in = c->ninc == 0, out = false;

		/* a temporary table's schema is its session's: match the name */
		for (int p = 0; p < c->ninc && !in; p++)
			in = mapping_name_match(&c->inc[p], name);
		for (int p = 0; p < c->nexc && !out; p++)
			out = mapping_name_match(&c->exc[p], name);
		if (in && !out)
			check_add(
			    c, CHECK_ID_TEMPORARY_TABLE, CHECK_WARNING,
			    PQgetvalue(res, i, 0),
			    "a temporary table lives only in the session that created "
			    "it: it is neither copied nor streamed",
			    "nothing, if it holds scratch data; otherwise keep the data "
			    "in a regular table",
			    "temporary table of another session");
	}
	PQclear(res);
	return true;
}

bool
check_foreign_tables(Check *c, Error *err)
{
	PGresult *res;

	if (!pg_query(c->src,
	              "SELECT n.nspname, c.relname, s.srvname,"
	              " (SELECT pn.nspname FROM pg_inherits i"
	              "   JOIN pg_class p ON p.oid = i.inhparent"
	              "   JOIN pg_namespace pn ON pn.oid = p.relnamespace"
	              "   WHERE i.inhrelid = c.oid LIMIT 1),"
	              " (SELECT p.relname FROM pg_inherits i"
	              "   JOIN pg_class p ON p.oid = i.inhparent"
	              "   WHERE i.inhrelid = c.oid LIMIT 1), c.relispartition,"
	              " quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	              " FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " JOIN pg_foreign_table ft ON ft.ftrelid = c.oid"
	              " JOIN pg_foreign_server s ON s.oid = ft.ftserver"
	              " WHERE c.relkind = 'f' ORDER BY 1, 2",
	              0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);
		int parent = PQgetvalue(res, i, 5)[0] != 't'
		                 ? -1
		                 : catalog_find(c->cat, PQgetvalue(res, i, 3),
		                                PQgetvalue(res, i, 4));

		if (strcmp(schema, c->cfg->state_schema) == 0 ||
		    !would_select(c, schema, name, parent))
			continue;
		check_add(
		    c, CHECK_ID_FOREIGN_TABLE, CHECK_WARNING, PQgetvalue(res, i, 6),
		    "its rows live on the foreign server: pgtide creates the "
		    "definition (create mode) but neither copies nor streams rows",
		    "make the foreign server reachable from the target with its "
		    "user mapping; if the rows must move, copy them yourself",
		    "foreign table on server %s%s", PQgetvalue(res, i, 2),
		    parent >= 0 ? ", a partition: its rows are not migrated" : "");
	}
	PQclear(res);
	return true;
}

/*
 * Tables created WITH OIDS (a source before 12): their hidden oid column
 * is not moved (docs/decisions/0010). 12 removed the column, pg_dump 12
 * and later leave it out, and pgoutput never sends it, so no target could
 * receive the oids of rows the stream carries.
 */
bool
check_with_oids(Check *c, Error *err)
{
	PGresult *res;

	if (c->src_version >= 120000)
		return true;
	if (!pg_query(c->src,
	              "SELECT n.nspname, c.relname,"
	              " quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	              " FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.relhasoids AND c.relkind IN ('r', 'p')"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
	              " ORDER BY 1, 2",
	              0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		const char *name = PQgetvalue(res, i, 1);

		if (!would_select(c, schema, name, -1))
			continue;
		check_add(c, CHECK_ID_WITH_OIDS, CHECK_WARNING, PQgetvalue(res, i, 2),
		          "its rows' oids are not kept: the target table has its "
		          "columns only (PostgreSQL 12 removed WITH OIDS, and the "
		          "change stream never carries an oid)",
		          "nothing, if no one reads the oids; otherwise copy them "
		          "into a regular column on the source first (ALTER TABLE "
		          "... ADD COLUMN ..., UPDATE ... SET ... = oid) and read "
		          "that",
		          "table created WITH OIDS");
	}
	PQclear(res);
	return true;
}

bool
check_extension_tables(Check *c, Error *err)
{
	PGresult *res;

	/* extconfig: the extension's configuration tables, whose rows pg_dump
	 * dumps with the data (pg_extension_config_dump) */
	if (!pg_query(c->src,
	              "SELECT n.nspname, c.relname, e.extname,"
	              " c.oid = ANY (coalesce(e.extconfig, '{}')),"
	              " quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	              " FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " JOIN pg_depend d ON d.classid = 'pg_class'::regclass"
	              "  AND d.objid = c.oid AND d.deptype = 'e'"
	              " JOIN pg_extension e ON e.oid = d.refobjid"
	              " WHERE c.relkind IN ('r', 'p') ORDER BY 1, 2",
	              0, NULL, &res, err))
		return false;
	for (int i = 0; i < PQntuples(res); i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		bool config = PQgetvalue(res, i, 3)[0] == 't';

		if (strcmp(schema, c->cfg->state_schema) == 0 ||
		    !would_select(c, schema, PQgetvalue(res, i, 1), -1))
			continue;
		check_add(
		    c, CHECK_ID_EXTENSION_TABLE, CHECK_WARNING, PQgetvalue(res, i, 4),
		    "pg_dump leaves an extension's tables to CREATE EXTENSION "
		    "on the target; pgtide neither copies nor streams their "
		    "rows",
		    config ? "copy its rows yourself after the load, or let "
		             "the extension fill it on the target"
		           : "nothing if the extension owns its rows; otherwise "
		             "copy them yourself after the load",
		    "table of extension %s%s", PQgetvalue(res, i, 2),
		    config ? ", a configuration table: its rows are not moved" : "");
	}
	PQclear(res);
	return true;
}

bool
check_large_objects(Check *c, Error *err)
{
	int64_t n;

	if (!lobjects_count(c->src, &n, err))
		return false;
	if (n > 0)
		check_add(
		    c, CHECK_ID_LARGE_OBJECTS,
		    c->cfg->cutover_fence == FENCE_REVOKE ? CHECK_WARNING : CHECK_INFO,
		    "source",
		    "logical decoding does not carry large objects: the load copies "
		    "them (contents, owner, grants), and cutover copies those "
		    "created or changed since, and removes those dropped, while the "
		    "source is fenced; cutover's revoke fence cannot stop writes to "
		    "large objects (creating one needs no privilege), so cutover "
		    "refuses it while the source has any",
		    "run cutover with --fence read_only, or with a fence command",
		    "%lld large object%s in the source database", (long long) n,
		    n == 1 ? "" : "s");
	return true;
}
