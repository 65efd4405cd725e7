"""A client's traffic to a VIP, for judging outages from the client's side: a new HTTP/1.0 request
every `period` seconds (each on its own TCP connection, many in flight), and for each request when
it was sent, when it ended, and which server answered (the lab httpd's body is its identity) or
None when it failed or timed out.

    python -m hadirector.lab.traffic --host 198.18.0.100 --seconds 20 --out answers.json \\
        [--period 0.01] [--timeout 1.0]

The outage the client saw is the longest run of requests that got no answer, from the sending of
the first of them to the sending of the next request that did. Counting by send time makes the
figure independent of this process's own scheduling (a client that was not running sent nothing,
and lost nothing) and of the timeout, as long as the timeout exceeds an answer's normal delay.
Writes one JSON object at the end (or on SIGTERM): {"started", "ended", "requests": [[t_sent,
t_done, identity or null], ...], "answers": [[t_done, identity], ...], "errors": n}; times are
time.monotonic() (CLOCK_MONOTONIC, comparable across processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time


async def _get(host: str, port: int, timeout: float) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(4096), timeout)
        if not data.startswith(b"HTTP/1."):
            raise ValueError("not HTTP")
        return data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip().split("\n", 1)[0]
    finally:
        writer.close()


async def run(host: str, port: int, seconds: float, period: float, timeout: float) -> dict:
    answers: list[list] = []
    requests: list[list] = []
    errors = [0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task] = set()

    async def one() -> None:
        rec = [time.monotonic(), None, None]
        requests.append(rec)
        try:
            who = await _get(host, port, timeout)
            rec[1], rec[2] = time.monotonic(), who
            answers.append([rec[1], who])
        except (OSError, asyncio.TimeoutError, ValueError):
            rec[1] = time.monotonic()
            errors[0] += 1

    started = time.monotonic()
    t_end = started + seconds
    nxt = started
    while not stop.is_set() and time.monotonic() < t_end:
        if len(tasks) < 256:  # bounded: a dead VIP must not pile up connections
            t = loop.create_task(one())
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        nxt += period
        delay = nxt - time.monotonic()
        if delay < 0:
            nxt = time.monotonic()
            delay = 0
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except asyncio.TimeoutError:
            pass
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 1)
    answers.sort()
    return {"started": started, "ended": time.monotonic(), "requests": requests, "answers": answers,
            "errors": errors[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hadirector.lab.traffic")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--period", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    result = asyncio.run(run(a.host, a.port, min(a.seconds, 3600.0), a.period, a.timeout))
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
