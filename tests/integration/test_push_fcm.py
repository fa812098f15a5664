# SPDX-License-Identifier: MIT
"""FCM HTTP v1 provider against the fake FCM and its OAuth2 token endpoint:
data-only messages of every kind, the in-process RS256 assertion, access
token caching and refresh (expiry, 401), and each error answer.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib as L  # noqa: E402
from pushlib import one, results, send, stats  # noqa: E402

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class FCM(L.PushTestCase):
    def fake(self, rules=(), ttl=3599, sa=None, aud=GOOGLE_TOKEN_URI):
        sa = sa or self.pki.service_account(GOOGLE_TOKEN_URI)
        extra = ["--service-account", sa, "--token-ttl", str(ttl), "--aud", aud]
        return L.Fake(self.pki, "fcm", rules, extra)

    def config(self, f, **kw):
        # The account says token_uri = Google; fcm.token_url points to the fake.
        cfg = {"fcm_sa": self.pki.service_account(GOOGLE_TOKEN_URI), "fcm_url": f.url,
               "fcm_token_url": f.url + "/token", "fcm_ca": self.pki.ca, "call_timeout": 30}
        cfg.update(kw)
        return cfg

    def sends(self, f):
        return [r for r in f.requests() if r.get("kind") == "send"]

    def tokens(self, f):
        return [r for r in f.requests() if r.get("kind") == "token"]

    def test_kinds_and_token_cache(self):
        with self.fake() as f:
            ev, err = L.run_driver(self.config(f), [
                send("call", provider="fcm", token="fcm-a"),
                send("msg", kind="message", provider="fcm", token="fcm-a", text="Hello \u00e9"),
                send("wake", kind="wakeup", provider="fcm", token="fcm-a"),
                send("cancel", kind="cancel", provider="fcm", token="fcm-a", reason="missed"),
                {"op": "wait"}])
            for tag in ("call", "msg", "wake", "cancel"):
                self.assertEqual(one(ev, tag)["result"], "ok", tag)
            toks = self.tokens(f)
            self.assertEqual(len(toks), 1)  # one OAuth token for all four
            claims = toks[0]["assertion_claims"]
            self.assertEqual(claims["iss"], L.EMAIL)
            self.assertEqual(claims["aud"], GOOGLE_TOKEN_URI)
            self.assertEqual(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging")
            self.assertEqual(toks[0]["assertion_header"]["alg"], "RS256")
            sends = self.sends(f)
            self.assertEqual(len(sends), 4)
            self.assertEqual({s["bearer"] for s in sends}, {toks[0]["issued"]})
            by_type = {s["body"]["message"]["data"]["type"]: s for s in sends}
            self.assertEqual(set(by_type), {"call", "message", "wakeup", "cancel"})
            for s in sends:
                self.assertEqual(s["path"], "/v1/projects/%s/messages:send" % L.PROJECT)
                m = s["body"]["message"]
                self.assertEqual(m["token"], "fcm-a")
                self.assertNotIn("notification", m)
                self.assertEqual(m["android"]["priority"], "HIGH")
            call = by_type["call"]["body"]["message"]
            self.assertEqual(call["android"]["ttl"], "30s")
            self.assertEqual(call["data"]["call-id"], "call-call@example.com")
            self.assertEqual(call["data"]["from-uri"], "sip:alice@example.com")
            self.assertEqual(call["data"]["from-name"], "Alice")
            self.assertEqual(by_type["message"]["body"]["message"]["data"]["text"], "Hello \u00e9")
            self.assertEqual(by_type["cancel"]["body"]["message"]["data"]["reason"], "missed")
            # Secrets never reach the log: access token, assertion, registration token.
            self.assertNotIn(toks[0]["issued"], err)
            self.assertNotIn(toks[0]["assertion_header"]["kid"] + "\"", err)
            self.assertNotIn("fcm-a", err)

    def test_long_message_cut(self):
        text = "\u043f\u0440\u0438\u0432\u0435\u0442 " * 1000
        with self.fake() as f:
            ev, _ = L.run_driver(self.config(f), [
                send("m", kind="message", provider="fcm", token="fcm-b", text=text),
                {"op": "wait"}])
            self.assertEqual(one(ev, "m")["result"], "ok")
            s = self.sends(f)[0]
            self.assertLessEqual(s["size"], 4096)
            got = s["body"]["message"]["data"]["text"]
            self.assertTrue(got.endswith("\u2026") and text.startswith(got[:-1]))

    def test_token_refreshed_before_expiry(self):
        # Tokens live 302 s: renewed from 5 min before expiry, so after 2 s
        # here; the push that notices it still goes out with the old token
        # (valid for 5 more minutes) while the new one is fetched.
        with self.fake(ttl=302) as f:
            ev, _ = L.run_driver(self.config(f), [
                send("a", provider="fcm", token="fcm-c"), send("b", provider="fcm", token="fcm-c",
                                                              kind="message"), {"op": "wait"},
                {"op": "sleep", "ms": 2300},
                send("c", provider="fcm", token="fcm-c", kind="wakeup"), {"op": "wait"},
                {"op": "sleep", "ms": 1000},  # the background renewal lands meanwhile
                send("d", provider="fcm", token="fcm-c", kind="cancel"), {"op": "wait"},
                {"op": "stats"}])
            self.assertTrue(all(e["result"] == "ok" for e in results(ev)))
            toks = self.tokens(f)
            self.assertEqual(len(toks), 2)
            bearers = [s["bearer"] for s in self.sends(f)]
            self.assertEqual(bearers, [toks[0]["issued"]] * 3 + [toks[1]["issued"]])
            self.assertEqual(stats(ev)["fcm"]["auth_refresh"], 1)

    def test_expired_token_is_not_used(self):
        # A token with less than 30 s left is never sent: the push waits for a new one.
        with self.fake(ttl=20) as f:
            ev, _ = L.run_driver(self.config(f), [
                send("a", provider="fcm", token="fcm-e"), {"op": "wait"},
                send("b", provider="fcm", token="fcm-e"), {"op": "wait"}])
            self.assertTrue(all(e["result"] == "ok" for e in results(ev)))
            toks = self.tokens(f)
            self.assertEqual(len(toks), 2)
            self.assertEqual([s["bearer"] for s in self.sends(f)], [t["issued"] for t in toks])

    def test_refresh_once_on_401(self):
        with self.fake(rules=["fcm-r=revoke", "fcm-u=unauth"]) as f:
            ev, err = L.run_driver(self.config(f), [
                send("r", provider="fcm", token="fcm-r"), {"op": "wait"},
                send("ok", provider="fcm", token="fcm-ok"), {"op": "wait"},
                send("u", provider="fcm", token="fcm-u"), {"op": "wait"}, {"op": "stats"}])
            self.assertEqual(one(ev, "r")["result"], "ok")
            self.assertEqual(one(ev, "ok")["result"], "ok")
            u = one(ev, "u")
            self.assertEqual(u["result"], "permanent")
            self.assertEqual(u["status"], 401)
            self.assertIn("CREDENTIAL PROBLEM", err)
            # revoke: 401, new token, resent; unauth: 401, new token, 401 again.
            self.assertEqual(len(self.tokens(f)), 3)
            self.assertEqual([s["status"] for s in self.sends(f) if s["token"] == "fcm-u"],
                             [401, 401])
            self.assertEqual(stats(ev)["fcm"]["auth_failures"], 1)

    def test_answers(self):
        rules = {"f-unreg": "unregistered", "f-inv": "invalid", "f-429": "429", "f-500": "500",
                 "f-flaky": "flaky:2", "f-slow": "slow:3000", "f-404": "notfound"}
        with self.fake() as f:
            f.set_rules(rules)
            ev, _ = L.run_driver(self.config(f), [
                send(t, provider="fcm", token=t, deadline_ms=1500 if t != "f-flaky" else 5000)
                for t in rules] + [{"op": "wait"}, {"op": "stats"}])
            res = {e["tag"]: e for e in results(ev)}
            self.assertEqual(res["f-unreg"]["result"], "token_invalid")
            self.assertEqual(res["f-unreg"]["reason"], "UNREGISTERED")
            self.assertEqual([e["token"] for e in ev if e.get("event") == "token_invalid"],
                             ["f-unreg"])
            self.assertEqual(res["f-inv"]["result"], "permanent")
            self.assertEqual(res["f-404"]["result"], "permanent")  # no binding removed
            self.assertEqual(res["f-429"]["result"], "retryable")
            self.assertEqual(res["f-500"]["result"], "retryable")
            self.assertEqual(res["f-flaky"]["result"], "ok")
            self.assertEqual(res["f-slow"]["reason"], "timeout")
            n = {t: len([s for s in self.sends(f) if s["token"] == t]) for t in rules}
            self.assertEqual(n["f-unreg"], 1)
            self.assertEqual(n["f-inv"], 1)
            self.assertGreater(n["f-429"], 1)
            self.assertEqual(n["f-flaky"], 3)
            self.assertEqual(stats(ev)["fcm"]["tokens_removed"], 1)

    def test_retry_after_is_honoured(self):
        with self.fake(rules=["f-ra=retryafter:1"]) as f:
            ev, _ = L.run_driver(self.config(f), [
                send("ra", provider="fcm", token="f-ra", deadline_ms=5000), {"op": "wait"}])
            self.assertEqual(one(ev, "ra")["result"], "ok")
            tries = [s for s in self.sends(f) if s["token"] == "f-ra"]
            self.assertEqual([s["status"] for s in tries], [429, 200])
            self.assertGreaterEqual(tries[1]["t"] - tries[0]["t"], 0.95)  # not the 100 ms backoff

    def test_token_uri_from_account(self):
        # No fcm.token_url: the assertion goes to the account's own token_uri.
        port = L.free_port()
        uri = "https://127.0.0.1:%d/token" % port
        sa = self.pki.service_account(uri, name="sa-own.json")
        with L.Fake(self.pki, "fcm", (), ["--service-account", sa, "--aud", uri], port=port) as f:
            ev, _ = L.run_driver({"fcm_sa": sa, "fcm_url": f.url, "fcm_ca": self.pki.ca},
                                 [send("a", provider="fcm", token="fcm-own"), {"op": "wait"}])
            self.assertEqual(one(ev, "a")["result"], "ok")
            self.assertEqual(self.tokens(f)[0]["assertion_claims"]["aud"], uri)

    def test_wrong_key_is_a_credential_problem(self):
        # The fake knows a different account key: Google refuses the assertion.
        d = self.pki.p("otherkey")
        os.makedirs(d, exist_ok=True)
        L.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", "k.pem", cwd=d)
        with open(os.path.join(d, "k.pem")) as fh:
            pem = fh.read()
        with open(self.pki.service_account(GOOGLE_TOKEN_URI)) as fh:
            sa = json.load(fh)
        sa["private_key"] = pem
        wrong = self.pki.p("sa-wrong.json")
        with open(wrong, "w") as fh:
            json.dump(sa, fh)
        with self.fake(sa=wrong) as f:
            ev, err = L.run_driver(self.config(f), [
                send("a", provider="fcm", token="fcm-w"), {"op": "wait"}, {"op": "stats"}])
            self.assertEqual(one(ev, "a")["result"], "permanent")
            self.assertIn("invalid_grant", one(ev, "a")["reason"])
            self.assertIn("CREDENTIAL PROBLEM", err)
            self.assertEqual(self.sends(f), [])

    def test_service_account_errors(self):
        for field in ("project_id", "client_email", "private_key"):
            sa = self.pki.service_account(GOOGLE_TOKEN_URI, name="sa-no-%s.json" % field,
                                          **{field: True})
            ev, err = L.run_driver({"fcm_sa": sa}, [], expect_rc=1)
            self.assertEqual(ev, [{"event": "init_failed"}])
            self.assertIn('missing field "%s"' % field, err)
        sa = self.pki.service_account(GOOGLE_TOKEN_URI, name="sa-open.json")
        os.chmod(sa, 0o644)
        ev, err = L.run_driver({"fcm_sa": sa}, [], expect_rc=1)
        self.assertIn("accessible by others", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
