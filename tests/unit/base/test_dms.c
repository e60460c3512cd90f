/*
 * Unit tests of config_dms: an AWS DMS table-mapping file read into
 * tables.include and tables.exclude, and every refusal, each naming the
 * file, the rule and what is wrong or not supported yet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/config.h"
#include "route/rename.h"

static char dir[] = "/tmp/pgtide_test_dms_XXXXXX";

/* Writes text to NAME in the test's folder; returns the path (static). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Reads text as a mapping file; on failure err holds the message. */
static bool
read_text(TaskConfig *cfg, const char *text, Error *err)
{
	config_init(cfg);
	cfg->table_mappings = strdup(write_file("m.json", text));
	return config_read_table_mappings(cfg, err);
}

/* The message for text, after the "DIR/m.json:" prefix. */
static const char *
message_of(const char *text, Error *err)
{
	TaskConfig cfg;
	static char msg[1024];
	size_t skip = strlen(dir) + strlen("/m.json");

	err_clear(err);
	assert_false(read_text(&cfg, text, err));
	assert_int_equal(err->kind, ERR_CONFIG);
	/* nothing half-read is left behind */
	assert_int_equal(cfg.include.count, 0);
	assert_int_equal(cfg.exclude.count, 0);
	config_free(&cfg);
	assert_true(strlen(err->message) > skip);
	snprintf(msg, sizeof(msg), "%s", err->message + skip);
	return msg;
}

#define RULE(id, action, schema, table)                                     \
	"{\"rule-type\": \"selection\", \"rule-id\": \"" id                     \
	"\", \"rule-name\": \"" id "\", \"object-locator\": {\"schema-name\": " \
	"\"" schema "\", \"table-name\": \"" table                              \
	"\"}, \"rule-action\": \"" action "\", \"filters\": []}"

static void
test_selection_rules(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;
	char want[256];

	(void) state;
	assert_true(read_text(
	    &cfg,
	    "{\"rules\": [" RULE("1", "include", "sales", "o%") "," RULE(
	        "2", "exclude", "sales", "o[_]tmp") "," RULE("3", "explicit", "Ops",
	                                                     "Audit%Log") "]}",
	    &err));
	assert_int_equal(cfg.include.count, 2);
	assert_int_equal(cfg.exclude.count, 1);
	snprintf(want, sizeof(want),
	         "%cL%crule \"1\" of m.json (include schema-name \"sales\", "
	         "table-name \"o%%\")%csales%co%%",
	         CONFIG_RULE_MARK, CONFIG_RULE_MARK, CONFIG_RULE_MARK,
	         CONFIG_RULE_MARK);
	assert_string_equal(cfg.include.items[0], want);
	assert_int_equal(cfg.include.items[1][1], 'E');
	assert_int_equal(cfg.exclude.items[0][1], 'L');
	config_free(&cfg);

	/* a number as rule-id, table-type table, no filters key: accepted */
	assert_true(read_text(&cfg,
	                      "{\"rules\": [{\"rule-type\": \"selection\", "
	                      "\"rule-id\": 7, \"rule-action\": \"include\", "
	                      "\"object-locator\": {\"schema-name\": \"%\", "
	                      "\"table-name\": \"%\", \"table-type\": "
	                      "\"table\"}}]}",
	                      &err));
	assert_int_equal(cfg.include.count, 1);
	config_free(&cfg);

	/* source filters: ANDed between filters, ORed within one, every
	   documented operator, names quoted, values as literals */
	assert_true(read_text(
	    &cfg,
	    "{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": \"1\", "
	    "\"rule-action\": \"include\", \"object-locator\": "
	    "{\"schema-name\": \"sales\", \"table-name\": \"Order_1\"},\n"
	    "\"filters\": [{\"filter-type\": \"source\", \"column-name\": "
	    "\"region\", \"filter-conditions\": [{\"filter-operator\": \"eq\", "
	    "\"value\": \"o'k\"}, {\"filter-operator\": \"noteq\", \"value\": "
	    "\"x\"}, {\"filter-operator\": \"null\"}]}, {\"filter-type\": "
	    "\"source\", \"column-name\": \"N\\\"o\", \"filter-conditions\": "
	    "[{\"filter-operator\": \"between\", \"start-value\": 1, "
	    "\"end-value\": \"9\"}, {\"filter-operator\": \"notbetween\", "
	    "\"start-value\": 20, \"end-value\": 30}, {\"filter-operator\": "
	    "\"lte\", \"value\": 2}, {\"filter-operator\": \"ste\", "
	    "\"value\": 3}, {\"filter-operator\": \"gte\", \"value\": 4}, "
	    "{\"filter-operator\": \"notnull\"}]}]}]}",
	    &err));
	assert_int_equal(cfg.filters.keys.count, 1);
	assert_string_equal(cfg.filters.keys.items[0], "\"sales\".\"Order_1\"");
	assert_int_equal(cfg.filters.line[0], 1);
	assert_string_equal(
	    cfg.filters.values.items[0],
	    "(\"region\" = 'o''k' OR \"region\" <> 'x' OR \"region\" IS NULL) "
	    "AND (\"N\"\"o\" BETWEEN '1' AND '9' OR \"N\"\"o\" NOT BETWEEN '20' "
	    "AND '30' OR \"N\"\"o\" <= '2' OR \"N\"\"o\" <= '3' OR \"N\"\"o\" >= "
	    "'4' OR \"N\"\"o\" IS NOT NULL)");
	config_free(&cfg);

	/* no file named: nothing read, nothing changed */
	config_init(&cfg);
	assert_true(config_read_table_mappings(&cfg, &err));
	config_free(&cfg);
}

/* Transformation rules reach route/rename as wildcard rules; a rule
 * without the value its action needs is refused, naming the field. */
static void
test_transformation_rules(void **state)
{
	Error err = ERR_INIT;
	TaskConfig cfg;
	Renames r;
	RenamedTable t;
	char *cols[] = {"tmp_a", "Note"};

	(void) state;
	assert_true(read_text(
	    &cfg,
	    "{\"rules\": [" RULE(
	        "1", "include", "s%",
	        "%") ",\n"
	             "{\"rule-type\": \"transformation\", \"rule-id\": \"2\", "
	             "\"rule-target\": \"table\", \"object-locator\": "
	             "{\"schema-name\": \"s%\", \"table-name\": \"o[_]%\"}, "
	             "\"rule-action\": \"replace-prefix\", \"old-value\": \"o_\", "
	             "\"value\": \"order_\"},\n"
	             "{\"rule-type\": \"transformation\", \"rule-id\": \"3\", "
	             "\"rule-target\": \"column\", \"object-locator\": "
	             "{\"schema-name\": \"%\", \"table-name\": \"%\", "
	             "\"column-name\": \"tmp%\"}, \"rule-action\": "
	             "\"remove-column\"},\n"
	             "{\"rule-type\": \"transformation\", \"rule-id\": \"4\", "
	             "\"rule-target\": \"column\", \"object-locator\": "
	             "{\"schema-name\": \"%\", \"table-name\": \"%\", "
	             "\"column-name\": \"N%\"}, \"rule-action\": "
	             "\"convert-lowercase\"}]}",
	    &err));
	assert_int_equal(cfg.transformations.count, 3);
	rename_init(&r);
	assert_true(rename_from_config(&r, &cfg, &err));
	assert_int_equal(r.n, 3);
	assert_true(rename_table(&r, "sales", "o_1", cols, 2, NULL, &t, &err));
	assert_string_equal(t.name, "order_1");
	assert_null(t.cols[0]);
	assert_string_equal(t.cols[1], "note");
	rename_table_free(&t);
	rename_free(&r);
	config_free(&cfg);

	assert_string_equal(
	    message_of("{\"rules\": [" RULE(
	                   "1", "include", "s",
	                   "t") ",\n"
	                        "{\"rule-type\": \"transformation\", \"rule-id\": "
	                        "\"2\", \"rule-target\": \"table\", "
	                        "\"object-locator\": {\"schema-name\": \"s\", "
	                        "\"table-name\": \"t\"}, \"rule-action\": "
	                        "\"add-prefix\"}]}",
	               &err),
	    ":2: rule \"2\": no \"value\"");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE(
	                   "1", "include", "s",
	                   "t") ",\n"
	                        "{\"rule-type\": \"transformation\", \"rule-id\": "
	                        "\"2\", \"rule-target\": \"table\", "
	                        "\"object-locator\": {\"schema-name\": \"s\", "
	                        "\"table-name\": \"t\"}, \"rule-action\": "
	                        "\"remove-column\"}]}",
	               &err),
	    ":2: rule \"2\" (rule-type \"transformation\", rule-action "
	    "\"remove-column\"): this rule-action on a table is not supported "
	    "yet");
}

static void
test_unsupported_rules(void **state)
{
	Error err = ERR_INIT;

	(void) state;
	assert_string_equal(
	    message_of(
	        "{\"rules\": [" RULE(
	            "1", "include", "s",
	            "t") ",\n"
	                 "{\"rule-type\": \"transformation\", \"rule-id\": \"2\", "
	                 "\"rule-name\": \"2\", \"rule-target\": \"column\", "
	                 "\"object-locator\": {\"schema-name\": \"s\", "
	                 "\"table-name\": \"t\"}, \"rule-action\": "
	                 "\"change-data-type\", \"data-type\": {\"type\": "
	                 "\"int8\"}}]}",
	        &err),
	    ":2: rule \"2\" (rule-type \"transformation\", rule-action "
	    "\"change-data-type\"): this rule-action on a column is not "
	    "supported yet");
	assert_non_null(strstr(err.hint, "selection rules"));
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"table-settings\", "
	               "\"rule-id\": \"9\", \"object-locator\": {\"schema-name\": "
	               "\"s\", \"table-name\": \"t\"}, \"parallel-load\": "
	               "{\"type\": \"partitions-auto\"}}]}",
	               &err),
	    ":1: rule \"9\" (rule-type \"table-settings\", rule-action \"\"): "
	    "table-settings rules are not supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"post-processing\", "
	               "\"rule-id\": \"4\", \"rule-action\": \"add-tag\"}]}",
	               &err),
	    ":1: rule \"4\" (rule-type \"post-processing\", rule-action "
	    "\"add-tag\"): rules of this rule-type are not supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": "
	               "\"5\", \"rule-action\": \"include\", \"object-locator\": "
	               "{\"schema-name\": \"s\", \"table-name\": \"t\"},\n"
	               "\"filters\": [{\"filter-type\": \"source\", "
	               "\"column-name\": \"id\", \"filter-conditions\": "
	               "[{\"filter-operator\": \"eq\", \"value\": 1},\n"
	               "{\"filter-operator\": \"like\", \"value\": 9}]}]}]}",
	               &err),
	    ":3: rule \"5\" (rule-type \"selection\", rule-action \"include\"): "
	    "source filters (filter-operator \"like\") are not supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": "
	               "\"5\", \"rule-action\": \"exclude\", \"object-locator\": "
	               "{\"schema-name\": \"s\", \"table-name\": \"t\"},\n"
	               "\"filters\": [{\"filter-type\": \"source\", "
	               "\"column-name\": \"id\", \"filter-conditions\": "
	               "[{\"filter-operator\": \"null\"}]}]}]}",
	               &err),
	    ":2: rule \"5\" (rule-type \"selection\", rule-action \"exclude\"): "
	    "source filters on a rule other than include are not supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": "
	               "\"5\", \"rule-action\": \"include\", \"object-locator\": "
	               "{\"schema-name\": \"s\",\n\"table-name\": \"t%\"},"
	               "\"filters\": [{\"filter-type\": \"source\", "
	               "\"column-name\": \"id\", \"filter-conditions\": "
	               "[{\"filter-operator\": \"null\"}]}]}]}",
	               &err),
	    ":1: rule \"5\" (rule-type \"selection\", rule-action \"include\"): "
	    "source filters on a table-name or schema-name with a wildcard are not "
	    "supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-type\": \"selection\", \"rule-id\": "
	               "\"6\", \"rule-action\": \"include\", \"object-locator\": "
	               "{\"schema-name\": \"s\", \"table-name\": \"v\", "
	               "\"table-type\": \"view\"}}]}",
	               &err),
	    ":1: rule \"6\" (rule-type \"selection\", rule-action \"include\"): "
	    "table-type \"view\" (pgtide moves tables only) is not supported yet");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE("8", "include-all", "s", "t") "]}",
	               &err),
	    ":1: rule \"8\" (rule-type \"selection\", rule-action "
	    "\"include-all\"): selection rules of this rule-action are not "
	    "supported yet");
}

static void
test_malformed_files(void **state)
{
	Error err = ERR_INIT;

	(void) state;
	assert_non_null(
	    strstr(message_of("{\"rules\": [", &err), ": not valid JSON: "));
	assert_string_equal(message_of("[1, 2]", &err),
	                    ": expected a JSON object with a \"rules\" array");
	assert_string_equal(message_of("{\"rules\": {}}", &err),
	                    ":1: expected a \"rules\" array at the top level");
	assert_string_equal(message_of("{\"rulez\": []}", &err),
	                    ":1: expected a \"rules\" array at the top level");
	assert_string_equal(message_of("{\"rules\": [3]}", &err),
	                    ":1: rule #1 of \"rules\" is not an object");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE("1", "include", "s",
	                                    "t") ",\n"
	                                         "{\"rule-type\": \"selection\"}]}",
	               &err),
	    ":2: rule \"#2\": no \"rule-id\"");
	assert_string_equal(message_of("{\"rules\": [{\"rule-id\": \"3\"}]}", &err),
	                    ":1: rule \"3\": no \"rule-type\"");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-id\": \"\", \"rule-type\": "
	               "\"selection\"}]}",
	               &err),
	    ":1: rule \"#1\": \"rule-id\" must be a non-empty string without "
	    "control characters");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE("1", "include", "s", "t") ",\n" RULE(
	                   "1", "include", "s", "u") "]}",
	               &err),
	    ":2: rule \"1\": a second rule with this rule-id");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-id\": \"1\", \"rule-type\": "
	               "\"selection\", \"rule-action\": \"include\"}]}",
	               &err),
	    ":1: rule \"1\": a selection rule needs an \"object-locator\" object");
	assert_string_equal(
	    message_of("{\"rules\": [{\"rule-id\": \"1\", \"rule-type\": "
	               "\"selection\", \"rule-action\": \"include\", "
	               "\"object-locator\": {\"schema-name\": \"s\"}}]}",
	               &err),
	    ":1: rule \"1\": no \"table-name\"");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE("1", "include", "s", "t[ab") "]}",
	               &err),
	    ":1: rule \"1\": object-locator: a [ without its ] (write [[] for a "
	    "literal [)");
	assert_string_equal(
	    message_of("{\"rules\": [" RULE("1", "exclude", "s", "t") "]}", &err),
	    ": no selection rule with rule-action include or explicit: it "
	    "selects no table");
}

static void
test_patterns_and_mappings_refused_together(void **state)
{
	TaskConfig cfg;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	cfg.table_mappings = strdup(write_file(
	    "m.json", "{\"rules\": [" RULE("1", "include", "s", "t") "]}"));
	assert_true(
	    config_set(&cfg, "tables.include", "public.a", "option -t", &err));
	assert_false(config_read_table_mappings(&cfg, &err));
	assert_string_equal(err.message,
	                    "table_mappings cannot be used with tables.include or "
	                    "tables.exclude (-t, -T)");
	assert_int_equal(cfg.include.count, 1);
	config_free(&cfg);
}

/* ChartMogul's case: 20,000 generated rules. Prints the time; asserts none. */
static void
test_twenty_thousand_rules(void **state)
{
	size_t cap = 20000 * 300;
	char *text = malloc(cap);
	size_t n = 0;
	TaskConfig cfg;
	Error err = ERR_INIT;
	struct timespec t0, t1;

	(void) state;
	assert_non_null(text);
	n += (size_t) snprintf(text + n, cap - n, "{\n  \"rules\": [\n");
	for (int i = 0; i < 20000; i++)
		n += (size_t) snprintf(
		    text + n, cap - n,
		    "    {\"rule-type\": \"selection\", \"rule-id\": \"%d\", "
		    "\"rule-name\": \"account_%d\", \"object-locator\": "
		    "{\"schema-name\": \"public\", \"table-name\": "
		    "\"events[_]%d\"}, \"rule-action\": \"%s\", \"filters\": []}%s\n",
		    i + 1, i, i, i % 10 == 9 ? "exclude" : "include",
		    i < 19999 ? "," : "");
	snprintf(text + n, cap - n, "  ]\n}\n");
	write_file("big.json", text);
	free(text);
	config_init(&cfg);
	cfg.table_mappings = malloc(300);
	snprintf(cfg.table_mappings, 300, "%s/big.json", dir);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(config_read_table_mappings(&cfg, &err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(cfg.include.count, 18000);
	assert_int_equal(cfg.exclude.count, 2000);
	print_message("20,000 rules read in %.0f ms\n",
	              (double) (t1.tv_sec - t0.tv_sec) * 1e3 +
	                  (double) (t1.tv_nsec - t0.tv_nsec) / 1e6);
	config_free(&cfg);
}

static int
setup(void **state)
{
	(void) state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char path[300];

	(void) state;
	snprintf(path, sizeof(path), "%s/m.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/big.json", dir);
	unlink(path);
	return rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_selection_rules),
	    cmocka_unit_test(test_transformation_rules),
	    cmocka_unit_test(test_unsupported_rules),
	    cmocka_unit_test(test_malformed_files),
	    cmocka_unit_test(test_patterns_and_mappings_refused_together),
	    cmocka_unit_test(test_twenty_thousand_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
