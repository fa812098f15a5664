#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Standalone mode authenticates its users (SPEC 4.7, auth.mode "accounts").

Accounts come from `sipwakectl account set` (password on stdin, or an HA1),
written to the database while sipwaked runs. Then, on the wire:
- linphonec with a password registers (SHA-256, the first challenge; its
  refresh reuses the nonce with nc=2), and sipp -au/-ap registers against a
  daemon that challenges MD5 first (sipp 3.6 knows only MD5);
- a wrong password, an AOR without an account, a REGISTER with no
  credentials: 401 again, never a binding;
- a nonce older than auth.nonce_lifetime with a right response: 401
  stale=true, and the new nonce works;
- a captured Authorization sent again (another source, another Contact):
  401 stale=true, the binding keeps its contact;
- a stranger's INVITE and MESSAGE claiming a local user: 407, nothing
  reaches the callee; with that user's credentials the INVITE goes through;
  a caller of another domain is not challenged;
- too many failures from one address: 403 for the rest of the minute;
- the account deleted while registered: the next refresh fails;
- the password appears nowhere: database, WAL, daemon log, sipwakectl output.
The python digest client here is written from RFC 7616, independently of
sipwake's C code.
"""
import hashlib
import json
import os
import re
import subprocess
import time

import swlib

BUILD = os.environ.get("SIPWAKE_BUILD_DIR") or os.path.dirname(swlib.sipwaked_binary())
CTL = os.path.join(BUILD, "sipwakectl")
STRANGER = "127.0.0.3"
PASSWORD = "Tr0ub4dor&3-horse"
WRONG = "correct-horse"
NONCE_LIFETIME = 5
D = swlib.DOMAIN


def ctl(conf, *args, stdin=None):
    r = subprocess.run([CTL, "-c", conf] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


challenges = swlib.digest_challenges
credentials = swlib.digest_credentials


class Phone:
    """A raw UDP client registering user@D."""

    def __init__(self, edge, user, host=swlib.LOOPBACK):
        self.c = swlib.RawSip("udp", edge, timeout=3.0, host=host)
        self.user, self.edge = user, edge
        self.call_id = "auth-%s-%d@%s" % (user, self.c.local[1], host)
        self.cseq = 0

    def register(self, auth=None, expires=600, contact_port=None):
        self.cseq += 1
        hdrs = [("Contact", "<sip:%s@%s:%d>" % (self.user, self.c.local[0],
                                                contact_port or self.c.local[1])),
                ("Expires", str(expires))]
        if auth:
            hdrs.append(("Authorization", auth))
        req = swlib.build_request("REGISTER", "sip:" + D, "udp", self.c.local, headers=hdrs,
                                  call_id=self.call_id, cseq=self.cseq,
                                  from_uri="sip:%s@%s" % (self.user, D))
        return self.c.request(req)[0]

    def login(self, password, algo=None, username=None):
        """Challenge, then answer it: the final response of the second REGISTER."""
        r = self.register()
        chs = challenges(r) if r is not None else []
        ch = next((c for c in chs if algo is None or c.get("algorithm") == algo), None)
        if r is None or r.status != 401 or not ch:
            return r, None
        a = credentials(ch, "REGISTER", "sip:" + D, username or self.user, password)
        return self.register(a), a


def bindings(sw, aor):
    rc, out, _ = ctl(sw.conf_path, "--json", "registrations", aor)
    try:
        return json.loads(out)["result"]["registrations"] if rc == 0 else None
    except (ValueError, KeyError):
        return None


def main(t):
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, fcm=False, extra={
        "auth": {"mode": "accounts", "nonce_lifetime": NONCE_LIFETIME, "max_failures": 8}}))
    edge = (swlib.LOOPBACK, port)
    conf = sw.conf_path

    t.section("sipwakectl account: bad input is refused with a clear error")
    for args, stdin, why in (
            (["alice@" + D, "--password-stdin"], PASSWORD, "an AOR without sip:"),
            (["sip:" + D, "--password-stdin"], PASSWORD, "an AOR without a user"),
            (["tel:+15551234", "--password-stdin"], PASSWORD, "a tel: AOR"),
            (["sip:alice@" + D, "--password-stdin"], "", "an empty password"),
            (["sip:alice@" + D, "--password-stdin"], "\n", "an empty password line"),
            (["sip:alice@" + D, "--ha1", "abcd"], None, "an HA1 of the wrong size"),
            (["sip:alice@" + D, "--ha1", "z" * 32], None, "an HA1 that is not hex"),
            (["sip:alice@" + D], None, "neither password nor HA1"),
            (["sip:alice@" + D, "--password-stdin", "--ha1", "a" * 32], PASSWORD, "both"),
            (["sip:alice@" + D, "--realm", 'a"b', "--password-stdin"], PASSWORD,
             "a realm with a quote")):
        rc, out, err = ctl(conf, "account", "set", *args, stdin=stdin)
        t.check(rc == 64 and err.strip(), "account set with %s: exit 64 and a reason" % why,
                (rc, out, err))
    rc, _, err = ctl(conf, "account", "delete", "sip:nobody@" + D)
    t.check(rc == 1 and "no account" in err, "account delete of an unknown AOR: exit 1", (rc, err))

    t.section("accounts stored while sipwaked runs")
    outputs = []
    for user in ("alice", "bob", "linus", "dora"):
        rc, out, err = ctl(conf, "account", "set", "sip:%s@%s" % (user, D), "--password-stdin",
                           stdin=PASSWORD + "\n")
        outputs += [out, err]
        t.check(rc == 0, "account set sip:%s@%s --password-stdin" % (user, D), (rc, out, err))
    # An MD5 HA1 computed elsewhere (an operator migrating from another registrar).
    ha1 = hashlib.md5(("carol:%s:%s" % (D, PASSWORD)).encode()).hexdigest()
    rc, out, err = ctl(conf, "--json", "account", "set", "sips:Carol@" + D.upper(),
                       "--username", "carol", "--ha1", ha1.upper())
    outputs += [out, err]
    doc = json.loads(out) if rc == 0 else {}
    acc = doc.get("result", {}).get("account", {})
    t.check(rc == 0 and acc.get("aor") == "sip:Carol@" + D and acc.get("algorithms") == ["MD5"]
            and acc.get("realm") == D, "account set --ha1: stored as sip:Carol@%s, MD5 only" % D,
            (rc, out, err))
    rc, out, err = ctl(conf, "--json", "account", "list")
    outputs += [out, err]
    lst = json.loads(out)["result"]["accounts"] if rc == 0 else []
    t.check([a["aor"] for a in lst] == sorted("sip:%s@%s" % (u, D) for u in
                                              ("alice", "bob", "linus", "dora", "Carol"))
            and all(set(a) == {"aor", "username", "realm", "algorithms", "created", "updated"}
                    for a in lst),
            "account list --json: every account, no secret among its fields", out)
    rc, out, err = ctl(conf, "account", "list", "sip:alice@" + D)
    outputs += [out, err]
    t.check(rc == 0 and "sip:alice@" + D in out and "MD5, SHA-256" in out,
            "account list AOR: a table row with both algorithms", out)

    t.section("linphonec registers with its password (SHA-256, nonce reused with nc)")
    lp = t.linphonec(edge, "linus", password=PASSWORD)
    t.check(lp.wait_registered(), "linphonec reports registered", swlib.tail(lp.out))
    b = bindings(sw, "sip:linus@" + D)
    t.check(b and len(b) == 1, "sipwake holds linphonec's binding", b)
    lp.command("status register")
    lp.quit()
    log = open(sw.stderr_path, errors="replace").read()
    auths = re.findall(r"Authorization: +Digest [^\n]*username=\"linus\"[^\n]*", log)
    t.check(auths and "algorithm=SHA-256" in auths[0], "linphonec answered the SHA-256 challenge",
            auths[:1])
    t.check(any("nc=00000002" in a for a in auths),
            "its unregister reused the nonce with nc=00000002 and was accepted",
            auths)
    t.check(not bindings(sw, "sip:linus@" + D), "linphonec's unregister removed the binding",
            bindings(sw, "sip:linus@" + D))

    t.section("raw client: right password, wrong password, unknown AOR")
    alice = Phone(edge, "alice")
    r = alice.register()
    chs = challenges(r) if r else []
    t.check(r is not None and r.status == 401 and [c.get("algorithm") for c in chs] ==
            ["SHA-256", "MD5"] and all(c.get("qop") == "auth" and c.get("opaque") and
                                       c.get("realm") == D for c in chs),
            "REGISTER without credentials: 401 with SHA-256 then MD5 challenges, qop=auth, opaque",
            r.text if r else None)
    t.check(not bindings(sw, "sip:alice@" + D), "no binding after a 401")
    r, _ = alice.login(WRONG)
    t.check(r is not None and r.status == 401 and not bindings(sw, "sip:alice@" + D),
            "wrong password: 401 again, no binding", r.summary() if r else None)
    r, good_auth = alice.login(PASSWORD, algo="MD5")
    t.check(r is not None and r.status == 200, "right password (MD5): 200",
            r.summary() if r else None)
    b = bindings(sw, "sip:alice@" + D)
    t.check(b and len(b) == 1, "alice is bound", b)
    r, _ = Phone(edge, "mallory").login(PASSWORD)
    t.check(r is not None and r.status == 401 and not bindings(sw, "sip:mallory@" + D),
            "an AOR without an account: 401, never registered", r.summary() if r else None)
    carol = Phone(edge, "Carol")
    r = carol.register()
    t.check(r is not None and [c.get("algorithm") for c in challenges(r)] == ["MD5"],
            "an account with only an MD5 HA1 is challenged with MD5 only",
            r.text if r else None)
    r, _ = Phone(edge, "carol").login(PASSWORD)
    t.check(r is not None and r.status == 401, "sip:carol (another user part) is another AOR",
            r.summary() if r else None)
    r, _ = carol.login(PASSWORD, username="carol")
    t.check(r is not None and r.status == 200, "Carol with the HA1-only account: 200",
            r.summary() if r else None)

    t.section("replay of a captured Authorization")
    eve = Phone(edge, "alice", host=STRANGER)
    r = eve.register(auth=good_auth, contact_port=4444)
    t.check(r is not None and r.status == 401 and any(c.get("stale") == "true" for c in challenges(r)),
            "the same Authorization from another address: 401 stale=true", r.text if r else None)
    r = alice.register(auth=good_auth)
    t.check(r is not None and r.status == 401, "and from alice's own socket: 401 (nc already used)",
            r.summary() if r else None)
    b = bindings(sw, "sip:alice@" + D) or []
    t.check(len(b) == 1 and ":4444" not in json.dumps(b), "alice's binding kept its contact", b)

    t.section("an expired nonce (auth.nonce_lifetime %d s)" % NONCE_LIFETIME)
    r = alice.register()
    ch = challenges(r)[0] if r and challenges(r) else None
    time.sleep(NONCE_LIFETIME + 1.5)
    r = alice.register(auth=credentials(ch, "REGISTER", "sip:" + D, "alice", PASSWORD)) if ch else None
    stale = challenges(r) if r else []
    t.check(r is not None and r.status == 401 and stale and all(c.get("stale") == "true" for c in stale),
            "a right response with an old nonce: 401 stale=true", r.text if r else None)
    r = alice.register(auth=credentials(stale[0], "REGISTER", "sip:" + D, "alice", PASSWORD)) \
        if stale else None
    t.check(r is not None and r.status == 200, "the fresh nonce then works: 200",
            r.summary() if r else None)

    t.section("requests claiming a local user")
    bob = Phone(edge, "bob")
    r, _ = bob.login(PASSWORD)
    t.check(r is not None and r.status == 200, "bob registered", r.summary() if r else None)
    intruder = swlib.RawSip("udp", edge, timeout=3.0, host=STRANGER)
    for method, body in (("INVITE", ""), ("MESSAGE", "pay me")):
        req = swlib.build_request(method, "sip:bob@" + D, "udp", intruder.local,
                                  from_uri="sip:alice@" + D, to_uri="sip:bob@" + D,
                                  headers=[("Contact", "<sip:alice@%s:%d>" % intruder.local),
                                           ("Content-Type", "text/plain")] if body else
                                  [("Contact", "<sip:alice@%s:%d>" % intruder.local)], body=body)
        r = intruder.request(req)[0]
        t.check(r is not None and r.status == 407 and challenges(r, "proxy-authenticate"),
                "%s from a stranger as sip:alice@%s: 407 with Proxy-Authenticate" % (method, D),
                r.text if r else None)
    got = bob.c.collect(1.0)
    t.check(not [m for m in got if m.method in ("INVITE", "MESSAGE")],
            "nothing reached bob", [m.summary() for m in got])
    # The real alice answers the 407: the INVITE reaches bob.
    req = swlib.build_request("INVITE", "sip:bob@" + D, "udp", alice.c.local,
                              from_uri="sip:alice@" + D, to_uri="sip:bob@" + D,
                              headers=[("Contact", "<sip:alice@%s:%d>" % alice.c.local)])
    r = alice.c.request(req)[0]
    ch = challenges(r, "proxy-authenticate") if r else []
    cid = r.call_id if r else ""
    if ch:
        req = swlib.build_request("INVITE", "sip:bob@" + D, "udp", alice.c.local, call_id=cid,
                                  cseq=2, from_uri="sip:alice@" + D, to_uri="sip:bob@" + D,
                                  headers=[("Contact", "<sip:alice@%s:%d>" % alice.c.local),
                                           ("Proxy-Authorization",
                                            credentials(ch[0], "INVITE", "sip:bob@" + D, "alice",
                                                        PASSWORD))])
        alice.c.send(req)
    got = [m for m in bob.c.collect(2.0) if m.method == "INVITE" and m.call_id == cid]
    t.check(got, "with alice's credentials the INVITE reaches bob")
    t.check(got and not got[0].all("proxy-authorization"),
            "without them: sipwake consumed alice's Proxy-Authorization",
            got[0].text if got else None)
    req = swlib.build_request("OPTIONS", "sip:%s:%d" % edge, "udp", intruder.local,
                              from_uri="sip:alice@" + D, to_uri="sip:%s:%d" % edge)
    r = intruder.request(req)[0]
    t.check(r is not None and r.status == 200, "OPTIONS to sipwake itself (a keep-alive): 200",
            r.summary() if r else None)
    # A caller of another domain is not asked for credentials (a public address).
    req = swlib.build_request("MESSAGE", "sip:bob@" + D, "udp", intruder.local,
                              from_uri="sip:zoe@elsewhere.example", to_uri="sip:bob@" + D,
                              headers=[("Content-Type", "text/plain")], body="hi bob")
    intruder.send(req)
    got = bob.c.collect(2.0)
    t.check(any(m.method == "MESSAGE" and "hi bob" in m.body for m in got),
            "a MESSAGE from another domain reaches bob unchallenged", [m.summary() for m in got])
    intruder.close()

    t.section("failed attempts per source are limited (auth.max_failures 8)")
    guesser = Phone(edge, "dora", host="127.0.0.4")
    statuses = []
    for i in range(10):
        r = guesser.register()
        ch = challenges(r) if r and r.status == 401 else []
        if not ch:
            statuses.append(r.status if r else None)
            break
        r = guesser.register(auth=credentials(ch[0], "REGISTER", "sip:" + D, "dora", "guess%d" % i))
        statuses.append(r.status if r else None)
    t.check(statuses[:8] == [401] * 8 and statuses[-1] == 403,
            "8 wrong guesses get 401, then the source gets 403", statuses)
    r, _ = Phone(edge, "dora").login(PASSWORD)
    t.check(r is not None and r.status == 200, "another address is not affected",
            r.summary() if r else None)

    t.section("account deleted while registered")
    rc, out, err = ctl(conf, "account", "delete", "sip:alice@" + D)
    t.check(rc == 0, "account delete sip:alice@%s (daemon running)" % D, (rc, out, err))
    r, _ = alice.login(PASSWORD)
    t.check(r is not None and r.status == 401, "alice's next refresh fails (401)",
            r.summary() if r else None)

    t.section("the password is nowhere")
    blobs = []

    def read_db(when):
        for f in sorted(os.listdir(t.dir)):
            if f.startswith("sipwake.db"):
                with open(os.path.join(t.dir, f), "rb") as fh:
                    blobs.append(("%s (%s)" % (f, when), fh.read()))
    read_db("daemon running")
    sw.stop()
    read_db("daemon stopped")
    with open(sw.stderr_path, "rb") as fh:
        blobs.append(("sipwaked log", fh.read()))
    blobs.append(("sipwakectl output", "".join(outputs).encode()))
    for name, data in blobs:
        t.check(PASSWORD.encode() not in data, "no password in %s" % name)
    t.check(any(n == "sipwake.db (daemon stopped)" and hashlib.md5(("alice:%s:%s" % (D, PASSWORD)).encode())
                .hexdigest().encode() not in d and b"bob" in d for n, d in blobs),
            "the database holds accounts, not alice's HA1 any more")

    t.section("sipp -au/-ap against MD5-first challenges")
    port2 = swlib.free_port()
    wd2 = os.path.join(t.dir, "md5")
    os.makedirs(wd2, exist_ok=True)
    sw2 = t.sipwaked(swlib.sipwake_config(wd2, port2, fcm=False, extra={
        "auth": {"mode": "accounts", "algorithms": ["MD5", "SHA-256"]}}), name="sipwaked-md5")
    rc, _, err = ctl(sw2.conf_path, "account", "set", "sip:sam@" + D, "--password-stdin",
                     stdin=PASSWORD)
    t.check(rc == 0, "account for sam (password without a line end)", err)
    for tr in ("udp", "tcp"):
        r = t.sipp("register_auth.xml", (swlib.LOOPBACK, port2), name="sam-" + tr, transport=tr,
                   user="sam", auth=("sam", PASSWORD)).run()
        t.check(r.ok and r.received(status=401) and r.received(status=200),
                "%s: sipp registers through 401 and 200" % tr, r.describe())
    r = t.sipp("register_auth.xml", (swlib.LOOPBACK, port2), name="sam-wrong", user="sam",
               auth=("sam", WRONG), timeout=5).run()
    t.check(not r.ok and not r.received(status=200), "a wrong password never gets 200",
            r.describe())
    t.check(sw2.stop() == 0, "sipwaked exits 0 on SIGTERM")


if __name__ == "__main__":
    swlib.run(main)
