/*
 * dumpscript_lex: the SQL lexer under dumpscript.
 *
 * It owns the lexical reading of the text, as PostgreSQL and psql read it
 * (load/dumpscript.h lists the rules): the bytes of identifiers, quoted
 * strings and identifiers, dollar-quoted bodies and comments;
 * dumpscript_scan(), which records the spans of statements, entry headers and
 * meta-command lines and raises every error about malformed text; and the
 * Cursor, which reads the tokens of a statement the scan accepted.
 *
 * Pure: no I/O, no libpq, no logging. It must never know what a TOC entry's
 * type means, copy the text, or allocate anything but the span lists it is
 * handed.
 */
#include "load/dumpscript_int.h"

#include <string.h>

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

unsigned char
dumpscript_ascii_lower(unsigned char c)
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
		if (dumpscript_ascii_lower((unsigned char) a[i]) !=
		    dumpscript_ascii_lower((unsigned char) word[i]))
			return false;
	return true;
}

int
dumpscript_count_lines(const char *text, size_t from, size_t to)
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
size_t
dumpscript_trim_cr(const char *text, size_t start, size_t end)
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

	end = dumpscript_trim_cr(text, start, end);
	return end - start == n && memcmp(text + start, s, n) == 0;
}

bool
dumpscript_line_starts(const char *text, size_t start, size_t end,
                       const char *s)
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
		if (!dumpscript_line_starts(text, p, e, "-- TOC entry ") &&
		    !dumpscript_line_starts(text, p, e, "-- Dependencies:"))
			break;
		if (e == len)
			return false;
	}
	if (!dumpscript_line_starts(text, p, e, "-- Name: ") &&
	    !dumpscript_line_starts(text, p, e, "-- Data for Name: "))
		return false;
	if (e == len)
		return false;
	h->name_start = p;
	h->name_end = dumpscript_trim_cr(text, p, e);
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
		n->first[n->idents] =
		    (char) dumpscript_ascii_lower((unsigned char) word[0]);
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
bool
dumpscript_scan(Scan *sc, Error *err)
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
				h.name_line =
				    line + dumpscript_count_lines(text, pos, h.name_start);
				if (!vec_push(&sc->headers, &h, err))
					return false;
				line += dumpscript_count_lines(text, pos, h.end);
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
			line += dumpscript_count_lines(text, pos, end);
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
		line += dumpscript_count_lines(text, pos, end);
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

Tok
dumpscript_cursor_next(Cursor *c)
{
	const char *text = c->text;
	Tok tok = {DUMPSCRIPT_TOK_END, c->end, c->end};
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
	tok.kind = DUMPSCRIPT_TOK_OTHER;
	end = c->pos + 1;
	if (text[c->pos] == '"')
	{
		end = quoted_end(text, c->end, c->pos, '"', false);
		tok.kind = DUMPSCRIPT_TOK_QIDENT;
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
			tok.kind = DUMPSCRIPT_TOK_IDENT;
	}
	/* the scan accepted the statement, so quotes close; stay bounded anyway */
	if (end == 0 || end > c->end)
		end = c->end;
	tok.end = end;
	c->pos = end;
	return tok;
}

bool
dumpscript_tok_is(const Cursor *c, Tok tok, const char *keyword)
{
	return tok.kind == DUMPSCRIPT_TOK_IDENT &&
	       ascii_ieq(c->text + tok.start, tok.end - tok.start, keyword);
}

static bool
tok_is_char(const Cursor *c, Tok tok, char ch)
{
	return tok.kind == DUMPSCRIPT_TOK_OTHER && tok.end == tok.start + 1 &&
	       c->text[tok.start] == ch;
}

bool
dumpscript_tok_is_name(Tok tok)
{
	return tok.kind == DUMPSCRIPT_TOK_IDENT ||
	       tok.kind == DUMPSCRIPT_TOK_QIDENT;
}

/* If the next token is keyword, consumes it and returns true. */
bool
dumpscript_cursor_accept(Cursor *c, const char *keyword)
{
	Cursor save = *c;

	if (dumpscript_tok_is(c, dumpscript_cursor_next(c), keyword))
		return true;
	*c = save;
	return false;
}

/* If the next tokens are the keywords w1 w2 [w3] (w3 may be NULL), consumes
 * them all and returns true; else consumes nothing ("if" alone may be a
 * name). */
bool
dumpscript_cursor_accept_all(Cursor *c, const char *w1, const char *w2,
                             const char *w3)
{
	Cursor save = *c;

	if (dumpscript_cursor_accept(c, w1) && dumpscript_cursor_accept(c, w2) &&
	    (w3 == NULL || dumpscript_cursor_accept(c, w3)))
		return true;
	*c = save;
	return false;
}

/* Reads name[.name[.name]]; *first and *last get its first and last names. */
bool
dumpscript_cursor_qualified(Cursor *c, Tok *first, Tok *last)
{
	int parts;

	*first = dumpscript_cursor_next(c);
	*last = *first;
	if (!dumpscript_tok_is_name(*first))
		return false;
	for (parts = 1; parts < 3; parts++)
	{
		Cursor save = *c;
		Tok name;

		if (!tok_is_char(c, dumpscript_cursor_next(c), '.'))
		{
			*c = save;
			break;
		}
		name = dumpscript_cursor_next(c);
		if (!dumpscript_tok_is_name(name))
			return false;
		*last = name;
	}
	return true;
}
