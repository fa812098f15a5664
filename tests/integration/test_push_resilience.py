# SPDX-License-Identifier: MIT
"""A provider that is down, silent or comes back later: pushes fail as
retryable within their deadline (or succeed once it is back) while the
event loop keeps turning; shutting down with pushes in flight is clean.
"""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib as L  # noqa: E402
from pushlib import one, results, send, stats, tok  # noqa: E402


class Resilience(L.PushTestCase):
    def test_connection_refused(self):
        port = L.free_port()  # nothing listens there
        ev, err = L.run_driver(L.apns_config(self.pki, "https://127.0.0.1:%d" % port), [
            send("c%d" % i, token=tok(i), deadline_ms=1500) for i in range(5)] + [
            {"op": "wait"}, {"op": "stats"}])
        self.assertEqual([e["result"] for e in results(ev)], ["retryable"] * 5)
        st = stats(ev)
        self.assertGreater(st["apns"]["retries"], 5)  # backoff retries within the deadline
        # The loop kept turning: the 20 ms tick ran all along.
        self.assertGreater(st["ticks"], 20)
        self.assertLess(st["max_tick_gap_ms"], 1000)

    def test_silent_server_does_not_block_the_loop(self):
        # Accepts TCP (kernel backlog) but never speaks TLS.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        try:
            url = "https://127.0.0.1:%d" % s.getsockname()[1]
            ev, _ = L.run_driver(L.apns_config(self.pki, url), [
                send("c", token=tok(1), deadline_ms=2000),
                send("m", kind="message", token=tok(2), text="x", deadline_ms=2000),
                {"op": "wait"}, {"op": "stats"}])
        finally:
            s.close()
        self.assertEqual(one(ev, "c")["result"], "retryable")
        self.assertEqual(one(ev, "c")["reason"], "timeout")
        st = stats(ev)
        self.assertGreater(st["ticks"], 50)
        self.assertLess(st["max_tick_gap_ms"], 1000)

    def test_other_traffic_flows_while_provider_hangs(self):
        # Pushes hang on a server that never speaks TLS; meanwhile datagrams
        # to a UDP socket on the same loop (standing in for SIP) are answered.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        echo_port = L.free_port()
        url = "https://127.0.0.1:%d" % silent.getsockname()[1]
        d = L.DriverProcess(L.apns_config(self.pki, url, udp_echo_port=echo_port), [
            send("c%d" % i, token=tok(i), deadline_ms=3000) for i in range(20)] + [
            {"op": "wait"}])
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(1.0)
        answered = 0
        try:
            time.sleep(0.5)  # pushes are in flight by now
            for i in range(20):
                udp.sendto(b"OPTIONS %d" % i, ("127.0.0.1", echo_port))
                try:
                    data, _ = udp.recvfrom(2048)
                    answered += data == b"OPTIONS %d" % i
                except socket.timeout:
                    pass
                time.sleep(0.05)
            ev, _ = d.finish()
        finally:
            udp.close()
            silent.close()
        self.assertEqual(answered, 20)
        self.assertEqual([e["result"] for e in results(ev)], ["retryable"] * 20)
        end = [e for e in ev if e.get("event") == "end"][0]
        self.assertEqual(end["echoes"], 20)

    def test_provider_comes_back(self):
        port = L.free_port()
        d = L.DriverProcess(L.apns_config(self.pki, "https://127.0.0.1:%d" % port), [
            send("early", token=tok(3), deadline_ms=8000), {"op": "wait"}, {"op": "stats"}])
        fake = []

        def start_later():
            time.sleep(1.0)
            fake.append(L.apns_fake(self.pki, port=port))

        t = threading.Thread(target=start_later)
        t.start()
        try:
            ev, _ = d.finish()
        finally:
            t.join()
            for f in fake:
                f.stop()
        r = one(ev, "early")
        self.assertEqual(r["result"], "ok")
        self.assertGreater(stats(ev)["apns"]["retries"], 0)
        self.assertEqual(len(fake[0].requests()), 1)

    def test_shutdown_with_pushes_in_flight(self):
        with L.apns_fake(self.pki, rules=["*=slow:5000"]) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("a%d" % i, token=tok(10 + i), deadline_ms=9000) for i in range(10)] + [
                {"op": "sleep", "ms": 300}])
            end = [e for e in ev if e.get("event") == "end"][0]
            self.assertEqual(end["outstanding"], 10)
            self.assertEqual(results(ev), [])

    def test_bounded_queue(self):
        with L.apns_fake(self.pki, rules=["*=slow:300"]) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url, queue_limit=5), [
                send("q%d" % i, token=tok(40 + i)) for i in range(8)] + [
                {"op": "wait"}, send("after", token=tok(60)), {"op": "wait"}, {"op": "stats"}])
            refused = [e for e in ev if e.get("event") == "refused"]
            self.assertEqual([(e["tag"], e["result"]) for e in refused],
                             [("q5", "retryable"), ("q6", "retryable"), ("q7", "retryable")])
            self.assertEqual(len(results(ev)), 6)  # five queued + one after they drained
            self.assertTrue(all(e["result"] == "ok" for e in results(ev)))
            self.assertEqual(stats(ev)["apns"]["queue_overflow"], 3)

    def test_mixed_answers_reload_and_detach(self):
        # Many pushes with every kind of answer, a reload while they are in
        # flight (old credentials retire when their last attempt ends), some
        # requesters gone: every push ends exactly once, dead tokens are
        # reported once, nothing is left pending (and ASan builds see no leak).
        actions = ["ok", "slow:300", "500", "dropfirst", "429", "gone", "flaky:1", "bad"]
        n = 160
        rules = {tok(1000 + i): actions[i % len(actions)] for i in range(n)}
        with L.apns_fake(self.pki) as f:
            f.set_rules(rules)
            cfg = L.apns_config(self.pki, f.url)
            ops = []
            for i in range(n):
                # A deadline far beyond what the retries need, so that a loaded CI
                # machine (every test at once) still sees every push's real end.
                ops.append(send("m%d" % i, token=tok(1000 + i), deadline_ms=15000,
                                kind=["call", "message", "wakeup", "cancel"][i % 4],
                                text="hi", reason="missed", detach=(i % 5 == 0)))
                if i == n // 2:
                    ops += [{"op": "sleep", "ms": 50}, dict({"op": "reload"}, **cfg)]
            ops += [{"op": "wait", "timeout_ms": 40000}, {"op": "drain", "timeout_ms": 20000},
                    {"op": "stats"}]
            ev, _ = L.run_driver(cfg, ops)
        got = {}
        for e in results(ev):
            got.setdefault(e["tag"], []).append(e["result"])
        expected = {"m%d" % i for i in range(n) if i % 5}
        self.assertEqual(set(got), expected)
        self.assertTrue(all(len(v) == 1 for v in got.values()))
        dead = sorted(e["token"] for e in ev if e.get("event") == "token_invalid")
        self.assertEqual(dead, sorted(t for t, a in rules.items() if a in ("gone", "bad")))
        for i in range(n):
            if i % 5 == 0:
                continue
            a, r = actions[i % len(actions)], got["m%d" % i][0]
            want = {"gone": "token_invalid", "bad": "token_invalid", "500": "retryable",
                    "429": "retryable"}.get(a, "ok")
            self.assertEqual(r, want, (i, a))
        self.assertEqual([e["rc"] for e in ev if e.get("event") == "reload"], [0])
        self.assertEqual(stats(ev)["pending"], 0)

    def test_fcm_token_endpoint_down(self):
        port = L.free_port()
        cfg = {"fcm_sa": self.pki.service_account("https://127.0.0.1:%d/token" % port),
               "fcm_url": "https://127.0.0.1:%d" % port, "fcm_ca": self.pki.ca}
        ev, _ = L.run_driver(cfg, [send("f%d" % i, provider="fcm", token="t%d" % i,
                                        deadline_ms=1200) for i in range(3)] + [{"op": "wait"}])
        self.assertEqual([e["result"] for e in results(ev)], ["retryable"] * 3)
        self.assertTrue(all(e["reason"].startswith("oauth:") for e in results(ev)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
