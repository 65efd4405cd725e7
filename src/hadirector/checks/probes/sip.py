"""sip: an OPTIONS request answered with `SIP/2.0 200 OK` (RFC 3261 11).

ldirectord `check_sip`: OPTIONS sip:<login> over the virtual service's protocol (UDP for the usual
port 5060), To/From/Contact <sip:login>, and the first status line must be 200 OK; bounded by
negotiatetimeout. `login` defaults to hadirector@<hostname> (ldirectord: ldirectord@<hostname>).
Provisional 1xx replies are skipped (RFC 3261 8.1.3.2). The Via transport names the protocol
actually used (ldirectord always wrote UDP).
"""

from __future__ import annotations

import os

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, read_line, short


def options_request(target: CheckTarget, login: str, local: tuple[str, int], transport: str) -> bytes:
    call_id = os.urandom(8).hex()
    branch = "z9hG4bK" + os.urandom(6).hex()  # RFC 3261 8.1.1.7 magic cookie
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    return (f"OPTIONS sip:{login} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {host}:{local[1]};branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"To: <sip:{login}>\r\n"
            f"From: <sip:{login}>;tag={os.urandom(4).hex()}\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 63104 OPTIONS\r\n"
            f"Contact: <sip:{login}>\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def _status(line: str) -> int | None:
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


@register("sip", services=("sip",))
async def check_sip(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    login = target.login or f"hadirector@{ctx.hostname}"
    if target.protocol != "udp":
        return await converse(target, "SIP", lambda reader, writer: _tcp(reader, writer, target, login))

    async def talk(loop, sock) -> ProbeResult:
        await loop.sock_sendall(sock, options_request(target, login, sock.getsockname()[:2], "UDP"))
        for _ in range(20):
            data = await loop.sock_recv(sock, 65535)
            first = data.split(b"\r\n", 1)[0].decode("latin-1")
            code = _status(first)
            if code is not None and 100 <= code < 200:
                continue
            if code == 200:
                return ProbeResult(True, first)
            return ProbeResult(False, f"SIP reply: {short(first)}")
        return ProbeResult(False, "SIP: only provisional replies")
    return await converse(target, "SIP", talk, udp=True)


async def _tcp(reader, writer, target: CheckTarget, login: str) -> ProbeResult:
    writer.write(options_request(target, login, writer.get_extra_info("sockname")[:2], "TCP"))
    for _ in range(20):
        first = await read_line(reader)
        code = _status(first)
        if code is not None and 100 <= code < 200:
            while await read_line(reader):  # skip the provisional reply's headers
                pass
            continue
        if code == 200:
            return ProbeResult(True, first)
        return ProbeResult(False, f"SIP reply: {short(first)}")
    return ProbeResult(False, "SIP: only provisional replies")
