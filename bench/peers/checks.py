#!/usr/bin/env python3
"""Check detection: the time from a real's server stopping to its removal by the health checks,
hadirector against keepalived 2.2.7 and HAProxy, at the same check interval.

    sudo PYTHONPATH=src /work/main/.venv/bin/python bench/peers/checks.py [--rounds 20] [--interval 1]

The shared topology (bench/peers/topology.py): real1 198.18.0.11 and real2 198.18.0.12 answer
HTTP on port 80; the checkers all run on dir-a 198.18.0.2 (the other hosts stay idle). Each
system checks both reals twice, once with a TCP connect check ("tcp") and once with an HTTP GET
of / whose body must contain "real" ("http"), every `interval`, with the same timeout
(min(1 s, interval)), and takes a real out on its FIRST failed check:

  hadirector  `hadirector run` on one node, its [balancer] from an ldirectord.cf (heartbeat
              directory: ha.cf, authkeys, haresources `dir-a ldirectord::ldirectord.cf`):
              `checkinterval`, `checktimeout`/`negotiatetimeout`, `failurecount=1` (also
              ldirectord's default: `$FAILURECOUNT = 1` in ldirectord's ld_init), `checktype=
              connect`, and `checktype=negotiate` + `service=http` + `request`/`receive`.
              ldirectord.cf takes whole seconds only; a sub-second interval is written as the
              same keys in native TOML instead. Data plane: nft (DR, `gate`).
  hadirector-proxy  the same checks (native TOML) with `dataplane = "proxy"`: the difference
              between the two rows is the time the data plane takes to install a change.
              Both are seen through the control socket's `lvs` (what `hadirector lvs --json`
              prints: the state the data plane has installed); removed = down or weight 0.
  keepalived  `keepalived -C` (the checker alone, no VRRP): `virtual_server` with `lb_kind DR`,
              `delay_loop` = interval, `TCP_CHECK` / `HTTP_GET { url { path / status_code 200
              regex real } }` with `connect_timeout` and `retry 0` (2.2.7's default is 1 retry:
              check_api.c queue_checker `default_retry = 1`, applied in check_data.c; the delay
              before a retry defaults to 1 s for TCP_CHECK and 3 s for HTTP_GET). Seen through
              the IPVS table: removed = its destination deleted (or weight 0). Where the kernel
              has IPVS that is dir-a's /proc/net/ip_vs (what `ipvsadm -Ln` reads). This
              machine's kernel has none (CONFIG_IP_VS is not set) and keepalived's checker exits
              without it, so there keepalived runs with bench/peers/ipvs_stub.c preloaded, which
              answers libipvs's sockopt calls and logs each IPVS command with its time; that log
              is read as the table. The checks are keepalived's own.
  haproxy     `mode tcp` with `check inter <interval> fall 1 rise 1`, and `mode http` with
              `option httpchk GET /` + `http-check expect rstring real`; `timeout connect` and
              `timeout check` = the timeout; one thread. Seen through its stats socket (`show
              stat`): removed = status DOWN.

All of them run at once and every round stops real1 once, so a round gives one sample per
system and check kind, under the same load. Each system checks real1 at an address of its own
(CHECKED: real1 holds all of them), so bench/peers/synwatch.py on real1 can tell whose check
each SYN is. A round: every checker serves both reals; a wait so that the stop falls at a
random phase of the check interval; t0; real1's HTTP server killed (SIGKILL: its port refuses
connections at once); every system's view polled every POLL_S (one thread each) until it no
longer serves real1, the sample being the time of the poll that saw it gone; real1's server
started again. The phases: one uniform draw in each of `rounds` equal slices of the interval,
in random order.

A sample is the wait for the checker's next check, which is luck (where the stop fell in that
checker's schedule, and the schedules drift against each other: HAProxy's period is `inter`
plus the check's own time), plus the checker's reaction: from the SYN of the check that found
real1 dead to the removal being visible. With 20 samples the luck moves a median by tens of ms
from run to run, so the table also gives each checker's measured period (the median time
between its SYNs to real1) and its reaction, and the *expected* detection, period / 2 + the mean
reaction: what a stop at a random moment costs on average, which is the figure compared with
HAProxy's. Every figure comes from the run that prints it.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from topology import REALS, ROOT, Lab, PeersLab, build  # noqa: E402

from hadirector.daemon.control import ControlError, request  # noqa: E402

KINDS = ("tcp", "http")
VIPS = {"tcp": "198.18.0.100", "http": "198.18.0.101"}  # one virtual service per check kind
STOPPED = "real1"
# real1 answers on one more address per system and check kind, so synwatch.py on real1 tells
# whose check each SYN is: the real the checker removes is real1 at its own address
CHECKED = {"hadirector": ("198.18.0.21", "198.18.0.22"), "hadirector-proxy": ("198.18.0.23", "198.18.0.24"),
           "keepalived": ("198.18.0.25", "198.18.0.26"), "haproxy": ("198.18.0.27", "198.18.0.28")}


def checked(system: str) -> dict[str, set[str]]:
    """What `system` serves in each kind while both reals are up."""
    return {k: {a, REALS["real2"]} for k, a in zip(KINDS, CHECKED[system])}


def real1_at(system: str) -> dict[str, str]:
    """real1's address as `system` checks it, per kind."""
    return dict(zip(KINDS, CHECKED[system]))
POLL_S = 0.005
NODE = "dir-a"


def timeout_for(interval_s: float) -> float:
    return min(1.0, interval_s)


def _wait(cond, timeout: float, what: str, log=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    tail = f"\n{log()[-3000:]}" if log else ""
    raise RuntimeError(f"{what}: not within {timeout:.0f} s{tail}")


def _alive(pid: int, name: str) -> bool:
    """True when `pid` is a live process whose command line mentions `name` (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return name.encode() in f.read()
    except OSError:
        return False


# ------------------------------------------------------------------------------- hadirector

HA_CF = """keepalive 1
deadtime 5
initdead 10
udpport 694
ucast eth1 198.18.1.2
node dir-a
auto_failback on
"""

LDIRECTORD_VS = """virtual={vip}:80
    real={real1}:80 gate
    real={real2}:80 gate
    scheduler=rr
{check}
"""

TOML_HEAD = """[cluster]
nodes = ["dir-a"]
[cluster.auth]
key = "bench-checks"
[[cluster.links]]
kind = "ucast"
interface = "eth1"
peers = ["198.18.1.2"]
port = {udpport}
[[groups]]
name = "lb"
preferred_node = "dir-a"
[[groups.resources]]
kind = "balancer"
[balancer]
dataplane = "{dataplane}"
checkinterval = "{interval_ms}ms"
checktimeout = "{timeout_ms}ms"
negotiatetimeout = "{timeout_ms}ms"
failurecount = 1
"""


class Hadirector:
    """`dataplane` "nft": the ldirectord.cf set-up (the module text). "proxy": the same checks in
    native TOML with `dataplane = "proxy"` (its own VIPs, bound with IP_FREEBIND, and heartbeat
    port), to tell the checks' own time from the time the nft data plane takes to install."""

    def __init__(self, pl: PeersLab, workdir: str, interval_s: float, dataplane: str = "nft") -> None:
        self.system = "hadirector" if dataplane == "nft" else f"hadirector-{dataplane}"
        self.dataplane = dataplane
        self.vips = VIPS if dataplane == "nft" else {"tcp": "198.18.0.110", "http": "198.18.0.111"}
        # the proxy listens on its services: not on port 80, where dir-a's own HTTP server
        # (topology.build) holds the wildcard address
        self.vport = 80 if dataplane == "nft" else 8090
        self.host = pl.host(NODE)
        self.dir = os.path.join(workdir, self.system)
        self.state = os.path.join(self.dir, "state")
        self.interval_s, self.timeout_s = interval_s, timeout_for(interval_s)
        self.proc = None

    def _config_args(self) -> list[str]:
        os.makedirs(self.dir, exist_ok=True)
        whole = self.interval_s == int(self.interval_s) and self.timeout_s == int(self.timeout_s)
        if whole and self.dataplane == "nft":  # ldirectord.cf: whole seconds (ldirectord's /(\d+)/ match)
            checks = {"tcp": "    checktype=connect",
                      "http": '    checktype=negotiate\n    service=http\n    request="/"\n    receive="real"'}
            cf = (f"checkinterval={int(self.interval_s)}\nchecktimeout={int(self.timeout_s)}\n"
                  f"negotiatetimeout={int(self.timeout_s)}\nfailurecount=1\nquiescent=no\n\n"
                  + "\n".join(LDIRECTORD_VS.format(vip=self.vips[k], check=checks[k], real1=real1_at(self.system)[k],
                                                    real2=REALS["real2"]) for k in KINDS))
            with open(os.path.join(self.dir, "ha.cf"), "w") as f:
                f.write(HA_CF)
            fd = os.open(os.path.join(self.dir, "authkeys"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("auth 1\n1 sha1 bench-checks\n")
            with open(os.path.join(self.dir, "haresources"), "w") as f:
                f.write(f"{NODE} ldirectord::ldirectord.cf\n")
            with open(os.path.join(self.dir, "ldirectord.cf"), "w") as f:
                f.write(cf)
            return ["--ha-dir", self.dir]
        checks = {"tcp": 'checktype = "connect"',
                  "http": 'checktype = "negotiate"\nservice = "http"\nrequest = "/"\nreceive = "real"'}
        text = TOML_HEAD.format(interval_ms=round(self.interval_s * 1000), timeout_ms=round(self.timeout_s * 1000),
                                dataplane=self.dataplane, udpport=694 if self.dataplane == "nft" else 695)
        for k in KINDS:
            text += (f'[[balancer.virtual]]\naddress = "{self.vips[k]}"\nport = {self.vport}\n'
                     f'scheduler = "rr"\n{checks[k]}\n')
            for addr in (real1_at(self.system)[k], REALS["real2"]):
                text += f'[[balancer.virtual.reals]]\naddress = "{addr}"\nport = 80\nmethod = "gate"\n'
        path = os.path.join(self.dir, "hadirector.toml")
        with open(path, "w") as f:
            f.write(text)
        return ["-c", path]

    def start(self) -> None:
        args = self._config_args()
        self.proc = self.host.spawn([sys.executable, "-m", "hadirector", "run", *args, "--node", NODE,
                                     "--state-dir", self.state], name="hadirector",
                                    env={"PYTHONPATH": os.path.join(ROOT, "src")})

    how = "control socket lvs"

    def view(self) -> dict[str, set[str]]:
        """The reals the installed state serves, per check kind (empty before the daemon answers)."""
        try:
            reply = request(self.state, "lvs", timeout=2.0)
        except ControlError:
            return {k: set() for k in KINDS}
        out: dict[str, set[str]] = {k: set() for k in KINDS}
        for svc in (reply.get("desired") or {}).get("services", []):
            kind = next((k for k, v in self.vips.items() if v == svc["address"]), None)
            if kind:
                out[kind] = {r["address"] for r in svc["reals"] if r["status"] != "down" and r["weight"] > 0}
        return out

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


# ------------------------------------------------------------------------------- keepalived

KEEPALIVED_VS = """virtual_server {vip} 80 {{
    delay_loop {interval}
    lb_algo rr
    lb_kind DR
    protocol TCP
{reals}}}
"""

KEEPALIVED_RS = """    real_server {addr} 80 {{
        weight 1
        {check} {{
{url}            connect_timeout {timeout}
            retry 0
            delay_before_retry {interval}
        }}
    }}
"""

HTTP_URL = """            url {
                path /
                status_code 200
                regex real
            }
"""


class Keepalived:
    system = "keepalived"

    def __init__(self, pl: PeersLab, workdir: str, interval_s: float) -> None:
        self.host = pl.host(NODE)
        self.dir = os.path.join(workdir, "keepalived")
        self.interval_s, self.timeout_s = interval_s, timeout_for(interval_s)
        self.proc = None
        self.stub_log = os.path.join(self.dir, "ipvs.log")
        self.kernel_ipvs = False

    def _build_stub(self) -> str:
        if shutil.which("gcc") is None:
            raise RuntimeError("gcc is needed to build bench/peers/ipvs_stub.c (apt-get install gcc)")
        so = os.path.join(self.dir, "ipvs_stub.so")
        cp = subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "ipvs_stub.c"),
                             "-ldl"], capture_output=True, text=True, timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"building ipvs_stub.c failed:\n{cp.stderr}")
        return so

    def start(self) -> None:
        if shutil.which("keepalived") is None:
            raise RuntimeError("keepalived is not installed (apt-get install keepalived)")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "keepalived.conf")
        text = f"global_defs {{\n    router_id {NODE}\n}}\n"
        for k in KINDS:
            reals = "".join(KEEPALIVED_RS.format(addr=a, check="TCP_CHECK" if k == "tcp" else "HTTP_GET",
                                                 url="" if k == "tcp" else HTTP_URL, timeout=f"{self.timeout_s:g}",
                                                 interval=f"{self.interval_s:g}")
                            for a in (real1_at(self.system)[k], REALS["real2"]))
            text += KEEPALIVED_VS.format(vip=VIPS[k], interval=f"{self.interval_s:g}", reals=reals)
        with open(conf, "w") as f:
            f.write(text)
        self.kernel_ipvs = self.host.worker.call(os.path.exists, "/proc/thread-self/net/ip_vs")
        env = {}
        if not self.kernel_ipvs:
            env = {"LD_PRELOAD": self._build_stub(), "IPVS_STUB_LOG": self.stub_log}
        self.pids = {f: os.path.join(self.dir, f) for f in ("k.pid", "c.pid")}
        self.proc = self.host.spawn(["keepalived", "-C", "-n", "-l", "-D", "-f", conf,
                                     "-p", self.pids["k.pid"], "-c", self.pids["c.pid"]],
                                    name="keepalived", env=env)

    @property
    def how(self) -> str:
        return "/proc/net/ip_vs" if self.kernel_ipvs else "IPVS commands logged by ipvs_stub"

    def view(self) -> dict[str, set[str]]:
        if self.kernel_ipvs:
            return self._kernel_view()
        table: dict[str, dict[str, int]] = {v: {} for v in VIPS.values()}
        try:
            with open(self.stub_log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            parts = line.split()
            if len(parts) != 5:
                continue
            _, cmd, vs, rs, weight = parts
            vip, rip = vs.rsplit(":", 1)[0], rs.rsplit(":", 1)[0]
            if cmd == "FLUSH":
                table = {v: {} for v in VIPS.values()}
            elif vip not in table:
                continue
            elif cmd == "DEL":
                table[vip] = {}
            elif cmd in ("ADDDEST", "EDITDEST"):
                table[vip][rip] = int(weight)
            elif cmd == "DELDEST":
                table[vip].pop(rip, None)
        return {k: {a for a, w in table[VIPS[k]].items() if w > 0} for k in KINDS}

    def _kernel_view(self) -> dict[str, set[str]]:
        """/proc/net/ip_vs of dir-a (what `ipvsadm -Ln` shows), for kernels that have IPVS."""
        def read() -> str:
            with open("/proc/thread-self/net/ip_vs") as f:
                return f.read()

        def addr(hexaddr: str) -> str:
            return socket.inet_ntoa(bytes.fromhex(hexaddr.split(":")[0]))

        out: dict[str, set[str]] = {k: set() for k in KINDS}
        kind = None
        for line in self.host.worker.call(read).splitlines():
            f = line.split()
            if f and f[0] == "TCP":
                kind = next((k for k, v in VIPS.items() if v == addr(f[1])), None)
            elif f and f[0] == "->" and kind and len(f) >= 4 and f[3].isdigit() and int(f[3]) > 0:
                out[kind].add(addr(f[1]))
        return out

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        """keepalived's checker child outlives its parent (bench/failover.py kill_children):
        stop the parent, then the child by its pid file."""
        if self.proc:
            self.proc.stop()
        for f in self.pids.values() if self.proc else ():
            try:
                with open(f) as fh:
                    pid = int(fh.read().strip())
            except (OSError, ValueError):
                continue
            if _alive(pid, "keepalived"):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------- HAProxy

HAPROXY_CFG = """global
    nbthread 1
    stats socket {sock} mode 600 level admin
    log stdout format raw local0
defaults
    log global
    timeout connect {timeout_ms}ms
    timeout check {timeout_ms}ms
    timeout client 10s
    timeout server 10s
listen tcp
    mode tcp
    bind 198.18.0.2:8080
    balance roundrobin
    default-server check inter {interval_ms} fall 1 rise 1
    server real1 {real1_tcp}:80
    server real2 198.18.0.12:80
listen http
    mode http
    bind 198.18.0.2:8081
    balance roundrobin
    option httpchk GET /
    http-check expect rstring real
    default-server check inter {interval_ms} fall 1 rise 1
    server real1 {real1_http}:80
    server real2 198.18.0.12:80
"""


class HAProxy:
    system = "haproxy"

    def __init__(self, pl: PeersLab, workdir: str, interval_s: float) -> None:
        self.host = pl.host(NODE)
        self.dir = os.path.join(workdir, "haproxy")
        self.sock = os.path.join(self.dir, "stats.sock")
        self.interval_s, self.timeout_s = interval_s, timeout_for(interval_s)
        self.proc = None

    def start(self) -> None:
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        os.makedirs(self.dir, exist_ok=True)
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(sock=self.sock, interval_ms=round(self.interval_s * 1000),
                                       timeout_ms=round(self.timeout_s * 1000),
                                       real1_tcp=real1_at(self.system)["tcp"], real1_http=real1_at(self.system)["http"]))
        self.proc = self.host.spawn(["haproxy", "-db", "-f", cfg], name="haproxy")

    how = "stats socket show stat"

    def view(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {k: set() for k in KINDS}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect(self.sock)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        except OSError:
            return out
        finally:
            s.close()
        rows = csv.reader(io.StringIO(data.decode(errors="replace").lstrip("# ")))
        header = next(rows, [])
        if "status" not in header:
            return out
        px, sv, st = header.index("pxname"), header.index("svname"), header.index("status")
        for row in rows:
            if len(row) > st and row[px] in out and row[sv] in REALS and row[st].startswith("UP"):
                out[row[px]].add(real1_at(self.system)[row[px]] if row[sv] == STOPPED else REALS[row[sv]])
        return out

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


# ------------------------------------------------------------------------------- the measure

def _real_server(pl: PeersLab, name: str):
    """The HTTP server topology.build started on `name` (a LabProcess)."""
    for p in reversed(pl.lab._procs):
        if p.host.name == name and "hadirector.lab.httpd" in p.argv and p.alive():
            return p
    raise RuntimeError(f"no running HTTP server on {name}")


def _summary(system: str, kind: str, samples: list[float]) -> dict:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))] if s else float("nan")
    return {"system": system, "kind": kind, "n": len(s),
            "median_ms": round(statistics.median(s), 1) if s else float("nan"),
            "p95_ms": round(p95, 1), "max_ms": round(max(s), 1) if s else float("nan"),
            "samples": [round(x, 1) for x in samples]}


class Watch(threading.Thread):
    """Polls one system's view every POLL_S from t0 until it no longer serves `addr` in each
    kind; `seen[kind]` is then the time of the poll that saw it gone. One thread per system, so a
    slow view of one system never delays the polls of another."""

    def __init__(self, system, t0: float, deadline: float, view_ms: list[float]):
        super().__init__(daemon=True)
        self.system, self.t0, self.deadline, self.view_ms = system, t0, deadline, view_ms
        self.addr = real1_at(system.system)
        self.seen: dict[str, float] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        tick = self.t0
        try:
            while len(self.seen) < len(KINDS) and time.monotonic() < self.deadline:
                before = time.monotonic()
                v = self.system.view()
                after = time.monotonic()
                self.view_ms.append((after - before) * 1000)
                for k in KINDS:
                    if k not in self.seen and self.addr[k] not in v[k]:
                        self.seen[k] = after
                tick += POLL_S
                time.sleep(max(0.0, tick - time.monotonic()))
        except BaseException as exc:  # reported by the harness thread
            self.error = exc


def phases(rounds: int, interval_s: float, rng: random.Random) -> list[float]:
    """The phase of each stop within the check interval: one uniform draw in each of `rounds`
    equal slices of [0, interval), in random order. Each is uniform on [0, interval) by itself;
    together they cover the interval evenly, so the medians are not at the mercy of where a
    few draws happened to fall (with plain draws the median of 20 moves by about a tenth of the
    interval from run to run)."""
    out = [(k + rng.random()) / rounds * interval_s for k in range(rounds)]
    rng.shuffle(out)
    return out


def _syns(path: str) -> list[tuple[float, str]]:
    try:
        with open(path) as f:
            rows = [line.split() for line in f.read().splitlines()]
    except FileNotFoundError:
        return []
    return [(float(r[0]), r[1]) for r in rows if len(r) == 2]


def _failing_check(syns: list[tuple[float, str]], addr: str, t0: float, seen: float) -> float | None:
    """When the check that found real1 dead reached it: the last SYN to `addr` after the kill
    (t0) and before the removal was seen (with one failure to remove, no retry, it is the
    one); None when there is none (a checker that removed it without a check)."""
    times = [t for t, a in syns if a == addr and t0 <= t <= seen]
    return times[-1] if times else None


def _period_ms(syns: list[tuple[float, str]], addr: str) -> float | None:
    """The median time between successive checks of `addr`: the checker's real period."""
    times = [t for t, a in syns if a == addr]
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:])]
    return round(statistics.median(gaps), 1) if gaps else None


def run(rounds: int, interval_s: float, progress=None, seed: int | None = None) -> list[dict]:
    """Measure `rounds` stops of real1 with every system checking every `interval_s`; one row
    per system and check kind (see the module text). `progress(str)` gets a line per round."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    if not 0.05 <= interval_s <= 60:
        raise ValueError("interval must be between 0.05 and 60 seconds")
    rng = random.Random(seed)
    samples: dict[tuple[str, str], list[float]] = {}
    reactions: dict[tuple[str, str], list[float]] = {}
    settle = 3 * interval_s + 15
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="bench-checks-") as wd:
        pl = build(lab)
        real1 = pl.host(STOPPED)
        for addrs in CHECKED.values():
            for a in addrs:
                real1.run(["ip", "addr", "add", f"{a}/24", "dev", "eth0"])
        syn_log = os.path.join(wd, "syns.txt")
        real1.spawn([sys.executable, os.path.join(HERE, "synwatch.py"), "--iface", "eth0", "--port", "80",
                     "--out", syn_log], name="synwatch")
        systems = [Hadirector(pl, wd, interval_s), Hadirector(pl, wd, interval_s, "proxy"),
                   Keepalived(pl, wd, interval_s), HAProxy(pl, wd, interval_s)]
        view_ms: dict[str, list[float]] = {s.system: [] for s in systems}
        try:
            for s in systems:
                s.start()
                for k in KINDS:
                    samples[(s.system, k)], reactions[(s.system, k)] = [], []
            for s in systems:
                _wait(lambda s=s: s.view() == checked(s.system), settle,
                      f"{s.system}: both reals up in both services", s.log)
            server = _real_server(pl, STOPPED)
            # every check schedule is periodic with the same interval, so a stop's phase against
            # this fixed origin is its phase against each schedule, shifted by a constant
            origin = time.monotonic()
            for i, phase in enumerate(phases(rounds, interval_s, rng)):
                for s in systems:
                    _wait(lambda s=s: s.view() == checked(s.system), settle,
                          f"round {i + 1}: {s.system} serving both reals", s.log)
                now = time.monotonic()
                periods = -(-(now - origin - phase) // interval_s)  # ceiling: the next such instant
                time.sleep(max(0.0, origin + periods * interval_s + phase - now))
                t0 = time.monotonic()
                server.kill9()
                watches = [Watch(s, t0, t0 + settle, view_ms[s.system]) for s in systems]
                for w in watches:
                    w.start()
                for w in watches:
                    w.join(settle + 5)
                time.sleep(0.05)  # synwatch writes each SYN as it reads it
                syns = _syns(syn_log)
                for w in watches:
                    if w.error is not None:
                        raise RuntimeError(f"round {i + 1}: polling {w.system.system}: {w.error}")
                    missing = [k for k in KINDS if k not in w.seen]
                    if missing:
                        raise RuntimeError(f"round {i + 1}: {w.system.system} ({', '.join(missing)}) still "
                                           f"served {STOPPED} after {settle:.0f} s\n{w.system.log()[-3000:]}")
                    for k in KINDS:
                        samples[(w.system.system, k)].append((w.seen[k] - t0) * 1000)
                        check_at = _failing_check(syns, w.addr[k], t0, w.seen[k])
                        if check_at is not None:
                            reactions[(w.system.system, k)].append((w.seen[k] - check_at) * 1000)
                server = real1.http_server(port=80, identity=STOPPED)
                if progress:
                    progress(f"  round {i + 1:2d} (phase {phase * 1000:4.0f} ms): " + "  ".join(
                        f"{s.system} {k} {samples[(s.system, k)][-1]:5.0f}" for s in systems for k in KINDS) + " ms")
        finally:
            for s in reversed(systems):
                try:
                    s.stop()
                except Exception as exc:  # keep stopping the others
                    print(f"checks: stopping {s.system}: {exc}", file=sys.stderr)
        syns = _syns(syn_log)
    rows = []
    how = {s.system: s.how for s in systems}
    for (name, k), v in samples.items():
        r = _summary(name, k, v)
        r["view_ms"] = round(statistics.median(view_ms[name]), 2) if view_ms[name] else None
        r["view"] = how[name]
        r["period_ms"] = _period_ms(syns, real1_at(name)[k])
        rs = reactions[(name, k)]
        r["reaction_n"] = len(rs)
        r["reaction_median_ms"] = round(statistics.median(rs), 1) if rs else None
        r["reaction_max_ms"] = round(max(rs), 1) if rs else None
        r["reactions"] = [round(x, 1) for x in rs]
        # what the detection is, free of where the stops happened to fall in each schedule: a
        # stop at a uniformly random moment waits half a period for the next check on average
        if r["period_ms"] is not None and rs:
            r["expected_ms"] = round(r["period_ms"] / 2 + statistics.mean(rs), 1)
        else:
            r["expected_ms"] = None
        rows.append(r)
    return rows


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def print_table(rows: list[dict], interval_s: float, rounds: int) -> None:
    print(f"\ncheck detection: real1's server killed, time until each checker stops serving it "
          f"(ms); interval {interval_s * 1000:.0f} ms, timeout {timeout_for(interval_s) * 1000:.0f} ms, "
          f"out on the first failed check, views polled every {POLL_S * 1000:.0f} ms, {rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.2f}")
    print("  detection = the wait for the next check (luck of the phase) + the reaction (from the failing "
          "check's SYN at real1 to the removal); expected = period / 2 + mean reaction")
    print(f"{'system':<18}{'kind':<6}{'n':>4}{'median':>9}{'p95':>8}{'max':>8}{'period':>9}{'reaction':>10}"
          f"{'expected':>10}{'median/hap':>12}{'react/hap':>11}{'expect/hap':>12}")
    ref = {r["kind"]: r for r in rows if r["system"] == "haproxy"}
    for r in sorted(rows, key=lambda r: (KINDS.index(r["kind"]), r["system"])):
        h = ref.get(r["kind"]) or {}
        period, react, expect = r.get("period_ms"), r.get("reaction_median_ms"), r.get("expected_ms")
        print(f"{r['system']:<18}{r['kind']:<6}{r['n']:>4}{r['median_ms']:>9.1f}{r['p95_ms']:>8.1f}"
              f"{r['max_ms']:>8.1f}{period if period is not None else '-':>9}{react if react is not None else '-':>10}"
              f"{expect if expect is not None else '-':>10}{_ratio(r['median_ms'], h.get('median_ms')):>12}"
              f"{_ratio(react, h.get('reaction_median_ms')):>11}{_ratio(expect, h.get('expected_ms')):>12}")
    views = {r["system"]: (r.get("view_ms"), r.get("view")) for r in rows}
    print("one look at a view takes (median): " + "; ".join(
        f"{name} {ms:.2f} ms ({how})" for name, (ms, how) in views.items() if ms is not None))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=20, help="stops of real1 (default 20)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="check interval in seconds, the same for every system (default 1)")
    p.add_argument("--seed", type=int, help="seed of the random waits before each stop")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("checks: needs root (network namespaces)", file=sys.stderr)
        return 2
    try:
        rows = run(args.rounds, args.interval, progress=lambda s: print(s, flush=True), seed=args.seed)
    except (RuntimeError, ValueError) as exc:
        print(f"checks: {exc}", file=sys.stderr)
        return 1
    print_table(rows, args.interval, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
