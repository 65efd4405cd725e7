"""The routing facts the nft data plane renders from, read over rtnetlink (pyroute2's synchronous
IPRoute) instead of `ip -j` processes: the director's addresses, its links' MACs, the route the
kernel picks toward an address, the neighbour table.

One `NetFacts` per data plane, made and used in its worker thread (dataplane/nft.py): a netlink
socket belongs to the network namespace of the thread that opens it (net/netns.py), and
pyroute2's IPRoute keeps its event loop in the thread that made it. Not thread-safe.

The facts are the ones `ip -j addr`, `ip -j route get ADDRESS` and `ip -j neigh show` gave
(iproute2 ip/ipaddress.c, ip/iproute.c, ip/ipneigh.c): an address is IFA_LOCAL, or IFA_ADDRESS
when there is none (IPv6); a device's MAC counts for ethernet links (ARPHRD_ETHER, iproute2's
"ether") only; neighbours in state FAILED or INCOMPLETE, or without a link-layer address, are
not known. A kernel refusal raises DataPlaneError naming the request and the errno's text
(transient: the next apply asks again); `route()` reports a lookup the kernel refused in the
answer instead, so the caller can name the service and the address.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

from .base import DataPlaneError

ARPHRD_ETHER = 1  # linux/if_arp.h
NUD_INCOMPLETE = 0x01  # linux/neighbour.h
NUD_FAILED = 0x20
DUMP_TRIES = 3  # a dump the kernel marks interrupted (NLM_F_DUMP_INTR: the table changed) is retried


@dataclass(frozen=True)
class Addresses:
    local: frozenset[str]  # every address on every interface
    dev: dict[str, str]  # address -> the first interface holding it (by interface index)
    macs: dict[str, str]  # ethernet interface -> its MAC


@dataclass(frozen=True)
class Route:
    dev: str | None  # the output device (None: the kernel named none)
    gateway: str | None  # the next hop when it is a router (RTA_GATEWAY, or RTA_VIA)
    error: str | None = None  # the kernel refused the lookup (e.g. "Network is unreachable")


class NetFacts:
    def __init__(self) -> None:
        self._ipr: Any = self._ask("open a netlink socket", lambda: IPRoute(groups=0))
        self._names: dict[int, str] | None = None  # interface index -> name (links read once per apply)
        self._macs: dict[str, str] = {}  # ethernet interface -> MAC, read with the names

    def close(self) -> None:
        if self._ipr is not None:
            try:
                self._ipr.close()
            finally:
                self._ipr = None

    def fresh(self) -> None:
        """Forget the interface names read so far (call once per apply: links come and go)."""
        self._names = None

    # ------------------------------------------------------------------ the facts
    def addresses(self, with_links: bool = True) -> Addresses:
        """The director's addresses; with_links also which interface holds each and the
        ethernet interfaces' MACs (one more dump; direct routing needs them, NAT does not)."""
        local: set[str] = set()
        dev: dict[str, str] = {}
        names = self._link_names() if with_links else {}
        msgs = sorted(self._dump("addr", "list addresses"), key=lambda m: m["index"])
        for m in msgs:
            a = m.get("IFA_LOCAL") or m.get("IFA_ADDRESS")
            if not a:
                continue
            local.add(a)
            if with_links and m["index"] in names:
                dev.setdefault(a, names[m["index"]])
        macs = dict(self._macs) if with_links else {}
        return Addresses(frozenset(local), dev, macs)

    def route(self, address: str) -> Route:
        """`ip route get ADDRESS`: the device and the router (if any) the kernel sends it by."""
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        assert self._ipr is not None
        try:
            msgs = self._ipr.route("get", dst=address, family=fam)
        except NetlinkError as exc:
            return Route(None, None, _strerror(exc))
        except OSError as exc:
            raise DataPlaneError(f"netlink: route get {address}: {_strerror(exc)}") from None
        if not msgs:
            return Route(None, None, "no answer")
        m = msgs[0]
        oif = m.get("RTA_OIF")
        gw = m.get("RTA_GATEWAY")
        via = m.get("RTA_VIA")
        if gw is None and isinstance(via, dict) and via.get("addr"):
            gw = str(via["addr"])
        name = self._link_names().get(oif) if oif is not None else None
        return Route(name, gw)

    def neighbours(self) -> dict[tuple[str, str], str]:
        """(address, device) -> MAC for every neighbour entry the kernel holds with a link-layer
        address, except those it could not resolve (FAILED, INCOMPLETE)."""
        names = self._link_names()
        table: dict[tuple[str, str], str] = {}
        for m in self._dump("neigh", "list neighbours"):
            if m.get("family") not in (socket.AF_INET, socket.AF_INET6):
                continue
            if m.get("state", 0) & (NUD_INCOMPLETE | NUD_FAILED):
                continue
            dst, mac = m.get("NDA_DST"), m.get("NDA_LLADDR")
            dev = names.get(m.get("ifindex"))
            if dst and mac and dev:
                table[(dst, dev)] = mac
        return table

    # ------------------------------------------------------------------ helpers
    def _link_names(self) -> dict[int, str]:
        if self._names is None:
            names: dict[int, str] = {}
            macs: dict[str, str] = {}
            for m in self._dump("link", "list links"):
                name = m.get("IFLA_IFNAME")
                if not name:
                    continue
                names[m["index"]] = name
                mac = m.get("IFLA_ADDRESS")
                if mac and m.get("ifi_type") == ARPHRD_ETHER:
                    macs[name] = mac
            self._names, self._macs = names, macs
        return self._names

    def _dump(self, kind: str, what: str) -> tuple:
        assert self._ipr is not None
        fn = getattr(self._ipr, kind)
        for attempt in range(DUMP_TRIES):
            try:
                return tuple(fn("dump"))
            except NetlinkDumpInterrupted:
                if attempt == DUMP_TRIES - 1:
                    raise DataPlaneError(f"netlink: {what}: the table kept changing during the dump "
                                         f"({DUMP_TRIES} tries)") from None
            except (NetlinkError, OSError) as exc:
                raise DataPlaneError(f"netlink: {what}: {_strerror(exc)}") from None
        return ()  # not reached

    @staticmethod
    def _ask(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (NetlinkError, OSError) as exc:
            raise DataPlaneError(f"netlink: {what}: {_strerror(exc)}") from None


def _strerror(exc: BaseException) -> str:
    code = getattr(exc, "code", None) if isinstance(exc, NetlinkError) else getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(exc) or type(exc).__name__
