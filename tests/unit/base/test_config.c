/*
 * test_config: the task file and option values -> TaskConfig, and the exact
 * wording of every error a user can get from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>


#include "base/config.h"

/* ---- helpers ---- */

static void
load_ok(TaskConfig *cfg, const char *yaml)
{
	Error err = ERR_INIT;

	if (!config_load_string(cfg, "t.yaml", yaml, &err))
		fail_msg("unexpected error: %s", err.message);
}

/* Loads yaml over the defaults and checks the one error it must give. */
static void
expect_load_error(const char *yaml, const char *message)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	config_init(&cfg);
	assert_false(config_load_string(&cfg, "t.yaml", yaml, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, message);
	config_free(&cfg);
}

static void
expect_set_error(const char *key, const char *value, const char *origin,
                 const char *message)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	config_init(&cfg);
	assert_false(config_set(&cfg, key, value, origin, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, message);
	config_free(&cfg);
}

/*
 * Writes bytes to a new temporary file and returns its malloc'd path; the
 * caller unlinks and frees it.
 */
static char *
write_temp(const char *bytes, size_t len)
{
	const char *dir = getenv("TMPDIR");
	size_t cap;
	char *path;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	cap = strlen(dir) + sizeof("/pgtide-test-config-XXXXXX");
	path = malloc(cap);
	assert_non_null(path);
	snprintf(path, cap, "%s/pgtide-test-config-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t) len);
	close(fd);
	return path;
}

/* ---- defaults and valid files ---- */

static void
test_defaults(void **state)
{
	TaskConfig cfg;

	(void) state;
	config_init(&cfg);
	assert_null(cfg.path);
	assert_string_equal(cfg.task, "default");
	assert_null(cfg.source_uri);
	assert_null(cfg.target_uri);
	assert_int_equal(cfg.include.count, 0);
	assert_int_equal(cfg.exclude.count, 0);
	assert_int_equal(cfg.copy_jobs, 4);
	assert_int_equal(cfg.index_jobs, 2);
	assert_true(cfg.split_bytes == CONFIG_SPLIT_AUTO);
	assert_int_equal(cfg.copy_format, COPY_FORMAT_AUTO);
	assert_int_equal(cfg.schema_mode, SCHEMA_MODE_CREATE);
	assert_int_equal(cfg.on_existing, ON_EXISTING_REFUSE);
	assert_null(cfg.pg_dump);
	assert_string_equal(cfg.state_schema, "pgtide");
	assert_int_equal(cfg.progress_interval_s, 10);
	assert_true(cfg.cdc_memory_bytes == INT64_C(256) * 1024 * 1024);
	assert_null(cfg.cdc_spill_dir);
	assert_int_equal(cfg.on_conflict, ON_CONFLICT_STOP);
	assert_null(cfg.cdc_slot);
	assert_null(cfg.cdc_start_lsn);
	config_free(&cfg);
	config_free(&cfg); /* freed twice: the first left it empty */
	config_free(NULL);
}

static void
test_cdc_keys(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_true(config_load_string(&cfg, "t.yaml",
	                               "cdc:\n  memory_limit: 64MB\n"
	                               "  on_conflict: upsert\n"
	                               "  spill_dir: /var/spill\n"
	                               "  slot: other_slot\n"
	                               "  start_lsn: 0/16B3748\n",
	                               &err));
	assert_true(cfg.cdc_memory_bytes == INT64_C(64) * 1024 * 1024);
	assert_int_equal(cfg.on_conflict, ON_CONFLICT_UPSERT);
	assert_string_equal(cfg.cdc_spill_dir, "/var/spill");
	assert_string_equal(cfg.cdc_slot, "other_slot");
	assert_string_equal(cfg.cdc_start_lsn, "0/16B3748");
	assert_string_equal(config_on_conflict_name(cfg.on_conflict), "upsert");
	assert_false(config_set(&cfg, "cdc.on_conflict", "ignore",
	                        "option --on-conflict", &err));
	assert_string_equal(err.message,
	                    "option --on-conflict: invalid value \"ignore\"; "
	                    "valid values are stop, skip, upsert");
	config_free(&cfg);
}

static const char full_yaml[] =
    "# every key\n"
    "task: nightly_2\n"
    "source: postgres://app@old-db/app\n"
    "target: \"host=new-db dbname=app\"\n"
    "tables:\n"
    "  include:\n"
    "    - public.orders\n"
    "    - 'sales.*'\n"
    "  exclude: [public.tmp_*, audit.log]\n"
    "copy:\n"
    "  jobs: 16\n"
    "  index_jobs: 8\n"
    "  split_tables_larger_than: 2GB\n"
    "  format: binary\n"
    "schema:\n"
    "  mode: existing\n"
    "  on_existing: truncate\n"
    "  pg_dump: /usr/lib/postgresql/17/bin/pg_dump\n"
    "state:\n"
    "  schema: _pgtide_state\n"
    "progress:\n"
    "  interval: 3600\n";

static void
check_full(const TaskConfig *cfg)
{
	Error err = ERR_INIT;

	assert_string_equal(cfg->task, "nightly_2");
	assert_string_equal(cfg->source_uri, "postgres://app@old-db/app");
	assert_string_equal(cfg->target_uri, "host=new-db dbname=app");
	assert_int_equal(cfg->include.count, 2);
	assert_string_equal(cfg->include.items[0], "public.orders");
	assert_string_equal(cfg->include.items[1], "sales.*");
	assert_int_equal(cfg->exclude.count, 2);
	assert_string_equal(cfg->exclude.items[0], "public.tmp_*");
	assert_string_equal(cfg->exclude.items[1], "audit.log");
	assert_int_equal(cfg->copy_jobs, 16);
	assert_int_equal(cfg->index_jobs, 8);
	assert_true(cfg->split_bytes == INT64_C(2) * 1024 * 1024 * 1024);
	assert_int_equal(cfg->copy_format, COPY_FORMAT_BINARY);
	assert_int_equal(cfg->schema_mode, SCHEMA_MODE_EXISTING);
	assert_int_equal(cfg->on_existing, ON_EXISTING_TRUNCATE);
	assert_string_equal(cfg->pg_dump, "/usr/lib/postgresql/17/bin/pg_dump");
	assert_string_equal(cfg->state_schema, "_pgtide_state");
	assert_int_equal(cfg->progress_interval_s, 3600);
	assert_true(config_validate(cfg, &err));
}

static void
test_full_string(void **state)
{
	TaskConfig cfg;

	(void) state;
	config_init(&cfg);
	load_ok(&cfg, full_yaml);
	check_full(&cfg);
	assert_null(cfg.path); /* a string is not a file */
	config_free(&cfg);
}

static void
test_full_file(void **state)
{
	char *path = write_temp(full_yaml, strlen(full_yaml));
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_true(config_load_file(&cfg, path, &err));
	check_full(&cfg);
	assert_string_equal(cfg.path, path);
	config_free(&cfg);
	unlink(path);
	free(path);
}

static void
test_json(void **state)
{
	TaskConfig cfg;

	(void) state;
	config_init(&cfg);
	load_ok(&cfg, "{\n"
	              "\t\"task\": \"from_json\",\n"
	              "\t\"source\": \"postgres://a/b\",\n"
	              "\t\"target\": \"postgres://c/d\",\n"
	              "\t\"tables\": {\"include\": [\"public.a\", \"public.b\"],"
	              " \"exclude\": []},\n"
	              "\t\"copy\": {\"jobs\": 12, \"split_tables_larger_than\": 0,"
	              " \"format\": \"text\"},\n"
	              "\t\"schema\": {\"mode\": \"create\", \"on_existing\": "
	              "\"drop\"},\n"
	              "\t\"progress\": {\"interval\": \"30\"}\n"
	              "}\n");
	assert_string_equal(cfg.task, "from_json");
	assert_string_equal(cfg.source_uri, "postgres://a/b");
	assert_int_equal(cfg.include.count, 2);
	assert_string_equal(cfg.include.items[1], "public.b");
	assert_int_equal(cfg.exclude.count, 0);
	assert_int_equal(cfg.copy_jobs, 12);
	assert_true(cfg.split_bytes == 0);
	assert_int_equal(cfg.copy_format, COPY_FORMAT_TEXT);
	assert_int_equal(cfg.on_existing, ON_EXISTING_DROP);
	assert_int_equal(cfg.progress_interval_s, 30);
	config_free(&cfg);

	/* Errors in JSON point at the line like any other YAML. */
	expect_load_error("{\n  \"copy\": {\n    \"jobs\": 100\n  }\n}\n",
	                  "t.yaml:3: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"100\"");
}

static void
test_list_forms(void **state)
{
	TaskConfig cfg;

	(void) state;
	config_init(&cfg);
	/* A single string is a one-item list. */
	load_ok(&cfg, "tables:\n  include: public.only\n");
	assert_int_equal(cfg.include.count, 1);
	assert_string_equal(cfg.include.items[0], "public.only");

	/* A file replaces a list; it does not append to it. */
	load_ok(&cfg, "tables:\n  include: [a, b, c]\n");
	assert_int_equal(cfg.include.count, 3);
	assert_string_equal(cfg.include.items[0], "a");
	load_ok(&cfg, "tables: {include: []}\n");
	assert_int_equal(cfg.include.count, 0);
	config_free(&cfg);
}

static void
test_empty_and_partial(void **state)
{
	TaskConfig cfg;

	(void) state;
	config_init(&cfg);
	load_ok(&cfg, "");
	load_ok(&cfg, "# only a comment\n");
	load_ok(&cfg, "---\n");
	assert_int_equal(cfg.copy_jobs, 4);

	/* Keys not in the file keep what cfg held. */
	load_ok(&cfg, "copy:\n  jobs: 7\n");
	load_ok(&cfg, "task: second\n");
	assert_int_equal(cfg.copy_jobs, 7);
	assert_string_equal(cfg.task, "second");
	assert_int_equal(cfg.index_jobs, 2);

	/* Anchors and aliases resolve like any YAML. */
	load_ok(&cfg, "copy: &c {jobs: 9}\nsource: &s postgres://x\n"
	              "target: *s\n");
	assert_string_equal(cfg.target_uri, "postgres://x");
	config_free(&cfg);
}

static void
test_many_items(void **state)
{
	/* Lists and the file reader grow without a fixed limit. */
	size_t n = 5000;
	size_t cap = n * 32 + 64;
	char *yaml = malloc(cap);
	size_t used;
	char *path;
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	assert_non_null(yaml);
	used = (size_t) snprintf(yaml, cap, "tables:\n  exclude:\n");
	for (size_t i = 0; i < n; i++)
		used += (size_t) snprintf(yaml + used, cap - used,
		                          "    - public.t%zu\n", i);
	path = write_temp(yaml, used);
	config_init(&cfg);
	assert_true(config_load_file(&cfg, path, &err));
	assert_int_equal(cfg.exclude.count, (int) n);
	assert_string_equal(cfg.exclude.items[4999], "public.t4999");
	for (size_t i = 0; i < 100; i++)
		assert_true(
		    config_set(&cfg, "tables.exclude", "x.y", "option -T", &err));
	assert_int_equal(cfg.exclude.count, (int) n + 100);
	config_free(&cfg);
	unlink(path);
	free(path);
	free(yaml);
}

/* ---- value errors: exact file:line:key messages ---- */

static void
test_int_errors(void **state)
{
	(void) state;
	expect_load_error("copy:\n  jobs: abc\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"abc\"");
	expect_load_error("copy:\n  jobs: 0\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"0\"");
	expect_load_error("copy:\n  jobs: -3\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"-3\"");
	expect_load_error("copy:\n  jobs: 4.0\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"4.0\"");
	expect_load_error("copy:\n  jobs: 99999999999999999999999\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got \"99999999999999999999999\"");
	expect_load_error("\n\ncopy:\n  format: text\n  index_jobs: 65\n",
	                  "t.yaml:5: key copy.index_jobs: expected an integer from "
	                  "1 to 64, got \"65\"");
	expect_load_error("progress:\n  interval: 3601\n",
	                  "t.yaml:2: key progress.interval: expected an integer "
	                  "from 1 to 3600, got \"3601\"");
	expect_load_error("progress:\n  interval: 0x10\n",
	                  "t.yaml:2: key progress.interval: expected an integer "
	                  "from 1 to 3600, got \"0x10\"");
}

static void
test_size_errors(void **state)
{
	(void) state;
	expect_load_error("copy:\n  split_tables_larger_than: 1.5GB\n",
	                  "t.yaml:2: key copy.split_tables_larger_than: expected "
	                  "a size in bytes or with a unit kB, MB, GB or TB (such "
	                  "as 512MB), or auto, got \"1.5GB\"");
	expect_load_error("copy:\n  split_tables_larger_than: 10PB\n",
	                  "t.yaml:2: key copy.split_tables_larger_than: expected "
	                  "a size in bytes or with a unit kB, MB, GB or TB (such "
	                  "as 512MB), or auto, got \"10PB\"");
	expect_load_error("copy:\n  split_tables_larger_than: \"1\\0MB\"\n",
	                  "t.yaml:2: key copy.split_tables_larger_than: expected "
	                  "a size in bytes or with a unit kB, MB, GB or TB (such "
	                  "as 512MB), or auto, got \"1\\x00MB\"");
}

static void
test_choice_errors(void **state)
{
	(void) state;
	expect_load_error("copy:\n  format: fast\n",
	                  "t.yaml:2: key copy.format: invalid value \"fast\"; "
	                  "valid values are auto, text, binary");
	expect_load_error("copy:\n  format: Binary\n",
	                  "t.yaml:2: key copy.format: invalid value \"Binary\"; "
	                  "valid values are auto, text, binary");
	expect_load_error("schema:\n  mode: replace\n",
	                  "t.yaml:2: key schema.mode: invalid value \"replace\"; "
	                  "valid values are create, existing");
	expect_load_error("schema:\n  on_existing: keep\n",
	                  "t.yaml:2: key schema.on_existing: invalid value "
	                  "\"keep\"; valid values are refuse, truncate, drop");
	expect_load_error("copy:\n  format: [text]\n",
	                  "t.yaml:2: key copy.format: expected one of auto, text, "
	                  "binary, got a sequence");
}

static void
test_string_errors(void **state)
{
	(void) state;
	expect_load_error("task: Nightly-1\n",
	                  "t.yaml:1: key task: expected a name of 1 to 40 "
	                  "characters from a-z, 0-9 and _, got \"Nightly-1\"");
	expect_load_error("task: "
	                  "a2345678901234567890123456789012345678901\n",
	                  "t.yaml:1: key task: expected a name of 1 to 40 "
	                  "characters from a-z, 0-9 and _, got "
	                  "\"a2345678901234567890123456789012345678901\"");
	expect_load_error("state:\n  schema: 1st\n",
	                  "t.yaml:2: key state.schema: expected an identifier of 1 "
	                  "to 63 characters from a-z, 0-9 and _, not starting "
	                  "with a digit, got \"1st\"");
	expect_load_error("source: \"\"\n",
	                  "t.yaml:1: key source: expected a non-empty string, got "
	                  "an empty string");
	/* A connection string may hold a password: it is never echoed. */
	expect_load_error("target: \"password=se\\0cret\"\n",
	                  "t.yaml:1: key target: expected a non-empty string, got "
	                  "a string with a NUL byte");
	expect_load_error("schema:\n  pg_dump:\n",
	                  "t.yaml:2: key schema.pg_dump: expected a non-empty "
	                  "string, got no value");
	expect_load_error("source: ~\n", "t.yaml:1: key source: expected a "
	                                 "non-empty string, got no value");
}

static void
test_kind_errors(void **state)
{
	(void) state;
	expect_load_error("source:\n  - a\n  - b\n",
	                  "t.yaml:2: key source: expected a non-empty string, got "
	                  "a sequence");
	expect_load_error("copy:\n  jobs: {n: 4}\n",
	                  "t.yaml:2: key copy.jobs: expected an integer from 1 to "
	                  "64, got a mapping");
	expect_load_error("copy: 4\n",
	                  "t.yaml:1: key copy: expected a mapping, got \"4\"");
	expect_load_error("tables:\n  - include\n",
	                  "t.yaml:2: key tables: expected a mapping, got a "
	                  "sequence");
	expect_load_error("state:\n", "t.yaml:1: key state: expected a mapping, "
	                              "got no value");
	expect_load_error("tables:\n  include: {a: b}\n",
	                  "t.yaml:2: key tables.include: expected a string or a "
	                  "list of strings, got a mapping");
	/* A bad item is reported at its own line. */
	expect_load_error("tables:\n  exclude:\n    - a.b\n    - [c]\n",
	                  "t.yaml:4: key tables.exclude: expected a string or a "
	                  "list of strings, got a sequence");
	expect_load_error("tables:\n  exclude:\n    - a.b\n    -\n",
	                  "t.yaml:4: key tables.exclude: expected a string or a "
	                  "list of strings, got no value");
	expect_load_error("tables:\n  exclude:\n    - a.b\n    - ''\n",
	                  "t.yaml:4: key tables.exclude: expected a string or a "
	                  "list of strings, got an empty string");
	expect_load_error("- a\n- b\n", "t.yaml:1: expected a mapping of keys at "
	                                "the top level, got a sequence");
	expect_load_error("just text\n", "t.yaml:1: expected a mapping of keys "
	                                 "at the top level, got \"just text\"");
	expect_load_error("? [a, b]\n: c\n",
	                  "t.yaml:1: expected a key name, got a sequence");
	expect_load_error("task: a\n---\ntask: b\n",
	                  "t.yaml:2: expected one YAML document, found a second");
}

static void
test_long_value_is_shortened(void **state)
{
	char yaml[512];
	char expected[512];
	char value[201];

	(void) state;
	memset(value, 'x', 200);
	value[200] = '\0';
	snprintf(yaml, sizeof(yaml), "copy:\n  format: %s\n", value);
	snprintf(expected, sizeof(expected),
	         "t.yaml:2: key copy.format: invalid value \"%.64s...\"; valid "
	         "values are auto, text, binary",
	         value);
	expect_load_error(yaml, expected);
	expect_load_error("copy:\n  format: \"a\\\"b\\\\c\\td\"\n",
	                  "t.yaml:2: key copy.format: invalid value "
	                  "\"a\\\"b\\\\c\\td\"; valid values are auto, text, "
	                  "binary");
}

/* ---- mappings of the user's names ---- */

static void
test_map_keys(void **state)
{
	TaskConfig cfg;
	Error err = {0};

	(void) state;
	config_init(&cfg);
	assert_true(config_load_string(&cfg, "t.yaml",
	                               "rename:\n"
	                               "  tables:\n"
	                               "    public.orders: orders_v2\n"
	                               "    \"Odd.Name\": odd\n"
	                               "filters:\n"
	                               "  public.orders: \"id >= 10\"\n"
	                               "remove_columns: public.orders.secret\n"
	                               "shard:\n"
	                               "  key: account_id\n"
	                               "  method: range\n",
	                               &err));
	assert_int_equal(cfg.rename_tables.keys.count, 2);
	assert_string_equal(cfg.rename_tables.keys.items[1], "Odd.Name");
	assert_string_equal(cfg.rename_tables.values.items[0], "orders_v2");
	assert_int_equal(cfg.rename_tables.line[1], 4);
	assert_string_equal(cfg.filters.values.items[0], "id >= 10");
	assert_int_equal(cfg.remove_columns.count, 1);
	assert_string_equal(cfg.shard_key, "account_id");
	assert_int_equal(cfg.shard_method, SHARD_RANGE);
	config_free(&cfg);

	/* A list where a mapping goes, a list as a value, a name twice. */
	config_init(&cfg);
	assert_false(config_load_string(&cfg, "t.yaml", "filters: [a, b]\n", &err));
	assert_string_equal(err.message,
	                    "t.yaml:1: key filters: expected a mapping of names "
	                    "to strings, got a sequence");
	config_free(&cfg);
	err_clear(&err);
	config_init(&cfg);
	assert_false(
	    config_load_string(&cfg, "t.yaml", "targets:\n  a: [x]\n", &err));
	assert_string_equal(err.message,
	                    "t.yaml:2: key targets: expected a mapping of names "
	                    "to strings, got a sequence");
	config_free(&cfg);
	err_clear(&err);
	config_init(&cfg);
	assert_false(config_load_string(
	    &cfg, "t.yaml", "targets:\n  a: x\n  b: y\n  a: z\n", &err));
	assert_string_equal(err.message, "t.yaml:4: key targets: given twice, "
	                                 "first at line 2");
	config_free(&cfg);

	/* Names are the file's: the command line cannot set a mapping. */
	err_clear(&err);
	config_init(&cfg);
	assert_false(config_set(&cfg, "filters", "x", "option --set", &err));
	assert_string_equal(err.message, "option --set: key filters is a "
	                                 "mapping, set in the task file only");
	config_free(&cfg);
}

/* ---- structure errors ---- */

static void
test_unknown_key(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_false(
	    config_load_string(&cfg, "t.yaml", "copy:\n  jbos: 4\n", &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, "t.yaml:2: unknown key \"copy.jbos\"");
	assert_string_equal(err.hint, "valid keys in copy: jobs, index_jobs, "
	                              "split_tables_larger_than, format");
	config_free(&cfg);

	err_clear(&err);
	config_init(&cfg);
	assert_false(
	    config_load_string(&cfg, "t.yaml", "task: x\nsorce: y\n", &err));
	assert_string_equal(err.message, "t.yaml:2: unknown key \"sorce\"");
	assert_string_equal(err.hint, "valid top-level keys: task, source, "
	                              "target, tables, table_mappings, copy, "
	                              "schema, state, "
	                              "progress, cdc, check, validate, cutover, "
	                              "http, throttle, guard, rename, "
	                              "remove_columns, filters, targets, shard");
	config_free(&cfg);

	/* A key in the wrong mapping, or written dotted, says where it goes. */
	err_clear(&err);
	config_init(&cfg);
	assert_false(config_load_string(&cfg, "t.yaml", "jobs: 4\n", &err));
	assert_string_equal(err.message, "t.yaml:1: unknown key \"jobs\"");
	assert_string_equal(err.hint,
	                    "did you mean copy.jobs? valid top-level "
	                    "keys: task, source, target, tables, "
	                    "table_mappings, copy, "
	                    "schema, state, progress, cdc, check, "
	                    "validate, cutover, http, throttle, guard, rename, "
	                    "remove_columns, filters, targets, shard");
	config_free(&cfg);

	err_clear(&err);
	config_init(&cfg);
	assert_false(config_load_string(&cfg, "t.yaml", "copy.jobs: 4\n", &err));
	assert_string_equal(err.message, "t.yaml:1: unknown key \"copy.jobs\"");
	assert_true(strncmp(err.hint, "did you mean copy.jobs? ", 24) == 0);
	config_free(&cfg);

	err_clear(&err);
	config_init(&cfg);
	assert_false(config_load_string(
	    &cfg, "t.yaml", "state:\n  schema: s\n  source: x\n", &err));
	assert_string_equal(err.message, "t.yaml:3: unknown key \"state.source\"");
	assert_string_equal(err.hint,
	                    "did you mean source? valid keys in state: schema");
	config_free(&cfg);

	expect_load_error("tables:\n  include: a\n  \"in\\x01\": b\n",
	                  "t.yaml:3: unknown key \"tables.in\\x01\"");
}

static void
test_duplicate_key(void **state)
{
	(void) state;
	expect_load_error("copy:\n  jobs: 4\n  format: text\n  jobs: 8\n",
	                  "t.yaml:4: duplicate key \"copy.jobs\", first given at "
	                  "line 2");
	expect_load_error("source: a\ncopy: {jobs: 2}\ncopy: {format: text}\n",
	                  "t.yaml:3: duplicate key \"copy\", first given at line "
	                  "2");
	expect_load_error("{\"task\": \"a\", \"task\": \"b\"}\n",
	                  "t.yaml:1: duplicate key \"task\", first given at line "
	                  "1");
}

static void
test_syntax_error(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	expect_load_error("copy:\n  jobs: 4\n format: text\n",
	                  "t.yaml:3:2: did not find expected key");
	expect_load_error("copy: {jobs: 4\n", "t.yaml:2:1: did not find expected "
	                                      "',' or '}'");
	expect_load_error("task: a\n\tsource: b\n",
	                  "t.yaml:2:1: found a tab character that violates "
	                  "indentation");
	expect_load_error("target: *nowhere\n",
	                  "t.yaml:1:9: found undefined alias");

	/* libyaml's context goes to the detail line. */
	config_init(&cfg);
	assert_false(config_load_string(&cfg, "t.yaml",
	                                "copy:\n  jobs: 4\n format: text\n", &err));
	assert_string_equal(err.detail,
	                    "while parsing a block mapping at line 1, column 1");
	config_free(&cfg);
}

static void
test_bad_utf8(void **state)
{
	static const char bytes[] = "task: a\nsource: \"b\xff\"\n";
	char *path = write_temp(bytes, sizeof(bytes) - 1);
	TaskConfig cfg;
	Error err = ERR_INIT;
	char expected[512];

	(void) state;
	config_init(&cfg);
	assert_false(config_load_file(&cfg, path, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	snprintf(expected, sizeof(expected), "%s:2:11: invalid leading UTF-8 octet",
	         path);
	assert_string_equal(err.message, expected);
	assert_string_equal(err.detail, "the byte is 0xFF");
	config_free(&cfg);
	unlink(path);
	free(path);
}

static void
test_missing_file(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_false(config_load_file(&cfg, "no/such/task.yaml", &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, "could not read task file "
	                                 "\"no/such/task.yaml\": No such file or "
	                                 "directory");
	assert_null(cfg.path);
	config_free(&cfg);

	/* A directory opens but cannot be read. */
	err_clear(&err);
	config_init(&cfg);
	assert_false(config_load_file(&cfg, ".", &err));
	assert_string_equal(err.message, "could not read task file \".\": Is a "
	                                 "directory");
	config_free(&cfg);
}

static void
test_file_error_names_path(void **state)
{
	static const char yaml[] = "task: ok\ncopy:\n  jobs: many\n";
	char *path = write_temp(yaml, sizeof(yaml) - 1);
	TaskConfig cfg;
	Error err = ERR_INIT;
	char expected[512];

	(void) state;
	config_init(&cfg);
	assert_false(config_load_file(&cfg, path, &err));
	snprintf(expected, sizeof(expected),
	         "%s:3: key copy.jobs: expected an integer from 1 to 64, got "
	         "\"many\"",
	         path);
	assert_string_equal(err.message, expected);
	config_free(&cfg);
	unlink(path);
	free(path);
}

/* ---- config_set ---- */

static void
test_set_every_key(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_true(config_set(&cfg, "task", "t_1", "option --task", &err));
	assert_true(
	    config_set(&cfg, "source", "postgres://s", "option --source", &err));
	assert_true(
	    config_set(&cfg, "target", "postgres://t", "option --target", &err));
	assert_true(
	    config_set(&cfg, "tables.include", "public.a", "option -t", &err));
	assert_true(
	    config_set(&cfg, "tables.include", "public.b", "option -t", &err));
	assert_true(
	    config_set(&cfg, "tables.exclude", "public.c", "option -T", &err));
	assert_true(config_set(&cfg, "copy.jobs", "64", "option --jobs", &err));
	assert_true(
	    config_set(&cfg, "copy.index_jobs", "1", "option --index-jobs", &err));
	assert_true(config_set(&cfg, "copy.split_tables_larger_than", "auto",
	                       "option --split-tables-larger-than", &err));
	assert_true(cfg.split_bytes == CONFIG_SPLIT_AUTO);
	assert_true(config_set(&cfg, "copy.split_tables_larger_than", "64mb",
	                       "option --split-tables-larger-than", &err));
	assert_true(
	    config_set(&cfg, "copy.format", "text", "option --format", &err));
	assert_true(
	    config_set(&cfg, "schema.mode", "existing", "option --schema", &err));
	assert_true(config_set(&cfg, "schema.on_existing", "truncate",
	                       "option --on-existing", &err));
	assert_true(config_set(&cfg, "schema.pg_dump", "/opt/pg/bin/pg_dump",
	                       "option --pg-dump", &err));
	assert_true(config_set(&cfg, "table_mappings", "dms.json",
	                       "option --table-mappings", &err));
	assert_string_equal(cfg.table_mappings, "dms.json");
	assert_true(
	    config_set(&cfg, "state.schema", "st", "option --state-schema", &err));
	assert_true(config_set(&cfg, "progress.interval", "1",
	                       "option --progress-interval", &err));
	assert_false(cfg.cdc_ignore_unknown);
	assert_true(config_set(&cfg, "cdc.unknown_tables", "ignore",
	                       "option --unknown-tables", &err));
	assert_true(cfg.cdc_ignore_unknown);
	assert_true(config_set(&cfg, "check.skip", "wal_retention",
	                       "option --skip-check", &err));
	assert_true(config_set(&cfg, "check.wal_free_space", "2GB",
	                       "option --wal-free-space", &err));
	assert_true(
	    config_set(&cfg, "validate.sample", "10%", "option --sample", &err));
	assert_true(abs((int) (cfg.validate_sample * 1e6) - 100000) <= 1);
	assert_true(
	    config_set(&cfg, "validate.sample", "0.25", "option --sample", &err));
	assert_true(abs((int) (cfg.validate_sample * 1e6) - 250000) <= 1);
	assert_true(
	    config_set(&cfg, "cutover.fence", "read_only", "option --fence", &err));
	assert_true(
	    config_set(&cfg, "cutover.roles", "app", "option --fence-role", &err));
	assert_true(config_set(&cfg, "cutover.sequence_margin", "0",
	                       "option --sequence-margin", &err));
	assert_true(config_set(&cfg, "cutover.validate", "full",
	                       "option --final-validation", &err));
	assert_true(config_set(&cfg, "cutover.diverged", "recopy",
	                       "option --diverged", &err));
	assert_false(err_is_set(&err));
	assert_string_equal(cfg.check_skip.items[0], "wal_retention");
	assert_true(cfg.check_wal_free_bytes == INT64_C(2) * 1024 * 1024 * 1024);
	assert_int_equal(cfg.cutover_fence, FENCE_READ_ONLY);
	assert_string_equal(cfg.cutover_roles.items[0], "app");
	assert_int_equal(cfg.cutover_sequence_margin, 0);
	assert_int_equal(cfg.cutover_validate, FINAL_VALIDATION_FULL);
	assert_int_equal(cfg.cutover_diverged, DIVERGED_RECOPY);

	assert_string_equal(cfg.task, "t_1");
	assert_string_equal(cfg.source_uri, "postgres://s");
	assert_string_equal(cfg.target_uri, "postgres://t");
	assert_int_equal(cfg.include.count, 2);
	assert_string_equal(cfg.include.items[0], "public.a");
	assert_string_equal(cfg.include.items[1], "public.b");
	assert_int_equal(cfg.exclude.count, 1);
	assert_int_equal(cfg.copy_jobs, 64);
	assert_int_equal(cfg.index_jobs, 1);
	assert_true(cfg.split_bytes == INT64_C(64) * 1024 * 1024);
	assert_int_equal(cfg.copy_format, COPY_FORMAT_TEXT);
	assert_int_equal(cfg.schema_mode, SCHEMA_MODE_EXISTING);
	assert_int_equal(cfg.on_existing, ON_EXISTING_TRUNCATE);
	assert_string_equal(cfg.pg_dump, "/opt/pg/bin/pg_dump");
	assert_string_equal(cfg.state_schema, "st");
	assert_int_equal(cfg.progress_interval_s, 1);

	/* A string key set twice keeps the last value, without leaking. */
	assert_true(config_set(&cfg, "task", "t_2", "option --task", &err));
	assert_string_equal(cfg.task, "t_2");

	/* The command line appends to a list the file set. */
	load_ok(&cfg, "tables:\n  include: [x.a]\n");
	assert_true(config_set(&cfg, "tables.include", "x.b", "option -t", &err));
	assert_int_equal(cfg.include.count, 2);
	assert_string_equal(cfg.include.items[0], "x.a");
	assert_string_equal(cfg.include.items[1], "x.b");
	config_free(&cfg);
}

static void
test_set_errors(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	expect_set_error("copy.jobs", "x", "option --jobs",
	                 "option --jobs: expected an integer from 1 to 64, got "
	                 "\"x\"");
	expect_set_error("copy.jobs", " 4", "option --jobs",
	                 "option --jobs: expected an integer from 1 to 64, got "
	                 "\" 4\"");
	expect_set_error("copy.index_jobs", "0", "option --index-jobs",
	                 "option --index-jobs: expected an integer from 1 to 64, "
	                 "got \"0\"");
	expect_set_error("progress.interval", "", "option --progress-interval",
	                 "option --progress-interval: expected an integer from 1 "
	                 "to 3600, got \"\"");
	expect_set_error("copy.split_tables_larger_than", "-1",
	                 "option --split-tables-larger-than",
	                 "option --split-tables-larger-than: expected a size in "
	                 "bytes or with a unit kB, MB, GB or TB (such as 512MB), "
	                 "or auto, got \"-1\"");
	expect_set_error("copy.format", "fast", "option --format",
	                 "option --format: invalid value \"fast\"; valid values "
	                 "are auto, text, binary");
	expect_set_error("schema.mode", "new", "option --schema",
	                 "option --schema: invalid value \"new\"; valid values "
	                 "are create, existing");
	expect_set_error("schema.on_existing", "", "option --on-existing",
	                 "option --on-existing: invalid value \"\"; valid values "
	                 "are refuse, truncate, drop");
	expect_set_error("task", "my task", "option --task",
	                 "option --task: expected a name of 1 to 40 characters "
	                 "from a-z, 0-9 and _, got \"my task\"");
	expect_set_error("state.schema", "Pgtide", "option --state-schema",
	                 "option --state-schema: expected an identifier of 1 to "
	                 "63 characters from a-z, 0-9 and _, not starting with a "
	                 "digit, got \"Pgtide\"");
	/* the slot goes into replication commands as it is */
	expect_set_error("cdc.slot", "s LOGICAL x; --", "option --slot",
	                 "option --slot: expected a replication slot name of 1 to "
	                 "63 characters from a-z, 0-9 and _, got \"s LOGICAL x; "
	                 "--\"");
	expect_set_error("source", "", "option --source",
	                 "option --source: expected a non-empty string, got an "
	                 "empty string");
	expect_set_error("validate.sample", "0", "option --sample",
	                 "option --sample: expected a fraction above 0 and at "
	                 "most 1 (such as 0.1 or 10%), got \"0\"");
	expect_set_error("validate.sample", "1.5", "option --sample",
	                 "option --sample: expected a fraction above 0 and at "
	                 "most 1 (such as 0.1 or 10%), got \"1.5\"");
	expect_set_error("validate.sample", "1e-3", "option --sample",
	                 "option --sample: expected a fraction above 0 and at "
	                 "most 1 (such as 0.1 or 10%), got \"1e-3\"");
	expect_set_error("tables.include", "", "option -t",
	                 "option -t: expected a string or a list of strings, got "
	                 "an empty string");

	config_init(&cfg);
	assert_false(config_set(&cfg, "copy.jbos", "4", "option --set", &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, "option --set: unknown key \"copy.jbos\"");
	assert_string_equal(err.hint, "valid keys: copy.jobs, copy.index_jobs, "
	                              "copy.split_tables_larger_than, copy.format");
	/* A name outside every section lists the top level. */
	err_clear(&err);
	assert_false(config_set(&cfg, "cpy.jobs", "4", "option --set", &err));
	assert_string_equal(
	    err.hint, "valid keys: task, source, target, tables.*, "
	              "table_mappings, copy.*, schema.*, state.*, progress.*, "
	              "cdc.*, check.*, validate.*, cutover.*, http.*, "
	              "throttle.*, guard.*, rename.*, remove_columns, filters, "
	              "targets, shard.*");
	/* A section is not a key. */
	err_clear(&err);
	assert_false(config_set(&cfg, "copy", "4", "option --set", &err));
	assert_string_equal(err.message, "option --set: unknown key \"copy\"");
	/* A failed set leaves the old value. */
	assert_int_equal(cfg.copy_jobs, 4);
	config_free(&cfg);
}

/* ---- config_parse_size ---- */

static void
test_parse_size(void **state)
{
	int64_t v = -7;

	(void) state;
	assert_true(config_parse_size("0", &v));
	assert_true(v == 0);
	assert_true(config_parse_size("65536", &v));
	assert_true(v == 65536);
	assert_true(config_parse_size("8kB", &v));
	assert_true(v == 8192);
	assert_true(config_parse_size("8KB", &v));
	assert_true(v == 8192);
	assert_true(config_parse_size("512MB", &v));
	assert_true(v == INT64_C(512) * 1024 * 1024);
	assert_true(config_parse_size("512mb", &v));
	assert_true(v == INT64_C(512) * 1024 * 1024);
	assert_true(config_parse_size("512 MB", &v));
	assert_true(v == INT64_C(512) * 1024 * 1024);
	assert_true(config_parse_size("1GB", &v));
	assert_true(v == INT64_C(1) << 30);
	assert_true(config_parse_size("2tb", &v));
	assert_true(v == INT64_C(2) << 40);
	assert_true(config_parse_size("0TB", &v));
	assert_true(v == 0);
	assert_true(config_parse_size("9223372036854775807", &v));
	assert_true(v == INT64_MAX);
	assert_true(config_parse_size("8388607TB", &v)); /* (2^63-1) >> 40 */
	assert_true(v == INT64_C(8388607) << 40);

	v = 42;
	assert_false(config_parse_size("9223372036854775808", &v));
	assert_false(config_parse_size("99999999999999999999999", &v));
	assert_false(config_parse_size("8388608TB", &v)); /* 2^63 */
	assert_false(config_parse_size("9007199254740992kB", &v));
	assert_false(config_parse_size("-1", &v));
	assert_false(config_parse_size("-1MB", &v));
	assert_false(config_parse_size("+1", &v));
	assert_false(config_parse_size("", &v));
	assert_false(config_parse_size("MB", &v));
	assert_false(config_parse_size(" 1MB", &v));
	assert_false(config_parse_size("1 ", &v));
	assert_false(config_parse_size("1MB ", &v));
	assert_false(config_parse_size("1.5GB", &v));
	assert_false(config_parse_size("1B", &v));
	assert_false(config_parse_size("1PB", &v));
	assert_false(config_parse_size("1M", &v));
	assert_false(config_parse_size("1MBB", &v));
	assert_false(config_parse_size("0x10", &v));
	assert_false(config_parse_size(NULL, &v));
	assert_true(v == 42); /* untouched on failure */
}

/* ---- config_validate ---- */

static void
valid_base(TaskConfig *cfg)
{
	Error err = ERR_INIT;

	config_init(cfg);
	assert_true(config_set(cfg, "source", "postgres://s", "test", &err));
	assert_true(config_set(cfg, "target", "postgres://t", "test", &err));
}

static void
expect_invalid(const TaskConfig *cfg, const char *message, const char *hint)
{
	Error err = ERR_INIT;

	assert_false(config_validate(cfg, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, message);
	assert_string_equal(err.hint, hint);
}

static void
test_validate(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	expect_invalid(&cfg, "no source given",
	               "pass --source URI or set source in the task file");
	assert_true(config_set(&cfg, "source", "postgres://s", "test", &err));
	expect_invalid(&cfg, "no target given",
	               "pass --target URI or set target in the task file");
	config_free(&cfg);

	valid_base(&cfg);
	assert_true(config_validate(&cfg, &err));
	cfg.on_existing = ON_EXISTING_TRUNCATE;
	expect_invalid(&cfg,
	               "schema.on_existing truncate cannot be used with "
	               "schema.mode create",
	               "truncate applies to existing mode; use drop to recreate "
	               "tables, or --schema existing");
	cfg.on_existing = ON_EXISTING_DROP;
	assert_true(config_validate(&cfg, &err));
	cfg.schema_mode = SCHEMA_MODE_EXISTING;
	expect_invalid(&cfg,
	               "schema.on_existing drop cannot be used with schema.mode "
	               "existing",
	               "drop applies to create mode; use truncate to empty "
	               "tables, or --schema create");
	cfg.on_existing = ON_EXISTING_TRUNCATE;
	assert_true(config_validate(&cfg, &err));
	cfg.on_existing = ON_EXISTING_REFUSE;
	assert_true(config_validate(&cfg, &err));
	assert_false(err_is_set(&err));
	config_free(&cfg);
}

static void
test_names(void **state)
{
	(void) state;
	assert_string_equal(config_copy_format_name(COPY_FORMAT_AUTO), "auto");
	assert_string_equal(config_copy_format_name(COPY_FORMAT_TEXT), "text");
	assert_string_equal(config_copy_format_name(COPY_FORMAT_BINARY), "binary");
	assert_string_equal(config_schema_mode_name(SCHEMA_MODE_CREATE), "create");
	assert_string_equal(config_schema_mode_name(SCHEMA_MODE_EXISTING),
	                    "existing");
	assert_string_equal(config_on_existing_name(ON_EXISTING_REFUSE), "refuse");
	assert_string_equal(config_on_existing_name(ON_EXISTING_TRUNCATE),
	                    "truncate");
	assert_string_equal(config_on_existing_name(ON_EXISTING_DROP), "drop");
	assert_string_equal(config_copy_format_name((CopyFormat) 9), "unknown");
}

static void
check_listen(const char *text, bool ok, const char *addr, int port)
{
	char got[64] = "";
	int p = 0;

	assert_int_equal(config_parse_listen(text, got, sizeof(got), &p), ok);
	if (!ok)
		return;
	assert_string_equal(got, addr);
	assert_int_equal(p, port);
}

static void
test_listen(void **state)
{
	(void) state;
	check_listen("9187", true, "127.0.0.1", 9187);
	check_listen("0.0.0.0:80", true, "0.0.0.0", 80);
	check_listen("10.1.255.3:65535", true, "10.1.255.3", 65535);
	check_listen(":9187", false, NULL, 0);
	check_listen("0", false, NULL, 0);
	check_listen("65536", false, NULL, 0);
	check_listen("123456", false, NULL, 0);
	check_listen("localhost:80", false, NULL, 0);
	check_listen("1.2.3:80", false, NULL, 0);
	check_listen("1.2.3.4.5:80", false, NULL, 0);
	check_listen("1.2.3.256:80", false, NULL, 0);
	check_listen("01.2.3.4:80", false, NULL, 0);
	check_listen("1..3.4:80", false, NULL, 0);
	check_listen("1.2.3.4:", false, NULL, 0);
	check_listen("1.2.3.4:-1", false, NULL, 0);
	check_listen("[::1]:80", false, NULL, 0);
	check_listen("", false, NULL, 0);
	check_listen("80 ", false, NULL, 0);
}

/* The WAL guard's thresholds: off, a size, or a share of the free space. */
static void
test_guard_keys(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_false(cfg.guard_wal_warn.set);
	assert_int_equal(cfg.guard_interval_s, 5);
	assert_int_equal(cfg.guard_heartbeat_s, 30);
	assert_true(config_load_string(&cfg, "t.yaml",
	                               "guard:\n  wal_warn: 50%\n"
	                               "  wal_pause: 20GB\n  wal_stop: off\n"
	                               "  xmin_age: 0\n  heartbeat: 5\n",
	                               &err));
	assert_true(cfg.guard_wal_warn.set);
	assert_int_equal(cfg.guard_wal_warn.ppm, 500000);
	assert_int_equal(cfg.guard_wal_warn.bytes, 0);
	assert_int_equal(cfg.guard_wal_pause.bytes, INT64_C(20) << 30);
	assert_true(cfg.guard_wal_stop.set);
	assert_int_equal(cfg.guard_wal_stop.bytes + cfg.guard_wal_stop.ppm, 0);
	assert_int_equal(cfg.guard_xmin_age_s, 0);
	assert_int_equal(cfg.guard_heartbeat_s, 5);
	assert_false(
	    config_set(&cfg, "guard.wal_stop", "lots", "option --set", &err));
	assert_string_equal(err.message,
	                    "option --set: expected off, a size in bytes or with "
	                    "a unit kB, MB, GB or TB (such as 20GB), or a share "
	                    "of check.wal_free_space (such as 50%), got \"lots\"");
	err_clear(&err);
	assert_false(
	    config_set(&cfg, "guard.wal_stop", "150%", "option --set", &err));
	config_free(&cfg);
}

static void
test_http_listen_key(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	assert_null(cfg.http_listen);
	assert_int_equal(cfg.http_ready_lag_s, 10);
	assert_true(config_load_string(
	    &cfg, "t.yaml", "http:\n  listen: \"0.0.0.0:9187\"\n  ready_lag: 30\n",
	    &err));
	assert_string_equal(cfg.http_listen, "0.0.0.0:9187");
	assert_int_equal(cfg.http_ready_lag_s, 30);
	assert_true(config_set(&cfg, "http.listen", "9188", "option --http", &err));
	assert_string_equal(cfg.http_listen, "9188");
	assert_false(
	    config_set(&cfg, "http.listen", "localhost:80", "option --http", &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message,
	                    "option --http: expected [ADDR:]PORT (a port from 1 "
	                    "to 65535, after an IPv4 address and a colon or alone "
	                    "for 127.0.0.1), got \"localhost:80\"");
	assert_string_equal(cfg.http_listen, "9188");
	config_free(&cfg);
}

/* ---- the throttle keys and what SIGHUP compares ---- */

static void
test_throttle_keys_and_changes(void **state)
{
	TaskConfig a, b;
	Error err = ERR_INIT;
	const char *names[4];

	(void) state;
	config_init(&a);
	config_init(&b);
	assert_false(a.throttle.adaptive);
	assert_int_equal(a.throttle.probe_latency_ms, 100);
	assert_int_equal(a.throttle.probe_interval_ms, 1000);
	assert_true(config_load_string(&b, "t.yaml",
	                               "copy:\n  jobs: 2\n"
	                               "throttle:\n  rows_per_second: 500\n"
	                               "  bytes_per_second: 1MB\n"
	                               "  adaptive: on\n"
	                               "  probe_query: SELECT 1\n",
	                               &err));
	assert_int_equal(b.throttle.rows_per_s, 500);
	assert_int_equal(b.throttle.bytes_per_s, 1024 * 1024);
	assert_true(b.throttle.adaptive);
	assert_string_equal(b.throttle.probe_query, "SELECT 1");
	/* the throttle keys alone, then the others alone */
	assert_int_equal(config_changed_keys(&a, &b, true, names, 4), 4);
	assert_string_equal(names[0], "throttle.rows_per_second");
	assert_string_equal(names[3], "throttle.probe_query");
	assert_int_equal(config_changed_keys(&a, &b, false, names, 4), 1);
	assert_string_equal(names[0], "copy.jobs");
	/* more than cap: counted, cap written */
	assert_int_equal(config_changed_keys(&a, &b, true, names, 1), 4);
	assert_int_equal(config_changed_keys(&b, &b, true, names, 4), 0);
	assert_false(
	    config_set(&a, "throttle.adaptive", "yes", "option --set", &err));
	assert_string_equal(err.message,
	                    "option --set: invalid value \"yes\"; valid values "
	                    "are off, on");
	config_free(&a);
	config_free(&b);
}

/* The names on the source and the origin: one per task, one per target of
 * several, so that the targets' slots share the source and their origins a
 * cluster. */
static void
test_source_name(void **state)
{
	TaskConfig cfg;
	char name[CONFIG_SOURCE_NAME_MAX];

	(void) state;
	config_init(&cfg);
	free(cfg.task);
	cfg.task = strdup("split");
	config_source_name(&cfg, name, sizeof(name));
	assert_string_equal(name, "pgtide_split");
	cfg.shard_target = strdup("shard2");
	config_source_name(&cfg, name, sizeof(name));
	assert_string_equal(name, "pgtide_split_shard2");
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_http_listen_key),
	    cmocka_unit_test(test_guard_keys),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_cdc_keys),
	    cmocka_unit_test(test_full_string),
	    cmocka_unit_test(test_full_file),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_list_forms),
	    cmocka_unit_test(test_empty_and_partial),
	    cmocka_unit_test(test_many_items),
	    cmocka_unit_test(test_int_errors),
	    cmocka_unit_test(test_size_errors),
	    cmocka_unit_test(test_choice_errors),
	    cmocka_unit_test(test_string_errors),
	    cmocka_unit_test(test_kind_errors),
	    cmocka_unit_test(test_long_value_is_shortened),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_duplicate_key),
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_bad_utf8),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_file_error_names_path),
	    cmocka_unit_test(test_set_every_key),
	    cmocka_unit_test(test_set_errors),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_throttle_keys_and_changes),
	    cmocka_unit_test(test_map_keys),
	    cmocka_unit_test(test_source_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
