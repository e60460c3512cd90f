/*
 * history: what the dashboard draws over time and shows of the past, kept
 * in the process so that a page opened (or reloaded) late still sees it:
 * the stream's lag and apply rate, one sample per report over the last hour
 * (a fixed ring, filled under the surface's mutex by the stream's report
 * callback), and the log's last warning and error lines (base/log's ring).
 *
 *   GET /history ->
 *   {"now_ms": 1767312000000,            wall clock of the answer, ms
 *    "interval_s": 10,                   progress.interval: one sample each
 *    "lag": [[wall_ms, lag_bytes, lag_seconds, changes_per_s], ...],
 *                                        oldest first, the last hour's
 *    "log": [{"time": "...Z", "level": "warning", "thread": "apply",
 *             "message": "..."}, ...]}   oldest first, at most 20
 *
 * The stream's thread only copies four numbers here; the JSON is written on
 * the HTTP thread from a copy taken under the lock. With several targets no
 * stream reports to this process: their states are read (surface_refresh)
 * before the answer, and each new record becomes a sample, so the chart
 * holds the samples of while the page or a scraper was reading.
 */
#include "surface/surface_int.h"

#include <math.h>
#include <stdlib.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"

void
surface_history_keep(Surface *s, const CdcProgress *p)
{
	SurfaceHistory *h = &s->history;
	SurfaceSample *x = &h->s[h->next];

	x->wall_ms = clock_wall_us() / 1000;
	x->lag_bytes = p->lag_bytes;
	x->lag_seconds = p->lag_seconds;
	x->changes_per_s = p->changes_per_s;
	h->next = (h->next + 1) % SURFACE_HISTORY_MAX;
	if (h->n < SURFACE_HISTORY_MAX)
		h->n++;
}

bool
surface_json_string(Buf *out, const char *src, Error *err)
{
	/* every \u escape is 6 bytes */
	char esc[(LOG_RECENT_MSG_MAX > ERR_MSG_MAX ? LOG_RECENT_MSG_MAX
	                                           : ERR_MSG_MAX) *
	         6];

	json_escape(esc, sizeof(esc), src);
	return buf_printf(out, err, "\"%s\"", esc);
}

static bool
write_log(Buf *out, Error *err)
{
	LogRecent lines[LOG_RECENT_MAX];
	int n = log_recent(lines, LOG_RECENT_MAX);

	if (!buf_add_str(out, "\"log\":[", err))
		return false;
	for (int i = 0; i < n; i++)
	{
		if (!buf_printf(out, err,
		                "%s{\"time\":\"%s\",\"level\":\"%s\","
		                "\"thread\":",
		                i ? "," : "", lines[i].time,
		                log_level_name(lines[i].level)) ||
		    !surface_json_string(out, lines[i].thread, err) ||
		    !buf_add_str(out, ",\"message\":", err) ||
		    !surface_json_string(out, lines[i].message, err) ||
		    !buf_add_str(out, "}", err))
			return false;
	}
	return buf_add_str(out, "]", err);
}

bool
surface_history(Surface *s, Buf *out, Error *err)
{
	SurfaceHistory *copy = malloc(sizeof(*copy));
	int64_t now = clock_wall_us() / 1000;
	bool first = true;
	bool ok;

	if (copy == NULL)
		return err_set(err, ERR_INTERNAL, "out of memory");
	/* several targets: their records are sampled as they are read */
	if (s->several)
		surface_refresh(s, false);
	pthread_mutex_lock(&s->lock);
	*copy = s->history;
	pthread_mutex_unlock(&s->lock);
	ok = buf_printf(out, err, "{\"now_ms\":%lld,\"interval_s\":%d,\"lag\":[",
	                (long long) now, s->cfg->progress_interval_s);
	for (int i = 0; ok && i < copy->n; i++)
	{
		const SurfaceSample *x =
		    &copy->s[(copy->next - copy->n + i + SURFACE_HISTORY_MAX) %
		             SURFACE_HISTORY_MAX];

		if (now - x->wall_ms > SURFACE_HISTORY_MS ||
		    !isfinite(x->lag_seconds) || !isfinite(x->changes_per_s))
			continue;
		ok = buf_printf(out, err, "%s[%lld,%lld,%.3f,%.1f]", first ? "" : ",",
		                (long long) x->wall_ms, (long long) x->lag_bytes,
		                x->lag_seconds, x->changes_per_s);
		first = false;
	}
	free(copy);
	return ok && buf_add_str(out, "],", err) && write_log(out, err) &&
	       buf_add_str(out, "}\n", err);
}
