#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""q-value groups (RFC 3261 16.6, SPEC 4.3): higher q first, lower q after.

sipwaked standalone. Two UDP phones of one user, raw sockets:
  "desk"   registers with q=1.0, "mobile" with q=0.5.
Call 1: desk answers 486 Busy -> only then does mobile get the INVITE; it
answers 200 and the caller (sipp uac.xml) completes the call.
Call 2: desk answers 200 -> mobile never sees an INVITE.
Asserted on the wire: which phone got INVITEs, in which order, and what the
caller got.
"""
import socket
import threading
import time

import swlib

USER = "qgroup"


class Phone(threading.Thread):
    """A UDP phone: REGISTER with q, then answer INVITEs with `answer`
    (486 or 200; 200 is followed by ACK and the caller's BYE)."""

    def __init__(self, edge, name, q, answer):
        super().__init__(daemon=True)
        self.edge, self.name, self.q, self.answer = edge, name, q, answer
        self.sip = swlib.RawSip("udp", edge, timeout=2)
        self.invites = []  # (monotonic time, SipMsg)
        self.stop_at = None

    def register(self):
        c = self.sip
        contact = "<sip:%s-%s@%s:%d>;q=%s" % (USER, self.name, c.local[0], c.local[1], self.q)
        c.send(swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
                                   from_uri="sip:%s@%s" % (USER, swlib.DOMAIN),
                                   headers=[("Contact", contact), ("Expires", "300")]))
        r, _ = c.recv_final()
        return r

    def respond(self, req, status, reason, extra=()):
        hdrs = ["SIP/2.0 %d %s" % (status, reason)]
        hdrs += ["Via: %s" % v for v in req.all("via")]
        if status >= 180 and status < 300:  # a UAS copies the Record-Route set
            hdrs += ["Record-Route: %s" % r for r in req.all("record-route")]
        for h in ("from", "call-id", "cseq"):
            hdrs.append("%s: %s" % (h.title(), req.get(h)))
        to = req.get("to")
        hdrs.append("To: %s%s" % (to, "" if ";tag=" in to else ";tag=%s" % self.name))
        hdrs += list(extra)
        hdrs.append("Content-Length: 0")
        data = ("\r\n".join(hdrs) + "\r\n\r\n").encode()
        self.sip.sock.sendto(data, self.edge)

    def run(self):
        self.stop_at = time.monotonic() + 20
        c = self.sip
        while time.monotonic() < self.stop_at:
            m = c._read_one(min(self.stop_at, time.monotonic() + 0.5))
            if m is None or m.status is not None:
                continue
            method = m.cseq_method
            if method == "INVITE" and m.start.startswith("INVITE"):
                if not any(m.call_id() == i.call_id() for _, i in self.invites):
                    self.invites.append((time.monotonic(), m))
                self.respond(m, 100, "Trying")
                if self.answer == 200:
                    self.respond(m, 200, "OK", ["Contact: <sip:%s-%s@%s:%d>" % (
                        USER, self.name, c.local[0], c.local[1])])
                else:
                    self.respond(m, self.answer, "Busy Here")
            elif m.start.startswith("BYE"):
                self.respond(m, 200, "OK")
            elif m.start.startswith("CANCEL"):
                self.respond(m, 200, "OK")

    def close(self):
        self.stop_at = 0
        self.join(3)
        self.sip.close()


def call(t, edge, label, desk_answer):
    desk = Phone(edge, "desk", "1.0", desk_answer)
    mobile = Phone(edge, "mobile", "0.5", 200)
    try:
        for p in (desk, mobile):
            r = p.register()
            t.require(r is not None and r.status == 200,
                      "%s: %s registers with q=%s" % (label, p.name, p.q),
                      r.summary() if r else "no answer")
        desk.start()
        mobile.start()
        caller = t.sipp("uac.xml", edge, name="caller-" + label, user=USER, transport="udp",
                        pause_ms=200, timeout=15)
        res = caller.run()
        t.check(res.rc == 0, "%s: the caller's call completed (sipp exit 0)" % label,
                res.describe())
        time.sleep(0.5)
        return desk, mobile
    finally:
        desk.close()
        mobile.close()


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=False))
    edge = (swlib.LOOPBACK, port)

    t.section("desk (q=1.0) busy, mobile (q=0.5) answers")
    desk, mobile = call(t, edge, "busy", 486)
    t.check(len(desk.invites) == 1, "busy: desk got the INVITE (%d)" % len(desk.invites))
    t.check(len(mobile.invites) == 1, "busy: mobile got the INVITE (%d)" % len(mobile.invites))
    if desk.invites and mobile.invites:
        t.check(mobile.invites[0][0] >= desk.invites[0][0],
                "busy: mobile's INVITE came after desk's (lower q waits for higher q)")

    t.section("desk (q=1.0) answers, mobile (q=0.5) is never tried")
    desk, mobile = call(t, edge, "answered", 200)
    t.check(len(desk.invites) == 1, "answered: desk got the INVITE (%d)" % len(desk.invites))
    t.check(len(mobile.invites) == 0, "answered: mobile got no INVITE (%d)" % len(mobile.invites))

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
