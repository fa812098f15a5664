/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the registrar's two files: bindings.c (the table) and
 * register.c (the REGISTER protocol). Not part of the layer's interface.
 */
#ifndef SIPWAKE_REGISTRAR_INT_H
#define SIPWAKE_REGISTRAR_INT_H

#include "sipwake/registrar.h"
#include "sipwake/strmap.h"

#define BINDING_ID_LEN 16
#define REGISTRAR_MAX_SUBS 4
#define REGISTRAR_PURGE_MS 1000
#define REGISTRAR_COMMIT_MS 1 /* under load, binding writes of this window share a commit */

struct aor_rec {
	char *aor;
	struct binding *head;
	int count;
};

struct binding {
	struct binding *next; /* in its AOR */
	struct binding *pn_next;  /* other bindings with the same push identity (other AORs) */
	struct binding *src_next; /* other bindings registered from the same source */
	struct aor_rec *rec;
	char id[BINDING_ID_LEN + 1];
	char *aor;
	char *contact;
	char *contact_key;
	char *instance;
	char *pn_key;
	char *received;
	char *src_key; /* "sip:IP:PORT" of received: the by_source key */
	char *call_id;
	char *user_agent;
	struct pn_identity pn;
	uint32_t cseq;
	int q;
	int64_t expires;
	int64_t updated;
	int64_t wakeup_for; /* the expiry a wake-up was announced for (once each) */
	tport_t *tp;
	int pend;
	bool flow_dead;
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
	struct strmap *by_aor; /* -> struct aor_rec */
	struct strmap *by_pn;     /* -> first binding, chained by pn_next */
	struct strmap *by_contact;
	struct strmap *by_source; /* -> first binding, chained by src_next */
	size_t count;
	bool apns, fcm;
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
	struct deferred_reply *replies, **replies_tail;
};

/* A REGISTER answer held until the bindings it acknowledges are committed. */
struct deferred_reply {
	struct deferred_reply *next;
	struct proxy_txn *t;   /* gateway: the upstream 2xx to relay, or */
	nta_incoming_t *irq;   /* standalone: our own answer */
	msg_t *msg;
};

void registrar_notify(struct registrar *r, const struct binding *b, enum registrar_event ev);
void registrar_new_id(char out[BINDING_ID_LEN + 1]);
int registrar_contact_key(const url_t *u, char *buf, size_t len);
/* Create (old == NULL) or update a binding and index it. NULL on failure. */
struct binding *registrar_upsert(struct registrar *r, struct binding *old, const struct binding_data *d);
/* RFC 8599 matching inside an AOR: instance, then push identity, then contact. */
struct binding *registrar_match(struct registrar *r, const char *aor, const char *instance,
				const char *pn_key, const char *contact_key);
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

#endif
