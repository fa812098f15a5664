/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the push-parameter parser (src/core/pn.c). The input is
 * the parameter string of a Contact URI ("transport=tcp;pn-provider=..."),
 * in any of the three forms pn_parse() reads (RFC 8599, Linphone's two
 * tokens, legacy pn-type/pn-tok/app-id). Invariants: an identity that parses
 * has a provider, a pn-prid and a token, and every string in it keeps to
 * the characters that are safe in an HTTP/2 header or URL path (a Web Push
 * endpoint: an https URL of visible URL characters, its keys base64url; an
 * operator service's name a lowercase token, its token base64-safe); its copy
 * has the same identity key; what pn_strip_params() leaves is no push
 * contact any more and strips to itself. Anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sipwake/pn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What pn.c promises for every value it lets through. */
static void check_safe(const char *s)
{
	if (!s)
		return;
	if (!*s || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:&-") !=
			   strlen(s))
		abort();
}

/* A Web Push endpoint (posted to as a URL) and its keys. */
static void check_webpush(const struct pn_identity *id)
{
	static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789:/?#[]@!$&'()*+,;=%~._-";
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789-_=";

	if (!id->token || strncasecmp(id->token, "https://", 8) != 0 ||
	    strlen(id->token) > PN_WEBPUSH_ENDPOINT_MAX ||
	    strspn(id->token, url_chars) != strlen(id->token) || id->voip_token || id->team_id ||
	    id->sandbox)
		abort();
	if (!id->wp_p256dh != !id->wp_auth)
		abort();
	if (id->wp_p256dh && (strspn(id->wp_p256dh, b64url) != strlen(id->wp_p256dh) ||
			      strspn(id->wp_auth, b64url) != strlen(id->wp_auth)))
		abort();
}

static void check_identity(const struct pn_identity *id)
{
	struct pn_identity copy;
	char *key, *key2;

	if (id->provider == PN_WEBPUSH) {
		check_webpush(id);
		check_safe(id->param);
		goto key;
	}
	if (id->provider == PN_HTTP) {
		/* an operator's service: a token name, its token and param in a small set */
		static const char tok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789_:.-+/=~";
		if (!id->service || !*id->service || strlen(id->service) > PN_SERVICE_MAX ||
		    strspn(id->service, "abcdefghijklmnopqrstuvwxyz0123456789._-") !=
			    strlen(id->service) ||
		    !id->token || !*id->token || strspn(id->token, tok) != strlen(id->token) ||
		    (id->param && strspn(id->param, tok) != strlen(id->param)) || id->voip_token ||
		    id->wp_p256dh || id->wp_auth || id->team_id || id->topic || id->sandbox)
			abort();
		goto key;
	}
	if (id->provider != PN_APNS && id->provider != PN_FCM)
		abort();
	if (id->wp_p256dh || id->wp_auth)
		abort();
	if (!id->prid || (!id->token && !id->voip_token))
		abort();
	if (id->provider == PN_FCM && (id->voip_token || id->sandbox || id->team_id))
		abort();
	if (id->timeout < -1 || id->timeout > 3600)
		abort();
	check_safe(id->token);
	check_safe(id->voip_token);
	check_safe(id->team_id);
	check_safe(id->topic);
	check_safe(id->prid);
	check_safe(id->param);
key:
	key = pn_identity_key(id);
	if (!key)
		abort(); /* pn_parse lets no separator through */
	if (pn_identity_copy(&copy, id) == 0) {
		key2 = pn_identity_key(&copy);
		if (!key2 || strcmp(key, key2) != 0)
			abort();
		free(key2);
		pn_identity_cleanup(&copy);
	}
	free(key);
}

static void check_stripped(const char *params)
{
	struct pn_identity id;
	char err[128];
	char *once = pn_strip_params(params), *twice;

	if (!once)
		return;
	if (pn_parse(once, &id, err, sizeof(err)) != PN_PARSE_NONE)
		abort(); /* a push parameter survived the strip */
	pn_identity_cleanup(&id);
	twice = pn_strip_params(once);
	if (!twice || strcmp(once, twice) != 0)
		abort();
	free(twice);
	free(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *params = malloc(size + 1);
	struct pn_identity id;
	enum pn_parse_status st;
	char err[200];

	if (!params)
		return 0;
	memcpy(params, data, size);
	params[size] = '\0';
	st = pn_parse(params, &id, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	if (st == PN_PARSE_OK) {
		check_identity(&id);
	} else {
		/* Failure leaves the identity empty, as the header says. */
		if (id.provider != PN_NONE || id.token || id.voip_token || id.prid || id.param ||
		    id.topic || id.team_id || id.service || id.wp_p256dh || id.wp_auth)
			abort();
		if ((st == PN_PARSE_BAD || st == PN_PARSE_UNSUPPORTED) && !err[0])
			abort();
	}
	pn_identity_cleanup(&id);
	check_stripped(params);
	free(params);
	return 0;
}
