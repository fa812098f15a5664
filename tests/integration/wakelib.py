# SPDX-License-Identifier: MIT
"""Helpers for the wake-up routing tests (test_wake_*.py) and bench/wake.

- WakeEnv: a throw-away PKI (pushlib.PKI), the fake APNs and FCM (and on
  request the fake Web Push service) on free loopback ports, and the
  sipwaked config that points at them (UDP, TCP and a sips: TLS listener
  with the test server certificate).
- Phone: a SIP phone in Python on UDP, TCP or TLS (sipp here has no TLS).
  It registers with push parameters, can drop its connection and register
  again from a NEW socket (new port), and answers or refuses calls. Every
  message it sent or received is kept in .wire for the failure reports.
- Caller: a raw INVITE sender (to Kamailio or sipwake) that can CANCEL, ACK
  and BYE, with the responses it saw.
Standard library plus what pushlib needs; every wait is bounded.
"""
import os
import re
import socket
import ssl
import time

import pushlib
import swlib

SDP = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

APNS_TEAM = pushlib.TEAM
BUNDLE = pushlib.BUNDLE
FCM_PROJECT = pushlib.PROJECT


def apns_pn(token, voip=True):
    """RFC 8599 Contact parameters of an iOS phone (PushKit topic)."""
    return ";pn-provider=apns;pn-prid=%s;pn-param=%s.%s%s" % (
        token, APNS_TEAM, BUNDLE, ".voip" if voip else "")


def apns2_pn(remote, voip):
    """Linphone's two-token form: VoIP token for calls, remote token for
    alerts (messages, missed call / answered elsewhere)."""
    return ";pn-provider=apns;pn-prid=%s:remote&%s:voip;pn-param=%s.%s.remote&voip" % (
        remote, voip, APNS_TEAM, BUNDLE)


def fcm_pn(token):
    return ";pn-provider=fcm;pn-prid=%s;pn-param=%s" % (token, FCM_PROJECT)


def instance(n):
    return '+sip.instance="<urn:uuid:00000000-0000-4000-8000-%012d>"' % n


def _tag():
    return "%x" % (time.monotonic_ns() & 0xFFFFFFFFFF)


def _branch():
    return "z9hG4bK-wk-%d-%x" % (os.getpid(), time.monotonic_ns())


class WakeEnv:
    """PKI + fake APNs + fake FCM (+ the fake Web Push service when webpush,
    the fake operator service "acme" of push.http when http_push), stopped
    through t.on_cleanup."""

    HTTP_AUTH = "X-Api-Key: k-123"

    def __init__(self, t, apns_rules=None, fcm_rules=None, webpush=False, http_push=False):
        self.t = t
        d = os.path.join(t.dir, "pki")
        os.makedirs(d, exist_ok=True)
        self.pki = pushlib.PKI(d)
        self.apns = pushlib.apns_fake(self.pki, rules=["%s=%s" % kv for kv in
                                                       (apns_rules or {}).items()],
                                      name="apns")
        t.on_cleanup(self.apns.stop)
        fport = swlib.free_port()
        self.fcm_url = "https://127.0.0.1:%d" % fport
        self.sa = self.pki.service_account(self.fcm_url + "/token")
        self.fcm = pushlib.Fake(self.pki, "fcm", ["%s=%s" % kv for kv in (fcm_rules or {}).items()],
                                ["--service-account", self.sa], port=fport, name="fcm")
        t.on_cleanup(self.fcm.stop)
        self.webpush = None
        if webpush:
            self.webpush = pushlib.WebPush(self.pki)
            t.on_cleanup(self.webpush.stop)
        self.http = None
        if http_push:
            self.http = pushlib.Fake(self.pki, "http_push", [], ["--path", "/push", "--auth",
                                                                 self.HTTP_AUTH], name="acme")
            t.on_cleanup(self.http.stop)

    def config(self, port, tls_port=None, upstream_uri="", extra=None, workdir=None):
        """sipwaked config with both fakes; workdir (default the test's) holds
        the database and control socket: give each daemon of a test its own."""
        workdir = workdir or self.t.dir
        os.makedirs(workdir, exist_ok=True)
        cfg = swlib.sipwake_config(workdir, port, upstream_uri=upstream_uri, fcm=False,
                                   apns=False)
        if tls_port:
            cfg["sip"]["listen"].append("sips:127.0.0.1:%d" % tls_port)
            cfg["sip"]["tls"] = {"certificate": self.pki.cert, "private_key": self.pki.key}
        cfg["push"] = {
            "min_interval": 0,
            "apns": {"key_file": self.pki.p8, "key_id": pushlib.KEY_ID, "team_id": APNS_TEAM,
                     "url": self.apns.url, "sandbox_url": self.apns.url,
                     "ca_file": self.pki.ca},
            "fcm": {"service_account": self.sa, "url": self.fcm_url,
                    "token_url": self.fcm_url + "/token", "ca_file": self.pki.ca},
        }
        if self.webpush:
            cfg["push"]["webpush"] = {"vapid_key": self.pki.vapid,
                                      "subject": "mailto:ops@sipwake.test",
                                      "ca_file": self.pki.ca}
        if self.http:
            cfg["push"]["http"] = {"provider": "acme", "url": self.http.url + "/push",
                                   "auth_header": self.HTTP_AUTH, "ca_file": self.pki.ca}
        return swlib.deep_merge(cfg, extra or {})

    # what the fakes received ------------------------------------------------
    def apns_for(self, token):
        return [r for r in self.apns.requests() if r.get("token") == token]

    def fcm_for(self, token):
        return [r for r in self.fcm.requests() if r.get("token") == token]

    def wait_push(self, provider, token, pred=lambda r: True, timeout=10.0):
        """The first request for token at the fake satisfying pred, or None."""
        get = self.apns_for if provider == "apns" else self.fcm_for
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in get(token):
                if pred(r):
                    return r
            time.sleep(0.05)
        return None


def push_type(r):
    """'call'/'message'/'cancel'/'wakeup' of a fake's request record."""
    if "payload" in r:
        return r["payload"].get("type")
    return ((r.get("body") or {}).get("message") or {}).get("data", {}).get("type")


def push_data(r):
    """The APNs payload or the FCM data object of a record."""
    if "payload" in r:
        return r["payload"]
    return ((r.get("body") or {}).get("message") or {}).get("data", {})


def summarize_pushes(records):
    out = []
    for r in records:
        h = r.get("headers", {})
        out.append("  %s status=%s type=%s push-type=%s topic=%s prio=%s reason=%s" % (
            (r.get("token") or "?")[:12], r.get("status"), push_type(r), h.get("apns-push-type"),
            h.get("apns-topic"), h.get("apns-priority"), push_data(r).get("reason")))
    return "\n".join(out) or "  (no push)"


class _Conn:
    """One socket of a Phone/Caller: UDP, TCP or TLS, message framing."""

    def __init__(self, transport, remote, ca=None):
        self.transport = transport
        self.remote = remote
        self.buf = b""
        self.closed = False
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((swlib.LOOPBACK, 0))
        else:
            raw = socket.create_connection(remote, timeout=5)
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=ca)
                ctx.check_hostname = False
                if not ca:
                    ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            self.sock = raw
        self.local = self.sock.getsockname()[:2]

    def send(self, data, addr=None):
        if self.transport == "udp":
            self.sock.sendto(data, addr or self.remote)
        else:
            self.sock.sendall(data)

    def read(self, deadline):
        """(SipMsg, from addr) or (None, None) at the deadline / close."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None, None
            if self.transport != "udp":
                data, self.buf = swlib.next_stream_message(self.buf)
                if data is not None:
                    return swlib.SipMsg(data.decode("utf-8", "replace"), "received",
                                        self.transport.upper()), self.remote
            self.sock.settimeout(min(left, 0.5))
            try:
                if self.transport == "udp":
                    data, addr = self.sock.recvfrom(70000)
                    if data.strip():
                        return swlib.SipMsg(data.decode("utf-8", "replace"), "received",
                                            "UDP"), addr
                    continue
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    return None, None
                self.buf += data
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                self.closed = True
                return None, None

    def close(self):
        """Close; on TCP/TLS, half-close and wait (2 s at most) for sipwake
        to close its side: then it has seen the flow go, and a test that
        calls the 'sleeping' phone next does not race its FIN."""
        try:
            if self.transport != "udp":
                self.sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                    if not self.sock.recv(65536):
                        break
        except (OSError, ssl.SSLError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


class _Party:
    """Shared by Phone and Caller: wire log, pending queue, responses."""

    def __init__(self, name):
        self.name = name
        self.wire = []        # (time, "> "/"< ", SipMsg)
        self.pending = []     # received, not yet consumed: (msg, addr)
        self.conn = None

    def _log(self, d, msg):
        self.wire.append((time.time(), d, msg))

    def send(self, data, addr=None):
        self._log("> ", swlib.SipMsg(data.decode("utf-8", "replace"), "sent"))
        self.conn.send(data, addr)

    def _pump(self, deadline):
        m, a = self.conn.read(deadline)
        if m is not None:
            self._log("< ", m)
            self._auto(m, a)
            self.pending.append((m, a))
        return m

    def _auto(self, m, a):
        pass

    def wait(self, pred, timeout=10.0):
        """First pending/arriving message satisfying pred (consumed), or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (m, a) in enumerate(self.pending):
                if pred(m):
                    del self.pending[i]
                    return m
            if time.monotonic() >= deadline:
                return None
            if self._pump(deadline) is None and self.conn.closed:
                for i, (m, a) in enumerate(self.pending):
                    if pred(m):
                        del self.pending[i]
                        return m
                return None

    def addr_of(self, msg):
        for m, a in [(x, y) for (x, y) in self.pending]:
            if m is msg:
                return a
        return None

    def flow(self):
        return "\n".join("  %s %s %s" % (time.strftime("%H:%M:%S", time.localtime(t)) +
                                          ".%03d" % int((t % 1) * 1000), d, m.summary())
                         for t, d, m in self.wire) or "  (nothing)"

    def trace(self, last=6):
        """Full text of the last messages (for failure reports)."""
        return "\n".join("%s%s\n%s" % (d, m.summary(), m.text.strip()[:1500])
                         for _, d, m in self.wire[-last:])

    def received(self, pred=lambda m: True):
        return [m for _, d, m in self.wire if d == "< " and pred(m)]


def response_text(req, status, reason, to_tag=None, extra=(), body="", rr=True):
    lines = ["SIP/2.0 %d %s" % (status, reason)]
    for v in req.all("via"):
        lines.append("Via: " + v)
    if rr:
        for r in req.all("record-route"):
            lines.append("Record-Route: " + r)
    lines.append("From: " + req.get("from"))
    to = req.get("to")
    if to_tag and ";tag=" not in to:
        to += ";tag=" + to_tag
    lines.append("To: " + to)
    lines.append("Call-ID: " + req.call_id)
    lines.append("CSeq: " + req.get("cseq"))
    lines += ["%s: %s" % kv for kv in extra]
    lines.append("Content-Length: %d" % len(body.encode()))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class Phone(_Party):
    """A push-capable phone registering at sipwake (addr) over transport."""

    def __init__(self, transport, sw_addr, user, pn="", inst=None, ca=None, name=None,
                 domain=swlib.DOMAIN):
        super().__init__(name or user)
        self.transport = transport
        self.sw = sw_addr
        self.user, self.pn, self.inst, self.ca, self.domain = user, pn, inst, ca, domain
        self.call_id = "reg-%s-%x@test" % (user, time.monotonic_ns())
        self.cseq = 0
        self.tag = _tag()
        self.to_tag = _tag()
        self.ports = []
        self.dialogs = {}  # call-id -> INVITE

    def connect(self):
        """A NEW socket (new local port): after close(), the phone 'woke up'."""
        if self.conn is not None:
            self.conn.close()
        self.conn = _Conn(self.transport, self.sw, self.ca)
        self.ports.append(self.conn.local[1])
        return self

    @property
    def port(self):
        return self.conn.local[1]

    def contact(self):
        return "<sip:%s@%s:%d;transport=%s%s>%s" % (
            self.user, self.conn.local[0], self.conn.local[1], self.transport, self.pn,
            (";" + self.inst) if self.inst else "")

    def register(self, expires=600, timeout=10.0, password=None):
        """REGISTER from the current socket; returns the final response (or
        None). With password, a 401/407 is answered once (digest, as the
        phone's own credentials), with the next CSeq."""
        r = self._register(expires, timeout)
        if password is None or r is None or r.status not in (401, 407):
            return r
        hdr = "www-authenticate" if r.status == 401 else "proxy-authenticate"
        chs = swlib.digest_challenges(r, hdr)
        if not chs:
            return r
        creds = swlib.digest_credentials(chs[0], "REGISTER", "sip:" + self.domain, self.user,
                                         password, cnonce=_tag())
        return self._register(expires, timeout, ("Authorization" if r.status == 401
                                                 else "Proxy-Authorization", creds))

    def _register(self, expires, timeout, auth=None):
        self.cseq += 1
        tr = self.transport.upper()
        req = ("REGISTER sip:%s SIP/2.0\r\n"
               "Via: SIP/2.0/%s %s:%d;branch=%s;rport\r\n"
               "Max-Forwards: 70\r\n"
               "From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\n"
               "Call-ID: %s\r\nCSeq: %d REGISTER\r\n"
               "Contact: %s\r\nExpires: %d\r\nSupported: path, outbound\r\n%s"
               "User-Agent: wakelib-phone\r\nContent-Length: 0\r\n\r\n" % (
                   self.domain, tr, self.conn.local[0], self.conn.local[1], _branch(),
                   self.user, self.domain, self.tag, self.user, self.domain, self.call_id,
                   self.cseq, self.contact(), expires,
                   "%s: %s\r\n" % auth if auth else "")).encode()
        self.send(req)
        cseq = "%d REGISTER" % self.cseq
        return self.wait(lambda m: m.status is not None and m.status >= 200
                         and m.get("cseq") == cseq, timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()

    def _reply_addr(self, req):
        for m, a in self.pending:
            if m is req:
                return a
        return getattr(req, "_from", None)

    def _auto(self, m, a):
        m._from = a

    def respond(self, req, status, reason, body="", extra=()):
        ex = list(extra)
        if req.method == "INVITE" and status < 300 and status > 100:
            ex.append(("Contact", "<sip:%s@%s:%d;transport=%s>" % (
                self.user, self.conn.local[0], self.conn.local[1], self.transport)))
        if body:
            ex.append(("Content-Type", "application/sdp"))
        tag = self.to_tag if status > 100 else None
        self.send(response_text(req, status, reason, tag, ex, body), getattr(req, "_from", None))

    def wait_invite(self, timeout=10.0):
        return self.wait(lambda m: m.method == "INVITE", timeout)

    def answer(self, inv, timeout=10.0):
        """180, 200 with SDP, then wait for the ACK. Returns the ACK or None."""
        self.respond(inv, 180, "Ringing")
        self.respond(inv, 200, "OK", body=SDP)
        self.dialogs[inv.call_id] = inv
        return self.wait(lambda m: m.method == "ACK" and m.call_id == inv.call_id, timeout)

    def wait_bye(self, call_id, timeout=10.0):
        bye = self.wait(lambda m: m.method == "BYE" and m.call_id == call_id, timeout)
        if bye is not None:
            self.respond(bye, 200, "OK")
        return bye

    def wait_cancel(self, inv, timeout=10.0):
        """CANCEL for inv: 200 to it, 487 to the INVITE, wait for the ACK."""
        c = self.wait(lambda m: m.method == "CANCEL" and m.call_id == inv.call_id, timeout)
        if c is not None:
            self.respond(c, 200, "OK")
            self.respond(inv, 487, "Request Terminated")
            self.wait(lambda m: m.method == "ACK" and m.call_id == inv.call_id, 3)
        return c

    def wait_message(self, timeout=10.0, status=200):
        m = self.wait(lambda x: x.method == "MESSAGE", timeout)
        if m is not None:
            self.respond(m, status, "OK")
        return m


class Caller(_Party):
    """A caller sending INVITE/MESSAGE/NOTIFY to `remote` (Kamailio or sipwake)."""

    def __init__(self, transport, remote, user, name="caller", domain=swlib.DOMAIN,
                 display="Alice Caller"):
        super().__init__(name)
        self.conn = _Conn(transport, remote)
        self.transport = transport
        self.remote = remote
        self.user, self.domain, self.display = user, domain, display
        self.call_id = "call-%s-%x@caller" % (user, time.monotonic_ns())
        self.tag = _tag()
        self.branch = None
        self.invite_text = None
        self.routes = []
        self.remote_target = None
        self.to_hdr = None

    def _hdrs(self, method, cseq, branch):
        return ("Via: SIP/2.0/%s %s:%d;branch=%s;rport\r\nMax-Forwards: 70\r\n"
                'From: "%s" <sip:caller@%s>;tag=%s\r\n' % (
                    self.transport.upper(), self.conn.local[0], self.conn.local[1], branch,
                    self.display, self.domain, self.tag))

    def invite(self, extra=()):
        self.branch = _branch()
        body = SDP
        txt = ("INVITE sip:%s@%s SIP/2.0\r\n" % (self.user, self.domain) +
               self._hdrs("INVITE", 1, self.branch) +
               "To: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"
               "Contact: <sip:caller@%s:%d;transport=%s>\r\n" % (
                   self.user, self.domain, self.call_id, self.conn.local[0],
                   self.conn.local[1], self.transport) +
               "".join("%s: %s\r\n" % kv for kv in extra) +
               "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s" % (
                   len(body), body))
        self.invite_text = txt
        self.send(txt.encode())

    def message(self, text, extra=(), ctype="text/plain"):
        self.branch = _branch()
        body = text.encode()
        txt = ("MESSAGE sip:%s@%s SIP/2.0\r\n" % (self.user, self.domain) +
               self._hdrs("MESSAGE", 1, self.branch) +
               "To: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n" % (
                   self.user, self.domain, self.call_id) +
               "".join("%s: %s\r\n" % kv for kv in extra) +
               "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, len(body)))
        self.send(txt.encode() + body)

    def notify_summary(self, body, extra=()):
        """An unsolicited NOTIFY (Event: message-summary, RFC 3842) to the user,
        as a voicemail server sends it; the final response is in final()."""
        self.branch = _branch()
        data = body.encode()
        txt = ("NOTIFY sip:%s@%s SIP/2.0\r\n" % (self.user, self.domain) +
               self._hdrs("NOTIFY", 1, self.branch) +
               "To: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 NOTIFY\r\n"
               "Contact: <sip:voicemail@%s:%d;transport=%s>\r\n"
               "Event: message-summary\r\nSubscription-State: active\r\n" % (
                   self.user, self.domain, self.call_id, self.conn.local[0],
                   self.conn.local[1], self.transport) +
               "".join("%s: %s\r\n" % kv for kv in extra) +
               "Content-Type: application/simple-message-summary\r\n"
               "Content-Length: %d\r\n\r\n" % len(data))
        self.send(txt.encode() + data)

    def responses(self):
        return self.received(lambda m: m.status is not None)

    def wait_status(self, pred, timeout=10.0):
        return self.wait(lambda m: m.status is not None and pred(m.status), timeout)

    def final(self, timeout=10.0):
        """The final response to the INVITE/MESSAGE; a non-2xx INVITE final is ACKed."""
        f = self.wait(lambda m: m.status is not None and m.status >= 200
                      and m.cseq_method in ("INVITE", "MESSAGE", "NOTIFY"), timeout)
        if f is not None and f.cseq_method == "INVITE" and f.status >= 300:
            ack = ("ACK sip:%s@%s SIP/2.0\r\n" % (self.user, self.domain) +
                   self._hdrs("ACK", 1, self.branch) +
                   "To: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n" % (
                       f.get("to"), self.call_id))
            self.send(ack.encode())
        return f

    def cancel(self):
        txt = ("CANCEL sip:%s@%s SIP/2.0\r\n" % (self.user, self.domain) +
               self._hdrs("CANCEL", 1, self.branch) +
               "To: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n" % (
                   self.user, self.domain, self.call_id))
        self.send(txt.encode())

    def _in_dialog(self, method, cseq, ok):
        rr = list(reversed(ok.all("record-route")))
        contact = ok.get("contact") or ""
        m = re.search(r"<([^>]+)>", contact)
        target = m.group(1) if m else contact
        txt = ("%s %s SIP/2.0\r\n" % (method, target) + self._hdrs(method, cseq, _branch()) +
               "".join("Route: %s\r\n" % r for r in rr) +
               "To: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n" % (
                   ok.get("to"), self.call_id, cseq, method))
        # loose routing: send to the first Route, else to the Contact
        hp = swlib.uri_hostport(rr[0] if rr else target)
        dest = (hp[0], hp[1] or 5060) if hp else None
        if self.transport == "udp" and dest:
            self.send(txt.encode(), dest)
        else:
            self.send(txt.encode())

    def ack(self, ok):
        self._in_dialog("ACK", 1, ok)

    def bye(self, ok):
        """Send the BYE (the answer: wait_bye_ok, after the phone answered it)."""
        self._in_dialog("BYE", 2, ok)

    def wait_bye_ok(self, timeout=10.0):
        return self.wait(lambda m: m.status is not None and m.status >= 200
                         and m.cseq_method == "BYE", timeout)

    def close(self):
        self.conn.close()


def started_caller(t, *a, **kw):
    c = Caller(*a, **kw)
    t.on_cleanup(c.close)
    return c


def started_phone(t, *a, **kw):
    p = Phone(*a, **kw)
    t.on_cleanup(p.close)
    return p


def sleeping_phone(t, sw_addr, user, pn, inst, label, transport="tcp", ca=None):
    """A phone that registered with push parameters (required: 200) and went
    to sleep (its connection closed, and seen closed by sipwake).
    Returns (phone, the 200 to its REGISTER)."""
    p = started_phone(t, transport, sw_addr, user, pn=pn, inst=inst, ca=ca,
                      name="%s-%s" % (label, user)).connect()
    r = p.register()
    t.require(r is not None and r.status == 200, "%s: %s registers -> 200" % (label, user),
              p.trace())
    p.close()
    return p, r
