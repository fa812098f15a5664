# SPDX-License-Identifier: MIT
"""Helpers for the push integration tests and bench/push.

Generates a throw-away PKI with the openssl command (test CA, server
certificate for 127.0.0.1, an APNs client certificate, an APNs .p8 key, an
FCM service account), starts the fake providers on free loopback ports,
runs tests/helpers/push_driver with a script and reads back both sides:
what the driver reported and what the fake received. Every process started
here is stopped by its PID.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SIPWAKE_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("SIPWAKE_BUILD_DIR", os.path.join(SOURCE, "build"))
FAKES = os.path.join(SOURCE, "tests", "fakes")
PYTHON = "/usr/bin/python3"
DRIVER = os.path.join(BUILD, "tests", "push_driver")

TEAM = "TEAM123456"
KEY_ID = "KEY1234567"
BUNDLE = "com.example.phone"
PROJECT = "sipwake-test"
EMAIL = "push@sipwake-test.iam.gserviceaccount.com"


def tok(n):
    """A distinct 64-hex-digit APNs token."""
    return ("%064x" % (0xA11CE0000 + n))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class PKI:
    def __init__(self, d):
        self.dir = d
        os.chmod(d, 0o700)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=sipwake test CA", cwd=d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        with open(os.path.join(d, "client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=127.0.0.1", cwd=d)
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
        openssl("req", *ec, "-keyout", "client.key", "-out", "client.csr",
                "-subj", "/UID=%s/CN=Apple Push Services: %s" % (BUNDLE, BUNDLE), cwd=d)
        openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext",
                cwd=d)
        # APNs auth key (.p8 = PKCS#8 P-256), as Apple's developer portal hands it out.
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", "AuthKey.p8", cwd=d)
        # FCM service account with a fresh RSA key.
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", "sa.key", cwd=d)
        # Web Push VAPID key pair (P-256), as an operator makes it with openssl.
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", "vapid.pem", cwd=d)
        for k in ("ca.key", "server.key", "client.key", "AuthKey.p8", "sa.key", "vapid.pem"):
            os.chmod(os.path.join(d, k), 0o600)
        self.ca = self.p("ca.pem")
        self.cert = self.p("server.pem")
        self.key = self.p("server.key")
        self.client_cert = self.p("client.pem")
        self.client_key = self.p("client.key")
        self.p8 = self.p("AuthKey.p8")
        self.vapid = self.p("vapid.pem")
        self.vapid_public = vapid_public_of(self.vapid)

    def p(self, name):
        return os.path.join(self.dir, name)

    def service_account(self, token_uri, name="sa.json", **drop):
        with open(self.p("sa.key")) as f:
            pem = f.read()
        sa = {"type": "service_account", "project_id": PROJECT, "private_key_id": "abc123",
              "private_key": pem, "client_email": EMAIL, "client_id": "1",
              "token_uri": token_uri}
        for k in drop:
            sa.pop(k, None)
        path = self.p(name)
        with open(path, "w") as f:
            json.dump(sa, f)
        os.chmod(path, 0o600)
        return path


class PushTestCase(unittest.TestCase):
    """A test class with one throw-away PKI (and its directory) for all its tests."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.pki = PKI(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_public_of(pem_path):
    """The applicationServerKey of a VAPID key: base64url of its public point."""
    from cryptography.hazmat.primitives import serialization
    with open(pem_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    return b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fake:
    """A fake provider process; use as a context manager."""
    started = 0

    def __init__(self, pki, kind, rules=(), extra=(), port=0, name=None):
        self.pki = pki
        Fake.started += 1
        name = "%s-%d" % (name or kind, Fake.started)
        self.log = pki.p(name + ".log")
        self.port_file = pki.p(name + ".port")
        self.rules_file = pki.p(name + ".rules")
        script = os.path.join(FAKES, "fake_%s.py" % kind)
        cmd = [PYTHON, script, "--cert", pki.cert, "--key", pki.key, "--port", str(port),
               "--port-file", self.port_file, "--log", self.log, "--rules-file", self.rules_file]
        for r in rules:
            cmd += ["--rule", r]
        cmd += list(extra)
        with open(pki.p(name + ".stderr"), "w") as err:
            self.proc = subprocess.Popen(cmd, stderr=err)
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("fake %s did not start" % kind)
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.url = "https://127.0.0.1:%d" % self.port

    def set_rules(self, rules):
        with open(self.rules_file + ".tmp", "w") as f:
            json.dump(rules, f)
        os.rename(self.rules_file + ".tmp", self.rules_file)

    def records(self):
        out = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                for line in f:
                    out.append(json.loads(line))
        return out

    def requests(self):
        return [r for r in self.records() if "event" not in r]

    def wait_event(self, event, count=1, timeout=5.0):
        """The records of an event once count of them are logged (bounded
        wait: a connection's close reaches the fake after the client exits)."""
        deadline = time.time() + timeout
        while True:
            got = [r for r in self.records() if r.get("event") == event]
            if len(got) >= count or time.time() > deadline:
                return got
            time.sleep(0.05)

    def connections(self):
        return [r for r in self.records() if r.get("event") == "connect"]

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def apns_fake(pki, rules=(), cert_auth=False, extra=(), **kw):
    extra = ["--bundle", BUNDLE] + list(extra)
    if cert_auth:
        extra += ["--client-ca", pki.ca]
    else:
        extra += ["--auth-key", pki.p8, "--key-id", KEY_ID, "--team-id", TEAM]
    return Fake(pki, "apns", rules, extra, **kw)


def apns_config(pki, url, sandbox_url=None, cert_auth=False, **kw):
    cfg = {"apns_url": url, "apns_sandbox_url": sandbox_url or url, "apns_ca": pki.ca}
    if cert_auth:
        cfg.update(apns_cert=pki.client_cert, apns_cert_key=pki.client_key)
    else:
        cfg.update(apns_key=pki.p8, apns_key_id=KEY_ID, apns_team=TEAM)
    cfg.update(kw)
    return cfg


class WebPush:
    """fake_webpush.py and the subscriptions it knows, as a browser makes them."""

    def __init__(self, pki, rules=(), port=0, name="webpush"):
        self.pki = pki
        self.subs = {}
        self.subs_file = pki.p("%s-%d.subs" % (name, Fake.started + 1))
        self._save()
        self.fake = Fake(pki, "webpush", rules, ["--subscriptions", self.subs_file], port=port,
                         name=name)
        self.url = self.fake.url

    def _save(self):
        with open(self.subs_file + ".tmp", "w") as f:
            json.dump(self.subs, f)
        os.rename(self.subs_file + ".tmp", self.subs_file)

    def subscribe(self, sid, keys=True, server_key=None):
        """A subscription for applicationServerKey server_key (default the test
        VAPID key): {"endpoint", and with keys "p256dh", "auth"}."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        sub = {"server_key": server_key or self.pki.vapid_public}
        out = {"endpoint": "%s/push/%s" % (self.url, sid)}
        if keys:
            k = ec.generate_private_key(ec.SECP256R1())
            sub["private"] = b64url(k.private_numbers().private_value.to_bytes(32, "big"))
            sub["auth"] = b64url(os.urandom(16))
            out["p256dh"] = b64url(k.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
            out["auth"] = sub["auth"]
        self.subs[sid] = sub
        self._save()
        return out

    def pushes(self, sid=None):
        return [r for r in self.fake.requests() if sid is None or r.get("sub") == sid]

    def set_rules(self, rules):
        self.fake.set_rules(rules)

    def stop(self):
        self.fake.stop()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def webpush_pn(sub, param=None):
    """Contact parameters of a Web Push subscription (docs/client-guide.md)."""
    import urllib.parse
    pn = ";pn-provider=webpush;pn-prid=%s" % urllib.parse.quote(sub["endpoint"], safe="")
    if "p256dh" in sub:
        pn += ";pn-p256dh=%s;pn-auth=%s" % (sub["p256dh"], sub["auth"])
    if param:
        pn += ";pn-param=" + param
    return pn


def check_sanitizers(stderr):
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        if marker in stderr:
            sys.stderr.write(stderr)
            raise AssertionError("sanitizer report from push_driver")


# Which HTTP/2 client the push layer uses (push.http2): ctest runs each
# test_push_* once as is ("curl", the default) and once with
# SIPWAKE_PUSH_HTTP2=nghttp2 (tests/CMakeLists.txt).
HTTP2 = os.environ.get("SIPWAKE_PUSH_HTTP2", "")


def with_transport(config):
    if HTTP2 and "http2" not in config:
        config = dict(config, http2=HTTP2)
    return config


def run_driver(config, ops, timeout=120, env=None, log_level="info", expect_rc=0):
    """Run push_driver; returns (events, stderr text). Raises on an unexpected exit."""
    config = with_transport(config)
    script = "".join(json.dumps(op) + "\n" for op in ops)
    p = subprocess.run([DRIVER, "--config", json.dumps(config), "--log-level", log_level],
                       input=script.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env)
    events = []
    for line in p.stdout.decode().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    stderr = p.stderr.decode()
    check_sanitizers(stderr)
    if p.returncode != expect_rc:
        sys.stderr.write(stderr)
        raise RuntimeError("push_driver exited with %d" % p.returncode)
    return events, stderr


def results(events, tag=None):
    return [e for e in events if e.get("event") == "result" and (tag is None or e["tag"] == tag)]


def one(events, tag):
    r = results(events, tag)
    assert len(r) == 1, "expected one result for %s, got %r" % (tag, r)
    return r[0]


def stats(events):
    s = [e for e in events if e.get("event") == "stats"]
    return s[-1] if s else None


def send(tag, kind="call", provider="apns", **kw):
    op = {"op": "send", "tag": tag, "kind": kind, "provider": provider,
          "call_id": "call-%s@example.com" % tag, "from_uri": "sip:alice@example.com",
          "from_name": "Alice", "to_uri": "sip:bob@example.com", "deadline_ms": 5000}
    if provider.startswith("apns"):
        op["topic"] = BUNDLE
    op.update(kw)
    return op


def tmpdir():
    # Under the build tree, not /tmp: other suites on this machine clean /tmp/sipwake-*.
    base = os.path.join(BUILD, "test-tmp")
    os.makedirs(base, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="push-", dir=base)


class DriverProcess:
    """push_driver running in the background while the test changes the world."""

    def __init__(self, config, ops, log_level="info"):
        config = with_transport(config)
        script = "".join(json.dumps(op) + "\n" for op in ops)
        self.proc = subprocess.Popen(
            [DRIVER, "--config", json.dumps(config), "--log-level", log_level],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The driver reads its whole script before it starts: hand it over now.
        self.proc.stdin.write(script.encode())
        self.proc.stdin.close()
        self.proc.stdin = None

    def finish(self, timeout=120):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise
        events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        check_sanitizers(err.decode())
        if self.proc.returncode != 0:
            sys.stderr.write(err.decode())
            raise RuntimeError("push_driver exited with %d" % self.proc.returncode)
        return events, err.decode()
