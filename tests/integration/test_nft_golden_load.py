"""Every golden ruleset (tests/fixtures/nft) is accepted by the kernel as one transaction, and
reads back through the JSON API with the chains, sets and counters it declared."""

from __future__ import annotations

import glob
import json
import os

import pytest

from hdtest import need_root

GOLDEN = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "fixtures", "nft", "*.json")))


@pytest.mark.parametrize("path", GOLDEN, ids=[os.path.basename(p)[:-5] for p in GOLDEN])
def test_golden_ruleset_loads(lab, path):
    need_root("nft")
    lan = lab.switch("lan")
    h = lab.host("director")
    h.connect(lan, "198.18.0.2/24")  # eth0
    h.connect(lan, "198.18.1.1/24")  # eth1
    with open(path) as f:
        doc = json.load(f)
    h.run(["nft", "-j", "-f", path])
    declared = {(k, v["family"], v.get("table", v.get("name")), v["name"])
                for c in doc["nftables"] for k, v in c["add"].items() if k in ("chain", "set", "counter")}
    listed = set()
    for fam, table in {(d[1], d[2]) for d in declared}:
        out = json.loads(h.run(["nft", "-j", "list", "table", fam, table]).stdout)
        listed |= {(k, v["family"], v["table"], v["name"]) for o in out["nftables"]
                   for k, v in o.items() if k in ("chain", "set", "counter")}
    assert declared == listed
    rules = sum(1 for c in doc["nftables"] if "rule" in c["add"])
    out = json.loads(h.run(["nft", "-j", "list", "ruleset"]).stdout)
    assert sum(1 for o in out["nftables"] if "rule" in o) == rules
