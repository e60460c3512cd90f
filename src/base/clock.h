/*
 * clock: the few time functions pgtide needs, in one place. Base layer: no
 * libpq. Pure modules (pgoutput, plan, config, mapping) never include it.
 */
#ifndef PGTIDE_CLOCK_H
#define PGTIDE_CLOCK_H

#include <stdint.h>

/* Milliseconds on a monotonic clock, for intervals and deadlines. */
int64_t clock_ms(void);

/* Microseconds since the Unix epoch, for commit times and lag. */
int64_t clock_wall_us(void);

/* Sleeps the calling thread; a signal may end the sleep early. */
void clock_sleep_ms(int ms);

#endif
