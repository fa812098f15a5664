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
 * computes the same difference, but rounds one of more than 200 us up to
 * the next millisecond, so the poll sleeps until the timer is due (at most
 * 1 ms late, never early); closer than that it is still polled for, as
 * before: sleeping a whole millisecond on those added 1.2 ms to a wake-up
 * push (bench/wake, INVITE -> push p50 1.24 -> 2.44 ms; 1.09 ms with the
 * window). Callers that compare a deadline with now see one between
 * 0.2 and 1 ms ahead as not yet passed, which it is. Negative differences
 * and the clamping at SU_DURATION_MAX are as before.
 */
#include <stdint.h>

#include <sofia-sip/su_time.h>

/* Closer than this, a timer is still polled for rather than slept on. */
#define SU_TIMER_SPIN_US 200

su_duration_t su_duration(su_time_t const t1, su_time_t const t2)
{
	int64_t us = ((int64_t)t1.tv_sec - (int64_t)t2.tv_sec) * 1000000 +
		     ((int64_t)t1.tv_usec - (int64_t)t2.tv_usec);
	int64_t ms = us > SU_TIMER_SPIN_US ? (us + 999) / 1000 : us / 1000;

	if (ms > SU_DURATION_MAX)
		return SU_DURATION_MAX;
	if (ms < -SU_DURATION_MAX)
		return -SU_DURATION_MAX;
	return (su_duration_t)ms;
}
