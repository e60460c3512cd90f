/*
 * gate: where the full load's copy workers ask leave to go on, so that what
 * protects the source (the WAL guard, the throttle) can slow or pause the
 * load while it runs, without a restart.
 *
 *   guard / throttle ──► gate_hold, gate_release, gate_set_caps
 *   copy workers     ──► gate_enter before a chunk, gate_pass per COPY
 *                        message, gate_leave after it
 *   index builders   ──► gate_enter_build before a post-data step,
 *                        gate_leave_build after it
 *
 * A hold pauses workers between chunks (a chunk in flight finishes: its
 * open transactions on both sides would otherwise sit idle). Caps bound the
 * running workers and the rows and bytes per second, scaled by a factor the
 * adaptive throttle sets. Index builds run on the target only: holds and
 * the factor, which protect the source, leave them alone; only their own
 * cap on running builds applies. Base layer: no libpq; the gate never decides when
 * to hold or how fast to go, its callers do.
 */
#ifndef PGTIDE_GATE_H
#define PGTIDE_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Who holds the gate: each is held and released on its own. */
typedef enum GateHolder
{
	GATE_WAL,      /* the source's retained WAL passed its pause threshold */
	GATE_OPERATOR, /* a person asked for a pause */
	GATE_NHOLDERS
} GateHolder;

#define GATE_REASON_MAX 200

typedef struct GateCaps
{
	int workers;         /* running copy workers at most; 0: no cap */
	int64_t rows_per_s;  /* 0: no cap */
	int64_t bytes_per_s; /* 0: no cap */
	int builds;          /* running index builds at most; 0: no cap */
} GateCaps;

/* What the gate does now, for status, metrics and the log. */
typedef struct GateState
{
	bool held;
	char reason[GATE_REASON_MAX]; /* the first holder's reason, "" if none */
	GateCaps caps;
	double factor;    /* 0 < factor <= 1: share of the rate caps allowed */
	int active;       /* workers inside the gate */
	int waiting;      /* workers waiting to enter */
	int64_t slept_ms; /* time workers spent waiting on a rate, in total */
	int64_t rows;     /* rows and bytes let through, in total */
	int64_t bytes;
	int builds_active; /* index builds inside the gate */
} GateState;

typedef struct Gate
{
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a hold, a cap or a leave: waiters look again */
	unsigned holds;         /* bit per GateHolder */
	char reasons[GATE_NHOLDERS][GATE_REASON_MAX];
	GateCaps caps;
	double factor;
	int active;
	int waiting;
	/* rate: what was let through since window_ms, against the caps */
	int64_t window_ms;
	int64_t window_rows;
	int64_t window_bytes;
	int64_t slept_ms;
	int64_t rows_total;
	int64_t bytes_total;
	int builds_active;
} Gate;

void gate_init(Gate *g);
void gate_destroy(Gate *g);

/*
 * Waits until no holder holds the gate and a worker place is free, then
 * takes the place. Returns false, without a place, once *stop is set (stop
 * may be NULL); the wait looks at it every few hundred milliseconds.
 */
bool gate_enter(Gate *g, const atomic_int *stop);

/* Gives the place back. */
void gate_leave(Gate *g);

/*
 * Accounts rows and bytes just copied and, past the rate caps, sleeps the
 * caller until the rate is back under them, or until *stop is set (stop may
 * be NULL). A cap changed meanwhile counts from the next slice of the sleep.
 * Holds do not stop a chunk in flight.
 */
void gate_pass(Gate *g, int64_t rows, int64_t bytes, const atomic_int *stop);

void gate_hold(Gate *g, GateHolder who, const char *reason);
void gate_release(Gate *g, GateHolder who);

/*
 * Waits until a build place is free under caps.builds (holds and the
 * factor do not apply), then takes it. False, without a place, once *stop
 * is set (stop may be NULL).
 */
bool gate_enter_build(Gate *g, const atomic_int *stop);

/* Gives the build place back. */
void gate_leave_build(Gate *g);

/* New caps, for the next worker to enter and the next gate_pass. */
void gate_set_caps(Gate *g, const GateCaps *caps);

/* Scales the rate caps, and the worker cap, by factor (clamped to
 * [0.05, 1]). */
void gate_set_factor(Gate *g, double factor);

void gate_read(Gate *g, GateState *out);

#endif
