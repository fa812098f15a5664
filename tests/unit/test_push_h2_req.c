/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of src/push/h2_req.c: an https URL taken apart, a request's
 * HTTP/2 header block from a curl_slist (curl's reading of "Name:" and
 * "Name;"), Retry-After.
 */
#include "push/h2_req.c"

#include "check.h"

static void test_url(void)
{
	char *host, *auth, *path, port[8];

	CHECK(push_h2_parse_url("https://127.0.0.1:8443/3/device/ab", &host, port, &auth, &path) ==
	      0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_STR(port, "8443");
	CHECK_STR(auth, "127.0.0.1:8443");
	CHECK_STR(path, "/3/device/ab");
	free(host), free(auth), free(path);

	CHECK(push_h2_parse_url("https://api.push.apple.com", &host, port, &auth, &path) == 0);
	CHECK_STR(host, "api.push.apple.com");
	CHECK_STR(port, "443");
	CHECK_STR(auth, "api.push.apple.com");
	CHECK_STR(path, "/");
	free(host), free(auth), free(path);

	CHECK(push_h2_parse_url("https://[::1]:9/w?x=1#frag", &host, port, &auth, &path) == 0);
	CHECK_STR(host, "::1");
	CHECK_STR(port, "9");
	CHECK_STR(auth, "[::1]:9");
	CHECK_STR(path, "/w?x=1");
	free(host), free(auth), free(path);

	CHECK(push_h2_parse_url("https://h?q", &host, port, &auth, &path) == 0);
	CHECK_STR(path, "/?q");
	free(host), free(auth), free(path);

	/* not ours: other schemes, user info, bad ports, no host */
	CHECK(push_h2_parse_url("http://127.0.0.1/", &host, port, &auth, &path) < 0);
	CHECK(push_h2_parse_url("https://u@h/", &host, port, &auth, &path) < 0);
	CHECK(push_h2_parse_url("https://h:/", &host, port, &auth, &path) < 0);
	CHECK(push_h2_parse_url("https://h:123456/", &host, port, &auth, &path) < 0);
	CHECK(push_h2_parse_url("https:///x", &host, port, &auth, &path) < 0);
	CHECK(push_h2_parse_url("https://[::1/x", &host, port, &auth, &path) < 0);
	CHECK(host == NULL && auth == NULL && path == NULL);
}

static const nghttp2_nv *nv_find(const nghttp2_nv *nva, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (nva[i].namelen == strlen(name) && memcmp(nva[i].name, name, nva[i].namelen) == 0)
			return &nva[i];
	return NULL;
}

static bool nv_is(const nghttp2_nv *nv, const char *value)
{
	return nv && nv->valuelen == strlen(value) && memcmp(nv->value, value, nv->valuelen) == 0;
}

static void test_headers(void)
{
	struct curl_slist *l = NULL;
	nghttp2_nv *nva;
	size_t n = 0;

	l = curl_slist_append(l, "Apns-Topic: com.example.phone");
	l = curl_slist_append(l, "accept:");               /* removed */
	l = curl_slist_append(l, "content-type:  ");       /* removed as well */
	l = curl_slist_append(l, "X-Empty;");              /* sent empty */
	l = curl_slist_append(l, "apns-id: 1234  ");       /* value trimmed, not indexed */
	l = curl_slist_append(l, "garbage");               /* no separator: skipped */
	nva = push_h2_headers(l, "h:1", "/p", 1234, &n);
	CHECK(nva != NULL);
	CHECK(n == 8);
	CHECK(nv_is(&nva[0], "POST") && nva[0].namelen == 7);
	CHECK(nv_is(nv_find(nva, n, ":scheme"), "https"));
	CHECK(nv_is(nv_find(nva, n, ":authority"), "h:1"));
	CHECK(nv_is(nv_find(nva, n, ":path"), "/p"));
	CHECK(nv_is(nv_find(nva, n, "apns-topic"), "com.example.phone"));
	CHECK(nv_find(nva, n, "accept") == NULL);
	CHECK(nv_find(nva, n, "content-type") == NULL);
	CHECK(nv_is(nv_find(nva, n, "x-empty"), ""));
	CHECK(nv_is(nv_find(nva, n, "apns-id"), "1234"));
	CHECK(nv_find(nva, n, "apns-id") && (nv_find(nva, n, "apns-id")->flags & NGHTTP2_NV_FLAG_NO_INDEX));
	CHECK(!(nv_find(nva, n, "apns-topic")->flags & NGHTTP2_NV_FLAG_NO_INDEX));
	CHECK(nv_is(nv_find(nva, n, "content-length"), "1234"));
	free(nva);

	/* a content-length of the caller's is kept, none added */
	curl_slist_free_all(l);
	l = curl_slist_append(NULL, "Content-Length: 0");
	nva = push_h2_headers(l, "h", "/", 0, &n);
	CHECK(nva && n == 5 && nv_is(nv_find(nva, n, "content-length"), "0"));
	free(nva);
	curl_slist_free_all(l);
	nva = push_h2_headers(NULL, "h", "/", 0, &n);
	CHECK(nva && n == 5 && nv_is(nv_find(nva, n, "content-length"), "0"));
	free(nva);
}

static void test_retry_after(void)
{
	char date[64];
	time_t t = time(NULL) + 120;
	struct tm tm;

	CHECK(push_h2_retry_after("30", 2) == 30);
	CHECK(push_h2_retry_after("99999", 5) == 3600);
	CHECK(push_h2_retry_after("3x", 2) == 0);
	CHECK(push_h2_retry_after("", 0) == 0);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	{
		long s = push_h2_retry_after(date, strlen(date));
		CHECK_MSG(s >= 118 && s <= 120, "%ld for %s", s, date);
	}
	CHECK(push_h2_retry_after("Mon, 01 Jan 2001 00:00:00 GMT", 29) == 0); /* past */
}

int main(void)
{
	test_url();
	test_headers();
	test_retry_after();
	return CHECK_RESULT();
}
