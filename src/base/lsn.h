/*
 * lsn: the Lsn type (a WAL position) and its text form "X/X".
 * Pure: no I/O.
 */
#ifndef PGTIDE_LSN_H
#define PGTIDE_LSN_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t Lsn;

#define LSN_INVALID ((Lsn) 0)
#define LSN_FMT     "%X/%X"
#define LSN_ARGS(l) (unsigned) ((l) >> 32), (unsigned) (l)
/* Room for "XXXXXXXX/XXXXXXXX" and the terminator. */
#define LSN_TEXT_MAX 18

/* Parses "X/X"; returns false (leaving *out alone) on anything else. */
bool lsn_parse(const char *text, Lsn *out);

/* Writes "X/X" into buf (LSN_TEXT_MAX bytes) and returns buf. */
char *lsn_format(Lsn lsn, char *buf);

#endif
