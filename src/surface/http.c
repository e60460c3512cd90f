/*
 * http: the server of the surface, on libmicrohttpd (Debian's
 * libmicrohttpd-dev): pgtide parses no HTTP itself. One thread of the
 * library's own polls every connection and runs every handler, so the
 * sessions the handlers use stay on one thread.
 *
 *   GET|HEAD /          the dashboard page
 *            /metrics   Prometheus text exposition 0.0.4
 *            /status    the JSON of pgtide status --json (503 unread)
 *            /history   the last hour of lag, the last warnings and errors
 *            /healthz   200 while the process runs
 *            /readyz    200 while following with lag under http.ready_lag
 *   other paths 404; other methods 405 (Allow: GET, HEAD)
 *
 * Bounded: at most SURFACE_CONNECTIONS connections, a request's headers in
 * SURFACE_REQUEST_MEMORY bytes (a larger request is refused by the library),
 * and a connection that stays silent SURFACE_IDLE_S seconds is closed. It
 * must never write to a database or touch the work's own threads.
 */
#include "surface/surface_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"

#define SURFACE_CONNECTIONS    64
#define SURFACE_REQUEST_MEMORY (16 * 1024)
#define SURFACE_IDLE_S         10

/* Queues a response of len bytes (copied unless persistent). */
static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned int code, const char *type,
        const char *body, size_t len, bool persistent)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *) (uintptr_t) body,
	    persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	/* the page may reach this server only: no request leaves the machine */
	MHD_add_response_header(r, "Content-Security-Policy",
	                        "default-src 'none'; connect-src 'self'; "
	                        "script-src 'unsafe-inline'; style-src "
	                        "'unsafe-inline'; img-src 'self' data:");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
text(struct MHD_Connection *conn, unsigned int code, const char *body)
{
	return respond(conn, code, "text/plain; charset=utf-8", body, strlen(body),
	               false);
}

static enum MHD_Result
serve_metrics(Surface *s, struct MHD_Connection *conn)
{
	Buf out = BUF_INIT(SURFACE_BODY_CAP);
	Error err = ERR_INIT;
	enum MHD_Result ret;

	if (!surface_metrics(s, &out, &err))
	{
		buf_free(&out);
		log_debug("http: /metrics: %s", err.message);
		return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		            "metrics could not be written\n");
	}
	ret = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
	              buf_str(&out), buf_len(&out), false);
	buf_free(&out);
	return ret;
}

static enum MHD_Result
serve_history(Surface *s, struct MHD_Connection *conn)
{
	Buf out = BUF_INIT(SURFACE_BODY_CAP);
	Error err = ERR_INIT;
	enum MHD_Result ret;

	if (!surface_history(s, &out, &err))
	{
		buf_free(&out);
		log_debug("http: /history: %s", err.message);
		return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		            "history could not be written\n");
	}
	ret = respond(conn, MHD_HTTP_OK, "application/json", buf_str(&out),
	              buf_len(&out), false);
	buf_free(&out);
	return ret;
}

static enum MHD_Result
serve_status(Surface *s, struct MHD_Connection *conn)
{
	Buf out = BUF_INIT(SURFACE_BODY_CAP);
	char why[ERR_MSG_MAX];
	char body[ERR_MSG_MAX + 32];
	enum MHD_Result ret;

	if (!surface_status(s, &out, why, sizeof(why)))
	{
		buf_free(&out);
		snprintf(body, sizeof(body), "status unavailable: %s\n", why);
		return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
	}
	ret = respond(conn, MHD_HTTP_OK, "application/json", buf_str(&out),
	              buf_len(&out), false);
	buf_free(&out);
	return ret;
}

static enum MHD_Result
serve_ready(Surface *s, struct MHD_Connection *conn)
{
	char reason[CDC_OUTAGE_MAX + 64];
	bool ready = surface_ready(s, reason, sizeof(reason) - 1);
	size_t n = strlen(reason);

	reason[n] = '\n';
	reason[n + 1] = '\0';
	return text(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
	            reason);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
       const char *method, const char *version, const char *upload_data,
       size_t *upload_data_size, void **req_cls)
{
	Surface *s = cls;
	size_t len;

	(void) version;
	(void) upload_data;
	(void) upload_data_size;
	(void) req_cls;
	log_set_role("http");
	/* answered at the first call: a body, if any, is never read */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		            "method not allowed: GET or HEAD only\n");
	if (strcmp(url, "/") == 0)
	{
		const char *page = surface_dashboard(&len);

		return respond(conn, MHD_HTTP_OK, "text/html; charset=utf-8", page, len,
		               true);
	}
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(s, conn);
	if (strcmp(url, "/status") == 0)
		return serve_status(s, conn);
	if (strcmp(url, "/history") == 0)
		return serve_history(s, conn);
	if (strcmp(url, "/healthz") == 0)
		return text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0)
		return serve_ready(s, conn);
	return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/*
 * The listening socket is made here rather than by the library, so that a
 * port in use is reported with its cause, and a client may connect as soon
 * as surface_start returns.
 */
static int
listen_on(const char *addr, int port, Error *err)
{
	struct sockaddr_in sa;
	int one = 1;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t) port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
	{
		err_set(err, ERR_CONFIG, "http.listen: \"%s\" is not an IPv4 address",
		        addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    listen(fd, SURFACE_CONNECTIONS) != 0)
	{
		err_set(err, ERR_CONFIG, "http.listen: could not listen on %s:%d: %s",
		        addr, port, strerror(errno));
		err_hint(err, "choose a free port with --http, or leave --http out");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

bool
surface_http_start(Surface *s, const char *addr, int port, Error *err)
{
	int fd = listen_on(addr, port, err);

	if (fd < 0)
		return false;
	s->daemon = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, handle,
	    s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int) SURFACE_CONNECTIONS,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) SURFACE_REQUEST_MEMORY,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) SURFACE_IDLE_S,
	    MHD_OPTION_END);
	if (s->daemon == NULL)
	{
		close(fd);
		return err_set(err, ERR_INTERNAL,
		               "http.listen: could not start the HTTP server on "
		               "%s:%d",
		               addr, port);
	}
	return true;
}

void
surface_http_stop(Surface *s)
{
	if (s->daemon != NULL)
		MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
}
