#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real softphone through sipwake: linphonec with push parameters.

liblinphone adds `contact_uri_parameters` (RFC 8599 pn-provider/pn-prid/
pn-param) and +sip.instance to its Contact, like a phone with push enabled.

Gateway mode (Kamailio registrar behind sipwaked, FCM configured), over UDP
and TCP: linphonec registers through sipwake and reports "registered";
Kamailio holds ONE contact for it, with Path to sipwake and no pn-*; then
linphonec (autoanswer on) is called by sipp uac.xml at Kamailio and the call
completes (INVITE/200/ACK/BYE/200) with the INVITE having gone through
sipwake; on quit linphonec unregisters through sipwake and Kamailio holds
no contact any more. SIGTERM -> exit 0.
"""
import swlib


def main(t):
    kam = t.kamailio(name="upstream")
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri=kam.uri, fcm=True))
    edge = (swlib.LOOPBACK, port)

    for tr in ("udp", "tcp"):
        user = "linus-" + tr
        t.section("linphonec over %s through sipwake" % tr)
        lp = t.linphonec(edge, user, transport=tr,
                         contact_params="pn-provider=fcm;pn-prid=linphonetoken-%s;pn-param=sipwake-test" % tr)
        if not t.check(lp.wait_registered(), "%s: linphonec reports registered" % tr,
                       swlib.tail(lp.out)):
            lp.quit()
            continue
        b = kam.contacts(user)
        t.check(len(b) == 1, "%s: Kamailio holds one contact for %s" % (tr, user), b)
        if b:
            addr, path = b[0]
            t.check(swlib.uri_hostport(path) == edge and ";lr" in path.lower(),
                    "%s: with Path to sipwake" % tr, path)
            t.check("pn-" not in addr.lower(), "%s: and without pn-* parameters" % tr, addr)
        lp.command("autoanswer enable")
        caller = t.sipp("uac.xml", kam.addr(), name="call-" + user, user=user, transport=tr,
                        pause_ms=500, timeout=15)
        r = caller.run()
        t.check(r.rc == 0, "%s: a call from Kamailio to linphonec completes" % tr, r.describe())
        oks = [m for m in r.received(status=200) if m.cseq_method == "INVITE"]
        ct = (oks[0].get("contact") or "") if oks else ""
        t.check(("sip:%s@%s" % (user, swlib.LOOPBACK)) in ct and "linphonetoken-" + tr in ct,
                "%s: the 200 came from linphonec (its Contact, push parameters included)" % tr,
                ct or r.describe())
        lp.quit()
        t.check(not kam.contacts(user), "%s: linphonec unregistered through sipwake on quit" % tr,
                kam.contacts(user))

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
