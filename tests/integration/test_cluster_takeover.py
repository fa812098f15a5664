#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Losing a node (SPEC 9, issue 11 item 3): the survivor takes over.

Gateway mode: nodes A and B on one redis-server in front of a Kamailio
registrar that keeps registrations CAP s, with the fake FCM. An FCM phone
registers through A asking 3600 s and sleeps; Kamailio holds it with A's
Path. A is killed with -9. Asserted on the wire, in Redis and at Kamailio:
- B sees A's heartbeat expire and takes A's bindings (Redis says node B);
- B's own refreshes keep the phone registered upstream, now with B's Path,
  and Kamailio never loses the contact;
- a call from Kamailio reaches B, which pushes the phone; the phone
  re-registers through B and the call is delivered to it and answered.
"""
import json
import os
import re
import time

import swlib
import wakelib as W

CAP = 20  # upstream max_expires
TOKEN = "fcm-takeover-" + "k" * 30
USER = "roam"


def node_port(path):
    m = re.search(r"127\.0\.0\.1:(\d+)", path or "")
    return int(m.group(1)) if m else None


def main(t):
    env = W.WakeEnv(t)
    kam = t.kamailio(name="pbx", max_expires=CAP, min_expires=5)
    redis = t.redis()
    nodes = {}
    for name in ("A", "B"):
        port = swlib.free_port()
        cfg = env.config(port, upstream_uri=kam.uri, workdir=os.path.join(t.dir, name),
                         extra={"cluster": {"redis": redis.url, "node_name": name},
                                "push": {"call_timeout": 20},
                                "registrar": {"min_expires": 10}})
        nodes[name] = (t.sipwaked(cfg, name=name), port)
    a, port_a = nodes["A"]
    b, port_b = nodes["B"]

    t.section("a phone registers through A and sleeps")
    p = W.started_phone(t, "udp", (swlib.LOOPBACK, port_a), USER, pn=W.fcm_pn(TOKEN),
                        inst=W.instance(91)).connect()
    r = p.register(expires=3600)
    t.require(r is not None and r.status == 200, "REGISTER through A: 200", p.trace())
    p.close()
    c = kam.contacts(USER)
    t.require(len(c) == 1 and node_port(c[0][1]) == port_a,
              "Kamailio holds the phone with A's Path", c)

    t.section("A is killed")
    a.kill9()
    killed = time.monotonic()
    gaps, taken_at, path_at = [], None, None
    deadline = killed + 2 * CAP + 10
    while time.monotonic() < deadline and path_at is None:
        c = kam.contacts(USER)
        if not c:
            gaps.append(round(time.monotonic() - killed, 1))
        elif node_port(c[0][1]) == port_b:
            path_at = time.monotonic() - killed
        if taken_at is None:
            s = {k: json.loads(v) for k, v in zip(*[iter(redis.command("HGETALL", "sipwake:bindings") or [])] * 2)}
            if s and all(v.get("node") == "B" for v in s.values()):
                taken_at = time.monotonic() - killed
        time.sleep(0.5)
    t.check(taken_at is not None, "B took A's binding over in Redis (%.1f s after the kill)"
            % (taken_at or -1))
    t.check(path_at is not None, "B refreshed the phone upstream with its own Path (%.1f s "
            "after the kill)" % (path_at or -1), kam.contacts(USER))
    t.check(not gaps, "Kamailio never lost the phone's contact", gaps)
    log = b.log_text()
    t.check("node A stopped its heartbeat" in log and "took over the bindings of node A" in log,
            "B's log says it took over A")

    t.section("a call from the PBX reaches the phone through B")
    caller = W.started_caller(t, "udp", kam.addr(), USER)
    caller.invite()
    push = env.wait_push("fcm", TOKEN, lambda r: W.push_data(r).get("type") == "call",
                         timeout=10)
    t.check(push is not None, "B pushed the phone for the call")
    p2 = W.started_phone(t, "udp", (swlib.LOOPBACK, port_b), USER, pn=W.fcm_pn(TOKEN),
                         inst=W.instance(91), name="woken").connect()
    p2.call_id = p.call_id
    p2.cseq = p.cseq
    r = p2.register(expires=3600)
    t.check(r is not None and r.status == 200, "the woken phone re-registers through B: 200",
            p2.trace())
    inv = p2.wait_invite(timeout=10)
    if t.check(inv is not None, "the held call reaches the woken phone", p2.flow()):
        p2.answer(inv, timeout=2)
        ok = caller.wait_status(lambda s: s == 200, timeout=10)
        t.check(ok is not None, "the caller gets the 200", caller.trace())


if __name__ == "__main__":
    swlib.run(main)
