#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Debian package: packaging/build-deb.sh builds it from a copy of the
tree with dpkg-buildpackage, and dpkg-deb shows what an operator gets:
both binaries, the unit, /etc/sipwake/sipwake.conf as a conffile, the man
pages, a postinst that creates the sipwake user, dependencies on the
shared libraries. The packaged sipwaked then runs --version and --check
on the packaged config. Skipped (exit 0) without debhelper, and in the
sanitizer build (the plain pass builds the package once)."""

import os
import re
import shutil
import subprocess
import sys

import swlib
import tempfile

SRC = os.environ.get("SIPWAKE_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SIPWAKED = os.environ.get("SIPWAKED", "")
CHECKS = swlib.Checks()


def check(cond, what, detail=""):
    """A check whose detail (a build log) is cut to its last 4000 characters."""
    return CHECKS.check(cond, what, detail[-4000:] if detail else None)


def sanitized(binary):
    if not binary or not os.path.exists(binary):
        return False
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30)
    return "libasan" in r.stdout


def main():
    if not (shutil.which("dpkg-buildpackage") and shutil.which("dh")):
        print("skipped: dpkg-buildpackage/debhelper not installed (packaging/deps.sh --test)")
        return
    if sanitized(SIPWAKED):
        print("skipped: sanitizer build (the package is built by the plain pass)")
        return
    tmp = tempfile.mkdtemp(prefix="sipwake-debtest-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(CHECKS.finish("test_deb"))


def run(tmp):
    r = subprocess.run(["bash", os.path.join(SRC, "packaging", "build-deb.sh"), tmp],
                       capture_output=True, text=True, timeout=240)
    debs = [f for f in os.listdir(tmp) if re.match(r"sipwake_.*\.deb$", f)]
    check(r.returncode == 0 and len(debs) == 1, "build-deb.sh builds one .deb",
          r.stdout + r.stderr)
    if not debs:
        return
    deb = os.path.join(tmp, debs[0])

    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                             timeout=30).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines() if line.strip()}
    for want in ["/usr/sbin/sipwaked", "/usr/bin/sipwakectl", "/etc/sipwake/sipwake.conf",
                 "/usr/share/man/man8/sipwaked.8.gz", "/usr/share/man/man8/sipwakectl.8.gz",
                 "/usr/share/man/man5/sipwake.conf.5.gz",
                 "/usr/share/doc/sipwake/copyright"]:
        check(want in paths, "package contains " + want)
    check(any(p.endswith("/systemd/system/sipwake.service") for p in paths),
          "package contains the systemd unit")
    check(any("admin-guide" in p for p in paths), "package contains the admin guide")

    info = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True,
                          timeout=30).stdout
    check(re.search(r"^ Package: sipwake$", info, re.M) is not None, "Package: sipwake")
    dep = re.search(r"^ Depends: (.*)$", info, re.M)
    dep = dep.group(1) if dep else ""
    for lib in ["libsofia-sip-ua0", "libsqlite3-0", "libconfig9", "libmicrohttpd12",
                "adduser"]:
        check(lib in dep, "Depends on " + lib, dep)

    ctl = os.path.join(tmp, "control")
    subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True, timeout=30)
    with open(os.path.join(ctl, "conffiles")) as f:
        check("/etc/sipwake/sipwake.conf" in f.read().split(), "sipwake.conf is a conffile")
    with open(os.path.join(ctl, "postinst")) as f:
        post = f.read()
    check("adduser --system" in post and "sipwake" in post, "postinst creates the sipwake user")
    check("deb-systemd-helper" in post, "postinst enables the unit (dh_installsystemd)")
    for script in ["postinst", "postrm", "prerm"]:
        path = os.path.join(ctl, script)
        if os.path.exists(path):
            r = subprocess.run(["sh", "-n", path], capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, f"{script} is valid sh", r.stderr)

    root = os.path.join(tmp, "root")
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True, timeout=60)
    r = subprocess.run([os.path.join(root, "usr/sbin/sipwaked"), "--version"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout.startswith("sipwaked "), "packaged sipwaked --version")
    r = subprocess.run([os.path.join(root, "usr/sbin/sipwaked"), "-c",
                        os.path.join(root, "etc/sipwake/sipwake.conf"), "--check"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "config OK" in r.stdout, "packaged config passes --check",
          r.stdout + r.stderr)
    r = subprocess.run([os.path.join(root, "usr/bin/sipwakectl"), "--help"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "usage: sipwakectl" in r.stdout, "packaged sipwakectl --help")


if __name__ == "__main__":
    main()
