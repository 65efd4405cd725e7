#!/usr/bin/env python3
"""NAT connections lost at a failover, by their age, with conntrackd (issue 12 targets: older
than 1 s: 100 % survive; younger than 100 ms: at least 95 %).

The lab of tests/integration/test_failover_nat.py (lab/natpair.py: two `hadirector run`
directors, nft NAT, wlc, two reals behind them, conntrackd on both). A client opens keep-alive
HTTP connections through the VIP at a steady rate, one request each; while it is still opening
them the holder loses power (kill -9, links down at once). Once dir-b holds the VIP every
connection opened before the power loss sends one more request on its socket. A connection's age
is the time from its connect() returning to the power loss. Also measured: conntrackd's CPU on
the active while the connections open (its utime + stime from /proc).

    sudo .venv/bin/python bench/sync_nat.py [--rate 300] [--seconds 3] [--rounds 3] [--openers 2]
                                            [--no-conntrackd]

The client is Python threads (`--openers`), each connect() plus one request in turn: the rate
asked for is a ceiling, the rate reached is printed (about 500/s on a loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from hadirector.lab.natpair import nat_cluster  # noqa: E402
from hadirector.lab.topology import Lab  # noqa: E402

BUCKETS = ((0.0, 0.1, "0-100 ms"), (0.1, 1.0, "100 ms-1 s"), (1.0, 1e9, "older than 1 s"))
REQ = b"GET / HTTP/1.1\r\nHost: 198.18.0.100\r\nConnection: keep-alive\r\n\r\n"


def _get(s: socket.socket) -> bool:
    """One request on an open keep-alive connection: True when a whole 200 answer came back."""
    s.sendall(REQ)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            return False
        body += chunk
    return b" 200 " in head.split(b"\r\n", 1)[0]


class Opener(threading.Thread):
    """Opens connections from the client's namespace at `rate` per second for `seconds`."""

    def __init__(self, client, vip: str, rate: float, seconds: float):
        super().__init__(name="opener", daemon=True)
        self.client, self.vip, self.rate, self.seconds = client, vip, rate, seconds
        self.conns: list[tuple[float, socket.socket | None]] = []  # (connect() returned, socket)

    def run(self) -> None:
        t0 = time.monotonic()
        n = int(self.rate * self.seconds)
        for i in range(n):
            due = t0 + i / self.rate
            if (d := due - time.monotonic()) > 0:
                time.sleep(d)
            try:
                s = self.client.tcp_connect(self.vip, 80, timeout=2.0)
            except OSError:
                self.conns.append((time.monotonic(), None))
                continue
            t = time.monotonic()
            try:
                ok = _get(s)
            except OSError:
                ok = False
            self.conns.append((t, s if ok else None))


def _cpu_ticks(host, pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (after the state field)


def _status(c, name: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir",
                          c.state_dir(name)], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def one_round(rate: float, seconds: float, conntrackd: bool, threads: int = 2) -> dict:
    work = tempfile.mkdtemp(prefix="hd-syncnat-")
    try:
        with Lab() as lab:
            c = nat_cluster(lab, work, conntrackd=conntrackd)
            pid = None
            if conntrackd:
                pid = (_status(c, "dir-a").get("balancer") or {}).get("conntrackd", {}).get("pid")
            openers = [Opener(c.pair.client, c.vip, rate / threads, seconds) for _ in range(threads)]
            ticks0, w0 = (_cpu_ticks(None, pid), time.monotonic()) if pid else (0, time.monotonic())
            for o in openers:
                o.start()
            time.sleep(seconds - 0.3)  # the youngest connections are still opening at the loss
            cpu = None
            if pid:
                cpu = (_cpu_ticks(None, pid) - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - w0)
            t_fail = time.monotonic()
            c.power_off("dir-a")
            took = c.wait_holder("dir-b", timeout=10)
            for o in openers:
                o.join(seconds + 10)
            conns = sorted((c for o in openers for c in o.conns), key=lambda c: c[0])
            before = [(t, s) for t, s in conns if t < t_fail]
            after = len(conns) - len(before)

            def again(item):
                t, s = item
                if s is None:
                    return t, False
                s.settimeout(5.0)
                try:
                    return t, _get(s)
                except OSError:
                    return t, False
                finally:
                    s.close()

            with ThreadPoolExecutor(64) as ex:
                results = list(ex.map(again, before))
            for _t, s in conns[len(before):]:
                if s is not None:
                    s.close()
            out = {"opened": len(before), "opened_after_loss": after, "takeover_s": round(took, 3),
                   "rate": round(len(before) / (t_fail - w0), 1),
                   "conntrackd_cpu": None if cpu is None else round(cpu, 4), "buckets": {}}
            for lo, hi, name in BUCKETS:
                got = [ok for t, ok in results if lo <= t_fail - t < hi]
                out["buckets"][name] = {"n": len(got), "survived": sum(got)}
            return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=300.0, help="new connections per second")
    p.add_argument("--seconds", type=float, default=3.0, help="how long connections are opened")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--openers", type=int, default=2, help="client threads opening connections")
    p.add_argument("--no-conntrackd", action="store_true", help="the fault: conntrackd off")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    rounds = [one_round(a.rate, a.seconds, not a.no_conntrackd, a.openers) for _ in range(a.rounds)]
    total = {name: {"n": sum(r["buckets"][name]["n"] for r in rounds),
                    "survived": sum(r["buckets"][name]["survived"] for r in rounds)} for _lo, _hi, name in BUCKETS}
    if a.json:
        print(json.dumps({"rounds": rounds, "total": total}, indent=1))
        return 0
    print(f"NAT, wlc, conntrackd {'off' if a.no_conntrackd else 'on'}: {a.rate:g} new connections/s for "
          f"{a.seconds:g} s, the holder loses power {a.seconds - 0.3:g} s in; {a.rounds} rounds")
    for i, r in enumerate(rounds, 1):
        cells = ", ".join(f"{k} {v['survived']}/{v['n']}" for k, v in r["buckets"].items())
        cpu = "" if r["conntrackd_cpu"] is None else f", conntrackd CPU {100 * r['conntrackd_cpu']:.1f} % of a core"
        print(f"  round {i}: {r['rate']:g} connections/s reached, takeover {r['takeover_s']:.2f} s, {cells}{cpu}")
    print("  total: " + ", ".join(f"{k} {v['survived']}/{v['n']} "
                                  f"({100 * v['survived'] / v['n'] if v['n'] else 0:.1f} %)" for k, v in total.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
