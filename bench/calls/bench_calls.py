#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""CPU per relayed call: sipwake vs. a Kamailio proxy in the same place.

One Kamailio registrar R (usrloc in memory, use_path, record_route) plays
the PBX. In front of it, on loopback, the two edges under test:
  sipwake    sipwaked in gateway mode, upstream = R
  kam-proxy  Kamailio with the proxy role of tests/kamailio (add_path,
             record_route, forwards to R)
Behind each edge a sipp callee registers through it from its own socket
(uas_register.xml) and answers every call it gets (uas_answer.xml: 180,
200, then 200 to the BYE). A sipp caller (uac_call.xml) places N calls at a
fixed rate:
  INVITE, (100) (180) 200, ACK, hold (--hold-ms), BYE, 200
The caller sends to R, which looks the callee up and relays the call
along the stored Path: each edge relays every message of the call once, on
its way to or from the phone. (A caller behind the edge is not measured:
on loopback every source is 127.0.0.1, the address of upstream, and
sipwake takes a request from upstream's address as coming from upstream,
so it would hand the call straight to the callee without R.)

Per path and rate step, the edges take turns (same machine, same run):
  calls ok / failed / retransmissions   sipp -trace_stat
  CPU s of the edge                     utime + stime from /proc/PID/stat
                                        of every process in its process
                                        group (Kamailio: main + children),
                                        before and after the caller's run
  CPU us per call                       that / calls ok
  CPU s of R                            the same for the registrar
  unexp                                 responses the caller got out of
                                        order and ignored (a 180 relayed by
                                        one R worker after the 200 relayed
                                        by another)
  setup mean / p50 / p99                INVITE -> 200 at the caller
                                        (sipp -trace_rtt; sipp's clock moved
                                        in 4 ms steps on the machine this was
                                        written on, so the mean says more
                                        than the percentiles)
Then an unloaded probe: PROBE calls one after the other from a Python
caller, INVITE -> 200 timed in microseconds.

Prints numbers, asserts nothing about speed.
"""

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
import swlib  # noqa: E402
import wakelib as W  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402
from benchlib import fmt, parse_stat, pct  # noqa: E402


def parse_rtt(directory):
    """{rtd name: [ms, ...]} from sipp's *_rtt.csv files in directory."""
    out = {}
    for _, ms, rtd in benchlib.rtt_rows(directory):
        out.setdefault(rtd, []).append(ms)
    return out

UAC = os.path.join(HERE, "uac_call.xml")
UAS_MAIN = os.path.join(HERE, "uas_register.xml")
UAS_OOC = os.path.join(HERE, "uas_answer.xml")
CLK = os.sysconf("SC_CLK_TCK")
TRACE = False


# --------------------------------------------------------------------------
# CPU from /proc

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # the command name may hold spaces or parentheses: split after the last ')'
    return data[data.rindex(")") + 2:].split()


def group_pids(pgid):
    """PIDs of every live process in process group pgid (each server here
    was started in its own session, so its group is itself and its
    children, e.g. all Kamailio workers)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if int(_stat_fields(int(name))[2]) == pgid:
                out.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def group_cpu(pgid):
    """(CPU seconds user+system of the group, number of processes)."""
    total = 0
    pids = group_pids(pgid)
    for pid in pids:
        try:
            f = _stat_fields(pid)
            total += int(f[11]) + int(f[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / float(CLK), len(pids)


# --------------------------------------------------------------------------
# sipp output

def start_callee(t, name, edge, registrar, user, transport, life_s):
    """sipp that registers `user` through `edge` and answers calls until
    stopped. Returns the Popen once R holds the binding."""
    d = os.path.join(t.dir, "uas-" + name)
    os.makedirs(d, exist_ok=True)
    port = swlib.free_port()
    argv = [swlib.SIPP, "%s:%d" % edge, "-sf", UAS_MAIN, "-oocsf", UAS_OOC, "-s", user,
            "-key", "dom", swlib.DOMAIN, "-t", "u1" if transport == "udp" else "t1",
            "-i", swlib.LOOPBACK, "-p", str(port), "-mp", str(swlib.media_port()),
            "-m", "1", "-d", str(life_s * 1000), "-timeout", "%ds" % (life_s + 10),
            "-nostdin", "-default_behaviors", "all,-bye", "-max_recv_loops", "10000",
            "-trace_err", "-error_file", os.path.join(d, "errors.log")]
    if TRACE:
        argv += ["-trace_msg", "-message_file", os.path.join(d, "messages.log")]
    proc = swlib.spawn("sipp-uas-" + name, argv, d, os.path.join(d, "screen.txt"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if registrar.contacts(user):
            return proc
        time.sleep(0.2)
    swlib._kill_proc(proc)
    proc.wait(timeout=5)
    swlib._forget(proc)
    raise swlib.SetupError("callee %s did not register through %s:%d; screen:\n%s"
                           % (user, edge[0], edge[1], swlib.tail(os.path.join(d, "screen.txt"))))


def stop_proc(proc):
    if proc is None:
        return
    if proc.poll() is None:
        swlib._kill_proc(proc)
        try:
            proc.wait(timeout=5)
        except Exception:
            pass
    swlib._forget(proc)


# --------------------------------------------------------------------------
# one measured step

def run_step(t, path, target, callee_user, transport, rate, n, hold_ms, edge_pgid, reg_pgid):
    d = os.path.join(t.dir, "uac-%s-r%d" % (path, rate))
    os.makedirs(d, exist_ok=True)
    timeout = int(n / float(rate) + hold_ms / 1000.0 + 30)
    # sipp writes response times in batches of -rtt_freq: a divisor of n
    # makes sure the last batch is written too
    freq = max(x for x in range(1, min(n, 1000) + 1) if n % x == 0)
    argv = [swlib.SIPP, "%s:%d" % target, "-sf", UAC, "-s", callee_user,
            "-key", "dom", swlib.DOMAIN, "-t", "u1" if transport == "udp" else "t1",
            "-i", swlib.LOOPBACK, "-p", str(swlib.free_port()), "-mp", str(swlib.media_port()),
            "-m", str(n), "-r", str(rate), "-l", str(max(100, int(rate * (hold_ms / 1000.0 + 2) * 2))),
            "-d", str(hold_ms), "-nostdin", "-timeout", "%ds" % timeout,
            "-trace_rtt", "-rtt_freq", str(freq), "-trace_stat", "-stf", os.path.join(d, "stat.csv"),
            "-fd", "1", "-max_recv_loops", "10000", "-default_behaviors", "all,-bye,-abortunexp",
            "-trace_err", "-error_file", os.path.join(d, "errors.log")]
    if TRACE:
        argv += ["-trace_msg", "-message_file", os.path.join(d, "messages.log")]
    e0, nproc = group_cpu(edge_pgid)
    r0, _ = group_cpu(reg_pgid)
    t0 = time.monotonic()
    proc = swlib.spawn("sipp-uac-" + path, argv, d, os.path.join(d, "screen.txt"))
    try:
        rc = proc.wait(timeout=timeout + 20)
    except Exception:
        swlib._kill_proc(proc)
        rc = proc.wait(timeout=5)
    swlib._forget(proc)
    wall = time.monotonic() - t0
    e1, _ = group_cpu(edge_pgid)
    r1, _ = group_cpu(reg_pgid)
    st = parse_stat(os.path.join(d, "stat.csv"))

    def num(key):
        try:
            return int(st.get(key, "0"))
        except ValueError:
            return 0

    rtt = parse_rtt(d)
    ok = num("SuccessfulCall(C)")
    late = 0  # responses sipp did not expect where they came (a 180 after the 200)
    try:
        with open(os.path.join(d, "errors.log"), errors="replace") as f:
            late = f.read().count("Continuing call on unexpected message")
    except OSError:
        pass
    setup = rtt.get("1", [])
    return {"rc": rc, "rate": rate, "sent": num("OutgoingCall(C)"), "ok": ok,
            "failed": num("FailedCall(C)"), "retrans": num("Retransmissions(C)"), "unexp": late,
            "edge_cpu": e1 - e0, "edge_procs": nproc, "reg_cpu": r1 - r0, "wall": wall,
            "us_per_call": (e1 - e0) * 1e6 / ok if ok else None,
            "p50": pct(setup, 50), "p99": pct(setup, 99), "max": max(setup) if setup else None,
            "mean": sum(setup) / len(setup) if setup else None,
            "dir": d}


def probe(target, transport, user, count):
    """Sequential calls from a Python caller: INVITE -> 200 in microseconds.
    Returns (times, failures)."""
    times, fails = [], 0
    for i in range(count):
        c = W.Caller(transport, target, user, name="probe%d" % i, display="Probe")
        try:
            t0 = time.perf_counter_ns()
            c.invite()
            f = c.final(timeout=3)
            dt = (time.perf_counter_ns() - t0) / 1000.0
            if f is None or f.status != 200:
                fails += 1
                continue
            times.append(dt)
            c.ack(f)
            # with several Kamailio workers a BYE sent right after the ACK
            # may overtake it; the callee would take it for a stray request
            time.sleep(0.02)
            c.bye(f)
            if c.wait_bye_ok(timeout=3) is None:
                fails += 1
        finally:
            c.close()
    return times, fails


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=3000, help="calls per path and rate step (default 3000)")
    ap.add_argument("--rates", default="100,300", help="comma-separated call rates (calls/s)")
    ap.add_argument("--hold-ms", type=int, default=1000, help="time between ACK and BYE (ms)")
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--paths", default="sipwake,kam-proxy", help="edges to measure (comma-separated)")
    ap.add_argument("--children", type=int, default=2, help="Kamailio worker processes (R and the proxy)")
    ap.add_argument("--probe", type=int, default=200, help="sequential calls of the unloaded probe")
    ap.add_argument("--smoke", action="store_true", help="tiny run: 40 calls at 20/s, hold 200 ms, probe 10")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--trace", action="store_true",
                    help="debugging: sipwaked SIP trace and sipp -trace_msg (slows every path; implies --keep)")
    a = ap.parse_args()
    if a.trace:
        a.keep = True
    global TRACE
    TRACE = a.trace
    if a.smoke:
        a.n, a.rates, a.hold_ms, a.probe = 40, "20", 200, 10
    rates = [int(r) for r in a.rates.split(",") if r.strip()]
    paths = [p.strip() for p in a.paths.split(",") if p.strip()]
    if not rates or a.n <= 0 or any(r <= 0 for r in rates):
        ap.error("need -n > 0 and positive rates")
    # the callees live as long as every step could take, plus a margin
    life = int(sum(a.n / float(r) + a.hold_ms / 1000.0 + 60 for r in rates) * len(paths)) + 60

    t = swlib.Test("bench-calls")
    callees = []
    try:
        registrar = swlib.Kamailio(t.dir, name="registrar", children=a.children, shm_mb=512, debug=1)
        t.on_cleanup(registrar.stop)
        registrar.start()
        edges = {}  # path -> (addr, pgid)
        notes = []
        if "kam-proxy" in paths:
            proxy = swlib.Kamailio(t.dir, name="proxy", role="proxy", upstream=registrar.uri,
                                   children=a.children, shm_mb=512, debug=1)
            t.on_cleanup(proxy.stop)
            proxy.start()
            edges["kam-proxy"] = (proxy.addr(), proxy.proc.pid)
        if "sipwake" in paths:
            port = swlib.free_port()
            cfg = swlib.sipwake_config(t.dir, port, upstream_uri=registrar.uri, fcm=False,
                                       extra={"log": {"level": "debug" if TRACE else "warn", "sip_trace": TRACE},
                                              "sip": {"max_requests_per_source": 0}})
            sw = swlib.Sipwaked(t.dir, cfg, log_level="debug" if TRACE else "warning")
            t.on_cleanup(sw.kill9)
            try:
                sw.start()
                edges["sipwake"] = ((swlib.LOOPBACK, port), sw.proc.pid)
            except swlib.SetupError as e:
                notes.append("sipwake: not measured: %s" % str(e).splitlines()[0])
        order = [p for p in ("sipwake", "kam-proxy") if p in edges]
        users = {}
        for p in order:
            users[p] = "callee-" + p
            callees.append(start_callee(t, p, edges[p][0], registrar, users[p], a.transport, life))
        if a.probe > 0:
            # reference for the probe only: a callee registered at R itself
            users["direct"] = "callee-direct"
            callees.append(start_callee(t, "direct", registrar.addr(), registrar, users["direct"],
                                        a.transport, life))
        # what each process group burns with no calls at all (timers, polls)
        idle_s = 1.0 if a.smoke else 5.0
        time.sleep(1.0)
        before = {p: group_cpu(edges[p][1])[0] for p in order}
        before["R"] = group_cpu(registrar.proc.pid)[0]
        time.sleep(idle_s)
        idle = {p: (group_cpu(edges[p][1])[0] - before[p]) * 1000.0 / idle_s for p in order}
        idle["R"] = (group_cpu(registrar.proc.pid)[0] - before["R"]) * 1000.0 / idle_s

        print("calls benchmark: %d calls per path and step, %s, hold %d ms, "
              "Kamailio %d children, %d CPUs, %s" % (
                  a.n, a.transport.upper(), a.hold_ms, a.children, os.cpu_count(),
                  time.strftime("%Y-%m-%d %H:%M:%S")))
        print("  sipwake   = sipp caller -> Kamailio R -> sipwaked (gateway) -> sipp callee")
        print("  kam-proxy = sipp caller -> Kamailio R -> Kamailio proxy     -> sipp callee")
        print("  edge CPU = utime+stime of every process of the edge (processes: %s)"
              % ", ".join("%s %d" % (p, group_cpu(edges[p][1])[1]) for p in order))
        print("  idle CPU over %.0f s before the calls (ms per s): %s" % (
            idle_s, ", ".join("%s %.1f" % (p, idle[p]) for p in order + ["R"])))
        for n in notes:
            print("  " + n)
        print()
        hdr = "%7s  %-10s %6s %6s %6s %7s %5s %9s %9s %8s %6s %6s %6s %6s" % (
            "rate/s", "path", "sent", "ok", "failed", "retrans", "unexp", "edge CPUs", "us/call",
            "R CPU s", "meanms", "p50ms", "p99ms", "maxms")
        print(hdr)
        print("-" * len(hdr))
        results = {}
        for rate in rates:
            for p in order:
                r = run_step(t, p, registrar.addr(), users[p], a.transport, rate, a.n, a.hold_ms,
                             edges[p][1], registrar.proc.pid)
                results[(rate, p)] = r
                print("%7d  %-10s %6d %6d %6d %7d %5d %9.2f %9s %8.2f %6s %6s %6s %6s%s" % (
                    rate, p, r["sent"], r["ok"], r["failed"], r["retrans"], r["unexp"], r["edge_cpu"],
                    fmt(r["us_per_call"]), r["reg_cpu"], fmt(r["mean"], "%.1f"), fmt(r["p50"]), fmt(r["p99"]), fmt(r["max"]),
                    "" if r["rc"] == 0 else "  (sipp exit %s)" % r["rc"]), flush=True)
            s, k = results.get((rate, "sipwake")), results.get((rate, "kam-proxy"))
            if s and k and s["us_per_call"] and k["us_per_call"]:
                print("%7s  sipwake/kam-proxy CPU per call: %.2f" % ("", s["us_per_call"] / k["us_per_call"]))
            print()

        if a.probe > 0:
            print("unloaded setup latency, %d sequential calls from a Python caller, %s "
                  "(INVITE -> 200, microseconds):" % (a.probe, a.transport.upper()))
            print("%-10s %6s %6s %8s %8s %8s" % ("path", "ok", "fail", "p50us", "p99us", "maxus"))
            for p in order + ["direct"]:
                times, fails = probe(registrar.addr(), a.transport, users[p], a.probe)
                print("%-10s %6d %6d %8s %8s %8s" % (p, len(times), fails, fmt(pct(times, 50)),
                                                     fmt(pct(times, 99)), fmt(max(times) if times else None)),
                      flush=True)
            print("  (direct = caller -> Kamailio R -> callee registered at R, no edge: the "
                  "share of R, sipp and Python)")
            print()
        if a.keep:
            print("(work files in %s)" % t.dir)
        return 0
    except swlib.SetupError as e:
        print("SETUP ERROR: %s" % e)
        return 2
    finally:
        for c in callees:
            stop_proc(c)
        t.cleanup()
        swlib._cleanup_all()
        if not a.keep:
            shutil.rmtree(t.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
