/*
 * sequences: setval on the target from the source's values, one sequence
 * at a time; never writes to the source.
 */
#include "load/sequences.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/subset.h"

SeqPlace
sequences_place(const CatSequence *s, int64_t last_value, bool is_called,
                int64_t margin, int64_t *value, bool *called)
{
	__int128 v;

	*value = last_value;
	*called = is_called;
	if (s->cycle || margin == 0)
		return SEQ_PLACE_EXACT;
	/* counted in increments: a sequence that hands out every third value
	   (one of several servers sharing a key space) stays on its own */
	v = (__int128) last_value + (__int128) margin * s->increment;
	if (v > s->max_value || v < s->min_value)
	{
		*value = v > s->max_value ? s->max_value : s->min_value;
		*called = true;
		return SEQ_PLACE_CLAMPED;
	}
	*value = (int64_t) v;
	return SEQ_PLACE_AHEAD;
}

/* x mod n in [0, n), whatever x's sign. */
static int64_t
mod_of(__int128 x, int64_t n)
{
	__int128 m = x % n;

	return (int64_t) (m < 0 ? m + n : m);
}

bool
sequences_space(const CatSequence *s, int64_t value, bool called, SeqSpacing sp,
                int64_t *first, int64_t *increment)
{
	__int128 inc = (__int128) s->increment * sp.n, next;
	int64_t want = mod_of(sp.k, sp.n);

	if (s->cycle || inc > INT64_MAX || inc < INT64_MIN)
		return false;
	/* the first value not yet counted as used, in the direction of travel */
	next = (__int128) value + (called ? (s->increment > 0 ? 1 : -1) : 0);
	if (s->increment > 0)
		next += mod_of((__int128) want - next, sp.n);
	else
		next -= mod_of(next - (__int128) want, sp.n);
	if (next > s->max_value || next < s->min_value)
		return false;
	*first = (int64_t) next;
	*increment = (int64_t) inc;
	return true;
}

/* Appends "sep item" to list (of cap bytes), ending it with "..." when full. */
static void
name_add(char *list, size_t cap, const char *item)
{
	size_t len = strlen(list);
	const char *sep = len > 0 ? "; " : "";

	if (len >= 3 && strcmp(list + len - 3, "...") == 0)
		return;
	if (len + strlen(sep) + strlen(item) + 4 >= cap)
	{
		snprintf(list + len, cap - len, "%s...", sep);
		return;
	}
	snprintf(list + len, cap - len, "%s%s", sep, item);
}

/* A failure that only a reachable server can tell apart from a lost one. */
static bool
connection_lost(PgConn *conn, const Error *e)
{
	return e->retryable || !pg_ok(conn);
}

static void
failed(SeqSyncResult *out, const CatSequence *s, const char *side,
       const Error *e)
{
	char item[ERR_MSG_MAX + 600];

	snprintf(item, sizeof(item), "%.500s: %.40s%s", s->qname, side, e->message);
	name_add(out->failures, sizeof(out->failures), item);
	out->failed++;
}

/* The source's last_value and is_called of s, as text in res. */
static bool
read_source(PgConn *src, const CatSequence *s, PGresult **res, Error *err)
{
	char *sql = NULL;
	bool ok;

	if (asprintf(&sql, "SELECT last_value, is_called FROM %s", s->qname) < 0)
		return err_set(err, ERR_INTERNAL, "out of memory");
	ok = pg_query(src, sql, 0, NULL, res, err);
	free(sql);
	return ok;
}

/*
 * The target's sequence for s when its owner table or column is renamed
 * (malloc'd into *out), found through what owns it there; *out stays NULL
 * otherwise, or when the target's column owns none.
 */
static bool
target_sequence(PgConn *tgt, const Catalog *cat, const CatSequence *s,
                char **out, Error *err)
{
	const CatTable *owner = NULL;
	const char *col = s->owner_col;
	bool renamed = false;
	const char *params[2];
	PGresult *res;

	*out = NULL;
	for (int t = 0; s->owner_relid != 0 && t < cat->ntables; t++)
		if (cat->tables[t].relid == s->owner_relid)
			owner = &cat->tables[t];
	if (owner == NULL || !owner->selected || col == NULL)
		return true;
	renamed = owner->tgt_qname != NULL;
	for (int c = 0; c < owner->ncols; c++)
		if (strcmp(owner->cols[c].name, s->owner_col) == 0 &&
		    owner->cols[c].tgt_name != NULL)
		{
			col = owner->cols[c].tgt_name;
			renamed = true;
		}
	if (!renamed)
		return true;
	params[0] = catalog_tgt_qname(owner);
	params[1] = col;
	if (!pg_query(tgt, "SELECT pg_catalog.pg_get_serial_sequence($1, $2)", 2,
	              params, &res, err))
		return false;
	if (!PQgetisnull(res, 0, 0) &&
	    (*out = strdup(PQgetvalue(res, 0, 0))) == NULL)
	{
		PQclear(res);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	PQclear(res);
	return true;
}

bool
sequences_sync(PgConn *src, PgConn *tgt, const Catalog *cat,
               bool by_target_names, int64_t margin, SeqSpacing spacing,
               SeqSyncResult *out, Error *err)
{
	bool *kept = subset_kept_tables(cat);

	memset(out, 0, sizeof(*out));
	if (kept == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (int i = 0; i < cat->nseqs; i++)
	{
		const CatSequence *s = &cat->seqs[i];
		const char *params[3];
		char value_text[24];
		PGresult *res = NULL, *set = NULL;
		Error e = ERR_INIT;
		char *tgt_seq = NULL;
		int64_t value, increment = 0;
		bool called;
		SeqPlace place;
		int owner = -1;

		for (int t = 0; s->identity_relid != 0 && t < cat->ntables; t++)
			if (cat->tables[t].relid == s->identity_relid)
				owner = t;
		if (owner >= 0 && !kept[owner])
		{
			out->left_out++;
			continue;
		}
		if (!read_source(src, s, &res, &e))
		{
			if (connection_lost(src, &e))
				goto lost;
			failed(out, s, "on the source: ", &e);
			continue;
		}
		place = sequences_place(s, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
		                        PQgetvalue(res, 0, 1)[0] == 't', margin, &value,
		                        &called);
		PQclear(res);
		if (spacing.n > 1)
		{
			if (!sequences_space(s, value, called, spacing, &value, &increment))
			{
				err_set(&e, ERR_TARGET,
				        "cannot hand out only values = %d mod %d: it cycles, "
				        "or no such value is left within its bounds",
				        spacing.k, spacing.n);
				failed(out, s, "", &e);
				continue;
			}
			called = false;
		}
		snprintf(value_text, sizeof(value_text), "%" PRId64, value);
		if (by_target_names && !target_sequence(tgt, cat, s, &tgt_seq, &e))
		{
			if (connection_lost(tgt, &e))
				goto lost;
			failed(out, s, "on the target: ", &e);
			continue;
		}
		params[0] = tgt_seq != NULL ? tgt_seq : s->qname;
		params[1] = value_text;
		params[2] = called ? "true" : "false";
		/* the increment first: setval's value is then the next one given */
		if (!((increment == 0 ||
		       pg_execf(tgt, &e, "ALTER SEQUENCE %s INCREMENT BY %" PRId64,
		                params[0], increment)) &&
		      pg_query(tgt,
		               "SELECT pg_catalog.setval($1::regclass, $2::bigint,"
		               " $3::bool)",
		               3, params, &set, &e)))
		{
			free(tgt_seq);
			if (connection_lost(tgt, &e))
				goto lost;
			if (pg_err_is(&e, "42P01"))
			{
				out->missing++;
				err_clear(&e);
				err_set(&e, ERR_TARGET, "not on the target");
				failed(out, s, "", &e);
			}
			else
				failed(out, s, "on the target: ", &e);
			continue;
		}
		PQclear(set);
		free(tgt_seq);
		out->set++;
		if (place == SEQ_PLACE_EXACT && margin != 0)
			out->exact++;
		if (place == SEQ_PLACE_CLAMPED)
		{
			out->clamped++;
			name_add(out->clamped_names, sizeof(out->clamped_names), s->qname);
		}
		continue;
	lost:
		free(kept);
		*err = e;
		return err_prefix(err, "sequence %s: ", s->qname);
	}
	free(kept);
	return true;
}
