/* SPDX-License-Identifier: MIT */
/*
 * Inside the push layer: what push.c (the dispatcher), apns.c, fcm.c,
 * webpush.c and service.c (the providers), http.c (libcurl multi on
 * su_root), jwt.c (signing, base64url) and payload.c (payload fields and
 * fitting a payload to its size limit) share. Nothing
 * outside src/push/ includes this file; the rest of the daemon sees only
 * include/sipwake/push.h.
 */
#ifndef SIPWAKE_PUSH_INT_H
#define SIPWAKE_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/clock.h"
#include "sipwake/push.h"

/* True for a string that is set: not NULL, not empty (config values, tokens). */
static inline bool push_set(const char *s)
{
	return s && s[0];
}

/* ---- http.c: libcurl multi handle driven by su_root ---------------- */

struct push_http;
struct push_http_xfer;

/* Outcome of one transfer, valid during the completion callback only. */
struct push_http_result {
	CURLcode code;    /* CURLE_OK when an HTTP answer came */
	long status;      /* HTTP status, 0 without an answer */
	const char *body; /* answer body, NUL-terminated (capped at PUSH_HTTP_MAX_BODY) */
	size_t body_len;
	const char *error; /* curl's error text when code != CURLE_OK */
	long retry_after_s; /* Retry-After of the answer in seconds, 0 if none */
};

#define PUSH_HTTP_MAX_BODY 16384

typedef void push_http_done_fn(void *arg, const struct push_http_result *res);

/* What to send; strings are copied or only used during push_http_start(). */
struct push_http_request {
	const char *url;
	struct curl_slist *headers; /* ownership passes to the transfer */
	const char *body;           /* POST body (copied) */
	size_t body_len;
	long timeout_ms;            /* whole transfer; > 0 */
	const char *ca_file;        /* NULL/"" = system trust store */
	const char *cert_file;      /* TLS client certificate (PEM) or NULL */
	const char *key_file;       /* its private key or NULL */
};

int push_http_new(struct push_http **out, su_root_t *root);
/*
 * Where new https transfers go: false = libcurl (the default), true = the
 * nghttp2 client (h2.c) where it can (push.http2). Transfers in flight stay
 * where they are.
 */
void push_http_set_transport(struct push_http *h, bool nghttp2);
/* Abort every transfer (no callbacks) and free. Safe with NULL. */
void push_http_free(struct push_http *h);
/*
 * Start a POST. done fires once from the loop (never from inside this call)
 * unless push_http_cancel() comes first. Returns 0, or -1 (headers freed).
 */
int push_http_start(struct push_http *h, const struct push_http_request *rq,
		    push_http_done_fn *done, void *arg, struct push_http_xfer **out);
/* Abort a transfer; its callback never fires. Not from inside its own callback. */
void push_http_cancel(struct push_http_xfer *x);
/* Transfers in flight. */
unsigned push_http_active(struct push_http *h);

/*
 * What each provider keeps per request, at the start of its per-request
 * data (r->pdata): the body it sends on every attempt and the transfer in
 * flight. The helpers below serve every provider.
 */
struct push_body {
	char *body;
	size_t body_len;
	struct push_http_xfer *xfer;
};
/* A provider's abort: cancel the transfer in flight, if any (r->pdata starts with a push_body). */
void push_body_abort(void *state, struct push_req *r);
/* Cancel the transfer and free the body; the struct itself stays. */
void push_body_release(struct push_body *b);
/* A provider's req_cleanup when its data owns nothing but the push_body: release, free pdata. */
void push_body_cleanup(struct push_req *r);

/* ---- jwt.c: base64url, keys, JWT signing, UUIDs ---------------------- */

/* base64url without padding; malloc'd, NULL on ENOMEM. */
char *push_b64url(const void *data, size_t len);
/* Decode base64url (padding optional) into a malloc'd buffer; NULL if invalid. */
unsigned char *push_b64url_decode(const char *s, size_t *out_len);

/*
 * Refuse a key file that is missing, not a regular file or readable or
 * writable by others. Returns 0 or -1 with err filled.
 */
int push_key_file_check(const char *path, char *err, size_t errlen);
/* Load a PEM private key from a file (checked as above). NULL + err on failure. */
EVP_PKEY *push_key_load(const char *path, char *err, size_t errlen);
/* Load a PEM private key from memory (service-account JSON). */
EVP_PKEY *push_key_from_pem(const char *pem, char *err, size_t errlen);

/*
 * Sign a JWT: base64url(header).base64url(claims).base64url(signature).
 * alg is "ES256" (P-256 key; raw r||s signature as RFC 7518 wants) or
 * "RS256"; header must already carry "alg". Returns a malloc'd string.
 */
char *push_jwt_sign(EVP_PKEY *key, const char *alg, json_t *header, json_t *claims);

/* A random (version 4) UUID in canonical lowercase form. */
void push_uuid4(char out[37]);

/* ---- push.c <-> providers ------------------------------------------ */

struct push_req {
	unsigned refs;
	struct push *p;             /* NULL once push_free() ran */
	struct push_req *prev, *next; /* live requests of p */
	const struct push_provider *ops; /* the provider (static table) */
	struct push_inst *inst;     /* provider instance of the attempt in flight */
	enum push_kind kind;
	struct pn_identity id;      /* deep copy */
	const char *token;          /* id.token or id.voip_token: the one pushed */
	bool voip;                  /* PushKit (APNs VoIP) */
	struct push_payload pl;     /* deep copies of the caller's strings */
	uint64_t start_ms, deadline_ms;
	double start_msf;           /* for the latency figure */
	unsigned attempts;
	bool auth_retried;          /* one credential refresh per request */
	bool detached;              /* requester let go: no callback */
	bool in_attempt;
	push_done_fn *cb;
	void *ctx;
	su_timer_t *retry_timer;
	int last_status;
	uint64_t retry_after_ms;    /* provider's Retry-After for the next retry, 0 = none */
	char reason[96];
	void *pdata;                /* provider's per-request data */
	struct push_req *wait_next; /* provider queues (FCM waiting for a token) */
};

/* A provider: a table of functions; apns.c, fcm.c, webpush.c, service.c are the instances. */
struct push_provider {
	const char *name;
	enum pn_provider id;
	/* Load credentials. 0 ok (*state set), 1 not configured, -1 error (logged). */
	int (*create)(void **state, struct push *p, const struct sw_config *cfg);
	void (*destroy)(void *state);
	/* Choose the token and build the payload once. 0 or -(enum push_result), reason set. */
	int (*prepare)(void *state, struct push_req *r);
	/*
	 * Begin one attempt. 0: push_attempt_done() follows later from the loop;
	 * -1: could not start (treated as a retryable failure). Never calls
	 * push_attempt_done() itself.
	 */
	int (*start)(void *state, struct push_req *r);
	/* Stop the attempt in flight; push_attempt_done() will not be called. */
	void (*abort)(void *state, struct push_req *r);
	/* Free r->pdata. */
	void (*req_cleanup)(struct push_req *r);
};

extern const struct push_provider push_apns_provider;
extern const struct push_provider push_fcm_provider;
extern const struct push_provider push_webpush_provider;
extern const struct push_provider push_service_provider;
/* service.c: the pn-provider name of a push.http instance. */
const char *push_service_name_of(void *state);

/* Live credentials of one provider; old ones retire after a reload. */
struct push_inst {
	const struct push_provider *ops;
	void *state;
	struct push *p;
	unsigned inflight;
	bool retired;
	struct push_inst *next; /* retired list */
};

/* Provider → dispatcher: one attempt ended. reason may be NULL. */
void push_attempt_done(struct push_req *r, enum push_result res, int http_status,
		       const char *reason);
/*
 * Provider → dispatcher: the attempt's transfer got no HTTP answer. A
 * certificate problem (the peer's does not verify, or ours or the CA file
 * is unusable) will not go away on a retry: permanent, logged. Anything
 * else (timeout, refused, reset) is retried.
 */
void push_attempt_failed(struct push_req *r, const struct push_http_result *res);
/* Provider → dispatcher helpers. */
struct push_http *push_get_http(struct push *p);
su_root_t *push_get_root(struct push *p);
struct push_provider_stats *push_stats_mut(struct push *p, enum pn_provider prov);
/* Milliseconds left before r's deadline (0 when past). */
uint64_t push_req_remaining(const struct push_req *r);

/* ---- payload.c ----------------------------------------------------- */

/* Payload size limits (bytes of JSON). */
#define PUSH_APNS_MAX_PAYLOAD 4096
#define PUSH_APNS_MAX_VOIP_PAYLOAD 5120
#define PUSH_FCM_MAX_PAYLOAD 4096
/* Caps for the short fields put in payloads. */
#define PUSH_FIELD_MAX 256
/* How long a push may wait at the provider for an offline device, seconds. */
#define PUSH_MESSAGE_TTL 86400
#define PUSH_CANCEL_TTL 3600

/*
 * What every payload says about a request, each field cut to
 * PUSH_FIELD_MAX bytes on a character boundary (the text to text_max);
 * NULL where the request has none.
 */
struct push_fields {
	enum push_kind kind;
	char *call_id, *from_uri, *from_name, *to_uri, *reason, *text;
	bool vm_waiting;
	int vm_new, vm_old;
};
void push_fields_init(struct push_fields *f, const struct push_req *r, size_t text_max);
void push_fields_cleanup(struct push_fields *f);
/*
 * Put "type", "call-id", "from-uri", "from-name", "to-uri", "reason" (a
 * cancel's, "missed" by default), for a voicemail "messages-waiting"
 * ("yes"/"no"), "voice-new" and "voice-old" (decimal strings), and, when
 * not NULL, "text" into o: the data of an FCM message and of a Web Push
 * message (all values strings).
 */
void push_fields_put(const struct push_fields *f, json_t *o, const char *text);
/*
 * Time to live of a push of this kind, seconds: call_timeout for a call
 * (no use once the call is gone), wakeup_ttl for a wake-up, a day for a
 * message or a voicemail summary, an hour for a cancel.
 */
int push_kind_ttl(enum push_kind kind, int call_timeout, int wakeup_ttl);

/*
 * Build a payload whose only variable part is the text: calls build(text)
 * with shorter and shorter UTF-8-safe cuts until the JSON is at most limit
 * bytes. Returns the malloc'd JSON or NULL (even an empty text is too big).
 */
typedef json_t *push_build_fn(void *arg, const char *text);
char *push_fit_payload(push_build_fn *build, void *arg, const char *text, size_t limit,
		       size_t *out_len);

#endif
