#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Malformed SIP and hostile push parameters: 4xx, never a crash (SPEC 4.2, 8).

sipwaked standalone (no upstream), FCM and APNs configured (generated keys,
push endpoints on a closed loopback port). Over UDP and over TCP, from raw
sockets, each case below is sent on a fresh socket; after EVERY case an
OPTIONS (new socket, same transport) must get a final response, i.e. the
daemon is still serving.

Expected answers:
  missing Call-ID / From / To / CSeq, non-numeric Content-Length  -> 400
  no Via, garbage bytes, bad SIP version, 300 KB header on TCP     -> never 2xx
                                  (an error response, silence or a closed connection)
  60 KB header over UDP                                            -> anything
  MESSAGE with Max-Forwards: 0 to a user                           -> 483
  REGISTER, Contact with:
    pn-provider=apns, pn-prid not hex                              -> 400 naming pn-prid
    pn-provider=apns, 5000-hex-digit pn-prid (> 4096 bytes)        -> 400 naming pn-prid
    pn-provider=fcm, 5000-byte pn-prid                             -> 400 naming pn-prid
    pn-provider=fcm, empty pn-prid                                 -> 400 naming pn-prid
    pn-type=apple (legacy), pn-tok not hex                         -> 400 naming pn-tok
    pn-provider=pigeon (unknown)                                   -> 400 or 555
  ("naming": the parameter name appears in the reason phrase or a Warning.)
Nothing is stored for refused REGISTERs: an INVITE to that user then gets
404/480. A good REGISTER (fcm) afterwards gets 200.

A second sipwaked with only FCM configured answers a REGISTER whose Contact
says pn-provider=apns (and apns.dev) with 555 (RFC 8599 "Push Notification
Service Not Supported"). Both daemons exit 0 on SIGTERM at the end.
"""
import os
import signal
import time

import swlib
import calls

APNS_TOPIC = "TEAMID1234.com.example.app.voip"
HEX64 = "0123456789abcdef" * 4


def register_bytes(c, user, contact_params, headers=(), omit=(), contact=None):
    ct = contact or "<sip:%s@%s:%d;transport=%s%s>" % (user, c.local[0], c.local[1], c.transport,
                                                       contact_params)
    return swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, c.transport, c.local,
                               from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
                               headers=[("Contact", ct), ("Expires", "600")] + list(headers),
                               omit=omit)


def names_param(resp, param):
    text = " ".join([resp.reason or ""] + resp.all("warning")).lower()
    return param.lower() in text


def send_case(t, tr, edge, label, make, expect, param=None):
    """Send what make(c) builds on a fresh socket and check the answer.
    expect: an int status, a tuple of allowed statuses, "not2xx" or "any"."""
    try:
        with swlib.RawSip(tr, edge, timeout=3) as c:
            data = make(c)
            try:
                final, seen = c.request(data, timeout=3)
            except OSError as e:  # e.g. connection reset while sending
                final, seen = None, []
                t.log("       (%s: %s)" % (label, e))
    except OSError as e:
        t.check(False, "%s %s: could not connect to sipwaked" % (tr, label), e)
        return None
    got = final.summary() if final is not None else "no final response"
    if expect == "any":
        t.check(True, "%s %s: sent (%s)" % (tr, label, got))
    elif expect == "not2xx":
        t.check(final is None or final.status >= 300,
                "%s %s: not accepted (%s)" % (tr, label, got))
    else:
        allowed = expect if isinstance(expect, tuple) else (expect,)
        ok = final is not None and final.status in allowed
        t.check(ok, "%s %s: -> %s" % (tr, label, "/".join(map(str, allowed))), "got: %s" % got)
        if ok and param and final.status == 400:
            t.check(names_param(final, param), "%s %s: the 400 names %s" % (tr, label, param),
                    "reason %r, Warning %s" % (final.reason, final.all("warning")))
    alive = swlib.sip_options(tr, edge, timeout=3)
    t.check(alive is not None, "%s %s: sipwaked still answers OPTIONS afterwards" % (tr, label))
    if alive is None:
        raise swlib.CheckFailed("sipwaked stopped answering after %s over %s" % (label, tr))
    return final


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=True, apns=True))
    edge = (swlib.LOOPBACK, port)

    for tr in ("udp", "tcp"):
        t.section("malformed SIP over %s" % tr)
        for hdr in ("Call-ID", "From", "To", "CSeq"):
            send_case(t, tr, edge, "REGISTER without %s" % hdr,
                      lambda c, h=hdr: register_bytes(c, "m1", "", omit=(h,)), 400)
        send_case(t, tr, edge, "non-numeric Content-Length",
                  lambda c: register_bytes(c, "m1", "", omit=("Content-Length",),
                                           headers=[("Content-Length", "twelve")]),
                  400 if tr == "udp" else "not2xx")
        send_case(t, tr, edge, "REGISTER without Via",
                  lambda c: register_bytes(c, "m1", "", omit=("Via",)), "not2xx")
        send_case(t, tr, edge, "garbage bytes",
                  lambda c: b"\x00\xff\xfe GARBAGE \x01\x02 not sip at all\r\n\r\n", "not2xx")
        send_case(t, tr, edge, "SIP/9.9 request line",
                  lambda c: register_bytes(c, "m1", "").replace(b"SIP/2.0\r\n", b"SIP/9.9\r\n", 1),
                  "not2xx")
        if tr == "udp":
            send_case(t, tr, edge, "60 KB header",
                      lambda c: register_bytes(c, "m1", "", headers=[("X-Huge", "h" * 60000)]), "any")
        else:
            send_case(t, tr, edge, "300 KB header",
                      lambda c: register_bytes(c, "m1", "", headers=[("X-Huge", "h" * 300000)]),
                      "not2xx")
        send_case(t, tr, edge, "MESSAGE with Max-Forwards: 0",
                  lambda c: swlib.build_request(
                      "MESSAGE", "sip:someone@%s" % swlib.DOMAIN, c.transport, c.local,
                      max_forwards=0, headers=[("Content-Type", "text/plain")], body="hi"), 483)

        t.section("hostile push parameters over %s" % tr)
        user = "mallory-" + tr
        cases = [
            ("APNs pn-prid not hex",
             ";pn-provider=apns;pn-prid=XYZnothex-token;pn-param=" + APNS_TOPIC, 400, "pn-prid"),
            ("APNs pn-prid of 5000 hex digits",
             ";pn-provider=apns;pn-prid=" + "ab" * 2500 + ";pn-param=" + APNS_TOPIC, 400, "pn-prid"),
            ("FCM pn-prid of 5000 bytes",
             ";pn-provider=fcm;pn-prid=" + "f" * 5000 + ";pn-param=sipwake-test", 400, "pn-prid"),
            ("FCM empty pn-prid", ";pn-provider=fcm;pn-prid=;pn-param=sipwake-test", 400, "pn-prid"),
            ("legacy pn-type=apple, pn-tok not hex",
             ";pn-type=apple;pn-tok=XYZnothex;app-id=com.example.app", 400, "pn-tok"),
            ("unknown pn-provider", ";pn-provider=pigeon;pn-prid=abc123;pn-param=x", (400, 555),
             "pn-provider"),
        ]
        for label, params, expect, param in cases:
            send_case(t, tr, edge, "REGISTER, " + label,
                      lambda c, p=params: register_bytes(c, user, p), expect, param)
        final, _ = calls.invite(tr, edge, user)
        t.check(final is not None and final.status in (404, 480),
                "%s: nothing was stored for the refused REGISTERs (INVITE %s -> 404/480)" % (tr, user),
                final.summary() if final else "no final response")

        t.section("a good REGISTER still works over %s" % tr)
        good = send_case(t, tr, edge, "REGISTER with valid FCM parameters",
                         lambda c: register_bytes(c, "goodie-" + tr, swlib.push_params("fcm")), 200)
        if good is not None and good.status == 200:
            t.check(good.all("contact"), "%s: the 200 lists the Contact" % tr)
        send_case(t, tr, edge, "REGISTER with valid APNs parameters",
                  lambda c: register_bytes(c, "goodapple-" + tr,
                                           ";pn-provider=apns;pn-prid=%s;pn-param=%s" % (HEX64, APNS_TOPIC)),
                  200)

    t.section("provider not configured (only FCM configured)")
    port2 = swlib.free_port()
    d2 = os.path.join(t.dir, "fcm-only")
    os.makedirs(d2, exist_ok=True)
    sw2 = t.sipwaked(swlib.sipwake_config(d2, port2, fcm=True, apns=False), name="sipwaked-fcm-only")
    edge2 = (swlib.LOOPBACK, port2)
    for tr in ("udp", "tcp"):
        for prov in ("apns", "apns.dev"):
            send_case(t, tr, edge2, "REGISTER pn-provider=%s, APNs not configured" % prov,
                      lambda c, p=prov: register_bytes(
                          c, "nopush-" + tr, ";pn-provider=%s;pn-prid=%s;pn-param=%s" % (p, HEX64, APNS_TOPIC)),
                      555)
        send_case(t, tr, edge2, "REGISTER pn-provider=fcm still accepted",
                  lambda c: register_bytes(c, "fcmok-" + tr, swlib.push_params("fcm")), 200)

    t.section("a reload that adds APNs ends the 555 answers")
    sw2.config = swlib.sipwake_config(d2, port2, fcm=True, apns=True)
    sw2.write_config()
    sw2.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    final = None
    while time.monotonic() < deadline:
        final = send_case(t, "udp", edge2, "REGISTER pn-provider=apns after the reload",
                          lambda c: register_bytes(
                              c, "apnsnow", ";pn-provider=apns;pn-prid=%s;pn-param=%s" % (
                                  HEX64, APNS_TOPIC)), "any")
        if final is not None and final.status == 200:
            break
        time.sleep(0.2)
    t.check(final is not None and final.status == 200,
            "after the reload a REGISTER for APNs is accepted (200, not a stale 555)",
            final.summary() if final is not None else "no final response")

    t.section("shutdown")
    t.check(sw.alive() and sw2.alive(), "both daemons still running")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")
    t.check(sw2.stop() == 0, "SIGTERM: second sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
