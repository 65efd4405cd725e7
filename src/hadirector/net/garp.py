"""Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) from a raw packet socket.

When a virtual IP moves to this node, the hosts on the segment still map it to the old holder's
MAC. We tell them, as heartbeat's send_arp does for IPaddr/IPaddr2:

- IPv4: each round sends a broadcast ARP *request* (sender and target protocol address = the VIP,
  target hardware address 00:00:00:00:00:00), waits half the interval, then a broadcast ARP *reply*
  (target hardware address = our MAC), and waits the other half. Some hosts only learn from one
  form, which is why send_arp sends both (resource-agents tools/send_arp.libnet.c, "We need to send
  both a broadcast ARP request as well as the ARP response"). `count` rounds, default 5 at 200 ms
  (IPaddr2 arp_count / arp_interval).
- IPv6: each round sends an unsolicited Neighbor Advertisement to all-nodes ff02::1 with the
  Override flag set, Solicited clear, and a Target Link-Layer Address option (RFC 4861 7.2.6),
  hop limit 255 (RFC 4861 7.1.2 makes receivers drop anything else).

Receivers update an *existing* neighbour entry from these packets. Linux creates a new entry from a
gratuitous ARP only when net.ipv4.conf.*.arp_accept is 1 (or 2 within the subnet), and from an
unsolicited NA only with accept_untracked_na; with the defaults, a host that never talked to the VIP
simply resolves it later by ordinary ARP/ND and gets the new holder's answer.

Frames are built by pure functions (`arp_frame`, `na_frame`) and sent on an AF_PACKET socket bound
to the interface, so no external tool (arping, send_arp) is needed. The probes of address conflict
detection (net/acd.py) are built here too: `probe_frame` (RFC 5227 2.1.1: an ARP request with
sender address 0.0.0.0) and `dad_frame` (RFC 4862 5.4.2: a neighbour solicitation from :: to the
target's solicited-node group); `parse_arp` and `parse_nd` read what comes back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from dataclasses import dataclass

from ..errors import HadirectorError
from .netns import NetnsError, netns_socket

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"  # RFC 2464 section 7: 33:33 + low 32 bits of ff02::1
ICMPV6_NS = 135
ICMPV6_NA = 136
NA_FLAG_OVERRIDE = 0x20000000  # RFC 4861 4.4: R=0x80000000, S=0x40000000, O=0x20000000
ND_OPT_TARGET_LLADDR = 2


class GarpError(HadirectorError):
    """The announcement could not start (no such interface, no link-layer address, no permission)."""


@dataclass
class GarpStats:
    sent: int = 0
    errors: int = 0
    last_error: str | None = None


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"expected a 6-byte MAC, got {len(mac)} bytes")
        return mac
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"expected a MAC like aa:bb:cc:dd:ee:ff, got {mac!r}")
    return bytes(int(p, 16) for p in parts)


def arp_frame(op: int, mac: str | bytes, address: str) -> bytes:
    """An Ethernet broadcast frame carrying a gratuitous ARP request (op 1) or reply (op 2) for
    `address` at `mac`, laid out as send_arp does."""
    src = mac_bytes(mac)
    ip = ipaddress.IPv4Address(address).packed
    if op == ARPOP_REQUEST:
        tha = ZERO_MAC
    elif op == ARPOP_REPLY:
        tha = src
    else:
        raise ValueError(f"ARP op must be 1 (request) or 2 (reply), got {op}")
    eth = BROADCAST_MAC + src + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, op) + src + ip + tha + ip
    return eth + arp


@dataclass(frozen=True)
class ArpPacket:
    """The fields of an Ethernet/IPv4 ARP packet that matter here (RFC 826)."""

    op: int
    sha: bytes  # sender hardware address
    spa: str  # sender protocol address ("0.0.0.0" in an RFC 5227 probe)
    tha: bytes
    tpa: str


def arp_packet(op: int, sha: str | bytes, spa: str, tha: str | bytes, tpa: str,
               dst: str | bytes = BROADCAST_MAC) -> bytes:
    """Any Ethernet ARP frame: `op` from (sha, spa) about (tha, tpa), sent to `dst`."""
    src = mac_bytes(sha)
    eth = mac_bytes(dst) + src + struct.pack("!H", ETH_P_ARP)
    return eth + struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, op) + src \
        + ipaddress.IPv4Address(spa).packed + mac_bytes(tha) + ipaddress.IPv4Address(tpa).packed


def parse_arp(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or None when it is not Ethernet/IPv4 ARP."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    if (htype, ptype, hlen, plen) != (ARPHRD_ETHER, ETH_P_IP, 6, 4):
        return None
    return ArpPacket(op, frame[22:28], str(ipaddress.IPv4Address(frame[28:32])), frame[32:38],
                     str(ipaddress.IPv4Address(frame[38:42])))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def na_frame(mac: str | bytes, address: str) -> bytes:
    """An Ethernet frame to ff02::1 with an unsolicited Neighbor Advertisement for `address`
    (Override set, Solicited clear, Target Link-Layer Address option), source = `address`."""
    src_mac = mac_bytes(mac)
    target = ipaddress.IPv6Address(address)
    icmp_wo_sum = (struct.pack("!BBHI", ICMPV6_NA, 0, 0, NA_FLAG_OVERRIDE) + target.packed
                   + struct.pack("!BB", ND_OPT_TARGET_LLADDR, 1) + src_mac)
    # RFC 8200 8.1: the checksum covers a pseudo-header of source, destination, length, next header
    pseudo = target.packed + ALL_NODES.packed + struct.pack("!I3xB", len(icmp_wo_sum), 58)
    csum = _checksum(pseudo + icmp_wo_sum)
    icmp = icmp_wo_sum[:2] + struct.pack("!H", csum) + icmp_wo_sum[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + target.packed + ALL_NODES.packed
    eth = ALL_NODES_MAC + src_mac + struct.pack("!H", ETH_P_IPV6)
    return eth + ip6 + icmp


def probe_frame(mac: str | bytes, address: str) -> bytes:
    """RFC 5227 2.1.1 ARP Probe for `address`: a broadcast ARP request with our hardware address,
    sender IP address all zeroes (so no host updates its cache from it), target hardware address
    zero, target IP address the probed one."""
    return arp_packet(ARPOP_REQUEST, mac, "0.0.0.0", ZERO_MAC, address)


def solicited_node(address: str) -> ipaddress.IPv6Address:
    """RFC 4291 2.7.1: ff02::1:ff00:0/104 plus the low 24 bits of the address."""
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low)


def dad_frame(mac: str | bytes, address: str) -> bytes:
    """RFC 4862 5.4.2 duplicate address detection: a Neighbor Solicitation for `address` from the
    unspecified address to its solicited-node group, without a source link-layer option (RFC
    4861 4.3 forbids one from ::), hop limit 255."""
    src_mac = mac_bytes(mac)
    target = ipaddress.IPv6Address(address)
    dst = solicited_node(address)
    unspec = ipaddress.IPv6Address("::")
    icmp_wo_sum = struct.pack("!BBHI", ICMPV6_NS, 0, 0, 0) + target.packed
    pseudo = unspec.packed + dst.packed + struct.pack("!I3xB", len(icmp_wo_sum), 58)
    csum = _checksum(pseudo + icmp_wo_sum)
    icmp = icmp_wo_sum[:2] + struct.pack("!H", csum) + icmp_wo_sum[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + unspec.packed + dst.packed
    eth = b"\x33\x33" + dst.packed[-4:] + src_mac + struct.pack("!H", ETH_P_IPV6)  # RFC 2464 7
    return eth + ip6 + icmp


@dataclass(frozen=True)
class NdPacket:
    """A neighbour solicitation (135) or advertisement (136) as far as conflicts go."""

    type: int
    src_mac: bytes  # the Ethernet source
    src: str  # IPv6 source ("::" for duplicate address detection)
    target: str


def parse_nd(frame: bytes) -> NdPacket | None:
    """The NS/NA in an Ethernet frame (no extension headers: RFC 4861 7.1.1 forbids none, but
    ND is sent without them), or None."""
    if len(frame) < 14 + 40 + 24 or frame[12:14] != b"\x86\xdd" or frame[20] != 58:
        return None
    t = frame[54]
    if t not in (ICMPV6_NS, ICMPV6_NA) or frame[21] != 255:  # RFC 4861 7.1: hop limit 255
        return None
    return NdPacket(t, frame[6:12], str(ipaddress.IPv6Address(frame[22:38])),
                    str(ipaddress.IPv6Address(frame[62:78])))


def open_packet_socket(ifname: str, netns: str | None = None, proto: int = 0,
                       setup=None) -> tuple[socket.socket, bytes]:
    """A non-blocking AF_PACKET socket bound to `ifname`, and the interface's MAC. Protocol 0 (the
    default) receives nothing: a socket to send on; net/acd.py asks for ARP or IPv6 and passes a
    `setup(sock)` that attaches its socket filter before the bind."""
    try:
        sock = netns_socket(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    except NetnsError as e:
        raise GarpError(str(e), errno=e.errno) from None
    except OSError as e:
        raise GarpError(f"raw packet socket: {e.strerror or e} (needs CAP_NET_RAW)", errno=e.errno) from None
    try:
        if setup is not None:
            setup(sock)
        sock.bind((ifname, proto))
        name = sock.getsockname()
        mac = name[4] if len(name) > 4 else b""
        if len(mac) != 6:
            raise GarpError(f"interface {ifname} has no Ethernet address; cannot announce on it")
        sock.setblocking(False)
        return sock, mac
    except OSError as e:
        sock.close()
        raise GarpError(f"bind packet socket to {ifname}: {e.strerror or e}", errno=e.errno) from None
    except GarpError:
        sock.close()
        raise


def _send(sock: socket.socket, frame: bytes, stats: GarpStats) -> None:
    try:
        sock.send(frame)
        stats.sent += 1
    except OSError as e:  # counted, never fatal: the next round may get through
        stats.errors += 1
        stats.last_error = e.strerror or str(e)


async def announce(ifname: str, address: str, *, count: int = 5, interval_ms: int = 200,
                   netns: str | None = None, stats: GarpStats | None = None) -> GarpStats:
    """Announce `address` on `ifname`: `count` rounds, one every `interval_ms`. For IPv4 a round is
    a request then, half an interval later, a reply; for IPv6 one neighbour advertisement.

    Raises GarpError if the socket cannot be opened; send errors are counted in the stats."""
    stats = stats if stats is not None else GarpStats()
    if count <= 0:
        return stats
    ip = ipaddress.ip_address(address)
    sock, mac = open_packet_socket(ifname, netns)
    half = max(interval_ms, 0) / 2000.0
    try:
        for i in range(count):
            if ip.version == 4:
                _send(sock, arp_frame(ARPOP_REQUEST, mac, address), stats)
                await asyncio.sleep(half)
                _send(sock, arp_frame(ARPOP_REPLY, mac, address), stats)
            else:
                _send(sock, na_frame(mac, address), stats)
                await asyncio.sleep(half)
            if i != count - 1:
                await asyncio.sleep(half)
    finally:
        sock.close()
    return stats
