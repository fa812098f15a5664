/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the router's trust decision (src/router/router.c:
 * classify(), find_target(), pick_target() and the may_reach[] table) on
 * real objects: a SIP agent, a store, a registrar with two bindings (alice
 * from 127.0.0.3:5070 over UDP, bob with FCM push parameters from
 * 127.0.0.4:5080) and a router, once in standalone mode and once in
 * gateway mode (upstream 127.0.0.2). The dialog-token secret is fixed so
 * that the seeds' swd= tokens are valid and a run is deterministic.
 * Input: byte 0 picks the stack (bit 3) and the source address (bits
 * 0-2: upstream, alice's flow, bob's flow, alice's IP on another port, or
 * 127.0.0.<byte 1>:<5000 + byte 2>); the rest is a request, with "$PORT"
 * replaced by the agent's port so that Routes can name us. The request
 * goes through what router_handle does before it picks a target (sanity
 * checks, the forwarded copy with Max-Forwards and our Routes popped).
 * Invariants: the source class is what the address says; every target
 * kind comes with the reach its branch names; may_reach[] allows it; and
 * a stranger never gets a T_ROUTE, a T_BINDING by REACH_BINDING or a
 * T_UPSTREAM by REACH_OUTBOUND. A violation aborts.
 */
#include "router/router.c"

#include <arpa/inet.h>
#include <sofia-sip/msg.h>

#include "fuzz_stack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UPSTREAM_IP "127.0.0.2"
#define HDR_LEN 3 /* stack/source selector, then two address bytes */

struct env {
	struct fuzz_stack s;
	struct router *rt;
	char port[8];
};

static struct env standalone, gateway;

static const struct {
	const char *id, *aor, *contact, *received;
} bindings[] = {
	{"00000000000000b1", "sip:alice@example.com", "sip:alice@10.0.0.1:5070;transport=udp",
	 "sip:127.0.0.3:5070;transport=udp"},
	{"00000000000000b2", "sip:bob@example.com",
	 "sip:bob@10.0.0.2:5080;transport=tcp;pn-provider=fcm;pn-prid=dGVzdA:APA91bH-abc_DEF.123",
	 "sip:127.0.0.4:5080;transport=tcp"},
};

static void env_close(struct env *e)
{
	router_free(e->rt);
	e->rt = NULL;
	fuzz_stack_close(&e->s);
}

static void cleanup(void)
{
	env_close(&standalone);
	env_close(&gateway);
	su_deinit();
}

static void env_open(struct env *e, const char *upstream)
{
	if (fuzz_stack_open(&e->s, upstream, NULL) < 0 ||
	    router_new(&e->rt, e->s.sa, e->s.reg, NULL, e->s.st) < 0)
		abort();
	memset(e->rt->secret, 0x5a, sizeof(e->rt->secret)); /* the seeds' tokens use it */
	for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++)
		if (!fuzz_stack_bind(&e->s, bindings[i].id, bindings[i].aor, bindings[i].contact,
				     bindings[i].received, NULL))
			abort();
	snprintf(e->port, sizeof(e->port), "%s", fuzz_stack_port(&e->s));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(SW_LOG_ERROR);
	if (su_init() != 0)
		abort();
	atexit(cleanup);
	env_open(&standalone, "");
	env_open(&gateway, "sip:" UPSTREAM_IP ":5060");
	return 0;
}

/* The source address the selector byte names; *cls is the class it must get. */
static void source_of(struct env *e, const uint8_t *h, struct sockaddr_in *sin, enum source *cls)
{
	static const struct {
		const char *ip;
		int port;
	} fixed[] = {{UPSTREAM_IP, 5060}, {"127.0.0.3", 5070}, {"127.0.0.4", 5080}, {"127.0.0.3", 5071}};
	unsigned sel = h[0] & 7;
	char ip[16];
	int port;

	if (sel < 4) {
		snprintf(ip, sizeof(ip), "%s", fixed[sel].ip);
		port = fixed[sel].port;
	} else {
		snprintf(ip, sizeof(ip), "127.0.0.%u", h[1]);
		port = 5000 + h[2];
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	*cls = SRC_STRANGER;
	if (e == &gateway && !strcmp(ip, UPSTREAM_IP)) {
		*cls = SRC_UPSTREAM;
		return;
	}
	for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++) {
		char src[64];
		snprintf(src, sizeof(src), "sip:%s:%d;", ip, port);
		if (!strncmp(bindings[i].received, src, strlen(src)))
			*cls = SRC_CLIENT;
	}
}

/* Copy of the input with every "$PORT" replaced by our port (malloc'd, NUL-terminated). */
static char *with_port(const char *port, const uint8_t *data, size_t size, size_t *len)
{
	char *out = malloc(size * 2 + 1); /* "$PORT" is 5 bytes, a port at most 5 */
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < size; i++) {
		if (size - i >= 5 && !memcmp(data + i, "$PORT", 5)) {
			n += (size_t)sprintf(out + n, "%s", port);
			i += 4;
		} else {
			out[n++] = (char)data[i];
		}
	}
	out[n] = '\0';
	*len = n;
	return out;
}

static void check_target(const struct target *tg, enum source src)
{
	if (tg->kind == T_NONE)
		return;
	switch (tg->kind) {
	case T_ROUTE:
		if (tg->reach != REACH_HOP)
			abort();
		break;
	case T_BINDING:
		if (!tg->b || (tg->reach != REACH_DIALOG && tg->reach != REACH_BINDING))
			abort();
		break;
	case T_UPSTREAM:
		if (tg->reach != REACH_USER && tg->reach != REACH_OUTBOUND)
			abort();
		break;
	case T_AOR:
		if (tg->reach != REACH_USER || strncmp(tg->aor, "sip:", 4) != 0)
			abort();
		break;
	default:
		abort();
	}
	if (!may_reach[src][tg->reach])
		abort(); /* pick_target let through what the table refuses */
	if (src == SRC_STRANGER &&
	    (tg->kind == T_ROUTE || (tg->kind == T_BINDING && tg->reach == REACH_BINDING) ||
	     (tg->kind == T_UPSTREAM && tg->reach == REACH_OUTBOUND)))
		abort(); /* an open relay */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env *e;
	struct sockaddr_in sin;
	enum source want, src;
	struct target tg;
	msg_t *msg = NULL, *fwd = NULL;
	sip_t *sip, *fsip;
	char why[64], *text;
	size_t len;

	if (size < HDR_LEN)
		return 0;
	e = data[0] & 8 ? &gateway : &standalone;
	source_of(e, data, &sin, &want);
	text = with_port(e->port, data + HDR_LEN, size - HDR_LEN, &len);
	if (!text)
		return 0;
	msg = msg_make(sip_default_mclass(), 0, text, len);
	free(text);
	if (!msg)
		return 0;
	sip = sip_object(msg);
	/* What nta and the agent refuse, and what router_handle does not route. */
	if (!sip || sip_sanity_check(sip) < 0 || (sip->sip_flags & MSG_FLG_ERROR) ||
	    sip_msg_unsendable(msg, why, sizeof(why)) || !sip->sip_request ||
	    sip->sip_request->rq_method == sip_method_register)
		goto out;
	msg_set_address(msg, (su_sockaddr_t *)&sin, sizeof(sin));
	src = classify(e->rt, msg, from_upstream(e->rt, msg));
	if (src != want)
		abort();
	/* The forwarded copy, as proxy_txn_copy_request() and route_ack() make it. */
	fwd = msg_copy(msg);
	if (!fwd)
		goto out;
	fsip = sip_object(fwd);
	if (sip_decrement_max_forwards(fwd, fsip) < 0)
		goto out;
	sip_pop_own_routes(e->s.sa, fwd, fsip);
	pick_target(e->rt, msg, sip, fsip, &tg, src, NULL);
	check_target(&tg, src);
out:
	msg_destroy(fwd);
	msg_destroy(msg);
	return 0;
}
