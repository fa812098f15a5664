/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the statistics registry (src/core/stats.c): series identity,
 * label escaping, type clashes, histogram buckets, gauge callbacks, the
 * Prometheus text and the JSON rendering, and the series cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/stats.h"
#include "check.h"


static char *render(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	stats_write_prometheus(f);
	fclose(f);
	return text;
}

static double answer(void *ctx)
{
	return *(int *)ctx;
}

static void test_counters(void)
{
	struct stats_series *a = stats_counter("t_requests_total", "method", "INVITE", NULL);
	struct stats_series *b = stats_counter("t_requests_total", "method", "INVITE", NULL);
	struct stats_series *c = stats_counter("t_requests_total", "method", "BYE", NULL);
	char *text;

	CHECK_MSG(a && a == b, "same labels give the same series");
	CHECK_MSG(c && c != a, "other labels give another series");
	stats_inc(a);
	stats_add(b, 2);
	stats_inc(c);
	stats_inc(NULL);
	CHECK_MSG(stats_value(a) == 3, "value %g", stats_value(a));
	CHECK_MSG(stats_gauge("t_requests_total", NULL) == NULL, "type clash refused");
	CHECK_MSG(stats_counter("bad name", NULL) == NULL, "invalid metric name refused");
	CHECK_MSG(stats_counter("t_x", "1bad", "v", NULL) == NULL, "invalid label name refused");
	CHECK_MSG(stats_family("t_requests_total", STATS_COUNTER, "requests by method") == 0, "family");
	stats_count("t_quote_total", "v", "a\"b\\c\nd", NULL);

	text = render();
	CHECK_MSG(text && strstr(text, "# HELP t_requests_total requests by method\n"
				   "# TYPE t_requests_total counter\n"
				   "t_requests_total{method=\"BYE\"} 1\n"
				   "t_requests_total{method=\"INVITE\"} 3\n"),
	      "prometheus text:\n%s", text ? text : "");
	CHECK_MSG(text && strstr(text, "t_quote_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), "escaping:\n%s",
	      text ? text : "");
	free(text);
}

static void test_gauges_histograms(void)
{
	static const double bounds[] = {0.1, 1};
	struct stats_series *g = stats_gauge("t_level", NULL);
	struct stats_series *h = stats_histogram("t_latency_seconds", bounds, 2, "p", "x", NULL);
	int forty_two = 42;
	char *text;
	json_t *j;

	stats_set(g, 2.5);
	CHECK_MSG(stats_value(g) == 2.5, "gauge set");
	CHECK_MSG(stats_gauge_hook("t_hooked", answer, &forty_two, NULL) == 0, "hook");
	stats_observe(h, 0.05);
	stats_observe(h, 0.5);
	stats_observe(h, 7);
	CHECK_MSG(stats_histogram("t_latency_seconds", bounds, 0, "p", "x", NULL) == h,
	      "same histogram");
	text = render();
	CHECK_MSG(text && strstr(text, "t_level 2.5\n"), "gauge text:\n%s", text ? text : "");
	CHECK_MSG(text && strstr(text, "t_hooked 42\n"), "hooked gauge:\n%s", text ? text : "");
	CHECK_MSG(text && strstr(text, "# TYPE t_latency_seconds histogram\n"
				   "t_latency_seconds_bucket{p=\"x\",le=\"0.1\"} 1\n"
				   "t_latency_seconds_bucket{p=\"x\",le=\"1\"} 2\n"
				   "t_latency_seconds_bucket{p=\"x\",le=\"+Inf\"} 3\n"
				   "t_latency_seconds_sum{p=\"x\"} 7.55\n"
				   "t_latency_seconds_count{p=\"x\"} 3\n"),
	      "histogram text:\n%s", text ? text : "");
	free(text);

	j = stats_json();
	CHECK_MSG(j != NULL, "json");
	if (j) {
		json_t *s = json_object_get(j, "t_requests_total");
		json_t *first = json_array_get(json_object_get(s, "series"), 1);
		CHECK_MSG(json_integer_value(json_object_get(first, "value")) == 3, "json counter");
		CHECK_MSG(!strcmp(json_string_value(json_object_get(json_object_get(first, "labels"),
								"method")),
			      "INVITE"),
		      "json labels");
		s = json_array_get(json_object_get(json_object_get(j, "t_latency_seconds"), "series"),
				   0);
		CHECK_MSG(json_integer_value(json_object_get(s, "count")) == 3, "json histogram");
		CHECK_MSG(json_integer_value(json_object_get(json_object_get(s, "buckets"), "1")) == 2,
		      "json buckets");
		json_decref(j);
	}
	stats_gauge_unhook(&forty_two);
	CHECK_MSG(stats_value(stats_gauge("t_hooked", NULL)) == 0, "unhooked");
}

static uint64_t external_count = 7;

static void collect(void *ctx)
{
	static const uint64_t buckets[] = {1, 0, 2};
	static const double bounds[] = {0.01, 0.1, 1};

	stats_counter_set(stats_counter("t_external_total", "src", ctx, NULL), external_count);
	stats_histogram_load(stats_histogram("t_external_seconds", bounds, 3, NULL), buckets, 3, 4,
			     12.5);
}

static void test_collector(void)
{
	char *text;

	CHECK_MSG(stats_collector_add(collect, "x") == 0, "collector added");
	text = render();
	CHECK_MSG(text && strstr(text, "t_external_total{src=\"x\"} 7\n"), "mirrored counter:\n%s",
	      text ? text : "");
	CHECK_MSG(text && strstr(text, "t_external_seconds_bucket{le=\"0.1\"} 1\n"
				   "t_external_seconds_bucket{le=\"1\"} 3\n"
				   "t_external_seconds_bucket{le=\"+Inf\"} 4\n"
				   "t_external_seconds_sum 12.5\n"
				   "t_external_seconds_count 4\n"),
	      "mirrored histogram:\n%s", text ? text : "");
	free(text);
	external_count = 9;
	stats_collector_remove("x");
	text = render();
	CHECK_MSG(text && strstr(text, "t_external_total{src=\"x\"} 7\n"), "removed collector not run");
	free(text);
}

static void test_cap(void)
{
	char v[32];
	int made = 0;

	for (int i = 0; i < STATS_MAX_SERIES + 10; i++) {
		snprintf(v, sizeof(v), "%d", i);
		if (stats_counter("t_many_total", "i", v, NULL))
			made++;
	}
	CHECK_MSG(made < STATS_MAX_SERIES, "series capped (%d made)", made);
}

int main(void)
{
	stats_declare_core();
	test_counters();
	test_gauges_histograms();
	test_collector();
	test_cap();
	stats_cleanup();
	if (failures) {
		printf("test_stats: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_stats: all checks passed\n");
	return 0;
}
