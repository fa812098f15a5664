/* SPDX-License-Identifier: MIT */
/*
 * Digest arithmetic against the RFCs' own examples (RFC 2617 3.5, RFC 7616
 * 3.9.1 for MD5 and SHA-256), and the nonces sipwake issues: fresh, stale
 * after auth.nonce_lifetime, and worthless when altered or made by another
 * process.
 */
#include "check.h"

#include <stdlib.h>

#include "sipwake/auth.h"
#include "sipwake/config.h"
#include "sipwake/store.h"

#include <sofia-sip/sip_header.h>

static void test_rfc2617(void)
{
	char ha1[AUTH_HEX_MAX + 1], resp[AUTH_HEX_MAX + 1];

	CHECK(auth_ha1(AUTH_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", ha1) == 0);
	CHECK(auth_response(AUTH_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
			    "0a4f113b", "auth", "GET", "/dir/index.html", resp) == 0);
	CHECK_STR(resp, "6629fae49393a05397450978507c4ef1");
	/* An HA1 in capitals is the same HA1. */
	for (char *p = ha1; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	CHECK(auth_response(AUTH_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
			    "0a4f113b", "auth", "GET", "/dir/index.html", resp) == 0);
	CHECK_STR(resp, "6629fae49393a05397450978507c4ef1");
}

static void test_rfc7616(void)
{
	static const char nonce[] = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
	static const char cnonce[] = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
	char ha1[AUTH_HEX_MAX + 1], resp[AUTH_HEX_MAX + 1];

	CHECK(auth_ha1(AUTH_MD5, "Mufasa", "http-auth@example.org", "Circle of Life", ha1) == 0);
	CHECK(auth_response(AUTH_MD5, ha1, nonce, "00000001", cnonce, "auth", "GET",
			    "/dir/index.html", resp) == 0);
	CHECK_STR(resp, "8ca523f5e9506fed4657c9700eebdbec");

	CHECK(auth_ha1(AUTH_SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", ha1) == 0);
	CHECK(strlen(ha1) == 64);
	CHECK(auth_response(AUTH_SHA256, ha1, nonce, "00000001", cnonce, "auth", "GET",
			    "/dir/index.html", resp) == 0);
	CHECK_STR(resp, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");

	/* The wrong HA1 size for the algorithm is an error, not a digest. */
	CHECK(auth_response(AUTH_SHA256, "6629fae49393a05397450978507c4ef1", nonce, "00000001",
			    cnonce, "auth", "GET", "/", resp) == -1);
	CHECK(auth_response(AUTH_MD5, "not hex at all, not hex at all!!", nonce, "00000001", cnonce,
			    "auth", "GET", "/", resp) == -1);
}

static void test_names(void)
{
	CHECK(auth_algo_parse(NULL) == AUTH_MD5); /* no algorithm parameter: MD5 */
	CHECK(auth_algo_parse("md5") == AUTH_MD5);
	CHECK(auth_algo_parse("SHA-256") == AUTH_SHA256);
	CHECK(auth_algo_parse("MD5-sess") == -1);
	CHECK(auth_algo_parse("SHA-512-256") == -1);
	CHECK(auth_is_hex("00ff00ff00ff00ff00ff00ff00ff00FF", 32));
	CHECK(!auth_is_hex("00ff00ff00ff00ff00ff00ff00ff00F", 32));
	CHECK(!auth_is_hex("00ff00ff00ff00ff00ff00ff00ff00Fg", 32));
	CHECK(!auth_is_hex(NULL, 32));
}

static void test_nonces(void)
{
	struct sw_config cfg;
	struct store *st = NULL;
	struct auth *a = NULL, *b = NULL;
	char n1[128], n2[128], other[128];
	int64_t t = 5000000000LL;

	config_defaults(&cfg);
	cfg.auth.nonce_lifetime = 30;
	CHECK(store_open(&st, ":memory:") == 0);
	CHECK(auth_new(&a, &cfg, st) == 0);
	CHECK(auth_new(&b, &cfg, st) == 0);
	if (!a || !b)
		goto out;
	auth_nonce_make(a, t, n1, sizeof(n1));
	auth_nonce_make(a, t + 1, n2, sizeof(n2));
	CHECK(strlen(n1) == 48 && strcmp(n1, n2) != 0);
	CHECK(auth_nonce_check(a, n1, t) == AUTH_NONCE_OK);
	CHECK(auth_nonce_check(a, n1, t + 30 * 1000000LL) == AUTH_NONCE_OK);
	CHECK(auth_nonce_check(a, n1, t + 30 * 1000000LL + 1) == AUTH_NONCE_STALE);
	/* From the future (beyond a second of slack): not ours to trust. */
	CHECK(auth_nonce_check(a, n1, t - 2000000) == AUTH_NONCE_BAD);
	/* Another process (another key) made it: bad, whatever its clock says. */
	auth_nonce_make(b, t, other, sizeof(other));
	CHECK(strcmp(other, n1) != 0);
	CHECK(auth_nonce_check(a, other, t) == AUTH_NONCE_BAD);
	/* One digit changed, in the clock or in the MAC. */
	n1[3] = n1[3] == '0' ? '1' : '0';
	CHECK(auth_nonce_check(a, n1, t) == AUTH_NONCE_BAD);
	n2[40] = n2[40] == 'a' ? 'b' : 'a';
	CHECK(auth_nonce_check(a, n2, t) == AUTH_NONCE_BAD);
	CHECK(auth_nonce_check(a, "", t) == AUTH_NONCE_BAD);
	CHECK(auth_nonce_check(a, "dcd98b7102dd2f0e8b11d0f600bfb0c093", t) == AUTH_NONCE_BAD);
out:
	auth_free(a);
	auth_free(b);
	store_close(st);
	config_cleanup(&cfg);
}

/* A parameter of a credentials string: name="value" or name=value. */
static void param(const char *creds, const char *name, char *out, size_t len)
{
	char key[32];
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), " %s=", name);
	p = strstr(creds, key);
	out[0] = 0;
	if (!p)
		return;
	p += strlen(key);
	if (*p == '"')
		p++;
	n = strcspn(p, "\",");
	snprintf(out, len, "%.*s", (int)n, p);
}

static void test_client(void)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	struct store *st = NULL;
	char ha1[AUTH_HEX_MAX + 1], creds[1024], why[160], want[AUTH_HEX_MAX + 1];
	char nc[16], cnonce[64], resp[80];
	struct store_account acc = {.aor = "sip:ios@pbx.example", .username = "ios",
				    .realm = "pbx.example", .ha1_md5 = ha1, .created = 1, .updated = 1};
	struct auth_cache c = {0};
	msg_auth_t *ch;

	CHECK(store_open(&st, ":memory:") == 0);
	if (!st)
		return;
	ch = sip_www_authenticate_make(home, "Digest realm=\"elsewhere\", nonce=\"n0\", "
					     "algorithm=MD5, qop=\"auth\"");
	CHECK(ch != NULL);
	CHECK(auth_client_take(st, acc.aor, ch, false, &c, why, sizeof(why)) == AUTH_CLIENT_NO_ACCOUNT);
	CHECK(auth_ha1(AUTH_MD5, "ios", "pbx.example", "secret", ha1) == 0);
	CHECK(store_account_put(st, &acc) == 0);
	CHECK(auth_client_take(st, acc.aor, ch, false, &c, why, sizeof(why)) == AUTH_CLIENT_UNUSABLE);
	CHECK(strstr(why, "realm") != NULL);
	ch = sip_www_authenticate_make(home, "Digest realm=\"pbx.example\", nonce=\"abc123\", "
					     "algorithm=SHA-256, qop=\"auth\"");
	CHECK(auth_client_take(st, acc.aor, ch, false, &c, why, sizeof(why)) == AUTH_CLIENT_UNUSABLE);
	CHECK(strstr(why, "SHA-256") != NULL); /* the account has MD5 only */
	/* Two challenges: the one the account can answer is taken. */
	ch = sip_www_authenticate_make(home, "Digest realm=\"pbx.example\", nonce=\"abc123\", "
					     "opaque=\"op\", algorithm=MD5, qop=\"auth,auth-int\"");
	CHECK(auth_client_take(st, acc.aor, ch, false, &c, why, sizeof(why)) == AUTH_CLIENT_OK);
	for (unsigned i = 1; i <= 2; i++) {
		char want_nc[16];
		CHECK(auth_client_credentials(st, acc.aor, &c, "REGISTER", "sip:pbx.example", creds,
					      sizeof(creds)) == AUTH_CLIENT_OK);
		param(creds, "nc", nc, sizeof(nc));
		param(creds, "cnonce", cnonce, sizeof(cnonce));
		param(creds, "response", resp, sizeof(resp));
		snprintf(want_nc, sizeof(want_nc), "%08x", i);
		CHECK_STR(nc, want_nc); /* the nonce is reused with the next count */
		CHECK(auth_response(AUTH_MD5, ha1, "abc123", nc, cnonce, "auth", "REGISTER",
				    "sip:pbx.example", want) == 0);
		CHECK_STR(resp, want);
		CHECK(strstr(creds, "username=\"ios\"") && strstr(creds, "opaque=\"op\"") &&
		      strstr(creds, "qop=auth"));
	}
	/* Without qop (RFC 2069): no nc, no cnonce, the short digest. */
	ch = sip_www_authenticate_make(home, "Digest realm=\"pbx.example\", nonce=\"xyz\"");
	CHECK(auth_client_take(st, acc.aor, ch, false, &c, why, sizeof(why)) == AUTH_CLIENT_OK);
	CHECK(auth_client_credentials(st, acc.aor, &c, "REGISTER", "sip:pbx.example", creds,
				      sizeof(creds)) == AUTH_CLIENT_OK);
	param(creds, "response", resp, sizeof(resp));
	CHECK(auth_response(AUTH_MD5, ha1, "xyz", NULL, NULL, NULL, "REGISTER", "sip:pbx.example",
			    want) == 0);
	CHECK_STR(resp, want);
	CHECK(!strstr(creds, "nc=") && !strstr(creds, "cnonce"));
	/* SHA-256 (RFC 8760) from an account that has its HA1, in a 407. */
	{
		char sha[AUTH_HEX_MAX + 1];
		struct store_account both = acc;

		CHECK(auth_ha1(AUTH_SHA256, "ios", "pbx.example", "secret", sha) == 0);
		both.ha1_sha256 = sha;
		CHECK(store_account_put(st, &both) == 0);
		ch = sip_proxy_authenticate_make(home, "Digest realm=\"pbx.example\", "
						       "nonce=\"s256\", algorithm=SHA-256, qop=\"auth\"");
		CHECK(auth_client_take(st, acc.aor, ch, true, &c, why, sizeof(why)) == AUTH_CLIENT_OK);
		CHECK(c.proxy && c.algo == AUTH_SHA256);
		CHECK(auth_client_credentials(st, acc.aor, &c, "REGISTER", "sip:pbx.example", creds,
					      sizeof(creds)) == AUTH_CLIENT_OK);
		param(creds, "nc", nc, sizeof(nc));
		param(creds, "cnonce", cnonce, sizeof(cnonce));
		param(creds, "response", resp, sizeof(resp));
		CHECK(auth_response(AUTH_SHA256, sha, "s256", nc, cnonce, "auth", "REGISTER",
				    "sip:pbx.example", want) == 0);
		CHECK_STR(resp, want);
		CHECK(strlen(resp) == 64 && strstr(creds, "algorithm=SHA-256"));
	}
	/* The account gone: nothing to answer with. */
	CHECK(store_account_del(st, acc.aor) == 1);
	CHECK(auth_client_credentials(st, acc.aor, &c, "REGISTER", "sip:pbx.example", creds,
				      sizeof(creds)) == AUTH_CLIENT_NO_ACCOUNT);
	auth_cache_clear(&c);
	store_close(st);
	su_home_deinit(home);
}

int main(void)
{
	test_rfc2617();
	test_rfc7616();
	test_names();
	test_nonces();
	test_client();
	return CHECK_RESULT();
}
