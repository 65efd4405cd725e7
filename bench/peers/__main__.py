"""bench/peers: hadirector measured beside heartbeat 3, keepalived and HAProxy, in one run, on one
topology (bench/peers/topology.py), every figure from this run.

    sudo .venv/bin/python bench/peers [--only crash,switchover,frontier,checks,dataplane]
                                      [--rounds 20] [--frontier-seconds 600] [--json FILE] [--plots DIR]

Measures (docs/benchmarks.md "Peers" says what each one means and how it is taken):
  crash       kill -9 and links down on the holder, N rounds, each system at its defaults (these
              run in parallel, during the frontier soak when both are selected) and at fast
              settings: heartbeat-style keepalive 100 ms / deadtime 500 ms, VRRPv3 advert_int 0.1
  switchover  planned move: `hadirector standby`, hb_standby, keepalived stopped (SIGTERM)
  frontier    the tightest setting of each system with no false failover in a soak with both CPUs
              busy and 10 % loss on the heartbeat link, then N crash rounds at that setting
  checks      time from a real's server stopping to its removal (bench/peers/checks.py)
  dataplane   bench/dataplane.py: direct, our proxy, HAProxy, nginx stream
Root is needed (network namespaces). Missing Debian packages are installed with apt-get
(scripts/install-system-deps.sh) and matplotlib with pip into this Python's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/, so `peers` imports as a package

from peers import frontier as fr  # noqa: E402
from peers.base import Setting  # noqa: E402
from peers.client import Client  # noqa: E402
from peers.measures import crash_rounds, stats, switchover_rounds  # noqa: E402
from peers.report import print_tables  # noqa: E402
from peers.topology import ROOT, Burners, Lab, build  # noqa: E402

SYSTEMS = ("hadirector", "heartbeat3", "keepalived")
FAST = {"hadirector": Setting("keepalive 100 / deadtime 500", 100, 500, 250, 2000),
        "heartbeat3": Setting("keepalive 100 / deadtime 500", 100, 500, 250, 2000),
        "keepalived": Setting("advert_int 0.1", advert_ms=100)}
DEFAULTS = {s: Setting("defaults", defaults=True) for s in SYSTEMS}
LOCK = threading.Lock()


def say(*a) -> None:
    with LOCK:
        print(*a, flush=True)


def make_pair(system: str, lab, workdir: str, setting: Setting):
    if system == "hadirector":
        from peers.hadirector_pair import HadirectorPair
        return HadirectorPair(lab, workdir, setting)
    if system == "heartbeat3":
        from peers.heartbeat3 import Heartbeat3Pair
        return Heartbeat3Pair(lab, workdir, setting)
    from peers.keepalived_pair import KeepalivedPair
    return KeepalivedPair(lab, workdir, setting)


def on_pair(system: str, setting: Setting, body, loss: float = 0.0, burn: bool = False):
    """Build a lab, start `system` at `setting` on both directors, start the client's probe, run
    body(pair, client); everything stopped and removed afterwards."""
    with Lab() as lab, tempfile.TemporaryDirectory() as wd:
        pl = build(lab)
        pair = make_pair(system, pl, wd, setting)
        client = None
        try:
            pair.start("dir-a")
            time.sleep(0.3)
            pair.start("dir-b")
            pair.wait_one_holder(180)
            if loss:
                pl.hb_loss(loss)
            client = Client(pl, os.path.join(wd, "probe.txt"))
            time.sleep(0.5)
            if burn:
                with Burners():
                    return body(pair, client)
            return body(pair, client)
        finally:
            if client:
                client.stop()
            pair.stop()


def crash(system: str, setting: Setting, rounds: int, **kw) -> dict:
    """`rounds` crash rounds of `system` at `setting`. A round that fails (the VIP never came
    back, the crashed node never rejoined) ends them: the row keeps the rounds before it, says
    which round failed and why (`error`), and the run goes on with the next measure."""
    ms: list[float] = []
    error = None
    try:
        on_pair(system, setting, lambda p, c: crash_rounds(p, c, rounds, say, out=ms), **kw)
    except Exception as exc:  # noqa: BLE001 - one system's failure is reported, the run goes on
        error = f"round {len(ms) + 1} of {rounds}: {exc}"[:3000]
        say(f"  {system:10s} {setting.label:28s} crash: stopped, {error.splitlines()[0]}")
    row = {"system": system, "setting": setting.label, "detection_ms": setting.detection_ms,
           "samples": ms, **stats(ms)}
    if error:
        row["error"] = error
    say(f"  {system:10s} {setting.label:28s} crash: median {row['median']:8.1f} ms  p95 {row['p95']:8.1f}  "
        f"max {row['max']:8.1f}  (n={row['n']})")
    return row


def switchover(system: str, rounds: int) -> dict:
    """`rounds` planned switchovers; a failed round ends them as in crash()."""
    rows: list[dict] = []
    error = None
    try:
        on_pair(system, FAST[system], lambda p, c: switchover_rounds(p, c, rounds, say, out=rows))
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        error = f"round {len(rows) + 1} of {rounds}: {exc}"[:3000]
        say(f"  {system:10s} switchover: stopped, {error.splitlines()[0]}")
    gaps = [r["gap_ms"] for r in rows]
    out = {"system": system, "setting": FAST[system].label, "rounds": rows, **stats(gaps),
           "lost": sum(r["lost"] for r in rows), "sent": sum(r["sent"] for r in rows),
           "delayed": sum(r["delayed"] for r in rows)}
    if error:
        out["error"] = error
    say(f"  {system:10s} switchover: gap median {out['median']:7.1f} ms  max {out['max']:7.1f}  "
        f"lost {out['lost']}/{out['sent']}  delayed > 200 ms {out['delayed']}")
    return out


def ensure_deps() -> None:
    subprocess.run([os.path.join(ROOT, "scripts", "install-system-deps.sh")], check=False)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/peers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="crash,switchover,frontier,checks,dataplane")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--rounds", type=int, default=20, help="crash rounds per system and setting (1-200)")
    ap.add_argument("--switch-rounds", type=int, default=10, help="planned switchovers per system (1-100)")
    ap.add_argument("--frontier-seconds", type=float, default=600.0, help="soak length (10-3600)")
    ap.add_argument("--loss", type=float, default=10.0, help="heartbeat link loss in the soak, percent (0-90)")
    ap.add_argument("--check-rounds", type=int, default=20)
    ap.add_argument("--check-interval", type=float, default=1.0)
    ap.add_argument("--json", default=None, help="write every figure here (default: a file in /tmp)")
    ap.add_argument("--plots", default=None, help="write the PNG plots into this directory")
    a = ap.parse_args()
    only = set(a.only.split(","))
    systems = [s for s in a.systems.split(",") if s]
    bad = sorted(only - {"crash", "switchover", "frontier", "checks", "dataplane"}) + \
        sorted(set(systems) - set(SYSTEMS))
    if bad or not (1 <= a.rounds <= 200) or not (10 <= a.frontier_seconds <= 3600) or not (0 <= a.loss <= 90):
        print(f"bench/peers: bad arguments {bad or ''} (see --help)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench/peers needs root (network namespaces, netem, nftables)", file=sys.stderr)
        return 2
    ensure_deps()
    res: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:],
                 "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    t_start = time.monotonic()
    if "crash" in only:
        say("== crash failover at fast settings")
        res["crash_fast"] = [crash(s, FAST[s], a.rounds) for s in systems]
    if "switchover" in only:
        say("== planned switchover")
        res["switchover"] = [switchover(s, a.switch_rounds) for s in systems]
    defaults_rows: list = []
    threads = []
    if "crash" in only:
        say("== crash failover at each system's defaults (in parallel" +
            (", during the frontier soak)" if "frontier" in only else ")"))
        def defaults(s: str) -> None:
            defaults_rows.append(crash(s, DEFAULTS[s], a.rounds))

        for s in systems:
            t = threading.Thread(target=defaults, args=(s,), name=f"defaults-{s}")
            t.start()
            threads.append(t)
    if "frontier" in only:
        say(f"== safety frontier: {a.frontier_seconds:.0f} s soak, {a.loss:g} % heartbeat loss, both CPUs busy")
        with Burners():
            soak = fr.soak(make_pair, systems, a.frontier_seconds, a.loss, say)
        res["frontier_soak"] = {s: [{**r, "setting": r["setting"].label, "detection_ms": r["setting"].detection_ms}
                                    for r in rows] for s, rows in soak.items()}
        res["frontier"] = []
        for s in systems:
            best = fr.tightest_safe(soak[s])
            if best is None:
                say(f"  {s}: no setting of its ladder was safe")
                res["frontier"].append({"system": s, "setting": None})
                continue
            say(f"  {s}: tightest safe setting {best.label}; crash rounds at it under the same load and loss")
            res["frontier"].append(crash(s, best, a.rounds, loss=a.loss, burn=True))
    for t in threads:
        t.join()
    if defaults_rows:
        res["crash_defaults"] = sorted(defaults_rows, key=lambda r: systems.index(r["system"]))
    if "checks" in only:
        say("== check detection")
        from peers import checks
        try:
            res["checks"] = checks.run(a.check_rounds, a.check_interval)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            res["checks_error"] = str(exc)[:3000]
            say(f"  check detection failed: {exc}")
    if "dataplane" in only:
        say("== data plane (bench/dataplane.py)")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "dataplane.py"), "--only",
                            "direct,proxy,haproxy,nginx-stream", "--rounds", "5", "--duration", "5"],
                           capture_output=True, text=True, timeout=1800)
        print(r.stdout, r.stderr, flush=True)
        res["dataplane"] = r.stdout
    res["seconds"] = round(time.monotonic() - t_start)
    path = a.json or os.path.join(tempfile.gettempdir(), f"bench-peers-{int(time.time())}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print_tables(res)
    print(f"\nevery figure: {path}")
    if a.plots:
        from peers.plots import plot_all
        for p in plot_all(res, a.plots):
            print(f"plot: {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
