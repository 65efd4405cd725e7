"""Self-check of the heartbeat 3 driver (root): a fast Setting with 3 crash rounds and 2 switchover
rounds, then one crash round at heartbeat's defaults. Each figure is the time from the crash (or
hb_standby) until the client gets an HTTP answer from the VIP from the other director.

    sudo PYTHONPATH=src .venv/bin/python bench/peers/try_heartbeat3.py [--no-defaults]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import topology  # noqa: E402
from base import Setting  # noqa: E402
from heartbeat3 import Heartbeat3Pair  # noqa: E402
from topology import VIP, Lab  # noqa: E402


def until_answer(pl, name: str, t0: float, limit: float) -> float | None:
    """Seconds from t0 until the client's GET to the VIP is answered by `name` (every 5 ms)."""
    while time.monotonic() - t0 < limit:
        try:
            if pl.client.http_get(VIP, 80, timeout=0.2).strip() == name:
                return time.monotonic() - t0
        except OSError:
            pass
        except Exception as exc:  # a LabError for a garbled answer: keep probing
            if "bad HTTP answer" not in str(exc):
                raise
        time.sleep(0.005)
    return None


def run(setting: Setting, crashes: int, switchovers: int, limit: float) -> None:
    print(f"== heartbeat3, setting {setting.label}", flush=True)
    with Lab() as lab, tempfile.TemporaryDirectory() as wd:
        pl = topology.build(lab)
        pair = Heartbeat3Pair(pl, wd, setting)
        try:
            t = time.monotonic()
            pair.start("dir-a")
            pair.start("dir-b")
            holder = pair.wait_one_holder(90)
            print(f"  start-up: {holder} holds the VIP, both settled after {time.monotonic() - t:.1f} s",
                  flush=True)
            for i in range(crashes):
                holder = pair.wait_one_holder(60)
                other = pl.other(holder)
                t0 = time.monotonic()
                pair.crash(holder)
                out = until_answer(pl, other, t0, limit)
                if out is None:
                    raise RuntimeError(f"crash {i + 1}: {other} never answered within {limit} s\n"
                                       + pair.log(other)[-2000:])
                print(f"  crash {i + 1}: {holder} powered off, {other} answered after {out * 1000:7.1f} ms",
                      flush=True)
                t = time.monotonic()
                pair.recover(holder)
                print(f"           {holder} recovered, heard and settled after {time.monotonic() - t:.1f} s",
                      flush=True)
            for i in range(switchovers):
                holder = pair.wait_one_holder(60)
                other = pl.other(holder)
                t0 = time.monotonic()
                pair.switchover(holder)
                ret = time.monotonic() - t0
                out = until_answer(pl, other, t0, limit)
                if out is None:
                    raise RuntimeError(f"switchover {i + 1}: {other} never answered within {limit} s\n"
                                       + pair.log(holder)[-2000:])
                print(f"  switchover {i + 1}: hb_standby on {holder} (returned after {ret * 1000:.0f} ms), "
                      f"{other} answered after {out * 1000:7.1f} ms", flush=True)
            if switchovers:
                pair.wait_one_holder(60)
            print(f"  false detections: {pair.false_detections()} "
                  f"(dead declarations {pair.dead_declarations()}, crashes {pair.crashes})", flush=True)
        finally:
            pair.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-defaults", action="store_true", help="skip the round at heartbeat's defaults")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("try_heartbeat3: needs root (network and mount namespaces)", file=sys.stderr)
        return 2
    try:
        run(Setting("fast", keepalive_ms=100, deadtime_ms=500, warntime_ms=250, initdead_ms=2000),
            crashes=3, switchovers=2, limit=10)
        if not args.no_defaults:
            run(Setting("defaults", defaults=True), crashes=1, switchovers=0, limit=60)
    except (RuntimeError, ValueError) as exc:
        print(f"try_heartbeat3: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
