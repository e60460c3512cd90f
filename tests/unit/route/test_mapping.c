/*
 * Unit tests of mapping: globs and table patterns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/config.h"
#include "route/mapping.h"

static void
test_glob(void **state)
{
	(void) state;
	assert_true(mapping_glob("*", ""));
	assert_true(mapping_glob("*", "abc"));
	assert_true(mapping_glob("a*c", "abbbc"));
	assert_true(mapping_glob("a?c", "abc"));
	assert_false(mapping_glob("a?c", "ac"));
	assert_true(mapping_glob("audit_*", "audit_2024"));
	assert_false(mapping_glob("audit_*", "xaudit_2024"));
	assert_true(mapping_glob("*_log", "a_b_log"));
	assert_false(mapping_glob("*_log", "a_b_logs"));
	assert_true(mapping_glob("[x]", "[x]"));
}

static void
test_pattern_default_schema(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_true(mapping_parse_pattern("orders", &p, &err));
	assert_string_equal(p.schema, "public");
	assert_string_equal(p.table, "orders");
	assert_true(mapping_pattern_match(&p, "public", "orders"));
	assert_false(mapping_pattern_match(&p, "other", "orders"));
	mapping_pattern_free(&p);
}

static void
test_pattern_quoted(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_true(
	    mapping_parse_pattern("\"My Schema\".\"Order.Items\"", &p, &err));
	assert_string_equal(p.schema, "My Schema");
	assert_string_equal(p.table, "Order.Items");
	mapping_pattern_free(&p);
	assert_true(mapping_parse_pattern("s*.\"a\"\"b\"", &p, &err));
	assert_string_equal(p.table, "a\"b");
	assert_true(mapping_pattern_match(&p, "sales", "a\"b"));
	mapping_pattern_free(&p);
}

static void
test_pattern_errors(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;

	(void) state;
	assert_false(mapping_parse_pattern("a.", &p, &err));
	assert_int_equal(err.kind, ERR_CONFIG);
	assert_string_equal(err.message, "invalid table pattern \"a.\"");
	err_clear(&err);
	assert_false(mapping_parse_pattern("\"open", &p, &err));
	err_clear(&err);
	assert_false(mapping_parse_pattern("a.b.c", &p, &err));
	err_clear(&err);
	assert_false(mapping_parse_pattern("", &p, &err));
}

static void
test_like(void **state)
{
	(void) state;
	assert_true(mapping_like("%", ""));
	assert_true(mapping_like("%", "abc"));
	assert_true(mapping_like("a%c", "abbbc"));
	assert_true(mapping_like("a_c", "abc"));
	assert_false(mapping_like("a_c", "ac"));
	/* `_` is one character: it is not a literal underscore */
	assert_true(mapping_like("audit_%", "auditX2024"));
	assert_true(mapping_like("audit[_]%", "audit_2024"));
	assert_false(mapping_like("audit[_]%", "auditX2024"));
	assert_true(mapping_like("t[ab]", "ta"));
	assert_true(mapping_like("t[ab]", "tb"));
	assert_false(mapping_like("t[ab]", "tc"));
	assert_true(mapping_like("t[a-d]x", "tcx"));
	assert_false(mapping_like("t[a-d]x", "tex"));
	assert_true(mapping_like("%[0-9]", "log7"));
	assert_false(mapping_like("%[0-9]", "log"));
	/* `*`, `?`, quotes and dots are plain characters in this syntax */
	assert_true(mapping_like("a*b?", "a*b?"));
	assert_false(mapping_like("a*", "abc"));
	assert_true(mapping_like("My.\"T\"", "My.\"T\""));
	/* case-sensitive, as DMS takes names from PostgreSQL */
	assert_false(mapping_like("Orders", "orders"));
	/* an unclosed or empty set matches nothing */
	assert_false(mapping_like("t[ab", "ta"));
	assert_false(mapping_like("t[]", "t"));
	assert_true(mapping_like("%a%b%", "xxaxxbxx"));
	assert_false(mapping_like("%a%b%", "xxbxxaxx"));
}

/* A rule in the form config_read_table_mappings writes. */
static char *
rule(char kind, const char *schema, const char *table)
{
	char *out = NULL;

	assert_true(asprintf(&out, "%c%c%crule \"1\" of m.json%c%s%c%s",
	                     CONFIG_RULE_MARK, kind, CONFIG_RULE_MARK,
	                     CONFIG_RULE_MARK, schema, CONFIG_RULE_MARK,
	                     table) > 0);
	return out;
}

static void
test_rule_patterns(void **state)
{
	TablePattern p;
	Error err = ERR_INIT;
	char *text;

	(void) state;
	text = rule('L', "sales", "order[_]%");
	assert_true(mapping_parse_pattern(text, &p, &err));
	assert_int_equal(p.syntax, PATTERN_LIKE);
	assert_string_equal(p.text, "rule \"1\" of m.json");
	assert_string_equal(p.schema, "sales");
	assert_string_equal(p.table, "order[_]%");
	assert_true(mapping_pattern_match(&p, "sales", "order_items"));
	assert_false(mapping_pattern_match(&p, "sales", "orders"));
	assert_false(mapping_pattern_match(&p, "public", "order_items"));
	assert_true(mapping_name_match(&p, "order_x"));
	mapping_pattern_free(&p);
	free(text);

	/* explicit: the names as they are, wildcards included */
	text = rule('E', "Ops", "a%b.c");
	assert_true(mapping_parse_pattern(text, &p, &err));
	assert_int_equal(p.syntax, PATTERN_EXACT);
	assert_true(mapping_pattern_match(&p, "Ops", "a%b.c"));
	assert_false(mapping_pattern_match(&p, "Ops", "axb.c"));
	assert_false(mapping_pattern_match(&p, "ops", "a%b.c"));
	mapping_pattern_free(&p);
	free(text);
}

static void
test_pattern_set(void **state)
{
	const char *texts[] = {"public.a", "public.b*", "public.a", "s.c"};
	char *like = rule('L', "public", "x[_]1");
	char *wild = rule('L', "public", "y_");
	TablePattern pats[6];
	PatternSet set;
	bool used[6] = {false};
	Error err = ERR_INIT;

	(void) state;
	for (int i = 0; i < 4; i++)
		assert_true(mapping_parse_pattern(texts[i], &pats[i], &err));
	assert_true(mapping_parse_pattern(like, &pats[4], &err));
	assert_true(mapping_parse_pattern(wild, &pats[5], &err));
	assert_true(mapping_set_build(&set, pats, 6, &err));
	/* exact names (both spellings of public.a) are looked up; x[_]1 is the
	   exact name x_1 */
	assert_int_equal(set.nwild, 2);
	assert_true(mapping_set_match(&set, "public", "a", used));
	assert_true(used[0] && used[2] && !used[1]);
	assert_true(mapping_set_match(&set, "public", "bee", used));
	assert_true(used[1]);
	assert_true(mapping_set_match(&set, "public", "x_1", NULL));
	assert_false(mapping_set_match(&set, "public", "xy1", NULL));
	assert_true(mapping_set_match(&set, "public", "yz", used));
	assert_true(used[5] && !used[3] && !used[4]);
	assert_false(mapping_set_match(&set, "public", "c", NULL));
	assert_true(mapping_set_match(&set, "s", "c", NULL));
	mapping_set_free(&set);
	for (int i = 0; i < 6; i++)
		mapping_pattern_free(&pats[i]);
	free(like);
	free(wild);

	/* an empty set matches nothing */
	assert_true(mapping_set_build(&set, pats, 0, &err));
	assert_false(mapping_set_match(&set, "public", "a", NULL));
	mapping_set_free(&set);
}

/* 20,000 rules against 5,000 tables: prints the time; asserts none. */
static void
test_pattern_set_scale(void **state)
{
	enum
	{
		NPATS = 20000,
		NTABLES = 5000
	};
	TablePattern *pats = calloc(NPATS, sizeof(TablePattern));
	PatternSet set;
	Error err = ERR_INIT;
	struct timespec t0, t1;
	int hits = 0;

	(void) state;
	assert_non_null(pats);
	for (int i = 0; i < NPATS; i++)
	{
		char name[64];
		char *text;

		/* one in a hundred has a wildcard */
		snprintf(name, sizeof(name), i % 100 == 0 ? "t[_]%d[_]%%" : "t[_]%d",
		         i);
		text = rule('L', "public", name);
		assert_true(mapping_parse_pattern(text, &pats[i], &err));
		free(text);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(mapping_set_build(&set, pats, NPATS, &err));
	for (int t = 0; t < NTABLES; t++)
	{
		char name[64];

		snprintf(name, sizeof(name), "t_%d", t * 3);
		hits += mapping_set_match(&set, "public", name, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* every table but the 50 whose number ends in 00: their rules are
	   t[_]N[_]%, which want a second underscore */
	assert_int_equal(hits, NTABLES - 50);
	print_message("20,000 patterns x 5,000 tables in %.0f ms\n",
	              (double) (t1.tv_sec - t0.tv_sec) * 1e3 +
	                  (double) (t1.tv_nsec - t0.tv_nsec) / 1e6);
	mapping_set_free(&set);
	for (int i = 0; i < NPATS; i++)
		mapping_pattern_free(&pats[i]);
	free(pats);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_pattern_default_schema),
	    cmocka_unit_test(test_pattern_quoted),
	    cmocka_unit_test(test_pattern_errors),
	    cmocka_unit_test(test_like),
	    cmocka_unit_test(test_rule_patterns),
	    cmocka_unit_test(test_pattern_set),
	    cmocka_unit_test(test_pattern_set_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
