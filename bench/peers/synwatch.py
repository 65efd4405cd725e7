#!/usr/bin/env python3
"""The SYNs a host receives: one line per TCP SYN (without ACK) to `--port` arriving on
`--iface`, written to --out and flushed:

    <time> <destination address>

time is time.monotonic() when the frame was read (CLOCK_MONOTONIC, comparable with the
harness's clock). bench/peers/checks.py runs it on real1, where every checker checks its own
address, so the first SYN to an address after the server was killed is the first check that
found it dead. Ends on SIGTERM, or after --seconds.

    python bench/peers/synwatch.py --iface eth0 --port 80 --out FILE [--seconds 3600]
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import struct
import time

ETH_P_IP = 0x0800
TCP_SYN, TCP_ACK = 0x02, 0x10


def syn_destination(frame: bytes, port: int) -> str | None:
    """The IPv4 destination of a TCP SYN (not SYN-ACK) to `port` in an Ethernet frame, else None."""
    if len(frame) < 14 + 20 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP or len(ip) < ihl + 14:
        return None
    dport = struct.unpack_from("!H", ip, ihl + 2)[0]
    flags = ip[ihl + 13]
    if dport != port or not flags & TCP_SYN or flags & TCP_ACK:
        return None
    return socket.inet_ntoa(ip[16:20])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=3600)
    args = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((args.iface, ETH_P_IP))
    end = time.monotonic() + args.seconds
    with open(args.out, "w", buffering=1) as out:
        while not stop and time.monotonic() < end:
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
            except InterruptedError:
                continue
            if not ready:
                continue
            frame, meta = sock.recvfrom(65535)
            if meta[2] == socket.PACKET_OUTGOING:
                continue
            dst = syn_destination(frame, args.port)
            if dst:
                out.write(f"{time.monotonic():.6f} {dst}\n")


if __name__ == "__main__":
    main()
