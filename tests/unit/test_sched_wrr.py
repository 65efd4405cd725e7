"""wrr against the kernel's sequence (ip_vs_wrr.c) and the textbook LVS description."""

from math import gcd
from functools import reduce

from hypothesis import given, settings, strategies as st

from hadirector.balancer.schedulers import Dest, WeightedRoundRobin


def pick(s, n):
    out = []
    for _ in range(n):
        d = s.schedule(0, 0, 0, 0, 0.0)
        out.append(d.key if d is not None else None)
    return out


def add_like_ipvsadm(s, dests):
    """`ipvsadm -a` one real at a time: each is linked at the list head and the scheduler's
    dest_changed hook runs after each (ip_vs_ctl.c __ip_vs_update_dest, ip_vs_wrr_dest_changed)."""
    lst = []
    for d in dests:
        lst.insert(0, d)
        s.update(lst)
    return lst


def textbook(weights_in_list_order, n):
    """The LVS documentation's weighted round-robin: i and cw start at -1 and 0."""
    w = weights_in_list_order
    g = reduce(gcd, [x for x in w if x > 0])
    mx = max(w)
    i, cw, out = -1, 0, []
    while len(out) < n:
        i = (i + 1) % len(w)
        if i == 0:
            cw -= g
            if cw <= 0:
                cw = mx
        if w[i] >= cw:
            out.append(i)
    return out


def test_kernel_sequence_after_adding_a4_b3_c2():
    # Derived by hand from ip_vs_wrr.c: after the three adds the list is C, B, A (newest first),
    # di = 1, mw = 4 and cw stayed at 1 (set when A alone gave mw = 4 - (4 - 1) = 1), so the first
    # pass takes everyone with weight >= 1, then the steady cycle runs cw = 4, 3, 2, 1.
    s = WeightedRoundRobin()
    add_like_ipvsadm(s, [Dest("A", 1, 80, 4), Dest("B", 2, 80, 3), Dest("C", 3, 80, 2)])
    assert "".join(pick(s, 3 + 9 + 9)) == "CBA" + "ABACBACBA" * 2


def test_cycle_ratio_is_exact():
    s = WeightedRoundRobin()
    ds = [Dest("A", 1, 80, 5), Dest("B", 2, 80, 3), Dest("C", 3, 80, 1)]
    s.update(ds)
    seq = pick(s, 9 * 100)
    assert seq.count("A") == 500 and seq.count("B") == 300 and seq.count("C") == 100


def test_gcd_is_the_step():
    # weights 100 and 50: gcd 50, cycle of 3
    s = WeightedRoundRobin()
    s.update([Dest("A", 1, 80, 100), Dest("B", 2, 80, 50)])
    # cw = 100 - 49 = 51 takes A; cw = 1 takes A and B
    assert pick(s, 6) == ["A", "A", "B", "A", "A", "B"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=6))
def test_single_update_matches_textbook(weights):
    s = WeightedRoundRobin()
    ds = [Dest(i, i, 80, w) for i, w in enumerate(weights)]
    s.update(ds)
    if max(weights) == 0:
        assert pick(s, 3) == [None] * 3
        return
    g = reduce(gcd, [w for w in weights if w > 0])
    cycle = sum(w // g for w in weights)
    got = pick(s, 2 * cycle)
    assert got == textbook(weights, 2 * cycle)
    # over one cycle each real is chosen weight/gcd times; weight 0 never
    for i, w in enumerate(weights):
        assert got[:cycle].count(i) == w // g


def test_weight_zero_and_overloaded_are_skipped():
    a, b, c = Dest("A", 1, 80, 2), Dest("B", 2, 80, 0), Dest("C", 3, 80, 1)
    s = WeightedRoundRobin()
    s.update([a, b, c])
    assert "B" not in pick(s, 30)
    a.overloaded = True
    assert set(pick(s, 10)) == {"C"}
    c.overloaded = True
    assert pick(s, 2) == [None, None]  # "all destinations are overloaded"


def test_weight_change_resets_to_head():
    a, b = Dest("A", 1, 80, 1), Dest("B", 2, 80, 1)
    s = WeightedRoundRobin()
    s.update([a, b])
    assert pick(s, 1) == ["A"]
    b.set_weight(3)
    s.update([a, b])  # upd_dest: mark->cl = head, cw clamped
    assert pick(s, 4 * 3) == textbook_names([1, 3], ["A", "B"], 12, start_cw=1)


def textbook_names(weights, names, n, start_cw):
    # after dest_changed with cw <= mw and di == 1, cw is kept: the first pass uses it
    out, cw, i, mx = [], start_cw, -1, max(weights)
    first = True
    while len(out) < n:
        i = (i + 1) % len(weights)
        if i == 0 and not first:
            cw -= 1
            if cw <= 0:
                cw = mx
        first = False
        if weights[i] >= cw:
            out.append(names[i])
    return out


def test_empty_service():
    s = WeightedRoundRobin()
    s.update([])
    assert pick(s, 1) == [None]
