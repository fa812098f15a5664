#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Any node serves any request (SPEC 9, issue 11 item 2): the node-to-node hop.

Standalone mode, nodes A and B on one redis-server, the fake FCM. Asserted
on the wire:
- a phone registered over TCP through A (its connection stays open) gets a
  call sent to B: B hands the INVITE to A, A sends it on the phone's own
  connection; the phone answers, the caller gets the 200, and the ACK and
  the BYE reach the phone the same way (the hop header never reaches it);
- a call held on A for a sleeping push phone (connection closed): A pushes;
  the phone wakes and registers over TCP through B; A hears of it and the
  held INVITE reaches the phone through B, on its new connection; answered;
- the same when the phone wakes on node C, started while the call was held
  on A (A is stopped meanwhile, so that C's REGISTER reaches A before any
  heartbeat of C does): A reaches the phone through C all the same.
"""
import os
import signal
import time

import swlib
import wakelib as W

TOKEN = "fcm-flow-" + "f" * 32
USER = "flow"


def hop_of(node, name):
    for n in ((node.ctl("status") or {}).get("cluster") or {}).get("nodes", []):
        if n["name"] == name and n["alive"]:
            return n.get("hop")
    return None


def registered(node):
    r = node.ctl("registrations", "sip:%s@%s" % (USER, swlib.DOMAIN)) or {}
    return r.get("count", 0) > 0


def main(t):
    env = W.WakeEnv(t)
    redis = t.redis()
    nodes = {}
    for name in ("A", "B"):
        port = swlib.free_port()
        cfg = env.config(port, workdir=os.path.join(t.dir, name),
                         extra={"cluster": {"redis": redis.url, "node_name": name},
                                "push": {"call_timeout": 15}})
        nodes[name] = (t.sipwaked(cfg, name=name), (swlib.LOOPBACK, port))
    a, addr_a = nodes["A"]
    b, addr_b = nodes["B"]

    t.section("a TCP phone on A, a call through B")
    p = W.started_phone(t, "tcp", addr_a, USER, pn=W.fcm_pn(TOKEN), inst=W.instance(61)).connect()
    r = p.register(expires=600)
    t.require(r is not None and r.status == 200, "REGISTER over TCP through A: 200", p.trace())
    caller = W.started_caller(t, "udp", addr_b, USER)
    t.require(swlib.wait_until(lambda: hop_of(b, "A") == "sip:%s:%d;transport=tcp" % addr_a),
              "B knows A's hop address from its heartbeat (sipwakectl status)", hop_of(b, "A"))
    t.require(swlib.wait_until(lambda: registered(b)), "B knows the binding")
    caller.invite()
    inv = p.wait_invite(timeout=10)
    t.require(inv is not None, "the INVITE sent to B reached the phone on its TCP connection "
              "to A", p.flow())
    t.check(not inv.all("x-sipwake-hop"), "no hop header at the phone", inv.all("x-sipwake-hop"))
    ack = p.answer(inv, timeout=5)
    ok = caller.wait_status(lambda s: s == 200, timeout=5)
    t.require(ok is not None, "the caller got the phone's 200 through B", caller.trace())
    caller.ack(ok)
    ack = p.wait(lambda m: m.method == "ACK" and m.call_id == inv.call_id, 5)
    t.check(ack is not None, "the caller's ACK reached the phone", p.flow())
    caller.bye(ok)
    bye = p.wait_bye(inv.call_id, timeout=5)
    t.check(bye is not None, "the caller's BYE reached the phone", p.flow())
    t.check(caller.wait_bye_ok(timeout=5) is not None, "the caller got the 200 to its BYE",
            caller.trace())

    t.section("a call held on A, the phone wakes on B")
    p.close()  # asleep: its connection is gone
    time.sleep(0.5)
    caller2 = W.started_caller(t, "udp", addr_a, USER, name="caller2")
    caller2.invite()
    push = env.wait_push("fcm", TOKEN, lambda r: W.push_data(r).get("type") == "call",
                         timeout=10)
    t.check(push is not None, "A pushed the sleeping phone")
    p2 = W.started_phone(t, "tcp", addr_b, USER, pn=W.fcm_pn(TOKEN), inst=W.instance(61),
                         name="woken").connect()
    p2.call_id, p2.cseq = p.call_id, p.cseq
    r = p2.register(expires=600)
    t.check(r is not None and r.status == 200, "the woken phone registers over TCP through B",
            p2.trace())
    inv = p2.wait_invite(timeout=10)
    if t.check(inv is not None, "the call held on A reached the phone through B", p2.flow()):
        p2.answer(inv, timeout=5)
        t.check(caller2.wait_status(lambda s: s == 200, timeout=5) is not None,
                "the caller got the 200", caller2.trace())

    t.section("a call held on A, the phone wakes on a node just started")
    p2.close()
    time.sleep(0.5)
    caller3 = W.started_caller(t, "udp", addr_a, USER, name="caller3")
    caller3.invite()
    push = env.wait_push("fcm", TOKEN, lambda r: W.push_data(r).get("type") == "call" and
                         W.push_data(r).get("call-id") == caller3.call_id, timeout=10)
    t.check(push is not None, "A pushed the sleeping phone again")
    os.kill(a.proc.pid, signal.SIGSTOP)  # A hears of C first from the REGISTER
    t.on_cleanup(lambda: os.kill(a.proc.pid, signal.SIGCONT) if a.alive() else None)
    port = swlib.free_port()
    cfg = env.config(port, workdir=os.path.join(t.dir, "C"),
                     extra={"cluster": {"redis": redis.url, "node_name": "C"},
                            "push": {"call_timeout": 15}})
    t.sipwaked(cfg, name="C")
    p3 = W.started_phone(t, "tcp", (swlib.LOOPBACK, port), USER, pn=W.fcm_pn(TOKEN),
                         inst=W.instance(61), name="woken-on-C").connect()
    p3.call_id, p3.cseq = p2.call_id, p2.cseq
    r = p3.register(expires=600)
    t.check(r is not None and r.status == 200, "the phone registers through C as soon as C is "
            "ready", p3.trace())
    os.kill(a.proc.pid, signal.SIGCONT)
    inv = p3.wait_invite(timeout=10)
    if t.check(inv is not None, "the call held on A reached the phone through C", p3.flow()):
        p3.answer(inv, timeout=5)
        t.check(caller3.wait_status(lambda s: s == 200, timeout=5) is not None,
                "the caller got the 200", caller3.trace())


if __name__ == "__main__":
    swlib.run(main)
