# SPDX-License-Identifier: MIT
"""An operator's own push service (push.http) against a fake HTTP/1.1
service that checks the path, the auth header line and the JSON body: the
default body for every kind, a custom template (placeholders in nested
strings and arrays, "${data}", values that try to break out of their
string), the answers (410 dead token, 404 permanent, 5xx and 429 retried
with Retry-After, 401/403 a credential problem) and a template with an
unknown placeholder refused at start.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib as L  # noqa: E402
from pushlib import one, send, stats  # noqa: E402

AUTH = "Authorization: Bearer s3cret-operator-key"


def hp(tag, token, kind="call", **kw):
    return send(tag, kind=kind, provider="acme", token=token, param="app-7", **kw)


class HttpService(L.PushTestCase):
    def fake(self, rules=(), token_field="token"):
        return L.Fake(self.pki, "http_push", rules, ["--path", "/v2/push", "--auth", AUTH,
                                                     "--token-field", token_field])

    def config(self, f, **kw):
        cfg = {"http_provider": "acme", "http_url": f.url + "/v2/push", "http_auth": AUTH,
               "http_ca": self.pki.ca, "call_timeout": 30}
        cfg.update(kw)
        return cfg

    def test_default_body_every_kind(self):
        with self.fake() as f:
            ev, _ = L.run_driver(self.config(f), [
                hp("call", "tok-1"), hp("msg", "tok-1", kind="message", text="hi \u00e9"),
                hp("wake", "tok-1", kind="wakeup"), hp("cancel", "tok-1", kind="cancel"),
                hp("vm", "tok-1", kind="voicemail", vm_waiting=True, vm_new=3, vm_old=1),
                {"op": "wait"}])
            for tag in ("call", "msg", "wake", "cancel", "vm"):
                self.assertEqual(one(ev, tag)["result"], "ok", tag)
            got = {r["body"]["data"]["type"]: r for r in f.requests()}
            self.assertEqual(sorted(got), ["call", "cancel", "message", "voicemail", "wakeup"])
            for r in got.values():
                self.assertEqual(r["version"], "HTTP/1.1")
                self.assertEqual(r["headers"]["authorization"], AUTH.split(": ", 1)[1])
                self.assertEqual(r["body"]["token"], "tok-1")
                self.assertEqual(r["body"]["param"], "app-7")
                self.assertEqual(set(r["body"]), {"token", "param", "ttl", "data"})
            self.assertEqual(got["call"]["body"]["ttl"], "30")
            self.assertEqual(got["message"]["body"]["ttl"], "86400")
            self.assertEqual(got["call"]["body"]["data"]["from-name"], "Alice")
            self.assertEqual(got["message"]["body"]["data"]["text"], "hi \u00e9")
            self.assertEqual(got["cancel"]["body"]["data"]["reason"], "missed")
            vm = got["voicemail"]["body"]["data"]
            self.assertEqual((vm["messages-waiting"], vm["voice-new"], vm["voice-old"]),
                             ("yes", "3", "1"))

    def test_template(self):
        tmpl = {"to": "${token}", "priority": "high", "n": 5, "flag": True,
                "notification": {"kind": "${type}", "who": "${from_name} <${from_uri}>",
                                 "ids": ["${call_id}", "x-${param}"]},
                "payload": "${data}", "literal": "$5 and ${ttl}s"}
        with self.fake(token_field="to") as f:
            ev, _ = L.run_driver(self.config(f, http_body=json.dumps(tmpl)), [
                hp("call", "tok-2", from_name='Eve"}, "to": "victim', call_id="c9@x"),
                {"op": "wait"}])
            self.assertEqual(one(ev, "call")["result"], "ok")
            (r,) = f.requests()
            b = r["body"]
            self.assertEqual(b["to"], "tok-2")
            self.assertEqual((b["priority"], b["n"], b["flag"]), ("high", 5, True))
            self.assertEqual(b["notification"]["kind"], "call")
            self.assertEqual(b["notification"]["who"],
                             'Eve"}, "to": "victim <sip:alice@example.com>')
            self.assertEqual(b["notification"]["ids"], ["c9@x", "x-app-7"])
            self.assertEqual(b["payload"]["call-id"], "c9@x")
            self.assertEqual(b["literal"], "$5 and 30s")

    def test_answers(self):
        rules = ["g=gone", "n=notfound", "f=flaky:2", "r=retryafter:1", "t=429", "c=created"]
        with self.fake(rules) as f:
            ev, _ = L.run_driver(self.config(f), [
                hp("g", "g"), hp("n", "n"), hp("f", "f"), hp("r", "r"),
                hp("t", "t", deadline_ms=1500), hp("c", "c"), {"op": "wait"}])
            self.assertEqual(one(ev, "g")["result"], "token_invalid")
            # a 404 may be a wrong URL: permanent, the binding stays
            self.assertEqual(one(ev, "n")["result"], "permanent")
            self.assertEqual(one(ev, "n")["status"], 404)
            dead = sorted(e["token"] for e in ev if e.get("event") == "token_invalid")
            self.assertEqual(dead, ["g"])
            self.assertEqual(one(ev, "f")["result"], "ok")
            self.assertEqual(len([r for r in f.requests() if r.get("token") == "f"]), 3)
            self.assertEqual(one(ev, "r")["result"], "ok")
            ra = [r for r in f.requests() if r.get("token") == "r"]
            self.assertEqual(len(ra), 2)
            self.assertGreaterEqual(ra[1]["t"] - ra[0]["t"], 0.9)
            self.assertEqual(one(ev, "t")["result"], "retryable")
            self.assertEqual(one(ev, "c")["result"], "ok")
            self.assertEqual(one(ev, "c")["status"], 201)

    def test_credentials_refused(self):
        with self.fake() as f:
            ev, err = L.run_driver(self.config(f, http_auth="Authorization: Bearer wrong"),
                                   [hp("x", "tok-3"), {"op": "wait"}, {"op": "stats"}])
            self.assertEqual(one(ev, "x")["result"], "permanent")
            self.assertEqual(one(ev, "x")["status"], 403)
            self.assertIn("CREDENTIAL PROBLEM", err)
            self.assertEqual(stats(ev)["http"]["auth_failures"], 1)

    def test_unknown_placeholder(self):
        with self.fake() as f:
            _, err = L.run_driver(self.config(f, http_body='{"t": "${tokn}"}'), [],
                                  expect_rc=1)
            self.assertIn('unknown or unclosed placeholder at "${tokn}"', err)
            self.assertEqual(f.requests(), [])


if __name__ == "__main__":
    unittest.main()
