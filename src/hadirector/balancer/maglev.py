"""Maglev consistent hashing, built the way the kernel's mh scheduler builds it (ip_vs_mh.c).

How it works (Eisenbud et al., "Maglev", NSDI 2016, section 3.4): every server gets a preference
list of all table positions, a permutation given by an `offset` and a `skip` derived from two
hashes of its address and port. Servers take turns claiming their next free preferred position
until the table is full; a server claims `turns` positions per round, its weight divided by the
gcd of all weights (and shifted right when weights are large, ip_vs_mh_shift_weight), so positions
are shared in weight ratio. A lookup hashes the client address (plus port with mh-port) to one
position. Removing one of N servers only re-assigns the positions it held (about 1/N of them)
plus a small fraction of others.

Differences from the kernel, deliberate: the table has 65537 positions (the Maglev paper's size,
a prime) instead of the kernel's default 4093 (CONFIG_IP_VS_MH_TAB_INDEX=12); weight scaling uses
IP_VS_MH_TAB_BITS = 8, the kernel's value for its 64K-class table. The hash is the kernel's:
hsiphash (SipHash-1-3 on 64-bit) of the u32 `offset + port + addr` with the fixed keys of
generate_hash_secret, so positions are reproducible across processes and hosts.
"""

from __future__ import annotations

from math import gcd
from typing import Sequence

TABLE_SIZE = 65537
TAB_BITS = 8

_M64 = 0xFFFFFFFFFFFFFFFF
# ip_vs_mh.c generate_hash_secret
HASH1 = (2654435761, 2654435761)
HASH2 = (2654446892, 2654446892)


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def hsiphash_u32(value: int, key: tuple[int, int]) -> int:
    """lib/siphash.c __hsiphash_aligned on 64-bit (SipHash-1-3) for a 4-byte input, truncated to
    u32 as the kernel's return type does."""
    k0, k1 = key
    v0 = 0x736F6D6570736575 ^ k0
    v1 = 0x646F72616E646F6D ^ k1
    v2 = 0x6C7967656E657261 ^ k0
    v3 = 0x7465646279746573 ^ k1
    b = (4 << 56) | (value & 0xFFFFFFFF)
    v3 ^= b
    for r in range(4):  # one compression round, then v0 ^= b, v2 ^= 0xff, three more
        if r == 1:
            v0 ^= b
            v2 ^= 0xFF
        v0 = (v0 + v1) & _M64
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _M64
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _M64
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _M64
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return (v0 ^ v1 ^ v2 ^ v3) & 0xFFFFFFFF


def _fold(addr: int) -> int:
    if addr >> 32:
        return (addr ^ (addr >> 32) ^ (addr >> 64) ^ (addr >> 96)) & 0xFFFFFFFF
    return addr


def hashkey(addr: int, port: int, key: tuple[int, int], offset: int = 0) -> int:
    """ip_vs_mh_hashkey: hsiphash of (offset + port + folded address) as a u32."""
    return hsiphash_u32((offset + port + _fold(addr)) & 0xFFFFFFFF, key)


class MaglevTable:
    """The lookup table: `table[i]` is the index of a server in the list given to `populate`,
    or -1 while the table is empty."""

    def __init__(self, size: int = TABLE_SIZE) -> None:
        self.size = size
        self.table: list[int] = [-1] * size

    def populate(self, servers: Sequence[tuple[int, int, int]]) -> list[int]:
        """servers: (address as int, port, weight) in the service's list order. A weight of 0
        gets no positions (ip_vs_mh_permutate: turns = 0 when last_weight is 0)."""
        size = self.size
        weights = [w for _, _, w in servers]
        g = 0
        for w in weights:
            if w > 0:
                g = gcd(w, g) if g > 0 else w
        if g < 1:  # no server, or all weights zero: empty table (ip_vs_mh_reset)
            self.table = [-1] * size
            return self.table
        mw = max(weights) // g
        rshift = max(mw.bit_length() - TAB_BITS, 0)  # ip_vs_mh_shift_weight: fls(mw) - TAB_BITS
        offsets, skips, turns = [], [], []
        for addr, port, w in servers:
            offsets.append(hashkey(addr, port, HASH1) % size)
            skips.append(hashkey(addr, port, HASH2) % (size - 1) + 1)
            turns.append(((w // g) >> rshift) or (1 if w != 0 else 0))
        table = [-1] * size
        perm = offsets[:]
        n = 0
        order = [i for i in range(len(servers)) if turns[i] >= 1]
        # ip_vs_mh_populate: servers take turns, `turns[i]` positions each per round
        while True:
            for i in order:
                skip = skips[i]
                c = perm[i]
                for _ in range(turns[i]):
                    while table[c] >= 0:
                        c += skip
                        if c >= size:
                            c -= size
                    table[c] = i
                    n += 1
                    if n == size:
                        self.table = table
                        return table
                perm[i] = c

    def slot(self, addr: int, port: int, offset: int = 0) -> int:
        return hashkey(addr, port, HASH1, offset) % self.size

    def lookup(self, addr: int, port: int = 0, offset: int = 0) -> int:
        """Index of the server for a client (ip_vs_mh_get), -1 when the table is empty."""
        return self.table[hashkey(addr, port, HASH1, offset) % self.size]
