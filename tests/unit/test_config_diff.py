"""config/diff.py: what a reload says changed, in words, and which changes need a restart."""

from hadirector.config.diff import applied, changes
from hadirector.config.native import load_toml_text

BASE = """
[cluster]
nodes = ["a", "b"]
[cluster.timing]
keepalive = "100ms"
deadtime = "500ms"
[cluster.auth]
key = "secret-one"
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2", "198.18.0.3"]
[cluster.logging]
logfile = "/var/log/ha.log"
[[groups]]
name = "web"
preferred_node = "a"
[[groups.resources]]
kind = "vip"
address = "198.18.0.100"
[[groups.resources]]
kind = "balancer"
[balancer]
checkinterval = "10s"
dataplane = "proxy"
[[balancer.virtual]]
address = "198.18.0.1"
port = 80
scheduler = "wrr"
[[balancer.virtual.reals]]
address = "198.18.1.4"
weight = 3
method = "masq"
[[balancer.virtual.reals]]
address = "198.18.1.5"
method = "masq"
"""


def _diff(old: str, new: str):
    a, b = load_toml_text(old), load_toml_text(new)
    return [(str(c), c.live) for c in changes(a, b)], applied(a, b)


def test_nothing_changed():
    assert _diff(BASE, BASE)[0] == []


def test_a_real_weight_and_a_scheduler_in_words():
    new = BASE.replace("weight = 3", "weight = 2").replace('scheduler = "wrr"', 'scheduler = "rr"')
    got, _ = _diff(BASE, new)
    assert got == [("virtual TCP 198.18.0.1:80: scheduler wrr -> rr", True),
                   ("virtual TCP 198.18.0.1:80: real 198.18.1.4:80 weight 3 -> 2", True)]


def test_reals_and_virtuals_added_and_removed():
    new = BASE.replace('[[balancer.virtual.reals]]\naddress = "198.18.1.5"\nmethod = "masq"\n',
                       '[[balancer.virtual.reals]]\naddress = "198.18.1.6"\nport = 8080\nmethod = "masq"\n')
    new += '[[balancer.virtual]]\naddress = "198.18.0.1"\nport = 53\nprotocol = "udp"\nchecktype = "on"\n'
    got, _ = _diff(BASE, new)
    assert ("virtual TCP 198.18.0.1:80: real 198.18.1.5:80 removed", True) in got
    assert ("virtual TCP 198.18.0.1:80: real 198.18.1.6:8080 added (masq, weight 1)", True) in got
    assert ("virtual UDP 198.18.0.1:53: added (0 reals)", True) in got


def test_a_global_is_said_once_not_for_every_virtual():
    got, _ = _diff(BASE, BASE.replace('checkinterval = "10s"', 'checkinterval = "5s"'))
    assert got == [("balancer: checkinterval 10s -> 5s", True)]


def test_cluster_and_groups_need_a_restart_and_name_the_setting():
    new = (BASE.replace('deadtime = "500ms"', 'deadtime = "1s"')
           .replace('address = "198.18.0.100"', 'address = "198.18.0.101"')
           .replace('key = "secret-one"', 'key = "secret-two"')
           .replace('dataplane = "proxy"', 'dataplane = "nft"'))
    got, run = _diff(BASE, new)
    assert ("cluster.timing.deadtime: 500ms -> 1s", False) in got
    assert ("group web: resources[0].address 198.18.0.100 -> 198.18.0.101", False) in got
    assert ("cluster.auth.key: (old secret) -> (new secret)", False) in got
    assert ("balancer: dataplane proxy -> nft", False) in got
    assert not any("secret-" in text for text, _ in got), got
    # what keeps running: the old cluster, groups and data plane
    assert run.cluster.timing.deadtime == 500 and run.balancer.dataplane == "proxy"
    assert run.groups[0].resources[0].address == "198.18.0.100"


def test_logging_applies_at_once():
    got, run = _diff(BASE, BASE.replace("/var/log/ha.log", "/var/log/hadirector.log"))
    assert got == [("cluster.logging.logfile: /var/log/ha.log -> /var/log/hadirector.log", True)]
    assert run.cluster.logging.logfile == "/var/log/hadirector.log"


def test_fence_passwords_are_never_shown():
    from hadirector.config.diff import _cluster
    from hadirector.config.model import Config
    from hadirector.cluster.sim import cluster_config

    def cfg(pw):
        c = cluster_config()
        f = {"devices": [{"agent": "fence_ipmilan", "params": {"ip": "198.18.5.1", "password": pw}},
                         {"kind": "stonith", "type": "external/ipmi", "param_text": f"beta 198.18.5.2 admin {pw} lan"}]}
        return Config.model_validate({**c.model_dump(mode="json"), "cluster": {**c.cluster.model_dump(mode="json"),
                                                                               "fencing": f}})
    text = "\n".join(str(x) for x in _cluster(cfg("old-pw"), cfg("new-pw")))
    assert "old-pw" not in text and "new-pw" not in text
    assert "cluster.fencing.devices[0].params.password: (old secret) -> (new secret)" in text, text
    assert "params.ip" not in text  # unchanged: no line
