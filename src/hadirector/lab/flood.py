"""A hostile sender on a heartbeat link: garbage, truncated, replayed and oversized datagrams at a
fixed rate to the directors' heartbeat port, for the chaos tests (what `Codec` must count and drop
without the cluster noticing).

    python -m hadirector.lab.flood --target 198.18.1.2:694 --target 198.18.1.3:694 \\
        --rate 20000 --seconds 10 [--replay captured.json] --out sent.json

The mix, per 100 datagrams: 40 random bytes (no magic), 25 our magic and version with a random
tail (bad auth or truncated), 15 headers that announce more body than they carry (truncated), 19
replays of captured real heartbeats (given as hex in --replay; random bytes when none), 1 datagram
of 17 KiB (over the 16 KiB cap: oversized). Seeded, so a run is repeatable. Writes {"sent": {kind:
n}, "errors": n, "seconds": s} at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import sys
import time

KINDS = (("garbage", 40), ("bad_auth", 25), ("truncated", 15), ("replay", 19), ("oversized", 1))


def _datagram(kind: str, rng: random.Random, replays: list[bytes]) -> bytes:
    if kind == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    if kind == "bad_auth":  # magic, version 1, heartbeat, sha1 key 1, a plausible body, a wrong MAC
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(40, 120)))
        return b"HD\x01\x01\x02\x01" + struct.pack("!H", len(body)) + body + bytes(20)
    if kind == "truncated":
        return b"HD\x01\x01\x02\x01" + struct.pack("!H", 4000) + bytes(rng.randint(0, 60))
    if kind == "replay":
        return rng.choice(replays) if replays else bytes(rng.getrandbits(8) for _ in range(90))
    return bytes(17 * 1024)


def flood(targets: list[tuple[str, int]], rate: float, seconds: float, replays: list[bytes],
          seed: int = 1, stop=lambda: False) -> dict:
    rng = random.Random(seed)
    table = [k for k, n in KINDS for _ in range(n)]
    sent = {k: 0 for k, _ in KINDS}
    errors = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    started = time.monotonic()
    t_end = started + seconds
    n = 0
    batch = max(1, int(rate / 200))  # 200 batches a second
    try:
        while time.monotonic() < t_end and not stop():
            for _ in range(batch):
                kind = table[n % len(table)]
                data = _datagram(kind, rng, replays)
                try:
                    # each target gets whole blocks of the mix, so every kind reaches every target
                    s.sendto(data, targets[(n // len(table)) % len(targets)])
                    sent[kind] += 1
                except OSError:
                    errors += 1
                n += 1
            due = started + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    finally:
        s.close()
    return {"sent": sent, "errors": errors, "seconds": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hadirector.lab.flood")
    ap.add_argument("--target", action="append", required=True, help="ADDRESS:PORT (repeatable)")
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--replay", help="JSON list of captured datagrams in hex")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    targets = []
    for t in a.target:
        host, _, port = t.rpartition(":")
        targets.append((host, int(port)))
    replays: list[bytes] = []
    if a.replay:
        with open(a.replay) as f:
            replays = [bytes.fromhex(h) for h in json.load(f)]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    result = flood(targets, a.rate, min(a.seconds, 600.0), replays, stop=lambda: bool(stopping))
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
