"""Network-namespace labs: hosts are network namespaces, switches are Linux bridges, cables are veth
pairs. Everything lives in namespaces this module creates; the root namespace is never changed
(veth ends are created directly inside their namespaces, the bridges sit in a per-lab "switch"
namespace).

Names carry a per-run prefix `hd<pid>-<n>` so parallel runs never collide and a leftover can be
traced to its process. `Lab.close()` (also run by the context manager, the pytest fixture and at
interpreter exit) stops the processes the lab started, by their pid, and deletes its namespaces.

    with Lab() as lab:
        lan = lab.switch("lan")
        a = lab.host("a"); b = lab.host("b")
        a.connect(lan, "198.18.0.1/24"); b.connect(lan, "198.18.0.2/24")
        b.spawn(["python3", "-m", "hadirector.lab.httpd", "--port", "80", "--identity", "b"])
        print(a.run(["ping", "-c1", "198.18.0.2"]).stdout)

Addresses should come from 198.18.0.0/15 (RFC 2544 benchmarking range); `connect()` refuses
others unless told otherwise, and no host gets a default route.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..errors import HadirectorError
from ..net.netns import NETNS_RUN_DIR, NetnsWorker

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
IFNAMSIZ = 15  # usable characters of a Linux interface name

_seq = itertools.count(1)
_open_labs: "weakref.WeakSet[Lab]" = weakref.WeakSet()


class LabError(HadirectorError, RuntimeError):
    """A lab command failed; the message names the command, the namespace and ip's stderr."""


def run_prefix() -> str:
    """A fresh per-run prefix: `hd<pid>-<n>`."""
    return f"hd{os.getpid()}-{next(_seq)}"


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30, input: str | None = None,
         ns: str | None = None) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: timed out after {timeout} s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: not installed ({exc})") from exc
    if check and cp.returncode != 0:
        where = f" (netns {ns})" if ns else ""
        raise LabError(f"`{shlex.join(argv)}`{where} failed with exit {cp.returncode}: "
                       f"{(cp.stderr or cp.stdout).strip()}")
    return cp


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return _run(argv, check=check, ns=ns)


def ip_json(*args: str, ns: str | None = None) -> list[dict]:
    out = ip("-j", *args, ns=ns).stdout.strip()
    return json.loads(out) if out else []


def check_lab_address(addr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """Accept an `a.b.c.d/len` (or a bare address, taken as /32) inside 198.18.0.0/15. IPv6 lab
    addresses must be in the documentation/benchmark range 2001:2::/48 (RFC 5180)."""
    iface = ipaddress.ip_interface(addr)
    if iface.version == 4 and iface.ip not in LAB_NET:
        raise LabError(f"lab address {addr} is outside 198.18.0.0/15")
    if iface.version == 6 and iface.ip not in ipaddress.ip_network("2001:2::/48"):
        raise LabError(f"lab address {addr} is outside 2001:2::/48")
    return iface


@dataclass
class Iface:
    host: "Host"
    name: str  # inside the host's namespace
    switch: "Switch | None"
    peer: str | None  # the other veth end (inside the switch namespace)
    addresses: list[str] = field(default_factory=list)  # "a.b.c.d/len"

    @property
    def ip(self) -> str:
        """The first address, without its prefix length."""
        if not self.addresses:
            raise LabError(f"{self.host.name}:{self.name} has no address")
        return self.addresses[0].split("/")[0]

    @property
    def mac(self) -> str:
        return self.host.mac(self.name)

    def set_up(self, up: bool = True) -> None:
        """Plug/unplug the cable: sets both veth ends down or up (carrier goes with them)."""
        state = "up" if up else "down"
        ip("link", "set", self.name, state, ns=self.host.netns)
        if self.peer and self.switch:
            ip("link", "set", self.peer, state, ns=self.switch.lab.switch_netns)


class Switch:
    """A bridge in the lab's switch namespace. STP off, multicast snooping off (so heartbeat
    multicast floods like a dumb switch), forward delay 0."""

    def __init__(self, lab: "Lab", name: str):
        self.lab = lab
        self.name = name
        self.bridge = ("br-" + re.sub(r"[^A-Za-z0-9_.-]", "", name))[:IFNAMSIZ]
        self.ports: list[Iface] = []
        ns = lab.switch_netns
        ip("link", "add", self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0",
           "mcast_snooping", "0", ns=ns)
        ip("link", "set", self.bridge, "up", ns=ns)

    def __repr__(self) -> str:
        return f"<Switch {self.name} ({self.bridge} in {self.lab.switch_netns})>"


class LabProcess:
    """A process the lab started inside a namespace (its own session, so its pid is its process
    group id). Output goes to `log` unless captured."""

    def __init__(self, host: "Host", argv: list[str], popen: subprocess.Popen, log: str | None):
        self.host = host
        self.argv = argv
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self) -> None:
        """SIGKILL the process (and its process group, i.e. children it started)."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 3.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        else:
            # the leader is gone; its group may still have members we started
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return self.popen.returncode

    def output(self) -> str:
        if self.log and os.path.exists(self.log):
            with open(self.log, errors="replace") as f:
                return f.read()
        return ""

    def __repr__(self) -> str:
        return f"<LabProcess {self.pid} in {self.host.netns}: {shlex.join(self.argv)[:60]}>"


class Host:
    """A network namespace standing for one machine."""

    def __init__(self, lab: "Lab", name: str):
        self.lab = lab
        self.name = name
        self.netns = f"{lab.prefix}-{name}"
        self.ifaces: dict[str, Iface] = {}
        self._worker: NetnsWorker | None = None
        ip("netns", "add", self.netns)
        lab._netns.append(self.netns)
        ip("link", "set", "lo", "up", ns=self.netns)
        # IPv6 duplicate address detection would keep new addresses tentative for a second or two
        self.sysctl("net.ipv6.conf.all.accept_dad", 0)
        self.sysctl("net.ipv6.conf.default.accept_dad", 0)

    def __repr__(self) -> str:
        return f"<Host {self.name} netns={self.netns}>"

    # ------------------------------------------------------------------ wiring
    def connect(self, switch: Switch, *addresses: str, ifname: str | None = None,
                mac: str | None = None, any_address: bool = False) -> Iface:
        """Cable this host to `switch`: a veth pair, `ifname` (default eth<N>) here, its peer a
        port of the bridge. Adds the addresses (`a.b.c.d/len`)."""
        ifname = ifname or f"eth{len(self.ifaces)}"
        if len(ifname) > IFNAMSIZ:
            raise LabError(f"interface name {ifname!r} is longer than {IFNAMSIZ} characters")
        peer = self.lab._port_name(self.name, ifname)
        sw_ns = self.lab.switch_netns
        args = ["link", "add", ifname, "netns", self.netns]
        if mac:
            args += ["address", mac]
        args += ["type", "veth", "peer", "name", peer, "netns", sw_ns]
        ip(*args)
        ip("link", "set", peer, "master", switch.bridge, "up", ns=sw_ns)
        iface = Iface(self, ifname, switch, peer)
        self.ifaces[ifname] = iface
        switch.ports.append(iface)
        ip("link", "set", ifname, "up", ns=self.netns)
        for a in addresses:
            self.add_address(a, ifname, any_address=any_address)
        return iface

    def add_address(self, address: str, dev: str, label: str | None = None,
                    any_address: bool = False) -> None:
        iface = ipaddress.ip_interface(address) if any_address else check_lab_address(address)
        if "/" not in address:
            address = f"{iface.ip}/{iface.max_prefixlen}"
        args = ["addr", "add", address, "dev", dev]
        if label:
            args += ["label", label]
        ip(*args, ns=self.netns)
        if dev in self.ifaces:
            self.ifaces[dev].addresses.append(address)

    def del_address(self, address: str, dev: str) -> None:
        if "/" not in address:
            address = f"{address}/{ipaddress.ip_address(address).max_prefixlen}"
        ip("addr", "del", address, "dev", dev, ns=self.netns)
        if dev in self.ifaces and address in self.ifaces[dev].addresses:
            self.ifaces[dev].addresses.remove(address)

    def route(self, dest: str, via: str | None = None, dev: str | None = None) -> None:
        """Add a route (never a default route out of the lab: `dest` must be a lab network)."""
        net = ipaddress.ip_network(dest, strict=False)
        if net.version == 4 and not net.subnet_of(LAB_NET):
            raise LabError(f"route {dest} leaves the lab (198.18.0.0/15)")
        args = ["route", "add", str(net)]
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
        ip(*args, ns=self.netns)

    def sysctl(self, key: str, value: Any) -> None:
        """Write a sysctl of this namespace (net.* keys are per namespace)."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.worker.call(_write_file, path, f"{value}\n")

    def get_sysctl(self, key: str) -> str:
        path = "/proc/sys/" + key.replace(".", "/")
        return self.worker.call(_read_file, path).strip()

    def enable_forwarding(self) -> None:
        self.sysctl("net.ipv4.ip_forward", 1)
        self.sysctl("net.ipv6.conf.all.forwarding", 1)

    # ------------------------------------------------------------------ inspection
    def addrs(self) -> list[dict]:
        """`ip -j addr` in this namespace."""
        return ip_json("addr", ns=self.netns)

    def has_address(self, address: str) -> bool:
        return any(a.get("local") == address for link in self.addrs() for a in link.get("addr_info", []))

    def neigh(self, dev: str | None = None) -> list[dict]:
        """`ip -j neigh` in this namespace (each entry: dst, dev, lladdr, state)."""
        return ip_json("neigh", "show", *(["dev", dev] if dev else []), ns=self.netns)

    def neigh_mac(self, address: str) -> str | None:
        for n in self.neigh():
            if n.get("dst") == address and n.get("lladdr"):
                return n["lladdr"]
        return None

    def links(self) -> list[dict]:
        return ip_json("link", ns=self.netns)

    def mac(self, ifname: str) -> str:
        for link in ip_json("link", "show", "dev", ifname, ns=self.netns):
            return link["address"]
        raise LabError(f"{self.name}: no interface {ifname}")

    # ------------------------------------------------------------------ processes
    def _argv(self, cmd: str | Sequence[str]) -> list[str]:
        if isinstance(cmd, str):
            return ["sh", "-c", cmd]
        return [str(c) for c in cmd]

    def run(self, cmd: str | Sequence[str], check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command to completion in this namespace; stdout/stderr captured as text."""
        argv = ["ip", "netns", "exec", self.netns] + self._argv(cmd)
        return _run(argv, check=check, timeout=timeout, input=input, ns=self.netns)

    def spawn(self, cmd: str | Sequence[str], name: str | None = None, env: dict | None = None,
              capture: bool = False, cwd: str | None = None) -> LabProcess:
        """Start a background process in this namespace, tracked by the lab (stopped by close()).
        Its stdout and stderr go to a log file in the lab directory unless `capture`."""
        argv = self._argv(cmd)
        tag = name or os.path.basename(argv[0])
        log = None
        if capture:
            out: Any = subprocess.PIPE
        else:
            log = os.path.join(self.lab.dir, f"{self.name}-{tag}-{next(_seq)}.log")
            out = open(log, "wb")
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        if env:
            full_env.update(env)
        try:
            popen = subprocess.Popen(["ip", "netns", "exec", self.netns] + argv, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=full_env, cwd=cwd)
        finally:
            if not capture:
                out.close()
        proc = LabProcess(self, argv, popen, log)
        self.lab._procs.append(proc)
        return proc

    def python(self, module: str, *args: str, **kw: Any) -> LabProcess:
        """Start `python -m module args` (this interpreter) in the namespace."""
        return self.spawn([sys.executable, "-m", module, *args], name=module.rsplit(".", 1)[-1], **kw)

    # ------------------------------------------------------------------ in-process access
    @property
    def worker(self) -> NetnsWorker:
        """A thread living in this namespace (see net/netns.py NetnsWorker)."""
        if self._worker is None:
            self._worker = NetnsWorker(self.netns)
        return self._worker

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A socket in this namespace, usable from any thread or event loop."""
        return self.worker.socket(family, type, proto)

    def tcp_connect(self, address: str, port: int, timeout: float = 3.0) -> socket.socket:
        """A connected TCP socket from this host (blocking mode, `timeout` set)."""
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        s = self.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((address, port))
        except BaseException:
            s.close()
            raise
        return s

    def wait_tcp(self, address: str, port: int, timeout: float = 10.0) -> None:
        """Wait until a TCP connect from this host to address:port succeeds (bounded)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.tcp_connect(address, port, timeout=1.0).close()
                return
            except OSError as exc:
                last = exc
                time.sleep(0.05)
        raise LabError(f"{self.name}: {address}:{port} did not accept a connection within "
                       f"{timeout} s ({last})")

    def http_get(self, address: str, port: int = 80, path: str = "/", timeout: float = 3.0) -> str:
        """One HTTP/1.0 GET from this host; returns the body (raises on failure)."""
        s = self.tcp_connect(address, port, timeout)
        try:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            raise LabError(f"{self.name}: bad HTTP answer from {address}:{port}: {data[:80]!r}")
        return body.decode(errors="replace")

    def http_server(self, port: int = 80, identity: str | None = None, kind: str = "python",
                    bind: str = "0.0.0.0", wait_address: str | None = None) -> LabProcess:
        """Start an HTTP server answering `identity` (default: the host name) on every path.
        kind "python": hadirector.lab.httpd (asyncio, keep-alive); "nginx": nginx with a
        generated config (faster; for benchmarks). Waits until it accepts connections."""
        from . import httpd
        identity = identity or self.name
        if kind == "python":
            proc = self.python("hadirector.lab.httpd", "--port", str(port), "--bind", bind,
                               "--identity", identity)
        elif kind == "nginx":
            conf_dir = os.path.join(self.lab.dir, f"nginx-{self.name}-{port}")
            conf = httpd.write_nginx_conf(conf_dir, port, identity, bind)
            proc = self.spawn(["nginx", "-p", conf_dir, "-c", conf, "-e", os.path.join(conf_dir, "error.log")],
                              name="nginx")
        else:
            raise LabError(f"unknown http server kind {kind!r}; expected python or nginx")
        target = wait_address or {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)
        try:
            self.wait_tcp(target, port)
        except LabError:
            out = proc.output()
            proc.stop()
            raise LabError(f"{self.name}: {kind} http server did not start: {out[-500:]}") from None
        return proc


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read_file(path: str) -> str:
    with open(path) as f:
        return f.read()


class Lab:
    """A set of hosts and switches; close() removes everything it made."""

    def __init__(self, prefix: str | None = None, keep_dir: bool = False):
        if os.geteuid() != 0:
            raise LabError("a network-namespace lab needs root")
        self.prefix = prefix or run_prefix()
        self.dir = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        self.keep_dir = keep_dir
        self.hosts: dict[str, Host] = {}
        self.switches: dict[str, Switch] = {}
        self._netns: list[str] = []
        self._procs: list[LabProcess] = []
        self._ports: set[str] = set()
        self._switch_ns: str | None = None
        self.closed = False
        _open_labs.add(self)

    # ------------------------------------------------------------------ building
    @property
    def switch_netns(self) -> str:
        if self._switch_ns is None:
            ns = f"{self.prefix}-sw"
            ip("netns", "add", ns)
            self._netns.append(ns)
            self._switch_ns = ns
            ip("link", "set", "lo", "up", ns=ns)
        return self._switch_ns

    def host(self, name: str) -> Host:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,30}", name) or name == "sw":
            raise LabError(f"bad host name {name!r}: letters, digits, _ . -; not 'sw'")
        if name in self.hosts:
            raise LabError(f"host {name} already exists")
        h = Host(self, name)
        self.hosts[name] = h
        return h

    def switch(self, name: str) -> Switch:
        if name in self.switches:
            return self.switches[name]
        s = Switch(self, name)
        self.switches[name] = s
        return s

    def _port_name(self, host: str, ifname: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]", "", host)
        name = f"{base[:IFNAMSIZ - len(ifname) - 1]}-{ifname}"[:IFNAMSIZ]
        n = 0
        while name in self._ports or name.startswith("br-"):
            n += 1
            name = f"p{n}-{ifname}"[:IFNAMSIZ]
        self._ports.add(name)
        return name

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """Stop every process the lab started (by pid), delete its namespaces and directory.
        Safe to call twice; collects errors and raises the first one at the end."""
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        for proc in reversed(self._procs):
            try:
                proc.stop(grace=2.0)
            except Exception as exc:  # keep going: namespaces must still be removed
                errors.append(f"stop {proc}: {exc}")
        for h in self.hosts.values():
            if h._worker is not None:
                h._worker.close()
        for ns in reversed(self._netns):
            cp = ip("netns", "del", ns, check=False)
            if cp.returncode != 0 and os.path.exists(os.path.join(NETNS_RUN_DIR, ns)):
                errors.append(f"ip netns del {ns}: {cp.stderr.strip()}")
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        _open_labs.discard(self)
        if errors:
            raise LabError("; ".join(errors))

    def describe(self) -> dict:
        """Plain data naming everything the lab made (for `hadirector lab up` / `down`)."""
        return {"prefix": self.prefix, "dir": self.dir, "netns": list(self._netns),
                "hosts": {n: h.netns for n, h in self.hosts.items()},
                "processes": [{"pid": p.pid, "start": _start_time(p.pid), "host": p.host.name,
                               "argv": p.argv, "log": p.log} for p in self._procs if p.alive()]}

    def detach(self) -> dict:
        """Leave the lab running after this process exits (no cleanup at exit); returns
        describe(), which `teardown()` takes to remove it later."""
        desc = self.describe()
        for h in self.hosts.values():
            if h._worker is not None:
                h._worker.close()
        self.closed = True
        _open_labs.discard(self)
        return desc

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lab {self.prefix} hosts={list(self.hosts)}>"


def _close_all() -> None:
    for lab in list(_open_labs):
        try:
            lab.close()
        except Exception as exc:
            print(f"hadirector.lab: cleanup of {lab.prefix}: {exc}", file=sys.stderr)


atexit.register(_close_all)


def _start_time(pid: int) -> int | None:
    """A process's start time in clock ticks (/proc/PID/stat field 22), to tell a pid reused by
    another process from ours."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(")", 1)[1].split()[19])


def teardown(desc: dict) -> list[str]:
    """Remove a detached lab: stop the processes it recorded (by pid, only when the pid still
    names the same process), delete its namespaces and directory. Returns what was done."""
    done = []
    for p in desc.get("processes", []):
        pid = p["pid"]
        if p.get("start") is None or _start_time(pid) != p["start"]:
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
            done.append(f"stopped {pid} ({p['host']}: {' '.join(p['argv'])[:50]})")
        except ProcessLookupError:
            continue
        for _ in range(40):
            if _start_time(pid) != p["start"]:
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for ns in reversed(desc.get("netns", [])):
        if ip("netns", "del", ns, check=False).returncode == 0:
            done.append(f"deleted netns {ns}")
    if desc.get("dir"):
        shutil.rmtree(desc["dir"], ignore_errors=True)
    return done


def stale_namespaces() -> list[str]:
    """Namespaces named by a lab (`hd<pid>-...`) whose process no longer exists."""
    out = []
    try:
        names = os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []
    for n in names:
        m = re.match(r"hd(\d+)-\d+-", n)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            out.append(n)
    return sorted(out)


def remove_namespaces(names: Iterable[str]) -> list[str]:
    """Delete the named namespaces (used by `hadirector lab clean`); returns those removed."""
    done = []
    for n in names:
        if ip("netns", "del", n, check=False).returncode == 0:
            done.append(n)
    return done
