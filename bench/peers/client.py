"""Reading the client's traffic (probe.py running in the client's namespace)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from .topology import VIP, PeersLab

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")


@dataclass(frozen=True)
class Req:
    start: float
    end: float
    ok: bool
    who: str


class Client:
    def __init__(self, lab: PeersLab, path: str, period: float = 0.005, timeout: float = 3.0):
        self.lab, self.path = lab, path
        self.proc = lab.client.spawn([sys.executable, PROBE, "--vip", VIP, "--out", path,
                                      "--period", str(period), "--timeout", str(timeout)], name="probe")
        self._pos = 0
        self._reqs: list[Req] = []

    def requests(self) -> list[Req]:
        """Every finished request so far (read incrementally from the probe's file)."""
        try:
            with open(self.path) as f:
                f.seek(self._pos)
                chunk = f.read()
        except FileNotFoundError:
            return self._reqs
        end = chunk.rfind("\n") + 1
        self._pos += len(chunk[:end].encode())
        for line in chunk[:end].splitlines():
            p = line.split(" ", 3)
            if len(p) == 4:
                self._reqs.append(Req(float(p[0]), float(p[1]), p[2] == "1", p[3]))
        return self._reqs

    def wait_ok_from(self, who: str, after: float, timeout: float) -> float | None:
        """Seconds from `after` to the end of the first successful request answered by `who`
        that was sent after `after`; None if there is none within `timeout`."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            hits = [r.end for r in self.requests()[-20000:] if r.ok and r.who == who and r.start > after]
            if hits:
                return min(hits) - after
            time.sleep(0.01)
        return None

    def window(self, t0: float, t1: float) -> dict:
        """The traffic of requests sent in [t0, t1]: sent, lost (failed or timed out), the
        longest gap between successive successful answers that arrived by t1 (a request whose
        SYN had to be sent again arrives a second later and is counted in `slowest`, not as
        filling the gap) and the slowest successful request."""
        rs = [r for r in self.requests() if t0 <= r.start <= t1]
        ok = sorted(r.end for r in rs if r.ok and r.end <= t1)
        gaps = [b - a for a, b in zip(ok, ok[1:])]
        return {"sent": len(rs), "lost": sum(1 for r in rs if not r.ok),
                "gap_ms": 1000 * max(gaps, default=0.0),
                "slowest_ms": 1000 * max((r.end - r.start for r in rs if r.ok), default=0.0),
                "delayed": sum(1 for r in rs if r.ok and r.end - r.start > 0.2)}

    def stop(self) -> None:
        self.proc.stop(5)
