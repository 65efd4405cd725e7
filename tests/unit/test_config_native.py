"""Native TOML: errors name key paths; dump -> load round-trips (the seeds through `convert`, and
random valid configurations by hypothesis); the shipped example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadirector.config import ConfigError, load_config
from hadirector.config.build import build_config
from hadirector.config.errors import Collector
from hadirector.config.model import Config
from hadirector.config.native import dump_toml, load_toml_text
from legacy_util import copy_fixture, load

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "hadirector" / "data" / "examples" / "cluster.toml"

MINIMAL = """
[cluster]
nodes = ["a", "b"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
[cluster.auth]
method = "sha256"
key = "k"
"""


def problems(text: str) -> list[str]:
    col = Collector()
    with pytest.raises(ConfigError):
        load_toml_text(text, "x.toml", col)
    return [str(p) for p in col.errors]


# ---------------------------------------------------------------- errors name key paths


def test_errors_name_key_paths():
    errs = problems(MINIMAL + '[cluster.timing]\ndeadtime = "soon"\nkeepalive = -1\nbogus = 1\n')
    assert "cluster.timing.deadtime: expected a duration such as 2, 1.5 or 2000ms, got 'soon'" in errs
    assert "cluster.timing.keepalive: duration must not be negative, got -1" in errs
    assert "cluster.timing.bogus: unknown key" in errs


def test_rule_errors_name_key_paths():
    errs = problems(MINIMAL + "[cluster.timing]\nkeepalive = 2\ndeadtime = 4\n")
    assert errs == ["cluster.timing.deadtime: deadtime (4000 ms) must be more than twice keepalive (2000 ms)"]


def test_nested_list_paths():
    errs = problems(MINIMAL + '[[groups]]\nname = "g"\npreferred_node = "c"\n[[groups.resources]]\n'
                    'kind = "vip"\naddress = "300.1.1.1"\n')
    assert errs == ["groups.0.resources.0.address: expected an IP address, got '300.1.1.1'"]
    errs = problems(MINIMAL + '[[groups]]\nname = "g"\npreferred_node = "c"\n[[groups.resources]]\n'
                    'kind = "script"\nname = "x"\n')
    assert errs == ["groups.0.preferred_node: 'c' is not a cluster node; nodes are a, b"]


def test_a_vip_drain_must_be_shorter_than_the_groups_stop_timeout():
    group = '[[groups]]\nname = "g"\npreferred_node = "a"\nstop_timeout = "2s"\n[[groups.resources]]\n' \
            'kind = "script"\nname = "x"\n[[groups.resources]]\nkind = "vip"\naddress = "198.18.0.100"\n'
    errs = problems(MINIMAL + group + 'drain = "2s"\n')
    assert errs == ["groups.0.resources.1.drain: drain (2000 ms) must be shorter than the group's "
                    "stop_timeout (2000 ms)"]
    assert problems(MINIMAL + group + 'drain = -1\n') == [
        "groups.0.resources.1.drain: duration must not be negative, got -1"]
    for ok, ms in (('drain = "1999ms"\n', 1999), ("drain = 0\n", 0), ("", 500)):
        cfg = load_toml_text(MINIMAL + group + ok, "x.toml", Collector())
        assert cfg.groups[0].resources[1].drain == ms


def test_missing_and_invalid_toml():
    assert problems("[cluster]\n") == ["cluster.nodes: missing required key", "cluster.links: missing required key",
                                       "cluster.auth: missing required key"]
    (err,) = problems("[cluster\n")
    assert err.startswith("x.toml: not valid TOML:")


def test_example_loads():
    loaded = load_config(path=EXAMPLE, node="primarylb")
    assert loaded.config.cluster.name == "web" and loaded.config.balancer.virtual


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("parts,node", [(("seed000",), "primarylb.linuxtone.org"),
                                        (("seed003", "test1"), "test1"), (("seed003", "test2"), "test2")])
def test_convert_then_load_gives_an_equal_model(tmp_path, parts, node):
    cfg = load(copy_fixture(tmp_path, *parts), node=node).config
    text = dump_toml(cfg, "# converted")
    assert load_toml_text(text) == cfg


def test_example_round_trips():
    cfg = load_config(path=EXAMPLE, node="primarylb").config
    assert load_toml_text(dump_toml(cfg)) == cfg


names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ms = st.integers(min_value=1, max_value=10_000_000).map(lambda n: f"{n}ms")
pattern = text.map(re.escape)  # a receive string is a regular expression (config/check_rules.py)
persistent_ms = st.integers(min_value=1000, max_value=10_000_000).map(lambda n: f"{n}ms")  # ipvsadm -p: >= 1 s


@st.composite
def timing(draw):
    k = draw(st.integers(1, 5000))
    dead = draw(st.integers(2 * k + 1, 200_000))
    out = {"keepalive": f"{k}ms", "deadtime": f"{dead}ms"}
    if draw(st.booleans()):
        out["warntime"] = f"{draw(st.integers(k, dead - 1))}ms"
    elif dead // 2 < k:
        out["warntime"] = f"{k}ms"
    if draw(st.booleans()):
        out["initdead"] = f"{draw(st.integers(dead, 3 * dead))}ms"
    return out


links = st.one_of(
    st.fixed_dictionaries({"kind": st.just("ucast"), "interface": names,
                           "peers": st.lists(st.one_of(ipv4, ipv6), min_size=1, max_size=3, unique=True)},
                          optional={"port": st.integers(1, 65535)}),
    st.fixed_dictionaries({"kind": st.just("mcast"), "interface": names,
                           "group": st.ip_addresses(network="239.0.0.0/8").map(str)},
                          optional={"port": st.integers(1, 65535), "ttl": st.integers(1, 255),
                                    "loop": st.booleans()}),
    st.fixed_dictionaries({"kind": st.just("bcast"), "interface": names}),
    st.fixed_dictionaries({"kind": st.just("serial"), "device": names.map(lambda n: "/dev/" + n)},
                          optional={"baud": st.sampled_from([9600, 19200, 115200])}),
)

auth = st.one_of(
    st.fixed_dictionaries({"method": st.sampled_from(["md5", "sha1", "sha256"]),
                           "key": text.filter(bool), "index": st.integers(0, 15)}),
    st.fixed_dictionaries({"method": st.just("crc"), "key": st.just(""), "index": st.integers(0, 15)}),
)


def resources(with_balancer: bool):
    kinds = [
        st.fixed_dictionaries({"kind": st.just("vip"), "address": ipv4},
                              optional={"prefixlen": st.integers(0, 32), "interface": names, "label": names,
                                        "broadcast": ipv4, "garp_count": st.integers(0, 1000),
                                        "garp_interval": ms, "garp_refresh": ms}),
        st.fixed_dictionaries({"kind": st.just("script"), "name": names},
                              optional={"args": st.lists(text, max_size=3)}),
        st.fixed_dictionaries({"kind": st.just("systemd"), "unit": names.map(lambda n: n + ".service")}),
        st.fixed_dictionaries({"kind": st.just("ocf"), "agent": names},
                              optional={"provider": names, "params": st.dictionaries(names, text, max_size=3)}),
    ]
    if with_balancer:
        kinds.append(st.fixed_dictionaries({"kind": st.just("balancer")}, optional={"source": text}))
    return st.one_of(kinds)


@st.composite
def virtuals(draw):
    n = draw(st.integers(0, 3))
    ports = draw(st.lists(st.integers(1, 65535), min_size=n, max_size=n, unique=True))
    out = []
    for port in ports:
        v6 = draw(st.booleans())
        addr = draw(ipv6 if v6 else ipv4)
        v = {"address": addr, "port": port,
             "reals": draw(st.lists(st.fixed_dictionaries(
                 {"address": ipv6 if v6 else ipv4},
                 optional={"port": st.integers(1, 65535), "method": st.sampled_from(["gate", "masq", "ipip"]),
                           "weight": st.integers(0, 65535), "request": text, "receive": pattern}),
                 max_size=3))}
        v.update(draw(st.fixed_dictionaries({}, optional={
            "protocol": st.sampled_from(["tcp", "udp"]),
            "scheduler": st.sampled_from(["rr", "wrr", "lc", "wlc", "sh", "mh"]),
            "checktype": st.sampled_from(["connect", "negotiate", "ping", "off"]),
            "service": st.sampled_from(["http", "https", "none", "dns"]),
            "request": text, "receive": pattern, "virtualhost": names,
            "checktimeout": ms, "negotiatetimeout": ms, "checkinterval": ms,
            "failurecount": st.integers(1, 10), "quiescent": st.booleans(),
        })))
        if draw(st.booleans()):
            v["persistent"] = draw(persistent_ms)
            if draw(st.booleans()):
                v["netmask"] = "64" if v6 else "255.255.255.0"
        if draw(st.booleans()):
            v["fallback"] = {"address": "::1" if v6 else "127.0.0.1", "port": draw(st.integers(1, 65535))}
        out.append(v)
    return out


@st.composite
def configs(draw):
    nodes = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    cluster = {"name": draw(names), "nodes": nodes, "links": draw(st.lists(links, min_size=1, max_size=3)),
               "timing": draw(timing()), "auth": draw(auth),
               "auto_failback": draw(st.sampled_from(["on", "off", "legacy"])),
               "ping": draw(st.lists(ipv4, max_size=3)),
               "ping_groups": [{"name": n, "addresses": draw(st.lists(ipv4, min_size=1, max_size=3))}
                               for n in draw(st.lists(names, max_size=2, unique=True))],
               "respawn": draw(st.lists(st.fixed_dictionaries({"user": names, "command": text}), max_size=2)),
               "logging": draw(st.fixed_dictionaries({}, optional={
                   "logfile": text, "debugfile": text, "facility": st.sampled_from(["local0", "daemon"]),
                   "debug": st.integers(0, 255)}))}
    if draw(st.booleans()):
        cluster["watchdog"] = "/dev/watchdog"
    data: dict = {"cluster": cluster}
    with_balancer = draw(st.booleans())
    if with_balancer:
        # reals of any method mixed: the proxy data plane takes them all (the nft one would refuse
        # ipip and gate mixed with masq: tests/unit/test_validation_first.py)
        data["balancer"] = draw(st.fixed_dictionaries({"virtual": virtuals(), "dataplane": st.just("proxy")}, optional={
            "checktimeout": ms, "checkinterval": ms, "failurecount": st.integers(1, 5),
            "quiescent": st.booleans(), "autoreload": st.booleans(), "logfile": text,
            "fallback": st.just({"address": "127.0.0.1", "port": 80}),
            "fallback6": st.just({"address": "::1", "port": 80, "method": "gate"}),
            "alerts": st.fixed_dictionaries({"to": st.lists(names, max_size=2)},
                                            optional={"freq": st.integers(0, 3600)}),
        }))
    gnames = draw(st.lists(names, max_size=3, unique=True))
    data["groups"] = [{"name": g, "preferred_node": draw(st.sampled_from(nodes)),
                       "resources": draw(st.lists(resources(with_balancer), min_size=1, max_size=4))}
                      for g in gnames]
    return data


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_random_configs_round_trip(data):
    col = Collector()
    cfg = build_config(data, col)
    assert cfg is not None, [str(p) for p in col.problems]
    assert isinstance(cfg, Config)
    assert load_toml_text(dump_toml(cfg)) == cfg
