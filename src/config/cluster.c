/* SPDX-License-Identifier: MIT */
/*
 * The cluster keys' syntax: where cluster.redis points, and this node's
 * name. Used by the config checks and by the Redis store when it connects.
 */
#include "sipwake/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDIS_DEFAULT_PORT 6379

/* Copy n bytes of s into a buffer of size len: -1 when they do not fit. */
static int copy(char *dst, size_t len, const char *s, size_t n)
{
	if (n >= len)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* A whole decimal number in [min, max] from s..end. */
static int number(const char *s, const char *end, int min, int max, int *out)
{
	long v = 0;

	if (s == end || end - s > 9)
		return -1;
	for (const char *p = s; p < end; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -1;
}

static int parse_unix(const char *s, struct config_redis *out, const char **why)
{
	const char *q = strchr(s, '?');
	size_t n = q ? (size_t)(q - s) : strlen(s);

	if (s[0] != '/')
		return fail(why, "a unix: socket path must be absolute");
	if (copy(out->path, sizeof(out->path), s, n) < 0)
		return fail(why, "the unix: socket path is too long");
	if (q && (strncmp(q, "?db=", 4) ||
		  number(q + 4, q + strlen(q), 0, 1000000, &out->db) < 0))
		return fail(why, "after the unix: path only ?db=N may follow");
	return 0;
}

static int parse_userinfo(const char *s, const char *at, struct config_redis *out,
			  const char **why)
{
	const char *colon = memchr(s, ':', (size_t)(at - s));

	if (!colon)
		return fail(why, "credentials are USER:PASSWORD@ or :PASSWORD@");
	if (copy(out->user, sizeof(out->user), s, (size_t)(colon - s)) < 0 ||
	    copy(out->password, sizeof(out->password), colon + 1, (size_t)(at - colon - 1)) < 0)
		return fail(why, "the user name or password is too long");
	if (!out->password[0])
		return fail(why, "the password is empty");
	return 0;
}

static int parse_tcp(const char *s, struct config_redis *out, const char **why)
{
	const char *end = s + strcspn(s, "/");
	const char *at = memchr(s, '@', (size_t)(end - s));
	const char *host = at ? at + 1 : s, *host_end, *port = NULL;

	if (at && parse_userinfo(s, at, out, why) < 0)
		return -1;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end)
			return fail(why, "an IPv6 address in [ ] lacks its ]");
		if (copy(out->host, sizeof(out->host), host + 1, (size_t)(host_end - host - 1)) < 0)
			return fail(why, "the host is too long");
		host_end++;
		if (host_end < end && *host_end != ':')
			return fail(why, "only :PORT may follow the [IPV6] host");
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (!host_end)
			host_end = end;
		if (copy(out->host, sizeof(out->host), host, (size_t)(host_end - host)) < 0)
			return fail(why, "the host is too long");
	}
	if (!out->host[0])
		return fail(why, "the host is missing");
	for (const char *p = out->host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p))
			return fail(why, "the host has a character a host name or address cannot have");
	if (host_end < end)
		port = host_end + 1;
	if (port && number(port, end, 1, 65535, &out->port) < 0)
		return fail(why, "the port is not a number from 1 to 65535");
	if (*end == '/' && end[1] && number(end + 1, end + strlen(end), 0, 1000000, &out->db) < 0)
		return fail(why, "the database is not a number");
	return 0;
}

int config_parse_redis(const char *s, struct config_redis *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->port = REDIS_DEFAULT_PORT;
	if (!s || !s[0])
		return fail(why, "is empty");
	if (!strncmp(s, "unix:", 5))
		return parse_unix(s + 5, out, why);
	if (!strncmp(s, "redis://", 8))
		return parse_tcp(s + 8, out, why);
	return fail(why, "is neither redis://HOST[:PORT][/DB] nor unix:/PATH");
}

/* A node name: a token of letters, digits, '.', '-' and '_', 1 to 63 long. */
static bool node_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i]))
			return false;
	return true;
}

bool config_node_name_ok(const char *s)
{
	return s && node_name_ok(s);
}

int config_node_name(const struct sw_config *cfg, char *buf, size_t len)
{
	const char *name = cfg->cluster.node_name;
	char host[256];

	if (!name || !name[0]) {
		if (gethostname(host, sizeof(host)) < 0)
			return -1;
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0'; /* the short name */
		name = host;
	}
	if (!node_name_ok(name) || strlen(name) >= len)
		return -1;
	memcpy(buf, name, strlen(name) + 1);
	return 0;
}
