/*
 * mapping: table patterns and matching. No I/O.
 */
#include "route/mapping.h"

#include <stdlib.h>
#include <string.h>

bool
mapping_glob(const char *glob, const char *text)
{
	const char *star = NULL;
	const char *resume = NULL;

	while (*text)
	{
		if (*glob == '*')
		{
			star = glob++;
			resume = text;
		}
		else if (*glob == '?' || *glob == *text)
		{
			glob++;
			text++;
		}
		else if (star != NULL)
		{
			glob = star + 1;
			text = ++resume;
		}
		else
			return false;
	}
	while (*glob == '*')
		glob++;
	return *glob == '\0';
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

bool
mapping_parse_pattern(const char *text, TablePattern *p, Error *err)
{
	const char *cur = text;
	bool bad = false;
	char *first, *second = NULL;

	memset(p, 0, sizeof(*p));
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

bool
mapping_pattern_match(const TablePattern *p, const char *schema,
                      const char *name)
{
	return mapping_glob(p->schema, schema) && mapping_glob(p->table, name);
}
