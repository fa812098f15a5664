/* SPDX-License-Identifier: MIT */
/*
 * sipwakectl account: digest accounts in the database the configuration
 * names (storage.database), written directly (SQLite takes care of a
 * daemon using it at the same time; the daemon reads an account at every
 * authentication, so no reload is needed). With cluster.redis, in the
 * cluster's Redis instead: the change is published there, and every
 * running node takes it within a moment. Only HA1 values are stored: a
 * password comes from standard input (never an argument), is hashed for
 * MD5 and SHA-256 with the account's username and realm, and wiped.
 */
#include "sipwakectl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "sipwake/auth.h"
#include "sipwake/config.h"
#include "sipwake/log.h"
#include "sipwake/sip.h"
#include "sipwake/store.h"

#define PASSWORD_MAX 1024
#define FIELD_MAX 255
#define BUSY_MS 5000

static json_t *error_doc(const char *fmt, const char *arg)
{
	char *msg = NULL;
	json_t *doc;

	if (asprintf(&msg, fmt, arg) < 0)
		msg = NULL;
	doc = json_pack("{s:b, s:s}", "ok", 0, "error", msg ? msg : "out of memory");
	free(msg);
	return doc;
}

static json_t *ok_doc(json_t *result)
{
	return json_pack("{s:b, s:o}", "ok", 1, "result", result);
}

/* "sip:user@host" from what the operator typed: sip: or sips:, a user, a host. */
static int canonical_aor(const char *in, char *out, size_t len, char *user, size_t ulen)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *u = NULL;
	int rc = -1;

	if (!strncasecmp(in, "sip:", 4) || !strncasecmp(in, "sips:", 5))
		u = url_make(home, in);
	if (u && (u->url_type == url_sip || u->url_type == url_sips) && u->url_user &&
	    u->url_user[0] && u->url_host && u->url_host[0] && !u->url_password &&
	    !u->url_params && !u->url_headers && sip_aor_of(u, out, len) == 0 &&
	    snprintf(user, ulen, "%s", u->url_user) < (int)ulen)
		rc = 0;
	su_home_deinit(home);
	return rc;
}

/* A username or realm goes into quoted strings: printable, no quote or backslash. */
static bool field_ok(const char *s)
{
	if (!s[0] || strlen(s) > FIELD_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* One line of standard input (without its line end), echo off on a terminal. */
static int read_password(char *buf, size_t len, const char *aor)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	if (tty) {
		fprintf(stderr, "Password for %s: ", aor);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, (int)len, stdin))
		buf[0] = 0;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	if (n == len - 1 && buf[n - 1] != '\n') {
		OPENSSL_cleanse(buf, len);
		return -1;
	}
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	if (n && buf[n - 1] == '\r')
		buf[--n] = 0;
	return 0;
}

/* Open the database; when root creates it, it goes to the owner of its directory. */
static struct store *open_db(const char *path)
{
	bool created = access(path, F_OK) != 0;
	struct store *st = NULL;
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	struct stat sb;

	if (store_open(&st, path) < 0) {
		free(dir);
		return NULL;
	}
	store_set_busy_timeout(st, BUSY_MS);
	if (slash)
		*slash = 0;
	if (created && geteuid() == 0 && dir && stat(slash ? (dir[0] ? dir : "/") : ".", &sb) == 0 &&
	    sb.st_uid != 0 && chown(path, sb.st_uid, sb.st_gid) != 0)
		fprintf(stderr, "sipwakectl: chown %s: %s\n", path, strerror(errno));
	free(dir);
	return st;
}

static json_t *account_json(const struct store_account *a)
{
	json_t *algos = json_array();

	if (a->ha1_md5)
		json_array_append_new(algos, json_string(auth_algo_name(AUTH_MD5)));
	if (a->ha1_sha256)
		json_array_append_new(algos, json_string(auth_algo_name(AUTH_SHA256)));
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "aor", a->aor, "username",
			 a->username, "realm", a->realm, "algorithms", algos, "created",
			 (json_int_t)a->created, "updated", (json_int_t)a->updated);
}

static int collect(void *ctx, const struct store_account *a)
{
	json_array_append_new(ctx, account_json(a));
	return 0;
}

struct set_args {
	const char *aor, *username, *realm;
	const char *ha1[AUTH_ALGO_COUNT];
	bool password;
};

/* Parse "set AOR [--username N] [--realm R] --password-stdin | --ha1 HEX [--ha1 HEX]". */
static int parse_set(int argc, char **argv, struct set_args *s)
{
	s->aor = argc > 2 ? argv[2] : NULL;
	for (int i = 3; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--password-stdin")) {
			s->password = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(o, "--username")) {
			s->username = v;
		} else if (!strcmp(o, "--realm")) {
			s->realm = v;
		} else if (!strcmp(o, "--ha1")) {
			int algo = strlen(v) == auth_hex_len(AUTH_SHA256) ? AUTH_SHA256 : AUTH_MD5;
			if (!auth_is_hex(v, auth_hex_len((enum auth_algo)algo))) {
				fprintf(stderr, "sipwakectl: --ha1 takes 32 (MD5) or 64 (SHA-256) "
						"hex digits\n");
				return -1;
			}
			if (s->ha1[algo]) {
				fprintf(stderr, "sipwakectl: two --ha1 values for %s\n",
					auth_algo_name((enum auth_algo)algo));
				return -1;
			}
			s->ha1[algo] = v;
		} else {
			return -1;
		}
	}
	if (!s->aor || s->password == (s->ha1[AUTH_MD5] || s->ha1[AUTH_SHA256])) {
		fprintf(stderr, "sipwakectl: account set needs an AOR and either "
				"--password-stdin or --ha1\n");
		return -1;
	}
	return 0;
}

static json_t *account_set(struct store *st, const struct sw_config *cfg, struct set_args *s,
			   const char *aor, const char *user, int *code)
{
	char ha1[AUTH_ALGO_COUNT][AUTH_HEX_MAX + 1] = {{0}};
	struct store_account a = {.aor = aor, .username = s->username ? s->username : user,
				  .realm = s->realm ? s->realm : config_auth_realm(cfg)};
	json_t *doc;

	if (!field_ok(a.username) || !field_ok(a.realm)) {
		fprintf(stderr, "sipwakectl: a username or realm must be 1 to %d printable "
				"characters without quotes or backslashes\n",
			FIELD_MAX);
		*code = EXIT_USAGE;
		return NULL;
	}
	if (s->password) {
		char pw[PASSWORD_MAX + 2];
		int rc = read_password(pw, sizeof(pw), aor);

		if (rc < 0 || !pw[0]) {
			OPENSSL_cleanse(pw, sizeof(pw));
			if (rc < 0)
				fprintf(stderr, "sipwakectl: the password is longer than %d bytes\n",
					PASSWORD_MAX);
			else
				fprintf(stderr, "sipwakectl: empty password (nothing on standard "
						"input)\n");
			*code = EXIT_USAGE;
			return NULL;
		}
		for (int i = 0; i < AUTH_ALGO_COUNT; i++)
			rc |= auth_ha1((enum auth_algo)i, a.username, a.realm, pw, ha1[i]);
		OPENSSL_cleanse(pw, sizeof(pw));
		if (rc < 0)
			return error_doc("cannot compute the HA1 values%s", "");
	} else {
		for (int i = 0; i < AUTH_ALGO_COUNT; i++)
			if (s->ha1[i])
				auth_hex_lower(s->ha1[i], ha1[i], sizeof(ha1[i]));
	}
	a.ha1_md5 = ha1[AUTH_MD5][0] ? ha1[AUTH_MD5] : NULL;
	a.ha1_sha256 = ha1[AUTH_SHA256][0] ? ha1[AUTH_SHA256] : NULL;
	a.created = a.updated = time(NULL);
	if (store_account_put(st, &a) < 0)
		doc = error_doc("cannot store the account of %s (see above)", aor);
	else {
		char msg[1024];
		snprintf(msg, sizeof(msg), "stored the account of %s (username %s, realm %s, %s)",
			 aor, a.username, a.realm,
			 a.ha1_md5 && a.ha1_sha256 ? "MD5 and SHA-256" : a.ha1_md5 ? "MD5" : "SHA-256");
		doc = ok_doc(json_pack("{s:s, s:o}", "message", msg, "account", account_json(&a)));
	}
	OPENSSL_cleanse(ha1, sizeof(ha1));
	return doc;
}

json_t *account_run(const char *config, int argc, char **argv, int *code)
{
	struct sw_config cfg;
	struct store *st = NULL;
	struct set_args s = {0};
	const char *verb = argc > 1 ? argv[1] : "";
	const char *where;
	char aor[512], user[256];
	json_t *doc = NULL;
	int rc;

	*code = EXIT_USAGE;
	if (!strcmp(verb, "set")) {
		if (parse_set(argc, argv, &s) < 0)
			return NULL;
	} else if (!strcmp(verb, "list")) {
		if (argc > 3)
			return NULL;
		s.aor = argc == 3 ? argv[2] : NULL;
	} else if (!strcmp(verb, "delete")) {
		if (argc != 3)
			return NULL;
		s.aor = argv[2];
	} else {
		fprintf(stderr, "sipwakectl: account set|list|delete\n");
		return NULL;
	}
	if (s.aor && canonical_aor(s.aor, aor, sizeof(aor), user, sizeof(user)) < 0) {
		fprintf(stderr, "sipwakectl: \"%s\" is not an address of record "
				"(sip:user@domain or sips:user@domain)\n",
			s.aor);
		return NULL;
	}
	log_set_level(SW_LOG_WARN);
	if (config_load(&cfg, config) < 0) {
		*code = EXIT_CONFIG;
		return NULL;
	}
	where = cfg.storage.database;
	if (config_clustered(&cfg)) {
		/* nothing but the accounts is used: the node's database stays untouched */
		where = "the cluster's Redis";
		if (store_open(&st, ":memory:") == 0 && store_attach_cluster_accounts(st, &cfg) < 0) {
			store_close(st);
			st = NULL;
		}
	} else {
		st = open_db(where);
	}
	if (!st) {
		doc = error_doc(config_clustered(&cfg) ? "cannot reach %s (see above)"
						      : "cannot open the database %s (see above)",
				where);
	} else if (!strcmp(verb, "set")) {
		doc = account_set(st, &cfg, &s, aor, user, code);
	} else if (!strcmp(verb, "list")) {
		json_t *list = json_array();
		if (store_account_list(st, s.aor ? aor : NULL, collect, list) < 0) {
			json_decref(list);
			doc = error_doc("cannot read the accounts of %s", where);
		} else {
			doc = ok_doc(json_pack("{s:o}", "accounts", list));
		}
	} else if ((rc = store_account_del(st, aor)) < 0) {
		doc = error_doc("cannot delete the account of %s (see above)", aor);
	} else if (rc == 0) {
		doc = error_doc("no account for %s", aor);
	} else {
		char msg[600];
		snprintf(msg, sizeof(msg), "deleted the account of %s", aor);
		doc = ok_doc(json_pack("{s:s, s:s}", "message", msg, "aor", aor));
	}
	store_close(st);
	config_cleanup(&cfg);
	return doc;
}
