/*
 * json_read: a strict JSON reader (RFC 8259) into a small tree, for files a
 * user hands pgtide as they are (an AWS DMS table mapping).
 *
 * It owns the tree and its strings: one array of nodes and one arena, each
 * capped by the input's length, so a file of 20,000 rules reads in a few
 * milliseconds where a YAML loader takes most of a second. It refuses
 * anything that is not JSON (comments, trailing commas, single quotes, a
 * raw control character or NUL in a string, a lone surrogate, nesting
 * deeper than JSON_MAX_DEPTH, a second value) with the line it is on. It
 * never interprets a value: numbers keep their text.
 */
#ifndef PGTIDE_JSON_READ_H
#define PGTIDE_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define JSON_MAX_DEPTH 64

typedef enum JsonType
{
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
} JsonType;

typedef struct JsonNode
{
	JsonType type;
	int line;         /* where the value starts, from 1 */
	const char *key;  /* its name in the enclosing object, or NULL */
	const char *text; /* JSON_STRING (decoded) and JSON_NUMBER; else NULL */
	int first;        /* JSON_ARRAY, JSON_OBJECT: first child, or -1 */
	int next;         /* the next sibling, or -1 */
	int count;        /* JSON_ARRAY, JSON_OBJECT: number of children */
} JsonNode;

typedef struct JsonDoc
{
	JsonNode *nodes; /* nodes[0] is the root; owned */
	int n;
	char *arena; /* every key and text, NUL-terminated; owned */
} JsonDoc;

/*
 * Parses data[0..len) into doc. On failure err (ERR_CONFIG) says "NAME:LINE:
 * not valid JSON: what" and doc is empty.
 */
bool json_parse(JsonDoc *doc, const char *name, const char *data, size_t len,
                Error *err);

/* The member named key of the object node, or NULL. */
const JsonNode *json_get(const JsonDoc *doc, const JsonNode *obj,
                         const char *key);

/* The node at index i, or NULL for -1. */
const JsonNode *json_at(const JsonDoc *doc, int i);

/* Frees what doc owns. */
void json_doc_free(JsonDoc *doc);

#endif
