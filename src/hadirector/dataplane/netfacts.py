"""The routing facts the nft data plane renders from, read over rtnetlink instead of `ip -j`
processes: the director's addresses, its links' MACs, the route the kernel picks toward an
address, the neighbour table.

One `NetFacts` per data plane, made and used in its worker thread (dataplane/nft.py): a netlink
socket belongs to the network namespace of the thread that opens it (net/netns.py). Not
thread-safe. The requests are the ones iproute2 sends and the facts the ones it printed
(ip/ipaddress.c, ip/iproute.c iproute_get, ip/ipneigh.c): an address is IFA_LOCAL, or
IFA_ADDRESS when there is none (IPv6); a device's MAC counts for ethernet links (ARPHRD_ETHER,
iproute2's "ether") only; a neighbour is known when `ip neigh show` lists it (not NOARP or
NONE) with a link-layer address and not in state FAILED or INCOMPLETE.

Over a plain netlink socket (net/nlraw.py), not pyroute2: in the worker thread pyroute2 0.9's
synchronous IPRoute took about 1.2 ms per request (an asyncio loop run and its message classes
each time), so the six requests of a direct-routing apply with three reals cost 7-8 ms; the same
requests over a plain socket took 0.1 ms (measured side by side on a shared 2-core machine;
bench/nft_apply.py times whole applies).

A kernel refusal raises DataPlaneError naming the request and the errno's text (transient: the
next apply asks again); `route()` reports a lookup the kernel refused in its answer instead, so
the caller can name the service and the address.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from ..net.nlraw import NLM_F_DUMP, NetlinkRefused, NetlinkSocket, attr, attrs, text
from .base import DataPlaneError

# linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h
NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_VIA = 1, 4, 5, 18
NDA_DST, NDA_LLADDR = 1, 2
ARPHRD_ETHER = 1  # linux/if_arp.h
NUD_INCOMPLETE, NUD_FAILED, NUD_NOARP = 0x01, 0x20, 0x40
NUD_SHOWN = 0xFF & ~NUD_NOARP  # the states `ip neigh show` lists by default (ipneigh.c do_show_or_flush)
NTF_PROXY, NTF_EXT_LEARNED = 0x08, 0x10  # ... and entries with these flags whatever their state
DUMP_TRIES = 3  # a dump the kernel marks interrupted (NLM_F_DUMP_INTR: the table changed) is retried

IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg: family, type, index, flags, change
IFADDR = struct.Struct("=BBBBi")  # struct ifaddrmsg: family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg: family, dst_len, src_len, tos, table, proto, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")  # struct ndmsg: family, ifindex, state, flags, type


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
        try:
            self._nl = NetlinkSocket(NETLINK_ROUTE)
        except OSError as exc:
            raise DataPlaneError(f"netlink: open a socket: {_reason(exc)}") from None
        self._names: dict[int, str] | None = None  # interface index -> name (links read once per apply)
        self._macs: dict[str, str] = {}  # ethernet interface -> MAC, read with the names

    def close(self) -> None:
        self._nl.close()

    def fresh(self) -> None:
        """Forget the interface names read so far (call once per apply: links come and go)."""
        self._names = None

    # ------------------------------------------------------------------ the facts
    def addresses(self, with_links: bool = True) -> Addresses:
        """The director's addresses; with_links also which interface holds each and the
        ethernet interfaces' MACs (one more dump; direct routing needs them, NAT does not)."""
        names = self._link_names() if with_links else {}
        msgs = sorted(self._dump(RTM_GETADDR, IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
                                 "list addresses"), key=lambda m: addr_index(m))
        local: set[str] = set()
        dev: dict[str, str] = {}
        for m in msgs:
            index, a = parse_addr(m)
            if a is None:
                continue
            local.add(a)
            if index in names:
                dev.setdefault(a, names[index])
        return Addresses(frozenset(local), dev, dict(self._macs) if with_links else {})

    def route(self, address: str) -> Route:
        """`ip route get ADDRESS`: the device and the router (if any) the kernel sends it by."""
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        raw = socket.inet_pton(fam, address)
        body = RTMSG.pack(fam, 8 * len(raw), 0, 0, 0, 0, 0, 0, 0) + attr(RTA_DST, raw)
        what = "route get " + address
        try:
            msgs = self._nl.request(RTM_GETROUTE, 0, body, what).messages
        except NetlinkRefused as exc:
            return Route(None, None, exc.reason)
        except OSError as exc:
            raise DataPlaneError(f"netlink: {what}: {_reason(exc)}") from None
        m = next((m for t, m in msgs if t == RTM_NEWROUTE), None)
        if m is None:
            return Route(None, None, "no answer")
        oif, gw = parse_route(m)
        return Route(self._link_names().get(oif) if oif is not None else None, gw)

    def neighbours(self) -> dict[tuple[str, str], str]:
        """(address, device) -> MAC for every neighbour entry the kernel holds with a link-layer
        address, except those it could not resolve (FAILED, INCOMPLETE)."""
        names = self._link_names()
        table: dict[tuple[str, str], str] = {}
        for m in self._dump(RTM_GETNEIGH, NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), "list neighbours"):
            n = parse_neigh(m)
            if n is None:
                continue
            index, dst, mac = n
            if index in names:
                table[(dst, names[index])] = mac
        return table

    # ------------------------------------------------------------------ the socket
    def _link_names(self) -> dict[int, str]:
        if self._names is None:
            names: dict[int, str] = {}
            macs: dict[str, str] = {}
            for m in self._dump(RTM_GETLINK, IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0), "list links"):
                index, name, mac = parse_link(m)
                if name:
                    names[index] = name
                    if mac:
                        macs[name] = mac
            self._names, self._macs = names, macs
        return self._names

    def _dump(self, kind: int, body: bytes, what: str) -> list[bytes]:
        answer = {RTM_GETLINK: RTM_NEWLINK, RTM_GETADDR: RTM_NEWADDR, RTM_GETNEIGH: RTM_NEWNEIGH}[kind]
        for _ in range(DUMP_TRIES):
            try:
                got = self._nl.request(kind, NLM_F_DUMP, body, what)
            except NetlinkRefused as exc:
                raise DataPlaneError(f"netlink: {what}: {exc.reason}") from None
            except OSError as exc:
                raise DataPlaneError(f"netlink: {what}: {_reason(exc)}") from None
            if not got.interrupted:
                return [m for t, m in got.messages if t == answer]
        raise DataPlaneError(f"netlink: {what}: the table kept changing during the dump "
                             f"({DUMP_TRIES} tries)")


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno and not exc.strerror else (exc.strerror or str(exc))


# ---------------------------------------------------------------------- the codec (pure)
def _ip(family: int, raw: bytes | None) -> str | None:
    if raw is None or len(raw) != (4 if family == socket.AF_INET else 16):
        return None
    return socket.inet_ntop(family, raw)


def _mac(raw: bytes | None) -> str | None:
    return ":".join(f"{b:02x}" for b in raw) if raw else None


def parse_link(payload: bytes) -> tuple[int, str | None, str | None]:
    """An RTM_NEWLINK: (index, name, MAC if it is an ethernet link)."""
    _fam, kind, index, _flags, _change = IFINFO.unpack_from(payload)
    a = attrs(payload, IFINFO.size)
    name = text(a[IFLA_IFNAME]) if IFLA_IFNAME in a else None
    return index, name, _mac(a.get(IFLA_ADDRESS)) if kind == ARPHRD_ETHER else None


def addr_index(payload: bytes) -> int:
    return IFADDR.unpack_from(payload)[4]


def parse_addr(payload: bytes) -> tuple[int, str | None]:
    """An RTM_NEWADDR: (interface index, its local address)."""
    fam, _plen, _flags, _scope, index = IFADDR.unpack_from(payload)
    a = attrs(payload, IFADDR.size)
    return index, _ip(fam, a.get(IFA_LOCAL, a.get(IFA_ADDRESS)))


def parse_route(payload: bytes) -> tuple[int | None, str | None]:
    """An RTM_NEWROUTE answer to `route get`: (output interface index, router or None)."""
    fam = payload[0]
    a = attrs(payload, RTMSG.size)
    oif = struct.unpack("=i", a[RTA_OIF])[0] if len(a.get(RTA_OIF, b"")) == 4 else None
    gw = _ip(fam, a.get(RTA_GATEWAY))
    via = a.get(RTA_VIA)
    if gw is None and via is not None and len(via) > 2:  # struct rtvia: family, address
        gw = _ip(struct.unpack_from("=H", via)[0], via[2:])
    return oif, gw


def parse_neigh(payload: bytes) -> tuple[int, str, str] | None:
    """An RTM_NEWNEIGH: (interface index, address, MAC), or None when the entry has no usable
    link-layer address (FAILED, INCOMPLETE, none given) or is not IPv4/IPv6."""
    fam, index, state, flags, _type = NDMSG.unpack_from(payload)
    if fam not in (socket.AF_INET, socket.AF_INET6) or state & (NUD_INCOMPLETE | NUD_FAILED):
        return None
    if not state & NUD_SHOWN and not flags & (NTF_PROXY | NTF_EXT_LEARNED):
        return None  # what `ip neigh show` hides: NOARP (multicast) and NONE entries
    a = attrs(payload, NDMSG.size)
    dst, mac = _ip(fam, a.get(NDA_DST)), _mac(a.get(NDA_LLADDR))
    if dst is None or mac is None:
        return None
    return index, dst, mac
