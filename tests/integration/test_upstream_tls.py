#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A TLS upstream is verified (issue 8 item 6, SPEC 3 upstream.tls_verify).

Gateway mode with upstream.uri = sips:localhost:PORT (sofia resolves it
through a DNS server on loopback given by sip.resolv_conf, the daemon's
own getaddrinfo through /etc/hosts: no query leaves the machine), and
upstream.ca_file = the test CA. The upstream is a small TLS registrar in Python (it answers
a REGISTER 200 with the Contacts it got), presenting in turn:
  - a certificate of the test CA for localhost: the REGISTER
    is relayed, the phone gets the 200;
  - a self-signed certificate for that name: nothing reaches the upstream
    over that connection, the phone gets no 2xx;
  - a certificate of the test CA for another name: the same.
A sipwaked with upstream.tls_verify = false relays to the self-signed one
(the operator's explicit choice, logged as a warning). An upstream named
by its IP address with tls_verify on is a config error (exit 78): sofia
checks certificates by host name only.
Each sipwaked exits 0 on SIGTERM.
"""
import os
import re
import socket
import ssl
import subprocess
import threading

import pushlib
import swlib
import wakelib as W


class TlsRegistrar:
    """Accepts TLS, answers each REGISTER with 200 and its Contact; records them."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.registers = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag:
            try:
                raw, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()

    def serve(self, raw):
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
            conn.settimeout(5)
            buf = b""
            while not self.stop_flag:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    text = head.decode("utf-8", "replace")
                    if not text.startswith("REGISTER "):
                        continue
                    self.registers.append(text)
                    hdr = lambda n: [l for l in text.split("\r\n")
                                     if l.lower().startswith(n.lower() + ":")]
                    resp = ["SIP/2.0 200 OK"] + hdr("Via") + hdr("From")
                    resp += [l + ";tag=up" for l in hdr("To")] + hdr("Call-ID") + hdr("CSeq")
                    resp += [l + ";expires=600" for l in hdr("Contact")]
                    resp += ["Content-Length: 0", "", ""]
                    conn.sendall("\r\n".join(resp).encode())
        except (OSError, ssl.SSLError):
            return

    def stop(self):
        self.stop_flag = True
        self.sock.close()


def cert_for(pki, name, self_signed=False):
    """A certificate for name ("IP:127.0.0.1" or "DNS:x"), the test CA's or self-signed."""
    d = pki.dir
    base = "up-%s-%s" % (name.replace(":", "_"), "self" if self_signed else "ca")
    with open(os.path.join(d, base + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if self_signed:
        pushlib.openssl("req", "-x509", *ec, "-keyout", base + ".key", "-out", base + ".pem",
                        "-days", "2", "-subj", "/CN=upstream", "-addext",
                        "subjectAltName=%s" % name, cwd=d)
    else:
        pushlib.openssl("req", *ec, "-keyout", base + ".key", "-out", base + ".csr",
                        "-subj", "/CN=upstream", cwd=d)
        pushlib.openssl("x509", "-req", "-in", base + ".csr", "-CA", "ca.pem", "-CAkey",
                        "ca.key", "-CAcreateserial", "-out", base + ".pem", "-days", "2",
                        "-extfile", base + ".ext", cwd=d)
    return os.path.join(d, base + ".pem"), os.path.join(d, base + ".key")


NAME = "localhost"  # /etc/hosts for getaddrinfo, our loopback DNS for sofia: no query leaves


def try_register(t, env, dns, label, upstream, verify=True, expect_relay=True):
    port, tls_port = swlib.free_port(), swlib.free_port()
    workdir = os.path.join(t.dir, label)
    os.makedirs(workdir, exist_ok=True)
    cfg = env.config(port, tls_port=tls_port, upstream_uri="sips:%s:%d" % (NAME, upstream.port),
                     workdir=workdir,
                     extra={"upstream": {"tls_verify": verify, "ca_file": env.pki.ca},
                            "sip": {"resolv_conf": dns.resolv_conf(
                                os.path.join(workdir, "resolv-dns.conf"))}})
    sw = t.sipwaked(cfg, name="sipwaked-" + label)
    phone = W.started_phone(t, "udp", (swlib.LOOPBACK, port), "tls" + label).connect()
    before = len(upstream.registers)
    r = phone.register(timeout=8)
    got = len(upstream.registers) - before
    if expect_relay:
        t.check(r is not None and r.status == 200, "%s: the REGISTER is relayed, 200" % label,
                phone.trace())
        t.check(got == 1, "%s: the upstream received it" % label)
    else:
        t.check(r is None or r.status >= 300, "%s: no 2xx for the phone" % label,
                r.summary() if r else "no answer")
        t.check(got == 0, "%s: the upstream received nothing" % label)
    t.check(sw.stop() == 0, "%s: SIGTERM, exit 0" % label)


def full_unwind_under_asan():
    """sofia's leak on verified outgoing TLS connections (tests/lsan.supp)
    is suppressed by its frame, which only full stacks show (OpenSSL has no
    frame pointers)."""
    opts = os.environ.get("ASAN_OPTIONS")
    if opts is not None and "fast_unwind_on_malloc" not in opts:
        os.environ["ASAN_OPTIONS"] = opts + ":fast_unwind_on_malloc=0"


def main(t):
    full_unwind_under_asan()
    env = W.WakeEnv(t)
    dns = swlib.LoopbackDns({NAME: "127.0.0.1"})
    t.on_cleanup(dns.stop)
    good = TlsRegistrar(*cert_for(env.pki, "DNS:" + NAME))
    t.on_cleanup(good.stop)
    selfsigned = TlsRegistrar(*cert_for(env.pki, "DNS:" + NAME, self_signed=True))
    t.on_cleanup(selfsigned.stop)
    wrongname = TlsRegistrar(*cert_for(env.pki, "DNS:other.example"))
    t.on_cleanup(wrongname.stop)

    t.section("a certificate of a trusted CA for the upstream's name")
    try_register(t, env, dns, "good", good)
    t.check(any(n == NAME for n, _ in dns.queries), "sofia looked the name up on loopback")
    t.section("a self-signed certificate")
    try_register(t, env, dns, "selfsigned", selfsigned, expect_relay=False)
    t.section("a trusted CA's certificate for another name")
    try_register(t, env, dns, "wrongname", wrongname, expect_relay=False)
    t.section("upstream.tls_verify = false")
    try_register(t, env, dns, "noverify", selfsigned, verify=False)

    t.section("an upstream named by its address cannot be verified")
    d = os.path.join(t.dir, "byip")
    os.makedirs(d, exist_ok=True)
    cfg = env.config(swlib.free_port(), tls_port=swlib.free_port(),
                     upstream_uri="sips:127.0.0.1:%d" % good.port, workdir=d,
                     extra={"upstream": {"ca_file": env.pki.ca}})
    conf = os.path.join(d, "sipwake.conf")
    with open(conf, "w") as f:
        f.write(swlib.render_libconfig(cfg))
    r = subprocess.run([swlib.sipwaked_binary(), "-c", conf, "--check"], capture_output=True,
                       text=True, timeout=30)
    t.check(r.returncode == 78 and "upstream.uri" in r.stderr and "host name" in r.stderr,
            "--check: exit 78 naming upstream.uri", (r.returncode, r.stderr.strip()))


if __name__ == "__main__":
    swlib.run(main)
