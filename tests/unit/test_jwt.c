/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/push/jwt.c: base64url against RFC 4648 vectors, ES256
 * and RS256 JWTs verified with OpenSSL (raw r||s signature for ES256), key
 * file permission checks, UUIDs.
 */
#include "push/jwt.c"

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static void test_b64url(void)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
		{"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = push_b64url(v[i].in, strlen(v[i].in));
		size_t n = 0;
		unsigned char *d;

		CHECK_STR(e, v[i].out);
		d = push_b64url_decode(e, &n);
		CHECK(d && n == strlen(v[i].in) && memcmp(d, v[i].in, n) == 0);
		free(d);
		free(e);
	}
	{
		size_t n;
		CHECK(push_b64url_decode("Zm9v+A", &n) == NULL); /* '+' is not base64url */
		CHECK(push_b64url_decode("Z", &n) == NULL);
		unsigned char *d = push_b64url_decode("Zm8=", &n); /* padding tolerated */
		CHECK(d && n == 2 && memcmp(d, "fo", 2) == 0);
		free(d);
	}
}

static EVP_PKEY *gen_key(const char *type)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *k = NULL;

	if (!c || EVP_PKEY_keygen_init(c) != 1)
		abort();
	if (strcmp(type, "EC") == 0)
		EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1);
	else
		EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048);
	if (EVP_PKEY_keygen(c, &k) != 1)
		abort();
	EVP_PKEY_CTX_free(c);
	return k;
}

/* Verify a compact JWS the way a provider does; returns the claims or NULL. */
static json_t *verify_jwt(const char *jwt, EVP_PKEY *key, bool es256)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	unsigned char *sig = NULL, *der = NULL, *claims_raw = NULL;
	size_t siglen = 0, clen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	json_t *claims = NULL;
	int derlen;

	if (!d2)
		goto out;
	sig = push_b64url_decode(d2 + 1, &siglen);
	if (!sig)
		goto out;
	if (es256) {
		ECDSA_SIG *s = ECDSA_SIG_new();
		unsigned char *p;
		if (siglen != 64)
			goto out;
		ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
		derlen = i2d_ECDSA_SIG(s, NULL);
		der = malloc((size_t)derlen);
		p = der;
		i2d_ECDSA_SIG(s, &p);
		ECDSA_SIG_free(s);
	} else {
		der = sig;
		sig = NULL;
		derlen = (int)siglen;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)jwt,
			     (size_t)(d2 - jwt)) != 1)
		goto out;
	{
		char *c64 = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
		claims_raw = push_b64url_decode(c64, &clen);
		free(c64);
	}
	if (claims_raw)
		claims = json_loadb((const char *)claims_raw, clen, 0, NULL);
out:
	EVP_MD_CTX_free(md);
	free(sig);
	free(der);
	free(claims_raw);
	return claims;
}

static void test_jwt(void)
{
	EVP_PKEY *ec = gen_key("EC"), *rsa = gen_key("RSA"), *ec2 = gen_key("EC");
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "ES256", "kid", "ABC123DEFG");
	json_t *claims = json_pack("{s:s, s:i}", "iss", "TEAMID1234", "iat", 1700000000);
	json_t *rhdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	char *jwt = push_jwt_sign(ec, "ES256", hdr, claims), *jwt2;
	json_t *got;

	CHECK(jwt != NULL);
	CHECK(jwt && strncmp(jwt, "eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQzEyM0RFRkcifQ.", 47) == 0);
	got = jwt ? verify_jwt(jwt, ec, true) : NULL;
	CHECK(got && json_equal(got, claims));
	json_decref(got);
	CHECK(jwt && verify_jwt(jwt, ec2, true) == NULL); /* wrong key */
	/* ECDSA is randomised: a new token differs but verifies too. */
	jwt2 = push_jwt_sign(ec, "ES256", hdr, claims);
	CHECK(jwt2 && strcmp(jwt, jwt2) != 0);
	got = jwt2 ? verify_jwt(jwt2, ec, true) : NULL;
	CHECK(got != NULL);
	json_decref(got);
	free(jwt2);
	free(jwt);

	jwt = push_jwt_sign(rsa, "RS256", rhdr, claims);
	got = jwt ? verify_jwt(jwt, rsa, false) : NULL;
	CHECK(got && json_equal(got, claims));
	json_decref(got);
	free(jwt);
	CHECK(push_jwt_sign(rsa, "ES256", hdr, claims) == NULL); /* key type must match */
	CHECK(push_jwt_sign(ec, "RS256", rhdr, claims) == NULL);

	json_decref(hdr);
	json_decref(rhdr);
	json_decref(claims);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
	EVP_PKEY_free(rsa);
}

static void test_key_files(void)
{
	char dir[] = "/tmp/sipwake-jwt-XXXXXX", path[64], err[256];
	EVP_PKEY *k = gen_key("EC"), *l;
	FILE *fp;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key.p8", dir);
	fp = fopen(path, "w");
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(path, 0600);
	l = push_key_load(path, err, sizeof(err));
	CHECK(l && EVP_PKEY_eq(k, l) == 1);
	EVP_PKEY_free(l);
	chmod(path, 0644);
	CHECK(push_key_load(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "accessible by others") != NULL);
	chmod(path, 0640); /* group-readable is the operator's choice (e.g. a sipwake group) */
	CHECK(push_key_file_check(path, err, sizeof(err)) == 0);
	/* An encrypted key is refused, without a passphrase prompt. */
	fp = fopen(path, "w");
	PEM_write_PKCS8PrivateKey(fp, k, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
	fclose(fp);
	chmod(path, 0600);
	CHECK(push_key_load(path, err, sizeof(err)) == NULL);
	unlink(path);
	CHECK(push_key_load(path, err, sizeof(err)) == NULL);
	CHECK(push_key_from_pem("not a key", err, sizeof(err)) == NULL);
	rmdir(dir);
	EVP_PKEY_free(k);
}

static void test_uuid(void)
{
	char a[37], b[37];

	push_uuid4(a);
	push_uuid4(b);
	CHECK(strlen(a) == 36 && a[8] == '-' && a[13] == '-' && a[14] == '4' && a[18] == '-');
	CHECK(strchr("89ab", a[19]) != NULL);
	CHECK(strcmp(a, b) != 0);
	/* Past a refill of the random pool (64 ids): still well formed, still distinct. */
	{
		static char many[200][37];

		for (int i = 0; i < 200; i++) {
			push_uuid4(many[i]);
			CHECK(strlen(many[i]) == 36 && many[i][14] == '4' &&
			      strchr("89ab", many[i][19]) != NULL);
			for (int j = 0; j < i; j++)
				CHECK(strcmp(many[i], many[j]) != 0);
		}
	}
}

int main(void)
{
	test_b64url();
	test_jwt();
	test_key_files();
	test_uuid();
	return CHECK_RESULT();
}
