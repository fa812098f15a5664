#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Gateway mode: phone -> sipwaked -> Kamailio (registrar), call back through sipwake.

sipwaked runs with upstream.uri = Kamailio, hide_push_params = true, FCM
configured (fake endpoints on a closed loopback port: no push is expected).
For each case a phone (sipp, register_then_answer.xml + uas.xml) registers
through sipwake with RFC 8599 push parameters in its Contact, then a caller
(sipp uac.xml) calls the phone's AOR at Kamailio. Checked on the wire:
  - the phone's REGISTER gets 200 listing the phone's Contact, with
    Feature-Caps +sip.pns="fcm" (SPEC 4.2);
  - Kamailio stored the binding with Path <sip:127.0.0.1:SWPORT;...;lr> and
    without pn-* parameters;
  - the INVITE reaches the phone with sipwake's Via on top and a
    Record-Route of sipwake, Max-Forwards <= 68, same Call-ID as sent;
  - ACK and BYE reach the phone through sipwake; the caller sees 180, 200
    and 200 to BYE; both sipp runs exit 0;
  - SIGTERM: sipwaked exits 0 within 5 s.
Cases: UDP, TCP, phone on TCP with caller on UDP, and TCP "behind NAT" (the
Contact names a port nothing listens on: only the phone's own connection
reaches it, SPEC 4.5 / issue 2 item 5).
No duplicates upstream (SPEC 4.2): register.xml twice from the same port
(new Call-ID each time) and once from another port with the same
+sip.instance and push identity: Kamailio holds exactly one contact for
the AOR each time.
"""
import swlib
import calls


def check_feature_caps(t, label, reg200, provider):
    fc = " ".join(reg200.all("feature-caps"))
    t.check(('+sip.pns="%s"' % provider) in fc,
            '%s: 200 to REGISTER carries Feature-Caps with +sip.pns="%s"' % (label, provider),
            "Feature-Caps: %s" % (fc or "(none)"))


def main(t):
    kam = t.kamailio(name="upstream")
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri=kam.uri, fcm=True))
    edge = (swlib.LOOPBACK, port)

    cases = [
        ("gateway-udp", "udp", "udp", None),
        ("gateway-tcp", "tcp", "tcp", None),
        ("gateway-tcp-phone-udp-caller", "tcp", "udp", None),
        ("gateway-tcp-nat", "tcp", "tcp", swlib.free_port()),
    ]
    for label, tr, ctr, nat in cases:
        user = "alice-" + label.split("-", 1)[1]
        pres, _ = calls.call_through(
            t, label=label, register_to=edge, call_to=kam.addr(), transport=tr,
            caller_transport=ctr, user=user, pn=swlib.push_params("fcm"), edge=edge, kam=kam,
            hops=2, hidden_pn=True, nat_port=nat)
        regs = [m for m in pres.received() if m.cseq_method == "REGISTER" and m.status == 200]
        if regs:
            check_feature_caps(t, label, regs[0], "fcm")

    t.section("no duplicate bindings upstream")
    for tr in ("udp", "tcp"):
        user = "refresh-" + tr
        inst = ';+sip.instance="<urn:uuid:00000000-0000-4000-8000-%012d>"' % (10 if tr == "udp" else 11)
        keys = {"pn": swlib.push_params("fcm", prid="refresh-token-" + tr), "ctp": inst}
        p1 = swlib.free_port()
        for i in (1, 2):
            r = t.sipp("register.xml", edge, name="%s-%d" % (user, i), transport=tr, user=user,
                       port=p1, keys=keys, timeout=10).run()
            t.check(r.rc == 0, "%s: REGISTER #%d from the same address -> 200" % (tr, i), r.describe())
        n = len(kam.contacts(user))
        t.check(n == 1, "%s: a refresh keeps ONE contact upstream (same upstream Contact each time)" % tr,
                "Kamailio holds %d: %s" % (n, kam.contacts(user)))
        r = t.sipp("register.xml", edge, name="%s-moved" % user, transport=tr, user=user,
                   keys=keys, timeout=10).run()
        t.check(r.rc == 0, "%s: REGISTER from a new port, same +sip.instance -> 200" % tr, r.describe())
        n = len(kam.contacts(user))
        t.check(n == 1, "%s: after the device moved, still ONE contact upstream" % tr,
                "Kamailio holds %d: %s" % (n, kam.contacts(user)))

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running after all calls")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
