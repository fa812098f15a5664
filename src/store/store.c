/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store: bindings, stored MESSAGEs and accounts that must
 * outlive the process. The database runs in WAL mode with synchronous=NORMAL, so a
 * committed write survives kill -9 (it is in the WAL file) without an
 * fsync per write; only a power loss can take the last commits. The schema
 * is migrated forward on open from PRAGMA user_version, one transaction per
 * step. Every statement is prepared once at open and reused. Only
 * src/store/ includes sqlite3.h.
 */
#include "store_int.h"

#include "redis_int.h"
#include "sipwake/config.h"
#include "sipwake/log.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int redis_wrote(struct store *st, int rc);
static int sqlite_commit(struct store *st);

/*
 * How long a write waits for another connection's lock (a backup, the
 * sqlite3 shell) before failing. Short: the daemon's loop waits with it,
 * and a failed write is answered 500 with Retry-After, never acknowledged.
 */
#define STORE_BUSY_TIMEOUT_MS 100

/*
 * Schema migrations: entry i brings the database from version i to i + 1.
 * Append only; never edit a step that has shipped.
 */
static const char *const migrations[] = {
	/* 1: bindings and stored messages */
	"CREATE TABLE bindings ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" aor TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" instance TEXT,"
	" pn_key TEXT,"
	" received TEXT,"
	" call_id TEXT,"
	" cseq INTEGER NOT NULL DEFAULT 0,"
	" user_agent TEXT,"
	" q INTEGER NOT NULL DEFAULT 1000,"
	" expires INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"CREATE INDEX bindings_aor ON bindings (aor);"
	"CREATE INDEX bindings_pn_key ON bindings (pn_key);"
	"CREATE INDEX bindings_expires ON bindings (expires);"
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" aor TEXT NOT NULL,"
	" from_hdr TEXT NOT NULL,"
	" to_hdr TEXT NOT NULL,"
	" call_id TEXT,"
	" content_type TEXT,"
	" body BLOB NOT NULL,"
	" received INTEGER NOT NULL,"
	" expires INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX messages_aor_id ON messages (aor, id);",
	/* 2: per-installation values (secrets) */
	"CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);",
	/* 3: digest accounts (HA1 values only, never a password) */
	"CREATE TABLE accounts ("
	" aor TEXT PRIMARY KEY NOT NULL,"
	" username TEXT NOT NULL,"
	" realm TEXT NOT NULL,"
	" ha1_md5 TEXT,"
	" ha1_sha256 TEXT,"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);",
	/* 4: the upstream leg sipwake keeps alive for a push binding (SPEC 4.6) */
	"ALTER TABLE bindings ADD COLUMN up_call_id TEXT;"
	"ALTER TABLE bindings ADD COLUMN up_cseq INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE bindings ADD COLUMN up_expires INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE bindings ADD COLUMN up_state TEXT;",
	/* 5: nothing looks bindings up by push identity in the store (memory does):
	 * the index only cost every binding write and ~200 bytes a row */
	"DROP INDEX bindings_pn_key;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define BINDING_COLUMNS                                                       \
	"id, aor, contact, instance, pn_key, received, call_id, cseq, user_agent," \
	" q, expires, updated, up_call_id, up_cseq, up_expires, up_state"
#define MESSAGE_COLUMNS \
	"id, aor, from_hdr, to_hdr, call_id, content_type, body, received, expires, attempts"

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_BINDING_PUT] = "INSERT OR REPLACE INTO bindings (" BINDING_COLUMNS ")"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
			  " ?16)",
	[S_BINDING_DEL] = "DELETE FROM bindings WHERE id = ?1",
	[S_BINDING_DEL_AOR] = "DELETE FROM bindings WHERE aor = ?1",
	/* One pass over the table in its own order (an index would make it a
	 * random walk over a million rows): by rowid, which INSERT OR REPLACE
	 * renews, so the bindings of an AOR come oldest write first. */
	[S_BINDING_LOAD] = "SELECT " BINDING_COLUMNS " FROM bindings NOT INDEXED"
			   " WHERE expires > ?1 ORDER BY rowid",
	[S_BINDING_COUNT] = "SELECT count(*) FROM bindings",
	[S_MESSAGE_ADD] = "INSERT INTO messages (aor, from_hdr, to_hdr, call_id, content_type,"
			  " body, received, expires, attempts)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_MESSAGE_COUNT] = "SELECT count(*) FROM messages WHERE aor = ?1",
	[S_MESSAGE_COUNT_ALL] = "SELECT count(*) FROM messages",
	[S_MESSAGE_LOAD] = "SELECT " MESSAGE_COLUMNS " FROM messages"
			   " WHERE aor = ?1 AND expires > ?2 ORDER BY id",
	[S_MESSAGE_LOAD_ALL] = "SELECT " MESSAGE_COLUMNS " FROM messages"
			       " WHERE expires > ?2 ORDER BY id",
	[S_MESSAGE_ATTEMPT] = "UPDATE messages SET attempts = attempts + 1 WHERE id = ?1",
	[S_MESSAGE_DEL] = "DELETE FROM messages WHERE id = ?1",
	[S_PURGE_BINDINGS] = "DELETE FROM bindings WHERE expires <= ?1",
	[S_PURGE_MESSAGES] = "DELETE FROM messages WHERE expires <= ?1",
};


/* Log a failed SQLite call once, with the database's own reason. */
int store_fail(struct store *st, const char *what)
{
	log_error("store: %s: %s: %s", st->path, what, st->db ? sqlite3_errmsg(st->db) : "?");
	return -1;
}

/* Make a statement ready for the next use; bound strings are released. */
void store_release(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement that returns no rows. */
int store_run(struct store *st, enum stmt_id id, const char *what)
{
	sqlite3_stmt *s = st->stmt[id];
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		store_fail(st, what);
		store_release(s);
		return -1;
	}
	store_release(s);
	return 0;
}

int store_bind_text(sqlite3_stmt *s, int col, const char *v)
{
	if (!v)
		return sqlite3_bind_null(s, col);
	return sqlite3_bind_text(s, col, v, -1, SQLITE_STATIC);
}

const char *store_col_text(sqlite3_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s, col);
}

/* mkdir -p of the directory part of path (mode 0750 for what we create). */
static int make_parent_dirs(const char *path)
{
	char *dir = strdup(path);
	char *slash;
	int rc = -1;

	if (!dir) {
		log_error("store: %s: out of memory", path);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		rc = 0;
		goto out;
	}
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		bool last = *p == '\0';
		struct stat sb;

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			log_error("store: cannot create directory %s for the database: %s", dir,
				  strerror(errno));
			goto out;
		}
		if (stat(dir, &sb) != 0) {
			log_error("store: cannot create directory %s for the database: %s", dir,
				  strerror(errno));
			goto out;
		}
		if (!S_ISDIR(sb.st_mode)) {
			log_error("store: cannot create directory %s for the database: "
				  "a file of that name exists", dir);
			goto out;
		}
		if (last)
			break;
		*p = '/';
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

/* Run one or more statements that return nothing worth reading. */
static int exec(struct store *st, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("store: %s: %s: %s", st->path, what, msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Read a single-integer PRAGMA or query. */
static int query_int(struct store *st, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_fail(st, sql);
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_fail(st, sql);
		goto out;
	}
	*out = sqlite3_column_int(s, 0);
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

/* journal_mode answers with the mode it ended up in; WAL is what we rely on. */
static int set_wal(struct store *st)
{
	sqlite3_stmt *s = NULL;
	const char *mode;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		store_fail(st, "setting WAL mode");
		goto out;
	}
	mode = store_col_text(s, 0);
	if (!mode || strcmp(mode, "wal") != 0)
		log_warn("store: %s: journal mode is %s, not wal", st->path, mode ? mode : "?");
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

/*
 * Bring the schema to SCHEMA_VERSION, one transaction per step. The version
 * is read again inside each write transaction so that two processes opening
 * the same file never apply a step twice.
 */
static int migrate(struct store *st)
{
	int version;
	char sql[64];

	if (query_int(st, "PRAGMA user_version", &version) < 0)
		return -1;
	if (version > SCHEMA_VERSION) {
		log_error("store: %s: database schema version %d is newer than this sipwaked "
			  "supports (%d); refusing to open it",
			  st->path, version, SCHEMA_VERSION);
		return -1;
	}
	while (version < SCHEMA_VERSION) {
		if (exec(st, "BEGIN IMMEDIATE", "starting a migration") < 0)
			return -1;
		if (query_int(st, "PRAGMA user_version", &version) < 0)
			goto rollback;
		if (version >= SCHEMA_VERSION) {
			if (exec(st, "COMMIT", "migration") < 0)
				goto rollback;
			break;
		}
		if (version < 0) {
			log_error("store: %s: bad schema version %d", st->path, version);
			goto rollback;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (exec(st, migrations[version], "migrating the schema") < 0 ||
		    exec(st, sql, "migrating the schema") < 0 ||
		    exec(st, "COMMIT", "migrating the schema") < 0)
			goto rollback;
		log_info("store: %s: schema migrated to version %d", st->path, version + 1);
		version++;
	}
	st->version = version;
	return 0;
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_open(struct store **out, const char *path)
{
	struct store *st = NULL;
	bool created;
	int rc = -1;
	char sql[64];

	*out = NULL;
	if (!path || !*path) {
		log_error("store: no database path configured");
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		log_error("store: %s: out of memory", path);
		goto out;
	}
	if (strcmp(path, ":memory:") != 0 && make_parent_dirs(path) < 0)
		goto out;
	created = access(path, F_OK) != 0;
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		store_fail(st, "cannot open the database");
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	snprintf(sql, sizeof(sql), "PRAGMA busy_timeout = %d", STORE_BUSY_TIMEOUT_MS);
	/* The first real read tells a file that is not a database apart. */
	if (exec(st, sql, "setting the busy timeout") < 0 || set_wal(st) < 0 ||
	    exec(st, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
		 "setting pragmas") < 0)
		goto out;
	if (migrate(st) < 0)
		goto out;
	/*
	 * Push tokens are in there: a new database is not for everyone to read
	 * whatever the umask (SQLite gives its -wal and -shm files the same mode).
	 */
	if (created && strcmp(path, ":memory:") != 0 && chmod(path, 0640) != 0)
		log_warn("store: %s: chmod 0640: %s", path, strerror(errno));
	for (int i = 0; i < S_COUNT; i++) {
		const char *q = i < S_ACCOUNT_PUT ? stmt_sql[i] : store_account_sql[i - S_ACCOUNT_PUT];
		if (sqlite3_prepare_v3(st->db, q, -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			store_fail(st, "preparing a statement");
			goto out;
		}
	}
	*out = st;
	st = NULL;
	rc = 0;
out:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_redis_close(st->redis);
	redis_accounts_free(st->accounts); /* after: the connections' callbacks use it */
	if (st->in_tx && st->stmt[S_ROLLBACK]) {
		log_warn("store: %s: closing inside a transaction; rolling it back", st->path);
		store_run(st, S_ROLLBACK, "rolling back");
	}
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_error("store: %s: close: %s", st->path, sqlite3_errmsg(st->db));
	free(st->path);
	free(st);
}

int store_schema_version(struct store *st)
{
	return st->version;
}

int store_binding_put(struct store *st, const struct store_binding *b)
{
	sqlite3_stmt *s = st->stmt[S_BINDING_PUT];

	if (!b->id || !b->aor || !b->contact) {
		log_error("store: binding without id, aor or contact");
		return -1;
	}
	if (st->loading_bindings) {
		/* the rewritten row would come round again in the same scan */
		log_error("store: binding %s written while the bindings are loaded", b->id);
		return -1;
	}
	if (st->redis)
		return redis_wrote(st, store_redis_put(st->redis, b));
	if (store_bind_text(s, 1, b->id) || store_bind_text(s, 2, b->aor) || store_bind_text(s, 3, b->contact) ||
	    store_bind_text(s, 4, b->instance) || store_bind_text(s, 5, b->pn_key) ||
	    store_bind_text(s, 6, b->received) || store_bind_text(s, 7, b->call_id) ||
	    sqlite3_bind_int64(s, 8, b->cseq) || store_bind_text(s, 9, b->user_agent) ||
	    sqlite3_bind_int(s, 10, b->q) || sqlite3_bind_int64(s, 11, b->expires) ||
	    sqlite3_bind_int64(s, 12, b->updated) || store_bind_text(s, 13, b->up_call_id) ||
	    sqlite3_bind_int64(s, 14, b->up_cseq) || sqlite3_bind_int64(s, 15, b->up_expires) ||
	    store_bind_text(s, 16, b->up_state)) {
		store_fail(st, "binding put");
		store_release(s);
		return -1;
	}
	return store_run(st, S_BINDING_PUT, "binding put");
}

int store_binding_del(struct store *st, const char *id)
{
	if (st->redis)
		return redis_wrote(st, store_redis_del(st->redis, id));
	if (store_bind_text(st->stmt[S_BINDING_DEL], 1, id)) {
		store_release(st->stmt[S_BINDING_DEL]);
		return store_fail(st, "binding delete");
	}
	return store_run(st, S_BINDING_DEL, "binding delete");
}

int store_binding_del_aor(struct store *st, const char *aor)
{
	if (st->redis) {
		log_error("store: deleting by AOR is not done in a cluster (delete each binding)");
		return -1;
	}
	if (store_bind_text(st->stmt[S_BINDING_DEL_AOR], 1, aor)) {
		store_release(st->stmt[S_BINDING_DEL_AOR]);
		return store_fail(st, "binding delete by aor");
	}
	return store_run(st, S_BINDING_DEL_AOR, "binding delete by aor");
}

/* A load holds its statement across callbacks; a nested load would reset it. */
int store_load_enter(struct store *st)
{
	if (st->loading) {
		log_error("store: nested load from a load callback");
		return -1;
	}
	st->loading = true;
	return 0;
}

#define STORE_LOAD_MMAP "2147418112" /* bytes: SQLite's own upper bound on Linux */

int store_binding_load(struct store *st, int64_t now, store_binding_fn *fn, void *ctx)
{
	sqlite3_stmt *s = st->stmt[S_BINDING_LOAD];
	int rc = -1, step;

	if (st->redis)
		return store_redis_load(st->redis, now, fn, ctx);
	if (store_load_enter(st) < 0)
		return -1;
	/*
	 * Read the table through a memory map for this one pass (no pread and
	 * copy per page of a gigabyte at a million bindings), and unmap it
	 * after, so that the file's pages do not stay in the daemon's memory.
	 * Either PRAGMA failing only makes the load slower.
	 */
	sqlite3_exec(st->db, "PRAGMA mmap_size = " STORE_LOAD_MMAP, NULL, NULL, NULL);
	st->loading_bindings = true;
	if (sqlite3_bind_int64(s, 1, now)) {
		store_fail(st, "binding load");
		goto out;
	}
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_binding b = {
			.id = store_col_text(s, 0),
			.aor = store_col_text(s, 1),
			.contact = store_col_text(s, 2),
			.instance = store_col_text(s, 3),
			.pn_key = store_col_text(s, 4),
			.received = store_col_text(s, 5),
			.call_id = store_col_text(s, 6),
			.cseq = (uint32_t)sqlite3_column_int64(s, 7),
			.user_agent = store_col_text(s, 8),
			.q = sqlite3_column_int(s, 9),
			.expires = sqlite3_column_int64(s, 10),
			.updated = sqlite3_column_int64(s, 11),
			.up_call_id = store_col_text(s, 12),
			.up_cseq = (uint32_t)sqlite3_column_int64(s, 13),
			.up_expires = sqlite3_column_int64(s, 14),
			.up_state = store_col_text(s, 15),
		};
		if (fn(ctx, &b) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		store_fail(st, "binding load");
		goto out;
	}
	rc = 0;
out:
	store_release(s);
	st->loading_bindings = false;
	sqlite3_exec(st->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	st->loading = false;
	return rc;
}

int store_message_add(struct store *st, const struct store_message *m, int64_t *id_out)
{
	sqlite3_stmt *s = st->stmt[S_MESSAGE_ADD];
	int rc;

	if (st->redis) {
		log_error("store: a cluster's messages are added with store_message_add_then");
		return -1;
	}
	if (!m->aor || !m->from || !m->to || (m->body_len > 0 && !m->body)) {
		log_error("store: message without aor, from, to or body");
		return -1;
	}
	if (m->body_len > STORE_MAX_BODY_LEN) {
		log_error("store: message body of %zu bytes over the %d-byte limit", m->body_len,
			  STORE_MAX_BODY_LEN);
		return -1;
	}
	/* An empty body is stored as an empty blob, not NULL. */
	if (store_bind_text(s, 1, m->aor) || store_bind_text(s, 2, m->from) || store_bind_text(s, 3, m->to) ||
	    store_bind_text(s, 4, m->call_id) || store_bind_text(s, 5, m->content_type) ||
	    (m->body_len > 0 ? sqlite3_bind_blob(s, 6, m->body, (int)m->body_len, SQLITE_STATIC)
			     : sqlite3_bind_zeroblob(s, 6, 0)) ||
	    sqlite3_bind_int64(s, 7, m->received) || sqlite3_bind_int64(s, 8, m->expires) ||
	    sqlite3_bind_int(s, 9, m->attempts)) {
		store_fail(st, "message add");
		store_release(s);
		return -1;
	}
	rc = store_run(st, S_MESSAGE_ADD, "message add");
	if (rc == 0 && id_out)
		*id_out = sqlite3_last_insert_rowid(st->db);
	return rc;
}

int64_t store_binding_count(struct store *st)
{
	if (st->redis)
		return store_redis_count(st->redis);
	sqlite3_stmt *s = st->stmt[S_BINDING_COUNT];
	int64_t n = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	else
		store_fail(st, "binding count");
	store_release(s);
	return n;
}

int store_message_count(struct store *st, const char *aor)
{
	sqlite3_stmt *s = st->stmt[aor ? S_MESSAGE_COUNT : S_MESSAGE_COUNT_ALL];
	int rc = -1;

	if (st->redis) /* only the total, as last read */
		return aor ? -1 : redis_messages_count(st->redis->messages);
	if (aor && store_bind_text(s, 1, aor)) {
		store_fail(st, "message count");
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_fail(st, "message count");
		goto out;
	}
	rc = sqlite3_column_int(s, 0);
out:
	store_release(s);
	return rc;
}

int store_message_load(struct store *st, const char *aor, int64_t now, store_message_fn *fn,
		       void *ctx)
{
	sqlite3_stmt *s = st->stmt[aor ? S_MESSAGE_LOAD : S_MESSAGE_LOAD_ALL];
	int rc = -1, step;

	if (st->redis) {
		log_error("store: a cluster's messages are read with store_message_list_then");
		return -1;
	}
	if (store_load_enter(st) < 0)
		return -1;
	if ((aor && store_bind_text(s, 1, aor)) || sqlite3_bind_int64(s, 2, now)) {
		store_fail(st, "message load");
		goto out;
	}
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const void *body = sqlite3_column_blob(s, 6);
		struct store_message m = {
			.id = sqlite3_column_int64(s, 0),
			.aor = store_col_text(s, 1),
			.from = store_col_text(s, 2),
			.to = store_col_text(s, 3),
			.call_id = store_col_text(s, 4),
			.content_type = store_col_text(s, 5),
			.body = body ? body : "",
			.body_len = (size_t)sqlite3_column_bytes(s, 6),
			.received = sqlite3_column_int64(s, 7),
			.expires = sqlite3_column_int64(s, 8),
			.attempts = sqlite3_column_int(s, 9),
		};
		if (fn(ctx, &m) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		store_fail(st, "message load");
		goto out;
	}
	rc = 0;
out:
	store_release(s);
	st->loading = false;
	return rc;
}

int store_message_attempt(struct store *st, int64_t id)
{
	if (st->redis)
		return redis_messages_attempt(st->redis->messages, id);
	if (sqlite3_bind_int64(st->stmt[S_MESSAGE_ATTEMPT], 1, id)) {
		store_release(st->stmt[S_MESSAGE_ATTEMPT]);
		return store_fail(st, "message attempt");
	}
	return store_run(st, S_MESSAGE_ATTEMPT, "message attempt");
}

int store_message_del(struct store *st, int64_t id)
{
	if (st->redis)
		return redis_messages_del(st->redis->messages, id);
	if (sqlite3_bind_int64(st->stmt[S_MESSAGE_DEL], 1, id)) {
		store_release(st->stmt[S_MESSAGE_DEL]);
		return store_fail(st, "message delete");
	}
	return store_run(st, S_MESSAGE_DEL, "message delete");
}

/* ---------------------------------------------------------------------- */
/* stored messages, for both backends */

void store_message_add_then(struct store *st, const struct store_message *m, int max_per_aor,
			    int max_total, store_added_fn *fn, void *ctx)
{
	int count, total;
	int64_t id = 0;

	if (st->redis) {
		if (!m->aor || !m->from || !m->to || (m->body_len > 0 && !m->body) ||
		    m->body_len > STORE_MAX_BODY_LEN) {
			log_error("store: message without aor, from, to or body, or too large");
			fn(ctx, STORE_FAILED, 0);
			return;
		}
		redis_messages_add(st->redis->messages, m, max_per_aor, max_total, fn, ctx);
		return;
	}
	count = store_message_count(st, m->aor);
	total = count < 0 ? -1 : store_message_count(st, NULL);
	if (count < 0 || total < 0)
		fn(ctx, STORE_FAILED, 0);
	else if (count >= max_per_aor)
		fn(ctx, STORE_AOR_FULL, 0);
	else if (total >= max_total)
		fn(ctx, STORE_FULL, 0);
	else if (store_message_add(st, m, &id) < 0)
		fn(ctx, STORE_FAILED, 0);
	else
		fn(ctx, STORE_ADDED, id);
}

/* A message copied out of a load (its statement is released before fn runs). */
struct copied {
	struct store_message m;
	char *from, *to, *call_id, *content_type, *aor;
	void *body;
	bool found, failed;
};

static char *dup_or_null(const char *s, bool *failed)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*failed = true;
	return d;
}

static int copy_first(void *ctx, const struct store_message *m)
{
	struct copied *c = ctx;

	c->m = *m;
	c->m.aor = c->aor = dup_or_null(m->aor, &c->failed);
	c->m.from = c->from = dup_or_null(m->from, &c->failed);
	c->m.to = c->to = dup_or_null(m->to, &c->failed);
	c->m.call_id = c->call_id = dup_or_null(m->call_id, &c->failed);
	c->m.content_type = c->content_type = dup_or_null(m->content_type, &c->failed);
	c->body = malloc(m->body_len ? m->body_len : 1);
	if (c->body)
		memcpy(c->body, m->body, m->body_len);
	else
		c->failed = true;
	c->m.body = c->body;
	c->found = true;
	return 1; /* one is enough */
}

static void copied_free(struct copied *c)
{
	free(c->aor);
	free(c->from);
	free(c->to);
	free(c->call_id);
	free(c->content_type);
	free(c->body);
}

void store_message_take_then(struct store *st, const char *aor, int64_t now, store_taken_fn *fn,
			     void *ctx)
{
	struct copied c = {0};

	if (st->redis) {
		redis_messages_take(st->redis->messages, aor, now, fn, ctx);
		return;
	}
	if (store_message_load(st, aor, now, copy_first, &c) < 0 || !c.found || c.failed ||
	    store_message_attempt(st, c.m.id) < 0) {
		copied_free(&c);
		fn(ctx, NULL);
		return;
	}
	c.m.attempts++;
	fn(ctx, &c.m);
	copied_free(&c);
}

void store_message_release(struct store *st, const char *aor)
{
	if (st->redis)
		redis_messages_release(st->redis->messages, aor);
}

struct listing {
	store_message_fn *each;
	void *ctx;
	int left;
};

static int list_one(void *ctx, const struct store_message *m)
{
	struct listing *l = ctx;

	if (l->left-- <= 0)
		return 1;
	return l->each(l->ctx, m);
}

void store_message_list_then(struct store *st, const char *aor, int64_t now, int max,
			     store_message_fn *each, store_listed_fn *done, void *ctx)
{
	struct listing l = {each, ctx, max};
	int count;

	if (st->redis) {
		redis_messages_list(st->redis->messages, aor, now, max, each, done, ctx);
		return;
	}
	count = store_message_count(st, aor);
	if (count < 0 || store_message_load(st, aor, now, list_one, &l) < 0)
		count = -1;
	done(ctx, count);
}

void store_message_forget(struct store *st, void *ctx)
{
	if (st && st->redis)
		redis_messages_forget(st->redis->messages, ctx);
}

/* Delete rows with expires <= now using one purge statement; returns the count. */
static int purge_one(struct store *st, enum stmt_id id, int64_t now)
{
	if (sqlite3_bind_int64(st->stmt[id], 1, now)) {
		store_release(st->stmt[id]);
		return store_fail(st, "purge");
	}
	if (store_run(st, id, "purge") < 0)
		return -1;
	return sqlite3_changes(st->db);
}

int store_purge(struct store *st, int64_t now)
{
	bool own_tx = !st->in_tx;
	int rc = -1, n1, n2;

	if (own_tx && store_begin(st) < 0)
		return -1;
	if (st->redis) {
		/* how many Redis drops is not waited for */
		n1 = redis_wrote(st, store_redis_purge(st->redis, now));
	} else {
		n1 = purge_one(st, S_PURGE_BINDINGS, now);
	}
	if (n1 < 0)
		goto out;
	if (st->redis) /* sent once the purge's MULTI is closed; any node may */
		n2 = redis_messages_purge(st->redis->messages, now) < 0 ? -1 : 0;
	else
		n2 = purge_one(st, S_PURGE_MESSAGES, now);
	if (n2 < 0)
		goto out;
	rc = n1 > INT_MAX - n2 ? INT_MAX : n1 + n2;
out:
	if (own_tx) {
		/* store_commit rolls back itself when it fails. */
		if (rc >= 0 && store_commit(st) < 0)
			rc = -1;
		else if (rc < 0)
			store_rollback(st);
	}
	return rc;
}

/* Log-only end of a Redis write made outside a transaction. */
static void autocommitted(void *ctx, bool stored)
{
	(void)ctx;
	if (!stored)
		log_error("store: a binding write outside a batch was not kept by Redis");
}

/* A Redis write was queued (rc 0) or not: outside a transaction it goes now. */
static int redis_wrote(struct store *st, int rc)
{
	if (rc < 0) {
		log_error(store_redis_writable(st->redis)
				  ? "store: a binding write could not be queued for Redis"
				  : "store: binding write refused: Redis is unreachable");
		return -1;
	}
	if (!st->in_tx)
		store_redis_commit(st->redis, autocommitted, NULL);
	return 0;
}

void store_commit_then(struct store *st, store_done_fn *fn, void *ctx)
{
	if (!st->in_tx) {
		fn(ctx, true);
		return;
	}
	if (sqlite_commit(st) < 0) { /* rolled back, Redis's part too */
		fn(ctx, false);
		return;
	}
	if (st->redis)
		store_redis_commit(st->redis, fn, ctx);
	else
		fn(ctx, true);
}

int store_attach_cluster(struct store *st, su_root_t *root, const struct sw_config *cfg)
{
	struct config_redis where;
	const char *why;
	char node[64];

	if (!config_clustered(cfg))
		return 0;
	if (config_parse_redis(cfg->cluster.redis, &where, &why) < 0) {
		log_error("store: cluster.redis: %s", why);
		return -1;
	}
	if (config_node_name(cfg, node, sizeof(node)) < 0) {
		log_error("store: this host's name is no node name: set cluster.node_name");
		return -1;
	}
	if (store_redis_open(&st->redis, root, &where, node) < 0)
		return -1;
	return redis_accounts_attach(&st->accounts, st->redis);
}

bool store_clustered(const struct store *st)
{
	return st->redis != NULL;
}

const char *store_node_name(const struct store *st)
{
	return st->redis ? store_redis_node(st->redis) : NULL;
}

bool store_writable(const struct store *st)
{
	return !st->redis || store_redis_writable(st->redis);
}

int store_pending(const struct store *st)
{
	return st->redis ? store_redis_pending(st->redis) : 0;
}

void store_cancel_pending(struct store *st)
{
	if (st->redis)
		store_redis_cancel_pending(st->redis);
}

void store_cluster_nodes(struct store *st, store_node_fn *fn, void *ctx)
{
	if (st->redis)
		store_redis_each_node(st->redis, fn, ctx);
}

void store_set_hop(struct store *st, const char *uri)
{
	if (st->redis)
		store_redis_set_hop(st->redis, uri);
}

const char *store_node_hop(struct store *st, const char *node)
{
	return st->redis && node ? store_redis_node_hop(st->redis, node) : NULL;
}

void store_watch(struct store *st, store_change_fn *fn, void *ctx)
{
	if (st->redis)
		store_redis_watch(st->redis, fn, ctx);
}

int store_begin(struct store *st)
{
	if (st->in_tx) {
		log_error("store: %s: nested transaction", st->path);
		return -1;
	}
	if (store_run(st, S_BEGIN, "begin") < 0)
		return -1;
	st->in_tx = true;
	return 0;
}

/* The database's part of a commit. */
static int sqlite_commit(struct store *st)
{
	if (!st->in_tx) {
		log_error("store: %s: commit without a transaction", st->path);
		return -1;
	}
	if (store_run(st, S_COMMIT, "commit") < 0) {
		store_rollback(st);
		return -1;
	}
	st->in_tx = false;
	return 0;
}

int store_commit(struct store *st)
{
	if (sqlite_commit(st) < 0)
		return -1;
	if (st->redis) /* the caller does not wait: what Redis says is only logged */
		store_redis_commit(st->redis, autocommitted, NULL);
	return 0;
}

int store_rollback(struct store *st)
{
	int rc;

	if (st->redis)
		store_redis_rollback(st->redis);
	if (!st->in_tx)
		return 0;
	rc = sqlite3_get_autocommit(st->db) ? 0 : store_run(st, S_ROLLBACK, "rollback");
	st->in_tx = false;
	return rc;
}

/* The value of meta row name into buf (exactly len bytes): 1 found, 0 absent, -1 error. */
static int meta_get(struct store *st, const char *name, unsigned char *buf, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE name = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return store_fail(st, "reading a secret");
	store_bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == len) {
		memcpy(buf, sqlite3_column_blob(s, 0), len);
		rc = 1;
	} else {
		log_error("store: %s: secret %s is unreadable", st->path, name);
	}
	sqlite3_finalize(s);
	return rc;
}

int store_secret(struct store *st, const char *name, unsigned char *buf, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (st->redis) /* one secret for every node of the cluster */
		return store_redis_secret(st->redis, name, buf, len);
	rc = meta_get(st, name, buf, len);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		log_error("store: no randomness for secret %s: %s", name, strerror(errno));
		return -1;
	}
	/* OR IGNORE: another process may have created it meanwhile; read back what won. */
	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
			       -1, &s, NULL) != SQLITE_OK)
		return store_fail(st, "creating a secret");
	store_bind_text(s, 1, name);
	sqlite3_bind_blob(s, 2, buf, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : store_fail(st, "creating a secret");
	sqlite3_finalize(s);
	if (rc == 0 && meta_get(st, name, buf, len) != 1)
		rc = -1;
	return rc;
}

void store_set_busy_timeout(struct store *st, int ms)
{
	sqlite3_busy_timeout(st->db, ms);
}
