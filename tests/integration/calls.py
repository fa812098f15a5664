# SPDX-License-Identifier: MIT
"""Call flows shared by the integration tests (not a test itself).

call_through() is the one flow behind test_kamailio_baseline (edge = a
Kamailio proxy, or nothing), test_gateway_call (edge = sipwaked, registrar =
Kamailio), test_standalone_call (edge = registrar = sipwaked) and
test_persistence: a phone registers and waits for a call on the same socket
(tests/sipp/register_then_answer.xml + uas.xml), a caller calls it
(tests/sipp/uac.xml), and what each side saw on the wire is checked.
"""

import swlib


def _hostport_eq(hp, addr):
    return hp is not None and hp[0] == addr[0] and hp[1] == addr[1]


def register_phone(t, *, register_to, transport, user, pn="", ctp="", ctaddr_port=None,
                   label="", timeout=40):
    """Start the phone (register then answer one call). Returns the running
    Sipp once its REGISTER got a 200 (fails the test otherwise)."""
    port = swlib.free_port()
    keys = {"pn": pn, "ctp": ctp}
    if ctaddr_port:
        keys["ctaddr"] = "%s:%d" % (swlib.LOOPBACK, ctaddr_port)
    phone = t.sipp("register_then_answer.xml", register_to, name="phone-%s%s" % (user, label),
                   transport=transport, user=user, port=port, keys=keys,
                   oocsf="uas.xml", timeout=timeout).start()
    got = phone.wait_for(lambda m: m.direction == "received" and m.status is not None
                         and m.cseq_method == "REGISTER" and m.status >= 200, timeout=15)
    regs = [m for m in swlib.parse_sipp_messages(phone.msg_log)
            if m.direction == "received" and m.cseq_method == "REGISTER" and m.status]
    final = regs[-1] if regs else None
    if not t.check(got and final is not None and final.status == 200,
                   "%s: phone %s REGISTER over %s via %s:%d answered 200"
                   % (label, user, transport, register_to[0], register_to[1]),
                   "final response: %s\n%s" % (final.summary() if final else None,
                                               phone.wait(timeout=1).describe() if not got else "")):
        phone.stop()
        raise swlib.CheckFailed("%s: phone could not register" % label)
    contacts = final.all("contact")
    want = (swlib.LOOPBACK, ctaddr_port or phone.port)
    t.check(any(_hostport_eq(swlib.uri_hostport(c), want) for c in contacts),
            "%s: the 200 to REGISTER lists the phone's own Contact (%s:%d)" % (label, *want),
            "Contact headers in the 200: %s" % contacts)
    return phone, final


def check_kamailio_binding(t, kam, user, *, label, edge=None, transport="udp",
                           path_transport=False, hidden_pn=False, pn=""):
    """Kamailio (the registrar) stored one contact for user, with a Path to
    the edge when there is one."""
    bindings = kam.contacts(user)
    t.check(len(bindings) >= 1, "%s: Kamailio stored a binding for %s" % (label, user),
            kam.rpc("ul.dump"))
    if not bindings:
        return
    addr, path = bindings[-1]
    t.log("       kamailio: Address=%s  Path=%s" % (addr, path))
    if edge:
        t.check(_hostport_eq(swlib.uri_hostport(path), edge) and ";lr" in path.lower(),
                "%s: Kamailio stored Path <sip:%s:%d;...;lr>" % (label, edge[0], edge[1]),
                "Path: %s" % path)
        if path_transport:
            t.check(("transport=%s" % transport).lower() in path.lower(),
                    "%s: the Path names transport=%s" % (label, transport), "Path: %s" % path)
    else:
        t.check(path in ("", "[not set]"), "%s: no Path when registering directly" % label,
                "Path: %s" % path)
    if hidden_pn:
        t.check("pn-" not in addr.lower(),
                "%s: upstream never sees pn-* parameters (hide_push_params)" % label,
                "contact stored upstream: %s" % addr)
    elif pn:
        t.check(pn.split(";")[1].lower() in addr.lower(),
                "%s: push parameters reached the registrar unchanged" % label, addr)


def call_through(t, *, label, register_to, call_to, transport, caller_transport=None,
                 user, pn="", ctp="", edge=None, kam=None, hops=1, path_transport=False,
                 hidden_pn=False, nat_port=None, before_call=None):
    """The whole flow; see module doc.

    register_to: where the phone sends REGISTER; call_to: where the caller
    sends INVITE; edge: (host, port) of the proxy that must be the last hop
    before the phone (its Via on top, its Record-Route present), or None;
    kam: the Kamailio registrar whose location table is checked, or None;
    hops: proxies between caller and phone (Max-Forwards must have dropped by
    at least that much); nat_port: put this port (nothing listens there) in
    the phone's Contact, so that only the phone's own flow reaches it;
    before_call(phone): hook run between registration and call (e.g. kill -9
    and restart the proxy)."""
    caller_transport = caller_transport or transport
    t.section("%s: phone on %s, caller on %s" % (label, transport, caller_transport))
    phone, reg200 = register_phone(t, register_to=register_to, transport=transport, user=user,
                                   pn=pn, ctp=ctp, ctaddr_port=nat_port, label=label)
    if kam is not None:
        check_kamailio_binding(t, kam, user, label=label, edge=edge, transport=transport,
                               path_transport=path_transport, hidden_pn=hidden_pn, pn=pn)
    if before_call:
        before_call(phone)

    caller = t.sipp("uac.xml", call_to, name="caller-%s-%s" % (user, label), user=user,
                    transport=caller_transport, pause_ms=300, timeout=15)
    cres = caller.run()
    # a phone whose call never came would wait for its own time limit
    pres = phone.wait(timeout=30 if cres.rc == 0 else 3)

    t.check(cres.rc == 0, "%s: caller completed INVITE/180/200/ACK/BYE/200 (sipp exit 0)" % label,
            cres.describe())
    t.check(pres.rc == 0, "%s: phone answered the call and the BYE (sipp exit 0)" % label,
            pres.describe())

    invites = pres.received("INVITE")
    if not t.check(invites, "%s: the INVITE reached the phone" % label, pres.describe()):
        return pres, cres
    inv = invites[0]
    vias = inv.all("via")
    if edge:
        top = swlib.via_sent_by(vias[0]) if vias else None
        t.check(top is not None and (top[1], top[2]) == tuple(edge),
                "%s: top Via of the INVITE at the phone is the edge %s:%d" % (label, *edge),
                "Via: %s" % vias)
        t.check(top is not None and top[0] == transport.upper(),
                "%s: INVITE reached the phone over %s" % (label, transport.upper()),
                "Via: %s" % vias)
        rr = inv.all("record-route")
        t.check(any(_hostport_eq(swlib.uri_hostport(r), edge) for r in rr),
                "%s: INVITE carries a Record-Route of the edge %s:%d" % (label, *edge),
                "Record-Route: %s" % rr)
    mf = inv.get("max-forwards")
    t.check(mf is not None and mf.isdigit() and int(mf) <= 70 - hops,
            "%s: Max-Forwards decremented by each of the %d proxies (70 -> %s)" % (label, hops, mf))
    sent_invite = cres.sent("INVITE")
    t.check(sent_invite and sent_invite[0].call_id == inv.call_id,
            "%s: same Call-ID at both ends (a proxy, not a B2BUA)" % label,
            "caller %s / phone %s" % (sent_invite[0].call_id if sent_invite else None, inv.call_id))
    for method in ("ACK", "BYE"):
        got = pres.received(method)
        ok = bool(got)
        if ok and edge:
            top = swlib.via_sent_by(got[0].all("via")[0])
            ok = top is not None and (top[1], top[2]) == tuple(edge)
        t.check(ok, "%s: %s reached the phone%s" % (label, method, " through the edge" if edge else ""),
                pres.describe())
    t.check(any(m.status == 180 for m in cres.received()),
            "%s: caller got the phone's 180" % label, cres.describe())
    t.check(any(m.status == 200 and m.cseq_method == "INVITE" for m in cres.received()),
            "%s: caller got 200 to INVITE" % label)
    t.check(any(m.status == 200 and m.cseq_method == "BYE" for m in cres.received()),
            "%s: caller got 200 to BYE" % label)
    return pres, cres


def invite(transport, remote, user, domain=swlib.DOMAIN):
    """A raw INVITE to user@domain sent to remote; a final error is ACKed.
    Returns (final response or None, all messages seen)."""
    with swlib.RawSip(transport, remote, timeout=10) as c:
        sdp = ("v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 9 RTP/AVP 0\r\n")
        req = swlib.build_request(
            "INVITE", "sip:%s@%s" % (user, domain), transport, c.local,
            from_uri="sip:caller@%s" % swlib.DOMAIN, to_uri="sip:%s@%s" % (user, domain),
            headers=[("Contact", "<sip:caller@%s:%d;transport=%s>" % (c.local[0], c.local[1], transport)),
                     ("Content-Type", "application/sdp")], body=sdp)
        final, seen = c.request(req, timeout=10)
        if final is not None and final.status >= 300:  # ACK the error (same branch)
            via = req.decode().split("\r\n")[1]
            ack = ("ACK sip:%s@%s SIP/2.0\r\n%s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\n"
                   "Call-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                   % (user, domain, via, final.get("from"), final.get("to"), final.call_id))
            c.send(ack.encode())
        return final, seen
