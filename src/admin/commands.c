/* SPDX-License-Identifier: MIT */
/*
 * The commands of the control socket: each takes the request's words and
 * returns the JSON answer. They read the registrar, the store and the
 * statistics registry directly (all on the loop's thread), shorten every
 * push token with log_token(), and list at most ADMIN_MAX_LIST items so
 * that one answer stays bounded whatever the number of users.
 */
#include "admin_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sipwake/log.h"
#include "sipwake/pn.h"
#include "sipwake/proxy.h"
#include "sipwake/stats.h"
#include "sipwake/utf8.h"

#define MAX_WORDS 8

int admin_canonical_aor(const char *in, char *out, size_t len)
{
	const char *at, *p = in;
	int n;

	if (!strncasecmp(p, "sips:", 5))
		p += 5;
	else if (!strncasecmp(p, "sip:", 4))
		p += 4;
	if (!*p || strpbrk(p, " \t\r\n<>;?") || p[0] == '@')
		return -1;
	n = snprintf(out, len, "sip:%s", p);
	if (n < 0 || (size_t)n >= len)
		return -1;
	at = strchr(out, '@');
	for (char *q = at ? (char *)at : out + 4; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	if (at && !at[1])
		return -1;
	return 0;
}

/* Contact URI without its push parameters (the token must not be shown whole). */
static char *display_contact(const char *contact)
{
	const char *at = strchr(contact, '@');
	const char *semi = strchr(at ? at : contact, ';');
	char *stripped, *res = NULL;

	if (!semi)
		return strdup(contact);
	stripped = pn_strip_params(semi + 1);
	if (stripped && asprintf(&res, "%.*s%s%s", (int)(semi - contact), contact,
				 stripped[0] ? ";" : "", stripped) < 0)
		res = NULL;
	free(stripped);
	return res;
}

static json_t *push_json(const struct pn_identity *pn)
{
	char t1[LOG_TOKEN_BUFSZ], t2[LOG_TOKEN_BUFSZ];

	if (!pn)
		return json_null();
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:i}", "provider", pn_provider_name(pn), "token",
			 pn->token ? json_string(log_token(pn->token, t1)) : json_null(),
			 "voip_token",
			 pn->voip_token ? json_string(log_token(pn->voip_token, t2)) : json_null(),
			 "topic", admin_text(pn->topic), "team_id", admin_text(pn->team_id),
			 "timeout", pn->timeout);
}

static json_t *binding_json(const struct binding *b, int64_t now)
{
	char *contact = display_contact(binding_contact(b));
	int64_t exp = binding_expires(b);
	json_t *o;

	o = json_pack("{s:o,s:s,s:o,s:o,s:o,s:o,s:f,s:I,s:I,s:b,s:o}", "aor",
		      admin_text(binding_aor(b)), "id", binding_id(b), "contact", admin_text(contact),
		      "received",
		      admin_text(binding_received(b)), "instance", admin_text(binding_instance(b)),
		      "user_agent", admin_text(binding_user_agent(b)), "q", binding_q(b) / 1000.0,
		      "expires", (json_int_t)exp, "expires_in",
		      (json_int_t)(exp > now ? exp - now : 0), "reachable", binding_reachable(b),
		      "push", push_json(binding_pn(b)));
	if (o && binding_upstream_state(b)) {
		int64_t up = binding_upstream_expires(b);
		json_object_set_new(o, "upstream",
				    json_pack("{s:I,s:s}", "expires_in",
					      (json_int_t)(up > now ? up - now : 0), "refresh",
					      binding_upstream_state(b)));
	}
	free(contact);
	return o;
}

struct collect {
	struct binding **list;
	size_t n, cap;
};

static void collect_one(void *ctx, struct binding *b)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct binding **l = realloc(c->list, cap * sizeof(*l));
		if (!l)
			return;
		c->list = l;
		c->cap = cap;
	}
	c->list[c->n++] = b;
}

static int by_aor(const void *x, const void *y)
{
	const struct binding *a = *(struct binding *const *)x, *b = *(struct binding *const *)y;
	int d = strcmp(binding_aor(a), binding_aor(b));

	if (d)
		return d;
	return strcmp(binding_id(a), binding_id(b));
}

static json_t *cmd_registrations(struct admin *a, int argc, char **argv)
{
	char aor[512];
	struct collect c = {0};
	int64_t now = time(NULL);
	json_t *arr, *res;
	size_t total;

	if (argc > 2)
		return admin_error("usage: registrations [AOR]");
	if (argc == 2 && admin_canonical_aor(argv[1], aor, sizeof(aor)) < 0)
		return admin_error("not an address of record: %s", argv[1]);
	arr = json_array();
	if (!arr)
		return admin_error("out of memory");
	if (argc == 2) {
		c.cap = 64;
		c.list = calloc(c.cap, sizeof(*c.list));
		c.n = c.list ? registrar_lookup(a->reg, aor, c.list, c.cap) : 0;
	} else {
		registrar_each(a->reg, collect_one, &c);
		if (c.n)
			qsort(c.list, c.n, sizeof(*c.list), by_aor);
	}
	total = c.n;
	for (size_t i = 0; i < c.n && i < ADMIN_MAX_LIST; i++)
		json_array_append_new(arr, binding_json(c.list[i], now));
	free(c.list);
	res = json_pack("{s:I,s:b,s:o}", "count", (json_int_t)total, "truncated",
			total > ADMIN_MAX_LIST, "registrations", arr);
	if (res && argc == 2)
		json_object_set_new(res, "aor", admin_text(aor));
	return admin_ok(res);
}

static json_t *cmd_unregister(struct admin *a, int argc, char **argv)
{
	char aor[512];
	int n;

	if (argc != 2)
		return admin_error("usage: unregister AOR");
	if (admin_canonical_aor(argv[1], aor, sizeof(aor)) < 0)
		return admin_error("not an address of record: %s", argv[1]);
	n = registrar_remove_aor(a->reg, aor, "removed by sipwakectl");
	if (n == 0)
		return admin_error("%s has no registration", aor);
	log_notice("control socket: %d binding(s) of %s removed", n, aor);
	return admin_ok(json_pack("{s:o,s:i}", "aor", admin_text(aor), "removed", n));
}

struct msg_list {
	json_t *arr;
	size_t n;
};

static int message_one(void *ctx, const struct store_message *m)
{
	struct msg_list *l = ctx;

	if (l->n++ >= ADMIN_MAX_LIST)
		return 1;
	json_array_append_new(l->arr,
			      json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:i}", "id",
					(json_int_t)m->id, "aor", admin_text(m->aor), "from", admin_text(m->from),
					"to", admin_text(m->to), "call_id", admin_text(m->call_id),
					"content_type", admin_text(m->content_type), "size",
					(json_int_t)m->body_len, "received", (json_int_t)m->received,
					"expires", (json_int_t)m->expires, "attempts", m->attempts));
	return 0;
}

/* A listing of the stored messages: at once on SQLite, when Redis answered in a cluster. */
struct msg_query {
	struct msg_query *next;
	struct admin *a;
	uint64_t req; /* 0 while cmd_messages waits for the answer itself */
	struct msg_list l;
	int count;
	bool done;
};

static void query_unlink(struct msg_query *q)
{
	for (struct msg_query **pp = &q->a->msg_queries; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			return;
		}
}

static json_t *query_result(struct msg_query *q)
{
	json_t *arr = q->l.arr;

	q->l.arr = NULL;
	return json_pack("{s:i,s:b,s:o}", "count", q->count, "truncated",
			 (size_t)q->count > ADMIN_MAX_LIST, "messages", arr);
}

static int query_one(void *ctx, const struct store_message *m)
{
	return message_one(&((struct msg_query *)ctx)->l, m);
}

#define MESSAGES_UNREADABLE "cannot read the stored messages (see the daemon's log)"

static void messages_listed(void *ctx, int count)
{
	struct msg_query *q = ctx;

	q->count = count;
	q->done = true;
	if (!q->req)
		return; /* synchronous: cmd_messages answers */
	query_unlink(q);
	if (count < 0)
		admin_push_test_done(q->a, q->req, NULL, MESSAGES_UNREADABLE);
	else
		admin_push_test_done(q->a, q->req, query_result(q), NULL);
	json_decref(q->l.arr);
	free(q);
}

void admin_messages_cancel(struct admin *a)
{
	while (a->msg_queries) {
		struct msg_query *q = a->msg_queries;

		a->msg_queries = q->next;
		store_message_forget(a->st, q);
		json_decref(q->l.arr);
		free(q);
	}
}

static json_t *cmd_messages(struct admin *a, int argc, char **argv, uint64_t *pending)
{
	char aor[512];
	const char *which = NULL;
	struct msg_query *q;
	json_t *res;

	if (argc > 2)
		return admin_error("usage: messages [AOR]");
	if (argc == 2) {
		if (admin_canonical_aor(argv[1], aor, sizeof(aor)) < 0)
			return admin_error("not an address of record: %s", argv[1]);
		which = aor;
	}
	if (!(q = calloc(1, sizeof(*q))) || !(q->l.arr = json_array())) {
		free(q);
		return admin_error(MESSAGES_UNREADABLE);
	}
	q->a = a;
	q->next = a->msg_queries;
	a->msg_queries = q;
	store_message_list_then(a->st, which, time(NULL), ADMIN_MAX_LIST, query_one,
				 messages_listed, q);
	if (!q->done) { /* a cluster's Redis answers later */
		q->req = ++a->next_req;
		*pending = q->req;
		return NULL;
	}
	query_unlink(q);
	res = q->count < 0 ? admin_error(MESSAGES_UNREADABLE) : admin_ok(query_result(q));
	json_decref(q->l.arr);
	free(q);
	return res;
}

static double uptime(const struct admin *a)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - a->started_mono.tv_sec) +
	       (double)(now.tv_nsec - a->started_mono.tv_nsec) / 1e9;
}

static json_t *str_list(char **l)
{
	json_t *arr = json_array();

	for (; l && *l; l++)
		json_array_append_new(arr, json_string(*l));
	return arr;
}

static void node_json(void *ctx, const char *name, bool self, bool alive, int64_t age_ms,
		      int64_t since, const char *hop)
{
	json_array_append_new(ctx, json_pack("{s:s,s:b,s:b,s:o,s:I,s:s}", "name", name, "self",
					     self, "alive", alive, "heartbeat_age_ms",
					     age_ms < 0 ? json_null() : json_integer(age_ms), "since",
					     (json_int_t)since, "hop", hop));
}

/* The cluster part of status: null outside a cluster. */
static json_t *cluster_json(struct admin *a)
{
	json_t *nodes;

	if (!store_clustered(a->st))
		return json_null();
	nodes = json_array();
	store_cluster_nodes(a->st, node_json, nodes);
	return json_pack("{s:s,s:s,s:I,s:o}", "node", store_node_name(a->st), "redis",
			 store_writable(a->st) ? "reachable" : "unreachable", "unconfirmed_writes",
			 (json_int_t)store_pending(a->st), "nodes", nodes);
}

static json_t *cmd_status(struct admin *a, int argc, char **argv)
{
	const struct sw_config *cfg = a->cfg;
	int msgs = store_message_count(a->st, NULL);

	if (argc != 1)
		return admin_error("usage: status");
	return admin_ok(json_pack(
		"{s:s,s:s,s:o,s:i,s:I,s:I,s:I,s:I,s:I,s:{s:b,s:b},s:o,s:o,s:s,s:s,s:s,s:o}",
		"version",
		SIPWAKE_VERSION, "mode", config_standalone(cfg) ? "standalone" : "gateway",
		"upstream", config_standalone(cfg) ? json_null() : json_string(cfg->upstream.uri),
		"pid", (int)getpid(), "started", (json_int_t)a->started, "uptime",
		(json_int_t)uptime(a), "bindings", (json_int_t)registrar_count(a->reg),
		"transactions", (json_int_t)proxy_txn_count(), "stored_messages",
		(json_int_t)(msgs < 0 ? 0 : msgs), "providers", "apns", config_apns_enabled(cfg),
		"fcm", config_fcm_enabled(cfg), "listen", str_list(cfg->sip.listen), "domains",
		str_list(cfg->sip.domains), "config", cfg->path ? cfg->path : "", "log_level",
		log_level_name(log_get_level()), "push_test",
		a->push_test ? "available" : "not available", "cluster", cluster_json(a)));
}

static json_t *cmd_stats(struct admin *a, int argc, char **argv)
{
	json_t *s;

	if (argc != 1)
		return admin_error("usage: stats");
	s = stats_json();
	return s ? admin_ok(s) : admin_error("out of memory");
}

static json_t *cmd_reload(struct admin *a, int argc, char **argv)
{
	if (argc != 1)
		return admin_error("usage: reload");
	if (!a->reload)
		return admin_error("reload is not available");
	log_notice("control socket: reload requested");
	if (a->reload(a->reload_ctx) < 0)
		return admin_error("reload failed: the configuration has errors (listed in the "
				   "daemon's log); the running configuration is kept");
	return admin_ok(json_pack("{s:b,s:s}", "reloaded", 1, "config",
				  a->cfg->path ? a->cfg->path : ""));
}

static json_t *cmd_push(struct admin *a, int argc, char **argv, uint64_t *pending)
{
	const char *type = "alert";
	char aor[512], err[256] = "";
	json_t *result = NULL;
	struct binding *list[1];
	uint64_t req;
	int rc;

	if (argc < 3 || strcmp(argv[1], "test") != 0)
		return admin_error("usage: push test AOR [--type voip|alert|background]");
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc)
			type = argv[++i];
		else if (!strncmp(argv[i], "--type=", 7))
			type = argv[i] + 7;
		else
			return admin_error("usage: push test AOR [--type voip|alert|background]");
	}
	if (strcmp(type, "voip") && strcmp(type, "alert") && strcmp(type, "background"))
		return admin_error("unknown push type \"%s\" (voip, alert or background)", type);
	if (admin_canonical_aor(argv[2], aor, sizeof(aor)) < 0)
		return admin_error("not an address of record: %s", argv[2]);
	if (!a->push_test)
		return admin_error("push layer not available");
	if (registrar_lookup(a->reg, aor, list, 1) == 0)
		return admin_error("%s has no registration", aor);
	req = ++a->next_req;
	rc = a->push_test(a->push_test_ctx, aor, type, req, &result, err, sizeof(err));
	if (rc == 1) {
		*pending = req;
		return NULL;
	}
	if (rc < 0) {
		json_decref(result);
		return admin_error("%s", err[0] ? err : "push test failed");
	}
	return admin_ok(result);
}

static json_t *cmd_help(void)
{
	return admin_ok(json_pack(
		"{s:[s,s,s,s,s,s,s,s]}", "commands", "status", "registrations [AOR]",
		"unregister AOR", "messages [AOR]", "stats", "reload",
		"push test AOR [--type voip|alert|background]", "help"));
}

json_t *admin_command(struct admin *a, char *line, uint64_t *pending)
{
	char *argv[MAX_WORDS + 1], *save = NULL, *w;
	int argc = 0;
	json_t *res;

	*pending = 0;
	if (!utf8_valid(line))
		return admin_error("the request is not valid UTF-8");
	for (w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_WORDS)
			return admin_error("too many words in the request");
		argv[argc++] = w;
	}
	argv[argc] = NULL;
	if (argc == 0)
		return admin_error("empty request; try \"help\"");
	for (char *p = argv[0]; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return admin_error("unknown command; try \"help\"");
	if (!strcmp(argv[0], "status"))
		res = cmd_status(a, argc, argv);
	else if (!strcmp(argv[0], "registrations"))
		res = cmd_registrations(a, argc, argv);
	else if (!strcmp(argv[0], "unregister"))
		res = cmd_unregister(a, argc, argv);
	else if (!strcmp(argv[0], "messages"))
		res = cmd_messages(a, argc, argv, pending);
	else if (!strcmp(argv[0], "stats"))
		res = cmd_stats(a, argc, argv);
	else if (!strcmp(argv[0], "reload"))
		res = cmd_reload(a, argc, argv);
	else if (!strcmp(argv[0], "push"))
		res = cmd_push(a, argc, argv, pending);
	else if (!strcmp(argv[0], "help"))
		res = cmd_help();
	else
		return admin_error("unknown command \"%.40s\"; try \"help\"", argv[0]);
	stats_count("sipwake_admin_requests_total", "command", argv[0], NULL);
	return res;
}

static double gauge_bindings(void *ctx)
{
	return (double)registrar_count(((struct admin *)ctx)->reg);
}

static double gauge_txns(void *ctx)
{
	return (double)proxy_txn_count();
}

static double gauge_messages(void *ctx)
{
	int n = store_message_count(((struct admin *)ctx)->st, NULL);

	return n < 0 ? 0 : n;
}

static double gauge_uptime(void *ctx)
{
	return uptime(ctx);
}

void admin_hook_gauges(struct admin *a)
{
	stats_gauge_hook("sipwake_registrations", gauge_bindings, a, NULL);
	stats_gauge_hook("sipwake_transactions", gauge_txns, a, NULL);
	stats_gauge_hook("sipwake_stored_messages", gauge_messages, a, NULL);
	stats_gauge_hook("sipwake_uptime_seconds", gauge_uptime, a, NULL);
	stats_set(stats_gauge("sipwake_build_info", "version", SIPWAKE_VERSION, NULL), 1);
}
