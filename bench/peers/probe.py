"""The client's view: one HTTP/1.0 request to the VIP every `period` seconds, each on a new
connection with its own timeout, whether or not earlier ones have finished (so one slow request
never hides the others). Run in the client's namespace; one line per finished request is written
to --out and flushed:

    <start> <end> <ok 0|1> <who answered or the error>

start and end are time.monotonic() (CLOCK_MONOTONIC, comparable with the harness's clock).
Ends after --seconds, or on SIGTERM (requests still in flight are written as "unfinished").

    python bench/peers/probe.py --vip 198.18.0.100 --out FILE [--period 0.005] [--timeout 3]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time


async def one(vip: str, port: int, timeout: float, out) -> None:
    t0 = time.monotonic()
    ok, who = 0, ""
    try:
        async def go() -> bytes:
            r, w = await asyncio.open_connection(vip, port)
            w.write(b"GET / HTTP/1.0\r\n\r\n")
            data = await r.read()
            w.close()
            return data
        data = await asyncio.wait_for(go(), timeout)
        if data.startswith(b"HTTP/1."):
            ok, who = 1, data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip() or "?"
        else:
            who = "bad-reply"
    except asyncio.TimeoutError:
        who = "timeout"
    except OSError as e:
        who = type(e).__name__
    out.write(f"{t0:.6f} {time.monotonic():.6f} {ok} {who.replace(' ', '_')}\n")
    out.flush()


async def main_async(args) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    pending: set[asyncio.Task] = set()
    with open(args.out, "w", buffering=1) as out:
        t_end = time.monotonic() + args.seconds
        nxt = time.monotonic()
        while not stop.is_set() and time.monotonic() < t_end:
            task = asyncio.ensure_future(one(args.vip, args.port, args.timeout, out))
            pending.add(task)
            task.add_done_callback(pending.discard)
            nxt += args.period
            delay = nxt - time.monotonic()
            if delay < -1.0:  # fell far behind (a stalled machine): do not burst to catch up
                nxt = time.monotonic()
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
            except asyncio.TimeoutError:
                pass
        for t in list(pending):
            t.cancel()
        now = time.monotonic()
        for _ in pending:
            out.write(f"{now:.6f} {now:.6f} 0 unfinished\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--out", required=True)
    ap.add_argument("--period", type=float, default=0.005)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=3600)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
