/* SPDX-License-Identifier: MIT */
/*
 * Digest arithmetic (RFC 7616 3.4, RFC 8760): HA1 and request digests for
 * MD5 and SHA-256 through OpenSSL's EVP, one code path for both (sofia-sip
 * 1.12.11 computes MD5 only). Pure functions: tests check them against the
 * RFCs' example vectors.
 */
#include "sipwake/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static const struct {
	const char *name;
	size_t hex;
} algos[AUTH_ALGO_COUNT] = {
	[AUTH_MD5] = {"MD5", 32},
	[AUTH_SHA256] = {"SHA-256", 64},
};

size_t auth_hex_len(enum auth_algo algo)
{
	return algos[algo].hex;
}

const char *auth_algo_name(enum auth_algo algo)
{
	return algos[algo].name;
}

int auth_algo_parse(const char *name)
{
	if (!name)
		return AUTH_MD5;
	for (int i = 0; i < AUTH_ALGO_COUNT; i++)
		if (!strcasecmp(name, algos[i].name))
			return i;
	return -1;
}

bool auth_is_hex(const char *s, size_t len)
{
	if (!s || strlen(s) != len)
		return false;
	return strspn(s, "0123456789abcdefABCDEF") == len;
}

void auth_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = 0;
}

void auth_hex_lower(const char *in, char *out, size_t size)
{
	size_t i = 0;

	for (; size && i < size - 1 && in[i]; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'F' ? in[i] - 'A' + 'a' : in[i]);
	if (size)
		out[i] = 0;
}

/* H of the parts joined by ':' into lowercase hex. */
static int hash_hex(enum auth_algo algo, const char *const parts[], int n, char *out)
{
	const EVP_MD *md = algo == AUTH_SHA256 ? EVP_sha256() : EVP_md5();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL);

	for (int i = 0; ok && i < n; i++) {
		if (!parts[i])
			ok = 0;
		else if (i > 0 && !EVP_DigestUpdate(ctx, ":", 1))
			ok = 0;
		else if (!EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])))
			ok = 0;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, d, &len) && len * 2 == algos[algo].hex;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	auth_hex(d, len, out);
	return 0;
}

int auth_ha1(enum auth_algo algo, const char *username, const char *realm, const char *password,
	     char *out)
{
	const char *parts[] = {username, realm, password};

	return hash_hex(algo, parts, 3, out);
}

int auth_response(enum auth_algo algo, const char *ha1, const char *nonce, const char *nc,
		  const char *cnonce, const char *qop, const char *method, const char *uri,
		  char *out)
{
	char ha2[AUTH_HEX_MAX + 1], lower[AUTH_HEX_MAX + 1];
	const char *a2[] = {method, uri};
	size_t n = algos[algo].hex;

	if (!auth_is_hex(ha1, n) || hash_hex(algo, a2, 2, ha2) < 0)
		return -1;
	auth_hex_lower(ha1, lower, sizeof(lower));
	if (qop) {
		const char *parts[] = {lower, nonce, nc, cnonce, qop, ha2};
		return hash_hex(algo, parts, 6, out);
	}
	const char *parts[] = {lower, nonce, ha2};
	return hash_hex(algo, parts, 3, out);
}
