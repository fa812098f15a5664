/* SPDX-License-Identifier: MIT */
/*
 * Crypto helpers of the push layer: base64url, loading private keys
 * (refusing files others can read), signing JWTs with OpenSSL (ES256 for
 * APNs provider tokens, RS256 for the FCM OAuth assertion), and random
 * UUIDs for apns-id.
 */
#include "push_int.h"
#include "sipwake/keyfile.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

static const char b64url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *push_b64url(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc(len / 3 * 4 + 5);
	size_t o = 0, i = 0;

	if (!out)
		return NULL;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64url_alphabet[v >> 18 & 63];
		out[o++] = b64url_alphabet[v >> 12 & 63];
		out[o++] = b64url_alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static int b64url_value(char c)
{
	const char *p = c ? strchr(b64url_alphabet, c) : NULL;
	return p ? (int)(p - b64url_alphabet) : -1;
}

unsigned char *push_b64url_decode(const char *s, size_t *out_len)
{
	size_t len = strlen(s), o = 0;
	unsigned acc = 0;
	int bits = 0;
	unsigned char *out;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return NULL;
	out = malloc(len * 3 / 4 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*out_len = o;
	return out;
}

int push_key_file_check(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (!keyfile_mode_ok(st.st_mode)) {
		snprintf(err, errlen, "%s: key file is accessible by others (mode %03o); "
			 "chmod o-rwx it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

/* Encrypted keys are not supported: never let OpenSSL prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static void openssl_reason(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

EVP_PKEY *push_key_load(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	FILE *fp;

	if (push_key_file_check(path, err, errlen) < 0)
		return NULL;
	fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(fp, NULL, no_passphrase, NULL);
	fclose(fp);
	if (!key)
		openssl_reason(err, errlen, path);
	return key;
}

EVP_PKEY *push_key_from_pem(const char *pem, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = NULL;

	if (!bio) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!key)
		openssl_reason(err, errlen, "private_key");
	return key;
}

/* ECDSA gives DER (SEQUENCE of two INTEGERs); JWS wants 32-byte r then s. */
static int der_to_raw_es256(const unsigned char *der, size_t der_len, unsigned char raw[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r, *s;
	int rc = -1;

	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32)
		goto out;
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	return rc;
}

char *push_jwt_sign(EVP_PKEY *key, const char *alg, json_t *header, json_t *claims)
{
	char *hjson = NULL, *cjson = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL;
	char *input = NULL, *jwt = NULL;
	unsigned char *sig = NULL, raw[64];
	size_t siglen = 0;
	EVP_MD_CTX *md = NULL;
	bool es256 = strcmp(alg, "ES256") == 0;

	if (es256 ? !EVP_PKEY_is_a(key, "EC") : !EVP_PKEY_is_a(key, "RSA"))
		goto out;
	hjson = json_dumps(header, JSON_COMPACT);
	cjson = json_dumps(claims, JSON_COMPACT);
	if (!hjson || !cjson)
		goto out;
	h64 = push_b64url(hjson, strlen(hjson));
	c64 = push_b64url(cjson, strlen(cjson));
	if (!h64 || !c64 || asprintf(&input, "%s.%s", h64, c64) < 0) {
		input = NULL;
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1)
		goto out;
	sig = malloc(siglen);
	if (!sig ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
		goto out;
	if (es256) {
		if (der_to_raw_es256(sig, siglen, raw) < 0)
			goto out;
		s64 = push_b64url(raw, sizeof(raw));
	} else {
		s64 = push_b64url(sig, siglen);
	}
	if (!s64 || asprintf(&jwt, "%s.%s", input, s64) < 0)
		jwt = NULL;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(sig);
	free(hjson);
	free(cjson);
	free(h64);
	free(c64);
	free(s64);
	free(input);
	return jwt;
}

/*
 * Random bytes for push_uuid4(), drawn from OpenSSL 64 UUIDs at a time: one
 * RAND_bytes() call costs about as much as the rest of an APNs request's
 * preparation (bench/push). Per thread, and dropped in a forked child so
 * that two processes never hand out the same ids.
 */
#define UUID_POOL (16 * 64)
static _Thread_local unsigned char uuid_pool[UUID_POOL];
static _Thread_local size_t uuid_left;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;

static void uuid_forget(void)
{
	uuid_left = 0;
}

static void uuid_atfork(void)
{
	pthread_atfork(NULL, NULL, uuid_forget);
}

void push_uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	char *o = out;

	pthread_once(&uuid_once, uuid_atfork);
	if (uuid_left < sizeof(b)) {
		if (RAND_bytes(uuid_pool, sizeof(uuid_pool)) == 1) {
			uuid_left = sizeof(uuid_pool);
		} else {
			/* Not for security: apns-id only needs to be unique enough. */
			for (size_t i = 0; i < sizeof(uuid_pool); i++)
				uuid_pool[i] = (unsigned char)random();
			uuid_left = sizeof(uuid_pool);
		}
	}
	uuid_left -= sizeof(b);
	memcpy(b, uuid_pool + uuid_left, sizeof(b));
	memset(uuid_pool + uuid_left, 0, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
}
