/*
 * filter: the task file's row filters by table name. No I/O.
 */
#include "route/filter.h"

#include <string.h>

#include "route/mapping.h"

const char *
filter_own(const TaskConfig *cfg, const char *schema, const char *name)
{
	if (filter_find(&cfg->shard_routes, schema, name, NULL) != NULL)
		return filter_find(&cfg->shard_own_filters, schema, name, NULL);
	return filter_find(&cfg->filters, schema, name, NULL);
}

bool
filter_key_names(const StrMap *filters, int i, const char *schema,
                 const char *name)
{
	TablePattern p;
	Error err;
	bool hit;

	err_clear(&err);
	if (!mapping_parse_pattern(filters->keys.items[i], &p, &err))
		return false;
	hit = strcmp(p.schema, schema) == 0 && strcmp(p.table, name) == 0;
	mapping_pattern_free(&p);
	return hit;
}

const char *
filter_find(const StrMap *filters, const char *schema, const char *name,
            int *line)
{
	for (int i = 0; i < filters->keys.count; i++)
		if (filter_key_names(filters, i, schema, name))
		{
			if (line != NULL)
				*line = filters->line[i];
			return filters->values.items[i];
		}
	return NULL;
}
