"""lblc and lblcr: per-destination memory, overload escape, expiry (ip_vs_lblc.c, ip_vs_lblcr.c)."""

from hadirector.balancer.schedulers import (
    LocalityBasedLeastConnection as LBLC, LocalityBasedLeastConnectionReplication as LBLCR, Dest)

VIP1, VIP2 = 0xC6120001, 0xC6120002


def mk(*ws):
    return [Dest(chr(65 + i), i + 1, 80, w) for i, w in enumerate(ws)]


def test_lblc_sticks_to_first_choice_per_destination():
    a, b = mk(1, 1)
    s = LBLC()
    s.update([a, b])
    assert s.schedule(1, 1, VIP1, 80, 0) is a
    a.active = 1  # wlc would now choose b, but the cache keeps a
    assert s.schedule(2, 2, VIP1, 80, 1) is a
    assert s.schedule(3, 3, VIP2, 80, 1) is b  # another destination: fresh wlc choice


def test_lblc_leaves_overloaded_server_when_someone_is_under_half():
    a, b = mk(2, 2)
    s = LBLC()
    s.update([a, b])
    assert s.schedule(1, 1, VIP1, 80, 0) is a
    a.active = 3  # more than its weight, and b has 0*2 < 2
    assert s.schedule(2, 2, VIP1, 80, 1) is b
    assert s.cache[VIP1][0] is b  # the entry now names b
    a.active, b.active = 3, 3  # both above weight, nobody under half: stay
    assert s.schedule(3, 3, VIP1, 80, 2) is b


def test_lblc_weight_zero_and_expiry():
    a, b = mk(1, 1)
    s = LBLC(expiration=10)
    s.update([a, b])
    assert s.schedule(1, 1, VIP1, 80, 0) is a
    a.set_weight(0)
    assert s.schedule(1, 1, VIP1, 80, 1) is b
    s.expire(5)
    assert VIP1 in s.cache
    s.expire(11.5)
    assert VIP1 not in s.cache


def test_lblcr_grows_set_under_load_and_uses_least_loaded_member():
    a, b, c = mk(2, 2, 2)
    s = LBLCR(expiration=100)
    s.update([a, b, c])
    assert s.schedule(1, 1, VIP1, 80, 0) is a
    a.active = 3  # overloaded (3 > 2, others under half): wlc over all adds b
    assert s.schedule(2, 2, VIP1, 80, 1) is b
    assert [d.key for d in s.cache[VIP1][0]] == ["B", "A"]  # newest first, as list_add_rcu
    b.active = 1
    assert s.schedule(3, 3, VIP1, 80, 2) is b  # set min: b (256/2) < a (768/2)


def test_lblcr_shrinks_set_after_expiration_without_change():
    a, b = mk(1, 1)
    s = LBLCR(expiration=10)
    s.update([a, b])
    s.schedule(1, 1, VIP1, 80, 0)
    a.active = 2
    s.schedule(1, 1, VIP1, 80, 1)  # b added at t=1
    assert len(s.cache[VIP1][0]) == 2
    b.active = 5
    s.schedule(1, 1, VIP1, 80, 5)  # not yet expired
    assert len(s.cache[VIP1][0]) == 2
    s.schedule(1, 1, VIP1, 80, 11.5)  # lastmod 1 + 10 passed: most loaded (b) removed
    assert [d.key for d in s.cache[VIP1][0]] == ["A"]


def test_lblcr_no_destination():
    a, = mk(0)
    s = LBLCR()
    s.update([a])
    assert s.schedule(1, 1, VIP1, 80, 0) is None
