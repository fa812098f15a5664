#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One datagram must not kill sipwaked (issue 12): a repeated
single-instance header on every forwarding path.

sofia-sip 1.12.11 keeps a second Max-Forwards, Subject, Priority,
User-Agent, ... chained behind the first, and aborts when a copy of such a
message is sent. Standalone mode, fake APNs. Over UDP and TCP, from a
stranger's raw socket:
  - ACK with two Max-Forwards, loose-routed through us to a third host:
    dropped (nothing reaches that host);
  - OPTIONS to a registered (awake, UDP) user with a repeated header, for
    each of Subject, Max-Forwards, Priority, User-Agent, Expires, Date,
    Organization, Timestamp: 400 naming the header, the phone sees nothing;
  - INVITE and MESSAGE with two Max-Forwards to a sleeping push phone:
    400 naming Max-Forwards, no push;
  - a stray in-dialog BYE (To-tag, Route through us) with two User-Agent
    headers: 400;
  - critical headers (Call-ID, CSeq, From, To) repeated: 400 (nta's own);
  - a response with two Subject headers from the awake phone: the caller
    gets 502, not the broken response.
After every case sipwaked still answers OPTIONS. It exits 0 on SIGTERM.
"""
import socket

import swlib
import wakelib as W

VOIP, REMOTE = "%064x" % 0xD0B1, "%064x" % 0xD0B2


def alive(t, tr, edge, label):
    r = swlib.sip_options(tr, edge, timeout=3)
    t.check(r is not None, "%s %s: sipwaked still answers OPTIONS" % (tr, label))
    if r is None:
        raise swlib.CheckFailed("sipwaked died after %s over %s" % (label, tr))


def twice(name, first, second):
    return [(name, first), (name, second)]


def expect_400(t, tr, edge, label, data, header):
    with swlib.RawSip(tr, edge, timeout=3) as c:
        final, _ = c.request(data(c), timeout=3)
    ok = final is not None and final.status == 400
    t.check(ok, "%s %s -> 400" % (tr, label), final.summary() if final else "no final response")
    if ok and header:
        t.check(header.lower() in (final.reason or "").lower(),
                "%s %s: the 400 names %s" % (tr, label, header), final.reason)
    alive(t, tr, edge, label)


def main(t):
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, extra={"push": {"call_timeout": 5}}))
    edge = (swlib.LOOPBACK, port)
    dom = swlib.DOMAIN

    awake = W.started_phone(t, "udp", edge, "awake").connect()
    r = awake.register()
    t.require(r is not None and r.status == 200, "awake phone registers -> 200", awake.trace())
    sleeper = W.started_phone(t, "tcp", edge, "sleeper", pn=W.apns2_pn(REMOTE, VOIP),
                              inst=W.instance(91)).connect()
    r = sleeper.register()
    t.require(r is not None and r.status == 200, "push phone registers -> 200", sleeper.trace())
    sleeper.close()

    third = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    third.bind((swlib.LOOPBACK, 0))
    t.on_cleanup(third.close)
    third_port = third.getsockname()[1]

    for tr in ("udp", "tcp"):
        t.section("repeated headers over %s" % tr)

        with swlib.RawSip(tr, edge, timeout=2) as c:
            c.send(swlib.build_request(
                "ACK", "sip:y@127.0.0.1:%d" % third_port, tr, c.local, to_uri="sip:y@%s" % dom,
                headers=[("Route", "<sip:%s:%d;lr>, <sip:127.0.0.1:%d;lr>" % (
                    swlib.LOOPBACK, port, third_port)), ("Max-Forwards", "69")]))
        third.settimeout(1.0)
        try:
            got = third.recv(65535)
        except socket.timeout:
            got = b""
        t.check(got == b"", "%s ACK with two Max-Forwards routed to a third host: dropped" % tr,
                got[:200])
        alive(t, tr, edge, "ACK with two Max-Forwards")

        for name, v1, v2 in [("Subject", "one", "two"), ("Max-Forwards", "70", "69"),
                             ("Priority", "urgent", "normal"), ("User-Agent", "a", "b"),
                             ("Expires", "10", "20"),
                             ("Date", "Sat, 13 Nov 2010 23:29:00 GMT",
                              "Sun, 14 Nov 2010 23:29:00 GMT"),
                             ("Organization", "a", "b"), ("Timestamp", "1", "2")]:
            expect_400(t, tr, edge, "OPTIONS to a registered user with two %s" % name,
                       lambda c, n=name, a=v1, b=v2: swlib.build_request(
                           "OPTIONS", "sip:awake@%s" % dom, tr, c.local,
                           to_uri="sip:awake@%s" % dom, omit=("Max-Forwards",),
                           headers=([("Max-Forwards", "70")] if n != "Max-Forwards" else [])
                           + twice(n, a, b)), name)
        stray = awake.wait(lambda m: m.method == "OPTIONS", timeout=0.5)
        t.check(stray is None, "%s: the awake phone never got one of them" % tr,
                stray.summary() if stray else None)

        for method in ("INVITE", "MESSAGE"):
            expect_400(t, tr, edge, "%s to a sleeping push phone with two Max-Forwards" % method,
                       lambda c, m=method: swlib.build_request(
                           m, "sip:sleeper@%s" % dom, tr, c.local, to_uri="sip:sleeper@%s" % dom,
                           headers=[("Max-Forwards", "69"), ("Content-Type", "text/plain")],
                           body="hello"), "Max-Forwards")

        expect_400(t, tr, edge, "in-dialog BYE through us with two User-Agent",
                   lambda c: swlib.build_request(
                       "BYE", "sip:awake@127.0.0.1:%d" % awake.port, tr, c.local,
                       to_uri="sip:awake@%s" % dom,
                       headers=[("Route", "<sip:%s:%d;lr>" % (swlib.LOOPBACK, port))]
                       + twice("User-Agent", "x", "y")), "User-Agent")

        for name, v2 in [("Call-ID", "other@h"), ("CSeq", "2 OPTIONS"),
                         ("From", "<sip:z@%s>;tag=9" % dom), ("To", "<sip:q@%s>" % dom)]:
            expect_400(t, tr, edge, "OPTIONS with two %s" % name,
                       lambda c, n=name, v=v2: swlib.build_request(
                           "OPTIONS", "sip:awake@%s" % dom, tr, c.local,
                           to_uri="sip:awake@%s" % dom, headers=[(n, v)]), name)

    pushes = [x for x in env.apns.requests() if x.get("token") in (VOIP, REMOTE)]
    t.check(not pushes, "no push for any refused request", W.summarize_pushes(pushes))

    t.section("a relayed response with a repeated header")
    for tr in ("udp", "tcp"):
        with swlib.RawSip(tr, edge, timeout=5) as c:
            c.send(swlib.build_request("OPTIONS", "sip:awake@%s" % dom, tr, c.local,
                                       to_uri="sip:awake@%s" % dom))
            req = awake.wait(lambda m: m.method == "OPTIONS", timeout=5)
            t.check(req is not None, "%s OPTIONS to the awake phone is forwarded" % tr)
            if req is not None:
                awake.respond(req, 200, "OK", extra=twice("Subject", "a", "b"))
            final, _ = c.recv_final(timeout=5)
        t.check(final is not None and final.status == 502,
                "%s the caller gets 502 instead of the broken 200" % tr,
                final.summary() if final else "no final response")
        alive(t, tr, edge, "response with two Subject")

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
