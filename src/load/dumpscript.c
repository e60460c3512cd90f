/*
 * dumpscript: pg_dump's plain SQL text split into TOC entries.
 *
 * It owns the DumpScript and every string its views point into, the API in
 * load/dumpscript.h, and build(): cutting the text into the preamble and the
 * entries at the spans dumpscript_scan() recorded, parsing each header's
 * fields, and reading the table, index and constraint an entry's first
 * statement names, token by token through the Cursor.
 *
 * Pure: bytes in, a DumpScript out; no I/O, no libpq, no logging. It must
 * never decide itself where a quote, a comment or a statement ends: that is
 * dumpscript_lex.c's, and this file reads statements only through its spans
 * and tokens.
 *
 * Region k of the text lies between header k-1 (the start of the text for
 * k = 0) and header k (the end of the text for the last). Region 0 is the
 * preamble; region k >= 1 is entry k-1. pg_dump's _printTocEntry() selects the
 * owner, tablespace and table access method with SET statements *before*
 * printing an entry's header, so the SET/RESET statements that end a region,
 * after its first statement, belong to the next entry: build() gives them to
 * it as `setup`. The preamble keeps all of its statements.
 */
#include "load/dumpscript.h"
#include "load/dumpscript_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct DumpScript
{
	const char *script;
	const char *preamble;
	DumpEntry *entries;
	int nentries;
	DumpMeta *metas;
	int nmetas;
	Vec owned; /* char *: every string the views above point into */
};

static const char *const no_text = "";

/* --- building the DumpScript ------------------------------------------ */

/* Takes ownership of p (a malloc'd string) into ds; NULL when p is NULL or
 * when recording it fails (p is then freed). */
static const char *
keep(DumpScript *ds, char *p, Error *err)
{
	if (p == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (!vec_push(&ds->owned, &p, err))
	{
		free(p);
		return NULL;
	}
	return p;
}

static const char *
keep_bytes(DumpScript *ds, const char *s, size_t n, Error *err)
{
	char *p = malloc(n + 1);

	if (p != NULL)
	{
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return keep(ds, p, err);
}

/*
 * A copy of text[from, to) in which each meta-command line is emptied (its
 * line break, outside the span, stays). metas are sorted and whole lines.
 */
static const char *
keep_text(DumpScript *ds, const Scan *sc, size_t from, size_t to, Error *err)
{
	const Span *metas = sc->metas.items;
	size_t n = to - from;
	size_t i;
	size_t at = from;
	char *p;
	char *w;

	if (from >= to)
		return no_text;
	for (i = 0; i < sc->metas.count; i++)
		if (metas[i].start >= from && metas[i].end <= to)
			n -= metas[i].end - metas[i].start;
	p = malloc(n + 1);
	if (p == NULL)
		return keep(ds, NULL, err);
	w = p;
	for (i = 0; i < sc->metas.count; i++)
	{
		if (metas[i].start < from || metas[i].end > to)
			continue;
		memcpy(w, sc->text + at, metas[i].start - at);
		w += metas[i].start - at;
		at = metas[i].end;
	}
	memcpy(w, sc->text + at, to - at);
	w += to - at;
	*w = '\0';
	return keep(ds, p, err);
}

/* Statements [a, b) of sc as one text, first token to last ';'. */
static const char *
keep_stmts(DumpScript *ds, const Scan *sc, size_t a, size_t b, Error *err)
{
	const Span *st = sc->stmts.items;

	if (a >= b)
		return no_text;
	return keep_text(ds, sc, st[a].start, st[b - 1].end, err);
}

/* The value of an identifier token: quotes removed and "" undoubled, or an
 * unquoted name downcased as PostgreSQL does. */
static const char *
keep_ident(DumpScript *ds, const Cursor *c, Tok tok, Error *err)
{
	const char *s = c->text + tok.start;
	size_t n = tok.end - tok.start;
	char *p = malloc(n + 1);
	size_t i;
	size_t w = 0;

	if (p == NULL)
		return keep(ds, NULL, err);
	if (tok.kind == DUMPSCRIPT_TOK_QIDENT)
	{
		for (i = 1; i + 1 < n; i++)
		{
			p[w++] = s[i];
			if (s[i] == '"')
				i++;
		}
	}
	else
	{
		for (i = 0; i < n; i++)
			p[w++] = (char) dumpscript_ascii_lower((unsigned char) s[i]);
	}
	p[w] = '\0';
	return keep(ds, p, err);
}

/* Finds needle in [s, s + n); returns its offset or n. */
static size_t
find(const char *s, size_t n, const char *needle)
{
	const char *at = memmem(s, n, needle, strlen(needle));

	return at ? (size_t) (at - s) : n;
}

/* A header field: NULL for "-", else a copy. */
static bool
keep_field(DumpScript *ds, const char *s, size_t n, const char **out,
           Error *err)
{
	if (n == 1 && s[0] == '-')
	{
		*out = NULL;
		return true;
	}
	*out = keep_bytes(ds, s, n, err);
	return *out != NULL;
}

/*
 * Parses a header's Name line into e's type, name, schema, owner and
 * tablespace. pg_dump prints names unquoted, so a name may itself contain
 * "; "; the type (upper-case words) followed by "; Schema: " anchors the
 * split. A schema or owner name containing "; Owner: " or "; Tablespace: "
 * is split at its first such text.
 */
static bool
parse_header(DumpScript *ds, const Scan *sc, const Header *h, DumpEntry *e,
             Error *err)
{
	const char *s = sc->text + h->name_start;
	size_t n = h->name_end - h->name_start;
	size_t p = dumpscript_line_starts(s, 0, n, "-- Name: ")
	               ? strlen("-- Name: ")
	               : strlen("-- Data for Name: ");
	size_t q = p;
	size_t t = 0;
	size_t u = 0;
	size_t o;

	for (;;)
	{
		q += find(s + q, n - q, "; Type: ");
		if (q == n)
			return err_set(err, ERR_SOURCE,
			               "%s:%d: malformed entry header: no \"; Type: "
			               "TYPE; Schema: \"",
			               sc->origin, h->name_line);
		t = q + strlen("; Type: ");
		for (u = t; u < n && ((s[u] >= 'A' && s[u] <= 'Z') || s[u] == ' '); u++)
			;
		if (u > t && dumpscript_line_starts(s, u, n, "; Schema: "))
			break;
		q++;
	}
	e->name = keep_bytes(ds, s + p, q - p, err);
	e->type = keep_bytes(ds, s + t, u - t, err);
	if (e->name == NULL || e->type == NULL)
		return false;

	p = u + strlen("; Schema: ");
	o = p + find(s + p, n - p, "; Owner: ");
	q = p + find(s + p, n - p, "; Tablespace: ");
	if (!keep_field(ds, s + p, (o < q ? o : q) - p, &e->schema, err))
		return false;
	if (o < q)
	{
		p = o + strlen("; Owner: ");
		q = p + find(s + p, n - p, "; Tablespace: ");
		if (!keep_field(ds, s + p, q - p, &e->owner, err))
			return false;
	}
	if (q < n)
	{
		p = q + strlen("; Tablespace: ");
		e->tablespace = keep_bytes(ds, s + p, n - p, err);
		if (e->tablespace == NULL)
			return false;
	}
	return true;
}

static bool
type_is(const DumpEntry *e, const char *type)
{
	return strcmp(e->type, type) == 0;
}

static bool
keep_table(DumpScript *ds, const Scan *sc, Tok first, Tok last, DumpEntry *e,
           Error *err)
{
	e->table = keep_text(ds, sc, first.start, last.end, err);
	return e->table != NULL;
}

/* CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] table */
static bool
read_index(DumpScript *ds, const Scan *sc, Cursor *c, DumpEntry *e,
           bool *matched, Error *err)
{
	Tok name, first, last;

	if (!dumpscript_cursor_accept(c, "CREATE"))
		return true;
	(void) dumpscript_cursor_accept(c, "UNIQUE");
	if (!dumpscript_cursor_accept(c, "INDEX"))
		return true;
	(void) dumpscript_cursor_accept(c, "CONCURRENTLY");
	(void) dumpscript_cursor_accept_all(c, "IF", "NOT", "EXISTS");
	name = dumpscript_cursor_next(c);
	if (!dumpscript_tok_is_name(name) || !dumpscript_cursor_accept(c, "ON"))
		return true;
	(void) dumpscript_cursor_accept(c, "ONLY");
	if (!dumpscript_cursor_qualified(c, &first, &last))
		return true;
	*matched = true;
	e->index_name = keep_ident(ds, c, name, err);
	return e->index_name != NULL && keep_table(ds, sc, first, last, e, err);
}

/* ALTER TABLE [IF EXISTS] [ONLY] table ADD CONSTRAINT name KIND */
static bool
read_constraint(DumpScript *ds, const Scan *sc, Cursor *c, DumpEntry *e,
                bool *matched, Error *err)
{
	Tok name, first, last, kind;

	if (!dumpscript_cursor_accept(c, "ALTER") ||
	    !dumpscript_cursor_accept(c, "TABLE"))
		return true;
	(void) dumpscript_cursor_accept_all(c, "IF", "EXISTS", NULL);
	(void) dumpscript_cursor_accept(c, "ONLY");
	if (!dumpscript_cursor_qualified(c, &first, &last) ||
	    !dumpscript_cursor_accept(c, "ADD") ||
	    !dumpscript_cursor_accept(c, "CONSTRAINT"))
		return true;
	name = dumpscript_cursor_next(c);
	kind = dumpscript_cursor_next(c);
	if (!dumpscript_tok_is_name(name) || kind.kind != DUMPSCRIPT_TOK_IDENT)
		return true;
	*matched = true;
	if (dumpscript_tok_is(c, kind, "PRIMARY"))
		e->constraint = DUMPSCRIPT_CON_PRIMARY_KEY;
	else if (dumpscript_tok_is(c, kind, "UNIQUE"))
		e->constraint = DUMPSCRIPT_CON_UNIQUE;
	else if (dumpscript_tok_is(c, kind, "EXCLUDE"))
		e->constraint = DUMPSCRIPT_CON_EXCLUDE;
	else
		e->constraint = DUMPSCRIPT_CON_OTHER;
	if (e->constraint != DUMPSCRIPT_CON_OTHER)
	{
		e->index_name = keep_ident(ds, c, name, err);
		if (e->index_name == NULL)
			return false;
	}
	return keep_table(ds, sc, first, last, e, err);
}

/* CREATE [OR REPLACE] [CONSTRAINT] TRIGGER name ... ON table */
static bool
read_trigger(DumpScript *ds, const Scan *sc, Cursor *c, DumpEntry *e,
             bool *matched, Error *err)
{
	Tok tok, first, last;

	if (!dumpscript_cursor_accept(c, "CREATE"))
		return true;
	(void) dumpscript_cursor_accept_all(c, "OR", "REPLACE", NULL);
	(void) dumpscript_cursor_accept(c, "CONSTRAINT");
	if (!dumpscript_cursor_accept(c, "TRIGGER") ||
	    !dumpscript_tok_is_name(dumpscript_cursor_next(c)))
		return true;
	do
		tok = dumpscript_cursor_next(c);
	while (tok.kind != DUMPSCRIPT_TOK_END && !dumpscript_tok_is(c, tok, "ON"));
	if (tok.kind == DUMPSCRIPT_TOK_END ||
	    !dumpscript_cursor_qualified(c, &first, &last))
		return true;
	*matched = true;
	return keep_table(ds, sc, first, last, e, err);
}

/* ALTER INDEX parent ATTACH PARTITION child */
static bool
read_index_attach(DumpScript *ds, Cursor *c, DumpEntry *e, bool *matched,
                  Error *err)
{
	Tok first, last;

	if (!dumpscript_cursor_accept(c, "ALTER") ||
	    !dumpscript_cursor_accept(c, "INDEX") ||
	    !dumpscript_cursor_qualified(c, &first, &last) ||
	    !dumpscript_cursor_accept(c, "ATTACH") ||
	    !dumpscript_cursor_accept(c, "PARTITION") ||
	    !dumpscript_cursor_qualified(c, &first, &last))
		return true;
	*matched = true;
	e->index_name = keep_ident(ds, c, last, err);
	return e->index_name != NULL;
}

/*
 * Fills e's table, index_name and constraint from its first statement (st,
 * NULL when the entry has none) for the types that have them. A CHECK
 * CONSTRAINT may be a domain's (ALTER DOMAIN) and then has none; for the
 * other types a statement of another form is an error.
 */
static bool
read_statement(DumpScript *ds, const Scan *sc, const Span *st, DumpEntry *e,
               Error *err)
{
	Cursor c = {sc->text, 0, 0, true};
	bool matched = false;
	const char *form;

	if (st != NULL)
	{
		c.pos = st->start;
		c.end = st->end;
		c.std_strings = st->std_strings;
	}
	if (type_is(e, "INDEX"))
	{
		form = "CREATE INDEX name ON table";
		if (!read_index(ds, sc, &c, e, &matched, err))
			return false;
	}
	else if (type_is(e, "CONSTRAINT") || type_is(e, "FK CONSTRAINT") ||
	         type_is(e, "CHECK CONSTRAINT"))
	{
		form = "ALTER TABLE table ADD CONSTRAINT name";
		if (!read_constraint(ds, sc, &c, e, &matched, err))
			return false;
		if (type_is(e, "CHECK CONSTRAINT"))
			matched = true;
	}
	else if (type_is(e, "TRIGGER"))
	{
		form = "CREATE TRIGGER name ... ON table";
		if (!read_trigger(ds, sc, &c, e, &matched, err))
			return false;
	}
	else if (type_is(e, "INDEX ATTACH"))
	{
		form = "ALTER INDEX name ATTACH PARTITION name";
		if (!read_index_attach(ds, &c, e, &matched, err))
			return false;
	}
	else
		return true;
	if (!matched)
	{
		err_set(err, ERR_SOURCE,
		        "%s:%d: unexpected statement in %s entry \"%s\"", sc->origin,
		        e->line, e->type, e->name);
		return err_detail(err, "Expected the form %s.", form);
	}
	return true;
}

static bool
is_set_stmt(const Scan *sc, const Span *st)
{
	Cursor c = {sc->text, st->start, st->end, st->std_strings};
	Tok tok = dumpscript_cursor_next(&c);

	return dumpscript_tok_is(&c, tok, "SET") ||
	       dumpscript_tok_is(&c, tok, "RESET");
}

/*
 * Cuts sc's text into ds's preamble, entries and metas (see the file comment
 * for regions and setup). On failure fills err; ds keeps what was built so
 * far for dumpscript_free().
 */
static bool
build(const Scan *sc, DumpScript *ds, Error *err)
{
	const Span *st = sc->stmts.items;
	const Header *hd = sc->headers.items;
	const Span *metas = sc->metas.items;
	size_t nst = sc->stmts.count;
	size_t nhd = sc->headers.count;
	size_t setup_a = 0;
	size_t setup_b = 0;
	size_t si = 0;
	size_t k;

	ds->script = keep_text(ds, sc, 0, sc->len, err);
	if (ds->script == NULL)
		return false;

	ds->metas =
	    calloc(sc->metas.count ? sc->metas.count : 1, sizeof(*ds->metas));
	if (ds->metas == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (k = 0; k < sc->metas.count; k++)
	{
		size_t end = dumpscript_trim_cr(sc->text, metas[k].start, metas[k].end);

		ds->metas[k].line = metas[k].line;
		ds->metas[k].command = keep_bytes(ds, sc->text + metas[k].start,
		                                  end - metas[k].start, err);
		if (ds->metas[k].command == NULL)
			return false;
		ds->nmetas++;
	}

	ds->entries = calloc(nhd ? nhd : 1, sizeof(*ds->entries));
	if (ds->entries == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	for (k = 0; k <= nhd; k++)
	{
		size_t region_end = k < nhd ? hd[k].start : sc->len;
		size_t a = si;
		size_t keep_end;
		DumpEntry *e;

		while (si < nst && st[si].start < region_end)
			si++;
		keep_end = si;
		if (k == 0)
		{
			ds->preamble = keep_stmts(ds, sc, a, si, err);
			if (ds->preamble == NULL)
				return false;
			continue;
		}
		if (k < nhd)
			while (keep_end > a + 1 && is_set_stmt(sc, &st[keep_end - 1]))
				keep_end--;

		e = &ds->entries[k - 1];
		ds->nentries++;
		e->type = e->name = e->sql = e->setup = no_text;
		if (!parse_header(ds, sc, &hd[k - 1], e, err))
			return false;
		e->setup = keep_stmts(ds, sc, setup_a, setup_b, err);
		e->sql = keep_stmts(ds, sc, a, keep_end, err);
		if (e->setup == NULL || e->sql == NULL)
			return false;
		e->line = a < keep_end ? st[a].line : hd[k - 1].name_line;
		if (!read_statement(ds, sc, a < keep_end ? &st[a] : NULL, e, err))
			return false;
		setup_a = keep_end;
		setup_b = si;
	}
	return true;
}

/* --- public API -------------------------------------------------------- */

bool
dumpscript_parse(const char *text, size_t len, const char *origin,
                 DumpScript **out, Error *err)
{
	Scan sc;
	DumpScript *ds = NULL;
	const char *nul;
	bool ok = false;

	*out = NULL;
	if (origin == NULL)
		origin = "dump";
	if (len == 0)
		text = "";
	sc.text = text;
	sc.len = len;
	sc.origin = origin;
	/* each statement, header or meta-command takes a byte at least */
	vec_init(&sc.stmts, sizeof(Span), len + 1);
	vec_init(&sc.headers, sizeof(Header), len + 1);
	vec_init(&sc.metas, sizeof(Span), len + 1);

	if (len > DUMPSCRIPT_MAX_BYTES)
	{
		err_set(err, ERR_SOURCE,
		        "%s: script too large (%zu bytes, at most %zu)", origin, len,
		        DUMPSCRIPT_MAX_BYTES);
		goto out;
	}
	nul = memchr(text, '\0', len);
	if (nul != NULL)
	{
		err_set(err, ERR_SOURCE, "%s:%d: unexpected NUL byte", origin,
		        1 + dumpscript_count_lines(text, 0, (size_t) (nul - text)));
		goto out;
	}
	if (!dumpscript_scan(&sc, err))
		goto out;

	ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	vec_init(&ds->owned, sizeof(char *), 4 * (len + 1));
	ds->script = ds->preamble = no_text;
	if (!build(&sc, ds, err))
		goto out;
	*out = ds;
	ds = NULL;
	ok = true;

out:
	dumpscript_free(ds);
	vec_free(&sc.metas);
	vec_free(&sc.headers);
	vec_free(&sc.stmts);
	return ok;
}

const char *
dumpscript_preamble(const DumpScript *script)
{
	return script->preamble;
}

int
dumpscript_count(const DumpScript *script)
{
	return script->nentries;
}

const DumpEntry *
dumpscript_entry(const DumpScript *script, int i)
{
	if (i < 0 || i >= script->nentries)
		return NULL;
	return &script->entries[i];
}

int
dumpscript_meta_count(const DumpScript *script)
{
	return script->nmetas;
}

const DumpMeta *
dumpscript_meta(const DumpScript *script, int i)
{
	if (i < 0 || i >= script->nmetas)
		return NULL;
	return &script->metas[i];
}

const char *
dumpscript_sql(const DumpScript *script)
{
	return script->script;
}

void
dumpscript_free(DumpScript *script)
{
	char **owned;
	size_t i;

	if (script == NULL)
		return;
	owned = script->owned.items;
	for (i = 0; i < script->owned.count; i++)
		free(owned[i]);
	vec_free(&script->owned);
	free(script->entries);
	free(script->metas);
	free(script);
}
