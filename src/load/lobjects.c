/*
 * lobjects: passes that make the target's large objects match the
 * source's (lobjects.h says how). Reads the source, writes on the target
 * only large objects and the task's state.
 */
#include "load/lobjects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fault.h"
#include "base/log.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* large objects listed (and digested on the source) per query */
#define LO_BATCH 100
/* a GRANT per grantee of one large object */
#define LO_GRANTS_MAX ((size_t) 1 << 20)

/*
 * Each source large object with its digest: an md5 over its owner, its
 * privileges and the md5 of each chunk of its contents, so nothing but the
 * digests crosses the network and a chunk's worth of memory is all the
 * server needs. INV_READ (0x40000) opens it for its size.
 */
static const char *const list_sql =
    "SELECT m.oid, pg_catalog.pg_get_userbyid(m.lomowner),"
    " coalesce(m.lomacl::text, ''),"
    " md5(pg_catalog.pg_get_userbyid(m.lomowner) || '/'"
    "  || coalesce(m.lomacl::text, '') || '/' || coalesce((SELECT"
    "   string_agg(md5(pg_catalog.lo_get(m.oid, o, " STR(
        LOBJECTS_CHUNK) ")),"
                        "    '' ORDER BY o)"
                        "   FROM generate_series(0::bigint, "
                        "pg_catalog.lo_lseek64("
                        "    pg_catalog.lo_open(m.oid, 262144), 0, 2) - "
                        "1, " STR(
                            LOBJECTS_CHUNK) ")"
                                            "   AS o), ''))"
                                            " FROM "
                                            "pg_catalog.pg_largeobject_"
                                            "metadata m WHERE m.oid > $1::oid"
                                            " ORDER BY m.oid LIMIT " STR(
                                                LO_BATCH);

/* A statement whose result is not needed. */
static bool
run(PgConn *conn, const char *sql, int nparams, const char *const *params,
    Error *err)
{
	PGresult *res;

	if (!pg_query(conn, sql, nparams, params, &res, err))
		return false;
	PQclear(res);
	return true;
}

static bool
stopping(atomic_int *stop, Error *err)
{
	if (stop != NULL && *stop)
		return err_set(err, ERR_INTERRUPTED, "interrupted");
	return false;
}

bool
lobjects_count(PgConn *src, int64_t *n, Error *err)
{
	char buf[32];

	if (!pg_query_value(src,
	                    "SELECT count(*) FROM"
	                    " pg_catalog.pg_largeobject_metadata",
	                    0, NULL, buf, sizeof(buf), err))
		return err_prefix(err, "could not count the source's large "
		                       "objects: ");
	*n = strtoll(buf, NULL, 10);
	return true;
}

/* Whether a role of that name exists on the target. */
static bool
role_exists(PgConn *tgt, const char *role, bool *exists, Error *err)
{
	const char *params[1] = {role};
	PGresult *res;

	if (!pg_query(tgt, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
	              1, params, &res, err))
		return false;
	*exists = PQntuples(res) == 1;
	PQclear(res);
	return true;
}

/*
 * Reads one role name of an aclitem's text at *p ("name", quoted when it
 * needs to be, or empty for PUBLIC) into out; leaves *p after it.
 */
static void
acl_name(const char **p, char *out, size_t cap)
{
	size_t n = 0;
	const char *s = *p;

	if (*s == '"')
	{
		for (s++; *s && !(*s == '"' && s[1] != '"'); s++)
		{
			if (*s == '"')
				s++;
			if (n + 1 < cap)
				out[n++] = *s;
		}
		if (*s == '"')
			s++;
	}
	else
		for (; *s && *s != '=' && *s != '/' && *s != ',' && *s != '}'; s++)
			if (n + 1 < cap)
				out[n++] = *s;
	out[n] = '\0';
	*p = s;
}

/*
 * Gives the copy the source's owner and grants (aclitem[] text such as
 * {alice=rw/alice,=r/alice}: r is SELECT, w UPDATE). A role the target
 * lacks is named in a warning, and the copy keeps pgtide's role as owner.
 */
static bool
set_owner_and_grants(PgConn *tgt, uint32_t oid, const char *owner,
                     const char *acl, Error *err)
{
	Buf sql = BUF_INIT(LO_GRANTS_MAX);
	bool exists, ok = true;
	char *q;

	if (!role_exists(tgt, owner, &exists, err))
		return false;
	if (!exists)
		log_warn("large object %u: its owner %s is not a role on the "
		         "target; it is owned by the role pgtide connects as",
		         oid, owner);
	else
	{
		q = pg_quote_ident(owner);
		if (q == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		buf_printf(&sql, NULL, "ALTER LARGE OBJECT %u OWNER TO %s;", oid, q);
		free(q);
	}
	for (const char *p = acl[0] == '{' ? acl + 1 : acl; ok && *p && *p != '}';)
	{
		char grantee[256], privs[32];
		size_t np = 0;

		acl_name(&p, grantee, sizeof(grantee));
		if (*p == '=')
			p++;
		for (; *p && *p != '/'; p++)
			if (np + 1 < sizeof(privs))
				privs[np++] = *p;
		privs[np] = '\0';
		/* the grantor, then the next item */
		while (*p && *p != ',' && *p != '}')
			p++;
		if (*p == ',')
			p++;
		if (grantee[0] != '\0' &&
		    (!role_exists(tgt, grantee, &exists, err) || !exists))
		{
			if (err_is_set(err))
				ok = false;
			else
				log_warn("large object %u: role %s, granted %s on it, is "
				         "not a role on the target; not granted",
				         oid, grantee, privs);
			continue;
		}
		q = grantee[0] != '\0' ? pg_quote_ident(grantee) : strdup("PUBLIC");
		if (q == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		if (strchr(privs, 'r') != NULL)
			buf_printf(&sql, NULL, "GRANT SELECT ON LARGE OBJECT %u TO %s;",
			           oid, q);
		if (strchr(privs, 'w') != NULL)
			buf_printf(&sql, NULL, "GRANT UPDATE ON LARGE OBJECT %u TO %s;",
			           oid, q);
		free(q);
	}
	if (ok && buf_len(&sql) > 0)
		ok = buf_check(&sql, err) && pg_exec(tgt, buf_str(&sql), err);
	buf_free(&sql);
	return ok;
}

/* Streams the contents chunk by chunk; tgt's copy exists and is empty. */
static bool
copy_contents(PgConn *src, PgConn *tgt, uint32_t oid, int64_t *bytes,
              Error *err)
{
	char oid_text[16], off_text[24];
	const char *params[3] = {oid_text, off_text, NULL};

	snprintf(oid_text, sizeof(oid_text), "%u", oid);
	for (int64_t off = 0;; off += LOBJECTS_CHUNK)
	{
		PGresult *res;
		size_t hex;
		bool ok;

		snprintf(off_text, sizeof(off_text), "%lld", (long long) off);
		if (!pg_query(src,
		              "SELECT pg_catalog.lo_get($1::oid, $2::bigint, " STR(
		                  LOBJECTS_CHUNK) ")",
		              2, params, &res, err))
			return false;
		/* "\x" then two digits a byte (bytea_output is pinned to hex) */
		hex = strlen(PQgetvalue(res, 0, 0));
		params[2] = PQgetvalue(res, 0, 0);
		ok =
		    hex <= 2 ||
		    run(tgt, "SELECT pg_catalog.lo_put($1::oid, $2::bigint, $3::bytea)",
		        3, params, err);
		PQclear(res);
		if (!ok)
			return false;
		*bytes += hex > 2 ? (int64_t) (hex - 2) / 2 : 0;
		if (hex - 2 < (size_t) LOBJECTS_CHUNK * 2)
			return true;
		fault_point("lobjects.chunk");
	}
}

/*
 * Copies one large object in one target transaction, with its state
 * record: a kill leaves the old copy (or none) and the old record.
 */
static bool
copy_one(PgConn *src, PgConn *tgt, const State *st, uint32_t oid,
         const char *owner, const char *acl, const char *digest, bool known,
         int64_t *bytes, Error *err)
{
	char oid_text[16];
	const char *params[1] = {oid_text};
	PGresult *res = NULL;
	bool ok;

	snprintf(oid_text, sizeof(oid_text), "%u", oid);
	if (!pg_exec(tgt, "BEGIN", err))
		return false;
	if (known)
		ok = run(tgt,
		         "SELECT pg_catalog.lo_unlink(oid) FROM"
		         " pg_catalog.pg_largeobject_metadata WHERE oid = $1::oid",
		         1, params, err);
	else
	{
		ok = pg_query(tgt,
		              "SELECT 1 FROM pg_catalog.pg_largeobject_metadata"
		              " WHERE oid = $1::oid",
		              1, params, &res, err);
		if (ok && PQntuples(res) > 0)
		{
			err_set(err, ERR_TARGET,
			        "large object %u already exists on the target, and "
			        "pgtide did not copy it there",
			        oid);
			err_hint(err,
			         "the source has one with the same oid: remove the "
			         "target's (SELECT lo_unlink(%u)) if it is not "
			         "needed, then run again",
			         oid);
			ok = false;
		}
		PQclear(res);
	}
	ok = ok &&
	     run(tgt, "SELECT pg_catalog.lo_create($1::oid)", 1, params, err) &&
	     copy_contents(src, tgt, oid, bytes, err) &&
	     set_owner_and_grants(tgt, oid, owner, acl, err) &&
	     state_lo_set(st, oid, digest, err);
	if (ok)
		fault_point("lobjects.before_commit");
	if (ok && pg_exec(tgt, "COMMIT", err))
		return true;
	{
		Error ignored = ERR_INIT;

		pg_exec(tgt, "ROLLBACK", &ignored);
	}
	return err_prefix(err, "large object %u: ", oid);
}

/* Copies the source's large objects that are new or changed. */
static bool
copy_pass(PgConn *src, PgConn *tgt, const State *st, atomic_int *stop,
          LoSync *out, Error *err)
{
	uint32_t after = 0;
	uint32_t known[LO_BATCH];
	char(*digests)[STATE_LO_DIGEST] = calloc(LO_BATCH, STATE_LO_DIGEST);
	bool ok = digests != NULL;

	if (!ok)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (;;)
	{
		char after_text[16];
		const char *params[1] = {after_text};
		PGresult *res;
		int n, nknown = 0, k = 0;

		snprintf(after_text, sizeof(after_text), "%u", after);
		if (!pg_query(src, list_sql, 1, params, &res, err))
		{
			ok = err_prefix(err, "could not read the source's large "
			                     "objects: ");
			break;
		}
		n = PQntuples(res);
		ok = n == 0 ||
		     state_lo_range(
		         st, (uint32_t) strtoul(PQgetvalue(res, 0, 0), NULL, 10),
		         (uint32_t) strtoul(PQgetvalue(res, n - 1, 0), NULL, 10), known,
		         digests, LO_BATCH, &nknown, err);
		for (int i = 0; ok && i < n; i++)
		{
			uint32_t oid = (uint32_t) strtoul(PQgetvalue(res, i, 0), NULL, 10);
			const char *digest = PQgetvalue(res, i, 3);
			bool is_known;

			while (k < nknown && known[k] < oid)
				k++;
			is_known = k < nknown && known[k] == oid;
			out->seen++;
			after = oid;
			if (is_known && strcmp(digests[k], digest) == 0)
				continue;
			ok = !stopping(stop, err) &&
			     copy_one(src, tgt, st, oid, PQgetvalue(res, i, 1),
			              PQgetvalue(res, i, 2), digest, is_known, &out->bytes,
			              err);
			out->copied += ok;
		}
		PQclear(res);
		if (!ok || n < LO_BATCH)
			break;
	}
	free(digests);
	return ok;
}

/* Removes the copies whose source large object is gone. */
static bool
remove_pass(PgConn *src, PgConn *tgt, const State *st, LoSync *out, Error *err)
{
	uint32_t oids[LO_BATCH];
	uint32_t after = 0;
	int n;

	do
	{
		Buf arr = BUF_INIT(LO_BATCH * 12 + 3);
		const char *params[1];
		PGresult *res;
		bool ok;

		if (!state_lo_after(st, after, oids, LO_BATCH, &n, err))
			return false;
		if (n == 0)
			break;
		after = oids[n - 1];
		buf_add_str(&arr, "{", NULL);
		for (int i = 0; i < n; i++)
			buf_printf(&arr, NULL, "%s%u", i ? "," : "", oids[i]);
		buf_add_str(&arr, "}", NULL);
		if (!buf_check(&arr, err))
			return false;
		params[0] = buf_str(&arr);
		ok = pg_query(src,
		              "SELECT o FROM unnest($1::oid[]) AS o WHERE NOT EXISTS"
		              " (SELECT 1 FROM pg_catalog.pg_largeobject_metadata m"
		              "  WHERE m.oid = o)",
		              1, params, &res, err);
		buf_free(&arr);
		if (!ok)
			return false;
		for (int i = 0; ok && i < PQntuples(res); i++)
		{
			const char *p[1] = {PQgetvalue(res, i, 0)};
			uint32_t oid = (uint32_t) strtoul(p[0], NULL, 10);

			ok = pg_exec(tgt, "BEGIN", err) &&
			     run(tgt,
			         "SELECT pg_catalog.lo_unlink(oid) FROM"
			         " pg_catalog.pg_largeobject_metadata WHERE oid = $1::oid",
			         1, p, err) &&
			     state_lo_forget(st, oid, err) && pg_exec(tgt, "COMMIT", err);
			out->removed += ok;
		}
		PQclear(res);
		if (!ok)
		{
			Error ignored = ERR_INIT;

			pg_exec(tgt, "ROLLBACK", &ignored);
			return false;
		}
	} while (n == LO_BATCH);
	return true;
}

bool
lobjects_sync(PgConn *src, PgConn *tgt, const State *st, atomic_int *stop,
              LoSync *out, Error *err)
{
	memset(out, 0, sizeof(*out));
	return copy_pass(src, tgt, st, stop, out, err) &&
	       remove_pass(src, tgt, st, out, err);
}
