#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Protocol hygiene (issue 8 item 9). Standalone mode, no push.

  - Proxy-Require with an option we do not support -> 420 with Unsupported;
  - a registered Contact carrying URI headers (?Route=...): a call to that
    user reaches the phone with a request URI without them, and nothing
    goes to the host the header named;
  - a REGISTER for a non-SIP AOR (To: http:) or with a mailto: Contact -> 416;
  - a new REGISTER transaction with the binding's Call-ID and the same
    CSeq -> 400; a higher CSeq -> 200;
  - Expires: 4294967296, or a contact expires of twenty digits, registers
    for registrar.max_expires (never unregisters);
  - q=1e999, q=nan, q=2 -> 400; q=0.5 -> 200;
  - answers go where the request came from: with a Via naming another
    address (127.0.0.9), the 404, 400s, 483 all come back to the sending
    socket and nothing reaches that address.
sipwaked exits 0 on SIGTERM (under UBSan: no undefined conversion on the way).
"""
import os
import socket

import swlib

DOM = swlib.DOMAIN


def final_of(tr, edge, make, timeout=3):
    with swlib.RawSip(tr, edge, timeout=timeout) as c:
        f, _ = c.request(make(c), timeout=timeout)
    return f


def summary(f):
    return f.summary() if f is not None else "no final response"


def register(c, user, contact=None, headers=(), call_id=None, cseq=1, to_uri=None):
    ct = contact or "<sip:%s@%s:%d>" % (user, c.local[0], c.local[1])
    return swlib.build_request("REGISTER", "sip:%s" % DOM, c.transport, c.local,
                               from_uri="sip:%s@%s" % (user, DOM), to_uri=to_uri,
                               call_id=call_id, cseq=cseq,
                               headers=[("Contact", ct)] + list(headers))


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=False,
                                         extra={"registrar": {"max_expires": 3600}}))
    edge = (swlib.LOOPBACK, port)

    t.section("Proxy-Require")
    f = final_of("udp", edge, lambda c: swlib.build_request(
        "OPTIONS", "sip:someone@%s" % DOM, "udp", c.local,
        headers=[("Proxy-Require", "x-frobnicate")]))
    t.check(f is not None and f.status == 420, "Proxy-Require: x-frobnicate -> 420", summary(f))
    t.check(f is not None and "x-frobnicate" in (f.get("unsupported") or ""),
            "Unsupported names the option", f.get("unsupported") if f else None)

    t.section("URI headers in a registered Contact")
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    t.on_cleanup(other.close)
    phone = swlib.RawSip("udp", edge, timeout=3)
    t.on_cleanup(phone.close)
    ct = "<sip:hdr@%s:%d?Route=%%3Csip:127.0.0.2:%d;lr%%3E>" % (
        phone.local[0], phone.local[1], other.getsockname()[1])
    f, _ = phone.request(register(phone, "hdr", contact=ct), timeout=3)
    t.require(f is not None and f.status == 200, "REGISTER with ?Route= in the Contact -> 200",
              summary(f))
    with swlib.RawSip("udp", edge, timeout=3) as caller:
        caller.send(swlib.build_request("MESSAGE", "sip:hdr@%s" % DOM, "udp", caller.local,
                                        headers=[("Content-Type", "text/plain")], body="hi"))
        got = phone.collect(2)
    reqs = [m for m in got if m.method == "MESSAGE"]
    t.check(reqs, "the MESSAGE reaches the phone", [m.summary() for m in got])
    if reqs:
        line = reqs[0].text.split("\r\n", 1)[0]
        t.check("?" not in line and "Route=" not in line, "its request URI has no URI headers",
                line)
        t.check(not reqs[0].all("route"), "and it carries no Route", reqs[0].all("route"))
    other.settimeout(0.5)
    try:
        leaked = other.recv(65535)
    except socket.timeout:
        leaked = b""
    t.check(leaked == b"", "nothing goes to the host the URI header named", leaked[:100])

    t.section("non-SIP schemes")
    f = final_of("udp", edge, lambda c: register(c, "web", to_uri="http://web.%s/x" % DOM))
    t.check(f is not None and f.status == 416, "To: <http:...> -> 416", summary(f))
    f = final_of("udp", edge, lambda c: register(c, "mail", contact="<mailto:mail@%s>" % DOM))
    t.check(f is not None and f.status == 416, "Contact: <mailto:...> -> 416", summary(f))

    t.section("CSeq order (RFC 3261 10.3 step 7)")
    with swlib.RawSip("udp", edge, timeout=3) as c:
        cid = "cseq-%d@test" % os.getpid()
        f, _ = c.request(register(c, "seq", call_id=cid, cseq=5), timeout=3)
        t.check(f is not None and f.status == 200, "REGISTER CSeq 5 -> 200", summary(f))
        f, _ = c.request(register(c, "seq", call_id=cid, cseq=5), timeout=3)
        t.check(f is not None and f.status == 400, "a new REGISTER, same Call-ID, CSeq 5 -> 400",
                summary(f))
        f, _ = c.request(register(c, "seq", call_id=cid, cseq=4), timeout=3)
        t.check(f is not None and f.status == 400, "CSeq 4 -> 400", summary(f))
        f, _ = c.request(register(c, "seq", call_id=cid, cseq=6), timeout=3)
        t.check(f is not None and f.status == 200, "CSeq 6 -> 200", summary(f))

    t.section("huge expiries")
    for label, hdrs, ctp in (("Expires: 4294967296", [("Expires", "4294967296")], ""),
                             ("expires=" + "9" * 20, [], ";expires=" + "9" * 20)):
        with swlib.RawSip("udp", edge, timeout=3) as c:
            user = "exp%d" % len(label)
            f, _ = c.request(register(c, user, contact="<sip:%s@%s:%d>%s" % (
                user, c.local[0], c.local[1], ctp), headers=hdrs), timeout=3)
            ok = f is not None and f.status == 200 and f.all("contact")
            t.check(ok, "%s -> 200 with the Contact listed (not unregistered)" % label, summary(f))
            if ok:
                t.check("expires=3600" in ";".join(f.all("contact")),
                        "%s: granted registrar.max_expires (3600)" % label, f.all("contact"))

    t.section("q-values")
    for q, want in (("1e999", 400), ("nan", 400), ("2", 400), ("-0.5", 400), ("0.5", 200)):
        f = final_of("udp", edge, lambda c, q=q: register(
            c, "q%s" % q.replace(".", "").replace("-", "m"),
            contact="<sip:qq@%s:%d>;q=%s" % (c.local[0], c.local[1], q)))
        t.check(f is not None and f.status == want, "q=%s -> %d" % (q, want), summary(f))

    t.section("answers go back to the sender, not to the Via's host")
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.9", 0))
    t.on_cleanup(victim.close)
    vport = victim.getsockname()[1]
    cases = [("unknown user (404)", [], None), ("repeated Subject (400)",
                                               [("Subject", "a"), ("Subject", "b")], None),
             ("repeated CSeq (400)", [("CSeq", "2 OPTIONS")], None),
             ("Max-Forwards: 0 (483)", [], 0)]
    for label, hdrs, mf in cases:
        with swlib.RawSip("udp", edge, timeout=2) as c:
            data = swlib.build_request("OPTIONS", "sip:nobody@%s" % DOM, "udp", c.local,
                                       headers=hdrs, max_forwards=70 if mf is None else mf)
            data = data.replace(b"%s:%d;" % (c.local[0].encode(), c.local[1]),
                                b"127.0.0.9:%d;" % vport, 1).replace(b";rport", b"", 1)
            f, _ = c.request(data, timeout=2)
        t.check(f is not None and f.status >= 400, "%s: the answer comes back to the sender" % label,
                summary(f))
        victim.settimeout(0.3)
        try:
            v = victim.recv(65535)
        except socket.timeout:
            v = b""
        t.check(v == b"", "%s: nothing reaches the address in the Via" % label, v[:60])

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
