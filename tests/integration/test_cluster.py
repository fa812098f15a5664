#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Cluster (SPEC 9, issue 11): two sipwaked nodes share their bindings
through a real redis-server on loopback.

Standalone mode, auth none, nodes A and B on one Redis. A raw UDP phone
and a raw UDP caller; asserted on the wire and in Redis:
- a REGISTER taken by A is in Redis (written by A) before its 200, and B
  learns it: a call sent to B reaches the phone;
- the phone's un-REGISTER sent to B removes the binding from Redis and from
  A's memory;
- A restarted loads the binding from Redis and relays a call to it;
- with Redis stopped, a REGISTER gets 503 with Retry-After and a call for a
  known binding still goes through; with Redis back, REGISTERs get 200 again
  and the other node hears of them again;
- with Redis hung (SIGSTOP), a REGISTER it never confirms gets 500, never
  200; once it answers again, REGISTERs get 200.
"""
import json
import os
import re
import signal
import subprocess
import time

import swlib

USER = "clus"
AOR = "sip:%s@%s" % (USER, swlib.DOMAIN)
CTL = os.path.join(os.path.dirname(os.path.abspath(swlib.sipwaked_binary())), "sipwakectl")


def node_config(t, name, redis):
    d = os.path.join(t.dir, name)
    os.makedirs(d, exist_ok=True)
    return swlib.sipwake_config(d, swlib.free_port(), fcm=False, extra={
        "cluster": {"redis": redis.url, "node_name": name}})


def registrations(node):
    """The contacts node holds for AOR."""
    r = node.ctl("registrations", AOR)
    return [x.get("contact") for x in r["registrations"]] if r else None


def cluster_status(node):
    return (node.ctl("status") or {}).get("cluster")


def metric(node, name):
    fam = (node.ctl("stats") or {}).get(name, {})
    return sum(x["value"] for x in fam.get("series", [])) if fam else None


def ctl_text(node, *args):
    r = subprocess.run([CTL, "-s", node.config["admin"]["socket"]] + list(args),
                       capture_output=True, text=True, timeout=10)
    return r.stdout


def register(phone, node, expires=300):
    c = phone
    contact = "<sip:%s@%s:%d>" % (USER, c.local[0], c.local[1])
    c.send(swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
                               from_uri=AOR, headers=[("Contact", contact),
                                                      ("Expires", str(expires))]))
    r, _ = c.recv_final()
    return r


def stored(redis):
    """{id: binding} as Redis holds them."""
    flat = redis.command("HGETALL", "sipwake:bindings") or []
    return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


def call(t, caller, phone, node, answer=486, extra=()):
    """An INVITE from caller to node for USER; the phone answers `answer`
    (to the top Via, as a UAS does). Returns (INVITE seen by the phone or
    None, caller's final response)."""
    call_id = "cl-%d@caller" % time.monotonic_ns()
    caller.send(swlib.build_request("INVITE", AOR, "udp", caller.local, to_uri=AOR, call_id=call_id,
                                    from_uri="sip:caller@%s" % swlib.DOMAIN,
                                    headers=[("Contact", "<sip:caller@%s:%d>" % caller.local)] +
                                    list(extra)))
    inv = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and inv is None:
        m = phone._read_one(deadline)
        if (m is not None and m.status is None and m.start.startswith("INVITE") and
                m.call_id == call_id):
            inv = m
    if inv is not None:
        hdrs = ["SIP/2.0 %d Busy Here" % answer] + ["Via: %s" % v for v in inv.all("via")]
        for h in ("from", "call-id", "cseq"):
            hdrs.append("%s: %s" % (h.title(), inv.get(h)))
        hdrs += ["To: %s;tag=phone" % inv.get("to"), "Content-Length: 0"]
        _, host, port = swlib.via_sent_by(inv.all("via")[0])
        phone.sock.sendto(("\r\n".join(hdrs) + "\r\n\r\n").encode(), (host, port))
    final, _ = caller.recv_final(timeout=8, call_id=call_id)
    return inv, final


def node_addr(node):
    return tuple(node.listen_addrs()[0][1:])


def main(t):
    redis = t.redis()
    a = t.sipwaked(node_config(t, "A", redis), name="A")
    b = t.sipwaked(node_config(t, "B", redis), name="B")
    edge_a = a.listen_addrs()[0][1:]
    edge_b = b.listen_addrs()[0][1:]
    phone_a = swlib.RawSip("udp", edge_a, timeout=3)
    phone_b = swlib.RawSip("udp", edge_b, timeout=3)
    # one phone socket: the same contact whichever node it talks to
    phone_b.sock.close()
    phone_b.sock, phone_b.local = phone_a.sock, phone_a.local
    caller_a = swlib.RawSip("udp", edge_a, timeout=8)
    caller_b = swlib.RawSip("udp", edge_b, timeout=8)

    t.section("status")
    ok = swlib.wait_until(lambda: sorted(n["name"] for n in (cluster_status(a) or {}).get("nodes", [])
                                   if n["alive"]) == ["A", "B"])
    st = cluster_status(a)
    t.check(ok and st["node"] == "A" and st["redis"] == "reachable" and
            [n["self"] for n in st["nodes"] if n["name"] == "A"] == [True] and
            all(0 <= n["heartbeat_age_ms"] < 4000 for n in st["nodes"]),
            "sipwakectl status --json: this node A, Redis reachable, A and B alive with a "
            "recent heartbeat", st)
    text = ctl_text(a, "status")
    t.check(re.search(r"cluster +node A, Redis reachable", text) and
            re.search(r"node +B: heartbeat \d+ ms ago", text), "sipwakectl status shows it", text)
    t.check(metric(a, "sipwake_cluster_redis_up") == 1 and metric(a, "sipwake_cluster_nodes") == 2,
            "metrics: sipwake_cluster_redis_up 1, sipwake_cluster_nodes 2")

    t.section("register on A, call through B")
    r = register(phone_a, a)
    t.require(r is not None and r.status == 200, "REGISTER through A: 200",
              r.summary() if r else "no answer")
    s = stored(redis)
    t.check(len(s) == 1 and list(s.values())[0].get("node") == "A" and
            list(s.values())[0].get("aor") == AOR,
            "Redis holds the binding, written by node A", s)
    t.check(int(redis.command("ZCARD", "sipwake:expiry")) == 1, "its expiry is in the sorted set")
    t.check(swlib.wait_until(lambda: registrations(b) == registrations(a) and registrations(b)),
            "B learned the binding through pub/sub", registrations(b))
    inv, final = call(t, caller_b, phone_b, b)
    t.check(inv is not None, "the INVITE sent to B reached the phone registered on A")
    if inv is not None:
        via = swlib.via_sent_by(inv.all("via")[0])
        t.check(via and via[2] == edge_a[1] and len(inv.all("via")) == 3,
                "it came through A, the node that owns the binding (Vias: A, B, caller)",
                inv.all("via"))
        t.check(not inv.all("x-sipwake-hop"), "the hop header did not reach the phone",
                inv.all("x-sipwake-hop"))
    t.check(final is not None and final.status == 486, "the caller got the phone's 486 through B",
            final.summary() if final else None)

    t.section("a stranger forging the hop")
    bid = list(stored(redis))[0]
    forged = [("X-Sipwake-Hop", "%s;ts=%d;mac=%s" % (bid, int(time.time()), "0" * 32))]
    inv, final = call(t, caller_a, phone_a, a, extra=forged)
    t.check(inv is None, "an INVITE to A with a forged hop header does not reach the phone")
    t.check(final is not None and final.status == 403, "it is answered 403",
            final.summary() if final else None)
    t.check(metric(a, "sipwake_cluster_hop_refused_total") == 1,
            "counted in sipwake_cluster_hop_refused_total")

    t.section("a REGISTER whose Contact is not UTF-8")
    c = phone_a
    for what, contact in (("Contact URI", b"<sip:bad\xff@%s:%d>" % (c.local[0].encode(), c.local[1])),
                          ("instance", b'<sip:inst@%s:%d>;+sip.instance="<urn:x\xff>"'
                           % (c.local[0].encode(), c.local[1]))):
        req = swlib.build_request("REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
                                  from_uri=AOR, headers=[("Contact", "CONTACT"), ("Expires", "300")])
        c.send(req.replace(b"CONTACT", contact))
        r, _ = c.recv_final()
        t.check(r is not None and r.status == 400, "%s with a byte that is not UTF-8: 400, not "
                "a 500 the phone would retry forever" % what, r.summary() if r else None)
    t.check(len(stored(redis)) == 1 and a.alive(), "Redis still holds the one binding; A runs")

    t.section("un-REGISTER on B")
    r = register(phone_b, b, expires=0)
    t.check(r is not None and r.status == 200, "un-REGISTER through B: 200",
            r.summary() if r else None)
    t.check(stored(redis) == {}, "Redis no longer holds it", stored(redis))
    t.check(swlib.wait_until(lambda: registrations(a) == []), "A forgot it", registrations(a))

    t.section("A restarted loads from Redis")
    r = register(phone_a, a)
    t.require(r is not None and r.status == 200, "REGISTER through A again: 200")
    t.check(a.stop() == 0, "A stops with exit 0")
    a.start()
    t.check(registrations(a) and registrations(a) == registrations(b),
            "A holds the binding again after its restart", registrations(a))
    t.check(" 1 binding(s) loaded from Redis" in a.log_text(), "A's log: loaded from Redis")
    inv, final = call(t, caller_a, phone_a, a)
    t.check(inv is not None and final is not None and final.status == 486,
            "a call through the restarted A reaches the phone")

    t.section("Redis away")
    redis.stop()
    t.check(swlib.wait_until(lambda: (cluster_status(a) or {}).get("redis") == "unreachable"),
            "status: Redis unreachable", cluster_status(a))
    t.check(metric(a, "sipwake_cluster_redis_up") == 0 and
            metric(a, "sipwake_cluster_redis_lost_total") == 1,
            "metrics: sipwake_cluster_redis_up 0, sipwake_cluster_redis_lost_total 1")
    r = register(phone_a, a)
    t.check(r is not None and r.status == 503 and r.get("retry-after"),
            "REGISTER while Redis is down: 503 with Retry-After",
            r.summary() if r else None)
    inv, final = call(t, caller_b, phone_b, b)
    t.check(inv is not None and final is not None and final.status == 486,
            "a call through B for the binding it knows still goes through")
    redis.start()
    ok = swlib.wait_until(lambda: (register(phone_a, a) or swlib.SipMsg("SIP/2.0 999 x\r\n\r\n")).status == 200,
                    timeout=10)
    t.check(ok, "REGISTER through A gets 200 again once Redis is back")
    # B reconnects on its own schedule: 503 until then
    ok = swlib.wait_until(lambda: (register(phone_b, b, expires=0) or swlib.SipMsg("SIP/2.0 999 x\r\n\r\n")).status == 200,
                    timeout=10)
    t.check(ok, "un-REGISTER through B after Redis came back: 200")
    t.check(swlib.wait_until(lambda: registrations(a) == []),
            "A heard of B's change after both reconnected", registrations(a))
    t.section("A misses a change: it resynchronises")
    r = register(phone_a, a)
    t.require(r is not None and r.status == 200, "REGISTER through A: 200")
    t.check(swlib.wait_until(lambda: registrations(b) == registrations(a) and registrations(b)),
            "B has it", registrations(b))
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        clients = redis.command("CLIENT", "LIST") or ""
        ids = re.findall(r"id=(\d+) .*name=sipwake:A:sub", clients)
        t.check(len(ids) == 1, "A's subscription is a named client (sipwake:A:sub)", clients)
        for i in ids:
            redis.command("CLIENT", "KILL", "ID", i)
        r = register(phone_b, b, expires=0)
        t.check(r is not None and r.status == 200, "un-REGISTER through B while A cannot hear it")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    t.check(swlib.wait_until(lambda: registrations(a) == [], timeout=10),
            "A, back, resynchronised: the binding is gone from it too", registrations(a))
    t.check("resynchronised with Redis" in a.log_text(), "A's log says so")

    t.section("Redis hangs")
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = register(phone_a, a)
        took = time.monotonic() - t0
        t.check(r is not None and r.status == 500 and r.get("retry-after"),
                "REGISTER that Redis never confirms: 500 with Retry-After, not 200",
                r.summary() if r else None)
        t.log("  (answered after %.1f s)" % took)
        r = register(phone_a, a)
        t.check(r is not None and r.status in (500, 503),
                "the next REGISTER while Redis hangs is not acknowledged either",
                r.summary() if r else None)
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    ok = swlib.wait_until(lambda: (register(phone_a, a) or swlib.SipMsg("SIP/2.0 999 x\r\n\r\n")).status == 200,
                    timeout=10)
    t.check(ok, "REGISTER through A gets 200 once Redis answers again")
    t.check(swlib.wait_until(lambda: registrations(b) == registrations(a) and registrations(b)),
            "B learned that registration too", registrations(b))

    for node, name in ((a, "A"), (b, "B")):
        text = node.log_text()
        t.check(text.count("unreachable") >= 1 and text.count("unreachable") ==
                text.count("reachable again"),
                "%s logged each loss of Redis once and each return once (%d)"
                % (name, text.count("unreachable")))

    for c in (phone_a, caller_a, caller_b):
        c.close()


if __name__ == "__main__":
    swlib.run(main)
