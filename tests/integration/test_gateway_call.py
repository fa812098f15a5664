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

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running after all calls")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
