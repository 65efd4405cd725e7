"""The HTTP API under load: does scraping stall the cluster loop? (docs/api.md, docs/benchmarks.md)

Starts two real HTTP servers and one `hadirector run` (a one-node cluster on loopback, keepalive
100 ms, a group holding the balancer with two reals, the API with a token), measures each
endpoint's latency one request at a time, then floods `/metrics` from `--clients` threads for
`--seconds`, and counts the daemon's "loop did not run for N ms" warnings (the cluster core logs
one for any gap over two keepalives, 200 ms) during the flood. No root needed.

    .venv/bin/python bench/api.py [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PORT, HB, VIP, VPORT, RPORT = 18699, 16995, "127.0.0.195", 18695, 18696
REALS = ["127.0.0.96", "127.0.0.97"]
TOKEN = "bench-token"

CONFIG = f"""
[cluster]
name = "bench"
nodes = ["solo"]
[cluster.timing]
keepalive = "100ms"
deadtime = "500ms"
initdead = "500ms"
[cluster.auth]
key = "bench"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1"]
port = {HB}
[[groups]]
name = "lb"
preferred_node = "solo"
[[groups.resources]]
kind = "balancer"
[balancer]
dataplane = "proxy"
checkinterval = "1s"
[[balancer.virtual]]
address = "{VIP}"
port = {VPORT}
checktype = "connect"
""" + "".join(f'[[balancer.virtual.reals]]\naddress = "{a}"\nport = {RPORT}\nmethod = "masq"\n' for a in REALS)


def _get(conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}")


def latency(path: str, n: int = 200) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        _get(conn, path)
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return (f"{path:16} n={n} median {statistics.median(out):6.2f} ms  p99 {out[int(n * 0.99) - 1]:6.2f} ms  "
            f"max {out[-1]:6.2f} ms")


def flood(seconds: float, clients: int) -> int:
    stop = time.monotonic() + seconds
    counts = [0] * clients

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        while time.monotonic() < stop:
            _get(conn, "/metrics")
            counts[i] += 1
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token, 0o600)
        cfg = os.path.join(tmp, "bench.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG + f'[api]\nlisten = "127.0.0.1:{PORT}"\ntoken_file = "{token}"\n')
        log_path = os.path.join(tmp, "daemon.log")
        try:
            for a in REALS:
                procs.append(subprocess.Popen([sys.executable, "-m", "hadirector.lab.httpd", "--port", str(RPORT),
                                               "--bind", a, "--identity", a], stdout=subprocess.DEVNULL))
            with open(log_path, "wb") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "hadirector", "run", "-c", cfg, "--node", "solo",
                                               "--state-dir", os.path.join(tmp, "state")],
                                              stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 20
            while "group lb: running on solo" not in open(log_path).read():
                if time.monotonic() > deadline:
                    raise SystemExit("the daemon did not start:\n" + open(log_path).read()[-2000:])
                time.sleep(0.1)
            time.sleep(2)  # the first checks
            for path in ("/api/v1/auth", "/api/v1/status", "/api/v1/lvs", "/metrics"):
                print(latency(path))
            before = open(log_path).read().count("did not run for")
            n = flood(args.seconds, args.clients)
            stalls = open(log_path).read().count("did not run for") - before
            print(f"flood: {n} GET /metrics from {args.clients} clients in {args.seconds:g} s "
                  f"({n / args.seconds:.0f}/s); loop gaps over 200 ms meanwhile: {stalls}")
            print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
