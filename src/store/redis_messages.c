/* SPDX-License-Identifier: MIT */
/*
 * A cluster's stored messages in Redis (SPEC 4.4, 9; keys in redis_int.h).
 * Every operation is one Lua script, sent with EVALSHA (the scripts are
 * loaded with SCRIPT LOAD at each connection; a NOSCRIPT answer, after a
 * SCRIPT FLUSH, sends the script itself with EVAL and loads them all
 * again, ahead of what is sent later), so that the limits are
 * checked in the same step as the write and a take and its lease go
 * together. Nothing here waits: each request's callback runs when Redis
 * answered, or failed to (connection lost, or no answer within the commit
 * deadline: redis.c then drops the connection, which fails what waits on
 * it). A request made while a store transaction's MULTI is open on the
 * connection would be queued inside it: it waits until the EXEC or DISCARD
 * went out (redis_messages_kick).
 */
#include "redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/strmap.h"

#define KEY_ALL "sipwake:msgs"     /* zset: id by expiry, every message */
#define KEY_AOR "sipwake:msgs:"    /* + AOR: zset of its ids, by id */
#define KEY_MSG "sipwake:msg:"     /* + id: hash of one message */
#define KEY_SEQ "sipwake:msg:seq"  /* the last id given */
#define KEY_LEASE "sipwake:msglease:" /* + AOR: the node delivering its messages */
#define LEASE_MS 30000
#define RENEW_MS 10000             /* a lease held is renewed this often */
#define COUNT_MS 2000              /* the total is read again this often */
#define PURGE_MAX "1000"

/* Drop message ARGV[1] (its hash, its place in the two sets). */
#define DROP_LUA                                                                   \
	"local function drop(id) local k = '" KEY_MSG "' .. id "                   \
	"local aor = redis.call('HGET', k, 'aor') redis.call('DEL', k) "            \
	"if aor then redis.call('ZREM', '" KEY_AOR "' .. aor, id) end "             \
	"redis.call('ZREM', '" KEY_ALL "', id) end "

enum script { SC_ADD, SC_TAKE, SC_RELEASE, SC_RENEW, SC_DEL, SC_ATTEMPT, SC_PURGE, SC_LIST, SC_N };

static const char *const scripts[SC_N] = {
	/* KEYS: the AOR's set, the set of all, the id counter. ARGV: max_per_aor,
	 * max_total, aor, from, to, call_id, content type ("": none), body,
	 * received, expires. Returns the id, -1 (AOR full) or -2 (store full). */
	[SC_ADD] = "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return -1 end "
		   "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -2 end "
		   "local id = redis.call('INCR', KEYS[3]) "
		   "local k = '" KEY_MSG "' .. id "
		   "redis.call('HSET', k, 'aor', ARGV[3], 'from', ARGV[4], 'to', ARGV[5], "
		   "'call_id', ARGV[6], 'ct', ARGV[7], 'body', ARGV[8], 'received', ARGV[9], "
		   "'expires', ARGV[10], 'attempts', 0) "
		   "redis.call('EXPIREAT', k, tonumber(ARGV[10]) + 3600) "
		   "redis.call('ZADD', KEYS[1], id, id) "
		   "redis.call('ZADD', KEYS[2], ARGV[10], id) "
		   "return id",
	/* KEYS: the lease, the AOR's set. ARGV: node, lease ms, now. Returns 0
	 * (another node holds the lease), {} (none left: the lease is let go)
	 * or {id, from, to, call_id, ct, body, received, expires, attempts}. */
	[SC_TAKE] = DROP_LUA
		    "local who = redis.call('GET', KEYS[1]) "
		    "if who and who ~= ARGV[1] then return 0 end "
		    "while true do "
		    "local ids = redis.call('ZRANGE', KEYS[2], 0, 0) "
		    "if #ids == 0 then redis.call('DEL', KEYS[1]) return {} end "
		    "local k = '" KEY_MSG "' .. ids[1] "
		    "local m = redis.call('HMGET', k, 'from', 'to', 'call_id', 'ct', 'body', "
		    "'received', 'expires') "
		    "if not m[1] or not m[7] or tonumber(m[7]) <= tonumber(ARGV[3]) then "
		    "drop(ids[1]) redis.call('ZREM', KEYS[2], ids[1]) else "
		    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
		    "local n = redis.call('HINCRBY', k, 'attempts', 1) "
		    "return {ids[1], m[1], m[2], m[3], m[4], m[5], m[6], m[7], n} end end",
	/* KEYS: the lease. ARGV: node. */
	[SC_RELEASE] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
		       "return redis.call('DEL', KEYS[1]) end return 0",
	/* KEYS: the lease. ARGV: node, lease ms. */
	[SC_RENEW] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
		     "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
	/* ARGV: id. */
	[SC_DEL] = DROP_LUA "drop(ARGV[1]) return 1",
	/* KEYS: the message's hash. */
	[SC_ATTEMPT] = "if redis.call('EXISTS', KEYS[1]) == 1 then "
		       "return redis.call('HINCRBY', KEYS[1], 'attempts', 1) end return 0",
	/* KEYS: the set of all. ARGV: now, most dropped. Returns how many. */
	[SC_PURGE] = DROP_LUA
		     "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], "
		     "'LIMIT', 0, tonumber(ARGV[2])) "
		     "for _, id in ipairs(ids) do drop(id) end return #ids",
	/* KEYS: the AOR's set or the set of all. ARGV: most listed, now. Returns
	 * {count, then per message: id, aor, from, to, call_id, ct, body length,
	 * received, expires, attempts}. Bounded: the first ARGV[1] + 1000 of the
	 * set (by id, or by expiry, which is arrival order for one max_age) are
	 * read, so expired ones not yet purged cost at most 1000 more reads. */
	[SC_LIST] = "local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) + 999) "
		    "table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end) "
		    "local out = {redis.call('ZCARD', KEYS[1])} local n = 0 "
		    "for _, id in ipairs(ids) do if n >= tonumber(ARGV[1]) then break end "
		    "local k = '" KEY_MSG "' .. id "
		    "local m = redis.call('HMGET', k, 'aor', 'from', 'to', 'call_id', 'ct', "
		    "'received', 'expires', 'attempts') "
		    "if m[1] and m[7] and tonumber(m[7]) > tonumber(ARGV[2]) then n = n + 1 "
		    "table.insert(out, id) for i = 1, 5 do table.insert(out, m[i]) end "
		    "table.insert(out, redis.call('HSTRLEN', k, 'body')) "
		    "for i = 6, 8 do table.insert(out, m[i]) end end end "
		    "return out",
};

enum kind { K_ADD, K_TAKE, K_LIST, K_PLAIN };

/* One request: its arguments are kept for a NOSCRIPT's second try. */
struct mreq {
	struct mreq *next, *prev;
	struct redis_messages *rm;
	enum kind kind;
	enum script script;
	bool sent;       /* on the wire (else waiting for a MULTI to close) */
	bool forgotten;  /* its callbacks are not called */
	bool drop_added; /* forgotten while being added: remove it again */
	uint64_t since_ms;
	store_added_fn *added;
	store_taken_fn *taken;
	store_message_fn *each;
	store_listed_fn *listed;
	void *ctx;
	char aor[256];   /* a take's: the lease it asks for */
	int argc;
	const char **argv;
	size_t *argvlen;
};

struct redis_messages {
	struct store_redis *rs;
	char sha[SC_N][41];
	struct mreq *head, *tail;
	struct strmap *leases; /* AORs whose lease this node holds (value: the map itself) */
	uint64_t next_renew_ms, next_count_ms;
	int total;             /* every stored message, as last read (-1: not yet) */
	bool counting;
	bool reload;           /* the scripts are to be loaded again once no MULTI is open */
};

/* ---------------------------------------------------------------------- */
/* requests */

static void unlink_req(struct redis_messages *rm, struct mreq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		rm->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		rm->tail = q->prev;
	q->next = q->prev = NULL;
}

/*
 * A request for script with n arguments (KEYS and ARGV, numkeys first
 * among them, copied), or NULL without memory.
 */
static struct mreq *req_new(struct redis_messages *rm, enum kind kind, enum script sc, int n,
			    const char *const *args, const size_t *lens)
{
	size_t size = sizeof(struct mreq) + (size_t)(n + 2) * (sizeof(char *) + sizeof(size_t));
	struct mreq *q;
	char *p;

	for (int i = 0; i < n; i++)
		size += lens[i] + 1;
	if (!(q = calloc(1, size)))
		return NULL;
	q->rm = rm;
	q->kind = kind;
	q->script = sc;
	q->argc = n + 2;
	q->argv = (const char **)(q + 1);
	q->argvlen = (size_t *)(q->argv + n + 2);
	p = (char *)(q->argvlen + n + 2);
	q->argv[0] = "EVALSHA";
	q->argvlen[0] = 7;
	q->argv[1] = rm->sha[sc];
	q->argvlen[1] = 40;
	for (int i = 0; i < n; i++) {
		memcpy(p, args[i], lens[i]);
		p[lens[i]] = '\0';
		q->argv[i + 2] = p;
		q->argvlen[i + 2] = lens[i];
		p += lens[i] + 1;
	}
	return q;
}

static void lease_gone(struct redis_messages *rm, const char *aor)
{
	strmap_del(rm->leases, aor);
}

/* The request ended without an answer: its callback hears of a failure. */
static void req_fail(struct mreq *q)
{
	struct redis_messages *rm = q->rm;

	unlink_req(rm, q);
	if (q->kind == K_TAKE)
		lease_gone(rm, q->aor); /* not known to be ours: it expires anyway */
	if (!q->forgotten) {
		switch (q->kind) {
		case K_ADD:
			q->added(q->ctx, STORE_FAILED, 0);
			break;
		case K_TAKE:
			q->taken(q->ctx, NULL);
			break;
		case K_LIST:
			q->listed(q->ctx, -1);
			break;
		case K_PLAIN:
			break;
		}
	}
	free(q);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata);
static void load_scripts(struct redis_messages *rm, redisAsyncContext *ac);

/* Send q, or keep it until the open MULTI is closed; a failure fails it. */
static void req_send(struct mreq *q)
{
	struct redis_messages *rm = q->rm;
	struct store_redis *rs = rm->rs;

	if (!q->next && !q->prev && rm->head != q) { /* new: at the end of the line */
		q->prev = rm->tail;
		if (rm->tail)
			rm->tail->next = q;
		else
			rm->head = q;
		rm->tail = q;
		q->since_ms = clock_now_ms();
	}
	if (!rs->cmd_up || !rs->cmd) {
		req_fail(q);
		return;
	}
	if (rs->multi)
		return; /* redis_messages_kick sends it */
	q->sent = true;
	if (redisAsyncCommandArgv(rs->cmd, reply_cb, q, q->argc, q->argv, q->argvlen) != REDIS_OK)
		req_fail(q);
}

void redis_messages_kick(struct redis_messages *rm)
{
	struct mreq *q, *next;

	if (!rm || rm->rs->multi)
		return;
	if (rm->reload && rm->rs->cmd_up) {
		rm->reload = false;
		load_scripts(rm, rm->rs->cmd);
	}
	for (q = rm->head; q; q = next) {
		next = q->next;
		if (!q->sent)
			req_send(q);
	}
}

static void take_answer(struct mreq *q, redisReply *r)
{
	struct store_message m = {.aor = q->aor};
	redisReply **e;
	char *body;

	if (r->type == REDIS_REPLY_INTEGER || (r->type == REDIS_REPLY_ARRAY && r->elements == 0)) {
		if (!q->forgotten)
			q->taken(q->ctx, NULL); /* another node delivers, or none left */
		return;
	}
	e = r->element;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 9 || e[0]->type != REDIS_REPLY_STRING ||
	    e[1]->type != REDIS_REPLY_STRING || e[2]->type != REDIS_REPLY_STRING ||
	    e[4]->type != REDIS_REPLY_STRING || e[5]->type != REDIS_REPLY_STRING ||
	    e[6]->type != REDIS_REPLY_STRING || e[7]->type != REDIS_REPLY_STRING ||
	    e[8]->type != REDIS_REPLY_INTEGER) {
		log_error("cluster: a stored message of %s in Redis cannot be read", q->aor);
		if (!q->forgotten)
			q->taken(q->ctx, NULL);
		return;
	}
	strmap_put(q->rm->leases, q->aor, q->rm->leases);
	m.id = strtoll(e[0]->str, NULL, 10);
	m.from = e[1]->str;
	m.to = e[2]->str;
	m.call_id = e[3]->type == REDIS_REPLY_STRING ? e[3]->str : NULL;
	m.content_type = e[4]->len ? e[4]->str : NULL;
	body = e[5]->str;
	m.body = body ? body : "";
	m.body_len = e[5]->len;
	m.received = strtoll(e[6]->str, NULL, 10);
	m.expires = strtoll(e[7]->str, NULL, 10);
	m.attempts = (int)e[8]->integer;
	if (!q->forgotten)
		q->taken(q->ctx, &m);
	else
		redis_messages_release(q->rm, q->aor); /* nobody delivers it now */
}

static const char *str_of(const redisReply *e)
{
	return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

static int64_t int_of(const redisReply *e)
{
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	return e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

static void list_answer(struct mreq *q, redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		q->listed(q->ctx, -1);
		return;
	}
	for (size_t i = 1; i + 10 <= r->elements; i += 10) {
		redisReply **e = r->element + i;
		struct store_message m = {
			.id = int_of(e[0]),
			.aor = str_of(e[1]),
			.from = str_of(e[2]),
			.to = str_of(e[3]),
			.call_id = str_of(e[4]),
			.content_type = str_of(e[5]) && e[5]->len ? e[5]->str : NULL,
			.body = NULL,
			.body_len = (size_t)int_of(e[6]),
			.received = int_of(e[7]),
			.expires = int_of(e[8]),
			.attempts = (int)int_of(e[9]),
		};
		if (q->each(q->ctx, &m) != 0)
			break;
	}
	q->listed(q->ctx, (int)r->element[0]->integer);
}

static void plain_del(struct redis_messages *rm, int64_t id);

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct mreq *q = privdata;
	struct redis_messages *rm = q->rm;
	redisReply *r = reply;

	if (!r) {
		req_fail(q);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8) &&
	    !strcmp(q->argv[0], "EVALSHA")) {
		/*
		 * The script cache was flushed: this request goes again as the
		 * script itself, and every script is loaded again before
		 * anything sent later, so that later requests cannot overtake
		 * the ones retried (a delete, then the next take).
		 */
		if (rm->rs->multi)
			rm->reload = true;
		else if (rm->rs->cmd == ac && rm->rs->cmd_up)
			load_scripts(rm, ac);
		q->argv[0] = "EVAL";
		q->argvlen[0] = 4;
		q->argv[1] = scripts[q->script];
		q->argvlen[1] = strlen(scripts[q->script]);
		q->sent = false;
		req_send(q);
		return;
	}
	unlink_req(rm, q);
	if (r->type == REDIS_REPLY_ERROR) {
		log_error("cluster: Redis refused a stored-message request: %s", r->str);
		if (q->kind == K_TAKE)
			lease_gone(rm, q->aor);
		/* the callbacks hear of a failure */
		q->next = q->prev = NULL;
		if (!q->forgotten && q->kind == K_ADD)
			q->added(q->ctx, STORE_FAILED, 0);
		else if (!q->forgotten && q->kind == K_TAKE)
			q->taken(q->ctx, NULL);
		else if (!q->forgotten && q->kind == K_LIST)
			q->listed(q->ctx, -1);
		free(q);
		return;
	}
	switch (q->kind) {
	case K_ADD: {
		int64_t id = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;

		if (q->drop_added && id > 0)
			plain_del(rm, id); /* its sender was never told it is kept */
		else if (!q->forgotten)
			q->added(q->ctx, id > 0 ? STORE_ADDED : id == -1 ? STORE_AOR_FULL
						: id == -2 ? STORE_FULL : STORE_FAILED, id);
		if (id > 0 && rm->total >= 0)
			rm->total++;
		break;
	}
	case K_TAKE:
		if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
			lease_gone(rm, q->aor);
		take_answer(q, r);
		break;
	case K_LIST:
		if (!q->forgotten)
			list_answer(q, r);
		break;
	case K_PLAIN:
		break;
	}
	free(q);
}

/* ---------------------------------------------------------------------- */
/* the operations */

static void send_plain(struct redis_messages *rm, enum script sc, int n, const char *const *args)
{
	size_t lens[4];
	struct mreq *q;

	for (int i = 0; i < n; i++)
		lens[i] = strlen(args[i]);
	if ((q = req_new(rm, K_PLAIN, sc, n, args, lens)))
		req_send(q);
	else
		log_error("cluster: out of memory for a Redis request");
}

static void plain_del(struct redis_messages *rm, int64_t id)
{
	char ids[24];
	const char *args[2] = {"0", ids};

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	send_plain(rm, SC_DEL, 2, args);
}

void redis_messages_add(struct redis_messages *rm, const struct store_message *m,
			int max_per_aor, int max_total, store_added_fn *fn, void *ctx)
{
	char key[300], maxa[16], maxt[16], rec[24], exp[24];
	const char *args[14] = {"3", key, KEY_ALL, KEY_SEQ, maxa, maxt, m->aor, m->from, m->to,
				m->call_id ? m->call_id : "",
				m->content_type ? m->content_type : "", m->body ? m->body : "", rec,
				exp};
	size_t lens[14];
	struct mreq *q;

	snprintf(key, sizeof(key), KEY_AOR "%s", m->aor);
	snprintf(maxa, sizeof(maxa), "%d", max_per_aor);
	snprintf(maxt, sizeof(maxt), "%d", max_total);
	snprintf(rec, sizeof(rec), "%lld", (long long)m->received);
	snprintf(exp, sizeof(exp), "%lld", (long long)m->expires);
	for (int i = 0; i < 14; i++)
		lens[i] = i == 11 ? m->body_len : strlen(args[i]); /* the body, bytes as they are */
	if (!(q = req_new(rm, K_ADD, SC_ADD, 14, args, lens))) {
		fn(ctx, STORE_FAILED, 0);
		return;
	}
	q->added = fn;
	q->ctx = ctx;
	req_send(q);
}

void redis_messages_take(struct redis_messages *rm, const char *aor, int64_t now,
			 store_taken_fn *fn, void *ctx)
{
	char lease[300], set[300], ms[16], nows[24];
	const char *args[6] = {"2", lease, set, rm->rs->node, ms, nows};
	size_t lens[6];
	struct mreq *q;

	snprintf(lease, sizeof(lease), KEY_LEASE "%s", aor);
	snprintf(set, sizeof(set), KEY_AOR "%s", aor);
	snprintf(ms, sizeof(ms), "%d", LEASE_MS);
	snprintf(nows, sizeof(nows), "%lld", (long long)now);
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(args[i]);
	if (!(q = req_new(rm, K_TAKE, SC_TAKE, 6, args, lens))) {
		fn(ctx, NULL);
		return;
	}
	snprintf(q->aor, sizeof(q->aor), "%s", aor);
	q->taken = fn;
	q->ctx = ctx;
	req_send(q);
}

void redis_messages_release(struct redis_messages *rm, const char *aor)
{
	char lease[300];
	const char *args[3] = {"1", lease, rm->rs->node};

	if (!strmap_get(rm->leases, aor))
		return; /* not ours (or let go by the take that found none) */
	lease_gone(rm, aor);
	snprintf(lease, sizeof(lease), KEY_LEASE "%s", aor);
	send_plain(rm, SC_RELEASE, 3, args);
}

void redis_messages_list(struct redis_messages *rm, const char *aor, int64_t now, int max,
			 store_message_fn *each, store_listed_fn *done, void *ctx)
{
	char set[300], maxs[16], nows[24];
	const char *args[4] = {"1", set, maxs, nows};
	size_t lens[4];
	struct mreq *q;

	snprintf(set, sizeof(set), "%s%s", aor ? KEY_AOR : KEY_ALL, aor ? aor : "");
	snprintf(maxs, sizeof(maxs), "%d", max);
	snprintf(nows, sizeof(nows), "%lld", (long long)now);
	for (int i = 0; i < 4; i++)
		lens[i] = strlen(args[i]);
	if (!(q = req_new(rm, K_LIST, SC_LIST, 4, args, lens))) {
		done(ctx, -1);
		return;
	}
	q->each = each;
	q->listed = done;
	q->ctx = ctx;
	req_send(q);
}

int redis_messages_del(struct redis_messages *rm, int64_t id)
{
	if (!rm->rs->cmd_up) {
		log_error("cluster: stored message %lld not removed from Redis (unreachable): "
			  "it may be delivered again", (long long)id);
		return -1;
	}
	plain_del(rm, id);
	if (rm->total > 0)
		rm->total--;
	return 0;
}

int redis_messages_attempt(struct redis_messages *rm, int64_t id)
{
	char key[48];
	const char *args[2] = {"1", key};

	if (!rm->rs->cmd_up)
		return -1;
	snprintf(key, sizeof(key), KEY_MSG "%lld", (long long)id);
	send_plain(rm, SC_ATTEMPT, 2, args);
	return 0;
}

int redis_messages_purge(struct redis_messages *rm, int64_t now)
{
	char nows[24];
	const char *args[4] = {"1", KEY_ALL, nows, PURGE_MAX};

	if (!rm->rs->cmd_up)
		return -1;
	snprintf(nows, sizeof(nows), "%lld", (long long)now);
	send_plain(rm, SC_PURGE, 4, args);
	return 0;
}

int redis_messages_count(const struct redis_messages *rm)
{
	return rm->total;
}

void redis_messages_forget(struct redis_messages *rm, void *ctx)
{
	for (struct mreq *q = rm->head; q; q = q->next)
		if (q->ctx == ctx && q->kind != K_PLAIN) {
			q->forgotten = true;
			q->drop_added = q->kind == K_ADD;
		}
}

/* ---------------------------------------------------------------------- */
/* connection, tick */

static void script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply *r = reply;
	const char *sha = privdata;

	if (r && (r->type != REDIS_REPLY_STRING || strcmp(r->str, sha) != 0))
		log_error("cluster: Redis did not load a stored-message script: %s",
			  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
}

static void load_scripts(struct redis_messages *rm, redisAsyncContext *ac)
{
	for (int i = 0; i < SC_N; i++)
		redisAsyncCommand(ac, script_loaded, rm->sha[i], "SCRIPT LOAD %s", scripts[i]);
}

void redis_messages_connected(struct redis_messages *rm, redisAsyncContext *ac)
{
	rm->reload = false;
	load_scripts(rm, ac);
}

static void counted(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_messages *rm = privdata;
	redisReply *r = reply;

	rm->counting = false;
	if (r && r->type == REDIS_REPLY_INTEGER)
		rm->total = (int)r->integer;
}

static void renew_one(void *ctx, const char *aor, void *value)
{
	struct redis_messages *rm = ctx;
	char lease[300], ms[16];
	const char *args[4] = {"1", lease, rm->rs->node, ms};

	snprintf(lease, sizeof(lease), KEY_LEASE "%s", aor);
	snprintf(ms, sizeof(ms), "%d", LEASE_MS);
	send_plain(rm, SC_RENEW, 4, args);
}

bool redis_messages_tick(struct redis_messages *rm, uint64_t deadline_ms)
{
	struct store_redis *rs = rm->rs;
	uint64_t now = clock_now_ms();
	struct mreq *q, *next;
	bool late = false;

	for (q = rm->head; q; q = next) {
		next = q->next;
		if (now - q->since_ms <= deadline_ms)
			continue;
		if (q->sent)
			late = true; /* the caller drops the connection: it fails */
		else
			req_fail(q);
	}
	if (!rs->cmd_up || rs->multi)
		return late;
	if (now >= rm->next_renew_ms) {
		rm->next_renew_ms = now + RENEW_MS;
		strmap_each(rm->leases, renew_one, rm);
	}
	if (now >= rm->next_count_ms && !rm->counting &&
	    redisAsyncCommand(rs->cmd, counted, rm, "ZCARD " KEY_ALL) == REDIS_OK) {
		rm->next_count_ms = now + COUNT_MS;
		rm->counting = true;
	}
	return late;
}

int redis_messages_new(struct redis_messages **out, struct store_redis *rs)
{
	struct redis_messages *rm = calloc(1, sizeof(*rm));

	*out = NULL;
	if (!rm || !(rm->leases = strmap_new())) {
		free(rm);
		return -1;
	}
	rm->rs = rs;
	rm->total = -1;
	for (int i = 0; i < SC_N; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned len = 0;

		if (!EVP_Digest(scripts[i], strlen(scripts[i]), md, &len, EVP_sha1(), NULL) ||
		    len != 20) {
			strmap_free(rm->leases);
			free(rm);
			return -1;
		}
		for (unsigned j = 0; j < len; j++)
			snprintf(rm->sha[i] + 2 * j, 3, "%02x", md[j]);
	}
	*out = rm;
	return 0;
}

void redis_messages_free(struct redis_messages *rm)
{
	if (!rm)
		return;
	while (rm->head) /* never sent: the connections are gone */
		req_fail(rm->head);
	strmap_free(rm->leases);
	free(rm);
}
