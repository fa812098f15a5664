/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/store/store.c on a real SQLite file in a temporary
 * directory: bindings and messages round trips, purge, transactions,
 * reopen, schema migration and refusal of a newer schema, error reporting
 * for unusable paths, and durability of acknowledged writes across a
 * SIGKILL of the writing process. A failing check prints file:line and the
 * test exits non-zero.
 */
#include "sipwake/log.h"
#include "sipwake/store.h"

#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static char tmpdir[] = "/tmp/sipwake-test-store-XXXXXX";

/* Bail out of a test function when a precondition fails. */
#define REQUIRE(cond)                                                                  \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: required: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                    \
			goto out;                                                      \
		}                                                                      \
	} while (0)

static char *path_in(const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
		abort();
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Log lines written while capture is on go to this file instead of stderr. */
static char *log_path;

static void capture_log(void)
{
	if (!log_path)
		log_path = path_in("log.txt");
	unlink(log_path);
	log_set_file(log_path);
}

/* Stop capturing; returns what was logged (malloc'd, maybe ""). */
static char *captured_log(void)
{
	FILE *fp;
	char *buf = calloc(1, 4096);
	size_t n = 0;

	log_set_file(NULL);
	if (!buf)
		abort();
	fp = fopen(log_path, "r");
	if (fp) {
		n = fread(buf, 1, 4095, fp);
		fclose(fp);
	}
	buf[n] = '\0';
	return buf;
}

static void binding_init(struct store_binding *b, const char *id, const char *aor, int64_t exp)
{
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->aor = aor;
	b->contact = "sip:alice@10.0.0.1:5060;pn-provider=fcm;pn-prid=abc";
	b->instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>";
	b->pn_key = "fcm\x1f" "abc\x1f";
	b->received = "sip:10.0.0.1:5060;transport=tcp";
	b->call_id = "cid@host";
	b->cseq = 4000000000u;
	b->user_agent = NULL;
	b->q = 500;
	b->expires = exp;
	b->updated = 1000;
}

/* Collects loaded rows as text, one "field|field|...;" per row, to compare whole. */
struct collect {
	char buf[4096];
	int n;
	int stop_after;
	struct store *st;
	int nested_rc;
	char body[64]; /* body of the last message seen */
	size_t body_len;
	bool body_null;
};

static void append(struct collect *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(struct collect *c, const char *fmt, ...)
{
	size_t len = strlen(c->buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->buf + len, sizeof(c->buf) - len, fmt, ap);
	va_end(ap);
}

static int on_binding(void *ctx, const struct store_binding *b)
{
	struct collect *c = ctx;

	append(c, "%s|%s|%s|%s|%s|%s|%s|%u|%s|%d|%lld|%lld;", b->id, b->aor, b->contact,
	       b->instance ? b->instance : "-", b->pn_key ? b->pn_key : "-",
	       b->received ? b->received : "-", b->call_id ? b->call_id : "-", b->cseq,
	       b->user_agent ? b->user_agent : "-", b->q, (long long)b->expires,
	       (long long)b->updated);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static int on_binding_id(void *ctx, const struct store_binding *b)
{
	struct collect *c = ctx;

	append(c, "%s;", b->id);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static int on_message(void *ctx, const struct store_message *m)
{
	struct collect *c = ctx;

	append(c, "%lld:%s:%s:%s:%s:%s:%.*s:%zu:%lld:%lld:%d;", (long long)m->id, m->aor, m->from,
	       m->to, m->call_id ? m->call_id : "-", m->content_type ? m->content_type : "-",
	       (int)m->body_len, (const char *)m->body, m->body_len, (long long)m->received,
	       (long long)m->expires, m->attempts);
	c->body_null = m->body == NULL;
	c->body_len = m->body_len < sizeof(c->body) ? m->body_len : sizeof(c->body);
	if (m->body)
		memcpy(c->body, m->body, c->body_len);
	c->n++;
	if (c->st)
		c->nested_rc = store_binding_load(c->st, 0, on_binding_id, c);
	return c->stop_after && c->n >= c->stop_after;
}

/* A secret is drawn once and survives a reopen; another name is another secret. */
static void test_secret(void)
{
	char *path = path_in("secret.db");
	struct store *st = NULL;
	unsigned char a[32], b[32], c[32], zero[32] = {0};

	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_secret(st, "flow", a, sizeof(a)) == 0);
	CHECK(memcmp(a, zero, sizeof(a)) != 0);
	CHECK(store_secret(st, "other", c, sizeof(c)) == 0);
	CHECK(memcmp(a, c, sizeof(a)) != 0);
	store_close(st);
	st = NULL;
	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_secret(st, "flow", b, sizeof(b)) == 0);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	CHECK(store_secret(st, "flow", b, 16) < 0); /* stored with another length */
out:
	store_close(st);
	free(path);
}

static void test_open_and_bindings(void)
{
	char *path = path_in("a/b/c/sipwake.db"), *dir = path_in("a/b/c");
	struct store *st = NULL;
	struct store_binding b;
	struct collect c;
	struct stat sb;

	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_schema_version(st) == 5);
	CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
	CHECK((sb.st_mode & 0700) == 0700 && (sb.st_mode & 0007) == 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);

	binding_init(&b, "b1", "sip:alice@example.com", 2000);
	CHECK(store_binding_put(st, &b) == 0);
	binding_init(&b, "b2", "sip:alice@example.com", 3000);
	b.q = 1000;
	b.instance = NULL;
	b.pn_key = NULL;
	b.user_agent = "Linphone/5.1";
	CHECK(store_binding_put(st, &b) == 0);
	binding_init(&b, "b3", "sip:bob@example.com", 1500);
	CHECK(store_binding_put(st, &b) == 0);

	/* Everything, in the order written; every field round trips. */
	CHECK(store_binding_count(st) == 3);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 1000, on_binding, &c) == 0);
	CHECK(c.n == 3);
	CHECK_STR(c.buf,
		  "b1|sip:alice@example.com|sip:alice@10.0.0.1:5060;pn-provider=fcm;pn-prid=abc|"
		  "<urn:uuid:00000000-0000-0000-0000-000000000001>|fcm\x1f" "abc\x1f|"
		  "sip:10.0.0.1:5060;transport=tcp|cid@host|4000000000|-|500|2000|1000;"
		  "b2|sip:alice@example.com|"
		  "sip:alice@10.0.0.1:5060;pn-provider=fcm;pn-prid=abc|-|-|"
		  "sip:10.0.0.1:5060;transport=tcp|cid@host|4000000000|Linphone/5.1|1000|3000|1000;"
		  "b3|sip:bob@example.com|sip:alice@10.0.0.1:5060;pn-provider=fcm;pn-prid=abc|"
		  "<urn:uuid:00000000-0000-0000-0000-000000000001>|fcm\x1f" "abc\x1f|"
		  "sip:10.0.0.1:5060;transport=tcp|cid@host|4000000000|-|500|1500|1000;");

	/* Expired ones (expires <= now) are not loaded. */
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 2000, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "b2;");

	/* Replace keeps one row with the new values. */
	binding_init(&b, "b1", "sip:alice@example.com", 5000);
	b.contact = "sip:alice@10.0.0.2:6000";
	b.cseq = 7;
	CHECK(store_binding_put(st, &b) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 2500, on_binding, &c) == 0);
	CHECK(c.n == 2);
	CHECK(strncmp(c.buf, "b2|", 3) == 0); /* the rewritten b1 comes last now */
	CHECK(strstr(c.buf, ";b1|sip:alice@example.com|sip:alice@10.0.0.2:6000|") != NULL);
	CHECK(strstr(c.buf, "|7|-|500|5000|1000;") != NULL);

	/* The callback can stop the iteration. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK(c.n == 1);

	/* Delete one (and a missing one), then a whole AOR. */
	CHECK(store_binding_del(st, "b2") == 0);
	CHECK(store_binding_del(st, "nope") == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "b3;b1;"); /* b1 was written last */
	CHECK(store_binding_del_aor(st, "sip:alice@example.com") == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "b3;");

	/* A binding without the mandatory fields is refused. */
	binding_init(&b, NULL, "sip:x@y", 10);
	capture_log();
	CHECK(store_binding_put(st, &b) == -1);
	free(captured_log());
out:
	store_close(st);
	free(path);
	free(dir);
}

static void test_messages(void)
{
	char *path = path_in("msg.db");
	struct store *st = NULL;
	struct store_message m = {0};
	int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0;
	struct collect c;

	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_message_count(st, NULL) == 0);
	CHECK(store_message_count(st, "sip:alice@example.com") == 0);

	m.aor = "sip:alice@example.com";
	m.from = "\"Bob\" <sip:bob@example.com>;tag=1";
	m.to = "<sip:alice@example.com>";
	m.call_id = "m1@host";
	m.content_type = "text/plain";
	m.body = "hello";
	m.body_len = 5;
	m.received = 100;
	m.expires = 1000;
	CHECK(store_message_add(st, &m, &id1) == 0);
	m.body = "bin\0ary";
	m.body_len = 7;
	m.call_id = NULL;
	m.content_type = NULL;
	m.received = 101;
	CHECK(store_message_add(st, &m, &id2) == 0);
	m.aor = "sip:carol@example.com";
	m.body = NULL;
	m.body_len = 0;
	CHECK(store_message_add(st, &m, &id3) == 0);
	m.aor = "sip:alice@example.com";
	m.body = "late";
	m.body_len = 4;
	m.expires = 50; /* already expired at now=100 */
	CHECK(store_message_add(st, &m, &id4) == 0);
	CHECK(id1 > 0 && id2 > id1 && id3 > id2 && id4 > id3);

	CHECK(store_message_count(st, "sip:alice@example.com") == 3);
	CHECK(store_message_count(st, "sip:carol@example.com") == 1);
	CHECK(store_message_count(st, NULL) == 4);

	/* Oldest first, expired left out, binary body intact. */
	memset(&c, 0, sizeof(c));
	CHECK(store_message_load(st, "sip:alice@example.com", 100, on_message, &c) == 0);
	CHECK(c.n == 2);
	{
		char want[512];
		snprintf(want, sizeof(want),
			 "%lld:sip:alice@example.com:\"Bob\" <sip:bob@example.com>;tag=1:"
			 "<sip:alice@example.com>:m1@host:text/plain:hello:5:100:1000:0;"
			 "%lld:sip:alice@example.com:\"Bob\" <sip:bob@example.com>;tag=1:"
			 "<sip:alice@example.com>:-:-:bin",
			 (long long)id1, (long long)id2);
		CHECK(strncmp(c.buf, want, strlen(want)) == 0);
		CHECK(c.body_len == 7 && memcmp(c.body, "bin\0ary", 7) == 0);
	}

	/* All AORs; an empty body comes back as a zero-length, non-NULL body. */
	memset(&c, 0, sizeof(c));
	CHECK(store_message_load(st, NULL, 100, on_message, &c) == 0);
	CHECK(c.n == 3);
	CHECK(strstr(c.buf, "sip:carol@example.com") != NULL);
	CHECK(c.body_len == 0 && !c.body_null); /* carol's, the newest, is last */

	/* Attempts are counted. */
	CHECK(store_message_attempt(st, id1) == 0);
	CHECK(store_message_attempt(st, id1) == 0);
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	CHECK(store_message_load(st, "sip:alice@example.com", 100, on_message, &c) == 0);
	CHECK(c.n == 1);
	CHECK(strstr(c.buf, ":hello:5:100:1000:2;") != NULL);

	/* A load from inside a load callback is refused, not corrupting the outer one. */
	memset(&c, 0, sizeof(c));
	c.st = st;
	capture_log();
	CHECK(store_message_load(st, "sip:alice@example.com", 100, on_message, &c) == 0);
	free(captured_log());
	CHECK(c.n == 2);
	CHECK(c.nested_rc == -1);

	/* Delete. */
	CHECK(store_message_del(st, id1) == 0);
	CHECK(store_message_del(st, id1) == 0);
	CHECK(store_message_count(st, "sip:alice@example.com") == 2);

	/* Oversized and incomplete messages are refused. */
	m.body_len = (size_t)STORE_MAX_BODY_LEN + 1;
	capture_log();
	CHECK(store_message_add(st, &m, NULL) == -1);
	m.body_len = 4;
	m.from = NULL;
	CHECK(store_message_add(st, &m, NULL) == -1);
	free(captured_log());
	CHECK(store_message_count(st, NULL) == 3);
out:
	store_close(st);
	free(path);
}

/* The async calls on SQLite: each answers before it returns. */
struct answer {
	int calls;
	enum store_add_result res;
	int64_t id;
	int attempts;
	size_t body_len;
	char body[16];
	int listed, count;
};

static void on_added(void *ctx, enum store_add_result res, int64_t id)
{
	struct answer *a = ctx;

	a->calls++;
	a->res = res;
	a->id = id;
}

static void on_taken(void *ctx, const struct store_message *m)
{
	struct answer *a = ctx;

	a->calls++;
	a->id = m ? m->id : 0;
	a->attempts = m ? m->attempts : -1;
	a->body_len = m ? m->body_len : 0;
	if (m && m->body_len <= sizeof(a->body))
		memcpy(a->body, m->body, m->body_len);
}

static int on_listed_one(void *ctx, const struct store_message *m)
{
	((struct answer *)ctx)->listed++;
	return 0;
}

static void on_listed(void *ctx, int count)
{
	struct answer *a = ctx;

	a->calls++;
	a->count = count;
}

static void test_messages_then(void)
{
	char *path = path_in("msg_then.db");
	struct store *st = NULL;
	struct store_message m = {.aor = "sip:dave@example.com", .from = "<sip:e@x>;tag=1",
				  .to = "<sip:dave@example.com>", .call_id = "t1@x",
				  .body = "a\0b", .body_len = 3, .received = 10, .expires = 1000};
	struct answer a = {0};
	int64_t first;

	REQUIRE(store_open(&st, path) == 0);
	store_message_add_then(st, &m, 2, 3, on_added, &a);
	CHECK(a.calls == 1 && a.res == STORE_ADDED && a.id > 0);
	first = a.id;
	m.received = 11;
	store_message_add_then(st, &m, 2, 3, on_added, &a);
	CHECK(a.calls == 2 && a.res == STORE_ADDED && a.id > first);
	store_message_add_then(st, &m, 2, 3, on_added, &a);
	CHECK(a.calls == 3 && a.res == STORE_AOR_FULL && a.id == 0);
	m.aor = "sip:erin@example.com";
	store_message_add_then(st, &m, 2, 3, on_added, &a);
	CHECK(a.calls == 4 && a.res == STORE_ADDED);
	store_message_add_then(st, &m, 2, 3, on_added, &a);
	CHECK(a.calls == 5 && a.res == STORE_FULL);
	CHECK(store_message_count(st, NULL) == 3);

	memset(&a, 0, sizeof(a));
	store_message_take_then(st, "sip:dave@example.com", 100, on_taken, &a);
	CHECK(a.calls == 1 && a.id == first && a.attempts == 1);
	CHECK(a.body_len == 3 && !memcmp(a.body, "a\0b", 3));
	store_message_release(st, "sip:dave@example.com");
	store_message_take_then(st, "sip:dave@example.com", 100, on_taken, &a);
	CHECK(a.calls == 2 && a.id == first && a.attempts == 2); /* not taken away: kept */
	CHECK(store_message_del(st, first) == 0);
	store_message_take_then(st, "sip:dave@example.com", 100, on_taken, &a);
	CHECK(a.calls == 3 && a.id > first && a.attempts == 1);
	store_message_take_then(st, "sip:dave@example.com", 5000, on_taken, &a);
	CHECK(a.calls == 4 && a.id == 0); /* expired by then */
	store_message_take_then(st, "sip:nobody@example.com", 100, on_taken, &a);
	CHECK(a.calls == 5 && a.id == 0);

	memset(&a, 0, sizeof(a));
	store_message_list_then(st, NULL, 100, 1, on_listed_one, on_listed, &a);
	CHECK(a.calls == 1 && a.count == 2 && a.listed == 1);
	memset(&a, 0, sizeof(a));
	store_message_list_then(st, "sip:erin@example.com", 100, 10, on_listed_one, on_listed, &a);
	CHECK(a.calls == 1 && a.count == 1 && a.listed == 1);
	store_message_forget(st, &a); /* nothing waits on SQLite */
out:
	store_close(st);
	free(path);
}

static void test_purge_and_tx(void)
{
	char *path = path_in("purge.db");
	struct store *st = NULL;
	struct store_binding b;
	struct store_message m = {0};
	struct collect c;
	char *log;

	REQUIRE(store_open(&st, path) == 0);
	binding_init(&b, "old", "sip:a@x", 100);
	CHECK(store_binding_put(st, &b) == 0);
	binding_init(&b, "new", "sip:a@x", 300);
	CHECK(store_binding_put(st, &b) == 0);
	m.aor = "sip:a@x";
	m.from = "<sip:b@x>";
	m.to = "<sip:a@x>";
	m.expires = 100;
	CHECK(store_message_add(st, &m, NULL) == 0);
	m.expires = 150;
	CHECK(store_message_add(st, &m, NULL) == 0);
	m.expires = 400;
	CHECK(store_message_add(st, &m, NULL) == 0);

	CHECK(store_purge(st, 50) == 0);
	CHECK(store_purge(st, 150) == 3);
	CHECK(store_message_count(st, NULL) == 1);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "new;");

	/* A committed group is kept. */
	CHECK(store_begin(st) == 0);
	binding_init(&b, "t1", "sip:a@x", 500);
	CHECK(store_binding_put(st, &b) == 0);
	binding_init(&b, "t2", "sip:a@x", 500);
	CHECK(store_binding_put(st, &b) == 0);
	CHECK(store_purge(st, 450) == 2); /* inside the caller's transaction */
	CHECK(store_commit(st) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "t1;t2;");

	/* A rolled-back group is not; nesting and a stray commit are refused. */
	CHECK(store_begin(st) == 0);
	capture_log();
	CHECK(store_begin(st) == -1);
	log = captured_log();
	CHECK(strstr(log, "nested transaction") != NULL);
	free(log);
	CHECK(store_binding_del(st, "t1") == 0);
	CHECK(store_rollback(st) == 0);
	CHECK(store_rollback(st) == 0);
	capture_log();
	CHECK(store_commit(st) == -1);
	free(captured_log());
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "t1;t2;");

	/* Closing with an open transaction rolls it back. */
	CHECK(store_begin(st) == 0);
	CHECK(store_binding_del(st, "t2") == 0);
	capture_log();
	store_close(st);
	free(captured_log());
	st = NULL;
	REQUIRE(store_open(&st, path) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "t1;t2;");
out:
	store_close(st);
	free(path);
}

static void test_reopen(void)
{
	char *path = path_in("reopen.db");
	struct store *st = NULL;
	struct store_binding b;
	struct store_message m = {0};
	struct collect c;

	REQUIRE(store_open(&st, path) == 0);
	binding_init(&b, "keep", "sip:k@x", 9999);
	CHECK(store_binding_put(st, &b) == 0);
	m.aor = "sip:k@x";
	m.from = "<sip:b@x>";
	m.to = "<sip:k@x>";
	m.body = "persist";
	m.body_len = 7;
	m.expires = 9999;
	CHECK(store_message_add(st, &m, NULL) == 0);
	store_close(st);

	st = NULL;
	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_schema_version(st) == 5);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "keep;");
	memset(&c, 0, sizeof(c));
	CHECK(store_message_load(st, "sip:k@x", 0, on_message, &c) == 0);
	CHECK(c.n == 1 && strstr(c.buf, ":persist:7:") != NULL);
out:
	store_close(st);
	free(path);
}

/* Read or set PRAGMA user_version / journal_mode behind the store's back. */
static int raw_user_version(const char *path, int set)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char sql[64];
	int v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	if (set >= 0) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", set);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static char *raw_journal_mode(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char *mode = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		mode = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return mode;
}

static void test_schema(void)
{
	char *path = path_in("empty.db"), *future = path_in("future.db");
	char *junk = path_in("junk.db");
	struct store *st = NULL;
	char *log = NULL, *mode = NULL;
	FILE *fp;

	/* An existing empty file is migrated from version 0. */
	fp = fopen(path, "w");
	REQUIRE(fp != NULL);
	fclose(fp);
	CHECK(raw_user_version(path, -1) == 0);
	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_schema_version(st) == 5);
	store_close(st);
	st = NULL;
	CHECK(raw_user_version(path, -1) == 5);
	mode = raw_journal_mode(path);
	CHECK_STR(mode, "wal");

	/* A newer schema than the code knows is refused with one clear line. */
	REQUIRE(store_open(&st, future) == 0);
	store_close(st);
	st = NULL;
	CHECK(raw_user_version(future, 99) == 99);
	capture_log();
	CHECK(store_open(&st, future) == -1);
	log = captured_log();
	CHECK(st == NULL);
	CHECK(strstr(log, "schema version 99 is newer") != NULL);
	CHECK(strstr(log, future) != NULL);
	CHECK(strchr(log, '\n') == log + strlen(log) - 1);
	CHECK(raw_user_version(future, -1) == 99); /* left alone */
	free(log);

	/* A file that is not a database. */
	fp = fopen(junk, "w");
	REQUIRE(fp != NULL);
	for (int i = 0; i < 200; i++)
		fputs("this is not an sqlite database. ", fp);
	fclose(fp);
	capture_log();
	CHECK(store_open(&st, junk) == -1);
	log = captured_log();
	CHECK(strstr(log, junk) != NULL);
	CHECK(strstr(log, "not a database") != NULL);
	free(log);
	log = NULL;
out:
	store_close(st);
	free(mode);
	free(path);
	free(future);
	free(junk);
}

static void test_bad_paths(void)
{
	char *file = path_in("plainfile"), *under = path_in("plainfile/sub/x.db");
	struct store *st = NULL;
	char *log = NULL;
	FILE *fp;

	fp = fopen(file, "w");
	REQUIRE(fp != NULL);
	fclose(fp);
	capture_log();
	CHECK(store_open(&st, under) == -1);
	log = captured_log();
	CHECK(st == NULL);
	CHECK(strstr(log, "cannot create directory") != NULL);
	CHECK(strstr(log, file) != NULL);
	CHECK(strchr(log, '\n') == log + strlen(log) - 1);
	free(log);

	capture_log();
	CHECK(store_open(&st, "") == -1);
	log = captured_log();
	CHECK(strstr(log, "no database path") != NULL);
out:
	free(log);
	free(file);
	free(under);
}

/*
 * A child writes a binding and a message, then dies by SIGKILL the moment
 * the calls have returned: no close, no checkpoint, no atexit. The parent
 * must find both after reopening.
 */
static void test_crash_durability(void)
{
	char *path = path_in("crash/sipwake.db");
	struct store *st = NULL;
	struct collect c;
	pid_t pid;
	int status = 0;

	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct store *cst = NULL;
		struct store_binding b;
		struct store_message m = {0};

		if (store_open(&cst, path) != 0)
			_exit(2);
		binding_init(&b, "crash-b", "sip:crash@x", 9999);
		if (store_binding_put(cst, &b) != 0)
			_exit(3);
		m.aor = "sip:crash@x";
		m.from = "<sip:b@x>";
		m.to = "<sip:crash@x>";
		m.body = "acked";
		m.body_len = 5;
		m.expires = 9999;
		if (store_message_add(cst, &m, NULL) != 0)
			_exit(4);
		raise(SIGKILL);
		_exit(5);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (WIFEXITED(status))
		fprintf(stderr, "child exited with %d\n", WEXITSTATUS(status));

	REQUIRE(store_open(&st, path) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_binding_load(st, 0, on_binding_id, &c) == 0);
	CHECK_STR(c.buf, "crash-b;");
	memset(&c, 0, sizeof(c));
	CHECK(store_message_load(st, "sip:crash@x", 0, on_message, &c) == 0);
	CHECK(c.n == 1 && strstr(c.buf, ":acked:5:") != NULL);
out:
	store_close(st);
	free(path);
}

struct acct_seen {
	int n;
	char buf[1024];
};

static int on_account(void *ctx, const struct store_account *a)
{
	struct acct_seen *c = ctx;
	size_t len = strlen(c->buf);

	c->n++;
	snprintf(c->buf + len, sizeof(c->buf) - len, "%s|%s|%s|%s|%s|%lld|%lld;", a->aor,
		 a->username, a->realm, a->ha1_md5 ? a->ha1_md5 : "-",
		 a->ha1_sha256 ? a->ha1_sha256 : "-", (long long)a->created, (long long)a->updated);
	return 0;
}

static void test_accounts(void)
{
	char *path = path_in("accounts.db");
	struct store *st = NULL, *other = NULL;
	struct store_account a = {.aor = "sip:alice@example.com", .username = "alice",
				  .realm = "example.com", .ha1_md5 = "0123456789abcdef0123456789abcdef",
				  .created = 100, .updated = 100};
	struct acct_seen c = {0};

	REQUIRE(store_open(&st, path) == 0);
	CHECK(store_account_get(st, a.aor, on_account, &c) == 0 && c.n == 0);
	CHECK(store_account_put(st, &a) == 0);
	a.aor = "sip:bob@example.com";
	a.username = "bob";
	a.ha1_md5 = NULL;
	a.ha1_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	CHECK(store_account_put(st, &a) == 0);
	CHECK(store_account_list(st, NULL, on_account, &c) == 0);
	CHECK_STR(c.buf, "sip:alice@example.com|alice|example.com|0123456789abcdef0123456789abcdef|-|100|100;"
			 "sip:bob@example.com|bob|example.com|-|00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff|100|100;");

	/* An update replaces the credentials and keeps the creation time. */
	a.username = "robert";
	a.ha1_md5 = "ffffffffffffffffffffffffffffffff";
	a.ha1_sha256 = NULL;
	a.created = a.updated = 200;
	CHECK(store_account_put(st, &a) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_account_get(st, "sip:bob@example.com", on_account, &c) == 1);
	CHECK_STR(c.buf, "sip:bob@example.com|robert|example.com|ffffffffffffffffffffffffffffffff|-|100|200;");

	/* No HA1 at all is refused. */
	a.ha1_md5 = NULL;
	CHECK(store_account_put(st, &a) == -1);

	/* Another connection (sipwakectl) deletes; this one sees it at once. */
	REQUIRE(store_open(&other, path) == 0);
	CHECK(store_account_del(other, "sip:bob@example.com") == 1);
	CHECK(store_account_del(other, "sip:bob@example.com") == 0);
	store_close(other);
	memset(&c, 0, sizeof(c));
	CHECK(store_account_get(st, "sip:bob@example.com", on_account, &c) == 0 && c.n == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_account_list(st, "sip:alice@example.com", on_account, &c) == 0 && c.n == 1);
out:
	store_close(st);
	free(path);
}

int main(void)
{
	int rc;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_open_and_bindings();
	test_messages();
	test_messages_then();
	test_purge_and_tx();
	test_reopen();
	test_schema();
	test_bad_paths();
	test_crash_durability();
	test_secret();
	test_accounts();
	free(log_path);
	rc = nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	CHECK(rc == 0);
	if (failures) {
		fprintf(stderr, "test_store: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_store: all checks passed\n");
	return 0;
}
