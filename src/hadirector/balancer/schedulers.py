"""IPVS schedulers, reproduced in pure Python.

How it works: a service keeps its real servers as `Dest` objects in one list, in the order the
kernel keeps them (`ip_vs_add_dest` links a new destination at the *head* of
`svc->destinations`, so the newest is first). A scheduler is built for the service, told about
every change to that list with `update(dests)` (the kernel's add_dest/del_dest/upd_dest hooks),
and asked for a destination with `schedule(saddr, sport, daddr, dport, now)`. It returns a `Dest`
or None ("no destination available"). Nothing here reads a clock, opens a socket or logs; `now`
(seconds, any monotonic origin) is only used by lblc/lblcr for their cache expiry.

Every rule cites the kernel file it comes from (net/netfilter/ipvs/ip_vs_<name>.c). Shared rules:
- weight 0 means quiescent: no new connections (every scheduler skips it); existing ones go on.
- a destination is "overloaded" (IP_VS_DEST_F_OVERLOAD) between reaching its upper connection
  threshold and falling below its lower one (ip_vs_conn.c ip_vs_bind_dest/ip_vs_unbind_dest);
  every scheduler skips overloaded destinations.
- the connection overhead used by the least-connection family is activeconns * 256 + inactconns
  (ip_vs_dest_conn_overhead in include/net/ip_vs.h).

Addresses are passed as integers (IPv4: the 32-bit value; IPv6: the 128-bit value, folded to 32
bits by XOR of its four words where the kernel hashes it, as `ip_vs_*_hashkey` do).
"""

from __future__ import annotations

import ipaddress
import socket
from math import gcd
from typing import Callable, Iterable, Sequence

from ..config.ipvs import SCHED_FLAG_NAMES, sched_flag_bits  # noqa: F401 - the -b names are config values
from . import maglev


def sched_flag_names(scheduler: str, bits: int) -> list[str]:
    """The names ipvsadm prints for the flag bits (ipvsadm.c print_sched_flags)."""
    if scheduler in ("sh", "mh"):
        names = [f"{scheduler}-fallback", f"{scheduler}-port"]
        return [n for i, n in enumerate(names) if bits & (1 << i)]
    return [f"flag-{i + 1}" for i in range(3) if bits & (1 << i)]


def addr_int(address: str) -> int:
    """An address as the integer the schedulers and persistence templates take (the kernel's
    __be32 / in6_addr read as one big-endian number); an IPv6 zone (`fe80::1%eth0`) is ignored.
    IPv4 first, by inet_pton: the proxy calls this for every new client connection."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except OSError:
        return int(ipaddress.ip_address(address.split("%", 1)[0]))


def fold_addr(addr: int) -> int:
    """The kernel's addr_fold: IPv4 as is, IPv6 as the XOR of its four 32-bit words."""
    if addr >> 32:
        return (addr ^ (addr >> 32) ^ (addr >> 64) ^ (addr >> 96)) & 0xFFFFFFFF
    return addr


def weight_gcd(weights: Iterable[int]) -> int:
    """ip_vs_wrr.c ip_vs_wrr_gcd_weight: the gcd of the positive weights, 1 when there is none."""
    g = 0
    for w in weights:
        if w > 0:
            g = gcd(g, w)
    return g or 1


def hash_32(val: int, bits: int) -> int:
    """include/linux/hash.h hash_32: multiply by GOLDEN_RATIO_32, keep the high `bits` bits."""
    return ((val * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


class Dest:
    """One real server as a scheduler sees it (the fields of struct ip_vs_dest it uses).

    Connection counters are kept with the kernel's rules, so the overload flag follows the
    thresholds exactly: `bind()` when a connection is created (it starts inactive, as
    __ip_vs_update_dest sets IP_VS_CONN_F_INACTIVE in dest->conn_flags), `set_active()` /
    `set_inactive()` on TCP state changes, `unbind()` when it ends. Templates (persistence) count
    in `persist` only.
    """

    __slots__ = ("key", "addr", "port", "weight", "last_weight", "u_threshold", "l_threshold",
                 "active", "inactive", "persist", "overloaded", "available", "data")

    def __init__(self, key: object, addr: int, port: int, weight: int = 1,
                 u_threshold: int = 0, l_threshold: int = 0, data: object = None) -> None:
        self.key = key
        self.addr = addr
        self.port = port
        self.weight = weight
        # ip_vs_ctl.c __ip_vs_update_dest: last_weight keeps the last non-zero weight, so mh
        # keeps a quiesced server's table slots
        self.last_weight = weight
        self.u_threshold = u_threshold
        self.l_threshold = l_threshold
        self.active = 0
        self.inactive = 0
        self.persist = 0
        self.overloaded = False
        self.available = True  # IP_VS_DEST_F_AVAILABLE: cleared when removed from the service
        self.data = data  # free for the data plane

    def __repr__(self) -> str:
        return (f"Dest({self.key!r}, w={self.weight}, act={self.active}, inact={self.inactive}"
                f"{', overloaded' if self.overloaded else ''})")

    # ip_vs_ctl.c __ip_vs_update_dest
    def set_weight(self, weight: int) -> None:
        self.weight = weight
        if weight != 0:
            self.last_weight = weight

    def set_thresholds(self, upper: int, lower: int) -> None:
        # "if (udest->u_threshold == 0 || udest->u_threshold > dest->u_threshold)
        #      dest->flags &= ~IP_VS_DEST_F_OVERLOAD;"
        if upper == 0 or upper > self.u_threshold:
            self.overloaded = False
        self.u_threshold = upper
        self.l_threshold = lower

    @property
    def total(self) -> int:
        """ip_vs_dest_totalconns: activeconns + inactconns."""
        return self.active + self.inactive

    @property
    def overhead(self) -> int:
        """ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns."""
        return (self.active << 8) + self.inactive

    # ip_vs_conn.c ip_vs_bind_dest
    def bind(self, inactive: bool = True) -> None:
        if inactive:
            self.inactive += 1
        else:
            self.active += 1
        self._check_upper()

    def bind_template(self) -> None:
        self.persist += 1
        self._check_upper()

    def _check_upper(self) -> None:
        if self.u_threshold != 0 and self.active + self.inactive >= self.u_threshold:
            self.overloaded = True

    # ip_vs_conn.c ip_vs_unbind_dest
    def unbind(self, inactive: bool = True) -> None:
        if inactive:
            self.inactive -= 1
        else:
            self.active -= 1
        self._check_lower()

    def unbind_template(self) -> None:
        self.persist -= 1
        self._check_lower()

    def _check_lower(self) -> None:
        total = self.active + self.inactive
        if self.l_threshold != 0:
            if total < self.l_threshold:
                self.overloaded = False
        elif self.u_threshold != 0:
            if total * 4 < self.u_threshold * 3:
                self.overloaded = False
        else:
            self.overloaded = False

    # ip_vs_proto_tcp.c set_tcp_state: ESTABLISHED counts as active, every other state inactive
    def set_active(self) -> None:
        self.inactive -= 1
        self.active += 1

    def set_inactive(self) -> None:
        self.active -= 1
        self.inactive += 1


class Scheduler:
    """Base: `dests` is the service's destination list in kernel order."""

    name = ""

    def __init__(self, flags: int = 0) -> None:
        self.flags = flags
        self.dests: list[Dest] = []

    def update(self, dests: Sequence[Dest]) -> None:
        """The destination list or a destination's weight changed (add/del/upd_dest)."""
        self.dests = list(dests)

    def schedule(self, saddr: int, sport: int, daddr: int, dport: int, now: float) -> Dest | None:
        raise NotImplementedError

    def expire(self, now: float) -> None:
        """Periodic housekeeping (lblc/lblcr cache expiry); no-op for most."""


# --------------------------------------------------------------------------- ip_vs_rr.c

class RoundRobin(Scheduler):
    """rr: the next destination after the last one chosen that has weight > 0 and is not
    overloaded. The position starts at the list head; when the current destination is removed
    it moves back to the one before it (ip_vs_rr_del_dest), so the rotation carries on."""

    name = "rr"

    def __init__(self, flags: int = 0) -> None:
        super().__init__(flags)
        self.pos = -1  # index of the last chosen dest; -1 = the list head

    def update(self, dests: Sequence[Dest]) -> None:
        old, new = self.dests, list(dests)
        if 0 <= self.pos < len(old):
            ids = {id(d): i for i, d in enumerate(new)}
            i = self.pos
            while i >= 0 and id(old[i]) not in ids:
                i -= 1  # removed: step back to the previous survivor, or the head
            self.pos = ids[id(old[i])] if i >= 0 else -1
        else:
            self.pos = -1
        self.dests = new

    def schedule(self, saddr, sport, daddr, dport, now):
        dests = self.dests
        n = len(dests)
        start = self.pos
        # scan after `start` to the end, then (if we did not start at the head) from the head
        # through `start` itself
        order = range(start + 1, n) if start < 0 else list(range(start + 1, n)) + list(range(0, start + 1))
        for i in order:
            d = dests[i]
            if not d.overloaded and d.weight > 0:
                self.pos = i
                return d
        return None


# --------------------------------------------------------------------------- ip_vs_wrr.c

class WeightedRoundRobin(Scheduler):
    """wrr: the kernel's interleaved order. With mw = max weight, di = gcd of the weights, the
    current weight cw starts at mw - (di - 1) and each pass over the list picks every destination
    whose weight >= cw, then cw -= di; when cw drops to 0 or below it restarts at mw. Over one
    cycle each destination is picked weight/di times. Any change of the list resets the position
    to the head and clamps cw (ip_vs_wrr_dest_changed)."""

    name = "wrr"

    def __init__(self, flags: int = 0) -> None:
        super().__init__(flags)
        self.cl = -1  # current dest index; -1 = head
        self.di = 1
        self.mw = 0
        self.cw = 0

    def _max_weight(self) -> int:
        return max((d.weight for d in self.dests), default=0)

    def update(self, dests: Sequence[Dest]) -> None:
        # ip_vs_wrr_dest_changed. The kernel calls it once per added/removed/updated dest, so a
        # data plane that wants the kernel's exact sequence calls update() once per change too.
        self.dests = list(dests)
        self.cl = -1
        self.di = weight_gcd(d.weight for d in self.dests)
        self.mw = self._max_weight() - (self.di - 1)
        if self.cw > self.mw or not self.cw:
            self.cw = self.mw
        elif self.di > 1:
            self.cw = (self.cw // self.di) * self.di + 1

    def schedule(self, saddr, sport, daddr, dport, now):
        dests = self.dests
        n = len(dests)
        if self.mw == 0:
            return None  # err_noavail; mark->cl stays
        idx = self.cl
        last = idx
        stop = None
        last_pass = False
        restarted = False
        while True:
            # list_for_each_entry_continue: from the entry after idx to the end of the list
            i = idx + 1
            while i < n:
                d = dests[i]
                if not d.overloaded and d.weight >= self.cw:
                    self.cl = i
                    return d
                if i == stop:
                    self.cl = i
                    return None  # err_over: every dest is overloaded
                i += 1
            idx = -1  # back at the head
            self.cw -= self.di
            if self.cw <= 0:
                self.cw = self.mw
                # stop if the last pass (cw == 1) already started from the head
                if last_pass or last == -1:
                    self.cl = -1
                    return None
                restarted = True
            last_pass = self.cw <= self.di
            if last_pass and restarted and last != -1:
                stop = last


# --------------------------------------------------------------------------- lc, wlc, sed, nq

class LeastConnection(Scheduler):
    """lc (ip_vs_lc.c): the least overhead; weight 0 and overloaded skipped; first wins ties."""

    name = "lc"

    def schedule(self, saddr, sport, daddr, dport, now):
        least = None
        loh = 0
        for d in self.dests:
            if d.overloaded or d.weight == 0:
                continue
            doh = d.overhead
            if least is None or doh < loh:
                least, loh = d, doh
        return least


class _WeightedLeast(Scheduler):
    """Shared shape of wlc and sed: the first destination with weight > 0 (not overloaded) is the
    candidate, then any later one with overhead/weight strictly lower replaces it, compared as
    loh * dw > doh * lw to stay in integers as the kernel does."""

    def _oh(self, d: Dest) -> int:
        raise NotImplementedError

    def schedule(self, saddr, sport, daddr, dport, now):
        dests = self.dests
        it = iter(dests)
        least = None
        for d in it:
            if not d.overloaded and d.weight > 0:
                least = d
                break
        if least is None:
            return None
        oh = self._oh
        loh = oh(least)
        for d in it:
            if d.overloaded:
                continue
            doh = oh(d)
            if loh * d.weight > doh * least.weight:
                least, loh = d, doh
        return least


class WeightedLeastConnection(_WeightedLeast):
    """wlc (ip_vs_wlc.c): least (activeconns*256 + inactconns) / weight."""

    name = "wlc"

    def _oh(self, d):
        return (d.active << 8) + d.inactive


class ShortestExpectedDelay(_WeightedLeast):
    """sed (ip_vs_sed.c): least (activeconns + 1) / weight."""

    name = "sed"

    def _oh(self, d):
        return d.active + 1


class NeverQueue(Scheduler):
    """nq (ip_vs_nq.c): an idle destination (no active connections) at once, else as sed."""

    name = "nq"

    def schedule(self, saddr, sport, daddr, dport, now):
        least = None
        loh = 0
        for d in self.dests:
            if d.overloaded or not d.weight:
                continue
            doh = d.active + 1
            if d.active == 0:
                return d
            if least is None or loh * d.weight > doh * least.weight:
                least, loh = d, doh
        return least


# --------------------------------------------------------------------------- sh, dh

SH_TAB_BITS = 8  # CONFIG_IP_VS_SH_TAB_BITS default
SH_TAB_SIZE = 1 << SH_TAB_BITS
DH_TAB_BITS = 8  # CONFIG_IP_VS_DH_TAB_BITS default
DH_TAB_SIZE = 1 << DH_TAB_BITS


def _weighted_buckets(dests: Sequence[Dest], size: int) -> list[Dest | None]:
    """ip_vs_sh_reassign / ip_vs_dh_reassign: walk the list filling `weight` consecutive buckets
    per destination, wrapping around, until the table is full. A weight-0 destination still
    takes one bucket ("++d_count >= weight")."""
    if not dests:
        return [None] * size
    out: list[Dest | None] = []
    i = 0
    count = 0
    n = len(dests)
    for _ in range(size):
        d = dests[i]
        out.append(d)
        count += 1
        if count >= d.weight:
            i = (i + 1) % n
            count = 0
    return out


class SourceHashing(Scheduler):
    """sh (ip_vs_sh.c): a 256-bucket table filled in proportion to weight, indexed by a hash of
    the client address (and its port with sh-port). The chosen server must have weight > 0 and not
    be overloaded, else no destination; with sh-fallback the table is walked from the hashed
    bucket to the first usable server."""

    name = "sh"

    def __init__(self, flags: int = 0) -> None:
        super().__init__(flags)
        self.buckets: list[Dest | None] = [None] * SH_TAB_SIZE

    def update(self, dests):
        super().update(dests)
        self.buckets = _weighted_buckets(self.dests, SH_TAB_SIZE)

    @staticmethod
    def hashkey(addr: int, port: int, offset: int) -> int:
        return (offset + hash_32((port + fold_addr(addr)) & 0xFFFFFFFF, SH_TAB_BITS)) & (SH_TAB_SIZE - 1)

    def schedule(self, saddr, sport, daddr, dport, now):
        port = sport if self.flags & 2 else 0  # IP_VS_SVC_F_SCHED_SH_PORT
        ihash = self.hashkey(saddr, port, 0)
        d = self.buckets[ihash]
        if d is None:
            return None
        if d.weight > 0 and not d.overloaded:
            return d
        if not self.flags & 1:  # IP_VS_SVC_F_SCHED_SH_FALLBACK
            return None
        for offset in range(SH_TAB_SIZE):
            roffset = (offset + ihash) % SH_TAB_SIZE
            d = self.buckets[self.hashkey(saddr, port, roffset)]
            if d is None:
                break
            if d.weight > 0 and not d.overloaded:
                return d
        return None


class DestinationHashing(Scheduler):
    """dh (ip_vs_dh.c): as sh but hashing the destination address (the virtual address the
    client asked for), hash = addr * 2654435761 mod 256, and with no fallback."""

    name = "dh"

    def __init__(self, flags: int = 0) -> None:
        super().__init__(flags)
        self.buckets: list[Dest | None] = [None] * DH_TAB_SIZE

    def update(self, dests):
        super().update(dests)
        self.buckets = _weighted_buckets(self.dests, DH_TAB_SIZE)

    def schedule(self, saddr, sport, daddr, dport, now):
        d = self.buckets[(fold_addr(daddr) * 2654435761) & (DH_TAB_SIZE - 1)]
        if d is None or not d.available or d.weight <= 0 or d.overloaded:
            return None
        return d


# --------------------------------------------------------------------------- mh

class MaglevHashing(Scheduler):
    """mh (ip_vs_mh.c): Maglev consistent hashing over a 65537-entry table (see maglev.py). A
    server set to weight 0 keeps its slots (last_weight) and is skipped; with mh-fallback the
    lookup probes further positions for a usable server; mh-port adds the client port to the
    hash."""

    name = "mh"

    def __init__(self, flags: int = 0, size: int = maglev.TABLE_SIZE) -> None:
        super().__init__(flags)
        self.table = maglev.MaglevTable(size)

    def update(self, dests):
        super().update(dests)
        self.table.populate([(d.addr, d.port, d.last_weight) for d in self.dests])

    def schedule(self, saddr, sport, daddr, dport, now):
        port = sport if self.flags & 2 else 0  # IP_VS_SVC_F_SCHED_MH_PORT
        dests = self.dests
        t = self.table
        i = t.lookup(saddr, port, 0)
        if i < 0:
            return None
        d = dests[i]
        if d.weight > 0 and not d.overloaded:
            return d
        if not self.flags & 1:  # IP_VS_SVC_F_SCHED_MH_FALLBACK
            return None
        # The kernel probes up to 65537 re-hashed positions; when no server with table slots is
        # usable that is certain to fail, so say so at once (same answer, no 0.4 s of Python).
        if not any(x.last_weight > 0 and x.weight > 0 and not x.overloaded for x in dests):
            return None
        ihash = t.slot(saddr, port, 0)
        size = t.size
        for offset in range(size):
            i = t.lookup(saddr, port, (offset + ihash) % size)
            if i < 0:
                break
            d = dests[i]
            if d.weight > 0 and not d.overloaded:
                return d
        return None


# --------------------------------------------------------------------------- lblc, lblcr

LBLC_EXPIRATION = 24 * 60 * 60.0  # ip_vs_lblc.c DEFAULT_EXPIRATION (sysctl lblc_expiration)
LBLCR_EXPIRATION = 24 * 60 * 60.0  # ip_vs_lblcr.c DEFAULT_EXPIRATION (sysctl lblcr_expiration)


def _wlc_pick(dests: Sequence[Dest]) -> Dest | None:
    """__ip_vs_lblc_schedule / __ip_vs_lblcr_schedule: weighted least-connection over all."""
    least = None
    loh = 0
    it = iter(dests)
    for d in it:
        if d.overloaded:
            continue
        if d.weight > 0:
            least, loh = d, d.overhead
            break
    if least is None:
        return None
    for d in it:
        if d.overloaded:
            continue
        doh = d.overhead
        if loh * d.weight > doh * least.weight:
            least, loh = d, doh
    return least


def _lblc_overloaded(dest: Dest, dests: Sequence[Dest]) -> bool:
    """is_overloaded in ip_vs_lblc.c/ip_vs_lblcr.c: more active connections than its weight while
    some server has fewer than half its weight in active connections."""
    if dest.active > dest.weight:
        return any(d.active * 2 < d.weight for d in dests)
    return False


class LocalityBasedLeastConnection(Scheduler):
    """lblc: remember a server per destination address; keep using it unless it is unavailable,
    has weight 0 or is overloaded in the lblc sense, then pick by wlc and remember that. Entries
    unused for lblc_expiration (24 h) are dropped."""

    name = "lblc"

    def __init__(self, flags: int = 0, expiration: float = LBLC_EXPIRATION) -> None:
        super().__init__(flags)
        self.expiration = expiration
        self.cache: dict[int, list] = {}  # daddr -> [dest, lastuse]

    def update(self, dests):
        super().update(dests)
        alive = {id(d) for d in self.dests}
        # ip_vs_lblc_flush on dest removal is not done by the kernel; entries pointing to a
        # removed dest fail the "available" test and are replaced. Drop them here for memory.
        for k in [k for k, e in self.cache.items() if id(e[0]) not in alive]:
            del self.cache[k]

    def schedule(self, saddr, sport, daddr, dport, now):
        en = self.cache.get(daddr)
        if en is not None:
            en[1] = now
            d = en[0]
            if d.available and d.weight > 0 and not _lblc_overloaded(d, self.dests):
                return d
        d = _wlc_pick(self.dests)
        if d is None:
            return None
        if en is not None:
            en[0] = d  # ip_vs_lblc_new: replace the dest of an existing entry
        else:
            self.cache[daddr] = [d, now]
        return d

    def expire(self, now):
        for k in [k for k, e in self.cache.items() if now - e[1] >= self.expiration]:
            del self.cache[k]


class LocalityBasedLeastConnectionReplication(Scheduler):
    """lblcr: remember a *set* of servers per destination address and use its weighted least
    loaded member; if that one is overloaded (lblc sense) add the wlc choice over all servers to
    the set; a set with more than one member that has not changed for lblcr_expiration loses its
    most loaded member."""

    name = "lblcr"

    def __init__(self, flags: int = 0, expiration: float = LBLCR_EXPIRATION) -> None:
        super().__init__(flags)
        self.expiration = expiration
        self.cache: dict[int, list] = {}  # daddr -> [set(list, newest first), lastmod, lastuse]

    def update(self, dests):
        super().update(dests)
        alive = {id(d) for d in self.dests}
        for e in self.cache.values():
            e[0][:] = [d for d in e[0] if id(d) in alive]

    @staticmethod
    def _set_min(members: list[Dest]) -> Dest | None:
        # ip_vs_dest_set_min
        least = None
        loh = 0
        it = iter(members)
        for d in it:
            if d.overloaded:
                continue
            if d.weight > 0 and d.available:
                least, loh = d, d.overhead
                break
        if least is None:
            return None
        for d in it:
            if d.overloaded:
                continue
            doh = d.overhead
            if loh * d.weight > doh * least.weight and d.available:
                least, loh = d, doh
        return least

    @staticmethod
    def _set_max(members: list[Dest]) -> Dest | None:
        # ip_vs_dest_set_max
        most = None
        moh = 0
        it = iter(members)
        for d in it:
            if d.weight > 0:
                most, moh = d, d.overhead
                break
        if most is None:
            return None
        for d in it:
            doh = d.overhead
            if moh * d.weight < doh * most.weight and d.weight > 0:
                most, moh = d, doh
        return most

    def schedule(self, saddr, sport, daddr, dport, now):
        en = self.cache.get(daddr)
        if en is not None:
            en[2] = now
            members = en[0]
            d = self._set_min(members)
            if len(members) > 1 and now > en[1] + self.expiration:
                m = self._set_max(members)
                if m is not None:
                    members.remove(m)
                    en[1] = now
            if d is not None and not _lblc_overloaded(d, self.dests):
                return d
            d = _wlc_pick(self.dests)
            if d is None:
                return None
            if d not in members:
                members.insert(0, d)  # list_add_rcu: at the head
                en[1] = now
            return d
        d = _wlc_pick(self.dests)
        if d is None:
            return None
        self.cache[daddr] = [[d], now, now]
        return d

    def expire(self, now):
        for k in [k for k, e in self.cache.items() if now - e[2] >= self.expiration]:
            del self.cache[k]


# --------------------------------------------------------------------------- fo, ovf

class WeightedFailover(Scheduler):
    """fo (ip_vs_fo.c): the first server with the highest weight that is not overloaded."""

    name = "fo"

    def schedule(self, saddr, sport, daddr, dport, now):
        best = None
        hw = 0
        for d in self.dests:
            if not d.overloaded and d.weight > hw:
                best, hw = d, d.weight
        return best


class WeightedOverflow(Scheduler):
    """ovf (ip_vs_ovf.c): the highest-weight server whose active connections do not exceed its
    weight; overflow to the next one in weight order when they do."""

    name = "ovf"

    def schedule(self, saddr, sport, daddr, dport, now):
        best = None
        hw = 0
        for d in self.dests:
            w = d.weight
            if d.overloaded or d.active > w or w == 0:
                continue
            if best is None or w > hw:
                best, hw = d, w
        return best


SCHEDULERS: dict[str, Callable[..., Scheduler]] = {
    cls.name: cls for cls in (RoundRobin, WeightedRoundRobin, LeastConnection,
                              WeightedLeastConnection, ShortestExpectedDelay, NeverQueue,
                              SourceHashing, DestinationHashing, MaglevHashing,
                              LocalityBasedLeastConnection,
                              LocalityBasedLeastConnectionReplication, WeightedFailover,
                              WeightedOverflow)
}


def make_scheduler(name: str, flags: int = 0) -> Scheduler:
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}") from None
    return cls(flags)
