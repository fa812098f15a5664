/* SPDX-License-Identifier: MIT */
/*
 * A cluster's digest accounts in Redis (SPEC 4.7, 9; keys in redis_int.h). A digest check reads an account while it
 * answers a request, and the loop never waits for Redis: so every node
 * keeps every account in memory (the mirror), read at start on the
 * blocking connection and kept current from the accounts' channel. What is
 * published while the subscription is down is lost to it, so the mirror is
 * read again each time the subscription is made; an account a message
 * changed while that read was out keeps what the message said, which is
 * newer. A write is one script (the hash and its message together), so a
 * node never hears of a change that did not happen. sipwakectl uses the
 * same functions on a blocking connection of its own, without a mirror.
 * The same channel carries the digest nonce counts each node accepted
 * (store_nonce_used), so that a replay to another node fails too.
 */
#include "redis_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sipwake/log.h"
#include "sipwake/strmap.h"

#define KEY_ACCOUNTS "sipwake:accounts"
#define CONNECT_TIMEOUT_S 5
#define RETRY_MS 500 /* a mirror that must be read again, while it cannot */

/*
 * Store ARGV[2] (an account's JSON) as field ARGV[1], keeping the created
 * of the one it replaces; publish it on ARGV[3] as changed by ARGV[4].
 * Returns what was stored.
 */
static const char put_lua[] =
	"local a = cjson.decode(ARGV[2]) "
	"local old = redis.call('HGET', KEYS[1], ARGV[1]) "
	"if old then local ok, o = pcall(cjson.decode, old) "
	"if ok and type(o) == 'table' and o.created then a.created = o.created end end "
	"local s = cjson.encode(a) "
	"redis.call('HSET', KEYS[1], ARGV[1], s) "
	"redis.call('PUBLISH', ARGV[3], '{\"by\":' .. cjson.encode(ARGV[4]) .. ',\"put\":' .. s .. '}') "
	"return s";

/* Delete field ARGV[1]; when there was one, publish ARGV[3] on ARGV[2]. Returns 1 or 0. */
static const char del_lua[] =
	"local n = redis.call('HDEL', KEYS[1], ARGV[1]) "
	"if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end "
	"return n";

/* One account in memory: its strings follow it in the same allocation. */
struct mirrored {
	struct store_account a;
	size_t len;
	char text[];
};

struct redis_accounts {
	struct store_redis *rs; /* a node's connections; NULL in a tool */
	redisContext *own;      /* a tool's blocking connection */
	char channel[64];
	char by[80];            /* who changes are published as */
	struct strmap *mirror;  /* aor -> struct mirrored (a node only) */
	struct strmap *touched; /* AORs a message changed while a read was out */
	bool read_wanted;       /* the mirror may have missed a change */
	bool reading;           /* an HGETALL for it is out */
	su_timer_t *timer;
	store_nonce_fn *nonce_fn; /* who hears of the nonce counts other nodes accepted */
	void *nonce_ctx;
};

/* ---------------------------------------------------------------------- */
/* accounts as JSON, and in memory */

static json_t *account_json(const struct store_account *a)
{
	return json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:I, s:I}", "aor", a->aor, "username",
			 a->username, "realm", a->realm, "ha1_md5", a->ha1_md5, "ha1_sha256",
			 a->ha1_sha256, "created", (json_int_t)a->created, "updated",
			 (json_int_t)a->updated);
}

/* An account from its JSON (strings borrowed from o): 0, or -1 when it is none. */
static int account_of(json_t *o, struct store_account *a)
{
	json_int_t created = 0, updated = 0;

	memset(a, 0, sizeof(*a));
	if (json_unpack(o, "{s:s, s:s, s:s, s?s, s?s, s?I, s?I}", "aor", &a->aor, "username",
			&a->username, "realm", &a->realm, "ha1_md5", &a->ha1_md5, "ha1_sha256",
			&a->ha1_sha256, "created", &created, "updated", &updated) < 0 ||
	    (!a->ha1_md5 && !a->ha1_sha256))
		return -1;
	a->created = created;
	a->updated = updated;
	return 0;
}

/* The account stored as field k with value v: its JSON (to free) and *a, or NULL. */
static json_t *parse_pair(const redisReply *k, const redisReply *v, struct store_account *a)
{
	json_t *o;

	if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
		return NULL;
	o = json_loadb(v->str, v->len, 0, NULL);
	if (o && (account_of(o, a) < 0 || strcmp(a->aor, k->str) != 0)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static const char *mirrored_key(const void *v)
{
	return ((const struct mirrored *)v)->a.aor;
}

static void mirrored_free(struct mirrored *m)
{
	if (!m)
		return;
	OPENSSL_cleanse(m->text, m->len); /* HA1 values */
	free(m);
}

static struct mirrored *mirrored_new(const struct store_account *a)
{
	const char *in[5] = {a->aor, a->username, a->realm, a->ha1_md5, a->ha1_sha256};
	const char **out[5];
	size_t len = 0, l;
	struct mirrored *m;
	char *p;

	for (int i = 0; i < 5; i++)
		len += in[i] ? strlen(in[i]) + 1 : 0;
	m = malloc(sizeof(*m) + len);
	if (!m)
		return NULL;
	m->a = *a;
	m->len = len;
	out[0] = &m->a.aor;
	out[1] = &m->a.username;
	out[2] = &m->a.realm;
	out[3] = &m->a.ha1_md5;
	out[4] = &m->a.ha1_sha256;
	p = m->text;
	for (int i = 0; i < 5; i++) {
		*out[i] = NULL;
		if (!in[i])
			continue;
		l = strlen(in[i]) + 1;
		memcpy(p, in[i], l);
		*out[i] = p;
		p += l;
	}
	return m;
}

/* Put a copy of a in map (replacing the one of its AOR). 0, or -1 without memory. */
static int map_set(struct strmap *map, const struct store_account *a)
{
	struct mirrored *m = mirrored_new(a);
	void *old = NULL;

	if (!m || strmap_swap(map, m->a.aor, m, &old) < 0) {
		mirrored_free(m);
		return -1;
	}
	mirrored_free(old);
	return 0;
}

static void free_entry(void *ctx, const char *key, void *value)
{
	mirrored_free(value);
}

static void map_free(struct strmap *map)
{
	if (!map)
		return;
	strmap_each(map, free_entry, NULL);
	strmap_free(map);
}

/* Fill map from an HGETALL reply; returns how many fields were not accounts. */
static size_t map_fill(struct strmap *map, const redisReply *r, int *rc)
{
	size_t bad = 0;

	*rc = 0;
	for (size_t i = 0; i + 1 < r->elements && *rc == 0; i += 2) {
		struct store_account a;
		json_t *o = parse_pair(r->element[i], r->element[i + 1], &a);

		if (!o)
			bad++;
		else if (map_set(map, &a) < 0)
			*rc = -1;
		json_decref(o);
	}
	return bad;
}

struct sorted {
	const struct mirrored **v;
	size_t n;
};

static void collect(void *ctx, const char *key, void *value)
{
	struct sorted *s = ctx;

	s->v[s->n++] = value;
}

static int by_aor(const void *x, const void *y)
{
	return strcmp((*(const struct mirrored *const *)x)->a.aor,
		      (*(const struct mirrored *const *)y)->a.aor);
}

/* Every account of map through fn, by AOR (as SQLite's ORDER BY aor). 0 or -1. */
static int map_list(const struct strmap *map, store_account_fn *fn, void *ctx)
{
	struct sorted s = {calloc(strmap_count(map) + 1, sizeof(*s.v)), 0};

	if (!s.v)
		return -1;
	strmap_each(map, collect, &s);
	qsort(s.v, s.n, sizeof(*s.v), by_aor);
	for (size_t i = 0; i < s.n; i++)
		if (fn(ctx, &s.v[i]->a) != 0)
			break;
	free(s.v);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the blocking connection: a tool's own, or a node's until its loop runs */

static redisContext *blocking(const struct redis_accounts *ra)
{
	return ra->own ? ra->own : ra->rs ? ra->rs->sync : NULL;
}

static redisReply *sync_command(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		log_error("cluster: Redis: %s", c->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		log_error("cluster: Redis: %s", r->str);
	if (r && r->type == REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

static redisContext *connect_blocking(const struct config_redis *w)
{
	struct timeval tv = {CONNECT_TIMEOUT_S, 0};
	redisContext *c = w->path[0] ? redisConnectUnixWithTimeout(w->path, tv)
				     : redisConnectWithTimeout(w->host, w->port, tv);
	redisReply *r = NULL;

	if (!c || c->err) {
		if (w->path[0])
			log_error("cluster: cannot reach Redis at unix:%s: %s", w->path,
				  c ? c->errstr : "out of memory");
		else
			log_error("cluster: cannot reach Redis at %s port %d: %s", w->host, w->port,
				  c ? c->errstr : "out of memory");
		goto fail;
	}
	redisSetTimeout(c, tv);
	if (w->password[0]) {
		r = w->user[0] ? sync_command(c, "AUTH %s %s", w->user, w->password)
			       : sync_command(c, "AUTH %s", w->password);
		if (!r)
			goto fail;
		freeReplyObject(r);
	}
	if (w->db) {
		if (!(r = sync_command(c, "SELECT %d", w->db)))
			goto fail;
		freeReplyObject(r);
	}
	return c;
fail:
	if (c)
		redisFree(c);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* a node's mirror, kept current */

static void read_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Read every account again when it is wanted and the command connection can. */
static void read_again(struct redis_accounts *ra)
{
	struct store_redis *rs = ra->rs;

	if (!ra->read_wanted || ra->reading || !rs->cmd_up || !rs->cmd || rs->multi)
		return;
	strmap_free(ra->touched);
	ra->touched = strmap_new();
	if (!ra->touched ||
	    redisAsyncCommand(rs->cmd, read_reply, ra, "HGETALL " KEY_ACCOUNTS) != REDIS_OK)
		return; /* the next retry */
	ra->reading = true;
	ra->read_wanted = false;
}

struct merge {
	struct strmap *fresh, *mirror;
	bool failed;
};

/* What was changed while the read was out keeps the mirror's (newer) state. */
static void keep_touched(void *ctx, const char *key, void *value)
{
	struct merge *mg = ctx;

	mirrored_free(strmap_del(mg->fresh, key));
	value = strmap_del(mg->mirror, key);
	if (value && strmap_put(mg->fresh, mirrored_key(value), value) < 0) {
		mirrored_free(value);
		mg->failed = true;
	}
}

static void read_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_accounts *ra = privdata;
	redisReply *r = reply;
	struct strmap *fresh;
	struct merge mg;
	size_t bad;
	int rc;

	ra->reading = false;
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		if (r && r->type == REDIS_REPLY_ERROR)
			log_error("cluster: Redis refused to list the accounts: %s", r->str);
		ra->read_wanted = true; /* NULL: the connection is gone; again once it is back */
		return;
	}
	fresh = strmap_new_keyed(mirrored_key, 0);
	bad = fresh ? map_fill(fresh, r, &rc) : 0;
	if (!fresh || rc < 0) {
		log_error("cluster: out of memory reading the accounts again");
		map_free(fresh);
		ra->read_wanted = true;
		return;
	}
	mg = (struct merge){fresh, ra->mirror, false};
	strmap_each(ra->touched, keep_touched, &mg);
	if (mg.failed) {
		log_error("cluster: out of memory reading the accounts again");
		ra->read_wanted = true;
	}
	if (bad)
		log_warn("cluster: %zu account(s) in Redis could not be read (skipped)", bad);
	log_debug("cluster: %zu account(s) read again from Redis (was %zu)", strmap_count(fresh),
		  strmap_count(ra->mirror));
	map_free(ra->mirror);
	ra->mirror = fresh;
	strmap_free(ra->touched);
	ra->touched = NULL;
}

static void retry(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	read_again((struct redis_accounts *)arg);
}

void redis_accounts_subscribed(struct redis_accounts *ra)
{
	if (!ra || !ra->rs)
		return;
	ra->read_wanted = true; /* whatever was published before is not coming */
	read_again(ra);
}

/* The mirror follows a change: it was made (put) or it is gone (NULL). */
static void mirror_change(struct redis_accounts *ra, const char *aor, const struct store_account *a)
{
	if (ra->touched)
		strmap_put(ra->touched, aor, ra); /* any non-NULL value */
	if (a && map_set(ra->mirror, a) < 0) {
		log_error("cluster: out of memory for the account of %s", aor);
		ra->read_wanted = true;
	} else if (!a) {
		mirrored_free(strmap_del(ra->mirror, aor));
	}
}

void redis_accounts_message(struct redis_accounts *ra, const char *text, size_t len)
{
	json_t *m = json_loadb(text, len, 0, NULL), *put = json_object_get(m, "put");
	const char *by = json_string_value(json_object_get(m, "by"));
	const char *del = json_string_value(json_object_get(m, "del"));
	const char *nonce = json_string_value(json_object_get(m, "nonce"));
	json_int_t nc = json_integer_value(json_object_get(m, "nc"));
	struct store_account a;

	if (!ra || !ra->mirror)
		goto out;
	if (by && nonce && nc > 0 && nc <= UINT32_MAX) {
		if (ra->nonce_fn && strcmp(by, ra->by) != 0)
			ra->nonce_fn(ra->nonce_ctx, nonce, (uint32_t)nc);
	} else if (by && put && account_of(put, &a) == 0) {
		mirror_change(ra, a.aor, &a);
		log_info("cluster: the account of %s was stored by %s", a.aor, by);
	} else if (by && del) {
		mirror_change(ra, del, NULL);
		log_info("cluster: the account of %s was deleted by %s", del, by);
	} else {
		log_warn("cluster: a message on %s that is not an account change (ignored)",
			 ra->channel);
	}
out:
	json_decref(m);
}

int redis_accounts_attach(struct redis_accounts **out, struct store_redis *rs)
{
	struct redis_accounts *ra = calloc(1, sizeof(*ra));
	redisReply *r = NULL;
	size_t bad;
	int rc = -1;

	*out = NULL;
	if (!ra)
		return -1;
	ra->rs = rs;
	snprintf(ra->channel, sizeof(ra->channel), "%s", rs->accounts_channel);
	snprintf(ra->by, sizeof(ra->by), "node %s", rs->node);
	ra->mirror = strmap_new_keyed(mirrored_key, 0);
	if (!ra->mirror || !(ra->timer = su_timer_create(su_root_task(rs->root), RETRY_MS)) ||
	    su_timer_set_for_ever(ra->timer, retry, (su_timer_arg_t *)ra) < 0)
		goto out;
	if (!rs->sync || !(r = sync_command(rs->sync, "HGETALL " KEY_ACCOUNTS)) ||
	    r->type != REDIS_REPLY_ARRAY) {
		log_error("cluster: cannot read the accounts from Redis");
		goto out;
	}
	bad = map_fill(ra->mirror, r, &rc);
	if (rc < 0) {
		log_error("cluster: out of memory for the accounts");
		goto out;
	}
	if (bad)
		log_warn("cluster: %zu account(s) in Redis could not be read (skipped)", bad);
	log_info("cluster: %zu digest account(s) loaded from Redis", strmap_count(ra->mirror));
	rs->accounts = ra;
	*out = ra;
	ra = NULL;
	rc = 0;
out:
	freeReplyObject(r);
	redis_accounts_free(ra);
	return rc;
}

int redis_accounts_connect(struct redis_accounts **out, const struct config_redis *where)
{
	struct redis_accounts *ra = calloc(1, sizeof(*ra));

	*out = NULL;
	if (!ra)
		return -1;
	snprintf(ra->channel, sizeof(ra->channel), REDIS_ACCOUNTS_CHANNEL, where->db);
	snprintf(ra->by, sizeof(ra->by), "sipwakectl");
	if (!(ra->own = connect_blocking(where))) {
		free(ra);
		return -1;
	}
	*out = ra;
	return 0;
}

void redis_accounts_free(struct redis_accounts *ra)
{
	if (!ra)
		return;
	if (ra->timer)
		su_timer_destroy(ra->timer);
	if (ra->own)
		redisFree(ra->own);
	map_free(ra->mirror);
	strmap_free(ra->touched);
	free(ra);
}

/* ---------------------------------------------------------------------- */
/* reads and writes */

/* The loop's write came back: a refused one leaves the mirror wrong, so read it again. */
static void written(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_accounts *ra = privdata;
	redisReply *r = reply;

	if (r && r->type != REDIS_REPLY_ERROR)
		return;
	log_error("cluster: Redis did not keep an account change%s%s", r ? ": " : "",
		  r ? r->str : "");
	ra->read_wanted = true;
}

/* The loop's connection takes a write: 0, or -1 when it cannot now (logged). */
static int async_ready(struct redis_accounts *ra, const char *aor)
{
	struct store_redis *rs = ra->rs;

	if (rs && rs->cmd_up && rs->cmd && !rs->multi)
		return 0;
	log_error("cluster: the account of %s cannot be changed: Redis is unreachable", aor);
	return -1;
}

int redis_accounts_put(struct redis_accounts *ra, const struct store_account *a)
{
	redisContext *c = blocking(ra);
	json_t *o = account_json(a), *stored;
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	redisReply *r;
	struct store_account got;
	int rc = -1;

	if (!text)
		goto out;
	if (c) {
		r = sync_command(c, "EVAL %s 1 " KEY_ACCOUNTS " %s %s %s %s", put_lua, a->aor, text,
				 ra->channel, ra->by);
		if (r && r->type == REDIS_REPLY_STRING) {
			rc = 0;
			/* the mirror takes what Redis kept (its created) */
			stored = ra->mirror ? json_loadb(r->str, r->len, 0, NULL) : NULL;
			if (stored && account_of(stored, &got) == 0)
				mirror_change(ra, got.aor, &got);
			json_decref(stored);
		}
		freeReplyObject(r);
	} else if (async_ready(ra, a->aor) == 0 &&
		   redisAsyncCommand(ra->rs->cmd, written, ra, "EVAL %s 1 " KEY_ACCOUNTS " %s %s %s %s",
				     put_lua, a->aor, text, ra->channel, ra->by) == REDIS_OK) {
		/* seen here at once; the message that comes back has Redis' created */
		mirror_change(ra, a->aor, a);
		rc = 0;
	}
out:
	if (text)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(o);
	return rc;
}

int redis_accounts_del(struct redis_accounts *ra, const char *aor)
{
	redisContext *c = blocking(ra);
	json_t *o = json_pack("{s:s, s:s}", "by", ra->by, "del", aor);
	char *msg = o ? json_dumps(o, JSON_COMPACT) : NULL;
	redisReply *r;
	int rc = -1;

	if (!msg)
		goto out;
	if (c) {
		r = sync_command(c, "EVAL %s 1 " KEY_ACCOUNTS " %s %s %s", del_lua, aor, ra->channel,
				 msg);
		if (r && r->type == REDIS_REPLY_INTEGER) {
			rc = r->integer > 0;
			if (rc && ra->mirror)
				mirror_change(ra, aor, NULL);
		}
		freeReplyObject(r);
	} else if (async_ready(ra, aor) == 0 &&
		   redisAsyncCommand(ra->rs->cmd, written, ra, "EVAL %s 1 " KEY_ACCOUNTS " %s %s %s",
				     del_lua, aor, ra->channel, msg) == REDIS_OK) {
		rc = strmap_get(ra->mirror, aor) != NULL;
		mirror_change(ra, aor, NULL);
	}
out:
	free(msg);
	json_decref(o);
	return rc;
}

int redis_accounts_get(struct redis_accounts *ra, const char *aor, store_account_fn *fn, void *ctx)
{
	const struct mirrored *m;
	struct store_account a;
	redisReply *r;
	json_t *o = NULL;
	int rc = -1;

	if (ra->mirror) {
		m = strmap_get(ra->mirror, aor);
		if (m)
			fn(ctx, &m->a);
		return m != NULL;
	}
	r = sync_command(ra->own, "HGET " KEY_ACCOUNTS " %s", aor);
	if (r && r->type == REDIS_REPLY_NIL) {
		rc = 0;
	} else if (r && r->type == REDIS_REPLY_STRING) {
		o = json_loadb(r->str, r->len, 0, NULL);
		if (o && account_of(o, &a) == 0) {
			fn(ctx, &a);
			rc = 1;
		} else {
			log_error("cluster: the account of %s in Redis is unreadable", aor);
		}
	}
	json_decref(o);
	freeReplyObject(r);
	return rc;
}

int redis_accounts_list(struct redis_accounts *ra, const char *aor, store_account_fn *fn,
			void *ctx)
{
	struct strmap *all;
	redisReply *r;
	size_t bad;
	int rc;

	if (aor)
		return redis_accounts_get(ra, aor, fn, ctx) < 0 ? -1 : 0;
	if (ra->mirror)
		return map_list(ra->mirror, fn, ctx);
	if (!(r = sync_command(ra->own, "HGETALL " KEY_ACCOUNTS)) || r->type != REDIS_REPLY_ARRAY ||
	    !(all = strmap_new_keyed(mirrored_key, 0))) {
		freeReplyObject(r);
		return -1;
	}
	bad = map_fill(all, r, &rc);
	freeReplyObject(r);
	if (bad)
		log_warn("cluster: %zu account(s) in Redis could not be read (skipped)", bad);
	if (rc == 0)
		rc = map_list(all, fn, ctx);
	map_free(all);
	return rc;
}

void redis_accounts_nonce_used(struct redis_accounts *ra, const char *nonce, uint32_t nc)
{
	struct store_redis *rs = ra->rs;
	json_t *o;
	char *msg;

	if (!rs || !rs->cmd_up || !rs->cmd || rs->multi)
		return; /* Redis away: the others cannot hear of it, nor of anything */
	o = json_pack("{s:s, s:s, s:I}", "by", ra->by, "nonce", nonce, "nc", (json_int_t)nc);
	msg = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (msg)
		redisAsyncCommand(rs->cmd, NULL, NULL, "PUBLISH %s %s", ra->channel, msg);
	free(msg);
	json_decref(o);
}

void redis_accounts_watch_nonces(struct redis_accounts *ra, store_nonce_fn *fn, void *ctx)
{
	ra->nonce_fn = fn;
	ra->nonce_ctx = ctx;
}
