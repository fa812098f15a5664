# SPDX-License-Identifier: MIT
"""A fake FCM HTTP v1 endpoint and OAuth2 token endpoint for tests.

POST /token takes the RS256 JWT-bearer assertion of the service account
(--service-account) and checks it like Google does (signature with the
account's public key, iss = client_email, aud, scope, iat/exp) before
issuing a bearer token valid --token-ttl seconds. POST
/v1/projects/{project_id}/messages:send requires a live bearer token and a
data-only message (token, string data, android.priority HIGH, android.ttl
"<n>s", <= 4 KiB). Per-token ACTIONs: ok, unregistered (404 UNREGISTERED),
invalid (400 INVALID_ARGUMENT), notfound (404 without
errorCode), 429, 500, 503, slow:MS, drop,
revoke (the bearer token is revoked: 401, once), unauth (always 401),
flaky:N (N times 503, then ok), retryafter:S (429 with Retry-After: S once).
"""
import json
import os
import re
import secrets
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2fake  # noqa: E402
from h2fake import Answer  # noqa: E402

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
SEND_RE = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
TTL_RE = re.compile(r"^\d+(\.\d{1,9})?s$")
RESERVED = {"from", "notification", "message_type"}


def gerror(status, code, message, fcm_code=None):
    err = {"code": status, "message": message, "status": code}
    if fcm_code:
        err["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                           "errorCode": fcm_code}]
    return Answer(status, {"error": err})


def make_handler(args):
    with open(args.service_account) as f:
        sa = json.load(f)
    pub = serialization.load_pem_private_key(sa["private_key"].encode(), None).public_key()
    aud = args.aud or sa["token_uri"]
    tokens = {}  # bearer -> expiry
    revoked = set()

    def token_endpoint(fake, req, rec):
        form = urllib.parse.parse_qs(req.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return Answer(400, {"error": "unsupported_grant_type"})
        try:
            hdr, claims, signing_input, sig = h2fake.split_jwt(form["assertion"][0])
        except Exception:
            return Answer(400, {"error": "invalid_grant", "error_description": "bad JWT"})
        rec["assertion_header"], rec["assertion_claims"] = hdr, claims
        now = time.time()
        why = None
        if hdr.get("alg") != "RS256":
            why = "alg"
        elif claims.get("iss") != sa["client_email"]:
            why = "iss"
        elif claims.get("aud") != aud:
            why = "aud"
        elif SCOPE not in str(claims.get("scope", "")).split():
            why = "scope"
        elif not (claims.get("iat", 1e18) <= now + 60 and claims.get("exp", 0) > now
                  and claims["exp"] - claims["iat"] <= 3600):
            why = "iat/exp"
        else:
            try:
                pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                why = "signature"
        if why:
            return Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT: " + why})
        tok = "ya29.fake-" + secrets.token_urlsafe(16)
        tokens[tok] = now + args.token_ttl
        rec["issued"] = tok
        return Answer(200, {"access_token": tok, "expires_in": args.token_ttl,
                            "token_type": "Bearer"})

    def send(fake, req, rec, project):
        if project != sa["project_id"]:
            return gerror(403, "PERMISSION_DENIED", "wrong project", "SENDER_ID_MISMATCH")
        auth = req.headers.get("authorization", "")
        bearer = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        rec["bearer"] = bearer
        if not bearer or bearer in revoked or tokens.get(bearer, 0) < time.time():
            return gerror(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        try:
            body = json.loads(req.body.decode("utf-8"))
        except Exception:
            return gerror(400, "INVALID_ARGUMENT", "Invalid JSON payload")
        rec["body"] = body
        msg = body.get("message") if isinstance(body, dict) else None
        if not isinstance(msg, dict) or set(body) != {"message"}:
            return gerror(400, "INVALID_ARGUMENT", "no message")
        if not isinstance(msg.get("token"), str) or not msg["token"]:
            return gerror(400, "INVALID_ARGUMENT", "no token")
        if "notification" in msg or "apns" in msg or "webpush" in msg:
            return gerror(400, "INVALID_ARGUMENT", "sipwake must send data-only messages")
        data = msg.get("data")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return gerror(400, "INVALID_ARGUMENT", "data values must be strings")
        for k in data:
            if k in RESERVED or k.startswith("google") or k.startswith("gcm"):
                return gerror(400, "INVALID_ARGUMENT", "reserved key " + k)
        if len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) > 4096:
            return gerror(400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT")
        android = msg.get("android")
        if not isinstance(android, dict) or android.get("priority") != "HIGH":
            return gerror(400, "INVALID_ARGUMENT", "android.priority must be HIGH here")
        if not TTL_RE.match(str(android.get("ttl", ""))):
            return gerror(400, "INVALID_ARGUMENT", "bad ttl")
        token = msg["token"]
        rec["token"] = token
        action, n = fake.rule_for(token)
        rec["action"] = action
        ok = Answer(200, {"name": "projects/%s/messages/0:%d" % (project, time.time_ns())})
        if action == "ok":
            return ok
        if action == "unregistered":
            return gerror(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        if action == "notfound":  # a 404 without the FCM error code
            return gerror(404, "NOT_FOUND", "Requested entity was not found.")
        if action == "invalid":
            return gerror(400, "INVALID_ARGUMENT", "The registration token is not valid",
                          "INVALID_ARGUMENT")
        if action == "429":
            return gerror(429, "RESOURCE_EXHAUSTED", "quota", "QUOTA_EXCEEDED")
        if action == "500":
            return gerror(500, "INTERNAL", "internal", "INTERNAL")
        if action == "503":
            return gerror(503, "UNAVAILABLE", "unavailable", "UNAVAILABLE")
        if action == "drop":
            return Answer(0, drop=True)
        if action == "revoke":
            if n == 1:
                revoked.add(bearer)
                return gerror(401, "UNAUTHENTICATED", "revoked")
            return ok
        if action == "unauth":
            return gerror(401, "UNAUTHENTICATED", "always")
        if action.startswith("slow:"):
            ok.delay_ms = int(action[5:])
            return ok
        if action.startswith("retryafter:"):
            if n == 1:
                a = gerror(429, "RESOURCE_EXHAUSTED", "quota", "QUOTA_EXCEEDED")
                a.headers = [("retry-after", action[11:])]
                return a
            return ok
        if action.startswith("flaky:"):
            return gerror(503, "UNAVAILABLE", "flaky", "UNAVAILABLE") if n <= int(action[6:]) else ok
        return gerror(500, "INTERNAL", "unknown fake action")

    def handle(fake, req):
        rec = {"conn": req.conn_id, "stream": req.stream_id, "method": req.method,
               "path": req.path, "size": len(req.body),
               "headers": {k: v for k, v in req.headers.items() if not k.startswith(":")}}
        if req.method != "POST":
            ans = gerror(405, "INVALID_ARGUMENT", "method")
        elif req.path == "/token":
            rec["kind"] = "token"
            ans = token_endpoint(fake, req, rec)
        elif SEND_RE.match(req.path):
            rec["kind"] = "send"
            ans = send(fake, req, rec, SEND_RE.match(req.path).group(1))
        else:
            ans = gerror(404, "NOT_FOUND", "path")
        rec["status"] = ans.status if not ans.drop else 0
        if ans.drop:
            rec["reason"] = "dropped"
        elif isinstance(ans.body, dict) and isinstance(ans.body.get("error"), dict):
            rec["reason"] = ans.body["error"].get("status")
        fake.write(rec)
        return ans

    return handle


def main():
    ap = h2fake.common_args(__doc__.splitlines()[0])
    ap.add_argument("--service-account", required=True)
    ap.add_argument("--aud", help="expected assertion audience (default: token_uri)")
    ap.add_argument("--token-ttl", type=int, default=3599)
    args = ap.parse_args()
    return h2fake.serve(args, make_handler(args))


if __name__ == "__main__":
    sys.exit(main())
