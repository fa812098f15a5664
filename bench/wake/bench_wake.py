#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Wake-up routing benchmark (issue 4 item 8): sipwaked in standalone mode on
loopback, the fake APNs (tests/fakes/fake_apns.py) as the provider, Python
SIP endpoints (tests/integration/wakelib.py).

1. Latency, CALLS calls one after the other. Every device is an iOS phone
   (APNs VoIP token) registered over TCP whose connection is closed, so a
   call can only reach it through a push. Per call:
     A  INVITE sent by the caller (loopback UDP: = arrives at sipwake)
        -> the push request for that device's token logged by the fake APNs
        (its wall-clock time when the HTTP/2 request was complete);
     B  the phone re-registers on a new TCP connection: the 200 to that
        REGISTER -> the released INVITE, both as received by the phone on
        the same connection (sipwake sends the INVITE in the loop turn of the
        200, so B is sipwake's time between the two writes plus reading;
        negative if the INVITE was written first).
   The phone then answers 486 and the caller ACKs. p50 / p90 / p99 / max.
2. Held calls at once: HELD devices registered (one TCP connection, then
   closed), RSS of sipwaked (VmRSS from /proc/PID/status) measured; then one
   INVITE per device, paced, with push.call_timeout = 600 s so that none
   ends; once the fake has received a push for every device (and the caller
   its 110s), RSS again: the difference / HELD = memory per held call.
   Finally SIGTERM: the held calls are failed cleanly (the caller's final
   responses are counted) and the exit status and time are printed.

Prints numbers, asserts nothing about speed. --smoke runs tiny counts.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
import swlib  # noqa: E402
import wakelib as W  # noqa: E402


# Every device and caller of the bench is 127.0.0.1: the per-source limit
# (200/s by default) would measure itself, not wake-up routing.
NODE_EXTRA = {"push": {"call_timeout": 600},
              "log": {"level": "notice", "sip_trace": False},
              "registrar": {"max_contacts_per_aor": 12},
              "sip": {"max_requests_per_source": 0}}


def token(i):
    return "%064x" % (0xBE0C0000000 + i)


def contact_params(i):
    return W.apns_pn(token(i))


class FakeLog:
    """Incremental reader of the fake's JSON-lines log: token -> first t."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.first = {}
        self.count = 0
        self.statuses = {}

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                while True:
                    line = f.readline()
                    if not line or not line.endswith("\n"):
                        break
                    self.pos = f.tell()
                    r = json.loads(line)
                    if "event" in r:
                        continue
                    self.count += 1
                    self.statuses[r.get("status")] = self.statuses.get(r.get("status"), 0) + 1
                    tok = r.get("token")
                    if tok and tok not in self.first:
                        self.first[tok] = r["t"]
        except OSError:
            pass

    def wait_token(self, tok, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if tok in self.first:
                return self.first[tok]
            time.sleep(0.0005)
        return None


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def bulk_register(sw_addr, users, deadline_s=300):
    """REGISTER every (user, i) over ONE TCP connection (pipelined, 16 in
    flight), then close it: the bindings stay, their flow is gone. Returns
    the number of 200 answers."""
    sock = socket.create_connection(sw_addr, timeout=10)
    local = sock.getsockname()
    buf = b""
    ok = sent = got = 0
    deadline = time.monotonic() + deadline_s
    window = 16  # sofia drops a TCP connection whose unread input grows too large
    while got < len(users) and time.monotonic() < deadline:
        while sent < len(users) and sent - got < window:
            user, i = users[sent]
            req = ("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=z9hG4bK-bulk-%d-%d;rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=b%d\r\nTo: <sip:%s@%s>\r\n"
                   "Call-ID: bulk-%d-%s@bench\r\nCSeq: 1 REGISTER\r\n"
                   "Contact: <sip:%s@%s:%d;transport=tcp%s>;%s\r\nExpires: 3600\r\n"
                   "Content-Length: 0\r\n\r\n" % (
                       swlib.DOMAIN, local[0], local[1], os.getpid(), sent, user, swlib.DOMAIN,
                       sent, user, swlib.DOMAIN, os.getpid(), user, user, local[0], local[1],
                       contact_params(i), W.instance(500000 + i)))
            sock.sendall(req.encode())
            sent += 1
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(262144)
        except socket.timeout:
            break
        if not data:
            break
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            clen = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:") or line.lower().startswith(b"l:"):
                    clen = int(line.split(b":", 1)[1])
            if len(buf) < end + 4 + clen:
                break
            msg, buf = buf[:end + 4 + clen], buf[end + 4 + clen:]
            if msg.startswith(b"SIP/2.0 1"):
                continue
            got += 1
            if msg.startswith(b"SIP/2.0 200"):
                ok += 1
    sock.close()
    return ok


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def show(name, values_s):
    ms = [v * 1000.0 for v in values_s]
    if not ms:
        print("  %-44s no samples" % name)
        return
    print("  %-44s n=%d  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms"
          % (name, len(ms), pct(ms, 50), pct(ms, 90), pct(ms, 99), max(ms), statistics.mean(ms)))


def latency(sw_addr, fake, n, ca, wake_addr=None, label="", base=0):
    """n calls to sleeping devices registered at sw_addr; the caller calls
    sw_addr, the woken phone registers again at wake_addr (default the
    same: one node; another node of the cluster otherwise)."""
    wake_addr = wake_addr or sw_addr
    print("== latency%s: %d calls, one at a time" % (label, n))
    users = [("lat%05d" % (base + i), base + i) for i in range(n)]
    t0 = time.monotonic()
    ok = bulk_register(sw_addr, users)
    print("  registered %d/%d sleeping iOS devices in %.1f s" % (ok, n, time.monotonic() - t0))
    log = FakeLog(fake.log)
    a_push, b_release, missing = [], [], 0
    finals = {}
    for user, i in users:
        caller = W.Caller("udp", sw_addr, user, name="c%d" % i)
        t_send = time.time()
        caller.invite()
        t_push = log.wait_token(token(i), timeout=5)
        if t_push is None:
            missing += 1
            caller.cancel()
            caller.final(timeout=2)
            caller.close()
            continue
        a_push.append(t_push - t_send)
        phone = W.Phone("tcp", wake_addr, user, pn=contact_params(i), inst=W.instance(500000 + i),
                        ca=ca, name="p%d" % i)
        phone.connect()
        r = phone.register(expires=3600, timeout=5)
        inv = phone.wait_invite(timeout=5)
        if r is not None and inv is not None:
            t200 = [t for t, d, m in phone.wire if m is r][0]
            tinv = [t for t, d, m in phone.wire if m is inv][0]
            b_release.append(tinv - t200)
            phone.respond(inv, 486, "Busy Here")
            phone.wait(lambda m: m.method == "ACK", 2)
        else:
            missing += 1
        f = caller.final(timeout=5)
        code = f.status if f is not None else None
        finals[code] = finals.get(code, 0) + 1
        phone.close()
        caller.close()
    show("A  INVITE at sipwake -> push at fake APNs", a_push)
    show("B  re-REGISTER 200 -> INVITE (at the phone)", b_release)
    print("  caller finals: %s; calls without push or INVITE: %d"
          % (", ".join("%s x%d" % kv for kv in sorted(finals.items(), key=str)), missing))


def cluster_latency(t, env, n):
    """The same calls through a cluster of two nodes on one redis-server
    (SPEC 9): the caller calls node A, where the phone's binding is; the
    woken phone registers again at node B, and A's held INVITE reaches it
    through B (the hop). Compare with the one-node figures above."""
    if not os.path.exists(swlib.REDIS_SERVER):
        print("== latency, cluster: skipped (no %s)" % swlib.REDIS_SERVER)
        return
    redis = swlib.RedisServer(t.dir, name="wake").start()
    t.on_cleanup(redis.stop)
    nodes = []
    for name in ("A", "B"):
        port = swlib.free_port()
        cfg = env.config(port, workdir=os.path.join(t.dir, name), extra=dict(
            NODE_EXTRA, cluster={"redis": redis.url, "node_name": name}))
        sw = swlib.Sipwaked(os.path.join(t.dir, name), cfg, name=name, log_level="notice")
        t.on_cleanup(sw.kill9)
        sw.start()
        nodes.append((swlib.LOOPBACK, port))
    latency(nodes[0], env.apns, n, env.pki.ca, wake_addr=nodes[1],
            label=", cluster (held on A, woken phone on B)", base=200000)


def held(sw, sw_addr, fake, n, rate, timeout_s):
    print("== held calls at once: %d INVITEs (call_timeout 600 s)" % n)
    users = [("held%06d" % i, 100000 + i) for i in range(n)]
    t0 = time.monotonic()
    ok = bulk_register(sw_addr, users)
    print("  registered %d/%d sleeping iOS devices in %.1f s" % (ok, n, time.monotonic() - t0))
    time.sleep(1.0)
    rss0 = rss_kb(sw.proc.pid)
    log = FakeLog(fake.log)
    log.poll()
    base_count = log.count
    log.statuses = {}

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.bind((swlib.LOOPBACK, 0))
    local = sock.getsockname()
    codes = {}
    stop = threading.Event()

    def reader():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if data.startswith(b"SIP/2.0 "):
                c = int(data[8:11])
                codes[c] = codes.get(c, 0) + 1

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    t_start = time.monotonic()
    for k, (user, i) in enumerate(users):
        due = t_start + k / float(rate)
        while time.monotonic() < due:
            time.sleep(min(0.002, max(0.0, due - time.monotonic())))
        sdp = W.SDP
        req = ("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-held-%d;rport\r\n"
               "Max-Forwards: 70\r\nFrom: \"Bench\" <sip:bench@%s>;tag=h%d\r\nTo: <sip:%s@%s>\r\n"
               "Call-ID: held-%d-%d@bench\r\nCSeq: 1 INVITE\r\nContact: <sip:bench@%s:%d>\r\n"
               "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s" % (
                   user, swlib.DOMAIN, local[0], local[1], k, swlib.DOMAIN, k, user, swlib.DOMAIN,
                   os.getpid(), k, local[0], local[1], len(sdp), sdp))
        sock.sendto(req.encode(), sw_addr)
    t_sent = time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log.poll()
        answered = codes.get(110, 0) + sum(v for c, v in codes.items() if c >= 200)
        if answered >= n and log.count - base_count >= codes.get(110, 0):
            break
        time.sleep(0.2)
    t_all = time.monotonic()
    time.sleep(1.0)
    rss1 = rss_kb(sw.proc.pid)
    pushes = log.count - base_count
    print("  INVITEs sent in %.1f s (%.0f/s); pushes at the fake: %d (statuses %s) after %.1f s"
          % (t_sent - t_start, n / max(1e-9, t_sent - t_start), pushes,
             log.statuses, t_all - t_start))
    print("  caller got: %s" % ", ".join("%d x%d" % kv for kv in sorted(codes.items())))
    print("  sipwaked VmRSS: %d kB before, %d kB with %d calls held: +%d kB, %.2f kB per held call"
          % (rss0, rss1, n, rss1 - rss0, (rss1 - rss0) / float(n)))
    t_term = time.monotonic()
    os.kill(sw.proc.pid, signal.SIGTERM)
    try:
        rc = sw.proc.wait(timeout=30)
    except Exception:
        rc = None
    t_exit = time.monotonic() - t_term
    time.sleep(1.0)
    stop.set()
    th.join(2)
    sock.close()
    finals = {c: v for c, v in codes.items() if c >= 200}
    print("  SIGTERM with %d held calls: exit status %s after %.2f s; caller finals: %s"
          % (n, rc, t_exit, ", ".join("%d x%d" % kv for kv in sorted(finals.items())) or "none"))
    swlib._forget(sw.proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000, help="calls for the latency part")
    ap.add_argument("--held", type=int, default=10000, help="INVITEs held at once")
    ap.add_argument("--rate", type=int, default=1000, help="INVITE/s when filling the held set")
    ap.add_argument("--timeout", type=int, default=300, help="time limit for each phase (s)")
    ap.add_argument("--smoke", action="store_true", help="tiny run: 20 calls, 200 held")
    ap.add_argument("--no-cluster", action="store_true",
                    help="skip the two-node latency part (needs redis-server)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.calls, a.held, a.rate = 20, 200, 200

    class T:  # the bits of swlib.Test that WakeEnv uses
        def __init__(self):
            self.dir = tempfile.mkdtemp(prefix="sipwake-bench-wake-")
            self._c = []

        def on_cleanup(self, fn):
            self._c.append(fn)

        def cleanup(self):
            for fn in reversed(self._c):
                try:
                    fn()
                except Exception as e:
                    print("  (cleanup: %s)" % e)

    t = T()
    print("bench/wake: work dir %s, sipwaked %s" % (t.dir, swlib.sipwaked_binary()))
    try:
        env = W.WakeEnv(t)
        port = swlib.free_port()
        cfg = env.config(port, extra=NODE_EXTRA)
        sw = swlib.Sipwaked(t.dir, cfg, log_level="notice")
        t.on_cleanup(sw.kill9)
        sw.start()
        sw_addr = (swlib.LOOPBACK, port)
        latency(sw_addr, env.apns, a.calls, env.pki.ca)
        if not a.no_cluster:
            cluster_latency(t, env, a.calls)
        held(sw, sw_addr, env.apns, a.held, a.rate, a.timeout)
    except swlib.SetupError as e:
        print("SETUP ERROR: %s" % e)
        return 2
    finally:
        t.cleanup()
        swlib._cleanup_all()
        if not a.keep:
            import shutil
            shutil.rmtree(t.dir, ignore_errors=True)
        else:
            print("work dir kept: %s" % t.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
