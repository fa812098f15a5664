#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/scale: sipwaked holding N push bindings (default 1,000,000).

The database is filled directly (the daemon's own schema: sipwaked makes
it once, then N FCM push bindings are inserted with SQLite), then, for
each binary given (--binary, repeatable: this build and, for a reference
in the same run, an older one):
  start-up   exec -> the first OPTIONS answered (ports bound earlier do
             not count), and RSS then;
  idle       CPU of the daemon over --idle seconds with nothing to do
             (% of one core), while an OPTIONS probe every 10 ms measures
             the loop: the longest answer (a turn of the loop that keeps
             SIP waiting) and the p99;
  stop       SIGTERM -> exit.
Expiries are spread over the next 2 to 3 hours so that none expires, and
no wake-up push comes due, within the run. Prints numbers, asserts
nothing about speed.

usage: bench/scale/bench_idle.py [-n N] [--idle S] [--binary PATH ...] [--keep DIR]
"""
import argparse
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import swlib  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def options(sock, addr, n):
    req = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-idle-%d\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=p\r\nTo: <sip:%s:%d>\r\n"
           "Call-ID: idle-%d@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
               addr[0], addr[1], sock.getsockname()[0], sock.getsockname()[1], n,
               swlib.DOMAIN, addr[0], addr[1], n)).encode()
    t0 = time.monotonic()
    sock.sendto(req, addr)
    try:
        while True:
            data = sock.recv(65536)
            if b"idle-%d@probe" % n in data:
                return time.monotonic() - t0
    except socket.timeout:
        return None


def fill(db, n):
    con = sqlite3.connect(db)
    now = int(time.time())
    rnd = random.Random(7)
    rows = []
    for i in range(n):
        user = "u%07d" % i
        tok = "fcm-%07d-%s" % (i, "x" * 140)
        key = "fcm\x1f%s\x1fsipwake-test" % tok
        contact = ("sip:%s@10.%d.%d.%d:5060;transport=tcp;pn-provider=fcm;pn-prid=%s;"
                   "pn-param=sipwake-test" % (user, (i >> 16) & 255, (i >> 8) & 255, i & 255,
                                              tok))
        rows.append(("%016x" % (0xB000000000 + i), "sip:%s@%s" % (user, swlib.DOMAIN), contact,
                     '"<urn:uuid:00000000-0000-4000-8000-%012d>"' % i, key,
                     "sip:10.0.0.1:%d;transport=tcp" % (1024 + i % 60000), "reg-%d@phone" % i,
                     1, "bench-phone/1.0", 1000, now + 7200 + rnd.randrange(3600), now))
        if len(rows) == 50000:
            con.executemany("INSERT INTO bindings (id, aor, contact, instance, pn_key, received,"
                            " call_id, cseq, user_agent, q, expires, updated)"
                            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    if rows:
        con.executemany("INSERT INTO bindings (id, aor, contact, instance, pn_key, received,"
                        " call_id, cseq, user_agent, q, expires, updated)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()


def run_one(binary, workdir, db_template, idle_s, label):
    d = os.path.join(workdir, label)
    os.makedirs(d, exist_ok=True)
    db = os.path.join(d, "sipwake.db")
    subprocess.run(["cp", db_template, db], check=True)
    port = swlib.free_port()
    cfg = swlib.sipwake_config(d, port, upstream_uri="", fcm=True)
    cfg["storage"]["database"] = db
    cfg["log"] = {"level": "warn", "sip_trace": False}
    sw = swlib.Sipwaked(d, cfg, name="sw", binary=binary, log_level="warn")
    sw.write_config()
    argv = [binary, "-c", sw.conf_path, "-f", "--log-level", "warn"]
    t0 = time.monotonic()
    proc = swlib.spawn("sw-" + label, argv, sw.dir, sw.stdout_path, sw.stderr_path)
    addr = (swlib.LOOPBACK, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((swlib.LOOPBACK, 0))
    sock.settimeout(0.05)
    ready = None
    n = 0
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        n += 1
        try:
            if options(sock, addr, n) is not None:
                ready = time.monotonic() - t0
                break
        except ConnectionRefusedError:
            time.sleep(0.01)
    if ready is None:
        swlib._kill_proc(proc)
        raise SystemExit("%s: no answer within 120 s:\n%s" % (label, swlib.tail(sw.stderr_path)))
    rss_start = rss_mb(proc.pid)
    time.sleep(2)  # let the first ticks settle
    sock.settimeout(1.0)
    c0, w0 = cpu_s(proc.pid), time.monotonic()
    lat = []
    while time.monotonic() - w0 < idle_s:
        n += 1
        x = options(sock, addr, n)
        lat.append(x if x is not None else 1.0)
        time.sleep(0.01)
    c1, w1 = cpu_s(proc.pid), time.monotonic()
    rss_idle = rss_mb(proc.pid)
    t1 = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        swlib._kill_proc(proc)
        rc = None
    stop = time.monotonic() - t1
    swlib._forget(proc)
    lat.sort()
    return {"binary": label, "startup_s": round(ready, 2), "rss_start_mb": round(rss_start),
            "rss_idle_mb": round(rss_idle),
            "idle_cpu_pct": round(100.0 * (c1 - c0) / (w1 - w0), 2),
            "probe_p99_ms": round(1000 * lat[int(len(lat) * 0.99) - 1], 2),
            "probe_max_ms": round(1000 * lat[-1], 2), "probes": len(lat),
            "stop_s": round(stop, 2), "exit": rc}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000000)
    ap.add_argument("--idle", type=int, default=30, help="idle window, s")
    ap.add_argument("--binary", action="append",
                    help="sipwaked to measure (repeat; default: build/sipwaked)")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR (new or empty) and leave it, with the filled"
                    " database and each run's config, for profiling by hand")
    args = ap.parse_args()
    binaries = args.binary or [swlib.sipwaked_binary()]
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        if os.listdir(args.keep):
            raise SystemExit("--keep %s: not empty (nothing is removed for you)" % args.keep)
        work = contextlib.nullcontext(os.path.abspath(args.keep))
    else:
        work = tempfile.TemporaryDirectory(prefix="sipwake-bench-idle-")
    with work as w:
        # the schema, as this build makes it
        port = swlib.free_port()
        cfg = swlib.sipwake_config(w, port, upstream_uri="", fcm=True)
        sw = swlib.Sipwaked(w, cfg, name="schema", binary=binaries[0], log_level="warn").start()
        sw.stop()
        t0 = time.monotonic()
        fill(cfg["storage"]["database"], args.n)
        print("filled %d bindings in %.1f s" % (args.n, time.monotonic() - t0), flush=True)
        rows = []
        for i, b in enumerate(binaries):
            r = run_one(b, w, cfg["storage"]["database"], args.idle, "%d" % i)
            r["path"] = b
            rows.append(r)
            print(r, flush=True)
    print()
    print("%-40s %9s %9s %9s %9s %10s %10s %7s" % (
        "sipwaked", "start s", "RSS MB", "idle CPU%", "p99 ms", "max ms", "probes", "stop s"))
    for r in rows:
        print("%-40s %9.2f %9d %9.2f %9.2f %10.2f %10d %7.2f" % (
            r["path"][-40:], r["startup_s"], r["rss_idle_mb"], r["idle_cpu_pct"],
            r["probe_p99_ms"], r["probe_max_ms"], r["probes"], r["stop_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
