"""ftp: greeting 220, login accepted (230); with a file as `request`, its content matches `receive`.

ldirectord `check_ftp` (Net::FTP): connect, log in as `login` (default anonymous) with `passwd`
(default ldirectord@<hostname>; ours: hadirector@<hostname>), cwd /, binary, passive, get the
`request` file and match `receive` against its content; bounded by negotiatetimeout.
Difference: ldirectord matches the (possibly empty) content even when the login failed, so an
empty `receive` made it always up; here the greeting and the login must succeed, and a file is
fetched only when `request` names one. Passive data connections go to the real's address with the
port from the 227 reply (as curl's --ftp-skip-pasv-ip), never to another host. RFC 959.
"""

from __future__ import annotations

import asyncio
import re

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import close, converse, read_reply, regex, short

MAX_FILE = 1 << 20
_PASV = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


async def _cmd(reader, writer, line: str) -> tuple[int, str]:
    writer.write(line.encode() + b"\r\n")
    return await read_reply(reader)


@register("ftp", services=("ftp",))
async def check_ftp(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    login = target.login or "anonymous"
    passwd = target.passwd or f"hadirector@{ctx.hostname}"
    path = target.request_text
    try:
        pattern = regex(target.receive) if target.receive else None
    except ValueError as e:
        return ProbeResult(False, str(e))

    async def talk(reader, writer) -> ProbeResult:
        code, text = await read_reply(reader)
        if code != 220:
            return ProbeResult(False, f"FTP greeting: {short(text)}")
        code, text = await _cmd(reader, writer, f"USER {login}")
        if code == 331:
            code, text = await _cmd(reader, writer, f"PASS {passwd}")
        if code != 230:
            return ProbeResult(False, f"FTP login as {login}: {short(text)}")
        if not path:
            await _cmd(reader, writer, "QUIT")
            return ProbeResult(True, f"FTP logged in as {login}")
        await _cmd(reader, writer, "CWD /")
        code, text = await _cmd(reader, writer, "TYPE I")
        code, text = await _cmd(reader, writer, "PASV")
        m = _PASV.search(text)
        if code != 227 or not m:
            return ProbeResult(False, f"FTP PASV: {short(text)}")
        dport = int(m.group(5)) * 256 + int(m.group(6))
        dreader, dwriter = await asyncio.open_connection(target.address, dport)
        try:
            code, text = await _cmd(reader, writer, f"RETR {path}")
            if code not in (125, 150):
                return ProbeResult(False, f"FTP RETR {path}: {short(text)}")
            data = await dreader.read(MAX_FILE)
            chunks = [data]
            while data and sum(map(len, chunks)) < MAX_FILE:
                data = await dreader.read(MAX_FILE)
                chunks.append(data)
        finally:
            await close(dwriter)
        code, text = await read_reply(reader)
        content = b"".join(chunks).decode("latin-1")
        await _cmd(reader, writer, "QUIT")
        if code not in (226, 250):
            return ProbeResult(False, f"FTP transfer of {path}: {short(text)}")
        if pattern is None or pattern.search(content):
            return ProbeResult(True, f"FTP fetched {path}" + (", content matches" if pattern else ""))
        return ProbeResult(False, f"FTP {path} does not match {target.receive!r}")
    return await converse(target, "FTP", talk)
