/* SPDX-License-Identifier: MIT */
/*
 * Push dispatch: wakes a device through APNs, FCM, Web Push or the
 * operator's own service. The dispatcher is provider-neutral; src/push/
 * apns.c, fcm.c, webpush.c and service.c are the providers, all carried
 * by one libcurl multi handle on the daemon's su_root, so a
 * push in flight never blocks SIP processing. The router calls push_send()
 * and hears back through a completion callback; a request whose requester
 * went away (call cancelled, transaction freed) completes harmlessly.
 */
#ifndef SIPWAKE_PUSH_H
#define SIPWAKE_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include <sofia-sip/su_wait.h>

#include "sipwake/config.h"
#include "sipwake/pn.h"

enum push_kind {
	PUSH_CALL,    /* incoming INVITE: PushKit (VoIP) when the device has a VoIP token */
	PUSH_MESSAGE, /* incoming MESSAGE: alert with sender and start of the text */
	PUSH_WAKEUP,  /* background push asking the app to re-register */
	PUSH_CANCEL,  /* follow-up to a call: missed, or answered elsewhere */
	PUSH_VOICEMAIL, /* message-summary NOTIFY (RFC 3842): alert with the counts, never PushKit */
};
#define PUSH_KIND_COUNT 5

enum push_result {
	PUSH_OK,             /* the provider accepted the push */
	PUSH_TOKEN_INVALID,  /* the provider says the token is dead: drop the binding */
	PUSH_RETRYABLE,      /* gave up within the deadline (5xx, 429, network, queue full) */
	PUSH_PERMANENT,      /* the push can never succeed as is (bad request, credentials) */
	PUSH_RATE_LIMITED,   /* refused locally: push.min_interval not elapsed */
	PUSH_NOT_CONFIGURED, /* no credentials for this provider */
};
#define PUSH_RESULT_COUNT 6

/* What the push says. All strings are borrowed; push_send() copies them. */
struct push_payload {
	const char *call_id;   /* SIP Call-ID: apns-collapse-id, payload "call-id" */
	const char *from_uri;  /* caller / sender URI */
	const char *from_name; /* display name or NULL */
	const char *text;      /* MESSAGE body (may be long; cut to fit) or NULL */
	const char *reason;    /* PUSH_CANCEL: "missed" or "answered_elsewhere" */
	const char *to_uri;    /* callee AOR or NULL */
	/* PUSH_VOICEMAIL: Messages-Waiting, and the Voice-Message counts (0 when absent) */
	bool vm_waiting;
	int vm_new, vm_old;
};

/*
 * Completion of one push. reason is the provider's reason ("BadDeviceToken",
 * "UNREGISTERED", "timeout", ...) or NULL on success; valid during the call.
 * http_status is the last HTTP status (0 when no answer came).
 */
typedef void push_done_fn(void *ctx, enum push_result res, int http_status,
			  const char *reason, double latency_ms);

/*
 * The provider said a token is dead (APNs 410 / BadDeviceToken /
 * DeviceTokenNotForTopic, FCM UNREGISTERED). token is the one used (the
 * VoIP token or the remote one). Called before the request's push_done_fn.
 */
typedef void push_token_invalid_fn(void *ctx, const struct pn_identity *id, const char *token);

struct push;
struct push_req;

/*
 * Create the dispatcher on root: loads the APNs key or certificate, the
 * FCM service account, the VAPID key and the push.http service named in
 * cfg (providers without credentials stay disabled). Key files readable by others are refused. Returns 0, or -1
 * with the reason logged. cfg is only read during the call.
 */
int push_new(struct push **out, su_root_t *root, const struct sw_config *cfg);

/*
 * Stop everything: transfers in flight are aborted and their callbacks never
 * fire. Requests still referenced by a requester stay valid until
 * push_req_detach(). Call it before su_root_destroy() of its root, and not
 * from inside a push callback. Safe with NULL.
 */
void push_free(struct push *p);

/*
 * SIGHUP: load new credentials and settings. On error the old ones are kept
 * and -1 is returned (reason logged). Requests in flight finish with the
 * credentials they started with or the new ones, whichever they meet.
 */
int push_reload(struct push *p, const struct sw_config *cfg);

/* Register the upward callback for dead tokens (the registrar removes the binding). */
void push_set_token_invalid_cb(struct push *p, push_token_invalid_fn *fn, void *ctx);

/*
 * Send one push of the given kind to the device named by id (copied).
 * deadline_ms bounds the whole attempt including retries (0 = 10 s).
 * Returns 0 when the push was accepted: cb fires exactly once, later, from
 * the loop (never from inside push_send), unless the request is detached.
 * Returns -(enum push_result) when refused at once (-PUSH_RATE_LIMITED,
 * -PUSH_NOT_CONFIGURED, -PUSH_PERMANENT for an unusable identity); cb then
 * never fires and *out is NULL. Refusals are counted and logged as well.
 * If out is not NULL it receives a reference the caller must give back
 * with push_req_detach() (before or after the callback, once).
 */
int push_send(struct push *p, const struct pn_identity *id, enum push_kind kind,
	      const struct push_payload *pl, unsigned deadline_ms, push_done_fn *cb, void *ctx,
	      struct push_req **out);

/*
 * The requester lets go of its reference: if the push has not completed,
 * its callback will never fire and it finishes harmlessly in the
 * background. May be called from inside the callback. Safe with NULL.
 */
void push_req_detach(struct push_req *r);

/* True when the provider has credentials loaded. */
bool push_provider_enabled(struct push *p, enum pn_provider prov);

/*
 * The public half of the VAPID key Web Push messages are signed with
 * (base64url of the uncompressed point: what a browser passes as
 * applicationServerKey), or NULL when Web Push is not configured. Valid
 * until the next push_reload() or push_free().
 */
const char *push_vapid_public_key(struct push *p);

/*
 * The pn-provider name the operator's service (push.http) answers to, as
 * loaded (a reload that failed keeps the old one), or NULL without it.
 * Valid until the next push_reload() or push_free().
 */
const char *push_service_name(struct push *p);

/* Names for logs, counters and admin output. */
const char *push_kind_name(enum push_kind kind);
const char *push_result_name(enum push_result res);
/* "apns", "fcm", "webpush", "http" (an operator's service) by enum pn_provider, "none" else. */
const char *push_provider_name(enum pn_provider prov);

/* Latency histogram upper bounds in ms; the last bucket is +Inf. */
#define PUSH_LATENCY_BUCKETS 12
extern const double push_latency_bounds[PUSH_LATENCY_BUCKETS - 1];

/* Counters of one provider, index with enum pn_provider. */
struct push_provider_stats {
	uint64_t results[PUSH_KIND_COUNT][PUSH_RESULT_COUNT]; /* completed/refused pushes */
	uint64_t attempts;        /* HTTP requests sent (retries included) */
	uint64_t retries;         /* attempts after the first one */
	uint64_t tokens_removed;  /* token-invalid callbacks fired */
	uint64_t queue_overflow;  /* refused because too many were queued */
	uint64_t auth_refresh;    /* JWT / OAuth token regenerations */
	uint64_t auth_failures;   /* credential problems (403 other than expired, 401 twice) */
	uint64_t latency_count;   /* pushes with a provider answer */
	double latency_sum_ms;
	uint64_t latency_hist[PUSH_LATENCY_BUCKETS]; /* non-cumulative */
};

/* Counters for admin/metrics, per provider (PN_APNS .. PN_PROVIDER_COUNT - 1). */
#define PUSH_PROVIDER_SLOTS PN_PROVIDER_COUNT
const struct push_provider_stats *push_stats(struct push *p, enum pn_provider prov);

/*
 * Call fn for each non-zero (provider, kind, result) counter. A cheap way
 * for the admin socket to list counters without knowing the layout.
 */
typedef void push_counter_fn(void *ctx, const char *provider, const char *kind,
			     const char *result, uint64_t value);
void push_counters_foreach(struct push *p, push_counter_fn *fn, void *ctx);

/* Pushes currently in flight or waiting for a retry (all providers). */
unsigned push_pending(struct push *p);

/*
 * Bound on pending pushes (default 20000): beyond it push_send() refuses
 * with -PUSH_RETRYABLE and counts queue_overflow. 0 restores the default.
 */
void push_set_queue_limit(struct push *p, unsigned max);

#endif
