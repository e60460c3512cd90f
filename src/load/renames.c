/*
 * renames: ALTER TABLE on the target for the task's renames. Target only.
 */
#include "load/renames.h"

#include <stdlib.h>
#include <string.h>

bool
renames_drop_removed_of(PgConn *tgt, const CatTable *t, Error *err)
{
	for (int c = 0; c < t->nremoved; c++)
	{
		char *col = pg_quote_ident(t->removed[c]);
		bool ok;

		if (col == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		ok = pg_execf(tgt, err, "ALTER TABLE %s DROP COLUMN %s", t->qname, col);
		free(col);
		if (!ok)
			return err_prefix(err,
			                  "removing column %s of table %s: ", t->removed[c],
			                  t->qname);
	}
	return true;
}

bool
renames_drop_removed(PgConn *tgt, const Catalog *cat, Error *err)
{
	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].selected &&
		    !renames_drop_removed_of(tgt, &cat->tables[i], err))
			return false;
	return true;
}

/* Renames t's renamed columns, on its source name. */
static bool
rename_columns(PgConn *tgt, const CatTable *t, Error *err)
{
	for (int c = 0; c < t->ncols; c++)
	{
		char *from, *to;
		bool ok;

		if (t->cols[c].tgt_name == NULL)
			continue;
		from = pg_quote_ident(t->cols[c].name);
		to = pg_quote_ident(t->cols[c].tgt_name);
		ok = from != NULL && to != NULL
		         ? pg_execf(tgt, err, "ALTER TABLE %s RENAME COLUMN %s TO %s",
		                    t->qname, from, to)
		         : err_set(err, ERR_INTERNAL, "out of memory");
		free(from);
		free(to);
		if (!ok)
			return err_prefix(err, "renaming column %s of table %s: ",
			                  t->cols[c].name, t->qname);
	}
	return true;
}

/* Moves t to its target schema and name. */
static bool
move_table(PgConn *tgt, const CatTable *t, bool with_drop, Error *err)
{
	char *schema = pg_quote_ident(t->tgt_schema);
	char *name = pg_quote_ident(t->tgt_name);
	char *moved = pg_qualify(t->tgt_schema, t->name);
	bool ok = schema != NULL && name != NULL && moved != NULL;

	if (!ok)
		err_set(err, ERR_INTERNAL, "out of memory");
	if (ok && with_drop)
		ok =
		    pg_execf(tgt, err, "DROP TABLE IF EXISTS %s CASCADE", t->tgt_qname);
	if (ok && strcmp(t->tgt_schema, t->schema) != 0)
		ok = pg_execf(tgt, err, "CREATE SCHEMA IF NOT EXISTS %s", schema) &&
		     pg_execf(tgt, err, "ALTER TABLE %s SET SCHEMA %s", t->qname,
		              schema);
	if (ok && strcmp(t->tgt_name, t->name) != 0)
		ok = pg_execf(tgt, err, "ALTER TABLE %s RENAME TO %s", moved, name);
	free(schema);
	free(name);
	free(moved);
	if (!ok)
		return err_prefix(err, "renaming table %s to %s: ", t->qname,
		                  t->tgt_qname);
	return true;
}

bool
renames_apply_to(PgConn *tgt, const CatTable *t, bool with_drop, Error *err)
{
	return rename_columns(tgt, t, err) &&
	       (t->tgt_qname == NULL || move_table(tgt, t, with_drop, err));
}

bool
renames_apply(PgConn *tgt, const Catalog *cat, bool with_drop, Error *err)
{
	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].selected &&
		    !renames_apply_to(tgt, &cat->tables[i], with_drop, err))
			return false;
	return true;
}
