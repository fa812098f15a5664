/* SPDX-License-Identifier: MIT */
/*
 * The node-to-node hop (SPEC 9): in a cluster, a request for a binding
 * another node owns goes to that node (at the URI its heartbeat gives),
 * which sends it on the phone's flow. Only the owner can reach a phone
 * behind its NAT or on its TCP/TLS connection.
 *
 * The hop carries "X-Sipwake-Hop: ID;ts=UNIX;mac=HEX": ID the binding, the
 * MAC an HMAC-SHA256 with the installation secret (shared by the cluster)
 * over the binding, the time, the Call-ID and the CSeq. A node takes a
 * request as a peer's only with a valid MAC less than HOP_WINDOW s old;
 * then it may reach that one binding and nothing else (router.c's
 * may_reach[SRC_PEER]). A stranger who forges or replays the header gets
 * 403, and a replay within the window can only repeat the same request to
 * the same phone.
 */
#include "router_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>

#include "sipwake/log.h"
#include "sipwake/stats.h"

#define HOP_HEADER "X-Sipwake-Hop"
#define HOP_WINDOW 60  /* s a hop's MAC stays good (clocks of the nodes may differ a little) */
#define HOP_MAC_HEX 32 /* hex digits of the MAC that go on the wire */

static int hop_mac(const struct router *rt, const char *id, long long ts, const sip_t *sip,
		   char out[HOP_MAC_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char data[600];
	int n;

	if (!sip->sip_call_id || !sip->sip_cseq)
		return -1;
	n = snprintf(data, sizeof(data), "hop|%s|%lld|%s|%u %s", id, ts, sip->sip_call_id->i_id,
		     (unsigned)sip->sip_cseq->cs_seq, sip->sip_cseq->cs_method_name);
	if (n < 0 || (size_t)n >= sizeof(data) ||
	    !HMAC(EVP_sha256(), rt->secret, sizeof(rt->secret), (const unsigned char *)data,
		  (size_t)n, mac, &len) ||
	    len * 2 < HOP_MAC_HEX)
		return -1;
	for (int i = 0; i < HOP_MAC_HEX / 2; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[HOP_MAC_HEX] = 0;
	return 0;
}

/* Take every hop header out of msg; the first one's value into buf ("" when none). */
static void hop_take(msg_t *msg, sip_t *sip, char *buf, size_t len)
{
	sip_unknown_t *u = sip->sip_unknown, *next;

	buf[0] = 0;
	for (; u; u = next) {
		next = u->un_next;
		if (!u->un_name || strcasecmp(u->un_name, HOP_HEADER))
			continue;
		if (!buf[0])
			snprintf(buf, len, "%s", u->un_value ? u->un_value : "");
		msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)u);
	}
}

const char *router_hop_of(struct router *rt, const struct binding *b)
{
	const char *owner = binding_owner(rt->reg, b);

	return owner ? store_node_hop(rt->st, owner) : NULL;
}

bool router_can_reach(struct router *rt, const struct binding *b)
{
	if (!binding_local(b) && router_hop_of(rt, b))
		return true;
	/* ours, or its owner is gone: straight to it (a UDP contact) if we can */
	return binding_reachable(b);
}

int router_hop_mark(struct router *rt, msg_t *msg, sip_t *sip, const struct binding *b)
{
	char mac[HOP_MAC_HEX + 1], value[128], old[8];
	long long ts = (long long)time(NULL);
	sip_unknown_t *h;

	hop_take(msg, sip, old, sizeof(old)); /* never one that came with the request */
	if (hop_mac(rt, binding_id(b), ts, sip, mac) < 0)
		return -1;
	snprintf(value, sizeof(value), HOP_HEADER ": %s;ts=%lld;mac=%s", binding_id(b), ts, mac);
	/* inserted among the headers (an added one would follow a copy's body) */
	h = (sip_unknown_t *)sip_header_make(msg_home(msg), sip_unknown_class, value);
	return h && msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)h) == 0 ? 0 : -1;
}

int router_hop_check(struct router *rt, msg_t *msg, sip_t *sip, char *id, size_t len)
{
	char value[256], want[HOP_MAC_HEX + 1];
	const char *ts_at, *mac_at;
	long long ts;
	size_t n;

	hop_take(msg, sip, value, sizeof(value));
	if (!value[0])
		return 0;
	n = strcspn(value, ";");
	ts_at = strstr(value, ";ts=");
	mac_at = strstr(value, ";mac=");
	if (!store_clustered(rt->st) || n == 0 || n >= len || !ts_at || !mac_at ||
	    sscanf(ts_at + 4, "%lld", &ts) != 1 || strlen(mac_at + 5) != HOP_MAC_HEX)
		goto bad;
	memcpy(id, value, n);
	id[n] = 0;
	if (ts < (long long)time(NULL) - HOP_WINDOW || ts > (long long)time(NULL) + HOP_WINDOW ||
	    hop_mac(rt, id, ts, sip, want) < 0 || CRYPTO_memcmp(want, mac_at + 5, HOP_MAC_HEX))
		goto bad;
	return 1;
bad:
	log_warn("%s with a forged or stale %s header refused (403)",
		 sip->sip_request ? sip->sip_request->rq_method_name : "request", HOP_HEADER);
	stats_count("sipwake_cluster_hop_refused_total", NULL);
	return -1;
}
