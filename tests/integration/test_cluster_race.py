#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Two nodes writing one binding at the same moment (SPEC 9, issue 11).

Nodes A and B on one real redis-server. One phone (one UDP socket, so one
Contact and one binding) sends its REGISTER refreshes to A and to B back to
back, so that both nodes write the binding within the same millisecond,
each refresh with its own User-Agent. Redis runs one write after the
other; each node applies its own at once and hears the other's later. In
every round:
- after refreshes racing on both nodes, A, B and Redis hold the same
  binding (the same User-Agent: the write Redis ran last);
- after a refresh on one node racing an un-REGISTER on the other, A, B and
  Redis agree on whether the binding exists;
- seen with Redis' MONITOR during the rounds, every MULTI a node sends holds
  only its transaction's writes up to the EXEC: no heartbeat, membership
  check or other command of the node lands inside it.
Rounds are bounded in count and time.
"""
import json
import os
import re
import socket
import threading
import time

import swlib

USER = "race"
AOR = "sip:%s@%s" % (USER, swlib.DOMAIN)
ROUNDS = 40
BURST = 6  # racing pairs of writes per round


def node_config(t, name, redis):
    d = os.path.join(t.dir, name)
    os.makedirs(d, exist_ok=True)
    return swlib.sipwake_config(d, swlib.free_port(), fcm=False, extra={
        "cluster": {"redis": redis.url, "node_name": name},
        "sip": {"max_requests_per_source": 0}})


def view(node):
    """The User-Agent of the node's binding of AOR, None when it has none."""
    r = node.ctl("registrations", AOR)
    regs = r["registrations"] if r else []
    return regs[0].get("user_agent") if len(regs) == 1 else (None if not regs else "several")


def in_redis(redis):
    flat = redis.command("HGETALL", "sipwake:bindings") or []
    regs = [json.loads(flat[i + 1]) for i in range(0, len(flat), 2)]
    return regs[0].get("user_agent") if len(regs) == 1 else (None if not regs else "several")


class Monitor:
    """Redis' MONITOR on its own connection, read by a thread until stop()."""
    LINE = re.compile(r'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"(.*)$')

    def __init__(self, redis):
        self.sock = socket.create_connection((swlib.LOOPBACK, redis.port), timeout=1)
        self.sock.sendall(b"MONITOR\r\n")
        self.lines, self.done = [], False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\r\n")
            self.lines += [x.decode("utf-8", "replace") for x in lines]

    def stop(self):
        self.done = True
        self.thread.join(timeout=3)
        self.sock.close()

    def intruders(self):
        """Commands a client sent between its MULTI and EXEC that are not
        a store transaction's (and how many MULTIs there were)."""
        open_, bad, multis = {}, [], 0
        allowed = {"HSET", "ZADD", "PUBLISH", "HDEL", "ZREM", "EVAL"}
        for line in self.lines:
            m = self.LINE.match(line)
            if not m:
                continue
            client, cmd = m.group(1), m.group(2).upper()
            if cmd == "MULTI":
                open_[client] = True
                multis += 1
            elif cmd in ("EXEC", "DISCARD"):
                open_.pop(client, None)
            elif open_.get(client) and cmd not in allowed:
                bad.append(line[:160])
        return bad, multis


class Phone:
    def __init__(self, sock, local):
        self.sock, self.local = sock, local
        self.cseq = 1
        self.call_id = "race-%d@phone" % os.getpid()

    def register(self, addr, agent, expires=300):
        self.cseq += 1
        req = swlib.build_request(
            "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", self.local, from_uri=AOR,
            call_id=self.call_id, cseq=self.cseq,
            headers=[("Contact", "<sip:%s@%s:%d>" % (USER, self.local[0], self.local[1])),
                     ("Expires", str(expires)), ("User-Agent", agent)])
        self.sock.sendto(req, addr)

    def drain(self, want, timeout=5.0):
        """Read up to want responses; returns their status codes."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, _ = self.sock.recvfrom(70000)
            except OSError:
                break
            m = swlib.SipMsg(data.decode("utf-8", "replace"))
            if m.status is not None and m.status >= 200:
                got.append(m.status)
        return got


def agree(a, b, redis, timeout=3.0):
    """Wait until A, B and Redis hold the same; returns (agreed, what each holds)."""
    views = []

    def same():
        views[:] = [view(a), view(b), in_redis(redis)]
        return len(set(views)) == 1
    ok = swlib.wait_until(same, timeout=timeout, step=0.1)
    return ok, list(views)


def main(t):
    redis = t.redis()
    a = t.sipwaked(node_config(t, "A", redis), name="A")
    b = t.sipwaked(node_config(t, "B", redis), name="B")
    addr_a = tuple(a.listen_addrs()[0][1:])
    addr_b = tuple(b.listen_addrs()[0][1:])
    raw = swlib.RawSip("udp", addr_a, timeout=3)
    phone = Phone(raw.sock, raw.local)

    phone.register(addr_a, "first")
    t.require(phone.drain(1) == [200], "the phone registers through A")
    t.require(swlib.wait_until(lambda: view(b) == "first"), "B learns the binding")

    t.section("refreshes racing on both nodes")
    mon = Monitor(redis)
    deadline = time.monotonic() + 120
    bad = []
    rounds = 0
    for r in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        for i in range(BURST):
            first, second = (addr_a, addr_b) if (r + i) % 2 else (addr_b, addr_a)
            phone.register(first, "r%d-%d-%s" % (r, i, "A" if first == addr_a else "B"))
            phone.register(second, "r%d-%d-%s" % (r, i, "A" if second == addr_a else "B"))
        codes = phone.drain(2 * BURST)
        ok, views = agree(a, b, redis)
        rounds += 1
        if not ok:
            bad.append((r, codes, views))
    t.check(rounds >= 10, "%d rounds ran" % rounds)
    t.check(not bad, "after every round A, B and Redis hold the same binding (the write Redis "
            "ran last)", bad[:3])

    t.section("a refresh racing an un-REGISTER")
    deadline = time.monotonic() + 120
    bad = []
    rounds = 0
    for r in range(ROUNDS // 2):
        if time.monotonic() > deadline:
            break
        # it exists before the race
        phone.register(addr_a, "base%d" % r)
        phone.drain(1)
        agree(a, b, redis)
        unreg, refresh = (addr_a, addr_b) if r % 2 else (addr_b, addr_a)
        phone.register(unreg, "gone%d" % r, expires=0)
        phone.register(refresh, "kept%d" % r)
        codes = phone.drain(2)
        ok, views = agree(a, b, redis)
        rounds += 1
        if not ok:
            bad.append((r, codes, views))
    t.check(rounds >= 5, "%d rounds ran" % rounds)
    t.check(not bad, "after every round A, B and Redis agree whether the binding exists",
            bad[:3])
    t.section("a flood on both nodes (their transactions stay open across loop turns)")
    flood = swlib.RawSip("udp", addr_a, timeout=1)
    sent, end = 0, time.monotonic() + 3.0
    while time.monotonic() < end:
        user = "flood%d" % (sent % 500)
        req = swlib.build_request(
            "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", flood.local,
            from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
            call_id="flood-%d@x" % sent,
            headers=[("Contact", "<sip:%s@%s:%d>" % (user, flood.local[0], flood.local[1])),
                     ("Expires", "300")])
        flood.sock.sendto(req, addr_a if sent % 2 else addr_b)
        sent += 1
        if sent % 200 == 0:
            flood.collect(0.01)  # keep our receive buffer from filling
    flood.collect(1.0)
    flood.close()
    t.check(sent > 1000, "%d REGISTERs sent in 3 s" % sent)
    mon.stop()
    bad, multis = mon.intruders()
    t.check(multis > 0 and not bad, "%d transactions seen in MONITOR, none with another command "
            "of the node inside its MULTI" % multis, bad[:5])
    t.check(a.alive() and b.alive(), "both nodes run")


if __name__ == "__main__":
    swlib.run(main)
