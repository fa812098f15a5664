/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the config layer (src/config/): defaults, the shipped
 * conf/sipwake.conf, the generated docs/config.md, and one case per kind of
 * error, each checked for its "file:line: key: reason" line on stderr.
 * Config files are written to a mkdtemp() directory, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config/options.h"
#include "sipwake/config.h"
#include "sipwake/log.h"
#include "check.h"

static char tmpdir[] = "/tmp/sipwake-test-config-XXXXXX";
static char conf_path[512];

static char *read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	if (!fp)
		return NULL;
	mem = open_memstream(&buf, &len);
	for (int c; (c = fgetc(fp)) != EOF;)
		fputc(c, mem);
	fclose(mem);
	fclose(fp);
	return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp;

	unlink(path);
	fp = fopen(path, "w");
	if (!fp) {
		fprintf(stdout, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
}

/* Path of name inside the test directory (static buffer, one at a time). */
static const char *tmp_path(const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

/* Capture what fn writes to fd 2 while it runs; returns a heap string. */
struct capture {
	int saved;
	char path[512];
};

static void capture_begin(struct capture *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr.txt", tmpdir);
	fflush(stderr);
	c->saved = dup(2);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(struct capture *c)
{
	char *text;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	text = read_all(c->path);
	unlink(c->path);
	return text ? text : strdup("");
}

/* Write text as the test config and load it; *errs gets stderr. */
static int load_text(const char *text, struct sw_config *cfg, char **errs)
{
	struct capture c;
	int rc;

	write_file(conf_path, text, 0600);
	capture_begin(&c);
	rc = config_load(cfg, conf_path);
	*errs = capture_end(&c);
	return rc;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Check that errs holds a line starting "conf:LINE: KEY: REASON...". */
static void expect_error_at(const char *errs, int line, const char *key, const char *reason,
			    int src_line)
{
	char want[1024];

	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s: %s", conf_path, line, key, reason);
	else
		snprintf(want, sizeof(want), "%s: %s: %s", conf_path, key, reason);
	if (!strstr(errs, want)) {
		fprintf(stdout, "%s:%d: expected error \"%s\", got:\n%s\n", __FILE__, src_line,
			want, errs);
		failures++;
	}
}
#define expect_error(errs, line, key, reason) expect_error_at(errs, line, key, reason, __LINE__)

/* Load text, which must fail with exactly one error, the one given. */
static void expect_one(const char *text, int line, const char *key, const char *reason,
		       int src_line)
{
	struct sw_config cfg;
	char *errs;
	int rc = load_text(text, &cfg, &errs);

	if (rc != -1) {
		fprintf(stdout, "%s:%d: config_load accepted:\n%s\n", __FILE__, src_line, text);
		failures++;
	}
	expect_error_at(errs, line, key, reason, src_line);
	if (count_lines(errs) != 1) {
		fprintf(stdout, "%s:%d: expected one error line, got:\n%s\n", __FILE__, src_line,
			errs);
		failures++;
	}
	CHECK_MSG(cfg.path == NULL && cfg.sip.listen == NULL, "cfg not reset after an error");
	config_cleanup(&cfg);
	free(errs);
}
#define EXPECT_ONE(text, line, key, reason) expect_one(text, line, key, reason, __LINE__)

/* A header that makes the rest of a test config valid (no sips: listener). */
#define OK_SIP "sip: { listen = [ \"sip:127.0.0.1:5060\" ]; };\n"

static void test_defaults(void)
{
	struct sw_config cfg;

	config_defaults(&cfg);
	CHECK_MSG(cfg.sip.listen && cfg.sip.listen[0] && cfg.sip.listen[1] && cfg.sip.listen[2] &&
		      !cfg.sip.listen[3],
	      "listen has three entries");
	CHECK_MSG(strcmp(cfg.sip.listen[0], "sip:0.0.0.0:5060;transport=udp") == 0, "%s",
	      cfg.sip.listen[0]);
	CHECK_MSG(strcmp(cfg.sip.listen[1], "sip:0.0.0.0:5060;transport=tcp") == 0, "%s",
	      cfg.sip.listen[1]);
	CHECK_MSG(strcmp(cfg.sip.listen[2], "sips:0.0.0.0:5061") == 0, "%s", cfg.sip.listen[2]);
	CHECK_MSG(strcmp(cfg.sip.advertised_host, "") == 0, "advertised_host");
	CHECK_MSG(strcmp(cfg.sip.domains[0], "example.com") == 0 && !cfg.sip.domains[1], "domains");
	CHECK_MSG(strcmp(cfg.sip.tls.certificate, "") == 0 &&
		      strcmp(cfg.sip.tls.private_key, "") == 0 &&
		      strcmp(cfg.sip.tls.ca_file, "") == 0 && !cfg.sip.tls.verify_client,
	      "tls");
	CHECK_MSG(strcmp(cfg.upstream.uri, "sip:pbx.example.com:5060") == 0, "%s", cfg.upstream.uri);
	CHECK_MSG(cfg.upstream.hide_push_params, "hide_push_params");
	CHECK_MSG(!config_standalone(&cfg), "gateway mode by default");
	CHECK_MSG(cfg.registrar.min_expires == 60 && cfg.registrar.max_expires == 3600 &&
		      cfg.registrar.push_max_expires == 604800 &&
		      cfg.registrar.max_contacts_per_aor == 12,
	      "registrar");
	CHECK_MSG(strcmp(cfg.storage.database, "/var/lib/sipwake/sipwake.db") == 0, "database");
	CHECK_MSG(cfg.push.call_timeout == 30 && strcmp(cfg.push.provisional, "110") == 0 &&
		      cfg.push.missed_call_push && cfg.push.wakeup_before_expiry == 120 &&
		      cfg.push.min_interval == 2,
	      "push");
	CHECK_MSG(strcmp(cfg.push.apns.url, "https://api.push.apple.com") == 0, "apns url");
	CHECK_MSG(strcmp(cfg.push.apns.sandbox_url, "https://api.sandbox.push.apple.com") == 0,
	      "sandbox url");
	CHECK_MSG(strcmp(cfg.push.apns.key_file, "") == 0 && strcmp(cfg.push.apns.key_id, "") == 0 &&
		      strcmp(cfg.push.apns.team_id, "") == 0 &&
		      strcmp(cfg.push.apns.certificate, "") == 0 &&
		      strcmp(cfg.push.apns.private_key, "") == 0 &&
		      strcmp(cfg.push.apns.ca_file, "") == 0,
	      "apns credentials empty");
	CHECK_MSG(strcmp(cfg.push.fcm.url, "https://fcm.googleapis.com") == 0, "fcm url");
	CHECK_MSG(strcmp(cfg.push.fcm.service_account, "") == 0 &&
		      strcmp(cfg.push.fcm.token_url, "") == 0 &&
		      strcmp(cfg.push.fcm.ca_file, "") == 0,
	      "fcm");
	CHECK_MSG(!config_apns_enabled(&cfg) && !config_fcm_enabled(&cfg), "no provider by default");
	CHECK_MSG(cfg.messages.store && cfg.messages.max_age == 604800 &&
		      cfg.messages.max_per_aor == 1000 && cfg.messages.max_body == 65536,
	      "messages");
	CHECK_MSG(strcmp(cfg.admin.socket, "/run/sipwake/sipwake.sock") == 0, "socket");
	CHECK_MSG(strcmp(cfg.log.level, "info") == 0 && !cfg.log.sip_trace, "log");
	CHECK_MSG(strcmp(config_default_path(), "/etc/sipwake/sipwake.conf") == 0, "default path");
	config_cleanup(&cfg);
	CHECK_MSG(cfg.sip.listen == NULL && cfg.push.apns.url == NULL, "cleanup zeroes");
	config_cleanup(&cfg); /* twice is harmless */
}

/* Every key SPEC §3 names is in the table. */
static void test_spec_keys(void)
{
	static const char *const spec_keys[] = {
		"sip.listen",
		"sip.advertised_host",
		"sip.domains",
		"sip.tls.certificate",
		"sip.tls.private_key",
		"sip.tls.ca_file",
		"sip.tls.verify_client",
		"upstream.uri",
		"upstream.hide_push_params",
		"registrar.min_expires",
		"registrar.max_expires",
		"registrar.push_max_expires",
		"registrar.max_contacts_per_aor",
		"storage.database",
		"push.call_timeout",
		"push.provisional",
		"push.missed_call_push",
		"push.wakeup_before_expiry",
		"push.min_interval",
		"push.apns.key_file",
		"push.apns.key_id",
		"push.apns.team_id",
		"push.apns.certificate",
		"push.apns.private_key",
		"push.apns.url",
		"push.apns.sandbox_url",
		"push.apns.ca_file",
		"push.fcm.service_account",
		"push.fcm.url",
		"push.fcm.token_url",
		"push.fcm.ca_file",
		"messages.store",
		"messages.max_age",
		"messages.max_per_aor",
		"messages.max_body",
		"admin.socket",
		"log.level",
		"log.sip_trace",
	};

	for (size_t i = 0; i < sizeof(spec_keys) / sizeof(spec_keys[0]); i++)
		CHECK_MSG(config_option_find(spec_keys[i]), "SPEC key %s missing from the table",
		      spec_keys[i]);
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];
		CHECK_MSG(o->doc && o->doc[0], "%s has no doc", o->name);
		if (o->type == CONFIG_INT)
			CHECK_MSG(o->min <= o->def_int && o->def_int <= o->max,
			      "%s default out of its own range", o->name);
		if (o->values) {
			int ok = 0;
			for (const char *const *v = o->values; *v; v++)
				ok |= strcmp(*v, o->def_str) == 0;
			CHECK_MSG(ok, "%s default not among its values", o->name);
		}
		for (size_t j = 0; j < i; j++)
			CHECK_MSG(strcmp(config_options[j].name, o->name) != 0, "%s twice", o->name);
	}
	CHECK_MSG(config_option_is_group("push.apns") && config_option_is_group("sip") &&
		      !config_option_is_group("push.apns.url") && !config_option_is_group("pus"),
	      "group detection");
}

static const char *source_dir(void)
{
	const char *dir = getenv("SIPWAKE_SOURCE_DIR");

	if (!dir || !dir[0]) {
		fprintf(stdout, "SIPWAKE_SOURCE_DIR is not set (run through ctest)\n");
		exit(1);
	}
	return dir;
}

/* conf/sipwake.conf loads cleanly, is standalone on loopback, sets every key. */
static void test_shipped_conf(void)
{
	char path[1024], *errs, *text;
	struct sw_config cfg;
	struct capture c;
	config_t cf;
	int rc;

	snprintf(path, sizeof(path), "%s/conf/sipwake.conf", source_dir());
	capture_begin(&c);
	rc = config_load(&cfg, path);
	errs = capture_end(&c);
	CHECK_MSG(rc == 0, "shipped conf rejected:\n%s", errs);
	CHECK_MSG(errs[0] == '\0', "shipped conf printed:\n%s", errs);
	free(errs);
	if (rc == 0) {
		CHECK_MSG(config_standalone(&cfg), "shipped conf is not standalone");
		CHECK_MSG(cfg.sip.listen[0] &&
			      strcmp(cfg.sip.listen[0], "sip:127.0.0.1:5060;transport=udp") == 0 &&
			      cfg.sip.listen[1] &&
			      strcmp(cfg.sip.listen[1], "sip:127.0.0.1:5060;transport=tcp") == 0 &&
			      !cfg.sip.listen[2],
		      "shipped listeners");
		CHECK_MSG(cfg.sip.domains[0] && strcmp(cfg.sip.domains[0], "localhost") == 0 &&
			      cfg.sip.domains[1] && strcmp(cfg.sip.domains[1], "127.0.0.1") == 0 &&
			      !cfg.sip.domains[2],
		      "shipped domains");
		CHECK_MSG(!config_apns_enabled(&cfg) && !config_fcm_enabled(&cfg), "no credentials");
		CHECK_MSG(strcmp(cfg.path, path) == 0, "path kept");
		config_cleanup(&cfg);
	}

	/* Every key of the table is actually set in the shipped file. */
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		CHECK_MSG(0, "libconfig cannot read %s", path);
	} else {
		for (size_t i = 0; i < config_options_count; i++)
			CHECK_MSG(config_lookup(&cf, config_options[i].name),
			      "conf/sipwake.conf lacks %s", config_options[i].name);
	}
	config_destroy(&cf);

	text = read_all(path);
	CHECK_MSG(text && strstr(text, "# , \"sips:"), "TLS listener not shown commented out");
	free(text);
}

/* docs/config.md is exactly what config_write_reference() prints. */
static void test_reference(void)
{
	char path[1024], *want = NULL, *have;
	size_t len = 0;
	FILE *mem = open_memstream(&want, &len);

	config_write_reference(mem);
	fclose(mem);
	snprintf(path, sizeof(path), "%s/docs/config.md", source_dir());
	have = read_all(path);
	CHECK_MSG(have, "cannot read %s", path);
	if (have && strcmp(have, want) != 0)
		CHECK_MSG(0,
		      "docs/config.md is stale: run build/tests/sipwake_confref > docs/config.md");
	for (size_t i = 0; i < config_options_count; i++) {
		char cell[300];
		snprintf(cell, sizeof(cell), "| `%s` |", config_options[i].name);
		CHECK_MSG(strstr(want, cell), "reference lacks %s", config_options[i].name);
	}
	free(have);
	free(want);
}

static void test_minimal(void)
{
	struct sw_config cfg;
	char *errs;
	int rc;

	rc = load_text(OK_SIP, &cfg, &errs);
	CHECK_MSG(rc == 0, "minimal config rejected:\n%s", errs);
	if (rc == 0) {
		CHECK_MSG(strcmp(cfg.sip.domains[0], "example.com") == 0, "defaults apply");
		CHECK_MSG(cfg.push.call_timeout == 30, "defaults apply");
		config_cleanup(&cfg);
	}
	free(errs);

	/* Values of the right types, including a () list and an empty upstream. */
	rc = load_text(
		"sip: { listen = ( \"sips:[::]:5061\", \"sip:[::]:5060\" );\n"
		"  domains = [ \"a.example\" ]; };\n"
		"upstream: { uri = \"\"; hide_push_params = false; };\n"
		"registrar: { min_expires = 30; max_expires = 30; push_max_expires = 30; };\n"
		"push: { call_timeout = 0x3c; provisional = \"none\"; wakeup_before_expiry = 0; "
		"};\n"
		"log: { level = \"debug\"; sip_trace = true; };\n",
		&cfg, &errs);
	/* sips: without certificate */
	CHECK_MSG(rc == -1, "sips: listener without TLS accepted");
	expect_error(errs, 1, "sip.listen", "\"sips:[::]:5061\" needs sip.tls.certificate");
	CHECK_MSG(count_lines(errs) == 1, "one error expected:\n%s", errs);
	free(errs);

	write_file(tmp_path("cert.pem"), "cert\n", 0644);
	write_file(tmp_path("key.pem"), "key\n", 0600);
	{
		char text[2048];
		snprintf(
			text, sizeof(text),
			"sip: { listen = ( \"sips:[::]:5061\", \"sip:[::]:5060\" );\n"
			"  domains = [ \"a.example\" ];\n"
			"  tls: { certificate = \"%s/cert.pem\"; private_key = \"%s/key.pem\"; };\n"
			"};\n"
			"upstream: { uri = \"\"; hide_push_params = false; };\n"
			"registrar: { min_expires = 30; max_expires = 30; push_max_expires = 31; "
			"};\n"
			"push: { call_timeout = 0x3c; provisional = \"none\"; wakeup_before_expiry "
			"= 0; };\n"
			"log: { level = \"debug\"; sip_trace = true; };\n",
			tmpdir, tmpdir);
		rc = load_text(text, &cfg, &errs);
	}
	CHECK_MSG(rc == 0, "valid config rejected:\n%s", errs);
	if (rc == 0) {
		CHECK_MSG(config_standalone(&cfg), "standalone");
		CHECK_MSG(!cfg.upstream.hide_push_params, "bool false");
		CHECK_MSG(cfg.push.call_timeout == 60, "hex int");
		CHECK_MSG(strcmp(cfg.push.provisional, "none") == 0, "enum");
		CHECK_MSG(cfg.log.sip_trace && strcmp(cfg.log.level, "debug") == 0, "log");
		CHECK_MSG(strcmp(cfg.sip.listen[1], "sip:[::]:5060") == 0 && !cfg.sip.listen[2],
		      "list");
		config_cleanup(&cfg);
	}
	free(errs);
}

static void test_single_errors(void)
{
	/* unknown keys, top level and nested (with a suggestion for the typo) */
	EXPECT_ONE(OK_SIP "\nfoo = 1;\n", 3, "foo", "unknown key");
	EXPECT_ONE(OK_SIP "registrar: {\n  max_contact_per_aor = 5;\n};\n", 3,
		   "registrar.max_contact_per_aor",
		   "unknown key (did you mean registrar.max_contacts_per_aor?)");
	EXPECT_ONE(OK_SIP "push: { apns: { keyfile = \"\"; }; };\n", 2, "push.apns.keyfile",
		   "unknown key (did you mean push.apns.key_file?)");
	EXPECT_ONE(OK_SIP "push: { gcm: { }; };\n", 2, "push.gcm", "unknown key");
	EXPECT_ONE(OK_SIP "registrar: { call_timeout = 5; };\n", 2, "registrar.call_timeout",
		   "unknown key (did you mean push.call_timeout?)");
	EXPECT_ONE(OK_SIP "push = 5;\n", 2, "push", "must be a group { ... }, not an integer");

	/* wrong types */
	EXPECT_ONE(OK_SIP "push: { call_timeout = \"30\"; };\n", 2, "push.call_timeout",
		   "must be an integer, not a string");
	EXPECT_ONE(OK_SIP "push: { call_timeout = 30.0; };\n", 2, "push.call_timeout",
		   "must be an integer, not a float");
	EXPECT_ONE(OK_SIP "log: { sip_trace = 1; };\n", 2, "log.sip_trace",
		   "must be true or false, not an integer");
	EXPECT_ONE(OK_SIP "log: { level = true; };\n", 2, "log.level",
		   "must be a string, not a bool");
	EXPECT_ONE("sip: { listen = [ \"sip:127.0.0.1:5060\" ];\n  domains = \"a.example\"; };\n",
		   2, "sip.domains", "must be a list of strings");
	EXPECT_ONE("sip: { listen = ( \"sip:127.0.0.1:5060\",\n  5 ); };\n", 2, "sip.listen",
		   "element 2 must be a string, not an integer");
	EXPECT_ONE(OK_SIP "upstream: { uri: { }; };\n", 2, "upstream.uri",
		   "must be a string, not a group");

	/* ranges and enums */
	EXPECT_ONE(OK_SIP "push: {\n call_timeout = -5;\n};\n", 3, "push.call_timeout",
		   "-5 is out of range (1 to 600)");
	EXPECT_ONE(OK_SIP "push: { call_timeout = 5000000000L; };\n", 2, "push.call_timeout",
		   "5000000000 is out of range");
	EXPECT_ONE(OK_SIP "registrar: { min_expires = 4000; };\n", 2, "registrar.min_expires",
		   "4000 must be at most registrar.max_expires (3600)");
	EXPECT_ONE(OK_SIP "registrar: { max_expires = 7200;\n push_max_expires = 3600; };\n", 2,
		   "registrar.max_expires",
		   "7200 must be at most registrar.push_max_expires (3600)");
	EXPECT_ONE(OK_SIP "push: {\n  provisional = \"183\";\n};\n", 3, "push.provisional",
		   "\"183\" is not one of \"110\", \"180\", \"none\"");
	EXPECT_ONE(OK_SIP "log: { level = \"verbose\"; };\n", 2, "log.level",
		   "\"verbose\" is not one of");

	/* rules across keys */
	EXPECT_ONE("sip: { listen = [ ]; };\n", 1, "sip.listen", "must name at least one listener");
	EXPECT_ONE("sip: { listen = [ \"sip:127.0.0.1\",\n \"udp:1.2.3.4\" ]; };\n", 2,
		   "sip.listen", "\"udp:1.2.3.4\" is not a sip: or sips: URI");
	EXPECT_ONE("sip: { listen = [ \"sip:127.0.0.1\" ]; domains = [ ]; };\n", 1, "sip.domains",
		   "must name at least one domain");
	EXPECT_ONE(OK_SIP "upstream: { uri = \"pbx.example.com\"; };\n", 2, "upstream.uri",
		   "\"pbx.example.com\" is not a sip: or sips: URI");
	EXPECT_ONE(OK_SIP "push: { fcm: { url = \"fcm.googleapis.com\"; }; };\n", 2, "push.fcm.url",
		   "\"fcm.googleapis.com\" is not an https:// URL");
	EXPECT_ONE(OK_SIP "push: { apns: { key_id = \"ABC\"; }; };\n", 2, "push.apns.key_id",
		   "\"ABC\" is not an Apple key ID");
	EXPECT_ONE(OK_SIP "push: { webpush: { subject = \"ops@example.com\"; }; };\n", 2,
		   "push.webpush.subject", "\"ops@example.com\" is not a mailto: or https: URI");
	EXPECT_ONE(OK_SIP "push: { webpush: { subject = \"mailto:\"; }; };\n", 2,
		   "push.webpush.subject", "\"mailto:\" is not a mailto: or https: URI");
	EXPECT_ONE(OK_SIP "push: { http: { provider = \"fcm\"; url = \"https://p.example/x\"; }; };\n",
		   2, "push.http.provider", "\"fcm\" is not a pn-provider name of its own");
	EXPECT_ONE(OK_SIP "push: { http: { provider = \"acme\"; }; };\n", 2, "push.http.provider",
		   "needs push.http.url");
	EXPECT_ONE(OK_SIP "push: { http: { url = \"https://p.example/x\"; }; };\n", 2, "push.http.url",
		   "needs push.http.provider");
	EXPECT_ONE(OK_SIP "push: { http: { provider = \"acme\"; url = \"http://p.example/x\"; }; };\n",
		   2, "push.http.url", "\"http://p.example/x\" is not an https:// URL");
	EXPECT_ONE(OK_SIP "push: { http: { auth_header = \"Bearer xyz\"; }; };\n", 2,
		   "push.http.auth_header", "is not one header line");
	EXPECT_ONE(OK_SIP "push: { http: { body = \"[1, 2]\"; }; };\n", 2, "push.http.body",
		   "is not a JSON object: another JSON value");
	EXPECT_ONE(OK_SIP "push: { http: { body = \"{\\\"a\\\": \"; }; };\n", 2, "push.http.body",
		   "is not a JSON object:");
	EXPECT_ONE(OK_SIP "admin: { socket = \"\"; };\n", 2, "admin.socket", "must not be empty");
	EXPECT_ONE("sip: {\n listen = [ \"sip:127.0.0.1\" ];\n advertised_host = \"sip:x\"; };\n",
		   3, "sip.advertised_host", "\"sip:x\" is not a host name or address");
	/* The default listeners include sips: and nothing in the file has a line. */
	EXPECT_ONE("", 0, "sip.listen", "\"sips:0.0.0.0:5061\" needs sip.tls.certificate");
	/* ... with a sip group in the file, its line is used. */
	EXPECT_ONE("\nsip: { domains = [ \"x\" ]; };\n", 2, "sip.listen",
		   "\"sips:0.0.0.0:5061\" needs sip.tls.certificate");
}

static void test_syntax_error(void)
{
	struct sw_config cfg;
	char *errs, want[600];
	int rc;

	rc = load_text("sip: {\n  listen = [ \"sip:x\" \n  domains = 1;\n};\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "syntax error accepted");
	snprintf(want, sizeof(want), "%s:3: syntax error: ", conf_path);
	CHECK_MSG(strstr(errs, want) == errs, "want \"%s...\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);

	/* A key given twice is refused by libconfig itself, at the second one. */
	rc = load_text(OK_SIP "sip: { domains = [ \"a\" ]; };\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "duplicate group accepted");
	snprintf(want, sizeof(want), "%s:2: syntax error: duplicate setting name", conf_path);
	CHECK_MSG(strstr(errs, want) == errs, "want \"%s\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);

	{
		struct capture c;
		capture_begin(&c);
		rc = config_load(&cfg, tmp_path("does-not-exist.conf"));
		errs = capture_end(&c);
	}
	CHECK_MSG(rc == -1, "missing config file accepted");
	CHECK_MSG(strstr(errs, "does-not-exist.conf: cannot read: No such file or directory"),
	      "got:\n%s", errs);
	free(errs);
}

static void test_key_files(void)
{
	struct sw_config cfg;
	char text[2048], key[512], *errs;
	int rc;

	snprintf(key, sizeof(key), "%s", tmp_path("AuthKey.p8"));
	write_file(key, "-----BEGIN PRIVATE KEY-----\n", 0644);
	snprintf(text, sizeof(text),
		 OK_SIP "push: {\n  apns: {\n    key_file = \"%s\";\n"
			"    key_id = \"ABCDE12345\"; team_id = \"TEAM123456\";\n  };\n};\n",
		 key);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == -1, "world-readable key accepted");
	{
		char reason[600];
		snprintf(reason, sizeof(reason),
			 "%s is accessible by others (mode 644); chmod o-rwx it", key);
		expect_error(errs, 4, "push.apns.key_file", reason);
	}
	CHECK_MSG(count_lines(errs) == 1, "one error expected:\n%s", errs);
	free(errs);
	config_cleanup(&cfg);

	/* World-writable only: the push layer would refuse it at start, so --check does too. */
	chmod(key, 0602);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == -1, "world-writable key accepted by the check");
	free(errs);
	config_cleanup(&cfg);

	chmod(key, 0640);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == 0, "private key file rejected:\n%s", errs);
	if (rc == 0) {
		CHECK_MSG(config_apns_enabled(&cfg) && !config_fcm_enabled(&cfg), "apns enabled");
		CHECK_MSG(strcmp(cfg.push.apns.key_id, "ABCDE12345") == 0, "key_id");
		config_cleanup(&cfg);
	}
	free(errs);

	/* key_file without key_id / team_id */
	snprintf(text, sizeof(text), OK_SIP "push: { apns: {\n key_file = \"%s\"; }; };\n", key);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == -1, "key_file without ids accepted");
	expect_error(errs, 3, "push.apns.key_file", "needs push.apns.key_id");
	expect_error(errs, 3, "push.apns.key_file", "needs push.apns.team_id");
	CHECK_MSG(count_lines(errs) == 2, "two errors expected:\n%s", errs);
	free(errs);

	/* a VAPID key needs a subject; with one it is accepted */
	snprintf(text, sizeof(text), OK_SIP "push: { webpush: {\n vapid_key = \"%s\"; }; };\n", key);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == -1, "vapid_key without subject accepted");
	expect_error(errs, 3, "push.webpush.vapid_key", "needs push.webpush.subject");
	CHECK_MSG(count_lines(errs) == 1, "one error expected:\n%s", errs);
	free(errs);
	snprintf(text, sizeof(text),
		 OK_SIP "push: { webpush: {\n vapid_key = \"%s\";\n subject = \"https://ops.example.com/\"; "
			"}; };\n",
		 key);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == 0, "vapid_key with subject rejected:\n%s", errs);
	if (rc == 0)
		config_cleanup(&cfg);
	free(errs);

	/* certificate auth needs its private key */
	snprintf(text, sizeof(text), OK_SIP "push: { apns: {\n certificate = \"%s\"; }; };\n", key);
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == -1, "certificate without private_key accepted");
	expect_error(errs, 3, "push.apns.certificate", "needs push.apns.private_key");
	CHECK_MSG(count_lines(errs) == 1, "one error expected:\n%s", errs);
	free(errs);

	/* missing file */
	snprintf(text, sizeof(text), OK_SIP "push: { fcm: {\n service_account = \"%s\"; }; };\n",
		 tmp_path("nope.json"));
	{
		char reason[600];
		snprintf(reason, sizeof(reason), "cannot read %s: No such file or directory",
			 tmp_path("nope.json"));
		EXPECT_ONE(text, 3, "push.fcm.service_account", reason);
	}

	/* a directory is not a key file */
	snprintf(text, sizeof(text),
		 "sip: { listen = [ \"sips:127.0.0.1\" ];\n tls: {\n"
		 " certificate = \"%s\";\n private_key = \"%s\"; }; };\n",
		 key, tmpdir);
	{
		char reason[600];
		snprintf(reason, sizeof(reason), "%s is not a regular file", tmpdir);
		EXPECT_ONE(text, 4, "sip.tls.private_key", reason);
	}

	/* FCM service account, private */
	write_file(tmp_path("sa.json"), "{}\n", 0600);
	snprintf(text, sizeof(text), OK_SIP "push: { fcm: { service_account = \"%s\"; }; };\n",
		 tmp_path("sa.json"));
	rc = load_text(text, &cfg, &errs);
	CHECK_MSG(rc == 0, "private service account rejected:\n%s", errs);
	if (rc == 0) {
		CHECK_MSG(config_fcm_enabled(&cfg) && !config_apns_enabled(&cfg), "fcm enabled");
		config_cleanup(&cfg);
	}
	free(errs);
}

/* All errors of a file are reported, each on its own line, in file order. */
static void test_many_errors(void)
{
	struct sw_config cfg;
	char *errs;
	int rc;

	rc = load_text("sip: {\n"                            /* 1 */
		       "  listen = [ \"udp:127.0.0.1\" ];\n" /* 2 */
		       "  domain = [ \"x\" ];\n"             /* 3 */
		       "};\n"                                /* 4 */
		       "registrar: {\n"                      /* 5 */
		       "  min_expires = \"60\";\n"           /* 6 */
		       "  max_contacts_per_aor = 0;\n"       /* 7 */
		       "};\n"                                /* 8 */
		       "push: {\n"                           /* 9 */
		       "  provisional = \"183\";\n"          /* 10 */
		       "  missed_call_push = \"yes\";\n"     /* 11 */
		       "};\n"                                /* 12 */
		       "bogus = true;\n",                    /* 13 */
		       &cfg, &errs);
	CHECK_MSG(rc == -1, "bad config accepted");
	expect_error(errs, 2, "sip.listen", "\"udp:127.0.0.1\" is not a sip: or sips: URI");
	expect_error(errs, 3, "sip.domain", "unknown key (did you mean sip.domains?)");
	expect_error(errs, 6, "registrar.min_expires", "must be an integer, not a string");
	expect_error(errs, 7, "registrar.max_contacts_per_aor", "0 is out of range (1 to 32)");
	expect_error(errs, 10, "push.provisional", "\"183\" is not one of");
	expect_error(errs, 11, "push.missed_call_push", "must be true or false, not a string");
	expect_error(errs, 13, "bogus", "unknown key");
	CHECK_MSG(count_lines(errs) == 7, "seven errors expected:\n%s", errs);
	/* Printed in file order, though the listen rule is checked last. */
	{
		static const int lines[] = {2, 3, 6, 7, 10, 11, 13};
		const char *p = errs;
		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			char want[600];
			snprintf(want, sizeof(want), "%s:%d: ", conf_path, lines[i]);
			CHECK_MSG(strncmp(p, want, strlen(want)) == 0,
			      "line %zu should start \"%s\":\n%s", i + 1, want, errs);
			p = strchr(p, '\n');
			if (!p)
				break;
			p++;
		}
	}
	free(errs);
	config_cleanup(&cfg);
}

/* @include "file" is relative to the including file; errors name the file. */
static void test_include(void)
{
	struct sw_config cfg;
	char *errs, want[600];
	int rc;

	write_file(tmp_path("push.inc"), "push: {\n  call_timeout = 0;\n};\n", 0600);
	rc = load_text(OK_SIP "@include \"push.inc\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "error in included file accepted");
	snprintf(want, sizeof(want), "%s:2: push.call_timeout: 0 is out of range",
		 tmp_path("push.inc"));
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);

	write_file(tmp_path("push.inc"), "push: {\n  call_timeout = ;\n};\n", 0600);
	rc = load_text(OK_SIP "@include \"push.inc\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "syntax error in included file accepted");
	snprintf(want, sizeof(want), "%s:2: syntax error: ", tmp_path("push.inc"));
	CHECK_MSG(strstr(errs, want) == errs, "want \"%s\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);

	/* A directory (libconfig's scanner would exit(2)): file:line, and we are still here. */
	rc = load_text(OK_SIP "@include \".\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "@include of a directory accepted");
	snprintf(want, sizeof(want), "%s:%d: @include \".\": not a regular file", conf_path,
		 count_lines(OK_SIP) + 1);
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);
	write_file(tmp_path("nested.inc"), "# nested\n  @include \"/\"\n", 0600);
	rc = load_text(OK_SIP "@include \"nested.inc\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "nested @include of a directory accepted");
	snprintf(want, sizeof(want), "%s:2: @include \"/\": not a regular file",
		 tmp_path("nested.inc"));
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);
	config_cleanup(&cfg);

	write_file(tmp_path("push.inc"), "push: { call_timeout = 9; };\n", 0600);
	rc = load_text(OK_SIP "@include \"push.inc\"\n", &cfg, &errs);
	CHECK_MSG(rc == 0, "include rejected:\n%s", errs);
	if (rc == 0) {
		CHECK_MSG(cfg.push.call_timeout == 9, "included value");
		config_cleanup(&cfg);
	}
	free(errs);
}

/* Write len bytes (NULs included) as the config file and load it. */
static int load_bytes(const char *data, size_t len, struct sw_config *cfg, char **errs)
{
	struct capture c;
	FILE *fp = fopen(conf_path, "w");
	int rc;

	if (!fp || fwrite(data, 1, len, fp) != len) {
		if (fp)
			fclose(fp);
		*errs = strdup("cannot write the config file");
		return -2;
	}
	fclose(fp);
	capture_begin(&c);
	rc = config_load(cfg, conf_path);
	*errs = capture_end(&c);
	return rc;
}

/*
 * Names that the @include check once read otherwise than libconfig's
 * scanner, which then exit(2)ed on a directory (tests/fuzz/fuzz_config.c):
 * a NUL inside the name, an absolute name (libconfig joins it to the
 * include dir too), an @include that starts past 4 KiB of blanks, and the
 * names only libconfig's escapes or a newline would make.
 */
static void test_include_names(void)
{
	static const char nul[] = "@include \"inc.d\0\"\n";
	struct sw_config cfg;
	char *errs, *text, want[600];
	int rc;

	CHECK(mkdir(tmp_path("inc.d"), 0700) == 0);
	rc = load_bytes(nul, sizeof(nul) - 1, &cfg, &errs);
	CHECK_MSG(rc == -1, "@include with a NUL accepted");
	snprintf(want, sizeof(want), "%s:1: @include: the file name must be closed", conf_path);
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);

	rc = load_text(OK_SIP "@include \"/inc.d\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "@include of /DIR accepted");
	snprintf(want, sizeof(want), "%s:%d: @include \"/inc.d\": not a regular file", conf_path,
		 count_lines(OK_SIP) + 1);
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);

	text = malloc(4090 + 64);
	if (text) {
		memset(text, ' ', 4090);
		snprintf(text + 4090, 64, "@include \"inc.d\"\n");
		rc = load_text(text, &cfg, &errs);
		CHECK_MSG(rc == -1, "@include after 4 KiB of blanks accepted");
		snprintf(want, sizeof(want), "%s:1: @include \"inc.d\": not a regular file",
			 conf_path);
		CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
		free(errs);
		free(text);
	}

	rc = load_text("@include \"inc\\.d\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "@include with a backslash accepted");
	free(errs);
	rc = load_text("@include \"inc.d\n\"\n", &cfg, &errs);
	CHECK_MSG(rc == -1, "@include name across lines accepted");
	snprintf(want, sizeof(want), "%s:1: @include: the file name must be closed", conf_path);
	CHECK_MSG(strstr(errs, want), "want \"%s\", got:\n%s", want, errs);
	free(errs);
	rmdir(tmp_path("inc.d"));
}

static void test_reload(void)
{
	struct sw_config cfg;
	struct capture c;
	char *errs;
	int rc;

	rc = load_text(OK_SIP "log: { level = \"info\"; };\n", &cfg, &errs);
	CHECK_MSG(rc == 0, "reload base rejected:\n%s", errs);
	free(errs);
	if (rc != 0)
		return;

	write_file(conf_path,
		   "sip: { listen = [ \"sip:127.0.0.1:5070\" ]; };\n"
		   "registrar: { max_expires = 1800; };\n"
		   "push: { call_timeout = 10; provisional = \"180\"; };\n"
		   "log: { level = \"debug\"; sip_trace = true; };\n",
		   0600);
	capture_begin(&c);
	rc = config_reload(&cfg, NULL);
	errs = capture_end(&c);
	CHECK_MSG(rc == 0, "reload failed:\n%s", errs);
	CHECK_MSG(strcmp(cfg.log.level, "debug") == 0 && cfg.log.sip_trace, "log reloaded");
	CHECK_MSG(cfg.push.call_timeout == 10 && strcmp(cfg.push.provisional, "180") == 0,
	      "push reloaded");
	CHECK_MSG(cfg.registrar.max_expires == 3600, "registrar must not reload");
	CHECK_MSG(strcmp(cfg.sip.listen[0], "sip:127.0.0.1:5060") == 0, "listen must not reload");
	CHECK_MSG(strstr(errs, "registrar.max_expires changed") && strstr(errs, "sip.listen changed"),
	      "restart-needed notes missing:\n%s", errs);
	CHECK_MSG(!strstr(errs, "push.call_timeout"), "reloaded key reported:\n%s", errs);
	free(errs);

	write_file(conf_path, OK_SIP "log: { level = \"loud\"; };\npush: { call_timeout = 99; };\n",
		   0600);
	capture_begin(&c);
	rc = config_reload(&cfg, NULL);
	errs = capture_end(&c);
	CHECK_MSG(rc == -1, "bad reload accepted");
	expect_error(errs, 2, "log.level", "\"loud\" is not one of");
	CHECK_MSG(strcmp(cfg.log.level, "debug") == 0 && cfg.push.call_timeout == 10,
	      "failed reload changed cfg");
	free(errs);

	/* Reloading from another file makes it the file of the next reload. */
	{
		char other[512];
		snprintf(other, sizeof(other), "%s", tmp_path("other.conf"));
		write_file(other, OK_SIP "push: { min_interval = 7; };\n", 0600);
		capture_begin(&c);
		rc = config_reload(&cfg, other);
		errs = capture_end(&c);
		CHECK_MSG(rc == 0, "reload from other file failed:\n%s", errs);
		CHECK_MSG(cfg.push.min_interval == 7 && strcmp(cfg.path, other) == 0,
		      "other file used");
		free(errs);
	}
	config_cleanup(&cfg);
}

/* cluster.redis and cluster.node_name: the URL forms, and what is refused. */
static void test_cluster(void)
{
	struct config_redis r;
	const char *why = NULL;

	CHECK(config_parse_redis("redis://127.0.0.1", &r, &why) == 0);
	CHECK(!strcmp(r.host, "127.0.0.1") && r.port == 6379 && r.db == 0 && !r.path[0]);
	CHECK(config_parse_redis("redis://:s3cret@redis.example.com:6380/2", &r, &why) == 0);
	CHECK(!strcmp(r.host, "redis.example.com") && r.port == 6380 && r.db == 2);
	CHECK(!r.user[0] && !strcmp(r.password, "s3cret"));
	CHECK(config_parse_redis("redis://sw:pw@[::1]:7000/", &r, &why) == 0);
	CHECK(!strcmp(r.host, "::1") && r.port == 7000 && !strcmp(r.user, "sw"));
	CHECK(config_parse_redis("unix:/run/redis/redis.sock?db=3", &r, &why) == 0);
	CHECK(!strcmp(r.path, "/run/redis/redis.sock") && r.db == 3 && !r.host[0]);
	const char *bad[] = {"", "127.0.0.1:6379", "redis://", "redis://host:0", "redis://host:x",
			     "redis://host:70000", "redis://[::1", "redis://[::1]x", "redis://h/x",
			     "redis://user@host", "redis://u:@host", "redis://ho st",
			     "unix:relative.sock", "unix:/a?x=1", NULL};
	for (int i = 0; bad[i]; i++) {
		why = NULL;
		CHECK_MSG(config_parse_redis(bad[i], &r, &why) == -1 && why, bad[i]);
	}
	CHECK(config_node_name_ok("node-1.eu_west") && !config_node_name_ok("") &&
	      !config_node_name_ok("a b") && !config_node_name_ok("a/b"));

	EXPECT_ONE(OK_SIP "cluster: { redis = \"tcp://127.0.0.1\"; };\n", 2, "cluster.redis",
		   "is neither redis://");
	EXPECT_ONE(OK_SIP "cluster: { redis = \"redis://:pw@127.0.0.1:99999\"; };\n", 2,
		   "cluster.redis", "the port is not a number from 1 to 65535");
	EXPECT_ONE(OK_SIP "cluster: { node_name = \"node 1\"; };\n", 2, "cluster.node_name",
		   "\"node 1\" is not a token");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/sipwake.conf", tmpdir);
	log_set_level(SW_LOG_WARN);

	test_defaults();
	test_spec_keys();
	test_shipped_conf();
	test_reference();
	test_minimal();
	test_single_errors();
	test_syntax_error();
	test_key_files();
	test_many_errors();
	test_include();
	test_include_names();
	test_reload();
	test_cluster();

	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	if (failures) {
		printf("test_config: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_config: all checks passed\n");
	return 0;
}
