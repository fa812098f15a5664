#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Web Push subscriptions in a REGISTER (issue 10): sipwake parses and
checks them (pn-provider=webpush, the endpoint in pn-prid, the keys in
pn-p256dh and pn-auth; docs/client-guide.md). A malformed one gets 400
with a Warning naming the parameter; a well-formed one gets 555 on a
server without push.webpush configured, like any provider it has no
credentials for. No binding is made either way (test_wake_webpush.py has
the configured case)."""
import json
import os
import subprocess

import swlib

BUILD = os.environ.get("SIPWAKE_BUILD_DIR") or os.path.dirname(swlib.sipwaked_binary())
P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
URL = "https%3A%2F%2Fpush.example.net%2Fwpush%2Fv2%2FgAAAAB-x_y"


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=True))
    edge = (swlib.LOOPBACK, port)
    cases = [
        ("a subscription with its keys", ";pn-provider=webpush;pn-prid=%s;pn-p256dh=%s;pn-auth=%s"
         % (URL, P256DH, AUTH), 555, None),
        ("an endpoint without keys", ";pn-provider=webpush;pn-prid=" + URL, 555, None),
        ("an http endpoint", ";pn-provider=webpush;pn-prid=http%3A%2F%2Fpush.example.net%2Fx",
         400, "pn-prid"),
        ("an endpoint with user info",
         ";pn-provider=webpush;pn-prid=https%3A%2F%2Fu%40push.example.net%2Fx", 400, "pn-prid"),
        ("a key without the auth secret", ";pn-provider=webpush;pn-prid=%s;pn-p256dh=%s"
         % (URL, P256DH), 400, "pn-auth"),
        ("a compressed or short key", ";pn-provider=webpush;pn-prid=%s;pn-p256dh=%s;pn-auth=%s"
         % (URL, P256DH[:-4], AUTH), 400, "pn-p256dh"),
        ("an endpoint over 2048 bytes", ";pn-provider=webpush;pn-prid=" + URL + "x" * 2100,
         400, "pn-prid"),
    ]
    for i, (what, params, want, pname) in enumerate(cases):
        with swlib.RawSip("udp", edge) as c:
            req = swlib.build_request(
                "REGISTER", "sip:" + swlib.DOMAIN, "udp", c.local,
                from_uri="sip:wp%d@%s" % (i, swlib.DOMAIN),
                headers=[("Contact", "<sip:wp%d@%s:%d%s>" % (i, c.local[0], c.local[1], params)),
                         ("Expires", "600")])
            r = c.request(req)[0]
        warn = (r.get("warning") or "") if r else ""
        t.check(r is not None and r.status == want and (pname is None or pname in warn),
                "%s: %d%s" % (what, want, " naming %s" % pname if pname else ""),
                r.text if r else None)
    out = subprocess.run([os.path.join(BUILD, "sipwakectl"), "-s", sw.config["admin"]["socket"],
                          "--json", "registrations"], capture_output=True, text=True, timeout=30)
    regs = json.loads(out.stdout)["result"]["registrations"] if out.returncode == 0 else None
    t.check(regs == [], "no binding was made", regs)
    t.check(sw.stop() == 0, "sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
