/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the registrar's two files: bindings.c (the table) and
 * register.c (the REGISTER protocol). Not part of the layer's interface.
 */
#ifndef SIPWAKE_REGISTRAR_INT_H
#define SIPWAKE_REGISTRAR_INT_H

#include <stdint.h>

#include "sipwake/auth.h"
#include "sipwake/registrar.h"
#include "sipwake/strmap.h"

#define BINDING_ID_LEN 16
#define REGISTRAR_MAX_SUBS 4
#define REGISTRAR_MAX_NODES 255 /* other nodes of a cluster a registrar tells apart */
#define REGISTRAR_PURGE_MS 1000
#define REGISTRAR_COMMIT_MS 1 /* under load, binding writes of this window share a commit */

struct upreq;

/*
 * The upstream registration sipwake keeps alive for a push binding
 * (upstream.keepalive, SPEC 4.6; keepalive.c). Its own Call-ID, distinct
 * from the device's, so that both may refresh the same Contact upstream
 * (RFC 3261 10.3 step 7 compares CSeq only within one Call-ID).
 */
struct upleg {
	char *call_id;
	uint32_t cseq;        /* the last CSeq sent with call_id */
	int64_t expires;      /* when upstream's registration lapses, unix seconds */
	int64_t next_try;     /* when to refresh it (0 = not needed) */
	int failures;         /* refreshes failed in a row */
	bool failing;
	bool wakeup_asked;    /* the device got a wake-up push for this failing spell */
	bool device_gone;     /* the device unregistered upstream itself */
	bool lapsed;          /* upstream's registration expired before a refresh (counted) */
	bool queued;          /* due, waiting in the pacer's queue */
	bool dirty;           /* changed, written to the store with the next tick */
	char state[96];       /* "ok", or why the last refresh failed */
	struct upreq *inflight;
	struct auth_cache cache; /* upstream's last challenge, for nonce reuse */
};

/*
 * A registered contact. by_aor holds the newest binding of each AOR, the
 * others follow through next; by_pn the newest one with each push token
 * (pn.prid), other AORs or identities with that token through pn_next;
 * by_source likewise with src_next.
 */
struct binding {
	struct binding *next;     /* other bindings of its AOR */
	struct binding *pn_next;  /* other bindings with the same pn.prid */
	struct binding *src_next; /* other bindings registered from the same source */
	/*
	 * Its strings, and those of pn, all point into one block, strs: the
	 * area allocated with the binding (inline) while they fit there, else
	 * a block of their own. One allocation a binding, none for a refresh
	 * that changes no length, and a push token stored once besides the
	 * Contact. The keys of the indexes are these strings themselves
	 * (keyed strmaps).
	 */
	char *strs;
	char *aor;
	char *contact;
	char *contact_key;
	char *instance;
	char *received;
	char *call_id;
	char *user_agent;
	struct pn_identity pn; /* provider PN_NONE: not a push binding */
	uint32_t cseq;
	int q;
	int64_t expires;
	int64_t updated;
	int64_t wakeup_for; /* the expiry a wake-up was announced for (once each) */
	int64_t due;        /* when the tick next needs it (schedule.c) */
	tport_t *tp;
	struct upleg *up;   /* NULL unless sipwake keeps it registered upstream */
	uint32_t heap_pos;  /* its place in the schedule + 1, 0 = not scheduled */
	int pend;
	uint32_t inline_cap;
	uint32_t strs_cap; /* the size of strs when it is a block of its own */
	/* (the small fields last, so that the inline area follows without a hole) */
	char id[BINDING_ID_LEN + 1];
	bool flow_dead;
	uint8_t node; /* 0 = this node's; else the other node registrar.nodes[node - 1] */
	uint8_t gen;  /* registrar.gen when last made, loaded or heard of (resync) */
	char inline_strs[]; /* inline_cap bytes */
};

/* What a (re)registration sets on a binding; strings are borrowed. */
struct binding_data {
	const char *id;
	const char *aor;
	const char *contact;
	const char *instance;
	const struct pn_identity *pn;
	const char *received;
	const char *call_id;
	uint32_t cseq;
	const char *user_agent;
	int q;
	int64_t expires;
	int64_t updated;
	tport_t *tp;
	bool set_flow;
};

struct registrar {
	struct sip_agent *sa;
	struct store *st;
	const struct sw_config *cfg;
	struct strmap *by_id;
	struct strmap *by_aor;    /* -> first binding, chained by next */
	struct strmap *by_pn;     /* pn.prid -> first binding, chained by pn_next */
	struct strmap *by_contact;
	struct strmap *by_source; /* -> first binding, chained by src_next */
	size_t count;
	bool pns[PN_PROVIDER_COUNT]; /* providers that can send */
	char *vapid_public;           /* +sip.vapid, NULL = none */
	char *service;                /* pn-provider of the operator's service, NULL = none */
	bool masquerade; /* upstream refused Path: rewrite Contacts to us */
	struct {
		registrar_event_fn *fn;
		void *ctx;
	} subs[REGISTRAR_MAX_SUBS];
	int n_subs;
	su_timer_t *purge_timer;
	/* Write batching: one SQLite transaction per commit window; the 2xx of
	 * each REGISTER waits in `replies` until its bindings are committed. */
	su_timer_t *commit_timer;
	bool batch_open;
	bool write_failed; /* a binding write failed since the last flush: its REGISTERs get 500 */
	int64_t full_warned; /* when "max_bindings reached" was last logged */
	unsigned purge_ticks;
	struct upreq *upreqs; /* keep-alive REGISTERs in flight (keepalive.c) */
	struct ka_pacer *pacer; /* due refreshes, sent spread over the next second */
	struct deferred_reply *replies, **replies_tail;
	struct commit_batch *in_flight; /* commits the store has not confirmed yet */
	/* A cluster's other nodes, by the index bindings keep (binding.node). */
	char *self;  /* this node's name, NULL outside a cluster */
	char *nodes[REGISTRAR_MAX_NODES];
	int n_nodes;
	uint8_t gen; /* a resync with Redis marks what it hears of with the next value */
	/* schedule.c: bindings by the time the tick next needs them */
	struct binding **heap;
	size_t heap_len, heap_cap;
	bool unscheduled; /* a binding could not be scheduled (no memory): rebuild */
	bool exiting;     /* registrar_exit: the process ends, memory goes with it */
	struct binding **due_buf; /* what one tick takes, REGISTRAR_TICK_MAX at most */
};

/* The REGISTER answers of one commit, until the store says it is kept. */
struct commit_batch {
	struct commit_batch *next; /* in registrar.in_flight */
	struct registrar *r;
	struct deferred_reply *replies;
};

/* A REGISTER answer held until the bindings it acknowledges are committed. */
struct deferred_reply {
	struct deferred_reply *next;
	struct proxy_txn *t;   /* gateway: the upstream 2xx to relay, or */
	nta_incoming_t *irq;   /* standalone: our own answer */
	msg_t *msg;
};

/*
 * The schedule (schedule.c). registrar_schedule() after anything that
 * changes when a binding is next due: its expiry or update time, its
 * wake-up announcement, its upstream leg's next refresh or busy state.
 * registrar_take_due() removes and returns the due ones, earliest first;
 * the tick schedules again those that stay.
 */
#define REGISTRAR_TICK_MAX 8192 /* bindings one tick handles; the rest on the next one */
void registrar_schedule(struct registrar *r, struct binding *b);
void registrar_unschedule(struct registrar *r, struct binding *b);
/* Room in the schedule for n bindings in all. 0 or -1. */
int registrar_schedule_reserve(struct registrar *r, size_t n);
size_t registrar_take_due(struct registrar *r, int64_t now, struct binding **out, size_t max);
void registrar_reschedule_all(struct registrar *r);
/* True when b's wake-up push before expiry is due at now. */
bool registrar_wakeup_due(const struct registrar *r, const struct binding *b, int64_t now);

void registrar_notify(struct registrar *r, const struct binding *b, enum registrar_event ev);
void registrar_new_id(char out[BINDING_ID_LEN + 1]);
int registrar_contact_key(const url_t *u, char *buf, size_t len);
/* True when this node owns b: it took b's REGISTER, holds its flow, refreshes it. */
static inline bool binding_owned(const struct binding *b)
{
	return b->node == 0;
}

/* Create (old == NULL) or update a binding and index it. NULL on failure. */
struct binding *registrar_upsert(struct registrar *r, struct binding *old, const struct binding_data *d);
/* RFC 8599 matching inside an AOR: instance, then push identity, then contact. */
struct binding *registrar_match(struct registrar *r, const char *aor, const char *instance,
				const struct pn_identity *pn, const char *contact_key);
/* Whether b is a push binding (it has a push identity). */
static inline bool binding_is_push(const struct binding *b)
{
	return b->pn.provider != PN_NONE;
}
int binding_save(struct registrar *r, struct binding *b);
/* Delete a binding's row (in the current batch); a failure fails the batch's answers. */
void binding_unsave(struct registrar *r, const char *id);
/* Join (or open) the current write batch before any store write. */
void registrar_write_begin(struct registrar *r);
/*
 * Send msg (a REGISTER 2xx) once the current batch is committed (now if
 * none). If a write of the batch or its commit failed, msg is dropped and
 * the REGISTER is answered 500 with Retry-After instead (SPEC 8: nothing
 * is acknowledged that is not stored). Takes msg.
 */
void registrar_reply_after_commit(struct registrar *r, struct proxy_txn *t, nta_incoming_t *irq,
				  msg_t *msg);
void binding_free(struct binding *b);
void binding_set_flow(struct binding *b, tport_t *tp);
void registrar_enforce_limit(struct registrar *r, const char *aor, const struct binding *keep);
void registrar_purge_tick(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg);

/* Keep-alive of upstream registrations (keepalive.c, SPEC 4.6). */
/* Whether a contact of a push device may outlive upstream's expiry. */
bool keepalive_wanted(struct registrar *r, bool push);
/*
 * The device registered through upstream, which granted up_granted
 * seconds: start or restart the upstream leg of b (0 = drop it).
 */
void keepalive_bound(struct registrar *r, struct binding *b, int up_granted, int64_t now);
/* A binding loaded from the store: its leg as stored, refresh spread if overdue. */
void keepalive_load(struct registrar *r, struct binding *b, const struct store_binding *sb,
		    int64_t now);
/*
 * Due refreshes: the one-second tick takes the due bindings from the
 * schedule, asks keepalive_due of each and queues those
 * (keepalive_queue), then keepalive_pace() sends the queue spread evenly
 * over the next second, so that a burst never floods upstream's socket.
 * keepalive_busy: a refresh of b is queued or in flight (not due).
 */
bool keepalive_due(const struct binding *b, int64_t now);
bool keepalive_busy(const struct binding *b);
void keepalive_queue(struct registrar *r, struct binding *b);
void keepalive_pace(struct registrar *r);
/* Write the legs refreshes changed since the last tick (one transaction). */
void keepalive_flush(struct registrar *r);
/* b goes: unregister it upstream (unless the device did) and free its leg. */
void keepalive_release(struct registrar *r, struct binding *b);
/* This node took b over from a dead one: refresh upstream soon, with our Path. */
void keepalive_adopted(struct registrar *r, struct binding *b, int64_t now);
/* b's leg goes without a word upstream: another node of the cluster owns it. */
void keepalive_forget(struct registrar *r, struct binding *b);
/* The device's own REGISTER removed b upstream: nothing to undo there. */
void keepalive_device_gone(struct binding *b);
/* Free the leg (no SIP), and every request in flight at shutdown. */
void keepalive_free_leg(struct upleg *up);
void keepalive_shutdown(struct registrar *r);

/*
 * Rewrite a Contact (allocated from home) into what upstream is given:
 * push parameters out (upstream.hide_push_params), the binding id in.
 * Masquerading (upstream refused Path) also puts sipwake's own address in
 * place of the client's, so requests come to us anyway.
 */
int registrar_upstream_contact(struct registrar *r, su_home_t *home, sip_contact_t *m,
			       const char *id, bool masquerade, const char *proto);
/* The Path header value sipwake gives upstream: "<sip:us;lr>". */
void registrar_path(struct registrar *r, char *buf, size_t len);

#endif
