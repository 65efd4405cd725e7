"""http, https, http_proxy: an HTTP request whose status and body decide.

ldirectord `check_http` (LWP): the URL is `<service>://<real>:<checkport>/<request>` unless the
request is already an absolute http(s) URL; the Host header is `virtualhost`, else the URL's host
(the real's address); the method is `httpmethod` (GET or HEAD); the real is up when the response
is a success (LWP `is_success`: any 2xx, after following redirects like LWP does for GET/HEAD)
and, when `receive` is set, the body matches it as a regular expression. The whole exchange is
bounded by negotiatetimeout. For https ldirectord does not verify the certificate.

Extras (keepalived HTTP_GET/SSL_GET): `status_codes` lists the accepted codes (then redirects are
not followed, so a 301 can be expected); `tls_verify` checks the certificate against
`virtualhost` (or the address); `virtualhost` is also sent as TLS SNI. http_proxy asks the real,
as a proxy, for the absolute URL in `request`.
"""

from __future__ import annotations

import re

from .base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import client_tls, regex, short

MAX_BODY = 1 << 20
_ABSOLUTE = re.compile(r"^https?://", re.I)


def build_url(target: CheckTarget) -> tuple[str, str | None]:
    """(url, proxy) as ldirectord ld_setup builds them."""
    scheme = "https" if target.service == "https" else "http"
    req = target.request
    host = f"[{target.address}]" if target.family_v6 else target.address
    if target.service == "http_proxy":
        if not _ABSOLUTE.match(req.lstrip("/")):
            raise ValueError(f"http_proxy needs an absolute URL as request, got {req!r}")
        return req.lstrip("/"), f"http://{host}:{target.port}"
    if _ABSOLUTE.match(req.lstrip("/")):
        return req.lstrip("/"), None
    path = req[1:] if req.startswith("/") else req
    return f"{scheme}://{host}:{target.port}/{path}", None


@register("http")
async def check_http(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    import aiohttp

    try:
        url, proxy = build_url(target)
        pattern = regex(target.receive) if target.receive else None
    except ValueError as e:
        return ProbeResult(False, str(e))
    headers = {"User-Agent": "hadirector-check"}
    if target.virtualhost and target.service != "http_proxy":
        headers["Host"] = target.virtualhost
    kwargs: dict = {}
    if url.lower().startswith("https:"):
        kwargs["ssl"] = client_tls(True) if target.tls_verify else False
        if target.virtualhost:
            kwargs["server_hostname"] = target.virtualhost
    strict = bool(target.status_codes)
    session = await ctx.http_session()
    try:
        async with session.request(target.httpmethod, url, headers=headers, proxy=proxy,
                                   allow_redirects=not strict, max_redirects=7,
                                   timeout=aiohttp.ClientTimeout(total=None), **kwargs) as resp:
            status = resp.status
            status_line = f"{status} {resp.reason or ''}".strip()
            ok_status = status in target.status_codes if strict else 200 <= status < 300
            if not ok_status:
                return ProbeResult(False, f"HTTP {status_line}")
            if pattern is None:
                return ProbeResult(True, f"HTTP {status_line}")
            body = await resp.content.read(MAX_BODY)
    except aiohttp.TooManyRedirects:
        return ProbeResult(False, "too many redirects")
    except aiohttp.ClientSSLError as e:
        return ProbeResult(False, f"TLS: {e}")
    except aiohttp.ClientError as e:
        return ProbeResult(False, f"HTTP: {e}")
    except OSError as e:
        return ProbeResult(False, f"HTTP: {e.strerror or e}")
    text = body.decode("latin-1")
    if pattern.search(text):
        return ProbeResult(True, f"HTTP {status_line}, body matches")
    return ProbeResult(False, f"HTTP {status_line}, body does not match {target.receive!r}: {short(text, 60)!r}")
