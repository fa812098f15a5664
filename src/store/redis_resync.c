/* SPDX-License-Identifier: MIT */
/*
 * One pass over Redis' bindings after a node lost Redis and got it back
 * (SPEC 9: "a node that (re)connects resynchronises in one pass"), after
 * Redis refused one of our writes, and once at start (the changes made
 * while the node loaded, before its subscription was made): what
 * others wrote or deleted while we could not hear it reaches memory. The
 * pass reads pages with HSCAN on the command connection while changes keep
 * arriving on the subscription; a binding a change named during the pass
 * is newer in memory than any page can be, so pages skip it. The
 * registrar hears STORE_RESYNC_BEGIN, the bindings as STORE_RESYNC_PUT, then
 * STORE_RESYNC_END, when what it was not told about is out of date.
 */
#include "redis_int.h"

#include <string.h>
#include <time.h>

#include "sipwake/log.h"
#include "sipwake/strmap.h"

#define RESYNC_PAGE "250" /* a page is parsed in one loop turn: keep it short */

static void resync_page(struct store_redis *rs);

static void resync_end(struct store_redis *rs, bool done)
{
	strmap_free(rs->resync_touched);
	rs->resync_touched = NULL;
	if (!done) {
		log_warn("cluster: resynchronising with Redis stopped (the connection went); it starts "
			 "again when Redis is back");
		return;
	}
	rs->need_resync = false;
	log_notice("cluster: resynchronised with Redis (%zu binding(s) read)", rs->resync_seen);
	if (rs->watch)
		rs->watch(rs->watch_ctx, rs->data_lost ? STORE_RESYNC_REBUILD : STORE_RESYNC_END,
			  NULL, NULL);
	rs->data_lost = false;
}

static void resync_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_redis *rs = ac->data;
	redisReply *r = reply, *pairs;
	int64_t now = time(NULL);

	if (!rs->resync_touched)
		return;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		resync_end(rs, false);
		return;
	}
	pairs = r->element[1];
	for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
		redisReply *k = pairs->element[i], *v = pairs->element[i + 1];
		json_t *o;
		struct store_binding b;

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    strmap_get(rs->resync_touched, k->str))
			continue;
		o = json_loadb(v->str, v->len, 0, NULL);
		if (o && store_redis_binding_of(o, &b) == 0 && b.expires > now && rs->watch) {
			rs->resync_seen++;
			rs->watch(rs->watch_ctx, STORE_RESYNC_PUT, &b, b.id);
		}
		json_decref(o);
	}
	snprintf(rs->resync_cursor, sizeof(rs->resync_cursor), "%s", r->element[0]->str);
	if (!strcmp(rs->resync_cursor, "0"))
		resync_end(rs, true);
	else
		resync_page(rs);
}

static void resync_page(struct store_redis *rs)
{
	if (!rs->cmd_up || redisAsyncCommand(rs->cmd, resync_reply, NULL,
					     "HSCAN sipwake:bindings %s COUNT " RESYNC_PAGE,
					     rs->resync_cursor) != REDIS_OK)
		resync_end(rs, false);
}

void redis_resync_start(struct store_redis *rs)
{
	if (rs->resync_touched || !(rs->resync_touched = strmap_new()))
		return;
	log_info("cluster: resynchronising with Redis");
	rs->resync_seen = 0;
	snprintf(rs->resync_cursor, sizeof(rs->resync_cursor), "0");
	if (rs->watch)
		rs->watch(rs->watch_ctx, STORE_RESYNC_BEGIN, NULL, NULL);
	resync_page(rs);
}

void redis_resync_touch(struct store_redis *rs, const char *id)
{
	if (rs->resync_touched && id)
		strmap_put(rs->resync_touched, id, (void *)rs);
}
