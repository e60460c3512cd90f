/*
 * throttle: what the full load may take from the source while it runs
 * (docs/decisions/0026). It sets the gate's caps from the task file's
 * throttle.* keys, rereads them when SIGHUP asks, and in adaptive mode
 * times a cheap probe on a source session of its own and scales the load
 * down while the source answers slowly, back up when it recovers.
 *
 *   task file ──SIGHUP──► throttle thread ──gate_set_caps──► gate ◄── copy
 *   source ◄──probe────── (one session,    ──gate_set_factor─┘    workers,
 *                          its own)                                builders
 *
 * It must never slow the load by itself: a probe that fails is reported and
 * the load goes on at its last factor. Its session only reads (the built-in
 * probe and the user's own query, in autocommit), and never takes locks
 * beyond what those queries take.
 */
#ifndef PGTIDE_THROTTLE_H
#define PGTIDE_THROTTLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/err.h"
#include "base/gate.h"

typedef struct Throttle Throttle;

/*
 * The adaptive throttle's states (none but OFF when throttle.adaptive is
 * off), each change logged once:
 *
 *   OPEN ──probe window over the bound──► SLOWING  (throttle_decide)
 *   SLOWING ──window under 80% of it──► RECOVERING
 *   RECOVERING ──over the bound again──► SLOWING
 *   RECOVERING ──factor back at 1──► OPEN
 */
typedef enum ThrottleMode
{
	THROTTLE_OFF = 0,
	THROTTLE_OPEN,
	THROTTLE_SLOWING,
	THROTTLE_RECOVERING,
} ThrottleMode;

#define THROTTLE_TEXT_MAX 256

/* What the throttle does now, for status, metrics and the dashboard. */
typedef struct ThrottleState
{
	ThrottleMode mode;
	double factor;     /* share of the caps the load may use, (0, 1] */
	int bound_ms;      /* throttle.probe_latency */
	int interval_ms;   /* throttle.probe_interval */
	bool user_probe;   /* a throttle.probe_query is timed too */
	int64_t last_ms;   /* the last probe's latency; -1 before the first */
	int64_t window_ms; /* median of the last few probes; -1 before */
	int64_t p95_ms;    /* p95 of the last minute's probes; -1 before */
	int64_t probes;    /* probes run */
	int64_t slowdowns; /* times the throttle went from OPEN to SLOWING */
	GateCaps caps;     /* the caps before the factor: configured, or the
	                        load's own rate when adaptive mode engaged
	                        without a rate cap */
	char reason[THROTTLE_TEXT_MAX];      /* why the state is what it is */
	char probe_error[THROTTLE_TEXT_MAX]; /* the probe's last failure, "" */
	GateState gate;                      /* the gate as it is now */
} ThrottleState;

/* The state's name in status, metrics and the log: "off", "open", ... */
const char *throttle_mode_name(ThrottleMode m);

/*
 * How the throttle hears of SIGHUP and rereads the task file: pending()
 * says (and clears) whether one came; reread() fills a config_init'ed cfg
 * as the command line and the task file say now, or fails with the
 * file's error. Both run on the throttle's thread, never in a handler.
 */
typedef struct ThrottleReload
{
	bool (*pending)(void);
	bool (*reread)(TaskConfig *cfg, Error *err);
} ThrottleReload;

/*
 * Sets gate's caps from cfg->throttle and starts the throttle's thread,
 * which rereads on reload (may be NULL) and, in adaptive mode, probes the
 * source. cfg and gate must outlive the throttle. Fails only when the
 * thread cannot start; a source the probe cannot reach is reported in the
 * state and the log, not as a failure. *out is the caller's, ended with
 * throttle_stop(). One throttle runs per process: throttle_read shows it.
 */
bool throttle_start(const TaskConfig *cfg, Gate *gate, atomic_int *stop,
                    const ThrottleReload *reload, Throttle **out, Error *err);

/*
 * Stops the thread, closes its session and frees t; the gate keeps its
 * caps and a factor of 1. NULL is a no-op.
 */
void throttle_stop(Throttle *t);

/*
 * Copies the running throttle's state into out; false, and out untouched,
 * when no throttle runs in this process (no load is running).
 */
bool throttle_read(ThrottleState *out);

/*
 * Writes st as one JSON object (the "throttle" of pgtide status --json)
 * into buf (cap bytes, NUL-terminated). False when it does not fit.
 */
#define THROTTLE_JSON_MAX 2048
bool throttle_format_json(const ThrottleState *st, char *buf, size_t cap);

/*
 * The adaptive rule, pure: the next mode and factor after a probe whose
 * window median is window_ms, against bound_ms. Multiplicative down (half)
 * while over the bound, additive up (a tenth) while under 80% of it, held
 * in between. Exposed for the unit test.
 */
void throttle_decide(ThrottleMode mode, double factor, int64_t window_ms,
                     int bound_ms, ThrottleMode *next, double *next_factor);

#endif
