/*
 * json: writing JSON strings, for machine output (status --json, check
 * --json, validate --json) and JSON log lines.
 *
 * Only escaping: callers lay out their own objects. Never allocates, never
 * fails; a too-small buffer truncates at a character boundary.
 */
#ifndef PGTIDE_JSON_H
#define PGTIDE_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * Escapes src into dst (cap bytes, NUL-terminated) without the surrounding
 * quotes; returns the length written.
 */
size_t json_escape(char *dst, size_t cap, const char *src);

/* Writes src as a quoted JSON string; NULL is written as null. */
void json_write_string(FILE *out, const char *src);

#endif
