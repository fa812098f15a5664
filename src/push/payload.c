/* SPDX-License-Identifier: MIT */
/*
 * Fitting a JSON push payload into the provider's size limit by shortening
 * its text on UTF-8 character boundaries (core's utf8.h).
 */
#include "push_int.h"
#include "sipwake/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Build with the first keep bytes of text (cut on a character, plus "…" when cut). */
static char *fit_try(push_build_fn *build, void *arg, const char *text, size_t len, size_t keep,
		     size_t *out_len)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
	char *cur = NULL, *json = NULL;
	json_t *obj;

	if (text) {
		size_t k = utf8_prefix(text, len, keep);
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
