"""mysql: the server's handshake greeting; with `login`, a login; with a `request`, rows back.

ldirectord `check_mysql` (DBI) always logged in (login and request were required) and was up
when the SELECT in `request` returned at least one row. Here:
- no `login`: up when the server sends a protocol-10 handshake greeting (not an error packet,
  such as "host is not allowed");
- `login` (and `passwd`, `database`): the login must succeed (mysql_native_password, also after
  an auth switch);
- `request` other than "/": that query must return one or more rows (ldirectord's rule).
Bounded by negotiatetimeout. Wire format: MySQL client/server protocol (HandshakeV10,
HandshakeResponse41, COM_QUERY text result sets).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct

from ...errors import HadirectorError
from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse

CLIENT_LONG_PASSWORD, CLIENT_CONNECT_WITH_DB, CLIENT_PROTOCOL_41 = 0x1, 0x8, 0x200
CLIENT_SECURE_CONNECTION, CLIENT_PLUGIN_AUTH = 0x8000, 0x80000
MAX_PACKET = 1 << 24


class MySQLError(HadirectorError):
    pass


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(4)
    length = head[0] | head[1] << 8 | head[2] << 16
    return head[3], await reader.readexactly(length)


def write_packet(writer: asyncio.StreamWriter, seq: int, payload: bytes) -> None:
    writer.write(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def error_text(payload: bytes) -> str:
    code = struct.unpack("<H", payload[1:3])[0] if len(payload) >= 3 else 0
    msg = payload[3:]
    if msg[:1] == b"#":
        msg = msg[6:]  # SQL state marker and state
    return f"error {code}: {msg.decode('utf-8', 'replace')}"


def parse_greeting(p: bytes) -> tuple[str, bytes, str, int]:
    """(server version, 20-byte scramble, auth plugin, capabilities) from HandshakeV10."""
    if not p:
        raise MySQLError("empty greeting")
    if p[0] == 0xFF:
        raise MySQLError(error_text(p))
    if p[0] != 10:
        raise MySQLError(f"unsupported protocol version {p[0]}")
    end = p.index(b"\x00", 1)
    version = p[1:end].decode("latin-1")
    pos = end + 1 + 4
    part1 = p[pos:pos + 8]
    pos += 9
    caps = struct.unpack("<H", p[pos:pos + 2])[0]
    pos += 2 + 1 + 2
    caps |= struct.unpack("<H", p[pos:pos + 2])[0] << 16
    pos += 2
    data_len = p[pos]
    pos += 1 + 10
    n2 = max(13, data_len - 8)
    part2 = p[pos:pos + n2].rstrip(b"\x00")
    pos += n2
    plugin = p[pos:].split(b"\x00", 1)[0].decode("latin-1") if caps & CLIENT_PLUGIN_AUTH else "mysql_native_password"
    return version, part1 + part2, plugin, caps


def native_password(password: str, scramble: bytes) -> bytes:
    """SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))."""
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(scramble[:20] + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc_int(p: bytes, pos: int) -> tuple[int, int]:
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(b)
    if size is None:
        raise MySQLError("bad length-encoded integer")
    return int.from_bytes(p[pos + 1:pos + 1 + size], "little"), pos + 1 + size


async def login(reader, writer, target: CheckTarget, scramble: bytes, plugin: str) -> None:
    caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    if target.database:
        caps |= CLIENT_CONNECT_WITH_DB
    auth = native_password(target.passwd, scramble) if plugin == "mysql_native_password" else b""
    payload = (struct.pack("<IIB", caps, MAX_PACKET, 33) + b"\x00" * 23 + target.login.encode() + b"\x00"
               + bytes([len(auth)]) + auth
               + (target.database.encode() + b"\x00" if target.database else b"")
               + b"mysql_native_password\x00")
    write_packet(writer, 1, payload)
    for _ in range(4):
        seq, p = await read_packet(reader)
        if p[:1] == b"\x00":
            return
        if p[:1] == b"\xff":
            raise MySQLError(error_text(p))
        if p[:1] == b"\xfe":  # AuthSwitchRequest
            name, _, data = p[1:].partition(b"\x00")
            if name != b"mysql_native_password":
                raise MySQLError(f"server asks for auth plugin {name.decode('latin-1')}, not supported")
            write_packet(writer, seq + 1, native_password(target.passwd, data.rstrip(b"\x00")))
            continue
        raise MySQLError(f"unexpected login reply {p[:1].hex()}")
    raise MySQLError("login did not finish")


async def query_rows(reader, writer, sql: str) -> int:
    write_packet(writer, 0, b"\x03" + sql.encode())
    _, p = await read_packet(reader)
    if p[:1] == b"\xff":
        raise MySQLError(error_text(p))
    if p[:1] == b"\x00":
        return 0  # not a result set
    ncols, _ = lenenc_int(p, 0)
    for _ in range(ncols):
        await read_packet(reader)
    _, p = await read_packet(reader)  # EOF after the column definitions
    rows = 0
    for _ in range(10_000_000):
        _, p = await read_packet(reader)
        if p[:1] == b"\xfe" and len(p) < 9:
            return rows
        if p[:1] == b"\xff":
            raise MySQLError(error_text(p))
        rows += 1
    return rows


@register("mysql", services=("mysql",))
async def check_mysql(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    return await converse(target, "MySQL", lambda reader, writer: _session(reader, writer, target),
                          refused=(MySQLError,), closed=(asyncio.IncompleteReadError, ConnectionError),
                          bad_reply=(OSError, ValueError, IndexError, struct.error))


async def _session(reader, writer, target: CheckTarget) -> ProbeResult:
    """The handshake, the login (with one) and the query (with one): ldirectord check_mysql."""
    _, greeting = await read_packet(reader)
    version, scramble, plugin, _ = parse_greeting(greeting)
    if not target.login:
        return ProbeResult(True, f"MySQL greeting, server {version}")
    await login(reader, writer, target, scramble, plugin)
    sql = target.request_text
    if not sql:
        write_packet(writer, 0, b"\x01")  # COM_QUIT
        return ProbeResult(True, f"MySQL login as {target.login}")
    rows = await query_rows(reader, writer, sql)
    write_packet(writer, 0, b"\x01")
    if rows > 0:
        return ProbeResult(True, f"MySQL query returned {rows} row(s)")
    return ProbeResult(False, "MySQL query returned no rows")
