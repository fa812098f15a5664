/* SPDX-License-Identifier: MIT */
/*
 * Monotonic time in milliseconds, for intervals (rate limits, latencies,
 * batching windows). Never the wall clock: it does not jump.
 */
#ifndef SIPWAKE_CLOCK_H
#define SIPWAKE_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t clock_now_ms(void);
/* The same with sub-millisecond precision. */
double clock_now_msf(void);

#endif
