# SPDX-License-Identifier: MIT
"""swlib: the harness sipwake's integration tests and benchmark stand on.

Debian's /usr/bin/python3, standard library only. It starts real processes on
loopback (Kamailio as the upstream registrar, sipwaked, sipp), each on ports
picked at run time, each in its own temporary directory, each stopped by its
own PID (and killed by an atexit hook if a test dies half-way). Everything
that waits is bounded in time.

A test is a plain script:

    import swlib
    def main(t):                       # t: swlib.Test
        kam = t.kamailio()             # started, answering OPTIONS
        ...
        t.check(cond, "what was checked", detail)
    swlib.run(main)                    # exit 0 pass, 1 fail, 2 setup error

Tests assert on what went over the wire (sipp -trace_msg logs parsed by
parse_sipp_messages(), raw sockets), never on timing or on log lines.
"""

import atexit
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SIPWAKE_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
SIPP_DIR = os.path.join(SOURCE_DIR, "tests", "sipp")
KAMAILIO_TEMPLATE = os.path.join(SOURCE_DIR, "tests", "kamailio", "upstream.cfg.in")
LOOPBACK = "127.0.0.1"
DOMAIN = "sipwake.test"  # the SIP domain every test uses

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


class SetupError(Exception):
    """The environment or a component could not be brought up: not a test failure
    of the behaviour under test, reported as such."""


class CheckFailed(Exception):
    """Raised by Test.require() to abort a test after a fatal check."""


# --------------------------------------------------------------------------
# process bookkeeping

_live = {}  # pid -> (name, Popen)


def _register(name, proc):
    _live[proc.pid] = (name, proc)


def _forget(proc):
    _live.pop(proc.pid, None)


def _kill_proc(proc, sig=signal.SIGKILL):
    """Signal one process we started, by its PID, then its own process group
    (it was started in a new session, so the group id is its PID and holds only
    its children, e.g. Kamailio's workers)."""
    for target in (proc.pid, -proc.pid):
        try:
            if target > 0:
                os.kill(target, sig)
            else:
                os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _terminate(proc, timeout):
    """SIGTERM proc and wait for it; SIGKILL (its group) after timeout s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_proc(proc)
            proc.wait(timeout=5)


def wait_until(pred, timeout=5.0, step=0.05):
    """True as soon as pred() is, polling every step s for at most timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def _cleanup_all():
    for pid, (name, proc) in list(_live.items()):
        if proc.poll() is None:
            sys.stderr.write("swlib: killing leftover %s (pid %d)\n" % (name, pid))
        _kill_proc(proc)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _live.pop(pid, None)


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it if this test process dies
    (e.g. killed by a CTest timeout before its cleanup could run). The
    kernel ties this to the spawning *thread*: spawn from the main thread,
    or the child dies when the thread that started it ends."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(name, argv, cwd, stdout_path, stderr_path=None, env=None):
    """Start argv in a new session with stdout (and stderr, to the same file
    unless stderr_path is given) redirected to files; stdin is /dev/null."""
    out = open(stdout_path, "ab")
    err = open(stderr_path, "ab") if stderr_path else subprocess.STDOUT
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True, env=env,
                                preexec_fn=_die_with_parent)
    finally:
        out.close()
        if stderr_path:
            err.close()
    _register(name, proc)
    return proc


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            data = f.read()[-20000:].decode("utf-8", "replace")
    except OSError:
        return "(no output file)"
    return "\n".join(data.splitlines()[-lines:])


# --------------------------------------------------------------------------
# ports

_given_ports = set()


def _port_range():
    """Where free_port() picks: below (or above) the kernel's ephemeral range,
    so that no socket bound to port 0 anywhere on the machine (a client, an
    outgoing TCP connection) can take a port a test chose, for instance while
    a daemon restarts on it after kill -9."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 10000 >= 4000:
        return 10000, low
    return high + 1, 65536


def _ports_free(host, ports):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = []
    try:
        for port in ports:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(family, kind)
                held.append(s)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in held:
            s.close()


def _pick(host, lo, hi, span, tries, what):
    for _ in range(tries):
        port = lo + random.randrange((hi - lo) // span) * span
        block = range(port, port + span)
        if any(p in _given_ports for p in block):
            continue
        if not _ports_free(host, block):
            continue
        _given_ports.update(block)
        return port
    raise SetupError("no free %s found on %s after %d tries" % (what, host, tries))


def free_port(host=LOOPBACK, tries=400):
    """A port on which both UDP and TCP can be bound on host right now (never
    one handed out before in this process), outside the ephemeral range and
    outside the part media_port() hands out.  Racy by nature, like any
    free-port picker: the caller binds it soon after."""
    lo, hi = _port_range()
    return _pick(host, lo, (lo + hi) // 2, 1, tries, "UDP+TCP port")


def media_port(host=LOOPBACK, tries=400):
    """A port for sipp's -mp.  sipp binds that port and the one two above it
    (video RTP) and exits 254 when either is taken, so this hands out a block
    of four from the upper half of the range, where free_port() never picks:
    a daemon started by a test running in parallel cannot sit on port + 2."""
    lo, hi = _port_range()
    mid = (lo + hi) // 2
    mid += -mid % 4
    return _pick(host, mid, hi, 4, tries, "block of 4 media ports")


def wait_tcp_port(host, port, timeout=10.0, proc=None):
    """True once a TCP connect to host:port succeeds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def udp_port_bound(host, port):
    """True if something already holds UDP host:port (our bind fails)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def wait_udp_port(host, port, timeout=10.0, proc=None):
    """True once host:port/udp is bound by someone (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if udp_port_bound(host, port):
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------
# SIP messages

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported",
           "s": "subject", "e": "content-encoding", "o": "event", "r": "refer-to",
           "u": "allow-events", "x": "session-expires", "a": "accept-contact",
           "j": "reject-contact", "d": "request-disposition", "b": "referred-by"}


LIST_HEADERS = {"via", "contact", "route", "record-route", "path", "supported", "require",
                "allow", "proxy-require", "unsupported", "feature-caps", "allow-events",
                "accept", "warning"}


class SipMsg:
    """A parsed SIP message (start line, headers in order, body)."""

    def __init__(self, text, direction=None, transport=None):
        self.text = text
        self.direction = direction  # "sent" / "received" (sipp's point of view)
        self.transport = transport
        head, _, self.body = text.replace("\r\n", "\n").partition("\n\n")
        lines = head.split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        self.start = lines[0].strip() if lines else ""
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))
        m = re.match(r"SIP/2\.0\s+(\d{3})\s*(.*)", self.start)
        self.status = int(m.group(1)) if m else None
        self.reason = m.group(2) if m else None
        self.method = None if m else (self.start.split(" ", 1)[0] if self.start else None)
        self.ruri = None if m else (self.start.split(" ")[1] if len(self.start.split(" ")) > 1 else None)

    def all(self, name):
        """Every value of header name; for list headers (Via, Contact, Route,
        ...) comma-separated values are split apart."""
        name = COMPACT.get(name.lower(), name.lower())
        out = []
        for n, v in self.headers:
            if n == name:
                out.extend(split_header_list(v) if n in LIST_HEADERS else [v])
        return out

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    @property
    def cseq_method(self):
        c = self.get("cseq")
        return c.split()[-1].upper() if c else None

    @property
    def call_id(self):
        return self.get("call-id")

    def summary(self):
        return self.start if self.start else "(empty)"

    def __repr__(self):
        return "<SipMsg %s %s>" % (self.direction or "", self.start)


def split_header_list(value):
    """Split a header value at commas that are not inside <>, quotes."""
    parts, cur, depth, quoted = [], [], 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0 and not quoted:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def via_sent_by(via):
    """'SIP/2.0/UDP 127.0.0.1:5070;branch=..' -> ('UDP', '127.0.0.1', 5070)"""
    m = re.match(r"SIP/2\.0/(\w+)\s+(\[[^\]]+\]|[^;:\s]+)(?::(\d+))?", via.strip(), re.I)
    if not m:
        return None
    return (m.group(1).upper(), m.group(2).strip("[]"), int(m.group(3)) if m.group(3) else None)


def uri_hostport(uri):
    """'<sip:alice@127.0.0.1:5070;transport=tcp;lr>' -> ('127.0.0.1', 5070)"""
    m = re.search(r"sips?:(?:[^@;>]+@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", uri)
    if not m:
        return None
    return (m.group(1).strip("[]"), int(m.group(2)) if m.group(2) else None)


def uri_params(uri):
    """The ;name=value parameters of the URI inside <...> (or the bare URI)."""
    m = re.search(r"<([^>]*)>", uri)
    u = m.group(1) if m else uri.split(">")[0]
    out = {}
    for p in u.split(";")[1:]:
        k, _, v = p.partition("=")
        out[k.strip().lower()] = v.strip()
    return out


_SIPP_SEP = re.compile(r"^-{20,} \d{4}-\d\d-\d\d [\d:.]+\s*$", re.M)
_SIPP_HDR = re.compile(r"^\s*(UDP|TCP|TLS|SCTP)\s+message\s+(sent|received)", re.I)


def parse_sipp_messages(path):
    """Parse a sipp -trace_msg/-message_file log into SipMsg objects in order."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            data = f.read()
    except OSError:
        return []
    out = []
    for chunk in _SIPP_SEP.split(data):
        chunk = chunk.lstrip("\n")
        first, _, rest = chunk.partition("\n")
        m = _SIPP_HDR.match(first)
        if not m:
            continue
        out.append(SipMsg(rest.lstrip("\n"), direction=m.group(2).lower(),
                          transport=m.group(1).upper()))
    return out


def build_request(method, ruri, transport, local, headers=(), body="", via_branch=None,
                  call_id=None, cseq=1, from_uri=None, to_uri=None, omit=(), max_forwards=70):
    """Text of a SIP request from a raw-socket client at local (host, port).
    headers: extra (name, value) pairs; omit: names of the default headers to
    leave out (to build malformed requests)."""
    branch = via_branch or "z9hG4bK-sw-%d-%d" % (os.getpid(), int(time.monotonic() * 1e6))
    call_id = call_id or "sw-%d-%d@%s" % (os.getpid(), int(time.monotonic() * 1e6), local[0])
    from_uri = from_uri or "sip:tester@%s" % DOMAIN
    to_uri = to_uri or from_uri
    default = [
        ("Via", "SIP/2.0/%s %s:%d;branch=%s;rport" % (transport.upper(), local[0], local[1], branch)),
        ("Max-Forwards", str(max_forwards)),
        ("From", "<%s>;tag=swt%d" % (from_uri, os.getpid())),
        ("To", "<%s>" % to_uri),
        ("Call-ID", call_id),
        ("CSeq", "%d %s" % (cseq, method)),
    ]
    omit_l = {o.lower() for o in omit}
    lines = ["%s %s SIP/2.0" % (method, ruri)]
    lines += ["%s: %s" % (n, v) for n, v in default if n.lower() not in omit_l]
    lines += ["%s: %s" % (n, v) for n, v in headers]
    if "content-length" not in omit_l:
        lines.append("Content-Length: %d" % len(body.encode()))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def digest_challenges(resp, header="www-authenticate"):
    """Each digest challenge of a response as a dict (algorithm, nonce, ...)."""
    out = []
    for v in resp.all(header):
        scheme, _, rest = v.partition(" ")
        if scheme.lower() != "digest":
            continue
        out.append({k.lower(): val.strip('"')
                    for k, val in re.findall(r'([\w-]+)\s*=\s*("[^"]*"|[^,\s]+)', rest)})
    return out


def digest_credentials(ch, method, uri, user, password, nc=1, cnonce="c0ffee42"):
    """An Authorization value answering challenge ch (RFC 7616 3.4; qop=auth
    when offered, RFC 2069 style otherwise), written from the RFC, not from
    sipwake's code."""
    algo = ch.get("algorithm", "MD5")
    hf = hashlib.sha256 if algo.upper() == "SHA-256" else hashlib.md5

    def h(s):
        return hf(s.encode()).hexdigest()
    ha1 = h("%s:%s:%s" % (user, ch["realm"], password))
    ha2 = h("%s:%s" % (method, uri))
    if "qop" not in ch:
        return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
                'algorithm=%s%s' % (user, ch["realm"], ch["nonce"], uri,
                                    h(":".join([ha1, ch["nonce"], ha2])), algo,
                                    ', opaque="%s"' % ch["opaque"] if "opaque" in ch else ""))
    ncs = "%08x" % nc
    resp = h(":".join([ha1, ch["nonce"], ncs, cnonce, "auth", ha2]))
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
            'algorithm=%s, cnonce="%s", opaque="%s", qop=auth, nc=%s'
            % (user, ch["realm"], ch["nonce"], uri, resp, algo, cnonce, ch.get("opaque", ""), ncs))


def next_stream_message(buf):
    """Frame a SIP stream (TCP/TLS): (bytes of the first whole message, rest),
    or (None, buf) while it is incomplete. Keep-alive CRLFs in front are
    dropped; the body is Content-Length (or l) bytes."""
    while buf.startswith(b"\r\n"):
        buf = buf[2:]
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    head = buf[:end].decode("utf-8", "replace")
    m = re.search(r"^(?:content-length|l)\s*:\s*(\d+)", head, re.I | re.M)
    total = end + 4 + (int(m.group(1)) if m else 0)
    if len(buf) < total:
        return None, buf
    return buf[:total], buf[total:]


def read_stream_messages(s, want, timeout=10.0):
    """SipMsgs read from stream socket s (TCP or TLS) until want arrived,
    the peer closed or timeout seconds passed."""
    buf, out = b"", []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        msg, buf = next_stream_message(buf)
        if msg is not None:
            out.append(SipMsg(msg.decode("utf-8", "replace"), "received"))
            continue
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = s.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            break
        if not data:
            break
        buf += data
    return out


class RawSip:
    """A minimal SIP client on one socket (UDP or TCP) for hand-made and
    malformed requests. recv_final() returns the responses seen until a final
    one (or the time limit)."""

    def __init__(self, transport, remote, timeout=5.0, host=LOOPBACK):
        self.transport = transport.lower()
        self.remote = remote
        self.timeout = timeout
        fam = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
        if self.transport == "udp":
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
        else:
            self.sock = socket.create_connection(remote, timeout=timeout)
        self.local = self.sock.getsockname()[:2]
        self.buf = b""
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, self.remote)
        else:
            self.sock.sendall(data)

    def _read_one(self, deadline):
        """One message or None when time is up / the peer closed."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                if self.transport == "udp":
                    data, _ = self.sock.recvfrom(70000)
                    return SipMsg(data.decode("utf-8", "replace"), "received", "UDP")
                msg, self.buf = next_stream_message(self.buf)
                if msg is not None:
                    return SipMsg(msg.decode("utf-8", "replace"), "received", "TCP")
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    return None
                self.buf += data
            except socket.timeout:
                return None
            except OSError:
                self.closed = True
                return None

    def recv_final(self, timeout=None, call_id=None):
        """(final response or None, [all messages seen])."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = []
        while True:
            m = self._read_one(deadline)
            if m is None:
                return None, seen
            seen.append(m)
            if call_id and m.call_id != call_id:
                continue
            if m.status is not None and m.status >= 200:
                return m, seen

    def collect(self, timeout):
        """Every message that arrives within timeout seconds."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            m = self._read_one(deadline)
            if m is None:
                return out
            out.append(m)

    def request(self, data, timeout=None):
        """Send data, return (final response or None, all messages)."""
        cid = None
        m = re.search(rb"^(?:Call-ID|i)\s*:\s*(\S+)", data, re.I | re.M)
        if m:
            cid = m.group(1).decode("utf-8", "replace")
        self.send(data)
        return self.recv_final(timeout, cid)


def sip_options(transport, remote, timeout=2.0, ruri=None):
    """Send an OPTIONS; return the final response (SipMsg) or None."""
    try:
        with RawSip(transport, remote, timeout=timeout) as c:
            req = build_request("OPTIONS", ruri or "sip:%s:%d" % remote, transport, c.local,
                                headers=[("Accept", "application/sdp")])
            final, _ = c.request(req, timeout)
            return final
    except OSError:
        return None


def wait_sip_ready(transport, remote, timeout=10.0, proc=None):
    """Poll with OPTIONS until any final response comes back (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        r = sip_options(transport, remote, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        if r is not None:
            return r
        time.sleep(0.1)
    return None


# --------------------------------------------------------------------------
# libconfig

def _lc_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    raise TypeError("cannot render %r as a libconfig scalar" % (v,))


def render_libconfig(cfg, indent=0):
    """Render a dict as libconfig: dict -> group, list of scalars -> array,
    list of dicts -> list, bool/int/float/str -> scalar."""
    pad = "  " * indent
    out = []
    for key, val in cfg.items():
        if isinstance(val, dict):
            out.append("%s%s: {\n%s%s};" % (pad, key, render_libconfig(val, indent + 1), pad))
        elif isinstance(val, (list, tuple)):
            if val and all(isinstance(x, dict) for x in val):
                items = ",\n".join("%s  {\n%s%s  }" % (pad, render_libconfig(x, indent + 2), pad)
                                   for x in val)
                out.append("%s%s = (\n%s\n%s);" % (pad, key, items, pad))
            else:
                out.append("%s%s = [ %s ];" % (pad, key, ", ".join(_lc_scalar(x) for x in val)))
        else:
            out.append("%s%s = %s;" % (pad, key, _lc_scalar(val)))
    return "\n".join(out) + ("\n" if out else "")


def deep_merge(base, extra):
    """base updated recursively with extra (returns a new dict)."""
    out = dict(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------
# test keys (generated at run time, never committed)

def make_fcm_service_account(directory, project="sipwake-test", token_url=""):
    """A Google-style service-account JSON with a fresh RSA key; mode 0600."""
    import json
    key = os.path.join(directory, "fcm-key.pem")
    r = subprocess.run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", key], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise SetupError("openssl genpkey RSA failed: %s" % r.stderr.decode(errors="replace"))
    with open(key) as f:
        pem = f.read()
    doc = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "sipwake@%s.iam.gserviceaccount.com" % project,
        "client_id": "100000000000000000000",
        "auth_uri": "https://127.0.0.1:9/o/oauth2/auth",
        "token_uri": token_url or "https://127.0.0.1:9/token",
    }
    path = os.path.join(directory, "fcm-service-account.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    os.chmod(key, 0o600)
    return path


def make_apns_p8(directory):
    """An APNs-style token key (.p8: PKCS#8 EC P-256); mode 0600."""
    ec = os.path.join(directory, "apns-ec.pem")
    p8 = os.path.join(directory, "AuthKey_TESTKEY123.p8")
    for argv in ([OPENSSL, "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", ec],
                 [OPENSSL, "pkcs8", "-topk8", "-nocrypt", "-in", ec, "-out", p8]):
        r = subprocess.run(argv, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise SetupError("%s failed: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    os.chmod(p8, 0o600)
    os.unlink(ec)
    return p8


# --------------------------------------------------------------------------
# Kamailio

class Kamailio:
    """A Kamailio 5.6 rendered from tests/kamailio/upstream.cfg.in.

    role "registrar" (default): stores REGISTERs with their Path and relays
    other requests to the looked-up contact; auth=True adds a digest challenge
    on REGISTER (any user, password `password`). role "proxy": adds its own
    Path to REGISTER and forwards everything to `upstream` (a sip: URI).
    One worker by default: with several, Kamailio may relay a 180 after the
    200 that followed it (workers race), which trips sipp callers; the
    benchmark asks for more."""

    def __init__(self, workdir, name="upstream", port=None, role="registrar", auth=False,
                 password="secret", upstream=None, children=1, shm_mb=64, pkg_mb=8, debug=2,
                 max_expires=7200, min_expires=60, ul_hash_bits=10):
        self.name = name
        self.dir = os.path.join(workdir, "kamailio-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.host = LOOPBACK
        self.role, self.auth, self.password = role, auth, password
        self.upstream = upstream
        self.children, self.shm_mb, self.pkg_mb, self.debug = children, shm_mb, pkg_mb, debug
        self.max_expires, self.min_expires = max_expires, min(min_expires, max_expires)
        self.ul_hash_bits = ul_hash_bits  # usrloc's table: 2^bits slots (Kamailio's default 10)
        self.cfg = os.path.join(self.dir, "kamailio.cfg")
        self.pidfile = os.path.join(self.dir, "kamailio.pid")
        self.ctl = os.path.join(self.dir, "kamailio_ctl")
        self.log = os.path.join(self.dir, "kamailio.log")
        self.proc = None

    @property
    def uri(self):
        return "sip:%s:%d" % (self.host, self.port)

    def addr(self):
        return (self.host, self.port)

    def render(self):
        with open(KAMAILIO_TEMPLATE) as f:
            text = f.read()
        defines = []
        if self.auth:
            defines.append("#!define WITH_AUTH")
        if self.role == "proxy":
            if not self.upstream:
                raise SetupError("Kamailio proxy role needs upstream")
            defines.append("#!define WITH_PROXY")
        subst = {
            "DEFINES": "\n".join(defines), "DEBUG": str(self.debug), "NAME": self.name,
            "CHILDREN": str(self.children), "PORT": str(self.port), "CTL_SOCKET": self.ctl,
            "UPSTREAM": self.upstream or "sip:127.0.0.1:9", "PASSWORD": self.password,
            "MAX_EXPIRES": str(self.max_expires), "MIN_EXPIRES": str(self.min_expires),
            "UL_HASH_BITS": str(self.ul_hash_bits),
        }
        for k, v in subst.items():
            text = text.replace("@%s@" % k, v)
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise SetupError("unrendered placeholders in Kamailio config: %s" % left)
        with open(self.cfg, "w") as f:
            f.write(text)

    def argv(self):
        """Foreground (-DD), logging to stderr (-E), own pidfile and dirs."""
        return [KAMAILIO, "-f", self.cfg, "-P", self.pidfile, "-w", self.dir, "-Y", self.dir,
                "-m", str(self.shm_mb), "-M", str(self.pkg_mb), "-DD", "-E"]

    def start(self, timeout=15.0):
        self.render()
        self.proc = spawn("kamailio-" + self.name, self.argv(), self.dir, self.log)
        r = wait_sip_ready("udp", self.addr(), timeout=timeout, proc=self.proc)
        if r is None:
            rc = self.proc.poll()
            self.stop()
            raise SetupError("Kamailio %s did not answer OPTIONS on %s:%d within %.0fs (exit %s); log:\n%s"
                             % (self.name, self.host, self.port, timeout, rc, tail(self.log)))
        if not wait_tcp_port(self.host, self.port, timeout=timeout, proc=self.proc):
            self.stop()
            raise SetupError("Kamailio %s: TCP port %d not open" % (self.name, self.port))
        return self

    def stop(self, timeout=10.0):
        if not self.proc:
            return None
        _terminate(self.proc, timeout)
        _kill_proc(self.proc)  # stray workers of the group, if any
        _forget(self.proc)
        return self.proc.returncode

    def rpc(self, *args, timeout=10.0):
        r = subprocess.run([KAMCMD, "-s", "unix:" + self.ctl] + list(args), capture_output=True,
                           timeout=timeout)
        return r.stdout.decode("utf-8", "replace")

    def contacts(self, aor):
        """[(address, path)] stored in usrloc for user aor (kamcmd ul.lookup)."""
        text = self.rpc("ul.lookup", "location", aor)
        out = []
        for block in re.split(r"\bContact:\s*\{", text)[1:]:
            addr = re.search(r"Address:\s*(.*)", block)
            path = re.search(r"Path:\s*(.*)", block)
            out.append((addr.group(1).strip() if addr else "",
                        path.group(1).strip() if path else ""))
        return out


# --------------------------------------------------------------------------
# redis-server

class RedisServer:
    """A redis-server of its own on a loopback port: no config file, its data
    in its own directory, AOF on (as the admin guide recommends), stopped
    by PID. stop() then start() again keeps the data (the same port and
    directory)."""

    def __init__(self, workdir, name="redis", port=None, password=None):
        self.name = name
        self.dir = os.path.join(workdir, "redis-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.log = os.path.join(self.dir, "redis.log")
        self.proc = None

    @property
    def url(self):
        auth = ":%s@" % self.password if self.password else ""
        return "redis://%s%s:%d" % (auth, LOOPBACK, self.port)

    def argv(self):
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", LOOPBACK, "--dir", self.dir,
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--daemonize", "no", "--protected-mode", "no", "--logfile", ""]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self, timeout=10.0):
        self.proc = spawn("redis-" + self.name, self.argv(), self.dir, self.log)
        if not wait_tcp_port(LOOPBACK, self.port, timeout=timeout, proc=self.proc):
            rc = self.proc.poll()
            self.stop()
            raise SetupError("redis-server %s did not listen on %d (exit %s); log:\n%s"
                             % (self.name, self.port, rc, tail(self.log)))
        return self

    def stop(self, timeout=10.0):
        if not self.proc:
            return None
        _terminate(self.proc, timeout)
        _forget(self.proc)
        rc, self.proc = self.proc.returncode, None
        return rc

    def command(self, *args, timeout=5.0):
        """One command over RESP; the reply decoded (str, int, list or None);
        an error reply raises CheckFailed."""
        def enc(a):
            b = a if isinstance(a, bytes) else str(a).encode()
            return b"$%d\r\n%s\r\n" % (len(b), b)
        cmds = []
        if self.password:
            cmds.append([b"AUTH", self.password])
        cmds.append(list(args))
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            reply = None
            for c in cmds:
                s.sendall(b"*%d\r\n" % len(c) + b"".join(enc(a) for a in c))
                reply = _resp_read(f)
            return reply


def _resp_read(f):
    line = f.readline()
    if not line:
        raise CheckFailed("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise CheckFailed("redis error: %s" % rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise CheckFailed("redis: unexpected reply %r" % line)


# --------------------------------------------------------------------------
# sipwaked

def sipwaked_binary():
    cand = os.environ.get("SIPWAKED")
    if cand:
        return cand
    for p in (os.path.join(SOURCE_DIR, "build", "sipwaked"), shutil.which("sipwaked")):
        if p and os.path.exists(p):
            return p
    return "sipwaked"


class Sipwaked:
    """sipwaked started from a config dict (rendered to libconfig).

    start() waits until every sip.listen address is open (UDP: the port is
    bound, TCP: a connect succeeds), or fails with the daemon's exit status
    and output."""

    def __init__(self, workdir, config, name="sipwaked", binary=None, log_level="debug"):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = config
        self.binary = binary or sipwaked_binary()
        self.log_level = log_level
        self.conf_path = os.path.join(self.dir, "sipwake.conf")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.proc = None
        self.starts = 0

    def listen_addrs(self):
        out = []
        for uri in self.config.get("sip", {}).get("listen", []):
            m = re.match(r"sips?:(\[[^\]]+\]|[^:;]+):(\d+)(?:;transport=(\w+))?", uri)
            if not m:
                continue
            tr = (m.group(3) or ("tls" if uri.startswith("sips") else "udp")).lower()
            out.append((tr, m.group(1).strip("[]"), int(m.group(2))))
        return out

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# generated by tests/integration/swlib.py\n")
            f.write(render_libconfig(self.config))

    def start(self, timeout=15.0):
        self.write_config()
        self.starts += 1
        with open(self.stderr_path, "ab") as f:
            f.write(("==== start #%d ====\n" % self.starts).encode())
        argv = [self.binary, "-c", self.conf_path, "-f", "--log-level", self.log_level]
        self.proc = spawn(self.name, argv, self.dir, self.stdout_path, self.stderr_path)
        deadline = time.monotonic() + timeout
        for tr, host, port in self.listen_addrs():
            left = max(0.5, deadline - time.monotonic())
            if tr == "udp":
                ok = wait_udp_port(host, port, timeout=left, proc=self.proc)
            else:
                ok = wait_tcp_port(host, port, timeout=left, proc=self.proc)
            if not ok:
                rc = self.proc.poll()
                out = tail(self.stdout_path, 5)
                err = tail(self.stderr_path, 20)
                self.kill9()
                if rc is not None:
                    why = "exited with status %s before listening on %s:%d/%s" % (rc, host, port, tr)
                    if rc == 0:
                        why += " (a stub that only prints its version? the daemon is not built yet)"
                else:
                    why = "does not listen on %s:%d/%s within %.0fs" % (host, port, tr, timeout)
                raise SetupError("sipwaked (%s) %s\n  command: %s\n  stdout: %s\n  stderr:\n%s"
                                 % (self.binary, why, " ".join(argv), out.strip() or "(empty)",
                                    err))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM; return the exit status. Raises CheckFailed unless it exits
        0 within `timeout` seconds (SPEC §2)."""
        if not self.proc:
            return None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            _forget(self.proc)
            raise CheckFailed("sipwaked had already exited (status %s) before SIGTERM; stderr:\n%s"
                              % (rc, tail(self.stderr_path)))
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise CheckFailed("sipwaked did not exit within %.0fs of SIGTERM" % timeout)
        _forget(self.proc)
        if rc != 0:
            raise CheckFailed("sipwaked exited with status %d after SIGTERM (expected 0); stderr:\n%s"
                              % (rc, tail(self.stderr_path)))
        return rc

    def log_text(self):
        """What the daemon logged so far (its stderr), as text."""
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def ctl(self, *args):
        """`sipwakectl --json ARGS` against this daemon's control socket: the
        "result" object, or None when the command failed."""
        ctl = os.path.join(os.path.dirname(os.path.abspath(self.binary)), "sipwakectl")
        r = subprocess.run([ctl, "-s", self.config["admin"]["socket"], "--json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        try:
            return json.loads(r.stdout)["result"]
        except (ValueError, KeyError, TypeError):
            return None

    def kill9(self):
        """SIGKILL the daemon (and anything it forked: its process group)."""
        if self.proc and self.proc.poll() is None:
            _kill_proc(self.proc)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            _forget(self.proc)


class LoopbackDns:
    """A DNS server on 127.0.0.1 for sofia's resolver (sip.resolv_conf): A
    records for the names given, NXDOMAIN for any other name, no answer for
    other record types (NAPTR, SRV, AAAA) of those names. A thread, stopped
    with stop(); queries are counted per name."""

    def __init__(self, names):
        self.names = {n.lower().rstrip("."): ip for n, ip in names.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def resolv_conf(self, path):
        with open(path, "w") as f:
            f.write("nameserver %s\nport %d\n" % (LOOPBACK, self.port))
        return path

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if len(data) < 17:
                continue
            labels, i = [], 12
            while i < len(data) and data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            qtype = int.from_bytes(data[i + 1:i + 3], "big")
            question = data[12:i + 5]
            name = ".".join(labels).lower()
            self.queries.append((name, qtype))
            ip = self.names.get(name)
            answers = b""
            flags = 0x8180 if ip else 0x8183  # NOERROR / NXDOMAIN
            if ip and qtype == 1:
                answers = (b"\xc0\x0c" + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") +
                           (60).to_bytes(4, "big") + (4).to_bytes(2, "big") +
                           socket.inet_aton(ip))
            head = (data[:2] + flags.to_bytes(2, "big") + (1).to_bytes(2, "big") +
                    (1 if answers else 0).to_bytes(2, "big") + b"\x00\x00\x00\x00")
            try:
                self.sock.sendto(head + question + answers, addr)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


def closed_resolv_conf(workdir):
    """A resolv.conf for sofia naming a closed loopback port: a test daemon
    never sends a DNS query off this machine; a lookup just fails."""
    path = os.path.join(workdir, "resolv.conf")
    with open(path, "w") as f:
        f.write("nameserver %s\nport %d\n" % (LOOPBACK, free_port()))
    return path


def sipwake_config(workdir, port, upstream_uri="", fcm=True, apns=False, extra=None,
                   domains=(DOMAIN,)):
    """The config dict the tests run sipwaked with: UDP+TCP on 127.0.0.1:port,
    database and control socket in workdir, log level debug with SIP trace.
    fcm/apns=True configure that provider with generated keys and push
    endpoints on a closed loopback port (no push leaves the machine; these
    tests never expect one to be delivered). upstream_uri "" = standalone,
    with auth.mode "none" unless extra says otherwise."""
    cfg = {
        "sip": {
            "listen": ["sip:%s:%d;transport=udp" % (LOOPBACK, port),
                       "sip:%s:%d;transport=tcp" % (LOOPBACK, port)],
            "advertised_host": LOOPBACK,
            "domains": list(domains),
            "resolv_conf": closed_resolv_conf(workdir),
        },
        "upstream": {"uri": upstream_uri, "hide_push_params": True},
        # Tests of other features register anyone; test_auth turns accounts on.
        "auth": {"mode": "none"},
        "storage": {"database": os.path.join(workdir, "sipwake.db")},
        "admin": {"socket": os.path.join(workdir, "sipwake.sock")},
        "log": {"level": "debug", "sip_trace": True},
    }
    push = {}
    dead = "https://127.0.0.1:%d" % free_port()  # nothing listens there
    if fcm:
        push["fcm"] = {"service_account": make_fcm_service_account(workdir, token_url=dead + "/token"),
                       "url": dead, "token_url": dead + "/token"}
    if apns:
        push["apns"] = {"key_file": make_apns_p8(workdir), "key_id": "TESTKEY123",
                        "team_id": "TEAMID1234", "url": dead, "sandbox_url": dead}
    if push:
        cfg["push"] = push
    cfg = deep_merge(cfg, extra or {})
    # SIPWAKE_PUSH_HTTP2=nghttp2: the daemon's pushes on its own HTTP/2 client
    # (push.http2), as pushlib does for push_driver.
    if os.environ.get("SIPWAKE_PUSH_HTTP2") and "http2" not in cfg.get("push", {}):
        cfg.setdefault("push", {})["http2"] = os.environ["SIPWAKE_PUSH_HTTP2"]
    return cfg


# --------------------------------------------------------------------------
# sipp

class SippResult:
    def __init__(self, rc, messages, stdout_path, argv, timed_out):
        self.rc = rc
        self.messages = messages
        self.stdout_path = stdout_path
        self.argv = argv
        self.timed_out = timed_out

    @property
    def ok(self):
        return self.rc == 0

    def stats(self):
        """(successful, failed) calls from sipp's final screen."""
        text = tail(self.stdout_path, 60)
        s = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
        f = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
        return (int(s[-1]) if s else None, int(f[-1]) if f else None)

    def received(self, method=None, status=None):
        return [m for m in self.messages if m.direction == "received"
                and (method is None or m.method == method)
                and (status is None or m.status == status)]

    def sent(self, method=None, status=None):
        return [m for m in self.messages if m.direction == "sent"
                and (method is None or m.method == method)
                and (status is None or m.status == status)]

    def flow(self):
        """One line per message: '> INVITE sip:..' / '< SIP/2.0 200 OK'."""
        return "\n".join(("  > " if m.direction == "sent" else "  < ") + m.summary()
                         for m in self.messages)

    def describe(self):
        return "sipp exit %s%s\n  command: %s\n  wire:\n%s\n  screen (tail):\n%s" % (
            self.rc, " (killed at time limit)" if self.timed_out else "", " ".join(self.argv),
            self.flow() or "  (nothing)", tail(self.stdout_path, 12))


class Sipp:
    """One sipp run. remote: (host, port) of the server it talks to.

    Scenario keywords: -s user ([service]); -key dom/pn/ctp/exp/ctaddr with
    defaults (see tests/sipp/*.xml). Messages are logged with -trace_msg to a
    file parsed into SippResult.messages."""

    def __init__(self, workdir, scenario, remote, name=None, transport="udp", user="alice",
                 port=None, keys=None, calls=1, timeout=30, oocsf=None, pause_ms=None,
                 rate=None, rate_period_ms=None, limit=None, extra=(), auth=None, inf=None,
                 trace_msg=True):
        self.scenario = scenario if os.path.isabs(scenario) else os.path.join(SIPP_DIR, scenario)
        self.name = name or os.path.splitext(os.path.basename(self.scenario))[0]
        self.dir = os.path.join(workdir, "sipp-" + self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.remote = remote
        self.transport = transport.lower()
        self.port = port or free_port()
        self.user = user
        self.keys = {"dom": DOMAIN, "pn": "", "ctp": "", "exp": "600",
                     "ctaddr": "%s:%d" % (LOOPBACK, self.port)}
        self.keys.update(keys or {})
        self.calls, self.timeout = calls, timeout
        self.oocsf = oocsf
        self.pause_ms, self.rate, self.rate_period_ms, self.limit = pause_ms, rate, rate_period_ms, limit
        self.extra = list(extra)
        self.auth = auth
        self.inf = inf
        self.trace_msg = trace_msg
        self.msg_log = os.path.join(self.dir, "messages.log")
        self.stdout_path = os.path.join(self.dir, "screen.txt")
        self.proc = None
        self.argv = None

    def command(self):
        tflag = {"udp": "u1", "tcp": "t1"}[self.transport]
        argv = [SIPP, "%s:%d" % self.remote, "-sf", self.scenario, "-t", tflag,
                "-i", LOOPBACK, "-p", str(self.port), "-mp", str(media_port()),
                "-s", self.user, "-m", str(self.calls), "-timeout", "%ds" % self.timeout,
                "-timeout_error", "-nostdin", "-default_behaviors", "all,-bye",
                "-max_recv_loops", "1000", "-aa"]
        for k, v in self.keys.items():
            argv += ["-key", k, v]
        if self.oocsf:
            argv += ["-oocsf", self.oocsf if os.path.isabs(self.oocsf)
                     else os.path.join(SIPP_DIR, self.oocsf)]
        if self.pause_ms is not None:
            argv += ["-d", str(self.pause_ms)]
        if self.rate is not None:
            argv += ["-r", str(self.rate)]
        if self.rate_period_ms is not None:
            argv += ["-rp", str(self.rate_period_ms)]
        if self.limit is not None:
            argv += ["-l", str(self.limit)]
        if self.auth:
            argv += ["-au", self.auth[0], "-ap", self.auth[1]]
        if self.inf:
            argv += ["-inf", self.inf]
        if self.trace_msg:
            argv += ["-trace_msg", "-message_file", self.msg_log]
        return argv + self.extra

    def start(self):
        self.argv = self.command()
        self.proc = spawn("sipp-" + self.name, self.argv, self.dir, self.stdout_path)
        return self

    def wait(self, timeout=None):
        """Wait for sipp to end (at most its -timeout plus a margin), then
        parse its message log."""
        limit = timeout if timeout is not None else self.timeout + 15
        timed_out = False
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_proc(self.proc)
            rc = self.proc.wait(timeout=5)
        _forget(self.proc)
        return SippResult(rc, parse_sipp_messages(self.msg_log), self.stdout_path, self.argv,
                          timed_out)

    def run(self, timeout=None):
        return self.start().wait(timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            _kill_proc(self.proc)
            self.proc.wait(timeout=5)
        if self.proc:
            _forget(self.proc)

    def seen(self, pred):
        """True if a message in the log so far satisfies pred (for polling
        while sipp runs)."""
        return any(pred(m) for m in parse_sipp_messages(self.msg_log))

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen(pred):
                return True
            if self.proc.poll() is not None:
                return self.seen(pred)
            time.sleep(0.1)
        return False


def push_params(provider="fcm", prid=None, param="sipwake-test"):
    """RFC 8599 Contact URI parameters (leading ';')."""
    if prid is None:
        prid = ("a1b2c3d4" * 8) if provider.startswith("apns") else "fcmtoken-" + "x" * 40
    s = ";pn-provider=%s;pn-prid=%s" % (provider, prid)
    if param:
        s += ";pn-param=%s" % param
    return s


# --------------------------------------------------------------------------
# linphonec (a real softphone with push parameters)

LINPHONEC = shutil.which("linphonec") or "/usr/bin/linphonec"


class Linphonec:
    """linphonec registering user@DOMAIN at proxy (host, port) over transport,
    with contact_params (e.g. "pn-provider=fcm;pn-prid=...;pn-param=...")
    added to its Contact by liblinphone, like a phone with push enabled. It
    also adds +sip.instance. Driven through its stdin (it quits when stdin
    closes); HOME is a private directory."""

    def __init__(self, workdir, proxy, user, transport="udp", contact_params="", name=None,
                 expires=600, password=None):
        self.name = name or "linphonec-" + user
        self.dir = os.path.join(workdir, self.name)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(os.path.join(self.home, ".local", "share", "linphone"), exist_ok=True)
        self.rc = os.path.join(self.dir, "linphonerc")
        self.out = os.path.join(self.dir, "stdout.txt")
        self.port = free_port()
        self.user = user
        self.proc = None
        with open(self.rc, "w") as f:
            f.write("[sip]\nsip_port=%d\nsip_udp_port=%d\nsip_tcp_port=%d\nsip_tls_port=-1\n"
                    "bind_address=%s\ndefault_proxy=0\nregister_only_when_network_is_up=0\n"
                    "supported=replaces, outbound\n"  # no GRUU: in-dialog requests use its contact
                    "[rtp]\naudio_rtp_port=%d\n"
                    "[proxy_0]\nreg_proxy=<sip:%s:%d;transport=%s>\nreg_route=\n"
                    "reg_identity=\"%s\" <sip:%s@%s>\nreg_expires=%d\nreg_sendregister=1\n"
                    "publish=0\npush_notification_allowed=0\ncontact_uri_parameters=%s\n"
                    % (self.port, self.port, self.port, LOOPBACK, free_port(), proxy[0], proxy[1],
                       transport, user, user, DOMAIN, expires, contact_params))
            if password is not None:
                # The user's password, as a softphone keeps it; liblinphone
                # computes whichever digest the challenge asks for.
                f.write("[auth_info_0]\nusername=%s\npasswd=%s\ndomain=%s\n"
                        % (user, password, DOMAIN))

    def start(self):
        env = dict(os.environ, HOME=self.home)
        out = open(self.out, "ab")
        try:
            self.proc = subprocess.Popen([LINPHONEC, "-c", self.rc], cwd=self.dir, env=env,
                                         stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            out.close()
        _register(self.name, self.proc)
        return self

    def command(self, line):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write((line + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def output(self):
        try:
            with open(self.out, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_registered(self, timeout=15.0):
        """True once `status register` answers "registered," (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.command("status register")
            time.sleep(0.5)
            if re.search(r"^(?:linphonec> )?registered, identity=", self.output(), re.M):
                return True
        return False

    def quit(self, timeout=10.0):
        """`quit` (linphonec unregisters first), then close stdin; killed if
        it does not end in time. Returns the exit status."""
        if not self.proc:
            return None
        self.command("quit")
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_proc(self.proc)
            rc = self.proc.wait(timeout=5)
        _forget(self.proc)
        return rc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            _kill_proc(self.proc)
            self.proc.wait(timeout=5)
        if self.proc:
            _forget(self.proc)


# --------------------------------------------------------------------------
# test runner

class Checks:
    """The checks a test makes: one ok/FAIL line each, counted. Test adds a
    work directory and processes; scripts that need neither use this alone
    and end with sys.exit(checks.finish(name))."""

    def __init__(self):
        self.failures = []
        self.checks = 0

    def log(self, msg):
        print(msg, flush=True)

    def finish(self, name):
        """Print the closing line; the exit status (0 pass, 1 a check failed)."""
        self.log("== %s %s: %d checks, %d failed" % ("FAIL" if self.failures else "PASS", name,
                                                     self.checks, len(self.failures)))
        return 1 if self.failures else 0

    def check(self, cond, what, detail=None):
        self.checks += 1
        if cond:
            self.log("  ok   %s" % what)
        else:
            self.failures.append(what)
            self.log("  FAIL %s" % what)
            if detail:
                self.log("       " + str(detail).replace("\n", "\n       "))
        return bool(cond)

    def require(self, cond, what, detail=None):
        if not self.check(cond, what, detail):
            raise CheckFailed(what)


class Test(Checks):
    """Per-test state: a temporary directory, the checks made, the processes
    started through it (stopped at the end in reverse order)."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="sipwake-%s-" % name)
        self._stoppers = []

    def section(self, title):
        self.log("-- %s" % title)

    def on_cleanup(self, fn):
        self._stoppers.append(fn)

    def kamailio(self, **kw):
        k = Kamailio(self.dir, **kw)
        self.on_cleanup(k.stop)
        k.start()
        self.log("  (kamailio %s on %s:%d, role %s%s)" % (k.name, k.host, k.port, k.role,
                                                          ", digest auth" if k.auth else ""))
        return k

    def redis(self, **kw):
        r = RedisServer(self.dir, **kw)
        self.on_cleanup(r.stop)
        r.start()
        self.log("  (redis-server %s on %s:%d)" % (r.name, LOOPBACK, r.port))
        return r

    def sipwaked(self, config, name="sipwaked", start=True):
        d = Sipwaked(self.dir, config, name=name)
        self.on_cleanup(d.kill9)
        if start:
            d.start()
            self.log("  (sipwaked %s listening on %s)" % (d.binary, ", ".join(
                "%s:%d/%s" % (h, p, t) for t, h, p in d.listen_addrs())))
        return d

    def sipp(self, scenario, remote, **kw):
        s = Sipp(self.dir, scenario, remote, **kw)
        self.on_cleanup(s.stop)
        return s

    def linphonec(self, proxy, user, **kw):
        lp = Linphonec(self.dir, proxy, user, **kw)
        self.on_cleanup(lp.stop)
        return lp.start()

    def cleanup(self):
        for fn in reversed(self._stoppers):
            try:
                fn()
            except Exception as e:  # cleanup must go on
                self.log("  (cleanup: %s)" % e)
        self._stoppers = []


def run(main, name=None):
    """Run main(t) and exit: 0 all checks passed, 1 a check failed, 2 setup error."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    t = Test(name)
    t.log("== %s (work dir %s)" % (name, t.dir))
    code = 0
    try:
        main(t)
    except CheckFailed as e:
        if str(e) not in t.failures:
            t.failures.append(str(e))
            t.log("  FAIL %s" % e)
    except SetupError as e:
        t.log("SETUP ERROR: %s" % e)
        code = 2
    except Exception:
        t.log("ERROR: unexpected exception:\n" + traceback.format_exc())
        code = 2
    finally:
        t.cleanup()
        _cleanup_all()
    if code == 0 and t.failures:
        code = 1
    if code == 0 and t.checks == 0:
        t.log("ERROR: no checks were made")
        code = 2
    verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}[code]
    t.log("== %s %s: %d checks, %d failed%s" % (
        verdict, name, t.checks, len(t.failures),
        "" if code == 0 else " (files kept in %s)" % t.dir))
    if code == 0 and not os.environ.get("SIPWAKE_KEEP"):
        shutil.rmtree(t.dir, ignore_errors=True)
    sys.exit(code)
