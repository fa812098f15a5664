#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Accounts and secrets of a cluster (SPEC 4.7, 9; issue 11): two sipwaked
nodes A and B, standalone with auth.mode "accounts", on a real redis-server.

Asserted on the wire (a raw UDP phone that talks to either node from one
socket) and in Redis:
- `sipwakectl account set` with a cluster config, no node running, writes
  the account to Redis (HA1 values, no password) and not to the node's
  database; `account list` with the other node's config shows it;
- nodes started afterwards know it: a phone challenged by A answers to B and
  gets 200, and the other way round; both nodes send the same opaque and
  Redis holds the secrets once;
- an account set while the nodes run is accepted by both within a second;
- an account deleted with sipwakectl is refused by both within a second;
- an account removed from Redis behind the nodes' backs is refused once
  their subscription is made again (they read the accounts again then);
- credentials one node accepted are, a moment later, a replay on the other;
- B restarted keeps the cluster's secret (same opaque, its nonces work on
  A) and treats a nonce issued before its restart as stale, never as good;
- the password, the HA1 values and the secrets appear in no log, and the
  password not in Redis' append-only file;
- with Redis gone, sipwakectl account says it cannot reach it (exit 1).
The digest client is swlib's, written from RFC 7616.
"""
import glob
import hashlib
import json
import os
import subprocess
import time

import swlib

BUILD = os.environ.get("SIPWAKE_BUILD_DIR") or os.path.dirname(swlib.sipwaked_binary())
CTL = os.path.join(BUILD, "sipwakectl")
D = swlib.DOMAIN
PASSWORD = "cl-Tr0ub4dor&3-staple"
CHANNEL = "sipwake:accounts@0"


def node_config(t, name, redis):
    d = os.path.join(t.dir, name)
    os.makedirs(d, exist_ok=True)
    return swlib.sipwake_config(d, swlib.free_port(), fcm=False, extra={
        "auth": {"mode": "accounts", "max_failures": 100000},
        "cluster": {"redis": redis.url, "node_name": name}})


def ctl(conf, *args, stdin=None):
    r = subprocess.run([CTL, "-c", conf] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def edge(node):
    return tuple(node.listen_addrs()[0][1:])


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Phone:
    """user@D on one UDP socket, sending to whichever node it is told."""

    def __init__(self, user):
        self.user = user
        self.c = swlib.RawSip("udp", ("127.0.0.1", 9), timeout=3.0)
        self.call_id = "clacc-%s-%d" % (user, self.c.local[1])
        self.cseq = 0

    def register(self, node, auth=None, expires=600):
        self.c.remote = edge(node)
        self.cseq += 1
        hdrs = [("Contact", "<sip:%s@%s:%d>" % (self.user, self.c.local[0], self.c.local[1])),
                ("Expires", str(expires))]
        if auth:
            hdrs.append(("Authorization", auth))
        req = swlib.build_request("REGISTER", "sip:" + D, "udp", self.c.local, headers=hdrs,
                                  call_id=self.call_id, cseq=self.cseq,
                                  from_uri="sip:%s@%s" % (self.user, D))
        return self.c.request(req)[0]

    def challenge(self, node, algo="SHA-256"):
        """The 401 of node and its challenge for algo (None, None without one)."""
        r = self.register(node)
        ch = next((c for c in swlib.digest_challenges(r) if c.get("algorithm") == algo),
                  None) if r is not None and r.status == 401 else None
        return r, ch

    def answer(self, node, ch, password=PASSWORD, nc=1):
        a = swlib.digest_credentials(ch, "REGISTER", "sip:" + D, self.user, password, nc=nc)
        return self.register(node, auth=a)

    def login(self, first, second, algo="SHA-256"):
        """Challenged by first, answered to second: the final status (None: no answer)."""
        r, ch = self.challenge(first, algo)
        if ch is None:
            return r.status if r is not None else None
        r = self.answer(second, ch)
        return r.status if r is not None else None

    def close(self):
        self.c.close()


def stored(redis, aor):
    v = redis.command("HGET", "sipwake:accounts", aor)
    return json.loads(v) if v else None


def subscribed(redis):
    r = redis.command("PUBSUB", "NUMSUB", CHANNEL)
    return int(r[1]) if r and len(r) == 2 else 0


def ha1(user, algo):
    f = hashlib.sha256 if algo == "SHA-256" else hashlib.md5
    return f(("%s:%s:%s" % (user, D, PASSWORD)).encode()).hexdigest()


def main(t):
    redis = t.redis()
    a = t.sipwaked(node_config(t, "A", redis), name="A", start=False)
    b = t.sipwaked(node_config(t, "B", redis), name="B", start=False)
    a.write_config()
    b.write_config()
    outputs = []

    t.section("sipwakectl account set against the cluster, no node running")
    rc, out, err = ctl(a.conf_path, "account", "set", "sip:alice@" + D, "--password-stdin",
                       stdin=PASSWORD + "\n")
    outputs += [out, err]
    t.require(rc == 0, "account set sip:alice@%s with A's config: exit 0" % D, (rc, out, err))
    acc = stored(redis, "sip:alice@" + D)
    t.check(acc and acc.get("username") == "alice" and acc.get("realm") == D and
            acc.get("ha1_md5") == ha1("alice", "MD5") and
            acc.get("ha1_sha256") == ha1("alice", "SHA-256") and
            PASSWORD not in json.dumps(acc),
            "Redis holds the account: username, realm, both HA1 values, no password",
            acc and sorted(acc))
    t.check(not os.path.exists(a.config["storage"]["database"]),
            "A's own database was not touched (not even created)")
    rc, out, err = ctl(b.conf_path, "--json", "account", "list")
    outputs += [out, err]
    lst = json.loads(out)["result"]["accounts"] if rc == 0 else []
    t.check([x["aor"] for x in lst] == ["sip:alice@" + D] and lst[0]["algorithms"] ==
            ["MD5", "SHA-256"], "account list with B's config shows it", (rc, out, err))

    a.start()
    b.start()
    t.require(wait_until(lambda: subscribed(redis) == 2, 10),
              "both nodes subscribe to %s" % CHANNEL, subscribed(redis))

    t.section("challenged by A, answered to B (and the other way round)")
    alice = Phone("alice")
    r, ch_a = alice.challenge(a)
    t.require(ch_a is not None, "A challenges alice (401, SHA-256)", r.text if r else None)
    r = alice.answer(b, ch_a)
    t.check(r is not None and r.status == 200, "B accepts the answer to A's nonce: 200",
            r.summary() if r else None)
    r, ch_b = alice.challenge(b, "MD5")
    t.check(ch_b is not None and ch_b.get("opaque") == ch_a.get("opaque"),
            "B challenges with the same opaque as A (one key)", (ch_a, ch_b))
    r = alice.answer(a, ch_b) if ch_b else None
    t.check(r is not None and r.status == 200, "A accepts the answer to B's nonce (MD5): 200",
            r.summary() if r else None)
    # A tells B over Redis pub/sub: B knows a moment later, not at once
    time.sleep(0.2)
    r = alice.answer(b, ch_b, nc=1) if ch_b else None
    t.check(r is not None and r.status == 401 and "stale=true" in r.text.lower(),
            "the answer A took, replayed to B a moment later: 401 stale=true (A told B its "
            "nonce count)", r.summary() if r else None)
    r = alice.answer(a, ch_b, nc=2) if ch_b else None
    t.check(r is not None and r.status == 200,
            "the same nonce with the next count, to A: 200", r.summary() if r else None)
    secrets = {k: redis.command("GET", k) for k in ("sipwake:secret:nonce",
                                                     "sipwake:secret:dialog")}
    t.check(all(v and len(v) == 64 and int(v, 16) >= 0 for v in secrets.values()),
            "Redis holds the nonce and dialog secrets, 32 bytes each in hex",
            {k: len(v or "") for k, v in secrets.items()})

    t.section("an account set while the nodes run")
    rc, out, err = ctl(b.conf_path, "account", "set", "sip:bob@" + D, "--password-stdin",
                       stdin=PASSWORD + "\n")
    outputs += [out, err]
    done = time.monotonic()
    t.require(rc == 0, "account set sip:bob@%s with B's config" % D, (rc, out, err))
    bob = Phone("bob")
    ok = wait_until(lambda: bob.login(a, a) == 200 and bob.login(b, b) == 200, 1.0)
    t.check(ok and time.monotonic() - done < 1.5,
            "A and B both accept bob within a second (%.2f s)" % (time.monotonic() - done))

    t.section("an account deleted with sipwakectl")
    t.check(alice.login(a, a) == 200 and alice.login(b, b) == 200,
            "before: alice registers on A and on B")
    rc, out, err = ctl(a.conf_path, "account", "delete", "sip:alice@" + D)
    outputs += [out, err]
    done = time.monotonic()
    t.check(rc == 0 and stored(redis, "sip:alice@" + D) is None,
            "account delete: exit 0, gone from Redis", (rc, out, err))
    ok = wait_until(lambda: alice.login(a, a) == 401 and alice.login(b, b) == 401 and
                    alice.login(a, b) == 401, 1.0)
    t.check(ok and time.monotonic() - done < 1.5,
            "A and B both refuse alice's right password within a second (401)")
    rc, _, err = ctl(b.conf_path, "account", "delete", "sip:alice@" + D)
    t.check(rc == 1 and "no account" in err, "deleting it again: exit 1, no account", (rc, err))

    t.section("a change the nodes did not hear of")
    rc, out, err = ctl(a.conf_path, "account", "set", "sip:carol@" + D, "--password-stdin",
                       stdin=PASSWORD + "\n")
    carol = Phone("carol")
    t.require(rc == 0 and wait_until(lambda: carol.login(a, b) == 200, 1.0),
              "carol set and registered (A, then B)")
    redis.command("HDEL", "sipwake:accounts", "sip:carol@" + D)  # no message published
    t.check(carol.login(b, a) == 200,
            "removed from Redis without a message: A still has it in memory")
    redis.command("CLIENT", "KILL", "TYPE", "pubsub")
    t.check(wait_until(lambda: carol.login(a, a) == 401 and carol.login(b, b) == 401, 5.0),
            "after their subscription was made again, A and B refuse carol")
    t.check(wait_until(lambda: subscribed(redis) == 2, 5) and bob.login(a, b) == 200,
            "bob, untouched, still registers (A, then B)")

    t.section("B restarted")
    r, old = bob.challenge(a)
    t.check(b.stop() == 0, "B stops with exit 0")
    b.start()
    t.require(wait_until(lambda: subscribed(redis) == 2, 10), "B subscribed again")
    r = bob.answer(b, old) if old else None
    t.check(r is not None and r.status == 401 and "stale=true" in r.text.lower(),
            "a nonce issued before B's restart, answered to B: 401 stale=true",
            r.summary() if r else None)
    r, ch = bob.challenge(b)
    t.check(ch is not None and ch.get("opaque") == ch_a.get("opaque"),
            "B has the same key after its restart (same opaque)")
    r = bob.answer(a, ch) if ch else None
    t.check(r is not None and r.status == 200, "A accepts the answer to the restarted B's nonce",
            r.summary() if r else None)
    t.check(redis.command("GET", "sipwake:secret:nonce") == secrets["sipwake:secret:nonce"],
            "the secret in Redis did not change")

    t.section("nothing secret in the logs")
    hidden = {"the password": PASSWORD, "alice's MD5 HA1": ha1("alice", "MD5"),
              "bob's SHA-256 HA1": ha1("bob", "SHA-256")}
    hidden.update(("secret " + k, v) for k, v in secrets.items())
    logs = "".join(open(n.stderr_path, errors="replace").read() + open(n.stdout_path, errors="replace").read()
                   for n in (a, b)) + "".join(outputs)
    for what, v in hidden.items():
        t.check(v.lower() not in logs.lower(), "%s is in no log and no sipwakectl output" % what)
    aof = b"".join(open(f, "rb").read() for f in glob.glob(os.path.join(redis.dir, "**", "*.aof*"),
                                                           recursive=True))
    t.check(aof and PASSWORD.encode() not in aof and ha1("bob", "MD5").encode() in aof,
            "Redis' append-only file has the HA1 values, never the password")

    t.section("Redis gone")
    t.check(a.stop() == 0 and b.stop() == 0, "A and B stop with exit 0")
    redis.stop()
    rc, out, err = ctl(a.conf_path, "account", "list")
    t.check(rc == 1 and "cannot reach the cluster's Redis" in err,
            "account list without Redis: exit 1, cannot reach it", (rc, out, err))

    for p in (alice, bob, carol):
        p.close()


if __name__ == "__main__":
    swlib.run(main)
