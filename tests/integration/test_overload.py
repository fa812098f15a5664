#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Behind on its input, sipwake turns new work away early (issue 14, item 1).

Standalone mode, small receive buffers (sip.udp_receive_buffer and
sip.tcp_receive_buffer = 64 KiB), sipwaked paused with SIGSTOP while the
load arrives, then resumed:
  - UDP: 300 REGISTERs of distinct users arrive while it is paused. Once
    it runs again, each one it reads is answered 200 (stored) or 503
    "Overloaded" with Retry-After while the queue is over its high-water
    mark (1 MiB, or half the buffer: here 64 KiB); the
    log says so once; after the queue drained a REGISTER gets 200 again,
    and every 200 is a binding that sipwakectl lists.
  - TCP: 2000 OPTIONS (about 700 KB) pipelined on one connection while it
    is paused: the small buffer makes TCP hold the sender back instead of
    sofia reading it all at once and refusing the connection with 413;
    every one is answered 200, on the same connection.
sipwaked exits 0 on SIGTERM.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import swlib

BUF = 64 * 1024
CTL = os.path.join(os.environ.get("SIPWAKE_BUILD_DIR", "build"), "sipwakectl")


def register(user, local, port, n):
    return swlib.build_request(
        "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", local,
        headers=[("Contact", "<sip:%s@%s:%d>" % (user, local[0], local[1])),
                 ("Expires", "600")],
        via_branch="z9hG4bK-ov-%d-%d" % (os.getpid(), n),
        call_id="ov-%d-%d@test" % (os.getpid(), n),
        from_uri="sip:%s@%s" % (user, swlib.DOMAIN))


def udp_answers(sock, timeout):
    """Responses read until none came for timeout seconds."""
    out = []
    sock.settimeout(timeout)
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return out
        out.append(swlib.SipMsg(data.decode("utf-8", "replace"), "received"))


def main(t):
    port = swlib.free_port()
    cfg = swlib.sipwake_config(t.dir, port, fcm=False, apns=False)
    cfg["sip"]["udp_receive_buffer"] = BUF
    cfg["sip"]["tcp_receive_buffer"] = BUF
    cfg["sip"]["max_requests_per_source"] = 0
    sw = t.sipwaked(cfg)
    edge = (swlib.LOOPBACK, port)
    pid = sw.proc.pid

    t.section("UDP: a burst while paused")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((swlib.LOOPBACK, 0))
    local = sock.getsockname()
    os.kill(pid, signal.SIGSTOP)
    try:
        for n in range(300):
            sock.sendto(register("ov%03d" % n, local, port, n), edge)
    finally:
        os.kill(pid, signal.SIGCONT)
    got = udp_answers(sock, 3.0)
    final = [m for m in got if m.status is not None and m.status >= 200]
    ok = [m for m in final if m.status == 200]
    busy = [m for m in final if m.status == 503]
    t.check(len(busy) >= 1 and all(m.reason == "Overloaded" and m.get("retry-after") == "2"
                                   for m in busy),
            "requests read while the queue was over its mark (half the buffer here): 503 Overloaded, "
            "Retry-After: 2 "
            "(%d of them)" % len(busy))
    t.check(len(ok) >= 1, "the others: 200 (%d of them)" % len(ok))
    t.check(len(ok) + len(busy) == len(final) and len(final) <= 300,
            "no other answer (%d answers to 300 requests; the kernel dropped the rest)"
            % len(final), sorted({m.status for m in final}))
    r = None
    for _ in range(3):
        sock.sendto(register("ov-after", local, port, 1000), edge)
        r = next((m for m in udp_answers(sock, 1.0) if m.status and m.status >= 200), None)
        if r:
            break
    t.check(r is not None and r.status == 200, "once drained, a REGISTER gets 200",
            r.status if r else None)
    log = open(sw.stderr_path).read()
    t.check(log.count("wait in a UDP receive queue; new requests get 503") == 1 and "no longer overloaded" in log,
            "the log says it once, and when it is over")
    ctl = subprocess.run([CTL, "-c", sw.conf_path, "--json", "registrations"],
                         capture_output=True, text=True, timeout=10)
    try:
        listed = {b["aor"] for b in json.loads(ctl.stdout)["result"]["registrations"]}
    except (ValueError, KeyError, TypeError):
        listed = set()
    want = {m.get("to").split("<", 1)[1].split(">", 1)[0] for m in ok}
    t.check(want and want <= listed,
            "each 200 is a binding sipwakectl lists (%d of %d)" % (len(want & listed), len(want)),
            ctl.stdout[-300:] + ctl.stderr[-300:])
    sock.close()

    t.section("TCP: 2000 requests pipelined while paused")
    s = socket.create_connection(edge, timeout=5)
    local = s.getsockname()
    own = "sip:%s:%d" % edge
    data = b"".join(swlib.build_request("OPTIONS", own, "tcp", local,
                                        via_branch="z9hG4bK-ovt-%d" % n,
                                        call_id="ovt-%d@test" % n, cseq=n)
                    for n in range(1, 2001))
    sent = []

    def send():
        try:
            s.sendall(data)
            sent.append(len(data))
        except OSError as e:
            sent.append(e)

    os.kill(pid, signal.SIGSTOP)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(1.0)
    os.kill(pid, signal.SIGCONT)
    answers = swlib.read_stream_messages(s, 2000, timeout=30)
    sender.join(timeout=5)
    s.close()
    statuses = {}
    for m in answers:
        statuses[m.status] = statuses.get(m.status, 0) + 1
    t.check(sent == [len(data)], "the whole %d bytes were sent (TCP held the sender back)"
            % len(data), sent)
    t.check(statuses == {200: 2000}, "all 2000 answered 200 on the same connection, no 413",
            statuses)

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
