# SPDX-License-Identifier: MIT
"""Web Push provider (RFC 8030/8291/8292) against the fake push service:
the fake checks each VAPID signature and decrypts each payload with the
subscription's private key, so what is asserted here is what a browser
or UnifiedPush distributor would have got. Every kind of push with keys,
a push without content for a subscription without them, the headers per
kind, the VAPID token cache and its renewal, and each error answer.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib as L  # noqa: E402
from pushlib import one, send, stats  # noqa: E402

SUBJECT = "mailto:ops@example.com"


def wp(tag, sub, kind="call", **kw):
    op = send(tag, kind=kind, provider="webpush", token=sub["endpoint"], **kw)
    if "p256dh" in sub:
        op.update(p256dh=sub["p256dh"], auth=sub["auth"])
    return op


class WebPush(L.PushTestCase):
    def config(self, svc, **kw):
        cfg = {"webpush_key": self.pki.vapid, "webpush_subject": SUBJECT,
               "webpush_ca": self.pki.ca, "call_timeout": 30}
        cfg.update(kw)
        return cfg

    def test_kinds_with_payload(self):
        with L.WebPush(self.pki) as svc:
            sub = svc.subscribe("browser1")
            ev, _ = L.run_driver(self.config(svc), [
                wp("call", sub, call_id="c1@example.com"),
                wp("msg", sub, kind="message", text="Hello \u00e9t\u00e9 \u2603"),
                wp("wake", sub, kind="wakeup"),
                wp("cancel", sub, kind="cancel", call_id="c1@example.com",
                   reason="answered_elsewhere"),
                {"op": "wait"}, {"op": "stats"}])
            for tag in ("call", "msg", "wake", "cancel"):
                self.assertEqual(one(ev, tag)["result"], "ok", tag)
                self.assertEqual(one(ev, tag)["status"], 201, tag)
            got = {r["payload"]["type"]: r for r in svc.pushes("browser1")}
            self.assertEqual(sorted(got), ["call", "cancel", "message", "wakeup"])
            for r in got.values():
                self.assertEqual(r["status"], 201)
                h = r["headers"]
                self.assertEqual(h["content-encoding"], "aes128gcm")
                self.assertEqual(h["content-type"], "application/octet-stream")
                self.assertEqual(r["vapid_k"], self.pki.vapid_public)
                self.assertEqual(r["vapid_claims"]["aud"], svc.url)
                self.assertEqual(r["vapid_claims"]["sub"], SUBJECT)
                self.assertLessEqual(r["size"], 4096)
            call, msg = got["call"], got["message"]
            self.assertEqual(call["payload"]["call-id"], "c1@example.com")
            self.assertEqual(call["payload"]["from-uri"], "sip:alice@example.com")
            self.assertEqual(call["payload"]["from-name"], "Alice")
            self.assertEqual(call["payload"]["to-uri"], "sip:bob@example.com")
            self.assertEqual(msg["payload"]["text"], "Hello \u00e9t\u00e9 \u2603")
            self.assertEqual(got["cancel"]["payload"]["reason"], "answered_elsewhere")
            # TTL per kind, Urgency, Topic: the cancel replaces the call's push
            ttl = {k: r["headers"]["ttl"] for k, r in got.items()}
            self.assertEqual(ttl, {"call": "30", "message": "86400", "wakeup": "120",
                                   "cancel": "3600"})
            urg = {k: r["headers"].get("urgency") for k, r in got.items()}
            self.assertEqual(urg, {"call": "high", "message": "high", "wakeup": "normal",
                                   "cancel": "high"})
            self.assertEqual(call["headers"]["topic"], got["cancel"]["headers"]["topic"])
            self.assertEqual(len(call["headers"]["topic"]), 32)
            self.assertNotIn("topic", msg["headers"])
            self.assertEqual(got["wakeup"]["headers"]["topic"], "sipwake-wakeup")
            # one VAPID token for the origin, signed once
            self.assertEqual(len({r["headers"]["authorization"] for r in got.values()}), 1)
            st = stats(ev)["webpush"]
            self.assertEqual(st["attempts"], 4)
            self.assertEqual(st["auth_refresh"], 0)

    def test_without_keys_push_has_no_content(self):
        with L.WebPush(self.pki) as svc:
            sub = svc.subscribe("bare", keys=False)
            ev, _ = L.run_driver(self.config(svc), [
                wp("call", sub), wp("msg", sub, kind="message", text="not sent"),
                {"op": "wait"}])
            self.assertEqual(one(ev, "call")["result"], "ok")
            self.assertEqual(one(ev, "msg")["result"], "ok")
            for r in svc.pushes("bare"):
                self.assertEqual(r["size"], 0)
                self.assertNotIn("content-encoding", r["headers"])
                self.assertNotIn("payload", r)

    def test_long_message_is_cut_to_fit(self):
        with L.WebPush(self.pki) as svc:
            sub = svc.subscribe("long")
            ev, _ = L.run_driver(self.config(svc), [
                wp("msg", sub, kind="message", text="\u00e9", text_repeat=5000),
                {"op": "wait"}])
            self.assertEqual(one(ev, "msg")["result"], "ok")
            (r,) = svc.pushes("long")
            self.assertLessEqual(r["size"], 4096)
            text = r["payload"]["text"]
            self.assertTrue(text.endswith("\u2026") and len(text) > 1000, len(text))

    def test_gone_subscription_is_reported(self):
        with L.WebPush(self.pki, rules=["gone1=gone", "gone2=notfound"]) as svc:
            s1, s2 = svc.subscribe("gone1"), svc.subscribe("gone2")
            ev, _ = L.run_driver(self.config(svc), [wp("a", s1), wp("b", s2), {"op": "wait"}])
            self.assertEqual(one(ev, "a")["result"], "token_invalid")
            self.assertEqual(one(ev, "b")["result"], "token_invalid")
            dead = sorted(e["token"] for e in ev if e.get("event") == "token_invalid")
            self.assertEqual(dead, sorted([s1["endpoint"], s2["endpoint"]]))
            self.assertTrue(all(e["provider"] == "webpush" for e in ev
                                if e.get("event") == "token_invalid"))

    def test_retryable_answers(self):
        with L.WebPush(self.pki, rules=["f=flaky:2", "r=retryafter:1", "t=429"]) as svc:
            f, r, t = svc.subscribe("f"), svc.subscribe("r"), svc.subscribe("t")
            ev, _ = L.run_driver(self.config(svc), [
                wp("f", f), wp("r", r), wp("t", t, deadline_ms=1500), {"op": "wait"}])
            self.assertEqual(one(ev, "f")["result"], "ok")
            self.assertEqual(len(svc.pushes("f")), 3)
            self.assertEqual(one(ev, "r")["result"], "ok")
            ra = svc.pushes("r")
            self.assertEqual(len(ra), 2)
            self.assertGreaterEqual(ra[1]["t"] - ra[0]["t"], 0.9)  # Retry-After honoured
            self.assertEqual(one(ev, "t")["result"], "retryable")
            self.assertEqual(one(ev, "t")["status"], 429)

    def test_refused_signature(self):
        other = L.vapid_public_of(self.pki.p8)  # a key the subscription was not made for
        with L.WebPush(self.pki, rules=["e=expiredvapid", "big=toolarge"]) as svc:
            wrong = svc.subscribe("wrong", server_key=other)
            exp = svc.subscribe("e")
            big = svc.subscribe("big")
            ev, err = L.run_driver(self.config(svc), [
                wp("wrong", wrong), wp("e", exp), wp("big", big), {"op": "wait"},
                {"op": "stats"}])
            # signed again once, still refused: permanent, binding kept
            self.assertEqual(one(ev, "wrong")["result"], "permanent")
            self.assertEqual(one(ev, "wrong")["status"], 403)
            self.assertEqual(len(svc.pushes("wrong")), 2)
            self.assertIn("subscription was made for another key", err)
            # a token the service took for expired: a fresh signature goes through
            self.assertEqual(one(ev, "e")["result"], "ok")
            e = svc.pushes("e")
            self.assertEqual(len(e), 2)
            self.assertNotEqual(e[0]["headers"]["authorization"], e[1]["headers"]["authorization"])
            self.assertEqual(one(ev, "big")["result"], "permanent")
            self.assertEqual(one(ev, "big")["status"], 413)
            self.assertFalse([x for x in ev if x.get("event") == "token_invalid"])
            self.assertGreaterEqual(stats(ev)["webpush"]["auth_refresh"], 1)

    def test_not_configured(self):
        with L.WebPush(self.pki) as svc:
            sub = svc.subscribe("x")
            ev, _ = L.run_driver({"call_timeout": 30}, [wp("x", sub), {"op": "wait"}])
            refused = [e for e in ev if e.get("event") == "refused" and e["tag"] == "x"]
            self.assertEqual([e["result"] for e in refused], ["not_configured"])
            self.assertEqual(svc.pushes(), [])

    def test_unusable_vapid_key_refused(self):
        # an RSA key is no VAPID key: the driver's push_new fails and says why
        with L.WebPush(self.pki) as svc:
            _, err = L.run_driver(self.config(svc, webpush_key=self.pki.p("sa.key")), [],
                                  expect_rc=1)
            self.assertIn("is not a P-256", err)


if __name__ == "__main__":
    unittest.main()
