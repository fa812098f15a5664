/* SPDX-License-Identifier: MIT */
/*
 * Digest authentication (SPEC 4.7; RFC 3261 22, RFC 7616, RFC 8760): the
 * hash arithmetic (HA1, responses, for MD5 and SHA-256), the nonces
 * sipwake issues (an HMAC of a timestamp under a per-process key: no table
 * grows with the challenges sent), nonce-count tracking against replay,
 * and the check of a request against the account of an AOR, answering the
 * 401/407 challenge itself. Used by the registrar (REGISTER, standalone
 * mode) and the router (requests claiming a local identity).
 */
#ifndef SIPWAKE_AUTH_H
#define SIPWAKE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

struct store;
struct sw_config;

enum auth_algo { AUTH_MD5, AUTH_SHA256, AUTH_ALGO_COUNT };

/* Hex digits of a digest of each algorithm (32, 64), and a buffer for any. */
#define AUTH_HEX_MAX 64
size_t auth_hex_len(enum auth_algo algo);
/* "MD5", "SHA-256" */
const char *auth_algo_name(enum auth_algo algo);
/* The algorithm a digest "algorithm" parameter names (NULL = MD5), or -1. */
int auth_algo_parse(const char *name);
/* True when s is exactly len lowercase or uppercase hex digits. */
bool auth_is_hex(const char *s, size_t len);
/* n bytes as lowercase hex into out (2n + 1 bytes, NUL-terminated). */
void auth_hex(const unsigned char *d, size_t n, char *out);
/* Copy hex text with A-F as a-f (digests compare in lowercase); out holds size bytes. */
void auth_hex_lower(const char *in, char *out, size_t size);

/* HA1 = H(username ":" realm ":" password) in lowercase hex (out: AUTH_HEX_MAX + 1). */
int auth_ha1(enum auth_algo algo, const char *username, const char *realm, const char *password,
	     char *out);
/*
 * The request digest (RFC 7616 3.4.1) from an HA1: with qop "auth",
 * H(HA1:nonce:nc:cnonce:auth:H(method:uri)); without qop (RFC 2069),
 * H(HA1:nonce:H(method:uri)). 0, or -1 on a bad argument.
 */
int auth_response(enum auth_algo algo, const char *ha1, const char *nonce, const char *nc,
		  const char *cnonce, const char *qop, const char *method, const char *uri,
		  char *out);

struct auth;

/* Create the authenticator (fresh nonce key drawn here). 0 or -1 (logged). */
int auth_new(struct auth **out, const struct sw_config *cfg, struct store *st);
void auth_free(struct auth *a);

/*
 * True when the request carries valid credentials for aor (a canonical
 * "sip:user@domain"): Authorization (proxy false) or Proxy-Authorization
 * (proxy true), a nonce of ours, fresh, its nonce count never seen, the
 * account's username and realm, the right response. Otherwise answers irq
 * itself and destroys it: 401/407 with a challenge per algorithm the
 * account has (stale=true when only the nonce was old), 403 once the source
 * has failed too often, 500 when the account cannot be read. On success
 * the credentials that were checked are removed from msg (consumed: they
 * are never forwarded).
 */
bool auth_request(struct auth *a, nta_incoming_t *irq, msg_t *msg, sip_t *sip, const char *aor,
		  bool proxy);

/*
 * Client side (SPEC 4.6): answering an upstream's challenge to a REGISTER
 * that sipwake sends on a device's behalf, from the account of its AOR
 * (HA1 only, so MD5 or SHA-256 digest, qop=auth or none). The challenge is
 * kept between requests, so that a later one can reuse its nonce with the
 * next nonce count (RFC 7616 3.4.5) where upstream allows it.
 */
struct auth_cache {
	bool valid;
	bool proxy; /* Proxy-Authorization (a 407) rather than Authorization */
	int algo;   /* enum auth_algo */
	bool qop;   /* qop=auth offered */
	uint32_t nc;
	char *buf;  /* one allocation: realm, nonce and opaque point into it */
	const char *realm, *nonce, *opaque;
};

/* Forget a cached challenge (free its strings); copy one (0, or -1 on ENOMEM). */
void auth_cache_clear(struct auth_cache *c);
int auth_cache_copy(struct auth_cache *dst, const struct auth_cache *src);

enum auth_client {
	AUTH_CLIENT_OK,
	AUTH_CLIENT_NO_ACCOUNT, /* no account for the AOR */
	AUTH_CLIENT_UNUSABLE,   /* no challenge the account can answer (realm, algorithm) */
	AUTH_CLIENT_ERROR,      /* the store failed */
};

/*
 * Take a challenge of a 401 (proxy false, WWW-Authenticate) or 407 from
 * challenges that the account of aor can answer into c (nonce count
 * reset). why gets a reason on failure.
 */
enum auth_client auth_client_take(struct store *st, const char *aor, const msg_auth_t *challenges,
				  bool proxy, struct auth_cache *c, char *why, size_t why_len);
/*
 * The credentials (header value) answering the challenge in c for method
 * and uri, with the next nonce count, into out. Reads the account again
 * (it may have changed).
 */
enum auth_client auth_client_credentials(struct store *st, const char *aor, struct auth_cache *c,
					 const char *method, const char *uri, char *out, size_t len);

/* The nonce arithmetic, for tests: make one at time usec, check one at now. */
enum auth_nonce { AUTH_NONCE_OK, AUTH_NONCE_STALE, AUTH_NONCE_BAD };
void auth_nonce_make(struct auth *a, int64_t usec, char *out, size_t len);
enum auth_nonce auth_nonce_check(struct auth *a, const char *nonce, int64_t now_usec);

#endif
