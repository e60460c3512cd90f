/*
 * source: the source server's facts for the load and check.
 */
#include "load/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/stream.h"

bool
source_read(PgConn *src, SourceFacts *out, Error *err)
{
	PGresult *res;

	memset(out, 0, sizeof(*out));
	out->version = pg_server_version(src);
	if (out->version < SOURCE_MIN_VERSION)
		return true;
	if (!pg_query(src,
	              "SELECT pg_catalog.pg_is_in_recovery(), r.rolsuper,"
	              " r.rolreplication, current_setting('wal_level'),"
	              " current_setting('max_replication_slots')::int,"
	              " (SELECT count(*) FROM pg_catalog.pg_replication_slots),"
	              " current_setting('max_wal_senders')::int,"
	              " (SELECT count(*) FROM pg_catalog.pg_stat_replication),"
	              " (SELECT setting::bigint FROM pg_catalog.pg_settings"
	              "   WHERE name = 'wal_sender_timeout')"
	              " FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
	              0, NULL, &res, err))
		return err_prefix(err, "could not read the source's settings: ");
	out->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	out->superuser = PQgetvalue(res, 0, 1)[0] == 't';
	out->replication = PQgetvalue(res, 0, 2)[0] == 't';
	snprintf(out->wal_level, sizeof(out->wal_level), "%s",
	         PQgetvalue(res, 0, 3));
	out->max_slots = (int) strtol(PQgetvalue(res, 0, 4), NULL, 10);
	out->used_slots = (int) strtol(PQgetvalue(res, 0, 5), NULL, 10);
	out->max_senders = (int) strtol(PQgetvalue(res, 0, 6), NULL, 10);
	out->used_senders = (int) strtol(PQgetvalue(res, 0, 7), NULL, 10);
	out->sender_timeout_ms = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
	PQclear(res);
	return true;
}

bool
source_ready(const PgConn *src, const SourceFacts *f, Error *err)
{
	if (f->version < SOURCE_MIN_VERSION)
	{
		err_set(err, ERR_SOURCE, "source server version %d is not supported",
		        f->version);
		return err_hint(err, "pgtide needs PostgreSQL 10 or later on the "
		                     "source (logical decoding with pgoutput)");
	}
	if (f->in_recovery)
	{
		err_set(err, ERR_SOURCE, "the source %s is a standby (in recovery)",
		        pg_where(src));
		return err_hint(err, "point --source at the primary");
	}
	if (strcmp(f->wal_level, "logical") != 0)
	{
		err_set(err, ERR_SOURCE,
		        "wal_level is \"%s\" on the source %s; logical decoding needs "
		        "\"logical\"",
		        f->wal_level, pg_where(src));
		return err_hint(err, "set wal_level = logical in the source's "
		                     "postgresql.conf and restart it");
	}
	if (!f->superuser && !f->replication)
	{
		err_set(err, ERR_SOURCE,
		        "the source role has neither REPLICATION nor SUPERUSER");
		return err_hint(err, "ALTER ROLE ... REPLICATION on the source, or "
		                     "connect as a role that has it");
	}
	return true;
}

/*
 * The snapshot's txids, as recorded for each table. An imported logical-slot
 * snapshot can report xmin above xmax (the slot's builder took xmin from a
 * later running-xacts record than its xmax), which txid_snapshot's input
 * refuses. The server tests xmin first, so every txid below xmin is visible
 * and none from it on: "xmin:xmin:" says exactly that. Writing "xmax:xmax:"
 * once recorded the txids between the two as invisible, though the load had
 * copied their rows.
 */
#define TXID_SNAPSHOT_SQL                                                \
	"SELECT CASE WHEN txid_snapshot_xmin(s) > txid_snapshot_xmax(s)"     \
	" THEN txid_snapshot_xmin(s) || ':' || txid_snapshot_xmin(s) || ':'" \
	" ELSE s::text END FROM (SELECT txid_current_snapshot() AS s) x"

bool
source_txids_now(PgConn *src, char *out, size_t cap, Error *err)
{
	return pg_query_value(src, TXID_SNAPSHOT_SQL, 0, NULL, out, cap, err);
}

bool
source_snapshot_txids(PgConn *src, const char *snapshot, char *out, size_t cap,
                      Error *err)
{
	bool ok = stream_begin_snapshot(src, snapshot, err) &&
	          source_txids_now(src, out, cap, err) &&
	          pg_exec(src, "COMMIT", err);

	if (!ok)
	{
		Error ignored = ERR_INIT;

		/* leave the session out of the failed transaction for the next try */
		pg_exec(src, "ROLLBACK", &ignored);
	}
	return ok;
}

bool
source_row_security_tables(PgConn *src, const Catalog *cat, int **idx, int *n,
                           Error *err)
{
	PGresult *res;

	*idx = NULL;
	*n = 0;
	if (!pg_query(src,
	              "SELECT n.nspname, c.relname FROM pg_class c"
	              " JOIN pg_namespace n ON n.oid = c.relnamespace"
	              " WHERE c.relrowsecurity AND c.relkind IN ('r', 'p')"
	              " AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles"
	              "  WHERE rolname = current_user)"
	              " AND (c.relforcerowsecurity"
	              "  OR NOT pg_has_role(c.relowner, 'USAGE')) ORDER BY 1, 2",
	              0, NULL, &res, err))
		return false;
	*idx = malloc(sizeof(int) * ((size_t) PQntuples(res) + 1));
	if (*idx == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int t = catalog_find(cat, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));

		if (t >= 0 && cat->tables[t].selected)
			(*idx)[(*n)++] = t;
	}
	PQclear(res);
	return true;
}

bool
source_refuse_row_security(PgConn *src, const Catalog *cat, Error *err)
{
	char names[512] = "";
	size_t used = 0;
	int *idx, n;

	if (!source_row_security_tables(src, cat, &idx, &n, err))
		return false;
	for (int i = 0; i < n && i < 5 && used < sizeof(names); i++)
		used += (size_t) snprintf(names + used, sizeof(names) - used, "%s%s",
		                          i > 0 ? ", " : "", cat->tables[idx[i]].qname);
	free(idx);
	if (n == 0)
		return true;
	err_set(err, ERR_BLOCKED,
	        "row-level security hides rows of %d table%s from the source "
	        "role: %s%s",
	        n, n == 1 ? "" : "s", names, n > 5 ? ", ..." : "");
	err_detail(err, "the copy would take only the rows the policies show; "
	                "pgtide reads with row_security off, so it would fail "
	                "instead (check: blocker row_security)");
	return err_hint(err, "connect as a role with BYPASSRLS or a superuser, "
	                     "or leave the tables out with -T");
}
