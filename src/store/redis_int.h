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
 * Channel "sipwake:bindings@DB": {"by":NODE,"n":N,"hop":URI,"put":{binding}} or
 * {"by":NODE,"n":N,"del":ID} for every write, published in the same
 * MULTI/EXEC as the write itself (N: the writer's sequence number, see
 * redis_order.c); {"by":NODE,"own":[ID...]} for a takeover;
 * {"by":NODE,"n":N} alone after a write that did not happen.
 *
 * Stored messages (redis_messages.c): "sipwake:msg:ID", a hash of one
 * message (aor, from, to, call_id, ct, body as its bytes, received,
 * expires, attempts), IDs drawn from "sipwake:msg:seq";
 * "sipwake:msgs:AOR", a sorted set of the AOR's IDs (oldest first);
 * "sipwake:msgs", a sorted set of every ID by expiry (the total, the
 * purge); "sipwake:msglease:AOR", the node delivering the AOR's messages
 * (SET PX, about 30 s, renewed while it delivers).
 */
#ifndef SIPWAKE_STORE_REDIS_INT_H
#define SIPWAKE_STORE_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <jansson.h>
#include <hiredis/hiredis.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/config.h"
#include "sipwake/store.h"
#include "sipwake/strmap.h"

/* Drive ac from root (its ev hooks). 0, or -1 without memory. */
int redis_loop_attach(redisAsyncContext *ac, su_root_t *root);

/* The node table (redis_nodes.c): every node that announced itself. */
#define REDIS_MAX_NODES 64

struct redis_node {
	char name[64];
	int64_t seen_ms;  /* its last heartbeat, unix ms (0: none, the key expired) */
	int64_t since;    /* when it started, unix s */
	int64_t heard_ms; /* its last put on the channel, unix ms (0: none) */
	char hop[256];    /* the SIP URI other nodes hand its phones' requests to */
	bool alive;
	bool taking;      /* we hold its takeover lock and move its bindings */
};

/* A commit waiting for its EXEC reply; replies come in order. */
struct pending {
	struct pending *next;
	struct store_redis *rs;
	store_done_fn *fn; /* NULL once cancelled */
	void *ctx;
	uint64_t sent_ms;
};

struct store_redis {
	su_root_t *root;
	struct config_redis where;
	char node[64];
	char channel[64];
	char echo_prefix[96];   /* {"by":"NODE","n": -- what our writes begin with */
	redisContext *sync;     /* start-up's (load, accounts, secrets), until the loop runs */
	redisAsyncContext *cmd; /* writes; NULL while reconnecting */
	redisAsyncContext *sub; /* SUBSCRIBE channel */
	bool cmd_up, sub_up;    /* connected and set up (AUTH, SELECT, SUBSCRIBE) */
	bool reported_down;     /* the state last logged */
	bool ever_up;           /* the first connection is logged as such */
	bool multi;             /* a store transaction is being built (txn) */
	struct txn_cmd {
		char *cmd;      /* formatted (redisFormatCommand) */
		size_t len;
	} *txn;                 /* its commands, sent with MULTI/EXEC at the commit */
	size_t txn_n, txn_cap;
	struct pending *head, *tail;
	int npending;
	su_timer_t *timer;
	store_change_fn *watch;
	void *watch_ctx;
	/* redis_nodes.c */
	int64_t started;          /* unix s */
	uint64_t next_beat_ms;    /* monotonic: next heartbeat and membership check */
	bool checking;            /* a membership check is in flight */
	struct redis_node nodes[REDIS_MAX_NODES];
	int n_nodes;
	char take_cursor[32];     /* the takeover's HSCAN cursor */
	char taking[64];          /* the node whose bindings we take over, "" = none */
	char hop[256];            /* our own hop URI, "" until the SIP ports are bound */
	char hop_json[520];       /* the same as a JSON string */
	/* redis_resync.c */
	bool need_resync;         /* Redis was lost after we had it: read it all again */
	struct strmap *resync_touched; /* ids changes named during the pass; NULL = no pass */
	char resync_cursor[32];
	size_t resync_seen;
	char epoch[40];           /* sipwake:epoch as last read: a new one means Redis lost its data */
	bool data_lost;           /* ... and the resync then writes our bindings back */
	uint64_t judge_after_ms;  /* monotonic: no node is judged dead before (just reconnected) */
	/* redis_order.c */
	uint64_t wseq;            /* our last write's sequence number */
	uint64_t echoed;          /* the last of ours the channel brought back */
	struct strmap *unheard;   /* id -> (uintptr_t) number of our last write to it */
	struct strmap *take_touched; /* ids others changed while we take a node over */
	/* redis_accounts.c: the accounts' channel, subscribed with ours */
	char accounts_channel[64];
	struct redis_accounts *accounts;
	struct redis_messages *messages; /* redis_messages.c */
};


/* Log the Redis state once per change (redis.c). */
void store_redis_report(struct store_redis *rs, const char *why);

/*
 * redis_nodes.c, from redis.c's tick: heartbeat this node, check the
 * others', take over a dead node's bindings. And the message handler for
 * "own" (bindings another node took over).
 */
void redis_nodes_tick(struct store_redis *rs);
void redis_nodes_own(struct store_redis *rs, const char *by, const char *id);
/* A put from node name, which announced hop in it: it lives, reachable there. */
void redis_nodes_heard(struct store_redis *rs, const char *name, const char *hop);
/* A change another node made to id while we take a node over. */
void redis_nodes_touch(struct store_redis *rs, const char *id);

/*
 * redis_order.c: our write to id gets its sequence number (returned);
 * the channel brought back number n; whether another node's change to id
 * is older than our write to it (and is to be ignored); forget what is
 * heard (tick), everything (the channel's echoes were lost: a resync
 * follows), and free.
 */
uint64_t redis_order_written(struct store_redis *rs, const char *id);
void redis_order_heard(struct store_redis *rs, uint64_t n);
bool redis_order_stale(struct store_redis *rs, const char *id);
void redis_order_sweep(struct store_redis *rs);
void redis_order_forget(struct store_redis *rs);
void redis_order_close(struct store_redis *rs);

/* redis_resync.c: the pass after Redis came back; a change heard meanwhile. */
void redis_resync_start(struct store_redis *rs);
void redis_resync_touch(struct store_redis *rs, const char *id);

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

/* s as a JSON string (quoted, escaped by jansson) in buf: 0, or -1 (too long, not UTF-8). */
int redis_json_string(const char *s, char *buf, size_t len);
/* A binding from its JSON (strings borrowed from o): 0, or -1 when it is none. */
int store_redis_binding_of(json_t *o, struct store_binding *b);
void store_redis_each_node(struct store_redis *rs, store_node_fn *fn, void *ctx);
void store_redis_set_hop(struct store_redis *rs, const char *uri);
/* The hop URI of a live node, or NULL. */
const char *store_redis_node_hop(struct store_redis *rs, const char *name);

/* For the load at start, on the blocking connection (and the secrets, until the loop runs). */
int store_redis_secret(struct store_redis *rs, const char *name, unsigned char *buf, size_t len);
int store_redis_load(struct store_redis *rs, int64_t now, store_binding_fn *fn, void *ctx);
int64_t store_redis_count(struct store_redis *rs);

/*
 * Accounts (redis_accounts.c). "sipwake:accounts" is a hash of
 * AOR -> JSON of struct store_account; every change is published on
 * REDIS_ACCOUNTS_CHANNEL (of the database) as {"by":WHO,"put":{account}}
 * or {"by":WHO,"del":AOR}, in the same script as the write; and
 * {"by":WHO,"nonce":NONCE,"nc":N} when a node accepted a digest nonce at
 * count N.
 */
#define REDIS_ACCOUNTS_CHANNEL "sipwake:accounts@%d"
struct redis_accounts;
/*
 * A node's accounts: every one in memory, read on rs->sync (before the
 * loop runs) and kept current from the channel. Sets rs->accounts. 0 or -1.
 */
int redis_accounts_attach(struct redis_accounts **out, struct store_redis *rs);
/* A tool's: a blocking connection of its own to where, no copy in memory. */
int redis_accounts_connect(struct redis_accounts **out, const struct config_redis *where);
/* After store_redis_close() (its connections' callbacks may still use ra). NULL is fine. */
void redis_accounts_free(struct redis_accounts *ra);
/* As store_account_put/get/list/del. */
int redis_accounts_put(struct redis_accounts *ra, const struct store_account *a);
int redis_accounts_get(struct redis_accounts *ra, const char *aor, store_account_fn *fn, void *ctx);
int redis_accounts_list(struct redis_accounts *ra, const char *aor, store_account_fn *fn,
			void *ctx);
int redis_accounts_del(struct redis_accounts *ra, const char *aor);
/* As store_nonce_used() and store_watch_nonces(). */
void redis_accounts_nonce_used(struct redis_accounts *ra, const char *nonce, uint32_t nc);
void redis_accounts_watch_nonces(struct redis_accounts *ra, store_nonce_fn *fn, void *ctx);
/* From redis.c's subscription: it is (again) subscribed; a message on the channel. */
void redis_accounts_subscribed(struct redis_accounts *ra);
void redis_accounts_message(struct redis_accounts *ra, const char *text, size_t len);

/*
 * Stored messages (redis_messages.c): as store_message_*_then() and the
 * others in store.h. kick sends what waited for a MULTI to close; tick
 * (from redis.c's) fails requests kept unsent past deadline_ms, renews
 * leases, reads the total, and says whether one sent is past it (the
 * connection is then dropped); connected loads the scripts on a new
 * command connection. free after store_redis_close's connections.
 */
struct redis_messages;
int redis_messages_new(struct redis_messages **out, struct store_redis *rs);
void redis_messages_free(struct redis_messages *rm);
void redis_messages_connected(struct redis_messages *rm, redisAsyncContext *ac);
void redis_messages_kick(struct redis_messages *rm);
bool redis_messages_tick(struct redis_messages *rm, uint64_t deadline_ms);
void redis_messages_add(struct redis_messages *rm, const struct store_message *m,
			int max_per_aor, int max_total, store_added_fn *fn, void *ctx);
void redis_messages_take(struct redis_messages *rm, const char *aor, int64_t now,
			 store_taken_fn *fn, void *ctx);
void redis_messages_release(struct redis_messages *rm, const char *aor);
void redis_messages_list(struct redis_messages *rm, const char *aor, int64_t now, int max,
			 store_message_fn *each, store_listed_fn *done, void *ctx);
int redis_messages_del(struct redis_messages *rm, int64_t id);
int redis_messages_attempt(struct redis_messages *rm, int64_t id);
int redis_messages_purge(struct redis_messages *rm, int64_t now);
int redis_messages_count(const struct redis_messages *rm);
void redis_messages_forget(struct redis_messages *rm, void *ctx);

#endif
