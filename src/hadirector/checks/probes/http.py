"""http, https, http_proxy: an HTTP request whose status and body decide.

ldirectord `check_http` (LWP): the URL is `<service>://<real>:<checkport>/<request>` unless the
request is already an absolute http(s) URL; the Host header is `virtualhost`, else the URL's host
(the real's address); the method is `httpmethod` (GET or HEAD); the real is up when the response
is a success (LWP `is_success`: any 2xx, after following redirects like LWP does for GET/HEAD, at
most 7, the Host header then being the new URL's) and, when `receive` is set, the body matches it
as a regular expression. The whole exchange is bounded by negotiatetimeout. For https ldirectord
does not verify the certificate.

Extras (keepalived HTTP_GET/SSL_GET): `status_codes` lists the accepted codes (then redirects are
not followed, so a 301 can be expected); `tls_verify` checks the certificate against
`virtualhost` (or the address); `virtualhost` is also sent as TLS SNI. http_proxy asks the real,
as a proxy, for the absolute URL in `request`.

The client is our own small HTTP/1.1 one (RFC 9112: status line, headers, Content-Length,
chunked transfer coding, `Connection: close`): it costs a fraction of a general client's CPU per
check, and reads the body only when `receive` needs it.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urljoin, urlsplit

from ...config.check_rules import ABSOLUTE_URL, proxy_url
from ...errors import HadirectorError
from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import client_tls, regex, short

MAX_BODY = 1 << 20
MAX_HEADERS = 100
MAX_REDIRECTS = 7  # LWP::UserAgent max_redirect
_ABSOLUTE = ABSOLUTE_URL
_REDIRECTS = (301, 302, 303, 307, 308)


class HTTPError(HadirectorError):
    pass


def build_url(target: CheckTarget) -> tuple[str, str | None]:
    """(url, proxy address) as ldirectord ld_setup builds them."""
    scheme = "https" if target.service == "https" else "http"
    req = target.request
    host = f"[{target.address}]" if target.family_v6 else target.address
    if target.service == "http_proxy":
        return proxy_url(req), f"{target.address}:{target.port}"
    if _ABSOLUTE.match(req.lstrip("/")):
        return req.lstrip("/"), None
    path = req[1:] if req.startswith("/") else req
    return f"{scheme}://{host}:{target.port}/{path}", None


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            return e.partial
        raise HTTPError("connection closed before the response") from None
    except asyncio.LimitOverrunError:
        raise HTTPError("response line too long") from None


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        for _ in range(100_000):
            size_line = (await _read_line(reader)).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise HTTPError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0 or len(out) >= MAX_BODY:
                break
            out += await reader.readexactly(min(size, MAX_BODY - len(out)))
            if len(out) < MAX_BODY:
                await _read_line(reader)  # the CRLF after the chunk
        return bytes(out)
    length = headers.get("content-length")
    if length is not None and length.strip().isdigit():
        try:
            return await reader.readexactly(min(int(length), MAX_BODY))
        except asyncio.IncompleteReadError as e:
            return e.partial
    return await reader.read(MAX_BODY) if MAX_BODY else b""


async def fetch(url: str, method: str, host_header: str | None, *, proxy: str | None, tls_verify: bool,
                sni: str | None, want_body: bool) -> tuple[int, str, dict[str, str], bytes]:
    """One request, `Connection: close`. Returns (status, reason, headers, body)."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise HTTPError(f"cannot fetch {url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    if proxy is not None:
        phost, _, pport = proxy.rpartition(":")
        conn_host, conn_port, target = phost.strip("[]"), int(pport), url
    else:
        conn_host, conn_port = u.hostname, port
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    tls = None
    server_hostname = None
    if u.scheme == "https" and proxy is None:
        tls = client_tls(tls_verify)
        server_hostname = sni or u.hostname
    reader, writer = await asyncio.open_connection(conn_host, conn_port, ssl=tls, server_hostname=server_hostname,
                                                   limit=65536)
    try:
        host = host_header or u.netloc
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hadirector-check\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1"))
        while True:
            line = (await _read_line(reader)).decode("latin-1").rstrip("\r\n")
            parts = line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise HTTPError(f"not an HTTP response: {short(line, 60)!r}")
            status, reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADERS + 1):
                h = (await _read_line(reader)).decode("latin-1").rstrip("\r\n")
                if not h:
                    break
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            else:
                raise HTTPError("too many header lines")
            if 100 <= status < 200 and status != 101:
                continue  # interim response (RFC 9110 15.2)
            break
        body = b""
        if want_body and method != "HEAD" and status not in (204, 304):
            body = await _body(reader, headers)
        return status, reason, headers, body
    finally:
        writer.close()


@register("http", services=("http", "https", "http_proxy"))
async def check_http(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    try:
        url, proxy = build_url(target)
        pattern = regex(target.receive) if target.receive else None
    except ValueError as e:
        return ProbeResult(False, str(e))
    strict = bool(target.status_codes)
    host_header = target.virtualhost if target.service != "http_proxy" else None
    try:
        for hop in range(MAX_REDIRECTS + 1):
            status, reason, headers, body = await fetch(
                url, target.httpmethod, host_header, proxy=proxy, tls_verify=target.tls_verify,
                sni=target.virtualhost, want_body=pattern is not None)
            if strict or status not in _REDIRECTS or "location" not in headers:
                break
            if hop == MAX_REDIRECTS:
                return ProbeResult(False, "too many redirects")
            url = urljoin(url, headers["location"])
            host_header = None  # LWP drops the Host header of a redirected request
    except HTTPError as e:
        return ProbeResult(False, f"HTTP: {e}")
    except OSError as e:  # connection errors, TLS errors (ssl.SSLError is an OSError)
        kind = "TLS" if e.__class__.__module__ == "ssl" else "HTTP"
        return ProbeResult(False, f"{kind}: {e.strerror or e}")
    status_line = f"{status} {reason}".strip()
    ok_status = status in target.status_codes if strict else 200 <= status < 300
    if not ok_status:
        return ProbeResult(False, f"HTTP {status_line}")
    if pattern is None:
        return ProbeResult(True, f"HTTP {status_line}")
    text = body.decode("latin-1")
    if pattern.search(text):
        return ProbeResult(True, f"HTTP {status_line}, body matches")
    return ProbeResult(False, f"HTTP {status_line}, body does not match {target.receive!r}: {short(text, 60)!r}")
