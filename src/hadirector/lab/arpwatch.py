"""Who answers ARP for an address, seen from a host on the segment: one "who has ADDRESS" request
every `period` seconds, and the MACs whose replies answer each request.

    python -m hadirector.lab.arpwatch --iface eth0 --address 198.18.0.100 --seconds 20 \\
        --out samples.json [--period 0.01]

This is how the chaos tests judge a director pair from the client's side: two MACs answering one
request means two kernels answer for the VIP (the split brain users see); none means nobody does.

Each request is sent from one of 16 sender addresses in turn (198.18.0.224-239 by default; they
need not be configured anywhere: the replies come back to our MAC and carry the request's sender
address as their target), so a reply that arrives late is still counted for the request it
answers. Gratuitous announcements (sender = target = ADDRESS) are recorded separately.

Writes one JSON object at the end (or on SIGTERM): {"address", "period", "samples": [[t, [mac,
...]], ...], "announcements": [[t, mac, op], ...]}; t is time.monotonic() when the request left,
comparable with other processes on this machine (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import socket
import sys
import time

from ..net.garp import ARPOP_REPLY, ARPOP_REQUEST, BROADCAST_MAC, ETH_P_ARP, ZERO_MAC, arp_packet, parse_arp

DEFAULT_SOURCES = tuple(f"198.18.0.{224 + i}" for i in range(16))


def watch(ifname: str, address: str, seconds: float, period: float = 0.01,
          sources: tuple[str, ...] = DEFAULT_SOURCES, stop=lambda: False) -> dict:
    """Sample for `seconds` (bounded) in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((ifname, ETH_P_ARP))
        mac = sock.getsockname()[4]
        sock.setblocking(False)
        index = {ipaddress.IPv4Address(s).packed: i for i, s in enumerate(sources)}
        latest: dict[int, int] = {}  # source index -> sample number of its latest request
        samples: list[list] = []
        announcements: list[list] = []
        t_end = time.monotonic() + seconds
        next_send = time.monotonic()
        n = 0
        while time.monotonic() < t_end and not stop():
            now = time.monotonic()
            if now >= next_send:
                i = n % len(sources)
                frame = arp_packet(ARPOP_REQUEST, mac, sources[i], ZERO_MAC, address, BROADCAST_MAC)
                try:
                    sock.send(frame)
                except OSError:
                    pass  # counted as a window nobody answered
                latest[i] = len(samples)
                samples.append([now, []])
                n += 1
                next_send += period
                if next_send < now:  # we were descheduled: no burst, carry on
                    next_send = now + period
            r, _, _ = select.select([sock], [], [], max(0.0, min(next_send, t_end) - time.monotonic()))
            if not r:
                continue
            for _ in range(256):
                try:
                    frame = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                p = parse_arp(frame)
                if p is None or p.spa != address or p.sha == mac:
                    continue
                sender = p.sha.hex(":")
                if p.tpa == address:
                    announcements.append([time.monotonic(), sender, p.op])
                elif p.op == ARPOP_REPLY:
                    i = index.get(ipaddress.IPv4Address(p.tpa).packed)
                    if i is not None and i in latest and sender not in samples[latest[i]][1]:
                        samples[latest[i]][1].append(sender)
        return {"address": address, "period": period, "mac": mac.hex(":"), "samples": samples,
                "announcements": announcements}
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hadirector.lab.arpwatch")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--address", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--period", type=float, default=0.01)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    result = watch(a.iface, a.address, min(a.seconds, 3600.0), a.period, stop=lambda: bool(stopping))
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
