/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint: libmicrohttpd without threads of its own, in
 * epoll mode. We bind the listening socket ourselves (to report "address
 * in use" clearly at start-up) and hand it over; MHD's epoll descriptor is
 * watched by the su_root loop, and a one-shot timer follows MHD's own
 * timeout. Everything, including rendering the statistics, therefore runs
 * on the daemon's single thread. GET /metrics answers the text format;
 * anything else gets 404 or 405.
 */
#include "sipwake/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#define METRICS_MAX_CONNS 8
#define METRICS_CONN_TIMEOUT 10 /* s */
#define METRICS_CONN_MEMORY (16 * 1024)

struct admin_metrics {
	su_root_t *root;
	struct MHD_Daemon *mhd;
	int epfd;
	su_wait_t wait[1];
	int reg;
	su_timer_t *timer;
	int port;
};

static void metrics_run(struct admin_metrics *m);

static void on_timer(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	metrics_run((struct admin_metrics *)arg);
}

static int on_epoll(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	metrics_run((struct admin_metrics *)arg);
	return 0;
}

/* Let MHD do its work, then arm the timer for its next deadline. */
static void metrics_run(struct admin_metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	MHD_run(m->mhd);
	su_timer_reset(m->timer);
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		su_timer_set_interval(m->timer, on_timer, (su_timer_arg_t *)m,
				      ms == 0 ? 1 : (su_duration_t)(ms > 60000 ? 60000 : ms));
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct MHD_Response *r;
	enum MHD_Result rc;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served here\n");
	if (*upload_size)
		return MHD_NO; /* a GET with a body: drop the connection */
	if (strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND,
				  strcmp(url, "/") == 0 ? "sipwake: metrics are at /metrics\n"
							: "not found; metrics are at /metrics\n");
	f = open_memstream(&text, &len);
	if (!f)
		return MHD_NO;
	if (stats_write_prometheus(f) < 0 || fclose(f) != 0) {
		free(text);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
	}
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	log_debug("metrics http: %s", buf);
}

int admin_metrics_new(struct admin_metrics **out, su_root_t *root, const char *listen_on)
{
	struct admin_metrics *m = NULL;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const union MHD_DaemonInfo *info;
	int fd = -1, one = 1, rc = -1;

	*out = NULL;
	if (!listen_on || !listen_on[0])
		return 0;
	if (config_parse_listen(listen_on, &ss, &len) < 0) {
		log_error("admin.metrics_listen \"%s\" is not IP:PORT", listen_on);
		return -1;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	m->root = root;
	m->epfd = -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, METRICS_MAX_CONNS) < 0) {
		log_error("metrics endpoint: cannot listen on %s: %s", listen_on, strerror(errno));
		goto out;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
	m->mhd = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_CONN_TIMEOUT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY, MHD_OPTION_END);
	if (!m->mhd) {
		log_error("metrics endpoint: libmicrohttpd did not start on %s", listen_on);
		goto out;
	}
	fd = -1; /* MHD owns it now */
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		log_error("metrics endpoint: no epoll descriptor from libmicrohttpd");
		goto out;
	}
	m->epfd = info->epoll_fd;
	m->timer = su_timer_create(su_root_task(root), 1000);
	if (!m->timer || su_wait_create(m->wait, m->epfd, SU_WAIT_IN) < 0 ||
	    (m->reg = su_root_register(root, m->wait, on_epoll, (su_wakeup_arg_t *)m, 0)) <= 0) {
		log_error("metrics endpoint: cannot attach to the event loop");
		goto out;
	}
	metrics_run(m);
	log_info("metrics endpoint on http://%s/metrics", listen_on);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		admin_metrics_free(m);
		m = NULL;
	}
	*out = m;
	return rc;
}

void admin_metrics_free(struct admin_metrics *m)
{
	if (!m)
		return;
	if (m->reg > 0)
		su_root_deregister(m->root, m->reg);
	if (m->timer)
		su_timer_destroy(m->timer);
	if (m->mhd)
		MHD_stop_daemon(m->mhd); /* closes the listening socket too */
	free(m);
}

int admin_metrics_port(const struct admin_metrics *m)
{
	return m ? m->port : 0;
}
