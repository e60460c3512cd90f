/*
 * Unit tests of shard: the hash's documented values, each method's
 * routing, tables' routes, key types, and each bad configuration's one
 * message.
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
#include "route/shard.h"

#define TARGETS                       \
	"source: postgresql://src/db\n"   \
	"targets:\n"                      \
	"  shard1: postgresql://one/db\n" \
	"  shard2: postgresql://two/db\n" \
	"  shard3: postgresql://three/db\n"

/* Loads text as split.yaml and builds its spec; NULL with err filled when
 * either fails. */
static ShardSpec *
spec_of(const char *text, Error *err)
{
	TaskConfig cfg;
	ShardSpec *spec = NULL;

	config_init(&cfg);
	cfg.path = strdup("split.yaml"); /* as config_load_file keeps it */
	if (config_load_string(&cfg, "split.yaml", text, err) &&
	    config_validate(&cfg, err))
		(void) shard_spec_new(&cfg, &spec, err);
	config_free(&cfg);
	return spec;
}

static int
route(const ShardSpec *spec, const char *key)
{
	Error err = ERR_INIT;
	int target = -1;

	if (!shard_route(spec, key, key == NULL ? 0 : strlen(key), &target, &err))
		return -1;
	return target;
}

/* The message of text's first error. */
static const char *
error_of(const char *text, Error *err)
{
	ShardSpec *spec;

	err_clear(err);
	spec = spec_of(text, err);
	assert_null(spec);
	assert_int_equal(err->kind, ERR_CONFIG);
	return err->message;
}

static void
test_hash_values(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;

	(void) state;
	/* docs/sharding.md's worked example: md5('42') starts a1d0c6e8 */
	assert_int_equal(shard_hash("42", 2), 0xa1d0c6e8u);
	assert_int_equal(shard_hash("acme", 4), 0x53bce4f1u);
	spec = spec_of(TARGETS "shard:\n  key: account_id\n", &err);
	assert_non_null(spec);
	assert_int_equal(shard_spec_ntargets(spec), 3);
	assert_string_equal(shard_spec_target_name(spec, 1), "shard2");
	assert_string_equal(shard_spec_target_uri(spec, 2),
	                    "postgresql://three/db");
	/* 2714814184 % 3 = 1: account 42 lives on shard2 */
	assert_int_equal(route(spec, "42"), 1);
	assert_int_equal(route(spec, "1"), 1);
	assert_int_equal(route(spec, "2"), 2);
	assert_int_equal(route(spec, "3"), 0);
	assert_int_equal(route(spec, "acme"), 2);
	assert_int_equal(route(spec, NULL), -1);
	shard_spec_free(spec);
}

static void
test_list(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;

	(void) state;
	spec = spec_of(TARGETS "shard:\n  key: region\n  method: list\n"
	                       "  values:\n"
	                       "    shard1: \"eu, uk\"\n"
	                       "    shard2: us\n"
	                       "    shard3: \" apac ,latam\"\n",
	               &err);
	assert_non_null(spec);
	assert_int_equal(route(spec, "eu"), 0);
	assert_int_equal(route(spec, "uk"), 0);
	assert_int_equal(route(spec, "us"), 1);
	assert_int_equal(route(spec, "apac"), 2);
	assert_int_equal(route(spec, "latam"), 2);
	assert_int_equal(route(spec, "u"), -1);
	assert_int_equal(route(spec, "usa"), -1);
	assert_int_equal(route(spec, " eu"), -1);
	shard_spec_free(spec);
}

static void
test_range(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;
	int target;

	(void) state;
	spec = spec_of(TARGETS "shard:\n  key: id\n  method: range\n"
	                       "  bounds:\n"
	                       "    shard2: 100..200\n"
	                       "    shard1: ..100\n"
	                       "    shard3: 300..\n",
	               &err);
	assert_non_null(spec);
	assert_int_equal(route(spec, "-9223372036854775808"), 0);
	assert_int_equal(route(spec, "99"), 0);
	assert_int_equal(route(spec, "100"), 1);
	assert_int_equal(route(spec, "199"), 1);
	assert_int_equal(route(spec, "200"), -1); /* the gap is no target's */
	assert_int_equal(route(spec, "300"), 2);
	assert_int_equal(route(spec, "9223372036854775807"), 2);
	assert_int_equal(route(spec, "1e3"), -1);
	assert_false(shard_route(spec, "abc", 3, &target, &err));
	assert_string_equal(err.message, "a row's key is not a 64-bit integer, "
	                                 "which shard.bounds needs");
	shard_spec_free(spec);
}

static void
test_lookup(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;
	const char *schema, *table, *key, *target;
	char name[32];

	(void) state;
	spec = spec_of(TARGETS "shard:\n  key: account_id\n  method: lookup\n"
	                       "  lookup: public.placement(account_id, shard)\n",
	               &err);
	assert_non_null(spec);
	assert_true(shard_spec_lookup_table(spec, &schema, &table, &key, &target));
	assert_string_equal(schema, "public");
	assert_string_equal(table, "placement");
	assert_string_equal(key, "account_id");
	assert_string_equal(target, "shard");
	assert_int_equal(route(spec, "7"), -1);
	assert_true(shard_lookup_put(spec, "7", 1, "shard3", &err));
	assert_int_equal(route(spec, "7"), 2);
	assert_true(shard_lookup_put(spec, "7", 1, "shard1", &err));
	assert_int_equal(route(spec, "7"), 0);
	assert_false(shard_lookup_put(spec, "8", 1, "shard9", &err));
	assert_string_equal(err.message, "lookup table public.placement names "
	                                 "\"shard9\", which is not a target");
	/* the table grows past its first slots and keeps every key */
	for (int i = 0; i < 5000; i++)
	{
		snprintf(name, sizeof(name), "k%d", i);
		assert_true(shard_lookup_put(spec, name, strlen(name),
		                             i % 2 ? "shard2" : "shard3", &err));
	}
	for (int i = 0; i < 5000; i++)
	{
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(route(spec, name), i % 2 ? 1 : 2);
	}
	shard_spec_free(spec);
}

static void
test_table_routes(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;
	ShardTableRoute r;
	const char *keyed[] = {"id", "account_id", "total"};
	const char *plain[] = {"id", "name"};

	(void) state;
	spec = spec_of(TARGETS "shard:\n  key: account_id\n"
	                       "  tables:\n"
	                       "    public.audit_*: target shard3\n"
	                       "    public.users: key id\n"
	                       "    public.orders: all\n",
	               &err);
	assert_non_null(spec);
	assert_true(
	    shard_table_route(spec, "public", "invoices", keyed, 3, &r, &err));
	assert_int_equal(r.kind, SHARD_TABLE_KEYED);
	assert_string_equal(r.key, "account_id");
	assert_null(r.rule);
	/* without the key: a reference table */
	assert_true(shard_table_route(spec, "public", "plans", plain, 2, &r, &err));
	assert_int_equal(r.kind, SHARD_TABLE_ALL);
	assert_null(r.rule);
	assert_true(
	    shard_table_route(spec, "public", "audit_2024", keyed, 3, &r, &err));
	assert_int_equal(r.kind, SHARD_TABLE_ONE);
	assert_int_equal(r.target, 2);
	assert_string_equal(r.rule, "public.audit_*");
	assert_true(shard_table_route(spec, "public", "users", plain, 2, &r, &err));
	assert_int_equal(r.kind, SHARD_TABLE_KEYED);
	assert_string_equal(r.key, "id");
	assert_true(
	    shard_table_route(spec, "public", "orders", keyed, 3, &r, &err));
	assert_int_equal(r.kind, SHARD_TABLE_ALL);
	assert_false(
	    shard_table_route(spec, "public", "users", keyed + 1, 2, &r, &err));
	assert_string_equal(err.message, "table public.users has no column id, "
	                                 "which rule public.users of shard.tables "
	                                 "routes it by");
	shard_spec_free(spec);
}

static void
test_key_types(void **state)
{
	Error err = ERR_INIT;
	ShardSpec *spec;

	(void) state;
	spec = spec_of(TARGETS "shard:\n  key: k\n", &err);
	assert_non_null(spec);
	assert_true(shard_key_type_check(spec, "bigint", &err));
	assert_true(shard_key_type_check(spec, "character varying(20)", &err));
	assert_true(shard_key_type_check(spec, "uuid", &err));
	assert_false(shard_key_type_check(spec, "numeric(10,2)", &err));
	assert_string_equal(err.message,
	                    "a key of type numeric(10,2) cannot be routed by its "
	                    "text form");
	err_clear(&err);
	assert_false(shard_key_type_check(spec, "textual", &err));
	shard_spec_free(spec);
	err_clear(&err);
	spec =
	    spec_of(TARGETS "shard:\n  key: k\n  method: range\n"
	                    "  bounds: {shard1: ..0, shard2: 0..9, shard3: 9..}\n",
	            &err);
	assert_non_null(spec);
	assert_true(shard_key_type_check(spec, "integer", &err));
	assert_false(shard_key_type_check(spec, "text", &err));
	assert_string_equal(err.message,
	                    "a key of type text cannot be routed by range");
	shard_spec_free(spec);
}

static void
test_bad_configurations(void **state)
{
	Error err = ERR_INIT;

	(void) state;
	assert_string_equal(
	    error_of(TARGETS "target: postgresql://x/db\nshard:\n  key: k\n", &err),
	    "target and targets cannot both be given");
	assert_string_equal(
	    error_of("source: s\ntarget: t\nshard:\n  key: k\n", &err),
	    "the shard section needs targets");
	assert_string_equal(error_of(TARGETS, &err),
	                    "split.yaml:3: key targets: several targets need "
	                    "shard.key");
	assert_string_equal(error_of("source: s\ntargets:\n  Shard1: a\n"
	                             "shard:\n  key: k\n",
	                             &err),
	                    "split.yaml:3: key targets: invalid target name "
	                    "\"Shard1\"");
	assert_string_equal(error_of("source: s\ntargets:\n  one: a\n  two: a\n"
	                             "shard:\n  key: k\n",
	                             &err),
	                    "split.yaml:4: key targets: targets one and two have "
	                    "the same connection string");
	assert_string_equal(error_of("source: s\ntargets:\n  one: a\n  two: s\n"
	                             "shard:\n  key: k\n",
	                             &err),
	                    "split.yaml:4: key targets: target two has the "
	                    "source's connection string");
	{
		/* 65 targets: the load sends a chunk to at most 64 */
		char many[8192];
		size_t len =
		    (size_t) snprintf(many, sizeof(many), "source: s\ntargets:\n");

		for (int i = 1; i <= SHARD_TARGETS_MAX + 1; i++)
			len += (size_t) snprintf(many + len, sizeof(many) - len,
			                         "  t%d: postgresql://h%d/db\n", i, i);
		snprintf(many + len, sizeof(many) - len, "shard:\n  key: k\n");
		assert_string_equal(error_of(many, &err),
		                    "split.yaml:67: key targets: 65 targets: a task "
		                    "has at most 64");
	}
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n", &err),
	    "split.yaml: key shard.method: method list needs "
	    "shard.values");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: range\n", &err),
	    "split.yaml: key shard.method: method range needs "
	    "shard.bounds");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: lookup\n", &err),
	    "split.yaml: key shard.method: method lookup needs shard.lookup");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  values: {shard1: a}\n", &err),
	    "split.yaml:8: key shard.values: only method list takes values");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n"
	                     "  values: {shard1: a, shard2: b, shard3: \"c, a\"}\n",
	             &err),
	    "split.yaml:9: key shard.values: value \"a\" is given to targets "
	    "shard1 and shard3");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n"
	                     "  values: {shard1: \"a, a\", shard2: b, shard3: c}\n",
	             &err),
	    "split.yaml:9: key shard.values: value \"a\" is given twice for "
	    "target shard1");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n"
	                     "  values: {shard1: a, shard2: b}\n",
	             &err),
	    "split.yaml:9: key shard.values: target shard3 has no entry");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n"
	                     "  values: {shard1: a, shard2: b, shard4: c}\n",
	             &err),
	    "split.yaml:9: key shard.values: \"shard4\" is not a target");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: list\n"
	                     "  values: {shard1: \"a,,b\", shard2: b, shard3: c}\n",
	             &err),
	    "split.yaml:9: key shard.values: target shard1 has an empty value");
	assert_string_equal(
	    error_of(TARGETS
	             "shard:\n  key: k\n  method: range\n"
	             "  bounds: {shard1: ..10, shard2: 5..20, shard3: 20..}\n",
	             &err),
	    "split.yaml:9: key shard.bounds: the bounds of targets shard1 and "
	    "shard2 overlap");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: range\n"
	                     "  bounds: {shard1: ..10, shard2: .., shard3: 20..}\n",
	             &err),
	    "split.yaml:9: key shard.bounds: the bounds of targets shard1 and "
	    "shard2 overlap");
	assert_string_equal(
	    error_of(TARGETS
	             "shard:\n  key: k\n  method: range\n"
	             "  bounds: {shard1: ..10, shard2: 10..x, shard3: 20..}\n",
	             &err),
	    "split.yaml:9: key shard.bounds: target shard2: expected LOW..HIGH, "
	    "got \"10..x\"");
	assert_string_equal(
	    error_of(TARGETS
	             "shard:\n  key: k\n  method: range\n"
	             "  bounds: {shard1: ..10, shard2: 20..10, shard3: 30..}\n",
	             &err),
	    "split.yaml:9: key shard.bounds: target shard2: the low bound is not "
	    "below the high bound");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  method: lookup\n"
	                     "  lookup: placement\n",
	             &err),
	    "split.yaml: key shard.lookup: expected schema.table(key_column, "
	    "target_column), got \"placement\"");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  tables:\n    public.x: maybe\n",
	             &err),
	    "split.yaml:9: key shard.tables: table public.x: expected \"key "
	    "COLUMN\", \"target NAME\" or \"all\", got \"maybe\"");
	assert_string_equal(
	    error_of(TARGETS "shard:\n  key: k\n  tables:\n    x: target shard9\n",
	             &err),
	    "split.yaml:9: key shard.tables: table x: \"shard9\" is not a "
	    "target");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_values),
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_range),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_table_routes),
	    cmocka_unit_test(test_key_types),
	    cmocka_unit_test(test_bad_configurations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
