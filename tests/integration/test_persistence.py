#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bindings survive kill -9 (SPEC 6): what sipwake acknowledged with a 2xx.

Standalone mode (sipwake is the registrar, storage.database in the test
dir), UDP: a phone registers (register_then_answer.xml, keeps listening on
its UDP port); right after the phone sees the 200, sipwaked is killed with
SIGKILL and started again with the same config and database (same port).
A caller then calls the phone's AOR at sipwake: the INVITE must reach the
phone through sipwake and the call complete (the binding came back from the
database). A user that registered and unregistered before the kill must
stay unregistered (a call to it fails with 404/480).

Gateway mode, UDP: the same with Kamailio as registrar; Kamailio keeps its
binding (Path to sipwake, pn-* hidden), so after sipwake's restart the call
from Kamailio must still be mapped back to the phone through sipwake.

Each restarted daemon exits 0 on SIGTERM.
"""
import os

import swlib
import calls


def restart_hook(t, sw, label):
    def hook(phone):
        sw.kill9()
        t.check(not sw.alive(), "%s: sipwaked killed with SIGKILL right after the 200" % label)
        sw.start()
        t.check(sw.alive(), "%s: sipwaked restarted on the same config and database" % label)
    return hook


def main(t):
    t.section("standalone")
    port = swlib.free_port()
    sw = t.sipwaked(swlib.sipwake_config(t.dir, port, upstream_uri="", fcm=True), name="standalone")
    edge = (swlib.LOOPBACK, port)

    r = t.sipp("register_unregister.xml", edge, name="unreg", user="quinn", timeout=15).run()
    t.check(r.rc == 0, "standalone: quinn registered and unregistered", r.describe())

    calls.call_through(t, label="standalone-kill9", register_to=edge, call_to=edge,
                       transport="udp", user="pat", pn=swlib.push_params("fcm"), edge=edge,
                       hops=1, before_call=restart_hook(t, sw, "standalone"))
    final, _ = calls.invite("udp", edge, "quinn")
    t.check(final is not None and final.status in (404, 480),
            "standalone: after restart, the unregistered quinn is still unreachable (404/480)",
            final.summary() if final else "no final response")
    t.check(sw.stop() == 0, "standalone: SIGTERM after restart -> exit 0 within 5 s")

    t.section("gateway")
    kam = t.kamailio(name="upstream")
    gport = swlib.free_port()
    gdir = t.dir + "/gw"
    os.makedirs(gdir, exist_ok=True)
    gw = t.sipwaked(swlib.sipwake_config(gdir, gport, upstream_uri=kam.uri, fcm=True), name="gateway")
    gedge = (swlib.LOOPBACK, gport)
    calls.call_through(t, label="gateway-kill9", register_to=gedge, call_to=kam.addr(),
                       transport="udp", user="paula", pn=swlib.push_params("fcm"), edge=gedge,
                       kam=kam, hops=2, hidden_pn=True, before_call=restart_hook(t, gw, "gateway"))
    t.check(gw.stop() == 0, "gateway: SIGTERM after restart -> exit 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
