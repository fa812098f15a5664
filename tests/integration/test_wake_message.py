#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""MESSAGE store-and-forward to a sleeping phone (issue 4 item 4, SPEC 4.4),
gateway mode behind Kamailio, fake APNs.

  - an iOS phone (Linphone two-token push parameters) registers over TCP
    and sleeps; two MESSAGEs sent to its AOR at Kamailio are answered 202
    Accepted; the fake APNs gets an alert push on the REMOTE token (never
    PushKit for a MESSAGE) with the sender and the text;
  - an is-composing MESSAGE is not pushed;
  - the phone registers again from a new connection: both MESSAGEs reach
    it there, in arrival order, with the sender's From; after its 200s a
    further re-registration delivers nothing again;
  - kill -9: a MESSAGE is answered 202, sipwaked is killed with SIGKILL and
    restarted on the same database; the phone re-registers and receives it.
"""
import swlib
import wakelib as W

VOIP = "%064x" % 0x3E55A6E1
REMOTE = "%064x" % 0x3E55A6E2
VOIP2 = "%064x" % 0x3E55A6E3
REMOTE2 = "%064x" % 0x3E55A6E4
TEXT1 = "Hello sleepy phone, are you there? \u00e9t\u00e9 \u2603"
TEXT2 = "second message"
TEXT3 = "this one survives kill -9"
ISCOMPOSING = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
               '<state>active</state></isComposing>')


def send_message(t, kam, user, text, label, name, ctype="text/plain"):
    c = W.started_caller(t, "udp", kam.addr(), user, name=name, display="Alice Sender")
    c.message(text, ctype=ctype)
    f = c.final(timeout=15)
    return c, f


def main(t):
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, upstream_uri=kam.uri))
    sw_addr = (swlib.LOOPBACK, port)

    label = "store"
    t.section("%s: MESSAGEs to a sleeping iOS phone, delivered on re-register" % label)
    phone = W.started_phone(t, "tcp", sw_addr, "sleeper", pn=W.apns2_pn(REMOTE, VOIP),
                            inst=W.instance(51))
    phone.connect()
    r = phone.register()
    t.require(r is not None and r.status == 200, "%s: phone registers -> 200" % label,
              phone.trace())
    phone.close()

    _, fc = send_message(t, kam, "sleeper", ISCOMPOSING, label, "composing",
                         ctype="application/im-iscomposing+xml")
    t.check(fc is not None,
            "%s: is-composing MESSAGE answered (%s)" % (label, fc.summary() if fc else None))
    c1, f1 = send_message(t, kam, "sleeper", TEXT1, label, "msg1")
    t.check(f1 is not None and f1.status == 202, "%s: first MESSAGE -> 202 Accepted" % label,
            c1.flow())
    c2, f2 = send_message(t, kam, "sleeper", TEXT2, label, "msg2")
    t.check(f2 is not None and f2.status == 202, "%s: second MESSAGE -> 202 Accepted" % label,
            c2.flow())
    # the two pushes may reach the provider in either order (concurrent streams)
    push = env.wait_push("apns", REMOTE, lambda x: W.push_type(x) == "message" and
                         W.push_data(x).get("aps", {}).get("alert", {}).get("body") == TEXT1,
                         timeout=10)
    if t.check(push is not None, "%s: fake APNs got the first MESSAGE's push on the remote token"
               % label,
               W.summarize_pushes(env.apns.requests())):
        h, pl = push["headers"], push["payload"]
        t.check(h.get("apns-push-type") == "alert" and h.get("apns-topic") == W.BUNDLE
                and push["status"] == 200,
                "%s: alert push on topic %s (no PushKit for MESSAGE)" % (label, W.BUNDLE),
                "headers: %s" % h)
        alert = pl.get("aps", {}).get("alert", {})
        t.check(alert.get("body") == TEXT1 and "Alice Sender" in str(alert.get("title")),
                "%s: the alert shows the sender and the text" % label, "payload: %s" % pl)
        t.check("caller@" in (pl.get("from-uri") or ""), "%s: payload has the sender URI" % label,
                "payload: %s" % pl)
    t.check(not env.apns_for(VOIP), "%s: nothing sent to the VoIP token" % label,
            W.summarize_pushes(env.apns_for(VOIP)))
    bodies = [W.push_data(x).get("aps", {}).get("alert", {}).get("body", "")
              for x in env.apns_for(REMOTE)]
    t.check(not any("isComposing" in b for b in bodies),
            "%s: no push for the is-composing MESSAGE" % label,
            W.summarize_pushes(env.apns_for(REMOTE)))

    phone.connect()
    r = phone.register()
    t.check(r is not None and r.status == 200, "%s: phone re-registers from a new connection"
            % label, phone.trace())
    m1 = phone.wait_message(timeout=10)
    m2 = phone.wait_message(timeout=10)
    got = [m.body for m in (m1, m2) if m is not None]
    t.check(got == [TEXT1, TEXT2], "%s: both stored MESSAGEs delivered, in order" % label,
            "bodies: %r\n%s" % (got, phone.flow()))
    if m1 is not None:
        t.check("caller@" in (m1.get("from") or ""), "%s: delivered MESSAGE keeps the sender's From"
                % label, "From: %s" % m1.get("from"))
    extra = phone.wait(lambda m: m.method == "MESSAGE" and m.body in (TEXT1, TEXT2), 1.5)
    t.check(extra is None, "%s: each stored MESSAGE delivered once" % label, phone.flow())
    r = phone.register()
    t.check(r is not None and r.status == 200, "%s: another refresh -> 200" % label)
    again = phone.wait(lambda m: m.method == "MESSAGE", 2.0)
    t.check(again is None, "%s: nothing delivered again after the 200s" % label, phone.flow())
    phone.close()

    label = "kill-9"
    t.section("%s: a stored MESSAGE survives SIGKILL of sipwaked" % label)
    p2 = W.started_phone(t, "tcp", sw_addr, "crashy", pn=W.apns2_pn(REMOTE2, VOIP2),
                         inst=W.instance(52))
    p2.connect()
    r = p2.register()
    t.require(r is not None and r.status == 200, "%s: phone registers -> 200" % label, p2.trace())
    p2.close()
    c3, f3 = send_message(t, kam, "crashy", TEXT3, label, "msg3")
    t.check(f3 is not None and f3.status == 202, "%s: MESSAGE -> 202 Accepted" % label, c3.flow())
    t.check(env.wait_push("apns", REMOTE2, lambda x: W.push_type(x) == "message", 10) is not None,
            "%s: alert push sent" % label, W.summarize_pushes(env.apns.requests()))
    sw.kill9()
    t.log("  (sipwaked killed with SIGKILL, restarting on the same database)")
    sw.start()
    p2.connect()
    r = p2.register()
    t.check(r is not None and r.status == 200, "%s: phone re-registers with the restarted sipwake"
            % label, p2.trace())
    m3 = p2.wait_message(timeout=10)
    t.check(m3 is not None and m3.body == TEXT3, "%s: the MESSAGE stored before the crash is "
            "delivered" % label, p2.flow())
    p2.close()

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
