"""radius: an Access-Request for `login`/`passwd` with `secret`, answered with Access-Accept.

ldirectord `check_radius` (Authen::Radius check_pwd): up only on Access-Accept; a reject, a
timeout or no answer is down; bounded by checktimeout. The packet follows RFC 2865 (3, 4.1,
5.1 User-Name, 5.2 User-Password hiding) with a Message-Authenticator (RFC 3579 3.2); the reply's
Response Authenticator is verified, so a wrong shared secret shows as its own reason.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
USER_NAME, USER_PASSWORD, NAS_IDENTIFIER, MESSAGE_AUTHENTICATOR = 1, 2, 32, 80


def _attr(t: int, value: bytes) -> bytes:
    if len(value) > 253:
        raise ValueError(f"RADIUS attribute {t} is longer than 253 bytes")
    return bytes([t, len(value) + 2]) + value


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2: c(i) = p(i) xor MD5(S + c(i-1)), c(0) = the request authenticator."""
    padded = password + b"\x00" * (-len(password) % 16 or (16 if not password else 0))
    out, prev = b"", authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + prev).digest()
        block = bytes(a ^ b for a, b in zip(padded[i:i + 16], key))
        out += block
        prev = block
    return out


def access_request(ident: int, login: str, passwd: str, secret: bytes, authenticator: bytes, nas: str) -> bytes:
    attrs = (_attr(USER_NAME, login.encode()) + _attr(USER_PASSWORD, hide_password(passwd.encode(), secret, authenticator))
             + _attr(NAS_IDENTIFIER, nas.encode()[:253]) + _attr(MESSAGE_AUTHENTICATOR, b"\x00" * 16))
    length = 20 + len(attrs)
    packet = struct.pack("!BBH", ACCESS_REQUEST, ident, length) + authenticator + attrs
    mac = hmac.new(secret, packet, hashlib.md5).digest()
    return packet[:-16] + mac


def verify_reply(reply: bytes, ident: int, authenticator: bytes, secret: bytes) -> int:
    """The reply's code, after checking its identifier, length and Response Authenticator."""
    if len(reply) < 20:
        raise ValueError("RADIUS reply shorter than 20 bytes")
    code, rid, length = struct.unpack("!BBH", reply[:4])
    if rid != ident or length > len(reply) or length < 20:
        raise ValueError("RADIUS reply does not belong to this request")
    expect = hashlib.md5(reply[:4] + authenticator + reply[20:length] + secret).digest()
    if not hmac.compare_digest(expect, reply[4:20]):
        raise ValueError("RADIUS reply authenticator is wrong (shared secret mismatch?)")
    return code


@register("radius", services=("radius",))
async def check_radius(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    secret = target.secret.encode()
    authenticator = os.urandom(16)
    ident = authenticator[0]
    try:
        packet = access_request(ident, target.login, target.passwd, secret, authenticator, ctx.hostname)
    except ValueError as e:
        return ProbeResult(False, str(e))

    async def talk(loop, sock) -> ProbeResult:
        await loop.sock_sendall(sock, packet)
        for _ in range(20):
            reply = await loop.sock_recv(sock, 4096)
            try:
                code = verify_reply(reply, ident, authenticator, secret)
            except ValueError as e:
                reason = str(e)
                if "secret" in reason:
                    return ProbeResult(False, reason)
                continue  # a stray datagram: keep waiting
            if code == ACCESS_ACCEPT:
                return ProbeResult(True, f"RADIUS Access-Accept for {target.login}")
            name = {ACCESS_REJECT: "Access-Reject", ACCESS_CHALLENGE: "Access-Challenge"}.get(code, f"code {code}")
            return ProbeResult(False, f"RADIUS {name} for {target.login}")
        return ProbeResult(False, "RADIUS: no valid reply")
    return await converse(target, "RADIUS", talk, udp=True)
