/* SPDX-License-Identifier: MIT */
/*
 * Digest authentication of requests (SPEC 4.7).
 *
 * Nonces: "<16 hex digits of a monotonic microsecond clock><32 hex digits
 * of HMAC-SHA256(per-process key, those 16)>". Nothing is stored when one
 * is issued; its MAC proves it ours, its clock says its age. A restart
 * draws a new key, so nonces of the previous process are answered with a
 * new challenge marked stale=true (the phone retries without asking).
 *
 * In a cluster every node must accept the nonces of the others: the key is
 * the cluster's secret "nonce" (store_secret), and the clock the wall
 * clock (the nodes' must agree within a second, NTP). A restart keeps the
 * key, so the nonces issued before it count as stale at their first use
 * (nc_floor), as if the key had changed: the table of counts seen was lost.
 * A node tells the others each nonce count it accepts (store_nonce_used),
 * and they record it as their own: credentials one node took are a replay
 * on every node once that message is in (a moment after, over Redis).
 *
 * Replay: the first use of a nonce records its nonce count (nc); a later
 * use must count higher. The table holds the nonces used within
 * auth.nonce_lifetime, at most MAX_NONCES: when full, it is emptied and
 * every nonce issued until then counts as stale (nc_floor), so a captured
 * Authorization can never be accepted twice, whatever the load.
 *
 * Failures (a wrong response, an unknown user) are counted per source
 * address and minute; beyond auth.max_failures the source gets 403 until
 * the minute is over.
 */
#include "auth_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sofia-sip/auth_digest.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "sipwake/config.h"
#include "sipwake/log.h"
#include "sipwake/stats.h"
#include "sipwake/store.h"
#include "sipwake/strmap.h"

#define KEY_LEN 32
#define TS_HEX 16
#define MAC_HEX 32
#define NONCE_LEN (TS_HEX + MAC_HEX)
#define MAX_NONCES 200000
#define MAX_SOURCES 100000
#define FAIL_WINDOW_US (60 * 1000000LL)

struct auth {
	const struct sw_config *cfg;
	struct store *st;
	bool shared;           /* in a cluster: the cluster's key and the wall clock */
	unsigned char key[KEY_LEN];
	char opaque[MAC_HEX + 1];
	int64_t last_usec;     /* the newest nonce's clock: nonces are unique */
	struct strmap *ncs;    /* nonce -> struct nc_seen */
	int64_t nc_floor;      /* nonces up to this clock and not in ncs: stale */
	int64_t ncs_swept;
	struct strmap *fails;  /* source address -> struct fail_count */
	int64_t fails_swept;
	int64_t full_warned;
};

struct nc_seen {
	int64_t usec; /* the nonce's clock */
	uint32_t nc;
};

struct fail_count {
	int64_t usec; /* start of its minute */
	int count;
	bool warned;
};

static int64_t now_usec(const struct auth *a)
{
	struct timespec ts;

	clock_gettime(a->shared ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* MAC_HEX hex digits of HMAC-SHA256(key, data). */
static void mac_hex(const struct auth *a, const char *data, char out[MAC_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), a->key, sizeof(a->key), (const unsigned char *)data, strlen(data),
		  mac, &len) ||
	    len * 2 < MAC_HEX) {
		memset(out, 'x', MAC_HEX); /* never matches */
		out[MAC_HEX] = 0;
		return;
	}
	auth_hex(mac, MAC_HEX / 2, out);
}

void auth_nonce_make(struct auth *a, int64_t usec, char *out, size_t len)
{
	char ts[TS_HEX + 1], mac[MAC_HEX + 1];

	snprintf(ts, sizeof(ts), "%016" PRIx64, (uint64_t)usec);
	mac_hex(a, ts, mac);
	snprintf(out, len, "%s%s", ts, mac);
}

/* The clock a nonce of ours carries, or -1 when it is not ours. */
static int64_t nonce_clock(struct auth *a, const char *nonce)
{
	char ts[TS_HEX + 1], mac[MAC_HEX + 1];

	if (!auth_is_hex(nonce, NONCE_LEN))
		return -1;
	memcpy(ts, nonce, TS_HEX);
	ts[TS_HEX] = 0;
	mac_hex(a, ts, mac);
	if (CRYPTO_memcmp(mac, nonce + TS_HEX, MAC_HEX) != 0)
		return -1;
	return (int64_t)strtoull(ts, NULL, 16);
}

/* What a nonce of clock t (nonce_clock) is worth at now. */
static enum auth_nonce nonce_age(const struct auth *a, int64_t t, int64_t now)
{
	if (t < 0 || t > now + 1000000)
		return AUTH_NONCE_BAD;
	if (now - t > (int64_t)a->cfg->auth.nonce_lifetime * 1000000)
		return AUTH_NONCE_STALE;
	return AUTH_NONCE_OK;
}

enum auth_nonce auth_nonce_check(struct auth *a, const char *nonce, int64_t now)
{
	return nonce_age(a, nonce_clock(a, nonce), now);
}

static void used_elsewhere(void *ctx, const char *nonce, uint32_t nc);

int auth_new(struct auth **out, const struct sw_config *cfg, struct store *st)
{
	struct auth *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return -1;
	a->cfg = cfg;
	a->st = st;
	a->shared = store_clustered(st);
	a->ncs = strmap_new();
	a->fails = strmap_new();
	if (!a->ncs || !a->fails ||
	    (a->shared ? store_secret(st, "nonce", a->key, sizeof(a->key)) < 0
		       : RAND_bytes(a->key, sizeof(a->key)) != 1)) {
		log_error("auth: cannot set up digest authentication (memory, randomness or the "
			  "cluster's secret)");
		auth_free(a);
		return -1;
	}
	mac_hex(a, "opaque", a->opaque);
	a->last_usec = now_usec(a);
	a->ncs_swept = a->fails_swept = a->last_usec;
	if (a->shared) {
		a->nc_floor = a->last_usec;
		store_watch_nonces(st, used_elsewhere, a);
	}
	*out = a;
	return 0;
}

static void free_value(void *ctx, const char *key, void *value)
{
	free(value);
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->shared)
		store_watch_nonces(a->st, NULL, NULL);
	if (a->ncs)
		strmap_each(a->ncs, free_value, NULL);
	if (a->fails)
		strmap_each(a->fails, free_value, NULL);
	strmap_free(a->ncs);
	strmap_free(a->fails);
	OPENSSL_cleanse(a->key, sizeof(a->key));
	free(a);
}

/* Drop (and free) the entries whose clock, the first int64_t of the value, is before *ctx. */
static bool older(void *ctx, const char *key, void *value)
{
	if (*(const int64_t *)value >= *(const int64_t *)ctx)
		return false;
	free(value);
	return true;
}

static void sweep_map(struct strmap *m, int64_t before)
{
	strmap_remove_if(m, older, &before);
}

static void source_ip(msg_t *msg, char *ip, size_t len)
{
	su_sockaddr_t su;
	socklen_t sl = sizeof(su);

	if (msg_get_address(msg, &su, &sl) < 0 ||
	    !su_inet_ntop(su.su_family, SU_ADDR(&su), ip, len))
		snprintf(ip, len, "?");
}

/* The failure record of a source for the current minute (NULL: untracked). */
static struct fail_count *fail_record(struct auth *a, const char *ip, int64_t now, bool create)
{
	struct fail_count *f = strmap_get(a->fails, ip);

	if (now - a->fails_swept > FAIL_WINDOW_US) {
		sweep_map(a->fails, now - FAIL_WINDOW_US);
		a->fails_swept = now;
		f = strmap_get(a->fails, ip);
	}
	if (f && now - f->usec > FAIL_WINDOW_US) {
		f->usec = now;
		f->count = 0;
		f->warned = false;
	}
	if (f || !create || strmap_count(a->fails) >= MAX_SOURCES)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f || strmap_put(a->fails, ip, f) < 0) {
		free(f);
		return NULL;
	}
	f->usec = now;
	return f;
}

static bool too_many_failures(struct auth *a, const char *ip, int64_t now)
{
	int max = a->cfg->auth.max_failures;
	struct fail_count *f = max > 0 ? fail_record(a, ip, now, false) : NULL;

	if (!f || f->count < max)
		return false;
	if (!f->warned) {
		f->warned = true;
		log_warn("auth: %s failed %d digest attempts within a minute: answering 403", ip,
			 f->count);
	}
	return true;
}

static void count_failure(struct auth *a, const char *ip, int64_t now)
{
	struct fail_count *f = a->cfg->auth.max_failures > 0 ? fail_record(a, ip, now, true) : NULL;

	if (f)
		f->count++;
}

/*
 * Record the first use of nonce (clock t) at count nc: true when this is a
 * count never seen, false for a replay (or a nonce the table lost).
 */
static bool nc_fresh(struct auth *a, const char *nonce, int64_t t, uint32_t nc, int64_t now)
{
	struct nc_seen *e = strmap_get(a->ncs, nonce);
	int64_t life = (int64_t)a->cfg->auth.nonce_lifetime * 1000000;

	if (e) {
		if (nc <= e->nc)
			return false;
		e->nc = nc;
		return true;
	}
	if (t <= a->nc_floor)
		return false;
	if (now - a->ncs_swept > life) {
		sweep_map(a->ncs, now - life);
		a->ncs_swept = now;
	}
	if (strmap_count(a->ncs) >= MAX_NONCES) {
		if (now - a->full_warned > FAIL_WINDOW_US) {
			a->full_warned = now;
			log_warn("auth: %d nonces in use within auth.nonce_lifetime: forgetting "
				 "them (their phones get one stale challenge)",
				 MAX_NONCES);
		}
		sweep_map(a->ncs, INT64_MAX);
		a->nc_floor = a->last_usec;
		return false;
	}
	e = calloc(1, sizeof(*e));
	if (!e || strmap_put(a->ncs, nonce, e) < 0) {
		free(e);
		return false;
	}
	e->usec = t;
	e->nc = nc;
	return true;
}

/* The algorithms to challenge with: configured ones the account has an HA1 for. */
static int offered(const struct auth *a, const struct auth_account *acc, int out[AUTH_ALGO_COUNT])
{
	int n = 0;

	for (char **p = a->cfg->auth.algorithms; p && *p && n < AUTH_ALGO_COUNT; p++) {
		int algo = auth_algo_parse(*p);
		if (algo >= 0 && (!acc->found || acc->ha1[algo][0]))
			out[n++] = algo;
	}
	return n;
}

/* Another node of the cluster accepted nonce at count nc: record it as ours. */
static void used_elsewhere(void *ctx, const char *nonce, uint32_t nc)
{
	struct auth *a = ctx;
	int64_t now = now_usec(a), t = nonce_clock(a, nonce);

	if (nonce_age(a, t, now) == AUTH_NONCE_OK)
		nc_fresh(a, nonce, t, nc, now);
}

enum verdict { V_PASS, V_NONE, V_STALE, V_FAIL };

/* Check one set of digest credentials against the account. */
static enum verdict check_response(struct auth *a, const sip_t *sip, const struct auth_account *acc,
				   const auth_response_t *ar, const int algos[], int n_algos,
				   int64_t now, const char **why)
{
	char want[AUTH_HEX_MAX + 1], got[AUTH_HEX_MAX + 1];
	int algo = auth_algo_parse(ar->ar_algorithm);
	bool allowed = false;
	size_t hl;
	char *end;
	unsigned long nc;
	int64_t t;

	for (int i = 0; i < n_algos; i++)
		allowed |= algos[i] == algo;
	if (!allowed) {
		*why = "an algorithm not offered";
		return V_FAIL;
	}
	if (!acc->found) {
		*why = "no account";
		return V_FAIL;
	}
	if (!ar->ar_username || strcmp(ar->ar_username, acc->username) != 0) {
		*why = "another username";
		return V_FAIL;
	}
	if (!ar->ar_qop || strcasecmp(ar->ar_qop, "auth") || !ar->ar_cnonce || !ar->ar_nc ||
	    !auth_is_hex(ar->ar_nc, 8) || !ar->ar_uri || !ar->ar_nonce || !ar->ar_response) {
		*why = "incomplete credentials (qop=auth, nc, cnonce, uri, nonce, response)";
		return V_FAIL;
	}
	if (ar->ar_opaque && strcmp(ar->ar_opaque, a->opaque) != 0) {
		*why = "a wrong opaque";
		return V_FAIL;
	}
	hl = auth_hex_len((enum auth_algo)algo);
	if (!auth_is_hex(ar->ar_response, hl) ||
	    auth_response((enum auth_algo)algo, acc->ha1[algo], ar->ar_nonce, ar->ar_nc,
			  ar->ar_cnonce, "auth", sip->sip_request->rq_method_name, ar->ar_uri,
			  want) < 0) {
		*why = "a malformed response";
		return V_FAIL;
	}
	auth_hex_lower(ar->ar_response, got, sizeof(got));
	if (CRYPTO_memcmp(want, got, hl) != 0) {
		*why = "a wrong password";
		return V_FAIL;
	}
	/* The credentials are right: what remains is the nonce's freshness. */
	t = nonce_clock(a, ar->ar_nonce);
	if (nonce_age(a, t, now) != AUTH_NONCE_OK) {
		*why = "an old nonce";
		return V_STALE;
	}
	nc = strtoul(ar->ar_nc, &end, 16);
	if (nc == 0 || !nc_fresh(a, ar->ar_nonce, t, (uint32_t)nc, now)) {
		*why = "a nonce count already used (replay)";
		return V_STALE;
	}
	if (a->shared)
		store_nonce_used(a->st, ar->ar_nonce, (uint32_t)nc);
	return V_PASS;
}

static void challenge(struct auth *a, nta_incoming_t *irq, bool proxy, const char *realm,
		      const int algos[], int n, bool stale)
{
	char nonce[NONCE_LEN + 1], hdrs[2048];
	size_t off = 0;
	int64_t now = now_usec(a);

	a->last_usec = now > a->last_usec ? now : a->last_usec + 1;
	auth_nonce_make(a, a->last_usec, nonce, sizeof(nonce));
	for (int i = 0; i < n; i++) {
		int w = snprintf(hdrs + off, sizeof(hdrs) - off,
				 "%s%s: Digest realm=\"%s\", nonce=\"%s\", opaque=\"%s\", "
				 "algorithm=%s, qop=\"auth\"%s",
				 i ? "\r\n" : "", proxy ? "Proxy-Authenticate" : "WWW-Authenticate",
				 realm, nonce, a->opaque, auth_algo_name((enum auth_algo)algos[i]),
				 stale ? ", stale=true" : "");
		if (w < 0 || (size_t)w >= sizeof(hdrs) - off)
			break;
		off += (size_t)w;
	}
	if (proxy)
		nta_incoming_treply(irq, SIP_407_PROXY_AUTH_REQUIRED, SIPTAG_HEADER_STR(hdrs),
				    TAG_END());
	else
		nta_incoming_treply(irq, SIP_401_UNAUTHORIZED, SIPTAG_HEADER_STR(hdrs), TAG_END());
	stats_sip_response(proxy ? 407 : 401);
}

/* What the credentials of a request are worth, and what to challenge it with. */
struct judgement {
	enum verdict v;
	const char *why;
	msg_auth_t *used; /* the credentials judged */
	struct auth_account acc;
	const char *realm;
	int algos[AUTH_ALGO_COUNT];
	int n_algos;
	bool no_ha1; /* the account has no HA1 of a configured algorithm */
};

/* Judge the request's credentials for aor at time now: 0, or -1 when the store failed. */
static int judge(struct auth *a, const sip_t *sip, const char *aor, bool proxy, int64_t now,
		 struct judgement *j)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	msg_auth_t *creds = proxy ? sip->sip_proxy_authorization : sip->sip_authorization;

	memset(j, 0, sizeof(*j));
	j->v = V_NONE;
	j->why = "no credentials";
	if (auth_account_load(a->st, aor, &j->acc) < 0)
		return -1;
	j->realm = j->acc.found ? j->acc.realm : config_auth_realm(a->cfg);
	j->n_algos = offered(a, &j->acc, j->algos);
	for (msg_auth_t *c = creds; c && j->v == V_NONE; c = c->au_next) {
		auth_response_t ar = {.ar_size = sizeof(ar)};

		if (!c->au_scheme || strcasecmp(c->au_scheme, "Digest") != 0 || !c->au_params ||
		    auth_digest_response_get(home, &ar, c->au_params) < 0 || !ar.ar_realm ||
		    strcmp(ar.ar_realm, j->realm) != 0)
			continue; /* credentials for someone else (another hop's realm) */
		j->used = c;
		j->v = check_response(a, sip, &j->acc, &ar, j->algos, j->n_algos, now, &j->why);
	}
	su_home_deinit(home);
	if (j->n_algos == 0) {
		/* It cannot succeed; challenge as for an AOR without an account. */
		struct auth_account none = {0};

		j->no_ha1 = true;
		j->n_algos = offered(a, &none, j->algos);
	}
	return 0;
}

bool auth_request(struct auth *a, nta_incoming_t *irq, msg_t *msg, sip_t *sip, const char *aor,
		  bool proxy)
{
	const char *method = sip->sip_request->rq_method_name;
	struct judgement j;
	int64_t now = now_usec(a);
	char ip[64];

	source_ip(msg, ip, sizeof(ip));
	if (too_many_failures(a, ip, now)) {
		stats_count("sipwake_auth_total", "result", "refused", NULL);
		nta_incoming_treply(irq, 403, "Too Many Failed Attempts", TAG_END());
		stats_sip_response(403);
		nta_incoming_destroy(irq);
		return false;
	}
	if (judge(a, sip, aor, proxy, now, &j) < 0) {
		stats_count("sipwake_auth_total", "result", "error", NULL);
		nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, SIPTAG_RETRY_AFTER_STR("5"),
				    TAG_END());
		stats_sip_response(500);
		nta_incoming_destroy(irq);
		return false;
	}
	if (j.v == V_PASS) {
		stats_count("sipwake_auth_total", "result", "ok", NULL);
		msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)j.used);
		return true;
	}
	if (j.v == V_FAIL) {
		count_failure(a, ip, now);
		log_info("auth: %s for %s from %s refused: %s", method, aor, ip, j.why);
	} else if (j.v == V_STALE) {
		log_debug("auth: %s for %s from %s: %s, challenged again (stale)", method, aor, ip,
			  j.why);
	}
	if (j.no_ha1)
		log_warn("auth: the account of %s has no HA1 for any of auth.algorithms", aor);
	stats_count("sipwake_auth_total", "result",
		    j.v == V_FAIL ? "failed" : j.v == V_STALE ? "stale" : "challenged", NULL);
	challenge(a, irq, proxy, j.realm, j.algos, j.n_algos, j.v == V_STALE);
	nta_incoming_destroy(irq);
	return false;
}
