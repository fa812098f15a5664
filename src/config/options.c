/* SPDX-License-Identifier: MIT */
/*
 * The option table: every key of sipwake.conf, in the order of the shipped
 * conf/sipwake.conf, with its type, place in struct sw_config, default,
 * bounds and a one-line description. The loader (config.c), the reference
 * in docs/config.md and the tests are all driven from here, so a key that
 * is added in this one place is parsed, validated, documented and checked.
 */
#include "options.h"

#include <stdio.h>
#include <string.h>

#include "sipwake/config.h"

#define OFF(field) offsetof(struct sw_config, field)

#define DAY 86400
#define YEAR (365 * DAY)

#define BOOL(n, field, def, fl, d)                                                                 \
	{                                                                                          \
		.name = n, .type = CONFIG_BOOL, .offset = OFF(field), .flags = fl, .def_int = def, \
		.doc = d                                                                           \
	}
#define INT(n, field, def, lo, hi, fl, d)                                                          \
	{                                                                                          \
		.name = n, .type = CONFIG_INT, .offset = OFF(field), .flags = fl, .def_int = def,  \
		.min = lo, .max = hi, .doc = d                                                     \
	}
#define STR(n, field, def, fl, d)                                                                  \
	{                                                                                          \
		.name = n, .type = CONFIG_STRING, .offset = OFF(field), .flags = fl,               \
		.def_str = def, .doc = d                                                           \
	}
#define ENUM(n, field, def, vals, fl, d)                                                           \
	{                                                                                          \
		.name = n, .type = CONFIG_STRING, .offset = OFF(field), .flags = fl,               \
		.def_str = def, .values = vals, .doc = d                                           \
	}
#define LIST(n, field, def, fl, d)                                                                 \
	{                                                                                          \
		.name = n, .type = CONFIG_LIST, .offset = OFF(field), .flags = fl,                 \
		.def_list = def, .doc = d                                                          \
	}

#define R CONFIG_F_RELOAD
#define F CONFIG_F_FILE
#define K (CONFIG_F_FILE | CONFIG_F_SECRET)

static const char *const listen_default[] = {
	"sip:0.0.0.0:5060;transport=udp",
	"sip:0.0.0.0:5060;transport=tcp",
	"sips:0.0.0.0:5061",
	NULL,
};
static const char *const domains_default[] = {"example.com", NULL};
static const char *const provisional_values[] = {"110", "180", "none", NULL};
static const char *const auth_mode_values[] = {"accounts", "none", NULL};
static const char *const auth_algorithms_default[] = {"SHA-256", "MD5", NULL};
static const char *const empty_list[] = {NULL};
static const char *const http2_values[] = {"curl", "nghttp2", NULL};
static const char *const log_level_values[] = {"error", "warn", "notice", "info", "debug", NULL};

const struct config_option config_options[] = {
	LIST("sip.listen", sip.listen, listen_default, 0,
	     "SIP listeners, sofia-sip URIs; sips: needs sip.tls.certificate and private_key"),
	STR("sip.advertised_host", sip.advertised_host, "", 0,
	    "host put in Path and Record-Route (\"\" = the listen address)"),
	LIST("sip.domains", sip.domains, domains_default, 0,
	     "domains served; requests for any other domain are refused (no open relay)"),
	STR("sip.tls.certificate", sip.tls.certificate, "", F,
	    "PEM certificate (chain) of the sips: listener"),
	STR("sip.tls.private_key", sip.tls.private_key, "", K,
	    "PEM private key of that certificate; not readable or writable by others"),
	STR("sip.tls.ca_file", sip.tls.ca_file, "", F,
	    "CA bundle used to verify client certificates (\"\" = system default)"),
	BOOL("sip.tls.verify_client", sip.tls.verify_client, 0, 0,
	     "require and verify a client certificate on sips: connections"),
	STR("sip.resolv_conf", sip.resolv_conf, "", F,
	    "resolver configuration (resolv.conf format) for the SIP hosts sofia-sip looks up "
	    "(\"\" = /etc/resolv.conf)"),
	INT("sip.max_requests_per_source", sip.max_requests_per_source, 200, 0, 1000000, R,
	    "requests per second accepted from one source address, bursts of twice that "
	    "(0 = no limit); the upstream server is exempt; beyond it: 503 with Retry-After"),
	INT("sip.udp_receive_buffer", sip.udp_receive_buffer, 8 << 20, 0, 1 << 30, 0,
	    "receive buffer of each UDP listener, bytes (0 = the system's default): holds a "
	    "burst of requests while sipwake works through it; the kernel caps it at sysctl "
	    "net.core.rmem_max unless sipwaked has CAP_NET_ADMIN (a warning says so); 1 MiB "
	    "queued (or half the buffer) counts as overload: new requests get 503 with "
	    "Retry-After until it drains"),
	INT("sip.tcp_receive_buffer", sip.tcp_receive_buffer, 64 << 10, 0, 128 << 10, 0,
	    "receive buffer of each TCP/TLS connection, bytes (0 = the system's default, "
	    "which may grow past the 256 KiB sofia-sip reads at most at once and get a fast "
	    "sender refused with 413): a client sending faster than sipwake reads is slowed "
	    "down by TCP itself"),

	STR("upstream.uri", upstream.uri, "sip:pbx.example.com:5060", 0,
	    "upstream registrar/proxy, sip: or sips: URI (\"\" = standalone: sipwake registers)"),
	BOOL("upstream.hide_push_params", upstream.hide_push_params, 1, 0,
	     "strip pn-* parameters from Contacts sent upstream"),
	BOOL("upstream.keepalive", upstream.keepalive, 1, 0,
	     "gateway mode: a push device is granted the expiry it asked for and sipwake refreshes "
	     "its upstream registration itself until the device's binding ends (SPEC 4.6)"),
	BOOL("upstream.tls_verify", upstream.tls_verify, 1, 0,
	     "a TLS upstream (sips: or transport=tls) must present a certificate that a trusted CA "
	     "signed for its host name; otherwise nothing is sent to it"),
	STR("upstream.ca_file", upstream.ca_file, "", F,
	    "CA bundle trusted for the upstream's certificate (\"\" = the system's trust store)"),

	ENUM("auth.mode", auth.mode, "accounts", auth_mode_values, 0,
	     "standalone mode: \"accounts\" = REGISTER and requests claiming a local user need "
	     "digest credentials of `sipwakectl account`; \"none\" = anyone may (trusted "
	     "networks only)"),
	STR("auth.realm", auth.realm, "", 0,
	    "digest realm of challenges and new accounts (\"\" = the first of sip.domains)"),
	LIST("auth.algorithms", auth.algorithms, auth_algorithms_default, 0,
	     "digest algorithms challenged, most preferred first: \"SHA-256\", \"MD5\""),
	INT("auth.nonce_lifetime", auth.nonce_lifetime, 300, 5, DAY, 0,
	    "s a nonce stays valid; an older one gets a new challenge with stale=true"),
	INT("auth.max_failures", auth.max_failures, 20, 0, 100000, 0,
	    "failed digest attempts per source address per minute before it gets 403 for the "
	    "rest of that minute (0 = no limit)"),

	STR("cluster.redis", cluster.redis, "", 0,
	    "Redis shared by the nodes of a cluster: \"redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]\" "
	    "or \"unix:/PATH[?db=N]\" (\"\" = one node, state in storage.database)"),
	STR("cluster.node_name", cluster.node_name, "", 0,
	    "this node's name, unique in the cluster: letters, digits, `.` `-` `_`, at most 63 "
	    "(\"\" = the host name)"),

	INT("registrar.min_expires", registrar.min_expires, 60, 1, DAY, 0,
	    "shortest registration interval accepted, s"),
	INT("registrar.max_expires", registrar.max_expires, 3600, 1, YEAR, 0,
	    "longest registration granted to contacts without push parameters, s"),
	INT("registrar.push_max_expires", registrar.push_max_expires, 604800, 1, YEAR, 0,
	    "longest registration granted to contacts with push parameters, s"),
	INT("registrar.max_contacts_per_aor", registrar.max_contacts_per_aor, 12, 1, 32, 0,
	    "most bindings kept for one address of record (the least recently refreshed goes)"),
	INT("registrar.max_bindings", registrar.max_bindings, 1000000, 1, 100000000, 0,
	    "most bindings in all; a REGISTER that would add one more gets 503 with Retry-After"),

	STR("storage.database", storage.database, "/var/lib/sipwake/sipwake.db", 0,
	    "SQLite database of bindings and stored messages"),

	INT("push.call_timeout", push.call_timeout, 30, 1, 600, R,
	    "s a call waits for the woken device before 480 Temporarily Unavailable"),
	ENUM("push.provisional", push.provisional, "110", provisional_values, R,
	     "response sent to the caller once a push is out: 110 Push sent, 180 Ringing or none"),
	BOOL("push.missed_call_push", push.missed_call_push, 1, R,
	     "send an alert push when the caller hangs up before a device answers"),
	BOOL("push.voicemail_push", push.voicemail_push, 1, R,
	     "push the voicemail counts of an unsolicited message-summary NOTIFY (RFC 3842) to "
	     "devices that sleep, and answer it for them"),
	INT("push.wakeup_before_expiry", push.wakeup_before_expiry, 120, 0, DAY, R,
	    "s before a push binding expires to push the app to re-REGISTER (0 = off)"),
	INT("push.min_interval", push.min_interval, 2, 0, 3600, R,
	    "s between two pushes of the same kind to one device (battery-drain guard)"),
	ENUM("push.http2", push.http2, "curl", http2_values, R,
	     "HTTP/2 client of https pushes: \"curl\" (libcurl) or \"nghttp2\" (sipwake's own, "
	     "on nghttp2 and OpenSSL: one connection per provider host, many pushes at a lower "
	     "CPU cost; a server that does not offer h2 is left to libcurl); pushes in flight "
	     "finish where they started"),
	STR("push.apns.key_file", push.apns.key_file, "", K | R,
	    "APNs token auth: .p8 signing key (ES256); not readable or writable by others"),
	STR("push.apns.key_id", push.apns.key_id, "", R,
	    "APNs token auth: 10-character key ID of key_file"),
	STR("push.apns.team_id", push.apns.team_id, "", R,
	    "APNs token auth: 10-character Apple team ID"),
	STR("push.apns.certificate", push.apns.certificate, "", F | R,
	    "APNs certificate auth: PEM client certificate (instead of key_file)"),
	STR("push.apns.private_key", push.apns.private_key, "", K | R,
	    "APNs certificate auth: PEM private key; not readable or writable by others"),
	STR("push.apns.url", push.apns.url, "https://api.push.apple.com", R,
	    "APNs production endpoint (pn-provider=apns)"),
	STR("push.apns.sandbox_url", push.apns.sandbox_url, "https://api.sandbox.push.apple.com", R,
	    "APNs development endpoint (pn-provider=apns.dev)"),
	STR("push.apns.ca_file", push.apns.ca_file, "", F | R,
	    "extra CA bundle trusted for APNs (tests, private relays)"),
	STR("push.fcm.service_account", push.fcm.service_account, "", K | R,
	    "Google service-account JSON enabling FCM HTTP v1; not readable or writable by others"),
	STR("push.fcm.url", push.fcm.url, "https://fcm.googleapis.com", R, "FCM HTTP v1 endpoint"),
	STR("push.fcm.token_url", push.fcm.token_url, "", R,
	    "OAuth2 token endpoint (\"\" = token_uri of the service account)"),
	STR("push.fcm.ca_file", push.fcm.ca_file, "", F | R,
	    "extra CA bundle trusted for FCM and its token endpoint"),
	STR("push.webpush.vapid_key", push.webpush.vapid_key, "", K | R,
	    "Web Push: PEM P-256 private key signing every push (VAPID, RFC 8292); "
	    "not readable or writable by others"),
	STR("push.webpush.subject", push.webpush.subject, "", R,
	    "Web Push: the operator's contact in each VAPID signature, a mailto: or https: URI"),
	STR("push.webpush.ca_file", push.webpush.ca_file, "", F | R,
	    "extra CA bundle trusted for Web Push services (tests, private push servers)"),
	LIST("push.webpush.allowed_hosts", push.webpush.allowed_hosts, empty_list, R,
	     "push service hosts a subscription's endpoint may name (\"push.example.net\", or "
	     "\"*.example.net\" for the hosts below it); empty = any host"),
	STR("push.http.provider", push.http.provider, "", R,
	    "the pn-provider value apps give for the operator's own push service (\"\" = off)"),
	STR("push.http.url", push.http.url, "", R,
	    "https URL every push for that service is POSTed to (HTTP/2 or HTTP/1.1)"),
	STR("push.http.auth_header", push.http.auth_header, "", R,
	    "header sent with each push, \"Name: value\" (e.g. \"Authorization: Bearer ...\")"),
	STR("push.http.body", push.http.body, "", R,
	    "JSON template of the body; ${...} placeholders in its strings (\"\" = "
	    "{\"token\": \"${token}\", \"param\": \"${param}\", \"ttl\": \"${ttl}\", "
	    "\"data\": \"${data}\"})"),
	STR("push.http.ca_file", push.http.ca_file, "", F | R,
	    "extra CA bundle trusted for the push service"),

	BOOL("messages.store", messages.store, 1, 0,
	     "store MESSAGEs no device accepts (202 Accepted) and deliver them later"),
	INT("messages.max_age", messages.max_age, 604800, 1, YEAR, 0,
	    "s a stored MESSAGE is retried before it is dropped"),
	INT("messages.max_per_aor", messages.max_per_aor, 1000, 1, 1000000, 0,
	    "most stored MESSAGEs for one address of record (480 Mailbox Full beyond)"),
	INT("messages.max_total", messages.max_total, 100000, 1, 100000000, 0,
	    "most stored MESSAGEs in all (503 with Retry-After beyond)"),
	INT("messages.max_body", messages.max_body, 65536, 1, 1048576, 0,
	    "largest MESSAGE body accepted, bytes (413 beyond)"),

	STR("admin.socket", admin.socket, "/run/sipwake/sipwake.sock", 0,
	    "control socket used by sipwakectl"),
	STR("admin.metrics_listen", admin.metrics_listen, "", 0,
	    "IP:PORT serving Prometheus metrics at /metrics over HTTP (\"\" = off); keep it on "
	    "loopback or a management network"),

	ENUM("log.level", log.level, "info", log_level_values, R, "least severe level logged"),
	BOOL("log.sip_trace", log.sip_trace, 0, R,
	     "log every SIP message sent and received (push tokens shortened)"),
};

const size_t config_options_count = sizeof(config_options) / sizeof(config_options[0]);

const struct config_option *config_option_find(const char *name)
{
	for (size_t i = 0; i < config_options_count; i++)
		if (strcmp(config_options[i].name, name) == 0)
			return &config_options[i];
	return NULL;
}

int config_option_is_group(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < config_options_count; i++) {
		const char *n = config_options[i].name;
		if (strncmp(n, name, len) == 0 && n[len] == '.')
			return 1;
	}
	return 0;
}

/* Write s into a Markdown table cell: '|' would end the cell early. */
static void put_cell(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s, out);
	}
}

static const char *type_name(const struct config_option *o)
{
	switch (o->type) {
	case CONFIG_BOOL:
		return "bool";
	case CONFIG_INT:
		return "int";
	case CONFIG_STRING:
		return o->values ? "enum" : "string";
	case CONFIG_LIST:
		return "string list";
	}
	return "?";
}

static void put_default(FILE *out, const struct config_option *o)
{
	switch (o->type) {
	case CONFIG_BOOL:
		fputs(o->def_int ? "`true`" : "`false`", out);
		break;
	case CONFIG_INT:
		fprintf(out, "`%d`", o->def_int);
		break;
	case CONFIG_STRING:
		fputs("`\"", out);
		put_cell(out, o->def_str);
		fputs("\"`", out);
		break;
	case CONFIG_LIST:
		fputc('`', out);
		fputc('[', out);
		for (const char *const *p = o->def_list; *p; p++) {
			fputs(p == o->def_list ? "\"" : ", \"", out);
			put_cell(out, *p);
			fputc('"', out);
		}
		fputs("]`", out);
		break;
	}
}

static void put_range(FILE *out, const struct config_option *o)
{
	if (o->type == CONFIG_INT) {
		fprintf(out, "%d – %d", o->min, o->max);
	} else if (o->values) {
		for (const char *const *p = o->values; *p; p++)
			fprintf(out, "%s`\"%s\"`", p == o->values ? "" : ", ", *p);
	} else if (o->flags & CONFIG_F_SECRET) {
		fputs("readable file, no access for others", out);
	} else if (o->flags & CONFIG_F_FILE) {
		fputs("readable file", out);
	}
}

void config_write_reference(FILE *out)
{
	fputs("<!-- Generated from src/config/options.c by tests/helpers/sipwake_confref.c;\n"
	      "     do not edit: run build/tests/sipwake_confref > docs/config.md -->\n"
	      "# Configuration reference\n"
	      "\n"
	      "sipwaked reads `/etc/sipwake/sipwake.conf` (or the file given with `-c`),\n"
	      "written in [libconfig](https://hyperrealm.github.io/libconfig/) syntax:\n"
	      "groups `name: { ... };`, settings `key = value;`, string lists\n"
	      "`[ \"a\", \"b\" ]`, comments with `#` or `//`. Every key is optional; a\n"
	      "missing key takes the default below. The shipped `conf/sipwake.conf`\n"
	      "lists every key and starts standalone mode on loopback.\n"
	      "\n"
	      "A key that is not in this table, a value of the wrong type (an int key\n"
	      "takes only integers, a bool only `true`/`false`, a list only strings),\n"
	      "an int out of range or a value not among the allowed ones is an error.\n"
	      "All errors are reported, one line each, as `FILE:LINE: KEY: REASON`,\n"
	      "and sipwaked exits with status 78 (`sipwaked --check` validates a file\n"
	      "without starting).\n"
	      "\n"
	      "Keys with *yes* under Reload are applied on SIGHUP (`sipwakectl reload`);\n"
	      "the others need a restart. A reload whose file has any error changes\n"
	      "nothing.\n"
	      "\n"
	      "| Key | Type | Default | Range / values | Reload | Description |\n"
	      "|---|---|---|---|---|---|\n",
	      out);
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];

		fprintf(out, "| `%s` | %s | ", o->name, type_name(o));
		put_default(out, o);
		fputs(" | ", out);
		put_range(out, o);
		fprintf(out, " | %s | ", (o->flags & CONFIG_F_RELOAD) ? "yes" : "no");
		put_cell(out, o->doc);
		fputs(" |\n", out);
	}
	fputs("\n"
	      "## Checks across keys\n"
	      "\n"
	      "- `registrar.min_expires` ≤ `registrar.max_expires` ≤ "
	      "`registrar.push_max_expires`, and\n"
	      "  `push.wakeup_before_expiry` < `registrar.push_max_expires`.\n"
	      "- `sip.listen` and `sip.domains` are not empty and have no empty entry;\n"
	      "  every listener starts with `sip:` or `sips:`. A `sips:` listener needs\n"
	      "  `sip.tls.certificate` and `sip.tls.private_key`.\n"
	      "- `sip.advertised_host` is a host name or address, not a URI.\n"
	      "- `upstream.uri`, when set, starts with `sip:` or `sips:`.\n"
	      "- `auth.algorithms` names `SHA-256` and/or `MD5`, each once.\n"
	      "- `push.apns.key_file` needs `push.apns.key_id` and `push.apns.team_id`\n"
	      "  (10 letters or digits each); `push.apns.certificate` needs\n"
	      "  `push.apns.private_key`; token and certificate auth exclude each other.\n"
	      "- Push endpoint URLs start with `https://` (credentials and tokens never go\n"
	      "  in clear); `push.fcm.token_url` may be empty.\n"
	      "- `push.webpush.vapid_key` needs `push.webpush.subject`, a `mailto:` or\n"
	      "  `https://` URI.\n"
	      "- `push.http.provider` and `push.http.url` go together; the provider is a\n"
	      "  token (letters, digits, `.` `-` `_`, at most 32) other than `apns`,\n"
	      "  `apns.dev`, `fcm` and `webpush`; `push.http.body` is a JSON object (an\n"
	      "  unknown `${...}` placeholder in it stops the start or the reload, named in\n"
	      "  the log; see docs/push.md); `push.http.auth_header` is `Name: value` on\n"
	      "  one line.\n"
	      "- Every file named (certificates, keys, CA bundles, the service account)\n"
	      "  must exist and be readable by sipwaked. Key files (`sip.tls.private_key`,\n"
	      "  `push.apns.key_file`, `push.apns.private_key`, `push.fcm.service_account`,\n"
	      "  `push.webpush.vapid_key`)\n"
	      "  must not be readable or writable by others: `chmod o-rwx` them. Give absolute paths.\n"
	      "- `cluster.redis`, when set, is a `redis://` URL or `unix:` followed by an\n"
	      "  absolute path; `cluster.node_name` is a token of at most 63 characters.\n"
	      "- `storage.database` is not empty; `admin.socket` is not empty and fits in a\n"
	      "  Unix socket address (at most 107 bytes).\n"
	      "- `admin.metrics_listen`, when set, is `IPV4:PORT` or `[IPV6]:PORT` with a\n"
	      "  numeric address (`0.0.0.0` or `[::]` for every interface).\n"
	      "\n"
	      "A check that fails on a key the file does not set (its default applies)\n"
	      "is reported at the line of the enclosing group, or as `FILE: KEY: REASON`\n"
	      "when the file has neither. Note that the default `sip.listen` has a\n"
	      "`sips:` listener, so a file that sets no listeners needs the TLS keys.\n"
	      "\n"
	      "## Limits\n"
	      "\n"
	      "Everything the network can make sipwaked hold is bounded. What happens\n"
	      "at each bound:\n"
	      "\n"
	      "| What | Bound | When it is reached |\n"
	      "|---|---|---|\n"
	      "| one SIP message (UDP datagram, or each message of a TCP/TLS stream) | 256 KiB | 413, or the connection is closed; logged at debug |\n"
	      "| a repeated single-instance header | one instance | 400 naming the header (an ACK is dropped); a response: 502 |\n"
	      "| requests per second from one source address | `sip.max_requests_per_source` | 503 with Retry-After: 1; logged once a minute per source |\n"
	      "| source addresses tracked by that limit | 100,000 (a source idle 2 s is forgotten) | new sources pass untracked; `sipwake_ratelimit_untracked_total`, logged once a minute |\n"
	      "| contacts in one REGISTER, bindings of one AOR | `registrar.max_contacts_per_aor` (at most 32) | a REGISTER with more: 403; a new binding beyond it evicts the least recently refreshed |\n"
	      "| bindings in all | `registrar.max_bindings` | 503 Registrar Full with Retry-After: 60; `sipwake_register_total{result=\"full\"}`, logged once a minute |\n"
	      "| length of a Contact URI | 8 KiB | 400 Contact too long |\n"
	      "| push token (`pn-prid`) | 4096 bytes | 400 naming the parameter |\n"
	      "| stored MESSAGEs of one AOR | `messages.max_per_aor` | 480 Mailbox Full; `sipwake_messages_refused_total{reason=\"max_per_aor\"}`, logged |\n"
	      "| stored MESSAGEs in all | `messages.max_total` | 503 Message Store Full with Retry-After: 60; `sipwake_messages_refused_total{reason=\"max_total\"}`, logged |\n"
	      "| a MESSAGE body | `messages.max_body` | 413 |\n"
	      "| a stored MESSAGE's age | `messages.max_age` | dropped (purged within a minute) |\n"
	      "| pushes to one device | one per kind per `push.min_interval` | a second call waits for the device the first push is waking |\n"
	      "| branches of one call | 64 (every binding, plus a new branch per re-registration) | no further branch |\n"
	      "| a store write | 100 ms waiting for another process's lock | the REGISTER gets 500 with Retry-After: 5, the MESSAGE 500 with Retry-After: 10; logged |\n"
	      "| control-socket request line | 4 KiB | error answer, connection closed |\n",
	      out);
}
