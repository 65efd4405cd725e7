"""dataplane/nft_read.py: the nf_tables answers it decodes, built here (the kernel's side is
tests/integration/test_nft_read_lab.py)."""

from __future__ import annotations

import struct

from hadirector.dataplane import nft_read as nr
from hadirector.net.nlraw import attr, attr_str, count_attrs


def nfgen(family: int) -> bytes:
    return nr.NFGEN.pack(family, 0, 0)


def test_tables_and_counters():
    assert nr.parse_table(nfgen(5) + attr_str(nr.NFTA_TABLE_NAME, "hadirector_eth0")) == ("netdev", "hadirector_eth0")
    assert nr.parse_table(nfgen(10) + attr_str(nr.NFTA_TABLE_NAME, "t")) == ("ip6", "t")
    assert nr.parse_table(nfgen(99) + attr_str(nr.NFTA_TABLE_NAME, "t")) is None  # a family nft has no name for
    assert nr.parse_table(nfgen(2)) is None and nr.parse_table(b"") is None

    data = attr(nr.NFTA_COUNTER_BYTES, struct.pack("!Q", 1 << 40)) + attr(nr.NFTA_COUNTER_PACKETS, struct.pack("!Q", 7))
    def obj(table="t", kind=nr.NFT_OBJECT_COUNTER):
        return (nfgen(2) + attr_str(nr.NFTA_OBJ_TABLE, table) + attr_str(nr.NFTA_OBJ_NAME, "c")
                + attr(nr.NFTA_OBJ_TYPE, struct.pack("!I", kind)) + attr(0x8000 | nr.NFTA_OBJ_DATA, data))
    assert nr.parse_counter(obj(), "t") == ("c", (7, 1 << 40))
    assert nr.parse_counter(obj(table="u"), "t") is None  # another table's
    assert nr.parse_counter(obj(kind=2), "t") is None  # a quota, not a counter


def test_set_elements_are_counted_not_decoded():
    elem = attr(0x8000 | nr.NFTA_LIST_ELEM, attr(1, attr(1, b"\xc6\x13\0\1")))
    msg = (nfgen(5) + attr_str(nr.NFTA_SET_ELEM_LIST_TABLE, "t") + attr_str(nr.NFTA_SET_ELEM_LIST_SET, "s")
           + attr(0x8000 | nr.NFTA_SET_ELEM_LIST_ELEMENTS, elem * 1000))
    assert nr.count_elements(msg) == 1000
    assert nr.count_elements(nfgen(5) + attr_str(nr.NFTA_SET_ELEM_LIST_TABLE, "t")) == 0
    assert count_attrs(elem * 3 + b"\1\0", nr.NFTA_LIST_ELEM) == 3  # a truncated tail ends the walk
