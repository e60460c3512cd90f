/*
 * Unit tests of json_read: the strict JSON reader, its tree, and what it
 * refuses (with the line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/json_read.h"

static bool
parse(JsonDoc *doc, const char *text, Error *err)
{
	err_clear(err);
	return json_parse(doc, "f.json", text, strlen(text), err);
}

static void
test_tree(void **state)
{
	JsonDoc doc;
	Error err = ERR_INIT;
	const JsonNode *root, *rules, *r, *id;

	(void) state;
	assert_true(parse(&doc,
	                  "\xef\xbb\xbf{\"rules\": [\n {\"rule-id\": 12, \"x\": "
	                  "[true, false, null, -1.5e3]},\n {\"rule-id\": "
	                  "\"a\\\"b\\\\c\\/\\u00e9\\ud83d\\ude00\\t\"}\n], "
	                  "\"e\": {}}",
	                  &err));
	root = json_at(&doc, 0);
	assert_int_equal(root->type, JSON_OBJECT);
	assert_int_equal(root->count, 2);
	rules = json_get(&doc, root, "rules");
	assert_non_null(rules);
	assert_int_equal(rules->type, JSON_ARRAY);
	assert_int_equal(rules->count, 2);
	r = json_at(&doc, rules->first);
	assert_int_equal(r->line, 2);
	id = json_get(&doc, r, "rule-id");
	assert_int_equal(id->type, JSON_NUMBER);
	assert_string_equal(id->text, "12");
	/* an array's items have no key */
	assert_null(json_at(&doc, json_get(&doc, r, "x")->first)->key);
	assert_int_equal(json_get(&doc, r, "x")->count, 4);
	r = json_at(&doc, r->next);
	assert_int_equal(r->line, 3);
	assert_string_equal(json_get(&doc, r, "rule-id")->text,
	                    "a\"b\\c/\xc3\xa9\xf0\x9f\x98\x80\t");
	assert_null(json_at(&doc, r->next));
	assert_int_equal(json_get(&doc, root, "e")->count, 0);
	assert_null(json_get(&doc, root, "missing"));
	json_doc_free(&doc);
}

static void
test_refusals(void **state)
{
	static const struct
	{
		const char *text;
		const char *message;
	} cases[] = {
	    {"", "f.json:1: not valid JSON: the text ends where a value should be"},
	    {"{\"a\": 1,}",
	     "f.json:1: not valid JSON: expected a member name in double quotes"},
	    {"[1, 2,\n]", "f.json:2: not valid JSON: an unexpected character"},
	    {"// c\n{}", "f.json:1: not valid JSON: an unexpected character"},
	    {"{'a': 1}",
	     "f.json:1: not valid JSON: expected a member name in double quotes"},
	    {"{\"a\" 1}", "f.json:1: not valid JSON: expected : after a member "
	                  "name"},
	    {"[1 2]", "f.json:1: not valid JSON: expected , or ] in an array"},
	    {"{} {}", "f.json:1: not valid JSON: more text after the value"},
	    {"\"a\tb\"", "f.json:1: not valid JSON: a control character inside a "
	                 "string (write it as an escape)"},
	    {"\"\\u0000\"",
	     "f.json:1: not valid JSON: \\u0000: a NUL character in a string"},
	    {"\"\\ud800\"", "f.json:1: not valid JSON: a lone surrogate \\u "
	                    "escape"},
	    {"\"\\x\"", "f.json:1: not valid JSON: an unknown escape in a string"},
	    {"\"abc", "f.json:1: not valid JSON: a string without its closing "
	              "quote"},
	    {"01", "f.json:1: not valid JSON: more text after the value"},
	    {"1.", "f.json:1: not valid JSON: a number without digits after its "
	           "point"},
	    {"tru", "f.json:1: not valid JSON: an unexpected character"},
	};
	JsonDoc doc;
	Error err = ERR_INIT;
	char deep[200];

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		assert_false(parse(&doc, cases[i].text, &err));
		assert_int_equal(err.kind, ERR_CONFIG);
		assert_string_equal(err.message, cases[i].message);
		assert_null(doc.nodes);
	}
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_false(parse(&doc, deep, &err));
	assert_string_equal(err.message, "f.json:1: not valid JSON: nested too "
	                                 "deeply");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tree),
	    cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
