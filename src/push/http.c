/* SPDX-License-Identifier: MIT */
/*
 * The push layer's HTTP client, the one entry point of the providers:
 * libcurl's multi interface on sofia-sip's su_root, or, with push.http2 =
 * "nghttp2", h2.c for https URLs it takes (curl keeps the rest, and any
 * origin whose server does not speak h2). CURLMOPT_SOCKETFUNCTION registers an su_wait_t per socket
 * with the root, CURLMOPT_TIMERFUNCTION only arms one su_timer, and both
 * wake-ups call curl_multi_socket_action() and then drain
 * curl_multi_info_read(), so completion callbacks always run from the loop.
 * Transfers to one host share one multiplexed connection (PIPEWAIT +
 * CURLPIPE_MULTIPLEX, at most one connection per host).
 */
#include "push_int.h"
#include "h2.h"

#include <stdlib.h>
#include <string.h>

#include "sipwake/log.h"

/*
 * Streams curl keeps open on the one connection; more transfers wait inside
 * curl for a free stream. APNs would allow 1000, but libcurl 7.88 walks
 * every transfer of a connection on each socket event: bench/push measured
 * ~130 us of CPU per push at 100 streams against ~380 us at 1000, with a
 * higher rate at 100 (1000 pushes in flight either way).
 */
#define HTTP_MAX_STREAMS 100

/* Idle time after which curl would rather open a new connection than reuse one. */
#define HTTP_MAX_IDLE_S 3600

/*
 * Finished easy handles kept for the next transfers (reset, so they hold no
 * request data; curl frees a handle's receive buffer when its transfer
 * ends): curl_easy_init() and curl_easy_cleanup() cost about 5 % of an
 * APNs push at 100 in flight (bench/push). A whole window's worth, since a
 * batch of answers retires up to HTTP_MAX_STREAMS handles before the
 * pushes that follow start.
 */
#define HTTP_SPARE_EASY HTTP_MAX_STREAMS

struct http_sock {
	struct push_http *h;
	curl_socket_t fd;
	int index;  /* su_root registration */
	int events; /* SU_WAIT_* registered */
};

struct push_http {
	su_root_t *root;
	CURLM *multi;
	su_timer_t *timer;
	unsigned active;
	struct push_http_xfer *xfers; /* all live transfers */
	CURL *spare[HTTP_SPARE_EASY];
	unsigned nspare;
	struct push_h2 *h2; /* NULL unless push.http2 = "nghttp2" was ever set */
	bool use_h2;        /* new transfers to https go to h2 */
};

struct push_http_xfer {
	struct push_http *h;
	struct push_http_xfer *prev, *next;
	CURL *easy;
	struct h2_stream *h2s; /* on the nghttp2 client instead */
	struct curl_slist *headers;
	push_http_done_fn *done;
	void *arg;
	char *body;
	size_t len, cap;
	bool truncated;
	char error[CURL_ERROR_SIZE];
};

static void http_drain(struct push_http *h);

static int http_wakeup(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct http_sock *s = arg;
	struct push_http *h = s->h;
	int ev = su_wait_events(w, s->fd), mask = 0, running = 0;

	if (ev & SU_WAIT_IN)
		mask |= CURL_CSELECT_IN;
	if (ev & SU_WAIT_OUT)
		mask |= CURL_CSELECT_OUT;
	if (ev & (SU_WAIT_ERR | SU_WAIT_HUP))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, s->fd, mask, &running);
	http_drain(h);
	return 0;
}

static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct push_http *h = userp;
	struct http_sock *s = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			su_root_deregister(h->root, s->index);
			curl_multi_assign(h->multi, fd, NULL);
			free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= SU_WAIT_IN;
	if (what & CURL_POLL_OUT)
		events |= SU_WAIT_OUT;
	if (!s) {
		su_wait_t w;

		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->h = h;
		s->fd = fd;
		if (su_wait_create(&w, fd, events) < 0) {
			free(s);
			return -1;
		}
		s->index = su_root_register(h->root, &w, http_wakeup, s, 0);
		if (s->index < 0) {
			su_wait_destroy(&w);
			free(s);
			return -1;
		}
		s->events = events;
		curl_multi_assign(h->multi, fd, s);
	} else if (s->events != events) {
		/*
		 * curl 7.88 calls again with an unchanged action for most
		 * transfers it runs; su_root_eventmask() would make each one
		 * an epoll_ctl(): about one per push at 100 in flight.
		 */
		su_root_eventmask(h->root, s->index, fd, events);
		s->events = events;
	}
	return 0;
}

static void http_timer_fired(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	struct push_http *h = arg;
	int running = 0;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_drain(h);
}

/* Only arms the timer: curl must not be re-entered from its own callback. */
static int http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct push_http *h = userp;

	if (timeout_ms < 0)
		su_timer_reset(h->timer);
	else
		su_timer_set_interval(h->timer, http_timer_fired, h, (su_duration_t)timeout_ms);
	return 0;
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct push_http_xfer *x = userp;
	size_t n = size * nmemb, room;

	if (x->len + n + 1 > x->cap && x->cap < PUSH_HTTP_MAX_BODY + 1) {
		size_t cap = x->cap ? x->cap * 2 : 512;
		char *b;

		while (cap < x->len + n + 1 && cap < PUSH_HTTP_MAX_BODY + 1)
			cap *= 2;
		if (cap > PUSH_HTTP_MAX_BODY + 1)
			cap = PUSH_HTTP_MAX_BODY + 1;
		b = realloc(x->body, cap);
		if (!b)
			return 0;
		x->body = b;
		x->cap = cap;
	}
	room = x->cap ? x->cap - 1 - x->len : 0;
	if (n > room) {
		x->truncated = true; /* keep what fits; error bodies are short */
		n = room;
	}
	if (n) {
		memcpy(x->body + x->len, data, n);
		x->len += n;
		x->body[x->len] = '\0';
	}
	return size * nmemb;
}

/* Detach e from the multi handle and keep it for a later transfer, or free it. */
static void easy_release(struct push_http *h, CURL *e)
{
	curl_multi_remove_handle(h->multi, e);
	if (h->nspare < HTTP_SPARE_EASY) {
		curl_easy_reset(e);
		h->spare[h->nspare++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

static CURL *easy_get(struct push_http *h)
{
	return h->nspare ? h->spare[--h->nspare] : curl_easy_init();
}

static void xfer_free(struct push_http_xfer *x)
{
	struct push_http *h = x->h;

	if (x->prev)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	if (x->easy)
		easy_release(h, x->easy);
	if (x->h2s)
		push_h2_cancel(x->h2s);
	curl_slist_free_all(x->headers);
	free(x->body);
	free(x);
	h->active--;
}

static void http_drain(struct push_http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct push_http_xfer *x = NULL;
		struct push_http_result res = {0};

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		res.code = msg->data.result;
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status);
		res.body = x->body ? x->body : "";
		res.body_len = x->len;
		res.error = x->error[0] ? x->error : curl_easy_strerror(res.code);
		{
			curl_off_t ra = 0;
			if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
				res.retry_after_s = ra > 3600 ? 3600 : (long)ra;
		}
		/* Detach from curl first: the callback may start new transfers (on this handle). */
		easy_release(h, x->easy);
		x->easy = NULL;
		x->done(x->arg, &res);
		xfer_free(x);
	}
}

int push_http_new(struct push_http **out, su_root_t *root)
{
	struct push_http *h = calloc(1, sizeof(*h));
	int rc = -1;

	if (!h)
		goto out;
	h->root = root;
	h->timer = su_timer_create(su_root_task(root), 0);
	h->multi = curl_multi_init();
	if (!h->timer || !h->multi)
		goto out;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)HTTP_MAX_STREAMS);
	rc = 0;
out:
	if (rc < 0) {
		log_error("push: cannot set up the HTTP/2 client");
		push_http_free(h);
		h = NULL;
	}
	*out = h;
	return rc;
}

void push_http_free(struct push_http *h)
{
	if (!h)
		return;
	while (h->xfers)
		xfer_free(h->xfers);
	push_h2_free(h->h2);
	while (h->nspare)
		curl_easy_cleanup(h->spare[--h->nspare]);
	if (h->multi)
		curl_multi_cleanup(h->multi); /* closes sockets through http_socket_cb */
	if (h->timer)
		su_timer_destroy(h->timer);
	free(h);
}

/* Put x on curl with rq (x->headers already set). 0, or -1 with nothing added. */
static int curl_begin(struct push_http *h, struct push_http_xfer *x,
		      const struct push_http_request *rq)
{
	CURL *e = easy_get(h);

	if (!e)
		return -1;
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(e, CURLOPT_URL, rq->url);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, rq->timeout_ms > 0 ? rq->timeout_ms : 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->error);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Keep the provider connection even when pushes are rare (curl's default is 118 s). */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)HTTP_MAX_IDLE_S);
	if (rq->ca_file && rq->ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, rq->ca_file);
	if (rq->cert_file && rq->cert_file[0]) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, rq->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (rq->key_file && rq->key_file[0])
		curl_easy_setopt(e, CURLOPT_SSLKEY, rq->key_file);
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e); /* never added: no remove_handle, no reuse */
		return -1;
	}
	x->easy = e;
	return 0;
}

/* h2.c answered x's request. */
static void h2_done(void *arg, const struct push_http_result *res)
{
	struct push_http_xfer *x = arg;

	x->h2s = NULL; /* freed by h2.c after this returns */
	x->done(x->arg, res);
	xfer_free(x);
}

/* h2.c cannot carry x's request (no h2 at that origin): curl takes it, in this turn. */
static void h2_fallback(void *arg, const struct push_http_request *rq)
{
	struct push_http_xfer *x = arg;

	x->h2s = NULL;
	x->headers = rq->headers;
	if (curl_begin(x->h, x, rq) < 0) {
		struct push_http_result res = {.code = CURLE_OUT_OF_MEMORY, .body = ""};

		res.error = curl_easy_strerror(res.code);
		x->done(x->arg, &res);
		xfer_free(x);
	}
}

void push_http_set_transport(struct push_http *h, bool nghttp2)
{
	if (nghttp2 && !h->h2 && push_h2_new(&h->h2, h->root) < 0) {
		log_error("push: cannot set up the nghttp2 client: pushes stay on libcurl");
		return;
	}
	h->use_h2 = nghttp2;
}

int push_http_start(struct push_http *h, const struct push_http_request *rq,
		    push_http_done_fn *done, void *arg, struct push_http_xfer **out)
{
	struct push_http_xfer *x = calloc(1, sizeof(*x));
	int rc = -1;

	if (!x) {
		curl_slist_free_all(rq->headers);
		goto out;
	}
	x->h = h;
	x->done = done;
	x->arg = arg;
	x->next = h->xfers;
	if (h->xfers)
		h->xfers->prev = x;
	h->xfers = x;
	h->active++;
	if (h->use_h2 && push_h2_wants(h->h2, rq->url)) {
		/* the headers pass to h2.c, which frees them on error too */
		rc = push_h2_start(h->h2, rq, h2_done, h2_fallback, x, &x->h2s);
		goto out;
	}
	x->headers = rq->headers;
	rc = curl_begin(h, x, rq);
out:
	if (rc < 0 && x) {
		xfer_free(x);
		x = NULL;
	}
	if (out)
		*out = x;
	return rc;
}

void push_http_cancel(struct push_http_xfer *x)
{
	if (x)
		xfer_free(x);
}

void push_body_abort(void *state, struct push_req *r)
{
	struct push_body *b = r->pdata;

	(void)state;
	if (b && b->xfer) {
		push_http_cancel(b->xfer);
		b->xfer = NULL;
	}
}

void push_body_release(struct push_body *b)
{
	push_http_cancel(b->xfer);
	b->xfer = NULL;
	free(b->body);
	b->body = NULL;
}

void push_body_cleanup(struct push_req *r)
{
	if (!r->pdata)
		return;
	push_body_release(r->pdata);
	free(r->pdata);
	r->pdata = NULL;
}

unsigned push_http_active(struct push_http *h)
{
	return h->active;
}
