#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stored MESSAGEs in a cluster live in Redis (SPEC 4.4, 9; issue 11).

Standalone mode, nodes A and B on one redis-server, the fake FCM. Asserted
on the wire and in Redis:
- a MESSAGE sent through A for a sleeping phone is answered 202, and when
  the 202 arrives the message is in Redis already (its hash, its body
  byte for byte, the AOR's set);
- the phone wakes and registers through B: B delivers it, exactly once (the
  MESSAGEs that reach the phone are counted); after the phone's 200 it is
  gone from Redis, and a further registration delivers nothing;
- two devices of one AOR, one on A and one on B, register at the same
  moment: the stored MESSAGE reaches one of them, once in all;
- messages.max_per_aor and messages.max_total hold across the nodes (480
  Mailbox Full, 503 Message Store Full), counted in Redis;
- after SCRIPT FLUSH, a MESSAGE is stored and delivered all the same
  (the nodes fall back on EVAL at NOSCRIPT);
- with Redis stopped, a MESSAGE that would be stored gets 503 Store
  Unavailable with Retry-After, and nothing of it is in Redis once Redis
  is back;
- a message past messages.max_age (node C, 2 s) is not delivered when the
  phone registers, and the take drops it from Redis;
- every node stops with exit status 0.
"""
import os
import time

import swlib
import wakelib as W

TEXT1 = "stored in Redis \u00e9t\u00e9 \u2603 \t tab"
TEXT2 = "for one of two devices"
TEXT3 = "after the scripts were flushed"
OLD_TEXT = "too old by then"
DOWN_TEXT = "while Redis is away"
MAX_PER_AOR = 3
MAX_TOTAL = 5


def aor(user):
    return "sip:%s@%s" % (user, swlib.DOMAIN)


def registered(node, user):
    r = node.ctl("registrations", aor(user)) or {}
    return r.get("count", 0) > 0


def cluster_status(node):
    return (node.ctl("status") or {}).get("cluster") or {}


def stored(redis, user):
    return redis.command("ZCARD", "sipwake:msgs:" + aor(user))


def send_message(t, addr, user, text, name):
    c = W.started_caller(t, "udp", addr, user, name=name, display="Cluster Sender")
    c.message(text)
    return c, c.final(timeout=15)


def sleeping_phone(t, addr, user, token, inst, name=None):
    p = W.started_phone(t, "tcp", addr, user, pn=W.fcm_pn(token), inst=W.instance(inst),
                        name=name).connect()
    r = p.register(expires=600)
    t.require(r is not None and r.status == 200, "%s registers -> 200" % (name or user),
              p.trace())
    p.close()
    return p


def count_messages(phones, body, seconds):
    """MESSAGEs with body reaching any of phones within seconds (each answered 200)."""
    got = {p.name: 0 for p in phones}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for p in phones:
            m = p.wait(lambda x: x.method == "MESSAGE" and x.body == body, 0.1)
            if m is not None:
                p.respond(m, 200, "OK")
                got[p.name] += 1
    return got


def main(t):
    env = W.WakeEnv(t)
    redis = t.redis()
    nodes = {}
    for name in ("A", "B"):
        port = swlib.free_port()
        cfg = env.config(port, workdir=os.path.join(t.dir, name),
                         extra={"cluster": {"redis": redis.url, "node_name": name},
                                "messages": {"max_per_aor": MAX_PER_AOR,
                                             "max_total": MAX_TOTAL}})
        nodes[name] = (t.sipwaked(cfg, name=name), (swlib.LOOPBACK, port))
    a, addr_a = nodes["A"]
    b, addr_b = nodes["B"]

    t.section("a MESSAGE stored through A, in Redis before the 202")
    p = sleeping_phone(t, addr_a, "sleeper", "fcm-cm-" + "1" * 32, 71)
    t.require(swlib.wait_until(lambda: registered(b, "sleeper")), "B knows the binding")
    c, f = send_message(t, addr_a, "sleeper", TEXT1, "msg1")
    in_redis = stored(redis, "sleeper")
    t.require(f is not None and f.status == 202, "MESSAGE through A -> 202", c.flow())
    t.check(in_redis == 1, "when the 202 arrived the message was in Redis "
            "(sipwake:msgs:AOR holds it)", in_redis)
    ids = redis.command("ZRANGE", "sipwake:msgs:" + aor("sleeper"), 0, -1) or []
    body = redis.command("HGET", "sipwake:msg:%s" % ids[0], "body") if ids else None
    t.check(body == TEXT1, "its body in Redis is the MESSAGE's, byte for byte", repr(body))
    lst = a.ctl("messages", aor("sleeper")) or {}
    t.check(lst.get("count") == 1 and len(lst.get("messages", [])) == 1 and
            lst["messages"][0].get("size") == len(TEXT1.encode()),
            "sipwakectl messages on A lists it from Redis", lst)
    lst = b.ctl("messages") or {}
    t.check(lst.get("count") == 1, "sipwakectl messages on B lists it too", lst)

    t.section("the phone wakes on B: delivered once, then gone from Redis")
    p.sw = addr_b  # it wakes up in another network: B now
    p.connect()
    r = p.register(expires=600)
    t.require(r is not None and r.status == 200, "the phone registers through B", p.trace())
    got = count_messages([p], TEXT1, 4.0)
    t.check(got[p.name] == 1, "the stored MESSAGE reached the phone exactly once", p.flow())
    t.check(swlib.wait_until(lambda: stored(redis, "sleeper") == 0 and
                             not redis.command("EXISTS", "sipwake:msg:%s" % ids[0]), timeout=5),
            "after the phone's 200 the message is gone from Redis",
            redis.command("KEYS", "sipwake:msg*"))
    r = p.register(expires=600)
    t.check(r is not None and r.status == 200, "another refresh -> 200")
    t.check(p.wait(lambda m: m.method == "MESSAGE", 2.0) is None,
            "nothing delivered again", p.flow())
    p.close()

    t.section("two devices of one AOR register on A and B at once: delivered once")
    d1 = sleeping_phone(t, addr_a, "twodev", "fcm-cm-" + "2" * 32, 81, name="dev-on-A")
    d2 = W.started_phone(t, "tcp", addr_b, "twodev", pn=W.fcm_pn("fcm-cm-" + "3" * 32),
                         inst=W.instance(82), name="dev-on-B").connect()
    r = d2.register(expires=600)
    t.require(r is not None and r.status == 200, "dev-on-B registers -> 200", d2.trace())
    d2.close()
    t.require(swlib.wait_until(lambda: (a.ctl("registrations", aor("twodev")) or {})
                               .get("count") == 2), "A knows both devices")
    c, f = send_message(t, addr_a, "twodev", TEXT2, "msg2")
    t.require(f is not None and f.status == 202, "MESSAGE through A -> 202", c.flow())
    d2.sw = addr_b
    d1.connect()
    d2.connect()
    d1.cseq += 1
    d2.cseq += 1
    # both REGISTERs leave before either answer is read
    for d in (d1, d2):
        d.send(("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bK-cm-%s-%d;rport\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:twodev@%s>;tag=%s\r\nTo: <sip:twodev@%s>\r\n"
                "Call-ID: %s\r\nCSeq: %d REGISTER\r\nContact: %s\r\nExpires: 600\r\n"
                "Supported: path, outbound\r\nContent-Length: 0\r\n\r\n" % (
                    swlib.DOMAIN, d.conn.local[0], d.conn.local[1], d.name, d.cseq,
                    swlib.DOMAIN, d.tag, swlib.DOMAIN, d.call_id, d.cseq,
                    d.contact())).encode())
    for d in (d1, d2):
        r = d.wait(lambda m: m.status is not None and m.status >= 200 and
                   m.get("cseq") == "%d REGISTER" % d.cseq, 10)
        t.check(r is not None and r.status == 200, "%s registers again -> 200" % d.name,
                d.trace())
    got = count_messages([d1, d2], TEXT2, 5.0)
    t.check(sum(got.values()) == 1, "the stored MESSAGE was delivered once in all", got)
    t.check(swlib.wait_until(lambda: stored(redis, "twodev") == 0, timeout=5),
            "and it is gone from Redis", stored(redis, "twodev"))
    t.check(not redis.command("KEYS", "sipwake:msglease:*"),
            "no lease is left behind", redis.command("KEYS", "sipwake:msglease:*"))
    d1.close()
    d2.close()

    t.section("after SCRIPT FLUSH: stored and delivered all the same (NOSCRIPT, then EVAL)")
    redis.command("SCRIPT", "FLUSH")
    c, f = send_message(t, addr_b, "sleeper", TEXT3, "msg3")
    t.check(f is not None and f.status == 202, "MESSAGE through B -> 202", c.flow())
    t.check(stored(redis, "sleeper") == 1, "it is in Redis", stored(redis, "sleeper"))
    redis.command("SCRIPT", "FLUSH")
    p.sw = addr_a
    p.connect()
    r = p.register(expires=600)
    t.check(r is not None and r.status == 200, "the phone registers through A", p.trace())
    got = count_messages([p], TEXT3, 4.0)
    t.check(got[p.name] == 1, "A delivered it, once", p.flow())
    t.check(swlib.wait_until(lambda: stored(redis, "sleeper") == 0, timeout=5),
            "and it is gone from Redis", stored(redis, "sleeper"))
    p.close()

    t.section("limits across nodes")
    sleeping_phone(t, addr_a, "limited", "fcm-cm-" + "4" * 32, 91)
    sleeping_phone(t, addr_b, "other", "fcm-cm-" + "5" * 32, 92)
    t.require(swlib.wait_until(lambda: registered(a, "other") and registered(b, "limited")),
              "both nodes know both bindings")
    answers = []
    for i, addr in enumerate((addr_a, addr_b, addr_a, addr_b, addr_a)):
        c, f = send_message(t, addr, "limited", "limit %d" % i, "lim%d" % i)
        answers.append(f.status if f else None)
    t.check(answers == [202, 202, 202, 480, 480],
            "max_per_aor=%d: three MESSAGEs through A and B stored, then 480 on both nodes"
            % MAX_PER_AOR, answers)
    t.check(stored(redis, "limited") == MAX_PER_AOR, "Redis holds %d for the AOR" % MAX_PER_AOR,
            stored(redis, "limited"))
    answers = []
    for i, addr in enumerate((addr_b, addr_a, addr_b)):
        c, f = send_message(t, addr, "other", "total %d" % i, "tot%d" % i)
        answers.append(f.status if f else None)
        if f is not None and f.status == 503:
            t.check(f.get("retry-after"), "503 Message Store Full has Retry-After", f.summary())
    t.check(answers == [202, 202, 503],
            "max_total=%d: two more stored, the next one 503" % MAX_TOTAL, answers)
    t.check(redis.command("ZCARD", "sipwake:msgs") == MAX_TOTAL,
            "Redis holds %d messages in all" % MAX_TOTAL, redis.command("ZCARD", "sipwake:msgs"))
    t.check(swlib.wait_until(lambda: (a.ctl("status") or {}).get("stored_messages") == MAX_TOTAL,
                             timeout=6),
            "status on A counts them", (a.ctl("status") or {}).get("stored_messages"))

    t.section("Redis stopped: 503 with Retry-After, nothing stored")
    sleeping_phone(t, addr_a, "downer", "fcm-cm-" + "6" * 32, 93)
    redis.stop()
    t.require(swlib.wait_until(lambda: cluster_status(a).get("redis") == "unreachable"),
              "status on A: Redis unreachable", cluster_status(a))
    c, f = send_message(t, addr_a, "downer", DOWN_TEXT, "down")
    t.check(f is not None and f.status == 503 and f.reason == "Store Unavailable" and
            f.get("retry-after"),
            "MESSAGE while Redis is down: 503 Store Unavailable with Retry-After", c.flow())
    redis.start()
    t.require(swlib.wait_until(lambda: cluster_status(a).get("redis") == "reachable", timeout=10),
              "A reaches Redis again", cluster_status(a))
    t.check(stored(redis, "downer") == 0, "nothing of it is in Redis", stored(redis, "downer"))

    t.section("a message past messages.max_age is not delivered, and leaves Redis")
    port = swlib.free_port()
    cfg = env.config(port, workdir=os.path.join(t.dir, "C"),
                     extra={"cluster": {"redis": redis.url, "node_name": "C"},
                            "messages": {"max_age": 2, "max_total": 100}})
    cnode = t.sipwaked(cfg, name="C")
    c, f = send_message(t, (swlib.LOOPBACK, port), "sleeper", OLD_TEXT, "old")
    t.check(f is not None and f.status == 202, "MESSAGE through C (max_age 2 s) -> 202",
            c.flow())
    ids = redis.command("ZRANGE", "sipwake:msgs:" + aor("sleeper"), 0, -1) or []
    t.check(len(ids) == 1, "it is in Redis", ids)
    time.sleep(3)
    p.connect()
    r = p.register(expires=600)
    t.check(r is not None and r.status == 200, "the phone registers through A", p.trace())
    t.check(p.wait(lambda m: m.method == "MESSAGE", 3.0) is None,
            "the expired message is not delivered", p.flow())
    t.check(swlib.wait_until(lambda: stored(redis, "sleeper") == 0 and not (
        ids and redis.command("EXISTS", "sipwake:msg:%s" % ids[0])), timeout=5),
            "and it is gone from Redis", redis.command("KEYS", "sipwake:msg*"))
    p.close()

    t.section("shutdown")
    t.check(a.stop() == 0, "A exits 0")
    t.check(b.stop() == 0, "B exits 0")
    t.check(cnode.stop() == 0, "C exits 0")


if __name__ == "__main__":
    swlib.run(main)
