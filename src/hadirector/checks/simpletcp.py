"""simpletcp (and the UDP payload check): send `request`, expect a reply matching `receive`.

ldirectord `check_simpletcp`: connect with the virtual service's protocol, send the request
(without ldirectord's leading '/', `\\n` as newline), shut down the sending side, and read lines
until one matches `receive`; bounded by negotiatetimeout. Over TCP each line is matched; over UDP
(a virtual service with protocol udp) the request is one datagram and each reply datagram is
matched, which makes this the UDP payload check; an ICMP port unreachable ends it at once.
Beyond ldirectord, `\\r`, `\\t`, `\\\\` and `\\xHH` escapes are understood too.
"""

from __future__ import annotations

import asyncio
import socket

from .base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import close, open_stream, regex, short, unescape

MAX_READ = 1 << 20


@register("simpletcp")
async def check_simpletcp(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    try:
        pattern = regex(target.receive)
    except ValueError as e:
        return ProbeResult(False, str(e))
    payload = unescape(target.request_text).encode("latin-1", "replace")
    if target.protocol == "udp":
        return await _udp(target, payload, pattern)
    try:
        reader, writer = await open_stream(target)
    except OSError as e:
        return ProbeResult(False, f"connect: {e.strerror or e}")
    try:
        writer.write(payload)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # ldirectord: shutdown($sock, SHUT_WR)
        got, last = 0, ""
        while got < MAX_READ:
            raw = await reader.readline()
            if not raw:
                break
            got += len(raw)
            last = raw.decode("latin-1")
            if pattern.search(last):
                return ProbeResult(True, f"reply matches: {short(last, 60)!r}")
        return ProbeResult(False, f"no reply line matches {target.receive!r}" + (f"; last {short(last, 60)!r}" if last else ""))
    except (OSError, ConnectionError, ValueError) as e:
        return ProbeResult(False, f"simpletcp: {e}")
    finally:
        await close(writer)


async def _udp(target: CheckTarget, payload: bytes, pattern) -> ProbeResult:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if target.family_v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, (target.address, target.port))
        await loop.sock_sendall(sock, payload)
        for _ in range(1000):
            data = await loop.sock_recv(sock, 65535)
            text = data.decode("latin-1")
            if pattern.search(text):
                return ProbeResult(True, f"UDP reply matches: {short(text, 60)!r}")
        return ProbeResult(False, f"no UDP reply matches {target.receive!r}")
    except ConnectionRefusedError:
        return ProbeResult(False, f"UDP port {target.port} unreachable (ICMP)")
    except OSError as e:
        return ProbeResult(False, f"UDP: {e.strerror or e}")
    finally:
        sock.close()


