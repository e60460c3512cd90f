/*
 * plan: chunking and ordering. No I/O.
 */
#include "plan.h"

#include <stdlib.h>

int
plan_table_chunks(const PlanTable *t, int64_t split_bytes)
{
	int64_t n;

	if (split_bytes <= 0 || !t->splittable || t->bytes <= split_bytes)
		return 1;
	n = (t->bytes + split_bytes - 1) / split_bytes;
	if (n > t->blocks)
		n = t->blocks;
	if (n > 10000)
		n = 10000;
	return n < 1 ? 1 : (int) n;
}

typedef struct Order
{
	int table;
	int64_t bytes;
} Order;

static int
by_size_desc(const void *a, const void *b)
{
	const Order *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->table - y->table;
}

bool
plan_chunks(const PlanTable *tables, int ntables, int64_t split_bytes,
            PlanChunk **out, int *nout)
{
	Order *order = calloc((size_t) ntables + 1, sizeof(Order));
	int total = 0, k = 0;
	PlanChunk *chunks;

	*out = NULL;
	*nout = 0;
	if (order == NULL)
		return false;
	for (int i = 0; i < ntables; i++)
	{
		order[i].table = i;
		order[i].bytes = tables[i].bytes;
		total += plan_table_chunks(&tables[i], split_bytes);
	}
	qsort(order, (size_t) ntables, sizeof(Order), by_size_desc);
	chunks = calloc((size_t) total + 1, sizeof(PlanChunk));
	if (chunks == NULL)
	{
		free(order);
		return false;
	}
	for (int i = 0; i < ntables; i++)
	{
		const PlanTable *t = &tables[order[i].table];
		int n = plan_table_chunks(t, split_bytes);
		int64_t per = n > 1 ? (t->blocks + n - 1) / n : 0;

		for (int c = 0; c < n; c++)
		{
			PlanChunk *pc = &chunks[k++];

			pc->table = order[i].table;
			pc->chunk = c;
			pc->nchunks = n;
			pc->start_block = c == 0 ? -1 : per * c;
			pc->end_block = c == n - 1 ? -1 : per * (c + 1);
		}
	}
	free(order);
	*out = chunks;
	*nout = total;
	return true;
}
