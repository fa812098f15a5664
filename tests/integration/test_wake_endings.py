#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How a held call ends (issue 4 item 3, SPEC 4.3, 5), gateway mode behind
Kamailio unless noted; phones and caller are Python (wakelib), the providers
the fake APNs/FCM.

  - cancel: the caller CANCELs while the phone sleeps: 200 to the CANCEL,
    487 to the INVITE, and the fake gets a "cancel" push (reason missed)
    for the call's call-id (push.missed_call_push).
  - timeout: the phone never wakes (call_timeout = 3): 110, then 480.
  - two devices, one answers (gateway: Kamailio forks; standalone: sipwake
    forks): A (FCM, asleep) wakes and answers; B (live UDP, no push) rang
    and gets a CANCEL with Reason: SIP;cause=200; C (APNs, asleep, never
    wakes) gets a cancel push with reason answered_elsewhere; A gets none.
  - stale branch: an app frozen after ringing on its old UDP port wakes
    and registers from a new port: the INVITE goes there and the branch to
    the old contact is CANCELled.
  - APNs 410 for the token: the caller gets 480 without waiting for
    call_timeout (30 s here), the binding is gone: a second call is refused
    (>= 400) and the fake sees no further push to that token.
"""
import os

import swlib
import wakelib as W

T_CANCEL = "%064x" % 0xCA0CE1        # VoIP token
R_CANCEL = "%064x" % 0xCA0CE2        # remote (alert) token of the same phone
T_SLEEPY = "%064x" % 0x51EE9
T_ELSEWHERE = "%064x" % 0xE15E
T_ELSEWHERE_SA = "%064x" % 0xE15E2
R_ELSEWHERE = "%064x" % 0xE15E3
R_ELSEWHERE_SA = "%064x" % 0xE15E4
T_GONE = "%064x" % 0x410410
F_ANSWER = "fcm-answerer-" + "a" * 30
F_ANSWER_SA = "fcm-answerer-sa-" + "a" * 30
F_STALE = "fcm-stale-" + "s" * 30


def phone_asleep(t, env, sw_addr, user, pn, inst, label, transport="tcp"):
    """A phone that registered with push params and then went to sleep."""
    return W.sleeping_phone(t, sw_addr, user, pn, inst, label, transport, ca=env.pki.ca)[0]


def case_cancel(t, env, kam, sw_addr):
    label = "cancel"
    t.section("%s: caller hangs up before the phone wakes" % label)
    phone_asleep(t, env, sw_addr, "cx", W.apns2_pn(R_CANCEL, T_CANCEL), W.instance(21), label)
    c = W.started_caller(t, "udp", kam.addr(), "cx")
    c.invite()
    got110 = c.wait_status(lambda s: s == 110, timeout=10)
    t.check(got110 is not None, "%s: caller got 110 Push sent" % label, c.flow())
    push = env.wait_push("apns", T_CANCEL, lambda r: W.push_type(r) == "call", timeout=10)
    t.check(push is not None, "%s: fake APNs got the call push" % label,
            W.summarize_pushes(env.apns.requests()))
    c.cancel()
    ok = c.wait(lambda m: m.status == 200 and m.cseq_method == "CANCEL", timeout=10)
    t.check(ok is not None, "%s: 200 to the CANCEL" % label, c.flow())
    final = c.final(timeout=10)
    t.check(final is not None and final.status == 487, "%s: the INVITE is answered 487" % label,
            c.flow())
    missed = env.wait_push("apns", R_CANCEL, lambda r: W.push_type(r) == "cancel", timeout=10)
    if t.check(missed is not None, "%s: fake APNs got a cancel push for the device's remote "
               "token" % label, W.summarize_pushes(env.apns.requests())):
        pl = missed["payload"]
        t.check(pl.get("reason") == "missed" and pl.get("call-id") == c.call_id,
                "%s: cancel push: reason missed, call-id of the call" % label, "payload: %s" % pl)
        t.check(missed["headers"].get("apns-push-type") == "alert"
                and missed["headers"].get("apns-topic") == W.BUNDLE and missed["status"] == 200,
                "%s: missed-call push is an alert on the app topic (no PushKit for it)" % label,
                "headers: %s" % missed["headers"])


def case_timeout(t, env, kam, sw_addr):
    label = "timeout"
    t.section("%s: the phone never wakes (call_timeout = 3 s)" % label)
    phone_asleep(t, env, sw_addr, "sleepy", W.apns_pn(T_SLEEPY), W.instance(22), label)
    c = W.started_caller(t, "udp", kam.addr(), "sleepy")
    c.invite()
    final = c.final(timeout=20)
    codes = [m.status for m in c.responses()]
    t.check(110 in codes, "%s: caller got 110 Push sent" % label, c.flow())
    t.check(final is not None and final.status == 480,
            "%s: 480 Temporarily Unavailable after call_timeout" % label, c.flow())
    t.check(env.wait_push("apns", T_SLEEPY, lambda r: W.push_type(r) == "call", 1) is not None,
            "%s: the call push was sent" % label, W.summarize_pushes(env.apns_for(T_SLEEPY)))


def case_two_devices(t, env, sw_addr, call_to, label, user, f_token, a_token, r_token,
                     inst_base):
    t.section("%s: three devices of %s; A wakes and answers, B (live) rang, C sleeps"
              % (label, user))
    a = phone_asleep(t, env, sw_addr, user, W.fcm_pn(f_token), W.instance(inst_base + 1),
                     label + "-A")
    b = W.started_phone(t, "udp", sw_addr, user, inst=W.instance(inst_base + 2),
                        name="%s-B" % label).connect()
    r = b.register()
    t.require(r is not None and r.status == 200, "%s: B (UDP, no push, awake) registers" % label,
              b.trace())
    phone_asleep(t, env, sw_addr, user, W.apns2_pn(r_token, a_token), W.instance(inst_base + 3),
                 label + "-C")
    c = W.started_caller(t, "udp", call_to, user)
    c.invite()
    inv_b = b.wait_invite(timeout=10)
    t.check(inv_b is not None, "%s: B (live flow) got the INVITE at once" % label, b.flow())
    if inv_b is not None:
        b.respond(inv_b, 180, "Ringing")
    pa = env.wait_push("fcm", f_token, lambda x: W.push_type(x) == "call", timeout=10)
    pc = env.wait_push("apns", a_token, lambda x: W.push_type(x) == "call", timeout=10)
    t.check(pa is not None and pc is not None, "%s: A (FCM) and C (APNs) were both pushed" % label,
            "FCM:\n%s\nAPNs:\n%s" % (W.summarize_pushes(env.fcm_for(f_token)),
                                     W.summarize_pushes(env.apns_for(a_token))))
    a.connect()
    r = a.register()
    t.check(r is not None and r.status == 200, "%s: A re-registers from a new connection" % label,
            a.trace())
    inv_a = a.wait_invite(timeout=10)
    if not t.check(inv_a is not None, "%s: A got the held INVITE" % label, a.flow()):
        return
    a.answer(inv_a, timeout=0.2)
    ok = c.final(timeout=10)
    t.check(ok is not None and ok.status == 200, "%s: caller got A's 200" % label, c.flow())
    if inv_b is not None:
        cancel = b.wait_cancel(inv_b, timeout=10)
        reason = cancel.get("reason") if cancel is not None else None
        t.check(cancel is not None, "%s: B got a CANCEL" % label, b.flow())
        t.check(reason is not None and "cause=200" in reason.replace(" ", ""),
                "%s: B's CANCEL has Reason: SIP;cause=200" % label,
                "Reason: %s\n%s" % (reason, cancel.text if cancel is not None else b.flow()))
    if ok is not None and ok.status == 200:
        c.ack(ok)
        t.check(a.wait(lambda m: m.method == "ACK" and m.call_id == inv_a.call_id, 10) is not None,
                "%s: the caller's ACK reached A through sipwake" % label, a.flow())
        c.bye(ok)
        t.check(a.wait_bye(inv_a.call_id, timeout=10) is not None,
                "%s: the BYE reached A" % label, a.flow())
        byeok = c.wait_bye_ok(timeout=10)
        t.check(byeok is not None and byeok.status == 200, "%s: 200 to the caller's BYE" % label,
                c.flow())
    pe = env.wait_push("apns", r_token, lambda x: W.push_type(x) == "cancel", timeout=10)
    t.check(pe is not None and W.push_data(pe).get("reason") == "answered_elsewhere"
            and W.push_data(pe).get("call-id") == c.call_id,
            "%s: C (pushed, never reached) got a cancel push, reason answered_elsewhere" % label,
            W.summarize_pushes(env.apns_for(r_token) + env.apns_for(a_token)))
    t.check(not [x for x in env.fcm_for(f_token) if W.push_type(x) == "cancel"],
            "%s: A, which answered, got no cancel push" % label,
            W.summarize_pushes(env.fcm_for(f_token)))


def case_stale_branch(t, env, kam, sw_addr):
    label = "stale-branch"
    t.section("%s: frozen app on UDP rang on its old port, wakes on a new one" % label)
    old = W.started_phone(t, "udp", sw_addr, "frozen", pn=W.fcm_pn(F_STALE), inst=W.instance(45),
                          name="frozen-old").connect()
    r = old.register()
    t.require(r is not None and r.status == 200, "%s: phone registers over UDP" % label,
              old.trace())
    c = W.started_caller(t, "udp", kam.addr(), "frozen")
    c.invite()
    inv_old = old.wait_invite(timeout=10)
    t.check(inv_old is not None, "%s: the old UDP contact (live flow) got the INVITE" % label,
            old.flow())
    if inv_old is not None:
        old.respond(inv_old, 180, "Ringing")  # then the app freezes
    t.check(env.wait_push("fcm", F_STALE, lambda x: W.push_type(x) == "call", 10) is not None,
            "%s: and a call push was sent" % label, W.summarize_pushes(env.fcm_for(F_STALE)))
    new = W.started_phone(t, "udp", sw_addr, "frozen", pn=W.fcm_pn(F_STALE), inst=W.instance(45),
                          name="frozen-new").connect()
    r = new.register()
    t.check(r is not None and r.status == 200 and new.port != old.port,
            "%s: the woken app registers from a new UDP port" % label, new.trace())
    inv_new = new.wait_invite(timeout=10)
    t.check(inv_new is not None, "%s: the INVITE reaches the new port" % label, new.flow())
    if inv_old is not None:
        cancel = old.wait_cancel(inv_old, timeout=10)
        t.check(cancel is not None, "%s: the branch to the stale contact is cancelled" % label,
                old.flow())
    if inv_new is not None:
        new.answer(inv_new, timeout=0.2)
        ok = c.final(timeout=10)
        t.check(ok is not None and ok.status == 200, "%s: caller gets the woken phone's 200"
                % label, c.flow())
        if ok is not None and ok.status == 200:
            c.ack(ok)
            c.bye(ok)
            new.wait_bye(inv_new.call_id, timeout=10)
            t.check(c.wait_bye_ok(10) is not None, "%s: BYE completes" % label, c.flow())


def case_gone(t, env, kam, sw_addr):
    label = "apns-410"
    t.section("%s: APNs answers 410 Unregistered for the device's token" % label)
    phone_asleep(t, env, sw_addr, "gone", W.apns_pn(T_GONE), W.instance(41), label)
    c = W.started_caller(t, "udp", kam.addr(), "gone")
    c.invite()
    final = c.final(timeout=25)  # call_timeout is 30 s: a 480 before it is the push failure
    t.check(final is not None and final.status == 480,
            "%s: caller gets 480 once the only push failed (before call_timeout)" % label,
            c.flow())
    first = env.apns_for(T_GONE)
    t.check(len(first) == 1 and first[0]["status"] == 410,
            "%s: the fake answered the push 410" % label, W.summarize_pushes(first))
    c2 = W.started_caller(t, "udp", kam.addr(), "gone", name="caller2")
    c2.invite()
    final2 = c2.final(timeout=25)
    t.check(final2 is not None and final2.status >= 400,
            "%s: a second call is refused (binding removed): %s" % (
                label, final2.summary() if final2 is not None else None), c2.flow())
    after = env.apns_for(T_GONE)
    t.check(len(after) == 1, "%s: no further push to the removed token" % label,
            W.summarize_pushes(after))


def main(t):
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t, apns_rules={T_GONE: "gone"})
    p_long, p_short, p_sa = swlib.free_port(), swlib.free_port(), swlib.free_port()
    long_ = t.sipwaked(env.config(p_long, upstream_uri=kam.uri,
                                  workdir=os.path.join(t.dir, "long"),
                                  extra={"push": {"call_timeout": 30}}), name="sw-long")
    short = t.sipwaked(env.config(p_short, upstream_uri=kam.uri,
                                  workdir=os.path.join(t.dir, "short"),
                                  extra={"push": {"call_timeout": 3}}), name="sw-short")
    sa = t.sipwaked(env.config(p_sa, workdir=os.path.join(t.dir, "standalone"),
                               extra={"push": {"call_timeout": 30}}), name="sw-standalone")
    a_long, a_short, a_sa = [(swlib.LOOPBACK, p) for p in (p_long, p_short, p_sa)]

    case_cancel(t, env, kam, a_long)
    case_timeout(t, env, kam, a_short)
    case_two_devices(t, env, a_long, kam.addr(), "gateway-fork", "duo", F_ANSWER, T_ELSEWHERE,
                     R_ELSEWHERE, 30)
    case_two_devices(t, env, a_sa, a_sa, "standalone-fork", "trio", F_ANSWER_SA,
                     T_ELSEWHERE_SA, R_ELSEWHERE_SA, 35)
    case_stale_branch(t, env, kam, a_long)
    case_gone(t, env, kam, a_long)

    t.section("shutdown")
    for d in (long_, short, sa):
        t.check(d.stop() == 0, "SIGTERM: %s exits 0 within 5 s" % d.name)


if __name__ == "__main__":
    swlib.run(main)
