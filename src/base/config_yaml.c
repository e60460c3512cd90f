/*
 * config_yaml: the task file, read with libyaml's document API.
 *
 * It owns reading the file (at most CONFIG_FILE_MAX bytes), the YAML
 * document and what can be wrong with it (its syntax, a second document, a
 * duplicate key, a node of the wrong kind, an unknown key), and the walk of
 * the top-level mapping and its sections into keys, each error prefixed
 * "FILE:LINE: key K: ".
 *
 * It is the only file of config that includes <yaml.h>; it also reads a
 * whole file for config_dms.c. It must never check
 * a value itself: scalars go through config_key_apply and list items through
 * config_check_string, so a file accepts what the command line accepts.
 */
#include "base/config.h"
#include "base/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "base/buf.h"

/*
 * A task file is a page of settings; even thousands of table patterns stay
 * far below this. Past it we refuse rather than read an arbitrary file into
 * memory.
 */
#define CONFIG_FILE_MAX ((size_t) 16 * 1024 * 1024)

/* One task-file parse: where messages point and what is being filled. */
typedef struct Loader
{
	const char *name; /* file name for messages */
	const char *data; /* the whole input, for reader-error positions */
	size_t len;
	yaml_document_t *doc; /* the first (only) document */
	TaskConfig *cfg;
} Loader;

/* ---- the task file ---- */

static size_t
node_line(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

/* YAML's null: an empty or ~/null plain scalar. */
static bool
node_is_null(const yaml_node_t *node)
{
	const char *v;
	size_t len;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *) node->data.scalar.value;
	len = node->data.scalar.length;
	return len == 0 || config_text_is(v, len, "~") ||
	       config_text_is(v, len, "null") || config_text_is(v, len, "Null") ||
	       config_text_is(v, len, "NULL");
}

/* What a node is, as the "got ..." part of a message. */
static const char *
describe_node(const yaml_node_t *node, char *buf, size_t cap)
{
	char shown[CONFIG_QUOTED_CAP];

	switch (node->type)
	{
		case YAML_MAPPING_NODE:
			return "a mapping";
		case YAML_SEQUENCE_NODE:
			return "a sequence";
		case YAML_SCALAR_NODE:
			if (node_is_null(node))
				return "no value";
			snprintf(buf, cap, "\"%s\"",
			         config_quote(shown, (const char *) node->data.scalar.value,
			                      node->data.scalar.length));
			return buf;
		case YAML_NO_NODE:
			break;
	}
	return "nothing";
}

/* Prefixes "FILE:LINE: key K: " to the message in err. Returns false. */
static bool
at_key(Error *err, const Loader *ld, const yaml_node_t *node, const KeyDef *key)
{
	return err_prefix(err, "%s:%zu: key %s: ", ld->name, node_line(node),
	                  key->name);
}

/* A node of the wrong kind for key: "expected an integer ..., got a sequence". */
static bool
fail_kind(Error *err, const Loader *ld, const KeyDef *key,
          const yaml_node_t *node)
{
	char got[CONFIG_QUOTED_CAP + 2];

	config_fail_expected(err, key, describe_node(node, got, sizeof(got)));
	return at_key(err, ld, node, key);
}

/*
 * A list key replaces what cfg held (a file sets the list; the command line
 * then appends to it). The new list is built apart and swapped in whole.
 */
static bool
load_list(Loader *ld, const KeyDef *key, yaml_node_t *node, Error *err)
{
	StrList *field = config_list_field(ld->cfg, key->id);
	StrList items = {0};

	if (field == NULL)
		return err_set(err, ERR_INTERNAL, "key %s has no list", key->name);
	if (node->type == YAML_SCALAR_NODE && !node_is_null(node))
	{
		const char *text = (const char *) node->data.scalar.value;
		size_t len = node->data.scalar.length;

		if (!config_check_string(key, text, len, err) ||
		    !config_strlist_append(&items, text, len, err))
			goto fail;
	}
	else if (node->type == YAML_SEQUENCE_NODE)
	{
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top; it++)
		{
			yaml_node_t *item = yaml_document_get_node(ld->doc, *it);

			if (item->type != YAML_SCALAR_NODE || node_is_null(item))
			{
				config_strlist_free(&items);
				return fail_kind(err, ld, key, item);
			}
			if (!config_check_string(key,
			                         (const char *) item->data.scalar.value,
			                         item->data.scalar.length, err) ||
			    !config_strlist_append(&items,
			                           (const char *) item->data.scalar.value,
			                           item->data.scalar.length, err))
			{
				node = item;
				goto fail;
			}
		}
	}
	else
		return fail_kind(err, ld, key, node);
	config_strlist_free(field);
	*field = items;
	return true;

fail:
	config_strlist_free(&items);
	return at_key(err, ld, node, key);
}

/*
 * A map key (rename.tables, filters, targets) replaces what cfg held, as a
 * list does. Its keys are the user's names and its values strings, both
 * checked as strings; a value may be a connection string, so none is echoed.
 */
static bool
load_map(Loader *ld, const KeyDef *key, yaml_node_t *node, Error *err)
{
	StrMap *field = config_map_field(ld->cfg, key->id);
	StrMap items = {0};

	if (field == NULL)
		return err_set(err, ERR_INTERNAL, "key %s has no map", key->name);
	if (node->type != YAML_MAPPING_NODE)
		return fail_kind(err, ld, key, node);
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++)
	{
		yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
		yaml_node_t *bad = k;

		if (k->type != YAML_SCALAR_NODE || node_is_null(k) ||
		    v->type != YAML_SCALAR_NODE || node_is_null(v))
		{
			config_strmap_free(&items);
			return fail_kind(
			    err, ld, key,
			    k->type != YAML_SCALAR_NODE || node_is_null(k) ? k : v);
		}
		if (config_check_string(key, (const char *) k->data.scalar.value,
		                        k->data.scalar.length, err))
			bad = v;
		if (bad == k ||
		    !config_check_string(key, (const char *) v->data.scalar.value,
		                         v->data.scalar.length, err) ||
		    !config_strmap_add(&items, (const char *) k->data.scalar.value,
		                       k->data.scalar.length,
		                       (const char *) v->data.scalar.value,
		                       v->data.scalar.length, (int) node_line(k), err))
		{
			config_strmap_free(&items);
			return at_key(err, ld, bad, key);
		}
	}
	config_strmap_free(field);
	*field = items;
	return true;
}

static bool
load_value(Loader *ld, const KeyDef *key, yaml_node_t *node, Error *err)
{
	if (key->type == CONFIG_KEY_TYPE_LIST)
		return load_list(ld, key, node, err);
	if (key->type == CONFIG_KEY_TYPE_MAP)
		return load_map(ld, key, node, err);
	if (node->type != YAML_SCALAR_NODE || node_is_null(node))
		return fail_kind(err, ld, key, node);
	if (!config_key_apply(ld->cfg, key, (const char *) node->data.scalar.value,
	                      node->data.scalar.length, err))
		return at_key(err, ld, node, key);
	return true;
}

static bool
fail_unknown_key(Loader *ld, const char *section, const yaml_node_t *knode,
                 Error *err)
{
	const char *text = (const char *) knode->data.scalar.value;
	size_t len = knode->data.scalar.length;
	const KeyDef *elsewhere = config_find_misplaced(section, text, len);
	char shown[CONFIG_QUOTED_CAP];
	char valid[CONFIG_KEY_LIST_CAP];
	char did_you_mean[CONFIG_KEY_LIST_CAP] = "";

	if (elsewhere != NULL)
		snprintf(did_you_mean, sizeof(did_you_mean), "did you mean %s? ",
		         elsewhere->name);
	config_list_keys(section, valid, sizeof(valid));
	err_set(err, ERR_CONFIG, "%s:%zu: unknown key \"%s%s%s\"", ld->name,
	        node_line(knode), section == NULL ? "" : section,
	        section == NULL ? "" : ".", config_quote(shown, text, len));
	if (section == NULL)
		return err_hint(err, "%svalid top-level keys: %s", did_you_mean, valid);
	return err_hint(err, "%svalid keys in %s: %s", did_you_mean, section,
	                valid);
}

/*
 * Walks one mapping: the top level (section NULL) or a section ("copy").
 * Sections hold only scalar and list keys, so this recurses one level at
 * most, and YAML aliases cannot make it loop.
 */
static bool
load_mapping(Loader *ld, const char *section, yaml_node_t *map, Error *err)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	yaml_node_pair_t *top = map->data.mapping.pairs.top;

	for (yaml_node_pair_t *pair = start; pair < top; pair++)
	{
		yaml_node_t *knode = yaml_document_get_node(ld->doc, pair->key);
		yaml_node_t *vnode = yaml_document_get_node(ld->doc, pair->value);
		char shown[CONFIG_QUOTED_CAP];
		char got[CONFIG_QUOTED_CAP + 2];
		const char *text;
		size_t len;
		const KeyDef *key;

		if (knode->type != YAML_SCALAR_NODE)
			return err_set(err, ERR_CONFIG,
			               "%s:%zu: expected a key name, got %s", ld->name,
			               node_line(knode),
			               describe_node(knode, got, sizeof(got)));
		text = (const char *) knode->data.scalar.value;
		len = knode->data.scalar.length;

		/* libyaml's loader keeps duplicate keys; a second value would
		 * silently win, so it is an error here. */
		for (yaml_node_pair_t *prev = start; prev < pair; prev++)
		{
			yaml_node_t *pk = yaml_document_get_node(ld->doc, prev->key);

			if (pk->type == YAML_SCALAR_NODE && pk->data.scalar.length == len &&
			    memcmp(pk->data.scalar.value, text, len) == 0)
				return err_set(err, ERR_CONFIG,
				               "%s:%zu: duplicate key \"%s%s%s\", first given "
				               "at line %zu",
				               ld->name, node_line(knode),
				               section == NULL ? "" : section,
				               section == NULL ? "" : ".",
				               config_quote(shown, text, len), node_line(pk));
		}

		if (section == NULL && config_is_section(text, len))
		{
			if (vnode->type != YAML_MAPPING_NODE)
				return err_set(err, ERR_CONFIG,
				               "%s:%zu: key %s: expected a mapping, got %s",
				               ld->name, node_line(vnode), text,
				               describe_node(vnode, got, sizeof(got)));
			if (!load_mapping(ld, text, vnode, err))
				return false;
			continue;
		}
		key = config_find_key(section, text, len);
		if (key == NULL)
			return fail_unknown_key(ld, section, knode, err);
		if (!load_value(ld, key, vnode, err))
			return false;
	}
	return true;
}

/* 1-based line and column of a byte offset, for libyaml's reader errors. */
static void
offset_position(const char *data, size_t len, size_t offset, size_t *line,
                size_t *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++)
	{
		if (data[i] == '\n')
		{
			(*line)++;
			*column = 1;
		}
		else
			(*column)++;
	}
}

static bool
fail_syntax(const Loader *ld, const yaml_parser_t *parser, Error *err)
{
	const char *problem = parser->problem ? parser->problem : "invalid YAML";
	size_t line, column;

	switch (parser->error)
	{
		case YAML_MEMORY_ERROR:
			return config_out_of_memory(err);
		case YAML_READER_ERROR:
			/* The reader reports a byte offset, not a mark. */
			offset_position(ld->data, ld->len, parser->problem_offset, &line,
			                &column);
			err_set(err, ERR_CONFIG, "%s:%zu:%zu: %s", ld->name, line, column,
			        problem);
			if (parser->problem_value != -1)
				err_detail(err, "the byte is 0x%02X", parser->problem_value);
			return false;
		default:
			err_set(err, ERR_CONFIG, "%s:%zu:%zu: %s", ld->name,
			        parser->problem_mark.line + 1,
			        parser->problem_mark.column + 1, problem);
			if (parser->context != NULL)
				err_detail(err, "%s at line %zu, column %zu", parser->context,
				           parser->context_mark.line + 1,
				           parser->context_mark.column + 1);
			return false;
	}
}

/* Parses data[0..len) as the task file called `name`, over cfg's values. */
static bool
load_bytes(TaskConfig *cfg, const char *name, const char *data, size_t len,
           Error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_document_t extra;
	yaml_node_t *root;
	Loader ld = {.name = name, .data = data, .len = len, .cfg = cfg};
	bool ok = false;

	if (!yaml_parser_initialize(&parser))
		return config_out_of_memory(err);
	yaml_parser_set_input_string(&parser, (const unsigned char *) data, len);
	if (!yaml_parser_load(&parser, &doc))
	{
		fail_syntax(&ld, &parser, err);
		goto out_parser;
	}
	ld.doc = &doc;

	/* A second document would be ignored by the walk below; refuse it. */
	if (!yaml_parser_load(&parser, &extra))
	{
		fail_syntax(&ld, &parser, err);
		goto out_doc;
	}
	if (yaml_document_get_root_node(&extra) != NULL)
	{
		err_set(err, ERR_CONFIG,
		        "%s:%zu: expected one YAML document, found a second", name,
		        extra.start_mark.line + 1);
		yaml_document_delete(&extra);
		goto out_doc;
	}
	yaml_document_delete(&extra);

	root = yaml_document_get_root_node(&doc);
	if (root == NULL || node_is_null(root))
		ok = true; /* an empty file changes nothing */
	else if (root->type != YAML_MAPPING_NODE)
	{
		char got[CONFIG_QUOTED_CAP + 2];

		err_set(err, ERR_CONFIG,
		        "%s:%zu: expected a mapping of keys at the top level, got %s",
		        name, node_line(root), describe_node(root, got, sizeof(got)));
	}
	else
		ok = load_mapping(&ld, NULL, root, err);

out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return ok;
}

bool
config_read_file(const char *what, const char *path, char **data, size_t *len,
                 Error *err)
{
	FILE *f = fopen(path, "rb");
	Buf b = BUF_INIT(CONFIG_FILE_MAX + 1);
	char chunk[8192];
	bool ok = false;

	if (f == NULL)
		return err_set(err, ERR_CONFIG, "could not read %s \"%s\": %s", what,
		               path, strerror(errno));
	for (;;)
	{
		size_t got;

		errno = 0;
		got = fread(chunk, 1, sizeof(chunk), f);
		if (got == 0)
			break;
		if (buf_len(&b) + got > CONFIG_FILE_MAX)
		{
			err_set(err, ERR_CONFIG,
			        "could not read %s \"%s\": larger than %zu MB", what, path,
			        CONFIG_FILE_MAX / (1024 * 1024));
			goto out;
		}
		if (!buf_add(&b, chunk, got, err))
			goto out;
	}
	if (ferror(f))
	{
		err_set(err, ERR_CONFIG, "could not read %s \"%s\": %s", what, path,
		        strerror(errno != 0 ? errno : EIO));
		goto out;
	}
	*len = buf_len(&b);
	ok = buf_take(&b, data, err);
out:
	buf_free(&b);
	fclose(f);
	return ok;
}

bool
config_load_file(TaskConfig *cfg, const char *path, Error *err)
{
	char *data = NULL;
	size_t len = 0;
	bool ok;

	if (!config_read_file("task file", path, &data, &len, err))
		return false;
	if (!config_replace_string(&cfg->path, path, strlen(path), err))
	{
		free(data);
		return false;
	}
	ok = load_bytes(cfg, path, data, len, err);
	free(data);
	return ok;
}

bool
config_load_string(TaskConfig *cfg, const char *name, const char *yaml,
                   Error *err)
{
	return load_bytes(cfg, name, yaml, strlen(yaml), err);
}
