/* SPDX-License-Identifier: MIT */
/*
 * When each binding next needs the registrar's tick, in one binary
 * min-heap: its expiry, the wake-up push announced before it
 * (push.wakeup_before_expiry), and its upstream refresh (keepalive.c).
 * Whatever changes one of those calls registrar_schedule(); the tick takes
 * only what is due, so an idle registrar with a million bindings does no
 * work per binding per second (issue 14).
 */
#include "registrar_int.h"

#include <stdint.h>
#include <stdlib.h>

#define NEVER INT64_MAX

/* The wake-up announcement time of b, or NEVER (not a push binding, announced, or too short). */
static int64_t wakeup_at(const struct registrar *r, const struct binding *b)
{
	int64_t lead = r->cfg->push.wakeup_before_expiry;

	/* not for a registration no longer than the lead time: the app would be
	 * woken right after each registration, forever */
	if (lead <= 0 || !binding_is_push(b) || b->wakeup_for == b->expires || b->expires - b->updated <= lead)
		return NEVER;
	return b->expires - lead;
}

bool registrar_wakeup_due(const struct registrar *r, const struct binding *b, int64_t now)
{
	return b->expires > now && wakeup_at(r, b) <= now;
}

static int64_t next_due(const struct registrar *r, const struct binding *b)
{
	int64_t due = b->expires, w = wakeup_at(r, b);
	const struct upleg *up = b->up;

	if (w < due)
		due = w;
	if (up && !keepalive_busy(b) && up->next_try && up->next_try < due)
		due = up->next_try;
	return due;
}

static void put(struct registrar *r, size_t i, struct binding *b)
{
	r->heap[i] = b;
	b->heap_pos = (uint32_t)i + 1;
}

static void sift_up(struct registrar *r, size_t i)
{
	struct binding *b = r->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (r->heap[parent]->due <= b->due)
			break;
		put(r, i, r->heap[parent]);
		i = parent;
	}
	put(r, i, b);
}

static void sift_down(struct registrar *r, size_t i)
{
	struct binding *b = r->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= r->heap_len)
			break;
		if (c + 1 < r->heap_len && r->heap[c + 1]->due < r->heap[c]->due)
			c++;
		if (b->due <= r->heap[c]->due)
			break;
		put(r, i, r->heap[c]);
		i = c;
	}
	put(r, i, b);
}

void registrar_unschedule(struct registrar *r, struct binding *b)
{
	size_t i;
	struct binding *last;

	if (!b->heap_pos)
		return;
	i = b->heap_pos - 1;
	b->heap_pos = 0;
	last = r->heap[--r->heap_len];
	if (last == b)
		return;
	put(r, i, last);
	if (i > 0 && r->heap[(i - 1) / 2]->due > last->due)
		sift_up(r, i);
	else
		sift_down(r, i);
}

void registrar_schedule(struct registrar *r, struct binding *b)
{
	int64_t due = next_due(r, b);

	if (b->heap_pos) {
		int64_t old = b->due;
		b->due = due;
		if (due < old)
			sift_up(r, b->heap_pos - 1);
		else if (due > old)
			sift_down(r, b->heap_pos - 1);
		return;
	}
	if (r->heap_len == r->heap_cap && registrar_schedule_reserve(r, r->heap_cap * 2) < 0) {
		/* Without room the binding is not forgotten: a tick finds it via
		 * the retry list (registrar_take_due) once memory is back. */
		r->unscheduled = true;
		return;
	}
	b->due = due;
	put(r, r->heap_len++, b);
	sift_up(r, r->heap_len - 1);
}

int registrar_schedule_reserve(struct registrar *r, size_t n)
{
	struct binding **h;

	if (n < 1024)
		n = 1024;
	if (n <= r->heap_cap)
		return 0;
	if (!(h = realloc(r->heap, n * sizeof(*h))))
		return -1;
	r->heap = h;
	r->heap_cap = n;
	return 0;
}

size_t registrar_take_due(struct registrar *r, int64_t now, struct binding **out, size_t max)
{
	size_t n = 0;

	while (n < max && r->heap_len && r->heap[0]->due <= now) {
		struct binding *b = r->heap[0];
		registrar_unschedule(r, b);
		out[n++] = b;
	}
	return n;
}

static void schedule_each(void *ctx, struct binding *b)
{
	registrar_schedule(ctx, b);
}

void registrar_reschedule_all(struct registrar *r)
{
	/* Every binding again (a reload changed the wake-up lead time, or memory
	 * failed once): O(n), never from the tick but in that case. */
	for (size_t i = 0; i < r->heap_len; i++)
		r->heap[i]->heap_pos = 0;
	r->heap_len = 0;
	r->unscheduled = false;
	registrar_each(r, schedule_each, r);
}
