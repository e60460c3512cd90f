/*
 * mapping: table patterns and matching. No I/O.
 */
#include "route/mapping.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/hash.h"

/*
 * Reads a `[...]` set at *like (just past the `[`) against c: moves *like
 * past the `]`; false when the set is unclosed or empty (*bad set).
 */
static bool
like_set(const char **like, char c, bool *bad)
{
	const char *p = *like;
	bool hit = false;

	if (*p == ']' || *p == '\0')
	{
		*bad = true;
		return false;
	}
	while (*p && *p != ']')
	{
		if (p[1] == '-' && p[2] != ']' && p[2] != '\0')
		{
			if ((unsigned char) c >= (unsigned char) p[0] &&
			    (unsigned char) c <= (unsigned char) p[2])
				hit = true;
			p += 3;
		}
		else
		{
			if (*p == c)
				hit = true;
			p++;
		}
	}
	if (*p != ']')
	{
		*bad = true;
		return false;
	}
	*like = p + 1;
	return hit;
}

/*
 * The one matcher behind both syntaxes: `run` matches any run of
 * characters, `one` one character, and with sets a `[...]` set one of
 * those it names. Backtracking to the last `run` is enough, as each later
 * one can only extend what an earlier one would have matched.
 */
static bool
wild_match(const char *pat, const char *text, char run, char one_char,
           bool sets)
{
	const char *star = NULL;
	const char *resume = NULL;
	bool bad = false;

	while (*text)
	{
		const char *after = pat;
		bool one = false;

		if (*pat == run)
		{
			star = pat++;
			resume = text;
			continue;
		}
		if (*pat == one_char)
		{
			one = true;
			after = pat + 1;
		}
		else if (sets && *pat == '[')
		{
			after = pat + 1;
			one = like_set(&after, *text, &bad);
			if (bad)
				return false;
		}
		else if (*pat != '\0' && *pat == *text)
		{
			one = true;
			after = pat + 1;
		}
		if (one)
		{
			pat = after;
			text++;
		}
		else if (star != NULL)
		{
			pat = star + 1;
			text = ++resume;
		}
		else
			return false;
	}
	while (*pat == run)
		pat++;
	return *pat == '\0';
}

bool
mapping_glob(const char *glob, const char *text)
{
	return wild_match(glob, text, '*', '?', false);
}

bool
mapping_like(const char *like, const char *text)
{
	return wild_match(like, text, '%', '_', true);
}

/*
 * A malloc'd copy of like's literal name when it has no wildcard (a `[x]`
 * of one character is that character), else NULL; *oom when malloc fails.
 */
static char *
like_literal(const char *like, bool *oom)
{
	char *out = malloc(strlen(like) + 1);
	size_t n = 0;

	if (out == NULL)
	{
		*oom = true;
		return NULL;
	}
	for (const char *p = like; *p; p++)
	{
		if (*p == '%' || *p == '_')
			goto wild;
		if (*p == '[')
		{
			if (p[1] == '\0' || p[1] == ']' || p[2] != ']')
				goto wild;
			out[n++] = p[1];
			p += 2;
		}
		else
			out[n++] = *p;
	}
	out[n] = '\0';
	return out;
wild:
	free(out);
	return NULL;
}

/* Copies one dot-separated part, removing quotes; "" inside quotes is ". */
static char *
take_part(const char **p, bool *bad)
{
	size_t cap = strlen(*p) + 1;
	char *out = malloc(cap);
	size_t n = 0;
	bool quoted = false;

	if (out == NULL)
	{
		*bad = true;
		return NULL;
	}
	for (; **p; (*p)++)
	{
		char c = **p;

		if (c == '"')
		{
			if (quoted && (*p)[1] == '"')
			{
				out[n++] = '"';
				(*p)++;
			}
			else
				quoted = !quoted;
		}
		else if (c == '.' && !quoted)
			break;
		else
			out[n++] = c;
	}
	out[n] = '\0';
	if (quoted || n == 0)
		*bad = true;
	return out;
}

/* A malloc'd copy of text up to the next CONFIG_RULE_MARK or the end;
 * moves *text past the mark. */
static char *
take_field(const char **text)
{
	const char *end = strchr(*text, CONFIG_RULE_MARK);
	size_t len = end != NULL ? (size_t) (end - *text) : strlen(*text);
	char *out = malloc(len + 1);

	if (out != NULL)
	{
		memcpy(out, *text, len);
		out[len] = '\0';
	}
	*text += len + (end != NULL);
	return out;
}

/* A table_mappings rule, in the form base/config.h describes. */
static bool
parse_rule(const char *text, TablePattern *p, Error *err)
{
	const char *cur = text + 1;

	if (*cur != 'L' && *cur != 'E')
		return err_set(err, ERR_INTERNAL, "invalid selection rule form");
	p->syntax = *cur == 'L' ? PATTERN_LIKE : PATTERN_EXACT;
	cur += 2;
	p->text = take_field(&cur);
	p->schema = take_field(&cur);
	p->table = take_field(&cur);
	if (p->text == NULL || p->schema == NULL || p->table == NULL)
	{
		mapping_pattern_free(p);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

bool
mapping_parse_pattern(const char *text, TablePattern *p, Error *err)
{
	const char *cur = text;
	bool bad = false;
	char *first, *second = NULL;

	memset(p, 0, sizeof(*p));
	if (text[0] == CONFIG_RULE_MARK)
		return parse_rule(text, p, err);
	first = take_part(&cur, &bad);
	if (!bad && *cur == '.')
	{
		cur++;
		second = take_part(&cur, &bad);
		if (*cur != '\0')
			bad = true;
	}
	if (bad)
	{
		free(first);
		free(second);
		err_set(err, ERR_CONFIG, "invalid table pattern \"%s\"", text);
		return err_hint(err, "write schema.table, with * and ? as wildcards "
		                     "and double quotes around names with dots");
	}
	if (second == NULL)
	{
		p->schema = strdup("public");
		p->table = first;
	}
	else
	{
		p->schema = first;
		p->table = second;
	}
	p->text = strdup(text);
	if (p->schema == NULL || p->text == NULL)
	{
		mapping_pattern_free(p);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	return true;
}

void
mapping_pattern_free(TablePattern *p)
{
	if (p == NULL)
		return;
	free(p->schema);
	free(p->table);
	free(p->text);
	memset(p, 0, sizeof(*p));
}

static bool
part_match(PatternSyntax syntax, const char *pat, const char *text)
{
	switch (syntax)
	{
		case PATTERN_LIKE:
			return mapping_like(pat, text);
		case PATTERN_EXACT:
			return strcmp(pat, text) == 0;
		case PATTERN_GLOB:
		default:
			return mapping_glob(pat, text);
	}
}

bool
mapping_pattern_match(const TablePattern *p, const char *schema,
                      const char *name)
{
	return part_match(p->syntax, p->schema, schema) &&
	       part_match(p->syntax, p->table, name);
}

bool
mapping_name_match(const TablePattern *p, const char *name)
{
	return part_match(p->syntax, p->table, name);
}

/* p's part as a literal name (malloc'd), or NULL when it has a wildcard. */
static char *
part_literal(PatternSyntax syntax, const char *pat, bool *oom)
{
	char *out = NULL;

	if (syntax == PATTERN_LIKE)
		return like_literal(pat, oom);
	if (syntax == PATTERN_GLOB && strpbrk(pat, "*?") != NULL)
		return NULL;
	if ((out = strdup(pat)) == NULL)
		*oom = true;
	return out;
}

static size_t
pair_hash(const char *schema, const char *name)
{
	return (size_t) (hash_string(schema) * 31 + hash_string(name));
}

bool
mapping_set_build(PatternSet *s, const TablePattern *pats, int n, Error *err)
{
	size_t slots = 16;
	bool oom = false;

	memset(s, 0, sizeof(*s));
	while (slots < (size_t) n * 2)
		slots *= 2;
	s->pats = pats;
	s->n = n;
	s->mask = slots - 1;
	s->lit_schema = calloc((size_t) n + 1, sizeof(char *));
	s->lit_table = calloc((size_t) n + 1, sizeof(char *));
	s->head = malloc(slots * sizeof(int));
	s->next = malloc(((size_t) n + 1) * sizeof(int));
	s->wild = malloc(((size_t) n + 1) * sizeof(int));
	if (s->lit_schema == NULL || s->lit_table == NULL || s->head == NULL ||
	    s->next == NULL || s->wild == NULL)
		goto oom;
	for (size_t i = 0; i < slots; i++)
		s->head[i] = -1;
	/* backwards, so that each chain lists its patterns in file order */
	for (int i = n - 1; i >= 0; i--)
	{
		char *schema = part_literal(pats[i].syntax, pats[i].schema, &oom);
		char *table = schema != NULL
		                  ? part_literal(pats[i].syntax, pats[i].table, &oom)
		                  : NULL;

		if (oom)
		{
			free(schema);
			goto oom;
		}
		if (table == NULL)
		{
			free(schema);
			s->next[i] = -1;
			continue;
		}
		s->lit_schema[i] = schema;
		s->lit_table[i] = table;
		size_t slot = pair_hash(schema, table) & s->mask;
		s->next[i] = s->head[slot];
		s->head[slot] = i;
	}
	for (int i = 0; i < n; i++)
		if (s->lit_table[i] == NULL)
			s->wild[s->nwild++] = i;
	return true;
oom:
	mapping_set_free(s);
	return err_set(err, ERR_INTERNAL, "out of memory");
}

bool
mapping_set_match(const PatternSet *s, const char *schema, const char *name,
                  bool *used)
{
	bool hit = false;

	if (s->n == 0)
		return false;
	for (int i = s->head[pair_hash(schema, name) & s->mask]; i >= 0;
	     i = s->next[i])
		if (strcmp(s->lit_schema[i], schema) == 0 &&
		    strcmp(s->lit_table[i], name) == 0)
		{
			if (used == NULL)
				return true;
			used[i] = hit = true;
		}
	for (int w = 0; w < s->nwild; w++)
	{
		int i = s->wild[w];

		if (mapping_pattern_match(&s->pats[i], schema, name))
		{
			if (used == NULL)
				return true;
			used[i] = hit = true;
		}
	}
	return hit;
}

void
mapping_set_free(PatternSet *s)
{
	if (s == NULL)
		return;
	for (int i = 0; s->lit_schema != NULL && i < s->n; i++)
	{
		free(s->lit_schema[i]);
		free(s->lit_table[i]);
	}
	free(s->lit_schema);
	free(s->lit_table);
	free(s->head);
	free(s->next);
	free(s->wild);
	memset(s, 0, sizeof(*s));
}
