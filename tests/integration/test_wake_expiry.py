#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Re-registration wake-up before expiry (issue 4 item 5, SPEC 4.6,
RFC 8599 5.5), standalone mode (Kamailio would raise short expiries to its
own minimum), registrar.min_expires = 1, push.wakeup_before_expiry = 4.

  - an iOS phone (two-token) and an Android phone register with Expires: 6
    and sleep: each gets ONE background push before its binding expires
    (APNs: apns-push-type background, apns-priority 5, aps
    content-available 1 only, on the remote token; FCM: data type wakeup);
  - the iOS phone refreshes after its wake-up push: the new registration
    gets its own wake-up push;
  - a phone that unregisters (Expires: 0) right after registering never
    gets one, nor does any binding after it expired; a call to an expired
    binding is refused without a push (bindings are purged on expiry).
"""
import time

import swlib
import wakelib as W

EXPIRES = 6
BEFORE = 4
IOS_VOIP, IOS_REMOTE = "%064x" % 0xB6A, "%064x" % 0xB6B
GONE_VOIP, GONE_REMOTE = "%064x" % 0xB6C, "%064x" % 0xB6D
DROID = "fcm-wakeup-" + "w" * 30


def wakeups(env, provider, token):
    get = env.apns_for if provider == "apns" else env.fcm_for
    return [r for r in get(token) if W.push_type(r) == "wakeup"]


def main(t):
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, extra={
        "registrar": {"min_expires": 1},
        "push": {"wakeup_before_expiry": BEFORE}}))
    sw_addr = (swlib.LOOPBACK, port)

    t.section("register with Expires: %d, then sleep" % EXPIRES)
    ios = W.started_phone(t, "tcp", sw_addr, "ios-exp", pn=W.apns2_pn(IOS_REMOTE, IOS_VOIP),
                          inst=W.instance(61)).connect()
    droid = W.started_phone(t, "udp", sw_addr, "droid-exp", pn=W.fcm_pn(DROID),
                            inst=W.instance(62)).connect()
    unreg = W.started_phone(t, "tcp", sw_addr, "unreg-exp", pn=W.apns2_pn(GONE_REMOTE, GONE_VOIP),
                            inst=W.instance(63)).connect()
    for p in (ios, droid, unreg):
        r = p.register(expires=EXPIRES)
        t.require(r is not None and r.status == 200, "%s: REGISTER Expires %d -> 200"
                  % (p.name, EXPIRES), p.trace())
    r = unreg.register(expires=0)
    t.check(r is not None and r.status == 200, "unreg-exp: unregisters (Expires: 0) -> 200",
            unreg.trace())
    ios.close()
    droid.close()
    unreg.close()

    t.section("wake-up pushes")
    w = env.wait_push("apns", IOS_REMOTE, lambda x: W.push_type(x) == "wakeup", timeout=EXPIRES + 3)
    if t.check(w is not None, "ios: background wake-up push before expiry",
               W.summarize_pushes(env.apns.requests())):
        h = w["headers"]
        t.check(h.get("apns-push-type") == "background" and h.get("apns-priority") == "5"
                and h.get("apns-topic") == W.BUNDLE and w["status"] == 200,
                "ios: apns-push-type background, apns-priority 5, topic %s" % W.BUNDLE,
                "headers: %s" % h)
        t.check(w["payload"].get("aps") == {"content-available": 1},
                "ios: aps is content-available 1 only", "payload: %s" % w["payload"])
    f = env.wait_push("fcm", DROID, lambda x: W.push_type(x) == "wakeup", timeout=EXPIRES + 3)
    if t.check(f is not None, "android: FCM wake-up push before expiry",
               W.summarize_pushes(env.fcm.requests())):
        t.check(f["status"] == 200 and f["body"]["message"]["android"]["priority"] == "HIGH",
                "android: accepted data-only message", "message: %s" % f["body"]["message"])

    t.section("refresh after the wake-up push")
    ios.connect()
    r = ios.register(expires=EXPIRES)
    t.check(r is not None and r.status == 200, "ios: refreshes after its wake-up push",
            ios.trace())
    ios.close()
    deadline = time.monotonic() + EXPIRES + 3
    while time.monotonic() < deadline and len(wakeups(env, "apns", IOS_REMOTE)) < 2:
        time.sleep(0.1)
    t.check(len(wakeups(env, "apns", IOS_REMOTE)) == 2,
            "ios: the refreshed registration got its own wake-up push",
            W.summarize_pushes(env.apns_for(IOS_REMOTE)))

    t.section("no push after expiry, none to an unregistered binding")
    time.sleep(BEFORE + 2)  # every binding has expired by now (Expires %d)
    t.check(len(wakeups(env, "fcm", DROID)) == 1, "android: exactly one wake-up push in all",
            W.summarize_pushes(env.fcm_for(DROID)))
    t.check(len(wakeups(env, "apns", IOS_REMOTE)) == 2,
            "ios: no wake-up push once the binding expired",
            W.summarize_pushes(env.apns_for(IOS_REMOTE)))
    t.check(not env.apns_for(GONE_REMOTE) and not env.apns_for(GONE_VOIP),
            "unreg-exp: no push at all to the unregistered binding",
            W.summarize_pushes(env.apns_for(GONE_REMOTE) + env.apns_for(GONE_VOIP)))
    t.check(not env.apns_for(IOS_VOIP), "ios: nothing to the VoIP token (PushKit only for calls)",
            W.summarize_pushes(env.apns_for(IOS_VOIP)))

    c = W.started_caller(t, "udp", sw_addr, "droid-exp")
    c.invite()
    f = c.final(timeout=10)
    t.check(f is not None and f.status >= 400 and f.status != 487,
            "android: a call after expiry is refused (the binding was purged): %s"
            % (f.summary() if f is not None else None), c.flow())
    t.check(not [r for r in env.fcm_for(DROID) if W.push_type(r) == "call"],
            "android: no call push to the expired binding", W.summarize_pushes(env.fcm_for(DROID)))

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
