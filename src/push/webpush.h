/* SPDX-License-Identifier: MIT */
/*
 * Web Push (RFC 8030) inside the push layer: the message encryption of
 * RFC 8291 and the VAPID header of RFC 8292 (webpush_crypto.c), and what
 * the provider (webpush.c) shows the dispatcher. Nothing outside src/push/
 * (and its unit test) includes this file.
 */
#ifndef SIPWAKE_WEBPUSH_H
#define SIPWAKE_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "push_int.h"

#define WEBPUSH_KEY_LEN 65  /* an uncompressed P-256 point: the p256dh key */
#define WEBPUSH_AUTH_LEN 16 /* the subscription's auth secret */
/*
 * Longest plaintext: push services take at least 4096 bytes of body
 * (RFC 8030 §7.2), and the one aes128gcm record adds an 86-byte header,
 * a padding delimiter and a 16-byte tag.
 */
#define WEBPUSH_MAX_PLAIN 3993

/*
 * Encrypt plain for a subscription (ua_public = its p256dh key, auth its
 * auth secret) into one aes128gcm body (RFC 8291 + RFC 8188): malloc'd
 * *out. as_key and salt are NULL in production (a fresh key pair and salt
 * per message); tests give RFC 8291's. At most about 4 KB of plaintext
 * (one record). Returns 0, or -1 (bad key, too long, OpenSSL failure).
 */
int webpush_encrypt(const unsigned char ua_public[WEBPUSH_KEY_LEN], const unsigned char *auth,
		    size_t auth_len, const void *plain, size_t plain_len, EVP_PKEY *as_key,
		    const unsigned char *salt, unsigned char **out, size_t *out_len);

/*
 * The Authorization header value for a push to endpoint (an https URL):
 * "vapid t=<ES256 JWT: aud = the endpoint's origin, exp = now + lifetime,
 * sub = subject>, k=<key's public point, base64url>". malloc'd, or NULL.
 */
char *webpush_vapid(EVP_PKEY *key, const char *endpoint, const char *subject, int64_t now,
		    int lifetime);

/*
 * "https://host[:port]" of an endpoint URL, host in lowercase: the
 * audience of its VAPID JWT. 0, or -1 (not https, no host, user info, or
 * longer than len).
 */
int webpush_origin(const char *url, char *out, size_t len);

/* The provider's VAPID public key, base64url (for +sip.vapid). */
const char *webpush_public_b64(void *state);

/* The uncompressed public point of a P-256 key: 0 or -1. */
int webpush_public_key(EVP_PKEY *key, unsigned char out[WEBPUSH_KEY_LEN]);
/* A P-256 key pair from its private scalar (tests: RFC 8291's fixed key). */
EVP_PKEY *webpush_key_from_private(const unsigned char priv[32]);

#endif
