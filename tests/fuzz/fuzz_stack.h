/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets that need the daemon's real objects: a
 * config loaded from a generated file, a su_root, the SIP agent on
 * 127.0.0.1 (UDP, any free port), a SQLite store and the registrar, all
 * in a private directory made with mkdtemp and removed by
 * fuzz_stack_close(). Bindings are added with the registrar's own
 * functions (registrar_upsert, binding_save), with fixed ids so that a
 * run is deterministic. Not a fuzz target itself (no fuzz_ prefix in the
 * name the CMake glob looks for).
 */
#ifndef SIPWAKE_FUZZ_STACK_H
#define SIPWAKE_FUZZ_STACK_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registrar/registrar_int.h"
#include "sipwake/config.h"
#include "sipwake/log.h"
#include "sipwake/store.h"

/* A VAPID public key for +sip.vapid (any base64url point will do here). */
#define FUZZ_VAPID_PUBLIC                                                                          \
	"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"

struct fuzz_stack {
	char dir[64];
	struct sw_config cfg;
	su_root_t *root;
	struct sip_agent *sa;
	struct store *st;
	struct registrar *reg;
};

/* Build the stack; upstream "" is standalone mode; extra is more config text. */
static inline int fuzz_stack_open(struct fuzz_stack *s, const char *upstream, const char *extra)
{
	char path[128];
	FILE *fp;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/sipwake-fuzz-XXXXXX");
	if (!mkdtemp(s->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/sw.conf", s->dir);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fprintf(fp,
		"sip: { listen = [\"sip:127.0.0.1:*;transport=udp\"]; domains = [\"example.com\"]; };\n"
		"upstream: { uri = \"%s\"; hide_push_params = true; };\n"
		"storage: { database = \"%s/sw.db\"; };\n"
		"admin: { socket = \"%s/control.sock\"; metrics_listen = \"\"; };\n"
		"%s\n",
		upstream, s->dir, s->dir, extra ? extra : "");
	fclose(fp);
	if (config_load(&s->cfg, path) < 0)
		return -1;
	s->root = su_root_create(NULL);
	if (!s->root || sip_agent_new(&s->sa, s->root, &s->cfg) < 0)
		return -1;
	if (store_open(&s->st, s->cfg.storage.database) < 0)
		return -1;
	if (registrar_new(&s->reg, s->sa, s->st) < 0)
		return -1;
	{
		const bool all[PN_PROVIDER_COUNT] = {false, true, true, true, true};
		registrar_set_push_support(s->reg, all, FUZZ_VAPID_PUBLIC, "acme");
	}
	return 0;
}

/* Free what fuzz_stack_open made (also after a partial open) and remove the directory. */
static inline void fuzz_stack_close(struct fuzz_stack *s)
{
	char path[320];
	DIR *d;
	struct dirent *e;

	registrar_free(s->reg);
	store_close(s->st);
	sip_agent_free(s->sa);
	if (s->root)
		su_root_destroy(s->root);
	config_cleanup(&s->cfg);
	if (!s->dir[0])
		return;
	d = opendir(s->dir);
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(s->dir);
	s->dir[0] = '\0';
}

/*
 * Add (or refresh) a binding as a REGISTER from `received` would;
 * user_agent may be NULL. NULL on failure.
 */
static inline struct binding *fuzz_stack_bind(struct fuzz_stack *s, const char *id,
					      const char *aor, const char *contact,
					      const char *received, const char *user_agent)
{
	struct pn_identity pn = {0};
	const char *params = strchr(contact, ';');
	char err[128];
	struct binding *b;
	struct binding_data d = {
		.id = id,
		.aor = aor,
		.contact = contact,
		.received = received,
		.call_id = "fuzz-register@example.com",
		.user_agent = user_agent,
		.cseq = 1,
		.q = 1000,
		.expires = time(NULL) + 3600,
		.updated = time(NULL),
	};

	if (params && pn_parse(params + 1, &pn, err, sizeof(err)) == PN_PARSE_OK)
		d.pn = &pn;
	b = registrar_upsert(s->reg, registrar_find_id(s->reg, id), &d);
	if (b)
		binding_save(s->reg, b);
	pn_identity_cleanup(&pn);
	registrar_flush(s->reg);
	return b;
}

/* The agent's UDP port as text ("5060"), for inputs that name us. */
static inline const char *fuzz_stack_port(struct fuzz_stack *s)
{
	const char *uri = sip_agent_uri(s->sa, "udp"), *colon = strrchr(uri, ':');
	static char port[8];

	snprintf(port, sizeof(port), "%.*s", colon ? (int)strcspn(colon + 1, ";") : 0,
		 colon ? colon + 1 : "");
	return port;
}

#endif
