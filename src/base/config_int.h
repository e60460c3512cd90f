/*
 * config_int: what the files of config share; nothing outside src/base/
 * includes it (callers use base/config.h).
 *
 *   config.c       TaskConfig as a whole: its defaults, freeing it, the rules
 *                  between keys; StrList and the text helpers declared here
 *   config_keys.c  the key table, and checking and storing one value
 *                  (config_set, the choice names, sizes)
 *   config_yaml.c  the task file: reading it and walking its YAML into keys
 *   config_dms.c   an AWS DMS table-mapping file (table_mappings) read into
 *                  tables.include and tables.exclude
 *
 * One table, config_keys[], names every key once. The task-file walker, the
 * command-line setter and the unknown-key hints all read it, so a key cannot
 * be settable in one place and unknown in another.
 *
 * Every error says where the value came from ("FILE:LINE: key K: ..." or
 * "ORIGIN: ...") and, for choices and unknown keys, what would have been
 * accepted.
 */
#ifndef PGTIDE_CONFIG_INT_H
#define PGTIDE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "base/err.h"

/*
 * At most this many bytes of a bad value appear in a message, then "...", so
 * a long value cannot crowd the key and the expectation out of the Error's
 * fixed-size message. Each byte may become a 4-byte escape.
 */
#define CONFIG_QUOTE_MAX  64
#define CONFIG_QUOTED_CAP (CONFIG_QUOTE_MAX * 4 + sizeof("..."))

/* Holds every key name joined by ", " (about 1000 bytes today). */
#define CONFIG_KEY_LIST_CAP 1600

/* A DMS rule's source filters as SQL, or its table's quoted name. */
#define CONFIG_FILTER_MAX ((size_t) 1 << 20)

/* Holds one key's choices joined by ", " (the longest is under 60 bytes). */
#define CONFIG_CHOICES_CAP 256

typedef enum KeyId
{
	CONFIG_KEY_TASK,
	CONFIG_KEY_SOURCE,
	CONFIG_KEY_TARGET,
	CONFIG_KEY_INCLUDE,
	CONFIG_KEY_EXCLUDE,
	CONFIG_KEY_TABLE_MAPPINGS,
	CONFIG_KEY_COPY_JOBS,
	CONFIG_KEY_INDEX_JOBS,
	CONFIG_KEY_SPLIT_BYTES,
	CONFIG_KEY_COPY_FORMAT,
	CONFIG_KEY_SCHEMA_MODE,
	CONFIG_KEY_ON_EXISTING,
	CONFIG_KEY_PG_DUMP,
	CONFIG_KEY_STATE_SCHEMA,
	CONFIG_KEY_PROGRESS_INTERVAL,
	CONFIG_KEY_CDC_MEMORY,
	CONFIG_KEY_CDC_SPILL_DIR,
	CONFIG_KEY_ON_CONFLICT,
	CONFIG_KEY_UNKNOWN_TABLES,
	CONFIG_KEY_CDC_SLOT,
	CONFIG_KEY_CDC_START_LSN,
	CONFIG_KEY_CDC_PUBLICATION,
	CONFIG_KEY_CHECK_SKIP,
	CONFIG_KEY_CHECK_WAL_FREE,
	CONFIG_KEY_CHECK_WAL_SAMPLE,
	CONFIG_KEY_VALIDATE_TABLES,
	CONFIG_KEY_VALIDATE_SAMPLE,
	CONFIG_KEY_CUTOVER_FENCE,
	CONFIG_KEY_CUTOVER_ROLES,
	CONFIG_KEY_CUTOVER_FENCE_CMD,
	CONFIG_KEY_CUTOVER_UNFENCE_CMD,
	CONFIG_KEY_CUTOVER_MAX_LAG,
	CONFIG_KEY_CUTOVER_TIMEOUT,
	CONFIG_KEY_CUTOVER_MARGIN,
	CONFIG_KEY_CUTOVER_VALIDATE,
	CONFIG_KEY_CUTOVER_DIVERGED,
	CONFIG_KEY_CUTOVER_DROPPED,
	CONFIG_KEY_CUTOVER_SPACING,
	CONFIG_KEY_HTTP_LISTEN,
	CONFIG_KEY_HTTP_READY_LAG,
	CONFIG_KEY_THROTTLE_COPY_WORKERS,
	CONFIG_KEY_THROTTLE_ROWS,
	CONFIG_KEY_THROTTLE_BYTES,
	CONFIG_KEY_THROTTLE_INDEX_BUILDS,
	CONFIG_KEY_THROTTLE_ADAPTIVE,
	CONFIG_KEY_THROTTLE_PROBE_LATENCY,
	CONFIG_KEY_THROTTLE_PROBE_INTERVAL,
	CONFIG_KEY_THROTTLE_PROBE_QUERY,
	CONFIG_KEY_GUARD_WAL_WARN,
	CONFIG_KEY_GUARD_WAL_PAUSE,
	CONFIG_KEY_GUARD_WAL_STOP,
	CONFIG_KEY_GUARD_INTERVAL,
	CONFIG_KEY_GUARD_XMIN_AGE,
	CONFIG_KEY_GUARD_XID_AGE,
	CONFIG_KEY_GUARD_HEARTBEAT,
	CONFIG_KEY_RENAME_SCHEMAS,
	CONFIG_KEY_RENAME_TABLES,
	CONFIG_KEY_RENAME_COLUMNS,
	CONFIG_KEY_REMOVE_COLUMNS,
	CONFIG_KEY_FILTERS,
	CONFIG_KEY_TARGETS,
	CONFIG_KEY_SHARD_KEY,
	CONFIG_KEY_SHARD_METHOD,
	CONFIG_KEY_SHARD_VALUES,
	CONFIG_KEY_SHARD_BOUNDS,
	CONFIG_KEY_SHARD_LOOKUP,
	CONFIG_KEY_SHARD_TABLES,
	CONFIG_KEY_SHARD_SLOT,
} KeyId;

typedef enum KeyType
{
	CONFIG_KEY_TYPE_STRING,   /* any non-empty string without NUL bytes */
	CONFIG_KEY_TYPE_NAME,     /* task name: [a-z0-9_]{1,40} */
	CONFIG_KEY_TYPE_IDENT,    /* SQL identifier: [a-z_][a-z0-9_]{0,62} */
	CONFIG_KEY_TYPE_SLOT,     /* replication slot name: [a-z0-9_]{1,63} */
	CONFIG_KEY_TYPE_LIST,     /* strings; a scalar in YAML is a one-item list */
	CONFIG_KEY_TYPE_INT,      /* decimal integer in [min, max] */
	CONFIG_KEY_TYPE_SIZE,     /* config_parse_size() */
	CONFIG_KEY_TYPE_CHOICE,   /* one of choices[] */
	CONFIG_KEY_TYPE_FRACTION, /* "0.1" or "10%": in (0, 1] */
	CONFIG_KEY_TYPE_WAL_LIMIT, /* "off", a size, or "N%" of check.wal_free_space */
	CONFIG_KEY_TYPE_MAP,       /* a mapping of the user's names to strings; task
	                        file only */
} KeyType;

typedef struct KeyDef
{
	const char *name; /* dotted: "copy.jobs"; the part before '.' is a
						 nested mapping in the task file */
	KeyId id;
	KeyType type;
	int min; /* CONFIG_KEY_TYPE_INT */
	int max;
	const char *const *choices; /* CONFIG_KEY_TYPE_CHOICE; NULL-terminated */
} KeyDef;

/* ---- config.c ---- */

/* Sets err to "out of memory" (ERR_INTERNAL); returns false. */
bool config_out_of_memory(Error *err);

/* Returns a malloc'd NUL-terminated copy of text[0..len) the caller frees,
 * or NULL when out of memory. */
char *config_dup_text(const char *text, size_t len);

/* True when text[0..len) is word. */
bool config_text_is(const char *text, size_t len, const char *word);

/*
 * Writes text[0..len) into dst (CONFIG_QUOTED_CAP bytes) as it should
 * appear between double quotes in a message: quote, backslash and control
 * bytes escaped, at most CONFIG_QUOTE_MAX input bytes and then "...". Returns
 * dst.
 */
const char *config_quote(char *dst, const char *text, size_t len);

/* Frees the items of list and empties it. */
void config_strlist_free(StrList *list);

/* Appends a copy of text[0..len) to list; fails (ERR_CONFIG past INT_MAX / 2
 * items, ERR_INTERNAL out of memory) with list unchanged. */
bool config_strlist_append(StrList *list, const char *text, size_t len,
                           Error *err);

/* Frees what map holds and empties it. */


/* ---- config_yaml.c ---- */

/*
 * Reads the whole file at path into a malloc'd, NUL-terminated buffer the
 * caller frees; `what` names the file in messages ("task file"). Fails
 * (ERR_CONFIG) past 16 MB.
 */
bool config_read_file(const char *what, const char *path, char **data,
                      size_t *len, Error *err);

/* ---- config_keys.c ---- */

/* The key named `leaf` inside `section` (NULL: the top level), or NULL.
 * Lengths are explicit because YAML keys may hold NUL bytes. */
const KeyDef *config_find_key(const char *section, const char *leaf,
                              size_t leaf_len);

/* True when text names a nested mapping of the top level ("copy"). */
bool config_is_section(const char *text, size_t len);

/* Lists the keys valid inside `section` (NULL: the top level, where each
 * section is one key) into buf (cap bytes, CONFIG_KEY_LIST_CAP is enough). */
void config_list_keys(const char *section, char *buf, size_t cap);

/* A key the user may have put in the wrong mapping: one whose leaf or dotted
 * name is `text` but which does not belong in `section`. NULL if none. */
const KeyDef *config_find_misplaced(const char *section, const char *text,
                                    size_t len);

/* Sets err (ERR_CONFIG) to "expected <what key accepts>, got <got>";
 * returns false. */
bool config_fail_expected(Error *err, const KeyDef *key, const char *got);

/* Checks a plain string value (non-empty, no NUL byte) without echoing it:
 * it may be a URI with a password. On failure sets err, returns false. */
bool config_check_string(const KeyDef *key, const char *text, size_t len,
                         Error *err);

/* The StrList of cfg that list key id fills, or NULL for another key. */
StrList *config_list_field(TaskConfig *cfg, KeyId id);

/* The StrMap of cfg that map key id fills, or NULL for another key. */
StrMap *config_map_field(TaskConfig *cfg, KeyId id);

/* Replaces *field (freed) by a copy of text[0..len); on failure (out of
 * memory) *field is unchanged. */
bool config_replace_string(char **field, const char *text, size_t len,
                           Error *err);

/*
 * Checks one scalar value for key and stores it in cfg; list keys append.
 * On failure err says what was expected and what came, without a location:
 * the caller prefixes where the value came from.
 */
bool config_key_apply(TaskConfig *cfg, const KeyDef *key, const char *text,
                      size_t len, Error *err);

#endif
