"""rr, lc, wlc, sed, nq, fo, ovf and the connection thresholds (IPVS semantics)."""

import pytest

from hadirector.balancer.schedulers import (
    SCHEDULERS, Dest, LeastConnection, NeverQueue, RoundRobin, ShortestExpectedDelay,
    WeightedFailover, WeightedLeastConnection, WeightedOverflow, make_scheduler,
    sched_flag_bits, sched_flag_names)


def dests(*spec):
    """spec: (name, weight, active, inactive)"""
    out = []
    for i, (name, w, act, inact) in enumerate(spec):
        d = Dest(name, i + 1, 80, w)
        d.active, d.inactive = act, inact
        out.append(d)
    return out


def one(s):
    d = s.schedule(0, 0, 0, 0, 0.0)
    return None if d is None else d.key


# --------------------------------------------------------------------------- rr

def test_rr_rotates_and_skips_weight_zero():
    a, b, c = Dest("A", 1, 80, 1), Dest("B", 2, 80, 0), Dest("C", 3, 80, 5)
    s = RoundRobin()
    s.update([a, b, c])
    assert [one(s) for _ in range(5)] == ["A", "C", "A", "C", "A"]


def test_rr_removal_of_current_moves_back():
    a, b, c = (Dest(k, i, 80, 1) for i, k in enumerate("ABC"))
    s = RoundRobin()
    s.update([a, b, c])
    assert [one(s) for _ in range(2)] == ["A", "B"]
    s.update([a, c])  # B (current) removed: position moves to A, so C comes next
    assert [one(s) for _ in range(3)] == ["C", "A", "C"]


def test_rr_nothing_available():
    a = Dest("A", 1, 80, 0)
    s = RoundRobin()
    s.update([a])
    assert one(s) is None
    s.update([])
    assert one(s) is None


# --------------------------------------------------------------------------- lc / wlc / sed / nq

def test_lc_least_overhead_active_counts_256():
    # overhead = active*256 + inactive: B has 1 active (256) > A's 200 inactive
    s = LeastConnection()
    s.update(dests(("A", 1, 0, 200), ("B", 1, 1, 0), ("C", 0, 0, 0)))
    assert one(s) == "A"


def test_lc_ignores_weight_beyond_zero_and_first_wins_ties():
    s = LeastConnection()
    s.update(dests(("A", 1, 2, 0), ("B", 100, 2, 0)))
    assert one(s) == "A"


def test_wlc_divides_by_weight():
    # A: 512/1 = 512; B: 1280/3 = 426.7 -> B
    s = WeightedLeastConnection()
    s.update(dests(("A", 1, 2, 0), ("B", 3, 5, 0)))
    assert one(s) == "B"
    # equal load per weight: the first keeps it (strict comparison)
    s.update(dests(("A", 1, 1, 0), ("B", 3, 3, 0)))
    assert one(s) == "A"


def test_wlc_skips_weight_zero_even_when_idle():
    s = WeightedLeastConnection()
    s.update(dests(("A", 0, 0, 0), ("B", 1, 50, 0)))
    assert one(s) == "B"


def test_sed_uses_active_plus_one():
    # sed: (active+1)/weight. A: 1/1 = 1; B: 3/4 = 0.75 -> B (wlc would pick A: 0 < 512/4)
    s = ShortestExpectedDelay()
    s.update(dests(("A", 1, 0, 0), ("B", 4, 2, 0)))
    assert one(s) == "B"
    w = WeightedLeastConnection()
    w.update(dests(("A", 1, 0, 0), ("B", 4, 2, 0)))
    assert one(w) == "A"


def test_nq_prefers_an_idle_server():
    # B is idle: taken at once even though sed would pick C (1/10 < ... )
    s = NeverQueue()
    s.update(dests(("A", 1, 3, 0), ("B", 1, 0, 0), ("C", 10, 1, 0)))
    assert one(s) == "B"
    s.update(dests(("A", 1, 3, 0), ("C", 10, 1, 0)))
    assert one(s) == "C"  # (1+1)/10 < (3+1)/1


# --------------------------------------------------------------------------- fo / ovf

def test_fo_highest_weight_first_on_ties():
    s = WeightedFailover()
    s.update(dests(("A", 5, 100, 0), ("B", 9, 100, 0), ("C", 9, 0, 0)))
    assert one(s) == "B"
    d = s.dests[1]
    d.overloaded = True
    assert one(s) == "C"


def test_ovf_overflows_when_active_exceeds_weight():
    a, b = dests(("A", 3, 3, 0), ("B", 1, 0, 0))
    s = WeightedOverflow()
    s.update([a, b])
    assert one(s) == "A"  # 3 active is not more than weight 3
    a.active = 4
    assert one(s) == "B"
    b.active = 2
    assert one(s) is None


# --------------------------------------------------------------------------- thresholds

def test_upper_threshold_sets_overload_lower_clears():
    d = Dest("A", 1, 80, 1, u_threshold=3, l_threshold=1)
    d.bind()
    d.bind()
    assert not d.overloaded
    d.bind()  # total 3 >= upper 3
    assert d.overloaded
    d.unbind()
    assert d.overloaded  # 2 is not below lower 1
    d.unbind()
    assert d.overloaded  # 1 is not below 1
    d.unbind()
    assert not d.overloaded


def test_without_lower_threshold_clears_below_three_quarters_of_upper():
    d = Dest("A", 1, 80, 1, u_threshold=8)
    for _ in range(8):
        d.bind()
    assert d.overloaded
    d.unbind()
    d.unbind()  # 6*4 = 24 is not < 8*3 = 24
    assert d.overloaded
    d.unbind()  # 5*4 = 20 < 24
    assert not d.overloaded


def test_active_and_inactive_both_count_towards_threshold():
    d = Dest("A", 1, 80, 1, u_threshold=2)
    d.bind()
    d.set_active()
    assert (d.active, d.inactive, d.overloaded) == (1, 0, False)
    d.bind()
    assert d.overloaded


def test_raising_upper_threshold_clears_overload():
    d = Dest("A", 1, 80, 1, u_threshold=1)
    d.bind()
    assert d.overloaded
    d.set_thresholds(1, 0)  # same threshold: stays
    assert d.overloaded
    d.set_thresholds(5, 0)
    assert not d.overloaded


@pytest.mark.parametrize("name", sorted(set(SCHEDULERS) - {"lblc"}))
def test_every_scheduler_skips_overloaded_and_weight_zero(name):
    a = Dest("A", 0x0A000001, 80, 1, u_threshold=1)
    b = Dest("B", 0x0A000002, 80, 0)
    s = make_scheduler(name, flags=1)  # with sh-/mh-fallback where it applies
    s.update([a, b])
    assert s.schedule(0x0A000063, 1234, 0x0A000064, 80, 0.0) is a
    a.bind()
    assert a.overloaded
    for client in range(50):
        assert s.schedule(0x0A000100 + client, 1000 + client, 0x0A000064, 80, 0.0) is None


def test_scheduler_flags():
    assert sched_flag_bits(["sh-fallback", "sh-port"]) == 3
    assert sched_flag_names("sh", 3) == ["sh-fallback", "sh-port"]
    assert sched_flag_names("mh", 1) == ["mh-fallback"]
    assert sched_flag_names("wrr", 5) == ["flag-1", "flag-3"]
    with pytest.raises(ValueError, match="unknown scheduler flag 'sh-bogus'"):
        sched_flag_bits(["sh-bogus"])
    with pytest.raises(ValueError, match="unknown scheduler 'xx'"):
        make_scheduler("xx")


def test_lblc_cached_server_ignores_the_overload_flag_as_the_kernel_does():
    # ip_vs_lblc_schedule checks only AVAILABLE, weight > 0 and its own is_overloaded() for a
    # cached entry, not IP_VS_DEST_F_OVERLOAD; a fresh choice (wlc) does skip the flag
    a = Dest("A", 1, 80, 1, u_threshold=1)
    b = Dest("B", 2, 80, 1)
    s = make_scheduler("lblc")
    s.update([a, b])
    assert s.schedule(7, 7, 9, 80, 0.0) is a
    a.bind()
    assert a.overloaded
    assert s.schedule(8, 8, 9, 80, 0.0) is a  # cached
    assert s.schedule(8, 8, 10, 80, 0.0) is b  # another destination address: wlc skips a
