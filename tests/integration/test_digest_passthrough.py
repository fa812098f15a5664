#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Gateway mode with a challenging upstream: 401 passes through sipwake.

Kamailio challenges every REGISTER (auth module, pv_www_authenticate, realm =
the To domain "sipwake.test", password "s3cret" for any user). sipwaked in
gateway mode in front of it. A phone (sipp register_auth.xml, -au/-ap) with
RFC 8599 push parameters registers through sipwake, over UDP and TCP:
  - it receives the 401 (not a 407, not a locally made error) with a
    WWW-Authenticate: Digest challenge, realm "sipwake.test", a nonce;
  - its retried REGISTER (CSeq 2, Authorization) gets 200 listing its Contact;
  - Kamailio then holds the binding, with Path to sipwake and no pn-*.
With a wrong password the phone gets another 401 (or 403) and Kamailio holds
no binding for that user. sipwaked keeps running and exits 0 on SIGTERM.
"""
import swlib
import calls


def main(t):
    kam = t.kamailio(name="upstream-auth", auth=True, password="s3cret")
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri=kam.uri, fcm=True))
    edge = (swlib.LOOPBACK, port)

    for tr in ("udp", "tcp"):
        user = "erin-" + tr
        t.section("digest over %s" % tr)
        r = t.sipp("register_auth.xml", edge, name="auth-" + tr, transport=tr, user=user,
                   auth=(user, "s3cret"), keys={"pn": swlib.push_params("fcm")}, timeout=20).run()
        t.check(r.rc == 0, "%s: REGISTER -> 401 -> REGISTER with credentials -> 200 (sipp exit 0)" % tr,
                r.describe())
        ch = r.received(status=401)
        wa = ch[0].get("www-authenticate") if ch else None
        t.check(ch, "%s: the phone received Kamailio's 401 through sipwake" % tr, r.describe())
        t.check(wa and wa.lower().startswith("digest") and 'realm="%s"' % swlib.DOMAIN in wa
                and "nonce=" in wa,
                "%s: the 401 carries the upstream's Digest challenge (realm, nonce)" % tr,
                "WWW-Authenticate: %s" % wa)
        regs = r.sent("REGISTER")
        t.check(len(regs) == 2 and regs[1].get("authorization"),
                "%s: the phone retried with Authorization" % tr)
        ok = [m for m in r.received(status=200) if m.cseq_method == "REGISTER"]
        if t.check(ok, "%s: the retried REGISTER got 200" % tr):
            want = (swlib.LOOPBACK, r.argv and int(r.argv[r.argv.index("-p") + 1]))
            t.check(any(swlib.uri_hostport(c) == want for c in ok[0].all("contact")),
                    "%s: the 200 lists the phone's Contact" % tr, ok[0].all("contact"))
        calls.check_kamailio_binding(t, kam, user, label=tr, edge=edge, transport=tr,
                                     hidden_pn=True)

    t.section("wrong password")
    r = t.sipp("register_auth.xml", edge, name="auth-wrong", user="frank",
               auth=("frank", "wrong"), keys={"pn": swlib.push_params("fcm")}, timeout=10).run()
    finals = [m.status for m in r.received() if m.status and m.status >= 200]
    t.check(r.rc != 0 and finals[:1] == [401] and len(finals) >= 2 and finals[1] in (401, 403),
            "wrong password: 401, then 401/403 again (sipp fails)", r.describe())
    t.check(not kam.contacts("frank"), "wrong password: Kamailio holds no binding for frank",
            kam.contacts("frank"))

    t.section("shutdown")
    t.check(sw.alive(), "sipwaked still running")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
