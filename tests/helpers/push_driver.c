/* SPDX-License-Identifier: MIT */
/*
 * push_driver: runs the push layer alone on an su_root, for the integration
 * tests (tests/integration/test_push_*.py) and bench/push. The config comes
 * from the command line, a script of JSON lines (file or stdin) says what to
 * send, and everything that happens is printed as JSON lines on stdout:
 * results, token-invalid callbacks, counters, bench figures. A 20 ms timer
 * ticks all along so that tests can see the loop never stalled.
 *
 * Script operations: send, wait (for callbacks), drain (until nothing is
 * pending, detached pushes included), sleep, stats, reload, bench.
 * With "udp_echo_port" in the config, a UDP socket on the same loop echoes
 * datagrams: tests send "SIP traffic" while pushes are stuck.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/log.h"
#include "sipwake/push.h"

#define TICK_MS 20

struct driver {
	su_root_t *root;
	struct push *push;
	struct sw_config cfg;
	json_t *script;
	size_t pc;
	su_timer_t *step_timer, *tick_timer;
	uint64_t ticks, last_tick_ms, max_gap_ms;
	unsigned outstanding; /* sends whose callback has not fired yet */
	uint64_t wait_until;  /* for "sleep" and bounded "wait" */
	int waiting;          /* 0 none, 1 wait, 2 sleep, 3 bench, 4 drain */
	int exit_code;
	/* bench */
	json_t *bench_op;
	unsigned bench_n, bench_started, bench_done, bench_conc, bench_ok;
	double *bench_lat;
	uint64_t bench_t0;
	unsigned seq;
	struct sent *sents;
	int udp_fd, udp_index; /* UDP echo on the same loop: "SIP traffic" */
	uint64_t echoes;
};

struct sent {
	struct sent *prev, *next; /* outstanding, freed at exit if never called back */
	struct driver *d;
	char tag[64];
	unsigned seq;
	bool bench;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void emit(json_t *ev)
{
	char *s = json_dumps(ev, JSON_COMPACT);
	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	json_decref(ev);
}

static void step(struct driver *d);
static void bench_fill(struct driver *d);

static void sent_unlink(struct driver *d, struct sent *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sents = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static void on_done(void *ctx, enum push_result res, int status, const char *reason, double ms)
{
	struct sent *s = ctx;
	struct driver *d = s->d;

	d->outstanding--;
	sent_unlink(d, s);
	if (s->bench) {
		if (res == PUSH_OK)
			d->bench_ok++;
		d->bench_lat[d->bench_done++] = ms;
		bench_fill(d); /* keep the concurrency up without waiting for a timer */
	} else {
		emit(json_pack("{s:s, s:s, s:I, s:s, s:i, s:s?, s:f}", "event", "result", "tag",
			       s->tag, "seq", (json_int_t)s->seq, "result", push_result_name(res),
			       "status", status, "reason", reason, "latency_ms", ms));
	}
	free(s);
}

static void on_token_invalid(void *ctx, const struct pn_identity *id, const char *token)
{
	emit(json_pack("{s:s, s:s, s:s}", "event", "token_invalid", "provider",
		       push_provider_name(id->provider), "token", token));
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int kind_of(const char *s)
{
	for (int i = 0; i < PUSH_KIND_COUNT; i++)
		if (s && strcmp(s, push_kind_name(i)) == 0)
			return i;
	return -1;
}

/* Send what op describes once; bench marks it for the bench counters. */
static int do_send(struct driver *d, json_t *op, bool bench)
{
	struct pn_identity id = {0};
	struct push_payload pl = {0};
	const char *prov = jstr(op, "provider"), *text = jstr(op, "text");
	char *big = NULL;
	struct sent *s = calloc(1, sizeof(*s));
	struct push_req *req = NULL;
	int kind = kind_of(jstr(op, "kind")), rc;
	bool detach = json_is_true(json_object_get(op, "detach"));
	json_int_t rep = json_integer_value(json_object_get(op, "text_repeat"));

	if (!s || kind < 0)
		abort();
	id.provider = !prov || !strcmp(prov, "fcm") ? PN_FCM
		      : strncmp(prov, "apns", 4) == 0 ? PN_APNS
		      : strcmp(prov, "webpush") == 0  ? PN_WEBPUSH
						      : PN_HTTP; /* an operator's service */
	id.service = id.provider == PN_HTTP ? (char *)prov : NULL;
	id.param = (char *)jstr(op, "param");
	id.sandbox = prov && strcmp(prov, "apns.dev") == 0;
	id.token = (char *)jstr(op, "token");
	id.voip_token = (char *)jstr(op, "voip_token");
	id.topic = (char *)jstr(op, "topic");
	id.team_id = (char *)jstr(op, "team_id");
	id.wp_p256dh = (char *)jstr(op, "p256dh");
	id.wp_auth = (char *)jstr(op, "auth");
	if (text && rep > 1) {
		size_t n = strlen(text);
		big = malloc(n * (size_t)rep + 1);
		for (json_int_t i = 0; i < rep; i++)
			memcpy(big + n * (size_t)i, text, n);
		big[n * (size_t)rep] = '\0';
		text = big;
	}
	pl.call_id = jstr(op, "call_id");
	pl.from_uri = jstr(op, "from_uri");
	pl.from_name = jstr(op, "from_name");
	pl.text = text;
	pl.reason = jstr(op, "reason");
	pl.to_uri = jstr(op, "to_uri");
	pl.vm_waiting = json_is_true(json_object_get(op, "vm_waiting"));
	pl.vm_new = (int)json_integer_value(json_object_get(op, "vm_new"));
	pl.vm_old = (int)json_integer_value(json_object_get(op, "vm_old"));
	s->d = d;
	s->seq = d->seq++;
	s->bench = bench;
	snprintf(s->tag, sizeof(s->tag), "%s", jstr(op, "tag") ? jstr(op, "tag") : "");
	rc = push_send(d->push, &id, (enum push_kind)kind, &pl,
		       (unsigned)json_integer_value(json_object_get(op, "deadline_ms")), on_done, s,
		       detach ? &req : NULL);
	free(big);
	if (rc < 0) {
		if (!bench)
			emit(json_pack("{s:s, s:s, s:I, s:s}", "event", "refused", "tag", s->tag, "seq",
				       (json_int_t)s->seq, "result", push_result_name(-rc)));
		else
			d->bench_lat[d->bench_done++] = NAN;
		free(s);
		return rc;
	}
	if (detach) {
		/* The requester vanishes: no callback, the push still completes. */
		push_req_detach(req);
		free(s);
		return 0;
	}
	d->outstanding++;
	s->next = d->sents;
	if (d->sents)
		d->sents->prev = s;
	d->sents = s;
	return 0;
}

static void emit_stats(struct driver *d)
{
	json_t *ev = json_pack("{s:s, s:I, s:I, s:i}", "event", "stats", "ticks",
			       (json_int_t)d->ticks, "max_tick_gap_ms", (json_int_t)d->max_gap_ms,
			       "pending", (int)push_pending(d->push));

	for (int prov = PN_APNS; prov < PN_PROVIDER_COUNT; prov++) {
		const struct push_provider_stats *st = push_stats(d->push, prov);
		json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "attempts",
				      (json_int_t)st->attempts, "retries", (json_int_t)st->retries,
				      "tokens_removed", (json_int_t)st->tokens_removed,
				      "queue_overflow", (json_int_t)st->queue_overflow,
				      "auth_refresh", (json_int_t)st->auth_refresh, "auth_failures",
				      (json_int_t)st->auth_failures, "latency_count",
				      (json_int_t)st->latency_count, "latency_sum_ms",
				      st->latency_sum_ms);
		json_t *res = json_object();
		for (int k = 0; k < PUSH_KIND_COUNT; k++)
			for (int r = 0; r < PUSH_RESULT_COUNT; r++)
				if (st->results[k][r]) {
					char key[64];
					snprintf(key, sizeof(key), "%s/%s", push_kind_name(k),
						 push_result_name(r));
					json_object_set_new(res, key,
							    json_integer((json_int_t)st->results[k][r]));
				}
		json_object_set_new(o, "results", res);
		json_object_set_new(ev, push_provider_name(prov), o);
	}
	emit(ev);
}

static void cfg_apply(struct sw_config *c, json_t *o)
{
	/* Strings are borrowed from the script (alive until exit). */
	const char *v;
#define S(key, field)                                                                              \
	if (json_object_get(o, key))                                                               \
		c->field = (char *)((v = jstr(o, key)) ? v : "");
	S("apns_key", push.apns.key_file);
	S("apns_key_id", push.apns.key_id);
	S("apns_team", push.apns.team_id);
	S("apns_cert", push.apns.certificate);
	S("apns_cert_key", push.apns.private_key);
	S("apns_url", push.apns.url);
	S("apns_sandbox_url", push.apns.sandbox_url);
	S("apns_ca", push.apns.ca_file);
	S("fcm_sa", push.fcm.service_account);
	S("fcm_url", push.fcm.url);
	S("fcm_token_url", push.fcm.token_url);
	S("fcm_ca", push.fcm.ca_file);
	S("webpush_key", push.webpush.vapid_key);
	S("webpush_subject", push.webpush.subject);
	S("webpush_ca", push.webpush.ca_file);
	S("http_provider", push.http.provider);
	S("http_url", push.http.url);
	S("http_auth", push.http.auth_header);
	S("http_body", push.http.body);
	S("http_ca", push.http.ca_file);
	S("http2", push.http2);
#undef S
	if (json_object_get(o, "min_interval"))
		c->push.min_interval = (int)json_integer_value(json_object_get(o, "min_interval"));
	if (json_object_get(o, "call_timeout"))
		c->push.call_timeout = (int)json_integer_value(json_object_get(o, "call_timeout"));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench_fill(struct driver *d)
{
	while (d->bench_started < d->bench_n && d->bench_started - d->bench_done < d->bench_conc) {
		d->bench_started++;
		do_send(d, d->bench_op, true);
	}
}

static void bench_report(struct driver *d)
{
	double secs = (double)(now_ms() - d->bench_t0) / 1000.0;
	unsigned n = 0;

	for (unsigned i = 0; i < d->bench_done; i++)
		if (!isnan(d->bench_lat[i]))
			d->bench_lat[n++] = d->bench_lat[i];
	qsort(d->bench_lat, n, sizeof(double), cmp_double);
	emit(json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f}", "event", "bench", "n",
		       (int)d->bench_n, "concurrency", (int)d->bench_conc, "ok", (int)d->bench_ok,
		       "seconds", secs, "rate", secs > 0 ? d->bench_n / secs : 0.0, "p50_ms",
		       n ? d->bench_lat[n / 2] : 0.0, "p99_ms",
		       n ? d->bench_lat[(size_t)((n - 1) * 0.99)] : 0.0));
	free(d->bench_lat);
	d->bench_lat = NULL;
}

static void step_timer_cb(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	step(arg);
}

/* Run script operations until one has to wait for the loop. */
static void step(struct driver *d)
{
	uint64_t now = now_ms();

	if (d->waiting == 1) {
		if (d->outstanding > 0 && now < d->wait_until)
			goto later;
		if (d->outstanding > 0)
			emit(json_pack("{s:s, s:i}", "event", "wait_timeout", "outstanding",
				       (int)d->outstanding));
		d->waiting = 0;
	} else if (d->waiting == 4) {
		if (push_pending(d->push) > 0 && now < d->wait_until)
			goto later;
		d->waiting = 0;
	} else if (d->waiting == 2) {
		if (now < d->wait_until)
			goto later;
		d->waiting = 0;
	} else if (d->waiting == 3) {
		bench_fill(d);
		if (d->bench_done < d->bench_n && now < d->wait_until)
			goto later;
		bench_report(d);
		d->waiting = 0;
	}
	while (d->pc < json_array_size(d->script)) {
		json_t *op = json_array_get(d->script, d->pc++);
		const char *name = jstr(op, "op");

		if (!name)
			continue;
		if (strcmp(name, "send") == 0) {
			json_int_t n = json_integer_value(json_object_get(op, "count"));
			for (json_int_t i = 0; i < (n > 0 ? n : 1); i++)
				do_send(d, op, false);
		} else if (strcmp(name, "wait") == 0) {
			json_int_t ms = json_integer_value(json_object_get(op, "timeout_ms"));
			d->waiting = 1;
			d->wait_until = now + (ms > 0 ? (uint64_t)ms : 30000);
			goto later;
		} else if (strcmp(name, "drain") == 0) {
			/* Like wait, but also for detached pushes: nothing pending. */
			json_int_t ms = json_integer_value(json_object_get(op, "timeout_ms"));
			d->waiting = 4;
			d->wait_until = now + (ms > 0 ? (uint64_t)ms : 30000);
			goto later;
		} else if (strcmp(name, "sleep") == 0) {
			d->waiting = 2;
			d->wait_until = now + (uint64_t)json_integer_value(json_object_get(op, "ms"));
			goto later;
		} else if (strcmp(name, "stats") == 0) {
			emit_stats(d);
		} else if (strcmp(name, "reload") == 0) {
			cfg_apply(&d->cfg, op);
			emit(json_pack("{s:s, s:i}", "event", "reload", "rc",
				       push_reload(d->push, &d->cfg)));
		} else if (strcmp(name, "bench") == 0) {
			d->bench_op = op;
			d->bench_n = (unsigned)json_integer_value(json_object_get(op, "n"));
			d->bench_conc = (unsigned)json_integer_value(json_object_get(op, "concurrency"));
			d->bench_started = d->bench_done = d->bench_ok = 0;
			d->bench_lat = calloc(d->bench_n + 1, sizeof(double));
			d->bench_t0 = now;
			d->wait_until = now + 600000;
			d->waiting = 3;
			bench_fill(d);
			goto later;
		}
	}
	su_root_break(d->root);
	return;
later:
	su_timer_set_interval(d->step_timer, step_timer_cb, d, d->waiting == 3 ? 1 : 5);
}

static void tick_cb(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct driver *d = arg;
	uint64_t now = now_ms();

	if (d->last_tick_ms && now - d->last_tick_ms > d->max_gap_ms)
		d->max_gap_ms = now - d->last_tick_ms;
	d->last_tick_ms = now;
	d->ticks++;
}

/* Echo a datagram right away: shows the loop serves other sockets while pushes wait. */
static int udp_echo(su_root_magic_t *m, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct driver *d = arg;
	char buf[2048];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n;

	su_wait_events(w, d->udp_fd);
	n = recvfrom(d->udp_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n > 0 && sendto(d->udp_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) == n)
		d->echoes++;
	return 0;
}

static int udp_open(struct driver *d, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	su_wait_t w;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->udp_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (d->udp_fd < 0 || bind(d->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    su_wait_create(&w, d->udp_fd, SU_WAIT_IN) < 0)
		return -1;
	d->udp_index = su_root_register(d->root, &w, udp_echo, d, 0);
	return d->udp_index < 0 ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: push_driver [--config JSON] [--script FILE] [--log-level L]\n"
			"  --config: JSON object with apns_key, apns_key_id, apns_team, apns_cert,\n"
			"  apns_cert_key, apns_url, apns_sandbox_url, apns_ca, fcm_sa, fcm_url,\n"
			"  fcm_token_url, fcm_ca, webpush_key, webpush_subject, webpush_ca,\n"
			"  http_provider, http_url, http_auth, http_body, http_ca,\n"
			"  min_interval, call_timeout\n");
	exit(64);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"script", required_argument, NULL, 's'},
		{"log-level", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	struct driver d = {.udp_fd = -1, .udp_index = -1};
	json_t *config = NULL;
	const char *script = NULL;
	json_error_t jerr;
	FILE *in = stdin;
	char line[65536];
	int c;

	while ((c = getopt_long(argc, argv, "c:s:l:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = json_loads(optarg, 0, &jerr);
			if (!json_is_object(config))
				usage();
			break;
		case 's':
			script = optarg;
			break;
		case 'l':
			log_set_level(log_level_parse(optarg));
			break;
		default:
			usage();
		}
	}
	if (script && !(in = fopen(script, "r"))) {
		perror(script);
		return 66;
	}
	d.script = json_array();
	while (fgets(line, sizeof(line), in)) {
		json_t *op = json_loads(line, 0, &jerr);
		if (op)
			json_array_append_new(d.script, op);
	}
	if (in != stdin)
		fclose(in);
	d.cfg.push.call_timeout = 30;
	d.cfg.push.wakeup_before_expiry = 120;
	if (config)
		cfg_apply(&d.cfg, config);

	su_init();
	d.root = su_root_create(NULL);
	d.step_timer = su_timer_create(su_root_task(d.root), 0);
	d.tick_timer = su_timer_create(su_root_task(d.root), TICK_MS);
	if (push_new(&d.push, d.root, &d.cfg) < 0) {
		emit(json_pack("{s:s}", "event", "init_failed"));
		d.exit_code = 1;
		goto out;
	}
	push_set_token_invalid_cb(d.push, on_token_invalid, &d);
	if (config && json_object_get(config, "queue_limit"))
		push_set_queue_limit(d.push,
				     (unsigned)json_integer_value(json_object_get(config, "queue_limit")));
	if (config && json_object_get(config, "udp_echo_port") &&
	    udp_open(&d, (int)json_integer_value(json_object_get(config, "udp_echo_port"))) < 0) {
		perror("udp echo");
		d.exit_code = 1;
		goto out;
	}
	su_timer_set_for_ever(d.tick_timer, tick_cb, &d);
	su_timer_set_interval(d.step_timer, step_timer_cb, &d, 0);
	su_root_run(d.root);
	emit(json_pack("{s:s, s:I, s:I, s:i, s:I}", "event", "end", "ticks", (json_int_t)d.ticks,
		       "max_tick_gap_ms", (json_int_t)d.max_gap_ms, "outstanding",
		       (int)d.outstanding, "echoes", (json_int_t)d.echoes));
out:
	if (d.udp_index >= 0)
		su_root_deregister(d.root, d.udp_index);
	if (d.udp_fd >= 0)
		close(d.udp_fd);
	push_free(d.push); /* outstanding callbacks never fire: free their contexts */
	while (d.sents) {
		struct sent *s = d.sents;
		sent_unlink(&d, s);
		free(s);
	}
	su_timer_destroy(d.tick_timer);
	su_timer_destroy(d.step_timer);
	su_root_destroy(d.root);
	su_deinit();
	json_decref(d.script);
	json_decref(config);
	free(d.bench_lat);
	return d.exit_code;
}
