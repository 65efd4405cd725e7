"""Capabilities are data the rest of the program can trust: what a data plane's `capabilities`
say it cannot do, it refuses; what they say it can do, it renders. (The proxy's side, which needs
sockets, is in tests/integration/test_proxy_tcp.py.)"""

from __future__ import annotations

import pytest

from hadirector.balancer.schedulers import SCHEDULERS
from hadirector.balancer.state import build_desired
from hadirector.config.model import Balancer
from hadirector.dataplane.factory import KINDS, capabilities
from hadirector.dataplane.nft import NftDataPlane
from hadirector.dataplane.nft_render import RenderEnv, RenderError, Link, render
from hadirector.dataplane.proxy import ProxyDataPlane

VIP = "198.18.0.100"
ENV = RenderEnv(links={"198.18.0.11": Link("eth0", "02:00:00:00:00:11"),
                       "198.18.0.12": Link("eth0", "02:00:00:00:00:12")},
                dev_macs={"eth0": "02:00:00:00:00:02"}, vip_devs={VIP: "eth0"},
                local_addrs=frozenset({"198.18.0.2"}))
NFT = capabilities("nft")


def _render(*virtual):
    return render(build_desired(Balancer.model_validate({"virtual": list(virtual)})), ENV)


def _refused(*virtual) -> bool:
    try:
        _render(*virtual)
    except RenderError:
        return True
    return False


def test_lookup_without_making_a_data_plane():
    assert KINDS == ("nft", "proxy")
    assert capabilities("nft") is NftDataPlane.capabilities and NFT.kind == "nft"
    assert capabilities("proxy") is ProxyDataPlane.capabilities
    assert capabilities("proxy").kind == "proxy" and not capabilities("proxy").needs_root
    with pytest.raises(ValueError, match="unknown data plane 'ipvs'; expected one of nft, proxy"):
        capabilities("ipvs")


@pytest.mark.parametrize("method", ["gate", "masq", "ipip"])
def test_nft_refuses_exactly_the_methods_it_lacks(method):
    reals = [{"address": "198.18.0.11", "method": method}]
    assert _refused({"address": VIP, "port": 80, "reals": reals}) == (not NFT.accepts_method(method))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_nft_renders_every_scheduler_it_lists(scheduler):
    assert scheduler in NFT.schedulers
    reals = [{"address": f"198.18.1.{i}", "method": "masq", "weight": i} for i in (1, 2, 3)]
    assert _render({"address": VIP, "port": 80, "scheduler": scheduler, "reals": reals}).tables


def test_nft_protocols_and_service_shapes():
    masq = [{"address": "198.18.1.1", "method": "masq"}]
    gate = [{"address": "198.18.0.11", "method": "gate"}]
    assert NFT.protocols == {"tcp", "udp", "fwm"}
    for v in ({"address": VIP, "port": 80, "protocol": "tcp"},
              {"address": VIP, "port": 53, "protocol": "udp"}, {"fwmark": 3}):
        assert not _refused({**v, "reals": masq})
    assert _refused({"fwmark": 3, "reals": gate}) == (not NFT.gate_fwmark)
    assert _refused({"address": VIP, "port": 80, "reals": gate + masq}) == (not NFT.mixed_gate_nat)
    moved = [{"address": "198.18.0.11", "port": 8080, "method": "gate"}]
    assert _refused({"address": VIP, "port": 80, "reals": moved}) == (not NFT.gate_port_change)
    ops = _render({"address": VIP, "port": 53, "protocol": "udp", "ops": True, "reals": masq})
    assert bool([w for w in ops.warnings if "one-packet" in w]) == (not NFT.ops)
