/*
 * dumpscript_int: what the files of dumpscript share; nothing outside
 * src/load/ includes it (callers use load/dumpscript.h).
 *
 *   dumpscript_lex.c  the lexer: PostgreSQL's lexical constructs, the scan
 *                     that records the spans, the Cursor over a statement
 *   dumpscript.c      the DumpScript: its entries built from the spans, and
 *                     the API
 *
 * Two passes over the input, which is never modified:
 *
 *   dumpscript_scan()  walks the text once in PostgreSQL's lexical states and
 *                      records three sorted lists of byte spans: statements
 *                      (first token to the ';' that psql would end it at, see
 *                      Nesting), entry headers, and meta-command lines. Every
 *                      error about malformed text is raised here.
 *   build()            cuts the text into the preamble and the entries using
 *                      those spans, copies each piece without its
 *                      meta-command lines, parses each header's fields, and
 *                      reads the first statement of typed entries with a
 *                      small tokenizer (Cursor) that skips quotes with the
 *                      same helpers dumpscript_scan() uses.
 *
 * Header and statement spans never overlap: a header is only recognised
 * between statements, and a header inside an unfinished statement is an error.
 */
#ifndef PGTIDE_DUMPSCRIPT_INT_H
#define PGTIDE_DUMPSCRIPT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/vec.h"
#include "load/dumpscript.h"


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

typedef enum TokKind
{
	DUMPSCRIPT_TOK_END = 0,
	DUMPSCRIPT_TOK_IDENT,  /* unquoted identifier or keyword */
	DUMPSCRIPT_TOK_QIDENT, /* "quoted identifier" */
	DUMPSCRIPT_TOK_OTHER, /* a string, a dollar-quoted body or one other byte */
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

/* ---- dumpscript.c ---- */


/* ---- dumpscript_lex.c ---- */

/* c downcased if it is an ASCII capital letter. */
unsigned char dumpscript_ascii_lower(unsigned char c);

/* Line breaks in text[from, to). */
int dumpscript_count_lines(const char *text, size_t from, size_t to);

/* end, or end - 1 when text[start, end) ends with '\r'. */
size_t dumpscript_trim_cr(const char *text, size_t start, size_t end);

/* True when the line text[start, end) starts with s. */
bool dumpscript_line_starts(const char *text, size_t start, size_t end,
                            const char *s);

/*
 * One pass over sc->text in the lexer's top-level state; quoted constructs
 * and comments are skipped whole. Fills sc->stmts, sc->headers and sc->metas
 * in text order. On malformed text fills err with "ORIGIN:LINE: ..." and
 * returns false; what was recorded is then the caller's to free.
 */
bool dumpscript_scan(Scan *sc, Error *err);

/* The next token of c's statement, DUMPSCRIPT_TOK_END at its end; never
 * fails. */
Tok dumpscript_cursor_next(Cursor *c);

/* True when tok is the unquoted keyword, in any case. */
bool dumpscript_tok_is(const Cursor *c, Tok tok, const char *keyword);

/* True when tok is an identifier, quoted or not. */
bool dumpscript_tok_is_name(Tok tok);

/* If the next token is keyword, consumes it and returns true. */
bool dumpscript_cursor_accept(Cursor *c, const char *keyword);

/* If the next tokens are the keywords w1 w2 [w3] (w3 may be NULL), consumes
 * them all and returns true; else consumes nothing. */
bool dumpscript_cursor_accept_all(Cursor *c, const char *w1, const char *w2,
                                  const char *w3);

/* Reads name[.name[.name]]; *first and *last get its first and last names.
 * False when the tokens are not such a name. */
bool dumpscript_cursor_qualified(Cursor *c, Tok *first, Tok *last);

#endif
