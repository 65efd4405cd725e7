"""Flow-state sync between directors (issue 12), the pure part: what the active director sends
of its direct-routing flow memory and persistence entries, how the backups keep it, the wire
format. No I/O and no clock: every call takes `now` (int ms, monotonic) and, where the other
side's clock matters, `wall` (int ms since the epoch). The driver is daemon/flowsync.py.

What travels: elements of the nft data plane's dynamic sets (dataplane/nft_render.py), named as
the kernel names them, so a backup loads them into sets of the same names when it takes over:

    Elem(set="netdev hadirector_eth0 flow_tcp_198.18.0.100_80_198.18.0.11_80",
         addr="198.18.0.7", port=40512)        # a flow: client address and port
    Elem(set="netdev hadirector_eth0 persist_tcp_..._80", addr="198.18.0.0", port=-1)
                                                # a persistence template: the masked client net

with an op (ADD: put it in the set with `remaining` ms to live; DEL: take it out) and `age`, how
long ago the active learned it (for the lag figure).

Sender (`SyncSender`): `learn()` queues an entry; the same element queued twice before a flush
is sent once (the later wins: ADD then DEL sends DEL). `take(now)` returns the queue when a batch
is due (`interval` ms after the first queued entry, or `max_batch` entries waiting) and empties it.
The queue is bounded (`max_pending`): past it new entries are dropped and counted (the periodic
snapshot brings them later).

Receiver (`SyncStore`): keeps each element with its expiry (now + remaining), so an entry expires
on a backup when it does on the active; bounded (`max_entries`, new ones dropped and counted).
`entries(now)` gives what to load, with the time each has left. A full snapshot (the active's
sets as listed, in parts) replaces what the store holds of that sender once every part arrived;
a lost part leaves the union (never forgets a live flow; the next snapshot cleans up).
Sequence numbers per sender run (`epoch`): a replay or an old message is dropped; a gap means
lost batches, and `SyncStore.wants_snapshot(now)` says to ask the active for a full snapshot.

Wire (UDP datagrams, authenticated with the cluster key, cluster/auth.py):

    "HDF1" | ver u8 | method u8 | index u8 | kind u8 | epoch u32 | seq u32 | wall u64 |
    snap u32 | part u16 | parts u16 | node: u8 len + utf-8 | nsets u8 | sets: u8 len + utf-8 ... |
    count u16 | entries | MAC
    entry: set index u8 | op u8 | family u8 (4, 6; +0x80 no port) | address 4/16 | [port u16] |
           remaining ms u32 | age ms u32

kind 1 BATCH, 2 SNAPSHOT (one part), 3 HELLO (a backup asks for a snapshot; no entries). An IPv4
flow entry is 17 bytes; `plan_messages` packs entries into datagrams of at most `max_bytes`.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from ..cluster.auth import METHOD_NAMES, Authenticator
from ..errors import HadirectorError

MAGIC = b"HDF1"
VERSION = 1
BATCH, SNAPSHOT, HELLO = 1, 2, 3
KINDS = {BATCH: "batch", SNAPSHOT: "snapshot", HELLO: "hello"}
ADD, DEL = 0, 1
_HEAD = struct.Struct("!4sBBBBIIQIHH")  # magic ver method index kind epoch seq wall snap part parts
MAX_DATAGRAM = 1400  # bytes: one Ethernet frame with room for IP/UDP headers
LAG_SAMPLES = 4096


class Elem(NamedTuple):
    set: str  # "family table set", as the kernel names it
    addr: str
    port: int  # -1: an address-only element (persistence)


class Entry(NamedTuple):
    elem: Elem
    op: int  # ADD, DEL
    remaining: int  # ms to live (ADD)
    age: int  # ms since the active learned it


@dataclass
class Message:
    kind: int
    node: str
    epoch: int
    seq: int
    wall: int
    entries: list[Entry] = field(default_factory=list)
    snap: int = 0
    part: int = 0
    parts: int = 0
    size: int = 0  # bytes on the wire (decode fills it)


class CodecError(HadirectorError, ValueError):
    """A datagram that is not ours, corrupt, or fails authentication; the reason names which."""


_PACKED: dict[str, tuple[int, bytes]] = {}  # address -> (family, packed): clients repeat


def _pack_addr(addr: str) -> tuple[int, bytes]:
    got = _PACKED.get(addr)
    if got is None:
        got = (6, socket.inet_pton(socket.AF_INET6, addr)) if ":" in addr else (4, socket.inet_aton(addr))
        if len(_PACKED) > 65536:
            _PACKED.clear()
        _PACKED[addr] = got
    return got


_E4P = struct.Struct("!BBB4sHII")  # IPv4 with port: the common entry in one pack


def _entry_bytes(e: Entry, index: int) -> bytes:
    fam, packed = _pack_addr(e.elem.addr)
    remaining = e.remaining if 0 <= e.remaining <= 0xFFFFFFFF else max(0, min(e.remaining, 0xFFFFFFFF))
    age = e.age if 0 <= e.age <= 0xFFFFFFFF else max(0, min(e.age, 0xFFFFFFFF))
    if fam == 4 and e.elem.port >= 0:
        return _E4P.pack(index, e.op, 4, packed, e.elem.port, remaining, age)
    flag = fam | (0x80 if e.elem.port < 0 else 0)
    out = struct.pack("!BBB", index, e.op, flag) + packed
    if e.elem.port >= 0:
        out += struct.pack("!H", e.elem.port)
    return out + struct.pack("!II", remaining, age)


def encode(msg: Message, auth: Authenticator) -> bytes:
    sets: list[str] = []
    index: dict[str, int] = {}
    parts: list[bytes] = []
    append = parts.append
    e4p = _E4P.pack
    packed_cache = _PACKED
    for e in msg.entries:
        elem = e.elem
        i = index.get(elem.set)
        if i is None:
            i = index[elem.set] = len(sets)
            sets.append(elem.set)
        got = packed_cache.get(elem.addr)
        # the common entry (IPv4 with a port, times in range) in one pack; the rest in _entry_bytes
        if got is not None and got[0] == 4 and elem.port >= 0 and 0 <= e.remaining <= 0xFFFFFFFF \
                and 0 <= e.age <= 0xFFFFFFFF:
            append(e4p(i, e.op, 4, got[1], elem.port, e.remaining, e.age))
        else:
            append(_entry_bytes(e, i))
    if len(sets) > 255 or len(msg.entries) > 0xFFFF:
        raise ValueError("too many sets or entries for one message (plan_messages splits them)")
    node = msg.node.encode()[:255]
    head = [_HEAD.pack(MAGIC, VERSION, auth.code, auth.index, msg.kind, msg.epoch & 0xFFFFFFFF,
                       msg.seq & 0xFFFFFFFF, msg.wall, msg.snap & 0xFFFFFFFF, msg.part, msg.parts),
            bytes([len(node)]), node, bytes([len(sets)])]
    for s in sets:
        b = s.encode()[:255]
        head += (bytes([len(b)]), b)
    head.append(struct.pack("!H", len(msg.entries)))
    data = b"".join(head + parts)
    return data + auth.sign(data)


def decode(data: bytes, auth: Authenticator) -> Message:
    """Check and read one datagram; raises CodecError (count it, drop it) on anything wrong."""
    if len(data) < _HEAD.size + 4 or data[:4] != MAGIC:
        raise CodecError("not a flow-sync message")
    magic, ver, method, index, kind, epoch, seq, wall, snap, part, parts = _HEAD.unpack_from(data)
    if ver != VERSION:
        raise CodecError(f"flow-sync version {ver}, expected {VERSION}")
    if method not in METHOD_NAMES or METHOD_NAMES[method] != auth.method or index != auth.index:
        raise CodecError(f"bad auth: method {METHOD_NAMES.get(method, method)} index {index}, "
                         f"expected {auth.method} {auth.index}")
    if len(data) < auth.mac_length + _HEAD.size:
        raise CodecError("truncated")
    body, mac = data[:-auth.mac_length], data[-auth.mac_length:]
    if not auth.verify(body, mac):
        raise CodecError("bad auth: wrong MAC")
    if kind not in KINDS:
        raise CodecError(f"unknown kind {kind}")
    try:
        off = _HEAD.size
        n = body[off]
        node = body[off + 1:off + 1 + n].decode()
        off += 1 + n
        nsets = body[off]
        off += 1
        sets = []
        for _ in range(nsets):
            n = body[off]
            sets.append(body[off + 1:off + 1 + n].decode())
            off += 1 + n
        (count,) = struct.unpack_from("!H", body, off)
        off += 2
        entries = []
        for _ in range(count):
            si, op, flag = struct.unpack_from("!BBB", body, off)
            off += 3
            fam = flag & 0x7F
            alen = 4 if fam == 4 else 16 if fam == 6 else None
            if alen is None or si >= len(sets) or op not in (ADD, DEL):
                raise CodecError("bad entry")
            addr = socket.inet_ntop(socket.AF_INET if alen == 4 else socket.AF_INET6, body[off:off + alen])
            off += alen
            port = -1
            if not flag & 0x80:
                (port,) = struct.unpack_from("!H", body, off)
                off += 2
            remaining, age = struct.unpack_from("!II", body, off)
            off += 8
            entries.append(Entry(Elem(sets[si], addr, port), op, remaining, age))
        if off != len(body):
            raise CodecError("trailing bytes")
    except (IndexError, struct.error, UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed: {exc}") from None
    return Message(kind, node, epoch, seq, wall, entries, snap, part, parts, len(data))


def entry_size(e: Entry) -> int:
    return 3 + (4 if ":" not in e.elem.addr else 16) + (0 if e.elem.port < 0 else 2) + 8


def plan_messages(entries: list[Entry], overhead: int, max_bytes: int = MAX_DATAGRAM) -> list[list[Entry]]:
    """Split entries into datagram-sized groups: header and MAC (`overhead`), each new set name
    once per message, at most 255 sets and max_bytes per message. Pure snapshot/batch planning."""
    out: list[list[Entry]] = []
    cur: list[Entry] = []
    size, sets = overhead, set()
    name_bytes: dict[str, int] = {}  # a set name's cost in a message's header
    for e in entries:
        elem = e.elem
        add = 11 + (4 if ":" not in elem.addr else 16) + (0 if elem.port < 0 else 2)  # entry_size
        name = elem.set
        if name not in sets:
            n = name_bytes.get(name)
            if n is None:
                n = name_bytes[name] = 1 + len(name.encode())
            if cur and (size + add + n > max_bytes or len(sets) >= 255):
                out.append(cur)
                cur, size, sets = [], overhead, set()
            sets.add(name)
            add += n
        elif size + add > max_bytes:
            out.append(cur)
            cur, size, sets = [], overhead, {name}
            add += name_bytes[name]
        cur.append(e)
        size += add
    if cur:
        out.append(cur)
    return out


def overhead(node: str, auth: Authenticator) -> int:
    return _HEAD.size + 1 + len(node.encode()[:255]) + 1 + 2 + auth.mac_length


@dataclass
class SenderCounters:
    learned: int = 0
    deduped: int = 0
    dropped: int = 0  # queue full
    sent_entries: int = 0
    sent_messages: int = 0
    sent_bytes: int = 0
    snapshots: int = 0


class SyncSender:
    """The active's queue of new entries; see the module text."""

    def __init__(self, *, interval: int = 20, max_batch: int = 256, max_pending: int = 65536):
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.pending: dict[Elem, tuple[int, int, int]] = {}  # elem -> (op, expires_at, learned_at)
        self.first_at: int | None = None
        self.counters = SenderCounters()

    def learn(self, elem: Elem, op: int, timeout: int, now: int) -> bool:
        """Queue `elem` (ADD with `timeout` ms to live, or DEL). False when dropped (queue full)."""
        self.counters.learned += 1
        if elem in self.pending:
            self.counters.deduped += 1
        elif len(self.pending) >= self.max_pending:
            self.counters.dropped += 1
            return False
        self.pending[elem] = (op, now + timeout, now)
        if self.first_at is None:
            self.first_at = now
        return True

    def learn_many(self, items: list[tuple[Elem, int, int]], now: int) -> None:
        """`learn` for each (elem, op, timeout), the NFLOG reader's batch in one call."""
        pending = self.pending
        c = self.counters
        c.learned += len(items)
        room = self.max_pending - len(pending)
        deduped = dropped = 0
        for elem, op, timeout in items:
            if elem in pending:
                deduped += 1
            elif room <= 0:
                dropped += 1
                continue
            else:
                room -= 1
            pending[elem] = (op, now + timeout, now)
        c.deduped += deduped
        c.dropped += dropped
        if self.first_at is None and pending:
            self.first_at = now

    def due(self, now: int) -> bool:
        return bool(self.pending) and (len(self.pending) >= self.max_batch
                                       or now - (self.first_at or now) >= self.interval)

    def next_due(self, now: int) -> int | None:
        """ms until a batch is due (0: now), None when nothing waits."""
        if not self.pending:
            return None
        return max(0, (self.first_at or now) + self.interval - now)

    def take(self, now: int, force: bool = False) -> list[Entry]:
        if not (force or self.due(now)):
            return []
        new, cls = tuple.__new__, Entry  # Entry(...) without its Python-level __new__: the hot path
        out = [new(cls, (e, op, exp - now if exp > now else 0, now - learned))
               for e, (op, exp, learned) in self.pending.items()]
        self.pending.clear()
        self.first_at = None
        return out

    def sent(self, entries: int, nbytes: int) -> None:
        self.counters.sent_entries += entries
        self.counters.sent_messages += 1
        self.counters.sent_bytes += nbytes


@dataclass
class StoreCounters:
    received_entries: int = 0
    received_messages: int = 0
    received_bytes: int = 0
    dropped_full: int = 0
    dropped_bad: int = 0  # not ours, corrupt, bad auth
    dropped_stale: int = 0  # replayed or older than the last seen
    gaps: int = 0  # messages missing in a sender's sequence
    expired: int = 0
    snapshots: int = 0  # complete snapshots applied


def percentile(values: list[int], p: float) -> int | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class SyncStore:
    """A backup's copy of the active's entries; see the module text."""

    def __init__(self, *, max_entries: int = 262144, snapshot_retry: int = 5000):
        self.max_entries = max_entries
        self.snapshot_retry = snapshot_retry
        self.entries_: dict[Elem, tuple[int, int]] = {}  # elem -> (expires_at, snapshot generation)
        self.counters = StoreCounters()
        self.lags: list[int] = []  # the last LAG_SAMPLES lags (ms)
        self._lag_i = 0
        self.sender: str | None = None
        self.epoch: int | None = None
        self.last_seq = 0
        self.need_snapshot = True  # nothing from the active yet
        self.asked_at: int | None = None
        self.last_snapshot_wall: int | None = None
        self.last_message_wall: int | None = None
        self._snap: tuple[int, int, set[int]] | None = None  # (snap id, parts, parts seen)
        self._gen = 0

    def __len__(self) -> int:
        return len(self.entries_)

    def _lag(self, v: int) -> None:
        if len(self.lags) < LAG_SAMPLES:
            self.lags.append(v)
        else:
            self.lags[self._lag_i] = v
            self._lag_i = (self._lag_i + 1) % LAG_SAMPLES

    def receive(self, msg: Message, now: int, wall: int) -> bool:
        """Take one decoded message from a peer. False when dropped as stale."""
        if msg.kind == HELLO:
            return True
        new_run = msg.node != self.sender or msg.epoch != self.epoch
        if new_run:
            # another active, or the same one restarted: its sequence starts over; only a full
            # snapshot says what it holds, so ask for one
            self.sender, self.epoch, self.last_seq = msg.node, msg.epoch, msg.seq - 1
            self.need_snapshot = True
        if msg.seq <= self.last_seq:
            self.counters.dropped_stale += 1
            return False
        if msg.seq > self.last_seq + 1:
            self.counters.gaps += msg.seq - self.last_seq - 1
            self.need_snapshot = True
        self.last_seq = msg.seq
        self.counters.received_messages += 1
        self.counters.received_bytes += msg.size
        self.last_message_wall = wall
        transit = max(0, wall - msg.wall)
        gen = self._gen
        if msg.kind == SNAPSHOT:
            if self._snap is None or self._snap[0] != msg.snap:
                self._gen += 1
                gen = self._gen
                self._snap = (msg.snap, msg.parts, set())
            else:
                gen = self._gen
            self._snap[2].add(msg.part)
        for e in msg.entries:
            self.counters.received_entries += 1
            if e.op == DEL:
                self.entries_.pop(e.elem, None)
                continue
            if e.elem not in self.entries_ and len(self.entries_) >= self.max_entries:
                self.counters.dropped_full += 1
                continue
            self.entries_[e.elem] = (now + e.remaining, gen)
            if msg.kind == BATCH:
                self._lag(e.age + transit)
        if msg.kind == SNAPSHOT and self._snap is not None and len(self._snap[2]) == self._snap[1]:
            # complete: what the snapshot (or a batch since it began) did not mention is gone
            keep = self._gen
            stale = [k for k, (_, g) in self.entries_.items() if g < keep]
            for k in stale:
                del self.entries_[k]
            self._snap = None
            self.need_snapshot = False
            self.counters.snapshots += 1
            self.last_snapshot_wall = wall
        elif msg.kind == BATCH and self._snap is not None:
            pass  # a batch during a snapshot carries the newest state: it counts as seen (gen)
        return True

    def wants_snapshot(self, now: int) -> bool:
        """Ask the active for a snapshot now? (needed, and not asked within snapshot_retry ms)."""
        if not self.need_snapshot:
            return False
        if self.asked_at is not None and now - self.asked_at < self.snapshot_retry:
            return False
        self.asked_at = now
        return True

    def expire(self, now: int) -> int:
        gone = [k for k, (exp, _) in self.entries_.items() if exp <= now]
        for k in gone:
            del self.entries_[k]
        self.counters.expired += len(gone)
        return len(gone)

    def entries(self, now: int) -> list[tuple[Elem, int]]:
        """What to load into the sets: (elem, ms left), the expired left out."""
        return [(k, exp - now) for k, (exp, _) in self.entries_.items() if exp > now]

    def status(self, now: int, wall: int) -> dict:
        c = self.counters
        return {"entries": len(self.entries_), "sender": self.sender,
                "lag_ms": {"p50": percentile(self.lags, 50), "p99": percentile(self.lags, 99)},
                "last_snapshot": self.last_snapshot_wall, "last_message": self.last_message_wall,
                "synced": not self.need_snapshot,
                "received": {"messages": c.received_messages, "entries": c.received_entries,
                             "bytes": c.received_bytes},
                "dropped": {"full": c.dropped_full, "bad": c.dropped_bad, "stale": c.dropped_stale},
                "gaps": c.gaps, "expired": c.expired, "snapshots": c.snapshots}


def to_nft_elements(entries: Iterable[tuple[Elem, int]], set_timeouts: dict[str, int]) -> list[dict]:
    """libnftables JSON commands adding `entries` (elem, ms left) to their sets, each with the
    set's own timeout and `expires` = the time left, rounded up to whole seconds (the JSON API's
    unit), so it expires on the backup when it does on the active (within a second). Elements of
    sets not in `set_timeouts` (not installed here) are left out."""
    by_set: dict[str, list] = {}
    for elem, left in entries:
        if elem.set not in set_timeouts or left <= 0:
            continue
        val: object = elem.addr if elem.port < 0 else {"concat": [elem.addr, elem.port]}
        by_set.setdefault(elem.set, []).append(
            {"elem": {"val": val, "timeout": set_timeouts[elem.set], "expires": -(-left // 1000)}})
    out = []
    for s, elems in by_set.items():
        fam, table, name = s.split(" ")
        out.append({"add": {"element": {"family": fam, "table": table, "name": name, "elem": elems}}})
    return out


