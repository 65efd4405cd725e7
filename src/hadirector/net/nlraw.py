"""A plain netlink socket for request/answer exchanges in the calling thread, and the message codec.

For the reads on an nft data plane's hot path (dataplane/netfacts.py: addresses, routes,
neighbours over rtnetlink; dataplane/nft_read.py: nf_tables' tables, counters and set sizes over
nfnetlink), where pyroute2's synchronous API costs about a millisecond per request and
libnftables' listings fetch the whole ruleset, set elements included. The socket belongs to the
network namespace of the thread that makes it (net/netns.py); it is not thread-safe.

`request()` sends one message and reads its whole answer (one message, or a dump up to
NLMSG_DONE); answers to an earlier request (another sequence number) are skipped. An error
answer raises `NetlinkRefused` (its errno); a dump the kernel marked interrupted
(NLM_F_DUMP_INTR: the table changed meanwhile) says so in `Answer.interrupted`.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import HadirectorError

# linux/netlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR = 0x1, 0x2, 0x10
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED | NLA_F_NET_BYTEORDER
RECV_SIZE = 1 << 16  # the kernel sizes dump datagrams to the reader's buffer (netlink_dump)

NLH = struct.Struct("=IHHII")  # struct nlmsghdr
RTA = struct.Struct("=HH")  # struct rtattr / struct nlattr


class NetlinkRefused(HadirectorError):
    """The kernel answered a request with an error; `errno` says which."""

    def __init__(self, what: str, code: int):
        super().__init__(f"{what}: {os.strerror(code)}", errno=code)
        self.reason = os.strerror(code)


@dataclass
class Answer:
    messages: list[tuple[int, bytes]] = field(default_factory=list)  # (type, payload)
    interrupted: bool = False


class NetlinkSocket:
    def __init__(self, protocol: int, timeout: float = 5.0):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        try:
            s.bind((0, 0))
            s.settimeout(timeout)  # the kernel answers at once; never wait for good
        except BaseException:
            s.close()
            raise
        self._sock: socket.socket | None = s
        self._seq = 0

    @property
    def closed(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, kind: int, flags: int, body: bytes, what: str = "netlink request") -> Answer:
        """Send one message (NLM_F_REQUEST is added) and read its whole answer. OSError from
        the socket (also "the socket is closed", EBADF) and NetlinkRefused propagate."""
        if self._sock is None:
            raise OSError(9, "the socket is closed")
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        self._sock.send(NLH.pack(NLH.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body)
        out = Answer()
        while True:
            data, _, mflags, _ = self._sock.recvmsg(RECV_SIZE)
            if mflags & socket.MSG_TRUNC:
                raise OSError(90, f"an answer did not fit {RECV_SIZE} bytes")  # EMSGSIZE
            done = False
            for t, f, s, payload in messages(data):
                if s != seq:
                    continue  # the late answer of an earlier request
                if f & NLM_F_DUMP_INTR:
                    out.interrupted = True
                if t == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", payload)
                    if err:
                        raise NetlinkRefused(what, -err)
                    done = True
                elif t == NLMSG_DONE:
                    done = True
                else:
                    out.messages.append((t, payload))
                    if not f & NLM_F_MULTI:
                        done = True
            if done:
                return out


# ---------------------------------------------------------------------- the codec (pure)
def attr(kind: int, data: bytes) -> bytes:
    n = RTA.size + len(data)
    return RTA.pack(n, kind) + data + b"\0" * (-n % 4)


def attr_str(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of each netlink message in one datagram."""
    off, end = 0, len(data)
    while off + NLH.size <= end:
        length, kind, flags, seq, _pid = NLH.unpack_from(data, off)
        if length < NLH.size or off + length > end:
            break
        yield kind, flags, seq, data[off + NLH.size:off + length]
        off += (length + 3) & ~3


def attrs(payload: bytes, start: int = 0) -> dict[int, bytes]:
    """The attributes after a fixed header of `start` bytes: type -> value (the first of each)."""
    out: dict[int, bytes] = {}
    for kind, value in attr_list(payload, start):
        out.setdefault(kind, value)
    return out


def attr_list(payload: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Every attribute after a fixed header of `start` bytes, in order (repeats kept)."""
    off, end = start, len(payload)
    while off + RTA.size <= end:
        length, kind = RTA.unpack_from(payload, off)
        if length < RTA.size or off + length > end:
            break
        yield kind & NLA_TYPE_MASK, payload[off + RTA.size:off + length]
        off += (length + 3) & ~3


def count_attrs(payload: bytes, kind: int) -> int:
    """How many attributes of type `kind` there are (a walk over their headers only)."""
    n, off, end = 0, 0, len(payload)
    unpack = RTA.unpack_from
    while off + 4 <= end:
        length, k = unpack(payload, off)
        if length < 4 or off + length > end:
            break
        n += (k & NLA_TYPE_MASK) == kind
        off += (length + 3) & ~3
    return n


def text(value: bytes) -> str:
    """An NLA_STRING (NUL-terminated)."""
    return value.split(b"\0", 1)[0].decode(errors="replace")
