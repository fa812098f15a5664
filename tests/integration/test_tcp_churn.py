#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TCP/TLS connection churn must neither crash sipwaked nor leave it with
freed transports (issue 13, item 3).

Seen once each in a network fuzzing run: a crash in sofia's tport_close()
reached from tport_error_event(), and a use-after-free in tport_unref()
from nta_agent_destroy() at SIGTERM. Standalone mode, fake push servers,
TCP and TLS listeners; a fixed seed, a bounded number of rounds. Each
round:
  - phones register from new connections (half of them with FCM push
    parameters, so the binding keeps the connection as its flow), some
    send half a request, then every connection goes away: RST (SO_LINGER
    0) or FIN;
  - at once, INVITEs and MESSAGEs go to the users whose flow just died
    (held, pushed, answered later or not at all), from UDP and from a TCP
    caller that resets its own connection right after the INVITE;
  - some phones come back on new connections (a held INVITE forks to
    them) and reset the connection as the INVITE arrives; some unregister
    from a new connection (the binding is freed);
  - a phone that registered floods its connection with OPTIONS without
    reading and half-closes it (FIN while sipwaked still has answers
    queued), is unregistered from elsewhere, and then resets it.
After every step OPTIONS over UDP and TCP must be answered. At the end,
with bindings, connections, a half-sent request and held requests still
open, SIGTERM must end sipwaked with status 0 (under ASan a use-after-free
or a leak makes it non-zero).
"""
import random
import socket
import ssl
import struct
import time

import swlib
import wakelib as W

ROUNDS = 4
PHONES = 10          # users per round
SEED = 1303


class Conn:
    """One raw TCP or TLS connection to sipwaked with SIP framing."""

    def __init__(self, tr, addr, ca, rcvbuf=None):
        self.tr = tr
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(5)
        raw.connect(addr)
        if tr == "tls":
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = False
            raw = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock = raw
        self.local = raw.getsockname()[:2]
        self.buf = b""
        self.open = True

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def read(self, timeout):
        """The next SIP message, or None at the deadline or close."""
        deadline = time.monotonic() + timeout
        while True:
            data, self.buf = swlib.next_stream_message(self.buf)
            if data is not None:
                return swlib.SipMsg(data.decode("utf-8", "replace"), "received")
            left = deadline - time.monotonic()
            if left <= 0 or not self.open:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return None
            except OSError:
                data = b""
            if not data:
                self.open = False
                return None
            self.buf += data

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            m = self.read(max(0.0, deadline - time.monotonic()))
            if m is None or pred(m):
                return m

    def rst(self):
        """Close with a reset: SO_LINGER on, timeout 0."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._close()

    def fin(self):
        """Close with a FIN (TLS: no close_notify, the socket just ends)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close()

    def _close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.open = False


def branch():
    return "z9hG4bK-ch-%x" % time.monotonic_ns()


def register(c, user, pn, inst, expires=600, cseq=1, contact=None):
    tr = c.tr.upper()
    ct = contact or "<sip:%s@%s:%d;transport=%s%s>;%s" % (
        user, c.local[0], c.local[1], c.tr, pn, W.instance(inst))
    return ("REGISTER sip:%s SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s:%d;branch=%s;rport\r\nMax-Forwards: 70\r\n"
            "From: <sip:%s@%s>;tag=r%d\r\nTo: <sip:%s@%s>\r\n"
            "Call-ID: churn-reg-%s-%x@test\r\nCSeq: %d REGISTER\r\n"
            "Contact: %s\r\nExpires: %d\r\nSupported: path, outbound\r\n"
            "Content-Length: 0\r\n\r\n" % (
                swlib.DOMAIN, tr, c.local[0], c.local[1], branch(), user, swlib.DOMAIN, inst,
                user, swlib.DOMAIN, user, time.monotonic_ns(), cseq, ct, expires)).encode()


def options(c, own, n):
    return ("OPTIONS %s SIP/2.0\r\nVia: SIP/2.0/%s %s:%d;branch=%s-%d;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:flood@%s>;tag=f\r\nTo: <%s>\r\n"
            "Call-ID: churn-opt-%x-%d@test\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
                own, c.tr.upper(), c.local[0], c.local[1], branch(), n, swlib.DOMAIN, own,
                time.monotonic_ns(), n, n)).encode()


def is_final(cseq_method):
    return lambda m: m.status is not None and m.status >= 200 and m.cseq_method == cseq_method


def main(t):
    rnd = random.Random(SEED)
    env = W.WakeEnv(t)
    port, tls_port = swlib.free_port(), swlib.free_port()
    cfg = env.config(port, tls_port=tls_port, extra={
        "sip": {"max_requests_per_source": 0},
        "push": {"call_timeout": 3},
    })
    sw = t.sipwaked(cfg)
    edge = (swlib.LOOPBACK, port)
    addr = {"tcp": edge, "tls": (swlib.LOOPBACK, tls_port)}
    own = "sip:%s:%d" % edge
    ca = env.pki.ca
    started = time.monotonic()
    stuck = []  # connections left open on purpose until SIGTERM

    def serving(what):
        ok = sw.alive()
        for tr in ("udp", "tcp"):
            ok = ok and swlib.sip_options(tr, edge, timeout=3) is not None
        t.require(ok, "%s: sipwaked still answers OPTIONS over UDP and TCP" % what,
                  swlib.tail(sw.stderr_path, 30))

    udp_caller = W.started_caller(t, "udp", edge, "nobody", name="udp-caller")

    def call(user, method):
        udp_caller.user = user
        udp_caller.call_id = "churn-%s-%s-%x@caller" % (method, user, time.monotonic_ns())
        if method == "INVITE":
            udp_caller.invite()
        else:
            udp_caller.message("hello %s" % user)

    serving("start")
    for rnd_no in range(ROUNDS):
        t.section("round %d" % (rnd_no + 1))
        users = ["churn%d-%d" % (rnd_no, i) for i in range(PHONES)]
        conns, registered = {}, 0
        for i, u in enumerate(users):
            tr = "tls" if i % 4 == 3 else "tcp"
            c = Conn(tr, addr[tr], ca)
            pn = W.fcm_pn("churn-token-%d-%d" % (rnd_no, i)) if i % 2 == 0 else ""
            c.send(register(c, u, pn, 1000 * rnd_no + i))
            r = c.wait(is_final("REGISTER"))
            registered += r is not None and r.status == 200
            conns[u] = (c, pn, 1000 * rnd_no + i)
        t.check(registered == PHONES, "%d/%d phones registered over TCP/TLS" % (registered, PHONES))

        # Half a request on some connections, then every connection dies.
        for u in users:
            c = conns[u][0]
            if rnd.random() < 0.4:
                c.send(register(c, u, "", 0)[:rnd.randint(20, 120)])
            (c.rst if rnd.random() < 0.5 else c.fin)()

        # At once: requests to the users whose flow just died.
        for u in users:
            call(u, "INVITE" if rnd.random() < 0.6 else "MESSAGE")
        tcp_caller = Conn("tcp", edge, ca)
        for u in users[:3]:
            inv = ("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:%d;branch=%s;rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:tcpcaller@%s>;tag=tc\r\n"
                   "To: <sip:%s@%s>\r\nCall-ID: churn-tcpcall-%x@test\r\nCSeq: 1 INVITE\r\n"
                   "Contact: <sip:tcpcaller@%s:%d;transport=tcp>\r\n"
                   "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s" % (
                       u, swlib.DOMAIN, tcp_caller.local[0], tcp_caller.local[1], branch(),
                       swlib.DOMAIN, u, swlib.DOMAIN, time.monotonic_ns(), tcp_caller.local[0],
                       tcp_caller.local[1], len(W.SDP), W.SDP)).encode()
            tcp_caller.send(inv)
        tcp_caller.rst()  # the caller goes away mid-request
        serving("round %d, flows closed under requests" % (rnd_no + 1))

        # Some come back on new connections and reset as the INVITE arrives.
        back = 0
        for u in users[:PHONES // 2]:
            _, pn, inst = conns[u]
            tr = rnd.choice(("tcp", "tcp", "tls"))
            c = Conn(tr, addr[tr], ca)
            c.send(register(c, u, pn, inst, cseq=2))
            got = c.wait(lambda m: m.method in ("INVITE", "MESSAGE") or (
                m.status is not None and m.status >= 200 and m.cseq_method == "REGISTER"), 3)
            back += got is not None
            if got is not None and got.method is None:
                c.wait(lambda m: m.method in ("INVITE", "MESSAGE"), 0.3)
            (c.rst if rnd.random() < 0.7 else c.fin)()
        t.check(back == PHONES // 2, "%d/%d phones re-registered from new connections"
                % (back, PHONES // 2))

        # Others unregister from a new connection: their bindings are freed.
        for u in users[PHONES // 2:PHONES // 2 + 3]:
            _, pn, inst = conns[u]
            c = Conn("tcp", edge, ca)
            c.send(register(c, u, pn, inst, expires=0, cseq=3))
            c.wait(is_final("REGISTER"), 3)
            c.rst()
        serving("round %d, phones back and gone again" % (rnd_no + 1))

        # Ringing phones whose connection resets as they register again from
        # a new one: the held INVITE cancels its branch on the dead flow.
        ring = ["ring%d-%d" % (rnd_no, i) for i in range(PHONES)]
        olds, news, ringing = {}, {}, 0
        for i, u in enumerate(ring):
            c = Conn("tcp", edge, ca)
            pn = W.fcm_pn("ring-token-%d-%d" % (rnd_no, i)) if i % 2 == 0 else ""
            c.send(register(c, u, pn, 5000 + 100 * rnd_no + i))
            c.wait(is_final("REGISTER"), 3)
            olds[u] = (c, pn, 5000 + 100 * rnd_no + i)
            news[u] = Conn("tcp", edge, ca)
        for u in ring:
            call(u, "INVITE")
        for u in ring:
            c = olds[u][0]
            inv = c.wait(lambda m: m.method == "INVITE", 3)
            if inv is not None:
                c.send(W.response_text(inv, 180, "Ringing", to_tag="rg"))
                ringing += 1
        t.check(ringing == PHONES, "%d/%d phones ringing over TCP" % (ringing, PHONES))
        time.sleep(0.1)
        for u in ring:
            c, pn, inst = olds[u]
            c.rst()
            news[u].send(register(news[u], u, pn, inst, cseq=2))
        for u in ring:
            news[u].wait(is_final("REGISTER"), 2)
            news[u].rst()
        serving("round %d, ringing flows reset as the phones came back" % (rnd_no + 1))

        # A connection that sipwaked cannot write to: FIN with answers queued.
        u = "flood%d" % rnd_no
        c = Conn("tcp", edge, ca, rcvbuf=2048)
        c.send(register(c, u, W.fcm_pn("flood-token-%d" % rnd_no), 9000 + rnd_no))
        r = c.wait(is_final("REGISTER"))
        t.check(r is not None and r.status == 200, "%s registered" % u)
        c.sock.settimeout(0.5)
        burst = b"".join(options(c, own, n) for n in range(1, 200))
        for _ in range(20):
            try:
                c.sock.sendall(burst)
            except OSError:
                break
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        time.sleep(0.2)
        c2 = Conn("tcp", edge, ca)
        c2.send(register(c2, u, W.fcm_pn("flood-token-%d" % rnd_no), 9000 + rnd_no,
                         expires=0, cseq=2))
        c2.wait(is_final("REGISTER"), 3)
        c2.fin()
        c.rst()
        serving("round %d, half-closed flooded flow reset" % (rnd_no + 1))

    t.section("SIGTERM with connections, bindings and held requests open")
    for i in range(6):
        tr = "tls" if i % 3 == 2 else "tcp"
        c = Conn(tr, addr[tr], ca)
        c.send(register(c, "last%d" % i, W.fcm_pn("last-token-%d" % i) if i % 2 else "", 7000 + i))
        c.wait(is_final("REGISTER"), 3)
        stuck.append(c)
    for i in range(0, 6, 2):
        stuck[i].rst()
        call("last%d" % i, "INVITE")
    stuck[1].send(register(stuck[1], "last1", "", 0)[:60])
    call("last3", "INVITE")
    serving("before SIGTERM")
    t.log("  (churn took %.1f s)" % (time.monotonic() - started))
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")
    for c in stuck:
        c.rst()


if __name__ == "__main__":
    swlib.run(main)
