/*
 * vec: a growable array of fixed-size items with a hard cap on their
 * number, the array twin of buf. Base layer: no libpq.
 *
 * Embedded: vec_init(&v, sizeof(Item), max) or VEC_INIT; end with
 * vec_free(). `items` is a view of count items, valid until the next push;
 * the fields are otherwise the module's.
 */
#ifndef PGTIDE_VEC_H
#define PGTIDE_VEC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct Vec
{
	void *items;
	size_t count;
	size_t cap;  /* items allocated */
	size_t size; /* bytes per item */
	size_t max;  /* items it may hold */
} Vec;

#define VEC_INIT(item_size, max_items)          \
	{                                           \
		.size = (item_size), .max = (max_items) \
	}

/* Makes v an empty array of items of size bytes, at most max of them. */
void vec_init(Vec *v, size_t size, size_t max);

/*
 * Appends a copy of item. Fails (ERR_INTERNAL) past max items or when
 * memory runs out; v is unchanged then.
 */
bool vec_push(Vec *v, const void *item, Error *err);

/* Frees the items; v may be pushed to again. vec_free on a zeroed Vec is a
 * no-op. */
void vec_free(Vec *v);

#endif
