/* SPDX-License-Identifier: MIT */
/*
 * The request and answer text of h2.c, apart from its connections: an
 * https URL split into host, port, :authority and :path, the HTTP/2 header
 * block of a request built from the providers' curl_slist (read as curl
 * reads CURLOPT_HTTPHEADER), and an answer's Retry-After. Pure functions,
 * tested in tests/unit/test_h2_req.c.
 */
#include "h2.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Split https://host[:port]/path?query into its parts (malloc'd); -1 if it is not one. */
int push_h2_parse_url(const char *url, char **host, char port[8], char **authority, char **path)
{
	const char *p = url + 8, *h, *hend, *q;
	size_t hl, rest;

	*host = *authority = *path = NULL;
	if (strncasecmp(url, "https://", 8) != 0)
		return -1;
	if (*p == '[') {
		h = p + 1;
		hend = strchr(h, ']');
		if (!hend)
			return -1;
		q = hend + 1;
	} else {
		h = p;
		hend = h + strcspn(h, ":/?#");
		q = hend;
	}
	hl = (size_t)(hend - h);
	if (hl == 0 || memchr(h, '@', hl))
		return -1;
	memcpy(port, "443", 4);
	if (*q == ':') {
		size_t pl = strspn(q + 1, "0123456789");
		if (pl == 0 || pl > 5)
			return -1;
		memcpy(port, q + 1, pl);
		port[pl] = '\0';
		q += 1 + pl;
	}
	if (*q && *q != '/' && *q != '?' && *q != '#')
		return -1;
	*host = strndup(h, hl);
	*authority = strndup(p, (size_t)(q - p));
	rest = strcspn(q, "#");
	if ((*path = malloc(rest + 2))) {
		char *d = *path;

		if (*q != '/')
			*d++ = '/';
		memcpy(d, q, rest);
		d[rest] = '\0';
	}
	if (!*host || !*authority || !*path) {
		free(*host);
		free(*authority);
		free(*path);
		*host = *authority = *path = NULL;
		return -1;
	}
	return 0;
}

static void nv_set(nghttp2_nv *nv, char *name, size_t nlen, char *value, size_t vlen)
{
	nv->name = (uint8_t *)name;
	nv->namelen = nlen;
	nv->value = (uint8_t *)value;
	nv->valuelen = vlen;
	nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
}

/*
 * Headers whose value is new on (nearly) every push. Kept out of the HPACK
 * dynamic table: a fresh entry per request would push out the ones that
 * repeat (the APNs bearer token, topic, push type), and those would be
 * sent and Huffman-coded in full again every few dozen requests.
 */
static bool once_per_push(const char *name, size_t len)
{
	static const char *const names[] = {"apns-id", "apns-collapse-id", "topic"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return true;
	return false;
}

/*
 * The header block: pseudo-headers, then the request's headers read the way
 * curl reads CURLOPT_HTTPHEADER ("Name:" with nothing after it removes a
 * header, "Name;" sends it empty), names lowercased, and content-length.
 */
nghttp2_nv *push_h2_headers(const struct curl_slist *headers, const char *authority,
			    const char *path, size_t body_len, size_t *count)
{
	size_t n = 5, size = 64 + strlen(authority) + strlen(path);
	const struct curl_slist *l;
	nghttp2_nv *nva;
	char *b;
	size_t i = 0;
	bool have_len = false;

	for (l = headers; l; l = l->next) {
		n++;
		size += strlen(l->data) + 2;
	}
	nva = calloc(1, n * sizeof(*nva) + size);
	if (!nva)
		return NULL;
	b = (char *)(nva + n);
#define LIT(str) (char *)(str), sizeof(str) - 1
	nv_set(&nva[i++], LIT(":method"), LIT("POST"));
	nv_set(&nva[i++], LIT(":scheme"), LIT("https"));
	strcpy(b, authority);
	nv_set(&nva[i++], LIT(":authority"), b, strlen(b));
	b += strlen(b) + 1;
	strcpy(b, path);
	nv_set(&nva[i++], LIT(":path"), b, strlen(b));
	b += strlen(b) + 1;
	for (l = headers; l; l = l->next) {
		const char *d = l->data, *sep = d + strcspn(d, ":;");
		size_t nl = (size_t)(sep - d), vl;
		const char *v;
		char *name = b;

		if (!*sep || nl == 0)
			continue;
		v = sep + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		vl = strlen(v);
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		if (*sep == ':' && vl == 0)
			continue; /* curl: remove the header */
		if (*sep == ';' && vl != 0)
			continue; /* not a header line curl would send either */
		for (size_t j = 0; j < nl; j++)
			name[j] = (char)((d[j] >= 'A' && d[j] <= 'Z') ? d[j] + 32 : d[j]);
		name[nl] = '\0';
		b += nl + 1;
		memcpy(b, v, vl);
		b[vl] = '\0';
		if (nl == 14 && memcmp(name, "content-length", 14) == 0)
			have_len = true;
		nv_set(&nva[i], name, nl, b, vl);
		if (once_per_push(name, nl))
			nva[i].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
		i++;
		b += vl + 1;
	}
	if (!have_len) {
		char digits[24], *d = digits + sizeof(digits);
		size_t v = body_len, len;

		do
			*--d = (char)('0' + v % 10);
		while ((v /= 10));
		len = (size_t)(digits + sizeof(digits) - d);
		memcpy(b, d, len);
		b[len] = '\0';
		nv_set(&nva[i++], LIT("content-length"), b, len);
	}
#undef LIT
	*count = i;
	return nva;
}

long push_h2_retry_after(const char *v, size_t len)
{
	char buf[64];
	long s = 0;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (buf[0] >= '0' && buf[0] <= '9') {
		char *end;
		long long n = strtoll(buf, &end, 10);
		s = *end ? 0 : n > 3600 ? 3600 : (long)n;
	} else {
		time_t when = curl_getdate(buf, NULL), now = time(NULL);
		if (when > now)
			s = when - now > 3600 ? 3600 : (long)(when - now);
	}
	return s > 0 ? s : 0;
}
