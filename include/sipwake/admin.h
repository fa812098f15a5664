/* SPDX-License-Identifier: MIT */
/*
 * Administration: the control socket that sipwakectl talks to, and the
 * Prometheus metrics endpoint. Both run on the daemon's su_root loop and
 * never block it.
 *
 * Control protocol (one Unix stream socket, admin.socket, mode 0660): the
 * client writes one request per line, words separated by blanks, e.g.
 *   "registrations sip:alice@example.com\n"
 * and reads one line back, a JSON object:
 *   {"ok":true,"result":{...}}   or   {"ok":false,"error":"why"}
 * Requests are answered in order; a connection may carry several. A line
 * longer than ADMIN_MAX_LINE closes the connection after an error reply.
 * Commands: help, status, registrations [AOR], unregister AOR,
 * messages [AOR], stats, reload, push test AOR [--type voip|alert|background].
 */
#ifndef SIPWAKE_ADMIN_H
#define SIPWAKE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sofia-sip/su_wait.h>

#include "sipwake/config.h"
#include "sipwake/registrar.h"
#include "sipwake/store.h"

#define ADMIN_MAX_LINE 4096        /* longest request line */
#define ADMIN_MAX_LIST 1000        /* most registrations/messages listed in one answer */
#define ADMIN_PUSH_TEST_TIMEOUT 35 /* s an asynchronous push test may take */

struct admin;
struct admin_metrics;
struct push;
struct router;

/*
 * Open the control socket at cfg->admin.socket (its parent directory is
 * created when missing, a stale socket left by a dead daemon is replaced,
 * a live one is an error) and attach it to root. cfg, reg and st are
 * borrowed and must outlive the admin. Returns 0, or -1 with the reason
 * logged.
 */
int admin_new(struct admin **out, su_root_t *root, const struct sw_config *cfg,
	      struct registrar *reg, struct store *st);
/* Close every connection and the socket, and remove the socket file. Safe with NULL. */
void admin_free(struct admin *a);

/* Reload as on SIGHUP. Returns 0 when the new configuration is in force, -1 otherwise. */
typedef int admin_reload_fn(void *ctx);
void admin_set_reload(struct admin *a, admin_reload_fn *fn, void *ctx);

/*
 * "push test AOR --type TYPE": send a test push of TYPE ("voip", "alert" or
 * "background") to every push binding of aor (canonical "sip:user@host").
 * The hook either
 *   - answers at once: returns 0 and sets *result (a JSON object, ownership
 *     passes to the admin), or returns -1 with a reason in err; or
 *   - answers later: returns 1 and, once the provider has answered, calls
 *     admin_push_test_done(a, req, ...) exactly once. If that takes longer
 *     than ADMIN_PUSH_TEST_TIMEOUT, or the client has gone, the late answer
 *     is dropped (an unknown req is ignored, so no cleanup is needed).
 * Without a hook (push layer not built in) the answer is the error
 * "push layer not available".
 */
typedef int admin_push_test_fn(void *ctx, const char *aor, const char *type, uint64_t req,
			       json_t **result, char *err, size_t errlen);
void admin_set_push_test(struct admin *a, admin_push_test_fn *fn, void *ctx);
/* Finish an asynchronous push test: result (taken, may be NULL) on success, else error. */
void admin_push_test_done(struct admin *a, uint64_t req, json_t *result, const char *error);

/*
 * Plug in the push dispatcher: "push test" then sends real pushes (voip =
 * a call push, alert = a message push, background = a wake-up push) to
 * every push binding of the AOR and answers with each provider's verdict,
 * and the dispatcher's counters and latency histogram are served as
 * metrics. p must stay alive until admin_free(). Returns 0 or -1.
 */
int admin_attach_push(struct admin *a, struct push *p);
/* Serve the router's number of held requests as a gauge; rt outlives a. */
void admin_attach_router(struct admin *a, struct router *rt);

/*
 * Canonical AOR for user input: "alice@example.com", "sip:Alice@EXAMPLE.com"
 * and "sips:..." all become "sip:alice@example.com" with the host
 * lower-cased, as the registrar keys bindings. Returns 0 or -1 (too long,
 * empty, blanks).
 */
int admin_canonical_aor(const char *in, char *out, size_t len);

/*
 * Serve Prometheus text at http://LISTEN/metrics (listen "HOST:PORT", see
 * config_parse_listen()) with libmicrohttpd driven from root. listen ""
 * gives *out = NULL and 0. Returns -1 with the reason logged when the
 * address cannot be bound.
 */
int admin_metrics_new(struct admin_metrics **out, su_root_t *root, const char *listen);
/* Stop serving and free. Safe with NULL. */
void admin_metrics_free(struct admin_metrics *m);
/* The port actually bound (useful with port 0), or 0. */
int admin_metrics_port(const struct admin_metrics *m);

#endif
