/*
 * validate_columns: the column reader. A relation's columns (type, the
 * type under its domains, array element, range subtype, NOT NULL, whether it sorts as C)
 * and the key validate compares by, read from one server's catalog.
 * Catalog queries only: never reads rows.
 */
#include "verify/validate_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"

void
columns_free(VColumn *c, int n)
{
	for (int i = 0; c != NULL && i < n; i++)
	{
		free(c[i].name);
		free(c[i].type);
	}
	free(c);
}

/* Columns of rel (generated ones left out when skip_generated), in order. */
bool
columns_read(PgConn *c, const char *rel, bool skip_generated, VColumn **out,
             int *n, Error *err)
{
	int v = pg_server_version(c);
	const char *params[1] = {rel};
	char *sql = NULL;
	PGresult *res;
	bool oom = false;

	*out = NULL;
	*n = 0;
	if (asprintf(
	        &sql,
	        "WITH RECURSIVE base(oid, cur) AS ("
	        "  SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.typtype = 'd'"
	        "  UNION ALL SELECT b.oid, t.typbasetype"
	        "  FROM base b JOIN pg_type t ON t.oid = b.cur"
	        "  WHERE t.typtype = 'd')"
	        " SELECT a.attname, format_type(a.atttypid, a.atttypmod), r.oid,"
	        " CASE WHEN r.typcategory = 'A' THEN r.typelem ELSE 0 END,"
	        " a.attnotnull,"
	        " CASE WHEN a.attcollation = 0 THEN true"
	        "  WHEN a.attcollation = 100 THEN (SELECT d.datcollate IN ('C',"
	        "   'POSIX')%s FROM pg_database d"
	        "   WHERE d.datname = current_database())"
	        "  ELSE coalesce((SELECT l.collprovider = 'c' AND l.collcollate IN"
	        "   ('C', 'POSIX') FROM pg_collation l"
	        "   WHERE l.oid = a.attcollation), false) END,"
	        " coalesce((SELECT g.rngsubtype FROM pg_range g"
	        "  WHERE g.rngtypid = r.oid), 0)"
	        " FROM pg_attribute a JOIN pg_type r ON r.oid = coalesce("
	        "  (SELECT b.cur FROM base b JOIN pg_type t ON t.oid = b.cur"
	        "   WHERE b.oid = a.atttypid AND t.typtype <> 'd'), a.atttypid)"
	        " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
	        " AND NOT a.attisdropped%s ORDER BY a.attnum",
	        v >= 150000 ? " AND d.datlocprovider = 'c'" : "",
	        skip_generated && v >= 120000 ? " AND a.attgenerated = ''" : "") <
	    0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!pg_query(c, sql, 1, params, &res, err))
	{
		free(sql);
		return false;
	}
	free(sql);
	*out = calloc((size_t) PQntuples(res) + 1, sizeof(VColumn));
	if (*out == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
	{
		VColumn *col = &(*out)[i];

		col->name = strdup(PQgetvalue(res, i, 0));
		col->type = strdup(PQgetvalue(res, i, 1));
		oom |= col->name == NULL || col->type == NULL;
		col->root = (uint32_t) strtoul(PQgetvalue(res, i, 2), NULL, 10);
		col->elem = (uint32_t) strtoul(PQgetvalue(res, i, 3), NULL, 10);
		col->not_null = PQgetvalue(res, i, 4)[0] == 't';
		col->c_collation = PQgetvalue(res, i, 5)[0] == 't';
		col->range_sub = (uint32_t) strtoul(PQgetvalue(res, i, 6), NULL, 10);
	}
	PQclear(res);
	if (oom)
	{
		columns_free(*out, *n);
		*out = NULL;
		*n = 0;
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

int
columns_find(const VColumn *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The key pgtide compares by: the primary key, else the replica identity
 * index, else the narrowest unique index on NOT NULL columns without
 * expressions or predicate. *names gets the key's columns in index order
 * (none when the table has no such key).
 */
bool
columns_read_key(PgConn *c, const char *rel, char ***names, int *n, Error *err)
{
	const char *params[1] = {rel};
	const char *nk =
	    pg_server_version(c) >= 110000 ? "indnkeyatts" : "indnatts";
	char *sql = NULL;
	PGresult *res;

	*names = NULL;
	*n = 0;
	if (asprintf(&sql,
	             "SELECT a.attname FROM (SELECT i.indrelid, i.indkey,"
	             " i.%s AS nk FROM pg_index i"
	             " WHERE i.indrelid = $1::regclass AND i.indisunique"
	             " AND i.indisvalid AND i.indpred IS NULL"
	             " AND i.indexprs IS NULL AND NOT EXISTS (SELECT 1"
	             "  FROM generate_series(0, i.%s - 1) g(n)"
	             "  JOIN pg_attribute a ON a.attrelid = i.indrelid"
	             "  AND a.attnum = i.indkey[g.n] WHERE NOT a.attnotnull)"
	             " ORDER BY i.indisprimary DESC, i.indisreplident DESC,"
	             " i.%s, i.indexrelid LIMIT 1) i"
	             " CROSS JOIN generate_series(0, i.nk - 1) AS g(n)"
	             " JOIN pg_attribute a ON a.attrelid = i.indrelid"
	             " AND a.attnum = i.indkey[g.n] ORDER BY g.n",
	             nk, nk, nk) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (!pg_query(c, sql, 1, params, &res, err))
	{
		free(sql);
		return false;
	}
	free(sql);
	if (PQntuples(res) > VALIDATE_MAX_KEYS)
	{
		PQclear(res);
		return true; /* compared as a table without a key */
	}
	*names = calloc((size_t) PQntuples(res) + 1, sizeof(char *));
	if (*names == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	*n = PQntuples(res);
	for (int i = 0; i < *n; i++)
		if (((*names)[i] = strdup(PQgetvalue(res, i, 0))) == NULL)
		{
			strv_free(*names, *n);
			*names = NULL;
			*n = 0;
			PQclear(res);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
	PQclear(res);
	return true;
}
