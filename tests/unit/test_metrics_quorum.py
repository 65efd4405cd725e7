"""hadirector_quorum comes from the cluster core's quorum (cluster/quorum.py), and only where
quorum decides something (issue 14, item 2): read through the real collector from a real
NodeCore."""

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hadirector.cluster.node import NodeCore
from hadirector.cluster.sim import cluster_config
from hadirector.daemon.clock import now_ms
from hadirector.daemon.metrics import DaemonCollector


class _Daemon:
    """What the collector reads of a daemon: its core, and no balancer on this node."""

    balancer = None

    def __init__(self, core: NodeCore) -> None:
        self.core = core


def _scrape(cfg) -> dict:
    reg = CollectorRegistry()
    reg.register(DaemonCollector(_Daemon(NodeCore(cfg, "alpha", 1, now_ms()))))
    return {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}


def test_three_nodes_alone_is_not_quorate():
    fams = _scrape(cluster_config(nodes=("alpha", "beta", "gamma")))
    assert [s.value for s in fams["hadirector_quorum"].samples] == [0.0]
    votes = {s.labels["kind"]: s.value for s in fams["hadirector_quorum_votes"].samples}
    assert votes == {"present": 1.0, "expected": 3.0}


def test_two_plain_nodes_have_no_quorum_metric():
    fams = _scrape(cluster_config())
    assert "hadirector_peer_up" in fams
    assert "hadirector_quorum" not in fams and "hadirector_quorum_votes" not in fams


def test_two_nodes_waiting_for_all_export_it():
    fams = _scrape(cluster_config(quorum={"wait_for_all": True}))
    assert [s.value for s in fams["hadirector_quorum"].samples] == [0.0]
