"""pop, pops: the server greets with +OK; with a login, USER/PASS must be accepted (RFC 1939).

ldirectord `check_pop` (Mail::POP3Client): connect (pops: TLS from the start, port 995), and when
`login` is set log in; bounded by negotiatetimeout.
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, read_line, short


@register("pop", services=("pop", "pops"))
async def check_pop(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    async def talk(reader, writer) -> ProbeResult:
        line = await read_line(reader)
        if not line.startswith("+OK"):
            return ProbeResult(False, f"POP3 greeting: {short(line)}")
        if target.login:
            for cmd in (f"USER {target.login}", f"PASS {target.passwd}"):
                writer.write(cmd.encode() + b"\r\n")
                line = await read_line(reader)
                if not line.startswith("+OK"):
                    return ProbeResult(False, f"POP3 login as {target.login}: {short(line)}")
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return ProbeResult(True, "POP3 +OK" + (" and logged in" if target.login else ""))
    return await converse(target, "POP3", talk, tls=target.service == "pops")
