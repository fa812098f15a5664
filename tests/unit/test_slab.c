/* SPDX-License-Identifier: MIT */
/* The size-class allocator: zeroed objects, reuse of freed ones, sizes past its classes. */
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sipwake/slab.h"

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
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
	return CHECK_RESULT();
}
