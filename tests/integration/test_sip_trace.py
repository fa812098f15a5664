#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""log.sip_trace (issue 8 item 10): every SIP message sent and received is
logged, push tokens shortened; a reload turns it off.

Standalone, FCM configured. With log.sip_trace = true a phone registers
with a long FCM token: the daemon's log shows the REGISTER it received and
the 200 it sent ("recv ... bytes", "send ... bytes", the message lines),
with the token shortened to its first and last four characters and never
whole. Then sip_trace = false and SIGHUP: an OPTIONS afterwards is not
traced. A second daemon started with TPORT_LOG=1 (sofia's own switch) and
sip_trace = false traces too, and shortens the token as well.
"""
import os
import time

import swlib

TOKEN = "fcmTraceToken:" + "Q1w2E3r4" * 16 + "-end9"


def log_text(sw):
    with open(sw.stderr_path, errors="replace") as f:
        return f.read()


def register(edge):
    with swlib.RawSip("udp", edge, timeout=3) as c:
        data = swlib.build_request(
            "REGISTER", "sip:%s" % swlib.DOMAIN, "udp", c.local,
            from_uri="sip:tracer@%s" % swlib.DOMAIN,
            headers=[("Contact", "<sip:tracer@%s:%d;pn-provider=fcm;pn-prid=%s;pn-param=sipwake-test>"
                      % (c.local[0], c.local[1], TOKEN))])
        f, _ = c.request(data, timeout=3)
    return f


def main(t):
    port = swlib.free_port()
    cfg = swlib.sipwake_config(t.dir, port, fcm=True,
                               extra={"log": {"level": "info", "sip_trace": True}})
    sw = t.sipwaked(cfg)
    edge = (swlib.LOOPBACK, port)
    f = register(edge)
    t.require(f is not None and f.status == 200, "REGISTER with a long FCM token -> 200")
    time.sleep(0.2)
    text = log_text(sw)
    t.check("recv " in text and "REGISTER sip:%s SIP/2.0" % swlib.DOMAIN in text,
            "the received REGISTER is in the log")
    t.check("send " in text and "SIP/2.0 200 OK" in text, "the 200 sent back is in the log")
    short = TOKEN[:4] + "..." + TOKEN[-4:]
    t.check(short in text, "the token appears shortened (%s)" % short)
    t.check(TOKEN not in text and TOKEN[8:40] not in text, "and never whole")

    t.section("reload with sip_trace = false")
    cfg["log"]["sip_trace"] = False
    sw.write_config()
    sw.proc.send_signal(1)  # SIGHUP
    time.sleep(0.5)
    mark = len(log_text(sw))
    marker = "trace-off-%d" % os.getpid()
    swlib.sip_options("udp", edge, ruri="sip:%s@%s:%d" % (marker, edge[0], edge[1]))
    time.sleep(0.2)
    t.check(marker not in log_text(sw)[mark:], "after the reload an OPTIONS is not traced")

    t.section("TPORT_LOG=1")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0")
    os.environ["TPORT_LOG"] = "1"
    try:
        sw2 = t.sipwaked(cfg, name="sipwaked-tport-log")
    finally:
        del os.environ["TPORT_LOG"]
    f = register(edge)
    t.require(f is not None and f.status == 200, "REGISTER again -> 200")
    time.sleep(0.2)
    text = log_text(sw2)
    t.check("REGISTER sip:%s SIP/2.0" % swlib.DOMAIN in text, "sofia's TPORT_LOG traces too")
    t.check(TOKEN not in text and short in text, "with the token shortened as well")
    t.check(sw2.stop() == 0, "SIGTERM: sipwaked exits 0")


if __name__ == "__main__":
    swlib.run(main)
