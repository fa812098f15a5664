/* SPDX-License-Identifier: MIT */
/*
 * The statistics registry behind include/sipwake/stats.h. Families are kept
 * sorted by name and their series sorted by label text, so that both
 * renderings (Prometheus text for the metrics endpoint, JSON for
 * sipwakectl) come out in a stable order. A hash map from "name{labels}"
 * to the series makes the lookup of a stats_counter() call O(1); callers
 * on hot paths keep the pointer anyway. The number of series is capped so
 * that label values taken from the network cannot grow memory without
 * bound.
 */
#include "sipwake/stats.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/strmap.h"

#define LABELS_MAX_LEN 512 /* rendered label text of one series */

struct stats_family {
	struct stats_family *next; /* sorted by name */
	char *name;
	char *help;
	enum stats_type type;
	struct stats_series *series; /* sorted by label text */
};

struct stats_series {
	struct stats_series *next;
	struct stats_family *fam;
	char *labels; /* rendered: a="x",b="y" (may be "") */
	int n_labels;
	char *lname[STATS_MAX_LABELS];
	char *lvalue[STATS_MAX_LABELS];
	uint64_t count; /* counter value; histogram observation count */
	double value;   /* gauge value; histogram sum */
	stats_gauge_fn *fn;
	void *fn_ctx;
	int n_bounds;
	double bounds[STATS_MAX_BUCKETS];
	uint64_t buckets[STATS_MAX_BUCKETS]; /* per bucket, not cumulative */
};

static struct stats_family *families;
static struct strmap *by_family;
static struct strmap *by_series;
static size_t n_series;

#define MAX_COLLECTORS 8

static struct {
	stats_collect_fn *fn;
	void *ctx;
} collectors[MAX_COLLECTORS];

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
					1,     2.5,  5,     10};

static bool valid_name(const char *s, bool colon_ok)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (colon_ok && c == ':')))
			return false;
	}
	return true;
}

static int ensure_maps(void)
{
	if (!by_family)
		by_family = strmap_new();
	if (!by_series)
		by_series = strmap_new();
	return by_family && by_series ? 0 : -1;
}

static struct stats_family *family_get(const char *name, enum stats_type type, const char *help)
{
	struct stats_family *f, **pp;

	if (!valid_name(name, true) || ensure_maps() < 0)
		return NULL;
	f = strmap_get(by_family, name);
	if (f)
		return f->type == type ? f : NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	f->type = type;
	if (!f->name || !f->help || strmap_put(by_family, name, f) < 0) {
		free(f->name);
		free(f->help);
		free(f);
		return NULL;
	}
	for (pp = &families; *pp && strcmp((*pp)->name, name) < 0; pp = &(*pp)->next)
		;
	f->next = *pp;
	*pp = f;
	return f;
}

int stats_family(const char *name, enum stats_type type, const char *help)
{
	struct stats_family *f = family_get(name, type, help);

	if (!f)
		return -1;
	if (!f->help[0] && help && help[0]) {
		char *h = strdup(help);
		if (h) {
			free(f->help);
			f->help = h;
		}
	}
	return 0;
}

/* Append value to buf as a Prometheus label value (\\, \" and \n escaped). */
static int put_label_value(char *buf, size_t *len, size_t cap, const char *v)
{
	for (; *v; v++) {
		const char *esc = NULL;
		char c[2] = {*v, 0};

		if (*v == '\\')
			esc = "\\\\";
		else if (*v == '"')
			esc = "\\\"";
		else if (*v == '\n')
			esc = "\\n";
		else
			esc = c;
		size_t l = strlen(esc);
		if (*len + l >= cap)
			return -1;
		memcpy(buf + *len, esc, l);
		*len += l;
	}
	buf[*len] = 0;
	return 0;
}

/* Collect the label pairs of a va_list into names/values; render them into buf. */
static int read_labels(va_list ap, const char **names, const char **values, int *n, char *buf,
		       size_t cap)
{
	size_t len = 0;
	const char *k;

	*n = 0;
	buf[0] = 0;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		int w;

		if (*n == STATS_MAX_LABELS || !valid_name(k, false) || !v)
			return -1;
		names[*n] = k;
		values[*n] = v;
		(*n)++;
		w = snprintf(buf + len, cap - len, "%s%s=\"", len ? "," : "", k);
		if (w < 0 || (size_t)w >= cap - len)
			return -1;
		len += (size_t)w;
		if (put_label_value(buf, &len, cap, v) < 0 || len + 2 >= cap)
			return -1;
		buf[len++] = '"';
		buf[len] = 0;
	}
	return 0;
}

static void series_free(struct stats_series *s)
{
	for (int i = 0; i < s->n_labels; i++) {
		free(s->lname[i]);
		free(s->lvalue[i]);
	}
	free(s->labels);
	free(s);
}

static struct stats_series *series_get(enum stats_type type, const char *name, va_list ap)
{
	const char *names[STATS_MAX_LABELS], *values[STATS_MAX_LABELS];
	char labels[LABELS_MAX_LEN], key[LABELS_MAX_LEN + 256];
	struct stats_family *f;
	struct stats_series *s, **pp;
	int n;

	if (read_labels(ap, names, values, &n, labels, sizeof(labels)) < 0)
		return NULL;
	if (snprintf(key, sizeof(key), "%s{%s}", name ? name : "", labels) >= (int)sizeof(key))
		return NULL;
	if (by_series && (s = strmap_get(by_series, key)) != NULL)
		return s->fam->type == type ? s : NULL;
	if (n_series >= STATS_MAX_SERIES)
		return NULL;
	f = family_get(name, type, NULL);
	if (!f)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fam = f;
	s->labels = strdup(labels);
	for (int i = 0; i < n; i++) {
		s->lname[i] = strdup(names[i]);
		s->lvalue[i] = strdup(values[i]);
		s->n_labels++;
		if (!s->lname[i] || !s->lvalue[i])
			goto fail;
	}
	if (!s->labels || strmap_put(by_series, key, s) < 0)
		goto fail;
	for (pp = &f->series; *pp && strcmp((*pp)->labels, labels) < 0; pp = &(*pp)->next)
		;
	s->next = *pp;
	*pp = s;
	n_series++;
	return s;
fail:
	series_free(s);
	return NULL;
}

struct stats_series *stats_counter(const char *name, ...)
{
	struct stats_series *s;
	va_list ap;

	va_start(ap, name);
	s = series_get(STATS_COUNTER, name, ap);
	va_end(ap);
	return s;
}

struct stats_series *stats_gauge(const char *name, ...)
{
	struct stats_series *s;
	va_list ap;

	va_start(ap, name);
	s = series_get(STATS_GAUGE, name, ap);
	va_end(ap);
	return s;
}

struct stats_series *stats_histogram(const char *name, const double *bounds, int n_bounds, ...)
{
	struct stats_series *s;
	va_list ap;

	if (!bounds || n_bounds <= 0) {
		bounds = default_bounds;
		n_bounds = (int)(sizeof(default_bounds) / sizeof(default_bounds[0]));
	}
	if (n_bounds > STATS_MAX_BUCKETS)
		return NULL;
	for (int i = 1; i < n_bounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	va_start(ap, n_bounds);
	s = series_get(STATS_HISTOGRAM, name, ap);
	va_end(ap);
	if (s && s->n_bounds == 0) {
		memcpy(s->bounds, bounds, sizeof(double) * (size_t)n_bounds);
		s->n_bounds = n_bounds;
	}
	return s;
}

int stats_gauge_hook(const char *name, stats_gauge_fn *fn, void *ctx, ...)
{
	struct stats_series *s;
	va_list ap;

	va_start(ap, ctx);
	s = series_get(STATS_GAUGE, name, ap);
	va_end(ap);
	if (!s)
		return -1;
	s->fn = fn;
	s->fn_ctx = ctx;
	return 0;
}

void stats_gauge_unhook(void *ctx)
{
	for (struct stats_family *f = families; f; f = f->next)
		for (struct stats_series *s = f->series; s; s = s->next)
			if (s->fn && s->fn_ctx == ctx) {
				s->fn = NULL;
				s->fn_ctx = NULL;
				s->value = 0;
			}
}

int stats_collector_add(stats_collect_fn *fn, void *ctx)
{
	for (int i = 0; i < MAX_COLLECTORS; i++)
		if (!collectors[i].fn) {
			collectors[i].fn = fn;
			collectors[i].ctx = ctx;
			return 0;
		}
	return -1;
}

void stats_collector_remove(void *ctx)
{
	for (int i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn && collectors[i].ctx == ctx)
			collectors[i].fn = NULL;
}

static void run_collectors(void)
{
	for (int i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn)
			collectors[i].fn(collectors[i].ctx);
}

void stats_counter_set(struct stats_series *s, uint64_t value)
{
	if (s && s->fam->type == STATS_COUNTER)
		s->count = value;
}

void stats_histogram_load(struct stats_series *s, const uint64_t *buckets, int n, uint64_t count,
			  double sum)
{
	if (!s || s->fam->type != STATS_HISTOGRAM || n > s->n_bounds)
		return;
	memset(s->buckets, 0, sizeof(s->buckets));
	for (int i = 0; i < n; i++)
		s->buckets[i] = buckets[i];
	s->count = count;
	s->value = sum;
}

void stats_inc(struct stats_series *s)
{
	if (s && s->fam->type == STATS_COUNTER)
		s->count++;
}

void stats_add(struct stats_series *s, uint64_t n)
{
	if (s && s->fam->type == STATS_COUNTER)
		s->count += n;
}

void stats_set(struct stats_series *s, double v)
{
	if (s && s->fam->type == STATS_GAUGE)
		s->value = v;
}

void stats_observe(struct stats_series *s, double v)
{
	int i;

	if (!s || s->fam->type != STATS_HISTOGRAM || isnan(v))
		return;
	for (i = 0; i < s->n_bounds && v > s->bounds[i]; i++)
		;
	if (i < s->n_bounds)
		s->buckets[i]++;
	s->count++;
	s->value += v;
}

static double gauge_now(const struct stats_series *s)
{
	return s->fn ? s->fn(s->fn_ctx) : s->value;
}

double stats_value(const struct stats_series *s)
{
	if (!s)
		return 0;
	switch (s->fam->type) {
	case STATS_COUNTER:
		return (double)s->count;
	case STATS_GAUGE:
		return gauge_now(s);
	case STATS_HISTOGRAM:
		return (double)s->count;
	}
	return 0;
}

/* A float in the exposition format: NaN, +Inf, -Inf or a plain number. */
static void put_double(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN", out);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else
		fprintf(out, "%.10g", v);
}

/* HELP text escapes only backslash and newline. */
static void put_help(FILE *out, const char *h)
{
	for (; *h; h++) {
		if (*h == '\\')
			fputs("\\\\", out);
		else if (*h == '\n')
			fputs("\\n", out);
		else
			fputc(*h, out);
	}
}

static const char *type_name(enum stats_type t)
{
	switch (t) {
	case STATS_COUNTER:
		return "counter";
	case STATS_GAUGE:
		return "gauge";
	case STATS_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

static void write_histogram(FILE *out, const struct stats_family *f, const struct stats_series *s)
{
	const char *sep = s->labels[0] ? "," : "";
	uint64_t cum = 0;

	for (int i = 0; i < s->n_bounds; i++) {
		cum += s->buckets[i];
		fprintf(out, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
		put_double(out, s->bounds[i]);
		fprintf(out, "\"} %llu\n", (unsigned long long)cum);
	}
	fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
		(unsigned long long)s->count);
	fprintf(out, "%s_sum%s%s%s ", f->name, s->labels[0] ? "{" : "", s->labels,
		s->labels[0] ? "}" : "");
	put_double(out, s->value);
	fprintf(out, "\n%s_count%s%s%s %llu\n", f->name, s->labels[0] ? "{" : "", s->labels,
		s->labels[0] ? "}" : "", (unsigned long long)s->count);
}

int stats_write_prometheus(FILE *out)
{
	run_collectors();
	for (const struct stats_family *f = families; f; f = f->next) {
		fprintf(out, "# HELP %s ", f->name);
		put_help(out, f->help);
		fprintf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
		for (const struct stats_series *s = f->series; s; s = s->next) {
			if (f->type == STATS_HISTOGRAM) {
				write_histogram(out, f, s);
				continue;
			}
			fprintf(out, "%s%s%s%s ", f->name, s->labels[0] ? "{" : "", s->labels,
				s->labels[0] ? "}" : "");
			if (f->type == STATS_COUNTER)
				fprintf(out, "%llu\n", (unsigned long long)s->count);
			else {
				put_double(out, gauge_now(s));
				fputc('\n', out);
			}
		}
	}
	return ferror(out) ? -1 : 0;
}

static json_t *series_json(const struct stats_family *f, const struct stats_series *s)
{
	json_t *o = json_object(), *labels = json_object();

	if (!o || !labels)
		goto fail;
	for (int i = 0; i < s->n_labels; i++)
		if (json_object_set_new(labels, s->lname[i], json_string(s->lvalue[i])) < 0)
			goto fail;
	if (json_object_set_new(o, "labels", labels) < 0) {
		labels = NULL;
		goto fail;
	}
	labels = NULL;
	if (f->type == STATS_COUNTER) {
		json_object_set_new(o, "value", json_integer((json_int_t)s->count));
	} else if (f->type == STATS_GAUGE) {
		double v = gauge_now(s);
		if (v == floor(v) && fabs(v) < 9e15)
			json_object_set_new(o, "value", json_integer((json_int_t)v));
		else
			json_object_set_new(o, "value", json_real(v));
	} else {
		json_t *b = json_object();
		uint64_t cum = 0;
		char le[32];

		if (!b)
			goto fail;
		for (int i = 0; i < s->n_bounds; i++) {
			cum += s->buckets[i];
			snprintf(le, sizeof(le), "%g", s->bounds[i]);
			json_object_set_new(b, le, json_integer((json_int_t)cum));
		}
		json_object_set_new(b, "+Inf", json_integer((json_int_t)s->count));
		json_object_set_new(o, "buckets", b);
		json_object_set_new(o, "count", json_integer((json_int_t)s->count));
		json_object_set_new(o, "sum", json_real(s->value));
	}
	return o;
fail:
	json_decref(labels);
	json_decref(o);
	return NULL;
}

json_t *stats_json(void)
{
	json_t *all = json_object();

	if (!all)
		return NULL;
	run_collectors();
	for (const struct stats_family *f = families; f; f = f->next) {
		json_t *fam = json_object(), *arr = json_array();

		if (!fam || !arr || json_object_set_new(all, f->name, fam) < 0) {
			json_decref(arr);
			json_decref(all);
			return NULL;
		}
		json_object_set_new(fam, "type", json_string(type_name(f->type)));
		json_object_set_new(fam, "help", json_string(f->help));
		json_object_set_new(fam, "series", arr);
		for (const struct stats_series *s = f->series; s; s = s->next) {
			json_t *sj = series_json(f, s);
			if (!sj || json_array_append_new(arr, sj) < 0) {
				json_decref(all);
				return NULL;
			}
		}
	}
	return all;
}

void stats_cleanup(void)
{
	while (families) {
		struct stats_family *f = families;
		families = f->next;
		while (f->series) {
			struct stats_series *s = f->series;
			f->series = s->next;
			series_free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	strmap_free(by_family);
	strmap_free(by_series);
	by_family = by_series = NULL;
	n_series = 0;
	memset(collectors, 0, sizeof(collectors));
}

/* Known methods get their own series; anything else is "other" (bounded labels). */
void stats_sip_request(const char *method)
{
	static const char *const known[] = {"INVITE", "ACK",    "BYE",      "CANCEL", "OPTIONS",
					    "REGISTER", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER",
					    "INFO",   "UPDATE", "PRACK",    "PUBLISH"};
	size_t n = sizeof(known) / sizeof(known[0]);
	size_t i;

	for (i = 0; method && i < n; i++)
		if (!strcmp(method, known[i]))
			break;
	if (!method || i == n)
		method = "other";
	stats_count("sipwake_sip_requests_total", "method", method, NULL);
}

void stats_sip_response(int status)
{
	char code[8];

	if (status < 100 || status > 699)
		return;
	snprintf(code, sizeof(code), "%d", status);
	stats_count("sipwake_sip_responses_total", "code", code, NULL);
}

void stats_declare_core(void)
{
	stats_family("sipwake_sip_requests_total", STATS_COUNTER,
		     "SIP requests received that start a transaction (and ACKs to 2xx), by method");
	stats_family("sipwake_sip_responses_total", STATS_COUNTER,
		     "final and provisional SIP responses sent to clients (own and relayed), "
		     "by status code");
	stats_family("sipwake_register_total", STATS_COUNTER,
		     "REGISTER requests by outcome: ok (2xx sent), challenged (401/407 from "
		     "upstream), refused (rejected by sipwake), failed (other upstream error)");
	stats_family("sipwake_registrations", STATS_GAUGE, "bindings currently registered");
	stats_family("sipwake_transactions", STATS_GAUGE,
		     "proxied SIP transactions alive, including requests held for a push");
	stats_family("sipwake_stored_messages", STATS_GAUGE,
		     "MESSAGE requests stored for later delivery");
	stats_family("sipwake_uptime_seconds", STATS_GAUGE, "seconds since sipwaked started");
	stats_family("sipwake_build_info", STATS_GAUGE, "always 1; the version is a label");
	stats_family("sipwake_admin_requests_total", STATS_COUNTER,
		     "control socket requests, by command");
	stats_family("sipwake_auth_total", STATS_COUNTER,
		     "digest checks of requests (standalone auth.mode \"accounts\"): ok, challenged "
		     "(no credentials), stale (old or reused nonce), failed (wrong credentials), "
		     "refused (too many failures from the source), error (store)");
	stats_family("sipwake_upstream_refresh_total", STATS_COUNTER,
		     "REGISTERs sipwake sent upstream to keep a sleeping device registered: ok, "
		     "challenged (answered from the account), rejected (401/407/403), no_account, "
		     "timeout, failed (other answers, upstream unreachable)");
	stats_family("sipwake_upstream_refresh_lateness_seconds", STATS_HISTOGRAM,
		     "how long after its scheduled time a keep-alive refresh was sent");
	stats_family("sipwake_upstream_lapsed_total", STATS_COUNTER,
		     "keep-alive refreshes sent after upstream's registration had already expired");
	stats_family("sipwake_cluster_hop_refused_total", STATS_COUNTER,
		     "requests refused because their node-to-node hop header was forged or stale");
	/* Series that should read 0 from the start rather than be absent. */
	stats_counter("sipwake_register_total", "result", "ok", NULL);
	stats_counter("sipwake_register_total", "result", "refused", NULL);
}
