/* SPDX-License-Identifier: MIT */
/*
 * heap_tick: nothing for a small burst, nor while a burst's transactions
 * grow or fall a little; once it is over, its freed pages go back to the
 * system although live blocks are scattered among them (which glibc's own
 * trimming of the top of the heap leaves), and only once.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sipwake/heap.h"

/* Resident bytes of this process. */
static long resident(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * sysconf(_SC_PAGESIZE);
}

int main(void)
{
	enum { N = 300000, SIZE = 480, PIN_EVERY = 64 };
	static char *burst[N], *pins[(N + PIN_EVERY - 1) / PIN_EVERY];
	long before, after;

	CHECK(!heap_tick(HEAP_BURST_MIN - 1) && !heap_tick(0)); /* too small a burst */
	/* ~140 MB of transactions, with a long-lived block every 30 KB among them */
	for (int i = 0; i < N; i++) {
		burst[i] = malloc(SIZE);
		CHECK(burst[i] != NULL);
		for (int j = 0; burst[i] && j < SIZE; j += 64)
			burst[i][j] = 1; /* resident */
		if (i % PIN_EVERY == 0)
			pins[i / PIN_EVERY] = malloc(40);
	}
	CHECK(!heap_tick(2 * HEAP_BURST_MIN)); /* the burst at its peak */
	for (int i = 0; i < N / 10; i++) {
		free(burst[i]);
		burst[i] = NULL;
	}
	CHECK(!heap_tick(HEAP_BURST_MIN)); /* half of it is still there */
	for (int i = N / 10; i < N; i++) {
		free(burst[i]);
		burst[i] = NULL;
	}
	before = resident();
#if UNDER_ASAN
	CHECK(heap_tick(HEAP_BURST_MIN / 10)); /* ASan's allocator keeps its pages: only run it */
	(void)before;
	(void)after;
	printf("skipped under ASan: what the trim gives back\n");
#else
	CHECK(heap_tick(HEAP_BURST_MIN / 10)); /* over */
	after = resident();
	CHECK(before - after >= (100L << 20)); /* most of the 140 MB went back */
	CHECK(!heap_tick(0)); /* once per burst */
#endif
	for (int i = 0; i < (N + PIN_EVERY - 1) / PIN_EVERY; i++)
		free(pins[i]);
	return CHECK_RESULT();
}
