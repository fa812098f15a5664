#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A push server downstream handles it: REGISTER passed upstream unchanged (SPEC 4.2).

Gateway mode, Kamailio upstream, sipwaked with only FCM configured. A
REGISTER whose Contact asks for APNs (not configured here):
  - plain: refused with 555 "Push Notification Service Not Supported";
  - with `Feature-Caps: *;+sip.pns="apns"` (a push server between the phone
    and sipwake already handles it, RFC 8599 9): relayed to Kamailio as it
    is, answered 200; Kamailio stores the Contact with its pn- parameters
    and without a Path to sipwake; sipwake keeps no binding (a call to the
    user from Kamailio does not come through sipwake).
"""
import swlib

TOKEN = "0123456789abcdef" * 4
PN = ";pn-provider=apns;pn-prid=%s;pn-param=TEAMID1234.com.example.app.voip" % TOKEN


def register(t, edge, user, headers=()):
    with swlib.RawSip("udp", edge, timeout=5) as c:
        contact = "<sip:%s@%s:%d;transport=udp%s>" % (user, c.local[0], c.local[1], PN)
        c.send(swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
                                   from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
                                   headers=[("Contact", contact), ("Expires", "600")]
                                   + list(headers)))
        r, _ = c.recv_final()
        return r


def main(t):
    kam = t.kamailio(name="upstream")
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri=kam.uri, fcm=True))
    edge = (swlib.LOOPBACK, port)

    t.section("APNs not configured, no downstream push server")
    r = register(t, edge, "plain")
    t.check(r is not None and r.status == 555, "REGISTER with APNs parameters -> 555",
            r.summary() if r else "no answer")
    t.check(kam.contacts("plain") == [], "nothing stored upstream", kam.contacts("plain"))

    t.section("a downstream push server announces +sip.pns")
    r = register(t, edge, "relayed", headers=[("Feature-Caps", '*;+sip.pns="apns"')])
    t.check(r is not None and r.status == 200, "REGISTER relayed and answered 200 by Kamailio",
            r.summary() if r else "no answer")
    contacts = kam.contacts("relayed")
    t.check(len(contacts) == 1, "Kamailio holds one contact", contacts)
    if contacts:
        addr, path = contacts[0]
        t.check("pn-provider=apns" in addr and TOKEN in addr,
                "the Contact reached Kamailio unchanged (push parameters kept)", addr)
        t.check(str(port) not in (path or ""), "no Path to sipwake", path)
        t.check("swb=" not in addr, "no sipwake binding id in it", addr)
    t.check(r is not None and not any('sip.pns="fcm"' in v for v in r.all("feature-caps")),
            "sipwake adds no Feature-Caps of its own to the relayed 200",
            r.all("feature-caps") if r else None)

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
