/* SPDX-License-Identifier: MIT */
/*
 * Configuration: the whole of sipwake.conf as one plain struct, filled by a
 * libconfig loader driven by a single option table (src/config/options.c).
 * Every key has a type, bounds and a default there; unknown keys, wrong
 * types and out-of-range values are errors reported as "file:line: key:
 * reason". String lists are NULL-terminated arrays.
 */
#ifndef SIPWAKE_CONFIG_H
#define SIPWAKE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define CONFIG_EXIT_ERROR 78 /* EX_CONFIG */

struct sw_config {
	struct {
		char **listen;         /* sofia-sip URIs, NULL-terminated */
		char *advertised_host; /* "" = listen address */
		int max_requests_per_source; /* per second, 0 = unlimited */
		int udp_receive_buffer; /* bytes, 0 = the system's default */
		int tcp_receive_buffer; /* bytes, 0 = the system's default */
		char **domains;        /* served domains, NULL-terminated */
		struct {
			char *certificate;
			char *private_key;
			char *ca_file;
			bool verify_client;
		} tls;
		char *resolv_conf;
	} sip;
	struct {
		char *uri; /* "" = standalone mode */
		bool hide_push_params;
		bool keepalive;
		bool tls_verify;
		char *ca_file;
	} upstream;
	struct {
		char *mode;        /* "accounts" or "none" */
		char *realm;       /* "" = first of sip.domains (see config_auth_realm) */
		char **algorithms; /* "SHA-256", "MD5", most preferred first */
		int nonce_lifetime;
		int max_failures;  /* per source per minute, 0 = no limit */
	} auth;
	struct {
		char *redis;     /* "" = one node on SQLite; see config_parse_redis */
		char *node_name; /* "" = the host name (config_node_name) */
	} cluster;
	struct {
		int min_expires;
		int max_expires;
		int push_max_expires;
		int max_contacts_per_aor;
		int max_bindings;
	} registrar;
	struct {
		char *database;
	} storage;
	struct {
		int call_timeout;
		char *provisional; /* "110", "180" or "none" */
		bool missed_call_push;
		bool voicemail_push;
		int wakeup_before_expiry;
		int min_interval;
		char *http2; /* "curl" or "nghttp2": the client of https pushes */
		struct {
			char *key_file;
			char *key_id;
			char *team_id;
			char *certificate;
			char *private_key;
			char *url;
			char *sandbox_url;
			char *ca_file;
		} apns;
		struct {
			char *service_account;
			char *url;
			char *token_url;
			char *ca_file;
		} fcm;
		struct {
			char *vapid_key; /* PEM P-256 private key, "" = Web Push off */
			char *subject;   /* VAPID "sub": mailto: or https: contact */
			char *ca_file;
			char **allowed_hosts; /* push service hosts, "*.x" = below x; empty = any */
		} webpush;
		struct {
			char *provider;    /* pn-provider value of the service, "" = off */
			char *url;         /* https URL each push is POSTed to */
			char *auth_header; /* "Name: value" sent with each push, or "" */
			char *body;        /* JSON template, "" = the default one */
			char *ca_file;
		} http;
	} push;
	struct {
		bool store;
		int max_age;
		int max_per_aor;
		int max_total;
		int max_body;
	} messages;
	struct {
		char *socket;
		char *metrics_listen; /* "IP:PORT", "" = no metrics endpoint */
	} admin;
	struct {
		char *level;
		bool sip_trace;
	} log;

	char *path; /* file the config was read from */
};

/*
 * Load and validate a config file into cfg (which is reset first).
 * Errors are printed to stderr, one line each, as "file:line: key: reason".
 * Returns 0 on success, -1 on any error (cfg is then cleaned up).
 * cfg must not hold a loaded config (its old contents are overwritten, not
 * freed); path NULL means config_default_path(). The key files named are
 * checked too: present, readable, and not world-readable.
 */
int config_load(struct sw_config *cfg, const char *path);

/*
 * Re-read the file (path, or cfg->path when NULL) for SIGHUP. On success the
 * reloadable keys (log.*, push.*) are copied into cfg, a change to any other
 * key is logged as needing a restart, and 0 is returned. On any error the
 * errors are printed as by config_load(), cfg is left untouched, and -1 is
 * returned.
 */
int config_reload(struct sw_config *cfg, const char *path);

/* The file read when no -c is given: "/etc/sipwake/sipwake.conf". */
const char *config_default_path(void);

/* Fill cfg with the built-in defaults only (no file). */
void config_defaults(struct sw_config *cfg);

/* Release everything config_load()/config_defaults() allocated. */
void config_cleanup(struct sw_config *cfg);

/* True when upstream.uri is empty: sipwake is the registrar itself. */
static inline bool config_standalone(const struct sw_config *cfg)
{
	return !cfg->upstream.uri || !cfg->upstream.uri[0];
}

/* True when standalone mode authenticates (auth.mode = "accounts"). */
static inline bool config_auth_accounts(const struct sw_config *cfg)
{
	return config_standalone(cfg) && cfg->auth.mode && !strcmp(cfg->auth.mode, "accounts");
}

/* The digest realm: auth.realm, or the first of sip.domains. */
const char *config_auth_realm(const struct sw_config *cfg);

/* True when APNs credentials (token or certificate) are configured. */
bool config_apns_enabled(const struct sw_config *cfg);
/* True when an FCM service account is configured. */
bool config_fcm_enabled(const struct sw_config *cfg);

/*
 * Parse a listen address "IPV4:PORT" or "[IPV6]:PORT" (numeric host, port
 * 0-65535) into *ss / *len. Returns 0, or -1 when s is not of that form.
 */
int config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Where cluster.redis points: a TCP host and port, or a Unix socket path. */
struct config_redis {
	char host[256];     /* host name or address ("" for a Unix socket) */
	int port;           /* 6379 unless given */
	char path[108];     /* Unix socket path, or "" */
	int db;             /* database number, 0 unless given */
	char user[64];      /* ACL user name, or "" */
	char password[256]; /* or "" (no AUTH) */
};

/*
 * Parse "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (HOST may be [IPV6])
 * or "unix:/ABSOLUTE/PATH[?db=N]". Returns 0, or -1 with why (a static
 * string) set.
 */
int config_parse_redis(const char *s, struct config_redis *out, const char **why);

/* True when the node shares its state through Redis (cluster.redis set). */
static inline bool config_clustered(const struct sw_config *cfg)
{
	return cfg->cluster.redis && cfg->cluster.redis[0];
}

/*
 * This node's name in the cluster: cluster.node_name, or the host name.
 * Writes at most len bytes (NUL included); returns 0, or -1 when the host
 * name cannot be had.
 */
int config_node_name(const struct sw_config *cfg, char *buf, size_t len);
/* True when s may name a node: letters, digits, '.', '-' and '_', 1 to 63. */
bool config_node_name_ok(const char *s);

/*
 * Write the option table as a reference (name, type, default, range, doc)
 * in Markdown to the stream; used to generate docs and checked by tests.
 */
void config_write_reference(FILE *out);

#endif
