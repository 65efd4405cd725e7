"""`hadirector realserver --vip IP [--vip IP ...] [--dev lo] up|down|status`: prepare a direct-routing
(LVS-DR) real server the way the classic realserver scripts do, and undo it.

up:   the VIP on `dev` as a host address (/32, /128) labelled lo:0, lo:1 ...; and so the real
      neither answers ARP for it nor uses it as an ARP source (LVS-DR "ARP problem"):
        net.ipv4.conf.{all,<dev>}.arp_ignore   = 1  (answer only for addresses on the asking interface)
        net.ipv4.conf.{all,<dev>}.arp_announce = 2  (use the best local address as ARP source)
      The values found before are saved in <state-dir>/realserver.json (first `up` only).
down: removes the VIPs it added (or, without saved state, the VIPs named) and puts the saved
      sysctl values back (0 when none were saved).
status: prints the VIPs present and the four sysctls; exit 0 when prepared, 3 when not.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

from ..errors import HadirectorError
from . import _args
from ._common import add_state_dir, default_state_dir

SYSCTLS = ("arp_ignore", "arp_announce")
WANT = {"arp_ignore": 1, "arp_announce": 2}
STATE_FILE = "realserver.json"


class RealserverError(HadirectorError, RuntimeError):
    pass


def register(sub) -> None:
    p = sub.add_parser("realserver", help="prepare (or undo) a direct-routing real server: VIP on lo, "
                       "arp_ignore/arp_announce",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--vip", action="append", required=True, metavar="IP", type=_args.ip_address,
                   help="virtual IP address (repeatable)")
    p.add_argument("--dev", default="lo", type=_args.interface, help="device to hold the VIP (default lo)")
    add_state_dir(p, client=False)
    p.add_argument("action", choices=("up", "down", "status"))
    p.set_defaults(func=run)


def _sysctl_path(dev: str, name: str) -> str:
    return f"/proc/sys/net/ipv4/conf/{dev}/{name}"


def read_sysctl(dev: str, name: str) -> int:
    with open(_sysctl_path(dev, name)) as f:
        return int(f.read().strip())


def write_sysctl(dev: str, name: str, value: int) -> None:
    try:
        with open(_sysctl_path(dev, name), "w") as f:
            f.write(f"{value}\n")
    except OSError as exc:
        raise RealserverError(f"cannot set net.ipv4.conf.{dev}.{name}={value}: {exc.strerror}") from None


def _ip(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise RealserverError("the ip command (iproute2) is not installed") from None


def present(dev: str) -> dict[str, str]:
    """Addresses on `dev`: address -> label."""
    cp = _ip("-j", "addr", "show", "dev", dev)
    if cp.returncode != 0:
        raise RealserverError(f"device {dev}: {cp.stderr.strip()}")
    out = {}
    for link in json.loads(cp.stdout or "[]"):
        for a in link.get("addr_info", []):
            out[a["local"]] = a.get("label", dev)
    return out


def _parse_vips(vips: list[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out = []
    for v in vips:
        try:
            out.append(ipaddress.ip_address(v))
        except ValueError:
            raise RealserverError(f"--vip {v!r}: expected an IPv4 or IPv6 address") from None
    return out


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RealserverError(f"{path}: unreadable state ({exc}); remove it to start afresh") from None


def _save(path: str, state: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def up(vips: list[str], dev: str, state_dir: str) -> list[str]:
    """Prepare; returns what was done, one line each."""
    addrs = _parse_vips(vips)
    path = os.path.join(state_dir, STATE_FILE)
    state = _load(path)
    done = []
    saved = state.setdefault("sysctl", {})
    for d in ("all", dev):
        for name in SYSCTLS:
            key = f"{d}.{name}"
            if key not in saved:
                saved[key] = read_sysctl(d, name)
    have = present(dev)
    added = state.setdefault("added", {})
    labels = {lbl for lbl in have.values()}
    for a in addrs:
        if str(a) in have:
            continue
        args = ["addr", "add", f"{a}/{a.max_prefixlen}", "dev", dev]
        if a.version == 4:
            n = 0
            while f"{dev}:{n}" in labels:
                n += 1
            label = f"{dev}:{n}"
            if len(label) <= 15:
                args += ["label", label]
                labels.add(label)
        else:
            args += ["nodad"]
        cp = _ip(*args)
        if cp.returncode != 0:
            raise RealserverError(f"adding {a} to {dev}: {cp.stderr.strip()}")
        added[str(a)] = dev
        done.append(f"added {a}/{a.max_prefixlen} to {dev}")
    _save(path, state)
    for d in ("all", dev):
        for name, value in WANT.items():
            write_sysctl(d, name, value)
            done.append(f"net.ipv4.conf.{d}.{name} = {value}")
    return done


def down(vips: list[str], dev: str, state_dir: str) -> list[str]:
    addrs = _parse_vips(vips)
    path = os.path.join(state_dir, STATE_FILE)
    state = _load(path)
    done = []
    have = present(dev)
    added = state.get("added", {})
    for a in addrs:
        if str(a) in have and state and str(a) not in added:
            done.append(f"left {a} on {dev}: it was there before `up`")
        elif str(a) in have:
            cp = _ip("addr", "del", f"{a}/{a.max_prefixlen}", "dev", dev)
            if cp.returncode != 0:
                raise RealserverError(f"removing {a} from {dev}: {cp.stderr.strip()}")
            done.append(f"removed {a} from {dev}")
        added.pop(str(a), None)
    if added:
        # other VIPs we added are still up: keep the ARP settings they need
        state["added"] = added
        _save(path, state)
        return done
    saved = state.get("sysctl", {})
    for d in ("all", dev):
        for name in SYSCTLS:
            value = int(saved.get(f"{d}.{name}", 0))
            write_sysctl(d, name, value)
            done.append(f"net.ipv4.conf.{d}.{name} = {value}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return done


def status(vips: list[str], dev: str) -> tuple[bool, list[str]]:
    addrs = _parse_vips(vips)
    have = present(dev)
    lines, ok = [], True
    for a in addrs:
        on = str(a) in have
        ok &= on
        lines.append(f"{a}: {'on ' + dev + ' (' + have[str(a)] + ')' if on else 'absent'}")
    for d in ("all", dev):
        for name, want in WANT.items():
            v = read_sysctl(d, name)
            ok &= v == want
            lines.append(f"net.ipv4.conf.{d}.{name} = {v}{'' if v == want else f' (want {want})'}")
    return ok, lines


def run(args) -> int:
    state_dir = args.state_dir or default_state_dir()
    try:
        if args.action == "status":
            ok, lines = status(args.vip, args.dev)
            print("\n".join(lines))
            return 0 if ok else 3
        fn = up if args.action == "up" else down
        for line in fn(args.vip, args.dev, state_dir):
            print(line)
        return 0
    except (RealserverError, OSError) as exc:
        print(f"hadirector realserver: {exc}", file=sys.stderr)
        return 1
