#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Standalone mode: sipwaked is the registrar (upstream.uri = "").

Phone A (sipp register_then_answer.xml + uas.xml) registers at sipwake and
waits; caller B (sipp uac.xml, not registered) calls A's AOR
sip:USER@sipwake.test at sipwake. Checked on the wire, per case:
  - A's REGISTER gets 200 listing A's Contact;
  - the INVITE reaches A with sipwake's Via on top, a Record-Route of
    sipwake, Max-Forwards <= 69, the caller's Call-ID;
  - ACK and BYE reach A through sipwake; B sees 180, 200, 200 to BYE.
Cases: UDP/UDP, TCP/TCP, A on TCP and B on UDP, A on TCP "behind NAT"
(Contact port closed: only A's connection reaches it).
Then: an unknown user gets a final error (404 or 480); a domain not in
sip.domains gets 403 (no open relay, SPEC 4.5); after register+unregister
(register_unregister.xml) a call to that user fails.
Binding replacement (SPEC 4.2): a device registers from a raw socket (old
address), then again from the phone's sipp socket with the same
+sip.instance (or, without instance, the same push identity); the call
reaches the phone and the old address receives no INVITE. UDP and TCP.
SIGTERM -> exit 0.
"""
import swlib
import calls


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri="", fcm=True))
    edge = (swlib.LOOPBACK, port)

    cases = [
        ("standalone-udp", "udp", "udp", None),
        ("standalone-tcp", "tcp", "tcp", None),
        ("standalone-tcp-callee-udp-caller", "tcp", "udp", None),
        ("standalone-tcp-nat", "tcp", "tcp", swlib.free_port()),
    ]
    for label, tr, ctr, nat in cases:
        pres, _ = calls.call_through(
            t, label=label, register_to=edge, call_to=edge, transport=tr, caller_transport=ctr,
            user="a-" + label.split("-", 1)[1], edge=edge, hops=1, nat_port=nat)

    t.section("requests that must not be routed")
    for tr in ("udp", "tcp"):
        final, seen = calls.invite(tr, edge, "nobody-" + tr)
        t.check(final is not None and final.status in (404, 480),
                "%s: INVITE to an unknown user -> 404 or 480" % tr,
                "got %s" % (final.summary() if final else "no final response"))
        final, seen = calls.invite(tr, edge, "bob", domain="not-served.example")
        t.check(final is not None and final.status == 403,
                "%s: INVITE to a domain not in sip.domains -> 403 (no open relay)" % tr,
                "got %s" % (final.summary() if final else "no final response"))

    t.section("unregister")
    for tr in ("udp", "tcp"):
        user = "gone-" + tr
        r = t.sipp("register_unregister.xml", edge, name="unreg-" + tr, transport=tr, user=user,
                   timeout=15).run()
        t.check(r.rc == 0, "%s: REGISTER 200, then Expires: 0 -> 200 without Contact" % tr,
                r.describe())
        final, seen = calls.invite(tr, edge, user)
        t.check(final is not None and final.status >= 400,
                "%s: after unregister, INVITE to %s fails (404/480)" % (tr, user),
                "got %s" % (final.summary() if final else "no final response"))

    t.section("a device that comes back from a new address replaces its binding")
    for tr in ("udp", "tcp"):
        for how, ctp, pn in (
                ("+sip.instance", ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-%012d>"'
                 % (1 if tr == "udp" else 2), ""),
                ("push identity", "", swlib.push_params("fcm", prid="same-device-token-" + tr))):
            label = "moved-%s-%s" % (tr, "instance" if how.startswith("+") else "push")
            user = "mover-" + label
            with swlib.RawSip(tr, edge, timeout=5) as old:
                contact = "<sip:%s@%s:%d;transport=%s%s>%s" % (user, old.local[0], old.local[1], tr,
                                                                pn, ctp)
                req = swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, tr, old.local,
                                          from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
                                          headers=[("Contact", contact), ("Expires", "600")])
                final, _ = old.request(req)
                t.check(final is not None and final.status == 200,
                        "%s: the device registers from its old address (%s)" % (label, how),
                        final.summary() if final else "no final response")
                calls.call_through(t, label=label, register_to=edge, call_to=edge, transport=tr,
                                   user=user, pn=pn, ctp=ctp, edge=edge, hops=1)
                stale = [m for m in old.collect(1.0) if m.method == "INVITE"]
                t.check(not stale, "%s: the old address got no INVITE (binding replaced by %s, "
                        "not duplicated)" % (label, how), [m.summary() for m in stale])

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
