"""Health-check benchmark: N reals (listeners on loopback addresses) checked every interval.

    .venv/bin/python bench/checks.py                       # 10,000 reals, connect checks every 1 s, 20 s
    .venv/bin/python bench/checks.py --reals 2000 --seconds 10 --kind http

A helper process (`--serve`, started by the bench) binds one listening socket on each of
127.1.0.1, 127.1.0.2, ... (port 8080). For connect checks the sockets use TCP_DEFER_ACCEPT, so
the kernel completes each handshake and drops the reset connection without user-space work; for
http checks the helper accepts with epoll and answers a minimal HTTP/1.0 200. The measured process runs the real `CheckScheduler` with
`checktype = connect` (or negotiate/http) for every real, and prints:
- CPU share: CPU seconds of the checking process divided by wall seconds (1.0 = one core);
- lateness p50/p99/max: when each check started against when it was due (its schedule);
- checks per second, failures, overruns, timeouts;
- memory: RSS of the checking process before and after building the 10,000 reals.
Everything stays on loopback; the run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

HTTP_REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def address(i: int) -> str:
    return f"127.{1 + i // 65025}.{(i // 255) % 255}.{1 + i % 255}"


def serve(n: int, port: int, http: bool) -> None:
    """The listeners: one socket per loopback address, accept + (answer) + close, epoll."""
    raise_nofile(n + 2000)
    ep = select.epoll()
    listeners = {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if not http:
            # connect checks send nothing and reset: with TCP_DEFER_ACCEPT the kernel completes
            # the handshake and drops the reset connection without queueing it for accept(), so
            # the listeners need no user-space work at all (tcp(7) TCP_DEFER_ACCEPT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
        s.bind((address(i), port))
        s.listen(512)
        s.setblocking(False)
        listeners[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    conns = {}
    print("ready", flush=True)
    if not http:
        while True:
            time.sleep(3600)
    while True:
        for fd, ev in ep.poll(1.0):
            ls = listeners.get(fd)
            if ls is not None:
                # one accept per event: epoll is level-triggered, so a second waiting connection
                # reports again (cheaper than the BlockingIOError of a second accept)
                try:
                    c, _ = ls.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                if not http:
                    c.close()
                    continue
                c.setblocking(False)
                conns[c.fileno()] = c
                ep.register(c.fileno(), select.EPOLLIN)
                continue
            c = conns.pop(fd, None)
            if c is None:
                continue
            ep.unregister(fd)
            try:
                if c.recv(4096):
                    c.send(HTTP_REPLY)
            except OSError:
                pass
            c.close()


def schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of this process's main thread."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            run, wait, _ = f.read().split()
        return int(run) / 1e9, int(wait) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def measure(args) -> dict:
    from hadirector.checks.scheduler import CheckScheduler
    from hadirector.config.model import Real, VirtualService

    rss0 = rss_kib()
    per = 100
    vss = []
    kw = {"checktype": args.kind} if args.kind in ("connect", "on") else {"checktype": "negotiate", "service": "http",
                                                                  "request": "/", "receive": "ok"}
    for v in range(0, args.reals, per):
        reals = [Real(address=address(i), port=args.port) for i in range(v, min(v + per, args.reals))]
        vss.append(VirtualService(address=f"198.18.{v // per // 250}.{1 + (v // per) % 250}", port=80,
                                  checkinterval=f"{int(args.interval * 1000)}ms", checktimeout="2s",
                                  negotiatetimeout="2s", reals=reals, **kw))
    events = []
    sched = CheckScheduler(vss, on_event=events.append, concurrency=args.concurrency,
                           startup_window=args.interval)
    await sched.start()
    rss_built = rss_kib()
    await asyncio.sleep(args.warmup)
    sched.reset_lateness()
    st0 = sched.stats()
    ru0, ss0, wall0 = resource.getrusage(resource.RUSAGE_SELF), schedstat(), time.monotonic()
    await asyncio.sleep(args.seconds)
    ru1, ss1, wall1 = resource.getrusage(resource.RUSAGE_SELF), schedstat(), time.monotonic()
    st1 = sched.stats()
    health = sched.health()
    await sched.stop()
    wall = wall1 - wall0
    return {
        "reals": args.reals, "kind": args.kind + (" (refused)" if getattr(args, "refused", False) else ""), "interval_s": args.interval, "seconds": round(wall, 2),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0], "nice": os.nice(0),
        "checks_per_s": round((st1.checks - st0.checks) / wall, 1),
        "cpu_share": round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall, 3),
        "cpu_user": round((ru1.ru_utime - ru0.ru_utime) / wall, 3),
        "cpu_system": round((ru1.ru_stime - ru0.ru_stime) / wall, 3),
        "cpu_us_per_check": round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1e6
                                  / max(1, st1.checks - st0.checks), 1),
        "runqueue_wait_share": round((ss1[1] - ss0[1]) / wall, 3),  # waiting for a CPU other processes held
        "lateness_p50_ms": round(st1.lateness_p50_ms, 2), "lateness_p99_ms": round(st1.lateness_p99_ms, 2),
        "lateness_max_ms": round(st1.lateness_max_ms, 2),
        "down_reals": sum(1 for h in health.values() if not h.up), "down_events": len(events),
        "overruns": st1.overruns - st0.overruns, "timeouts": st1.timeouts - st0.timeouts, "errors": st1.errors,
        "rss_start_mib": round(rss0 / 1024, 1), "rss_mib": round(rss_kib() / 1024, 1),
        "rss_after_build_mib": round(rss_built / 1024, 1),
    }


def _use_loop(args) -> None:
    if args.loop in ("uvloop", "auto"):
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            if args.loop == "uvloop":
                raise


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reals", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=1.0, help="checkinterval in seconds")
    p.add_argument("--seconds", type=float, default=20.0, help="measured time")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--kind", choices=("connect", "http", "on"), default="connect")
    p.add_argument("--concurrency", type=int, default=1024)
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    p.add_argument("--refused", action="store_true",
                   help="no listeners: every check is refused at once (measures the checker without a server)")
    p.add_argument("--nice", type=int, default=0,
                   help="change the checking process's nice value (negative needs root), e.g. -10 on a shared machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.reals > 65025 * 2:
        p.error("--reals: at most 130050")
    if args.serve:
        serve(args.reals, args.port, args.kind == "http")
        return 0
    raise_nofile(args.concurrency * 2 + 1000)
    if args.nice:
        os.nice(args.nice)
    if args.refused:
        _use_loop(args)
        res = asyncio.run(measure(args))
        print(json.dumps(res) if args.json else "\n".join(f"{k:<22}{v}" for k, v in res.items()))
        return 0
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", "--reals", str(args.reals),
                               "--port", str(args.port), "--kind", args.kind], stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            print("listener process failed to start", file=sys.stderr)
            return 1
        _use_loop(args)
        res = asyncio.run(measure(args))
    finally:
        server.terminate()
        server.wait(10)
    if args.json:
        print(json.dumps(res))
    else:
        width = max(map(len, res))
        for k, v in res.items():
            print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
