/* SPDX-License-Identifier: MIT */
/* Giving the heap back after a burst (see heap.h). */
#include "sipwake/heap.h"

#include <malloc.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"

static size_t peak; /* transactions alive at the most since the last trim */

bool heap_tick(size_t busy)
{
	double t0;

	if (busy >= peak) {
		peak = busy;
		return false;
	}
	if (peak < HEAP_BURST_MIN || busy > peak / 4)
		return false;
	t0 = clock_now_msf();
	malloc_trim(0);
	log_info("heap: a burst is over (%zu transactions, %zu at its peak): free pages "
		 "given back in %.1f ms",
		 busy, peak, clock_now_msf() - t0);
	peak = busy;
	return true;
}
