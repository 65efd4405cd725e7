#!/usr/bin/env python3
"""Data plane benchmark: wrk against one real server directly and through each data plane.

    .venv/bin/python bench/dataplane.py [--duration 5] [--rounds 3] [--only NAME,...]

One nginx (a temporary config, `return 200` of a small body) is the real server on 127.0.0.1.
Each *target* is a way to reach it: `direct`, `proxy` (our userspace proxy, uvloop, in its own
process via `python -m hadirector proxy`), `haproxy` (TCP mode, one thread, a temporary
config), `nginx-stream` (nginx's stream module as a TCP proxy, one worker process, a temporary
config; Debian's nginx-light loads it from libnginx-mod-stream). Every target is measured with keep-alive and with a new connection per request
(`wrk -H 'Connection: close'`), interleaved over several rounds in one run (the machine is
shared: interleaving spreads background load evenly; the median is reported). The script prints
requests/s per target and mode and the ratios (proxy / haproxy, proxy / nginx-stream, each / direct) and writes nothing else: temporary
files live in a temporary directory that is removed, and every process it started is stopped by
its pid.

Adding a target (the nft data plane adds NAT and DR): write a class with `name`, `start()`
returning the (host, port) wrk should hit, and `stop()`, and append it in `build_targets()`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def stop_proc(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Nginx:
    """The real server: nginx with a temporary config, started in the foreground, stopped by pid."""

    def __init__(self, tmp: str, workers: int) -> None:
        self.tmp = tmp
        self.workers = workers
        self.host, self.port = "127.0.0.1", free_port()
        self.proc = None

    def start(self) -> None:
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes {self.workers};
daemon off;
pid {self.tmp}/nginx.pid;
error_log {self.tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.tmp}/body;
    proxy_temp_path {self.tmp}/proxy;
    fastcgi_temp_path {self.tmp}/fastcgi;
    uwsgi_temp_path {self.tmp}/uwsgi;
    scgi_temp_path {self.tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {self.host}:{self.port} backlog=4096;
        location / {{ return 200 "hello from the real server\\n"; }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.tmp],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.host, self.port, proc=self.proc)

    def stop(self) -> None:
        stop_proc(self.proc, signal.SIGQUIT)


class Direct:
    name = "direct"

    def __init__(self, real: Nginx) -> None:
        self.real = real

    def start(self) -> tuple[str, int]:
        return self.real.host, self.real.port

    def stop(self) -> None:
        pass


class Proxy:
    """Our userspace proxy in its own process (uvloop when installed)."""

    name = "proxy"

    def __init__(self, real: Nginx, tmp: str) -> None:
        self.real = real
        self.tmp = tmp
        self.proc = None

    def start(self) -> tuple[str, int]:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "hadirector", "proxy", "--service", f"tcp:127.0.0.1:{port}",
             "--real", f"{self.real.host}:{self.real.port}", "--scheduler", "wrr"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "proxy.log"), "w"))
        wait_port("127.0.0.1", port, proc=self.proc)
        return "127.0.0.1", port

    def stop(self) -> None:
        stop_proc(self.proc)


class HAProxy:
    """HAProxy 2.x in TCP mode, one thread (like our single-threaded proxy), temporary config."""

    name = "haproxy"

    def __init__(self, real: Nginx, tmp: str) -> None:
        self.real = real
        self.tmp = tmp
        self.proc = None

    def start(self) -> tuple[str, int]:
        port = free_port()
        conf = os.path.join(self.tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(f"""
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server real {self.real.host}:{self.real.port}
""")
        self.proc = subprocess.Popen(["haproxy", "-f", conf, "-db"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "haproxy.log"), "w"))
        wait_port("127.0.0.1", port, proc=self.proc)
        return "127.0.0.1", port

    def stop(self) -> None:
        stop_proc(self.proc, signal.SIGUSR1)  # soft stop


STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


class NginxStream:
    """nginx's stream module as a plain TCP proxy (`stream { upstream; server { proxy_pass } }`),
    one worker process to match HAProxy's one thread, temporary config, stopped by pid.
    Debian builds the module dynamically (`nginx -V`: --with-stream=dynamic); nginx-light does
    not ship it: it is in libnginx-mod-stream (scripts/system-packages.txt)."""

    name = "nginx-stream"

    def __init__(self, real: Nginx, tmp: str) -> None:
        self.real = real
        self.tmp = os.path.join(tmp, "nginx-stream")
        self.proc = None

    def start(self) -> tuple[str, int]:
        if not os.path.exists(STREAM_MODULE):
            raise RuntimeError(f"{STREAM_MODULE} is missing: apt-get install libnginx-mod-stream")
        os.makedirs(self.tmp, exist_ok=True)
        port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        # the same limits and timeouts as the haproxy target: maxconn 8000 client connections
        # (nginx counts each relayed connection twice: client side and upstream side), connect
        # timeout 5 s, idle timeout 60 s
        with open(conf, "w") as f:
            f.write(f"""
load_module {STREAM_MODULE};
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {self.tmp}/nginx.pid;
error_log {self.tmp}/error.log warn;
events {{ worker_connections 16000; }}
stream {{
    upstream be {{
        server {self.real.host}:{self.real.port};
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        proxy_pass be;
        proxy_connect_timeout 5s;
        proxy_timeout 60s;
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.tmp],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.tmp, "stderr.log"), "w"))
        wait_port("127.0.0.1", port, proc=self.proc)
        return "127.0.0.1", port

    def stop(self) -> None:
        stop_proc(self.proc, signal.SIGQUIT)  # graceful stop of master and worker


USER_TARGETS = ("direct", "proxy", "haproxy", "nginx-stream")


def build_targets(real: Nginx, tmp: str) -> list:
    return [Direct(real), Proxy(real, tmp), HAProxy(real, tmp), NginxStream(real, tmp)] + kernel_targets()


def kernel_targets() -> list:
    """The nftables targets of bench/dataplane_nft.py (root only; wrk runs in their client
    namespace through `wrk_prefix`; each has its own baseline in `base`)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from dataplane_nft import kernel_targets as nft_targets
    return nft_targets()


from _wrk import MODES, run_wrk  # noqa: E402,F401  (bench/_wrk.py)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds; each runs every target and mode once, interleaved, and the "
                        "median is reported (default 3)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--nginx-workers", type=int, default=1)
    p.add_argument("--only", help="comma-separated target names")
    p.add_argument("--modes", default="keep-alive,new-conn")
    args = p.parse_args(argv)
    for tool in ("wrk", "nginx", "haproxy"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 2
    modes = args.modes.split(",")
    runs: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hadirector-bench-") as tmp:
        real = Nginx(tmp, args.nginx_workers)
        real.start()
        started = []
        try:
            targets = build_targets(real, tmp)
            if args.only:
                keep = [n.strip() for n in args.only.split(",") if n.strip()]
                unknown = [n for n in keep if n not in {t.name for t in targets}]
                if unknown:
                    print(f"bench: unknown target(s) {', '.join(unknown)}; known here: "
                          f"{', '.join(t.name for t in targets)}"
                          + ("" if os.geteuid() == 0 else " (the nft targets need root)"),
                          file=sys.stderr)
                    return 2
                targets = [t for t in targets if t.name in keep]
            where = {}
            for t in targets:
                where[t.name] = t.start()
                started.append(t)
                run_wrk(*where[t.name], "keep-alive", 1, args.connections, args.threads,
                        getattr(t, "wrk_prefix", []))  # warm-up
            for rnd in range(args.rounds):
                for mode in modes:
                    for t in targets:
                        rps = run_wrk(*where[t.name], mode, args.duration, args.connections, args.threads,
                                      getattr(t, "wrk_prefix", []))
                        runs.setdefault(t.name, {}).setdefault(mode, []).append(rps)
                        print(f"  round {rnd + 1}  {t.name:<12} {mode:<11} {rps:>12,.0f} req/s",
                              file=sys.stderr)
        finally:
            for t in reversed(started):
                t.stop()
            real.stop()
    results = {name: {m: statistics.median(v) for m, v in r.items()} for name, r in runs.items()}
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds "
          f"(median), nginx {args.nginx_workers} worker(s), {os.cpu_count()} CPUs, "
          f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"{'target':<22}" + "".join(f"{m:>16}" for m in modes))
    for name, r in results.items():
        print(f"{name:<22}" + "".join(f"{r.get(m, 0):>16,.0f}" for m in modes))
    print()
    base = results.get("direct")
    kernel = [t for t in targets if hasattr(t, "wrk_prefix")]
    for name, r in results.items():
        if base and name != "direct" and name not in {t.name for t in kernel}:
            print(f"{name + ' / direct':<22}" + "".join(
                f"{r[m] / base[m]:>16.2f}" for m in modes if m in r and base.get(m)))
    for peer in ("haproxy", "nginx-stream"):
        if "proxy" in results and peer in results:
            r, h = results["proxy"], results[peer]
            print(f"{'proxy / ' + peer:<22}" + "".join(f"{r[m] / h[m]:>16.2f}" for m in modes if h.get(m)))
    if kernel:
        from dataplane_nft import print_ratios
        print()
        print_ratios(kernel, runs, results, modes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
