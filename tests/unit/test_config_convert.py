"""`convert`: the TOML a person would write (defaults left out, globals kept global, comments naming
the legacy lines), loading back equal to the legacy configuration."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings

from hadirector.config import convert as convert_mod
from hadirector.config.build import build_config
from hadirector.config.convert import convert_text, minimal_data
from hadirector.config.errors import Collector
from hadirector.config.native import load_toml_text
from legacy_util import copy_fixture, load, make_ha_dir
from test_config_native import configs


def _convert(loaded) -> str:
    return convert_text(loaded.config, loaded.locate, "# converted")


def test_seed000_is_short_and_loads_back_equal(tmp_path):
    loaded = load(copy_fixture(tmp_path, "seed000"), node="primarylb.linuxtone.org")
    text = _convert(loaded)
    lines = text.splitlines()
    assert len(lines) < 60, text
    assert load_toml_text(text) == loaded.config
    # only values that differ from the defaults
    data = tomllib.loads(text)
    assert "deadtime" not in data["cluster"]["timing"]  # 30 s is heartbeat's default
    assert all("port" not in lk for lk in data["cluster"]["links"])  # udpport 694 is the default
    assert "scheduler" not in data["balancer"]["virtual"][0]  # wrr
    assert "service" not in data["balancer"]["virtual"][0]  # http, from port 80
    # globals stay global: the fallback, timeouts and alerts are not copied into the virtual
    v = data["balancer"]["virtual"][0]
    assert not {"fallback", "checktimeout", "checkinterval", "alerts"} & set(v)
    assert data["balancer"]["fallback"] == {"address": "127.0.0.1", "port": 80, "method": "gate"}
    # an absolute source path, comments naming the legacy lines
    assert data["groups"][0]["resources"][1]["source"] == f"{tmp_path}/seed000/ldirectord.cf"
    assert "[cluster.timing]  # ha.cf:3,5,6" in lines
    assert "[[balancer.virtual]]  # ldirectord.cf:14,23,26,27" in lines
    assert '    { address = "192.168.1.104", port = 80 },  # ldirectord.cf:15' in lines


@pytest.mark.parametrize("parts,node", [(("seed003", "test1"), "test1"), (("seed003", "test2"), "test2")])
def test_seed003_loads_back_equal(tmp_path, parts, node):
    loaded = load(copy_fixture(tmp_path, *parts), node=node)
    assert load_toml_text(_convert(loaded)) == loaded.config


def test_a_virtual_that_overrides_a_global_with_a_default_value(tmp_path):
    # global quiescent=yes, the virtual says no: `quiescent = false` must be written, though false is
    # the default, or the virtual would inherit yes again
    loaded = load(make_ha_dir(tmp_path, haresources="alpha ldirectord\n", ldirectord=(
        "quiescent=yes\nchecktimeout=4\nvirtual=198.18.0.1:80\n    real=198.18.1.1:80 gate\n    quiescent=no\n"
        "    checktimeout=4\nvirtual=198.18.0.1:443\n    real=198.18.1.1:443 gate\n")))
    text = _convert(loaded)
    v80, v443 = tomllib.loads(text)["balancer"]["virtual"]
    assert v80 == {"address": "198.18.0.1", "port": 80, "quiescent": False,
                   "reals": [{"address": "198.18.1.1", "port": 80}]}
    assert "quiescent" not in v443 and "checktimeout" not in v443
    assert load_toml_text(text) == loaded.config


def test_ipv6_services_inherit_fallback6(tmp_path):
    loaded = load(make_ha_dir(tmp_path, haresources="alpha ldirectord\n", ldirectord=(
        "fallback6=[::1]:80\nvirtual6=[2001:db8::1]:80\n    real6=[2001:db8::2]:80 gate\n")))
    b = loaded.config.balancer
    assert b.virtual[0].fallback == b.fallback6 and b.fallback is None  # fallback6 alone is inherited
    text = _convert(loaded)
    assert "fallback" not in tomllib.loads(text)["balancer"]["virtual"][0]
    assert load_toml_text(text) == loaded.config


def test_a_short_form_that_would_not_load_equal_falls_back_to_every_key(tmp_path, monkeypatch):
    loaded = load(copy_fixture(tmp_path, "seed000"), node="primarylb.linuxtone.org")

    def broken(cfg):
        data = minimal_data(cfg)
        data["cluster"].pop("auto_failback")  # loses a value: the check must catch it
        return data

    monkeypatch.setattr(convert_mod, "minimal_data", broken)
    text = convert_text(loaded.config, loaded.locate, "# converted")
    assert "# (every key is written: the short form did not load back equal" in text
    assert load_toml_text(text) == loaded.config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_random_configs_convert_and_load_back_equal(data):
    col = Collector()
    cfg = build_config(data, col)
    assert cfg is not None, [str(p) for p in col.problems]
    text = convert_text(cfg)
    assert "every key is written" not in text, text
    assert load_toml_text(text) == cfg
