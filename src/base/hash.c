/*
 * hash: FNV-1a, 64 bits.
 */
#include "base/hash.h"

uint64_t
hash_string(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}
