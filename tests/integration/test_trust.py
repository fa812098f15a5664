#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Who may reach what (issue 8 items 1-3, SPEC 8). A "stranger" is a socket
that is neither upstream nor where a binding registered from (here: on
127.0.0.3, since upstream is recognised by its address).

Standalone mode (fake APNs), then gateway mode behind Kamailio. A UDP
socket on 127.0.0.2 plays a third host (a PSTN gateway that trusts
sipwake's address); nothing a stranger sends may arrive there.
  1. open relay: a stranger's INVITE sip:+19005550100@pstn.invalid with
     Route: <sipwake;lr>, <third;lr> -> 403; a fake in-dialog INVITE (To
     tag, Route: <sipwake;lr>) whose request URI is the third host -> 403;
     the third host gets nothing. A registered client's request with the
     same Routes does reach it (clients may loose-route).
  2. binding addresses: a stranger's MESSAGE to sip:x@SIPWAKE;swb=<id> ->
     403 and the phone gets nothing; a MESSAGE carrying the dialog token of
     a call it saw, under another Call-ID -> 403; the BYE of that call,
     with its own Call-ID, still reaches the phone (the dialog's peer may).
  3. push-token hijack: mallory registers alice's push token under his AOR;
     alice keeps her binding (a call to her still pushes to her token).
Both daemons exit 0 on SIGTERM.
"""
import re
import socket

import swlib
import wakelib as W

ALICE_VOIP, ALICE_REMOTE = "%064x" % 0xA11CE1, "%064x" % 0xA11CE2


def third_host(t):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    t.on_cleanup(s.close)
    return s


def nothing_arrives(sock, wait=1.0):
    sock.settimeout(wait)
    try:
        data = sock.recv(65535)
    except socket.timeout:
        return b""
    return data


# Strangers send from their own address: upstream is recognised by its IP,
# and Kamailio listens on 127.0.0.1 like the phones.
STRANGER = "127.0.0.3"


def raw_final(tr, edge, data, timeout=3):
    with swlib.RawSip(tr, edge, timeout=timeout, host=STRANGER) as c:
        final, _ = c.request(data(c), timeout=timeout)
    return final


def summary(f):
    return f.summary() if f is not None else "no final response"


def relay_checks(t, label, edge, third, client):
    tp = third.getsockname()[1]
    route = [("Route", "<sip:%s:%d;lr>, <sip:127.0.0.2:%d;lr>" % (edge[0], edge[1], tp))]
    f = raw_final("udp", edge, lambda c: swlib.build_request(
        "INVITE", "sip:+19005550100@pstn.invalid", "udp", c.local,
        to_uri="sip:+19005550100@pstn.invalid", headers=route))
    t.check(f is not None and f.status == 403,
            "%s: stranger's INVITE loose-routed to a third host -> 403" % label, summary(f))
    t.check(nothing_arrives(third) == b"", "%s: the third host got nothing" % label)
    f = raw_final("udp", edge, lambda c: swlib.build_request(
        "INVITE", "sip:+19005550100@127.0.0.2:%d" % tp, "udp", c.local,
        to_uri="sip:+19005550100@pstn.invalid", headers=[
            ("Route", "<sip:%s:%d;lr>" % edge)]).replace(
        b"To: <sip:+19005550100@pstn.invalid>", b"To: <sip:+19005550100@pstn.invalid>;tag=fake"))
    t.check(f is not None and f.status == 403,
            "%s: stranger's fake in-dialog INVITE to a third host -> 403" % label, summary(f))
    t.check(nothing_arrives(third) == b"", "%s: the third host got nothing again" % label)
    # A registered client may loose-route through us (an outbound proxy set-up).
    client.send(swlib.build_request("OPTIONS", "sip:+19005550100@pstn.invalid", "udp",
                                    client.conn.local, from_uri="sip:%s@%s" % (
                                        client.user, swlib.DOMAIN), headers=route))
    got = nothing_arrives(third, wait=3)
    t.check(got.startswith(b"OPTIONS "),
            "%s: a registered client's request with the same Routes reaches it" % label,
            got[:200])


def standalone(t, env):
    t.section("standalone")
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, extra={"push": {"call_timeout": 5}},
                               workdir=t.dir + "/standalone"), name="sipwaked-standalone")
    edge = (swlib.LOOPBACK, port)
    third = third_host(t)
    bob = W.started_phone(t, "udp", edge, "bob").connect()
    t.require(bob.register() is not None, "bob (awake, UDP) registers")
    relay_checks(t, "standalone", edge, third, bob)

    t.section("standalone: binding addresses and dialog tokens")
    caller = W.started_caller(t, "udp", edge, "bob", name="stranger-caller")
    caller.invite()
    inv = bob.wait_invite(timeout=5)
    t.require(inv is not None, "a stranger's call to bob reaches him", caller.flow())
    rr = " ".join(inv.all("record-route"))
    m = re.search(r"swd=([0-9a-f]+)\.([0-9a-f]+)", rr)
    t.require(m is not None, "the Record-Route carries a dialog token", rr)
    bid, mac = m.group(1), m.group(2)
    t.check(re.search(r"swb=", rr) is None, "and no bare binding id", rr)
    bob.answer(inv)
    ok = caller.wait_status(lambda s: s == 200, timeout=5)
    t.require(ok is not None, "bob answers -> 200 at the caller", caller.flow())
    caller.ack(ok)

    f = raw_final("udp", edge, lambda c: swlib.build_request(
        "MESSAGE", "sip:x@%s:%d;swb=%s" % (edge[0], edge[1], bid), "udp", c.local,
        headers=[("Content-Type", "text/plain")], body="hi"))
    t.check(f is not None and f.status == 403,
            "stranger's MESSAGE to sip:x@sipwake;swb=<id> -> 403", summary(f))
    f = raw_final("udp", edge, lambda c: swlib.build_request(
        "MESSAGE", "sip:bob@10.9.9.9", "udp", c.local, to_uri="sip:bob@%s" % swlib.DOMAIN,
        headers=[("Route", "<sip:%s:%d;lr;swd=%s.%s>" % (edge[0], edge[1], bid, mac)),
                 ("Content-Type", "text/plain")], body="hi").replace(
        b"To: <sip:bob@%s>" % swlib.DOMAIN.encode(),
        b"To: <sip:bob@%s>;tag=x" % swlib.DOMAIN.encode()))
    t.check(f is not None and f.status == 403,
            "a MESSAGE with the call's dialog token under another Call-ID -> 403", summary(f))
    stray = bob.wait(lambda x: x.method == "MESSAGE", timeout=1)
    t.check(stray is None, "bob got neither MESSAGE", stray.summary() if stray else None)

    caller.bye(ok)
    bye = bob.wait_bye(caller.call_id, timeout=5)
    t.check(bye is not None, "the caller's BYE (its own Call-ID) still reaches bob", caller.flow())
    t.check(caller.wait_bye_ok(timeout=5) is not None, "and its 200 comes back")

    t.section("standalone: push-token hijack")
    alice = W.started_phone(t, "tcp", edge, "alice", pn=W.apns2_pn(ALICE_REMOTE, ALICE_VOIP),
                            inst=W.instance(171)).connect()
    t.require(alice.register() is not None, "alice registers with her push token")
    alice.close()
    mallory = W.started_phone(t, "tcp", edge, "mallory",
                              pn=W.apns2_pn(ALICE_REMOTE, ALICE_VOIP),
                              inst=W.instance(172)).connect()
    r = mallory.register()
    t.check(r is not None and r.status == 200, "mallory registers alice's token under his AOR",
            mallory.trace())
    mallory.close()
    call = W.started_caller(t, "udp", edge, "alice", name="to-alice")
    call.invite()
    push = env.wait_push("apns", ALICE_VOIP, lambda x: W.push_data(x).get("call-id")
                         == call.call_id, timeout=10)
    t.check(push is not None, "a call to alice still pushes to her token (her binding survived)",
            call.flow())
    call.cancel()
    call.final(timeout=10)
    t.check(sw.stop() == 0, "standalone: SIGTERM, exit 0")


def gateway(t, env):
    t.section("gateway")
    kam = t.kamailio(name="upstream")
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, upstream_uri=kam.uri, workdir=t.dir + "/gateway"),
                    name="sipwaked-gateway")
    edge = (swlib.LOOPBACK, port)
    third = third_host(t)
    carol = W.started_phone(t, "udp", edge, "carol").connect()
    r = carol.register()
    t.require(r is not None and r.status == 200, "carol registers through sipwake -> 200",
              carol.trace())
    relay_checks(t, "gateway", edge, third, carol)
    t.check(sw.stop() == 0, "gateway: SIGTERM, exit 0")


def main(t):
    env = W.WakeEnv(t)
    standalone(t, env)
    gateway(t, env)


if __name__ == "__main__":
    swlib.run(main)
