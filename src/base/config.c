/*
 * config: owns TaskConfig, its defaults, and the way the task file (libyaml
 * document API) and "key = value" settings from the command line land in it.
 *
 * Pure: bytes and strings in, a struct out. It never includes libpq, reads a
 * clock, touches a socket or keeps mutable globals; its only I/O is reading
 * the task file in config_load_file. Every error says where the value came
 * from ("FILE:LINE: key K: ..." or "ORIGIN: ...") and, for choices and
 * unknown keys, what would have been accepted.
 *
 * One table, config_keys[], names every key once. The task-file walker, the
 * command-line setter and the unknown-key hints all read it, so a key cannot
 * be settable in one place and unknown in another.
 */
#include "base/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define TASK_NAME_MAX 40
#define IDENT_MAX     63 /* PostgreSQL's NAMEDATALEN - 1 */

/*
 * A task file is a page of settings; even thousands of table patterns stay
 * far below this. Past it we refuse rather than read an arbitrary file into
 * memory.
 */
#define CONFIG_FILE_MAX ((size_t) 16 * 1024 * 1024)

/*
 * At most this many bytes of a bad value appear in a message, then "...", so
 * a long value cannot crowd the key and the expectation out of the Error's
 * fixed-size message. Each byte may become a 4-byte escape.
 */
#define QUOTE_MAX  64
#define QUOTED_CAP (QUOTE_MAX * 4 + sizeof("..."))

/* Holds every key name joined by ", " (about 600 bytes today). */
#define KEY_LIST_CAP 1000

/* The choice names, indexed by the enum value they stand for. */
static const char *const copy_format_names[] = {"auto", "text", "binary", NULL};
static const char *const schema_mode_names[] = {"create", "existing", NULL};
static const char *const on_existing_names[] = {"refuse", "truncate", "drop",
                                                NULL};
static const char *const on_conflict_names[] = {"stop", "skip", "upsert", NULL};
static const char *const fence_names[] = {"revoke", "read_only", "command",
                                          NULL};
static const char *const final_validation_names[] = {"none", "counts", "full",
                                                     NULL};

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

typedef enum KeyId
{
	KEY_TASK,
	KEY_SOURCE,
	KEY_TARGET,
	KEY_INCLUDE,
	KEY_EXCLUDE,
	KEY_COPY_JOBS,
	KEY_INDEX_JOBS,
	KEY_SPLIT_BYTES,
	KEY_COPY_FORMAT,
	KEY_SCHEMA_MODE,
	KEY_ON_EXISTING,
	KEY_PG_DUMP,
	KEY_STATE_SCHEMA,
	KEY_PROGRESS_INTERVAL,
	KEY_CDC_MEMORY,
	KEY_CDC_SPILL_DIR,
	KEY_ON_CONFLICT,
	KEY_CDC_SLOT,
	KEY_CDC_START_LSN,
	KEY_CDC_PUBLICATION,
	KEY_CHECK_SKIP,
	KEY_CHECK_WAL_FREE,
	KEY_VALIDATE_TABLES,
	KEY_VALIDATE_SAMPLE,
	KEY_CUTOVER_FENCE,
	KEY_CUTOVER_ROLES,
	KEY_CUTOVER_FENCE_CMD,
	KEY_CUTOVER_UNFENCE_CMD,
	KEY_CUTOVER_MAX_LAG,
	KEY_CUTOVER_TIMEOUT,
	KEY_CUTOVER_MARGIN,
	KEY_CUTOVER_VALIDATE,
} KeyId;

typedef enum KeyType
{
	KEY_TYPE_STRING,   /* any non-empty string without NUL bytes */
	KEY_TYPE_NAME,     /* task name: [a-z0-9_]{1,40} */
	KEY_TYPE_IDENT,    /* SQL identifier: [a-z_][a-z0-9_]{0,62} */
	KEY_TYPE_LIST,     /* strings; a scalar in YAML is a one-item list */
	KEY_TYPE_INT,      /* decimal integer in [min, max] */
	KEY_TYPE_SIZE,     /* config_parse_size() */
	KEY_TYPE_CHOICE,   /* one of choices[] */
	KEY_TYPE_FRACTION, /* "0.1" or "10%": in (0, 1] */
} KeyType;

typedef struct KeyDef
{
	const char *name; /* dotted: "copy.jobs"; the part before '.' is a
						 nested mapping in the task file */
	KeyId id;
	KeyType type;
	int min; /* KEY_TYPE_INT */
	int max;
	const char *const *choices; /* KEY_TYPE_CHOICE; NULL-terminated */
} KeyDef;

/* In the order docs/task-file.md and the hints list them. */
static const KeyDef config_keys[] = {
    {.name = "task", .id = KEY_TASK, .type = KEY_TYPE_NAME},
    {.name = "source", .id = KEY_SOURCE, .type = KEY_TYPE_STRING},
    {.name = "target", .id = KEY_TARGET, .type = KEY_TYPE_STRING},
    {.name = "tables.include", .id = KEY_INCLUDE, .type = KEY_TYPE_LIST},
    {.name = "tables.exclude", .id = KEY_EXCLUDE, .type = KEY_TYPE_LIST},
    {.name = "copy.jobs",
     .id = KEY_COPY_JOBS,
     .type = KEY_TYPE_INT,
     .min = 1,
     .max = 64},
    {.name = "copy.index_jobs",
     .id = KEY_INDEX_JOBS,
     .type = KEY_TYPE_INT,
     .min = 1,
     .max = 64},
    {.name = "copy.split_tables_larger_than",
     .id = KEY_SPLIT_BYTES,
     .type = KEY_TYPE_SIZE},
    {.name = "copy.format",
     .id = KEY_COPY_FORMAT,
     .type = KEY_TYPE_CHOICE,
     .choices = copy_format_names},
    {.name = "schema.mode",
     .id = KEY_SCHEMA_MODE,
     .type = KEY_TYPE_CHOICE,
     .choices = schema_mode_names},
    {.name = "schema.on_existing",
     .id = KEY_ON_EXISTING,
     .type = KEY_TYPE_CHOICE,
     .choices = on_existing_names},
    {.name = "schema.pg_dump", .id = KEY_PG_DUMP, .type = KEY_TYPE_STRING},
    {.name = "state.schema", .id = KEY_STATE_SCHEMA, .type = KEY_TYPE_IDENT},
    {.name = "progress.interval",
     .id = KEY_PROGRESS_INTERVAL,
     .type = KEY_TYPE_INT,
     .min = 1,
     .max = 3600},
    {.name = "cdc.memory_limit", .id = KEY_CDC_MEMORY, .type = KEY_TYPE_SIZE},
    {.name = "cdc.spill_dir", .id = KEY_CDC_SPILL_DIR, .type = KEY_TYPE_STRING},
    {.name = "cdc.on_conflict",
     .id = KEY_ON_CONFLICT,
     .type = KEY_TYPE_CHOICE,
     .choices = on_conflict_names},
    {.name = "cdc.slot", .id = KEY_CDC_SLOT, .type = KEY_TYPE_STRING},
    {.name = "cdc.start_lsn", .id = KEY_CDC_START_LSN, .type = KEY_TYPE_STRING},
    {.name = "cdc.publication",
     .id = KEY_CDC_PUBLICATION,
     .type = KEY_TYPE_STRING},
    {.name = "check.skip", .id = KEY_CHECK_SKIP, .type = KEY_TYPE_LIST},
    {.name = "check.wal_free_space",
     .id = KEY_CHECK_WAL_FREE,
     .type = KEY_TYPE_SIZE},
    {.name = "validate.tables",
     .id = KEY_VALIDATE_TABLES,
     .type = KEY_TYPE_LIST},
    {.name = "validate.sample",
     .id = KEY_VALIDATE_SAMPLE,
     .type = KEY_TYPE_FRACTION},
    {.name = "cutover.fence",
     .id = KEY_CUTOVER_FENCE,
     .type = KEY_TYPE_CHOICE,
     .choices = fence_names},
    {.name = "cutover.roles", .id = KEY_CUTOVER_ROLES, .type = KEY_TYPE_LIST},
    {.name = "cutover.fence_command",
     .id = KEY_CUTOVER_FENCE_CMD,
     .type = KEY_TYPE_STRING},
    {.name = "cutover.unfence_command",
     .id = KEY_CUTOVER_UNFENCE_CMD,
     .type = KEY_TYPE_STRING},
    {.name = "cutover.max_lag",
     .id = KEY_CUTOVER_MAX_LAG,
     .type = KEY_TYPE_SIZE},
    {.name = "cutover.timeout",
     .id = KEY_CUTOVER_TIMEOUT,
     .type = KEY_TYPE_INT,
     .min = 1,
     .max = 86400},
    {.name = "cutover.sequence_margin",
     .id = KEY_CUTOVER_MARGIN,
     .type = KEY_TYPE_INT,
     .min = 0,
     .max = 1000000000},
    {.name = "cutover.validate",
     .id = KEY_CUTOVER_VALIDATE,
     .type = KEY_TYPE_CHOICE,
     .choices = final_validation_names},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* One task-file parse: where messages point and what is being filled. */
typedef struct Loader
{
	const char *name; /* file name for messages */
	const char *data; /* the whole input, for reader-error positions */
	size_t len;
	yaml_document_t *doc; /* the first (only) document */
	TaskConfig *cfg;
} Loader;

/* ---- small helpers ---- */

static bool
out_of_memory(Error *err)
{
	return err_set(err, ERR_INTERNAL, "out of memory");
}

/* Returns a malloc'd NUL-terminated copy of text[0..len), or NULL. */
static char *
dup_text(const char *text, size_t len)
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
	char *copy = dup_text(text, strlen(text));

	if (copy == NULL)
		abort();
	return copy;
}

static bool
text_is(const char *text, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(text, word, len) == 0;
}

/*
 * Writes text[0..len) into dst (QUOTED_CAP bytes) as it should appear between
 * double quotes in a message: quote, backslash and control bytes escaped, at
 * most QUOTE_MAX input bytes and then "...". Returns dst.
 */
static const char *
quote(char *dst, const char *text, size_t len)
{
	size_t shown = len;
	size_t out = 0;

	if (shown > QUOTE_MAX)
	{
		shown = QUOTE_MAX;
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
			out += (size_t) snprintf(dst + out, QUOTED_CAP - out, "\\x%02X", c);
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
static const KeyDef *
find_key(const char *section, const char *leaf, size_t leaf_len)
{
	size_t sec_len = section == NULL ? 0 : strlen(section);

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const KeyDef *key = &config_keys[i];

		if (section_len(key->name) != sec_len ||
		    (sec_len > 0 && memcmp(key->name, section, sec_len) != 0))
			continue;
		if (text_is(leaf, leaf_len, leaf_of(key->name)))
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
static bool
is_section(const char *text, size_t len)
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
static void
list_keys(const char *section, char *buf, size_t cap)
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

static void
list_all_keys(char *buf, size_t cap)
{
	buf[0] = '\0';
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		join_append(buf, cap, config_keys[i].name, strlen(config_keys[i].name));
}

/*
 * A key the user may have put in the wrong mapping: one whose leaf or dotted
 * name is `text` but which does not belong in `section`. NULL if none.
 */
static const KeyDef *
find_misplaced(const char *section, const char *text, size_t len)
{
	size_t sec_len = section == NULL ? 0 : strlen(section);

	for (size_t i = 0; i < CONFIG_NKEYS; i++)
	{
		const KeyDef *key = &config_keys[i];
		size_t n = section_len(key->name);

		if (n == sec_len && (n == 0 || memcmp(key->name, section, n) == 0))
			continue;
		if (text_is(text, len, leaf_of(key->name)) ||
		    text_is(text, len, key->name))
			return key;
	}
	return NULL;
}

/* What a key accepts, as the "expected ..." part of a message. */
static void
describe_expected(const KeyDef *key, char *buf, size_t cap)
{
	char choices[KEY_LIST_CAP];

	switch (key->type)
	{
		case KEY_TYPE_STRING:
			snprintf(buf, cap, "a non-empty string");
			return;
		case KEY_TYPE_NAME:
			snprintf(buf, cap,
			         "a name of 1 to %d characters from a-z, 0-9 and _",
			         TASK_NAME_MAX);
			return;
		case KEY_TYPE_IDENT:
			snprintf(buf, cap,
			         "an identifier of 1 to %d characters from a-z, 0-9 and _, "
			         "not starting with a digit",
			         IDENT_MAX);
			return;
		case KEY_TYPE_LIST:
			snprintf(buf, cap, "a string or a list of strings");
			return;
		case KEY_TYPE_INT:
			snprintf(buf, cap, "an integer from %d to %d", key->min, key->max);
			return;
		case KEY_TYPE_SIZE:
			snprintf(buf, cap,
			         "a size in bytes or with a unit kB, MB, GB or TB "
			         "(such as 512MB)%s",
			         key->id == KEY_SPLIT_BYTES ? ", or auto" : "");
			return;
		case KEY_TYPE_CHOICE:
			join_choices(key->choices, choices, sizeof(choices));
			snprintf(buf, cap, "one of %s", choices);
			return;
		case KEY_TYPE_FRACTION:
			snprintf(buf, cap,
			         "a fraction above 0 and at most 1 (such as "
			         "0.1 or 10%%)");
			return;
	}
	snprintf(buf, cap, "a value");
}

/* ---- StrList ---- */

static void
strlist_free(StrList *list)
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
static bool
strlist_append(StrList *list, const char *text, size_t len, Error *err)
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
			return out_of_memory(err);
		list->items = items;
	}
	copy = dup_text(text, len);
	if (copy == NULL)
		return out_of_memory(err);
	list->items[list->count++] = copy;
	return true;
}

/* ---- checking and storing one value ---- */

static bool
fail_expected(Error *err, const KeyDef *key, const char *got)
{
	char expected[ERR_MSG_MAX];

	describe_expected(key, expected, sizeof(expected));
	return err_set(err, ERR_CONFIG, "expected %s, got %s", expected, got);
}

static bool
fail_value(Error *err, const KeyDef *key, const char *text, size_t len)
{
	char shown[QUOTED_CAP];
	char got[QUOTED_CAP + 2];

	snprintf(got, sizeof(got), "\"%s\"", quote(shown, text, len));
	return fail_expected(err, key, got);
}

/*
 * Plain strings are URIs and paths; they may hold passwords, so a bad one is
 * described, never echoed.
 */
static bool
check_string(const KeyDef *key, const char *text, size_t len, Error *err)
{
	if (len == 0)
		return fail_expected(err, key, "an empty string");
	if (memchr(text, '\0', len) != NULL)
		return fail_expected(err, key, "a string with a NUL byte");
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

static StrList *
list_field(TaskConfig *cfg, KeyId id)
{
	switch (id)
	{
		case KEY_INCLUDE:
			return &cfg->include;
		case KEY_EXCLUDE:
			return &cfg->exclude;
		case KEY_CHECK_SKIP:
			return &cfg->check_skip;
		case KEY_VALIDATE_TABLES:
			return &cfg->validate_tables;
		case KEY_CUTOVER_ROLES:
			return &cfg->cutover_roles;
		default:
			return NULL;
	}
}

static bool
replace_string(char **field, const char *text, size_t len, Error *err)
{
	char *copy = dup_text(text, len);

	if (copy == NULL)
		return out_of_memory(err);
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
		case KEY_TASK:
			return replace_string(&cfg->task, text, len, err);
		case KEY_SOURCE:
			return replace_string(&cfg->source_uri, text, len, err);
		case KEY_TARGET:
			return replace_string(&cfg->target_uri, text, len, err);
		case KEY_PG_DUMP:
			return replace_string(&cfg->pg_dump, text, len, err);
		case KEY_STATE_SCHEMA:
			return replace_string(&cfg->state_schema, text, len, err);
		case KEY_INCLUDE:
		case KEY_EXCLUDE:
		case KEY_CHECK_SKIP:
		case KEY_VALIDATE_TABLES:
		case KEY_CUTOVER_ROLES:
			return strlist_append(list_field(cfg, key->id), text, len, err);
		case KEY_COPY_JOBS:
			cfg->copy_jobs = (int) num;
			return true;
		case KEY_INDEX_JOBS:
			cfg->index_jobs = (int) num;
			return true;
		case KEY_PROGRESS_INTERVAL:
			cfg->progress_interval_s = (int) num;
			return true;
		case KEY_SPLIT_BYTES:
			cfg->split_bytes = num;
			return true;
		case KEY_COPY_FORMAT:
			cfg->copy_format = (CopyFormat) num;
			return true;
		case KEY_SCHEMA_MODE:
			cfg->schema_mode = (SchemaMode) num;
			return true;
		case KEY_ON_EXISTING:
			cfg->on_existing = (OnExisting) num;
			return true;
		case KEY_CDC_MEMORY:
			cfg->cdc_memory_bytes = num;
			return true;
		case KEY_CDC_SPILL_DIR:
			return replace_string(&cfg->cdc_spill_dir, text, len, err);
		case KEY_ON_CONFLICT:
			cfg->on_conflict = (OnConflict) num;
			return true;
		case KEY_CDC_SLOT:
			return replace_string(&cfg->cdc_slot, text, len, err);
		case KEY_CDC_START_LSN:
			return replace_string(&cfg->cdc_start_lsn, text, len, err);
		case KEY_CDC_PUBLICATION:
			return replace_string(&cfg->cdc_publication, text, len, err);
		case KEY_CHECK_WAL_FREE:
			cfg->check_wal_free_bytes = num;
			return true;
		case KEY_VALIDATE_SAMPLE:
			/* stored as parts per million to keep key_store integral */
			cfg->validate_sample = (double) num / 1e6;
			return true;
		case KEY_CUTOVER_FENCE:
			cfg->cutover_fence = (FenceMethod) num;
			return true;
		case KEY_CUTOVER_FENCE_CMD:
			return replace_string(&cfg->cutover_fence_command, text, len, err);
		case KEY_CUTOVER_UNFENCE_CMD:
			return replace_string(&cfg->cutover_unfence_command, text, len,
			                      err);
		case KEY_CUTOVER_MAX_LAG:
			cfg->cutover_max_lag_bytes = num;
			return true;
		case KEY_CUTOVER_TIMEOUT:
			cfg->cutover_timeout_s = (int) num;
			return true;
		case KEY_CUTOVER_MARGIN:
			cfg->cutover_sequence_margin = (int) num;
			return true;
		case KEY_CUTOVER_VALIDATE:
			cfg->cutover_validate = (FinalValidation) num;
			return true;
	}
	return err_set(err, ERR_INTERNAL, "key %s has no field", key->name);
}

/*
 * Checks one scalar value for key and stores it in cfg; list keys append.
 * On failure err says what was expected and what came, without a location:
 * the caller prefixes where the value came from.
 */
static bool
key_apply(TaskConfig *cfg, const KeyDef *key, const char *text, size_t len,
          Error *err)
{
	char shown[QUOTED_CAP];
	char choices[KEY_LIST_CAP];
	int64_t num = 0;
	int n;

	switch (key->type)
	{
		case KEY_TYPE_STRING:
		case KEY_TYPE_LIST:
			if (!check_string(key, text, len, err))
				return false;
			break;
		case KEY_TYPE_NAME:
			if (!check_name(text, len, TASK_NAME_MAX, false))
				return fail_value(err, key, text, len);
			break;
		case KEY_TYPE_IDENT:
			if (!check_name(text, len, IDENT_MAX, true))
				return fail_value(err, key, text, len);
			break;
		case KEY_TYPE_INT:
			if (!parse_int(text, len, key->min, key->max, &n))
				return fail_value(err, key, text, len);
			num = n;
			break;
		case KEY_TYPE_SIZE:
			/* The split size may be "auto" (CONFIG_SPLIT_AUTO). */
			if (key->id == KEY_SPLIT_BYTES && text_is(text, len, "auto"))
			{
				num = CONFIG_SPLIT_AUTO;
				break;
			}
			/* config_parse_size reads to the NUL; refuse one inside. */
			if (memchr(text, '\0', len) != NULL ||
			    !config_parse_size(text, &num))
				return fail_value(err, key, text, len);
			break;
		case KEY_TYPE_CHOICE:
			for (n = 0; key->choices[n] != NULL; n++)
				if (text_is(text, len, key->choices[n]))
					break;
			if (key->choices[n] == NULL)
			{
				join_choices(key->choices, choices, sizeof(choices));
				return err_set(err, ERR_CONFIG,
				               "invalid value \"%s\"; valid values are %s",
				               quote(shown, text, len), choices);
			}
			num = n;
			break;
		case KEY_TYPE_FRACTION:
			if (!parse_fraction(text, len, &num))
				return fail_value(err, key, text, len);
			break;
	}
	return key_store(cfg, key, text, len, num, err);
}

/* ---- the task file ---- */

static size_t
node_line(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

/* YAML's null: an empty or ~/null plain scalar. */
static bool
node_is_null(const yaml_node_t *node)
{
	const char *v;
	size_t len;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *) node->data.scalar.value;
	len = node->data.scalar.length;
	return len == 0 || text_is(v, len, "~") || text_is(v, len, "null") ||
	       text_is(v, len, "Null") || text_is(v, len, "NULL");
}

/* What a node is, as the "got ..." part of a message. */
static const char *
describe_node(const yaml_node_t *node, char *buf, size_t cap)
{
	char shown[QUOTED_CAP];

	switch (node->type)
	{
		case YAML_MAPPING_NODE:
			return "a mapping";
		case YAML_SEQUENCE_NODE:
			return "a sequence";
		case YAML_SCALAR_NODE:
			if (node_is_null(node))
				return "no value";
			snprintf(buf, cap, "\"%s\"",
			         quote(shown, (const char *) node->data.scalar.value,
			               node->data.scalar.length));
			return buf;
		case YAML_NO_NODE:
			break;
	}
	return "nothing";
}

/* Prefixes "FILE:LINE: key K: " to the message in err. Returns false. */
static bool
at_key(Error *err, const Loader *ld, const yaml_node_t *node, const KeyDef *key)
{
	return err_prefix(err, "%s:%zu: key %s: ", ld->name, node_line(node),
	                  key->name);
}

/* A node of the wrong kind for key: "expected an integer ..., got a sequence". */
static bool
fail_kind(Error *err, const Loader *ld, const KeyDef *key,
          const yaml_node_t *node)
{
	char got[QUOTED_CAP + 2];

	fail_expected(err, key, describe_node(node, got, sizeof(got)));
	return at_key(err, ld, node, key);
}

/*
 * A list key replaces what cfg held (a file sets the list; the command line
 * then appends to it). The new list is built apart and swapped in whole.
 */
static bool
load_list(Loader *ld, const KeyDef *key, yaml_node_t *node, Error *err)
{
	StrList *field = list_field(ld->cfg, key->id);
	StrList items = {0};

	if (field == NULL)
		return err_set(err, ERR_INTERNAL, "key %s has no list", key->name);
	if (node->type == YAML_SCALAR_NODE && !node_is_null(node))
	{
		const char *text = (const char *) node->data.scalar.value;
		size_t len = node->data.scalar.length;

		if (!check_string(key, text, len, err) ||
		    !strlist_append(&items, text, len, err))
			goto fail;
	}
	else if (node->type == YAML_SEQUENCE_NODE)
	{
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++)
		{
			yaml_node_t *item = yaml_document_get_node(ld->doc, *it);

			if (item->type != YAML_SCALAR_NODE || node_is_null(item))
			{
				strlist_free(&items);
				return fail_kind(err, ld, key, item);
			}
			if (!check_string(key, (const char *) item->data.scalar.value,
			                  item->data.scalar.length, err) ||
			    !strlist_append(&items, (const char *) item->data.scalar.value,
			                    item->data.scalar.length, err))
			{
				node = item;
				goto fail;
			}
		}
	}
	else
		return fail_kind(err, ld, key, node);
	strlist_free(field);
	*field = items;
	return true;

fail:
	strlist_free(&items);
	return at_key(err, ld, node, key);
}

static bool
load_value(Loader *ld, const KeyDef *key, yaml_node_t *node, Error *err)
{
	if (key->type == KEY_TYPE_LIST)
		return load_list(ld, key, node, err);
	if (node->type != YAML_SCALAR_NODE || node_is_null(node))
		return fail_kind(err, ld, key, node);
	if (!key_apply(ld->cfg, key, (const char *) node->data.scalar.value,
	               node->data.scalar.length, err))
		return at_key(err, ld, node, key);
	return true;
}

static bool
fail_unknown_key(Loader *ld, const char *section, const yaml_node_t *knode,
                 Error *err)
{
	const char *text = (const char *) knode->data.scalar.value;
	size_t len = knode->data.scalar.length;
	const KeyDef *elsewhere = find_misplaced(section, text, len);
	char shown[QUOTED_CAP];
	char valid[KEY_LIST_CAP];
	char did_you_mean[KEY_LIST_CAP] = "";

	if (elsewhere != NULL)
		snprintf(did_you_mean, sizeof(did_you_mean), "did you mean %s? ",
		         elsewhere->name);
	list_keys(section, valid, sizeof(valid));
	err_set(err, ERR_CONFIG, "%s:%zu: unknown key \"%s%s%s\"", ld->name,
	        node_line(knode), section == NULL ? "" : section,
	        section == NULL ? "" : ".", quote(shown, text, len));
	if (section == NULL)
		return err_hint(err, "%svalid top-level keys: %s", did_you_mean, valid);
	return err_hint(err, "%svalid keys in %s: %s", did_you_mean, section,
	                valid);
}

/*
 * Walks one mapping: the top level (section NULL) or a section ("copy").
 * Sections hold only scalar and list keys, so this recurses one level at
 * most, and YAML aliases cannot make it loop.
 */
static bool
load_mapping(Loader *ld, const char *section, yaml_node_t *map, Error *err)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	yaml_node_pair_t *top = map->data.mapping.pairs.top;

	for (yaml_node_pair_t *pair = start; pair < top; pair++)
	{
		yaml_node_t *knode = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *vnode = yaml_document_get_node(ld->doc, pair->value);
		char shown[QUOTED_CAP];
		char got[QUOTED_CAP + 2];
		const char *text;
		size_t len;
		const KeyDef *key;

		if (knode->type != YAML_SCALAR_NODE)
			return err_set(err, ERR_CONFIG,
			               "%s:%zu: expected a key name, got %s", ld->name,
			               node_line(knode),
			               describe_node(knode, got, sizeof(got)));
		text = (const char *) knode->data.scalar.value;
		len = knode->data.scalar.length;

		/* libyaml's loader keeps duplicate keys; a second value would
		 * silently win, so it is an error here. */
		for (yaml_node_pair_t *prev = start; prev < pair; prev++)
		{
			yaml_node_t *pk = yaml_document_get_node(ld->doc, prev->key);

			if (pk->type == YAML_SCALAR_NODE && pk->data.scalar.length == len &&
			    memcmp(pk->data.scalar.value, text, len) == 0)
				return err_set(err, ERR_CONFIG,
				               "%s:%zu: duplicate key \"%s%s%s\", first given "
				               "at line %zu",
				               ld->name, node_line(knode),
				               section == NULL ? "" : section,
				               section == NULL ? "" : ".",
				               quote(shown, text, len), node_line(pk));
		}

		if (section == NULL && is_section(text, len))
		{
			if (vnode->type != YAML_MAPPING_NODE)
				return err_set(err, ERR_CONFIG,
				               "%s:%zu: key %s: expected a mapping, got %s",
				               ld->name, node_line(vnode), text,
				               describe_node(vnode, got, sizeof(got)));
			if (!load_mapping(ld, text, vnode, err))
				return false;
			continue;
		}
		key = find_key(section, text, len);
		if (key == NULL)
			return fail_unknown_key(ld, section, knode, err);
		if (!load_value(ld, key, vnode, err))
			return false;
	}
	return true;
}

/* 1-based line and column of a byte offset, for libyaml's reader errors. */
static void
offset_position(const char *data, size_t len, size_t offset, size_t *line,
                size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++)
	{
		if (data[i] == '\n')
		{
			(*line)++;
			*column = 1;
		}
		else
			(*column)++;
	}
}

static bool
fail_syntax(const Loader *ld, const yaml_parser_t *parser, Error *err)
{
	const char *problem = parser->problem ? parser->problem : "invalid YAML";
	size_t line, column;

	switch (parser->error)
	{
		case YAML_MEMORY_ERROR:
			return out_of_memory(err);
		case YAML_READER_ERROR:
			/* The reader reports a byte offset, not a mark. */
			offset_position(ld->data, ld->len, parser->problem_offset, &line,
			                &column);
			err_set(err, ERR_CONFIG, "%s:%zu:%zu: %s", ld->name, line, column,
			        problem);
			if (parser->problem_value != -1)
				err_detail(err, "the byte is 0x%02X", parser->problem_value);
			return false;
		default:
			err_set(err, ERR_CONFIG, "%s:%zu:%zu: %s", ld->name,
			        parser->problem_mark.line + 1,
			        parser->problem_mark.column + 1, problem);
			if (parser->context != NULL)
				err_detail(err, "%s at line %zu, column %zu", parser->context,
				           parser->context_mark.line + 1,
				           parser->context_mark.column + 1);
			return false;
	}
}

/* Parses data[0..len) as the task file called `name`, over cfg's values. */
static bool
load_bytes(TaskConfig *cfg, const char *name, const char *data, size_t len,
           Error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_document_t extra;
	yaml_node_t *root;
	Loader ld = {.name = name, .data = data, .len = len, .cfg = cfg};
	bool ok = false;

	if (!yaml_parser_initialize(&parser))
		return out_of_memory(err);
	yaml_parser_set_input_string(&parser, (const unsigned char *) data, len);
	if (!yaml_parser_load(&parser, &doc))
	{
		fail_syntax(&ld, &parser, err);
		goto out_parser;
	}
	ld.doc = &doc;

	/* A second document would be ignored by the walk below; refuse it. */
	if (!yaml_parser_load(&parser, &extra))
	{
		fail_syntax(&ld, &parser, err);
		goto out_doc;
	}
	if (yaml_document_get_root_node(&extra) != NULL)
	{
		err_set(err, ERR_CONFIG,
		        "%s:%zu: expected one YAML document, found a second", name,
		        extra.start_mark.line + 1);
		yaml_document_delete(&extra);
		goto out_doc;
	}
	yaml_document_delete(&extra);

	root = yaml_document_get_root_node(&doc);
	if (root == NULL || node_is_null(root))
		ok = true; /* an empty file changes nothing */
	else if (root->type != YAML_MAPPING_NODE)
	{
		char got[QUOTED_CAP + 2];

		err_set(err, ERR_CONFIG,
		        "%s:%zu: expected a mapping of keys at the top level, got %s",
		        name, node_line(root), describe_node(root, got, sizeof(got)));
	}
	else
		ok = load_mapping(&ld, NULL, root, err);

out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return ok;
}

/*
 * Reads the whole file into a malloc'd buffer the caller frees. Fails past
 * CONFIG_FILE_MAX bytes.
 */
static bool
read_file(const char *path, char **data, size_t *len, Error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t used = 0;
	size_t cap = 0;
	bool ok = false;

	if (f == NULL)
		return err_set(err, ERR_CONFIG, "could not read task file \"%s\": %s",
		               path, strerror(errno));
	for (;;)
	{
		size_t got;

		if (used > CONFIG_FILE_MAX)
		{
			err_set(err, ERR_CONFIG,
			        "could not read task file \"%s\": larger than %zu MB", path,
			        CONFIG_FILE_MAX / (1024 * 1024));
			goto out;
		}
		if (used == cap)
		{
			/* One byte past the limit is enough to see it was passed. */
			size_t next = cap == 0 ? 4096 : cap * 2;
			char *grown;

			if (next > CONFIG_FILE_MAX + 1)
				next = CONFIG_FILE_MAX + 1;
			grown = realloc(buf, next);
			if (grown == NULL)
			{
				out_of_memory(err);
				goto out;
			}
			buf = grown;
			cap = next;
		}
		errno = 0;
		got = fread(buf + used, 1, cap - used, f);
		used += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
	{
		err_set(err, ERR_CONFIG, "could not read task file \"%s\": %s", path,
		        strerror(errno != 0 ? errno : EIO));
		goto out;
	}
	*data = buf;
	*len = used;
	buf = NULL;
	ok = true;
out:
	free(buf);
	fclose(f);
	return ok;
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
	strlist_free(&cfg->include);
	strlist_free(&cfg->exclude);
	free(cfg->pg_dump);
	free(cfg->state_schema);
	free(cfg->cdc_spill_dir);
	free(cfg->cdc_slot);
	free(cfg->cdc_start_lsn);
	free(cfg->cdc_publication);
	strlist_free(&cfg->check_skip);
	strlist_free(&cfg->validate_tables);
	strlist_free(&cfg->cutover_roles);
	free(cfg->cutover_fence_command);
	free(cfg->cutover_unfence_command);
	memset(cfg, 0, sizeof(*cfg));
}

bool
config_load_file(TaskConfig *cfg, const char *path, Error *err)
{
	char *data = NULL;
	size_t len = 0;
	bool ok;

	if (!read_file(path, &data, &len, err))
		return false;
	if (!replace_string(&cfg->path, path, strlen(path), err))
	{
		free(data);
		return false;
	}
	ok = load_bytes(cfg, path, data, len, err);
	free(data);
	return ok;
}

bool
config_load_string(TaskConfig *cfg, const char *name, const char *yaml,
                   Error *err)
{
	return load_bytes(cfg, name, yaml, strlen(yaml), err);
}

bool
config_set(TaskConfig *cfg, const char *key, const char *value,
           const char *origin, Error *err)
{
	const KeyDef *def;
	char shown[QUOTED_CAP];
	char valid[KEY_LIST_CAP];

	if (key == NULL)
		key = "";
	if (value == NULL)
		value = "";
	if (origin == NULL)
		origin = "setting";
	def = find_dotted(key);
	if (def == NULL)
	{
		list_all_keys(valid, sizeof(valid));
		err_set(err, ERR_CONFIG, "%s: unknown key \"%s\"", origin,
		        quote(shown, key, strlen(key)));
		return err_hint(err, "valid keys: %s", valid);
	}
	if (!key_apply(cfg, def, value, strlen(value), err))
		return err_prefix(err, "%s: ", origin);
	return true;
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
	if (cfg->target_uri == NULL || cfg->target_uri[0] == '\0')
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
