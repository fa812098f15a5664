#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Wake-up routing, the whole call (issue 4, SPEC 4.3): gateway mode with
Kamailio as the registrar, the fake APNs/FCM as providers.

A phone registers through sipwake with push parameters, then its app is
suspended (its connection closes / its UDP socket goes away). A caller
(sipp uac.xml) calls its AOR at Kamailio, which routes the INVITE back
through sipwake's Path. Checked on the wire and at the fake provider:
  - the fake receives ONE call push for the device's token with the right
    headers and payload (APNs: apns-push-type voip, topic BUNDLE.voip,
    priority 10, expiration 0, call-id/from-uri of the call; FCM: data-only,
    android.priority HIGH, type call, call-id);
  - the caller gets 100 and "110 Push sent" through Kamailio;
  - the phone registers again from a NEW socket (new port, new connection);
    the held INVITE reaches it there (sipwake's Via on top, same Call-ID,
    over the new flow), the call completes, the BYE comes through sipwake;
  - no "answered elsewhere" push to the device that took the call.
Cases: iOS over TLS (Python phone: this sipp has no TLS), FCM over TCP and
over UDP (sipp register.xml, then register_then_answer.xml + uas.xml).
"""
import os
import time

import swlib
import wakelib as W

CALL_TIMEOUT = 20
APNS_TOKEN = "%064x" % 0x10C0FFEE
FCM_TCP = "fcm-wake-tcp-" + "t" * 30
FCM_UDP = "fcm-wake-udp-" + "u" * 30


def start_caller(t, kam, user, label):
    return t.sipp("uac.xml", kam.addr(), name="caller-" + label, user=user, transport="udp",
                  pause_ms=300, timeout=CALL_TIMEOUT + 15).start()


def check_caller(t, label, caller, cres):
    t.check(cres.rc == 0, "%s: caller completed INVITE/200/ACK/BYE/200 (sipp exit 0)" % label,
            cres.describe())
    codes = [m.status for m in cres.received() if m.cseq_method == "INVITE" and m.status]
    t.check(110 in codes, "%s: caller got 110 Push sent through Kamailio" % label,
            "INVITE responses: %s" % codes)
    t.check(codes and codes[-1] == 200 or 200 in codes, "%s: caller got 200 to INVITE" % label)


def check_no_elsewhere(t, label, pushes):
    t.check(not [r for r in pushes if W.push_type(r) == "cancel"],
            "%s: no cancel/answered-elsewhere push to the device that answered" % label,
            W.summarize_pushes(pushes))


def ios_tls(t, env, kam, sw_addr, tls_addr):
    label = "ios-tls"
    t.section("%s: APNs VoIP push, phone re-registers on a new TLS connection" % label)
    user = "ios"
    phone = W.started_phone(t, "tls", tls_addr, user, pn=W.apns_pn(APNS_TOKEN),
                            inst=W.instance(1), ca=env.pki.ca).connect()
    r = phone.register()
    t.require(r is not None and r.status == 200, "%s: REGISTER over TLS -> 200" % label,
              phone.trace())
    first_port = phone.port
    phone.close()  # the app is suspended: iOS closes its sockets
    time.sleep(0.3)

    caller = start_caller(t, kam, user, label)
    push = env.wait_push("apns", APNS_TOKEN, lambda x: W.push_type(x) == "call", timeout=10)
    if not t.check(push is not None, "%s: fake APNs got a call push for the token" % label,
                   "fake APNs log:\n%s\ncaller so far:\n%s" % (
                       W.summarize_pushes(env.apns.requests()),
                       swlib.tail(caller.msg_log, 40))):
        caller.stop()
        return
    h, pl = push["headers"], push["payload"]
    t.check(h.get("apns-push-type") == "voip" and h.get("apns-topic") == W.BUNDLE + ".voip",
            "%s: VoIP push: apns-push-type voip, apns-topic %s.voip" % (label, W.BUNDLE),
            "headers: %s" % h)
    t.check(h.get("apns-priority") == "10" and h.get("apns-expiration") == "0",
            "%s: apns-priority 10, apns-expiration 0" % label, "headers: %s" % h)
    t.check(push["status"] == 200, "%s: the fake accepted the push (JWT, headers, payload)" % label,
            "status %s reason %s" % (push["status"], push.get("reason")))
    t.check("caller@" in (pl.get("from-uri") or "") and pl.get("from-name") == "Caller"
            and pl.get("call-id"),
            "%s: payload carries call-id, caller URI and display name" % label, "payload: %s" % pl)

    phone.connect()
    t.check(phone.port != first_port, "%s: the woken phone uses a new port (%d -> %d)"
            % (label, first_port, phone.port))
    r = phone.register()
    t.check(r is not None and r.status == 200, "%s: re-REGISTER on the new connection -> 200"
            % label, phone.trace())
    inv = phone.wait_invite(timeout=10)
    if not t.check(inv is not None, "%s: the held INVITE reached the phone on its new connection"
                   % label, phone.flow()):
        caller.stop()
        return
    t.check(inv.call_id == pl.get("call-id"), "%s: the push's call-id is the INVITE's Call-ID"
            % label, "push %s, INVITE %s" % (pl.get("call-id"), inv.call_id))
    top = swlib.via_sent_by(inv.all("via")[0])
    t.check(top and top[0] == "TLS" and (top[1], top[2]) == tls_addr,
            "%s: INVITE came from sipwake over TLS (top Via %s:%d/TLS)" % (label, *tls_addr),
            "Via: %s" % inv.all("via"))
    ack = phone.answer(inv)
    t.check(ack is not None, "%s: ACK reached the phone" % label, phone.flow())
    bye = phone.wait_bye(inv.call_id, timeout=15)
    t.check(bye is not None and swlib.via_sent_by(bye.all("via")[0])[2] == tls_addr[1],
            "%s: BYE reached the phone through sipwake" % label, phone.flow())
    cres = caller.wait()
    check_caller(t, label, caller, cres)
    t.check(cres.sent("INVITE") and cres.sent("INVITE")[0].call_id == inv.call_id,
            "%s: same Call-ID at the caller and the phone" % label)
    pushes = env.apns_for(APNS_TOKEN)
    t.check(len([x for x in pushes if W.push_type(x) == "call"]) == 1,
            "%s: exactly one call push for the call" % label, W.summarize_pushes(pushes))
    check_no_elsewhere(t, label, pushes)


def fcm_sipp(t, env, kam, sw_addr, transport):
    label = "fcm-" + transport
    t.section("%s: FCM push, sipp phone re-registers from a new port" % label)
    user = "droid-" + transport
    token = FCM_TCP if transport == "tcp" else FCM_UDP
    keys = {"pn": W.fcm_pn(token), "ctp": ";" + W.instance(2 if transport == "tcp" else 3),
            "exp": "600"}
    reg = t.sipp("register.xml", sw_addr, name="%s-first" % label, transport=transport,
                 user=user, keys=keys, timeout=10).run()
    t.require(reg.rc == 0, "%s: first REGISTER through sipwake -> 200 (then sipp exits, "
              "its socket is gone)" % label, reg.describe())
    first_port = reg.argv[reg.argv.index("-p") + 1]

    caller = start_caller(t, kam, user, label)
    push = env.wait_push("fcm", token, lambda x: W.push_type(x) == "call", timeout=10)
    if not t.check(push is not None, "%s: fake FCM got a call push for the token" % label,
                   "fake FCM log:\n%s\ncaller so far:\n%s" % (
                       W.summarize_pushes(env.fcm.requests()), swlib.tail(caller.msg_log, 40))):
        caller.stop()
        return
    msg = push["body"]["message"]
    data = msg.get("data", {})
    t.check(push["status"] == 200 and msg.get("android", {}).get("priority") == "HIGH",
            "%s: accepted data-only FCM message, android.priority HIGH" % label,
            "status %s, message %s" % (push["status"], msg))
    t.check(data.get("type") == "call" and data.get("call-id") and "caller@" in data.get("from-uri", ""),
            "%s: data carries type call, call-id, caller URI" % label, "data: %s" % data)

    phone = t.sipp("register_then_answer.xml", sw_addr, name="%s-woken" % label,
                   transport=transport, user=user, keys=keys, oocsf="uas.xml",
                   timeout=CALL_TIMEOUT + 10).start()
    t.check(str(phone.port) != first_port, "%s: woken phone on a new port (%s -> %d)"
            % (label, first_port, phone.port))
    pres = phone.wait()
    cres = caller.wait()
    t.check(pres.rc == 0, "%s: woken phone registered, got the INVITE, answered, got the BYE"
            % label, pres.describe())
    invs = pres.received("INVITE")
    if t.check(invs, "%s: the held INVITE reached the woken phone" % label, pres.describe()):
        inv = invs[0]
        top = swlib.via_sent_by(inv.all("via")[0])
        t.check(top and top[0] == transport.upper() and (top[1], top[2]) == sw_addr,
                "%s: INVITE from sipwake (top Via %s:%d/%s)" % (label, *sw_addr, transport.upper()),
                "Via: %s" % inv.all("via"))
        t.check(inv.call_id == data.get("call-id"), "%s: push call-id = INVITE Call-ID" % label)
        t.check(pres.received("BYE"), "%s: BYE reached the phone through sipwake" % label)
    check_caller(t, label, caller, cres)
    pushes = env.fcm_for(token)
    t.check(len([x for x in pushes if W.push_type(x) == "call"]) == 1,
            "%s: exactly one call push for the call" % label, W.summarize_pushes(pushes))
    check_no_elsewhere(t, label, pushes)


def full_unwind_under_asan():
    """sofia-sip leaks each TLS connection's SSL (tests/lsan.supp); the
    suppression can only match with full stacks (OpenSSL has no frame
    pointers). Only this test runs a TLS listener, so only its sipwaked pays
    for the slower unwinding."""
    opts = os.environ.get("ASAN_OPTIONS")
    if opts is not None and "fast_unwind_on_malloc" not in opts:
        os.environ["ASAN_OPTIONS"] = opts + ":fast_unwind_on_malloc=0"


def main(t):
    full_unwind_under_asan()
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t)
    port, tls_port = swlib.free_port(), swlib.free_port()
    sw = t.sipwaked(env.config(port, tls_port, upstream_uri=kam.uri,
                               extra={"push": {"call_timeout": CALL_TIMEOUT}}))
    sw_addr, tls_addr = (swlib.LOOPBACK, port), (swlib.LOOPBACK, tls_port)
    ios_tls(t, env, kam, sw_addr, tls_addr)
    fcm_sipp(t, env, kam, sw_addr, "tcp")
    fcm_sipp(t, env, kam, sw_addr, "udp")
    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
