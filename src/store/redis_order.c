/* SPDX-License-Identifier: MIT */
/*
 * The order of a cluster's changes. Redis runs the nodes' transactions
 * one after the other and delivers what they PUBLISH in that order, to
 * every subscriber, the writer included. A node applies its own writes to
 * memory at once, before Redis ran them; so when another node's change to
 * a binding arrives while one of ours to that binding has not come back on
 * the channel yet, Redis ran theirs first and ours is what Redis holds:
 * theirs is stale here and is ignored. Once ours has come back, anything
 * later on the channel is newer and applies. Two nodes writing one binding
 * at the same moment thus end with what Redis holds, on both.
 *
 * Each write we publish carries our sequence number n ({"by":NODE,"n":N,
 * ...}, see redis.c); `unheard` maps a binding id to the number of our
 * last write to it, until the channel brought back that number or a later
 * one.
 */
#include "redis_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/log.h"

uint64_t redis_order_written(struct store_redis *rs, const char *id)
{
	uint64_t n = ++rs->wseq;

	if (!rs->unheard)
		rs->unheard = strmap_new();
	/* without memory we cannot tell: the change applies as before */
	if (rs->unheard && strmap_put(rs->unheard, id, (void *)(uintptr_t)n) < 0)
		log_warn("cluster: out of memory tracking the write of %s", id);
	return n;
}

void redis_order_heard(struct store_redis *rs, uint64_t n)
{
	if (n > rs->echoed && n <= rs->wseq)
		rs->echoed = n;
}

bool redis_order_stale(struct store_redis *rs, const char *id)
{
	void *v = rs->unheard && id ? strmap_get(rs->unheard, id) : NULL;

	if (!v)
		return false;
	if ((uint64_t)(uintptr_t)v > rs->echoed)
		return true;
	strmap_del(rs->unheard, id);
	return false;
}

static bool heard(void *ctx, const char *key, void *value)
{
	const struct store_redis *rs = ctx;

	(void)key;
	return (uint64_t)(uintptr_t)value <= rs->echoed;
}

void redis_order_sweep(struct store_redis *rs)
{
	if (rs->unheard && strmap_count(rs->unheard))
		strmap_remove_if(rs->unheard, heard, rs);
}

void redis_order_forget(struct store_redis *rs)
{
	rs->echoed = rs->wseq;
	redis_order_sweep(rs);
}

void redis_order_close(struct store_redis *rs)
{
	strmap_free(rs->unheard);
	rs->unheard = NULL;
}
