/* SPDX-License-Identifier: MIT */
/*
 * Answering an upstream's digest challenge from a stored account (SPEC
 * 4.6): the registrar's keep-alive refreshes a sleeping device's upstream
 * registration and must prove the device's identity with nothing but the
 * HA1 values `sipwakectl account` stored. sofia-sip parses the challenge;
 * digest.c computes the response (MD5 or SHA-256).
 */
#include "auth_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>
#include <sofia-sip/auth_digest.h>
#include <sofia-sip/msg_header.h>

#include "sipwake/store.h"

static int copy_account(void *ctx, const struct store_account *a)
{
	struct auth_account *acc = ctx;

	acc->found = snprintf(acc->username, sizeof(acc->username), "%s", a->username) <
			     (int)sizeof(acc->username) &&
		     snprintf(acc->realm, sizeof(acc->realm), "%s", a->realm) <
			     (int)sizeof(acc->realm);
	if (a->ha1_md5 && auth_is_hex(a->ha1_md5, auth_hex_len(AUTH_MD5)))
		snprintf(acc->ha1[AUTH_MD5], sizeof(acc->ha1[AUTH_MD5]), "%s", a->ha1_md5);
	if (a->ha1_sha256 && auth_is_hex(a->ha1_sha256, auth_hex_len(AUTH_SHA256)))
		snprintf(acc->ha1[AUTH_SHA256], sizeof(acc->ha1[AUTH_SHA256]), "%s",
			 a->ha1_sha256);
	return 0;
}

int auth_account_load(struct store *st, const char *aor, struct auth_account *acc)
{
	memset(acc, 0, sizeof(*acc));
	return store_account_get(st, aor, copy_account, acc) < 0 ? -1 : 0;
}

static enum auth_client load_creds(struct store *st, const char *aor, struct auth_account *c)
{
	if (auth_account_load(st, aor, c) < 0)
		return AUTH_CLIENT_ERROR;
	return c->found ? AUTH_CLIENT_OK : AUTH_CLIENT_NO_ACCOUNT;
}

void auth_cache_clear(struct auth_cache *c)
{
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

/* Keep realm, nonce and opaque in c (one allocation). */
static int cache_set(struct auth_cache *c, const char *realm, const char *nonce,
		     const char *opaque)
{
	size_t lr = strlen(realm) + 1, ln = strlen(nonce) + 1, lo = strlen(opaque) + 1;
	char *b = malloc(lr + ln + lo);

	if (!b)
		return -1;
	memcpy(b, realm, lr);
	memcpy(b + lr, nonce, ln);
	memcpy(b + lr + ln, opaque, lo);
	free(c->buf);
	c->buf = b;
	c->realm = b;
	c->nonce = b + lr;
	c->opaque = b + lr + ln;
	return 0;
}

int auth_cache_copy(struct auth_cache *dst, const struct auth_cache *src)
{
	*dst = *src;
	dst->buf = NULL;
	if (!src->buf)
		return 0;
	if (cache_set(dst, src->realm, src->nonce, src->opaque) < 0) {
		memset(dst, 0, sizeof(*dst));
		return -1;
	}
	return 0;
}

/* True when a qop list ("auth,auth-int") offers plain "auth". */
static bool offers_auth(const char *qop)
{
	size_t n;

	for (const char *p = qop; p && *p; p += n) {
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n == 4 && !strncasecmp(p, "auth", 4))
			return true;
	}
	return false;
}

enum auth_client auth_client_take(struct store *st, const char *aor, const msg_auth_t *challenges,
				  bool proxy, struct auth_cache *c, char *why, size_t why_len)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	enum auth_client rc;
	struct auth_account cr;

	c->valid = false;
	rc = load_creds(st, aor, &cr);
	if (rc != AUTH_CLIENT_OK) {
		snprintf(why, why_len, rc == AUTH_CLIENT_ERROR ? "the account cannot be read"
							       : "challenged, and no account for %s",
			 aor);
		return rc;
	}
	rc = AUTH_CLIENT_UNUSABLE;
	snprintf(why, why_len, "no digest challenge in the answer");
	for (const msg_auth_t *h = challenges; h && rc != AUTH_CLIENT_OK; h = h->au_next) {
		auth_challenge_t ac = {.ac_size = sizeof(ac)};
		int algo;

		if (!h->au_scheme || strcasecmp(h->au_scheme, "Digest") != 0 || !h->au_params ||
		    auth_digest_challenge_get(home, &ac, h->au_params) < 0 || !ac.ac_realm ||
		    !ac.ac_nonce)
			continue;
		algo = auth_algo_parse(ac.ac_algorithm);
		if (strcmp(ac.ac_realm, cr.realm) != 0) {
			snprintf(why, why_len, "challenged for realm \"%s\", the account is for \"%s\"",
				 ac.ac_realm, cr.realm);
			continue;
		}
		if (algo < 0 || !cr.ha1[algo][0]) {
			snprintf(why, why_len, "challenged with %s, the account has no HA1 for it",
				 ac.ac_algorithm ? ac.ac_algorithm : "MD5");
			continue;
		}
		if (ac.ac_qop && !offers_auth(ac.ac_qop)) {
			snprintf(why, why_len, "challenged with qop=%s only", ac.ac_qop);
			continue;
		}
		if (strlen(ac.ac_nonce) > 512 || (ac.ac_opaque && strlen(ac.ac_opaque) > 512)) {
			snprintf(why, why_len, "a challenge too long to answer");
			continue;
		}
		if (cache_set(c, ac.ac_realm, ac.ac_nonce, ac.ac_opaque ? ac.ac_opaque : "") < 0) {
			snprintf(why, why_len, "out of memory");
			continue;
		}
		c->algo = algo;
		c->qop = ac.ac_qop != NULL;
		c->proxy = proxy;
		c->nc = 0;
		c->valid = true;
		rc = AUTH_CLIENT_OK;
	}
	su_home_deinit(home);
	return rc;
}

enum auth_client auth_client_credentials(struct store *st, const char *aor, struct auth_cache *c,
					 const char *method, const char *uri, char *out, size_t len)
{
	char resp[AUTH_HEX_MAX + 1], nc[9], cnonce[17];
	unsigned char rnd[8];
	struct auth_account cr;
	enum auth_client rc = load_creds(st, aor, &cr);
	int n;

	if (rc != AUTH_CLIENT_OK)
		return rc;
	if (!c->valid || !c->buf || strcmp(c->realm, cr.realm) != 0 || !cr.ha1[c->algo][0])
		return AUTH_CLIENT_UNUSABLE;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return AUTH_CLIENT_ERROR;
	auth_hex(rnd, sizeof(rnd), cnonce);
	c->nc++;
	snprintf(nc, sizeof(nc), "%08x", c->nc);
	if (auth_response((enum auth_algo)c->algo, cr.ha1[c->algo], c->nonce, nc, cnonce,
			  c->qop ? "auth" : NULL, method, uri, resp) < 0)
		return AUTH_CLIENT_ERROR;
	n = snprintf(out, len,
		     "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
		     "response=\"%s\", algorithm=%s%s%s%s%s%s%s%s",
		     cr.username, c->realm, c->nonce, uri, resp, auth_algo_name((enum auth_algo)c->algo),
		     c->qop ? ", qop=auth, nc=" : "", c->qop ? nc : "",
		     c->qop ? ", cnonce=\"" : "", c->qop ? cnonce : "", c->qop ? "\"" : "",
		     c->opaque[0] ? ", opaque=\"" : "", c->opaque);
	if (n < 0 || (size_t)n + 2 >= len)
		return AUTH_CLIENT_ERROR;
	if (c->opaque[0])
		snprintf(out + n, len - (size_t)n, "\"");
	return AUTH_CLIENT_OK;
}
