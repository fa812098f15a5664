# SPDX-License-Identifier: MIT
"""APNs provider against the fake APNs: every push kind as Apple documents
it, each answer's handling, JWT reuse and refresh, multiplexing on one
connection, sandbox routing, certificate auth, rate limit, reload, detach.
"""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib as L  # noqa: E402
from pushlib import one, results, send, stats, tok  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class APNs(L.PushTestCase):
    def by_token(self, fake, token):
        return [r for r in fake.requests() if r.get("token") == token]

    def test_kinds_on_the_wire(self):
        voip, remote = tok(100), tok(101)
        with L.apns_fake(self.pki) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("voip", token=remote, voip_token=voip),
                send("alertcall", token=tok(102)),
                send("msg", kind="message", token=remote, voip_token=voip, text="Hi Bob"),
                send("wake", kind="wakeup", token=remote, voip_token=voip),
                send("missed", kind="cancel", token=remote, reason="missed"),
                send("elsewhere", kind="cancel", token=tok(103), reason="answered_elsewhere"),
                {"op": "wait"}])
            for tag in ("voip", "alertcall", "msg", "wake", "missed", "elsewhere"):
                self.assertEqual(one(ev, tag)["result"], "ok", tag)
            reqs = f.requests()
            self.assertEqual(len(reqs), 6)
            by_cid = {r["payload"]["call-id"]: r for r in reqs}
            for r in reqs:
                h = r["headers"]
                self.assertTrue(UUID_RE.match(h["apns-id"]), h["apns-id"])
                self.assertEqual(h["content-type"], "application/json")
                self.assertEqual(r["status"], 200)

            r = by_cid["call-voip@example.com"]
            self.assertEqual(r["token"], voip)  # Linphone two-token: VoIP token for calls
            self.assertEqual(r["headers"]["apns-push-type"], "voip")
            self.assertEqual(r["headers"]["apns-topic"], L.BUNDLE + ".voip")
            self.assertEqual(r["headers"]["apns-priority"], "10")
            self.assertEqual(r["headers"]["apns-expiration"], "0")
            self.assertEqual(r["headers"]["apns-collapse-id"], "call-voip@example.com")
            self.assertEqual(r["payload"]["from-uri"], "sip:alice@example.com")
            self.assertEqual(r["payload"]["from-name"], "Alice")
            self.assertEqual(r["payload"]["type"], "call")

            r = by_cid["call-alertcall@example.com"]
            self.assertEqual(r["headers"]["apns-push-type"], "alert")
            self.assertEqual(r["headers"]["apns-topic"], L.BUNDLE)
            self.assertEqual(r["headers"]["apns-expiration"], "0")
            self.assertIn("alert", r["payload"]["aps"])

            r = by_cid["call-msg@example.com"]
            self.assertEqual(r["token"], remote)  # remote token for messages
            self.assertEqual(r["headers"]["apns-push-type"], "alert")
            self.assertEqual(r["payload"]["aps"]["alert"], {"title": "Alice", "body": "Hi Bob"})
            self.assertNotEqual(r["headers"]["apns-expiration"], "0")

            r = by_cid["call-wake@example.com"]
            self.assertEqual(r["token"], remote)
            self.assertEqual(r["headers"]["apns-push-type"], "background")
            self.assertEqual(r["headers"]["apns-priority"], "5")
            self.assertEqual(r["payload"]["aps"], {"content-available": 1})

            r = by_cid["call-missed@example.com"]
            self.assertEqual(r["payload"]["reason"], "missed")
            self.assertEqual(r["payload"]["aps"]["alert"]["body"], "Missed call")
            self.assertEqual(r["headers"]["apns-collapse-id"], "call-missed@example.com")
            r = by_cid["call-elsewhere@example.com"]
            self.assertEqual(r["payload"]["reason"], "answered_elsewhere")

    def test_message_text_cut_on_utf8_boundary(self):
        text = "Grüße 😀 " * 2000  # ~25 KB of multi-byte text
        long_cid = "x" * 200 + "@example.com"
        with L.apns_fake(self.pki) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("long", kind="message", token=tok(110), text=text, call_id=long_cid),
                send("bad", kind="message", token=tok(111), text="caf\u00e9"),
                {"op": "wait"}])
            self.assertEqual(one(ev, "long")["result"], "ok")
            r = self.by_token(f, tok(110))[0]
            self.assertLessEqual(r["size"], 4096)
            self.assertGreater(r["size"], 3500)  # cut to fit, not dropped
            body = r["payload"]["aps"]["alert"]["body"]
            self.assertTrue(body.endswith("\u2026"))
            self.assertTrue(text.startswith(body[:-1]))
            # Long Call-IDs become a 64-character digest in apns-collapse-id.
            self.assertEqual(len(r["headers"]["apns-collapse-id"]), 64)
            self.assertEqual(r["payload"]["call-id"], long_cid)

    def test_answers(self):
        rules = {tok(1): "bad", tok(2): "topic", tok(3): "gone", tok(4): "429", tok(5): "500",
                 tok(6): "flaky:2", tok(7): "forbidden", tok(8): "slow:3000", tok(9): "slow:300",
                 tok(12): "503"}
        with L.apns_fake(self.pki) as f:
            f.set_rules(rules)
            ops = [send("t%d" % i, token=tok(i), deadline_ms=1500 if i in (4, 5, 8, 12)
                        else 5000) for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12)]
            ev, err = L.run_driver(L.apns_config(self.pki, f.url), ops + [{"op": "wait"},
                                                                           {"op": "stats"}])
            res = {e["tag"]: e for e in results(ev)}
            for i in (1, 2, 3):
                self.assertEqual(res["t%d" % i]["result"], "token_invalid", i)
            self.assertEqual(res["t1"]["reason"], "BadDeviceToken")
            self.assertEqual(res["t2"]["reason"], "DeviceTokenNotForTopic")
            self.assertEqual(res["t3"]["status"], 410)
            invalid = sorted(e["token"] for e in ev if e.get("event") == "token_invalid")
            self.assertEqual(invalid, sorted([tok(1), tok(2), tok(3)]))
            for i in (4, 5, 12):
                self.assertEqual(res["t%d" % i]["result"], "retryable", i)
                self.assertGreater(len(self.by_token(f, tok(i))), 1, "retried %d" % i)
            self.assertEqual(res["t4"]["status"], 429)
            self.assertEqual(res["t6"]["result"], "ok")
            self.assertEqual(len(self.by_token(f, tok(6))), 3)
            self.assertEqual(res["t7"]["result"], "permanent")
            self.assertEqual(len(self.by_token(f, tok(7))), 1)  # never retried
            self.assertIn("CREDENTIAL PROBLEM", err)
            self.assertEqual(res["t8"]["result"], "retryable")
            self.assertEqual(res["t8"]["reason"], "timeout")
            self.assertEqual(res["t9"]["result"], "ok")
            st = stats(ev)["apns"]
            self.assertEqual(st["tokens_removed"], 3)
            self.assertEqual(st["auth_failures"], 1)
            self.assertGreater(st["retries"], 0)
            self.assertEqual(st["results"]["call/token_invalid"], 3)
            # Tokens are never logged whole.
            for t in rules:
                self.assertNotIn(t, err)

    def test_dropped_connection(self):
        # A drop kills the shared connection: every stream on it is retried
        # on a new one; a token that is always dropped fails as retryable.
        rules = {tok(10): "drop", tok(11): "dropfirst", tok(13): "slow:200"}
        with L.apns_fake(self.pki) as f:
            f.set_rules(rules)
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("slow", token=tok(13)), send("t11", token=tok(11)), {"op": "wait"},
                send("t10", token=tok(10), deadline_ms=1500), {"op": "wait"}])
            self.assertEqual(one(ev, "slow")["result"], "ok", (one(ev, "slow"), f.records()))
            self.assertEqual(one(ev, "t11")["result"], "ok")
            self.assertEqual(len(self.by_token(f, tok(11))), 2)
            self.assertEqual(one(ev, "t10")["result"], "retryable")
            self.assertGreater(len(self.by_token(f, tok(10))), 1)
            self.assertGreater(len(f.connections()), 2)

    def test_jwt_reused_and_refreshed(self):
        with L.apns_fake(self.pki, rules=[tok(21) + "=expired"]) as f:
            ops = [send("a%d" % i, token=tok(20)) for i in range(20)]
            ops += [{"op": "wait"}, send("exp", token=tok(21)), {"op": "wait"}]
            ops += [send("b%d" % i, token=tok(22)) for i in range(5)]
            ops += [{"op": "wait"}, {"op": "stats"}]
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), ops)
            self.assertTrue(all(e["result"] == "ok" for e in results(ev)))
            self.assertEqual(len(results(ev)), 26)
            reqs = f.requests()
            first = {r["jwt"] for r in reqs if r["token"] == tok(20)}
            self.assertEqual(len(first), 1)  # one JWT for 20 pushes
            exp = self.by_token(f, tok(21))
            self.assertEqual([r["reason"] for r in exp], ["ExpiredProviderToken", None])
            self.assertEqual(exp[0]["jwt"], first.pop())
            self.assertNotEqual(exp[1]["jwt"], exp[0]["jwt"])  # regenerated
            after = {r["jwt"] for r in reqs if r["token"] == tok(22)}
            self.assertEqual(after, {exp[1]["jwt"]})
            for r in reqs:
                self.assertEqual(r["jwt_header"], {"alg": "ES256", "kid": L.KEY_ID})
                self.assertEqual(r["jwt_claims"]["iss"], L.TEAM)
            self.assertEqual(stats(ev)["apns"]["auth_refresh"], 1)

    def test_many_streams_one_connection(self):
        n = 300
        gate = 90  # fewer than the 100 streams sipwake keeps open on one connection
        with L.apns_fake(self.pki, rules=["*=gate:%d" % gate]) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                {"op": "send", "tag": "m", "kind": "call", "provider": "apns", "topic": L.BUNDLE,
                 "token": tok(30), "call_id": "c", "deadline_ms": 40000, "count": n},
                {"op": "wait"}])
            # The fake answers nothing until 90 requests are open at once on
            # the connection (else 500 GateTimeout, and retries would show in
            # the log): all delivered in one gate proves they were multiplexed,
            # without measuring time.
            self.assertEqual([e["result"] for e in results(ev)], ["ok"] * n)
            self.assertEqual(len(f.connections()), 1)
            reqs = f.requests()
            self.assertEqual(len(reqs), n)
            self.assertEqual({r["conn"] for r in reqs}, {1})
            gates = [r for r in f.records() if r.get("event") == "gate_open"]
            self.assertEqual(len(gates), 1)
            self.assertFalse(gates[0]["timeout"])
            self.assertGreaterEqual(gates[0]["held"], gate)

    def test_sandbox_routing(self):
        with L.apns_fake(self.pki, name="prod") as prod, \
                L.apns_fake(self.pki, name="sandbox") as sb:
            ev, _ = L.run_driver(L.apns_config(self.pki, prod.url, sb.url), [
                send("p", token=tok(40)), send("s", provider="apns.dev", token=tok(41)),
                {"op": "wait"}])
            self.assertEqual(one(ev, "p")["result"], "ok")
            self.assertEqual(one(ev, "s")["result"], "ok")
            self.assertEqual([r["token"] for r in prod.requests()], [tok(40)])
            self.assertEqual([r["token"] for r in sb.requests()], [tok(41)])

    def test_certificate_auth(self):
        with L.apns_fake(self.pki, cert_auth=True) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url, cert_auth=True), [
                send("c", token=tok(50), voip_token=tok(51)), {"op": "wait"}])
            self.assertEqual(one(ev, "c")["result"], "ok")
            r = f.requests()[0]
            self.assertIsNone(r["jwt"])
            self.assertEqual(r["client_cert"]["userId"], L.BUNDLE)

    def test_rate_limit(self):
        with L.apns_fake(self.pki) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url, min_interval=2), [
                send("c1", token=tok(60)), send("c2", token=tok(60)),
                send("m1", kind="message", token=tok(60), text="x"),
                send("o1", token=tok(61)), {"op": "wait"}, {"op": "stats"}])
            self.assertEqual(one(ev, "c1")["result"], "ok")
            refused = [e for e in ev if e.get("event") == "refused"]
            self.assertEqual([(e["tag"], e["result"]) for e in refused], [("c2", "rate_limited")])
            self.assertEqual(one(ev, "m1")["result"], "ok")
            self.assertEqual(one(ev, "o1")["result"], "ok")
            self.assertEqual(len(f.requests()), 3)
            self.assertEqual(stats(ev)["apns"]["results"]["call/rate_limited"], 1)
        with L.apns_fake(self.pki) as f:  # allowed again once the interval has passed
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url, min_interval=1), [
                send("c1", token=tok(62)), {"op": "wait"}, {"op": "sleep", "ms": 1100},
                send("c2", token=tok(62)), {"op": "wait"}])
            self.assertEqual([e["result"] for e in results(ev)], ["ok", "ok"])

    def test_detached_request_completes_quietly(self):
        with L.apns_fake(self.pki, rules=[tok(70) + "=slow:300", tok(71) + "=gone"]) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("d", token=tok(70), detach=True), send("g", token=tok(71), detach=True),
                {"op": "sleep", "ms": 800}, {"op": "stats"}])
            self.assertEqual(results(ev), [])
            self.assertEqual(len(f.requests()), 2)
            st = stats(ev)
            self.assertEqual(st["pending"], 0)
            self.assertEqual(st["apns"]["results"]["call/ok"], 1)
            # The registrar still hears about a dead token.
            self.assertEqual([e["token"] for e in ev if e.get("event") == "token_invalid"],
                             [tok(71)])

    def test_unusable_identities_refused(self):
        with L.apns_fake(self.pki) as f:
            ev, _ = L.run_driver(L.apns_config(self.pki, f.url), [
                send("voiponly", kind="message", token=None, voip_token=tok(80), text="x"),
                send("nothex", token="zz" * 32), send("notopic", token=tok(81), topic=None),
                send("fcm", provider="fcm", token="abc"), {"op": "wait"}])
            refused = {e["tag"]: e["result"] for e in ev if e.get("event") == "refused"}
            self.assertEqual(refused, {"voiponly": "permanent", "nothex": "permanent",
                                       "notopic": "permanent", "fcm": "not_configured"})
            self.assertEqual(f.requests(), [])

    def test_key_file_permissions_and_reload(self):
        loose = self.pki.p("loose.p8")
        shutil.copy(self.pki.p8, loose)
        os.chmod(loose, 0o644)
        ev, err = L.run_driver(L.apns_config(self.pki, "https://127.0.0.1:1", apns_key=loose),
                               [], expect_rc=1)
        self.assertEqual(ev, [{"event": "init_failed"}])
        self.assertIn("loose.p8: key file is accessible by others", err)
        with L.apns_fake(self.pki) as f:
            ev, err = L.run_driver(L.apns_config(self.pki, f.url, apns_key_id="WRONGKEY00"), [
                send("before", token=tok(90)), {"op": "wait"},
                {"op": "reload", "apns_key": loose},
                {"op": "reload", "apns_key_id": L.KEY_ID, "apns_key": self.pki.p8},
                send("after", token=tok(91)), {"op": "wait"}])
            self.assertEqual(one(ev, "before")["result"], "permanent")
            self.assertEqual(one(ev, "before")["reason"], "InvalidProviderToken")
            self.assertEqual([e["rc"] for e in ev if e.get("event") == "reload"], [-1, 0])
            self.assertIn("accessible by others", err)
            self.assertEqual(one(ev, "after")["result"], "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
