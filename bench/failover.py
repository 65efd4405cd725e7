#!/usr/bin/env python3
"""Failover outage: a client probes the VIP every 5 ms while the holder is killed N times.

Each round kills the director holding the VIP the way a power loss does (daemon killed with -9 and
its links down at the same instant), measures the outage as the time from the kill to the first
successful HTTP answer through the VIP, then brings the victim back (stale VIP removed at its start,
links up) before the next round. auto_failback is off, so rounds alternate between the directors.

Targets measured in the same run, in namespaces on this machine (root needed):
  hadirector  keepalive 100 ms / deadtime 500 ms
  hadirector  heartbeat's defaults (keepalive 1 s, deadtime 30 s; slow: ~35 s a round)
  keepalived  VRRPv3, advert_int 0.1 s (the peer users move to; its master-down interval is
              3 x advert + skew, about 0.3 s)

    sudo .venv/bin/python bench/failover.py --rounds 20 [--targets fast,keepalived,defaults]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from hadirector.lab.hacluster import HaCluster  # noqa: E402
from hadirector.lab.presets import director_pair  # noqa: E402
from hadirector.lab.topology import Lab  # noqa: E402

PROBE_PERIOD = 0.005


class Prober:
    """From the client's namespace: an HTTP GET to the VIP every 5 ms; records success times."""

    def __init__(self, client, vip: str, limit: float):
        self.client, self.vip, self.limit = client, vip, limit
        self.ok: list[tuple[float, str]] = []  # (time, the director that answered)
        self._run = threading.Event()

    def _probe_once(self) -> str | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.05)
        try:
            s.connect((self.vip, 80))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            if not data.startswith(b"HTTP/1."):
                return None
            return data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
        except OSError:
            return None
        finally:
            s.close()

    def _loop(self) -> None:
        t_end = time.monotonic() + self.limit
        while self._run.is_set() and time.monotonic() < t_end:
            t = time.monotonic()
            who = self._probe_once()
            if who:
                self.ok.append((time.monotonic(), who))
            time.sleep(max(0.0, PROBE_PERIOD - (time.monotonic() - t)))

    def start(self) -> None:
        self._run.set()
        self.client.worker.submit(self._loop)

    def stop(self) -> None:
        self._run.clear()

    def first_ok_after(self, t0: float, who: str, timeout: float) -> float | None:
        """Seconds from t0 to the first answer from `who` (the new holder) after t0."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            hits = [t for t, w in self.ok[-2000:] if t > t0 and w == who]
            if hits:
                return hits[0] - t0
            time.sleep(0.01)
        return None


def _wait(cond, timeout: float, what: str) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------- hadirector

def run_hadirector(rounds: int, keepalive: int, deadtime: int, warntime: int | None,
                   initdead: int | None) -> list[float]:
    outages: list[float] = []
    with Lab() as lab, tempfile.TemporaryDirectory() as wd:
        pair = director_pair(lab, hb_link=True)
        for h in pair.directors:
            h.http_server(port=80, identity=h.name)
        c = HaCluster(pair, wd, keepalive=keepalive, deadtime=deadtime, warntime=warntime,
                      initdead=initdead, auto_failback="off")
        c.start("dir-a")
        c.start("dir-b")
        c.wait_holder("dir-a", timeout=3 * (initdead or 2 * deadtime) / 1000 + 15, stable=0.2)
        prober = Prober(pair.client, pair.vip, limit=rounds * (deadtime / 1000 + 30) + 120)
        prober.start()
        try:
            for i in range(rounds):
                victim = c.holders()[0]
                other = "dir-b" if victim == "dir-a" else "dir-a"
                time.sleep(0.2)
                t0 = time.monotonic()
                c.power_off(victim)
                out = prober.first_ok_after(t0, other, timeout=deadtime / 1000 * 3 + 10)
                if out is None:
                    raise RuntimeError(f"round {i}: the VIP never came back")
                outages.append(out)
                print(f"  round {i + 1:2d}: {victim} killed, {other} answered after {out * 1000:7.1f} ms",
                      flush=True)
                c.start(victim)
                try:
                    _wait(lambda: not c.hosts[victim].has_address(pair.vip), 30, "stale VIP removal")
                except RuntimeError:
                    raise RuntimeError(f"round {i}: {victim} did not remove its stale VIP at start; its log:\n"
                                       + c.log(victim)[-4000:]) from None
                c.power_on_links(victim)
                # let it rejoin (heard by the peer, settled) before the next kill
                _wait(lambda: '"status": "active"' in _status_json(c, other, victim), 30, "the victim to rejoin")
                time.sleep(max(1.0, 3 * keepalive / 1000))
        finally:
            prober.stop()
    return outages


def _status_json(c: HaCluster, node: str, peer: str) -> str:
    """`hadirector status --json` of `node`, reduced to what it says of `peer`."""
    import json
    import subprocess
    r = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir",
                        c.state_dir(node)], capture_output=True, text=True, timeout=30)
    try:
        nodes = json.loads(r.stdout)["nodes"]
    except (ValueError, KeyError):
        return ""
    return json.dumps([n for n in nodes if n["name"] == peer])


# ---------------------------------------------------------------------------------- keepalived

KEEPALIVED_CONF = """global_defs {{
    router_id {name}
    vrrp_version 3
    enable_script_security
    script_user root
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 5
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int {advert}
    nopreempt
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}/24 dev eth0 label eth0:0
    }}
}}
"""


def kill_children(d: str) -> None:
    """keepalived's VRRP and checker children outlive a SIGKILL of the parent (they are not in its
    process group): a power loss ends them too. Their pids are in the pid files we told it to write."""
    import signal
    for f in ("v.pid", "c.pid"):
        try:
            with open(os.path.join(d, f)) as fh:
                pid = int(fh.read().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


def run_keepalived(rounds: int, advert: float) -> list[float]:
    if shutil.which("keepalived") is None:
        raise RuntimeError("keepalived is not installed (apt-get install keepalived)")
    outages: list[float] = []
    with Lab() as lab, tempfile.TemporaryDirectory() as wd:
        pair = director_pair(lab, hb_link=False)
        procs = {}
        names = ["dir-a", "dir-b"]

        def start(name: str) -> None:
            me = pair.addr[name]
            peer = pair.addr[names[1 - names.index(name)]]
            d = os.path.join(wd, name)
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "keepalived.conf")
            with open(conf, "w") as f:
                f.write(KEEPALIVED_CONF.format(name=name, prio=100,
                                               advert=advert, me=me, peer=peer, vip=pair.vip))
            host = pair.a if name == "dir-a" else pair.b
            # fresh pid files per start: a killed run's children may linger as zombies (this
            # container's init does not reap them) and keepalived would think it still runs
            for f in ("k.pid", "v.pid", "c.pid"):
                if os.path.exists(os.path.join(d, f)):
                    os.rename(os.path.join(d, f), os.path.join(d, f"{f}.{time.monotonic_ns()}"))
            procs[name] = host.spawn(["keepalived", "-n", "-l", "-D", "-f", conf,
                                      "-p", os.path.join(d, "k.pid"), "-r", os.path.join(d, "v.pid"),
                                      "-c", os.path.join(d, "c.pid")], name="keepalived")

        hosts = {"dir-a": pair.a, "dir-b": pair.b}
        for h in pair.directors:
            h.http_server(port=80, identity=h.name)
        start("dir-a")
        time.sleep(0.5)
        start("dir-b")
        _wait(lambda: len([n for n in names if hosts[n].has_address(pair.vip)]) == 1, 20, "a master")
        prober = Prober(pair.client, pair.vip, limit=rounds * 30 + 60)
        prober.start()
        try:
            for i in range(rounds):
                _wait(lambda: len([n for n in names if hosts[n].has_address(pair.vip)]) == 1, 20,
                      "exactly one keepalived master")
                victim = [n for n in names if hosts[n].has_address(pair.vip)][0]
                other = names[1 - names.index(victim)]
                time.sleep(0.2)
                t0 = time.monotonic()
                procs[victim].kill9()
                kill_children(os.path.join(wd, victim))
                hosts[victim].run(["ip", "link", "set", "eth0", "down"])
                out = prober.first_ok_after(t0, other, timeout=20)
                if out is None:
                    raise RuntimeError(f"keepalived round {i}: the VIP never came back; log of {other}:\n"
                                       + procs[other].output()[-3000:])
                outages.append(out)
                print(f"  round {i + 1:2d}: {victim} killed, {other} answered after {out * 1000:7.1f} ms",
                      flush=True)
                hosts[victim].del_address(f"{pair.vip}/24", "eth0")  # power loss clears addresses
                hosts[victim].run(["ip", "link", "set", "eth0", "up"])
                start(victim)
                time.sleep(1.5)
        finally:
            prober.stop()
            for name, p in procs.items():
                p.stop()
                kill_children(os.path.join(wd, name))
    return outages


def run_soak(seconds: float, keepalive: int, deadtime: int) -> dict:
    """No false failover: both directors up, both cores kept busy by burner processes, for
    `seconds`; counts VIP moves and 'dead' declarations (there must be none)."""
    import subprocess
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        with Lab() as lab, tempfile.TemporaryDirectory() as wd:
            pair = director_pair(lab, hb_link=True)
            c = HaCluster(pair, wd, keepalive=keepalive, deadtime=deadtime, auto_failback="off")
            c.start("dir-a")
            c.start("dir-b")
            c.wait_holder("dir-a", timeout=30, stable=0.5)
            moves, last, t_end = 0, ("dir-a",), time.monotonic() + seconds
            while time.monotonic() < t_end:
                h = c.holders()
                if h != last:
                    moves += 1
                    last = h
                time.sleep(0.05)
            dead = sum(c.log(n).count("-> dead") for n in ("dir-a", "dir-b"))
            late = sum(c.log(n).count("late heartbeat") for n in ("dir-a", "dir-b"))
    finally:
        for b in burners:
            b.kill()
            b.wait()
    print(f"soak {seconds:.0f}s at keepalive {keepalive} ms / deadtime {deadtime} ms, both cores busy: "
          f"VIP moves {moves}, peers declared dead {dead}, late-heartbeat warnings {late}", flush=True)
    return {"moves": moves, "dead": dead, "late": late}


def summary(name: str, outages: list[float]) -> dict:
    ms = sorted(x * 1000 for x in outages)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    row = {"name": name, "n": len(ms), "median": statistics.median(ms), "p95": p95, "max": ms[-1]}
    print(f"{name:44s} n={row['n']:3d}  median {row['median']:7.1f} ms  p95 {row['p95']:7.1f} ms  "
          f"max {row['max']:7.1f} ms", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--targets", default="fast,matched,keepalived,defaults,soak",
                    help="comma list of: fast, matched, keepalived, defaults, soak")
    ap.add_argument("--soak-seconds", type=float, default=600)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/failover.py needs root (network namespaces)", file=sys.stderr)
        return 2
    rows = []
    targets = args.targets.split(",")
    if "fast" in targets:
        print("hadirector, keepalive 100 ms / deadtime 500 ms:", flush=True)
        rows.append(summary("hadirector keepalive 100ms deadtime 500ms",
                            run_hadirector(args.rounds, 100, 500, 250, 1000)))
    if "matched" in targets:
        print("hadirector, keepalive 100 ms / deadtime 350 ms (keepalived's detection time):", flush=True)
        rows.append(summary("hadirector keepalive 100ms deadtime 350ms",
                            run_hadirector(args.rounds, 100, 350, 200, 1000)))
    if "keepalived" in targets:
        print("keepalived VRRPv3 advert_int 0.1:", flush=True)
        rows.append(summary("keepalived advert_int 0.1s", run_keepalived(args.rounds, 0.1)))
    if "defaults" in targets:
        print("hadirector, heartbeat defaults (keepalive 1 s / deadtime 30 s):", flush=True)
        rows.append(summary("hadirector heartbeat defaults (1s/30s)",
                            run_hadirector(args.rounds, 1000, 30_000, None, 60_000)))
    soak = run_soak(args.soak_seconds, 100, 500) if "soak" in targets else None
    print()
    for r in rows:
        print(f"{r['name']:44s} median {r['median']:8.1f} ms  p95 {r['p95']:8.1f} ms  max {r['max']:8.1f} ms")
    fast = next((r for r in rows if r["name"].startswith("hadirector keepalive 100ms deadtime 500ms")), None)
    ka = next((r for r in rows if r["name"].startswith("keepalived")), None)
    if fast:
        print(f"target: median < deadtime + 100 ms = 600 ms: {'met' if fast['median'] < 600 else 'NOT met'}")
    matched = next((r for r in rows if r["name"].startswith("hadirector keepalive 100ms deadtime 350")), None)
    if fast and ka:
        print(f"ratio hadirector(deadtime 500 ms)/keepalived(advert 0.1 s) median: {fast['median'] / ka['median']:.2f}")
    if matched and ka:
        print(f"ratio hadirector(deadtime 350 ms)/keepalived(advert 0.1 s) median: {matched['median'] / ka['median']:.2f}")
    if soak is not None:
        print(f"false failovers in {args.soak_seconds:.0f}s soak: {soak['moves']} "
              f"({'none, target met' if soak['moves'] == 0 and soak['dead'] == 0 else 'target NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
