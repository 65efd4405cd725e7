"""PROXY protocol headers (haproxy doc/proxy-protocol.txt), sent to a real server ahead of a
relayed connection (v1 or v2) or datagram (v2 only), so it sees the client's address instead of
the proxy's. Pure: bytes from addresses."""

from __future__ import annotations

import ipaddress
import struct

PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"  # proxy-protocol.txt 2.2: the v2 binary signature
VERSIONS = ("v1", "v2")


def proxy_header(version: str, proto: str, src: tuple, dst: tuple) -> bytes:
    """A PROXY protocol header: v1 text or v2 binary, for `src` (the client) -> `dst` (the
    address it connected to), each (host, port)."""
    src_ip = ipaddress.ip_address(src[0])
    dst_ip = ipaddress.ip_address(dst[0])
    if isinstance(src_ip, ipaddress.IPv4Address) != isinstance(dst_ip, ipaddress.IPv4Address):
        # mixed families (v4-mapped): present both as IPv6
        src_ip = ipaddress.IPv6Address(f"::ffff:{src_ip}") if src_ip.version == 4 else src_ip
        dst_ip = ipaddress.IPv6Address(f"::ffff:{dst_ip}") if dst_ip.version == 4 else dst_ip
    v6 = src_ip.version == 6
    if version == "v1":
        if proto != "tcp":
            raise ValueError("PROXY protocol v1 carries TCP only; use v2 for UDP")
        return (f"PROXY {'TCP6' if v6 else 'TCP4'} {src_ip} {dst_ip} {src[1]} {dst[1]}\r\n").encode()
    if version == "v2":
        fam = (0x20 if v6 else 0x10) | (0x01 if proto == "tcp" else 0x02)  # AF_INET[6] + STREAM/DGRAM
        body = src_ip.packed + dst_ip.packed + struct.pack("!HH", src[1], dst[1])
        return PP2_SIGNATURE + struct.pack("!BBH", 0x21, fam, len(body)) + body  # v2, PROXY command
    raise ValueError(f"unknown PROXY protocol version {version!r}; expected v1 or v2")
