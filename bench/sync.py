#!/usr/bin/env python3
"""Flow sync at 10,000 new connections per second (issue 12): its CPU cost on the active, the
sync lag, bytes per entry, and which flows a backup can carry on at a failover, by age.

The lab of tests/integration/test_failover_flows.py (lab/survive.py `dr_cluster`: two directors
running `hadirector run`, nft direct routing, wrr 3:1 to two reals). A flooder in the client's
namespace sends, through the VIP, a SYN from a new source port `--rate` times a second (each one
a new flow for the balancer: the new-flow rule, NFLOG, a sync entry) and, 50 ms later, a FIN on
the same flow (the closing rule: a second entry), so each connection is what a short HTTP
connection costs the sync. The reals answer for themselves (DR); the client's kernel ignores
their answers. Two runs, the same flood:

1. flow sync off ([balancer.flow_sync] enabled = false): the active daemon's CPU during the flood;
2. flow sync on: the same, the difference is the sync's CPU share of one core. Then the backup's
   lag (p50/p99: entry learned on the active -> stored on the backup, one host's clock), bytes
   per entry, and at the end of the flood the active loses power (kill -9, links down): every flow
   in the dead active's sets (its kernel keeps them) is looked up in the new holder's sets after
   the takeover; "survives" = the same real's set holds it, so the flow's next packet goes to
   the same real. By the flow's age at the kill: 0-100 ms, 100 ms-1 s, older.

    sudo .venv/bin/python bench/sync.py [--rate 10000] [--seconds 5]

The CPU figure counts the daemon process (user + system) only; the kernel's NFLOG work runs in
softirq context on the packet's CPU and is not in it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from hadirector.lab import survive  # noqa: E402
from hadirector.lab.topology import Lab  # noqa: E402

VIP = "198.18.0.100"
CLIENT = "198.18.0.10"


# ----------------------------------------------------------------------------- the flooder

def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _tcp(src: str, dst: str, sport: int, dport: int, flags: int, seq: int) -> bytes:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    c = _csum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def flood(rate: int, seconds: float, out: str, src: str, fin_after: float | None = 0.05,
          first_flags: int = 0x02) -> None:
    """Runs in the client's namespace: SYN from a new port `rate`/s, FIN `fin_after` later
    (`first_flags` 0x10: an ACK instead of the SYN, the probes after a takeover)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.bind((src, 0))
    ports = list(range(1024, 65536))
    random.Random(1).shuffle(ports)
    n = min(len(ports), int(rate * seconds))
    syn = [_tcp(src, VIP, p, 80, first_flags, i) for i, p in enumerate(ports[:n])]
    fin = [_tcp(src, VIP, p, 80, 0x11, i + 1) for i, p in enumerate(ports[:n])]
    open(out + ".start", "w").close()
    sent: list[float] = [0.0] * n
    lag = int(rate * (fin_after or 0))
    t0 = time.monotonic()
    i = 0
    j = n if fin_after is None else 0
    while i < n or j < n:
        now = time.monotonic()
        due = min(n, int((now - t0) * rate) + 1)
        while i < due:
            s.sendto(syn[i], (VIP, 0))
            sent[i] = time.monotonic()
            i += 1
        while fin_after is not None and j < n and (j + lag < i or i == n):
            s.sendto(fin[j], (VIP, 0))
            j += 1
        time.sleep(0.001)
    with open(out + ".tmp", "w") as f:
        json.dump({"ports": ports[:n], "sent": sent, "elapsed": time.monotonic() - t0}, f)
    os.replace(out + ".tmp", out)


# ----------------------------------------------------------------------------- measuring

def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(c, name: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir",
                          c.state_dir(name)], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def set_flows(host, client: str) -> dict[int, str]:
    """source port -> real (address) from every flow and closing set of the host's tables."""
    out = json.loads(host.run(["nft", "-j", "list", "ruleset"], timeout=120).stdout)
    flows: dict[int, str] = {}
    for it in out.get("nftables", []):
        st = it.get("set")
        if not st or not (st["name"].startswith("flow_") or st["name"].startswith("fin_")):
            continue
        real = st["name"].rsplit("_", 2)[-2]
        for el in st.get("elem", []) or []:
            v = el["elem"]["val"] if isinstance(el, dict) and "elem" in el else el
            if isinstance(v, dict) and "concat" in v and v["concat"][0] == client:
                flows[int(v["concat"][1])] = real
    return flows


def run_flood(c, work: str, rate: int, seconds: float, tag: str) -> tuple[dict, float, float]:
    """The flood from the client; returns (its log, CPU seconds of dir-a's daemon, wall seconds)."""
    out = os.path.join(work, f"flood-{tag}.json")
    pid = c.procs["dir-a"].pid
    proc = c.pair.client.spawn([sys.executable, __file__, "--flood-out", out, "--rate", str(rate),
                                "--seconds", str(seconds), "--src", CLIENT], name="flood")
    _wait_file(out + ".start", proc, 60)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    _wait_file(out, proc, seconds + 60)
    time.sleep(0.2)  # the last batches
    cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    with open(out) as f:
        return json.load(f), cpu, wall


def idle_cpu(c, seconds: float) -> float:
    pid = c.procs["dir-a"].pid
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu0) / seconds


def one_run(rate: int, seconds: float, sync: bool) -> dict:
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="hd-sync-") as work:
        c = survive.dr_cluster(lab, work, survive.ldirectord_cf(), sync=sync)
        time.sleep(2)  # the backup's first snapshot, the checks settled
        idle = idle_cpu(c, 3)
        cb0 = status(c, "dir-a").get("flow_sync", {}).get("cpu_s", 0) if sync else 0
        log, cpu, wall = run_flood(c, work, rate, seconds, "on" if sync else "off")
        res = {"sync": sync, "idle_core_share": round(idle, 4),
               "flood_core_share": round(cpu / wall, 4), "flood_seconds": round(log["elapsed"], 2),
               "connections": len(log["ports"]), "rate": round(len(log["ports"]) / log["elapsed"])}
        if sync:
            time.sleep(0.5)
            wall = log["elapsed"]
            a, b = status(c, "dir-a").get("flow_sync", {}), status(c, "dir-b").get("flow_sync", {})
            sent = a.get("sent", {})
            cb = (a.get("cpu_s") or 0) - cb0
            res.update({"sync_cpu_s_in_callbacks": round(cb, 3),
                        "sync_callbacks_core_share": round(cb / wall, 4),
                        "entries_sent": sent.get("entries"), "messages": sent.get("messages"),
                        "bytes": sent.get("bytes"), "dropped_sender": sent.get("dropped"),
                        "bytes_per_entry": round(sent.get("bytes", 0) / max(1, sent.get("entries", 1)), 1),
                        "nflog": a.get("nflog"), "backup_entries": b.get("entries"),
                        "lag_ms": b.get("lag_ms"), "backup_dropped": b.get("dropped"), "gaps": b.get("gaps")})
        res["failover"] = failover_by_age(c, work, rate, seconds)
        return res


TRACKED = "198.18.0.21"  # the flows whose fate is read (the others are load)
LOAD = "198.18.0.20"


def _spawn_flood(c, out: str, rate: int, seconds: float, src: str, *extra: str):
    return c.pair.client.spawn([sys.executable, __file__, "--flood-out", out, "--rate", str(rate),
                                "--seconds", str(seconds), "--src", src, *extra], name="flood")


def _wait_file(path: str, proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if (not proc.alive() and not os.path.exists(path)) or time.monotonic() > deadline:
            raise RuntimeError(f"flooder failed: {proc.output()[-2000:]}")
        time.sleep(0.01)


def real_seen(host, name: str) -> set[int]:
    """Source ports of TRACKED in set `name` of the real's bench table (text listing: fast)."""
    import re
    out = host.run(["nft", "list", "set", "netdev", "bench", name], timeout=300).stdout
    return {int(p) for p in re.findall(re.escape(TRACKED) + r" \. (\d+)", out)}


def failover_by_age(c, work: str, rate: int, seconds: float) -> dict:
    """SYN-only flows at `rate`/s (a tenth of them TRACKED); the active loses power as the flood
    ends; then one ACK per TRACKED flow through the new holder. Each real records (in its own
    ingress, before its stack) the SYNs and the ACKs of TRACKED flows it received: a flow
    survives when its ACK reached the real its SYN did. Only TRACKED flows are listed, so the
    listing stays small; the client's kernel is kept from answering the reals' SYN-ACKs with
    RST, so every flow stays open in the balancer's memory."""
    reals = [c.pair.lab[name] for name, _ in survive.REALS]
    for r in reals:
        r.run(["nft", "-f", "-"], input=(
            "table netdev bench {\n"
            " set syn { type ipv4_addr . inet_service; flags timeout; timeout 1h; size 65536; }\n"
            " set ack { type ipv4_addr . inet_service; flags timeout; timeout 1h; size 65536; }\n"
            " chain in { type filter hook ingress device eth0 priority -200; policy accept;\n"
            f"  ip saddr {TRACKED} tcp dport 80 tcp flags & (syn|ack) == syn update @syn {{ ip saddr . tcp sport }}\n"
            f"  ip saddr {TRACKED} tcp dport 80 tcp flags & (syn|ack) == ack update @ack {{ ip saddr . tcp sport }}\n"
            " }\n}\n"))
    c.pair.client.run(["nft", "-f", "-"], input="table inet bench_norst {\n chain out {\n type filter "
                      "hook output priority 0; policy accept;\n tcp flags rst drop\n }\n}\n")
    for a in (LOAD, TRACKED):
        c.pair.client.add_address(f"{a}/24", "eth0")
    tracked_out, load_out = os.path.join(work, "tracked.json"), os.path.join(work, "load.json")
    tracked_rate = max(1, rate // 10)
    load = _spawn_flood(c, load_out, rate - tracked_rate, seconds + 2, LOAD, "--no-fin")
    _wait_file(load_out + ".start", load, 60)
    tracked = _spawn_flood(c, tracked_out, tracked_rate, seconds, TRACKED, "--no-fin")
    _wait_file(tracked_out + ".start", tracked, 60)
    time.sleep(seconds * 0.98)  # the youngest tracked flows a few ms old
    t_kill = time.monotonic()
    c.power_off("dir-a")
    _wait_file(tracked_out, tracked, 60)
    _wait_file(load_out, load, 60)
    c.wait_holder("dir-b", timeout=15)
    # until the new holder's balancer is in (its first transaction loads the synced entries;
    # meanwhile the hold table drops the service's packets, which a real client retransmits:
    # these one-shot probes would not)
    deadline = time.monotonic() + 60
    st: dict = {}
    while time.monotonic() < deadline:
        st = status(c, "dir-b").get("flow_sync") or {}
        if st.get("role") == "active" or (not st and status(c, "dir-b").get("balancer", {}).get("running")):
            break
        time.sleep(0.1)
    time.sleep(0.3)
    takeover = {"loaded": st.get("loaded_at_takeover"), "load_ms": st.get("load_ms")}
    with open(tracked_out) as f:
        log = json.load(f)
    sent_at = {p: t for p, t in zip(log["ports"], log["sent"]) if t and t <= t_kill}
    probe_out = os.path.join(work, "probe.json")
    n = len(log["ports"])
    probe = _spawn_flood(c, probe_out, 5000, n / 5000 + 0.001, TRACKED, "--probe")
    _wait_file(probe_out, probe, 120)
    time.sleep(0.5)
    syn = {r.name: real_seen(r, "syn") for r in reals}
    ack = {r.name: real_seen(r, "ack") for r in reals}
    buckets = {"0-100ms": [0, 0], "100ms-1s": [0, 0], ">1s": [0, 0]}
    for port, t in sent_at.items():
        home = [name for name, ports in syn.items() if port in ports]
        if len(home) != 1:
            continue  # the SYN reached no real (lost in the outage) or both (cannot be)
        age = t_kill - t
        k = "0-100ms" if age < 0.1 else "100ms-1s" if age < 1.0 else ">1s"
        buckets[k][0] += 1
        buckets[k][1] += port in ack[home[0]]
    out: dict = {k: {"flows": f, "same_real": ok, "share": round(ok / f, 4) if f else None}
                 for k, (f, ok) in buckets.items()}
    out["takeover"] = takeover
    return out


def listing_cost(sizes=(1000, 10000, 50000)) -> dict:
    """The alternative to NFLOG, measured: how long one listing of a DR flow set of N elements
    takes through libnftables' JSON API (what a periodic reader would pay per period)."""
    from hadirector.dataplane.libnft import Nft
    out = {}
    with Lab() as lab:
        h = lab.host("lister")
        for n in sizes:
            elems = ", ".join(f"198.18.{(i >> 8) & 255}.{i & 255} . {1024 + (i % 60000)}" for i in range(n))
            h.run(["nft", "-f", "-"], input=(
                "table netdev bench { set s { type ipv4_addr . inet_service; flags timeout; "
                f"timeout 900s; size 262144; }}\n}}\nflush set netdev bench s\n"
                f"add element netdev bench s {{ {elems} }}\n"), timeout=300)

            def work():
                nft = Nft()
                t = time.perf_counter()
                items = nft.list({"set": {"family": "netdev", "table": "bench", "name": "s"}}, terse=False)
                dt = time.perf_counter() - t
                nft.close()
                got = sum(len((it.get("set") or {}).get("elem", []) or []) for it in items)
                return dt, got
            dt, got = h.worker.call(work)
            out[n] = {"seconds": round(dt, 3), "elements": got}
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--flood-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--src", default=CLIENT, help=argparse.SUPPRESS)
    p.add_argument("--no-fin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--listing", action="store_true",
                   help="only: the cost of listing a flow set of 1k/10k/50k elements (the alternative)")
    a = p.parse_args()
    if a.listing:
        print(json.dumps(listing_cost(), indent=2))
        return 0
    if a.flood_out:
        flood(a.rate, a.seconds, a.flood_out, a.src, None if a.no_fin or a.probe else 0.05,
              0x10 if a.probe else 0x02)
        return 0
    if os.geteuid() != 0:
        print("bench/sync.py: needs root (network namespaces, nftables)", file=sys.stderr)
        return 1
    off = one_run(a.rate, a.seconds, sync=False)
    on = one_run(a.rate, a.seconds, sync=True)
    on["sync_core_share"] = round(on["flood_core_share"] - off["flood_core_share"], 4)
    print(json.dumps({"off": off, "on": on}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
