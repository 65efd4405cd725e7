"""Chaos scenarios for a director pair, measured from the client's side (tests/chaos, bench/chaos.py).

Topology (namespaces, lab.presets.director_pair plus two hosts)::

    client   198.18.0.10 ─┐                   traffic: an HTTP request to the VIP every 10 ms
    observer 198.18.0.11 ─┼─ lan              ARP: "who has VIP" every 10 ms (lab.arpwatch)
    dir-a    198.18.0.2  ─┤  (VIP 198.18.0.100/24 on eth0; each director serves HTTP, answering its name)
    dir-b    198.18.0.3  ─┘
    dir-a    198.18.1.2  ─┬─ hb               heartbeat (ucast eth1); the LAN too with lan_heartbeat
    dir-b    198.18.1.3  ─┤
    attacker 198.18.1.66 ─┘  (flood scenario only)

Both directors run `hadirector run` from heartbeat files (ha.cf keepalive 100 ms, warntime 250 ms,
deadtime 500 ms, initdead 1000 ms, auto_failback on; haresources: dir-a VIP). Faults act on the
real system: signals to the daemon, `ip link set down`, nftables rules in the bridge namespace
(the switch drops frames with carriers up), a flooding process.

Each run gives a `Measurement`:
  double_ms  total time two or more MACs answered one ARP request for the VIP (10 ms windows)
  outage_ms  the longest run of the client's requests that got no answer (from the sending of the
             first of them to the sending of the next answered one; lab.traffic)
  moves      how often the single MAC answering ARP changed
  silent_ms  total time nobody answered ARP
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

from .hacluster import HaCluster
from ..net.netns import NetnsWorker
from .presets import director_pair
from .topology import Lab

KEEPALIVE, WARNTIME, DEADTIME, INITDEAD = 100, 250, 500, 1000
PERIOD = 0.01  # ARP and traffic sampling period, seconds


# ------------------------------------------------------------------------------- measurement

@dataclass
class Measurement:
    scenario: str
    double_ms: int
    outage_ms: int
    moves: int
    silent_ms: int
    holders: list[str]  # who answered ARP alone, in order, runs collapsed
    final: tuple[str, ...]  # who answered the last 0.5 s of ARP requests
    answered_by: dict[str, int] = field(default_factory=dict)  # client answers per director
    logs: dict[str, str] = field(default_factory=dict)
    status: dict[str, dict] = field(default_factory=dict)  # `hadirector status --json` at the end
    extra: dict = field(default_factory=dict)

    def row(self) -> str:
        return (f"{self.scenario:28s} double {self.double_ms:6d} ms  outage {self.outage_ms:6d} ms  "
                f"moves {self.moves:2d}  silent {self.silent_ms:6d} ms  holders {'>'.join(self.holders) or '-'}")

    def explain(self) -> str:
        """Everything a failed assertion should show."""
        tail = "\n".join(f"--- {n} (last 6000 characters) ---\n{log[-6000:]}" for n, log in self.logs.items())
        return f"{self.row()}\nfinal ARP answerers: {self.final}\nclient answers: {self.answered_by}\n{tail}"


def longest_outage(requests: list, t0: float, t1: float, cold_start: bool = False) -> float:
    """The longest run of unanswered requests, from the sending of its first to the sending of the
    next answered one (or t1), over requests sent in [t0, t1]. With `cold_start` runs before the
    first answer do not count (nothing was up yet). Pure."""
    reqs = sorted((t, who) for t, done, who in requests if done is not None and t0 <= t <= t1)
    worst, start, seen_answer = 0.0, None, False
    for t, who in reqs:
        if who is None:
            if start is None:
                start = t
        else:
            if start is not None and (seen_answer or not cold_start):
                worst = max(worst, t - start)
            start, seen_answer = None, True
    if start is not None and (seen_answer or not cold_start):
        worst = max(worst, t1 - start)
    return worst


def analyse(arp: dict, traffic: dict, names: dict[str, str], t0: float, t1: float,
            scenario: str = "", cold_start: bool = False) -> Measurement:
    """Turn the raw samples into figures over [t0, t1]. `names` maps MAC -> director. With
    `cold_start` (the daemons started at t0) the outage counts from the client's first answer. Pure."""
    period_ms = round(arp.get("period", PERIOD) * 1000)
    windows = [(t, tuple(sorted(names.get(m, m) for m in macs))) for t, macs in arp["samples"]
               if t0 <= t <= t1]
    double = sum(period_ms for _, w in windows if len(w) > 1)
    silent = sum(period_ms for _, w in windows if not w)
    holders: list[str] = []
    for _, w in windows:
        if len(w) == 1 and (not holders or holders[-1] != w[0]):
            holders.append(w[0])
    tail = [w for t, w in windows if t >= t1 - 0.5]
    final = tuple(sorted({n for w in tail for n in w}))
    outage = longest_outage(traffic["requests"], t0, t1, cold_start)
    by: dict[str, int] = {}
    for t, _, who in traffic["requests"]:
        if who is not None and t0 <= t <= t1:
            by[who] = by.get(who, 0) + 1
    m = Measurement(scenario, double, round(outage * 1000), max(0, len(holders) - 1), silent,
                    holders, final, by)
    m.extra["double_at"] = [round(t - t0, 3) for t, w in windows if len(w) > 1][:50]
    return m


# ------------------------------------------------------------------------------- the lab

class ChaosLab:
    """The topology above with a configured (not yet started) HaCluster."""

    def __init__(self, workdir: str, *, lan_heartbeat: bool = False, ping: tuple[str, ...] = (),
                 overrides: dict | None = None, attacker: bool = False, auto_failback: str = "on"):
        self.workdir = workdir
        self.lab = Lab()
        try:
            self.pair = director_pair(self.lab, hb_link=True)
            self.observer = self.lab.host("observer")
            self.observer.connect(self.pair.lan, "198.18.0.11/24")
            self.attacker = None
            if attacker:
                self.attacker = self.lab.host("attacker")
                self.attacker.connect(self.pair.hb, "198.18.1.66/24")
            for h in self.pair.directors:
                h.http_server(port=80, identity=h.name)
            self.cluster = HaCluster(self.pair, workdir, keepalive=KEEPALIVE, deadtime=DEADTIME,
                                     warntime=WARNTIME, initdead=INITDEAD, auto_failback=auto_failback,
                                     lan_heartbeat=lan_heartbeat, ping=ping, overrides=overrides)
            self.macs = {h.mac("eth0"): h.name for h in self.pair.directors}
            self._sw: NetnsWorker | None = None
            self._nft = None
        except BaseException:
            self.lab.close()
            raise

    def close(self) -> None:
        try:
            if self._sw is not None:
                if self._nft is not None:
                    self._sw.call(self._nft.close)
                self._sw.close()
        finally:
            self.lab.close()

    def __enter__(self) -> "ChaosLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------- switch faults
    def port(self, host: str, dev: str) -> str:
        """The bridge port (in the switch namespace) that `host`'s `dev` is cabled to."""
        return self.lab.hosts[host].ifaces[dev].peer  # type: ignore[return-value]

    def _switch_nft(self, commands: list[dict]) -> list[dict]:
        if self._sw is None:
            from ..dataplane.libnft import Nft
            self._sw = NetnsWorker(self.lab.switch_netns)
            self._nft = self._sw.call(Nft)
        return self._sw.call(self._nft.run, commands)

    def switch_drop(self, ports: list[str], percent: int = 100, udp_port: int | None = None) -> None:
        """The switch drops `percent` % of the frames entering on `ports` (nftables, bridge family,
        random per frame), or only UDP to `udp_port`; carriers stay up."""
        t = {"family": "bridge", "name": "hdchaos"}
        c = {"family": "bridge", "table": "hdchaos"}
        expr: list[dict] = [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                                       "right": {"set": list(ports)}}}]
        if udp_port is not None:
            expr.append({"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                                   "right": udp_port}})
        if percent < 100:
            expr.append({"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 100, "offset": 0}},
                                   "right": percent}})
        expr.append({"counter": None})
        expr.append({"drop": None})
        self._switch_nft([
            {"add": {"table": t}},
            {"add": {"chain": {**c, "name": "fwd", "type": "filter", "hook": "forward", "prio": 0,
                               "policy": "accept"}}},
            {"add": {"rule": {**c, "chain": "fwd", "expr": expr}}}])
        # prove the fault is in place: the rule is there
        rules = [o for o in self._switch_nft([{"list": {"chain": {**c, "name": "fwd"}}}]) if "rule" in o]
        if not rules:
            raise RuntimeError("switch drop rule did not load")

    def switch_dropped(self) -> int:
        """Frames the switch's drop rules have dropped so far (proof that a fault took effect)."""
        items = self._switch_nft([{"list": {"table": {"family": "bridge", "name": "hdchaos"}}}])
        n = 0
        for o in items:
            for e in (o.get("rule") or {}).get("expr", []):
                if "counter" in e:
                    n += e["counter"].get("packets", 0)
        return n

    def switch_heal(self) -> None:
        self._switch_nft([{"delete": {"table": {"family": "bridge", "name": "hdchaos"}}}])

    def hb_ports(self) -> list[str]:
        return [self.port(h.name, "eth1") for h in self.pair.directors]

    # ---------------------------------------------------------------------------- observation
    def start_sampling(self, seconds: float) -> None:
        d = self.lab.dir
        self._arp_out = os.path.join(d, "arp.json")
        self._traffic_out = os.path.join(d, "traffic.json")
        self._arp = self.observer.python("hadirector.lab.arpwatch", "--iface", "eth0", "--address",
                                         self.pair.vip, "--seconds", str(seconds), "--period",
                                         str(PERIOD), "--out", self._arp_out)
        self._traffic = self.pair.client.python("hadirector.lab.traffic", "--host", self.pair.vip,
                                                "--seconds", str(seconds), "--period", str(PERIOD),
                                                "--out", self._traffic_out)

    def stop_sampling(self) -> tuple[dict, dict]:
        for p in (self._arp, self._traffic):
            p.signal(signal.SIGTERM)
        for p in (self._arp, self._traffic):
            p.popen.wait(timeout=20)
        with open(self._arp_out) as f:
            arp = json.load(f)
        with open(self._traffic_out) as f:
            traffic = json.load(f)
        return arp, traffic

    def status(self, name: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir",
                            self.cluster.state_dir(name)], capture_output=True, text=True, timeout=30)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": (r.stderr or r.stdout)[-500:]}

    # ---------------------------------------------------------------------------- flood helpers
    def capture_heartbeats(self, host: str, seconds: float = 1.0, limit: int = 20) -> list[bytes]:
        """Heartbeat datagrams `host` sends on its hb link, sniffed at its switch port (what an
        attacker on that switch could record), for replaying."""
        port = self.port(host, "eth1")

        def sniff() -> list[bytes]:
            # ETH_P_ALL: a tap sees a bridge port's frames before the bridge takes them
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            s.bind((port, 0x0003))
            s.settimeout(0.1)
            out: list[bytes] = []
            t_end = time.monotonic() + seconds
            try:
                while time.monotonic() < t_end and len(out) < limit:
                    try:
                        frame = s.recv(70000)
                    except socket.timeout:
                        continue
                    ip = frame[14:]
                    if frame[12:14] != b"\x08\x00" or len(ip) < 28 or ip[9] != 17:
                        continue
                    ihl = (ip[0] & 0x0F) * 4
                    dport = struct.unpack_from("!H", ip, ihl + 2)[0]
                    if dport == 694:
                        out.append(ip[ihl + 8:])
            finally:
                s.close()
            return out

        with NetnsWorker(self.lab.switch_netns) as w:
            return w.call(sniff)


# ------------------------------------------------------------------------------- scenarios

@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fault: Callable[[ChaosLab], None]  # runs the fault; returns when it is over (healed)
    observe: float = 3.0  # seconds of observation after the fault returned
    lab: dict = field(default_factory=dict)  # ChaosLab arguments
    cold_start: bool = False  # sampling starts before the daemons (misconfigurations)


def _kill9_links_down(cl: ChaosLab) -> None:
    cl.cluster.power_off("dir-a")


def _kill9_links_up(cl: ChaosLab) -> None:
    cl.cluster.procs["dir-a"].kill9()


def _sigstop(cl: ChaosLab) -> None:
    p = cl.cluster.procs["dir-a"]
    p.signal(signal.SIGSTOP)
    time.sleep(2.0)
    p.signal(signal.SIGCONT)


def _hb_switch_dead(cl: ChaosLab) -> None:
    cl.switch_drop(cl.hb_ports())
    time.sleep(5.0)
    cl.dropped = cl.switch_dropped()  # type: ignore[attr-defined]
    cl.switch_heal()


def _hb_loss(percent: int) -> Callable[[ChaosLab], None]:
    def fault(cl: ChaosLab) -> None:
        cl.switch_drop(cl.hb_ports(), percent=percent)
        time.sleep(30.0)
        cl.dropped = cl.switch_dropped()  # type: ignore[attr-defined]
        cl.switch_heal()
    return fault


def _partition_heal(cl: ChaosLab) -> None:
    # every heartbeat link: all of hb, and the heartbeat port on the LAN (ARP and traffic flow)
    cl.switch_drop(cl.hb_ports())
    cl.switch_drop([cl.port(h.name, "eth0") for h in cl.pair.directors], udp_port=694)
    time.sleep(5.0)
    cl.dropped = cl.switch_dropped()  # type: ignore[attr-defined]
    cl.switch_heal()


def _nothing(cl: ChaosLab) -> None:
    time.sleep(5.0)


def _public_nic_down(cl: ChaosLab) -> None:
    a = cl.lab.hosts["dir-a"]
    a.run(["ip", "link", "set", "eth0", "down"])
    time.sleep(5.0)
    a.run(["ip", "link", "set", "eth0", "up"])


def _start_both(cl: ChaosLab) -> None:
    cl.cluster.start("dir-a")
    cl.cluster.start("dir-b")


def _flood(cl: ChaosLab) -> None:
    replays = cl.capture_heartbeats("dir-b") + cl.capture_heartbeats("dir-a")
    path = os.path.join(cl.lab.dir, "replay.json")
    with open(path, "w") as f:
        json.dump([r.hex() for r in replays], f)
    out = os.path.join(cl.lab.dir, "flood.json")
    assert cl.attacker is not None
    p = cl.attacker.python("hadirector.lab.flood", "--target", "198.18.1.2:694", "--target",
                           "198.18.1.3:694", "--rate", "20000", "--seconds", "10", "--replay", path,
                           "--out", out)
    p.popen.wait(timeout=60)
    with open(out) as f:
        cl.flood_result = json.load(f)  # type: ignore[attr-defined]
    cl.flood_replays = len(replays)  # type: ignore[attr-defined]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("baseline", "no fault (the measurement's own noise)", _nothing, observe=1.0),
    Scenario("kill9_links_down", "holder killed -9, links down (power loss)", _kill9_links_down),
    Scenario("kill9_links_up", "holder's daemon killed -9, links up", _kill9_links_up),
    Scenario("sigstop_2s", "holder's daemon SIGSTOP 2 s, then SIGCONT", _sigstop),
    Scenario("hb_switch_dead_5s", "heartbeat switch drops everything 5 s, carriers up", _hb_switch_dead),
    Scenario("hb_loss_30", "30 % random loss on the heartbeat link, 30 s", _hb_loss(30), observe=2.0),
    Scenario("hb_loss_50", "50 % random loss on the heartbeat link, 30 s", _hb_loss(50), observe=2.0),
    Scenario("partition_heal", "every heartbeat link cut 5 s (hb and the LAN's udp 694), then healed",
             _partition_heal, lab={"lan_heartbeat": True}),
    Scenario("public_nic_down", "holder's public NIC down 5 s, heartbeat up; ping node 198.18.0.10",
             _public_nic_down, observe=4.0, lab={"ping": ("198.18.0.10",)}),
    Scenario("authkeys_differ", "dir-b's authkeys has another secret (cold start)", _start_both,
             observe=6.0, lab={"overrides": {"dir-b": {"key": "another-secret"}}}, cold_start=True),
    Scenario("udpport_differ", "dir-b's ha.cf says udpport 695 (cold start)", _start_both,
             observe=6.0, lab={"overrides": {"dir-b": {"udpport": 695}}}, cold_start=True),
    Scenario("flood", "garbage, truncated, replayed, oversized datagrams at 20,000/s, 10 s",
             _flood, lab={"attacker": True}),
)}

FAULT_SECONDS = {"baseline": 5, "kill9_links_down": 0, "kill9_links_up": 0, "sigstop_2s": 2, "hb_switch_dead_5s": 5,
                 "hb_loss_30": 30, "hb_loss_50": 30, "partition_heal": 5, "public_nic_down": 5,
                 "authkeys_differ": 0, "udpport_differ": 0, "flood": 12}


def run(name: str, workdir: str | None = None, baseline: float = 1.0) -> Measurement:
    """Run one scenario in a fresh lab and measure it (root)."""
    scn = SCENARIOS[name]
    own = workdir is None
    wd = workdir or tempfile.mkdtemp(prefix=f"hdchaos-{name}-")
    try:
        with ChaosLab(wd, **scn.lab) as cl:
            total = baseline + FAULT_SECONDS[name] + scn.observe + 15
            if scn.cold_start:
                cl.start_sampling(total)
                time.sleep(0.3)
                t0 = time.monotonic()
                scn.fault(cl)
            else:
                _start_both(cl)
                cl.cluster.wait_holder("dir-a", timeout=20, stable=0.5)
                cl.start_sampling(total)
                time.sleep(baseline)
                t0 = time.monotonic() - baseline
                scn.fault(cl)
            time.sleep(scn.observe)
            t1 = time.monotonic()
            status = {n: cl.status(n) for n in ("dir-a", "dir-b")}
            arp, traffic = cl.stop_sampling()
            m = analyse(arp, traffic, cl.macs, t0, t1, name, cold_start=scn.cold_start)
            m.status = status
            m.logs = {n: cl.cluster.log(n) for n in ("dir-a", "dir-b")}
            for k in ("flood_result", "flood_replays", "dropped"):
                if hasattr(cl, k):
                    m.extra[k] = getattr(cl, k)
            return m
    finally:
        if own:
            import shutil
            shutil.rmtree(wd, ignore_errors=True)
