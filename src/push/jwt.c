/* SPDX-License-Identifier: MIT */
/*
 * Crypto and text helpers of the push layer: base64url, loading private
 * keys (refusing world-readable files), signing JWTs with OpenSSL (ES256
 * for APNs provider tokens, RS256 for the FCM OAuth assertion), UTF-8-safe
 * cutting of message text, and random UUIDs for apns-id.
 */
#include "push_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
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

/* Length of the valid UTF-8 sequence at s (at most avail bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t push_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			n = 1; /* an invalid byte stands alone */
		if (i + n > max)
			break;
		i += n;
	}
	return i;
}

char *push_utf8_clip(const char *s, size_t max, bool *cut)
{
	size_t len = strlen(s), i = 0, o = 0;
	char *out = malloc((len < max ? len : max) + 1);

	if (cut)
		*cut = false;
	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
		if (o + (n ? n : 1) > max) {
			if (cut)
				*cut = true;
			break;
		}
		if (n == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Build with the first keep bytes of text (cut on a character, plus "…" when cut). */
static char *fit_try(push_build_fn *build, void *arg, const char *text, size_t len, size_t keep,
		     size_t *out_len)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
	char *cur = NULL, *json = NULL;
	json_t *obj;

	if (text) {
		size_t k = push_utf8_prefix(text, len, keep);
		cur = malloc(k + sizeof(ellipsis));
		if (!cur)
			return NULL;
		memcpy(cur, text, k);
		cur[k] = '\0';
		if (k < len)
			strcat(cur, ellipsis);
	}
	obj = build(arg, cur);
	free(cur);
	if (!obj)
		return NULL;
	json = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (json)
		*out_len = strlen(json);
	return json;
}

char *push_fit_payload(push_build_fn *build, void *arg, const char *text, size_t limit,
		       size_t *out_len)
{
	size_t len = text ? strlen(text) : 0, n = 0, lo = 0, hi, best_len = 0;
	char *json = fit_try(build, arg, text, len, len, &n), *best = NULL;

	if (!json || n <= limit || !text) {
		if (json && n > limit) {
			free(json);
			json = NULL;
		}
		*out_len = n;
		return json;
	}
	free(json);
	/*
	 * Largest prefix that fits: a first guess from the excess (each text byte
	 * costs at least one JSON byte), then bisection. Bounded: the text is at
	 * most a few KiB, so a dozen rounds.
	 */
	hi = len;
	for (int round = 0; round < 32 && hi - lo > 1; round++) {
		size_t mid = round == 0 && n - limit + 3 < len ? len - (n - limit) - 3 : lo + (hi - lo) / 2;

		json = fit_try(build, arg, text, len, mid, &n);
		if (!json)
			break;
		if (n <= limit) {
			free(best);
			best = json;
			best_len = n;
			lo = mid;
		} else {
			free(json);
			hi = mid;
		}
	}
	if (!best) {
		best = fit_try(build, arg, text, len, 0, &best_len);
		if (best && best_len > limit) {
			free(best);
			best = NULL;
		}
	}
	*out_len = best_len;
	return best;
}

void push_uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		/* Not for security: apns-id only needs to be unique enough. */
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)random();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}

uint64_t push_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

double push_now_msf(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}
