"""Address conflict detection on the wire (RFC 5227 for IPv4, duplicate address detection's
messages for IPv6): probe whether anybody answers for a VIP, and watch who uses it.

`AddressWatch(ifname, addresses, on_seen, netns)` opens two packet sockets on the interface (ARP;
IPv6 filtered down to neighbour solicitations and advertisements by a socket filter), sends
probes (`probe(address)`), and calls `on_seen(address, kind, mac, own_mac, ifname)` for every
frame from another MAC about a watched address. The pure `classify()` decides the kind:

    claim  somebody uses the address: an ARP packet (request, reply or announcement) whose
           sender IP address is it (RFC 5227 2.1.1 "MUST treat this address as being in use");
           an IPv6 neighbour advertisement for it, or a solicitation sent from it
    probe  somebody probes for it: an ARP request with sender IP 0.0.0.0 and it as target (an
           RFC 5227 probe; 2.1.1, the simultaneous-probe rule), or a duplicate address detection
           solicitation (source ::) for it (RFC 4862 5.4.3)

Packet sockets see received frames before netfilter's ingress hook, so a node whose lease has run
out (resources/lease.py) still watches the wire. What the kinds mean for the cluster (do not take
the address over; defend it; yield) is decided in cluster/arbiter.py.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import socket
import struct
from typing import Callable, Iterable

from .garp import (ETH_P_ARP, ETH_P_IPV6, ICMPV6_NA, ICMPV6_NS, GarpError, dad_frame,
                   open_packet_socket, parse_arp, parse_nd, probe_frame)

log = logging.getLogger(__name__)

CLAIM, PROBE = "claim", "probe"
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
OnSeen = Callable[[str, str, str, str, str], None]


def classify(frame: bytes, own_mac: bytes, addresses: set[str]) -> tuple[str, str, str] | None:
    """(address, kind, mac) for a frame about a watched address from another MAC, else None."""
    if frame[12:14] == b"\x08\x06":
        p = parse_arp(frame)
        if p is None or p.sha == own_mac:
            return None
        if p.spa in addresses:
            return p.spa, CLAIM, p.sha.hex(":")
        if p.spa == "0.0.0.0" and p.tpa in addresses and p.op == 1:
            return p.tpa, PROBE, p.sha.hex(":")
        return None
    nd = parse_nd(frame)
    if nd is None or nd.src_mac == own_mac:
        return None
    mac = nd.src_mac.hex(":")
    if nd.type == ICMPV6_NA and nd.target in addresses:
        return nd.target, CLAIM, mac
    if nd.type == ICMPV6_NS:
        if nd.src in addresses:
            return nd.src, CLAIM, mac
        if nd.src == "::" and nd.target in addresses:
            return nd.target, PROBE, mac
    return None


# classic BPF: keep IPv6 frames carrying ICMPv6 type 135 or 136 (no extension headers), drop the rest
_ND_FILTER = (
    (0x28, 0, 0, 12),      # ldh [12]            ethertype
    (0x15, 0, 5, 0x86DD),  # jeq IPv6 ? next : drop
    (0x30, 0, 0, 20),      # ldb [20]            next header
    (0x15, 0, 3, 58),      # jeq ICMPv6 ? next : drop
    (0x30, 0, 0, 54),      # ldb [54]            ICMPv6 type
    (0x15, 2, 0, ICMPV6_NS),
    (0x15, 1, 0, ICMPV6_NA),
    (0x06, 0, 0, 0),       # drop
    (0x06, 0, 0, 0xFFFF),  # accept
)


def _attach_nd_filter(sock: socket.socket) -> None:
    insns = b"".join(struct.pack("HBBI", *i) for i in _ND_FILTER)
    buf = ctypes.create_string_buffer(insns)
    prog = struct.pack("HL", len(_ND_FILTER), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


def _open(ifname: str, proto: int, netns: str | None) -> tuple[socket.socket, bytes]:
    return open_packet_socket(ifname, netns, proto, _attach_nd_filter if proto == ETH_P_IPV6 else None)


class AddressWatch:
    """Probing and watching the addresses of one interface (see the module doc)."""

    def __init__(self, ifname: str, addresses: Iterable[str], on_seen: OnSeen,
                 netns: str | None = None):
        self.ifname = ifname
        self.addresses = set(str(ipaddress.ip_address(a)) for a in addresses)
        self.on_seen = on_seen
        self.netns = netns
        self.socks: dict[int, socket.socket] = {}
        self.mac = b""
        self.probes_sent = 0
        self.seen = 0
        self.errors = 0
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def own_mac(self) -> str:
        return self.mac.hex(":")

    def open(self) -> None:
        """Open the sockets (GarpError when impossible: no such interface, no CAP_NET_RAW)."""
        self._loop = asyncio.get_running_loop()
        versions = {ipaddress.ip_address(a).version for a in self.addresses}
        try:
            for v, proto in ((4, ETH_P_ARP), (6, ETH_P_IPV6)):
                if v in versions:
                    sock, self.mac = _open(self.ifname, proto, self.netns)
                    self.socks[v] = sock
                    self._loop.add_reader(sock.fileno(), self._readable, sock)
        except GarpError:
            self.close()
            raise

    def probe(self, address: str) -> bool:
        """Send one probe for `address`; False (counted) when it could not be sent."""
        ip = ipaddress.ip_address(address)
        sock = self.socks.get(ip.version)
        if sock is None:
            return False
        frame = probe_frame(self.mac, address) if ip.version == 4 else dad_frame(self.mac, address)
        try:
            sock.send(frame)
            self.probes_sent += 1
            return True
        except OSError as e:
            self.errors += 1
            self.last_error = e.strerror or str(e)
            return False

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(256):  # bounded: a flood on the segment must not starve the loop
            try:
                frame = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.errors += 1
                self.last_error = e.strerror or str(e)
                return
            try:
                hit = classify(frame, self.mac, self.addresses)
            except (ValueError, IndexError):
                continue  # a frame too odd to read: not about our addresses
            if hit is None:
                continue
            self.seen += 1
            address, kind, mac = hit
            try:
                self.on_seen(address, kind, mac, self.own_mac, self.ifname)
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the watch
                log.exception("address watch on %s: handler raised", self.ifname)

    def close(self) -> None:
        for sock in self.socks.values():
            if self._loop is not None:
                try:
                    self._loop.remove_reader(sock.fileno())
                except (ValueError, RuntimeError):
                    pass
            sock.close()
        self.socks.clear()

    def status(self) -> dict:
        return {"interface": self.ifname, "mac": self.own_mac, "addresses": sorted(self.addresses),
                "probes_sent": self.probes_sent, "seen": self.seen, "errors": self.errors,
                "last_error": self.last_error}
