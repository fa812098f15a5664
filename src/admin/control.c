/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a Unix stream socket on the su_root loop, accepting
 * a few sipwakectl connections at a time. Each connection reads request
 * lines into a capped buffer, hands a complete line to the command table
 * in commands.c, and writes the one-line JSON answer without blocking
 * (EAGAIN parks the rest until the socket is writable). Idle connections
 * and push tests that never complete are reaped by a periodic timer.
 */
#include "admin_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sipwake/log.h"
#include "sipwake/utf8.h"
#include "sipwake/stats.h"

#define ADMIN_MAX_CONNS 16
#define ADMIN_IDLE_SECS 60
#define ADMIN_SWEEP_MS 1000

struct conn {
	struct conn *next;
	struct admin *a;
	int fd;
	int reg; /* su_root registration index, 0 = none */
	su_wait_t wait[1];
	char in[ADMIN_MAX_LINE + 1];
	size_t in_len;
	char *out; /* answer being written (malloc'd) */
	size_t out_len, out_off;
	uint64_t pending; /* request id of an unanswered push test, 0 = none */
	time_t pending_since;
	time_t last;
	int eof;       /* the peer will send nothing more */
	int close_after; /* close once out is written */
};

static void conn_close(struct conn *c)
{
	struct admin *a = c->a;

	for (struct conn **pp = &a->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->reg > 0)
		su_root_deregister(a->root, c->reg);
	if (c->close_after) {
		/* Unread input would turn the close into a reset that loses our answer. */
		char junk[4096];
		for (int i = 0; i < 16 && recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
			;
	}
	close(c->fd);
	free(c->out);
	free(c);
	a->n_conns--;
}

static void conn_update_mask(struct conn *c)
{
	int ev = c->out ? SU_WAIT_OUT : SU_WAIT_IN;

	su_root_eventmask(c->a->root, c->reg, c->fd, ev);
}

static void conn_process(struct conn *c);

/* Write what is pending. Returns -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (c->out && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out && c->out_off == c->out_len) {
		free(c->out);
		c->out = NULL;
		c->out_len = c->out_off = 0;
		if (c->close_after || (c->eof && !c->in_len)) {
			conn_close(c);
			return -1;
		}
	}
	conn_update_mask(c);
	return 0;
}

/* Queue one answer (a JSON object, taken) as a line; then flush. */
static int conn_answer(struct conn *c, json_t *answer)
{
	char *text = answer ? json_dumps(answer, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	char *line;
	size_t len;

	json_decref(answer);
	if (!text) {
		text = strdup("{\"ok\":false,\"error\":\"out of memory\"}");
		if (!text) {
			conn_close(c);
			return -1;
		}
	}
	len = strlen(text);
	line = malloc(len + 2);
	if (!line) {
		free(text);
		conn_close(c);
		return -1;
	}
	memcpy(line, text, len);
	free(text);
	line[len] = '\n';
	line[len + 1] = 0;
	c->out = line;
	c->out_len = len + 1;
	c->out_off = 0;
	return conn_flush(c);
}

json_t *admin_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b,s:o}", "ok", 0, "error", admin_text(buf));
}

json_t *admin_ok(json_t *result)
{
	if (!result)
		return admin_error("out of memory while building the answer");
	return json_pack("{s:b,s:o}", "ok", 1, "result", result);
}

json_t *admin_text(const char *s)
{
	char *clean;
	json_t *j;

	if (!s)
		return json_null();
	if (utf8_valid(s))
		return json_string(s);
	clean = utf8_clip(s, strlen(s), NULL);
	j = clean ? json_string(clean) : NULL;
	free(clean);
	return j;
}

/* Handle the complete lines in the buffer, one at a time. */
static void conn_process(struct conn *c)
{
	while (!c->out && !c->pending && c->in_len) {
		char *nl = memchr(c->in, '\n', c->in_len);
		size_t used;
		json_t *answer;

		if (!nl)
			break;
		*nl = 0;
		used = (size_t)(nl - c->in) + 1;
		if (nl > c->in && nl[-1] == '\r')
			nl[-1] = 0;
		c->last = time(NULL);
		answer = admin_command(c->a, c->in, &c->pending);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (c->pending) {
			c->pending_since = c->last;
			break; /* the answer comes with admin_push_test_done() */
		}
		if (conn_answer(c, answer) < 0)
			return;
	}
	if (!c->out && !c->pending && c->eof && !c->in_len)
		conn_close(c);
}

static int on_conn(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct conn *c = (struct conn *)arg;
	int ev = su_wait_events(w, c->fd);

	if (c->out) {
		/* Once the answer is out, the requests already buffered go next. */
		if ((ev & (SU_WAIT_OUT | SU_WAIT_ERR | SU_WAIT_HUP)) && conn_flush(c) == 0 &&
		    !c->out)
			conn_process(c);
		return 0;
	}
	for (;;) {
		ssize_t n;

		if (c->in_len >= ADMIN_MAX_LINE && memchr(c->in, '\n', c->in_len))
			break; /* answer the complete requests first */
		if (c->in_len >= ADMIN_MAX_LINE) {
			c->in_len = 0;
			c->close_after = 1;
			log_warn("control socket: request longer than %d bytes; connection closed",
				 ADMIN_MAX_LINE);
			conn_answer(c, admin_error("request line longer than %d bytes",
						   ADMIN_MAX_LINE));
			return 0;
		}
		n = recv(c->fd, c->in + c->in_len, ADMIN_MAX_LINE - c->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(c);
			return 0;
		}
		if (n == 0) {
			/*
			 * The client sends nothing more (sipwakectl half-closes after its
			 * request) but may still wait for answers, a pending push test's
			 * included; a client that is really gone shows when we write.
			 */
			c->eof = 1;
			su_root_eventmask(c->a->root, c->reg, c->fd, 0);
			break;
		}
		c->in_len += (size_t)n;
		c->last = time(NULL);
		if (memchr(c->in + c->in_len - (size_t)n, '\n', (size_t)n))
			break;
	}
	if (c->eof && c->in_len && !memchr(c->in, '\n', c->in_len) &&
	    c->in_len < ADMIN_MAX_LINE) {
		c->in[c->in_len++] = '\n'; /* a last request without its newline */
	}
	conn_process(c);
	return 0;
}

static int on_accept(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct admin *a = (struct admin *)arg;

	for (;;) {
		int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("control socket: accept: %s", strerror(errno));
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (a->n_conns >= ADMIN_MAX_CONNS) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many connections\"}\n";
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("control socket: busy reply not sent");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || su_wait_create(c->wait, fd, SU_WAIT_IN) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->a = a;
		c->fd = fd;
		c->last = time(NULL);
		c->reg = su_root_register(a->root, c->wait, on_conn, (su_wakeup_arg_t *)c, 0);
		if (c->reg <= 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = a->conns;
		a->conns = c;
		a->n_conns++;
	}
}

/* Reap idle connections and push tests that never got their answer. */
static void on_sweep(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	struct admin *a = (struct admin *)arg;
	time_t now = time(NULL);
	struct conn *c = a->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->pending && now - c->pending_since >= ADMIN_PUSH_TEST_TIMEOUT) {
			c->pending = 0;
			conn_answer(c, admin_error("push test: no answer from the push layer "
						   "within %d s",
						   ADMIN_PUSH_TEST_TIMEOUT));
		} else if (!c->pending && now - c->last >= ADMIN_IDLE_SECS) {
			conn_close(c);
		}
	}
}

void admin_push_test_done(struct admin *a, uint64_t req, json_t *result, const char *error)
{
	for (struct conn *c = a ? a->conns : NULL; c; c = c->next) {
		if (c->pending != req || !req)
			continue;
		c->pending = 0;
		c->last = time(NULL);
		if (conn_answer(c, error ? admin_error("%s", error) : admin_ok(result)) == 0)
			conn_process(c);
		return;
	}
	json_decref(result);
}

/* mkdir -p the directory part of path (mode 0750 for what we create). */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = 0;
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * A socket file already at the path: replace it if nobody answers there
 * (left by a daemon that died), refuse if a daemon is listening or the
 * file is something else.
 */
static int clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("control socket %s: the path exists and is not a socket", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Non-blocking: a live daemon with a full backlog answers EAGAIN, not a hang. */
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	if (rc < 0 && errno == EAGAIN)
		rc = 0;
	close(fd);
	if (rc == 0) {
		log_error("control socket %s: another sipwaked is running there", path);
		return -1;
	}
	if (unlink(path) < 0) {
		log_error("control socket %s: cannot remove the stale socket: %s", path,
			  strerror(errno));
		return -1;
	}
	log_info("control socket %s: replaced a stale socket", path);
	return 0;
}

int admin_new(struct admin **out, su_root_t *root, const struct sw_config *cfg,
	      struct registrar *reg, struct store *st)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *path = cfg->admin.socket;
	struct admin *a = calloc(1, sizeof(*a));
	struct stat sb;
	int rc = -1;

	*out = NULL;
	if (!a)
		return -1;
	a->fd = -1;
	a->root = root;
	a->cfg = cfg;
	a->reg = reg;
	a->st = st;
	a->started = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &a->started_mono);
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("control socket %s: path too long", path);
		goto out;
	}
	memcpy(sun.sun_path, path, strlen(path));
	a->path = strdup(path);
	if (!a->path)
		goto out;
	if (make_parent(path) < 0) {
		log_error("control socket %s: cannot create its directory: %s", path,
			  strerror(errno));
		goto out;
	}
	if (clear_stale(path, &sun) < 0)
		goto out;
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || bind(a->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		log_error("control socket %s: cannot bind: %s", path, strerror(errno));
		goto out;
	}
	if (chmod(path, 0660) < 0 || listen(a->fd, ADMIN_MAX_CONNS) < 0 ||
	    stat(path, &sb) < 0) {
		log_error("control socket %s: %s", path, strerror(errno));
		unlink(path);
		goto out;
	}
	a->ino = sb.st_ino;
	a->dev = sb.st_dev;
	if (su_wait_create(a->wait, a->fd, SU_WAIT_IN) < 0 ||
	    (a->reg_idx = su_root_register(root, a->wait, on_accept, (su_wakeup_arg_t *)a, 0)) <= 0) {
		log_error("control socket %s: cannot attach to the event loop", path);
		unlink(path);
		goto out;
	}
	a->sweep = su_timer_create(su_root_task(root), ADMIN_SWEEP_MS);
	if (!a->sweep || su_timer_set_for_ever(a->sweep, on_sweep, (su_timer_arg_t *)a) < 0) {
		log_error("control socket: cannot create its timer");
		goto out;
	}
	admin_hook_gauges(a);
	log_info("control socket listening on %s", path);
	rc = 0;
out:
	if (rc < 0) {
		admin_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

void admin_free(struct admin *a)
{
	struct stat sb;

	if (!a)
		return;
	admin_detach_push(a);
	admin_messages_cancel(a);
	stats_gauge_unhook(a);
	while (a->conns)
		conn_close(a->conns);
	if (a->sweep)
		su_timer_destroy(a->sweep);
	if (a->reg_idx > 0)
		su_root_deregister(a->root, a->reg_idx);
	if (a->fd >= 0) {
		close(a->fd);
		/* Remove the file only if it is still ours (not a successor's). */
		if (a->ino && stat(a->path, &sb) == 0 && sb.st_ino == a->ino && sb.st_dev == a->dev)
			unlink(a->path);
	}
	free(a->path);
	free(a);
}

void admin_set_reload(struct admin *a, admin_reload_fn *fn, void *ctx)
{
	a->reload = fn;
	a->reload_ctx = ctx;
}

void admin_set_push_test(struct admin *a, admin_push_test_fn *fn, void *ctx)
{
	a->push_test = fn;
	a->push_test_ctx = ctx;
}
