/*
 * config_dms: an AWS DMS table-mapping file (the task file's table_mappings,
 * or --table-mappings), read as it is.
 *
 * It owns reading the file (strict JSON, through base/json_read: libyaml
 * takes most of a second over 20,000 rules), what can be wrong with it (no
 * "rules" array, a rule without rule-id or rule-type, two rules with one
 * id, a selection rule without its object-locator), what pgtide does not
 * support yet (transformations other than the names' (add-column, data
 * types, expressions, tablespaces, primary keys), table-settings rules, a
 * filter operator DMS does not document, filters on a rule other than
 * include, table types other than table, any other rule), each one error
 * naming the file, the rule's id and line, and turning the selection rules
 * into tables.include and tables.exclude items, their source filters into
 * `filters`, and the transformation rules into transformations items, in
 * the forms base/config.h describes (route/mapping, route/rename and
 * route/filter read them).
 *
 * It must never drop a rule silently: a rule is a selection (an include
 * rule's source filters become the SQL condition of the task file's
 * `filters`, decision 0029), a transformation of a name, or it is refused.
 * It never matches names itself.
 */
#include "base/config.h"
#include "base/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/json_read.h"

#define DMS_HINT                                                         \
	"pgtide reads the selection rules of a DMS table mapping (include, " \
	"exclude and explicit; source filters on include rules) and its "    \
	"transformations of schema, table and column names; see "            \
	"docs/table-mappings.md"

/* One read of a table-mapping file. */
typedef struct Dms
{
	const char *path;
	const JsonDoc *doc;
	StrList include;
	StrList exclude;
	StrMap filters; /* "schema"."table" -> the SQL of its source filters */
	StrList transformations;
	/* rule ids seen: open addressing over views into doc */
	const char **ids;
	size_t mask;
} Dms;

static size_t
line_of(const JsonNode *node)
{
	return (size_t) node->line;
}

/* A string's or number's text (a rule-id may be either), else NULL. */
static const char *
scalar(const JsonNode *node)
{
	if (node == NULL ||
	    (node->type != JSON_STRING && node->type != JSON_NUMBER))
		return NULL;
	return node->text;
}

/* True when text holds a control character (the item form's separator
 * among them). */
static bool
has_control(const char *text)
{
	for (const unsigned char *p = (const unsigned char *) text; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* A non-empty string field of a rule's object, or NULL after setting err. */
static const char *
text_field(const Dms *d, const JsonNode *obj, const char *field, const char *id,
           size_t line, Error *err)
{
	const JsonNode *node = json_get(d->doc, obj, field);
	const char *v = scalar(node);
	char shown[CONFIG_QUOTED_CAP];

	if (node == NULL)
		err_set(err, ERR_CONFIG, "%s:%zu: rule \"%s\": no \"%s\"", d->path,
		        line, config_quote(shown, id, strlen(id)), field);
	else if (v == NULL || v[0] == '\0' || has_control(v))
		err_set(err, ERR_CONFIG,
		        "%s:%zu: rule \"%s\": \"%s\" must be a non-empty string "
		        "without control characters",
		        d->path, line_of(node), config_quote(shown, id, strlen(id)),
		        field);
	else
		return v;
	return NULL;
}

/* NULL when a DMS pattern's sets are well formed, else what is wrong. */
static const char *
like_check(const char *like)
{
	for (const char *p = like; *p; p++)
		if (*p == '[')
		{
			const char *q = p + 1;

			if (*q == ']')
				return "an empty set [] matches no character";
			while (*q && *q != ']')
				q++;
			if (*q != ']')
				return "a [ without its ] (write [[] for a literal [)";
			p = q;
		}
	return NULL;
}

/* Records id; false (err set) when an earlier rule has the same id. */
static bool
note_id(Dms *d, const char *id, size_t line, Error *err)
{
	char shown[CONFIG_QUOTED_CAP];
	size_t slot = (size_t) hash_string(id) & d->mask;

	while (d->ids[slot] != NULL)
	{
		if (strcmp(d->ids[slot], id) == 0)
		{
			err_set(err, ERR_CONFIG,
			        "%s:%zu: rule \"%s\": a second rule with this rule-id",
			        d->path, line, config_quote(shown, id, strlen(id)));
			return err_hint(err, "every rule-id must be unique");
		}
		slot = (slot + 1) & d->mask;
	}
	d->ids[slot] = id;
	return true;
}

/* The one error for a rule pgtide does not support: its id, type, action. */
static bool
unsupported(const Dms *d, const char *id, size_t line, const char *type,
            const char *action, const char *what, Error *err)
{
	char sid[CONFIG_QUOTED_CAP], stype[CONFIG_QUOTED_CAP],
	    saction[CONFIG_QUOTED_CAP];

	err_set(err, ERR_CONFIG,
	        "%s:%zu: rule \"%s\" (rule-type \"%s\", rule-action \"%s\"): %s "
	        "not supported yet",
	        d->path, line, config_quote(sid, id, strlen(id)),
	        config_quote(stype, type, strlen(type)),
	        config_quote(saction, action, strlen(action)), what);
	return err_hint(err, DMS_HINT);
}

/* A value as an SQL string literal: quotes doubled (pgtide's sessions keep
 * standard_conforming_strings on, so a backslash is an ordinary character). */
static bool
add_literal(Buf *b, const char *v, Error *err)
{
	bool ok = buf_add_str(b, "'", err);

	for (const char *p = v; ok && *p; p++)
		ok = buf_add(b, p, 1, err) && (*p != '\'' || buf_add(b, p, 1, err));
	return ok && buf_add_str(b, "'", err);
}

/* A name as an SQL identifier: always quoted, DMS names being
 * case-sensitive. */
static bool
add_ident(Buf *b, const char *v, Error *err)
{
	bool ok = buf_add_str(b, "\"", err);

	for (const char *p = v; ok && *p; p++)
		ok = buf_add(b, p, 1, err) && (*p != '"' || buf_add(b, p, 1, err));
	return ok && buf_add_str(b, "\"", err);
}

/*
 * One filter-condition on column col, as SQL into b. The operators AWS DMS
 * documents: eq, noteq, lte and ste (its alias), gte, between and
 * notbetween (start-value, end-value; between includes both), null,
 * notnull. Another operator is refused, named.
 */
static bool
add_condition(const Dms *d, const JsonNode *c, const char *id,
              const char *action, const char *col, Buf *b, Error *err)
{
	static const struct
	{
		const char *op;
		const char *sql; /* after the column; NULL: BETWEEN forms */
		int nvalues;
	} ops[] = {
	    {"eq", " = ", 1},
	    {"noteq", " <> ", 1},
	    {"lte", " <= ", 1},
	    {"ste", " <= ", 1},
	    {"gte", " >= ", 1},
	    {"between", " BETWEEN ", 2},
	    {"notbetween", " NOT BETWEEN ", 2},
	    {"null", " IS NULL", 0},
	    {"notnull", " IS NOT NULL", 0},
	};
	char shown[CONFIG_QUOTED_CAP], sop[CONFIG_QUOTED_CAP];
	const char *op, *v1 = NULL, *v2 = NULL;
	int k = -1;

	if (c->type != JSON_OBJECT ||
	    (op = text_field(d, c, "filter-operator", id, line_of(c), err)) == NULL)
		return c->type == JSON_OBJECT
		           ? false
		           : err_set(err, ERR_CONFIG,
		                     "%s:%zu: rule \"%s\": a filter-condition must be "
		                     "an object",
		                     d->path, line_of(c),
		                     config_quote(shown, id, strlen(id)));
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && k < 0; i++)
		if (strcmp(ops[i].op, op) == 0)
			k = (int) i;
	if (k < 0)
	{
		char what[CONFIG_QUOTED_CAP + 64];

		snprintf(what, sizeof(what),
		         "source filters (filter-operator \"%s\") are",
		         config_quote(sop, op, strlen(op)));
		return unsupported(d, id, line_of(c), "selection", action, what, err);
	}
	if (ops[k].nvalues == 1 &&
	    (v1 = text_field(d, c, "value", id, line_of(c), err)) == NULL)
		return false;
	if (ops[k].nvalues == 2 &&
	    ((v1 = text_field(d, c, "start-value", id, line_of(c), err)) == NULL ||
	     (v2 = text_field(d, c, "end-value", id, line_of(c), err)) == NULL))
		return false;
	return add_ident(b, col, err) && buf_add_str(b, ops[k].sql, err) &&
	       (v1 == NULL || add_literal(b, v1, err)) &&
	       (v2 == NULL ||
	        (buf_add_str(b, " AND ", err) && add_literal(b, v2, err)));
}

/*
 * A selection rule's source filters as one SQL condition into *cond
 * (malloc'd; NULL when the rule has none): as in DMS, the filters are
 * ANDed and a filter's conditions ORed. Only an include rule with exact
 * names may filter (DMS applies filters to include rules only, and to
 * tables named exactly); the rest is refused by rule.
 */
static bool
read_filters(const Dms *d, const JsonNode *rule, const char *id,
             const char *action, char **cond, Error *err)
{
	const JsonNode *filters = json_get(d->doc, rule, "filters");
	char shown[CONFIG_QUOTED_CAP];
	Buf b;
	int nf = 0;
	bool ok = true;

	*cond = NULL;
	if (filters == NULL)
		return true;
	if (filters->type != JSON_ARRAY)
	{
		err_set(err, ERR_CONFIG,
		        "%s:%zu: rule \"%s\": \"filters\" must be "
		        "an array",
		        d->path, line_of(filters), config_quote(shown, id, strlen(id)));
		return false;
	}
	if (filters->count == 0)
		return true;
	if (strcmp(action, "include") != 0)
		return unsupported(d, id, line_of(filters), "selection", action,
		                   "source filters on a rule other than include are",
		                   err);
	buf_init(&b, CONFIG_FILTER_MAX);
	for (const JsonNode *f = json_at(d->doc, filters->first); ok && f != NULL;
	     f = json_at(d->doc, f->next))
	{
		const JsonNode *conds;
		const char *type, *col;
		int nc = 0;

		if (f->type != JSON_OBJECT)
		{
			ok = err_set(err, ERR_CONFIG,
			             "%s:%zu: rule \"%s\": a filter must be an object",
			             d->path, line_of(f),
			             config_quote(shown, id, strlen(id)));
			break;
		}
		if ((type = text_field(d, f, "filter-type", id, line_of(f), err)) ==
		        NULL ||
		    (col = text_field(d, f, "column-name", id, line_of(f), err)) ==
		        NULL)
		{
			ok = false;
			break;
		}
		if (strcmp(type, "source") != 0)
		{
			char what[CONFIG_QUOTED_CAP + 64];

			snprintf(what, sizeof(what), "filters of filter-type \"%s\" are",
			         config_quote(shown, type, strlen(type)));
			ok = unsupported(d, id, line_of(f), "selection", action, what, err);
			break;
		}
		conds = json_get(d->doc, f, "filter-conditions");
		if (conds == NULL || conds->type != JSON_ARRAY || conds->count == 0)
		{
			ok = err_set(err, ERR_CONFIG,
			             "%s:%zu: rule \"%s\": a filter needs a non-empty "
			             "\"filter-conditions\" array",
			             d->path, line_of(f),
			             config_quote(shown, id, strlen(id)));
			break;
		}
		ok = buf_add_str(&b, nf++ ? " AND (" : "(", err);
		for (const JsonNode *c = json_at(d->doc, conds->first); ok && c != NULL;
		     c = json_at(d->doc, c->next))
			ok = buf_add_str(&b, nc++ ? " OR " : "", err) &&
			     add_condition(d, c, id, action, col, &b, err);
		ok = ok && buf_add_str(&b, ")", err);
	}
	ok = ok && buf_take(&b, cond, err);
	buf_free(&b);
	return ok;
}

/* Appends the item for one selection rule to the include or exclude list. */
static bool
add_item(Dms *d, bool exclude, bool exact, const char *id, const char *action,
         const char *schema, const char *table, Error *err)
{
	char *item = NULL;
	char *base = strrchr(d->path, '/');
	char sid[CONFIG_QUOTED_CAP], ss[CONFIG_QUOTED_CAP], st[CONFIG_QUOTED_CAP];
	int len;
	bool ok;

	len = asprintf(&item,
	               "%c%c%crule \"%s\" of %s (%s schema-name \"%s\", "
	               "table-name \"%s\")%c%s%c%s",
	               CONFIG_RULE_MARK, exact ? 'E' : 'L', CONFIG_RULE_MARK,
	               config_quote(sid, id, strlen(id)),
	               base != NULL ? base + 1 : d->path, action,
	               config_quote(ss, schema, strlen(schema)),
	               config_quote(st, table, strlen(table)), CONFIG_RULE_MARK,
	               schema, CONFIG_RULE_MARK, table);
	if (len < 0)
		return config_out_of_memory(err);
	ok = config_strlist_append(exclude ? &d->exclude : &d->include, item,
	                           (size_t) len, err);
	free(item);
	return ok;
}

/*
 * Records cond, a rule's filters, for the table schema.table, named exactly
 * ("schema"."table"): DMS filters name tables exactly, so a name with `%`
 * or a set is refused (a `_` is taken as itself).
 */
static bool
add_filter(Dms *d, const JsonNode *loc, const char *id, const char *action,
           const char *schema, const char *table, const char *cond, Error *err)
{
	Buf key;
	bool ok;

	if (strpbrk(schema, "%[") != NULL || strpbrk(table, "%[") != NULL)
		return unsupported(d, id, line_of(loc), "selection", action,
		                   "source filters on a table-name or schema-name "
		                   "with a wildcard are",
		                   err);
	buf_init(&key, CONFIG_FILTER_MAX);
	ok = add_ident(&key, schema, err) && buf_add_str(&key, ".", err) &&
	     add_ident(&key, table, err) && buf_check(&key, err);
	if (ok && !config_strmap_add(&d->filters, buf_str(&key), buf_len(&key),
	                             cond, strlen(cond), line_of(loc), err))
	{
		char shown[CONFIG_QUOTED_CAP];

		ok = err_prefix(
		    err, "%s:%zu: rule \"%s\": the filters of %s.%s: ", d->path,
		    line_of(loc), config_quote(shown, id, strlen(id)), schema, table);
	}
	buf_free(&key);
	return ok;
}

/*
 * The object-locator of a selection rule: its item, and the key of its
 * filters' condition cond (or NULL), the table's exact quoted name.
 */
static bool
read_locator(Dms *d, const JsonNode *rule, const char *id, size_t line,
             const char *action, bool exact, const char *cond, Error *err)
{
	const JsonNode *loc;
	const char *schema, *table, *type, *bad;
	char shown[CONFIG_QUOTED_CAP];

	loc = json_get(d->doc, rule, "object-locator");
	if (loc == NULL || loc->type != JSON_OBJECT)
	{
		err_set(err, ERR_CONFIG,
		        "%s:%zu: rule \"%s\": a selection rule needs an "
		        "\"object-locator\" object",
		        d->path, loc != NULL ? line_of(loc) : line,
		        config_quote(shown, id, strlen(id)));
		return err_hint(err, "write \"object-locator\": {\"schema-name\": "
		                     "\"S\", \"table-name\": \"T\"}");
	}
	if ((schema = text_field(d, loc, "schema-name", id, line_of(loc), err)) ==
	        NULL ||
	    (table = text_field(d, loc, "table-name", id, line_of(loc), err)) ==
	        NULL)
		return false;
	type = scalar(json_get(d->doc, loc, "table-type"));
	if (type != NULL && strcmp(type, "table") != 0)
	{
		char what[CONFIG_QUOTED_CAP + 64];

		snprintf(what, sizeof(what),
		         "table-type \"%s\" (pgtide moves tables only) is",
		         config_quote(shown, type, strlen(type)));
		return unsupported(d, id, line_of(loc), "selection", action, what, err);
	}
	if (!exact && ((bad = like_check(schema)) != NULL ||
	               (bad = like_check(table)) != NULL))
	{
		err_set(err, ERR_CONFIG, "%s:%zu: rule \"%s\": object-locator: %s",
		        d->path, line_of(loc), config_quote(shown, id, strlen(id)),
		        bad);
		return false;
	}
	if (!add_item(d, strcmp(action, "exclude") == 0, exact, id, action, schema,
	              table, err))
		return false;
	return cond == NULL ||
	       add_filter(d, loc, id, action, schema, table, cond, err);
}


static bool
read_selection(Dms *d, const JsonNode *rule, const char *id, size_t line,
               Error *err)
{
	const char *action = text_field(d, rule, "rule-action", id, line, err);
	char *cond = NULL;
	bool exact, ok;

	if (action == NULL)
		return false;
	if (strcmp(action, "include") != 0 && strcmp(action, "exclude") != 0 &&
	    strcmp(action, "explicit") != 0)
		return unsupported(d, id, line, "selection", action,
		                   "selection rules of this rule-action are", err);
	exact = strcmp(action, "explicit") == 0;
	if (!read_filters(d, rule, id, action, &cond, err))
		return false;
	ok = read_locator(d, rule, id, line, action, exact, cond, err);
	free(cond);
	return ok;
}

/* The transformation actions pgtide applies, and what each needs. */
static const struct
{
	const char *action;
	bool value;     /* needs "value" */
	bool old_value; /* needs "old-value" */
} dms_actions[] = {
    {"rename", true, false},
    {"remove-column", false, false},
    {"convert-lowercase", false, false},
    {"convert-uppercase", false, false},
    {"add-prefix", true, false},
    {"remove-prefix", true, false},
    {"replace-prefix", true, true},
    {"add-suffix", true, false},
    {"remove-suffix", true, false},
    {"replace-suffix", true, true},
};

/* An optional string field: NULL when absent, "" when not a string. */
static const char *
opt_text(const Dms *d, const JsonNode *obj, const char *field)
{
	const JsonNode *node = json_get(d->doc, obj, field);
	const char *v = scalar(node);

	if (node == NULL)
		return NULL;
	return v != NULL && !has_control(v) ? v : "";
}

/*
 * A transformation rule on a schema, table or column name (route/rename
 * applies it), as a transformations item. Every other rule-target or
 * rule-action is refused, naming it.
 */
static bool
read_transformation(Dms *d, const JsonNode *rule, const char *id, size_t line,
                    Error *err)
{
	const char *action = text_field(d, rule, "rule-action", id, line, err);
	const char *target, *schema, *table = "", *column = "", *bad;
	const char *value = "", *old = "";
	const JsonNode *loc;
	char shown[CONFIG_QUOTED_CAP], what[CONFIG_QUOTED_CAP + 96];
	char *base = strrchr(d->path, '/');
	char *item = NULL;
	int k = -1, len;
	bool ok;

	if (action == NULL)
		return false;
	target = scalar(json_get(d->doc, rule, "rule-target"));
	if (target == NULL ||
	    (strcmp(target, "schema") != 0 && strcmp(target, "table") != 0 &&
	     strcmp(target, "column") != 0))
	{
		snprintf(what, sizeof(what),
		         "rule-target \"%s\" (pgtide renames "
		         "schemas, tables and columns) is",
		         config_quote(shown, target ? target : "",
		                      target ? strlen(target) : 0));
		return unsupported(d, id, line, "transformation", action, what, err);
	}
	for (size_t i = 0; i < sizeof(dms_actions) / sizeof(dms_actions[0]); i++)
		if (strcmp(dms_actions[i].action, action) == 0)
			k = (int) i;
	if (k < 0 ||
	    (strcmp(action, "remove-column") == 0 && strcmp(target, "column") != 0))
	{
		snprintf(what, sizeof(what), "this rule-action on a %s is", target);
		return unsupported(d, id, line, "transformation", action, what, err);
	}
	loc = json_get(d->doc, rule, "object-locator");
	if (loc == NULL || loc->type != JSON_OBJECT)
	{
		err_set(err, ERR_CONFIG,
		        "%s:%zu: rule \"%s\": a transformation rule needs an "
		        "\"object-locator\" object",
		        d->path, loc != NULL ? line_of(loc) : line,
		        config_quote(shown, id, strlen(id)));
		return false;
	}
	if ((schema = text_field(d, loc, "schema-name", id, line_of(loc), err)) ==
	        NULL ||
	    (strcmp(target, "schema") != 0 &&
	     (table = text_field(d, loc, "table-name", id, line_of(loc), err)) ==
	         NULL) ||
	    (strcmp(target, "column") == 0 &&
	     (column = text_field(d, loc, "column-name", id, line_of(loc), err)) ==
	         NULL) ||
	    (dms_actions[k].value &&
	     (value = text_field(d, rule, "value", id, line, err)) == NULL) ||
	    (dms_actions[k].old_value &&
	     (old = text_field(d, rule, "old-value", id, line, err)) == NULL))
		return false;
	if (opt_text(d, rule, "expression") != NULL ||
	    json_get(d->doc, rule, "data-type") != NULL)
		return unsupported(d, id, line, "transformation", action,
		                   "expressions and data types are", err);
	if ((bad = like_check(schema)) != NULL ||
	    (bad = like_check(table)) != NULL || (bad = like_check(column)) != NULL)
	{
		err_set(err, ERR_CONFIG, "%s:%zu: rule \"%s\": object-locator: %s",
		        d->path, line_of(loc), config_quote(shown, id, strlen(id)),
		        bad);
		return false;
	}
	len = asprintf(&item, "%c%c%crule \"%s\" of %s%c%s%c%s%c%s%c%s%c%s%c%s%c%s",
	               CONFIG_RULE_MARK, 'T', CONFIG_RULE_MARK,
	               config_quote(shown, id, strlen(id)),
	               base != NULL ? base + 1 : d->path, CONFIG_RULE_MARK, target,
	               CONFIG_RULE_MARK, action, CONFIG_RULE_MARK, schema,
	               CONFIG_RULE_MARK, table, CONFIG_RULE_MARK, column,
	               CONFIG_RULE_MARK, value, CONFIG_RULE_MARK, old);
	if (len < 0)
		return config_out_of_memory(err);
	ok = config_strlist_append(&d->transformations, item, (size_t) len, err);
	free(item);
	return ok;
}

static bool
read_rule(Dms *d, const JsonNode *rule, int index, Error *err)
{
	char fallback[32];
	const char *id, *type, *action;
	size_t line = line_of(rule);

	snprintf(fallback, sizeof(fallback), "#%d", index + 1);
	if (rule->type != JSON_OBJECT)
		return err_set(err, ERR_CONFIG,
		               "%s:%zu: rule %s of \"rules\" is not an object", d->path,
		               line, fallback);
	if ((id = text_field(d, rule, "rule-id", fallback, line, err)) == NULL ||
	    !note_id(d, id, line, err) ||
	    (type = text_field(d, rule, "rule-type", id, line, err)) == NULL)
		return false;
	if (strcmp(type, "selection") == 0)
		return read_selection(d, rule, id, line, err);
	action = scalar(json_get(d->doc, rule, "rule-action"));
	if (strcmp(type, "transformation") == 0)
		return read_transformation(d, rule, id, line, err);
	if (strcmp(type, "table-settings") == 0)
		return unsupported(d, id, line, type, action != NULL ? action : "",
		                   "table-settings rules are", err);
	return unsupported(d, id, line, type, action != NULL ? action : "",
	                   "rules of this rule-type are", err);
}

static bool
read_rules(Dms *d, Error *err)
{
	const JsonNode *root = json_at(d->doc, 0);
	const JsonNode *rules;
	size_t n, slots = 16;
	int index = 0;

	if (root == NULL || root->type != JSON_OBJECT)
		return err_set(err, ERR_CONFIG,
		               "%s: expected a JSON object with a \"rules\" array",
		               d->path);
	rules = json_get(d->doc, root, "rules");
	if (rules == NULL || rules->type != JSON_ARRAY)
		return err_set(err, ERR_CONFIG,
		               "%s:%zu: expected a \"rules\" array at the top level",
		               d->path, rules != NULL ? line_of(rules) : 1);
	n = (size_t) rules->count;
	while (slots < n * 2)
		slots *= 2;
	if ((d->ids = calloc(slots, sizeof(char *))) == NULL)
		return config_out_of_memory(err);
	d->mask = slots - 1;
	for (const JsonNode *r = json_at(d->doc, rules->first); r != NULL;
	     r = json_at(d->doc, r->next), index++)
		if (!read_rule(d, r, index, err))
			return false;
	if (d->include.count == 0)
	{
		err_set(err, ERR_CONFIG,
		        "%s: no selection rule with rule-action include or explicit: "
		        "it selects no table",
		        d->path);
		return err_hint(err, "as in AWS DMS, a table moves only when a rule "
		                     "includes it");
	}
	return true;
}


bool
config_read_table_mappings(TaskConfig *cfg, Error *err)
{
	JsonDoc doc;
	Dms d = {.path = cfg->table_mappings, .doc = &doc};
	char *data = NULL;
	size_t len = 0;
	bool ok;

	if (cfg->table_mappings == NULL)
		return true;
	if (cfg->include.count > 0 || cfg->exclude.count > 0)
	{
		err_set(err, ERR_CONFIG,
		        "table_mappings cannot be used with tables.include or "
		        "tables.exclude (-t, -T)");
		return err_hint(err, "select the tables in one place: the "
		                     "table-mapping file's selection rules, or the "
		                     "patterns");
	}
	if (!config_read_file("table-mappings file", cfg->table_mappings, &data,
	                      &len, err))
		return false;
	ok = json_parse(&doc, cfg->table_mappings, data, len, err);
	free(data);
	if (!ok)
		return false;
	ok = read_rules(&d, err);
	if (ok)
	{
		/* both were empty: checked above */
		StrList none = {0};

		cfg->include = d.include;
		cfg->exclude = d.exclude;
		config_strlist_free(&cfg->transformations);
		cfg->transformations = d.transformations;
		d.include = none;
		d.exclude = none;
		d.transformations = none;
	}
	/* the file's filters join the task file's; one table named by both is
	   refused once pgtide sees the tables (pg/rowfilter) */
	for (int i = 0; ok && i < d.filters.keys.count; i++)
		ok = config_strmap_add(
		    &cfg->filters, d.filters.keys.items[i],
		    strlen(d.filters.keys.items[i]), d.filters.values.items[i],
		    strlen(d.filters.values.items[i]), d.filters.line[i], err);
	config_strmap_free(&d.filters);
	config_strlist_free(&d.include);
	config_strlist_free(&d.exclude);
	config_strlist_free(&d.transformations);
	free(d.ids);
	json_doc_free(&doc);
	return ok;
}
