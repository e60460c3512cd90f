/*
 * shard: the routing rules of several targets (shard.h). Builds them from
 * the task file once, answers for one key without allocating, and keeps
 * the lookup table's keys in an open-addressing hash table capped at
 * SHARD_LOOKUP_MAX. Must never read anything but what it is handed.
 */
#include "route/shard.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/md5.h"
#include "route/mapping.h"

/* a value of shard.values: the key's text and its target */
typedef struct ShardValue
{
	char *text; /* owned */
	int target;
} ShardValue;

/* a bound of shard.bounds: low <= k < high; has_* false for unbounded */
typedef struct ShardBound
{
	int64_t low, high;
	bool has_low, has_high;
	int target;
} ShardBound;

/* a rule of shard.tables */
typedef struct ShardRule
{
	TablePattern pattern; /* owned */
	ShardTableKind kind;
	char *column; /* SHARD_TABLE_KEYED; owned */
	int target;   /* SHARD_TABLE_ONE */
} ShardRule;

typedef struct LookupSlot
{
	char *key; /* owned; NULL for an empty slot */
	size_t len;
	int target;
} LookupSlot;

struct ShardSpec
{
	ShardMethod method;
	int n;
	const char **names; /* views into the TaskConfig's copies below */
	char **name_copy;   /* owned */
	char **uri_copy;    /* owned */
	char *key;          /* shard.key; owned */
	ShardValue *values; /* sorted by text; owned */
	int nvalues;
	ShardBound *bounds; /* sorted by low; owned */
	int nbounds;
	ShardRule *rules; /* in the file's order; owned */
	int nrules;
	char *lookup_schema, *lookup_table, *lookup_key, *lookup_target; /* owned */
	LookupSlot *slots; /* owned; a power of two of them, or none */
	size_t nslots;
	size_t nlookup;
};

/* ---- messages ---- */

/* Fills err as "FILE:LINE: key KEY: " followed by fmt; returns false. */
static bool fail_at(Error *err, const TaskConfig *cfg, int line,
                    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool
fail_at(Error *err, const TaskConfig *cfg, int line, const char *key,
        const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		return err_set(err, ERR_CONFIG, "%s:%d: key %s: %s",
		               cfg->path != NULL ? cfg->path : "task file", line, key,
		               msg);
	return err_set(err, ERR_CONFIG, "%s: key %s: %s",
	               cfg->path != NULL ? cfg->path : "task file", key, msg);
}

static bool
out_of_memory(Error *err)
{
	return err_set(err, ERR_INTERNAL, "out of memory");
}

/* ---- targets ---- */

static bool
valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SHARD_NAME_MAX || isdigit((unsigned char) name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char) name[i]) ||
		      isdigit((unsigned char) name[i]) || name[i] == '_'))
			return false;
	return true;
}

static int
find_target(const ShardSpec *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return i;
	return -1;
}

static bool
build_targets(ShardSpec *s, const TaskConfig *cfg, Error *err)
{
	const StrMap *t = &cfg->targets;

	s->n = t->keys.count;
	s->names = calloc((size_t) s->n, sizeof(*s->names));
	s->name_copy = calloc((size_t) s->n, sizeof(*s->name_copy));
	s->uri_copy = calloc((size_t) s->n, sizeof(*s->uri_copy));
	if (s->names == NULL || s->name_copy == NULL || s->uri_copy == NULL)
		return out_of_memory(err);
	for (int i = 0; i < s->n; i++)
	{
		const char *name = t->keys.items[i];
		const char *uri = t->values.items[i];

		if (!valid_name(name))
		{
			fail_at(err, cfg, t->line[i], "targets",
			        "invalid target name \"%.*s\"", SHARD_NAME_MAX + 8, name);
			return err_hint(err,
			                "a target name is up to %d lower-case "
			                "letters, digits and underscores, not "
			                "starting with a digit",
			                SHARD_NAME_MAX);
		}
		if (uri[0] == '\0')
			return fail_at(err, cfg, t->line[i], "targets",
			               "target %s has no connection string", name);
		/* the same string twice is the same database; two strings that
		   reach one database are found once pgtide connects */
		for (int j = 0; j < i; j++)
			if (strcmp(t->values.items[j], uri) == 0)
				return fail_at(err, cfg, t->line[i], "targets",
				               "targets %s and %s have the same connection "
				               "string",
				               t->keys.items[j], name);
		if (cfg->source_uri != NULL && strcmp(cfg->source_uri, uri) == 0)
			return fail_at(err, cfg, t->line[i], "targets",
			               "target %s has the source's connection string",
			               name);
		s->name_copy[i] = strdup(name);
		s->uri_copy[i] = strdup(uri);
		if (s->name_copy[i] == NULL || s->uri_copy[i] == NULL)
			return out_of_memory(err);
		s->names[i] = s->name_copy[i];
	}
	return true;
}

/*
 * A map of shard.values or shard.bounds names each target once and only
 * targets: a target left out would silently get no rows of any keyed table.
 */
static bool
check_map_targets(const ShardSpec *s, const TaskConfig *cfg, const StrMap *m,
                  const char *key, Error *err)
{
	for (int i = 0; i < m->keys.count; i++)
		if (find_target(s, m->keys.items[i]) < 0)
		{
			fail_at(err, cfg, m->line[i], key, "\"%.*s\" is not a target",
			        SHARD_NAME_MAX + 8, m->keys.items[i]);
			return err_hint(err, "name the targets of key targets");
		}
	for (int t = 0; t < s->n; t++)
	{
		bool found = false;

		for (int i = 0; i < m->keys.count && !found; i++)
			found = strcmp(m->keys.items[i], s->names[t]) == 0;
		if (!found)
		{
			fail_at(err, cfg, m->line[0], key, "target %s has no entry",
			        s->names[t]);
			return err_hint(err, "every target gets its %s",
			                strcmp(key, "shard.values") == 0 ? "values"
			                                                 : "bounds");
		}
	}
	return true;
}

/* ---- list ---- */

static int
value_cmp(const void *a, const void *b)
{
	return strcmp(((const ShardValue *) a)->text,
	              ((const ShardValue *) b)->text);
}

static bool
build_values(ShardSpec *s, const TaskConfig *cfg, Error *err)
{
	const StrMap *m = &cfg->shard_values;
	size_t cap = 0;

	if (!check_map_targets(s, cfg, m, "shard.values", err))
		return false;
	for (int i = 0; i < m->keys.count; i++)
		cap += 1 + strlen(m->values.items[i]) / 2 + 1;
	s->values = calloc(cap, sizeof(*s->values));
	if (s->values == NULL)
		return out_of_memory(err);
	for (int i = 0; i < m->keys.count; i++)
	{
		const char *p = m->values.items[i];
		int target = find_target(s, m->keys.items[i]);

		for (;;)
		{
			const char *end = strchr(p, ',');
			const char *stop = end != NULL ? end : p + strlen(p);
			const char *a = p, *b = stop;

			while (a < b && isspace((unsigned char) *a))
				a++;
			while (b > a && isspace((unsigned char) b[-1]))
				b--;
			if (a == b)
				return fail_at(err, cfg, m->line[i], "shard.values",
				               "target %s has an empty value",
				               m->keys.items[i]);
			s->values[s->nvalues].text = strndup(a, (size_t) (b - a));
			if (s->values[s->nvalues].text == NULL)
				return out_of_memory(err);
			s->values[s->nvalues++].target = target;
			if (end == NULL)
				break;
			p = end + 1;
		}
	}
	qsort(s->values, (size_t) s->nvalues, sizeof(*s->values), value_cmp);
	for (int i = 1; i < s->nvalues; i++)
		if (strcmp(s->values[i - 1].text, s->values[i].text) == 0)
		{
			const ShardValue *a = &s->values[i - 1], *b = &s->values[i];

			if (a->target == b->target)
				return fail_at(err, cfg, m->line[0], "shard.values",
				               "value \"%.64s\" is given twice for target "
				               "%s",
				               a->text, s->names[a->target]);
			return fail_at(
			    err, cfg, m->line[0], "shard.values",
			    "value \"%.64s\" is given to targets %s and %s", a->text,
			    s->names[a->target < b->target ? a->target : b->target],
			    s->names[a->target < b->target ? b->target : a->target]);
		}
	return true;
}

/* ---- range ---- */

/* Parses text[0..len) (spaces around it allowed) as an int64. */
static bool
parse_int64(const char *text, size_t len, int64_t *out)
{
	char buf[32];
	char *end;

	while (len > 0 && isspace((unsigned char) *text))
		text++, len--;
	while (len > 0 && isspace((unsigned char) text[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (!(isdigit((unsigned char) buf[0]) ||
	      ((buf[0] == '-' || buf[0] == '+') &&
	       isdigit((unsigned char) buf[1]))))
		return false;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno == 0 && *end == '\0';
}

static bool
is_blank(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char) text[i]))
			return false;
	return true;
}

static int
bound_cmp(const void *a, const void *b)
{
	const ShardBound *x = a, *y = b;

	/* an unbounded low sorts first */
	if (!x->has_low || !y->has_low)
		return (int) x->has_low - (int) y->has_low;
	return x->low < y->low ? -1 : x->low > y->low;
}

static bool
build_bounds(ShardSpec *s, const TaskConfig *cfg, Error *err)
{
	const StrMap *m = &cfg->shard_bounds;

	if (!check_map_targets(s, cfg, m, "shard.bounds", err))
		return false;
	s->bounds = calloc((size_t) m->keys.count, sizeof(*s->bounds));
	if (s->bounds == NULL)
		return out_of_memory(err);
	for (int i = 0; i < m->keys.count; i++)
	{
		const char *text = m->values.items[i];
		const char *dots = strstr(text, "..");
		ShardBound *b = &s->bounds[s->nbounds];
		size_t low_len, high_len;

		b->target = find_target(s, m->keys.items[i]);
		if (dots == NULL)
			goto bad;
		low_len = (size_t) (dots - text);
		high_len = strlen(dots + 2);
		b->has_low = !is_blank(text, low_len);
		b->has_high = !is_blank(dots + 2, high_len);
		if ((b->has_low && !parse_int64(text, low_len, &b->low)) ||
		    (b->has_high && !parse_int64(dots + 2, high_len, &b->high)))
			goto bad;
		if (b->has_low && b->has_high && b->low >= b->high)
			return fail_at(err, cfg, m->line[i], "shard.bounds",
			               "target %s: the low bound is not below the high "
			               "bound",
			               m->keys.items[i]);
		s->nbounds++;
		continue;
	bad:
		fail_at(err, cfg, m->line[i], "shard.bounds",
		        "target %s: expected LOW..HIGH, got \"%.64s\"",
		        m->keys.items[i], text);
		return err_hint(err, "bounds are 64-bit integers, LOW <= key < HIGH; "
		                     "leave a side empty for no bound (..100, 100..)");
	}
	qsort(s->bounds, (size_t) s->nbounds, sizeof(*s->bounds), bound_cmp);
	for (int i = 1; i < s->nbounds; i++)
	{
		const ShardBound *a = &s->bounds[i - 1], *b = &s->bounds[i];

		/* sorted by low: a overlaps b when a reaches past b's low */
		if (!a->has_high || !b->has_low || a->high > b->low)
			return fail_at(
			    err, cfg, m->line[0], "shard.bounds",
			    "the bounds of targets %s and %s overlap",
			    s->names[a->target < b->target ? a->target : b->target],
			    s->names[a->target < b->target ? b->target : a->target]);
	}
	return true;
}

/* ---- lookup ---- */

static bool
ident_char(char c)
{
	return islower((unsigned char) c) || isdigit((unsigned char) c) ||
	       c == '_' || c == '$';
}

/* Takes one unquoted lower-case identifier from *p into *out (owned). */
static bool
take_ident(const char **p, char **out)
{
	const char *a = *p;

	while (isspace((unsigned char) *a))
		a++;
	*p = a;
	while (ident_char(**p))
		(*p)++;
	if (*p == a || isdigit((unsigned char) *a))
		return false;
	*out = strndup(a, (size_t) (*p - a));
	while (isspace((unsigned char) **p))
		(*p)++;
	return *out != NULL;
}

static bool
build_lookup(ShardSpec *s, const TaskConfig *cfg, Error *err)
{
	const char *p = cfg->shard_lookup;

	if (p == NULL)
	{
		fail_at(err, cfg, 0, "shard.method",
		        "method lookup needs shard.lookup");
		return err_hint(err, "name the table on the source that maps a key "
		                     "to a target: shard.lookup: "
		                     "schema.table(key_column, target_column)");
	}
	if (!take_ident(&p, &s->lookup_schema) || *p++ != '.' ||
	    !take_ident(&p, &s->lookup_table) || *p++ != '(' ||
	    !take_ident(&p, &s->lookup_key) || *p++ != ',' ||
	    !take_ident(&p, &s->lookup_target) || *p++ != ')' || *p != '\0')
	{
		fail_at(err, cfg, 0, "shard.lookup",
		        "expected "
		        "schema.table(key_column, "
		        "target_column), got \"%.64s\"",
		        cfg->shard_lookup);
		return err_hint(err, "names are unquoted and lower case");
	}
	return true;
}

static LookupSlot *
lookup_find(const ShardSpec *s, const char *key, size_t len)
{
	uint64_t h;
	size_t i;

	if (s->nslots == 0)
		return NULL;
	h = 1469598103934665603ULL;
	for (size_t k = 0; k < len; k++)
		h = (h ^ (unsigned char) key[k]) * 1099511628211ULL;
	for (i = (size_t) h & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1))
	{
		LookupSlot *slot = &s->slots[i];

		if (slot->key == NULL ||
		    (slot->len == len && memcmp(slot->key, key, len) == 0))
			return slot;
	}
}

/* Doubles the table (kept at most half full, so a probe always ends). */
static bool
lookup_grow(ShardSpec *s, Error *err)
{
	size_t old_n = s->nslots;
	LookupSlot *old = s->slots;
	size_t n = old_n == 0 ? 1024 : old_n * 2;

	s->slots = calloc(n, sizeof(*s->slots));
	if (s->slots == NULL)
	{
		s->slots = old;
		return out_of_memory(err);
	}
	s->nslots = n;
	for (size_t i = 0; i < old_n; i++)
		if (old[i].key != NULL)
			*lookup_find(s, old[i].key, old[i].len) = old[i];
	free(old);
	return true;
}

bool
shard_lookup_put(ShardSpec *s, const char *key, size_t len,
                 const char *target_name, Error *err)
{
	int target = find_target(s, target_name);
	LookupSlot *slot;

	if (target < 0)
		return err_set(err, ERR_CONFIG,
		               "lookup table %s.%s names \"%.*s\", which is not a "
		               "target",
		               s->lookup_schema != NULL ? s->lookup_schema : "?",
		               s->lookup_table != NULL ? s->lookup_table : "?",
		               SHARD_NAME_MAX + 8, target_name);
	slot = lookup_find(s, key, len);
	if (slot != NULL && slot->key != NULL)
	{
		slot->target = target;
		return true;
	}
	if (s->nlookup >= SHARD_LOOKUP_MAX)
		return err_set(err, ERR_INTERNAL,
		               "the lookup table holds more than %d keys",
		               SHARD_LOOKUP_MAX);
	if ((s->nlookup + 1) * 2 > s->nslots && !lookup_grow(s, err))
		return false;
	slot = lookup_find(s, key, len);
	slot->key = malloc(len + 1);
	if (slot->key == NULL)
		return out_of_memory(err);
	memcpy(slot->key, key, len);
	slot->key[len] = '\0';
	slot->len = len;
	slot->target = target;
	s->nlookup++;
	return true;
}

bool
shard_lookup_has(const ShardSpec *s, const char *key, size_t len, int *target)
{
	const LookupSlot *slot = lookup_find(s, key, len);

	if (slot == NULL || slot->key == NULL)
		return false;
	*target = slot->target;
	return true;
}

int
shard_spec_target_index(const ShardSpec *s, const char *name)
{
	return find_target(s, name);
}

bool
shard_spec_lookup_table(const ShardSpec *s, const char **schema,
                        const char **table, const char **key_column,
                        const char **target_column)
{
	if (s->method != SHARD_LOOKUP)
		return false;
	*schema = s->lookup_schema;
	*table = s->lookup_table;
	*key_column = s->lookup_key;
	*target_column = s->lookup_target;
	return true;
}

/* ---- shard.tables ---- */

static bool
build_rules(ShardSpec *s, const TaskConfig *cfg, Error *err)
{
	const StrMap *m = &cfg->shard_tables;

	s->rules = calloc((size_t) m->keys.count + 1, sizeof(*s->rules));
	if (s->rules == NULL)
		return out_of_memory(err);
	for (int i = 0; i < m->keys.count; i++)
	{
		ShardRule *r = &s->rules[i];
		const char *v = m->values.items[i];
		Error perr = ERR_INIT;

		if (!mapping_parse_pattern(m->keys.items[i], &r->pattern, &perr))
		{
			fail_at(err, cfg, m->line[i], "shard.tables", "%s", perr.message);
			return err_hint(err, "%s", perr.hint);
		}
		s->nrules++;
		while (isspace((unsigned char) *v))
			v++;
		if (strcmp(v, "all") == 0)
		{
			r->kind = SHARD_TABLE_ALL;
			continue;
		}
		if (strncmp(v, "key ", 4) == 0)
		{
			r->kind = SHARD_TABLE_KEYED;
			v += 4;
			while (isspace((unsigned char) *v))
				v++;
			r->column = strdup(v);
			if (r->column == NULL)
				return out_of_memory(err);
			if (r->column[0] != '\0' && strchr(r->column, ' ') == NULL)
				continue;
		}
		else if (strncmp(v, "target ", 7) == 0)
		{
			const char *name = v + 7;

			while (isspace((unsigned char) *name))
				name++;
			r->kind = SHARD_TABLE_ONE;
			r->target = find_target(s, name);
			if (r->target >= 0)
				continue;
			fail_at(err, cfg, m->line[i], "shard.tables",
			        "table %s: \"%.*s\" is not a target", r->pattern.text,
			        SHARD_NAME_MAX + 8, name);
			return err_hint(err, "name one of the targets of key targets");
		}
		fail_at(err, cfg, m->line[i], "shard.tables",
		        "table %s: expected \"key COLUMN\", \"target NAME\" or "
		        "\"all\", got \"%.64s\"",
		        r->pattern.text, m->values.items[i]);
		return false;
	}
	return true;
}

/* ---- the spec ---- */

bool
shard_spec_new(const TaskConfig *cfg, ShardSpec **out, Error *err)
{
	ShardSpec *s;
	bool listy = cfg->shard_values.keys.count > 0;
	bool rangy = cfg->shard_bounds.keys.count > 0;

	*out = NULL;
	if (cfg->targets.keys.count == 0)
		return true;
	if (cfg->shard_key == NULL || cfg->shard_key[0] == '\0')
	{
		fail_at(err, cfg, cfg->targets.line[0], "targets",
		        "several targets need shard.key");
		return err_hint(err, "name the column that routes a row, e.g. "
		                     "shard: {key: account_id, method: hash}");
	}
	if (cfg->targets.keys.count > SHARD_TARGETS_MAX)
		return fail_at(err, cfg, cfg->targets.line[SHARD_TARGETS_MAX],
		               "targets", "%d targets: a task has at most %d",
		               cfg->targets.keys.count, SHARD_TARGETS_MAX);
	if (cfg->shard_method != SHARD_LIST && listy)
		return fail_at(err, cfg, cfg->shard_values.line[0], "shard.values",
		               "only method list takes values");
	if (cfg->shard_method != SHARD_RANGE && rangy)
		return fail_at(err, cfg, cfg->shard_bounds.line[0], "shard.bounds",
		               "only method range takes bounds");
	if (cfg->shard_method != SHARD_LOOKUP && cfg->shard_lookup != NULL)
		return fail_at(err, cfg, 0, "shard.lookup",
		               "only method lookup takes a lookup table");
	if (cfg->shard_method == SHARD_LIST && !listy)
	{
		fail_at(err, cfg, 0, "shard.method", "method list needs shard.values");
		return err_hint(err,
		                "give each target its key values: "
		                "shard.values: {%s: \"1, 2, 3\", ...}",
		                cfg->targets.keys.items[0]);
	}
	if (cfg->shard_method == SHARD_RANGE && !rangy)
	{
		fail_at(err, cfg, 0, "shard.method", "method range needs shard.bounds");
		return err_hint(err,
		                "give each target its bounds: "
		                "shard.bounds: {%s: \"..1000\", ...}",
		                cfg->targets.keys.items[0]);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return out_of_memory(err);
	s->method = cfg->shard_method;
	s->key = strdup(cfg->shard_key);
	if (s->key == NULL)
	{
		shard_spec_free(s);
		return out_of_memory(err);
	}
	if (!build_targets(s, cfg, err) ||
	    (s->method == SHARD_LIST && !build_values(s, cfg, err)) ||
	    (s->method == SHARD_RANGE && !build_bounds(s, cfg, err)) ||
	    (s->method == SHARD_LOOKUP && !build_lookup(s, cfg, err)) ||
	    !build_rules(s, cfg, err))
	{
		shard_spec_free(s);
		return false;
	}
	*out = s;
	return true;
}

void
shard_spec_free(ShardSpec *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < s->n; i++)
	{
		if (s->name_copy != NULL)
			free(s->name_copy[i]);
		if (s->uri_copy != NULL)
			free(s->uri_copy[i]);
	}
	free(s->names);
	free(s->name_copy);
	free(s->uri_copy);
	free(s->key);
	for (int i = 0; i < s->nvalues; i++)
		free(s->values[i].text);
	free(s->values);
	free(s->bounds);
	for (int i = 0; i < s->nrules; i++)
	{
		mapping_pattern_free(&s->rules[i].pattern);
		free(s->rules[i].column);
	}
	free(s->rules);
	free(s->lookup_schema);
	free(s->lookup_table);
	free(s->lookup_key);
	free(s->lookup_target);
	for (size_t i = 0; i < s->nslots; i++)
		free(s->slots[i].key);
	free(s->slots);
	free(s);
}

int
shard_spec_ntargets(const ShardSpec *s)
{
	return s->n;
}

const char *
shard_spec_target_name(const ShardSpec *s, int i)
{
	return s->names[i];
}

const char *
shard_spec_target_uri(const ShardSpec *s, int i)
{
	return s->uri_copy[i];
}

/* ---- tables ---- */

static bool
has_column(const char *const *columns, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(columns[i], name) == 0)
			return true;
	return false;
}

bool
shard_table_route(const ShardSpec *s, const char *schema, const char *table,
                  const char *const *columns, int ncolumns,
                  ShardTableRoute *out, Error *err)
{
	memset(out, 0, sizeof(*out));
	if (s->method == SHARD_LOOKUP && strcmp(schema, s->lookup_schema) == 0 &&
	    strcmp(table, s->lookup_table) == 0)
	{
		out->kind = SHARD_TABLE_ALL;
		out->rule = "shard.lookup";
		return true;
	}
	for (int i = 0; i < s->nrules; i++)
	{
		const ShardRule *r = &s->rules[i];

		if (!mapping_pattern_match(&r->pattern, schema, table))
			continue;
		out->kind = r->kind;
		out->rule = r->pattern.text;
		out->target = r->target;
		out->key = r->column;
		if (r->kind == SHARD_TABLE_KEYED &&
		    !has_column(columns, ncolumns, r->column))
		{
			err_set(err, ERR_CONFIG,
			        "table %s.%s has no column %s, which rule %s of "
			        "shard.tables routes it by",
			        schema, table, r->column, r->pattern.text);
			return err_hint(err, "name one of the table's columns, or route "
			                     "it with \"target NAME\" or \"all\"");
		}
		return true;
	}
	if (has_column(columns, ncolumns, s->key))
	{
		out->kind = SHARD_TABLE_KEYED;
		out->key = s->key;
	}
	else
		out->kind = SHARD_TABLE_ALL;
	return true;
}

bool
shard_key_type_check(const ShardSpec *s, const char *type_name, Error *err)
{
	static const char *const integers[] = {"smallint", "integer", "bigint",
	                                       NULL};
	static const char *const others[] = {"text", "uuid", "character varying",
	                                     NULL};

	for (int i = 0; integers[i] != NULL; i++)
		if (strcmp(type_name, integers[i]) == 0)
			return true;
	if (s->method != SHARD_RANGE)
		for (int i = 0; others[i] != NULL; i++)
			if (strncmp(type_name, others[i], strlen(others[i])) == 0 &&
			    (type_name[strlen(others[i])] == '\0' ||
			     type_name[strlen(others[i])] == '('))
				return true;
	err_set(err, ERR_CONFIG, "a key of type %s cannot be routed by %s",
	        type_name, s->method == SHARD_RANGE ? "range" : "its text form");
	return err_hint(err, s->method == SHARD_RANGE
	                         ? "range routes smallint, integer and bigint keys"
	                         : "keys are smallint, integer, bigint, text, "
	                           "character varying or uuid, whose text form "
	                           "is one value's only form");
}

/* ---- routing ---- */

uint32_t
shard_hash(const char *key, size_t len)
{
	uint8_t d[MD5_DIGEST_LEN];

	md5_digest(key, len, d);
	return (uint32_t) d[0] << 24 | (uint32_t) d[1] << 16 |
	       (uint32_t) d[2] << 8 | (uint32_t) d[3];
}

bool
shard_route(const ShardSpec *s, const char *key, size_t len, int *target,
            Error *err)
{
	if (key == NULL)
		return err_set(err, ERR_CONFIG,
		               "a row's key is NULL, which names "
		               "no target");
	switch (s->method)
	{
		case SHARD_HASH:
			*target = (int) (shard_hash(key, len) % (uint32_t) s->n);
			return true;
		case SHARD_LIST:
		{
			int lo = 0, hi = s->nvalues - 1;

			while (lo <= hi)
			{
				int mid = lo + (hi - lo) / 2;
				const char *v = s->values[mid].text;
				size_t vlen = strlen(v);
				int c = memcmp(v, key, vlen < len ? vlen : len);

				if (c == 0)
					c = vlen < len ? -1 : vlen > len;
				if (c == 0)
				{
					*target = s->values[mid].target;
					return true;
				}
				if (c < 0)
					lo = mid + 1;
				else
					hi = mid - 1;
			}
			return err_set(err, ERR_CONFIG,
			               "a row's key is in no target's shard.values");
		}
		case SHARD_RANGE:
		{
			int64_t k;

			if (!parse_int64(key, len, &k))
				return err_set(err, ERR_CONFIG,
				               "a row's key is not a 64-bit integer, which "
				               "shard.bounds needs");
			for (int i = 0; i < s->nbounds; i++)
			{
				const ShardBound *b = &s->bounds[i];

				if ((!b->has_low || k >= b->low) &&
				    (!b->has_high || k < b->high))
				{
					*target = b->target;
					return true;
				}
			}
			return err_set(err, ERR_CONFIG,
			               "a row's key is outside every target's "
			               "shard.bounds");
		}
		case SHARD_LOOKUP:
		{
			const LookupSlot *slot = lookup_find(s, key, len);

			if (slot == NULL || slot->key == NULL)
				return err_set(err, ERR_CONFIG,
				               "a row's key has no row in lookup table "
				               "%s.%s",
				               s->lookup_schema, s->lookup_table);
			*target = slot->target;
			return true;
		}
	}
	return err_set(err, ERR_INTERNAL, "unknown shard method %d",
	               (int) s->method);
}

/* ---- the same rules as SQL on the source ---- */

/* 'text' with each ' doubled (standard_conforming_strings = on) */
static bool
add_literal(Buf *out, const char *text, Error *err)
{
	if (!buf_add_str(out, "'", err))
		return false;
	for (const char *q; (q = strchr(text, '\'')) != NULL; text = q + 1)
		if (!buf_add(out, text, (size_t) (q - text) + 1, err) ||
		    !buf_add_str(out, "'", err))
			return false;
	return buf_add_str(out, text, err) && buf_add_str(out, "'", err);
}

/* an identifier of shard.lookup: lower-case letters, digits, _ and $ only,
 * so double quotes around it are its quoting */
static bool
add_ident(Buf *out, const char *name, Error *err)
{
	return buf_printf(out, err, "\"%s\"", name);
}

/*
 * The hash method's target index of col: docs/sharding.md's expression,
 * written once here. The md5 of the key's UTF-8 bytes, as shard_hash takes
 * them from a session in UTF8: md5(text) would hash the database's own
 * encoding, another target for a non-ASCII key of a LATIN1 database.
 */
static bool
hash_index(const ShardSpec *s, const char *col, Buf *out, Error *err)
{
	return buf_printf(out, err,
	                  "(('x' || lpad(substr(md5(convert_to(%s::text, "
	                  "'UTF8')), 1, 8), 16, '0'))::bit(64)::bigint %% %d)",
	                  col, s->n);
}

bool
shard_sql_hash_index(const ShardSpec *s, const char *qcolumn, Buf *out,
                     Error *err)
{
	if (s->method != SHARD_HASH)
		return err_set(err, ERR_INTERNAL, "not the hash method");
	return hash_index(s, qcolumn, out, err);
}

static bool
target_condition(const ShardSpec *s, int target, const char *col, Buf *out,
                 Error *err)
{
	bool first = true;

	switch (s->method)
	{
		case SHARD_HASH:
			return hash_index(s, col, out, err) &&
			       buf_printf(out, err, " = %d", target);
		case SHARD_LIST:
			if (!buf_printf(out, err, "%s::text IN (", col))
				return false;
			for (int i = 0; i < s->nvalues; i++)
			{
				if (s->values[i].target != target)
					continue;
				if ((!first && !buf_add_str(out, ", ", err)) ||
				    !add_literal(out, s->values[i].text, err))
					return false;
				first = false;
			}
			return buf_add_str(out, ")", err);
		case SHARD_RANGE:
			for (int i = 0; i < s->nbounds; i++)
			{
				const ShardBound *b = &s->bounds[i];

				if (b->target != target)
					continue;
				return buf_printf(out, err, "%s IS NOT NULL", col) &&
				       (!b->has_low ||
				        buf_printf(out, err, " AND %s >= %" PRId64, col,
				                   b->low)) &&
				       (!b->has_high ||
				        buf_printf(out, err, " AND %s < %" PRId64, col,
				                   b->high));
			}
			return buf_add_str(out, "false", err);
		case SHARD_LOOKUP:
			return buf_printf(out, err, "%s::text IN (SELECT ", col) &&
			       add_ident(out, s->lookup_key, err) &&
			       buf_add_str(out, "::text FROM ", err) &&
			       add_ident(out, s->lookup_schema, err) &&
			       buf_add_str(out, ".", err) &&
			       add_ident(out, s->lookup_table, err) &&
			       buf_add_str(out, " WHERE ", err) &&
			       add_ident(out, s->lookup_target, err) &&
			       buf_add_str(out, " = ", err) &&
			       add_literal(out, s->names[target], err) &&
			       buf_add_str(out, ")", err);
	}
	return err_set(err, ERR_INTERNAL, "unknown shard method %d",
	               (int) s->method);
}

bool
shard_sql_condition(const ShardSpec *s, int target, const char *qcolumn,
                    Buf *out, Error *err)
{
	if (target >= 0)
		return target_condition(s, target, qcolumn, out, err);
	/* no target's: NULL, or in no target's condition */
	if (!buf_printf(out, err, "%s IS NULL OR NOT coalesce(", qcolumn))
		return false;
	for (int i = 0; i < s->n; i++)
		if ((i > 0 && !buf_add_str(out, " OR ", err)) ||
		    !buf_add_str(out, "(", err) ||
		    !target_condition(s, i, qcolumn, out, err) ||
		    !buf_add_str(out, ")", err))
			return false;
	return buf_add_str(out, ", false)", err);
}
