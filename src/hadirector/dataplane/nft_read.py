"""Reads of nf_tables over nfnetlink (include/uapi/linux/netfilter/nf_tables.h), for what the
nft data plane asks often: which tables exist (every apply), the named counters and how many
elements a flow set holds (every statistics interval).

libnftables answers a listing from its cache and fills much more of it than the listing shows:
for `list tables` and `list counters` every chain, rule and set with its elements (measured with
20000 entries in one direct-routing flow set: 138 ms and 317 ms; 1 ms with empty sets), for
`list set` that set's elements as JSON (895 ms), so every apply paid for the connections the
director remembered, and the statistics held the worker (and the applies waiting for it) for
about a second every interval. One dump each answers the same questions: the tables in
microseconds, the set's size by counting its elements without decoding them. The writes stay
libnftables transactions (libnft.py). Used by libnft.Nft in the thread that uses it (the socket
belongs to that thread's network namespace).
"""

from __future__ import annotations

import socket
import struct

from ..net.nlraw import NLM_F_DUMP, NetlinkSocket, attr, attr_str, attrs, count_attrs, text

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10  # linux/netfilter/nfnetlink.h
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE = 0, 1
NFT_MSG_NEWSETELEM, NFT_MSG_GETSETELEM = 12, 13
NFT_MSG_NEWOBJ, NFT_MSG_GETOBJ = 18, 19
NFTA_TABLE_NAME = 1
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_OBJ_TABLE, NFTA_OBJ_NAME, NFTA_OBJ_TYPE, NFTA_OBJ_DATA = 1, 2, 3, 4
NFT_OBJECT_COUNTER = 1
NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS = 1, 2
NFGEN = struct.Struct("=BBH")  # struct nfgenmsg: family, version (NFNETLINK_V0), res_id
# NFPROTO_* (linux/netfilter.h) -> nft's family names
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
NFPROTO = {name: n for n, name in FAMILIES.items()}
DUMP_TRIES = 3


class NftRead:
    def __init__(self) -> None:
        self._nl = NetlinkSocket(NETLINK_NETFILTER)

    def close(self) -> None:
        self._nl.close()

    def tables(self) -> list[tuple[str, str]]:
        """(family, name) of every table, as `nft list tables` gives them. OSError, or
        nlraw.NetlinkRefused (e.g. EPERM without CAP_NET_ADMIN)."""
        got = self._dump(NFT_MSG_GETTABLE, NFGEN.pack(socket.AF_UNSPEC, 0, 0), "list tables")
        return [t for t in (parse_table(p) for p in _only(got, NFT_MSG_NEWTABLE)) if t is not None]

    def counters(self, family: str, table: str) -> dict[str, tuple[int, int]]:
        """The named counters of one table: name -> (packets, bytes)."""
        body = (NFGEN.pack(NFPROTO[family], 0, 0) + attr_str(NFTA_OBJ_TABLE, table)
                + attr(NFTA_OBJ_TYPE, struct.pack("!I", NFT_OBJECT_COUNTER)))
        got = self._dump(NFT_MSG_GETOBJ, body, f"list counters {family} {table}")
        out: dict[str, tuple[int, int]] = {}
        for p in _only(got, NFT_MSG_NEWOBJ):
            c = parse_counter(p, table)
            if c is not None:
                out[c[0]] = c[1]
        return out

    def set_size(self, family: str, table: str, name: str) -> int:
        """How many elements set `name` holds (expired ones the kernel has not reaped yet are
        not dumped). NetlinkRefused ENOENT when there is no such set."""
        body = (NFGEN.pack(NFPROTO[family], 0, 0) + attr_str(NFTA_SET_ELEM_LIST_TABLE, table)
                + attr_str(NFTA_SET_ELEM_LIST_SET, name))
        got = self._dump(NFT_MSG_GETSETELEM, body, f"list set {family} {table} {name}")
        return sum(count_elements(p) for p in _only(got, NFT_MSG_NEWSETELEM))

    def _dump(self, msg: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        for _ in range(DUMP_TRIES):
            got = self._nl.request((NFNL_SUBSYS_NFTABLES << 8) | msg, NLM_F_DUMP, body, what)
            if not got.interrupted:
                break
        return got.messages  # after DUMP_TRIES interrupted dumps: the last one (a moment's view)


def _only(messages: list[tuple[int, bytes]], msg: int) -> list[bytes]:
    return [p for k, p in messages if k == (NFNL_SUBSYS_NFTABLES << 8) | msg]


def parse_table(payload: bytes) -> tuple[str, str] | None:
    """An NFT_MSG_NEWTABLE: (family, name)."""
    if len(payload) < NFGEN.size:
        return None
    fam = FAMILIES.get(payload[0])
    name = attrs(payload, NFGEN.size).get(NFTA_TABLE_NAME)
    if fam is None or name is None:
        return None
    return fam, text(name)


def parse_counter(payload: bytes, table: str) -> tuple[str, tuple[int, int]] | None:
    """An NFT_MSG_NEWOBJ of a counter in `table`: (name, (packets, bytes))."""
    if len(payload) < NFGEN.size:
        return None
    a = attrs(payload, NFGEN.size)
    if NFTA_OBJ_NAME not in a or text(a.get(NFTA_OBJ_TABLE, b"")) != table:
        return None
    if struct.unpack("!I", a.get(NFTA_OBJ_TYPE, b"\0\0\0\0"))[0] != NFT_OBJECT_COUNTER:
        return None
    data = attrs(a.get(NFTA_OBJ_DATA, b""))
    def u64(k: int) -> int:
        v = data.get(k, b"")
        return struct.unpack("!Q", v)[0] if len(v) == 8 else 0
    return text(a[NFTA_OBJ_NAME]), (u64(NFTA_COUNTER_PACKETS), u64(NFTA_COUNTER_BYTES))


def count_elements(payload: bytes) -> int:
    """The NFTA_LIST_ELEM entries of an NFT_MSG_NEWSETELEM, counted without decoding them."""
    if len(payload) < NFGEN.size:
        return 0
    elems = attrs(payload, NFGEN.size).get(NFTA_SET_ELEM_LIST_ELEMENTS)
    return 0 if elems is None else count_attrs(elems, NFTA_LIST_ELEM)
