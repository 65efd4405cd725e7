"""What a health check cannot use, checked when the configuration is read: pure.

A value that would make a real's every check fail - a `receive` that is not a regular
expression, an http_proxy check without an absolute URL to ask for - is refused here with its
key path, instead of showing up at run time as a real that never comes up. The probes use the
same functions (checks/probes/_wire.py `regex`, http.py `build_url`) and keep their own
failure as a last line of defence.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Balancer

ABSOLUTE_URL = re.compile(r"^https?://", re.I)


def receive_pattern(pattern: str) -> re.Pattern[str]:
    """ldirectord receive strings are Perl regexes; Python's re reads the common subset."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"receive {pattern!r} is not a valid regular expression: {e}") from None


def proxy_url(request: str) -> str:
    """ldirectord ld_setup: an http_proxy check asks the real, as a proxy, for `request`, which
    must be an absolute http(s) URL."""
    url = request.lstrip("/")
    if not ABSOLUTE_URL.match(url):
        raise ValueError(f"http_proxy needs an absolute URL as request, got {request!r}")
    return url


def check_problems(balancer: "Balancer") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, vs in enumerate(balancer.virtual):
        where = f"balancer.virtual.{i}"
        if vs.checktype not in ("negotiate", "combined"):
            continue  # request and receive are only read by negotiate checks
        receives = [(f"{where}.receive", vs.receive)]
        receives += [(f"{where}.reals.{j}.receive", r.receive) for j, r in enumerate(vs.reals) if r.receive]
        for path, text in receives:
            if text:
                try:
                    receive_pattern(text)
                except ValueError as e:
                    out.append((path, str(e)))
        if vs.service == "http_proxy":
            requests = [(f"{where}.request", vs.request)]
            requests += [(f"{where}.reals.{j}.request", r.request) for j, r in enumerate(vs.reals) if r.request]
            for path, text in requests:
                try:
                    proxy_url(text)
                except ValueError as e:
                    out.append((path, str(e)))
    return out
