#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Soak: mixed traffic through sipwaked for a bounded time, RSS and open
descriptors over time.

On loopback: a Kamailio registrar R (the PBX), sipwaked in gateway mode in
front of it (upstream = R), the fake APNs and FCM (tests/fakes, through
tests/integration/wakelib.WakeEnv) as push providers. A pool of push
devices (Python phones of wakelib: half UDP, half TCP; half Android/FCM,
half iOS/APNs with Linphone's two tokens) registers through sipwake. A few
worker threads run operations at a modest fixed total rate (--rate per
second), each operation picking a device in the state it needs (before
the clock starts, every device registers once and every other one goes to
sleep):

  register     off -> awake     REGISTER with push parameters, 200
  refresh      awake            REGISTER again on the same socket
  sleep        awake -> asleep  the app is suspended: its socket is closed
  unregister   any -> off       REGISTER Expires: 0 (from a new socket if asleep)
  call-awake   awake            INVITE to the AOR at R -> the device answers,
                                ACK, BYE, 200 (a push goes out too: a live
                                device with push parameters is pushed at once)
  call-wake    asleep -> awake  INVITE at R -> push at the fake -> the device
                                registers from a new socket -> the held INVITE
                                reaches it -> answered, ACK, BYE, 200
  msg-awake    awake            MESSAGE at R -> delivered, 200
  msg-stored   asleep -> awake  MESSAGE at R -> 202 (stored) -> alert push at
                                the fake -> the device registers -> the
                                stored MESSAGE is delivered, 200

Every --interval seconds a line: elapsed, sipwaked's VmRSS
(/proc/PID/status), its open descriptors (/proc/PID/fd; "-tcp": minus one
per device awake on TCP, the figure that should stay flat), operations done
and failed, pushes the fakes received, devices awake (of which on TCP: each
holds a connection, so a descriptor, in sipwaked) / asleep / off. At the
end a summary: RSS and descriptors at the end of the warm-up (the first
--warmup share of the run, default 20 %) and at the end, the least-squares
slope after warm-up (kB/min, fds/min), the operations table, the first
reasons of failures, and how sipwaked took SIGTERM.

Prints numbers, asserts nothing. Every wait is bounded, every loop ends at
the deadline; every process is stopped by its PID.
"""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
import swlib  # noqa: E402
import wakelib as W  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))
from benchlib import rss_kb  # noqa: E402

OPS = ("register", "refresh", "sleep", "unregister", "call-awake", "call-wake", "msg-awake",
       "msg-stored")
# operation -> (weight, device states it applies to)
MIX = {
    "register": (2, ("off",)),
    "refresh": (3, ("awake",)),
    # as likely as the two ways back (call-wake, msg-stored): the pool keeps
    # devices in both states instead of ending up all awake
    "sleep": (5, ("awake",)),
    "unregister": (1, ("awake", "asleep")),
    "call-awake": (3, ("awake",)),
    "call-wake": (3, ("asleep",)),
    "msg-awake": (2, ("awake",)),
    "msg-stored": (2, ("asleep",)),
}
EXPIRES = 3600
HOLD_S = 0.05  # between ACK and BYE


class Failed(Exception):
    pass


# --------------------------------------------------------------------------
# what the fakes received

class PushTail(threading.Thread):
    """Follows the fakes' JSON-lines logs: pushes per token, statuses."""

    def __init__(self, paths, stop):
        super().__init__(daemon=True)
        self.paths = paths
        self.pos = {p: 0 for p in paths}
        self.per_token = {}
        self.total = 0
        self.statuses = {}
        self.cond = threading.Condition()
        self.stop = stop

    def poll(self):
        got = False
        for p in self.paths:
            try:
                with open(p) as f:
                    f.seek(self.pos[p])
                    while True:
                        line = f.readline()
                        if not line or not line.endswith("\n"):
                            break
                        self.pos[p] = f.tell()
                        try:
                            r = json.loads(line)
                        except ValueError:
                            continue
                        if "event" in r:
                            continue
                        with self.cond:
                            self.total += 1
                            s = r.get("status")
                            self.statuses[s] = self.statuses.get(s, 0) + 1
                            tok = r.get("token")
                            if tok:
                                self.per_token[tok] = self.per_token.get(tok, 0) + 1
                        got = True
            except OSError:
                continue
        if got:
            with self.cond:
                self.cond.notify_all()

    def run(self):
        while not self.stop.is_set():
            self.poll()
            time.sleep(0.02)

    def count(self, tok):
        with self.cond:
            return self.per_token.get(tok, 0)

    def wait_more(self, tok, base, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.per_token.get(tok, 0) <= base:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
            return True


# --------------------------------------------------------------------------
# devices

class Device:
    def __init__(self, i, sw_addr):
        self.i = i
        self.user = "soak%04d" % i
        self.transport = "udp" if i % 2 == 0 else "tcp"
        self.provider = "fcm" if (i // 2) % 2 == 0 else "apns"
        if self.provider == "fcm":
            self.call_tok = self.msg_tok = "soak-fcm-%04d-%s" % (i, "f" * 40)
            pn = W.fcm_pn(self.call_tok)
        else:
            self.call_tok = "%064x" % (0x50A6000000 + i)        # VoIP (PushKit)
            self.msg_tok = "%064x" % (0x50A7000000 + i)         # remote (alerts)
            pn = W.apns2_pn(self.msg_tok, self.call_tok)
        self.phone = W.Phone(self.transport, sw_addr, self.user, pn=pn,
                             inst=W.instance(700000 + i), name=self.user)
        self.state = "off"
        self.busy = False

    def connected(self):
        return self.phone.conn is not None and not self.phone.conn.closed

    def drain(self):
        """Answer what arrived while nobody looked (OPTIONS, a stored MESSAGE
        delivered late) and forget the phone's logs (bounded memory)."""
        p = self.phone
        if self.connected() and self.state == "awake":
            for _ in range(20):
                if p._pump(time.monotonic() + 0.005) is None:
                    break
        for m, _a in p.pending:
            if m.method in ("OPTIONS", "MESSAGE", "NOTIFY"):
                try:
                    p.respond(m, 200, "OK")
                except OSError:
                    pass
        p.pending = []
        p.wire = []

    def close(self):
        try:
            if self.phone.conn is not None:
                self.phone.conn.close()
        except OSError:
            pass


class Soak:
    def __init__(self, sw_addr, r_addr, tail, n_devices, seed):
        self.sw_addr, self.r_addr, self.tail = sw_addr, r_addr, tail
        self.devices = [Device(i, sw_addr) for i in range(n_devices)]
        self.lock = threading.Lock()
        self.done = {op: 0 for op in OPS}
        self.failed = {op: 0 for op in OPS}
        self.reasons = {}
        self.rng = random.Random(seed)
        self.seq = 0

    # picking -----------------------------------------------------------
    def pick(self):
        """(op, device) for a weighted operation that has a free device in
        the state it needs, device marked busy; or (None, None)."""
        with self.lock:
            free = {}
            for d in self.devices:
                if not d.busy:
                    free.setdefault(d.state, []).append(d)
            ops = [(op, w) for op, (w, states) in MIX.items() if any(free.get(s) for s in states)]
            if not ops:
                return None, None
            x = self.rng.uniform(0, sum(w for _, w in ops))
            for op, w in ops:
                x -= w
                if x <= 0:
                    break
            cands = [d for s in MIX[op][1] for d in free.get(s, [])]
            d = self.rng.choice(cands)
            d.busy = True
            self.seq += 1
            return op, d

    def release(self, d):
        d.drain()
        with self.lock:
            d.busy = False

    def record(self, op, ok, why=None):
        with self.lock:
            if ok:
                self.done[op] += 1
            else:
                self.failed[op] += 1
                r = self.reasons.setdefault(op, [])
                if len(r) < 5:
                    r.append("%s %s" % (time.strftime("%H:%M:%S"), why))

    def states(self):
        with self.lock:
            out = {"awake": 0, "asleep": 0, "off": 0, "tcp": 0}
            for d in self.devices:
                out[d.state] += 1
                if d.state == "awake" and d.transport == "tcp":
                    out["tcp"] += 1
            return out

    def next_text(self, d):
        with self.lock:
            self.seq += 1
            return "soak message %d to %s" % (self.seq, d.user)

    # operations ----------------------------------------------------------
    def _register(self, d, expires=EXPIRES):
        r = d.phone.register(expires=expires, timeout=5)
        if r is None or r.status != 200:
            raise Failed("REGISTER (expires %d, %s) -> %s" % (
                expires, d.transport, r.status if r is not None else "no answer"))

    def op_register(self, d):
        d.phone.connect()
        self._register(d)
        d.state = "awake"

    def op_refresh(self, d):
        self._register(d)

    def op_sleep(self, d):
        d.phone.close()
        d.state = "asleep"

    def op_unregister(self, d):
        if not d.connected():
            d.phone.connect()
        try:
            self._register(d, expires=0)
        finally:
            d.phone.close()
            d.state = "off"

    def _answer_call(self, d, c, inv):
        p = d.phone
        p.respond(inv, 180, "Ringing")
        p.respond(inv, 200, "OK", body=W.SDP)
        f = c.final(timeout=5)
        if f is None or f.status != 200:
            raise Failed("caller's final response: %s" % (f.status if f is not None else "none"))
        c.ack(f)
        if p.wait(lambda m: m.method == "ACK" and m.call_id == c.call_id, 5) is None:
            raise Failed("ACK did not reach the device")
        time.sleep(HOLD_S)
        c.bye(f)
        if p.wait_bye(c.call_id, timeout=5) is None:
            raise Failed("BYE did not reach the device")
        ok = c.wait_bye_ok(timeout=5)
        if ok is None or ok.status != 200:
            raise Failed("caller's answer to BYE: %s" % (ok.status if ok is not None else "none"))

    def _end_call(self, c):
        """A call that went wrong: CANCEL it, take the final response."""
        try:
            c.cancel()
            c.final(timeout=3)
        except OSError:
            pass

    def op_call_awake(self, d):
        c = W.Caller("udp", self.r_addr, d.user, name="ca", display="Soak Caller")
        try:
            c.invite()
            inv = d.phone.wait(lambda m: m.method == "INVITE" and m.call_id == c.call_id, 5)
            if inv is None:
                self._end_call(c)
                raise Failed("INVITE did not reach the awake device (%s)" % d.transport)
            self._answer_call(d, c, inv)
        finally:
            c.close()

    def op_call_wake(self, d):
        c = W.Caller("udp", self.r_addr, d.user, name="cw", display="Soak Caller")
        base = self.tail.count(d.call_tok)
        try:
            c.invite()
            if not self.tail.wait_more(d.call_tok, base, 5):
                self._end_call(c)
                raise Failed("no call push for %s %s device" % (d.provider, d.transport))
            d.phone.connect()
            self._register(d)
            d.state = "awake"
            inv = d.phone.wait(lambda m: m.method == "INVITE" and m.call_id == c.call_id, 5)
            if inv is None:
                self._end_call(c)
                raise Failed("held INVITE not released to the woken device (%s)" % d.transport)
            self._answer_call(d, c, inv)
        finally:
            c.close()

    def op_msg_awake(self, d):
        text = self.next_text(d)
        c = W.Caller("udp", self.r_addr, d.user, name="ma", display="Soak Sender")
        try:
            c.message(text)
            m = d.phone.wait(lambda x: x.method == "MESSAGE" and x.call_id == c.call_id, 5)
            if m is None:
                raise Failed("MESSAGE did not reach the awake device (%s)" % d.transport)
            d.phone.respond(m, 200, "OK")
            f = c.final(timeout=5)
            if f is None or f.status != 200:
                raise Failed("sender's final response: %s" % (f.status if f is not None else "none"))
        finally:
            c.close()

    def op_msg_stored(self, d):
        text = self.next_text(d)
        base = self.tail.count(d.msg_tok)
        c = W.Caller("udp", self.r_addr, d.user, name="ms", display="Soak Sender")
        try:
            c.message(text)
            f = c.final(timeout=12)
            if f is None or f.status != 202:
                raise Failed("sender's final response: %s (want 202, %s device)" % (
                    f.status if f is not None else "none", d.transport))
        finally:
            c.close()
        if not self.tail.wait_more(d.msg_tok, base, 5):
            raise Failed("no alert push for the stored MESSAGE (%s)" % d.provider)
        d.phone.connect()
        self._register(d)
        d.state = "awake"
        m = d.phone.wait(lambda x: x.method == "MESSAGE" and x.body == text, 10)
        if m is None:
            raise Failed("stored MESSAGE not delivered after the re-REGISTER (%s)" % d.transport)
        d.phone.respond(m, 200, "OK")

    def run_op(self, op, d):
        fn = getattr(self, "op_" + op.replace("-", "_"))
        try:
            fn(d)
            self.record(op, True)
        except Failed as e:
            self.record(op, False, "%s: %s" % (d.user, e))
        except OSError as e:
            # a socket error on our side: the device starts over as "asleep"
            # if it had registered (its binding is still there), else "off"
            self.record(op, False, "%s: %s: %s" % (d.user, type(e).__name__, e))
            d.close()
            if d.state == "awake":
                d.state = "asleep"

    def worker(self, deadline, interval, stop):
        nxt = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            op, d = self.pick()
            if op is not None:
                try:
                    self.run_op(op, d)
                finally:
                    self.release(d)
            nxt = max(nxt + interval, time.monotonic() - interval)
            left = nxt - time.monotonic()
            if left > 0:
                stop.wait(min(left, max(0.0, deadline - time.monotonic())))


# --------------------------------------------------------------------------

def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def slope_per_min(points):
    """Least-squares slope of [(t_s, v)] in units per minute, or None."""
    pts = [(t, v) for t, v in points if v is not None]
    if len(pts) < 2:
        return None
    n = float(len(pts))
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in pts) / den * 60.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=600, help="seconds of traffic (default 600; 3600 by hand)")
    ap.add_argument("--rate", type=float, default=20.0, help="operations per second, all workers together")
    ap.add_argument("--workers", type=int, default=6, help="threads running operations")
    ap.add_argument("--devices", type=int, default=200, help="push devices in the pool")
    ap.add_argument("--interval", type=int, default=0, help="seconds between lines (default duration/20, >= 2)")
    ap.add_argument("--warmup", type=float, default=0.2, help="share of the run counted as warm-up")
    ap.add_argument("--seed", type=int, default=1, help="seed of the operation mix")
    ap.add_argument("--smoke", action="store_true", help="30 s, 40 devices, 2-s lines")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.devices = 30, 40
        a.interval = a.interval or 3
    if a.duration <= 0 or a.rate <= 0 or a.workers <= 0 or a.devices <= 0:
        ap.error("duration, rate, workers and devices must be positive")
    interval = a.interval or max(2, a.duration // 20)

    class T:  # the parts of swlib.Test that WakeEnv uses
        def __init__(self):
            self.dir = tempfile.mkdtemp(prefix="sipwake-bench-soak-")
            self._c = []

        def on_cleanup(self, fn):
            self._c.append(fn)

        def cleanup(self):
            for fn in reversed(self._c):
                try:
                    fn()
                except Exception as e:
                    print("  (cleanup: %s)" % e)
            self._c = []

    t = T()
    stop = threading.Event()
    threads = []
    soak = None
    rc = 0
    try:
        registrar = swlib.Kamailio(t.dir, name="registrar", children=2, shm_mb=256, debug=1)
        t.on_cleanup(registrar.stop)
        registrar.start()
        env = W.WakeEnv(t)
        port = swlib.free_port()
        cfg = env.config(port, upstream_uri=registrar.uri,
                         extra={"push": {"call_timeout": 15},
                                "log": {"level": "notice", "sip_trace": False},
                                "sip": {"max_requests_per_source": 0}})
        sw = swlib.Sipwaked(t.dir, cfg, log_level="notice")
        t.on_cleanup(sw.kill9)
        sw.start()
        pid = sw.proc.pid
        sw_addr = (swlib.LOOPBACK, port)
        tail = PushTail([env.apns.log, env.fcm.log], stop)
        tail.start()
        soak = Soak(sw_addr, registrar.addr(), tail, a.devices, a.seed)

        print("soak: %d s, %.0f ops/s target, %d workers, %d devices (UDP/TCP, FCM/APNs), sipwaked %s, "
              "pid %d, %s" % (a.duration, a.rate, a.workers, a.devices, sw.binary, pid,
                              time.strftime("%Y-%m-%d %H:%M:%S")))
        print("  sipwaked (gateway) -> Kamailio R on 127.0.0.1; fake APNs and FCM; line every %d s; "
              "warm-up = first %.0f %%" % (interval, a.warmup * 100))
        print()
        hdr = "%7s %9s %5s %5s %8s %6s %7s %6s %4s %6s %4s  %s" % (
            "t/s", "RSS/kB", "fds", "-tcp", "ops ok", "failed", "pushes", "awake", "tcp", "asleep", "off",
            "per op: ok(failed)")
        print(hdr)
        print("-" * 110)
        samples = []
        t0 = time.monotonic()
        deadline = t0 + a.duration

        def line(now):
            el = now - t0
            r, fd = rss_kb(pid), nfds(pid)
            st = soak.states()
            with soak.lock:
                ok, bad = sum(soak.done.values()), sum(soak.failed.values())
                per = " ".join("%s %d%s" % (op.replace("call-", "c").replace("msg-", "m")[:8], soak.done[op],
                                            "(%d)" % soak.failed[op] if soak.failed[op] else "")
                               for op in OPS)
            other = fd - st["tcp"] if fd is not None else None
            samples.append((el, r, fd, other))
            print("%7.0f %9s %5s %5s %8d %6d %7d %6d %4d %6d %4d  %s" % (
                el, r, fd, other, ok, bad, tail.total, st["awake"], st["tcp"], st["asleep"], st["off"], per),
                flush=True)

        line(time.monotonic())
        # start from a full pool: every device registers once (one after the
        # other, before the clock starts), every other one then sleeps
        t_fill = time.monotonic()
        for d in soak.devices:
            soak.run_op("register", d)
            if (d.i + d.i // 4) % 2 == 1 and d.state == "awake":  # each kind of device, both ways
                soak.run_op("sleep", d)
            d.drain()
        st = soak.states()
        with soak.lock:
            fill_ops = sum(soak.done.values()) + sum(soak.failed.values())
        print("  (pool filled in %.1f s: %d awake, %d asleep, %d off; counted in the ops below)"
              % (time.monotonic() - t_fill, st["awake"], st["asleep"], st["off"]))
        t0 = time.monotonic()
        deadline = t0 + a.duration
        line(time.monotonic())
        per_worker = a.workers / float(a.rate)
        for i in range(a.workers):
            th = threading.Thread(target=soak.worker, args=(deadline, per_worker, stop), daemon=True)
            th.start()
            threads.append(th)
            time.sleep(per_worker / a.workers)
        nxt = t0 + interval
        crashed = None
        while time.monotonic() < deadline:
            time.sleep(max(0.0, min(nxt, deadline) - time.monotonic()))
            if sw.proc.poll() is not None:
                crashed = sw.proc.returncode
                break
            if time.monotonic() >= nxt - 0.01:
                line(time.monotonic())
                nxt += interval
        stop.set()
        for th in threads:
            th.join(timeout=30)
        if crashed is None and sw.proc.poll() is not None:
            crashed = sw.proc.returncode
        if crashed is not None:
            print("\nsipwaked EXITED during the run (status %s); stderr:\n%s" % (crashed, swlib.tail(sw.stderr_path, 30)))
            rc = 1
        else:
            line(time.monotonic())

        # summary ----------------------------------------------------------
        print()
        cut = a.warmup * a.duration
        after = [s for s in samples if s[0] >= cut]
        if after and crashed is None:
            first, last = after[0], samples[-1]
            print("after warm-up (t=%.0f s): RSS %s kB, fds %s (%s without device TCP connections)" % (
                first[0], first[1], first[2], first[3]))
            print("end          (t=%.0f s): RSS %s kB, fds %s (%s without device TCP connections)" % (
                last[0], last[1], last[2], last[3]))
            ks = slope_per_min([(s[0], s[1]) for s in after])
            fs = slope_per_min([(s[0], s[2]) for s in after])
            os_ = slope_per_min([(s[0], s[3]) for s in after])
            print("slope after warm-up (least squares over %d samples): RSS %s kB/min, fds %s /min, "
                  "fds without device TCP connections %s /min" % (
                      len(after), "-" if ks is None else "%+.1f" % ks, "-" if fs is None else "%+.2f" % fs,
                      "-" if os_ is None else "%+.2f" % os_))
            print("RSS max %s kB; fds min %s max %s (after warm-up)" % (
                max(s[1] for s in samples if s[1] is not None),
                min(s[2] for s in after if s[2] is not None), max(s[2] for s in after if s[2] is not None)))
        el = time.monotonic() - t0
        tot_ok, tot_bad = sum(soak.done.values()), sum(soak.failed.values())
        print("operations: %d ok, %d failed (%d of them filling the pool); %.1f/s over %.0f s; "
              "pushes at the fakes: %d, statuses %s" % (
            tot_ok, tot_bad, fill_ops, (tot_ok + tot_bad - fill_ops) / max(el, 1e-9), el, tail.total,
            dict(sorted(tail.statuses.items(), key=str))))
        print("%-11s %8s %7s" % ("op", "ok", "failed"))
        for op in OPS:
            print("%-11s %8d %7d" % (op, soak.done[op], soak.failed[op]))
        if soak.reasons:
            print("first failures:")
            for op in OPS:
                for r in soak.reasons.get(op, []):
                    print("  %-11s %s" % (op, r))
        if crashed is None:
            t_term = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            try:
                code = sw.proc.wait(timeout=15)
            except Exception:
                code = None
            print("SIGTERM: sipwaked exit status %s after %.2f s" % (code, time.monotonic() - t_term))
            swlib._forget(sw.proc)
        return rc
    except swlib.SetupError as e:
        print("SETUP ERROR: %s" % e)
        return 2
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=10)
        if soak is not None:
            for d in soak.devices:
                d.close()
        t.cleanup()
        swlib._cleanup_all()
        if not a.keep:
            shutil.rmtree(t.dir, ignore_errors=True)
        else:
            print("work dir kept: %s" % t.dir)


if __name__ == "__main__":
    sys.exit(main())
