#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A stored MESSAGE is delivered whatever the length of the phone's Contact
(issue 13, item 2: it used to be rebuilt in a 600-byte buffer and dropped,
after its 202).

Standalone mode, fake FCM. An Android phone registers over TCP with a
Contact of about 1,100 bytes (a 163-byte FCM token, its project, an
instance and a long app parameter, as real apps send), then sleeps. A
MESSAGE to it is answered 202 and stored; the phone registers again from a
new connection and receives the MESSAGE there, body intact; after its 200
the store is empty (a second re-registration delivers nothing). sipwaked
exits 0 on SIGTERM.
"""
import swlib
import wakelib as W

TOKEN = "cLongTok3n:APA91b" + "Hq7sK2xZ" * 18 + "Zz9"  # 163 bytes, FCM-shaped
APP = ";x-app-data=" + "k" * 800
TEXT = "stored for a long contact \u00e9"


def main(t):
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port))
    edge = (swlib.LOOPBACK, port)

    phone = W.started_phone(t, "tcp", edge, "longcontact", pn=W.fcm_pn(TOKEN) + APP,
                            inst=W.instance(131)).connect()
    t.log("  (Contact of %d bytes)" % len(phone.contact()))
    t.require(len(phone.contact()) > 1000, "the Contact is over 1,000 bytes")
    r = phone.register()
    t.require(r is not None and r.status == 200, "phone registers -> 200", phone.trace())
    phone.close()

    c = W.started_caller(t, "udp", edge, "longcontact", name="sender")
    c.message(TEXT)
    f = c.final(timeout=15)
    t.require(f is not None and f.status == 202, "MESSAGE to the sleeping phone -> 202 (stored)",
              c.flow())

    phone.connect()
    r = phone.register()
    t.check(r is not None and r.status == 200, "phone registers again on a new connection -> 200")
    m = phone.wait_message(timeout=10)
    t.check(m is not None, "the stored MESSAGE is delivered to the long Contact", phone.flow())
    if m is not None:
        t.check(m.body == TEXT, "with its body intact", repr(m.body))
        t.check(";x-app-data=" in m.text.split("\r\n", 1)[0],
                "to the Contact the phone registered (request URI)", m.text.split("\r\n", 1)[0][:200])
    r = phone.register()
    again = phone.wait(lambda x: x.method == "MESSAGE", timeout=2)
    t.check(again is None, "after its 200 the message is gone (nothing on the next registration)")

    t.section("shutdown")
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
