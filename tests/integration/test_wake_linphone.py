#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real softphone woken by a push (issue 4 item 7, last case): linphonec
(liblinphone 5.1) registers through sipwake (gateway mode, Kamailio as the
registrar) over TCP, with FCM push parameters from its config
([proxy_0] contact_uri_parameters, TESTING.md) and its own +sip.instance.

The app is then killed (SIGKILL: its TCP connection closes, as when the OS
kills a suspended app). A caller (sipp uac.xml) calls its AOR at Kamailio;
the fake FCM gets the call push; linphonec is started again with the same
config (what the push does to a real app): it registers on a new TCP
connection, sipwake releases the held INVITE to it, linphonec auto-answers
(-a), the caller sends ACK and BYE through sipwake and gets 200 to both.

linphonec needs a writable ~/.local/share/linphone (HOME is the test's own
directory) and quits when its stdin closes, so it is fed from a pipe that
stays open until the test sends "quit". Skipped (exit 0 with a note) when
linphonec is not installed.
"""
import os
import shutil
import signal
import subprocess
import time

import swlib
import wakelib as W

TOKEN = "fcm-linphone-" + "l" * 30
# An installed app keeps its instance id; liblinphone writes a new one to its
# config only on a clean exit, so a SIGKILLed first run would come back with
# another +sip.instance: give it one from the start, as a real install has.
UUID = "5a17e000-0000-4000-8000-00000000a11c"
LINPHONEC = shutil.which("linphonec") or "/usr/bin/linphonec"


class Linphonec:
    def __init__(self, t, sw_addr, user):
        self.t = t
        self.dir = os.path.join(t.dir, "linphonec")
        self.home = os.path.join(self.dir, "home")
        os.makedirs(os.path.join(self.home, ".local", "share", "linphone"), exist_ok=True)
        self.rc = os.path.join(self.dir, "linphonerc")
        self.user = user
        self.proc = None
        self.runs = 0
        with open(self.rc, "w") as f:
            f.write("[sip]\nsip_port=0\nsip_tcp_port=%d\nsip_tls_port=0\ndefault_proxy=0\n"
                    "register_only_when_network_is_up=0\nipv6_enabled=0\n"
                    "[net]\nfirewall_policy=0\n"
                    "[sound]\nechocancellation=0\n"
                    "[video]\ncapture=0\ndisplay=0\n"
                    "[misc]\nuuid=%s\n"
                    "[proxy_0]\nreg_proxy=<sip:%s:%d;transport=tcp>\n"
                    "reg_identity=sip:%s@%s\nreg_expires=600\nreg_sendregister=1\npublish=0\n"
                    "contact_uri_parameters=pn-provider=fcm;pn-prid=%s;pn-param=%s\n"
                    % (swlib.free_port(), UUID, sw_addr[0], sw_addr[1], user, swlib.DOMAIN, TOKEN,
                       W.FCM_PROJECT))

    def start(self):
        self.runs += 1
        env = dict(os.environ, HOME=self.home)
        out = open(os.path.join(self.dir, "output-%d.log" % self.runs), "wb")
        self.proc = subprocess.Popen([LINPHONEC, "-c", self.rc, "-a", "-d", "3"],
                                     stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=env, start_new_session=True)
        out.close()
        swlib._register("linphonec", self.proc)
        return self

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        if self.proc:
            swlib._forget(self.proc)

    def quit(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill9()

    def output(self):
        return swlib.tail(os.path.join(self.dir, "output-%d.log" % self.runs), 25)


def wait_contacts(kam, user, pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = kam.contacts(user)
        if pred(c):
            return c
        time.sleep(0.2)
    return kam.contacts(user)


def main(t):
    if not os.path.exists(LINPHONEC):
        t.check(True, "linphonec not installed: test skipped")
        return
    kam = t.kamailio(name="upstream")
    env = W.WakeEnv(t)
    port = swlib.free_port()
    sw = t.sipwaked(env.config(port, upstream_uri=kam.uri, extra={"push": {"call_timeout": 30}}))
    sw_addr = (swlib.LOOPBACK, port)
    user = "lin"

    t.section("linphonec registers through sipwake with FCM push parameters")
    lp = Linphonec(t, sw_addr, user)
    t.on_cleanup(lp.quit)
    lp.start()
    first = wait_contacts(kam, user, lambda c: len(c) >= 1)
    if not t.check(len(first) == 1, "linphonec's REGISTER reached Kamailio through sipwake",
                   "Kamailio contacts: %s\nlinphonec:\n%s" % (first, lp.output())):
        return
    addr, path = first[0]
    t.check(swlib.uri_hostport(path)[:2] == sw_addr and "pn-" not in addr,
            "Kamailio stored it with sipwake's Path and without pn-* parameters",
            "contact %s path %s" % (addr, path))

    t.section("linphonec is killed (its TCP connection closes); a call comes in")
    lp.kill9()
    time.sleep(0.3)
    caller = t.sipp("uac.xml", kam.addr(), name="caller-lin", user=user, transport="udp",
                    pause_ms=1000, timeout=45).start()
    push = env.wait_push("fcm", TOKEN, lambda r: W.push_type(r) == "call", timeout=10)
    if not t.check(push is not None, "fake FCM got the call push for linphonec's token",
                   "fake FCM:\n%s\ncaller:\n%s" % (W.summarize_pushes(env.fcm.requests()),
                                                   swlib.tail(caller.msg_log, 30))):
        caller.stop()
        return
    t.check(push["status"] == 200 and W.push_data(push).get("call-id"),
            "the push was accepted and names the call", W.summarize_pushes([push]))

    t.section("the push 'wakes' linphonec: it starts again and re-registers")
    lp.start()
    cres = caller.wait(timeout=60)
    t.check(cres.rc == 0, "the call completed: INVITE, 200 from linphonec, ACK, BYE, 200",
            cres.describe() + "\nlinphonec:\n" + lp.output())
    oks = [m for m in cres.received(status=200) if m.cseq_method == "INVITE"]
    if t.check(oks, "caller got the 200 to its INVITE", cres.describe()):
        ua = (oks[0].get("user-agent") or "") + (oks[0].get("server") or "")
        t.check("linphone" in ua.lower() or "belle-sip" in ua.lower(),
                "the 200 came from linphonec (%s)" % (ua or "no User-Agent/Server"),
                oks[0].text)
        rr = oks[0].all("record-route")
        t.check(any(swlib.uri_hostport(r) == sw_addr for r in rr),
                "the dialog is Record-Routed through sipwake", "Record-Route: %s" % rr)
        t.check(oks[0].call_id == W.push_data(push).get("call-id"),
                "the push's call-id is the answered call's")
    t.check(any(m.status == 200 and m.cseq_method == "BYE" for m in cres.received()),
            "the caller's BYE was answered 200 (through sipwake)", cres.describe())
    after = kam.contacts(user)
    t.check(len(after) == 1, "still one contact upstream after the re-registration",
            "Kamailio contacts: %s" % after)

    t.section("shutdown")
    lp.quit()
    t.check(sw.stop() == 0, "SIGTERM: sipwaked exits 0 within 5 s")


if __name__ == "__main__":
    swlib.run(main)
