/*
 * config_keys: every key of the task file and the command line, and what a
 * value must be to be stored in one.
 *
 * It owns config_keys[] (each key's dotted name, field and type), the names
 * of each choice, the lookups and key lists that messages and hints use, and
 * config_key_apply: checking one value against its key's type and storing it
 * in the TaskConfig. config_set, config_parse_size and the *_name functions
 * are its part of the API.
 *
 * It must never read YAML or a file: it takes one value as text, and where
 * the value came from is its caller's to say (config_set's origin,
 * config_yaml.c's "FILE:LINE: key K: ").
 */
#include "base/config.h"
#include "base/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TASK_NAME_MAX 40
#define IDENT_MAX     63 /* PostgreSQL's NAMEDATALEN - 1 */

/* The choice names, indexed by the enum value they stand for. */
static const char *const copy_format_names[] = {"auto", "text", "binary", NULL};
static const char *const schema_mode_names[] = {"create", "existing", NULL};
static const char *const on_existing_names[] = {"refuse", "truncate", "drop",
                                                NULL};
static const char *const on_conflict_names[] = {"stop", "skip", "upsert", NULL};
static const char *const unknown_tables_names[] = {"stop", "ignore", NULL};
static const char *const shard_method_names[] = {"hash", "list", "range",
                                                 "lookup", NULL};
static const char *const shard_slot_names[] = {"one", "per_target", NULL};
static const char *const fence_names[] = {"revoke", "read_only", "command",
                                          NULL};
static const char *const final_validation_names[] = {"none", "counts", "full",
                                                     NULL};
static const char *const diverged_names[] = {"refuse", "recopy", NULL};
static const char *const dropped_names[] = {"refuse", "drop", "keep", NULL};
static const char *const spacing_names[] = {"none", "modulo", NULL};
static const char *const off_on_names[] = {"off", "on", NULL};

_Static_assert(COPY_FORMAT_AUTO == 0 && COPY_FORMAT_TEXT == 1 &&
                   COPY_FORMAT_BINARY == 2,
               "copy_format_names follows CopyFormat");
_Static_assert(SCHEMA_MODE_CREATE == 0 && SCHEMA_MODE_EXISTING == 1,
               "schema_mode_names follows SchemaMode");
_Static_assert(ON_EXISTING_REFUSE == 0 && ON_EXISTING_TRUNCATE == 1 &&
                   ON_EXISTING_DROP == 2,
               "on_existing_names follows OnExisting");
_Static_assert(ON_CONFLICT_STOP == 0 && ON_CONFLICT_SKIP == 1 &&
                   ON_CONFLICT_UPSERT == 2,
               "on_conflict_names follows OnConflict");
_Static_assert(FENCE_REVOKE == 0 && FENCE_READ_ONLY == 1 && FENCE_COMMAND == 2,
               "fence_names follows FenceMethod");
_Static_assert(FINAL_VALIDATION_NONE == 0 && FINAL_VALIDATION_COUNTS == 1 &&
                   FINAL_VALIDATION_FULL == 2,
               "final_validation_names follows FinalValidation");
_Static_assert(SHARD_HASH == 0 && SHARD_LIST == 1 && SHARD_RANGE == 2 &&
                   SHARD_LOOKUP == 3,
               "shard_method_names follows ShardMethod");
_Static_assert(SHARD_SLOT_ONE == 0 && SHARD_SLOT_PER_TARGET == 1,
               "shard_slot_names follows ShardSlot");
_Static_assert(DIVERGED_REFUSE == 0 && DIVERGED_RECOPY == 1,
               "diverged_names follows DivergedPolicy");
_Static_assert(DROPPED_REFUSE == 0 && DROPPED_DROP == 1 && DROPPED_KEEP == 2,
               "dropped_names follows DroppedPolicy");
_Static_assert(SEQUENCE_SPACING_NONE == 0 && SEQUENCE_SPACING_MODULO == 1,
               "spacing_names follows SequenceSpacing");

/* In the order docs/task-file.md and the hints list them. */
static const KeyDef config_keys[] = {
    {.name = "task", .id = CONFIG_KEY_TASK, .type = CONFIG_KEY_TYPE_NAME},
    {.name = "source", .id = CONFIG_KEY_SOURCE, .type = CONFIG_KEY_TYPE_STRING},
    {.name = "target", .id = CONFIG_KEY_TARGET, .type = CONFIG_KEY_TYPE_STRING},
    {.name = "tables.include",
     .id = CONFIG_KEY_INCLUDE,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "tables.exclude",
     .id = CONFIG_KEY_EXCLUDE,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "table_mappings",
     .id = CONFIG_KEY_TABLE_MAPPINGS,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "copy.jobs",
     .id = CONFIG_KEY_COPY_JOBS,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 64},
    {.name = "copy.index_jobs",
     .id = CONFIG_KEY_INDEX_JOBS,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 64},
    {.name = "copy.split_tables_larger_than",
     .id = CONFIG_KEY_SPLIT_BYTES,
     .type = CONFIG_KEY_TYPE_SIZE},
    {.name = "copy.format",
     .id = CONFIG_KEY_COPY_FORMAT,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = copy_format_names},
    {.name = "schema.mode",
     .id = CONFIG_KEY_SCHEMA_MODE,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = schema_mode_names},
    {.name = "schema.on_existing",
     .id = CONFIG_KEY_ON_EXISTING,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = on_existing_names},
    {.name = "schema.pg_dump",
     .id = CONFIG_KEY_PG_DUMP,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "state.schema",
     .id = CONFIG_KEY_STATE_SCHEMA,
     .type = CONFIG_KEY_TYPE_IDENT},
    {.name = "progress.interval",
     .id = CONFIG_KEY_PROGRESS_INTERVAL,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 3600},
    {.name = "cdc.memory_limit",
     .id = CONFIG_KEY_CDC_MEMORY,
     .type = CONFIG_KEY_TYPE_SIZE},
    {.name = "cdc.spill_dir",
     .id = CONFIG_KEY_CDC_SPILL_DIR,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "cdc.on_conflict",
     .id = CONFIG_KEY_ON_CONFLICT,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = on_conflict_names},
    {.name = "cdc.unknown_tables",
     .id = CONFIG_KEY_UNKNOWN_TABLES,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = unknown_tables_names},
    {.name = "cdc.slot",
     .id = CONFIG_KEY_CDC_SLOT,
     .type = CONFIG_KEY_TYPE_SLOT},
    {.name = "cdc.start_lsn",
     .id = CONFIG_KEY_CDC_START_LSN,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "cdc.publication",
     .id = CONFIG_KEY_CDC_PUBLICATION,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "check.skip",
     .id = CONFIG_KEY_CHECK_SKIP,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "check.wal_free_space",
     .id = CONFIG_KEY_CHECK_WAL_FREE,
     .type = CONFIG_KEY_TYPE_SIZE},
    {.name = "check.wal_sample",
     .id = CONFIG_KEY_CHECK_WAL_SAMPLE,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 100,
     .max = 600000},
    {.name = "validate.tables",
     .id = CONFIG_KEY_VALIDATE_TABLES,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "validate.sample",
     .id = CONFIG_KEY_VALIDATE_SAMPLE,
     .type = CONFIG_KEY_TYPE_FRACTION},
    {.name = "cutover.fence",
     .id = CONFIG_KEY_CUTOVER_FENCE,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = fence_names},
    {.name = "cutover.roles",
     .id = CONFIG_KEY_CUTOVER_ROLES,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "cutover.fence_command",
     .id = CONFIG_KEY_CUTOVER_FENCE_CMD,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "cutover.unfence_command",
     .id = CONFIG_KEY_CUTOVER_UNFENCE_CMD,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "cutover.max_lag",
     .id = CONFIG_KEY_CUTOVER_MAX_LAG,
     .type = CONFIG_KEY_TYPE_SIZE},
    {.name = "cutover.timeout",
     .id = CONFIG_KEY_CUTOVER_TIMEOUT,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 86400},
    {.name = "cutover.sequence_margin",
     .id = CONFIG_KEY_CUTOVER_MARGIN,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 1000000000},
    {.name = "cutover.validate",
     .id = CONFIG_KEY_CUTOVER_VALIDATE,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = final_validation_names},
    {.name = "cutover.diverged",
     .id = CONFIG_KEY_CUTOVER_DIVERGED,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = diverged_names},
    {.name = "cutover.dropped_tables",
     .id = CONFIG_KEY_CUTOVER_DROPPED,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = dropped_names},
    {.name = "cutover.sequence_spacing",
     .id = CONFIG_KEY_CUTOVER_SPACING,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = spacing_names},
    {.name = "http.listen",
     .id = CONFIG_KEY_HTTP_LISTEN,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "http.ready_lag",
     .id = CONFIG_KEY_HTTP_READY_LAG,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 86400},
    {.name = "throttle.copy_workers",
     .id = CONFIG_KEY_THROTTLE_COPY_WORKERS,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 64},
    {.name = "throttle.rows_per_second",
     .id = CONFIG_KEY_THROTTLE_ROWS,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 1000000000},
    {.name = "throttle.bytes_per_second",
     .id = CONFIG_KEY_THROTTLE_BYTES,
     .type = CONFIG_KEY_TYPE_SIZE},
    {.name = "throttle.index_builds",
     .id = CONFIG_KEY_THROTTLE_INDEX_BUILDS,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 64},
    {.name = "throttle.adaptive",
     .id = CONFIG_KEY_THROTTLE_ADAPTIVE,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = off_on_names},
    {.name = "throttle.probe_latency",
     .id = CONFIG_KEY_THROTTLE_PROBE_LATENCY,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 60000},
    {.name = "throttle.probe_interval",
     .id = CONFIG_KEY_THROTTLE_PROBE_INTERVAL,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 100,
     .max = 60000},
    {.name = "throttle.probe_query",
     .id = CONFIG_KEY_THROTTLE_PROBE_QUERY,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "guard.wal_warn",
     .id = CONFIG_KEY_GUARD_WAL_WARN,
     .type = CONFIG_KEY_TYPE_WAL_LIMIT},
    {.name = "guard.wal_pause",
     .id = CONFIG_KEY_GUARD_WAL_PAUSE,
     .type = CONFIG_KEY_TYPE_WAL_LIMIT},
    {.name = "guard.wal_stop",
     .id = CONFIG_KEY_GUARD_WAL_STOP,
     .type = CONFIG_KEY_TYPE_WAL_LIMIT},
    {.name = "guard.interval",
     .id = CONFIG_KEY_GUARD_INTERVAL,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 1,
     .max = 3600},
    {.name = "guard.xmin_age",
     .id = CONFIG_KEY_GUARD_XMIN_AGE,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 30 * 86400},
    {.name = "guard.xid_age",
     .id = CONFIG_KEY_GUARD_XID_AGE,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 2000000000},
    {.name = "guard.heartbeat",
     .id = CONFIG_KEY_GUARD_HEARTBEAT,
     .type = CONFIG_KEY_TYPE_INT,
     .min = 0,
     .max = 86400},
    {.name = "rename.schemas",
     .id = CONFIG_KEY_RENAME_SCHEMAS,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "rename.tables",
     .id = CONFIG_KEY_RENAME_TABLES,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "rename.columns",
     .id = CONFIG_KEY_RENAME_COLUMNS,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "remove_columns",
     .id = CONFIG_KEY_REMOVE_COLUMNS,
     .type = CONFIG_KEY_TYPE_LIST},
    {.name = "filters", .id = CONFIG_KEY_FILTERS, .type = CONFIG_KEY_TYPE_MAP},
    {.name = "targets", .id = CONFIG_KEY_TARGETS, .type = CONFIG_KEY_TYPE_MAP},
    {.name = "shard.key",
     .id = CONFIG_KEY_SHARD_KEY,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "shard.method",
     .id = CONFIG_KEY_SHARD_METHOD,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = shard_method_names},
    {.name = "shard.values",
     .id = CONFIG_KEY_SHARD_VALUES,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "shard.bounds",
     .id = CONFIG_KEY_SHARD_BOUNDS,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "shard.lookup",
     .id = CONFIG_KEY_SHARD_LOOKUP,
     .type = CONFIG_KEY_TYPE_STRING},
    {.name = "shard.tables",
     .id = CONFIG_KEY_SHARD_TABLES,
     .type = CONFIG_KEY_TYPE_MAP},
    {.name = "shard.slot",
     .id = CONFIG_KEY_SHARD_SLOT,
     .type = CONFIG_KEY_TYPE_CHOICE,
     .choices = shard_slot_names},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Appends ", item" (or "item" first) to the list being built in buf. */
static void
join_append(char *buf, size_t cap, const char *item, size_t item_len)
{
	size_t used = strlen(buf);

	snprintf(buf + used, cap - used, "%s%.*s", used > 0 ? ", " : "",
	         (int) item_len, item);
}

static void
join_choices(const char *const *choices, char *buf, size_t cap)
{
	buf[0] = '\0';
	for (int i = 0; choices[i] != NULL; i++)
		join_append(buf, cap, choices[i], strlen(choices[i]));
}

/* ---- the key table ---- */

/* Length of the section part of a dotted name; 0 for a top-level key. */
static size_t
section_len(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot == NULL ? 0 : (size_t) (dot - name);
}

static const char *
leaf_of(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot == NULL ? name : dot + 1;
}

/*
 * The key named `leaf` inside `section` (NULL: the top level), or NULL.
 * Lengths are explicit because YAML keys may hold NUL bytes.
 */
const KeyDef *
config_find_key(const char *section, const char *leaf, size_t leaf_len)
{
	size_t sec_len = section == NULL ? 0 : strlen(section);

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const KeyDef *key = &config_keys[i];

		if (section_len(key->name) != sec_len ||
		    (sec_len > 0 && memcmp(key->name, section, sec_len) != 0))
			continue;
		if (config_text_is(leaf, leaf_len, leaf_of(key->name)))
			return key;
	}
	return NULL;
}

static const KeyDef *
find_dotted(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* True when text names a nested mapping of the top level ("copy"). */
bool
config_is_section(const char *text, size_t len)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		size_t n = section_len(config_keys[i].name);

		if (n > 0 && n == len && memcmp(config_keys[i].name, text, len) == 0)
			return true;
	}
	return false;
}

/*
 * Lists the keys valid inside `section` (NULL: the top level, where each
 * section is one key) into buf.
 */
void
config_list_keys(const char *section, char *buf, size_t cap)
{
	size_t sec_len = section == NULL ? 0 : strlen(section);

	buf[0] = '\0';
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const char *name = config_keys[i].name;
		size_t n = section_len(name);
		bool seen = false;

		if (section != NULL)
		{
			if (n == sec_len && memcmp(name, section, n) == 0)
				join_append(buf, cap, leaf_of(name), strlen(leaf_of(name)));
			continue;
		}
		if (n == 0)
		{
			join_append(buf, cap, name, strlen(name));
			continue;
		}
		/* A section is listed once, where its first key stands. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = section_len(config_keys[j].name) == n &&
			       memcmp(config_keys[j].name, name, n) == 0;
		if (!seen)
			join_append(buf, cap, name, n);
	}
}

/*
 * The keys a dotted name could have meant: those of its section when it
 * names one ("copy.jbos": copy.jobs, ...), else the top-level keys with each
 * section as "copy.*". Every key at once no longer fits one message.
 */
static void
list_near_keys(const char *name, char *buf, size_t cap)
{
	size_t sec = section_len(name);
	bool in_section = sec > 0 && config_is_section(name, sec);

	buf[0] = '\0';
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const char *k = config_keys[i].name;
		size_t n = section_len(k);

		if (in_section)
		{
			if (n == sec && memcmp(k, name, sec) == 0)
				join_append(buf, cap, k, strlen(k));
		}
		else if (n == 0)
			join_append(buf, cap, k, strlen(k));
		else if (i == 0 || section_len(config_keys[i - 1].name) != n ||
		         memcmp(config_keys[i - 1].name, k, n) != 0)
		{
			char star[CONFIG_KEY_LIST_CAP];

			snprintf(star, sizeof(star), "%.*s.*", (int) n, k);
			join_append(buf, cap, star, strlen(star));
		}
	}
}

/*
 * A key the user may have put in the wrong mapping: one whose leaf or dotted
 * name is `text` but which does not belong in `section`. NULL if none.
 */
const KeyDef *
config_find_misplaced(const char *section, const char *text, size_t len)
{
	size_t sec_len = section == NULL ? 0 : strlen(section);

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const KeyDef *key = &config_keys[i];
		size_t n = section_len(key->name);

		if (n == sec_len && (n == 0 || memcmp(key->name, section, n) == 0))
			continue;
		if (config_text_is(text, len, leaf_of(key->name)) ||
		    config_text_is(text, len, key->name))
			return key;
	}
	return NULL;
}

/* What a key accepts, as the "expected ..." part of a message. */
static void
describe_expected(const KeyDef *key, char *buf, size_t cap)
{
	char choices[CONFIG_CHOICES_CAP];

	switch (key->type)
	{
		case CONFIG_KEY_TYPE_STRING:
			snprintf(buf, cap, "a non-empty string");
			return;
		case CONFIG_KEY_TYPE_NAME:
			snprintf(buf, cap,
			         "a name of 1 to %d characters from a-z, 0-9 and _",
			         TASK_NAME_MAX);
			return;
		case CONFIG_KEY_TYPE_SLOT:
			snprintf(buf, cap,
			         "a replication slot name of 1 to %d characters from "
			         "a-z, 0-9 and _",
			         IDENT_MAX);
			return;
		case CONFIG_KEY_TYPE_IDENT:
			snprintf(buf, cap,
			         "an identifier of 1 to %d characters from a-z, 0-9 and _, "
			         "not starting with a digit",
			         IDENT_MAX);
			return;
		case CONFIG_KEY_TYPE_LIST:
			snprintf(buf, cap, "a string or a list of strings");
			return;
		case CONFIG_KEY_TYPE_INT:
			snprintf(buf, cap, "an integer from %d to %d", key->min, key->max);
			return;
		case CONFIG_KEY_TYPE_SIZE:
			snprintf(buf, cap,
			         "a size in bytes or with a unit kB, MB, GB or TB "
			         "(such as 512MB)%s",
			         key->id == CONFIG_KEY_SPLIT_BYTES ? ", or auto" : "");
			return;
		case CONFIG_KEY_TYPE_CHOICE:
			join_choices(key->choices, choices, sizeof(choices));
			snprintf(buf, cap, "one of %s", choices);
			return;
		case CONFIG_KEY_TYPE_FRACTION:
			snprintf(buf, cap,
			         "a fraction above 0 and at most 1 (such as "
			         "0.1 or 10%%)");
			return;
		case CONFIG_KEY_TYPE_WAL_LIMIT:
			snprintf(buf, cap,
			         "off, a size in bytes or with a unit kB, MB, GB or TB "
			         "(such as 20GB), or a share of check.wal_free_space "
			         "(such as 50%%)");
			return;
		case CONFIG_KEY_TYPE_MAP:
			snprintf(buf, cap, "a mapping of names to strings");
			return;
	}
	snprintf(buf, cap, "a value");
}

/* ---- checking and storing one value ---- */

bool
config_fail_expected(Error *err, const KeyDef *key, const char *got)
{
	char expected[ERR_MSG_MAX];

	describe_expected(key, expected, sizeof(expected));
	return err_set(err, ERR_CONFIG, "expected %s, got %s", expected, got);
}

static bool
fail_value(Error *err, const KeyDef *key, const char *text, size_t len)
{
	char shown[CONFIG_QUOTED_CAP];
	char got[CONFIG_QUOTED_CAP + 2];

	snprintf(got, sizeof(got), "\"%s\"", config_quote(shown, text, len));
	return config_fail_expected(err, key, got);
}

/*
 * Plain strings are URIs and paths; they may hold passwords, so a bad one is
 * described, never echoed.
 */
bool
config_check_string(const KeyDef *key, const char *text, size_t len, Error *err)
{
	if (len == 0)
		return config_fail_expected(err, key, "an empty string");
	if (memchr(text, '\0', len) != NULL)
		return config_fail_expected(err, key, "a string with a NUL byte");
	return true;
}

static bool
check_name(const char *text, size_t len, size_t max, bool is_ident)
{
	if (len == 0 || len > max)
		return false;
	if (is_ident && text[0] >= '0' && text[0] <= '9')
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char c = text[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Decimal digits only: no sign, no spaces, no 0x; leading zeros are fine. */
static bool
parse_int(const char *text, size_t len, int min, int max, int *out)
{
	long long v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (text[i] < '0' || text[i] > '9')
			return false;
		v = v * 10 + (text[i] - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (int) v;
	return true;
}

/*
 * A fraction in (0, 1] as "0.25" or "25%", in parts per million. Parsed by
 * hand: strtod would follow the locale and accept "inf", "1e3" and hex.
 */
static bool
parse_fraction(const char *text, size_t len, int64_t *ppm)
{
	int64_t whole = 0, frac = 0, scale = 1;
	bool percent = len > 0 && text[len - 1] == '%';
	bool dot = false, digits = false;

	if (percent)
		len--;
	for (size_t i = 0; i < len; i++)
	{
		if (text[i] == '.' && !dot)
			dot = true;
		else if (text[i] >= '0' && text[i] <= '9' && whole <= 1000)
		{
			digits = true;
			if (!dot)
				whole = whole * 10 + (text[i] - '0');
			else if (scale < 1000000)
			{
				frac = frac * 10 + (text[i] - '0');
				scale *= 10;
			}
		}
		else
			return false;
	}
	if (!digits)
		return false;
	*ppm = whole * 1000000 + frac * (1000000 / scale);
	if (percent)
		*ppm /= 100;
	return *ppm > 0 && *ppm <= 1000000;
}

StrList *
config_list_field(TaskConfig *cfg, KeyId id)
{
	switch (id)
	{
		case CONFIG_KEY_INCLUDE:
			return &cfg->include;
		case CONFIG_KEY_EXCLUDE:
			return &cfg->exclude;
		case CONFIG_KEY_CHECK_SKIP:
			return &cfg->check_skip;
		case CONFIG_KEY_VALIDATE_TABLES:
			return &cfg->validate_tables;
		case CONFIG_KEY_CUTOVER_ROLES:
			return &cfg->cutover_roles;
		case CONFIG_KEY_REMOVE_COLUMNS:
			return &cfg->remove_columns;
		default:
			return NULL;
	}
}

StrMap *
config_map_field(TaskConfig *cfg, KeyId id)
{
	switch (id)
	{
		case CONFIG_KEY_RENAME_SCHEMAS:
			return &cfg->rename_schemas;
		case CONFIG_KEY_RENAME_TABLES:
			return &cfg->rename_tables;
		case CONFIG_KEY_RENAME_COLUMNS:
			return &cfg->rename_columns;
		case CONFIG_KEY_FILTERS:
			return &cfg->filters;
		case CONFIG_KEY_TARGETS:
			return &cfg->targets;
		case CONFIG_KEY_SHARD_VALUES:
			return &cfg->shard_values;
		case CONFIG_KEY_SHARD_BOUNDS:
			return &cfg->shard_bounds;
		case CONFIG_KEY_SHARD_TABLES:
			return &cfg->shard_tables;
		default:
			return NULL;
	}
}

bool
config_replace_string(char **field, const char *text, size_t len, Error *err)
{
	char *copy = config_dup_text(text, len);

	if (copy == NULL)
		return config_out_of_memory(err);
	free(*field);
	*field = copy;
	return true;
}

/*
 * Stores an already checked value: text for string and list keys, num for
 * numbers and choice indexes. List keys append.
 */
static bool
key_store(TaskConfig *cfg, const KeyDef *key, const char *text, size_t len,
          int64_t num, Error *err)
{
	switch (key->id)
	{
		case CONFIG_KEY_TASK:
			return config_replace_string(&cfg->task, text, len, err);
		case CONFIG_KEY_SOURCE:
			return config_replace_string(&cfg->source_uri, text, len, err);
		case CONFIG_KEY_TARGET:
			return config_replace_string(&cfg->target_uri, text, len, err);
		case CONFIG_KEY_TABLE_MAPPINGS:
			return config_replace_string(&cfg->table_mappings, text, len, err);
		case CONFIG_KEY_PG_DUMP:
			return config_replace_string(&cfg->pg_dump, text, len, err);
		case CONFIG_KEY_STATE_SCHEMA:
			return config_replace_string(&cfg->state_schema, text, len, err);
		case CONFIG_KEY_INCLUDE:
		case CONFIG_KEY_EXCLUDE:
		case CONFIG_KEY_CHECK_SKIP:
		case CONFIG_KEY_VALIDATE_TABLES:
		case CONFIG_KEY_CUTOVER_ROLES:
		case CONFIG_KEY_REMOVE_COLUMNS:
			return config_strlist_append(config_list_field(cfg, key->id), text,
			                             len, err);
		case CONFIG_KEY_RENAME_SCHEMAS:
		case CONFIG_KEY_RENAME_TABLES:
		case CONFIG_KEY_RENAME_COLUMNS:
		case CONFIG_KEY_FILTERS:
		case CONFIG_KEY_TARGETS:
		case CONFIG_KEY_SHARD_VALUES:
		case CONFIG_KEY_SHARD_BOUNDS:
		case CONFIG_KEY_SHARD_TABLES:
			/* config_key_apply refuses a map before it comes here */
			break;
		case CONFIG_KEY_SHARD_KEY:
			return config_replace_string(&cfg->shard_key, text, len, err);
		case CONFIG_KEY_SHARD_LOOKUP:
			return config_replace_string(&cfg->shard_lookup, text, len, err);
		case CONFIG_KEY_SHARD_METHOD:
			cfg->shard_method = (ShardMethod) num;
			return true;
		case CONFIG_KEY_SHARD_SLOT:
			cfg->shard_slot = (ShardSlot) num;
			return true;
		case CONFIG_KEY_COPY_JOBS:
			cfg->copy_jobs = (int) num;
			return true;
		case CONFIG_KEY_INDEX_JOBS:
			cfg->index_jobs = (int) num;
			return true;
		case CONFIG_KEY_PROGRESS_INTERVAL:
			cfg->progress_interval_s = (int) num;
			return true;
		case CONFIG_KEY_SPLIT_BYTES:
			cfg->split_bytes = num;
			return true;
		case CONFIG_KEY_COPY_FORMAT:
			cfg->copy_format = (CopyFormat) num;
			return true;
		case CONFIG_KEY_SCHEMA_MODE:
			cfg->schema_mode = (SchemaMode) num;
			return true;
		case CONFIG_KEY_ON_EXISTING:
			cfg->on_existing = (OnExisting) num;
			return true;
		case CONFIG_KEY_CDC_MEMORY:
			cfg->cdc_memory_bytes = num;
			return true;
		case CONFIG_KEY_CDC_SPILL_DIR:
			return config_replace_string(&cfg->cdc_spill_dir, text, len, err);
		case CONFIG_KEY_ON_CONFLICT:
			cfg->on_conflict = (OnConflict) num;
			return true;
		case CONFIG_KEY_UNKNOWN_TABLES:
			cfg->cdc_ignore_unknown = num == 1;
			return true;
		case CONFIG_KEY_CDC_SLOT:
			return config_replace_string(&cfg->cdc_slot, text, len, err);
		case CONFIG_KEY_CDC_START_LSN:
			return config_replace_string(&cfg->cdc_start_lsn, text, len, err);
		case CONFIG_KEY_CDC_PUBLICATION:
			return config_replace_string(&cfg->cdc_publication, text, len, err);
		case CONFIG_KEY_CHECK_WAL_FREE:
			cfg->check_wal_free_bytes = num;
			return true;
		case CONFIG_KEY_CHECK_WAL_SAMPLE:
			cfg->check_wal_sample_ms = (int) num;
			return true;
		case CONFIG_KEY_VALIDATE_SAMPLE:
			/* stored as parts per million to keep key_store integral */
			cfg->validate_sample = (double) num / 1e6;
			return true;
		case CONFIG_KEY_CUTOVER_FENCE:
			cfg->cutover_fence = (FenceMethod) num;
			return true;
		case CONFIG_KEY_CUTOVER_FENCE_CMD:
			return config_replace_string(&cfg->cutover_fence_command, text, len,
			                             err);
		case CONFIG_KEY_CUTOVER_UNFENCE_CMD:
			return config_replace_string(&cfg->cutover_unfence_command, text,
			                             len, err);
		case CONFIG_KEY_CUTOVER_MAX_LAG:
			cfg->cutover_max_lag_bytes = num;
			return true;
		case CONFIG_KEY_CUTOVER_TIMEOUT:
			cfg->cutover_timeout_s = (int) num;
			return true;
		case CONFIG_KEY_CUTOVER_MARGIN:
			cfg->cutover_sequence_margin = (int) num;
			return true;
		case CONFIG_KEY_CUTOVER_VALIDATE:
			cfg->cutover_validate = (FinalValidation) num;
			return true;
		case CONFIG_KEY_CUTOVER_DROPPED:
			cfg->cutover_dropped = (DroppedPolicy) num;
			return true;
		case CONFIG_KEY_CUTOVER_SPACING:
			cfg->cutover_spacing = (SequenceSpacing) num;
			return true;
		case CONFIG_KEY_CUTOVER_DIVERGED:
			cfg->cutover_diverged = (DivergedPolicy) num;
			return true;
		case CONFIG_KEY_HTTP_LISTEN:
		{
			char listen[64], addr[CONFIG_LISTEN_ADDR_MAX];
			char shown[CONFIG_QUOTED_CAP];
			int port;

			if (len >= sizeof(listen))
				len = sizeof(listen) - 1; /* too long to be one: refused */
			memcpy(listen, text, len);
			listen[len] = '\0';
			if (!config_parse_listen(listen, addr, sizeof(addr), &port))
				return err_set(err, ERR_CONFIG,
				               "expected [ADDR:]PORT (a port from 1 to "
				               "65535, after an IPv4 address and a colon or "
				               "alone for 127.0.0.1), got \"%s\"",
				               config_quote(shown, text, len));
			return config_replace_string(&cfg->http_listen, text, len, err);
		}
		case CONFIG_KEY_HTTP_READY_LAG:
			cfg->http_ready_lag_s = (int) num;
			return true;
		case CONFIG_KEY_THROTTLE_COPY_WORKERS:
			cfg->throttle.copy_workers = (int) num;
			return true;
		case CONFIG_KEY_THROTTLE_ROWS:
			cfg->throttle.rows_per_s = num;
			return true;
		case CONFIG_KEY_THROTTLE_BYTES:
			cfg->throttle.bytes_per_s = num;
			return true;
		case CONFIG_KEY_THROTTLE_INDEX_BUILDS:
			cfg->throttle.index_builds = (int) num;
			return true;
		case CONFIG_KEY_THROTTLE_ADAPTIVE:
			cfg->throttle.adaptive = num == 1;
			return true;
		case CONFIG_KEY_THROTTLE_PROBE_LATENCY:
			cfg->throttle.probe_latency_ms = (int) num;
			return true;
		case CONFIG_KEY_THROTTLE_PROBE_INTERVAL:
			cfg->throttle.probe_interval_ms = (int) num;
			return true;
		case CONFIG_KEY_THROTTLE_PROBE_QUERY:
			return config_replace_string(&cfg->throttle.probe_query, text, len,
			                             err);
		case CONFIG_KEY_GUARD_WAL_WARN:
		case CONFIG_KEY_GUARD_WAL_PAUSE:
		case CONFIG_KEY_GUARD_WAL_STOP:
		{
			WalLimit *l =
			    key->id == CONFIG_KEY_GUARD_WAL_WARN    ? &cfg->guard_wal_warn
			    : key->id == CONFIG_KEY_GUARD_WAL_PAUSE ? &cfg->guard_wal_pause
			                                            : &cfg->guard_wal_stop;

			/* num: bytes when positive, parts per million when negative */
			l->set = true;
			l->bytes = num > 0 ? num : 0;
			l->ppm = num < 0 ? -num : 0;
			return true;
		}
		case CONFIG_KEY_GUARD_INTERVAL:
			cfg->guard_interval_s = (int) num;
			return true;
		case CONFIG_KEY_GUARD_XMIN_AGE:
			cfg->guard_xmin_age_s = (int) num;
			return true;
		case CONFIG_KEY_GUARD_XID_AGE:
			cfg->guard_xid_age = num;
			return true;
		case CONFIG_KEY_GUARD_HEARTBEAT:
			cfg->guard_heartbeat_s = (int) num;
			return true;
	}
	return err_set(err, ERR_INTERNAL, "key %s has no field", key->name);
}

/*
 * Checks one scalar value for key and stores it in cfg; list keys append.
 * On failure err says what was expected and what came, without a location:
 * the caller prefixes where the value came from.
 */
bool
config_key_apply(TaskConfig *cfg, const KeyDef *key, const char *text,
                 size_t len, Error *err)
{
	char shown[CONFIG_QUOTED_CAP];
	char choices[CONFIG_CHOICES_CAP];
	int64_t num = 0;
	int n;

	switch (key->type)
	{
		case CONFIG_KEY_TYPE_STRING:
		case CONFIG_KEY_TYPE_LIST:
			if (!config_check_string(key, text, len, err))
				return false;
			break;
		case CONFIG_KEY_TYPE_NAME:
			if (!check_name(text, len, TASK_NAME_MAX, false))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_SLOT:
			/* the slot goes into replication commands as it is */
			if (!check_name(text, len, IDENT_MAX, false))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_IDENT:
			if (!check_name(text, len, IDENT_MAX, true))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_INT:
			if (!parse_int(text, len, key->min, key->max, &n))
				return fail_value(err, key, text, len);
			num = n;
			break;
		case CONFIG_KEY_TYPE_SIZE:
			/* The split size may be "auto" (CONFIG_SPLIT_AUTO). */
			if (key->id == CONFIG_KEY_SPLIT_BYTES &&
			    config_text_is(text, len, "auto"))
			{
				num = CONFIG_SPLIT_AUTO;
				break;
			}
			/* config_parse_size reads to the NUL; refuse one inside. */
			if (memchr(text, '\0', len) != NULL ||
			    !config_parse_size(text, &num))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_CHOICE:
			for (n = 0; key->choices[n] != NULL; n++)
				if (config_text_is(text, len, key->choices[n]))
					break;
			if (key->choices[n] == NULL)
			{
				join_choices(key->choices, choices, sizeof(choices));
				return err_set(err, ERR_CONFIG,
				               "invalid value \"%s\"; valid values are %s",
				               config_quote(shown, text, len), choices);
			}
			num = n;
			break;
		case CONFIG_KEY_TYPE_FRACTION:
			if (!parse_fraction(text, len, &num))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_WAL_LIMIT:
			/* "off", "N%" (stored as -ppm) or a size; 0 bytes is off too */
			if (config_text_is(text, len, "off"))
				num = 0;
			else if (len > 0 && text[len - 1] == '%')
			{
				if (!parse_fraction(text, len, &num))
					return fail_value(err, key, text, len);
				num = -num;
			}
			else if (memchr(text, '\0', len) != NULL ||
			         !config_parse_size(text, &num))
				return fail_value(err, key, text, len);
			break;
		case CONFIG_KEY_TYPE_MAP:
			/* its keys are names the user chose: only a file has room */
			return err_set(err, ERR_CONFIG,
			               "key %s is a mapping, set in the task file only",
			               key->name);
	}
	return key_store(cfg, key, text, len, num, err);
}

bool
config_set(TaskConfig *cfg, const char *key, const char *value,
           const char *origin, Error *err)
{
	const KeyDef *def;
	char shown[CONFIG_QUOTED_CAP];
	char valid[CONFIG_KEY_LIST_CAP];

	if (key == NULL)
		key = "";
	if (value == NULL)
		value = "";
	if (origin == NULL)
		origin = "setting";
	def = find_dotted(key);
	if (def == NULL)
	{
		list_near_keys(key, valid, sizeof(valid));
		err_set(err, ERR_CONFIG, "%s: unknown key \"%s\"", origin,
		        config_quote(shown, key, strlen(key)));
		return err_hint(err, "valid keys: %s", valid);
	}
	if (!config_key_apply(cfg, def, value, strlen(value), err))
		return err_prefix(err, "%s: ", origin);
	return true;
}

/*
 * By hand, not with getaddrinfo: the task file is read before anything
 * touches the network, and a host name would make the listening address
 * depend on a resolver. The port is digits only; the address four octets.
 */
bool
config_parse_listen(const char *text, char *addr, size_t cap, int *port)
{
	const char *colon = strrchr(text, ':');
	const char *digits = colon != NULL ? colon + 1 : text;
	size_t alen = colon != NULL ? (size_t) (colon - text) : 0;
	int dots = 0, octet = -1;
	long p = 0;

	if (*digits == '\0' || strlen(digits) > 5 || (colon != NULL && alen == 0))
		return false;
	for (const char *d = digits; *d != '\0'; d++)
	{
		if (*d < '0' || *d > '9')
			return false;
		p = p * 10 + (*d - '0');
	}
	if (p < 1 || p > 65535)
		return false;
	/* a dotted IPv4 address: four octets of at most 255 */
	for (size_t i = 0; i < alen; i++)
	{
		char c = text[i];

		if (c == '.' && octet >= 0 && dots < 3)
		{
			dots++;
			octet = -1;
		}
		else if (c >= '0' && c <= '9' &&
		         (octet < 0 ? 0 : octet) * 10 + (c - '0') <= 255 && octet != 0)
			octet = (octet < 0 ? 0 : octet) * 10 + (c - '0');
		else
			return false;
	}
	if (alen > 0 && (dots != 3 || octet < 0))
		return false;
	if (alen == 0)
		snprintf(addr, cap, "127.0.0.1");
	else if (alen >= cap)
		return false;
	else
	{
		memcpy(addr, text, alen);
		addr[alen] = '\0';
	}
	*port = (int) p;
	return true;
}

/*
 * Digits, then optionally spaces and a unit. Only writes *bytes on success,
 * and refuses anything whose value would not fit in int64_t.
 */
bool
config_parse_size(const char *text, int64_t *bytes)
{
	static const struct
	{
		const char *unit;
		int shift;
	} units[] = {{"kB", 10}, {"MB", 20}, {"GB", 30}, {"TB", 40}};
	const char *p = text;
	const char *digits_end;
	int64_t n = 0;
	int shift = -1;

	if (text == NULL || *p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
	{
		int d = *p - '0';

		if (n > (INT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	digits_end = p;
	while (*p == ' ')
		p++;
	if (*p == '\0')
	{
		if (p != digits_end)
			return false; /* trailing spaces without a unit */
		shift = 0;
	}
	for (size_t i = 0; shift < 0 && i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(p, units[i].unit) == 0)
			shift = units[i].shift;
	if (shift < 0 || n > (INT64_MAX >> shift))
		return false;
	*bytes = n * ((int64_t) 1 << shift);
	return true;
}

static const char *
choice_name(const char *const *names, int value)
{
	for (int i = 0; names[i] != NULL; i++)
		if (i == value)
			return names[i];
	return "unknown";
}

const char *
config_schema_mode_name(SchemaMode m)
{
	return choice_name(schema_mode_names, (int) m);
}

const char *
config_on_existing_name(OnExisting o)
{
	return choice_name(on_existing_names, (int) o);
}

const char *
config_copy_format_name(CopyFormat f)
{
	return choice_name(copy_format_names, (int) f);
}

const char *
config_on_conflict_name(OnConflict c)
{
	return choice_name(on_conflict_names, (int) c);
}

const char *
config_fence_name(FenceMethod f)
{
	return choice_name(fence_names, (int) f);
}

const char *
config_final_validation_name(FinalValidation v)
{
	return choice_name(final_validation_names, (int) v);
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static bool
same_list(const StrList *a, const StrList *b)
{
	if (a->count != b->count)
		return false;
	for (int i = 0; i < a->count; i++)
		if (strcmp(a->items[i], b->items[i]) != 0)
			return false;
	return true;
}

static bool
same_map(const StrMap *a, const StrMap *b)
{
	return same_list(&a->keys, &b->keys) && same_list(&a->values, &b->values);
}

static bool
same_limit(const WalLimit *a, const WalLimit *b)
{
	return a->set == b->set && a->bytes == b->bytes && a->ppm == b->ppm;
}

/* Whether key holds the same value in a and b. */
static bool
key_same(const TaskConfig *a, const TaskConfig *b, KeyId id)
{
	switch (id)
	{
		case CONFIG_KEY_TASK:
			return same_text(a->task, b->task);
		case CONFIG_KEY_SOURCE:
			return same_text(a->source_uri, b->source_uri);
		case CONFIG_KEY_TARGET:
			return same_text(a->target_uri, b->target_uri);
		case CONFIG_KEY_INCLUDE:
			return same_list(&a->include, &b->include);
		case CONFIG_KEY_EXCLUDE:
			return same_list(&a->exclude, &b->exclude);
		case CONFIG_KEY_TABLE_MAPPINGS:
			return same_text(a->table_mappings, b->table_mappings);
		case CONFIG_KEY_COPY_JOBS:
			return a->copy_jobs == b->copy_jobs;
		case CONFIG_KEY_INDEX_JOBS:
			return a->index_jobs == b->index_jobs;
		case CONFIG_KEY_SPLIT_BYTES:
			return a->split_bytes == b->split_bytes;
		case CONFIG_KEY_COPY_FORMAT:
			return a->copy_format == b->copy_format;
		case CONFIG_KEY_SCHEMA_MODE:
			return a->schema_mode == b->schema_mode;
		case CONFIG_KEY_ON_EXISTING:
			return a->on_existing == b->on_existing;
		case CONFIG_KEY_PG_DUMP:
			return same_text(a->pg_dump, b->pg_dump);
		case CONFIG_KEY_STATE_SCHEMA:
			return same_text(a->state_schema, b->state_schema);
		case CONFIG_KEY_PROGRESS_INTERVAL:
			return a->progress_interval_s == b->progress_interval_s;
		case CONFIG_KEY_CDC_MEMORY:
			return a->cdc_memory_bytes == b->cdc_memory_bytes;
		case CONFIG_KEY_CDC_SPILL_DIR:
			return same_text(a->cdc_spill_dir, b->cdc_spill_dir);
		case CONFIG_KEY_ON_CONFLICT:
			return a->on_conflict == b->on_conflict;
		case CONFIG_KEY_UNKNOWN_TABLES:
			return a->cdc_ignore_unknown == b->cdc_ignore_unknown;
		case CONFIG_KEY_CDC_SLOT:
			return same_text(a->cdc_slot, b->cdc_slot);
		case CONFIG_KEY_CDC_START_LSN:
			return same_text(a->cdc_start_lsn, b->cdc_start_lsn);
		case CONFIG_KEY_CDC_PUBLICATION:
			return same_text(a->cdc_publication, b->cdc_publication);
		case CONFIG_KEY_CHECK_SKIP:
			return same_list(&a->check_skip, &b->check_skip);
		case CONFIG_KEY_CHECK_WAL_FREE:
			return a->check_wal_free_bytes == b->check_wal_free_bytes;
		case CONFIG_KEY_CHECK_WAL_SAMPLE:
			return a->check_wal_sample_ms == b->check_wal_sample_ms;
		case CONFIG_KEY_VALIDATE_TABLES:
			return same_list(&a->validate_tables, &b->validate_tables);
		case CONFIG_KEY_VALIDATE_SAMPLE:
			return a->validate_sample == b->validate_sample;
		case CONFIG_KEY_CUTOVER_FENCE:
			return a->cutover_fence == b->cutover_fence;
		case CONFIG_KEY_CUTOVER_ROLES:
			return same_list(&a->cutover_roles, &b->cutover_roles);
		case CONFIG_KEY_CUTOVER_FENCE_CMD:
			return same_text(a->cutover_fence_command,
			                 b->cutover_fence_command);
		case CONFIG_KEY_CUTOVER_UNFENCE_CMD:
			return same_text(a->cutover_unfence_command,
			                 b->cutover_unfence_command);
		case CONFIG_KEY_CUTOVER_MAX_LAG:
			return a->cutover_max_lag_bytes == b->cutover_max_lag_bytes;
		case CONFIG_KEY_CUTOVER_TIMEOUT:
			return a->cutover_timeout_s == b->cutover_timeout_s;
		case CONFIG_KEY_CUTOVER_MARGIN:
			return a->cutover_sequence_margin == b->cutover_sequence_margin;
		case CONFIG_KEY_CUTOVER_VALIDATE:
			return a->cutover_validate == b->cutover_validate;
		case CONFIG_KEY_CUTOVER_DIVERGED:
			return a->cutover_diverged == b->cutover_diverged;
		case CONFIG_KEY_CUTOVER_DROPPED:
			return a->cutover_dropped == b->cutover_dropped;
		case CONFIG_KEY_CUTOVER_SPACING:
			return a->cutover_spacing == b->cutover_spacing;
		case CONFIG_KEY_HTTP_LISTEN:
			return same_text(a->http_listen, b->http_listen);
		case CONFIG_KEY_HTTP_READY_LAG:
			return a->http_ready_lag_s == b->http_ready_lag_s;
		case CONFIG_KEY_GUARD_WAL_WARN:
			return same_limit(&a->guard_wal_warn, &b->guard_wal_warn);
		case CONFIG_KEY_GUARD_WAL_PAUSE:
			return same_limit(&a->guard_wal_pause, &b->guard_wal_pause);
		case CONFIG_KEY_GUARD_WAL_STOP:
			return same_limit(&a->guard_wal_stop, &b->guard_wal_stop);
		case CONFIG_KEY_GUARD_INTERVAL:
			return a->guard_interval_s == b->guard_interval_s;
		case CONFIG_KEY_GUARD_XMIN_AGE:
			return a->guard_xmin_age_s == b->guard_xmin_age_s;
		case CONFIG_KEY_GUARD_XID_AGE:
			return a->guard_xid_age == b->guard_xid_age;
		case CONFIG_KEY_GUARD_HEARTBEAT:
			return a->guard_heartbeat_s == b->guard_heartbeat_s;
		case CONFIG_KEY_THROTTLE_COPY_WORKERS:
			return a->throttle.copy_workers == b->throttle.copy_workers;
		case CONFIG_KEY_THROTTLE_ROWS:
			return a->throttle.rows_per_s == b->throttle.rows_per_s;
		case CONFIG_KEY_THROTTLE_BYTES:
			return a->throttle.bytes_per_s == b->throttle.bytes_per_s;
		case CONFIG_KEY_THROTTLE_INDEX_BUILDS:
			return a->throttle.index_builds == b->throttle.index_builds;
		case CONFIG_KEY_THROTTLE_ADAPTIVE:
			return a->throttle.adaptive == b->throttle.adaptive;
		case CONFIG_KEY_THROTTLE_PROBE_LATENCY:
			return a->throttle.probe_latency_ms == b->throttle.probe_latency_ms;
		case CONFIG_KEY_THROTTLE_PROBE_INTERVAL:
			return a->throttle.probe_interval_ms ==
			       b->throttle.probe_interval_ms;
		case CONFIG_KEY_THROTTLE_PROBE_QUERY:
			return same_text(a->throttle.probe_query, b->throttle.probe_query);
		case CONFIG_KEY_RENAME_SCHEMAS:
			return same_map(&a->rename_schemas, &b->rename_schemas);
		case CONFIG_KEY_RENAME_TABLES:
			return same_map(&a->rename_tables, &b->rename_tables);
		case CONFIG_KEY_RENAME_COLUMNS:
			return same_map(&a->rename_columns, &b->rename_columns);
		case CONFIG_KEY_REMOVE_COLUMNS:
			return same_list(&a->remove_columns, &b->remove_columns);
		case CONFIG_KEY_FILTERS:
			return same_map(&a->filters, &b->filters);
		case CONFIG_KEY_TARGETS:
			return same_map(&a->targets, &b->targets);
		case CONFIG_KEY_SHARD_KEY:
			return same_text(a->shard_key, b->shard_key);
		case CONFIG_KEY_SHARD_METHOD:
			return a->shard_method == b->shard_method;
		case CONFIG_KEY_SHARD_VALUES:
			return same_map(&a->shard_values, &b->shard_values);
		case CONFIG_KEY_SHARD_BOUNDS:
			return same_map(&a->shard_bounds, &b->shard_bounds);
		case CONFIG_KEY_SHARD_LOOKUP:
			return same_text(a->shard_lookup, b->shard_lookup);
		case CONFIG_KEY_SHARD_TABLES:
			return same_map(&a->shard_tables, &b->shard_tables);
		case CONFIG_KEY_SHARD_SLOT:
			return a->shard_slot == b->shard_slot;
	}
	return false;
}

int
config_changed_keys(const TaskConfig *a, const TaskConfig *b, bool live,
                    const char **names, int cap)
{
	int n = 0;

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const KeyDef *k = &config_keys[i];
		bool is_live = strncmp(k->name, "throttle.", 9) == 0;

		if (is_live != live || key_same(a, b, k->id))
			continue;
		if (n < cap)
			names[n] = k->name;
		n++;
	}
	return n;
}
