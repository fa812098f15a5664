/* SPDX-License-Identifier: MIT */
/*
 * The size-class allocator: zeroed objects, reuse of freed ones, sizes past
 * its classes, and blocks taken from the prefault pool and past its end.
 */
#include "check.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sipwake/slab.h"

/* Whether this kernel has MADV_POPULATE_WRITE (5.14), which the helper uses. */
static bool kernel_populates(void)
{
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok = p != MAP_FAILED && madvise(p, len, 23 /* MADV_POPULATE_WRITE */) == 0;

	if (p != MAP_FAILED)
		munmap(p, len);
	return ok;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Whether the bytes after the block holding first (the first object from
 * the pool) become resident within a second without being touched.
 */
static bool ahead(const unsigned char *first, size_t bytes)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t huge = (uintptr_t)2 << 20;
	unsigned char *start = (unsigned char *)(((uintptr_t)first + huge) & ~(huge - 1));
	size_t step = bytes / page / 64;
	unsigned char vec[64];

	for (int tries = 0; tries < 100; tries++) {
		size_t in = 0;
		for (size_t i = 0; i < 64; i++)
			if (mincore(start + i * step * page, page, &vec[i]) == 0 && (vec[i] & 1))
				in++;
		if (in == 64)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * Objects allocated while a pool of pool_mb is faulted in ahead: zeroed and
 * intact, also once the pool ends (its unused tail is unmapped) and when
 * they outgrow the pool. Returns how many were wrong. (Sizes none of the
 * objects above used, so that none is reused from a free list.)
 */
static int prefaulted(size_t pool_mb, size_t count, size_t size)
{
	unsigned char **objs = calloc(count, sizeof(*objs));
	size_t before = slab_bytes();
	int bad = 0, helper;

	if (!objs || (helper = slab_prefault_begin(pool_mb << 20)) < 0) {
		free(objs);
		return 1;
	}
	for (size_t i = 0; i < count; i++) {
		objs[i] = slab_alloc(size);
		if (!objs[i] || !all_zero(objs[i], size))
			bad++;
		else
			memset(objs[i], (int)(i & 0x7f) + 1, size);
		/* the helper faults in what comes next before it is asked for */
		if (i == 0 && helper == 1 && kernel_populates() && objs[0] &&
		    !ahead(objs[0], 16u << 20))
			bad++;
	}
	slab_prefault_end();
	for (size_t i = 0; i < count && !bad; i++)
		if (objs[i][0] != (i & 0x7f) + 1 || objs[i][size - 1] != (i & 0x7f) + 1)
			bad++;
	/* blocks are counted as they are taken (under ASan each object is a calloc) */
	if (!UNDER_ASAN && slab_bytes() - before < count * size)
		bad++;
	for (size_t i = 0; i < count; i++)
		slab_free(objs[i], size);
	free(objs);
	return bad;
}

int main(void)
{
	enum { N = 20000 };
	static unsigned char *objs[N];
	size_t sizes[] = {1, 31, 32, 33, 300, 1000, 4096, 4097, 70000};
	int bad = 0;

	/* Many objects of several sizes: zeroed, distinct, writable to the last byte. */
	for (int i = 0; i < N; i++) {
		size_t n = sizes[i % 9];
		objs[i] = slab_alloc(n);
		if (!objs[i] || !all_zero(objs[i], n))
			bad++;
		else
			memset(objs[i], 0xa5, n);
	}
	CHECK(bad == 0);
	for (int i = 0; i < N; i++)
		if (objs[i][sizes[i % 9] - 1] != 0xa5)
			bad++;
	CHECK(bad == 0); /* no object overlapped another */
	/* Freed ones come back zeroed, and are reused rather than new memory mapped. */
	for (int i = 0; i < N; i += 2)
		slab_free(objs[i], sizes[i % 9]);
	size_t before = slab_bytes();
	for (int i = 0; i < N; i += 2) {
		size_t n = sizes[i % 9];
		objs[i] = slab_alloc(n);
		if (!objs[i] || !all_zero(objs[i], n))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(slab_bytes() == before);
	for (int i = 0; i < N; i++)
		slab_free(objs[i], sizes[i % 9]);
	slab_free(NULL, 10);
	CHECK(prefaulted(128, 100000, 352) == 0);  /* 35 MB out of a 128 MiB pool */
	CHECK(prefaulted(20, 200000, 224) == 0);   /* 45 MB: past the pool's end */
	CHECK(prefaulted(1, 1000, 96) == 0);       /* too small to start a helper */
	return CHECK_RESULT();
}
