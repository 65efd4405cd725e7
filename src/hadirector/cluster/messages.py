"""The cluster wire format (version 1) and the stateful codec that drops bad packets.

A node sends one kind of state message: a full snapshot of what it is and what it does with each
resource group (an `Announcement`), every keepalive and at once whenever the snapshot changes.
Newer snapshots replace older ones, so a lost packet costs nothing but time. Layout, big-endian:

    offset size  field
    0      2     magic b"HD"
    2      1     version (1)
    3      1     kind: 1 heartbeat (periodic), 2 update (state changed), 3 leave (clean shutdown)
    4      1     auth method: 0 crc, 1 md5, 2 sha1, 3 sha256            (see auth.py)
    5      1     authkeys index (`auth N`, 1..15)
    6      2     body length B
    8      B     body
    8+B    M     MAC over bytes [0, 8+B): 4 (crc), 16 (md5), 20 (sha1), 32 (sha256) bytes

    body:  str cluster, str node, u64 generation, u64 seq, u8 status, u16 score, u16 score_max,
           u32 keepalive_ms, u32 deadtime_ms,
           u16 n, n x group    (str name, u8 state, u8 flags, u32 claim, str to)
                               flags: bit 0 failed here, bit 1 yields (the sender stalled)
           u16 n, n x grant    (str claimant, str group, u32 claim)
           u16 n, n x request  (str group)          -- takeover requests by the sender
           u16 n, n x heard    (str node)           -- peers the sender hears (its live set)
           optional, to the end of the body: the maintenance section (cluster/maintenance.py)
           8 bytes digest of the sender's maintenance map,
           u16 n, n x mark     (str virtual, str real, u8 state (1 drain, 2 disabled, 3 enabled),
                                u64 counter, str origin, str by, u64 since)
    str = u8 length + UTF-8 bytes.  Groups in state NONE with no handoff and no failure are left out.
    A sender whose maintenance map is empty leaves the section out, so its messages are the
    same bytes an older version sends (a rolling upgrade works until somebody uses maintenance).

`generation` is the sender's boot counter (kept by the driver in the state dir, bumped at every
start; heartbeat's hbgeneration) and `seq` counts every packet the sender emits in that generation,
one per link, so copies on two links have different numbers. The receiving `Codec` keeps, per peer,
the highest generation seen and a sliding window of the sequence numbers of that generation:
an older generation is "stale", a number seen before (or older than the window) is "replayed".

Decoding raises nothing but `BadMessage` subclasses, each with a `reason` that is also the key of
`Codec.counters`. Checks run cheapest first and nothing from the body is trusted before the MAC.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable

from ..errors import HadirectorError
from .auth import METHOD_NAMES, Authenticator

MAGIC = b"HD"
VERSION = 1
HEADER = struct.Struct(">2sBBBBH")  # magic, version, kind, method, index, body length
DEFAULT_MAX_SIZE = 16384  # bytes; larger datagrams are dropped unread ("oversized")
DEFAULT_WINDOW = 1024  # sequence numbers remembered per peer generation


class Kind(IntEnum):
    HEARTBEAT = 1
    UPDATE = 2
    LEAVE = 3


class Status(IntEnum):
    """What the sender says about itself."""

    STARTING = 1  # start-up: not yet heard every peer nor waited initdead; claims nothing
    ACTIVE = 2  # takes part in deciding who owns what
    LEAVING = 3  # shutting down: releasing its groups, takes nothing


class GroupState(IntEnum):
    """The sender's relation to one resource group (see arbiter.py for the transitions)."""

    NONE = 0  # not running here
    CLAIM = 1  # wants to start it; waits for a grant from every live peer
    STARTING = 2  # resources being started here
    HELD = 3  # running here
    STOPPING = 4  # resources being stopped here


@dataclass(frozen=True)
class GroupEntry:
    name: str
    state: GroupState = GroupState.NONE
    claim: int = 0  # claim number while state is CLAIM (grants quote it)
    to: str = ""  # after a release: the node the group was handed to ("" = none)
    failed: bool = False  # the group failed here; this node is not a candidate for it
    yields: bool = False  # the sender stalled just now: in a split brain it gives way (arbiter)


@dataclass(frozen=True)
class Grant:
    """The sender lets `node` start `group` under claim number `claim`."""

    node: str
    group: str
    claim: int


MARK_STATES = {"drain": 1, "disabled": 2, "enabled": 3}
MARK_NAMES = {v: k for k, v in MARK_STATES.items()}


@dataclass(frozen=True)
class Mark:
    """One real's maintenance mark (cluster/maintenance.py): last writer wins by (counter, origin)."""

    virtual: str  # "TCP 198.18.0.1:80"
    real: str  # "198.18.1.4:80"
    state: str  # drain, disabled, enabled (the mark that ends a maintenance)
    counter: int  # Lamport counter: greater than every counter its origin had seen
    origin: str  # the node where it was set
    by: str = ""  # who set it: "root@alpha"
    since: int = 0  # when, Unix seconds (for display only: clocks may differ between nodes)

    @property
    def key(self) -> tuple[str, str]:
        return (self.virtual, self.real)

    @property
    def order(self) -> tuple[int, str]:
        return (self.counter, self.origin)


@dataclass(frozen=True)
class Announcement:
    """A node's state as the arbiter sees it: what goes in every message."""

    status: Status = Status.STARTING
    score: int = 0  # connectivity: reachable ping nodes / ping groups
    score_max: int = 0  # how many ping nodes / groups the sender has configured
    groups: tuple[GroupEntry, ...] = ()
    grants: tuple[Grant, ...] = ()
    requests: tuple[str, ...] = ()  # groups the sender asks to take over
    heard: tuple[str, ...] = ()  # peers the sender hears: lets a peer spot a one-way link
    maint_digest: bytes = b""  # digest of the sender's maintenance map (b"": empty)
    marks: tuple[Mark, ...] = ()  # the map itself, when a peer's digest differs

    def group(self, name: str) -> GroupEntry:
        for g in self.groups:
            if g.name == name:
                return g
        return GroupEntry(name)


@dataclass(frozen=True)
class Message:
    kind: Kind
    cluster: str
    node: str
    generation: int
    seq: int
    keepalive_ms: int = 0  # the sender's timing, for a mismatch warning
    deadtime_ms: int = 0
    announcement: Announcement = field(default_factory=Announcement)


# --------------------------------------------------------------------------- errors

class BadMessage(HadirectorError):
    """A datagram that was dropped. `reason` names the check that failed (and the counter)."""

    reason = "bad"

    def __init__(self, detail: str = ""):
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)
        self.detail = detail


class Truncated(BadMessage):
    reason = "truncated"


class Oversized(BadMessage):
    reason = "oversized"


class BadVersion(BadMessage):
    reason = "bad_version"


class BadAuth(BadMessage):
    reason = "bad_auth"


class Malformed(BadMessage):
    reason = "malformed"


class WrongCluster(BadMessage):
    reason = "wrong_cluster"


class UnknownNode(BadMessage):
    reason = "unknown_node"


class Looped(BadMessage):
    """Our own packet, come back (multicast loop, broadcast)."""

    reason = "looped"


class StaleGeneration(BadMessage):
    reason = "stale_generation"


class Replayed(BadMessage):
    reason = "replayed"


REASONS = tuple(c.reason for c in (Truncated, Oversized, BadVersion, BadAuth, Malformed, WrongCluster,
                                   UnknownNode, Looped, StaleGeneration, Replayed))


# --------------------------------------------------------------------------- encoding

def _str(out: bytearray, s: str, what: str) -> None:
    b = s.encode("utf-8")
    if len(b) > 255:
        raise ValueError(f"{what} {s[:40]!r}... is longer than 255 bytes")
    out.append(len(b))
    out += b


def _count(out: bytearray, items: tuple, what: str) -> None:
    if len(items) > 0xFFFF:
        raise ValueError(f"too many {what} ({len(items)}) for one message")
    out += struct.pack(">H", len(items))


def encode_body(msg: Message) -> bytes:
    a = msg.announcement
    out = bytearray()
    _str(out, msg.cluster, "cluster name")
    _str(out, msg.node, "node name")
    out += struct.pack(">QQBHHII", msg.generation, msg.seq, int(a.status), a.score, a.score_max,
                       msg.keepalive_ms, msg.deadtime_ms)
    _count(out, a.groups, "groups")
    for g in a.groups:
        _str(out, g.name, "group name")
        out += struct.pack(">BBI", int(g.state), (1 if g.failed else 0) | (2 if g.yields else 0), g.claim)
        _str(out, g.to, "node name")
    _count(out, a.grants, "grants")
    for gr in a.grants:
        _str(out, gr.node, "node name")
        _str(out, gr.group, "group name")
        out += struct.pack(">I", gr.claim)
    _count(out, a.requests, "requests")
    for r in a.requests:
        _str(out, r, "group name")
    _count(out, a.heard, "heard nodes")
    for n in a.heard:
        _str(out, n, "node name")
    if a.maint_digest:
        out += encode_marks(a.maint_digest, a.marks)
    return bytes(out)


def encode_mark(m: Mark) -> bytes:
    out = bytearray()
    _str(out, m.virtual, "virtual service")
    _str(out, m.real, "real server")
    out += struct.pack(">BQ", MARK_STATES[m.state], m.counter)
    _str(out, m.origin, "node name")
    _str(out, m.by, "maintenance author")
    out += struct.pack(">Q", max(0, m.since))
    return bytes(out)


def encode_marks(digest: bytes, marks: tuple[Mark, ...]) -> bytes:
    if len(digest) != 8:
        raise ValueError(f"maintenance digest must be 8 bytes, got {len(digest)}")
    out = bytearray(digest)
    _count(out, marks, "maintenance marks")
    for m in marks:
        out += encode_mark(m)
    return bytes(out)


def encoded_size(msg: Message, auth: Authenticator) -> int:
    """The datagram size of `msg`, without the size check."""
    return HEADER.size + len(encode_body(msg)) + auth.mac_length


def encode(msg: Message, auth: Authenticator, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """The datagram for `msg`. ValueError if a field does not fit (a configuration problem)."""
    body = encode_body(msg)
    size = HEADER.size + len(body) + auth.mac_length
    if len(body) > 0xFFFF or size > max_size:
        raise ValueError(f"message of {size} bytes exceeds the {max_size}-byte limit")
    head = HEADER.pack(MAGIC, VERSION, int(msg.kind), auth.code, auth.index, len(body))
    signed = head + body
    return signed + auth.sign(signed)


# --------------------------------------------------------------------------- decoding

class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise Malformed(f"body ends inside a field at byte {self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str) -> tuple:
        s = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(s))

    def str(self) -> str:
        n = self.take(1)[0]
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"invalid UTF-8 before byte {self.pos}") from None

    def enum(self, cls, value: int):
        try:
            return cls(value)
        except ValueError:
            raise Malformed(f"unknown {cls.__name__} value {value}") from None


def decode(data: bytes, auth: Authenticator, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """Check and parse one datagram without any per-peer state. Raises only BadMessage."""
    if len(data) > max_size:
        raise Oversized(f"{len(data)} bytes, limit {max_size}")
    if len(data) < HEADER.size:
        raise Truncated(f"{len(data)} bytes, a header is {HEADER.size}")
    magic, version, kind, method, index, blen = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BadVersion(f"magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise BadVersion(f"version {version}, this node speaks {VERSION}")
    if method != auth.code or index != auth.index:
        name = METHOD_NAMES.get(method, f"#{method}")
        raise BadAuth(f"signed with {name} key {index}, expected {auth.method} key {auth.index}")
    expected = HEADER.size + blen + auth.mac_length
    if len(data) < expected:
        raise Truncated(f"{len(data)} bytes, header announces {expected}")
    # The MAC is the last bytes of the datagram and covers all before it (auth.py): bytes added
    # after a genuine message make it fail like any forgery (bad_auth, not malformed: malformed
    # means authentic but unparseable, which only a sender bug produces).
    signed, mac = data[:-auth.mac_length], data[-auth.mac_length:]
    if not auth.verify(signed, mac):
        extra = f"; {len(data) - expected} bytes more than the header announces" if len(data) > expected else ""
        raise BadAuth(f"MAC does not match {auth.method} key {auth.index} (another secret under "
                      f"authkeys index {index}, or a forged or corrupted packet){extra}")
    if len(data) > expected:
        raise Malformed(f"{len(data) - expected} authenticated bytes after the body the header announces")
    signed = data[:HEADER.size + blen]
    # authenticated from here on
    r = _Reader(signed[HEADER.size:])
    kind_v = r.enum(Kind, kind)
    cluster = r.str()
    node = r.str()
    generation, seq, status, score, score_max, keepalive, deadtime = r.unpack(">QQBHHII")
    status_v = r.enum(Status, status)
    groups = []
    for _ in range(r.unpack(">H")[0]):
        name = r.str()
        state, flags, claim = r.unpack(">BBI")
        groups.append(GroupEntry(name, r.enum(GroupState, state), claim, r.str(), bool(flags & 1),
                                 bool(flags & 2)))
    grants = []
    for _ in range(r.unpack(">H")[0]):
        who, grp = r.str(), r.str()
        grants.append(Grant(who, grp, r.unpack(">I")[0]))
    requests = tuple(r.str() for _ in range(r.unpack(">H")[0]))
    heard = tuple(r.str() for _ in range(r.unpack(">H")[0]))
    digest, marks = b"", []
    if r.pos != len(r.data):  # the maintenance section
        digest = r.take(8)
        for _ in range(r.unpack(">H")[0]):
            virtual, real = r.str(), r.str()
            state, counter = r.unpack(">BQ")
            if state not in MARK_NAMES:
                raise Malformed(f"unknown maintenance state {state}")
            origin, by = r.str(), r.str()
            marks.append(Mark(virtual, real, MARK_NAMES[state], counter, origin, by, r.unpack(">Q")[0]))
    if r.pos != len(r.data):
        raise Malformed(f"{len(r.data) - r.pos} unread bytes at the end of the body")
    ann = Announcement(status_v, score, score_max, tuple(groups), tuple(grants), requests, heard,
                       digest, tuple(marks))
    return Message(kind_v, cluster, node, generation, seq, keepalive, deadtime, ann)


# --------------------------------------------------------------------------- replay protection

class ReplayWindow:
    """Sequence numbers seen in one peer generation: the highest, and a bitmap of the `size`
    numbers below it (the IPsec anti-replay window, RFC 4303 section 3.4.3)."""

    def __init__(self, size: int = DEFAULT_WINDOW):
        self.size = size
        self.top = -1
        self.bits = 0  # bit i set: top - i seen

    def seen(self, seq: int) -> bool:
        if seq > self.top:
            return False
        off = self.top - seq
        return off >= self.size or bool(self.bits >> off & 1)

    def mark(self, seq: int) -> None:
        if seq > self.top:
            shift = seq - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.top = seq
        else:
            self.bits |= 1 << (self.top - seq)


@dataclass
class _Peer:
    generation: int
    window: ReplayWindow


class Codec:
    """Encodes this node's messages and decodes its peers', dropping and counting bad ones.

    Args:
        cluster: the cluster name (messages of another cluster are "wrong_cluster").
        node: this node's name; `generation`: its boot counter (from the state dir).
        nodes: every cluster node; messages from others are "unknown_node".
        auth: the authkeys entry in use.
        keepalive_ms / deadtime_ms: put in every message so peers can spot a timing mismatch.
        max_size: datagram size limit; window: replay window length.

    `counters` counts decoded packets ("ok") and drops per reason. `decode()` raises only
    `BadMessage`; `encode()` only ValueError when the configuration cannot fit in a message.
    """

    def __init__(self, cluster: str, node: str, generation: int, nodes: Iterable[str],
                 auth: Authenticator, *, keepalive_ms: int = 0, deadtime_ms: int = 0,
                 max_size: int = DEFAULT_MAX_SIZE, window: int = DEFAULT_WINDOW):
        if generation < 0 or generation >= 1 << 64:
            raise ValueError(f"generation must fit in 64 bits, got {generation}")
        self.cluster = cluster
        self.node = node
        self.generation = generation
        self.nodes = frozenset(nodes)
        self.auth = auth
        self.keepalive_ms = keepalive_ms
        self.deadtime_ms = deadtime_ms
        self.max_size = max_size
        self.window = window
        self.seq = 0
        self.counters: Counter[str] = Counter()
        self._peers: dict[str, _Peer] = {}

    def encode(self, kind: Kind, announcement: Announcement) -> bytes:
        self.seq += 1
        msg = Message(kind, self.cluster, self.node, self.generation, self.seq, self.keepalive_ms,
                      self.deadtime_ms, announcement)
        return encode(msg, self.auth, self.max_size)

    def decode(self, data: bytes) -> Message:
        try:
            msg = self._decode(data)
        except BadMessage as exc:
            self.counters[exc.reason] += 1
            raise
        self.counters["ok"] += 1
        return msg

    def _decode(self, data: bytes) -> Message:
        msg = decode(data, self.auth, self.max_size)
        if msg.cluster != self.cluster:
            raise WrongCluster(f"cluster {msg.cluster!r}, this is {self.cluster!r}")
        if msg.node == self.node:
            raise Looped(f"own packet seq {msg.seq}")
        if msg.node not in self.nodes:
            raise UnknownNode(f"node {msg.node!r} is not in this cluster")
        peer = self._peers.get(msg.node)
        if peer is not None and msg.generation < peer.generation:
            raise StaleGeneration(f"{msg.node} generation {msg.generation}, already saw {peer.generation}")
        if peer is None or msg.generation > peer.generation:
            peer = _Peer(msg.generation, ReplayWindow(self.window))
            # adopted only now that the packet is authentic; the window starts empty
            self._peers[msg.node] = peer
        if peer.window.seen(msg.seq):
            raise Replayed(f"{msg.node} generation {msg.generation} seq {msg.seq}")
        peer.window.mark(msg.seq)
        return msg

    def peer_generation(self, node: str) -> int | None:
        p = self._peers.get(node)
        return p.generation if p else None
