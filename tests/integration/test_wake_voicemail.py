#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Voicemail notifications (issue 10): a voicemail server sends an
unsolicited NOTIFY (Event: message-summary, RFC 3842) to a user at
Kamailio, which forwards it along the Path to sipwake; providers are the
fakes (APNs, FCM, Web Push with decryption).

  - sleeping iPhone (Linphone two tokens): 200 to the NOTIFY, an alert
    push on the REMOTE token (never PushKit) with the badge and "2 new
    voice messages", collapsed as sipwake-voicemail;
  - sleeping Android (FCM) and sleeping browser (Web Push): data with
    type voicemail, messages-waiting yes, voice-new 2, voice-old 8;
  - an awake phone on TCP (push parameters too) gets the NOTIFY itself,
    its 200 goes back, and it is not pushed;
  - mailbox emptied (Messages-Waiting: no): badge 0, no alert, priority 5;
  - a sleeping iPhone on UDP (its flow looks alive, nobody answers): the
    NOTIFY goes there and the push too; the 200 comes with the push, not
    after the branch's 32 s timeout;
  - a sleeping iPhone with only a PushKit token cannot be told: 480; nor a
    browser whose subscription has no keys (a push without content would
    carry no count);
  - a body without Messages-Waiting for a sleeping phone: 400;
  - push.voicemail_push = false: the NOTIFY to a sleeping phone gets 480
    as any request to a device without a flow, and nothing is pushed.
"""
import time

import pushlib
import swlib
import wakelib as W

REMOTE = "%064x" % 0x70CE1
REMOTE_UDP = "%064x" % 0x70CE4
VOIP_UDP = "%064x" % 0x70CE5
VOIP = "%064x" % 0x70CE2
VOIP_ONLY = "%064x" % 0x70CE3
FCM_TOK = "fcm-voicemail-" + "v" * 30
FCM_LIVE = "fcm-voicemail-live-" + "l" * 30
FCM_OFF = "fcm-voicemail-off-" + "o" * 30
SUMMARY = ("Messages-Waiting: yes\r\nMessage-Account: sip:vm@sipwake.test\r\n"
           "Voice-Message: 2/8 (0/2)\r\n")
EMPTY = "Messages-Waiting: no\r\nVoice-Message: 0/10 (0/0)\r\n"


def asleep(t, sw_addr, user, pn, inst, label, transport="tcp"):
    return W.sleeping_phone(t, sw_addr, user, pn, inst, label, transport)[0]


def notify(t, kam, user, body, name):
    c = W.started_caller(t, "udp", kam.addr(), user, name=name, display="Voicemail")
    c.notify_summary(body)
    return c, c.final(timeout=20)


def voicemail_pushes(records):
    return [r for r in records if W.push_type(r) == "voicemail"]


def main(t):
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t, webpush=True)
    port, port_off = swlib.free_port(), swlib.free_port()
    sw = t.sipwaked(env.config(port, upstream_uri=kam.uri))
    sw_addr = (swlib.LOOPBACK, port)

    label = "ios"
    t.section("%s: voicemail for a sleeping iPhone" % label)
    asleep(t, sw_addr, "vmios", W.apns2_pn(REMOTE, VOIP), W.instance(71), label)
    c, f = notify(t, kam, "vmios", SUMMARY, "vm-ios")
    t.check(f is not None and f.status == 200, "%s: 200 to the NOTIFY" % label, c.flow())
    p = env.wait_push("apns", REMOTE, lambda r: W.push_type(r) == "voicemail")
    if t.check(p is not None, "%s: an alert push on the remote token" % label,
               W.summarize_pushes(env.apns.requests())):
        aps = p["payload"].get("aps", {})
        h = p["headers"]
        t.check(h.get("apns-push-type") == "alert" and h.get("apns-priority") == "10"
                and h.get("apns-collapse-id") == "sipwake-voicemail" and p["status"] == 200,
                "%s: alert, priority 10, collapsed as sipwake-voicemail" % label, h)
        t.check(aps.get("badge") == 2 and aps.get("alert", {}).get("body") == "2 new voice "
                "messages" and p["payload"].get("voice-old") == "8",
                "%s: badge 2, \"2 new voice messages\", the counts" % label, p["payload"])
    t.check(not voicemail_pushes(env.apns_for(VOIP)), "%s: nothing on the PushKit token" % label,
            W.summarize_pushes(env.apns_for(VOIP)))

    label = "empty"
    t.section("%s: the mailbox is emptied" % label)
    c, f = notify(t, kam, "vmios", EMPTY, "vm-empty")
    t.check(f is not None and f.status == 200, "%s: 200 to the NOTIFY" % label, c.flow())
    p = env.wait_push("apns", REMOTE, lambda r: W.push_type(r) == "voicemail"
                      and r["payload"].get("messages-waiting") == "no")
    if t.check(p is not None, "%s: a second push" % label, W.summarize_pushes(env.apns_for(REMOTE))):
        aps = p["payload"]["aps"]
        t.check(aps.get("badge") == 0 and "alert" not in aps and "sound" not in aps
                and p["headers"].get("apns-priority") == "5",
                "%s: badge 0, silent, priority 5" % label, p)

    label = "android"
    t.section("%s: voicemail for a sleeping Android phone" % label)
    asleep(t, sw_addr, "vmdroid", W.fcm_pn(FCM_TOK), W.instance(72), label)
    c, f = notify(t, kam, "vmdroid", SUMMARY, "vm-droid")
    t.check(f is not None and f.status == 200, "%s: 200 to the NOTIFY" % label, c.flow())
    p = env.wait_push("fcm", FCM_TOK, lambda r: W.push_type(r) == "voicemail")
    t.check(p is not None and W.push_data(p).get("messages-waiting") == "yes"
            and W.push_data(p).get("voice-new") == "2" and W.push_data(p).get("voice-old") == "8"
            and W.push_data(p).get("to-uri") == "sip:vmdroid@%s" % swlib.DOMAIN,
            "%s: FCM data: type voicemail, waiting, 2 new, 8 old, the user" % label,
            W.summarize_pushes(env.fcm_for(FCM_TOK)))

    label = "browser"
    t.section("%s: voicemail for a sleeping browser (Web Push)" % label)
    sub = env.webpush.subscribe("vm")
    asleep(t, sw_addr, "vmweb", pushlib.webpush_pn(sub), W.instance(73), label)
    c, f = notify(t, kam, "vmweb", SUMMARY, "vm-web")
    t.check(f is not None and f.status == 200, "%s: 200 to the NOTIFY" % label, c.flow())
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:
        got = next((r for r in env.webpush.pushes("vm")
                    if (r.get("payload") or {}).get("type") == "voicemail"), None)
        time.sleep(0.05)
    t.check(got is not None and got["payload"].get("voice-new") == "2"
            and got["headers"].get("topic") == "sipwake-voicemail",
            "%s: it decrypts to the counts; Topic sipwake-voicemail" % label,
            [r.get("payload") for r in env.webpush.pushes("vm")])

    label = "awake"
    t.section("%s: an awake phone on TCP gets the NOTIFY itself" % label)
    live = W.started_phone(t, "tcp", sw_addr, "vmlive", pn=W.fcm_pn(FCM_LIVE),
                           inst=W.instance(74), name="vm-live").connect()
    r = live.register()
    t.require(r is not None and r.status == 200, "%s: registers, stays connected" % label,
              live.trace())
    c = W.started_caller(t, "udp", kam.addr(), "vmlive", name="vm-live-sender")
    c.notify_summary(SUMMARY)
    n = live.wait(lambda m: m.method == "NOTIFY", timeout=10)
    if t.check(n is not None and "Voice-Message: 2/8" in n.text, "%s: the NOTIFY reaches it"
               % label, live.flow()):
        live.respond(n, 200, "OK")
    f = c.final(timeout=10)
    t.check(f is not None and f.status == 200, "%s: its 200 reaches the sender" % label,
            c.flow())
    time.sleep(0.5)
    t.check(not voicemail_pushes(env.fcm_for(FCM_LIVE)), "%s: no push for it" % label,
            W.summarize_pushes(env.fcm_for(FCM_LIVE)))

    label = "udp"
    t.section("%s: a sleeping iPhone on UDP" % label)
    asleep(t, sw_addr, "vmudp", W.apns2_pn(REMOTE_UDP, VOIP_UDP), W.instance(77), label,
           transport="udp")
    t0 = time.monotonic()
    c, f = notify(t, kam, "vmudp", SUMMARY, "vm-udp")
    took = time.monotonic() - t0
    t.check(f is not None and f.status == 200 and took < 10,
            "%s: 200 with the push, in %.1f s (not the 32 s of the silent branch)"
            % (label, took), c.flow())
    t.check(env.wait_push("apns", REMOTE_UDP, lambda r: W.push_type(r) == "voicemail")
            is not None, "%s: the voicemail push went out" % label,
            W.summarize_pushes(env.apns_for(REMOTE_UDP)))

    label = "bare-browser"
    t.section("%s: a browser subscription without keys" % label)
    bare = env.webpush.subscribe("vmbare", keys=False)
    asleep(t, sw_addr, "vmbare", pushlib.webpush_pn(bare), W.instance(78), label)
    c, f = notify(t, kam, "vmbare", SUMMARY, "vm-bare")
    t.check(f is not None and f.status == 480, "%s: 480, the counts could reach nobody" % label,
            c.flow())
    t.check(not env.webpush.pushes("vmbare"), "%s: no empty push for it" % label,
            env.webpush.pushes("vmbare"))

    label = "voip-only"
    t.section("%s: a sleeping iPhone with only a PushKit token" % label)
    asleep(t, sw_addr, "vmvoip", W.apns_pn(VOIP_ONLY), W.instance(75), label)
    c, f = notify(t, kam, "vmvoip", SUMMARY, "vm-voip")
    t.check(f is not None and f.status == 480, "%s: 480, no way to tell it" % label, c.flow())
    t.check(not env.apns_for(VOIP_ONLY), "%s: and no PushKit push" % label,
            W.summarize_pushes(env.apns_for(VOIP_ONLY)))

    label = "malformed"
    t.section("%s: a message-summary without Messages-Waiting" % label)
    c, f = notify(t, kam, "vmdroid", "Voice-Message: 1/1\r\n", "vm-bad")
    t.check(f is not None and f.status == 400, "%s: 400" % label, c.flow())

    label = "off"
    t.section("%s: push.voicemail_push = false" % label)
    sw_off = t.sipwaked(env.config(port_off, upstream_uri=kam.uri, workdir=t.dir + "/off",
                                   extra={"push": {"voicemail_push": False}}), name="sw-off")
    asleep(t, (swlib.LOOPBACK, port_off), "vmoff", W.fcm_pn(FCM_OFF), W.instance(76), label)
    c, f = notify(t, kam, "vmoff", SUMMARY, "vm-off")
    t.check(f is not None and f.status == 480, "%s: 480 (no flow, no push)" % label, c.flow())
    t.check(not env.fcm_for(FCM_OFF), "%s: nothing pushed" % label,
            W.summarize_pushes(env.fcm_for(FCM_OFF)))

    for d in (sw, sw_off):
        t.check(d.stop() == 0, "SIGTERM: %s exits 0" % d.name)


if __name__ == "__main__":
    swlib.run(main)
