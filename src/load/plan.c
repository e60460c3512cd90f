/*
 * plan: chunking and ordering. No I/O.
 */
#include "load/plan.h"

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
	int chunk;
	int nchunks;
	int64_t bytes; /* this chunk's share of the table */
} Order;

/* Largest chunk first; a table's chunks stay in block order. */
static int
by_size_desc(const void *a, const void *b)
{
	const Order *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->table != y->table)
		return x->table - y->table;
	return x->chunk - y->chunk;
}

bool
plan_chunks(const PlanTable *tables, int ntables, int64_t split_bytes,
            PlanChunk **out, int *nout)
{
	Order *order;
	PlanChunk *chunks;
	int total = 0, k = 0;

	*out = NULL;
	*nout = 0;
	for (int i = 0; i < ntables; i++)
		total += plan_table_chunks(&tables[i], split_bytes);
	order = calloc((size_t) total + 1, sizeof(Order));
	chunks = calloc((size_t) total + 1, sizeof(PlanChunk));
	if (order == NULL || chunks == NULL)
	{
		free(order);
		free(chunks);
		return false;
	}
	for (int i = 0; i < ntables; i++)
	{
		int n = plan_table_chunks(&tables[i], split_bytes);

		for (int c = 0; c < n; c++)
		{
			order[k].table = i;
			order[k].chunk = c;
			order[k].nchunks = n;
			order[k++].bytes = tables[i].bytes / n;
		}
	}
	/*
	 * Longest first over chunks, not tables: a table cut in two must not
	 * keep every worker busy while a slightly smaller unsplit table waits
	 * to become the last, lonely job.
	 */
	qsort(order, (size_t) total, sizeof(Order), by_size_desc);
	for (int i = 0; i < total; i++)
	{
		const PlanTable *t = &tables[order[i].table];
		int n = order[i].nchunks, c = order[i].chunk;
		int64_t per = n > 1 ? (t->blocks + n - 1) / n : 0;
		PlanChunk *pc = &chunks[i];

		pc->table = order[i].table;
		pc->chunk = c;
		pc->nchunks = n;
		pc->start_block = c == 0 ? -1 : per * c;
		pc->end_block = c == n - 1 ? -1 : per * (c + 1);
	}
	free(order);
	*out = chunks;
	*nout = total;
	return true;
}
