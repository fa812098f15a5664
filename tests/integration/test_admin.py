#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Operations, end to end: start sipwaked (standalone, loopback only) with a
generated config and FCM pointed at the fake FCM of tests/fakes, wait for
READY=1 on a NOTIFY_SOCKET of our own, register clients with raw SIP over
UDP, then drive every sipwakectl command (text and --json; push test sends
a real push to the fake), scrape the Prometheus endpoint and compare its
counters with the traffic sent, poke the control protocol's limits, and
check what happens around start and stop: stale and live sockets, exit 69
once the daemon is gone. Standard library plus the push tests' helpers;
every process is stopped by its PID."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushlib  # noqa: E402  (throw-away PKI and the fake FCM of the push tests)

SIPWAKED = os.environ.get("SIPWAKED", "build/sipwaked")
BUILD = os.environ.get("SIPWAKE_BUILD_DIR", os.path.dirname(os.path.abspath(SIPWAKED)))
CTL = os.path.join(BUILD, "sipwakectl")
DOMAIN = "example.com"
FCM_TOKEN = "fcmTOKEN-" + "x1y2z3" * 20 + "-tail9876"

failures = 0
procs = []


def check(cond, what):
    global failures
    if cond:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def write_config(path, tmp, sip_port, metrics_port, sa_path, sock, fcm_url="https://127.0.0.1:9",
                 ca=""):
    with open(path, "w") as f:
        f.write(f"""
sip: {{
  listen = [ "sip:127.0.0.1:{sip_port};transport=udp", "sip:127.0.0.1:{sip_port};transport=tcp" ];
  domains = [ "{DOMAIN}" ];
}};
upstream: {{ uri = ""; }};
auth: {{ mode = "none"; }};
storage: {{ database = "{tmp}/sipwake.db"; }};
push: {{ min_interval = 0;
        fcm: {{ service_account = "{sa_path}"; url = "{fcm_url}"; token_url = "{fcm_url}/token";
               ca_file = "{ca}"; }}; }};
admin: {{ socket = "{sock}"; metrics_listen = "127.0.0.1:{metrics_port}"; }};
log: {{ level = "debug"; }};
""")


class Sip:
    """A UDP SIP client that sends REGISTER/OPTIONS and reads the final answer."""

    def __init__(self, port):
        self.dst = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(5)
        self.lport = self.s.getsockname()[1]
        self.cseq = 0

    def request(self, method, ruri, user, contact_params="", expires=600, extra=""):
        self.cseq += 1
        branch = "z9hG4bK%d%d" % (os.getpid(), self.cseq)
        contact = ""
        if method == "REGISTER":
            contact = "Contact: <sip:%s@127.0.0.1:%d%s>\r\nExpires: %d\r\n" % (
                user, self.lport, contact_params, expires)
        msg = (f"{method} {ruri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.lport};branch={branch};rport\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:{user}@{DOMAIN}>;tag=t{self.cseq}\r\n"
               f"To: <sip:{user}@{DOMAIN}>\r\n"
               f"Call-ID: admin-test-{user}-{self.lport}\r\n"
               f"CSeq: {self.cseq} {method}\r\n{contact}{extra}"
               f"Content-Length: 0\r\n\r\n")
        self.s.sendto(msg.encode("utf-8", "surrogateescape"), self.dst)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = self.s.recv(65535).decode(errors="replace")
            m = re.match(r"SIP/2\.0 (\d{3})", data)
            if m and int(m.group(1)) >= 200 and branch in data:
                return int(m.group(1))
        return 0


def ctl(*args, sock=None, config=None):
    cmd = [CTL]
    if sock:
        cmd += ["-s", sock]
    if config:
        cmd += ["-c", config]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def ctl_json(sock, *args):
    rc, out, err = ctl("--json", *args, sock=sock)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err


def scrape(port, path="/metrics", method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def metric(text, name, labels=""):
    """Value of one sample (labels as written, e.g. 'method="REGISTER"'), or None."""
    want = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        if key == want:
            return float(val)
    return None


def drain(notify):
    """Drop what the last daemon said (RELOADING=1/READY=1 of reloads, STOPPING=1)."""
    notify.setblocking(False)
    try:
        while notify.recv(4096):
            pass
    except BlockingIOError:
        pass


def start(conf, notify_path=None, log=None):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    if notify_path:
        env["NOTIFY_SOCKET"] = notify_path
    p = subprocess.Popen([SIPWAKED, "-c", conf, "-f"], stdout=log, stderr=subprocess.STDOUT,
                         env=env)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        os.kill(p.pid, sig)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait(timeout=5)


def wait_ready(notify, p, timeout=15):
    deadline = time.monotonic() + timeout
    notify.settimeout(0.2)
    while time.monotonic() < deadline and p.poll() is None:
        try:
            if b"READY=1" in notify.recv(4096):
                return True
        except socket.timeout:
            pass
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="sipwake-admin-")
    log = open(os.path.join(tmp, "sipwaked.log"), "w+")
    try:
        run(tmp, log)
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p, signal.SIGKILL)
        if failures:
            log.seek(0)
            print("---- sipwaked log ----")
            print(log.read()[-8000:])
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'}: test_admin, {failures} failure(s)")
    sys.exit(1 if failures else 0)


def run(tmp, log):
    os.mkdir(os.path.join(tmp, "pki"))
    pki = pushlib.PKI(os.path.join(tmp, "pki"))
    sa = pki.service_account("https://oauth2.googleapis.com/token")
    try:
        fcm = pushlib.Fake(pki, "fcm", extra=["--service-account", sa, "--token-ttl", "3599",
                                              "--aud", "https://oauth2.googleapis.com/token"])
    except RuntimeError:
        for name in os.listdir(pki.dir):
            if name.endswith(".stderr"):
                with open(pki.p(name)) as f:
                    print(f"---- {name} ----\n{f.read()[-3000:]}")
        raise
    try:
        run_with_fcm(tmp, log, pki, sa, fcm)
    finally:
        fcm.stop()


def run_with_fcm(tmp, log, pki, sa, fcm):
    sip_port, metrics_port = free_port(), free_port()
    sock = os.path.join(tmp, "run", "sub", "ctl.sock")  # parent dirs do not exist yet
    conf = os.path.join(tmp, "sipwake.conf")

    def write(path=conf, db_dir=tmp, sport=sip_port, mport=metrics_port):
        write_config(path, db_dir, sport, mport, sa, sock, fcm.url, pki.ca)

    write()

    # Config checks: a world-readable key and a bad metrics address are config errors.
    r = subprocess.run([SIPWAKED, "-c", conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and "config OK" in r.stdout, "--check accepts the generated config")
    os.chmod(sa, 0o644)
    r = subprocess.run([SIPWAKED, "-c", conf, "--check"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 78 and "accessible by others" in r.stderr,
          "world-readable service account refused (exit 78)")
    os.chmod(sa, 0o600)
    bad = os.path.join(tmp, "bad.conf")
    with open(conf) as f, open(bad, "w") as g:
        g.write(f.read().replace(f'"127.0.0.1:{metrics_port}"', '"localhost:http"'))
    r = subprocess.run([SIPWAKED, "-c", bad, "--check"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 78 and "admin.metrics_listen" in r.stderr,
          "bad admin.metrics_listen is a config error naming the key")

    # Start with a NOTIFY_SOCKET of our own and wait for READY=1.
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    p = start(conf, notify_path, log)
    check(wait_ready(notify, p), "READY=1 received on NOTIFY_SOCKET")
    mode = stat.S_IMODE(os.stat(sock).st_mode) if os.path.exists(sock) else None
    check(mode == 0o660, f"control socket created with mode 0660 (got {mode and oct(mode)})")

    # An empty registrar lists nothing (and sorts nothing).
    rc, doc, _ = ctl_json(sock, "registrations")
    check(rc == 0 and doc and doc["result"]["count"] == 0 and doc["result"]["registrations"] == [],
          "registrations on an empty registrar: count 0, empty list")

    # SIP traffic: REGISTERs (one refused), an OPTIONS ping.
    alice, bob = Sip(sip_port), Sip(sip_port)
    sent_register, got = 0, []
    for _ in range(2):
        got.append(alice.request("REGISTER", f"sip:{DOMAIN}", "alice"))
        sent_register += 1
    got.append(bob.request("REGISTER", f"sip:{DOMAIN}", "bob",
                           f";pn-provider=fcm;pn-prid={FCM_TOKEN};pn-param=sipwake-test"))
    sent_register += 1
    got.append(bob.request("REGISTER", f"sip:{DOMAIN}", "bob", ";pn-provider=apns;pn-prid=" + "00ff" * 16 + ";"
                           "pn-param=ABCDE12345.com.example.voip"))
    sent_register += 1
    check(got == [200, 200, 200, 555], f"REGISTER answers {got}")
    opt = alice.request("OPTIONS", f"sip:127.0.0.1:{sip_port}", "alice")
    check(opt == 200, f"OPTIONS to sipwake answered 200 (got {opt})")

    # status
    rc, out, err = ctl("status", config=conf)
    check(rc == 0 and "standalone mode" in out and "bindings        2" in out,
          "status (text, socket found through -c)")
    rc, st, _ = ctl_json(sock, "status")
    res = (st or {}).get("result", {})
    check(rc == 0 and st["ok"] and res.get("mode") == "standalone" and res.get("bindings") == 2
          and res.get("providers") == {"apns": False, "fcm": True}
          and res.get("pid") == p.pid and isinstance(res.get("uptime"), int)
          and "transactions" in res, f"status --json: {res}")

    # registrations, all and one AOR; tokens never whole
    rc, out, err = ctl("registrations", sock=sock)
    check(rc == 0 and "sip:alice@example.com" in out and "sip:bob@example.com" in out
          and "2 registration(s)" in out, "registrations (text)")
    check(FCM_TOKEN not in out and "fcmT...9876" in out and "fcm" in out,
          "registrations (text) shows the push token shortened")
    rc, doc, _ = ctl_json(sock, "registrations")
    regs = (doc or {}).get("result", {}).get("registrations", [])
    check(rc == 0 and len(regs) == 2 and doc["result"]["count"] == 2,
          "registrations --json lists 2 bindings")
    bobreg = [b for b in regs if b["aor"] == "sip:bob@example.com"]
    check(len(bobreg) == 1 and bobreg[0]["push"]["provider"] == "fcm"
          and bobreg[0]["push"]["token"] == "fcmT...9876"
          and "pn-prid" not in bobreg[0]["contact"] and FCM_TOKEN not in json.dumps(doc),
          "registrations --json: push identity shortened, contact without pn-*")
    rc, doc, _ = ctl_json(sock, "registrations", "alice@EXAMPLE.com")
    check(rc == 0 and doc["result"]["count"] == 1
          and doc["result"]["registrations"][0]["aor"] == "sip:alice@example.com"
          and doc["result"]["registrations"][0]["expires_in"] > 500,
          "registrations AOR (canonicalised)")

    # messages
    rc, out, _ = ctl("messages", sock=sock)
    check(rc == 0 and "0 stored message(s)" in out, "messages (text)")
    rc, doc, _ = ctl_json(sock, "messages", "sip:alice@example.com")
    check(rc == 0 and doc["result"]["count"] == 0 and doc["result"]["messages"] == [],
          "messages AOR --json")

    # stats, text and JSON, against the traffic sent
    rc, out, _ = ctl("stats", sock=sock)
    check(rc == 0 and f'sipwake_sip_requests_total{{method="REGISTER"}} {sent_register}' in out,
          "stats (text) counts the REGISTERs")
    rc, doc, _ = ctl_json(sock, "stats")
    fam = (doc or {}).get("result", {}).get("sipwake_sip_requests_total", {})
    reg = [s["value"] for s in fam.get("series", []) if s["labels"] == {"method": "REGISTER"}]
    check(rc == 0 and reg == [sent_register] and fam.get("type") == "counter",
          "stats --json counts the REGISTERs")

    # reload
    rc, out, _ = ctl("reload", sock=sock)
    check(rc == 0 and "reloaded" in out, "reload")
    with open(conf, "a") as f:
        f.write("bogus_key = 1;\n")
    rc, out, err = ctl("reload", sock=sock)
    check(rc == 1 and "reload failed" in err, "reload of a broken config answers an error (1)")
    write()

    # push test: a real push through the dispatcher to the fake FCM
    check(res.get("push_test") == "available", "status: push test available")
    rc, doc, err = ctl_json(sock, "push", "test", "sip:bob@example.com", "--type", "alert")
    pushes = (doc or {}).get("result", {}).get("pushes", [])
    check(rc == 0 and len(pushes) == 1 and pushes[0]["result"] == "ok"
          and pushes[0]["provider"] == "fcm" and pushes[0]["token"] == "fcmT...9876"
          and FCM_TOKEN not in json.dumps(doc), f"push test --type alert: {doc} {err}")
    sent = [r for r in fcm.requests() if r.get("kind") == "send"]
    check(len(sent) == 1 and FCM_TOKEN in json.dumps(sent[0]),
          "the fake FCM received one push for bob's token")
    rc, out, err = ctl("push", "test", "bob@example.com", "--type", "background", sock=sock)
    check(rc == 0 and "1 of 1 background push(es)" in out, f"push test (text): {out}{err}")
    rc, _, err = ctl("push", "test", "sip:alice@example.com", sock=sock)
    check(rc == 1 and "no binding with push parameters" in err,
          "push test to a device without push parameters answers 1")
    rc, _, _ = ctl("push", "test", "sip:bob@example.com", "--type", "loud", sock=sock)
    check(rc == 64, "push test with an unknown type is a usage error (64)")
    rc, _, _ = ctl("frobnicate", sock=sock)
    check(rc == 64, "unknown command is a usage error (64)")

    # Metrics over HTTP
    code, ctype, text = scrape(metrics_port)
    check(code == 200 and ctype.startswith("text/plain; version=0.0.4"), "GET /metrics")
    check(metric(text, "sipwake_sip_requests_total", 'method="REGISTER"') == sent_register,
          f"metrics: REGISTER requests == {sent_register}")
    check(metric(text, "sipwake_sip_requests_total", 'method="OPTIONS"') == 1,
          "metrics: OPTIONS requests == 1")
    check(metric(text, "sipwake_sip_responses_total", 'code="200"') == got.count(200) + 1,
          "metrics: 200 responses == those received")
    check(metric(text, "sipwake_sip_responses_total", 'code="555"') == 1,
          "metrics: one 555 response")
    check(metric(text, "sipwake_register_total", 'result="ok"') == 3
          and metric(text, "sipwake_register_total", 'result="refused"') == 1,
          "metrics: REGISTER outcomes")
    check(metric(text, "sipwake_registrations") == 2, "metrics: registrations gauge == 2")
    check(metric(text, "sipwake_pushes_total", 'provider="fcm",kind="message",result="ok"') == 1
          and metric(text, "sipwake_pushes_total",
                     'provider="fcm",kind="wakeup",result="ok"') == 1,
          "metrics: the two test pushes counted by provider, kind and result")
    check(metric(text, "sipwake_push_latency_seconds_count", 'provider="fcm"') == 2
          and metric(text, "sipwake_push_latency_seconds_bucket",
                     'provider="fcm",le="+Inf"') == 2, "metrics: push latency histogram")
    check(metric(text, "sipwake_held_requests") == 0 and metric(text, "sipwake_pushes_pending")
          == 0, "metrics: held requests and pending pushes")
    check(metric(text, "sipwake_transactions") is not None
          and metric(text, "sipwake_stored_messages") == 0, "metrics: transactions, messages")
    check("# TYPE sipwake_sip_requests_total counter" in text, "metrics: TYPE lines")
    check(scrape(metrics_port, "/nope")[0] == 404, "metrics: 404 elsewhere")
    check(scrape(metrics_port, "/metrics", "POST")[0] == 405, "metrics: 405 for POST")

    # unregister
    rc, out, _ = ctl("unregister", "sip:alice@example.com", sock=sock)
    check(rc == 0 and "removed 1 binding" in out, "unregister")
    rc, out, err = ctl("unregister", "sip:alice@example.com", sock=sock)
    check(rc == 1 and "no registration" in err, "unregister of an unknown AOR answers 1")
    rc, doc, _ = ctl_json(sock, "registrations", "sip:alice@example.com")
    check(rc == 0 and doc["result"]["count"] == 0, "alice is gone")
    check(metric(scrape(metrics_port)[2], "sipwake_registrations") == 1,
          "metrics: registrations gauge == 1 after unregister")

    # The protocol itself: several requests on one connection, an overlong line.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(sock)
    c.sendall(b"status\nhelp\n")
    buf = b""
    while buf.count(b"\n") < 2:
        chunk = c.recv(65536)
        if not chunk:
            break
        buf += chunk
    lines = buf.decode().splitlines()
    check(len(lines) == 2 and json.loads(lines[0])["ok"] and
          "commands" in json.loads(lines[1])["result"], "two requests on one connection")
    c.close()
    # Many pipelined requests: more than one buffer of input, answers larger
    # than the socket buffer (partial writes), all answered in order.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(sock)
    n = 1000
    c.sendall(b"stats\n" * (n - 1) + b"status\n")
    buf, deadline = b"", time.monotonic() + 30
    while buf.count(b"\n") < n and time.monotonic() < deadline:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        buf += chunk
    c.close()
    lines = buf.decode().splitlines()
    check(len(lines) == n and all(json.loads(l)["ok"] for l in lines)
          and "mode" in json.loads(lines[-1])["result"],
          f"{n} pipelined requests all answered in order ({len(lines)})")

    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(sock)
    c.sendall(b"x" * 5000)
    buf = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        buf += chunk
    c.close()
    check(b'"ok":false' in buf and b"longer than" in buf, "overlong request refused, closed")

    # Hostile requests: every answer is one line of valid UTF-8 JSON, ok false.
    hostile = [b"registrations a b", b"registrations @bad", b"registrations \xff\xfe@x",
               b"unregister sip:\xc3@example.com", b"push test \xe2\x82 --type \xff",
               b"messages \xf0\x9f", b"\xff\xfe\xfd", b"push test a@b --type " + b"\xc3" * 300,
               b"registrations " + b"\xe2\x82\xac" * 200]
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(sock)
    c.sendall(b"".join(h + b"\n" for h in hostile))
    buf, deadline = b"", time.monotonic() + 10
    while buf.count(b"\n") < len(hostile) and time.monotonic() < deadline:
        chunk = c.recv(65536)
        if not chunk:
            break
        buf += chunk
    c.close()
    answers = buf.split(b"\n")[:-1]
    check(len(answers) == len(hostile), f"every hostile request answered ({len(answers)})")
    for req, ans in zip(hostile, answers):
        try:
            doc = json.loads(ans.decode("utf-8"))
            good = doc.get("ok") is False and "out of memory" not in doc.get("error", "")
        except ValueError:
            good = False
        check(good, f"{req[:30]!r}: a JSON error answer ({ans[:80]!r})")

    # A User-Agent cut at 200 bytes inside a character, and one with an
    # invalid byte: the bindings are listed, as valid UTF-8, and counted.
    carol = Sip(sip_port)
    check(carol.request("REGISTER", f"sip:{DOMAIN}", "carol",
                        extra="User-Agent: " + "a" * 199 + "\u00e9 tail\r\n") == 200,
          "REGISTER with a multibyte character at byte 200 of User-Agent -> 200")
    dave = Sip(sip_port)
    check(dave.request("REGISTER", f"sip:{DOMAIN}", "dave",
                       extra="User-Agent: bad\udcff byte\r\n") == 200,
          "REGISTER with an invalid UTF-8 byte in User-Agent -> 200")
    rc, out, _ = ctl("--json", "registrations", sock=sock)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    regs = {r["aor"]: r for r in (doc or {}).get("result", {}).get("registrations", [])}
    check(rc == 0 and doc is not None and doc["result"]["count"] == len(regs) == 3,
          f"registrations lists all {len(regs)} bindings it counts")
    check(regs.get("sip:carol@example.com", {}).get("user_agent") == "a" * 199,
          "the User-Agent is cut before the character, not inside it")
    check(regs.get("sip:dave@example.com", {}).get("user_agent") == "bad? byte",
          "the invalid byte is shown as '?'")
    for who in ("carol", "dave"):
        ctl("unregister", f"sip:{who}@example.com", sock=sock)

    # A second daemon on the same control socket refuses to start (exit 1).
    conf2 = os.path.join(tmp, "second.conf")
    write(conf2, tmp + "/second-", free_port(), free_port())
    with open(conf2) as f:
        text2 = f.read().replace(f'"{tmp}/second-/sipwake.db"', f'"{tmp}/second.db"')
    with open(conf2, "w") as f:
        f.write(text2)
    r = subprocess.run([SIPWAKED, "-c", conf2, "-f"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 1 and "another sipwaked" in r.stderr,
          "a second daemon on a live control socket exits 1")
    check(os.path.exists(sock), "and leaves the first one's socket alone")

    # Stop: exit 0, socket removed, sipwakectl says 69 and names the socket.
    rc = stop(p)
    check(rc == 0, f"SIGTERM: exit 0 (got {rc})")
    check(not os.path.exists(sock), "control socket removed at exit")
    rc, out, err = ctl("status", sock=sock)
    check(rc == 69 and sock in err, "daemon down: exit 69 naming the socket")

    # A stale socket (left by a killed daemon) is replaced at start.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()
    rc, out, err = ctl("status", sock=sock)
    check(rc == 69 and "refused" in err, "stale socket: exit 69, connection refused")
    drain(notify)
    p = start(conf, notify_path, log)
    check(wait_ready(notify, p), "restart over a stale socket: READY=1")
    rc, doc, _ = ctl_json(sock, "status")
    check(rc == 0 and doc["result"]["bindings"] == 1, "restarted daemon answers; bob persisted")
    check(stop(p) == 0, "second stop: exit 0")
    notify.close()


if __name__ == "__main__":
    main()
