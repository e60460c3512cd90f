/*
 * dumpscript: pg_dump's plain SQL text split into TOC entries.
 *
 * Pure: bytes in, a DumpScript out; no I/O, no libpq, no logging.
 *
 * Two passes over the input, which is never modified:
 *
 *   scan()   walks the text once in PostgreSQL's lexical states and records
 *            three sorted lists of byte spans: statements (first token to the
 *            ';' that psql would end it at, see Nesting), entry headers, and
 *            meta-command lines. Every error about malformed text is raised
 *            here.
 *   build()  cuts the text into the preamble and the entries using those
 *            spans, copies each piece without its meta-command lines, parses
 *            each header's fields, and reads the first statement of typed
 *            entries with a small tokenizer (Cursor) that skips quotes with
 *            the same helpers scan() uses.
 *
 * Header and statement spans never overlap: a header is only recognised
 * between statements, and a header inside an unfinished statement is an error.
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

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growable array of fixed-size items; capped by the input size. */
typedef struct Vec
{
	void *items;
	size_t count;
	size_t cap;
	size_t size;
} Vec;

/* A statement or a meta-command line: [start, end) of the input. */
typedef struct Span
{
	size_t start;
	size_t end;       /* statements: just after ';'; metas: the line break */
	int line;         /* line of start, 1-based */
	bool std_strings; /* statements: standard_conforming_strings at start */
} Span;

/* An entry header block: "--", optional verbose lines, "-- Name: ...", "--". */
typedef struct Header
{
	size_t start;      /* the opening "--" line */
	size_t end;        /* just after the closing "--" line's break */
	size_t name_start; /* the "-- Name:" line, without its line break */
	size_t name_end;
	int name_line;
} Header;

typedef struct Scan
{
	const char *text;
	size_t len;
	const char *origin;
	Vec stmts;   /* Span */
	Vec headers; /* Header */
	Vec metas;   /* Span */
} Scan;

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

typedef enum TokKind
{
	TOK_END = 0,
	TOK_IDENT,  /* unquoted identifier or keyword */
	TOK_QIDENT, /* "quoted identifier" */
	TOK_OTHER,  /* a string, a dollar-quoted body or one other byte */
} TokKind;

typedef struct Tok
{
	TokKind kind;
	size_t start;
	size_t end;
} Tok;

/* Reads tokens of one statement that scan() has already accepted. */
typedef struct Cursor
{
	const char *text;
	size_t pos;
	size_t end;
	bool std_strings;
} Cursor;

static const char *const no_text = "";

/* --- growable arrays --------------------------------------------------- */

static void
vec_init(Vec *v, size_t size)
{
	v->items = NULL;
	v->count = 0;
	v->cap = 0;
	v->size = size;
}

static void
vec_free(Vec *v)
{
	free(v->items);
	v->items = NULL;
	v->count = 0;
	v->cap = 0;
}

/* Appends a copy of item; fails only when out of memory. */
static bool
vec_push(Vec *v, const void *item, Error *err)
{
	if (v->count == v->cap)
	{
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *items;

		if (cap > SIZE_MAX / v->size)
			return err_set(err, ERR_INTERNAL, "out of memory");
		items = realloc(v->items, cap * v->size);
		if (items == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		v->items = items;
		v->cap = cap;
	}
	memcpy((char *) v->items + v->count * v->size, item, v->size);
	v->count++;
	return true;
}

/* --- characters and lexical constructs -------------------------------- */

static bool
is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c >= 0x80;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char) (c + ('a' - 'A')) : c;
}

/* True when the n bytes at a equal the NUL-terminated word, ignoring ASCII
 * case. */
static bool
ascii_ieq(const char *a, size_t n, const char *word)
{
	size_t i;

	if (strlen(word) != n)
		return false;
	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char) a[i]) !=
		    ascii_lower((unsigned char) word[i]))
			return false;
	return true;
}

static int
count_lines(const char *text, size_t from, size_t to)
{
	int n = 0;
	const char *p = text + from;
	const char *end = text + to;

	while (p < end && (p = memchr(p, '\n', (size_t) (end - p))) != NULL)
	{
		n++;
		p++;
	}
	return n;
}

/* Position of the line break ending the line at pos, or len. */
static size_t
line_end(const char *text, size_t len, size_t pos)
{
	const char *nl = memchr(text + pos, '\n', len - pos);

	return nl ? (size_t) (nl - text) : len;
}

/* [start, end) without a trailing '\r'. */
static size_t
trim_cr(const char *text, size_t start, size_t end)
{
	return (end > start && text[end - 1] == '\r') ? end - 1 : end;
}

/*
 * End (just after the closing quote) of the string or quoted identifier whose
 * opening quote is at pos, or 0 when it is not closed before end. A doubled
 * quote is part of the value; with backslash, so is the byte after '\'.
 */
static size_t
quoted_end(const char *text, size_t end, size_t pos, char quote, bool backslash)
{
	size_t i = pos + 1;

	while (i < end)
	{
		char c = text[i];

		if (backslash && c == '\\')
			i += 2;
		else if (c != quote)
			i++;
		else if (i + 1 < end && text[i + 1] == quote)
			i += 2;
		else
			return i + 1;
	}
	return 0;
}

/*
 * End of the block comment opening at pos ("/" "*"), or 0 when it is not
 * closed before end. Block comments nest in PostgreSQL.
 */
static size_t
comment_end(const char *text, size_t end, size_t pos)
{
	size_t depth = 0;
	size_t i = pos;

	while (i + 1 < end)
	{
		if (text[i] == '/' && text[i + 1] == '*')
		{
			depth++;
			i += 2;
		}
		else if (text[i] == '*' && text[i + 1] == '/')
		{
			depth--;
			i += 2;
			if (depth == 0)
				return i;
		}
		else
			i++;
	}
	return 0;
}

/*
 * Length of the $tag$ delimiter starting at pos, or 0 when the '$' there does
 * not start one ($1 is a parameter). The caller never lands on a '$' inside an
 * identifier, which consumes its '$' bytes as a whole.
 */
static size_t
dollar_delim_len(const char *text, size_t end, size_t pos)
{
	size_t i = pos + 1;

	if (i < end && is_ident_start((unsigned char) text[i]))
	{
		i++;
		while (i < end && (is_ident_start((unsigned char) text[i]) ||
		                   is_digit((unsigned char) text[i])))
			i++;
	}
	if (i < end && text[i] == '$')
		return i + 1 - pos;
	return 0;
}

/* End of the dollar-quoted body opening at pos with a delimiter of delim_len
 * bytes, or 0 when the same delimiter does not close it before end. */
static size_t
dollar_end(const char *text, size_t end, size_t pos, size_t delim_len)
{
	size_t body = pos + delim_len;
	const char *close = memmem(text + body, end - body, text + pos, delim_len);

	return close ? (size_t) (close - text) + delim_len : 0;
}

/* End of the identifier starting at pos; sets *estring when it is a lone E
 * directly followed by a quote (an escape string, E'...'). */
static size_t
ident_end(const char *text, size_t end, size_t pos, bool *estring)
{
	size_t i = pos + 1;

	while (i < end && is_ident_cont((unsigned char) text[i]))
		i++;
	*estring = i == pos + 1 && (text[pos] == 'E' || text[pos] == 'e') &&
	           i < end && text[i] == '\'';
	return i;
}

/* --- the scan ---------------------------------------------------------- */

static bool
line_is(const char *text, size_t start, size_t end, const char *s)
{
	size_t n = strlen(s);

	end = trim_cr(text, start, end);
	return end - start == n && memcmp(text + start, s, n) == 0;
}

static bool
line_starts(const char *text, size_t start, size_t end, const char *s)
{
	size_t n = strlen(s);

	return end - start >= n && memcmp(text + start, s, n) == 0;
}

/*
 * True when an entry header block starts at pos (a line start); fills *h.
 * Only the shape is checked here; build() parses the Name line's fields.
 *
 *   --
 *   -- TOC entry 215 (class 1259 OID 16390)     with --verbose only
 *   -- Dependencies: 214                        with --verbose only
 *   -- Name: orders; Type: TABLE; Schema: public; Owner: postgres
 *   --
 */
static bool
header_at(const char *text, size_t len, size_t pos, Header *h)
{
	size_t p = pos;
	size_t e = line_end(text, len, p);

	if (!line_is(text, p, e, "--") || e == len)
		return false;
	for (;;)
	{
		p = e + 1;
		e = line_end(text, len, p);
		if (!line_starts(text, p, e, "-- TOC entry ") &&
		    !line_starts(text, p, e, "-- Dependencies:"))
			break;
		if (e == len)
			return false;
	}
	if (!line_starts(text, p, e, "-- Name: ") &&
	    !line_starts(text, p, e, "-- Data for Name: "))
		return false;
	if (e == len)
		return false;
	h->name_start = p;
	h->name_end = trim_cr(text, p, e);
	p = e + 1;
	e = line_end(text, len, p);
	if (!line_is(text, p, e, "--"))
		return false;
	h->start = pos;
	h->end = e < len ? e + 1 : len;
	return true;
}

/* After a statement: follows pg_dump's "SET standard_conforming_strings =
 * on|off;", which decides whether backslash escapes in plain '' strings. */
static void
note_std_strings(const char *text, const Span *st, bool *std_strings)
{
	static const char key[] = "SET standard_conforming_strings = ";
	size_t klen = sizeof(key) - 1;
	const char *v = text + st->start + klen;
	size_t vlen;

	if (st->end - st->start <= klen || !ascii_ieq(text + st->start, klen, key))
		return;
	vlen = st->end - st->start - klen;
	if (ascii_ieq(v, vlen, "off;") || ascii_ieq(v, vlen, "'off';"))
		*std_strings = false;
	else if (ascii_ieq(v, vlen, "on;") || ascii_ieq(v, vlen, "'on';"))
		*std_strings = true;
}

/*
 * What keeps a ';' from ending a statement, tracked as psql's lexer
 * (psqlscan.l) does, since psql is what pg_dump's output is written for:
 * open parentheses (a multi-action CREATE RULE ... DO (a; b)), and the
 * BEGIN ... END of a SQL-standard function body (BEGIN ATOMIC), recognised
 * only outside parentheses in a statement whose first unquoted identifiers
 * are CREATE [OR REPLACE] FUNCTION|PROCEDURE; inside such a body CASE also
 * opens a level that END closes.
 */
typedef struct Nesting
{
	int parens;
	int begins;
	int idents;    /* unquoted identifiers seen so far, capped at 4 */
	char first[4]; /* initial of each of the first four when one of
					  create/or/replace/function/procedure, else 0 */
} Nesting;

static void
nesting_ident(Nesting *n, const char *word, size_t len)
{
	bool routine;

	if (n->idents < 4 &&
	    (ascii_ieq(word, len, "create") || ascii_ieq(word, len, "or") ||
	     ascii_ieq(word, len, "replace") || ascii_ieq(word, len, "function") ||
	     ascii_ieq(word, len, "procedure")))
		n->first[n->idents] = (char) ascii_lower((unsigned char) word[0]);
	if (n->idents < 4)
		n->idents++;
	routine =
	    n->first[0] == 'c' && (n->first[1] == 'f' || n->first[1] == 'p' ||
	                           (n->first[1] == 'o' && n->first[2] == 'r' &&
	                            (n->first[3] == 'f' || n->first[3] == 'p')));
	if (!routine || n->parens > 0)
		return;
	if (ascii_ieq(word, len, "begin"))
		n->begins++;
	else if (ascii_ieq(word, len, "case") && n->begins > 0)
		n->begins++;
	else if (ascii_ieq(word, len, "end") && n->begins > 0)
		n->begins--;
}

/*
 * One pass over sc->text in the lexer's top-level state; quoted constructs
 * and comments are skipped whole. Fills sc->stmts, sc->headers and sc->metas
 * in text order. On malformed text fills err with "ORIGIN:LINE: ..." and
 * returns false; what was recorded is then the caller's to free.
 */
static bool
scan(Scan *sc, Error *err)
{
	const char *text = sc->text;
	size_t len = sc->len;
	size_t pos = 0;
	int line = 1;
	bool std_strings = true;
	bool in_stmt = false;
	Span stmt = {0};
	Nesting nest = {0};

	while (pos < len)
	{
		unsigned char c = (unsigned char) text[pos];
		size_t end;

		if (pos == 0 || text[pos - 1] == '\n')
		{
			Header h;

			if (c == '\\')
			{
				Span meta = {pos, line_end(text, len, pos), line, false};

				if (!vec_push(&sc->metas, &meta, err))
					return false;
				pos = meta.end;
				continue;
			}
			if (c == '-' && header_at(text, len, pos, &h))
			{
				if (in_stmt)
					return err_set(err, ERR_SOURCE,
					               "%s:%d: statement not terminated by \";\" "
					               "before the entry header at line %d",
					               sc->origin, stmt.line, line);
				h.name_line = line + count_lines(text, pos, h.name_start);
				if (!vec_push(&sc->headers, &h, err))
					return false;
				line += count_lines(text, pos, h.end);
				pos = h.end;
				continue;
			}
		}
		if (is_space(c))
		{
			line += c == '\n';
			pos++;
			continue;
		}
		if (c == '-' && pos + 1 < len && text[pos + 1] == '-')
		{
			pos = line_end(text, len, pos);
			continue;
		}
		if (c == '/' && pos + 1 < len && text[pos + 1] == '*')
		{
			end = comment_end(text, len, pos);
			if (end == 0)
				return err_set(err, ERR_SOURCE,
				               "%s:%d: unterminated /* comment", sc->origin,
				               line);
			line += count_lines(text, pos, end);
			pos = end;
			continue;
		}
		if (!in_stmt)
		{
			in_stmt = true;
			stmt.start = pos;
			stmt.line = line;
			stmt.std_strings = std_strings;
		}
		if (c == ';' && nest.parens == 0 && nest.begins == 0)
		{
			Nesting none = {0};

			nest = none;
			stmt.end = pos + 1;
			if (!vec_push(&sc->stmts, &stmt, err))
				return false;
			note_std_strings(text, &stmt, &std_strings);
			in_stmt = false;
			pos++;
			continue;
		}
		if (c == '\\')
			return err_set(err, ERR_SOURCE,
			               "%s:%d: backslash outside quotes in the middle of "
			               "a line",
			               sc->origin, line);
		if (c == '\'' || c == '"')
		{
			end =
			    quoted_end(text, len, pos, (char) c, c == '\'' && !std_strings);
			if (end == 0)
				return err_set(
				    err, ERR_SOURCE, "%s:%d: unterminated %s", sc->origin, line,
				    c == '\'' ? "quoted string" : "quoted identifier");
		}
		else if (c == '$' && dollar_delim_len(text, len, pos) > 0)
		{
			end = dollar_end(text, len, pos, dollar_delim_len(text, len, pos));
			if (end == 0)
				return err_set(err, ERR_SOURCE,
				               "%s:%d: unterminated dollar-quoted string",
				               sc->origin, line);
		}
		else if (is_ident_start(c))
		{
			bool estring;

			end = ident_end(text, len, pos, &estring);
			if (estring)
			{
				size_t quote = end;

				end = quoted_end(text, len, quote, '\'', true);
				if (end == 0)
					return err_set(err, ERR_SOURCE,
					               "%s:%d: unterminated quoted string",
					               sc->origin, line);
			}
			else
				nesting_ident(&nest, text + pos, end - pos);
		}
		else
		{
			if (c == '(')
				nest.parens++;
			else if (c == ')' && nest.parens > 0)
				nest.parens--;
			end = pos + 1;
		}
		line += count_lines(text, pos, end);
		pos = end;
	}
	if (in_stmt)
		return err_set(err, ERR_SOURCE,
		               "%s:%d: statement not terminated by \";\" at the end of "
		               "the input",
		               sc->origin, stmt.line);
	return true;
}

/* --- tokens of an accepted statement ----------------------------------- */

static Tok
cursor_next(Cursor *c)
{
	const char *text = c->text;
	Tok tok = {TOK_END, c->end, c->end};
	size_t end;

	for (;;)
	{
		if (c->pos >= c->end)
			return tok;
		if (text[c->pos] == '\\' && c->pos > 0 && text[c->pos - 1] == '\n')
			c->pos = line_end(text, c->end, c->pos);
		else if (is_space((unsigned char) text[c->pos]))
			c->pos++;
		else if (c->pos + 1 < c->end && text[c->pos] == '-' &&
		         text[c->pos + 1] == '-')
			c->pos = line_end(text, c->end, c->pos);
		else if (c->pos + 1 < c->end && text[c->pos] == '/' &&
		         text[c->pos + 1] == '*')
		{
			end = comment_end(text, c->end, c->pos);
			c->pos = end ? end : c->end;
		}
		else
			break;
	}

	tok.start = c->pos;
	tok.kind = TOK_OTHER;
	end = c->pos + 1;
	if (text[c->pos] == '"')
	{
		end = quoted_end(text, c->end, c->pos, '"', false);
		tok.kind = TOK_QIDENT;
	}
	else if (text[c->pos] == '\'')
		end = quoted_end(text, c->end, c->pos, '\'', !c->std_strings);
	else if (text[c->pos] == '$' && dollar_delim_len(text, c->end, c->pos))
		end = dollar_end(text, c->end, c->pos,
		                 dollar_delim_len(text, c->end, c->pos));
	else if (is_ident_start((unsigned char) text[c->pos]))
	{
		bool estring;

		end = ident_end(text, c->end, c->pos, &estring);
		if (estring)
			end = quoted_end(text, c->end, end, '\'', true);
		else
			tok.kind = TOK_IDENT;
	}
	/* scan() accepted the statement, so quotes close; stay bounded anyway */
	if (end == 0 || end > c->end)
		end = c->end;
	tok.end = end;
	c->pos = end;
	return tok;
}

static bool
tok_is(const Cursor *c, Tok tok, const char *keyword)
{
	return tok.kind == TOK_IDENT &&
	       ascii_ieq(c->text + tok.start, tok.end - tok.start, keyword);
}

static bool
tok_is_char(const Cursor *c, Tok tok, char ch)
{
	return tok.kind == TOK_OTHER && tok.end == tok.start + 1 &&
	       c->text[tok.start] == ch;
}

static bool
tok_is_name(Tok tok)
{
	return tok.kind == TOK_IDENT || tok.kind == TOK_QIDENT;
}

/* If the next token is keyword, consumes it and returns true. */
static bool
cursor_accept(Cursor *c, const char *keyword)
{
	Cursor save = *c;

	if (tok_is(c, cursor_next(c), keyword))
		return true;
	*c = save;
	return false;
}

/* If the next tokens are the keywords w1 w2 [w3] (w3 may be NULL), consumes
 * them all and returns true; else consumes nothing ("if" alone may be a
 * name). */
static bool
cursor_accept_all(Cursor *c, const char *w1, const char *w2, const char *w3)
{
	Cursor save = *c;

	if (cursor_accept(c, w1) && cursor_accept(c, w2) &&
	    (w3 == NULL || cursor_accept(c, w3)))
		return true;
	*c = save;
	return false;
}

/* Reads name[.name[.name]]; *first and *last get its first and last names. */
static bool
cursor_qualified(Cursor *c, Tok *first, Tok *last)
{
	int parts;

	*first = cursor_next(c);
	*last = *first;
	if (!tok_is_name(*first))
		return false;
	for (parts = 1; parts < 3; parts++)
	{
		Cursor save = *c;
		Tok name;

		if (!tok_is_char(c, cursor_next(c), '.'))
		{
			*c = save;
			break;
		}
		name = cursor_next(c);
		if (!tok_is_name(name))
			return false;
		*last = name;
	}
	return true;
}

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
	if (tok.kind == TOK_QIDENT)
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
			p[w++] = (char) ascii_lower((unsigned char) s[i]);
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
	size_t p = line_starts(s, 0, n, "-- Name: ") ? strlen("-- Name: ")
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
		if (u > t && line_starts(s, u, n, "; Schema: "))
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

	if (!cursor_accept(c, "CREATE"))
		return true;
	(void) cursor_accept(c, "UNIQUE");
	if (!cursor_accept(c, "INDEX"))
		return true;
	(void) cursor_accept(c, "CONCURRENTLY");
	(void) cursor_accept_all(c, "IF", "NOT", "EXISTS");
	name = cursor_next(c);
	if (!tok_is_name(name) || !cursor_accept(c, "ON"))
		return true;
	(void) cursor_accept(c, "ONLY");
	if (!cursor_qualified(c, &first, &last))
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

	if (!cursor_accept(c, "ALTER") || !cursor_accept(c, "TABLE"))
		return true;
	(void) cursor_accept_all(c, "IF", "EXISTS", NULL);
	(void) cursor_accept(c, "ONLY");
	if (!cursor_qualified(c, &first, &last) || !cursor_accept(c, "ADD") ||
	    !cursor_accept(c, "CONSTRAINT"))
		return true;
	name = cursor_next(c);
	kind = cursor_next(c);
	if (!tok_is_name(name) || kind.kind != TOK_IDENT)
		return true;
	*matched = true;
	if (tok_is(c, kind, "PRIMARY"))
		e->constraint = DUMPSCRIPT_CON_PRIMARY_KEY;
	else if (tok_is(c, kind, "UNIQUE"))
		e->constraint = DUMPSCRIPT_CON_UNIQUE;
	else if (tok_is(c, kind, "EXCLUDE"))
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

	if (!cursor_accept(c, "CREATE"))
		return true;
	(void) cursor_accept_all(c, "OR", "REPLACE", NULL);
	(void) cursor_accept(c, "CONSTRAINT");
	if (!cursor_accept(c, "TRIGGER") || !tok_is_name(cursor_next(c)))
		return true;
	do
		tok = cursor_next(c);
	while (tok.kind != TOK_END && !tok_is(c, tok, "ON"));
	if (tok.kind == TOK_END || !cursor_qualified(c, &first, &last))
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

	if (!cursor_accept(c, "ALTER") || !cursor_accept(c, "INDEX") ||
	    !cursor_qualified(c, &first, &last) || !cursor_accept(c, "ATTACH") ||
	    !cursor_accept(c, "PARTITION") || !cursor_qualified(c, &first, &last))
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
	Tok tok = cursor_next(&c);

	return tok_is(&c, tok, "SET") || tok_is(&c, tok, "RESET");
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
		size_t end = trim_cr(sc->text, metas[k].start, metas[k].end);

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
	vec_init(&sc.stmts, sizeof(Span));
	vec_init(&sc.headers, sizeof(Header));
	vec_init(&sc.metas, sizeof(Span));

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
		        1 + count_lines(text, 0, (size_t) (nul - text)));
		goto out;
	}
	if (!scan(&sc, err))
		goto out;

	ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
	{
		err_set(err, ERR_INTERNAL, "out of memory");
		goto out;
	}
	vec_init(&ds->owned, sizeof(char *));
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
