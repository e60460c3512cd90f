/*
 * clock: the few time functions pgtide needs, in one place. Base layer: no
 * libpq. Pure modules (pgoutput, plan, config, mapping) never include it.
 */
#ifndef PGTIDE_CLOCK_H
#define PGTIDE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on a monotonic clock, for intervals and deadlines. */
int64_t clock_ms(void);

/* Microseconds since the Unix epoch, for commit times and lag. */
int64_t clock_wall_us(void);

/* Sleeps the calling thread; a signal may end the sleep early. */
void clock_sleep_ms(int ms);

/*
 * Initializes a condition variable whose timed waits run on the monotonic
 * clock: a wall-clock jump must neither stall nor spin a waiting thread.
 */
void clock_cond_init(pthread_cond_t *cond);

/* The instant ms from now, for pthread_cond_timedwait on such a variable. */
struct timespec clock_deadline(int64_t ms);

#endif
