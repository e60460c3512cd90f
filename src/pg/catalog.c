/*
 * catalog: source introspection. One query per kind of object; results are
 * copied into owned structs so no PGresult outlives a function.
 */
#include "pg/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/mapping.h"

static char *
xstrdup(const char *s, bool *oom)
{
	char *d = strdup(s);

	if (d == NULL)
		*oom = true;
	return d;
}

typedef struct OidIndex
{
	uint32_t oid;
	int index;
} OidIndex;

static int
cmp_oid_index(const void *a, const void *b)
{
	uint32_t x = ((const OidIndex *) a)->oid, y = ((const OidIndex *) b)->oid;

	return x < y ? -1 : x > y;
}

/*
 * Turns each table's parent oid (0: none) into the parent's index. Oids are
 * unsigned 32-bit values: a long-lived cluster hands out oids above 2^31.
 */
static bool
resolve_parents(Catalog *cat, const uint32_t *parent_oid, Error *err)
{
	OidIndex *by_oid = calloc((size_t) cat->ntables + 1, sizeof(OidIndex));

	if (by_oid == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < cat->ntables; i++)
		by_oid[i] = (OidIndex){cat->tables[i].relid, i};
	qsort(by_oid, (size_t) cat->ntables, sizeof(OidIndex), cmp_oid_index);
	for (int i = 0; i < cat->ntables; i++)
	{
		OidIndex key = {parent_oid[i], 0};
		const OidIndex *hit = parent_oid[i] == 0
		                          ? NULL
		                          : bsearch(&key, by_oid, (size_t) cat->ntables,
		                                    sizeof(OidIndex), cmp_oid_index);

		cat->tables[i].parent = hit != NULL ? hit->index : -1;
	}
	free(by_oid);
	return true;
}

static bool
read_tables(PgConn *conn, Catalog *cat, const char *skip_schema, Error *err)
{
	int v = pg_server_version(conn);
	char sql[2048];
	const char *params[1] = {skip_schema};
	PGresult *res;
	uint32_t *parent_oid;
	bool oom = false, ok;

	/* relispartition exists from 10, partitioned tables ('p') from 10. */
	snprintf(sql, sizeof(sql),
	         "SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence,"
	         " c.relreplident,"
	         " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid"
	         "         AND i.indisprimary),"
	         " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid"
	         "         AND i.indisreplident),"
	         " %s,"
	         " pg_table_size(c.oid), pg_relation_size(c.oid), c.reltuples"
	         " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	         " WHERE c.relkind IN ('r', 'p')"
	         " AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
	         " AND NOT EXISTS (SELECT 1 FROM pg_depend d"
	         "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
	         "   AND d.deptype = 'e')"
	         " AND n.nspname NOT LIKE 'pg\\_toast%%'"
	         " AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
	         " AND c.relpersistence <> 't'"
	         " ORDER BY n.nspname, c.relname",
	         v >= 100000 ? "(SELECT i.inhparent FROM pg_inherits i"
	                       " WHERE i.inhrelid = c.oid AND c.relispartition)"
	                     : "NULL::oid");
	if (!pg_query(conn, sql, 1, params, &res, err))
		return err_prefix(err, "could not list the source's tables: ");
	cat->ntables = PQntuples(res);
	cat->tables = calloc((size_t) cat->ntables + 1, sizeof(CatTable));
	parent_oid = calloc((size_t) cat->ntables + 1, sizeof(uint32_t));
	if (cat->tables == NULL || parent_oid == NULL)
	{
		free(parent_oid);
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < cat->ntables; i++)
	{
		CatTable *t = &cat->tables[i];

		t->relid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		t->schema = xstrdup(PQgetvalue(res, i, 1), &oom);
		t->name = xstrdup(PQgetvalue(res, i, 2), &oom);
		t->qname = pg_qualify(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
		oom |= t->qname == NULL;
		t->relkind = PQgetvalue(res, i, 3)[0];
		t->persistence = PQgetvalue(res, i, 4)[0];
		t->replident = PQgetvalue(res, i, 5)[0];
		t->has_pk = PQgetvalue(res, i, 6)[0] == 't';
		t->has_identity =
		    t->replident == 'f' || (t->replident == 'd' && t->has_pk) ||
		    (t->replident == 'i' && PQgetvalue(res, i, 7)[0] == 't');
		if (!PQgetisnull(res, i, 8))
			parent_oid[i] = (uint32_t) strtoul(PQgetvalue(res, i, 8), NULL, 10);
		t->bytes = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		t->blocks = strtoll(PQgetvalue(res, i, 10), NULL, 10);
		t->reltuples = strtod(PQgetvalue(res, i, 11), NULL);
	}
	PQclear(res);
	ok = !oom ? resolve_parents(cat, parent_oid, err)
	          : err_set(err, ERR_INTERNAL, "out of memory");
	free(parent_oid);
	return ok;
}

static CatTable *
table_by_oid(Catalog *cat, uint32_t relid)
{
	/* Linear, but called once per table: read_columns remembers the last hit
	 * and its rows come ordered by relid. */
	for (int i = 0; i < cat->ntables; i++)
		if (cat->tables[i].relid == relid)
			return &cat->tables[i];
	return NULL;
}

static bool
read_columns(PgConn *conn, Catalog *cat, const char *skip_schema, Error *err)
{
	int v = pg_server_version(conn);
	char sql[2048];
	const char *params[1] = {skip_schema};
	PGresult *res;
	CatTable *t = NULL;
	bool oom = false;
	int n;

	/*
	 * Generated columns (12+) are computed on the target, never copied. A
	 * column travels in binary when the type at the bottom of its domain
	 * chain is built in (same OID and wire form on every server) and has
	 * send/receive functions, except two kinds whose binary form does not
	 * carry the value across (nor in arrays), whatever copy.format says: the
	 * reg* types, sent as the OID of an object that has another OID on the
	 * target (their text is its name), and tsquery, whose receive function
	 * refuses the empty query its send function writes.
	 */
	snprintf(
	    sql, sizeof(sql),
	    "WITH RECURSIVE base(oid, cur) AS ("
	    "  SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.typtype = 'd'"
	    "  UNION ALL SELECT b.oid, t.typbasetype"
	    "  FROM base b JOIN pg_type t ON t.oid = b.cur"
	    "  WHERE t.typtype = 'd')"
	    " SELECT a.attrelid, a.attname, a.atttypid,"
	    " format_type(a.atttypid, a.atttypmod),"
	    " (SELECT bt.oid < 16384 AND bt.typsend <> 0"
	    "    AND bt.typreceive <> 0"
	    "  FROM pg_type bt WHERE bt.oid = coalesce("
	    "   (SELECT b.cur FROM base b JOIN pg_type t ON t.oid = b.cur"
	    "    WHERE b.oid = a.atttypid AND t.typtype <> 'd'), a.atttypid)),"
	    " NOT EXISTS (SELECT FROM pg_type bt, pg_type e"
	    "  WHERE bt.oid = coalesce("
	    "   (SELECT b.cur FROM base b JOIN pg_type t ON t.oid = b.cur"
	    "    WHERE b.oid = a.atttypid AND t.typtype <> 'd'), a.atttypid)"
	    "  AND e.oid IN (bt.oid, bt.typelem) AND e.oid < 16384"
	    "  AND (e.typname = 'tsquery' OR e.typname LIKE 'reg%%'))"
	    " FROM pg_attribute a"
	    " JOIN pg_class c ON c.oid = a.attrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0"
	    " AND NOT a.attisdropped %s"
	    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)"
	    " AND n.nspname NOT LIKE 'pg\\_%%'"
	    " ORDER BY a.attrelid, a.attnum",
	    v >= 120000 ? "AND a.attgenerated = ''" : "");
	if (!pg_query(conn, sql, 1, params, &res, err))
		return err_prefix(err, "could not read the source's columns: ");
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
	{
		uint32_t relid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
		CatColumn *c;
		if (t == NULL || t->relid != relid)
			t = table_by_oid(cat, relid);
		if (t == NULL)
			continue;
		if (t->cols == NULL)
		{
			/* count this table's rows to size the array once */
			int k = i;

			while (k < n &&
			       (uint32_t) strtoul(PQgetvalue(res, k, 0), NULL, 10) == relid)
				k++;
			t->cols = calloc((size_t) (k - i), sizeof(CatColumn));
			if (t->cols == NULL)
			{
				oom = true;
				break;
			}
		}
		c = &t->cols[t->ncols++];
		c->name = xstrdup(PQgetvalue(res, i, 1), &oom);
		c->type_oid = (uint32_t) strtoul(PQgetvalue(res, i, 2), NULL, 10);
		c->type_name = xstrdup(PQgetvalue(res, i, 3), &oom);
		c->binary_carries = PQgetvalue(res, i, 5)[0] == 't';
		c->binary_safe = PQgetvalue(res, i, 4)[0] == 't' && c->binary_carries;
	}
	PQclear(res);
	if (oom)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

/*
 * Every sequence in the user's schemas, whether a column owns it or not: an
 * application may call nextval() on any of them.
 */
static bool
read_sequences(PgConn *conn, Catalog *cat, const char *skip_schema, Error *err)
{
	const char *params[1] = {skip_schema};
	PGresult *res;
	bool oom = false;

	/* 9.6 keeps the options inside each sequence; only check reads it */
	if (!pg_query(
	        conn,
	        cat->server_version >= 100000
	            ? "SELECT n.nspname, c.relname, s.seqincrement, s.seqmin,"
	              " s.seqmax, s.seqcycle, coalesce((SELECT i.refobjid"
	              "  FROM pg_depend i WHERE i.classid = 'pg_class'::regclass"
	              "  AND i.objid = c.oid AND i.refclassid = "
	              "'pg_class'::regclass"
	              "  AND i.deptype = 'i' LIMIT 1), 0),"
	              " coalesce(o.refobjid, 0), coalesce(a.attname, '')"
	              " FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " JOIN pg_sequence s ON s.seqrelid = c.oid"
	              " LEFT JOIN LATERAL (SELECT d.refobjid, d.refobjsubid"
	              "  FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
	              "  AND d.objid = c.oid AND d.refclassid = "
	              "'pg_class'::regclass AND d.deptype IN ('a', 'i')"
	              "  AND d.refobjsubid > 0 LIMIT 1) o ON true"
	              " LEFT JOIN pg_attribute a ON a.attrelid = o.refobjid"
	              "  AND a.attnum = o.refobjsubid"
	              " WHERE c.relkind = 'S'"
	              " AND NOT EXISTS (SELECT 1 FROM pg_depend d"
	              "   WHERE d.classid = 'pg_class'::regclass AND d.objid = "
	              "c.oid"
	              "   AND d.deptype = 'e')"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema',"
	              " $1) AND n.nspname NOT LIKE 'pg\\_%'"
	              " ORDER BY 1, 2"
	            : "SELECT n.nspname, c.relname, 1, -9223372036854775808,"
	              " 9223372036854775807, false, 0, 0, '' FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.relkind = 'S'"
	              " AND NOT EXISTS (SELECT 1 FROM pg_depend d"
	              "   WHERE d.classid = 'pg_class'::regclass AND d.objid = "
	              "c.oid"
	              "   AND d.deptype = 'e')"
	              " AND n.nspname NOT IN ('pg_catalog', 'information_schema',"
	              " $1) AND n.nspname NOT LIKE 'pg\\_%'"
	              " ORDER BY 1, 2",
	        1, params, &res, err))
		return err_prefix(err, "could not list the source's sequences: ");
	cat->nseqs = PQntuples(res);
	cat->seqs = calloc((size_t) cat->nseqs + 1, sizeof(CatSequence));
	if (cat->seqs == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < cat->nseqs; i++)
	{
		CatSequence *s = &cat->seqs[i];

		s->schema = xstrdup(PQgetvalue(res, i, 0), &oom);
		s->name = xstrdup(PQgetvalue(res, i, 1), &oom);
		s->qname = pg_qualify(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		oom |= s->qname == NULL;
		s->increment = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		s->min_value = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		s->max_value = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		s->cycle = PQgetvalue(res, i, 5)[0] == 't';
		s->identity_relid = (uint32_t) strtoul(PQgetvalue(res, i, 6), NULL, 10);
		s->owner_relid = (uint32_t) strtoul(PQgetvalue(res, i, 7), NULL, 10);
		if (s->owner_relid != 0)
			s->owner_col = xstrdup(PQgetvalue(res, i, 8), &oom);
	}
	PQclear(res);
	if (oom)
		return err_set(err, ERR_INTERNAL, "out of memory");
	return true;
}

bool
catalog_read(PgConn *conn, const char *skip_schema, Catalog **out, Error *err)
{
	Catalog *cat = calloc(1, sizeof(*cat));
	char buf[32];

	*out = NULL;
	if (cat == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	cat->server_version = pg_server_version(conn);
	if (!pg_query_value(conn, "SELECT current_setting('block_size')", 0, NULL,
	                    buf, sizeof(buf), err) ||
	    !read_tables(conn, cat, skip_schema, err) ||
	    !read_columns(conn, cat, skip_schema, err) ||
	    !read_sequences(conn, cat, skip_schema, err))
	{
		catalog_free(cat);
		return false;
	}
	cat->block_size = (int) strtol(buf, NULL, 10);
	for (int i = 0; i < cat->ntables; i++)
	{
		CatTable *t = &cat->tables[i];

		if (cat->block_size > 0)
			t->blocks /= cat->block_size;
	}
	*out = cat;
	return true;
}

void
catalog_free(Catalog *cat)
{
	if (cat == NULL)
		return;
	for (int i = 0; i < cat->ntables; i++)
	{
		CatTable *t = &cat->tables[i];

		for (int c = 0; c < t->ncols; c++)
		{
			free(t->cols[c].name);
			free(t->cols[c].type_name);
			free(t->cols[c].tgt_name);
		}
		for (int c = 0; c < t->nremoved; c++)
			free(t->removed[c]);
		free(t->removed);
		free(t->tgt_schema);
		free(t->tgt_name);
		free(t->tgt_qname);
		free(t->cols);
		free(t->schema);
		free(t->name);
		free(t->qname);
	}
	for (int i = 0; i < cat->nseqs; i++)
	{
		free(cat->seqs[i].schema);
		free(cat->seqs[i].name);
		free(cat->seqs[i].qname);
		free(cat->seqs[i].owner_col);
	}
	free(cat->tables);
	free(cat->seqs);
	free(cat);
}

int
catalog_find(const Catalog *cat, const char *schema, const char *name)
{
	for (int i = 0; i < cat->ntables; i++)
		if (strcmp(cat->tables[i].schema, schema) == 0 &&
		    strcmp(cat->tables[i].name, name) == 0)
			return i;
	return -1;
}

/* True when t or one of its ancestors matches one of the patterns. */
static bool
lineage_matches(const Catalog *cat, int idx, const PatternSet *set, bool *used)
{
	bool hit = false;

	for (int depth = 0; idx >= 0 && depth < 64; depth++)
	{
		const CatTable *t = &cat->tables[idx];

		if (mapping_set_match(set, t->schema, t->name, used))
		{
			hit = true;
			if (used == NULL)
				return true;
		}
		idx = t->parent;
	}
	return hit;
}

static bool
select_tables(Catalog *cat, char *const *include, int ninclude,
              char *const *exclude, int nexclude, bool strict, Error *err)
{
	TablePattern *inc = calloc((size_t) ninclude + 1, sizeof(TablePattern));
	TablePattern *exc = calloc((size_t) nexclude + 1, sizeof(TablePattern));
	bool *used = calloc((size_t) ninclude + 1, sizeof(bool));
	PatternSet incset, excset;
	bool ok = false, sets = false;
	int pi = 0, pe = 0;

	if (inc == NULL || exc == NULL || used == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (; pi < ninclude; pi++)
		if (!mapping_parse_pattern(include[pi], &inc[pi], err))
			goto out;
	for (; pe < nexclude; pe++)
		if (!mapping_parse_pattern(exclude[pe], &exc[pe], err))
			goto out;
	/* thousands of patterns (a generated table mapping) against thousands
	   of tables: exact names are looked up, not tried one by one */
	if (!mapping_set_build(&incset, inc, ninclude, err))
		goto out;
	if (!mapping_set_build(&excset, exc, nexclude, err))
	{
		mapping_set_free(&incset);
		goto out;
	}
	sets = true;
	for (int i = 0; i < cat->ntables; i++)
	{
		CatTable *t = &cat->tables[i];
		bool in = ninclude == 0 || lineage_matches(cat, i, &incset, used);

		t->selected =
		    t->relkind == 'r' && in && !lineage_matches(cat, i, &excset, NULL);
	}
	for (int p = 0; strict && p < ninclude; p++)
		if (!used[p])
		{
			if (inc[p].syntax == PATTERN_GLOB)
			{
				err_set(err, ERR_CONFIG,
				        "table pattern \"%s\" matches no table on the source",
				        include[p]);
				err_hint(err, "patterns are schema.table with * and ? "
				              "wildcards; names are case-sensitive");
			}
			else
			{
				err_set(err, ERR_CONFIG, "%s matches no table on the source",
				        inc[p].text);
				err_hint(err, "names in a table mapping are case-sensitive; "
				              "remove the rule if the table is gone");
			}
			goto out;
		}
	ok = true;
out:
	if (sets)
	{
		mapping_set_free(&incset);
		mapping_set_free(&excset);
	}
	for (int i = 0; i < pi; i++)
		mapping_pattern_free(&inc[i]);
	for (int i = 0; i < pe; i++)
		mapping_pattern_free(&exc[i]);
	free(inc);
	free(exc);
	free(used);
	return ok;
}

bool
catalog_select(Catalog *cat, char *const *include, int ninclude,
               char *const *exclude, int nexclude, Error *err)
{
	return select_tables(cat, include, ninclude, exclude, nexclude, true, err);
}

bool
catalog_select_any(Catalog *cat, char *const *include, int ninclude,
                   char *const *exclude, int nexclude, Error *err)
{
	return select_tables(cat, include, ninclude, exclude, nexclude, false, err);
}

bool
catalog_binary_safe(const CatTable *t)
{
	for (int c = 0; c < t->ncols; c++)
		if (!t->cols[c].binary_safe)
			return false;
	return true;
}

bool
catalog_binary_carries(const CatTable *t)
{
	for (int c = 0; c < t->ncols; c++)
		if (!t->cols[c].binary_carries)
			return false;
	return true;
}
