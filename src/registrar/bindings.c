/* SPDX-License-Identifier: MIT */
/*
 * The bindings table: one struct binding per registered contact, indexed by
 * id, AOR, push identity and contact address, mirrored in the store, with
 * the client's flow (a tport reference) watched for closing. The REGISTER
 * protocol itself is in register.c; both share registrar_int.h.
 */
#include "registrar_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/url.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"
#include "sipwake/proxy.h"
#include "sipwake/slab.h"
#include "sipwake/stats.h"

static void before_poll(su_prepoll_magic_t *magic, su_root_t *root);
static void remote_change(void *ctx, enum store_change what, const struct store_binding *sb,
			  const char *id);

/* The keys of the indexes: strings of the values themselves. */
static const char *key_id(const void *v)
{
	return ((const struct binding *)v)->id;
}

static const char *key_aor(const void *v)
{
	return ((const struct binding *)v)->aor;
}

static const char *key_pn(const void *v)
{
	return ((const struct binding *)v)->pn.prid;
}

static const char *key_contact(const void *v)
{
	return ((const struct binding *)v)->contact_key;
}

static const char *key_source(const void *v)
{
	return ((const struct binding *)v)->received;
}

int registrar_new(struct registrar **out, struct sip_agent *sa, struct store *st)
{
	struct registrar *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -1;
	r->sa = sa;
	r->st = st;
	r->cfg = sip_agent_config(sa);
	r->by_id = strmap_new_keyed(key_id, 0);
	r->by_aor = strmap_new_keyed(key_aor, 0);
	r->by_pn = strmap_new_keyed(key_pn, 0);
	r->by_contact = strmap_new_keyed(key_contact, 0);
	/* "sip:IP:PORT" of received: its transport parameter is not part of the key */
	r->by_source = strmap_new_keyed(key_source, ';');
	if (!r->by_id || !r->by_aor || !r->by_pn || !r->by_contact || !r->by_source) {
		registrar_free(r);
		return -1;
	}
	r->replies_tail = &r->replies;
	if (st && store_node_name(st)) {
		if (!(r->self = strdup(store_node_name(st)))) {
			registrar_free(r);
			return -1;
		}
		store_watch(st, remote_change, r);
	}
	su_root_add_prepoll(sip_agent_root(sa), before_poll, (su_prepoll_magic_t *)r);
	r->commit_timer = su_timer_create(su_root_task(sip_agent_root(sa)), REGISTRAR_COMMIT_MS);
	/* A periodic timer: su_timer_set_interval() would fire only once. */
	r->purge_timer = su_timer_create(su_root_task(sip_agent_root(sa)), REGISTRAR_PURGE_MS);
	if (r->purge_timer)
		su_timer_set_for_ever(r->purge_timer, registrar_purge_tick, (su_timer_arg_t *)r);
	*out = r;
	return 0;
}

static void free_each(void *ctx, const char *key, void *value)
{
	struct binding *b = value;

	while (b) {
		struct binding *next = b->next;
		binding_free(b);
		b = next;
	}
}

static void commit_fired(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	registrar_flush((struct registrar *)arg);
}

/*
 * Before the loop polls again: when no more input is already waiting,
 * commit now, so a lone REGISTER waits for nothing; while datagrams queue
 * up, the 1 ms window gathers the writes of several REGISTERs into one
 * commit.
 */
static void before_poll(su_prepoll_magic_t *magic, su_root_t *root)
{
	struct registrar *r = (struct registrar *)magic;

	if (r->batch_open && !sip_agent_input_pending(r->sa))
		registrar_flush(r);
}

void registrar_write_begin(struct registrar *r)
{
	if (!r->st || r->batch_open)
		return;
	if (store_begin(r->st) < 0)
		return; /* autocommit then: each write durable (or failed) on its own */
	r->batch_open = true;
	r->write_failed = false;
	if (!r->commit_timer ||
	    su_timer_set(r->commit_timer, commit_fired, (su_timer_arg_t *)r) < 0)
		registrar_flush(r); /* no timer: never leave a batch open */
}

#define STORE_RETRY_AFTER "5" /* s a client waits before retrying a REGISTER we could not store */

/* One REGISTER answer: the 2xx when its bindings are stored, else 500. */
static void send_reply(struct proxy_txn *t, nta_incoming_t *irq, msg_t *msg, bool stored)
{
	if (stored && t) {
		proxy_txn_relay_deferred(t, msg);
		return;
	}
	if (stored) {
		/* Our own 200 (standalone); a relayed one was counted when it came. */
		stats_sip_response(200);
		stats_count("sipwake_register_total", "result", "ok", NULL);
		nta_incoming_mreply(irq, msg);
		nta_incoming_destroy(irq);
		return;
	}
	msg_destroy(msg);
	stats_count("sipwake_register_total", "result", "store_failed", NULL);
	if (t) {
		proxy_txn_answer_deferred(t, 500, "Registration Not Stored", STORE_RETRY_AFTER);
	} else {
		nta_incoming_treply(irq, 500, "Registration Not Stored",
				    SIPTAG_RETRY_AFTER_STR(STORE_RETRY_AFTER), TAG_END());
		stats_sip_response(500);
		nta_incoming_destroy(irq);
	}
}

void registrar_reply_after_commit(struct registrar *r, struct proxy_txn *t, nta_incoming_t *irq,
				  msg_t *msg)
{
	struct deferred_reply *d = r->batch_open ? calloc(1, sizeof(*d)) : NULL;

	if (!d) {
		/* No batch (or no memory for the queue): the writes went one by one. */
		if (r->batch_open)
			registrar_flush(r);
		send_reply(t, irq, msg, !r->write_failed);
		r->write_failed = false;
		return;
	}
	d->t = t;
	d->irq = irq;
	d->msg = msg;
	*r->replies_tail = d;
	r->replies_tail = &d->next;
}

/* Answer each REGISTER of a list: its 2xx when stored, else 500. */
static void answer_all(struct deferred_reply *d, bool stored)
{
	if (!stored && d)
		log_error("binding writes could not be stored: their REGISTERs are answered 500 "
			  "(the phones retry); memory keeps the newest state until then");
	while (d) {
		struct deferred_reply *next = d->next;

		send_reply(d->t, d->irq, d->msg, stored);
		free(d);
		d = next;
	}
}

/* The store's verdict on one commit: now its REGISTERs are answered. */
static void batch_done(void *ctx, bool stored)
{
	struct commit_batch *cb = ctx, **at = &cb->r->in_flight;

	while (*at && *at != cb)
		at = &(*at)->next;
	if (*at)
		*at = cb->next;
	answer_all(cb->replies, stored);
	free(cb);
}

void registrar_flush(struct registrar *r)
{
	struct deferred_reply *replies = r->replies;
	struct commit_batch *cb;
	bool failed = r->write_failed;

	r->replies = NULL;
	r->replies_tail = &r->replies;
	r->write_failed = false;
	if (!r->batch_open) {
		answer_all(replies, !failed);
		return;
	}
	r->batch_open = false;
	if (r->commit_timer)
		su_timer_reset(r->commit_timer);
	if (!failed && !(cb = calloc(1, sizeof(*cb))))
		failed = true; /* no way to wait for the commit: keep nothing unconfirmed */
	if (failed) {
		store_rollback(r->st);
		answer_all(replies, false);
		return;
	}
	cb->r = r;
	cb->replies = replies;
	cb->next = r->in_flight;
	r->in_flight = cb;
	store_commit_then(r->st, batch_done, cb);
}

void registrar_drain(struct registrar *r, int max_ms)
{
	uint64_t until = clock_now_ms() + (uint64_t)max_ms;

	registrar_flush(r);
	while (r->in_flight && clock_now_ms() < until)
		su_root_step(sip_agent_root(r->sa), 10);
}

/* What the store never confirmed when the registrar goes: no answers. */
static void drop_in_flight(struct registrar *r)
{
	if (r->in_flight)
		store_cancel_pending(r->st);
	while (r->in_flight) {
		struct commit_batch *cb = r->in_flight;

		r->in_flight = cb->next;
		for (struct deferred_reply *d = cb->replies, *next; d; d = next) {
			next = d->next;
			msg_destroy(d->msg);
			free(d);
		}
		free(cb);
	}
}

/*
 * Beyond this many bindings, a daemon that exits leaves their memory to
 * the kernel: freeing a million bindings one small block at a time took
 * five seconds of a stop (issue 14), and everything is in the store
 * already. Below it everything is freed, so leak checkers see a clean exit.
 */
#define REGISTRAR_FREE_AT_EXIT_MAX 20000

static void release_flow(void *ctx, struct binding *b)
{
	(void)ctx;
	if (b->tp)
		binding_set_flow(b, NULL);
}

void registrar_exit(struct registrar *r)
{
	if (r && r->count > REGISTRAR_FREE_AT_EXIT_MAX) {
		log_info("leaving %zu bindings to the process exit (they are stored)", r->count);
		r->exiting = true;
	}
	registrar_free(r);
}

void registrar_free(struct registrar *r)
{
	if (!r)
		return;
	registrar_flush(r);
	drop_in_flight(r);
	if (r->self)
		store_watch(r->st, NULL, NULL);
	free(r->self);
	for (int i = 0; i < r->n_nodes; i++)
		free(r->nodes[i]);
	keepalive_shutdown(r); /* upstream keeps the registrations: a restart resumes them */
	if (r->sa)
		su_root_remove_prepoll(sip_agent_root(r->sa));
	if (r->commit_timer)
		su_timer_destroy(r->commit_timer);
	if (r->purge_timer)
		su_timer_destroy(r->purge_timer);
	if (r->exiting) {
		/* the transports go before the agent: give back what bindings hold */
		registrar_each(r, release_flow, NULL);
		free(r->vapid_public);
		free(r->service);
		free(r);
		return; /* the bindings, their indexes and the schedule go with the process */
	}
	if (r->by_aor)
		strmap_each(r->by_aor, free_each, NULL);
	strmap_free(r->by_aor);
	strmap_free(r->by_id);
	strmap_free(r->by_pn);
	strmap_free(r->by_contact);
	strmap_free(r->by_source);
	free(r->vapid_public);
	free(r->service);
	free(r->heap);
	free(r->due_buf);
	free(r);
}

void registrar_set_push_support(struct registrar *r, const bool enabled[PN_PROVIDER_COUNT],
				const char *vapid_public, const char *service)
{
	memcpy(r->pns, enabled, sizeof(r->pns));
	free(r->vapid_public);
	r->vapid_public = vapid_public && enabled[PN_WEBPUSH] ? strdup(vapid_public) : NULL;
	free(r->service);
	r->service = service && service[0] && enabled[PN_HTTP] ? strdup(service) : NULL;
	if (!r->service)
		r->pns[PN_HTTP] = false; /* nothing to announce or to match */
}

void registrar_subscribe(struct registrar *r, registrar_event_fn *fn, void *ctx)
{
	if (r->n_subs < REGISTRAR_MAX_SUBS) {
		r->subs[r->n_subs].fn = fn;
		r->subs[r->n_subs].ctx = ctx;
		r->n_subs++;
	}
}

void registrar_notify(struct registrar *r, const struct binding *b, enum registrar_event ev)
{
	for (int i = 0; i < r->n_subs; i++)
		r->subs[i].fn(r->subs[i].ctx, b, ev);
}

void registrar_new_id(char out[BINDING_ID_LEN + 1])
{
	unsigned char raw[BINDING_ID_LEN / 2];
	static const char hex[] = "0123456789abcdef";

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		/* Not a secret, only unique: fall back to time and a counter. */
		static unsigned counter;
		unsigned long v = (unsigned long)time(NULL) ^ ((unsigned long)++counter << 32);
		memcpy(raw, &v, sizeof(raw) < sizeof(v) ? sizeof(raw) : sizeof(v));
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[BINDING_ID_LEN] = 0;
}

int registrar_contact_key(const url_t *u, char *buf, size_t len)
{
	const char *port = u->url_port && u->url_port[0] ? u->url_port : "5060";
	int n;

	if (!u->url_host)
		return -1;
	n = snprintf(buf, len, "%s@%s:%s", u->url_user ? u->url_user : "", u->url_host, port);
	if (n < 0 || (size_t)n >= len)
		return -1;
	for (char *p = strchr(buf, '@'); p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

static int contact_key_of(const char *uri, char *buf, size_t len)
{
	/* parsed on the stack: this runs for each of a million bindings at start */
	union {
		void *align;
		char area[1024];
	} mem;
	su_home_t *home = su_home_auto(&mem, sizeof(mem));
	url_t *u = home ? url_make(home, uri) : NULL;
	int rc = u ? registrar_contact_key(u, buf, len) : -1;

	if (home)
		su_home_deinit(home);
	return rc;
}

/*
 * sofia reports the close to every pending slot, and again at each later
 * error report on the same transport for as long as the slot is held (a
 * half-closed connection is reported when its input ends and again when
 * it is closed): the slot is released here, as nta does for its requests,
 * so that no report reaches a binding freed in between.
 */
static void flow_closed(tp_stack_t *stack, tp_client_t *client, tport_t *tp, msg_t *msg,
			int error)
{
	struct binding *b = (struct binding *)client;

	if (b->tp == tp) {
		log_debug("flow of binding %s closed", b->id);
		if (b->pend)
			tport_release(tp, b->pend, NULL, NULL, client, 0);
		b->pend = 0;
		tport_unref(b->tp);
		b->tp = NULL;
		b->flow_dead = true;
	}
}

void binding_set_flow(struct binding *b, tport_t *tp)
{
	if (b->tp == tp)
		return;
	if (b->tp) {
		if (b->pend)
			tport_release(b->tp, b->pend, NULL, NULL, (tp_client_t *)b, 0);
		tport_unref(b->tp);
	}
	b->tp = NULL;
	b->pend = 0;
	b->flow_dead = false;
	if (!tp)
		return;
	b->tp = tport_ref(tp);
	if (tport_is_reliable(tp)) {
		b->pend = tport_pend(tp, NULL, flow_closed, (tp_client_t *)b);
		if (b->pend < 0)
			b->pend = 0;
	}
}

/* Bytes of a binding whose inline area holds cap bytes. */
static size_t binding_size(size_t cap)
{
	size_t at = offsetof(struct binding, inline_strs);

	return at + cap > sizeof(struct binding) ? at + cap : sizeof(struct binding);
}

void binding_free(struct binding *b)
{
	if (!b)
		return;
	binding_set_flow(b, NULL);
	keepalive_free_leg(b->up);
	if (b->strs != b->inline_strs)
		slab_free(b->strs, b->strs_cap);
	slab_free(b, binding_size(b->inline_cap));
}

/*
 * Indexes whose key several bindings may share (a push token registered
 * under two AORs, two AORs registered from one socket): the map holds the
 * first binding, the others follow through the link at offset `link`.
 */
static struct binding **link_of(struct binding *b, size_t link)
{
	return (struct binding **)((char *)b + link);
}

static void chain_add(struct strmap *m, const char *key, struct binding *b, size_t link)
{
	void *head;

	if (strmap_swap(m, key, b, &head) < 0) {
		log_error("out of memory indexing binding %s", b->id);
		head = NULL;
	}
	*link_of(b, link) = head;
}

/* (The next binding, if it heads the chain now, is put under the same key.) */
static void chain_del(struct strmap *m, const char *key, struct binding *b, size_t link)
{
	struct binding *head = strmap_get(m, key);

	if (head == b) {
		if (*link_of(b, link))
			strmap_put(m, key, *link_of(b, link));
		else
			strmap_del(m, key);
	} else {
		for (struct binding *o = head; o; o = *link_of(o, link))
			if (*link_of(o, link) == b) {
				*link_of(o, link) = *link_of(b, link);
				break;
			}
	}
	*link_of(b, link) = NULL;
}

static void index_add(struct registrar *r, struct binding *b)
{
	chain_add(r->by_aor, b->aor, b, offsetof(struct binding, next));
	strmap_put(r->by_id, b->id, b);
	if (binding_is_push(b))
		chain_add(r->by_pn, b->pn.prid, b, offsetof(struct binding, pn_next));
	if (b->received)
		chain_add(r->by_source, b->received, b, offsetof(struct binding, src_next));
	if (b->contact_key)
		strmap_put(r->by_contact, b->contact_key, b);
	r->count++;
	registrar_schedule(r, b);
}

static void index_del(struct registrar *r, struct binding *b)
{
	chain_del(r->by_aor, b->aor, b, offsetof(struct binding, next));
	if (strmap_get(r->by_id, b->id) == b)
		strmap_del(r->by_id, b->id);
	if (binding_is_push(b))
		chain_del(r->by_pn, b->pn.prid, b, offsetof(struct binding, pn_next));
	if (b->received)
		chain_del(r->by_source, b->received, b, offsetof(struct binding, src_next));
	if (b->contact_key && strmap_get(r->by_contact, b->contact_key) == b)
		strmap_del(r->by_contact, b->contact_key);
	r->count--;
	registrar_unschedule(r, b);
}

int binding_save(struct registrar *r, struct binding *b)
{
	char *pn_key = binding_is_push(b) ? pn_identity_key(&b->pn) : NULL;
	struct store_binding sb = {
		.id = b->id,
		.aor = b->aor,
		.contact = b->contact,
		.instance = b->instance,
		.pn_key = pn_key,
		.received = b->received,
		.call_id = b->call_id,
		.cseq = b->cseq,
		.user_agent = b->user_agent,
		.q = b->q,
		.expires = b->expires,
		.updated = b->updated,
		.up_call_id = b->up ? b->up->call_id : NULL,
		.up_cseq = b->up ? b->up->cseq : 0,
		.up_expires = b->up ? b->up->expires : 0,
		.up_state = b->up ? b->up->state : NULL,
	};

	int rc = 0;

	if (!r->st) {
		free(pn_key);
		return 0;
	}
	registrar_write_begin(r);
	if (store_binding_put(r->st, &sb) < 0) {
		r->write_failed = true;
		rc = -1;
	}
	free(pn_key);
	return rc;
}

void binding_unsave(struct registrar *r, const char *id)
{
	if (!r->st)
		return;
	registrar_write_begin(r);
	if (store_binding_del(r->st, id) < 0)
		r->write_failed = true;
}

/* A binding's strings while its block is sized and filled (pack_strings). */
struct packer {
	char *at;   /* NULL: only counting */
	size_t len; /* bytes so far */
};

/* Place s (NULL when empty or absent) in the block; n = its length, or -1 for strlen. */
static char *pack(struct packer *p, const char *s, ssize_t n)
{
	char *dst;

	if (!s || !s[0] || !n)
		return NULL;
	if (n < 0)
		n = (ssize_t)strlen(s);
	dst = p->at ? p->at + p->len : NULL;
	if (dst) {
		memcpy(dst, s, (size_t)n);
		dst[n] = 0;
	}
	p->len += (size_t)n + 1;
	return dst;
}

/* Lay out d's strings (and ckey, and pn when push) into b's fields and block p. */
static void pack_fields(struct packer *p, struct binding *b, const struct binding_data *d,
			const char *ckey, bool push)
{
	b->aor = pack(p, d->aor, -1);
	b->contact = pack(p, d->contact, -1);
	b->instance = pack(p, d->instance, -1);
	b->received = pack(p, d->received, -1);
	b->call_id = pack(p, d->call_id, -1);
	b->user_agent = pack(p, d->user_agent, -1);
	b->contact_key = pack(p, ckey, -1);
	if (push)
		p->len += pn_identity_pack(&b->pn, d->pn, p->at ? p->at + p->len : NULL);
	else
		memset(&b->pn, 0, sizeof(b->pn));
}

/* Whether any string of d, or of its push identity, lies in [at, at + len). */
static bool borrows(const struct binding_data *d, const char *at, size_t len)
{
	const char *s[] = {d->aor, d->contact, d->instance, d->received, d->call_id, d->user_agent};

	if (!at)
		return false;
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (s[i] && s[i] >= at && s[i] < at + len)
			return true;
	if (d->pn) {
		const struct pn_identity *pn = d->pn;
		const char *p[] = {pn->token, pn->voip_token, pn->team_id, pn->topic, pn->prid,
				   pn->param, pn->wp_p256dh, pn->wp_auth, pn->service};
		for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
			if (p[i] && p[i] >= at && p[i] < at + len)
				return true;
	}
	return false;
}

/* The contact key of d, and whether d's identity is kept (pack_strings). */
struct pack_args {
	char ckey[320];
	bool has_ckey;
	bool push;
};

static void pack_args_of(struct pack_args *a, const struct binding_data *d)
{
	a->has_ckey = d->contact && contact_key_of(d->contact, a->ckey, sizeof(a->ckey)) == 0;
	/* an identity that has no key (pn_identity_key) cannot be matched: not push */
	a->push = d->pn && pn_identity_keyable(d->pn);
}

/* Bytes the strings of d take in a block. */
static size_t packed_len(const struct binding_data *d, const struct pack_args *a)
{
	struct binding scratch;
	struct packer p = {0};

	pack_fields(&p, &scratch, d, a->has_ckey ? a->ckey : NULL, a->push);
	return p.len;
}

/*
 * Fill the string fields of b from d: in b's inline area when they fit
 * there, else in its own block when that one is large enough, else in a
 * new block; never over a string d borrows. -1 on ENOMEM, b untouched
 * then. len = packed_len(d, a).
 */
static int pack_strings(struct binding *b, const struct binding_data *d, const struct pack_args *a,
			size_t len)
{
	bool own = b->strs && b->strs != b->inline_strs;
	bool inline_ok = len <= b->inline_cap && !borrows(d, b->inline_strs, b->inline_cap);
	bool own_ok = !inline_ok && own && len <= b->strs_cap && !borrows(d, b->strs, b->strs_cap);
	char *old = b->strs;
	uint32_t old_cap = b->strs_cap;
	struct packer p = {inline_ok ? b->inline_strs
				     : own_ok ? b->strs : slab_alloc(len ? len : 1),
			   0};

	if (!p.at)
		return -1;
	/* (no struct copy of b: its padding overlaps the inline area) */
	pack_fields(&p, b, d, a->has_ckey ? a->ckey : NULL, a->push);
	if (own && p.at != old)
		slab_free(old, old_cap); /* after: d may borrow from it */
	b->strs = p.at;
	b->strs_cap = inline_ok ? 0 : own_ok ? old_cap : (uint32_t)(len ? len : 1);
	return 0;
}

struct binding *registrar_upsert(struct registrar *r, struct binding *old, const struct binding_data *d)
{
	struct binding *b = old;
	struct binding *other;
	struct pack_args a;
	size_t len;

	pack_args_of(&a, d);
	len = packed_len(d, &a);
	if (!b) {
		/* its strings as they are now, allocated with it */
		b = slab_alloc(binding_size(len));
		if (!b)
			return NULL;
		b->inline_cap = (uint32_t)len;
		snprintf(b->id, sizeof(b->id), "%s", d->id);
	} else {
		index_del(r, b);
	}
	if (pack_strings(b, d, &a, len) < 0) {
		if (old)
			index_add(r, b); /* as it was: the caller answers the failure */
		else
			slab_free(b, binding_size(b->inline_cap));
		return NULL;
	}
	b->cseq = d->cseq;
	b->q = d->q;
	b->expires = d->expires;
	b->updated = d->updated;
	b->gen = r->gen;
	b->node = 0; /* a REGISTER we took makes it ours; take() sets another owner after */
	if (d->set_flow)
		binding_set_flow(b, d->tp);
	/*
	 * Within an AOR a push token is one device: a binding that took it over
	 * (a new instance) replaces the old one. Under another AOR it never
	 * does (SPEC 8): registering somebody's token must not unregister them.
	 */
	for (other = binding_is_push(b) ? strmap_get(r->by_pn, b->pn.prid) : NULL; other;
	     other = other->pn_next)
		if (other != b && b->aor && !strcmp(other->aor, b->aor) &&
		    pn_identity_same(&other->pn, &b->pn)) {
			log_info("push token of binding %s moved to %s (%s)", other->id, b->id,
				 b->aor);
			registrar_remove(r, other, "token re-registered by another instance");
			break;
		}
	if (!b->aor || !b->contact) {
		binding_free(b);
		return NULL;
	}
	index_add(r, b);
	return b;
}

struct binding *registrar_match(struct registrar *r, const char *aor, const char *instance,
				const struct pn_identity *pn, const char *contact_key)
{
	struct binding *head = strmap_get(r->by_aor, aor);

	if (instance)
		for (struct binding *b = head; b; b = b->next)
			if (b->instance && strcmp(b->instance, instance) == 0)
				return b;
	if (pn)
		for (struct binding *b = head; b; b = b->next)
			if (pn_identity_same(&b->pn, pn))
				return b;
	if (contact_key)
		for (struct binding *b = head; b; b = b->next)
			if (b->contact_key && strcmp(b->contact_key, contact_key) == 0 &&
			    (!instance || !b->instance))
				return b;
	return NULL;
}

/* Take b out of memory (and out of the store when unsave), then free it. */
static void drop(struct registrar *r, struct binding *b, const char *why, bool unsave)
{
	char tok[LOG_TOKEN_BUFSZ];

	log_info("binding %s of %s removed: %s%s%s", b->id, b->aor, why,
		 binding_is_push(b) ? ", push token " : "",
		 binding_is_push(b) ? log_token(b->pn.token ? b->pn.token : b->pn.voip_token, tok) : "");
	index_del(r, b);
	if (unsave) {
		binding_unsave(r, b->id);
		keepalive_release(r, b);
	} else {
		keepalive_forget(r, b); /* the node that owns it deals with upstream */
	}
	registrar_notify(r, b, REGISTRAR_REMOVED);
	registrar_unschedule(r, b); /* whatever the callbacks did, never free a scheduled one */
	binding_free(b);
}

void registrar_remove(struct registrar *r, struct binding *b, const char *why)
{
	drop(r, b, why, true);
}

void registrar_config_changed(struct registrar *r)
{
	registrar_reschedule_all(r);
}

int registrar_remove_aor(struct registrar *r, const char *aor, const char *why)
{
	struct binding *b;
	int n = 0;

	while ((b = strmap_get(r->by_aor, aor))) {
		registrar_remove(r, b, why);
		n++;
	}
	return n;
}

int registrar_remove_pn(struct registrar *r, const struct pn_identity *id, const char *why)
{
	struct pn_identity dead; /* id may be a binding's own, freed below */
	struct binding *b;
	int n = 0;

	if (!id->prid || pn_identity_copy(&dead, id) < 0)
		return -1;
	/* The token is dead for every AOR it was registered under. */
	for (b = strmap_get(r->by_pn, dead.prid); b;) {
		if (!pn_identity_same(&b->pn, &dead)) {
			b = b->pn_next;
			continue;
		}
		registrar_remove(r, b, why);
		n++;
		b = strmap_get(r->by_pn, dead.prid); /* the chain changed: from its head again */
	}
	pn_identity_cleanup(&dead);
	return n ? 0 : -1;
}

struct binding *registrar_find_source(struct registrar *r, const char *src)
{
	return src ? strmap_get(r->by_source, src) : NULL;
}

static int aor_count(const struct binding *head)
{
	int n = 0;

	for (; head; head = head->next)
		n++;
	return n;
}

/* Keep at most max bindings in an AOR: the least recently refreshed go. */
void registrar_enforce_limit(struct registrar *r, const char *aor, const struct binding *keep)
{
	int max = r->cfg->registrar.max_contacts_per_aor;
	struct binding *head;

	while ((head = strmap_get(r->by_aor, aor)) && aor_count(head) > max) {
		struct binding *oldest = NULL;
		for (struct binding *b = head; b; b = b->next)
			if (b != keep && (!oldest || b->updated < oldest->updated))
				oldest = b;
		if (!oldest)
			break;
		registrar_remove(r, oldest, "too many contacts for the AOR, oldest evicted");
	}
}

/*
 * Once a second, what the schedule says is due (at most REGISTRAR_TICK_MAX,
 * earliest first; the rest on the next tick): drop expired bindings,
 * announce (once per expiry time) push bindings about to expire so that a
 * wake-up push can ask the app to re-register (RFC 8599 5.5), and queue
 * the upstream refreshes that are due. Nothing is done per binding that
 * is not due.
 */
void registrar_purge_tick(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct registrar *r = (struct registrar *)arg;
	int64_t now = time(NULL);
	size_t n, expired = 0, refreshes = 0;

	if (r->unscheduled)
		registrar_reschedule_all(r);
	if (!r->due_buf && !(r->due_buf = malloc(REGISTRAR_TICK_MAX * sizeof(*r->due_buf))))
		return; /* the next tick tries again */
	n = registrar_take_due(r, now, r->due_buf, REGISTRAR_TICK_MAX);
	keepalive_flush(r);
	/* Expired first, so that nothing else is done for them. */
	for (size_t i = 0; i < n; i++) {
		struct binding *b = r->due_buf[i];

		if (b->expires <= now) {
			/* every node expires it; the one that owns it deletes it */
			drop(r, b, "expired", binding_owned(b));
			r->due_buf[i] = NULL;
			expired++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct binding *b = r->due_buf[i];

		if (!b)
			continue;
		if (binding_owned(b) && registrar_wakeup_due(r, b, now)) {
			b->wakeup_for = b->expires;
			registrar_notify(r, b, REGISTRAR_EXPIRING);
		}
		if (keepalive_due(b, now)) {
			keepalive_queue(r, b); /* schedules it again */
			refreshes++;
		} else {
			registrar_schedule(r, b);
		}
	}
	if (refreshes)
		keepalive_pace(r);
	/* Expired rows (bindings, and stored messages past messages.max_age) go
	 * when a binding expired, and once a minute in any case. */
	if (r->st && (expired || ++r->purge_ticks % 60 == 0)) {
		registrar_write_begin(r);
		store_purge(r->st, now);
	}
}

/* The index binding.node keeps for the node called name (0: this one, or none left). */
static uint8_t node_index(struct registrar *r, const char *name)
{
	if (!name || !r->self || !strcmp(name, r->self))
		return 0;
	for (int i = 0; i < r->n_nodes; i++)
		if (!strcmp(r->nodes[i], name))
			return (uint8_t)(i + 1);
	if (r->n_nodes == REGISTRAR_MAX_NODES || !(r->nodes[r->n_nodes] = strdup(name))) {
		log_warn("cluster: node %s not told apart from this one (too many nodes)", name);
		return 0;
	}
	return (uint8_t)++r->n_nodes;
}

/*
 * A binding as the store holds it, into memory: made, or updated in place
 * when its id is known (a refresh another node wrote, or a load that
 * meets a binding twice). NULL when it cannot be kept.
 */
static struct binding *take(struct registrar *r, const struct store_binding *sb)
{
	struct pn_identity pn = {0};
	struct binding_data d = {
		.id = sb->id,
		.aor = sb->aor,
		.contact = sb->contact,
		.instance = sb->instance,
		.received = sb->received,
		.call_id = sb->call_id,
		.cseq = sb->cseq,
		.user_agent = sb->user_agent,
		.q = sb->q,
		.expires = sb->expires,
		.updated = sb->updated,
	};
	const char *params = strchr(sb->contact, ';');
	uint8_t node = node_index(r, sb->node);
	struct binding *old = registrar_find_id(r, sb->id);
	bool adopted = old && old->node != 0 && node == 0; /* taken over from a dead node */
	char err[128];
	struct binding *b;

	if (params && pn_parse(params + 1, &pn, err, sizeof(err)) == PN_PARSE_OK)
		d.pn = &pn;
	/* A flow is on the node that took the REGISTER: ours is stale then. */
	d.set_flow = node != 0;
	b = registrar_upsert(r, old, &d);
	pn_identity_cleanup(&pn);
	if (!b)
		return NULL;
	b->node = node;
	if (node) /* its keep-alive is the other node's */
		keepalive_forget(r, b);
	else if (!b->up)
		keepalive_load(r, b, sb, time(NULL));
	if (adopted)
		keepalive_adopted(r, b, time(NULL));
	return b;
}

static int load_one(void *ctx, const struct store_binding *sb)
{
	struct registrar *r = ctx;

	if (!take(r, sb))
		log_warn("binding %s from the store could not be loaded", sb->id);
	return 0;
}

struct sweep {
	struct registrar *r;
	struct binding **stale;
	size_t n, cap;
};

static void sweep_one(void *ctx, struct binding *b)
{
	struct sweep *s = ctx;

	if (b->gen == s->r->gen)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct binding **p = realloc(s->stale, cap * sizeof(*p));
		if (!p)
			return; /* kept: the next resync looks again */
		s->stale = p;
		s->cap = cap;
	}
	s->stale[s->n++] = b;
}

/*
 * The end of a resync: a binding Redis did not mention is gone there, and
 * goes from memory; unless Redis lost its data (rebuild), when the ones
 * this node owns (and knows) are written back instead.
 */
static void resync_sweep(struct registrar *r, bool rebuild)
{
	struct sweep s = {.r = r};
	size_t rewritten = 0, dropped = 0;

	registrar_each(r, sweep_one, &s);
	for (size_t i = 0; i < s.n; i++) {
		struct binding *b = s.stale[i];

		if (rebuild && binding_owned(b)) {
			b->gen = r->gen;
			binding_save(r, b);
			rewritten++;
		} else {
			drop(r, b, "removed from Redis while this node could not hear it", false);
			dropped++;
		}
	}
	free(s.stale);
	if (rewritten || dropped)
		log_notice("cluster: after the resync, %zu binding(s) of ours written back to Redis, "
			   "%zu of other nodes forgotten", rewritten, dropped);
}

/* Another node wrote a binding, or removed one: memory follows. */
static void remote_change(void *ctx, enum store_change what, const struct store_binding *sb,
			  const char *id)
{
	struct registrar *r = ctx;
	struct binding *b = registrar_find_id(r, id);
	bool known = b != NULL;

	if (what == STORE_DEL) {
		if (b)
			drop(r, b, "removed by another node", false);
		return;
	}
	if (what == STORE_RESYNC_BEGIN) {
		r->gen++;
		return;
	}
	if (what == STORE_RESYNC_END || what == STORE_RESYNC_REBUILD) {
		resync_sweep(r, what == STORE_RESYNC_REBUILD);
		return;
	}
	if (b)
		b->gen = r->gen; /* heard of during a resync: current */
	if (what == STORE_OWNER) {
		/* a survivor took it over from a dead node: its keep-alive is theirs */
		if (b && (b->node = node_index(r, sb->node)) != 0)
			keepalive_forget(r, b);
		return;
	}
	if (sb->expires <= time(NULL))
		return;
	if (!(b = take(r, sb))) {
		log_warn("binding %s from node %s could not be kept in memory", sb->id,
			 sb->node ? sb->node : "?");
		return;
	}
	/* a resync announces only what is new to us: the rest was announced */
	if (what == STORE_PUT || !known)
		registrar_notify(r, b, REGISTRAR_BOUND);
}

int registrar_load(struct registrar *r)
{
	int64_t n;
	int rc;

	if (!r->st)
		return 0;
	/* sized once for all, rather than grown and rehashed while loading */
	n = store_binding_count(r->st) + (int64_t)r->count;
	if (n > 0) {
		struct strmap *maps[] = {r->by_id, r->by_aor, r->by_pn, r->by_contact, r->by_source};
		for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
			strmap_reserve(maps[i], (size_t)n);
		registrar_schedule_reserve(r, (size_t)n);
	}
	/* a generous bound per binding: only what is used is ever backed (slab.h) */
	if (n > 0 && slab_prefault_begin((size_t)n * 2048) < 0)
		log_warn("loading bindings without faulting memory in ahead: %s", strerror(errno));
	rc = store_binding_load(r->st, time(NULL), load_one, r);
	slab_prefault_end();
	return rc < 0 ? -1 : (int)r->count;
}

size_t registrar_lookup(struct registrar *r, const char *aor, struct binding **out, size_t max)
{
	size_t n = 0;

	for (struct binding *b = strmap_get(r->by_aor, aor); b && max > 0; b = b->next) {
		/* the best max by q, highest first: insertion into a bounded sorted list */
		size_t i;
		if (n == max && out[n - 1]->q >= b->q)
			continue;
		i = n < max ? n++ : n - 1;
		while (i > 0 && out[i - 1]->q < b->q) {
			out[i] = out[i - 1];
			i--;
		}
		out[i] = b;
	}
	return n;
}

struct binding *registrar_find_id(struct registrar *r, const char *id)
{
	return id ? strmap_get(r->by_id, id) : NULL;
}

struct binding *registrar_find_contact(struct registrar *r, const url_t *u)
{
	char key[320];

	if (!u || registrar_contact_key(u, key, sizeof(key)) < 0)
		return NULL;
	return strmap_get(r->by_contact, key);
}

size_t registrar_count(struct registrar *r)
{
	return r->count;
}

struct each_ctx {
	void (*fn)(void *ctx, struct binding *b);
	void *ctx;
};

static void each_aor(void *ctx, const char *key, void *value)
{
	struct each_ctx *e = ctx;

	for (struct binding *b = value; b; b = b->next)
		e->fn(e->ctx, b);
}

void registrar_each(struct registrar *r, void (*fn)(void *ctx, struct binding *b), void *ctx)
{
	struct each_ctx e = {fn, ctx};

	strmap_each(r->by_aor, each_aor, &e);
}

const char *binding_id(const struct binding *b)
{
	return b->id;
}

const char *binding_aor(const struct binding *b)
{
	return b->aor;
}

const char *binding_contact(const struct binding *b)
{
	return b->contact;
}

const char *binding_received(const struct binding *b)
{
	return b->received;
}

const char *binding_instance(const struct binding *b)
{
	return b->instance;
}

const char *binding_user_agent(const struct binding *b)
{
	return b->user_agent;
}

const struct pn_identity *binding_pn(const struct binding *b)
{
	return binding_is_push(b) ? &b->pn : NULL;
}

int64_t binding_expires(const struct binding *b)
{
	return b->expires;
}

int binding_q(const struct binding *b)
{
	return b->q;
}

tport_t *binding_tport(const struct binding *b)
{
	if (b->tp && !b->flow_dead && !tport_is_closed(b->tp))
		return b->tp;
	return NULL;
}

bool binding_local(const struct binding *b)
{
	return binding_owned(b);
}

const char *binding_owner(const struct registrar *r, const struct binding *b)
{
	return b->node && b->node <= r->n_nodes ? r->nodes[b->node - 1] : NULL;
}

bool binding_reachable(const struct binding *b)
{
	if (b->received && !strcmp(sip_uri_proto(b->received), "udp"))
		return true;
	return binding_tport(b) != NULL;
}
