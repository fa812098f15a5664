#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Web Push end to end (issue 10): browser softphones and UnifiedPush apps
behind Kamailio, woken through the fake Web Push service, which checks
every VAPID signature and decrypts every payload with the subscription's
private key.

  - register: a subscription with its keys registers through sipwake; the
    200 carries Feature-Caps +sip.pns="webpush" with +sip.vapid = the
    operator's VAPID public key (what the app subscribes with);
  - call: the app sleeps; a call gets 110, the push service receives an
    encrypted call push whose payload names the call-id and caller; the app
    registers again from a new connection, gets the held INVITE, answers;
  - cancel: another call, the caller hangs up: 487, and a cancel push
    (reason missed) with the same Topic as the call's push, so the service
    can replace the one still waiting;
  - message: a MESSAGE to the sleeping app is answered 202 and pushed with
    its text;
  - no keys: a subscription without pn-p256dh/pn-auth is woken by a push
    without content;
  - gone: the push service answers 410: the caller gets 480 at once, the
    binding is removed, a second call pushes nothing;
  - allowed hosts (push.webpush.allowed_hosts = 127.0.0.1, *.push.example.net):
    an endpoint on another host is refused with 403 and a Warning, one
    below an allowed domain is bound.
"""
import json
import os
import subprocess

import pushlib
import swlib
import wakelib as W


def asleep(t, env, sw_addr, user, sub, inst, label):
    """A sleeping phone with a Web Push subscription: (phone, the 200 to its REGISTER)."""
    return W.sleeping_phone(t, sw_addr, user, pushlib.webpush_pn(sub), inst, label)


def wait_wp(env, sid, kind, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in env.webpush.pushes(sid):
            if (r.get("payload") or {}).get("type") == kind or (kind == "bare" and r["size"] == 0):
                return r
        time.sleep(0.05)
    return None


def summary(env):
    return "\n".join("  %s status=%s size=%s payload=%s reason=%s" % (
        r.get("sub"), r.get("status"), r.get("size"), r.get("payload"), r.get("reason"))
        for r in env.webpush.pushes()) or "  (no push)"


def main(t):
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t, webpush=True)
    env.webpush.set_rules({"gone": "gone"})
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, upstream_uri=kam.uri, extra={
        "push": {"webpush": {"allowed_hosts": ["127.0.0.1", "*.push.example.net"]}}}))
    sw_addr = (swlib.LOOPBACK, port)

    label = "call"
    t.section("%s: a sleeping browser softphone is woken by Web Push" % label)
    sub = env.webpush.subscribe("browser")
    phone, r = asleep(t, env, sw_addr, "webber", sub, W.instance(61), label)
    fc = " ".join(r.all("feature-caps"))
    t.check('+sip.pns="webpush"' in fc and '+sip.vapid="%s"' % env.pki.vapid_public in fc,
            "%s: 200 carries +sip.pns=\"webpush\" and +sip.vapid with the VAPID public key"
            % label, "Feature-Caps: %s" % fc)
    c = W.started_caller(t, "udp", kam.addr(), "webber", display="Alice Caller")
    c.invite()
    t.check(c.wait_status(lambda s: s == 110, timeout=10) is not None,
            "%s: caller got 110 Push sent" % label, c.flow())
    push = wait_wp(env, "browser", "call")
    if t.check(push is not None, "%s: the push service got an encrypted call push" % label,
               summary(env)):
        pl = push["payload"]
        t.check(pl.get("call-id") == c.call_id and "Alice Caller" == pl.get("from-name")
                and push["headers"].get("urgency") == "high" and push["status"] == 201,
                "%s: it decrypts to the call's call-id and caller, Urgency high, 201" % label,
                "payload %s headers %s" % (pl, push["headers"]))
    phone.connect()
    r = phone.register()
    t.check(r is not None and r.status == 200, "%s: the woken app registers again" % label,
            phone.trace())
    inv = phone.wait_invite(timeout=10)
    if t.check(inv is not None, "%s: the held INVITE reaches it" % label, phone.flow()):
        phone.answer(inv, timeout=0.2)
        ok = c.final(timeout=10)
        t.check(ok is not None and ok.status == 200, "%s: the caller gets its 200" % label,
                c.flow())
        if ok is not None and ok.status == 200:
            c.ack(ok)
            c.bye(ok)
            t.check(phone.wait_bye(inv.call_id, timeout=10) is not None,
                    "%s: the BYE reaches the app" % label, phone.flow())

    label = "cancel"
    t.section("%s: the caller hangs up before the app wakes" % label)
    sub2 = env.webpush.subscribe("tab")
    asleep(t, env, sw_addr, "tabby", sub2, W.instance(62), label)
    c = W.started_caller(t, "udp", kam.addr(), "tabby")
    c.invite()
    call = wait_wp(env, "tab", "call")
    t.check(call is not None, "%s: call push sent" % label, summary(env))
    c.cancel()
    final = c.final(timeout=10)
    t.check(final is not None and final.status == 487, "%s: the INVITE is answered 487" % label,
            c.flow())
    missed = wait_wp(env, "tab", "cancel")
    if t.check(missed is not None and call is not None, "%s: a cancel push follows" % label,
               summary(env)):
        t.check(missed["payload"].get("reason") == "missed"
                and missed["payload"].get("call-id") == c.call_id,
                "%s: reason missed, the call's call-id" % label, missed["payload"])
        t.check(missed["headers"].get("topic") == call["headers"].get("topic")
                and missed["headers"].get("topic"),
                "%s: the same Topic as the call push (the service replaces it)" % label,
                "%s vs %s" % (missed["headers"], call["headers"]))

    label = "message"
    t.section("%s: a MESSAGE to the sleeping app" % label)
    c = W.started_caller(t, "udp", kam.addr(), "tabby", name="msg", display="Bob Sender")
    c.message("hello from the PBX \u00e9")
    f = c.final(timeout=15)
    t.check(f is not None and f.status == 202, "%s: 202 Accepted" % label, c.flow())
    m = wait_wp(env, "tab", "message")
    t.check(m is not None and m["payload"].get("text") == "hello from the PBX \u00e9"
            and m["payload"].get("from-name") == "Bob Sender",
            "%s: the push decrypts to the sender and the text" % label, summary(env))

    label = "no-keys"
    t.section("%s: an endpoint without keys gets a push without content" % label)
    bare = env.webpush.subscribe("bare", keys=False)
    asleep(t, env, sw_addr, "barebones", bare, W.instance(63), label)
    c = W.started_caller(t, "udp", kam.addr(), "barebones")
    c.invite()
    p = wait_wp(env, "bare", "bare")
    t.check(p is not None and p["status"] == 201 and "content-encoding" not in p["headers"],
            "%s: an empty push, accepted" % label, summary(env))
    c.cancel()
    c.final(timeout=10)

    label = "gone"
    t.section("%s: the push service says the subscription is gone (410)" % label)
    gone = env.webpush.subscribe("gone")
    asleep(t, env, sw_addr, "ghost", gone, W.instance(64), label)
    c = W.started_caller(t, "udp", kam.addr(), "ghost")
    c.invite()
    final = c.final(timeout=25)  # call_timeout is 30 s: a 480 before it is the push failure
    t.check(final is not None and final.status == 480,
            "%s: the caller gets 480 once the only push failed" % label, c.flow())
    out = subprocess.run([os.path.join(os.path.dirname(swlib.sipwaked_binary()), "sipwakectl"),
                          "-s", sw.config["admin"]["socket"], "--json", "registrations"],
                         capture_output=True, text=True, timeout=30)
    regs = json.loads(out.stdout)["result"]["registrations"] if out.returncode == 0 else None
    t.check(regs is not None and not [x for x in regs if "ghost" in x.get("aor", "")],
            "%s: the binding is removed" % label, regs)
    n = len(env.webpush.pushes("gone"))
    c2 = W.started_caller(t, "udp", kam.addr(), "ghost", name="caller2")
    c2.invite()
    final2 = c2.final(timeout=25)
    t.check(final2 is not None and final2.status >= 400 and len(env.webpush.pushes("gone")) == n,
            "%s: a second call is refused without a push" % label, c2.flow())

    label = "allowed-hosts"
    t.section("%s: endpoints only on the hosts the operator allows" % label)
    for k, (user, url, want) in enumerate((("intranet", "https://intranet.corp.example/api/x", 403),
                                           ("bare-domain", "https://push.example.net/w/1", 403),
                                           ("below", "https://eu.push.example.net/w/1", 200))):
        p = W.started_phone(t, "tcp", sw_addr, "wp-" + user,
                            pn=pushlib.webpush_pn({"endpoint": url}), inst=W.instance(90 + k),
                            name="%s-%s" % (label, user)).connect()
        r = p.register()
        t.check(r is not None and r.status == want and
                (want == 200 or "allowed_hosts" in (r.get("warning") or "")),
                "%s: %s -> %d%s" % (label, url, want, " naming allowed_hosts" if want != 200
                                    else ""), p.trace())
        p.close()

    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
