/*
 * md5: the MD5 digest (RFC 1321) of a byte string, for values that must be
 * computed the same way outside pgtide: the shard hash (route/shard) is
 * the digest PostgreSQL's md5() and Python's hashlib give. Not for
 * security. Pure; no libpq.
 */
#ifndef PGTIDE_MD5_H
#define PGTIDE_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST_LEN 16

/* Writes the 16-byte digest of data[0..len) into out. Never fails. */
void md5_digest(const void *data, size_t len, uint8_t out[MD5_DIGEST_LEN]);

#endif
