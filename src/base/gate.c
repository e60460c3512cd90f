/*
 * gate: holds, worker places and rate caps for the full load's workers.
 *
 * The rate is measured over windows of one second: a worker past a cap
 * sleeps until the window's allowance covers what went through, so the
 * load's rate stays at the cap on average whatever the message sizes.
 */
#include "base/gate.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"

#define WINDOW_MS  1000
#define MIN_FACTOR 0.05
#define SLICE_MS   250

void
gate_init(Gate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	clock_cond_init(&g->changed);
	g->factor = 1.0;
	g->window_ms = clock_ms();
}

void
gate_destroy(Gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->changed);
}

/* The worker cap after the factor: never below one worker. */
static int
worker_cap(const Gate *g)
{
	int n;

	if (g->caps.workers <= 0)
		return 0;
	n = (int) (g->caps.workers * g->factor + 0.5);
	return n < 1 ? 1 : n;
}

static bool
may_enter(const Gate *g)
{
	int cap = worker_cap(g);

	return g->holds == 0 && (cap == 0 || g->active < cap);
}

static bool
may_build(const Gate *g)
{
	return g->caps.builds <= 0 || g->builds_active < g->caps.builds;
}

/*
 * Waits, the lock held, until may(g), then takes a place in *taken; false
 * without one once *stop is set. *waiting (may be NULL) counts the waiters.
 */
static bool
take_place(Gate *g, bool (*may)(const Gate *), int *taken, int *waiting,
           const atomic_int *stop)
{
	bool ok = true;

	pthread_mutex_lock(&g->lock);
	if (waiting != NULL)
		(*waiting)++;
	while (!may(g))
	{
		struct timespec until;

		if (stop != NULL && atomic_load(stop))
		{
			ok = false;
			break;
		}
		until = clock_deadline(SLICE_MS);
		pthread_cond_timedwait(&g->changed, &g->lock, &until);
	}
	if (waiting != NULL)
		(*waiting)--;
	if (ok)
		(*taken)++;
	pthread_mutex_unlock(&g->lock);
	return ok;
}

static void
give_place(Gate *g, int *taken)
{
	pthread_mutex_lock(&g->lock);
	if (*taken > 0)
		(*taken)--;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

bool
gate_enter(Gate *g, const atomic_int *stop)
{
	return take_place(g, may_enter, &g->active, &g->waiting, stop);
}

void
gate_leave(Gate *g)
{
	give_place(g, &g->active);
}

/* ms the window must last for what went through to fit under cap. */
static int64_t
needed_ms(int64_t done, int64_t cap, double factor)
{
	double allowed = (double) cap * factor;

	if (cap <= 0 || allowed <= 0)
		return 0;
	return (int64_t) ((double) done * 1000.0 / allowed);
}

/* Starts a new window once the last one's allowance covers what it let
 * through; called with the lock held. */
static void
roll_window(Gate *g, int64_t now)
{
	int64_t span = now - g->window_ms;

	if (span >= WINDOW_MS &&
	    needed_ms(g->window_rows, g->caps.rows_per_s, g->factor) <= span &&
	    needed_ms(g->window_bytes, g->caps.bytes_per_s, g->factor) <= span)
	{
		g->window_ms = now;
		g->window_rows = 0;
		g->window_bytes = 0;
	}
}

/* How long the caller must still wait; called with the lock held. */
static int64_t
wait_ms(const Gate *g, int64_t now)
{
	int64_t need = needed_ms(g->window_rows, g->caps.rows_per_s, g->factor);
	int64_t by_bytes =
	    needed_ms(g->window_bytes, g->caps.bytes_per_s, g->factor);

	if (by_bytes > need)
		need = by_bytes;
	return g->window_ms + need - now;
}

void
gate_pass(Gate *g, int64_t rows, int64_t bytes, const atomic_int *stop)
{
	pthread_mutex_lock(&g->lock);
	g->rows_total += rows;
	g->bytes_total += bytes;
	if (g->caps.rows_per_s <= 0 && g->caps.bytes_per_s <= 0)
	{
		pthread_mutex_unlock(&g->lock);
		return;
	}
	roll_window(g, clock_ms());
	g->window_rows += rows;
	g->window_bytes += bytes;
	for (;;)
	{
		int64_t now = clock_ms();
		int64_t ms = wait_ms(g, now);

		if (ms <= 0 || (stop != NULL && atomic_load(stop)))
			break;
		if (ms > SLICE_MS)
			ms = SLICE_MS;
		g->slept_ms += ms;
		pthread_mutex_unlock(&g->lock);
		clock_sleep_ms((int) ms);
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
}

bool
gate_enter_build(Gate *g, const atomic_int *stop)
{
	return take_place(g, may_build, &g->builds_active, NULL, stop);
}

void
gate_leave_build(Gate *g)
{
	give_place(g, &g->builds_active);
}

void
gate_hold(Gate *g, GateHolder who, const char *reason)
{
	pthread_mutex_lock(&g->lock);
	g->holds |= 1u << who;
	snprintf(g->reasons[who], sizeof(g->reasons[who]), "%s", reason);
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

void
gate_release(Gate *g, GateHolder who)
{
	pthread_mutex_lock(&g->lock);
	g->holds &= ~(1u << who);
	g->reasons[who][0] = '\0';
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

void
gate_set_caps(Gate *g, const GateCaps *caps)
{
	pthread_mutex_lock(&g->lock);
	g->caps = *caps;
	/* the new caps count from now: what went through under the old ones
	   must not make the workers wait (or rush) */
	g->window_ms = clock_ms();
	g->window_rows = 0;
	g->window_bytes = 0;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

void
gate_set_factor(Gate *g, double factor)
{
	if (!(factor >= MIN_FACTOR)) /* also NaN */
		factor = MIN_FACTOR;
	if (factor > 1.0)
		factor = 1.0;
	pthread_mutex_lock(&g->lock);
	g->factor = factor;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

void
gate_read(Gate *g, GateState *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&g->lock);
	out->held = g->holds != 0;
	for (int i = 0; i < GATE_NHOLDERS; i++)
		if (g->holds & (1u << i))
		{
			snprintf(out->reason, sizeof(out->reason), "%s", g->reasons[i]);
			break;
		}
	out->caps = g->caps;
	out->factor = g->factor;
	out->active = g->active;
	out->waiting = g->waiting;
	out->slept_ms = g->slept_ms;
	out->rows = g->rows_total;
	out->bytes = g->bytes_total;
	out->builds_active = g->builds_active;
	pthread_mutex_unlock(&g->lock);
}
