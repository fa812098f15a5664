#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An operator's own push service end to end (issue 10): push.http with
provider "acme", standalone mode, the fake service over HTTP/1.1 checking
the path, the auth header line and the JSON body.

  - a phone registers with pn-provider=acme: 200 with Feature-Caps
    +sip.pns="acme"; pn-provider=other (no such service here): 555;
  - a call to the sleeping phone: 110, the service gets the call push
    (token, pn-param, data with the call-id); the phone registers again and
    the held INVITE reaches it;
  - the service answers 410 for another phone's token: the caller gets 480
    at once and the binding is gone.
"""
import json
import os
import subprocess
import time

import swlib
import wakelib as W

PN = ";pn-provider=acme;pn-prid=%s;pn-param=com.example.acme"


def main(t):
    env = W.WakeEnv(t, http_push=True)
    env.http.set_rules({"acme-dead": "gone"})
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port))
    sw_addr = (swlib.LOOPBACK, port)

    label = "register"
    t.section("%s: a phone of the operator's own app" % label)
    phone = W.started_phone(t, "tcp", sw_addr, "acmeuser", pn=PN % "acme-tok-1",
                            inst=W.instance(81), name="acme").connect()
    r = phone.register()
    t.require(r is not None and r.status == 200, "%s: pn-provider=acme -> 200" % label,
              phone.trace())
    fc = " ".join(r.all("feature-caps"))
    t.check('+sip.pns="acme"' in fc, "%s: Feature-Caps names the service" % label, fc)
    other = W.started_phone(t, "tcp", sw_addr, "acmeother", pn=PN.replace("acme;", "other;")
                            % "x", inst=W.instance(82), name="other").connect()
    r2 = other.register()
    t.check(r2 is not None and r2.status == 555, "%s: pn-provider=other -> 555" % label,
            other.trace())
    phone.close()

    label = "call"
    t.section("%s: a call wakes the phone through the service" % label)
    c = W.started_caller(t, "udp", sw_addr, "acmeuser")
    c.invite()
    t.check(c.wait_status(lambda s: s == 110, timeout=10) is not None,
            "%s: caller got 110 Push sent" % label, c.flow())
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:
        got = next((x for x in env.http.requests() if x.get("token") == "acme-tok-1"), None)
        time.sleep(0.05)
    if t.check(got is not None and got["status"] == 200, "%s: the service got the push" % label,
               env.http.requests()):
        b = got["body"]
        t.check(b.get("param") == "com.example.acme" and b["data"].get("type") == "call"
                and b["data"].get("call-id") == c.call_id and b.get("ttl") == "30",
                "%s: token, pn-param, ttl and the call's data" % label, b)
    phone.connect()
    r = phone.register()
    t.check(r is not None and r.status == 200, "%s: the phone registers again" % label,
            phone.trace())
    inv = phone.wait_invite(timeout=10)
    if t.check(inv is not None, "%s: the held INVITE reaches it" % label, phone.flow()):
        phone.answer(inv, timeout=0.2)
        ok = c.final(timeout=10)
        t.check(ok is not None and ok.status == 200, "%s: caller gets 200" % label, c.flow())
        if ok is not None and ok.status == 200:
            c.ack(ok)
            c.bye(ok)
            phone.wait_bye(inv.call_id, timeout=10)

    label = "gone"
    t.section("%s: the service says the token is dead (410)" % label)
    W.sleeping_phone(t, sw_addr, "acmedead", PN % "acme-dead", W.instance(83), label)
    c = W.started_caller(t, "udp", sw_addr, "acmedead", name="caller-dead")
    c.invite()
    f = c.final(timeout=20)
    t.check(f is not None and f.status == 480, "%s: 480 before call_timeout" % label, c.flow())
    out = subprocess.run([os.path.join(os.path.dirname(swlib.sipwaked_binary()), "sipwakectl"),
                          "-s", sw.config["admin"]["socket"], "--json", "registrations"],
                         capture_output=True, text=True, timeout=30)
    regs = json.loads(out.stdout)["result"]["registrations"] if out.returncode == 0 else None
    t.check(regs is not None and not [x for x in regs if "acmedead" in x.get("aor", "")],
            "%s: the binding is removed" % label, regs)

    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
