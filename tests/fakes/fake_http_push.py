# SPDX-License-Identifier: MIT
"""A fake operator push service (push.http) for tests: HTTP/1.1 over TLS.

POST --path only, with Content-Type application/json, the --auth header
line exactly (401 without it, 403 with another value), and a body that is
a JSON object of at most 16 KiB. The device token is read from the body
at --token-field (dotted path, default "token"); per-token ACTIONs as in
the other fakes: ok (200), created (201), gone (410), notfound (404), 429,
500, 503, slow:MS, flaky:N (N times 503, then ok), retryafter:S (429 with
Retry-After once). Every request is logged as a JSON line with its
headers, its parsed body and the HTTP version it came in.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2fake  # noqa: E402


def dig(obj, path):
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def make_handler(args, fake, lock):
    want_name, _, want_value = (args.auth or "").partition(":")
    want_name, want_value = want_name.strip().lower(), want_value.strip()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, body=None, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer(405, {"error": "method"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if 0 < n <= 1 << 20 else b""
            rec = {"method": "POST", "path": self.path, "version": self.request_version,
                   "size": len(raw),
                   "headers": {k.lower(): v for k, v in self.headers.items()}}
            status, body, hdrs, delay = self.judge(raw, rec)
            rec["status"] = status
            with lock:
                fake.write(rec)
            if delay:
                time.sleep(delay / 1000.0)
            self.answer(status, body, hdrs)

        def judge(self, raw, rec):
            h = rec["headers"]
            if self.path != args.path:
                return 404, {"error": "path"}, (), 0
            if want_name:
                if want_name not in h:
                    return 401, {"error": "no credentials"}, (), 0
                if h[want_name] != want_value:
                    return 403, {"error": "bad credentials"}, (), 0
            if h.get("content-type", "").split(";")[0].strip() != "application/json":
                return 415, {"error": "content-type"}, (), 0
            if len(raw) > 16384:
                return 413, {"error": "too large"}, (), 0
            try:
                body = json.loads(raw.decode("utf-8"))
            except Exception:
                return 400, {"error": "not JSON"}, (), 0
            if not isinstance(body, dict):
                return 400, {"error": "not an object"}, (), 0
            rec["body"] = body
            token = dig(body, args.token_field)
            if not isinstance(token, str) or not token:
                return 400, {"error": "no token at " + args.token_field}, (), 0
            rec["token"] = token
            with lock:
                action, n = fake.rule_for(token)
            rec["action"] = action
            if action == "ok":
                return 200, {"id": "m-%d" % time.time_ns()}, (), 0
            if action == "created":
                return 201, None, (), 0
            if action == "gone":
                return 410, {"error": "unregistered"}, (), 0
            if action == "notfound":
                return 404, {"error": "unknown token"}, (), 0
            if action in ("429", "500", "503"):
                return int(action), {"error": action}, (), 0
            if action.startswith("slow:"):
                return 200, {"id": "slow"}, (), int(action[5:])
            if action.startswith("flaky:"):
                if n <= int(action[6:]):
                    return 503, {"error": "flaky"}, (), 0
                return 200, {"id": "ok"}, (), 0
            if action.startswith("retryafter:"):
                if n == 1:
                    return 429, {"error": "slow down"}, [("Retry-After", action[11:])], 0
                return 200, {"id": "ok"}, (), 0
            return 500, {"error": "unknown fake action"}, (), 0

    return Handler


def main():
    ap = h2fake.common_args(__doc__.splitlines()[0])
    ap.add_argument("--path", default="/push")
    ap.add_argument("--auth", help='the header line required, "Name: value"')
    ap.add_argument("--token-field", default="token")
    args = ap.parse_args()
    fake = h2fake.Fake(args, None)
    lock = threading.Lock()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                          make_handler(args, fake, lock))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
