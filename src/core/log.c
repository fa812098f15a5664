/* SPDX-License-Identifier: MIT */
/*
 * Logging for the whole daemon: level filter, stderr or a file that SIGHUP
 * reopens, optional timestamps (journald adds its own), and the helper that
 * shortens push tokens so that no secret is ever written whole.
 */
#include "sipwake/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/time.h>

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

static int cur_level = SW_LOG_INFO;
static int with_timestamps;
static FILE *log_fp;     /* NULL = stderr */
static char *log_path;

int log_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return SW_LOG_WARN;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > SW_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void log_set_level(int level)
{
	if (level >= SW_LOG_ERROR && level <= SW_LOG_DEBUG)
		cur_level = level;
}

int log_get_level(void)
{
	return cur_level;
}

int log_enabled(int level)
{
	return level <= cur_level;
}

void log_set_timestamps(int on)
{
	with_timestamps = on;
}

int log_set_file(const char *path)
{
	FILE *fp = NULL;

	if (path) {
		fp = fopen(path, "a");
		if (!fp)
			return -1;
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	if (log_fp)
		fclose(log_fp);
	log_fp = fp;
	free(log_path);
	log_path = path ? strdup(path) : NULL;
	return 0;
}

void log_reopen(void)
{
	if (log_path) {
		char *p = strdup(log_path);
		if (p && log_set_file(p) < 0)
			fprintf(stderr, "sipwaked: cannot reopen log file %s\n", p);
		free(p);
	}
}

void log_msg(int level, const char *fmt, ...)
{
	FILE *out = log_fp ? log_fp : stderr;
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (level > cur_level)
		return;
	if (with_timestamps) {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld ", (long)(tv.tv_usec / 1000));
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", level_names[level]);
	va_start(ap, fmt);
	if (n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One write per line so that concurrent writers never interleave. */
	fprintf(out, "%s\n", line);
	fflush(out);
}

const char *log_token(const char *token, char buf[LOG_TOKEN_BUFSZ])
{
	size_t len;

	if (!token) {
		snprintf(buf, LOG_TOKEN_BUFSZ, "-");
		return buf;
	}
	len = strlen(token);
	if (len < 12) {
		snprintf(buf, LOG_TOKEN_BUFSZ, "****");
		return buf;
	}
	snprintf(buf, LOG_TOKEN_BUFSZ, "%.4s...%.4s", token, token + len - 4);
	return buf;
}

/* Shorten one token of len bytes at p in place; returns the new length. */
static size_t mask_one(char *p, size_t len)
{
	char tok[LOG_TOKEN_BUFSZ], *copy;
	size_t n;

	if (len == 0)
		return 0;
	copy = strndup(p, len);
	if (!copy) {
		memset(p, '*', len);
		return len;
	}
	log_token(copy, tok);
	free(copy);
	n = strlen(tok);
	if (n > len)
		n = len;
	memcpy(p, tok, n);
	return n;
}

void log_mask_tokens(char *text)
{
	static const char *const names[] = {"pn-prid=", "pn-tok="};

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		size_t nl = strlen(names[k]);
		for (char *p = strcasestr(text, names[k]); p; p = strcasestr(p, names[k])) {
			char *v = p + nl;
			size_t vlen = strcspn(v, ";>, \t\r\n\"?");
			char *w = v, *end = v + vlen;

			/* "T1:remote&T2:voip": each token up to its ':' service, each part up to '&' */
			while (v < end) {
				size_t part = strcspn(v, "&");
				size_t tlen, kept;
				if (v + part > end)
					part = (size_t)(end - v);
				tlen = strcspn(v, ":&");
				if (tlen > part)
					tlen = part;
				kept = mask_one(v, tlen);
				memmove(w, v, kept);
				memmove(w + kept, v + tlen, part - tlen);
				w += kept + (part - tlen);
				v += part;
				if (v < end && *v == '&')
					*w++ = *v++;
			}
			memmove(w, end, strlen(end) + 1);
			p = w;
		}
	}
}
