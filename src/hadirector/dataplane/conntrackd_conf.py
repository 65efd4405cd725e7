"""conntrackd.conf for one director, from our configuration's plan (config/sync.py). Pure.

`render(plan, local, paths)` writes the file conntrackd(8) reads with `-C`: FTFW mode (the
reliable protocol, conntrackd.conf(5) "Mode FTFW") with the external cache on (entries are
committed at takeover, not injected as they arrive), a full resync asked for at start
(StartupResync: a director that (re)joins gets the active's table), the transport on the sync
link, the user-space filter, and every path in our state directory (UNIX socket, lock file, log
file), so several directors can run on one machine in network namespaces.

`local` is this node's addresses (the driver reads them from the kernel): the one of the plan's
peers that is local becomes conntrackd's own address, the others its destination; the filter
ignores all of them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from ..config.sync import MULTICAST_GROUP, ConntrackdPlan
from ..errors import HadirectorError

SOCKET_BUFFER = 1249280  # conntrackd.conf(5) examples: Snd/RcvSocketBuffer
UNIX_PATH_MAX = 107  # sockaddr_un.sun_path less its NUL


class ConntrackdConfError(HadirectorError, ValueError):
    """The plan cannot be written for this node (no local sync address, a path too long)."""


@dataclass(frozen=True)
class Paths:
    conf: str
    socket: str
    lock: str
    log: str


@dataclass(frozen=True)
class Endpoints:
    own: str | None  # our address on the sync link (None: multicast from the interface's address)
    remote: tuple[str, ...]


def endpoints(plan: ConntrackdPlan, local: Iterable[str]) -> Endpoints:
    """Our address and the others' among the plan's peers (as config/model.py Link.remote_peers:
    one list serves every node)."""
    mine = {str(ipaddress.ip_address(a)) for a in local}
    own = [p for p in plan.peers if p in mine]
    remote = tuple(p for p in plan.peers if p not in mine)
    if plan.peers and not own:
        raise ConntrackdConfError(f"conntrackd: none of the sync peers ({', '.join(plan.peers)}) is an "
                                  f"address of this node on {plan.interface}")
    return Endpoints(own[0] if own else None, remote)


def _fam(address: str) -> str:
    return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"


def render(plan: ConntrackdPlan, local: Iterable[str], paths: Paths,
           interface_address: str | None = None) -> str:
    """The conntrackd.conf text. `interface_address`: an IPv4 address of the sync interface,
    needed for multicast (IPv4_interface) when the plan names no peers."""
    local = list(local)
    for p in (paths.socket, paths.lock, paths.log):
        # conntrackd's lexer reads a path up to the first blank or quote (read_config_lex.l `path`)
        if any(c.isspace() or c == '"' for c in p):
            raise ConntrackdConfError(f"conntrackd: it cannot read the path {p!r} (a blank or quote in "
                                      "it); use a --state-dir without one")
    if len(paths.socket) > UNIX_PATH_MAX:
        raise ConntrackdConfError(f"conntrackd: control socket path {paths.socket} is longer than "
                                  f"{UNIX_PATH_MAX} characters; use a shorter --state-dir")
    ep = endpoints(plan, local)
    lines = ["# written by hadirector from its configuration; do not edit (it is rewritten at start)",
             "Sync {",
             "\tMode FTFW {",
             "\t\tDisableExternalCache no",
             "\t\tStartupResync yes",
             "\t}"]
    if len(ep.remote) == 1:
        # one other director: UDP unicast (conntrackd.conf(5) "UDP")
        fam = _fam(ep.own)
        lines += ["\tUDP {",
                  f"\t\t{fam}_address {ep.own}",
                  f"\t\t{fam}_Destination_Address {ep.remote[0]}",
                  f"\t\tPort {plan.port}",
                  f"\t\tInterface {plan.interface}"]
    else:
        src = ep.own or interface_address
        if src is None or ipaddress.ip_address(src).version != 4:
            raise ConntrackdConfError(f"conntrackd: multicast sync needs an IPv4 address on {plan.interface}")
        lines += ["\tMulticast {",
                  f"\t\tIPv4_address {MULTICAST_GROUP}",
                  f"\t\tGroup {plan.port}",
                  f"\t\tIPv4_interface {src}",
                  f"\t\tInterface {plan.interface}"]
    lines += [f"\t\tSndSocketBuffer {SOCKET_BUFFER}",
              f"\t\tRcvSocketBuffer {SOCKET_BUFFER}",
              "\t\tChecksum on",
              "\t}",
              "\tOptions {",
              "\t\tTCPWindowTracking no",  # committed entries are liberal (the window is not synced)
              "\t}",
              "}"]
    ignore = dict.fromkeys(["127.0.0.1", "::1", *plan.vips,
                            *(str(ipaddress.ip_address(a)) for a in local)])
    lines += ["General {",
              "\tSystemd no",  # our child, not a unit
              "\tHashSize 32768",
              "\tHashLimit 131072",
              f"\tLogFile {paths.log}",
              "\tSyslog no",
              f"\tLockFile {paths.lock}",
              "\tUNIX {",
              f"\t\tPath {paths.socket}",
              "\t}",
              "\tNetlinkBufferSize 2097152",
              "\tNetlinkBufferSizeMaxGrowth 8388608",
              "\tFilter From Userspace {",
              "\t\tProtocol Accept {",
              *(f"\t\t\t{p}" for p in plan.protocols),
              "\t\t}",
              "\t\tAddress Ignore {",
              *(f"\t\t\t{_fam(a)}_address {a}" for a in ignore),
              "\t\t}",
              "\t}",
              "}"]
    return "\n".join(lines) + "\n"
