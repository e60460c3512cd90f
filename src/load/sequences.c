/*
 * sequences: setval on the target from the source's values.
 */
#include "load/sequences.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
sequences_sync(PgConn *src, PgConn *tgt, const Catalog *cat, int64_t margin,
               SeqSyncResult *out, Error *err)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < cat->nseqs; i++)
	{
		const CatSequence *s = &cat->seqs[i];
		const char *params[5];
		char margin_text[24];
		PGresult *res = NULL, *set = NULL;
		char *sql = NULL;
		bool on_target, ok;

		if (!pg_relation_exists(tgt, s->qname, &on_target, err))
			return false;
		if (!on_target)
		{
			if (out->missing++ == 0)
				snprintf(out->first_missing, sizeof(out->first_missing), "%s",
				         s->qname);
			continue;
		}
		/* pg_sequence (10+) gives the direction: a margin moves a
		 * descending sequence down */
		if (asprintf(&sql,
		             "SELECT last_value, is_called,"
		             " (SELECT seqincrement FROM pg_catalog.pg_sequence"
		             "  WHERE seqrelid = $1::regclass) FROM %s",
		             s->qname) < 0)
			return err_set(err, ERR_INTERNAL, "out of memory");
		params[0] = s->qname;
		ok = pg_query(src, sql, 1, params, &res, err);
		free(sql);
		if (!ok)
			return err_prefix(err, "sequence %s on the source: ", s->qname);
		snprintf(margin_text, sizeof(margin_text), "%lld", (long long) margin);
		params[0] = s->qname;
		params[1] = PQgetvalue(res, 0, 0);
		/* a margin makes the value "used": the next nextval moves past it */
		params[2] =
		    margin > 0 || PQgetvalue(res, 0, 1)[0] == 't' ? "true" : "false";
		params[3] = margin_text;
		params[4] = PQgetvalue(res, 0, 2);
		ok = pg_query(tgt,
		              "SELECT pg_catalog.setval($1::regclass,"
		              " $2::bigint + $4::bigint * sign($5::bigint)::bigint,"
		              " $3::bool)",
		              5, params, &set, err);
		PQclear(set);
		PQclear(res);
		if (!ok)
			return err_prefix(err, "sequence %s on the target: ", s->qname);
		out->set++;
	}
	return true;
}
