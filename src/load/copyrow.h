/*
 * copyrow: one field of a row as COPY TO STDOUT sends it, in text or
 * binary format, read back into the text form PostgreSQL prints for it, so
 * that a load into several targets can route each row by its key without
 * the source computing anything (docs/sharding.md, the full load).
 *
 * Pure: bytes in, bytes out; no libpq. It reads a row and never changes
 * it: the row goes to its target exactly as the source sent it. It decodes
 * only the routable key types (route/shard); another type in binary format
 * is refused (the caller copies such a table in text format).
 */
#ifndef PGTIDE_COPYROW_H
#define PGTIDE_COPYROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest key text decoded (a longer key is refused, not cut). */
#define COPYROW_KEY_MAX 8192

/* Whether a column of this type OID can be routed from binary COPY. */
bool copyrow_binary_decodes(uint32_t type_oid);

/*
 * The length of the binary COPY header that starts buf[0..len) (the
 * signature, flags and header extension), or -1 when buf does not start
 * with a whole one. The source sends it in front of its first row.
 */
long copyrow_binary_header(const char *buf, size_t len);

/*
 * Whether buf[0..len) is the binary COPY trailer (a field count of -1).
 */
bool copyrow_binary_trailer(const char *buf, size_t len);

/*
 * Reads field col (0-based) of one row buf[0..len): a text-format line
 * (with its newline) or a binary-format tuple (without header), the column
 * of type type_oid. *null is set for SQL NULL; else out[0..*outlen) gets
 * its text form. Returns false for a row too short, a type binary cannot
 * be decoded for, or a key longer than cap.
 */
bool copyrow_key(const char *buf, size_t len, bool binary, int col,
                 uint32_t type_oid, char *out, size_t cap, size_t *outlen,
                 bool *null);

#endif
