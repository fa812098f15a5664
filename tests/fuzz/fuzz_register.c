/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: REGISTER parsing as the registrar does it
 * (src/registrar/register.c parse_register(), with pn_parse(), the
 * contact key, q and expiry policy), then, in gateway mode, the Contact
 * rewriting of the REGISTER sent upstream (registrar_upstream_contact(): push
 * parameters out, the binding id in, or masquerading) and its
 * serialization as nta would send it. The registrar is the real one, on a
 * real SIP agent (127.0.0.1, any free port) and SQLite store in a private
 * directory; one stack in standalone mode and one in gateway mode.
 * The first input byte picks the mode, the providers configured and
 * masquerading; the rest is a SIP message as sofia parses it off the wire
 * (what nta or sip_msg_unsendable() refuse is skipped, as in fuzz_forward).
 * Invariants: a refusal carries a status the registrar may send and a
 * printable reason phrase that fits a Warning header; an accepted
 * REGISTER has at most max_contacts_per_aor contacts, each with a
 * bounded URI, a q in 0..1000, an expiry within policy and an identity
 * key for every push contact; a rewritten Contact carries no push
 * parameter when upstream.hide_push_params is on, and the copy
 * serializes. Anything else aborts.
 */
#include "registrar/register.c"

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_protos.h>

#include "fuzz_stack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_GATEWAY 0x01
#define FLAG_NO_APNS 0x02
#define FLAG_NO_FCM 0x04
#define FLAG_MASQUERADE 0x08
#define FLAG_NO_WEBPUSH 0x10

static struct fuzz_stack standalone, gateway;

static void cleanup(void)
{
	fuzz_stack_close(&standalone);
	fuzz_stack_close(&gateway);
	su_deinit();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(SW_LOG_ERROR);
	if (su_init() != 0)
		abort();
	atexit(cleanup);
	if (fuzz_stack_open(&standalone, "", "registrar: { max_contacts_per_aor = 4; };") < 0 ||
	    fuzz_stack_open(&gateway, "sip:127.0.0.2:5060", NULL) < 0)
		abort();
	return 0;
}

static void check_phrase(int status, const char *phrase)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	char warn[320];

	if (status != 400 && status != 403 && status != 416 && status != 423 && status != 500 &&
	    status != 555)
		abort();
	if (!phrase[0])
		abort();
	for (const char *p = phrase; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			abort(); /* would end up raw in the status line */
	snprintf(warn, sizeof(warn), "399 sipwake \"%s\"", phrase);
	if (!sip_warning_make(home, warn))
		abort(); /* registrar_handle sends it as the Warning */
	su_home_deinit(home);
}

static void check_accepted(struct registrar *r, const struct reg_req *q)
{
	const struct sw_config *cfg = r->cfg;
	int most = cfg->registrar.push_max_expires > cfg->registrar.max_expires
			   ? cfg->registrar.push_max_expires
			   : cfg->registrar.max_expires;

	if (q->passthrough)
		return; /* forwarded unchanged, nothing of it is used */
	if (strncmp(q->aor, "sip:", 4) != 0 || q->n > cfg->registrar.max_contacts_per_aor)
		abort();
	for (int i = 0; i < q->n; i++) {
		const struct reg_contact *c = &q->c[i];

		if (!c->uri || strlen(c->uri) > REGISTRAR_MAX_CONTACT_LEN || !c->ckey[0])
			abort();
		if (c->q < 0 || c->q > 1000 || c->expires < 0 || c->expires > most)
			abort();
		if (c->pn.provider != PN_NONE && !c->pn_key)
			abort(); /* a push contact that could never be matched or woken */
	}
}

/* What send_upstream() does to the Contacts, on a copy, then serialized. */
static void rewrite_upstream(struct registrar *r, msg_t *msg, struct reg_req *q, bool masquerade)
{
	msg_t *fwd = msg_copy(msg);
	sip_t *sip = fwd ? sip_object(fwd) : NULL;
	const char *proto = sip_uri_proto(r->cfg->upstream.uri);
	int i = 0;

	if (!sip)
		goto out;
	for (sip_contact_t *m = sip->sip_contact; m && i < q->n; m = m->m_next, i++) {
		snprintf(q->c[i].id, sizeof(q->c[i].id), "%016x", i);
		if (registrar_upstream_contact(r, msg_home(fwd), m, q->c[i].id, masquerade, proto) < 0)
			goto out;
		if (r->cfg->upstream.hide_push_params && m->m_url->url_params) {
			struct pn_identity pn;
			char err[200];

			if (pn_parse(m->m_url->url_params, &pn, err, sizeof(err)) != PN_PARSE_NONE)
				abort(); /* a push parameter went upstream */
			pn_identity_cleanup(&pn);
		}
	}
	if (msg_serialize(fwd, (msg_pub_t *)sip) == 0)
		msg_prepare(fwd);
out:
	msg_destroy(fwd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_stack *s;
	struct registrar *r;
	struct reg_req *q = NULL;
	msg_t *msg;
	sip_t *sip;
	char why[64], phrase[256] = "";
	int flags, status, min_expires = 0;

	if (size < 1)
		return 0;
	flags = data[0];
	s = flags & FLAG_GATEWAY ? &gateway : &standalone;
	r = s->reg;
	{
		const bool on[PN_PROVIDER_COUNT] = {false, !(flags & FLAG_NO_APNS),
						    !(flags & FLAG_NO_FCM), !(flags & FLAG_NO_WEBPUSH),
						    true};
		registrar_set_push_support(r, on, FUZZ_VAPID_PUBLIC, "acme");
	}
	msg = msg_make(sip_default_mclass(), 0, data + 1, size - 1);
	if (!msg)
		return 0;
	sip = sip_object(msg);
	/* What nta refuses, and what the agent answers 400 before the router sees it. */
	if (!sip || sip_sanity_check(sip) < 0 || (sip->sip_flags & MSG_FLG_ERROR) ||
	    sip_msg_unsendable(msg, why, sizeof(why)))
		goto out;
	if (!sip->sip_request || sip->sip_request->rq_method != sip_method_register)
		goto out; /* the router hands only REGISTERs to the registrar */
	q = reg_req_new(r, sip);
	if (!q)
		goto out;
	status = parse_register(r, sip, q, phrase, sizeof(phrase), &min_expires);
	if (status) {
		check_phrase(status, phrase);
		if (status == 423 && min_expires != r->cfg->registrar.min_expires)
			abort();
		goto out;
	}
	check_accepted(r, q);
	if (!config_standalone(r->cfg) && !q->passthrough && !q->wildcard)
		rewrite_upstream(r, msg, q, flags & FLAG_MASQUERADE);
out:
	reg_req_free(q);
	msg_destroy(msg);
	return 0;
}
