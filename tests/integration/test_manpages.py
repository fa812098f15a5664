#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Man pages: docs/man/man5/sipwake.conf.5 is exactly what the option table
generates (build/tests/sipwake_confman), it names every key of
conf/sipwake.conf's table, and every page formats without a groff warning."""

import os
import shutil
import subprocess
import sys

import swlib

SRC = os.environ.get("SIPWAKE_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SIPWAKE_BUILD_DIR", os.path.join(SRC, "build"))
PAGES = ["man5/sipwake.conf.5", "man8/sipwaked.8", "man8/sipwakectl.8"]
CHECKS = swlib.Checks()
check = CHECKS.check


def main():
    man = os.path.join(SRC, "docs", "man")
    gen = subprocess.run([os.path.join(BUILD, "tests", "sipwake_confman")], capture_output=True,
                         text=True, timeout=30)
    with open(os.path.join(man, "man5", "sipwake.conf.5")) as f:
        page = f.read()
    check(gen.returncode == 0 and gen.stdout == page,
          "sipwake.conf.5 is up to date (run build/tests/sipwake_confman > "
          "docs/man/man5/sipwake.conf.5)")
    ref = subprocess.run([os.path.join(BUILD, "tests", "sipwake_confref")], capture_output=True,
                         text=True, timeout=30).stdout
    keys = [l.split("`")[1] for l in ref.splitlines() if l.startswith("| `")]
    missing = [k for k in keys if f".B {k}\n" not in page]
    check(keys and not missing, f"sipwake.conf.5 documents all {len(keys)} keys", str(missing))

    groff = shutil.which("groff")
    for p in PAGES:
        path = os.path.join(man, p)
        check(os.path.exists(path), f"{p} exists")
        if groff and os.path.exists(path):
            r = subprocess.run([groff, "-man", "-ww", "-z", path], capture_output=True,
                               text=True, timeout=30)
            check(r.returncode == 0 and not r.stderr.strip(), f"{p} formats without warnings",
                  r.stderr)
    if not groff:
        print("skipped: groff not installed, pages not formatted")
    sys.exit(CHECKS.finish("test_manpages"))


if __name__ == "__main__":
    main()
