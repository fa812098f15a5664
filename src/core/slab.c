/* SPDX-License-Identifier: MIT */
/* Size-class blocks for long-lived objects (see slab.h). */
#include "sipwake/slab.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define SLAB_GRAIN 32               /* bytes: the step between size classes */
#define SLAB_MAX 4096               /* larger objects are plain mallocs */
#define SLAB_BLOCK (2u << 20)       /* bytes mapped at a time: one transparent huge page */
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN)
#define PREFAULT_STEP (8u << 20)      /* bytes the helper faults in per call */
#define PREFAULT_AHEAD (64u << 20)    /* how far it runs ahead of what is taken */

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PLAIN 1
#endif
#endif
#ifndef SLAB_PLAIN
#define SLAB_PLAIN 0
#endif

struct free_obj {
	struct free_obj *next;
};

static struct {
	struct free_obj *free; /* given back, reused first */
	char *next, *end;      /* what is left of the newest block */
} classes[SLAB_CLASSES];
static size_t mapped;

/*
 * The prefault pool (slab_prefault_begin): blocks are taken from its front
 * by the loader while a helper thread faults in the pages just ahead.
 * Only the atomics are shared with the helper; the pool's bounds are set
 * before it starts and read by it only.
 */
static struct {
	char *base, *end;   /* the region; [base + taken, end) is not handed out yet */
	atomic_size_t taken; /* bytes handed out as blocks */
	atomic_bool stop;
	pthread_t helper;
	bool running;
} pool;

/*
 * bytes of zeroed memory aligned on 2 MiB and asked for huge pages: a
 * million bindings are a gigabyte touched for the first time at start, and
 * with 4 KiB pages the page faults alone took seconds of it.
 */
static char *map_huge(size_t bytes, int flags)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (bytes + page - 1) & ~(page - 1);
	char *p = mmap(NULL, len + SLAB_BLOCK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	char *blk;

	if (p == MAP_FAILED)
		return NULL;
	blk = (char *)(((uintptr_t)p + SLAB_BLOCK - 1) & ~(uintptr_t)(SLAB_BLOCK - 1));
	if (blk > p)
		munmap(p, (size_t)(blk - p));
	/* the rest of the extra block, from the page after the last one asked for */
	munmap(blk + len, (size_t)(p + SLAB_BLOCK - blk));
	madvise(blk, bytes, MADV_HUGEPAGE); /* a hint: without it, only slower */
	return blk;
}

void *slab_table_alloc(size_t n, size_t size)
{
	if (SLAB_PLAIN || n * size < SLAB_BLOCK)
		return calloc(n, size);
	return map_huge(n * size, 0);
}

void slab_table_free(void *p, size_t n, size_t size)
{
	if (SLAB_PLAIN || n * size < SLAB_BLOCK)
		free(p);
	else if (p)
		munmap(p, n * size);
}

static size_t class_of(size_t n)
{
	return (n + SLAB_GRAIN - 1) / SLAB_GRAIN - 1;
}

/* One block: from the prefault pool while it lasts, otherwise mapped now. */
static char *block_new(void)
{
	size_t taken = atomic_load(&pool.taken);

	if (pool.base && pool.base + taken + SLAB_BLOCK <= pool.end) {
		atomic_store(&pool.taken, taken + SLAB_BLOCK);
		return pool.base + taken;
	}
	return map_huge(SLAB_BLOCK, 0);
}

static void *prefault_run(void *arg)
{
	const struct timespec nap = {0, 200 * 1000};
	size_t done = 0, len = (size_t)(pool.end - pool.base);

	(void)arg;
	while (done < len && !atomic_load(&pool.stop)) {
		size_t step = len - done < PREFAULT_STEP ? len - done : PREFAULT_STEP;
		if (done >= atomic_load(&pool.taken) + PREFAULT_AHEAD) {
			nanosleep(&nap, NULL); /* far enough ahead: let the loader catch up */
			continue;
		}
		/* writes nothing: a page the loader has already filled stays as it is */
		if (madvise(pool.base + done, step, MADV_POPULATE_WRITE) < 0) {
			if (errno == EINTR)
				continue; /* again: what was faulted in stays */
			break; /* EINVAL before Linux 5.14, ENOMEM: the loader faults pages itself */
		}
		done += step;
	}
	return NULL;
}

/*
 * Whether the kernel charges every writable private mapping in full
 * (vm.overcommit_memory = 2 ignores MAP_NORESERVE): then a generous pool
 * would take commit charge the load itself may need.
 */
static bool strict_overcommit(void)
{
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
	int mode = 0;

	if (f) {
		if (fscanf(f, "%d", &mode) != 1)
			mode = 0;
		fclose(f);
	}
	return mode == 2;
}

int slab_prefault_begin(size_t bytes)
{
	sigset_t all, old;
	int rc;

	if (SLAB_PLAIN || pool.base || bytes < 2 * PREFAULT_STEP || strict_overcommit())
		return 0;
	bytes = (bytes + SLAB_BLOCK - 1) & ~(size_t)(SLAB_BLOCK - 1);
	/* only what is taken, and what the helper runs ahead, is ever backed */
	if (!(pool.base = map_huge(bytes, MAP_NORESERVE)))
		return -1;
	pool.end = pool.base + bytes;
	atomic_store(&pool.taken, 0);
	atomic_store(&pool.stop, false);
	/* the helper takes no signal: they stay the main loop's */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&pool.helper, NULL, prefault_run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pool.running = rc == 0; /* without it, the pool is still used: only not ahead */
	return pool.running ? 1 : 0;
}

void slab_prefault_end(void)
{
	size_t taken;

	if (!pool.base)
		return;
	atomic_store(&pool.stop, true);
	if (pool.running)
		pthread_join(pool.helper, NULL);
	pool.running = false;
	taken = atomic_load(&pool.taken);
	if (pool.base + taken < pool.end)
		munmap(pool.base + taken, (size_t)(pool.end - pool.base) - taken);
	pool.base = pool.end = NULL;
}

void *slab_alloc(size_t n)
{
	size_t c, size;
	void *p;

	if (SLAB_PLAIN || n == 0 || n > SLAB_MAX)
		return calloc(1, n ? n : 1);
	c = class_of(n);
	size = (c + 1) * SLAB_GRAIN;
	if (classes[c].free) {
		p = classes[c].free;
		classes[c].free = classes[c].free->next;
		memset(p, 0, size);
		return p;
	}
	if (classes[c].next + size > classes[c].end || !classes[c].next) {
		char *blk = block_new();
		if (!blk)
			return NULL;
		/* the tail of the old block (less than one object) is lost */
		classes[c].next = blk;
		classes[c].end = blk + SLAB_BLOCK;
		mapped += SLAB_BLOCK;
	}
	p = classes[c].next; /* zeroed: fresh from the kernel */
	classes[c].next += size;
	return p;
}

void slab_free(void *p, size_t n)
{
	struct free_obj *o = p;
	size_t c;

	if (!p)
		return;
	if (SLAB_PLAIN || n == 0 || n > SLAB_MAX) {
		free(p);
		return;
	}
	c = class_of(n);
	o->next = classes[c].free;
	classes[c].free = o;
}

size_t slab_bytes(void)
{
	return mapped;
}
