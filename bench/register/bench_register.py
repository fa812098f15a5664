#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""REGISTER throughput and latency: sipwake vs. a Kamailio proxy, same run.

Paths measured, one after the other at each rate step, on loopback:
  sipwake   sipp -> sipwaked (gateway, upstream = R) -> Kamailio R
  kam-proxy sipp -> Kamailio P (adds Path, forwards) -> Kamailio R
  direct    sipp -> Kamailio R                (the registrar's own ceiling)
R is one Kamailio registrar (usrloc in memory, use_path) shared by all paths;
every REGISTER is for a user never registered before in the run (-inf CSV,
unique per path and step) and carries RFC 8599 FCM push parameters. R gets
shared memory for every binding the run makes (--registrar-mb) and a usrloc
table of 2^18 slots: out of memory Kamailio answers 500 to everything (it
did past ~700,000 bindings in 1 GB), and its default 1,024 slots turn every
lookup into a list walk once hundreds of thousands are registered.

Per path and rate step: sipp -r RATE -m N (or N = RATE x --duration; bounded
by -timeout), then
  sent / ok / failed / retransmissions  from sipp's statistics (-trace_stat),
  non-200 / timeout   of the failed: a final answer other than 200 (503
                      when overloaded) / no final answer at all,
  achieved rate       ok / (last 200 - first 200) from -trace_rtt,
  p50 / p99 / max     REGISTER -> 200 time from -trace_rtt (sipp measures
                      whole milliseconds: "0" means under 1 ms).
A path that fails a step (a failed REGISTER, > 1 % retransmissions, or
under 90 % of the target rate achieved) is not
driven at higher rates (unless --no-stop); the summary gives each path's
highest clean step. Then an unloaded latency probe: PROBE sequential REGISTERs from a raw UDP
socket per path, timed in microseconds.

Prints numbers, asserts nothing about speed. Exit status 0 unless a
component could not be started at all (a missing sipwaked only drops its
column, with the reason printed).
"""

import argparse
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
import swlib  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402

SCENARIO = os.path.join(HERE, "register_bench.xml")


def write_users(path, prefix, n):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            f.write("%s%07d;%s%07d%s\n" % (prefix, i, "tok-" + prefix, i, "x" * 100))


def run_sipp(workdir, target, transport, rate, n, prefix, timeout):
    d = os.path.join(workdir, "%s-r%d" % (prefix.rstrip("-"), rate))
    os.makedirs(d, exist_ok=True)
    users = os.path.join(d, "users.csv")
    write_users(users, prefix + "r%d-" % rate, n)
    port = swlib.free_port()
    # sipp writes response times in batches of -rtt_freq; a divisor of n
    # makes sure the last batch is written too
    freq = max(d_ for d_ in range(1, min(n, 1000) + 1) if n % d_ == 0)
    argv = [swlib.SIPP, "%s:%d" % target, "-sf", SCENARIO, "-inf", users, "-key", "dom", swlib.DOMAIN,
            "-t", "u1" if transport == "udp" else "t1", "-i", swlib.LOOPBACK, "-p", str(port), "-mp", str(swlib.media_port()),
            "-m", str(n), "-r", str(rate), "-l", str(max(1000, rate * 2)), "-nostdin",
            "-timeout", "%ds" % timeout, "-trace_rtt", "-rtt_freq", str(freq), "-trace_stat",
            "-stf", os.path.join(d, "stat.csv"), "-fd", "1", "-max_recv_loops", "10000",
            "-default_behaviors", "all,-bye", "-trace_err", "-error_file", os.path.join(d, "errors.log")]
    t0 = time.monotonic()
    proc = swlib.spawn("sipp-bench", argv, d, os.path.join(d, "screen.txt"))
    try:
        rc = proc.wait(timeout=timeout + 20)
    except Exception:
        swlib._kill_proc(proc)
        rc = proc.wait(timeout=5)
    swlib._forget(proc)
    wall = time.monotonic() - t0
    st = benchlib.parse_stat(os.path.join(d, "stat.csv"))
    rows = list(benchlib.rtt_rows(d))
    dates, rts = [r[0] for r in rows], [r[1] for r in rows]

    def num(key):
        try:
            return int(st.get(key, "0"))
        except ValueError:
            return 0

    retrans = num("Retransmissions(C)")
    rejected = num("FailedUnexpectedMessage(C)")  # a final answer other than 200: 503 under overload
    timeouts = num("FailedMaxUDPRetrans(C)") + num("FailedTimeoutOnRecv(C)")
    ok = num("SuccessfulCall(C)")
    failed = num("FailedCall(C)")
    sent = num("OutgoingCall(C)")
    span = (max(dates) - min(dates)) / 1000.0 if len(dates) > 1 else 0.0
    achieved = ok / span if span > 0 else None
    return {"rc": rc, "target": rate, "sent": sent, "retrans": retrans, "ok": ok, "failed": failed,
            "rejected": rejected, "timeouts": timeouts, "achieved": achieved,
            "p50": benchlib.pct(rts, 50), "p99": benchlib.pct(rts, 99), "max": max(rts) if rts else None,
            "wall": wall, "dir": d}


def probe_latency(target, count, prefix):
    """Sequential REGISTERs over one UDP socket; microsecond timings."""
    times = []
    fails = 0
    with swlib.RawSip("udp", target, timeout=2) as c:
        for i in range(count):
            user = "%s%06d" % (prefix, i)
            req = swlib.build_request(
                "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
                from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
                headers=[("Contact", "<sip:%s@%s:%d;pn-provider=fcm;pn-prid=probe%06d;pn-param=sipwake-bench>"
                          % (user, c.local[0], c.local[1], i)), ("Expires", "3600"),
                         ("Supported", "path")])
            t0 = time.perf_counter_ns()
            final, _ = c.request(req, timeout=2)
            dt = (time.perf_counter_ns() - t0) / 1000.0
            if final is not None and final.status == 200:
                times.append(dt)
            else:
                fails += 1
    return times, fails


class RssPeak:
    """The highest VmRSS of pid while the with-block runs (sampled every 100 ms)."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.peak = benchlib.rss_kb(self.pid) or 0
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, benchlib.rss_kb(self.pid) or 0)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def clean(r):
    """A step counts as sustained: every REGISTER answered 200, few retransmissions."""
    return (r["failed"] == 0 and r["ok"] == r["sent"] and r["sent"] > 0
            and r["retrans"] <= r["sent"] / 100 and (r["achieved"] or 0) >= 0.9 * r["target"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "20000")),
                    help="REGISTERs per path and rate step (default 20000)")
    ap.add_argument("--duration", type=int, default=0,
                    help="seconds per step instead of -n: N = rate x duration (the overload curve: "
                         "--duration 60 --no-stop)")
    ap.add_argument("--rates", default=os.environ.get("BENCH_RATES", "2000,4000,6000,8000,10000,15000,20000"),
                    help="comma-separated target rates (REGISTER/s), ascending")
    ap.add_argument("--no-stop", action="store_true",
                    help="keep measuring a path at higher rates after it failed a step")
    ap.add_argument("--transport", choices=("udp", "tcp"), default=os.environ.get("BENCH_TRANSPORT", "udp"))
    ap.add_argument("--paths", default="sipwake,kam-proxy,direct",
                    help="which paths to measure (comma-separated)")
    ap.add_argument("--probe", type=int, default=1000, help="sequential REGISTERs for the latency probe")
    ap.add_argument("--children", type=int, default=2, help="Kamailio worker processes")
    ap.add_argument("--registrar-mb", type=int, default=0,
                    help="the registrar's shared memory (MB; default: 1024, or more when the run "
                         "makes more bindings than that holds: every REGISTER is a new user)")
    ap.add_argument("--timeout", type=int, default=120, help="time limit per sipp run (s)")
    ap.add_argument("--smoke", action="store_true", help="tiny run: -n 200, rates 200, probe 50")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.n, a.rates, a.probe, a.timeout = 200, "200", 50, 30
    rates = [int(r) for r in a.rates.split(",") if r.strip()]
    paths = [p.strip() for p in a.paths.split(",") if p.strip()]

    t = swlib.Test("bench-register")
    try:
        if not a.registrar_mb:
            # ~1.5 KB of usrloc per binding; out of memory, Kamailio answers 500 to everything
            total = sum(r * a.duration if a.duration else a.n for r in rates) * len(paths)
            a.registrar_mb = max(1024, total * 1536 // (1 << 20) + 256)
        registrar = swlib.Kamailio(t.dir, name="registrar", children=a.children,
                                   shm_mb=a.registrar_mb, debug=1, ul_hash_bits=18)
        t.on_cleanup(registrar.stop)
        registrar.start()
        targets = {}
        notes = []
        if "kam-proxy" in paths:
            proxy = swlib.Kamailio(t.dir, name="proxy", role="proxy", upstream=registrar.uri,
                                   children=a.children, shm_mb=512, debug=1)
            t.on_cleanup(proxy.stop)
            proxy.start()
            targets["kam-proxy"] = proxy.addr()
        if "sipwake" in paths:
            port = swlib.free_port()
            cfg = swlib.sipwake_config(t.dir, port, upstream_uri=registrar.uri, fcm=True,
                                       extra={"log": {"level": "warn", "sip_trace": False},
                                              "sip": {"max_requests_per_source": 0}})
            sw = swlib.Sipwaked(t.dir, cfg, log_level="warning")
            t.on_cleanup(sw.kill9)
            try:
                sw.start()
                targets["sipwake"] = (swlib.LOOPBACK, port)
            except swlib.SetupError as e:
                notes.append("sipwake: not measured: %s" % str(e).splitlines()[0])
        if "direct" in paths:
            targets["direct"] = registrar.addr()
        order = [p for p in ("sipwake", "kam-proxy", "direct") if p in targets]

        print("REGISTER benchmark: %s per path and step, %s, Kamailio %d children, %d CPUs, %s"
              % ("%d s" % a.duration if a.duration else "%d" % a.n, a.transport.upper(), a.children, os.cpu_count(), time.strftime("%Y-%m-%d %H:%M:%S")))
        print("  sipwake   = sipp -> sipwaked (gateway) -> Kamailio registrar")
        print("  kam-proxy = sipp -> Kamailio proxy (add_path) -> Kamailio registrar")
        print("  direct    = sipp -> Kamailio registrar")
        for n in notes:
            print("  " + n)
        print()
        hdr = "%8s  %-10s %7s %7s %7s %7s %7s %7s %10s %6s %6s %6s" % (
            "target/s", "path", "sent", "ok", "failed", "non-200", "timeout", "retrans", "achieved/s",
            "p50ms", "p99ms", "maxms")
        print(hdr)
        print("-" * len(hdr))
        results = {}
        given_up = set()
        rss_start = (benchlib.rss_kb(sw.proc.pid) or 0) if "sipwake" in targets else 0
        rss_peak, sw_ok = rss_start, 0
        for rate in rates:
            for p in order:
                if p in given_up:
                    continue
                n = rate * a.duration if a.duration else a.n
                with RssPeak(sw.proc.pid if p == "sipwake" else 0) as peak:
                    r = run_sipp(t.dir, targets[p], a.transport, rate, n, "%s-" % p,
                                 max(a.timeout, 2 * a.duration + 30))
                if p == "sipwake":
                    rss_peak = max(rss_peak, peak.peak)
                    sw_ok += r["ok"]
                results[(rate, p)] = r
                print("%8d  %-10s %7d %7d %7d %7d %7d %7d %10s %6s %6s %6s%s" % (
                    rate, p, r["sent"], r["ok"], r["failed"], r["rejected"], r["timeouts"], r["retrans"],
                    benchlib.fmt(r["achieved"]), benchlib.fmt(r["p50"]),
                    benchlib.fmt(r["p99"]), benchlib.fmt(r["max"]), "" if r["rc"] == 0 else "  (sipp exit %s)" % r["rc"]),
                    flush=True)
                if not clean(r) and not a.no_stop:
                    given_up.add(p)
            sw_r, kp_r = results.get((rate, "sipwake")), results.get((rate, "kam-proxy"))
            if sw_r and kp_r and sw_r["achieved"] and kp_r["achieved"]:
                print("%8s  sipwake/kam-proxy achieved rate: %.2f" % ("", sw_r["achieved"] / kp_r["achieved"]))
            print()

        print("highest clean step (no failed REGISTER, retransmissions <= 1%, >= 90% of target):")
        for p in order:
            good = [rate for rate in rates if (rate, p) in results and clean(results[(rate, p)])]
            best = max(good) if good else None
            r = results.get((best, p))
            print("  %-10s %s" % (p, "none" if best is None else "%d/s target, %s/s achieved, p99 %s ms"
                                  % (best, benchlib.fmt(r["achieved"]), benchlib.fmt(r["p99"]))))
        print()

        if "sipwake" in targets and sw_ok:
            # sofia keeps a UDP server transaction 32 s (64 x T1) after its answer
            time.sleep(40)
            settled = benchlib.rss_kb(sw.proc.pid) or 0
            print("sipwake memory over the run: %d bindings made; RSS %d kB at start, peak %d kB, "
                  "%d kB 40 s after the last step" % (sw_ok, rss_start, rss_peak, settled))
            if settled > rss_start:
                print("  settled %.0f bytes per binding; peak growth %.2fx the settled growth"
                      % ((settled - rss_start) * 1024.0 / sw_ok,
                         (rss_peak - rss_start) / float(settled - rss_start)))
            print()

        if a.probe > 0 and a.transport == "udp":
            print("unloaded latency, %d sequential REGISTERs over UDP (microseconds):" % a.probe)
            print("%-10s %6s %6s %8s %8s %8s" % ("path", "ok", "fail", "p50us", "p99us", "maxus"))
            for p in order:
                times, fails = probe_latency(targets[p], a.probe, "probe-%s-" % p)
                print("%-10s %6d %6d %8s %8s %8s" % (p, len(times), fails, benchlib.fmt(benchlib.pct(times, 50)),
                                                     benchlib.fmt(benchlib.pct(times, 99)), benchlib.fmt(max(times) if times else None)),
                      flush=True)
            print()
        print("(work files in %s)" % t.dir if a.keep else "", end="")
        return 0
    except swlib.SetupError as e:
        print("SETUP ERROR: %s" % e)
        return 2
    finally:
        t.cleanup()
        swlib._cleanup_all()
        if not a.keep:
            import shutil
            shutil.rmtree(t.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
