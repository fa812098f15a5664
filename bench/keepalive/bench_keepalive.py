#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Keep-alive at scale: N sleeping push devices kept registered upstream.

Setup, on loopback: one Kamailio registrar (usrloc in memory, use_path,
max_expires CAP, no digest: it trusts sipwake's address) and one sipwaked
in gateway mode in front of it. sipwake's database is filled with N push
bindings (FCM, unique AORs, the device asked for a day) whose upstream legs
expire spread over the next CAP seconds, as after a restart with that many
sleeping phones; sipwaked then loads them and refreshes every one of them
upstream on its own, before each upstream expiry, for the whole run.

After a warm-up (one cap: every binding refreshed once, so Kamailio holds
all N), over the measuring window:
  refreshes/s          sipwake_upstream_refresh_total{result="ok"} delta / window
  failed               every other result (rejected, timeout, failed)
  sipwake CPU/refresh  sipwaked's utime+stime delta / refreshes
  lateness             sipwake_upstream_refresh_lateness_seconds: how long
                       after its scheduled time a refresh went out (bucket
                       counts; the worst is the highest non-empty bucket)
  lapsed               sipwake_upstream_lapsed_total: refreshes sent after
                       upstream's registration had already expired (goal 0)
  Kamailio             contacts held at the end (a random sample of AORs;
                       goal: all) and, as the
                       reference in the same run, Kamailio's own CPU per
                       REGISTER it answered.
Prints numbers, asserts nothing about speed.
"""

import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
import swlib  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def group_pids(pid):
    """pid and every process in its process group (Kamailio's workers)."""
    pgid = os.getpgid(pid)
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getpgid(int(d)) == pgid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def stats(ctl, conf):
    r = subprocess.run([ctl, "-c", conf, "--json", "stats"], capture_output=True, text=True,
                       timeout=60)
    return json.loads(r.stdout)["result"] if r.returncode == 0 else {}


def series(st, name, **labels):
    fam = st.get(name, {})
    return sum(s.get("value", 0) for s in fam.get("series", [])
               if all(s["labels"].get(k) == v for k, v in labels.items()))


def histogram(st, name):
    fam = st.get(name, {})
    for s in fam.get("series", []):
        return s
    return {}


def fill(db, n, cap, now, port):
    """N bindings with upstream legs expiring over the next cap seconds."""
    con = sqlite3.connect(db)
    rows = []
    for i in range(n):
        bid = "%016x" % (0xb000000000000000 + i)
        user = "ka%07d" % i
        contact = ("sip:%s@127.0.0.1:%d;transport=udp;pn-provider=fcm;pn-prid=tok-%s%s;"
                   "pn-param=sipwake-bench" % (user, 20000 + i % 40000, user, "x" * 80))
        rows.append((bid, "sip:%s@%s" % (user, swlib.DOMAIN), contact, None, None,
                     "sip:127.0.0.1:%d;transport=udp" % (20000 + i % 40000),
                     "bench-%s@device" % user, 1, "bench-phone", 1000, now + 86400, now,
                     "bench-%s@sipwake-keepalive" % user, 1, now + random.randint(1, cap), "ok"))
    con.executemany("INSERT INTO bindings (id, aor, contact, instance, pn_key, received, call_id,"
                    " cseq, user_agent, q, expires, updated, up_call_id, up_cseq, up_expires,"
                    " up_state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()


def kam_sample(kam, n, k=300):
    """Of k AORs picked at random, how many Kamailio holds a contact for."""
    picks = random.sample(range(n), min(k, n))
    return sum(1 for i in picks if kam.contacts("ka%07d" % i)), len(picks)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100000, help="push bindings kept alive (default 100000)")
    ap.add_argument("--cap", type=int, default=60, help="Kamailio max_expires, s (default 60)")
    ap.add_argument("--measure", type=int, default=120, help="measuring window, s (default 120)")
    ap.add_argument("--children", type=int, default=4, help="Kamailio worker processes")
    ap.add_argument("--smoke", action="store_true", help="2000 bindings, 20 s cap, 30 s window")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.n, a.cap, a.measure = 2000, 20, 30
    t = swlib.Test("bench-keepalive")
    try:
        kam = swlib.Kamailio(t.dir, name="registrar", children=a.children, shm_mb=1024, debug=1,
                             max_expires=a.cap, min_expires=5)
        t.on_cleanup(kam.stop)
        kam.start()
        port = swlib.free_port()
        cfg = swlib.sipwake_config(t.dir, port, upstream_uri=kam.uri, fcm=True,
                                   extra={"log": {"level": "warn", "sip_trace": False},
                                          "sip": {"max_requests_per_source": 0},
                                          "push": {"wakeup_before_expiry": 0}})
        sw = swlib.Sipwaked(t.dir, cfg, log_level="warning")
        t.on_cleanup(sw.kill9)
        sw.start()  # creates the database at the current schema
        sw.stop()
        now = int(time.time())
        t0 = time.monotonic()
        fill(cfg["storage"]["database"], a.n, a.cap, now, port)
        print("keep-alive benchmark: %d push bindings, Kamailio max_expires %d s (%d children), "
              "%d CPUs, %s" % (a.n, a.cap, a.children, os.cpu_count(),
                               time.strftime("%Y-%m-%d %H:%M:%S")))
        print("  database filled in %.1f s" % (time.monotonic() - t0))
        t0 = time.monotonic()
        sw.start(timeout=120)
        print("  sipwaked loaded them and is ready in %.1f s" % (time.monotonic() - t0))
        ctl = os.path.join(os.path.dirname(sw.binary), "sipwakectl")
        kpids = group_pids(kam.proc.pid)

        time.sleep(a.cap + 5)  # warm-up: every leg refreshed once
        s0, c0, k0 = stats(ctl, sw.conf_path), cpu_seconds([sw.proc.pid]), cpu_seconds(kpids)
        m0 = time.monotonic()
        time.sleep(a.measure)
        s1, c1, k1 = stats(ctl, sw.conf_path), cpu_seconds([sw.proc.pid]), cpu_seconds(kpids)
        window = time.monotonic() - m0
        ok = series(s1, "sipwake_upstream_refresh_total", result="ok") - \
            series(s0, "sipwake_upstream_refresh_total", result="ok")
        total = series(s1, "sipwake_upstream_refresh_total") - series(s0, "sipwake_upstream_refresh_total")
        lapsed = series(s1, "sipwake_upstream_lapsed_total") - series(s0, "sipwake_upstream_lapsed_total")
        lapsed_start = series(s0, "sipwake_upstream_lapsed_total")
        held, sampled = kam_sample(kam, a.n)
        print()
        print("over %.0f s after a %d s warm-up:" % (window, a.cap + 5))
        print("  refreshes ok          %d (%.0f/s; %.0f/s needed for %d bindings at one per %d s)"
              % (ok, ok / window, a.n / (a.cap * 0.75), a.n, int(a.cap * 0.75)))
        results = sorted({sr["labels"].get("result") for sr in
                          s1.get("sipwake_upstream_refresh_total", {}).get("series", [])} - {"ok"})
        print("  refreshes not ok      %d (%s)" % (total - ok, ", ".join(
            "%s %d" % (r, series(s1, "sipwake_upstream_refresh_total", result=r) -
                       series(s0, "sipwake_upstream_refresh_total", result=r))
            for r in results) or "none"))
        print("  sipwake CPU           %.1f s = %.0f us per refresh (%.0f%% of one core)"
              % (c1 - c0, 1e6 * (c1 - c0) / ok if ok else 0, 100 * (c1 - c0) / window))
        print("  Kamailio CPU          %.1f s = %.0f us per REGISTER answered (reference)"
              % (k1 - k0, 1e6 * (k1 - k0) / ok if ok else 0))
        h = histogram(s1, "sipwake_upstream_refresh_lateness_seconds")
        cum = sorted(((float(k), v) for k, v in h.get("buckets", {}).items() if k != "+Inf"))
        count = h.get("count", 0)
        worst = next((le for le, v in cum if v == count), None)
        print("  lateness (whole run)  %d refreshes sent, mean %.2f s after schedule, worst %s"
              % (count, h.get("sum", 0) / count if count else 0,
                 "<= %g s" % worst if worst is not None else "> %g s" % (cum[-1][0] if cum else 0)))
        print("                        cumulative: %s" % ", ".join("<=%g s: %d" % c for c in cum))
        print("  lapsed                %d upstream registrations expired before their refresh "
              "(warm-up: %d, legs that the fill made expire within seconds of the start)"
              % (lapsed, lapsed_start))
        print("  Kamailio holds        a contact for %d of %d AORs sampled at random at the end"
              % (held, sampled))
    finally:
        t.cleanup()
        if not a.keep:
            import shutil
            shutil.rmtree(t.dir, ignore_errors=True)
        else:
            print("work directory kept: %s" % t.dir)


if __name__ == "__main__":
    main()
