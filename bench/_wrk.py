"""wrk, as the data-plane benchmarks run it: one run, its requests/s; socket errors and non-2xx
answers reported on stderr."""

from __future__ import annotations

import re
import subprocess
import sys

MODES = {"keep-alive": [], "new-conn": ["-H", "Connection: close"]}


def run_wrk(host: str, port: int, mode: str, duration: int, connections: int, threads: int,
            prefix: list[str] | tuple[str, ...] = ()) -> float:
    """`prefix` runs wrk elsewhere, e.g. ["ip", "netns", "exec", NS]."""
    cmd = [*prefix, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", *MODES[mode],
           f"http://{host}:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk gave no Requests/sec:\n{out.stdout}\n{out.stderr}")
    errors = re.search(r"Socket errors: (.*)", out.stdout)
    if errors:
        print(f"    ({mode}: wrk socket errors: {errors.group(1)})", file=sys.stderr)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if non2xx:
        print(f"    ({mode}: {non2xx.group(1)} non-2xx answers)", file=sys.stderr)
    return float(m.group(1))
