"""ICMP echo (RFC 792 type 8/0; RFC 4443 128/129): one request, wait for the matching reply.

Used for ha.cf `ping`/`ping_group` nodes and the `ping` health check. An unprivileged ICMP datagram
socket is used when net.ipv4.ping_group_range allows it (the kernel matches replies to the socket),
else a raw socket (root / CAP_NET_RAW), where replies are matched by identifier, sequence, payload
and source.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct


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


def open_icmp(v6: bool) -> tuple[socket.socket, bool]:
    """(socket, raw): a datagram ICMP socket if allowed, else a raw one."""
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        return socket.socket(family, socket.SOCK_RAW, proto), True


async def exchange(address: str, v6: bool) -> str | None:
    """Send one echo request and wait (unbounded: the caller times out) for its reply.
    Returns None on success, else the reason."""
    loop = asyncio.get_running_loop()
    try:
        sock, raw = open_icmp(v6)
    except PermissionError:
        return "no permission for ICMP sockets (need root or net.ipv4.ping_group_range)"
    try:
        sock.setblocking(False)
        ident, seq = int.from_bytes(os.urandom(2), "big"), int.from_bytes(os.urandom(2), "big")
        payload = b"hadirector" + os.urandom(6)
        await loop.sock_sendto(sock, echo_request(v6, ident, seq, payload), (address, 0))
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
            if raw and (rid != ident or src[0] != address):
                continue
            return None
        return "no matching echo reply"
    except OSError as e:
        return e.strerror or str(e)
    finally:
        sock.close()


async def echo(address: str, timeout: float) -> str | None:
    """Ping `address` once. None when the reply came within `timeout` seconds, else why not."""
    v6 = ipaddress.ip_address(address).version == 6
    try:
        return await asyncio.wait_for(exchange(address, v6), timeout)
    except asyncio.TimeoutError:
        return f"no echo reply within {timeout:g}s"
