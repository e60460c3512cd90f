/*
 * hash: a string's 64-bit FNV-1a hash, for pgtide's in-memory hash tables
 * (prepared statements, validation keys). Not for anything stored or
 * compared across processes, and not resistant to chosen input.
 */
#ifndef PGTIDE_HASH_H
#define PGTIDE_HASH_H

#include <stdint.h>

uint64_t hash_string(const char *s);

#endif
