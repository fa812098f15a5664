#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One TCP write must not kill sipwaked (issue 13, item 1).

sofia-sip 1.12.11 applies the size limit only to the first message of a
read; sipwaked's msg_next() interposer gives every following message the
same limit. Standalone mode, fake push servers, TCP and TLS listeners:
  - one write holding an OPTIONS and then a MESSAGE whose Content-Length is
    4294967295, 3000000000 or 99999999 with a few body bytes: the OPTIONS is
    answered, the MESSAGE never gets a 2xx, sipwaked keeps serving; ten
    such writes with 99999999, their connections left open, leave its
    memory (VmData) within 40 MB of where it was (not ~100 MB each);
  - 30 requests pipelined in one write (OPTIONS and MESSAGEs to a user with
    bodies), over TCP and over TLS: every one is answered, in order.
sipwaked exits 0 on SIGTERM.
"""
import os
import re
import socket
import ssl

import swlib
import wakelib as W


def vmdata_kb(pid):
    """Heap and anonymous mappings (VmData): counts what was allocated even
    when untouched, unlike VmRSS."""
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmData:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else 0


def connect(tr, addr, ca):
    s = socket.create_connection(addr, timeout=5)
    if tr == "tls":
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    return s


def read_responses(s, want, timeout=10.0):
    """Responses read from s until want arrived, the peer closed or time ran out."""
    return swlib.read_stream_messages(s, want, timeout)


def request(method, ruri, tr, local, n, body="", ctype="text/plain", clen=None):
    body_b = body.encode()
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-pl-%d-%d;rport" % (
                 tr.upper(), local[0], local[1], os.getpid(), n),
             "Max-Forwards: 70",
             "From: <sip:pipe@%s>;tag=pl%d" % (swlib.DOMAIN, n),
             "To: <%s>" % ruri,
             "Call-ID: pipe-%d-%d@test" % (os.getpid(), n),
             "CSeq: %d %s" % (n, method)]
    if body_b or clen is not None:
        lines.append("Content-Type: " + ctype)
    lines.append("Content-Length: %d" % (len(body_b) if clen is None else clen))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body_b


def main(t):
    env = W.WakeEnv(t)
    port, tls_port = swlib.free_port(), swlib.free_port()
    sw = t.sipwaked(env.config(port, tls_port=tls_port))
    edge = (swlib.LOOPBACK, port)
    tls_edge = (swlib.LOOPBACK, tls_port)
    own = "sip:%s:%d" % edge

    phone = W.started_phone(t, "tcp", edge, "piper").connect()
    r = phone.register()
    t.require(r is not None and r.status == 200, "a TCP phone registers -> 200", phone.trace())

    t.section("a huge Content-Length after a complete request in the same write")
    for clen in (4294967295, 3000000000, 99999999):
        s = connect("tcp", edge, None)
        local = s.getsockname()
        data = (request("OPTIONS", own, "tcp", local, 1) +
                request("MESSAGE", "sip:piper@%s" % swlib.DOMAIN, "tcp", local, 2, clen=clen) +
                b"x" * 10)
        s.sendall(data)
        got = read_responses(s, 2, timeout=3)
        s.close()
        statuses = [(m.cseq_method, m.status) for m in got]
        t.check(("OPTIONS", 200) in statuses, "Content-Length %d: the OPTIONS before it is answered"
                % clen, statuses)
        t.check(not any(m == "MESSAGE" and st < 300 for m, st in statuses),
                "Content-Length %d: the MESSAGE gets no 2xx" % clen, statuses)
        t.require(sw.alive() and swlib.sip_options("tcp", edge, timeout=3) is not None,
                  "Content-Length %d: sipwaked still serves" % clen)
    stray = phone.wait(lambda m: m.method == "MESSAGE", timeout=0.5)
    t.check(stray is None, "the phone never got the oversized MESSAGE")

    before = vmdata_kb(sw.proc.pid)
    held = []
    for i in range(10):
        s = connect("tcp", edge, None)
        held.append(s)
        local = s.getsockname()
        s.sendall(request("OPTIONS", own, "tcp", local, 1) +
                  request("MESSAGE", "sip:piper@%s" % swlib.DOMAIN, "tcp", local, 2,
                          clen=99999999) + b"y" * 4000)
        read_responses(s, 1, timeout=2)
    after = vmdata_kb(sw.proc.pid)
    for s in held:
        s.close()
    t.check(after - before < 40 * 1024,
            "ten open connections that sent Content-Length 99999999: memory (VmData) grew "
            "%d kB (< 40 MB, not ~100 MB each)" % (after - before))

    for tr, addr in (("tcp", edge), ("tls", tls_edge)):
        t.section("30 requests pipelined in one %s write" % tr.upper())
        s = connect(tr, addr, env.pki.ca)
        local = s.getsockname()
        reqs, want = [], []
        for n in range(1, 31):
            if n % 3:
                reqs.append(request("OPTIONS", own, tr, local, n))
                want.append(("OPTIONS", n))
            else:
                reqs.append(request("MESSAGE", "sip:nobody-%d@%s" % (n, swlib.DOMAIN), tr,
                                    local, n, body="hello %d " % n * 20))
                want.append(("MESSAGE", n))
        s.sendall(b"".join(reqs))
        got = read_responses(s, len(reqs), timeout=15)
        s.close()
        seen = [(m.cseq_method, int(m.get("cseq").split()[0])) for m in got
                if m.status is not None and m.status >= 200]
        t.check(seen == want, "%s: all %d answered, in order (%d answers)" % (tr, len(want), len(seen)),
                seen)

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
