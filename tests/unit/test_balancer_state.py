"""build_desired: ldirectord's quiescent/fallback rules, health overrides, round trips."""

import pytest

from hadirector.balancer.state import (
    DesiredState, RealHealth, build_desired, diff, health_key, initial_health)
from hadirector.config.model import Balancer


def balancer(**virtual_overrides):
    v = {
        "address": "198.18.0.10", "port": 80, "scheduler": "wrr",
        "reals": [
            {"address": "198.18.1.1", "weight": 3, "method": "masq"},
            {"address": "198.18.1.2", "port": 8080, "weight": 1, "method": "gate",
             "upper_threshold": 100, "lower_threshold": 50},
        ],
        "fallback": {"address": "127.0.0.1", "port": 80},
    }
    v.update(virtual_overrides)
    return Balancer(virtual=[v])


KEY = "TCP 198.18.0.10:80"


def test_all_up_by_default():
    d = build_desired(balancer())
    s = d.service(KEY)
    assert [(r.address, r.port, r.weight, r.status, r.method) for r in s.reals] == [
        ("198.18.1.1", 80, 3, "up", "masq"), ("198.18.1.2", 8080, 1, "up", "gate")]
    assert s.fallback is None
    assert s.installed == s.reals
    assert s.reals[1].upper_threshold == 100 and s.reals[1].lower_threshold == 50
    assert s.available


def test_failed_real_removed_without_quiescent():
    d = build_desired(balancer(quiescent=False), {(KEY, "198.18.1.1", 80): False})
    s = d.service(KEY)
    assert s.reals[0].status == "down"
    assert [r.address for r in s.installed] == ["198.18.1.2"]


def test_failed_real_kept_with_weight_zero_when_quiescent():
    d = build_desired(balancer(quiescent=True), {(KEY, "198.18.1.1", 80): RealHealth(up=False)})
    s = d.service(KEY)
    assert (s.reals[0].status, s.reals[0].weight) == ("quiescent", 0)
    assert [r.address for r in s.installed] == ["198.18.1.1", "198.18.1.2"]
    assert s.fallback is None  # 198.18.1.2 is still available


@pytest.mark.parametrize("quiescent", [False, True])
def test_fallback_only_when_no_real_available(quiescent):
    down = {(KEY, "198.18.1.1", 80): False, (KEY, "198.18.1.2", 8080): False}
    s = build_desired(balancer(quiescent=quiescent), down).service(KEY)
    assert s.fallback is not None and s.fallback.fallback
    assert (s.fallback.address, s.fallback.port, s.fallback.weight) == ("127.0.0.1", 80, 1)
    assert not s.available
    installed = [(r.address, r.weight) for r in s.installed]
    if quiescent:
        assert installed == [("198.18.1.1", 0), ("198.18.1.2", 0), ("127.0.0.1", 1)]
    else:
        assert installed == [("127.0.0.1", 1)]
    # one real back: the fallback leaves
    back = dict(down)
    back[(KEY, "198.18.1.2", 8080)] = True
    assert build_desired(balancer(quiescent=quiescent), back).service(KEY).fallback is None


def test_up_real_with_weight_zero_is_not_available():
    s = build_desired(balancer(reals=[{"address": "198.18.1.1", "weight": 0}])).service(KEY)
    assert s.reals[0].status == "up" and s.fallback is not None


def test_weight_override_from_health():
    h = {(KEY, "198.18.1.1", 80): RealHealth(up=True, weight=7)}
    assert build_desired(balancer(), h).service(KEY).reals[0].weight == 7
    with pytest.raises(ValueError, match="balancer.virtual.0: weight 70000 .*outside 0..65535"):
        build_desired(balancer(), {(KEY, "198.18.1.1", 80): RealHealth(up=True, weight=70000)})


def test_alpha_starts_down():
    b = balancer(alpha=True, quiescent=False)
    s = build_desired(b).service(KEY)
    assert all(r.status == "down" for r in s.reals) and s.fallback is not None
    h = initial_health(b)
    assert h[(KEY, "198.18.1.1", 80)] == RealHealth(up=False)
    assert health_key(b.virtual[0], b.virtual[0].reals[1]) == (KEY, "198.18.1.2", 8080)


def test_persistence_fields_and_flags():
    s = build_desired(balancer(scheduler="sh", schedflags=["sh-port"], persistent=300,
                               netmask="255.255.255.0")).service(KEY)
    assert (s.persistent_ms, s.persistent_s, s.netmask, s.sched_flags) == (300_000, 300, 24, ("sh-port",))
    with pytest.raises(ValueError, match=r"balancer.virtual.0.netmask: netmask '255.0.255.0'"):
        build_desired(balancer(persistent=1000, netmask="255.0.255.0"))
    with pytest.raises(ValueError, match="balancer.virtual.0.schedflags: unknown scheduler flag"):
        build_desired(balancer(schedflags=["bogus"]))


def test_fwmark_and_udp_keys():
    b = Balancer(virtual=[
        {"fwmark": 5, "reals": [{"address": "198.18.1.1", "port": 80}]},
        {"address": "198.18.0.10", "port": 53, "protocol": "udp", "reals": [{"address": "198.18.1.1"}]},
    ])
    d = build_desired(b)
    assert d.keys == ("FWM 5", "UDP 198.18.0.10:53")
    assert d.service("UDP 198.18.0.10:53").reals[0].port == 53


def test_round_trip_and_diff():
    d1 = build_desired(balancer())
    assert DesiredState.from_dict(d1.to_dict()) == d1
    d2 = build_desired(balancer(), {(KEY, "198.18.1.1", 80): False})
    dd = diff(d1, d2)
    assert dd.added == () and dd.removed == () and len(dd.changed) == 1
    assert diff(d1, d1).changed == ()
    assert diff(DesiredState(), d1).added == d1.services
    assert build_desired(None) == DesiredState()


def test_quorum_lost_puts_the_fallback_in_place_of_the_reals():
    s = build_desired(balancer(quorum=5), quorum_lost=[KEY]).service(KEY)
    assert [r.status for r in s.reals] == ["down", "down"]
    assert [r.address for r in s.installed] == ["127.0.0.1"]
    # without a fallback the reals stay
    b = Balancer(virtual=[{"address": "198.18.0.10", "port": 80, "quorum": 5,
                           "reals": [{"address": "198.18.1.1"}]}])
    assert build_desired(b, quorum_lost=[KEY]).service(KEY).reals[0].status == "up"


def test_health_objects_from_the_checks_are_accepted():
    # the health checks report objects with .up and .weight (checks.scheduler.RealHealth)
    class Reported:
        def __init__(self, up, weight):
            self.up, self.weight = up, weight
    s = build_desired(balancer(), {(KEY, "198.18.1.1", 80): Reported(True, 9),
                                   (KEY, "198.18.1.2", 8080): Reported(False, None)}).service(KEY)
    assert [(r.weight, r.status) for r in s.reals] == [(9, "up"), (1, "down")]


def test_initial_health_for_unchecked_checktypes():
    on = initial_health(balancer(checktype="on", alpha=True))
    off = initial_health(balancer(checktype="off"))
    assert all(h.up for h in on.values()) and not any(h.up for h in off.values())
    s = build_desired(balancer(checktype="off", quiescent=False), off).service(KEY)
    assert [r.address for r in s.installed] == ["127.0.0.1"]  # only the fallback
