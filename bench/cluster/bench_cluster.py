#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/cluster: what a cluster on Redis costs and buys against one node on
SQLite (SPEC 9, issue 11), measured in one run on one machine, loopback only.

Three set-ups, each with its own fresh processes and stores:
  sqlite    one sipwaked, bindings in its SQLite database
  redis-1   one sipwaked with cluster.redis (one redis-server of its own)
  redis-2   two sipwaked nodes on the same redis-server

1. REGISTER throughput (standalone mode: sipwaked is the registrar, no PBX,
   auth.mode none; every REGISTER is a new FCM push binding of a user never
   seen before, sipp with bench/register's scenario). First a fixed common
   rate (--fixed-rate for --fixed-s seconds): p50/p99/max REGISTER -> 200 and
   the CPU time sipwaked (both nodes together for redis-2) and redis-server
   spent per REGISTER answered (utime+stime from /proc/PID/stat). Then a
   ladder of rates (--rates, --step-s seconds each) until a step is not clean:
   clean = failed REGISTERs <= 0.1 %, retransmissions <= 1 %, >= 90 % of the
   target rate achieved. For redis-2 two sipp run at once, one per node, each
   at half the rate; their figures are added (latencies pooled).
2. Memory at --bindings bindings (default 100,000), preloaded straight into
   the store in sipwaked's own format (SQLite rows; Redis hash
   sipwake:bindings id -> JSON plus zset sipwake:expiry), owner alternating
   between the nodes for redis-2: each node is started empty (RSS settled =
   its baseline), stopped, the store filled, the node started again;
   start-up = exec -> first OPTIONS answered, then (settled RSS - baseline) /
   bindings per node; and Redis' used_memory (INFO memory) per binding.
3. Takeover (gateway mode in front of a Kamailio registrar that caps
   registrations at --cap s): --phones phones register through node A
   (Expires 3600, FCM push parameters: A keeps them registered upstream,
   SPEC 4.6), Kamailio holds them with A's Path; A is killed with -9. Polled
   every --poll s: when Redis shows each of A's bindings with "node" B, and
   when Kamailio's location shows each phone with B's Path; median and max
   over the phones, and how many phones Kamailio lost meanwhile.

Prints numbers; asserts nothing about speed.
"""
import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(os.path.dirname(BENCH), "tests", "integration"))
import swlib  # noqa: E402

sys.path.insert(0, BENCH)
import benchlib  # noqa: E402

sys.path.insert(0, os.path.join(BENCH, "register"))
import bench_register  # noqa: E402  (run_sipp: one sipp REGISTER run and its figures)

TICK = os.sysconf("SC_CLK_TCK")
SETUPS = ("sqlite", "redis-1", "redis-2")


# --------------------------------------------------------------------------
# small helpers

def cpu_s(pid):
    """utime + stime of pid in seconds (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(TICK)
    except (OSError, IndexError, ValueError):
        return None


def settled_rss(pid, limit_s, step=0.5):
    """VmRSS (kB) once two samples step s apart agree within 0.5 % (at most limit_s)."""
    last = benchlib.rss_kb(pid) or 0
    t_end = time.monotonic() + limit_s
    while time.monotonic() < t_end:
        time.sleep(step)
        now = benchlib.rss_kb(pid) or 0
        if last and abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


def fs_type(path):
    """The file system type path lives on (from /proc/mounts), "?" when unknown."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                p = line.split()
                if len(p) > 2 and (path + "/").startswith(p[1].rstrip("/") + "/") and len(p[1]) >= len(best):
                    best, kind = p[1], p[2]
    except OSError:
        pass
    return kind


def median(xs):
    return statistics.median(xs) if xs else None


def node_port(path):
    m = re.search(r"127\.0\.0\.1:(\d+)", path or "")
    return int(m.group(1)) if m else None


class Redis(swlib.RedisServer):
    """swlib's redis-server (AOF on) with the appendfsync of --appendfsync,
    plus a pipeline for bulk loading and INFO fields."""

    appendfsync = "always"

    def argv(self):
        argv = super().argv()
        i = argv.index("--appendfsync")
        argv[i + 1] = self.appendfsync
        return argv

    def pipeline(self, commands, batch=2000):
        def enc(a):
            b = a if isinstance(a, bytes) else str(a).encode()
            return b"$%d\r\n%s\r\n" % (len(b), b)
        with socket.create_connection((swlib.LOOPBACK, self.port), timeout=60) as s:
            f = s.makefile("rb")
            for i in range(0, len(commands), batch):
                chunk = commands[i:i + batch]
                s.sendall(b"".join(b"*%d\r\n" % len(c) + b"".join(enc(a) for a in c) for c in chunk))
                for _ in chunk:
                    swlib._resp_read(f)

    def info(self, section, field):
        for line in (self.command("INFO", section) or "").splitlines():
            if line.startswith(field + ":"):
                return int(line.split(":", 1)[1])
        return None


def node_config(workdir, name, port, redis=None, upstream="", extra=None):
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    ex = {"log": {"level": "warn", "sip_trace": False}, "sip": {"max_requests_per_source": 0}}
    if redis is not None:
        ex["cluster"] = {"redis": redis.url + "/0", "node_name": name}
    cfg = swlib.sipwake_config(d, port, upstream_uri=upstream, fcm=True,
                               extra=swlib.deep_merge(ex, extra or {}))
    return cfg


def start_node(workdir, name, redis=None, upstream="", extra=None):
    port = swlib.free_port()
    sw = swlib.Sipwaked(workdir, node_config(workdir, name, port, redis, upstream, extra),
                        name=name, log_level="warning")
    sw.port = port
    sw.start(timeout=30)
    return sw


def stop_node(sw, notes):
    """SIGTERM and wait (up to 60 s); a refusal or an odd status goes to notes."""
    if not sw.proc or sw.proc.poll() is not None:
        if sw.proc:
            notes.append("%s had exited (status %s) before it was stopped" % (sw.name, sw.proc.returncode))
            swlib._forget(sw.proc)
        return
    try:
        sw.stop(timeout=60)
    except swlib.CheckFailed as e:
        notes.append("%s: %s" % (sw.name, str(e).splitlines()[0]))
        sw.kill9()


# --------------------------------------------------------------------------
# 1. REGISTER throughput

def load_step(workdir, targets, rate, seconds, tag, timeout):
    """sipp at rate for seconds, split evenly over targets (one sipp each, at once)."""
    per = rate // len(targets)
    n = max(1, per * seconds)
    out = [None] * len(targets)

    def one(i, target):
        out[i] = bench_register.run_sipp(workdir, target, "udp", per, n, "%s-n%d-" % (tag, i), timeout)

    threads = [threading.Thread(target=one, args=(i, tg)) for i, tg in enumerate(targets)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rts = []
    for r in out:
        rts += [x[1] for x in benchlib.rtt_rows(r["dir"])]
    tot = {k: sum(r[k] for r in out) for k in ("sent", "ok", "failed", "rejected", "timeouts", "retrans")}
    ach = [r["achieved"] for r in out]
    tot.update(target=per * len(targets), achieved=sum(ach) if all(ach) else None,
               p50=benchlib.pct(rts, 50), p99=benchlib.pct(rts, 99), max=max(rts) if rts else None,
               rc=[r["rc"] for r in out])
    return tot


def clean(r):
    return (r["sent"] > 0 and r["failed"] <= r["sent"] / 1000.0 and r["retrans"] <= r["sent"] / 100.0
            and (r["achieved"] or 0) >= 0.9 * r["target"])


def start_setup(workdir, setup, tag):
    """(nodes, redis or None) for a set-up, started."""
    redis = None
    if setup != "sqlite":
        redis = Redis(workdir, name="redis-" + tag)
        redis.start()
    names = {"sqlite": ["solo"], "redis-1": ["A"], "redis-2": ["A", "B"]}[setup]
    nodes = [start_node(workdir, "%s-%s" % (tag, n) if setup == "sqlite" else n + "-" + tag, redis)
             for n in names]
    return nodes, redis


def bench_throughput(a, workdir, rnd, notes):
    hdr = "%-8s %8s %7s %7s %6s %7s %7s %10s %6s %6s %6s" % (
        "setup", "target/s", "sent", "ok", "failed", "timeout", "retrans", "achieved/s", "p50ms",
        "p99ms", "maxms")
    res = {}
    for setup in a.setups:
        tag = "tp%d-%s" % (rnd, setup)
        nodes, redis = start_setup(workdir, setup, tag)
        targets = [(swlib.LOOPBACK, n.port) for n in nodes]
        try:
            time.sleep(1.5)  # a heartbeat or two: the nodes see each other
            pids = [n.proc.pid for n in nodes]
            c0 = [cpu_s(p) for p in pids]
            r0 = cpu_s(redis.proc.pid) if redis else None
            fixed = load_step(workdir, targets, a.fixed_rate, a.fixed_s, tag + "-fixed", a.timeout)
            c1 = [cpu_s(p) for p in pids]
            r1 = cpu_s(redis.proc.pid) if redis else None
            ok = fixed["ok"] or 1
            fixed["sw_us"] = (sum(c1) - sum(c0)) * 1e6 / ok if None not in c0 + c1 else None
            fixed["sw_us_nodes"] = [(y - x) * 1e6 / ok if None not in (x, y) else None
                                    for x, y in zip(c0, c1)]
            fixed["redis_us"] = (r1 - r0) * 1e6 / ok if r0 is not None and r1 is not None else None
            ladder = []
            for rate in a.rates:
                r = load_step(workdir, targets, rate, a.step_s, "%s-r%d" % (tag, rate), a.timeout)
                ladder.append(r)
                if not clean(r):
                    break
            res[setup] = {"fixed": fixed, "ladder": ladder}
            if a.verbose:
                print(hdr)
                for r in [fixed] + ladder:
                    print("%-8s %8d %7d %7d %6d %7d %7d %10s %6s %6s %6s" % (
                        setup, r["target"], r["sent"], r["ok"], r["failed"], r["timeouts"], r["retrans"],
                        benchlib.fmt(r["achieved"]), benchlib.fmt(r["p50"]), benchlib.fmt(r["p99"]),
                        benchlib.fmt(r["max"])), flush=True)
        finally:
            for n in nodes:
                stop_node(n, notes)
            if redis:
                redis.stop()
    return res


def print_throughput(a, rounds):
    print("1. REGISTER throughput, standalone (sipwaked is the registrar), UDP, sipp from "
          "bench/register")
    print("   fixed rate %d/s for %d s; ladder %s/s, %d s a step, up to the first step that is "
          "not clean" % (a.fixed_rate, a.fixed_s, ",".join(str(r) for r in a.rates), a.step_s))
    print("   (clean: failed <= 0.1 %, retransmissions <= 1 %, achieved >= 90 % of the target; "
          "sipp times in whole ms)")
    print()
    hdr = "%-8s %5s | %9s %9s %7s %8s %6s %6s %6s %9s %9s" % (
        "setup", "round", "clean/s", "next/s", "p50ms", "p99ms", "maxms", "fail", "retr",
        "sw_us/REG", "redis_us")
    print(hdr)
    print("-" * len(hdr))
    for setup in a.setups:
        for i, res in enumerate(rounds):
            r = res.get(setup)
            if not r:
                continue
            f, lad = r["fixed"], r["ladder"]
            good = [x["target"] for x in lad if clean(x)]
            bad = [x for x in lad if not clean(x)]
            nxt = "-" if not bad else "%d%s" % (bad[0]["target"], "*")
            print("%-8s %5d | %9s %9s %7s %8s %6s %6d %6d %9s %9s" % (
                setup, i + 1, max(good) if good else "none", nxt, benchlib.fmt(f["p50"]),
                benchlib.fmt(f["p99"]), benchlib.fmt(f["max"]), f["failed"], f["retrans"],
                benchlib.fmt(f["sw_us"]), benchlib.fmt(f["redis_us"])))
    print("  clean/s = highest clean step; next/s* = the first step that was not; p50/p99/max, "
          "fail, retr and CPU at the fixed rate;")
    print("  sw_us/REG = sipwaked CPU (all nodes) per REGISTER answered, redis_us = redis-server's")
    for setup in a.setups:
        for i, res in enumerate(rounds):
            r = res.get(setup)
            if r and len(r["fixed"]["sw_us_nodes"]) > 1:
                print("  %s r%d: sipwaked CPU per REGISTER by node (each took half, heard the other "
                      "half): %s us" % (setup, i + 1, ", ".join(benchlib.fmt(x) for x in r["fixed"]["sw_us_nodes"])))
    print("  step details (target/s: ok/sent, failed (of which 503 / no answer), retransmissions, "
          "achieved/s, p99 ms):")
    for setup in a.setups:
        for i, res in enumerate(rounds):
            r = res.get(setup)
            if not r:
                continue
            print("  %-8s r%d: %s" % (setup, i + 1, "; ".join(
                "%d: %d/%d %d (%d/%d) %d %s/s %s" % (
                    x["target"], x["ok"], x["sent"], x["failed"], x["rejected"], x["timeouts"],
                    x["retrans"], benchlib.fmt(x["achieved"]),
                                                benchlib.fmt(x["p99"])) for x in r["ladder"])))
    print(flush=True)


# --------------------------------------------------------------------------
# 2. memory and start-up at N bindings

def binding_rows(n, owners, expires_base):
    """n FCM push bindings: dicts with the store's fields (owner cycling over owners)."""
    for i in range(n):
        user = "m%07d" % i
        tok = "fcm-%07d-%s" % (i, "x" * 140)
        yield {
            "id": "%016x" % (0xC000000000 + i),
            "aor": "sip:%s@%s" % (user, swlib.DOMAIN),
            "contact": "sip:%s@10.%d.%d.%d:5060;transport=tcp;pn-provider=fcm;pn-prid=%s;"
                       "pn-param=sipwake-bench" % (user, (i >> 16) & 255, (i >> 8) & 255, i & 255, tok),
            "instance": '"<urn:uuid:00000000-0000-4000-8000-%012d>"' % i,
            "pn_key": "fcm\x1f%s\x1fsipwake-bench" % tok,
            "received": "sip:10.0.0.1:%d;transport=tcp" % (1024 + i % 60000),
            "call_id": "reg-%d@phone" % i, "cseq": 1, "user_agent": "bench-phone/1.0", "q": 1000,
            "expires": expires_base + (i * 7919) % 3600, "updated": expires_base - 7200,
            "node": owners[i % len(owners)] if owners else None,
        }


def fill_sqlite(db, n):
    cols = ("id", "aor", "contact", "instance", "pn_key", "received", "call_id", "cseq",
            "user_agent", "q", "expires", "updated")
    con = sqlite3.connect(db)
    rows = (tuple(b[c] for c in cols) for b in binding_rows(n, None, int(time.time()) + 7200))
    con.executemany("INSERT INTO bindings (%s) VALUES (%s)" % (", ".join(cols), ",".join("?" * len(cols))),
                    rows)
    con.commit()
    con.close()


def fill_redis(redis, n, owners):
    redis.command("DEL", "sipwake:bindings", "sipwake:expiry", "sipwake:nodes")
    cmds = []
    for b in binding_rows(n, owners, int(time.time()) + 7200):
        # as sipwaked writes it: absent text fields are left out (json_pack "s*")
        b["up_cseq"] = b["up_expires"] = 0
        b = {k: v for k, v in b.items() if v is not None}
        cmds.append(("HSET", "sipwake:bindings", b["id"], json.dumps(b, separators=(",", ":"))))
        cmds.append(("ZADD", "sipwake:expiry", b["expires"], b["id"]))
    redis.pipeline(cmds)
    return redis.command("HLEN", "sipwake:bindings")


def timed_start(nodes, limit_s):
    """Spawn the daemons of nodes at once; for each, seconds from its exec to its
    first answered OPTIONS (None: none within limit_s). Spawned from this thread:
    swlib's children die with the thread that started them (PR_SET_PDEATHSIG)."""
    t0 = {}
    for sw in nodes:
        sw.write_config()
        argv = [sw.binary, "-c", sw.conf_path, "-f", "--log-level", sw.log_level]
        t0[sw.name] = time.monotonic()
        sw.proc = swlib.spawn(sw.name, argv, sw.dir, sw.stdout_path, sw.stderr_path)
    ready = {}
    start = time.monotonic()
    while len(ready) < len(nodes) and time.monotonic() - start < limit_s:
        for sw in nodes:
            if sw.name in ready or sw.proc.poll() is not None:
                continue
            # short waits: a daemon still loading has its port bound but does not answer yet
            if swlib.sip_options("udp", (swlib.LOOPBACK, sw.port), timeout=0.02) is not None:
                ready[sw.name] = time.monotonic() - t0[sw.name]
        if all(sw.proc.poll() is not None for sw in nodes if sw.name not in ready):
            break
        time.sleep(0.005)
    return [ready.get(sw.name) for sw in nodes]


def bench_memory(a, workdir, notes):
    n = a.bindings
    out = {}
    for setup in a.setups:
        tag = "mem-" + setup
        redis = None
        if setup != "sqlite":
            redis = Redis(workdir, name=tag)
            redis.start()
        names = ["A"] if setup != "redis-2" else ["A", "B"]
        nodes = []
        try:
            for nm in names:
                port = swlib.free_port()
                sw = swlib.Sipwaked(workdir, node_config(workdir, "%s-%s" % (tag, nm), port, redis),
                                    name="%s-%s" % (tag, nm), log_level="warning")
                sw.port = port
                if redis is not None:  # its node name: the owner written in the bindings
                    sw.config["cluster"]["node_name"] = nm
                nodes.append(sw)
            # empty: the baseline (and, for SQLite, the schema sipwaked makes)
            for sw in nodes:
                sw.start(timeout=30)
            time.sleep(a.settle_s)
            base = [settled_rss(sw.proc.pid, a.settle_s) for sw in nodes]
            used0 = redis.info("memory", "used_memory") if redis else None
            for sw in nodes:
                stop_node(sw, notes)
            t_fill = time.monotonic()
            if redis is None:
                fill_sqlite(nodes[0].config["storage"]["database"], n)
                held = n
            else:
                held = fill_redis(redis, n, names)
                used0b = redis.info("memory", "used_memory")
            fill_s = time.monotonic() - t_fill
            # started again on the full store, all nodes at once
            starts = timed_start(nodes, 180)
            time.sleep(a.settle_s)
            rss = [settled_rss(sw.proc.pid, max(a.settle_s, 5)) if sw.alive() else None for sw in nodes]
            used1 = redis.info("memory", "used_memory") if redis else None
            loaded = [((sw.ctl("status") or {}).get("bindings") if sw.alive() else None) for sw in nodes]
            for sw in nodes:
                for line in sw.log_text().splitlines():
                    if "could not be read" in line:
                        notes.append("%s: %s" % (sw.name, line.strip()))
            out[setup] = {"n": held, "loaded": loaded, "names": names, "base": base, "rss": rss, "start": starts,
                          "fill_s": fill_s,
                          "redis_b": (used0b - used0) / float(n) if redis else None,
                          "redis_after_b": (used1 - used0) / float(n) if redis else None}
        finally:
            for sw in nodes:
                if sw.proc and swlib._live.get(sw.proc.pid):
                    stop_node(sw, notes)
            if redis:
                redis.stop()
    return out


def print_memory(a, mem):
    print("2. memory and start-up with %d bindings (preloaded into the store in sipwaked's format; "
          "standalone)" % a.bindings)
    hdr = "%-8s %-4s %9s %9s %9s %10s %8s %12s" % ("setup", "node", "loaded", "empty kB", "full kB",
                                                   "B/binding", "start s", "redis B/bind")
    print(hdr)
    print("-" * len(hdr))
    for setup in a.setups:
        m = mem.get(setup)
        if not m:
            continue
        for i, nm in enumerate(m["names"]):
            per = ((m["rss"][i] - m["base"][i]) * 1024.0 / m["n"]
                   if m["rss"][i] is not None and m["n"] else None)
            print("%-8s %-4s %9s %9d %9s %10s %8s %12s" % (
                setup, nm if setup != "sqlite" else "-", benchlib.fmt(m["loaded"][i], "%s"), m["base"][i], benchlib.fmt(m["rss"][i]),
                benchlib.fmt(per), benchlib.fmt(m["start"][i], "%.2f"),
                benchlib.fmt(m["redis_b"]) if i == 0 else ""))
    print("  loaded = bindings the node holds (sipwakectl status); "
          "empty/full kB = settled VmRSS started on an empty / the full store; B/binding = "
          "their difference / bindings;")
    print("  start s = exec -> first OPTIONS answered on the full store (redis-2: both nodes "
          "started at once);")
    after = ["%s %s after the nodes loaded" % (s, benchlib.fmt(mem[s]["redis_after_b"]))
             for s in a.setups if s in mem and mem[s]["redis_after_b"] is not None]
    if after:
        print("  redis B/bind = redis-server used_memory (INFO memory) growth over the preload / "
              "bindings, %s" % ", ".join(after))
    print(flush=True)


# --------------------------------------------------------------------------
# 3. takeover

def location(kam, users):
    """{aor: [path, ...]} of users in Kamailio's usrloc: one kamcmd reading
    "ul.lookup location AOR" lines from stdin (ul.dump of hundreds of AORs is
    "reply too big" for kamcmd). An AOR Kamailio does not hold has []."""
    lines = "".join("ul.lookup location %s\n" % u for u in users)
    r = subprocess.run([swlib.KAMCMD, "-s", "unix:" + kam.ctl], input=lines.encode(),
                       capture_output=True, timeout=60)
    out = {}
    for block in r.stdout.decode("utf-8", "replace").split("kamcmd> ul.lookup location ")[1:]:
        aor, _, rest = block.partition("\n")
        out[aor.strip()] = re.findall(r"Path:\s*(.*)", rest)
    return out


def bench_takeover(a, workdir, rnd, notes):
    tag = "to%d" % rnd
    kam = swlib.Kamailio(workdir, name="pbx-" + tag, children=2, shm_mb=256, debug=1,
                         max_expires=a.cap, min_expires=5)
    redis = Redis(workdir, name=tag)
    nodes = {}
    res = {"phones": a.phones}
    try:
        kam.start()
        redis.start()
        for nm in ("A", "B"):
            nodes[nm] = start_node(workdir, "%s-%s" % (tag, nm), redis, upstream=kam.uri,
                                   extra={"cluster": {"node_name": nm},
                                          "registrar": {"min_expires": 10}})
        a_node, b_node = nodes["A"], nodes["B"]
        time.sleep(1.5)
        # the phones register through A: bench/register's scenario, one unique user each
        r = bench_register.run_sipp(workdir, (swlib.LOOPBACK, a_node.port), "udp", a.phone_rate,
                                    a.phones, tag + "-", a.timeout)
        users = ["%sr%d-%07d" % (tag + "-", a.phone_rate, i) for i in range(a.phones)]
        res["registered"] = r["ok"]
        # Kamailio holds them with A's Path (bounded)
        t_end = time.monotonic() + 20
        loc = {}
        while time.monotonic() < t_end:
            loc = location(kam, users)
            on_a = sum(1 for u in users if any(node_port(p) == a_node.port for p in loc.get(u, [])))
            if on_a == len(users):
                break
            time.sleep(0.5)
        res["upstream_a"] = sum(1 for u in users if any(node_port(p) == a_node.port for p in loc.get(u, [])))
        owned = {}
        time.sleep(a.before_kill_s)
        a_node.kill9()
        killed = time.monotonic()
        taken, on_b, lost = {}, {}, set()
        deadline = killed + 2 * a.cap + 15
        polls = 0
        while time.monotonic() < deadline and (len(taken) < len(owned or users) or len(on_b) < len(users)):
            polls += 1
            now = time.monotonic() - killed
            h = redis.command("HGETALL", "sipwake:bindings", timeout=30) or []
            owned = {}
            for k, v in zip(h[::2], h[1::2]):
                try:
                    owned[k] = json.loads(v).get("node")
                except ValueError:
                    pass
            for k, nd in owned.items():
                if nd == "B" and k not in taken:
                    taken[k] = now
            now = time.monotonic() - killed
            loc = location(kam, users)
            for u in users:
                paths = loc.get(u)
                if not paths:
                    lost.add(u)
                elif u not in on_b and any(node_port(p) == b_node.port for p in paths):
                    on_b[u] = now
            time.sleep(a.poll)
        res.update(bindings=len(owned), taken=sorted(taken.values()), on_b=sorted(on_b.values()),
                   lost=len(lost), polls=polls, waited=time.monotonic() - killed)
        st = b_node.ctl("stats") or {}
        m = st.get("sipwake_cluster_takeovers_total") if isinstance(st, dict) else None
        res["takeovers_metric"] = (sum(x.get("value", 0) for x in m.get("series", []))
                                   if isinstance(m, dict) else None)
    finally:
        for nm in ("B", "A"):
            if nm in nodes:
                if nm == "A":
                    nodes[nm].kill9()
                else:
                    stop_node(nodes[nm], notes)
        redis.stop()
        kam.stop()
    return res


def print_takeover(a, rounds):
    print("3. takeover: gateway mode, Kamailio registrar caps registrations at %d s; phones "
          "register through A (Expires 3600), A is killed -9" % a.cap)
    print("   times in seconds after the kill, polled every %.2f s (Redis HGETALL + kamcmd ul.lookup per phone)"
          % a.poll)
    hdr = "%5s %6s %6s %6s | %8s %8s %6s | %8s %8s %6s | %5s %8s" % (
        "round", "phones", "reg ok", "on A", "owner B", "", "count", "Path B", "", "count", "lost",
        "takeover")
    sub = "%5s %6s %6s %6s | %8s %8s %6s | %8s %8s %6s | %5s %8s" % (
        "", "", "", "", "median", "max", "", "median", "max", "", "", "metric")
    print(hdr)
    print(sub)
    print("-" * len(hdr))
    for i, r in enumerate(rounds):
        if not r:
            continue
        print("%5d %6d %6d %6d | %8s %8s %6d | %8s %8s %6d | %5d %8s" % (
            i + 1, r["phones"], r["registered"], r["upstream_a"],
            benchlib.fmt(median(r["taken"]), "%.2f"), benchlib.fmt(max(r["taken"]) if r["taken"] else None, "%.2f"),
            len(r["taken"]), benchlib.fmt(median(r["on_b"]), "%.2f"),
            benchlib.fmt(max(r["on_b"]) if r["on_b"] else None, "%.2f"), len(r["on_b"]), r["lost"],
            benchlib.fmt(r["takeovers_metric"], "%s")))
    print("  on A = phones Kamailio held with A's Path before the kill; owner B = Redis shows the "
          "binding's \"node\" as B;")
    print("  Path B = Kamailio's location shows the phone with B's Path; lost = phones Kamailio "
          "had no contact for at some poll;")
    print("  takeover metric = B's sipwake_cluster_takeovers_total afterwards")
    print(flush=True)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", default=",".join(SETUPS), help="which of sqlite,redis-1,redis-2")
    ap.add_argument("--parts", default="throughput,memory,takeover", help="which parts to run")
    ap.add_argument("--rounds", type=int, default=1, help="repeat throughput and takeover N times")
    ap.add_argument("--rates", default="1000,1500,2000,2500,3000,4000,5000", help="ladder (REGISTER/s), ascending")
    ap.add_argument("--step-s", type=int, default=10, help="seconds per ladder step")
    ap.add_argument("--fixed-rate", type=int, default=1000, help="the common rate for p99 and CPU")
    ap.add_argument("--fixed-s", type=int, default=15, help="seconds at the fixed rate")
    ap.add_argument("--bindings", type=int, default=100000, help="bindings for the memory part")
    ap.add_argument("--settle-s", type=float, default=5, help="wait before reading RSS")
    ap.add_argument("--phones", type=int, default=1000, help="phones for the takeover")
    ap.add_argument("--phone-rate", type=int, default=250, help="their REGISTER rate")
    ap.add_argument("--cap", type=int, default=20, help="Kamailio max_expires for the takeover")
    ap.add_argument("--before-kill-s", type=float, default=2, help="wait after registering")
    ap.add_argument("--poll", type=float, default=0.25, help="takeover poll interval (s)")
    ap.add_argument("--timeout", type=int, default=90, help="time limit per sipp run (s)")
    ap.add_argument("--appendfsync", choices=("always", "everysec", "no"), default="always",
                    help="redis-server's appendfsync (AOF is on): always (default, swlib's: nothing "
                         "acknowledged is lost) or everysec (the admin guide's example)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it all runs (< 60 s)")
    ap.add_argument("--verbose", action="store_true", help="print each sipp step as it ends")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.rates, a.step_s, a.fixed_rate, a.fixed_s = "200,400", 1, 200, 1
        a.bindings, a.settle_s, a.phones, a.phone_rate, a.before_kill_s = 2000, 0.5, 10, 100, 0.5
        a.timeout = 20
    a.rates = [int(x) for x in a.rates.split(",") if x.strip()]
    a.setups = [s for s in a.setups.split(",") if s in SETUPS]
    parts = set(p.strip() for p in a.parts.split(","))
    Redis.appendfsync = a.appendfsync

    t = swlib.Test("bench-cluster")
    notes = []
    t_start = time.monotonic()
    try:
        print("cluster benchmark: %s, %d CPUs, %s, %s" % (
            ", ".join(a.setups), os.cpu_count(), swlib.sipwaked_binary(), time.strftime("%Y-%m-%d %H:%M:%S")))
        print("  redis-server %s, appendonly yes, appendfsync %s, its files in %s (%s); one per set-up"
              % (subprocess.run([swlib.REDIS_SERVER, "--version"], capture_output=True,
                                text=True).stdout.split()[2].replace("v=", ""), a.appendfsync,
                 t.dir, fs_type(t.dir)))
        print(flush=True)
        if "throughput" in parts:
            print_throughput(a, [bench_throughput(a, t.dir, i, notes) for i in range(a.rounds)])
        if "memory" in parts:
            print_memory(a, bench_memory(a, t.dir, notes))
        if "takeover" in parts:
            print_takeover(a, [bench_takeover(a, t.dir, i, notes) for i in range(a.rounds)])
        for n in notes:
            print("note: " + n)
        print("(%.0f s%s)" % (time.monotonic() - t_start, ", work files in %s" % t.dir if a.keep else ""))
        return 0
    except swlib.SetupError as e:
        print("SETUP ERROR: %s" % e)
        return 2
    finally:
        t.cleanup()
        swlib._cleanup_all()
        if not a.keep:
            shutil.rmtree(t.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
