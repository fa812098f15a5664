/* SPDX-License-Identifier: MIT */
/*
 * Web Push cryptography, with OpenSSL only:
 * - message encryption (RFC 8291): an ECDH secret between a fresh P-256
 *   key of ours and the subscription's p256dh key, mixed with the
 *   subscription's auth secret (HKDF-SHA-256), gives the content key and
 *   nonce of one aes128gcm record (RFC 8188) whose header carries the salt
 *   and our public key;
 * - the VAPID Authorization header (RFC 8292): an ES256 JWT for the push
 *   service's origin, signed with the operator's key, and that key's
 *   public half.
 * webpush.h is the interface, used by the provider (webpush.c) and checked
 * against RFC 8291's own example in tests/unit/test_webpush.c.
 */
#include "webpush.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#define SALT_LEN 16
#define RECORD_SIZE 4096
#define HEADER_LEN (SALT_LEN + 4 + 1 + WEBPUSH_KEY_LEN)
#define TAG_LEN 16

/* An EC P-256 key from an uncompressed point (and a private scalar, or NULL). */
static EVP_PKEY *p256_key(const unsigned char pub[WEBPUSH_KEY_LEN],
			  const unsigned char *priv, size_t priv_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	BIGNUM *d = priv ? BN_bin2bn(priv, (int)priv_len, NULL) : NULL;
	EVP_PKEY *key = NULL;

	if (!ctx || !bld || (priv && !d) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, WEBPUSH_KEY_LEN) ||
	    (d && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

int webpush_public_key(EVP_PKEY *key, unsigned char out[WEBPUSH_KEY_LEN])
{
	size_t len = 0;

	if (!key || EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, out,
						     WEBPUSH_KEY_LEN, &len) != 1 ||
	    len != WEBPUSH_KEY_LEN || out[0] != 0x04)
		return -1;
	return 0;
}

EVP_PKEY *webpush_key_from_private(const unsigned char priv[32])
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *p = g ? EC_POINT_new(g) : NULL;
	BIGNUM *d = BN_bin2bn(priv, 32, NULL);
	unsigned char pub[WEBPUSH_KEY_LEN];
	EVP_PKEY *key = NULL;

	if (p && d && EC_POINT_mul(g, p, d, NULL, NULL, NULL) == 1 &&
	    EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL) ==
		    sizeof(pub))
		key = p256_key(pub, priv, 32);
	BN_clear_free(d);
	EC_POINT_free(p);
	EC_GROUP_free(g);
	return key;
}

/* HKDF-SHA-256 with one output block (RFC 5869, L <= 32): out = T(1)[0..len). */
static int hkdf(const unsigned char *salt, size_t salt_len, const unsigned char *ikm,
		size_t ikm_len, const unsigned char *info, size_t info_len, unsigned char *out,
		size_t len)
{
	unsigned char prk[32], t[32], buf[256];
	unsigned int n = 0;

	if (info_len + 1 > sizeof(buf) || len > sizeof(t) ||
	    !HMAC(EVP_sha256(), salt, (int)salt_len, ikm, ikm_len, prk, &n) || n != 32)
		return -1;
	memcpy(buf, info, info_len);
	buf[info_len] = 1;
	if (!HMAC(EVP_sha256(), prk, sizeof(prk), buf, info_len + 1, t, &n) || n != 32)
		return -1;
	memcpy(out, t, len);
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(t, sizeof(t));
	return 0;
}

/* The ECDH secret of our key and theirs. */
static int ecdh(EVP_PKEY *ours, EVP_PKEY *theirs, unsigned char out[32])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ours, NULL);
	size_t len = 32;
	int rc = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, theirs) == 1 &&
			 EVP_PKEY_derive(ctx, out, &len) == 1 && len == 32
		     ? 0
		     : -1;

	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int webpush_encrypt(const unsigned char ua_public[WEBPUSH_KEY_LEN], const unsigned char *auth,
		    size_t auth_len, const void *plain, size_t plain_len, EVP_PKEY *as_key,
		    const unsigned char *salt_in, unsigned char **out, size_t *out_len)
{
	static const char key_label[] = "WebPush: info";
	static const char cek_label[] = "Content-Encoding: aes128gcm";
	static const char nonce_label[] = "Content-Encoding: nonce";
	unsigned char salt[SALT_LEN], as_public[WEBPUSH_KEY_LEN], secret[32], ikm[32], cek[16];
	unsigned char nonce[12], info[sizeof(key_label) + 2 * WEBPUSH_KEY_LEN];
	EVP_PKEY *ephemeral = NULL, *ua = NULL;
	EVP_CIPHER_CTX *c = NULL;
	unsigned char *body = NULL, *rec = NULL;
	size_t total;
	int n = 0, rc = -1;

	*out = NULL;
	*out_len = 0;
	/* one record: the plaintext, its 0x02 delimiter and the tag must fit */
	if (auth_len != WEBPUSH_AUTH_LEN || plain_len + 1 + TAG_LEN > RECORD_SIZE)
		return -1;
	if (!as_key)
		as_key = ephemeral = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (salt_in)
		memcpy(salt, salt_in, SALT_LEN);
	else if (RAND_bytes(salt, SALT_LEN) != 1)
		goto out;
	if (!as_key || webpush_public_key(as_key, as_public) < 0 ||
	    !(ua = p256_key(ua_public, NULL, 0)) || ecdh(as_key, ua, secret) < 0)
		goto out;
	/* RFC 8291 3.3: IKM from the ECDH secret, keyed by the auth secret. */
	memcpy(info, key_label, sizeof(key_label)); /* with its NUL */
	memcpy(info + sizeof(key_label), ua_public, WEBPUSH_KEY_LEN);
	memcpy(info + sizeof(key_label) + WEBPUSH_KEY_LEN, as_public, WEBPUSH_KEY_LEN);
	if (hkdf(auth, auth_len, secret, sizeof(secret), info, sizeof(info), ikm, sizeof(ikm)) < 0 ||
	    hkdf(salt, SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)cek_label,
		 sizeof(cek_label), cek, sizeof(cek)) < 0 ||
	    hkdf(salt, SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)nonce_label,
		 sizeof(nonce_label), nonce, sizeof(nonce)) < 0)
		goto out;
	/* RFC 8188: header (salt, record size, key id = our public key), then the record. */
	total = HEADER_LEN + plain_len + 1 + TAG_LEN;
	body = malloc(total);
	if (!body)
		goto out;
	memcpy(body, salt, SALT_LEN);
	body[16] = RECORD_SIZE >> 24;
	body[17] = (RECORD_SIZE >> 16) & 0xff;
	body[18] = (RECORD_SIZE >> 8) & 0xff;
	body[19] = RECORD_SIZE & 0xff;
	body[20] = WEBPUSH_KEY_LEN;
	memcpy(body + 21, as_public, WEBPUSH_KEY_LEN);
	rec = malloc(plain_len + 1);
	if (!rec)
		goto out;
	memcpy(rec, plain, plain_len);
	rec[plain_len] = 0x02; /* the last (and only) record, no padding */
	c = EVP_CIPHER_CTX_new();
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, sizeof(nonce), NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL, cek, nonce) != 1 ||
	    EVP_EncryptUpdate(c, body + HEADER_LEN, &n, rec, (int)plain_len + 1) != 1 ||
	    (size_t)n != plain_len + 1 || EVP_EncryptFinal_ex(c, body + HEADER_LEN + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, body + HEADER_LEN + plain_len + 1) !=
		    1)
		goto out;
	*out = body;
	*out_len = total;
	body = NULL;
	rc = 0;
out:
	ERR_clear_error();
	EVP_CIPHER_CTX_free(c);
	if (rec)
		OPENSSL_clear_free(rec, plain_len + 1);
	free(body);
	EVP_PKEY_free(ua);
	EVP_PKEY_free(ephemeral);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(ikm, sizeof(ikm));
	OPENSSL_cleanse(cek, sizeof(cek));
	return rc;
}

int webpush_origin(const char *url, char *out, size_t len)
{
	const char *host, *end, *at;

	if (strncasecmp(url, "https://", 8) != 0)
		return -1;
	host = url + 8;
	end = host + strcspn(host, "/?#");
	at = strchr(host, '@');
	if (end == host || (at && at < end) || (size_t)(end - url) >= len)
		return -1; /* no host, or user info (never in a push endpoint) */
	memcpy(out, "https://", 8);
	for (size_t i = 8; i < (size_t)(end - url); i++)
		out[i] = (char)tolower((unsigned char)url[i]);
	out[end - url] = 0;
	/* an origin leaves out the scheme's default port (RFC 6454 6.2); the
	 * port is after the last ':' that is not inside an [IPv6] literal */
	{
		char *colon = strrchr(out + 8, ':');
		if (colon && !strchr(colon, ']') && !strcmp(colon, ":443"))
			*colon = 0;
	}
	return 0;
}

char *webpush_vapid(EVP_PKEY *key, const char *endpoint, const char *subject, int64_t now,
		    int lifetime)
{
	unsigned char pub[WEBPUSH_KEY_LEN];
	char aud[512], *jwt = NULL, *k = NULL, *header = NULL;
	json_t *h = NULL, *claims = NULL;

	if (webpush_origin(endpoint, aud, sizeof(aud)) < 0 || webpush_public_key(key, pub) < 0)
		return NULL;
	h = json_pack("{s:s,s:s}", "typ", "JWT", "alg", "ES256");
	claims = json_pack("{s:s,s:I,s:s}", "aud", aud, "exp", (json_int_t)(now + lifetime), "sub",
			   subject);
	if (h && claims)
		jwt = push_jwt_sign(key, "ES256", h, claims);
	k = push_b64url(pub, sizeof(pub));
	if (jwt && k && asprintf(&header, "vapid t=%s, k=%s", jwt, k) < 0)
		header = NULL;
	json_decref(h);
	json_decref(claims);
	free(jwt);
	free(k);
	return header;
}
