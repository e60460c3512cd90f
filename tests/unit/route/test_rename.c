/*
 * Unit tests of rename: the target names of a table and its columns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/config.h"
#include "route/rename.h"

static const char *const task_file = "rename:\n"
                                     "  schemas:\n"
                                     "    shop: store\n"
                                     "  tables:\n"
                                     "    shop.orders: orders_v2\n"
                                     "    '\"Odd.Schema\".t': archive.t2\n"
                                     "  columns:\n"
                                     "    shop.orders.note: comment\n"
                                     "remove_columns:\n"
                                     "  - shop.orders.secret\n";

static void
load(TaskConfig *cfg, Renames *r, const char *yaml)
{
	Error err = ERR_INIT;

	config_init(cfg);
	rename_init(r);
	if (!config_load_string(cfg, "t.yaml", yaml, &err))
		fail_msg("%s", err.message);
	cfg->path = strdup("t.yaml");
	assert_true(rename_from_config(r, cfg, &err));
}

static void
test_task_file(void **state)
{
	TaskConfig cfg;
	Renames r;
	RenamedTable t;
	Error err = ERR_INIT;
	char *cols[] = {"id", "note", "secret", "total"};
	bool used[8] = {false};

	(void) state;
	load(&cfg, &r, task_file);
	assert_int_equal(r.n, 5);
	assert_true(rename_table(&r, "shop", "orders", cols, 4, used, &t, &err));
	assert_string_equal(t.schema, "store");
	assert_string_equal(t.name, "orders_v2");
	assert_string_equal(t.qname, "\"store\".\"orders_v2\"");
	assert_string_equal(t.cols[0], "id");
	assert_string_equal(t.cols[1], "comment");
	assert_null(t.cols[2]);
	assert_string_equal(t.cols[3], "total");
	assert_true(t.renamed);
	rename_table_free(&t);

	/* another table of the schema: only the schema changes */
	assert_true(rename_table(&r, "shop", "items", cols, 1, used, &t, &err));
	assert_string_equal(t.qname, "\"store\".\"items\"");
	rename_table_free(&t);

	/* a table moved to another schema; quotes kept the dot */
	assert_true(rename_table(&r, "Odd.Schema", "t", cols, 1, used, &t, &err));
	assert_string_equal(t.qname, "\"archive\".\"t2\"");
	rename_table_free(&t);

	/* a table no rule names stays as it is */
	assert_true(rename_table(&r, "public", "x", cols, 2, used, &t, &err));
	assert_false(t.renamed);
	assert_string_equal(t.qname, "\"public\".\"x\"");
	rename_table_free(&t);

	assert_true(rename_check_used(&r, used, &err));
	rename_free(&r);
	config_free(&cfg);
}

static void
test_unused_rule(void **state)
{
	TaskConfig cfg;
	Renames r;
	RenamedTable t;
	Error err = ERR_INIT;
	char *cols[] = {"id", "note"};
	bool used[8] = {false};

	(void) state;
	load(&cfg, &r, task_file);
	assert_true(rename_table(&r, "shop", "orders", cols, 2, used, &t, &err));
	rename_table_free(&t);
	/* "secret" is not a column of shop.orders: the first unused rule */
	assert_false(rename_check_used(&r, used, &err));
	assert_string_equal(err.message,
	                    "t.yaml:6: key rename.tables: table "
	                    "Odd.Schema.t is not among the task's tables");
	rename_free(&r);
	config_free(&cfg);
}

static void
test_collisions(void **state)
{
	TaskConfig cfg;
	Renames r;
	RenamedTable t;
	Error err = ERR_INIT;
	char *cols[] = {"id", "a", "b"};

	(void) state;
	load(&cfg, &r, "rename:\n  columns:\n    t.a: b\n");
	assert_false(rename_table(&r, "public", "t", cols, 3, NULL, &t, &err));
	assert_string_equal(err.message, "columns a and b of table public.t would "
	                                 "both be column b on the target");
	rename_free(&r);
	config_free(&cfg);
}

static void
test_bad_names(void **state)
{
	TaskConfig cfg;
	Renames r;
	Error err = ERR_INIT;

	(void) state;
	config_init(&cfg);
	rename_init(&r);
	assert_true(config_load_string(
	    &cfg, "t.yaml", "rename:\n  columns:\n    a.b.c.d: x\n", &err));
	assert_false(rename_from_config(&r, &cfg, &err));
	assert_string_equal(err.message, "task file:3: key rename.columns: invalid "
	                                 "name \"a.b.c.d\"");
	rename_free(&r);
	config_free(&cfg);
	config_init(&cfg);
	err = (Error) ERR_INIT;
	assert_true(config_load_string(
	    &cfg, "t.yaml", "rename:\n  tables:\n    t: \"a.\"\n", &err));
	assert_false(rename_from_config(&r, &cfg, &err));
	rename_free(&r);
	config_free(&cfg);
}

/* The DMS actions, on wildcards, and two rules on one object. */
static void
test_dms_actions(void **state)
{
	Renames r;
	RenamedTable t;
	Error err = ERR_INIT;
	char *cols[] = {"ID", "old_note", "tmp_x", "keep"};
	RenameRule rules[] = {
	    {.on = RENAME_ON_SCHEMA,
	     .action = RENAME_ADD_SUFFIX,
	     .syntax = PATTERN_LIKE,
	     .schema = "s%",
	     .value = "_new",
	     .where = "rule 1"},
	    {.on = RENAME_ON_TABLE,
	     .action = RENAME_UPPER,
	     .syntax = PATTERN_LIKE,
	     .schema = "%",
	     .table = "t[_]%",
	     .where = "rule 2"},
	    {.on = RENAME_ON_COLUMN,
	     .action = RENAME_LOWER,
	     .syntax = PATTERN_LIKE,
	     .schema = "%",
	     .table = "%",
	     .column = "ID",
	     .where = "rule 3"},
	    {.on = RENAME_ON_COLUMN,
	     .action = RENAME_REPLACE_PREFIX,
	     .syntax = PATTERN_LIKE,
	     .schema = "%",
	     .table = "%",
	     .column = "old%",
	     .old_value = "old_",
	     .value = "new_",
	     .where = "rule 4"},
	    {.on = RENAME_ON_COLUMN,
	     .action = RENAME_REMOVE,
	     .syntax = PATTERN_LIKE,
	     .schema = "%",
	     .table = "%",
	     .column = "tmp%",
	     .where = "rule 5"},
	};

	(void) state;
	rename_init(&r);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		assert_true(rename_add(&r, &rules[i], &err));
	assert_true(rename_table(&r, "sales", "t_orders", cols, 4, NULL, &t, &err));
	assert_string_equal(t.schema, "sales_new");
	assert_string_equal(t.name, "T_ORDERS");
	assert_string_equal(t.cols[0], "id");
	assert_string_equal(t.cols[1], "new_note");
	assert_null(t.cols[2]);
	assert_string_equal(t.cols[3], "keep");
	rename_table_free(&t);

	/* a second rule on the column keep */
	RenameRule twice = {.on = RENAME_ON_COLUMN,
	                    .action = RENAME_ADD_PREFIX,
	                    .syntax = PATTERN_LIKE,
	                    .schema = "%",
	                    .table = "%",
	                    .column = "%",
	                    .value = "c_",
	                    .where = "rule 6"};
	assert_true(rename_add(&r, &twice, &err));
	assert_false(
	    rename_table(&r, "sales", "t_orders", cols, 4, NULL, &t, &err));
	assert_string_equal(err.message,
	                    "rule 6: column ID of table sales.t_orders "
	                    "is named by two rules");

	/* remove-prefix leaving nothing */
	rename_free(&r);
	RenameRule empty = {.on = RENAME_ON_TABLE,
	                    .action = RENAME_REMOVE_PREFIX,
	                    .syntax = PATTERN_LIKE,
	                    .schema = "%",
	                    .table = "%",
	                    .value = "t_",
	                    .where = "rule 7"};
	assert_true(rename_add(&r, &empty, &err));
	assert_true(rename_table(&r, "s", "t_a", cols, 0, NULL, &t, &err));
	assert_string_equal(t.name, "a");
	rename_table_free(&t);
	err = (Error) ERR_INIT;
	assert_false(rename_table(&r, "s", "t_", cols, 0, NULL, &t, &err));
	assert_string_equal(err.message,
	                    "rule 7: leaves table s.t_ without a name");
	rename_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_task_file),   cmocka_unit_test(test_unused_rule),
	    cmocka_unit_test(test_collisions),  cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_dms_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
