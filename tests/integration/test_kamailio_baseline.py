#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Proves the harness without sipwake: Kamailio alone.

1. A phone registers DIRECTLY at Kamailio (push parameters in its Contact)
   and a caller at Kamailio calls it; the call completes, over UDP and TCP.
2. The same through a second Kamailio acting as an outbound proxy that adds
   a Path (the shape of gateway mode, and the benchmark's reference path):
   Kamailio stores the Path and the INVITE reaches the phone through the
   proxy (its Via on top, its Record-Route present).
3. Digest: register_auth.xml gets 401 from Kamailio and succeeds with
   credentials.
4. register_unregister.xml: the binding is gone afterwards.
"""
import swlib
import calls


def main(t):
    kam = t.kamailio(name="registrar")

    for tr in ("udp", "tcp"):
        calls.call_through(t, label="direct-" + tr, register_to=kam.addr(), call_to=kam.addr(),
                           transport=tr, user="bob" + tr, pn=swlib.push_params("fcm"),
                           kam=kam, hops=1)

    proxy = t.kamailio(name="proxy", role="proxy", upstream=kam.uri)
    for tr in ("udp", "tcp"):
        calls.call_through(t, label="via-kamailio-proxy-" + tr, register_to=proxy.addr(),
                           call_to=kam.addr(), transport=tr, user="carol" + tr,
                           pn=swlib.push_params("apns", param="TEAMID1234.com.example.app.voip"),
                           edge=proxy.addr(), kam=kam, hops=2)
    t.section("mixed transports: phone on TCP, caller on UDP")
    calls.call_through(t, label="mixed", register_to=kam.addr(), call_to=kam.addr(),
                       transport="tcp", caller_transport="udp", user="dave", kam=kam, hops=1)

    t.section("digest challenge")
    authkam = t.kamailio(name="auth", auth=True, password="s3cret")
    for tr in ("udp", "tcp"):
        r = t.sipp("register_auth.xml", authkam.addr(), name="auth-" + tr, transport=tr,
                   user="erin", auth=("erin", "s3cret"), timeout=15).run()
        t.check(r.rc == 0, "auth-%s: REGISTER, 401, REGISTER with credentials, 200" % tr,
                r.describe())
        ch = r.received(status=401)
        t.check(ch and ch[0].get("www-authenticate", ) and "nonce=" in ch[0].get("www-authenticate"),
                "auth-%s: the 401 carries a WWW-Authenticate digest challenge" % tr)
        regs = r.sent("REGISTER")
        t.check(len(regs) == 2 and regs[1].get("authorization"),
                "auth-%s: the retried REGISTER carries Authorization" % tr)
    t.check(len(authkam.contacts("erin")) >= 1, "auth: Kamailio stored erin's binding")
    bad = t.sipp("register_auth.xml", authkam.addr(), name="auth-wrong", user="frank",
                 auth=("frank", "wrong"), timeout=8).run()
    t.check(bad.rc != 0 and not authkam.contacts("frank"),
            "auth: a wrong password does not register", bad.describe())

    t.section("register then unregister")
    for tr in ("udp", "tcp"):
        r = t.sipp("register_unregister.xml", kam.addr(), name="unreg-" + tr, transport=tr,
                   user="gina" + tr, timeout=15).run()
        t.check(r.rc == 0, "unreg-%s: REGISTER 200, REGISTER Expires: 0 200 without Contact" % tr,
                r.describe())
        t.check(not kam.contacts("gina" + tr), "unreg-%s: Kamailio has no binding left" % tr,
                kam.contacts("gina" + tr))


if __name__ == "__main__":
    swlib.run(main)
