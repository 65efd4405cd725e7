"""smtp, submission: the server greets with 220 and accepts EHLO (or HELO), then QUIT.

ldirectord `check_smtp` (Net::SMTP->new): connect, read the banner, say hello; bounded by
negotiatetimeout. RFC 5321 4.3.2: 220 is the greeting, 250 the reply to EHLO/HELO.
"""

from __future__ import annotations

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, read_reply, short


@register("smtp", services=("smtp", "submission"))
async def check_smtp(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    async def talk(reader, writer) -> ProbeResult:
        code, text = await read_reply(reader)
        if code != 220:
            return ProbeResult(False, f"SMTP greeting: {short(text)}")
        writer.write(f"EHLO {ctx.hostname}\r\n".encode())
        code, text = await read_reply(reader)
        if code != 250:  # RFC 5321 4.1.4: a client may fall back to HELO
            writer.write(f"HELO {ctx.hostname}\r\n".encode())
            code, text = await read_reply(reader)
            if code != 250:
                return ProbeResult(False, f"SMTP HELO: {short(text)}")
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return ProbeResult(True, "SMTP 220 and 250")
    return await converse(target, "SMTP", talk)
