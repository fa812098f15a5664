/* SPDX-License-Identifier: MIT */
/*
 * h2.c, the push layer's own HTTP/2 client (nghttp2 + OpenSSL on su_root),
 * as http.c sees it: http.c stays the one entry point the providers call
 * and hands https requests here when push.http2 = "nghttp2".
 */
#ifndef SIPWAKE_PUSH_H2_H
#define SIPWAKE_PUSH_H2_H

#include <nghttp2/nghttp2.h>

#include "push_int.h"

struct push_h2;
struct h2_stream;

/*
 * A request that the client cannot carry after all (the server did not
 * pick h2 in ALPN): the caller sends rq another way. rq->headers passes to
 * the callee; the other strings live only during the call. Runs from the
 * loop, like the completion callback; the stream is gone afterwards.
 */
typedef void push_h2_fallback_fn(void *arg, const struct push_http_request *rq);

int push_h2_new(struct push_h2 **out, su_root_t *root);
/* Close every connection and free every stream (no callbacks). Safe with NULL. */
void push_h2_free(struct push_h2 *c);
/* True when url is one this client takes: https. */
bool push_h2_wants(struct push_h2 *c, const char *url);
/*
 * Start a POST as a stream. Exactly one of done or fallback fires later from
 * the loop (never inside this call) unless push_h2_cancel() comes first.
 * Returns 0, or -1 (rq->headers freed, no callback).
 */
int push_h2_start(struct push_h2 *c, const struct push_http_request *rq, push_http_done_fn *done,
		  push_h2_fallback_fn *fallback, void *arg, struct h2_stream **out);
/* Abort a stream (reset on the wire if it was sent); no callback. Not from its own callback. */
void push_h2_cancel(struct h2_stream *s);
/* Streams alive (queued, open or finishing). */
unsigned push_h2_active(struct push_h2 *c);

/* ---- h2_req.c ---------------------------------------------------------- */

/*
 * Split https://host[:port][/path][?query] (host may be [v6]): host without
 * brackets, port ("443" when absent), :authority as written, :path ("/"
 * when empty), each malloc'd. Returns 0, or -1 with nothing allocated.
 */
int push_h2_parse_url(const char *url, char **host, char port[8], char **authority, char **path);
/*
 * The header block of a POST: :method, :scheme, :authority, :path, then
 * the lines of headers as curl would send them ("Name:" with no value
 * removes a header, "Name;" sends it empty; names lowercased), and
 * content-length unless given. One malloc'd block (free() it), *count
 * entries; NULL on ENOMEM.
 */
nghttp2_nv *push_h2_headers(const struct curl_slist *headers, const char *authority,
			    const char *path, size_t body_len, size_t *count);
/* Retry-After in seconds (a number or an HTTP date), capped at an hour; 0 when unusable. */
long push_h2_retry_after(const char *v, size_t len);

#endif
