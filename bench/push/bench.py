#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/push: push throughput and latency through ONE HTTP/2 connection.

Starts the fake APNs (tests/fakes/fake_apns.py) on a free loopback port
and drives the real push layer (tests/helpers/push_driver) at 1, 100 and
1000 concurrent requests: pushes/s, p50, p99, CPU per push. Then, unless
--no-h2load, h2load sends the same request (valid JWT and headers) over
one connection with the same stream counts, which shows the ceiling of the
Python fake itself. --providers adds Web Push runs next to APNs, on the
same machine in the same run: "webpush" (every push encrypted for the
subscription, RFC 8291: one ECDH and one AES-GCM record each) and
"webpush-empty" (pushes without content, VAPID only), against
tests/fakes/fake_webpush.py, which verifies and decrypts every push.
--server nghttpd measures APNs pushes against nghttpd (nghttp2-server),
a C HTTP/2 server that answers each POST to /3/device/<token> with 200 from
a file of its -d directory: there the ceiling is h2load against the same
nghttpd over one connection, and the table gives the push layer's share
of it. nghttpd is optional: without it that part is skipped with a note.
--client names the push layer's HTTP/2 clients to measure (push.http2):
"curl" (libcurl) and "nghttp2" (src/push/h2.c), each a row of its own in
the same run, next to h2load.
Not part of ctest; timing figures belong here.

usage: bench/push/bench.py [--build DIR] [--n N] [--conc 1,100,1000] [--no-h2load]
                           [--providers apns,webpush,webpush-empty]
                           [--server fake,nghttpd] [--client curl,nghttp2]
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))


def make_jwt(p8, key_id, team):
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    with open(p8, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    head = b64(json.dumps({"alg": "ES256", "kid": key_id}).encode())
    body = b64(json.dumps({"iss": team, "iat": int(time.time())}).encode())
    r, s = decode_dss_signature(key.sign((head + "." + body).encode(), ec.ECDSA(hashes.SHA256())))
    return head + "." + body + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def h2load(L, pki, url, n, conc):
    payload = pki.p("payload.json")
    with open(payload, "w") as f:
        json.dump({"aps": {"alert": {"title": "Alice", "body": "Incoming call"}},
                   "call-id": "bench"}, f)
    cmd = ["h2load", "-n", str(n), "-c", "1", "-m", str(conc), "-d", payload,
           "-H", "authorization: bearer " + make_jwt(pki.p8, L.KEY_ID, L.TEAM),
           "-H", "apns-topic: " + L.BUNDLE, "-H", "apns-push-type: alert",
           "-H", "apns-priority: 10", "-H", "content-type: application/json",
           url + "/3/device/" + L.tok(1)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    return float(rate.group(1)) if rate else 0.0, int(codes.group(1)) if codes else 0


class Nghttpd:
    """nghttpd on a free loopback port, serving a two-byte file at the APNs path of token.

    nghttpd reads a POST's body and answers with the file at the request
    path (200, content-length 2), or 404 when there is none: the push
    layer's "ok" count and h2load's 2xx count show the pushes really got
    200. A thread samples /proc/net/tcp for the client ports connected to
    it, so the table can say how many connections a run used.
    """

    def __init__(self, pki, token, log):
        self.root = pki.p("htdocs")
        os.makedirs(os.path.join(self.root, "3", "device"), exist_ok=True)
        # Not empty: libcurl 7.88 resets (RST_STREAM) every stream whose answer is
        # HEADERS plus an empty DATA frame, and nghttpd's rapid-reset guard then
        # closes the connection (GOAWAY INTERNAL_ERROR, the CVE-2023-44487 stream
        # reset limit: a burst of 1000) after about 1000 streams. APNs answers
        # 200 with HEADERS only; two bytes of body keep curl from resetting.
        with open(os.path.join(self.root, "3", "device", token), "w") as f:
            f.write("{}")
        self.path = "/3/device/" + token
        self.proc = None
        for _ in range(5):  # a free port may be taken again before nghttpd binds it
            self.port = free_port()
            self.log = open(log, "w")
            self.proc = subprocess.Popen(
                ["nghttpd", "-a", "127.0.0.1", "-d", self.root, str(self.port),
                 pki.key, pki.cert], stdout=self.log, stderr=subprocess.STDOUT)
            if self._wait_listening():
                break
            self.stop()
        else:
            raise RuntimeError("nghttpd did not start (see %s)" % log)
        self.url = "https://127.0.0.1:%d" % self.port
        self.peers = set()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _wait_listening(self):
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _sample(self):
        mine = ":%04X" % self.port
        while not self._stop.wait(0.02):
            try:
                with open("/proc/net/tcp") as f:
                    for line in f.readlines()[1:]:
                        local, remote, st = line.split()[1:4]
                        # established (01), seen from the server side
                        if st == "01" and local.endswith(mine):
                            self.peers.add(remote)
            except OSError:
                pass

    def connections(self):
        return len(self.peers)

    def reset_connections(self):
        self.peers = set()

    def stop(self):
        if getattr(self, "_stop", None):
            self._stop.set()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def driver_run(L, cfg, op):
    """Run the push driver once; its bench event and its CPU time in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ev, _ = L.run_driver(cfg, [op], timeout=900, log_level="warn")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Only the driver ended in between (the servers still run): its CPU time.
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return [e for e in ev if e.get("event") == "bench"][0], cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get("SIPWAKE_BUILD_DIR",
                                                      os.path.join(SOURCE, "build")))
    ap.add_argument("--n", type=int, default=10000, help="pushes per run (1 stream: n/5)")
    ap.add_argument("--no-h2load", action="store_true")
    ap.add_argument("--conc", default="1,100,1000", help="concurrency levels, comma-separated")
    ap.add_argument("--providers", default="apns",
                    help="comma-separated: apns, webpush, webpush-empty")
    ap.add_argument("--server", default="fake,nghttpd",
                    help="comma-separated: fake (the Python fakes), nghttpd (APNs only)")
    ap.add_argument("--client", default="curl,nghttp2",
                    help="comma-separated push.http2 values: curl, nghttp2")
    args = ap.parse_args()
    servers = args.server.split(",")
    clients = args.client.split(",")
    os.environ["SIPWAKE_BUILD_DIR"] = args.build
    os.environ["SIPWAKE_SOURCE_DIR"] = SOURCE
    import pushlib as L

    rows = []
    with L.tmpdir() as d:
        pki = L.PKI(d)
        runs = [(p, int(c)) for p in args.providers.split(",") for c in args.conc.split(",")]
        for prov, conc in runs if "fake" in servers else ():
            n = args.n // 5 if conc == 1 else args.n
            op = {"op": "bench", "n": n, "concurrency": conc, "kind": "call",
                  "call_id": "bench@example.com", "from_uri": "sip:alice@example.com",
                  "from_name": "Alice", "deadline_ms": 60000}
            if prov == "apns":
                op.update(provider="apns", topic=L.BUNDLE, token=L.tok(1))
            elif prov in ("webpush", "webpush-empty"):
                op.update(provider="webpush")
                cfg = {"webpush_key": pki.vapid, "webpush_subject": "mailto:bench@example.com",
                       "webpush_ca": pki.ca}
            else:
                raise SystemExit("unknown provider " + prov)
            h2l = None
            if prov == "apns" and not args.no_h2load and shutil.which("h2load"):
                fake = L.Fake(pki, "apns", (), ["--bundle", L.BUNDLE, "--auth-key", pki.p8,
                                                "--key-id", L.KEY_ID, "--team-id", L.TEAM])
                try:
                    h2l = h2load(L, pki, fake.url, n, conc)
                finally:
                    fake.stop()
            for client in clients:
                # A fresh fake per run, so its log counts the connections of this run.
                if prov == "apns":
                    fake = L.Fake(pki, "apns", (), ["--bundle", L.BUNDLE, "--auth-key", pki.p8,
                                                    "--key-id", L.KEY_ID, "--team-id", L.TEAM])
                    cfg = L.apns_config(pki, fake.url)
                else:
                    wp = L.WebPush(pki)
                    fake = wp.fake
                    sub = wp.subscribe("bench", keys=prov == "webpush")
                    op.update(token=sub["endpoint"])
                    if "p256dh" in sub:
                        op.update(p256dh=sub["p256dh"], auth=sub["auth"])
                try:
                    b, cpu = driver_run(L, dict(cfg, http2=client), op)
                    conns = len(fake.connections())
                finally:
                    fake.stop()
                row = {"server": "fake", "provider": prov, "client": client,
                       "concurrency": conc, "n": n, "ok": b["ok"],
                       "pushes_per_s": round(b["rate"]),
                       "p50_ms": round(b["p50_ms"], 2), "p99_ms": round(b["p99_ms"], 2),
                       "connections": conns,
                       "driver_cpu_us_per_push": round(cpu * 1e6 / n, 1)}
                if h2l:
                    rate, ok = h2l
                    row["h2load_req_per_s"] = round(rate)
                    row["h2load_2xx"] = ok
                    if rate:
                        row["ratio"] = "%.3f" % (b["rate"] / rate)
                rows.append(row)
                print(json.dumps(row), flush=True)
        if "nghttpd" in servers:
            rows += nghttpd_runs(L, pki, args, [int(c) for c in args.conc.split(",")])
    print()
    print("%-8s %-14s %-8s %-12s %8s %8s %10s %9s %9s %6s %13s %14s %6s" % (
        "server", "provider", "client", "concurrency", "n", "ok", "pushes/s", "p50 ms", "p99 ms", "conns",
        "cpu us/push", "h2load req/s", "ratio"))
    for r in rows:
        print("%-8s %-14s %-8s %-12d %8d %8d %10d %9.2f %9.2f %6d %13.1f %14s %6s" % (
            r["server"], r["provider"], r["client"], r["concurrency"], r["n"], r["ok"], r["pushes_per_s"], r["p50_ms"],
            r["p99_ms"],
            r["connections"], r["driver_cpu_us_per_push"], r.get("h2load_req_per_s", "-"),
            r.get("ratio", "-")))
    return 0


def nghttpd_runs(L, pki, args, concs):
    """APNs pushes to nghttpd, h2load to the same nghttpd as the ceiling."""
    if not shutil.which("nghttpd"):
        print("nghttpd not installed (Debian: nghttp2-server): skipping the nghttpd runs",
              flush=True)
        return []
    rows = []
    token = L.tok(1)
    srv = Nghttpd(pki, token, pki.p("nghttpd.log"))
    try:
        cfg = L.apns_config(pki, srv.url)
        for conc in concs:
            n = args.n // 5 if conc == 1 else args.n
            op = {"op": "bench", "n": n, "concurrency": conc, "kind": "call",
                  "call_id": "bench@example.com", "from_uri": "sip:alice@example.com",
                  "from_name": "Alice", "deadline_ms": 60000, "provider": "apns",
                  "topic": L.BUNDLE, "token": token}
            h2l = None
            if not args.no_h2load and shutil.which("h2load"):
                # h2load is much faster than the push layer: give it more requests
                # so that its run lasts long enough to measure.
                hn = max(n, 50000) if conc > 1 else n
                h2l = h2load(L, pki, srv.url, hn, conc)
                if h2l[1] != hn:
                    print("warning: h2load got %d 2xx of %d" % (h2l[1], hn), file=sys.stderr)
            for client in args.client.split(","):
                srv.reset_connections()
                b, cpu = driver_run(L, dict(cfg, http2=client), op)
                row = {"server": "nghttpd", "provider": "apns", "client": client,
                       "concurrency": conc, "n": n,
                       "ok": b["ok"], "pushes_per_s": round(b["rate"]),
                       "p50_ms": round(b["p50_ms"], 3), "p99_ms": round(b["p99_ms"], 3),
                       "connections": srv.connections(),
                       "driver_cpu_us_per_push": round(cpu * 1e6 / n, 1)}
                if b["ok"] != n:
                    print("warning: only %d of %d pushes got 200 from nghttpd" % (b["ok"], n),
                          file=sys.stderr)
                if h2l:
                    rate, ok = h2l
                    row["h2load_req_per_s"] = round(rate)
                    row["h2load_2xx"] = ok
                    if rate:
                        row["ratio"] = "%.3f" % (b["rate"] / rate)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        srv.stop()
    return rows


if __name__ == "__main__":
    sys.exit(main())
