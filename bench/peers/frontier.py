"""The safety frontier: for each system, the shortest detection setting with no false failover in
a soak where both CPUs are busy and the heartbeat link loses packets, and the crash-failover
outage at that setting, under the same load and loss.

Every candidate setting of every system runs at once, each pair on its own lab, for the same
`seconds` under the same burners (one busy process per CPU) and the same netem loss on eth1, so
all candidates live through the same load. From the client, who answers ARP for the VIP is
sampled every 10 ms (hadirector.lab.arpwatch). A false failover is any change of the answering
MAC or any sample answered by two MACs; a silence (nobody answering for 100 ms or more) is
counted too and also disqualifies. Each system's log also gives how often a node declared its
live peer dead (a false detection): hadirector's address guard is meant to make those harmless
(a peer that still answers ARP on the LAN is not taken over), so they are reported, not counted
as failovers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

from .base import Setting
from .measures import arp_summary, arpwatch, wait_file

LADDERS: dict[str, list[Setting]] = {
    "hadirector": [Setting(f"keepalive {k} / deadtime {d}", k, d, d // 2, max(2000, d))
                   for k, d in ((10, 50), (20, 100), (50, 250), (100, 500), (200, 1000))],
    "heartbeat3": [Setting(f"keepalive {k} / deadtime {d}", k, d, d // 2, max(2000, d))
                   for k, d in ((10, 50), (20, 100), (50, 250), (100, 500), (200, 1000), (500, 2500))],
    "keepalived": [Setting(f"advert_int {a / 1000:g}", advert_ms=a)
                   for a in (50, 100, 300, 1000, 2000, 3000)],
}


def _silences(path: str, min_ms: float = 100.0) -> int:
    import json
    with open(path) as f:
        samples = json.load(f)["samples"]
    n, run_start = 0, None
    for t, macs in samples:
        if not macs:
            run_start = t if run_start is None else run_start
        else:
            if run_start is not None and (t - run_start) * 1000 >= min_ms:
                n += 1
            run_start = None
    return n


def soak(make_pair, systems: list[str], seconds: float, loss: float, say=print) -> dict:
    """Run every ladder setting of `systems` at once for `seconds`; returns, per system, the
    list of {setting, moves, two, silences, detections} in ladder order. `make_pair(system, lab,
    workdir, setting)` builds a driver. Everything is stopped and removed before it returns."""
    from .topology import Lab, build
    results: dict[str, list[dict]] = {s: [] for s in systems}
    with contextlib.ExitStack() as stack:
        runs = []
        for system in systems:
            for setting in LADDERS[system]:
                lab = stack.enter_context(Lab())
                wd = stack.enter_context(tempfile.TemporaryDirectory())
                pl = build(lab)
                pair = make_pair(system, pl, wd, setting)
                stack.callback(pair.stop)
                pair.start("dir-a")
                time.sleep(0.3)
                pair.start("dir-b")
                runs.append((system, setting, pl, wd, pair))
        for system, setting, pl, wd, pair in runs:
            pair.wait_one_holder(120)
        base = {}
        watches = []
        for system, setting, pl, wd, pair in runs:  # loss and the client's ARP watch start together
            base[id(pair)] = pair.false_detections()
            pl.hb_loss(loss)
            path = os.path.join(wd, "arp.json")
            watches.append((path, arpwatch(pl, path, seconds)))
        say(f"  {len(runs)} pairs settled; {loss:g} % loss on every heartbeat link; soaking {seconds:.0f} s "
            f"with both CPUs busy")
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            time.sleep(min(10.0, max(0.0, t_end - time.monotonic())))
        for (path, proc), (system, setting, pl, wd, pair) in zip(watches, runs):
            proc.stop(10)
            wait_file(path, 10)
            a = arp_summary(path)
            row = {"setting": setting, "moves": a["moves"], "two": a["two"], "silences": _silences(path),
                   "samples": a["samples"], "detections": pair.false_detections() - base[id(pair)],
                   "hb_dropped": pl.hb_dropped()}
            row["safe"] = row["moves"] == 0 and row["two"] == 0 and row["silences"] == 0 and a["samples"] > 0
            results[system].append(row)
            say(f"    {system:10s} {setting.label:28s} moves {row['moves']:3d}  two answering {row['two']:4d}  "
                f"silences {row['silences']:3d}  peer declared dead {row['detections']:3d}  "
                f"heartbeat packets dropped {row['hb_dropped']:6d}  "
                f"({a['samples']} ARP samples) {'SAFE' if row['safe'] else 'not safe'}")
    return results


def tightest_safe(rows: list[dict]) -> Setting | None:
    """The first safe setting in ladder order (tightest first) after which no looser one failed
    (so a lucky tight setting below a failing looser one does not count)."""
    best = None
    for row in reversed(rows):
        if not row["safe"]:
            break
        best = row["setting"]
    return best
