#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the network can make sipwaked hold is bounded (issue 8 item 7,
docs/config.md "Limits"). Standalone mode, FCM configured (pushes
go nowhere), small bounds: registrar.max_bindings = 6, messages.max_total
= 2, messages.max_per_aor = 1.
  - MESSAGEs to sleeping push phones (m1, m2, m3) are stored (202) up to
    the bounds: the second for one user -> 480 Mailbox Full, the third in
    all -> 503 Message Store Full with Retry-After;
  - with those three bindings, three more users register; a fourth gets
    503 Registrar Full with
    Retry-After; a refresh of an existing binding still gets 200, and so
    does a new one once a user unregistered;
  - a Contact URI over 8 KiB -> 400, nothing stored.
sipwaked exits 0 on SIGTERM.
"""
import swlib

DOM = swlib.DOMAIN


def register(c, user, expires=600, contact=None):
    ct = contact or "<sip:%s@%s:%d>" % (user, c.local[0], c.local[1])
    data = swlib.build_request("REGISTER", "sip:%s" % DOM, c.transport, c.local,
                               from_uri="sip:%s@%s" % (user, DOM),
                               call_id="lim-%s-%d@test" % (user, c.local[1]),
                               cseq=register.cseq, headers=[("Contact", ct),
                                                            ("Expires", str(expires))])
    register.cseq += 1
    f, _ = c.request(data, timeout=3)
    return f


register.cseq = 1


def message(edge, user):
    with swlib.RawSip("udp", edge, timeout=5) as c:
        f, _ = c.request(swlib.build_request(
            "MESSAGE", "sip:%s@%s" % (user, DOM), "udp", c.local, to_uri="sip:%s@%s" % (user, DOM),
            headers=[("Content-Type", "text/plain")], body="hello " + user), timeout=8)
    return f


def summary(f):
    return f.summary() if f is not None else "no final response"


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=True, extra={
        "registrar": {"max_bindings": 6},
        "messages": {"max_total": 2, "max_per_aor": 1}}))
    edge = (swlib.LOOPBACK, port)

    t.section("stored messages")
    for user in ("m1", "m2", "m3"):
        with swlib.RawSip("tcp", edge, timeout=3) as c:
            f = register(c, user, contact="<sip:%s@%s:%d;transport=tcp%s>" % (
                user, c.local[0], c.local[1], swlib.push_params("fcm")))
        t.require(f is not None and f.status == 200, "%s registers (push, then sleeps)" % user,
                  summary(f))
    f = message(edge, "m1")
    t.check(f is not None and f.status == 202, "MESSAGE to m1 (asleep) -> 202 stored",
            summary(f))
    f = message(edge, "m1")
    t.check(f is not None and f.status == 480 and "Mailbox" in (f.reason or ""),
            "a second one for m1 -> 480 Mailbox Full (max_per_aor 1)", summary(f))
    f = message(edge, "m2")
    t.check(f is not None and f.status == 202, "MESSAGE to m2 -> 202 stored", summary(f))
    f = message(edge, "m3")
    t.check(f is not None and f.status == 503, "a third in all -> 503 (max_total 2)", summary(f))
    t.check(f is not None and f.get("retry-after"), "with Retry-After",
            f.get("retry-after") if f else None)

    t.section("registrar.max_bindings")
    socks = [swlib.RawSip("udp", edge, timeout=3) for _ in range(4)]
    for s in socks:
        t.on_cleanup(s.close)
    for i in range(3):
        f = register(socks[i], "b%d" % i)
        t.check(f is not None and f.status == 200, "user b%d registers -> 200" % i, summary(f))
    f = register(socks[3], "b3")
    t.check(f is not None and f.status == 503, "a fourth binding -> 503", summary(f))
    t.check(f is not None and f.get("retry-after"), "with Retry-After",
            f.get("retry-after") if f else None)
    f = register(socks[0], "b0")
    t.check(f is not None and f.status == 200, "a refresh of an existing binding -> 200",
            summary(f))
    f = register(socks[1], "b1", expires=0)
    t.check(f is not None and f.status == 200, "b1 unregisters -> 200", summary(f))
    f = register(socks[3], "b3")
    t.check(f is not None and f.status == 200, "then the new binding fits -> 200", summary(f))

    t.section("Contact length")
    with swlib.RawSip("udp", edge, timeout=3) as c:
        f = register(c, "huge", contact="<sip:huge@%s:%d;x=%s>" % (c.local[0], c.local[1],
                                                                  "h" * 9000))
    t.check(f is not None and f.status == 400, "a 9 KB Contact -> 400", summary(f))

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
