"""nntp: the server's greeting starts with 2 (RFC 3977 5.1: 200/201).

ldirectord `check_nntp`: connect, read up to 64 bytes, up if they start with "2".
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, read_line, short


@register("nntp", services=("nntp",))
async def check_nntp(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    async def talk(reader, writer) -> ProbeResult:
        line = await read_line(reader)
        if line.startswith("2"):
            writer.write(b"QUIT\r\n")
            return ProbeResult(True, f"NNTP {short(line, 40)}")
        return ProbeResult(False, f"NNTP greeting: {short(line)}")
    return await converse(target, "NNTP", talk)
