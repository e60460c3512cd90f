/*
 * stream: publication, slot and exported snapshot on the source.
 */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
stream_create_slot(const char *source_uri, const char *slot, bool temporary,
                   SlotSnapshot *out, Error *err)
{
	PgConn *conn;
	PGresult *res;
	char sql[256];
	int v;

	memset(out, 0, sizeof(*out));
	if (!pg_connect(source_uri, ERR_SOURCE, PG_CONN_REPLICATION,
	                "pgtide snapshot", 5000, &conn, err))
		return false;
	v = pg_server_version(conn);
	/* 15 replaced EXPORT_SNAPSHOT with an option list. */
	snprintf(sql, sizeof(sql),
	         "CREATE_REPLICATION_SLOT %s %s LOGICAL pgoutput %s", slot,
	         temporary ? "TEMPORARY" : "",
	         v >= 150000 ? "(SNAPSHOT 'export')" : "EXPORT_SNAPSHOT");
	if (!pg_query(conn, sql, 0, NULL, &res, err))
	{
		if (pg_err_is(err, "53400"))
			err_hint(err, "raise max_replication_slots on the source, or drop "
			              "unused slots (see pg_replication_slots)");
		err_prefix(err, "could not create replication slot \"%s\": ", slot);
		pg_close(conn);
		return false;
	}
	if (PQntuples(res) != 1 || PQnfields(res) < 3 ||
	    !lsn_parse(PQgetvalue(res, 0, 1), &out->consistent_lsn))
	{
		PQclear(res);
		pg_close(conn);
		return err_set(err, ERR_SOURCE,
		               "unexpected reply to CREATE_REPLICATION_SLOT");
	}
	snprintf(out->slot, sizeof(out->slot), "%s", slot);
	snprintf(out->snapshot, sizeof(out->snapshot), "%s", PQgetvalue(res, 0, 2));
	out->temporary = temporary;
	out->conn = conn;
	PQclear(res);
	return true;
}

void
stream_release(SlotSnapshot *snap)
{
	pg_close(snap->conn);
	snap->conn = NULL;
}

bool
stream_slot_exists(PgConn *src, const char *slot, bool *exists, Error *err)
{
	const char *params[1] = {slot};
	PGresult *res;

	if (!pg_query(src,
	              "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", 1,
	              params, &res, err))
		return false;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return true;
}

bool
stream_drop_slot(PgConn *src, const char *slot, Error *err)
{
	const char *params[1] = {slot};
	PGresult *res;

	if (!pg_query(src,
	              "SELECT pg_drop_replication_slot(slot_name)"
	              " FROM pg_replication_slots WHERE slot_name = $1",
	              1, params, &res, err))
		return err_prefix(err,
		                  "could not drop replication slot \"%s\": ", slot);
	PQclear(res);
	return true;
}

bool
stream_create_publication(PgConn *src, const char *name, char *const *qtables,
                          int ntables, Error *err)
{
	const char *params[1] = {name};
	PGresult *res;
	char *qname, *sql;
	size_t cap, len;
	bool exists, ok;

	if (!pg_query(src, "SELECT 1 FROM pg_publication WHERE pubname = $1", 1,
	              params, &res, err))
		return false;
	exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists)
		return true;
	qname = pg_quote_ident(name);
	if (qname == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	cap = strlen(qname) + 64;
	for (int i = 0; i < ntables; i++)
		cap += strlen(qtables[i]) + 2;
	sql = malloc(cap);
	if (sql == NULL)
	{
		free(qname);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	len = (size_t) snprintf(sql, cap, "CREATE PUBLICATION %s%s", qname,
	                        ntables > 0 ? " FOR TABLE " : "");
	for (int i = 0; i < ntables; i++)
		len += (size_t) snprintf(sql + len, cap - len, "%s%s", i ? ", " : "",
		                         qtables[i]);
	ok = pg_exec(src, sql, err);
	free(sql);
	free(qname);
	if (!ok)
		return err_prefix(err, "could not create publication \"%s\": ", name);
	return true;
}

bool
stream_free_slots(PgConn *src, int *free_slots, Error *err)
{
	char buf[32];

	if (!pg_query_value(src,
	                    "SELECT current_setting('max_replication_slots')::int"
	                    " - (SELECT count(*) FROM pg_replication_slots)",
	                    0, NULL, buf, sizeof(buf), err))
		return false;
	*free_slots = (int) strtol(buf, NULL, 10);
	return true;
}
