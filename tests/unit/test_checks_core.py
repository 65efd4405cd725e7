"""Pure cores of the checks: rise/fall with a hand-advanced clock, combined cycling, targets."""

import pytest

from hadirector.checks.base import probe_for, probe_name, target_for
from hadirector.checks.plan import phase_of
from hadirector.checks.risefall import CombinedCycle, RiseFall
from hadirector.config.model import Real, RealKey, VirtualService

KEY = RealKey("TCP 198.18.0.100:80", "198.18.1.11", 80)


def feed(fsm, outcomes, t0=0.0, step=1.0):
    out = []
    for i, ok in enumerate(outcomes):
        out.append(fsm.on_result(ok, "ok" if ok else "refused", t0 + i * step))
    return out


def test_starts_up_and_failurecount_failures_mark_down():
    fsm = RiseFall.initial(KEY, failurecount=3, rise=1, alpha=False, now=0.0)
    assert fsm.up
    res = feed(fsm, [False, False], t0=10)
    assert res == [[], []] and fsm.up and fsm.failures == 2  # ldirectord soft failures 1/3, 2/3
    [t] = fsm.on_result(False, "refused", 12.0)
    assert (t.up, t.kind, t.reason, t.at) == (False, "down", "refused", 12.0)
    assert not fsm.up and fsm.last_change == 12.0


def test_success_resets_failure_count():
    fsm = RiseFall.initial(KEY, failurecount=2, rise=1, alpha=False, now=0.0)
    assert feed(fsm, [False, True, False, True, False]) == [[]] * 5
    assert fsm.up


def test_rise_successes_mark_up_and_a_failure_resets_them():
    fsm = RiseFall.initial(KEY, failurecount=1, rise=3, alpha=False, now=0.0)
    [t] = fsm.on_result(False, "timeout", 1.0)
    assert t.kind == "down"
    assert feed(fsm, [True, True, False, True, True], t0=2) == [[]] * 5
    [t] = fsm.on_result(True, "ok", 7.0)
    assert (t.up, t.kind, t.at) == (True, "up", 7.0)
    assert fsm.failures == 0 and fsm.successes == 0


def test_alpha_starts_down_and_first_success_brings_up_even_with_rise():
    fsm = RiseFall.initial(KEY, failurecount=1, rise=5, alpha=True, now=0.0)
    assert not fsm.up and "alpha" in fsm.last_reason
    assert fsm.on_result(False, "refused", 1.0) == []  # still down, no transition
    [t] = fsm.on_result(True, "ok", 2.0)
    assert t.up and t.kind == "up"
    # after that, rise applies as usual
    fsm.on_result(False, "refused", 3.0)
    assert feed(fsm, [True] * 4, t0=4) == [[]] * 4 and not fsm.up
    assert fsm.on_result(True, "ok", 9.0)[0].up


def test_dynamic_weight_reported_while_up_and_kept_on_plain_success():
    fsm = RiseFall.initial(KEY, failurecount=1, rise=1, alpha=False, now=0.0)
    [t] = fsm.on_result(True, "exit 7", 1.0, weight=5)
    assert (t.kind, t.weight, t.up) == ("weight", 5, True)
    assert fsm.on_result(True, "exit 0", 2.0, weight=None) == []  # keepalived: exit 0 keeps the weight
    assert fsm.weight == 5
    assert fsm.on_result(True, "exit 7", 3.0, weight=5) == []


def test_force_down_is_immediate_and_idempotent():
    fsm = RiseFall.initial(KEY, failurecount=5, rise=1, alpha=False, now=0.0)
    [t] = fsm.force_down("in maintenance", 1.0)
    assert not t.up and t.reason == "in maintenance"
    assert fsm.force_down("in maintenance", 2.0) == []


def test_retune_keeps_state():
    fsm = RiseFall.initial(KEY, failurecount=3, rise=1, alpha=False, now=0.0)
    fsm.on_result(False, "x", 1.0)
    fsm.retune(2, 2)
    [t] = fsm.on_result(False, "x", 2.0)
    assert t.kind == "down"


def test_bad_thresholds_rejected():
    with pytest.raises(ValueError, match="failurecount"):
        RiseFall.initial(KEY, failurecount=0, rise=1, alpha=False, now=0.0)


def test_combined_cycle_matches_ldirectord():
    c = CombinedCycle(3)
    seq = []
    outcomes = {("negotiate", 0): True}
    for i in range(9):
        kind = c.next_kind()
        seq.append(kind)
        c.record(kind, outcomes.get((kind, 0), True))
    # first negotiates (999999 >= N), then N connects, then negotiate again
    assert seq == ["negotiate", "connect", "connect", "connect", "negotiate", "connect", "connect", "connect", "negotiate"]
    c = CombinedCycle(3)
    c.record("negotiate", True)
    c.record("connect", False)  # a failed connect: negotiate next
    assert c.next_kind() == "negotiate"
    c.record("negotiate", False)  # a failed negotiate: negotiate again
    assert c.next_kind() == "negotiate"


def test_target_resolves_ldirectord_defaults():
    vs = VirtualService(address="198.18.0.100", port=80, request="index.html", receive="OK",
                        reals=[Real(address="198.18.1.11"), Real(address="198.18.1.12", port=8080, request="/x", receive="Y")])
    t1, t2 = (target_for(vs, r) for r in vs.reals)
    assert t1.service == "http" and t1.port == 80 and t1.request == "index.html" and t1.receive == "OK"
    assert (t2.port, t2.request, t2.receive) == (8080, "/x", "Y")
    assert t1.checktimeout == 5.0 and t1.negotiatetimeout == 30.0
    vs2 = VirtualService(address="198.18.0.100", port=80, checkport=81, checktimeout="2s", reals=[Real(address="198.18.1.11")])
    t = target_for(vs2, vs2.reals[0])
    assert t.port == 81 and t.checktimeout == 2.0 and t.negotiatetimeout == 2.0
    fw = VirtualService(fwmark=5, service="smtp", reals=[Real(address="198.18.1.11")])
    assert target_for(fw, fw.reals[0]).port == 25  # ld_checkport: from the service


def test_probe_choice_follows_check_real():
    vs = VirtualService(address="198.18.0.100", port=53, protocol="udp", checktype="connect", reals=[Real(address="198.18.1.11")])
    t = target_for(vs, vs.reals[0])
    assert probe_name(t, "connect") == "ping"  # UDP connect check is a ping in ldirectord
    assert probe_name(t, "negotiate") == "dns"
    vs = VirtualService(address="198.18.0.100", port=587, reals=[Real(address="198.18.1.11")])
    assert probe_name(target_for(vs, vs.reals[0]), "negotiate") == "smtp"
    vs = VirtualService(address="198.18.0.100", port=9999, reals=[Real(address="198.18.1.11")])
    t = target_for(vs, vs.reals[0])
    assert probe_name(t, "negotiate") == "none" and probe_for(t, "negotiate").__name__ == "check_none"
    with pytest.raises(ValueError, match="unknown check kind"):
        probe_name(t, "bogus")


def test_phase_is_stable_and_spread():
    keys = [RealKey("TCP 198.18.0.100:80", f"198.18.{i // 250}.{i % 250}", 80) for i in range(2000)]
    phases = [phase_of(k) for k in keys]
    assert phases == [phase_of(k) for k in keys]
    buckets = [0] * 10
    for p in phases:
        assert 0 <= p < 1
        buckets[int(p * 10)] += 1
    assert min(buckets) > 120 and max(buckets) < 280  # roughly even, no herd


def test_real_key_str():
    vs = VirtualService(address="198.18.0.100", port=80, reals=[Real(address="198.18.1.11")])
    assert str(vs.real_key(vs.reals[0])) == "198.18.1.11:80 of TCP 198.18.0.100:80"


def test_probes_are_discovered_and_every_service_has_one():
    # checks/probes/: one module a kind, found by the registry (no list to keep by hand)
    import pkgutil
    import typing

    from hadirector.checks import base, probes
    from hadirector.config.model import Service
    modules = {m.name for m in pkgutil.iter_modules(probes.__path__) if not m.name.startswith("_")}
    registered = base.load_probes()
    assert {fn.__module__.rsplit(".", 1)[1] for fn in registered.values()} == modules
    assert set(typing.get_args(Service)) == set(base.NEGOTIATE_BY_SERVICE)  # each claimed by its probe
    assert all(name in registered for name in base.NEGOTIATE_BY_SERVICE.values())
