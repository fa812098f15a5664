#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A stand-in for sipwaked built from Kamailio, to check the harness itself.

NOT a test and never used by default. `SIPWAKED=tests/integration/fake_sipwaked.py
python3 tests/integration/test_gateway_call.py` runs a test against Kamailio
playing sipwake's role: it reads sip.listen and upstream.uri from the
libconfig file given with -c and execs Kamailio (tests/kamailio/upstream.cfg.in)
in the "proxy" role (adds Path, forwards to upstream.uri) or, when
upstream.uri is "", in the "registrar" role. It shows which checks are
plain SIP proxying (Kamailio passes them) and which are sipwake's own
behaviour (hidden push parameters, Feature-Caps, push-parameter validation,
persistence, NAT'd TCP contacts: Kamailio fails those, as expected).
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swlib  # noqa: E402


def main(argv):
    if "--version" in argv:
        print("fake_sipwaked (kamailio)")
        return 0
    if "-c" not in argv:
        sys.stderr.write("usage: fake_sipwaked.py -c FILE -f [--log-level L]\n")
        return 64
    conf = argv[argv.index("-c") + 1]
    with open(conf) as f:
        text = f.read()
    ports = re.findall(r'"sip:127\.0\.0\.1:(\d+);transport=(?:udp|tcp)"', text)
    up = re.search(r'upstream\s*:\s*\{[^}]*?uri\s*=\s*"([^"]*)"', text, re.S)
    if not ports:
        sys.stderr.write("fake_sipwaked: no 127.0.0.1 listen port in %s\n" % conf)
        return 78
    uri = up.group(1) if up else ""
    k = swlib.Kamailio(os.path.dirname(os.path.abspath(conf)), name="fake-sipwaked",
                       port=int(ports[0]), role="proxy" if uri else "registrar",
                       upstream=uri or None)
    k.render()
    os.execv(swlib.KAMAILIO, k.argv())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
