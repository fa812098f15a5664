/* SPDX-License-Identifier: MIT */
/*
 * Registrar: REGISTER handling and the bindings (contacts of an AOR with
 * their push identity and the flow they registered on). In gateway mode
 * the REGISTER goes upstream with Path and hidden push parameters and the
 * binding is stored only on upstream's 2xx; in standalone mode sipwake
 * answers itself. Bindings live in memory (hash indexes by AOR, id, push
 * identity, contact and source address) and in the store. Subscribers hear about every
 * (re)registration and removal: that is how held requests get released.
 */
#ifndef SIPWAKE_REGISTRAR_H
#define SIPWAKE_REGISTRAR_H

#include <stdbool.h>
#include <stdint.h>

#include "sipwake/pn.h"
#include "sipwake/sip.h"
#include "sipwake/store.h"

/* Name of the Contact URI parameter that carries a binding id upstream. */
#define REGISTRAR_ID_PARAM "swb"
/* Most bindings of one AOR (the bound of registrar.max_contacts_per_aor). */
#define REGISTRAR_MAX_CONTACTS 32
/* Longest Contact URI stored (push tokens of 4096 bytes fit; 400 beyond). */
#define REGISTRAR_MAX_CONTACT_LEN 8192

struct registrar;
struct binding;

enum registrar_event {
	REGISTRAR_BOUND,   /* new binding or refreshed one (maybe on a new flow) */
	REGISTRAR_REMOVED, /* unregistered, expired, evicted or token invalid */
	REGISTRAR_EXPIRING, /* a push binding is push.wakeup_before_expiry from expiring */
};

typedef void registrar_event_fn(void *ctx, const struct binding *b, enum registrar_event ev);

/* Create the registrar on top of the SIP agent and the store (both borrowed). */
int registrar_new(struct registrar **out, struct sip_agent *sa, struct store *st);
/* Free every binding (the store keeps them). Safe with NULL. */
void registrar_free(struct registrar *r);
/*
 * The same when the process is about to exit: with many bindings their
 * memory is left to the exit instead of being freed block by block.
 */
void registrar_exit(struct registrar *r);
/*
 * Which push providers can send, indexed by enum pn_provider (a REGISTER
 * for another gets 555), the VAPID public key (base64url) announced in
 * +sip.vapid when Web Push is one of them, and the pn-provider name of the
 * operator's service (PN_HTTP), or NULLs. All are copied.
 */
void registrar_set_push_support(struct registrar *r, const bool enabled[PN_PROVIDER_COUNT],
				const char *vapid_public, const char *service);
/* After a reload: the wake-up lead time may have changed, schedule every binding again (O(n)). */
void registrar_config_changed(struct registrar *r);
/* Add a subscriber (at most a few; called in order of subscription). */
void registrar_subscribe(struct registrar *r, registrar_event_fn *fn, void *ctx);
/* Load unexpired bindings from the store (at start-up). Returns the count or -1. */
int registrar_load(struct registrar *r);

/*
 * Commit the pending binding writes now, and send the REGISTER answers that
 * waited for them once the store confirms the commit: at once on SQLite,
 * when Redis answers in a cluster (before a write that must be durable on
 * its own, and at shutdown before transactions go away).
 */
void registrar_flush(struct registrar *r);
/* Flush, then run the loop until the store confirmed it (max_ms at most). */
void registrar_drain(struct registrar *r, int max_ms);

/* Handle a REGISTER (a sip_request_fn answer: 0 = irq taken, else status). */
int registrar_handle(struct registrar *r, nta_incoming_t *irq, msg_t *msg, sip_t *sip);

/* Bindings of an AOR ("sip:user@domain"), up to max, best q first. Returns the count. */
size_t registrar_lookup(struct registrar *r, const char *aor, struct binding **out, size_t max);
/* The binding with this id, or NULL. */
struct binding *registrar_find_id(struct registrar *r, const char *id);
/* The binding whose Contact URI (user@host:port) matches u, or NULL. */
struct binding *registrar_find_contact(struct registrar *r, const url_t *u);
/*
 * A binding registered from src ("sip:IP:PORT", parameters ignored), or
 * NULL: the request came from a registered client's flow.
 */
struct binding *registrar_find_source(struct registrar *r, const char *src);
/* Remove a binding from memory and store; b is freed. */
void registrar_remove(struct registrar *r, struct binding *b, const char *why);
/* Remove every binding of an AOR. Returns how many. */
int registrar_remove_aor(struct registrar *r, const char *aor, const char *why);
/* Remove every binding that has this push identity (token invalid). 0 or -1 if none. */
int registrar_remove_pn(struct registrar *r, const struct pn_identity *id, const char *why);
/* Number of bindings. */
size_t registrar_count(struct registrar *r);
/* Call fn on every binding (snapshot-safe: fn must not remove). */
void registrar_each(struct registrar *r, void (*fn)(void *ctx, struct binding *b), void *ctx);

const char *binding_id(const struct binding *b);
const char *binding_aor(const struct binding *b);
/* Contact URI exactly as the client registered it (push parameters kept). */
const char *binding_contact(const struct binding *b);
/* Where the client was seen: "sip:IP:PORT;transport=X". */
const char *binding_received(const struct binding *b);
const char *binding_instance(const struct binding *b);
const char *binding_user_agent(const struct binding *b);
/* Push identity, or NULL for a plain contact. */
const struct pn_identity *binding_pn(const struct binding *b);
int64_t binding_expires(const struct binding *b);
int binding_q(const struct binding *b);
/*
 * The upstream registration sipwake keeps alive for b (SPEC 4.6): when it
 * lapses (unix seconds) and "ok" or why its last refresh failed; 0 and
 * NULL when sipwake keeps none for b.
 */
int64_t binding_upstream_expires(const struct binding *b);
const char *binding_upstream_state(const struct binding *b);
/* The connection to send on (TCP/TLS) or NULL when none is open / UDP. */
tport_t *binding_tport(const struct binding *b);
/*
 * True when this node owns b: it took b's REGISTER (holds its flow,
 * refreshes it upstream). Always true outside a cluster; in one, exactly
 * one node owns each binding, so what must happen once per binding (a
 * stored message's delivery, a wake-up push) happens where this is true.
 */
bool binding_local(const struct binding *b);
/* The name of the node that owns b, NULL when this one does. */
const char *binding_owner(const struct registrar *r, const struct binding *b);
/* True when a request can be sent now: UDP contact, or an open connection. */
bool binding_reachable(const struct binding *b);

#endif
