/* SPDX-License-Identifier: MIT */
/*
 * Web Push cryptography: RFC 8291's worked example (Appendix A: fixed
 * application-server key and salt) byte for byte; a fresh encryption
 * decrypted again the way a browser does (ECDH with the subscription's
 * private key, RFC 8188); refusals; and the VAPID header (RFC 8292): its
 * JWT's audience, expiry and subject, and an ES256 signature that the
 * key's public point in k= verifies.
 */
#include "check.h"

#include <stdlib.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "push/webpush.h"

static const char PLAIN[] = "When I grow up, I want to be a watermelon";
static const char AS_PRIVATE[] = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
static const char UA_PUBLIC[] =
	"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
static const char UA_PRIVATE[] = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
static const char SALT[] = "DGv6ra1nlYgDCS1FRnbzlw";
static const char AUTH[] = "BTBZMqHH6r4Tts7J_aSIgg";
static const char BODY[] =
	"DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAm"
	"S6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_"
	"Qulcy4a-fN";

static unsigned char *dec(const char *s, size_t *len)
{
	unsigned char *b = push_b64url_decode(s, len);
	CHECK(b != NULL);
	return b;
}

static void test_rfc8291_example(void)
{
	size_t l_as, l_ua, l_salt, l_auth, out_len = 0;
	unsigned char *as = dec(AS_PRIVATE, &l_as), *ua = dec(UA_PUBLIC, &l_ua);
	unsigned char *salt = dec(SALT, &l_salt), *auth = dec(AUTH, &l_auth), *out = NULL;
	EVP_PKEY *key = as && l_as == 32 ? webpush_key_from_private(as) : NULL;
	char *b64;

	CHECK(key != NULL && l_ua == WEBPUSH_KEY_LEN && l_salt == 16 && l_auth == 16);
	if (key && webpush_encrypt(ua, auth, l_auth, PLAIN, strlen(PLAIN), key, salt, &out,
				   &out_len) == 0) {
		b64 = push_b64url(out, out_len);
		CHECK_STR(b64, BODY);
		free(b64);
	} else {
		CHECK_MSG(0, "encryption of the RFC 8291 example failed");
	}
	free(out);
	EVP_PKEY_free(key);
	free(as);
	free(ua);
	free(salt);
	free(auth);
}

/* HKDF with one output block, as RFC 8291 uses it (written again here, on purpose). */
static void hkdf1(const unsigned char *salt, size_t sl, const unsigned char *ikm, size_t il,
		  const unsigned char *info, size_t nl, unsigned char *out, size_t len)
{
	unsigned char prk[32], t[32], buf[300];
	unsigned int n;

	HMAC(EVP_sha256(), salt, (int)sl, ikm, il, prk, &n);
	memcpy(buf, info, nl);
	buf[nl] = 1;
	HMAC(EVP_sha256(), prk, 32, buf, nl + 1, t, &n);
	memcpy(out, t, len);
}

/* What a browser does with a body: the plaintext, or NULL. */
static char *browser_decrypt(const unsigned char *body, size_t len, EVP_PKEY *ua_key,
			     const unsigned char *ua_pub, const unsigned char *auth)
{
	unsigned char secret[32], ikm[32], cek[16], nonce[12], info[14 + 2 * 65];
	unsigned char *plain;
	EVP_PKEY *as = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_CIPHER_CTX *c = NULL;
	size_t sl = 32, clen;
	int n = 0, ok = 0;

	if (len < 21 + 65 + 16 + 1 || body[20] != 65)
		return NULL;
	/* the sender's public key from the header */
	{
		OSSL_PARAM p[] = {
			OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
			OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(body + 21), 65),
			OSSL_PARAM_END,
		};
		EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (kc && EVP_PKEY_fromdata_init(kc) == 1)
			EVP_PKEY_fromdata(kc, &as, EVP_PKEY_PUBLIC_KEY, p);
		EVP_PKEY_CTX_free(kc);
	}
	ctx = as ? EVP_PKEY_CTX_new(ua_key, NULL) : NULL;
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, as) != 1 ||
	    EVP_PKEY_derive(ctx, secret, &sl) != 1)
		goto out;
	memcpy(info, "WebPush: info", 14);
	memcpy(info + 14, ua_pub, 65);
	memcpy(info + 79, body + 21, 65);
	hkdf1(auth, 16, secret, 32, info, sizeof(info), ikm, 32);
	hkdf1(body, 16, ikm, 32, (const unsigned char *)"Content-Encoding: aes128gcm", 28, cek, 16);
	hkdf1(body, 16, ikm, 32, (const unsigned char *)"Content-Encoding: nonce", 24, nonce, 12);
	clen = len - 86 - 16;
	plain = calloc(1, clen + 1);
	c = EVP_CIPHER_CTX_new();
	if (plain && c && EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
	    EVP_DecryptInit_ex(c, NULL, NULL, cek, nonce) == 1 &&
	    EVP_DecryptUpdate(c, plain, &n, body + 86, (int)clen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(body + len - 16)) == 1 &&
	    EVP_DecryptFinal_ex(c, plain + n, &n) == 1 && clen > 0 && plain[clen - 1] == 0x02) {
		plain[clen - 1] = 0;
		ok = 1;
	}
	if (!ok) {
		free(plain);
		plain = NULL;
	}
	EVP_CIPHER_CTX_free(c);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(as);
	return (char *)plain;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(as);
	return NULL;
}

static void test_roundtrip(void)
{
	size_t l_priv, l_pub, l_auth, len = 0, len2 = 0;
	unsigned char *priv = dec(UA_PRIVATE, &l_priv), *pub = dec(UA_PUBLIC, &l_pub);
	unsigned char *auth = dec(AUTH, &l_auth), *out = NULL, *out2 = NULL;
	EVP_PKEY *ua = priv ? webpush_key_from_private(priv) : NULL;
	unsigned char check_pub[WEBPUSH_KEY_LEN];
	const char *msg = "{\"type\":\"call\",\"call-id\":\"abc@host\",\"from-uri\":\"sip:bob@x\"}";
	char *plain;
	char big[5000];

	CHECK(ua && webpush_public_key(ua, check_pub) == 0 && !memcmp(check_pub, pub, 65));
	/* production mode: a fresh key and salt each time */
	CHECK(webpush_encrypt(pub, auth, l_auth, msg, strlen(msg), NULL, NULL, &out, &len) == 0);
	CHECK(webpush_encrypt(pub, auth, l_auth, msg, strlen(msg), NULL, NULL, &out2, &len2) == 0);
	CHECK(len == 86 + strlen(msg) + 1 + 16 && len2 == len && out && out2 &&
	      memcmp(out, out2, 16) != 0 && memcmp(out + 21, out2 + 21, 65) != 0);
	plain = out ? browser_decrypt(out, len, ua, pub, auth) : NULL;
	CHECK_STR(plain, msg);
	free(plain);
	/* one bit changed anywhere in the record: the tag does not verify */
	if (out) {
		out[100] ^= 1;
		plain = browser_decrypt(out, len, ua, pub, auth);
		CHECK(plain == NULL);
		free(plain);
	}
	free(out);
	free(out2);
	/* refusals: a wrong auth size, a point not on the curve, more than one record */
	out = NULL;
	CHECK(webpush_encrypt(pub, auth, 15, msg, strlen(msg), NULL, NULL, &out, &len) == -1);
	pub[10] ^= 0xff;
	CHECK(webpush_encrypt(pub, auth, l_auth, msg, strlen(msg), NULL, NULL, &out, &len) == -1);
	pub[10] ^= 0xff;
	memset(big, 'x', sizeof(big));
	CHECK(webpush_encrypt(pub, auth, l_auth, big, sizeof(big), NULL, NULL, &out, &len) == -1);
	CHECK(out == NULL);
	EVP_PKEY_free(ua);
	free(priv);
	free(pub);
	free(auth);
}

static void test_vapid(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *h = key ? webpush_vapid(key, "https://push.example.net:8443/wpush/v2/abc?x=1",
				      "mailto:ops@example.com", 1000000, 43200)
		      : NULL;
	char jwt[2048] = "", k[200] = "";

	CHECK(h != NULL);
	if (h && sscanf(h, "vapid t=%2047[^,], k=%199s", jwt, k) == 2) {
		char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
		size_t cl = 0, sl = 0, kl = 0;
		unsigned char *claims = NULL, *sig = NULL, *pub = push_b64url_decode(k, &kl);
		unsigned char mine[WEBPUSH_KEY_LEN];
		json_t *c = NULL;

		CHECK(dot1 && dot2);
		if (dot1 && dot2) {
			*dot2 = 0;
			claims = push_b64url_decode(dot1 + 1, &cl);
			sig = push_b64url_decode(dot2 + 1, &sl);
			c = claims ? json_loadb((const char *)claims, cl, 0, NULL) : NULL;
			CHECK_STR(json_string_value(json_object_get(c, "aud")),
				  "https://push.example.net:8443");
			CHECK(json_integer_value(json_object_get(c, "exp")) == 1000000 + 43200);
			CHECK_STR(json_string_value(json_object_get(c, "sub")),
				  "mailto:ops@example.com");
			CHECK(sl == 64); /* raw r || s */
			CHECK(webpush_public_key(key, mine) == 0 && kl == 65 && !memcmp(mine, pub, 65));
			/* verify the signature with the public key alone */
			if (sig && sl == 64 && pub && kl == 65) {
				ECDSA_SIG *es = ECDSA_SIG_new();
				BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
				unsigned char *der = NULL;
				int dl;
				OSSL_PARAM p[] = {
					OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
							       0),
					OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 65),
					OSSL_PARAM_END,
				};
				EVP_PKEY *vk = NULL;
				EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
				EVP_MD_CTX *md = EVP_MD_CTX_new();

				ECDSA_SIG_set0(es, r, s);
				dl = i2d_ECDSA_SIG(es, &der);
				if (kc && EVP_PKEY_fromdata_init(kc) == 1)
					EVP_PKEY_fromdata(kc, &vk, EVP_PKEY_PUBLIC_KEY, p);
				CHECK(vk && md && dl > 0 &&
				      EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, vk) == 1 &&
				      EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)jwt,
						       strlen(jwt)) == 1);
				EVP_MD_CTX_free(md);
				EVP_PKEY_CTX_free(kc);
				EVP_PKEY_free(vk);
				OPENSSL_free(der);
				ECDSA_SIG_free(es);
			}
		}
		json_decref(c);
		free(claims);
		free(sig);
		free(pub);
	} else {
		CHECK_MSG(0, "not a vapid header: %s", h ? h : "(null)");
	}
	free(h);
	/* Only https endpoints with a host, no user info. */
	CHECK(webpush_vapid(key, "http://push.example.net/x", "mailto:a@b", 0, 60) == NULL);
	CHECK(webpush_vapid(key, "https:///x", "mailto:a@b", 0, 60) == NULL);
	CHECK(webpush_vapid(key, "https://user@push.example.net/x", "mailto:a@b", 0, 60) == NULL);
	EVP_PKEY_free(key);
}

/* The audience is the origin as RFC 6454 writes it: lowercase host, no default port. */
static void test_origin(void)
{
	static const char *const cases[][2] = {
		{"https://Push.Example.NET/wpush/v2/x", "https://push.example.net"},
		{"HTTPS://push.example.net:443/x?y", "https://push.example.net"},
		{"https://push.example.net:8443/x", "https://push.example.net:8443"},
		{"https://[2001:db8::443]/x", "https://[2001:db8::443]"},
		{"https://[2001:db8::1]:443/x", "https://[2001:db8::1]"},
		{"https://push.example.net:4431", "https://push.example.net:4431"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(webpush_origin(cases[i][0], out, sizeof(out)) == 0);
		CHECK_STR(out, cases[i][1]);
	}
	CHECK(webpush_origin("https://push.example.net/x", out, 12) < 0); /* does not fit */
}

int main(void)
{
	test_rfc8291_example();
	test_roundtrip();
	test_vapid();
	test_origin();
	return CHECK_RESULT();
}
