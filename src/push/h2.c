/* SPDX-License-Identifier: MIT */
/*
 * The push layer's own HTTP/2 client (push.http2 = "nghttp2"): nghttp2's
 * session API over a non-blocking OpenSSL connection, on the daemon's
 * su_root. One long-lived connection per (origin, CA file, client
 * certificate) carries every request to it as a stream; requests beyond the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS wait in the connection's queue.
 * Frames are gathered into one buffer per loop turn (mem_send) and written
 * with one SSL_write; a wake-up reads all that is there (read-ahead) and
 * hands it to mem_recv. http.c is the entry point: it sends https URLs here
 * and everything else, or an origin whose server does not pick "h2" in
 * ALPN, to libcurl. Failures carry the CURLcode the curl path would report,
 * so the providers' verdicts (retry, permanent) do not depend on the path.
 */
#include "h2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sipwake/log.h"

/* Streams open at once on one connection, whatever the server allows. */
#define H2_MAX_STREAMS 1000
/* An idle connection older than this is replaced rather than reused (as curl's MAXAGE_CONN). */
#define H2_MAX_IDLE_MS (3600 * 1000)
/* How long an origin whose server did not pick h2 goes to curl before we ask again. */
#define H2_NO_H2_MS (600 * 1000)
/* How long a PING may go unanswered before the connection is given up on. */
#define H2_PING_TIMEOUT_MS 2000
/* How often lookups in progress are looked at. */
#define H2_LOOKUP_POLL_MS 2
/* Output gathered before it is written even within one turn. */
#define H2_OUT_CHUNK (64 * 1024)
/* Our receive windows: answers are small, but never wait for a WINDOW_UPDATE. */
#define H2_STREAM_WINDOW (1 << 20)
#define H2_CONN_WINDOW (16 << 20)

enum h2_state {
	H2_RESOLVING,  /* the host name is being looked up (getaddrinfo_a) */
	H2_CONNECTING, /* TCP connect in progress */
	H2_HANDSHAKE,  /* TLS handshake */
	H2_READY,      /* h2 session: streams may start */
	H2_DRAINING,   /* GOAWAY received or too old: no new streams, open ones finish */
	H2_FAILED,     /* could not be set up: waiting streams fail with conn->err */
	H2_CLOSED,     /* socket gone; freed once its streams are handed on */
	H2_STATE_COUNT
};

static const char *const statename[H2_STATE_COUNT] = {
	"RESOLVING", "CONNECTING", "HANDSHAKE", "READY", "DRAINING", "FAILED", "CLOSED",
};

struct h2_list {
	struct h2_stream *head, *tail;
};

struct h2_origin_note {
	struct h2_origin_note *next;
	char *key;
	uint64_t until_ms; /* no h2 there before this */
};

/*
 * A host name lookup: glibc's getaddrinfo_a() runs getaddrinfo() on a
 * thread of its own (as curl's threaded resolver does); the loop polls it
 * with a short timer while any is in progress, so no other thread ever
 * touches our memory but the gaicb glibc fills. It may outlive the
 * connection that asked (k = NULL then) until glibc is done with it.
 */
struct h2_lookup {
	struct h2_lookup *next;
	struct h2_conn *k;
	struct gaicb cb;
	struct addrinfo hints;
	char *host;
	char port[8];
};

struct push_h2 {
	su_root_t *root;
	struct h2_lookup *lookups;
	su_timer_t *lookup_timer;
	su_timer_t *kick; /* zero delay: the rest of this turn's work, once */
	bool kicked;
	struct h2_conn *conns;
	struct h2_list orphans; /* streams to place on a connection */
	struct h2_origin_note *no_h2;
	nghttp2_session_callbacks *cbs;
	unsigned active;
};

struct h2_conn {
	struct push_h2 *c;
	struct h2_conn *prev, *next;
	char *key;       /* host|port|ca|cert|key: what a stream must match to share it */
	char *host;      /* as in the URL, without brackets */
	char port[8];
	char *ca_file, *cert_file, *key_file;
	enum h2_state state;
	int fd, reg, events;
	struct h2_lookup *lookup;   /* while RESOLVING */
	struct addrinfo *addrs, *ai; /* the addresses, and the one being tried */
	SSL_CTX *ctx;
	SSL *ssl;
	nghttp2_session *ng;
	struct h2_list queue; /* not yet submitted, in order */
	struct h2_list open;  /* submitted */
	struct h2_list done;  /* finished, callback not yet run */
	unsigned nopen;
	CURLcode err;
	char errbuf[CURL_ERROR_SIZE];
	unsigned char *out;
	size_t out_len, out_off, out_cap;
	uint64_t last_used_ms;
	uint64_t reads;      /* reads that brought something: "heard from since?" */
	uint64_t ping_reads; /* reads when the PING in flight went out */
	bool ping_out;
	su_timer_t *ping_timer;
	bool settings_seen; /* the server's SETTINGS came: its stream limit is known */
	bool in_service;
};

enum h2_where { S_NONE, S_ORPHAN, S_QUEUED, S_OPEN, S_DONE };

struct h2_stream {
	struct push_h2 *c;
	struct h2_conn *conn; /* NULL while an orphan */
	struct h2_stream *prev, *next;
	struct h2_list *on;
	enum h2_where where;
	int32_t id;
	/* the request, kept until the end: it may be sent again on another connection */
	char *strs; /* one block: the strings below and the body point into it */
	char *url;
	char *key; /* connection key */
	char *host;
	char port[8];
	char *ca_file, *cert_file, *key_file;
	struct curl_slist *headers; /* kept for a fallback to curl */
	nghttp2_nv *nva; /* the header block, its text behind it */
	size_t nvlen;
	char *body;
	size_t body_len, body_off;
	uint64_t deadline_ms;
	uint64_t sent_reads; /* the connection's reads when it was submitted */
	su_timer_t *timer;
	push_http_done_fn *done;
	push_h2_fallback_fn *fallback;
	void *arg;
	/* the answer */
	long status;
	long retry_after_s;
	bool complete;
	bool finished; /* its result is set: the callback is due */
	char *resp;
	size_t resp_len, resp_cap;
	CURLcode code;
	char error[CURL_ERROR_SIZE];
};

static void kick(struct push_h2 *c);
static void conn_service(struct h2_conn *k);

/* ---- lists ------------------------------------------------------------- */

static void list_push(struct h2_list *l, struct h2_stream *s, enum h2_where w)
{
	s->prev = l->tail;
	s->next = NULL;
	if (l->tail)
		l->tail->next = s;
	else
		l->head = s;
	l->tail = s;
	s->on = l;
	s->where = w;
}

static void list_unlink(struct h2_stream *s)
{
	struct h2_list *l = s->on;

	if (!l)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->prev = s->next = NULL;
	s->on = NULL;
	s->where = S_NONE;
}

static struct h2_stream *list_pop(struct h2_list *l)
{
	struct h2_stream *s = l->head;

	if (s)
		list_unlink(s);
	return s;
}

/* ---- connection state -------------------------------------------------- */

/* The only place a connection changes state. */
static void conn_state(struct h2_conn *k, enum h2_state st)
{
	if (k->state == st)
		return;
	log_debug("push: h2 %s:%s: STATE %s => %s", k->host, k->port, statename[k->state],
		  statename[st]);
	k->state = st;
}

static void conn_error(struct h2_conn *k, CURLcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_error(struct h2_conn *k, CURLcode code, const char *fmt, ...)
{
	va_list ap;

	if (k->err != CURLE_OK)
		return; /* the first cause is the one that counts */
	k->err = code;
	va_start(ap, fmt);
	vsnprintf(k->errbuf, sizeof(k->errbuf), fmt, ap);
	va_end(ap);
}

static void conn_events(struct h2_conn *k, int events)
{
	if (k->reg > 0 && events != k->events) {
		su_root_eventmask(k->c->root, k->reg, k->fd, events);
		k->events = events;
	}
}

/* Drop the lookup, socket, TLS and session; the streams stay on their lists. */
static void conn_shut(struct h2_conn *k)
{
	if (k->lookup) {
		gai_cancel(&k->lookup->cb); /* it stays on c->lookups until glibc lets go */
		k->lookup->k = NULL;
		k->lookup = NULL;
	}
	if (k->reg > 0)
		su_root_deregister(k->c->root, k->reg);
	k->reg = 0;
	if (k->ssl)
		SSL_free(k->ssl);
	k->ssl = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	if (k->ng)
		nghttp2_session_del(k->ng);
	k->ng = NULL;
}

static void conn_free(struct h2_conn *k)
{
	struct push_h2 *c = k->c;

	conn_shut(k);
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	if (k->ping_timer)
		su_timer_destroy(k->ping_timer);
	SSL_CTX_free(k->ctx);
	if (k->addrs)
		freeaddrinfo(k->addrs);
	free(k->out);
	free(k->key);
	free(k->host);
	free(k->ca_file);
	free(k->cert_file);
	free(k->key_file);
	free(k);
}

/* ---- streams ----------------------------------------------------------- */

static void stream_free(struct h2_stream *s)
{
	list_unlink(s);
	if (s->timer)
		su_timer_destroy(s->timer);
	curl_slist_free_all(s->headers);
	free(s->strs);
	free(s->nva);
	free(s->resp);
	s->c->active--;
	free(s);
}

/* Forget the stream inside its nghttp2 session (a reset goes out). */
static void stream_detach(struct h2_stream *s)
{
	struct h2_conn *k = s->conn;

	if (s->where == S_OPEN && k && k->ng && s->id > 0) {
		nghttp2_session_set_stream_user_data(k->ng, s->id, NULL);
		nghttp2_submit_rst_stream(k->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
		kick(k->c);
	}
	if (s->where == S_OPEN && k)
		k->nopen--;
	s->id = 0;
}

/* The stream ended (answer or error): its callback runs from the done list. */
static void stream_finish(struct h2_stream *s, CURLcode code, const char *error)
{
	struct h2_conn *k = s->conn;

	if (s->finished)
		return;
	s->finished = true;
	su_timer_reset(s->timer);
	stream_detach(s);
	list_unlink(s);
	s->code = code;
	if (code != CURLE_OK && error)
		snprintf(s->error, sizeof(s->error), "%s", error);
	if (k) {
		list_push(&k->done, s, S_DONE);
	} else {
		/* an orphan: no connection to run it from, the kick does */
		list_push(&s->c->orphans, s, S_DONE);
	}
	kick(s->c);
}

/* Not answered and never seen by the server: place it on a (new) connection. */
static void stream_requeue(struct h2_stream *s)
{
	stream_detach(s);
	list_unlink(s);
	s->conn = NULL;
	s->status = 0;
	s->complete = false;
	s->resp_len = 0;
	s->body_off = 0;
	list_push(&s->c->orphans, s, S_ORPHAN);
	kick(s->c);
}

static void stream_run_done(struct h2_stream *s)
{
	struct push_http_result res = {0};

	res.code = s->code;
	res.status = s->code == CURLE_OK ? s->status : 0;
	res.body = s->resp ? s->resp : "";
	res.body_len = s->resp_len;
	res.error = s->error[0] ? s->error : curl_easy_strerror(s->code);
	res.retry_after_s = s->retry_after_s;
	s->done(s->arg, &res);
	stream_free(s);
}

static void ping_check(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct h2_conn *k = (struct h2_conn *)arg;

	if (k->state == H2_READY && k->reads == k->ping_reads) {
		log_notice("push: h2 %s:%s: no answer to a PING in %d ms: a new connection for what "
			   "follows",
			   k->host, k->port, H2_PING_TIMEOUT_MS);
		conn_state(k, H2_DRAINING);
		kick(k->c); /* its open streams end by their timers, then it closes */
	}
	k->ping_out = false;
}

static void stream_timeout(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct h2_stream *s = (struct h2_stream *)arg;
	struct h2_conn *k = s->conn;
	char msg[96];

	/*
	 * Not a byte from the server since this request went out: the
	 * connection may be dead without a FIN. A PING tells; unanswered,
	 * later pushes get a new connection.
	 */
	if (s->where == S_OPEN && k && k->state == H2_READY && k->ng && !k->ping_out &&
	    k->reads == s->sent_reads) {
		if (!k->ping_timer)
			k->ping_timer = su_timer_create(su_root_task(k->c->root), H2_PING_TIMEOUT_MS);
		if (k->ping_timer && nghttp2_submit_ping(k->ng, NGHTTP2_FLAG_NONE, NULL) == 0 &&
		    su_timer_set(k->ping_timer, ping_check, (su_timer_arg_t *)k) == 0) {
			k->ping_out = true;
			k->ping_reads = k->reads;
			kick(k->c);
		}
	}
	snprintf(msg, sizeof(msg), "Operation timed out after %s",
		 s->where == S_OPEN ? "the request was sent" : "waiting for a connection");
	stream_finish(s, CURLE_OPERATION_TIMEDOUT, msg);
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
	size_t n = 0;

	if (s) {
		n = s->body_len - s->body_off;
		if (n > len)
			n = len;
		memcpy(buf, s->body + s->body_off, n);
		s->body_off += n;
	}
	if (!s || s->body_off == s->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);

	if (!s || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		long st = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			st = st * 10 + (value[i] - '0');
		if (st >= 200) /* 1xx are interim */
			s->status = st;
	} else if (namelen == 11 && memcmp(name, "retry-after", 11) == 0) {
		s->retry_after_s = push_h2_retry_after((const char *)value, valuelen);
	}
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
		   size_t len, void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
	size_t room;

	if (!s)
		return 0;
	if (s->resp_len + len + 1 > s->resp_cap && s->resp_cap < PUSH_HTTP_MAX_BODY + 1) {
		size_t cap = s->resp_cap ? s->resp_cap * 2 : 512;
		char *b;

		while (cap < s->resp_len + len + 1 && cap < PUSH_HTTP_MAX_BODY + 1)
			cap *= 2;
		if (cap > PUSH_HTTP_MAX_BODY + 1)
			cap = PUSH_HTTP_MAX_BODY + 1;
		b = realloc(s->resp, cap);
		if (!b)
			return 0; /* keep what we have; error bodies are short */
		s->resp = b;
		s->resp_cap = cap;
	}
	room = s->resp_cap ? s->resp_cap - 1 - s->resp_len : 0;
	if (len > room)
		len = room; /* capped at PUSH_HTTP_MAX_BODY */
	if (len) {
		memcpy(s->resp + s->resp_len, data, len);
		s->resp_len += len;
		s->resp[s->resp_len] = '\0';
	}
	return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct h2_conn *k = user;

	if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
		k->settings_seen = true;
		return 0;
	}
	if (f->hd.type == NGHTTP2_GOAWAY) {
		log_info("push: h2 %s:%s: GOAWAY (error %u, last stream %d)", k->host, k->port,
			 f->goaway.error_code, f->goaway.last_stream_id);
		if (k->state == H2_READY)
			conn_state(k, H2_DRAINING);
		return 0;
	}
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
		if (s)
			s->complete = true;
	}
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);
	char msg[96];

	if (!s)
		return 0;
	s->id = 0; /* closed already: nothing to reset */
	if (s->complete && s->status) {
		stream_finish(s, CURLE_OK, NULL);
	} else if (error_code == NGHTTP2_REFUSED_STREAM) {
		/* above a GOAWAY's last stream, or refused: the server did not act on it */
		stream_requeue(s);
	} else {
		snprintf(msg, sizeof(msg), "HTTP/2 stream %d was not closed cleanly: %s (err %u)", id,
			 nghttp2_http2_strerror(error_code), error_code);
		stream_finish(s, CURLE_HTTP2_STREAM, msg);
	}
	return 0;
}

/* ---- setup ------------------------------------------------------------- */

static bool ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int tls_setup(struct h2_conn *k)
{
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	X509_VERIFY_PARAM *vp;
	char buf[256];

	k->ctx = SSL_CTX_new(TLS_client_method());
	if (!k->ctx) {
		conn_error(k, CURLE_OUT_OF_MEMORY, "SSL_CTX_new failed");
		return -1;
	}
	SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_read_ahead(k->ctx, 1); /* one read() takes all that came */
	SSL_CTX_set_mode(k->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* As curl's CURLOPT_CAINFO: the file replaces the system store. */
	if (push_set(k->ca_file) ? SSL_CTX_load_verify_locations(k->ctx, k->ca_file, NULL) != 1
				 : SSL_CTX_set_default_verify_paths(k->ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		conn_error(k, CURLE_SSL_CACERT_BADFILE, "error setting certificate file: %s (%s)",
			   push_set(k->ca_file) ? k->ca_file : "system store", buf);
		return -1;
	}
	if (push_set(k->cert_file) &&
	    (SSL_CTX_use_certificate_chain_file(k->ctx, k->cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(k->ctx, push_set(k->key_file) ? k->key_file : k->cert_file,
					 SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(k->ctx) != 1)) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		conn_error(k, CURLE_SSL_CERTPROBLEM, "unable to use client certificate %s: %s",
			   k->cert_file, buf);
		return -1;
	}
	ERR_clear_error();
	k->ssl = SSL_new(k->ctx);
	if (!k->ssl || SSL_set_fd(k->ssl, k->fd) != 1 ||
	    SSL_set_alpn_protos(k->ssl, alpn, sizeof(alpn) - 1) != 0) {
		conn_error(k, CURLE_OUT_OF_MEMORY, "SSL setup failed");
		return -1;
	}
	vp = SSL_get0_param(k->ssl);
	if (ip_literal(k->host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, k->host) != 1) {
			conn_error(k, CURLE_SSL_CONNECT_ERROR, "bad address %s", k->host);
			return -1;
		}
	} else if (SSL_set1_host(k->ssl, k->host) != 1 ||
		   SSL_set_tlsext_host_name(k->ssl, k->host) != 1) {
		conn_error(k, CURLE_SSL_CONNECT_ERROR, "bad host name %s", k->host);
		return -1;
	}
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_set_connect_state(k->ssl);
	return 0;
}

static int conn_wakeup(su_root_magic_t *m, su_wait_t *w, su_wakeup_arg_t *arg);

/* Start a TCP connect to k->ai or the addresses after it; -1 (error set) when none is left. */
static int tcp_connect(struct h2_conn *k)
{
	int one = 1;
	su_wait_t w;

	for (; k->ai; k->ai = k->ai->ai_next) {
		if (k->fd >= 0) {
			if (k->reg > 0)
				su_root_deregister(k->c->root, k->reg);
			k->reg = 0;
			close(k->fd);
		}
		k->fd = socket(k->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (k->fd < 0) {
			conn_error(k, CURLE_COULDNT_CONNECT, "socket: %s", strerror(errno));
			continue;
		}
		setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(k->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (connect(k->fd, k->ai->ai_addr, k->ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			conn_error(k, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s: %s",
				   k->host, k->port, strerror(errno));
			continue;
		}
		if (su_wait_create(&w, k->fd, SU_WAIT_OUT) < 0) {
			conn_error(k, CURLE_OUT_OF_MEMORY, "su_wait_create failed");
			return -1;
		}
		k->reg = su_root_register(k->c->root, &w, conn_wakeup, (su_wakeup_arg_t *)k, 0);
		if (k->reg <= 0) {
			su_wait_destroy(&w);
			k->reg = 0;
			conn_error(k, CURLE_OUT_OF_MEMORY, "su_root_register failed");
			return -1;
		}
		k->events = SU_WAIT_OUT;
		k->err = CURLE_OK; /* an earlier address's failure no longer counts */
		k->errbuf[0] = '\0';
		return 0;
	}
	conn_error(k, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s", k->host, k->port);
	return -1;
}

static void lookup_poll(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct push_h2 *c = (struct push_h2 *)arg;

	for (struct h2_lookup **pp = &c->lookups, *l; (l = *pp);) {
		struct h2_conn *k = l->k;
		int err = gai_error(&l->cb);

		if (err == EAI_INPROGRESS) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		if (k) {
			k->lookup = NULL;
			if (err == 0) {
				k->addrs = k->ai = l->cb.ar_result;
				l->cb.ar_result = NULL;
				conn_state(k, H2_CONNECTING);
				if (tcp_connect(k) < 0)
					conn_state(k, H2_FAILED);
			} else {
				conn_error(k, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s (%s)",
					   k->host, gai_strerror(err));
				conn_state(k, H2_FAILED);
			}
			kick(c);
		}
		if (l->cb.ar_result)
			freeaddrinfo(l->cb.ar_result);
		free(l->host);
		free(l);
	}
	if (c->lookups)
		su_timer_set_interval(c->lookup_timer, lookup_poll, (su_timer_arg_t *)c,
				      H2_LOOKUP_POLL_MS);
}

/* Addresses of k->host: at once for an IP literal, else from a lookup (RESOLVING). */
static int conn_resolve(struct h2_conn *k)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct h2_lookup *l;
	struct gaicb *list[1];
	int err;

	if (getaddrinfo(k->host, k->port, &hints, &k->addrs) == 0) {
		k->ai = k->addrs;
		conn_state(k, H2_CONNECTING);
		return tcp_connect(k);
	}
	k->addrs = NULL;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->host = strdup(k->host))) {
		free(l);
		conn_error(k, CURLE_OUT_OF_MEMORY, "out of memory");
		return -1;
	}
	snprintf(l->port, sizeof(l->port), "%s", k->port);
	l->hints.ai_socktype = SOCK_STREAM;
	l->hints.ai_flags = AI_ADDRCONFIG;
	l->cb.ar_name = l->host;
	l->cb.ar_service = l->port;
	l->cb.ar_request = &l->hints;
	list[0] = &l->cb;
	err = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (err) {
		conn_error(k, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s (%s)", k->host,
			   gai_strerror(err));
		free(l->host);
		free(l);
		return -1;
	}
	l->k = k;
	k->lookup = l;
	l->next = k->c->lookups;
	k->c->lookups = l;
	su_timer_set_interval(k->c->lookup_timer, lookup_poll, (su_timer_arg_t *)k->c,
			      H2_LOOKUP_POLL_MS);
	conn_state(k, H2_RESOLVING);
	return 0;
}

static struct h2_conn *conn_new(struct push_h2 *c, const struct h2_stream *s)
{
	struct h2_conn *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->c = c;
	k->fd = -1;
	k->key = strdup(s->key);
	k->host = strdup(s->host);
	k->ca_file = strdup(s->ca_file);
	k->cert_file = strdup(s->cert_file);
	k->key_file = strdup(s->key_file);
	if (!k->key || !k->host || !k->ca_file || !k->cert_file || !k->key_file) {
		free(k->key);
		free(k->host);
		free(k->ca_file);
		free(k->cert_file);
		free(k->key_file);
		free(k);
		return NULL;
	}
	snprintf(k->port, sizeof(k->port), "%s", s->port);
	k->last_used_ms = clock_now_ms();
	k->next = c->conns;
	if (c->conns)
		c->conns->prev = k;
	c->conns = k;
	k->state = H2_RESOLVING;
	log_debug("push: h2 %s:%s: new connection", k->host, k->port);
	if (conn_resolve(k) < 0)
		conn_state(k, H2_FAILED); /* the kick fails its streams */
	return k;
}

static int session_start(struct h2_conn *k)
{
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
	};

	if (nghttp2_session_client_new(&k->ng, k->c->cbs, k) != 0) {
		k->ng = NULL;
		return -1;
	}
	if (nghttp2_submit_settings(k->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(k->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
		return -1;
	return 0;
}

/* ---- I/O ----------------------------------------------------------------- */

static void conn_lost(struct h2_conn *k, CURLcode code, const char *why)
{
	conn_error(k, code, "%s", why);
	log_debug("push: h2 %s:%s: connection lost: %s", k->host, k->port, k->errbuf);
	conn_shut(k);
	conn_state(k, H2_CLOSED);
}

static void tls_failed(struct h2_conn *k, int ret)
{
	long vr = SSL_get_verify_result(k->ssl);
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (vr != X509_V_OK) {
		conn_error(k, CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem: %s",
			   X509_verify_cert_error_string(vr));
	} else {
		int se = SSL_get_error(k->ssl, ret);

		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "%s",
				 se == SSL_ERROR_SYSCALL && errno ? strerror(errno)
								  : "connection closed");
		conn_error(k, CURLE_SSL_CONNECT_ERROR, "TLS connect error: %s", buf);
	}
	ERR_clear_error();
	conn_shut(k);
	conn_state(k, H2_FAILED);
}

static void handshake(struct h2_conn *k)
{
	const unsigned char *proto = NULL;
	unsigned plen = 0;
	int ret;

	ERR_clear_error();
	ret = SSL_do_handshake(k->ssl);
	if (ret != 1) {
		int se = SSL_get_error(k->ssl, ret);

		if (se == SSL_ERROR_WANT_READ)
			conn_events(k, SU_WAIT_IN);
		else if (se == SSL_ERROR_WANT_WRITE)
			conn_events(k, SU_WAIT_OUT);
		else
			tls_failed(k, ret);
		return;
	}
	SSL_get0_alpn_selected(k->ssl, &proto, &plen);
	if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
		struct h2_origin_note *n = calloc(1, sizeof(*n));

		log_info("push: %s:%s does not offer HTTP/2: its pushes go through libcurl", k->host,
			 k->port);
		if (n && (n->key = strdup(k->key))) {
			n->until_ms = clock_now_ms() + H2_NO_H2_MS;
			n->next = k->c->no_h2;
			k->c->no_h2 = n;
		} else {
			free(n);
		}
		conn_shut(k);
		conn_state(k, H2_CLOSED);
		/* the queue goes to curl from conn_service (no error set) */
		k->err = CURLE_UNSUPPORTED_PROTOCOL;
		snprintf(k->errbuf, sizeof(k->errbuf), "no h2 in ALPN");
		return;
	}
	if (session_start(k) < 0) {
		conn_lost(k, CURLE_OUT_OF_MEMORY, "nghttp2 session setup failed");
		return;
	}
	conn_state(k, H2_READY);
	conn_events(k, SU_WAIT_IN);
}

/* Read all that is there and feed it to nghttp2. */
static void conn_read(struct h2_conn *k)
{
	unsigned char buf[16384];

	for (;;) {
		int n, se;
		ssize_t used;

		ERR_clear_error();
		n = SSL_read(k->ssl, buf, sizeof(buf));
		if (n <= 0) {
			se = SSL_get_error(k->ssl, n);
			if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
				return;
			conn_lost(k, CURLE_RECV_ERROR,
				  se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && !errno)
					  ? "connection closed by the server"
					  : "TLS read error");
			ERR_clear_error();
			return;
		}
		k->reads++;
		used = nghttp2_session_mem_recv(k->ng, buf, (size_t)n);
		if (used < 0) {
			conn_lost(k, CURLE_HTTP2, nghttp2_strerror((int)used));
			return;
		}
		if (k->state == H2_CLOSED)
			return;
	}
}

/* Gather what nghttp2 has to send and write it; OUT interest only while it blocks. */
static void conn_flush(struct h2_conn *k)
{
	for (;;) {
		while (k->out_off < k->out_len) {
			int n;

			ERR_clear_error();
			n = SSL_write(k->ssl, k->out + k->out_off, (int)(k->out_len - k->out_off));
			if (n <= 0) {
				int se = SSL_get_error(k->ssl, n);
				if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
					conn_events(k, SU_WAIT_IN | SU_WAIT_OUT);
					return;
				}
				conn_lost(k, CURLE_SEND_ERROR, "TLS write error");
				ERR_clear_error();
				return;
			}
			k->out_off += (size_t)n;
		}
		k->out_off = k->out_len = 0;
		for (;;) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(k->ng, &data);

			if (n < 0) {
				conn_lost(k, CURLE_HTTP2, nghttp2_strerror((int)n));
				return;
			}
			if (n == 0)
				break;
			if (k->out_len + (size_t)n > k->out_cap) {
				size_t cap = k->out_cap ? k->out_cap : H2_OUT_CHUNK;
				unsigned char *b;

				while (cap < k->out_len + (size_t)n)
					cap *= 2;
				b = realloc(k->out, cap);
				if (!b) {
					conn_lost(k, CURLE_OUT_OF_MEMORY, "out of memory");
					return;
				}
				k->out = b;
				k->out_cap = cap;
			}
			memcpy(k->out + k->out_len, data, (size_t)n);
			k->out_len += (size_t)n;
			if (k->out_len >= H2_OUT_CHUNK)
				break;
		}
		if (k->out_len == 0)
			break;
	}
	conn_events(k, SU_WAIT_IN);
}

/*
 * Streams this connection may have open. Nothing before the server's
 * SETTINGS (they follow the handshake at once): a first flight beyond a
 * small limit would be refused, or end the connection at a strict server.
 */
static unsigned conn_limit(struct h2_conn *k)
{
	uint32_t m = nghttp2_session_get_remote_settings(k->ng,
							 NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	if (!k->settings_seen)
		return 0;
	return m > H2_MAX_STREAMS ? H2_MAX_STREAMS : m;
}

static void conn_submit(struct h2_conn *k)
{
	unsigned limit = conn_limit(k);

	while (k->queue.head && k->nopen < limit && k->state == H2_READY) {
		struct h2_stream *s = k->queue.head;
		nghttp2_data_provider dp = {.read_callback = body_read};
		int32_t id;

		dp.source.ptr = s;
		id = nghttp2_submit_request(k->ng, NULL, s->nva, s->nvlen,
					    s->body_len ? &dp : NULL, s);
		if (id < 0) {
			if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
				conn_state(k, H2_DRAINING); /* ids used up: a new connection */
				return;
			}
			stream_finish(s, CURLE_OUT_OF_MEMORY, nghttp2_strerror(id));
			continue;
		}
		list_unlink(s);
		list_push(&k->open, s, S_OPEN);
		s->id = id;
		k->nopen++;
		k->last_used_ms = clock_now_ms();
		s->sent_reads = k->reads;
	}
}

static int conn_wakeup(su_root_magic_t *m, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct h2_conn *k = (struct h2_conn *)arg;
	int ev = su_wait_events(w, k->fd);

	if (k->state == H2_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (SU_WAIT_OUT | SU_WAIT_ERR | SU_WAIT_HUP)))
			return 0;
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_error(k, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s: %s",
				   k->host, k->port, strerror(err));
			k->ai = k->ai ? k->ai->ai_next : NULL; /* the next address, if any */
			if (!k->ai || tcp_connect(k) < 0) {
				conn_shut(k);
				conn_state(k, H2_FAILED);
			}
		} else if (tls_setup(k) < 0) {
			conn_shut(k);
			conn_state(k, H2_FAILED);
		} else {
			conn_state(k, H2_HANDSHAKE);
		}
	}
	if (k->state == H2_HANDSHAKE)
		handshake(k);
	else if (k->state == H2_READY || k->state == H2_DRAINING)
		conn_read(k);
	conn_service(k);
	return 0;
}

/* ---- placing streams ------------------------------------------------------ */

static bool no_h2(struct push_h2 *c, const char *key)
{
	uint64_t now = clock_now_ms();

	for (struct h2_origin_note **pp = &c->no_h2, *n; (n = *pp);) {
		if (n->until_ms <= now) {
			*pp = n->next;
			free(n->key);
			free(n);
			continue;
		}
		if (strcmp(n->key, key) == 0)
			return true;
		pp = &n->next;
	}
	return false;
}

/* Hand a stream that never reached a server to curl (ownership of its headers passes). */
static void stream_to_curl(struct h2_stream *s)
{
	struct push_http_request rq = {0};
	uint64_t now = clock_now_ms();

	rq.url = s->url;
	rq.headers = s->headers;
	s->headers = NULL;
	rq.body = s->body ? s->body : "";
	rq.body_len = s->body_len;
	rq.timeout_ms = s->deadline_ms > now ? (long)(s->deadline_ms - now) : 1;
	rq.ca_file = s->ca_file;
	rq.cert_file = s->cert_file;
	rq.key_file = s->key_file;
	list_unlink(s);
	s->fallback(s->arg, &rq);
	stream_free(s);
}

static void place(struct push_h2 *c, struct h2_stream *s)
{
	struct h2_conn *k;
	uint64_t now = clock_now_ms();

	for (k = c->conns; k; k = k->next) {
		if (strcmp(k->key, s->key) != 0)
			continue;
		if (k->state == H2_READY && !k->open.head && !k->queue.head &&
		    now - k->last_used_ms > H2_MAX_IDLE_MS)
			conn_state(k, H2_DRAINING); /* too old to trust: replaced */
		if (k->state == H2_RESOLVING || k->state == H2_CONNECTING ||
		    k->state == H2_HANDSHAKE || k->state == H2_READY)
			break;
	}
	if (!k && no_h2(c, s->key)) {
		stream_to_curl(s);
		return;
	}
	if (!k)
		k = conn_new(c, s);
	if (!k) {
		stream_finish(s, CURLE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	s->conn = k;
	list_push(&k->queue, s, S_QUEUED);
}

/* Everything a connection owes after an event: callbacks, new streams, output, its end. */
static void conn_service(struct h2_conn *k)
{
	struct h2_stream *s;

	if (k->in_service)
		return;
	k->in_service = true;
	if (k->state == H2_FAILED || k->state == H2_CLOSED) {
		bool fallback = k->err == CURLE_UNSUPPORTED_PROTOCOL;
		bool failed = k->state == H2_FAILED;

		/* open streams were sent: they fail; waiting ones fail only if it never came up */
		while ((s = k->open.head))
			stream_finish(s, k->err ? k->err : CURLE_RECV_ERROR, k->errbuf);
		while ((s = list_pop(&k->queue))) {
			if (fallback)
				stream_to_curl(s);
			else if (failed)
				stream_finish(s, k->err ? k->err : CURLE_COULDNT_CONNECT, k->errbuf);
			else
				stream_requeue(s);
		}
	} else if (k->state == H2_DRAINING) {
		while ((s = k->queue.head))
			stream_requeue(s);
	}
	while ((s = list_pop(&k->done)))
		stream_run_done(s);
	if (k->state == H2_READY)
		conn_submit(k);
	if ((k->state == H2_READY || k->state == H2_DRAINING) && k->ng) {
		conn_flush(k);
		if (k->state == H2_DRAINING && !k->open.head) {
			log_debug("push: h2 %s:%s: drained", k->host, k->port);
			conn_shut(k);
			conn_state(k, H2_CLOSED);
		} else if (k->state != H2_CLOSED && !nghttp2_session_want_read(k->ng) &&
			   !nghttp2_session_want_write(k->ng)) {
			conn_lost(k, CURLE_RECV_ERROR, "session ended");
		}
	}
	/* a connection that is not up yet and has nobody waiting for it goes */
	if ((k->state == H2_RESOLVING || k->state == H2_CONNECTING || k->state == H2_HANDSHAKE) &&
	    !k->queue.head) {
		conn_shut(k);
		conn_state(k, H2_CLOSED);
	}
	k->in_service = false;
	if ((k->state == H2_CLOSED || k->state == H2_FAILED)) {
		if (!k->open.head && !k->queue.head && !k->done.head)
			conn_free(k);
		else
			kick(k->c); /* streams were added meanwhile: next turn */
	}
}

static void kick_fired(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct push_h2 *c = (struct push_h2 *)arg;
	struct h2_list orphans = c->orphans;
	struct h2_stream *s;
	struct h2_conn *k, *next;

	c->kicked = false;
	c->orphans.head = c->orphans.tail = NULL;
	for (s = orphans.head; s; s = s->next)
		s->on = &orphans;
	while ((s = list_pop(&orphans))) {
		if (s->finished)
			stream_run_done(s);
		else
			place(c, s);
	}
	for (k = c->conns; k; k = next) {
		next = k->next;
		conn_service(k);
	}
}

static void kick(struct push_h2 *c)
{
	if (c->kicked)
		return;
	if (su_timer_set_interval(c->kick, kick_fired, (su_timer_arg_t *)c, 0) == 0)
		c->kicked = true;
}

/* ---- the interface -------------------------------------------------------- */

bool push_h2_wants(struct push_h2 *c, const char *url)
{
	return c && url && strncasecmp(url, "https://", 8) == 0;
}

int push_h2_start(struct push_h2 *c, const struct push_http_request *rq, push_http_done_fn *done,
		  push_h2_fallback_fn *fallback, void *arg, struct h2_stream **out)
{
	struct h2_stream *s = calloc(1, sizeof(*s));
	char *authority = NULL, *path = NULL;
	int rc = -1;

	*out = NULL;
	if (!s) {
		curl_slist_free_all(rq->headers);
		return -1;
	}
	c->active++;
	s->c = c;
	s->headers = rq->headers;
	s->done = done;
	s->fallback = fallback;
	s->arg = arg;
	s->body_len = rq->body_len;
	{
		const char *ca = rq->ca_file ? rq->ca_file : "", *cert = rq->cert_file ? rq->cert_file : "",
			   *keyf = rq->key_file ? rq->key_file : "";
		char *host = NULL, *p;
		size_t size;

		if (push_h2_parse_url(rq->url, &host, s->port, &authority, &path) < 0)
			goto out;
		/* url, host, ca, cert, key, then host|port|ca|cert|key, then the body */
		size = 2 * (strlen(host) + strlen(ca) + strlen(cert) + strlen(keyf)) + strlen(rq->url) +
		       strlen(s->port) + 16 + rq->body_len;
		s->strs = p = malloc(size);
		if (!p) {
			free(host);
			goto out;
		}
#define PUT(field, v) (s->field = p, p = stpcpy(p, v) + 1)
		PUT(url, rq->url);
		PUT(host, host);
		PUT(ca_file, ca);
		PUT(cert_file, cert);
		PUT(key_file, keyf);
#undef PUT
		s->key = p; /* host|port|ca|cert|key */
		p = stpcpy(p, host);
		*p++ = '|';
		p = stpcpy(p, s->port);
		*p++ = '|';
		p = stpcpy(p, ca);
		*p++ = '|';
		p = stpcpy(p, cert);
		*p++ = '|';
		p = stpcpy(p, keyf) + 1;
		free(host);
		if (rq->body_len) {
			s->body = p;
			memcpy(p, rq->body, rq->body_len);
		}
	}
	s->nva = push_h2_headers(s->headers, authority, path, s->body_len, &s->nvlen);
	if (!s->nva)
		goto out;
	s->deadline_ms = clock_now_ms() + (uint64_t)(rq->timeout_ms > 0 ? rq->timeout_ms : 1);
	s->timer = su_timer_create(su_root_task(c->root), rq->timeout_ms > 0 ? rq->timeout_ms : 1);
	if (!s->timer || su_timer_set(s->timer, stream_timeout, (su_timer_arg_t *)s) < 0)
		goto out;
	list_push(&c->orphans, s, S_ORPHAN);
	kick(c);
	rc = 0;
out:
	free(authority);
	free(path);
	if (rc < 0) {
		stream_free(s);
		s = NULL;
	}
	*out = s;
	return rc;
}

void push_h2_cancel(struct h2_stream *s)
{
	struct push_h2 *c = s ? s->c : NULL;

	if (!s)
		return;
	stream_detach(s);
	stream_free(s);
	kick(c); /* a connection may have nobody left to set it up for */
}

int push_h2_new(struct push_h2 **out, su_root_t *root)
{
	struct push_h2 *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -1;
	c->root = root;
	c->kick = su_timer_create(su_root_task(root), 0);
	c->lookup_timer = su_timer_create(su_root_task(root), H2_LOOKUP_POLL_MS);
	if (!c->kick || !c->lookup_timer || nghttp2_session_callbacks_new(&c->cbs) != 0) {
		if (c->kick)
			su_timer_destroy(c->kick);
		if (c->lookup_timer)
			su_timer_destroy(c->lookup_timer);
		free(c);
		return -1;
	}
	nghttp2_session_callbacks_set_on_header_callback(c->cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c->cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(c->cbs, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(c->cbs, on_close);
	*out = c;
	return 0;
}

void push_h2_free(struct push_h2 *c)
{
	struct h2_stream *s;

	if (!c)
		return;
	while (c->conns) {
		struct h2_conn *k = c->conns;

		while ((s = list_pop(&k->open)))
			stream_free(s);
		while ((s = list_pop(&k->queue)))
			stream_free(s);
		while ((s = list_pop(&k->done)))
			stream_free(s);
		conn_free(k);
	}
	while ((s = list_pop(&c->orphans)))
		stream_free(s);
	/* glibc may still be writing into a lookup: wait for it (shutdown only) */
	while (c->lookups) {
		struct h2_lookup *l = c->lookups;
		const struct gaicb *list[1] = {&l->cb};

		c->lookups = l->next;
		if (gai_cancel(&l->cb) == EAI_NOTCANCELED)
			while (gai_error(&l->cb) == EAI_INPROGRESS)
				gai_suspend(list, 1, NULL);
		if (l->cb.ar_result)
			freeaddrinfo(l->cb.ar_result);
		free(l->host);
		free(l);
	}
	su_timer_destroy(c->lookup_timer);
	while (c->no_h2) {
		struct h2_origin_note *n = c->no_h2;
		c->no_h2 = n->next;
		free(n->key);
		free(n);
	}
	nghttp2_session_callbacks_del(c->cbs);
	su_timer_destroy(c->kick);
	free(c);
}

unsigned push_h2_active(struct push_h2 *c)
{
	return c ? c->active : 0;
}
