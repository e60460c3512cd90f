/*
 * json_read: the strict JSON reader json_read.h describes. Recursive
 * descent, at most JSON_MAX_DEPTH deep; nodes refer to each other by index,
 * so growing the node array moves nothing a caller holds.
 */
#include "base/json_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Parser
{
	const char *s; /* the next byte */
	const char *end;
	int line;
	const char *name;
	JsonDoc *doc;
	int cap;       /* nodes allocated */
	int max_nodes; /* at most one node per input byte, and one more */
	size_t used;   /* arena bytes written */
	Error *err;
} Parser;

static bool
fail(Parser *p, const char *what)
{
	return err_set(p->err, ERR_CONFIG, "%s:%d: not valid JSON: %s", p->name,
	               p->line, what);
}

static void
skip_space(Parser *p)
{
	while (p->s < p->end &&
	       (*p->s == ' ' || *p->s == '\t' || *p->s == '\r' || *p->s == '\n'))
	{
		if (*p->s == '\n')
			p->line++;
		p->s++;
	}
}

/* A new node of type at the current line; -1 (err set) out of memory. */
static int
new_node(Parser *p, JsonType type, const char *key)
{
	JsonNode *n;

	if (p->doc->n == p->cap)
	{
		int cap = p->cap == 0 ? 64 : p->cap * 2;
		JsonNode *nodes;

		if (cap > p->max_nodes)
			cap = p->max_nodes;
		if (cap <= p->cap ||
		    (nodes = realloc(p->doc->nodes, (size_t) cap * sizeof(*nodes))) ==
		        NULL)
		{
			err_set(p->err, ERR_INTERNAL, "out of memory");
			return -1;
		}
		p->doc->nodes = nodes;
		p->cap = cap;
	}
	n = &p->doc->nodes[p->doc->n];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->line = p->line;
	n->key = key;
	n->first = -1;
	n->next = -1;
	return p->doc->n++;
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads 4 hex digits after "\u"; -1 when they are not. */
static long
read_hex4(Parser *p)
{
	long v = 0;

	if (p->end - p->s < 4)
		return -1;
	for (int i = 0; i < 4; i++)
	{
		int d = hex_digit(p->s[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	p->s += 4;
	return v;
}

/* Appends code point cp as UTF-8 to the arena. */
static void
put_utf8(Parser *p, long cp)
{
	char *o = p->doc->arena + p->used;

	if (cp < 0x80)
	{
		o[0] = (char) cp;
		p->used += 1;
	}
	else if (cp < 0x800)
	{
		o[0] = (char) (0xc0 | (cp >> 6));
		o[1] = (char) (0x80 | (cp & 0x3f));
		p->used += 2;
	}
	else if (cp < 0x10000)
	{
		o[0] = (char) (0xe0 | (cp >> 12));
		o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char) (0x80 | (cp & 0x3f));
		p->used += 3;
	}
	else
	{
		o[0] = (char) (0xf0 | (cp >> 18));
		o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char) (0x80 | (cp & 0x3f));
		p->used += 4;
	}
}

/*
 * Reads the string at p->s (its opening quote) into the arena; returns it,
 * NUL-terminated, or NULL (err set). A decoded string is never longer than
 * its JSON text, so the arena (twice the input) cannot overflow.
 */
static const char *
read_string(Parser *p)
{
	const char *out = p->doc->arena + p->used;

	p->s++;
	for (;;)
	{
		unsigned char c;

		if (p->s >= p->end)
			return fail(p, "a string without its closing quote"), NULL;
		c = (unsigned char) *p->s++;
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, "a control character inside a string (write it "
			               "as an escape)"),
			       NULL;
		if (c != '\\')
		{
			p->doc->arena[p->used++] = (char) c;
			continue;
		}
		if (p->s >= p->end)
			return fail(p, "a string without its closing quote"), NULL;
		c = (unsigned char) *p->s++;
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				p->doc->arena[p->used++] = (char) c;
				break;
			case 'b':
				p->doc->arena[p->used++] = '\b';
				break;
			case 'f':
				p->doc->arena[p->used++] = '\f';
				break;
			case 'n':
				p->doc->arena[p->used++] = '\n';
				break;
			case 'r':
				p->doc->arena[p->used++] = '\r';
				break;
			case 't':
				p->doc->arena[p->used++] = '\t';
				break;
			case 'u':
			{
				long cp = read_hex4(p);

				if (cp < 0)
					return fail(p, "\\u without four hex digits"), NULL;
				if (cp >= 0xd800 && cp <= 0xdbff)
				{
					long lo;

					if (p->end - p->s < 2 || p->s[0] != '\\' || p->s[1] != 'u')
						return fail(p, "a lone surrogate \\u escape"), NULL;
					p->s += 2;
					lo = read_hex4(p);
					if (lo < 0xdc00 || lo > 0xdfff)
						return fail(p, "a lone surrogate \\u escape"), NULL;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				else if (cp >= 0xdc00 && cp <= 0xdfff)
					return fail(p, "a lone surrogate \\u escape"), NULL;
				if (cp == 0)
					return fail(p, "\\u0000: a NUL character in a string"),
					       NULL;
				put_utf8(p, cp);
				break;
			}
			default:
				return fail(p, "an unknown escape in a string"), NULL;
		}
	}
	p->doc->arena[p->used++] = '\0';
	return out;
}

static bool
is_digit(const Parser *p)
{
	return p->s < p->end && *p->s >= '0' && *p->s <= '9';
}

/* Reads a number's text into the arena as it is. */
static const char *
read_number(Parser *p)
{
	const char *start = p->s;
	char *out = p->doc->arena + p->used;

	if (p->s < p->end && *p->s == '-')
		p->s++;
	if (!is_digit(p))
		return fail(p, "an unexpected character"), NULL;
	if (*p->s == '0')
		p->s++;
	else
		while (is_digit(p))
			p->s++;
	if (p->s < p->end && *p->s == '.')
	{
		p->s++;
		if (!is_digit(p))
			return fail(p, "a number without digits after its point"), NULL;
		while (is_digit(p))
			p->s++;
	}
	if (p->s < p->end && (*p->s == 'e' || *p->s == 'E'))
	{
		p->s++;
		if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
			p->s++;
		if (!is_digit(p))
			return fail(p, "a number without digits in its exponent"), NULL;
		while (is_digit(p))
			p->s++;
	}
	memcpy(out, start, (size_t) (p->s - start));
	p->used += (size_t) (p->s - start);
	p->doc->arena[p->used++] = '\0';
	return out;
}

static bool
literal(Parser *p, const char *word)
{
	size_t len = strlen(word);

	if ((size_t) (p->end - p->s) < len || memcmp(p->s, word, len) != 0)
		return fail(p, "an unexpected character");
	p->s += len;
	return true;
}

static int read_value(Parser *p, int depth, const char *key);

/* Reads the array or object at p->s into node i's children. */
static bool
read_children(Parser *p, int i, int depth, bool object)
{
	char close = object ? '}' : ']';
	int last = -1;

	p->s++;
	skip_space(p);
	if (p->s < p->end && *p->s == close)
	{
		p->s++;
		return true;
	}
	for (;;)
	{
		const char *key = NULL;
		int child;

		skip_space(p);
		if (object)
		{
			if (p->s >= p->end || *p->s != '"')
				return fail(p, "expected a member name in double quotes");
			if ((key = read_string(p)) == NULL)
				return false;
			skip_space(p);
			if (p->s >= p->end || *p->s != ':')
				return fail(p, "expected : after a member name");
			p->s++;
			skip_space(p);
		}
		if ((child = read_value(p, depth + 1, key)) < 0)
			return false;
		if (last < 0)
			p->doc->nodes[i].first = child;
		else
			p->doc->nodes[last].next = child;
		last = child;
		p->doc->nodes[i].count++;
		skip_space(p);
		if (p->s < p->end && *p->s == ',')
		{
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close)
		{
			p->s++;
			return true;
		}
		return fail(p, object ? "expected , or } in an object"
		                      : "expected , or ] in an array");
	}
}

/* Reads one value at p->s (after spaces); its node's index, or -1. */
static int
read_value(Parser *p, int depth, const char *key)
{
	int i;

	if (depth > JSON_MAX_DEPTH)
		return fail(p, "nested too deeply"), -1;
	if (p->s >= p->end)
		return fail(p, "the text ends where a value should be"), -1;
	switch (*p->s)
	{
		case '{':
		case '[':
			if ((i = new_node(p, *p->s == '{' ? JSON_OBJECT : JSON_ARRAY,
			                  key)) < 0 ||
			    !read_children(p, i, depth, *p->s == '{'))
				return -1;
			return i;
		case '"':
			if ((i = new_node(p, JSON_STRING, key)) < 0 ||
			    (p->doc->nodes[i].text = read_string(p)) == NULL)
				return -1;
			return i;
		case 't':
			return literal(p, "true") ? new_node(p, JSON_TRUE, key) : -1;
		case 'f':
			return literal(p, "false") ? new_node(p, JSON_FALSE, key) : -1;
		case 'n':
			return literal(p, "null") ? new_node(p, JSON_NULL, key) : -1;
		default:
			if ((i = new_node(p, JSON_NUMBER, key)) < 0 ||
			    (p->doc->nodes[i].text = read_number(p)) == NULL)
				return -1;
			return i;
	}
}

bool
json_parse(JsonDoc *doc, const char *name, const char *data, size_t len,
           Error *err)
{
	Parser p = {.s = data,
	            .end = data + len,
	            .line = 1,
	            .name = name,
	            .doc = doc,
	            .max_nodes =
	                len < INT32_MAX / 2 ? (int) len + 1 : INT32_MAX / 2,
	            .err = err};

	memset(doc, 0, sizeof(*doc));
	if ((doc->arena = malloc(len * 2 + 2)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	/* a UTF-8 byte order mark is not JSON, but editors write one */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		p.s += 3;
	skip_space(&p);
	if (read_value(&p, 0, NULL) < 0)
		goto fail;
	skip_space(&p);
	if (p.s < p.end)
	{
		fail(&p, "more text after the value");
		goto fail;
	}
	return true;
fail:
	json_doc_free(doc);
	return false;
}

const JsonNode *
json_at(const JsonDoc *doc, int i)
{
	return i >= 0 && i < doc->n ? &doc->nodes[i] : NULL;
}

const JsonNode *
json_get(const JsonDoc *doc, const JsonNode *obj, const char *key)
{
	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (const JsonNode *c = json_at(doc, obj->first); c != NULL;
	     c = json_at(doc, c->next))
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

void
json_doc_free(JsonDoc *doc)
{
	if (doc == NULL)
		return;
	free(doc->nodes);
	free(doc->arena);
	memset(doc, 0, sizeof(*doc));
}
