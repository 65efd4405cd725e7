"""simpletcp (and the UDP payload check): send `request`, expect a reply matching `receive`.

ldirectord `check_simpletcp`: connect with the virtual service's protocol, send the request
(without ldirectord's leading '/', `\\n` as newline), shut down the sending side, and read lines
until one matches `receive`; bounded by negotiatetimeout. Over TCP each line is matched; over UDP
(a virtual service with protocol udp) the request is one datagram and each reply datagram is
matched, which makes this the UDP payload check; an ICMP port unreachable ends it at once.
Beyond ldirectord, `\\r`, `\\t`, `\\\\` and `\\xHH` escapes are understood too.
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, regex, short, unescape

MAX_READ = 1 << 20


@register("simpletcp", services=("simpletcp",))
async def check_simpletcp(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    try:
        pattern = regex(target.receive)
    except ValueError as e:
        return ProbeResult(False, str(e))
    payload = unescape(target.request_text).encode("latin-1", "replace")
    if target.protocol == "udp":
        return await converse(target, "UDP", lambda loop, sock: _udp(loop, sock, target, payload, pattern),
                              udp=True)

    async def talk(reader, writer) -> ProbeResult:
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
    return await converse(target, "simpletcp", talk, bad_reply=(ValueError,))


async def _udp(loop, sock, target: CheckTarget, payload: bytes, pattern) -> ProbeResult:
    await loop.sock_sendall(sock, payload)
    for _ in range(1000):
        data = await loop.sock_recv(sock, 65535)
        text = data.decode("latin-1")
        if pattern.search(text):
            return ProbeResult(True, f"UDP reply matches: {short(text, 60)!r}")
    return ProbeResult(False, f"no UDP reply matches {target.receive!r}")


