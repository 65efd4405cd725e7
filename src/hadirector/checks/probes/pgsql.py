"""pgsql: a PostgreSQL server answers; with `login`, a login; with a `request`, rows back.

ldirectord `check_pgsql` (DBI, DBD::Pg) always logged in (login and request were required) and
was up when the SELECT in `request` returned one or more rows. Here:
- no `login`: up when the server answers an SSLRequest with 'S' or 'N' (PostgreSQL protocol
  53.2.10), so nothing is logged on the server as a failed login;
- `login` (`passwd`, `database`, default database = login): the startup must reach
  ReadyForQuery, with trust, password, md5 or SCRAM-SHA-256 (RFC 5802, RFC 7677) authentication;
- `request` other than "/": that query must return one or more rows (ldirectord's rule).
Bounded by negotiatetimeout. Wire format: PostgreSQL frontend/backend protocol 3.0.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import struct

from ...errors import HadirectorError
from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse

MAX_MESSAGE = 1 << 24


class PgError(HadirectorError):
    pass


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readexactly(5)
    kind, length = head[:1], struct.unpack("!I", head[1:])[0]
    if length < 4 or length > MAX_MESSAGE:
        raise PgError(f"bad message length {length}")
    return kind, await reader.readexactly(length - 4)


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def error_text(body: bytes) -> str:
    fields = {}
    for part in body.split(b"\x00"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return f"{fields.get(b'S', 'ERROR')}: {fields.get(b'M', '?')}"


class Scram:
    """SCRAM-SHA-256 client (RFC 5802 3, RFC 7677); PostgreSQL sends an empty user name (n=)."""

    def __init__(self, password: str, user: str = "", nonce: str | None = None) -> None:
        self.password = password.encode()
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: str) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs.get("r", "").startswith(self.nonce):
            raise PgError("SCRAM: server nonce does not extend ours")
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: str) -> None:
        attrs = dict(kv.split("=", 1) for kv in server_final.split(","))
        expect = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        if base64.b64decode(attrs.get("v", "")) != expect:
            raise PgError("SCRAM: server signature is wrong")


async def startup(reader, writer, target: CheckTarget) -> None:
    params = {"user": target.login, "database": target.database or target.login,
              "application_name": "hadirector-check"}
    body = struct.pack("!I", 196608) + b"".join(k.encode() + b"\x00" + v.encode() + b"\x00"
                                                 for k, v in params.items()) + b"\x00"
    writer.write(struct.pack("!I", len(body) + 4) + body)
    scram = None
    for _ in range(1000):
        kind, body = await read_message(reader)
        if kind == b"E":
            raise PgError(error_text(body))
        if kind == b"Z":
            return
        if kind != b"R":
            continue  # ParameterStatus, BackendKeyData, NoticeResponse
        code = struct.unpack("!I", body[:4])[0]
        if code == 0:
            continue
        if code == 3:  # AuthenticationCleartextPassword
            writer.write(message(b"p", target.passwd.encode() + b"\x00"))
        elif code == 5:  # AuthenticationMD5Password
            inner = hashlib.md5(target.passwd.encode() + target.login.encode()).hexdigest()
            outer = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            writer.write(message(b"p", outer.encode() + b"\x00"))
        elif code == 10:  # AuthenticationSASL
            mechs = body[4:].split(b"\x00")
            if b"SCRAM-SHA-256" not in mechs:
                raise PgError(f"no supported SASL mechanism in {mechs}")
            scram = Scram(target.passwd)
            first = scram.first()
            writer.write(message(b"p", b"SCRAM-SHA-256\x00" + struct.pack("!I", len(first)) + first))
        elif code == 11 and scram is not None:  # AuthenticationSASLContinue
            writer.write(message(b"p", scram.final(body[4:].decode())))
        elif code == 12 and scram is not None:  # AuthenticationSASLFinal
            scram.verify(body[4:].decode())
        else:
            raise PgError(f"authentication method {code} is not supported")
    raise PgError("startup did not finish")


async def query_rows(reader, writer, sql: str) -> int:
    writer.write(message(b"Q", sql.encode() + b"\x00"))
    rows, error = 0, None
    for _ in range(10_000_000):
        kind, body = await read_message(reader)
        if kind == b"D":
            rows += 1
        elif kind == b"E":
            error = error_text(body)
        elif kind == b"Z":
            break
    if error:
        raise PgError(error)
    return rows


@register("pgsql", services=("pgsql",))
async def check_pgsql(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    return await converse(target, "PostgreSQL", lambda reader, writer: _session(reader, writer, target),
                          refused=(PgError,), closed=(asyncio.IncompleteReadError, ConnectionError),
                          bad_reply=(OSError, ValueError, KeyError, struct.error))


async def _session(reader, writer, target: CheckTarget) -> ProbeResult:
    """An SSLRequest without a login; else the startup, the login and the query (with one):
    ldirectord check_pgsql."""
    if not target.login:
        writer.write(struct.pack("!II", 8, 80877103))  # SSLRequest
        answer = await reader.readexactly(1)
        if answer in (b"S", b"N"):
            return ProbeResult(True, f"PostgreSQL answered SSLRequest ({answer.decode()})")
        return ProbeResult(False, f"PostgreSQL: unexpected answer {answer!r} to SSLRequest")
    await startup(reader, writer, target)
    sql = target.request_text
    rows = await query_rows(reader, writer, sql) if sql else None
    writer.write(message(b"X", b""))
    if rows is None:
        return ProbeResult(True, f"PostgreSQL login as {target.login}")
    if rows > 0:
        return ProbeResult(True, f"PostgreSQL query returned {rows} row(s)")
    return ProbeResult(False, "PostgreSQL query returned no rows")
