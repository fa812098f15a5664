/* SPDX-License-Identifier: MIT */
/*
 * Statistics: one process-wide registry of metric families (counters,
 * gauges, histograms), each with any number of labelled series. Any layer
 * declares what it counts and keeps the series pointer it gets back, so
 * counting in a hot path is a plain increment with no lookup. The admin
 * layer renders the whole registry as Prometheus text (the metrics HTTP
 * endpoint) or as JSON (sipwakectl stats). Single-threaded, like the rest
 * of the daemon: call from the su_root thread only.
 *
 * Labels are given as a NULL-terminated list of name, value pairs:
 *   stats_counter("sipwake_push_total", "provider", "apns", "kind", "voip",
 *                 "result", "ok", NULL);
 * The same name and labels always give back the same series.
 */
#ifndef SIPWAKE_STATS_H
#define SIPWAKE_STATS_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define STATS_MAX_LABELS 4    /* label pairs per series */
#define STATS_MAX_BUCKETS 16  /* histogram buckets (+Inf is implicit) */
#define STATS_MAX_SERIES 4096 /* series in the whole registry (caps label explosion) */

enum stats_type {
	STATS_COUNTER,
	STATS_GAUGE,
	STATS_HISTOGRAM,
};

struct stats_series;

/* A gauge computed when the registry is rendered (registrations, live transactions). */
typedef double stats_gauge_fn(void *ctx);

/*
 * Describe a family: its type and one line of help. Optional (a family used
 * without it gets an empty help line) and idempotent; the first call wins.
 * Returns 0, or -1 when the name is invalid or the registry is full.
 */
int stats_family(const char *name, enum stats_type type, const char *help);

/*
 * The counter series with this name and labels (created at 0 when new).
 * Returns NULL on ENOMEM, a full registry, or a name that is a family of
 * another type; every stats_* call accepts NULL and then does nothing.
 */
struct stats_series *stats_counter(const char *name, ...) __attribute__((sentinel));
/* The gauge series with this name and labels (set with stats_set). */
struct stats_series *stats_gauge(const char *name, ...) __attribute__((sentinel));
/*
 * A histogram series. bounds are the upper bounds of the buckets, strictly
 * increasing, at most STATS_MAX_BUCKETS (copied); NULL/0 means the default
 * latency buckets in seconds (0.005 ... 10). A series that already exists
 * keeps its buckets.
 */
struct stats_series *stats_histogram(const char *name, const double *bounds, int n_bounds, ...)
	__attribute__((sentinel));

/*
 * A gauge whose value comes from fn(ctx) at render time. Replaces an
 * earlier callback of the same series. Call stats_gauge_unhook(ctx) before
 * ctx goes away.
 */
int stats_gauge_hook(const char *name, stats_gauge_fn *fn, void *ctx, ...)
	__attribute__((sentinel));
/* Detach every callback registered with this ctx (their series read 0). */
void stats_gauge_unhook(void *ctx);

/*
 * A collector copies counters that another layer keeps itself (the push
 * dispatcher's per-provider tables) into series, right before every
 * rendering. It may create series and use stats_counter_set() and
 * stats_histogram_load(). Remove it with stats_collector_remove(ctx)
 * before ctx goes away. Returns 0 or -1 (ENOMEM, too many collectors).
 */
typedef void stats_collect_fn(void *ctx);
int stats_collector_add(stats_collect_fn *fn, void *ctx);
void stats_collector_remove(void *ctx);

/* Mirror an external counter: set its absolute value. */
void stats_counter_set(struct stats_series *s, uint64_t value);
/*
 * Mirror an external histogram with the same bounds: buckets[] holds the
 * non-cumulative count of each bucket (n values, n <= the series' bucket
 * count; the +Inf bucket is implied by count), plus the total count and sum.
 */
void stats_histogram_load(struct stats_series *s, const uint64_t *buckets, int n, uint64_t count,
			  double sum);

/* Counter: add one / add n. */
void stats_inc(struct stats_series *s);
void stats_add(struct stats_series *s, uint64_t n);
/* Gauge: set the value. */
void stats_set(struct stats_series *s, double v);
/* Histogram: record one observation. */
void stats_observe(struct stats_series *s, double v);

/* Current value of a counter or gauge series (tests and status). */
double stats_value(const struct stats_series *s);

/* One shot: find or create the counter and add one (for cold paths). */
#define stats_count(name, ...) stats_inc(stats_counter(name, __VA_ARGS__))

/* Write the whole registry in the Prometheus text exposition format 0.0.4. */
int stats_write_prometheus(FILE *out);
/*
 * The whole registry as a JSON object: { "family": { "type": ..., "help":
 * ..., "series": [ { "labels": {...}, "value": N } ... ] } }; histogram
 * series carry "count", "sum" and "buckets" instead of "value". New
 * reference, or NULL on ENOMEM.
 */
json_t *stats_json(void);

/* Drop every family and series (daemon exit, tests). Pointers become invalid. */
void stats_cleanup(void);

/*
 * SIP counters, one hash lookup each (cheap enough for every message).
 * A method outside the well-known list counts as "other", so that labels
 * taken from the wire stay bounded; status codes outside 100-699 are ignored.
 */
void stats_sip_request(const char *method);
void stats_sip_response(int status);

/* The metrics the core layers declare (SIP, registrar, proxy); see stats.c. */
void stats_declare_core(void);

#endif
