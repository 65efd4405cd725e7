"""Do open connections survive a director failover? A client in a lab namespace that holds N
keep-alive HTTP connections and one paced streaming download through the VIP, and, when told,
sends one more request on every connection and reports which answered on the same connection.

    python -m hadirector.lab.survive --host 198.18.0.100 --port 80 --connections 100 \\
        --stream-bytes 4194304 --stream-ms 10000 --ready R.json --go GO --out OUT.json

Phase 1: opens the connections, one request each (the answering real, from `X-Real`, is noted per
connection), starts the download (lab/httpd.py `/stream/<bytes>/<ms>`), and once every connection
has answered and the download has begun writes the phase-1 report to `--ready`.
Phase 2 starts when the file `--go` exists (the test made the failover meanwhile): every
connection sends another request on the same socket; then the download is read to its end and
its SHA-256 compared with the one of lab/httpd.py `stream_block`. The report goes to `--out`
(and stdout) as one JSON object:

    {"connections": 100, "opened": 100, "first": {"real1": 75, "real2": 25},
     "same_connection": 100, "same_real": 100, "share": 1.0, "errors": {"ConnectionResetError": 0},
     "download": {"real": "real1", "bytes": 4194304, "expected": 4194304, "checksum_ok": true,
                  "elapsed": 10.2, "error": null}}

In a test or a bench, `SurvivalClient(host, vip, workdir)` runs it in the host's namespace:

    sc = SurvivalClient(lab.client, vip, str(tmp_path), connections=100, stream_ms=10000)
    sc.start(); first = sc.wait_ready(20)
    ... power off the holder, wait for the takeover ...
    sc.go(); report = sc.result(40)

Bounded: every request and the download have time limits; `result()` stops the process when its
deadline passes. Used for issue 12 (DR flow sync, and NAT through conntrackd).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from .httpd import stream_block


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                   timeout: float) -> str:
    """One keep-alive GET / on an open connection; returns the answering real (X-Real)."""
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    length, real = 0, ""
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
        elif k.strip().lower() == b"x-real":
            real = v.strip().decode(errors="replace")
    if length:
        await asyncio.wait_for(reader.readexactly(length), timeout)
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ValueError(f"bad status {head[:40]!r}")
    return real


async def _download(host: str, port: int, nbytes: int, ms: int, timeout: float,
                    started: asyncio.Event, out: dict) -> None:
    t0 = time.monotonic()
    digest = hashlib.sha256()
    got = 0
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(f"GET /stream/{nbytes}/{ms} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"x-real":
                out["real"] = v.strip().decode(errors="replace")
        started.set()
        while got < nbytes:
            # a stall longer than `timeout` (the failover plus TCP's retransmission backoff) fails
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
        writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        started.set()
    out["bytes"] = got
    out["expected"] = nbytes
    out["checksum_ok"] = got == nbytes and digest.hexdigest() == hashlib.sha256(stream_block(0, nbytes)).hexdigest()
    out["elapsed"] = round(time.monotonic() - t0, 3)


async def _wait_file(path: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        await asyncio.sleep(0.02)
    return False


def _write_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)  # readers never see half a file


async def run(host: str, port: int, connections: int, stream_bytes: int, stream_ms: int,
              ready: str | None, go: str | None, timeout: float = 5.0,
              wait_go: float = 120.0) -> dict[str, Any]:
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = []
    first: list[str | None] = []
    errors: Counter[str] = Counter()
    for _ in range(connections):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            first.append(await _request(r, w, host, timeout))
            conns.append((r, w))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors["open:" + type(exc).__name__] += 1
            conns.append(None)
            first.append(None)
    dl: dict[str, Any] = {"real": None, "error": None}
    started = asyncio.Event()
    dl_task = None
    if stream_bytes > 0:
        dl_task = asyncio.create_task(_download(host, port, stream_bytes, stream_ms,
                                                max(timeout, 15.0), started, dl))
        await asyncio.wait_for(started.wait(), timeout * 2)
    report: dict[str, Any] = {"connections": connections, "opened": sum(c is not None for c in conns),
                              "first": dict(Counter(f for f in first if f)), "download": dl}
    if ready:
        _write_json(ready, {**report, "download": dict(dl)})
    if go and not await _wait_file(go, time.monotonic() + wait_go):
        errors["go:never-came"] += 1
    same_conn = same_real = 0
    second: Counter[str] = Counter()

    async def again(i: int) -> None:
        nonlocal same_conn, same_real
        c = conns[i]
        if c is None:
            return
        try:
            real = await _request(c[0], c[1], host, timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            return
        finally:
            c[1].close()
        same_conn += 1
        second[real] += 1
        same_real += real == first[i]

    await asyncio.gather(*(again(i) for i in range(connections)))
    if dl_task is not None:
        await dl_task
    report.update({"same_connection": same_conn, "same_real": same_real, "second": dict(second),
                   "share": round(same_conn / connections, 4) if connections else 1.0,
                   "errors": dict(errors), "download": dl})
    return report


class SurvivalClient:
    """Runs `python -m hadirector.lab.survive` in `host`'s namespace (a lab Host) against `vip`."""

    def __init__(self, host: Any, vip: str, workdir: str, *, port: int = 80, connections: int = 100,
                 stream_bytes: int = 4 << 20, stream_ms: int = 10_000, timeout: float = 5.0,
                 tag: str = "survive"):
        self.host, self.vip, self.port = host, vip, port
        self.connections, self.stream_bytes, self.stream_ms = connections, stream_bytes, stream_ms
        self.timeout = timeout
        os.makedirs(workdir, exist_ok=True)
        self.ready_path = os.path.join(workdir, f"{tag}.ready.json")
        self.go_path = os.path.join(workdir, f"{tag}.go")
        self.out_path = os.path.join(workdir, f"{tag}.out.json")
        for p in (self.ready_path, self.go_path, self.out_path):
            if os.path.exists(p):
                os.unlink(p)
        self.proc = None

    def start(self) -> None:
        self.proc = self.host.python(
            "hadirector.lab.survive", "--host", self.vip, "--port", str(self.port),
            "--connections", str(self.connections), "--stream-bytes", str(self.stream_bytes),
            "--stream-ms", str(self.stream_ms), "--timeout", str(self.timeout),
            "--ready", self.ready_path, "--go", self.go_path, "--out", self.out_path)

    def _wait(self, path: str, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    return json.load(f)
            if self.proc is not None and not self.proc.alive():
                break
            time.sleep(0.05)
        out = self.proc.output()[-2000:] if self.proc else ""
        if self.proc is not None:
            self.proc.stop()
        raise AssertionError(f"survival client: no {what} after {timeout} s\n{out}")

    def wait_ready(self, timeout: float = 30.0) -> dict:
        """The phase-1 report: every connection opened and answered once, the download begun."""
        return self._wait(self.ready_path, timeout, "phase-1 report")

    def go(self) -> None:
        """Phase 2: one more request on every connection, then the download to its end."""
        with open(self.go_path, "w") as f:
            f.write("go\n")

    def result(self, timeout: float = 60.0) -> dict:
        rep = self._wait(self.out_path, timeout, "final report")
        if self.proc is not None:
            self.proc.stop()
        return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hadirector.lab.survive")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--stream-bytes", type=int, default=4 << 20)
    p.add_argument("--stream-ms", type=int, default=10_000)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--ready", default=None)
    p.add_argument("--go", default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    rep = asyncio.run(run(a.host, a.port, a.connections, a.stream_bytes, a.stream_ms, a.ready,
                          a.go, a.timeout))
    if a.out:
        _write_json(a.out, rep)
    json.dump(rep, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
