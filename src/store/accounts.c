/* SPDX-License-Identifier: MIT */
/*
 * Digest accounts (SPEC 4.7): one row per AOR with its username, realm and
 * HA1 values. sipwakectl writes them while the daemon may run; the daemon
 * reads the row at every authentication, so a change is seen at once. In a
 * cluster they are in Redis instead (redis_accounts.c), for every node.
 */
#include "store_int.h"

#include "redis_int.h"
#include "sipwake/config.h"
#include "sipwake/log.h"

#include <string.h>

#define ACCOUNT_COLUMNS "aor, username, realm, ha1_md5, ha1_sha256, created, updated"

const char *const store_account_sql[S_COUNT - S_ACCOUNT_PUT] = {
	[S_ACCOUNT_PUT - S_ACCOUNT_PUT] =
		"INSERT INTO accounts (" ACCOUNT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (aor) DO UPDATE SET username = excluded.username,"
		" realm = excluded.realm, ha1_md5 = excluded.ha1_md5,"
		" ha1_sha256 = excluded.ha1_sha256, updated = excluded.updated",
	[S_ACCOUNT_GET - S_ACCOUNT_PUT] =
		"SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE aor = ?1",
	[S_ACCOUNT_LIST - S_ACCOUNT_PUT] = "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY aor",
	[S_ACCOUNT_DEL - S_ACCOUNT_PUT] = "DELETE FROM accounts WHERE aor = ?1",
};

int store_account_put(struct store *st, const struct store_account *a)
{
	sqlite3_stmt *s = st->stmt[S_ACCOUNT_PUT];

	if (!a->aor || !a->username || !a->realm || (!a->ha1_md5 && !a->ha1_sha256)) {
		log_error("store: account without aor, username, realm or HA1");
		return -1;
	}
	if (st->accounts)
		return redis_accounts_put(st->accounts, a);
	if (store_bind_text(s, 1, a->aor) || store_bind_text(s, 2, a->username) ||
	    store_bind_text(s, 3, a->realm) || store_bind_text(s, 4, a->ha1_md5) ||
	    store_bind_text(s, 5, a->ha1_sha256) || sqlite3_bind_int64(s, 6, a->created) ||
	    sqlite3_bind_int64(s, 7, a->updated)) {
		store_release(s);
		return store_fail(st, "account put");
	}
	return store_run(st, S_ACCOUNT_PUT, "account put");
}

/* Rows of statement id through fn: the number of rows, or -1. */
static int account_rows(struct store *st, enum stmt_id id, store_account_fn *fn, void *ctx)
{
	sqlite3_stmt *s = st->stmt[id];
	int n = 0, step;

	if (store_load_enter(st) < 0) {
		store_release(s);
		return -1;
	}
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_account a = {
			.aor = store_col_text(s, 0),
			.username = store_col_text(s, 1),
			.realm = store_col_text(s, 2),
			.ha1_md5 = store_col_text(s, 3),
			.ha1_sha256 = store_col_text(s, 4),
			.created = sqlite3_column_int64(s, 5),
			.updated = sqlite3_column_int64(s, 6),
		};
		n++;
		if (fn(ctx, &a) != 0) {
			step = SQLITE_DONE;
			break;
		}
	}
	st->loading = false;
	if (step != SQLITE_DONE)
		n = store_fail(st, "reading accounts");
	store_release(s);
	return n;
}

int store_account_get(struct store *st, const char *aor, store_account_fn *fn, void *ctx)
{
	int n;

	if (st->accounts)
		return redis_accounts_get(st->accounts, aor, fn, ctx);
	if (store_bind_text(st->stmt[S_ACCOUNT_GET], 1, aor)) {
		store_release(st->stmt[S_ACCOUNT_GET]);
		return store_fail(st, "account get");
	}
	n = account_rows(st, S_ACCOUNT_GET, fn, ctx);
	return n < 0 ? -1 : n > 0;
}

int store_account_list(struct store *st, const char *aor, store_account_fn *fn, void *ctx)
{
	if (st->accounts)
		return redis_accounts_list(st->accounts, aor, fn, ctx);
	if (aor)
		return store_account_get(st, aor, fn, ctx) < 0 ? -1 : 0;
	return account_rows(st, S_ACCOUNT_LIST, fn, ctx) < 0 ? -1 : 0;
}

int store_account_del(struct store *st, const char *aor)
{
	if (st->accounts)
		return redis_accounts_del(st->accounts, aor);
	if (store_bind_text(st->stmt[S_ACCOUNT_DEL], 1, aor)) {
		store_release(st->stmt[S_ACCOUNT_DEL]);
		return store_fail(st, "account delete");
	}
	if (store_run(st, S_ACCOUNT_DEL, "account delete") < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

int store_attach_cluster_accounts(struct store *st, const struct sw_config *cfg)
{
	struct config_redis where;
	const char *why;

	if (!config_clustered(cfg))
		return 0;
	if (st->redis || st->accounts) {
		log_error("store: the accounts are already the cluster's");
		return -1;
	}
	if (config_parse_redis(cfg->cluster.redis, &where, &why) < 0) {
		log_error("store: cluster.redis: %s", why);
		return -1;
	}
	return redis_accounts_connect(&st->accounts, &where);
}

void store_nonce_used(struct store *st, const char *nonce, uint32_t nc)
{
	if (st->redis && st->accounts)
		redis_accounts_nonce_used(st->accounts, nonce, nc);
}

void store_watch_nonces(struct store *st, store_nonce_fn *fn, void *ctx)
{
	if (st->redis && st->accounts)
		redis_accounts_watch_nonces(st->accounts, fn, ctx);
}
