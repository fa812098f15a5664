/* SPDX-License-Identifier: MIT */
/*
 * The config loader: reads sipwake.conf with libconfig, walks every setting
 * of the file against the option table (options.c), then checks the rules
 * that tie keys together and the key files they name. A problem does not
 * stop the walk: all of them are collected and printed to stderr in file
 * order, one "FILE:LINE: KEY: REASON" line each, so that one run of
 * `sipwaked --check` shows every mistake. Logging is not set up yet when
 * this runs, hence plain stderr.
 */
#include "sipwake/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <jansson.h>

#include "options.h"
#include "sipwake/keyfile.h"
#include "sipwake/log.h"
#include "sipwake/pn.h"

#define NAME_MAX_LEN 256 /* longest dotted key we look at */

/* One problem found, kept until the end so that all print in file order. */
struct load_error {
	char *file; /* as opened: @include names are joined to the include dir */
	int line;   /* 0 = the key is not in the file */
	size_t seq;
	char *text;
};

struct load_ctx {
	config_t *cf;
	const char *path;
	struct sw_config *cfg;
	unsigned char *bad; /* per option: the file's value was rejected */
	struct load_error *errors;
	size_t nerrors, cap;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("sipwake: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static void *field(struct sw_config *cfg, const struct config_option *o)
{
	return (char *)cfg + o->offset;
}

static const void *cfield(const struct sw_config *cfg, const struct config_option *o)
{
	return (const char *)cfg + o->offset;
}

static void free_list(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

static char **copy_list(const char *const *src)
{
	size_t n = 0;
	char **dst;

	while (src[n])
		n++;
	dst = xmalloc((n + 1) * sizeof(*dst));
	for (size_t i = 0; i < n; i++)
		dst[i] = xstrdup(src[i]);
	dst[n] = NULL;
	return dst;
}

static size_t list_len(char *const *list)
{
	size_t n = 0;

	while (list && list[n])
		n++;
	return n;
}

/* Release the value of one option and zero it. */
static void free_value(struct sw_config *cfg, const struct config_option *o)
{
	if (o->type == CONFIG_STRING) {
		char **s = field(cfg, o);
		free(*s);
		*s = NULL;
	} else if (o->type == CONFIG_LIST) {
		char ***l = field(cfg, o);
		free_list(*l);
		*l = NULL;
	}
}

void config_defaults(struct sw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];

		switch (o->type) {
		case CONFIG_BOOL:
			*(bool *)field(cfg, o) = o->def_int != 0;
			break;
		case CONFIG_INT:
			*(int *)field(cfg, o) = o->def_int;
			break;
		case CONFIG_STRING:
			*(char **)field(cfg, o) = xstrdup(o->def_str);
			break;
		case CONFIG_LIST:
			*(char ***)field(cfg, o) = copy_list(o->def_list);
			break;
		}
	}
}

void config_cleanup(struct sw_config *cfg)
{
	for (size_t i = 0; i < config_options_count; i++)
		free_value(cfg, &config_options[i]);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

const char *config_default_path(void)
{
	return "/etc/sipwake/sipwake.conf";
}

bool config_apns_enabled(const struct sw_config *cfg)
{
	const char *k = cfg->push.apns.key_file, *c = cfg->push.apns.certificate;

	return (k && k[0]) || (c && c[0]);
}

bool config_fcm_enabled(const struct sw_config *cfg)
{
	const char *s = cfg->push.fcm.service_account;

	return s && s[0];
}

/* ---- error reporting ---------------------------------------------------- */

/*
 * libconfig names a setting's file as written in @include; libconfig opened
 * it relative to the include dir, and so should the message.
 */
static char *resolve_file(const config_t *cf, const char *main_file, const char *file)
{
	const char *dir = config_get_include_dir(cf);
	size_t n;
	char *joined;

	if (!file)
		return xstrdup(main_file);
	if (file[0] == '/' || strcmp(file, main_file) == 0 || !dir || !dir[0])
		return xstrdup(file);
	n = strlen(dir);
	joined = xmalloc(n + strlen(file) + 2);
	sprintf(joined, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", file);
	return joined;
}

static void vreport(struct load_ctx *ctx, const char *file, int line, const char *key,
		    const char *fmt, va_list ap)
{
	char msg[1024], text[2048];
	char *where = resolve_file(ctx->cf, ctx->path, file);
	struct load_error *e;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(text, sizeof(text), "%s:%d: %s: %s", where, line, key, msg);
	else
		snprintf(text, sizeof(text), "%s: %s: %s", where, key, msg);
	if (ctx->nerrors == ctx->cap) {
		size_t cap = ctx->cap ? 2 * ctx->cap : 16;
		e = xmalloc(cap * sizeof(*e));
		if (ctx->nerrors)
			memcpy(e, ctx->errors, ctx->nerrors * sizeof(*e));
		free(ctx->errors);
		ctx->errors = e;
		ctx->cap = cap;
	}
	e = &ctx->errors[ctx->nerrors];
	e->file = where;
	e->line = line;
	e->seq = ctx->nerrors++;
	e->text = xstrdup(text);
}

/* qsort_r order: the main file (arg) first, then by file, line, and finding. */
static int error_order(const void *pa, const void *pb, void *arg)
{
	const struct load_error *a = pa, *b = pb;
	const char *main_file = arg;
	int fa = strcmp(a->file, main_file) != 0, fb = strcmp(b->file, main_file) != 0;
	int c;

	if (fa != fb)
		return fa - fb;
	if ((c = strcmp(a->file, b->file)) != 0)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Print the errors found, by file and line, and free them. */
static void flush_errors(struct load_ctx *ctx)
{
	if (ctx->nerrors)
		qsort_r(ctx->errors, ctx->nerrors, sizeof(*ctx->errors), error_order,
			(void *)ctx->path);
	for (size_t i = 0; i < ctx->nerrors; i++) {
		fprintf(stderr, "%s\n", ctx->errors[i].text);
		free(ctx->errors[i].text);
		free(ctx->errors[i].file);
	}
	free(ctx->errors);
	ctx->errors = NULL;
	ctx->nerrors = ctx->cap = 0;
}

/* Report a problem with setting s (whose dotted name is key). */
__attribute__((format(printf, 4, 5))) static void
report(struct load_ctx *ctx, const config_setting_t *s, const char *key, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, file ? file : ctx->path, config_setting_source_line(s), key, fmt, ap);
	va_end(ap);
}

/*
 * The setting for key in the file or, when the file does not set it (the
 * default applies), its nearest enclosing group there. NULL if neither.
 */
static config_setting_t *locate(struct load_ctx *ctx, const char *key)
{
	char path[NAME_MAX_LEN];
	config_setting_t *s;
	char *dot;

	snprintf(path, sizeof(path), "%s", key);
	for (;;) {
		s = config_lookup(ctx->cf, path);
		if (s)
			return s;
		dot = strrchr(path, '.');
		if (!dot)
			return NULL;
		*dot = '\0';
	}
}

/* Report a problem with key, at its line in the file (see locate()). */
__attribute__((format(printf, 3, 4))) static void report_key(struct load_ctx *ctx, const char *key,
							     const char *fmt, ...)
{
	const config_setting_t *s = locate(ctx, key);
	const char *file = s ? config_setting_source_file(s) : NULL;
	va_list ap;

	va_start(ap, fmt);
	vreport(ctx, file ? file : ctx->path, s ? config_setting_source_line(s) : 0, key, fmt, ap);
	va_end(ap);
}

/* Like report_key(), at the line of element i of the list key. */
__attribute__((format(printf, 4, 5))) static void report_elem(struct load_ctx *ctx, const char *key,
							      size_t i, const char *fmt, ...)
{
	const config_setting_t *s = config_lookup(ctx->cf, key);
	const config_setting_t *e = s ? config_setting_get_elem(s, (unsigned)i) : NULL;
	const char *file;
	va_list ap;

	if (!e)
		e = s ? s : locate(ctx, key);
	file = e ? config_setting_source_file(e) : NULL;
	va_start(ap, fmt);
	vreport(ctx, file ? file : ctx->path, e ? config_setting_source_line(e) : 0, key, fmt, ap);
	va_end(ap);
}

static const char *setting_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a bool";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "nothing";
}

/* ---- walking the file --------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[NAME_MAX_LEN + 1];

	if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The known key or group closest to an unknown name, if it is a likely typo. */
static const char *suggest(const char *name, char buf[NAME_MAX_LEN])
{
	size_t best = 3; /* at most two edits away */
	int found = 0;

	for (size_t i = 0; i < config_options_count; i++) {
		const char *n = config_options[i].name;
		for (const char *p = n;; p++) {
			if (*p == '.' || *p == '\0') {
				char cand[NAME_MAX_LEN];
				size_t d;
				snprintf(cand, sizeof(cand), "%.*s", (int)(p - n), n);
				d = edit_distance(name, cand);
				if (d < best) {
					best = d;
					snprintf(buf, NAME_MAX_LEN, "%s", cand);
					found = 1;
				}
			}
			if (!*p)
				break;
		}
	}
	if (found)
		return buf;

	/* A known key put in the wrong group: "sip.call_timeout". */
	{
		const char *last = strrchr(name, '.');
		last = last ? last + 1 : name;
		for (size_t i = 0; i < config_options_count; i++) {
			const char *n = config_options[i].name, *l = strrchr(n, '.');
			if (l && strcmp(l + 1, last) == 0) {
				snprintf(buf, NAME_MAX_LEN, "%s", n);
				return buf;
			}
		}
	}
	return NULL;
}

static void set_string(struct load_ctx *ctx, const struct config_option *o,
		       const config_setting_t *s)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		report(ctx, s, o->name, "must be a string, not %s", setting_type_name(s));
		goto bad;
	}
	v = config_setting_get_string(s);
	if (o->values) {
		const char *const *p;
		char allowed[256] = "";
		for (p = o->values; *p; p++)
			if (strcmp(*p, v) == 0)
				break;
		if (!*p) {
			for (p = o->values; *p; p++) {
				size_t n = strlen(allowed);
				snprintf(allowed + n, sizeof(allowed) - n, "%s\"%s\"",
					 p == o->values ? "" : ", ", *p);
			}
			report(ctx, s, o->name, "\"%s\" is not one of %s", v, allowed);
			goto bad;
		}
	}
	free_value(ctx->cfg, o);
	*(char **)field(ctx->cfg, o) = xstrdup(v);
	return;
bad:
	ctx->bad[o - config_options] = 1;
}

static void set_list(struct load_ctx *ctx, const struct config_option *o, const config_setting_t *s)
{
	int type = config_setting_type(s);
	unsigned n;
	char **list;

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		report(ctx, s, o->name, "must be a list of strings [ \"...\", ... ], not %s",
		       setting_type_name(s));
		goto bad;
	}
	n = (unsigned)config_setting_length(s);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			report(ctx, e, o->name, "element %u must be a string, not %s", i + 1,
			       setting_type_name(e));
			ctx->bad[o - config_options] = 1;
		}
	}
	if (ctx->bad[o - config_options])
		return;
	list = xmalloc((n + 1) * sizeof(*list));
	for (unsigned i = 0; i < n; i++)
		list[i] = xstrdup(config_setting_get_string_elem(s, i));
	list[n] = NULL;
	free_value(ctx->cfg, o);
	*(char ***)field(ctx->cfg, o) = list;
	return;
bad:
	ctx->bad[o - config_options] = 1;
}

static void set_value(struct load_ctx *ctx, const struct config_option *o,
		      const config_setting_t *s)
{
	int type = config_setting_type(s);

	switch (o->type) {
	case CONFIG_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			report(ctx, s, o->name, "must be true or false, not %s",
			       setting_type_name(s));
			ctx->bad[o - config_options] = 1;
			return;
		}
		*(bool *)field(ctx->cfg, o) = config_setting_get_bool(s) != 0;
		return;
	case CONFIG_INT: {
		long long v;
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
			report(ctx, s, o->name, "must be an integer, not %s", setting_type_name(s));
			ctx->bad[o - config_options] = 1;
			return;
		}
		v = config_setting_get_int64(s);
		if (v < o->min || v > o->max) {
			report(ctx, s, o->name, "%lld is out of range (%d to %d)", v, o->min,
			       o->max);
			ctx->bad[o - config_options] = 1;
			return;
		}
		*(int *)field(ctx->cfg, o) = (int)v;
		return;
	}
	case CONFIG_STRING:
		set_string(ctx, o, s);
		return;
	case CONFIG_LIST:
		set_list(ctx, o, s);
		return;
	}
}

static void walk_group(struct load_ctx *ctx, const config_setting_t *group, const char *prefix)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct config_option *o;
		char key[NAME_MAX_LEN], hint[NAME_MAX_LEN];
		const char *sugg;

		if (!name) /* groups only hold named settings; be safe anyway */
			continue;
		if (prefix)
			snprintf(key, sizeof(key), "%s.%s", prefix, name);
		else
			snprintf(key, sizeof(key), "%s", name);

		o = config_option_find(key);
		if (o)
			set_value(ctx, o, s);
		else if (config_option_is_group(key)) {
			if (config_setting_is_group(s))
				walk_group(ctx, s, key);
			else
				report(ctx, s, key, "must be a group { ... }, not %s",
				       setting_type_name(s));
		} else if ((sugg = suggest(key, hint))) {
			report(ctx, s, key, "unknown key (did you mean %s?)", sugg);
		} else {
			report(ctx, s, key, "unknown key");
		}
	}
}

/* ---- rules across keys -------------------------------------------------- */

/* The value of key, unless the file gave it a value that was rejected. */
static const void *usable(struct load_ctx *ctx, const char *key)
{
	const struct config_option *o = config_option_find(key);

	if (!o) { /* a rule below names a key the table lacks: a bug here */
		fprintf(stderr, "sipwake: config rule uses unknown key %s\n", key);
		abort();
	}
	if (ctx->bad[o - config_options])
		return NULL;
	return cfield(ctx->cfg, o);
}

static const char *str_of(struct load_ctx *ctx, const char *key)
{
	const char *const *v = usable(ctx, key);

	return v ? *v : NULL;
}

static int nonempty(const char *s)
{
	return s && s[0];
}

static int is_sip_uri(const char *s)
{
	return (strncmp(s, "sip:", 4) == 0 && s[4]) || (strncmp(s, "sips:", 5) == 0 && s[5]);
}

/* Push credentials and tokens never travel in clear: https:// only. */
static int is_https_url(const char *s)
{
	return strncmp(s, "https://", 8) == 0 && s[8];
}

static int has_space(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s))
			return 1;
	return 0;
}

static void check_int_order(struct load_ctx *ctx, const char *lo, const char *hi, int strict)
{
	const int *a = usable(ctx, lo), *b = usable(ctx, hi);

	if (!a || !b)
		return;
	if (strict ? *a >= *b : *a > *b)
		report_key(ctx, lo, "%d must be %s %s (%d)", *a, strict ? "less than" : "at most",
			   hi, *b);
}

/* True when a sip:/sips: URI's host is an IPv4 or IPv6 literal. */
static bool uri_host_is_ip(const char *uri)
{
	const char *h = strchr(uri, ':') + 1;
	const char *at = strchr(h, '@');
	char host[64];
	size_t n;
	unsigned char buf[16];

	if (at)
		h = at + 1;
	if (*h == '[')
		return true;
	n = strcspn(h, ":;?>");
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	return inet_pton(AF_INET, host, buf) == 1;
}

static void check_listen(struct load_ctx *ctx)
{
	char *const *listen = usable(ctx, "sip.listen") ? ctx->cfg->sip.listen : NULL;
	const char *cert = str_of(ctx, "sip.tls.certificate");
	const char *key = str_of(ctx, "sip.tls.private_key");
	size_t n = list_len(listen);

	if (!listen)
		return;
	if (n == 0)
		report_key(ctx, "sip.listen", "must name at least one listener");
	for (size_t i = 0; i < n; i++) {
		const char *l = listen[i];
		if (!is_sip_uri(l) || has_space(l)) {
			report_elem(ctx, "sip.listen", i,
				    "\"%s\" is not a sip: or sips: URI (e.g. "
				    "\"sip:0.0.0.0:5060;transport=udp\")",
				    l);
		} else if (strncmp(l, "sips:", 5) == 0 && cert && key && !cert[0] && !key[0]) {
			/* With one of the two set, the pair rule below reports it. */
			report_elem(ctx, "sip.listen", i,
				    "\"%s\" needs sip.tls.certificate and sip.tls.private_key", l);
		}
	}
	{
		const char *up = str_of(ctx, "upstream.uri");
		bool tls_listener = false;
		for (size_t i = 0; i < n; i++)
			tls_listener |= strncmp(listen[i], "sips:", 5) == 0 ||
					strcasestr(listen[i], "transport=tls") != NULL;
		bool up_tls = nonempty(up) &&
			      (strncmp(up, "sips:", 5) == 0 || strcasestr(up, "transport=tls"));
		const bool *verify = usable(ctx, "upstream.tls_verify") ? &ctx->cfg->upstream.tls_verify
									 : NULL;
		if (up_tls && !tls_listener)
			report_key(ctx, "upstream.uri",
				   "a TLS upstream needs a sips: listener in sip.listen (its "
				   "connections start from there)");
		else if (up_tls && verify && *verify && uri_host_is_ip(up))
			report_key(ctx, "upstream.uri",
				   "\"%s\": a TLS upstream is verified by the host name in its "
				   "certificate; name it by that DNS name (or set upstream.tls_verify "
				   "= false)", up);
	}
	if (nonempty(cert) && key && !key[0])
		report_key(ctx, "sip.tls.certificate", "needs sip.tls.private_key");
	if (nonempty(key) && cert && !cert[0])
		report_key(ctx, "sip.tls.private_key", "needs sip.tls.certificate");
}

static void check_domains(struct load_ctx *ctx)
{
	char *const *domains = usable(ctx, "sip.domains") ? ctx->cfg->sip.domains : NULL;
	size_t n = list_len(domains);

	if (!domains)
		return;
	if (n == 0)
		report_key(ctx, "sip.domains", "must name at least one domain");
	for (size_t i = 0; i < n; i++)
		if (!domains[i][0] || has_space(domains[i]))
			report_elem(ctx, "sip.domains", i, "\"%s\" is not a domain", domains[i]);
}

static void check_auth(struct load_ctx *ctx)
{
	char *const *algos = usable(ctx, "auth.algorithms") ? ctx->cfg->auth.algorithms : NULL;
	size_t n = list_len(algos);

	if (!algos)
		return;
	if (n == 0)
		report_key(ctx, "auth.algorithms", "must name at least one algorithm");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(algos[i], "SHA-256") && strcmp(algos[i], "MD5"))
			report_elem(ctx, "auth.algorithms", i,
				    "\"%s\" is not a digest algorithm (SHA-256 or MD5)", algos[i]);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(algos[i], algos[j]))
				report_elem(ctx, "auth.algorithms", i, "\"%s\" is named twice",
					    algos[i]);
	}
	if (usable(ctx, "auth.realm") && (has_space(ctx->cfg->auth.realm) || strpbrk(ctx->cfg->auth.realm, "\"\\")))
		report_key(ctx, "auth.realm", "must not contain spaces, quotes or backslashes");
}

const char *config_auth_realm(const struct sw_config *cfg)
{
	if (cfg->auth.realm && cfg->auth.realm[0])
		return cfg->auth.realm;
	return cfg->sip.domains && cfg->sip.domains[0] ? cfg->sip.domains[0] : "sipwake";
}

static int is_alnum_id(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return 1;
}

static void check_apns(struct load_ctx *ctx)
{
	const char *key_file = str_of(ctx, "push.apns.key_file");
	const char *key_id = str_of(ctx, "push.apns.key_id");
	const char *team_id = str_of(ctx, "push.apns.team_id");
	const char *cert = str_of(ctx, "push.apns.certificate");
	const char *pkey = str_of(ctx, "push.apns.private_key");

	if (nonempty(key_id) && !is_alnum_id(key_id, 10))
		report_key(ctx, "push.apns.key_id",
			   "\"%s\" is not an Apple key ID (10 letters or digits)", key_id);
	if (nonempty(team_id) && !is_alnum_id(team_id, 10))
		report_key(ctx, "push.apns.team_id",
			   "\"%s\" is not an Apple team ID (10 letters or digits)", team_id);
	if (nonempty(key_file)) {
		if (key_id && !key_id[0])
			report_key(ctx, "push.apns.key_file",
				   "needs push.apns.key_id (the 10-character ID of the key)");
		if (team_id && !team_id[0])
			report_key(ctx, "push.apns.key_file",
				   "needs push.apns.team_id (the 10-character Apple team ID)");
		if (nonempty(cert))
			report_key(ctx, "push.apns.certificate",
				   "cannot be used with push.apns.key_file; choose token or "
				   "certificate auth");
	}
	if (nonempty(cert) && pkey && !pkey[0])
		report_key(ctx, "push.apns.certificate", "needs push.apns.private_key");
	if (nonempty(pkey) && cert && !cert[0])
		report_key(ctx, "push.apns.private_key", "needs push.apns.certificate");
}

/* A VAPID key needs a subject (push services may refuse an anonymous sender). */
static void check_webpush(struct load_ctx *ctx)
{
	const char *key = str_of(ctx, "push.webpush.vapid_key");
	const char *sub = str_of(ctx, "push.webpush.subject");

	if (nonempty(sub) && (has_space(sub) || (strncmp(sub, "mailto:", 7) != 0 &&
						 !is_https_url(sub)) || !sub[7]))
		report_key(ctx, "push.webpush.subject",
			   "\"%s\" is not a mailto: or https: URI", sub);
	else if (nonempty(key) && sub && !sub[0])
		report_key(ctx, "push.webpush.vapid_key",
			   "needs push.webpush.subject (a mailto: or https: contact for the push "
			   "services)");
}

/* push.http: a provider name and URL together, a usable header line and body. */
static void check_http_push(struct load_ctx *ctx)
{
	static const char *const reserved[] = {"apns", "apns.dev", "fcm", "webpush"};
	const char *prov = str_of(ctx, "push.http.provider"), *url = str_of(ctx, "push.http.url");
	const char *hdr = str_of(ctx, "push.http.auth_header"), *body = str_of(ctx, "push.http.body");

	if (nonempty(prov)) {
		bool bad = strlen(prov) > PN_SERVICE_MAX ||
			   strspn(prov, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789._-") != strlen(prov);
		for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
			bad |= !strcasecmp(prov, reserved[i]);
		if (bad)
			report_key(ctx, "push.http.provider",
				   "\"%s\" is not a pn-provider name of its own (a token of at most "
				   "%d letters, digits, '.', '-', '_', not apns, fcm or webpush)",
				   prov, PN_SERVICE_MAX);
		if (url && !url[0])
			report_key(ctx, "push.http.provider", "needs push.http.url");
	}
	if (nonempty(url) && !is_https_url(url))
		report_key(ctx, "push.http.url", "\"%s\" is not an https:// URL", url);
	else if (nonempty(url) && prov && !prov[0])
		report_key(ctx, "push.http.url", "needs push.http.provider");
	if (nonempty(hdr)) {
		const char *colon = strchr(hdr, ':');
		if (!colon || colon == hdr || strpbrk(hdr, "\r\n") ||
		    strcspn(hdr, " \t") < (size_t)(colon - hdr))
			report_key(ctx, "push.http.auth_header",
				   "is not one header line \"Name: value\"");
	}
	if (nonempty(body)) {
		json_error_t jerr;
		json_t *j = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(j))
			report_key(ctx, "push.http.body", "is not a JSON object: %s",
				   j ? "another JSON value" : jerr.text);
		json_decref(j);
	}
}

static void check_urls(struct load_ctx *ctx)
{
	static const char *const required[] = {"push.apns.url", "push.apns.sandbox_url",
					       "push.fcm.url"};
	const char *v;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		v = str_of(ctx, required[i]);
		if (v && !is_https_url(v))
			report_key(ctx, required[i], "\"%s\" is not an https:// URL",
				   v);
	}
	v = str_of(ctx, "push.fcm.token_url");
	if (nonempty(v) && !is_https_url(v))
		report_key(ctx, "push.fcm.token_url", "\"%s\" is not an https:// URL",
			   v);
	v = str_of(ctx, "sip.advertised_host");
	if (v && (has_space(v) || is_sip_uri(v)))
		report_key(ctx, "sip.advertised_host",
			   "\"%s\" is not a host name or address (no URI, no spaces)", v);
	v = str_of(ctx, "upstream.uri");
	if (nonempty(v) && (!is_sip_uri(v) || has_space(v)))
		report_key(ctx, "upstream.uri",
			   "\"%s\" is not a sip: or sips: URI (\"\" = standalone mode)", v);
}

int config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64], *end;
	const char *colon;
	unsigned long port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!s || !s[0])
		return -1;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (hl = (size_t)(colon - s)) >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
	}
	host[hl] = 0;
	if (!colon[1] || colon[1] < '0' || colon[1] > '9')
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end || errno || port > 65535)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return 0;
}

static void check_metrics_listen(struct load_ctx *ctx)
{
	const char *v = str_of(ctx, "admin.metrics_listen");
	struct sockaddr_storage ss;
	socklen_t len;

	if (nonempty(v) && config_parse_listen(v, &ss, &len) < 0)
		report_key(ctx, "admin.metrics_listen",
			   "\"%s\" is not IPV4:PORT or [IPV6]:PORT (\"\" = off)", v);
}

static void check_cluster(struct load_ctx *ctx)
{
	const char *redis = str_of(ctx, "cluster.redis");
	const char *node = str_of(ctx, "cluster.node_name");
	struct config_redis where;
	const char *why = NULL;

	if (nonempty(redis) && config_parse_redis(redis, &where, &why) < 0)
		report_key(ctx, "cluster.redis", "%s (\"\" = one node on SQLite)", why);
	if (nonempty(node) && !config_node_name_ok(node))
		report_key(ctx, "cluster.node_name",
			   "\"%s\" is not a token of letters, digits, '.', '-' and '_' of at most 63 "
			   "characters", node);
}

static void check_paths(struct load_ctx *ctx)
{
	const char *db = str_of(ctx, "storage.database");
	const char *sock = str_of(ctx, "admin.socket");
	struct sockaddr_un sun;

	if (db && !db[0])
		report_key(ctx, "storage.database", "must not be empty");
	if (sock && !sock[0])
		report_key(ctx, "admin.socket", "must not be empty");
	else if (sock && strlen(sock) >= sizeof(sun.sun_path))
		report_key(ctx, "admin.socket",
			   "is longer than a Unix socket path may be (%zu bytes)",
			   sizeof(sun.sun_path) - 1);
	check_metrics_listen(ctx);
	check_cluster(ctx);
}

/* Files the config names: they must be there, readable, and keys private. */
static void check_files(struct load_ctx *ctx)
{
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];
		const char *path;
		struct stat st;
		int fd;

		if (!(o->flags & CONFIG_F_FILE) || !nonempty(path = str_of(ctx, o->name)))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			report_key(ctx, o->name, "cannot read %s: %s", path, strerror(errno));
			continue;
		}
		if (fstat(fd, &st) < 0) {
			report_key(ctx, o->name, "cannot stat %s: %s", path, strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			report_key(ctx, o->name, "%s is not a regular file", path);
		} else if ((o->flags & CONFIG_F_SECRET) && !keyfile_mode_ok(st.st_mode)) {
			report_key(ctx, o->name, "%s is accessible by others (mode %03o); chmod o-rwx it",
				   path, (unsigned)(st.st_mode & 0777));
		}
		close(fd);
	}
}

static void check_rules(struct load_ctx *ctx)
{
	check_int_order(ctx, "registrar.min_expires", "registrar.max_expires", 0);
	check_int_order(ctx, "registrar.max_expires", "registrar.push_max_expires", 0);
	check_int_order(ctx, "push.wakeup_before_expiry", "registrar.push_max_expires", 1);
	check_listen(ctx);
	check_domains(ctx);
	check_auth(ctx);
	check_apns(ctx);
	check_webpush(ctx);
	check_http_push(ctx);
	check_urls(ctx);
	check_paths(ctx);
	check_files(ctx);
}

/* ---- entry points ------------------------------------------------------- */

#define MAX_INCLUDE_DEPTH 10 /* libconfig's own limit */

/*
 * libconfig 1.5 exits the process (its scanner's fatal error, status 2)
 * when an @include names something it cannot read as a file, a directory
 * say: at --check that is the wrong exit status, on a SIGHUP it kills a
 * running daemon. So every @include is checked before libconfig sees the
 * file: it must name a regular, readable file (recursively). 0, or -1
 * with "file:line: ..." printed.
 *
 * The check must see the name libconfig opens, and libconfig 1.5's
 * scanner reads an @include name up to the next '"' across newlines,
 * takes \" and \\ as escapes, opens the bytes up to a NUL, and joins
 * every name, an absolute one too, to the include dir. So lines are read
 * whole (getline, no 4 KiB pieces that hide a line's start), names are
 * joined as libconfig joins them, and only plain names are accepted:
 * closed on their line, no backslash, no NUL. (Each of `@include
 * "dir<NUL>"`, `@include "/dir"` and an @include after 4 KiB of blanks
 * got past the first version of this check; seen with
 * tests/fuzz/fuzz_config.c.)
 */
static int check_includes(const char *file, const char *dir, int depth)
{
	FILE *in = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	if (!in)
		return 0; /* libconfig reports what cannot be opened, with its line */
	while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
		char *p = line, *end, *inc;
		char *eol = line + len;
		struct stat st;

		lineno++;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (eol - p < 8 || memcmp(p, "@include", 8) != 0)
			continue;
		p = memchr(p + 8, '"', (size_t)(eol - p - 8));
		end = p ? memchr(p + 1, '"', (size_t)(eol - p - 1)) : NULL;
		if (!p)
			continue; /* no name: libconfig's syntax error, with its line */
		if (!end || memchr(p + 1, '\0', (size_t)(end - p - 1)) ||
		    memchr(p + 1, '\\', (size_t)(end - p - 1))) {
			fprintf(stderr,
				"%s:%d: @include: the file name must be closed on its line and "
				"hold no backslash or NUL byte\n",
				file, lineno);
			rc = -1;
			break;
		}
		*end = '\0';
		p++;
		if (!dir) {
			inc = xstrdup(p);
		} else {
			inc = xmalloc(strlen(dir) + strlen(p) + 2);
			sprintf(inc, "%s/%s", dir, p);
		}
		if (depth >= MAX_INCLUDE_DEPTH) {
			fprintf(stderr, "%s:%d: @include \"%s\": includes nested too deeply\n", file,
				lineno, p);
			rc = -1;
		} else if (stat(inc, &st) == 0 && !S_ISREG(st.st_mode)) {
			fprintf(stderr, "%s:%d: @include \"%s\": not a regular file\n", file, lineno, p);
			rc = -1;
		} else if (stat(inc, &st) == 0) {
			rc = check_includes(inc, dir, depth + 1);
		}
		free(inc);
	}
	free(line);
	fclose(in);
	return rc;
}

int config_load(struct sw_config *cfg, const char *path)
{
	struct sw_config tmp;
	struct load_ctx ctx = {0};
	config_t cf;
	char *dir = NULL, *slash;
	int rc = -1;

	if (!path)
		path = config_default_path();
	memset(cfg, 0, sizeof(*cfg));
	config_defaults(&tmp);
	tmp.path = xstrdup(path);
	config_init(&cf);

	/* @include "x" is relative to the file's own directory. */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash) {
		slash[slash == dir] = '\0';
		config_set_include_dir(&cf, dir);
	}

	if (check_includes(path, slash ? dir : NULL, 0) < 0)
		goto out;
	if (!config_read_file(&cf, path)) {
		int err = errno;
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			fprintf(stderr, "%s: cannot read: %s\n", path, strerror(err));
		else {
			char *where = resolve_file(&cf, path, config_error_file(&cf));
			fprintf(stderr, "%s:%d: syntax error: %s\n", where, config_error_line(&cf),
				config_error_text(&cf));
			free(where);
		}
		goto out;
	}

	ctx.cf = &cf;
	ctx.path = path;
	ctx.cfg = &tmp;
	ctx.bad = xmalloc(config_options_count);
	memset(ctx.bad, 0, config_options_count);
	walk_group(&ctx, config_root_setting(&cf), NULL);
	check_rules(&ctx);
	if (ctx.nerrors) {
		flush_errors(&ctx);
		goto out;
	}

	*cfg = tmp;
	memset(&tmp, 0, sizeof(tmp));
	rc = 0;
out:
	config_destroy(&cf);
	config_cleanup(&tmp);
	free(ctx.bad);
	free(dir);
	return rc;
}

static int same_value(const struct sw_config *a, const struct sw_config *b,
		      const struct config_option *o)
{
	const void *va = cfield(a, o), *vb = cfield(b, o);
	static char *const no_list[] = {NULL};

	switch (o->type) {
	case CONFIG_BOOL:
		return *(const bool *)va == *(const bool *)vb;
	case CONFIG_INT:
		return *(const int *)va == *(const int *)vb;
	case CONFIG_STRING: {
		const char *sa = *(char *const *)va, *sb = *(char *const *)vb;
		return strcmp(sa ? sa : "", sb ? sb : "") == 0;
	}
	case CONFIG_LIST: {
		char *const *la = *(char **const *)va, *const *lb = *(char **const *)vb;
		if (!la)
			la = no_list;
		if (!lb)
			lb = no_list;
		size_t i;
		for (i = 0; la[i] && lb[i]; i++)
			if (strcmp(la[i], lb[i]) != 0)
				return 0;
		return !la[i] && !lb[i];
	}
	}
	return 0;
}

int config_reload(struct sw_config *cfg, const char *path)
{
	struct sw_config fresh;

	if (config_load(&fresh, path ? path : cfg->path) < 0)
		return -1;
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];

		if (!(o->flags & CONFIG_F_RELOAD)) {
			if (!same_value(cfg, &fresh, o))
				log_warn("config: %s changed; it takes effect after a restart",
					 o->name);
			continue;
		}
		/* Swap: cfg gets the new value, fresh keeps the old one to free. */
		switch (o->type) {
		case CONFIG_BOOL: {
			bool *d = field(cfg, o);
			*d = *(bool *)field(&fresh, o);
			break;
		}
		case CONFIG_INT: {
			int *d = field(cfg, o);
			*d = *(int *)field(&fresh, o);
			break;
		}
		case CONFIG_STRING: {
			char **d = field(cfg, o), **s = field(&fresh, o), *t = *d;
			*d = *s;
			*s = t;
			break;
		}
		case CONFIG_LIST: {
			char ***d = field(cfg, o), ***s = field(&fresh, o), **t = *d;
			*d = *s;
			*s = t;
			break;
		}
		}
	}
	/* A reload from another file makes that file the one SIGHUP reads. */
	{
		char *t = cfg->path;
		cfg->path = fresh.path;
		fresh.path = t;
	}
	config_cleanup(&fresh);
	return 0;
}
