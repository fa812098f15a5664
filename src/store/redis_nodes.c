/* SPDX-License-Identifier: MIT */
/*
 * The nodes of a cluster (SPEC 9): each node announces itself every second
 * with a key that expires (sipwake:node:NAME, PX HEARTBEAT_TTL_MS) and its
 * name in the set sipwake:nodes. A member whose key has expired is dead:
 * the first survivor to take its lock (sipwake:takeover:NAME, SET NX)
 * moves its bindings to itself, a page at a time, in a script that rewrites
 * their "node" and tells the other nodes in one message per page. The
 * bindings then come to the registrar as this node's own (STORE_PUT with
 * node = us): it refreshes them upstream with its own Path from then on.
 */
#include "redis_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/stats.h"

#define HEARTBEAT_MS 1000
#define HEARTBEAT_TTL_MS 4000 /* a node silent this long is dead */
#define TAKEOVER_LOCK_MS 30000 /* a survivor that dies while taking over lets go after this */
#define TAKEOVER_PAGE "500"   /* bindings examined per script run */

/* Every member of KEYS[1] with its heartbeat value (false when expired). */
static const char members_lua[] =
	"local out = {} "
	"for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
	"out[#out + 1] = n "
	"out[#out + 1] = redis.call('GET', 'sipwake:node:' .. n) end "
	"return out";

/*
 * One page of a takeover: bindings of ARGV[1] (dead) in this HSCAN page
 * become ARGV[2]'s (us); the others hear of them on channel ARGV[5].
 * Returns {next cursor, {binding JSON...}}.
 */
static const char takeover_lua[] =
	"local page = redis.call('HSCAN', KEYS[1], ARGV[3], 'COUNT', ARGV[4]) "
	"local taken, ids = {}, {} "
	"for i = 1, #page[2], 2 do "
	"local ok, b = pcall(cjson.decode, page[2][i + 1]) "
	"if ok and type(b) == 'table' and b.node == ARGV[1] then "
	"b.node = ARGV[2] "
	"local s = cjson.encode(b) "
	"redis.call('HSET', KEYS[1], page[2][i], s) "
	"taken[#taken + 1] = s "
	"ids[#ids + 1] = page[2][i] end end "
	"if #ids > 0 then "
	"redis.call('PUBLISH', ARGV[5], cjson.encode({by = ARGV[2], own = ids})) end "
	"return {page[1], taken}";

static struct redis_node *node_find(struct store_redis *rs, const char *name, bool add)
{
	for (int i = 0; i < rs->n_nodes; i++)
		if (!strcmp(rs->nodes[i].name, name))
			return &rs->nodes[i];
	if (!add || rs->n_nodes == REDIS_MAX_NODES)
		return NULL;
	memset(&rs->nodes[rs->n_nodes], 0, sizeof(rs->nodes[0]));
	snprintf(rs->nodes[rs->n_nodes].name, sizeof(rs->nodes[0].name), "%s", name);
	return &rs->nodes[rs->n_nodes++];
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A put from it came lately: it lives, though our last membership check
 * may have come before its first heartbeat (it just started). Its hop is
 * good, it stays in the table and is not judged dead meanwhile.
 */
static bool heard_lately(const struct redis_node *n)
{
	return n->heard_ms && unix_ms() - n->heard_ms < HEARTBEAT_TTL_MS;
}

static void takeover_page(struct store_redis *rs);

static void takeover_done(struct store_redis *rs, const char *why)
{
	struct redis_node *n = node_find(rs, rs->taking, false);

	if (why) {
		log_error("cluster: taking over node %s's bindings stopped: %s (another node, or "
			  "we, will go on once its lock expires)", rs->taking, why);
	} else {
		log_notice("cluster: took over the bindings of node %s", rs->taking);
		stats_count("sipwake_cluster_takeovers_total", NULL);
		if (rs->cmd) {
			redisAsyncCommand(rs->cmd, NULL, NULL, "SREM sipwake:nodes %s", rs->taking);
			redisAsyncCommand(rs->cmd, NULL, NULL, "DEL sipwake:takeover:%s", rs->taking);
		}
	}
	if (n)
		n->taking = false;
	rs->taking[0] = '\0';
	strmap_free(rs->take_touched);
	rs->take_touched = NULL;
}

static void takeover_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;
	redisReply *taken;

	if (!rs->taking[0])
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		takeover_done(rs, r && r->type == REDIS_REPLY_ERROR ? r->str : "Redis went away");
		return;
	}
	taken = r->element[1];
	for (size_t i = 0; i < taken->elements; i++) {
		json_t *o = taken->element[i]->type == REDIS_REPLY_STRING
				    ? json_loadb(taken->element[i]->str, taken->element[i]->len, 0, NULL)
				    : NULL;
		struct store_binding b;

		/* another node's change to it since the takeover began came
		 * after this page (the page took it from the dead node, which
		 * writes nothing): that change is the one Redis holds */
		if (o && store_redis_binding_of(o, &b) == 0 && rs->watch &&
		    !(rs->take_touched && strmap_get(rs->take_touched, b.id)))
			rs->watch(rs->watch_ctx, STORE_PUT, &b, b.id);
		json_decref(o);
	}
	snprintf(rs->take_cursor, sizeof(rs->take_cursor), "%s", r->element[0]->str);
	if (!strcmp(rs->take_cursor, "0"))
		takeover_done(rs, NULL);
	else
		takeover_page(rs);
}

static void takeover_page(struct store_redis *rs)
{
	if (!rs->cmd_up ||
	    redisAsyncCommand(rs->cmd, takeover_reply, NULL,
			      "EVAL %s 1 sipwake:bindings %s %s %s " TAKEOVER_PAGE " %s", takeover_lua,
			      rs->taking, rs->node, rs->take_cursor, rs->channel) != REDIS_OK)
		takeover_done(rs, "Redis went away");
}

static void lock_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;
	struct redis_node *n = node_find(rs, (const char *)privdata, false);

	free(privdata);
	if (!n || !r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") || rs->taking[0])
		return; /* another survivor has it (nil), or we are busy */
	log_notice("cluster: node %s stopped its heartbeat: taking over its bindings", n->name);
	n->taking = true;
	snprintf(rs->taking, sizeof(rs->taking), "%s", n->name);
	snprintf(rs->take_cursor, sizeof(rs->take_cursor), "0");
	strmap_free(rs->take_touched);
	rs->take_touched = strmap_new(); /* without it, a change racing a page may be undone */
	takeover_page(rs);
}

static void try_takeover(struct store_redis *rs, struct redis_node *n)
{
	char *name = strdup(n->name);

	if (!name || redisAsyncCommand(rs->cmd, lock_reply, name,
				       "SET sipwake:takeover:%s %s NX PX %d", n->name, rs->node,
				       TAKEOVER_LOCK_MS) != REDIS_OK)
		free(name);
}

static void members_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply;

	rs->checking = false;
	if (!r || r->type != REDIS_REPLY_ARRAY)
		return;
	for (int i = 0; i < rs->n_nodes; i++)
		rs->nodes[i].alive = false;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		redisReply *name = r->element[i], *v = r->element[i + 1];
		struct redis_node *n;
		const char *hop;
		json_t *o;

		if (name->type != REDIS_REPLY_STRING || !(n = node_find(rs, name->str, true)))
			continue;
		if (v->type != REDIS_REPLY_STRING)
			continue; /* its key expired: dead */
		o = json_loadb(v->str, v->len, 0, NULL);
		n->alive = true;
		n->seen_ms = json_integer_value(json_object_get(o, "seen"));
		n->since = json_integer_value(json_object_get(o, "since"));
		hop = json_string_value(json_object_get(o, "hop"));
		if (hop && hop[0]) /* a first heartbeat may come before the SIP ports */
			snprintf(n->hop, sizeof(n->hop), "%s", hop);
		json_decref(o);
	}
	/* nodes no longer members (taken over and removed) leave the table */
	for (int i = 0; i < rs->n_nodes;) {
		bool member = false;

		for (size_t j = 0; j + 1 < r->elements && !member; j += 2)
			member = r->element[j]->type == REDIS_REPLY_STRING &&
				 !strcmp(r->element[j]->str, rs->nodes[i].name);
		if (member || rs->nodes[i].taking || heard_lately(&rs->nodes[i]))
			i++;
		else
			rs->nodes[i] = rs->nodes[--rs->n_nodes];
	}
	int alive = 0;

	for (int i = 0; i < rs->n_nodes; i++)
		alive += rs->nodes[i].alive;
	stats_set(stats_gauge("sipwake_cluster_nodes", NULL), alive);
	for (int i = 0; i < rs->n_nodes; i++) {
		struct redis_node *n = &rs->nodes[i];

		/* just (re)connected, we cannot tell a dead node from one that is
		 * not back yet after Redis was away: wait a heartbeat's life */
		if (!n->alive && !n->taking && !heard_lately(n) && strcmp(n->name, rs->node) &&
		    !rs->taking[0] &&
		    rs->cmd_up && clock_now_ms() >= rs->judge_after_ms)
			try_takeover(rs, n);
	}
}

void redis_nodes_tick(struct store_redis *rs)
{
	uint64_t now = clock_now_ms();
	json_t *o;
	char *beat;

	if (!rs->cmd_up || now < rs->next_beat_ms)
		return;
	rs->next_beat_ms = now + HEARTBEAT_MS;
	o = json_pack("{s:I,s:I,s:s}", "seen", (json_int_t)unix_ms(), "since",
		      (json_int_t)rs->started, "hop", rs->hop);
	beat = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (beat)
		redisAsyncCommand(rs->cmd, NULL, NULL, "SET sipwake:node:%s %s PX %d", rs->node,
				  beat, HEARTBEAT_TTL_MS);
	free(beat);
	redisAsyncCommand(rs->cmd, NULL, NULL, "SADD sipwake:nodes %s", rs->node);
	if (!rs->checking &&
	    redisAsyncCommand(rs->cmd, members_reply, NULL, "EVAL %s 1 sipwake:nodes",
			      members_lua) == REDIS_OK)
		rs->checking = true;
}

void redis_nodes_own(struct store_redis *rs, const char *by, const char *id)
{
	struct store_binding b = {.id = id, .node = by};

	if (rs->watch && id)
		rs->watch(rs->watch_ctx, STORE_OWNER, &b, id);
}

void redis_nodes_touch(struct store_redis *rs, const char *id)
{
	if (rs->take_touched && id)
		strmap_put(rs->take_touched, id, (void *)rs);
}

void redis_nodes_heard(struct store_redis *rs, const char *name, const char *hop)
{
	struct redis_node *n = strcmp(name, rs->node) ? node_find(rs, name, true) : NULL;

	if (!n)
		return;
	n->heard_ms = unix_ms();
	if (hop && hop[0])
		snprintf(n->hop, sizeof(n->hop), "%s", hop);
}

void store_redis_set_hop(struct store_redis *rs, const char *uri)
{
	snprintf(rs->hop, sizeof(rs->hop), "%s", uri ? uri : "");
	if (redis_json_string(rs->hop, rs->hop_json, sizeof(rs->hop_json)) < 0) {
		log_error("cluster: hop URI %s cannot be announced (not UTF-8, or too long)", rs->hop);
		rs->hop[0] = '\0';
		snprintf(rs->hop_json, sizeof(rs->hop_json), "\"\"");
	}
	rs->next_beat_ms = 0; /* announce it at the next tick */
}

const char *store_redis_node_hop(struct store_redis *rs, const char *name)
{
	struct redis_node *n = node_find(rs, name, false);

	return n && (n->alive || heard_lately(n)) && n->hop[0] ? n->hop : NULL;
}

void store_redis_each_node(struct store_redis *rs, store_node_fn *fn, void *ctx)
{
	int64_t now = unix_ms();

	for (int i = 0; i < rs->n_nodes; i++) {
		const struct redis_node *n = &rs->nodes[i];

		fn(ctx, n->name, !strcmp(n->name, rs->node), n->alive,
		   n->alive && n->seen_ms ? now - n->seen_ms : -1, n->since, n->hop);
	}
}
