"""ldap, ldaps: bind, then a base search of `request` that returns exactly one entry.

ldirectord `check_ldap` (Net::LDAP): connect (ldaps: TLS), simple bind as `login`/`passwd` (or
anonymous), search base `request` (without its leading '/'; the default "/" gives the root DSE)
with scope base and filter (objectClass=*); up when exactly one entry comes back and, if `receive`
is set, its DN matches it. Bounded by checktimeout, as ldirectord's alarm.
The LDAPv3 messages (RFC 4511 4.2, 4.5.1, 4.3) are encoded here with a small BER writer/reader.
"""

from __future__ import annotations

import asyncio

from ..base import CheckTarget, ProbeContext, ProbeResult, register
from ._wire import converse, regex

MAX_MESSAGE = 1 << 20
RESULT_NAMES = {0: "success", 32: "noSuchObject", 34: "invalidDNSyntax", 48: "inappropriateAuthentication",
                49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
                53: "unwillingToPerform"}


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def ber_int(n: int, tag: int = 0x02) -> bytes:
    return tlv(tag, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def message(msgid: int, op: bytes) -> bytes:
    return tlv(0x30, ber_int(msgid) + op)


def bind_request(msgid: int, dn: str, password: str) -> bytes:
    return message(msgid, tlv(0x60, ber_int(3) + tlv(0x04, dn.encode()) + tlv(0x80, password.encode())))


def search_request(msgid: int, base: str) -> bytes:
    body = (tlv(0x04, base.encode()) + ber_int(0, 0x0A) + ber_int(0, 0x0A) + ber_int(0) + ber_int(0)
            + tlv(0x01, b"\x00") + tlv(0x87, b"objectClass") + tlv(0x30, tlv(0x04, b"1.1")))
    return message(msgid, tlv(0x63, body))


def parse_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, next position); ValueError on a malformed element."""
    if pos + 2 > len(data):
        raise ValueError("truncated BER element")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad BER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > len(data):
        raise ValueError("truncated BER content")
    return tag, data[pos:pos + length], pos + length


async def read_message(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Read one LDAPMessage: (message id, protocolOp tag, protocolOp content)."""
    head = await reader.readexactly(2)
    if head[0] != 0x30:
        raise ValueError(f"not an LDAP message (tag {head[0]:#x})")
    extra = b""
    if head[1] & 0x80:
        n = head[1] & 0x7F
        if n == 0 or n > 4:
            raise ValueError("bad BER length")
        extra = await reader.readexactly(n)
        length = int.from_bytes(extra, "big")
    else:
        length = head[1]
    if length > MAX_MESSAGE:
        raise ValueError("LDAP message too large")
    body = await reader.readexactly(length)
    tag, idbytes, pos = parse_tlv(body)
    optag, op, _ = parse_tlv(body, pos)
    return int.from_bytes(idbytes, "big", signed=True), optag, op


def result_code(op: bytes) -> tuple[int, str]:
    tag, code, pos = parse_tlv(op)
    _, _matched, pos = parse_tlv(op, pos)
    _, diag, _ = parse_tlv(op, pos)
    n = int.from_bytes(code, "big")
    text = RESULT_NAMES.get(n, f"result {n}")
    return n, text + (f" ({diag.decode('utf-8', 'replace')})" if diag else "")


@register("ldap", services=("ldap", "ldaps"))
async def check_ldap(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    try:
        pattern = regex(target.receive) if target.receive else None
    except ValueError as e:
        return ProbeResult(False, str(e))

    async def talk(reader, writer) -> ProbeResult:
        dn, pw = (target.login, target.passwd) if target.login and target.passwd else ("", "")
        writer.write(bind_request(1, dn, pw))
        msgid, tag, op = await read_message(reader)
        if tag != 0x61:
            return ProbeResult(False, f"LDAP bind: unexpected reply tag {tag:#x}")
        code, text = result_code(op)
        if code != 0:
            return ProbeResult(False, f"LDAP bind{' as ' + dn if dn else ''}: {text}")
        base = target.request_text
        writer.write(search_request(2, base))
        dns: list[str] = []
        for _ in range(10_000):
            msgid, tag, op = await read_message(reader)
            if tag == 0x64:  # SearchResultEntry
                _, name, _ = parse_tlv(op)
                dns.append(name.decode("utf-8", "replace"))
            elif tag == 0x65:  # SearchResultDone
                code, text = result_code(op)
                break
            elif tag == 0x73:  # SearchResultReference: ignored
                continue
            else:
                return ProbeResult(False, f"LDAP search: unexpected reply tag {tag:#x}")
        writer.write(tlv(0x30, ber_int(3) + b"\x42\x00"))  # UnbindRequest
        if code != 0:
            return ProbeResult(False, f"LDAP search {base!r}: {text}")
        if len(dns) != 1:
            return ProbeResult(False, f"LDAP search {base!r}: {len(dns)} entries, expected 1")
        if pattern is not None and not pattern.search(dns[0]):
            return ProbeResult(False, f"LDAP entry {dns[0]!r} does not match {target.receive!r}")
        return ProbeResult(True, f"LDAP bound and found {dns[0] or 'the root DSE'!r}")
    return await converse(target, "LDAP", talk, tls=target.service == "ldaps",
                          closed=(asyncio.IncompleteReadError, ConnectionError), bad_reply=(ValueError,))
