"""ping: an ICMP echo request answered by an echo reply within checktimeout.

ldirectord `check_ping` (Net::Ping "icmp"): one echo per attempt; also used as the connect check of
UDP services. We use an unprivileged ICMP datagram socket when net.ipv4.ping_group_range allows
it (the kernel then matches replies to the socket), else a raw socket (root / CAP_NET_RAW) that
matches replies by identifier, sequence and source. RFC 792 (echo, type 8/0), RFC 4443 4.1/4.2
(ICMPv6 echo, type 128/129).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

from .base import CheckTarget, ProbeContext, ProbeResult, register


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(v6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    kind = 128 if v6 else 8
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return head + payload  # the kernel fills the ICMPv6 checksum (RFC 3542 3.1)
    return struct.pack("!BBHHH", kind, 0, checksum(head + payload), ident, seq) + payload


def _open(v6: bool) -> tuple[socket.socket, bool]:
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), True


@register("ping")
async def check_ping(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    loop = asyncio.get_running_loop()
    v6 = target.family_v6
    try:
        sock, raw = _open(v6)
    except PermissionError:
        return ProbeResult(False, "ping: no permission for ICMP sockets (need root or ping_group_range)")
    try:
        sock.setblocking(False)
        ident, seq = int.from_bytes(os.urandom(2), "big"), int.from_bytes(os.urandom(2), "big")
        payload = b"hadirector" + os.urandom(6)
        await loop.sock_sendto(sock, echo_request(v6, ident, seq, payload), (target.address, 0))
        want = 129 if v6 else 0
        for _ in range(10_000):
            data, src = await loop.sock_recvfrom(sock, 2048)
            if raw and not v6:
                data = data[(data[0] & 0x0F) * 4:]  # raw IPv4 sockets deliver the IP header
            if len(data) < 8:
                continue
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
            if kind != want or rseq != seq or data[8:] != payload:
                continue
            if raw and (rid != ident or src[0] != target.address):
                continue
            return ProbeResult(True, f"echo reply from {target.address}")
        return ProbeResult(False, "ping: no matching echo reply")
    except OSError as e:
        return ProbeResult(False, f"ping: {e.strerror or e}")
    finally:
        sock.close()
