/* SPDX-License-Identifier: MIT */
/* Giving the heap back after a burst (see heap.h). */
#include "sipwake/heap.h"

#include <malloc.h>
#include <stddef.h>

#include "sipwake/clock.h"
#include "sipwake/log.h"

#define TRIM_MIN_BYTES ((size_t)64 << 20) /* a burst smaller than this is left alone */

static size_t peak; /* bytes in use at the most since the last trim */

bool heap_tick(void)
{
	struct mallinfo2 mi = mallinfo2();
	size_t used = mi.uordblks + mi.hblkhd;
	double t0;

	if (used >= peak) {
		peak = used;
		return false;
	}
	if (peak - used < TRIM_MIN_BYTES || used > peak / 2 || mi.fordblks < TRIM_MIN_BYTES)
		return false;
	t0 = clock_now_msf();
	malloc_trim(0);
	log_info("heap: a burst is over (%zu MB in use, %zu MB at its peak): its free pages "
		 "were given back in %.1f ms",
		 used >> 20, peak >> 20, clock_now_msf() - t0);
	peak = used;
	return true;
}
