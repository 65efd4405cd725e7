"""Helpers shared by the protocol probes: the connection frame, streams (plain or TLS), bounded
reads, regexes.

`converse()` is the one frame every protocol probe runs in: connect, let the probe's own code
speak the protocol, turn a connection failure into a failed result that names the protocol, and
always close. The scheduler bounds every probe with its timeout; these helpers only bound sizes,
so a misbehaving server cannot make a probe buffer without limit.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from functools import lru_cache
from typing import Awaitable, Callable

from ...config.check_rules import receive_pattern
from ..base import CheckTarget, ProbeResult

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


async def converse(target: CheckTarget, label: str, talk: Callable[..., Awaitable[ProbeResult]], *,
                   udp: bool = False, tls: bool = False, server_hostname: str | None = None,
                   closed: tuple[type[BaseException], ...] = (asyncio.IncompleteReadError,),
                   bad_reply: tuple[type[BaseException], ...] = (),
                   refused: tuple[type[BaseException], ...] = ()) -> ProbeResult:
    """Connect to the real's check port and run `talk`, which says up or down.

    TCP (`talk(reader, writer)`, TLS from the start with `tls`): a failed connect is
    `connect: <why>`; the server closing early (`closed`) is `<label>: connection closed (...)`;
    a reply the protocol code cannot read (`bad_reply`) is `<label>: bad reply (...)`; the
    server's own refusal (`refused`, e.g. an error packet) `<label> <error>`; any other socket or
    TLS error `<label>: <error>`.
    UDP (`udp`, `talk(loop, sock)` on a connected datagram socket): an ICMP port unreachable
    ends the check at once as `<label> port N unreachable (ICMP)`; other errors `<label>: <error>`.
    """
    if udp:
        return await _converse_udp(target, label, talk)
    try:
        reader, writer = await open_stream(target, tls=tls, server_hostname=server_hostname)
    except OSError as e:
        return ProbeResult(False, f"connect: {e.strerror or e}")
    try:
        return await talk(reader, writer)
    except refused as e:
        return ProbeResult(False, f"{label} {e}")
    except closed as e:
        return ProbeResult(False, f"{label}: connection closed ({e})")
    except bad_reply as e:
        return ProbeResult(False, f"{label}: bad reply ({e})")
    except (OSError, ConnectionError) as e:
        return ProbeResult(False, f"{label}: {e}")
    finally:
        await close(writer)


async def _converse_udp(target: CheckTarget, label: str, talk) -> ProbeResult:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if target.family_v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, (target.address, target.port))
        return await talk(loop, sock)
    except ConnectionRefusedError:
        return ProbeResult(False, f"{label} port {target.port} unreachable (ICMP)")
    except OSError as e:
        return ProbeResult(False, f"{label}: {e.strerror or e}")
    finally:
        sock.close()


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
    """A receive string compiled (config/check_rules.py, which refused a bad one at load)."""
    return receive_pattern(pattern)


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
