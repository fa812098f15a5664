#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Per-source request limit (SPEC 8): sip.max_requests_per_source.

sipwaked standalone with max_requests_per_source = 20 (bursts of 40). One
UDP socket sends 120 OPTIONS as fast as it can: the first 40 (the burst)
must be answered 200, the flood must be cut with 503 + Retry-After, and a
second source address (127.0.0.2) is not affected while the first is
limited. After the bucket refills (1.5 s), the first source gets 200 again.
The daemon keeps serving and exits 0 on SIGTERM.
"""
import time

import swlib

N = 120
RATE = 20


def options(c, i):
    return swlib.build_request("OPTIONS", "sip:%s:%d" % c.remote, "udp", c.local,
                               call_id="rl-%d-%d@test" % (c.local[1], i))


def flood(c, n):
    """Send n OPTIONS, then read every answer (bounded); returns [SipMsg]."""
    for i in range(n):
        c.send(options(c, i))
    answers = []
    deadline = time.monotonic() + 5
    while len(answers) < n and time.monotonic() < deadline:
        m = c._read_one(min(deadline, time.monotonic() + 1))
        if m is None:
            break
        answers.append(m)
    return answers


def main(t):
    port = swlib.free_port()
    cfg = swlib.sipwake_config(t.dir, port, fcm=False,
                               extra={"sip": {"max_requests_per_source": RATE}})
    sw = t.sipwaked(cfg)
    edge = (swlib.LOOPBACK, port)

    t.section("a flood from one source")
    with swlib.RawSip("udp", edge, timeout=3) as c:
        answers = flood(c, N)
        codes = [m.status for m in answers]
        ok = codes.count(200)
        limited = [m for m in answers if m.status == 503]
        t.check(len(answers) == N, "every request got an answer (%d of %d)" % (len(answers), N))
        t.check(ok >= 2 * RATE, "the burst (%d) was served: %d x 200" % (2 * RATE, ok))
        t.check(len(limited) > 0, "the flood was cut with 503 (%d x 503)" % len(limited))
        t.check(all(m.get("retry-after") == "1" for m in limited),
                "every 503 carries Retry-After: 1",
                [m.get("retry-after") for m in limited[:3]])

        with swlib.RawSip("udp", edge, timeout=3, host="127.0.0.2") as other:
            other.send(options(other, 0))
            r, _ = other.recv_final()
            t.check(r is not None and r.status == 200,
                    "another source address is not limited meanwhile",
                    r.summary() if r else "no answer")

        time.sleep(1.5)
        c.send(options(c, N + 1))
        r, _ = c.recv_final()
        t.check(r is not None and r.status == 200, "after a pause the source is served again",
                r.summary() if r else "no answer")

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running")
    rc = sw.stop()
    t.check(rc == 0, "SIGTERM: sipwaked exits 0 (exit %s)" % rc)


if __name__ == "__main__":
    swlib.run(main)
