/* SPDX-License-Identifier: MIT */
/*
 * A cluster's bindings in Redis (see redis_int.h for the keys). Writes of
 * one store transaction go in one MULTI/EXEC with their PUBLISH, so
 * another node never hears of a write that did not happen, and the
 * registrar's 2xx waits for the EXEC's reply (store_commit_then). The loop
 * never blocks on Redis: only start-up (the load, accounts, secrets) uses a
 * blocking connection, freed at the first tick of the loop.
 */
#include "redis_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include <jansson.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/stats.h"

#define KEY_BINDINGS "sipwake:bindings"
#define KEY_EXPIRY "sipwake:expiry"
#define CONNECT_TIMEOUT_S 5
#define COMMIT_TIMEOUT_MS 2000 /* unconfirmed this long: the connection is dropped */
#define TICK_MS 500            /* reconnects and the commit deadline */
#define REDIS_JUDGE_GRACE_MS 5000 /* after connecting: a heartbeat's life and a beat more */
#define LOAD_BATCH "1000"      /* HSCAN COUNT at the load */
#define PURGE_MAX "1000"       /* expired bindings dropped per purge */

/* Drops up to ARGV[2] ids whose expiry is <= ARGV[1]; returns how many. */
static const char purge_lua[] =
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]) "
	"for _, id in ipairs(ids) do "
	"redis.call('HDEL', KEYS[2], id) redis.call('ZREM', KEYS[1], id) end "
	"return #ids";

static void reconnect(struct store_redis *rs);
static void publish_void(struct store_redis *rs);

static const char *where_text(const struct store_redis *rs, char *buf, size_t len)
{
	if (rs->where.path[0])
		snprintf(buf, len, "unix:%s", rs->where.path);
	else
		snprintf(buf, len, strchr(rs->where.host, ':') ? "[%s]:%d" : "%s:%d",
			 rs->where.host, rs->where.port);
	return buf;
}

/* Log the state once per change: down when either connection is lost. */
static void report_state(struct store_redis *rs, const char *why)
{
	char w[300];
	bool down = !rs->cmd_up || !rs->sub_up;

	if (down == rs->reported_down)
		return;
	rs->reported_down = down;
	stats_set(stats_gauge("sipwake_cluster_redis_up", NULL), down ? 0 : 1);
	if (down && rs->ever_up)
		stats_count("sipwake_cluster_redis_lost_total", NULL);
	if (!down && !rs->ever_up) {
		rs->ever_up = true;
		log_info("cluster: connected to Redis at %s", where_text(rs, w, sizeof(w)));
		if (rs->need_resync) /* the changes made while we loaded */
			redis_resync_start(rs);
	} else if (!down && rs->need_resync) {
		log_notice("cluster: Redis at %s reachable again", where_text(rs, w, sizeof(w)));
		redis_resync_start(rs);
	} else if (down)
		log_error("cluster: Redis at %s unreachable (%s): REGISTER and MESSAGE get 503 "
			  "until it is back", where_text(rs, w, sizeof(w)), why);
	else
		log_notice("cluster: Redis at %s reachable again", where_text(rs, w, sizeof(w)));
}

/* ---------------------------------------------------------------------- */
/* bindings as JSON */

int redis_json_string(const char *s, char *buf, size_t len)
{
	json_t *j = json_string(s);
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	int rc = t && strlen(t) < len ? 0 : -1;

	if (rc == 0)
		memcpy(buf, t, strlen(t) + 1);
	free(t);
	json_decref(j);
	return rc;
}

static json_t *binding_json(const struct store_redis *rs, const struct store_binding *b)
{
	return json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:s*, s:s*, s:I, s:s*, s:i, s:I, s:I, "
			 "s:s*, s:I, s:I, s:s*, s:s}",
			 "id", b->id, "aor", b->aor, "contact", b->contact, "instance",
			 b->instance, "pn_key", b->pn_key, "received", b->received, "call_id",
			 b->call_id, "cseq", (json_int_t)b->cseq, "user_agent", b->user_agent, "q",
			 b->q, "expires", (json_int_t)b->expires, "updated",
			 (json_int_t)b->updated, "up_call_id", b->up_call_id, "up_cseq",
			 (json_int_t)b->up_cseq, "up_expires", (json_int_t)b->up_expires,
			 "up_state", b->up_state, "node", b->node ? b->node : rs->node);
}

int store_redis_binding_of(json_t *o, struct store_binding *b)
{
	json_int_t cseq = 0, expires = 0, updated = 0, up_cseq = 0, up_expires = 0;
	int q = 1000;

	memset(b, 0, sizeof(*b));
	if (json_unpack(o, "{s:s, s:s, s:s, s?s, s?s, s?s, s?s, s?I, s?s, s?i, s:I, s?I, s?s, "
			"s?I, s?I, s?s, s?s}",
			"id", &b->id, "aor", &b->aor, "contact", &b->contact, "instance",
			&b->instance, "pn_key", &b->pn_key, "received", &b->received, "call_id",
			&b->call_id, "cseq", &cseq, "user_agent", &b->user_agent, "q", &q,
			"expires", &expires, "updated", &updated, "up_call_id", &b->up_call_id,
			"up_cseq", &up_cseq, "up_expires", &up_expires, "up_state", &b->up_state,
			"node", &b->node) < 0)
		return -1;
	if (cseq < 0 || cseq > UINT32_MAX || up_cseq < 0 || up_cseq > UINT32_MAX)
		return -1;
	b->cseq = (uint32_t)cseq;
	b->q = q;
	b->expires = expires;
	b->updated = updated;
	b->up_cseq = (uint32_t)up_cseq;
	b->up_expires = up_expires;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* connections */

static bool reply_ok(const redisReply *r)
{
	return r && r->type != REDIS_REPLY_ERROR;
}

/* The reply to the setup (AUTH, SELECT): an error drops the connection. */
static void setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;

	if (!r || reply_ok(r))
		return;
	log_error("cluster: Redis refused %s: %s", (const char *)privdata, r->str);
	(void)rs;
	redisAsyncDisconnect(ac);
}

/* sipwake:epoch, set once by whoever comes first: if it changed, Redis lost its data. */
static void epoch_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;

	if (!r || r->type != REDIS_REPLY_STRING || ac != rs->cmd)
		return;
	if (rs->epoch[0] && strcmp(rs->epoch, r->str)) {
		log_error("cluster: Redis lost its data (sipwake:epoch changed): this node writes "
			  "its bindings back; turn on appendonly in redis.conf");
		rs->data_lost = true;
	}
	snprintf(rs->epoch, sizeof(rs->epoch), "%s", r->str);
}

static void cmd_ready(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;

	if (!reply_ok(reply) || ac != rs->cmd)
		return;
	rs->cmd_up = true;
	report_state(rs, "");
	/* writes the old connection left unconfirmed may not come back */
	publish_void(rs);
	/* announce ourselves before any binding we write can name us */
	rs->next_beat_ms = 0;
	rs->judge_after_ms = clock_now_ms() + REDIS_JUDGE_GRACE_MS;
	redis_nodes_tick(rs);
}

/* Another node's change to id: apply it, unless ours to id came after it. */
static bool heard_change(struct store_redis *rs, const char *id)
{
	redis_resync_touch(rs, id);
	redis_nodes_touch(rs, id);
	if (!redis_order_stale(rs, id) || !id)
		return id != NULL;
	log_debug("cluster: a change to %s that our later write replaces (ignored)", id);
	return false;
}

static void dispatch(struct store_redis *rs, const char *text, size_t len)
{
	json_error_t err;
	json_t *m, *put, *del, *own;
	const char *by;
	struct store_binding b;
	size_t plen = strlen(rs->echo_prefix);

	/* our own write, back from Redis: its number is all we need */
	if (len > plen && !memcmp(text, rs->echo_prefix, plen)) {
		redis_order_heard(rs, strtoull(text + plen, NULL, 10));
		return;
	}
	m = json_loadb(text, len, 0, &err);
	by = json_string_value(json_object_get(m, "by"));
	if (!m || !by) {
		log_warn("cluster: a message on %s that is not ours (ignored)", rs->channel);
		goto out;
	}
	if (!strcmp(by, rs->node) || !rs->watch)
		goto out; /* our own takeover, echoed */
	put = json_object_get(m, "put");
	del = json_object_get(m, "del");
	own = json_object_get(m, "own");
	if (json_is_array(own)) {
		size_t i;
		json_t *id;

		json_array_foreach(own, i, id)
			if (heard_change(rs, json_string_value(id)))
				redis_nodes_own(rs, by, json_string_value(id));
	} else if (put && store_redis_binding_of(put, &b) == 0) {
		redis_nodes_heard(rs, by, json_string_value(json_object_get(m, "hop")));
		if (heard_change(rs, b.id))
			rs->watch(rs->watch_ctx, STORE_PUT, &b, b.id);
	} else if (json_is_string(del)) {
		if (heard_change(rs, json_string_value(del)))
			rs->watch(rs->watch_ctx, STORE_DEL, NULL, json_string_value(del));
	} else if (!json_is_integer(json_object_get(m, "n"))) {
		log_warn("cluster: a malformed change from node %s (ignored)", by);
	}
out:
	json_decref(m);
}

/* Every reply on the subscription: the SUBSCRIBE's, then each message. */
static void sub_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;
	bool accounts;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return;
	accounts = r->element[1]->type == REDIS_REPLY_STRING &&
		   !strcmp(r->element[1]->str, rs->accounts_channel);
	if (!strcmp(r->element[0]->str, "subscribe")) {
		if (ac == rs->sub && accounts) {
			redis_accounts_subscribed(rs->accounts);
		} else if (ac == rs->sub) {
			rs->sub_up = true;
			/* what came back while we were not subscribed is lost: the
			 * resync that follows reads Redis as it is */
			redis_order_forget(rs);
			report_state(rs, "");
		}
	} else if (!strcmp(r->element[0]->str, "message") &&
		   r->element[2]->type == REDIS_REPLY_STRING) {
		if (accounts)
			redis_accounts_message(rs->accounts, r->element[2]->str, r->element[2]->len);
		else
			dispatch(rs, r->element[2]->str, r->element[2]->len);
	}
}

static void lost(struct store_redis *rs, const redisAsyncContext *ac, const char *why)
{
	if (ac == rs->cmd) {
		rs->cmd = NULL;
		rs->cmd_up = false;
	} else if (ac == rs->sub) {
		rs->sub = NULL;
		rs->sub_up = false;
	}
	if (rs->ever_up && ac)
		rs->need_resync = true; /* what we missed meanwhile is read again */
	report_state(rs, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		lost(ac->data, ac, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	lost(ac->data, ac, status == REDIS_OK ? "closed" : ac->errstr);
}

/* Queue AUTH and SELECT (they go out once connected). */
static void queue_setup(struct store_redis *rs, redisAsyncContext *ac, bool select)
{
	if (rs->where.password[0] && rs->where.user[0])
		redisAsyncCommand(ac, setup_reply, "AUTH", "AUTH %s %s", rs->where.user,
				  rs->where.password);
	else if (rs->where.password[0])
		redisAsyncCommand(ac, setup_reply, "AUTH", "AUTH %s", rs->where.password);
	if (select && rs->where.db)
		redisAsyncCommand(ac, setup_reply, "SELECT", "SELECT %d", rs->where.db);
	/* named, for CLIENT LIST: sipwake:NODE:cmd or sipwake:NODE:sub */
	redisAsyncCommand(ac, NULL, NULL, "CLIENT SETNAME sipwake:%s:%s", rs->node,
			  select ? "cmd" : "sub");
}

static redisAsyncContext *connect_async(struct store_redis *rs)
{
	redisAsyncContext *ac = rs->where.path[0] ? redisAsyncConnectUnix(rs->where.path)
						  : redisAsyncConnect(rs->where.host, rs->where.port);

	if (!ac)
		return NULL;
	if (ac->err) {
		report_state(rs, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = rs;
	if (redis_loop_attach(ac, rs->root) < 0) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void reconnect(struct store_redis *rs)
{
	if (!rs->cmd && (rs->cmd = connect_async(rs))) {
		unsigned long long rnd[2] = {clock_now_ms(), (unsigned long long)time(NULL)};
		char epoch[33];

		queue_setup(rs, rs->cmd, true);
		redis_messages_connected(rs->messages, rs->cmd);
		if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
			rnd[1] ^= (unsigned long long)(uintptr_t)rs; /* unique enough without entropy */
		snprintf(epoch, sizeof(epoch), "%016llx%016llx", rnd[0], rnd[1]);
		redisAsyncCommand(rs->cmd, NULL, NULL, "SET sipwake:epoch %s NX", epoch);
		redisAsyncCommand(rs->cmd, epoch_reply, NULL, "GET sipwake:epoch");
		redisAsyncCommand(rs->cmd, cmd_ready, NULL, "PING");
	}
	if (!rs->sub && (rs->sub = connect_async(rs))) {
		queue_setup(rs, rs->sub, false);
		redisAsyncCommand(rs->sub, sub_message, NULL, "SUBSCRIBE %s %s", rs->channel,
				  rs->accounts_channel);
	}
}

static void tick(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct store_redis *rs = (struct store_redis *)arg;

	if (rs->sync) { /* start-up is over: the loop's connections take over */
		redisFree(rs->sync);
		rs->sync = NULL;
	}

	if (((rs->head && clock_now_ms() - rs->head->sent_ms > COMMIT_TIMEOUT_MS) ||
	     redis_messages_tick(rs->messages, COMMIT_TIMEOUT_MS)) && rs->cmd) {
		redisAsyncContext *ac = rs->cmd;

		log_error("cluster: Redis did not confirm a write within %d ms: reconnecting",
			  COMMIT_TIMEOUT_MS);
		lost(rs, ac, "no answer");
		redisAsyncFree(ac); /* the waiting commits learn they failed */
	}
	reconnect(rs);
	redis_nodes_tick(rs);
	redis_order_sweep(rs);
}

/* ---------------------------------------------------------------------- */
/* writes */

/*
 * The store's transaction is built here and sent whole at the commit
 * (MULTI, its commands, EXEC, in one go): nothing else this node sends,
 * from any reply or timer, ever lands inside an open MULTI.
 */
static int txn_add(struct store_redis *rs, const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int len;

	if (!rs->cmd_up)
		return -1;
	if (rs->txn_n == rs->txn_cap) {
		size_t cap = rs->txn_cap ? 2 * rs->txn_cap : 16;
		struct txn_cmd *t = realloc(rs->txn, cap * sizeof(*t));

		if (!t)
			return -1;
		rs->txn = t;
		rs->txn_cap = cap;
	}
	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	rs->txn[rs->txn_n].cmd = cmd;
	rs->txn[rs->txn_n].len = (size_t)len;
	rs->txn_n++;
	rs->multi = true;
	return 0;
}

static void txn_clear(struct store_redis *rs)
{
	for (size_t i = 0; i < rs->txn_n; i++)
		redisFreeCommand(rs->txn[i].cmd);
	rs->txn_n = 0;
	rs->multi = false;
}

/*
 * In the transaction: PUBLISH {"by":NODE,"n":N,"<what>":<json>}, our write
 * to id, numbered (redis_order.c). json is already JSON text: a binding
 * is serialised once, for the hash and the channel alike.
 */
static int publish(struct store_redis *rs, const char *id, const char *what, const char *json)
{
	unsigned long long n = redis_order_written(rs, id);

	/* newer than any takeover or resync page in flight */
	redis_nodes_touch(rs, id);
	redis_resync_touch(rs, id);
	/* a put carries our hop, so that a node that has not seen our
	 * heartbeat yet (we just started) can reach the phone through us */
	return txn_add(rs, "PUBLISH %s %s%llu,\"hop\":%s,\"%s\":%s}", rs->channel,
		       rs->echo_prefix, n, rs->hop_json, what, json);
}

/* Outside a MULTI: {"by":NODE,"n":N} alone, after writes that did not happen. */
static void publish_void(struct store_redis *rs)
{
	if (rs->cmd)
		redisAsyncCommand(rs->cmd, NULL, NULL, "PUBLISH %s %s%llu}", rs->channel,
				  rs->echo_prefix, (unsigned long long)rs->wseq);
}

int store_redis_put(struct store_redis *rs, const struct store_binding *b)
{
	json_t *o = binding_json(rs, b);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc = -1;

	json_decref(o);
	if (!text) {
		/* the registrar refuses what is not UTF-8: this is memory */
		log_error("store: binding %s cannot be written as JSON", b->id);
		return -1;
	}
	if (txn_add(rs, "HSET " KEY_BINDINGS " %s %s", b->id, text) == 0 &&
	    txn_add(rs, "ZADD " KEY_EXPIRY " %lld %s", (long long)b->expires, b->id) == 0)
		rc = publish(rs, b->id, "put", text);
	free(text);
	return rc;
}

int store_redis_del(struct store_redis *rs, const char *id)
{
	json_t *s = json_string(id);
	char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	int rc = -1;

	json_decref(s);
	if (text && txn_add(rs, "HDEL " KEY_BINDINGS " %s", id) == 0 &&
	    txn_add(rs, "ZREM " KEY_EXPIRY " %s", id) == 0)
		rc = publish(rs, id, "del", text);
	free(text);
	return rc;
}

int store_redis_purge(struct store_redis *rs, int64_t now)
{
	return txn_add(rs, "EVAL %s 2 " KEY_EXPIRY " " KEY_BINDINGS " %lld " PURGE_MAX, purge_lua,
		       (long long)now);
}

static void unlink_pending(struct store_redis *rs, struct pending *p)
{
	struct pending **at = &rs->head, *prev = NULL;

	while (*at && *at != p) {
		prev = *at;
		at = &(*at)->next;
	}
	if (!*at)
		return;
	*at = p->next;
	if (rs->tail == p)
		rs->tail = prev;
	rs->npending--;
}

static void exec_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct pending *p = privdata;
	redisReply *r = reply;
	bool ok = r && r->type == REDIS_REPLY_ARRAY;

	for (size_t i = 0; ok && i < r->elements; i++)
		ok = r->element[i]->type != REDIS_REPLY_ERROR;
	if (r && !ok) {
		log_error("cluster: Redis refused a write: %s",
			  r->type == REDIS_REPLY_ERROR ? r->str : "an error in the transaction");
		publish_void(p->rs); /* its numbers will not come back */
		/* memory holds what Redis refused, and may have ignored a change
		 * of another node for it: read Redis again */
		redis_resync_start(p->rs);
	}
	unlink_pending(p->rs, p);
	if (p->fn)
		p->fn(p->ctx, ok);
	free(p);
}

void store_redis_commit(struct store_redis *rs, store_done_fn *fn, void *ctx)
{
	struct pending *p = NULL;
	bool opened, sent;

	if (!rs->multi) {
		redis_messages_kick(rs->messages);
		fn(ctx, true); /* nothing was written */
		return;
	}
	opened = rs->cmd && rs->cmd_up && (p = calloc(1, sizeof(*p))) &&
		 redisAsyncCommand(rs->cmd, NULL, NULL, "MULTI") == REDIS_OK;
	sent = opened;
	for (size_t i = 0; sent && i < rs->txn_n; i++)
		sent = redisAsyncFormattedCommand(rs->cmd, NULL, NULL, rs->txn[i].cmd,
						  rs->txn[i].len) == REDIS_OK;
	if (sent) {
		p->rs = rs;
		p->fn = fn;
		p->ctx = ctx;
		p->sent_ms = clock_now_ms();
		sent = redisAsyncCommand(rs->cmd, exec_reply, p, "EXEC") == REDIS_OK;
	}
	txn_clear(rs);
	if (!sent) {
		/* a MULTI half sent is dropped with its connection; nothing of it ran */
		if (opened && rs->cmd)
			redisAsyncCommand(rs->cmd, NULL, NULL, "DISCARD");
		free(p);
		publish_void(rs); /* its numbers will not come back */
		redis_messages_kick(rs->messages);
		fn(ctx, false);
		return;
	}
	if (rs->tail)
		rs->tail->next = p;
	else
		rs->head = p;
	rs->tail = p;
	rs->npending++;
	redis_messages_kick(rs->messages); /* what waited for the transaction */
}

void store_redis_rollback(struct store_redis *rs)
{
	if (rs->multi)
		publish_void(rs); /* nothing was sent: its numbers will not come back */
	txn_clear(rs);
	redis_messages_kick(rs->messages);
}

int store_redis_pending(const struct store_redis *rs)
{
	return rs->npending;
}

void store_redis_cancel_pending(struct store_redis *rs)
{
	for (struct pending *p = rs->head; p; p = p->next)
		p->fn = NULL;
}

bool store_redis_writable(const struct store_redis *rs)
{
	return rs->cmd_up;
}

const char *store_redis_node(const struct store_redis *rs)
{
	return rs->node;
}

void store_redis_watch(struct store_redis *rs, store_change_fn *fn, void *ctx)
{
	rs->watch = fn;
	rs->watch_ctx = ctx;
}

/* ---------------------------------------------------------------------- */
/* the load at start (blocking, before the loop runs) */

static redisReply *sync_command(struct store_redis *rs, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	if (!rs->sync)
		return NULL;
	va_start(ap, fmt);
	r = redisvCommand(rs->sync, fmt, ap);
	va_end(ap);
	if (!r)
		log_error("cluster: Redis: %s", rs->sync->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		log_error("cluster: Redis: %s", r->str);
	if (r && r->type == REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

int64_t store_redis_count(struct store_redis *rs)
{
	redisReply *r = sync_command(rs, "HLEN " KEY_BINDINGS);
	int64_t n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return n;
}

/* One HSCAN page: its field/value pairs through fn. Returns 1 when fn stopped. */
static int load_page(redisReply *pairs, int64_t now, store_binding_fn *fn, void *ctx,
		     size_t *bad)
{
	for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
		redisReply *v = pairs->element[i + 1];
		json_t *o = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
		struct store_binding b;
		int stop = 0;

		if (!o || store_redis_binding_of(o, &b) < 0)
			(*bad)++;
		else if (b.expires > now)
			stop = fn(ctx, &b);
		json_decref(o);
		if (stop)
			return 1;
	}
	return 0;
}

int store_redis_load(struct store_redis *rs, int64_t now, store_binding_fn *fn, void *ctx)
{
	char cursor[32] = "0";
	size_t bad = 0;
	int rc = 0;

	do {
		redisReply *r = sync_command(rs, "HSCAN " KEY_BINDINGS " %s COUNT " LOAD_BATCH,
					     cursor);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		rc = load_page(r->element[1], now, fn, ctx, &bad);
		freeReplyObject(r);
	} while (!rc && strcmp(cursor, "0"));
	if (bad)
		log_warn("cluster: %zu binding(s) in Redis could not be read (skipped)", bad);
	/* What other nodes change from now until our subscription is made is
	 * not heard: once it is, one resync pass reads Redis again. */
	rs->need_resync = true;
	return 0; /* the blocking connection goes at the loop's first tick */
}

int store_redis_secret(struct store_redis *rs, const char *name, unsigned char *buf, size_t len)
{
	char hex[2 * 64 + 1];
	redisReply *r;
	int rc = -1;

	if (len > 64 || !rs->sync) {
		log_error("cluster: secret %s asked for after start-up", name);
		return -1;
	}
	if (getrandom(buf, len, 0) != (ssize_t)len)
		return -1;
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", buf[i]);
	/* the first node to ask draws it; every node reads back what won */
	if (!(r = sync_command(rs, "SET sipwake:secret:%s %s NX", name, hex)))
		return -1;
	freeReplyObject(r);
	if (!(r = sync_command(rs, "GET sipwake:secret:%s", name)))
		return -1;
	if (r->type == REDIS_REPLY_STRING && r->len == 2 * len) {
		rc = 0;
		for (size_t i = 0; i < len && rc == 0; i++) {
			unsigned v;
			if (sscanf(r->str + 2 * i, "%2x", &v) != 1)
				rc = -1;
			buf[i] = (unsigned char)v;
		}
	}
	if (rc < 0)
		log_error("cluster: secret %s in Redis is not %zu hex bytes", name, len);
	freeReplyObject(r);
	return rc;
}

static int sync_setup(struct store_redis *rs)
{
	struct timeval tv = {CONNECT_TIMEOUT_S, 0};
	redisReply *r;
	char w[300];

	rs->sync = rs->where.path[0] ? redisConnectUnixWithTimeout(rs->where.path, tv)
				     : redisConnectWithTimeout(rs->where.host, rs->where.port, tv);
	if (!rs->sync || rs->sync->err) {
		log_error("cluster: cannot reach Redis at %s: %s", where_text(rs, w, sizeof(w)),
			  rs->sync ? rs->sync->errstr : "out of memory");
		return -1;
	}
	redisSetTimeout(rs->sync, tv);
	if (rs->where.password[0]) {
		r = rs->where.user[0] ? sync_command(rs, "AUTH %s %s", rs->where.user,
						     rs->where.password)
				      : sync_command(rs, "AUTH %s", rs->where.password);
		if (!r)
			return -1;
		freeReplyObject(r);
	}
	if (rs->where.db) {
		if (!(r = sync_command(rs, "SELECT %d", rs->where.db)))
			return -1;
		freeReplyObject(r);
	}
	return 0;
}

static void declare_stats(void)
{
	stats_family("sipwake_cluster_redis_up", STATS_GAUGE,
		     "1 while this node reaches the cluster's Redis (commands and subscription)");
	stats_family("sipwake_cluster_redis_lost_total", STATS_COUNTER,
		     "times this node lost the cluster's Redis after having reached it");
	stats_family("sipwake_cluster_nodes", STATS_GAUGE,
		     "nodes of the cluster whose heartbeat has not expired, this one included");
	stats_family("sipwake_cluster_takeovers_total", STATS_COUNTER,
		     "dead nodes whose bindings this node took over");
	stats_set(stats_gauge("sipwake_cluster_redis_up", NULL), 0);
	stats_counter("sipwake_cluster_redis_lost_total", NULL);
	stats_counter("sipwake_cluster_takeovers_total", NULL);
}

int store_redis_open(struct store_redis **out, su_root_t *root, const struct config_redis *where,
		     const char *node)
{
	struct store_redis *rs = calloc(1, sizeof(*rs));
	char w[300];

	*out = NULL;
	if (!rs)
		return -1;
	rs->root = root;
	rs->where = *where;
	snprintf(rs->node, sizeof(rs->node), "%s", node);
	/* the messages are put together from pieces jansson encoded */
	if (redis_json_string(node, w, sizeof(w)) < 0 ||
	    snprintf(rs->echo_prefix, sizeof(rs->echo_prefix), "{\"by\":%s,\"n\":", w) >=
		    (int)sizeof(rs->echo_prefix)) {
		free(rs);
		return -1;
	}
	store_redis_set_hop(rs, NULL);
	/* Pub/sub is not per database: the channel names it. */
	snprintf(rs->channel, sizeof(rs->channel), "sipwake:bindings@%d", where->db);
	snprintf(rs->accounts_channel, sizeof(rs->accounts_channel), REDIS_ACCOUNTS_CHANNEL,
		 where->db);
	rs->reported_down = true; /* until both connections are up */
	rs->started = time(NULL);
	declare_stats();
	if (redis_messages_new(&rs->messages, rs) < 0 || sync_setup(rs) < 0 ||
	    !(rs->timer = su_timer_create(su_root_task(root), TICK_MS)) ||
	    su_timer_set_for_ever(rs->timer, tick, (su_timer_arg_t *)rs) < 0) {
		store_redis_close(rs);
		return -1;
	}
	reconnect(rs);
	log_notice("cluster: node %s, bindings in Redis at %s", rs->node,
		   where_text(rs, w, sizeof(w)));
	*out = rs;
	return 0;
}

void store_redis_close(struct store_redis *rs)
{
	if (!rs)
		return;
	if (rs->timer)
		su_timer_destroy(rs->timer);
	/* What was sent last without waiting for an answer (a delivery's lease
	 * let go at shutdown, a forgotten message removed) leaves now, as far
	 * as the socket takes it without blocking. */
	if (rs->cmd && rs->cmd_up) {
		redis_messages_kick(rs->messages);
		redisAsyncHandleWrite(rs->cmd);
	}
	/* Freeing a context calls what waits on it with no reply: commits fail. */
	rs->ever_up = false;
	rs->reported_down = true; /* nothing to log about a close */
	for (int i = 0; i < 2; i++) {
		redisAsyncContext *ac = i ? rs->sub : rs->cmd;

		if (ac) {
			rs->cmd_up = rs->sub_up = false;
			if (i)
				rs->sub = NULL;
			else
				rs->cmd = NULL;
			redisAsyncFree(ac);
		}
	}
	if (rs->sync)
		redisFree(rs->sync);
	redis_messages_free(rs->messages); /* after: the connections' callbacks use it */
	strmap_free(rs->resync_touched);
	txn_clear(rs);
	free(rs->txn);
	redis_order_close(rs);
	strmap_free(rs->take_touched);
	free(rs);
}
