"""The measures of bench/peers, each for one system's Pair on its own lab."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from .base import Pair
from .client import Client


def stats(ms: list[float]) -> dict:
    s = sorted(ms)
    if not s:
        return {"n": 0, "median": float("nan"), "p95": float("nan"), "max": float("nan")}
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    return {"n": len(s), "median": statistics.median(s), "p95": p95, "max": s[-1], "min": s[0]}


def _detect_s(pair: Pair) -> float:
    d = pair.setting.detection_ms
    return (d or 60_000) / 1000


def crash_rounds(pair: Pair, client: Client, rounds: int, say=print, out: list[float] | None = None) -> list[float]:
    """Kill -9 and links down on the holder, `rounds` times; alternates because the victim comes
    back as the standby. Returns each round's outage in ms: from the kill to the end of the first
    successful request (sent after the kill) answered by the other director. Each round's figure
    is appended to `out` as it is measured, so a caller keeps the rounds done before a failure."""
    out = [] if out is None else out
    for i in range(rounds):
        victim = pair.wait_one_holder(120)
        other = pair.lab.other(victim)
        time.sleep(0.3)
        t0 = time.monotonic()
        pair.crash(victim)
        o = client.wait_ok_from(other, t0, timeout=3 * _detect_s(pair) + 20)
        if o is None:
            raise RuntimeError(f"{pair.system} {pair.setting.label} round {i + 1}: the VIP never came back\n"
                               + pair.log_tails())
        out.append(1000 * o)
        say(f"    {pair.system:10s} {pair.setting.label:22s} crash {i + 1:2d}: {victim} down, "
            f"{other} answered after {1000 * o:8.1f} ms")
        pair.recover(victim)
    return out


def switchover_rounds(pair: Pair, client: Client, rounds: int, say=print, out: list[dict] | None = None) -> list[dict]:
    """The operator moves the VIP from the holder to its peer, `rounds` times. For each: the
    longest gap between successful answers around the move, requests lost (failed or timed out)
    among those sent from 0.5 s before until 0.5 s after the move, and the slowest request.
    Each round's row is appended to `out` as it is measured (kept if a later round fails)."""
    rows = [] if out is None else out
    for i in range(rounds):
        holder = pair.wait_one_holder(60)
        other = pair.lab.other(holder)
        time.sleep(0.5)
        t0 = time.monotonic()
        pair.switchover(holder)
        o = client.wait_ok_from(other, t0, timeout=30)
        if o is None:
            raise RuntimeError(f"{pair.system} switchover {i + 1}: {other} never answered\n" + pair.log_tails())
        time.sleep(3.5)  # every request of the window has finished (probe timeout 3 s)
        w = client.window(t0 - 0.5, t0 + o + 0.5)
        w["moved_ms"] = 1000 * o
        rows.append(w)
        say(f"    {pair.system:10s} switchover {i + 1:2d}: {holder} -> {other}: gap {w['gap_ms']:7.1f} ms, "
            f"lost {w['lost']}/{w['sent']}, slowest {w['slowest_ms']:7.1f} ms")
        after = getattr(pair, "after_switchover", None)
        if after:
            after(holder)
    return rows


def arp_summary(path: str) -> dict:
    """From an arpwatch result: samples, samples answered by two or more MACs, samples nobody
    answered, and how many times the answering MAC changed (VIP moves seen from the client)."""
    with open(path) as f:
        d = json.load(f)
    samples = d["samples"]
    two = sum(1 for _, macs in samples if len(macs) >= 2)
    none = sum(1 for _, macs in samples if not macs)
    moves, last = 0, None
    for _, macs in samples:
        if len(macs) == 1:
            if last is not None and macs[0] != last:
                moves += 1
            last = macs[0]
    return {"samples": len(samples), "two": two, "none": none, "moves": moves}


def arpwatch(lab, path: str, seconds: float):
    return lab.client.spawn([sys.executable, "-m", "hadirector.lab.arpwatch", "--iface", "eth0",
                             "--address", "198.18.0.100", "--seconds", str(seconds), "--out", path,
                             "--period", "0.01"], name="arpwatch")


def wait_file(path: str, timeout: float) -> None:
    t_end = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < t_end:
        time.sleep(0.1)
