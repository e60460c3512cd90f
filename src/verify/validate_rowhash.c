/*
 * validate_rowhash: the SQL expression that hashes a row, built column by
 * column for each type, so that equal values hash alike on both servers
 * whatever their versions and settings: typed extended hashes (both
 * servers 11 or later) or md5 of the row's text. Builds text only: no
 * I/O.
 */
#include "verify/validate_int.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "pg/pg.h"

/* A per-column constant standing for NULL (splitmix64 of the position). */
static int64_t
null_marker(int position)
{
	uint64_t z = (uint64_t) position * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (int64_t) (z ^ (z >> 31));
}

/*
 * Geometric types: no hash of their own; their binary form holds the
 * float8s as they are, where their text prints them as the server prints
 * a float.
 */
static const struct
{
	uint32_t oid;
	const char *send;
} geometric[] = {
    {600, "point_send"},  {601, "lseg_send"}, {602, "path_send"},
    {603, "box_send"},    {604, "poly_send"}, {628, "line_send"},
    {718, "circle_send"},
};

/* The send function of a geometric type, or NULL. */
static const char *
geometric_send(uint32_t root)
{
	for (size_t i = 0; i < sizeof(geometric) / sizeof(geometric[0]); i++)
		if (geometric[i].oid == root)
			return geometric[i].send;
	return NULL;
}

/*
 * The hash of column s (target column tc) at `position`, when both servers
 * have the extended hash functions (11 and later): the type's own hash of
 * its binary value for types whose hash is exact and the same on every
 * server (integers, floats, times, uuid, text bytes), else the hash of its
 * text. Seeding with the position tells columns apart; a NULL becomes a
 * per-column constant, so NULL and '' differ. A type's text costs its
 * output function, and a row's text (ROW()::text) several times that, which
 * is why the row is not hashed as one text here.
 *
 * Floats hash by value: -0 equals 0, and every NaN equals NaN, whatever
 * either server prints. So do arrays and ranges of floats, through the
 * array's and the range's own hash of their elements and bounds: an 11
 * server prints a float in 17 digits where 12 and later print the
 * shortest exact form, so their texts differ for equal values. An array's
 * bounds, which its hash leaves out, are hashed beside it; a NULL element
 * hashes as 0 and a 0 as the seed (the position, never 0), so they differ.
 * Geometric types (points, boxes, ...), made of float8s but without a hash
 * function, hash their binary form. Numeric, interval and jsonb hash through their text
 * (their hash functions ignore display scale, equate 1 day with 24 hours,
 * or hash {} like []). Enums hash their label (their hash is of the oid).
 * XXX(#10): a float inside a composite still hashes through its text, so
 * an 11 server and a newer one disagree on it.
 */
static bool
column_hash(const VColumn *s, const VColumn *tc, int position,
            bool text_as_utf8, Buf *sql, Error *err)
{
	static const struct
	{
		uint32_t oid;
		const char *fn;
		const char *cast; /* the column as the function's argument */
	} typed[] = {
	    {16, "hashint4extended", "int4"}, /* bool */
	    {20, "hashint8extended", "int8"},
	    {21, "hashint2extended", "int2"},
	    {23, "hashint4extended", "int4"},
	    {26, "hashoidextended", "oid"},
	    {700, "hashfloat4extended", "float4"},
	    {701, "hashfloat8extended", "float8"},
	    /* under TimeZone UTC a timestamptz converts to the same instant; a
	     * date is left to its text (past 294276 AD it is no timestamp) */
	    {1114, "timestamp_hash_extended", "timestamp"},
	    {1184, "timestamp_hash_extended", "timestamp"},
	    {1083, "time_hash_extended", "time"},
	    {1266, "timetz_hash_extended", "timetz"},
	    {2950, "uuid_hash_extended", "uuid"},
	    {25, "hashtextextended", "text COLLATE \"C\""},
	    {1043, "hashtextextended", "text COLLATE \"C\""},
	    {1042, "hashbpcharextended", "bpchar COLLATE \"C\""},
	};
	char *id = pg_quote_ident(s->name);
	bool same = tc != NULL && s->root == tc->root && s->elem == tc->elem;
	const char *fn = "hashtextextended", *cast = "text COLLATE \"C\"";
	bool ok;

	if (id == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (same && (s->elem == 700 || s->elem == 701))
	{
		ok = buf_printf(sql, err,
		                "coalesce(hash_array_extended(%s, %d) #"
		                " hashtextextended(array_dims(%s), %d), %" PRId64 ")",
		                id, position, id, position, null_marker(position));
		free(id);
		return ok;
	}
	if (same && geometric_send(s->root) != NULL)
	{
		ok = buf_printf(sql, err,
		                "coalesce(hashtextextended(encode(%s(%s), 'hex'),"
		                " %d), %" PRId64 ")",
		                geometric_send(s->root), id, position,
		                null_marker(position));
		free(id);
		return ok;
	}
	if (tc != NULL && s->range_sub == tc->range_sub &&
	    (s->range_sub == 700 || s->range_sub == 701))
	{
		ok = buf_printf(sql, err,
		                "coalesce(hash_range_extended(%s, %d), %" PRId64 ")",
		                id, position, null_marker(position));
		free(id);
		return ok;
	}
	for (size_t i = 0; same && i < sizeof(typed) / sizeof(typed[0]); i++)
		if (typed[i].oid == s->root)
		{
			fn = typed[i].fn;
			cast = typed[i].cast;
		}
	/* bpchar's hash leaves out its trailing spaces, as its cast to text
	   does */
	if (text_as_utf8 && (strcmp(fn, "hashtextextended") == 0 ||
	                     strcmp(fn, "hashbpcharextended") == 0))
		ok = buf_printf(sql, err,
		                "coalesce(hashtextextended(encode(convert_to(%s::text, "
		                "'UTF8'), 'escape'), %d), %" PRId64 ")",
		                id, position, null_marker(position));
	else
		ok = buf_printf(sql, err, "coalesce(%s(%s::%s, %d), %" PRId64 ")", fn,
		                id, cast, position, null_marker(position));
	free(id);
	return ok;
}

/*
 * How column s (target column tc) enters the row text hashed with md5, the
 * form used when a server is older than 11. Floats go through their send
 * functions: 11 and earlier print 17 significant digits even where fewer
 * round-trip, 12 and later the shortest exact form; NaN first becomes the
 * one canonical NaN, whose bits are otherwise free. So do the floats
 * inside arrays, geometric types and ranges of floats, through the
 * binary form of the whole value (which holds its float8s as they are).
 */
static bool
column_text(const VColumn *s, const VColumn *tc, Buf *sql, Error *err)
{
	char *id = pg_quote_ident(s->name);
	bool same = tc != NULL && s->root == tc->root && s->elem == tc->elem;
	bool ok;

	if (id == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (same && (s->root == 700 || s->root == 701))
	{
		const char *ty = s->root == 700 ? "float4" : "float8";

		ok = buf_printf(
		    sql, err,
		    "%ssend(CASE WHEN %s = 'NaN' THEN 'NaN'::%s ELSE %s::%s END)", ty,
		    id, ty, id, ty);
	}
	else if (same && (s->elem == 700 || s->elem == 701))
		ok = buf_printf(sql, err, "array_send(%s::%s[])", id,
		                s->elem == 700 ? "float4" : "float8");
	else if (same && geometric_send(s->root) != NULL)
		ok = buf_printf(sql, err, "%s(%s)", geometric_send(s->root), id);
	else if (tc != NULL && s->range_sub == tc->range_sub &&
	         (s->range_sub == 700 || s->range_sub == 701))
		ok = buf_printf(sql, err, "range_send(%s)", id);
	else
		ok = buf_add_str(sql, id, err);
	free(id);
	return ok;
}

/*
 * Appends the bigint hash of a row of source columns sc (nsc, each also
 * among the target's tc) to sql: the XOR of column_hash over the columns
 * with the extended hashes (hash_ext), else md5 of the row's text built
 * by column_text.
 */
bool
rowhash_expr(bool hash_ext, bool text_as_utf8, const VColumn *sc, int nsc,
             const VColumn *tc, int ntc, Buf *sql, Error *err)
{
	bool ok = true;

	if (hash_ext)
	{
		buf_add_str(sql, "(0::int8", err);
		for (int i = 0; ok && i < nsc; i++)
			ok = buf_add_str(sql, " # ", err) &&
			     column_hash(&sc[i], &tc[columns_find(tc, ntc, sc[i].name)],
			                 i + 1, text_as_utf8, sql, err);
		return ok && buf_add_str(sql, ")", err);
	}
	buf_add_str(sql, "('x' || left(md5(", err);
	if (text_as_utf8)
		buf_add_str(sql, "convert_to(", err);
	buf_add_str(sql, "ROW(", err);
	for (int i = 0; ok && i < nsc; i++)
		ok = (i == 0 || buf_add_str(sql, ", ", err)) &&
		     column_text(&sc[i], &tc[columns_find(tc, ntc, sc[i].name)], sql,
		                 err);
	return ok && buf_add_str(sql, ")::text", err) &&
	       (!text_as_utf8 || buf_add_str(sql, ", 'UTF8')", err)) &&
	       buf_add_str(sql, "), 16))::bit(64)::bigint", err);
}
