#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Gateway mode: a device that comes back with a new +sip.instance keeps ONE
contact upstream (it was a known bug; now a regression test).

Gateway mode. A phone registers through sipwake over TCP with an FCM token
and +sip.instance I1, then comes back from a new port with the SAME push
token but a NEW +sip.instance I2 (e.g. an app whose instance id was not
persisted before it was killed; liblinphone does this when killed on its
first run). sipwake matches the REGISTER to the same binding by push
identity (SPEC 4.2: one binding, same swb id), but forwards the new Contact
and instance upstream without removing the old one, so Kamailio now holds
TWO contacts for one sipwake binding (SPEC 4.2: "never creates a
duplicate"), and every call is forked twice into sipwake for that binding.
"""
import swlib
import wakelib as W

TOKEN = "fcm-identity-" + "i" * 30


def main(t):
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t)
    port = swlib.free_port()
    t.sipwaked(env.config(port, upstream_uri=kam.uri, extra={"push": {"call_timeout": 10}}))
    sw_addr = (swlib.LOOPBACK, port)
    p = W.started_phone(t, "tcp", sw_addr, "ident", pn=W.fcm_pn(TOKEN), inst=W.instance(71))
    p.connect()
    r = p.register()
    t.require(r is not None and r.status == 200, "first REGISTER (instance 71) -> 200", p.trace())
    p.close()
    p.inst = W.instance(72)
    p.call_id += "-new"  # a fresh app start: new Call-ID too
    p.connect()
    r = p.register()
    t.require(r is not None and r.status == 200, "REGISTER from a new port, same token, "
              "instance 72 -> 200", p.trace())
    contacts = kam.contacts("ident")
    t.check(len(contacts) == 1, "upstream holds ONE contact for the one sipwake binding",
            "Kamailio holds %d:\n%s" % (len(contacts), "\n".join("  %s  Path %s" % c
                                                                  for c in contacts)))
    c = W.started_caller(t, "udp", kam.addr(), "ident")
    c.invite()
    inv = p.wait_invite(timeout=10)
    if t.check(inv is not None, "the call reaches the phone", p.flow()):
        p.answer(inv, timeout=2)
        dup = p.wait(lambda m: m.method == "INVITE", 2.0)
        t.check(dup is None, "the phone gets the INVITE once", p.flow())


if __name__ == "__main__":
    swlib.run(main)
