/* SPDX-License-Identifier: MIT */
/*
 * Push-identity parsing, shared by the registrar and the push layer: turns
 * the parameters of a REGISTER Contact URI into a struct pn_identity (RFC
 * 8599, Linphone's two-token form, and the legacy pn-type/pn-tok/app-id
 * form), and strips them before a Contact goes upstream. Everything here
 * works on plain strings; no SIP stack is involved. Every value is capped at
 * PN_MAX_PARAM_LEN and validated against the character set its provider
 * accepts, so what comes out is safe to put in an HTTP header or URL path.
 */
#include "sipwake/pn.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The push parameters pn_parse() reads; other pn-* ones are only stripped. */
enum pn_key {
	K_PROVIDER,
	K_PRID,
	K_PARAM,
	K_TIMEOUT,
	K_TYPE,
	K_TOK,
	K_APPID,
	K_P256DH,
	K_AUTH,
	K_COUNT,
};

static const char *const key_names[K_COUNT] = {
	[K_PROVIDER] = "pn-provider",
	[K_PRID] = "pn-prid",
	[K_PARAM] = "pn-param",
	[K_TIMEOUT] = "pn-timeout",
	[K_TYPE] = "pn-type",
	[K_TOK] = "pn-tok",
	[K_APPID] = "app-id",
	[K_P256DH] = "pn-p256dh",
	[K_AUTH] = "pn-auth",
};

/* Longest parameter name we decode; anything longer is not one of ours. */
#define NAME_MAX_LEN 64
/* Raw (escaped) bytes of one value we look at before giving up. */
#define RAW_MAX_LEN (3 * PN_MAX_PARAM_LEN)
/* APNs device tokens are 32 bytes today; allow growth, refuse garbage. */
#define APNS_TOKEN_MIN_HEX 64
#define APNS_TOKEN_MAX_HEX 200

struct pn_values {
	char *v[K_COUNT]; /* unescaped values, NULL when absent */
};

static const char *key_name(enum pn_key k)
{
	return key_names[k];
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copy network input into buf for an error text: printable ASCII, cut short. */
static const char *printable(const char *s, char *buf, size_t buflen)
{
	size_t i = 0;

	for (; s[i] && i + 1 < buflen; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] && buflen > 4)
		memcpy(buf + buflen - 4, "...", 4);
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * %-unescape len bytes of s into dst (room for len + 1). Returns the decoded
 * length, or -1 on a malformed escape or an escaped NUL.
 */
static long unescape(const char *s, size_t len, char *dst)
{
	size_t i = 0, n = 0;

	while (i < len) {
		if (s[i] != '%') {
			dst[n++] = s[i++];
			continue;
		}
		if (i + 2 >= len)
			return -1;
		int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		dst[n++] = (char)(hi << 4 | lo);
		i += 3;
	}
	dst[n] = '\0';
	return (long)n;
}

/*
 * Length of the next parameter in s (up to an unquoted ';' or the end). A
 * double-quoted part (+sip.instance="<urn:...>") may contain ';'; a
 * backslash inside quotes escapes the next character.
 */
static size_t segment_len(const char *s)
{
	bool quoted = false;
	size_t i = 0;

	for (; s[i]; i++) {
		if (quoted && s[i] == '\\' && s[i + 1]) {
			i++;
			continue;
		}
		if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == ';' && !quoted)
			break;
	}
	return i;
}

/* Length of the name part of a segment (up to '=' or its end). */
static size_t name_len(const char *seg, size_t seglen)
{
	const char *eq = memchr(seg, '=', seglen);

	return eq ? (size_t)(eq - seg) : seglen;
}

/*
 * Decode a parameter name into buf (NAME_MAX_LEN + 1 bytes). Returns false
 * when it cannot be one of ours (too long or badly escaped).
 */
static bool decode_name(const char *seg, size_t len, char *buf)
{
	if (len > NAME_MAX_LEN)
		return false;
	return unescape(seg, len, buf) >= 0;
}

bool pn_is_push_param(const char *name, size_t len)
{
	if (!name)
		return false;
	if (len >= 3 && strncasecmp(name, "pn-", 3) == 0)
		return true;
	return len == 6 && strncasecmp(name, "app-id", 6) == 0;
}

static int find_key(const char *name)
{
	for (int i = 0; i < K_COUNT; i++)
		if (strcasecmp(name, key_names[i]) == 0)
			return i;
	return -1;
}

static void values_cleanup(struct pn_values *pv)
{
	for (int i = 0; i < K_COUNT; i++) {
		free(pv->v[i]);
		pv->v[i] = NULL;
	}
}

/* Pick the push parameters out of the string; fills pv. */
static enum pn_parse_status collect(const char *params, struct pn_values *pv, char *err,
				    size_t errlen)
{
	const char *p = params;

	while (*p) {
		size_t seglen = segment_len(p), nlen = name_len(p, seglen);
		char name[NAME_MAX_LEN + 1];
		const char *raw;
		size_t rawlen;
		int k;

		if (seglen == 0 || !decode_name(p, nlen, name) || (k = find_key(name)) < 0)
			goto next;
		if (pv->v[k]) {
			set_err(err, errlen, "%s: duplicate parameter", key_name(k));
			return PN_PARSE_BAD;
		}
		raw = p + nlen + 1;
		rawlen = nlen < seglen ? seglen - nlen - 1 : 0;
		if (rawlen == 0) {
			set_err(err, errlen, "%s: empty value", key_name(k));
			return PN_PARSE_BAD;
		}
		if (rawlen > RAW_MAX_LEN) {
			set_err(err, errlen, "%s: too long (%zu bytes)", key_name(k), rawlen);
			return PN_PARSE_BAD;
		}
		pv->v[k] = malloc(rawlen + 1);
		if (!pv->v[k]) {
			set_err(err, errlen, "%s: out of memory", key_name(k));
			return PN_PARSE_BAD;
		}
		long n = unescape(raw, rawlen, pv->v[k]);
		if (n < 0) {
			set_err(err, errlen, "%s: bad %%-escape", key_name(k));
			return PN_PARSE_BAD;
		}
		if (n == 0) {
			set_err(err, errlen, "%s: empty value", key_name(k));
			return PN_PARSE_BAD;
		}
		if (n > PN_MAX_PARAM_LEN) {
			set_err(err, errlen, "%s: too long (%ld bytes)", key_name(k), n);
			return PN_PARSE_BAD;
		}
	next:
		p += seglen;
		if (*p == ';')
			p++;
	}
	return PN_PARSE_OK;
}

static bool all_chars(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (extra && strchr(extra, c))))
			return false;
	}
	return true;
}

/* APNs device token: hex, even length, within bounds. */
static bool apns_token_ok(const char *tok, const char *pname, char *err, size_t errlen)
{
	size_t len = strlen(tok);

	for (size_t i = 0; i < len; i++) {
		if (hexval(tok[i]) < 0) {
			set_err(err, errlen, "%s: APNs token is not hex", pname);
			return false;
		}
	}
	if (len % 2 != 0) {
		set_err(err, errlen, "%s: APNs token is not hex (odd length %zu)", pname, len);
		return false;
	}
	if (len < APNS_TOKEN_MIN_HEX || len > APNS_TOKEN_MAX_HEX) {
		set_err(err, errlen, "%s: APNs token is not hex (length %zu, expected %d..%d)",
			pname, len, APNS_TOKEN_MIN_HEX, APNS_TOKEN_MAX_HEX);
		return false;
	}
	return true;
}

/* A bundle id / APNs topic: goes into the apns-topic header. */
static bool topic_ok(const char *s)
{
	return all_chars(s, ".-_") && s[0] != '.' && s[strlen(s) - 1] != '.';
}

/* The service names Linphone appends to pn-param and tags tokens with. */
enum pn_service {
	SVC_REMOTE = 1,
	SVC_VOIP = 2,
};

/* Parse "remote", "voip", "remote&voip", "voip&remote". Returns 0 if not that. */
static int parse_services(const char *s)
{
	int set = 0;

	while (*s) {
		size_t n = strcspn(s, "&");
		int bit = 0;

		if (n == 6 && strncasecmp(s, "remote", 6) == 0)
			bit = SVC_REMOTE;
		else if (n == 4 && strncasecmp(s, "voip", 4) == 0)
			bit = SVC_VOIP;
		if (!bit || (set & bit))
			return 0;
		set |= bit;
		s += n;
		if (*s == '&') {
			s++;
			if (!*s)
				return 0;
		}
	}
	return set;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/*
 * Split pn-prid into the remote and voip tokens. A plain token (no ':' or
 * '&') is given the role the pn-param services name; Linphone's tagged form
 * "T1:remote&T2:voip" says it per token.
 */
static enum pn_parse_status split_prid(const char *prid, int services, struct pn_identity *out,
				       char *err, size_t errlen)
{
	const char *p = prid;

	if (!strpbrk(prid, ":&")) {
		if (services == (SVC_REMOTE | SVC_VOIP)) {
			set_err(err, errlen,
				"pn-prid: one untagged token but pn-param names remote&voip");
			return PN_PARSE_BAD;
		}
		char **slot = services == SVC_VOIP ? &out->voip_token : &out->token;
		*slot = strdup(prid);
		if (!*slot)
			goto nomem;
		return PN_PARSE_OK;
	}
	while (*p) {
		size_t n = strcspn(p, "&");
		const char *colon = memchr(p, ':', n);
		char tag[8];
		char **slot;

		if (!colon || colon == p || (size_t)(p + n - colon - 1) >= sizeof(tag)) {
			set_err(err, errlen, "pn-prid: expected TOKEN:remote&TOKEN:voip");
			return PN_PARSE_BAD;
		}
		memcpy(tag, colon + 1, (size_t)(p + n - colon - 1));
		tag[p + n - colon - 1] = '\0';
		int svc = parse_services(tag);
		if (svc != SVC_REMOTE && svc != SVC_VOIP) {
			set_err(err, errlen, "pn-prid: expected TOKEN:remote&TOKEN:voip");
			return PN_PARSE_BAD;
		}
		slot = svc == SVC_VOIP ? &out->voip_token : &out->token;
		if (*slot) {
			set_err(err, errlen, "pn-prid: two tokens tagged :%s", tag);
			return PN_PARSE_BAD;
		}
		*slot = dup_n(p, (size_t)(colon - p));
		if (!*slot)
			goto nomem;
		p += n;
		if (*p == '&' && !*++p) {
			set_err(err, errlen, "pn-prid: expected TOKEN:remote&TOKEN:voip");
			return PN_PARSE_BAD;
		}
	}
	return PN_PARSE_OK;
nomem:
	set_err(err, errlen, "pn-prid: out of memory");
	return PN_PARSE_BAD;
}

/* RFC 8599 / Linphone form for APNs. */
static enum pn_parse_status parse_apns(struct pn_values *pv, struct pn_identity *out, char *err,
				       size_t errlen)
{
	const char *param = pv->v[K_PARAM], *dot, *last;
	int services = SVC_REMOTE;
	size_t bundle_len;
	enum pn_parse_status st;

	if (!param) {
		set_err(err, errlen, "pn-param: missing (APNs needs TEAMID.topic)");
		return PN_PARSE_BAD;
	}
	dot = strchr(param, '.');
	if (!dot || dot == param || !all_chars(dot + 1, ".-_&")) {
		set_err(err, errlen, "pn-param: expected TEAMID.topic");
		return PN_PARSE_BAD;
	}
	out->team_id = dup_n(param, (size_t)(dot - param));
	if (!out->team_id)
		goto nomem;
	if (!all_chars(out->team_id, NULL)) {
		set_err(err, errlen, "pn-param: team id is not alphanumeric");
		return PN_PARSE_BAD;
	}
	/* A last component naming services (".voip", ".remote&voip") is not in the bundle id. */
	bundle_len = strlen(dot + 1);
	last = strrchr(dot + 1, '.');
	if (last) {
		int svc = parse_services(last + 1);
		if (svc) {
			services = svc;
			bundle_len = (size_t)(last - dot - 1);
		}
	}
	out->topic = dup_n(dot + 1, bundle_len);
	if (!out->topic)
		goto nomem;
	if (!topic_ok(out->topic)) {
		set_err(err, errlen, "pn-param: bad topic");
		return PN_PARSE_BAD;
	}
	st = split_prid(pv->v[K_PRID], services, out, err, errlen);
	if (st != PN_PARSE_OK)
		return st;
	if (out->token && !apns_token_ok(out->token, "pn-prid", err, errlen))
		return PN_PARSE_BAD;
	if (out->voip_token && !apns_token_ok(out->voip_token, "pn-prid", err, errlen))
		return PN_PARSE_BAD;
	return PN_PARSE_OK;
nomem:
	set_err(err, errlen, "pn-param: out of memory");
	return PN_PARSE_BAD;
}

/* FCM registration token and optional project / sender id. */
static enum pn_parse_status parse_fcm(struct pn_values *pv, enum pn_key tok_key,
				      enum pn_key param_key, struct pn_identity *out, char *err,
				      size_t errlen)
{
	const char *tok = pv->v[tok_key], *param = pv->v[param_key];
	const char *tokname = key_name(tok_key), *paramname = key_name(param_key);

	if (!all_chars(tok, "_:.-")) {
		set_err(err, errlen, "%s: FCM token has characters outside [A-Za-z0-9_:.-]",
			tokname);
		return PN_PARSE_BAD;
	}
	if (param && !all_chars(param, "_:.-")) {
		set_err(err, errlen, "%s: bad project or application id", paramname);
		return PN_PARSE_BAD;
	}
	out->token = strdup(tok);
	if (!out->token || (param && !(out->topic = strdup(param)))) {
		set_err(err, errlen, "%s: out of memory", tokname);
		return PN_PARSE_BAD;
	}
	return PN_PARSE_OK;
}

/* Strip one trailing ".word" from s (length *len) if it matches, case-insensitively. */
static bool strip_suffix(const char *s, size_t *len, const char *word)
{
	size_t wl = strlen(word);

	if (*len <= wl + 1 || s[*len - wl - 1] != '.' ||
	    strncasecmp(s + *len - wl, word, wl) != 0)
		return false;
	*len -= wl + 1;
	return true;
}

/* Legacy pn-type=apple: app-id = BUNDLE[.voip][.dev|.prod], in either order. */
static enum pn_parse_status parse_legacy_apple(struct pn_values *pv, struct pn_identity *out,
					       char *err, size_t errlen)
{
	const char *appid = pv->v[K_APPID];
	bool voip = false, env = false;
	size_t len;

	if (!appid) {
		set_err(err, errlen, "app-id: missing (required for pn-type=apple)");
		return PN_PARSE_BAD;
	}
	len = strlen(appid);
	for (int i = 0; i < 2; i++) {
		if (!voip && strip_suffix(appid, &len, "voip")) {
			voip = true;
		} else if (!env && strip_suffix(appid, &len, "dev")) {
			env = true;
			out->sandbox = true;
		} else if (!env && strip_suffix(appid, &len, "prod")) {
			env = true;
		}
	}
	out->topic = dup_n(appid, len);
	if (!out->topic)
		goto nomem;
	if (!topic_ok(out->topic)) {
		set_err(err, errlen, "app-id: bad bundle id");
		return PN_PARSE_BAD;
	}
	if (!apns_token_ok(pv->v[K_TOK], "pn-tok", err, errlen))
		return PN_PARSE_BAD;
	if (voip)
		out->voip_token = strdup(pv->v[K_TOK]);
	else
		out->token = strdup(pv->v[K_TOK]);
	if (!out->voip_token && !out->token)
		goto nomem;
	return PN_PARSE_OK;
nomem:
	set_err(err, errlen, "app-id: out of memory");
	return PN_PARSE_BAD;
}

/* base64url (RFC 4648 5, padding optional) of exactly n bytes. */
static bool b64url_of(const char *s, size_t n)
{
	size_t len = strlen(s), chars = (4 * n + 2) / 3;

	while (len > chars && s[len - 1] == '=')
		len--;
	return len == chars && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789-_") == len;
}

/*
 * Web Push: pn-prid is the subscription's endpoint (an https URL, RFC 8030),
 * pn-p256dh and pn-auth its keys (RFC 8291), both or neither: without them
 * only pushes without content can be sent.
 */
static enum pn_parse_status parse_webpush(struct pn_values *pv, struct pn_identity *out,
					  char *err, size_t errlen)
{
	const char *url = pv->v[K_PRID], *host = url + 8, *p256 = pv->v[K_P256DH];
	const char *auth = pv->v[K_AUTH];
	size_t hl;

	if (strncasecmp(url, "https://", 8) != 0) {
		set_err(err, errlen, "pn-prid: a Web Push endpoint must be an https URL");
		return PN_PARSE_BAD;
	}
	hl = strcspn(host, "/?#");
	if (hl == 0 || memchr(host, '@', hl) || !all_chars(url, ":/?#[]@!$&'()*+,;=%~._-")) {
		set_err(err, errlen, "pn-prid: not a valid https endpoint URL");
		return PN_PARSE_BAD;
	}
	if (strlen(url) > PN_WEBPUSH_ENDPOINT_MAX) {
		set_err(err, errlen, "pn-prid: endpoint longer than %d bytes", PN_WEBPUSH_ENDPOINT_MAX);
		return PN_PARSE_BAD;
	}
	if (pv->v[K_PARAM] && !all_chars(pv->v[K_PARAM], "_:.-")) {
		set_err(err, errlen, "pn-param: characters outside [A-Za-z0-9_:.-]");
		return PN_PARSE_BAD;
	}
	if (!p256 != !auth) {
		set_err(err, errlen, "%s: missing (%s given)", p256 ? "pn-auth" : "pn-p256dh",
			p256 ? "pn-p256dh" : "pn-auth");
		return PN_PARSE_BAD;
	}
	/* an uncompressed P-256 point (65 bytes, 0x04 first: base64url 'B') and 16 bytes */
	if (p256 && (!b64url_of(p256, 65) || p256[0] != 'B')) {
		set_err(err, errlen, "pn-p256dh: not a base64url uncompressed P-256 key");
		return PN_PARSE_BAD;
	}
	if (auth && !b64url_of(auth, 16)) {
		set_err(err, errlen, "pn-auth: not a base64url 16-byte auth secret");
		return PN_PARSE_BAD;
	}
	out->token = strdup(url);
	if (!out->token || (p256 && (!(out->wp_p256dh = strdup(p256)) ||
				     !(out->wp_auth = strdup(auth))))) {
		set_err(err, errlen, "pn-prid: out of memory");
		return PN_PARSE_BAD;
	}
	return PN_PARSE_OK;
}

/*
 * Any other pn-provider that is a token names an operator's own push
 * service (push.http; whether this server has it is the registrar's
 * call): pn-prid is its device token, pn-param passed on as given. Values
 * outside the characters a service token may use make it unsupported, not
 * malformed: it may be a provider of somebody else (a push server before
 * us, RFC 8599 9), so the registrar answers 555 or passes it on.
 */
static enum pn_parse_status parse_service(const char *prov, struct pn_values *pv,
					  struct pn_identity *out, char *err, size_t errlen)
{
	static const char tok_chars[] = "_:.-+/=~";
	const char *tok = pv->v[K_PRID], *param = pv->v[K_PARAM];

	if (!all_chars(tok, tok_chars)) {
		set_err(err, errlen, "pn-prid: characters outside [A-Za-z0-9%s]", tok_chars);
		return PN_PARSE_UNSUPPORTED;
	}
	if (param && !all_chars(param, tok_chars)) {
		set_err(err, errlen, "pn-param: characters outside [A-Za-z0-9%s]", tok_chars);
		return PN_PARSE_UNSUPPORTED;
	}
	out->token = strdup(tok);
	out->service = strdup(prov);
	if (!out->token || !out->service) {
		set_err(err, errlen, "pn-prid: out of memory");
		return PN_PARSE_BAD;
	}
	for (char *c = out->service; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return PN_PARSE_OK;
}

static enum pn_parse_status parse_rfc8599(struct pn_values *pv, struct pn_identity *out,
					  char *err, size_t errlen)
{
	const char *prov = pv->v[K_PROVIDER];
	char shown[40];

	if (strcasecmp(prov, "apns") == 0 || strcasecmp(prov, "apns.dev") == 0) {
		out->provider = PN_APNS;
		out->sandbox = strcasecmp(prov, "apns.dev") == 0;
	} else if (strcasecmp(prov, "fcm") == 0) {
		out->provider = PN_FCM;
	} else if (strcasecmp(prov, "webpush") == 0) {
		out->provider = PN_WEBPUSH;
	} else if (strlen(prov) <= PN_SERVICE_MAX && all_chars(prov, "._-")) {
		out->provider = PN_HTTP;
	} else {
		set_err(err, errlen, "pn-provider: unsupported provider '%s'",
			printable(prov, shown, sizeof(shown)));
		return PN_PARSE_UNSUPPORTED;
	}
	if (!pv->v[K_PRID]) {
		set_err(err, errlen, "pn-prid: missing (pn-provider=%s given)", prov);
		/* for a provider we may not have, that is its business (555 or passed on) */
		return out->provider == PN_HTTP ? PN_PARSE_UNSUPPORTED : PN_PARSE_BAD;
	}
	if (out->provider == PN_FCM)
		return parse_fcm(pv, K_PRID, K_PARAM, out, err, errlen);
	if (out->provider == PN_WEBPUSH)
		return parse_webpush(pv, out, err, errlen);
	if (out->provider == PN_HTTP)
		return parse_service(prov, pv, out, err, errlen);
	return parse_apns(pv, out, err, errlen);
}

static enum pn_parse_status parse_legacy(struct pn_values *pv, struct pn_identity *out,
					 char *err, size_t errlen)
{
	const char *type = pv->v[K_TYPE];
	char shown[40];

	if (strcasecmp(type, "apple") == 0) {
		out->provider = PN_APNS;
	} else if (strcasecmp(type, "firebase") == 0 || strcasecmp(type, "google") == 0 ||
		   strcasecmp(type, "android") == 0) {
		out->provider = PN_FCM;
	} else {
		set_err(err, errlen, "pn-type: unsupported type '%s'",
			printable(type, shown, sizeof(shown)));
		return PN_PARSE_UNSUPPORTED;
	}
	if (!pv->v[K_TOK]) {
		set_err(err, errlen, "pn-tok: missing (pn-type=%s given)", type);
		return PN_PARSE_BAD;
	}
	if (out->provider == PN_FCM)
		return parse_fcm(pv, K_TOK, K_APPID, out, err, errlen);
	return parse_legacy_apple(pv, out, err, errlen);
}

/* pn-timeout: seconds before the push, 0..3600. */
static bool parse_timeout(const char *s, int *out)
{
	long v = 0;

	if (!*s || strlen(s) > 4)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v > 3600)
		return false;
	*out = (int)v;
	return true;
}

/*
 * pn-provider wins over the legacy pn-type when a client sends both (some
 * Linphone versions did during the transition); the legacy parameters are
 * then ignored. app-id or pn-timeout alone do not make a push contact.
 */
enum pn_parse_status pn_parse(const char *uri_params, struct pn_identity *out, char *err,
			      size_t errlen)
{
	struct pn_values pv = {0};
	enum pn_parse_status rc;
	bool rfc;

	memset(out, 0, sizeof(*out));
	out->timeout = -1;
	set_err(err, errlen, "%s", "");
	if (!uri_params) {
		rc = PN_PARSE_NONE;
		goto out;
	}
	rc = collect(uri_params, &pv, err, errlen);
	if (rc != PN_PARSE_OK)
		goto out;
	rfc = pv.v[K_PROVIDER] != NULL;
	if (!rfc && !pv.v[K_TYPE]) {
		rc = PN_PARSE_NONE;
		if (pv.v[K_PRID] || pv.v[K_PARAM]) {
			set_err(err, errlen, "pn-provider: missing (%s given)",
				pv.v[K_PRID] ? "pn-prid" : "pn-param");
			rc = PN_PARSE_BAD;
		} else if (pv.v[K_TOK]) {
			set_err(err, errlen, "pn-type: missing (pn-tok given)");
			rc = PN_PARSE_BAD;
		}
		goto out;
	}
	if (pv.v[K_TIMEOUT] && !parse_timeout(pv.v[K_TIMEOUT], &out->timeout)) {
		set_err(err, errlen, "pn-timeout: not an integer in 0..3600");
		rc = PN_PARSE_BAD;
		goto out;
	}
	rc = rfc ? parse_rfc8599(&pv, out, err, errlen) : parse_legacy(&pv, out, err, errlen);
	if (rc != PN_PARSE_OK)
		goto out;
	/* The identity keeps the values as they were sent, for pn_identity_key(). */
	out->prid = pv.v[rfc ? K_PRID : K_TOK];
	out->param = pv.v[rfc ? K_PARAM : K_APPID];
	pv.v[rfc ? K_PRID : K_TOK] = NULL;
	pv.v[rfc ? K_PARAM : K_APPID] = NULL;
out:
	values_cleanup(&pv);
	if (rc != PN_PARSE_OK) {
		pn_identity_cleanup(out);
		out->timeout = -1;
	}
	return rc;
}

bool pn_endpoint_host_allowed(const char *url, char *const *patterns)
{
	const char *host, *end;
	size_t hl;

	if (!patterns || !patterns[0])
		return true;
	if (!url || strncasecmp(url, "https://", 8) != 0)
		return false;
	host = url + 8;
	end = host + strcspn(host, "/?#");
	if (*host == '[') { /* an IPv6 literal: compared with its brackets */
		const char *rb = memchr(host, ']', (size_t)(end - host));
		hl = rb ? (size_t)(rb - host + 1) : (size_t)(end - host);
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		hl = (size_t)((colon ? colon : end) - host);
	}
	for (char *const *p = patterns; *p; p++) {
		const char *pat = *p;
		size_t pl = strlen(pat);

		if (pl > 2 && pat[0] == '*' && pat[1] == '.') {
			/* below the domain: "a.example.net" for "*.example.net", not "example.net" */
			if (hl > pl - 1 && !strncasecmp(host + hl - (pl - 1), pat + 1, pl - 1))
				return true;
		} else if (pl == hl && !strncasecmp(host, pat, hl)) {
			return true;
		}
	}
	return false;
}

/* The string fields of an identity, in one list for cleanup, copy and pack. */
#define PN_STR_FIELDS 9

static void str_fields(struct pn_identity *id, char **f[PN_STR_FIELDS])
{
	f[0] = &id->token;
	f[1] = &id->voip_token;
	f[2] = &id->team_id;
	f[3] = &id->topic;
	f[4] = &id->prid;
	f[5] = &id->param;
	f[6] = &id->wp_p256dh;
	f[7] = &id->wp_auth;
	f[8] = &id->service;
}

void pn_identity_cleanup(struct pn_identity *id)
{
	char **f[PN_STR_FIELDS];

	if (!id)
		return;
	str_fields(id, f);
	for (int i = 0; i < PN_STR_FIELDS; i++)
		free(*f[i]);
	memset(id, 0, sizeof(*id));
}

int pn_identity_copy(struct pn_identity *dst, const struct pn_identity *src)
{
	char **f[PN_STR_FIELDS];

	*dst = *src;
	str_fields(dst, f);
	for (int i = 0; i < PN_STR_FIELDS; i++)
		if (*f[i] && !(*f[i] = strdup(*f[i]))) {
			while (++i < PN_STR_FIELDS)
				*f[i] = NULL; /* not copied yet: not ours to free */
			pn_identity_cleanup(dst);
			return -1;
		}
	return 0;
}

size_t pn_identity_pack(struct pn_identity *dst, const struct pn_identity *src, char *buf)
{
	struct pn_identity scratch;
	char **sf[PN_STR_FIELDS], **df[PN_STR_FIELDS];
	size_t used = 0;

	if (!dst)
		dst = &scratch;
	*dst = *src;
	str_fields((struct pn_identity *)src, sf);
	str_fields(dst, df);
	for (int i = 0; i < PN_STR_FIELDS; i++) {
		const char *v = *sf[i];
		int j;
		size_t n;

		if (!v)
			continue;
		for (j = 0; j < i && !(*sf[j] && strcmp(*sf[j], v) == 0); j++)
			;
		if (j < i) { /* the same text as an earlier field (an FCM token is its prid) */
			*df[i] = *df[j];
			continue;
		}
		n = strlen(v) + 1;
		if (buf)
			memcpy(buf + used, v, n);
		*df[i] = buf ? buf + used : NULL;
		used += n;
	}
	return used;
}

const char *pn_provider_name(const struct pn_identity *id)
{
	switch (id->provider) {
	case PN_APNS:
		return id->sandbox ? "apns.dev" : "apns";
	case PN_FCM:
		return "fcm";
	case PN_WEBPUSH:
		return "webpush";
	case PN_HTTP:
		return id->service ? id->service : "none";
	default:
		return "none";
	}
}

/*
 * Key = provider name, pn-prid, pn-param joined by 0x1f (ASCII unit
 * separator); an absent pn-param is an empty field (pn_parse never accepts
 * an empty one, so the two cannot be confused). pn_parse only lets through
 * values without control characters, so the separator is unambiguous; an
 * identity built elsewhere that contains one gets NULL. The key is only
 * compared, never parsed. The legacy form maps onto the same fields
 * (pn-tok, app-id), so "apns" + token means the same device either way only
 * if the param also matches, which is what RFC 8599 §5.6.2 asks.
 */
bool pn_identity_keyable(const struct pn_identity *id)
{
	return id && id->provider != PN_NONE && id->prid && !strchr(id->prid, '\x1f') &&
	       !(id->param && strchr(id->param, '\x1f'));
}

char *pn_identity_key(const struct pn_identity *id)
{
	const char *param;
	char *key = NULL;

	if (!pn_identity_keyable(id))
		return NULL;
	param = id->param ? id->param : "";
	if (asprintf(&key, "%s\x1f%s\x1f%s", pn_provider_name(id), id->prid, param) < 0)
		return NULL;
	return key;
}

bool pn_identity_same(const struct pn_identity *a, const struct pn_identity *b)
{
	/* the key's fields one by one (pn_identity_key refuses 0x1f inside them) */
	return a->provider != PN_NONE && b->provider != PN_NONE && a->prid && b->prid &&
	       strcmp(a->prid, b->prid) == 0 &&
	       strcmp(a->param ? a->param : "", b->param ? b->param : "") == 0 &&
	       strcmp(pn_provider_name(a), pn_provider_name(b)) == 0;
}

char *pn_strip_params(const char *uri_params)
{
	const char *p = uri_params ? uri_params : "";
	size_t cap = strlen(p) + 1, n = 0;
	char *out = malloc(cap), *name = malloc(cap);

	if (!out || !name) {
		free(out);
		out = NULL;
		goto out;
	}
	while (*p) {
		size_t seglen = segment_len(p), nlen = name_len(p, seglen);
		long dlen;

		/*
		 * Names are compared %-decoded, as pn_parse() sees them, so that
		 * "pn%2Dprid" cannot sneak a token past to upstream. A name that
		 * does not decode is kept: it is no push parameter of ours.
		 */
		dlen = unescape(p, nlen, name);
		if (seglen > 0 && !(dlen >= 0 && pn_is_push_param(name, (size_t)dlen))) {
			if (n > 0)
				out[n++] = ';';
			memcpy(out + n, p, seglen);
			n += seglen;
		}
		p += seglen;
		if (*p == ';')
			p++;
	}
	out[n] = '\0';
out:
	free(name);
	return out;
}
