/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the digest check of src/auth/auth.c (judge(), with
 * sofia's credential parser, our nonce, opaque, nonce-count and response
 * checks) on requests as sofia parses them off the wire, against a real
 * SQLite store holding one account (sip:alice@example.com, both HA1s).
 * "$NONCE" in the input becomes a fresh nonce of ours and "$OPAQUE" our
 * opaque, so the checks behind them are reached. The first byte says
 * whether the credentials are read as Authorization (REGISTER) or
 * Proxy-Authorization.
 * Invariants: no crash, no leak; a verdict is one of the four; nothing
 * passes without a response computed from alice's password, which the
 * fuzzer does not know (so nothing passes at all); a failure names its
 * reason; a judged header is one of the request's own.
 */
#include "auth/auth.c"

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_util.h>

#include "fuzz_stack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_stack stack;
static struct auth *au;

static void cleanup(void)
{
	auth_free(au);
	fuzz_stack_close(&stack);
	su_deinit();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char md5[AUTH_HEX_MAX + 1], sha[AUTH_HEX_MAX + 1];
	struct store_account a = {.aor = "sip:alice@example.com", .username = "alice",
				  .realm = "example.com", .ha1_md5 = md5, .ha1_sha256 = sha,
				  .created = 1, .updated = 1};

	log_set_level(SW_LOG_ERROR);
	if (su_init() != 0)
		abort();
	atexit(cleanup);
	if (fuzz_stack_open(&stack, "", "auth: { nonce_lifetime = 60; max_failures = 0; };") < 0 ||
	    auth_new(&au, &stack.cfg, stack.st) < 0 ||
	    auth_ha1(AUTH_MD5, "alice", "example.com", "not known to the fuzzer", md5) < 0 ||
	    auth_ha1(AUTH_SHA256, "alice", "example.com", "not known to the fuzzer", sha) < 0 ||
	    store_account_put(stack.st, &a) < 0)
		abort();
	return 0;
}

/* Copy of the input with $NONCE and $OPAQUE filled in (malloc'd, NUL-terminated). */
static char *fill(const uint8_t *data, size_t size, size_t *len)
{
	char nonce[NONCE_LEN + 1], *out = malloc(size * 10 + 1);
	size_t n = 0;

	if (!out)
		return NULL;
	auth_nonce_make(au, now_usec(au), nonce, sizeof(nonce));
	for (size_t i = 0; i < size; i++) {
		if (size - i >= 6 && !memcmp(data + i, "$NONCE", 6)) {
			n += (size_t)sprintf(out + n, "%s", nonce);
			i += 5;
		} else if (size - i >= 7 && !memcmp(data + i, "$OPAQUE", 7)) {
			n += (size_t)sprintf(out + n, "%s", au->opaque);
			i += 6;
		} else {
			out[n++] = (char)data[i];
		}
	}
	out[n] = '\0';
	*len = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct judgement j;
	msg_t *msg;
	sip_t *sip;
	char *text;
	size_t len;
	bool proxy;

	if (size < 1)
		return 0;
	proxy = data[0] & 1;
	text = fill(data + 1, size - 1, &len);
	if (!text)
		return 0;
	msg = msg_make(sip_default_mclass(), 0, text, len);
	free(text);
	if (!msg)
		return 0;
	sip = sip_object(msg);
	if (!sip || sip_sanity_check(sip) < 0 || (sip->sip_flags & MSG_FLG_ERROR) ||
	    !sip->sip_request)
		goto out;
	if (judge(au, sip, "sip:alice@example.com", proxy, now_usec(au), &j) < 0)
		abort(); /* the store is fine */
	if (j.v == V_PASS)
		abort(); /* passed without the password */
	if (j.v != V_NONE && j.v != V_STALE && j.v != V_FAIL)
		abort();
	if (j.v == V_FAIL && (!j.why || !j.why[0]))
		abort();
	if (j.used) {
		bool own = false;
		for (msg_auth_t *c = proxy ? sip->sip_proxy_authorization : sip->sip_authorization; c;
		     c = c->au_next)
			own |= c == j.used;
		if (!own)
			abort();
	}
	if (j.n_algos < 1 || j.n_algos > AUTH_ALGO_COUNT || strcmp(j.realm, "example.com") != 0)
		abort();
out:
	msg_destroy(msg);
	return 0;
}
