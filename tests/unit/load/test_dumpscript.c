/*
 * Unit tests of dumpscript: pg_dump plain SQL split into TOC entries.
 *
 * The fixtures are real output of pg_dump 15.18 (--schema-only --no-owner
 * --no-privileges, --section=pre-data and --section=post-data) from a
 * throwaway server holding:
 *   - shop.events partitioned by range, PK (id, created_at), an index on the
 *     parent, partitions events_2024 and events_2025;
 *   - public.customers (serial PK) with a unique expression index;
 *   - public.orders with PK, UNIQUE (code), an index, a partial index, an index
 *     in tablespace "fast", an FK to customers, a NOT VALID check, a rule, and
 *     a trigger calling public.orders_touch(), a plpgsql function whose body
 *     holds "-- Name: fake; Type: INDEX; ..." and backslash lines inside a
 *     comment and a string literal;
 *   - public.bookings with PK and an EXCLUDE constraint;
 *   - "My Schema"."Order Items" with PK on "Item ""Id""" and an index;
 *   - COMMENT ON INDEX orders_open_idx IS 'open orders; -- Name: not a header'.
 * atomic-full.sql is pg_dump 15.18 --schema-only (both sections, owners kept)
 * of a database holding public.accounts (PK, an index on public.grade()),
 * public.audit, grade(), a LANGUAGE sql function with a BEGIN ATOMIC body
 * holding CASE ... END, credit(), a procedure with a two-statement BEGIN
 * ATOMIC body, and accounts_log, a rule with two actions in DO ALSO (...).
 * pg_dump 15.18 writes \restrict KEY near the top and \unrestrict KEY at the
 * end. Run from the repository root (make unit does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* cmocka needs the headers above first */

#include "load/dumpscript.h"

#define FIXTURE_DIR "tests/unit/load/fixtures/dumpscript/"

typedef struct Want
{
	const char *type;
	const char *name;
	const char *schema;
	const char *table;
	const char *index_name;
	DumpConstraint constraint;
	const char *tablespace;
} Want;

static char *
read_fixture(const char *name, size_t *len)
{
	char path[256];
	FILE *f;
	char *buf;
	long size;

	snprintf(path, sizeof(path), "%s%s", FIXTURE_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t) size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t) size, f), (size_t) size);
	fclose(f);
	*len = (size_t) size;
	return buf;
}

/* Parses s from an exactly sized heap copy, so ASan sees any read past it. */
static bool
parse_exact(const char *s, size_t len, DumpScript **out, Error *err)
{
	char *copy = malloc(len ? len : 1);
	bool ok;

	assert_non_null(copy);
	memcpy(copy, s, len);
	ok = dumpscript_parse(copy, len, "t", out, err);
	free(copy);
	return ok;
}

static DumpScript *
parse_ok(const char *s)
{
	DumpScript *ds = NULL;
	Error err = ERR_INIT;

	if (!parse_exact(s, strlen(s), &ds, &err))
		fail_msg("unexpected error: %s", err.message);
	assert_non_null(ds);
	return ds;
}

static void
assert_parse_error(const char *s, const char *message)
{
	DumpScript *ds = NULL;
	Error err = ERR_INIT;

	assert_false(parse_exact(s, strlen(s), &ds, &err));
	assert_null(ds);
	assert_int_equal(err.kind, ERR_SOURCE);
	assert_string_equal(err.message, message);
}

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else
	{
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static int
count_newlines(const char *s, size_t len)
{
	int n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* The input's line `line` (1-based) starts with the first line of sql. */
static void
assert_at_line(const char *text, size_t len, int line, const char *sql)
{
	size_t pos = 0;
	size_t n = strcspn(sql, "\n");

	for (; line > 1; line--)
	{
		const char *nl = memchr(text + pos, '\n', len - pos);

		assert_non_null(nl);
		pos = (size_t) (nl - text) + 1;
	}
	assert_true(len - pos >= n);
	assert_memory_equal(text + pos, sql, n);
}

/*
 * Checks ds's entries against want and what holds for every entry of a real
 * dump: sql is non-empty, ends with ';' and sits at its line in text.
 */
static void
assert_entries(const DumpScript *ds, const char *text, size_t len,
               const Want *want, int nwant)
{
	int i;

	assert_int_equal(dumpscript_count(ds), nwant);
	for (i = 0; i < nwant; i++)
	{
		const DumpEntry *e = dumpscript_entry(ds, i);
		size_t n;

		assert_non_null(e);
		assert_string_equal(e->type, want[i].type);
		assert_string_equal(e->name, want[i].name);
		assert_str_or_null(e->schema, want[i].schema);
		assert_str_or_null(e->table, want[i].table);
		assert_str_or_null(e->index_name, want[i].index_name);
		assert_int_equal(e->constraint, want[i].constraint);
		assert_str_or_null(e->tablespace, want[i].tablespace);
		assert_null(e->owner);
		n = strlen(e->sql);
		assert_true(n > 0);
		assert_int_equal(e->sql[n - 1], ';');
		assert_at_line(text, len, e->line, e->sql);
	}
	assert_null(dumpscript_entry(ds, -1));
	assert_null(dumpscript_entry(ds, nwant));
}

/* Both meta-commands are reported and gone from the script, whose lines still
 * match the input's. */
static void
assert_restrict_stripped(const DumpScript *ds, const char *text, size_t len,
                         int unrestrict_line)
{
	const DumpMeta *m0 = dumpscript_meta(ds, 0);
	const DumpMeta *m1 = dumpscript_meta(ds, 1);
	const char *script = dumpscript_sql(ds);

	assert_int_equal(dumpscript_meta_count(ds), 2);
	assert_null(dumpscript_meta(ds, 2));
	assert_int_equal(m0->line, 5);
	assert_int_equal(strncmp(m0->command, "\\restrict ", 10), 0);
	assert_int_equal(m1->line, unrestrict_line);
	assert_int_equal(strncmp(m1->command, "\\unrestrict ", 12), 0);
	assert_string_equal(m0->command + 10, m1->command + 12);
	assert_null(strstr(script, m0->command));
	assert_null(strstr(script, m0->command + 1));
	assert_null(strstr(script, m1->command));
	assert_int_equal(count_newlines(script, strlen(script)),
	                 count_newlines(text, len));
	assert_int_equal(strlen(script),
	                 len - strlen(m0->command) - strlen(m1->command));
	assert_null(strstr(dumpscript_preamble(ds), "\\"));
}

static const char fixture_preamble[] =
    "SET statement_timeout = 0;\n"
    "SET lock_timeout = 0;\n"
    "SET idle_in_transaction_session_timeout = 0;\n"
    "SET client_encoding = 'UTF8';\n"
    "SET standard_conforming_strings = on;\n"
    "SELECT pg_catalog.set_config('search_path', '', false);\n"
    "SET check_function_bodies = false;\n"
    "SET xmloption = content;\n"
    "SET client_min_messages = warning;\n"
    "SET row_security = off;";

static void
test_pre_data_fixture(void **state)
{
	static const Want want[] = {
	    {"SCHEMA", "My Schema", NULL, NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"SCHEMA", "shop", NULL, NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"FUNCTION", "orders_touch()", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "Order Items", "My Schema", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	    {"TABLE", "bookings", "public", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "customers", "public", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"SEQUENCE", "customers_id_seq", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"SEQUENCE OWNED BY", "customers_id_seq", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "orders", "public", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"SEQUENCE", "orders_id_seq", "public", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	    {"SEQUENCE OWNED BY", "orders_id_seq", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "events", "shop", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "events_2024", "shop", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "events_2025", "shop", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE ATTACH", "events_2024", "shop", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	    {"TABLE ATTACH", "events_2025", "shop", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	    {"DEFAULT", "customers id", "public", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	    {"DEFAULT", "orders id", "public", NULL, NULL, DUMPSCRIPT_CON_NONE,
	     NULL},
	};
	size_t len;
	char *text = read_fixture("pre-data.sql", &len);
	DumpScript *ds = NULL;
	Error err = ERR_INIT;
	const char *body_start;
	const char *body_end;
	const DumpEntry *fn;
	int i;

	(void) state;
	assert_true(dumpscript_parse(text, len, "pre-data", &ds, &err));
	assert_string_equal(dumpscript_preamble(ds), fixture_preamble);
	assert_entries(ds, text, len, want, (int) (sizeof(want) / sizeof(*want)));
	assert_restrict_stripped(ds, text, len, 207);

	/* The function entry is the function, byte for byte. */
	fn = dumpscript_entry(ds, 2);
	body_start = strstr(text, "CREATE FUNCTION public.orders_touch()");
	assert_non_null(body_start);
	body_end = strstr(body_start, "END;\n$$;");
	assert_non_null(body_end);
	body_end += strlen("END;\n$$;");
	assert_int_equal(strlen(fn->sql), (size_t) (body_end - body_start));
	assert_memory_equal(fn->sql, body_start, strlen(fn->sql));
	assert_non_null(strstr(fn->sql, "\n    -- Name: fake; Type: INDEX; "));
	assert_non_null(strstr(fn->sql, "\n\\connect not_a_meta_command\n"));
	assert_non_null(
	    strstr(fn->sql, "\n\\unrestrict not_a_meta_command_either'"));
	assert_non_null(strstr(dumpscript_sql(ds),
	                       "\n\\unrestrict not_a_meta_command_either'"));

	/* pg_dump's SETs before the first TABLE header prepare that entry. */
	for (i = 0; i < dumpscript_count(ds); i++)
		assert_string_equal(dumpscript_entry(ds, i)->setup,
		                    i == 3 ? "SET default_tablespace = '';\n\n"
		                             "SET default_table_access_method = heap;"
		                           : "");
	assert_string_equal(dumpscript_entry(ds, 3)->sql,
	                    "CREATE TABLE \"My Schema\".\"Order Items\" (\n"
	                    "    \"Item \"\"Id\"\"\" integer NOT NULL,\n"
	                    "    qty integer\n"
	                    ");");
	assert_string_equal(
	    dumpscript_entry(ds, 17)->sql,
	    "ALTER TABLE ONLY public.orders ALTER COLUMN id SET DEFAULT "
	    "nextval('public.orders_id_seq'::regclass);");
	dumpscript_free(ds);
	free(text);
}

static void
test_post_data_fixture(void **state)
{
	static const Want want[] = {
	    {"CONSTRAINT", "Order Items Order Items_pkey", "My Schema",
	     "\"My Schema\".\"Order Items\"", "Order Items_pkey",
	     DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"CONSTRAINT", "bookings bookings_during_excl", "public",
	     "public.bookings", "bookings_during_excl", DUMPSCRIPT_CON_EXCLUDE,
	     NULL},
	    {"CONSTRAINT", "bookings bookings_pkey", "public", "public.bookings",
	     "bookings_pkey", DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"CONSTRAINT", "customers customers_pkey", "public", "public.customers",
	     "customers_pkey", DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"CONSTRAINT", "orders orders_code_key", "public", "public.orders",
	     "orders_code_key", DUMPSCRIPT_CON_UNIQUE, NULL},
	    {"CONSTRAINT", "orders orders_pkey", "public", "public.orders",
	     "orders_pkey", DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"CHECK CONSTRAINT", "orders orders_total_check", "public",
	     "public.orders", NULL, DUMPSCRIPT_CON_OTHER, NULL},
	    {"CONSTRAINT", "events events_pkey", "shop", "shop.events",
	     "events_pkey", DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"CONSTRAINT", "events_2024 events_2024_pkey", "shop",
	     "shop.events_2024", "events_2024_pkey", DUMPSCRIPT_CON_PRIMARY_KEY,
	     NULL},
	    {"CONSTRAINT", "events_2025 events_2025_pkey", "shop",
	     "shop.events_2025", "events_2025_pkey", DUMPSCRIPT_CON_PRIMARY_KEY,
	     NULL},
	    {"INDEX", "Order Items qty idx", "My Schema",
	     "\"My Schema\".\"Order Items\"", "Order Items qty idx",
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "customers_email_lower_idx", "public", "public.customers",
	     "customers_email_lower_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "orders_customer_idx", "public", "public.orders",
	     "orders_customer_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "orders_open_idx", "public", "public.orders",
	     "orders_open_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"COMMENT", "INDEX orders_open_idx", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "orders_total_idx", "public", "public.orders",
	     "orders_total_idx", DUMPSCRIPT_CON_NONE, "fast"},
	    {"INDEX", "events_payload_idx", "shop", "shop.events",
	     "events_payload_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "events_2024_payload_idx", "shop", "shop.events_2024",
	     "events_2024_payload_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX", "events_2025_payload_idx", "shop", "shop.events_2025",
	     "events_2025_payload_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX ATTACH", "events_2024_payload_idx", "shop", NULL,
	     "events_2024_payload_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX ATTACH", "events_2024_pkey", "shop", NULL, "events_2024_pkey",
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX ATTACH", "events_2025_payload_idx", "shop", NULL,
	     "events_2025_payload_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"INDEX ATTACH", "events_2025_pkey", "shop", NULL, "events_2025_pkey",
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"RULE", "orders orders_no_delete", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"TRIGGER", "orders orders_touch_trg", "public", "public.orders", NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"FK CONSTRAINT", "orders orders_customer_fk", "public",
	     "public.orders", NULL, DUMPSCRIPT_CON_OTHER, NULL},
	};
	size_t len;
	char *text = read_fixture("post-data.sql", &len);
	DumpScript *ds = NULL;
	Error err = ERR_INIT;
	int i;

	(void) state;
	assert_true(dumpscript_parse(text, len, "post-data", &ds, &err));
	assert_string_equal(dumpscript_preamble(ds),
	                    "SET statement_timeout = 0;\n"
	                    "SET lock_timeout = 0;\n"
	                    "SET idle_in_transaction_session_timeout = 0;\n"
	                    "SET client_encoding = 'UTF8';\n"
	                    "SET standard_conforming_strings = on;\n"
	                    "SELECT pg_catalog.set_config('search_path', '', "
	                    "false);\n"
	                    "SET check_function_bodies = false;\n"
	                    "SET xmloption = content;\n"
	                    "SET client_min_messages = warning;\n"
	                    "SET row_security = off;\n"
	                    "\n"
	                    "SET default_tablespace = '';");
	assert_entries(ds, text, len, want, (int) (sizeof(want) / sizeof(*want)));
	assert_restrict_stripped(ds, text, len, 226);

	/* pg_dump switches default_tablespace before the header of the entry
	 * that needs it and back before the next one. */
	for (i = 0; i < dumpscript_count(ds); i++)
	{
		const char *setup = dumpscript_entry(ds, i)->setup;

		if (i == 15)
			assert_string_equal(setup, "SET default_tablespace = fast;");
		else if (i == 16)
			assert_string_equal(setup, "SET default_tablespace = '';");
		else
			assert_string_equal(setup, "");
	}
	assert_string_equal(dumpscript_entry(ds, 15)->sql,
	                    "CREATE INDEX orders_total_idx ON public.orders USING "
	                    "btree (total);");
	assert_string_equal(dumpscript_entry(ds, 14)->sql,
	                    "COMMENT ON INDEX public.orders_open_idx IS 'open "
	                    "orders; -- Name: not a header';");
	assert_string_equal(dumpscript_entry(ds, 0)->sql,
	                    "ALTER TABLE ONLY \"My Schema\".\"Order Items\"\n"
	                    "    ADD CONSTRAINT \"Order Items_pkey\" PRIMARY KEY "
	                    "(\"Item \"\"Id\"\"\");");
	assert_int_equal(dumpscript_entry(ds, 0)->line, 27);
	/* The last entry ends at its ';', before the closing comment block. */
	assert_string_equal(dumpscript_entry(ds, 25)->sql,
	                    "ALTER TABLE ONLY public.orders\n"
	                    "    ADD CONSTRAINT orders_customer_fk FOREIGN KEY "
	                    "(customer_id) REFERENCES public.customers(id);");
	dumpscript_free(ds);
	free(text);
}

/*
 * psql does not end a statement at a ';' inside parentheses or inside a
 * BEGIN ATOMIC body, and neither does dumpscript: a prefix cut after such a
 * ';' is an unterminated statement starting at the CREATE.
 */
static void
test_atomic_full_fixture(void **state)
{
	static const Want want[] = {
	    {"TABLE", "accounts", "public", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"TABLE", "audit", "public", NULL, NULL, DUMPSCRIPT_CON_NONE, NULL},
	    {"PROCEDURE", "credit(integer, numeric)", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"FUNCTION", "grade(numeric)", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	    {"CONSTRAINT", "accounts accounts_pkey", "public", "public.accounts",
	     "accounts_pkey", DUMPSCRIPT_CON_PRIMARY_KEY, NULL},
	    {"INDEX", "accounts_grade_idx", "public", "public.accounts",
	     "accounts_grade_idx", DUMPSCRIPT_CON_NONE, NULL},
	    {"RULE", "accounts accounts_log", "public", NULL, NULL,
	     DUMPSCRIPT_CON_NONE, NULL},
	};
	static const struct
	{
		const char *cut_after;
		const char *message;
	} cuts[] = {
	    {"WHERE (accounts.id = credit.a);",
	     "atomic:53: statement not terminated by \";\" at the end of the "
	     "input"},
	    {"END AS \"case\";",
	     "atomic:69: statement not terminated by \";\" at the end of the "
	     "input"},
	    {"VALUES (new.id, 'update'::text);",
	     "atomic:101: statement not terminated by \";\" at the end of the "
	     "input"},
	};
	static const char rule_end[] = "  VALUES (new.id, 'bal\\ance'::text);\n);";
	size_t len;
	char *text = read_fixture("atomic-full.sql", &len);
	DumpScript *ds = NULL;
	Error err = ERR_INIT;
	const DumpEntry *e;
	size_t i;

	(void) state;
	assert_true(dumpscript_parse(text, len, "atomic", &ds, &err));
	assert_int_equal(dumpscript_count(ds), 7);
	for (i = 0; i < sizeof(want) / sizeof(*want); i++)
	{
		e = dumpscript_entry(ds, (int) i);
		assert_string_equal(e->type, want[i].type);
		assert_string_equal(e->name, want[i].name);
		assert_string_equal(e->schema, want[i].schema);
		assert_string_equal(e->owner, "postgres");
		assert_str_or_null(e->table, want[i].table);
		assert_str_or_null(e->index_name, want[i].index_name);
		assert_int_equal(e->constraint, want[i].constraint);
		assert_string_equal(e->setup, "");
		assert_at_line(text, len, e->line, e->sql);
	}
	assert_int_equal(dumpscript_meta_count(ds), 2);
	assert_string_equal(dumpscript_preamble(ds) + strlen(fixture_preamble),
	                    "\n\nSET default_tablespace = '';\n"
	                    "\nSET default_table_access_method = heap;");
	e = dumpscript_entry(ds, 2);
	assert_int_equal(e->line, 53);
	assert_int_equal(strncmp(e->sql, "CREATE PROCEDURE public.credit(", 31), 0);
	assert_non_null(strstr(e->sql, "\nEND;\n\n\nALTER PROCEDURE "));
	e = dumpscript_entry(ds, 6);
	assert_true(strlen(e->sql) > strlen(rule_end));
	assert_string_equal(e->sql + strlen(e->sql) - strlen(rule_end), rule_end);
	dumpscript_free(ds);

	for (i = 0; i < sizeof(cuts) / sizeof(*cuts); i++)
	{
		const char *at = strstr(text, cuts[i].cut_after);

		assert_non_null(at);
		err_clear(&err);
		assert_false(dumpscript_parse(
		    text, (size_t) (at - text) + strlen(cuts[i].cut_after), "atomic",
		    &ds, &err));
		assert_string_equal(err.message, cuts[i].message);
	}
	free(text);
}

/* Every prefix parses or fails with "t:LINE: ..."; never crashes or reads
 * past it (run under ASan). */
static void
check_prefixes(const char *fixture)
{
	size_t len;
	char *text = read_fixture(fixture, &len);
	size_t n;
	int ok = 0;
	int failed = 0;

	for (n = 0; n <= len; n++)
	{
		DumpScript *ds = NULL;
		Error err = ERR_INIT;

		if (parse_exact(text, n, &ds, &err))
		{
			assert_non_null(ds);
			assert_true(dumpscript_count(ds) >= 0);
			ok++;
			dumpscript_free(ds);
		}
		else
		{
			assert_null(ds);
			assert_int_equal(err.kind, ERR_SOURCE);
			assert_int_equal(strncmp(err.message, "t:", 2), 0);
			assert_true(err.message[2] >= '1' && err.message[2] <= '9');
			failed++;
		}
	}
	free(text);
	/* Both outcomes occur: cuts inside statements fail, cuts between them
	 * parse. */
	assert_true(ok > 0);
	assert_true(failed > 0);
}

static void
test_truncated_prefixes(void **state)
{
	(void) state;
	check_prefixes("pre-data.sql");
	check_prefixes("post-data.sql");
	check_prefixes("atomic-full.sql");
}

static const char header_index[] =
    "--\n-- Name: i; Type: INDEX; Schema: public; Owner: -\n--\n\n";

static void
test_unterminated(void **state)
{
	(void) state;
	assert_parse_error(
	    "--\n"
	    "-- Name: f(); Type: FUNCTION; Schema: public; Owner: -\n"
	    "--\n"
	    "\n"
	    "CREATE FUNCTION public.f() RETURNS int AS $body$\n"
	    "SELECT 1; $body \n"
	    "$$;\n",
	    "t:5: unterminated dollar-quoted string");
	assert_parse_error("SELECT 1;\nSELECT 'a'';\n",
	                   "t:2: unterminated quoted string");
	assert_parse_error("SELECT 1;\n\nSELECT E'a\\';\n",
	                   "t:3: unterminated quoted string");
	assert_parse_error("SELECT \"a\"\"b;\n", "t:1: unterminated quoted "
	                                         "identifier");
	assert_parse_error("SELECT 1; /* a /* b */ c;\n",
	                   "t:1: unterminated /* comment");
	assert_parse_error("SELECT 1;\nSELECT 2\n", "t:2: statement not terminated "
	                                            "by \";\" at the end of the "
	                                            "input");
	assert_parse_error("CREATE TABLE t (\n"
	                   "--\n"
	                   "-- Name: x; Type: TABLE; Schema: -; Owner: -\n"
	                   "--\n"
	                   "a int);\n",
	                   "t:1: statement not terminated by \";\" before the "
	                   "entry header at line 2");
	assert_parse_error("SELECT 1 \\gset\n", "t:1: backslash outside quotes in "
	                                        "the middle of a line");
}

static void
test_nul_and_empty(void **state)
{
	static const char with_nul[] = "SELECT 1;\nSELECT '\0';\n";
	DumpScript *ds = NULL;
	Error err = ERR_INIT;

	(void) state;
	assert_false(parse_exact(with_nul, sizeof(with_nul) - 1, &ds, &err));
	assert_string_equal(err.message, "t:2: unexpected NUL byte");

	err_clear(&err);
	assert_true(dumpscript_parse(NULL, 0, "t", &ds, &err));
	assert_int_equal(dumpscript_count(ds), 0);
	assert_int_equal(dumpscript_meta_count(ds), 0);
	assert_string_equal(dumpscript_preamble(ds), "");
	assert_string_equal(dumpscript_sql(ds), "");
	dumpscript_free(ds);
	dumpscript_free(NULL);
}

static void
test_quoting(void **state)
{
	DumpScript *ds;

	(void) state;
	/* Standard strings: a backslash is data; E'' strings escape with it. */
	ds = parse_ok("SELECT 'a\\';\n"
	              "SELECT E'it\\'s; \\\\', e'x''y;';\n"
	              "SELECT U&'d\\0061t;' , \"a;\"\"b\";\n");
	assert_string_equal(dumpscript_preamble(ds),
	                    "SELECT 'a\\';\n"
	                    "SELECT E'it\\'s; \\\\', e'x''y;';\n"
	                    "SELECT U&'d\\0061t;' , \"a;\"\"b\";");
	dumpscript_free(ds);

	/* An identifier ending in E before a quote is not an escape string. */
	ds = parse_ok("SELECT CASE'\\';\n");
	dumpscript_free(ds);

	/* After standard_conforming_strings = off, '\'' does not close. */
	assert_parse_error("SET standard_conforming_strings = off;\n"
	                   "SELECT 'a\\';\n"
	                   "SELECT 1;\n",
	                   "t:2: unterminated quoted string");
	ds = parse_ok("SET standard_conforming_strings = off;\n"
	              "SELECT 'a\\';';\n"
	              "SET standard_conforming_strings = on;\n"
	              "SELECT 'a\\';\n");
	dumpscript_free(ds);

	/* Nested comments, dollar tags, $n parameters, '$' in identifiers. */
	ds = parse_ok("/* a /* b; */ c; */ SELECT 1; -- ; 'x\n"
	              "SELECT $a$ $$; $b$ $a$$b$ ;$a$ $b$;\n"
	              "SELECT a$b$c, $1 FROM t$;\n"
	              "SELECT $fn$\n"
	              "--\n"
	              "-- Name: x; Type: INDEX; Schema: -; Owner: -\n"
	              "--\n"
	              "\\connect db\n"
	              "$fn$;\n");
	assert_int_equal(dumpscript_count(ds), 0);
	assert_int_equal(dumpscript_meta_count(ds), 0);
	assert_string_equal(dumpscript_preamble(ds),
	                    "SELECT 1; -- ; 'x\n"
	                    "SELECT $a$ $$; $b$ $a$$b$ ;$a$ $b$;\n"
	                    "SELECT a$b$c, $1 FROM t$;\n"
	                    "SELECT $fn$\n"
	                    "--\n"
	                    "-- Name: x; Type: INDEX; Schema: -; Owner: -\n"
	                    "--\n"
	                    "\\connect db\n"
	                    "$fn$;");
	dumpscript_free(ds);

	/* As in psql: parentheses and BEGIN ... END of a CREATE FUNCTION or
	 * PROCEDURE body hold ';'; BEGIN elsewhere does not. */
	ds = parse_ok("CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC\n"
	              "  SELECT CASE WHEN true THEN 1 END; SELECT (1;);\n"
	              "END;\n"
	              "BEGIN;\n"
	              "SET x = 1;\n");
	assert_string_equal(dumpscript_preamble(ds),
	                    "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC\n"
	                    "  SELECT CASE WHEN true THEN 1 END; SELECT (1;);\n"
	                    "END;\n"
	                    "BEGIN;\n"
	                    "SET x = 1;");
	dumpscript_free(ds);
	assert_parse_error("CREATE FUNCTION f() BEGIN ATOMIC SELECT 1;\n",
	                   "t:1: statement not terminated by \";\" at the end "
	                   "of the input");
	assert_parse_error("SELECT (1;\n", "t:1: statement not terminated by "
	                                   "\";\" at the end of the input");
	ds = parse_ok("CREATE TABLE begin (a int);\nSELECT 1);\nSELECT 2;\n");
	dumpscript_free(ds);

	/* A header inside a string literal is data. */
	ds = parse_ok("COMMENT ON TABLE t IS '\n"
	              "--\n"
	              "-- Name: x; Type: INDEX; Schema: -; Owner: -\n"
	              "--\n"
	              "';\n");
	assert_int_equal(dumpscript_count(ds), 0);
	dumpscript_free(ds);
}

static void
test_meta_commands(void **state)
{
	DumpScript *ds;
	const DumpEntry *e;

	(void) state;
	/* Older pg_dump: \connect inside an entry; the input ends without a
	 * line break, on a meta-command. */
	ds = parse_ok("\\connect db\n"
	              "SET a = 1;\n"
	              "--\n"
	              "-- Name: t; Type: TABLE; Schema: public; Owner: -\n"
	              "--\n"
	              "\n"
	              "CREATE TABLE public.t (\n"
	              "\\connect -reuse-previous=on \"dbname='x'\"\n"
	              "    a int);\n"
	              "\\unrestrict k");
	assert_int_equal(dumpscript_meta_count(ds), 3);
	assert_string_equal(dumpscript_meta(ds, 0)->command, "\\connect db");
	assert_int_equal(dumpscript_meta(ds, 0)->line, 1);
	assert_string_equal(dumpscript_meta(ds, 1)->command,
	                    "\\connect -reuse-previous=on \"dbname='x'\"");
	assert_int_equal(dumpscript_meta(ds, 1)->line, 8);
	assert_string_equal(dumpscript_meta(ds, 2)->command, "\\unrestrict k");
	assert_int_equal(dumpscript_meta(ds, 2)->line, 10);
	assert_string_equal(dumpscript_preamble(ds), "SET a = 1;");
	e = dumpscript_entry(ds, 0);
	assert_string_equal(e->sql, "CREATE TABLE public.t (\n\n    a int);");
	assert_int_equal(e->line, 7);
	assert_string_equal(dumpscript_sql(ds),
	                    "\n"
	                    "SET a = 1;\n"
	                    "--\n"
	                    "-- Name: t; Type: TABLE; Schema: public; Owner: -\n"
	                    "--\n"
	                    "\n"
	                    "CREATE TABLE public.t (\n"
	                    "\n"
	                    "    a int);\n");
	dumpscript_free(ds);
}

static void
test_headers(void **state)
{
	DumpScript *ds;
	const DumpEntry *e;

	(void) state;
	ds = parse_ok(
	    /* verbose lines, a name holding "; Type: ", no owner, tablespace */
	    "--\n"
	    "-- TOC entry 3 (class 1259 OID 16390)\n"
	    "-- Dependencies: 1 2\n"
	    "-- Name: a; Type: b; Type: INDEX; Schema: public; Tablespace: t s\n"
	    "--\n"
	    "\n"
	    "CREATE INDEX \"a; Type: b\" ON public.t USING btree (a);\n"
	    /* CRLF line ends, owner named */
	    "--\r\n"
	    "-- Name: s; Type: SCHEMA; Schema: -; Owner: Bob Smith\r\n"
	    "--\r\n"
	    "\r\n"
	    "CREATE SCHEMA s;\r\n"
	    /* an entry without statements, then one starting at the end */
	    "--\n"
	    "-- Name: c; Type: COMMENT; Schema: -; Owner: -\n"
	    "--\n"
	    "--\n"
	    "-- Data for Name: d; Type: TABLE DATA; Schema: public; Owner: -\n"
	    "--");
	assert_int_equal(dumpscript_count(ds), 4);
	e = dumpscript_entry(ds, 0);
	assert_string_equal(e->name, "a; Type: b");
	assert_string_equal(e->type, "INDEX");
	assert_string_equal(e->schema, "public");
	assert_null(e->owner);
	assert_string_equal(e->tablespace, "t s");
	assert_string_equal(e->index_name, "a; Type: b");
	assert_int_equal(e->line, 7);
	e = dumpscript_entry(ds, 1);
	assert_string_equal(e->type, "SCHEMA");
	assert_null(e->schema);
	assert_string_equal(e->owner, "Bob Smith");
	assert_null(e->tablespace);
	assert_string_equal(e->sql, "CREATE SCHEMA s;");
	e = dumpscript_entry(ds, 2);
	assert_string_equal(e->type, "COMMENT");
	assert_string_equal(e->sql, "");
	assert_int_equal(e->line, 14);
	e = dumpscript_entry(ds, 3);
	assert_string_equal(e->type, "TABLE DATA");
	assert_string_equal(e->name, "d");
	assert_string_equal(e->sql, "");
	assert_int_equal(e->line, 17);
	dumpscript_free(ds);

	/* Header-shaped comments that are not headers stay comments. */
	ds = parse_ok("-- Name: x; Type: TABLE; Schema: -; Owner: -\n--\n"
	              "-- PostgreSQL database dump\n"
	              "--\n-- Name: y; Type: TABLE; Schema: -; Owner: -\n"
	              "-- not the closing line\n"
	              "--\n-- Name: z; Type: TABLE; Schema: -; Owner: -\n");
	assert_int_equal(dumpscript_count(ds), 0);
	dumpscript_free(ds);

	assert_parse_error("--\n-- Name: x; Type: table; Schema: -; Owner: -\n--\n",
	                   "t:2: malformed entry header: no \"; Type: TYPE; "
	                   "Schema: \"");
}

static void
test_setup(void **state)
{
	DumpScript *ds;

	(void) state;
	ds = parse_ok("SET a = 1;\n"
	              "--\n-- Name: x; Type: TABLE; Schema: -; Owner: -\n--\n"
	              "SET only_statement = 1;\n"
	              "SET b = 1;\n"
	              "--\n-- Name: y; Type: TABLE; Schema: -; Owner: -\n--\n"
	              "CREATE TABLE y ();\n"
	              "ALTER TABLE y SET (fillfactor = 50);\n"
	              "RESET SESSION AUTHORIZATION;\n"
	              "-- between\n"
	              "SET default_tablespace = '';\n"
	              "--\n-- Name: z; Type: TABLE; Schema: -; Owner: -\n--\n"
	              "CREATE TABLE z ();\n"
	              "SET trailing = 1;\n");
	assert_string_equal(dumpscript_preamble(ds), "SET a = 1;");
	assert_string_equal(dumpscript_entry(ds, 0)->setup, "");
	assert_string_equal(dumpscript_entry(ds, 0)->sql,
	                    "SET only_statement = 1;");
	assert_string_equal(dumpscript_entry(ds, 1)->setup, "SET b = 1;");
	assert_string_equal(dumpscript_entry(ds, 1)->sql,
	                    "CREATE TABLE y ();\n"
	                    "ALTER TABLE y SET (fillfactor = 50);");
	assert_string_equal(dumpscript_entry(ds, 2)->setup,
	                    "RESET SESSION AUTHORIZATION;\n"
	                    "-- between\n"
	                    "SET default_tablespace = '';");
	assert_string_equal(dumpscript_entry(ds, 2)->sql,
	                    "CREATE TABLE z ();\nSET trailing = 1;");
	dumpscript_free(ds);
}

static const DumpEntry *
only_entry(DumpScript **ds, const char *header, const char *sql)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s", header, sql);
	*ds = parse_ok(text);
	assert_int_equal(dumpscript_count(*ds), 1);
	return dumpscript_entry(*ds, 0);
}

static void
test_statement_forms(void **state)
{
	static const char h_con[] =
	    "--\n-- Name: t c; Type: CONSTRAINT; Schema: s; Owner: -\n--\n\n";
	static const char h_check[] =
	    "--\n-- Name: d c; Type: CHECK CONSTRAINT; Schema: s; Owner: -\n--\n\n";
	static const char h_trg[] =
	    "--\n-- Name: t g; Type: TRIGGER; Schema: s; Owner: -\n--\n\n";
	static const char h_attach[] =
	    "--\n-- Name: c; Type: INDEX ATTACH; Schema: s; Owner: -\n--\n\n";
	DumpScript *ds;
	const DumpEntry *e;

	(void) state;
	e = only_entry(
	    &ds, header_index,
	    "CREATE UNIQUE INDEX \"a\"\"b\" ON ONLY \"My \"\"S\"\"\"./* x "
	    "*/\"t;x\" USING btree (c);\n");
	assert_string_equal(e->table, "\"My \"\"S\"\"\"./* x */\"t;x\"");
	assert_string_equal(e->index_name, "a\"b");
	dumpscript_free(ds);

	e = only_entry(&ds, header_index,
	               "create index Foo_Idx on Public.T using btree (c);\n"
	               "ALTER TABLE public.t CLUSTER ON foo_idx;\n");
	assert_string_equal(e->table, "Public.T");
	assert_string_equal(e->index_name, "foo_idx");
	dumpscript_free(ds);

	/* "if" may be an index name: IF NOT EXISTS is all or nothing. */
	e = only_entry(&ds, header_index, "CREATE INDEX if ON t USING btree (c);");
	assert_string_equal(e->table, "t");
	assert_string_equal(e->index_name, "if");
	dumpscript_free(ds);
	e = only_entry(&ds, header_index,
	               "CREATE INDEX IF NOT EXISTS i ON db.s.t (c);");
	assert_string_equal(e->table, "db.s.t");
	dumpscript_free(ds);

	e = only_entry(&ds, h_con,
	               "ALTER TABLE ONLY s.t\n"
	               "    ADD CONSTRAINT \"T\" UNIQUE NULLS NOT DISTINCT (a);");
	assert_string_equal(e->table, "s.t");
	assert_string_equal(e->index_name, "T");
	assert_int_equal(e->constraint, DUMPSCRIPT_CON_UNIQUE);
	dumpscript_free(ds);

	e = only_entry(&ds, h_check,
	               "ALTER DOMAIN s.d\n"
	               "    ADD CONSTRAINT c CHECK ((VALUE > 0)) NOT VALID;");
	assert_null(e->table);
	assert_null(e->index_name);
	assert_int_equal(e->constraint, DUMPSCRIPT_CON_NONE);
	dumpscript_free(ds);

	e = only_entry(&ds, h_trg,
	               "CREATE CONSTRAINT TRIGGER g AFTER UPDATE OF \"on\", b ON "
	               "\"S\".\"T\" FROM s.x NOT DEFERRABLE FOR EACH ROW EXECUTE "
	               "FUNCTION s.f('ON');");
	assert_string_equal(e->table, "\"S\".\"T\"");
	assert_null(e->index_name);
	dumpscript_free(ds);

	e = only_entry(&ds, h_attach, "ALTER INDEX s.p ATTACH PARTITION s.\"C\";");
	assert_null(e->table);
	assert_string_equal(e->index_name, "C");
	dumpscript_free(ds);
}

static void
test_unexpected_forms(void **state)
{
	DumpScript *ds = NULL;
	Error err = ERR_INIT;
	static const char text[] =
	    "--\n-- Name: i; Type: INDEX; Schema: public; Owner: -\n--\n\n"
	    "ALTER INDEX public.i SET (fillfactor = 50);\n";

	(void) state;
	assert_false(parse_exact(text, strlen(text), &ds, &err));
	assert_string_equal(err.message,
	                    "t:5: unexpected statement in INDEX entry \"i\"");
	assert_string_equal(err.detail,
	                    "Expected the form CREATE INDEX name ON table.");

	assert_parse_error("--\n-- Name: t c; Type: FK CONSTRAINT; Schema: s; "
	                   "Owner: -\n--\n\n"
	                   "ALTER TABLE ONLY s.t ADD CHECK (a > 0);\n",
	                   "t:5: unexpected statement in FK CONSTRAINT entry \"t "
	                   "c\"");
	assert_parse_error("--\n-- Name: t g; Type: TRIGGER; Schema: s; Owner: "
	                   "-\n--\n\n"
	                   "CREATE TRIGGER g AFTER INSERT;\n",
	                   "t:5: unexpected statement in TRIGGER entry \"t g\"");
	assert_parse_error("--\n-- Name: c; Type: INDEX ATTACH; Schema: s; Owner: "
	                   "-\n--\n\n"
	                   "ALTER INDEX s.p ATTACH PARTITION;\n",
	                   "t:5: unexpected statement in INDEX ATTACH entry \"c\"");
	assert_parse_error("--\n-- Name: i; Type: INDEX; Schema: s; Owner: -\n--\n",
	                   "t:2: unexpected statement in INDEX entry \"i\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pre_data_fixture),
	    cmocka_unit_test(test_post_data_fixture),
	    cmocka_unit_test(test_atomic_full_fixture),
	    cmocka_unit_test(test_truncated_prefixes),
	    cmocka_unit_test(test_unterminated),
	    cmocka_unit_test(test_nul_and_empty),
	    cmocka_unit_test(test_quoting),
	    cmocka_unit_test(test_meta_commands),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_setup),
	    cmocka_unit_test(test_statement_forms),
	    cmocka_unit_test(test_unexpected_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
