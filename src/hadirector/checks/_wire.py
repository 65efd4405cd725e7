"""Helpers shared by the protocol probes: streams (plain or TLS), bounded reads, regexes.

The scheduler bounds every probe with its timeout; these helpers only bound sizes, so a
misbehaving server cannot make a probe buffer without limit.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from functools import lru_cache

from .base import CheckTarget

MAX_LINE = 8192


def client_tls(verify: bool, server_hostname: str | None = None) -> ssl.SSLContext:
    """TLS for checks. ldirectord (LWP with verify_hostname => 0) does not verify; tls_verify does."""
    if verify:
        return ssl.create_default_context()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def open_stream(target: CheckTarget, tls: bool = False,
                      server_hostname: str | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if tls:
        sni = server_hostname or target.virtualhost
        return await asyncio.open_connection(
            target.address, target.port, ssl=client_tls(target.tls_verify, sni),
            server_hostname=sni or target.address, limit=MAX_LINE * 4)
    return await asyncio.open_connection(target.address, target.port, limit=MAX_LINE * 4)


async def read_line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise ConnectionError("connection closed by the server") from None
        raw = e.partial
    except asyncio.LimitOverrunError:
        raise ConnectionError("line too long") from None
    return raw.decode("latin-1").rstrip("\r\n")


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    """An SMTP/FTP-style reply, multi-line `250-...` continued until `250 ...` (RFC 5321 4.2.1)."""
    lines = []
    for _ in range(100):
        line = await read_line(reader)
        lines.append(line)
        if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3] != "-"):
            return int(line[:3]), "\n".join(lines)
    raise ConnectionError("reply has too many lines")


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass


@lru_cache(maxsize=1024)
def regex(pattern: str) -> re.Pattern[str]:
    """ldirectord receive strings are Perl regexes; Python's re reads the common subset."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"receive {pattern!r} is not a valid regular expression: {e}") from None


def unescape(text: str) -> str:
    r"""simpletcp/UDP request text. ldirectord turns `\n` into a newline; we also read `\r`, `\t`,
    `\\` and `\xHH` so binary payloads can be written."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in "nrt\\":
                out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[n])
                i += 2
                continue
            if n == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


def short(text: str, n: int = 120) -> str:
    text = text.replace("\r", "").replace("\n", " ")
    return text if len(text) <= n else text[:n] + "..."
