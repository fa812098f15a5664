/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the store's files: store.c (schema, bindings,
 * messages, secrets) and accounts.c (digest accounts). Not an interface.
 */
#ifndef SIPWAKE_STORE_INT_H
#define SIPWAKE_STORE_INT_H

#include "sipwake/store.h"

#include <sqlite3.h>
#include <stdbool.h>

/* The prepared statements, in the order of stmt_sql[]. */
enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_BINDING_PUT,
	S_BINDING_DEL,
	S_BINDING_DEL_AOR,
	S_BINDING_LOAD,
	S_MESSAGE_ADD,
	S_MESSAGE_COUNT,
	S_MESSAGE_COUNT_ALL,
	S_BINDING_COUNT,
	S_MESSAGE_LOAD,
	S_MESSAGE_LOAD_ALL,
	S_MESSAGE_ATTEMPT,
	S_MESSAGE_DEL,
	S_PURGE_BINDINGS,
	S_PURGE_MESSAGES,
	S_ACCOUNT_PUT,
	S_ACCOUNT_GET,
	S_ACCOUNT_LIST,
	S_ACCOUNT_DEL,
	S_COUNT,
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[S_COUNT];
	bool in_tx;   /* between store_begin and store_commit */
	bool loading; /* a load callback is running: loads do not nest */
	bool loading_bindings; /* the bindings are being read: none is written meanwhile */
	int version;
	struct store_redis *redis; /* a cluster's bindings (redis.c), or NULL */
	struct redis_accounts *accounts; /* a cluster's accounts (redis_accounts.c), or NULL */
};

/* The SQL of each prepared statement (accounts.c holds the account ones). */
extern const char *const store_account_sql[S_COUNT - S_ACCOUNT_PUT];

/* Log a failed SQLite call once, with the database's own reason; returns -1. */
int store_fail(struct store *st, const char *what);
/* Make a statement ready for the next use; bound strings are released. */
void store_release(sqlite3_stmt *s);
/* Run a prepared statement that returns no rows: 0 or -1 (logged). */
int store_run(struct store *st, enum stmt_id id, const char *what);
/* Bind a string (NULL binds NULL), borrowed until the statement is released. */
int store_bind_text(sqlite3_stmt *s, int col, const char *v);
const char *store_col_text(sqlite3_stmt *s, int col);
/* A load holds its statement across callbacks: enter fails when one is running. */
int store_load_enter(struct store *st);

#endif
