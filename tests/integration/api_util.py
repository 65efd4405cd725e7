"""Helpers for the HTTP API tests: a plain HTTP client (http.client, no aiohttp on the test's side)
and an event-stream reader that parses server-sent events as a browser's EventSource does."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import threading
import time


def api_address(log: str) -> tuple[str, int] | None:
    """Where the daemon's API listens, from its log line `API on http://ADDR:PORT/`."""
    m = re.search(r"API on https?://\[?([0-9a-fA-F.:]+?)\]?:(\d+)/", log)
    return (m[1], int(m[2])) if m else None


class Reply:
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class Http:
    def __init__(self, host: str, port: int, token: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.token, self.tls = host, port, token, tls

    def request(self, method: str, path: str, body: bytes | str | dict | None = None, *,
                token: str | None | bool = True, headers: dict | None = None, timeout: float = 10) -> Reply:
        """`token=True`: this client's token (if any); a string: that one; None/False: none."""
        h = dict(headers or {})
        tok = self.token if token is True else (token or None)
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if isinstance(body, dict):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn = (http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
                if self.tls is not None else http.client.HTTPConnection(self.host, self.port, timeout=timeout))
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw) -> Reply:
        return self.request("POST", path, body, **kw)


class EventStream:
    """Reads `GET /api/v1/events` in a thread: `events` (kind, data dict) in order,
    `comments` the `: ...` lines (keep-alives)."""

    def __init__(self, host: str, port: int, token: str | None = None, path: str = "/api/v1/events",
                 tls: ssl.SSLContext | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.content_type: str | None = None
        self.error: BaseException | None = None
        self._stop = False
        self.sock = socket.create_connection((host, port), timeout=5)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.sock.settimeout(0.5)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        buf = b""
        headers_done = False
        chunked = False
        body = b""
        try:
            while not self._stop:
                try:
                    data = self.sock.recv(65536)
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                if not data:
                    break
                buf += data
                if not headers_done:
                    if b"\r\n\r\n" not in buf:
                        continue
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode().split("\r\n")
                    self.status = int(lines[0].split()[1])
                    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
                    self.content_type = hdrs.get("content-type")
                    chunked = hdrs.get("transfer-encoding", "").lower() == "chunked"
                    headers_done = True
                if chunked:  # de-chunk what is complete
                    while True:
                        size_end = buf.find(b"\r\n")
                        if size_end < 0:
                            break
                        size = int(buf[:size_end].split(b";")[0], 16)
                        if len(buf) < size_end + 2 + size + 2:
                            break
                        body += buf[size_end + 2:size_end + 2 + size]
                        buf = buf[size_end + 2 + size + 2:]
                else:
                    body, buf = body + buf, b""
                while b"\n\n" in body:
                    block, body = body.split(b"\n\n", 1)
                    self._block(block.decode())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def _block(self, block: str) -> None:
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            self.events.append((kind, json.loads("\n".join(data))))

    def find(self, pred) -> dict | None:
        for kind, ev in list(self.events):
            if pred(kind, ev):
                return ev
        return None

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._t.join(2)


def client_tls(cert: str) -> ssl.SSLContext:
    """Trusts the one self-signed certificate (by its signature; its name is not the address)."""
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return ctx


def wait_http(client: Http, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get("/api/v1/auth", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
