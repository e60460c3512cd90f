/*
 * config: the task file (YAML; JSON is accepted as YAML) and every option's
 * default, in one TaskConfig.
 *
 * Pure: parses bytes and strings into a struct; no libpq, no sockets, no
 * clocks. Every error names where the bad value came from: "FILE:LINE: key
 * copy.jobs: ..." for the task file, "option --jobs: ..." for the command line,
 * and lists the valid choices. Unknown keys are errors.
 */
#ifndef PGTIDE_CONFIG_H
#define PGTIDE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum SchemaMode
{
	SCHEMA_MODE_CREATE = 0, /* pre-data from pg_dump, post-data after load */
	SCHEMA_MODE_EXISTING,   /* the user's own tables on the target */
} SchemaMode;

typedef enum OnExisting
{
	ON_EXISTING_REFUSE = 0, /* stop if a target table exists or has rows */
	ON_EXISTING_TRUNCATE,   /* empty existing target tables (existing mode) */
	ON_EXISTING_DROP,       /* drop and recreate them (create mode) */
} OnExisting;

typedef enum CopyFormat
{
	COPY_FORMAT_AUTO = 0, /* binary when every column type allows it */
	COPY_FORMAT_TEXT,
	COPY_FORMAT_BINARY,
} CopyFormat;

typedef enum OnConflict
{
	ON_CONFLICT_STOP = 0, /* stop the task, naming table, key, LSN, xid */
	ON_CONFLICT_SKIP,     /* skip a missing row; keep the existing one */
	ON_CONFLICT_UPSERT,   /* insert a missing row; overwrite a duplicate */
} OnConflict;

typedef enum FenceMethod
{
	FENCE_REVOKE = 0, /* revoke INSERT/UPDATE/DELETE/TRUNCATE from roles */
	FENCE_READ_ONLY,  /* database read-only for new sessions; end the roles'
	                     sessions */
	FENCE_COMMAND,    /* the user's own command (and its undo) */
} FenceMethod;

typedef enum FinalValidation
{
	FINAL_VALIDATION_NONE = 0,
	FINAL_VALIDATION_COUNTS, /* row counts per table */
	FINAL_VALIDATION_FULL,   /* ranged hashes of every row */
} FinalValidation;

/* What cutover does with a keyless table that saw an UPDATE or DELETE. */
typedef enum DivergedPolicy
{
	DIVERGED_REFUSE = 0, /* cutover fails, naming the tables */
	DIVERGED_RECOPY,     /* copied again while the source is fenced */
} DivergedPolicy;

/* cutover.dropped_tables: what the target does with a table of the task
 * dropped on the source since the load (docs/cutover.md). */
typedef enum DroppedPolicy
{
	DROPPED_REFUSE = 0, /* cutover refuses before the fence, naming them */
	DROPPED_DROP,       /* dropped on the target too, under the fence */
	DROPPED_KEEP,       /* left on the target with their rows */
} DroppedPolicy;

/* cutover.sequence_spacing: how several targets' sequences stay apart
 * after the hand-over (docs/sharding.md). */
typedef enum SequenceSpacing
{
	SEQUENCE_SPACING_NONE = 0, /* each target continues the source's */
	SEQUENCE_SPACING_MODULO,   /* target k of n hands out values = k mod n */
} SequenceSpacing;

/* shard.method: how a row's key names its target (docs/sharding.md). */
typedef enum ShardMethod
{
	SHARD_HASH = 0,
	SHARD_LIST,
	SHARD_RANGE,
	SHARD_LOOKUP,
} ShardMethod;

/* shard.slot: the source's slots of a task of several targets (decision
   0043) */
typedef enum ShardSlot
{
	SHARD_SLOT_ONE = 0,    /* one slot, read once, fed to every target */
	SHARD_SLOT_PER_TARGET, /* a slot per target (tasks before 0043) */
} ShardSlot;

/*
 * copy.split_tables_larger_than = auto: split only a table larger than a
 * fair share of the load (all selected tables / copy.jobs), into about that
 * share each. Several tables already keep the workers busy; splitting them
 * too only adds COPY-from-SELECT and heap-extension contention.
 */
#define CONFIG_SPLIT_AUTO INT64_C(-1)

typedef struct StrList
{
	char **items; /* owned; each item owned */
	int count;
} StrList;

/*
 * A mapping of the task file whose keys are the user's names (rename.tables,
 * filters, targets): keys.items[i] maps to values.items[i], in the file's
 * order, each key once. line[i] is the key's line in the task file, for
 * messages about a name that turns out wrong only once pgtide connects.
 */
typedef struct StrMap
{
	StrList keys;
	StrList values;
	int *line; /* owned; one per key */
} StrMap;

/*
 * throttle.*: what the full load may take from the source, and the only
 * keys a running task rereads on SIGHUP (docs/decisions/0026).
 */
typedef struct ThrottleConfig
{
	int copy_workers;      /* copy workers running at once; 0: copy.jobs */
	int64_t rows_per_s;    /* the load's rows per second; 0: no cap */
	int64_t bytes_per_s;   /* the load's COPY bytes per second; 0: no cap */
	int index_builds;      /* index builds at once; 0: copy.index_jobs */
	bool adaptive;         /* slow the load while the source's probe is slow */
	int probe_latency_ms;  /* the probe's bound */
	int probe_interval_ms; /* time between probes */
	char *probe_query;     /* the user's own probe, or NULL; owned */
} ThrottleConfig;

/*
 * A threshold on the WAL a slot retains: bytes, or parts per million of
 * check.wal_free_space; both 0 is off. `set`: the task file named it (an
 * unset one takes the guard's default, docs/guard.md).
 */
typedef struct WalLimit
{
	bool set;
	int64_t bytes;
	int64_t ppm;
} WalLimit;

typedef struct TaskConfig
{
	char *path;           /* task file read, or NULL; owned */
	char *task;           /* task name, [a-z0-9_]{1,40}; owned */
	char *source_uri;     /* libpq URI or key=value string; owned */
	char *target_uri;     /* owned */
	StrList include;      /* schema.table patterns; empty = every table */
	StrList exclude;      /* schema.table patterns */
	char *table_mappings; /* an AWS DMS table-mapping file, or NULL; owned */
	int copy_jobs;        /* parallel copy workers */
	int index_jobs;       /* parallel index/constraint builders */
	int64_t split_bytes;  /* tables larger than this are cut into chunks;
	                        CONFIG_SPLIT_AUTO, or 0 for never */
	CopyFormat copy_format;
	SchemaMode schema_mode;
	OnExisting on_existing;
	int progress_interval_s; /* log line period when not on a terminal */
	char *pg_dump;           /* pg_dump binary; NULL = newest installed */
	char *state_schema;      /* schema for pgtide's state on the target */
	int64_t
	    cdc_memory_bytes; /* transactions buffered in memory, then spilled */
	char *cdc_spill_dir;  /* NULL = $TMPDIR or /tmp */
	OnConflict on_conflict;
	/* a change of a table the task does not move: stop (false) or ignore
	   and count it (true) */
	bool cdc_ignore_unknown;
	char *cdc_slot;        /* follow: the slot to stream; NULL = the task's */
	char *cdc_start_lsn;   /* follow: where to start; NULL = the slot's */
	char *cdc_publication; /* follow: NULL = the task's (pgtide_TASK) */
	StrList check_skip;    /* finding ids that do not block migrate */
	int64_t check_wal_free_bytes; /* source disk free for WAL; 0 unknown */
	int check_wal_sample_ms;      /* the source's WAL rate measured so long */
	StrList validate_tables;      /* patterns; empty = the task's tables */
	double validate_sample;       /* fraction of ranges checked, (0, 1] */
	FenceMethod cutover_fence;
	StrList cutover_roles;         /* roles fenced (revoke, read_only) */
	char *cutover_fence_command;   /* FENCE_COMMAND: run by /bin/sh */
	char *cutover_unfence_command; /* undoes it when cutover fails */
	int64_t cutover_max_lag_bytes; /* lag to wait for before fencing */
	int cutover_timeout_s;         /* for each wait of the cutover */
	int cutover_sequence_margin;   /* added to each sequence's value */
	FinalValidation cutover_validate;
	DivergedPolicy cutover_diverged;
	DroppedPolicy cutover_dropped;
	SequenceSpacing cutover_spacing;
	char *http_listen;    /* "[ADDR:]PORT" to serve metrics on; NULL: off */
	int http_ready_lag_s; /* /readyz: ready while following with less lag */
	ThrottleConfig throttle;
	/* the guards over the source (docs/guard.md) */
	WalLimit guard_wal_warn;
	WalLimit guard_wal_pause;
	WalLimit guard_wal_stop;
	int guard_interval_s;  /* how often the guard reads the source */
	int guard_xmin_age_s;  /* pgtide holding the xmin horizon longer; 0 off */
	int64_t guard_xid_age; /* age(datfrozenxid) to warn at; 0 off */
	int guard_heartbeat_s; /* the least interval of heartbeats; 0 off */
	/* what moves under which name, and where (docs/task-file.md) */
	StrMap rename_schemas;  /* source schema -> target schema */
	StrMap rename_tables;   /* schema.table -> a target table name */
	StrMap rename_columns;  /* schema.table.column -> a target column name */
	StrList remove_columns; /* schema.table.column: not moved */
	/* table_mappings' transformation rules, in the form CONFIG_RULE_MARK
	   describes (route/rename reads them) */
	StrList transformations;
	StrMap filters;  /* schema.table -> an SQL condition on its rows */
	StrMap targets;  /* target name -> connection string */
	char *shard_key; /* the routing column, or NULL */
	ShardMethod shard_method;
	StrMap shard_values; /* target name -> its key values (list) */
	StrMap shard_bounds; /* target name -> "LOW..HIGH" (range) */
	char *shard_lookup;  /* "schema.table(key, target)" (lookup), or NULL */
	StrMap shard_tables; /* table pattern -> "key COL", "target NAME", "all" */
	ShardSlot shard_slot;
	/* several targets: the one this process works on (a name of targets),
	   not read from any file; NULL otherwise */
	char *shard_target;
	/* that process's tables routed by a key (load/shards): "schema"."name"
	   -> the routing column, and the task file's own filters of those
	   tables as they were before their routing joined them (none: absent),
	   for the stream, which routes in pgtide */
	StrMap shard_routes;
	StrMap shard_own_filters;
	bool output_json; /* command line only (--json): machine output */
	bool force;       /* command line only (--force): clean a running task */
} TaskConfig;

/* Appends key -> value, found at line; fails (ERR_CONFIG for a key given
 * twice, ERR_INTERNAL out of memory) with map unchanged. */
bool config_strmap_add(StrMap *map, const char *key, size_t key_len,
                       const char *value, size_t value_len, int line,
                       Error *err);

/* *dst: a copy of src of its own, for config_strmap_free; on failure
 * (ERR_INTERNAL) *dst holds nothing. */
bool config_strmap_copy(StrMap *dst, const StrMap *src, Error *err);

/* Frees what map holds; it is empty after. */
void config_strmap_free(StrMap *map);

/* Fills cfg with every default (see docs/task-file.md). Never fails. */
void config_init(TaskConfig *cfg);

/* Frees what cfg owns; cfg may be reused after config_init. NULL is a no-op. */
void config_free(TaskConfig *cfg);

/*
 * Reads the YAML file at path over cfg's current values. On failure err names
 * "path:line: key K: what", lists valid choices where there are some, and cfg
 * may hold some of the file's values (the caller discards it).
 */
bool config_load_file(TaskConfig *cfg, const char *path, Error *err);

/* Same as config_load_file, from a string; `name` stands for the file name. */
bool config_load_string(TaskConfig *cfg, const char *name, const char *yaml,
                        Error *err);

/*
 * Sets one key by its dotted name ("copy.jobs", "tables.include") from text,
 * as the command line does. `origin` names where the value came from
 * ("option --jobs") and starts the error message. For list keys the value is
 * appended.
 */
bool config_set(TaskConfig *cfg, const char *key, const char *value,
                const char *origin, Error *err);

/*
 * The name the task's slot and publications go by on the source, and its
 * replication origin on the target: "pgtide_TASK", or "pgtide_TASK_TARGET"
 * for the process working on one of several targets, whose slots share the
 * one source (and whose targets may share one cluster, where origins
 * live). Fits CONFIG_SOURCE_NAME_MAX, with room for a publication's
 * "_inserts".
 */
#define CONFIG_SOURCE_NAME_MAX 64
void config_source_name(const TaskConfig *cfg, char *out, size_t cap);

/*
 * The name of the task's slot on the source: config_source_name's, but
 * "pgtide_TASK" for every target of several under shard.slot one, whose
 * targets read one slot (decision 0043).
 */
void config_slot_name(const TaskConfig *cfg, char *out, size_t cap);

/* Checks cross-key rules (source and target present, mode/on_existing pairs). */
bool config_validate(const TaskConfig *cfg, Error *err);

/*
 * A tables.include or tables.exclude item made from a table_mappings
 * selection rule starts with this byte, then a kind ('L': DMS wildcards,
 * 'E': an explicit rule's exact names), then three fields each after this
 * byte: the text messages name the rule by, the schema name, the table
 * name. The reader refuses control characters in names and rule ids, so the
 * byte cannot occur inside a field; route/mapping reads the form.
 */
#define CONFIG_RULE_MARK '\x1f'

/*
 * A transformations item (a table_mappings transformation rule) is this
 * byte, 'T', then eight fields each after this byte: the text messages name
 * the rule by, rule-target (schema, table, column), rule-action, the
 * object-locator's schema-name, table-name and column-name (DMS wildcards;
 * empty when the target has none), value and old-value (empty when none).
 */

/*
 * Reads the AWS DMS table-mapping file cfg->table_mappings names (nothing
 * when it is NULL) into cfg->include and cfg->exclude, in the form above,
 * and its transformation rules into cfg->transformations.
 * Fails (ERR_CONFIG) when tables.include or tables.exclude is set too, on a
 * malformed file (naming the file, the rule and the field) and on a rule
 * pgtide does not support (naming its id, type and action); cfg's lists are
 * then unchanged.
 */
bool config_read_table_mappings(TaskConfig *cfg, Error *err);

/*
 * Parses http.listen's "[ADDR:]PORT" ("9187", "127.0.0.1:9187",
 * "0.0.0.0:9187"; ADDR a dotted IPv4 address) into addr (cap bytes;
 * "127.0.0.1" when only a port is given: loopback unless asked) and *port
 * (1..65535). False, and nothing written, when it is not one.
 */
#define CONFIG_LISTEN_ADDR_MAX 16
bool config_parse_listen(const char *text, char *addr, size_t cap, int *port);

/*
 * The keys whose values differ between a and b: the throttle.* keys, which
 * a running task takes on SIGHUP, when live; every other key otherwise.
 * Writes up to cap names (static strings) and returns how many differ.
 */
int config_changed_keys(const TaskConfig *a, const TaskConfig *b, bool live,
                        const char **names, int cap);

/* Parses "512MB", "1GB", "65536", "8kB" (1024-based units). */
bool config_parse_size(const char *text, int64_t *bytes);

const char *config_schema_mode_name(SchemaMode m);
const char *config_on_existing_name(OnExisting o);
const char *config_copy_format_name(CopyFormat f);
const char *config_on_conflict_name(OnConflict c);
const char *config_fence_name(FenceMethod f);
const char *config_final_validation_name(FinalValidation v);

#endif
