/* SPDX-License-Identifier: MIT */
/*
 * The SIP agent: one nta agent on the daemon's su_root, with a transport per
 * sip.listen entry (TLS from the configured certificate and key); every
 * request that no transaction of nta's matches goes to the handler main.c
 * installed (agent_message); and helpers shared by the registrar and the
 * forwarding engine: our own URIs, Route popping, Record-Route,
 * Max-Forwards, source address.
 */
#include "sipwake/sip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/sresolv.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#include "sipwake/log.h"
#include "sipwake/proxy.h"
#include "sipwake/stats.h"

#include "sockets.h"

#define MAX_OWN 16

struct own_addr {
	char host[64];
	char port[8];
	char proto[8];
	char uri[128]; /* "sip:HOST:PORT;transport=PROTO" */
};

struct sip_agent {
	su_home_t home[1];
	su_root_t *root;
	nta_agent_t *nta;
	const struct sw_config *cfg;
	sip_request_fn *handler;
	void *handler_ctx;
	struct own_addr own[MAX_OWN];
	int n_own;
	struct sip_sockets socks; /* our listening sockets (sockets.c) */
	char tls_dir[64];
};

#define OVERLOAD_RETRY_AFTER "2" /* s: a client turned away while overloaded waits this long */

/*
 * What an overloaded sipwake turns away: a request that starts something
 * (a registration, a call, a message, a subscription), not one within a
 * dialog or an ACK or CANCEL, which finish work already taken on.
 */
static bool new_work(const sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;

	return m != sip_method_ack && m != sip_method_cancel &&
	       !(sip->sip_to && sip->sip_to->a_tag);
}

/* Answer a request that has no transaction: nothing is kept for it. */
static void reply_stateless(nta_agent_t *nta, msg_t *msg, int status, const char *phrase,
			    const char *retry_after)
{
	nta_msg_treply(nta, msg, status, phrase,
		       TAG_IF(retry_after, SIPTAG_RETRY_AFTER_STR(retry_after)), TAG_END());
	stats_sip_response(status);
}

/*
 * A request that has a server transaction (irq): the handler's answer as
 * nta's own leg dispatch treats it: 0 = the handler answered or keeps the
 * irq; a status >= 100 is sent here, and a final one ends the irq.
 */
static void serve(struct sip_agent *a, nta_incoming_t *irq, const sip_t *sip)
{
	msg_t *msg;
	int status;

	if (proxy_absorb(irq, sip))
		return; /* for a transaction that has its 2xx */
	msg = nta_incoming_getrequest(irq);
	status = a->handler(a->handler_ctx, irq, msg, (sip_t *)sip);
	msg_destroy(msg); /* getrequest gave us a reference */
	if (status == 0)
		return;
	if (status < 100 || status > 699 ||
	    (sip->sip_request->rq_method == sip_method_invite && status < 300 && status >= 200)) {
		log_error("handler answered %s with %d", sip->sip_request->rq_method_name, status);
		status = 500;
	}
	if (nta_incoming_status(irq) < 200) {
		nta_incoming_treply(irq, status, NULL, TAG_END());
		stats_sip_response(status);
	}
	if (status >= 200)
		nta_incoming_destroy(irq);
}

/*
 * Every message nta could not match to a transaction of its own comes
 * here; there is no default leg, so this is also where every new request
 * starts. What is turned away (overload, a message we could not forward)
 * is answered statelessly, before a server transaction exists: under a
 * storm a 503 then costs a parse and a send, and nothing is held for the
 * 32 s a transaction would keep its request. A retransmission of a request
 * we did take on is matched by nta and never gets here.
 *
 * A 2xx to an INVITE that accepted.c still remembers (a retransmission of
 * the UAS, a late fork, once the client transaction is gone) is relayed
 * statelessly; other stray responses are dropped. An ACK goes to the
 * handler without a transaction.
 */
static int agent_message(nta_agent_magic_t *magic, nta_agent_t *nta, msg_t *msg, sip_t *sip)
{
	struct sip_agent *a = (struct sip_agent *)magic;
	nta_incoming_t *irq;
	char why[64];

	if (!sip || !sip->sip_request) {
		if (!(sip && sip->sip_status && proxy_relay_stray(nta, msg, sip)))
			msg_destroy(msg);
		return 0;
	}
	if (sip->sip_request->rq_method == sip_method_ack) {
		if (sip_msg_unsendable(msg, why, sizeof(why)))
			log_debug("ACK dropped: %s", why);
		else if (a->handler)
			a->handler(a->handler_ctx, NULL, msg, sip);
		msg_destroy(msg);
		return 0;
	}
	if (!a->handler) {
		reply_stateless(nta, msg, SIP_503_SERVICE_UNAVAILABLE, NULL);
		return 0;
	}
	if (new_work(sip) && sip_sockets_overloaded(&a->socks)) {
		/* Behind: turned away at the cost of a reply, before any work. */
		reply_stateless(nta, msg, 503, "Overloaded", OVERLOAD_RETRY_AFTER);
		stats_count("sipwake_overload_rejected_total", NULL);
		return 0;
	}
	if (sip_msg_unsendable(msg, why, sizeof(why))) {
		/* Refused before anything copies it. */
		log_debug("%s refused: %s", sip->sip_request->rq_method_name, why);
		reply_stateless(nta, msg, 400, why, NULL);
		return 0;
	}
	irq = nta_incoming_create(nta, NULL, msg, sip, TAG_END()); /* takes msg */
	if (!irq) {
		log_error("cannot create a server transaction for %s",
			  sip->sip_request->rq_method_name);
		return 0;
	}
	serve(a, irq, sip);
	return 0;
}

/*
 * sofia's resolver (sres) takes its port from this variable of
 * libsofia-sip (53; its own tests change it) and 1.12.11's resolv.conf
 * parser has no "port" option. A sip.resolv_conf may say "port N" (a DNS
 * server on another port, as the tests run on loopback): we apply it.
 */
extern uint16_t _sres_default_port;

static void apply_resolv_port(const char *path)
{
	FILE *f = path && path[0] ? fopen(path, "r") : NULL;
	char line[256];
	unsigned port;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " port %u", &port) == 1 && port > 0 && port < 65536)
			_sres_default_port = (uint16_t)port;
	fclose(f);
}

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt" /* Debian's ca-certificates */

/* True when the upstream is reached over TLS (sips: or transport=tls). */
static bool upstream_tls(const struct sw_config *cfg)
{
	return !config_standalone(cfg) && !strcmp(sip_uri_proto(cfg->upstream.uri), "tls");
}

/* True when sipwake checks the upstream's certificate (SPEC 3: upstream.tls_verify). */
static bool verify_upstream(const struct sw_config *cfg)
{
	return upstream_tls(cfg) && cfg->upstream.tls_verify;
}

/*
 * Write key + certificate into a private directory in sofia's layout.
 * sofia has one CA file per TLS transport, for both directions: it holds
 * the CAs clients are checked against (sip.tls.ca_file, else our own
 * certificate) and, when the upstream is checked, the CAs trusted for it
 * (upstream.ca_file, else the system's trust store).
 */
static int make_tls_dir(struct sip_agent *a)
{
	const struct sw_config *cfg = a->cfg;
	static const char *const names[] = {"agent.pem", "cafile.pem"};
	int rc = -1;

	snprintf(a->tls_dir, sizeof(a->tls_dir), "/tmp/sipwake-tls-XXXXXX");
	if (!mkdtemp(a->tls_dir)) {
		log_error("cannot create a directory for TLS material: %s", strerror(errno));
		a->tls_dir[0] = 0;
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		const char *srcs[3];
		int n = 0;
		char path[128];
		FILE *out;

		if (i == 0) {
			srcs[n++] = cfg->sip.tls.private_key;
			srcs[n++] = cfg->sip.tls.certificate;
		} else {
			srcs[n++] = (cfg->sip.tls.ca_file && cfg->sip.tls.ca_file[0])
					    ? cfg->sip.tls.ca_file
					    : cfg->sip.tls.certificate;
			if (verify_upstream(cfg))
				srcs[n++] = (cfg->upstream.ca_file && cfg->upstream.ca_file[0])
						    ? cfg->upstream.ca_file
						    : SYSTEM_CA_BUNDLE;
		}
		snprintf(path, sizeof(path), "%s/%s", a->tls_dir, names[i]);
		out = fopen(path, "w");
		if (!out) {
			log_error("cannot write %s: %s", path, strerror(errno));
			goto out;
		}
		fchmod(fileno(out), 0600);
		for (int j = 0; j < n; j++) {
			FILE *in = fopen(srcs[j], "r");
			char buf[4096];
			size_t len;

			if (!in) {
				log_error("cannot read %s: %s", srcs[j], strerror(errno));
				fclose(out);
				goto out;
			}
			while ((len = fread(buf, 1, sizeof(buf), in)) > 0)
				fwrite(buf, 1, len, out);
			fclose(in);
			fputc('\n', out);
		}
		if (fclose(out) != 0)
			goto out;
	}
	rc = 0;
out:
	return rc;
}

static void remove_tls_dir(struct sip_agent *a)
{
	char path[128];

	if (!a->tls_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/agent.pem", a->tls_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cafile.pem", a->tls_dir);
	unlink(path);
	rmdir(a->tls_dir);
	a->tls_dir[0] = 0;
}

/* Record the primary transports nta bound, for own-URI checks and RR/Path. */
static void collect_own(struct sip_agent *a)
{
	const char *adv = a->cfg->sip.advertised_host;
	sip_contact_t const *m = nta_agent_contact(a->nta);

	a->n_own = 0;
	for (tport_t *tp = tport_primaries(nta_agent_tports(a->nta)); tp && a->n_own < MAX_OWN;
	     tp = tport_next(tp)) {
		tp_name_t const *n = tport_name(tp);
		struct own_addr *o = &a->own[a->n_own];
		const char *host = n->tpn_host;

		if (adv && adv[0])
			host = adv;
		else if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*"))
			host = (m && m->m_url->url_host) ? m->m_url->url_host : "127.0.0.1";
		snprintf(o->host, sizeof(o->host), "%s", host);
		snprintf(o->port, sizeof(o->port), "%s", n->tpn_port);
		snprintf(o->proto, sizeof(o->proto), "%s", n->tpn_proto);
		if (strchr(host, ':') && host[0] != '[')
			snprintf(o->uri, sizeof(o->uri), "sip:[%s]:%s;transport=%s", host,
				 n->tpn_port, n->tpn_proto);
		else
			snprintf(o->uri, sizeof(o->uri), "sip:%s:%s;transport=%s", host,
				 n->tpn_port, n->tpn_proto);
		log_info("listening on %s/%s:%s (advertised as %s)", n->tpn_proto, n->tpn_host,
			 n->tpn_port, o->uri);
		a->n_own++;
	}
}

/* sockets.c asks which of the process's sockets are our listeners. */
static bool is_our_port(void *ctx, const char *proto, unsigned port)
{
	struct sip_agent *a = ctx;
	char p[8];

	snprintf(p, sizeof(p), "%u", port);
	for (int i = 0; i < a->n_own; i++)
		if (!strcasecmp(a->own[i].proto, proto) && !strcmp(a->own[i].port, p))
			return true;
	return false;
}

bool sip_agent_input_pending(struct sip_agent *a)
{
	return sip_sockets_input_pending(&a->socks);
}

/*
 * Everything sofia logs (its errors, and the message trace of
 * log.sip_trace or TPORT_LOG=1) goes through our log with push tokens
 * shortened. sofia writes a trace in pieces ("recv 420 bytes from ..."
 * then each message line, indented, in two or more calls), so pieces are
 * gathered into whole lines first; trace lines go out at info, the rest
 * at debug.
 */
static void sofia_line(char *line)
{
	bool trace = !strncmp(line, "recv ", 5) || !strncmp(line, "send ", 5) ||
		     !strncmp(line, "   ", 3);

	log_mask_tokens(line);
	log_msg(trace ? SW_LOG_INFO : SW_LOG_DEBUG, "%s", line);
}

static void sofia_log(void *stream, char const *fmt, va_list ap)
{
	static char line[4096];
	static size_t len;
	char piece[4096];
	int n = vsnprintf(piece, sizeof(piece), fmt, ap);

	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(piece))
		n = (int)sizeof(piece) - 1;
	for (int k = 0; k < n; k++) {
		char c = piece[k];
		if (c == '\n' || len == sizeof(line) - 1) {
			line[len] = '\0';
			if (len && line[len - 1] == '\r')
				line[--len] = '\0';
			if (len)
				sofia_line(line);
			len = 0;
			if (c == '\n')
				continue;
		}
		line[len++] = c;
	}
}

int sip_agent_new(struct sip_agent **out, su_root_t *root, const struct sw_config *cfg)
{
	if (sip_agent_create(out, root, cfg) < 0)
		return -1;
	if (sip_agent_listen(*out) < 0) {
		sip_agent_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* How long sofia keeps an idle connection: as long as a registration can last. */
static unsigned idle_ms_of(const struct sw_config *cfg)
{
	return ((unsigned)cfg->registrar.max_expires + 120u) * 1000u;
}

int sip_agent_create(struct sip_agent **out, su_root_t *root, const struct sw_config *cfg)
{
	struct sip_agent *a;
	unsigned idle_ms;
	int rc = -1;

	a = su_home_new(sizeof(*a));
	if (!a)
		return -1;
	su_log_redirect(su_log_default, sofia_log, NULL);
	apply_resolv_port(cfg->sip.resolv_conf);
	a->root = root;
	a->cfg = cfg;

	/* (url_string_t *)-1: no default transport; sip.listen adds them all. */
	/*
	 * sofia closes a connection idle for 30 min by default; a TCP client
	 * refreshing its registration every hour would be unreachable half of
	 * the time. Keep connections as long as a registration can last.
	 */
	idle_ms = idle_ms_of(cfg);
	a->nta = nta_agent_create(root, (url_string_t *)-1, agent_message, (nta_agent_magic_t *)a,
				  NTATAG_UA(0), NTATAG_CANCEL_487(0), NTATAG_SERVER_RPORT(2) /* answers go where the request came from */,
				  NTATAG_CLIENT_RPORT(1), NTATAG_PASS_408(1), NTATAG_MERGE_482(0),
				  NTATAG_MAXSIZE(256 * 1024) /* also bounds buffered TCP input */,
				  TAG_IF(cfg->sip.resolv_conf && cfg->sip.resolv_conf[0],
					 SRESTAG_RESOLV_CONF(cfg->sip.resolv_conf)),
				  TPTAG_IDLE(idle_ms), TPTAG_SDWN_ERROR(1), TAG_END());
	if (!a->nta) {
		log_error("cannot create the SIP agent: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		sip_agent_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

int sip_agent_listen(struct sip_agent *a)
{
	const struct sw_config *cfg = a->cfg;
	unsigned idle_ms = idle_ms_of(cfg), verify_policy;
	bool need_tls = false;

	for (char **l = cfg->sip.listen; l && *l; l++)
		if (!strcmp(sip_uri_proto(*l), "tls"))
			need_tls = true;
	if (need_tls && make_tls_dir(a) < 0)
		return -1;
	/* Outgoing TLS (the upstream): a CA we trust signed it, for its host name. */
	verify_policy = (cfg->sip.tls.verify_client ? TPTLS_VERIFY_IN : TPTLS_VERIFY_NONE) |
			(verify_upstream(cfg) ? TPTLS_VERIFY_SUBJECTS_OUT : TPTLS_VERIFY_NONE);
	if (upstream_tls(cfg) && !cfg->upstream.tls_verify)
		log_warn("upstream.tls_verify = false: the upstream's certificate is not checked");

	for (char **l = cfg->sip.listen; l && *l; l++) {
		bool tls = !strcmp(sip_uri_proto(*l), "tls");
		int r;

		if (tls)
			r = nta_agent_add_tport(a->nta, URL_STRING_MAKE(*l), TPTAG_CERTIFICATE(a->tls_dir),
						TPTAG_TLS_VERIFY_POLICY(verify_policy),
						TPTAG_IDLE(idle_ms), TPTAG_SDWN_ERROR(1), TAG_END());
		else
			r = nta_agent_add_tport(a->nta, URL_STRING_MAKE(*l), TPTAG_IDLE(idle_ms),
						TPTAG_SDWN_ERROR(1), TAG_END());
		if (r < 0) {
			log_error("cannot listen on %s: %s", *l, strerror(errno));
			remove_tls_dir(a);
			return -1;
		}
	}
	remove_tls_dir(a); /* sofia has read the files into its SSL context */
	collect_own(a);
	sip_sockets_setup(&a->socks, is_our_port, a, cfg->sip.udp_receive_buffer,
			  cfg->sip.tcp_receive_buffer);
	sip_agent_set_trace(a, cfg->log.sip_trace);
	return 0;
}

void sip_agent_free(struct sip_agent *a)
{
	if (!a)
		return;
	if (a->nta)
		nta_agent_destroy(a->nta);
	remove_tls_dir(a);
	su_home_unref(a->home);
}

void sip_agent_set_handler(struct sip_agent *a, sip_request_fn *fn, void *ctx)
{
	a->handler = fn;
	a->handler_ctx = ctx;
}

nta_agent_t *sip_agent_nta(struct sip_agent *a)
{
	return a->nta;
}

su_root_t *sip_agent_root(struct sip_agent *a)
{
	return a->root;
}

size_t sip_agent_transactions(struct sip_agent *a)
{
	usize_t in = 0, out = 0;

	nta_agent_get_stats(a->nta, NTATAG_S_IRQ_HASH_USED_REF(in), NTATAG_S_ORQ_HASH_USED_REF(out),
			    TAG_END());
	return (size_t)in + (size_t)out;
}

const struct sw_config *sip_agent_config(struct sip_agent *a)
{
	return a->cfg;
}

void sip_agent_set_trace(struct sip_agent *a, bool on)
{
	/* sofia reads TPTAG_LOG only on the master transport (tport_open_log). */
	tport_set_params(nta_agent_tports(a->nta), TPTAG_LOG(on), TAG_END());
}


static const char *default_port(const url_t *u)
{
	if (u->url_type == url_sips)
		return "5061";
	if (u->url_params && strcasestr(u->url_params, "transport=tls"))
		return "5061";
	return "5060";
}

bool sip_agent_is_own_uri(struct sip_agent *a, const url_t *u)
{
	const char *port, *host;
	size_t hlen;

	if (!u || !u->url_host)
		return false;
	port = u->url_port && u->url_port[0] ? u->url_port : default_port(u);
	host = u->url_host;
	hlen = strlen(host);
	if (host[0] == '[' && hlen > 1 && host[hlen - 1] == ']') { /* [::1] */
		host++;
		hlen -= 2;
	}
	for (int i = 0; i < a->n_own; i++)
		if (strlen(a->own[i].host) == hlen && !strncasecmp(host, a->own[i].host, hlen) &&
		    !strcmp(port, a->own[i].port))
			return true;
	return false;
}

bool sip_agent_serves_domain(struct sip_agent *a, const char *host)
{
	if (!host)
		return false;
	for (char **d = a->cfg->sip.domains; d && *d; d++)
		if (!strcasecmp(*d, host))
			return true;
	for (int i = 0; i < a->n_own; i++)
		if (!strcasecmp(host, a->own[i].host))
			return true;
	return false;
}

const char *sip_agent_uri(struct sip_agent *a, const char *proto)
{
	if (a->n_own == 0)
		return "sip:127.0.0.1";
	for (int i = 0; proto && i < a->n_own; i++)
		if (!strcasecmp(a->own[i].proto, proto))
			return a->own[i].uri;
	return a->own[0].uri;
}

const char *sip_uri_proto(const char *uri)
{
	if (!uri)
		return "udp";
	if (!strncasecmp(uri, "sips:", 5) || strcasestr(uri, "transport=tls"))
		return "tls";
	if (strcasestr(uri, "transport=tcp"))
		return "tcp";
	return "udp";
}

const char *sip_tport_proto(const tport_t *tp)
{
	tp_name_t const *n = tp ? tport_name(tp) : NULL;
	return n && n->tpn_proto ? n->tpn_proto : "udp";
}

int sip_pop_own_routes(struct sip_agent *a, msg_t *msg, sip_t *sip)
{
	int n = 0;

	while (sip->sip_route && sip_agent_is_own_uri(a, sip->sip_route->r_url)) {
		sip_route_remove(msg, sip);
		n++;
	}
	return n;
}

int sip_decrement_max_forwards(msg_t *msg, sip_t *sip)
{
	if (!sip->sip_max_forwards) {
		sip_add_tl(msg, sip, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END());
		return 0;
	}
	if (sip->sip_max_forwards->mf_count == 0)
		return -1;
	sip->sip_max_forwards->mf_count--;
	msg_fragment_clear(sip->sip_max_forwards->mf_common);
	return 0;
}

static int insert_rr(struct sip_agent *a, msg_t *msg, sip_t *sip, const char *proto,
		     const char *param)
{
	char buf[224];
	sip_record_route_t *rr;

	snprintf(buf, sizeof(buf), "<%s;lr%s%s>", sip_agent_uri(a, proto), param ? ";" : "",
		 param ? param : "");
	rr = sip_record_route_make(msg_home(msg), buf);
	if (!rr)
		return -1;
	return msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)rr);
}

int sip_add_record_route(struct sip_agent *a, msg_t *msg, sip_t *sip, const char *in_proto,
			 const char *out_proto, const char *param)
{
	/* The UAS sees the top entry first (its side); the UAC reverses the list. */
	if (strcasecmp(sip_agent_uri(a, in_proto), sip_agent_uri(a, out_proto)) != 0 &&
	    insert_rr(a, msg, sip, in_proto, param) < 0)
		return -1;
	return insert_rr(a, msg, sip, out_proto, param);
}

int sip_source_uri(msg_t *msg, tport_t *tp, char *buf, size_t len)
{
	su_sockaddr_t su;
	socklen_t sulen = sizeof(su);
	char ip[64];

	if (msg_get_address(msg, &su, &sulen) < 0)
		return -1;
	if (!su_inet_ntop(su.su_family, SU_ADDR(&su), ip, sizeof(ip)))
		return -1;
	if (su.su_family == AF_INET6)
		snprintf(buf, len, "sip:[%s]:%u;transport=%s", ip, ntohs(su.su_port),
			 sip_tport_proto(tp));
	else
		snprintf(buf, len, "sip:%s:%u;transport=%s", ip, ntohs(su.su_port),
			 sip_tport_proto(tp));
	return 0;
}

int sip_aor_of(const url_t *u, char *buf, size_t len)
{
	int n;

	if (!u || !u->url_host)
		return -1;
	if (u->url_user)
		n = snprintf(buf, len, "sip:%s@%s", u->url_user, u->url_host);
	else
		n = snprintf(buf, len, "sip:%s", u->url_host);
	if (n < 0 || (size_t)n >= len)
		return -1;
	for (char *p = strchr(buf, '@') ? strchr(buf, '@') : buf + 4; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

int sip_send_stateless(struct sip_agent *a, msg_t *msg, const char *route, tport_t *tp)
{
	url_string_t const *u = route ? URL_STRING_MAKE(route) : NULL;

	if (tp)
		return nta_msg_tsend(a->nta, msg, u, NTATAG_TPORT(tp), TAG_END());
	return nta_msg_tsend(a->nta, msg, u, TAG_END());
}
