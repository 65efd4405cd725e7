"""[cluster.realtime] (ha.cf `realtime`, `rtprio`): heartbeat's defaults, the TOML keys' checks with
their key paths, and the way through `convert` and `check`."""

from __future__ import annotations

import pytest

from hadirector.config import ConfigError
from hadirector.config.convert import convert_text
from hadirector.config.errors import Collector
from hadirector.config.native import load_toml_text
from hadirector.config.summary import run_lines
from legacy_util import load, make_ha_dir

MINIMAL = """
[cluster]
nodes = ["a", "b"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
[cluster.auth]
key = "k"
"""


def errors(extra: str) -> list[str]:
    col = Collector()
    with pytest.raises(ConfigError):
        load_toml_text(MINIMAL + extra, "x.toml", col)
    return [str(p) for p in col.errors]


def test_defaults_are_heartbeats():
    # config.c: realtime "true"; realtime.h DEFAULT_REALTIME_POLICY SCHED_RR; hb_realtime_prio -1,
    # which cl_make_realtime turns into sched_get_priority_min(SCHED_RR) = 1; mlockall
    rt = load_toml_text(MINIMAL).cluster.realtime
    assert (rt.enabled, rt.policy, rt.priority, rt.lock_memory) == (True, "rr", 1, True)


def test_keys_are_read():
    rt = load_toml_text(MINIMAL + '[cluster.realtime]\nenabled = true\npolicy = "fifo"\npriority = 99\n'
                        "lock_memory = false\n").cluster.realtime
    assert (rt.enabled, rt.policy, rt.priority, rt.lock_memory) == (True, "fifo", 99, False)


PRIORITY = "expected a whole number 1..99 (the realtime priorities of SCHED_RR and SCHED_FIFO on Linux)"


@pytest.mark.parametrize("extra, message", [
    ("priority = 0", f"cluster.realtime.priority: {PRIORITY}, got 0"),
    ("priority = 100", f"cluster.realtime.priority: {PRIORITY}, got 100"),
    ('priority = "5"', f"cluster.realtime.priority: {PRIORITY}, got '5'"),
    ("priority = true", f"cluster.realtime.priority: {PRIORITY}, got True"),
    ("priority = 1.5", f"cluster.realtime.priority: {PRIORITY}, got 1.5"),
    ('policy = "other"', "cluster.realtime.policy: expected 'rr' or 'fifo', got 'other'"),
    ('policy = "RR"', "cluster.realtime.policy: expected 'rr' or 'fifo', got 'RR'"),
    ('enabled = "maybe"', "cluster.realtime.enabled: Input should be a valid boolean"),
    ("lock_memory = 2", "cluster.realtime.lock_memory: Input should be a valid boolean"),
    ("nice = -5", "cluster.realtime.nice: unknown key"),
])
def test_bad_values_name_the_key_and_what_was_expected(extra, message):
    errs = errors(f"[cluster.realtime]\n{extra}\n")
    assert len(errs) == 1 and errs[0].startswith(message), errs


def test_hacf_lines_convert_to_toml_and_back(tmp_path):
    d = make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nucast eth0 198.18.0.2\nrealtime off\nrtprio 20\n")
    loaded = load(d)
    text = convert_text(loaded.config, loaded.locate)
    assert "[cluster.realtime]  # ha.cf:4,5\nenabled = false\npriority = 20\n" in text, text
    assert load_toml_text(text).cluster.realtime == loaded.config.cluster.realtime


@pytest.mark.parametrize("hacf, line", [
    ("", "realtime: SCHED_RR priority 1, memory locked (if the kernel allows it; processes it starts run at "
         "normal priority)"),
    ("rtprio 7\n", "realtime: SCHED_RR priority 7, memory locked"),
    ("realtime off\n", "realtime: off (normal scheduling)"),
])
def test_check_says_what_run_will_ask_for(tmp_path, hacf, line):
    loaded = load(make_ha_dir(tmp_path, hacf="node alpha\nnode beta\nucast eth0 198.18.0.2\n" + hacf))
    assert any(ln.startswith(line) for ln in run_lines(loaded)), run_lines(loaded)
