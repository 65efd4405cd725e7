#!/usr/bin/env python3
"""The chaos scenarios of tests/chaos, measured and printed (root; network namespaces).

For each scenario (hadirector.lab.chaos) a fresh lab: two directors (keepalive 100 ms, warntime
250 ms, deadtime 500 ms, auto_failback on), a client sending an HTTP request to the VIP every
10 ms and an observer asking "who has VIP" by ARP every 10 ms. Prints per scenario: the time two
MACs answered ARP for the VIP (double), the longest gap in the client's answers (outage), how
often the answering MAC changed (moves), and the time nobody answered ARP (silent).

    sudo .venv/bin/python bench/chaos.py [--only kill9_links_up,sigstop_2s] [--repeat 1] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from hadirector.lab import chaos  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma list of scenarios (default: all): "
                    + ", ".join(chaos.SCENARIOS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    ap.add_argument("--logs", action="store_true", help="print the directors' logs of each run")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/chaos.py needs root (network namespaces)", file=sys.stderr)
        return 2
    names = [n for n in a.only.split(",") if n] or list(chaos.SCENARIOS)
    rows = []
    t_start = time.monotonic()
    for name in names:
        for i in range(a.repeat):
            t = time.monotonic()
            m = chaos.run(name)
            rows.append(m)
            print(f"{m.row()}  ({time.monotonic() - t:.0f} s)", flush=True)
            if a.logs:
                print(m.explain())
    print(f"total {time.monotonic() - t_start:.0f} s")
    if a.markdown:
        print("\n| scenario | double answer ms | longest outage ms | VIP moves | nobody answers ms |")
        print("|---|---:|---:|---:|---:|")
        for m in rows:
            print(f"| {chaos.SCENARIOS[m.scenario].title} | {m.double_ms} | {m.outage_ms} | {m.moves} | {m.silent_ms} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
