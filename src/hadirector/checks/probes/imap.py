"""imap, imaps: the server greets with `* OK` (or PREAUTH); with a login, LOGIN must succeed.

ldirectord `check_imap`/`check_imaps` (Net::IMAP::Simple): connect (imaps: TLS, port 993), log in
when `login` is set, LOGOUT; bounded by negotiatetimeout. RFC 9051 7.1 (greeting), 6.2.3 (LOGIN).
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, read_line, short


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _tagged(reader, tag: str) -> str:
    for _ in range(1000):
        line = await read_line(reader)
        if line.startswith(tag + " "):
            return line[len(tag) + 1:]
    raise ConnectionError("no tagged reply")


@register("imap", services=("imap", "imaps"))
async def check_imap(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    async def talk(reader, writer) -> ProbeResult:
        line = await read_line(reader)
        if not (line.startswith("* OK") or line.startswith("* PREAUTH")):
            return ProbeResult(False, f"IMAP greeting: {short(line)}")
        if target.login:
            writer.write(f"a1 LOGIN {_quote(target.login)} {_quote(target.passwd)}\r\n".encode())
            status = await _tagged(reader, "a1")
            if not status.startswith("OK"):
                return ProbeResult(False, f"IMAP login as {target.login}: {short(status)}")
        writer.write(b"a2 LOGOUT\r\n")
        await writer.drain()
        return ProbeResult(True, "IMAP OK" + (" and logged in" if target.login else ""))
    return await converse(target, "IMAP", talk, tls=target.service == "imaps")
