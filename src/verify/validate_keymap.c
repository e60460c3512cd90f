/*
 * validate_keymap: keys as strings ("len:value" pieces, so that no two
 * keys collide) and a map from them to row indexes, for naming the rows of
 * one leaf or one recheck batch. Open addressing, sized at init for the
 * rows it will hold and never resized. Reads result rows it is given;
 * never sends a query.
 */
#include "verify/validate_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hash.h"
#include "pg/pg.h"

/*
 * Encodes key values as "len:value" pieces, so no two keys collide.
 * Malloc'd; NULL when out of memory.
 */
char *
keymap_encode_row(const PGresult *res, int row, int ncols)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	for (int c = 0; c < ncols; c++)
	{
		if (PQgetisnull(res, row, c))
			buf_add_str(&b, "N", &err);
		else
		{
			buf_printf(&b, &err, "%d:", PQgetlength(res, row, c));
			buf_add(&b, PQgetvalue(res, row, c),
			        (size_t) PQgetlength(res, row, c), &err);
		}
	}
	return buf_take(&b, &out, &err) ? out : NULL;
}

/* keymap_encode_row of n values (NULL: SQL NULL). */
char *
keymap_encode_strv(char *const *v, int n)
{
	Buf b = BUF_INIT(VALIDATE_SQL_MAX);
	Error err = ERR_INIT; /* a NULL return says it */
	char *out;

	for (int c = 0; c < n; c++)
	{
		if (v[c] == NULL)
			buf_add_str(&b, "N", &err);
		else
			buf_printf(&b, &err, "%zu:%s", strlen(v[c]), v[c]);
	}
	return buf_take(&b, &out, &err) ? out : NULL;
}

bool
keymap_init(KeyMap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < n * 2 + 1)
		m->cap *= 2;
	m->n = 0;
	m->keys = calloc(m->cap, sizeof(char *));
	m->vals = calloc(m->cap, sizeof(int));
	return m->keys != NULL && m->vals != NULL;
}

void
keymap_free(KeyMap *m)
{
	for (size_t i = 0; m->keys != NULL && i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Takes ownership of key. A key already there keeps its first value. */
void
keymap_put(KeyMap *m, char *key, int val)
{
	size_t i = (size_t) hash_string(key) & (m->cap - 1);

	while (m->keys[i] != NULL)
	{
		if (strcmp(m->keys[i], key) == 0)
		{
			free(key);
			return;
		}
		i = (i + 1) & (m->cap - 1);
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
}

/* The value of key, or -1. */
int
keymap_get(const KeyMap *m, const char *key)
{
	size_t i = (size_t) hash_string(key) & (m->cap - 1);

	while (m->keys[i] != NULL)
	{
		if (strcmp(m->keys[i], key) == 0)
			return m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	return -1;
}
