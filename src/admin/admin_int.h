/* SPDX-License-Identifier: MIT */
/*
 * Private to src/admin/: the admin object shared by the socket code
 * (control.c) and the command table (commands.c).
 */
#ifndef SIPWAKE_ADMIN_INT_H
#define SIPWAKE_ADMIN_INT_H

#include <sys/types.h>
#include <time.h>

#include "sipwake/admin.h"

struct conn;
struct ptest;
struct push;
struct router;

struct admin {
	su_root_t *root;
	const struct sw_config *cfg;
	struct registrar *reg;
	struct store *st;
	char *path;
	int fd;
	ino_t ino;
	dev_t dev;
	su_wait_t wait[1];
	int reg_idx;
	su_timer_t *sweep;
	struct conn *conns;
	int n_conns;
	time_t started;
	struct timespec started_mono;
	uint64_t next_req;
	admin_reload_fn *reload;
	void *reload_ctx;
	admin_push_test_fn *push_test;
	void *push_test_ctx;
	struct push *push;     /* admin_attach_push(), or NULL */
	struct router *router; /* admin_attach_router(), or NULL */
	struct ptest *ptests;  /* push tests waiting for providers */
	struct msg_query *msg_queries; /* message listings waiting for the store */
};

/* Forget the message listings still waiting for the store (admin_free). */
void admin_messages_cancel(struct admin *a);

/*
 * Run one request line (modified in place). Returns the answer object, or
 * NULL with *pending set to a request id when the answer comes later
 * through admin_push_test_done().
 */
json_t *admin_command(struct admin *a, char *line, uint64_t *pending);

/* {"ok":false,"error":...} with a printf-style reason. */
json_t *admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* {"ok":true,"result":result}; takes result (NULL, a failed json_pack: an error answer). */
json_t *admin_ok(json_t *result);
/*
 * A JSON string of text that may come from the network or the socket (a
 * User-Agent, a stored From, a request word): invalid UTF-8 bytes become
 * '?' so that the answer is always valid JSON. NULL gives JSON null.
 */
json_t *admin_text(const char *s);

/* Register the gauges read from the registrar, proxy and store. */
void admin_hook_gauges(struct admin *a);

/* Drop pending push tests and the push collector (admin_free). */
void admin_detach_push(struct admin *a);

#endif
