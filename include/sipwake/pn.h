/* SPDX-License-Identifier: MIT */
/*
 * Push identity: what a client put in its REGISTER Contact to be woken up,
 * in a provider-neutral form. Three wire forms are understood:
 *   - RFC 8599:  pn-provider=apns|apns.dev|fcm; pn-prid=TOKEN; pn-param=...
 *                (APNs pn-param = TEAMID.topic, split at the first dot;
 *                 a topic ending in ".voip" means a PushKit token)
 *                pn-provider=webpush; pn-prid=%-escaped endpoint URL, with
 *                sipwake's pn-p256dh and pn-auth for the subscription keys;
 *                any other pn-provider token: an operator's own service
 *                (PN_HTTP), pn-prid its token
 *   - Linphone:  pn-prid=TOK1:remote&TOK2:voip;
 *                pn-param=TEAMID.bundle.remote&voip
 *   - legacy:    pn-type=apple|firebase|google|android; pn-tok=TOKEN;
 *                app-id=BUNDLE[.voip][.dev|.prod]
 * This file has no sofia-sip dependency: it works on the parameter string
 * of a URI ("transport=tcp;pn-provider=apns;...").
 */
#ifndef SIPWAKE_PN_H
#define SIPWAKE_PN_H

#include <stdbool.h>
#include <stddef.h>

#define PN_MAX_PARAM_LEN 4096 /* longest accepted value of one push parameter */

enum pn_provider {
	PN_NONE = 0,
	PN_APNS,
	PN_FCM,
	PN_WEBPUSH,
	PN_HTTP, /* an operator's own push service (push.http), named by its pn-provider */
};
#define PN_PROVIDER_COUNT (PN_HTTP + 1)
#define PN_SERVICE_MAX 32 /* longest pn-provider name of an operator's service */

#define PN_WEBPUSH_ENDPOINT_MAX 2048 /* longest push subscription endpoint accepted */

struct pn_identity {
	enum pn_provider provider;
	bool sandbox;     /* APNs development environment (apns.dev, .dev app-id) */
	char *token;      /* APNs remote-notification token / FCM registration token;
			     NULL for an APNs binding that only gave a VoIP token */
	char *voip_token; /* APNs PushKit token, NULL if none */
	char *team_id;    /* APNs team id, NULL if unknown (legacy form) */
	char *topic;      /* APNs bundle id without ".voip"; FCM: pn-param (project/sender) */
	char *prid;       /* raw pn-prid / pn-tok value (identity key part) */
	char *param;      /* raw pn-param / app-id value (identity key part) */
	int timeout;      /* pn-timeout in seconds, -1 when absent */
	char *wp_p256dh;  /* Web Push: the subscription's P-256 key (base64url), or NULL */
	char *wp_auth;    /* Web Push: its auth secret (base64url), or NULL */
	char *service;    /* PN_HTTP: the pn-provider value, lowercase */
};

/* Outcome of pn_parse(). */
enum pn_parse_status {
	PN_PARSE_NONE = 0, /* no push parameters: an ordinary contact */
	PN_PARSE_OK = 1,   /* *out filled */
	PN_PARSE_BAD = -1, /* malformed: err says which parameter and why */
	PN_PARSE_UNSUPPORTED = -2, /* well-formed but unknown provider/pn-type */
};

/*
 * Parse the push parameters out of a URI parameter string (the part after
 * the first ';', without it: "transport=tcp;pn-provider=fcm;pn-prid=..").
 * Values are %-unescaped. On PN_PARSE_BAD / PN_PARSE_UNSUPPORTED, err gets
 * a short text that starts with the parameter's name ("pn-prid: APNs
 * token is not hex") and *out is left empty. On PN_PARSE_OK the caller owns
 * *out and frees it with pn_identity_cleanup().
 */
enum pn_parse_status pn_parse(const char *uri_params, struct pn_identity *out,
			      char *err, size_t errlen);

/*
 * True when the host of an https endpoint URL is one of patterns
 * (NULL-terminated; "host" exactly, "*.domain" any host below domain;
 * case-insensitive, the port ignored), or patterns is empty or NULL.
 */
bool pn_endpoint_host_allowed(const char *url, char *const *patterns);

/* Free the strings of an identity and zero it. Safe on a zeroed struct. */
void pn_identity_cleanup(struct pn_identity *id);

/* Deep copy. Returns 0 or -1 (ENOMEM; dst is then zeroed). */
int pn_identity_copy(struct pn_identity *dst, const struct pn_identity *src);

/*
 * Copy src into dst with all its strings in buf, equal strings stored
 * once; returns the bytes used. With buf NULL, only counts (dst may be
 * NULL then). dst borrows buf: free buf, never pn_identity_cleanup(dst).
 */
size_t pn_identity_pack(struct pn_identity *dst, const struct pn_identity *src, char *buf);

/*
 * The identity key used to match a re-REGISTER to a binding (RFC 8599
 * §5.6.2: provider + prid + param). Returns a malloc'd string or NULL.
 */
char *pn_identity_key(const struct pn_identity *id);
/* Whether id has an identity key (pn_identity_key() would not return NULL). */
bool pn_identity_keyable(const struct pn_identity *id);
/* Whether a and b are one push identity: their pn_identity_key() are equal. */
bool pn_identity_same(const struct pn_identity *a, const struct pn_identity *b);

/* "apns", "apns.dev", "fcm", "webpush", or an operator service's own name. */
const char *pn_provider_name(const struct pn_identity *id);

/*
 * Copy a URI parameter string without any push parameter (pn-*, and the
 * legacy pn-type/pn-tok/app-id). Returns a malloc'd string (maybe "") or NULL.
 */
char *pn_strip_params(const char *uri_params);

/* True when the parameter name is a push parameter that pn_strip_params removes. */
bool pn_is_push_param(const char *name, size_t len);

#endif
