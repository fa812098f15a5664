/* SPDX-License-Identifier: MIT */
/*
 * Text of the push payloads: UTF-8 validation and cutting (a message body
 * is cut on a character boundary, never inside one), and fitting a JSON
 * payload into the provider's size limit by shortening its text, plus the
 * monotonic clock the push layer measures deadlines and latency with.
 */
#include "push_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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
