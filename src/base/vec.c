/*
 * vec: a capped growable array.
 */
#include "base/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
vec_init(Vec *v, size_t size, size_t max)
{
	memset(v, 0, sizeof(*v));
	v->size = size;
	v->max = max;
}

bool
vec_push(Vec *v, const void *item, Error *err)
{
	if (v->count == v->max)
		return err_set(err, ERR_INTERNAL, "more than %zu items in a list",
		               v->max);
	if (v->count == v->cap)
	{
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *items;

		if (cap > v->max)
			cap = v->max;
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

void
vec_free(Vec *v)
{
	free(v->items);
	v->items = NULL;
	v->count = 0;
	v->cap = 0;
}
