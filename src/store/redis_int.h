/* SPDX-License-Identifier: MIT */
/*
 * The Redis side of the store (SPEC 9): a cluster's bindings live in
 * Redis, each node keeps them in memory and learns the others' changes by
 * pub/sub. store.c calls this when the store is attached to a cluster;
 * nothing else includes it.
 *
 * Keys: "sipwake:bindings", a hash of binding id -> JSON (every field of
 * struct store_binding, and "node", the node that wrote it);
 * "sipwake:expiry", a sorted set of id by expiry (what a purge drops).
 * Channel "sipwake:bindings": {"by":NODE,"put":{binding}} or
 * {"by":NODE,"del":ID} for every write, published in the same MULTI/EXEC
 * as the write itself.
 */
#ifndef SIPWAKE_STORE_REDIS_INT_H
#define SIPWAKE_STORE_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/config.h"
#include "sipwake/store.h"

/* Drive ac from root (its ev hooks). 0, or -1 without memory. */
int redis_loop_attach(redisAsyncContext *ac, su_root_t *root);

struct store_redis;

/*
 * Connect to where as node: a blocking connection for the load at start
 * (before the loop runs), and the loop's two (commands, subscription).
 * 0, or -1 with the reason logged (Redis unreachable, AUTH refused).
 */
int store_redis_open(struct store_redis **out, su_root_t *root, const struct config_redis *where,
		     const char *node);
/* Close; commits still waiting are told they failed first. NULL is fine. */
void store_redis_close(struct store_redis *rs);

/* Queue a write in the open MULTI (one is opened); 0, or -1 when Redis is down. */
int store_redis_put(struct store_redis *rs, const struct store_binding *b);
int store_redis_del(struct store_redis *rs, const char *id);
/* Drop bindings expired by now (a bounded number per call); 0 or -1. */
int store_redis_purge(struct store_redis *rs, int64_t now);
/* EXEC what was queued; fn learns whether Redis confirmed it (exactly once). */
void store_redis_commit(struct store_redis *rs, store_done_fn *fn, void *ctx);
/* Abandon what was queued (DISCARD). */
void store_redis_rollback(struct store_redis *rs);
/* Commits sent and not yet confirmed. */
int store_redis_pending(const struct store_redis *rs);
/* Forget the callbacks of those commits (they will not be called). */
void store_redis_cancel_pending(struct store_redis *rs);
bool store_redis_writable(const struct store_redis *rs);
const char *store_redis_node(const struct store_redis *rs);
void store_redis_watch(struct store_redis *rs, store_change_fn *fn, void *ctx);

/* For the load at start, on the blocking connection. */
int store_redis_load(struct store_redis *rs, int64_t now, store_binding_fn *fn, void *ctx);
int64_t store_redis_count(struct store_redis *rs);

#endif
