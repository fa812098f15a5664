/* SPDX-License-Identifier: MIT */
/*
 * Giving memory back to the system after a burst.
 *
 * A re-registration storm holds every request's transactions for up to
 * 32 s (sofia keeps a completed server transaction for 64 x T1): at
 * 3,000 REGISTERs/s that is some 14 KB each, hundreds of megabytes. They
 * are freed afterwards, but glibc gives back only the top of its heap,
 * and what the storm left among them (bindings, database pages) pins the
 * rest: 40,000 REGISTERs left 650 MB resident for 55 MB in use.
 *
 * heap_tick(), run every few seconds, watches the bytes in use; once they
 * have fallen to under half of their peak, by at least 64 MiB, the burst
 * is over, and it asks glibc to return its free pages (malloc_trim). That
 * pass stops the loop for a while (15 ms for 590 MB here, against 90 to
 * 250 ms when trimming in the middle of the burst, whose pages were then
 * faulted in again), so it runs once per burst, not on every tick.
 */
#ifndef SIPWAKE_HEAP_H
#define SIPWAKE_HEAP_H

#include <stdbool.h>

/* Whether it gave memory back (logged at info with the time it took). */
bool heap_tick(void);

#endif
