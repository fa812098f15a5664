#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""When sipwake must NOT push (issue 4 item 6, SPEC 4.3), standalone mode,
fake APNs, one sleeping iOS phone (two-token push parameters, TCP closed).

Each of these requests gets a final answer and no push at all:
  - INVITE with Priority: non-urgent;
  - INVITE with a Replaces header (call transfer / pickup);
  - MESSAGE whose body is an IMDN (message/imdn+xml) -- stored (202), not pushed;
  - MESSAGE whose body is is-composing.
Then a plain INVITE (the control) is pushed: the only push the fake ever
sees for the device is the control call's, on the VoIP token.
"""
import swlib
import wakelib as W

VOIP, REMOTE = "%064x" % 0x5E1E, "%064x" % 0x5E1F
IMDN = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>34jk324j</message-id>'
        '<datetime>2026-01-01T00:00:00Z</datetime><delivery-notification><status>'
        '<delivered/></status></delivery-notification></imdn>')
COMPOSING = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
             '<state>active</state></isComposing>')


def main(t):
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, extra={"push": {"call_timeout": 5}}))
    sw_addr = (swlib.LOOPBACK, port)
    phone = W.started_phone(t, "tcp", sw_addr, "quiet", pn=W.apns2_pn(REMOTE, VOIP),
                            inst=W.instance(81)).connect()
    r = phone.register()
    t.require(r is not None and r.status == 200, "phone registers -> 200", phone.trace())
    phone.close()

    cases = [
        ("INVITE with Priority: non-urgent", "invite", [("Priority", "non-urgent")], None),
        ("INVITE with Replaces", "invite",
         [("Replaces", "other-call@example.com;to-tag=a;from-tag=b"), ("Require", "replaces")],
         None),
        ("IMDN MESSAGE", "message", [], ("message/imdn+xml", IMDN)),
        ("is-composing MESSAGE", "message", [], ("application/im-iscomposing+xml", COMPOSING)),
    ]
    ids = []
    for what, kind, hdrs, body in cases:
        c = W.started_caller(t, "udp", sw_addr, "quiet", name=what)
        if kind == "invite":
            c.invite(extra=hdrs)
        else:
            c.message(body[1], extra=hdrs, ctype=body[0])
        f = c.final(timeout=15)
        ids.append(c.call_id)
        codes = [m.status for m in c.responses()]
        t.check(f is not None, "%s: answered (%s)" % (what, f.summary() if f is not None else None),
                c.flow())
        t.check(110 not in codes, "%s: no 110 Push sent" % what, "responses: %s" % codes)
        if what == "IMDN MESSAGE":
            # A receipt is kept for the phone (stored, 202), it just wakes nobody.
            t.check(f is not None and f.status == 202, "IMDN MESSAGE: stored for later (202)",
                    c.flow())

    control = W.started_caller(t, "udp", sw_addr, "quiet", name="control")
    control.invite()
    push = env.wait_push("apns", VOIP, lambda x: W.push_type(x) == "call", timeout=10)
    t.check(push is not None and W.push_data(push).get("call-id") == control.call_id,
            "control: a plain INVITE to the same device is pushed (VoIP token)",
            W.summarize_pushes(env.apns.requests()))
    control.cancel()
    control.final(timeout=10)
    env.wait_push("apns", REMOTE, lambda x: W.push_type(x) == "cancel", timeout=5)
    all_pushes = env.apns.requests()
    stray = [x for x in all_pushes if W.push_data(x).get("call-id") in ids]
    t.check(not stray, "no push at all for the four requests above",
            W.summarize_pushes(stray))

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
