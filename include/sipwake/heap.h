/* SPDX-License-Identifier: MIT */
/*
 * Giving memory back to the system after a burst.
 *
 * A re-registration storm holds every request's transactions for up to
 * 32 s (sofia keeps a completed server transaction for 64 x T1): at
 * 3,000 REGISTERs/s that is some 14 KB each, hundreds of megabytes. They
 * are freed afterwards, but glibc gives back only the top of its heap,
 * and what the storm left among them pins the rest: 40,000 REGISTERs left
 * 650 MB resident for 55 MB in use.
 *
 * heap_tick(busy), run every few seconds with the number of transactions
 * alive, watches that number; once it has fallen to a quarter of its peak,
 * from a peak of at least HEAP_BURST_MIN, the burst is over, and it asks
 * glibc to return its free pages (malloc_trim). That pass stops the loop
 * for a while (15 ms for 590 MB here, against 90 to 250 ms when trimming
 * in the middle of the burst, whose pages were then faulted in again), so
 * it runs once per burst. The transaction count is read, not the heap:
 * mallinfo2() walks every free chunk, 35 ms for a fragmented gigabyte.
 */
#ifndef SIPWAKE_HEAP_H
#define SIPWAKE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#define HEAP_BURST_MIN 5000 /* transactions: ~70 MB; smaller bursts are left alone */

/* Whether it gave memory back (logged at info with the time it took). */
bool heap_tick(size_t busy);

#endif
