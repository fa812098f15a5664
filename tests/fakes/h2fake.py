# SPDX-License-Identifier: MIT
"""Shared core of the fake push providers (fake_apns.py, fake_fcm.py).

An HTTP/2-over-TLS server on asyncio + python3-h2 that hands every complete
request to a handler and writes what it saw as JSON lines to a log file the
tests read. A handler answers (status, headers, body) and may ask for a slow
answer or for the connection to be dropped. Per-token behaviour comes from
--rule TOKEN=ACTION options and an optional --rules-file (JSON object, read
again whenever it changes), so a test can script each answer.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


class Request:
    def __init__(self, conn_id, stream_id, headers):
        self.conn_id = conn_id
        self.stream_id = stream_id
        self.headers = {}
        for k, v in headers:
            self.headers[k.lower()] = v
        self.body = bytearray()
        self.client_cert = None

    @property
    def method(self):
        return self.headers.get(":method")

    @property
    def path(self):
        return self.headers.get(":path", "")


class Answer:
    """What a handler returns: status, JSON body, optional delay or drop."""

    def __init__(self, status, body=None, headers=None, delay_ms=0, drop=False, gate=0,
                 goaway=False, close=False, freeze=False):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.delay_ms = delay_ms
        self.drop = drop
        # gate=N: hold the answer until N gated requests are open on this
        # connection at once, then answer them all and let later ones through
        # (the gate opens once per connection); after GATE_TIMEOUT s the held
        # ones get 500 GateTimeout. Proves concurrency without a clock.
        self.gate = gate
        # goaway=True: GOAWAY naming the stream before this one as the last
        # processed; this stream and any later ones on the connection are
        # never answered, the earlier ones are, and the connection closes
        # GOAWAY_CLOSE_S later (a server shutting down gracefully).
        self.goaway = goaway
        # close=True: the connection is closed (TLS close_notify, FIN) with
        # every open stream unanswered, no GOAWAY.
        self.close = close
        # freeze=True: the connection goes silent, as a dead peer without a
        # FIN: nothing more is read from it or written to it, PINGs included.
        self.freeze = freeze


GOAWAY_CLOSE_S = 3.0

GATE_TIMEOUT = 15.0


class Fake:
    """Bookkeeping shared by all connections: log, rules, counters."""

    def __init__(self, args, handler):
        self.args = args
        self.handler = handler
        self.conn_count = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.rules = dict(r.split("=", 1) for r in (args.rule or []))
        self.rules_mtime = None
        self.seen = {}  # token -> number of requests

    def rule_for(self, token):
        path = self.args.rules_file
        if path and os.path.exists(path):
            m = os.stat(path).st_mtime_ns
            if m != self.rules_mtime:
                self.rules_mtime = m
                with open(path) as f:
                    self.rules.update(json.load(f))
        self.seen[token] = self.seen.get(token, 0) + 1
        return self.rules.get(token, self.rules.get("*", "ok")), self.seen[token]

    def write(self, rec):
        if self.log is None:
            return
        rec.setdefault("t", time.time())
        self.log.write(json.dumps(rec, sort_keys=True) + "\n")


class H2Server(asyncio.Protocol):
    def __init__(self, fake):
        self.fake = fake
        self.transport = None
        self.conn = None
        self.streams = {}
        self.closed = False
        self.gated = []  # (req, answer) held by a gate
        self.gate_timer = None
        self.gate_opened = False
        self.inflight = 0  # requests received and not answered yet
        self.max_inflight = 0
        self.goaway_last = None  # last stream id a GOAWAY promised to process

    def connection_made(self, transport):
        self.transport = transport
        self.fake.conn_count += 1
        self.conn_id = self.fake.conn_count
        cert = transport.get_extra_info("peercert")
        self.client_cert = None
        if cert:
            self.client_cert = dict(x[0] for x in cert.get("subject", ()))
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.fake.args.max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self.conn.initiate_connection()
        self.flush()
        self.fake.write({"event": "connect", "conn": self.conn_id,
                         "client_cert": self.client_cert})

    def connection_lost(self, exc):
        self.closed = True
        self.fake.write({"event": "disconnect", "conn": self.conn_id,
                         "max_inflight": self.max_inflight})

    def flush(self):
        if not self.closed:
            data = self.conn.data_to_send()
            if data:
                self.transport.write(data)

    def data_received(self, data):
        try:
            events = self.conn.receive_data(data)
        except Exception as e:  # protocol error: report and close
            self.fake.write({"event": "protocol_error", "conn": self.conn_id, "error": str(e)})
            self.flush()
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                req = Request(self.conn_id, ev.stream_id, ev.headers)
                req.client_cert = self.client_cert
                self.streams[ev.stream_id] = req
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            elif isinstance(ev, h2.events.DataReceived):
                req = self.streams.get(ev.stream_id)
                if req is not None:
                    req.body.extend(ev.data)
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                req = self.streams.pop(ev.stream_id, None)
                if req is not None:
                    self.dispatch(req)
            elif isinstance(ev, h2.events.StreamReset):
                if self.streams.pop(ev.stream_id, None) is not None:
                    self.inflight -= 1
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.transport.close()
        self.flush()

    def dispatch(self, req):
        if self.goaway_last is not None and req.stream_id > self.goaway_last:
            # after our GOAWAY: not processed, the client must send it again elsewhere
            self.fake.write({"event": "after_goaway", "conn": self.conn_id,
                             "stream": req.stream_id})
            return
        try:
            ans = self.fake.handler(self.fake, req)
        except Exception as e:
            self.fake.write({"event": "handler_error", "conn": self.conn_id, "error": repr(e)})
            ans = Answer(500, {"reason": "FakeServerBug", "error": repr(e)})
        if ans.drop:
            # Abort the whole connection, no GOAWAY: like a reset by a middlebox.
            self.transport.abort()
            self.closed = True
            return
        if ans.freeze:
            self.closed = True  # nothing is written any more
            self.transport.pause_reading()
            self.fake.write({"event": "freeze", "conn": self.conn_id})
            return
        if ans.close:
            self.closed = True
            self.transport.close()
            return
        if ans.goaway:
            from hyperframe.frame import GoAwayFrame
            self.goaway_last = req.stream_id - 2
            frame = GoAwayFrame(0)
            frame.last_stream_id = max(self.goaway_last, 0)
            frame.error_code = 0
            # written beside the h2 state machine, which would refuse to answer
            # the earlier streams once it has sent a GOAWAY itself
            self.flush()
            self.transport.write(frame.serialize())
            self.fake.write({"event": "goaway", "conn": self.conn_id,
                             "last_stream": self.goaway_last})
            asyncio.get_event_loop().call_later(GOAWAY_CLOSE_S, self.transport.close)
            return
        if ans.gate and not self.gate_opened:
            self.gated.append((req, ans))
            if len(self.gated) >= ans.gate:
                self.release_gate(None)
            elif self.gate_timer is None:
                self.gate_timer = asyncio.get_event_loop().call_later(
                    GATE_TIMEOUT, self.release_gate, Answer(500, {"reason": "GateTimeout"}))
        elif ans.delay_ms:
            asyncio.get_event_loop().call_later(ans.delay_ms / 1000.0, self.respond, req, ans)
        else:
            self.respond(req, ans)

    def release_gate(self, override):
        """Answer every held request (with override instead, on time-out)."""
        if self.gate_timer is not None:
            self.gate_timer.cancel()
            self.gate_timer = None
        held, self.gated = self.gated, []
        self.gate_opened = True
        self.fake.write({"event": "gate_open", "conn": self.conn_id, "held": len(held),
                         "timeout": override is not None})
        for req, ans in held:
            self.respond(req, override or ans)

    def respond(self, req, ans):
        if self.closed:
            return
        self.inflight -= 1
        body = b""
        if ans.body is not None:
            body = json.dumps(ans.body).encode()
        hdrs = [(":status", str(ans.status))] + list(ans.headers)
        if body:
            hdrs.append(("content-type", "application/json"))
            hdrs.append(("content-length", str(len(body))))
        try:
            self.conn.send_headers(req.stream_id, hdrs, end_stream=not body)
            if body:
                self.conn.send_data(req.stream_id, body, end_stream=True)
        except Exception as e:  # stream gone (client reset/timeout)
            self.fake.write({"event": "respond_failed", "conn": self.conn_id,
                             "stream": req.stream_id, "error": str(e)})
        self.flush()


def common_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True, help="the bound port is written here")
    ap.add_argument("--log", help="JSON lines: every request and connection (none: no log)")
    ap.add_argument("--rule", action="append", help="TOKEN=ACTION (TOKEN * = default)")
    ap.add_argument("--rules-file", help="JSON object token -> action, re-read when changed")
    ap.add_argument("--max-streams", type=int, default=1000,
                    help="SETTINGS_MAX_CONCURRENT_STREAMS announced to clients")
    return ap


def serve(args, handler):
    fake = Fake(args, handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["h2"])
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: H2Server(fake), "127.0.0.1", args.port,
                                          ssl=ctx, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, args.port_file)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def b64url_decode(s):
    import base64
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def split_jwt(jwt):
    """Return (header, claims, signing_input, signature) or raise ValueError."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ValueError("not three parts")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    sig = b64url_decode(parts[2])
    return header, claims, (parts[0] + "." + parts[1]).encode(), sig


if __name__ == "__main__":
    sys.exit("run fake_apns.py or fake_fcm.py")
