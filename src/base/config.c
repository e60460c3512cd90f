/*
 * config: owns TaskConfig as a whole: its defaults (config_init), what it
 * owns and how that is freed, the rules between keys (config_validate), and
 * the StrList and text helpers the other files of config share.
 *
 * Pure: bytes and strings in, a struct out. No file of config includes
 * libpq, reads a clock, touches a socket or keeps mutable globals; the only
 * I/O is reading the task file, in config_yaml.c. This file must never parse
 * a value or read the task file: one value is config_keys.c's, the task
 * file config_yaml.c's.
 */
#include "base/config.h"
#include "base/config_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

bool
config_out_of_memory(Error *err)
{
	return err_set(err, ERR_INTERNAL, "out of memory");
}

/* Returns a malloc'd NUL-terminated copy of text[0..len), or NULL. */
char *
config_dup_text(const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, text, len);
	copy[len] = '\0';
	return copy;
}

/*
 * config_init() is declared unable to fail, and only its two short defaults
 * need memory; if even that is gone nothing useful can follow, so this is
 * the one place that aborts instead of returning an Error.
 */
static char *
dup_default(const char *text)
{
	char *copy = config_dup_text(text, strlen(text));

	if (copy == NULL)
		abort();
	return copy;
}

bool
config_text_is(const char *text, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(text, word, len) == 0;
}

/*
 * Writes text[0..len) into dst (CONFIG_QUOTED_CAP bytes) as it should
 * appear between double quotes in a message: quote, backslash and control
 * bytes escaped, at most CONFIG_QUOTE_MAX input bytes and then "...". Returns
 * dst.
 */
const char *
config_quote(char *dst, const char *text, size_t len)
{
	size_t shown = len;
	size_t out = 0;

	if (shown > CONFIG_QUOTE_MAX)
	{
		shown = CONFIG_QUOTE_MAX;
		/* Do not cut a UTF-8 sequence: back up to its lead byte. */
		while (shown > 0 && ((unsigned char) text[shown] & 0xC0) == 0x80)
			shown--;
	}
	for (size_t i = 0; i < shown; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (c == '"' || c == '\\')
		{
			dst[out++] = '\\';
			dst[out++] = (char) c;
		}
		else if (c == '\n')
		{
			dst[out++] = '\\';
			dst[out++] = 'n';
		}
		else if (c == '\t')
		{
			dst[out++] = '\\';
			dst[out++] = 't';
		}
		else if (c < 0x20 || c == 0x7F)
			out += (size_t) snprintf(dst + out, CONFIG_QUOTED_CAP - out,
			                         "\\x%02X", c);
		else
			dst[out++] = (char) c;
	}
	if (shown < len)
	{
		memcpy(dst + out, "...", 3);
		out += 3;
	}
	dst[out] = '\0';
	return dst;
}

/* ---- StrList ---- */

void
config_strlist_free(StrList *list)
{
	for (int i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/*
 * Appends a copy of text[0..len). StrList has no capacity field, so the
 * capacity is implied by the count: 0 for an empty list, else the next power
 * of two of at least 4. Lists are only ever grown here, which keeps that true.
 */
bool
config_strlist_append(StrList *list, const char *text, size_t len, Error *err)
{
	int n = list->count;
	char *copy;

	if (n == INT_MAX / 2)
		return err_set(err, ERR_CONFIG, "too many items in a list");
	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
	{
		size_t cap = n == 0 ? 4 : (size_t) n * 2;
		char **items = realloc(list->items, cap * sizeof(*items));

		if (items == NULL)
			return config_out_of_memory(err);
		list->items = items;
	}
	copy = config_dup_text(text, len);
	if (copy == NULL)
		return config_out_of_memory(err);
	list->items[list->count++] = copy;
	return true;
}

/* ---- StrMap ---- */

void
config_strmap_free(StrMap *map)
{
	config_strlist_free(&map->keys);
	config_strlist_free(&map->values);
	free(map->line);
	map->line = NULL;
}

bool
config_strmap_add(StrMap *map, const char *key, size_t key_len,
                  const char *value, size_t value_len, int line, Error *err)
{
	int n = map->keys.count;
	int *lines;

	/* YAML mappings are checked for duplicates by their walker; this also
	 * holds for a map built any other way. */
	for (int i = 0; i < n; i++)
		if (strlen(map->keys.items[i]) == key_len &&
		    memcmp(map->keys.items[i], key, key_len) == 0)
			return err_set(err, ERR_CONFIG, "given twice, first at line %d",
			               map->line[i]);
	lines = realloc(map->line, (size_t) (n + 1) * sizeof(*lines));
	if (lines == NULL)
		return config_out_of_memory(err);
	map->line = lines;
	if (!config_strlist_append(&map->keys, key, key_len, err))
		return false;
	if (!config_strlist_append(&map->values, value, value_len, err))
	{
		free(map->keys.items[--map->keys.count]);
		return false;
	}
	map->line[n] = line;
	return true;
}

bool
config_strmap_copy(StrMap *dst, const StrMap *src, Error *err)
{
	memset(dst, 0, sizeof(*dst));
	for (int i = 0; i < src->keys.count; i++)
		if (!config_strmap_add(dst, src->keys.items[i],
		                       strlen(src->keys.items[i]), src->values.items[i],
		                       strlen(src->values.items[i]), src->line[i], err))
		{
			config_strmap_free(dst);
			return false;
		}
	return true;
}

/* ---- public API ---- */

void
config_init(TaskConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->task = dup_default("default");
	cfg->copy_jobs = 4;
	cfg->index_jobs = 2;
	cfg->split_bytes = CONFIG_SPLIT_AUTO;
	cfg->copy_format = COPY_FORMAT_AUTO;
	cfg->schema_mode = SCHEMA_MODE_CREATE;
	cfg->on_existing = ON_EXISTING_REFUSE;
	cfg->progress_interval_s = 10;
	cfg->state_schema = dup_default("pgtide");
	cfg->cdc_memory_bytes = INT64_C(256) * 1024 * 1024;
	cfg->on_conflict = ON_CONFLICT_STOP;
	cfg->validate_sample = 1.0;
	cfg->cutover_fence = FENCE_REVOKE;
	cfg->cutover_max_lag_bytes = INT64_C(16) * 1024 * 1024;
	cfg->cutover_timeout_s = 300;
	cfg->cutover_sequence_margin = 1000;
	cfg->cutover_validate = FINAL_VALIDATION_COUNTS;
	cfg->http_ready_lag_s = 10;
	cfg->throttle.probe_latency_ms = 100;
	cfg->throttle.probe_interval_ms = 1000;
	cfg->check_wal_sample_ms = 1000;
	cfg->guard_interval_s = 5;
	cfg->guard_xmin_age_s = 3600;
	cfg->guard_xid_age = 1000000000;
	cfg->guard_heartbeat_s = 30;
}

void
config_free(TaskConfig *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->task);
	free(cfg->source_uri);
	free(cfg->target_uri);
	config_strlist_free(&cfg->include);
	config_strlist_free(&cfg->exclude);
	free(cfg->table_mappings);
	free(cfg->pg_dump);
	free(cfg->state_schema);
	free(cfg->cdc_spill_dir);
	free(cfg->cdc_slot);
	free(cfg->cdc_start_lsn);
	free(cfg->cdc_publication);
	free(cfg->http_listen);
	free(cfg->throttle.probe_query);
	config_strlist_free(&cfg->check_skip);
	config_strlist_free(&cfg->validate_tables);
	config_strlist_free(&cfg->cutover_roles);
	free(cfg->cutover_fence_command);
	free(cfg->cutover_unfence_command);
	config_strmap_free(&cfg->rename_schemas);
	config_strmap_free(&cfg->rename_tables);
	config_strmap_free(&cfg->rename_columns);
	config_strlist_free(&cfg->remove_columns);
	config_strlist_free(&cfg->transformations);
	config_strmap_free(&cfg->filters);
	config_strmap_free(&cfg->targets);
	free(cfg->shard_key);
	config_strmap_free(&cfg->shard_values);
	config_strmap_free(&cfg->shard_bounds);
	free(cfg->shard_lookup);
	config_strmap_free(&cfg->shard_tables);
	free(cfg->shard_target);
	config_strmap_free(&cfg->shard_routes);
	config_strmap_free(&cfg->shard_own_filters);
	memset(cfg, 0, sizeof(*cfg));
}

void
config_source_name(const TaskConfig *cfg, char *out, size_t cap)
{
	if (cfg->shard_target != NULL)
		snprintf(out, cap, "pgtide_%s_%s", cfg->task, cfg->shard_target);
	else
		snprintf(out, cap, "pgtide_%s", cfg->task);
}

void
config_slot_name(const TaskConfig *cfg, char *out, size_t cap)
{
	if (cfg->shard_target != NULL && cfg->shard_slot == SHARD_SLOT_ONE)
		snprintf(out, cap, "pgtide_%s", cfg->task);
	else
		config_source_name(cfg, out, cap);
}

bool
config_validate(const TaskConfig *cfg, Error *err)
{
	if (cfg->source_uri == NULL || cfg->source_uri[0] == '\0')
	{
		err_set(err, ERR_CONFIG, "no source given");
		return err_hint(err,
		                "pass --source URI or set source in the task file");
	}
	if (cfg->targets.keys.count > 0 && cfg->target_uri != NULL)
	{
		err_set(err, ERR_CONFIG, "target and targets cannot both be given");
		return err_hint(err, "name one target with target, or several with "
		                     "targets and a shard section");
	}
	if (cfg->targets.keys.count == 0 &&
	    (cfg->shard_key != NULL || cfg->shard_values.keys.count > 0 ||
	     cfg->shard_bounds.keys.count > 0 || cfg->shard_lookup != NULL ||
	     cfg->shard_tables.keys.count > 0))
	{
		err_set(err, ERR_CONFIG, "the shard section needs targets");
		return err_hint(err, "name the targets rows are routed to: "
		                     "targets: {NAME: URI, ...}");
	}
	if (cfg->targets.keys.count == 0 &&
	    (cfg->target_uri == NULL || cfg->target_uri[0] == '\0'))
	{
		err_set(err, ERR_CONFIG, "no target given");
		return err_hint(err,
		                "pass --target URI or set target in the task file");
	}
	if (cfg->cutover_fence == FENCE_COMMAND &&
	    (cfg->cutover_fence_command == NULL ||
	     cfg->cutover_unfence_command == NULL))
	{
		err_set(err, ERR_CONFIG,
		        "cutover.fence command needs cutover.fence_command and "
		        "cutover.unfence_command");
		return err_hint(err, "the undo command is what pgtide runs when a "
		                     "cutover step fails after the fence");
	}
	if (cfg->schema_mode == SCHEMA_MODE_CREATE &&
	    cfg->on_existing == ON_EXISTING_TRUNCATE)
	{
		err_set(err, ERR_CONFIG,
		        "schema.on_existing truncate cannot be used with schema.mode "
		        "create");
		return err_hint(err, "truncate applies to existing mode; use drop to "
		                     "recreate tables, or --schema existing");
	}
	if (cfg->schema_mode == SCHEMA_MODE_EXISTING &&
	    cfg->on_existing == ON_EXISTING_DROP)
	{
		err_set(err, ERR_CONFIG,
		        "schema.on_existing drop cannot be used with schema.mode "
		        "existing");
		return err_hint(err, "drop applies to create mode; use truncate to "
		                     "empty tables, or --schema create");
	}
	return true;
}
