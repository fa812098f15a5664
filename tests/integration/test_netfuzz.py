#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Network fuzzing of sipwaked's TCP input (issue 13, item 4): mutated,
pipelined SIP streams against the real daemon, for a bounded time.

Standalone mode, fake APNs/FCM; an awake UDP phone and a sleeping push
phone are registered so that requests reach bindings, held calls and the
message store. Each stream is one TCP connection carrying 1-8 messages
built from the seed corpus (tests/fuzz/corpus/forward) and mutated:
repeated headers, a Content-Length that lies (huge, negative, garbage, too
short, too long), flipped bytes, cut messages, junk headers, keep-alive
CRLFs, a message split across writes at random points; the connection ends
with FIN, RST or in mid-message. After every 25 streams, and at the end,
sipwaked must answer an OPTIONS; at the end it must exit 0 on SIGTERM
(under ASan: no leak, no invalid access).

SIPWAKE_NETFUZZ_SECONDS (default 15) bounds the run, SIPWAKE_NETFUZZ_SEED
picks the seed (default: random, printed, so a failure can be replayed);
at most 5,000 streams either way.
"""
import glob
import os
import random
import socket
import struct
import time

import swlib
import wakelib as W

SECONDS = float(os.environ.get("SIPWAKE_NETFUZZ_SECONDS", "15"))
MAX_STREAMS = 5000
CORPUS = os.path.join(os.environ.get("SIPWAKE_SOURCE_DIR",
                                     os.path.join(os.path.dirname(__file__), "..", "..")),
                      "tests", "fuzz", "corpus", "forward")
USERS = ("awake", "sleeper", "nobody")
LIES = ["4294967295", "3000000000", "99999999", "2147483648", "-1", "0", "1", "65536",
        "262145", "abc", "", "00000000000000000000000000000001", "12 34"]


def load_seeds(port):
    seeds = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "*"))):
        with open(path, "rb") as f:
            data = f.read()
        data = data.replace(b"example.com", swlib.DOMAIN.encode())
        data = data.replace(b"127.0.0.1:5060", b"127.0.0.1:%d" % port)
        seeds.append(data)
    return seeds


def retarget(rng, msg):
    user = rng.choice(USERS).encode()
    for old in (b"alice", b"y@", b"bob"):
        msg = msg.replace(old, user if not old.endswith(b"@") else user + b"@")
    return msg


def mutate(rng, msg):
    head, sep, body = msg.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for _ in range(rng.randint(0, 3)):
        op = rng.randrange(7)
        if op == 0 and len(lines) > 1:  # repeat a header
            i = rng.randrange(1, len(lines))
            lines.insert(rng.randrange(1, len(lines) + 1), lines[i])
        elif op == 1:  # lying Content-Length
            lines = [l for l in lines if not l.lower().startswith(b"content-length")]
            lines.append(b"Content-Length: " + rng.choice(LIES).encode())
        elif op == 2 and len(lines) > 1:  # drop a header
            del lines[rng.randrange(1, len(lines))]
        elif op == 3:  # junk header
            lines.insert(rng.randrange(1, len(lines) + 1),
                         b"X-" + bytes(rng.randrange(33, 127) for _ in range(rng.randint(1, 8)))
                         + b": " + bytes(rng.randrange(0, 256) for _ in range(rng.randint(0, 40))))
        elif op == 4:  # a long header value
            lines.insert(rng.randrange(1, len(lines) + 1),
                         b"Subject: " + b"s" * rng.choice([100, 5000, 70000]))
        elif op == 5 and len(lines) > 1:  # a comma list in a single header
            i = rng.randrange(1, len(lines))
            lines[i] = lines[i] + b", " + lines[i].partition(b":")[2]
        else:  # compact form or case change of a name
            i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
            name, colon, val = lines[i].partition(b":")
            lines[i] = (name.upper() if rng.random() < 0.5 else name.lower()) + colon + val
    out = bytearray(b"\r\n".join(lines) + sep + body)
    for _ in range(rng.choice([0, 0, 0, 1, 2, 5])):  # flipped bytes
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    if rng.random() < 0.1:  # cut short
        out = out[:rng.randrange(len(out) + 1)]
    return bytes(out)


def one_stream(rng, seeds, edge):
    parts = []
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.1:
            parts.append(b"\r\n\r\n" if rng.random() < 0.5 else b"\r\n")
        msg = retarget(rng, rng.choice(seeds))
        parts.append(mutate(rng, msg) if rng.random() < 0.8 else msg)
    data = b"".join(parts)
    if rng.random() < 0.2:
        data += b"x" * rng.choice([1, 10, 4000, 70000])  # body bytes for a lying length
    try:
        s = socket.create_connection(edge, timeout=2)
    except OSError:
        return False
    try:
        s.settimeout(0.05)
        pos = 0
        while pos < len(data):
            n = rng.choice([len(data), rng.randint(1, 64), rng.randint(1, 2000)])
            s.sendall(data[pos:pos + n])
            pos += n
        end = rng.random()
        if end < 0.3:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        elif end < 0.7:
            try:
                s.recv(65536)
            except OSError:
                pass
    except OSError:
        pass
    finally:
        s.close()
    return True


def main(t):
    seed = int(os.environ.get("SIPWAKE_NETFUZZ_SEED", str(random.randrange(1 << 32))))
    t.log("  (seed %d; replay with SIPWAKE_NETFUZZ_SEED=%d; %.0f s)" % (seed, seed, SECONDS))
    rng = random.Random(seed)
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, extra={"push": {"call_timeout": 3},
                                            "log": {"level": "info", "sip_trace": False}}))
    edge = (swlib.LOOPBACK, port)
    awake = W.started_phone(t, "udp", edge, "awake").connect()
    t.require(awake.register() is not None, "awake phone registers")
    sleeper = W.started_phone(t, "tcp", edge, "sleeper",
                              pn=W.apns2_pn("%064x" % 0xF022, "%064x" % 0xF023),
                              inst=W.instance(141)).connect()
    t.require(sleeper.register() is not None, "push phone registers")
    sleeper.close()
    seeds = load_seeds(port)
    t.require(len(seeds) >= 3, "seed corpus loaded (%d messages)" % len(seeds))

    deadline = time.monotonic() + SECONDS
    streams = 0
    while streams < MAX_STREAMS and time.monotonic() < deadline:
        if not one_stream(rng, seeds, edge) and not sw.alive():
            break
        streams += 1
        if streams % 25 == 0:
            awake.pending.clear()
            if swlib.sip_options("udp", edge, timeout=3) is None:
                break
    t.log("  (%d streams sent)" % streams)
    t.check(sw.alive(), "sipwaked survived %d fuzzed streams (seed %d)" % (streams, seed))
    t.check(swlib.sip_options("tcp", edge, timeout=3) is not None,
            "sipwaked still answers OPTIONS over TCP")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
