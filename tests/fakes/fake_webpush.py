# SPDX-License-Identifier: MIT
"""A fake Web Push service (RFC 8030) for tests.

Subscriptions live in a JSON file (--subscriptions, read again when it
changes): id -> {"server_key": applicationServerKey (base64url), and for a
subscription with keys "private": the UA's P-256 private scalar, "auth":
its auth secret (base64url)}. The endpoint of subscription ID is
https://127.0.0.1:PORT/push/ID.

Each POST is checked as the push services do: a "vapid t=JWT, k=KEY"
Authorization (RFC 8292) whose ES256 signature verifies with KEY, aud the
service's origin, exp in the future and at most 24 h away, sub a mailto: or
https: URI, KEY the subscription's applicationServerKey (403 otherwise); a
TTL header (an integer); Urgency, when given, one of the four levels; Topic,
when given, at most 32 base64url characters; a body, when there is one, of
at most 4096 bytes with Content-Encoding aes128gcm that decrypts (RFC 8291)
with the subscription's keys. Accepted pushes get 201 Created with a
Location. What was received and decrypted is logged as JSON lines.

Per-subscription ACTIONs: ok, gone (410), notfound (404), 429, 500, 503,
toolarge (413), slow:MS, drop, flaky:N (N times 503, then ok),
retryafter:S (429 with Retry-After: S once), expiredvapid (403 once, as to
a token the service thinks expired).
"""
import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2fake  # noqa: E402
from h2fake import Answer  # noqa: E402

from cryptography.exceptions import InvalidSignature, InvalidTag  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402

PATH_RE = re.compile(r"^/push/([A-Za-z0-9_-]+)$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
VAPID_RE = re.compile(r"^vapid t=([A-Za-z0-9_.-]+), *k=([A-Za-z0-9_-]+)$")
URGENCY = {"very-low", "low", "normal", "high"}
MAX_BODY = 4096


def b64(s):
    return h2fake.b64url_decode(s)


def hkdf(salt, ikm, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt(body, sub):
    """RFC 8291 + RFC 8188, one record. Returns the plaintext or raises ValueError."""
    body = bytes(body)
    if len(body) < 21 + 65 + 17:
        raise ValueError("body shorter than one aes128gcm record")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if idlen != 65:
        raise ValueError("keyid is not a 65-byte P-256 point")
    as_pub_bytes, ct = body[21:86], body[86:]
    if rs < 18 or len(ct) > rs:
        raise ValueError("record size %d does not hold the %d-byte record" % (rs, len(ct)))
    ua = ec.derive_private_key(int.from_bytes(b64(sub["private"]), "big"), ec.SECP256R1())
    ua_pub = ua.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    as_pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_pub_bytes)
    secret = ua.exchange(ec.ECDH(), as_pub)
    ikm = hkdf(b64(sub["auth"]), secret, b"WebPush: info\x00" + ua_pub + as_pub_bytes, 32)
    cek = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    try:
        rec = AESGCM(cek).decrypt(nonce, ct, None)
    except InvalidTag:
        raise ValueError("authentication tag does not verify")
    rec = rec.rstrip(b"\x00")
    if not rec.endswith(b"\x02"):
        raise ValueError("last record without the 0x02 delimiter")
    return rec[:-1]


def check_vapid(auth, origin, rec):
    """None when the Authorization is a valid VAPID one, else (status, why)."""
    m = VAPID_RE.match(auth or "")
    if not m:
        return 401, "no vapid Authorization"
    token, k = m.group(1), m.group(2)
    rec["vapid_k"] = k
    try:
        hdr, claims, signing_input, sig = h2fake.split_jwt(token)
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64(k))
    except Exception:
        return 401, "malformed JWT or key"
    rec["vapid_header"], rec["vapid_claims"] = hdr, claims
    if hdr.get("alg") != "ES256" or len(sig) != 64:
        return 401, "alg"
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return 401, "signature"
    now = time.time()
    if claims.get("aud") != origin:
        return 401, "aud %r is not %r" % (claims.get("aud"), origin)
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 86400:
        return 401, "exp"
    s = claims.get("sub")
    if not isinstance(s, str) or not (s.startswith("mailto:") or s.startswith("https://")):
        return 401, "sub"
    return None


def make_handler(args):
    state = {"mtime": None, "subs": {}}

    def subscriptions():
        m = os.stat(args.subscriptions).st_mtime_ns
        if m != state["mtime"]:
            state["mtime"] = m
            with open(args.subscriptions) as f:
                state["subs"] = json.load(f)
        return state["subs"]

    def handle(fake, req):
        rec = {"conn": req.conn_id, "stream": req.stream_id, "method": req.method,
               "path": req.path, "size": len(req.body),
               "headers": {k: v for k, v in req.headers.items() if not k.startswith(":")}}
        ans = push(fake, req, rec)
        rec["status"] = ans.status if not ans.drop else 0
        if isinstance(ans.body, dict) and "reason" in ans.body:
            rec["reason"] = ans.body["reason"]
        fake.write(rec)
        return ans

    def push(fake, req, rec):
        def bad(status, why):
            return Answer(status, {"code": status, "reason": why})

        if req.method != "POST":
            return bad(405, "method")
        m = PATH_RE.match(req.path)
        sub = subscriptions().get(m.group(1)) if m else None
        if sub is None:
            return bad(404, "no such subscription")
        rec["sub"] = m.group(1)
        h = req.headers
        origin = "https://%s" % h.get(":authority", "")
        why = check_vapid(h.get("authorization"), origin, rec)
        if why:
            return bad(*why)
        if rec["vapid_k"] != sub["server_key"]:
            return bad(403, "VAPID key is not the subscription's applicationServerKey")
        if not re.match(r"^\d+$", h.get("ttl", "")):
            return bad(400, "TTL header missing or not an integer")
        if "urgency" in h and h["urgency"] not in URGENCY:
            return bad(400, "bad Urgency")
        if "topic" in h and not TOPIC_RE.match(h["topic"]):
            return bad(400, "bad Topic")
        if len(req.body) > MAX_BODY:
            return bad(413, "payload too large")
        if req.body:
            if h.get("content-encoding") != "aes128gcm":
                return bad(400, "body without Content-Encoding: aes128gcm")
            if "private" not in sub:
                return bad(400, "a payload for a subscription without keys")
            try:
                plain = decrypt(req.body, sub)
                rec["payload"] = json.loads(plain.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                return bad(400, "cannot decrypt: %s" % e)
        action, n = fake.rule_for(rec["sub"])
        rec["action"] = action
        ok = Answer(201, None, headers=[("location", "/message/%s" % uuid.uuid4())])
        if action == "ok":
            return ok
        if action == "gone":
            return bad(410, "subscription expired")
        if action == "notfound":
            return bad(404, "subscription not found")
        if action in ("429", "500", "503"):
            return bad(int(action), "status " + action)
        if action == "toolarge":
            return bad(413, "payload too large")
        if action == "drop":
            return Answer(0, drop=True)
        if action.startswith("slow:"):
            ok.delay_ms = int(action[5:])
            return ok
        if action.startswith("flaky:"):
            return bad(503, "flaky") if n <= int(action[6:]) else ok
        if action.startswith("retryafter:"):
            if n == 1:
                a = bad(429, "slow down")
                a.headers = [("retry-after", action[11:])]
                return a
            return ok
        if action == "expiredvapid":
            return bad(403, "token expired") if n == 1 else ok
        return bad(500, "unknown fake action")

    return handle


def main():
    ap = h2fake.common_args(__doc__.splitlines()[0])
    ap.add_argument("--subscriptions", required=True, help="JSON file of subscriptions")
    args = ap.parse_args()
    return h2fake.serve(args, make_handler(args))


if __name__ == "__main__":
    sys.exit(main())
