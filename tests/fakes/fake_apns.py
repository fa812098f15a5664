# SPDX-License-Identifier: MIT
"""A fake APNs (api.push.apple.com) for tests, checking what Apple checks.

Token auth (--auth-key, --key-id, --team-id): the bearer ES256 JWT is
verified with the key's public half (alg, kid, iss, iat, signature).
Certificate auth (--client-ca): the TLS client certificate is required.
Every request is checked like the provider API documents it: path
/3/device/<hex token>, apns-topic (the bundle, or bundle.voip for voip),
apns-push-type, apns-priority (5 for background), apns-expiration,
apns-collapse-id (<= 64 bytes), apns-id (UUID), payload JSON and size
(4 KiB, 5 KiB for voip). Per-token ACTIONs: ok, bad (400 BadDeviceToken),
topic (400 DeviceTokenNotForTopic), gone (410), 429, 500, 503,
slow:MS, gate:N (hold answers until N requests are open at once), drop, dropfirst (drop once, then ok),
goawayfirst (a GOAWAY that leaves this stream unprocessed, once; then ok),
closefirst (close the connection with every stream unanswered, once; then ok),
freeze (the connection goes silent: nothing read or written on it again), expired (403 ExpiredProviderToken once), forbidden
(403 InvalidProviderToken), flaky:N (N times 500, then ok).
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2fake  # noqa: E402
from h2fake import Answer  # noqa: E402

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PATH_RE = re.compile(r"^/3/device/([^/?]+)$")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")

expired_jwts = set()
verified_jwts = set()  # a provider token is checked once, then trusted until it expires


def error(status, reason, **kw):
    body = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return Answer(status, body, **kw)


def check_jwt(args, pub, auth):
    """None when valid, else (status, reason)."""
    if not auth or not auth.startswith("bearer "):
        return 403, "MissingProviderToken"
    jwt = auth[len("bearer "):]
    if jwt in expired_jwts:
        return 403, "ExpiredProviderToken"
    try:
        hdr, claims, signing_input, sig = h2fake.split_jwt(jwt)
    except Exception:
        return 403, "InvalidProviderToken"
    if hdr.get("alg") != "ES256" or hdr.get("kid") != args.key_id or len(sig) != 64:
        return 403, "InvalidProviderToken"
    if claims.get("iss") != args.team_id or not isinstance(claims.get("iat"), int):
        return 403, "InvalidProviderToken"
    now = time.time()
    if claims["iat"] > now + 60:
        return 403, "InvalidProviderToken"
    if claims["iat"] < now - 3600:
        return 403, "ExpiredProviderToken"
    if jwt in verified_jwts:
        return None
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return 403, "InvalidProviderToken"
    verified_jwts.add(jwt)
    return None


def make_handler(args):
    pub = None
    if args.auth_key:
        with open(args.auth_key, "rb") as f:
            pub = serialization.load_pem_private_key(f.read(), None).public_key()

    def handle(fake, req):
        h = req.headers
        rec = {"conn": req.conn_id, "stream": req.stream_id, "method": req.method,
               "path": req.path, "size": len(req.body),
               "headers": {k: v for k, v in h.items() if not k.startswith(":")},
               "client_cert": req.client_cert}
        auth = h.get("authorization", "")
        rec["jwt"] = auth[len("bearer "):] if auth.startswith("bearer ") else None
        if rec["jwt"]:
            try:
                rec["jwt_header"], rec["jwt_claims"], _, _ = h2fake.split_jwt(rec["jwt"])
            except Exception:
                pass
        ans = verify(fake, req, h, rec)
        rec["status"] = ans.status if not (ans.drop or ans.goaway or ans.close or ans.freeze) else 0
        rec["reason"] = ("dropped" if ans.drop else "goaway" if ans.goaway
                         else "closed" if ans.close else "frozen" if ans.freeze
                         else (ans.body or {}).get("reason"))
        rec["delay_ms"] = ans.delay_ms
        fake.write(rec)
        return ans

    def verify(fake, req, h, rec):
        if req.method != "POST":
            return error(405, "MethodNotAllowed")
        m = PATH_RE.match(req.path)
        if not m:
            return error(404, "BadPath")
        token = m.group(1)
        rec["token"] = token
        if pub is not None:
            bad = check_jwt(args, pub, h.get("authorization"))
            if bad:
                return error(*bad)
        elif req.client_cert is None:
            return error(403, "MissingProviderToken")
        if not HEX_RE.match(token) or len(token) < 64:
            return error(400, "BadDeviceToken")
        topic = h.get("apns-topic")
        ptype = h.get("apns-push-type")
        if not topic:
            return error(400, "MissingTopic")
        if ptype not in ("alert", "background", "voip", "complication", "fileprovider", "mdm",
                         "location", "liveactivity", "pushtotalk"):
            return error(400, "InvalidPushType")
        if args.bundle and topic not in (args.bundle, args.bundle + ".voip"):
            return error(400, "TopicDisallowed")
        if (ptype == "voip") != topic.endswith(".voip"):
            return error(400, "TopicDisallowed")
        prio = h.get("apns-priority", "10")
        if prio not in ("1", "5", "10"):
            return error(400, "BadPriority")
        if ptype == "background" and prio != "5":
            return error(400, "BadPriority")
        exp = h.get("apns-expiration")
        if exp is not None and not exp.isdigit():
            return error(400, "BadExpirationDate")
        if len(h.get("apns-collapse-id", "").encode()) > 64:
            return error(400, "BadCollapseId")
        if "apns-id" in h and not UUID_RE.match(h["apns-id"]):
            return error(400, "BadMessageId")
        if not req.body:
            return error(400, "PayloadEmpty")
        limit = 5120 if ptype == "voip" else 4096
        if len(req.body) > limit:
            return error(413, "PayloadTooLarge")
        try:
            payload = json.loads(req.body.decode("utf-8"))
        except Exception:
            return error(400, "BadPayload")
        rec["payload"] = payload
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return error(400, "BadPayload")
        aps = payload["aps"]
        if ptype == "background":
            if aps.get("content-available") != 1 or {"alert", "sound", "badge"} & set(aps):
                return error(400, "BadPayload")
        # an alert push shows an alert, plays a sound or sets the badge (a
        # badge-only update is an alert push too)
        if ptype == "alert" and not {"alert", "sound", "badge"} & set(aps):
            return error(400, "BadPayload")
        if "badge" in aps and (not isinstance(aps["badge"], int) or aps["badge"] < 0):
            return error(400, "BadPayload")

        action, n = fake.rule_for(token)
        rec["action"] = action
        if action == "ok":
            return Answer(200, headers=[("apns-id", h.get("apns-id", ""))])
        if action == "bad":
            return error(400, "BadDeviceToken")
        if action == "topic":
            return error(400, "DeviceTokenNotForTopic")
        if action == "gone":
            return error(410, "Unregistered")
        if action == "429":
            return error(429, "TooManyRequests")
        if action == "500":
            return error(500, "InternalServerError")
        if action == "503":
            return error(503, "ServiceUnavailable")
        if action == "forbidden":
            return error(403, "InvalidProviderToken")
        if action == "drop":
            return Answer(0, drop=True)
        if action == "freeze":  # the connection goes silent for good
            return Answer(0, freeze=True)
        if action == "closefirst":  # close the connection, once; then ok
            return Answer(0, close=True) if n == 1 else Answer(200)
        if action == "goawayfirst":  # GOAWAY refusing this stream once, then ok
            return Answer(0, goaway=True) if n == 1 else Answer(200)
        if action == "dropfirst":
            return Answer(0, drop=True) if n == 1 else Answer(200)
        if action == "expired":
            if n == 1 and rec["jwt"]:
                expired_jwts.add(rec["jwt"])
                return error(403, "ExpiredProviderToken")
            return Answer(200)
        if action.startswith("slow:"):
            return Answer(200, delay_ms=int(action[5:]))
        if action.startswith("gate:"):
            return Answer(200, gate=int(action[5:]))
        if action.startswith("flaky:"):
            return error(500, "InternalServerError") if n <= int(action[6:]) else Answer(200)
        return error(500, "UnknownFakeAction")

    return handle


def main():
    ap = h2fake.common_args(__doc__.splitlines()[0])
    ap.add_argument("--auth-key", help=".p8 key whose public half verifies the JWTs")
    ap.add_argument("--key-id")
    ap.add_argument("--team-id")
    ap.add_argument("--bundle", help="allowed topic (and topic.voip)")
    args = ap.parse_args()
    if not args.auth_key and not args.client_ca:
        ap.error("need --auth-key (token auth) or --client-ca (certificate auth)")
    return h2fake.serve(args, make_handler(args))


if __name__ == "__main__":
    sys.exit(main())
