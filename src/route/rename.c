/*
 * rename: rules over schema, table and column names. No I/O.
 */
#include "route/rename.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
rename_init(Renames *r)
{
	memset(r, 0, sizeof(*r));
}

static void
rule_free(RenameRule *x)
{
	free(x->schema);
	free(x->table);
	free(x->column);
	free(x->value);
	free(x->old_value);
	free(x->to_schema);
	free(x->where);
	memset(x, 0, sizeof(*x));
}

void
rename_free(Renames *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->n; i++)
		rule_free(&r->rules[i]);
	free(r->rules);
	memset(r, 0, sizeof(*r));
}

bool
rename_none(const Renames *r)
{
	return r->n == 0;
}

/* A copy of s, or NULL for NULL; *oom when malloc fails. */
static char *
dup_or_null(const char *s, bool *oom)
{
	char *out;

	if (s == NULL)
		return NULL;
	if ((out = strdup(s)) == NULL)
		*oom = true;
	return out;
}

bool
rename_add(Renames *r, const RenameRule *rule, Error *err)
{
	RenameRule *x;
	bool oom = false;

	if (r->n == r->cap)
	{
		int cap = r->cap > 0 ? r->cap * 2 : 16;
		RenameRule *grown = realloc(r->rules, (size_t) cap * sizeof(*grown));

		if (grown == NULL)
			return err_set(err, ERR_INTERNAL, "out of memory");
		r->rules = grown;
		r->cap = cap;
	}
	x = &r->rules[r->n];
	*x = *rule;
	x->schema = dup_or_null(rule->schema, &oom);
	x->table = dup_or_null(rule->table, &oom);
	x->column = dup_or_null(rule->column, &oom);
	x->value = dup_or_null(rule->value, &oom);
	x->old_value = dup_or_null(rule->old_value, &oom);
	x->to_schema = dup_or_null(rule->to_schema, &oom);
	x->where = dup_or_null(rule->where, &oom);
	if (oom)
	{
		rule_free(x);
		return err_set(err, ERR_INTERNAL, "out of memory");
	}
	r->n++;
	return true;
}

/*
 * Splits text into at most max dot-separated names (double quotes keep dots
 * and quotes doubled inside them), as route/mapping reads a pattern. Returns
 * how many, or -1 when a part is empty, a quote is unclosed or there are
 * more than max. parts[i] are malloc'd; on -1 none is left to free.
 */
static int
split_names(const char *text, char **parts, int max)
{
	const char *p = text;
	int n = 0;

	for (;;)
	{
		size_t len = 0;
		bool quoted = false;
		char *out;

		if (n == max || (out = malloc(strlen(p) + 1)) == NULL)
			goto bad;
		for (; *p; p++)
		{
			if (*p == '"')
			{
				if (quoted && p[1] == '"')
					out[len++] = *p++;
				else
					quoted = !quoted;
			}
			else if (*p == '.' && !quoted)
				break;
			else
				out[len++] = *p;
		}
		out[len] = '\0';
		parts[n++] = out;
		if (quoted || len == 0)
			goto bad;
		if (*p == '\0')
			return n;
		p++;
	}
bad:
	for (int i = 0; i < n; i++)
	{
		free(parts[i]);
		parts[i] = NULL;
	}
	return -1;
}

/* "FILE:LINE: key KEY" (or without the line) into buf. */
static void
where_key(char *buf, size_t cap, const TaskConfig *cfg, const char *key,
          int line)
{
	const char *file = cfg->path != NULL ? cfg->path : "task file";

	if (line > 0)
		snprintf(buf, cap, "%s:%d: key %s", file, line, key);
	else
		snprintf(buf, cap, "%s: key %s", file, key);
}

static bool
bad_name(Error *err, const char *where, const char *text, const char *want)
{
	err_set(err, ERR_CONFIG, "%s: invalid name \"%s\"", where, text);
	return err_hint(err, "write %s, with double quotes around names with dots",
	                want);
}

/* One entry of the task file's rename.* maps or remove_columns. */
static bool
add_from_config(Renames *r, const TaskConfig *cfg, const char *key, RenameOn on,
                const char *from, const char *to, int line, Error *err)
{
	char where[ERR_MSG_MAX / 2];
	char *src[3] = {NULL, NULL, NULL};
	char *dst[2] = {NULL, NULL};
	int want = on == RENAME_ON_SCHEMA ? 1 : on == RENAME_ON_TABLE ? 2 : 3;
	int ns, nd = 0;
	RenameRule rule = {.on = on, .syntax = PATTERN_EXACT};
	bool ok = false;

	where_key(where, sizeof(where), cfg, key, line);
	ns = split_names(from, src, want);
	/* a table, or a column's table, without its schema is in public */
	if (ns == want - 1 && want > 1)
	{
		memmove(src + 1, src, (size_t) ns * sizeof(char *));
		if ((src[0] = strdup("public")) == NULL)
		{
			for (int i = 1; i <= ns; i++)
				free(src[i]);
			return err_set(err, ERR_INTERNAL, "out of memory");
		}
		ns++;
	}
	if (ns != want)
	{
		for (int i = 0; i < ns; i++)
			free(src[i]);
		return bad_name(err, where, from,
		                on == RENAME_ON_SCHEMA  ? "a schema name"
		                : on == RENAME_ON_TABLE ? "schema.table"
		                                        : "schema.table.column");
	}
	if (to != NULL)
	{
		nd = split_names(to, dst, on == RENAME_ON_TABLE ? 2 : 1);
		if (nd < 1)
		{
			bad_name(err, where, to,
			         on == RENAME_ON_TABLE ? "a table name or schema.table"
			                               : "one name");
			goto out;
		}
	}
	rule.schema = src[0];
	rule.table = want > 1 ? src[1] : NULL;
	rule.column = want > 2 ? src[2] : NULL;
	rule.action = to == NULL ? RENAME_REMOVE : RENAME_TO;
	if (nd == 2)
	{
		rule.to_schema = dst[0];
		rule.value = dst[1];
	}
	else
		rule.value = dst[0];
	rule.where = where;
	ok = rename_add(r, &rule, err);
out:
	for (int i = 0; i < 3; i++)
		free(src[i]);
	for (int i = 0; i < 2; i++)
		free(dst[i]);
	return ok;
}

/* The action a table-mapping file names, or -1. */
static int
action_of(const char *name)
{
	for (int a = RENAME_TO; a <= RENAME_REPLACE_SUFFIX; a++)
		if (strcmp(rename_action_name((RenameAction) a), name) == 0)
			return a;
	return -1;
}

/*
 * One transformations item (base/config.h): the text, rule-target,
 * rule-action, schema, table and column patterns, value and old-value,
 * each after a CONFIG_RULE_MARK.
 */
static bool
add_transformation(Renames *r, const char *item, Error *err)
{
	char *f[8] = {NULL};
	const char *p = item + 2;
	RenameRule rule = {.syntax = PATTERN_LIKE};
	int action;
	bool ok = false;

	if (item[0] != CONFIG_RULE_MARK || item[1] != 'T')
		return err_set(err, ERR_INTERNAL, "invalid transformation rule form");
	for (int i = 0; i < 8; i++)
	{
		const char *end;

		if (*p != CONFIG_RULE_MARK)
			goto bad;
		p++;
		end = strchr(p, CONFIG_RULE_MARK);
		if (end == NULL)
			end = p + strlen(p);
		if ((f[i] = strndup(p, (size_t) (end - p))) == NULL)
		{
			err_set(err, ERR_INTERNAL, "out of memory");
			goto out;
		}
		p = end;
	}
	action = action_of(f[2]);
	if (action < 0)
		goto bad;
	rule.where = f[0];
	rule.on = strcmp(f[1], "schema") == 0  ? RENAME_ON_SCHEMA
	          : strcmp(f[1], "table") == 0 ? RENAME_ON_TABLE
	                                       : RENAME_ON_COLUMN;
	rule.action = (RenameAction) action;
	rule.schema = f[3];
	rule.table = rule.on != RENAME_ON_SCHEMA ? f[4] : NULL;
	rule.column = rule.on == RENAME_ON_COLUMN ? f[5] : NULL;
	rule.value = f[6][0] != '\0' ? f[6] : NULL;
	rule.old_value = f[7][0] != '\0' ? f[7] : NULL;
	ok = rename_add(r, &rule, err);
	goto out;
bad:
	err_set(err, ERR_INTERNAL, "invalid transformation rule form");
out:
	for (int i = 0; i < 8; i++)
		free(f[i]);
	return ok;
}

bool
rename_from_config(Renames *r, const TaskConfig *cfg, Error *err)
{
	static const struct
	{
		const char *key;
		RenameOn on;
		size_t off;
	} maps[] = {
	    {"rename.schemas", RENAME_ON_SCHEMA,
	     offsetof(TaskConfig, rename_schemas)},
	    {"rename.tables", RENAME_ON_TABLE, offsetof(TaskConfig, rename_tables)},
	    {"rename.columns", RENAME_ON_COLUMN,
	     offsetof(TaskConfig, rename_columns)},
	};

	for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++)
	{
		const StrMap *map =
		    (const StrMap *) (const void *) ((const char *) cfg + maps[m].off);

		for (int i = 0; i < map->keys.count; i++)
			if (!add_from_config(r, cfg, maps[m].key, maps[m].on,
			                     map->keys.items[i], map->values.items[i],
			                     map->line != NULL ? map->line[i] : 0, err))
				return false;
	}
	for (int i = 0; i < cfg->remove_columns.count; i++)
		if (!add_from_config(r, cfg, "remove_columns", RENAME_ON_COLUMN,
		                     cfg->remove_columns.items[i], NULL, 0, err))
			return false;
	for (int i = 0; i < cfg->transformations.count; i++)
		if (!add_transformation(r, cfg->transformations.items[i], err))
			return false;
	return true;
}

static bool
part_match(PatternSyntax syntax, const char *pat, const char *text)
{
	if (syntax == PATTERN_LIKE)
		return mapping_like(pat, text);
	return strcmp(pat, text) == 0;
}

/* How messages name the object a rule acts on. */
static void
object_name(char *buf, size_t cap, RenameOn on, const char *schema,
            const char *table, const char *column)
{
	if (on == RENAME_ON_SCHEMA)
		snprintf(buf, cap, "schema %s", schema);
	else if (on == RENAME_ON_TABLE)
		snprintf(buf, cap, "table %s.%s", schema, table);
	else
		snprintf(buf, cap, "column %s of table %s.%s", column, schema, table);
}

/*
 * The one rule of r acting on the object, or -1 when none does. Fails when
 * two do, naming both.
 */
static bool
find_rule(const Renames *r, RenameOn on, const char *schema, const char *table,
          const char *column, int *found, Error *err)
{
	*found = -1;
	for (int i = 0; i < r->n; i++)
	{
		const RenameRule *x = &r->rules[i];

		if (x->on != on || !part_match(x->syntax, x->schema, schema) ||
		    (x->table != NULL && !part_match(x->syntax, x->table, table)) ||
		    (x->column != NULL && !part_match(x->syntax, x->column, column)))
			continue;
		if (*found >= 0)
		{
			char what[ERR_MSG_MAX / 2];

			object_name(what, sizeof(what), on, schema, table, column);
			err_set(err, ERR_CONFIG, "%s: %s is named by two rules", x->where,
			        what);
			return err_hint(err,
			                "the other is at %s; one rule may act on "
			                "one object",
			                r->rules[*found].where);
		}
		*found = i;
	}
	return true;
}

static bool
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static bool
has_suffix(const char *s, const char *p)
{
	size_t n = strlen(s), m = strlen(p);

	return n >= m && strcmp(s + n - m, p) == 0;
}

/* name after rule x (malloc'd; NULL out of memory). */
static char *
apply_action(const RenameRule *x, const char *name)
{
	const char *v = x->value != NULL ? x->value : "";
	const char *old = x->old_value != NULL ? x->old_value : "";
	size_t n = strlen(name);
	char *out = malloc(n + strlen(v) + 1);

	if (out == NULL)
		return NULL;
	switch (x->action)
	{
		case RENAME_TO:
			free(out);
			return strdup(v);
		case RENAME_LOWER:
		case RENAME_UPPER:
			for (size_t i = 0; i <= n; i++)
				out[i] = (char) (x->action == RENAME_LOWER
				                     ? tolower((unsigned char) name[i])
				                     : toupper((unsigned char) name[i]));
			break;
		case RENAME_ADD_PREFIX:
			snprintf(out, n + strlen(v) + 1, "%s%s", v, name);
			break;
		case RENAME_ADD_SUFFIX:
			snprintf(out, n + strlen(v) + 1, "%s%s", name, v);
			break;
		case RENAME_REMOVE_PREFIX:
			snprintf(out, n + 1, "%s",
			         has_prefix(name, v) ? name + strlen(v) : name);
			break;
		case RENAME_REMOVE_SUFFIX:
			snprintf(out, n + 1, "%.*s",
			         (int) (has_suffix(name, v) ? n - strlen(v) : n), name);
			break;
		case RENAME_REPLACE_PREFIX:
			if (has_prefix(name, old))
				snprintf(out, n + strlen(v) + 1, "%s%s", v, name + strlen(old));
			else
				snprintf(out, n + 1, "%s", name);
			break;
		case RENAME_REPLACE_SUFFIX:
			if (has_suffix(name, old))
				snprintf(out, n + strlen(v) + 1, "%.*s%s",
				         (int) (n - strlen(old)), name, v);
			else
				snprintf(out, n + 1, "%s", name);
			break;
		case RENAME_REMOVE:
		default:
			snprintf(out, n + 1, "%s", name);
			break;
	}
	return out;
}

/* *name after the rule acting on the object, if one does. */
static bool
rename_one(const Renames *r, RenameOn on, const char *schema, const char *table,
           const char *column, bool *used, char **name, int *rule, Error *err)
{
	char *out;

	if (!find_rule(r, on, schema, table, column, rule, err))
		return false;
	if (*rule < 0)
		return true;
	if (used != NULL)
		used[*rule] = true;
	if (r->rules[*rule].action == RENAME_REMOVE)
		return true;
	if ((out = apply_action(&r->rules[*rule], *name)) == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	if (out[0] == '\0')
	{
		char what[ERR_MSG_MAX / 2];

		free(out);
		object_name(what, sizeof(what), on, schema, table, column);
		return err_set(err, ERR_CONFIG, "%s: leaves %s without a name",
		               r->rules[*rule].where, what);
	}
	free(*name);
	*name = out;
	return true;
}

/* Appends ident to qname double-quoted, quotes doubled. */
static void
quote_into(char *out, size_t *len, const char *ident)
{
	out[(*len)++] = '"';
	for (const char *p = ident; *p; p++)
	{
		if (*p == '"')
			out[(*len)++] = '"';
		out[(*len)++] = *p;
	}
	out[(*len)++] = '"';
	out[*len] = '\0';
}

static char *
quoted_pair(const char *schema, const char *name)
{
	char *out = malloc(2 * (strlen(schema) + strlen(name)) + 6);
	size_t len = 0;

	if (out == NULL)
		return NULL;
	quote_into(out, &len, schema);
	out[len++] = '.';
	quote_into(out, &len, name);
	return out;
}

bool
rename_table(const Renames *r, const char *schema, const char *name,
             char *const *cols, int ncols, bool *used, RenamedTable *out,
             Error *err)
{
	int rule;

	memset(out, 0, sizeof(*out));
	out->schema = strdup(schema);
	out->name = strdup(name);
	out->cols = calloc((size_t) ncols + 1, sizeof(char *));
	out->col_rule = calloc((size_t) ncols + 1, sizeof(int));
	if (out->schema == NULL || out->name == NULL || out->cols == NULL ||
	    out->col_rule == NULL)
		goto oom;
	out->ncols = ncols;
	if (!rename_one(r, RENAME_ON_SCHEMA, schema, NULL, NULL, used, &out->schema,
	                &rule, err) ||
	    !rename_one(r, RENAME_ON_TABLE, schema, name, NULL, used, &out->name,
	                &rule, err))
		goto fail;
	if (rule >= 0 && r->rules[rule].to_schema != NULL)
	{
		free(out->schema);
		if ((out->schema = strdup(r->rules[rule].to_schema)) == NULL)
			goto oom;
	}
	for (int c = 0; c < ncols; c++)
	{
		if ((out->cols[c] = strdup(cols[c])) == NULL)
			goto oom;
		if (!rename_one(r, RENAME_ON_COLUMN, schema, name, cols[c], used,
		                &out->cols[c], &rule, err))
			goto fail;
		out->col_rule[c] = rule;
		if (rule >= 0 && r->rules[rule].action == RENAME_REMOVE)
		{
			free(out->cols[c]);
			out->cols[c] = NULL;
		}
		if (out->cols[c] == NULL || strcmp(out->cols[c], cols[c]) != 0)
			out->renamed = true;
		for (int d = 0; d < c && out->cols[c] != NULL; d++)
			if (out->cols[d] != NULL && strcmp(out->cols[d], out->cols[c]) == 0)
			{
				err_set(err, ERR_CONFIG,
				        "columns %s and %s of table %s.%s would both be column "
				        "%s on the target",
				        cols[d], cols[c], schema, name, out->cols[c]);
				err_hint(err, "give each a name of its own in rename.columns "
				              "or the table-mapping file");
				goto fail;
			}
	}
	if (strcmp(out->schema, schema) != 0 || strcmp(out->name, name) != 0)
		out->renamed = true;
	if ((out->qname = quoted_pair(out->schema, out->name)) == NULL)
		goto oom;
	return true;
oom:
	err_set(err, ERR_INTERNAL, "out of memory");
fail:
	rename_table_free(out);
	return false;
}

void
rename_table_free(RenamedTable *t)
{
	if (t == NULL)
		return;
	for (int c = 0; t->cols != NULL && c < t->ncols; c++)
		free(t->cols[c]);
	free(t->cols);
	free(t->col_rule);
	free(t->schema);
	free(t->name);
	free(t->qname);
	memset(t, 0, sizeof(*t));
}

bool
rename_check_used(const Renames *r, const bool *used, Error *err)
{
	for (int i = 0; i < r->n; i++)
	{
		const RenameRule *x = &r->rules[i];
		char what[ERR_MSG_MAX / 2];

		if (used[i] || x->syntax != PATTERN_EXACT)
			continue;
		object_name(what, sizeof(what), x->on, x->schema, x->table, x->column);
		err_set(err, ERR_CONFIG, "%s: %s is not among the task's tables",
		        x->where, what);
		return err_hint(err, "check the name's spelling and case, and that "
		                     "tables.include selects its table");
	}
	return true;
}

const char *
rename_action_name(RenameAction a)
{
	switch (a)
	{
		case RENAME_TO:
			return "rename";
		case RENAME_REMOVE:
			return "remove-column";
		case RENAME_LOWER:
			return "convert-lowercase";
		case RENAME_UPPER:
			return "convert-uppercase";
		case RENAME_ADD_PREFIX:
			return "add-prefix";
		case RENAME_REMOVE_PREFIX:
			return "remove-prefix";
		case RENAME_REPLACE_PREFIX:
			return "replace-prefix";
		case RENAME_ADD_SUFFIX:
			return "add-suffix";
		case RENAME_REMOVE_SUFFIX:
			return "remove-suffix";
		case RENAME_REPLACE_SUFFIX:
			return "replace-suffix";
	}
	return "?";
}
