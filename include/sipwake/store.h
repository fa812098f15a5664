/* SPDX-License-Identifier: MIT */
/*
 * Persistent storage in SQLite (WAL, synchronous=NORMAL): bindings,
 * stored messages and digest accounts; in a cluster, in Redis instead
 * (store_attach_cluster). What a function here has returned
 * 0 for survives a crash of the process (kill -9). The schema is versioned (PRAGMA user_version)
 * and migrated forward on open. src/store/ is the only place that includes
 * sqlite3.h. All calls run on the daemon's single thread.
 */
#ifndef SIPWAKE_STORE_H
#define SIPWAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/su_wait.h>

/* Largest MESSAGE body the store accepts (messages.max_body is checked before). */
#define STORE_MAX_BODY_LEN (16 * 1024 * 1024)

struct store;

/* One registered contact. Strings are borrowed (caller's / callback-scoped). */
struct store_binding {
	const char *id;         /* opaque, unique; also sent upstream in the Contact */
	const char *aor;        /* canonical "sip:user@domain" */
	const char *contact;    /* Contact URI as the client sent it (push params kept) */
	const char *instance;   /* +sip.instance value or NULL */
	const char *pn_key;     /* pn_identity_key() or NULL */
	const char *received;   /* where the client was seen: "sip:1.2.3.4:5555;transport=tcp" */
	const char *call_id;    /* REGISTER Call-ID */
	uint32_t cseq;          /* REGISTER CSeq number */
	const char *user_agent; /* or NULL */
	int q;                  /* q-value x1000 (1000 when absent) */
	int64_t expires;        /* absolute, unix seconds */
	int64_t updated;        /* unix seconds of the last refresh */
	/* The upstream leg sipwake keeps alive for it (SPEC 4.6), NULL/0 when none. */
	const char *up_call_id; /* Call-ID of sipwake's own refreshes */
	uint32_t up_cseq;       /* the last CSeq used with it */
	int64_t up_expires;     /* when upstream's registration lapses, unix seconds */
	const char *up_state;   /* "ok", or the reason the last refresh failed */
	/* In a cluster: the node that wrote it (holds its flow, refreshes it). */
	const char *node;       /* NULL: this one */
};

/* One stored MESSAGE waiting for delivery. */
struct store_message {
	int64_t id;               /* assigned by store_message_add */
	const char *aor;          /* recipient AOR */
	const char *from;         /* From header value */
	const char *to;           /* To header value */
	const char *call_id;
	const char *content_type; /* or NULL */
	const void *body;
	size_t body_len;
	int64_t received;         /* unix seconds */
	int64_t expires;          /* unix seconds: drop after */
	int attempts;
};

/*
 * Open (creating if needed) the database at path, set WAL and migrate the
 * schema. Returns 0 and *out, or -1 with a one-line reason logged.
 */
int store_open(struct store **out, const char *path);
/* Close and free. Safe with NULL. */
void store_close(struct store *st);
/* The schema version the database is at. */
int store_schema_version(struct store *st);

/* Insert or replace the binding with b->id. 0 ok, -1 error (logged). */
int store_binding_put(struct store *st, const struct store_binding *b);
/* Delete one binding by id. 0 ok (also when absent), -1 error. */
int store_binding_del(struct store *st, const char *id);
/* Delete every binding of an AOR. */
int store_binding_del_aor(struct store *st, const char *aor);

/* Callback for loads; a non-zero return stops the iteration. */
typedef int store_binding_fn(void *ctx, const struct store_binding *b);
/*
 * Call fn for every binding with expires > now, in the order they were
 * last written.
 * Returns 0 or -1. fn may delete from the store, but not write a binding
 * (the scan would meet it again: store_binding_put returns -1) nor start
 * another load (that returns -1).
 */
int store_binding_load(struct store *st, int64_t now, store_binding_fn *fn, void *ctx);
/* How many bindings the store holds (expired ones too), or -1. */
int64_t store_binding_count(struct store *st);

/*
 * Stored messages, synchronous (SQLite only; in a cluster they would have
 * to wait for Redis). Add a message; sets *id_out. 0 ok, -1 error.
 */
int store_message_add(struct store *st, const struct store_message *m, int64_t *id_out);
/*
 * Number of stored messages for an AOR (all when aor is NULL), or -1. In a
 * cluster only the total is known, as last read from Redis (a second or
 * two old); an AOR's count is -1 there.
 */
int store_message_count(struct store *st, const char *aor);
typedef int store_message_fn(void *ctx, const struct store_message *m);
/* Messages for aor (all when NULL) with expires > now, oldest first. -1 in a cluster. */
int store_message_load(struct store *st, const char *aor, int64_t now, store_message_fn *fn,
		       void *ctx);
/* Record one more delivery attempt. */
int store_message_attempt(struct store *st, int64_t id);
/* Remove a delivered or abandoned message (in a cluster: sent, not waited for). */
int store_message_del(struct store *st, int64_t id);

/*
 * Stored messages, one interface for both backends: the callback comes
 * before the call returns on SQLite, once Redis answered in a cluster (or
 * failed to: the connection lost, or no answer within the commit
 * deadline). Each callback is called exactly once, unless
 * store_message_forget() came first.
 *
 * store_message_add_then: add m unless the AOR already holds max_per_aor
 * messages or the store max_total (checked in the same step as the write,
 * so nodes adding at once cannot overshoot). fn learns what became of it,
 * and the id when STORE_ADDED: only then is the message kept.
 */
enum store_add_result { STORE_ADDED, STORE_AOR_FULL, STORE_FULL, STORE_FAILED };
typedef void store_added_fn(void *ctx, enum store_add_result res, int64_t id);
void store_message_add_then(struct store *st, const struct store_message *m, int max_per_aor,
			    int max_total, store_added_fn *fn, void *ctx);
/*
 * The oldest message of aor with expires > now, taken for a delivery
 * attempt (its attempts counted, this one included), through fn (m's
 * fields valid during the call only); m NULL when there is none, on an
 * error, or when another node holds the AOR's lease. In a cluster the
 * take holds a lease on the AOR (sipwake:msglease:AOR, about 30 s, renewed
 * while this node delivers): no other node takes a message of that AOR
 * until store_message_release(). Expired messages met on the way are
 * dropped. Remove the message with store_message_del() once the phone
 * took it; release the lease when the round is over (nothing on SQLite).
 */
typedef void store_taken_fn(void *ctx, const struct store_message *m);
void store_message_take_then(struct store *st, const char *aor, int64_t now, store_taken_fn *fn,
			     void *ctx);
void store_message_release(struct store *st, const char *aor);
/*
 * For a listing (sipwakectl messages): each of the first max messages of
 * aor (all when NULL) with expires > now, oldest first, through each; then
 * done with how many are stored (expired ones too), or -1 on an error.
 */
typedef void store_listed_fn(void *ctx, int count);
void store_message_list_then(struct store *st, const char *aor, int64_t now, int max,
			     store_message_fn *each, store_listed_fn *done, void *ctx);
/*
 * The callbacks waiting with ctx will not be called. A message still being
 * added for ctx is removed again once Redis has it: nobody was told that
 * it is kept.
 */
void store_message_forget(struct store *st, void *ctx);

/*
 * The installation's secret called name (len bytes): read from the
 * database, or drawn at random and stored the first time, so it survives
 * restarts. 0 with buf filled, -1 on error (logged). Not for use inside an
 * open store_begin() transaction.
 */
int store_secret(struct store *st, const char *name, unsigned char *buf, size_t len);

/*
 * A digest account (SPEC 4.7): the credentials of one AOR, as HA1 values
 * in lowercase hex (MD5: 32 digits, SHA-256: 64; NULL when not stored).
 * Never a password.
 */
struct store_account {
	const char *aor;      /* canonical "sip:user@domain" */
	const char *username;
	const char *realm;
	const char *ha1_md5;
	const char *ha1_sha256;
	int64_t created;      /* unix seconds (kept by a later put) */
	int64_t updated;
};

typedef int store_account_fn(void *ctx, const struct store_account *a);
/* Insert or update the account of a->aor (created kept on update). 0 or -1. */
int store_account_put(struct store *st, const struct store_account *a);
/*
 * The account of aor through fn (strings valid during the call only):
 * 1 found, 0 none, -1 error (logged). Always read from the database, so a
 * change another process made is seen at once. In a cluster, read from
 * this node's copy of the cluster's accounts (it never waits for Redis),
 * which follows a change made elsewhere within a moment.
 */
int store_account_get(struct store *st, const char *aor, store_account_fn *fn, void *ctx);
/* Every account (or the one of aor when not NULL), by AOR. 0 or -1. */
int store_account_list(struct store *st, const char *aor, store_account_fn *fn, void *ctx);
/* Delete the account of aor: 1 deleted, 0 there was none, -1 error. */
int store_account_del(struct store *st, const char *aor);
/*
 * In a cluster, the daemon's store_account_put/del answer before Redis
 * does once the loop runs (0: sent, and seen by this node at once; what
 * Redis then refuses is logged). A tool's wait for Redis:
 * store_attach_cluster_accounts() puts the accounts of st in the Redis of
 * cfg->cluster.redis, on a blocking connection, without a loop (nothing
 * else of st changes). 0 (also when cfg has no cluster), or -1 logged.
 */
struct sw_config;
int store_attach_cluster_accounts(struct store *st, const struct sw_config *cfg);

/*
 * In a cluster, the digest nonce counts each node accepted, so that a
 * replay to another node fails as it would on the first:
 * store_nonce_used() tells the others (without waiting; nothing outside a
 * cluster), fn hears of theirs (one listener; NULL to stop).
 */
typedef void store_nonce_fn(void *ctx, const char *nonce, uint32_t nc);
void store_nonce_used(struct store *st, const char *nonce, uint32_t nc);
void store_watch_nonces(struct store *st, store_nonce_fn *fn, void *ctx);

/*
 * How long a write waits for another connection's lock: the daemon keeps
 * the short default (its loop waits); a command-line tool may wait longer.
 */
void store_set_busy_timeout(struct store *st, int ms);

/*
 * Drop expired bindings and messages. Returns the number removed or -1 (in
 * a cluster, what Redis drops is not counted: any node may purge, and a
 * message two nodes drop at once is dropped once).
 */
int store_purge(struct store *st, int64_t now);

/*
 * Group writes: begin/commit a transaction (nesting is not supported). Writes
 * made in between are durable only once store_commit has returned 0; a
 * failed commit rolls the transaction back. store_rollback abandons it (0
 * also when none is open); store_close rolls back one left open.
 */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/*
 * Commit, and tell fn whether the writes are durable: before this returns
 * on SQLite; once Redis confirmed them (or failed to) in a cluster. fn is
 * called exactly once, unless store_cancel_pending() came first. Without
 * an open transaction, fn learns whether the writes since the last commit
 * all went through.
 */
typedef void store_done_fn(void *ctx, bool stored);
void store_commit_then(struct store *st, store_done_fn *fn, void *ctx);

/*
 * Cluster (SPEC 9): keep the bindings, the accounts, the secrets and the
 * stored messages in the Redis of cfg->cluster.redis rather than in the
 * database, driven by root. A secret is read only before the loop runs. 0, or -1 with the reason logged.
 */
int store_attach_cluster(struct store *st, su_root_t *root, const struct sw_config *cfg);
/* True when the store is in a cluster. */
bool store_clustered(const struct store *st);
/* This node's name in the cluster, NULL outside one. */
const char *store_node_name(const struct store *st);
/* False while binding and message writes cannot be kept (Redis unreachable). */
bool store_writable(const struct store *st);
/* Commits waiting for Redis; store_cancel_pending() forgets their callbacks. */
int store_pending(const struct store *st);
void store_cancel_pending(struct store *st);

/*
 * Another node's change to a binding: put (b), delete (id), or a new owner
 * (id, b->node) after it took over a dead node's bindings. After Redis was
 * lost and is back: STORE_RESYNC_BEGIN, every binding Redis holds as
 * STORE_RESYNC_PUT (changes keep coming meanwhile), then STORE_RESYNC_END:
 * a binding heard of in neither way since BEGIN is not in Redis any more
 * (another node removed it); or STORE_RESYNC_REBUILD instead when Redis
 * lost its data: this node's own bindings are to be written back.
 */
enum store_change {
	STORE_PUT,
	STORE_DEL,
	STORE_OWNER,
	STORE_RESYNC_BEGIN,
	STORE_RESYNC_PUT,
	STORE_RESYNC_END,
	STORE_RESYNC_REBUILD,
};
typedef void store_change_fn(void *ctx, enum store_change what, const struct store_binding *b,
			     const char *id);
/* Who learns of other nodes' changes (one subscriber). */
void store_watch(struct store *st, store_change_fn *fn, void *ctx);

/*
 * The cluster's nodes as last seen: name, whether it is this one, alive
 * (heartbeat not expired), heartbeat age in ms (-1 when dead), start time,
 * hop URI ("" when none announced).
 */
typedef void store_node_fn(void *ctx, const char *name, bool self, bool alive, int64_t age_ms,
			   int64_t since, const char *hop);
void store_cluster_nodes(struct store *st, store_node_fn *fn, void *ctx);
/*
 * The hop (SPEC 9): the SIP URI at which this node takes requests for its
 * own phones from the other nodes, announced in its heartbeat; and that of
 * a live node by name (NULL when dead, unknown or outside a cluster).
 */
void store_set_hop(struct store *st, const char *uri);
const char *store_node_hop(struct store *st, const char *node);

#endif
