/* SPDX-License-Identifier: MIT */
/*
 * hiredis' async context driven by the daemon's su_root: hiredis says when
 * it wants to read or write (its ev hooks), we keep one su_wait_t for its
 * socket with those events, and the wakeup hands them back to
 * redisAsyncHandleRead/Write. The same pattern as the curl multi glue in
 * src/push/http.c. Nothing here blocks.
 */
#include "redis_int.h"

#include <stdbool.h>
#include <stdlib.h>

#include <sofia-sip/su_wait.h>

struct redis_watch {
	su_root_t *root;
	redisAsyncContext *ac;
	int index;  /* su_root registration, 0 = none */
	int events; /* SU_WAIT_IN / SU_WAIT_OUT wanted */
	bool in_wakeup; /* hiredis may free the context while we call it */
	bool dead;      /* ... then cleanup only marks us, the wakeup frees */
};

static int redis_wakeup(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
	struct redis_watch *rw = (struct redis_watch *)arg;
	int ev = su_wait_events(w, rw->ac->c.fd);

	rw->in_wakeup = true;
	if (ev & (SU_WAIT_IN | SU_WAIT_ERR | SU_WAIT_HUP))
		redisAsyncHandleRead(rw->ac);
	if (!rw->dead && (ev & SU_WAIT_OUT))
		redisAsyncHandleWrite(rw->ac);
	rw->in_wakeup = false;
	if (rw->dead)
		free(rw);
	return 0;
}

/* Make the registration ask for rw->events (registering on first use). */
static void redis_update(struct redis_watch *rw)
{
	su_wait_t w;

	if (rw->dead)
		return;
	if (rw->index > 0) {
		su_root_eventmask(rw->root, rw->index, rw->ac->c.fd, rw->events);
		return;
	}
	if (su_wait_create(&w, rw->ac->c.fd, rw->events) < 0)
		return;
	rw->index = su_root_register(rw->root, &w, redis_wakeup, (su_wakeup_arg_t *)rw, 0);
	if (rw->index <= 0) {
		su_wait_destroy(&w);
		rw->index = 0;
	}
}

static void add_read(void *p)
{
	struct redis_watch *rw = p;

	if (!(rw->events & SU_WAIT_IN)) {
		rw->events |= SU_WAIT_IN;
		redis_update(rw);
	}
}

static void del_read(void *p)
{
	struct redis_watch *rw = p;

	if (rw->events & SU_WAIT_IN) {
		rw->events &= ~SU_WAIT_IN;
		redis_update(rw);
	}
}

static void add_write(void *p)
{
	struct redis_watch *rw = p;

	if (!(rw->events & SU_WAIT_OUT)) {
		rw->events |= SU_WAIT_OUT;
		redis_update(rw);
	}
}

static void del_write(void *p)
{
	struct redis_watch *rw = p;

	if (rw->events & SU_WAIT_OUT) {
		rw->events &= ~SU_WAIT_OUT;
		redis_update(rw);
	}
}

static void cleanup(void *p)
{
	struct redis_watch *rw = p;

	if (rw->index > 0)
		su_root_deregister(rw->root, rw->index);
	rw->index = 0;
	if (rw->in_wakeup)
		rw->dead = true;
	else
		free(rw);
}

int redis_loop_attach(redisAsyncContext *ac, su_root_t *root)
{
	struct redis_watch *rw;

	if (ac->ev.data)
		return -1;
	rw = calloc(1, sizeof(*rw));
	if (!rw)
		return -1;
	rw->root = root;
	rw->ac = ac;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = rw;
	return 0;
}
