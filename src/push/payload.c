/* SPDX-License-Identifier: MIT */
/*
 * What push payloads have in common: the request's fields cut to size, the
 * provider-neutral data object, the time to live per kind, and fitting a
 * JSON payload into the provider's size limit by shortening its text on
 * UTF-8 character boundaries (core's utf8.h).
 */
#include "push_int.h"
#include "sipwake/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *clip(const char *s, size_t max)
{
	return s ? utf8_clip(s, max, NULL) : NULL;
}

void push_fields_init(struct push_fields *f, const struct push_req *r, size_t text_max)
{
	f->kind = r->kind;
	f->call_id = clip(r->pl.call_id, PUSH_FIELD_MAX);
	f->from_uri = clip(r->pl.from_uri, PUSH_FIELD_MAX);
	f->from_name = clip(r->pl.from_name, PUSH_FIELD_MAX);
	f->to_uri = clip(r->pl.to_uri, PUSH_FIELD_MAX);
	f->reason = clip(r->pl.reason, PUSH_FIELD_MAX);
	f->text = r->kind == PUSH_MESSAGE ? clip(r->pl.text, text_max) : NULL;
	f->vm_waiting = r->pl.vm_waiting;
	f->vm_new = r->pl.vm_new;
	f->vm_old = r->pl.vm_old;
}

void push_fields_cleanup(struct push_fields *f)
{
	free(f->call_id);
	free(f->from_uri);
	free(f->from_name);
	free(f->to_uri);
	free(f->reason);
	free(f->text);
	memset(f, 0, sizeof(*f));
}

static void put_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

void push_fields_put(const struct push_fields *f, json_t *o, const char *text)
{
	put_str(o, "type", push_kind_name(f->kind));
	put_str(o, "call-id", f->call_id);
	put_str(o, "from-uri", f->from_uri);
	put_str(o, "from-name", f->from_name);
	put_str(o, "to-uri", f->to_uri);
	put_str(o, "text", text);
	if (f->kind == PUSH_CANCEL)
		put_str(o, "reason", f->reason ? f->reason : "missed");
	if (f->kind == PUSH_VOICEMAIL) {
		char n[16];

		put_str(o, "messages-waiting", f->vm_waiting ? "yes" : "no");
		snprintf(n, sizeof(n), "%d", f->vm_new);
		put_str(o, "voice-new", n);
		snprintf(n, sizeof(n), "%d", f->vm_old);
		put_str(o, "voice-old", n);
	}
}

int push_kind_ttl(enum push_kind kind, int call_timeout, int wakeup_ttl)
{
	switch (kind) {
	case PUSH_CALL:
		return call_timeout;
	case PUSH_MESSAGE:
	case PUSH_VOICEMAIL:
		return PUSH_MESSAGE_TTL;
	case PUSH_WAKEUP:
		return wakeup_ttl;
	default:
		return PUSH_CANCEL_TTL;
	}
}

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
