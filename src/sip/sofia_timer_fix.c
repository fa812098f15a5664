/* SPDX-License-Identifier: MIT */
/*
 * Fix for a busy loop in sofia-sip 1.12.11 (su_timer.c): the loop's poll
 * timeout is su_duration(next timer, now), and su_duration() cuts the
 * difference to whole milliseconds, so a timer due in 0.9 ms gives a
 * timeout of 0. epoll_wait() then returns at once, the timer is not due
 * yet, and the loop polls again, about twenty times 40 µs apart, before
 * every timer. With a few timers per call (nta's retransmission and
 * transaction timers) that was most of sipwaked's CPU at 100 calls/s
 * (86,505 of 92,538 syscalls in 5 s were empty epoll_wait calls;
 * bench/calls).
 *
 * This file is linked into sipwaked itself (not the layer library) and
 * interposes su_duration(): libsofia's own calls go through its PLT. It
 * computes the same difference, but rounds a positive one up to the next
 * millisecond, so the poll sleeps until the timer is due (at most 1 ms
 * late, never early). Callers that compare a deadline with now see a
 * deadline less than a millisecond ahead as not yet passed, which it is.
 * Negative differences and the clamping at SU_DURATION_MAX are as before.
 */
#include <stdint.h>

#include <sofia-sip/su_time.h>

su_duration_t su_duration(su_time_t const t1, su_time_t const t2)
{
	int64_t us = ((int64_t)t1.tv_sec - (int64_t)t2.tv_sec) * 1000000 +
		     ((int64_t)t1.tv_usec - (int64_t)t2.tv_usec);
	int64_t ms = us > 0 ? (us + 999) / 1000 : us / 1000;

	if (ms > SU_DURATION_MAX)
		return SU_DURATION_MAX;
	if (ms < -SU_DURATION_MAX)
		return -SU_DURATION_MAX;
	return (su_duration_t)ms;
}
