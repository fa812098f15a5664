/* SPDX-License-Identifier: MIT */
/* Size-class blocks for long-lived objects (see slab.h). */
#include "sipwake/slab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_GRAIN 32               /* bytes: the step between size classes */
#define SLAB_MAX 4096               /* larger objects are plain mallocs */
#define SLAB_BLOCK (2u << 20)       /* bytes mapped at a time: one transparent huge page */
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN)

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
 * bytes of zeroed memory aligned on 2 MiB and asked for huge pages: a
 * million bindings are a gigabyte touched for the first time at start, and
 * with 4 KiB pages the page faults alone took seconds of it.
 */
static char *map_huge(size_t bytes)
{
	char *p = mmap(NULL, bytes + SLAB_BLOCK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *blk;

	if (p == MAP_FAILED)
		return NULL;
	blk = (char *)(((uintptr_t)p + SLAB_BLOCK - 1) & ~(uintptr_t)(SLAB_BLOCK - 1));
	if (blk > p)
		munmap(p, (size_t)(blk - p));
	munmap(blk + bytes, (size_t)(p + SLAB_BLOCK - blk)); /* the rest of the extra block */
	madvise(blk, bytes, MADV_HUGEPAGE); /* a hint: without it, only slower */
	return blk;
}

void *slab_table_alloc(size_t n, size_t size)
{
	if (SLAB_PLAIN || n * size < SLAB_BLOCK)
		return calloc(n, size);
	return map_huge(n * size);
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
		char *blk = map_huge(SLAB_BLOCK);
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
