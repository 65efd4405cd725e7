"""dataplane/nft_read.py (through libnft.Nft) against nft's own listings, in a lab namespace:
the tables, the named counters and set sizes read over nfnetlink are the ones `nft -j` lists."""

from __future__ import annotations

import json

import pytest

from hadirector.dataplane.libnft import Nft, NftError
from hadirector.lab import NetnsWorker
from hdtest import need_root


def nft_json(host, *args):
    return [o for o in json.loads(host.run(["nft", "-j", *args]).stdout)["nftables"] if "metainfo" not in o]


def test_reads_match_nft_listings(lab):
    need_root("nft")
    h = lab.host("h")
    elems = ", ".join(f"198.19.{i // 250}.{i % 250 + 1} . {1024 + i}" for i in range(3000))
    h.run(["nft", "-f", "-"], input=(
        "table ip t {\n counter c1 { packets 5 bytes 700; }\n counter c2 { }\n"
        " set s { type ipv4_addr . inet_service; flags timeout; timeout 900s; }\n"
        " set e { type ipv4_addr; }\n}\n"
        "table ip6 t {\n counter c1 { packets 1 bytes 2; }\n}\n"
        "table netdev t_lo {\n chain c { type filter hook ingress device lo priority 0; }\n}\n"
        "table inet other {\n counter x { }\n}\n"
        f"add element ip t s {{ {elems} }}\n"))
    with NetnsWorker(h.netns) as w:
        nft = w.call(Nft)
        try:
            tables = w.call(nft.tables)
            counters = w.call(nft.counters, "ip", "t")
            counters6 = w.call(nft.counters, "ip6", "t")
            sizes = {n: w.call(nft.set_size, "ip", "t", n) for n in ("s", "e")}
            with pytest.raises(NftError, match="list set ip t nope: No such file or directory"):
                w.call(nft.set_size, "ip", "t", "nope")
        finally:
            w.call(nft.close)
    assert tables == [(o["table"]["family"], o["table"]["name"]) for o in nft_json(h, "list", "tables")]
    assert ("netdev", "t_lo") in tables and ("inet", "other") in tables
    want = {o["counter"]["name"]: (o["counter"]["packets"], o["counter"]["bytes"])
            for o in nft_json(h, "list", "counters", "table", "ip", "t")}
    assert counters == want == {"c1": (5, 700), "c2": (0, 0)}
    assert counters6 == {"c1": (1, 2)}  # the same table name in another family is another table
    listed = {o["set"]["name"]: len(o["set"].get("elem", [])) for o in nft_json(h, "list", "table", "ip", "t")
              if "set" in o}
    assert sizes == listed == {"s": 3000, "e": 0}
