/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the bindings table (src/registrar/bindings.c) on a real
 * SIP agent (loopback, any free port) and a real SQLite store: matching a
 * re-registration by +sip.instance, then push identity, then contact URI;
 * a push token registered under another AOR (the first AOR keeps it); eviction of the oldest binding
 * beyond max_contacts_per_aor; q ordering; removal by push identity; and
 * reload from the store with the push identity parsed again.
 */
#include "registrar/registrar_int.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sipwake/config.h"
#include "sipwake/log.h"

#define TOK1 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define TOK2 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char dir[] = "/tmp/sipwake-test-registrar-XXXXXX";

struct fixture {
	struct sw_config cfg;
	su_root_t *root;
	struct sip_agent *sa;
	struct store *st;
	struct registrar *r;
	int events_bound, events_removed;
};

static void on_event(void *ctx, const struct binding *b, enum registrar_event ev)
{
	struct fixture *f = ctx;
	if (ev == REGISTRAR_BOUND)
		f->events_bound++;
	else
		f->events_removed++;
}

static int setup(struct fixture *f)
{
	char path[256], db[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sw.conf", dir);
	snprintf(db, sizeof(db), "%s/sw.db", dir);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fprintf(fp,
		"sip: { listen = [\"sip:127.0.0.1:*;transport=udp\"]; domains = [\"example.com\"]; };\n"
		"upstream: { uri = \"\"; };\n"
		"registrar: { max_contacts_per_aor = 3; };\n"
		"storage: { database = \"%s\"; };\n",
		db);
	fclose(fp);
	if (config_load(&f->cfg, path) < 0)
		return -1;
	f->root = su_root_create(NULL);
	if (!f->root || sip_agent_new(&f->sa, f->root, &f->cfg) < 0)
		return -1;
	if (store_open(&f->st, f->cfg.storage.database) < 0)
		return -1;
	if (registrar_new(&f->r, f->sa, f->st) < 0)
		return -1;
	registrar_subscribe(f->r, on_event, f);
	return 0;
}

static void teardown(struct fixture *f)
{
	registrar_free(f->r);
	store_close(f->st);
	sip_agent_free(f->sa);
	su_root_destroy(f->root);
	config_cleanup(&f->cfg);
	f->r = NULL;
	f->st = NULL;
}

/* Bind a contact as a REGISTER would; uri params carry the push parameters. */
static struct binding *bind_contact(struct fixture *f, const char *aor, const char *uri,
				    const char *instance, int q, int64_t updated)
{
	struct pn_identity pn = {0};
	char err[128], id[BINDING_ID_LEN + 1], ckey[320];
	const char *params = strchr(uri, ';');
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *u = url_make(home, uri);
	struct binding *old, *b;
	char *key = NULL;
	struct binding_data d = {
		.aor = aor,
		.contact = uri,
		.instance = instance,
		.received = "sip:127.0.0.1:5999;transport=udp",
		.call_id = "cid",
		.cseq = 1,
		.q = q,
		.expires = time(NULL) + 600,
		.updated = updated,
	};

	if (params && pn_parse(params + 1, &pn, err, sizeof(err)) == PN_PARSE_OK) {
		d.pn = &pn;
		key = pn_identity_key(&pn);
	}
	registrar_contact_key(u, ckey, sizeof(ckey));
	old = registrar_match(f->r, aor, instance, key ? &pn : NULL, ckey);
	if (old) {
		d.id = old->id;
	} else {
		registrar_new_id(id);
		d.id = id;
	}
	b = registrar_upsert(f->r, old, &d);
	if (b)
		binding_save(f->r, b);
	registrar_enforce_limit(f->r, aor, b);
	free(key);
	pn_identity_cleanup(&pn);
	su_home_deinit(home);
	return b;
}

static void test_matching(struct fixture *f)
{
	const char *aor = "sip:alice@example.com";
	struct binding *a, *b;
	char id[BINDING_ID_LEN + 1];

	a = bind_contact(f, aor,
		 "sip:alice@10.0.0.1:5060;transport=tcp;pn-provider=apns;pn-prid=" TOK1
		 ";pn-param=ABCDE12345.org.example.app.voip",
		 "\"<urn:uuid:1>\"", 1000, 100);
	CHECK(a != NULL);
	snprintf(id, sizeof(id), "%s", a->id);
	CHECK(binding_pn(a) != NULL);
	CHECK(binding_pn(a) && binding_pn(a)->voip_token && !strcmp(binding_pn(a)->voip_token, TOK1));

	/* Same instance, new token and new address: the same binding (RFC 8599 5.6.2). */
	b = bind_contact(f, aor,
		 "sip:alice@10.0.0.2:6000;transport=tls;pn-provider=apns;pn-prid=" TOK2
		 ";pn-param=ABCDE12345.org.example.app.voip",
		 "\"<urn:uuid:1>\"", 1000, 101);
	CHECK(b != NULL);
	CHECK_STR(b ? b->id : NULL, id);
	CHECK(registrar_count(f->r) == 1);

	/* No instance, same push identity, new address: the same binding. */
	b = bind_contact(f, aor,
		 "sip:alice@10.0.0.3:7000;transport=tcp;pn-provider=apns;pn-prid=" TOK2
		 ";pn-param=ABCDE12345.org.example.app.voip",
		 NULL, 1000, 102);
	CHECK_STR(b ? b->id : NULL, id);
	CHECK(registrar_count(f->r) == 1);

	/* A plain contact: matched by its URI on refresh, new binding otherwise. */
	b = bind_contact(f, aor, "sip:alice@192.0.2.9:5070", NULL, 500, 103);
	CHECK(b && strcmp(b->id, id) != 0);
	CHECK(registrar_count(f->r) == 2);
	snprintf(id, sizeof(id), "%s", b ? b->id : "");
	b = bind_contact(f, aor, "sip:alice@192.0.2.9:5070;transport=udp", NULL, 500, 104);
	CHECK_STR(b ? b->id : NULL, id);
	CHECK(registrar_count(f->r) == 2);

	/* Lookup gives the highest q first; find by contact and id. */
	{
		struct binding *list[8];
		url_t u[1];
		char buf[] = "sip:alice@192.0.2.9:5070";
		size_t n = registrar_lookup(f->r, aor, list, 8);
		CHECK(n == 2);
		CHECK(n == 2 && list[0]->q == 1000 && list[1]->q == 500);
		CHECK(url_d(u, buf) == 0);
		CHECK(registrar_find_contact(f->r, u) == registrar_find_id(f->r, id));
	}
}

static void test_token_moves(struct fixture *f)
{
	struct binding *b, *list[8];
	size_t alice_n = registrar_lookup(f->r, "sip:alice@example.com", list, 8);
	char alice_id[BINDING_ID_LEN + 1];

	CHECK(alice_n == 2);
	snprintf(alice_id, sizeof(alice_id), "%s", list[0]->id);
	/* alice's APNs token registered for bob (a hijack attempt, or one app
	 * with two accounts): alice keeps her binding (SPEC 8), bob gets his. */
	b = bind_contact(f, "sip:bob@example.com",
		 "sip:bob@10.0.0.3:7000;transport=tcp;pn-provider=apns;pn-prid=" TOK2
		 ";pn-param=ABCDE12345.org.example.app.voip",
		 NULL, 1000, 200);
	CHECK(b != NULL);
	CHECK(registrar_lookup(f->r, "sip:alice@example.com", list, 8) == alice_n);
	CHECK(registrar_find_id(f->r, alice_id) != NULL);
	CHECK(registrar_lookup(f->r, "sip:bob@example.com", list, 8) == 1);
	CHECK(f->events_removed == 0);
	/* Found by where they registered from (the fixture's source), parameters ignored. */
	CHECK(registrar_find_source(f->r, "sip:127.0.0.1:5999;transport=tcp") != NULL);
	CHECK(registrar_find_source(f->r, "sip:127.0.0.1:5998") == NULL);
}

static void test_limit(struct fixture *f)
{
	const char *aor = "sip:carol@example.com";
	struct binding *list[8];
	struct binding *first = bind_contact(f, aor, "sip:carol@192.0.2.1:5060", NULL, 1000, 10);
	char first_id[BINDING_ID_LEN + 1];

	snprintf(first_id, sizeof(first_id), "%s", first ? first->id : "");
	bind_contact(f, aor, "sip:carol@192.0.2.2:5060", NULL, 1000, 20);
	bind_contact(f, aor, "sip:carol@192.0.2.3:5060", NULL, 1000, 30);
	CHECK(registrar_lookup(f->r, aor, list, 8) == 3);
	bind_contact(f, aor, "sip:carol@192.0.2.4:5060", NULL, 1000, 40);
	CHECK(registrar_lookup(f->r, aor, list, 8) == 3);
	CHECK(registrar_find_id(f->r, first_id) == NULL); /* the oldest went */
}

/* A lookup for fewer bindings than the AOR has returns the best by q, not the first. */
static void test_lookup_best(struct fixture *f)
{
	const char *aor = "sip:erin@example.com";
	struct binding *list[8];
	/* The best registered first: it ends last in the AOR's list (the fixture keeps 3). */
	static const int qs[] = {1000, 100, 200};
	char uri[64];

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		snprintf(uri, sizeof(uri), "sip:erin@192.0.2.%zu:5060", 10 + i);
		CHECK(bind_contact(f, aor, uri, NULL, qs[i], 500 + (int64_t)i) != NULL);
	}
	CHECK(registrar_lookup(f->r, aor, list, 2) == 2);
	CHECK_MSG(list[0]->q == 1000 && list[1]->q == 200, "got q %d, %d", list[0]->q, list[1]->q);
	CHECK(registrar_lookup(f->r, aor, list, 8) == 3);
	CHECK(list[0]->q == 1000 && list[1]->q == 200 && list[2]->q == 100);
}

static void test_remove_pn(struct fixture *f)
{
	struct pn_identity pn = {0};
	char err[128];
	size_t before = registrar_count(f->r);

	CHECK(pn_parse("pn-provider=apns;pn-prid=" TOK2 ";pn-param=ABCDE12345.org.example.app.voip",
		       &pn, err, sizeof(err)) == PN_PARSE_OK);
	/* Dead for every AOR it was registered under: alice's and bob's. */
	CHECK(registrar_remove_pn(f->r, &pn, "token invalid") == 0);
	CHECK(registrar_count(f->r) == before - 2);
	CHECK(registrar_remove_pn(f->r, &pn, "token invalid") == -1);
	pn_identity_cleanup(&pn);
}

static void test_reload(struct fixture *f)
{
	size_t before = registrar_count(f->r);
	struct binding *list[8];
	int n;

	bind_contact(f, "sip:dave@example.com",
	     "sip:dave@10.1.1.1:5060;pn-provider=fcm;pn-prid=tokFCM:abc;pn-param=proj", NULL, 1000,
	     300);
	before++;
	teardown(f);
	CHECK(setup(f) == 0);
	n = registrar_load(f->r);
	CHECK(n == (int)before);
	CHECK(registrar_lookup(f->r, "sip:dave@example.com", list, 8) == 1);
	CHECK(binding_pn(list[0]) && binding_pn(list[0])->provider == PN_FCM);
	CHECK_STR(binding_pn(list[0]) ? binding_pn(list[0])->token : NULL, "tokFCM:abc");
	CHECK(!binding_reachable(list[0]) || strstr(binding_received(list[0]), "udp"));
}

/* A binding of its own AOR expiring at expires (no push, no upstream leg). */
static struct binding *bind_at(struct fixture *f, int i, int64_t expires)
{
	char aor[64], uri[96], id[BINDING_ID_LEN + 1];
	struct binding_data d = {
		.aor = aor, .contact = uri, .received = "sip:127.0.0.1:5999;transport=udp",
		.call_id = "cid", .cseq = 1, .q = 1000, .expires = expires, .updated = expires - 600,
	};

	snprintf(aor, sizeof(aor), "sip:sched%d@example.com", i);
	snprintf(uri, sizeof(uri), "sip:sched%d@10.2.0.1:5060", i);
	registrar_new_id(id);
	d.id = id;
	return registrar_upsert(f->r, NULL, &d);
}

/*
 * The schedule hands out due bindings earliest first and nothing early,
 * follows a binding whose expiry changed, and forgets a removed one.
 */
static void test_schedule(struct fixture *f)
{
	enum { N = 600 };
	static struct binding *all[N], *out[N + 8];
	int64_t base = time(NULL) + 100000, last = 0;
	size_t n, total = 0;
	unsigned seed = 12345;

	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		all[i] = bind_at(f, i, base + (int64_t)(seed >> 8) % 5000);
		CHECK(all[i] != NULL);
	}
	/* binding 7 now expires first; binding 9 goes */
	{
		struct binding_data d = {
			.id = all[7]->id, .aor = all[7]->aor, .contact = all[7]->contact,
			.received = all[7]->received, .call_id = "cid", .cseq = 2, .q = 1000,
			.expires = base - 1, .updated = base - 601,
		};
		CHECK(registrar_upsert(f->r, all[7], &d) == all[7]);
	}
	registrar_remove(f->r, all[9], "test");
	all[9] = NULL;
	/* the other tests' bindings come due first; none of these */
	n = registrar_take_due(f->r, base - 2, out, N);
	for (size_t i = 0; i < n; i++) {
		CHECK(out[i]->due <= base - 2 && strncmp(out[i]->aor, "sip:sched", 9) != 0);
		registrar_schedule(f->r, out[i]);
	}
	CHECK(registrar_take_due(f->r, base - 2, out, N) == n); /* scheduled again, same times */
	n = registrar_take_due(f->r, base - 1, out, N);
	CHECK(n == 1 && out[0] == all[7]);
	registrar_schedule(f->r, all[7]);
	for (int64_t now = base - 1; now <= base + 5000; now += 250) {
		n = registrar_take_due(f->r, now, out, N + 8);
		for (size_t i = 0; i < n; i++) {
			CHECK_MSG(out[i]->due <= now, "binding due at %lld taken at %lld",
				  (long long)out[i]->due, (long long)now);
			CHECK(out[i]->due >= last);
			CHECK(out[i] != all[9]);
			last = out[i]->due;
		}
		total += n;
	}
	CHECK_MSG(total == N - 1, "%zu of %d bindings came due", total, N - 1);
	for (int i = 0; i < N; i++)
		if (all[i])
			registrar_remove(f->r, all[i], "test");
}

int main(void)
{
	struct fixture f = {0};
	char cmd[300];

	log_set_level(SW_LOG_WARN);
	if (!mkdtemp(dir) || su_init() != 0)
		return 1;
	CHECK(setup(&f) == 0);
	if (f.r) {
		test_matching(&f);
		test_token_moves(&f);
		test_limit(&f);
		test_lookup_best(&f);
		test_remove_pn(&f);
		test_reload(&f);
		test_schedule(&f);
	}
	teardown(&f);
	su_deinit();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return CHECK_RESULT();
}
