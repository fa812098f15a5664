#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The held request's lifecycle (issue 8 items 4 and 8): every ending
answers the caller once and frees the transaction. Standalone mode, fake
APNs; the control socket's `status` gives the live transaction count.

  - CANCEL while the phone rings (180 relayed): the phone gets the CANCEL,
    the caller gets the relayed 487, and no transaction is left behind;
  - after the 2xx (and past nta's own 5 s): the INVITE retransmitted gets
    the same 2xx and does not reach the phone again, a CANCEL gets 481, the
    phone's 2xx sent again still reaches the caller (one with a repeated
    header does not, and sipwake lives), then ACK and BYE; no transaction
    stays; a forged 2xx for no call of ours is not relayed;
  - a forked INVITE answered by two devices: the caller gets both 200s;
  - a device declines with 603: the caller gets 603, and neither the
    decliner refreshing its registration nor a second (pushed) device
    waking up afterwards is rung again (RFC 3261 16.7);
  - call_timeout (3 s) while a branch rings: 480 at the timeout, the
    ringing phone gets a CANCEL;
  - a second call within push.min_interval (30 s) of the first push is not
    refused at once: when the phone wakes, both calls reach it;
  - a VoIP-only iOS phone (PushKit token only) gets a VoIP push of type
    "cancel" for the same call when the caller hangs up;
  - no wake-up push loop: a push binding granted no longer than
    push.wakeup_before_expiry gets no wake-up push, one granted longer
    does.
sipwaked exits 0 on SIGTERM.
"""
import json
import os
import socket
import subprocess
import time

import swlib
import wakelib as W

V_SLEEP2, R_SLEEP2 = "%064x" % 0x5EC0D1, "%064x" % 0x5EC0D2
V_TWICE, R_TWICE = "%064x" % 0x7A1CE1, "%064x" % 0x7A1CE2
V_ONLY = "%064x" % 0x0F1F1
V_SHORT, R_SHORT = "%064x" % 0x5404, "%064x" % 0x5405
V_LONG, R_LONG = "%064x" % 0x1046, "%064x" % 0x1047
CTL = os.path.join(os.environ.get("SIPWAKE_BUILD_DIR", "build"), "sipwakectl")


def transactions(sock):
    r = subprocess.run([CTL, "-s", sock, "--json", "status"], capture_output=True, text=True,
                       timeout=10)
    try:
        return json.loads(r.stdout)["result"]["transactions"]
    except (ValueError, KeyError):
        return None


def wait_transactions(sock, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    n = transactions(sock)
    while n != want and time.monotonic() < deadline:
        time.sleep(0.1)
        n = transactions(sock)
    return n


def asleep(t, edge, user, pn, inst):
    p = W.started_phone(t, "tcp", edge, user, pn=pn, inst=inst).connect()
    r = p.register()
    t.require(r is not None and r.status == 200, "%s registers -> 200" % user, p.trace())
    p.close()
    return p


def main(t):
    env = W.WakeEnv(t)
    port = swlib.free_port()
    cfg = env.config(port, extra={"push": {"call_timeout": 3, "min_interval": 30,
                                           "wakeup_before_expiry": 5},
                                  "registrar": {"min_expires": 1}})
    sw = t.sipwaked(cfg)
    sock = cfg["admin"]["socket"]
    edge = (swlib.LOOPBACK, port)
    t.require(transactions(sock) == 0, "no transaction at start")

    t.section("CANCEL while the phone rings")
    ringer = W.started_phone(t, "udp", edge, "ringer").connect()
    t.require(ringer.register() is not None, "ringer (awake, UDP) registers")
    c = W.started_caller(t, "udp", edge, "ringer", name="canceller")
    c.invite()
    inv = ringer.wait_invite(timeout=5)
    t.require(inv is not None, "the INVITE reaches the phone", c.flow())
    ringer.respond(inv, 180, "Ringing")
    t.check(c.wait_status(lambda s: s == 180, timeout=5) is not None, "the caller hears 180")
    c.cancel()
    t.check(ringer.wait_cancel(inv, timeout=5) is not None, "the phone gets the CANCEL",
            ringer.flow())
    f = c.final(timeout=5)
    t.check(f is not None and f.status == 487, "the caller gets 487",
            f.summary() if f else c.flow())
    t.check(wait_transactions(sock, 0) == 0, "no transaction is left behind (%s)"
            % transactions(sock))

    t.section("a device declines with 603")
    decl = W.started_phone(t, "udp", edge, "decl").connect()
    t.require(decl.register() is not None, "decl's awake phone registers")
    sleeper = asleep(t, edge, "decl", W.apns2_pn(R_SLEEP2, V_SLEEP2), W.instance(201))
    c = W.started_caller(t, "udp", edge, "decl", name="to-decl")
    c.invite()
    inv = decl.wait_invite(timeout=5)
    t.require(inv is not None, "the awake device is rung", c.flow())
    t.check(env.wait_push("apns", V_SLEEP2, timeout=5) is not None, "the sleeping one is pushed")
    decl.respond(inv, 603, "Decline")
    f = c.final(timeout=5)
    t.check(f is not None and f.status == 603, "the caller gets 603",
            f.summary() if f else c.flow())
    decl.register()
    sleeper.connect()
    sleeper.register()
    again = decl.wait(lambda m: m.method == "INVITE", timeout=1.5)
    woke = sleeper.wait(lambda m: m.method == "INVITE", timeout=1.5)
    t.check(again is None, "the decliner's refresh does not ring it again",
            again.summary() if again else None)
    t.check(woke is None, "the pushed device that wakes afterwards is not rung",
            woke.summary() if woke else None)
    sleeper.close()

    t.section("call_timeout while a branch rings")
    c = W.started_caller(t, "udp", edge, "ringer", name="timeout")
    c.invite()
    inv = ringer.wait_invite(timeout=5)
    t.require(inv is not None, "the INVITE reaches the phone")
    ringer.respond(inv, 180, "Ringing")
    start = time.monotonic()
    f = c.final(timeout=8)
    t.check(f is not None and f.status == 480, "480 at call_timeout although the phone rings",
            f.summary() if f else c.flow())
    t.check(f is not None and time.monotonic() - start < 6, "within the timeout, not later")
    t.check(ringer.wait_cancel(inv, timeout=5) is not None, "the ringing phone gets a CANCEL")
    t.check(wait_transactions(sock, 0) == 0, "no transaction is left behind (%s)"
            % transactions(sock))

    t.section("a second call within push.min_interval")
    twice = asleep(t, edge, "twice", W.apns2_pn(R_TWICE, V_TWICE), W.instance(202))
    c1 = W.started_caller(t, "udp", edge, "twice", name="first")
    c1.invite()
    t.require(env.wait_push("apns", V_TWICE, timeout=5) is not None, "the first call is pushed")
    c2 = W.started_caller(t, "udp", edge, "twice", name="second")
    c2.invite()
    early = c2.wait_status(lambda s: s >= 300, timeout=1.5)
    t.check(early is None, "the second call is not refused at once",
            early.summary() if early else None)
    twice.connect()
    twice.register()
    got = [twice.wait_invite(timeout=3), twice.wait_invite(timeout=3)]
    ids = sorted(m.call_id for m in got if m is not None)
    t.check(ids == sorted([c1.call_id, c2.call_id]), "when the phone wakes, both calls reach it",
            twice.flow())
    for m in got:
        if m is not None:
            twice.respond(m, 486, "Busy Here")
    for cc in (c1, c2):
        f = cc.final(timeout=5)
        t.check(f is not None and f.status == 486, "%s: the phone's 486 is relayed" % cc.name,
                f.summary() if f else cc.flow())
    twice.close()

    t.section("a VoIP-only iOS phone hears that the call ended")
    asleep(t, edge, "voiponly", W.apns_pn(V_ONLY), W.instance(203))
    c = W.started_caller(t, "udp", edge, "voiponly", name="to-voiponly")
    c.invite()
    call = env.wait_push("apns", V_ONLY, lambda x: W.push_type(x) == "call", timeout=5)
    t.require(call is not None, "the call is pushed (PushKit)")
    c.cancel()
    f = c.final(timeout=5)
    t.check(f is not None and f.status == 487, "the caller's CANCEL -> 487")
    end = env.wait_push("apns", V_ONLY, lambda x: W.push_type(x) == "cancel", timeout=5)
    t.check(end is not None, "a follow-up push of type cancel on the VoIP token",
            W.summarize_pushes(env.apns_for(V_ONLY)))
    if end is not None:
        hdrs = end.get("headers", {})
        t.check(hdrs.get("apns-push-type") == "voip" and hdrs.get("apns-topic", "").endswith(".voip"),
                "sent as a VoIP push (apns-push-type voip, topic .voip)", json.dumps(hdrs))
        t.check(W.push_data(end).get("call-id") == c.call_id, "for the same call")

    t.section("no wake-up push loop")
    short = asleep(t, edge, "short", W.apns2_pn(R_SHORT, V_SHORT), W.instance(204))
    longer = W.started_phone(t, "tcp", edge, "longer", pn=W.apns2_pn(R_LONG, V_LONG),
                             inst=W.instance(205)).connect()
    short.connect()
    r1 = short.register(expires=4)
    r2 = longer.register(expires=8)
    t.require(r1 is not None and r2 is not None, "both re-register (4 s and 8 s)")
    short.close()
    longer.close()
    woke = env.wait_push("apns", R_LONG, lambda x: W.push_type(x) == "wakeup", timeout=8)
    t.check(woke is not None, "control: 8 s granted, wake-up push 5 s before expiry")
    wake_short = [x for x in env.apns_for(R_SHORT) if W.push_type(x) == "wakeup"]
    t.check(not wake_short, "4 s granted (<= wakeup_before_expiry 5 s): no wake-up push",
            W.summarize_pushes(wake_short))

    t.section("after the 2xx: the INVITE again, a late CANCEL, the phone's 2xx again")
    # sipwake lets sofia forget the server transaction once its 2xx is out
    # and answers what still comes for it itself (proxy_absorb)
    c = W.started_caller(t, "udp", edge, "ringer", name="answered")
    c.invite()
    inv = ringer.wait_invite(timeout=5)
    t.require(inv is not None, "the INVITE reaches the phone", c.flow())
    ringer.respond(inv, 200, "OK", body=W.SDP)
    ok = c.wait_status(lambda s: s == 200, timeout=5)
    t.require(ok is not None, "the caller gets the 200", c.flow())
    t.check(wait_transactions(sock, 0) == 0, "the answered call keeps no transaction (%s)"
            % transactions(sock))
    # nta itself still answers for the destroyed transaction during its
    # Timer I (T4, 5 s): past that, only sipwake's accepted state can
    time.sleep(6)
    c.send(c.invite_text.encode())  # a retransmission: same branch, same CSeq
    again = c.wait(lambda m: m.status == 200 and m.cseq_method == "INVITE", timeout=3)
    t.check(again is not None and again.get("to") == ok.get("to"),
            "the INVITE sent again gets the same 200 again", c.flow())
    second = ringer.wait(lambda m: m.method == "INVITE", timeout=1)
    t.check(second is None, "and does not reach the phone a second time",
            second.summary() if second else None)
    c.cancel()
    f = c.wait(lambda m: m.status is not None and m.cseq_method == "CANCEL", timeout=3)
    t.check(f is not None and f.status == 481, "a CANCEL after the 2xx gets 481",
            f.summary() if f else c.flow())
    t.check(ringer.wait(lambda m: m.method == "CANCEL", timeout=1) is None,
            "and does not reach the phone")
    ringer.respond(inv, 200, "OK", body=W.SDP)  # the phone has not seen the ACK yet
    late = c.wait(lambda m: m.status == 200 and m.cseq_method == "INVITE", timeout=3)
    t.check(late is not None, "the phone's 2xx sent again reaches the caller", c.flow())
    # the same with a repeated single-instance header: dropped, and sipwake
    # lives on (sofia aborts serialising such a message)
    ringer.respond(inv, 200, "OK", body=W.SDP, extra=[("Subject", "a"), ("Subject", "b")])
    dup = c.wait(lambda m: m.status == 200 and m.cseq_method == "INVITE", timeout=1)
    t.check(dup is None, "a 2xx with a repeated Subject is not relayed",
            dup.summary() if dup else None)
    t.check(swlib.sip_options("udp", edge) is not None, "and sipwake still answers")
    # a forged 2xx naming sipwake on top and someone else next is no relay
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind((swlib.LOOPBACK, 0))
    victim.settimeout(1.0)
    t.on_cleanup(victim.close)
    forged = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-forged-1\r\n"
              "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-forged-2\r\n"
              "From: <sip:x@%s>;tag=f\r\nTo: <sip:y@%s>;tag=g\r\nCall-ID: forged@x\r\n"
              "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" % (
                  edge[0], edge[1], swlib.LOOPBACK, victim.getsockname()[1], swlib.DOMAIN,
                  swlib.DOMAIN))
    victim.sendto(forged.encode(), edge)
    try:
        got = victim.recv(65536)
    except socket.timeout:
        got = None
    t.check(got is None, "a forged 2xx for no call of ours is not relayed",
            got[:80] if got else None)
    c.ack(ok)
    t.check(ringer.wait(lambda m: m.method == "ACK" and m.call_id == inv.call_id,
                        timeout=3) is not None, "the ACK reaches the phone", ringer.flow())
    c.bye(ok)
    t.check(ringer.wait_bye(inv.call_id, timeout=3) is not None, "the BYE reaches the phone")
    bye_ok = c.wait_bye_ok(timeout=3)
    t.check(bye_ok is not None and bye_ok.status == 200, "the caller gets 200 to its BYE")

    t.section("a forked INVITE answered by two devices")
    f1 = W.started_phone(t, "udp", edge, "forked", inst=W.instance(301)).connect()
    f2 = W.started_phone(t, "udp", edge, "forked", inst=W.instance(302)).connect()
    t.require(f1.register() is not None and f2.register() is not None,
              "two devices of one AOR register")
    c = W.started_caller(t, "udp", edge, "forked", name="to-forked")
    c.invite()
    i1, i2 = f1.wait_invite(timeout=5), f2.wait_invite(timeout=5)
    t.require(i1 is not None and i2 is not None, "both are rung", c.flow())
    f1.respond(i1, 200, "OK", body=W.SDP)
    first = c.wait_status(lambda s: s == 200, timeout=5)
    t.require(first is not None, "the caller gets the first device's 200", c.flow())
    f2.respond(i2, 200, "OK", body=W.SDP)  # answered before the CANCEL reached it
    second = c.wait(lambda m: m.status == 200 and m.cseq_method == "INVITE", timeout=3)
    t.check(second is not None and second.get("to") != first.get("to"),
            "and the second device's 200 too (RFC 3261 16.7)", c.flow())
    for ok in (first, second):
        if ok is not None:
            c.ack(ok)
    t.check(wait_transactions(sock, 0) == 0, "no transaction is left behind (%s)"
            % transactions(sock))

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
