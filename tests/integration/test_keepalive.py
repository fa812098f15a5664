#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sleeping phones stay registered upstream (SPEC 4.6, upstream.keepalive).

Two real Kamailio registrars cap registrations at 20 s: "pbx" challenges
every REGISTER (digest, qop=auth, one password for all users), "trusting"
does not (it trusts sipwake's address), reached over TCP. Two sipwakeds in
gateway mode in front of them, with the fake APNs/FCM.

- An iOS phone with only a PushKit (VoIP) token registers over TCP through
  sipwake to the pbx asking 3600 s, answering the pbx's challenge itself,
  and sleeps (its connection closes). The 200 it got says 3600; the pbx
  holds 20 s. sipwake refreshes upstream under its own Call-ID, answering
  the challenges from the AOR's account (nonce reused with nc 2, 3, ...).
  Over several upstream expiries the pbx never loses the contact; then a
  call from the pbx is pushed (VoIP) and delivered when the phone
  re-registers with the same Call-ID and a higher CSeq on a new TCP
  connection; the call completes.
- An FCM phone whose account at sipwake has a wrong password: its refresh
  is refused, counted (sipwake_upstream_refresh_total{result="rejected"}),
  shown in `sipwakectl registrations`, and the phone gets the wake-up push
  before its upstream registration lapses.
- An FCM phone behind the trusting Kamailio, no account at all: kept
  registered; that Kamailio is stopped and started again (it forgets every
  registration): the refreshes fail meanwhile (counted) and re-register the
  phone once it is back, without the phone doing anything.
- sipwaked killed with -9 and started again: refreshes resume on time
  from the stored leg (Call-ID and CSeq continue upstream).
- A phone whose own binding (30 s) outlives the pbx's 20 s: kept registered,
  then, when its binding expires, removed upstream (Expires: 0 with the
  account's credentials).
- A phone whose push token the provider declares dead (FCM UNREGISTERED):
  its binding goes, and so does its registration upstream.
- `sipwakectl unregister` removes the phone's registration upstream.
"""
import json
import os
import re
import subprocess
import time

import swlib
import wakelib as W

BUILD = os.environ.get("SIPWAKE_BUILD_DIR") or os.path.dirname(swlib.sipwaked_binary())
CTL = os.path.join(BUILD, "sipwakectl")
CAP = 20            # upstream max_expires
PASSWORD = "secret"  # the pbx's password for every user
APNS_VOIP = "%064x" % 0x5EEB5EEB
FCM_WRONG = "fcm-keepalive-wrong-" + "w" * 24
FCM_TRUST = "fcm-keepalive-trust-" + "t" * 24
FCM_BRIEF = "fcm-keepalive-brief-" + "b" * 24
FCM_DEAD = "fcm-keepalive-dead-" + "d" * 24  # the fake FCM answers UNREGISTERED
D = swlib.DOMAIN


def ctl(conf, *args, stdin=None):
    r = subprocess.run([CTL, "-c", conf] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def upstream_of(conf, aor):
    """The "upstream" object of each binding of aor in `sipwakectl registrations --json`."""
    rc, out, _ = ctl(conf, "--json", "registrations", aor)
    try:
        return [b.get("upstream") for b in json.loads(out)["result"]["registrations"]]
    except (ValueError, KeyError):
        return None


def counter(conf, name, **labels):
    rc, out, _ = ctl(conf, "--json", "stats")
    try:
        fam = json.loads(out)["result"].get(name, {})
    except (ValueError, KeyError):
        return None
    return sum(s["value"] for s in fam.get("series", []) if s["labels"] == labels)


def kam_expires(kam, user):
    """Expires (s left) of each contact Kamailio holds for user."""
    return [int(x) for x in re.findall(r"Expires:\s*(\d+)", kam.rpc("ul.lookup", "location", user))]


class Watch:
    """Polls Kamailio's location table for users; remembers any gap."""

    def __init__(self, kam, users):
        self.kam, self.users = kam, users
        self.gaps = {u: [] for u in users}
        self.polls = 0

    def poll(self):
        self.polls += 1
        for u in self.users:
            if not self.kam.contacts(u):
                self.gaps[u].append(round(time.monotonic(), 1))

    def sleep(self, seconds, step=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(min(step, max(0.0, end - time.monotonic())))


def main(t):
    env = W.WakeEnv(t, fcm_rules={FCM_DEAD: "unregistered"})
    pbx = t.kamailio(name="pbx", auth=True, password=PASSWORD, max_expires=CAP, min_expires=5)
    trusting = t.kamailio(name="trusting", max_expires=CAP, min_expires=5)

    port_a = swlib.free_port()
    wd_a = os.path.join(t.dir, "a")
    cfg_a = env.config(port_a, upstream_uri=pbx.uri, workdir=wd_a,
                       extra={"push": {"call_timeout": 20}, "registrar": {"min_expires": 10}})
    sw = t.sipwaked(cfg_a, name="sipwaked-pbx")
    edge = (swlib.LOOPBACK, port_a)
    port_b = swlib.free_port()
    wd_b = os.path.join(t.dir, "b")
    sw_b = t.sipwaked(env.config(port_b, upstream_uri=trusting.uri + ";transport=tcp",
                                 workdir=wd_b), name="sipwaked-trusting")

    t.section("accounts for the refreshes (realm of the pbx: %s)" % D)
    rc, _, err = ctl(sw.conf_path, "account", "set", "sip:ios@" + D, "--realm", D,
                     "--password-stdin", stdin=PASSWORD + "\n")
    t.check(rc == 0, "account for sip:ios@%s" % D, err)
    rc, _, err = ctl(sw.conf_path, "account", "set", "sip:droid@" + D, "--password-stdin",
                     stdin="not-the-password\n")
    t.check(rc == 0, "account for sip:droid@%s, with a wrong password" % D, err)
    for user in ("brief", "dead"):
        rc, _, err = ctl(sw.conf_path, "account", "set", "sip:%s@%s" % (user, D),
                         "--password-stdin", stdin=PASSWORD + "\n")
        t.check(rc == 0, "account for sip:%s@%s" % (user, D), err)

    t.section("phones register asking 3600 s and sleep")
    ios = W.started_phone(t, "tcp", edge, "ios", pn=W.apns_pn(APNS_VOIP, voip=True),
                          inst=W.instance(1)).connect()
    r = ios.register(expires=3600, password=PASSWORD)
    t.require(r is not None and r.status == 200, "ios (VoIP token only, TCP): 200 after the "
              "pbx's challenge", ios.trace())
    ct = r.get("contact") or ""
    t.check("expires=3600" in ct, "the phone is granted the 3600 s it asked for", ct)
    t.check(kam_expires(pbx, "ios") and max(kam_expires(pbx, "ios")) <= CAP,
            "the pbx holds it for at most %d s" % CAP, kam_expires(pbx, "ios"))
    first_cseq = ios.cseq
    ios.close()

    droid = W.started_phone(t, "udp", edge, "droid", pn=W.fcm_pn(FCM_WRONG),
                            inst=W.instance(2)).connect()
    r = droid.register(expires=3600, password=PASSWORD)
    t.check(r is not None and r.status == 200, "droid (FCM, UDP): 200", droid.trace())
    droid.close()

    brief = W.started_phone(t, "udp", edge, "brief", pn=W.fcm_pn(FCM_BRIEF),
                            inst=W.instance(4)).connect()
    r = brief.register(expires=2 * CAP - 10, password=PASSWORD)
    t.check(r is not None and r.status == 200 and "expires=%d" % (2 * CAP - 10) in
            (r.get("contact") or ""), "brief (FCM) asks %d s, more than the pbx's %d: 200"
            % (2 * CAP - 10, CAP), brief.trace())
    brief.close()

    dead = W.started_phone(t, "udp", edge, "dead", pn=W.fcm_pn(FCM_DEAD),
                           inst=W.instance(5)).connect()
    r = dead.register(expires=3600, password=PASSWORD)
    t.check(r is not None and r.status == 200 and pbx.contacts("dead"),
            "dead (FCM, a token its provider will declare gone): 200, registered at the pbx",
            dead.trace())
    dead.close()

    tr = W.started_phone(t, "udp", (swlib.LOOPBACK, port_b), "trusty", pn=W.fcm_pn(FCM_TRUST),
                         inst=W.instance(3)).connect()
    r = tr.register(expires=3600)
    t.check(r is not None and r.status == 200 and "expires=3600" in (r.get("contact") or ""),
            "trusty (FCM) through the trusting Kamailio: 200, 3600 s", tr.trace())
    tr.close()

    t.section("%d s of sleep: %d upstream expiries" % (3 * CAP, 3))
    # The trusting Kamailio is down from CAP to 2 * CAP + 5 s: longer than it
    # would keep a registration, so at least one refresh fails.
    watch = Watch(pbx, ["ios"])
    watch_t = Watch(trusting, ["trusty"])
    end = time.monotonic() + 3 * CAP + 5
    stopped = restarted = False
    down_at = time.monotonic() + CAP
    while time.monotonic() < end:
        watch.poll()
        if not stopped and time.monotonic() >= down_at:
            trusting.stop()
            stopped = True
            t.log("  (trusting Kamailio stopped)")
        elif stopped and not restarted and time.monotonic() >= down_at + CAP + 5:
            trusting.start()
            restarted = True
            t.log("  (trusting Kamailio started again, with an empty location table)")
        elif not stopped:
            watch_t.poll()
        time.sleep(1.0)
    t.check(watch.polls >= 3 * CAP - 5 and not watch.gaps["ios"],
            "the pbx held ios's contact all along (%d polls)" % watch.polls, watch.gaps)
    up = upstream_of(sw.conf_path, "sip:ios@" + D) or [None]
    t.check(up[0] and up[0].get("refresh") == "ok" and 0 < up[0].get("expires_in", 0) <= CAP,
            "sipwakectl registrations: upstream expiry within %d s, refresh ok" % CAP, up)
    rc, text, _ = ctl(sw.conf_path, "registrations", "sip:ios@" + D)
    t.check(rc == 0 and " ok " in text, "the text table shows the upstream state", text)
    log = open(sw.stderr_path, errors="replace").read()
    refreshes = re.findall(r"REGISTER sip:%s SIP/2.0\n(?:.*\n){0,20}?.*keep-alive" % re.escape(D),
                           log)
    reuse = re.findall(r"Authorization: Digest [^\n]*nc=0000000[2-9]", log)
    t.check(len(refreshes) >= 3, "sipwake sent refresh REGISTERs itself (%d)" % len(refreshes))
    t.check(reuse, "a refresh reused the pbx's nonce with the next nonce count", reuse[:1])
    t.check(counter(sw.conf_path, "sipwake_upstream_refresh_total", result="ok") >= 3,
            "refreshes counted ok", counter(sw.conf_path, "sipwake_upstream_refresh_total",
                                            result="ok"))

    t.section("a token the provider declares dead: removed upstream too")
    rc, out, err = ctl(sw.conf_path, "push", "test", "sip:dead@" + D, "--type", "background")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and pbx.contacts("dead"):
        time.sleep(0.1)
    t.check(not pbx.contacts("dead"), "after FCM's UNREGISTERED the pbx holds no contact for "
            "dead (its registration there had up to %d s left)" % CAP,
            (out, err, pbx.contacts("dead")))
    time.sleep(0.5)
    log = open(sw.stderr_path, errors="replace").read()
    t.check(re.search(r"upstream registration of sip:dead@\S+ \(.*\) removed", log),
            "the pbx answered 2xx to sipwake's Expires: 0 for it")

    t.section("a device binding that expires is removed upstream")
    t.check(not pbx.contacts("brief"), "brief's binding expired after %d s: the pbx holds no "
            "contact for it (sipwake sent Expires: 0, answering the challenge)" % (2 * CAP - 10),
            pbx.contacts("brief"))
    t.check(re.search(r"upstream registration of sip:brief@\S+ \(.*\) removed", log),
            "the pbx answered 2xx to sipwake's Expires: 0 for it")

    t.section("the wrong password: refused, counted, shown, wake-up push")
    t.check((counter(sw.conf_path, "sipwake_upstream_refresh_total", result="rejected") or 0) >= 1,
            "droid's refresh counted as rejected")
    up = upstream_of(sw.conf_path, "sip:droid@" + D) or [None]
    t.check(up[0] and "401" in up[0].get("refresh", ""), "registrations show why (401)", up)
    wake = env.wait_push("fcm", FCM_WRONG, lambda x: W.push_type(x) == "wakeup", timeout=2)
    t.check(wake is not None, "droid got the wake-up push", W.summarize_pushes(env.fcm_for(FCM_WRONG)))

    t.section("trusting Kamailio restarted: the phone is registered there again")
    deadline = time.monotonic() + 2 * 60
    while time.monotonic() < deadline and not trusting.contacts("trusty"):
        time.sleep(1)
    t.check(trusting.contacts("trusty"), "trusty is back in the restarted Kamailio's table, "
            "without the phone doing anything")
    t.check(not watch_t.gaps["trusty"], "and it was never missing before the stop", watch_t.gaps)
    t.check((counter(sw_b.conf_path, "sipwake_upstream_refresh_total", result="failed") or 0) >= 1,
            "the refreshes while it was down were counted as failed")

    t.section("a call for the sleeping iOS phone")
    caller = t.sipp("uac.xml", pbx.addr(), name="caller-ios", user="ios", transport="udp",
                    pause_ms=300, timeout=35).start()
    push = env.wait_push("apns", APNS_VOIP, lambda x: W.push_type(x) == "call", timeout=10)
    t.check(push is not None and push["headers"].get("apns-push-type") == "voip",
            "the pbx routed the call to sipwake: a VoIP push", W.summarize_pushes(env.apns.requests()))
    ios.connect()
    r = ios.register(expires=3600, password=PASSWORD)
    t.check(r is not None and r.status == 200 and ios.cseq > first_cseq,
            "the phone re-registers on a new TCP connection, same Call-ID, CSeq %d -> %d: 200"
            % (first_cseq, ios.cseq), ios.trace())
    inv = ios.wait_invite(timeout=10)
    if t.check(inv is not None, "the held INVITE reaches it", ios.flow()):
        ios.answer(inv)
        ios.wait_bye(inv.call_id, timeout=15)
    cres = caller.wait()
    t.check(cres.rc == 0, "the call completes (INVITE/200/ACK/BYE)", cres.describe())
    ios.close()

    t.section("kill -9 and start again: refreshes resume")
    log = open(sw.stderr_path, errors="replace").read()
    cid_before = re.findall(r"Call-ID: (\S+@sipwake-keepalive)", log)
    sw.kill9()
    sw.start()
    watch = Watch(pbx, ["ios"])
    watch.sleep(2 * CAP)
    t.check(not watch.gaps["ios"], "the pbx kept ios's contact across the restart", watch.gaps)
    log2 = open(sw.stderr_path, errors="replace").read()
    cid_after = re.findall(r"Call-ID: (\S+@sipwake-keepalive)", log2[len(log):])
    t.check(cid_before and cid_after and cid_after[-1] in cid_before,
            "the restarted sipwaked refreshes under the stored Call-ID",
            (cid_before[-1:], cid_after[-1:]))

    t.section("sipwakectl unregister removes it upstream")
    rc, out, err = ctl(sw.conf_path, "unregister", "sip:ios@" + D)
    t.check(rc == 0, "sipwakectl unregister sip:ios@%s" % D, (out, err))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and pbx.contacts("ios"):
        time.sleep(0.1)
    t.check(not pbx.contacts("ios"), "within 1.5 s the pbx holds no contact for ios any more",
            pbx.contacts("ios"))
    time.sleep(0.5)
    log = open(sw.stderr_path, errors="replace").read()
    t.check(re.search(r"upstream registration of sip:ios@\S+ \(.*\) removed", log),
            "the pbx answered 2xx to sipwake's Expires: 0")
    t.check(sw.stop() == 0 and sw_b.stop() == 0, "both sipwakeds exit 0 on SIGTERM")


if __name__ == "__main__":
    swlib.run(main)
