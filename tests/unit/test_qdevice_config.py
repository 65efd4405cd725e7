"""[cluster.quorum.device] in native TOML, and what the daemon builds from it (daemon/qdevice.py
from_config: node ids, settings, TLS files)."""

from __future__ import annotations

import pytest

from hadirector.cluster import qdevice_wire as w
from hadirector.config import ConfigError
from hadirector.config.errors import Collector
from hadirector.config.native import dump_toml, load_toml_text
from hadirector.daemon.qdevice import from_config, node_ids

BASE = """
[cluster]
name = "edge"
nodes = ["zeta", "alpha", "mid"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
[cluster.auth]
method = "sha256"
key = "k"
[cluster.quorum.device]
host = "198.18.9.1"
"""


def load(extra: str = ""):
    return load_toml_text(BASE + extra, "c.toml", Collector())


def test_defaults_and_round_trip():
    cfg = load()
    d = cfg.cluster.quorum.device
    assert (d.port, d.algorithm, d.tls, d.heartbeat_interval, d.server_name) == (5403, "ffsplit", True, 2000,
                                                                                 "Qnetd Server")
    again = load_toml_text(dump_toml(cfg), "again.toml", Collector())
    assert again.cluster.quorum.device == d


def test_native_keys():
    d = load('heartbeat_interval = "1500ms"\ntls = false\nalgorithm = "lms"\nca_file = "/x/ca.pem"\n'
             'cert_file = "/x/c.pem"\nkey_file = "/x/c.key"\nserver_name = "qnetd.example"\n').cluster.quorum.device
    assert (d.heartbeat_interval, d.tls, d.algorithm, d.ca_file, d.server_name) == \
        (1500, False, "lms", "/x/ca.pem", "qnetd.example")


@pytest.mark.parametrize("extra,path", [('heartbeat_interval = "50ms"\n', "cluster.quorum.device.heartbeat_interval"),
                                        ('heartbeat_interval = "200s"\n', "cluster.quorum.device.heartbeat_interval"),
                                        ('algorithm = "2nodelms"\n', "cluster.quorum.device.algorithm")])
def test_bad_values_name_the_key(extra, path):
    col = Collector()
    with pytest.raises(ConfigError):
        load_toml_text(BASE + extra, "c.toml", col)
    assert any(path in str(p) for p in col.errors), [str(p) for p in col.errors]


def test_node_ids_follow_sorted_names():
    assert node_ids(["zeta", "alpha", "mid"]) == {"alpha": 1, "mid": 2, "zeta": 3}


def test_from_config_builds_the_client_as_the_config_says():
    cfg = load('heartbeat_interval = "1s"\n')
    d = from_config(cfg.cluster, "zeta", lambda *a: None)
    s = d.core.s
    assert (s.cluster_name, s.node_id, s.config_nodes, s.algorithm, s.heartbeat_interval, s.tls) == \
        ("edge", 3, (1, 2, 3), w.Algorithm.FFSPLIT, 1000, True)
    assert (d.host, d.port) == ("198.18.9.1", 5403)
    assert d.tls.ca_file.endswith("qnetd-cacert.pem") and d.tls.server_name == "Qnetd Server"
    plain = from_config(load("tls = false\n").cluster, "alpha", lambda *a: None)
    assert plain.tls is None and plain.core.s.node_id == 1
