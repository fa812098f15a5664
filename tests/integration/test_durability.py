#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What is acknowledged is stored (issue 8 item 5, SPEC 6 and 8).

Standalone mode, no push. sipwaked runs under a file-size limit (prlimit
--fsize, the way a full disk looks to SQLite: writes fail with EFBIG), and
REGISTERs for new users arrive one after the other until the store fills:
  - every REGISTER gets 200 or 500, and some get each; a 500 carries
    Retry-After and no 200 follows a failed write unannounced;
  - sipwaked keeps serving (OPTIONS) while the store is full;
  - after kill -9 and a restart without the limit on the same database,
    every user that got a 200 is registered.
Then a second process holds the database's write lock: a REGISTER is
answered 500 (not 200, and not after sofia's retransmissions gave up);
once the lock is released a REGISTER gets 200 and survives kill -9.
sipwaked exits 0 on SIGTERM.
"""
import json
import os
import sqlite3
import stat
import subprocess

import swlib

LIMIT = 256 * 1024  # bytes: any file sipwaked writes (database, WAL) stops growing here
CTL = os.path.join(os.environ.get("SIPWAKE_BUILD_DIR", "build"), "sipwakectl")


def register(c, edge, user, expires=3600):
    data = swlib.build_request(
        "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
        from_uri="sip:%s@%s" % (user, swlib.DOMAIN),
        headers=[("Contact", "<sip:%s@%s:%d;x-pad=%s>" % (user, c.local[0], c.local[1], "p" * 300)),
                 ("Expires", str(expires))])
    final, _ = c.request(data, timeout=5)
    return final


def registered(sock, user):
    r = subprocess.run([CTL, "-s", sock, "--json", "registrations", "sip:%s@%s" % (
        user, swlib.DOMAIN)], capture_output=True, text=True, timeout=10)
    try:
        return json.loads(r.stdout)["result"]["count"] > 0
    except (ValueError, KeyError):
        return None


def main(t):
    port = swlib.free_port()
    cfg = swlib.sipwake_config(t.dir, port, fcm=False,
                               extra={"log": {"level": "warn", "sip_trace": False}})
    sock = cfg["admin"]["socket"]
    edge = (swlib.LOOPBACK, port)
    wrapper = os.path.join(t.dir, "limited-sipwaked")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec prlimit --fsize=%d -- '%s' \"$@\"\n" % (LIMIT, swlib.sipwaked_binary()))
    os.chmod(wrapper, stat.S_IRWXU)

    t.section("the store fills up")
    sw = swlib.Sipwaked(t.dir, cfg, name="sipwaked-limited", binary=wrapper, log_level="warn")
    t.on_cleanup(sw.kill9)
    sw.start()
    answers = {}
    with swlib.RawSip("udp", edge, timeout=5) as c:
        for i in range(600):
            f = register(c, edge, "u%03d" % i)
            answers["u%03d" % i] = f
            if f is None and not sw.alive():
                break
            if sum(1 for a in answers.values() if a is not None and a.status == 500) >= 10:
                break
    codes = [a.status if a is not None else None for a in answers.values()]
    ok = [u for u, a in answers.items() if a is not None and a.status == 200]
    failed = [a for a in answers.values() if a is not None and a.status == 500]
    t.log("  (%d REGISTERs: %d answered 200, %d answered 500)" % (len(codes), len(ok), len(failed)))
    t.require(sw.alive(), "sipwaked survives its store filling up (file size limit: EFBIG, not SIGXFSZ)")
    t.check(all(c in (200, 500) for c in codes), "every REGISTER got 200 or 500",
            sorted(set(map(str, codes))))
    t.require(ok and failed, "some were stored (200) and the full store refused others (500)")
    t.check(all(a.get("retry-after") for a in failed), "every 500 carries Retry-After")
    t.check(swlib.sip_options("udp", edge, timeout=3) is not None,
            "sipwaked keeps serving with its store full")

    t.section("kill -9, restart without the limit")
    sw.kill9()
    sw2 = t.sipwaked(cfg, name="sipwaked-after")
    missing = [u for u in ok if not registered(sock, u)]
    t.check(not missing, "every user that got a 200 is registered after the restart (%d)" % len(ok),
            missing[:10])

    t.section("a locked database")
    db = sqlite3.connect(cfg["storage"]["database"], timeout=0, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    with swlib.RawSip("udp", edge, timeout=5) as c:
        f = register(c, edge, "locked")
    t.check(f is not None and f.status == 500, "REGISTER while another process holds the lock -> 500",
            f.summary() if f else "no final response")
    t.check(swlib.sip_options("udp", edge, timeout=3) is not None, "sipwaked keeps serving")
    db.execute("ROLLBACK")
    db.close()
    with swlib.RawSip("udp", edge, timeout=5) as c:
        f = register(c, edge, "unlocked")
    t.check(f is not None and f.status == 200, "the lock released: REGISTER -> 200",
            f.summary() if f else "no final response")
    sw2.kill9()
    sw3 = t.sipwaked(cfg, name="sipwaked-last")
    t.check(registered(sock, "unlocked") is True, "and it survived kill -9")
    t.check(sw3.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
