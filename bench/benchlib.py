# SPDX-License-Identifier: MIT
"""What several benchmarks under bench/ read the same way: sipp's statistics
and response-time files, percentiles, a process's memory."""
import os


def parse_stat(path):
    """Last line of sipp's -trace_stat CSV as a dict ({} when missing)."""
    try:
        with open(path) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";")))


def rtt_rows(directory):
    """(date ms, response time ms, rtd name) of every row of sipp's *_rtt.csv files."""
    for name in os.listdir(directory):
        if not name.endswith("_rtt.csv"):
            continue
        with open(os.path.join(directory, name)) as f:
            for line in f:
                p = line.strip().split(";")
                if len(p) < 3 or not p[0][:1].isdigit():
                    continue
                try:
                    yield float(p[0]), float(p[1]), p[2].strip()
                except ValueError:
                    continue


def pct(values, q):
    """The q-th percentile (nearest rank), None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def rss_kb(pid):
    """VmRSS of pid in kB, None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
